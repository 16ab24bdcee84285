//! The xHCI with its devices for one boot: the controller served over vfio-user and ticked by its
//! clock, the headset (recording to WAV) and the loopback device on its ports, hot-plug, and the
//! DSP's streams on the handed-over rings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use sideband_device::adsp::engine::StreamEngine;
use sideband_device::smmu::SmmuTable;
use sideband_device::usb::uac::{AudioProfile, UacDevice};
use sideband_device::usb::{Faulty, SharedDevice};
use sideband_device::xhci::{Config as XhciConfig, LoopbackDevice};

use super::judgement::XhciFigures;
use super::stream::{dsp_figures, engine_hook, DspTotals, EngineRun, EngineSlot, StreamShape};
use super::xhci::{XhciClock, XhciFunction};
use super::{HEADSET_PORT, LOOPBACK_PORT};
use crate::audio::recording::{Recording, RecordingSink, DEFAULT_CAP};
use crate::capture::CaptureWriter;
use crate::request::{HcError, HeadsetCheck};
use crate::transport::dma::DmaMemory;
use crate::transport::msix::MsixFds;
use crate::transport::vfio_user::VfioUserFunction;
use crate::vm::machine::Q6USB_ENDPOINT;

/// Completed TDs after which `stream-start` calls a stream going.
const STARTED_AFTER_TDS: u64 = 20;

/// The DSP's playback engine for an enabled stream, and the nominal packet size. With a
/// feedback endpoint the DSP follows the device's clock: packets may carry a frame more.
fn playback_engine(
    r: &sideband_device::adsp::StreamResources,
    rate: u32,
    channels: u32,
    samples: u64,
) -> (StreamEngine, u32) {
    let StreamShape {
        interval,
        frames,
        width,
    } = StreamShape::of(r, rate);
    let frame_bytes = channels * width;
    let engine = if r.sync_ep.is_some() && r.mem.sync_ring.is_some() {
        StreamEngine::new(
            r,
            (frames + 1) * frame_bytes,
            width,
            samples,
            Q6USB_ENDPOINT,
        )
        .with_feedback(r, frame_bytes, interval)
    } else {
        StreamEngine::new(r, frames * frame_bytes, width, samples, Q6USB_ENDPOINT)
    };
    (engine, frames * frame_bytes)
}

/// See [`RunningUsb::quiet_figures`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct QuietFigures {
    pub primary_events: u64,
    pub primary_irqs: u64,
    pub missed_intervals: u64,
}

impl QuietFigures {
    /// What happened between `before` and these figures.
    pub fn since(&self, before: &QuietFigures) -> QuietFigures {
        QuietFigures {
            primary_events: self.primary_events.saturating_sub(before.primary_events),
            primary_irqs: self.primary_irqs.saturating_sub(before.primary_irqs),
            missed_intervals: self
                .missed_intervals
                .saturating_sub(before.missed_intervals),
        }
    }
}

/// The xHCI, its clock and the devices on its ports.
#[derive(Debug)]
pub(super) struct RunningUsb {
    pub(super) xhci: Arc<Mutex<XhciFunction>>,
    /// Devices unplugged by a control request, by port, waiting to be plugged back.
    parked: Arc<Mutex<Parked>>,
    msix: MsixFds,
    pub(super) headset: SharedDevice<Faulty<UacDevice>>,
    recording: Arc<Mutex<Recording>>,
    dma: DmaMemory,
    pub(super) engine: EngineSlot,
    /// The figures of the DSP's streams that ended.
    dsp_totals: DspTotals,
    /// `hc-error hse` and `hc-error hce` requests: the controller errors that were asked for.
    hse_requested: AtomicU64,
    hce_requested: AtomicU64,
    pub(super) capture: Mutex<Option<CaptureWriter>>,
    // Dropped first: the clock stops before the server and the model go away.
    clock: XhciClock,
    server: VfioUserFunction,
}

