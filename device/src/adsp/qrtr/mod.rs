//! QRTR, the IPC router the guest's QMI services sit on (net/qrtr in Linux; guest-driver.md §3.2).
//!
//! [`packet`] is the wire header (v1 and v2 decode, v1 encode), [`control`] the 20-byte control
//! payloads, [`flow`] our half of the flow control, and [`node`] the DSP's node: the HELLO
//! handshake, the guest's service announcements, RESUME_TX both ways.

pub mod control;
pub mod flow;
pub mod node;
pub mod packet;

pub use control::{Client, Control, Server, CONTROL_LEN};
pub use flow::{Admit, TxFlows, MAX_QUEUED};
pub use node::{NodeEvent, NodeOutput, QrtrNode};
pub use packet::{encode_v1, Error, Packet, PacketType, Version, MAX_PACKET_LEN};

/// The control port: the name service on every node (QRTR_PORT_CTRL).
pub const PORT_CTRL: u32 = 0xFFFF_FFFE;
/// The pre-v2 spelling of the control port, still accepted as a destination.
pub const PORT_CTRL_LEGACY: u32 = 0xFFFF;
/// Broadcast node; also the destination node of a HELLO sent before the peer's id is known.
pub const NODE_BCAST: u32 = 0xFFFF_FFFF;
/// The guest's node id (`qrtr_local_nid`, fixed at 1 in Linux).
pub const GUEST_NODE: u32 = 1;
/// The DSP's node id: 5, the ADSP's node on Qualcomm parts.
pub const DSP_NODE: u32 = 5;

/// A QRTR address: node and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr {
    /// Node id.
    pub node: u32,
    /// Port on that node.
    pub port: u32,
}

impl Addr {
    /// The address `node:port`.
    pub const fn new(node: u32, port: u32) -> Self {
        Self { node, port }
    }

    /// The control port (name service) of `node`.
    pub const fn ctrl(node: u32) -> Self {
        Self::new(node, PORT_CTRL)
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{:#x}", self.node, self.port)
    }
}
