//! The DSP's stream on the controller's clock: the engine, how packets are cut, and the hook
//! that turns the engine's actions into MMIO writes.

use std::sync::{Arc, Mutex};

use sideband_device::adsp::engine::{Action, StreamEngine};
use sideband_device::smmu::SmmuTable;
use sideband_device::xhci::regs::{rt, DB_BASE, RT_BASE};

use super::xhci::{ClockHook, XhciFunction};

/// The DSP's running stream: the engine and the SMMU it translates through.
#[derive(Debug)]
pub struct EngineRun {
    pub(super) engine: StreamEngine,
    pub(super) smmu: Arc<Mutex<SmmuTable>>,
}

/// Where the clock finds the DSP's stream, if one plays.
pub type EngineSlot = Arc<Mutex<Option<EngineRun>>>;

/// Serves the DSP's stream on the controller: its doorbells and ERDP writes are MMIO writes,
/// as the real DSP's are.
pub(super) fn engine_hook(slot: EngineSlot) -> ClockHook {
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
