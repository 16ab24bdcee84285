//! Finds kernel bug reports in the guest console: panics, oopses, WARN/BUG, lockdep reports, hung
//! tasks, KASAN, sleeping in atomic context, soft and workqueue lockups.
//!
//! Only kernel log lines count (they start with the `[    1.234567]` timestamp of
//! CONFIG_PRINTK_TIME), so a scenario that prints "WARNING:" in its own output is not a finding.
//! `guest-tests/lib/dmesg.sh` applies the same rules inside the guest.

use std::fmt;

/// What kind of kernel report a console line starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// `Kernel panic - not syncing`.
    Panic,
    /// An oops: `Unable to handle kernel ...` or `Internal error: Oops`.
    Oops,
    /// `BUG: ...` or `kernel BUG at ...` not covered by a more precise kind.
    Bug,
    /// `WARNING: CPU: ...` (WARN_ON and friends).
    Warning,
    /// A lockdep or RCU-lockdep report (`WARNING: possible recursive locking detected`, ...).
    Lockdep,
    /// `INFO: task ... blocked for more than N seconds.`
    HungTask,
    /// `BUG: KASAN: ...`.
    Kasan,
    /// `BUG: sleeping function called from invalid context`.
    AtomicSleep,
    /// `watchdog: BUG: soft lockup`.
    SoftLockup,
    /// `BUG: workqueue lockup`.
    WorkqueueLockup,
}

impl FindingKind {
    /// Every kind, for lookups by name.
    pub const ALL: &'static [FindingKind] = &[
        FindingKind::Panic,
        FindingKind::Oops,
        FindingKind::Bug,
        FindingKind::Warning,
        FindingKind::Lockdep,
        FindingKind::HungTask,
        FindingKind::Kasan,
        FindingKind::AtomicSleep,
        FindingKind::SoftLockup,
        FindingKind::WorkqueueLockup,
    ];

    /// The stable short name scenario headers use (`# expect-report: KIND`, `report KIND`).
    pub fn name(&self) -> &'static str {
        match self {
            FindingKind::Panic => "panic",
            FindingKind::Oops => "oops",
            FindingKind::Bug => "bug",
            FindingKind::Warning => "warning",
            FindingKind::Lockdep => "lockdep",
            FindingKind::HungTask => "hung-task",
            FindingKind::Kasan => "kasan",
            FindingKind::AtomicSleep => "atomic-sleep",
            FindingKind::SoftLockup => "soft-lockup",
            FindingKind::WorkqueueLockup => "workqueue-lockup",
        }
    }

    /// The kind with this short name.
    pub fn from_name(name: &str) -> Option<FindingKind> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::Panic => "kernel panic",
            FindingKind::Oops => "kernel oops",
            FindingKind::Bug => "kernel BUG",
            FindingKind::Warning => "kernel WARNING",
            FindingKind::Lockdep => "lockdep report",
            FindingKind::HungTask => "hung task",
            FindingKind::Kasan => "KASAN report",
            FindingKind::AtomicSleep => "sleep in atomic context",
            FindingKind::SoftLockup => "soft lockup",
            FindingKind::WorkqueueLockup => "workqueue lockup",
        })
    }
}

/// How lockdep and RCU-lockdep reports continue after "WARNING: " (kernel/locking/lockdep.c,
/// kernel/rcu/update.c).
const LOCKDEP_HEADERS: &[&str] = &[
    "possible recursive locking",
    "possible circular locking",
    "inconsistent lock state",
    "possible irq lock inversion",
    "suspicious RCU usage",
    "bad unlock balance",
    "bad contention detected",
    "lock held when returning to user space",
    "held lock freed",
    "Nested lock was not taken",
    "held locks",
    "lock held by",
    "HARDIRQ-",
    "SOFTIRQ-",
    "BPF-",
    "Illegal lock usage",
    "Lock usage error",
];

/// Splits a kernel console line into its timestamp and message; `None` for non-kernel lines.
pub fn kernel_message(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (stamp, msg) = rest.split_once(']')?;
    let stamp = stamp.trim();
    let (secs, frac) = stamp.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(secs) && digits(frac)).then(|| msg.strip_prefix(' ').unwrap_or(msg))
}

