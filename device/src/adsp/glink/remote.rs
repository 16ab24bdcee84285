//! The remote (DSP) end of GLINK: answers the guest's version offer, then opens the channels the
//! DSP offers; acknowledges the guest's opens of them; reassembles the guest's TX_DATA chunks
//! into messages and sends its own as single chunks. Intentless, as `qcom_glink_rpm` runs.
//!
//! Ids: each side names a channel by its own id. The remote's OPEN carries its id (rcid), the
//! guest acknowledges with it and sends data to the remote under its own id (lcid); the remote
//! acknowledges the guest's OPEN with the lcid and sends data under the rcid.

use std::collections::VecDeque;

use vm_memory::GuestMemory;

use super::msg_ram::{FifoError, MsgRam};
use super::wire::{self, Command, MAX_PAYLOAD, VERSION_1};

/// Most encoded messages waiting for room in the guest's receive FIFO.
const MAX_QUEUED: usize = 256;

/// What a poll hands to the services above GLINK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Both sides opened and acknowledged the channel: it carries data now.
    Up(String),
    /// One whole message the guest sent on the channel.
    Data { channel: String, payload: Vec<u8> },
    /// The guest closed the channel.
    Down(String),
}

/// The result of one poll.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    /// Channel events and messages, in the order the guest sent them.
    pub delivered: Vec<Delivery>,
    /// The guest must be interrupted: the remote wrote to its FIFO, or it asked (READ_NOTIF).
    pub interrupt: bool,
}

/// Link figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlinkStats {
    /// Commands read from the guest.
    pub commands_in: u64,
    /// Commands written to the guest.
    pub commands_out: u64,
    /// Whole data messages delivered.
    pub messages_in: u64,
    /// Messages or bytes dropped as malformed.
    pub malformed: u64,
}

/// Why [`GlinkRemote::send`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The channel is not open on both sides.
    #[error("GLINK channel '{0}' is not up")]
    NotUp(String),
    /// The message would not fit in the guest's FIFO in one chunk.
    #[error("GLINK message of {0} bytes is larger than one chunk")]
    TooLong(usize),
    /// Too many messages wait for the guest to read.
    #[error("GLINK queue full ({MAX_QUEUED} messages wait for the guest)")]
    QueueFull,
}

#[derive(Clone, Debug)]
struct Channel {
    name: String,
    rcid: u16,
    lcid: Option<u16>,
    acked: bool,
    closing: bool,
    partial: Vec<u8>,
}

impl Channel {
    fn up(&self) -> bool {
        self.lcid.is_some() && self.acked && !self.closing
    }
}

/// The DSP's end of one GLINK-RPM link.
#[derive(Clone, Debug)]
pub struct GlinkRemote {
    ram: MsgRam,
    agreed: bool,
    channels: Vec<Channel>,
    next_rcid: u16,
    queued: VecDeque<Vec<u8>>,
    broken: Option<String>,
    stats: GlinkStats,
}

impl GlinkRemote {
    /// A remote on `ram` that will open `offered` channels once the guest agreed a version.
    pub fn new(ram: MsgRam, offered: &[&str]) -> Self {
        GlinkRemote {
            ram,
            agreed: false,
            channels: offered
                .iter()
                .zip(1u16..)
                .map(|(name, rcid)| Channel {
                    name: name.to_string(),
                    rcid,
                    lcid: None,
                    acked: false,
                    closing: false,
                    partial: Vec::new(),
                })
                .collect(),
            next_rcid: offered.len() as u16 + 1,
            queued: VecDeque::new(),
            broken: None,
            stats: GlinkStats::default(),
        }
    }

    /// Writes the message RAM's table and empties the FIFOs; the link starts over (each
    /// channel under a new id, as after a DSP restart).
    pub fn install<M: GuestMemory>(&mut self, mem: &M) -> Result<(), FifoError> {
        self.agreed = false;
        self.queued.clear();
        self.broken = None;
        for i in 0..self.channels.len() {
            let rcid = self.take_rcid();
            let ch = &mut self.channels[i];
            *ch = Channel {
                name: std::mem::take(&mut ch.name),
                rcid,
                lcid: None,
                acked: false,
                closing: false,
                partial: Vec::new(),
            };
        }
        self.ram.install(mem)
    }

