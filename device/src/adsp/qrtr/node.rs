//! The DSP's QRTR node: what the guest's `qrtr-tun` endpoint talks to (guest-driver.md §3.2, §8).
//!
//! It takes whole packets from the guest and returns whole v1 packets to send back, plus
//! [`NodeEvent`]s for its user (the UAUDIO client). It owns no socket and no clock.
//!
//! **HELLO.** 7.2 and 7.3 differ (guest-driver.md §8):
//! - 7.3: the guest's QRTR core sends HELLO as soon as the endpoint registers, to dst node
//!   0xFFFFFFFF while our id is unknown, and never answers ours; its name service answers our
//!   HELLO with NEW_SERVER for every local service, but drops it (-EAGAIN) if its own HELLO has
//!   not gone out yet.
//! - 7.2: the name service answers every HELLO it receives with HELLO plus NEW_SERVERs.
//!
//! So we say HELLO first ([`QrtrNode::hello`]) and reply with HELLO to the *first* HELLO of the
//! peer, never to later ones. That covers the 7.3 race (our HELLO answered too early: the reply
//! makes the name service announce again) and ends the 7.2 exchange after one extra round
//! instead of ping-ponging. A HELLO to dst 0xFFFFFFFF from a peer we already talked to means its
//! endpoint was registered anew: everything we knew of it is dropped ([`NodeEvent::Bye`]) and the
//! HELLO is answered.
//!
//! **Flow control.** Every guest DATA packet with `confirm_rx` is answered at once with
//! RESUME_TX {our node, receiving port}, from that port to the sender's port; without it the
//! guest blocks on its 11th packet. Our own DATA goes through [`TxFlows`].
//!
//! **Lookups.** We send no NEW_LOOKUP: Linux rejects lookups from remote nodes (ns.c
//! `ctrl_cmd_new_lookup`, "failed while handling packet"); its name service announces its
//! services to any node that says HELLO, which is all we need.

use std::collections::{BTreeMap, BTreeSet};

use super::control::{self, Client, Control, Server};
use super::flow::{Admit, QueueFull, TxFlows};
use super::packet::{self, encode_v1, Packet, PacketType};
use super::{Addr, NODE_BCAST, PORT_CTRL};
use crate::adsp::ErrorChain;

/// Most remote services remembered; the guest registers a handful.
pub const MAX_SERVERS: usize = 256;

/// Something the node's user should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// The peer said HELLO.
    Hello {
        /// Peer node.
        node: u32,
    },
    /// The peer announced a service.
    NewServer(Server),
    /// The peer withdrew a service.
    DelServer(Server),
    /// A port on the peer was closed.
    DelClient(Client),
    /// The peer node is gone (BYE, or it registered anew): its services and ports with it.
    Bye {
        /// Peer node.
        node: u32,
    },
    /// DATA for one of our ports.
    Data {
        /// Sender.
        from: Addr,
        /// Our receiving port.
        port: u32,
        /// Payload.
        payload: Vec<u8>,
    },
}

/// Packets to send and events, the result of one call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeOutput {
    /// Whole v1 packets for the guest, in order.
    pub packets: Vec<Vec<u8>>,
    /// Events, in order.
    pub events: Vec<NodeEvent>,
}

