//! KTAP: parsing what guest scenarios print, and printing the host's own results.
//! Format: <https://docs.kernel.org/dev-tools/ktap.html>.

use std::fmt::Write as _;

/// The result of one test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// `ok`.
    Pass,
    /// `not ok`, with the reason if one was given.
    Fail(String),
    /// `ok ... # SKIP reason`.
    Skip(String),
}

/// One test case with the diagnostic lines that came before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// The test's name.
    pub name: String,
    /// Its result.
    pub status: Status,
    /// `# ...` lines printed between the previous result and this one.
    pub diagnostics: Vec<String>,
}

/// What a scenario reported in KTAP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// True once a `KTAP version` line was seen.
    pub started: bool,
    /// The plan (`1..N`), if printed.
    pub planned: Option<usize>,
    /// The results in order.
    pub cases: Vec<Case>,
    pending_diagnostics: Vec<String>,
}

impl Report {
    /// Takes one console line; lines that are not KTAP (kernel messages, other output) are ignored.
    pub fn feed(&mut self, line: &str) {
        let line = line.trim_end();
        if line.starts_with("KTAP version ") || line.starts_with("TAP version ") {
            self.started = true;
            return;
        }
        if !self.started {
            return;
        }
        if let Some(n) = line.strip_prefix("1..") {
            self.planned = n.trim().parse().ok();
        } else if let Some(d) = line.strip_prefix("# ") {
            self.pending_diagnostics.push(d.to_string());
        } else if let Some(rest) = line.strip_prefix("not ok ") {
            let (name, _) = split_directive(rest);
            let reason = self
                .pending_diagnostics
                .last()
                .cloned()
                .unwrap_or_else(|| "not ok".into());
            self.push(name, Status::Fail(reason));
        } else if let Some(rest) = line.strip_prefix("ok ") {
            let (name, directive) = split_directive(rest);
            let status = match directive.and_then(|d| d.strip_prefix("SKIP")) {
                Some(reason) => Status::Skip(reason.trim().to_string()),
                None => Status::Pass,
            };
            self.push(name, status);
        }
    }

    fn push(&mut self, name: String, status: Status) {
        self.cases.push(Case {
            name,
            status,
            diagnostics: std::mem::take(&mut self.pending_diagnostics),
        });
    }

    /// Problems with the report as a whole: no KTAP at all, or fewer results than planned.
    pub fn structural_problem(&self) -> Option<String> {
        if !self.started {
            return Some("the scenario printed no KTAP".into());
        }
        match self.planned {
            Some(n) if n != self.cases.len() => Some(format!(
                "the plan announced {n} test(s) but {} reported",
                self.cases.len()
            )),
            None if self.cases.is_empty() => Some("the scenario reported no test".into()),
            _ => None,
        }
    }

    /// True when every case passed or was skipped and the report is complete.
    #[cfg(test)]
    pub fn passed(&self) -> bool {
        self.structural_problem().is_none()
            && self
                .cases
                .iter()
                .all(|c| !matches!(c.status, Status::Fail(_)))
    }
}

/// `"3 name # SKIP why"` → (`"name"`, `Some("SKIP why")`).
fn split_directive(rest: &str) -> (String, Option<&str>) {
    let rest = rest.trim();
    let after_number = rest.split_once(' ').map(|(_, r)| r).unwrap_or(
        if rest.bytes().all(|b| b.is_ascii_digit()) {
            ""
        } else {
            rest
        },
    );
    match after_number.split_once(" # ") {
        Some((name, directive)) => (name.trim().to_string(), Some(directive.trim())),
        None => (after_number.trim().to_string(), None),
    }
}

/// One host-side result to print as KTAP.
#[derive(Clone, Debug)]
pub struct HostResult<'a> {
    /// Scenario name.
    pub name: &'a str,
    /// The guest's cases, printed as subtests.
    pub cases: &'a [Case],
    /// Failure reason of the scenario as a whole, if it failed.
    pub failure: Option<String>,
    /// A TODO directive (a known failure): printed after the result, which then does not count.
    pub todo: Option<String>,
}

