//! The recorder: every sample the playback endpoint receives, kept in bounded memory as chunks
//! the backend drains (or receives through a [`RecordSink`]), with per-interval accounting of
//! packets, bytes, gaps and packet sizes against the rate the device announced.

use std::collections::VecDeque;

use log::{debug, warn};

use super::clock::DeviceClock;
use super::format::StreamFormat;
use crate::usb::BusTime;

/// A run of consecutive frames of one stream, in the wire format (interleaved, little-endian,
/// `bits / 8` bytes per sample).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedChunk {
    /// Which stream (counting from 1) the frames belong to; a new alternate setting or rate
    /// starts a new stream.
    pub stream: u64,
    /// The stream's format.
    pub format: StreamFormat,
    /// Index in the stream of the chunk's first frame (frames lost to overflow are counted, so a
    /// jump between chunks shows where data was dropped).
    pub first_frame: u64,
    /// Bus time of the packet that started the chunk.
    pub start: BusTime,
    /// The samples.
    pub data: Vec<u8>,
}

/// Receives completed chunks as they fill, instead of the recorder queueing them (the backend
/// forwards them to its WAV writer).
pub trait RecordSink: Send + std::fmt::Debug {
    /// A completed chunk.
    fn chunk(&mut self, chunk: RecordedChunk);
}

/// Memory bounds of the recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecorderLimits {
    /// A chunk is completed when it holds at least this many bytes.
    pub chunk_bytes: usize,
    /// Queued plus in-progress bytes never exceed this; more frames are dropped and counted.
    pub capacity_bytes: usize,
    /// Most events kept; older ones are dropped and counted.
    pub event_capacity: usize,
}

impl Default for RecorderLimits {
    fn default() -> Self {
        RecorderLimits {
            chunk_bytes: 64 * 1024,
            capacity_bytes: 32 * 1024 * 1024,
            event_capacity: 256,
        }
    }
}

/// Something unusual about one packet, or the time before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEventKind {
    /// `missed` whole service intervals passed without a packet.
    Gap {
        /// Intervals without a packet.
        missed: u64,
    },
    /// A second packet within one service interval.
    Early,
    /// Fewer frames than the announced rate allows (the host is behind the device clock).
    Short {
        /// Frames in the packet.
        frames: u64,
    },
    /// More frames than the announced rate allows (the host is ahead of the device clock).
    Long {
        /// Frames in the packet.
        frames: u64,
    },
    /// The packet length is not a whole number of frames; the tail was discarded.
    Misaligned {
        /// Bytes in the packet.
        bytes: usize,
    },
    /// The packet exceeded the endpoint's payload and was refused.
    Oversize {
        /// Bytes in the packet.
        bytes: usize,
    },
    /// Frames dropped because the recorder was full.
    Overflow {
        /// Frames dropped.
        frames: u64,
    },
}

/// An event and when it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    /// When.
    pub time: BusTime,
    /// What.
    pub kind: StreamEventKind,
}

/// Playback figures. Counters add up over all streams since the device was created; the
/// `current_*` and `frames_ahead*` fields describe the current stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlaybackStats {
    /// Streams started (alternate settings selected, or rate changes while streaming).
    pub streams: u64,
    /// Packets received.
    pub packets: u64,
    /// Bytes received (whole frames).
    pub bytes: u64,
    /// Frames received.
    pub frames: u64,
    /// Packets with no frames.
    pub empty_packets: u64,
    /// Service intervals without a packet, between the first and last packet of each stream.
    pub missed_intervals: u64,
    /// Packets that arrived within the same service interval as the previous one.
    pub early_packets: u64,
    /// Packets with fewer frames than the announced rate allows.
    pub short_packets: u64,
    /// Packets with more frames than the announced rate allows.
    pub long_packets: u64,
    /// Packets that were not a whole number of frames.
    pub misaligned_packets: u64,
    /// Packets refused for exceeding the endpoint's payload.
    pub oversize_packets: u64,
    /// Frames dropped because the recorder was full.
    pub dropped_frames: u64,
    /// Events dropped from the bounded event log.
    pub dropped_events: u64,
    /// The current stream's format, while one runs.
    pub current_format: Option<StreamFormat>,
    /// The playback interface's current alternate setting.
    pub current_alternate: u8,
    /// Frames received minus frames the reference clock consumed since the stream's first
    /// packet: stays bounded when the host follows the feedback, drifts when it does not.
    pub frames_ahead: i64,
    /// Lowest `frames_ahead` of the current stream.
    pub frames_ahead_min: i64,
    /// Highest `frames_ahead` of the current stream.
    pub frames_ahead_max: i64,
}

