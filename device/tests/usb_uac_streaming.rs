//! Streaming through the `UsbDevice` trait: the recorder (bit-exact data, accounting, bounded
//! memory, sink), the feedback endpoint, and capture packets paced by the device clock.

#[path = "usb_support.rs"]
mod support;

use std::sync::{Arc, Mutex};

use sideband_device::usb::uac::{
    AudioProfile, RecordSink, RecordedChunk, RecorderLimits, Signal, StreamEventKind, UacDevice,
};
use sideband_device::usb::{BusTime, TransferResult, UsbDevice};
use support::*;

const PLAYBACK_EP: u8 = 1;
const FEEDBACK_EP: u8 = 1;
const CAPTURE_EP: u8 = 2;

fn streaming(profile: &str, limits: RecorderLimits) -> UacDevice {
    let mut d = UacDevice::headset_with(profile.parse::<AudioProfile>().unwrap(), limits).unwrap();
    enumerate(&mut d);
    assert_eq!(set_interface(&mut d, 1, 1), TransferResult::Complete(0));
    d
}

/// `frames` stereo 16-bit frames whose interleaved samples count up from `first`.
fn counter_packet(first: u32, frames: usize) -> Vec<u8> {
    (0..frames as u32 * 2)
        .flat_map(|i| ((first + i) as u16).to_le_bytes())
        .collect()
}

fn recorded(d: &mut UacDevice) -> Vec<u8> {
    let r = d.function_mut().recorder_mut();
    r.flush();
    r.drain().into_iter().flat_map(|c| c.data).collect()
}

#[test]
fn playback_is_recorded_bit_exactly() {
    let mut d = streaming("uac2:rates=48000:bits=16:ch=2", RecorderLimits::default());
    let mut sent = Vec::new();
    for t in 0..1000u64 {
        let p = counter_packet((t * 12) as u32, 6);
        assert_eq!(
            d.data_out(PLAYBACK_EP, &p, BusTime(t)),
            TransferResult::Complete(24)
        );
        sent.extend(p);
    }
    assert_eq!(recorded(&mut d), sent);
    let s = d.function().recorder().stats();
    assert_eq!((s.packets, s.frames, s.bytes), (1000, 6000, 24000));
    assert_eq!(
        s.missed_intervals + s.early_packets + s.short_packets + s.long_packets,
        0
    );
    let f = s.current_format.unwrap();
    assert_eq!((f.rate, f.bits, f.channels), (48000, 16, 2));
    assert_eq!(s.current_alternate, 1);
}

#[test]
fn chunks_carry_format_and_stream_changes() {
    let mut d = streaming(
        "uac2:rates=48000,96000:bits=16,24:ch=2",
        RecorderLimits::default(),
    );
    d.data_out(PLAYBACK_EP, &[0; 24], BusTime(0));
    set_interface(&mut d, 1, 2);
    d.data_out(PLAYBACK_EP, &[1; 36], BusTime(10));
    let clock = 9 << 8;
    control_out(
        &mut d,
        setup(0x21, 1, 0x0100, clock, 4),
        &96000u32.to_le_bytes(),
    );
    d.data_out(PLAYBACK_EP, &[2; 72], BusTime(20));
    set_interface(&mut d, 1, 0);
    assert_eq!(
        d.data_out(PLAYBACK_EP, &[3; 24], BusTime(30)),
        TransferResult::Stall
    );
    let chunks = d.function_mut().recorder_mut().drain();
    let shape: Vec<_> = chunks
        .iter()
        .map(|c| (c.stream, c.format.bits, c.format.rate, c.data.len()))
        .collect();
    assert_eq!(
        shape,
        vec![(1, 16, 48000, 24), (2, 24, 48000, 36), (3, 24, 96000, 72)]
    );
    assert_eq!(d.function().recorder().stats().current_format, None);
}

