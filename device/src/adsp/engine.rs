//! The DSP's data path for an offloaded playback stream: it drives the transfer ring and the
//! secondary event ring the offload driver handed over, as the real ADSP does.
//!
//! Each service call it (1) consumes transfer events from the secondary event ring and tells
//! the caller which ERDP to write, then (2) writes audio packets into the transfer buffer and
//! queues one isochronous TD per packet (Interrupter Target = the stream's interrupter, SIA,
//! IOC), then tells the caller to ring the endpoint's doorbell. Every load and store goes
//! through the SMMU ([`SmmuTable::translate`]): an IOVA the driver unmapped is a fault, counted,
//! and the engine stops rather than touch memory it no longer owns.
//!
//! Only segment 0 of the transfer ring (one 4 KiB page, 256 TRBs) is mapped for the DSP, so the
//! engine rewrites entry 255 as a Link TRB back to the segment's start with Toggle Cycle.

use super::pcm_input::PcmInput;
use std::collections::VecDeque;

use vm_memory::{Bytes, GuestAddress, GuestMemory};

use super::uaudio::{MemRegion, StreamResources};
use crate::smmu::{Fault, SmmuTable};

const TRB_LEN: u64 = 16;
const RING_TRBS: u32 = 256;
const TRB_NORMAL_ISOCH: u32 = 5;
const TRB_LINK: u32 = 6;
const TRB_TRANSFER_EVENT: u32 = 32;
const CC_SUCCESS: u32 = 1;
const CC_SHORT_PACKET: u32 = 13;
const CC_RING_UNDERRUN: u32 = 14;
const CC_MISSED_SERVICE: u32 = 23;
const CC_USB_TRANSACTION_ERROR: u32 = 4;
const CC_STOPPED: u32 = 26;
const CC_STOPPED_LENGTH_INVALID: u32 = 27;
const CC_STOPPED_SHORT_PACKET: u32 = 28;
/// TDs in flight at most: 25 ms of audio at one packet per microframe, enough to ride out a
/// late service call of the backend's clock (the transfer buffer's size may allow fewer; the
/// 255 usable TRBs of the ring are the hard limit).
pub const MAX_OUTSTANDING: u32 = 200;
/// Events consumed per service call at most (bounds work on an untrusted ring).
const MAX_EVENTS_PER_SERVICE: u32 = 256;
/// Captured bytes kept until the caller takes them; more are counted as dropped.
pub const MAX_CAPTURED: usize = 16 << 20;
/// Largest packet the engine queues: each is one Isoch TRB, whose TRB Transfer Length is at
/// most 64 KiB (xHCI 1.2 §6.4.1.3). The packet size follows the guest's bInterval, and each
/// packet is a buffer the DSP fills or reads, so a larger one stops the stream instead.
pub const MAX_PACKET_BYTES: u32 = 1 << 16;

/// What the caller must do on the controller after a service call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write `target` (the endpoint's DCI) to doorbell `slot`.
    Doorbell {
        /// Slot id.
        slot: u8,
        /// DB target: 2 × endpoint number + direction.
        target: u8,
    },
    /// Write `value` (event ring dequeue pointer | EHB) to interrupter `interrupter`'s ERDP.
    Erdp {
        /// The secondary interrupter.
        interrupter: u8,
        /// The register value.
        value: u64,
    },
}

/// The stream's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// TDs (packets) queued.
    pub tds_queued: u64,
    /// Transfer events consumed from the secondary ring.
    pub events: u64,
    /// Events that completed successfully (Success or Short Packet).
    pub completed: u64,
    /// Missed Service Error events.
    pub missed_service: u64,
    /// Ring Underrun events (the ring ran dry).
    pub underruns: u64,
    /// Events with any other completion code.
    pub errors: u64,
    /// Of those, the ones neither the bus nor the guest explains: not USB Transaction Error (a
    /// headset that went away, a noisy link) and not Stopped (the guest's Stop Endpoint), and
    /// events that are no transfer event's. A DSP on a sound controller sees none.
    pub unexplained_errors: u64,
    /// The first unexplained event's completion code (0 for an event that is no transfer event).
    pub first_unexplained_code: Option<u8>,
    /// Samples written into the transfer buffer.
    pub samples: u64,
    /// SMMU faults: accesses the driver no longer mapped.
    pub smmu_faults: u64,
    /// Capture: bytes the device delivered.
    pub captured_bytes: u64,
    /// Capture: bytes lost because the caller did not take them in time.
    pub captured_dropped: u64,
}

/// An offloaded playback stream in progress.
#[derive(Debug)]
pub struct StreamEngine {
    slot: u8,
    target: u8,
    interrupter: u8,
    smmu_endpoint: u32,
    ring: MemRegion,
    events: MemRegion,
    buffer: MemRegion,
    packet_bytes: u32,
    sample_bytes: u32,
    buffer_slots: u32,
    enqueue: u32,
    producer_cycle: bool,
    dequeue: u32,
    consumer_cycle: bool,
    outstanding: u32,
    next_buffer_slot: u32,
    next_sample: u32,
    samples_left: u64,
    stopped: bool,
    stats: EngineStats,
    last_fault: Option<Fault>,
    /// True for an IN (capture) endpoint.
    capture: bool,
    /// Capture: (buffer offset, TRB length) of each TD in flight, oldest first.
    in_flight: VecDeque<(u64, u32)>,
    /// Capture: bytes received, waiting for [`take_captured`](Self::take_captured).
    captured: Vec<u8>,
    /// Playback with explicit feedback: the sync ring and what it last reported.
    sync: Option<SyncRing>,
    /// Playback of fed PCM instead of the counter pattern.
    input: Option<PcmInput>,
}

