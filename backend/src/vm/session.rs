//! One boot of the guest: start QEMU, watch the console, stop at power-off, panic, timeout or a
//! failure of the backend itself (`crate::fatal`).
//!
//! The guest init (images/initramfs/init) prints `SIDEBAND-READY` once the offload modules are
//! loaded and `SIDEBAND-DONE rc=N` after the scenario; every wait here has a deadline, and QEMU is
//! killed when one passes.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::detect::{Detector, Finding};
use super::machine::{Machine, Sockets};
use crate::image::Image;
use crate::report::ktap;

/// Marker the guest init prints when the offload modules are loaded.
pub const READY_MARKER: &str = "SIDEBAND-READY";
/// Prefix of a request from a guest scenario to the backend (`SIDEBAND-CTL unplug 2`): the
/// console is the scenario's way to ask for a hardware event at the right moment.
pub const CONTROL_MARKER: &str = "SIDEBAND-CTL ";
/// Prefix of a request the scenario waits on (`SIDEBAND-ASK stream-start`): the backend types
/// its answer on the guest console's input as one [`ANSWER_MARKER`] line, `ok TEXT` or `fail TEXT`.
pub const ASK_MARKER: &str = "SIDEBAND-ASK ";
/// Prefix of the answer line the backend types on the guest console.
pub const ANSWER_MARKER: &str = "SIDEBAND-ANSWER";
/// Longest answer typed to the guest (a canonical-mode TTY line holds 4095 bytes).
const ANSWER_MAX: usize = 1000;
/// Marker the guest init prints after the scenario, followed by ` rc=N`.
pub const DONE_MARKER: &str = "SIDEBAND-DONE rc=";
/// How long QEMU gets to exit after the guest finished or panicked.
const EXIT_GRACE: Duration = Duration::from_secs(15);
/// How long past a boot's own deadline (and its exit grace) the watchdog waits before it ends a
/// process whose console thread is stuck inside a request (a lock-order deadlock in the backend,
/// say), which the console loop itself can never notice.
const WATCHDOG_GRACE: Duration = Duration::from_secs(30);
/// How long a deadlocked guest may go on printing (the rest of the hung-task reports and the
/// held-locks list follow within a second or two).
const DEADLOCK_GRACE: Duration = Duration::from_secs(5);
/// Console lines kept for the failure message.
const TAIL_LINES: usize = 40;
/// How often the boot loop looks for a failure of the backend (see `crate::fatal`) while the
/// console is quiet: a dead backend ends the boot this soon, not at the run's deadline.
const BACKEND_CHECK: Duration = Duration::from_millis(200);

/// What to boot and how long to wait.
#[derive(Clone, Debug)]
pub struct BootSpec {
    /// The machine.
    pub machine: Machine,
    /// Sockets of the devices the backend serves for this boot.
    pub sockets: Sockets,
    /// The device tree to boot with.
    pub dtb: PathBuf,
    /// Scenario in guest-tests/scenarios to run; `None` boots to a shell.
    pub scenario: Option<String>,
    /// Extra kernel command-line words.
    pub append: Vec<String>,
    /// Deadline for the ready marker, from QEMU's start.
    pub ready_timeout: Duration,
    /// Deadline for the scenario to finish, from the ready marker.
    pub run_timeout: Duration,
    /// Where the full console goes.
    pub console_log: PathBuf,
    /// Copy console lines to our stderr as they arrive.
    pub echo: bool,
    /// More QEMU words (the TCG plugin's `-plugin ...`).
    pub qemu_args: Vec<String>,
}

/// The kernel command line for a boot.
pub fn kernel_cmdline(scenario: Option<&str>, append: &[String]) -> String {
    let mut words = vec![
        "console=ttyAMA0".to_string(),
        "panic=-1".into(),
        "nokaslr".into(),
        "printk.devkmsg=on".into(),
    ];
    if let Some(s) = scenario {
        words.push(format!("sideband.scenario={s}"));
    }
    words.extend(append.iter().cloned());
    words.join(" ")
}