/// Why a packet from the guest or a send of ours was refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The QRTR header broke a rule.
    #[error("bad QRTR packet")]
    Packet(#[from] packet::Error),
    /// The control payload broke a rule.
    #[error("bad QRTR control payload")]
    Control(#[from] control::Error),
    /// The sender is not the peer node.
    #[error("packet from {0}, which is not the peer node")]
    UnexpectedSource(Addr),
    /// Addressed to another node.
    #[error("packet for {0}, which is not this node")]
    NotForUs(Addr),
    /// DATA to a port nobody has bound (dropped as the kernel drops it, without RESUME_TX).
    #[error("DATA for unbound port {0:#x}")]
    UnboundPort(u32),
    /// NEW_SERVER or DEL_SERVER naming another node than its sender.
    #[error("server {service:#x} on node {node} announced by node {from}")]
    ServerNode {
        /// Service id.
        service: u32,
        /// Node in the payload.
        node: u32,
        /// Sender node.
        from: u32,
    },
    /// NEW_SERVER with service 0 or port 0 (ns.c `server_add` ignores these).
    #[error("server with service {service:#x} and port {port:#x} is invalid")]
    InvalidServer {
        /// Service id.
        service: u32,
        /// Port.
        port: u32,
    },
    /// More than [`MAX_SERVERS`] remote services.
    #[error("more than {MAX_SERVERS} remote services")]
    TooManyServers,
    /// DEL_CLIENT for another node than its sender (ns.c rejects these as spoofed).
    #[error("DEL_CLIENT for {client} sent by node {from}")]
    SpoofedDelClient {
        /// Client in the payload.
        client: Addr,
        /// Sender node.
        from: u32,
    },
    /// Sending from a port we have not bound.
    #[error("port {0:#x} is not bound")]
    NotBound(u32),
    /// Binding the control port or a port bound already.
    #[error("port {0:#x} cannot be bound")]
    BindRefused(u32),
    /// Too many of our packets wait for RESUME_TX.
    #[error("transmit queue full")]
    QueueFull(#[from] QueueFull),
}

/// The DSP's node.
#[derive(Debug)]
pub struct QrtrNode {
    id: u32,
    peer: u32,
    ports: BTreeSet<u32>,
    servers: BTreeMap<Addr, Server>,
    flows: TxFlows,
    /// Any packet from the peer since the last reset or BYE.
    peer_seen: bool,
    /// The peer's HELLO since the last reset or BYE.
    peer_hello_seen: bool,
}

impl QrtrNode {
    /// A node with id `id` (normally [`super::DSP_NODE`]) linked to the guest node `peer`
    /// (normally [`super::GUEST_NODE`]).
    pub fn new(id: u32, peer: u32) -> Self {
        Self {
            id,
            peer,
            ports: BTreeSet::new(),
            servers: BTreeMap::new(),
            flows: TxFlows::default(),
            peer_seen: false,
            peer_hello_seen: false,
        }
    }

    /// This node's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The peer node's id.
    pub fn peer(&self) -> u32 {
        self.peer
    }

    /// Opens `port` for DATA.
    pub fn bind(&mut self, port: u32) -> Result<(), Error> {
        if port == PORT_CTRL || port == super::PORT_CTRL_LEGACY || !self.ports.insert(port) {
            return Err(Error::BindRefused(port));
        }
        Ok(())
    }

    /// Our HELLO, from our control port to the peer's. Send it when the link comes up.
    pub fn hello(&self) -> Vec<u8> {
        self.control(Control::Hello, Addr::ctrl(self.peer))
    }

    /// BYE: we go away (the peer's name service drops our services and tells its servers).
    pub fn bye(&self) -> Vec<u8> {
        self.control(Control::Bye, Addr::ctrl(self.peer))
    }

    /// DEL_CLIENT for our `port`, as Linux broadcasts when a socket closes. The peer's QMI
    /// servers forget a client at that address.
    pub fn del_client(&self, port: u32) -> Vec<u8> {
        let client = Client {
            node: self.id,
            port,
        };
        self.control(Control::DelClient(client), Addr::ctrl(self.peer))
    }

    fn control(&self, ctrl: Control, dst: Addr) -> Vec<u8> {
        let src = match ctrl {
            Control::DelClient(c) => Addr::new(self.id, c.port),
            _ => Addr::ctrl(self.id),
        };
        // A 20-byte payload always encodes.
        encode_v1(ctrl.packet_type(), false, src, dst, &ctrl.encode()).unwrap_or_default()
    }

    /// The link went down (the relay or the port vanished): forget the peer.
    pub fn reset(&mut self) {
        self.servers.clear();
        self.flows.forget_node(self.peer);
        self.peer_seen = false;
        self.peer_hello_seen = false;
    }

    /// The peer's services we know of.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.values()
    }

    /// The first known service `service` whose instance is `instance`.
    pub fn lookup(&self, service: u32, instance: u32) -> Option<Server> {
        self.servers
            .values()
            .find(|s| s.service == service && s.instance == instance)
            .copied()
    }

    /// Our DATA packets to `dst` since its last RESUME_TX.
    pub fn outstanding(&self, dst: Addr) -> u32 {
        self.flows.outstanding(dst)
    }

    /// Our DATA packets waiting for RESUME_TX from `dst`.
    pub fn queued(&self, dst: Addr) -> usize {
        self.flows.queued(dst)
    }

    /// Sends `payload` as DATA from our `src_port` to `dst`. Returns the packet, or nothing if
    /// it has to wait for RESUME_TX (it then leaves with the output of a later [`Self::receive`]).
    pub fn send(
        &mut self,
        src_port: u32,
        dst: Addr,
        payload: &[u8],
    ) -> Result<Vec<Vec<u8>>, Error> {
        if !self.ports.contains(&src_port) {
            return Err(Error::NotBound(src_port));
        }
        let src = Addr::new(self.id, src_port);
        // Refuse what cannot be encoded before it counts against the window.
        encode_v1(PacketType::Data, false, src, dst, payload)?;
        match self.flows.admit(dst, src_port, payload)? {
            Admit::Now { confirm_rx } => Ok(vec![encode_v1(
                PacketType::Data,
                confirm_rx,
                src,
                dst,
                payload,
            )?]),
            Admit::Queued => {
                log::debug!("QRTR: DATA to {dst} waits for RESUME_TX");
                Ok(Vec::new())
            }
        }
    }

    /// Handles one whole packet from the guest. Bad packets are refused with an error (and a
    /// warning in the log); nothing is sent for them.
    pub fn receive(&mut self, buf: &[u8]) -> Result<NodeOutput, Error> {
        self.receive_inner(buf).inspect_err(|e| {
            log::warn!("QRTR: packet from the guest refused: {}", ErrorChain(e));
        })
    }

    fn receive_inner(&mut self, buf: &[u8]) -> Result<NodeOutput, Error> {
        let pkt = Packet::decode(buf)?;
        if pkt.src.node != self.peer {
            return Err(Error::UnexpectedSource(pkt.src));
        }
        if pkt.dst.node != self.id && pkt.dst.node != NODE_BCAST {
            return Err(Error::NotForUs(pkt.dst));
        }
        let mut out = NodeOutput::default();
        let seen_before = self.peer_seen;
        self.peer_seen = true;
        match pkt.packet_type() {
            Some(PacketType::Data) => self.data(&pkt, &mut out)?,
            Some(_) => {
                let ctrl = Control::decode(pkt.ty, pkt.payload)?;
                self.ctrl(&pkt, ctrl, seen_before, &mut out)?;
            }
            None => {
                // The name service ignores commands it does not know.
                log::warn!(
                    "QRTR: ignoring packet of unknown type {} from {}",
                    pkt.ty,
                    pkt.src
                );
            }
        }
        Ok(out)
    }

    fn data(&mut self, pkt: &Packet<'_>, out: &mut NodeOutput) -> Result<(), Error> {
        let port = pkt.dst.port;
        if !self.ports.contains(&port) {
            return Err(Error::UnboundPort(port));
        }
        if pkt.confirm_rx {
            let me = Addr::new(self.id, port);
            let resume = Control::ResumeTx(Client {
                node: me.node,
                port: me.port,
            });
            out.packets.push(
                encode_v1(PacketType::ResumeTx, false, me, pkt.src, &resume.encode())
                    .unwrap_or_default(),
            );
        }
        out.events.push(NodeEvent::Data {
            from: pkt.src,
            port,
            payload: pkt.payload.to_vec(),
        });
        Ok(())
    }

    fn ctrl(
        &mut self,
        pkt: &Packet<'_>,
        ctrl: Control,
        seen_before: bool,
        out: &mut NodeOutput,
    ) -> Result<(), Error> {
        let from = pkt.src.node;
        match ctrl {
            Control::Hello => {
                if pkt.dst.node == NODE_BCAST && seen_before {
                    log::info!("QRTR: node {from} registered anew; forgetting what it had");
                    self.forget_peer(out);
                    self.peer_seen = true;
                }
                if !self.peer_hello_seen {
                    out.packets.push(self.hello());
                }
                self.peer_hello_seen = true;
                out.events.push(NodeEvent::Hello { node: from });
            }
            Control::Bye => {
                self.forget_peer(out);
            }
            Control::NewServer(s) => {
                if s.node != from {
                    return Err(Error::ServerNode {
                        service: s.service,
                        node: s.node,
                        from,
                    });
                }
                if s.service == 0 || s.port == 0 {
                    return Err(Error::InvalidServer {
                        service: s.service,
                        port: s.port,
                    });
                }
                let key = Addr::new(s.node, s.port);
                if !self.servers.contains_key(&key) && self.servers.len() >= MAX_SERVERS {
                    return Err(Error::TooManyServers);
                }
                self.servers.insert(key, s);
                out.events.push(NodeEvent::NewServer(s));
            }
            Control::DelServer(s) => {
                if s.node != from {
                    return Err(Error::ServerNode {
                        service: s.service,
                        node: s.node,
                        from,
                    });
                }
                self.servers.remove(&Addr::new(s.node, s.port));
                out.events.push(NodeEvent::DelServer(s));
            }
            Control::DelClient(c) => {
                if c.node != from {
                    return Err(Error::SpoofedDelClient {
                        client: Addr::new(c.node, c.port),
                        from,
                    });
                }
                let addr = Addr::new(c.node, c.port);
                let dropped = self.flows.forget(addr);
                if dropped > 0 {
                    log::warn!("QRTR: {dropped} packets for closed port {addr} dropped");
                }
                out.events.push(NodeEvent::DelClient(c));
            }
            Control::ResumeTx(c) => {
                for r in self.flows.resume(Addr::new(c.node, c.port)) {
                    let src = Addr::new(self.id, r.src_port);
                    let dst = Addr::new(c.node, c.port);
                    out.packets.push(
                        encode_v1(PacketType::Data, r.confirm_rx, src, dst, &r.payload)
                            .unwrap_or_default(),
                    );
                }
            }
            Control::Exit | Control::Ping => {}
            Control::NewLookup { .. } | Control::DelLookup { .. } => {
                // We host no services, so a lookup has nothing to report.
                log::debug!("QRTR: lookup from {} ignored", pkt.src);
            }
        }
        Ok(())
    }

    fn forget_peer(&mut self, out: &mut NodeOutput) {
        let node = self.peer;
        self.servers.retain(|k, _| k.node != node);
        let dropped = self.flows.forget_node(node);
        if dropped > 0 {
            log::warn!("QRTR: {dropped} packets for node {node} dropped");
        }
        self.peer_hello_seen = false;
        self.peer_seen = false;
        out.events.push(NodeEvent::Bye { node });
    }
}