impl RunningUsb {
    pub(super) fn start(
        socket: &std::path::Path,
        record_dir: &std::path::Path,
        headset: &str,
    ) -> Result<Self> {
        let dma = DmaMemory::default();
        let msix = MsixFds::default();
        let mut function = XhciFunction::new(XhciConfig::default(), msix.clone())?;
        let profile: AudioProfile = headset
            .parse()
            .with_context(|| format!("headset profile '{headset}'"))?;
        let mut device = UacDevice::headset(profile).context("headset descriptors")?;
        let recording = Arc::new(Mutex::new(Recording::new(record_dir, DEFAULT_CAP)));
        device
            .function_mut()
            .recorder_mut()
            .set_sink(Some(Box::new(RecordingSink(recording.clone()))));
        let headset = SharedDevice::new(Faulty::new(device));
        function
            .controller
            .attach(HEADSET_PORT, Box::new(headset.clone()))
            .map_err(|e| anyhow::anyhow!("cannot attach the headset: {e}"))?;
        function
            .controller
            .attach(LOOPBACK_PORT, Box::new(LoopbackDevice::new()))
            .map_err(|e| anyhow::anyhow!("cannot attach the loopback device: {e}"))?;
        let xhci = Arc::new(Mutex::new(function));
        let server = VfioUserFunction::serve(socket, xhci.clone(), dma.clone(), msix.clone())
            .context("cannot start the xHCI's vfio-user server")?;
        let engine = EngineSlot::default();
        let clock = XhciClock::start(xhci.clone(), dma.clone(), engine_hook(engine.clone()))
            .context("cannot start the xHCI clock")?;
        Ok(RunningUsb {
            xhci,
            parked: Arc::default(),
            msix,
            headset,
            recording,
            dma,
            engine,
            dsp_totals: DspTotals::default(),
            hse_requested: AtomicU64::new(0),
            hce_requested: AtomicU64::new(0),
            capture: Mutex::default(),
            clock,
            server,
        })
    }

    /// Starts capturing every transfer to the pcap file `path` (at most `cap` bytes).
    pub(super) fn start_capture(&self, path: &std::path::Path, cap: u64) -> Result<()> {
        let (writer, observer) = CaptureWriter::create(path, cap, crate::capture::epoch_us())
            .with_context(|| format!("cannot create the capture {}", path.display()))?;
        let mut x = lock_xhci(&self.xhci)?;
        x.controller.set_observer(Some(Box::new(observer)));
        *self
            .capture
            .lock()
            .map_err(|_| anyhow::anyhow!("lock poisoned"))? = Some(writer);
        Ok(())
    }

    /// Stops the capture: detaches the observer and waits for the file to be complete.
    fn finish_capture(&self) -> Option<crate::capture::CaptureSummary> {
        let writer = crate::fatal::lock(&self.capture, "capture")?.take()?;
        if let Some(mut x) = crate::fatal::lock(&self.xhci, "xHCI") {
            x.controller.set_observer(None);
        }
        Some(writer.finish())
    }

    /// The headset with its endpoint fault plan (for `faults.rs`).
    /// Holds the controller `count` times for `stall`, `every` apart (the first after `every`),
    /// on a thread of its own.
    pub(super) fn stall_host(
        &self,
        stall: std::time::Duration,
        count: u64,
        every: std::time::Duration,
    ) -> Result<()> {
        let xhci = self.xhci.clone();
        std::thread::Builder::new()
            .name("host-stall".into())
            .spawn(move || {
                for _ in 0..count {
                    std::thread::sleep(every.saturating_sub(stall));
                    let Some(_held) = crate::fatal::lock(&xhci, "xHCI") else {
                        return;
                    };
                    std::thread::sleep(stall);
                }
            })
            .context("cannot start the host-stall thread")?;
        Ok(())
    }

    pub(super) fn headset(&self) -> &SharedDevice<Faulty<UacDevice>> {
        &self.headset
    }

