//! Judging one scenario run against its header: which parts of a failure a mark explains, and
//! whether a marked defect showed with the evidence it names.
//!
//! A run's failure is split into parts (how the boot ended, each kernel report, each failed
//! guest case, failed backend requests, the devices' own judgements). A mark (`known-failure`,
//! `known-race`, `expect-failure`) turns a failure into a known one only when every evidence line
//! of the mark was seen and every part is explained by one of them; anything else fails.

use crate::devices::DeviceProblem;
use crate::report::ktap;
use crate::scenario::{Evidence, Expectation, MarkKind};
use crate::vm::detect::Finding;
use crate::vm::session::{BootOutcome, End};

/// A scenario's result judged against its expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Passed (a known race that did not show this time passes too).
    Pass,
    /// Failed, and no mark explains it.
    Fail,
    /// Failed as its header says, with the evidence it names (the reason and the evidence).
    KnownFailure(String),
    /// A deterministic `known-failure` that did not show: the mark is stale.
    NotReproduced(String),
    /// An `expect-failure` that passed: the harness missed what the kernel was built to show.
    MissedExpected(String),
}

impl Verdict {
    /// Whether this verdict fails the run.
    pub fn fails_run(&self) -> bool {
        matches!(
            self,
            Verdict::Fail | Verdict::NotReproduced(_) | Verdict::MissedExpected(_)
        )
    }

    /// A short word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::KnownFailure(_) => "known-fail",
            Verdict::NotReproduced(_) => "FAIL (known failure did not reproduce)",
            Verdict::MissedExpected(_) => "FAIL (expected to fail, passed)",
        }
    }
}

/// Everything a judgement reads of one run.
pub struct Run<'a> {
    /// The kernel it ran on, for messages.
    pub kernel: &'a str,
    /// The boot (its findings without the ones the header expects).
    pub outcome: &'a BootOutcome,
    /// Backend requests that failed without the scenario asking for a failure.
    pub backend_failures: &'a [String],
    /// Device judgements the header does not allow.
    pub device_problems: &'a [DeviceProblem],
    /// The whole console, for `console` evidence.
    pub console: &'a [String],
}