/// The full QEMU command for a boot.
pub fn qemu_command(image: &Image, spec: &BootSpec, serial: &str) -> Command {
    let mut cmd = Command::new(&image.qemu);
    cmd.args(spec.machine.qemu_args(None))
        .args(spec.sockets.qemu_args())
        .args(["-serial", serial, "-monitor", "none", "-no-reboot"])
        .arg("-kernel")
        .arg(image.kernel())
        .arg("-initrd")
        .arg(&image.initramfs)
        .arg("-dtb")
        .arg(&spec.dtb)
        .arg("-append")
        .arg(kernel_cmdline(spec.scenario.as_deref(), &spec.append))
        .args(&spec.qemu_args);
    // Debugging aid: extra QEMU words, e.g. SIDEBAND_QEMU_ARGS="-trace vfio_user*".
    if let Ok(extra) = std::env::var("SIDEBAND_QEMU_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    cmd
}

/// How a boot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The guest printed the done marker and powered off.
    Finished,
    /// The kernel panicked.
    Panicked,
    /// No ready marker within the deadline.
    ReadyTimeout(Duration),
    /// The scenario did not finish within the deadline.
    RunTimeout(Duration),
    /// QEMU exited before the guest finished (a QEMU error, or a guest that powered off early).
    QemuExited(Option<i32>),
    /// The kernel reported a hung task; the guest was stopped a grace period later.
    Deadlocked,
    /// A backend thread panicked or found a lock poisoned (`crate::fatal`); the guest was
    /// stopped at once. The failure: message, thread and place.
    BackendFailed(String),
}

/// Everything a boot produced.
#[derive(Debug)]
pub struct BootOutcome {
    /// How it ended.
    pub end: End,
    /// Host time from QEMU's start to the ready marker.
    pub ready_after: Option<Duration>,
    /// The scenario's exit status, from the done marker.
    pub scenario_rc: Option<i32>,
    /// The scenario's KTAP.
    pub ktap: ktap::Report,
    /// Kernel reports seen on the console.
    pub findings: Vec<Finding>,
    /// Kernel reports past the cap, counted only.
    pub findings_dropped: usize,
    /// The last console lines.
    pub tail: Vec<String>,
    /// Host time of the whole boot.
    pub wall: Duration,
    /// The console log file.
    pub console_log: PathBuf,
}

impl BootOutcome {
    /// Why the boot failed, with the relevant console lines; `None` when it passed.
    pub fn failure(&self) -> Option<String> {
        let mut reasons = Vec::new();
        match &self.end {
            End::Finished => {}
            End::Panicked => reasons.push("the guest kernel panicked".to_string()),
            End::ReadyTimeout(t) => reasons.push(format!(
                "no ready marker within {}s (the guest did not finish booting)",
                t.as_secs()
            )),
            End::RunTimeout(t) => reasons.push(format!(
                "the scenario did not finish within {}s",
                t.as_secs()
            )),
            End::Deadlocked => reasons.push(format!(
                "the guest deadlocked (a hung-task report); stopped {}s after it",
                DEADLOCK_GRACE.as_secs()
            )),
            End::QemuExited(code) => reasons.push(format!(
                "QEMU exited (code {}) before the guest finished",
                code.map_or("none".into(), |c| c.to_string())
            )),
            End::BackendFailed(why) => reasons.push(format!("the backend failed: {why}")),
        }
        for (i, f) in self.findings.iter().enumerate() {
            let again = if f.repeats > 0 {
                format!(" (and {} more like it)", f.repeats)
            } else {
                String::new()
            };
            reasons.push(format!(
                "{} ({}) at console line {}{again}:",
                f.kind,
                f.kind.name(),
                f.line_no
            ));
            // The first reports carry their evidence; later ones just their first line.
            let lines = match i {
                0 => super::detect::EVIDENCE_LINES,
                1 | 2 => 25,
                _ => 1,
            };
            reasons.extend(f.evidence.iter().take(lines).map(|l| format!("    {l}")));
        }
        if self.findings_dropped > 0 {
            reasons.push(format!(
                "... and {} more kernel report(s)",
                self.findings_dropped
            ));
        }
        if self.end == End::Finished {
            if let Some(p) = self.ktap.structural_problem() {
                reasons.push(p);
            }
            for c in &self.ktap.cases {
                if let ktap::Status::Fail(why) = &c.status {
                    reasons.push(format!("guest test {} failed: {why}", c.name));
                }
            }
            if self.scenario_rc.unwrap_or(0) != 0 && reasons.is_empty() {
                reasons.push(format!(
                    "the scenario exited with {}",
                    self.scenario_rc.unwrap_or(-1)
                ));
            }
        }
        if reasons.is_empty() {
            return None;
        }
        // A dead backend's console tail shows what the guest did then, kernel reports or not.
        let evidence_shown =
            !self.findings.is_empty() && !matches!(self.end, End::BackendFailed(_));
        if !evidence_shown && self.end != End::Finished {
            reasons.push("last console lines:".into());
            reasons.extend(self.tail.iter().map(|l| format!("    {l}")));
        }
        reasons.push(format!("full console: {}", self.console_log.display()));
        Some(reasons.join("\n"))
    }
}

