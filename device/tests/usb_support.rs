//! Test-side helpers shared by the `usb_*` tests (included with `#[path]`): control transfers
//! through the `UsbDevice` trait, as the xHCI makes them, and a descriptor parser written from
//! the specs, independent of the device's own serialisation code.
#![allow(dead_code)]

use sideband_device::usb::{BusTime, SetupPacket, TransferResult, UsbDevice};

pub const T0: BusTime = BusTime(0);

pub fn setup(request_type: u8, request: u8, value: u16, index: u16, length: u16) -> SetupPacket {
    SetupPacket {
        request_type,
        request,
        value,
        index,
        length,
    }
}

/// A device-to-host control transfer with a wLength-sized buffer: the data, or the result.
pub fn control_in(dev: &mut dyn UsbDevice, s: SetupPacket) -> Result<Vec<u8>, TransferResult> {
    let mut buf = vec![0u8; usize::from(s.length)];
    match dev.control(s, &mut buf, T0) {
        TransferResult::Complete(n) => {
            assert!(n <= buf.len(), "device claims more bytes than the buffer");
            buf.truncate(n);
            Ok(buf)
        }
        other => Err(other),
    }
}

/// A host-to-device control transfer with `data` as the data stage (wLength = its length).
pub fn control_out(dev: &mut dyn UsbDevice, mut s: SetupPacket, data: &[u8]) -> TransferResult {
    s.length = data.len() as u16;
    let mut buf = data.to_vec();
    dev.control(s, &mut buf, T0)
}

pub fn get_descriptor(dev: &mut dyn UsbDevice, kind: u8, index: u8, length: u16) -> Vec<u8> {
    let s = setup(0x80, 6, u16::from(kind) << 8 | u16::from(index), 0, length);
    control_in(dev, s).expect("GET_DESCRIPTOR")
}

pub fn set_address(dev: &mut dyn UsbDevice, address: u16) -> TransferResult {
    control_out(dev, setup(0x00, 5, address, 0, 0), &[])
}

pub fn set_configuration(dev: &mut dyn UsbDevice, value: u16) -> TransferResult {
    control_out(dev, setup(0x00, 9, value, 0, 0), &[])
}

pub fn set_interface(dev: &mut dyn UsbDevice, interface: u16, alt: u16) -> TransferResult {
    control_out(dev, setup(0x01, 11, alt, interface, 0), &[])
}

/// Address 1, configuration 1.
pub fn enumerate(dev: &mut dyn UsbDevice) {
    dev.reset();
    assert_eq!(set_address(dev, 1), TransferResult::Complete(0));
    assert_eq!(set_configuration(dev, 1), TransferResult::Complete(0));
}

pub fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One endpoint and the class-specific descriptors after it.
#[derive(Clone, Debug)]
pub struct ParsedEndpoint {
    pub raw: Vec<u8>,
    pub class_specific: Vec<Vec<u8>>,
}

impl ParsedEndpoint {
    pub fn address(&self) -> u8 {
        self.raw[2]
    }
    pub fn attributes(&self) -> u8 {
        self.raw[3]
    }
    pub fn max_packet_size(&self) -> u16 {
        le16(&self.raw, 4)
    }
    pub fn interval(&self) -> u8 {
        self.raw[6]
    }
    /// wMaxPacketSize × (1 + additional transactions).
    pub fn payload(&self) -> usize {
        let m = self.max_packet_size();
        usize::from(m & 0x7FF) * (1 + usize::from((m >> 11) & 3))
    }
}

/// One interface alternate setting with everything up to the next interface descriptor.
#[derive(Clone, Debug)]
pub struct ParsedInterface {
    pub raw: Vec<u8>,
    pub class_specific: Vec<Vec<u8>>,
    pub endpoints: Vec<ParsedEndpoint>,
}

impl ParsedInterface {
    pub fn number(&self) -> u8 {
        self.raw[2]
    }
    pub fn alternate(&self) -> u8 {
        self.raw[3]
    }
    pub fn num_endpoints(&self) -> u8 {
        self.raw[4]
    }
    pub fn class_triple(&self) -> (u8, u8, u8) {
        (self.raw[5], self.raw[6], self.raw[7])
    }
    /// The class-specific descriptor with this subtype (byte 2).
    pub fn cs(&self, subtype: u8) -> Option<&Vec<u8>> {
        self.class_specific.iter().find(|d| d[2] == subtype)
    }
}

