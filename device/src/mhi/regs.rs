//! The MHI register space (BAR 0 offsets) and the protocol's numbers.

/// Length of the MHI register space.
pub const MHIREGLEN: u64 = 0x00;
/// MHI version.
pub const MHIVER: u64 = 0x08;
/// Channel and event ring counts (the host writes NER and NHWER).
pub const MHICFG: u64 = 0x10;
/// Offset of the channel doorbells.
pub const CHDBOFF: u64 = 0x18;
/// Offset of the event ring doorbells.
pub const ERDBOFF: u64 = 0x20;
/// Offset of the BHI registers.
pub const BHIOFF: u64 = 0x28;
/// Offset of the BHIe registers.
pub const BHIEOFF: u64 = 0x2c;
/// MHI control: requested state [15:8], reset bit 1.
pub const MHICTRL: u64 = 0x38;
/// MHI status: state [15:8], SYSERR bit 2, READY bit 0.
pub const MHISTATUS: u64 = 0x48;
/// Channel context array base (64-bit, low dword first).
pub const CCABAP: u64 = 0x58;
/// Event context array base.
pub const ECABAP: u64 = 0x60;
/// Command ring context base.
pub const CRCBAP: u64 = 0x68;
/// Command ring doorbell.
pub const CRDB: u64 = 0x70;

/// Where the BHI block starts.
pub const BHI_BASE: u64 = 0x100;
/// Where the (unused) BHIe block starts.
pub const BHIE_BASE: u64 = 0x200;
/// BHI: execution environment (offset in the BHI block).
pub const BHI_EXECENV: u64 = 0x28;
/// BHI: serial number.
pub const BHI_SERIALNU: u64 = 0x40;
/// Channel doorbells: 8 bytes per channel, the host writes the high dword, then the low one.
pub const CHDB_BASE: u64 = 0x400;
/// Event ring doorbells, 8 bytes each.
pub const ERDB_BASE: u64 = 0x800;
/// End of the register space.
pub const REGS_END: u64 = 0x1000;

/// Channels the host may address (its `max_channels`).
pub const CHANNELS: u8 = 128;
/// Event rings the device serves.
pub const EVENT_RINGS: u8 = 16;

/// MHICTRL reset bit.
pub const CTRL_RESET: u32 = 1 << 1;
/// MHISTATUS ready bit.
pub const STATUS_READY: u32 = 1 << 0;
/// MHISTATUS system error bit.
pub const STATUS_SYSERR: u32 = 1 << 2;

/// MHI states (MHICTRL / MHISTATUS [15:8]).
pub mod state {
    /// Reset.
    pub const RESET: u8 = 0;
    /// Ready for the host to set up contexts.
    pub const READY: u8 = 1;
    /// Active.
    pub const M0: u8 = 2;
    /// Suspended: no transfers, no events.
    pub const M3: u8 = 5;
    /// System error.
    pub const SYS_ERR: u8 = 0xff;
}

/// Execution environments (BHI_EXECENV).
pub mod ee {
    /// Mission mode: the device's main firmware runs.
    pub const AMSS: u8 = 2;
}

/// Ring element types (dword 1 [23:16]).
pub mod element {
    /// A transfer descriptor.
    pub const TRANSFER: u8 = 0x02;
    /// Reset channel command.
    pub const RESET_CHAN: u8 = 0x10;
    /// Stop channel command.
    pub const STOP_CHAN: u8 = 0x11;
    /// Start channel command.
    pub const START_CHAN: u8 = 0x12;
    /// No-op command.
    pub const NOOP: u8 = 0x01;
    /// State change event.
    pub const STATE_CHANGE_EVENT: u8 = 0x20;
    /// Command completion event.
    pub const CMD_COMPLETION_EVENT: u8 = 0x21;
    /// Transfer event.
    pub const TX_EVENT: u8 = 0x22;
    /// Execution environment event.
    pub const EE_EVENT: u8 = 0x40;
}

/// Completion codes (event dword 0 [31:24]).
pub mod code {
    /// Command succeeded.
    pub const SUCCESS: u8 = 0x01;
    /// End of transfer.
    pub const EOT: u8 = 0x02;
    /// The data did not fit the buffer.
    pub const OVERFLOW: u8 = 0x03;
    /// Anything else that failed.
    pub const UNDEFINED_ERR: u8 = 0x10;
    /// The element was malformed.
    pub const BAD_TRE: u8 = 0x11;
}

/// Channel states in a channel context (chcfg [7:0]).
pub mod chstate {
    /// Disabled.
    pub const DISABLED: u32 = 0;
    /// Running.
    pub const RUNNING: u32 = 2;
    /// Stopped.
    pub const STOP: u32 = 4;
}

/// Channel types in a channel context (chtype).
pub mod chtype {
    /// Host to device (UL).
    pub const OUTBOUND: u32 = 1;
    /// Device to host (DL).
    pub const INBOUND: u32 = 2;
}
