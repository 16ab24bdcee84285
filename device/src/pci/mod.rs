//! PCI configuration space and MSI-X, as a vfio-user server must present them.
//!
//! [`XhciPciFunction`] is the xHCI's PCI face: class 0x0c0330 (the guest's `xhci-pci` binds by
//! class), one 64-bit, 64 KiB memory BAR 0, and an MSI-X capability with one vector per
//! interrupter. The MSI-X table and PBA sit in BAR 0 after the xHCI registers, as in QEMU's
//! own xHCI: BAR 0 offsets below [`MSIX_TABLE_OFFSET`] go to [`crate::xhci::Controller`],
//! [`MSIX_TABLE_OFFSET`]..[`MSIX_PBA_OFFSET`] to the table, the rest to the PBA. There is no
//! interrupt pin: the function only interrupts through MSI-X.

pub mod config;
pub mod msix;

use config::{ConfigSpace, Ids};
use msix::MsixTable;

/// Vendor ID: Red Hat's QEMU range.
pub const XHCI_VENDOR_ID: u16 = 0x1b36;
/// Device ID: "QEMU xHCI".
pub const XHCI_DEVICE_ID: u16 = 0x000d;
/// Class code: serial bus, USB, xHCI.
pub const XHCI_CLASS: u32 = 0x0c_03_30;
/// Size of BAR 0.
pub const BAR0_SIZE: u64 = crate::xhci::regs::BAR0_SIZE;
/// Offset of the MSI-X table in BAR 0.
pub const MSIX_TABLE_OFFSET: u64 = 0x3000;
/// Offset of the MSI-X PBA in BAR 0.
pub const MSIX_PBA_OFFSET: u64 = 0x3800;
/// Serial Bus Release Number register (xHCI 1.2 §5.2.3): USB 3.0.
pub const SBRN_OFFSET: usize = 0x60;
/// Frame Length Adjustment register (xHCI 1.2 §5.2.4).
pub const FLADJ_OFFSET: usize = 0x61;

// 128 vectors fit the table; the table starts after the xHCI registers.
const _: () = assert!(MSIX_TABLE_OFFSET + 128 * msix::ENTRY_SIZE <= MSIX_PBA_OFFSET);
const _: () = assert!(crate::xhci::regs::XHCI_REGS_END <= MSIX_TABLE_OFFSET);

/// Which part of BAR 0 an offset falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar0Target {
    /// xHCI registers, offset from BAR 0 start.
    Xhci(u64),
    /// MSI-X table, offset from the table start.
    MsixTable(u64),
    /// MSI-X PBA, offset from the PBA start.
    MsixPba(u64),
    /// Past the end of BAR 0.
    Outside,
}

/// Routes a BAR 0 offset.
pub fn classify_bar0(offset: u64) -> Bar0Target {
    match offset {
        o if o < MSIX_TABLE_OFFSET => Bar0Target::Xhci(o),
        o if o < MSIX_PBA_OFFSET => Bar0Target::MsixTable(o - MSIX_TABLE_OFFSET),
        o if o < BAR0_SIZE => Bar0Target::MsixPba(o - MSIX_PBA_OFFSET),
        _ => Bar0Target::Outside,
    }
}

/// A PCI function with one 64-bit memory BAR 0 and MSI-X: configuration space and MSI-X state.
#[derive(Clone, Debug)]
pub struct PciFunction {
    /// Configuration space.
    pub config: ConfigSpace,
    /// MSI-X table and PBA.
    pub msix: MsixTable,
    msix_cap: usize,
}

/// The xHCI's PCI function.
pub type XhciPciFunction = PciFunction;

