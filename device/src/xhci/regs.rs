//! Register offsets, bit fields and the BAR0 layout (xHCI 1.2 chapter 5).
//!
//! BAR0 is laid out as QEMU lays out its xHCI (64 KiB):
//!
//! | offset   | what                                              |
//! |----------|---------------------------------------------------|
//! | 0x0000   | capability registers (§5.3), CAPLENGTH = 0x40      |
//! | 0x0040   | operational registers (§5.4), ports at +0x400      |
//! | 0x0800   | extended capabilities (§7): Supported Protocol ×2  |
//! | 0x1000   | runtime registers (§5.5): MFINDEX, interrupters    |
//! | 0x2000   | doorbell array (§5.6)                              |
//! | 0x3000   | MSI-X table (see `crate::pci`)                     |
//! | 0x3800   | MSI-X PBA                                          |

/// Size of BAR0 in bytes.
pub const BAR0_SIZE: u64 = 0x1_0000;

/// CAPLENGTH: offset of the operational registers.
pub const CAP_LENGTH: u64 = 0x40;
/// Offset of the operational registers in BAR0.
pub const OP_BASE: u64 = CAP_LENGTH;
/// Offset of the first extended capability in BAR0.
pub const XECP_BASE: u64 = 0x800;
/// RTSOFF: offset of the runtime registers in BAR0 (§5.3.8).
pub const RT_BASE: u64 = 0x1000;
/// DBOFF: offset of the doorbell array in BAR0 (§5.3.7).
pub const DB_BASE: u64 = 0x2000;
/// End of the registers the xHCI model answers; the MSI-X table starts here.
pub const XHCI_REGS_END: u64 = 0x3000;

/// Interface version reported in HCIVERSION (xHCI 1.1: Linux then reads HCCPARAMS2).
pub const HCI_VERSION: u32 = 0x0110;

/// Capability register offsets (§5.3).
pub mod cap {
    /// CAPLENGTH (byte 0) and HCIVERSION (bytes 2..4).
    pub const CAPLENGTH_HCIVERSION: u64 = 0x00;
    /// HCSPARAMS1: MaxSlots [7:0], MaxIntrs [18:8], MaxPorts [31:24] (§5.3.3).
    pub const HCSPARAMS1: u64 = 0x04;
    /// HCSPARAMS2: IST [3:0], ERST Max [7:4], scratchpads (§5.3.4).
    pub const HCSPARAMS2: u64 = 0x08;
    /// HCSPARAMS3: U1/U2 device exit latencies (§5.3.5).
    pub const HCSPARAMS3: u64 = 0x0c;
    /// HCCPARAMS1: AC64, CSZ, xECP [31:16] (§5.3.6).
    pub const HCCPARAMS1: u64 = 0x10;
    /// DBOFF (§5.3.7).
    pub const DBOFF: u64 = 0x14;
    /// RTSOFF (§5.3.8).
    pub const RTSOFF: u64 = 0x18;
    /// HCCPARAMS2 (§5.3.9).
    pub const HCCPARAMS2: u64 = 0x1c;

    /// HCCPARAMS1.AC64: 64-bit addressing.
    pub const HCCP1_AC64: u32 = 1 << 0;
    /// HCCPARAMS1.NSS: no secondary stream IDs (we support no streams at all).
    pub const HCCP1_NSS: u32 = 1 << 7;
    /// IST = 8 microframes (one frame): bit 3 set means "frames" in bits 2:0.
    pub const HCSP2_IST_ONE_FRAME: u32 = 0b1001;
}

