//! One endpoint of a device slot as the controller tracks it (xHCI 1.2 §4.8.3): its type, its
//! state machine and its transfer ring cursor. The guest sees the state through the output
//! device context, which [`Endpoint::write_back`] keeps current.

use vm_memory::GuestMemory;

use super::context::{device_ep_offset, EndpointContext, EndpointState, EndpointType};
use super::dma::{self, DmaError};
use super::ring::RingCursor;
use crate::usb::BusTime;

/// Why an input endpoint context was refused (Configure Endpoint, Address Device).
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The endpoint type does not fit the DCI (direction, or control outside DCI 1).
    #[error("endpoint type {ty:?} is not valid for DCI {dci}")]
    BadType {
        /// Device Context Index.
        dci: u8,
        /// Type given, `None` for "not valid".
        ty: Option<EndpointType>,
    },
    /// Max Packet Size is zero.
    #[error("DCI {0} has max packet size 0")]
    MaxPacketSize(u8),
    /// Streams were asked for; the controller has MaxPSASize = 0.
    #[error("DCI {0} asks for streams, which are not supported")]
    Streams(u8),
    /// TR Dequeue Pointer is zero.
    #[error("DCI {0} has no transfer ring")]
    NoRing(u8),
}

/// A TD the endpoint started but could not finish yet (NAK, or an isoch TD not due).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InProgress {
    /// First TRB of the TD.
    pub trb: u64,
    /// Its transfer length (the residual a Stopped event reports).
    pub length: u32,
    /// Its Interrupter Target.
    pub target: u16,
}

/// Controller-side state of one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Device Context Index (1 = control endpoint 0).
    pub dci: u8,
    /// Endpoint type.
    pub ep_type: EndpointType,
    /// State, mirrored into the output device context.
    pub state: EndpointState,
    /// Transfer ring consumer.
    pub ring: RingCursor,
    /// Service interval in microframes (periodic endpoints).
    pub interval: u64,
    /// Most bytes one service interval moves (Max ESIT Payload): Max Packet Size × (Max Burst
    /// Size + 1) × (Mult + 1) (§6.2.3; HCCPARAMS2.LEC is clear, so Mult is valid). One isoch TD
    /// is one interval's data, so it bounds an isoch TD.
    pub max_esit_payload: usize,
    /// The TD waiting at the dequeue pointer, if any.
    pub in_progress: Option<InProgress>,
    /// When to try a NAKed TD again.
    pub retry_at: Option<BusTime>,
    /// Isoch: absolute microframe of the next service opportunity (`None`: idle, start ASAP).
    pub isoch_next: Option<u64>,
    /// Interrupter of the last TRB executed (for Ring Underrun/Overrun events).
    pub last_target: u16,
    /// The per-service TD budget ran out: continue on the next tick.
    pub more: bool,
}

impl Endpoint {
    /// Validates an input endpoint context for `dci` and builds the endpoint, Running.
    pub fn from_context(dci: u8, ctx: &EndpointContext, target: u16) -> Result<Self, Error> {
        let ty = ctx.ep_type();
        let ok = match ty {
            Some(EndpointType::Control) => dci == 1,
            Some(t) => dci >= 2 && t.is_in() == (dci % 2 == 1),
            None => false,
        };
        let ep_type = match ty {
            Some(t) if ok => t,
            _ => return Err(Error::BadType { dci, ty }),
        };
        if ctx.max_packet_size() == 0 {
            return Err(Error::MaxPacketSize(dci));
        }
        if ctx.max_pstreams() != 0 {
            return Err(Error::Streams(dci));
        }
        if ctx.dequeue() == 0 {
            return Err(Error::NoRing(dci));
        }
        Ok(Endpoint {
            dci,
            ep_type,
            state: EndpointState::Running,
            ring: RingCursor::new(ctx.dequeue(), ctx.dcs()),
            interval: 1u64 << ctx.interval().min(15),
            max_esit_payload: usize::from(ctx.max_packet_size())
                * (usize::from(ctx.max_burst()) + 1)
                * (usize::from(ctx.mult()) + 1),
            in_progress: None,
            retry_at: None,
            isoch_next: None,
            last_target: target,
            more: false,
        })
    }

    /// USB endpoint number (1..=15; 0 for the control endpoint).
    pub fn number(&self) -> u8 {
        self.dci / 2
    }

    /// Moves to `state`, forgetting any TD in flight unless Running.
    pub fn set_state(&mut self, state: EndpointState) {
        self.state = state;
        if state != EndpointState::Running {
            self.in_progress = None;
            self.retry_at = None;
            self.isoch_next = None;
            self.more = false;
        }
    }

    /// Halts at `at` (the TRB that failed).
    pub fn halt(&mut self, at: RingCursor) {
        self.ring = at;
        self.set_state(EndpointState::Halted);
    }

