//! TRB layouts (xHCI 1.2 §6.4): one view type per TRB kind over a raw 16-byte [`Trb`].

use crate::usb::SetupPacket;

/// Size of every TRB in bytes.
pub const TRB_SIZE: u64 = 16;

/// A TRB as it sits in a ring: four little-endian dwords, held here in host order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trb(pub [u32; 4]);

/// TRB Type field values (§6.4.6 table 6-91).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum TrbType {
    Normal = 1,
    SetupStage = 2,
    DataStage = 3,
    StatusStage = 4,
    Isoch = 5,
    Link = 6,
    EventData = 7,
    NoOp = 8,
    EnableSlot = 9,
    DisableSlot = 10,
    AddressDevice = 11,
    ConfigureEndpoint = 12,
    EvaluateContext = 13,
    ResetEndpoint = 14,
    StopEndpoint = 15,
    SetTrDequeue = 16,
    ResetDevice = 17,
    ForceEvent = 18,
    NegotiateBandwidth = 19,
    SetLatencyTolerance = 20,
    GetPortBandwidth = 21,
    ForceHeader = 22,
    NoOpCommand = 23,
    TransferEvent = 32,
    CommandCompletionEvent = 33,
    PortStatusChangeEvent = 34,
    HostControllerEvent = 37,
}

impl TrbType {
    /// Decodes a TRB Type field; `None` for reserved and unsupported values.
    pub fn from_u8(v: u8) -> Option<Self> {
        use TrbType::*;
        Some(match v {
            1 => Normal,
            2 => SetupStage,
            3 => DataStage,
            4 => StatusStage,
            5 => Isoch,
            6 => Link,
            7 => EventData,
            8 => NoOp,
            9 => EnableSlot,
            10 => DisableSlot,
            11 => AddressDevice,
            12 => ConfigureEndpoint,
            13 => EvaluateContext,
            14 => ResetEndpoint,
            15 => StopEndpoint,
            16 => SetTrDequeue,
            17 => ResetDevice,
            18 => ForceEvent,
            19 => NegotiateBandwidth,
            20 => SetLatencyTolerance,
            21 => GetPortBandwidth,
            22 => ForceHeader,
            23 => NoOpCommand,
            32 => TransferEvent,
            33 => CommandCompletionEvent,
            34 => PortStatusChangeEvent,
            37 => HostControllerEvent,
            _ => return None,
        })
    }
}

/// Completion codes (§6.4.5 table 6-90).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum CompletionCode {
    Success = 1,
    DataBufferError = 2,
    BabbleDetected = 3,
    UsbTransactionError = 4,
    TrbError = 5,
    StallError = 6,
    ResourceError = 7,
    BandwidthError = 8,
    NoSlotsAvailable = 9,
    InvalidStreamType = 10,
    SlotNotEnabled = 11,
    EndpointNotEnabled = 12,
    ShortPacket = 13,
    RingUnderrun = 14,
    RingOverrun = 15,
    VfEventRingFull = 16,
    ParameterError = 17,
    BandwidthOverrun = 18,
    ContextStateError = 19,
    NoPingResponse = 20,
    EventRingFullError = 21,
    IncompatibleDevice = 22,
    MissedService = 23,
    CommandRingStopped = 24,
    CommandAborted = 25,
    Stopped = 26,
    StoppedLengthInvalid = 27,
}

