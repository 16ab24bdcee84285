//! The DSP's stream on the controller's clock: the engine, how packets are cut, the hook that
//! turns the engine's actions into MMIO writes, and the figures of every stream of the run.

use std::sync::{Arc, Mutex};

use sideband_device::adsp::engine::{Action, StreamEngine};
use sideband_device::smmu::SmmuTable;
use sideband_device::xhci::regs::{rt, DB_BASE, RT_BASE};

use super::judgement::DspFigures;
use super::xhci::{ClockHook, XhciFunction};

/// The DSP's running stream: the engine and the SMMU it translates through. When it ends
/// (stopped, replaced by the next stream, or the devices go away) its figures are added to the
/// run's totals, so the run's judgement sees every stream.
#[derive(Debug)]
pub struct EngineRun {
    pub(super) engine: StreamEngine,
    pub(super) smmu: Arc<Mutex<SmmuTable>>,
    totals: DspTotals,
}

impl EngineRun {
    /// A stream whose figures go to `totals` when it ends.
    pub(super) fn new(
        engine: StreamEngine,
        smmu: Arc<Mutex<SmmuTable>>,
        totals: DspTotals,
    ) -> Self {
        EngineRun {
            engine,
            smmu,
            totals,
        }
    }
}

impl Drop for EngineRun {
    fn drop(&mut self) {
        if let Some(mut t) = crate::fatal::lock(&self.totals, "DSP totals") {
            t.add_stream(&self.engine.stats(), self.engine.last_fault());
        }
    }
}

/// Where the clock finds the DSP's stream, if one plays.
pub type EngineSlot = Arc<Mutex<Option<EngineRun>>>;

/// The figures of the run's ended streams.
pub type DspTotals = Arc<Mutex<DspFigures>>;

/// The figures of every stream of the run: the ended ones and the one in `slot`, if any.
pub(super) fn dsp_figures(slot: &EngineSlot, totals: &DspTotals) -> DspFigures {
    // The slot first, then the totals, as a stream ending under the slot's lock takes them.
    let live = crate::fatal::lock(slot, "engine");
    let mut f = crate::fatal::lock(totals, "DSP totals").map_or_else(DspFigures::default, |t| *t);
    if let Some(run) = live.as_ref().and_then(|g| g.as_ref()) {
        f.add_stream(&run.engine.stats(), run.engine.last_fault());
    }
    f
}

/// Serves the DSP's stream on the controller: its doorbells and ERDP writes are MMIO writes,
/// as the real DSP's are.
pub(super) fn engine_hook(slot: EngineSlot) -> ClockHook {
    Box::new(move |x: &mut XhciFunction, mem| {
        let Some(mut guard) = crate::fatal::lock(&slot, "engine") else {
            return;
        };
        let Some(run) = guard.as_mut() else { return };
        let actions = match crate::fatal::lock(&run.smmu, "SMMU") {
            Some(mut smmu) => run.engine.service(mem, &mut smmu),
            None => return,
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

/// How the stream's packets are cut: one packet per service interval of 2^(bInterval-1)
/// microframes (high speed) or 1 ms frames (full speed).
pub(super) struct StreamShape {
    /// Service units (microframes or frames) per packet.
    pub(super) interval: u32,
    /// Nominal frames per packet.
    pub(super) frames: u32,
    /// Bytes per sample (the subslot).
    pub(super) width: u32,
}

impl StreamShape {
    pub(super) fn of(r: &sideband_device::adsp::StreamResources, rate: u32) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use sideband_device::adsp::uaudio::{
        Direction, EndpointDescriptor, InterfaceDescriptor, MemRegion, Speed, UsbToken, XhciMemory,
    };
    use sideband_device::adsp::StreamResources;
    use vm_memory::GuestMemoryMmap;

    /// A stream whose memory the SMMU does not map: its first access faults.
    fn faulting_run(totals: &DspTotals) -> EngineRun {
        let region = |iova| MemRegion {
            sid: 0xf,
            iova,
            dma: 0x4000_0000 + iova,
            size: 4096,
        };
        let res = StreamResources {
            status: 0,
            internal_status: 0,
            usb_token: UsbToken::new(1, 0, Direction::Playback),
            slot_id: 1,
            interrupter_num: 2,
            speed: Speed::High,
            intf: InterfaceDescriptor::default(),
            data_ep: EndpointDescriptor {
                b_endpoint_address: 0x01,
                ..Default::default()
            },
            sync_ep: None,
            spec_revision: Some(0x200),
            data_path_delay: None,
            subslot_size: Some(2),
            controller_num: None,
            mem: XhciMemory {
                event_ring: region(0x1000),
                transfer_ring: region(0xa000),
                sync_ring: None,
                transfer_buffer: region(0x10a000),
            },
        };
        let mut engine = StreamEngine::new(&res, 24, 2, 480, 0x2000f);
        let smmu = Arc::new(Mutex::new(SmmuTable::default()));
        engine.service(&GuestMemoryMmap::<()>::new(), &mut smmu.lock().unwrap());
        EngineRun::new(engine, smmu, totals.clone())
    }

    #[test]
    fn every_stream_of_the_run_counts_stopped_or_running() {
        let slot = EngineSlot::default();
        let totals = DspTotals::default();
        assert_eq!(dsp_figures(&slot, &totals), DspFigures::default());
        *slot.lock().unwrap() = Some(faulting_run(&totals));
        let live = dsp_figures(&slot, &totals);
        assert_eq!((live.streams, live.smmu_faults), (1, 1));
        assert_eq!(live.first_fault.map(|f| f.iova), Some(0x1000));
        assert_eq!(
            *totals.lock().unwrap(),
            DspFigures::default(),
            "still running"
        );
        // The next stream replaces it, then that one is stopped: both still count.
        *slot.lock().unwrap() = Some(faulting_run(&totals));
        drop(slot.lock().unwrap().take());
        let all = dsp_figures(&slot, &totals);
        assert_eq!((all.streams, all.smmu_faults), (2, 2));
        assert_eq!(all, *totals.lock().unwrap());
    }
}
