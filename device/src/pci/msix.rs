//! MSI-X (PCI 3.0 §6.8.2): the capability, the vector table and the Pending Bit Array.
//!
//! A vector that fires while masked (per vector or by Function Mask) sets its pending bit and
//! is delivered when unmasked. QEMU's vfio-user client emulates the table itself and only
//! forwards PBA reads, but the model keeps its own copy so that either side can own it.

/// MSI-X capability ID.
pub const CAP_ID: u8 = 0x11;
/// Size of the MSI-X capability in configuration space.
pub const CAP_LEN: usize = 12;
/// Message Control: MSI-X Enable.
pub const CTRL_ENABLE: u16 = 1 << 15;
/// Message Control: Function Mask.
pub const CTRL_FUNCTION_MASK: u16 = 1 << 14;
/// Size of one table entry.
pub const ENTRY_SIZE: u64 = 16;
/// Vector Control: Mask Bit.
const VECTOR_MASKED: u32 = 1;

/// The capability's bytes and writable mask for `vectors` vectors with the table at
/// `table_offset` and the PBA at `pba_offset`, both in BAR `bir`.
pub fn capability(
    vectors: u16,
    bir: u8,
    table_offset: u32,
    pba_offset: u32,
) -> ([u8; 12], [u8; 12]) {
    let mut b = [0u8; CAP_LEN];
    b[0] = CAP_ID;
    b[2..4].copy_from_slice(&(vectors.saturating_sub(1) & 0x7ff).to_le_bytes());
    b[4..8].copy_from_slice(&(table_offset | u32::from(bir & 7)).to_le_bytes());
    b[8..12].copy_from_slice(&(pba_offset | u32::from(bir & 7)).to_le_bytes());
    let mut w = [0u8; CAP_LEN];
    w[3] = ((CTRL_ENABLE | CTRL_FUNCTION_MASK) >> 8) as u8;
    (b, w)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    addr: u64,
    data: u32,
    control: u32,
}

/// The vector table, PBA and the capability's enable and function-mask state.
#[derive(Clone, Debug)]
pub struct MsixTable {
    entries: Vec<Entry>,
    pba: Vec<u64>,
    enabled: bool,
    function_mask: bool,
}

