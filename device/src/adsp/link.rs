//! The DSP's end of the QRTR link: the node and the UAUDIO client wired together. This is what
//! the backend drives; it owns no transport.
//!
//! ```
//! use std::time::Duration;
//! use sideband_device::adsp::{AdspLink, StreamParams};
//! use sideband_device::adsp::uaudio::{AudioFormat, Direction};
//!
//! let mut link = AdspLink::new();
//! let hello = link.start(Duration::ZERO); // write these to the relay
//! assert_eq!(hello.len(), 1);
//! // For every packet the relay delivers:
//! //     let out = link.receive(&packet, now);
//! //     write out.packets; report out.events; log out.error
//! // When the user asks for a stream (once the service is up):
//! let params = StreamParams {
//!     card: 1, pcm: 0, direction: Direction::Playback,
//!     audio_format: AudioFormat::S16Le as u32, channels: 2, rate: 48_000, xfer_buff_size: 0, service_interval: None,
//! };
//! assert!(link.enable(params, Duration::ZERO).is_err()); // not yet: no NEW_SERVER seen
//! ```

use std::time::Duration;

use super::qrtr::{self, QrtrNode, DSP_NODE, GUEST_NODE};
use super::uaudio::client::{self, Event, Outgoing, Pending, StreamParams, UaudioClient};

/// The DSP's QRTR port for its UAUDIO client. Any port other than the control port would do; the
/// guest answers whatever address the first request came from.
pub const DSP_CLIENT_PORT: u32 = 1;

/// Why a packet was refused or a request could not be made.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The QRTR layer refused.
    #[error("QRTR")]
    Qrtr(#[from] qrtr::node::Error),
    /// The client refused.
    #[error("UAUDIO client")]
    Client(#[from] client::Error),
}

/// The result of handling one packet from the guest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkOutput {
    /// Whole packets to write to the guest, in order.
    pub packets: Vec<Vec<u8>>,
    /// Client events, in order.
    pub events: Vec<Event>,
    /// Set when the packet was refused (already logged); nothing was sent for it.
    pub error: Option<Error>,
}

/// Node 5 with its UAUDIO client.
#[derive(Debug)]
pub struct AdspLink {
    node: QrtrNode,
    client: UaudioClient,
}

impl Default for AdspLink {
    fn default() -> Self {
        Self::new()
    }
}

impl AdspLink {
    /// Node [`DSP_NODE`] linked to guest node [`GUEST_NODE`], client on [`DSP_CLIENT_PORT`].
    pub fn new() -> Self {
        Self::with_ids(DSP_NODE, GUEST_NODE, DSP_CLIENT_PORT)
    }

    /// Other ids, for tests.
    pub fn with_ids(node: u32, peer: u32, client_port: u32) -> Self {
        let mut n = QrtrNode::new(node, peer);
        // A fresh node has no ports, and the client port is not the control port.
        if let Err(e) = n.bind(client_port) {
            log::error!("ADSP: cannot bind client port: {e}");
        }
        Self {
            node: n,
            client: UaudioClient::new(client_port),
        }
    }

    /// The QRTR node.
    pub fn node(&self) -> &QrtrNode {
        &self.node
    }

    /// The UAUDIO client (state, resources, pending request, last response).
    pub fn client(&self) -> &UaudioClient {
        &self.client
    }

    /// The link is up: returns our HELLO, and the client starts looking for the service.
    pub fn start(&mut self, now: Duration) -> Vec<Vec<u8>> {
        self.client.start(now);
        vec![self.node.hello()]
    }

    /// The link went down (relay gone, port closed): everything about the guest is forgotten.
    pub fn link_down(&mut self) -> Vec<Event> {
        self.node.reset();
        self.client.link_down()
    }

    /// Handles one whole packet from the guest.
    pub fn receive(&mut self, packet: &[u8], now: Duration) -> LinkOutput {
        let mut out = LinkOutput::default();
        let node_out = match self.node.receive(packet) {
            Ok(o) => o,
            Err(e) => {
                out.error = Some(e.into());
                return out;
            }
        };
        out.packets = node_out.packets;
        for ev in &node_out.events {
            out.events.extend(self.client.handle(ev, now));
        }
        out
    }

    /// Sends an enable request for `params`; returns the packets to write.
    pub fn enable(&mut self, params: StreamParams, now: Duration) -> Result<Vec<Vec<u8>>, Error> {
        let msg = self.client.enable(params, now)?;
        self.send(msg)
    }

    /// Sends a disable for the enabled stream; stop using its rings first.
    pub fn disable(&mut self, now: Duration) -> Result<Vec<Vec<u8>>, Error> {
        let msg = self.client.disable(now)?;
        self.send(msg)
    }

    /// Forgets the enabled stream without a request (see [`UaudioClient::forget_stream`]).
    pub fn forget_stream(&mut self) -> bool {
        self.client.forget_stream()
    }

    /// Sends a disable for `params` whatever the client believes is enabled.
    pub fn disable_params(
        &mut self,
        params: StreamParams,
        now: Duration,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let msg = self.client.disable_params(params, now)?;
        self.send(msg)
    }

    /// Gives up on the outstanding request (the caller's timeout).
    pub fn abandon_pending(&mut self) -> Option<Pending> {
        self.client.abandon()
    }

    /// A simulated DSP crash as the guest would see a clean one: DEL_CLIENT for our client
    /// port, then BYE. The guest's driver stops the session (§5(e)). The link stays usable:
    /// call [`Self::link_down`] and [`Self::start`] to come back.
    pub fn goodbye(&self) -> Vec<Vec<u8>> {
        vec![self.node.del_client(self.client.port()), self.node.bye()]
    }

    /// Sends `message` (a whole QMI message, possibly broken on purpose) to the service as it
    /// is, outside the client's bookkeeping; an answer comes back as
    /// [`crate::adsp::uaudio::Event::StrayResponse`]. `None` when the service is not known.
    pub fn send_raw(&mut self, message: &[u8]) -> Option<Result<Vec<Vec<u8>>, Error>> {
        let to = self.client.state().service()?;
        Some(
            self.node
                .send(self.client.port(), to, message)
                .map_err(Into::into),
        )
    }

    fn send(&mut self, msg: Outgoing) -> Result<Vec<Vec<u8>>, Error> {
        self.node
            .send(self.client.port(), msg.to, &msg.message)
            .map_err(|e| {
                // The request never left: the client must not wait for its response.
                self.client.abandon();
                e.into()
            })
    }
}
