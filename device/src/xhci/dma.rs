//! Bounded guest-memory accesses. Every failure is a [`DmaError`], which the controller turns
//! into Host System Error (xHCI 1.2 §5.4.2 HSE).

use std::sync::atomic::{fence, Ordering};

use vm_memory::{Bytes, GuestAddress, GuestMemory};

use super::context::{EndpointContext, SlotContext, CONTEXT_SIZE};
use super::trb::Trb;

/// A guest-memory access that fell outside guest RAM.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("guest memory access of {len} bytes at {addr:#x} failed")]
pub struct DmaError {
    /// Guest physical address of the access.
    pub addr: u64,
    /// Length of the access.
    pub len: usize,
}

/// Result of a guest-memory access.
pub type Result<T> = std::result::Result<T, DmaError>;

/// Reads `buf.len()` bytes at `addr`.
pub fn read<M: GuestMemory>(mem: &M, addr: u64, buf: &mut [u8]) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    mem.read_slice(buf, GuestAddress(addr))
        .map_err(|_| DmaError {
            addr,
            len: buf.len(),
        })
}

/// Writes `buf` at `addr`.
pub fn write<M: GuestMemory>(mem: &M, addr: u64, buf: &[u8]) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    mem.write_slice(buf, GuestAddress(addr))
        .map_err(|_| DmaError {
            addr,
            len: buf.len(),
        })
}

/// Reads a little-endian u64 (a DCBAA entry or an ERST base).
pub fn read_u64<M: GuestMemory>(mem: &M, addr: u64) -> Result<u64> {
    let mut b = [0u8; 8];
    read(mem, addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Reads one TRB.
pub fn read_trb<M: GuestMemory>(mem: &M, addr: u64) -> Result<Trb> {
    let mut b = [0u8; 16];
    read(mem, addr, &mut b)?;
    Ok(Trb::from_bytes(b))
}

/// Hands a TRB to the guest: everything but the cycle bit first, the cycle bit last, so the
/// driver never sees a valid cycle bit on a half-written TRB (xHCI 1.2 §4.9.4).
pub fn write_trb_cycle_last<M: GuestMemory>(mem: &M, addr: u64, trb: Trb) -> Result<()> {
    let staged = trb.with_cycle(!trb.cycle()).to_bytes();
    write(mem, addr, &staged)?;
    fence(Ordering::Release);
    let dw3 = trb.control().to_le_bytes();
    write(mem, addr + 12, &dw3)
}

/// Reads a 32-byte slot context.
pub fn read_slot_ctx<M: GuestMemory>(mem: &M, addr: u64) -> Result<SlotContext> {
    let mut b = [0u8; CONTEXT_SIZE as usize];
    read(mem, addr, &mut b)?;
    Ok(SlotContext::from_bytes(b))
}

/// Reads a 32-byte endpoint context.
pub fn read_ep_ctx<M: GuestMemory>(mem: &M, addr: u64) -> Result<EndpointContext> {
    let mut b = [0u8; CONTEXT_SIZE as usize];
    read(mem, addr, &mut b)?;
    Ok(EndpointContext::from_bytes(b))
}

/// Writes a 32-byte slot context.
pub fn write_slot_ctx<M: GuestMemory>(mem: &M, addr: u64, ctx: &SlotContext) -> Result<()> {
    write(mem, addr, &ctx.to_bytes())
}

/// Writes a 32-byte endpoint context.
pub fn write_ep_ctx<M: GuestMemory>(mem: &M, addr: u64, ctx: &EndpointContext) -> Result<()> {
    write(mem, addr, &ctx.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    #[test]
    fn outside_ram_is_an_error() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x1000), 0x1000)]).unwrap();
        assert!(read_trb(&mem, 0x1000).is_ok());
        assert_eq!(
            read_trb(&mem, 0x1ff8),
            Err(DmaError {
                addr: 0x1ff8,
                len: 16
            })
        );
        assert!(read_trb(&mem, u64::MAX - 4).is_err());
        assert!(write(&mem, 0, &[1]).is_err());
        assert!(read(&mem, 0, &mut []).is_ok());
    }

    #[test]
    fn cycle_written_last_ends_valid() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let t = Trb([1, 2, 3, 0x8401]);
        write_trb_cycle_last(&mem, 0x100, t).unwrap();
        assert_eq!(read_trb(&mem, 0x100).unwrap(), t);
    }
}
