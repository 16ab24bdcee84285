//! The UAUDIO stream messages (sound/usb/qcom/usb_audio_qmi_v01.c; guest-driver.md §4.2–4.5):
//! their descriptions for the QMI codec, and typed forms.
//!
//! QMI_UAUDIO_STREAM_REQ, _RESP and _IND all have message id 0x0001. Payload maxima: request
//! 46, response 202, indication 181 (each the sum of its TLVs at full size).

use crate::adsp::qmi::{
    self, codec, Elem, Field, Header, MessageDesc, MsgType, TlvDesc, Tlvs, Value,
};

use super::types::{AppsMemInfo, EndpointDescriptor, InterfaceDescriptor, MemInfo, UsbToken};

/// QMI message id of the request, the response and the indication.
pub const MSG_ID: u16 = 0x0001;

/// TLV types of QMI_UAUDIO_STREAM_REQ.
pub mod req {
    /// u8: 1 enable, 0 disable (mandatory).
    pub const ENABLE: u8 = 0x01;
    /// u32 usb_token (mandatory).
    pub const USB_TOKEN: u8 = 0x02;
    /// u32 audio format (required by the handler, enable and disable alike).
    pub const AUDIO_FORMAT: u8 = 0x10;
    /// u32 channels (required).
    pub const NUMBER_OF_CH: u8 = 0x11;
    /// u32 sample rate in Hz, named bit_rate (required).
    pub const BIT_RATE: u8 = 0x12;
    /// u32 transfer buffer bytes (required).
    pub const XFER_BUFF_SIZE: u8 = 0x13;
    /// u32 service interval in µs: never send it, it overflows the handler's buffer (§4.3).
    pub const SERVICE_INTERVAL: u8 = 0x14;
}

/// TLV types of QMI_UAUDIO_STREAM_RESP.
pub mod resp {
    /// qmi_response_type_v01 {result, error}: always 0/0 from this driver.
    pub const RESULT: u8 = 0x02;
    /// enum32 status.
    pub const STATUS: u8 = 0x10;
    /// u32 internal_status: a negative errno.
    pub const INTERNAL_STATUS: u8 = 0x11;
    /// u32 xHCI slot id.
    pub const SLOT_ID: u8 = 0x12;
    /// u32 usb_token (echo).
    pub const USB_TOKEN: u8 = 0x13;
    /// Interface descriptor of the chosen altsetting.
    pub const INTF_DESC: u8 = 0x14;
    /// Data endpoint descriptor.
    pub const DATA_EP_DESC: u8 = 0x15;
    /// Sync endpoint descriptor.
    pub const SYNC_EP_DESC: u8 = 0x16;
    /// u16 UAC spec revision.
    pub const SPEC_REVISION: u8 = 0x17;
    /// u8 data path delay (UAC1).
    pub const DATA_PATH_DELAY: u8 = 0x18;
    /// u8 subslot size.
    pub const SUBSLOT_SIZE: u8 = 0x19;
    /// apps_mem_info.
    pub const XHCI_MEM_INFO: u8 = 0x1A;
    /// u8 interrupter number.
    pub const INTERRUPTER_NUM: u8 = 0x1B;
    /// enum32 speed.
    pub const SPEED_INFO: u8 = 0x1C;
    /// u8 controller number.
    pub const CONTROLLER_NUM: u8 = 0x1D;
}

/// TLV types of QMI_UAUDIO_STREAM_IND.
pub mod ind {
    /// enum32 dev_event (mandatory).
    pub const DEV_EVENT: u8 = 0x01;
    /// u32 slot id (mandatory).
    pub const SLOT_ID: u8 = 0x02;
    /// u32 usb_token.
    pub const USB_TOKEN: u8 = 0x10;
    /// Interface descriptor.
    pub const INTF_DESC: u8 = 0x11;
    /// Data endpoint descriptor.
    pub const DATA_EP_DESC: u8 = 0x12;
    /// Sync endpoint descriptor.
    pub const SYNC_EP_DESC: u8 = 0x13;
    /// u16 spec revision.
    pub const SPEC_REVISION: u8 = 0x14;
    /// u8 data path delay.
    pub const DATA_PATH_DELAY: u8 = 0x15;
    /// u8 subslot size.
    pub const SUBSLOT_SIZE: u8 = 0x16;
    /// apps_mem_info.
    pub const XHCI_MEM_INFO: u8 = 0x17;
    /// u8 interrupter number.
    pub const INTERRUPTER_NUM: u8 = 0x18;
    /// u8 controller number.
    pub const CONTROLLER_NUM: u8 = 0x19;
}

