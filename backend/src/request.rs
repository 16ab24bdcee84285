//! The backend's request grammar, in one place: what a guest scenario prints after
//! `SIDEBAND-CTL` / `SIDEBAND-ASK` (vm/session.rs), what `sideband ctl` sends to the control
//! socket (ctl/), and what a TCG-plugin trigger runs as its action (vm/plugin.rs).
//!
//! A request is one verb with its arguments (`unplug 1`), or `A; B` (each in order, the first
//! failure stops), or `! REQUEST` (must fail: it succeeds with the error it got). [`Request`]
//! parses it ([`FromStr`]) and prints its canonical form ([`fmt::Display`]); [`VERBS`] is the
//! one table of verbs and their arguments, from which the usage text is made.
//! `devices::RunningDevices::execute` runs a parsed request.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use sideband_device::adsp::uaudio::{AudioFormat, Direction, Malformed};
use sideband_device::adsp::StreamParams;
use sideband_device::usb::hid::Button;
use sideband_device::usb::FaultSpan;

use crate::devices::OnIndication;

/// Every verb with its arguments as the usage text shows them, in the order it lists them.
pub const VERBS: &[(&str, &str)] = &[
    ("stats", ""),
    ("unplug", "PORT"),
    ("plug", "PORT"),
    ("check-counter", "SAMPLES"),
    ("expect-headset", "[mute=0|1] [volume=DB] [rate=HZ]"),
    ("cpu-start", ""),
    ("cpu-stop", "LABEL AUDIO_SECONDS"),
    (
        "stream-enable",
        "card=N [pcm=N] [dir=playback|capture] [bits=16|24|32] [ch=N] [rate=HZ] [buffer=BYTES] [si=US]",
    ),
    ("stream-play", "SAMPLES"),
    ("stream-start", ""),
    ("expect-streaming", ""),
    ("expect-released", ""),
    ("stream-capture", "SAMPLES"),
    ("stream-disable", ""),
    ("expect-indication", ""),
    ("dsp-crash", ""),
    ("dsp-bye", ""),
    ("dsp-del-client", ""),
    ("dsp-on-indication", "disable|bye|ignore|hold|keep-streaming"),
    ("port-suspends", "PORT"),
    ("hc-error", "hse|hce|gone"),
    ("hc-revive", ""),
    (
        "dsp-raw",
        "enable|disable|tlv-overrun|header-length|unknown-message|no-enable card=N ...",
    ),
    ("sleep", "MS"),
    ("unplug-after", "MS PORT"),
    ("button", "vol-up|vol-down|mute|play-pause"),
    ("xact-errors", "EP COUNT|on|off"),
    ("stall", "EP COUNT|on|off"),
    ("host-stall", "MS COUNT EVERY_MS"),
    ("selftest-panic", ""),
    ("selftest-dma-write", ""),
    ("selftest-stuck", ""),
    (
        "at-arm",
        "FUNC[:return][+N][@OUTER] ADDR[-END] [OUTER_ADDR-OUTER_END] [REQUEST...] (console only)",
    ),
];

/// The usage of every verb, one `VERB ARGS` item each.
pub fn usage_items() -> impl Iterator<Item = String> {
    VERBS.iter().map(|(verb, args)| match args.is_empty() {
        true => verb.to_string(),
        false => format!("{verb} {args}"),
    })
}

/// The usage text for `sideband ctl --help`: one verb a line, then the composites.
pub fn help() -> String {
    let mut text = String::from("Requests:\n");
    for item in usage_items() {
        text.push_str(&format!("  {item}\n"));
    }
    text.push_str("  A; B        runs A, then B (the first failure stops)\n");
    text.push_str("  ! REQUEST   must fail: succeeds with the error it got\n");
    text
}

/// The error for a verb that is not in [`VERBS`].
fn unknown(request: &str) -> anyhow::Error {
    let known: Vec<String> = usage_items().collect();
    anyhow::anyhow!(
        "unknown request '{request}' (known: {}; 'A; B' runs both; '! REQUEST' must fail)",
        known.join(", ")
    )
}