/// One part of a failure.
enum Part<'a> {
    End(&'a End),
    Report(&'a Finding),
    DroppedReports(usize),
    Structure(String),
    Case(&'a ktap::Case),
    ExitStatus(i32),
    Backend(&'a str),
    Device(&'a DeviceProblem),
}

impl Part<'_> {
    fn describe(&self) -> String {
        match self {
            Part::End(e) => format!("the boot ended: {e:?}"),
            Part::Report(f) => format!(
                "{} ({})",
                f.kind,
                f.evidence.first().map_or("", |l| l.as_str())
            ),
            Part::DroppedReports(n) => format!("{n} kernel report(s) past the cap"),
            Part::Structure(s) => s.clone(),
            Part::Case(c) => format!("guest case {} failed", c.name),
            Part::ExitStatus(rc) => format!("the scenario exited with {rc}"),
            Part::Backend(b) => b.to_string(),
            Part::Device(d) => format!("{}: {}", d.kind.name(), d.detail),
        }
    }
}

fn parts<'a>(run: &Run<'a>) -> Vec<Part<'a>> {
    let o = run.outcome;
    let mut out = Vec::new();
    if o.end != End::Finished {
        out.push(Part::End(&o.end));
    }
    out.extend(o.findings.iter().map(Part::Report));
    if o.findings_dropped > 0 {
        out.push(Part::DroppedReports(o.findings_dropped));
    }
    if o.end == End::Finished {
        if let Some(p) = o.ktap.structural_problem() {
            out.push(Part::Structure(p));
        }
        let failed: Vec<&ktap::Case> = o
            .ktap
            .cases
            .iter()
            .filter(|c| matches!(c.status, ktap::Status::Fail(_)))
            .collect();
        if failed.is_empty() && o.scenario_rc.unwrap_or(0) != 0 {
            out.push(Part::ExitStatus(o.scenario_rc.unwrap_or(-1)));
        }
        out.extend(failed.into_iter().map(Part::Case));
    }
    out.extend(run.backend_failures.iter().map(|b| Part::Backend(b)));
    out.extend(run.device_problems.iter().map(Part::Device));
    out
}

/// Whether `evidence` was seen in the run.
fn seen(evidence: &Evidence, run: &Run<'_>) -> bool {
    match evidence {
        Evidence::Console(re) => run.console.iter().any(|l| re.is_match(l)),
        Evidence::Backend(re) => run.backend_failures.iter().any(|b| re.is_match(b)),
        Evidence::Ktap { case, why } => run.outcome.ktap.cases.iter().any(|c| {
            let ktap::Status::Fail(reason) = &c.status else {
                return false;
            };
            c.name == *case
                && why.as_ref().is_none_or(|re| {
                    re.is_match(reason) || c.diagnostics.iter().any(|d| re.is_match(d))
                })
        }),
        Evidence::Report { kind, pattern } => run.outcome.findings.iter().any(|f| {
            f.kind.name() == kind
                && pattern
                    .as_ref()
                    .is_none_or(|re| f.evidence.iter().any(|l| re.is_match(l)))
        }),
    }
}

/// Whether a part is explained by evidence that was seen.
fn explains(evidence: &Evidence, part: &Part<'_>) -> bool {
    match (evidence, part) {
        (Evidence::Ktap { case, .. }, Part::Case(c)) => c.name == *case,
        (Evidence::Backend(re), Part::Backend(b)) => re.is_match(b),
        (Evidence::Report { kind, .. }, Part::Report(f)) => f.kind.name() == kind,
        (Evidence::Report { kind, .. }, Part::End(End::Deadlocked)) => kind == "hung-task",
        (Evidence::Report { kind, .. }, Part::End(End::Panicked)) => kind == "panic",
        _ => false,
    }
}

/// How one mark measures up against a failed run: the evidence it names that was not seen, and
/// the parts of the failure its seen evidence does not explain.
fn measure(mark: &Expectation, run: &Run<'_>, parts: &[Part<'_>]) -> (Vec<String>, Vec<String>) {
    let seen_evidence: Vec<&Evidence> = mark.evidence.iter().filter(|e| seen(e, run)).collect();
    let missing = mark
        .evidence
        .iter()
        .filter(|e| !seen(e, run))
        .map(|e| e.to_string())
        .collect();
    let unexplained = parts
        .iter()
        .filter(|p| !seen_evidence.iter().any(|e| explains(e, p)))
        .map(Part::describe)
        .collect();
    (missing, unexplained)
}