#[test]
fn gaps_early_and_size_errors_are_counted() {
    // 96 kHz is offered, so wMaxPacketSize leaves room for long packets at 48 kHz.
    let mut d = streaming(
        "uac2:rates=48000,96000:bits=16:ch=2",
        RecorderLimits::default(),
    );
    let ok = counter_packet(0, 6);
    d.data_out(PLAYBACK_EP, &ok, BusTime(100));
    d.data_out(PLAYBACK_EP, &ok, BusTime(104)); // 3 microframes missed
    d.data_out(PLAYBACK_EP, &ok, BusTime(104)); // same microframe again
    d.data_out(PLAYBACK_EP, &counter_packet(0, 4), BusTime(105)); // 4 < 6 - 1
    d.data_out(PLAYBACK_EP, &counter_packet(0, 9), BusTime(106)); // 9 > 6 + 1
    d.data_out(PLAYBACK_EP, &counter_packet(0, 5), BusTime(107)); // within one frame
    d.data_out(PLAYBACK_EP, &counter_packet(0, 7), BusTime(108));
    d.data_out(PLAYBACK_EP, &ok[..23], BusTime(109)); // not whole frames
    let s = d.function().recorder().stats().clone();
    assert_eq!(s.packets, 8);
    assert_eq!(s.missed_intervals, 3);
    assert_eq!(s.early_packets, 1);
    assert_eq!((s.short_packets, s.long_packets), (1, 1));
    assert_eq!(s.misaligned_packets, 1);
    assert_eq!(s.frames, 6 * 3 + 4 + 9 + 5 + 7 + 5);
    let kinds: Vec<_> = d.function().recorder().events().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            StreamEventKind::Gap { missed: 3 },
            StreamEventKind::Early,
            StreamEventKind::Short { frames: 4 },
            StreamEventKind::Long { frames: 9 },
            StreamEventKind::Misaligned { bytes: 23 },
        ]
    );
    // A packet above wMaxPacketSize is babble: refused, counted, not recorded.
    let big = vec![0u8; 4096];
    assert_eq!(
        d.data_out(PLAYBACK_EP, &big, BusTime(110)),
        TransferResult::TransactionError
    );
    assert_eq!(d.function().recorder().stats().oversize_packets, 1);
    assert_eq!(d.function().recorder().stats().packets, 8);
}

#[test]
fn memory_stays_bounded_and_overflow_is_counted() {
    let limits = RecorderLimits {
        chunk_bytes: 1000,
        capacity_bytes: 10_000,
        event_capacity: 4,
    };
    let mut d = streaming("uac2:rates=48000:bits=16:ch=2", limits);
    for t in 0..10_000u64 {
        d.data_out(PLAYBACK_EP, &counter_packet(0, 6), BusTime(t));
        assert!(d.function().recorder().held_bytes() <= 10_000);
    }
    let s = d.function().recorder().stats().clone();
    assert_eq!(s.packets, 10_000);
    assert_eq!(s.frames * 4, d.function().recorder().held_bytes() as u64);
    assert_eq!(s.frames + s.dropped_frames, 60_000);
    assert!(d.function().recorder().events().count() <= 4);
    assert!(s.dropped_events > 0);
    // Draining frees the space; recording resumes, and the chunk index shows the hole.
    let first = d.function_mut().recorder_mut().drain();
    assert_eq!(first[0].first_frame, 0);
    d.data_out(PLAYBACK_EP, &counter_packet(0, 6), BusTime(10_000));
    d.function_mut().recorder_mut().flush();
    let next = d.function_mut().recorder_mut().drain();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].first_frame, 60_000);
}

#[derive(Debug, Clone, Default)]
struct SharedSink(Arc<Mutex<Vec<RecordedChunk>>>);

impl RecordSink for SharedSink {
    fn chunk(&mut self, chunk: RecordedChunk) {
        self.0.lock().unwrap().push(chunk);
    }
}

#[test]
fn sink_receives_chunks_without_queueing() {
    let limits = RecorderLimits {
        chunk_bytes: 240,
        capacity_bytes: 480,
        event_capacity: 16,
    };
    let mut d = streaming("uac2:rates=48000:bits=16:ch=2", limits);
    let sink = SharedSink::default();
    d.function_mut()
        .recorder_mut()
        .set_sink(Some(Box::new(sink.clone())));
    let mut sent = Vec::new();
    for t in 0..1000u64 {
        let p = counter_packet((t * 12) as u32, 6);
        d.data_out(PLAYBACK_EP, &p, BusTime(t));
        sent.extend(p);
        assert!(d.function().recorder().held_bytes() < 240);
    }
    d.function_mut().recorder_mut().flush();
    let got: Vec<u8> = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .flat_map(|c| c.data.clone())
        .collect();
    assert_eq!(got, sent);
    assert_eq!(d.function().recorder().stats().dropped_frames, 0);
}

