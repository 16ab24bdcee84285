//! The MHI device's state machine: registers, the host's state requests, commands, channel
//! doorbells, and the packets that cross the UL and DL channels.

use std::collections::{BTreeMap, VecDeque};

use vm_memory::GuestMemory;

use super::regs::{self, chstate, chtype, code, element, state};
use super::ring::{self, Context, Element, RingError, CONTEXT_SIZE};

/// Packets that may wait for a DL buffer on one channel; older ones are dropped beyond this.
pub const MAX_QUEUED: usize = 256;
/// Largest packet the device reassembles from chained UL elements, and the most bytes of
/// unfinished packets it holds across all channels (128 channels could otherwise hold 128 MiB).
pub const MAX_PACKET: usize = 1 << 20;
/// Bytes of UL elements one doorbell takes at most; the rest waits for the next doorbell. A ring
/// of 65536 elements of 64 KiB would otherwise hand 4 GiB of packets over at once.
pub const MAX_UL_BYTES_PER_DOORBELL: usize = 16 * MAX_PACKET;

/// Something the device's user must know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The host started a channel.
    Started(u8),
    /// A running channel stopped: the host stopped or reset it, or reset the device.
    Stopped(u8),
    /// A whole packet the host sent on a UL channel.
    Received(u8, Vec<u8>),
}

/// What an access did: MSI-X vectors to raise and notices, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Vectors to raise, each once.
    pub msi: Vec<u16>,
    /// Notices.
    pub notices: Vec<Notice>,
}

impl Outcome {
    fn raise(&mut self, vector: u16) {
        if !self.msi.contains(&vector) {
            self.msi.push(vector);
        }
    }

    /// Adds `other` after this one.
    pub fn merge(&mut self, other: Outcome) {
        for v in other.msi {
            self.raise(v);
        }
        self.notices.extend(other.notices);
    }
}

/// Running totals, for summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Commands completed.
    pub commands: u64,
    /// Events written.
    pub events: u64,
    /// Packets received on UL channels.
    pub ul_packets: u64,
    /// Packets delivered on DL channels.
    pub dl_packets: u64,
    /// Entries into M3 (suspend).
    pub m3_entries: u64,
    /// Refused host input (bad rings, bad elements, full event rings).
    pub errors: u64,
}

/// Address of context `index` in the array the host placed at `base` (a host-chosen value: the
/// sum must not wrap).
fn context_at(base: u64, index: u8) -> Result<u64, RingError> {
    base.checked_add(CONTEXT_SIZE * u64::from(index))
        .ok_or(RingError::Memory {
            addr: base,
            len: CONTEXT_SIZE as usize,
        })
}

/// The device.
#[derive(Debug)]
pub struct Mhi {
    regs: Vec<u32>,
    state: u8,
    ee_announced: bool,
    running: u128,
    queued: BTreeMap<u8, VecDeque<Vec<u8>>>,
    partial: BTreeMap<u8, Vec<u8>>,
    /// Totals.
    pub counters: Counters,
}

impl Default for Mhi {
    fn default() -> Self {
        Self::new()
    }
}

impl Mhi {
    /// A device powered on in mission mode, READY for the host.
    pub fn new() -> Self {
        Mhi {
            regs: vec![0; (regs::REGS_END / 4) as usize],
            state: state::READY,
            ee_announced: false,
            running: 0,
            queued: BTreeMap::new(),
            partial: BTreeMap::new(),
            counters: Counters::default(),
        }
    }

    /// The MHI state (see [`regs::state`]).
    pub fn state(&self) -> u8 {
        self.state
    }

    /// True while the host has channel `ch` started.
    pub fn is_running(&self, ch: u8) -> bool {
        ch < regs::CHANNELS && self.running & (1u128 << ch) != 0
    }

    fn reg(&self, offset: u64) -> u32 {
        self.regs.get((offset / 4) as usize).copied().unwrap_or(0)
    }

    fn reg64(&self, offset: u64) -> u64 {
        u64::from(self.reg(offset)) | u64::from(self.reg(offset + 4)) << 32
    }

