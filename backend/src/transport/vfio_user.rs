//! A PCI function served to QEMU's `vfio-user-pci` over the vfio-user protocol (the `vfio_user`
//! crate's server). Config space and BAR accesses go to a [`PciModel`]; DMA_MAP/UNMAP build the
//! shared [`DmaMemory`]; SET_IRQS hands MSI-X eventfds to [`MsixFds`].
//!
//! Never fail a region access: the crate turns an error into a reply with errno 0, which QEMU
//! treats as a broken device. Bad accesses read all-ones and drop writes, as hardware does.

use std::fs::File;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sideband_device::pci::PciFunction;
use vfio_bindings::bindings::vfio::vfio_region_info;
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, ServerBackend};
use vm_memory::GuestMemoryMmap;

use super::dma::DmaMemory;
use super::msix::MsixFds;
use super::vfio_user_server::{self, DeviceInfo, Outbox};

/// vfio region index of PCI config space (VFIO_PCI_CONFIG_REGION_INDEX).
pub const CONFIG_REGION: u32 = 7;
/// vfio IRQ index of MSI-X (VFIO_PCI_MSIX_IRQ_INDEX).
pub const MSIX_IRQ_INDEX: u32 = 2;
const NUM_REGIONS: u32 = 9;
const NUM_IRQS: u32 = 5;
const VFIO_REGION_INFO_FLAG_READ: u32 = 1;
const VFIO_REGION_INFO_FLAG_WRITE: u32 = 2;
const VFIO_IRQ_INFO_EVENTFD: u32 = 1;
const VFIO_IRQ_INFO_NORESIZE: u32 = 8;
const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;

/// What a model gets with every access: guest memory and its interrupt lines.
#[derive(Debug)]
pub struct BusContext<'a> {
    /// Guest RAM as QEMU shared it.
    pub mem: &'a GuestMemoryMmap,
    /// MSI-X vectors.
    #[allow(dead_code)] // the test model raises through it; real models hold their own clone
    pub msix: &'a MsixFds,
}

/// A PCI function model as the vfio-user server needs it.
pub trait PciModel: Send {
    /// Size of BAR `index` (0..=5); 0 when the BAR does not exist.
    fn bar_size(&self, index: u32) -> u64;
    /// Number of MSI-X vectors.
    fn msix_vectors(&self) -> u32;
    /// Reads `data.len()` bytes of config space at `offset`.
    fn config_read(&mut self, offset: u64, data: &mut [u8]);
    /// Writes config space.
    fn config_write(&mut self, offset: u64, data: &[u8]);
    /// Reads from BAR `index`.
    fn bar_read(&mut self, index: u32, offset: u64, data: &mut [u8], ctx: &BusContext<'_>);
    /// Writes to BAR `index`.
    fn bar_write(&mut self, index: u32, offset: u64, data: &[u8], ctx: &BusContext<'_>);
    /// Function-level reset.
    fn reset(&mut self);
}

/// Splits an access into naturally aligned pieces of at most 4 bytes.
pub fn pieces(offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= len {
            return None;
        }
        let o = offset + at as u64;
        let room = 4 - (o % 4) as usize;
        let n = [4, 2, 1]
            .into_iter()
            .find(|&n| n <= room && n <= len - at && o % n as u64 == 0)
            .unwrap_or(1);
        let piece = (o, at, n);
        at += n;
        Some(piece)
    })
}

/// Little-endian value of up to 8 bytes.
pub fn le(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..data.len().min(8)].copy_from_slice(&data[..data.len().min(8)]);
    u64::from_le_bytes(b)
}