/// Operational register offsets relative to [`super::OP_BASE`] (§5.4).
pub mod op {
    /// USBCMD (§5.4.1).
    pub const USBCMD: u64 = 0x00;
    /// USBSTS (§5.4.2).
    pub const USBSTS: u64 = 0x04;
    /// PAGESIZE (§5.4.3).
    pub const PAGESIZE: u64 = 0x08;
    /// DNCTRL (§5.4.4).
    pub const DNCTRL: u64 = 0x14;
    /// CRCR, 64 bits (§5.4.5).
    pub const CRCR: u64 = 0x18;
    /// DCBAAP, 64 bits (§5.4.6).
    pub const DCBAAP: u64 = 0x30;
    /// CONFIG (§5.4.7).
    pub const CONFIG: u64 = 0x38;
    /// First port register set (§5.4.8); each port takes [`PORT_STRIDE`] bytes.
    pub const PORT_BASE: u64 = 0x400;
    /// Size of one port register set.
    pub const PORT_STRIDE: u64 = 0x10;
    /// PORTSC within a port register set.
    pub const PORTSC: u64 = 0x0;
    /// PORTPMSC within a port register set (§5.4.9).
    pub const PORTPMSC: u64 = 0x4;
    /// PORTLI within a port register set (§5.4.10).
    pub const PORTLI: u64 = 0x8;
    /// PORTHLPMC within a port register set (§5.4.11).
    pub const PORTHLPMC: u64 = 0xc;
}

/// USBCMD bits (§5.4.1).
pub mod usbcmd {
    /// Run/Stop.
    pub const RS: u32 = 1 << 0;
    /// Host Controller Reset.
    pub const HCRST: u32 = 1 << 1;
    /// Interrupter Enable.
    pub const INTE: u32 = 1 << 2;
    /// Host System Error Enable.
    pub const HSEE: u32 = 1 << 3;
    /// Light Host Controller Reset.
    pub const LHCRST: u32 = 1 << 7;
    /// Controller Save State.
    pub const CSS: u32 = 1 << 8;
    /// Controller Restore State.
    pub const CRS: u32 = 1 << 9;
    /// Enable Wrap Event.
    pub const EWE: u32 = 1 << 10;
    /// Bits software may set and read back.
    pub const RW_MASK: u32 = RS | INTE | HSEE | EWE | (1 << 11) | (1 << 13) | (1 << 14);
}

/// USBSTS bits (§5.4.2).
pub mod usbsts {
    /// HC Halted.
    pub const HCH: u32 = 1 << 0;
    /// Host System Error (RW1C).
    pub const HSE: u32 = 1 << 2;
    /// Event Interrupt (RW1C).
    pub const EINT: u32 = 1 << 3;
    /// Port Change Detect (RW1C).
    pub const PCD: u32 = 1 << 4;
    /// Save State Status.
    pub const SSS: u32 = 1 << 8;
    /// Restore State Status.
    pub const RSS: u32 = 1 << 9;
    /// Save/Restore Error (RW1C).
    pub const SRE: u32 = 1 << 10;
    /// Controller Not Ready.
    pub const CNR: u32 = 1 << 11;
    /// Host Controller Error.
    pub const HCE: u32 = 1 << 12;
    /// Write-1-to-clear bits.
    pub const RW1C: u32 = HSE | EINT | PCD | SRE;
}

/// CRCR bits (§5.4.5).
pub mod crcr {
    /// Ring Cycle State.
    pub const RCS: u64 = 1 << 0;
    /// Command Stop.
    pub const CS: u64 = 1 << 1;
    /// Command Abort.
    pub const CA: u64 = 1 << 2;
    /// Command Ring Running (read-only).
    pub const CRR: u64 = 1 << 3;
    /// Command ring pointer, 64-byte aligned.
    pub const PTR_MASK: u64 = !0x3f;
}

