//! The guest image: QEMU prefix, kernel, initramfs. Each piece is built by a script in
//! `scripts/` and cached under the cache directory by a hash of its inputs.

pub mod kconfig;
mod script;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};

use crate::paths;

/// Which kernel the guest runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// Debian's `linux-source-SERIES` (7.3: trixie-backports, 7.2: sid), built with our fragments
    /// and, written `SERIES+VARIANT`, the patches and fragments of `images/kernel/variants/VARIANT/`.
    Debian {
        series: String,
        variant: Option<String>,
    },
    /// A local kernel tree: a source tree (built with our fragments) or a build tree that already
    /// has `arch/arm64/boot/Image` and `.config` (used as it is, after the fragment check).
    Tree(PathBuf),
}

impl Default for KernelChoice {
    fn default() -> Self {
        KernelChoice::Debian {
            series: "7.3".into(),
            variant: None,
        }
    }
}

impl FromStr for KernelChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let (series, variant) = match s.split_once('+') {
            Some((series, variant)) => (series, Some(variant)),
            None => (s, None),
        };
        let is_series =
            series.split('.').count() == 2 && series.split('.').all(|p| p.parse::<u32>().is_ok());
        if is_series && !Path::new(s).exists() {
            if let Some(v) = variant {
                let dir = variants_dir().join(v);
                if v.is_empty() || v.contains('/') || !dir.is_dir() {
                    return Err(format!(
                        "unknown kernel variant '{v}' (images/kernel/variants/ has: {})",
                        known_variants().join(", ")
                    ));
                }
            }
            Ok(KernelChoice::Debian {
                series: series.to_string(),
                variant: variant.map(str::to_string),
            })
        } else if Path::new(s).is_dir() {
            Ok(KernelChoice::Tree(PathBuf::from(s)))
        } else {
            Err(format!(
                "'{s}' is neither a kernel series like 7.3 nor a kernel tree directory"
            ))
        }
    }
}

impl KernelChoice {
    /// The variant (`fixture`, `kasan`), `None` for a stock kernel.
    pub fn variant(&self) -> Option<&str> {
        match self {
            KernelChoice::Debian { variant, .. } => variant.as_deref(),
            KernelChoice::Tree(_) => None,
        }
    }
}

