//! Where sideband finds its own files and keeps its cache.

use std::path::PathBuf;

/// The repository root (scripts/, images/, guest-tests/): `SIDEBAND_ROOT`, else the checkout this
/// binary was built from.
pub fn repo_root() -> PathBuf {
    match std::env::var_os("SIDEBAND_ROOT") {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
    }
}

/// The cache of heavy outputs: `SIDEBAND_CACHE`, else `~/.cache/sideband`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIDEBAND_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("sideband")
}