/// PORTSC bits (§5.4.8).
pub mod portsc {
    /// Current Connect Status (RO).
    pub const CCS: u32 = 1 << 0;
    /// Port Enabled/Disabled (write 1 to disable).
    pub const PED: u32 = 1 << 1;
    /// Over-current Active (RO).
    pub const OCA: u32 = 1 << 3;
    /// Port Reset.
    pub const PR: u32 = 1 << 4;
    /// Port Link State shift (bits 8:5).
    pub const PLS_SHIFT: u32 = 5;
    /// Port Link State mask (after shifting).
    pub const PLS_MASK: u32 = 0xf;
    /// Port Power.
    pub const PP: u32 = 1 << 9;
    /// Port Speed shift (bits 13:10).
    pub const SPEED_SHIFT: u32 = 10;
    /// Port Indicator Control (bits 15:14).
    pub const PIC_MASK: u32 = 0b11 << 14;
    /// Port Link State Write Strobe.
    pub const LWS: u32 = 1 << 16;
    /// Connect Status Change.
    pub const CSC: u32 = 1 << 17;
    /// Port Enabled/Disabled Change.
    pub const PEC: u32 = 1 << 18;
    /// Warm Port Reset Change (USB3 only).
    pub const WRC: u32 = 1 << 19;
    /// Over-current Change.
    pub const OCC: u32 = 1 << 20;
    /// Port Reset Change.
    pub const PRC: u32 = 1 << 21;
    /// Port Link State Change.
    pub const PLC: u32 = 1 << 22;
    /// Port Config Error Change (USB3 only).
    pub const CEC: u32 = 1 << 23;
    /// Cold Attach Status.
    pub const CAS: u32 = 1 << 24;
    /// Wake on Connect/Disconnect/Over-current Enable (bits 27:25).
    pub const WAKE_MASK: u32 = 0b111 << 25;
    /// Device Removable (RO).
    pub const DR: u32 = 1 << 30;
    /// Warm Port Reset (USB3 only).
    pub const WPR: u32 = 1 << 31;
    /// All change bits; writing 1 clears them.
    pub const CHANGE_BITS: u32 = CSC | PEC | WRC | OCC | PRC | PLC | CEC;
}

/// Port Link State values (§5.4.8 table 5-27).
pub mod pls {
    /// U0: link active.
    pub const U0: u32 = 0;
    /// U2.
    pub const U2: u32 = 2;
    /// U3: suspended.
    pub const U3: u32 = 3;
    /// Disabled.
    pub const DISABLED: u32 = 4;
    /// RxDetect: USB3 port waiting for a connection.
    pub const RX_DETECT: u32 = 5;
    /// Inactive.
    pub const INACTIVE: u32 = 6;
    /// Polling: USB2 port with a device connected, before reset.
    pub const POLLING: u32 = 7;
    /// Resume.
    pub const RESUME: u32 = 15;
}

/// Runtime register offsets relative to [`super::RT_BASE`] (§5.5).
pub mod rt {
    /// MFINDEX (§5.5.1): microframe index, 14 bits.
    pub const MFINDEX: u64 = 0x00;
    /// First interrupter register set (§5.5.2).
    pub const IR_BASE: u64 = 0x20;
    /// Size of one interrupter register set.
    pub const IR_STRIDE: u64 = 0x20;
    /// IMAN within an interrupter set.
    pub const IMAN: u64 = 0x00;
    /// IMOD within an interrupter set.
    pub const IMOD: u64 = 0x04;
    /// ERSTSZ within an interrupter set.
    pub const ERSTSZ: u64 = 0x08;
    /// ERSTBA (64 bits) within an interrupter set.
    pub const ERSTBA: u64 = 0x10;
    /// ERDP (64 bits) within an interrupter set.
    pub const ERDP: u64 = 0x18;
}

/// IMAN bits (§5.5.2.1).
pub mod iman {
    /// Interrupt Pending (RW1C).
    pub const IP: u32 = 1 << 0;
    /// Interrupt Enable.
    pub const IE: u32 = 1 << 1;
}

/// ERDP bits (§5.5.2.3.3).
pub mod erdp {
    /// Dequeue ERST Segment Index (bits 2:0).
    pub const DESI_MASK: u64 = 0x7;
    /// Event Handler Busy (RW1C).
    pub const EHB: u64 = 1 << 3;
    /// Dequeue pointer, 16-byte aligned.
    pub const PTR_MASK: u64 = !0xf;
}

/// Extended capability IDs (§7).
pub mod xcap {
    /// Supported Protocol capability ID (§7.2).
    pub const SUPPORTED_PROTOCOL: u32 = 2;
    /// "USB " as the little-endian name string of a Supported Protocol capability.
    pub const NAME_USB: u32 = u32::from_le_bytes(*b"USB ");
    /// Size in bytes of a Supported Protocol capability without PSI dwords.
    pub const SUPPORTED_PROTOCOL_LEN: u64 = 16;
}