    /// `unplug-after MS PORT`: unplugs PORT MS milliseconds from now, while the scenario's next
    /// requests run (a fault on a timer, to compare with one at an exact kernel function).
    pub(super) fn unplug_after(&self, ms: u64, port: u8) -> Result<String> {
        let (xhci, parked) = (self.xhci.clone(), self.parked.clone());
        std::thread::Builder::new()
            .name("unplug-timer".into())
            .spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                match hotplug(&xhci, &parked, "unplug", port) {
                    Ok(a) => log::info!("unplug timer: {a}"),
                    Err(e) => log::warn!("unplug timer: {e:#}"),
                }
            })
            .context("cannot start the unplug timer")?;
        Ok(format!("port {port} will be unplugged in {ms} ms"))
    }

    /// `unplug PORT` / `plug PORT`: hot-unplug a root port's device and plug it back.
    pub(super) fn hotplug(&self, verb: &str, port: u8) -> Result<String> {
        hotplug(&self.xhci, &self.parked, verb, port)
    }
}

/// The xHCI function, locked (a poisoned lock is an error and the run's failure, not a panic).
#[track_caller]
fn lock_xhci(xhci: &Mutex<XhciFunction>) -> Result<std::sync::MutexGuard<'_, XhciFunction>> {
    crate::fatal::lock(xhci, "xHCI").context("xHCI lock poisoned")
}

/// Devices unplugged by a control request, by port, waiting to be plugged back.
type Parked = std::collections::BTreeMap<u8, Box<dyn sideband_device::usb::UsbDevice>>;

fn hotplug(
    xhci: &Mutex<XhciFunction>,
    parked: &Mutex<Parked>,
    verb: &str,
    port: u8,
) -> Result<String> {
    {
        let mut x = lock_xhci(xhci)?;
        let mut parked = parked
            .lock()
            .map_err(|_| anyhow::anyhow!("lock poisoned"))?;
        match verb {
            "unplug" => match x.controller.detach(port) {
                Ok(Some(dev)) => {
                    parked.insert(port, dev);
                    Ok(format!("port {port} unplugged"))
                }
                Ok(None) => anyhow::bail!("port {port} has no device"),
                Err(e) => anyhow::bail!("port {port}: {e}"),
            },
            _ => {
                let dev = parked
                    .remove(&port)
                    .ok_or_else(|| anyhow::anyhow!("nothing was unplugged from port {port}"))?;
                x.controller
                    .attach(port, dev)
                    .map_err(|e| anyhow::anyhow!("port {port}: {e}"))?;
                Ok(format!("port {port} plugged"))
            }
        }
    }
}

impl RunningUsb {
    /// Checks the QMI answer against the controller: the slot is the headset's, the data
    /// endpoint's transfer ring is the one the answer hands over, and the named interrupter is
    /// the secondary interrupter with one event ring segment where the answer says.
    pub(super) fn check_against_controller(
        &self,
        r: &sideband_device::adsp::StreamResources,
    ) -> Result<String> {
        let x = lock_xhci(&self.xhci)?;
        let mem = self.dma.snapshot();
        let ep = r.data_ep.b_endpoint_address;
        let dci = 2 * (ep & 0x0f) + u8::from(ep & 0x80 != 0);
        let slot = u8::try_from(r.slot_id).context("slot id out of range")?;
        let e = x.endpoint_view(slot, dci, &mem).with_context(|| {
            format!("slot {slot} endpoint {dci} has no readable output context")
        })?;
        if e.root_port != HEADSET_PORT {
            anyhow::bail!(
                "slot {slot} sits on root port {}, the headset is on port {HEADSET_PORT}",
                e.root_port
            );
        }
        if e.tr_dequeue != r.mem.transfer_ring.dma {
            anyhow::bail!(
                "endpoint {dci}'s TR dequeue pointer is {:#x}, the answer's transfer ring is at {:#x}",
                e.tr_dequeue,
                r.mem.transfer_ring.dma
            );
        }
        let n = r.interrupter_num;
        let event_ring_dma = r.mem.event_ring.dma;
        let v = x
            .interrupter_view(u16::from(n), &mem)
            .with_context(|| format!("interrupter {n} does not exist or its ERST is unreadable"))?;
        if v.segments != 1 || v.segment0 != event_ring_dma {
            anyhow::bail!(
                "interrupter {n}: ERSTSZ {} segment 0 at {:#x}, but the QMI answer's event ring is at {event_ring_dma:#x}",
                v.segments,
                v.segment0
            );
        }
        Ok(format!(
            "slot {slot} is the headset's (port {HEADSET_PORT}), endpoint {dci}'s ring at {:#x} as reported; interrupter {n}: 1 segment of {} TRBs at {:#x} as reported, IMAN.IE {}, MSI-X vector {n} {}",
            e.tr_dequeue,
            v.segment0_trbs,
            v.segment0,
            u8::from(v.interrupt_enable),
            if self.msix.is_wired(u16::from(n)) { "wired" } else { "not wired" }
        ))
    }

