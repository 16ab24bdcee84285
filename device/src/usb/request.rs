//! Decoding of bmRequestType and the standard request codes (USB 2.0 §9.3, §9.4).

use super::device::SetupPacket;

/// Standard bRequest codes (USB 2.0 table 9-4).
pub mod standard_request {
    /// GET_STATUS.
    pub const GET_STATUS: u8 = 0;
    /// CLEAR_FEATURE.
    pub const CLEAR_FEATURE: u8 = 1;
    /// SET_FEATURE.
    pub const SET_FEATURE: u8 = 3;
    /// SET_ADDRESS.
    pub const SET_ADDRESS: u8 = 5;
    /// GET_DESCRIPTOR.
    pub const GET_DESCRIPTOR: u8 = 6;
    /// SET_DESCRIPTOR.
    pub const SET_DESCRIPTOR: u8 = 7;
    /// GET_CONFIGURATION.
    pub const GET_CONFIGURATION: u8 = 8;
    /// SET_CONFIGURATION.
    pub const SET_CONFIGURATION: u8 = 9;
    /// GET_INTERFACE.
    pub const GET_INTERFACE: u8 = 10;
    /// SET_INTERFACE.
    pub const SET_INTERFACE: u8 = 11;
    /// SYNCH_FRAME.
    pub const SYNCH_FRAME: u8 = 12;
}

/// Standard feature selectors (USB 2.0 table 9-6).
pub mod feature {
    /// ENDPOINT_HALT (recipient endpoint).
    pub const ENDPOINT_HALT: u16 = 0;
    /// DEVICE_REMOTE_WAKEUP (recipient device).
    pub const DEVICE_REMOTE_WAKEUP: u16 = 1;
    /// TEST_MODE (recipient device).
    pub const TEST_MODE: u16 = 2;
}

/// bmRequestType bits 6:5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// Chapter 9 requests.
    Standard,
    /// Class requests.
    Class,
    /// Vendor requests.
    Vendor,
    /// The reserved value 3.
    Reserved,
}

/// bmRequestType bits 4:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// The device.
    Device,
    /// An interface (wIndex low byte).
    Interface,
    /// An endpoint (wIndex low byte is the address).
    Endpoint,
    /// Other.
    Other,
    /// Reserved values 4..=31.
    Reserved,
}

/// Accessors for the fields packed into a SETUP packet.
pub trait SetupFields {
    /// bmRequestType bits 6:5.
    fn kind(&self) -> RequestKind;
    /// bmRequestType bits 4:0.
    fn recipient(&self) -> Recipient;
    /// wValue high byte (descriptor type, control selector).
    fn value_high(&self) -> u8;
    /// wValue low byte (descriptor index, channel number).
    fn value_low(&self) -> u8;
    /// wIndex high byte (entity id for audio requests).
    fn index_high(&self) -> u8;
    /// wIndex low byte (interface number or endpoint address).
    fn index_low(&self) -> u8;
}

impl SetupFields for SetupPacket {
    fn kind(&self) -> RequestKind {
        match (self.request_type >> 5) & 3 {
            0 => RequestKind::Standard,
            1 => RequestKind::Class,
            2 => RequestKind::Vendor,
            _ => RequestKind::Reserved,
        }
    }

    fn recipient(&self) -> Recipient {
        match self.request_type & 0x1F {
            0 => Recipient::Device,
            1 => Recipient::Interface,
            2 => Recipient::Endpoint,
            3 => Recipient::Other,
            _ => Recipient::Reserved,
        }
    }

    fn value_high(&self) -> u8 {
        self.value.to_be_bytes()[0]
    }

    fn value_low(&self) -> u8 {
        self.value.to_be_bytes()[1]
    }

    fn index_high(&self) -> u8 {
        self.index.to_be_bytes()[0]
    }

    fn index_low(&self) -> u8 {
        self.index.to_be_bytes()[1]
    }
}

/// Copies `src` into the data stage, truncated to both wLength and the buffer; returns the count.
pub fn reply(setup: SetupPacket, data: &mut [u8], src: &[u8]) -> usize {
    let n = src.len().min(usize::from(setup.length)).min(data.len());
    data[..n].copy_from_slice(&src[..n]);
    n
}

/// The host-to-device data stage when it is exactly `len` bytes (wLength and buffer agree).
pub fn exact_out_data(setup: SetupPacket, data: &[u8], len: usize) -> Option<&[u8]> {
    if usize::from(setup.length) != len || setup.is_device_to_host() {
        return None;
    }
    data.get(..len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_decode() {
        let s = SetupPacket {
            request_type: 0xA1,
            request: 1,
            value: 0x0201,
            index: 0x0A03,
            length: 4,
        };
        assert_eq!(s.kind(), RequestKind::Class);
        assert_eq!(s.recipient(), Recipient::Interface);
        assert_eq!((s.value_high(), s.value_low()), (2, 1));
        assert_eq!((s.index_high(), s.index_low()), (0x0A, 3));
    }

    #[test]
    fn reply_truncates() {
        let s = SetupPacket {
            length: 2,
            ..Default::default()
        };
        let mut buf = [0u8; 8];
        assert_eq!(reply(s, &mut buf, &[1, 2, 3]), 2);
        assert_eq!(reply(s, &mut buf[..1], &[1, 2, 3]), 1);
    }
}