enum Event {
    Line(String),
    Closed,
}

fn pump<R: Read + Send + 'static>(src: R, prefix: &'static str, tx: mpsc::Sender<Event>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if tx.send(Event::Line(format!("{prefix}{line}"))).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Event::Closed);
    });
}

fn wait_with_deadline(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// A request a scenario printed on the console; its text is crate::request's grammar.
#[derive(Clone, Copy, Debug)]
pub struct ConsoleRequest<'a> {
    /// The request, as printed after the marker.
    pub text: &'a str,
    /// Printed after [`ASK_MARKER`]: the scenario waits for the answer and judges a failure.
    pub asked: bool,
}

/// Ends the process if the boot it guards is still running `limit` after it started: the one
/// wait in a boot that the console loop cannot bound itself is a request it runs inline that
/// never returns. Kills QEMU, says so on stderr and in the console log, exits 1. Dropping the
/// returned sender (the boot ended) stops the watchdog.
fn watchdog(limit: Duration, qemu: u32, log: std::path::PathBuf) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("boot-watchdog".into())
        .spawn(move || {
            if rx.recv_timeout(limit) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            let note = format!(
                "[sideband] the backend is stuck: the boot is still running {} s after it started, past every deadline; a request never returned (a deadlock in the backend?). Ending the run; console log: {}",
                limit.as_secs(),
                log.display()
            );
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
                let _ = writeln!(f, "{note}");
            }
            eprintln!("{note}");
            // SAFETY: kill(2) with a pid we started; at worst the process is already gone.
            unsafe { libc::kill(qemu as libc::pid_t, libc::SIGKILL) };
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        log::warn!("no boot watchdog: {e}");
    }
    tx
}