    /// `stream-play SAMPLES`: the DSP plays SAMPLES counter samples on the enabled stream and
    /// waits (bounded) until every TD came back.
    pub(super) fn play(
        &self,
        r: &sideband_device::adsp::StreamResources,
        rate: u32,
        channels: u32,
        samples: u64,
        smmu: Arc<Mutex<SmmuTable>>,
    ) -> Result<String> {
        let (engine, packet) = playback_engine(r, rate, channels, samples);
        // The point of offload: the guest takes no interrupt for the stream. Interrupts on the
        // primary interrupter while the DSP streams are counted (other guest USB work would
        // show up here too; a quiet guest shows 0).
        // Let the interrupts of the enable's own control transfers (moderated) land first.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let before = self.quiet_figures();
        *self
            .engine
            .lock()
            .map_err(|_| anyhow::anyhow!("engine lock poisoned"))? =
            Some(EngineRun::new(engine, smmu, self.dsp_totals.clone()));
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_secs(30)
            + std::time::Duration::from_micros(
                samples * 1_000_000 / u64::from(rate * channels).max(1),
            );
        loop {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let guard = self
                .engine
                .lock()
                .map_err(|_| anyhow::anyhow!("engine lock poisoned"))?;
            let Some(run) = guard.as_ref() else {
                anyhow::bail!("the stream was stopped")
            };
            let s = run.engine.stats();
            let done = run.engine.finished() || run.engine.is_stopped();
            if !done && std::time::Instant::now() <= deadline {
                continue;
            }
            let (fault, outstanding, feedback) = (
                run.engine.last_fault(),
                run.engine.outstanding(),
                run.engine.feedback(),
            );
            // The bus clock takes the xHCI, then the engine: never the other way round here.
            drop(guard);
            if let Some(f) = fault {
                anyhow::bail!(
                    "SMMU fault at IOVA {:#x} ({:?}) after {} TDs",
                    f.iova,
                    f.reason,
                    s.tds_queued
                );
            }
            if !done {
                anyhow::bail!("the stream did not finish in time: {} of {samples} samples queued, {outstanding} TDs outstanding", s.samples);
            }
            let ahead = crate::fatal::lock(&self.headset.0, "headset")
                .map(|h| {
                    let p = h.function().recorder().stats();
                    (p.frames_ahead_min, p.frames_ahead_max)
                })
                .unwrap_or_default();
            let during = self.quiet_figures().since(&before);
            return Ok(format!(
                "{} samples in {} TDs of {packet} bytes; {} events ({} completed, {} missed service, {} underruns, {} errors); primary interrupter during the stream: {} events, {} IRQs; headset: {} missed intervals, frames ahead {}..{}; feedback: {} reports, last {}",
                s.samples, s.tds_queued, s.events, s.completed, s.missed_service, s.underruns, s.errors,
                during.primary_events,
                during.primary_irqs,
                during.missed_intervals,
                ahead.0,
                ahead.1,
                feedback.0,
                feedback.1.map_or("none".into(), |f| format!("{f:.4} frames per interval unit"))
            ));
        }
    }