impl fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelChoice::Debian {
                series,
                variant: None,
            } => write!(f, "{series}"),
            KernelChoice::Debian {
                series,
                variant: Some(v),
            } => write!(f, "{series}+{v}"),
            KernelChoice::Tree(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// Everything needed to boot the guest.
#[derive(Clone, Debug)]
pub struct Image {
    /// The `qemu-system-aarch64` wrapper in the private prefix.
    pub qemu: PathBuf,
    /// The kernel output directory (Image, System.map, config, kernelrelease, modules/).
    pub kernel_dir: PathBuf,
    /// The initramfs archive.
    pub initramfs: PathBuf,
    /// `uname -r` of the kernel.
    pub release: String,
    /// What exactly boots: a hash of the Image and the installed modules, and their source (a
    /// git tree's commit, `-dirty` when edited), from the kernel folder's `identity` file.
    pub identity: String,
}

impl Image {
    /// The arm64 kernel `Image`.
    pub fn kernel(&self) -> PathBuf {
        self.kernel_dir.join("Image")
    }
}

/// The fragment files every guest kernel must satisfy, concatenated.
fn fragment_text() -> Result<String> {
    let dir = paths::repo_root().join("images").join("kernel");
    let mut text = String::new();
    for name in ["base.config", "offload.config"] {
        let path = dir.join(name);
        text += &std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        text.push('\n');
    }
    Ok(text)
}

/// The fragment files every guest kernel must satisfy, parsed.
#[cfg(test)]
pub fn required_config() -> Result<kconfig::Kconfig> {
    Ok(kconfig::parse(&fragment_text()?))
}

/// Checks a kernel `.config` against the fragments; the error names every symbol that is off.
pub fn check_config(config_path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read kernel config {}", config_path.display()))?;
    let fragment = fragment_text()?;
    let mismatches = kconfig::check(
        &kconfig::parse(&fragment),
        &kconfig::optional_symbols(&fragment),
        &kconfig::parse(&text),
    );
    if mismatches.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = mismatches.iter().map(|m| format!("  {m}")).collect();
    bail!(
        "kernel config {} lacks {} required setting(s) (images/kernel/*.config):\n{}",
        config_path.display(),
        mismatches.len(),
        list.join("\n")
    )
}

/// The `.config` to check for a `--kernel` tree before anything is built, if it has one.
fn prebuilt_config(tree: &Path) -> Option<PathBuf> {
    let image = tree.join("arch/arm64/boot/Image");
    let config = tree.join(".config");
    (image.exists() && config.exists()).then_some(config)
}

/// Builds (or finds in the cache) every piece of the image for `choice`.
pub fn ensure(choice: &KernelChoice) -> Result<Image> {
    if let KernelChoice::Tree(tree) = choice {
        if let Some(config) = prebuilt_config(tree) {
            check_config(&config)?;
        } else if !tree.join("Makefile").exists() {
            bail!(
                "--kernel {}: not a kernel tree (no Makefile, and no arch/arm64/boot/Image with .config)",
                tree.display()
            );
        }
    }
    script::run("host-deps", &[], &[])?;
    let qemu = script::run("qemu-prefix", &[], &[])?;
    let kernel_dir = match choice {
        KernelChoice::Debian { series, variant } => {
            let src = script::run("kernel-source", &[Path::new(series)], &[])?;
            build_from_source(&src, variant.as_deref().unwrap_or(""))?
        }
        KernelChoice::Tree(tree) if prebuilt_config(tree).is_some() => {
            script::run("kernel-prebuilt", &[tree], &[])?
        }
        KernelChoice::Tree(tree) => build_from_source(tree, "")?,
    };
    check_config(&kernel_dir.join("config"))?;
    let initramfs = script::run("initramfs", &[&kernel_dir], &[])?;
    let release = std::fs::read_to_string(kernel_dir.join("kernelrelease"))
        .context("kernel output has no kernelrelease")?
        .trim()
        .to_string();
    let identity = std::fs::read_to_string(kernel_dir.join("identity"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "identity unknown (no identity file)".into());
    Ok(Image {
        qemu,
        kernel_dir,
        initramfs,
        release,
        identity,
    })
}

/// Configures `src` with our fragments (and a variant's), checks the result, then builds it.
fn build_from_source(src: &Path, variant: &str) -> Result<PathBuf> {
    let config = script::run(
        "kernel-build",
        &[src],
        &[("SIDEBAND_CONFIG_ONLY", "1"), ("SIDEBAND_VARIANT", variant)],
    )?;
    check_config(&config)?;
    script::run("kernel-build", &[src], &[("SIDEBAND_VARIANT", variant)])
}

fn variants_dir() -> PathBuf {
    paths::repo_root()
        .join("images")
        .join("kernel")
        .join("variants")
}

/// The names of `images/kernel/variants/*/`, sorted.
pub fn known_variants() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(variants_dir())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_choice_parses_series_and_dirs() {
        assert_eq!(
            "7.3".parse::<KernelChoice>(),
            Ok(KernelChoice::Debian {
                series: "7.3".into(),
                variant: None
            })
        );
        assert_eq!(
            "7.2+fixture".parse::<KernelChoice>(),
            Ok(KernelChoice::Debian {
                series: "7.2".into(),
                variant: Some("fixture".into())
            })
        );
        let err = "7.3+nosuch".parse::<KernelChoice>().unwrap_err();
        assert!(err.contains("unknown kernel variant 'nosuch'") && err.contains("fixture"));
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().to_str().unwrap();
        assert_eq!(
            s.parse::<KernelChoice>(),
            Ok(KernelChoice::Tree(dir.path().into()))
        );
        assert!("/no/such/dir".parse::<KernelChoice>().is_err());
    }

    #[test]
    fn repo_fragments_parse_and_ask_for_the_offload_stack() {
        let k = required_config().unwrap();
        for sym in [
            "CONFIG_USB_XHCI_SIDEBAND",
            "CONFIG_SND_USB_AUDIO_QMI",
            "CONFIG_QRTR_TUN",
            "CONFIG_VIRTIO_IOMMU",
            "CONFIG_PROVE_LOCKING",
        ] {
            assert!(
                k.contains_key(sym),
                "{sym} missing from images/kernel/*.config"
            );
        }
    }
}
