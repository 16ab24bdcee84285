//! GLINK commands as `qcom_glink_native` writes them: an 8-byte header {u16 cmd, u16 param1,
//! u32 param2}, for OPEN the channel name (NUL-terminated, its length in the low half of
//! param2), for TX_DATA two u32 sizes (this chunk, what is left) and the chunk; every message
//! padded to 8 bytes.

/// Command numbers (qcom_glink_native.c).
pub mod cmd {
    pub const VERSION: u16 = 0;
    pub const VERSION_ACK: u16 = 1;
    pub const OPEN: u16 = 2;
    pub const CLOSE: u16 = 3;
    pub const OPEN_ACK: u16 = 4;
    pub const TX_DATA: u16 = 9;
    pub const CLOSE_ACK: u16 = 11;
    pub const TX_DATA_CONT: u16 = 12;
    pub const READ_NOTIF: u16 = 13;
    pub const SIGNALS: u16 = 15;
}

/// The only version either side speaks.
pub const VERSION_1: u16 = 1;
/// Longest channel name, NUL included (GLINK_NAME_SIZE).
pub const NAME_SIZE: usize = 32;
/// Largest message the remote accepts from the guest in pieces (APR packets are far smaller).
pub const MAX_PAYLOAD: usize = 64 << 10;

/// A decoded command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Version and feature offer.
    Version { version: u16, features: u32 },
    /// The answer to an offer.
    VersionAck { version: u16, features: u32 },
    /// Open channel `id` (the sender's id for it) named `name`.
    Open { id: u16, name: String },
    /// The sender's id `id` for the channel is closed.
    Close { id: u16 },
    /// The peer's open of its channel `id` is acknowledged.
    OpenAck { id: u16 },
    /// The peer's close of `id` is acknowledged.
    CloseAck { id: u16 },
    /// A chunk of a message on the sender's channel `id`; `left` bytes follow in later chunks.
    TxData { id: u16, left: u32, chunk: Vec<u8> },
    /// The sender wants an interrupt once its messages were read.
    ReadNotif,
    /// Flow-control signals of channel `id`.
    Signals { id: u16, bits: u32 },
}

/// Why bytes are not a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A command number this remote does not know (its length is unknown too).
    #[error("unknown GLINK command {0}")]
    Unknown(u16),
    /// A name that is empty, too long or not terminated.
    #[error("bad channel name of {0} bytes")]
    Name(usize),
    /// A chunk or message larger than allowed.
    #[error("TX_DATA of {chunk} bytes with {left} left exceeds {MAX_PAYLOAD}")]
    TooLong { chunk: u32, left: u32 },
}

const fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// The whole length of the message whose first bytes are `head` (at least 8; TX_DATA needs
/// 16): Ok(None) when more bytes are needed to tell.
pub fn message_len(head: &[u8]) -> Result<Option<usize>, WireError> {
    let Some(h) = head.get(..8) else {
        return Ok(None);
    };
    let cmd = u16::from_le_bytes([h[0], h[1]]);
    let param2 = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    Ok(Some(match cmd {
        cmd::OPEN => {
            let n = (param2 & 0xffff) as usize;
            if n == 0 || n > NAME_SIZE {
                return Err(WireError::Name(n));
            }
            8 + pad8(n)
        }
        cmd::TX_DATA | cmd::TX_DATA_CONT => {
            let Some(sizes) = head.get(8..16) else {
                return Ok(None);
            };
            let chunk = u32::from_le_bytes([sizes[0], sizes[1], sizes[2], sizes[3]]);
            let left = u32::from_le_bytes([sizes[4], sizes[5], sizes[6], sizes[7]]);
            if chunk as usize > MAX_PAYLOAD || left as usize > MAX_PAYLOAD {
                return Err(WireError::TooLong { chunk, left });
            }
            16 + pad8(chunk as usize)
        }
        cmd::VERSION
        | cmd::VERSION_ACK
        | cmd::CLOSE
        | cmd::OPEN_ACK
        | cmd::CLOSE_ACK
        | cmd::READ_NOTIF
        | cmd::SIGNALS => 8,
        other => return Err(WireError::Unknown(other)),
    }))
}

/// Decodes one whole message (as long as [`message_len`] said).
pub fn decode(msg: &[u8]) -> Result<Command, WireError> {
    let len = message_len(msg)?.unwrap_or(usize::MAX);
    if msg.len() < len {
        return Err(WireError::Name(msg.len()));
    }
    let cmd = u16::from_le_bytes([msg[0], msg[1]]);
    let id = u16::from_le_bytes([msg[2], msg[3]]);
    let param2 = u32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]);
    Ok(match cmd {
        cmd::VERSION => Command::Version {
            version: id,
            features: param2,
        },
        cmd::VERSION_ACK => Command::VersionAck {
            version: id,
            features: param2,
        },
        cmd::OPEN => {
            let n = (param2 & 0xffff) as usize;
            let raw = &msg[8..8 + n];
            let name = raw
                .split_last()
                .filter(|(nul, text)| **nul == 0 && !text.contains(&0))
                .and_then(|(_, text)| std::str::from_utf8(text).ok())
                .filter(|t| !t.is_empty())
                .ok_or(WireError::Name(n))?;
            Command::Open {
                id,
                name: name.to_string(),
            }
        }
        cmd::CLOSE => Command::Close { id },
        cmd::OPEN_ACK => Command::OpenAck { id },
        cmd::CLOSE_ACK => Command::CloseAck { id },
        cmd::TX_DATA | cmd::TX_DATA_CONT => {
            let chunk = u32::from_le_bytes([msg[8], msg[9], msg[10], msg[11]]) as usize;
            let left = u32::from_le_bytes([msg[12], msg[13], msg[14], msg[15]]);
            Command::TxData {
                id,
                left,
                chunk: msg[16..16 + chunk].to_vec(),
            }
        }
        cmd::READ_NOTIF => Command::ReadNotif,
        cmd::SIGNALS => Command::Signals { id, bits: param2 },
        other => return Err(WireError::Unknown(other)),
    })
}

/// Encodes a command, padded to 8 bytes. Names longer than [`NAME_SIZE`] - 1 are cut.
pub fn encode(c: &Command) -> Vec<u8> {
    let head = |cmd: u16, p1: u16, p2: u32| {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&cmd.to_le_bytes());
        v.extend_from_slice(&p1.to_le_bytes());
        v.extend_from_slice(&p2.to_le_bytes());
        v
    };
    let mut v = match c {
        Command::Version { version, features } => head(cmd::VERSION, *version, *features),
        Command::VersionAck { version, features } => head(cmd::VERSION_ACK, *version, *features),
        Command::Open { id, name } => {
            let text = &name.as_bytes()[..name.len().min(NAME_SIZE - 1)];
            let mut v = head(cmd::OPEN, *id, text.len() as u32 + 1);
            v.extend_from_slice(text);
            v.push(0);
            v
        }
        Command::Close { id } => head(cmd::CLOSE, *id, 0),
        Command::OpenAck { id } => head(cmd::OPEN_ACK, *id, 0),
        Command::CloseAck { id } => head(cmd::CLOSE_ACK, *id, 0),
        Command::TxData { id, left, chunk } => {
            let mut v = head(cmd::TX_DATA, *id, 0);
            v.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            v.extend_from_slice(&left.to_le_bytes());
            v.extend_from_slice(chunk);
            v
        }
        Command::ReadNotif => head(cmd::READ_NOTIF, 0, 0),
        Command::Signals { id, bits } => head(cmd::SIGNALS, *id, *bits),
    };
    v.resize(pad8(v.len()), 0);
    v
}
