//! A vfio-user function's view of guest RAM, built from the regions QEMU shares with it (DMA_MAP
//! with a memfd). Each function (the xHCI, the MHI link) keeps its own; the models it serves read
//! the current snapshot. (The virtio-iommu's vhost-user daemon keeps its own memory table.)

use std::fs::File;
use std::sync::Arc;

use thiserror::Error;
use vm_memory::{
    FileOffset, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap,
    GuestRegionMmap, GuestUsize,
};

/// Why a mapping request was refused.
#[derive(Debug, Error)]
pub enum DmaError {
    /// QEMU sent a region without a file descriptor: guest RAM is not shared.
    #[error("DMA_MAP of {size:#x} bytes at {addr:#x} came without a file descriptor; boot QEMU with a shared memory backend (memory-backend-memfd)")]
    NoFd {
        /// Guest address.
        addr: u64,
        /// Length.
        size: u64,
    },
    /// The region could not be mapped or overlaps an existing one.
    #[error("cannot map {size:#x} bytes at {addr:#x}: {reason}")]
    Map {
        /// Guest address.
        addr: u64,
        /// Length.
        size: u64,
        /// What went wrong.
        reason: String,
    },
}

/// Guest memory shared by every model in the backend.
#[derive(Clone, Debug)]
pub struct DmaMemory {
    inner: GuestMemoryAtomic<GuestMemoryMmap>,
}

impl Default for DmaMemory {
    fn default() -> Self {
        DmaMemory {
            inner: GuestMemoryAtomic::new(GuestMemoryMmap::new()),
        }
    }
}

impl DmaMemory {
    /// The current mapping; hold it only for the duration of one operation.
    pub fn snapshot(&self) -> Arc<GuestMemoryMmap> {
        self.inner.memory().into_inner()
    }

    /// Adds `size` bytes of guest RAM at `addr`, backed by `fd` at `offset`.
    pub fn map(&self, addr: u64, size: u64, fd: Option<File>, offset: u64) -> Result<(), DmaError> {
        let fd = fd.ok_or(DmaError::NoFd { addr, size })?;
        let err = |reason: String| DmaError::Map { addr, size, reason };
        let len = usize::try_from(size).map_err(|_| err("size does not fit usize".into()))?;
        let region =
            GuestRegionMmap::from_range(GuestAddress(addr), len, Some(FileOffset::new(fd, offset)))
                .map_err(|e| err(e.to_string()))?;
        let guard = self
            .inner
            .lock()
            .map_err(|_| err("memory lock poisoned".into()))?;
        let next = self
            .snapshot()
            .insert_region(Arc::new(region))
            .map_err(|e| err(e.to_string()))?;
        guard.replace(next);
        Ok(())
    }

    /// Removes the region `addr..addr+size`; removes everything when `size` is 0 or the range
    /// covers all regions (QEMU's unmap-all). Unknown ranges are ignored with a log line.
    pub fn unmap(&self, addr: u64, size: u64) {
        let Ok(guard) = self.inner.lock() else {
            crate::fatal::poisoned("guest memory");
            return;
        };
        if size == 0 || (addr == 0 && size == u64::MAX) {
            guard.replace(GuestMemoryMmap::new());
            return;
        }
        match self
            .snapshot()
            .remove_region(GuestAddress(addr), size as GuestUsize)
        {
            Ok((next, _)) => guard.replace(next),
            Err(e) => log::warn!("DMA_UNMAP {addr:#x}+{size:#x} matches no mapped region: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use vm_memory::{Bytes, GuestMemoryBackend};

    fn memfd(len: u64) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.set_len(len).unwrap();
        f.seek(SeekFrom::Start(0x10)).unwrap();
        f.write_all(b"guest").unwrap();
        f
    }

    #[test]
    fn mapped_file_is_guest_memory_and_unmap_removes_it() {
        let dma = DmaMemory::default();
        dma.map(0x4000_0000, 0x10000, Some(memfd(0x10000)), 0)
            .unwrap();
        let mem = dma.snapshot();
        let mut buf = [0u8; 5];
        mem.read_slice(&mut buf, GuestAddress(0x4000_0010)).unwrap();
        assert_eq!(&buf, b"guest");
        assert!(mem.read_slice(&mut buf, GuestAddress(0x3fff_fff0)).is_err());
        dma.unmap(0x4000_0000, 0x10000);
        assert_eq!(dma.snapshot().num_regions(), 0);
    }

    #[test]
    fn map_without_fd_is_refused_with_advice() {
        let e = DmaMemory::default().map(0, 0x1000, None, 0).unwrap_err();
        assert!(e.to_string().contains("memory-backend-memfd"));
    }

    #[test]
    fn overlapping_map_is_refused_and_unknown_unmap_ignored() {
        let dma = DmaMemory::default();
        dma.map(0x1000, 0x2000, Some(memfd(0x2000)), 0).unwrap();
        assert!(dma.map(0x2000, 0x2000, Some(memfd(0x2000)), 0).is_err());
        dma.unmap(0x9000, 0x1000);
        assert_eq!(dma.snapshot().num_regions(), 1);
        dma.unmap(0, 0);
        assert_eq!(dma.snapshot().num_regions(), 0);
    }
}
