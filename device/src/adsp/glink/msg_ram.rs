//! The RPM message RAM as `qcom_glink_rpm` finds it: the last 256 bytes are a table of contents
//! (magic "grt0", a count, entries {id, offset, size}); each FIFO the table names is a tail
//! index, a head index, then `size` bytes of ring. The guest writes at the head of "ap2r" and
//! reads at the tail of "r2ap"; the remote does the opposite. A FIFO is never filled completely:
//! head == tail means empty.

use vm_memory::{Bytes, GuestAddress, GuestMemory};

/// Bytes of the table of contents at the end of the region.
pub const TOC_SIZE: u64 = 256;
/// "grt0".
pub const TOC_MAGIC: u32 = 0x6772_7430;
/// "ap2r": the guest's transmit FIFO.
pub const FIFO_AP2R: u32 = 0x6170_3272;
/// "r2ap": the guest's receive FIFO.
pub const FIFO_R2AP: u32 = 0x7232_6170;

/// Why a FIFO cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FifoError {
    /// Guest memory there is not mapped.
    #[error("message RAM at {0:#x} is not guest memory")]
    Memory(u64),
    /// The guest wrote an index outside the ring.
    #[error("{fifo} {which} index {value} is outside its {len}-byte ring")]
    Index {
        /// The FIFO.
        fifo: &'static str,
        /// "head" or "tail".
        which: &'static str,
        /// The index read.
        value: u32,
        /// The ring's length.
        len: u32,
    },
}

/// One FIFO: where its indices and ring are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fifo {
    name: &'static str,
    desc: u64,
    len: u32,
}

impl Fifo {
    fn index<M: GuestMemory>(
        &self,
        mem: &M,
        at: u64,
        which: &'static str,
    ) -> Result<u32, FifoError> {
        let value: u32 = mem
            .read_obj::<u32>(GuestAddress(at))
            .map_err(|_| FifoError::Memory(at))?;
        if value >= self.len {
            return Err(FifoError::Index {
                fifo: self.name,
                which,
                value,
                len: self.len,
            });
        }
        Ok(value)
    }

    fn tail<M: GuestMemory>(&self, mem: &M) -> Result<u32, FifoError> {
        self.index(mem, self.desc, "tail")
    }

    fn head<M: GuestMemory>(&self, mem: &M) -> Result<u32, FifoError> {
        self.index(mem, self.desc + 4, "head")
    }

    fn set(mem: &impl GuestMemory, at: u64, value: u32) -> Result<(), FifoError> {
        mem.write_obj(value, GuestAddress(at))
            .map_err(|_| FifoError::Memory(at))
    }

    /// Bytes written and not yet read.
    pub fn used<M: GuestMemory>(&self, mem: &M) -> Result<u32, FifoError> {
        let (head, tail) = (self.head(mem)?, self.tail(mem)?);
        Ok(if head >= tail {
            head - tail
        } else {
            self.len - tail + head
        })
    }

    /// Copies `out.len()` bytes starting `offset` bytes past the tail (the caller checked
    /// [`Fifo::used`]).
    pub fn peek<M: GuestMemory>(
        &self,
        mem: &M,
        offset: u32,
        out: &mut [u8],
    ) -> Result<(), FifoError> {
        let mut at = (self.tail(mem)? as u64 + offset as u64) % self.len as u64;
        let ring = self.desc + 8;
        for chunk in out.chunks_mut(self.len as usize) {
            let first = chunk.len().min((self.len as u64 - at) as usize);
            let (a, b) = chunk.split_at_mut(first);
            mem.read_slice(a, GuestAddress(ring + at))
                .map_err(|_| FifoError::Memory(ring + at))?;
            mem.read_slice(b, GuestAddress(ring))
                .map_err(|_| FifoError::Memory(ring))?;
            at = (at + chunk.len() as u64) % self.len as u64;
        }
        Ok(())
    }

    /// Moves the tail past `count` read bytes.
    pub fn advance<M: GuestMemory>(&self, mem: &M, count: u32) -> Result<(), FifoError> {
        let tail = (self.tail(mem)? as u64 + count as u64) % self.len as u64;
        Self::set(mem, self.desc, tail as u32)
    }

    /// Appends `data` at the head and publishes it; false (nothing written) when it would fill
    /// the ring.
    pub fn push<M: GuestMemory>(&self, mem: &M, data: &[u8]) -> Result<bool, FifoError> {
        if self.used(mem)? as usize + data.len() >= self.len as usize {
            return Ok(false);
        }
        let head = self.head(mem)? as u64;
        let ring = self.desc + 8;
        let first = data.len().min((self.len as u64 - head) as usize);
        mem.write_slice(&data[..first], GuestAddress(ring + head))
            .map_err(|_| FifoError::Memory(ring + head))?;
        mem.write_slice(&data[first..], GuestAddress(ring))
            .map_err(|_| FifoError::Memory(ring))?;
        Self::set(
            mem,
            self.desc + 4,
            ((head + data.len() as u64) % self.len as u64) as u32,
        )?;
        Ok(true)
    }

    /// Ring length in bytes.
    pub fn ring_len(&self) -> u32 {
        self.len
    }
}

/// The message RAM: `size` bytes at guest-physical `base`, split into the two FIFOs and the
/// table of contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgRam {
    base: u64,
    size: u64,
}

impl MsgRam {
    /// A region of `size` bytes (at least 1 KiB) at `base`.
    pub const fn new(base: u64, size: u64) -> Self {
        MsgRam { base, size }
    }

    fn half(&self) -> u64 {
        (self.size.saturating_sub(TOC_SIZE) / 2) & !7
    }

    /// The guest's transmit FIFO (the remote reads it).
    pub fn ap2r(&self) -> Fifo {
        Fifo {
            name: "ap2r",
            desc: self.base,
            len: (self.half() - 8) as u32,
        }
    }

    /// The guest's receive FIFO (the remote writes it).
    pub fn r2ap(&self) -> Fifo {
        Fifo {
            name: "r2ap",
            desc: self.base + self.half(),
            len: (self.half() - 8) as u32,
        }
    }

    /// Writes the table of contents and empties both FIFOs, before the guest probes.
    pub fn install<M: GuestMemory>(&self, mem: &M) -> Result<(), FifoError> {
        let toc = self.base + self.size - TOC_SIZE;
        let mut words = vec![TOC_MAGIC, 2];
        for (id, fifo) in [(FIFO_AP2R, self.ap2r()), (FIFO_R2AP, self.r2ap())] {
            words.extend([id, (fifo.desc - self.base) as u32, fifo.len]);
        }
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        mem.write_slice(&bytes, GuestAddress(toc))
            .map_err(|_| FifoError::Memory(toc))?;
        for fifo in [self.ap2r(), self.r2ap()] {
            Fifo::set(mem, fifo.desc, 0)?;
            Fifo::set(mem, fifo.desc + 4, 0)?;
        }
        Ok(())
    }
}
