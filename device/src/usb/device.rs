//! The boundary between the host controller model and the USB device models.
//!
//! The xHCI model moves bytes between guest memory and a device through [`UsbDevice`]; device
//! models (the audio headset, the loopback test device) implement it and never see guest memory,
//! TRBs or interrupters.

/// Bus speed of an attached device, as the port reports it in PORTSC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UsbSpeed {
    /// 1.5 Mb/s.
    Low,
    /// 12 Mb/s (USB 1.1; frames of 1 ms).
    Full,
    /// 480 Mb/s (USB 2.0; microframes of 125 µs).
    High,
    /// 5 Gb/s (USB 3.x).
    Super,
}

impl UsbSpeed {
    /// True for speeds that sit on a USB 3 root port.
    pub fn is_superspeed(self) -> bool {
        matches!(self, UsbSpeed::Super)
    }
}

/// The 8-byte SETUP packet of a control transfer (USB 2.0 §9.3), fields in host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SetupPacket {
    /// bmRequestType: bit 7 direction (1 = device to host), bits 6:5 type, bits 4:0 recipient.
    pub request_type: u8,
    /// bRequest.
    pub request: u8,
    /// wValue.
    pub value: u16,
    /// wIndex.
    pub index: u16,
    /// wLength.
    pub length: u16,
}

impl SetupPacket {
    /// Decodes the little-endian wire form, as it sits in a Setup Stage TRB's immediate data.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        SetupPacket {
            request_type: b[0],
            request: b[1],
            value: u16::from_le_bytes([b[2], b[3]]),
            index: u16::from_le_bytes([b[4], b[5]]),
            length: u16::from_le_bytes([b[6], b[7]]),
        }
    }

    /// Encodes the little-endian wire form.
    pub fn to_bytes(self) -> [u8; 8] {
        let v = self.value.to_le_bytes();
        let i = self.index.to_le_bytes();
        let l = self.length.to_le_bytes();
        [
            self.request_type,
            self.request,
            v[0],
            v[1],
            i[0],
            i[1],
            l[0],
            l[1],
        ]
    }

    /// True when the data stage (if any) moves data from the device to the host.
    pub fn is_device_to_host(self) -> bool {
        self.request_type & 0x80 != 0
    }
}

/// What happened to one transfer (or one isochronous packet) on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferResult {
    /// The transfer completed; the value is the number of bytes moved (≤ the buffer length).
    Complete(usize),
    /// The device has nothing to send (interrupt/bulk IN) or cannot take data yet: try again later.
    Nak,
    /// The endpoint answered STALL (unsupported request, or the endpoint is halted).
    Stall,
    /// No handshake: CRC/timeout/babble; the host controller reports a USB Transaction Error.
    TransactionError,
}

/// Time on the bus, counted in 125 µs microframes since the controller started.
///
/// Full-speed devices see frames of 8 microframes; [`BusTime::frame`] gives the 1 ms frame number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct BusTime(pub u64);

impl BusTime {
    /// The 1 ms frame this microframe belongs to.
    pub fn frame(self) -> u64 {
        self.0 / 8
    }
}

/// A USB device as the host controller sees it.
///
/// Endpoint numbers are 1..=15 (endpoint 0 is reached through [`UsbDevice::control`]); the
/// direction is implied by the method. Each call is one transfer for control, bulk and interrupt
/// endpoints, and one packet (one service interval) for isochronous endpoints. Implementations
/// must never panic on any argument: the arguments come from an untrusted guest.
pub trait UsbDevice: Send + std::fmt::Debug {
    /// The speed the device connects at.
    fn speed(&self) -> UsbSpeed;

    /// A bus reset (port reset): the device returns to the Default state, address 0, unconfigured.
    fn reset(&mut self);

    /// A control transfer on endpoint 0. For device-to-host requests the device writes up to
    /// `data.len()` bytes (`data.len()` is wLength) and returns how many; for host-to-device
    /// requests `data` holds the data stage. SET_ADDRESS is handled here too.
    fn control(&mut self, setup: SetupPacket, data: &mut [u8], now: BusTime) -> TransferResult;

    /// Data from the host to OUT endpoint `ep`.
    fn data_out(&mut self, ep: u8, data: &[u8], now: BusTime) -> TransferResult;

    /// Data from IN endpoint `ep` to the host; the device fills at most `buf.len()` bytes.
    fn data_in(&mut self, ep: u8, buf: &mut [u8], now: BusTime) -> TransferResult;
}