const fn field(name: &'static str, elem: Elem) -> Field {
    Field { name, elem }
}

const fn tlv(ty: u8, name: &'static str, elem: Elem) -> TlvDesc {
    TlvDesc { ty, name, elem }
}

const MEM_INFO_FIELDS: [Field; 3] = [
    field("iova", Elem::U64),
    field("dma", Elem::U64),
    field("size", Elem::U32),
];
const MEM_INFO: Elem = Elem::Struct(&MEM_INFO_FIELDS);
const APPS_MEM_INFO_FIELDS: [Field; 5] = [
    field("evt_ring", MEM_INFO),
    field("tr_data", MEM_INFO),
    field("tr_sync", MEM_INFO),
    field("xfer_buff", MEM_INFO),
    field("dcba", MEM_INFO),
];
const APPS_MEM_INFO: Elem = Elem::Struct(&APPS_MEM_INFO_FIELDS);
const EP_DESC_FIELDS: [Field; 8] = [
    field("bLength", Elem::U8),
    field("bDescriptorType", Elem::U8),
    field("bEndpointAddress", Elem::U8),
    field("bmAttributes", Elem::U8),
    field("wMaxPacketSize", Elem::U16),
    field("bInterval", Elem::U8),
    field("bRefresh", Elem::U8),
    field("bSynchAddress", Elem::U8),
];
const EP_DESC: Elem = Elem::Struct(&EP_DESC_FIELDS);
const INTF_DESC_FIELDS: [Field; 9] = [
    field("bLength", Elem::U8),
    field("bDescriptorType", Elem::U8),
    field("bInterfaceNumber", Elem::U8),
    field("bAlternateSetting", Elem::U8),
    field("bNumEndpoints", Elem::U8),
    field("bInterfaceClass", Elem::U8),
    field("bInterfaceSubClass", Elem::U8),
    field("bInterfaceProtocol", Elem::U8),
    field("iInterface", Elem::U8),
];
const INTF_DESC: Elem = Elem::Struct(&INTF_DESC_FIELDS);
/// `qmi_response_type_v01`: two QMI_SIGNED_2_BYTE_ENUMs, encoded as 2-byte integers.
const RESPONSE_TYPE_FIELDS: [Field; 2] = [field("result", Elem::U16), field("error", Elem::U16)];

const REQ_TLVS: [TlvDesc; 7] = [
    tlv(req::ENABLE, "enable", Elem::U8),
    tlv(req::USB_TOKEN, "usb_token", Elem::U32),
    tlv(req::AUDIO_FORMAT, "audio_format", Elem::U32),
    tlv(req::NUMBER_OF_CH, "number_of_ch", Elem::U32),
    tlv(req::BIT_RATE, "bit_rate", Elem::U32),
    tlv(req::XFER_BUFF_SIZE, "xfer_buff_size", Elem::U32),
    tlv(req::SERVICE_INTERVAL, "service_interval", Elem::U32),
];

/// QMI_UAUDIO_STREAM_REQ (DSP → guest).
pub static STREAM_REQ: MessageDesc = MessageDesc {
    name: "QMI_UAUDIO_STREAM_REQ",
    msg_id: MSG_ID,
    max_len: 46,
    tlvs: &REQ_TLVS,
};

const RESP_TLVS: [TlvDesc; 15] = [
    tlv(resp::RESULT, "resp", Elem::Struct(&RESPONSE_TYPE_FIELDS)),
    tlv(resp::STATUS, "status", Elem::Enum32),
    tlv(resp::INTERNAL_STATUS, "internal_status", Elem::U32),
    tlv(resp::SLOT_ID, "slot_id", Elem::U32),
    tlv(resp::USB_TOKEN, "usb_token", Elem::U32),
    tlv(resp::INTF_DESC, "std_as_opr_intf_desc", INTF_DESC),
    tlv(resp::DATA_EP_DESC, "std_as_data_ep_desc", EP_DESC),
    tlv(resp::SYNC_EP_DESC, "std_as_sync_ep_desc", EP_DESC),
    tlv(resp::SPEC_REVISION, "usb_audio_spec_revision", Elem::U16),
    tlv(resp::DATA_PATH_DELAY, "data_path_delay", Elem::U8),
    tlv(resp::SUBSLOT_SIZE, "usb_audio_subslot_size", Elem::U8),
    tlv(resp::XHCI_MEM_INFO, "xhci_mem_info", APPS_MEM_INFO),
    tlv(resp::INTERRUPTER_NUM, "interrupter_num", Elem::U8),
    tlv(resp::SPEED_INFO, "speed_info", Elem::Enum32),
    tlv(resp::CONTROLLER_NUM, "controller_num", Elem::U8),
];

