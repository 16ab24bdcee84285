//! The xHCI controller as a PCI function for the vfio-user server, and its clock: the model in
//! `sideband_device::xhci` behind the PCI face in `sideband_device::pci`, ticked once per
//! 125 µs microframe.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sideband_device::pci::{classify_bar0, Bar0Target, XhciPciFunction, BAR0_SIZE};
use sideband_device::usb::BusTime;
use sideband_device::xhci::regs::{iman, op, rt, usbsts, OP_BASE, RT_BASE};
use sideband_device::xhci::{Config, Controller, InterruptSink};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::transport::dma::DmaMemory;
use crate::transport::msix::MsixFds;
use crate::transport::vfio_user::{config_read, config_write, le, BusContext, PciModel};

/// Interrupter N raises MSI-X vector N through the eventfd QEMU gave for it. Masking is QEMU's:
/// its vfio-pci layer emulates the MSI-X table and never forwards table writes to us.
#[derive(Debug)]
struct EventfdSink(MsixFds);

impl InterruptSink for EventfdSink {
    fn msix(&mut self, vector: u16) {
        self.0.trigger(vector);
    }
}

/// The xHCI function: PCI config space and MSI-X state plus the controller.
#[derive(Debug)]
pub struct XhciFunction {
    pci: XhciPciFunction,
    /// The controller model.
    pub controller: Controller,
    vectors: u16,
}

impl XhciFunction {
    /// Whether the guest enabled bus mastering (QEMU drops the function's DMA otherwise).
    pub fn bus_master(&self) -> bool {
        self.pci.config.command() & sideband_device::pci::config::COMMAND_BUS_MASTER != 0
    }

    /// A controller with `config`, raising interrupts through `msix`.
    pub fn new(config: Config, msix: MsixFds) -> anyhow::Result<Self> {
        let vectors = config.max_interrupters;
        let controller = Controller::new(config, Box::new(EventfdSink(msix)))
            .map_err(|e| anyhow::anyhow!("xHCI configuration: {e}"))?;
        Ok(XhciFunction {
            pci: XhciPciFunction::xhci(vectors),
            controller,
            vectors,
        })
    }
}

/// An interrupter as the guest programmed it: what the DSP's event ring must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterrupterView {
    /// IMAN.IE: the guest wants MSI-X for this interrupter.
    pub interrupt_enable: bool,
    /// ERSTSZ: event ring segments.
    pub segments: u32,
    /// Base address of segment 0, from the ERST in guest memory.
    pub segment0: u64,
    /// TRBs in segment 0.
    pub segment0_trbs: u32,
}

impl XhciFunction {
    /// Reads interrupter `n`'s registers and its first ERST entry.
    pub fn interrupter_view(&self, n: u16, mem: &GuestMemoryMmap) -> Option<InterrupterView> {
        if n >= self.vectors {
            return None;
        }
        let set = RT_BASE + rt::IR_BASE + rt::IR_STRIDE * u64::from(n);
        let c = &self.controller;
        let iman_v = c.mmio_read(set + rt::IMAN, 4) as u32;
        let segments = c.mmio_read(set + rt::ERSTSZ, 4) as u32 & 0xffff;
        let erstba = c.mmio_read(set + rt::ERSTBA, 8) & !0x3f;
        let mut entry = [0u8; 16];
        mem.read_slice(&mut entry, GuestAddress(erstba)).ok()?;
        Some(InterrupterView {
            interrupt_enable: iman_v & iman::IE != 0,
            segments,
            segment0: u64::from_le_bytes(entry[0..8].try_into().ok()?) & !0x3f,
            segment0_trbs: u32::from_le_bytes(entry[8..12].try_into().ok()?) & 0xffff,
        })
    }
}

/// An endpoint as the guest's output device context describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointView {
    /// Root hub port of the slot (slot context).
    pub root_port: u8,
    /// TR Dequeue Pointer of the endpoint (its transfer ring), without DCS.
    pub tr_dequeue: u64,
    /// Endpoint state (0 Disabled, 1 Running, 2 Halted, 3 Stopped, 4 Error).
    pub state: u8,
}

