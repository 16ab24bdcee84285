//! APR, the packet router between the guest's Q6 audio drivers and the DSP's services, over
//! the GLINK channel `apr_audio_svc`:
//! - [`packet`]: the header, checked as apr.c checks it, and the DSP's answers;
//! - [`core`]: the core service (3);
//! - [`afe`]: the AFE service (4) for the USB port;
//! - [`asm`]: the stream manager (7) for PCM playback;
//! - [`adm`]: the device manager (8), which routes streams to AFE ports.
//!
//! [`Router::handle`] takes one packet the guest sent and returns what the DSP sends back. A
//! packet that fails the checks is dropped with a log line (apr.c does the same with ours).

pub mod adm;
pub mod afe;
pub mod asm;
pub mod core;
pub mod packet;

pub use afe::{AfeEvent, UsbPort};
pub use asm::{PcmFormat, WriteBuf};

/// APR service ids (dt-bindings/soc/qcom,apr.h).
pub mod svc {
    pub const CORE: u8 = 3;
    pub const AFE: u8 = 4;
    pub const ASM: u8 = 7;
    pub const ADM: u8 = 8;
}

/// Packet figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Packets the guest sent that parsed.
    pub packets: u64,
    /// Commands to the core service.
    pub core: u64,
    /// Commands to the AFE service.
    pub afe: u64,
    /// Commands to the stream manager.
    pub asm: u64,
    /// Commands to the device manager.
    pub adm: u64,
    /// Commands to services not modelled yet, answered "unsupported".
    pub unsupported: u64,
    /// Packets dropped as malformed.
    pub malformed: u64,
}

/// The DSP's side of APR.
#[derive(Clone, Debug, Default)]
pub struct Router {
    stats: RouterStats,
    afe: afe::Afe,
    asm: asm::Asm,
    adm: adm::Adm,
    events: Vec<AfeEvent>,
}

impl Router {
    /// Figures so far.
    pub fn stats(&self) -> RouterStats {
        self.stats
    }

    /// The stream manager: the buffers the guest queued, for the DSP to play.
    pub fn asm(&mut self) -> &mut asm::Asm {
        &mut self.asm
    }

    /// Whether the AFE's USB port runs (started and not stopped).
    pub fn usb_port_started(&self) -> bool {
        self.afe.started()
    }

    /// The device manager: where the streams are routed.
    pub fn adm(&self) -> &adm::Adm {
        &self.adm
    }

    /// What the services asked of the rest of the DSP since the last call, in order.
    pub fn take_events(&mut self) -> Vec<AfeEvent> {
        std::mem::take(&mut self.events)
    }

    /// One packet from the guest; the answers to send back, in order.
    pub fn handle(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let (h, payload) = match packet::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                log::warn!("APR: dropped a packet from the guest: {e}");
                self.stats.malformed += 1;
                return Vec::new();
            }
        };
        self.stats.packets += 1;
        if h.dest_domain != packet::DOMAIN_ADSP {
            log::warn!("APR: packet for domain {}, not the DSP's", h.dest_domain);
            self.stats.malformed += 1;
            return Vec::new();
        }
        let answers = match h.dest_svc {
            svc::CORE => {
                self.stats.core += 1;
                vec![core::handle(&h, payload)]
            }
            svc::AFE => {
                self.stats.afe += 1;
                let (answer, event) = self.afe.handle(&h, payload);
                self.events.extend(event);
                vec![answer]
            }
            svc::ASM => {
                self.stats.asm += 1;
                self.asm.handle(&h, payload)
            }
            svc::ADM => {
                self.stats.adm += 1;
                vec![self.adm.handle(&h, payload)]
            }
            other => {
                log::debug!(
                    "APR: service {other} opcode {:#x} not modelled yet",
                    h.opcode
                );
                self.stats.unsupported += 1;
                vec![packet::basic(&h, packet::EUNSUPPORTED)]
            }
        };
        match h.msg_type {
            packet::MsgType::SeqCmd => answers,
            // Non-sequenced commands want no answer; the guest never sends events or answers.
            _ => Vec::new(),
        }
    }
}
