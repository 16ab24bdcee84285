//! The emulated hardware for one boot: starts a server for every device of a [`DeviceSet`] on a
//! socket in a private folder, before QEMU starts, and reports what each device saw.

use anyhow::{Context, Result};

mod adsp;
mod xhci;

use std::sync::{Arc, Mutex};

use sideband_device::usb::uac::{AudioProfile, UacDevice};
use sideband_device::usb::SharedDevice;
use sideband_device::xhci::{Config as XhciConfig, LoopbackDevice};

use crate::audio::recording::{Recording, RecordingSink, DEFAULT_CAP};
use crate::transport::dma::DmaMemory;
use crate::transport::msix::MsixFds;
use crate::transport::vfio_user::VfioUserFunction;
use crate::transport::viommu::{ViommuServer, ViommuStats};
use crate::vm::machine::Q6USB_ENDPOINT;
use crate::vm::machine::{DeviceSet, Sockets};
use adsp::RunningAdsp;
use sideband_device::adsp::engine::{Action, StreamEngine};
use sideband_device::smmu::SmmuTable;
use sideband_device::xhci::regs::{rt, DB_BASE, RT_BASE};
use xhci::{ClockHook, XhciClock, XhciFunction};

/// The DSP's running stream: the engine and the SMMU it translates through.
#[derive(Debug)]
pub struct EngineRun {
    engine: StreamEngine,
    smmu: Arc<Mutex<SmmuTable>>,
}

/// Where the clock finds the DSP's stream, if one plays.
pub type EngineSlot = Arc<Mutex<Option<EngineRun>>>;

/// Serves the DSP's stream on the controller: its doorbells and ERDP writes are MMIO writes,
/// as the real DSP's are.
fn engine_hook(slot: EngineSlot) -> ClockHook {
    Box::new(move |x: &mut XhciFunction, mem| {
        let Ok(mut guard) = slot.lock() else { return };
        let Some(run) = guard.as_mut() else { return };
        let actions = match run.smmu.lock() {
            Ok(mut smmu) => run.engine.service(mem, &mut smmu),
            Err(_) => return,
        };
        for a in actions {
            match a {
                Action::Doorbell { slot, target } => x.controller.mmio_write(
                    mem,
                    DB_BASE + 4 * u64::from(slot),
                    4,
                    u64::from(target),
                ),
                Action::Erdp { interrupter, value } => {
                    let at =
                        RT_BASE + rt::IR_BASE + rt::IR_STRIDE * u64::from(interrupter) + rt::ERDP;
                    x.controller.mmio_write(mem, at, 8, value)
                }
            }
        }
    })
}

/// The device servers of one boot; dropping it removes the sockets.
#[derive(Debug)]
pub struct RunningDevices {
    /// Where QEMU connects.
    pub sockets: Sockets,
    viommu: Option<ViommuServer>,
    adsp: Option<RunningAdsp>,
    usb: Option<RunningUsb>,
    cpu: Mutex<Option<CpuMark>>,
    _dir: tempfile::TempDir,
}

/// How the stream's packets are cut: one packet per service interval of 2^(bInterval-1)
/// microframes (high speed) or 1 ms frames (full speed).
struct StreamShape {
    /// Service units (microframes or frames) per packet.
    interval: u32,
    /// Nominal frames per packet.
    frames: u32,
    /// Bytes per sample (the subslot).
    width: u32,
}

impl StreamShape {
    fn of(r: &sideband_device::adsp::StreamResources, rate: u32) -> Self {
        use sideband_device::adsp::uaudio::Speed;
        let interval = 1u32 << r.data_ep.b_interval.clamp(1, 16).saturating_sub(1);
        let per_second = match r.speed {
            Speed::Full | Speed::Low => 1000,
            _ => 8000,
        };
        StreamShape {
            interval,
            frames: (rate * interval / per_second).max(1),
            width: u32::from(r.subslot_size.unwrap_or(2)).clamp(2, 4),
        }
    }
}