/// Bytes at the end of the transfer buffer kept for feedback packets.
const SYNC_AREA: u32 = 64;
/// Feedback TDs in flight at most.
const SYNC_OUTSTANDING: usize = 2;

/// The feedback (sync) endpoint's ring, driven by the DSP like the data ring.
#[derive(Debug)]
struct SyncRing {
    ring: MemRegion,
    target: u8,
    enqueue: u32,
    producer_cycle: bool,
    /// Buffer offsets of the feedback TDs in flight, oldest first.
    in_flight: VecDeque<u64>,
    next_slot: u64,
    /// Frames per service unit (microframe, or frame at full speed) as 16.16.
    feedback: Option<u64>,
    /// 3-byte 10.14 values at full speed, 4-byte 16.16 at high speed.
    full_speed: bool,
    /// Service units per data packet.
    data_interval: u64,
    /// Bytes per frame.
    frame_bytes: u32,
    /// Fractional frames carried to the next packet (16.16).
    carry: u64,
    reports: u64,
}

impl StreamEngine {
    /// An engine for `res` that plays `samples` counter samples (1, 2, 3, ..., little-endian,
    /// `sample_bytes` wide: 2, 3 or 4), in packets of `packet_bytes` (whole frames), translating
    /// through SMMU endpoint `smmu_endpoint`.
    pub fn new(
        res: &StreamResources,
        packet_bytes: u32,
        sample_bytes: u32,
        samples: u64,
        smmu_endpoint: u32,
    ) -> Self {
        let ep = res.data_ep.b_endpoint_address;
        let target = 2 * (ep & 0x0f) + u8::from(ep & 0x80 != 0);
        let sample_bytes = sample_bytes.clamp(2, 4);
        let oversize = packet_bytes > MAX_PACKET_BYTES;
        if oversize {
            log::warn!(
                "DSP: packets of {packet_bytes} bytes for slot {} endpoint {ep:#x} exceed the \
                 {MAX_PACKET_BYTES} one TRB carries; the stream does not start",
                res.slot_id
            );
        }
        let packet_bytes =
            (packet_bytes.min(MAX_PACKET_BYTES) / sample_bytes).max(1) * sample_bytes;
        StreamEngine {
            slot: res.slot_id as u8,
            target,
            interrupter: res.interrupter_num,
            smmu_endpoint,
            ring: res.mem.transfer_ring,
            events: res.mem.event_ring,
            buffer: res.mem.transfer_buffer,
            packet_bytes,
            sample_bytes,
            buffer_slots: (res.mem.transfer_buffer.size / packet_bytes).max(1),
            enqueue: 0,
            producer_cycle: true,
            dequeue: 0,
            consumer_cycle: true,
            outstanding: 0,
            next_buffer_slot: 0,
            next_sample: 1,
            samples_left: samples,
            stopped: oversize,
            stats: EngineStats::default(),
            last_fault: None,
            capture: ep & 0x80 != 0,
            in_flight: VecDeque::new(),
            captured: Vec::new(),
            sync: None,
            input: None,
        }
    }

    /// Plays what [`push_pcm`](Self::push_pcm) feeds (up to `capacity` bytes queued) instead of
    /// the counter pattern, until stopped.
    pub fn with_pcm_input(mut self, capacity: usize) -> Self {
        if !self.capture {
            self.input = Some(PcmInput::new(capacity));
            self.samples_left = u64::MAX;
        }
        self
    }

    /// Feeds PCM; returns the bytes taken (none without [`with_pcm_input`](Self::with_pcm_input)).
    pub fn push_pcm(&mut self, bytes: &[u8]) -> usize {
        self.input.as_mut().map_or(0, |i| i.push(bytes))
    }

    /// Bytes the PCM input can take now (0 without one).
    pub fn pcm_room(&self) -> usize {
        self.input.as_ref().map_or(0, PcmInput::room)
    }

    /// The PCM input's figures: bytes played, bytes of silence for want of data, bytes fed.
    pub fn pcm_figures(&self) -> Option<(u64, u64, u64)> {
        self.input
            .as_ref()
            .map(|i| (i.taken(), i.underrun_bytes(), i.pushed()))
    }

    /// Playback with an explicit feedback endpoint: the engine also queues IN TDs on the sync
    /// ring and sizes each data packet from the last feedback value (frames per microframe as
    /// 16.16 at high speed, per frame as 10.14 at full speed), carrying the fraction. Packets
    /// may then grow by a frame, so `packet_bytes` given to [`new`](Self::new) must already
    /// leave room for one frame more than nominal. No effect without a sync endpoint.
    pub fn with_feedback(
        mut self,
        res: &StreamResources,
        frame_bytes: u32,
        data_interval: u32,
    ) -> Self {
        let (Some(ep), Some(ring)) = (res.sync_ep, res.mem.sync_ring) else {
            return self;
        };
        if self.capture || self.buffer.size <= SYNC_AREA + self.packet_bytes {
            return self;
        }
        let addr = ep.b_endpoint_address;
        self.buffer_slots = ((self.buffer.size - SYNC_AREA) / self.packet_bytes).max(1);
        self.sync = Some(SyncRing {
            ring,
            target: 2 * (addr & 0x0f) + u8::from(addr & 0x80 != 0),
            enqueue: 0,
            producer_cycle: true,
            in_flight: VecDeque::new(),
            next_slot: 0,
            feedback: None,
            full_speed: matches!(
                res.speed,
                super::uaudio::Speed::Full | super::uaudio::Speed::Low
            ),
            data_interval: u64::from(data_interval.max(1)),
            frame_bytes: frame_bytes.max(1),
            carry: 0,
            reports: 0,
        });
        self
    }