/// One request, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `A; B`: the requests in order; the first failure stops.
    Sequence(Vec<Request>),
    /// `! REQUEST`: must fail; succeeds with the error it got.
    MustFail(Box<Request>),
    /// `stats`: the live figures as JSON.
    Stats,
    /// `unplug PORT`.
    Unplug(u8),
    /// `plug PORT`: plugs back what `unplug` took.
    Plug(u8),
    /// `check-counter SAMPLES`: the headset recorded the guest's counter pattern bit-exactly.
    CheckCounter(u64),
    /// `expect-headset [mute=0|1] [volume=DB] [rate=HZ]`: the headset's controls are these.
    ExpectHeadset(Vec<HeadsetCheck>),
    /// `cpu-start`: marks QEMU's CPU counters.
    CpuStart,
    /// `cpu-stop LABEL AUDIO_SECONDS`: CPU used since `cpu-start`, per second of audio.
    CpuStop { label: String, audio_seconds: f64 },
    /// `stream-enable card=N ...`: the DSP asks the guest for a stream.
    StreamEnable(StreamSpec),
    /// `stream-play SAMPLES`.
    StreamPlay(u64),
    /// `stream-start`: the DSP streams until stopped.
    StreamStart,
    /// `expect-streaming`.
    ExpectStreaming,
    /// `expect-released`: no stream, q6usb's SMMU domain empty.
    ExpectReleased,
    /// `stream-capture SAMPLES`.
    StreamCapture(u64),
    /// `stream-disable`.
    StreamDisable,
    /// `expect-indication`.
    ExpectIndication,
    /// `dsp-crash`: the DSP's link goes away (serial link only).
    DspCrash,
    /// `dsp-bye`.
    DspBye,
    /// `dsp-del-client`.
    DspDelClient,
    /// `dsp-on-indication MODE`.
    DspOnIndication(OnIndication),
    /// `port-suspends PORT`.
    PortSuspends(u8),
    /// `hc-error hse|hce|gone`.
    HcError(HcError),
    /// `hc-revive`.
    HcRevive,
    /// `dsp-raw KIND card=N ...`: a stream request outside the client's bookkeeping.
    DspRaw { kind: RawKind, stream: StreamSpec },
    /// `sleep MS` (at most 10000).
    Sleep(u64),
    /// `unplug-after MS PORT`.
    UnplugAfter { ms: u64, port: u8 },
    /// `button NAME`.
    Button(Button),
    /// `xact-errors EP COUNT|on|off`.
    XactErrors { ep: u8, span: FaultSpan },
    /// `stall EP COUNT|on|off`.
    Stall { ep: u8, span: FaultSpan },
    /// `host-stall MS COUNT EVERY_MS`.
    HostStall { ms: u64, count: u64, every_ms: u64 },
    /// `selftest-panic`: the bus clock panics (the backend's own self-test).
    SelftestPanic,
    /// `selftest-dma-write`: the backend writes into guest RAM as the xHCI's bus master (a
    /// vfio-user DMA_WRITE that QEMU performs) and reads it back.
    SelftestDmaWrite,
    /// `selftest-stuck`: the request never returns (the harness's own self-test: the boot
    /// watchdog must end the run).
    SelftestStuck,
    /// `at-arm TRIGGER ADDR[-END] [OUTER_ADDR-OUTER_END] [REQUEST...]`, its argument text as
    /// vm/plugin.rs `parse_runtime_arm` takes it (the action may hold `;`). Console only: the
    /// runner arms the plugin it loaded; the control socket and a trigger's action refuse it.
    AtArm(String),
}

/// A check of `expect-headset`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HeadsetCheck {
    /// `mute=0|1`.
    Mute(bool),
    /// `volume=DB`, within 1/256 dB.
    Volume(f64),
    /// `rate=HZ`, the playback rate.
    Rate(u32),
}

/// What `hc-error` does to the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HcError {
    /// Host System Error.
    Hse,
    /// Host Controller Error.
    Hce,
    /// Off the bus: BAR0 reads all-ones.
    Gone,
}

impl HcError {
    /// The request's word.
    pub fn name(self) -> &'static str {
        match self {
            HcError::Hse => "hse",
            HcError::Hce => "hce",
            HcError::Gone => "gone",
        }
    }
}

/// What `dsp-raw` sends: a well-formed enable or disable, or an enable broken one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawKind {
    Enable,
    Disable,
    Malformed(Malformed),
}

impl fmt::Display for RawKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RawKind::Enable => "enable",
            RawKind::Disable => "disable",
            RawKind::Malformed(m) => m.name(),
        })
    }
}

/// The stream of `stream-enable` and `dsp-raw`; unnamed parameters take these defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    /// `card=N`, the USB card's ALSA index (required).
    pub card: u16,
    /// `pcm=N` (0).
    pub pcm: u8,
    /// `dir=playback|capture` (playback).
    pub dir: Direction,
    /// `bits=16|24|32` (16; 24 is S24_3LE, 3-byte subslots).
    pub bits: u8,
    /// `ch=N` (2).
    pub ch: u32,
    /// `rate=HZ` (48000).
    pub rate: u32,
    /// `buffer=BYTES` (0).
    pub buffer: u32,
    /// `si=US`, the service interval (none).
    pub si: Option<u32>,
}

impl StreamSpec {
    /// The parameters the DSP sends.
    pub fn params(&self) -> StreamParams {
        let audio_format = match self.bits {
            24 => AudioFormat::S24_3Le,
            32 => AudioFormat::S32Le,
            _ => AudioFormat::S16Le,
        };
        StreamParams {
            card: self.card,
            pcm: self.pcm,
            direction: self.dir,
            audio_format: audio_format as u32,
            channels: self.ch,
            rate: self.rate,
            xfer_buff_size: self.buffer,
            service_interval: self.si,
        }
    }

