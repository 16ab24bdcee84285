//! A PCI type-0 configuration space (PCI Local Bus 3.0 §6): header fields as bytes with
//! per-byte writable and write-1-to-clear masks, 64-bit memory BARs with size masks, and a
//! capability list.

/// Size of conventional configuration space.
pub const CONFIG_SIZE: usize = 256;

/// Header offsets (PCI 3.0 §6.1).
pub mod offset {
    /// Vendor ID.
    pub const VENDOR_ID: usize = 0x00;
    /// Device ID.
    pub const DEVICE_ID: usize = 0x02;
    /// Command register.
    pub const COMMAND: usize = 0x04;
    /// Status register.
    pub const STATUS: usize = 0x06;
    /// Revision ID.
    pub const REVISION: usize = 0x08;
    /// Programming interface, subclass, class (3 bytes).
    pub const CLASS: usize = 0x09;
    /// Cache line size.
    pub const CACHE_LINE: usize = 0x0c;
    /// Latency timer.
    pub const LATENCY: usize = 0x0d;
    /// Header type.
    pub const HEADER_TYPE: usize = 0x0e;
    /// BAR 0; BAR n is at `BAR0 + 4n`.
    pub const BAR0: usize = 0x10;
    /// Subsystem vendor ID.
    pub const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
    /// Subsystem ID.
    pub const SUBSYSTEM_ID: usize = 0x2e;
    /// Expansion ROM base address.
    pub const ROM: usize = 0x30;
    /// Capabilities pointer.
    pub const CAP_PTR: usize = 0x34;
    /// Interrupt line.
    pub const INTERRUPT_LINE: usize = 0x3c;
    /// Interrupt pin.
    pub const INTERRUPT_PIN: usize = 0x3d;
}

/// Command register bits software may change: memory space, bus master, parity error
/// response, SERR# enable, interrupt disable. There is no I/O BAR, so I/O space stays 0.
pub const COMMAND_WRITABLE: u16 = (1 << 1) | (1 << 2) | (1 << 6) | (1 << 8) | (1 << 10);
/// Command register: memory space enable.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command register: bus master enable.
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Status register: capabilities list present.
pub const STATUS_CAP_LIST: u16 = 1 << 4;
/// Status register error bits, write-1-to-clear.
pub const STATUS_W1C: u16 = 0xf900;
/// First byte available to capabilities.
const CAP_START: usize = 0x40;

/// Identity of a PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code: class << 16 | subclass << 8 | programming interface.
    pub class: u32,
    /// Revision ID.
    pub revision: u8,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem ID.
    pub subsystem: u16,
}

/// Errors while building a configuration space.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// BAR index out of range or taken.
    #[error("BAR {0} cannot be used")]
    Bar(usize),
    /// A BAR size that is not a power of two of at least 16 bytes.
    #[error("BAR size {0:#x} is not a power of two of at least 16")]
    BarSize(u64),
    /// No room for another capability.
    #[error("no room for a capability of {0} bytes")]
    NoRoom(usize),
}

/// A type-0 configuration space.
#[derive(Clone, Debug)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    writable: [u8; CONFIG_SIZE],
    w1c: [u8; CONFIG_SIZE],
    bar_used: [bool; 6],
    last_cap: Option<usize>,
    next_cap: usize,
}

impl ConfigSpace {
    /// A header with `ids`, no BARs, no capabilities, no interrupt pin.
    pub fn new(ids: Ids) -> Self {
        let mut c = ConfigSpace {
            bytes: [0; CONFIG_SIZE],
            writable: [0; CONFIG_SIZE],
            w1c: [0; CONFIG_SIZE],
            bar_used: [false; 6],
            last_cap: None,
            next_cap: CAP_START,
        };
        c.set16(offset::VENDOR_ID, ids.vendor);
        c.set16(offset::DEVICE_ID, ids.device);
        c.bytes[offset::REVISION] = ids.revision;
        c.bytes[offset::CLASS] = ids.class as u8;
        c.bytes[offset::CLASS + 1] = (ids.class >> 8) as u8;
        c.bytes[offset::CLASS + 2] = (ids.class >> 16) as u8;
        c.set16(offset::SUBSYSTEM_VENDOR_ID, ids.subsystem_vendor);
        c.set16(offset::SUBSYSTEM_ID, ids.subsystem);
        c.set_writable16(offset::COMMAND, COMMAND_WRITABLE);
        c.w1c[offset::STATUS] = STATUS_W1C as u8;
        c.w1c[offset::STATUS + 1] = (STATUS_W1C >> 8) as u8;
        c.writable[offset::CACHE_LINE] = 0xff;
        c.writable[offset::LATENCY] = 0xff;
        c.writable[offset::INTERRUPT_LINE] = 0xff;
        c
    }