impl PciFunction {
    /// A function named `ids` with a BAR 0 of `bar0_size` bytes and `vectors` MSI-X vectors (at
    /// most 128) whose table and PBA sit in BAR 0 at `table` and `pba`.
    pub fn new(ids: Ids, bar0_size: u64, vectors: u16, table: u32, pba: u32) -> Self {
        let vectors = vectors.clamp(1, 128);
        let mut config = ConfigSpace::new(ids);
        // Both cannot fail on a fresh header: BAR 0 is free and callers pass a power of two;
        // the capability area is empty.
        let _ = config.add_bar64(0, bar0_size);
        let (body, writable) = msix::capability(vectors, 0, table, pba);
        config.next_capability_at(0x70);
        let msix_cap = config.add_capability(&body, &writable).unwrap_or(0x70);
        PciFunction {
            config,
            msix: MsixTable::new(vectors),
            msix_cap,
        }
    }

    /// The xHCI: `vectors` MSI-X vectors, one per interrupter.
    pub fn xhci(vectors: u16) -> Self {
        let mut f = Self::new(
            Ids {
                vendor: XHCI_VENDOR_ID,
                device: XHCI_DEVICE_ID,
                class: XHCI_CLASS,
                revision: 1,
                subsystem_vendor: XHCI_VENDOR_ID,
                subsystem: 0x1100,
            },
            BAR0_SIZE,
            vectors,
            MSIX_TABLE_OFFSET as u32,
            MSIX_PBA_OFFSET as u32,
        );
        f.config.set_read_only(SBRN_OFFSET, &[0x30, 0x20]);
        f.config.set_writable(FLADJ_OFFSET, 0x3f);
        f
    }

    /// Reads configuration space.
    pub fn config_read(&self, offset: usize, size: usize) -> u32 {
        self.config.read(offset, size)
    }

    /// Writes configuration space; returns MSI-X vectors to deliver now (pending vectors
    /// released by enabling MSI-X or clearing the Function Mask).
    pub fn config_write(&mut self, offset: usize, size: usize, value: u32) -> Vec<u16> {
        self.config.write(offset, size, value);
        let ctrl = self.config.read(self.msix_cap + 2, 2) as u16;
        self.msix.set_control(ctrl)
    }

    /// Guest-physical address of BAR 0.
    pub fn bar0(&self) -> u64 {
        self.config.bar64(0)
    }

    /// True when the guest enabled memory decoding and bus mastering.
    pub fn is_enabled(&self) -> bool {
        let c = self.config.command();
        c & config::COMMAND_MEMORY != 0 && c & config::COMMAND_BUS_MASTER != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xhci_function_layout() {
        let mut f = PciFunction::xhci(16);
        assert_eq!(f.config_read(0, 4), 0x000d_1b36);
        assert_eq!(f.config_read(0x08, 4) >> 8, 0x0c0330);
        assert_eq!(f.config_read(config::offset::CAP_PTR, 1), 0x70);
        assert_eq!(f.config_read(0x70, 1), u32::from(msix::CAP_ID));
        assert_eq!(f.config_read(0x72, 2), 15);
        assert_eq!(f.config_read(SBRN_OFFSET, 1), 0x30);
        f.config_write(0x10, 4, !0);
        assert_eq!(f.config_read(0x10, 4), 0xffff_0004);
        f.config_write(0x10, 4, 0x1000_0000);
        f.config_write(0x14, 4, 0);
        assert_eq!(f.bar0(), 0x1000_0000);
        f.config_write(4, 2, 0x6);
        assert!(f.is_enabled());
        // MSI-X enable through config space reaches the table.
        f.config_write(
            0x72,
            2,
            u32::from(msix::CTRL_ENABLE | msix::CTRL_FUNCTION_MASK),
        );
        assert!(!f.msix.signal(3));
        f.msix.table_write(3 * 16 + 12, 4, 0);
        assert_eq!(
            f.config_write(0x72, 2, u32::from(msix::CTRL_ENABLE)),
            vec![3]
        );
    }

    #[test]
    fn bar0_routing() {
        assert_eq!(classify_bar0(0x2000), Bar0Target::Xhci(0x2000));
        assert_eq!(classify_bar0(0x3010), Bar0Target::MsixTable(0x10));
        assert_eq!(classify_bar0(0x3808), Bar0Target::MsixPba(8));
        assert_eq!(classify_bar0(0x1_0000), Bar0Target::Outside);
    }
}
