//! Slot, endpoint and input control contexts (xHCI 1.2 §6.2), 32-byte entries (CSZ = 0).

/// Size of one context entry (HCCPARAMS1.CSZ = 0).
pub const CONTEXT_SIZE: u64 = 32;
/// Size of a device context: slot context + 31 endpoint contexts.
pub const DEVICE_CONTEXT_SIZE: u64 = 32 * CONTEXT_SIZE;
/// Offset of the slot context inside an input context (after the input control context).
pub const INPUT_SLOT_OFFSET: u64 = CONTEXT_SIZE;

/// Offset of endpoint context `dci` (1..=31) inside a device context.
pub fn device_ep_offset(dci: u8) -> u64 {
    u64::from(dci) * CONTEXT_SIZE
}

/// Offset of endpoint context `dci` (1..=31) inside an input context.
pub fn input_ep_offset(dci: u8) -> u64 {
    (u64::from(dci) + 1) * CONTEXT_SIZE
}

/// Slot State values (§6.2.2 DW3 bits 31:27).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SlotState {
    /// Disabled or Enabled (not yet addressed).
    DisabledEnabled = 0,
    /// Default: addressed with BSR = 1, or after Reset Device.
    Default = 1,
    /// Addressed.
    Addressed = 2,
    /// Configured.
    Configured = 3,
}

/// Endpoint State values (§6.2.3 DW0 bits 2:0).
///
/// ```text
///            Configure EP / Address Device          doorbell
///  Disabled ───────────────────────────────► Running ◄────── Stopped
///     ▲            stall/error │     │ Stop Endpoint            ▲
///     │ drop / Disable Slot    ▼     └──────────────────────────┤
///     └────────────────────  Halted ── Reset Endpoint ──────────┘
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EndpointState {
    /// Not configured.
    Disabled = 0,
    /// Processing its transfer ring (or waiting for a doorbell).
    Running = 1,
    /// Halted by a stall or an error; Reset Endpoint moves it to Stopped.
    Halted = 2,
    /// Stopped by Stop Endpoint or Reset Endpoint; a doorbell restarts it.
    Stopped = 3,
    /// Error (stream or ring error; Set TR Dequeue clears it).
    Error = 4,
}

/// Endpoint Type values (§6.2.3 DW1 bits 5:3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum EndpointType {
    IsochOut = 1,
    BulkOut = 2,
    InterruptOut = 3,
    Control = 4,
    IsochIn = 5,
    BulkIn = 6,
    InterruptIn = 7,
}

impl EndpointType {
    /// Decodes the 3-bit field; `None` for "not valid" (0).
    pub fn from_bits(v: u8) -> Option<Self> {
        use EndpointType::*;
        Some(match v & 7 {
            1 => IsochOut,
            2 => BulkOut,
            3 => InterruptOut,
            4 => Control,
            5 => IsochIn,
            6 => BulkIn,
            7 => InterruptIn,
            _ => return None,
        })
    }

    /// True for IN endpoints (the control endpoint is bidirectional and reports false).
    pub fn is_in(self) -> bool {
        matches!(
            self,
            EndpointType::IsochIn | EndpointType::BulkIn | EndpointType::InterruptIn
        )
    }

    /// True for isochronous endpoints.
    pub fn is_isoch(self) -> bool {
        matches!(self, EndpointType::IsochIn | EndpointType::IsochOut)
    }

    /// True for interrupt endpoints.
    pub fn is_interrupt(self) -> bool {
        matches!(self, EndpointType::InterruptIn | EndpointType::InterruptOut)
    }
}

macro_rules! context_entry {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name(pub [u32; 8]);

        impl $name {
            /// Decodes the little-endian wire form.
            pub fn from_bytes(b: [u8; 32]) -> Self {
                let mut dw = [0u32; 8];
                for (i, d) in dw.iter_mut().enumerate() {
                    *d = u32::from_le_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
                }
                $name(dw)
            }

            /// Encodes the little-endian wire form.
            pub fn to_bytes(self) -> [u8; 32] {
                let mut b = [0u8; 32];
                for (i, d) in self.0.iter().enumerate() {
                    b[i * 4..i * 4 + 4].copy_from_slice(&d.to_le_bytes());
                }
                b
            }
        }
    };
}

