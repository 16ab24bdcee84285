//! Values the UAUDIO messages carry (sound/usb/qcom/usb_audio_qmi_v01.h; guest-driver.md §4.2–4.3):
//! the usb_token, audio formats, the raw USB descriptors, memory descriptions, speeds, and the
//! errno names `internal_status` is reported with.

/// Stream direction in the usb_token (bits 7:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Direction {
    /// 0: host to device.
    Playback = 0,
    /// 1: device to host.
    Capture = 1,
}

/// The usb_token: bits 31:16 the ALSA card index of the USB card, 15:8 the PCM device, 7:0 the
/// direction. The driver keeps the card in a u8 (`pcm_card_num`), so only cards below 256 are
/// meaningful (it accepts < SNDRV_CARDS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsbToken {
    /// ALSA card index.
    pub card: u16,
    /// PCM device.
    pub pcm: u8,
    /// Raw direction byte (see [`Direction`]).
    pub direction: u8,
}

impl UsbToken {
    /// A token for `card`, `pcm` and `direction`.
    pub fn new(card: u16, pcm: u8, direction: Direction) -> Self {
        Self {
            card,
            pcm,
            direction: direction as u8,
        }
    }

    /// The packed u32.
    pub fn raw(self) -> u32 {
        u32::from(self.card) << 16 | u32::from(self.pcm) << 8 | u32::from(self.direction)
    }

    /// Unpacks a u32.
    pub fn from_raw(raw: u32) -> Self {
        Self {
            card: (raw >> 16) as u16,
            pcm: (raw >> 8) as u8,
            direction: raw as u8,
        }
    }
}

/// Audio formats of TLV 0x10 (`USB_QMI_PCM_FORMAT_*`); the driver refuses anything above 17.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum AudioFormat {
    S8 = 0,
    U8 = 1,
    S16Le = 2,
    S16Be = 3,
    U16Le = 4,
    U16Be = 5,
    S24Le = 6,
    S24Be = 7,
    U24Le = 8,
    U24Be = 9,
    S24_3Le = 10,
    S24_3Be = 11,
    U24_3Le = 12,
    U24_3Be = 13,
    S32Le = 14,
    S32Be = 15,
    U32Le = 16,
    U32Be = 17,
}

const FORMATS: [(AudioFormat, &str); 18] = [
    (AudioFormat::S8, "S8"),
    (AudioFormat::U8, "U8"),
    (AudioFormat::S16Le, "S16_LE"),
    (AudioFormat::S16Be, "S16_BE"),
    (AudioFormat::U16Le, "U16_LE"),
    (AudioFormat::U16Be, "U16_BE"),
    (AudioFormat::S24Le, "S24_LE"),
    (AudioFormat::S24Be, "S24_BE"),
    (AudioFormat::U24Le, "U24_LE"),
    (AudioFormat::U24Be, "U24_BE"),
    (AudioFormat::S24_3Le, "S24_3LE"),
    (AudioFormat::S24_3Be, "S24_3BE"),
    (AudioFormat::U24_3Le, "U24_3LE"),
    (AudioFormat::U24_3Be, "U24_3BE"),
    (AudioFormat::S32Le, "S32_LE"),
    (AudioFormat::S32Be, "S32_BE"),
    (AudioFormat::U32Le, "U32_LE"),
    (AudioFormat::U32Be, "U32_BE"),
];

impl AudioFormat {
    /// The format with wire value `raw`.
    pub fn from_raw(raw: u32) -> Option<Self> {
        FORMATS.get(raw as usize).map(|f| f.0)
    }

    /// The format ALSA names `name` (as `S16_LE`), case-insensitive.
    pub fn from_name(name: &str) -> Option<Self> {
        FORMATS
            .iter()
            .find(|f| f.1.eq_ignore_ascii_case(name))
            .map(|f| f.0)
    }

    /// The ALSA name.
    pub fn name(self) -> &'static str {
        FORMATS[self as usize].1
    }
}

/// The 9 raw bytes of a USB endpoint descriptor (`usb_endpoint_descriptor_v01`, audio variant
/// with bRefresh and bSynchAddress).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct EndpointDescriptor {
    pub b_length: u8,
    pub b_descriptor_type: u8,
    pub b_endpoint_address: u8,
    pub bm_attributes: u8,
    pub w_max_packet_size: u16,
    pub b_interval: u8,
    pub b_refresh: u8,
    pub b_synch_address: u8,
}

