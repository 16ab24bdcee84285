//! The guest's PCM on its way from the platform card's ASM buffers into the USB stream's
//! engine: the ASM session routed to the USB port is read through the DSP's SMMU (the
//! q6asm-dais endpoint; the guest sends IOVA | SID << 32) as fast as the engine has room, and
//! each buffer is given back (WRITE_DONE) once the engine has played its last byte, not when it
//! was copied: the guest's drain then ends after the headset has the samples, so the AFE stop
//! that follows cuts nothing off.

use std::collections::VecDeque;

use sideband_device::adsp::apr::{afe, Router};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

use super::stream::EngineSlot;
use crate::vm::machine::Q6ASM_ENDPOINT;

/// Chunks read per tick at most (the engine's room bounds the bytes as well).
const MAX_CHUNKS: usize = 64;

/// Done events held until the engine has played their buffer.
#[derive(Debug, Default)]
pub(super) struct PcmFeeder {
    /// (the engine's fed-byte count at the buffer's end, its events), oldest first.
    held: VecDeque<(u64, Vec<Vec<u8>>)>,
    /// An engine took fed PCM since the AFE last started the USB port.
    fed_since_start: bool,
}

impl PcmFeeder {
    /// The AFE started the USB port: its stream is on its way. Returns the done events still
    /// held for the previous stream, to send now (their bytes were counted by an engine that
    /// is gone, so a new engine's count must not be compared with them).
    pub(super) fn port_started(&mut self) -> Vec<Vec<u8>> {
        self.fed_since_start = false;
        self.release_all()
    }

    fn release_all(&mut self) -> Vec<Vec<u8>> {
        self.held.drain(..).flat_map(|(_, p)| p).collect()
    }

    /// Whether the port's stream ran and has ended (the headset went away, the guest released
    /// it): the DSP then renders into nothing, as a port without a device does.
    pub(super) fn stream_ended(&self) -> bool {
        self.fed_since_start
    }

    /// Feeds the engine; returns the events to send. `None` when no engine
    /// takes fed PCM: events still held are released then (the stream is gone; the guest must
    /// not wait for buffers nobody will play).
    pub(super) fn feed<M: GuestMemoryBackend>(
        &mut self,
        router: &mut Router,
        engine: &EngineSlot,
        mem: &M,
    ) -> Option<Vec<Vec<u8>>> {
        let mut slot = crate::fatal::lock(engine, "engine")?;
        let Some(run) = slot.as_mut().filter(|r| r.engine.pcm_figures().is_some()) else {
            drop(slot);
            if self.held.is_empty() {
                return None;
            }
            return Some(self.release_all());
        };
        self.fed_since_start = true;
        let mut packets = Vec::new();
        let session = router
            .asm()
            .sessions()
            .into_iter()
            .map(|(s, _, _)| s)
            .find(|&s| {
                router
                    .adm()
                    .ports_of_session(u16::from(s))
                    .contains(&afe::PORT_USB_RX)
            });
        if let Some(session) = session {
            let table = run.smmu.clone();
            let guard = crate::fatal::lock(&table, "SMMU");
            if let Some(mut smmu) = guard {
                for _ in 0..MAX_CHUNKS {
                    let room = run.engine.pcm_room() as u32;
                    let Some((addr, len)) = router.asm().next_chunk(session, room) else {
                        break;
                    };
                    let bytes = match read(&mut smmu, mem, addr, len) {
                        Ok(b) => b,
                        Err(e) => {
                            // Given back unplayed, as a DSP does with a buffer it cannot read.
                            log::warn!("ASM: cannot read the guest's PCM at {addr:#x}: {e}");
                            packets.extend(router.asm().consume(session, len));
                            break;
                        }
                    };
                    run.engine.push_pcm(&bytes);
                    let done = router.asm().consume(session, len);
                    if !done.is_empty() {
                        let end = run.engine.pcm_figures().map_or(0, |(_, _, pushed)| pushed);
                        self.held.push_back((end, done));
                    }
                }
            }
        }
        let played = run.engine.pcm_figures().map_or(0, |(taken, _, _)| taken);
        while self.held.front().is_some_and(|(end, _)| *end <= played) {
            packets.extend(self.held.pop_front().map(|(_, p)| p).unwrap_or_default());
        }
        Some(packets)
    }
}

/// `len` bytes at the guest's address `addr` (IOVA in the low word) through the SMMU.
fn read<M: GuestMemoryBackend>(
    smmu: &mut sideband_device::smmu::SmmuTable,
    mem: &M,
    addr: u64,
    len: u32,
) -> Result<Vec<u8>, String> {
    let iova = addr & 0xffff_ffff;
    let pieces = smmu
        .translate(Q6ASM_ENDPOINT, iova, u64::from(len), false)
        .map_err(|f| format!("SMMU {:?} at IOVA {:#x}", f.reason, f.iova))?;
    let mut bytes = vec![0u8; len as usize];
    let mut at = 0usize;
    for (gpa, n) in pieces {
        let n = n as usize;
        mem.read_slice(&mut bytes[at..at + n], GuestAddress(gpa))
            .map_err(|_| format!("IOVA {iova:#x} -> {gpa:#x} is outside guest RAM"))?;
        at += n;
    }
    Ok(bytes)
}
