//! The ADSP's QRTR link over an emulated MHI PCI function: the guest's `mhi_pci_generic` binds
//! the function, `qrtr-mhi` binds its IPCR channels, and every QRTR packet crosses host memory
//! through MHI rings. Nothing on the path is a user process, so the link keeps working while the
//! guest's tasks are frozen for system suspend (the virtio-serial link's relay stops then).
//!
//! The function is a Qualcomm SDX35 (`17cb:011a`): `mhi_pci_generic`'s entry for it loads no
//! firmware and uses no in-band wake doorbell, and its channel table has IPCR on channels 20
//! (to the device) and 21 (to the host). There is no PCI power-management capability, so the
//! driver never runtime-suspends it; system suspend still takes it to M3 and back.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sideband_device::mhi::{regs, Mhi, Notice, Outcome};
use sideband_device::pci::config::Ids;
use sideband_device::pci::PciFunction;
use vm_memory::GuestMemoryMmap;

use super::dma::DmaMemory;
use super::msix::MsixFds;
use super::qrtr_link::PacketHandler;
use super::vfio_user::{config_read, config_write, le, BusContext, PciModel, VfioUserFunction};

/// The IPCR channel the host sends on.
pub const IPCR_UL: u8 = 20;
/// The IPCR channel the host receives on.
pub const IPCR_DL: u8 = 21;
/// Size of BAR 0: MHI registers, then the MSI-X table and PBA.
pub const BAR0_SIZE: u64 = 0x2000;
const MSIX_TABLE: u64 = 0x1000;
const MSIX_PBA: u64 = 0x1800;
/// One vector for BHI and one per event ring of the SDX35 configuration (6), rounded up.
const VECTORS: u16 = 8;

/// The PCI function: config space, MSI-X, the MHI device and whoever answers on IPCR.
pub struct MhiFunction {
    pci: PciFunction,
    /// The device model.
    pub mhi: Mhi,
    msix: MsixFds,
    handler: Box<dyn PacketHandler>,
    link_up: bool,
}

impl std::fmt::Debug for MhiFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MhiFunction")
            .field("state", &self.mhi.state())
            .field("link_up", &self.link_up)
            .finish_non_exhaustive()
    }
}

fn sdx35() -> PciFunction {
    PciFunction::new(
        Ids {
            vendor: 0x17cb,
            device: 0x011a,
            class: 0xff_00_00,
            revision: 0,
            subsystem_vendor: 0x17cb,
            subsystem: 0,
        },
        BAR0_SIZE,
        VECTORS,
        MSIX_TABLE as u32,
        MSIX_PBA as u32,
    )
}

impl MhiFunction {
    /// A function whose IPCR packets go to `handler`.
    pub fn new(handler: Box<dyn PacketHandler>, msix: MsixFds) -> Self {
        MhiFunction {
            pci: sdx35(),
            mhi: Mhi::new(),
            msix,
            handler,
            link_up: false,
        }
    }

    /// True while the host has both IPCR channels started.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// Sends `packet` to the guest on IPCR.
    pub fn send(&mut self, mem: &GuestMemoryMmap, packet: Vec<u8>) -> io::Result<()> {
        if !self.link_up {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the guest has not started the MHI IPCR channels",
            ));
        }
        let out = self.mhi.send(mem, IPCR_DL, packet);
        self.act(mem, out);
        Ok(())
    }

    /// Raises the vectors and answers the notices of `out`, and of whatever the answers caused.
    fn act(&mut self, mem: &GuestMemoryMmap, out: Outcome) {
        let mut pending = vec![out];
        // Each round is the device's reaction to packets it was handed: bounded by what the
        // handler answers, which is finite per packet.
        while let Some(out) = pending.pop() {
            for v in out.msi {
                self.msix.trigger(v);
            }
            for n in out.notices {
                let replies = match n {
                    Notice::Started(IPCR_DL) if self.mhi.is_running(IPCR_UL) && !self.link_up => {
                        self.link_up = true;
                        log::debug!("MHI: the guest started IPCR; the DSP's QRTR link is up");
                        self.handler.on_connect()
                    }
                    Notice::Stopped(IPCR_UL | IPCR_DL) if self.link_up => {
                        self.link_up = false;
                        log::debug!("MHI: the guest stopped IPCR; the DSP's QRTR link is down");
                        self.handler.on_disconnect();
                        Vec::new()
                    }
                    Notice::Received(IPCR_UL, packet) => self.handler.on_packet(&packet),
                    Notice::Received(ch, p) => {
                        log::warn!(
                            "MHI: {} bytes on channel {ch}, which nothing serves",
                            p.len()
                        );
                        Vec::new()
                    }
                    _ => Vec::new(),
                };
                for p in replies {
                    if self.link_up {
                        pending.push(self.mhi.send(mem, IPCR_DL, p));
                    }
                }
            }
        }
    }
}

