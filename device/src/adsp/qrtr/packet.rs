//! The QRTR packet header (net/qrtr/af_qrtr.c; guest-driver.md §3.2).
//!
//! The guest transmits v1 (a 32-byte header of eight le32 fields) and accepts v1 and v2 (a 16-byte
//! header with u8 and le16 fields plus `optlen` option bytes). The payload follows the header,
//! zero-padded to a multiple of 4, and `size` counts the payload without padding. [`Packet::decode`]
//! applies the receive rules of `qrtr_endpoint_post`; [`encode_v1`] builds what the guest's own
//! transmit path builds.

use super::{Addr, PORT_CTRL, PORT_CTRL_LEGACY};

/// Size of the v1 header.
pub const V1_HEADER_LEN: usize = 32;
/// Size of the v2 header without options.
pub const V2_HEADER_LEN: usize = 16;
/// Largest packet accepted or built, header included. QMI messages of the UAUDIO service are under
/// 256 bytes; this only bounds what an untrusted guest can make us hold.
pub const MAX_PACKET_LEN: usize = 64 * 1024;
/// Smallest payload of NEW_SERVER and RESUME_TX (`sizeof(struct qrtr_ctrl_pkt)`).
const MIN_CTRL_PAYLOAD: usize = 20;

const VERSION_1: u8 = 1;
const VERSION_2: u8 = 3;
const V2_FLAG_CONFIRM_RX: u8 = 1;

/// Header version of a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// QRTR_PROTO_VER_1: 32-byte header.
    V1,
    /// QRTR_PROTO_VER_2 (version byte 3): 16-byte header plus options.
    V2,
}

/// QRTR packet types (`enum qrtr_pkt_type`, include/uapi/linux/qrtr.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum PacketType {
    /// QMI (or other) payload for a port.
    #[doc(alias = "QRTR_TYPE_DATA")]
    Data = 1,
    /// Node handshake.
    #[doc(alias = "QRTR_TYPE_HELLO")]
    Hello = 2,
    /// The sending node goes away.
    #[doc(alias = "QRTR_TYPE_BYE")]
    Bye = 3,
    /// A service appeared.
    #[doc(alias = "QRTR_TYPE_NEW_SERVER")]
    NewServer = 4,
    /// A service went away.
    #[doc(alias = "QRTR_TYPE_DEL_SERVER")]
    DelServer = 5,
    /// A port was closed.
    #[doc(alias = "QRTR_TYPE_DEL_CLIENT")]
    DelClient = 6,
    /// Flow control: the receiver consumed the packets sent to it.
    #[doc(alias = "QRTR_TYPE_RESUME_TX")]
    ResumeTx = 7,
    /// Unused by Linux; ignored.
    #[doc(alias = "QRTR_TYPE_EXIT")]
    Exit = 8,
    /// Unused by Linux; ignored.
    #[doc(alias = "QRTR_TYPE_PING")]
    Ping = 9,
    /// Subscribe to service announcements (Linux accepts only local ones).
    #[doc(alias = "QRTR_TYPE_NEW_LOOKUP")]
    NewLookup = 10,
    /// Cancel a subscription.
    #[doc(alias = "QRTR_TYPE_DEL_LOOKUP")]
    DelLookup = 11,
}

impl PacketType {
    /// The type with wire value `raw`, if it is one Linux defines.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::Data,
            2 => Self::Hello,
            3 => Self::Bye,
            4 => Self::NewServer,
            5 => Self::DelServer,
            6 => Self::DelClient,
            7 => Self::ResumeTx,
            8 => Self::Exit,
            9 => Self::Ping,
            10 => Self::NewLookup,
            11 => Self::DelLookup,
            _ => return None,
        })
    }
}