/// Config space of `pci` as QEMU reads it: the 256-byte header and capabilities, then an empty
/// extended area (all-ones there would be a header whose next pointer loops, and QEMU would spin
/// on it).
pub fn config_read(pci: &PciFunction, offset: u64, data: &mut [u8]) {
    for (o, at, n) in pieces(offset, data.len()) {
        let v = match o {
            0..256 => pci.config_read(o as usize, n),
            256..4096 => 0,
            _ => u32::MAX,
        };
        data[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
    }
}

/// Writes `pci`'s config space. Vectors released by unmasking are QEMU's to deliver (it owns the
/// MSI-X table).
pub fn config_write(pci: &mut PciFunction, offset: u64, data: &[u8]) {
    for (o, at, n) in pieces(offset, data.len()) {
        if o < 256 {
            let _ = pci.config_write(o as usize, n, le(&data[at..at + n]) as u32);
        }
    }
}

/// The `ServerBackend` half: routes protocol messages to the model.
struct Glue<M: PciModel> {
    model: Arc<Mutex<M>>,
    dma: DmaMemory,
    msix: MsixFds,
}

impl<M: PciModel> Glue<M> {
    /// Runs `f` on the model; a poisoned model lock is the run's failure (`crate::fatal`), and
    /// the access is dropped (reads stay all-ones) as for a device that died.
    fn with_model<R>(&self, f: impl FnOnce(&mut M) -> R) -> Option<R> {
        crate::fatal::lock(&self.model, "device model").map(|mut m| f(&mut m))
    }
}

impl<M: PciModel> ServerBackend for Glue<M> {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        log::trace!("region {region} read {offset:#x}+{}", data.len());
        data.fill(0xff);
        let mem = self.dma.snapshot();
        let ctx = BusContext {
            mem: &mem,
            msix: &self.msix,
        };
        self.with_model(|m| match region {
            CONFIG_REGION => m.config_read(offset, data),
            0..=5 => m.bar_read(region, offset, data, &ctx),
            _ => log::debug!("read of unknown region {region}"),
        });
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        log::trace!("region {region} write {offset:#x} {data:02x?}");
        let mem = self.dma.snapshot();
        let ctx = BusContext {
            mem: &mem,
            msix: &self.msix,
        };
        self.with_model(|m| match region {
            CONFIG_REGION => m.config_write(offset, data),
            0..=5 => m.bar_write(region, offset, data, &ctx),
            _ => log::debug!("write to unknown region {region}"),
        });
        Ok(())
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        log::debug!(
            "DMA_MAP {address:#x}+{size:#x} offset {offset:#x} flags {flags:?} fd {}",
            fd.is_some()
        );
        if let Err(e) = self.dma.map(address, size, fd, offset) {
            // Without the mapping the device cannot work; say so loudly but keep serving.
            log::error!("{e}");
        }
        Ok(())
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        log::debug!("DMA_UNMAP {address:#x}+{size:#x} flags {flags:?}");
        // QEMU sets bit 1 (Linux's VFIO_DMA_UNMAP_FLAG_ALL) for unmap-all, which the crate names
        // GET_DIRTY_PAGE_INFO; decide by the flag bits QEMU uses, not by the crate's names.
        if flags.bits() & 0b110 != 0 {
            self.dma.unmap(0, 0);
        } else {
            self.dma.unmap(address, size);
        }
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        log::debug!("device reset");
        self.msix.clear();
        self.with_model(|m| m.reset());
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        log::debug!(
            "SET_IRQS index {index} flags {flags:#x} start {start} count {count} fds {}",
            fds.len()
        );
        if index != MSIX_IRQ_INDEX {
            return Ok(());
        }
        if flags & VFIO_IRQ_SET_ACTION_TRIGGER != 0 && flags & VFIO_IRQ_SET_DATA_EVENTFD != 0 {
            self.msix.set(start, count, fds);
        } else if count == 0 {
            self.msix.clear();
        }
        Ok(())
    }
}

fn region_info(index: u32, size: u64) -> vfio_region_info {
    vfio_region_info {
        argsz: std::mem::size_of::<vfio_region_info>() as u32,
        index,
        size,
        flags: if size > 0 {
            VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
        } else {
            0
        },
        ..Default::default()
    }
}

/// A running vfio-user server for one PCI function.
#[derive(Debug)]
pub struct VfioUserFunction {
    /// Server-initiated messages (DMA writes as this function's bus master).
    pub outbox: Outbox,
    #[cfg_attr(not(test), allow(dead_code))] // detached; the tests check that it lives on
    thread: JoinHandle<()>,
}

