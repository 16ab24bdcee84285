//! The line protocol between the plugin (inside QEMU) and the sideband backend, on one UNIX
//! socket the backend listens on. Pure: formatting and parsing only, shared by both sides.
//!
//! ```text
//! hit:      plugin -> backend   hit id=0 name=usb_reset_device addr=0xffff8000803efe84 kind=entry hit=1 vcpu=1 jiffies=4294968000 host_ns=5123456789 pid=4242
//!           backend -> plugin   applied unplug 2: port 2 unplugged      (or: failed REASON)
//! control:  plugin -> backend   hello api=7 pid=4242 vcpus=2
//!           backend -> plugin   arm id=1 name=snd_foo addr=0xffff8000010a0000 kind=entry hit=1 [end=0x...]
//!           plugin -> backend   armed name=snd_foo addr=0xffff8000010a0000 hit=1
//! ```
//!
//! One hit per connection: the vCPU that hit a trigger connects, sends its line and blocks on the
//! answer (with a deadline). The control connection stays open for the whole boot, so the backend
//! can arm triggers whose address is only known once the guest runs (functions in modules).

use std::fmt;

/// Where in the function a trigger fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The function's first instruction executes.
    Entry,
    /// A return instruction (`ret`) inside the function executes.
    Return,
}

impl Kind {
    /// The protocol word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Entry => "entry",
            Kind::Return => "return",
        }
    }

    /// Parses the protocol word.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "entry" => Some(Kind::Entry),
            "return" => Some(Kind::Return),
            _ => None,
        }
    }
}

/// The function that must be on the stack for a trigger to count (`FUNC@OUTER`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Within {
    /// Its name (for messages).
    pub name: String,
    /// Its first instruction.
    pub addr: u64,
    /// Its end (next symbol): its `ret` instructions are inside `[addr, end)`.
    pub end: u64,
}

impl Within {
    /// `NAME:ADDR:END`.
    pub fn to_field(&self) -> String {
        format!("{}:{:#x}:{:#x}", self.name, self.addr, self.end)
    }

    /// Parses [`Within::to_field`]'s output.
    pub fn from_field(s: &str) -> Result<Within, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [name, addr, end] = parts.as_slice() else {
            return Err(format!("'{s}' is not OUTER:ADDR:END"));
        };
        let w = Within {
            name: name.to_string(),
            addr: parse_u64(addr)?,
            end: parse_u64(end)?,
        };
        if w.name.is_empty() || w.end <= w.addr {
            return Err(format!("bad enclosing function '{s}'"));
        }
        Ok(w)
    }
}

/// One trigger: a function, where in it, and which execution counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm {
    /// Which trigger this is: the order of `at=` options, or the backend's number for one armed
    /// at run time. A hit names it, so two triggers on one function stay apart.
    pub id: u32,
    /// Function name (for messages).
    pub name: String,
    /// Guest virtual address of its first instruction.
    pub addr: u64,
    /// End of the function (next symbol); needed for [`Kind::Return`].
    pub end: Option<u64>,
    /// Entry or return.
    pub kind: Kind,
    /// Fire on this execution (1 = the first).
    pub hit: u64,
    /// Count only executions while this function is on the same kernel stack.
    pub within: Option<Within>,
}

impl Arm {
    /// The plugin option value: `NAME:ADDR:HIT:KIND[:END][@OUTER:ADDR:END]`.
    pub fn to_option(&self) -> String {
        let mut s = format!(
            "{}:{:#x}:{}:{}",
            self.name,
            self.addr,
            self.hit,
            self.kind.as_str()
        );
        if let Some(end) = self.end {
            s.push_str(&format!(":{end:#x}"));
        }
        if let Some(w) = &self.within {
            s.push_str(&format!("@{}", w.to_field()));
        }
        s
    }

    /// Parses [`Arm::to_option`]'s output; `id` is the option's position.
    pub fn from_option(s: &str, id: u32) -> Result<Arm, String> {
        let (s, within) = match s.split_once('@') {
            Some((s, w)) => (s, Some(Within::from_field(w)?)),
            None => (s, None),
        };
        let parts: Vec<&str> = s.split(':').collect();
        if !(4..=5).contains(&parts.len()) {
            return Err(format!("trigger '{s}' is not NAME:ADDR:HIT:KIND[:END]"));
        }
        let arm = Arm {
            id,
            name: parts[0].to_string(),
            addr: parse_u64(parts[1])?,
            hit: parse_u64(parts[2])?,
            kind: Kind::parse(parts[3])
                .ok_or_else(|| format!("trigger kind '{}' is not entry or return", parts[3]))?,
            end: parts.get(4).map(|e| parse_u64(e)).transpose()?,
            within,
        };
        arm.check()?;
        Ok(arm)
    }

