//! APR packets as `drivers/soc/qcom/apr.c` frames them: a 20-byte header (hdr_field: message
//! type, header length in words, version; packet size; source and destination service, domain
//! and port; token; opcode) and the payload. The guest's `apr_send_pkt` fills the addresses:
//! from the apps domain (5) to the DSP's (4), service id in both source and destination.

/// Header bytes.
pub const HEADER: usize = 20;
/// The DSP's domain.
pub const DOMAIN_ADSP: u8 = 4;
/// The guest's domain.
pub const DOMAIN_APPS: u8 = 5;
/// Domains above this are invalid (APR_DOMAIN_MAX).
const DOMAIN_MAX: u8 = 6;
/// Services above this are invalid (APR_SVC_MAX).
const SVC_MAX: u8 = 0x17;
/// The generic "command done" answer: payload {opcode, status}.
pub const BASIC_RSP_RESULT: u32 = 0x0001_10E8;
/// Status: done.
pub const EOK: u32 = 0;
/// Status: the DSP does not support the command.
pub const EUNSUPPORTED: u32 = 3;

/// Message types (APR_MSG_TYPE_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    /// Unsolicited, from the DSP.
    Event = 0,
    /// An answer to a command.
    CmdRsp = 1,
    /// A command that wants an answer.
    SeqCmd = 2,
    /// A command that wants none.
    NseqCmd = 3,
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: MsgType,
    /// Header length in bytes (at least [`HEADER`]; longer headers carry ignored words).
    pub header_len: usize,
    /// Source service.
    pub src_svc: u8,
    /// Source domain.
    pub src_domain: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination service.
    pub dest_svc: u8,
    /// Destination domain.
    pub dest_domain: u8,
    /// Destination port.
    pub dest_port: u16,
    /// Echoed in the answer.
    pub token: u32,
    /// What is asked.
    pub opcode: u32,
}

/// Why bytes are not an APR packet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AprError {
    /// Shorter than a header, or its size field disagrees with its length.
    #[error("APR packet of {len} bytes says it has {said}")]
    Size { len: usize, said: usize },
    /// A header length below 20 bytes or past the packet.
    #[error("APR header length {0}")]
    HeaderLen(usize),
    /// A version this DSP does not speak.
    #[error("APR version {0}")]
    Version(u16),
    /// A domain or service out of range.
    #[error("APR address out of range (svc {svc}, domain {domain})")]
    Address { svc: u8, domain: u8 },
}

/// Splits `bytes` into a checked header and its payload, as apr.c checks what it receives.
pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), AprError> {
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if bytes.len() < HEADER {
        return Err(AprError::Size {
            len: bytes.len(),
            said: 0,
        });
    }
    let field = u16_at(0);
    let said = u16_at(2) as usize;
    if said != bytes.len() {
        return Err(AprError::Size {
            len: bytes.len(),
            said,
        });
    }
    let version = field & 0xf;
    if version > 1 {
        return Err(AprError::Version(version));
    }
    let header_len = ((field >> 4) & 0xf) as usize * 4;
    if header_len < HEADER || header_len > bytes.len() {
        return Err(AprError::HeaderLen(header_len));
    }
    let msg_type = match (field >> 8) & 0x3 {
        0 => MsgType::Event,
        1 => MsgType::CmdRsp,
        2 => MsgType::SeqCmd,
        _ => MsgType::NseqCmd,
    };
    let h = Header {
        msg_type,
        header_len,
        src_svc: bytes[4],
        src_domain: bytes[5],
        src_port: u16_at(6),
        dest_svc: bytes[8],
        dest_domain: bytes[9],
        dest_port: u16_at(10),
        token: u32_at(12),
        opcode: u32_at(16),
    };
    for (svc, domain) in [(h.src_svc, h.src_domain), (h.dest_svc, h.dest_domain)] {
        if svc >= SVC_MAX || domain >= DOMAIN_MAX {
            return Err(AprError::Address { svc, domain });
        }
    }
    Ok((h, &bytes[header_len..]))
}

/// The DSP's answer to `req`: same service, ports swapped, token echoed.
pub fn answer(req: &Header, msg_type: MsgType, opcode: u32, payload: &[u8]) -> Vec<u8> {
    let size = HEADER + payload.len();
    let field: u16 = ((msg_type as u16) << 8) | (((HEADER / 4) as u16) << 4);
    let mut v = Vec::with_capacity(size);
    v.extend_from_slice(&field.to_le_bytes());
    v.extend_from_slice(&(size as u16).to_le_bytes());
    v.extend_from_slice(&[req.dest_svc, DOMAIN_ADSP]);
    v.extend_from_slice(&req.dest_port.to_le_bytes());
    v.extend_from_slice(&[req.src_svc, DOMAIN_APPS]);
    v.extend_from_slice(&req.src_port.to_le_bytes());
    v.extend_from_slice(&req.token.to_le_bytes());
    v.extend_from_slice(&opcode.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// APR_BASIC_RSP_RESULT {opcode, status} for `req`.
pub fn basic(req: &Header, status: u32) -> Vec<u8> {
    let mut p = req.opcode.to_le_bytes().to_vec();
    p.extend_from_slice(&status.to_le_bytes());
    answer(req, MsgType::CmdRsp, BASIC_RSP_RESULT, &p)
}

/// The little-endian u16 at `i` of a payload, if it is that long.
pub(crate) fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

/// The little-endian u32 at `i` of a payload, if it is that long.
pub(crate) fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Little-endian words, as payloads carry them.
pub(crate) fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}
