//! The DSP's stream manager (ASM, APR service 7) for PCM playback, as q6asm and q6asm-dai drive
//! it: the PCM buffer is mapped once (SHARED_MEM_MAP_REGIONS, answered with a map handle), a
//! stream opened for multi-channel PCM (OPEN_WRITE_V3) and given its format
//! (MEDIA_FMT_UPDATE_V2), then buffers are queued (WRITE_V2, no answer) and the session run
//! (RUN_V2), paused, drained (EOS) and closed. The DSP plays the queued buffers in order; each
//! one played goes back as WRITE_DONE_V2 carrying its address, which q6asm checks against the
//! period it queued. Session commands come from port 0; stream commands from port
//! session << 8 | stream.
//!
//! The model keeps what the guest asked for; what consumes the buffers (and when) is the
//! caller's: [`Asm::front`] names the next buffer of a running session, [`Asm::complete_front`]
//! gives the events to send once it has played.

use std::collections::{BTreeMap, VecDeque};

use super::packet::{self, u16_at, u32_at, words, Header, MsgType};

/// ASM_CMD_SHARED_MEM_MAP_REGIONS and its answer.
pub const MAP_REGIONS: u32 = 0x0001_0D92;
const MAP_REGIONS_RSP: u32 = 0x0001_0D93;
/// ASM_CMD_SHARED_MEM_UNMAP_REGIONS.
pub const UNMAP_REGIONS: u32 = 0x0001_0D94;
/// ASM_STREAM_CMD_OPEN_WRITE_V3.
pub const OPEN_WRITE_V3: u32 = 0x0001_0DB3;
/// ASM_DATA_CMD_MEDIA_FMT_UPDATE_V2.
pub const MEDIA_FMT_UPDATE_V2: u32 = 0x0001_0D98;
/// ASM_DATA_CMD_WRITE_V2.
pub const WRITE_V2: u32 = 0x0001_0DAB;
/// ASM_DATA_EVENT_WRITE_DONE_V2.
pub const WRITE_DONE_V2: u32 = 0x0001_0D99;
/// ASM_SESSION_CMD_RUN_V2.
pub const RUN_V2: u32 = 0x0001_0DAA;
/// ASM_SESSION_CMD_PAUSE.
pub const PAUSE: u32 = 0x0001_0BD3;
/// ASM_DATA_CMD_EOS.
pub const EOS: u32 = 0x0001_0BDB;
/// ASM_DATA_EVENT_RENDERED_EOS.
pub const RENDERED_EOS: u32 = 0x0001_0C1C;
/// ASM_STREAM_CMD_CLOSE.
pub const CLOSE: u32 = 0x0001_0BCD;
/// ASM_STREAM_CMD_FLUSH.
pub const FLUSH: u32 = 0x0001_0BCE;
/// ASM_MEDIA_FMT_MULTI_CHANNEL_PCM_V2: the only decoder this DSP has.
pub const FMT_MULTI_CHANNEL_PCM_V2: u32 = 0x0001_0DA5;
/// Status: a bad parameter (ADSP_EBADPARAM).
pub const EBADPARAM: u32 = 2;
/// Status: wrong state for the command (ADSP_EALREADY stands in for "not now").
pub const EALREADY: u32 = 5;

/// Sessions q6asm can open (MAX_SESSIONS).
const MAX_SESSIONS: u8 = 8;
/// Regions one map may name; q6asm maps a PCM buffer as one contiguous region.
const MAX_REGIONS: usize = 16;
/// Maps alive at once; q6asm keeps one per session and direction.
const MAX_MAPS: usize = 2 * MAX_SESSIONS as usize;
/// Buffers queued per session; q6asm-dai queues at most its period count, so a guest past this
/// is broken: the write is refused (EBADPARAM) with a log line.
const MAX_QUEUED: usize = 64;

/// The PCM format a stream plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmFormat {
    /// Channels.
    pub channels: u16,
    /// Bits per sample.
    pub bits: u16,
    /// Sample rate in Hz.
    pub rate: u32,
}

/// One buffer the guest queued: an IOVA through the DSP's SMMU (SID in the upper word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBuf {
    /// Address as the guest sent it: msw << 32 | lsw.
    pub addr: u64,
    /// Bytes of PCM in it.
    pub len: u32,
    /// The map handle it belongs to.
    pub handle: u32,
    /// The guest's token (its period index and length), echoed in the done event.
    pub token: u32,
}

