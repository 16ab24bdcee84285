//! The consumer-control report: its descriptor, the HID class descriptor that points at it,
//! and the buttons with their bits in the one-byte input report.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::DT_HID;
use super::DT_REPORT;

/// The report descriptor: one application collection on the Consumer page with four 1-bit
/// absolute inputs (Volume Increment, Volume Decrement, Mute, Play/Pause) and four bits of
/// padding; no report IDs, so an input report is one byte.
pub const REPORT_DESCRIPTOR: [u8; 29] = [
    0x05, 0x0C, // Usage Page (Consumer)
    0x09, 0x01, // Usage (Consumer Control)
    0xA1, 0x01, // Collection (Application)
    0x15, 0x00, //   Logical Minimum (0)
    0x25, 0x01, //   Logical Maximum (1)
    0x75, 0x01, //   Report Size (1)
    0x95, 0x04, //   Report Count (4)
    0x09, 0xE9, //   Usage (Volume Increment)
    0x09, 0xEA, //   Usage (Volume Decrement)
    0x09, 0xE2, //   Usage (Mute)
    0x09, 0xCD, //   Usage (Play/Pause)
    0x81, 0x02, //   Input (Data, Variable, Absolute)
    0x95, 0x04, //   Report Count (4)
    0x81, 0x01, //   Input (Constant): padding to a byte
    0xC0, // End Collection
];

/// The HID descriptor (HID 1.11 §6.2.1): bcdHID 1.11, no country, one report descriptor.
pub fn hid_descriptor() -> [u8; 9] {
    let len = (REPORT_DESCRIPTOR.len() as u16).to_le_bytes();
    [9, DT_HID, 0x11, 0x01, 0, 1, DT_REPORT, len[0], len[1]]
}

/// A button of the consumer-control report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Button {
    /// Volume Increment (Linux KEY_VOLUMEUP).
    VolumeUp,
    /// Volume Decrement (KEY_VOLUMEDOWN).
    VolumeDown,
    /// Mute (KEY_MUTE).
    Mute,
    /// Play/Pause (KEY_PLAYPAUSE).
    PlayPause,
}

impl Button {
    /// Every button, in report bit order.
    pub const ALL: [Button; 4] = [
        Button::VolumeUp,
        Button::VolumeDown,
        Button::Mute,
        Button::PlayPause,
    ];

    /// The button's bit in the input report.
    pub fn bit(self) -> u8 {
        match self {
            Button::VolumeUp => 1 << 0,
            Button::VolumeDown => 1 << 1,
            Button::Mute => 1 << 2,
            Button::PlayPause => 1 << 3,
        }
    }

    /// The name requests use.
    pub fn name(self) -> &'static str {
        match self {
            Button::VolumeUp => "vol-up",
            Button::VolumeDown => "vol-down",
            Button::Mute => "mute",
            Button::PlayPause => "play-pause",
        }
    }
}

impl fmt::Display for Button {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A button name that is not one of [`Button::ALL`].
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("unknown button '{0}' (vol-up, vol-down, mute, play-pause)")]
pub struct ParseButtonError(pub String);

impl FromStr for Button {
    type Err = ParseButtonError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Button::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| ParseButtonError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hid_descriptor_names_the_report_length() {
        let d = hid_descriptor();
        assert_eq!(d[0] as usize, d.len());
        assert_eq!(
            u16::from_le_bytes([d[7], d[8]]) as usize,
            REPORT_DESCRIPTOR.len()
        );
        assert_eq!(u16::from_le_bytes([d[2], d[3]]), 0x0111);
    }

    #[test]
    fn report_descriptor_items_are_well_formed() {
        // Walk the short items: each prefix's low two bits give the data size (3 means 4).
        let mut i = 0;
        let mut depth = 0i32;
        let mut input_bits = 0u32;
        let (mut size, mut count) = (0u32, 0u32);
        while i < REPORT_DESCRIPTOR.len() {
            let prefix = REPORT_DESCRIPTOR[i];
            let n = [0, 1, 2, 4][usize::from(prefix & 3)];
            let data = REPORT_DESCRIPTOR[i + 1..i + 1 + n]
                .iter()
                .rev()
                .fold(0u32, |a, b| a << 8 | u32::from(*b));
            match prefix & 0xFC {
                0xA0 => depth += 1,
                0xC0 => depth -= 1,
                0x74 => size = data,
                0x94 => count = data,
                0x80 => input_bits += size * count,
                _ => {}
            }
            i += 1 + n;
        }
        assert_eq!(i, REPORT_DESCRIPTOR.len());
        assert_eq!(depth, 0);
        assert_eq!(input_bits, 8, "one byte per input report");
    }

    #[test]
    fn names_round_trip_and_bits_are_distinct() {
        let mut all = 0u8;
        for b in Button::ALL {
            assert_eq!(b.name().parse::<Button>(), Ok(b));
            assert_eq!(all & b.bit(), 0);
            all |= b.bit();
        }
        assert_eq!(all, 0x0F);
        assert!("volume".parse::<Button>().is_err());
    }
}