// The layout holds the configuration limits: 32 ports and 127 interrupters.
const _: () = assert!(OP_BASE + op::PORT_BASE + op::PORT_STRIDE * 32 <= XECP_BASE);
const _: () = assert!(RT_BASE + rt::IR_BASE + rt::IR_STRIDE * 127 <= DB_BASE);
const _: () = assert!(DB_BASE + 256 * 4 <= XHCI_REGS_END);

/// A BAR0 offset decoded into the register block it falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// Capability registers, offset from BAR0 start.
    Capability(u64),
    /// Operational registers below the port array, offset from [`OP_BASE`].
    Operational(u64),
    /// A port register set: zero-based port index and offset within the set.
    Port(usize, u64),
    /// Extended capabilities, offset from [`XECP_BASE`].
    ExtendedCap(u64),
    /// Runtime registers, offset from [`RT_BASE`] (MFINDEX).
    Runtime(u64),
    /// An interrupter register set: index and offset within the set.
    Interrupter(usize, u64),
    /// Doorbell register by index.
    Doorbell(usize),
    /// Nothing lives here: reads as zero, writes are dropped.
    Unmapped,
}

/// Decodes a dword-aligned BAR0 offset given the configured port and interrupter counts.
pub fn decode(offset: u64, ports: usize, interrupters: usize) -> Region {
    let port_end = OP_BASE + op::PORT_BASE + op::PORT_STRIDE * ports as u64;
    let ir_end = RT_BASE + rt::IR_BASE + rt::IR_STRIDE * interrupters as u64;
    match offset {
        o if o < CAP_LENGTH => Region::Capability(o),
        o if o < OP_BASE + op::PORT_BASE => Region::Operational(o - OP_BASE),
        o if o < port_end => {
            let rel = o - OP_BASE - op::PORT_BASE;
            Region::Port((rel / op::PORT_STRIDE) as usize, rel % op::PORT_STRIDE)
        }
        o if (XECP_BASE..RT_BASE).contains(&o) => Region::ExtendedCap(o - XECP_BASE),
        o if (RT_BASE..RT_BASE + rt::IR_BASE).contains(&o) => Region::Runtime(o - RT_BASE),
        o if (RT_BASE + rt::IR_BASE..ir_end).contains(&o) => {
            let rel = o - RT_BASE - rt::IR_BASE;
            Region::Interrupter((rel / rt::IR_STRIDE) as usize, rel % rt::IR_STRIDE)
        }
        o if (DB_BASE..DB_BASE + 256 * 4).contains(&o) => {
            Region::Doorbell(((o - DB_BASE) / 4) as usize)
        }
        _ => Region::Unmapped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_blocks() {
        assert_eq!(decode(0x0, 4, 16), Region::Capability(0));
        assert_eq!(decode(0x40, 4, 16), Region::Operational(0));
        assert_eq!(decode(0x440, 4, 16), Region::Port(0, 0));
        assert_eq!(decode(0x474, 4, 16), Region::Port(3, 4));
        assert_eq!(decode(0x480, 4, 16), Region::Unmapped);
        assert_eq!(decode(0x800, 4, 16), Region::ExtendedCap(0));
        assert_eq!(decode(0x1000, 4, 16), Region::Runtime(0));
        assert_eq!(decode(0x1020, 4, 16), Region::Interrupter(0, 0));
        assert_eq!(decode(0x1058, 4, 16), Region::Interrupter(1, 0x18));
        assert_eq!(decode(0x1020 + 16 * 32, 4, 16), Region::Unmapped);
        assert_eq!(decode(0x2008, 4, 16), Region::Doorbell(2));
        assert_eq!(decode(0x3000, 4, 16), Region::Unmapped);
    }

    #[test]
    fn name_string_is_usb_space() {
        assert_eq!(xcap::NAME_USB, 0x2042_5355);
    }
}