/// CPU time of a process in seconds (utime + stime of /proc/PID/stat).
fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name may contain spaces; fields count from after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11) + ticks(12)) / hz.max(1.0))
}

/// CPU counters at a point of a run, for `cpu-start` / `cpu-stop`.
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    backend: f64,
    qemu: f64,
    wall: std::time::Instant,
}

impl CpuMark {
    fn now(qemu_pid: u32) -> Result<Self> {
        Ok(CpuMark {
            backend: cpu_seconds("self")?,
            qemu: cpu_seconds(&qemu_pid.to_string())?,
            wall: std::time::Instant::now(),
        })
    }

    fn report(&self, label: &str, audio_seconds: f64, qemu_pid: u32) -> Result<String> {
        let end = CpuMark::now(qemu_pid)?;
        let per = |v: f64| v / audio_seconds.max(1e-9);
        Ok(format!(
            "{label}: {:.3} CPU-s of the backend and {:.3} CPU-s of QEMU per second of audio ({:.1} s wall for {audio_seconds} s of audio)",
            per(end.backend - self.backend),
            per(end.qemu - self.qemu),
            end.wall.duration_since(self.wall).as_secs_f64()
        ))
    }
}

/// Root port of the USB audio headset.
pub const HEADSET_PORT: u8 = 1;
/// Root port of the bulk loopback test device.
pub const LOOPBACK_PORT: u8 = 2;
/// The headset every boot gets until profiles are chosen on the command line.
pub const DEFAULT_HEADSET: &str = "headset-uac2";

/// The xHCI, its clock and the devices on its ports.
#[derive(Debug)]
struct RunningUsb {
    xhci: Arc<Mutex<XhciFunction>>,
    /// Devices unplugged by a control request, by port, waiting to be plugged back.
    parked: Mutex<std::collections::BTreeMap<u8, Box<dyn sideband_device::usb::UsbDevice>>>,
    msix: MsixFds,
    headset: SharedDevice<UacDevice>,
    recording: Arc<Mutex<Recording>>,
    dma: DmaMemory,
    engine: EngineSlot,
    // Dropped first: the clock stops before the server and the model go away.
    _clock: XhciClock,
    _server: VfioUserFunction,
}