impl XhciFunction {
    /// Reads slot `slot`'s output context for endpoint `dci` through DCBAAP, as the guest set it.
    pub fn endpoint_view(&self, slot: u8, dci: u8, mem: &GuestMemoryMmap) -> Option<EndpointView> {
        if dci == 0 || dci > 31 {
            return None;
        }
        let dcbaa = self.controller.mmio_read(OP_BASE + op::DCBAAP, 8) & !0x3f;
        let entry: u64 = mem
            .read_obj(GuestAddress(dcbaa.checked_add(8 * u64::from(slot))?))
            .ok()?;
        // Every address here comes from the guest: no arithmetic may wrap.
        let ctx = entry & !0x3f;
        let slot_dw1: u32 = mem.read_obj(GuestAddress(ctx.checked_add(4)?)).ok()?;
        let ep = ctx.checked_add(32 * u64::from(dci))?;
        let ep_dw0: u32 = mem.read_obj(GuestAddress(ep)).ok()?;
        let deq: u64 = mem.read_obj(GuestAddress(ep.checked_add(8)?)).ok()?;
        Some(EndpointView {
            root_port: (slot_dw1 >> 16) as u8,
            tr_dequeue: deq & !0xf,
            state: (ep_dw0 & 7) as u8,
        })
    }
}

impl PciModel for XhciFunction {
    fn bar_size(&self, index: u32) -> u64 {
        if index == 0 {
            BAR0_SIZE
        } else {
            0
        }
    }

    fn msix_vectors(&self) -> u32 {
        u32::from(self.vectors)
    }

    fn config_read(&mut self, offset: u64, data: &mut [u8]) {
        config_read(&self.pci, offset, data);
    }

    fn config_write(&mut self, offset: u64, data: &[u8]) {
        config_write(&mut self.pci, offset, data);
    }

    fn bar_read(&mut self, index: u32, offset: u64, data: &mut [u8], _ctx: &BusContext<'_>) {
        if index != 0 {
            return;
        }
        let size = data.len() as u32;
        let value = match (classify_bar0(offset), size) {
            (Bar0Target::Xhci(o), 1 | 2 | 4 | 8) => self.controller.mmio_read(o, size),
            (Bar0Target::MsixTable(o), 4 | 8) => self.pci.msix.table_read(o, size),
            (Bar0Target::MsixPba(o), 4 | 8) => self.pci.msix.pba_read(o, size),
            _ => u64::MAX,
        };
        let bytes = value.to_le_bytes();
        let n = data.len().min(8);
        data[..n].copy_from_slice(&bytes[..n]);
    }

    fn bar_write(&mut self, index: u32, offset: u64, data: &[u8], ctx: &BusContext<'_>) {
        if index != 0 || data.len() > 8 {
            return;
        }
        let size = data.len() as u32;
        match classify_bar0(offset) {
            Bar0Target::Xhci(o) => self.controller.mmio_write(ctx.mem, o, size, le(data)),
            Bar0Target::MsixTable(o) => {
                let _ = self.pci.msix.table_write(o, size, le(data));
            }
            Bar0Target::MsixPba(_) | Bar0Target::Outside => {}
        }
    }

    fn reset(&mut self) {
        self.controller.reset();
        self.pci = XhciPciFunction::xhci(self.vectors);
    }
}

/// Work done on the controller's clock after each tick: the DSP's stream engine.
pub type ClockHook = Box<dyn FnMut(&mut XhciFunction, &GuestMemoryMmap) + Send>;

/// Microframes a late clock catches up at most (1 s); time beyond that is lost, as on a bus
/// whose controller was not scheduled.
const CATCH_UP_MAX: u64 = 8000;
/// The hook runs once per this many microframes (1 ms), also while catching up.
const HOOK_EVERY: u64 = 8;
/// A gap between two wake-ups longer than this (µs; the period is 1 ms) counts as a stall.
const STALL_US: u64 = 4000;

/// The microframes one wake-up of the clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CatchUp {
    first: u64,
    now: u64,
    /// Microframes skipped: older than the catch-up window.
    lost: u64,
}

impl CatchUp {
    /// After microframe `last`, with `now` the current one.
    fn plan(last: u64, now: u64) -> Self {
        let first = (last + 1).max(now.saturating_sub(CATCH_UP_MAX));
        CatchUp {
            first,
            now,
            lost: first - (last + 1),
        }
    }

    fn ticks(&self) -> std::ops::RangeInclusive<u64> {
        self.first..=self.now
    }

    /// Whether the hook runs after ticking `uf`: at the end of the wake-up, and inside a burst
    /// every 8 microframes, so the DSP refills the ring as often as on time.
    fn hook_after(&self, uf: u64) -> bool {
        uf == self.now
            || (self.now.saturating_sub(self.first) >= HOOK_EVERY && uf % HOOK_EVERY == 0)
    }
}