    /// Reads the 32-bit register at `offset`.
    pub fn read(&self, offset: u64) -> u32 {
        let o = offset & !3;
        match o {
            regs::MHIREGLEN => regs::REGS_END as u32,
            regs::MHIVER => 0x0100_0000,
            regs::CHDBOFF => regs::CHDB_BASE as u32,
            regs::ERDBOFF => regs::ERDB_BASE as u32,
            regs::BHIOFF => regs::BHI_BASE as u32,
            regs::BHIEOFF => regs::BHIE_BASE as u32,
            regs::MHISTATUS => {
                let ready = if self.state == state::RESET {
                    0
                } else {
                    regs::STATUS_READY
                };
                u32::from(self.state) << 8 | ready
            }
            o if o == regs::BHI_BASE + regs::BHI_EXECENV => u32::from(regs::ee::AMSS),
            o if o == regs::BHI_BASE + regs::BHI_SERIALNU => 0x51de_ba4d_u32,
            o if o < regs::REGS_END => self.reg(o),
            _ => 0,
        }
    }

    /// Writes the 32-bit register at `offset`; doorbells and state requests act at once.
    pub fn write<M: GuestMemory>(&mut self, mem: &M, offset: u64, value: u32) -> Outcome {
        let mut out = Outcome::default();
        let o = offset & !3;
        let chdb = regs::CHDB_BASE..regs::CHDB_BASE + 8 * u64::from(regs::CHANNELS);
        let erdb = regs::ERDB_BASE..regs::ERDB_BASE + 8 * u64::from(regs::EVENT_RINGS);
        match o {
            regs::MHIREGLEN
            | regs::MHIVER
            | regs::CHDBOFF
            | regs::ERDBOFF
            | regs::BHIOFF
            | regs::BHIEOFF
            | regs::MHISTATUS => {}
            regs::MHICTRL => {
                self.regs[(o / 4) as usize] = value & !regs::CTRL_RESET;
                if value & regs::CTRL_RESET != 0 {
                    self.reset_state(&mut out);
                } else {
                    self.request_state(mem, (value >> 8) as u8, &mut out);
                }
            }
            regs::CRDB => {
                self.regs[(o / 4) as usize] = value;
                self.run_commands(mem, &mut out);
            }
            o if chdb.contains(&o) => {
                self.regs[(o / 4) as usize] = value;
                if (o - regs::CHDB_BASE) % 8 == 0 {
                    self.channel_doorbell(mem, ((o - regs::CHDB_BASE) / 8) as u8, &mut out);
                }
            }
            o if erdb.contains(&o) => {
                self.regs[(o / 4) as usize] = value;
                // The host gave event ring elements back: deliveries that waited may go on.
                if (o - regs::ERDB_BASE) % 8 == 0 {
                    self.pump_all(mem, &mut out);
                }
            }
            o if o < regs::REGS_END => self.regs[(o / 4) as usize] = value,
            _ => log::warn!("MHI: write of {value:#x} past the registers at {offset:#x}"),
        }
        out
    }

    /// A function-level reset: the device as at power-on.
    pub fn reset(&mut self) -> Outcome {
        let mut out = Outcome::default();
        self.reset_state(&mut out);
        self.regs.iter_mut().for_each(|r| *r = 0);
        out
    }

    /// Queues `packet` for the host on DL channel `ch` and delivers what the host has buffers
    /// for. A channel the host has not started drops it (there is nobody to read it).
    pub fn send<M: GuestMemory>(&mut self, mem: &M, ch: u8, packet: Vec<u8>) -> Outcome {
        let mut out = Outcome::default();
        if !self.is_running(ch) {
            log::warn!(
                "MHI: dropped a {}-byte packet for channel {ch}, which the host has not started",
                packet.len()
            );
            return out;
        }
        let q = self.queued.entry(ch).or_default();
        if q.len() >= MAX_QUEUED {
            q.pop_front();
            self.counters.errors += 1;
            log::warn!("MHI: channel {ch} has {MAX_QUEUED} packets waiting for host buffers; dropped the oldest");
        }
        q.push_back(packet);
        self.pump(mem, ch, &mut out);
        out
    }

