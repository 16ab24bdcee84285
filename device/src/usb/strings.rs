//! String descriptors (USB 2.0 §9.6.7): the LANGID table at index 0 and UTF-16LE strings.

use super::descriptor::descriptor_type;

/// LANGID for English (United States), the one language our devices speak.
pub const LANGID_EN_US: u16 = 0x0409;

/// The most UTF-16 code units that fit in one string descriptor (bLength is one byte).
const MAX_CODE_UNITS: usize = (255 - 2) / 2;

/// A device's strings in one language; index 1 is the first string added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringTable {
    langid: u16,
    strings: Vec<String>,
}

impl StringTable {
    /// An empty table for `langid`.
    pub fn new(langid: u16) -> Self {
        StringTable {
            langid,
            strings: Vec::new(),
        }
    }

    /// Adds a string and returns the index descriptors use to name it (`i*` fields).
    /// Returns 0 ("no string") once 255 strings exist.
    pub fn add(&mut self, s: &str) -> u8 {
        match u8::try_from(self.strings.len() + 1) {
            Ok(index) => {
                self.strings.push(s.to_owned());
                index
            }
            Err(_) => 0,
        }
    }

    /// The string at `index` (1-based), if any.
    pub fn get(&self, index: u8) -> Option<&str> {
        let i = usize::from(index).checked_sub(1)?;
        self.strings.get(i).map(String::as_str)
    }

    /// The descriptor for GET_DESCRIPTOR(STRING, index, langid); `None` when there is none.
    /// Index 0 is the LANGID table and ignores `langid`.
    pub fn descriptor(&self, index: u8, langid: u16) -> Option<Vec<u8>> {
        if index == 0 {
            let l = self.langid.to_le_bytes();
            return Some(vec![4, descriptor_type::STRING, l[0], l[1]]);
        }
        if langid != self.langid {
            return None;
        }
        let units: Vec<u16> = self
            .get(index)?
            .encode_utf16()
            .take(MAX_CODE_UNITS)
            .collect();
        let mut b = Vec::with_capacity(2 + 2 * units.len());
        b.push((2 + 2 * units.len()) as u8); // ≤ 254 by MAX_CODE_UNITS
        b.push(descriptor_type::STRING);
        for u in units {
            b.extend_from_slice(&u.to_le_bytes());
        }
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn langid_table_and_utf16() {
        let mut t = StringTable::new(LANGID_EN_US);
        let i = t.add("Hé");
        assert_eq!(i, 1);
        assert_eq!(t.descriptor(0, 0), Some(vec![4, 3, 0x09, 0x04]));
        assert_eq!(
            t.descriptor(1, LANGID_EN_US),
            Some(vec![6, 3, b'H', 0, 0xE9, 0])
        );
        assert_eq!(t.descriptor(1, 0x0407), None);
        assert_eq!(t.descriptor(2, LANGID_EN_US), None);
    }

    #[test]
    fn long_strings_are_truncated_to_fit_blength() {
        let mut t = StringTable::new(LANGID_EN_US);
        let i = t.add(&"x".repeat(300));
        let d = t.descriptor(i, LANGID_EN_US).unwrap();
        assert_eq!(d.len(), 254);
        assert_eq!(usize::from(d[0]), d.len());
    }
}