    /// True when the endpoint has work for a tick at `now` / absolute microframe `uframe`.
    pub fn wants_tick(&self, now: BusTime, uframe: u64) -> bool {
        self.state == EndpointState::Running
            && (self.more
                || self.retry_at.is_some_and(|t| t <= now)
                || self.isoch_next.is_some_and(|t| t <= uframe))
    }

    /// Writes the endpoint state (and, unless Running, the TR Dequeue Pointer and DCS) into the
    /// output device context at `device_ctx`.
    pub fn write_back<M: GuestMemory>(&self, mem: &M, device_ctx: u64) -> Result<(), DmaError> {
        let addr = device_ctx + device_ep_offset(self.dci);
        let mut ctx = dma::read_ep_ctx(mem, addr)?;
        ctx.set_state(self.state);
        if self.state != EndpointState::Running {
            ctx.set_dequeue(self.ring.dequeue, self.ring.cycle);
        }
        dma::write_ep_ctx(mem, addr, &ctx)
    }
}

/// Marks endpoint `dci` Disabled in the output device context.
pub fn write_disabled<M: GuestMemory>(mem: &M, device_ctx: u64, dci: u8) -> Result<(), DmaError> {
    let addr = device_ctx + device_ep_offset(dci);
    let mut ctx = dma::read_ep_ctx(mem, addr)?;
    ctx.set_state(EndpointState::Disabled);
    dma::write_ep_ctx(mem, addr, &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xhci::ring::tests::mem;

    fn ctx(ty: u32, mps: u32, deq: u64) -> EndpointContext {
        let mut c = EndpointContext::default();
        c.0[1] = (mps << 16) | (ty << 3);
        c.set_dequeue(deq, true);
        c
    }

    #[test]
    fn validates_type_against_dci() {
        assert!(Endpoint::from_context(1, &ctx(4, 64, 0x1000), 0).is_ok());
        assert!(Endpoint::from_context(2, &ctx(2, 512, 0x1000), 0).is_ok());
        assert!(Endpoint::from_context(3, &ctx(6, 512, 0x1000), 0).is_ok());
        assert!(matches!(
            Endpoint::from_context(3, &ctx(2, 512, 0x1000), 0),
            Err(Error::BadType { .. })
        ));
        assert!(Endpoint::from_context(2, &ctx(4, 64, 0x1000), 0).is_err());
        assert!(Endpoint::from_context(2, &ctx(0, 64, 0x1000), 0).is_err());
        assert_eq!(
            Endpoint::from_context(2, &ctx(2, 0, 0x1000), 0),
            Err(Error::MaxPacketSize(2))
        );
        assert_eq!(
            Endpoint::from_context(2, &ctx(2, 8, 0), 0),
            Err(Error::NoRing(2))
        );
        let mut s = ctx(2, 8, 0x1000);
        s.0[0] |= 1 << 10;
        assert_eq!(Endpoint::from_context(2, &s, 0), Err(Error::Streams(2)));
    }

    #[test]
    fn max_esit_payload_counts_bursts_and_mult() {
        // Full-speed or plain high-speed isoch IN: one packet per interval.
        let mut c = ctx(5, 1023, 0x1000);
        let ep = Endpoint::from_context(3, &c, 0).unwrap();
        assert_eq!(ep.max_esit_payload, 1023);
        // High-bandwidth high speed: three transactions of 1024 (Max Burst Size 2).
        c.set_max_packet_size(1024);
        c.0[1] |= 2 << 8;
        let ep = Endpoint::from_context(3, &c, 0).unwrap();
        assert_eq!(ep.max_esit_payload, 3 * 1024);
        // SuperSpeed: 16-packet bursts, three of them (Mult 2): 48 KiB.
        c.0[1] |= 15 << 8;
        c.0[0] |= 2 << 8;
        let ep = Endpoint::from_context(3, &c, 0).unwrap();
        assert_eq!(ep.max_esit_payload, 48 * 1024);
    }

    #[test]
    fn write_back_state_and_dequeue() {
        let m = mem();
        let mut ep = Endpoint::from_context(3, &ctx(6, 512, 0x2000), 0).unwrap();
        ep.write_back(&m, 0x4000).unwrap();
        let c = dma::read_ep_ctx(&m, 0x4000 + 3 * 32).unwrap();
        assert_eq!(c.state_bits(), EndpointState::Running as u8);
        ep.halt(RingCursor::new(0x2040, false));
        ep.write_back(&m, 0x4000).unwrap();
        let c = dma::read_ep_ctx(&m, 0x4000 + 3 * 32).unwrap();
        assert_eq!(c.state_bits(), EndpointState::Halted as u8);
        assert_eq!(c.dequeue(), 0x2040);
        assert!(!c.dcs());
        write_disabled(&m, 0x4000, 3).unwrap();
        let c = dma::read_ep_ctx(&m, 0x4000 + 3 * 32).unwrap();
        assert_eq!(c.state_bits(), 0);
    }
}
