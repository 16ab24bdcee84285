//! The producer side of an event ring (xHCI 1.2 §4.9.4): the Event Ring Segment Table,
//! the enqueue pointer and producer cycle state, and event ring full handling.

use vm_memory::GuestMemory;

use super::dma::{self, DmaError};
use super::trb::{CompletionCode, HostControllerEvent, Trb, TRB_SIZE};

/// Smallest event ring segment, in TRBs (§6.5).
pub const MIN_SEGMENT_TRBS: u32 = 16;
/// Largest event ring segment, in TRBs (§6.5).
pub const MAX_SEGMENT_TRBS: u32 = 4096;
/// Size of one ERST entry in bytes (§6.5).
pub const ERST_ENTRY_SIZE: u64 = 16;

/// Errors in a guest's Event Ring Segment Table.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Reading the ERST failed.
    #[error("reading the event ring segment table failed")]
    Dma(#[from] DmaError),
    /// An ERST entry's Ring Segment Size is outside 16..=4096.
    #[error("ERST entry {index} has a segment of {size} TRBs")]
    SegmentSize {
        /// Entry index.
        index: usize,
        /// The size it gave.
        size: u32,
    },
    /// ERSTSZ is larger than 2^ERST Max.
    #[error("ERSTSZ {size} is above the maximum of {max}")]
    TooManySegments {
        /// ERSTSZ.
        size: u32,
        /// 2^ERST Max.
        max: u32,
    },
}

/// What happened to an event handed to [`EventRing::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// Written to the ring.
    Posted,
    /// Dropped: the ring is full (an Event Ring Full Error event was posted instead, or had
    /// already been posted).
    Full,
    /// Dropped: the ring is not set up (ERSTSZ = 0 or no valid ERST).
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    base: u64,
    trbs: u32,
}

/// Position in the ring: segment index and TRB index inside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pos {
    seg: usize,
    idx: u32,
}

/// One interrupter's event ring, as the producer sees it.
#[derive(Clone, Debug, Default)]
pub struct EventRing {
    segments: Vec<Segment>,
    enqueue: Pos,
    dequeue: Pos,
    cycle: bool,
    full: bool,
}

impl EventRing {
    /// A ring that posts nothing (ERSTSZ = 0).
    pub fn disabled() -> Self {
        EventRing::default()
    }

    /// Reads the ERST at `erstba` with `erstsz` entries and resets the producer to the start of
    /// segment 0 with cycle state 1, as writing ERSTBA does (§4.9.4.1).
    pub fn load<M: GuestMemory>(
        mem: &M,
        erstba: u64,
        erstsz: u32,
        erst_max: u8,
    ) -> Result<Self, Error> {
        let max = 1u32 << erst_max;
        if erstsz > max {
            return Err(Error::TooManySegments { size: erstsz, max });
        }
        let mut segments = Vec::with_capacity(erstsz as usize);
        for index in 0..erstsz as usize {
            let mut b = [0u8; ERST_ENTRY_SIZE as usize];
            dma::read(mem, erstba + ERST_ENTRY_SIZE * index as u64, &mut b)?;
            let base = u64::from_le_bytes(b[0..8].try_into().unwrap_or_default()) & !0x3f;
            let size = u32::from(u16::from_le_bytes([b[8], b[9]]));
            if !(MIN_SEGMENT_TRBS..=MAX_SEGMENT_TRBS).contains(&size) {
                return Err(Error::SegmentSize { index, size });
            }
            segments.push(Segment { base, trbs: size });
        }
        Ok(EventRing {
            segments,
            enqueue: Pos::default(),
            dequeue: Pos::default(),
            cycle: true,
            full: false,
        })
    }

    /// True when events can be posted.
    pub fn is_enabled(&self) -> bool {
        !self.segments.is_empty()
    }

    /// Producer Cycle State.
    pub fn cycle(&self) -> bool {
        self.cycle
    }

    /// Address of the enqueue pointer (where the next event goes).
    pub fn enqueue_pointer(&self) -> u64 {
        self.addr(self.enqueue)
    }

