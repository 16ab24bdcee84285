//! The DSP's UAUDIO client: finds the guest's UAUDIO service, enables and disables the offloaded
//! stream, and follows the guest's indications (guest-driver.md §4, §5(b)–(e)).
//!
//! ```text
//!  Idle ──start──► Looking ──NEW_SERVER(0x41D, 1)──► ServiceUp ◄──────────────────────┐
//!                     ▲                                 │ enable()                     │
//!                     │                                 ▼                              │
//!                     │                          Enabling(txn) ──resp: failure─────────┤
//!                     │                                 │ resp: success                │
//!                     │                                 ▼                              │
//!                     │                          Streaming(resources) ── IND(DISCONNECT):
//!                     │                                 │   StopRequested; the caller stops
//!                     │                                 │   its engine, then disable() │
//!                     │                                 ▼ disable()                    │
//!                     │                          Disabling(txn) ──resp─────────────────┘
//!                     └──── DEL_SERVER / DEL_CLIENT / BYE of the service (from any state)
//! ```
//!
//! The client is pure: it returns QMI messages to send from its port ([`Outgoing`]) and
//! [`Event`]s; the QRTR node carries them. Time arrives as an argument and is only recorded:
//! the caller times out a transaction by looking at [`UaudioClient::pending`] and calling
//! [`UaudioClient::abandon`].
//!
//! Quirks of the guest driver honoured here (§4.3, §4.4):
//! - every request, disable included, carries TLVs 0x10–0x13, or the handler answers -EINVAL and
//!   cleans up nothing;
//! - TLV 0x14 (service interval) is never sent: decoding it overflows the handler's buffer;
//! - the result TLV always says success; the real outcome is status (0x10) and internal status
//!   (0x11, a negative errno);
//! - the card number in the token is the ALSA card of the USB device, which only the caller knows.

use std::time::Duration;

use crate::adsp::qmi::{Header, MsgType};
use crate::adsp::qrtr::{Addr, NodeEvent, Server};
use crate::adsp::ErrorChain as Chain;

use super::messages::{self, StreamIndication, StreamRequest, StreamResponse, MSG_ID};
use super::resources::{Failure, StreamResources};
use super::types::{dev_event, Direction, UsbToken};

/// UAUDIO service id.
pub const SERVICE: u32 = 0x41D;
/// UAUDIO service version.
pub const VERSION: u32 = 0x01;
/// UAUDIO service instance.
pub const INSTANCE: u32 = 0;
/// The instance field of NEW_SERVER: `version | instance << 8`.
pub const SERVER_INSTANCE: u32 = VERSION | INSTANCE << 8;

/// What a stream request asks for. Every field is sent in enable and disable requests alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamParams {
    /// ALSA card index of the USB audio card (`chip->card->number`).
    pub card: u16,
    /// PCM device on that card.
    pub pcm: u8,
    /// Playback or capture.
    pub direction: Direction,
    /// `USB_QMI_PCM_FORMAT_*` (see `types::AudioFormat`); values above 17 make the guest refuse.
    pub audio_format: u32,
    /// Channels.
    pub channels: u32,
    /// Sample rate in Hz (the message calls it bit_rate).
    pub rate: u32,
    /// Transfer buffer bytes (0 → 4096; page-aligned and capped at 96 KiB by the guest).
    pub xfer_buff_size: u32,
    /// TLV 0x14, the service interval in µs. `None` (the default, and what a DSP should send):
    /// 7.3's decoder writes past its 46-byte buffer when it is present (guide §4.3).
    pub service_interval: Option<u32>,
}

impl StreamParams {
    /// The usb_token these parameters address.
    pub fn token(&self) -> UsbToken {
        UsbToken::new(self.card, self.pcm, self.direction)
    }

    /// The request: TLVs 0x01, 0x02 and 0x10–0x13, and 0x14 only when asked for.
    pub fn request(&self, enable: bool) -> StreamRequest {
        StreamRequest {
            enable,
            usb_token: self.token(),
            audio_format: Some(self.audio_format),
            number_of_ch: Some(self.channels),
            bit_rate: Some(self.rate),
            xfer_buff_size: Some(self.xfer_buff_size),
            service_interval: self.service_interval,
        }
    }
}

