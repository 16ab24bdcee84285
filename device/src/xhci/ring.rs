//! The consumer side of a TRB ring (xHCI 1.2 §4.9.2): cycle state, link TRBs, TD boundaries.
//!
//! Used for the command ring and every transfer ring. Fetching never consumes: callers get the
//! cursor that follows a TRB or TD and commit it once the work is done, so a TD that cannot
//! complete yet (NAK, not due) is fetched again later from guest memory.

use vm_memory::GuestMemory;

use super::dma::{self, DmaError};
use super::trb::{LinkTrb, Trb, TRB_SIZE};

/// Link TRBs followed in a row before the ring is declared broken. Linux never places two
/// link TRBs back to back, so a handful is plenty and bounds a ring of links pointing at
/// each other.
pub const MAX_LINK_HOPS: usize = 8;

/// Errors met while walking a ring.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A guest-memory access failed.
    #[error("ring access failed")]
    Dma(#[from] DmaError),
    /// Link TRBs point at each other without any other TRB between them.
    #[error("more than {MAX_LINK_HOPS} link TRBs in a row at {0:#x}")]
    LinkLoop(u64),
}

/// Where a ring consumer stands: its dequeue pointer and consumer cycle state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCursor {
    /// Address of the next TRB to consume.
    pub dequeue: u64,
    /// Consumer Cycle State: a TRB is valid when its cycle bit equals this.
    pub cycle: bool,
}

/// One TRB fetched from a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingTrb {
    /// Where the TRB sits.
    pub addr: u64,
    /// The TRB.
    pub trb: Trb,
    /// The cursor pointing at this TRB (link TRBs before it already followed).
    pub at: RingCursor,
    /// The cursor just past this TRB.
    pub next: RingCursor,
}

/// A transfer descriptor: TRBs up to and including the first one with the chain bit clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Td {
    /// The TD's TRBs, link TRBs left out.
    pub trbs: Vec<RingTrb>,
    /// The cursor just past the TD.
    pub end: RingCursor,
}

/// What [`RingCursor::fetch_td`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TdFetch {
    /// The ring is empty at the cursor.
    Empty,
    /// The TD's first TRBs are there but its last one is not yet.
    Incomplete,
    /// A whole TD.
    Ready(Td),
    /// The chain goes on past `max` TRBs or around the ring: this is its first TRB.
    TooLong(RingTrb),
}

impl RingCursor {
    /// A cursor at `dequeue` with cycle state `cycle`.
    pub fn new(dequeue: u64, cycle: bool) -> Self {
        RingCursor { dequeue, cycle }
    }

    /// Fetches the next TRB that is not a link TRB, following link TRBs (and toggling the
    /// cycle state where they ask). `None` when the ring is empty.
    pub fn fetch<M: GuestMemory>(self, mem: &M) -> Result<Option<RingTrb>, Error> {
        let mut cur = self;
        for _ in 0..=MAX_LINK_HOPS {
            let trb = dma::read_trb(mem, cur.dequeue)?;
            if trb.cycle() != cur.cycle {
                return Ok(None);
            }
            match LinkTrb::cast(trb) {
                Some(link) => {
                    cur = RingCursor {
                        dequeue: link.segment(),
                        cycle: cur.cycle ^ link.toggle_cycle(),
                    };
                }
                None => {
                    return Ok(Some(RingTrb {
                        addr: cur.dequeue,
                        trb,
                        at: cur,
                        next: RingCursor {
                            dequeue: cur.dequeue.wrapping_add(TRB_SIZE),
                            cycle: cur.cycle,
                        },
                    }))
                }
            }
        }
        Err(Error::LinkLoop(self.dequeue))
    }

