//! The DSP's GLINK edge to the guest, which APR rides on to the Q6 services: the pure remote
//! (`sideband_device::adsp::glink`) on the message RAM the guest's DT reserves, polled every
//! millisecond on a thread of its own. Its interrupt to the guest is a DMA_WRITE of the doorbell
//! INTID to the GICv2m's MSI_SETSPI_NS register, sent as the xHCI's bus master (apr-glink.md §3);
//! while the guest has not read what the remote wrote, the doorbell rings again every 10 ms, so
//! a kick sent before the guest enabled its interrupt is not the end of the link. APR packets on
//! the channel go to the pure router (`sideband_device::adsp::apr`); its answers go back. AFE
//! port starts and stops go to the `adsp-afe` thread (`super::afe`), which asks the guest for the
//! USB stream; the stream manager's queued buffers feed that stream's engine (`super::pcm_feed`),
//! or play out on this thread's clock when no stream takes them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sideband_device::adsp::apr::{AfeEvent, Router, RouterStats};
use sideband_device::adsp::glink::{Delivery, GlinkRemote, GlinkStats, MsgRam};
use vm_memory::{GuestAddress, GuestMemoryBackend};

use super::pcm_feed::PcmFeeder;
use super::stream::EngineSlot;
use crate::transport::dma::DmaMemory;
use crate::transport::vfio_user_server::Outbox;
use crate::vm::dt::{ADSP_MSG_RAM, ADSP_MSG_RAM_SIZE, APR_CHANNEL, GLINK_INTID};

/// QEMU virt's GICv2m frame: a write of an INTID to MSI_SETSPI_NS pulses that SPI.
pub const GICV2M_SETSPI_NS: u64 = 0x0802_0040;
const POLL: Duration = Duration::from_millis(1);
const REKICK: Duration = Duration::from_millis(10);

/// What the link did, for the summary and `stats`.
#[derive(Clone, Debug, Default)]
pub struct GlinkFigures {
    /// The remote's own counters.
    pub link: GlinkStats,
    /// Doorbells rung.
    pub kicks: u64,
    /// Whether the APR channel is open both ways.
    pub apr_up: bool,
    /// APR packets the guest sent.
    pub apr_packets: u64,
    /// What the DSP's APR services did with them.
    pub apr: RouterStats,
    /// USB port starts and stops the AFE was asked for.
    pub afe_starts: u64,
    /// See `afe_starts`.
    pub afe_stops: u64,
    /// What the AFE-driven stream enables and disables came to, in order (`super::afe`).
    pub afe_outcomes: Vec<Result<String, String>>,
    /// Buffers the stream manager was given (WRITE_V2) and gave back played.
    pub asm_writes: u64,
    /// See `asm_writes`.
    pub asm_writes_done: u64,
    /// RENDERED_EOS events sent.
    pub asm_eos: u64,
    /// COPPs the device manager opened, and routes set.
    pub adm_copps: u64,
    /// See `adm_copps`.
    pub adm_routes: u64,
    /// Why the link stopped, if the guest broke it.
    pub broken: Option<String>,
}

/// The running edge: stops its thread when dropped.
#[derive(Debug)]
pub struct RunningGlink {
    stop: Arc<AtomicBool>,
    figures: Arc<Mutex<GlinkFigures>>,
    thread: Option<JoinHandle<()>>,
}

impl GlinkFigures {
    /// The failed AFE-driven enables and disables, oldest first.
    pub fn afe_failures(&self) -> impl DoubleEndedIterator<Item = &String> {
        self.afe_outcomes.iter().filter_map(|o| o.as_ref().err())
    }
}