/// The kind of an outstanding request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnKind {
    /// enable = 1.
    Enable,
    /// enable = 0.
    Disable,
}

/// A request waiting for its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Transaction id.
    pub txn: u16,
    /// Enable or disable.
    pub kind: TxnKind,
    /// When it was sent.
    pub since: Duration,
    /// What it asked for.
    pub params: StreamParams,
}

/// Where the client stands (see the module diagram).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started, or the link is down.
    Idle,
    /// HELLO sent; waiting for NEW_SERVER of the UAUDIO service.
    Looking {
        /// Since when.
        since: Duration,
    },
    /// The service is known at `service`; no stream.
    ServiceUp {
        /// The service's address.
        service: Addr,
    },
    /// An enable request is outstanding.
    Enabling {
        /// The service's address.
        service: Addr,
        /// The request.
        pending: Pending,
        /// A DISCONNECT indication arrived meanwhile.
        stop_requested: bool,
    },
    /// The stream is enabled.
    Streaming {
        /// The service's address.
        service: Addr,
        /// What was asked for.
        params: StreamParams,
        /// What the guest granted.
        resources: Box<StreamResources>,
        /// A DISCONNECT indication asked us to stop and disable.
        stop_requested: bool,
    },
    /// A disable request is outstanding.
    Disabling {
        /// The service's address.
        service: Addr,
        /// The request.
        pending: Pending,
    },
}

impl State {
    /// A short name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Looking { .. } => "looking for the service",
            Self::ServiceUp { .. } => "service up",
            Self::Enabling { .. } => "enabling",
            Self::Streaming { .. } => "streaming",
            Self::Disabling { .. } => "disabling",
        }
    }

    /// The service's address, once known.
    pub fn service(&self) -> Option<Addr> {
        match self {
            Self::Idle | Self::Looking { .. } => None,
            Self::ServiceUp { service }
            | Self::Enabling { service, .. }
            | Self::Streaming { service, .. }
            | Self::Disabling { service, .. } => Some(*service),
        }
    }
}

/// Why the service went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// DEL_SERVER for it.
    DelServer,
    /// DEL_CLIENT for its port (the socket closed).
    DelClient,
    /// BYE from its node, or the node registered anew.
    Bye,
    /// The transport went away.
    LinkDown,
    /// NEW_SERVER announced it at another port.
    Moved,
}

/// Something the caller should act on or report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The UAUDIO service is reachable at this address.
    ServiceUp(Addr),
    /// The service went away; if a stream was enabled or being enabled, the guest has torn it
    /// down (or will) and the engine must stop.
    ServiceDown {
        /// Where it was.
        service: Addr,
        /// Why.
        reason: DownReason,
        /// A stream was enabled or being enabled.
        stream_lost: bool,
    },
    /// The enable succeeded.
    Enabled(Box<StreamResources>),
    /// The enable was refused or its response was unusable.
    EnableFailed {
        /// Transaction id.
        txn: u16,
        /// Why.
        failure: Failure,
    },
    /// The disable was answered.
    Disabled {
        /// Transaction id.
        txn: u16,
        /// Ok, or the driver's refusal.
        outcome: Result<(), Failure>,
    },
    /// DISCONNECT indication while a stream is enabled: stop queuing and ringing, then call
    /// [`UaudioClient::disable`] (within 10 s, or the guest gives up waiting).
    StopRequested(StreamIndication),
    /// Any other indication (or DISCONNECT without a stream), for the record.
    Indication(StreamIndication),
    /// A response to a transaction that is not outstanding (one sent with
    /// [`crate::adsp::AdspLink::send_raw`], or a late one), with what it said.
    StrayResponse {
        /// Transaction id.
        txn: u16,
        /// TLV 0x10, when readable.
        status: Option<i32>,
        /// TLV 0x11, when readable.
        internal_status: Option<u32>,
    },
    /// A message from the service that could not be decoded (its transaction, if the header
    /// was readable). A pending request it answered is ended.
    BadMessage {
        /// Transaction id from the header.
        txn: Option<u16>,
        /// What was wrong.
        error: messages::Error,
    },
}

/// A QMI message to send from the client's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Destination (the service).
    pub to: Addr,
    /// The whole QMI message.
    pub message: Vec<u8>,
}