/// QMI_UAUDIO_STREAM_RESP (guest → DSP).
pub static STREAM_RESP: MessageDesc = MessageDesc {
    name: "QMI_UAUDIO_STREAM_RESP",
    msg_id: MSG_ID,
    max_len: 202,
    tlvs: &RESP_TLVS,
};

const IND_TLVS: [TlvDesc; 12] = [
    tlv(ind::DEV_EVENT, "dev_event", Elem::Enum32),
    tlv(ind::SLOT_ID, "slot_id", Elem::U32),
    tlv(ind::USB_TOKEN, "usb_token", Elem::U32),
    tlv(ind::INTF_DESC, "std_as_opr_intf_desc", INTF_DESC),
    tlv(ind::DATA_EP_DESC, "std_as_data_ep_desc", EP_DESC),
    tlv(ind::SYNC_EP_DESC, "std_as_sync_ep_desc", EP_DESC),
    tlv(ind::SPEC_REVISION, "usb_audio_spec_revision", Elem::U16),
    tlv(ind::DATA_PATH_DELAY, "data_path_delay", Elem::U8),
    tlv(ind::SUBSLOT_SIZE, "usb_audio_subslot_size", Elem::U8),
    tlv(ind::XHCI_MEM_INFO, "xhci_mem_info", APPS_MEM_INFO),
    tlv(ind::INTERRUPTER_NUM, "interrupter_num", Elem::U8),
    tlv(ind::CONTROLLER_NUM, "controller_num", Elem::U8),
];

/// QMI_UAUDIO_STREAM_IND (guest → DSP).
pub static STREAM_IND: MessageDesc = MessageDesc {
    name: "QMI_UAUDIO_STREAM_IND",
    msg_id: MSG_ID,
    max_len: 181,
    tlvs: &IND_TLVS,
};

/// Why a UAUDIO message could not be built or read.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The QMI layer refused it.
    #[error("bad QMI message")]
    Qmi(#[from] codec::Error),
    /// A mandatory TLV is missing.
    #[error("{msg}: mandatory TLV {ty:#04x} missing")]
    Missing {
        /// Message name.
        msg: &'static str,
        /// TLV type.
        ty: u8,
    },
    /// The header's type is not the one this message travels as.
    #[error("{msg}: sent as {got:?}, expected {want:?}")]
    MsgType {
        /// Message name.
        msg: &'static str,
        /// Received type.
        got: MsgType,
        /// Expected type.
        want: MsgType,
    },
}

// ---- Value conversions. Decoded TLVs match their descriptions, so the shapes below always match;
// a mismatch (only possible for hand-built Tlvs) reads as absent.

fn u8_of(v: &Value) -> Option<u8> {
    match v {
        Value::U8(x) => Some(*x),
        _ => None,
    }
}

fn u16_of(v: &Value) -> Option<u16> {
    match v {
        Value::U16(x) => Some(*x),
        _ => None,
    }
}

fn u32_of(v: &Value) -> Option<u32> {
    match v {
        Value::U32(x) => Some(*x),
        _ => None,
    }
}

fn u64_of(v: &Value) -> Option<u64> {
    match v {
        Value::U64(x) => Some(*x),
        _ => None,
    }
}

fn enum_of(v: &Value) -> Option<i32> {
    match v {
        Value::Enum32(x) => Some(*x),
        _ => None,
    }
}

fn fields_of(v: &Value, n: usize) -> Option<&[Value]> {
    match v {
        Value::Struct(f) if f.len() == n => Some(f),
        _ => None,
    }
}