/// Why a packet was rejected or could not be built.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A zero-length packet.
    #[error("empty packet")]
    Empty,
    /// The length is not a multiple of 4.
    #[error("packet of {0} bytes is not a multiple of 4")]
    Unaligned(usize),
    /// Longer than [`MAX_PACKET_LEN`].
    #[error("packet of {0} bytes exceeds the {MAX_PACKET_LEN}-byte limit")]
    TooLong(usize),
    /// The first byte names no known header version.
    #[error("unknown QRTR version {0}")]
    Version(u8),
    /// Shorter than the header its version byte announces.
    #[error("packet of {len} bytes is shorter than its {header}-byte header")]
    ShortHeader {
        /// Packet length.
        len: usize,
        /// Header length (v2: including options).
        header: usize,
    },
    /// The size field is zero.
    #[error("size field is zero")]
    ZeroSize,
    /// The packet length is not header + size rounded up to 4.
    #[error("size {size} after a {header}-byte header does not match a packet of {len} bytes")]
    SizeMismatch {
        /// The header's size field.
        size: u32,
        /// Header length (v2: including options).
        header: usize,
        /// Packet length.
        len: usize,
    },
    /// NEW_SERVER or RESUME_TX with less than a control packet of payload.
    #[error("type {ty} payload of {size} bytes is shorter than a control packet")]
    ShortControl {
        /// Packet type.
        ty: u32,
        /// Payload size.
        size: u32,
    },
    /// A control packet addressed to a port other than the control port.
    #[error("type {ty} packet addressed to port {port:#x} instead of the control port")]
    NotToControlPort {
        /// Packet type.
        ty: u32,
        /// Destination port.
        port: u32,
    },
    /// Encoding an empty payload (size 0 is invalid on the wire).
    #[error("cannot send an empty payload")]
    EmptyPayload,
    /// Encoding a payload that would exceed [`MAX_PACKET_LEN`].
    #[error("payload of {0} bytes is too long to send")]
    PayloadTooLong(usize),
}

/// A received packet, borrowing its payload from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Header version it arrived with.
    pub version: Version,
    /// Raw type (see [`PacketType::from_raw`]).
    pub ty: u32,
    /// The sender asks for a RESUME_TX once the packet is consumed.
    pub confirm_rx: bool,
    /// Sender.
    pub src: Addr,
    /// Destination; a legacy control port (0xFFFF) is already mapped to [`PORT_CTRL`].
    pub dst: Addr,
    /// Payload without padding (`size` bytes).
    pub payload: &'a [u8],
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// v2 carries 16-bit ports; both 0xFFFF and 0xFFFE stand for the control port.
fn v2_port(port: u16) -> u32 {
    if port == PORT_CTRL as u16 || port == PORT_CTRL_LEGACY as u16 {
        PORT_CTRL
    } else {
        u32::from(port)
    }
}

impl<'a> Packet<'a> {
    /// The packet type, if Linux defines it.
    pub fn packet_type(&self) -> Option<PacketType> {
        PacketType::from_raw(self.ty)
    }

    /// Decodes one whole packet with the checks of `qrtr_endpoint_post`: length nonzero and a
    /// multiple of 4, a known version, `size` nonzero and `len == header + ALIGN(size, 4)`
    /// exactly, NEW_SERVER and RESUME_TX payloads of at least 20 bytes, and only DATA and
    /// RESUME_TX addressed to a port other than the control port.
    pub fn decode(buf: &'a [u8]) -> Result<Self, Error> {
        let len = buf.len();
        if len == 0 {
            return Err(Error::Empty);
        }
        if len % 4 != 0 {
            return Err(Error::Unaligned(len));
        }
        if len > MAX_PACKET_LEN {
            return Err(Error::TooLong(len));
        }
        let (version, ty, confirm_rx, src, mut dst, size, header) = match buf[0] {
            VERSION_1 => {
                if len < V1_HEADER_LEN {
                    return Err(Error::ShortHeader {
                        len,
                        header: V1_HEADER_LEN,
                    });
                }
                (
                    Version::V1,
                    le32(buf, 4),
                    le32(buf, 16) != 0,
                    Addr::new(le32(buf, 8), le32(buf, 12)),
                    Addr::new(le32(buf, 24), le32(buf, 28)),
                    le32(buf, 20),
                    V1_HEADER_LEN,
                )
            }
            VERSION_2 => {
                if len < V2_HEADER_LEN {
                    return Err(Error::ShortHeader {
                        len,
                        header: V2_HEADER_LEN,
                    });
                }
                (
                    Version::V2,
                    u32::from(buf[1]),
                    buf[2] & V2_FLAG_CONFIRM_RX != 0,
                    Addr::new(u32::from(le16(buf, 8)), v2_port(le16(buf, 10))),
                    Addr::new(u32::from(le16(buf, 12)), v2_port(le16(buf, 14))),
                    le32(buf, 4),
                    V2_HEADER_LEN + usize::from(buf[3]),
                )
            }
            other => return Err(Error::Version(other)),
        };
        if dst.port == PORT_CTRL_LEGACY {
            dst.port = PORT_CTRL;
        }
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        // size ≤ MAX_PACKET_LEN is implied by the exact-length rule; compute in u64 so a huge
        // size cannot wrap.
        let padded = (u64::from(size) + 3) & !3;
        if padded + header as u64 != len as u64 {
            return Err(Error::SizeMismatch { size, header, len });
        }
        let ptype = PacketType::from_raw(ty);
        if matches!(ptype, Some(PacketType::NewServer | PacketType::ResumeTx))
            && (size as usize) < MIN_CTRL_PAYLOAD
        {
            return Err(Error::ShortControl { ty, size });
        }
        if dst.port != PORT_CTRL && !matches!(ptype, Some(PacketType::Data | PacketType::ResumeTx))
        {
            return Err(Error::NotToControlPort { ty, port: dst.port });
        }
        Ok(Self {
            version,
            ty,
            confirm_rx,
            src,
            dst,
            payload: &buf[header..header + size as usize],
        })
    }
}