/// How punctually the host ran the clock thread.
#[derive(Debug, Default)]
pub struct ClockStats {
    stalls: AtomicU64,
    longest_gap_us: AtomicU64,
    longest_busy_us: AtomicU64,
    lost_microframes: AtomicU64,
}

/// A snapshot of [`ClockStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockFigures {
    /// Wake-ups more than 4 ms after the one before.
    pub stalls: u64,
    /// The longest time between two wake-ups, µs.
    pub longest_gap_us: u64,
    /// The longest one wake-up took (waiting for the controller, ticking, the DSP), µs: when it
    /// is near the longest gap, the clock's own work (or a lock holder) made it late, not the
    /// host's scheduler.
    pub longest_busy_us: u64,
    /// Microframes older than the catch-up window, not ticked.
    pub lost_microframes: u64,
}

impl ClockStats {
    /// The figures so far.
    pub fn figures(&self) -> ClockFigures {
        ClockFigures {
            stalls: self.stalls.load(Ordering::Relaxed),
            longest_gap_us: self.longest_gap_us.load(Ordering::Relaxed),
            longest_busy_us: self.longest_busy_us.load(Ordering::Relaxed),
            lost_microframes: self.lost_microframes.load(Ordering::Relaxed),
        }
    }

    fn gap(&self, us: u64) {
        if us > STALL_US {
            self.stalls.fetch_add(1, Ordering::Relaxed);
        }
        self.longest_gap_us.fetch_max(us, Ordering::Relaxed);
    }
}

impl std::fmt::Display for ClockFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} late wake-up(s) over 4 ms, longest gap {:.1} ms (longest busy {:.1} ms), {} microframe(s) lost past the 1 s catch-up",
            self.stalls,
            self.longest_gap_us as f64 / 1000.0,
            self.longest_busy_us as f64 / 1000.0,
            self.lost_microframes
        )
    }
}

/// Drives the controller's time: every millisecond it ticks once per microframe that passed,
/// running the hook (the DSP serves its stream on the same clock, as the real DSP follows the
/// bus) after every 8. When the host ran the thread late, the missed microframes are ticked
/// in a burst with the hook still between every 8 of them: the DSP shares the controller's
/// time, so a host stall delays neither relative to the other.
///
/// The clock also counts the Host Controller Errors it sees begin (USBSTS.HCE going from 0 to 1;
/// the model keeps no count of them), for the run's judgement. A poisoned controller lock (a
/// panic under it) stops the clock and is recorded as the run's failure (`crate::fatal`).
#[derive(Debug)]
pub struct XhciClock {
    stop: Arc<AtomicBool>,
    stats: Arc<ClockStats>,
    hce_raised: Arc<AtomicU64>,
    /// `selftest-panic`: panic at the next wake-up, holding the controller lock.
    panic_request: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The message of the clock's self-test panic.
pub const SELFTEST_PANIC: &str =
    "selftest-panic: the bus clock panics on request while it holds the controller lock";

impl XhciClock {
    /// Starts ticking `xhci` against `dma`.
    pub fn start(
        xhci: Arc<Mutex<XhciFunction>>,
        dma: DmaMemory,
        mut hook: ClockHook,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ClockStats::default());
        let hce_raised = Arc::new(AtomicU64::new(0));
        let panic_request = Arc::new(AtomicBool::new(false));
        let (flag, figures) = (stop.clone(), stats.clone());
        let (hce_count, selftest) = (hce_raised.clone(), panic_request.clone());
        let thread = std::thread::Builder::new()
            .name("xhci-clock".into())
            .spawn(move || {
                let start = Instant::now();
                let mut last = 0u64;
                let mut woke = start;
                let mut hce_before = false;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    let wake = Instant::now();
                    figures.gap(wake.duration_since(woke).as_micros() as u64);
                    woke = wake;
                    let now = (wake.duration_since(start).as_micros() / 125) as u64;
                    let mem = dma.snapshot();
                    let Some(mut x) = crate::fatal::lock(&xhci, "xHCI") else {
                        break;
                    };
                    if selftest.swap(false, Ordering::Relaxed) {
                        panic!("{SELFTEST_PANIC}");
                    }
                    // No guest RAM mapped: QEMU has gone (its connection's end unmaps all), and
                    // a controller left running would only fail its next DMA as a Host System
                    // Error the run never caused.
                    if mem.num_regions() > 0 {
                        let plan = CatchUp::plan(last, now);
                        figures
                            .lost_microframes
                            .fetch_add(plan.lost, Ordering::Relaxed);
                        for uf in plan.ticks() {
                            x.controller.tick(&*mem, BusTime(uf));
                            if plan.hook_after(uf) {
                                hook(&mut x, &mem);
                            }
                        }
                    }
                    last = last.max(now);
                    let hce = x.controller.usbsts() & usbsts::HCE != 0;
                    if hce && !hce_before {
                        hce_count.fetch_add(1, Ordering::Relaxed);
                    }
                    hce_before = hce;
                    drop(x);
                    figures
                        .longest_busy_us
                        .fetch_max(wake.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
            })?;
        Ok(XhciClock {
            stop,
            stats,
            hce_raised,
            panic_request,
            thread: Some(thread),
        })
    }