    /// Parses `key=value` words.
    fn parse(words: &[&str]) -> Result<Self> {
        let mut s = StreamSpec {
            card: 0,
            pcm: 0,
            dir: Direction::Playback,
            bits: 16,
            ch: 2,
            rate: 48000,
            buffer: 0,
            si: None,
        };
        let mut card = None;
        for w in words {
            let (k, v) = w
                .split_once('=')
                .with_context(|| format!("'{w}' is not key=value"))?;
            let num = || {
                v.parse::<u32>()
                    .with_context(|| format!("{k}={v}: not a number"))
            };
            match k {
                "card" => card = Some(u16::try_from(num()?).context("card out of range")?),
                "pcm" => s.pcm = u8::try_from(num()?).context("pcm out of range")?,
                "dir" => {
                    s.dir = match v {
                        "playback" => Direction::Playback,
                        "capture" => Direction::Capture,
                        _ => bail!("dir={v}: playback or capture"),
                    }
                }
                "bits" => {
                    s.bits = match num()? {
                        b @ (16 | 24 | 32) => b as u8,
                        b => bail!("bits={b}: 16, 24 or 32"),
                    }
                }
                "ch" => s.ch = num()?,
                "rate" => s.rate = num()?,
                "buffer" => s.buffer = num()?,
                "si" => s.si = Some(num()?),
                _ => bail!(
                    "unknown stream parameter '{k}' (card, pcm, dir, bits, ch, rate, buffer, si)"
                ),
            }
        }
        s.card = card.context("stream needs card=N (the USB card's ALSA index)")?;
        Ok(s)
    }
}

impl fmt::Display for StreamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.dir {
            Direction::Playback => "playback",
            Direction::Capture => "capture",
        };
        write!(
            f,
            "card={} pcm={} dir={dir} bits={} ch={} rate={} buffer={}",
            self.card, self.pcm, self.bits, self.ch, self.rate, self.buffer
        )?;
        match self.si {
            Some(si) => write!(f, " si={si}"),
            None => Ok(()),
        }
    }
}

/// `r`, its error prefixed with the verb.
fn within<T>(verb: &str, r: Result<T>) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!("{verb}: {e:#}"))
}

/// A root port: 1-255.
fn port(verb: &str, v: &str) -> Result<u8> {
    match v.parse::<u8>() {
        Ok(p) if p > 0 => Ok(p),
        _ => bail!("{verb}: PORT must be a number 1-255, got '{v}'"),
    }
}

/// A number of `what` (named as the usage names it).
fn number<T: FromStr>(verb: &str, what: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| anyhow::anyhow!("{verb}: {what} must be a number, got '{v}'"))
}

/// `0x83`, `83` (hex without the prefix is not accepted: it reads as decimal) or `131`.
fn endpoint(verb: &str, ep: &str) -> Result<u8> {
    let parsed = match ep.strip_prefix("0x").or_else(|| ep.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => ep.parse(),
    };
    parsed.map_err(|_| anyhow::anyhow!("{verb}: bad endpoint address '{ep}' (e.g. 0x83)"))
}

fn span(verb: &str, span: &str) -> Result<FaultSpan> {
    Ok(match span {
        "on" => FaultSpan::UntilCleared,
        "off" => FaultSpan::Next(0),
        n => FaultSpan::Next(
            n.parse()
                .map_err(|_| anyhow::anyhow!("{verb}: bad count '{n}' (a number, on or off)"))?,
        ),
    })
}

fn span_text(span: FaultSpan) -> String {
    match span {
        FaultSpan::UntilCleared => "on".into(),
        FaultSpan::Next(0) => "off".into(),
        FaultSpan::Next(n) => n.to_string(),
    }
}

fn host_stall(ms: &str, count: &str, every: &str) -> Result<Request> {
    let number = |what: &str, v: &str, max: u64| -> Result<u64> {
        match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => bail!("host-stall: bad {what} '{v}' (1..={max})"),
        }
    };
    Ok(Request::HostStall {
        ms: number("stall length in ms", ms, 1000)?,
        count: number("count", count, 100)?,
        every_ms: number("period in ms", every, 60_000)?,
    })
}

fn sleep(ms: &str) -> Result<Request> {
    let ms: u64 = number("sleep", "MS", ms)?;
    if ms > 10_000 {
        bail!("sleep {ms}: at most 10000 ms");
    }
    Ok(Request::Sleep(ms))
}

fn headset_check(w: &str) -> Result<HeadsetCheck> {
    let (k, v) = w
        .split_once('=')
        .with_context(|| format!("expect-headset: '{w}' is not key=value"))?;
    Ok(match (k, v) {
        ("mute", "0") => HeadsetCheck::Mute(false),
        ("mute", "1") => HeadsetCheck::Mute(true),
        ("mute", _) => bail!("expect-headset: mute={v}: 0 or 1"),
        ("volume", _) => HeadsetCheck::Volume(
            v.parse()
                .map_err(|_| anyhow::anyhow!("expect-headset: volume={v}: not a number"))?,
        ),
        ("rate", _) => HeadsetCheck::Rate(number("expect-headset", "rate", v)?),
        _ => bail!("expect-headset: unknown headset control '{k}' (mute, volume, rate)"),
    })
}