impl RunningGlink {
    /// Serves the edge on `dma` (the xHCI's map of guest RAM), ringing through `outbox` while
    /// `bus_master()` says QEMU will carry the xHCI's writes.
    /// AFE port starts and stops go to `afe`; the ASM session routed to the USB port feeds the
    /// engine in `engine` when it takes fed PCM.
    pub fn start(
        dma: DmaMemory,
        outbox: Outbox,
        bus_master: impl Fn() -> bool + Send + 'static,
        afe: Sender<AfeEvent>,
        engine: EngineSlot,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let figures = Arc::new(Mutex::new(GlinkFigures::default()));
        let (s, f) = (stop.clone(), figures.clone());
        let thread = std::thread::Builder::new()
            .name("adsp-glink".into())
            .spawn(move || {
                crate::fatal::contain(|| serve(&dma, &outbox, &bus_master, &afe, &engine, &s, &f));
            })?;
        Ok(RunningGlink {
            stop,
            figures,
            thread: Some(thread),
        })
    }

    /// The link's figures so far.
    pub fn figures(&self) -> GlinkFigures {
        crate::fatal::lock(&self.figures, "GLINK figures")
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    /// Records what an AFE-driven enable or disable came to.
    pub fn note_afe_outcome(&self, outcome: Result<String, String>) {
        if let Some(mut f) = crate::fatal::lock(&self.figures, "GLINK figures") {
            f.afe_outcomes.push(outcome);
        }
    }

    /// The summary lines.
    pub fn summary(&self) -> Vec<String> {
        let f = self.figures();
        let mut lines = vec![format!(
            "adsp-glink: {} command(s) in, {} out, {} malformed, {} doorbell(s); channel {APR_CHANNEL} {}, {} APR packet(s) from the guest ({} to the core service, {} to AFE, {} to ASM, {} to ADM, {} to services not modelled yet, {} malformed){}",
            f.link.commands_in,
            f.link.commands_out,
            f.link.malformed,
            f.kicks,
            if f.apr_up { "up" } else { "not up" },
            f.apr_packets,
            f.apr.core,
            f.apr.afe,
            f.apr.asm,
            f.apr.adm,
            f.apr.unsupported,
            f.apr.malformed,
            f.broken.map(|b| format!("; link stopped: {b}")).unwrap_or_default()
        )];
        if f.afe_starts + f.apr.asm + f.apr.adm > 0 {
            lines.push(format!(
                "adsp-apr: AFE USB port {} start(s)/{} stop(s); ASM {} buffer(s) queued, {} played back (WRITE_DONE), {} EOS rendered; ADM {} COPP(s) opened, {} route(s)",
                f.afe_starts, f.afe_stops, f.asm_writes, f.asm_writes_done, f.asm_eos, f.adm_copps, f.adm_routes
            ));
        }
        for o in &f.afe_outcomes {
            lines.push(match o {
                Ok(a) => format!("adsp-afe: {a}"),
                Err(e) => format!("adsp-afe: FAILED: {e}"),
            });
        }
        lines
    }
}

impl Drop for RunningGlink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    dma: &DmaMemory,
    outbox: &Outbox,
    bus_master: &dyn Fn() -> bool,
    afe: &Sender<AfeEvent>,
    engine: &EngineSlot,
    stop: &AtomicBool,
    figures: &Mutex<GlinkFigures>,
) {
    let mut remote = GlinkRemote::new(MsgRam::new(ADSP_MSG_RAM, ADSP_MSG_RAM_SIZE), &[APR_CHANNEL]);
    let mut router = Router::default();
    let mut installed = false;
    let mut last_kick: Option<Instant> = None;
    let mut last_tick = Instant::now();
    let mut feeder = PcmFeeder::default();
    // Where the outcome of the latest AFE port start's stream enable will be recorded.
    let mut start_outcome = usize::MAX;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL);
        let elapsed_us = last_tick.elapsed().as_micros() as u64;
        last_tick = Instant::now();
        let mem = dma.snapshot();
        let end = GuestAddress(ADSP_MSG_RAM + ADSP_MSG_RAM_SIZE - 1);
        if !mem.address_in_range(GuestAddress(ADSP_MSG_RAM)) || !mem.address_in_range(end) {
            continue; // QEMU has not mapped guest RAM yet, or is gone
        }
        if !installed {
            match remote.install(&*mem) {
                Ok(()) => log::debug!("GLINK: message RAM at {ADSP_MSG_RAM:#x} set up"),
                Err(e) => log::warn!("GLINK: cannot set up the message RAM: {e}"),
            }
            installed = true;
        }
        // The USB stream's engine takes the guest's PCM as it plays. While the USB port runs
        // but its stream has not started yet (the QMI enable is on its way), buffers wait for
        // it; with no USB port running, or once its stream ended, they play out on this clock
        // (nowhere). Either way the poll below writes the done events.
        // A port start whose stream enable failed has no stream coming either.
        let enable_failed = crate::fatal::lock(figures, "GLINK figures")
            .is_some_and(|f| matches!(f.afe_outcomes.get(start_outcome), Some(Err(_))));
        let packets = match feeder.feed(&mut router, engine, &*mem) {
            Some(packets) => packets,
            None if router.usb_port_started() && !feeder.stream_ended() && !enable_failed => {
                Vec::new()
            }
            None => router.asm().play(elapsed_us),
        };
        send_events(&mut remote, packets);
        let Some(mut f) = crate::fatal::lock(figures, "GLINK figures") else {
            return;
        };
        // A poll reads what the guest wrote and writes what is queued: poll again while the
        // guest's packets produce answers, so they leave in this tick (bounded rounds).
        let mut interrupt = false;
        for _ in 0..4 {
            let poll = remote.poll(&*mem);
            interrupt |= poll.interrupt;
            if poll.delivered.is_empty() {
                break;
            }
            for d in poll.delivered {
                match d {
                    Delivery::Up(name) => log::info!("GLINK: channel {name} up"),
                    Delivery::Down(name) => log::info!("GLINK: channel {name} closed by the guest"),
                    Delivery::Data { channel, payload } => {
                        log::debug!("GLINK: {} byte(s) on {channel}", payload.len());
                        f.apr_packets += 1;
                        for answer in router.handle(&payload) {
                            if let Err(e) = remote.send(APR_CHANNEL, &answer) {
                                log::warn!("APR: answer not sent: {e}");
                            }
                        }
                    }
                }
            }
        }
        for event in router.take_events() {
            match event {
                AfeEvent::Start(p) => {
                    send_events(&mut remote, feeder.port_started());
                    start_outcome = f.afe_outcomes.len();
                    f.afe_starts += 1;
                    log::info!(
                        "AFE: USB port start for card {} pcm {}: {} Hz, {} bit, {} ch, interval {} us",
                        p.card, p.pcm, p.rate, p.bits, p.channels, p.service_interval_us
                    );
                }
                AfeEvent::Stop => {
                    f.afe_stops += 1;
                    log::info!("AFE: USB port stop");
                }
            }
            if afe.send(event).is_err() {
                log::warn!("AFE: nobody serves port starts (the adsp-afe thread is gone)");
            }
        }
        f.apr = router.stats();
        let asm = router.asm().stats();
        (f.asm_writes, f.asm_writes_done, f.asm_eos) =
            (asm.writes, asm.writes_done, asm.eos_rendered);
        let adm = router.adm().stats();
        (f.adm_copps, f.adm_routes) = (adm.opened, adm.routes);
        f.apr_up = remote.is_up(APR_CHANNEL);
        f.link = remote.stats();
        f.broken = remote.broken().map(str::to_string);
        let unread = remote.guest_has_unread(&*mem);
        let rekick = unread && last_kick.is_none_or(|t| t.elapsed() >= REKICK);
        if (interrupt || rekick) && bus_master() {
            match outbox.dma_write(GICV2M_SETSPI_NS, &GLINK_INTID.to_le_bytes()) {
                Ok(true) => {
                    f.kicks += 1;
                    last_kick = Some(Instant::now());
                }
                Ok(false) => {}
                Err(e) => log::warn!("GLINK: doorbell to the guest failed: {e}"),
            }
        }
    }
}

/// Queues the DSP's own events (WRITE_DONE, RENDERED_EOS) on the APR channel.
fn send_events(remote: &mut GlinkRemote, packets: Vec<Vec<u8>>) {
    for packet in packets {
        if let Err(e) = remote.send(APR_CHANNEL, &packet) {
            log::warn!("ASM: event not sent: {e}");
        }
    }
}