impl MsixTable {
    /// `vectors` entries, all masked, MSI-X disabled (the reset state).
    pub fn new(vectors: u16) -> Self {
        let n = usize::from(vectors);
        MsixTable {
            entries: vec![
                Entry {
                    addr: 0,
                    data: 0,
                    control: VECTOR_MASKED,
                };
                n
            ],
            pba: vec![0; n.div_ceil(64)],
            enabled: false,
            function_mask: false,
        }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no vectors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Message address, data and mask bit of `vector`.
    pub fn entry(&self, vector: u16) -> Option<(u64, u32, bool)> {
        self.entries
            .get(usize::from(vector))
            .map(|e| (e.addr, e.data, e.control & VECTOR_MASKED != 0))
    }

    /// True when `vector` is pending.
    pub fn is_pending(&self, vector: u16) -> bool {
        let v = usize::from(vector);
        self.pba
            .get(v / 64)
            .is_some_and(|w| w & (1 << (v % 64)) != 0)
    }

    fn masked(&self, v: usize) -> bool {
        self.function_mask || self.entries[v].control & VECTOR_MASKED != 0
    }

    /// Takes the pending vectors that are no longer masked (to deliver now).
    fn release(&mut self) -> Vec<u16> {
        if !self.enabled {
            return Vec::new();
        }
        let mut out = Vec::new();
        for v in 0..self.entries.len() {
            if self.is_pending(v as u16) && !self.masked(v) {
                self.pba[v / 64] &= !(1 << (v % 64));
                out.push(v as u16);
            }
        }
        out
    }

    /// Updates from the capability's Message Control; returns vectors to deliver now.
    pub fn set_control(&mut self, control: u16) -> Vec<u16> {
        self.enabled = control & CTRL_ENABLE != 0;
        self.function_mask = control & CTRL_FUNCTION_MASK != 0;
        self.release()
    }

    /// A vector fires: true when it must be delivered now; false when it is left pending
    /// (masked) or dropped (MSI-X disabled, or no such vector).
    pub fn signal(&mut self, vector: u16) -> bool {
        let v = usize::from(vector);
        if !self.enabled || v >= self.entries.len() {
            return false;
        }
        if self.masked(v) {
            self.pba[v / 64] |= 1 << (v % 64);
            return false;
        }
        true
    }

    /// Reads `size` (4 or 8) bytes of the table at `offset`.
    pub fn table_read(&self, offset: u64, size: u32) -> u64 {
        let lo = self.table_read32(offset);
        if size == 8 {
            lo | (self.table_read32(offset + 4) << 32)
        } else {
            lo
        }
    }

    fn table_read32(&self, offset: u64) -> u64 {
        let Some(e) = self.entries.get((offset / ENTRY_SIZE) as usize) else {
            return 0;
        };
        u64::from(match offset % ENTRY_SIZE {
            0 => e.addr as u32,
            4 => (e.addr >> 32) as u32,
            8 => e.data,
            12 => e.control,
            _ => 0,
        })
    }

    /// Writes `size` (4 or 8) bytes of the table at `offset`; returns vectors to deliver now
    /// (pending ones that got unmasked).
    pub fn table_write(&mut self, offset: u64, size: u32, value: u64) -> Vec<u16> {
        self.table_write32(offset, value as u32);
        if size == 8 {
            self.table_write32(offset + 4, (value >> 32) as u32);
        }
        self.release()
    }

    fn table_write32(&mut self, offset: u64, v: u32) {
        let Some(e) = self.entries.get_mut((offset / ENTRY_SIZE) as usize) else {
            return;
        };
        match offset % ENTRY_SIZE {
            0 => e.addr = (e.addr & !0xffff_ffff) | u64::from(v & !3),
            4 => e.addr = (e.addr & 0xffff_ffff) | (u64::from(v) << 32),
            8 => e.data = v,
            12 => e.control = v & VECTOR_MASKED,
            _ => {}
        }
    }

    /// Reads `size` (4 or 8) bytes of the PBA at `offset`.
    pub fn pba_read(&self, offset: u64, size: u32) -> u64 {
        let word = self.pba.get((offset / 8) as usize).copied().unwrap_or(0);
        let v = word >> ((offset % 8) * 8);
        if size == 8 {
            v
        } else {
            v & 0xffff_ffff
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_vector_pends_until_unmasked() {
        let mut t = MsixTable::new(16);
        assert!(!t.signal(2), "disabled");
        assert!(!t.is_pending(2));
        t.set_control(CTRL_ENABLE);
        assert!(!t.signal(2), "masked at reset");
        assert!(t.is_pending(2));
        assert_eq!(t.pba_read(0, 4), 0b100);
        t.table_write(2 * 16, 4, 0xfee0_0000);
        t.table_write(2 * 16 + 8, 4, 0x41);
        assert_eq!(t.table_write(2 * 16 + 12, 4, 0), vec![2]);
        assert!(!t.is_pending(2));
        assert!(t.signal(2));
        assert_eq!(t.entry(2), Some((0xfee0_0000, 0x41, false)));
        assert_eq!(t.table_read(2 * 16, 8), 0xfee0_0000);
        assert_eq!(t.table_read(2 * 16 + 8, 4), 0x41);
    }

    #[test]
    fn function_mask() {
        let mut t = MsixTable::new(4);
        t.set_control(CTRL_ENABLE | CTRL_FUNCTION_MASK);
        t.table_write(12, 4, 0);
        assert!(!t.signal(0));
        assert!(t.is_pending(0));
        assert_eq!(t.set_control(CTRL_ENABLE), vec![0]);
        assert!(t.signal(0));
        assert!(!t.signal(9), "no such vector");
        assert_eq!(t.table_read(0x1000, 4), 0);
        t.table_write(0x1000, 4, 1);
    }

    #[test]
    fn capability_bytes() {
        let (b, w) = capability(16, 0, 0x3000, 0x3800);
        assert_eq!(b[0], CAP_ID);
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), 15);
        assert_eq!(u32::from_le_bytes([b[4], b[5], b[6], b[7]]), 0x3000);
        assert_eq!(u32::from_le_bytes([b[8], b[9], b[10], b[11]]), 0x3800);
        assert_eq!(w[3], 0xc0);
        assert_eq!(MsixTable::new(65).pba_read(8, 4), 0);
    }
}
