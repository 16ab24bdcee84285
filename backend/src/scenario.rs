//! The scenario catalogue: `guest-tests/scenarios/NAME.sh`, each with a one-line purpose (its
//! first comment line, `# NAME: purpose`) and, optionally, what it is expected to find. Header
//! lines (the leading comment block only):
//!
//! - `# known-failure: KERNELS: REASON`: a deterministic kernel defect the scenario shows on every
//!   run on those kernels. A run without it fails ("did not reproduce": update or remove the mark).
//! - `# known-race: KERNELS: RATE: REASON`: a defect that shows in some runs only (RATE says how
//!   often it was measured, e.g. `1 in 20`). A run without it passes.
//! - `# expect-failure: KERNELS: REASON`: the kernel is built to fail it (a fixture); a pass fails
//!   the run, because then the harness lost what it was meant to catch.
//! - `#   evidence: ...` (after one of the three marks, for it): what must be seen for a failure
//!   to be that defect. `console REGEX`: a console line matches; `ktap CASE [REGEX]`: the guest
//!   case CASE failed (its reason and diagnostics match); `report KIND [REGEX]`: the kernel
//!   reported KIND (`hung-task`, `warning`, `kasan`, ...; a hung task also explains the stopped
//!   boot) and its lines match. Every evidence line of the mark must be seen, and every part of
//!   the failure must be explained by one of them; otherwise the run fails as any other.
//! - `# expect-report: KIND [REGEX]`: a kernel report the scenario provokes on purpose (e.g.
//!   `xhci-error HC died` when it kills the controller): it is not a failure, on any kernel. It
//!   may appear, it need not (a line that shows in some runs only is declared the same way).
//!   The guest's own log check (`ktap_dmesg_clean` in guest-tests/lib/dmesg.sh) reads these lines
//!   from the running script's header too, so REGEX should be a POSIX extended regex as well.
//! - `# allow-device: KIND...`: device judgements the scenario provokes (`smmu-fault`,
//!   `dsp-ring-error`, `afe-stream`, `hc-error`, `command-error`).
//! - `# adsp-link: mhi` boots the scenario with the ADSP's QRTR link on the emulated MHI function
//!   (the guest's qrtr-mhi) instead of the virtio-serial relay: for scenarios that need the DSP to
//!   answer while the guest's user processes are frozen (system suspend).
//! - `# adsp-apr: glink` serves the DSP's GLINK edge (APR's transport); `# adsp-apr: q6-card` also
//!   makes the guest's sound card the Qualcomm platform card on APR (q6asm, q6adm, q6routing,
//!   q6afe's DAIs, q6usb under `qcom,sm8250-sndcard`) instead of the simple card.
//!
//! KERNELS is a comma-separated list of kernel variants (`stock` for none, `fixture`, `kasan`,
//! ...).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use regex::Regex;

use crate::devices::DeviceProblemKind;
use crate::paths;
use crate::vm::detect::FindingKind;

/// How a marked defect shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarkKind {
    /// `known-failure`: every run.
    Known,
    /// `known-race`: some runs, at the measured rate.
    Race(String),
    /// `expect-failure`: every run, on a kernel built to fail.
    Expected,
}

/// One thing that must be seen for a failure to be the marked defect.
#[derive(Clone, Debug)]
pub enum Evidence {
    /// A console line matches.
    Console(Regex),
    /// The guest's KTAP case failed, its reason and diagnostics matching (when given).
    Ktap {
        /// The case name.
        case: String,
        /// What its reason must match.
        why: Option<Regex>,
    },
    /// A backend request that failed with an answer matching (e.g. `check-counter`'s "the
    /// counter pattern broke"); it explains that failed request.
    Backend(Regex),
    /// A kernel report of this kind (a `FindingKind` name) whose lines match (when given).
    Report {
        /// `hung-task`, `warning`, ...
        kind: String,
        /// What its lines must match.
        pattern: Option<Regex>,
    },
}