impl PciModel for MhiFunction {
    fn bar_size(&self, index: u32) -> u64 {
        if index == 0 {
            BAR0_SIZE
        } else {
            0
        }
    }

    fn msix_vectors(&self) -> u32 {
        u32::from(VECTORS)
    }

    fn config_read(&mut self, offset: u64, data: &mut [u8]) {
        config_read(&self.pci, offset, data);
    }

    fn config_write(&mut self, offset: u64, data: &[u8]) {
        config_write(&mut self.pci, offset, data);
    }

    fn bar_read(&mut self, index: u32, offset: u64, data: &mut [u8], _ctx: &BusContext<'_>) {
        let size = data.len() as u32;
        let value = match (index, offset, size) {
            (0, o, 4) if o < regs::REGS_END => u64::from(self.mhi.read(o)),
            (0, o, 4 | 8) if (MSIX_TABLE..MSIX_PBA).contains(&o) => {
                self.pci.msix.table_read(o - MSIX_TABLE, size)
            }
            (0, o, 4 | 8) if (MSIX_PBA..BAR0_SIZE).contains(&o) => {
                self.pci.msix.pba_read(o - MSIX_PBA, size)
            }
            _ => u64::MAX,
        };
        let n = data.len().min(8);
        data[..n].copy_from_slice(&value.to_le_bytes()[..n]);
    }

    fn bar_write(&mut self, index: u32, offset: u64, data: &[u8], ctx: &BusContext<'_>) {
        if index != 0 || data.len() > 8 {
            return;
        }
        let (size, value) = (data.len() as u32, le(data));
        match offset {
            o if o < regs::REGS_END && size == 4 => {
                let out = self.mhi.write(ctx.mem, o, value as u32);
                self.act(ctx.mem, out);
            }
            o if o < regs::REGS_END && size == 8 => {
                // Low dword last: a doorbell acts on its low half.
                let out = self.mhi.write(ctx.mem, o + 4, (value >> 32) as u32);
                self.act(ctx.mem, out);
                let out = self.mhi.write(ctx.mem, o, value as u32);
                self.act(ctx.mem, out);
            }
            o if (MSIX_TABLE..MSIX_PBA).contains(&o) => {
                let _ = self.pci.msix.table_write(o - MSIX_TABLE, size, value);
            }
            _ => log::debug!("MHI: BAR 0 write of {size} bytes at {offset:#x} ignored"),
        }
    }

    fn reset(&mut self) {
        let out = self.mhi.reset();
        self.pci = sdx35();
        let mem = GuestMemoryMmap::new();
        // A reset stops the link; nothing is delivered into memory here.
        self.act(
            &mem,
            Outcome {
                msi: Vec::new(),
                notices: out.notices,
            },
        );
    }
}

/// A served MHI function: the ADSP sends through it.
#[derive(Debug)]
pub struct MhiLink {
    function: Arc<Mutex<MhiFunction>>,
    dma: DmaMemory,
    msix: MsixFds,
    _server: VfioUserFunction,
}

impl MhiLink {
    /// Serves the function on the vfio-user `socket`, feeding IPCR packets to `handler`.
    pub fn serve<H: PacketHandler>(socket: &Path, handler: Arc<Mutex<H>>) -> io::Result<Self> {
        let msix = MsixFds::default();
        let dma = DmaMemory::default();
        let function = Arc::new(Mutex::new(MhiFunction::new(
            Box::new(SharedHandler(handler)),
            msix.clone(),
        )));
        let server = VfioUserFunction::serve(socket, function.clone(), dma.clone(), msix.clone())
            .map_err(|e| io::Error::other(format!("MHI function: {e}")))?;
        Ok(MhiLink {
            function,
            dma,
            msix,
            _server: server,
        })
    }

