//! The plugin's options, as QEMU passes them (`-plugin libsideband_plugin.so,key=value,...`).
//!
//! - `socket=PATH`: the backend's socket (without it hits are only logged);
//! - `at=NAME:ADDR:HIT:KIND[:END]`: a trigger (repeatable; see [`crate::protocol::Arm`]);
//! - `timeout_ms=N`: how long a vCPU is held at most when the backend does not answer (10000);
//! - `jiffies=ADDR`: the guest's `jiffies` variable, read at a hit to give the guest time;
//! - `hz=N`: the kernel's `CONFIG_HZ`, to log that time in seconds since boot;
//! - `probe=on`: print the API versions and refuse to load (the backend's pre-boot check).

use std::path::PathBuf;
use std::time::Duration;

use crate::protocol::{parse_u64, Arm};

/// Default hold deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Parsed options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Backend socket.
    pub socket: Option<PathBuf>,
    /// Triggers known at start.
    pub arms: Vec<Arm>,
    /// Hold deadline.
    pub timeout: Duration,
    /// Address of the guest's `jiffies`.
    pub jiffies: Option<u64>,
    /// The kernel's `CONFIG_HZ`.
    pub hz: Option<u64>,
    /// Only report the versions.
    pub probe: bool,
}

impl Options {
    /// Parses `key=value` words.
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Options, String> {
        let mut o = Options {
            socket: None,
            arms: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            jiffies: None,
            hz: None,
            probe: false,
        };
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("option '{w}' is not key=value"))?;
            match k {
                "socket" => o.socket = Some(PathBuf::from(v)),
                "at" => {
                    let id = o.arms.len() as u32;
                    o.arms.push(Arm::from_option(v, id)?)
                }
                "timeout_ms" => o.timeout = Duration::from_millis(parse_u64(v)?),
                "jiffies" => o.jiffies = Some(parse_u64(v)?),
                "hz" => o.hz = Some(parse_u64(v)?).filter(|&hz| hz > 0),
                "probe" => o.probe = matches!(v, "on" | "yes" | "true"),
                _ => {
                    return Err(format!(
                        "unknown option '{k}' (known: socket, at, timeout_ms, jiffies, hz, probe)"
                    ))
                }
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Kind;

    #[test]
    fn parses_every_option_and_repeated_triggers() {
        let o = Options::parse([
            "socket=/tmp/s.sock",
            "at=f:0x10:1:entry",
            "at=g:0x20:2:return:0x40",
            "timeout_ms=500",
            "jiffies=0xffff800080909280",
            "hz=250",
        ])
        .unwrap();
        assert_eq!(o.socket, Some(PathBuf::from("/tmp/s.sock")));
        assert_eq!(o.arms.len(), 2);
        assert_eq!(o.arms[1].kind, Kind::Return);
        assert_eq!((o.arms[0].id, o.arms[1].id), (0, 1));
        assert_eq!(o.arms[1].end, Some(0x40));
        assert_eq!(o.timeout, Duration::from_millis(500));
        assert_eq!(o.jiffies, Some(0xffff_8000_8090_9280));
        assert_eq!(o.hz, Some(250));
        assert!(!o.probe);
        assert!(Options::parse(["probe=on"]).unwrap().probe);
    }

    #[test]
    fn unknown_or_malformed_options_are_named() {
        let e = Options::parse(["sock=/x"]).unwrap_err();
        assert!(e.contains("unknown option 'sock'"), "{e}");
        assert!(Options::parse(["socket"]).is_err());
        assert!(Options::parse(["at=f:0x10:0:entry"]).is_err());
    }
}