/// One mapped shared memory region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Address as the guest sent it (msw << 32 | lsw).
    pub addr: u64,
    /// Bytes.
    pub size: u32,
}

#[derive(Clone, Debug, Default)]
struct Stream {
    format: Option<PcmFormat>,
    running: bool,
    /// Playout credit of [`Asm::play`], in byte-microseconds (no rounding drift).
    credit: u128,
    /// Bytes of the front buffer already consumed by [`Asm::consume`].
    offset: u32,
    eos: Option<Header>,
    queue: VecDeque<(Header, WriteBuf)>,
}

/// Figures of the stream manager.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsmStats {
    /// Buffers queued by WRITE_V2.
    pub writes: u64,
    /// Buffers given back played (WRITE_DONE_V2 sent).
    pub writes_done: u64,
    /// Bytes in those.
    pub bytes_done: u64,
    /// RENDERED_EOS events sent.
    pub eos_rendered: u64,
    /// Commands refused (bad parameter, wrong state, full queue).
    pub refused: u64,
}

/// The stream manager's state.
#[derive(Clone, Debug, Default)]
pub struct Asm {
    maps: BTreeMap<u32, Vec<Region>>,
    next_handle: u32,
    streams: BTreeMap<u8, Stream>,
    stats: AsmStats,
}

impl Asm {
    /// Figures so far.
    pub fn stats(&self) -> AsmStats {
        self.stats
    }

    /// Sessions whose stream is open, with their format once set.
    pub fn sessions(&self) -> Vec<(u8, Option<PcmFormat>, bool)> {
        self.streams
            .iter()
            .map(|(&s, st)| (s, st.format, st.running))
            .collect()
    }

    /// The next buffer a running session plays, if it has one queued.
    pub fn front(&self, session: u8) -> Option<WriteBuf> {
        let s = self.streams.get(&session)?;
        if !s.running {
            return None;
        }
        s.queue.front().map(|(_, b)| *b)
    }

    /// The front buffer of `session` has played: the packets to send (its WRITE_DONE_V2, and a
    /// RENDERED_EOS once an EOS finds the queue empty).
    pub fn complete_front(&mut self, session: u8) -> Vec<Vec<u8>> {
        let Some(s) = self.streams.get_mut(&session) else {
            return Vec::new();
        };
        let Some((h, b)) = s.queue.pop_front() else {
            return Vec::new();
        };
        s.offset = 0;
        self.stats.writes_done += 1;
        self.stats.bytes_done += u64::from(b.len);
        let payload = words(&[b.addr as u32, (b.addr >> 32) as u32, b.handle, 0]);
        let mut out = vec![packet::answer(&h, MsgType::Event, WRITE_DONE_V2, &payload)];
        out.extend(self.rendered_eos(session));
        out
    }

    /// The next bytes a running session plays, at most `max`: the address (as the guest sent it,
    /// SID in the upper word) and length of the unplayed part of its front buffer.
    pub fn next_chunk(&self, session: u8, max: u32) -> Option<(u64, u32)> {
        let s = self.streams.get(&session).filter(|s| s.running)?;
        let (_, b) = s.queue.front()?;
        let len = (b.len - s.offset).min(max);
        (len > 0).then_some((b.addr + u64::from(s.offset), len))
    }

    /// `n` bytes of `session`'s front buffer have been taken (from [`next_chunk`](Self::next_chunk));
    /// once all of it has, the packets [`complete_front`](Self::complete_front) gives.
    pub fn consume(&mut self, session: u8, n: u32) -> Vec<Vec<u8>> {
        let Some(s) = self.streams.get_mut(&session) else {
            return Vec::new();
        };
        let Some((_, b)) = s.queue.front() else {
            return Vec::new();
        };
        s.offset = (s.offset + n).min(b.len);
        if s.offset < b.len {
            return Vec::new();
        }
        self.complete_front(session)
    }

