//! Contexts and ring elements in host memory. A context (channel, event ring or command ring) is
//! 44 bytes: three dwords, then the ring's base, length, read and write pointers (64-bit each,
//! 4-byte aligned). The device owns the read pointer of every ring it consumes or fills and
//! writes it back; the host owns the write pointer.

use std::sync::atomic::{fence, Ordering};

use vm_memory::{Bytes, GuestAddress, GuestMemory};

/// Size of one context.
pub const CONTEXT_SIZE: u64 = 44;
/// Size of one ring element.
pub const ELEMENT_SIZE: u64 = 16;
/// Largest ring the device accepts (elements).
pub const MAX_RING_ELEMENTS: u64 = 1 << 16;

const RBASE: u64 = 12;
const RLEN: u64 = 20;
const RP: u64 = 28;
const WP: u64 = 36;

/// What went wrong with something the host handed over.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// A host-memory access failed (outside guest RAM).
    #[error("host memory access of {len} bytes at {addr:#x} failed")]
    Memory {
        /// Address.
        addr: u64,
        /// Length.
        len: usize,
    },
    /// The context describes no usable ring.
    #[error("ring at {base:#x} of {len:#x} bytes with rp {rp:#x} wp {wp:#x} is malformed")]
    Malformed {
        /// Base.
        base: u64,
        /// Length in bytes.
        len: u64,
        /// Read pointer.
        rp: u64,
        /// Write pointer.
        wp: u64,
    },
    /// An event ring has no free element (the host has not given any back).
    #[error("event ring {0} is full")]
    Full(u8),
    /// An index names no context the device serves.
    #[error("no {kind} {index}")]
    NoSuch {
        /// "channel" or "event ring".
        kind: &'static str,
        /// The index.
        index: u32,
    },
}

/// Reads `buf.len()` bytes of host memory.
pub fn read<M: GuestMemory>(mem: &M, addr: u64, buf: &mut [u8]) -> Result<(), RingError> {
    if buf.is_empty() {
        return Ok(());
    }
    mem.read_slice(buf, GuestAddress(addr))
        .map_err(|_| RingError::Memory {
            addr,
            len: buf.len(),
        })
}

/// Writes `buf` to host memory.
pub fn write<M: GuestMemory>(mem: &M, addr: u64, buf: &[u8]) -> Result<(), RingError> {
    if buf.is_empty() {
        return Ok(());
    }
    mem.write_slice(buf, GuestAddress(addr))
        .map_err(|_| RingError::Memory {
            addr,
            len: buf.len(),
        })
}