context_entry!(
    /// Input Control Context (§6.2.5.1): drop flags (DW0) and add flags (DW1).
    InputControlContext
);
context_entry!(
    /// Slot Context (§6.2.2).
    SlotContext
);
context_entry!(
    /// Endpoint Context (§6.2.3).
    EndpointContext
);

impl InputControlContext {
    /// Drop Context flag for context index `i` (D0..D31).
    pub fn drop(&self, i: u8) -> bool {
        i < 32 && self.0[0] & (1 << i) != 0
    }

    /// Add Context flag for context index `i` (A0..A31).
    pub fn add(&self, i: u8) -> bool {
        i < 32 && self.0[1] & (1 << i) != 0
    }
}

impl SlotContext {
    /// Context Entries (DW0 bits 31:27): index of the last valid endpoint context.
    pub fn context_entries(&self) -> u8 {
        (self.0[0] >> 27) as u8
    }

    /// Sets Context Entries.
    pub fn set_context_entries(&mut self, n: u8) {
        self.0[0] = (self.0[0] & !(0x1f << 27)) | (u32::from(n & 0x1f) << 27);
    }

    /// Root Hub Port Number (DW1 bits 23:16), one-based.
    pub fn root_hub_port(&self) -> u8 {
        (self.0[1] >> 16) as u8
    }

    /// Max Exit Latency (DW1 bits 15:0).
    pub fn max_exit_latency(&self) -> u16 {
        self.0[1] as u16
    }

    /// Interrupter Target (DW2 bits 31:22).
    pub fn interrupter_target(&self) -> u16 {
        (self.0[2] >> 22) as u16
    }

    /// Sets Max Exit Latency and Interrupter Target from `other` (Evaluate Context).
    pub fn take_evaluable(&mut self, other: &SlotContext) {
        self.0[1] = (self.0[1] & !0xffff) | (other.0[1] & 0xffff);
        self.0[2] = (self.0[2] & !(0x3ff << 22)) | (other.0[2] & (0x3ff << 22));
    }

    /// USB Device Address (DW3 bits 7:0).
    pub fn device_address(&self) -> u8 {
        self.0[3] as u8
    }

    /// Slot State (DW3 bits 31:27), raw.
    pub fn slot_state_bits(&self) -> u8 {
        (self.0[3] >> 27) as u8
    }

    /// Sets Slot State and USB Device Address.
    pub fn set_state(&mut self, state: SlotState, address: u8) {
        self.0[3] =
            (self.0[3] & !(0x1f << 27 | 0xff)) | ((state as u32) << 27) | u32::from(address);
    }
}

impl EndpointContext {
    /// Endpoint State (DW0 bits 2:0), raw.
    pub fn state_bits(&self) -> u8 {
        (self.0[0] & 7) as u8
    }

    /// Sets Endpoint State.
    pub fn set_state(&mut self, s: EndpointState) {
        self.0[0] = (self.0[0] & !7) | s as u32;
    }

    /// Mult (DW0 bits 9:8): bursts per service interval, less one (SuperSpeed isoch; 0 else).
    pub fn mult(&self) -> u8 {
        ((self.0[0] >> 8) & 3) as u8
    }

    /// Max Primary Streams (DW0 bits 14:10).
    pub fn max_pstreams(&self) -> u8 {
        ((self.0[0] >> 10) & 0x1f) as u8
    }

    /// Interval (DW0 bits 23:16): the service interval is 2^Interval × 125 µs.
    pub fn interval(&self) -> u8 {
        (self.0[0] >> 16) as u8
    }

