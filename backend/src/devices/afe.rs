//! The DSP's answer to an AFE USB port start, as on a phone: the AFE has already acked
//! DEVICE_START (the guest waits for that ack holding its PCM and AFE locks, so nothing here may
//! run before it), then the DSP asks the guest's offload driver for the stream with the QMI
//! enable that `stream-enable` sends, checks the answer the same way, and starts its engine on
//! the granted rings, playing the PCM user space queues through ASM. DEVICE_STOP stops the
//! engine and disables the stream. One thread, `adsp-afe`, so neither the GLINK poll nor the
//! console ever waits for QMI.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sideband_device::adsp::apr::AfeEvent;

use super::usb::QuietFigures;
use super::RunningDevices;
use crate::request::Request;

/// How often the thread looks whether the devices are gone.
const IDLE: Duration = Duration::from_millis(200);

/// Serves AFE events until the devices are dropped or the GLINK edge stops.
pub(super) fn start(devices: &Arc<RunningDevices>, events: Receiver<AfeEvent>) {
    let weak = Arc::downgrade(devices);
    let spawned = std::thread::Builder::new()
        .name("adsp-afe".into())
        .spawn(move || crate::fatal::contain(|| serve(&weak, &events)));
    if let Err(e) = spawned {
        log::error!("cannot start the adsp-afe thread: {e}; AFE port starts will not stream");
    }
}

fn serve(devices: &Weak<RunningDevices>, events: &Receiver<AfeEvent>) {
    // The primary interrupter's and the headset's figures when the current stream started.
    let mut at_start: Option<QuietFigures> = None;
    loop {
        match events.recv_timeout(IDLE) {
            Ok(event) => {
                let Some(d) = devices.upgrade() else { return };
                let outcome = handle(&d, event, &mut at_start).map_err(|e| format!("{e:#}"));
                match &outcome {
                    Ok(a) => log::info!("AFE-driven stream: {a}"),
                    Err(e) => log::warn!("AFE-driven stream failed: {e}"),
                }
                if let Some(g) = &d.glink {
                    g.note_afe_outcome(outcome);
                }
            }
            Err(RecvTimeoutError::Timeout) if devices.strong_count() > 0 => {}
            Err(_) => return,
        }
    }
}

fn handle(
    d: &RunningDevices,
    event: AfeEvent,
    at_start: &mut Option<QuietFigures>,
) -> anyhow::Result<String> {
    let quiet = || d.usb.as_ref().map(|u| u.quiet_figures());
    match event {
        AfeEvent::Start(port) => {
            *at_start = None;
            let params = port.stream_params();
            let enabled = d.stream_enable_params(params)?;
            let started = d.stream_run(&Request::StreamStart, true)?;
            *at_start = quiet();
            Ok(format!(
                "port start (card {} pcm {}, {} Hz, {} bit, {} ch) -> stream enable: {enabled}; {started}",
                port.card, port.pcm, port.rate, port.bits, port.channels
            ))
        }
        // The stream may be gone already: the guest disabled it after a disconnect indication.
        AfeEvent::Stop if d.adsp.as_ref().is_none_or(|a| !a.streaming()) => {
            Ok("port stop: no stream to disable (already released)".into())
        }
        AfeEvent::Stop => {
            // Read before the disable, whose control transfers use the primary interrupter.
            let during = match (at_start.take(), quiet()) {
                (Some(a), Some(b)) => {
                    let d = b.since(&a);
                    format!(
                        "; during the stream: primary interrupter {} event(s), {} IRQ(s); headset {} missed interval(s)",
                        d.primary_events, d.primary_irqs, d.missed_intervals
                    )
                }
                _ => String::new(),
            };
            Ok(format!(
                "port stop -> {}{during}",
                d.execute(&Request::StreamDisable, 0)?
            ))
        }
    }
}