/// Classifies a kernel console line; `None` when it does not start a report.
pub fn classify(line: &str) -> Option<FindingKind> {
    let msg = kernel_message(line)?;
    // Lines such as "watchdog: BUG: soft lockup" carry a subsystem prefix.
    let body = msg.trim_start();
    if body.starts_with("Kernel panic - not syncing") {
        Some(FindingKind::Panic)
    } else if body.contains("BUG: KASAN:") {
        Some(FindingKind::Kasan)
    } else if body.starts_with("BUG: sleeping function called from invalid context") {
        Some(FindingKind::AtomicSleep)
    } else if body.contains("BUG: soft lockup") {
        Some(FindingKind::SoftLockup)
    } else if body.starts_with("BUG: workqueue lockup") {
        Some(FindingKind::WorkqueueLockup)
    } else if body.starts_with("INFO: task ") && body.contains(" blocked for more than ") {
        Some(FindingKind::HungTask)
    } else if body.starts_with("Unable to handle kernel")
        || body.starts_with("Internal error: Oops")
    {
        Some(FindingKind::Oops)
    } else if let Some(what) = body.strip_prefix("WARNING: ") {
        // WARN() prints "WARNING: CPU: 0 PID: 1 at file:line func" (7.2) or
        // "WARNING: file:line at func, CPU#0: comm/pid" (7.3); lockdep and RCU-lockdep print
        // "WARNING: possible circular locking dependency detected" and similar headers.
        if LOCKDEP_HEADERS.iter().any(|h| what.starts_with(h)) {
            Some(FindingKind::Lockdep)
        } else {
            Some(FindingKind::Warning)
        }
    } else if body.contains("DEBUG_LOCKS_WARN_ON") {
        Some(FindingKind::Lockdep)
    } else if body.starts_with("BUG: ") || body.starts_with("kernel BUG at") {
        Some(FindingKind::Bug)
    } else {
        None
    }
}

/// One kernel report found on the console, with the lines that followed it as evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What was reported.
    pub kind: FindingKind,
    /// 1-based console line number of the report's first line.
    pub line_no: usize,
    /// The report: its first line and up to [`EVIDENCE_LINES`] kernel lines after it.
    pub evidence: Vec<String>,
    /// How many later reports had the same first line (the hung-task detector repeats itself).
    pub repeats: usize,
}

/// How many kernel lines after a report's first line are kept as its evidence.
pub const EVIDENCE_LINES: usize = 40;
/// At most this many findings are kept per boot (a storm of warnings must not eat memory).
pub const MAX_FINDINGS: usize = 32;

/// Feeds on console lines and collects [`Finding`]s.
#[derive(Debug, Default)]
pub struct Detector {
    findings: Vec<Finding>,
    lines_seen: usize,
    dropped: usize,
}

impl Detector {
    /// Looks at the next console line.
    pub fn feed(&mut self, line: &str) {
        self.lines_seen += 1;
        let is_kernel = kernel_message(line).is_some();
        if is_kernel {
            // Reports from several CPUs interleave on the console: every finding of the last
            // EVIDENCE_LINES lines takes the line, not only the newest one. A repeat of an
            // earlier report is not a finding of its own and gathers nothing.
            let now = self.lines_seen;
            for f in self
                .findings
                .iter_mut()
                .rev()
                .take_while(|f| now - f.line_no <= EVIDENCE_LINES)
            {
                if f.evidence.len() <= EVIDENCE_LINES && classify(line).is_none() {
                    f.evidence.push(line.to_string());
                }
            }
        }
        if let Some(kind) = classify(line) {
            let msg = kernel_message(line).unwrap_or(line);
            let same = |f: &Finding| {
                f.kind == kind && f.evidence.first().and_then(|l| kernel_message(l)) == Some(msg)
            };
            if let Some(earlier) = self.findings.iter_mut().find(|f| same(f)) {
                earlier.repeats += 1;
                return;
            }
            if self.findings.len() < MAX_FINDINGS {
                self.findings.push(Finding {
                    kind,
                    line_no: self.lines_seen,
                    evidence: vec![line.to_string()],
                    repeats: 0,
                });
                return;
            }
            self.dropped += 1;
        }
    }