#[derive(Clone, Debug)]
pub struct ParsedConfig {
    pub header: Vec<u8>,
    pub iads: Vec<Vec<u8>>,
    pub interfaces: Vec<ParsedInterface>,
}

impl ParsedConfig {
    pub fn total_length(&self) -> u16 {
        le16(&self.header, 2)
    }
    pub fn num_interfaces(&self) -> u8 {
        self.header[4]
    }
    pub fn alt(&self, number: u8, alternate: u8) -> &ParsedInterface {
        self.interfaces
            .iter()
            .find(|i| i.number() == number && i.alternate() == alternate)
            .unwrap_or_else(|| panic!("no interface {number} alt {alternate}"))
    }
    pub fn alts_of(&self, number: u8) -> Vec<&ParsedInterface> {
        self.interfaces
            .iter()
            .filter(|i| i.number() == number)
            .collect()
    }
}

/// Splits a configuration into descriptors and groups them, checking the framing rules of
/// USB 2.0 §9.5 on the way: every bLength ≥ 2 and inside the blob, standard descriptor lengths,
/// bNumEndpoints matching the endpoints that follow.
pub fn parse_config(bytes: &[u8]) -> ParsedConfig {
    assert!(
        bytes.len() >= 9 && bytes[0] == 9 && bytes[1] == 2,
        "configuration header"
    );
    let mut at = 9;
    let mut iads = Vec::new();
    let mut interfaces: Vec<ParsedInterface> = Vec::new();
    while at < bytes.len() {
        let len = usize::from(bytes[at]);
        assert!(
            len >= 2 && at + len <= bytes.len(),
            "descriptor framing at {at}"
        );
        let d = bytes[at..at + len].to_vec();
        match d[1] {
            0x0B => {
                assert_eq!(len, 8, "IAD length");
                iads.push(d);
            }
            0x04 => {
                assert_eq!(len, 9, "interface length");
                interfaces.push(ParsedInterface {
                    raw: d,
                    class_specific: vec![],
                    endpoints: vec![],
                });
            }
            0x05 => {
                assert!(len == 7 || len == 9, "endpoint length {len}");
                let i = interfaces.last_mut().expect("endpoint before interface");
                i.endpoints.push(ParsedEndpoint {
                    raw: d,
                    class_specific: vec![],
                });
            }
            // CS_INTERFACE, or the HID descriptor of the buttons interface.
            0x24 | 0x21 => {
                let i = interfaces
                    .last_mut()
                    .expect("CS_INTERFACE before interface");
                assert!(i.endpoints.is_empty(), "CS_INTERFACE after an endpoint");
                i.class_specific.push(d);
            }
            0x25 => {
                let i = interfaces.last_mut().expect("CS_ENDPOINT before interface");
                let e = i.endpoints.last_mut().expect("CS_ENDPOINT before endpoint");
                e.class_specific.push(d);
            }
            other => panic!("unexpected descriptor type {other:#04x}"),
        }
        at += len;
    }
    for i in &interfaces {
        assert_eq!(
            usize::from(i.num_endpoints()),
            i.endpoints.len(),
            "bNumEndpoints"
        );
    }
    ParsedConfig {
        header: bytes[..9].to_vec(),
        iads,
        interfaces,
    }
}

/// Reads the whole configuration the way Linux does: 9 bytes first, then wTotalLength.
pub fn read_config(dev: &mut dyn UsbDevice) -> ParsedConfig {
    let head = get_descriptor(dev, 2, 0, 9);
    assert_eq!(head.len(), 9);
    let total = le16(&head, 2);
    let all = get_descriptor(dev, 2, 0, total);
    assert_eq!(
        all.len(),
        usize::from(total),
        "wTotalLength matches the data"
    );
    parse_config(&all)
}

/// GET_DESCRIPTOR(STRING, index) in US English, decoded.
pub fn get_string(dev: &mut dyn UsbDevice, index: u8) -> String {
    let s = control_in(dev, setup(0x80, 6, 0x0300 | u16::from(index), 0x0409, 255))
        .expect("GET_DESCRIPTOR(STRING)");
    assert_eq!(usize::from(s[0]), s.len());
    assert_eq!(s[1], 3);
    let units: Vec<u16> = s[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).unwrap()
}
