//! Constants of the USB Audio Device Class specifications 1.0 and 2.0 (Appendix A of each).

/// bInterfaceClass / bFunctionClass AUDIO.
pub const AUDIO: u8 = 0x01;
/// bInterfaceSubClass AUDIOCONTROL.
pub const SUBCLASS_AUDIOCONTROL: u8 = 0x01;
/// bInterfaceSubClass AUDIOSTREAMING.
pub const SUBCLASS_AUDIOSTREAMING: u8 = 0x02;
/// bInterfaceProtocol / bFunctionProtocol of UAC2 (IP_VERSION_02_00).
pub const PROTOCOL_UAC2: u8 = 0x20;
/// bInterfaceProtocol of UAC1.
pub const PROTOCOL_UAC1: u8 = 0x00;
/// bFunctionSubClass FUNCTION_SUBCLASS_UNDEFINED.
pub const FUNCTION_SUBCLASS_UNDEFINED: u8 = 0x00;

/// Class-specific descriptor type CS_INTERFACE.
pub const CS_INTERFACE: u8 = 0x24;
/// Class-specific descriptor type CS_ENDPOINT.
pub const CS_ENDPOINT: u8 = 0x25;

/// AudioControl descriptor subtypes.
pub mod ac {
    /// HEADER.
    pub const HEADER: u8 = 0x01;
    /// INPUT_TERMINAL.
    pub const INPUT_TERMINAL: u8 = 0x02;
    /// OUTPUT_TERMINAL.
    pub const OUTPUT_TERMINAL: u8 = 0x03;
    /// FEATURE_UNIT.
    pub const FEATURE_UNIT: u8 = 0x06;
    /// CLOCK_SOURCE (UAC2 only).
    pub const CLOCK_SOURCE: u8 = 0x0A;
}

/// AudioStreaming descriptor subtypes.
pub mod as_subtype {
    /// AS_GENERAL.
    pub const GENERAL: u8 = 0x01;
    /// FORMAT_TYPE.
    pub const FORMAT_TYPE: u8 = 0x02;
}

/// EP_GENERAL, the class-specific endpoint descriptor subtype.
pub const EP_GENERAL: u8 = 0x01;
/// FORMAT_TYPE_I.
pub const FORMAT_TYPE_I: u8 = 0x01;
/// UAC1 wFormatTag PCM.
pub const UAC1_FORMAT_PCM: u16 = 0x0001;
/// UAC2 bmFormats bit for PCM.
pub const UAC2_FORMAT_PCM: u32 = 0x0000_0001;
/// UAC2 audio function category HEADSET.
pub const CATEGORY_HEADSET: u8 = 0x04;

/// Terminal types (Universal Serial Bus Device Class Definition for Terminal Types).
pub mod terminal {
    /// USB streaming.
    pub const USB_STREAMING: u16 = 0x0101;
    /// Microphone.
    pub const MICROPHONE: u16 = 0x0201;
    /// Headphones.
    pub const HEADPHONES: u16 = 0x0302;
}

/// UAC2 request codes (A.14).
pub mod uac2_request {
    /// CUR.
    pub const CUR: u8 = 0x01;
    /// RANGE.
    pub const RANGE: u8 = 0x02;
}

/// UAC1 request codes (A.9).
pub mod uac1_request {
    /// SET_CUR.
    pub const SET_CUR: u8 = 0x01;
    /// GET_CUR.
    pub const GET_CUR: u8 = 0x81;
    /// GET_MIN.
    pub const GET_MIN: u8 = 0x82;
    /// GET_MAX.
    pub const GET_MAX: u8 = 0x83;
    /// GET_RES.
    pub const GET_RES: u8 = 0x84;
}

/// UAC2 clock source control selectors (A.17.1).
pub mod clock_control {
    /// CS_SAM_FREQ_CONTROL.
    pub const SAM_FREQ: u8 = 0x01;
    /// CS_CLOCK_VALID_CONTROL.
    pub const CLOCK_VALID: u8 = 0x02;
}

/// Feature unit control selectors (UAC1 A.10.2, UAC2 A.17.7; same values).
pub mod feature_control {
    /// MUTE_CONTROL.
    pub const MUTE: u8 = 0x01;
    /// VOLUME_CONTROL.
    pub const VOLUME: u8 = 0x02;
}

/// UAC1 endpoint control selector SAMPLING_FREQ_CONTROL (A.10.3).
pub const UAC1_SAMPLING_FREQ_CONTROL: u8 = 0x01;
/// UAC1 CS endpoint bmAttributes bit 0: the endpoint has a sampling frequency control.
pub const UAC1_EP_SAMPLING_FREQ: u8 = 0x01;