    /// Fetches one TD of at most `max` TRBs starting at this cursor.
    pub fn fetch_td<M: GuestMemory>(self, mem: &M, max: usize) -> Result<TdFetch, Error> {
        let mut trbs: Vec<RingTrb> = Vec::new();
        let mut cur = self;
        loop {
            let Some(t) = cur.fetch(mem)? else {
                return Ok(if trbs.is_empty() {
                    TdFetch::Empty
                } else {
                    TdFetch::Incomplete
                });
            };
            if let Some(first) = trbs.first() {
                if t.addr == first.addr || trbs.len() >= max {
                    return Ok(TdFetch::TooLong(*first));
                }
            }
            cur = t.next;
            trbs.push(t);
            if !t.trb.chain() {
                return Ok(TdFetch::Ready(Td { trbs, end: cur }));
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::xhci::trb::TrbType;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    pub(crate) fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap()
    }

    pub(crate) fn put(mem: &GuestMemoryMmap, addr: u64, trb: Trb) {
        dma::write(mem, addr, &trb.to_bytes()).unwrap();
    }

    fn normal(cycle: bool, chain: bool) -> Trb {
        Trb::new(TrbType::Normal, 0, 8, u32::from(chain) << 4).with_cycle(cycle)
    }

    fn link(to: u64, tc: bool, cycle: bool) -> Trb {
        Trb::new(TrbType::Link, to, 0, u32::from(tc) << 1).with_cycle(cycle)
    }

    #[test]
    fn empty_ring() {
        let m = mem();
        assert_eq!(RingCursor::new(0x1000, true).fetch(&m).unwrap(), None);
        assert_eq!(
            RingCursor::new(0x1000, true).fetch_td(&m, 16).unwrap(),
            TdFetch::Empty
        );
    }

    #[test]
    fn wrap_toggles_cycle() {
        let m = mem();
        put(&m, 0x1000, normal(true, false));
        put(&m, 0x1010, link(0x1000, true, true));
        let c = RingCursor::new(0x1000, true);
        let t = c.fetch(&m).unwrap().unwrap();
        assert_eq!(t.addr, 0x1000);
        let after = t.next;
        // The TRB at 0x1000 now has a stale cycle: the ring is empty after the wrap.
        assert_eq!(after.fetch(&m).unwrap(), None);
        put(&m, 0x1000, normal(false, false));
        let t2 = after.fetch(&m).unwrap().unwrap();
        assert_eq!(t2.addr, 0x1000);
        assert!(!t2.at.cycle);
    }

    #[test]
    fn three_segments_chained_by_links() {
        let m = mem();
        put(&m, 0x1000, normal(true, true));
        put(&m, 0x1010, link(0x2000, false, true));
        put(&m, 0x2000, normal(true, true));
        put(&m, 0x2010, link(0x3000, false, true));
        put(&m, 0x3000, normal(true, false));
        put(&m, 0x3010, link(0x1000, true, true));
        let TdFetch::Ready(td) = RingCursor::new(0x1000, true).fetch_td(&m, 16).unwrap() else {
            panic!("no TD");
        };
        let addrs: Vec<u64> = td.trbs.iter().map(|t| t.addr).collect();
        assert_eq!(addrs, vec![0x1000, 0x2000, 0x3000]);
        assert_eq!(td.end, RingCursor::new(0x3010, true));
        assert_eq!(td.end.fetch(&m).unwrap(), None);
    }

    #[test]
    fn link_loop_is_an_error() {
        let m = mem();
        put(&m, 0x1000, link(0x1010, false, true));
        put(&m, 0x1010, link(0x1000, false, true));
        assert_eq!(
            RingCursor::new(0x1000, true).fetch(&m),
            Err(Error::LinkLoop(0x1000))
        );
        // A link to itself with toggle cycle ends as soon as the cycle stops matching.
        put(&m, 0x2000, link(0x2000, true, true));
        assert_eq!(RingCursor::new(0x2000, true).fetch(&m), Ok(None));
    }

    #[test]
    fn incomplete_td_waits() {
        let m = mem();
        put(&m, 0x1000, normal(true, true));
        assert_eq!(
            RingCursor::new(0x1000, true).fetch_td(&m, 16).unwrap(),
            TdFetch::Incomplete
        );
    }

    #[test]
    fn chain_longer_than_ring() {
        let m = mem();
        // A ring of 3 chained TRBs whose link does not toggle the cycle: the chain never ends.
        put(&m, 0x1000, normal(true, true));
        put(&m, 0x1010, normal(true, true));
        put(&m, 0x1020, normal(true, true));
        put(&m, 0x1030, link(0x1000, false, true));
        match RingCursor::new(0x1000, true).fetch_td(&m, 1000).unwrap() {
            TdFetch::TooLong(first) => assert_eq!(first.addr, 0x1000),
            other => panic!("{other:?}"),
        }
        // The max bound alone also stops it.
        match RingCursor::new(0x1000, true).fetch_td(&m, 2).unwrap() {
            TdFetch::TooLong(first) => assert_eq!(first.addr, 0x1000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ring_outside_memory() {
        let m = mem();
        put(&m, 0x1000, link(0x10_0000_0000, false, true));
        assert!(matches!(
            RingCursor::new(0x1000, true).fetch(&m),
            Err(Error::Dma(_))
        ));
    }
}