fn read_u32<M: GuestMemory>(mem: &M, addr: u64) -> Result<u32, RingError> {
    let mut b = [0u8; 4];
    read(mem, addr, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64<M: GuestMemory>(mem: &M, addr: u64) -> Result<u64, RingError> {
    let mut b = [0u8; 8];
    read(mem, addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// One ring element: a pointer and two dwords.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Element {
    /// Buffer, command or event pointer.
    pub ptr: u64,
    /// Dword 0 (length, completion code, state).
    pub dw0: u32,
    /// Dword 1 (channel [31:24], type [23:16], flags).
    pub dw1: u32,
}

impl Element {
    /// Element type (dword 1 [23:16]).
    pub fn kind(&self) -> u8 {
        (self.dw1 >> 16) as u8
    }

    /// Channel (dword 1 [31:24]).
    pub fn channel(&self) -> u8 {
        (self.dw1 >> 24) as u8
    }

    /// Transfer length (dword 0 [15:0]).
    pub fn length(&self) -> u16 {
        self.dw0 as u16
    }

    /// Transfer chain flag (dword 1 bit 0): the packet goes on in the next element.
    pub fn chained(&self) -> bool {
        self.dw1 & 1 != 0
    }

    /// An event: `code` and `len` in dword 0, `channel` and `kind` in dword 1.
    pub fn event(ptr: u64, code: u8, len: u16, channel: u8, kind: u8) -> Self {
        Element {
            ptr,
            dw0: u32::from(code) << 24 | u32::from(len),
            dw1: u32::from(channel) << 24 | u32::from(kind) << 16,
        }
    }

    /// Reads the element at `addr`.
    pub fn read<M: GuestMemory>(mem: &M, addr: u64) -> Result<Self, RingError> {
        let mut b = [0u8; 16];
        read(mem, addr, &mut b)?;
        Ok(Element {
            ptr: u64::from_le_bytes(b[0..8].try_into().unwrap_or_default()),
            dw0: u32::from_le_bytes(b[8..12].try_into().unwrap_or_default()),
            dw1: u32::from_le_bytes(b[12..16].try_into().unwrap_or_default()),
        })
    }

    /// The element's 16 bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&self.ptr.to_le_bytes());
        b[8..12].copy_from_slice(&self.dw0.to_le_bytes());
        b[12..16].copy_from_slice(&self.dw1.to_le_bytes());
        b
    }
}

/// A context as read from host memory, its ring checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// Where the context lives.
    pub addr: u64,
    /// Dword 0: chcfg (channel state) or intmod.
    pub dw0: u32,
    /// Dword 1: chtype or ertype.
    pub dw1: u32,
    /// Dword 2: erindex (channel) or msivec (event ring).
    pub dw2: u32,
    /// Ring base.
    pub base: u64,
    /// Ring length in bytes.
    pub len: u64,
    /// Read pointer (the device's).
    pub rp: u64,
    /// Write pointer (the host's).
    pub wp: u64,
}

impl Context {
    /// Reads the context at `addr` and checks its ring: a non-empty whole number of elements,
    /// at most [`MAX_RING_ELEMENTS`], aligned, with both pointers on element boundaries inside.
    pub fn read<M: GuestMemory>(mem: &M, addr: u64) -> Result<Self, RingError> {
        // The host chose the address: the whole context must lie below the top of the address
        // space, so the field offsets below cannot wrap.
        if addr.checked_add(CONTEXT_SIZE).is_none() {
            return Err(RingError::Memory {
                addr,
                len: CONTEXT_SIZE as usize,
            });
        }
        let c = Context {
            addr,
            dw0: read_u32(mem, addr)?,
            dw1: read_u32(mem, addr + 4)?,
            dw2: read_u32(mem, addr + 8)?,
            base: read_u64(mem, addr + RBASE)?,
            len: read_u64(mem, addr + RLEN)?,
            rp: read_u64(mem, addr + RP)?,
            wp: read_u64(mem, addr + WP)?,
        };
        let inside = |p: u64| p >= c.base && p - c.base < c.len && (p - c.base) % ELEMENT_SIZE == 0;
        let sane = c.len != 0
            && c.len % ELEMENT_SIZE == 0
            && c.len / ELEMENT_SIZE <= MAX_RING_ELEMENTS
            && c.base % ELEMENT_SIZE == 0
            && c.base.checked_add(c.len).is_some()
            && inside(c.rp)
            && inside(c.wp);
        if !sane {
            return Err(RingError::Malformed {
                base: c.base,
                len: c.len,
                rp: c.rp,
                wp: c.wp,
            });
        }
        Ok(c)
    }

    /// Elements in the ring.
    pub fn elements(&self) -> u64 {
        self.len / ELEMENT_SIZE
    }

    /// The element after `p`, wrapping at the end.
    pub fn next(&self, p: u64) -> u64 {
        let n = p + ELEMENT_SIZE;
        if n >= self.base + self.len {
            self.base
        } else {
            n
        }
    }

    /// Stores a new read pointer, in the context and in host memory.
    pub fn set_rp<M: GuestMemory>(&mut self, mem: &M, rp: u64) -> Result<(), RingError> {
        self.rp = rp;
        // The element the pointer passes must be visible first.
        fence(Ordering::SeqCst);
        write(mem, self.addr + RP, &rp.to_le_bytes())
    }

    /// Stores dword 0 (a channel's state) in host memory.
    pub fn set_dw0<M: GuestMemory>(&mut self, mem: &M, v: u32) -> Result<(), RingError> {
        self.dw0 = v;
        write(mem, self.addr, &v.to_le_bytes())
    }
}