    fn take_rcid(&mut self) -> u16 {
        let id = self.next_rcid;
        self.next_rcid = self.next_rcid.checked_add(1).unwrap_or(1);
        id
    }

    /// Figures so far.
    pub fn stats(&self) -> GlinkStats {
        self.stats
    }

    /// Why the link stopped, if the guest corrupted it.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Whether the guest has not yet read everything the remote wrote to it.
    pub fn guest_has_unread<M: GuestMemory>(&self, mem: &M) -> bool {
        self.ram.r2ap().used(mem).is_ok_and(|n| n > 0)
    }

    /// Whether `name` carries data.
    pub fn is_up(&self, name: &str) -> bool {
        self.channels.iter().any(|c| c.name == name && c.up())
    }

    /// Queues one message to the guest on `name`; the next poll writes it.
    pub fn send(&mut self, name: &str, payload: &[u8]) -> Result<(), SendError> {
        let ch = self
            .channels
            .iter()
            .find(|c| c.name == name && c.up())
            .ok_or_else(|| SendError::NotUp(name.to_string()))?;
        if payload.len() + 32 >= self.ram.r2ap().ring_len() as usize {
            return Err(SendError::TooLong(payload.len()));
        }
        let msg = wire::encode(&Command::TxData {
            id: ch.rcid,
            left: 0,
            chunk: payload.to_vec(),
        });
        self.queue(msg).then_some(()).ok_or(SendError::QueueFull)
    }

    fn queue(&mut self, msg: Vec<u8>) -> bool {
        if self.queued.len() >= MAX_QUEUED {
            return false;
        }
        self.queued.push_back(msg);
        true
    }

    /// Reads everything whole the guest wrote, answers it, and writes what is queued.
    pub fn poll<M: GuestMemory>(&mut self, mem: &M) -> Poll {
        let mut poll = Poll::default();
        if self.broken.is_some() {
            return poll;
        }
        if let Err(e) = self
            .read_all(mem, &mut poll)
            .and_then(|()| self.flush(mem, &mut poll))
        {
            log::warn!("GLINK: link stopped: {e}");
            self.broken = Some(e.to_string());
        }
        poll
    }

    fn read_all<M: GuestMemory>(&mut self, mem: &M, poll: &mut Poll) -> Result<(), FifoError> {
        let fifo = self.ram.ap2r();
        loop {
            let used = fifo.used(mem)?;
            let mut head = [0u8; 16];
            let seen = (used as usize).min(16);
            fifo.peek(mem, 0, &mut head[..seen])?;
            let len = match wire::message_len(&head[..seen]) {
                Ok(Some(n)) if n <= used as usize => n,
                Ok(_) => return Ok(()),
                Err(e) => {
                    // Without a length the rest cannot be framed: drop what is there.
                    log::warn!("GLINK: {e}; dropping {used} byte(s) the guest wrote");
                    self.stats.malformed += 1;
                    return fifo.advance(mem, used);
                }
            };
            let mut msg = vec![0u8; len];
            fifo.peek(mem, 0, &mut msg)?;
            fifo.advance(mem, len as u32)?;
            self.stats.commands_in += 1;
            match wire::decode(&msg) {
                Ok(c) => self.handle(c, poll),
                Err(e) => {
                    log::warn!("GLINK: {e}");
                    self.stats.malformed += 1;
                }
            }
        }
    }