    /// How punctually the clock ran.
    pub fn stats(&self) -> &ClockStats {
        &self.stats
    }

    /// Host Controller Errors the clock saw begin.
    pub fn host_controller_errors(&self) -> u64 {
        self.hce_raised.load(Ordering::Relaxed)
    }

    /// `selftest-panic`: the clock thread panics at its next wake-up while it holds the
    /// controller lock, as a bug in a model or the DSP's hook would (a harness self-test: the
    /// run must end at once with the panic's message).
    pub fn panic_at_next_tick(&self) {
        self.panic_request.store(true, Ordering::Relaxed);
    }
}

impl Drop for XhciClock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_clock_ticks_the_missed_microframes_with_the_dsp_between_every_eight() {
        let on_time = CatchUp::plan(800, 808);
        assert_eq!((on_time.ticks().count(), on_time.lost), (8, 0));
        let hooks: Vec<u64> = on_time.ticks().filter(|&u| on_time.hook_after(u)).collect();
        assert_eq!(hooks, [808], "on time, the DSP runs once per wake-up");
        // 40 ms late: 320 microframes, more than the DSP keeps queued (200).
        let late = CatchUp::plan(808, 1128);
        assert_eq!((late.ticks().count(), late.lost), (320, 0));
        let hooks: Vec<u64> = late.ticks().filter(|&u| late.hook_after(u)).collect();
        assert_eq!(hooks.len(), 40);
        assert!(hooks.windows(2).all(|w| w[1] - w[0] <= HOOK_EVERY));
        assert_eq!(hooks.last(), Some(&1128));
        // 3 s late: the last second is ticked, the rest is lost time.
        let stalled = CatchUp::plan(1128, 1128 + 24_000);
        assert_eq!(stalled.ticks().count() as u64, CATCH_UP_MAX + 1);
        assert_eq!(stalled.lost, 24_000 - CATCH_UP_MAX - 1);
        let idle = CatchUp::plan(5, 5);
        assert_eq!((idle.ticks().count(), idle.lost), (0, 0));
    }

    #[test]
    fn config_space_reads_as_an_xhci_and_bar0_as_its_registers() {
        let mut f = XhciFunction::new(Config::default(), MsixFds::default()).unwrap();
        let mut cfg = vec![0u8; 4096];
        f.config_read(0, &mut cfg);
        assert_eq!(&cfg[0..4], &[0x36, 0x1b, 0x0d, 0x00]);
        assert_eq!(&cfg[9..12], &[0x30, 0x03, 0x0c], "class 0x0c0330");
        // QEMU walks the capability lists from the config image it reads once; any loop there
        // hangs its realize. The PCI list must end, and the extended list must be empty.
        let mut at = cfg[0x34] as usize;
        let mut hops = 0;
        while at != 0 {
            at = cfg[at + 1] as usize;
            hops += 1;
            assert!(hops < 48, "capability list loops");
        }
        assert_eq!(
            &cfg[0x100..0x104],
            &[0, 0, 0, 0],
            "no extended capabilities"
        );
        let mem = vm_memory::GuestMemoryMmap::<()>::new();
        let msix = MsixFds::default();
        let ctx = BusContext {
            mem: &mem,
            msix: &msix,
        };
        let mut caplength = [0u8; 1];
        f.bar_read(0, 0, &mut caplength, &ctx);
        assert_eq!(caplength[0], 0x40);
        let mut hcs1 = [0u8; 4];
        f.bar_read(0, 4, &mut hcs1, &ctx);
        assert_eq!((u32::from_le_bytes(hcs1) >> 8) & 0x7ff, 16, "MaxIntrs");
        assert_eq!(f.msix_vectors(), 16);
    }
}