    fn set16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn set_writable16(&mut self, at: usize, v: u16) {
        self.writable[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    /// Sets bytes at `at` that software cannot change (device-specific registers).
    pub fn set_read_only(&mut self, at: usize, data: &[u8]) {
        if let Some(dst) = self.bytes.get_mut(at..at + data.len()) {
            dst.copy_from_slice(data);
        }
    }

    /// Marks bits of the byte at `at` writable.
    pub fn set_writable(&mut self, at: usize, mask: u8) {
        if let Some(w) = self.writable.get_mut(at) {
            *w = mask;
        }
    }

    /// Declares BAR `index` (and `index + 1`) as a 64-bit, non-prefetchable memory BAR of
    /// `size` bytes.
    pub fn add_bar64(&mut self, index: usize, size: u64) -> Result<(), Error> {
        if index >= 5 || self.bar_used[index] || self.bar_used[index + 1] {
            return Err(Error::Bar(index));
        }
        if !size.is_power_of_two() || size < 16 {
            return Err(Error::BarSize(size));
        }
        self.bar_used[index] = true;
        self.bar_used[index + 1] = true;
        let at = offset::BAR0 + 4 * index;
        // Type 10b (64-bit) in bits 2:1; bits 3:0 are read-only.
        self.bytes[at] = 0b100;
        let mask = !(size - 1) & !0xf;
        self.writable[at..at + 8].copy_from_slice(&mask.to_le_bytes());
        Ok(())
    }

    /// Address programmed into the 64-bit BAR at `index`.
    pub fn bar64(&self, index: usize) -> u64 {
        let at = offset::BAR0 + 4 * index;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[at..at + 8]);
        u64::from_le_bytes(b) & !0xf
    }

    /// Places the next capability at `at` (dword-aligned, at or after 0x40 and after the
    /// previous one); leaves the position alone otherwise.
    pub fn next_capability_at(&mut self, at: usize) {
        if at % 4 == 0 && at >= self.next_cap && at < CONFIG_SIZE {
            self.next_cap = at;
        }
    }

    /// Appends a capability: `body` starts at its ID byte (the next pointer is filled in);
    /// `writable` masks bits of `body` software may change. Returns its offset.
    pub fn add_capability(&mut self, body: &[u8], writable: &[u8]) -> Result<usize, Error> {
        let at = self.next_cap;
        let len = body.len().max(2);
        if at + len > CONFIG_SIZE {
            return Err(Error::NoRoom(len));
        }
        self.bytes[at..at + body.len()].copy_from_slice(body);
        self.bytes[at + 1] = 0;
        for (i, m) in writable.iter().enumerate().take(body.len()) {
            self.writable[at + i] = *m;
        }
        match self.last_cap {
            Some(prev) => self.bytes[prev + 1] = at as u8,
            None => {
                self.bytes[offset::CAP_PTR] = at as u8;
                let status = u16::from_le_bytes([self.bytes[6], self.bytes[7]]) | STATUS_CAP_LIST;
                self.set16(offset::STATUS, status);
            }
        }
        self.last_cap = Some(at);
        self.next_cap = (at + len + 3) & !3;
        Ok(at)
    }

    /// Reads `size` (1, 2 or 4) bytes at `offset`; all-ones outside the space.
    pub fn read(&self, offset: usize, size: usize) -> u32 {
        let Some(src) = self.bytes.get(offset..offset + size).filter(|_| size <= 4) else {
            return !0;
        };
        src.iter()
            .rev()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
    }

    /// Writes `size` (1, 2 or 4) bytes at `offset`, honouring read-only and W1C bits.
    pub fn write(&mut self, offset: usize, size: usize, value: u32) {
        if size > 4 || offset + size > CONFIG_SIZE {
            return;
        }
        for i in 0..size {
            let at = offset + i;
            let v = (value >> (8 * i)) as u8;
            let w = self.writable[at];
            self.bytes[at] = (self.bytes[at] & !w) | (v & w);
            self.bytes[at] &= !(v & self.w1c[at]);
        }
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.read(offset::COMMAND, 2) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        Ids {
            vendor: 0x1b36,
            device: 0x000d,
            class: 0x0c0330,
            revision: 1,
            subsystem_vendor: 0x1af4,
            subsystem: 0x1100,
        }
    }

    #[test]
    fn header_fields_are_read_only() {
        let mut c = ConfigSpace::new(ids());
        assert_eq!(c.read(0, 4), 0x000d_1b36);
        assert_eq!(c.read(8, 4), 0x0c03_3001);
        c.write(0, 4, 0xffff_ffff);
        c.write(8, 4, 0);
        assert_eq!(c.read(0, 4), 0x000d_1b36);
        assert_eq!(c.read(8, 4), 0x0c03_3001);
        assert_eq!(c.read(0x3d, 1), 0, "no interrupt pin");
        assert_eq!(c.read(0x100, 4), !0);
    }

    #[test]
    fn command_and_status() {
        let mut c = ConfigSpace::new(ids());
        c.write(offset::COMMAND, 2, 0xffff);
        assert_eq!(c.command(), COMMAND_WRITABLE);
        c.set_read_only(offset::STATUS, &0x8000u16.to_le_bytes());
        c.write(offset::STATUS, 2, 0x8000);
        assert_eq!(c.read(offset::STATUS, 2), 0);
    }

    #[test]
    fn bar_sizing() {
        let mut c = ConfigSpace::new(ids());
        c.add_bar64(0, 0x1_0000).unwrap();
        assert_eq!(c.read(0x10, 4), 0b100);
        c.write(0x10, 4, 0xffff_ffff);
        c.write(0x14, 4, 0xffff_ffff);
        assert_eq!(c.read(0x10, 4), 0xffff_0004);
        assert_eq!(c.read(0x14, 4), 0xffff_ffff);
        c.write(0x10, 4, 0x1234_5678);
        c.write(0x14, 4, 0x80);
        assert_eq!(c.bar64(0), 0x80_1234_0000);
        assert_eq!(c.read(0x18, 4), 0, "BAR 2 unimplemented");
        c.write(0x18, 4, !0);
        assert_eq!(c.read(0x18, 4), 0);
        c.write(offset::ROM, 4, !0);
        assert_eq!(c.read(offset::ROM, 4), 0, "no expansion ROM");
        assert_eq!(c.add_bar64(1, 0x1000), Err(Error::Bar(1)));
        assert_eq!(c.add_bar64(2, 0x1001), Err(Error::BarSize(0x1001)));
    }

    #[test]
    fn capability_list() {
        let mut c = ConfigSpace::new(ids());
        let a = c
            .add_capability(&[0x11, 0xee, 0, 0], &[0, 0, 0, 0xc0])
            .unwrap();
        let b = c.add_capability(&[0x01, 0, 0, 0, 0, 0, 0, 0], &[]).unwrap();
        assert_eq!(c.read(offset::CAP_PTR, 1) as usize, a);
        assert_eq!(c.read(a + 1, 1) as usize, b);
        assert_eq!(c.read(b + 1, 1), 0);
        assert!(c.read(offset::STATUS, 2) as u16 & STATUS_CAP_LIST != 0);
        c.write(a + 2, 2, 0xffff);
        assert_eq!(c.read(a + 2, 2), 0xc000);
    }
}
