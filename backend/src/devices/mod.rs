//! The emulated hardware for one boot: starts a server for every device of a [`DeviceSet`] on a
//! socket in a private folder, before QEMU starts, and reports what each device saw.

use anyhow::{Context, Result};

mod adsp;
mod afe;
mod cpu;
mod faults;
mod glink;
mod judgement;
mod pcm_feed;
mod stats;
mod stream;
mod usb;
mod xhci;

// The kind is for the verdict's header check (`# allow-device: KIND...`).
pub use judgement::{DeviceProblem, DeviceProblemKind};
pub use stats::progress_line;

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

pub use adsp::OnIndication;

use crate::request::{Request, StreamSpec};
use crate::transport::viommu::{ViommuServer, ViommuStats};
use crate::vm::machine::{DeviceSet, Sockets, Q6USB_ENDPOINT};
use adsp::RunningAdsp;
use cpu::CpuMark;
use sideband_device::usb::Fault;
use usb::RunningUsb;

/// The device servers of one boot; dropping it removes the sockets.
#[derive(Debug)]
pub struct RunningDevices {
    /// Where QEMU connects.
    pub sockets: Sockets,
    viommu: Option<ViommuServer>,
    adsp: Option<RunningAdsp>,
    usb: Option<RunningUsb>,
    /// Declared after `usb`'s users stop mattering: dropped first, before the xHCI's server.
    glink: Option<glink::RunningGlink>,
    /// The GLINK edge's AFE port starts, until [`RunningDevices::start_shared`] serves them.
    afe_events: Mutex<Option<Receiver<sideband_device::adsp::apr::AfeEvent>>>,
    cpu: Mutex<Option<CpuMark>>,
    started: std::time::Instant,
    _dir: tempfile::TempDir,
}