impl Trb {
    /// Decodes the little-endian wire form.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        let dw = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Trb([dw(0), dw(4), dw(8), dw(12)])
    }

    /// Encodes the little-endian wire form.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        for (i, d) in self.0.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&d.to_le_bytes());
        }
        b
    }

    /// Parameter field (DW0..DW1): a pointer or immediate data.
    pub fn parameter(self) -> u64 {
        u64::from(self.0[0]) | (u64::from(self.0[1]) << 32)
    }

    /// Status field (DW2).
    pub fn status(self) -> u32 {
        self.0[2]
    }

    /// Control field (DW3).
    pub fn control(self) -> u32 {
        self.0[3]
    }

    /// Cycle bit (DW3 bit 0).
    pub fn cycle(self) -> bool {
        self.0[3] & 1 != 0
    }

    /// The same TRB with the cycle bit set to `c`.
    pub fn with_cycle(mut self, c: bool) -> Self {
        self.0[3] = (self.0[3] & !1) | u32::from(c);
        self
    }

    /// Raw TRB Type field (DW3 bits 15:10).
    pub fn type_field(self) -> u8 {
        ((self.0[3] >> 10) & 0x3f) as u8
    }

    /// Decoded TRB type.
    pub fn trb_type(self) -> Option<TrbType> {
        TrbType::from_u8(self.type_field())
    }

    /// Builds a TRB of `ty` from its parameter, status and the control bits above the type.
    pub fn new(ty: TrbType, parameter: u64, status: u32, control: u32) -> Self {
        Trb([
            parameter as u32,
            (parameter >> 32) as u32,
            status,
            (control & !(0x3f << 10)) | ((ty as u32) << 10),
        ])
    }

    fn bit(self, n: u32) -> bool {
        self.0[3] & (1 << n) != 0
    }

    /// Chain bit (transfer TRBs, DW3 bit 4).
    pub fn chain(self) -> bool {
        self.bit(4)
    }

    /// Interrupt On Completion (DW3 bit 5).
    pub fn ioc(self) -> bool {
        self.bit(5)
    }

    /// Interrupt-on Short Packet (DW3 bit 2).
    pub fn isp(self) -> bool {
        self.bit(2)
    }

    /// Immediate Data (DW3 bit 6): the parameter holds up to 8 data bytes.
    pub fn idt(self) -> bool {
        self.bit(6)
    }

    /// Block Event Interrupt (DW3 bit 9, Normal/Isoch/Event Data TRBs).
    pub fn bei(self) -> bool {
        self.bit(9)
    }

    /// TRB Transfer Length (DW2 bits 16:0).
    pub fn transfer_length(self) -> u32 {
        self.0[2] & 0x1_ffff
    }

    /// Interrupter Target (DW2 bits 31:22) of a transfer TRB.
    pub fn interrupter_target(self) -> u16 {
        (self.0[2] >> 22) as u16
    }

    /// Slot ID (DW3 bits 31:24) of a command TRB.
    pub fn slot_id(self) -> u8 {
        (self.0[3] >> 24) as u8
    }

    /// Endpoint ID (DW3 bits 20:16) of an endpoint command.
    pub fn endpoint_id(self) -> u8 {
        ((self.0[3] >> 16) & 0x1f) as u8
    }
}

