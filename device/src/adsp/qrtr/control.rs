//! QRTR control payloads (`struct qrtr_ctrl_pkt`, include/uapi/linux/qrtr.h).
//!
//! Every control packet Linux sends carries the whole 20-byte structure: le32 `cmd`, then either
//! `server {service, instance, node, port}` or `client {node, port}`, zero where unused. The
//! command repeats the header's packet type; the guest's name service dispatches on `cmd`.

use super::packet::PacketType;

/// Size of `struct qrtr_ctrl_pkt`.
pub const CONTROL_LEN: usize = 20;

/// A service as NEW_SERVER, DEL_SERVER and the lookups name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    /// Service id (0x41D for UAUDIO).
    pub service: u32,
    /// `version | instance << 8`.
    pub instance: u32,
    /// Node hosting it.
    pub node: u32,
    /// Port serving it.
    pub port: u32,
}

/// A client port as DEL_CLIENT and RESUME_TX name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    /// Node.
    pub node: u32,
    /// Port.
    pub port: u32,
}

/// A decoded control payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// HELLO: the node is up.
    Hello,
    /// BYE: the sending node goes away.
    Bye,
    /// A service appeared.
    NewServer(Server),
    /// A service went away.
    DelServer(Server),
    /// A port was closed.
    DelClient(Client),
    /// The receiver `client` consumed what was sent to it.
    ResumeTx(Client),
    /// EXIT (ignored by Linux).
    Exit,
    /// PING (ignored by Linux).
    Ping,
    /// Subscribe to announcements of `service`/`instance` (0 = any).
    NewLookup {
        /// Service id, 0 for all.
        service: u32,
        /// Instance, 0 for all.
        instance: u32,
    },
    /// Cancel a lookup.
    DelLookup {
        /// Service id.
        service: u32,
        /// Instance.
        instance: u32,
    },
}

/// Why a control payload was rejected.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not the 20 bytes Linux always sends.
    #[error("control payload of {0} bytes, expected {CONTROL_LEN}")]
    Length(usize),
    /// `cmd` differs from the header's packet type.
    #[error("control command {cmd} in a packet of type {ty}")]
    CommandMismatch {
        /// Header type.
        ty: u32,
        /// Payload command.
        cmd: u32,
    },
    /// DATA is not a control packet, and unknown types have no payload layout.
    #[error("packet type {0} is not a control packet")]
    NotControl(u32),
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Control {
    /// The packet type this payload travels in.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Hello => PacketType::Hello,
            Self::Bye => PacketType::Bye,
            Self::NewServer(_) => PacketType::NewServer,
            Self::DelServer(_) => PacketType::DelServer,
            Self::DelClient(_) => PacketType::DelClient,
            Self::ResumeTx(_) => PacketType::ResumeTx,
            Self::Exit => PacketType::Exit,
            Self::Ping => PacketType::Ping,
            Self::NewLookup { .. } => PacketType::NewLookup,
            Self::DelLookup { .. } => PacketType::DelLookup,
        }
    }

    /// The 20-byte payload, unused fields zero (as `qrtr_alloc_ctrl_packet` leaves them).
    pub fn encode(&self) -> [u8; CONTROL_LEN] {
        let words: [u32; 4] = match *self {
            Self::Hello | Self::Bye | Self::Exit | Self::Ping => [0; 4],
            Self::NewServer(s) | Self::DelServer(s) => [s.service, s.instance, s.node, s.port],
            Self::DelClient(c) | Self::ResumeTx(c) => [c.node, c.port, 0, 0],
            Self::NewLookup { service, instance } | Self::DelLookup { service, instance } => {
                [service, instance, 0, 0]
            }
        };
        let mut out = [0; CONTROL_LEN];
        out[..4].copy_from_slice(&(self.packet_type() as u32).to_le_bytes());
        for (i, w) in words.iter().enumerate() {
            out[4 + 4 * i..8 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Decodes the payload of a packet of header type `ty`: exactly 20 bytes, `cmd == ty`.
    pub fn decode(ty: u32, payload: &[u8]) -> Result<Self, Error> {
        let ptype = match PacketType::from_raw(ty) {
            Some(PacketType::Data) | None => return Err(Error::NotControl(ty)),
            Some(t) => t,
        };
        if payload.len() != CONTROL_LEN {
            return Err(Error::Length(payload.len()));
        }
        let cmd = le32(payload, 0);
        if cmd != ty {
            return Err(Error::CommandMismatch { ty, cmd });
        }
        let w = |i: usize| le32(payload, 4 + 4 * i);
        let server = Server {
            service: w(0),
            instance: w(1),
            node: w(2),
            port: w(3),
        };
        let client = Client {
            node: w(0),
            port: w(1),
        };
        Ok(match ptype {
            PacketType::Data => return Err(Error::NotControl(ty)),
            PacketType::Hello => Self::Hello,
            PacketType::Bye => Self::Bye,
            PacketType::NewServer => Self::NewServer(server),
            PacketType::DelServer => Self::DelServer(server),
            PacketType::DelClient => Self::DelClient(client),
            PacketType::ResumeTx => Self::ResumeTx(client),
            PacketType::Exit => Self::Exit,
            PacketType::Ping => Self::Ping,
            PacketType::NewLookup => Self::NewLookup {
                service: w(0),
                instance: w(1),
            },
            PacketType::DelLookup => Self::DelLookup {
                service: w(0),
                instance: w(1),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_new_server() {
        let s = Server {
            service: 0x41d,
            instance: 1,
            node: 1,
            port: 0x4002,
        };
        let b = Control::NewServer(s).encode();
        assert_eq!(
            b,
            [4, 0, 0, 0, 0x1d, 4, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0x40, 0, 0]
        );
        assert_eq!(Control::decode(4, &b), Ok(Control::NewServer(s)));
    }

    #[test]
    fn rejects_mismatch_and_length() {
        let b = Control::Hello.encode();
        assert_eq!(
            Control::decode(3, &b),
            Err(Error::CommandMismatch { ty: 3, cmd: 2 })
        );
        assert_eq!(Control::decode(2, &b[..4]), Err(Error::Length(4)));
        assert_eq!(Control::decode(1, &b), Err(Error::NotControl(1)));
        assert_eq!(Control::decode(12, &b), Err(Error::NotControl(12)));
    }
}
