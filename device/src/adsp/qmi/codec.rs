//! The QMI header and the TLV codec, driven by [`MessageDesc`]s.
//!
//! Decoding follows `qmi_decode` (qmi_encdec.c) where it decides what is valid: TLVs in any
//! order; an unknown optional TLV (type ≥ 0x10) skipped; an unknown mandatory one an error. It is
//! stricter where the kernel trusts its peer: every length is checked against the buffer, a TLV's
//! value must be exactly as long as its element (the kernel checks this only for structs), a
//! variable array may not exceed its maximum, a TLV may not appear twice, the header's length must
//! match the packet, and a payload longer than the description's maximum is refused. Missing TLVs
//! are not detected here (the kernel leaves them zero); typed wrappers decide.

use super::desc::{Elem, LenPrefix, MessageDesc, TlvDesc, Tlvs, Value};

/// Size of the QMI header.
pub const HEADER_LEN: usize = 7;

/// Message type in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    /// QMI_REQUEST.
    Request = 0,
    /// QMI_RESPONSE: echoes the request's transaction id.
    Response = 2,
    /// QMI_INDICATION: unsolicited.
    Indication = 4,
}

/// The 7-byte header: u8 type, le16 txn_id, le16 msg_id, le16 msg_len (payload bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub ty: MsgType,
    /// Transaction id.
    pub txn: u16,
    /// Message id.
    pub msg_id: u16,
    /// Payload length.
    pub len: u16,
}

/// Why a message was refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header.
    #[error("message of {0} bytes is shorter than the {HEADER_LEN}-byte QMI header")]
    ShortHeader(usize),
    /// Unknown message type.
    #[error("unknown QMI message type {0}")]
    MsgType(u8),
    /// The header's length disagrees with what follows it.
    #[error("QMI header announces {header} payload bytes, {actual} follow")]
    Length {
        /// Header length field.
        header: u16,
        /// Bytes after the header.
        actual: usize,
    },
    /// Another message id than the description's.
    #[error("{msg}: message id {got:#06x}, expected {want:#06x}")]
    MsgId {
        /// Message name.
        msg: &'static str,
        /// Received id.
        got: u16,
        /// Described id.
        want: u16,
    },
    /// Longer than the description allows.
    #[error("{msg}: payload of {len} bytes exceeds the maximum of {max}")]
    TooLong {
        /// Message name.
        msg: &'static str,
        /// Payload length.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// Fewer than 3 bytes left for a TLV header.
    #[error("{msg}: TLV header truncated at offset {offset}")]
    TruncatedTlv {
        /// Message name.
        msg: &'static str,
        /// Offset in the payload.
        offset: usize,
    },
    /// A TLV longer than what remains.
    #[error("{msg}: TLV {ty:#04x} claims {len} bytes, {left} remain")]
    TlvPastEnd {
        /// Message name.
        msg: &'static str,
        /// TLV type.
        ty: u8,
        /// Claimed length.
        len: usize,
        /// Bytes left.
        left: usize,
    },
    /// A mandatory TLV the description does not know.
    #[error("{msg}: unknown mandatory TLV {ty:#04x}")]
    UnknownMandatory {
        /// Message name.
        msg: &'static str,
        /// TLV type.
        ty: u8,
    },
    /// The same TLV twice.
    #[error("{msg}: TLV {ty:#04x} appears twice")]
    Duplicate {
        /// Message name.
        msg: &'static str,
        /// TLV type.
        ty: u8,
    },
    /// A fixed-size TLV of the wrong length.
    #[error("{msg}: TLV {ty:#04x} ({name}) is {len} bytes, expected {expected}")]
    BadLength {
        /// Message name.
        msg: &'static str,
        /// TLV type.
        ty: u8,
        /// Field name.
        name: &'static str,
        /// Received length.
        len: usize,
        /// Described length.
        expected: usize,
    },
    /// A variable-size TLV whose contents do not fill it exactly.
    #[error("{msg}: TLV {ty:#04x} ({name}) of {len} bytes does not match its contents")]
    Malformed {
        /// Message name.
        msg: &'static str,
        /// TLV type.
        ty: u8,
        /// Field name.
        name: &'static str,
        /// Received length.
        len: usize,
    },
    /// An array count above its maximum.
    #[error("{msg}: TLV {ty:#04x} ({name}) holds an array of {count}, maximum {max}")]
    ArrayTooLong {
        /// Message name.
        msg: &'static str,
        /// TLV type.
        ty: u8,
        /// Field name.
        name: &'static str,
        /// Count received (or given).
        count: usize,
        /// Maximum.
        max: usize,
    },
    /// Encoding a TLV the description does not have.
    #[error("{msg}: TLV {ty:#04x} is not part of the message")]
    NotDescribed {
        /// Message name.
        msg: &'static str,
        /// TLV type.
        ty: u8,
    },
    /// Encoding a value that does not match its element.
    #[error("{msg}: value of TLV {ty:#04x} ({name}) does not match its description")]
    Mismatch {
        /// Message name.
        msg: &'static str,
        /// TLV type.
        ty: u8,
        /// Field name.
        name: &'static str,
    },
}

