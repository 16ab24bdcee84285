//! Our half of QRTR flow control, modelled on the guest's own (`qrtr_tx_wait`, af_qrtr.c).
//!
//! Per destination (node, port) we count DATA packets sent since the last RESUME_TX from it. The
//! [`FLOW_LOW`]th carries `confirm_rx`, asking the receiver to send RESUME_TX once it has read it;
//! from [`FLOW_HIGH`] outstanding on, further packets wait in a bounded queue until RESUME_TX
//! arrives. The other half, answering the guest's `confirm_rx`, is in the node.

use std::collections::{BTreeMap, VecDeque};

use super::Addr;

/// Outstanding packets at which `confirm_rx` is set (QRTR_TX_FLOW_LOW).
pub const FLOW_LOW: u32 = 5;
/// Outstanding packets at which sending stops until RESUME_TX (QRTR_TX_FLOW_HIGH).
pub const FLOW_HIGH: u32 = 10;
/// Packets that may wait per destination; more is an error, not unbounded memory.
pub const MAX_QUEUED: usize = 64;

/// What to do with a packet offered to [`TxFlows::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Send it now, with this `confirm_rx`.
    Now {
        /// Ask the receiver for RESUME_TX.
        confirm_rx: bool,
    },
    /// It was queued until the destination sends RESUME_TX.
    Queued,
}

/// A packet released from the queue by RESUME_TX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// Our sending port.
    pub src_port: u32,
    /// Payload.
    pub payload: Vec<u8>,
    /// Ask the receiver for RESUME_TX.
    pub confirm_rx: bool,
}

/// The queue for a destination is full.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("{MAX_QUEUED} packets already wait for RESUME_TX from {0}")]
pub struct QueueFull(pub Addr);

#[derive(Debug, Default)]
struct Flow {
    pending: u32,
    queue: VecDeque<(u32, Vec<u8>)>,
}

impl Flow {
    /// Counts one more packet if the window allows it.
    fn take(&mut self) -> Option<bool> {
        if self.pending >= FLOW_HIGH {
            return None;
        }
        self.pending += 1;
        Some(self.pending == FLOW_LOW)
    }
}

/// Transmit windows, one per destination.
#[derive(Debug, Default)]
pub struct TxFlows {
    flows: BTreeMap<Addr, Flow>,
}

impl TxFlows {
    /// Offers a DATA packet from `src_port` to `dst`. Packets leave in order: while any wait,
    /// new ones queue behind them.
    pub fn admit(&mut self, dst: Addr, src_port: u32, payload: &[u8]) -> Result<Admit, QueueFull> {
        let flow = self.flows.entry(dst).or_default();
        if flow.queue.is_empty() {
            if let Some(confirm_rx) = flow.take() {
                return Ok(Admit::Now { confirm_rx });
            }
        }
        if flow.queue.len() >= MAX_QUEUED {
            return Err(QueueFull(dst));
        }
        flow.queue.push_back((src_port, payload.to_vec()));
        Ok(Admit::Queued)
    }

    /// RESUME_TX from `dst`: the window reopens and waiting packets leave, as many as fit.
    pub fn resume(&mut self, dst: Addr) -> Vec<Released> {
        let Some(flow) = self.flows.get_mut(&dst) else {
            return Vec::new();
        };
        flow.pending = 0;
        let mut out = Vec::new();
        while !flow.queue.is_empty() {
            let Some(confirm_rx) = flow.take() else {
                break;
            };
            if let Some((src_port, payload)) = flow.queue.pop_front() {
                out.push(Released {
                    src_port,
                    payload,
                    confirm_rx,
                });
            }
        }
        out
    }

    /// Drops the window of `dst` (its port was closed); returns the packets that were waiting.
    pub fn forget(&mut self, dst: Addr) -> usize {
        self.flows.remove(&dst).map_or(0, |f| f.queue.len())
    }

    /// Drops every window towards `node` (it said BYE or the link went down).
    pub fn forget_node(&mut self, node: u32) -> usize {
        let mut dropped = 0;
        self.flows.retain(|addr, f| {
            if addr.node == node {
                dropped += f.queue.len();
            }
            addr.node != node
        });
        dropped
    }

    /// Packets sent to `dst` since its last RESUME_TX.
    pub fn outstanding(&self, dst: Addr) -> u32 {
        self.flows.get(&dst).map_or(0, |f| f.pending)
    }

    /// Packets waiting for RESUME_TX from `dst`.
    pub fn queued(&self, dst: Addr) -> usize {
        self.flows.get(&dst).map_or(0, |f| f.queue.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: Addr = Addr::new(1, 0x4000);

    #[test]
    fn fifth_confirms_eleventh_waits() {
        let mut f = TxFlows::default();
        let got: Vec<Admit> = (0..11).map(|_| f.admit(DST, 1, &[0]).unwrap()).collect();
        for (i, a) in got.iter().enumerate().take(10) {
            assert_eq!(*a, Admit::Now { confirm_rx: i == 4 }, "packet {}", i + 1);
        }
        assert_eq!(got[10], Admit::Queued);
        assert_eq!(f.outstanding(DST), 10);
        let released = f.resume(DST);
        assert_eq!(released.len(), 1);
        assert_eq!(f.outstanding(DST), 1);
        assert_eq!(f.queued(DST), 0);
    }

    #[test]
    fn queue_is_bounded() {
        let mut f = TxFlows::default();
        for _ in 0..(FLOW_HIGH as usize + MAX_QUEUED) {
            f.admit(DST, 1, &[0]).unwrap();
        }
        assert_eq!(f.admit(DST, 1, &[0]), Err(QueueFull(DST)));
        assert_eq!(f.forget_node(1), MAX_QUEUED);
        assert_eq!(f.outstanding(DST), 0);
    }
}