impl fmt::Display for HeadsetCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadsetCheck::Mute(m) => write!(f, "mute={}", u8::from(*m)),
            HeadsetCheck::Volume(v) => write!(f, "volume={v}"),
            HeadsetCheck::Rate(r) => write!(f, "rate={r}"),
        }
    }
}

fn raw_kind(kind: &str) -> Result<RawKind> {
    Ok(match kind {
        "enable" => RawKind::Enable,
        "disable" => RawKind::Disable,
        other => RawKind::Malformed(Malformed::from_name(other).with_context(|| {
            let names: Vec<_> = Malformed::ALL.iter().map(|k| k.name()).collect();
            format!(
                "dsp-raw: '{other}': a raw request is enable, disable or one of {}",
                names.join(", ")
            )
        })?),
    })
}

/// One verb with its argument words.
fn parse_verb(text: &str, verb: &str, args: &[&str]) -> Result<Request> {
    use Request as R;
    Ok(match (verb, args) {
        ("stats", []) => R::Stats,
        ("unplug", [p]) => R::Unplug(port(verb, p)?),
        ("plug", [p]) => R::Plug(port(verb, p)?),
        ("check-counter", [n]) => R::CheckCounter(number(verb, "SAMPLES", n)?),
        ("expect-headset", words) => R::ExpectHeadset(
            words
                .iter()
                .map(|w| headset_check(w))
                .collect::<Result<_>>()?,
        ),
        ("cpu-start", []) => R::CpuStart,
        ("cpu-stop", [label, secs]) => R::CpuStop {
            label: label.to_string(),
            audio_seconds: number(verb, "AUDIO_SECONDS", secs)?,
        },
        ("stream-enable", words) => R::StreamEnable(within(verb, StreamSpec::parse(words))?),
        ("stream-play", [n]) => R::StreamPlay(number(verb, "SAMPLES", n)?),
        ("stream-start", []) => R::StreamStart,
        ("expect-streaming", []) => R::ExpectStreaming,
        ("expect-released", []) => R::ExpectReleased,
        ("stream-capture", [n]) => R::StreamCapture(number(verb, "SAMPLES", n)?),
        ("stream-disable", []) => R::StreamDisable,
        ("expect-indication", []) => R::ExpectIndication,
        ("dsp-crash", []) => R::DspCrash,
        ("dsp-bye", []) => R::DspBye,
        ("dsp-del-client", []) => R::DspDelClient,
        ("dsp-on-indication", [m]) => R::DspOnIndication(within(verb, m.parse())?),
        ("port-suspends", [p]) => R::PortSuspends(port(verb, p)?),
        ("hc-error", [k]) => R::HcError(match *k {
            "hse" => HcError::Hse,
            "hce" => HcError::Hce,
            "gone" => HcError::Gone,
            other => bail!("hc-error {other}: expected hse, hce or gone"),
        }),
        ("hc-revive", []) => R::HcRevive,
        ("dsp-raw", [kind, words @ ..]) => R::DspRaw {
            kind: raw_kind(kind)?,
            stream: within(verb, StreamSpec::parse(words))?,
        },
        ("sleep", [ms]) => sleep(ms)?,
        ("unplug-after", [ms, p]) => R::UnplugAfter {
            ms: number(verb, "MS", ms)?,
            port: port(verb, p)?,
        },
        ("button", [name]) => R::Button(within(verb, name.parse().map_err(anyhow::Error::from))?),
        ("xact-errors", [ep, s]) => R::XactErrors {
            ep: endpoint(verb, ep)?,
            span: span(verb, s)?,
        },
        ("stall", [ep, s]) => R::Stall {
            ep: endpoint(verb, ep)?,
            span: span(verb, s)?,
        },
        ("host-stall", [ms, count, every]) => host_stall(ms, count, every)?,
        ("selftest-panic", []) => R::SelftestPanic,
        ("selftest-dma-write", []) => R::SelftestDmaWrite,
        ("selftest-stuck", []) => R::SelftestStuck,
        _ => match VERBS.iter().position(|(v, _)| *v == verb) {
            Some(i) => {
                let usage = usage_items().nth(i).unwrap_or_default();
                bail!("{verb}: expected `{usage}`, got '{text}'")
            }
            None => return Err(unknown(text)),
        },
    })
}

impl FromStr for Request {
    type Err = anyhow::Error;

    /// `! REQUEST` binds loosest (`! A; B` must fail as a whole), then `at-arm` (its action is
    /// the rest of the line, `;` included), then `A; B`, then one verb.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix('!') {
            return Ok(Request::MustFail(Box::new(inner.parse()?)));
        }
        if let Some(rest) = s.strip_prefix("at-arm") {
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                return Ok(Request::AtArm(rest.trim().to_string()));
            }
        }
        if s.contains(';') {
            let parts = s.split(';').map(str::trim).filter(|p| !p.is_empty());
            return Ok(Request::Sequence(
                parts.map(str::parse).collect::<Result<_>>()?,
            ));
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.split_first() {
            Some((verb, args)) => parse_verb(s, verb, args),
            None => Err(unknown(s)),
        }
    }
}