/// The verdict, and what to add to the run's failure text (why no mark applied, or that a
/// deterministic one did not reproduce). `marks` are the header's marks for this kernel.
pub fn judge(run: &Run<'_>, marks: &[Expectation]) -> (Verdict, Option<String>) {
    let parts = parts(run);
    if parts.is_empty() {
        let Some(mark) = marks.iter().find(|m| m.deterministic()) else {
            return (Verdict::Pass, None);
        };
        let msg = format!(
            "{} did not reproduce on {}: update or remove the mark ({})",
            mark.word(),
            run.kernel,
            mark.reason
        );
        return match mark.kind {
            MarkKind::Expected => (Verdict::MissedExpected(msg.clone()), Some(msg)),
            _ => (Verdict::NotReproduced(msg.clone()), Some(msg)),
        };
    }
    let mut why_not = Vec::new();
    for mark in marks {
        let (missing, unexplained) = measure(mark, run, &parts);
        if missing.is_empty() && unexplained.is_empty() {
            let shown: Vec<String> = mark.evidence.iter().map(|e| e.to_string()).collect();
            return (
                Verdict::KnownFailure(format!(
                    "{} [evidence seen: {}]",
                    mark.reason,
                    shown.join("; ")
                )),
                None,
            );
        }
        let mut why = format!(
            "this is not the {} on {} ({}):",
            mark.word(),
            run.kernel,
            mark.reason
        );
        if !missing.is_empty() {
            why += &format!(" its evidence was not seen: {};", missing.join("; "));
        }
        if !unexplained.is_empty() {
            why += &format!(
                " what failed is not explained by its evidence: {}",
                unexplained.join("; ")
            );
        }
        why_not.push(why.trim_end_matches(';').to_string());
    }
    match why_not.is_empty() {
        true => (Verdict::Fail, None),
        false => (Verdict::Fail, Some(why_not.join("\n"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::vm::detect::Detector;

    fn outcome(end: End, ktap_text: &str, console: &[&str]) -> BootOutcome {
        let mut d = Detector::default();
        for l in console {
            d.feed(l);
        }
        BootOutcome {
            end,
            ready_after: None,
            scenario_rc: Some(0),
            ktap: {
                let mut r = ktap::Report::default();
                ktap_text.lines().for_each(|l| r.feed(l));
                r
            },
            findings: d.findings().to_vec(),
            findings_dropped: 0,
            tail: Vec::new(),
            wall: std::time::Duration::ZERO,
            console_log: "console.log".into(),
        }
    }

    fn judged(header: &str, variant: Option<&str>, o: &BootOutcome, console: &[&str]) -> Verdict {
        let s = Scenario::parse("x", header);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        let console: Vec<String> = console.iter().map(|l| l.to_string()).collect();
        let run = Run {
            kernel: "7.3",
            outcome: o,
            backend_failures: &[],
            device_problems: &[],
            console: &console,
        };
        let marks: Vec<Expectation> = s.expectations_for(variant).into_iter().cloned().collect();
        judge(&run, &marks).0
    }

    const BUSY: &str = "# x: y\n# known-failure: stock: re-enable gets EBUSY\n\
                        #   evidence: ktap re_enabled EBUSY\n#   evidence: console internal status -16\n";
    const TWO_CASES: &str =
        "KTAP version 1\n1..2\nok 1 started\n# re_enabled: status -EBUSY\nnot ok 2 re_enabled\n";

    #[test]
    fn a_known_failure_with_all_its_evidence_is_known() {
        let console = ["[ 1.0] x", "dsp> internal status -16 (-EBUSY)"];
        let o = outcome(End::Finished, TWO_CASES, &console);
        assert!(matches!(
            judged(BUSY, None, &o, &console),
            Verdict::KnownFailure(_)
        ));
    }

    #[test]
    fn missing_evidence_or_an_unexplained_part_fails() {
        let o = outcome(End::Finished, TWO_CASES, &[]);
        assert_eq!(
            judged(BUSY, None, &o, &[]),
            Verdict::Fail,
            "no console line"
        );
        let console = [
            "dsp> internal status -16",
            "[ 2.0] WARNING: CPU: 0 PID: 1 at a.c:1 f",
        ];
        let o = outcome(End::Finished, TWO_CASES, &console);
        assert_eq!(
            judged(BUSY, None, &o, &console),
            Verdict::Fail,
            "a WARNING too"
        );
        let o = outcome(
            End::RunTimeout(std::time::Duration::from_secs(5)),
            TWO_CASES,
            &console[..1],
        );
        assert_eq!(
            judged(BUSY, None, &o, &console[..1]),
            Verdict::Fail,
            "a timeout"
        );
        let other =
            "KTAP version 1\n1..2\nnot ok 1 started\n# re_enabled: -EBUSY\nnot ok 2 re_enabled\n";
        let o = outcome(End::Finished, other, &console[..1]);
        assert_eq!(
            judged(BUSY, None, &o, &console[..1]),
            Verdict::Fail,
            "another case"
        );
    }

    #[test]
    fn a_deterministic_mark_that_does_not_show_fails_a_race_passes() {
        let ok = "KTAP version 1\n1..1\nok 1 re_enabled\n";
        let o = outcome(End::Finished, ok, &[]);
        assert!(matches!(
            judged(BUSY, None, &o, &[]),
            Verdict::NotReproduced(_)
        ));
        assert!(judged(BUSY, None, &o, &[]).fails_run());
        let race = "# x: y\n# known-race: stock: 1 in 20: swap\n#   evidence: ktap re_enabled\n";
        assert_eq!(judged(race, None, &o, &[]), Verdict::Pass);
        let o = outcome(End::Finished, TWO_CASES, &[]);
        assert!(matches!(
            judged(race, None, &o, &[]),
            Verdict::KnownFailure(_)
        ));
        let fx = "# x: y\n# expect-failure: stock: hangs\n#   evidence: report hung-task\n";
        let o = outcome(End::Finished, ok, &[]);
        assert!(matches!(
            judged(fx, None, &o, &[]),
            Verdict::MissedExpected(_)
        ));
    }

    #[test]
    fn one_of_two_marks_is_enough() {
        let two = "# x: y\n# known-race: stock: 1 in 15: swap\n#   evidence: backend counter pattern broke\n\
                   # known-race: stock: 1 in 20: zeros\n#   evidence: ktap capture_counter_bit_exact\n";
        let cap = "KTAP version 1\n1..1\nnot ok 1 capture_counter_bit_exact\n";
        let o = outcome(End::Finished, cap, &[]);
        assert!(matches!(
            judged(two, None, &o, &[]),
            Verdict::KnownFailure(_)
        ));
        let s = Scenario::parse("x", two);
        let marks: Vec<Expectation> = s.expectations_for(None).into_iter().cloned().collect();
        let ok = outcome(End::Finished, "KTAP version 1\n1..1\nok 1 a\n", &[]);
        let failures = [
            "backend request `check-counter 96000` failed: the counter pattern broke at 5"
                .to_string(),
        ];
        let run = Run {
            kernel: "7.3",
            outcome: &ok,
            backend_failures: &failures,
            device_problems: &[],
            console: &[],
        };
        assert!(matches!(judge(&run, &marks).0, Verdict::KnownFailure(_)));
        let other = ["backend request `stream-play 5` failed: timeout".to_string()];
        let run = Run {
            backend_failures: &other,
            ..run
        };
        assert_eq!(judge(&run, &marks).0, Verdict::Fail);
    }

    #[test]
    fn the_new_detector_kinds_are_parts_a_mark_must_explain() {
        let hse = "# x: y\n# known-failure: stock: the DSP is not told\n\
                   #   evidence: ktap dsp_told_after_hse\n";
        let ktap = "KTAP version 1\n1..1\nnot ok 1 dsp_told_after_hse\n";
        let console = [
            "[  9.0] xhci_hcd 0000:00:02.0: WARNING: Host System Error",
            "[  9.5] usb 1-1: device descriptor read/64, error -71",
        ];
        let o = outcome(End::Finished, ktap, &console);
        let kinds: Vec<&str> = o.findings.iter().map(|f| f.kind.name()).collect();
        assert_eq!(kinds, ["xhci-error", "usb-enum-error"]);
        assert_eq!(
            judged(hse, None, &o, &console),
            Verdict::Fail,
            "the kernel's reports are not explained by a ktap case"
        );
        let explained = "# x: y\n# known-failure: stock: the DSP is not told\n\
                         #   evidence: ktap dsp_told_after_hse\n\
                         #   evidence: report xhci-error Host System Error\n\
                         #   evidence: report usb-enum-error\n";
        assert!(matches!(
            judged(explained, None, &o, &console),
            Verdict::KnownFailure(_)
        ));
    }

    #[test]
    fn a_hung_task_explains_the_deadlocked_end() {
        let fx = "# x: y\n# expect-failure: fixture: AB-BA\n#   evidence: report hung-task usb_offload_put\n";
        let console = [
            "[ 30.0] INFO: task kworker/0:1:40 blocked for more than 15 seconds.",
            "[ 30.1]  usb_offload_put+0x20/0x80",
        ];
        let o = outcome(End::Deadlocked, "", &console);
        assert!(matches!(
            judged(fx, Some("fixture"), &o, &console),
            Verdict::KnownFailure(_)
        ));
        let other = [
            "[ 30.0] INFO: task sh:40 blocked for more than 15 seconds.",
            "[ 30.1]  msleep+0x1/0x2",
        ];
        let o = outcome(End::Deadlocked, "", &other);
        assert_eq!(judged(fx, Some("fixture"), &o, &other), Verdict::Fail);
        let o = outcome(End::Panicked, "", &console);
        assert_eq!(
            judged(fx, Some("fixture"), &o, &console),
            Verdict::Fail,
            "a panic is not a hang"
        );
    }
}