    /// `stream-start`: the DSP plays the counter pattern on the enabled stream until it is
    /// stopped (an indication, `stream-disable`, a crash); returns once packets complete. With
    /// `fed`, it plays the PCM the guest's user space feeds through ASM instead (the platform
    /// card), holding 40 ms of it at 32-bit samples (80 ms at 16).
    pub(super) fn start_stream(
        &self,
        r: &sideband_device::adsp::StreamResources,
        rate: u32,
        channels: u32,
        smmu: Arc<Mutex<SmmuTable>>,
        fed: bool,
    ) -> Result<String> {
        // An hour of audio: the stream outlives any scenario.
        let samples = u64::from(rate) * u64::from(channels) * 3600;
        let (mut engine, packet) = playback_engine(r, rate, channels, samples);
        if fed {
            // The guest chose the format (the offload driver accepted it); bound the queue anyway.
            let bytes_per_s = (rate as usize)
                .saturating_mul(channels as usize)
                .saturating_mul(4);
            engine = engine.with_pcm_input((bytes_per_s / 25).clamp(1024, 1 << 20));
        }
        *self
            .engine
            .lock()
            .map_err(|_| anyhow::anyhow!("engine lock poisoned"))? =
            Some(EngineRun::new(engine, smmu, self.dsp_totals.clone()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let guard = self
                .engine
                .lock()
                .map_err(|_| anyhow::anyhow!("engine lock poisoned"))?;
            let run = guard
                .as_ref()
                .context("the stream was stopped before it got going")?;
            if let Some(f) = run.engine.last_fault() {
                anyhow::bail!("SMMU fault at IOVA {:#x} ({:?})", f.iova, f.reason);
            }
            let s = run.engine.stats();
            if s.completed >= STARTED_AFTER_TDS {
                return Ok(format!(
                    "streaming: {} TDs of {packet} bytes completed, {} queued",
                    s.completed, s.tds_queued
                ));
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "the stream did not get going in 10 s: {} TDs queued, {} completed",
                    s.tds_queued,
                    s.completed
                );
            }
        }
    }

    /// `hc-error hse|hce|gone`: the controller dies. `hse`/`hce` raise Host System Error or
    /// Host Controller Error and halt (with an interrupt due, so the guest's handler notices);
    /// `gone` takes BAR0 off the bus (reads all-ones, writes lost) until `hc-revive`.
    pub(super) fn controller_error(&self, kind: HcError) -> Result<String> {
        let mut x = lock_xhci(&self.xhci)?;
        match kind {
            HcError::Hse => {
                self.hse_requested.fetch_add(1, Ordering::Relaxed);
                x.controller.inject_fatal_error(false)
            }
            HcError::Hce => {
                self.hce_requested.fetch_add(1, Ordering::Relaxed);
                x.controller.inject_fatal_error(true)
            }
            HcError::Gone => x.controller.fall_off_bus(),
        }
        log::info!("xHCI: fault injection: {}", kind.name());
        Ok(match kind {
            HcError::Gone => "the controller is off the bus: BAR0 reads all-ones".into(),
            _ => format!("controller halted with {}", kind.name().to_uppercase()),
        })
    }

    /// `hc-revive`: a controller taken off the bus comes back in its power-on state.
    pub(super) fn controller_revive(&self) -> Result<String> {
        let mut x = lock_xhci(&self.xhci)?;
        if !x.controller.is_gone() {
            anyhow::bail!("hc-revive: the controller is not off the bus");
        }
        x.controller.revive();
        Ok("the controller is back, halted as after power-on".into())
    }