    /// Endpoint Type (DW1 bits 5:3).
    pub fn ep_type(&self) -> Option<EndpointType> {
        EndpointType::from_bits(((self.0[1] >> 3) & 7) as u8)
    }

    /// Max Packet Size (DW1 bits 31:16).
    pub fn max_packet_size(&self) -> u16 {
        (self.0[1] >> 16) as u16
    }

    /// Max Burst Size (DW1 bits 15:8): packets per burst, less one (at high speed, the extra
    /// transactions per microframe of a high-bandwidth endpoint).
    pub fn max_burst(&self) -> u8 {
        (self.0[1] >> 8) as u8
    }

    /// Sets Max Packet Size.
    pub fn set_max_packet_size(&mut self, mps: u16) {
        self.0[1] = (self.0[1] & 0xffff) | (u32::from(mps) << 16);
    }

    /// TR Dequeue Pointer (DW2..DW3, bits 63:4).
    pub fn dequeue(&self) -> u64 {
        (u64::from(self.0[2]) | (u64::from(self.0[3]) << 32)) & !0xf
    }

    /// Dequeue Cycle State (DW2 bit 0).
    pub fn dcs(&self) -> bool {
        self.0[2] & 1 != 0
    }

    /// Sets the TR Dequeue Pointer and DCS.
    pub fn set_dequeue(&mut self, ptr: u64, dcs: bool) {
        let v = (ptr & !0xf) | u64::from(dcs);
        self.0[2] = v as u32;
        self.0[3] = (v >> 32) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn check_struct_sizes() {
        assert_eq!(size_of::<SlotContext>(), 32);
        assert_eq!(size_of::<EndpointContext>(), 32);
        assert_eq!(size_of::<InputControlContext>(), 32);
        assert_eq!(CONTEXT_SIZE, 32);
        assert_eq!(DEVICE_CONTEXT_SIZE, 1024);
        assert_eq!(input_ep_offset(1), 64);
        assert_eq!(device_ep_offset(31), 992);
    }

    #[test]
    fn slot_fields() {
        let mut s = SlotContext::default();
        s.0[0] = 1 << 27;
        s.0[1] = 3 << 16 | 0x55;
        s.0[2] = 5 << 22;
        assert_eq!(s.context_entries(), 1);
        assert_eq!(s.root_hub_port(), 3);
        assert_eq!(s.interrupter_target(), 5);
        s.set_state(SlotState::Addressed, 7);
        assert_eq!(s.slot_state_bits(), 2);
        assert_eq!(s.device_address(), 7);
        s.set_context_entries(4);
        assert_eq!(s.context_entries(), 4);
        let mut t = SlotContext::default();
        t.take_evaluable(&s);
        assert_eq!(t.max_exit_latency(), 0x55);
        assert_eq!(t.interrupter_target(), 5);
        assert_eq!(t.root_hub_port(), 0);
    }

    #[test]
    fn endpoint_fields() {
        let mut e = EndpointContext::default();
        e.0[1] = (512 << 16) | (15 << 8) | (6 << 3);
        e.0[0] = (3 << 16) | (2 << 8);
        assert_eq!(e.ep_type(), Some(EndpointType::BulkIn));
        assert_eq!(e.max_packet_size(), 512);
        assert_eq!(e.max_burst(), 15);
        assert_eq!(e.mult(), 2);
        assert_eq!(e.interval(), 3);
        e.set_dequeue(0x1_2345_6780, true);
        assert_eq!(e.dequeue(), 0x1_2345_6780);
        assert!(e.dcs());
        e.set_state(EndpointState::Halted);
        assert_eq!(e.state_bits(), 2);
        assert_eq!(EndpointContext::from_bytes(e.to_bytes()), e);
    }

    #[test]
    fn input_control_flags() {
        let icc = InputControlContext([0b100, 0b11, 0, 0, 0, 0, 0, 0]);
        assert!(icc.drop(2) && !icc.drop(3));
        assert!(icc.add(0) && icc.add(1) && !icc.add(2));
        assert!(!icc.add(40));
    }
}