fn bytes9(v: &Value) -> Option<[u8; 9]> {
    // Both descriptors are nine bytes on the wire; the endpoint one has a u16 at offset 4.
    let f = fields_of(v, 9).or_else(|| fields_of(v, 8))?;
    let mut out = [0u8; 9];
    let mut at = 0;
    for x in f {
        match x {
            Value::U8(b) => {
                out[at] = *b;
                at += 1;
            }
            Value::U16(w) => {
                out[at..at + 2].copy_from_slice(&w.to_le_bytes());
                at += 2;
            }
            _ => return None,
        }
    }
    (at == 9).then_some(out)
}

fn ep_value(d: &EndpointDescriptor) -> Value {
    let b = d.to_bytes();
    Value::Struct(vec![
        Value::U8(b[0]),
        Value::U8(b[1]),
        Value::U8(b[2]),
        Value::U8(b[3]),
        Value::U16(d.w_max_packet_size),
        Value::U8(b[6]),
        Value::U8(b[7]),
        Value::U8(b[8]),
    ])
}

fn intf_value(d: &InterfaceDescriptor) -> Value {
    Value::Struct(d.to_bytes().iter().map(|b| Value::U8(*b)).collect())
}

fn mem_value(m: &MemInfo) -> Value {
    Value::Struct(vec![
        Value::U64(m.iova),
        Value::U64(m.dma),
        Value::U32(m.size),
    ])
}

fn mem_of(v: &Value) -> Option<MemInfo> {
    let f = fields_of(v, 3)?;
    Some(MemInfo {
        iova: u64_of(&f[0])?,
        dma: u64_of(&f[1])?,
        size: u32_of(&f[2])?,
    })
}

fn apps_value(a: &AppsMemInfo) -> Value {
    Value::Struct(
        [a.evt_ring, a.tr_data, a.tr_sync, a.xfer_buff, a.dcba]
            .iter()
            .map(mem_value)
            .collect(),
    )
}

fn apps_of(v: &Value) -> Option<AppsMemInfo> {
    let f = fields_of(v, 5)?;
    Some(AppsMemInfo {
        evt_ring: mem_of(&f[0])?,
        tr_data: mem_of(&f[1])?,
        tr_sync: mem_of(&f[2])?,
        xfer_buff: mem_of(&f[3])?,
        dcba: mem_of(&f[4])?,
    })
}

fn set_opt<T>(t: &mut Tlvs, ty: u8, v: &Option<T>, f: impl Fn(&T) -> Value) {
    if let Some(x) = v {
        t.set(ty, f(x));
    }
}

fn get<T>(t: &Tlvs, ty: u8, f: impl Fn(&Value) -> Option<T>) -> Option<T> {
    t.get(ty).and_then(f)
}

fn need<T>(
    msg: &'static str,
    t: &Tlvs,
    ty: u8,
    f: impl Fn(&Value) -> Option<T>,
) -> Result<T, Error> {
    get(t, ty, f).ok_or(Error::Missing { msg, ty })
}

fn decode_as(desc: &MessageDesc, want: MsgType, buf: &[u8]) -> Result<(Header, Tlvs), Error> {
    let (header, tlvs) = qmi::decode_message(desc, buf)?;
    if header.ty != want {
        return Err(Error::MsgType {
            msg: desc.name,
            got: header.ty,
            want,
        });
    }
    Ok((header, tlvs))
}

/// QMI_UAUDIO_STREAM_REQ. Optional fields are `Some` when their `_valid` flag is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamRequest {
    /// TLV 0x01: enable (true) or disable.
    pub enable: bool,
    /// TLV 0x02.
    pub usb_token: UsbToken,
    /// TLV 0x10.
    pub audio_format: Option<u32>,
    /// TLV 0x11.
    pub number_of_ch: Option<u32>,
    /// TLV 0x12: the sample rate in Hz.
    pub bit_rate: Option<u32>,
    /// TLV 0x13.
    pub xfer_buff_size: Option<u32>,
    /// TLV 0x14 (do not send to a real guest: §4.3).
    pub service_interval: Option<u32>,
}