impl PartialEq for Evidence {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Evidence {}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = |r: &Option<Regex>| r.as_ref().map_or(String::new(), |r| format!(" /{r}/"));
        match self {
            Evidence::Console(r) => write!(f, "console /{r}/"),
            Evidence::Backend(r) => write!(f, "backend /{r}/"),
            Evidence::Ktap { case, why } => write!(f, "ktap {case}{}", opt(why)),
            Evidence::Report { kind, pattern } => write!(f, "report {kind}{}", opt(pattern)),
        }
    }
}

impl Evidence {
    /// Parses the text after `evidence:`.
    pub fn parse(text: &str) -> Result<Evidence, String> {
        let text = text.trim();
        let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        let regex = |s: &str| Regex::new(s).map_err(|e| format!("bad regex /{s}/: {e}"));
        let optional = |s: &str| match s.is_empty() {
            true => Ok(None),
            false => regex(s).map(Some),
        };
        match word {
            "console" if !rest.is_empty() => Ok(Evidence::Console(regex(rest)?)),
            "backend" if !rest.is_empty() => Ok(Evidence::Backend(regex(rest)?)),
            "ktap" | "report" if !rest.is_empty() => {
                let (name, pat) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let pat = optional(pat.trim())?;
                Ok(match word {
                    "ktap" => Evidence::Ktap {
                        case: name.to_string(),
                        why: pat,
                    },
                    _ => Evidence::Report {
                        kind: name.to_string(),
                        pattern: pat,
                    },
                })
            }
            _ => Err(format!(
                "evidence '{text}' is not `console REGEX`, `backend REGEX`, `ktap CASE [REGEX]` or `report KIND [REGEX]`"
            )),
        }
    }
}

/// What a scenario expects of one kernel variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// How the defect shows.
    pub kind: MarkKind,
    /// Why.
    pub reason: String,
    /// What must be seen (all of it) for a failure to be this defect.
    pub evidence: Vec<Evidence>,
}

impl Expectation {
    /// True for marks that must show on every run (`known-failure`, `expect-failure`).
    pub fn deterministic(&self) -> bool {
        !matches!(self.kind, MarkKind::Race(_))
    }

    /// The header word of the mark.
    pub fn word(&self) -> &'static str {
        match self.kind {
            MarkKind::Known => "known failure",
            MarkKind::Race(_) => "known race",
            MarkKind::Expected => "expected failure",
        }
    }
}

/// A kernel report a scenario provokes on purpose (`# expect-report: KIND [REGEX]`).
#[derive(Clone, Debug)]
pub struct ExpectedReport {
    /// A `FindingKind` name.
    pub kind: String,
    /// What its first line must match.
    pub pattern: Option<Regex>,
}

/// One scenario file's header.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// File stem.
    pub name: String,
    /// The first comment line, without `# NAME: `.
    pub purpose: String,
    /// (variant, expectation) pairs, in file order.
    expectations: Vec<(String, Expectation)>,
    /// `# expect-report:` lines.
    pub expected_reports: Vec<ExpectedReport>,
    /// `# allow-device:` kinds.
    pub allowed_device: Vec<String>,
    /// `# adsp-link: mhi`: the ADSP's link goes over MHI.
    pub adsp_mhi: bool,
    /// `# adsp-apr: glink`: the DSP serves its GLINK edge (APR's transport) too.
    pub adsp_glink: bool,
    /// `# adsp-apr: q6-card`: the GLINK edge, and the guest's sound card is the Qualcomm
    /// platform card (q6asm, q6adm, q6routing, q6afe and q6usb under `qcom,sm8250-sndcard`).
    pub q6_card: bool,
    /// Header lines that do not parse (a scenario with any is refused before it boots).
    pub errors: Vec<String>,
}