#[derive(Clone, Debug)]
struct ActiveStream {
    format: StreamFormat,
    interval: u64,
    clock: DeviceClock,
    first_packet: Option<BusTime>,
    last_packet: Option<BusTime>,
    frames: u64,
}

/// Keeps what the playback endpoint receives. See the module documentation.
#[derive(Debug)]
pub struct Recorder {
    limits: RecorderLimits,
    sink: Option<Box<dyn RecordSink>>,
    queue: VecDeque<RecordedChunk>,
    queued_bytes: usize,
    current: Option<RecordedChunk>,
    stream: Option<ActiveStream>,
    stats: PlaybackStats,
    events: VecDeque<StreamEvent>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new(limits: RecorderLimits) -> Self {
        Recorder {
            limits,
            sink: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            current: None,
            stream: None,
            stats: PlaybackStats::default(),
            events: VecDeque::new(),
        }
    }

    /// Sends completed chunks to `sink` from now on (and what is queued, at once); `None` goes
    /// back to queueing.
    pub fn set_sink(&mut self, sink: Option<Box<dyn RecordSink>>) {
        self.sink = sink;
        if let Some(sink) = self.sink.as_mut() {
            for chunk in self.queue.drain(..) {
                sink.chunk(chunk);
            }
            self.queued_bytes = 0;
        }
    }

    /// Takes every completed chunk, oldest first.
    pub fn drain(&mut self) -> Vec<RecordedChunk> {
        self.queued_bytes = 0;
        self.queue.drain(..).collect()
    }

    /// Completes the chunk in progress, so the next [`drain`](Self::drain) returns everything
    /// received so far.
    pub fn flush(&mut self) {
        if let Some(chunk) = self.current.take() {
            self.complete(chunk);
        }
    }

    /// The figures so far.
    pub fn stats(&self) -> &PlaybackStats {
        &self.stats
    }