    /// Feedback reports received (0 without a sync endpoint) and the last value as frames per
    /// service unit.
    pub fn feedback(&self) -> (u64, Option<f64>) {
        match &self.sync {
            Some(s) => (s.reports, s.feedback.map(|f| f as f64 / 65536.0)),
            None => (0, None),
        }
    }

    /// Bytes of the next data packet: nominal, or what the feedback asks for.
    fn next_packet_bytes(&mut self) -> u32 {
        let Some(s) = self.sync.as_mut() else {
            return self.packet_bytes;
        };
        let Some(fb) = s.feedback else {
            return self.packet_bytes.saturating_sub(s.frame_bytes);
        };
        let total = s.carry + fb * s.data_interval;
        let frames = total >> 16;
        s.carry = total & 0xffff;
        u32::try_from(frames)
            .unwrap_or(u32::MAX)
            .saturating_mul(s.frame_bytes)
            .min(self.packet_bytes)
    }

    /// Queues feedback TDs on the sync ring; true when one was queued.
    fn queue_sync<M: GuestMemory>(&mut self, mem: &M, smmu: &mut SmmuTable) -> bool {
        let mut queued = false;
        while self
            .sync
            .as_ref()
            .is_some_and(|s| s.in_flight.len() < SYNC_OUTSTANDING)
        {
            let Some(s) = self.sync.as_mut() else { break };
            let offset = u64::from(self.buffer.size - SYNC_AREA) + 4 * (s.next_slot % 16);
            s.next_slot += 1;
            let dword3 =
                u32::from(s.producer_cycle) | 1 << 2 | 1 << 5 | TRB_NORMAL_ISOCH << 10 | 1 << 31;
            let isoch = [
                self.buffer.dma.wrapping_add(offset) as u32,
                (self.buffer.dma.wrapping_add(offset) >> 32) as u32,
                4 | u32::from(self.interrupter) << 22,
                dword3,
            ];
            let (ring, index) = (s.ring, s.enqueue);
            s.in_flight.push_back(offset);
            if !self.put_trb_at(mem, smmu, ring, index, isoch) {
                return queued;
            }
            let Some(s) = self.sync.as_mut() else { break };
            s.enqueue += 1;
            if s.enqueue == RING_TRBS - 1 {
                let link = [
                    ring.dma as u32,
                    (ring.dma >> 32) as u32,
                    0,
                    u32::from(s.producer_cycle) | 1 << 1 | TRB_LINK << 10,
                ];
                let index = s.enqueue;
                s.enqueue = 0;
                s.producer_cycle = !s.producer_cycle;
                if !self.put_trb_at(mem, smmu, ring, index, link) {
                    return queued;
                }
            }
            queued = true;
        }
        queued
    }

    /// A feedback TD completed: read the value the device reported.
    fn collect_feedback<M: GuestMemory>(&mut self, mem: &M, smmu: &mut SmmuTable, ok: bool) {
        let Some(offset) = self.sync.as_mut().and_then(|s| s.in_flight.pop_front()) else {
            return;
        };
        if !ok {
            return;
        }
        let mut b = [0u8; 4];
        if !self.read(mem, smmu, self.buffer.iova + offset, &mut b) {
            return;
        }
        let Some(s) = self.sync.as_mut() else { return };
        let raw = u64::from(u32::from_le_bytes(b));
        let value = if s.full_speed {
            (raw & 0xff_ffff) << 2
        } else {
            raw
        };
        // A zero or absurd report (more than 4x nominal) is ignored, as drivers do.
        let nominal = u64::from(self.packet_bytes / s.frame_bytes) << 16;
        if value > 0 && value < 4 * nominal.max(1 << 16) {
            s.feedback = Some(value);
            s.reports += 1;
        }
    }