impl EndpointDescriptor {
    /// From the raw descriptor bytes.
    pub fn from_bytes(b: [u8; 9]) -> Self {
        Self {
            b_length: b[0],
            b_descriptor_type: b[1],
            b_endpoint_address: b[2],
            bm_attributes: b[3],
            w_max_packet_size: u16::from_le_bytes([b[4], b[5]]),
            b_interval: b[6],
            b_refresh: b[7],
            b_synch_address: b[8],
        }
    }

    /// The raw descriptor bytes (also the wire encoding).
    pub fn to_bytes(&self) -> [u8; 9] {
        let [lo, hi] = self.w_max_packet_size.to_le_bytes();
        [
            self.b_length,
            self.b_descriptor_type,
            self.b_endpoint_address,
            self.bm_attributes,
            lo,
            hi,
            self.b_interval,
            self.b_refresh,
            self.b_synch_address,
        ]
    }

    /// Endpoint number (bits 3:0 of the address).
    pub fn number(&self) -> u8 {
        self.b_endpoint_address & 0x0f
    }

    /// True for an IN endpoint.
    pub fn is_in(&self) -> bool {
        self.b_endpoint_address & 0x80 != 0
    }

    /// The xHCI Device Context Index: 2·number + (IN ? 1 : 0).
    pub fn dci(&self) -> u8 {
        2 * self.number() + u8::from(self.is_in())
    }
}

/// The 9 raw bytes of a USB interface descriptor (`usb_interface_descriptor_v01`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct InterfaceDescriptor {
    pub b_length: u8,
    pub b_descriptor_type: u8,
    pub b_interface_number: u8,
    pub b_alternate_setting: u8,
    pub b_num_endpoints: u8,
    pub b_interface_class: u8,
    pub b_interface_sub_class: u8,
    pub b_interface_protocol: u8,
    pub i_interface: u8,
}

impl InterfaceDescriptor {
    /// From the raw descriptor bytes.
    pub fn from_bytes(b: [u8; 9]) -> Self {
        Self {
            b_length: b[0],
            b_descriptor_type: b[1],
            b_interface_number: b[2],
            b_alternate_setting: b[3],
            b_num_endpoints: b[4],
            b_interface_class: b[5],
            b_interface_sub_class: b[6],
            b_interface_protocol: b[7],
            i_interface: b[8],
        }
    }

    /// The raw descriptor bytes (also the wire encoding).
    pub fn to_bytes(&self) -> [u8; 9] {
        [
            self.b_length,
            self.b_descriptor_type,
            self.b_interface_number,
            self.b_alternate_setting,
            self.b_num_endpoints,
            self.b_interface_class,
            self.b_interface_sub_class,
            self.b_interface_protocol,
            self.i_interface,
        ]
    }
}

/// `mem_info_v01` as on the wire: `iova` = SID << 32 | IOVA, `dma` the xHCI-side address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// SID in bits 63:32, IOVA in 31:0.
    pub iova: u64,
    /// Bus address the xHCI uses (TRB pointers).
    pub dma: u64,
    /// Bytes.
    pub size: u32,
}

/// `apps_mem_info_v01`: five [`MemInfo`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppsMemInfo {
    /// Event ring of the secondary interrupter.
    pub evt_ring: MemInfo,
    /// Transfer ring of the data endpoint (segment 0).
    pub tr_data: MemInfo,
    /// Transfer ring of the sync endpoint, zero if none.
    pub tr_sync: MemInfo,
    /// Transfer buffer.
    pub xfer_buff: MemInfo,
    /// Device context base array (always zero from this driver).
    pub dcba: MemInfo,
}

/// Device speed of TLV 0x1C (`usb_qmi_audio_device_speed_enum_v01`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// 0.
    Invalid,
    /// 1.
    Low,
    /// 2.
    Full,
    /// 3.
    High,
    /// 4.
    Super,
    /// 5.
    SuperPlus,
    /// Anything else.
    Other(i32),
}

impl Speed {
    /// From the wire enum.
    pub fn from_raw(raw: i32) -> Self {
        match raw {
            0 => Self::Invalid,
            1 => Self::Low,
            2 => Self::Full,
            3 => Self::High,
            4 => Self::Super,
            5 => Self::SuperPlus,
            other => Self::Other(other),
        }
    }

    /// The wire enum.
    pub fn raw(self) -> i32 {
        match self {
            Self::Invalid => 0,
            Self::Low => 1,
            Self::Full => 2,
            Self::High => 3,
            Self::Super => 4,
            Self::SuperPlus => 5,
            Self::Other(v) => v,
        }
    }
}

