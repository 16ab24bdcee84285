//! What is built is what boots: a kernel developer edits a module in their source tree, and the
//! next run boots the edited module (the kernel step rebuilds it, the initramfs is keyed by the
//! modules' contents, and the summary names the new build).
//!
//! The tree is a hard-linked copy of the cached Debian source under the cache folder (kept
//! between runs, so only the edited file recompiles after the first build of about 6 minutes).
//! It keeps the `.debian-version` file of linux-source: a user's tree is never treated as
//! immutable because of it. The edited file is written as a new file, so the cached source
//! it is linked to never changes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{sideband, text};

const FILE: &str = "sound/usb/qcom/qc_audio_offload.c";
const ANCHOR: &str = "static int qc_usb_audio_probe(struct auxiliary_device *auxdev,";
const TAG: &str = "sideband-edit-marker";

fn cache() -> PathBuf {
    std::env::var_os("SIDEBAND_CACHE").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/sideband"),
        PathBuf::from,
    )
}

/// The user's tree: made once from the cached 7.3 source.
fn user_tree() -> PathBuf {
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/kernel-source"
    ))
    .arg("7.3")
    .output()
    .expect("cannot run scripts/kernel-source");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let src = PathBuf::from(text(&out.stdout).trim());
    let tree = cache().join("test-trees").join(format!(
        "edit-{}",
        src.file_name().unwrap().to_string_lossy()
    ));
    if !tree.join(".complete").exists() {
        let tmp = tree.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tree.parent().unwrap()).unwrap();
        let st = Command::new("cp")
            .arg("-al")
            .arg(&src)
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(st.success(), "cp -al {} failed", src.display());
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::rename(&tmp, &tree).unwrap();
    }
    assert!(
        tree.join(".debian-version").exists(),
        "the copy keeps linux-source's marker file"
    );
    tree
}

/// Puts a `pr_info` with `marker` at the top of the offload driver's probe (a real code change),
/// replacing the marker of an earlier run; writes a new file, never through the hard link.
fn edit(tree: &Path, marker: &str) {
    let path = tree.join(FILE);
    let old = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| !l.contains(TAG))
        .map(str::to_string)
        .collect();
    let at = lines
        .iter()
        .position(|l| l == ANCHOR)
        .unwrap_or_else(|| panic!("{FILE} has no `{ANCHOR}`"));
    let open = (at..lines.len())
        .find(|&i| lines[i] == "{")
        .expect("the probe's body");
    // After the declarations would be tidier; a statement first is fine for gnu11 C.
    let decl_end = (open + 1..lines.len())
        .find(|&i| lines[i].trim().is_empty())
        .expect("a blank line after the declarations");
    lines.insert(decl_end, format!("\tpr_info(\"{TAG} {marker}\\n\");"));
    let mut new = lines.join("\n");
    new.push('\n');
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, new).unwrap();
}

fn marker_line(console: &str, marker: &str) -> bool {
    console
        .lines()
        .any(|l| l.contains(&format!("{TAG} {marker}")) && l.starts_with('['))
}

#[test]
fn an_edited_module_in_a_users_tree_is_what_boots() {
    let tree = user_tree();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut identities = Vec::new();
    let mut previous: Option<String> = None;
    for round in ["a", "b"] {
        let marker = format!("{stamp}-{round}");
        edit(&tree, &marker);
        let out = tempfile::tempdir().unwrap();
        let o = sideband(
            &["test", "-s", "smoke", "--kernel", tree.to_str().unwrap()],
            out.path(),
        );
        let stdout = text(&o.stdout);
        let stderr = text(&o.stderr);
        assert!(o.status.success(), "{stdout}\n{stderr}");
        let console = std::fs::read_to_string(out.path().join("smoke.console.log")).unwrap();
        assert!(
            marker_line(&console, &marker),
            "round {round}: the guest did not run the edit (no kernel line with `{TAG} {marker}`)"
        );
        if let Some(p) = &previous {
            assert!(
                !marker_line(&console, p),
                "round {round}: the earlier build's module booted"
            );
        }
        let identity = stdout
            .lines()
            .find(|l| l.starts_with("# kernel "))
            .unwrap_or_else(|| panic!("no `# kernel` line naming the build:\n{stdout}"))
            .to_string();
        assert!(identity.contains("Image+modules "), "{identity}");
        assert!(identity.contains("local:"), "{identity}");
        identities.push(identity);
        previous = Some(marker);
    }
    assert_ne!(
        identities[0], identities[1],
        "the summary names a new build after the edit"
    );
}