    fn reset_state(&mut self, out: &mut Outcome) {
        for ch in 0..regs::CHANNELS {
            if self.is_running(ch) {
                out.notices.push(Notice::Stopped(ch));
            }
        }
        self.running = 0;
        self.queued.clear();
        self.partial.clear();
        self.ee_announced = false;
        self.state = state::READY;
    }

    fn refuse(&mut self, what: &str, e: RingError) {
        self.counters.errors += 1;
        log::warn!("MHI: {what}: {e}");
    }

    fn request_state<M: GuestMemory>(&mut self, mem: &M, want: u8, out: &mut Outcome) {
        match (self.state, want) {
            (s, w) if s == w => {}
            (state::READY | state::M3, state::M0) => {
                self.state = state::M0;
                self.announce(
                    mem,
                    Element::event(0, state::M0, 0, 0, element::STATE_CHANGE_EVENT),
                    out,
                );
                if !self.ee_announced {
                    self.ee_announced = true;
                    self.announce(
                        mem,
                        Element::event(0, regs::ee::AMSS, 0, 0, element::EE_EVENT),
                        out,
                    );
                }
                self.pump_all(mem, out);
            }
            (state::M0, state::M3) => {
                self.state = state::M3;
                self.counters.m3_entries += 1;
                self.announce(
                    mem,
                    Element::event(0, state::M3, 0, 0, element::STATE_CHANGE_EVENT),
                    out,
                );
            }
            (s, w) => log::warn!("MHI: the host asked for state {w:#x} in state {s:#x}; ignored"),
        }
    }

    /// Posts a control event on the primary event ring.
    fn announce<M: GuestMemory>(&mut self, mem: &M, ev: Element, out: &mut Outcome) {
        if let Err(e) = self.post(mem, 0, ev, out) {
            self.refuse("cannot post a control event", e);
        }
    }

    fn event_context<M: GuestMemory>(&self, mem: &M, er: u8) -> Result<Context, RingError> {
        if er >= regs::EVENT_RINGS {
            return Err(RingError::NoSuch {
                kind: "event ring",
                index: u32::from(er),
            });
        }
        Context::read(mem, context_at(self.reg64(regs::ECABAP), er)?)
    }

    fn channel_context<M: GuestMemory>(&self, mem: &M, ch: u8) -> Result<Context, RingError> {
        if ch >= regs::CHANNELS {
            return Err(RingError::NoSuch {
                kind: "channel",
                index: u32::from(ch),
            });
        }
        Context::read(mem, context_at(self.reg64(regs::CCABAP), ch)?)
    }

    fn room<M: GuestMemory>(&self, mem: &M, er: u8) -> bool {
        self.event_context(mem, er).is_ok_and(|c| c.rp != c.wp)
    }

    /// Writes `ev` at event ring `er`'s read pointer, moves the pointer and raises the ring's
    /// vector. The ring is full when the read pointer reaches the host's write pointer.
    fn post<M: GuestMemory>(
        &mut self,
        mem: &M,
        er: u8,
        ev: Element,
        out: &mut Outcome,
    ) -> Result<(), RingError> {
        let mut c = self.event_context(mem, er)?;
        if c.rp == c.wp {
            return Err(RingError::Full(er));
        }
        ring::write(mem, c.rp, &ev.to_bytes())?;
        let next = c.next(c.rp);
        c.set_rp(mem, next)?;
        self.counters.events += 1;
        out.raise(c.dw2 as u16);
        Ok(())
    }

    fn run_commands<M: GuestMemory>(&mut self, mem: &M, out: &mut Outcome) {
        if self.state != state::M0 {
            log::warn!("MHI: command doorbell in state {:#x}; ignored", self.state);
            return;
        }
        let mut c = match Context::read(mem, self.reg64(regs::CRCBAP)) {
            Ok(c) => c,
            Err(e) => return self.refuse("command ring", e),
        };
        for _ in 0..c.elements() {
            if c.rp == c.wp || !self.room(mem, 0) {
                break;
            }
            let result = Element::read(mem, c.rp).map(|cmd| self.command(mem, &cmd, out));
            let done = match result {
                Ok(cc) => Element::event(c.rp, cc, 0, 0, element::CMD_COMPLETION_EVENT),
                Err(e) => {
                    self.refuse("command element", e);
                    Element::event(c.rp, code::BAD_TRE, 0, 0, element::CMD_COMPLETION_EVENT)
                }
            };
            self.announce(mem, done, out);
            let next = c.next(c.rp);
            if let Err(e) = c.set_rp(mem, next) {
                return self.refuse("command ring", e);
            }
        }
    }