/// Builds a v1 packet as the guest's `qrtr_node_enqueue` does: eight le32 header fields, the
/// payload, zero padding to a multiple of 4.
pub fn encode_v1(
    ty: PacketType,
    confirm_rx: bool,
    src: Addr,
    dst: Addr,
    payload: &[u8],
) -> Result<Vec<u8>, Error> {
    if payload.is_empty() {
        return Err(Error::EmptyPayload);
    }
    let padded = (payload.len() + 3) & !3;
    if padded > MAX_PACKET_LEN - V1_HEADER_LEN {
        return Err(Error::PayloadTooLong(payload.len()));
    }
    let mut out = Vec::with_capacity(V1_HEADER_LEN + padded);
    for field in [
        u32::from(VERSION_1),
        ty as u32,
        src.node,
        src.port,
        u32::from(confirm_rx),
        payload.len() as u32,
        dst.node,
        dst.port,
    ] {
        out.extend_from_slice(&field.to_le_bytes());
    }
    out.extend_from_slice(payload);
    out.resize(V1_HEADER_LEN + padded, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(fields: [u32; 8], payload: &[u8]) -> Vec<u8> {
        let mut b: Vec<u8> = fields.iter().flat_map(|f| f.to_le_bytes()).collect();
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn v1_fields_at_their_offsets() {
        let b = v1([1, 1, 1, 0x4001, 1, 3, 5, 7], &[0xaa, 0xbb, 0xcc, 0]);
        let p = Packet::decode(&b).unwrap();
        assert_eq!(p.version, Version::V1);
        assert_eq!(p.packet_type(), Some(PacketType::Data));
        assert_eq!(p.src, Addr::new(1, 0x4001));
        assert_eq!(p.dst, Addr::new(5, 7));
        assert!(p.confirm_rx);
        assert_eq!(p.payload, &[0xaa, 0xbb, 0xcc]);
    }

    #[test]
    fn legacy_ctrl_port_is_mapped() {
        let b = v1([1, 2, 1, PORT_CTRL, 0, 4, 5, 0xffff], &[2, 0, 0, 0]);
        assert_eq!(Packet::decode(&b).unwrap().dst.port, PORT_CTRL);
    }

    #[test]
    fn rejects() {
        assert_eq!(Packet::decode(&[]), Err(Error::Empty));
        assert_eq!(Packet::decode(&[1, 0, 0]), Err(Error::Unaligned(3)));
        assert_eq!(Packet::decode(&[2, 0, 0, 0]), Err(Error::Version(2)));
        assert!(matches!(
            Packet::decode(&[1, 0, 0, 0]),
            Err(Error::ShortHeader { len: 4, .. })
        ));
        let huge = v1([1, 1, 1, 2, 0, u32::MAX, 5, 7], &[0; 4]);
        assert!(matches!(
            Packet::decode(&huge),
            Err(Error::SizeMismatch { .. })
        ));
    }

    #[test]
    fn encode_pads_and_rejects_empty() {
        let b = encode_v1(
            PacketType::Data,
            false,
            Addr::new(5, 1),
            Addr::new(1, 2),
            &[1],
        )
        .unwrap();
        assert_eq!(b.len(), 36);
        assert_eq!(&b[32..], &[1, 0, 0, 0]);
        assert_eq!(
            encode_v1(
                PacketType::Data,
                false,
                Addr::new(5, 1),
                Addr::new(1, 2),
                &[]
            ),
            Err(Error::EmptyPayload)
        );
    }
}
