//! A HID consumer-control interface (Device Class Definition for HID 1.11): the buttons a real
//! headset has next to its audio function (volume up/down, mute, play/pause).
//!
//! [`HidButtons`] is not a device on its own: a device function (the headset) adds
//! [`HidButtons::alternate_setting`] to its configuration and forwards the HID interface's
//! class requests, its class descriptors and its interrupt IN endpoint to it.

mod buttons;
mod report;

pub use buttons::{HidButtons, MAX_QUEUED_REPORTS};
pub use report::{hid_descriptor, Button, ParseButtonError, REPORT_DESCRIPTOR};

/// Interface class code of HID.
pub const CLASS_HID: u8 = 0x03;
/// Class descriptor type: HID descriptor.
pub const DT_HID: u8 = 0x21;
/// Class descriptor type: report descriptor.
pub const DT_REPORT: u8 = 0x22;

/// HID class request codes (HID 1.11 §7.2).
pub mod request {
    /// GET_REPORT.
    pub const GET_REPORT: u8 = 0x01;
    /// GET_IDLE.
    pub const GET_IDLE: u8 = 0x02;
    /// GET_PROTOCOL (boot devices only).
    pub const GET_PROTOCOL: u8 = 0x03;
    /// SET_REPORT.
    pub const SET_REPORT: u8 = 0x09;
    /// SET_IDLE.
    pub const SET_IDLE: u8 = 0x0A;
    /// SET_PROTOCOL (boot devices only).
    pub const SET_PROTOCOL: u8 = 0x0B;
}