    /// Carries out one command; returns its completion code.
    fn command<M: GuestMemory>(&mut self, mem: &M, cmd: &Element, out: &mut Outcome) -> u8 {
        self.counters.commands += 1;
        let ch = cmd.channel();
        let kind = cmd.kind();
        if kind == element::NOOP {
            return code::SUCCESS;
        }
        if ![element::START_CHAN, element::STOP_CHAN, element::RESET_CHAN].contains(&kind) {
            self.counters.errors += 1;
            log::warn!("MHI: unknown command type {kind:#x}");
            return code::UNDEFINED_ERR;
        }
        let mut ctx = match self.channel_context(mem, ch) {
            Ok(c) => c,
            Err(e) => {
                self.refuse(&format!("channel {ch} context"), e);
                return code::UNDEFINED_ERR;
            }
        };
        let was_running = self.is_running(ch);
        let (new_state, run) = match kind {
            element::START_CHAN => (chstate::RUNNING, true),
            element::STOP_CHAN => (chstate::STOP, false),
            _ => (chstate::DISABLED, false),
        };
        if let Err(e) = ctx.set_dw0(mem, (ctx.dw0 & !0xff) | new_state) {
            self.refuse(&format!("channel {ch} context"), e);
            return code::UNDEFINED_ERR;
        }
        if run {
            self.running |= 1u128 << ch;
            out.notices.push(Notice::Started(ch));
        } else {
            self.running &= !(1u128 << ch);
            if kind == element::RESET_CHAN {
                self.queued.remove(&ch);
                self.partial.remove(&ch);
            }
            if was_running {
                out.notices.push(Notice::Stopped(ch));
            }
        }
        code::SUCCESS
    }

    fn channel_doorbell<M: GuestMemory>(&mut self, mem: &M, ch: u8, out: &mut Outcome) {
        if self.state != state::M0 || !self.is_running(ch) {
            log::debug!("MHI: doorbell of channel {ch} outside M0 or before its start; ignored");
            return;
        }
        let ctx = match self.channel_context(mem, ch) {
            Ok(c) => c,
            Err(e) => return self.refuse(&format!("channel {ch}"), e),
        };
        match ctx.dw1 {
            chtype::OUTBOUND => self.take_ul(mem, ch, ctx, out),
            chtype::INBOUND => self.pump(mem, ch, out),
            t => {
                self.counters.errors += 1;
                log::warn!("MHI: channel {ch} has type {t}, neither outbound nor inbound");
            }
        }
    }

    /// Consumes what the host queued on UL channel `ch`: one transfer event per element, up to
    /// [`MAX_UL_BYTES_PER_DOORBELL`].
    fn take_ul<M: GuestMemory>(&mut self, mem: &M, ch: u8, mut c: Context, out: &mut Outcome) {
        let er = c.dw2.min(255) as u8;
        let mut taken = 0usize;
        for _ in 0..c.elements() {
            if c.rp == c.wp || !self.room(mem, er) {
                break;
            }
            if taken >= MAX_UL_BYTES_PER_DOORBELL {
                log::warn!(
                    "MHI: channel {ch}: {taken} bytes taken at one doorbell; the rest waits for \
                     the next"
                );
                break;
            }
            let el = match Element::read(mem, c.rp) {
                Ok(el) => el,
                Err(e) => return self.refuse(&format!("channel {ch} element"), e),
            };
            let cc = self.take_element(mem, ch, &el, out);
            taken += usize::from(el.length());
            let ev = Element::event(c.rp, cc, el.length(), ch, element::TX_EVENT);
            if let Err(e) = self.post(mem, er, ev, out) {
                return self.refuse(&format!("channel {ch} completion"), e);
            }
            let next = c.next(c.rp);
            if let Err(e) = c.set_rp(mem, next) {
                return self.refuse(&format!("channel {ch}"), e);
            }
        }
    }