/// Prints a KTAP document with one top-level test per scenario and the guest cases as subtests.
pub fn render(results: &[HostResult<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "KTAP version 1\n1..{}", results.len());
    for (i, r) in results.iter().enumerate() {
        if !r.cases.is_empty() {
            let _ = writeln!(out, "    KTAP version 1\n    1..{}", r.cases.len());
            for (j, c) in r.cases.iter().enumerate() {
                for d in &c.diagnostics {
                    let _ = writeln!(out, "    # {d}");
                }
                let _ = match &c.status {
                    Status::Pass => writeln!(out, "    ok {} {}", j + 1, c.name),
                    Status::Fail(_) => writeln!(out, "    not ok {} {}", j + 1, c.name),
                    Status::Skip(why) => writeln!(out, "    ok {} {} # SKIP {why}", j + 1, c.name),
                };
            }
        }
        let todo = r
            .todo
            .as_ref()
            .map(|t| format!(" # TODO {}", t.replace('\n', " ")))
            .unwrap_or_default();
        match &r.failure {
            None => {
                let _ = writeln!(out, "ok {} {}{todo}", i + 1, r.name);
            }
            Some(why) => {
                for l in why.lines() {
                    let _ = writeln!(out, "# {}: {l}", r.name);
                }
                let _ = writeln!(out, "not ok {} {}{todo}", i + 1, r.name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Report {
        let mut r = Report::default();
        text.lines().for_each(|l| r.feed(l));
        r
    }

    #[test]
    fn parses_pass_fail_skip_and_diagnostics() {
        let r = parse(
            "[ 1.0] noise\nok 9 before_start\nKTAP version 1\n1..3\nok 1 a\n# b: broken here\n\
             [ 2.0] kernel line\nnot ok 2 b\nok 3 c # SKIP no device\n",
        );
        assert!(r.started);
        assert_eq!(r.planned, Some(3));
        assert_eq!(r.cases.len(), 3);
        assert_eq!(r.cases[0].status, Status::Pass);
        assert_eq!(r.cases[1].status, Status::Fail("b: broken here".into()));
        assert_eq!(r.cases[1].diagnostics, vec!["b: broken here".to_string()]);
        assert_eq!(r.cases[2].status, Status::Skip("no device".into()));
        assert!(!r.passed());
    }

    #[test]
    fn short_plan_and_missing_ktap_fail() {
        let r = parse("KTAP version 1\n1..3\nok 1 a\n");
        assert!(r.structural_problem().unwrap().contains("announced 3"));
        assert!(!r.passed());
        assert!(!parse("hello\n").passed());
        assert!(parse("KTAP version 1\n1..1\nok 1 a\n").passed());
    }

    #[test]
    fn renders_nested_ktap_that_parses_back() {
        let guest = parse("KTAP version 1\n1..2\nok 1 a\n# why\nnot ok 2 b\n");
        let text = render(&[
            HostResult {
                name: "smoke",
                cases: &guest.cases,
                failure: Some("1 case failed".into()),
                todo: None,
            },
            HostResult {
                name: "other",
                cases: &[],
                failure: None,
                todo: None,
            },
            HostResult {
                name: "known",
                cases: &[],
                failure: Some("hung task".into()),
                todo: Some("known failure on 7.3: a defect".into()),
            },
        ]);
        assert!(text.starts_with("KTAP version 1\n1..3\n"));
        assert!(text.contains("    not ok 2 b\n"));
        assert!(text.contains("not ok 1 smoke\n"));
        assert!(text.contains("\nok 2 other\n"));
        assert!(text.ends_with(
            "# known: hung task\nnot ok 3 known # TODO known failure on 7.3: a defect\n"
        ));
        let top = parse(&text);
        assert_eq!(top.cases.len(), 3);
        assert!(matches!(top.cases[0].status, Status::Fail(_)));
    }
}
