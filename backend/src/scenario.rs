//! The scenario catalogue: `guest-tests/scenarios/NAME.sh`, each with a one-line purpose (its
//! first comment line, `# NAME: purpose`) and, optionally, what it is expected to find on some
//! kernels:
//!
//! - `# known-failure: KERNELS: REASON`: a kernel defect the scenario reports. It still runs and
//!   its evidence is reported, but it does not fail the run; passing is noted.
//! - `# expect-failure: KERNELS: REASON`: the kernel is built to fail it (a fixture); a pass
//!   fails the run, because then the harness lost what it was meant to catch.
//!
//! KERNELS is a comma-separated list of kernel variants (`stock` for none, `fixture`, `kasan`).
//!
//! `# adsp-link: mhi` boots the scenario with the ADSP's QRTR link on the emulated MHI function
//! (the guest's qrtr-mhi) instead of the virtio-serial relay: for scenarios that need the DSP to
//! answer while the guest's user processes are frozen (system suspend).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::paths;

/// What a scenario expects of one kernel variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// True for `expect-failure` (must fail), false for `known-failure` (may fail).
    pub strict: bool,
    /// Why.
    pub reason: String,
}

/// One scenario file's header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scenario {
    /// File stem.
    pub name: String,
    /// The first comment line, without `# NAME: `.
    pub purpose: String,
    /// (variant, expectation) pairs, in file order.
    expectations: Vec<(String, Expectation)>,
    /// `# adsp-link: mhi`: the ADSP's link goes over MHI.
    pub adsp_mhi: bool,
}

impl Scenario {
    /// Parses the header of a scenario script.
    pub fn parse(name: &str, text: &str) -> Scenario {
        let mut s = Scenario {
            name: name.to_string(),
            ..Scenario::default()
        };
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
            for (key, strict) in [("known-failure:", false), ("expect-failure:", true)] {
                let Some(rest) = body.strip_prefix(key) else {
                    continue;
                };
                let Some((kernels, reason)) = rest.split_once(':') else {
                    continue;
                };
                for k in kernels.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                    s.expectations.push((
                        k.to_string(),
                        Expectation {
                            strict,
                            reason: reason.trim().to_string(),
                        },
                    ));
                }
            }
        }
        s
    }

    /// The expectation for a kernel variant (`None` is the stock kernel).
    pub fn expectation(&self, variant: Option<&str>) -> Option<&Expectation> {
        let v = variant.unwrap_or("stock");
        self.expectations
            .iter()
            .find(|(k, _)| k == v)
            .map(|(_, e)| e)
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
    fn header_gives_purpose_and_expectations_per_variant() {
        let s = Scenario::parse(
            "fault-x",
            "# fault-x: a reset while the DSP streams\n# more words\n\
             # known-failure: stock, kasan: the BYE does not wake the wait\n\
             # expect-failure: fixture: the lock is taken twice\n. /lib.sh\n# known-failure: late: ignored\n",
        );
        assert_eq!(s.purpose, "a reset while the DSP streams");
        let stock = s.expectation(None).unwrap();
        assert!(!stock.strict);
        assert_eq!(stock.reason, "the BYE does not wake the wait");
        assert_eq!(s.expectation(Some("kasan")), Some(stock));
        let fx = s.expectation(Some("fixture")).unwrap();
        assert!(fx.strict && fx.reason == "the lock is taken twice");
        assert!(
            s.expectation(Some("late")).is_none(),
            "only the header counts"
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
