//! What every end-to-end test file shares: running the `sideband` binary with one guest at a
//! time. Boots are serialised across test threads and test binaries by an exclusive lock on a
//! file in the temp folder: the machine has two cores and TCG uses both.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output};

/// Held while a guest runs (also for tests that start `sideband` themselves); closing the file
/// releases the lock.
pub struct BootLock(#[allow(dead_code)] File);

impl BootLock {
    pub fn take() -> BootLock {
        let f = File::create(std::env::temp_dir().join("sideband-boot.lock"))
            .expect("cannot create the boot lock file");
        // SAFETY: flock on a file descriptor this function owns; it blocks until the lock is ours.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "cannot lock the boot lock file");
        BootLock(f)
    }
}

/// Runs `sideband ARGS --out OUT` (alone on the machine) and echoes what it printed.
pub fn sideband(args: &[&str], out: &Path) -> Output {
    let lock = BootLock::take();
    let output = Command::new(env!("CARGO_BIN_EXE_sideband"))
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("cannot run sideband");
    drop(lock);
    eprintln!(
        "--- sideband {args:?}\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    if output.status.code() == Some(1) {
        keep_failed_run(args, out);
    }
    output
}

/// A failed run's outputs (console log, backend log, recordings) outlive the test's temporary
/// folder, so a flake seen once in CI can be read afterwards: the newest failed run of each
/// command line is kept under `target/tmp/failed-runs/`.
fn keep_failed_run(args: &[&str], out: &Path) {
    let name: String = args
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("failed-runs")
        .join(name);
    let _ = std::fs::remove_dir_all(&keep);
    let copied = std::fs::create_dir_all(&keep).is_ok()
        && Command::new("cp")
            .arg("-a")
            .arg(out.join("."))
            .arg(&keep)
            .status()
            .is_ok_and(|s| s.success());
    if copied {
        eprintln!("--- outputs of this failed run kept in {}", keep.display());
    }
}

/// Bytes as text, for assertions.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The number right after `prefix` in `s` (digits, a sign, a decimal point); panics, quoting `s`,
/// when there is none.
#[allow(dead_code)]
pub fn number_after<T: std::str::FromStr>(s: &str, prefix: &str) -> T {
    let at = s
        .find(prefix)
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{s}"))
        + prefix.len();
    s[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{prefix}` in:\n{s}"))
}