impl Scenario {
    /// Parses the header of a scenario script.
    pub fn parse(name: &str, text: &str) -> Scenario {
        let mut s = Scenario {
            name: name.to_string(),
            ..Scenario::default()
        };
        // The variants of the last mark, which its evidence lines extend.
        let mut last_mark: Vec<usize> = Vec::new();
        for line in text.lines().take_while(|l| l.starts_with('#')) {
            let body = line.trim_start_matches('#').trim();
            if s.purpose.is_empty() {
                s.purpose = body
                    .strip_prefix(name)
                    .and_then(|r| r.strip_prefix(':'))
                    .unwrap_or(body)
                    .trim()
                    .to_string();
            }
            if body.strip_prefix("adsp-link:").map(str::trim) == Some("mhi") {
                s.adsp_mhi = true;
            }
            match body.strip_prefix("adsp-apr:").map(str::trim) {
                Some("glink") => s.adsp_glink = true,
                Some("q6-card") => (s.adsp_glink, s.q6_card) = (true, true),
                Some(other) => s.errors.push(format!(
                    "'adsp-apr: {other}': the DSP's APR side is 'glink' or 'q6-card'"
                )),
                None => {}
            }
            if let Some(rest) = body.strip_prefix("evidence:") {
                match (Evidence::parse(rest), last_mark.is_empty()) {
                    (Ok(_), true) => s.errors.push(format!("'{body}' follows no mark")),
                    (Ok(e), false) => {
                        for &i in &last_mark {
                            s.expectations[i].1.evidence.push(e.clone());
                        }
                    }
                    (Err(e), _) => s.errors.push(e),
                }
                continue;
            }
            if let Some(rest) = body.strip_prefix("expect-report:") {
                match Evidence::parse(&format!("report {rest}")) {
                    Ok(Evidence::Report { kind, pattern }) => {
                        s.expected_reports.push(ExpectedReport { kind, pattern })
                    }
                    _ => s
                        .errors
                        .push(format!("'{body}' is not `expect-report: KIND [REGEX]`")),
                }
                continue;
            }
            if let Some(rest) = body.strip_prefix("allow-device:") {
                s.allowed_device
                    .extend(rest.split_whitespace().map(str::to_string));
                continue;
            }
            for key in ["known-failure:", "known-race:", "expect-failure:"] {
                let Some(rest) = body.strip_prefix(key) else {
                    continue;
                };
                let Some((kernels, reason)) = rest.split_once(':') else {
                    s.errors.push(format!("'{body}' has no `KERNELS: REASON`"));
                    continue;
                };
                let (kind, reason) = match key {
                    "known-failure:" => (MarkKind::Known, reason),
                    "expect-failure:" => (MarkKind::Expected, reason),
                    _ => match reason.split_once(':') {
                        Some((rate, why)) => (MarkKind::Race(rate.trim().to_string()), why),
                        None => {
                            s.errors
                                .push(format!("'{body}' has no `KERNELS: RATE: REASON`"));
                            continue;
                        }
                    },
                };
                last_mark.clear();
                for k in kernels.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    last_mark.push(s.expectations.len());
                    s.expectations.push((
                        k.to_string(),
                        Expectation {
                            kind: kind.clone(),
                            reason: reason.trim().to_string(),
                            evidence: Vec::new(),
                        },
                    ));
                }
            }
        }
        let mut kinds: Vec<&str> = s.expected_reports.iter().map(|r| r.kind.as_str()).collect();
        for (_, e) in &s.expectations {
            for ev in &e.evidence {
                if let Evidence::Report { kind, .. } = ev {
                    kinds.push(kind);
                }
            }
        }
        let unknown: Vec<String> = kinds
            .into_iter()
            .filter(|k| FindingKind::from_name(k).is_none())
            .map(|k| {
                format!(
                    "'{k}' is not a kernel report kind ({})",
                    FindingKind::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        s.errors.extend(unknown);
        for word in &s.allowed_device {
            if DeviceProblemKind::from_name(word).is_none() {
                let known: Vec<&str> = DeviceProblemKind::ALL.iter().map(|k| k.name()).collect();
                s.errors.push(format!(
                    "'{word}' is not a device judgement ({})",
                    known.join(", ")
                ));
            }
        }
        for (k, e) in &s.expectations {
            if e.evidence.is_empty() {
                s.errors.push(format!(
                    "the {} on {k} has no `#   evidence:` line (what must be seen for a failure to be it)",
                    e.word()
                ));
            }
        }
        s
    }

    /// The first mark for a kernel variant (`None` is the stock kernel).
    #[cfg(test)]
    pub fn expectation(&self, variant: Option<&str>) -> Option<&Expectation> {
        let v = variant.unwrap_or("stock");
        self.expectations
            .iter()
            .find(|(k, _)| k == v)
            .map(|(_, e)| e)
    }

    /// Every mark for a kernel variant (`None` is the stock kernel): a failure is known when one
    /// of them explains it (a scenario that can show either of two races has two marks).
    pub fn expectations_for(&self, variant: Option<&str>) -> Vec<&Expectation> {
        let v = variant.unwrap_or("stock");
        self.expectations
            .iter()
            .filter(|(k, _)| k == v)
            .map(|(_, e)| e)
            .collect()
    }

    /// Every (variant, expectation) pair, in file order.
    pub fn expectations(&self) -> &[(String, Expectation)] {
        &self.expectations
    }
}

/// Where the scenario scripts are.
pub fn dir() -> PathBuf {
    paths::repo_root().join("guest-tests").join("scenarios")
}

/// Every scenario, sorted by name.
pub fn all() -> Result<Vec<Scenario>> {
    let d = dir();
    let mut out = Vec::new();
    for e in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
        let path = e?.path();
        if path.extension().and_then(|x| x.to_str()) != Some("sh") {
            continue;
        }
        out.push(load(&path)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn load(path: &Path) -> Result<Scenario> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .context("scenario file name is not UTF-8")?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Scenario::parse(name, &text))
}

/// Resolves names and `*` patterns (`fault-*`) to scenarios, in the order given; an unknown name
/// or a pattern matching nothing is an error that lists what exists.
pub fn select(patterns: &[String]) -> Result<Vec<Scenario>> {
    let known = all()?;
    let mut out: Vec<Scenario> = Vec::new();
    for p in patterns {
        let hits: Vec<&Scenario> = known.iter().filter(|s| glob(p, &s.name)).collect();
        if hits.is_empty() {
            let names: Vec<&str> = known.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "no scenario matches '{p}' (guest-tests/scenarios has: {})",
                names.join(", ")
            );
        }
        for s in hits {
            if !s.errors.is_empty() {
                bail!(
                    "scenario {}'s header does not parse:\n  {}",
                    s.name,
                    s.errors.join("\n  ")
                );
            }
            if !out.iter().any(|o| o.name == s.name) {
                out.push(s.clone());
            }
        }
    }
    Ok(out)
}

/// Shell-style match with `*` only.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adsp_apr_names_the_edge_or_the_platform_card_and_nothing_else() {
        let glink = Scenario::parse("a", "# a: x\n# adsp-apr: glink\n");
        assert!(glink.adsp_glink && !glink.q6_card && glink.errors.is_empty());
        let card = Scenario::parse("b", "# b: x\n# adsp-apr: q6-card\n");
        assert!(card.adsp_glink && card.q6_card && card.errors.is_empty());
        let bad = Scenario::parse("c", "# c: x\n# adsp-apr: rpmsg\n");
        assert_eq!(bad.errors.len(), 1, "{:?}", bad.errors);
    }

    #[test]
    fn header_gives_purpose_marks_and_their_evidence_per_variant() {
        let s = Scenario::parse(
            "fault-x",
            "# fault-x: a reset while the DSP streams\n# more words\n\
             # known-failure: stock, kasan: the BYE does not wake the wait\n\
             #   evidence: ktap re_enabled EBUSY\n\
             #   evidence: console internal status -16\n\
             # expect-failure: fixture: the lock is taken twice\n\
             #   evidence: report hung-task usb_offload_put\n\
             # known-race: snd: 1 in 20: URBs swap\n\
             #   evidence: ktap pattern\n\
             # expect-report: warning at drivers/usb\n\
             # allow-device: smmu-fault hc-error\n\
             . /lib.sh\n# known-failure: late: ignored\n",
        );
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.purpose, "a reset while the DSP streams");
        let stock = s.expectation(None).unwrap();
        assert_eq!(stock.kind, MarkKind::Known);
        assert_eq!(stock.reason, "the BYE does not wake the wait");
        assert_eq!(stock.evidence.len(), 2);
        assert_eq!(stock.evidence[0].to_string(), "ktap re_enabled /EBUSY/");
        assert_eq!(s.expectation(Some("kasan")), Some(stock));
        let fx = s.expectation(Some("fixture")).unwrap();
        assert_eq!(fx.kind, MarkKind::Expected);
        assert_eq!(
            fx.evidence.len(),
            1,
            "evidence belongs to the mark above it"
        );
        assert_eq!(
            s.expectation(Some("snd")).unwrap().kind,
            MarkKind::Race("1 in 20".into())
        );
        assert_eq!(s.expected_reports.len(), 1);
        assert_eq!(s.expected_reports[0].kind, "warning");
        assert_eq!(s.allowed_device, ["smmu-fault", "hc-error"]);
        assert!(
            s.expectation(Some("late")).is_none(),
            "only the header counts"
        );
    }

    #[test]
    fn a_mark_without_evidence_or_a_bad_line_is_an_error() {
        let s = Scenario::parse("x", "# x: y\n# known-failure: stock: something\n");
        assert!(
            s.errors[0].contains("has no `#   evidence:` line"),
            "{:?}",
            s.errors
        );
        let s = Scenario::parse("x", "# x: y\n# evidence: console a\n");
        assert!(s.errors[0].contains("follows no mark"), "{:?}", s.errors);
        let s = Scenario::parse(
            "x",
            "# x: y\n# known-failure: stock: z\n#   evidence: console (\n",
        );
        assert!(
            s.errors.iter().any(|e| e.contains("bad regex")),
            "{:?}",
            s.errors
        );
        let s = Scenario::parse("x", "# x: y\n# known-race: stock: no rate\n");
        assert!(s.errors[0].contains("RATE"), "{:?}", s.errors);
    }

    #[test]
    fn expect_report_takes_every_detector_kind_and_refuses_unknown_ones() {
        let s = Scenario::parse(
            "x",
            "# x: y\n# expect-report: xhci-error HC died|Host System Error\n\
             # expect-report: usb-enum-error\n# expect-report: rcu-stall\n\
             # expect-report: refcount\n# expect-report: list-corruption\n\
             # expect-report: ubsan shift-out-of-bounds\n",
        );
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        let kinds: Vec<&str> = s.expected_reports.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "xhci-error",
                "usb-enum-error",
                "rcu-stall",
                "refcount",
                "list-corruption",
                "ubsan"
            ]
        );
        let hc = s.expected_reports[0].pattern.as_ref().unwrap();
        assert!(hc.is_match("[ 9.1] xhci_hcd 0000:00:02.0: HC died; cleaning up"));
        assert!(hc.is_match("[ 9.1] xhci_hcd 0000:00:02.0: WARNING: Host System Error"));
        assert!(s.expected_reports[1].pattern.is_none());
        let s = Scenario::parse("x", "# x: y\n# expect-report: xhci-errors HC died\n");
        assert!(
            s.errors[0].contains("'xhci-errors' is not a kernel report kind")
                && s.errors[0].contains("usb-enum-error"),
            "{:?}",
            s.errors
        );
    }

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob("fault-*", "fault-usbfs-reset"));
        assert!(glob("*reset", "fault-usbfs-reset"));
        assert!(glob("f*u*t", "fault-unplug-reset"));
        assert!(!glob("fault-*", "offload-playback"));
        assert!(glob("smoke", "smoke") && !glob("smoke", "smoked"));
    }

    #[test]
    fn the_repository_scenarios_all_have_a_purpose_and_unknown_names_list_them() {
        let all = all().unwrap();
        assert!(all.len() > 10);
        for s in &all {
            assert!(!s.purpose.is_empty(), "{} has no purpose line", s.name);
            assert!(s.errors.is_empty(), "{}: {:?}", s.name, s.errors);
        }
        let faults = select(&["fault-*".into(), "smoke".into()]).unwrap();
        assert!(faults
            .iter()
            .all(|s| s.name.starts_with("fault-") || s.name == "smoke"));
        let e = select(&["no-such-scenario".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no scenario matches 'no-such-scenario'") && e.contains("smoke"));
    }
}