/// A request the client cannot make now.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Wrong state for this request.
    #[error("cannot {what} while {state}")]
    State {
        /// The request.
        what: &'static str,
        /// The state's name.
        state: &'static str,
    },
    /// The request did not encode.
    #[error("request does not encode")]
    Encode(#[from] messages::Error),
}

/// The client.
#[derive(Debug)]
pub struct UaudioClient {
    port: u32,
    state: State,
    next_txn: u16,
    last_response: Option<StreamResponse>,
}

impl UaudioClient {
    /// A client that will send from QRTR port `port` of the DSP node.
    pub fn new(port: u32) -> Self {
        Self {
            port,
            state: State::Idle,
            next_txn: 1,
            last_response: None,
        }
    }

    /// Our port.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Where we stand.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The resources of the enabled stream.
    pub fn resources(&self) -> Option<&StreamResources> {
        match &self.state {
            State::Streaming { resources, .. } => Some(resources),
            _ => None,
        }
    }

    /// The last stream response received, decoded (success or not).
    pub fn last_response(&self) -> Option<&StreamResponse> {
        self.last_response.as_ref()
    }

    /// The outstanding request, if any: the caller times it out.
    pub fn pending(&self) -> Option<Pending> {
        match &self.state {
            State::Enabling { pending, .. } | State::Disabling { pending, .. } => Some(*pending),
            _ => None,
        }
    }

    /// Since when we have been looking for the service, if we are.
    pub fn looking_since(&self) -> Option<Duration> {
        match self.state {
            State::Looking { since } => Some(since),
            _ => None,
        }
    }

    /// The link is up and our HELLO went out: look for the service. A known service is kept.
    pub fn start(&mut self, now: Duration) {
        if matches!(self.state, State::Idle) {
            self.state = State::Looking { since: now };
        }
    }

    /// The transport went away: everything is forgotten.
    pub fn link_down(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.service_down(DownReason::LinkDown, Duration::ZERO, &mut events);
        self.state = State::Idle;
        events
    }

    /// Gives up on the outstanding request (the caller's timeout). A late response to it is
    /// then ignored as an unknown transaction.
    pub fn abandon(&mut self) -> Option<Pending> {
        let pending = self.pending()?;
        if let Some(service) = self.state.service() {
            log::warn!(
                "UAUDIO: {:?} request {} abandoned without a response",
                pending.kind,
                pending.txn
            );
            self.state = State::ServiceUp { service };
        }
        Some(pending)
    }

    /// Requests the stream `params` describe. Allowed when the service is up and no stream is
    /// enabled or pending.
    pub fn enable(&mut self, params: StreamParams, now: Duration) -> Result<Outgoing, Error> {
        let State::ServiceUp { service } = self.state else {
            return Err(self.refuse("enable a stream"));
        };
        let (pending, out) = self.request(service, params, TxnKind::Enable, now)?;
        self.state = State::Enabling {
            service,
            pending,
            stop_requested: false,
        };
        Ok(out)
    }

    /// Forgets the enabled stream without telling the guest (a DSP that ignored the guest's
    /// DISCONNECT indication: the guest releases the stream on its own after its wait).
    /// Returns whether there was one.
    pub fn forget_stream(&mut self) -> bool {
        let State::Streaming { service, .. } = self.state else {
            return false;
        };
        self.state = State::ServiceUp { service };
        true
    }

    /// Disables the enabled stream with the parameters it was enabled with. The DSP must have
    /// stopped using the rings first.
    pub fn disable(&mut self, now: Duration) -> Result<Outgoing, Error> {
        let State::Streaming { params, .. } = self.state else {
            return Err(self.refuse("disable the stream"));
        };
        self.disable_params(params, now)
    }

    /// Sends a disable for `params`, also when no stream is known to be enabled (after an
    /// abandoned enable, or to test the guest's answer).
    pub fn disable_params(
        &mut self,
        params: StreamParams,
        now: Duration,
    ) -> Result<Outgoing, Error> {
        let service = match self.state {
            State::ServiceUp { service } | State::Streaming { service, .. } => service,
            _ => return Err(self.refuse("send a disable")),
        };
        let (pending, out) = self.request(service, params, TxnKind::Disable, now)?;
        self.state = State::Disabling { service, pending };
        Ok(out)
    }