impl Request {
    /// The verb (`;` and `!` for the composites).
    pub fn verb(&self) -> &'static str {
        use Request as R;
        match self {
            R::Sequence(_) => ";",
            R::MustFail(_) => "!",
            R::Stats => "stats",
            R::Unplug(_) => "unplug",
            R::Plug(_) => "plug",
            R::CheckCounter(_) => "check-counter",
            R::ExpectHeadset(_) => "expect-headset",
            R::CpuStart => "cpu-start",
            R::CpuStop { .. } => "cpu-stop",
            R::StreamEnable(_) => "stream-enable",
            R::StreamPlay(_) => "stream-play",
            R::StreamStart => "stream-start",
            R::ExpectStreaming => "expect-streaming",
            R::ExpectReleased => "expect-released",
            R::StreamCapture(_) => "stream-capture",
            R::StreamDisable => "stream-disable",
            R::ExpectIndication => "expect-indication",
            R::DspCrash => "dsp-crash",
            R::DspBye => "dsp-bye",
            R::DspDelClient => "dsp-del-client",
            R::DspOnIndication(_) => "dsp-on-indication",
            R::PortSuspends(_) => "port-suspends",
            R::HcError(_) => "hc-error",
            R::HcRevive => "hc-revive",
            R::DspRaw { .. } => "dsp-raw",
            R::Sleep(_) => "sleep",
            R::UnplugAfter { .. } => "unplug-after",
            R::Button(_) => "button",
            R::XactErrors { .. } => "xact-errors",
            R::Stall { .. } => "stall",
            R::HostStall { .. } => "host-stall",
            R::SelftestPanic => "selftest-panic",
            R::SelftestDmaWrite => "selftest-dma-write",
            R::SelftestStuck => "selftest-stuck",
            R::AtArm(_) => "at-arm",
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Request as R;
        let verb = self.verb();
        match self {
            // One part or none still needs its `;` to read back as a sequence.
            R::Sequence(parts) => {
                let texts: Vec<String> = parts.iter().map(ToString::to_string).collect();
                let tail = if parts.len() < 2 { ";" } else { "" };
                write!(f, "{}{tail}", texts.join("; "))
            }
            R::MustFail(inner) => write!(f, "! {inner}"),
            R::Unplug(p) | R::Plug(p) | R::PortSuspends(p) => write!(f, "{verb} {p}"),
            R::CheckCounter(n) | R::StreamPlay(n) | R::StreamCapture(n) | R::Sleep(n) => {
                write!(f, "{verb} {n}")
            }
            R::ExpectHeadset(checks) => {
                f.write_str(verb)?;
                checks.iter().try_for_each(|c| write!(f, " {c}"))
            }
            R::CpuStop {
                label,
                audio_seconds,
            } => write!(f, "{verb} {label} {audio_seconds}"),
            R::StreamEnable(s) => write!(f, "{verb} {s}"),
            R::DspOnIndication(m) => write!(f, "{verb} {}", m.name()),
            R::HcError(k) => write!(f, "{verb} {}", k.name()),
            R::DspRaw { kind, stream } => write!(f, "{verb} {kind} {stream}"),
            R::UnplugAfter { ms, port } => write!(f, "{verb} {ms} {port}"),
            R::Button(b) => write!(f, "{verb} {b}"),
            R::XactErrors { ep, span } | R::Stall { ep, span } => {
                write!(f, "{verb} {ep:#04x} {}", span_text(*span))
            }
            R::HostStall {
                ms,
                count,
                every_ms,
            } => write!(f, "{verb} {ms} {count} {every_ms}"),
            R::AtArm(rest) if rest.is_empty() => f.write_str(verb),
            R::AtArm(rest) => write!(f, "{verb} {rest}"),
            _ => f.write_str(verb),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request form the guest scenarios and their libraries print (`sbctl`, `ktap_ask`,
    /// `SIDEBAND-CTL`, `at_arm`), with their shell variables filled in; the test below also
    /// reads the scripts themselves.
    const SCENARIO_FORMS: &[&str] = &[
        "stats",
        "unplug 1",
        "unplug 2",
        "plug 1",
        "plug 2",
        "check-counter 48000",
        "check-counter 48001",
        "expect-headset mute=1",
        "expect-headset mute=0 volume=-6",
        "cpu-start",
        "cpu-stop ordinary 5",
        "cpu-stop offloaded 5",
        "stream-enable card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2",
        "stream-enable card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2 si=1000",
        "stream-enable card=1 pcm=0 dir=capture rate=48000 bits=16 ch=2",
        "stream-enable card=1 pcm=0 dir=playback ch=2 rate=96000 bits=24",
        "stream-enable card=1 pcm=0 dir=playback ch=2 rate=192000 bits=32",
        "stream-enable card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2 buffer=16384",
        "! stream-enable card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2",
        "stream-play 48000",
        "stream-play 480000",
        "stream-start",
        "stream-capture 96000",
        "stream-disable",
        "expect-streaming",
        "! expect-streaming",
        "expect-released",
        "expect-indication",
        "dsp-crash",
        "dsp-bye",
        "dsp-del-client",
        "dsp-on-indication disable",
        "dsp-on-indication bye",
        "dsp-on-indication ignore",
        "dsp-on-indication hold",
        "dsp-on-indication keep-streaming",
        "dsp-raw enable card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2",
        "dsp-raw disable card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2",
        "dsp-raw tlv-overrun card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2",
        "dsp-raw header-length card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2",
        "dsp-raw unknown-message card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2",
        "dsp-raw no-enable card=1 pcm=0 dir=playback rate=48000 bits=16 ch=2",
        "port-suspends 1",
        "hc-error hse",
        "hc-error gone",
        "hc-revive",
        "sleep 4000",
        "unplug-after 17 1",
        "button vol-up",
        "button mute",
        "button play-pause",
        "stall 0x83 1",
        "stall 0x83 off",
        "xact-errors 0x83 on",
        "xact-errors 0x83 off",
        "xact-errors 0x01 50",
        "host-stall 60 3 1000",
        "selftest-panic",
        "unplug 1; sleep 300",
        "xact-errors 0x83 on; sleep 8000; xact-errors 0x83 off",
        "at-arm usb_offload_put+1 ffff800080a3b2c0-ffff800080a3b3a0 unplug 1; sleep 300",
        "at-arm qc_usb_audio_offload_disconnect+1 ffff800079f01000-ffff800079f01200",
        "at-arm mutex_lock+1@qc_usb_audio_offload_disconnect ffff80008123f000-ffff80008123f040 ffff800079f01000-ffff800079f01200 unplug 1",
    ];

    fn parse(s: &str) -> Request {
        s.parse()
            .unwrap_or_else(|e| panic!("'{s}' does not parse: {e:#}"))
    }

    fn error(s: &str) -> String {
        match s.parse::<Request>() {
            Ok(r) => panic!("'{s}' parses as {r:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn every_form_the_scenarios_use_parses_and_reads_back() {
        for form in SCENARIO_FORMS {
            let r = parse(form);
            assert_eq!(parse(&r.to_string()), r, "{form} → {r}");
        }
    }

    /// The requests in the guest scripts as written: after `SIDEBAND-CTL` (up to the closing
    /// quote), after `sbctl` and `ktap_ask NAME` (up to `&&`, `||`, `;`, `>`, `then`), and an
    /// `at_arm` trigger's request. Pass-throughs (`$*`, `"$@"`, `$4`) are left out.
    fn script_requests(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.contains("() {") {
                continue;
            }
            if let Some((_, rest)) = line.split_once("SIDEBAND-CTL ") {
                found.push(rest.split('"').next().unwrap_or("").to_string());
            }
            for (marker, skip) in [("sbctl ", 0), ("ktap_ask ", 1), ("at_arm ", 1)] {
                for (i, _) in line.match_indices(marker) {
                    let rest = &line[i + marker.len()..];
                    let end = ["&&", "||", ";", ">", " then", "\\", " #"]
                        .iter()
                        .filter_map(|t| rest.find(t))
                        .min()
                        .unwrap_or(rest.len());
                    let words: Vec<&str> = rest[..end].split_whitespace().skip(skip).collect();
                    found.push(words.join(" ").replace('"', ""));
                }
            }
        }
        found.retain(|r| !r.is_empty() && !["$*", "$@", "$4", "$_t"].iter().any(|p| r.contains(p)));
        found
    }

    /// Shell variables filled in with values of the kind the scripts give them.
    fn fill(request: &str) -> String {
        let mut r = request.to_string();
        for (var, value) in [
            (
                "$OFFLOAD_FORMAT",
                "pcm=0 dir=playback rate=48000 bits=16 ch=2",
            ),
            ("$fmt", "rate=96000 bits=24"),
            ("$card", "1"),
            ("dsp-raw $1", "dsp-raw no-enable"),
            ("button $1", "button vol-up"),
        ] {
            r = r.replace(var, value);
        }
        // Every other variable is a number (samples, rates, delays, counts).
        let mut out = String::new();
        let mut chars = r.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '$' {
                out.push(c);
                continue;
            }
            while chars
                .peek()
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                chars.next();
            }
            out.push_str("16");
        }
        out
    }

    #[test]
    fn every_request_in_the_guest_scripts_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-tests");
        let mut seen = 0;
        for dir in ["scenarios", "lib"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                for request in script_requests(&text) {
                    let filled = fill(&request);
                    if let Err(e) = filled.parse::<Request>() {
                        panic!("{}: '{request}' ('{filled}'): {e:#}", path.display());
                    }
                    seen += 1;
                }
            }
        }
        assert!(seen > 100, "only {seen} requests found");
    }

