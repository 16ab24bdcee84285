//! Handlers of the requests that make the headset misbehave on purpose or press its buttons
//! (`button`, `xact-errors`, `stall`; EP an endpoint address with its direction bit, e.g. 0x83
//! for the HID interrupt IN endpoint) and of `host-stall`, the host not running the controller
//! for MS ms, COUNT times, EVERY_MS apart. The grammar is crate::request.

use anyhow::Result;
use sideband_device::usb::hid::Button;
use sideband_device::usb::{Fault, FaultSpan};

use super::usb::RunningUsb;

/// Host stalls: the controller (its clock, the DSP on that clock, its MMIO) stops for `ms`,
/// as when the host does not schedule the backend; from a background thread, so the request
/// returns at once and the stalls land while the next requests run.
pub(super) fn host_stalls(usb: &RunningUsb, ms: u64, count: u64, every: u64) -> Result<String> {
    let every = every.max(ms);
    usb.stall_host(
        std::time::Duration::from_millis(ms),
        count,
        std::time::Duration::from_millis(every),
    )?;
    Ok(format!(
        "{count} host stall(s) of {ms} ms, one every {every} ms"
    ))
}

/// `button NAME`: a press and a release report.
pub(super) fn button(usb: &RunningUsb, button: Button) -> Result<String> {
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

/// `xact-errors` / `stall`: `fault` on endpoint `address` for `span`.
pub(super) fn fault(
    usb: &RunningUsb,
    fault: Fault,
    address: u8,
    span: FaultSpan,
) -> Result<String> {
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