    /// Plays `elapsed_us` of every running session in real time: each buffer whose bytes the
    /// time covers (at the stream's format) is given back. Credit does not build up while a
    /// session has nothing queued, so a late write does not play faster. Returns the packets.
    pub fn play(&mut self, elapsed_us: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let sessions: Vec<u8> = self.streams.keys().copied().collect();
        for session in sessions {
            let s = self.streams.get_mut(&session).expect("listed");
            let Some(f) = s.format.filter(|_| s.running) else {
                continue;
            };
            if s.queue.is_empty() {
                s.credit = 0;
                continue;
            }
            // S16 is packed; 24- and 32-bit samples sit in 4-byte containers (S24_LE, S32_LE).
            let sample_bytes: u128 = if f.bits == 16 { 2 } else { 4 };
            s.credit +=
                u128::from(elapsed_us) * u128::from(f.rate) * u128::from(f.channels) * sample_bytes;
            loop {
                let s = self.streams.get_mut(&session).expect("listed");
                // A buffer the engine already took part of costs only its rest.
                let Some(len) = s.queue.front().map(|(_, b)| u128::from(b.len - s.offset)) else {
                    s.credit = 0;
                    break;
                };
                let cost = len * 1_000_000;
                if s.credit < cost {
                    break;
                }
                s.credit -= cost;
                out.extend(self.complete_front(session));
            }
        }
        out
    }

    fn rendered_eos(&mut self, session: u8) -> Option<Vec<u8>> {
        let s = self.streams.get_mut(&session)?;
        if !s.queue.is_empty() {
            return None;
        }
        let h = s.eos.take()?;
        self.stats.eos_rendered += 1;
        Some(packet::answer(&h, MsgType::Event, RENDERED_EOS, &[]))
    }

    /// Answers one command; what goes back now, in order (a queued write gets nothing until it
    /// has played).
    pub fn handle(&mut self, req: &Header, payload: &[u8]) -> Vec<Vec<u8>> {
        let session = (req.dest_port >> 8) as u8;
        if session == 0 {
            return vec![self.session_command(req, payload)];
        }
        if session > MAX_SESSIONS {
            log::warn!("ASM: command {:#x} for session {session}", req.opcode);
            self.stats.refused += 1;
            return vec![packet::basic(req, EBADPARAM)];
        }
        match req.opcode {
            OPEN_WRITE_V3 => vec![self.open_write(req, payload, session)],
            MEDIA_FMT_UPDATE_V2 => vec![self.media_format(req, payload, session)],
            WRITE_V2 => self.write(req, payload, session),
            RUN_V2 => vec![self.set_running(req, session, true)],
            PAUSE => vec![self.set_running(req, session, false)],
            EOS => match self.streams.get_mut(&session) {
                Some(s) => {
                    s.eos = Some(*req);
                    self.rendered_eos(session).into_iter().collect()
                }
                None => vec![self.refuse(req, EALREADY, "EOS on a closed stream")],
            },
            FLUSH => match self.streams.get_mut(&session) {
                Some(s) => {
                    s.queue.clear();
                    vec![packet::basic(req, packet::EOK)]
                }
                None => vec![self.refuse(req, EALREADY, "FLUSH on a closed stream")],
            },
            CLOSE => match self.streams.remove(&session) {
                Some(_) => vec![packet::basic(req, packet::EOK)],
                None => vec![self.refuse(req, EALREADY, "CLOSE of a closed stream")],
            },
            other => {
                log::debug!("ASM: stream command {other:#x}, not modelled");
                vec![packet::basic(req, packet::EUNSUPPORTED)]
            }
        }
    }

    fn refuse(&mut self, req: &Header, status: u32, why: &str) -> Vec<u8> {
        log::warn!("ASM: refused {:#x}: {why}", req.opcode);
        self.stats.refused += 1;
        packet::basic(req, status)
    }

    /// Commands to port 0: the shared memory maps.
    fn session_command(&mut self, req: &Header, p: &[u8]) -> Vec<u8> {
        match req.opcode {
            MAP_REGIONS => {
                let regions = (|| {
                    let n = usize::from(u16_at(p, 2)?);
                    if n == 0 || n > MAX_REGIONS || p.len() != 8 + 12 * n {
                        return None;
                    }
                    (0..n)
                        .map(|i| {
                            let at = 8 + 12 * i;
                            let addr =
                                u64::from(u32_at(p, at)?) | u64::from(u32_at(p, at + 4)?) << 32;
                            let size = u32_at(p, at + 8)?;
                            (size != 0).then_some(Region { addr, size })
                        })
                        .collect::<Option<Vec<_>>>()
                })();
                let Some(regions) = regions else {
                    return self.refuse(req, EBADPARAM, "malformed SHARED_MEM_MAP_REGIONS");
                };
                if self.maps.len() >= MAX_MAPS {
                    return self.refuse(req, EBADPARAM, "too many shared memory maps");
                }
                self.next_handle = self.next_handle.wrapping_add(1).max(1);
                while self.maps.contains_key(&self.next_handle) {
                    self.next_handle = self.next_handle.wrapping_add(1).max(1);
                }
                self.maps.insert(self.next_handle, regions);
                packet::answer(
                    req,
                    MsgType::CmdRsp,
                    MAP_REGIONS_RSP,
                    &words(&[self.next_handle]),
                )
            }
            UNMAP_REGIONS => match u32_at(p, 0).and_then(|h| self.maps.remove(&h)) {
                Some(_) => packet::basic(req, packet::EOK),
                None => self.refuse(req, EBADPARAM, "UNMAP of an unknown handle"),
            },
            other => {
                log::debug!("ASM: session command {other:#x}, not modelled");
                packet::basic(req, packet::EUNSUPPORTED)
            }
        }
    }

