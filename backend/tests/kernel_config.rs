//! `--kernel` and `check-config` reject a kernel whose configuration lacks part of the offload
//! stack, naming each symbol, before anything is booted.

use std::process::Command;

fn repo_fragment() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../images/kernel/");
    ["base.config", "offload.config"]
        .iter()
        .map(|f| std::fs::read_to_string(format!("{root}{f}")).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fake arm64 build tree: `.config` from the fragment with `drop` removed and `change` applied.
fn fake_tree(drop: &str, change: (&str, &str)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config: String = repo_fragment()
        .lines()
        .filter(|l| !l.starts_with(&format!("{drop}=")))
        .map(|l| {
            if l.starts_with(&format!("{}=", change.0)) {
                change.1.to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(dir.path().join(".config"), config).unwrap();
    std::fs::create_dir_all(dir.path().join("arch/arm64/boot")).unwrap();
    std::fs::write(dir.path().join("arch/arm64/boot/Image"), b"not a kernel").unwrap();
    std::fs::write(dir.path().join("System.map"), b"").unwrap();
    dir
}

fn sideband(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_sideband"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn kernel_tree_missing_a_symbol_is_refused_before_boot() {
    let tree = fake_tree(
        "CONFIG_USB_XHCI_SIDEBAND",
        (
            "CONFIG_SND_USB_AUDIO_QMI",
            "# CONFIG_SND_USB_AUDIO_QMI is not set",
        ),
    );
    let out = tempfile::tempdir().unwrap();
    let (code, text) = sideband(&[
        "setup",
        "--kernel",
        tree.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("CONFIG_USB_XHCI_SIDEBAND is not set (wanted y)"),
        "{text}"
    );
    assert!(
        text.contains("CONFIG_SND_USB_AUDIO_QMI is not set (wanted m)"),
        "{text}"
    );
    assert!(text.contains("2 required setting(s)"), "{text}");
    assert!(
        !text.contains("qemu:"),
        "nothing may be set up for a refused kernel: {text}"
    );
}

#[test]
fn check_config_names_a_wrong_value_and_accepts_a_good_config() {
    let bad = fake_tree("", ("CONFIG_VIRTIO_IOMMU", "CONFIG_VIRTIO_IOMMU=m"));
    let (code, text) = sideband(&["check-config", bad.path().join(".config").to_str().unwrap()]);
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("CONFIG_VIRTIO_IOMMU=m (wanted y)"), "{text}");

    let good = fake_tree("", ("", ""));
    let (code, text) = sideband(&["check-config", good.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
}