impl StreamRequest {
    /// The TLVs.
    pub fn to_tlvs(&self) -> Tlvs {
        let mut t = Tlvs::new();
        t.set(req::ENABLE, Value::U8(u8::from(self.enable)));
        t.set(req::USB_TOKEN, Value::U32(self.usb_token.raw()));
        let u32v = |x: &u32| Value::U32(*x);
        set_opt(&mut t, req::AUDIO_FORMAT, &self.audio_format, u32v);
        set_opt(&mut t, req::NUMBER_OF_CH, &self.number_of_ch, u32v);
        set_opt(&mut t, req::BIT_RATE, &self.bit_rate, u32v);
        set_opt(&mut t, req::XFER_BUFF_SIZE, &self.xfer_buff_size, u32v);
        set_opt(&mut t, req::SERVICE_INTERVAL, &self.service_interval, u32v);
        t
    }

    /// From decoded TLVs; the two mandatory TLVs must be there.
    pub fn from_tlvs(t: &Tlvs) -> Result<Self, Error> {
        let msg = STREAM_REQ.name;
        Ok(Self {
            enable: need(msg, t, req::ENABLE, u8_of)? != 0,
            usb_token: UsbToken::from_raw(need(msg, t, req::USB_TOKEN, u32_of)?),
            audio_format: get(t, req::AUDIO_FORMAT, u32_of),
            number_of_ch: get(t, req::NUMBER_OF_CH, u32_of),
            bit_rate: get(t, req::BIT_RATE, u32_of),
            xfer_buff_size: get(t, req::XFER_BUFF_SIZE, u32_of),
            service_interval: get(t, req::SERVICE_INTERVAL, u32_of),
        })
    }

    /// The whole message (header and payload) as a request with transaction id `txn`.
    pub fn encode(&self, txn: u16) -> Result<Vec<u8>, Error> {
        Ok(qmi::encode_message(
            MsgType::Request,
            txn,
            &STREAM_REQ,
            &self.to_tlvs(),
        )?)
    }

    /// Reads a whole message.
    pub fn decode(buf: &[u8]) -> Result<(Header, Self), Error> {
        let (h, t) = decode_as(&STREAM_REQ, MsgType::Request, buf)?;
        Ok((h, Self::from_tlvs(&t)?))
    }
}

/// `qmi_response_type_v01`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QmiResult {
    /// 0 success, 1 failure.
    pub result: u16,
    /// QMI error code.
    pub error: u16,
}

/// QMI_UAUDIO_STREAM_RESP. Optional fields are `Some` when their `_valid` flag is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamResponse {
    /// TLV 0x02 (always 0/0 from this driver, even on failure).
    pub result: QmiResult,
    /// TLV 0x10: the real status.
    pub status: Option<i32>,
    /// TLV 0x11: negative errno, as u32 on the wire.
    pub internal_status: Option<u32>,
    /// TLV 0x12.
    pub slot_id: Option<u32>,
    /// TLV 0x13.
    pub usb_token: Option<u32>,
    /// TLV 0x14.
    pub intf_desc: Option<InterfaceDescriptor>,
    /// TLV 0x15.
    pub data_ep_desc: Option<EndpointDescriptor>,
    /// TLV 0x16.
    pub sync_ep_desc: Option<EndpointDescriptor>,
    /// TLV 0x17.
    pub spec_revision: Option<u16>,
    /// TLV 0x18.
    pub data_path_delay: Option<u8>,
    /// TLV 0x19.
    pub subslot_size: Option<u8>,
    /// TLV 0x1A.
    pub xhci_mem_info: Option<AppsMemInfo>,
    /// TLV 0x1B.
    pub interrupter_num: Option<u8>,
    /// TLV 0x1C.
    pub speed_info: Option<i32>,
    /// TLV 0x1D.
    pub controller_num: Option<u8>,
}