#[test]
fn feedback_at_48k_plus_100_ppm() {
    let mut d = streaming(
        "uac2:rates=48000:bits=16:ppm=+100",
        RecorderLimits::default(),
    );
    // USB 2.0 §5.12.4.2: Ff in samples per microframe, 16.16 at high speed.
    let exact: f64 = 48000.0 * (1.0 + 100e-6) / 8000.0 * 65536.0;
    let (lo, hi) = (exact.floor() as u32, exact.ceil() as u32);
    let n = 1000;
    let mut sum = 0u64;
    for t in 0..n {
        let mut buf = [0u8; 4];
        assert_eq!(
            d.data_in(FEEDBACK_EP, &mut buf, BusTime(t * 8)),
            TransferResult::Complete(4)
        );
        let v = u32::from_le_bytes(buf);
        assert!(v == lo || v == hi, "{v} not in {lo}..={hi}");
        sum += u64::from(v);
    }
    let mean = sum as f64 / n as f64;
    assert!(
        (mean - exact).abs() <= 1.0 / n as f64,
        "mean {mean} vs {exact}"
    );
    // The feedback endpoint exists only while a playback alternate setting is selected.
    set_interface(&mut d, 1, 0);
    assert_eq!(
        d.data_in(FEEDBACK_EP, &mut [0u8; 4], BusTime(0)),
        TransferResult::Stall
    );
}

/// A host that follows the feedback the way Linux does (endpoint.c: accumulate the 16.16 value,
/// send the integer part) keeps the device's fill level bounded; one that ignores it drifts.
#[test]
fn following_feedback_keeps_the_stream_centred() {
    let run = |follow: bool| {
        let mut d = streaming(
            "uac2:rates=48000:bits=16:ppm=+1000",
            RecorderLimits::default(),
        );
        let nominal = 6u64 << 16;
        let mut rate = nominal;
        let mut phase = 0u64;
        for t in 0..80_000u64 {
            if t % 8 == 0 {
                let mut fb = [0u8; 4];
                d.data_in(FEEDBACK_EP, &mut fb, BusTime(t));
                if follow {
                    rate = u64::from(u32::from_le_bytes(fb));
                }
            }
            phase = (phase & 0xFFFF) + rate;
            let frames = (phase >> 16) as usize;
            d.data_out(PLAYBACK_EP, &counter_packet(0, frames), BusTime(t));
        }
        let s = d.function().recorder().stats().clone();
        (s.frames_ahead, s.short_packets + s.long_packets)
    };
    let (ahead, bad) = run(true);
    assert!(ahead.abs() <= 2, "follower drifted by {ahead}");
    assert_eq!(bad, 0);
    let (ahead, _) = run(false);
    // 10 s at 1000 ppm of 48 kHz: the device consumed 480 frames more than it received.
    assert!((-482..=-478).contains(&ahead), "nominal host: {ahead}");
}

#[test]
fn capture_follows_the_device_clock_with_a_counter() {
    let mut d = streaming(
        "uac2:rates=48000:bits=24:ch=2:ppm=+100",
        RecorderLimits::default(),
    );
    assert_eq!(set_interface(&mut d, 2, 1), TransferResult::Complete(0));
    let mut data = Vec::new();
    let mut sizes = Vec::new();
    for t in 1..=8000u64 {
        let mut buf = [0u8; 1024];
        let TransferResult::Complete(n) = d.data_in(CAPTURE_EP, &mut buf, BusTime(t)) else {
            panic!("capture refused");
        };
        assert_eq!(n % 6, 0);
        sizes.push(n / 6);
        data.extend_from_slice(&buf[..n]);
    }
    // One second of a clock 100 ppm fast: 48004.8 frames, of which 48004 are complete.
    let expected = (48000.0f64 * (1.0 + 100e-6)).floor() as usize;
    assert_eq!(sizes.iter().sum::<usize>(), expected);
    assert!(sizes.iter().all(|&s| s == 6 || s == 7));
    for (i, s) in data.chunks(3).enumerate() {
        assert_eq!(
            u32::from_le_bytes([s[0], s[1], s[2], 0]),
            i as u32 & 0xFF_FFFF
        );
    }
    // A missed interval loses no samples: the counter resumes where it stopped.
    let mut buf = [0u8; 1024];
    let TransferResult::Complete(n) = d.data_in(CAPTURE_EP, &mut buf, BusTime(9000)) else {
        panic!();
    };
    let next = (data.len() / 3) as u32;
    assert_eq!(u32::from_le_bytes([buf[0], buf[1], buf[2], 0]), next);
    assert!(n <= 7 * 6);
    assert_eq!(d.function().capture_stats().packets, 8001);
    // A buffer too small for the frames due is filled with whole frames only.
    let mut tiny = [0u8; 8];
    assert_eq!(
        d.data_in(CAPTURE_EP, &mut tiny, BusTime(9001)),
        TransferResult::Complete(6)
    );
    assert_eq!(d.function().capture_stats().truncated_packets, 1);
}