/// Values of the response's status TLV 0x10 (`usb_qmi_audio_stream_status_enum_v01`). The
/// driver sends only SUCCESS and FAILURE; the cause is in `internal_status`.
pub mod status {
    /// USB_QMI_STREAM_REQ_SUCCESS_V01.
    pub const SUCCESS: i32 = 0;
    /// USB_QMI_STREAM_REQ_FAILURE_V01.
    pub const FAILURE: i32 = 1;
    /// USB_QMI_STREAM_REQ_FAILURE_NOT_FOUND_V01 (never sent).
    pub const NOT_FOUND: i32 = 2;
    /// USB_QMI_STREAM_REQ_FAILURE_INVALID_PARAM_V01 (never sent).
    pub const INVALID_PARAM: i32 = 3;
    /// USB_QMI_STREAM_REQ_FAILURE_MEMALLOC_V01 (never sent).
    pub const MEMALLOC: i32 = 4;

    /// The name of a status value.
    pub fn name(status: i32) -> &'static str {
        match status {
            SUCCESS => "SUCCESS",
            FAILURE => "FAILURE",
            NOT_FOUND => "NOT_FOUND",
            INVALID_PARAM => "INVALID_PARAM",
            MEMALLOC => "MEMALLOC",
            _ => "unknown",
        }
    }
}

/// Values of the indication's dev_event TLV 0x01 (`usb_qmi_audio_device_indication_enum_v01`).
pub mod dev_event {
    /// USB_QMI_DEV_CONNECT_V01.
    pub const CONNECT: i32 = 0;
    /// USB_QMI_DEV_DISCONNECT_V01: the only one the driver sends.
    pub const DISCONNECT: i32 = 1;
    /// USB_QMI_DEV_SUSPEND_V01.
    pub const SUSPEND: i32 = 2;
    /// USB_QMI_DEV_RESUME_V01.
    pub const RESUME: i32 = 3;
}

const ERRNOS: [(i32, &str); 30] = [
    (1, "EPERM"),
    (2, "ENOENT"),
    (4, "EINTR"),
    (5, "EIO"),
    (6, "ENXIO"),
    (7, "E2BIG"),
    (11, "EAGAIN"),
    (12, "ENOMEM"),
    (13, "EACCES"),
    (14, "EFAULT"),
    (16, "EBUSY"),
    (17, "EEXIST"),
    (19, "ENODEV"),
    (22, "EINVAL"),
    (28, "ENOSPC"),
    (32, "EPIPE"),
    (34, "ERANGE"),
    (38, "ENOSYS"),
    (61, "ENODATA"),
    (62, "ETIME"),
    (71, "EPROTO"),
    (75, "EOVERFLOW"),
    (95, "EOPNOTSUPP"),
    (108, "ESHUTDOWN"),
    (110, "ETIMEDOUT"),
    (114, "EALREADY"),
    (115, "EINPROGRESS"),
    (512, "ERESTARTSYS"),
    (524, "ENOTSUPP"),
    (525, "ETOOSMALL"),
];

/// `internal_status` as the kernel would print it: "0", "-EBUSY", or "-<n>" for a value
/// without a name here.
pub fn errno_name(code: i32) -> String {
    if code == 0 {
        return "0".into();
    }
    let name = ERRNOS
        .iter()
        .find(|e| i64::from(e.0) == -i64::from(code))
        .map(|e| e.1);
    match name {
        Some(n) => format!("-{n}"),
        None => code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_packing() {
        let t = UsbToken::new(1, 2, Direction::Capture);
        assert_eq!(t.raw(), 0x0001_0201);
        assert_eq!(UsbToken::from_raw(0x0001_0201), t);
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(-16), "-EBUSY");
        assert_eq!(errno_name(-22), "-EINVAL");
        assert_eq!(errno_name(-19), "-ENODEV");
        assert_eq!(errno_name(-12), "-ENOMEM");
        assert_eq!(errno_name(0), "0");
        assert_eq!(errno_name(-999), "-999");
        assert_eq!(errno_name(i32::MIN), i32::MIN.to_string());
    }

    #[test]
    fn formats() {
        assert_eq!(AudioFormat::from_name("s16_le"), Some(AudioFormat::S16Le));
        assert_eq!(AudioFormat::from_raw(17), Some(AudioFormat::U32Be));
        assert_eq!(AudioFormat::from_raw(18), None);
        assert_eq!(AudioFormat::S24_3Le.name(), "S24_3LE");
    }

    #[test]
    fn endpoint_bytes() {
        let raw = [9, 5, 0x81, 0x05, 0xc0, 0x00, 1, 0, 0x02];
        let d = EndpointDescriptor::from_bytes(raw);
        assert_eq!(d.w_max_packet_size, 0xc0);
        assert_eq!(d.dci(), 3);
        assert_eq!(d.to_bytes(), raw);
    }
}
