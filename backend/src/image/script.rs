//! Runs the setup scripts in `scripts/`: their stderr (progress lines) goes straight to ours,
//! their last stdout line is the path they produced.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::paths;

/// Runs `scripts/NAME ARGS...` with `envs` set and returns the last line it printed on stdout.
pub fn run(name: &str, args: &[&Path], envs: &[(&str, &str)]) -> Result<PathBuf> {
    let script = paths::repo_root().join("scripts").join(name);
    let mut cmd = Command::new(&script);
    cmd.args(args)
        .env("SIDEBAND_CACHE", paths::cache_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}); its error is printed above",
            script.display(),
            out.status
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().map(str::trim).rfind(|l| !l.is_empty()) {
        Some(last) => Ok(PathBuf::from(last)),
        None => bail!("{} printed no result path", script.display()),
    }
}
