//! The xHCI issue's test device: a high-speed, vendor-specific bulk loopback device. What the
//! host writes to bulk OUT endpoint 1 comes back on bulk IN endpoint 1. It carries just the
//! standard descriptors and requests Linux needs to enumerate it; the full USB device
//! framework lives in `crate::usb`.

use std::collections::VecDeque;

use crate::usb::{BusTime, SetupPacket, TransferResult, UsbDevice, UsbSpeed};

/// USB vendor ID (pid.codes).
pub const VENDOR_ID: u16 = 0x1209;
/// USB product ID (pid.codes test PID).
pub const PRODUCT_ID: u16 = 0x0003;
/// Bytes the device holds before it NAKs OUT transfers.
pub const CAPACITY: usize = 1 << 20;

const MAX_PACKET: u16 = 512;

const DEVICE_DESCRIPTOR: [u8; 18] = [
    18,
    1,
    0x00,
    0x02, // bcdUSB 2.00
    0xff,
    0x00,
    0x00, // vendor-specific class
    64,   // bMaxPacketSize0
    VENDOR_ID as u8,
    (VENDOR_ID >> 8) as u8,
    PRODUCT_ID as u8,
    (PRODUCT_ID >> 8) as u8,
    0x00,
    0x01, // bcdDevice 1.00
    1,
    2,
    3, // iManufacturer, iProduct, iSerialNumber
    1, // bNumConfigurations
];

const CONFIG_DESCRIPTOR: [u8; 32] = [
    // Configuration: total length 32, one interface, value 1, bus powered, 100 mA.
    9,
    2,
    32,
    0,
    1,
    1,
    0,
    0x80,
    50,
    // Interface 0, alt 0, two endpoints, vendor-specific.
    9,
    4,
    0,
    0,
    2,
    0xff,
    0,
    0,
    0,
    // Endpoint 0x01 bulk OUT, 512 bytes.
    7,
    5,
    0x01,
    2,
    MAX_PACKET as u8,
    (MAX_PACKET >> 8) as u8,
    0,
    // Endpoint 0x81 bulk IN, 512 bytes.
    7,
    5,
    0x81,
    2,
    MAX_PACKET as u8,
    (MAX_PACKET >> 8) as u8,
    0,
];

const STRINGS: [&str; 3] = ["sideband", "xHCI bulk loopback", "0001"];

/// The loopback device.
#[derive(Debug, Default)]
pub struct LoopbackDevice {
    address: u8,
    configuration: u8,
    queue: VecDeque<u8>,
}

impl LoopbackDevice {
    /// An unconfigured device with an empty loopback buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address SET_ADDRESS gave it.
    pub fn address(&self) -> u8 {
        self.address
    }

    /// The current configuration value.
    pub fn configuration(&self) -> u8 {
        self.configuration
    }

    /// Bytes waiting to be read back.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn string(index: u8) -> Option<Vec<u8>> {
        if index == 0 {
            return Some(vec![4, 3, 0x09, 0x04]);
        }
        let s = STRINGS.get(usize::from(index) - 1)?;
        let mut d = vec![0, 3];
        for u in s.encode_utf16() {
            d.extend_from_slice(&u.to_le_bytes());
        }
        d[0] = d.len() as u8;
        Some(d)
    }

    fn reply(data: &mut [u8], src: &[u8]) -> TransferResult {
        let n = data.len().min(src.len());
        data[..n].copy_from_slice(&src[..n]);
        TransferResult::Complete(n)
    }
}

impl UsbDevice for LoopbackDevice {
    fn speed(&self) -> UsbSpeed {
        UsbSpeed::High
    }

    fn reset(&mut self) {
        self.address = 0;
        self.configuration = 0;
        self.queue.clear();
    }