    fn refuse(&self, what: &'static str) -> Error {
        Error::State {
            what,
            state: self.state.name(),
        }
    }

    fn request(
        &mut self,
        service: Addr,
        params: StreamParams,
        kind: TxnKind,
        now: Duration,
    ) -> Result<(Pending, Outgoing), Error> {
        let txn = self.next_txn;
        let message = params.request(kind == TxnKind::Enable).encode(txn)?;
        // Linux allocates transaction ids cyclically in 1..=0xFFFE; do the same.
        self.next_txn = if txn >= 0xFFFE { 1 } else { txn + 1 };
        let pending = Pending {
            txn,
            kind,
            since: now,
            params,
        };
        Ok((
            pending,
            Outgoing {
                to: service,
                message,
            },
        ))
    }

    /// Handles what the QRTR node reported. Never fails: bad input becomes a log line and, for
    /// messages from the service, a [`Event::BadMessage`].
    pub fn handle(&mut self, event: &NodeEvent, now: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        match event {
            NodeEvent::Hello { .. } => {}
            NodeEvent::NewServer(s) => self.new_server(s, now, &mut events),
            NodeEvent::DelServer(s) => {
                if self.is_service(Addr::new(s.node, s.port)) {
                    self.service_down(DownReason::DelServer, now, &mut events);
                }
            }
            NodeEvent::DelClient(c) => {
                if self.is_service(Addr::new(c.node, c.port)) {
                    self.service_down(DownReason::DelClient, now, &mut events);
                }
            }
            NodeEvent::Bye { node } => {
                if self.state.service().is_some_and(|s| s.node == *node) {
                    self.service_down(DownReason::Bye, now, &mut events);
                }
            }
            NodeEvent::Data {
                from,
                port,
                payload,
            } => {
                if *port != self.port {
                    return events;
                }
                if !self.is_service(*from) {
                    log::warn!("UAUDIO: ignoring a message from {from}, not the service");
                    return events;
                }
                self.message(payload, &mut events);
            }
        }
        events
    }

    fn is_service(&self, addr: Addr) -> bool {
        self.state.service() == Some(addr)
    }

    fn new_server(&mut self, s: &Server, now: Duration, events: &mut Vec<Event>) {
        if s.service != SERVICE {
            return;
        }
        if s.instance != SERVER_INSTANCE {
            log::warn!(
                "UAUDIO: service announced with instance {:#x}, expected {SERVER_INSTANCE:#x}",
                s.instance
            );
            return;
        }
        let addr = Addr::new(s.node, s.port);
        match self.state.service() {
            Some(known) if known == addr => return, // announced again (HELLO answered twice)
            Some(_) => self.service_down(DownReason::Moved, now, events),
            None => {}
        }
        log::info!("UAUDIO: service up at {addr}");
        self.state = State::ServiceUp { service: addr };
        events.push(Event::ServiceUp(addr));
    }

    /// The service is gone: back to looking for it.
    fn service_down(&mut self, reason: DownReason, now: Duration, events: &mut Vec<Event>) {
        let Some(service) = self.state.service() else {
            return;
        };
        let stream_lost = matches!(
            self.state,
            State::Enabling { .. } | State::Streaming { .. } | State::Disabling { .. }
        );
        log::info!("UAUDIO: service at {service} down ({reason:?})");
        self.state = State::Looking { since: now };
        events.push(Event::ServiceDown {
            service,
            reason,
            stream_lost,
        });
    }

    fn message(&mut self, buf: &[u8], events: &mut Vec<Event>) {
        let header = match Header::decode(buf) {
            Ok((h, _)) => h,
            Err(e) => {
                log::warn!("UAUDIO: unreadable message from the service: {e}");
                events.push(Event::BadMessage {
                    txn: None,
                    error: e.into(),
                });
                return;
            }
        };
        if header.msg_id != MSG_ID {
            log::warn!("UAUDIO: ignoring message id {:#06x}", header.msg_id);
            return;
        }
        match header.ty {
            MsgType::Response => self.response(header, buf, events),
            MsgType::Indication => self.indication(header, buf, events),
            MsgType::Request => {
                log::warn!(
                    "UAUDIO: ignoring a request from the service (txn {})",
                    header.txn
                )
            }
        }
    }