/// Root port of the USB audio headset.
pub const HEADSET_PORT: u8 = 1;
/// Root port of the bulk loopback test device.
pub const LOOPBACK_PORT: u8 = 2;
/// The headset every boot gets until profiles are chosen on the command line.
pub const DEFAULT_HEADSET: &str = "headset-uac2";

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
            let path = dir.path().join(if set.adsp_mhi {
                "mhi.sock"
            } else {
                "qrtr.sock"
            });
            let adsp = RunningAdsp::start(&path, set.adsp_mhi)?;
            if set.adsp_mhi {
                sockets.mhi = Some(path);
            } else {
                sockets.qrtr = Some(path);
            }
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
                if let Some(mut slot) = crate::fatal::lock(&engine, "engine") {
                    slot.take();
                }
            })));
        }
        let (afe_tx, afe_rx) = std::sync::mpsc::channel();
        let glink = match (&usb, set.adsp_glink) {
            (Some(u), true) => Some(
                u.start_glink(afe_tx)
                    .context("cannot start the ADSP's GLINK edge")?,
            ),
            _ => None,
        };
        Ok(RunningDevices {
            sockets,
            viommu,
            adsp,
            usb,
            glink,
            afe_events: Mutex::new(Some(afe_rx)),
            cpu: Mutex::default(),
            started: std::time::Instant::now(),
            _dir: dir,
        })
    }

    /// [`RunningDevices::start`], shared, with the DSP answering AFE port starts (the platform
    /// card's trigger) on a thread of its own.
    pub fn start_shared(
        set: &DeviceSet,
        out_dir: &std::path::Path,
        headset: &str,
    ) -> Result<Arc<Self>> {
        let devices = Arc::new(Self::start(set, out_dir, headset)?);
        let events =
            crate::fatal::lock(&devices.afe_events, "AFE events").and_then(|mut e| e.take());
        if let (Some(events), Some(_)) = (events, &devices.glink) {
            afe::start(&devices, events);
        }
        Ok(devices)
    }

    /// Captures every USB transfer (offloaded ones included) to the pcap file `path`, at most
    /// `cap` bytes; the summary names the file. Before QEMU starts, to see enumeration.
    pub fn start_capture(&self, path: &std::path::Path, cap: u64) -> Result<()> {
        self.usb
            .as_ref()
            .context("no xHCI in this boot: nothing to capture")?
            .start_capture(path, cap)
    }

    /// Live figures (elapsed, the DSP's stream, the headset, interrupters, capture) as JSON.
    pub fn stats(&self) -> serde_json::Value {
        stats::stats(self.usb.as_ref(), self.glink.as_ref(), self.started)
    }

    /// Parses one request line (crate::request) and executes it: the control socket's, a
    /// plugin trigger's action, the tests'.
    pub fn control(&self, request: &str, qemu_pid: u32) -> Result<String> {
        self.execute(&request.parse()?, qemu_pid)
    }

    /// Executes a parsed request: the one dispatch of every verb. `! REQUEST` succeeds with the
    /// error it got; `A; B` runs in order and the first failure stops.
    pub fn execute(&self, request: &Request, qemu_pid: u32) -> Result<String> {
        use Request as R;
        match request {
            R::MustFail(inner) => match self.execute(inner, qemu_pid) {
                Ok(a) => Err(anyhow::anyhow!("expected to fail, but it succeeded: {a}")),
                Err(e) => Ok(format!("failed as expected: {e:#}")),
            },
            R::Sequence(parts) => Ok(parts
                .iter()
                .map(|p| self.execute(p, qemu_pid))
                .collect::<Result<Vec<_>>>()?
                .join("; ")),
            R::AtArm(_) => anyhow::bail!(
                "at-arm is a console request (the runner arms the plugin it loaded), not one here"
            ),
            R::Stats => Ok(self.stats().to_string()),
            R::Unplug(port) => self.usb()?.hotplug("unplug", *port),
            R::Plug(port) => self.usb()?.hotplug("plug", *port),
            R::CheckCounter(n) => self.usb()?.check_counter(*n),
            R::ExpectHeadset(checks) => self.usb()?.expect_headset(checks),
            R::CpuStart => self.cpu_start(qemu_pid),
            R::CpuStop {
                label,
                audio_seconds,
            } => self.cpu_stop(label, *audio_seconds, qemu_pid),
            R::StreamEnable(spec) => self.stream_enable(spec),
            R::StreamPlay(_) | R::StreamCapture(_) | R::StreamStart => {
                self.stream_run(request, false)
            }
            R::ExpectStreaming => self.expect_streaming(),
            R::ExpectReleased => self.expect_released(),
            R::StreamDisable => self.stream_disable(),
            R::ExpectIndication => self.adsp()?.expect_indication(),
            R::DspCrash => self.stopping(|| self.adsp()?.crash()),
            R::DspBye => self.stopping(|| self.adsp()?.bye(false)),
            R::DspDelClient => self.stopping(|| self.adsp()?.bye(true)),
            R::DspOnIndication(mode) => self.adsp()?.set_on_indication(*mode),
            R::PortSuspends(port) => self.usb()?.port_suspends(*port),
            R::HcError(kind) => self.usb()?.controller_error(*kind),
            R::HcRevive => self.usb()?.controller_revive(),
            R::DspRaw { kind, stream } => self.adsp()?.raw_request(*kind, stream.params()),
            R::Sleep(ms) => {
                std::thread::sleep(std::time::Duration::from_millis(*ms));
                Ok(format!("slept {ms} ms"))
            }
            R::UnplugAfter { ms, port } => self.usb()?.unplug_after((*ms).min(10_000), *port),
            R::Button(b) => faults::button(self.usb()?, *b),
            R::XactErrors { ep, span } => {
                faults::fault(self.usb()?, Fault::TransactionError, *ep, *span)
            }
            R::Stall { ep, span } => faults::fault(self.usb()?, Fault::Stall, *ep, *span),
            R::HostStall {
                ms,
                count,
                every_ms,
            } => faults::host_stalls(self.usb()?, *ms, *count, *every_ms),
            R::SelftestPanic => Ok(self.usb()?.selftest_panic()),
            R::SelftestDmaWrite => self.usb()?.selftest_dma_write(),
            R::SelftestStuck => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
        }
    }

    fn usb(&self) -> Result<&RunningUsb> {
        self.usb.as_ref().context("no xHCI in this boot")
    }

    fn adsp(&self) -> Result<&RunningAdsp> {
        self.adsp.as_ref().context("no ADSP in this boot")
    }

    /// `stream-enable`: the DSP's request, then its answer checked against the controller.
    fn stream_enable(&self, spec: &StreamSpec) -> Result<String> {
        self.stream_enable_params(spec.params())
    }

    fn stream_enable_params(
        &self,
        params: sideband_device::adsp::uaudio::StreamParams,
    ) -> Result<String> {
        let adsp = self.adsp()?;
        let table = self.viommu.as_ref().map(|v| &v.smmu.table);
        let answer = adsp.enable(params, table, Q6USB_ENDPOINT)?;
        let (Some(usb), Some(r)) = (self.usb.as_ref(), adsp.resources()) else {
            return Ok(answer);
        };
        let irq = usb.check_against_controller(&r)?;
        Ok(format!("{answer}; {irq}"))
    }

    /// `stream-play N`, `stream-capture N`, `stream-start` on the enabled stream.
    /// `fed`: a started stream plays what the guest feeds through ASM (the platform card).
    fn stream_run(&self, request: &Request, fed: bool) -> Result<String> {
        let adsp = self.adsp()?;
        let usb = self.usb()?;
        let smmu = self
            .viommu
            .as_ref()
            .context("no SMMU in this boot")?
            .smmu
            .table
            .clone();
        let r = adsp
            .resources()
            .context("no enabled stream (stream-enable first)")?;
        let p = adsp
            .params()
            .context("no enabled stream (stream-enable first)")?;
        match request {
            Request::StreamPlay(n) => usb.play(&r, p.rate, p.channels, *n, smmu),
            Request::StreamCapture(n) => usb.capture(&r, p.rate, p.channels, *n, smmu),
            _ => usb.start_stream(&r, p.rate, p.channels, smmu, fed),
        }
    }

    fn expect_streaming(&self) -> Result<String> {
        if self.usb()?.streaming() {
            Ok("the DSP's stream is still running".into())
        } else {
            anyhow::bail!("the DSP's stream is not running")
        }
    }

    fn expect_released(&self) -> Result<String> {
        if self.usb()?.streaming() {
            anyhow::bail!("the DSP's stream still runs");
        }
        match self.stream_mappings() {
            0 => Ok("the DSP holds nothing: stream stopped, q6usb SMMU domain empty".into()),
            n => anyhow::bail!("{n} SMMU mapping(s) are left after the release"),
        }
    }

    /// `stream-disable`: the guest releases the stream and the SMMU table is empty after it.
    fn stream_disable(&self) -> Result<String> {
        let adsp = self.adsp()?;
        self.stopping(|| {
            let answer = adsp.disable()?;
            let left = self.stream_mappings();
            if left != 0 {
                anyhow::bail!("{answer}, but {left} SMMU mapping(s) are left");
            }
            Ok(format!("{answer}, q6usb SMMU domain empty"))
        })
    }

    /// Stops the DSP's stream engine, then runs `then`; the answer names both.
    fn stopping(&self, then: impl FnOnce() -> Result<String>) -> Result<String> {
        let stopped = self.usb.as_ref().and_then(RunningUsb::stop_engine);
        let answer = then()?;
        Ok(match stopped {
            Some(s) => format!("{s}; {answer}"),
            None => answer,
        })
    }

    fn cpu_start(&self, qemu_pid: u32) -> Result<String> {
        let mark = CpuMark::now(qemu_pid)?;
        *self
            .cpu
            .lock()
            .map_err(|_| anyhow::anyhow!("lock poisoned"))? = Some(mark);
        Ok("CPU counters marked".into())
    }

    fn cpu_stop(&self, label: &str, audio_seconds: f64, qemu_pid: u32) -> Result<String> {
        let start = self
            .cpu
            .lock()
            .map_err(|_| anyhow::anyhow!("lock poisoned"))?
            .take()
            .context("cpu-stop without cpu-start")?;
        start.report(label, audio_seconds, qemu_pid)
    }

    /// Mappings in q6usb's domain: what an offloaded USB stream holds (the platform card's PCM
    /// buffers sit in q6asm-dais' own domain and outlive a stream).
    fn stream_mappings(&self) -> usize {
        self.viommu
            .as_ref()
            .and_then(|v| {
                crate::fatal::lock(&v.smmu.table, "SMMU").map(|t| {
                    t.domain_of(Q6USB_ENDPOINT)
                        .map_or(0, |d| t.mappings(d).len())
                })
            })
            .unwrap_or(0)
    }

    /// Mappings in the SMMU table, every domain's.
    fn smmu_mappings(&self) -> usize {
        self.viommu
            .as_ref()
            .and_then(|v| crate::fatal::lock(&v.smmu.table, "SMMU").map(|t| t.mapping_count()))
            .unwrap_or(0)
    }

    /// The socket folder.
    #[cfg(test)]
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// What the devices judge wrong in the run so far (see `judgement`): SMMU faults of the DSP,
    /// errors on its event ring, controller errors nobody asked for, failed guest commands.
    pub fn judgement(&self) -> Vec<DeviceProblem> {
        judgement::judge(&judgement::DeviceFigures {
            dsp: self
                .usb
                .as_ref()
                .map(RunningUsb::dsp_figures)
                .unwrap_or_default(),
            xhci: self.usb.as_ref().map(RunningUsb::xhci_figures),
            afe_failures: self.glink.as_ref().map_or((0, None), |g| {
                let f = g.figures();
                let first = f.afe_failures().next().cloned();
                (f.afe_failures().count() as u64, first)
            }),
        })
    }

    /// A one-line account of what the devices saw, for summaries and reports.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(v) = &self.viommu {
            let s = crate::fatal::lock(&v.smmu.stats, "SMMU stats")
                .map(|s| s.clone())
                .unwrap_or_default();
            let mappings = self.smmu_mappings();
            lines.push(viommu_line(&s, mappings));
        }
        if let Some(usb) = &self.usb {
            lines.extend(usb.summary());
        }
        if let Some(a) = &self.adsp {
            lines.extend(a.summary());
        }
        if let Some(g) = &self.glink {
            lines.extend(g.summary());
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
    fn selftest_panic_kills_the_bus_clock_and_is_recorded_with_its_place() {
        let _alone = crate::fatal::TEST_RECORD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        crate::fatal::install();
        crate::fatal::clear();
        let out = tempfile::tempdir().unwrap();
        let all = RunningDevices::start(&DeviceSet::all(), out.path(), DEFAULT_HEADSET).unwrap();
        assert!(all.judgement().is_empty(), "nothing happened yet");
        let a = all.control("selftest-panic", std::process::id()).unwrap();
        assert!(a.starts_with("the bus clock panics"), "{a}");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while crate::fatal::first().is_none() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let f = crate::fatal::take().expect("the clock's panic is recorded");
        assert_eq!(f.message, xhci::SELFTEST_PANIC);
        assert_eq!(f.thread, "xhci-clock");
        assert!(
            f.location.starts_with("backend/src/devices/xhci.rs:"),
            "{f}"
        );
        // The controller's lock is poisoned now: users of it report, and nothing panics.
        assert!(all.summary().iter().any(|l| l.starts_with("adsp-smmu:")));
        let f = crate::fatal::take().expect("the poisoned lock is recorded");
        assert_eq!(f.message, "the xHCI lock was poisoned by a panic", "{f}");
        drop(all);
        crate::fatal::clear();
    }

    #[test]
    fn controller_errors_are_problems_unless_requested() {
        let out = tempfile::tempdir().unwrap();
        let all = RunningDevices::start(&DeviceSet::all(), out.path(), DEFAULT_HEADSET).unwrap();
        all.control("hc-error hse", std::process::id()).unwrap();
        all.control("hc-error hce", std::process::id()).unwrap();
        let settle = || std::thread::sleep(std::time::Duration::from_millis(30));
        settle();
        assert!(all.judgement().is_empty(), "{:?}", all.judgement());
        let xhci = &all.usb.as_ref().unwrap().xhci;
        xhci.lock().unwrap().controller.reset();
        settle();
        xhci.lock()
            .unwrap()
            .controller
            .inject_host_controller_error();
        xhci.lock().unwrap().controller.inject_host_system_error();
        settle();
        let p = all.judgement();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].kind, DeviceProblemKind::HcError);
        assert_eq!(
            p[0].detail,
            "xhci: 2 Host System Error(s) (1 asked for by hc-error hse), 2 Host Controller Error(s) (1 asked for by hc-error hce)"
        );
    }

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
