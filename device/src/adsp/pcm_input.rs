//! The PCM a stream engine plays when user space feeds it (the platform card's ASM buffers),
//! instead of its counter pattern: a bounded byte queue the DSP fills from the guest's buffers
//! and the engine drains a packet at a time, at the USB stream's pace. Short of data, the packet
//! is padded with silence and the shortfall counted.

use std::collections::VecDeque;

/// Bytes waiting for the engine, bounded.
#[derive(Clone, Debug)]
pub struct PcmInput {
    pending: VecDeque<u8>,
    capacity: usize,
    underrun_bytes: u64,
    taken: u64,
    pushed: u64,
}

impl PcmInput {
    /// A queue that holds at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        PcmInput {
            pending: VecDeque::with_capacity(capacity),
            capacity,
            underrun_bytes: 0,
            taken: 0,
            pushed: 0,
        }
    }

    /// Bytes it can take now.
    pub fn room(&self) -> usize {
        self.capacity - self.pending.len()
    }

    /// Appends what fits of `bytes`; returns how many it took.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.room());
        self.pending.extend(&bytes[..n]);
        self.pushed += n as u64;
        n
    }

    /// The next `len` bytes, silence where the queue ran short.
    pub fn take(&mut self, len: usize) -> Vec<u8> {
        let have = len.min(self.pending.len());
        let mut out: Vec<u8> = self.pending.drain(..have).collect();
        self.taken += have as u64;
        if have < len {
            self.underrun_bytes += (len - have) as u64;
            out.resize(len, 0);
        }
        out
    }

    /// Bytes of silence played because the queue was short.
    pub fn underrun_bytes(&self) -> u64 {
        self.underrun_bytes
    }

    /// Bytes of fed PCM played.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Bytes fed so far.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }
}