    fn handle(&mut self, c: Command, poll: &mut Poll) {
        match c {
            Command::Version { version, .. } => {
                // The guest's features are 0 (intentless RPM); answering with 0 ends the
                // negotiation on its side.
                let version = if version >= VERSION_1 { VERSION_1 } else { 0 };
                self.queue(wire::encode(&Command::VersionAck {
                    version,
                    features: 0,
                }));
                if version == VERSION_1 && !self.agreed {
                    self.agreed = true;
                    let opens: Vec<Vec<u8>> = self
                        .channels
                        .iter()
                        .map(|c| {
                            wire::encode(&Command::Open {
                                id: c.rcid,
                                name: c.name.clone(),
                            })
                        })
                        .collect();
                    for o in opens {
                        self.queue(o);
                    }
                }
            }
            Command::VersionAck { .. } | Command::Signals { .. } => {}
            Command::Open { id, name } => match self.channels.iter_mut().find(|c| c.name == name) {
                Some(ch) => {
                    ch.lcid = Some(id);
                    ch.partial.clear();
                    let up = ch.up();
                    self.queue(wire::encode(&Command::OpenAck { id }));
                    if up {
                        poll.delivered.push(Delivery::Up(name));
                    }
                }
                None => log::warn!("GLINK: the guest opens '{name}', which the DSP does not offer"),
            },
            Command::OpenAck { id } => {
                if let Some(ch) = self.channels.iter_mut().find(|c| c.rcid == id) {
                    ch.acked = true;
                    if ch.up() {
                        poll.delivered.push(Delivery::Up(ch.name.clone()));
                    }
                } else {
                    log::warn!("GLINK: OPEN_ACK for unknown remote channel {id}");
                }
            }
            Command::Close { id } => {
                self.queue(wire::encode(&Command::CloseAck { id }));
                if let Some(ch) = self.channels.iter_mut().find(|c| c.lcid == Some(id)) {
                    let was_up = ch.up();
                    ch.lcid = None;
                    ch.partial.clear();
                    // Close our end too; once the guest acknowledges, the channel is offered
                    // again under a new id, so a reloaded driver finds it.
                    ch.closing = true;
                    let rcid = ch.rcid;
                    let name = ch.name.clone();
                    self.queue(wire::encode(&Command::Close { id: rcid }));
                    if was_up {
                        poll.delivered.push(Delivery::Down(name));
                    }
                }
            }
            Command::CloseAck { id } => {
                let rcid = self.take_rcid();
                if let Some(ch) = self.channels.iter_mut().find(|c| c.rcid == id && c.closing) {
                    *ch = Channel {
                        name: ch.name.clone(),
                        rcid,
                        lcid: None,
                        acked: false,
                        closing: false,
                        partial: Vec::new(),
                    };
                    let open = wire::encode(&Command::Open {
                        id: rcid,
                        name: ch.name.clone(),
                    });
                    self.queue(open);
                }
            }
            Command::TxData { id, left, chunk } => {
                let Some(ch) = self
                    .channels
                    .iter_mut()
                    .find(|c| c.lcid == Some(id) && c.up())
                else {
                    log::warn!(
                        "GLINK: {} byte(s) on unknown or closed channel {id}",
                        chunk.len()
                    );
                    self.stats.malformed += 1;
                    return;
                };
                if ch.partial.len() + chunk.len() + left as usize > MAX_PAYLOAD {
                    log::warn!("GLINK: message on '{}' longer than {MAX_PAYLOAD}", ch.name);
                    ch.partial.clear();
                    self.stats.malformed += 1;
                    return;
                }
                ch.partial.extend_from_slice(&chunk);
                if left == 0 {
                    self.stats.messages_in += 1;
                    poll.delivered.push(Delivery::Data {
                        channel: ch.name.clone(),
                        payload: std::mem::take(&mut ch.partial),
                    });
                }
            }
            Command::ReadNotif => poll.interrupt = true,
        }
    }

    fn flush<M: GuestMemory>(&mut self, mem: &M, poll: &mut Poll) -> Result<(), FifoError> {
        let fifo = self.ram.r2ap();
        while let Some(msg) = self.queued.front() {
            if !fifo.push(mem, msg)? {
                break;
            }
            self.queued.pop_front();
            self.stats.commands_out += 1;
            poll.interrupt = true;
        }
        Ok(())
    }
}