impl Header {
    /// The 7 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0; HEADER_LEN];
        b[0] = self.ty as u8;
        b[1..3].copy_from_slice(&self.txn.to_le_bytes());
        b[3..5].copy_from_slice(&self.msg_id.to_le_bytes());
        b[5..7].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Splits a message into header and payload; `msg_len` must equal the bytes that follow.
    pub fn decode(buf: &[u8]) -> Result<(Self, &[u8]), Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::ShortHeader(buf.len()));
        }
        let ty = match buf[0] {
            0 => MsgType::Request,
            2 => MsgType::Response,
            4 => MsgType::Indication,
            other => return Err(Error::MsgType(other)),
        };
        let u16_at = |i: usize| u16::from_le_bytes([buf[i], buf[i + 1]]);
        let header = Self {
            ty,
            txn: u16_at(1),
            msg_id: u16_at(3),
            len: u16_at(5),
        };
        let payload = &buf[HEADER_LEN..];
        if usize::from(header.len) != payload.len() {
            return Err(Error::Length {
                header: header.len,
                actual: payload.len(),
            });
        }
        Ok((header, payload))
    }
}

/// Encodes the TLVs of `tlvs` in description order (as `qmi_encode` walks the ei array).
pub fn encode(desc: &MessageDesc, tlvs: &Tlvs) -> Result<Vec<u8>, Error> {
    if let Some(&ty) = tlvs.0.keys().find(|ty| desc.tlv(**ty).is_none()) {
        return Err(Error::NotDescribed { msg: desc.name, ty });
    }
    let mut out = Vec::new();
    for t in desc.tlvs {
        let Some(value) = tlvs.get(t.ty) else {
            continue;
        };
        let start = out.len();
        out.extend_from_slice(&[t.ty, 0, 0]);
        encode_elem(&t.elem, value, &mut out).map_err(|e| e.at(desc, t, 0))?;
        let len = out.len() - start - 3;
        let len16 = u16::try_from(len).map_err(|_| Error::TooLong {
            msg: desc.name,
            len,
            max: desc.max_len,
        })?;
        out[start + 1..start + 3].copy_from_slice(&len16.to_le_bytes());
    }
    if out.len() > desc.max_len {
        return Err(Error::TooLong {
            msg: desc.name,
            len: out.len(),
            max: desc.max_len,
        });
    }
    Ok(out)
}