impl StreamResponse {
    /// The TLVs.
    pub fn to_tlvs(&self) -> Tlvs {
        let mut t = Tlvs::new();
        t.set(
            resp::RESULT,
            Value::Struct(vec![
                Value::U16(self.result.result),
                Value::U16(self.result.error),
            ]),
        );
        set_opt(&mut t, resp::STATUS, &self.status, |x| Value::Enum32(*x));
        let u32v = |x: &u32| Value::U32(*x);
        let u8v = |x: &u8| Value::U8(*x);
        set_opt(&mut t, resp::INTERNAL_STATUS, &self.internal_status, u32v);
        set_opt(&mut t, resp::SLOT_ID, &self.slot_id, u32v);
        set_opt(&mut t, resp::USB_TOKEN, &self.usb_token, u32v);
        set_opt(&mut t, resp::INTF_DESC, &self.intf_desc, intf_value);
        set_opt(&mut t, resp::DATA_EP_DESC, &self.data_ep_desc, ep_value);
        set_opt(&mut t, resp::SYNC_EP_DESC, &self.sync_ep_desc, ep_value);
        set_opt(&mut t, resp::SPEC_REVISION, &self.spec_revision, |x| {
            Value::U16(*x)
        });
        set_opt(&mut t, resp::DATA_PATH_DELAY, &self.data_path_delay, u8v);
        set_opt(&mut t, resp::SUBSLOT_SIZE, &self.subslot_size, u8v);
        set_opt(&mut t, resp::XHCI_MEM_INFO, &self.xhci_mem_info, apps_value);
        set_opt(&mut t, resp::INTERRUPTER_NUM, &self.interrupter_num, u8v);
        set_opt(&mut t, resp::SPEED_INFO, &self.speed_info, |x| {
            Value::Enum32(*x)
        });
        set_opt(&mut t, resp::CONTROLLER_NUM, &self.controller_num, u8v);
        t
    }

    /// From decoded TLVs; the result TLV 0x02 must be there.
    pub fn from_tlvs(t: &Tlvs) -> Result<Self, Error> {
        let result = need(STREAM_RESP.name, t, resp::RESULT, |v| {
            let f = fields_of(v, 2)?;
            Some(QmiResult {
                result: u16_of(&f[0])?,
                error: u16_of(&f[1])?,
            })
        })?;
        Ok(Self {
            result,
            status: get(t, resp::STATUS, enum_of),
            internal_status: get(t, resp::INTERNAL_STATUS, u32_of),
            slot_id: get(t, resp::SLOT_ID, u32_of),
            usb_token: get(t, resp::USB_TOKEN, u32_of),
            intf_desc: get(t, resp::INTF_DESC, bytes9).map(InterfaceDescriptor::from_bytes),
            data_ep_desc: get(t, resp::DATA_EP_DESC, bytes9).map(EndpointDescriptor::from_bytes),
            sync_ep_desc: get(t, resp::SYNC_EP_DESC, bytes9).map(EndpointDescriptor::from_bytes),
            spec_revision: get(t, resp::SPEC_REVISION, u16_of),
            data_path_delay: get(t, resp::DATA_PATH_DELAY, u8_of),
            subslot_size: get(t, resp::SUBSLOT_SIZE, u8_of),
            xhci_mem_info: get(t, resp::XHCI_MEM_INFO, apps_of),
            interrupter_num: get(t, resp::INTERRUPTER_NUM, u8_of),
            speed_info: get(t, resp::SPEED_INFO, enum_of),
            controller_num: get(t, resp::CONTROLLER_NUM, u8_of),
        })
    }

    /// The whole message as a response to transaction `txn`.
    pub fn encode(&self, txn: u16) -> Result<Vec<u8>, Error> {
        Ok(qmi::encode_message(
            MsgType::Response,
            txn,
            &STREAM_RESP,
            &self.to_tlvs(),
        )?)
    }

    /// Reads a whole message.
    pub fn decode(buf: &[u8]) -> Result<(Header, Self), Error> {
        let (h, t) = decode_as(&STREAM_RESP, MsgType::Response, buf)?;
        Ok((h, Self::from_tlvs(&t)?))
    }

    /// `internal_status` as the signed errno it is.
    pub fn internal_errno(&self) -> Option<i32> {
        self.internal_status.map(|s| s as i32)
    }
}

/// QMI_UAUDIO_STREAM_IND. Optional fields are `Some` when their `_valid` flag is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamIndication {
    /// TLV 0x01 (see `types::dev_event`).
    pub dev_event: i32,
    /// TLV 0x02.
    pub slot_id: u32,
    /// TLV 0x10.
    pub usb_token: Option<u32>,
    /// TLV 0x11.
    pub intf_desc: Option<InterfaceDescriptor>,
    /// TLV 0x12.
    pub data_ep_desc: Option<EndpointDescriptor>,
    /// TLV 0x13.
    pub sync_ep_desc: Option<EndpointDescriptor>,
    /// TLV 0x14.
    pub spec_revision: Option<u16>,
    /// TLV 0x15.
    pub data_path_delay: Option<u8>,
    /// TLV 0x16.
    pub subslot_size: Option<u8>,
    /// TLV 0x17.
    pub xhci_mem_info: Option<AppsMemInfo>,
    /// TLV 0x18.
    pub interrupter_num: Option<u8>,
    /// TLV 0x19.
    pub controller_num: Option<u8>,
}