    /// The control line that arms this trigger at run time.
    pub fn to_line(&self) -> String {
        let mut s = format!(
            "arm id={} name={} addr={:#x} kind={} hit={}",
            self.id,
            self.name,
            self.addr,
            self.kind.as_str(),
            self.hit
        );
        if let Some(end) = self.end {
            s.push_str(&format!(" end={end:#x}"));
        }
        if let Some(w) = &self.within {
            s.push_str(&format!(" within={}", w.to_field()));
        }
        s
    }

    /// Parses [`Arm::to_line`]'s output.
    pub fn from_line(line: &str) -> Result<Arm, String> {
        let f = Fields::parse(line, "arm")?;
        let arm = Arm {
            id: parse_u64(f.get("id")?)? as u32,
            name: f.get("name")?.to_string(),
            addr: parse_u64(f.get("addr")?)?,
            kind: Kind::parse(f.get("kind")?).ok_or("kind is not entry or return")?,
            hit: parse_u64(f.get("hit")?)?,
            end: f.opt("end").map(parse_u64).transpose()?,
            within: f.opt("within").map(Within::from_field).transpose()?,
        };
        arm.check()?;
        Ok(arm)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.contains([' ', ':', ',', '=']) {
            return Err(format!("bad function name '{}'", self.name));
        }
        if self.hit == 0 {
            return Err("the hit count starts at 1".into());
        }
        if self.kind == Kind::Return && self.end.is_none_or(|e| e <= self.addr) {
            return Err(format!(
                "a return trigger on {} needs the function's end address",
                self.name
            ));
        }
        Ok(())
    }
}

/// What the plugin tells the backend when a trigger fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The trigger's [`Arm::id`].
    pub id: u32,
    /// Function name.
    pub name: String,
    /// The instruction that fired (the function's address for entry, the `ret` for return).
    pub addr: u64,
    /// Entry or return.
    pub kind: Kind,
    /// Which execution this was (1 = the first).
    pub hit: u64,
    /// The vCPU that executed it, and is now held.
    pub vcpu: u32,
    /// The guest's `jiffies` when it fired, if the plugin could read it.
    pub jiffies: Option<u64>,
    /// Host nanoseconds since the plugin was loaded (about QEMU's start).
    pub host_ns: u64,
    /// QEMU's process id.
    pub pid: u32,
}

impl Hit {
    /// The protocol line (no newline).
    pub fn to_line(&self) -> String {
        let mut s = format!(
            "hit id={} name={} addr={:#x} kind={} hit={} vcpu={}",
            self.id,
            self.name,
            self.addr,
            self.kind.as_str(),
            self.hit,
            self.vcpu
        );
        if let Some(j) = self.jiffies {
            s.push_str(&format!(" jiffies={j}"));
        }
        s.push_str(&format!(" host_ns={} pid={}", self.host_ns, self.pid));
        s
    }

    /// Parses [`Hit::to_line`]'s output.
    pub fn from_line(line: &str) -> Result<Hit, String> {
        let f = Fields::parse(line, "hit")?;
        Ok(Hit {
            id: parse_u64(f.get("id")?)? as u32,
            name: f.get("name")?.to_string(),
            addr: parse_u64(f.get("addr")?)?,
            kind: Kind::parse(f.get("kind")?).ok_or("kind is not entry or return")?,
            hit: parse_u64(f.get("hit")?)?,
            vcpu: parse_u64(f.get("vcpu")?)? as u32,
            jiffies: f.opt("jiffies").map(parse_u64).transpose()?,
            host_ns: parse_u64(f.get("host_ns")?)?,
            pid: parse_u64(f.get("pid")?)? as u32,
        })
    }
}

/// The backend's answer to a hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The fault is in place; the vCPU may go on.
    Applied(String),
    /// The fault could not be applied; the vCPU goes on anyway.
    Failed(String),
}

impl Reply {
    /// The protocol line (no newline).
    pub fn to_line(&self) -> String {
        let (word, text) = match self {
            Reply::Applied(t) => ("applied", t),
            Reply::Failed(t) => ("failed", t),
        };
        // One line: the text must not end the message early.
        format!("{word} {}", text.replace(['\n', '\r'], " "))
    }

    /// Parses [`Reply::to_line`]'s output.
    pub fn from_line(line: &str) -> Result<Reply, String> {
        let line = line.trim_end_matches(['\n', '\r']);
        let (word, text) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "applied" => Ok(Reply::Applied(text.to_string())),
            "failed" => Ok(Reply::Failed(text.to_string())),
            _ => Err(format!("unexpected answer '{line}'")),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Applied(t) => write!(f, "applied: {t}"),
            Reply::Failed(t) => write!(f, "FAILED: {t}"),
        }
    }
}