    /// `port-suspends PORT`: how many times the guest suspended a root port's link (U3).
    pub(super) fn port_suspends(&self, port: u8) -> Result<String> {
        let x = lock_xhci(&self.xhci)?;
        let n = x
            .controller
            .port_suspends(port)
            .with_context(|| format!("no root port {port}"))?;
        Ok(format!("{n} suspend(s) of port {port}"))
    }

    /// Whether the DSP's stream engine is running (not stopped by an indication or a request).
    /// Events and interrupts on the primary interrupter, and the headset's missed intervals, so
    /// far: what an offloaded stream must leave alone (compare two readings).
    pub(super) fn quiet_figures(&self) -> QuietFigures {
        let (events, irqs) = crate::fatal::lock(&self.xhci, "xHCI")
            .and_then(|x| x.controller.interrupter_stats(0))
            .map_or((0, 0), |s| (s.events, s.interrupts));
        let missed = crate::fatal::lock(&self.headset.0, "headset")
            .map(|h| h.function().recorder().stats().missed_intervals)
            .unwrap_or(0);
        QuietFigures {
            primary_events: events,
            primary_irqs: irqs,
            missed_intervals: missed,
        }
    }

    pub(super) fn streaming(&self) -> bool {
        crate::fatal::lock(&self.engine, "engine")
            .is_some_and(|g| g.as_ref().is_some_and(|r| !r.engine.is_stopped()))
    }