    fn response(&mut self, header: Header, buf: &[u8], events: &mut Vec<Event>) {
        let Some(pending) = self.pending().filter(|p| p.txn == header.txn) else {
            log::warn!(
                "UAUDIO: a response to transaction {}, which is not outstanding",
                header.txn
            );
            let response = StreamResponse::decode(buf).ok().map(|(_, r)| r);
            events.push(Event::StrayResponse {
                txn: header.txn,
                status: response.and_then(|r| r.status),
                internal_status: response.and_then(|r| r.internal_status),
            });
            return;
        };
        let Some(service) = self.state.service() else {
            return;
        };
        let stop_requested = matches!(
            self.state,
            State::Enabling {
                stop_requested: true,
                ..
            }
        );
        let response = match StreamResponse::decode(buf) {
            Ok((_, r)) => r,
            Err(error) => {
                log::warn!(
                    "UAUDIO: response {} unreadable: {}",
                    header.txn,
                    Chain(&error)
                );
                self.state = State::ServiceUp { service };
                events.push(Event::BadMessage {
                    txn: Some(header.txn),
                    error,
                });
                return;
            }
        };
        self.last_response = Some(response);
        if response.usb_token != Some(pending.params.token().raw()) {
            log::warn!(
                "UAUDIO: response {} echoes token {:?}, sent {:#x}",
                header.txn,
                response.usb_token,
                pending.params.token().raw()
            );
        }
        match pending.kind {
            TxnKind::Enable => match StreamResources::from_response(&response) {
                Ok(resources) => {
                    log::info!("UAUDIO: stream enabled (txn {})", header.txn);
                    self.state = State::Streaming {
                        service,
                        params: pending.params,
                        resources: Box::new(resources),
                        stop_requested,
                    };
                    events.push(Event::Enabled(Box::new(resources)));
                    if stop_requested {
                        // The DISCONNECT overtook this response (the driver sends it once
                        // in_use is set, possibly before the response): stop now.
                        events.push(Event::StopRequested(StreamIndication {
                            dev_event: dev_event::DISCONNECT,
                            slot_id: resources.slot_id,
                            ..Default::default()
                        }));
                    }
                }
                Err(failure) => {
                    log::warn!("UAUDIO: enable {} failed: {failure}", header.txn);
                    self.state = State::ServiceUp { service };
                    events.push(Event::EnableFailed {
                        txn: header.txn,
                        failure,
                    });
                }
            },
            TxnKind::Disable => {
                let status = response.status.unwrap_or(0);
                let internal_status = response.internal_errno().unwrap_or(0);
                let outcome = if status == 0 && internal_status == 0 {
                    Ok(())
                } else {
                    Err(Failure::Status {
                        status,
                        internal_status,
                    })
                };
                if let Err(f) = &outcome {
                    log::warn!("UAUDIO: disable {} failed: {f}", header.txn);
                }
                self.state = State::ServiceUp { service };
                events.push(Event::Disabled {
                    txn: header.txn,
                    outcome,
                });
            }
        }
    }

    fn indication(&mut self, header: Header, buf: &[u8], events: &mut Vec<Event>) {
        let ind = match StreamIndication::decode(buf) {
            Ok((_, i)) => i,
            Err(error) => {
                log::warn!("UAUDIO: indication unreadable: {}", Chain(&error));
                events.push(Event::BadMessage {
                    txn: Some(header.txn),
                    error,
                });
                return;
            }
        };
        if ind.dev_event != dev_event::DISCONNECT {
            events.push(Event::Indication(ind));
            return;
        }
        match &mut self.state {
            State::Streaming { stop_requested, .. } => {
                log::info!(
                    "UAUDIO: DISCONNECT for slot {}: stop, then disable",
                    ind.slot_id
                );
                *stop_requested = true;
                events.push(Event::StopRequested(ind));
            }
            State::Enabling { stop_requested, .. } => {
                log::info!(
                    "UAUDIO: DISCONNECT for slot {} before the enable response",
                    ind.slot_id
                );
                *stop_requested = true;
                events.push(Event::Indication(ind));
            }
            _ => events.push(Event::Indication(ind)),
        }
    }
}
