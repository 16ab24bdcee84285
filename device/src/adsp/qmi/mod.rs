//! QMI, the message encoding of Qualcomm's services (drivers/soc/qcom/qmi_encdec.c,
//! qmi_interface.c; guest-driver.md §3.3).
//!
//! A message is a 7-byte header and a list of TLVs. What each TLV holds is described by data
//! ([`desc`]: element types, fixed and length-prefixed arrays, nested structs), and one codec
//! ([`codec`]) encodes and strictly decodes any message so described, into and from
//! [`Tlvs`] of [`Value`]s. The UAUDIO messages are descriptions plus typed wrappers
//! (`crate::adsp::uaudio::messages`).

pub mod codec;
pub mod desc;

pub use codec::{
    decode, decode_message, encode, encode_message, Error, Header, MsgType, HEADER_LEN,
};
pub use desc::{Elem, Field, LenPrefix, MessageDesc, TlvDesc, Tlvs, Value, OPTIONAL_TLV_START};
