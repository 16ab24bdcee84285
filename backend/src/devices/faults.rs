//! Requests that make the headset misbehave on purpose or press its buttons: `button NAME`,
//! `xact-errors EP COUNT|on|off` and `stall EP COUNT|on|off` (EP an endpoint address with its
//! direction bit, e.g. 0x83 for the HID interrupt IN endpoint); and `host-stall MS COUNT EVERY_MS`,
//! the host not running the controller for MS ms, COUNT times, EVERY_MS apart.

use anyhow::{Context, Result};
use sideband_device::usb::hid::Button;
use sideband_device::usb::{Fault, FaultSpan};

use super::usb::RunningUsb;

/// A fault or button request, or `None` when `words` is not one.
pub(super) fn control(usb: &RunningUsb, words: &[&str]) -> Option<Result<String>> {
    match words {
        ["button", name] => Some(button(usb, name)),
        ["xact-errors", ep, span] => Some(fault(usb, Fault::TransactionError, ep, span)),
        ["stall", ep, span] => Some(fault(usb, Fault::Stall, ep, span)),
        ["host-stall", ms, count, every] => Some(host_stalls(usb, ms, count, every)),
        ["button" | "xact-errors" | "stall" | "host-stall", ..] => Some(Err(anyhow::anyhow!(
            "usage: button vol-up|vol-down|mute|play-pause, xact-errors EP COUNT|on|off, stall EP COUNT|on|off, host-stall MS COUNT EVERY_MS"
        ))),
        _ => None,
    }
}

/// Host stalls: the controller (its clock, the DSP on that clock, its MMIO) stops for `ms`,
/// as when the host does not schedule the backend; from a background thread, so the request
/// returns at once and the stalls land while the next requests run.
fn host_stalls(usb: &RunningUsb, ms: &str, count: &str, every: &str) -> Result<String> {
    let number = |what: &str, v: &str, max: u64| -> Result<u64> {
        match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => anyhow::bail!("host-stall: bad {what} '{v}' (1..={max})"),
        }
    };
    let ms = number("stall length in ms", ms, 1000)?;
    let count = number("count", count, 100)?;
    let every = number("period in ms", every, 60_000)?.max(ms);
    usb.stall_host(
        std::time::Duration::from_millis(ms),
        count,
        std::time::Duration::from_millis(every),
    )?;
    Ok(format!(
        "{count} host stall(s) of {ms} ms, one every {every} ms"
    ))
}

fn button(usb: &RunningUsb, name: &str) -> Result<String> {
    let button: Button = name.parse()?;
    let mut h = usb
        .headset()
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("headset lock poisoned"))?;
    let buttons = h.function_mut().buttons_mut();
    if !buttons.press(button) {
        anyhow::bail!("{button}: the report queue is full (the host is not polling)");
    }
    Ok(format!(
        "{button} pressed: press and release reports queued on {:#04x} ({} pending, {} sent so far)",
        buttons.endpoint(),
        buttons.pending(),
        buttons.reports_sent()
    ))
}

/// Parses `0x83`, `83` (hex without the prefix is not accepted: it reads as decimal) or `131`.
fn parse_endpoint(ep: &str) -> Result<u8> {
    let parsed = match ep.strip_prefix("0x").or_else(|| ep.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => ep.parse(),
    };
    parsed.with_context(|| format!("bad endpoint address '{ep}' (e.g. 0x83)"))
}

fn parse_span(span: &str) -> Result<FaultSpan> {
    Ok(match span {
        "on" => FaultSpan::UntilCleared,
        "off" => FaultSpan::Next(0),
        n => FaultSpan::Next(
            n.parse()
                .with_context(|| format!("bad count '{n}' (a number, on or off)"))?,
        ),
    })
}

fn fault(usb: &RunningUsb, fault: Fault, ep: &str, span: &str) -> Result<String> {
    let address = parse_endpoint(ep)?;
    let span = parse_span(span)?;
    let mut h = usb
        .headset()
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("headset lock poisoned"))?;
    let plan = h.faults_mut();
    let before = plan.active(address);
    let injected = plan.injected();
    plan.set(address, fault, span)?;
    let what = match fault {
        Fault::TransactionError => "transaction errors",
        Fault::Stall => "STALLs",
    };
    Ok(match span {
        FaultSpan::UntilCleared => format!("endpoint {address:#04x}: {what} until cleared"),
        FaultSpan::Next(0) => {
            match before {
                Some((f, _)) if f == fault => {
                    format!("endpoint {address:#04x}: {what} cleared ({injected} faults injected in all)")
                }
                _ => format!(
                    "endpoint {address:#04x}: had no {what} ({injected} faults injected in all)"
                ),
            }
        }
        FaultSpan::Next(n) => format!("endpoint {address:#04x}: {what} on the next {n} transfers"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_spans_parse() {
        assert_eq!(parse_endpoint("0x83").unwrap(), 0x83);
        assert_eq!(parse_endpoint("131").unwrap(), 0x83);
        assert!(parse_endpoint("0x183").is_err());
        assert!(parse_endpoint("ep3").is_err());
        assert_eq!(parse_span("on").unwrap(), FaultSpan::UntilCleared);
        assert_eq!(parse_span("off").unwrap(), FaultSpan::Next(0));
        assert_eq!(parse_span("12").unwrap(), FaultSpan::Next(12));
        assert!(parse_span("-1").is_err());
    }

    #[test]
    fn requests_reach_the_headset() {
        use crate::vm::machine::DeviceSet;
        let out = tempfile::tempdir().unwrap();
        let set = DeviceSet {
            xhci: true,
            ..DeviceSet::default()
        };
        let d = super::super::RunningDevices::start(&set, out.path(), "headset-uac2").unwrap();
        let pid = std::process::id();
        let a = d.control("button vol-up", pid).unwrap();
        assert!(
            a.starts_with("vol-up pressed") && a.contains("0x83 (2 pending"),
            "{a}"
        );
        assert!(d.control("button volume-up", pid).is_err());
        assert!(d.control("button", pid).is_err());
        let a = d.control("xact-errors 0x83 on", pid).unwrap();
        assert_eq!(a, "endpoint 0x83: transaction errors until cleared");
        let a = d.control("stall 0x01 3", pid).unwrap();
        assert_eq!(a, "endpoint 0x01: STALLs on the next 3 transfers");
        let a = d.control("xact-errors 0x83 off", pid).unwrap();
        assert!(
            a.starts_with("endpoint 0x83: transaction errors cleared"),
            "{a}"
        );
        assert!(d.control("stall 0x00 on", pid).is_err(), "endpoint 0");
        assert!(d.control("stall 0x83 forever", pid).is_err());
        assert!(d.control("xact-errors 0x83", pid).is_err());
        let none =
            super::super::RunningDevices::start(&DeviceSet::default(), out.path(), "headset-uac2")
                .unwrap();
        assert!(
            none.control("button mute", pid).is_err(),
            "no xHCI, no headset"
        );
    }
}