    /// The most recent unusual events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &StreamEvent> {
        self.events.iter()
    }

    /// Bytes held (queued and in progress): never more than the capacity.
    pub fn held_bytes(&self) -> usize {
        self.queued_bytes + self.current.as_ref().map_or(0, |c| c.data.len())
    }

    /// A stream starts: packets of `format`, one per `interval` microframes, checked against
    /// `clock` (the device clock the feedback announces, or the nominal rate for adaptive).
    pub fn start(
        &mut self,
        format: StreamFormat,
        alternate: u8,
        interval: u64,
        clock: DeviceClock,
    ) {
        self.flush();
        self.stats.streams += 1;
        self.stats.current_format = Some(format);
        self.stats.current_alternate = alternate;
        self.stats.frames_ahead = 0;
        self.stats.frames_ahead_min = 0;
        self.stats.frames_ahead_max = 0;
        self.stream = Some(ActiveStream {
            format,
            interval: interval.max(1),
            clock,
            first_packet: None,
            last_packet: None,
            frames: 0,
        });
    }

    /// The stream stops (alternate setting 0, deconfiguration, reset).
    pub fn stop(&mut self) {
        self.flush();
        self.stream = None;
        self.stats.current_format = None;
        self.stats.current_alternate = 0;
    }

    fn event(&mut self, time: BusTime, kind: StreamEventKind) {
        debug!("uac: playback {kind:?} at {time:?}");
        if self.limits.event_capacity == 0 {
            self.stats.dropped_events += 1;
            return;
        }
        if self.events.len() >= self.limits.event_capacity {
            self.events.pop_front();
            self.stats.dropped_events += 1;
        }
        self.events.push_back(StreamEvent { time, kind });
    }

    /// A packet that was refused for its size (counted, not recorded).
    pub fn oversize(&mut self, now: BusTime, bytes: usize) {
        self.stats.oversize_packets += 1;
        self.event(now, StreamEventKind::Oversize { bytes });
    }

    /// A packet arrived at `now`. Without a running stream it is ignored.
    pub fn packet(&mut self, now: BusTime, data: &[u8]) {
        let Some(mut s) = self.stream.take() else {
            return;
        };
        let frame_bytes = s.format.frame_bytes().max(1);
        let frames = (data.len() / frame_bytes) as u64;
        let whole = &data[..data.len() - data.len() % frame_bytes];
        self.stats.packets += 1;
        if frames == 0 {
            self.stats.empty_packets += 1;
        }
        if whole.len() != data.len() {
            self.stats.misaligned_packets += 1;
            self.event(now, StreamEventKind::Misaligned { bytes: data.len() });
        }
        self.account_timing(&mut s, now);
        self.account_size(&s, now, frames);
        let first = *s.first_packet.get_or_insert(now);
        let consumed = s.clock.frames_at(now) - s.clock.frames_at(first);
        let ahead = i64::try_from(s.frames).unwrap_or(i64::MAX) - consumed as i64;
        self.stats.frames_ahead = ahead;
        self.stats.frames_ahead_min = self.stats.frames_ahead_min.min(ahead);
        self.stats.frames_ahead_max = self.stats.frames_ahead_max.max(ahead);
        self.store(&s, now, whole);
        s.frames += frames;
        s.last_packet = Some(now);
        self.stream = Some(s);
    }

    fn account_timing(&mut self, s: &mut ActiveStream, now: BusTime) {
        let Some(last) = s.last_packet else {
            return;
        };
        let elapsed = now.0.saturating_sub(last.0);
        if elapsed < s.interval {
            self.stats.early_packets += 1;
            self.event(now, StreamEventKind::Early);
        } else if elapsed >= 2 * s.interval {
            let missed = elapsed / s.interval - 1;
            self.stats.missed_intervals += missed;
            self.event(now, StreamEventKind::Gap { missed });
        }
    }

    fn account_size(&mut self, s: &ActiveStream, now: BusTime, frames: u64) {
        if frames == 0 {
            // Zero-length packets are how a host says "nothing yet"; not a size error.
            return;
        }
        let (lo, hi) = s.clock.frames_per_interval_bounds(s.interval);
        if frames + 1 < lo {
            self.stats.short_packets += 1;
            self.event(now, StreamEventKind::Short { frames });
        } else if frames > hi + 1 {
            self.stats.long_packets += 1;
            self.event(now, StreamEventKind::Long { frames });
        }
    }

    fn store(&mut self, s: &ActiveStream, now: BusTime, whole: &[u8]) {
        if whole.is_empty() {
            return;
        }
        let frames = (whole.len() / s.format.frame_bytes().max(1)) as u64;
        if self.sink.is_none() && self.held_bytes() + whole.len() > self.limits.capacity_bytes {
            if self.stats.dropped_frames == 0 {
                warn!("uac: recorder full; dropping playback frames until it is drained");
            }
            self.stats.dropped_frames += frames;
            self.event(now, StreamEventKind::Overflow { frames });
            // Close the chunk so the next one starts at its true frame index, after the hole.
            self.flush();
            return;
        }
        self.stats.frames += frames;
        self.stats.bytes += whole.len() as u64;
        let stream = self.stats.streams;
        let chunk = self.current.get_or_insert_with(|| RecordedChunk {
            stream,
            format: s.format,
            first_frame: s.frames,
            start: now,
            data: Vec::new(),
        });
        chunk.data.extend_from_slice(whole);
        if chunk.data.len() >= self.limits.chunk_bytes {
            self.flush();
        }
    }

    fn complete(&mut self, chunk: RecordedChunk) {
        match self.sink.as_mut() {
            Some(sink) => sink.chunk(chunk),
            None => {
                self.queued_bytes += chunk.data.len();
                self.queue.push_back(chunk);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stereo16() -> StreamFormat {
        StreamFormat {
            bits: 16,
            channels: 2,
            rate: 48000,
        }
    }

    #[test]
    fn chunks_hold_whole_frames_in_order() {
        let mut r = Recorder::new(RecorderLimits {
            chunk_bytes: 48,
            ..Default::default()
        });
        r.start(
            stereo16(),
            1,
            8,
            DeviceClock {
                rate: 48000,
                ppm: 0,
            },
        );
        for i in 0..3u8 {
            r.packet(BusTime(u64::from(i) * 8), &[i; 192]);
        }
        r.flush();
        let chunks = r.drain();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].first_frame, 48);
        assert!(chunks[2].data.iter().all(|&b| b == 2));
    }
}
