//! JUnit XML for CI systems: one test suite per run, one test case per guest case, plus one per
//! scenario for failures that belong to the scenario as a whole (panic, timeout, kernel report).

use std::fmt::Write as _;

/// One JUnit test case.
#[derive(Clone, Debug)]
pub struct JunitCase {
    /// `classname`: the scenario.
    pub class: String,
    /// `name`: the test.
    pub name: String,
    /// Seconds it took (0 when unknown).
    pub seconds: f64,
    /// The failure message and details, if it failed.
    pub failure: Option<(String, String)>,
    /// The skip reason, if skipped.
    pub skipped: Option<String>,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters; consoles are full of them.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// Renders a `<testsuites>` document with one suite.
pub fn render(suite: &str, cases: &[JunitCase]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
    let time: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites><testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        escape(suite),
        cases.len()
    );
    for c in cases {
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&c.class),
            escape(&c.name),
            c.seconds
        );
        match (&c.failure, &c.skipped) {
            (Some((msg, details)), _) => {
                let _ = writeln!(
                    out,
                    "><failure message=\"{}\">{}</failure></testcase>",
                    escape(msg),
                    escape(details)
                );
            }
            (None, Some(why)) => {
                let _ = writeln!(out, "><skipped message=\"{}\"/></testcase>", escape(why));
            }
            (None, None) => out.push_str("/>\n"),
        }
    }
    out.push_str("</testsuite></testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_escapes() {
        let cases = [
            JunitCase {
                class: "smoke".into(),
                name: "a".into(),
                seconds: 1.5,
                failure: None,
                skipped: None,
            },
            JunitCase {
                class: "smoke".into(),
                name: "b<&>".into(),
                seconds: 0.0,
                failure: Some(("kernel \"WARNING\"".into(), "line\u{1b}[0m".into())),
                skipped: None,
            },
            JunitCase {
                class: "x".into(),
                name: "c".into(),
                seconds: 0.0,
                failure: None,
                skipped: Some("n/a".into()),
            },
        ];
        let xml = render("sideband", &cases);
        assert!(xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\" time=\"1.500\""));
        assert!(xml.contains("name=\"b&lt;&amp;&gt;\""));
        assert!(xml.contains("message=\"kernel &quot;WARNING&quot;\">line?[0m</failure>"));
        assert!(xml.contains("<skipped message=\"n/a\"/>"));
    }
}