    /// One request of every verb, arguments not at their defaults where there are any.
    fn one_of_each() -> Vec<Request> {
        let stream = StreamSpec {
            card: 3,
            pcm: 1,
            dir: Direction::Capture,
            bits: 24,
            ch: 1,
            rate: 96000,
            buffer: 4096,
            si: Some(125),
        };
        let malformed = Malformed::ALL.map(|m| Request::DspRaw {
            kind: RawKind::Malformed(m),
            stream,
        });
        let modes = OnIndication::ALL.map(Request::DspOnIndication);
        let buttons = Button::ALL.map(Request::Button);
        let hc = [HcError::Hse, HcError::Hce, HcError::Gone].map(Request::HcError);
        let mut all = vec![
            Request::Stats,
            Request::Unplug(1),
            Request::Plug(255),
            Request::CheckCounter(48001),
            Request::ExpectHeadset(vec![]),
            Request::ExpectHeadset(vec![
                HeadsetCheck::Mute(true),
                HeadsetCheck::Volume(-6.5),
                HeadsetCheck::Rate(44100),
            ]),
            Request::CpuStart,
            Request::CpuStop {
                label: "offload".into(),
                audio_seconds: 2.5,
            },
            Request::StreamEnable(stream),
            Request::StreamPlay(480000),
            Request::StreamStart,
            Request::ExpectStreaming,
            Request::ExpectReleased,
            Request::StreamCapture(96000),
            Request::StreamDisable,
            Request::ExpectIndication,
            Request::DspCrash,
            Request::DspBye,
            Request::DspDelClient,
            Request::PortSuspends(2),
            Request::HcRevive,
            Request::DspRaw {
                kind: RawKind::Enable,
                stream,
            },
            Request::DspRaw {
                kind: RawKind::Disable,
                stream,
            },
            Request::Sleep(10_000),
            Request::UnplugAfter { ms: 20, port: 1 },
            Request::XactErrors {
                ep: 0x83,
                span: FaultSpan::UntilCleared,
            },
            Request::XactErrors {
                ep: 0x01,
                span: FaultSpan::Next(50),
            },
            Request::Stall {
                ep: 0x83,
                span: FaultSpan::Next(0),
            },
            Request::HostStall {
                ms: 60,
                count: 3,
                every_ms: 1000,
            },
            Request::SelftestPanic,
            Request::SelftestDmaWrite,
            Request::SelftestStuck,
            Request::AtArm("f+1 1000-1100 unplug 1; sleep 300".into()),
            Request::AtArm(String::new()),
        ];
        all.extend(malformed.into_iter().chain(modes).chain(buttons).chain(hc));
        all.extend(composites());
        all
    }

