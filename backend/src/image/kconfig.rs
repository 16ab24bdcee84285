//! Kernel configuration checks: every symbol of our fragments must keep its value in the final
//! `.config`, or the guest silently lacks part of the offload stack.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The value a Kconfig symbol has (or is asked to have).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KconfigValue {
    /// `# CONFIG_FOO is not set` (or absent from a `.config`).
    NotSet,
    /// `CONFIG_FOO=<value>`, the value as written (`y`, `m`, `20`, `"text"`).
    Set(String),
}

impl fmt::Display for KconfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KconfigValue::NotSet => f.write_str("not set"),
            KconfigValue::Set(v) => f.write_str(v),
        }
    }
}

/// Symbol name (with the `CONFIG_` prefix) to value, parsed from a fragment or a `.config`.
pub type Kconfig = BTreeMap<String, KconfigValue>;

/// Parses `.config`/fragment text. Unrelated comments and blank lines are ignored.
pub fn parse(text: &str) -> Kconfig {
    let mut out = Kconfig::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("# CONFIG_") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                out.insert(format!("CONFIG_{name}"), KconfigValue::NotSet);
            }
        } else if line.starts_with("CONFIG_") {
            if let Some((name, value)) = line.split_once('=') {
                let value = value.split(" #").next().unwrap_or(value).trim();
                out.insert(name.to_string(), KconfigValue::Set(value.to_string()));
            }
        }
    }
    out
}

/// Marker for a fragment line whose symbol only some kernel series have (`CONFIG_QCOM_SOC=y  #
/// if-present`): it is checked only when the final configuration knows the symbol at all.
pub const IF_PRESENT: &str = "# if-present";

/// The symbols of a fragment marked [`IF_PRESENT`].
pub fn optional_symbols(fragment_text: &str) -> BTreeSet<String> {
    fragment_text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_") && l.contains(IF_PRESENT))
        .filter_map(|l| l.split_once('=').map(|(name, _)| name.to_string()))
        .collect()
}

/// A fragment symbol whose value did not survive into the final configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The symbol, e.g. `CONFIG_USB_XHCI_SIDEBAND`.
    pub symbol: String,
    /// What the fragment asks for.
    pub wanted: KconfigValue,
    /// What the configuration has.
    pub got: KconfigValue,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.got {
            KconfigValue::NotSet => {
                write!(f, "{} is not set (wanted {})", self.symbol, self.wanted)
            }
            KconfigValue::Set(_) => {
                write!(f, "{}={} (wanted {})", self.symbol, self.got, self.wanted)
            }
        }
    }
}

/// Every symbol of `fragment` whose value differs in `config`, in symbol order. Symbols in
/// `optional` are skipped when `config` does not mention them.
pub fn check(fragment: &Kconfig, optional: &BTreeSet<String>, config: &Kconfig) -> Vec<Mismatch> {
    fragment
        .iter()
        .filter(|(symbol, _)| !optional.contains(*symbol) || config.contains_key(*symbol))
        .filter_map(|(symbol, wanted)| {
            let got = config.get(symbol).cloned().unwrap_or(KconfigValue::NotSet);
            (got != *wanted).then(|| Mismatch {
                symbol: symbol.clone(),
                wanted: wanted.clone(),
                got,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_present_symbols_are_checked_only_where_the_tree_has_them() {
        let text = "CONFIG_QCOM_SOC=y  # if-present\nCONFIG_QRTR=m\n";
        let optional = optional_symbols(text);
        assert_eq!(optional.iter().collect::<Vec<_>>(), ["CONFIG_QCOM_SOC"]);
        let fragment = parse(text);
        assert!(check(&fragment, &optional, &parse("CONFIG_QRTR=m\n")).is_empty());
        let m = check(
            &fragment,
            &optional,
            &parse("CONFIG_QRTR=m\n# CONFIG_QCOM_SOC is not set\n"),
        );
        assert_eq!(m[0].to_string(), "CONFIG_QCOM_SOC is not set (wanted y)");
        assert_eq!(
            check(&fragment, &optional, &parse("")).len(),
            1,
            "CONFIG_QRTR is not optional"
        );
    }

    const FRAGMENT: &str = "# comment\nCONFIG_USB_XHCI_SIDEBAND=y\nCONFIG_SND_USB_AUDIO_QMI=m\n\
        CONFIG_DEFAULT_HUNG_TASK_TIMEOUT=20 # trailing\n# CONFIG_KASAN is not set\n";

    #[test]
    fn parses_values_comments_and_not_set() {
        let k = parse(FRAGMENT);
        assert_eq!(k.len(), 4);
        assert_eq!(k["CONFIG_USB_XHCI_SIDEBAND"], KconfigValue::Set("y".into()));
        assert_eq!(
            k["CONFIG_DEFAULT_HUNG_TASK_TIMEOUT"],
            KconfigValue::Set("20".into())
        );
        assert_eq!(k["CONFIG_KASAN"], KconfigValue::NotSet);
    }

    #[test]
    fn matching_config_has_no_mismatch() {
        let config = parse(
            "CONFIG_USB_XHCI_SIDEBAND=y\nCONFIG_SND_USB_AUDIO_QMI=m\nCONFIG_DEFAULT_HUNG_TASK_TIMEOUT=20\n",
        );
        assert!(check(&parse(FRAGMENT), &BTreeSet::new(), &config).is_empty());
    }

    #[test]
    fn names_missing_and_wrong_symbols() {
        let config = parse(
            "CONFIG_SND_USB_AUDIO_QMI=y\nCONFIG_DEFAULT_HUNG_TASK_TIMEOUT=20\nCONFIG_KASAN=y\n",
        );
        let m = check(&parse(FRAGMENT), &BTreeSet::new(), &config);
        let text: Vec<String> = m.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "CONFIG_KASAN=y (wanted not set)",
                "CONFIG_SND_USB_AUDIO_QMI=y (wanted m)",
                "CONFIG_USB_XHCI_SIDEBAND is not set (wanted y)",
            ]
        );
    }
}