/// Boots the guest and watches it until it ends; the console goes to `spec.console_log`.
/// Requests a scenario prints after [`CONTROL_MARKER`] or [`ASK_MARKER`] go to `control` (with
/// QEMU's pid), whose answer (or error) is written to the console log; the answer to an asked
/// request is also typed on the guest console. A failure in
/// `crate::fatal`'s record ends the boot within [`BACKEND_CHECK`] (the caller clears the record
/// when its run starts).
pub fn boot(
    image: &Image,
    spec: &BootSpec,
    control: &mut dyn FnMut(ConsoleRequest<'_>, u32) -> Result<String>,
) -> Result<BootOutcome> {
    if let Some(dir) = spec.console_log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut log = File::create(&spec.console_log)
        .with_context(|| format!("cannot create {}", spec.console_log.display()))?;
    let mut cmd = qemu_command(image, spec, "stdio");
    writeln!(log, "# {:?}", cmd)?;
    let start = Instant::now();
    // QEMU must not outlive us: if sideband is killed (CI timeout), the guest goes too.
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", image.qemu.display()))?;
    let mut console_in = child.stdin.take().context("no QEMU stdin")?;
    let _watchdog = watchdog(
        spec.ready_timeout + spec.run_timeout + EXIT_GRACE + WATCHDOG_GRACE,
        child.id(),
        spec.console_log.clone(),
    );
    let (tx, rx) = mpsc::channel();
    pump(
        child.stdout.take().context("no QEMU stdout")?,
        "",
        tx.clone(),
    );
    pump(
        child.stderr.take().context("no QEMU stderr")?,
        "[qemu] ",
        tx,
    );

    let mut detector = Detector::default();
    let mut report = ktap::Report::default();
    let mut tail = std::collections::VecDeque::with_capacity(TAIL_LINES);
    let mut ready_after = None;
    let mut scenario_rc = None;
    let mut closed = 0;
    let mut end = None;
    let mut ending_since: Option<Instant> = None;
    while closed < 2 {
        if let Some(f) = crate::fatal::first() {
            // The devices are broken: whatever the guest does now proves nothing. Stop it at once.
            let note = format!("[sideband] the backend failed: {f}; stopping the guest");
            writeln!(log, "{note}")?;
            if spec.echo {
                eprintln!("{note}");
            }
            end = Some(End::BackendFailed(f.to_string()));
            let _ = child.kill();
            break;
        }
        let now = Instant::now();
        let deadline = match (ending_since, ready_after) {
            (Some(t), _) if end == Some(End::Deadlocked) => t + DEADLOCK_GRACE,
            (Some(t), _) => t + EXIT_GRACE,
            (None, None) => start + spec.ready_timeout,
            (None, Some(r)) => start + r + spec.run_timeout,
        };
        let wait = deadline.saturating_duration_since(now);
        let event = match rx.recv_timeout(wait.min(BACKEND_CHECK)) {
            Ok(e) => e,
            Err(mpsc::RecvTimeoutError::Timeout) if wait > BACKEND_CHECK => continue,
            Err(_) => {
                if ending_since.is_none() {
                    end = Some(match ready_after {
                        None => End::ReadyTimeout(spec.ready_timeout),
                        Some(_) => End::RunTimeout(spec.run_timeout),
                    });
                }
                let _ = child.kill();
                break;
            }
        };
        let line = match event {
            Event::Line(l) => l,
            Event::Closed => {
                closed += 1;
                continue;
            }
        };
        writeln!(log, "{line}")?;
        if spec.echo {
            eprintln!("{line}");
        }
        detector.feed(&line);
        report.feed(&line);
        let request = line
            .split_once(CONTROL_MARKER)
            .map(|(_, r)| (r.trim(), false))
            .or_else(|| line.split_once(ASK_MARKER).map(|(_, r)| (r.trim(), true)));
        if let Some((request, asked)) = request {
            // A request that panics fails the boot (the next turn of the loop), not the process.
            let text = ConsoleRequest {
                text: request,
                asked,
            };
            let result = crate::fatal::contain(|| control(text, child.id()))
                .unwrap_or_else(|| Err(anyhow::anyhow!("the backend panicked answering it")));
            let answer = match &result {
                Ok(a) => format!("[sideband] {request}: {a}"),
                Err(e) => format!("[sideband] {request}: failed: {e:#}"),
            };
            writeln!(log, "{answer}")?;
            if spec.echo {
                eprintln!("{answer}");
            }
            if asked {
                // A guest that stopped reading must not stall the console loop: the pipe holds
                // 64 KiB, far more than the answers of one scenario that gave up waiting.
                let typed = answer_line(&result);
                if let Err(e) = console_in.write_all(typed.as_bytes()) {
                    writeln!(log, "[sideband] cannot type the answer to the guest: {e}")?;
                }
            }
        }
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        if ready_after.is_none() && line.contains(READY_MARKER) {
            ready_after = Some(start.elapsed());
        }
        if let Some(pos) = line.find(DONE_MARKER) {
            let rc = &line[pos + DONE_MARKER.len()..];
            scenario_rc = rc.split_whitespace().next().and_then(|v| v.parse().ok());
            end.get_or_insert(End::Finished);
            ending_since.get_or_insert_with(Instant::now);
        }
        if detector.hung() && end.is_none() {
            // Whatever the scenario waits for will not come; the report's lock list and
            // blocker lines follow within the grace period.
            end = Some(End::Deadlocked);
            ending_since.get_or_insert_with(Instant::now);
        }
        if detector.panicked() {
            end.get_or_insert(End::Panicked);
            ending_since.get_or_insert_with(Instant::now);
        }
    }
    let status = wait_with_deadline(&mut child, EXIT_GRACE);
    // A backend failure in the boot's last moments (the guest finished as it happened) counts.
    if let Some(f) = crate::fatal::first() {
        end = Some(End::BackendFailed(f.to_string()));
    }
    let end = end.unwrap_or(End::QemuExited(status.and_then(|s| s.code())));
    log.flush()?;
    Ok(BootOutcome {
        end,
        ready_after,
        scenario_rc,
        ktap: report,
        findings: detector.findings().to_vec(),
        findings_dropped: detector.dropped(),
        tail: tail.into_iter().collect(),
        wall: start.elapsed(),
        console_log: spec.console_log.clone(),
    })
}

/// The line typed on the guest console for an answered `SIDEBAND-ASK` request.
fn answer_line(result: &Result<String>) -> String {
    let (status, text) = match result {
        Ok(a) => ("ok", a.clone()),
        Err(e) => ("fail", format!("{e:#}")),
    };
    let mut text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.len() > ANSWER_MAX {
        let mut cut = ANSWER_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    format!("{ANSWER_MARKER} {status} {text}\n")
}

/// Boots with the console on our terminal (interactive shell when no scenario is given).
pub fn boot_interactive(image: &Image, spec: &BootSpec) -> Result<ExitStatus> {
    let status = qemu_command(image, spec, "mon:stdio")
        .status()
        .with_context(|| format!("cannot start {}", image.qemu.display()))?;
    Ok(status)
}

/// Default output location for a boot's console log.
pub fn console_log_path(out_dir: &Path, name: &str) -> PathBuf {
    out_dir.join(format!("{name}.console.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_names_scenario_and_keeps_extra_words() {
        let c = kernel_cmdline(Some("smoke"), &["sideband.stall=ready".into()]);
        assert_eq!(
            c,
            "console=ttyAMA0 panic=-1 nokaslr printk.devkmsg=on sideband.scenario=smoke sideband.stall=ready"
        );
        assert!(!kernel_cmdline(None, &[]).contains("scenario"));
    }

    fn outcome(end: End) -> BootOutcome {
        BootOutcome {
            end,
            ready_after: None,
            scenario_rc: Some(0),
            ktap: ktap::Report::default(),
            findings: vec![],
            findings_dropped: 0,
            tail: vec!["last line".into()],
            wall: Duration::ZERO,
            console_log: "/o/x.log".into(),
        }
    }

    #[test]
    fn answers_are_one_bounded_line() {
        assert_eq!(
            answer_line(&Ok("port 1 unplugged".into())),
            "SIDEBAND-ANSWER ok port 1 unplugged\n"
        );
        let long = answer_line(&Err(anyhow::anyhow!("{}\nsecond", "é".repeat(900))));
        assert!(long.starts_with("SIDEBAND-ANSWER fail éé"));
        assert_eq!(long.matches('\n').count(), 1, "one line");
        assert!(long.len() <= ANSWER_MAX + 30);
    }

    #[test]
    fn timeouts_fail_with_console_tail() {
        let f = outcome(End::ReadyTimeout(Duration::from_secs(60)))
            .failure()
            .unwrap();
        assert!(f.contains("no ready marker within 60s"));
        assert!(f.contains("    last line"));
        assert!(f.contains("/o/x.log"));
    }

    #[test]
    fn a_backend_failure_names_the_panic_and_keeps_the_console_tail() {
        let mut o = outcome(End::BackendFailed(
            "boom (thread xhci-clock at backend/src/devices/xhci.rs:9)".into(),
        ));
        o.findings.push(Finding {
            kind: super::super::detect::FindingKind::Warning,
            line_no: 7,
            evidence: vec!["[ 1.0] WARNING: CPU: 0 PID: 1 at x".into()],
            repeats: 0,
        });
        let f = o.failure().unwrap();
        assert!(
            f.starts_with(
                "the backend failed: boom (thread xhci-clock at backend/src/devices/xhci.rs:9)\n"
            ),
            "{f}"
        );
        assert!(
            f.contains("kernel WARNING (warning) at console line 7"),
            "{f}"
        );
        assert!(f.contains("last console lines:\n    last line"), "{f}");
    }

    #[test]
    fn finished_without_ktap_fails_and_with_passing_ktap_passes() {
        let mut o = outcome(End::Finished);
        assert!(o.failure().unwrap().contains("printed no KTAP"));
        for l in ["KTAP version 1", "1..1", "ok 1 a"] {
            o.ktap.feed(l);
        }
        assert_eq!(o.failure(), None);
        o.findings.push(Finding {
            kind: super::super::detect::FindingKind::Warning,
            line_no: 7,
            evidence: vec!["[ 1.0] WARNING: CPU: 0 PID: 1 at x".into()],
            repeats: 0,
        });
        let f = o.failure().unwrap();
        assert!(
            f.contains("kernel WARNING (warning) at console line 7"),
            "{f}"
        );
    }
}
