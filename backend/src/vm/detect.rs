//! Finds kernel bug reports in the guest console: panics, oopses, WARN/BUG, lockdep reports, hung
//! tasks, KASAN, sleeping in atomic context, soft and workqueue lockups, RCU stalls, the xHCI
//! driver's own errors, USB enumeration errors, refcount_t and list corruption reports, UBSAN.
//!
//! Only kernel log lines count (they carry the `[    1.234567]` timestamp of CONFIG_PRINTK_TIME,
//! at the start of the console line or, when the kernel cut into a user-space line, after that
//! line's text), so a scenario that prints "WARNING:" in its own output is not a finding.
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
    /// `rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:`, `... self-detected stall on CPU`.
    RcuStall,
    /// The xHCI driver's own errors (`xhci_err`/`xhci_warn`: `xhci_hcd 0000:00:03.0: ERROR ...`,
    /// `WARN ...`, `HC died; cleaning up`, `xHCI host controller not responding, assume dead`).
    XhciError,
    /// USB core enumeration errors (`usb 1-1: device descriptor read/64, error -71`, `usb
    /// usb1-port1: unable to enumerate USB device`, ...).
    UsbEnumError,
    /// `refcount_t: underflow; use-after-free.` and the other refcount_t saturation reports (the
    /// WARN that follows belongs to it).
    Refcount,
    /// `list_add corruption.`, `list_del corruption,` (CONFIG_DEBUG_LIST; the WARN or BUG that
    /// follows belongs to it).
    ListCorruption,
    /// `UBSAN: array-index-out-of-bounds in ...` and the other undefined-behaviour reports.
    Ubsan,
    /// `Initramfs unpacking failed: ...`: the guest booted a damaged archive, so whatever fails
    /// later (a missing module or file) is the harness's fault, and the run says so first.
    Initramfs,
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
        FindingKind::RcuStall,
        FindingKind::XhciError,
        FindingKind::UsbEnumError,
        FindingKind::Refcount,
        FindingKind::ListCorruption,
        FindingKind::Ubsan,
        FindingKind::Initramfs,
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
            FindingKind::RcuStall => "rcu-stall",
            FindingKind::XhciError => "xhci-error",
            FindingKind::UsbEnumError => "usb-enum-error",
            FindingKind::Refcount => "refcount",
            FindingKind::ListCorruption => "list-corruption",
            FindingKind::Ubsan => "ubsan",
            FindingKind::Initramfs => "initramfs",
        }
    }

    /// Whether the report prints its own line and then a WARN or BUG trap for its stack
    /// (`refcount_t: ...` then `WARNING: lib/refcount.c:28 ...`).
    fn leads_a_trap(self) -> bool {
        matches!(self, FindingKind::Refcount | FindingKind::ListCorruption)
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
            FindingKind::RcuStall => "RCU stall",
            FindingKind::XhciError => "xHCI driver error",
            FindingKind::UsbEnumError => "USB enumeration error",
            FindingKind::Refcount => "refcount_t report",
            FindingKind::ListCorruption => "list corruption",
            FindingKind::Ubsan => "UBSAN report",
            FindingKind::Initramfs => "initramfs unpacking failed",
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

/// How the xHCI driver's own error and warning lines continue after `xhci_hcd DEVICE: `
/// (`xhci_err`/`xhci_warn` in drivers/usb/host/xhci*.c, and usbcore's `usb_hc_died`). Most of
/// its errors start with `ERROR`, `ERR:` or `WARN`; these are the ones that do not. Informational
/// lines (`xHCI Host Controller`, `new USB bus registered ...`, `hcc params ...`) match none.
const XHCI_ERRORS: &[&str] = &[
    "ERROR",
    "ERR:",
    "WARN",
    "Setup ERROR",
    "HC died",
    "Host System Error",
    "Host Controller Error",
    "xHCI host controller not responding",
    "xHCI host not responding",
    "xHC is not running",
    "Host halt failed",
    "Host controller not halted",
    "Host took too long to start",
    "Host controller not accessible",
    "Host not accessible",
    "Abort failed to stop command ring",
    "Can't queue command, xHC not accessible",
    "Controller not ready at resume",
    "xHC error in resume",
    "Timeout while waiting for",
    "Timeout waiting for reset device command",
    "Event TRB for slot",
    "Mismatch between completed Set TR Deq Ptr command",
    "Ring is an endless link TRB loop",
    "Missing link TRB",
    "Unknown completion code",
    "Error while assigning device slot ID",
];

/// USB core's enumeration errors after `usb 1-1: `, `usb usb1-port1: ` or `hub 1-0:1.0: `
/// (drivers/usb/core/hub.c, config.c, generic.c).
const USB_ENUM_ERRORS: &[&str] = &[
    "device descriptor read/",
    "device not accepting address",
    "unable to enumerate USB device",
    "can't set config #",
    "can't read configurations",
    "unable to read config index",
    "Cannot enable. Maybe the USB cable is bad?",
    "Device not responding to setup address",
];

/// True for an error line of the xHCI driver (`xhci_hcd` on PCI, `xhci-hcd` on a platform bus).
fn xhci_error(body: &str) -> bool {
    device_message(body, &["xhci_hcd ", "xhci-hcd "], XHCI_ERRORS)
}

/// True for a USB core enumeration error.
fn usb_enum_error(body: &str) -> bool {
    device_message(body, &["usb ", "hub "], USB_ENUM_ERRORS)
}

/// True when `body` is a `dev_*` line (`DRIVER DEVICE: MESSAGE`) of one of `drivers` whose
/// message starts with one of `messages`.
fn device_message(body: &str, drivers: &[&str], messages: &[&str]) -> bool {
    let Some(rest) = drivers.iter().find_map(|d| body.strip_prefix(d)) else {
        return false;
    };
    let Some((_device, what)) = rest.split_once(": ") else {
        return false;
    };
    messages.iter().any(|m| what.starts_with(m))
}

/// True for an RCU CPU or tasks stall report (`rcu: INFO: rcu_preempt detected stalls on
/// CPUs/tasks:`, `rcu: INFO: rcu_sched self-detected stall on CPU`, `... detected expedited
/// stalls ...`, `INFO: rcu_tasks detected stalls on tasks:`).
fn rcu_stall(body: &str) -> bool {
    let what = body.strip_prefix("rcu: ").unwrap_or(body);
    what.starts_with("INFO: rcu") && what.contains(" stall")
}

/// The message of a kernel console line (after its `[    1.234567]` timestamp); `None` for
/// non-kernel lines. The kernel writes to the same serial port as user space without waiting for
/// its lines to end, so a kernel line can start in the middle of a user-space one
/// (`ok 2 kmsg_written[    4.845945] xhci_hcd ...`): the first timestamp in the line counts.
pub fn kernel_message(line: &str) -> Option<&str> {
    line.match_indices('[')
        .find_map(|(at, _)| stamped_message(&line[at..]))
}

/// The message after a timestamp at the very start of `text`.
fn stamped_message(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('[')?;
    let (stamp, msg) = rest.split_once(']')?;
    let stamp = stamp.trim_start();
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
    } else if rcu_stall(body) {
        Some(FindingKind::RcuStall)
    } else if body.starts_with("refcount_t: ") {
        Some(FindingKind::Refcount)
    } else if body.starts_with("list_add corruption")
        || body.starts_with("list_del corruption")
        || body.starts_with("list_add double add")
    {
        Some(FindingKind::ListCorruption)
    } else if body.starts_with("UBSAN: ") {
        Some(FindingKind::Ubsan)
    } else if body.starts_with("Initramfs unpacking failed") {
        Some(FindingKind::Initramfs)
    } else if xhci_error(body) {
        Some(FindingKind::XhciError)
    } else if usb_enum_error(body) {
        Some(FindingKind::UsbEnumError)
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
/// How many console lines after a refcount_t or list corruption line its WARN or BUG (and that
/// BUG's oops) may come and still belong to it.
pub const TRAP_WINDOW: usize = 4;
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
            // refcount_t and list corruption reports print their own line first and then WARN
            // (or BUG, and the oops of that BUG): that trap is part of the report, not another.
            if matches!(
                kind,
                FindingKind::Warning | FindingKind::Bug | FindingKind::Oops
            ) {
                let now = self.lines_seen;
                if let Some(lead) = self.findings.last_mut().filter(|f| {
                    f.kind.leads_a_trap()
                        && now - f.line_no <= TRAP_WINDOW
                        && f.evidence.len() <= EVIDENCE_LINES
                }) {
                    lead.evidence.push(line.to_string());
                    return;
                }
            }
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
        assert_eq!(
            classify("# WARNING: [1] [x.1] [1.] [.1] [1.2 ] WARNING: CPU: 0"),
            None
        );
    }

    #[test]
    fn a_kernel_line_that_starts_inside_a_user_space_line_counts() {
        // Seen on the console: the kernel's line began before the scenario's echo ended.
        let line = "ok 2 kmsg_written[    4.845945] xhci_hcd 0000:00:03.0: ERROR Transfer event for disabled endpoint slot 1 ep 2";
        assert_eq!(
            kernel_message(line),
            Some("xhci_hcd 0000:00:03.0: ERROR Transfer event for disabled endpoint slot 1 ep 2")
        );
        assert_eq!(classify(line), Some(FindingKind::XhciError));
        assert_eq!(
            classify("# x [a] [  12.5] refcount_t: underflow; use-after-free."),
            Some(FindingKind::Refcount)
        );
    }

    /// Real report headers, at least one of every kind.
    const SAMPLES: &[(&str, FindingKind)] = &[
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
        ("[    3.1] Unable to handle kernel paging request at virtual address dead000000000108", FindingKind::Oops),
        ("[    3.1] Unable to handle kernel execute from non-executable memory at virtual address ffff000003c2a000", FindingKind::Oops),
        ("[    3.1] Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP", FindingKind::Oops),
        ("[    3.1] kernel BUG at mm/slub.c:100!", FindingKind::Bug),
        ("[    3.1] BUG: scheduling while atomic: swapper/0/0/0x00000002", FindingKind::Bug),
        ("[   60.1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", FindingKind::RcuStall),
        ("[   60.1] rcu: INFO: rcu_sched self-detected stall on CPU", FindingKind::RcuStall),
        ("[   60.1] rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-... } 5252 jiffies s: 73 root: 0x2/.", FindingKind::RcuStall),
        ("[   60.1] INFO: rcu_tasks detected stalls on tasks:", FindingKind::RcuStall),
        ("[    9.1] xhci-hcd xhci-hcd.0.auto: ERROR Transfer event for disabled endpoint slot 1 ep 2", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: ERROR Transfer event for disabled endpoint slot 1 ep 2", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: ERROR unknown event type 37", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: WARN Event TRB for slot 1 ep 2 with no TDs queued?", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: Event TRB for slot 1 ep 2 with no TDs queued", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: WARN Set TR Deq Ptr cmd failed due to incorrect slot or ep state.", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: xHCI host controller not responding, assume dead", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: HC died; cleaning up", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: Host System Error", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: WARNING: Host System Error", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: WARNING: Host Controller Error", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: Host halt failed, -19", FindingKind::XhciError),
        ("[    9.1] xhci_hcd 0000:00:02.0: Timeout while waiting for setup device command", FindingKind::XhciError),
        ("[    5.1] usb 1-1: device descriptor read/64, error -71", FindingKind::UsbEnumError),
        ("[    5.1] usb 1-1: device descriptor read/8, error -110", FindingKind::UsbEnumError),
        ("[    5.1] usb 1-1: device not accepting address 2, error -71", FindingKind::UsbEnumError),
        ("[    5.1] usb usb1-port1: unable to enumerate USB device", FindingKind::UsbEnumError),
        ("[    5.1] usb 1-1: can't set config #1, error -71", FindingKind::UsbEnumError),
        ("[    5.1] usb 1-1: can't read configurations, error -71", FindingKind::UsbEnumError),
        ("[    5.1] usb usb1-port1: Cannot enable. Maybe the USB cable is bad?", FindingKind::UsbEnumError),
        ("[    7.1] refcount_t: underflow; use-after-free.", FindingKind::Refcount),
        ("[    7.1] refcount_t: saturated; leaking memory.", FindingKind::Refcount),
        ("[    7.1] refcount_t: addition on 0; use-after-free.", FindingKind::Refcount),
        ("[    7.1] refcount_t: decrement hit 0; leaking memory.", FindingKind::Refcount),
        ("[    7.1] list_add corruption. prev->next should be next (ffff000004f8a0c8), but was 0000000000000000. (prev=ffff000004f8a0c8).", FindingKind::ListCorruption),
        ("[    7.1] list_del corruption, ffff000004f8a0c8->next is LIST_POISON1 (dead000000000100)", FindingKind::ListCorruption),
        ("[    7.1] list_del corruption. prev->next should be ffff000004f8a0c8, but was ffff000004f8a000. (prev=ffff000004f8a0d0)", FindingKind::ListCorruption),
        ("[    7.1] list_add double add: new=ffff000004f8a0c8, prev=ffff000004f8a0c8, next=ffff000004f8a0d0.", FindingKind::ListCorruption),
        ("[    0.9] Initramfs unpacking failed: no cpio magic", FindingKind::Initramfs),
        ("[    7.1] UBSAN: array-index-out-of-bounds in sound/usb/qcom/qc_audio_offload.c:812:23", FindingKind::Ubsan),
        ("[    7.1] UBSAN: shift-out-of-bounds in drivers/usb/host/xhci-sideband.c:100:9", FindingKind::Ubsan),
    ];

    #[test]
    fn classifies_real_report_headers() {
        for &(line, kind) in SAMPLES {
            assert_eq!(classify(line), Some(kind), "{line}");
        }
    }

    #[test]
    fn every_kind_round_trips_its_name_and_has_a_classified_sample() {
        let mut names: Vec<&str> = FindingKind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FindingKind::ALL.len(), "names are unique");
        for &kind in FindingKind::ALL {
            assert_eq!(FindingKind::from_name(kind.name()), Some(kind));
            assert!(
                SAMPLES
                    .iter()
                    .any(|&(l, k)| k == kind && classify(l) == Some(kind)),
                "no sample line for {}",
                kind.name()
            );
        }
        assert_eq!(FindingKind::from_name("no-such-kind"), None);
    }

    /// ALL is complete: adding a kind without listing it in ALL fails here (the match has no
    /// wildcard, so a new kind must get an arm, and the arm checks ALL).
    #[test]
    fn all_lists_every_kind() {
        for &(_, kind) in SAMPLES {
            let listed = match kind {
                FindingKind::Panic
                | FindingKind::Oops
                | FindingKind::Bug
                | FindingKind::Warning
                | FindingKind::Lockdep
                | FindingKind::HungTask
                | FindingKind::Kasan
                | FindingKind::AtomicSleep
                | FindingKind::SoftLockup
                | FindingKind::WorkqueueLockup
                | FindingKind::RcuStall
                | FindingKind::XhciError
                | FindingKind::UsbEnumError
                | FindingKind::Refcount
                | FindingKind::ListCorruption
                | FindingKind::Ubsan
                | FindingKind::Initramfs => FindingKind::ALL.contains(&kind),
            };
            assert!(listed, "{kind:?} missing from FindingKind::ALL");
        }
        assert_eq!(FindingKind::ALL.len(), 17);
    }

    #[test]
    fn ordinary_boot_lines_are_not_findings() {
        for line in [
            "[    0.000000] rcu: \tRCU lockdep checking is enabled.",
            "[    0.100000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
            "[    2.000000] usbcore: registered new interface driver snd-usb-audio",
            "[    2.000000] platform usbd: deferred probe pending",
            "[    0.000000] rcu: Hierarchical RCU implementation.",
            "[    0.000000] rcu: RCU calculated value of scheduler-enlistment delay is 25 jiffies.",
            "[    0.300000] rcu: Hierarchical SRCU implementation.",
            "[    1.000000] xhci_hcd 0000:00:02.0: xHCI Host Controller",
            "[    1.000000] xhci_hcd 0000:00:02.0: new USB bus registered, assigned bus number 1",
            "[    1.000000] xhci_hcd 0000:00:02.0: hcc params 0x00087001 hci version 0x100 quirks 0x0000000000000010",
            "[    1.000000] xhci_hcd 0000:00:02.0: Host supports USB 3.0 SuperSpeed",
            "[    1.000000] xhci_hcd 0000:00:02.0: enabling device (0000 -> 0002)",
            "[    1.500000] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
            "[    1.500000] usb 1-1: New USB device found, idVendor=1209, idProduct=0001, bcdDevice= 1.00",
            "[    5.000000] usb 1-1: reset high-speed USB device number 2 using xhci_hcd",
            "[    5.000000] usb 1-2: USB disconnect, device number 3",
            "[    5.000000] usb usb1-port1: attempt power cycle",
            "[    5.000000] hub 1-0:1.0: USB hub found",
            "[    1.000000] usbcore: registered new device driver usb",
            "[    6.000000] ------------[ cut here ]------------",
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
    fn the_warn_or_bug_after_a_refcount_or_list_report_belongs_to_it() {
        let mut d = Detector::default();
        d.feed("[    7.0] ------------[ cut here ]------------");
        d.feed("[    7.0] refcount_t: underflow; use-after-free.");
        d.feed("[    7.0] WARNING: lib/refcount.c:28 at refcount_warn_saturate+0x9c/0x13c, CPU#0: kworker/0:1/40");
        d.feed("[    7.0] Modules linked in: snd_usb_audio_qmi");
        assert_eq!(d.findings().len(), 1, "{:?}", d.findings());
        let f = &d.findings()[0];
        assert_eq!(f.kind, FindingKind::Refcount);
        assert_eq!(f.evidence.len(), 3, "{f:?}");
        assert!(f.evidence[1].contains("refcount_warn_saturate"), "{f:?}");

        let mut d = Detector::default();
        d.feed("[    7.0] list_del corruption, ffff000004f8a0c8->next is NULL");
        d.feed("[    7.0] kernel BUG at lib/list_debug.c:53!");
        d.feed("[    7.0] Internal error: Oops - BUG: 00000000f2000800 [#1]  SMP");
        assert_eq!(d.findings().len(), 1, "{:?}", d.findings());
        assert_eq!(d.findings()[0].kind, FindingKind::ListCorruption);
        assert_eq!(d.findings()[0].evidence.len(), 3);

        // A WARNING well after it, or after another kind, is a finding of its own.
        let mut d = Detector::default();
        d.feed("[    7.0] refcount_t: saturated; leaking memory.");
        for i in 0..TRAP_WINDOW {
            d.feed(&format!("[    7.{i}] frame {i}"));
        }
        d.feed("[    8.0] WARNING: CPU: 0 PID: 1 at a.c:1 f");
        d.feed("[    9.0] UBSAN: shift-out-of-bounds in a.c:1:2");
        d.feed("[    9.1] WARNING: CPU: 0 PID: 1 at b.c:1 g");
        let kinds: Vec<FindingKind> = d.findings().iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FindingKind::Refcount,
                FindingKind::Warning,
                FindingKind::Ubsan,
                FindingKind::Warning
            ]
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