/// Encodes a whole message: header (with `msg_len`) and payload.
pub fn encode_message(
    ty: MsgType,
    txn: u16,
    desc: &MessageDesc,
    tlvs: &Tlvs,
) -> Result<Vec<u8>, Error> {
    let payload = encode(desc, tlvs)?;
    let header = Header {
        ty,
        txn,
        msg_id: desc.msg_id,
        // encode() bounds the payload by max_len, which the descriptions keep below 64 KiB.
        len: u16::try_from(payload.len()).unwrap_or(u16::MAX),
    };
    let mut out = header.encode().to_vec();
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes a payload (the bytes after the header) as `desc` describes it.
pub fn decode(desc: &MessageDesc, payload: &[u8]) -> Result<Tlvs, Error> {
    let msg = desc.name;
    if payload.len() > desc.max_len {
        return Err(Error::TooLong {
            msg,
            len: payload.len(),
            max: desc.max_len,
        });
    }
    let mut tlvs = Tlvs::new();
    let mut at = 0;
    while at < payload.len() {
        if payload.len() - at < 3 {
            return Err(Error::TruncatedTlv { msg, offset: at });
        }
        let ty = payload[at];
        let len = usize::from(u16::from_le_bytes([payload[at + 1], payload[at + 2]]));
        at += 3;
        let left = payload.len() - at;
        if len > left {
            return Err(Error::TlvPastEnd { msg, ty, len, left });
        }
        let value = &payload[at..at + len];
        at += len;
        let Some(t) = desc.tlv(ty) else {
            if ty < super::desc::OPTIONAL_TLV_START {
                return Err(Error::UnknownMandatory { msg, ty });
            }
            log::debug!("QMI {msg}: skipping unknown optional TLV {ty:#04x} of {len} bytes");
            continue;
        };
        if tlvs.has(ty) {
            return Err(Error::Duplicate { msg, ty });
        }
        if let Some(expected) = t.elem.fixed_size() {
            if expected != len {
                return Err(Error::BadLength {
                    msg,
                    ty,
                    name: t.name,
                    len,
                    expected,
                });
            }
        }
        let mut pos = 0;
        let v = decode_elem(&t.elem, value, &mut pos).map_err(|e| e.at(desc, t, len))?;
        if pos != len {
            return Err(Error::Malformed {
                msg,
                ty,
                name: t.name,
                len,
            });
        }
        tlvs.set(ty, v);
    }
    Ok(tlvs)
}

/// Decodes a whole message whose id must be `desc`'s.
pub fn decode_message(desc: &MessageDesc, buf: &[u8]) -> Result<(Header, Tlvs), Error> {
    let (header, payload) = Header::decode(buf)?;
    if header.msg_id != desc.msg_id {
        return Err(Error::MsgId {
            msg: desc.name,
            got: header.msg_id,
            want: desc.msg_id,
        });
    }
    Ok((header, decode(desc, payload)?))
}

/// A failure inside one element, before the TLV is known to the error.
enum ElemError {
    Short,
    ArrayTooLong { count: usize, max: usize },
    Mismatch,
}

impl ElemError {
    fn at(self, desc: &MessageDesc, t: &TlvDesc, len: usize) -> Error {
        let (msg, ty, name) = (desc.name, t.ty, t.name);
        match self {
            Self::Short => Error::Malformed { msg, ty, name, len },
            Self::ArrayTooLong { count, max } => Error::ArrayTooLong {
                msg,
                ty,
                name,
                count,
                max,
            },
            Self::Mismatch => Error::Mismatch { msg, ty, name },
        }
    }
}

fn encode_elem(elem: &Elem, value: &Value, out: &mut Vec<u8>) -> Result<(), ElemError> {
    match (elem, value) {
        (Elem::U8, Value::U8(v)) => out.push(*v),
        (Elem::U16, Value::U16(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Elem::U32, Value::U32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Elem::U64, Value::U64(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Elem::Enum32, Value::Enum32(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (Elem::Struct(fields), Value::Struct(values)) if fields.len() == values.len() => {
            for (f, v) in fields.iter().zip(values) {
                encode_elem(&f.elem, v, out)?;
            }
        }
        (Elem::Array(e, n), Value::Array(values)) if values.len() == *n => {
            for v in values {
                encode_elem(e, v, out)?;
            }
        }
        (Elem::VarArray { elem, max, prefix }, Value::Array(values)) => {
            if values.len() > *max {
                return Err(ElemError::ArrayTooLong {
                    count: values.len(),
                    max: *max,
                });
            }
            match prefix {
                LenPrefix::U8 => {
                    out.push(u8::try_from(values.len()).map_err(|_| ElemError::Mismatch)?)
                }
                LenPrefix::U16 => out.extend_from_slice(
                    &u16::try_from(values.len())
                        .map_err(|_| ElemError::Mismatch)?
                        .to_le_bytes(),
                ),
            }
            for v in values {
                encode_elem(elem, v, out)?;
            }
        }
        _ => return Err(ElemError::Mismatch),
    }
    Ok(())
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], ElemError> {
    let end = pos.checked_add(n).ok_or(ElemError::Short)?;
    let s = buf.get(*pos..end).ok_or(ElemError::Short)?;
    *pos = end;
    Ok(s)
}

fn decode_elem(elem: &Elem, buf: &[u8], pos: &mut usize) -> Result<Value, ElemError> {
    let mut arr = |n: usize| -> Result<[u8; 8], ElemError> {
        let mut a = [0; 8];
        a[..n].copy_from_slice(take(buf, pos, n)?);
        Ok(a)
    };
    Ok(match elem {
        Elem::U8 => Value::U8(arr(1)?[0]),
        Elem::U16 => {
            let a = arr(2)?;
            Value::U16(u16::from_le_bytes([a[0], a[1]]))
        }
        Elem::U32 => {
            let a = arr(4)?;
            Value::U32(u32::from_le_bytes([a[0], a[1], a[2], a[3]]))
        }
        Elem::Enum32 => {
            let a = arr(4)?;
            Value::Enum32(i32::from_le_bytes([a[0], a[1], a[2], a[3]]))
        }
        Elem::U64 => Value::U64(u64::from_le_bytes(arr(8)?)),
        Elem::Struct(fields) => Value::Struct(
            fields
                .iter()
                .map(|f| decode_elem(&f.elem, buf, pos))
                .collect::<Result<_, _>>()?,
        ),
        Elem::Array(e, n) => Value::Array(
            (0..*n)
                .map(|_| decode_elem(e, buf, pos))
                .collect::<Result<_, _>>()?,
        ),
        Elem::VarArray { elem, max, prefix } => {
            let count = match prefix {
                LenPrefix::U8 => usize::from(take(buf, pos, 1)?[0]),
                LenPrefix::U16 => {
                    let b = take(buf, pos, 2)?;
                    usize::from(u16::from_le_bytes([b[0], b[1]]))
                }
            };
            if count > *max {
                return Err(ElemError::ArrayTooLong { count, max: *max });
            }
            Value::Array(
                (0..count)
                    .map(|_| decode_elem(elem, buf, pos))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::desc::{Field, TlvDesc};
    use super::*;

    const PAIR: [Field; 2] = [
        Field {
            name: "a",
            elem: Elem::U8,
        },
        Field {
            name: "b",
            elem: Elem::U16,
        },
    ];
    static BYTE: Elem = Elem::U8;
    const TLVS: [TlvDesc; 3] = [
        TlvDesc {
            ty: 0x01,
            name: "pair",
            elem: Elem::Struct(&PAIR),
        },
        TlvDesc {
            ty: 0x10,
            name: "list",
            elem: Elem::VarArray {
                elem: &BYTE,
                max: 4,
                prefix: LenPrefix::U8,
            },
        },
        TlvDesc {
            ty: 0x11,
            name: "fixed",
            elem: Elem::Array(&BYTE, 2),
        },
    ];
    const DESC: MessageDesc = MessageDesc {
        name: "TEST",
        msg_id: 0x22,
        max_len: 6 + 8 + 5,
        tlvs: &TLVS,
    };

    #[test]
    fn max_len_matches_description() {
        assert_eq!(DESC.computed_max_len(), DESC.max_len);
    }

    #[test]
    fn var_array_round_trip_and_bounds() {
        let mut t = Tlvs::new();
        t.set(0x01, Value::Struct(vec![Value::U8(7), Value::U16(0x0102)]));
        t.set(0x10, Value::Array(vec![Value::U8(9), Value::U8(8)]));
        let b = encode(&DESC, &t).unwrap();
        assert_eq!(b, [0x01, 3, 0, 7, 2, 1, 0x10, 3, 0, 2, 9, 8]);
        assert_eq!(decode(&DESC, &b).unwrap(), t);
        // Count 5 > max 4.
        let bad = [0x10, 6, 0, 5, 1, 2, 3, 4, 5];
        assert!(matches!(
            decode(&DESC, &bad),
            Err(Error::ArrayTooLong { count: 5, .. })
        ));
        // Count 2 but 3 elements' worth of bytes.
        let bad = [0x10, 4, 0, 2, 1, 2, 3];
        assert!(matches!(decode(&DESC, &bad), Err(Error::Malformed { .. })));
        // Count 3 but 2 elements' worth of bytes.
        let bad = [0x10, 3, 0, 3, 1, 2];
        assert!(matches!(decode(&DESC, &bad), Err(Error::Malformed { .. })));
    }

    #[test]
    fn encode_checks_values() {
        let mut t = Tlvs::new();
        t.set(0x11, Value::Array(vec![Value::U8(1)]));
        assert!(matches!(encode(&DESC, &t), Err(Error::Mismatch { .. })));
        let mut t = Tlvs::new();
        t.set(0x12, Value::U8(1));
        assert!(matches!(
            encode(&DESC, &t),
            Err(Error::NotDescribed { ty: 0x12, .. })
        ));
    }

    #[test]
    fn header_rules() {
        assert_eq!(Header::decode(&[0; 6]), Err(Error::ShortHeader(6)));
        assert_eq!(
            Header::decode(&[1, 0, 0, 0, 0, 0, 0]),
            Err(Error::MsgType(1))
        );
        assert_eq!(
            Header::decode(&[2, 1, 0, 1, 0, 1, 0]),
            Err(Error::Length {
                header: 1,
                actual: 0
            })
        );
        let (h, p) = Header::decode(&[4, 0x34, 0x12, 1, 0, 1, 0, 0xee]).unwrap();
        assert_eq!(
            h,
            Header {
                ty: MsgType::Indication,
                txn: 0x1234,
                msg_id: 1,
                len: 1
            }
        );
        assert_eq!(p, &[0xee]);
    }
}
