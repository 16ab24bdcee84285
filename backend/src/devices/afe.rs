//! The DSP's answer to an AFE USB port start, as on a phone: the AFE has already acked
//! DEVICE_START (the guest waits for that ack holding its PCM and AFE locks, so nothing here may
//! run before it), then the DSP asks the guest's offload driver for the stream with the QMI
//! enable that `stream-enable` sends, checks the answer the same way, and starts its engine on
//! the granted rings, playing the PCM user space queues through ASM. DEVICE_STOP stops the engine and disables the stream. One thread,
//! `adsp-afe`, so neither the GLINK poll nor the console ever waits for QMI.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sideband_device::adsp::apr::AfeEvent;

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
    loop {
        match events.recv_timeout(IDLE) {
            Ok(event) => {
                let Some(d) = devices.upgrade() else { return };
                let outcome = handle(&d, event).map_err(|e| format!("{e:#}"));
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

fn handle(d: &RunningDevices, event: AfeEvent) -> anyhow::Result<String> {
    match event {
        AfeEvent::Start(port) => {
            let params = port.stream_params();
            let enabled = d.stream_enable_params(params)?;
            let started = d.stream_run(&Request::StreamStart, true)?;
            Ok(format!(
                "port start (card {} pcm {}, {} Hz, {} bit, {} ch) -> stream enable: {enabled}; {started}",
                port.card, port.pcm, port.rate, port.bits, port.channels
            ))
        }
        // The stream may be gone already: the guest disabled it after a disconnect indication.
        AfeEvent::Stop if d.adsp.as_ref().is_none_or(|a| !a.streaming()) => {
            Ok("port stop: no stream to disable (already released)".into())
        }
        AfeEvent::Stop => Ok(format!(
            "port stop -> {}",
            d.execute(&Request::StreamDisable, 0)?
        )),
    }
}