macro_rules! trb_view {
    ($(#[$doc:meta])* $name:ident, $ty:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name(pub Trb);

        impl $name {
            /// The TRB type this view is for.
            pub const TYPE: TrbType = TrbType::$ty;

            /// Views `trb` as this kind, if its type field says so.
            pub fn cast(trb: Trb) -> Option<Self> {
                (trb.trb_type() == Some(TrbType::$ty)).then_some($name(trb))
            }
        }
    };
}

trb_view!(
    /// Normal TRB (§6.4.1.1): one data buffer of a bulk, interrupt or data-stage TD.
    NormalTrb,
    Normal
);
trb_view!(
    /// Setup Stage TRB (§6.4.1.2.1): the SETUP packet as immediate data.
    SetupStageTrb,
    SetupStage
);
trb_view!(
    /// Data Stage TRB (§6.4.1.2.2).
    DataStageTrb,
    DataStage
);
trb_view!(
    /// Status Stage TRB (§6.4.1.2.3).
    StatusStageTrb,
    StatusStage
);
trb_view!(
    /// Isoch TRB (§6.4.1.3): first TRB of an isochronous TD.
    IsochTrb,
    Isoch
);
trb_view!(
    /// Link TRB (§6.4.4.1): jumps to another ring segment.
    LinkTrb,
    Link
);
trb_view!(
    /// Event Data TRB (§6.4.4.2): makes the xHC post its parameter in a transfer event.
    EventDataTrb,
    EventData
);
trb_view!(
    /// No Op transfer TRB (§6.4.4.3).
    NoOpTrb,
    NoOp
);
trb_view!(
    /// Address Device command (§6.4.3.4).
    AddressDeviceCmd,
    AddressDevice
);
trb_view!(
    /// Configure Endpoint command (§6.4.3.5).
    ConfigureEndpointCmd,
    ConfigureEndpoint
);
trb_view!(
    /// Reset Endpoint command (§6.4.3.7).
    ResetEndpointCmd,
    ResetEndpoint
);
trb_view!(
    /// Stop Endpoint command (§6.4.3.8).
    StopEndpointCmd,
    StopEndpoint
);
trb_view!(
    /// Set TR Dequeue Pointer command (§6.4.3.9).
    SetTrDequeueCmd,
    SetTrDequeue
);

impl SetupStageTrb {
    /// The SETUP packet held in the parameter field.
    pub fn setup(self) -> SetupPacket {
        SetupPacket::from_bytes(self.0.parameter().to_le_bytes())
    }

    /// Transfer Type (DW3 bits 17:16): 0 no data, 2 OUT data, 3 IN data.
    pub fn trt(self) -> u8 {
        ((self.0.control() >> 16) & 3) as u8
    }
}

impl DataStageTrb {
    /// Direction (DW3 bit 16): true for IN.
    pub fn dir_in(self) -> bool {
        self.0.bit(16)
    }
}

impl StatusStageTrb {
    /// Direction (DW3 bit 16): true for IN.
    pub fn dir_in(self) -> bool {
        self.0.bit(16)
    }
}

impl IsochTrb {
    /// Start Isoch ASAP (DW3 bit 31).
    pub fn sia(self) -> bool {
        self.0.bit(31)
    }

    /// Frame ID (DW3 bits 30:20): the 1 ms frame the TD is for, when SIA is clear.
    pub fn frame_id(self) -> u16 {
        ((self.0.control() >> 20) & 0x7ff) as u16
    }
}

impl LinkTrb {
    /// Ring Segment Pointer (16-byte aligned; low bits are reserved and ignored).
    pub fn segment(self) -> u64 {
        self.0.parameter() & !0xf
    }

    /// Toggle Cycle (DW3 bit 1).
    pub fn toggle_cycle(self) -> bool {
        self.0.bit(1)
    }
}

impl AddressDeviceCmd {
    /// Input Context Pointer (16-byte aligned).
    pub fn input_context(self) -> u64 {
        self.0.parameter() & !0xf
    }

    /// Block Set Address Request (DW3 bit 9).
    pub fn bsr(self) -> bool {
        self.0.bit(9)
    }
}

impl ConfigureEndpointCmd {
    /// Input Context Pointer (16-byte aligned).
    pub fn input_context(self) -> u64 {
        self.0.parameter() & !0xf
    }

    /// Deconfigure (DW3 bit 9).
    pub fn deconfigure(self) -> bool {
        self.0.bit(9)
    }
}

impl ResetEndpointCmd {
    /// Transfer State Preserve (DW3 bit 9).
    pub fn tsp(self) -> bool {
        self.0.bit(9)
    }
}

impl StopEndpointCmd {
    /// Suspend (DW3 bit 23).
    pub fn suspend(self) -> bool {
        self.0.bit(23)
    }
}

impl SetTrDequeueCmd {
    /// New TR Dequeue Pointer (bits 63:4).
    pub fn pointer(self) -> u64 {
        self.0.parameter() & !0xf
    }

    /// Dequeue Cycle State (bit 0).
    pub fn dcs(self) -> bool {
        self.0.parameter() & 1 != 0
    }

    /// Stream Context Type (bits 3:1).
    pub fn sct(self) -> u8 {
        ((self.0.parameter() >> 1) & 7) as u8
    }

    /// Stream ID (DW2 bits 31:16).
    pub fn stream_id(self) -> u16 {
        (self.0.status() >> 16) as u16
    }
}

/// Transfer Event TRB (§6.4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferEvent {
    /// The TRB the event is for, or the Event Data TRB's parameter when `event_data` is set.
    pub pointer: u64,
    /// Residual bytes not transferred (or EDTLA for Event Data events), 24 bits.
    pub length: u32,
    /// Completion code.
    pub code: CompletionCode,
    /// Event Data flag (ED).
    pub event_data: bool,
    /// Endpoint ID (DCI).
    pub endpoint_id: u8,
    /// Slot ID.
    pub slot_id: u8,
}

impl TransferEvent {
    /// Encodes the event; the cycle bit is left clear.
    pub fn to_trb(self) -> Trb {
        Trb::new(
            TrbType::TransferEvent,
            self.pointer,
            (self.length & 0xff_ffff) | ((self.code as u32) << 24),
            (u32::from(self.event_data) << 2)
                | (u32::from(self.endpoint_id & 0x1f) << 16)
                | (u32::from(self.slot_id) << 24),
        )
    }
}

/// Command Completion Event TRB (§6.4.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandCompletionEvent {
    /// Address of the command TRB.
    pub command: u64,
    /// Completion code.
    pub code: CompletionCode,
    /// Slot ID (the new slot for Enable Slot).
    pub slot_id: u8,
}

impl CommandCompletionEvent {
    /// Encodes the event; the cycle bit is left clear.
    pub fn to_trb(self) -> Trb {
        Trb::new(
            TrbType::CommandCompletionEvent,
            self.command,
            (self.code as u32) << 24,
            u32::from(self.slot_id) << 24,
        )
    }
}

/// Port Status Change Event TRB (§6.4.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatusChangeEvent {
    /// One-based root hub port number.
    pub port: u8,
}