    /// True when the guest has consumed everything posted.
    pub fn is_empty(&self) -> bool {
        self.enqueue == self.dequeue
    }

    fn addr(&self, p: Pos) -> u64 {
        self.segments
            .get(p.seg)
            .map_or(0, |s| s.base.wrapping_add(u64::from(p.idx) * TRB_SIZE))
    }

    fn advance(&self, p: Pos) -> (Pos, bool) {
        let trbs = self.segments.get(p.seg).map_or(1, |s| s.trbs);
        if p.idx + 1 < trbs {
            (
                Pos {
                    seg: p.seg,
                    idx: p.idx + 1,
                },
                false,
            )
        } else {
            let seg = (p.seg + 1) % self.segments.len().max(1);
            (Pos { seg, idx: 0 }, seg == 0)
        }
    }

    /// Records the guest's dequeue pointer (an ERDP write). Returns false, and keeps the old
    /// dequeue position, when `ptr` is not a TRB inside any segment.
    pub fn set_dequeue(&mut self, ptr: u64, desi: usize) -> bool {
        let find = |i: usize, s: &Segment| -> Option<Pos> {
            let off = ptr.checked_sub(s.base)?;
            (off % TRB_SIZE == 0 && off / TRB_SIZE < u64::from(s.trbs)).then_some(Pos {
                seg: i,
                idx: (off / TRB_SIZE) as u32,
            })
        };
        // DESI names the segment modulo 8; try it first, then every segment.
        let hinted = self.segments.get(desi).and_then(|s| find(desi, s));
        let found = hinted.or_else(|| {
            self.segments
                .iter()
                .enumerate()
                .find_map(|(i, s)| find(i, s))
        });
        match found {
            Some(p) => {
                self.dequeue = p;
                self.full = false;
                true
            }
            None => false,
        }
    }