    /// {mode_flags, u16 sink endpoint, u16 bits, postproc topology, decoder format}.
    fn open_write(&mut self, req: &Header, p: &[u8], session: u8) -> Vec<u8> {
        let Some(fmt) = u32_at(p, 12) else {
            return self.refuse(req, EBADPARAM, "short OPEN_WRITE_V3");
        };
        if fmt != FMT_MULTI_CHANNEL_PCM_V2 {
            log::warn!("ASM: stream format {fmt:#x}: only multi-channel PCM is modelled");
            return packet::basic(req, packet::EUNSUPPORTED);
        }
        if self.streams.contains_key(&session) {
            return self.refuse(req, EALREADY, "OPEN_WRITE_V3 of an open stream");
        }
        self.streams.insert(session, Stream::default());
        packet::basic(req, packet::EOK)
    }

    /// {fmt_blk_size, u16 channels, u16 bits, rate, u16 signed, u16 0, map[8]}.
    fn media_format(&mut self, req: &Header, p: &[u8], session: u8) -> Vec<u8> {
        let fields = (|| Some((u16_at(p, 4)?, u16_at(p, 6)?, u32_at(p, 8)?)))();
        let Some((channels, bits, rate)) = fields else {
            return self.refuse(req, EBADPARAM, "short MEDIA_FMT_UPDATE_V2");
        };
        if !(1..=8).contains(&channels) || ![16, 24, 32].contains(&bits) || rate == 0 {
            return self.refuse(req, EBADPARAM, "PCM format out of range");
        }
        let Some(s) = self.streams.get_mut(&session) else {
            return self.refuse(req, EALREADY, "format for a closed stream");
        };
        s.format = Some(PcmFormat {
            channels,
            bits,
            rate,
        });
        packet::basic(req, packet::EOK)
    }

    /// {lsw, msw, handle, size, seq, ts lsw, ts msw, flags}: queued, answered when played.
    fn write(&mut self, req: &Header, p: &[u8], session: u8) -> Vec<Vec<u8>> {
        let fields = (|| {
            let addr = u64::from(u32_at(p, 0)?) | u64::from(u32_at(p, 4)?) << 32;
            Some((addr, u32_at(p, 8)?, u32_at(p, 12)?))
        })();
        let Some((addr, handle, len)) = fields.filter(|f| f.2 > 0) else {
            return vec![self.refuse(req, EBADPARAM, "short or empty WRITE_V2")];
        };
        // Checked: the guest picks both ends, and a sum past u64 is outside every region.
        let end = addr.checked_add(u64::from(len));
        let inside = self.maps.get(&handle).is_some_and(|regions| {
            regions.iter().any(|r| {
                let region_end = r.addr.checked_add(u64::from(r.size));
                addr >= r.addr && end.is_some() && region_end.is_some() && end <= region_end
            })
        });
        if !inside {
            return vec![self.refuse(req, EBADPARAM, "WRITE_V2 outside its mapped region")];
        }
        let Some(s) = self.streams.get_mut(&session) else {
            return vec![self.refuse(req, EALREADY, "WRITE_V2 to a closed stream")];
        };
        if s.queue.len() >= MAX_QUEUED {
            return vec![self.refuse(req, EBADPARAM, "WRITE_V2 past the queue's bound")];
        }
        s.queue.push_back((
            *req,
            WriteBuf {
                addr,
                len,
                handle,
                token: req.token,
            },
        ));
        self.stats.writes += 1;
        Vec::new()
    }

    fn set_running(&mut self, req: &Header, session: u8, running: bool) -> Vec<u8> {
        match self.streams.get_mut(&session) {
            Some(s) => {
                s.running = running;
                packet::basic(req, packet::EOK)
            }
            None => self.refuse(req, EALREADY, "RUN/PAUSE of a closed stream"),
        }
    }
}