/// `VERB key=value key=value ...`
struct Fields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Fields<'a> {
    fn parse(line: &'a str, verb: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        if words.next() != Some(verb) {
            return Err(format!("'{line}' is not a {verb} line"));
        }
        words
            .map(|w| {
                w.split_once('=')
                    .ok_or_else(|| format!("'{w}' is not key=value"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Fields)
    }

    fn opt(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn get(&self, key: &str) -> Result<&'a str, String> {
        self.opt(key).ok_or_else(|| format!("missing {key}="))
    }
}

/// Seconds since boot for a `jiffies` value (the kernel starts it 300 s before the 32-bit wrap:
/// `INITIAL_JIFFIES`).
pub fn uptime(jiffies: u64, hz: u64) -> f64 {
    let initial = u64::from((-300i64 * hz as i64) as i32 as u32);
    jiffies.wrapping_sub(initial) as f64 / hz.max(1) as f64
}

/// A decimal or `0x` hexadecimal number.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("'{s}' is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(kind: Kind, end: Option<u64>) -> Arm {
        Arm {
            id: 0,
            name: "usb_reset_device".into(),
            addr: 0xffff_8000_803e_fe84,
            end,
            kind,
            hit: 3,
            within: None,
        }
    }

    #[test]
    fn arm_round_trips_as_option_and_line() {
        let mut inside = arm(Kind::Entry, Some(0x20));
        inside.within = Some(Within {
            name: "outer".into(),
            addr: 0x100,
            end: 0x180,
        });
        assert_eq!(
            inside.to_option(),
            "usb_reset_device:0xffff8000803efe84:3:entry:0x20@outer:0x100:0x180"
        );
        for a in [
            arm(Kind::Entry, None),
            arm(Kind::Return, Some(0xffff_8000_803f_0000)),
            inside,
        ] {
            assert_eq!(Arm::from_option(&a.to_option(), 0).unwrap(), a);
            assert_eq!(Arm::from_line(&a.to_line()).unwrap(), a);
        }
        assert_eq!(
            arm(Kind::Entry, None).to_option(),
            "usb_reset_device:0xffff8000803efe84:3:entry"
        );
    }

    #[test]
    fn bad_arms_are_refused_with_a_reason() {
        let e = Arm::from_option("f:0x10:0:entry", 0).unwrap_err();
        assert!(e.contains("starts at 1"), "{e}");
        let e = Arm::from_option("f:0x10:1:return", 0).unwrap_err();
        assert!(e.contains("end address"), "{e}");
        assert!(Arm::from_option("f:0x10:1:middle", 0).is_err());
        assert!(Arm::from_option("f:zz:1:entry", 0).is_err());
        assert!(Arm::from_option("f:0x10", 0).is_err());
        assert!(Arm::from_option("f:0x10:1:entry@g:0x20", 0).is_err());
        assert!(Arm::from_option("f:0x10:1:entry@g:0x20:0x10", 0).is_err());
        assert!(Arm::from_line("arm id=1 name=f addr=0x10 kind=entry").is_err());
    }

    #[test]
    fn hit_round_trips_with_and_without_jiffies() {
        let mut h = Hit {
            id: 4,
            name: "f".into(),
            addr: 0x1000,
            kind: Kind::Return,
            hit: 2,
            vcpu: 1,
            jiffies: Some(4_294_968_000),
            host_ns: 5,
            pid: 42,
        };
        assert_eq!(
            h.to_line(),
            "hit id=4 name=f addr=0x1000 kind=return hit=2 vcpu=1 jiffies=4294968000 host_ns=5 pid=42"
        );
        assert_eq!(Hit::from_line(&h.to_line()).unwrap(), h);
        h.jiffies = None;
        assert_eq!(Hit::from_line(&h.to_line()).unwrap(), h);
        assert!(Hit::from_line("hello api=7").is_err());
    }

    #[test]
    fn guest_time_from_jiffies() {
        // INITIAL_JIFFIES for HZ=250 is (u32)(-75000) = 4294892296.
        assert!((uptime(4_294_893_097, 250) - 3.204).abs() < 1e-9);
        assert!(
            (uptime(4_294_892_296 + 250 * 400, 250) - 400.0).abs() < 1e-9,
            "past the wrap"
        );
    }

    #[test]
    fn replies_stay_on_one_line() {
        let r = Reply::Applied("a\nb".into());
        assert_eq!(r.to_line(), "applied a b");
        assert_eq!(
            Reply::from_line("applied a b\n").unwrap(),
            Reply::Applied("a b".into())
        );
        assert_eq!(
            Reply::from_line("failed").unwrap(),
            Reply::Failed(String::new())
        );
        assert!(Reply::from_line("maybe").is_err());
    }
}