    fn control(&mut self, setup: SetupPacket, data: &mut [u8], _now: BusTime) -> TransferResult {
        match (setup.request_type, setup.request) {
            (0x80, 6) => {
                let [index, ty] = setup.value.to_le_bytes();
                match ty {
                    1 => Self::reply(data, &DEVICE_DESCRIPTOR),
                    2 if index == 0 => Self::reply(data, &CONFIG_DESCRIPTOR),
                    3 => match Self::string(index) {
                        Some(s) => Self::reply(data, &s),
                        None => TransferResult::Stall,
                    },
                    _ => TransferResult::Stall,
                }
            }
            (0x00, 5) if setup.value <= 127 => {
                self.address = setup.value as u8;
                TransferResult::Complete(0)
            }
            (0x00, 9) if setup.value <= 1 => {
                self.configuration = setup.value as u8;
                TransferResult::Complete(0)
            }
            (0x80, 8) => Self::reply(data, &[self.configuration]),
            (0x80..=0x82, 0) => Self::reply(data, &[0, 0]),
            (0x81, 10) => Self::reply(data, &[0]),
            (0x01, 11) if setup.value == 0 => TransferResult::Complete(0),
            (0x00 | 0x02, 1 | 3) => TransferResult::Complete(0),
            _ => TransferResult::Stall,
        }
    }

    fn data_out(&mut self, ep: u8, data: &[u8], _now: BusTime) -> TransferResult {
        if ep != 1 {
            return TransferResult::Stall;
        }
        if self.queue.len() + data.len() > CAPACITY {
            return TransferResult::Nak;
        }
        self.queue.extend(data);
        TransferResult::Complete(data.len())
    }

    fn data_in(&mut self, ep: u8, buf: &mut [u8], _now: BusTime) -> TransferResult {
        if ep != 1 {
            return TransferResult::Stall;
        }
        if self.queue.is_empty() {
            return TransferResult::Nak;
        }
        let n = buf.len().min(self.queue.len());
        for (b, q) in buf.iter_mut().zip(self.queue.drain(..n)) {
            *b = q;
        }
        TransferResult::Complete(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(dev: &mut LoopbackDevice, value: u16, len: usize) -> (TransferResult, Vec<u8>) {
        let mut buf = vec![0; len];
        let setup = SetupPacket {
            request_type: 0x80,
            request: 6,
            value,
            index: 0,
            length: len as u16,
        };
        let r = dev.control(setup, &mut buf, BusTime(0));
        (r, buf)
    }

    #[test]
    fn descriptors() {
        let mut d = LoopbackDevice::new();
        let (r, b) = get(&mut d, 0x0100, 64);
        assert_eq!(r, TransferResult::Complete(18));
        assert_eq!(&b[..4], &[18, 1, 0, 2]);
        let (r, b) = get(&mut d, 0x0200, 9);
        assert_eq!(r, TransferResult::Complete(9));
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), 32);
        let (r, _) = get(&mut d, 0x0200, 255);
        assert_eq!(r, TransferResult::Complete(32));
        let (r, b) = get(&mut d, 0x0302, 255);
        assert_eq!(r, TransferResult::Complete(2 + 2 * STRINGS[1].len()));
        assert_eq!(b[1], 3);
        assert_eq!(get(&mut d, 0x0309, 255).0, TransferResult::Stall);
        assert_eq!(get(&mut d, 0x0600, 10).0, TransferResult::Stall);
    }

    #[test]
    fn loopback_and_nak() {
        let mut d = LoopbackDevice::new();
        let mut buf = [0u8; 8];
        assert_eq!(d.data_in(1, &mut buf, BusTime(0)), TransferResult::Nak);
        assert_eq!(
            d.data_out(1, b"hello", BusTime(0)),
            TransferResult::Complete(5)
        );
        assert_eq!(
            d.data_in(1, &mut buf, BusTime(0)),
            TransferResult::Complete(5)
        );
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(d.data_out(2, b"x", BusTime(0)), TransferResult::Stall);
        let big = vec![0u8; CAPACITY];
        assert_eq!(
            d.data_out(1, &big, BusTime(0)),
            TransferResult::Complete(CAPACITY)
        );
        assert_eq!(d.data_out(1, b"x", BusTime(0)), TransferResult::Nak);
        d.reset();
        assert_eq!(d.queued(), 0);
    }
}