impl StreamIndication {
    /// The TLVs.
    pub fn to_tlvs(&self) -> Tlvs {
        let mut t = Tlvs::new();
        t.set(ind::DEV_EVENT, Value::Enum32(self.dev_event));
        t.set(ind::SLOT_ID, Value::U32(self.slot_id));
        let u8v = |x: &u8| Value::U8(*x);
        set_opt(&mut t, ind::USB_TOKEN, &self.usb_token, |x| Value::U32(*x));
        set_opt(&mut t, ind::INTF_DESC, &self.intf_desc, intf_value);
        set_opt(&mut t, ind::DATA_EP_DESC, &self.data_ep_desc, ep_value);
        set_opt(&mut t, ind::SYNC_EP_DESC, &self.sync_ep_desc, ep_value);
        set_opt(&mut t, ind::SPEC_REVISION, &self.spec_revision, |x| {
            Value::U16(*x)
        });
        set_opt(&mut t, ind::DATA_PATH_DELAY, &self.data_path_delay, u8v);
        set_opt(&mut t, ind::SUBSLOT_SIZE, &self.subslot_size, u8v);
        set_opt(&mut t, ind::XHCI_MEM_INFO, &self.xhci_mem_info, apps_value);
        set_opt(&mut t, ind::INTERRUPTER_NUM, &self.interrupter_num, u8v);
        set_opt(&mut t, ind::CONTROLLER_NUM, &self.controller_num, u8v);
        t
    }

    /// From decoded TLVs; both mandatory TLVs must be there.
    pub fn from_tlvs(t: &Tlvs) -> Result<Self, Error> {
        let msg = STREAM_IND.name;
        Ok(Self {
            dev_event: need(msg, t, ind::DEV_EVENT, enum_of)?,
            slot_id: need(msg, t, ind::SLOT_ID, u32_of)?,
            usb_token: get(t, ind::USB_TOKEN, u32_of),
            intf_desc: get(t, ind::INTF_DESC, bytes9).map(InterfaceDescriptor::from_bytes),
            data_ep_desc: get(t, ind::DATA_EP_DESC, bytes9).map(EndpointDescriptor::from_bytes),
            sync_ep_desc: get(t, ind::SYNC_EP_DESC, bytes9).map(EndpointDescriptor::from_bytes),
            spec_revision: get(t, ind::SPEC_REVISION, u16_of),
            data_path_delay: get(t, ind::DATA_PATH_DELAY, u8_of),
            subslot_size: get(t, ind::SUBSLOT_SIZE, u8_of),
            xhci_mem_info: get(t, ind::XHCI_MEM_INFO, apps_of),
            interrupter_num: get(t, ind::INTERRUPTER_NUM, u8_of),
            controller_num: get(t, ind::CONTROLLER_NUM, u8_of),
        })
    }

    /// The whole message as an indication with transaction id `txn`.
    pub fn encode(&self, txn: u16) -> Result<Vec<u8>, Error> {
        Ok(qmi::encode_message(
            MsgType::Indication,
            txn,
            &STREAM_IND,
            &self.to_tlvs(),
        )?)
    }

    /// Reads a whole message.
    pub fn decode(buf: &[u8]) -> Result<(Header, Self), Error> {
        let (h, t) = decode_as(&STREAM_IND, MsgType::Indication, buf)?;
        Ok((h, Self::from_tlvs(&t)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxima_are_the_sum_of_the_tlvs() {
        for d in [&STREAM_REQ, &STREAM_RESP, &STREAM_IND] {
            assert_eq!(d.computed_max_len(), d.max_len, "{}", d.name);
        }
    }

    #[test]
    fn descriptor_sizes() {
        assert_eq!(MEM_INFO.fixed_size(), Some(20));
        assert_eq!(APPS_MEM_INFO.fixed_size(), Some(100));
        assert_eq!(EP_DESC.fixed_size(), Some(9));
        assert_eq!(INTF_DESC.fixed_size(), Some(9));
    }
}