impl PortStatusChangeEvent {
    /// Encodes the event; the cycle bit is left clear.
    pub fn to_trb(self) -> Trb {
        Trb::new(
            TrbType::PortStatusChangeEvent,
            u64::from(self.port) << 24,
            (CompletionCode::Success as u32) << 24,
            0,
        )
    }
}

/// Host Controller Event TRB (§6.4.2.6), used here for Event Ring Full Error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostControllerEvent {
    /// Completion code.
    pub code: CompletionCode,
}

impl HostControllerEvent {
    /// Encodes the event; the cycle bit is left clear.
    pub fn to_trb(self) -> Trb {
        Trb::new(TrbType::HostControllerEvent, 0, (self.code as u32) << 24, 0)
    }
}

/// Completion code field (DW2 bits 31:24) of an event TRB.
pub fn event_code(trb: Trb) -> u8 {
    (trb.status() >> 24) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn check_struct_sizes() {
        assert_eq!(size_of::<Trb>(), 16);
        assert_eq!(size_of::<NormalTrb>(), 16);
        assert_eq!(size_of::<SetupStageTrb>(), 16);
        assert_eq!(size_of::<DataStageTrb>(), 16);
        assert_eq!(size_of::<StatusStageTrb>(), 16);
        assert_eq!(size_of::<IsochTrb>(), 16);
        assert_eq!(size_of::<LinkTrb>(), 16);
        assert_eq!(size_of::<EventDataTrb>(), 16);
        assert_eq!(size_of::<NoOpTrb>(), 16);
        assert_eq!(size_of::<AddressDeviceCmd>(), 16);
        assert_eq!(size_of::<SetTrDequeueCmd>(), 16);
        assert_eq!(TRB_SIZE, 16);
    }

    #[test]
    fn bytes_round_trip() {
        let t = Trb([0x1122_3344, 0x5566_7788, 0x99aa_bbcc, 0xddee_ff01]);
        assert_eq!(Trb::from_bytes(t.to_bytes()), t);
        assert_eq!(t.to_bytes()[0], 0x44);
        assert_eq!(t.parameter(), 0x5566_7788_1122_3344);
    }

    #[test]
    fn type_and_cycle() {
        let t = Trb::new(TrbType::Link, 0x1000, 0, 1 << 1);
        assert_eq!(t.trb_type(), Some(TrbType::Link));
        assert!(!t.cycle());
        assert!(t.with_cycle(true).cycle());
        let l = LinkTrb::cast(t).unwrap();
        assert!(l.toggle_cycle());
        assert_eq!(l.segment(), 0x1000);
        assert!(NormalTrb::cast(t).is_none());
        assert_eq!(TrbType::from_u8(0), None);
        assert_eq!(TrbType::from_u8(63), None);
    }

    #[test]
    fn transfer_fields() {
        let t = Trb::new(
            TrbType::Isoch,
            0,
            100 | (2 << 22),
            (1 << 31) | (0x7ff << 20) | 0x34,
        );
        assert_eq!(t.transfer_length(), 100);
        assert_eq!(t.interrupter_target(), 2);
        assert!(t.ioc() && t.chain() && t.isp());
        let i = IsochTrb::cast(t).unwrap();
        assert!(i.sia());
        assert_eq!(i.frame_id(), 0x7ff);
    }

    #[test]
    fn setup_stage_decodes_packet() {
        let setup = SetupPacket {
            request_type: 0x80,
            request: 6,
            value: 0x0100,
            index: 0,
            length: 18,
        };
        let p = u64::from_le_bytes(setup.to_bytes());
        let t = SetupStageTrb(Trb::new(TrbType::SetupStage, p, 8, (3 << 16) | (1 << 6)));
        assert_eq!(t.setup(), setup);
        assert_eq!(t.trt(), 3);
    }

    #[test]
    fn events_encode() {
        let e = TransferEvent {
            pointer: 0x1230,
            length: 7,
            code: CompletionCode::ShortPacket,
            event_data: true,
            endpoint_id: 3,
            slot_id: 5,
        }
        .to_trb();
        assert_eq!(e.trb_type(), Some(TrbType::TransferEvent));
        assert_eq!(event_code(e), 13);
        assert_eq!(e.status() & 0xff_ffff, 7);
        assert_eq!(e.slot_id(), 5);
        assert_eq!(e.endpoint_id(), 3);
        assert!(e.control() & 4 != 0);
        let c = CommandCompletionEvent {
            command: 0x40,
            code: CompletionCode::Success,
            slot_id: 1,
        }
        .to_trb();
        assert_eq!(c.parameter(), 0x40);
        assert_eq!(c.slot_id(), 1);
        let p = PortStatusChangeEvent { port: 3 }.to_trb();
        assert_eq!(p.parameter() >> 24, 3);
    }
}