    /// The findings so far, in console order.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Findings past [`MAX_FINDINGS`] that were counted but not kept.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// True once the kernel has reported a hung task.
    pub fn hung(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.kind == FindingKind::HungTask)
    }

    /// True once the kernel has panicked.
    pub fn panicked(&self) -> bool {
        self.findings.iter().any(|f| f.kind == FindingKind::Panic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timestamped_kernel_lines_count() {
        assert_eq!(kernel_message("[    1.234567] hello"), Some("hello"));
        assert_eq!(kernel_message("[12345.000001] x"), Some("x"));
        assert_eq!(kernel_message("# dmesg: WARNING: CPU: 0"), None);
        assert_eq!(kernel_message("[ok] WARNING: CPU: 0"), None);
        assert_eq!(classify("WARNING: CPU: 0 PID: 1 at x"), None);
    }

    #[test]
    fn classifies_real_report_headers() {
        let cases = [
            ("[    3.1] Kernel panic - not syncing: lkdtm PANIC", FindingKind::Panic),
            ("[    3.1] WARNING: CPU: 1 PID: 93 at drivers/misc/lkdtm/bugs.c:110 lkdtm_WARNING+0x8/0x10 [lkdtm]", FindingKind::Warning),
            ("[    3.2] WARNING: drivers/misc/lkdtm/bugs.c:164 at lkdtm_WARNING+0x1c/0x24 [lkdtm], CPU#1: sh/68", FindingKind::Warning),
            ("[    3.1] WARNING: possible recursive locking detected", FindingKind::Lockdep),
            ("[    3.1] WARNING: suspicious RCU usage", FindingKind::Lockdep),
            ("[    3.1] WARNING: inconsistent lock state", FindingKind::Lockdep),
            ("[    3.1] WARNING: possible circular locking dependency detected", FindingKind::Lockdep),
            ("[   44.2] INFO: task sh:101 blocked for more than 2 seconds.", FindingKind::HungTask),
            ("[    3.1] BUG: KASAN: slab-out-of-bounds in qmi_decode+0x1/0x2", FindingKind::Kasan),
            ("[    3.1] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580", FindingKind::AtomicSleep),
            ("[    3.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:1]", FindingKind::SoftLockup),
            ("[    3.1] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!", FindingKind::WorkqueueLockup),
            ("[    3.1] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008", FindingKind::Oops),
            ("[    3.1] Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP", FindingKind::Oops),
            ("[    3.1] kernel BUG at mm/slub.c:100!", FindingKind::Bug),
            ("[    3.1] BUG: scheduling while atomic: swapper/0/0/0x00000002", FindingKind::Bug),
        ];
        for (line, kind) in cases {
            assert_eq!(classify(line), Some(kind), "{line}");
        }
    }

    #[test]
    fn ordinary_boot_lines_are_not_findings() {
        for line in [
            "[    0.000000] rcu: \tRCU lockdep checking is enabled.",
            "[    0.100000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
            "[    2.000000] usbcore: registered new interface driver snd-usb-audio",
            "[    2.000000] platform usbd: deferred probe pending",
        ] {
            assert_eq!(classify(line), None, "{line}");
        }
    }

    #[test]
    fn detector_keeps_bounded_evidence() {
        let mut d = Detector::default();
        d.feed("[    1.0] boot");
        d.feed("[    2.0] INFO: task sh:101 blocked for more than 2 seconds.");
        for i in 0..100 {
            d.feed(&format!("[    2.{i}] frame {i}"));
        }
        d.feed("user space line");
        assert_eq!(d.findings().len(), 1);
        let f = &d.findings()[0];
        assert_eq!(f.kind, FindingKind::HungTask);
        assert_eq!(f.line_no, 2);
        assert_eq!(f.evidence.len(), EVIDENCE_LINES + 1);
        assert!(!d.panicked());
    }

    #[test]
    fn interleaved_reports_each_keep_the_lines_that_follow() {
        let mut d = Detector::default();
        d.feed("[    2.6] WARNING: possible circular locking dependency detected");
        d.feed("[    2.6] BUG: workqueue leaked atomic, lock or RCU: pr/ttyAMA0[29]");
        d.feed("[    2.7] modprobe/70 is trying to acquire lock:");
        d.feed("[    2.7] (sideband_fixture_a){+.+.}-{4:4}, at: sideband_lockdep_abba_init+0x58/0x1000");
        let f = d.findings();
        assert_eq!(f.len(), 2);
        assert!(
            f[0].evidence
                .iter()
                .any(|l| l.contains("sideband_fixture_a")),
            "{:?}",
            f[0]
        );
        assert!(
            f[1].evidence
                .iter()
                .any(|l| l.contains("sideband_fixture_a")),
            "{:?}",
            f[1]
        );
        assert_eq!(
            f[0].evidence.len(),
            3,
            "the other report's header is not evidence"
        );
    }

    #[test]
    fn detector_caps_findings() {
        let mut d = Detector::default();
        for i in 0..(MAX_FINDINGS + 5) {
            d.feed(&format!("[    {i}.0] WARNING: CPU: 0 PID: 1 at a.c:1 f"));
        }
        assert_eq!(d.findings().len(), 1, "identical reports fold into one");
        assert_eq!(d.findings()[0].repeats, MAX_FINDINGS + 4);
        let mut d = Detector::default();
        for i in 0..(MAX_FINDINGS + 5) {
            d.feed(&format!("[    {i}.0] WARNING: CPU: 0 PID: 1 at a.c:{i} f"));
        }
        assert_eq!(d.findings().len(), MAX_FINDINGS);
        assert_eq!(d.dropped(), 5);
    }
}