    /// Capture: takes the bytes received so far (whole samples as the device sent them).
    pub fn take_captured(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.captured)
    }

    /// Capture: reads what the device put in a completed TD's buffer slot.
    fn collect<M: GuestMemory>(&mut self, mem: &M, smmu: &mut SmmuTable, residual: u32) {
        let Some((offset, len)) = self.in_flight.pop_front() else {
            return;
        };
        let got = len.saturating_sub(residual) as usize;
        let mut data = vec![0u8; got];
        if got > 0 && self.read(mem, smmu, self.buffer.iova + offset, &mut data) {
            self.stats.captured_bytes += got as u64;
            if self.captured.len() + got > MAX_CAPTURED {
                self.stats.captured_dropped += got as u64;
            } else {
                self.captured.extend_from_slice(&data);
            }
        }
    }

    /// The figures so far.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// The last SMMU fault, if any.
    pub fn last_fault(&self) -> Option<Fault> {
        self.last_fault
    }

    /// TDs queued whose events have not come back.
    pub fn outstanding(&self) -> u32 {
        self.outstanding
    }

    /// True once every sample was queued and every TD came back.
    pub fn finished(&self) -> bool {
        self.samples_left == 0 && self.outstanding == 0
    }

    /// Stops queuing: the DSP must stop before it asks the guest to disable the stream.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// True after [`stop`](Self::stop) or a fault.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    fn write<M: GuestMemory>(
        &mut self,
        mem: &M,
        smmu: &mut SmmuTable,
        iova: u64,
        bytes: &[u8],
    ) -> bool {
        let pieces = match smmu.translate(self.smmu_endpoint, iova, bytes.len() as u64, true) {
            Ok(p) => p,
            Err(f) => return self.fault(f),
        };
        let mut at = 0usize;
        for (gpa, len) in pieces {
            let n = len as usize;
            if mem
                .write_slice(&bytes[at..at + n], GuestAddress(gpa))
                .is_err()
            {
                log::warn!("DSP: IOVA {iova:#x} translated to {gpa:#x}, outside guest RAM");
                self.stopped = true;
                return false;
            }
            at += n;
        }
        true
    }

    fn read<M: GuestMemory>(
        &mut self,
        mem: &M,
        smmu: &mut SmmuTable,
        iova: u64,
        out: &mut [u8],
    ) -> bool {
        let pieces = match smmu.translate(self.smmu_endpoint, iova, out.len() as u64, false) {
            Ok(p) => p,
            Err(f) => return self.fault(f),
        };
        let mut at = 0usize;
        for (gpa, len) in pieces {
            let n = len as usize;
            if mem
                .read_slice(&mut out[at..at + n], GuestAddress(gpa))
                .is_err()
            {
                self.stopped = true;
                return false;
            }
            at += n;
        }
        true
    }

    fn unexplained(&mut self, code: u8) {
        self.stats.unexplained_errors += 1;
        self.stats.first_unexplained_code.get_or_insert(code);
    }

    fn fault(&mut self, f: Fault) -> bool {
        log::warn!(
            "DSP: SMMU fault at IOVA {:#x} ({:?}); the stream stops",
            f.iova,
            f.reason
        );
        self.stats.smmu_faults += 1;
        self.last_fault = Some(f);
        self.stopped = true;
        false
    }

    fn put_trb<M: GuestMemory>(
        &mut self,
        mem: &M,
        smmu: &mut SmmuTable,
        index: u32,
        dwords: [u32; 4],
    ) -> bool {
        let ring = self.ring;
        self.put_trb_at(mem, smmu, ring, index, dwords)
    }

    fn put_trb_at<M: GuestMemory>(
        &mut self,
        mem: &M,
        smmu: &mut SmmuTable,
        ring: MemRegion,
        index: u32,
        dwords: [u32; 4],
    ) -> bool {
        // Write the TRB with its cycle bit inverted, then flip it, so the controller never
        // sees a half-written TRB as valid.
        let iova = ring.iova + u64::from(index) * TRB_LEN;
        let mut bytes = [0u8; 16];
        for (i, d) in dwords.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&d.to_le_bytes());
        }
        let final_dw3 = bytes[12];
        bytes[12] ^= 1;
        if !self.write(mem, smmu, iova, &bytes) {
            return false;
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.write(mem, smmu, iova + 12, &[final_dw3])
    }

    /// Consumes events, queues packets; returns what to write on the controller.
    pub fn service<M: GuestMemory>(&mut self, mem: &M, smmu: &mut SmmuTable) -> Vec<Action> {
        let mut actions = Vec::new();
        // After a fault the stream is dead: touching the rings again would fault on every service.
        if self.last_fault.is_some() {
            return actions;
        }
        if let Some(erdp) = self.consume_events(mem, smmu) {
            actions.push(Action::Erdp {
                interrupter: self.interrupter,
                value: erdp,
            });
        }
        if !self.stopped && self.samples_left > 0 && self.queue_sync(mem, smmu) {
            if let Some(s) = &self.sync {
                actions.push(Action::Doorbell {
                    slot: self.slot,
                    target: s.target,
                });
            }
        }
        if self.queue_packets(mem, smmu) > 0 {
            actions.push(Action::Doorbell {
                slot: self.slot,
                target: self.target,
            });
        }
        actions
    }

    fn consume_events<M: GuestMemory>(&mut self, mem: &M, smmu: &mut SmmuTable) -> Option<u64> {
        let mut consumed = 0;
        while consumed < MAX_EVENTS_PER_SERVICE {
            let mut trb = [0u8; 16];
            let iova = self.events.iova + u64::from(self.dequeue) * TRB_LEN;
            if !self.read(mem, smmu, iova, &mut trb) {
                break;
            }
            let dw = |i: usize| {
                u32::from_le_bytes([trb[i * 4], trb[i * 4 + 1], trb[i * 4 + 2], trb[i * 4 + 3]])
            };
            if (dw(3) & 1 == 1) != self.consumer_cycle {
                break;
            }
            consumed += 1;
            self.stats.events += 1;
            let ty = (dw(3) >> 10) & 0x3f;
            let code = dw(2) >> 24;
            let ep_id = ((dw(3) >> 16) & 0x1f) as u8;
            if ty == TRB_TRANSFER_EVENT && self.sync.as_ref().is_some_and(|s| s.target == ep_id) {
                if code != CC_RING_UNDERRUN {
                    self.collect_feedback(mem, smmu, matches!(code, CC_SUCCESS | CC_SHORT_PACKET));
                }
            } else if ty == TRB_TRANSFER_EVENT {
                match code {
                    CC_SUCCESS | CC_SHORT_PACKET => {
                        self.stats.completed += 1;
                        self.outstanding = self.outstanding.saturating_sub(1);
                        if self.capture {
                            self.collect(mem, smmu, dw(2) & 0x00ff_ffff);
                        }
                    }
                    CC_MISSED_SERVICE => {
                        self.in_flight.pop_front();
                        self.stats.missed_service += 1;
                        self.outstanding = self.outstanding.saturating_sub(1);
                    }
                    CC_RING_UNDERRUN => self.stats.underruns += 1,
                    _ => {
                        self.stats.errors += 1;
                        self.outstanding = self.outstanding.saturating_sub(1);
                        if !matches!(
                            code,
                            CC_USB_TRANSACTION_ERROR
                                | CC_STOPPED
                                | CC_STOPPED_LENGTH_INVALID
                                | CC_STOPPED_SHORT_PACKET
                        ) {
                            self.unexplained(code as u8);
                        }
                    }
                }
            } else {
                self.stats.errors += 1;
                self.unexplained(0);
            }
            self.dequeue += 1;
            if self.dequeue == self.events.size / TRB_LEN as u32 || self.dequeue == RING_TRBS {
                self.dequeue = 0;
                self.consumer_cycle = !self.consumer_cycle;
            }
        }
        // EHB (bit 3) is write-1-to-clear; DESI (bits 2:0) is segment 0.
        (consumed > 0).then(|| {
            self.events
                .dma
                .wrapping_add(u64::from(self.dequeue) * TRB_LEN)
                | 1 << 3
        })
    }

    fn queue_packets<M: GuestMemory>(&mut self, mem: &M, smmu: &mut SmmuTable) -> u32 {
        if self.stopped {
            return 0;
        }
        let mut queued = 0;
        while self.samples_left > 0 && self.outstanding < MAX_OUTSTANDING.min(self.buffer_slots - 1)
        {
            let width = self.sample_bytes as usize;
            let bytes = if self.capture {
                self.packet_bytes
            } else {
                self.next_packet_bytes()
            };
            let samples = u64::from(bytes / self.sample_bytes).min(self.samples_left);
            let offset = u64::from(self.next_buffer_slot * self.packet_bytes);
            let len = if self.capture {
                // The device decides how much it sends (its clock); the TD takes up to a slot.
                self.in_flight.push_back((offset, self.packet_bytes));
                self.packet_bytes
            } else {
                let mut data = Vec::with_capacity(self.packet_bytes as usize);
                if let Some(input) = &mut self.input {
                    data = input.take(samples as usize * width);
                }
                for _ in 0..samples * u64::from(self.input.is_none()) {
                    data.extend_from_slice(&self.next_sample.to_le_bytes()[..width]);
                    self.next_sample = self.next_sample.wrapping_add(1);
                    if width < 4 {
                        self.next_sample &= (1 << (8 * width)) - 1;
                    }
                }
                if !self.write(mem, smmu, self.buffer.iova + offset, &data) {
                    break;
                }
                data.len() as u32
            };
            let isoch = [
                self.buffer.dma.wrapping_add(offset) as u32,
                (self.buffer.dma.wrapping_add(offset) >> 32) as u32,
                len | u32::from(self.interrupter) << 22,
                // Cycle, ISP (report short packets), IOC, type, SIA.
                u32::from(self.producer_cycle)
                    | u32::from(self.capture) << 2
                    | 1 << 5
                    | TRB_NORMAL_ISOCH << 10
                    | 1 << 31,
            ];
            if !self.put_trb(mem, smmu, self.enqueue, isoch) {
                break;
            }
            self.stats.tds_queued += 1;
            self.stats.samples += samples;
            self.samples_left -= samples;
            self.outstanding += 1;
            self.next_buffer_slot = (self.next_buffer_slot + 1) % self.buffer_slots;
            queued += 1;
            self.enqueue += 1;
            if self.enqueue == RING_TRBS - 1 {
                let link = [
                    self.ring.dma as u32,
                    (self.ring.dma >> 32) as u32,
                    0,
                    u32::from(self.producer_cycle) | 1 << 1 | TRB_LINK << 10,
                ];
                if !self.put_trb(mem, smmu, self.enqueue, link) {
                    break;
                }
                self.enqueue = 0;
                self.producer_cycle = !self.producer_cycle;
            }
        }
        queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adsp::uaudio::Direction;
    use crate::adsp::uaudio::{
        EndpointDescriptor, InterfaceDescriptor, Speed, UsbToken, XhciMemory,
    };
    use crate::smmu::{MAP_F_READ, MAP_F_WRITE};
    use vm_memory::GuestMemoryMmap;

    const EP: u32 = 0x2000f;
    const RAM: u64 = 0x4000_0000;

    fn region(iova: u64, dma: u64) -> MemRegion {
        MemRegion {
            sid: 0xf,
            iova,
            dma,
            size: 4096,
        }
    }

    fn setup() -> (GuestMemoryMmap, SmmuTable, StreamResources) {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM), 1 << 20)]).unwrap();
        let mut smmu = SmmuTable::default();
        smmu.attach(1, EP);
        // As the driver maps them: event ring at IOVA 0x1000, ring at 0xa000, buffer at 0x10a000.
        for (iova, gpa) in [
            (0x1000, RAM + 0x1000),
            (0xa000, RAM + 0xa000),
            (0x10a000, RAM + 0x20000),
        ] {
            smmu.map(1, iova, iova + 0xfff, gpa, MAP_F_READ | MAP_F_WRITE);
        }
        let res = StreamResources {
            status: 0,
            internal_status: 0,
            usb_token: UsbToken::new(1, 0, Direction::Playback),
            slot_id: 1,
            interrupter_num: 2,
            speed: Speed::High,
            intf: InterfaceDescriptor::default(),
            data_ep: EndpointDescriptor {
                b_endpoint_address: 0x01,
                ..Default::default()
            },
            sync_ep: None,
            spec_revision: Some(0x200),
            data_path_delay: None,
            subslot_size: Some(2),
            controller_num: None,
            mem: XhciMemory {
                event_ring: region(0x1000, RAM + 0x1000),
                transfer_ring: region(0xa000, RAM + 0xa000),
                sync_ring: None,
                transfer_buffer: region(0x10a000, RAM + 0x20000),
            },
        };
        (mem, smmu, res)
    }

    fn trb(mem: &GuestMemoryMmap, gpa: u64) -> [u32; 4] {
        let mut b = [0u8; 16];
        mem.read_slice(&mut b, GuestAddress(gpa)).unwrap();
        [0, 1, 2, 3].map(|i| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap()))
    }

    /// The controller's side of a completed TD: a Success transfer event on the secondary ring.
    fn post_event(mem: &GuestMemoryMmap, index: u64, cycle: u32, code: u32) {
        let dws = [
            0u32,
            0,
            code << 24,
            cycle | TRB_TRANSFER_EVENT << 10 | 1 << 24 | 2 << 16,
        ];
        let b: Vec<u8> = dws.iter().flat_map(|d| d.to_le_bytes()).collect();
        mem.write_slice(&b, GuestAddress(RAM + 0x1000 + index * 16))
            .unwrap();
    }

    #[test]
    fn transaction_errors_and_stopped_events_are_errors_the_bus_explains() {
        let (mem, mut smmu, res) = setup();
        let mut e = StreamEngine::new(&res, 24, 2, 1000, EP);
        e.service(&mem, &mut smmu);
        for (i, code) in [
            CC_USB_TRANSACTION_ERROR,
            CC_STOPPED,
            5,
            CC_STOPPED_LENGTH_INVALID,
            3,
        ]
        .into_iter()
        .enumerate()
        {
            post_event(&mem, i as u64, 1, code);
        }
        e.service(&mem, &mut smmu);
        let s = e.stats();
        assert_eq!(s.errors, 5);
        assert_eq!(s.unexplained_errors, 2, "TRB Error and Babble");
        assert_eq!(s.first_unexplained_code, Some(5));
    }

    #[test]
    fn queues_isoch_tds_for_the_dsp_interrupter_and_rings_the_doorbell() {
        let (mem, mut smmu, res) = setup();
        let mut e = StreamEngine::new(&res, 24, 2, 24, EP);
        let actions = e.service(&mem, &mut smmu);
        assert_eq!(actions, vec![Action::Doorbell { slot: 1, target: 2 }]);
        assert_eq!(
            e.stats().tds_queued,
            2,
            "24 samples in packets of 12 (24 bytes)"
        );
        let t = trb(&mem, RAM + 0xa000);
        assert_eq!(
            u64::from(t[0]) | u64::from(t[1]) << 32,
            RAM + 0x20000,
            "buffer pointer is the dma address"
        );
        assert_eq!(t[2] & 0x1ffff, 24);
        assert_eq!(t[2] >> 22, 2, "Interrupter Target");
        assert_eq!((t[3] >> 10) & 0x3f, TRB_NORMAL_ISOCH);
        assert_eq!(t[3] & 1, 1, "cycle");
        assert_ne!(t[3] & 1 << 5, 0, "IOC");
        assert_ne!(t[3] & 1 << 31, 0, "SIA");
        let mut first = [0u8; 4];
        mem.read_slice(&mut first, GuestAddress(RAM + 0x20000))
            .unwrap();
        assert_eq!(first, [1, 0, 2, 0], "counter samples 1, 2");
        let second = trb(&mem, RAM + 0xa010);
        assert_eq!(second[0], (RAM + 0x20000 + 24) as u32);
    }

    #[test]
    fn fed_pcm_is_played_as_fed_and_silence_fills_a_shortfall() {
        let (mem, mut smmu, res) = setup();
        let mut e = StreamEngine::new(&res, 8, 2, 0, EP).with_pcm_input(12);
        assert_eq!(e.pcm_room(), 12);
        assert_eq!(
            e.push_pcm(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
            12
        );
        assert_eq!(e.pcm_room(), 0);
        e.service(&mem, &mut smmu);
        let mut played = [0u8; 24];
        mem.read_slice(&mut played, GuestAddress(RAM + 0x20000))
            .unwrap();
        assert_eq!(&played[..12], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(
            &played[12..16],
            &[0; 4],
            "silence once the fed bytes ran out"
        );
        let (taken, silence, pushed) = e.pcm_figures().unwrap();
        assert_eq!((taken, pushed), (12, 12));
        assert!(silence >= 4);
        assert!(!e.finished(), "a fed stream runs until stopped");
    }

    #[test]
    fn consumes_events_and_writes_erdp_with_ehb() {
        let (mem, mut smmu, res) = setup();
        let mut e = StreamEngine::new(&res, 24, 2, 24, EP);
        e.service(&mem, &mut smmu);
        assert_eq!(e.outstanding(), 2);
        post_event(&mem, 0, 1, CC_SUCCESS);
        post_event(&mem, 1, 1, CC_MISSED_SERVICE);
        let actions = e.service(&mem, &mut smmu);
        assert_eq!(
            actions,
            vec![Action::Erdp {
                interrupter: 2,
                value: (RAM + 0x1000 + 32) | 8
            }]
        );
        assert!(e.finished());
        assert_eq!((e.stats().completed, e.stats().missed_service), (1, 1));
        assert!(
            e.service(&mem, &mut smmu).is_empty(),
            "nothing new, nothing to do"
        );
    }

    #[test]
    fn ring_wraps_through_a_link_trb_with_toggle_cycle() {
        let (mem, mut smmu, res) = setup();
        let mut e = StreamEngine::new(&res, 4, 2, 2 * 300, EP);
        let mut index = 0u64;
        let mut cycle = 1;
        while e.stats().tds_queued < 300 {
            e.service(&mem, &mut smmu);
            // Complete everything queued so far.
            for _ in 0..e.outstanding() {
                post_event(&mem, index, cycle, CC_SUCCESS);
                index += 1;
                if index == 256 {
                    index = 0;
                    cycle ^= 1;
                }
            }
        }
        let link = trb(&mem, RAM + 0xa000 + 255 * 16);
        assert_eq!((link[3] >> 10) & 0x3f, TRB_LINK);
        assert_ne!(link[3] & 2, 0, "Toggle Cycle");
        assert_eq!(u64::from(link[0]) | u64::from(link[1]) << 32, RAM + 0xa000);
        let wrapped = trb(&mem, RAM + 0xa000);
        assert_eq!(wrapped[3] & 1, 0, "second lap uses cycle 0");
    }

    #[test]
    fn three_byte_samples_count_at_their_width() {
        let (mem, mut smmu, res) = setup();
        let mut e = StreamEngine::new(&res, 36, 3, 12, EP);
        e.service(&mem, &mut smmu);
        let mut first = [0u8; 9];
        mem.read_slice(&mut first, GuestAddress(RAM + 0x20000))
            .unwrap();
        assert_eq!(first, [1, 0, 0, 2, 0, 0, 3, 0, 0]);
        assert_eq!(trb(&mem, RAM + 0xa000)[2] & 0x1ffff, 36);
    }

    #[test]
    fn capture_reads_what_the_device_wrote_per_completed_td() {
        let (mem, mut smmu, mut res) = setup();
        res.data_ep.b_endpoint_address = 0x82;
        let mut e = StreamEngine::new(&res, 28, 2, 14 * 2, EP);
        assert_eq!(
            e.service(&mem, &mut smmu),
            vec![Action::Doorbell { slot: 1, target: 5 }]
        );
        let t = trb(&mem, RAM + 0xa000);
        assert_eq!(t[2] & 0x1ffff, 28, "IN TDs take a whole slot");
        assert_ne!(t[3] & 1 << 2, 0, "ISP");
        // The device filled 24 of 28 bytes of the first slot: a short packet, residual 4.
        mem.write_slice(&[7u8; 24], GuestAddress(RAM + 0x20000))
            .unwrap();
        post_event(&mem, 0, 1, CC_SHORT_PACKET);
        let b: Vec<u8> = [
            0u32,
            0,
            CC_SHORT_PACKET << 24 | 4,
            1 | TRB_TRANSFER_EVENT << 10,
        ]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
        mem.write_slice(&b, GuestAddress(RAM + 0x1000)).unwrap();
        e.service(&mem, &mut smmu);
        assert_eq!(e.take_captured(), vec![7u8; 24]);
        assert_eq!(e.stats().captured_bytes, 24);
    }

    #[test]
    fn feedback_sizes_the_packets_and_carries_the_fraction() {
        let (mem, mut smmu, mut res) = setup();
        smmu.map(1, 0xb000, 0xbfff, RAM + 0xb000, MAP_F_READ | MAP_F_WRITE);
        res.sync_ep = Some(EndpointDescriptor {
            b_endpoint_address: 0x81,
            ..Default::default()
        });
        res.mem.sync_ring = Some(region(0xb000, RAM + 0xb000));
        // 6 frames of 4 bytes nominal, room for 7.
        let mut e = StreamEngine::new(&res, 28, 2, 100_000, EP).with_feedback(&res, 4, 1);
        let actions = e.service(&mem, &mut smmu);
        assert!(
            actions.contains(&Action::Doorbell { slot: 1, target: 3 }),
            "sync ring rung: {actions:?}"
        );
        assert!(actions.contains(&Action::Doorbell { slot: 1, target: 2 }));
        let sync = trb(&mem, RAM + 0xb000);
        assert_eq!(sync[2] & 0x1ffff, 4, "a feedback TD reads 4 bytes");
        let fb_at = u64::from(sync[0]) | u64::from(sync[1]) << 32;
        assert_eq!(
            fb_at,
            RAM + 0x20000 + 4096 - 64,
            "into the area kept at the buffer's end"
        );
        assert_eq!(
            trb(&mem, RAM + 0xa000)[2] & 0x1ffff,
            24,
            "nominal before any feedback"
        );
        // The device reports 6.5 frames per microframe; its event carries the sync EP ID 3.
        mem.write_slice(&(6u32 << 16 | 0x8000).to_le_bytes(), GuestAddress(fb_at))
            .unwrap();
        let ev = [
            0u32,
            0,
            CC_SUCCESS << 24,
            1 | TRB_TRANSFER_EVENT << 10 | 3 << 16 | 1 << 24,
        ];
        let b: Vec<u8> = ev.iter().flat_map(|d| d.to_le_bytes()).collect();
        mem.write_slice(&b, GuestAddress(RAM + 0x1000)).unwrap();
        // Complete the data TDs queued so far, so new ones go out with the new size.
        let queued = e.stats().tds_queued;
        for i in 0..queued {
            post_event(&mem, 1 + i, 1, CC_SUCCESS);
        }
        e.service(&mem, &mut smmu);
        assert_eq!(e.feedback(), (1, Some(6.5)));
        let a = trb(&mem, RAM + 0xa000 + queued * 16)[2] & 0x1ffff;
        let b = trb(&mem, RAM + 0xa000 + (queued + 1) * 16)[2] & 0x1ffff;
        assert_eq!(
            (a, b),
            (24, 28),
            "6.5 frames: 6, then 7 with the carried half"
        );
    }

    #[test]
    fn unmapped_buffer_is_a_fault_and_the_engine_stops() {
        let (mem, mut smmu, res) = setup();
        smmu.unmap(1, 0x10a000, 0x10afff);
        let mut e = StreamEngine::new(&res, 24, 2, 1000, EP);
        assert!(e.service(&mem, &mut smmu).is_empty());
        assert_eq!(e.stats().smmu_faults, 1);
        assert!(e.is_stopped());
        assert_eq!(e.last_fault().unwrap().iova, 0x10a000);
        assert_eq!(smmu.faults().1, 1, "the SMMU counted it too");
        for _ in 0..100 {
            assert!(e.service(&mem, &mut smmu).is_empty());
        }
        assert_eq!(
            e.stats().smmu_faults,
            1,
            "a dead stream touches nothing more"
        );
        assert_eq!(smmu.faults().1, 1);
    }

    /// A 128 KiB transfer buffer at IOVA 0x200000: room for two packets of the largest size.
    fn big_buffer(smmu: &mut SmmuTable, res: &mut StreamResources) {
        let (iova, gpa, size) = (0x20_0000, RAM + 0x40000, 2 * MAX_PACKET_BYTES);
        smmu.map(
            1,
            iova,
            iova + u64::from(size) - 1,
            gpa,
            MAP_F_READ | MAP_F_WRITE,
        );
        res.mem.transfer_buffer = MemRegion {
            sid: 0xf,
            iova,
            dma: gpa,
            size,
        };
    }

    #[test]
    fn packets_larger_than_one_trb_carries_stop_the_stream_at_once() {
        let (mem, mut smmu, mut res) = setup();
        big_buffer(&mut smmu, &mut res);
        // The size follows the guest's bInterval: 2^15 microframes of 48 kHz stereo would be
        // 768 KiB per packet.
        for ep in [0x01, 0x82] {
            res.data_ep.b_endpoint_address = ep;
            let mut e = StreamEngine::new(&res, MAX_PACKET_BYTES + 4, 2, 1 << 20, EP);
            assert!(e.is_stopped());
            assert!(e.service(&mem, &mut smmu).is_empty());
            assert_eq!((e.stats().tds_queued, e.outstanding()), (0, 0));
            assert_eq!(trb(&mem, RAM + 0xa000), [0; 4], "nothing queued");
        }
    }

    #[test]
    fn capture_of_the_largest_packet_reads_it_whole() {
        let (mem, mut smmu, mut res) = setup();
        big_buffer(&mut smmu, &mut res);
        res.data_ep.b_endpoint_address = 0x82;
        let mut e = StreamEngine::new(&res, MAX_PACKET_BYTES, 2, 1 << 20, EP);
        assert!(!e.is_stopped());
        e.service(&mem, &mut smmu);
        assert_eq!(e.stats().tds_queued, 1, "two slots: one TD in flight");
        let t = trb(&mem, RAM + 0xa000);
        assert_eq!(t[2] & 0x1ffff, MAX_PACKET_BYTES, "a full 64 KiB TRB");
        mem.write_slice(
            &vec![9u8; MAX_PACKET_BYTES as usize],
            GuestAddress(RAM + 0x40000),
        )
        .unwrap();
        post_event(&mem, 0, 1, CC_SUCCESS);
        e.service(&mem, &mut smmu);
        assert_eq!(e.take_captured(), vec![9u8; MAX_PACKET_BYTES as usize]);
    }
}