    /// `!` and `;`, as far as text can hold them (a sequence does not nest).
    fn composites() -> Vec<Request> {
        vec![
            Request::MustFail(Box::new(Request::Unplug(3))),
            Request::Sequence(vec![Request::Unplug(1), Request::Sleep(300)]),
            Request::Sequence(vec![Request::Unplug(1)]),
            Request::Sequence(vec![]),
            Request::Sequence(vec![
                Request::Plug(1),
                Request::MustFail(Box::new(Request::ExpectStreaming)),
            ]),
            Request::MustFail(Box::new(Request::Sequence(vec![
                Request::Plug(1),
                Request::Plug(2),
            ]))),
        ]
    }

    #[test]
    fn every_verb_reads_back_from_its_canonical_form() {
        let all = one_of_each();
        for r in &all {
            let text = r.to_string();
            assert_eq!(parse(&text), *r, "'{text}'");
        }
        for (verb, _) in VERBS {
            assert!(
                all.iter().any(|r| r.verb() == *verb),
                "no {verb} in the test"
            );
        }
        for r in &all {
            let verb = r.verb();
            assert!(
                matches!(verb, ";" | "!") || VERBS.iter().any(|(v, _)| *v == verb),
                "{verb} is not in VERBS"
            );
        }
    }

    #[test]
    fn canonical_forms_are_the_documented_ones() {
        assert_eq!(
            parse("stream-enable card=1 rate=96000 bits=24").to_string(),
            "stream-enable card=1 pcm=0 dir=playback bits=24 ch=2 rate=96000 buffer=0"
        );
        assert_eq!(
            parse("xact-errors 131 on").to_string(),
            "xact-errors 0x83 on"
        );
        assert_eq!(parse("stall 0x01 0").to_string(), "stall 0x01 off");
        assert_eq!(parse("  !  unplug 1 ").to_string(), "! unplug 1");
        assert_eq!(parse("unplug 1;;sleep 3").to_string(), "unplug 1; sleep 3");
        assert_eq!(parse("at-arm  f+1  1-2").to_string(), "at-arm f+1  1-2");
    }

    #[test]
    fn composites_bind_as_today() {
        let plug = |p| Box::new(Request::Plug(p));
        assert_eq!(
            parse("! plug 1; plug 2"),
            Request::MustFail(Box::new(Request::Sequence(vec![
                Request::Plug(1),
                Request::Plug(2)
            ])))
        );
        assert_eq!(
            parse("plug 1; ! plug 2"),
            Request::Sequence(vec![Request::Plug(1), Request::MustFail(plug(2))])
        );
        assert_eq!(parse("!plug 2"), Request::MustFail(plug(2)));
        assert_eq!(
            parse("at-arm f+1 1-2 xact-errors 0x83 on; sleep 8000"),
            Request::AtArm("f+1 1-2 xact-errors 0x83 on; sleep 8000".into())
        );
        assert_eq!(
            parse("unplug 1;"),
            Request::Sequence(vec![Request::Unplug(1)])
        );
        assert!(error("at-armed").starts_with("unknown request 'at-armed'"));
    }

