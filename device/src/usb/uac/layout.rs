//! Where things are in the headset: interface numbers, endpoint addresses, entity ids, and the
//! format of each alternate setting. The descriptors and the request handlers both read this.

use super::format::AltFormat;
use super::profile::{AudioProfile, PlaybackSync};
use crate::usb::hid::HidButtons;

/// Interface numbers.
pub mod interface {
    /// AudioControl.
    pub const CONTROL: u8 = 0;
    /// Playback AudioStreaming.
    pub const PLAYBACK: u8 = 1;
    /// Capture AudioStreaming (implicit feedback requires it to follow playback directly).
    pub const CAPTURE: u8 = 2;
}

/// Endpoint addresses.
pub mod endpoint {
    /// Playback data, isochronous OUT.
    pub const PLAYBACK: u8 = 0x01;
    /// Explicit feedback, isochronous IN (UAC2 explicit profile).
    pub const FEEDBACK: u8 = 0x81;
    /// Capture data, isochronous IN.
    pub const CAPTURE: u8 = 0x82;
    /// Buttons, HID interrupt IN.
    pub const HID: u8 = 0x83;
}

/// Entity ids of the AudioControl topology.
pub mod entity {
    /// Input terminal: USB streaming (playback data from the host).
    pub const PLAYBACK_INPUT: u8 = 1;
    /// Feature unit on the playback path: master mute and volume.
    pub const FEATURE_UNIT: u8 = 2;
    /// Output terminal: headphones.
    pub const HEADPHONES: u8 = 3;
    /// Input terminal: microphone.
    pub const MICROPHONE: u8 = 4;
    /// Output terminal: USB streaming (capture data to the host).
    pub const CAPTURE_OUTPUT: u8 = 5;
    /// UAC2 clock source shared by both directions.
    pub const CLOCK: u8 = 9;
}

/// Which direction an alternate setting or endpoint serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host to device.
    Playback,
    /// Device to host.
    Capture,
}

/// The profile's structure as the headset presents it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadsetLayout {
    /// Formats of alternate settings 1..; alternate 0 is zero-bandwidth.
    pub formats: Vec<AltFormat>,
    /// Whether the capture interface exists.
    pub capture: bool,
    /// Whether the feedback endpoint exists.
    pub feedback: bool,
}

impl HeadsetLayout {
    /// The layout of `profile`.
    pub fn new(profile: &AudioProfile) -> Self {
        HeadsetLayout {
            formats: profile.formats.clone(),
            capture: profile.capture,
            feedback: profile.sync == PlaybackSync::ExplicitFeedback,
        }
    }

    /// The streaming direction of interface `number`, if it is a streaming interface.
    pub fn direction_of(&self, number: u8) -> Option<Direction> {
        match number {
            interface::PLAYBACK => Some(Direction::Playback),
            interface::CAPTURE if self.capture => Some(Direction::Capture),
            _ => None,
        }
    }

    /// The format of alternate setting `alternate` (None for alt 0 or out of range).
    pub fn format_of(&self, alternate: u8) -> Option<AltFormat> {
        let i = usize::from(alternate).checked_sub(1)?;
        self.formats.get(i).copied()
    }

    /// How many interfaces the audio function has (the HID interface not counted).
    pub fn interface_count(&self) -> u8 {
        if self.capture {
            3
        } else {
            2
        }
    }

    /// The HID (buttons) interface: right after the audio function, outside its association.
    pub fn hid_interface(&self) -> u8 {
        self.interface_count()
    }

    /// The buttons interface as the configuration and the headset present it.
    pub fn hid(&self) -> HidButtons {
        HidButtons::new(self.hid_interface(), endpoint::HID)
    }

    /// bInterval encoding of an interval of `uframes` (a power of two) at high speed.
    pub fn hs_binterval(uframes: u32) -> u8 {
        (uframes.max(1).trailing_zeros() + 1) as u8 // ≤ 32
    }
}