    /// Sends a packet the DSP originates.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let mem = self.dma.snapshot();
        let mut f = self
            .function
            .lock()
            .map_err(|_| io::Error::other("MHI function lock poisoned"))?;
        f.send(&mem, packet.to_vec())
    }

    /// A line for the summary.
    pub fn summary(&self) -> String {
        match crate::fatal::lock(&self.function, "MHI function") {
            Some(f) => {
                let c = f.mhi.counters;
                let (raised, lost) = self.msix.counts();
                format!(
                    "mhi: state {:#x}, IPCR {}, {} command(s), {} event(s), {} packet(s) up, {} down, {} M3 entr(ies), {} refused, msi-x {raised} delivered, {lost} without an eventfd",
                    f.mhi.state(),
                    if f.link_up() { "up" } else { "down" },
                    c.commands,
                    c.events,
                    c.ul_packets,
                    c.dl_packets,
                    c.m3_entries,
                    c.errors
                )
            }
            None => "mhi: lock poisoned".into(),
        }
    }
}

/// Lets the function own a handler the caller shares.
struct SharedHandler<H>(Arc<Mutex<H>>);

impl<H: PacketHandler> PacketHandler for SharedHandler<H> {
    fn on_packet(&mut self, packet: &[u8]) -> Vec<Vec<u8>> {
        crate::fatal::lock(&self.0, "MHI handler")
            .map(|mut h| h.on_packet(packet))
            .unwrap_or_default()
    }
    fn on_connect(&mut self) -> Vec<Vec<u8>> {
        crate::fatal::lock(&self.0, "MHI handler")
            .map(|mut h| h.on_connect())
            .unwrap_or_default()
    }
    fn on_disconnect(&mut self) {
        if let Some(mut h) = crate::fatal::lock(&self.0, "MHI handler") {
            h.on_disconnect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Silent;
    impl PacketHandler for Silent {
        fn on_packet(&mut self, _: &[u8]) -> Vec<Vec<u8>> {
            Vec::new()
        }
        fn on_connect(&mut self) -> Vec<Vec<u8>> {
            Vec::new()
        }
        fn on_disconnect(&mut self) {}
    }

    #[test]
    fn config_space_names_an_sdx35_and_bar0_holds_the_mhi_registers() {
        let mut f = MhiFunction::new(Box::new(Silent), MsixFds::default());
        let mut cfg = vec![0u8; 4096];
        f.config_read(0, &mut cfg);
        assert_eq!(&cfg[0..4], &[0xcb, 0x17, 0x1a, 0x01], "17cb:011a");
        assert_eq!(&cfg[9..12], &[0x00, 0x00, 0xff]);
        // No power-management capability: mhi_pci_generic then never runtime-suspends it.
        let mut at = cfg[0x34] as usize;
        let mut caps = Vec::new();
        while at != 0 && caps.len() < 48 {
            caps.push(cfg[at]);
            at = cfg[at + 1] as usize;
        }
        assert_eq!(caps, vec![0x11], "MSI-X only");
        let mem = GuestMemoryMmap::new();
        let msix = MsixFds::default();
        let ctx = BusContext {
            mem: &mem,
            msix: &msix,
        };
        let mut v = [0u8; 4];
        f.bar_read(0, regs::BHI_BASE + regs::BHI_EXECENV, &mut v, &ctx);
        assert_eq!(u32::from_le_bytes(v), u32::from(regs::ee::AMSS));
        f.bar_read(0, regs::MHISTATUS, &mut v, &ctx);
        assert_eq!(u32::from_le_bytes(v) & regs::STATUS_READY, 1);
        assert_eq!(f.msix_vectors(), 8);
        assert!(!f.link_up());
        let e = f.send(&mem, vec![1, 2, 3]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
        // A write the model cannot place is ignored, not a panic.
        f.bar_write(0, BAR0_SIZE + 8, &[1, 2, 3, 4], &ctx);
        f.bar_write(3, 0, &[1, 2, 3, 4], &ctx);
    }
}
