//! Stream requests a buggy DSP might send: each breaks one rule of the QMI wire format or of
//! the UAUDIO message, so a test can check the guest's service refuses it without harm.

use super::messages::{self, StreamRequest};

/// The ways a request is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// The last TLV claims 4 bytes more than the message holds.
    TlvOverrun,
    /// The header's message length is 16 bytes more than the payload.
    HeaderLength,
    /// A message id the service does not know (0x00EE), well-formed otherwise.
    UnknownMessage,
    /// A request without its mandatory enable TLV (0x01).
    NoEnable,
}

impl Malformed {
    /// Every kind, in the order a test sends them.
    pub const ALL: [Malformed; 4] = [
        Malformed::TlvOverrun,
        Malformed::HeaderLength,
        Malformed::UnknownMessage,
        Malformed::NoEnable,
    ];

    /// The name used on the control channel.
    pub fn name(self) -> &'static str {
        match self {
            Malformed::TlvOverrun => "tlv-overrun",
            Malformed::HeaderLength => "header-length",
            Malformed::UnknownMessage => "unknown-message",
            Malformed::NoEnable => "no-enable",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// `request` encoded as transaction `txn`, then broken this way.
    pub fn encode(self, request: &StreamRequest, txn: u16) -> Result<Vec<u8>, messages::Error> {
        let mut msg = request.encode(txn)?;
        match self {
            Malformed::TlvOverrun => {
                let last = last_tlv(&msg);
                let len = u16::from_le_bytes([msg[last + 1], msg[last + 2]]) + 4;
                msg[last + 1..last + 3].copy_from_slice(&len.to_le_bytes());
            }
            Malformed::HeaderLength => {
                let len = u16::from_le_bytes([msg[5], msg[6]]) + 16;
                msg[5..7].copy_from_slice(&len.to_le_bytes());
            }
            Malformed::UnknownMessage => msg[3..5].copy_from_slice(&0x00eeu16.to_le_bytes()),
            Malformed::NoEnable => {
                // TLV 0x01 (u8) is the first one: type, 2 length bytes, 1 value byte.
                msg.drain(HEADER..HEADER + 4);
                let len = u16::from_le_bytes([msg[5], msg[6]]) - 4;
                msg[5..7].copy_from_slice(&len.to_le_bytes());
            }
        }
        Ok(msg)
    }
}

const HEADER: usize = 7;

/// Offset of the last TLV of a well-formed message.
fn last_tlv(msg: &[u8]) -> usize {
    let mut at = HEADER;
    let mut last = HEADER;
    while at + 3 <= msg.len() {
        last = at;
        at += 3 + usize::from(u16::from_le_bytes([msg[at + 1], msg[at + 2]]));
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adsp::qmi::codec::Header;
    use crate::adsp::uaudio::{Direction, UsbToken};

    fn request() -> StreamRequest {
        StreamRequest {
            enable: true,
            usb_token: UsbToken::new(1, 0, Direction::Playback),
            audio_format: Some(2),
            number_of_ch: Some(2),
            bit_rate: Some(48000),
            xfer_buff_size: Some(0),
            service_interval: None,
        }
    }

    #[test]
    fn each_kind_breaks_what_it_says_and_only_that() {
        let good = request().encode(7).unwrap();
        assert!(StreamRequest::decode(&good).is_ok());
        for kind in Malformed::ALL {
            let bad = kind.encode(&request(), 7).unwrap();
            assert_eq!(Malformed::from_name(kind.name()), Some(kind));
            match kind {
                Malformed::TlvOverrun => {
                    assert_eq!(bad.len(), good.len());
                    assert!(Header::decode(&bad).is_ok(), "the header still adds up");
                    assert!(StreamRequest::decode(&bad).is_err(), "{kind:?}");
                }
                Malformed::HeaderLength => {
                    assert!(Header::decode(&bad).is_err(), "{kind:?}");
                }
                Malformed::UnknownMessage => {
                    let (h, _) = Header::decode(&bad).unwrap();
                    assert_eq!(h.msg_id, 0xee);
                    assert_eq!(bad[5..], good[5..]);
                }
                Malformed::NoEnable => {
                    assert_eq!(bad.len(), good.len() - 4);
                    let (_, payload) = Header::decode(&bad).unwrap();
                    assert_ne!(payload[0], 0x01, "TLV 0x01 is gone");
                    assert!(StreamRequest::decode(&bad).is_err(), "enable is mandatory");
                }
            }
        }
    }
}