#[test]
fn capture_signal_is_configurable() {
    let mut d = streaming("uac2:rates=48000:bits=16:ch=1", RecorderLimits::default());
    d.function_mut().set_signal(Signal::Samples {
        channels: 1,
        data: vec![0x1111_0000, 0x2222_0000, 0x3333_0000],
    });
    set_interface(&mut d, 2, 1);
    let mut buf = [0u8; 64];
    let TransferResult::Complete(n) = d.data_in(CAPTURE_EP, &mut buf, BusTime(1)) else {
        panic!();
    };
    let v: Vec<u16> = buf[..n]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(v, vec![0x1111, 0x2222, 0x3333, 0x1111, 0x2222, 0x3333]);
    d.function_mut().set_signal(Signal::Silence);
    d.data_in(CAPTURE_EP, &mut buf, BusTime(2));
    assert!(buf[..12].iter().all(|&b| b == 0));
}

#[test]
fn implicit_feedback_profile_has_no_feedback_endpoint() {
    let mut d = streaming(
        "uac2-implicit:rates=48000:ppm=+100",
        RecorderLimits::default(),
    );
    assert_eq!(
        d.data_in(FEEDBACK_EP, &mut [0u8; 4], BusTime(0)),
        TransferResult::Stall
    );
    set_interface(&mut d, 2, 1);
    // The host mirrors capture packet sizes to playback: never a size error.
    for t in 1..=800u64 {
        let mut buf = [0u8; 1024];
        let TransferResult::Complete(n) = d.data_in(CAPTURE_EP, &mut buf, BusTime(t)) else {
            panic!();
        };
        d.data_out(PLAYBACK_EP, &vec![0u8; n], BusTime(t));
    }
    let s = d.function().recorder().stats();
    assert_eq!(s.short_packets + s.long_packets + s.missed_intervals, 0);
    assert!(s.frames_ahead.abs() <= 1);
}

#[test]
fn uac1_adaptive_playback_and_capture_at_44100() {
    let mut d = UacDevice::headset("headset-uac1".parse::<AudioProfile>().unwrap()).unwrap();
    enumerate(&mut d);
    set_interface(&mut d, 1, 1);
    set_interface(&mut d, 2, 1);
    let rate = [0x44, 0xAC, 0x00];
    control_out(&mut d, setup(0x22, 1, 0x0100, 0x01, 3), &rate);
    control_out(&mut d, setup(0x22, 1, 0x0100, 0x82, 3), &rate);
    let mut total = 0;
    for ms in 1..=1000u64 {
        let t = BusTime(ms * 8);
        let mut buf = [0u8; 256];
        let TransferResult::Complete(n) = d.data_in(CAPTURE_EP, &mut buf, t) else {
            panic!();
        };
        assert!(n == 44 * 4 || n == 45 * 4);
        total += n / 4;
        // The host's own 44.1 kHz pattern: 9 × 44 then 45.
        let frames = if ms % 10 == 0 { 45 } else { 44 };
        d.data_out(PLAYBACK_EP, &counter_packet(0, frames), t);
    }
    assert_eq!(total, 44100);
    let s = d.function().recorder().stats();
    assert_eq!(s.current_format.unwrap().rate, 44100);
    assert_eq!(
        s.short_packets + s.long_packets + s.missed_intervals + s.early_packets,
        0
    );
    assert_eq!(s.frames, 44100);
}

#[test]
fn halted_streaming_endpoint_stalls_until_cleared() {
    let mut d = streaming("headset-uac2", RecorderLimits::default());
    control_out(&mut d, setup(0x02, 3, 0, 0x01, 0), &[]);
    assert_eq!(
        d.data_out(PLAYBACK_EP, &[0; 24], BusTime(0)),
        TransferResult::Stall
    );
    control_out(&mut d, setup(0x02, 1, 0, 0x01, 0), &[]);
    assert_eq!(
        d.data_out(PLAYBACK_EP, &[0; 24], BusTime(1)),
        TransferResult::Complete(24)
    );
    d.reset();
    assert_eq!(d.function().recorder().stats().current_format, None);
}