impl VfioUserFunction {
    /// Listens on `socket` (which must not exist yet) and serves one QEMU connection at a time
    /// on a thread of its own, until the process ends. DMA maps land in `dma`, MSI-X eventfds
    /// in `msix`; the caller shares both with whatever else drives the model.
    pub fn serve<M: PciModel + 'static>(
        socket: &Path,
        model: Arc<Mutex<M>>,
        dma: DmaMemory,
        msix: MsixFds,
    ) -> io::Result<Self> {
        let (bars, vectors) = {
            let m = model
                .lock()
                .map_err(|_| io::Error::other("model lock poisoned"))?;
            (
                (0..6).map(|i| m.bar_size(i)).collect::<Vec<_>>(),
                m.msix_vectors(),
            )
        };
        let regions = (0..NUM_REGIONS)
            .map(|i| match i {
                0..=5 => region_info(i, bars[i as usize]),
                CONFIG_REGION => region_info(i, 4096),
                _ => region_info(i, 0),
            })
            .collect();
        let irqs = (0..NUM_IRQS)
            .map(|index| IrqInfo {
                index,
                flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
                count: match index {
                    0 => 1,
                    MSIX_IRQ_INDEX => vectors,
                    _ => 0,
                },
            })
            .collect();
        if socket.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("vfio-user socket {} exists", socket.display()),
            ));
        }
        let listener = UnixListener::bind(socket).map_err(|e| {
            io::Error::other(format!("vfio-user server on {}: {e}", socket.display()))
        })?;
        let info = DeviceInfo { regions, irqs };
        let outbox = Outbox::default();
        let mut glue = Glue {
            model,
            dma: dma.clone(),
            msix: msix.clone(),
        };
        let out = outbox.clone();
        let thread = std::thread::Builder::new()
            .name("vfio-user".into())
            .spawn(move || loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        match vfio_user_server::serve_connection(stream, &info, &mut glue, &out) {
                            Ok(()) => log::debug!("vfio-user client disconnected"),
                            Err(e) => log::error!("vfio-user connection ended: {e}"),
                        }
                    }
                    Err(e) => {
                        log::error!("vfio-user accept: {e}");
                        return;
                    }
                }
                glue.dma.unmap(0, 0);
                glue.msix.clear();
            })?;
        Ok(VfioUserFunction { outbox, thread })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_split_into_aligned_pieces() {
        let p: Vec<_> = pieces(0, 8).collect();
        assert_eq!(p, vec![(0, 0, 4), (4, 4, 4)]);
        let p: Vec<_> = pieces(2, 3).collect();
        assert_eq!(p, vec![(2, 0, 2), (4, 2, 1)]);
        assert_eq!(pieces(0, 4096).count(), 1024);
    }

    use std::os::fd::AsRawFd;
    use vm_memory::{Bytes, GuestAddress};
    use vmm_sys_util::eventfd::EventFd;

    /// A function with a 4 KiB BAR0 of plain registers; a write at 0x100 copies the written value
    /// into guest memory at the address held in register 0x0 and raises MSI-X vector 1.
    struct Scratch {
        config: Vec<u8>,
        regs: Vec<u8>,
        resets: u32,
    }

    impl Default for Scratch {
        fn default() -> Self {
            Scratch {
                config: Vec::new(),
                regs: vec![0; 4096],
                resets: 0,
            }
        }
    }

    impl PciModel for Scratch {
        fn bar_size(&self, index: u32) -> u64 {
            if index == 0 {
                4096
            } else {
                0
            }
        }
        fn msix_vectors(&self) -> u32 {
            4
        }
        fn config_read(&mut self, offset: u64, data: &mut [u8]) {
            if self.config.is_empty() {
                self.config = vec![0; 4096];
                self.config[..4].copy_from_slice(&[0x36, 0x1b, 0x0d, 0x00]);
            }
            let o = offset as usize;
            data.copy_from_slice(&self.config[o..o + data.len()]);
        }
        fn config_write(&mut self, _offset: u64, _data: &[u8]) {}
        fn bar_read(&mut self, _index: u32, offset: u64, data: &mut [u8], _ctx: &BusContext<'_>) {
            let o = offset as usize;
            data.copy_from_slice(&self.regs[o..o + data.len()]);
        }
        fn bar_write(&mut self, _index: u32, offset: u64, data: &[u8], ctx: &BusContext<'_>) {
            let o = offset as usize;
            self.regs[o..o + data.len()].copy_from_slice(data);
            if offset == 0x100 {
                let addr = u64::from_le_bytes(self.regs[0..8].try_into().unwrap());
                ctx.mem.write_slice(data, GuestAddress(addr)).unwrap();
                ctx.msix.trigger(1);
            }
        }
        fn reset(&mut self) {
            self.resets += 1;
        }
    }

    #[test]
    fn qemu_side_protocol_reaches_model_memory_and_msix() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("f.sock");
        let model = Arc::new(Mutex::new(Scratch::default()));
        let dma = DmaMemory::default();
        let msix = MsixFds::default();
        let f = VfioUserFunction::serve(&sock, model.clone(), dma.clone(), msix.clone()).unwrap();
        let mut client = vfio_user::Client::new(&sock).unwrap();

        let mut id = [0u8; 4];
        client.region_read(CONFIG_REGION, 0, &mut id).unwrap();
        assert_eq!(id, [0x36, 0x1b, 0x0d, 0x00]);
        assert_eq!(client.region(0).unwrap().size, 4096);
        assert_eq!(client.get_irq_info(MSIX_IRQ_INDEX).unwrap().count, 4);

        let ram = tempfile::tempfile().unwrap();
        ram.set_len(0x10000).unwrap();
        client
            .dma_map(0, 0x4000_0000, 0x10000, ram.as_raw_fd())
            .unwrap();
        let vector1 = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        client
            .set_irqs(
                MSIX_IRQ_INDEX,
                VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                1,
                1,
                &[vector1.as_raw_fd()],
            )
            .unwrap();
        client
            .region_write(0, 0, &0x4000_0080u64.to_le_bytes())
            .unwrap();
        client
            .region_write(0, 0x100, &0xfeed_f00du32.to_le_bytes())
            .unwrap();
        let mut back = [0u8; 4];
        client.region_read(0, 0x100, &mut back).unwrap();
        assert_eq!(u32::from_le_bytes(back), 0xfeed_f00d);
        let mut word = [0u8; 4];
        dma.snapshot()
            .read_slice(&mut word, GuestAddress(0x4000_0080))
            .unwrap();
        assert_eq!(
            u32::from_le_bytes(word),
            0xfeed_f00d,
            "the model wrote through the DMA map"
        );
        assert_eq!(vector1.read().unwrap(), 1, "MSI-X vector 1 fired");

        client.reset().unwrap();
        assert_eq!(model.lock().unwrap().resets, 1);
        client.dma_unmap(0x4000_0000, 0x10000).unwrap();
        assert_eq!(
            vm_memory::GuestMemoryBackend::num_regions(&*dma.snapshot()),
            0
        );
        drop(client);
        assert!(
            !f.thread.is_finished(),
            "the server waits for the next connection"
        );
    }
}