    /// Posts `trb` with the producer cycle bit. When only one free slot would remain after it,
    /// posts an Event Ring Full Error instead and drops events until the guest frees space
    /// (§4.9.4).
    pub fn push<M: GuestMemory>(&mut self, mem: &M, trb: Trb) -> Result<Push, DmaError> {
        if !self.is_enabled() {
            return Ok(Push::Disabled);
        }
        if self.full {
            return Ok(Push::Full);
        }
        let (next, _) = self.advance(self.enqueue);
        let (after, _) = self.advance(next);
        let (event, outcome) = if after == self.dequeue {
            self.full = true;
            let full = HostControllerEvent {
                code: CompletionCode::EventRingFullError,
            };
            (full.to_trb(), Push::Full)
        } else {
            (trb, Push::Posted)
        };
        dma::write_trb_cycle_last(mem, self.addr(self.enqueue), event.with_cycle(self.cycle))?;
        let (next, wrapped) = self.advance(self.enqueue);
        self.enqueue = next;
        if wrapped {
            self.cycle = !self.cycle;
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xhci::ring::tests::mem;
    use crate::xhci::trb::{event_code, TrbType};

    fn erst(m: &vm_memory::GuestMemoryMmap, at: u64, segs: &[(u64, u16)]) {
        for (i, (base, size)) in segs.iter().enumerate() {
            let mut b = [0u8; 16];
            b[0..8].copy_from_slice(&base.to_le_bytes());
            b[8..10].copy_from_slice(&size.to_le_bytes());
            dma::write(m, at + 16 * i as u64, &b).unwrap();
        }
    }

    fn ev(n: u32) -> Trb {
        Trb::new(TrbType::CommandCompletionEvent, u64::from(n), 1 << 24, 0)
    }

    #[test]
    fn posts_with_cycle_and_wraps_over_segments() {
        let m = mem();
        erst(&m, 0x100, &[(0x1000, 16), (0x2000, 16)]);
        let mut r = EventRing::load(&m, 0x100, 2, 4).unwrap();
        for i in 0..20 {
            assert_eq!(r.push(&m, ev(i)).unwrap(), Push::Posted);
            // The guest consumes as it goes.
            let at = r.enqueue_pointer();
            assert!(r.set_dequeue(at, 0));
        }
        // 16 in segment 0, 4 in segment 1.
        let t = dma::read_trb(&m, 0x2000 + 3 * 16).unwrap();
        assert_eq!(t.parameter(), 19);
        assert!(t.cycle());
        for i in 20..32 {
            r.push(&m, ev(i)).unwrap();
            let at = r.enqueue_pointer();
            r.set_dequeue(at, 1);
        }
        // Wrapped to segment 0: the producer cycle toggled.
        assert_eq!(r.enqueue_pointer(), 0x1000);
        assert!(!r.cycle());
        r.push(&m, ev(32)).unwrap();
        let t = dma::read_trb(&m, 0x1000).unwrap();
        assert_eq!(t.parameter(), 32);
        assert!(!t.cycle());
    }

    #[test]
    fn full_ring_posts_full_error_then_drops() {
        let m = mem();
        erst(&m, 0x100, &[(0x1000, 16)]);
        let mut r = EventRing::load(&m, 0x100, 1, 0).unwrap();
        for i in 0..14 {
            assert_eq!(r.push(&m, ev(i)).unwrap(), Push::Posted);
        }
        assert_eq!(r.push(&m, ev(14)).unwrap(), Push::Full);
        let t = dma::read_trb(&m, 0x1000 + 14 * 16).unwrap();
        assert_eq!(t.trb_type(), Some(TrbType::HostControllerEvent));
        assert_eq!(event_code(t), CompletionCode::EventRingFullError as u8);
        assert_eq!(r.push(&m, ev(15)).unwrap(), Push::Full);
        // Slot 15 was never written.
        assert_eq!(dma::read_trb(&m, 0x1000 + 15 * 16).unwrap(), Trb::default());
        // The guest consumes everything: posting resumes.
        assert!(r.set_dequeue(0x1000 + 15 * 16, 0));
        assert_eq!(r.push(&m, ev(16)).unwrap(), Push::Posted);
    }

    #[test]
    fn zero_length_erst_posts_nothing() {
        let m = mem();
        let mut r = EventRing::load(&m, 0x100, 0, 4).unwrap();
        assert!(!r.is_enabled());
        assert_eq!(r.push(&m, ev(0)).unwrap(), Push::Disabled);
        assert!(!r.set_dequeue(0x1000, 0));
    }

    #[test]
    fn bad_erst_entries() {
        let m = mem();
        erst(&m, 0x100, &[(0x1000, 8)]);
        assert_eq!(
            EventRing::load(&m, 0x100, 1, 4).unwrap_err(),
            Error::SegmentSize { index: 0, size: 8 }
        );
        erst(&m, 0x100, &[(0x1000, 0)]);
        assert!(EventRing::load(&m, 0x100, 1, 4).is_err());
        assert_eq!(
            EventRing::load(&m, 0x100, 3, 1).unwrap_err(),
            Error::TooManySegments { size: 3, max: 2 }
        );
        assert!(matches!(
            EventRing::load(&m, 0x10000, 2, 4),
            Err(Error::Dma(_))
        ));
    }

    #[test]
    fn erdp_outside_segment_is_refused() {
        let m = mem();
        erst(&m, 0x100, &[(0x1000, 16)]);
        let mut r = EventRing::load(&m, 0x100, 1, 4).unwrap();
        assert!(!r.set_dequeue(0x1000 + 16 * 16, 0));
        assert!(!r.set_dequeue(0x0ff0, 0));
        assert!(!r.set_dequeue(0x1008, 0));
        assert!(r.set_dequeue(0x1000 + 15 * 16, 7));
    }

    #[test]
    fn segment_outside_memory_is_dma_error() {
        let m = mem();
        erst(&m, 0x100, &[(0x10_0000_0000, 16)]);
        let mut r = EventRing::load(&m, 0x100, 1, 4).unwrap();
        assert!(r.push(&m, ev(0)).is_err());
    }
}