    /// `stream-capture SAMPLES`: the DSP captures from the enabled capture stream until it has
    /// SAMPLES samples of the headset's counter source, and checks they count up unbroken.
    pub(super) fn capture(
        &self,
        r: &sideband_device::adsp::StreamResources,
        rate: u32,
        channels: u32,
        samples: u64,
        smmu: Arc<Mutex<SmmuTable>>,
    ) -> Result<String> {
        let StreamShape { frames, width, .. } = StreamShape::of(r, rate);
        // Room for one frame more than nominal per packet: the device's clock decides.
        let packet = (frames + 1) * channels * width;
        // Queue TDs until the samples are in; the engine is stopped once they are.
        let engine = StreamEngine::new(r, packet, width, samples * 2, Q6USB_ENDPOINT);
        *self
            .engine
            .lock()
            .map_err(|_| anyhow::anyhow!("engine lock poisoned"))? =
            Some(EngineRun::new(engine, smmu, self.dsp_totals.clone()));
        let mut check = crate::audio::counter::Continuity::new(width as usize);
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_secs(30)
            + std::time::Duration::from_micros(
                samples * 1_000_000 / u64::from(rate * channels).max(1),
            );
        loop {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut guard = self
                .engine
                .lock()
                .map_err(|_| anyhow::anyhow!("engine lock poisoned"))?;
            let Some(run) = guard.as_mut() else {
                anyhow::bail!("the stream was stopped")
            };
            let data = run.engine.take_captured();
            let need = (samples.saturating_sub(check.samples) * u64::from(width)) as usize;
            check.feed(&data[..data.len().min(need)]);
            if let Some(f) = run.engine.last_fault() {
                anyhow::bail!("SMMU fault at IOVA {:#x} ({:?})", f.iova, f.reason);
            }
            if check.samples >= samples {
                run.engine.stop();
                let s = run.engine.stats();
                return match check.first_break {
                    Some((at, want, got)) => Err(anyhow::anyhow!(
                        "captured samples broke at {at}: expected {want}, got {got}"
                    )),
                    None => Ok(format!(
                        "{samples} captured samples count up unbroken; {} TDs, {} events ({} completed, {} missed service)",
                        s.tds_queued, s.events, s.completed, s.missed_service
                    )),
                };
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "only {} of {samples} samples captured in time",
                    check.samples
                );
            }
        }
    }

    /// Stops the DSP's stream (before the disable request); its figures.
    pub(super) fn stop_engine(&self) -> Option<String> {
        let run = crate::fatal::lock(&self.engine, "engine")?.take()?;
        let s = run.engine.stats();
        Some(format!(
            "DSP stream stopped after {} TDs, {} events, {} SMMU faults",
            s.tds_queued, s.events, s.smmu_faults
        ))
    }

    /// `expect-headset mute=0|1 volume=DB`: the headset's controls hold these values (what
    /// the guest's mixer changes must reach).
    pub(super) fn expect_headset(&self, checks: &[HeadsetCheck]) -> Result<String> {
        let h = self
            .headset
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("headset lock poisoned"))?;
        let c = h.function().controls();
        let state = format!(
            "mute={} volume={:.2}dB rate={}",
            u8::from(c.mute),
            f64::from(c.volume) / 256.0,
            c.playback_rate
        );
        for check in checks {
            let ok = match *check {
                HeadsetCheck::Mute(mute) => mute == c.mute,
                HeadsetCheck::Volume(want) => {
                    (f64::from(c.volume) / 256.0 - want).abs() < 1.0 / 256.0
                }
                HeadsetCheck::Rate(rate) => rate == c.playback_rate,
            };
            if !ok {
                anyhow::bail!("the headset has {state}, expected {check}");
            }
        }
        Ok(state)
    }

    /// `check-counter N`: the headset recorded the guest's N-sample counter pattern bit-exactly.
    pub(super) fn check_counter(&self, expected: u64) -> Result<String> {
        if let Some(mut h) = crate::fatal::lock(&self.headset.0, "headset") {
            h.function_mut().recorder_mut().flush();
        }
        let r = self
            .recording
            .lock()
            .map_err(|_| anyhow::anyhow!("recording lock poisoned"))?;
        r.check_counter(expected).map_err(|e| anyhow::anyhow!(e))
    }

    /// The DSP's figures over every stream of the run.
    pub(super) fn dsp_figures(&self) -> super::judgement::DspFigures {
        dsp_figures(&self.engine, &self.dsp_totals)
    }

    /// The controller's error figures, with the errors that were asked for.
    pub(super) fn xhci_figures(&self) -> XhciFigures {
        let s = crate::fatal::lock(&self.xhci, "xHCI").map(|x| x.controller.stats());
        XhciFigures {
            commands: s.map_or(0, |s| s.commands),
            host_system_errors: s.map_or(0, |s| s.host_system_errors),
            host_controller_errors: self.clock.host_controller_errors(),
            hse_requested: self.hse_requested.load(Ordering::Relaxed),
            hce_requested: self.hce_requested.load(Ordering::Relaxed),
            // The model counts no command completion codes yet (device/src/xhci/command.rs).
            command_errors: None,
        }
    }

    /// `selftest-panic`: the bus clock panics at its next wake-up, holding the controller lock.
    pub(super) fn selftest_panic(&self) -> String {
        self.clock.panic_at_next_tick();
        "the bus clock panics at its next wake-up, holding the controller lock (a harness self-test: the run must end now)".into()
    }

    /// Starts the DSP's GLINK edge on this function's view of guest RAM and its DMA writes.
    pub(super) fn start_glink(
        &self,
        afe: std::sync::mpsc::Sender<sideband_device::adsp::apr::AfeEvent>,
    ) -> std::io::Result<super::glink::RunningGlink> {
        let xhci = self.xhci.clone();
        super::glink::RunningGlink::start(
            self.dma.clone(),
            self.server.outbox.clone(),
            move || crate::fatal::lock(&xhci, "xHCI").is_some_and(|x| x.bus_master()),
            afe,
            self.engine.clone(),
        )
    }

    /// Writes a fresh value into the ADSP's message RAM as the xHCI's bus master (vfio-user
    /// DMA_WRITE, which QEMU performs through the function's bus-master address space) and
    /// waits up to a second to read it back through the backend's own map of guest RAM.
    pub(super) fn selftest_dma_write(&self) -> Result<String> {
        use vm_memory::{Bytes, GuestAddress};
        let address = crate::vm::dt::ADSP_MSG_RAM;
        let value = crate::capture::epoch_us() | 1 << 63;
        let started = std::time::Instant::now();
        if !self
            .server
            .outbox
            .dma_write(address, &value.to_le_bytes())?
        {
            anyhow::bail!("selftest-dma-write: no vfio-user client is connected");
        }
        loop {
            let seen: Option<u64> = self.dma.snapshot().read_obj(GuestAddress(address)).ok();
            if seen == Some(value) {
                return Ok(format!(
                    "DMA_WRITE of {value:#x} reached guest RAM at {address:#x} in {} us",
                    started.elapsed().as_micros()
                ));
            }
            if started.elapsed() > std::time::Duration::from_secs(1) {
                anyhow::bail!(
                    "selftest-dma-write: {address:#x} holds {} 1 s after the DMA_WRITE of {value:#x} (is bus mastering on? QEMU drops a disabled master's writes)",
                    seen.map_or("nothing mapped".into(), |v| format!("{v:#x}"))
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    pub(super) fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(c) = self.finish_capture() {
            lines.push(c.to_string());
        }
        if let Some(mut r) = crate::fatal::lock(&self.recording, "recording") {
            for f in r.finish() {
                match &f.picture {
                    Some(Ok(p)) => lines.push(format!(
                        "headset picture: stream {} ({} frames) {}-> {}",
                        f.stream,
                        p.frames,
                        p.glitch.map_or(String::new(), |g| format!(
                            "first {} at frame {} ",
                            g.kind, g.frame
                        )),
                        p.path.display()
                    )),
                    Some(Err(e)) => {
                        lines.push(format!("headset picture: stream {}: {e}", f.stream))
                    }
                    None => {}
                }
                lines.push(format!(
                    "headset recording: stream {} ({} Hz, {}-bit, {} ch) {} bytes{} -> {}",
                    f.stream,
                    f.format.rate,
                    f.format.bits,
                    f.format.channels,
                    f.bytes,
                    if f.dropped > 0 {
                        format!(" ({} past the cap)", f.dropped)
                    } else {
                        String::new()
                    },
                    f.path.display()
                ));
            }
        }
        if let Some(x) = crate::fatal::lock(&self.xhci, "xHCI") {
            let c = &x.controller;
            let s = c.stats();
            let irqs: Vec<String> = (0..c.config().max_interrupters)
                .filter_map(|n| c.interrupter_stats(n).map(|st| (n, st)))
                .filter(|(_, st)| st.events > 0 || st.interrupts > 0)
                .map(|(n, st)| format!("#{n} {} ev/{} irq", st.events, st.interrupts))
                .collect();
            lines.push(format!(
                "xhci: {} commands, {} TRBs, {} host system errors, {} isoch TD(s) served past their frame (host late), interrupters [{}]",
                s.commands,
                s.trbs,
                s.host_system_errors,
                s.late_frame_tds,
                irqs.join(", ")
            ));
        }
        lines.push(format!("xhci clock: {}", self.clock.stats().figures()));
        let (raised, lost) = self.msix.counts();
        lines.push(format!(
            "xhci msi-x: {raised} delivered, {lost} without an eventfd"
        ));
        if let Some(h) = crate::fatal::lock(&self.headset.0, "headset") {
            let p = h.function().recorder().stats();
            lines.push(format!(
                "headset (port {HEADSET_PORT}, address {}): {} stream(s), {} packets, {} frames, {} missed intervals, {} early/{} short/{} long/{} oversize packets, {} frames dropped",
                h.address(),
                p.streams,
                p.packets,
                p.frames,
                p.missed_intervals,
                p.early_packets,
                p.short_packets,
                p.long_packets,
                p.oversize_packets,
                p.dropped_frames
            ));
        }
        lines
    }
}