    /// One UL element of channel `ch`: its bytes join the channel's packet, delivered at the
    /// element that ends the chain. Returns the element's completion code.
    fn take_element<M: GuestMemory>(
        &mut self,
        mem: &M,
        ch: u8,
        el: &Element,
        out: &mut Outcome,
    ) -> u8 {
        if el.kind() != element::TRANSFER {
            self.counters.errors += 1;
            log::warn!(
                "MHI: channel {ch}: element of type {:#x} is not a transfer",
                el.kind()
            );
            return code::BAD_TRE;
        }
        // At most 64 KiB: the element's length field is 16 bits.
        let mut data = vec![0u8; usize::from(el.length())];
        if let Err(e) = ring::read(mem, el.ptr, &mut data) {
            self.refuse(&format!("channel {ch} buffer"), e);
            return code::BAD_TRE;
        }
        let held: usize = self.partial.values().map(Vec::len).sum();
        let part = self.partial.entry(ch).or_default();
        if held + data.len() > MAX_PACKET {
            let size = part.len() + data.len();
            part.clear();
            self.counters.errors += 1;
            log::warn!(
                "MHI: channel {ch}: a {size}-byte chained packet would hold more than \
                 {MAX_PACKET} bytes of unfinished packets; dropped"
            );
            return code::EOT;
        }
        part.extend_from_slice(&data);
        if !el.chained() {
            let packet = std::mem::take(part);
            self.counters.ul_packets += 1;
            out.notices.push(Notice::Received(ch, packet));
        }
        code::EOT
    }

    fn pump_all<M: GuestMemory>(&mut self, mem: &M, out: &mut Outcome) {
        let waiting: Vec<u8> = self
            .queued
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(ch, _)| *ch)
            .collect();
        for ch in waiting {
            self.pump(mem, ch, out);
        }
    }

    /// Delivers waiting packets on DL channel `ch`, one per buffer the host queued.
    fn pump<M: GuestMemory>(&mut self, mem: &M, ch: u8, out: &mut Outcome) {
        if self.state != state::M0 || !self.is_running(ch) {
            return;
        }
        if self.queued.get(&ch).is_none_or(VecDeque::is_empty) {
            return;
        }
        let mut c = match self.channel_context(mem, ch) {
            Ok(c) => c,
            Err(e) => return self.refuse(&format!("channel {ch}"), e),
        };
        if c.dw1 != chtype::INBOUND {
            self.counters.errors += 1;
            log::warn!(
                "MHI: packets for channel {ch}, which is not inbound (type {})",
                c.dw1
            );
            return;
        }
        let er = c.dw2.min(255) as u8;
        for _ in 0..c.elements() {
            if c.rp == c.wp || !self.room(mem, er) {
                break;
            }
            let Some(packet) = self.queued.get_mut(&ch).and_then(VecDeque::pop_front) else {
                break;
            };
            let el = match Element::read(mem, c.rp) {
                Ok(el) => el,
                Err(e) => return self.refuse(&format!("channel {ch} element"), e),
            };
            let cap = usize::from(el.length());
            let (n, mut cc) = if packet.len() > cap {
                (cap, code::OVERFLOW)
            } else {
                (packet.len(), code::EOT)
            };
            if let Err(e) = ring::write(mem, el.ptr, &packet[..n]) {
                self.refuse(&format!("channel {ch} buffer"), e);
                cc = code::BAD_TRE;
            }
            if cc == code::OVERFLOW {
                self.counters.errors += 1;
                log::warn!(
                    "MHI: channel {ch}: a {}-byte packet does not fit a {cap}-byte buffer",
                    packet.len()
                );
            }
            let ev = Element::event(c.rp, cc, n as u16, ch, element::TX_EVENT);
            if let Err(e) = self.post(mem, er, ev, out) {
                return self.refuse(&format!("channel {ch} completion"), e);
            }
            self.counters.dl_packets += 1;
            let next = c.next(c.rp);
            if let Err(e) = c.set_rp(mem, next) {
                return self.refuse(&format!("channel {ch}"), e);
            }
        }
    }
}