    #[test]
    fn errors_name_the_verb_and_what_was_wrong() {
        assert_eq!(
            error("unplug x"),
            "unplug: PORT must be a number 1-255, got 'x'"
        );
        assert_eq!(
            error("plug 0"),
            "plug: PORT must be a number 1-255, got '0'"
        );
        assert_eq!(
            error("unplug-after 10 256"),
            "unplug-after: PORT must be a number 1-255, got '256'"
        );
        assert_eq!(
            error("stream-play lots"),
            "stream-play: SAMPLES must be a number, got 'lots'"
        );
        assert_eq!(
            error("unplug"),
            "unplug: expected `unplug PORT`, got 'unplug'"
        );
        assert_eq!(
            error("stats now"),
            "stats: expected `stats`, got 'stats now'"
        );
        assert_eq!(error("sleep 20000"), "sleep 20000: at most 10000 ms");
        assert_eq!(
            error("hc-error hot"),
            "hc-error hot: expected hse, hce or gone"
        );
        assert_eq!(
            error("host-stall 0 1 1"),
            "host-stall: bad stall length in ms '0' (1..=1000)"
        );
        assert_eq!(
            error("host-stall 10 101 1"),
            "host-stall: bad count '101' (1..=100)"
        );
        assert!(error("button volume-up").starts_with("button: unknown button 'volume-up'"));
        assert!(error("dsp-on-indication nap").starts_with("dsp-on-indication: 'nap'"));
        assert!(error("dsp-raw sideways card=1").starts_with("dsp-raw: 'sideways': a raw request"));
        assert_eq!(
            error("expect-headset mute=yes"),
            "expect-headset: mute=yes: 0 or 1"
        );
        assert!(error("! frob").starts_with("unknown request 'frob'"));
        assert!(error("plug 1; frob 2").starts_with("unknown request 'frob 2'"));
        let e = error("frobnicate 1");
        let known: Vec<String> = usage_items().collect();
        assert_eq!(
            e,
            format!(
                "unknown request 'frobnicate 1' (known: {}; 'A; B' runs both; '! REQUEST' must fail)",
                known.join(", ")
            )
        );
        assert!(
            e.contains("stats, unplug PORT, plug PORT, check-counter SAMPLES"),
            "{e}"
        );
        assert!(
            e.contains("host-stall MS COUNT EVERY_MS, selftest-panic, selftest-dma-write, selftest-stuck, at-arm"),
            "{e}"
        );
        assert!(error("").starts_with("unknown request ''"));
    }

    #[test]
    fn stream_parameters_parse_with_defaults_and_name_errors() {
        let Request::StreamEnable(s) = parse("stream-enable card=1 rate=96000 bits=24") else {
            panic!()
        };
        let p = s.params();
        assert_eq!((p.card, p.rate, p.channels), (1, 96000, 2));
        assert_eq!(p.audio_format, AudioFormat::S24_3Le as u32);
        assert_eq!(p.direction, Direction::Playback);
        assert_eq!((p.pcm, p.xfer_buff_size, p.service_interval), (0, 0, None));
        assert!(error("stream-enable rate=48000").contains("card=N"));
        assert!(error("stream-enable card=1 bits=20").contains("16, 24 or 32"));
        assert!(error("stream-enable card=1 volume=3").contains("unknown stream parameter"));
        assert!(error("stream-enable card=1 rate=fast").contains("rate=fast: not a number"));
        assert!(error("stream-enable card=1 pcm=256").contains("pcm out of range"));
        assert!(error("stream-enable card=1 dir=up").contains("dir=up: playback or capture"));
        assert!(error("stream-enable card").contains("'card' is not key=value"));
        assert!(error("dsp-raw enable").starts_with("dsp-raw: stream needs card=N"));
    }

    #[test]
    fn endpoints_and_spans_parse() {
        let fault = |s: &str| match parse(s) {
            Request::Stall { ep, span } => (ep, span),
            r => panic!("{r:?}"),
        };
        assert_eq!(fault("stall 0x83 on"), (0x83, FaultSpan::UntilCleared));
        assert_eq!(fault("stall 0X83 off"), (0x83, FaultSpan::Next(0)));
        assert_eq!(fault("stall 131 12"), (0x83, FaultSpan::Next(12)));
        assert!(error("stall 0x183 on").contains("bad endpoint address '0x183'"));
        assert!(error("stall ep3 on").contains("bad endpoint address 'ep3'"));
        assert!(error("xact-errors 0x83 -1").contains("bad count '-1' (a number, on or off)"));
        assert!(error("xact-errors 0x83").starts_with("xact-errors: expected"));
    }

    #[test]
    fn help_lists_every_verb_from_the_table() {
        let h = help();
        for (verb, args) in VERBS {
            assert!(
                h.contains(&format!("  {verb} {args}").trim_end().to_string()),
                "{verb}"
            );
        }
        assert!(h.contains("! REQUEST"));
    }
}