impl RunningUsb {
    fn start(
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
        let headset = SharedDevice::new(device);
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
            parked: Mutex::default(),
            msix,
            headset,
            recording,
            dma,
            engine,
            _clock: clock,
            _server: server,
        })
    }

    /// `unplug PORT` / `plug PORT`: hot-unplug a root port's device and plug it back.
    fn hotplug(&self, verb: &str, port: u8) -> Result<String> {
        let mut x = self
            .xhci
            .lock()
            .map_err(|_| anyhow::anyhow!("xHCI lock poisoned"))?;
        let mut parked = self
            .parked
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

    /// Checks the QMI answer against the controller: the slot is the headset's, the data
    /// endpoint's transfer ring is the one the answer hands over, and the named interrupter is
    /// the secondary interrupter with one event ring segment where the answer says.
    fn check_against_controller(
        &self,
        r: &sideband_device::adsp::StreamResources,
    ) -> Result<String> {
        let x = self
            .xhci
            .lock()
            .map_err(|_| anyhow::anyhow!("xHCI lock poisoned"))?;
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
    fn play(
        &self,
        r: &sideband_device::adsp::StreamResources,
        rate: u32,
        channels: u32,
        samples: u64,
        smmu: Arc<Mutex<SmmuTable>>,
    ) -> Result<String> {
        let StreamShape {
            interval,
            frames,
            width,
        } = StreamShape::of(r, rate);
        let frame_bytes = channels * width;
        // With a feedback endpoint the DSP follows the device's clock: packets may carry a frame
        // more than nominal.
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
        let packet = frames * frame_bytes;
        // The point of offload: the guest takes no interrupt for the stream. Interrupts on the
        // primary interrupter while the DSP streams are counted (other guest USB work would
        // show up here too; a quiet guest shows 0).
        let primary = || {
            self.xhci
                .lock()
                .ok()
                .and_then(|x| x.controller.interrupter_stats(0))
                .map_or((0, 0), |s| (s.events, s.interrupts))
        };
        // Let the interrupts of the enable's own control transfers (moderated) land first.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (events_before, irqs_before) = primary();
        let missed = || {
            self.headset
                .0
                .lock()
                .map(|h| h.function().recorder().stats().missed_intervals)
                .unwrap_or(0)
        };
        let missed_before = missed();
        *self
            .engine
            .lock()
            .map_err(|_| anyhow::anyhow!("engine lock poisoned"))? =
            Some(EngineRun { engine, smmu });
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
            if done || std::time::Instant::now() > deadline {
                if let Some(f) = run.engine.last_fault() {
                    anyhow::bail!(
                        "SMMU fault at IOVA {:#x} ({:?}) after {} TDs",
                        f.iova,
                        f.reason,
                        s.tds_queued
                    );
                }
                let ahead = self
                    .headset
                    .0
                    .lock()
                    .map(|h| {
                        let p = h.function().recorder().stats();
                        (p.frames_ahead_min, p.frames_ahead_max)
                    })
                    .unwrap_or_default();
                if !done {
                    anyhow::bail!("the stream did not finish in time: {} of {samples} samples queued, {} TDs outstanding", s.samples, run.engine.outstanding());
                }
                return Ok(format!(
                    "{} samples in {} TDs of {packet} bytes; {} events ({} completed, {} missed service, {} underruns, {} errors); primary interrupter during the stream: {} events, {} IRQs; headset: {} missed intervals, frames ahead {}..{}; feedback: {} reports, last {}",
                    s.samples, s.tds_queued, s.events, s.completed, s.missed_service, s.underruns, s.errors, primary().0 - events_before,
                    primary().1 - irqs_before,
                    missed() - missed_before,
                    ahead.0,
                    ahead.1,
                    run.engine.feedback().0,
                    run.engine.feedback().1.map_or("none".into(), |f| format!("{f:.4} frames per interval unit"))
                ));
            }
        }
    }

    /// `stream-capture SAMPLES`: the DSP captures from the enabled capture stream until it has
    /// SAMPLES samples of the headset's counter source, and checks they count up unbroken.
    fn capture(
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
            Some(EngineRun { engine, smmu });
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
    fn stop_engine(&self) -> Option<String> {
        let run = self.engine.lock().ok()?.take()?;
        let s = run.engine.stats();
        Some(format!(
            "DSP stream stopped after {} TDs, {} events, {} SMMU faults",
            s.tds_queued, s.events, s.smmu_faults
        ))
    }

    /// `expect-headset mute=0|1 volume=DB`: the headset's controls hold these values (what
    /// the guest's mixer changes must reach).
    fn expect_headset(&self, words: &[&str]) -> Result<String> {
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
        for w in words {
            let (k, v) = w
                .split_once('=')
                .with_context(|| format!("'{w}' is not key=value"))?;
            let ok = match k {
                "mute" => v == if c.mute { "1" } else { "0" },
                "volume" => {
                    let want: f64 = v
                        .parse()
                        .with_context(|| format!("volume={v}: not a number"))?;
                    (f64::from(c.volume) / 256.0 - want).abs() < 1.0 / 256.0
                }
                "rate" => v == c.playback_rate.to_string(),
                _ => anyhow::bail!("unknown headset control '{k}' (mute, volume, rate)"),
            };
            if !ok {
                anyhow::bail!("the headset has {state}, expected {w}");
            }
        }
        Ok(state)
    }

    /// `check-counter N`: the headset recorded the guest's N-sample counter pattern bit-exactly.
    fn check_counter(&self, expected: u64) -> Result<String> {
        if let Ok(mut h) = self.headset.0.lock() {
            h.function_mut().recorder_mut().flush();
        }
        let r = self
            .recording
            .lock()
            .map_err(|_| anyhow::anyhow!("recording lock poisoned"))?;
        r.check_counter(expected).map_err(|e| anyhow::anyhow!(e))
    }

    fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Ok(mut r) = self.recording.lock() {
            for f in r.finish() {
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
        if let Ok(x) = self.xhci.lock() {
            let c = &x.controller;
            let s = c.stats();
            let irqs: Vec<String> = (0..c.config().max_interrupters)
                .filter_map(|n| c.interrupter_stats(n).map(|st| (n, st)))
                .filter(|(_, st)| st.events > 0 || st.interrupts > 0)
                .map(|(n, st)| format!("#{n} {} ev/{} irq", st.events, st.interrupts))
                .collect();
            lines.push(format!(
                "xhci: {} commands, {} TRBs, {} host system errors, interrupters [{}]",
                s.commands,
                s.trbs,
                s.host_system_errors,
                irqs.join(", ")
            ));
        }
        let (raised, lost) = self.msix.counts();
        lines.push(format!(
            "xhci msi-x: {raised} delivered, {lost} without an eventfd"
        ));
        if let Ok(h) = self.headset.0.lock() {
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

impl RunningDevices {
    /// Starts the servers. Sockets live in a fresh folder under the system temp dir (a UNIX
    /// socket path must stay under 108 bytes, which an output folder may not).
    pub fn start(set: &DeviceSet, out_dir: &std::path::Path, headset: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sideband-")
            .tempdir()
            .context("cannot create a folder for the device sockets")?;
        let mut sockets = Sockets::default();
        let viommu = if set.viommu {
            let path = dir.path().join("viommu.sock");
            let server =
                ViommuServer::serve(&path).context("cannot start the virtio-iommu (ADSP SMMU)")?;
            sockets.viommu = Some(path);
            Some(server)
        } else {
            None
        };
        let adsp = if set.adsp_link {
            let path = dir.path().join("qrtr.sock");
            let adsp = RunningAdsp::start(&path)?;
            sockets.qrtr = Some(path);
            Some(adsp)
        } else {
            None
        };
        let usb = if set.xhci {
            let path = dir.path().join("xhci.sock");
            let usb = RunningUsb::start(&path, out_dir, headset)?;
            sockets.xhci = Some(path);
            Some(usb)
        } else {
            None
        };
        if let (Some(a), Some(u)) = (&adsp, &usb) {
            let engine = u.engine.clone();
            a.set_engine_stop(adsp::EngineStop(Box::new(move || {
                if let Ok(mut slot) = engine.lock() {
                    slot.take();
                }
            })));
        }
        Ok(RunningDevices {
            sockets,
            viommu,
            adsp,
            usb,
            cpu: Mutex::default(),
            _dir: dir,
        })
    }

    /// Executes a request from a guest scenario (see `vm::session::CONTROL_MARKER`). A request
    /// written `! REQUEST` must fail: it succeeds with the error it got.
    pub fn control(&self, request: &str, qemu_pid: u32) -> Result<String> {
        if let Some(inner) = request.strip_prefix('!') {
            return match self.control(inner.trim(), qemu_pid) {
                Ok(a) => Err(anyhow::anyhow!("expected to fail, but it succeeded: {a}")),
                Err(e) => Ok(format!("failed as expected: {e:#}")),
            };
        }
        let words: Vec<&str> = request.split_whitespace().collect();
        match words.as_slice() {
            [verb @ ("unplug" | "plug"), port] => {
                let port: u8 = port.parse().with_context(|| format!("bad port '{port}'"))?;
                let usb = self.usb.as_ref().context("no xHCI in this boot")?;
                usb.hotplug(verb, port)
            }
            ["stream-enable", params @ ..] => {
                let adsp = self.adsp.as_ref().context("no ADSP in this boot")?;
                let table = self.viommu.as_ref().map(|v| &v.smmu.table);
                let answer = adsp.enable(params, table, Q6USB_ENDPOINT)?;
                let (Some(usb), Some(r)) = (self.usb.as_ref(), adsp.resources()) else {
                    return Ok(answer);
                };
                let irq = usb.check_against_controller(&r)?;
                Ok(format!("{answer}; {irq}"))
            }
            [verb @ ("stream-play" | "stream-capture"), n] => {
                let n: u64 = n.parse().with_context(|| format!("bad sample count '{n}'"))?;
                let adsp = self.adsp.as_ref().context("no ADSP in this boot")?;
                let usb = self.usb.as_ref().context("no xHCI in this boot")?;
                let smmu = self.viommu.as_ref().context("no SMMU in this boot")?.smmu.table.clone();
                let r = adsp.resources().context("no enabled stream (stream-enable first)")?;
                let p = adsp.params().context("no enabled stream (stream-enable first)")?;
                if *verb == "stream-play" {
                    usb.play(&r, p.rate, p.channels, n, smmu)
                } else {
                    usb.capture(&r, p.rate, p.channels, n, smmu)
                }
            }
            ["stream-disable"] => {
                let adsp = self.adsp.as_ref().context("no ADSP in this boot")?;
                let stopped = self.usb.as_ref().and_then(RunningUsb::stop_engine);
                let answer = adsp.disable()?;
                let left = self.smmu_mappings();
                if left != 0 {
                    anyhow::bail!("{answer}, but {left} SMMU mapping(s) are left");
                }
                let answer = format!("{answer}, SMMU table empty");
                Ok(match stopped {
                    Some(s) => format!("{s}; {answer}"),
                    None => answer,
                })
            }
            ["dsp-crash"] => {
                let stopped = self.usb.as_ref().and_then(RunningUsb::stop_engine);
                let answer = self.adsp.as_ref().context("no ADSP in this boot")?.crash()?;
                Ok(match stopped {
                    Some(s) => format!("{s}; {answer}"),
                    None => answer,
                })
            }
            ["expect-indication"] => {
                self.adsp.as_ref().context("no ADSP in this boot")?.expect_indication()
            }
            ["cpu-start"] => {
                let mark = CpuMark::now(qemu_pid)?;
                *self.cpu.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))? = Some(mark);
                Ok("CPU counters marked".into())
            }
            ["cpu-stop", label, audio_seconds] => {
                let secs: f64 = audio_seconds.parse().with_context(|| format!("bad seconds '{audio_seconds}'"))?;
                let start = self
                    .cpu
                    .lock()
                    .map_err(|_| anyhow::anyhow!("lock poisoned"))?
                    .take()
                    .context("cpu-stop without cpu-start")?;
                start.report(label, secs, qemu_pid)
            }
            ["expect-headset", words @ ..] => {
                self.usb.as_ref().context("no xHCI in this boot")?.expect_headset(words)
            }
            ["check-counter", n] => {
                let n: u64 = n
                    .parse()
                    .with_context(|| format!("bad sample count '{n}'"))?;
                let usb = self.usb.as_ref().context("no xHCI in this boot")?;
                usb.check_counter(n)
            }
            _ => anyhow::bail!(
                "unknown request '{request}' (known: unplug PORT, plug PORT, check-counter SAMPLES, expect-headset mute= volume=, cpu-start, cpu-stop LABEL AUDIO_SECONDS, stream-enable card=N ..., stream-play SAMPLES, stream-capture SAMPLES, stream-disable, expect-indication, dsp-crash; '! REQUEST' must fail)"
            ),
        }
    }

    /// Mappings in the SMMU table (0 when the DSP holds nothing).
    fn smmu_mappings(&self) -> usize {
        self.viommu
            .as_ref()
            .and_then(|v| v.smmu.table.lock().ok().map(|t| t.mapping_count()))
            .unwrap_or(0)
    }

    /// The socket folder.
    #[cfg(test)]
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A one-line account of what the devices saw, for summaries and reports.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(v) = &self.viommu {
            let s = v.smmu.stats.lock().map(|s| s.clone()).unwrap_or_default();
            let mappings = v.smmu.table.lock().map(|t| t.mapping_count()).unwrap_or(0);
            lines.push(viommu_line(&s, mappings));
        }
        if let Some(usb) = &self.usb {
            lines.extend(usb.summary());
        }
        if let Some(a) = &self.adsp {
            lines.push(a.summary());
        }
        lines
    }
}

fn viommu_line(s: &ViommuStats, mappings: usize) -> String {
    let eps: Vec<String> = s.endpoints_seen.iter().map(|e| format!("{e:#x}")).collect();
    format!(
        "adsp-smmu: probe {} attach {} detach {} map {} unmap {} errors {}, endpoints [{}], {} mapping(s) left",
        s.probe,
        s.attach,
        s.detach,
        s.map,
        s.unmap,
        s.errors,
        eps.join(" "),
        mappings
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_the_configured_servers_only() {
        let out = tempfile::tempdir().unwrap();
        let none =
            RunningDevices::start(&DeviceSet::default(), out.path(), DEFAULT_HEADSET).unwrap();
        assert_eq!(none.sockets, Sockets::default());
        assert!(none.summary().is_empty());
        let all = RunningDevices::start(&DeviceSet::all(), out.path(), DEFAULT_HEADSET).unwrap();
        assert!(RunningDevices::start(&DeviceSet::all(), out.path(), "uac9").is_err());
        assert_eq!(
            all.control("expect-headset mute=0", std::process::id())
                .unwrap(),
            "mute=0 volume=0.00dB rate=48000"
        );
        assert!(all
            .control("expect-headset mute=1", std::process::id())
            .is_err());
        let sock = all.sockets.viommu.clone().unwrap();
        assert!(sock.exists(), "QEMU needs the socket before it starts");
        assert!(sock.starts_with(all.dir()));
        assert!(all.sockets.qrtr.as_ref().unwrap().exists());
        assert!(all.sockets.xhci.as_ref().unwrap().exists());
        let summary = all.summary();
        assert!(
            none.control("unplug 1", std::process::id()).is_err(),
            "no xHCI, no hot-plug"
        );
        assert!(all.control("frobnicate", std::process::id()).is_err());
        assert_eq!(
            all.control("unplug 2", std::process::id()).unwrap(),
            "port 2 unplugged"
        );
        assert!(
            all.control("unplug 2", std::process::id()).is_err(),
            "already empty"
        );
        assert_eq!(
            all.control("plug 2", std::process::id()).unwrap(),
            "port 2 plugged"
        );
        assert!(
            all.control("plug 2", std::process::id()).is_err(),
            "nothing parked"
        );
        let a = all.control("! plug 2", std::process::id()).unwrap();
        assert!(
            a.starts_with("failed as expected: nothing was unplugged"),
            "{a}"
        );
        assert!(
            all.control("! unplug 3", std::process::id()).is_ok(),
            "port 3 is empty"
        );
        let e = all
            .control("! unplug 2", std::process::id())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("expected to fail, but it succeeded"), "{e}");
        assert!(
            all.control("cpu-stop x 1", std::process::id()).is_err(),
            "no mark yet"
        );
        all.control("cpu-start", std::process::id()).unwrap();
        let r = all
            .control("cpu-stop offload 2", std::process::id())
            .unwrap();
        assert!(
            r.starts_with("offload: ") && r.contains("per second of audio"),
            "{r}"
        );
        let e = all
            .control("check-counter 10", std::process::id())
            .unwrap_err()
            .to_string();
        assert!(e.contains("recorded no stream"), "{e}");
        for start in [
            "adsp-smmu: probe 0 attach 0",
            "adsp: 0 QRTR packet(s) in, 0 out",
            "xhci: 0 commands",
            "headset (port 1, address 0): 0 stream(s)",
        ] {
            assert!(
                summary.iter().any(|l| l.starts_with(start)),
                "{start}: {summary:?}"
            );
        }
    }
}
