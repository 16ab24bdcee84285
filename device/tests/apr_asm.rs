//! The stream manager as q6asm and q6asm-dai drive one playback: map the PCM buffer, open the
//! stream for PCM, set its format, queue periods, run, play them in order (each given back as
//! WRITE_DONE_V2 with the address q6asm checks), drain with EOS, close, unmap.

#[path = "apr_support.rs"]
mod apr_support;
use apr_support::{basic_status, framed, words};

use sideband_device::adsp::apr::{asm, packet, Router};

const SESSION: u16 = 1;
const STREAM_PORT: u16 = SESSION << 8 | 1;
/// The buffer's address as q6asm-dai sends it: dma address | SID 1 << 32.
const BUF: u64 = 1 << 32 | 0xff80_0000;
const PERIOD: u32 = 3840; // 20 ms of 48 kHz stereo S16

fn one(r: &mut Router, pkt: Vec<u8>) -> Vec<u8> {
    let mut out = r.handle(&pkt);
    assert_eq!(out.len(), 1, "one answer");
    out.pop().unwrap()
}

/// {pool 3, 1 region, 0}{lsw, msw, size} from port 0, token session << 8 | dir.
fn map(r: &mut Router, addr: u64, size: u32) -> u32 {
    let mut p = vec![3, 0, 1, 0, 0, 0, 0, 0];
    p.extend(words(&[addr as u32, (addr >> 32) as u32, size]));
    let a = one(
        r,
        framed(7, 0, asm::MAP_REGIONS, u32::from(SESSION) << 8, &p),
    );
    let (h, payload) = packet::parse(&a).unwrap();
    assert_eq!(h.opcode, 0x0001_0D93);
    assert_eq!(h.dest_port, 0, "session commands answer port 0");
    assert_eq!(h.token, u32::from(SESSION) << 8);
    u32::from_le_bytes(payload[0..4].try_into().unwrap())
}

fn open_and_format(r: &mut Router) {
    let open = words(&[0, 16 << 16, 0x0001_0C68, asm::FMT_MULTI_CHANNEL_PCM_V2]);
    let a = one(r, framed(7, STREAM_PORT, asm::OPEN_WRITE_V3, 0, &open));
    assert_eq!(basic_status(&a, asm::OPEN_WRITE_V3), 0);
    let mut fmt = words(&[20]);
    fmt.extend_from_slice(&2u16.to_le_bytes());
    fmt.extend_from_slice(&16u16.to_le_bytes());
    fmt.extend(words(&[48_000]));
    fmt.extend_from_slice(&[1, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0]);
    let a = one(r, framed(7, STREAM_PORT, asm::MEDIA_FMT_UPDATE_V2, 0, &fmt));
    assert_eq!(basic_status(&a, asm::MEDIA_FMT_UPDATE_V2), 0);
}

/// {lsw, msw, handle, size, seq, 0, 0, 0}, token idx | len << 16: no answer until played.
fn write(r: &mut Router, handle: u32, idx: u32) {
    let addr = BUF + u64::from(idx * PERIOD);
    let p = words(&[
        addr as u32,
        (addr >> 32) as u32,
        handle,
        PERIOD,
        idx,
        0,
        0,
        0,
    ]);
    assert!(r
        .handle(&framed(
            7,
            STREAM_PORT,
            asm::WRITE_V2,
            idx | PERIOD << 16,
            &p
        ))
        .is_empty());
}

#[test]
fn a_playback_maps_opens_queues_runs_and_gets_each_buffer_back_in_order() {
    let mut r = Router::default();
    let handle = map(&mut r, BUF, 16 * 4096);
    assert_ne!(handle, 0, "q6asm treats handle 0 as unmapped");
    open_and_format(&mut r);
    assert_eq!(
        r.asm().sessions(),
        vec![(
            1,
            Some(asm::PcmFormat {
                channels: 2,
                bits: 16,
                rate: 48_000
            }),
            false
        )]
    );
    for idx in 0..3 {
        write(&mut r, handle, idx);
    }
    assert_eq!(r.asm().front(1), None, "nothing plays before RUN");
    let a = one(
        &mut r,
        framed(7, STREAM_PORT, asm::RUN_V2, 0, &words(&[0, 0, 0])),
    );
    assert_eq!(basic_status(&a, asm::RUN_V2), 0);
    for idx in 0..3u32 {
        let b = r.asm().front(1).expect("a queued buffer");
        assert_eq!(b.addr, BUF + u64::from(idx * PERIOD));
        assert_eq!(b.len, PERIOD);
        let out = r.asm().complete_front(1);
        assert_eq!(out.len(), 1);
        let (h, p) = packet::parse(&out[0]).unwrap();
        assert_eq!(h.opcode, asm::WRITE_DONE_V2);
        assert_eq!(h.msg_type, packet::MsgType::Event);
        assert_eq!(h.dest_port, STREAM_PORT, "events go to the stream's port");
        assert_eq!(h.token, idx | PERIOD << 16, "the write's token comes back");
        // q6asm compares the first two words with the period's address.
        assert_eq!(
            u32::from_le_bytes(p[0..4].try_into().unwrap()),
            (BUF as u32) + idx * PERIOD
        );
        assert_eq!(u32::from_le_bytes(p[4..8].try_into().unwrap()), 1);
    }
    assert_eq!(r.asm().front(1), None);
    // EOS with the queue empty is rendered at once.
    let out = r.handle(&framed(7, STREAM_PORT, asm::EOS, 0, &[]));
    assert_eq!(out.len(), 1);
    assert_eq!(packet::parse(&out[0]).unwrap().0.opcode, asm::RENDERED_EOS);
    let a = one(&mut r, framed(7, STREAM_PORT, asm::CLOSE, 0, &[]));
    assert_eq!(basic_status(&a, asm::CLOSE), 0);
    let a = one(
        &mut r,
        framed(
            7,
            0,
            asm::UNMAP_REGIONS,
            u32::from(SESSION) << 8,
            &words(&[handle]),
        ),
    );
    assert_eq!(basic_status(&a, asm::UNMAP_REGIONS), 0);
    let s = r.asm().stats();
    assert_eq!(
        (
            s.writes,
            s.writes_done,
            s.bytes_done,
            s.eos_rendered,
            s.refused
        ),
        (3, 3, 3 * u64::from(PERIOD), 1, 0)
    );
}

#[test]
fn eos_waits_for_the_queue_and_pause_holds_it() {
    let mut r = Router::default();
    let handle = map(&mut r, BUF, 16 * 4096);
    open_and_format(&mut r);
    write(&mut r, handle, 0);
    write(&mut r, handle, 1);
    one(
        &mut r,
        framed(7, STREAM_PORT, asm::RUN_V2, 0, &words(&[0, 0, 0])),
    );
    assert!(
        r.handle(&framed(7, STREAM_PORT, asm::EOS, 0, &[]))
            .is_empty(),
        "two buffers still to play"
    );
    let a = one(&mut r, framed(7, STREAM_PORT, asm::PAUSE, 0, &[]));
    assert_eq!(basic_status(&a, asm::PAUSE), 0);
    assert_eq!(r.asm().front(1), None, "a paused session plays nothing");
    one(
        &mut r,
        framed(7, STREAM_PORT, asm::RUN_V2, 0, &words(&[0, 0, 0])),
    );
    assert_eq!(r.asm().complete_front(1).len(), 1);
    let last = r.asm().complete_front(1);
    assert_eq!(
        last.len(),
        2,
        "the last buffer's done, then the rendered EOS"
    );
    assert_eq!(packet::parse(&last[1]).unwrap().0.opcode, asm::RENDERED_EOS);
}

#[test]
fn writes_outside_the_map_and_commands_on_closed_streams_are_refused() {
    let mut r = Router::default();
    let handle = map(&mut r, BUF, 4096);
    open_and_format(&mut r);
    // Past the mapped 4 KiB: refused with a basic answer q6asm ignores, and never played.
    let p = words(&[BUF as u32 + 4000, 1, handle, PERIOD, 0, 0, 0, 0]);
    let a = one(&mut r, framed(7, STREAM_PORT, asm::WRITE_V2, 0, &p));
    assert_eq!(basic_status(&a, asm::WRITE_V2), asm::EBADPARAM);
    // An unknown handle.
    let p = words(&[BUF as u32, 1, handle + 7, 16, 0, 0, 0, 0]);
    let a = one(&mut r, framed(7, STREAM_PORT, asm::WRITE_V2, 0, &p));
    assert_eq!(basic_status(&a, asm::WRITE_V2), asm::EBADPARAM);
    let a = one(
        &mut r,
        framed(7, 2 << 8 | 1, asm::RUN_V2, 0, &words(&[0, 0, 0])),
    );
    assert_eq!(basic_status(&a, asm::RUN_V2), asm::EALREADY);
    let a = one(
        &mut r,
        framed(7, 9 << 8 | 1, asm::RUN_V2, 0, &words(&[0, 0, 0])),
    );
    assert_eq!(
        basic_status(&a, asm::RUN_V2),
        asm::EBADPARAM,
        "session 9 does not exist"
    );
    // A map naming more regions than it carries, and one with a zero-sized region.
    let a = one(
        &mut r,
        framed(
            7,
            0,
            asm::MAP_REGIONS,
            1 << 8,
            &[3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0],
        ),
    );
    assert_eq!(basic_status(&a, asm::MAP_REGIONS), asm::EBADPARAM);
    let mut p = vec![3, 0, 1, 0, 0, 0, 0, 0];
    p.extend(words(&[0x1000, 0, 0]));
    let a = one(&mut r, framed(7, 0, asm::MAP_REGIONS, 1 << 8, &p));
    assert_eq!(basic_status(&a, asm::MAP_REGIONS), asm::EBADPARAM);
    let a = one(
        &mut r,
        framed(7, 0, asm::UNMAP_REGIONS, 1 << 8, &words(&[handle + 1])),
    );
    assert_eq!(basic_status(&a, asm::UNMAP_REGIONS), asm::EBADPARAM);
    // A second open of the same session, and a decoder this DSP does not have.
    let open = words(&[0, 16 << 16, 0, asm::FMT_MULTI_CHANNEL_PCM_V2]);
    let a = one(&mut r, framed(7, STREAM_PORT, asm::OPEN_WRITE_V3, 0, &open));
    assert_eq!(basic_status(&a, asm::OPEN_WRITE_V3), asm::EALREADY);
    let mp3 = words(&[0, 16 << 16, 0, 0x0001_0BE9]);
    let a = one(&mut r, framed(7, 2 << 8 | 1, asm::OPEN_WRITE_V3, 0, &mp3));
    assert_eq!(basic_status(&a, asm::OPEN_WRITE_V3), packet::EUNSUPPORTED);
    // A format out of range.
    let mut fmt = words(&[20]);
    fmt.extend_from_slice(&9u16.to_le_bytes());
    fmt.extend_from_slice(&16u16.to_le_bytes());
    fmt.extend(words(&[48_000]));
    let a = one(
        &mut r,
        framed(7, STREAM_PORT, asm::MEDIA_FMT_UPDATE_V2, 0, &fmt),
    );
    assert_eq!(basic_status(&a, asm::MEDIA_FMT_UPDATE_V2), asm::EBADPARAM);
    assert_eq!(r.asm().stats().writes, 0);
}

#[test]
fn the_queue_is_bounded() {
    let mut r = Router::default();
    let handle = map(&mut r, BUF, 16 * 4096);
    open_and_format(&mut r);
    let p = words(&[BUF as u32, 1, handle, 16, 0, 0, 0, 0]);
    let refused = (0..100)
        .filter(|_| {
            !r.handle(&framed(7, STREAM_PORT, asm::WRITE_V2, 0, &p))
                .is_empty()
        })
        .count();
    assert_eq!(refused, 36);
    assert_eq!(r.asm().stats().writes, 64);
}

#[test]
fn play_gives_buffers_back_at_the_stream_rate() {
    let mut r = Router::default();
    let handle = map(&mut r, BUF, 16 * 4096);
    open_and_format(&mut r);
    for idx in 0..4 {
        write(&mut r, handle, idx);
    }
    assert!(r.asm().play(1_000_000).is_empty(), "not running yet");
    one(
        &mut r,
        framed(7, STREAM_PORT, asm::RUN_V2, 0, &words(&[0, 0, 0])),
    );
    // A period of 3840 bytes is 20 ms of 48 kHz stereo S16.
    assert!(r.asm().play(19_999).is_empty());
    assert_eq!(r.asm().play(1).len(), 1);
    assert_eq!(r.asm().play(40_000).len(), 2);
    assert_eq!(r.asm().play(20_000).len(), 1);
    // Nothing queued: time does not turn into credit.
    assert!(r.asm().play(1_000_000).is_empty());
    write(&mut r, handle, 4);
    assert!(
        r.asm().play(19_000).is_empty(),
        "a late write still takes its full time"
    );
    assert_eq!(r.asm().play(1_000).len(), 1);
}

#[test]
fn a_consumer_takes_the_buffers_in_chunks_and_each_comes_back_when_taken_whole() {
    let mut r = Router::default();
    let handle = map(&mut r, BUF, 16 * 4096);
    open_and_format(&mut r);
    write(&mut r, handle, 0);
    write(&mut r, handle, 1);
    assert_eq!(r.asm().next_chunk(1, 1000), None, "not running");
    one(
        &mut r,
        framed(7, STREAM_PORT, asm::RUN_V2, 0, &words(&[0, 0, 0])),
    );
    assert_eq!(r.asm().next_chunk(1, 1000), Some((BUF, 1000)));
    assert!(r.asm().consume(1, 1000).is_empty());
    assert_eq!(
        r.asm().next_chunk(1, 5000),
        Some((BUF + 1000, PERIOD - 1000))
    );
    let done = r.asm().consume(1, PERIOD - 1000);
    assert_eq!(done.len(), 1);
    assert_eq!(
        packet::parse(&done[0]).unwrap().0.opcode,
        asm::WRITE_DONE_V2
    );
    assert_eq!(
        r.asm().next_chunk(1, 5000),
        Some((BUF + u64::from(PERIOD), PERIOD))
    );
    assert_eq!(r.asm().consume(1, PERIOD).len(), 1);
    assert_eq!(r.asm().next_chunk(1, 5000), None);
    assert!(
        r.asm().consume(1, 10).is_empty(),
        "nothing queued, nothing to give back"
    );
}

#[test]
fn regions_and_writes_at_the_top_of_the_address_space_do_not_wrap() {
    let mut r = Router::default();
    // A 4 KiB region ending 4 KiB below 2^64.
    let base = u64::MAX - 0x1fff;
    let handle = map(&mut r, base, 0x1000);
    open_and_format(&mut r);
    let write =
        |addr: u64, len: u32| words(&[addr as u32, (addr >> 32) as u32, handle, len, 0, 0, 0, 0]);
    let a = one(
        &mut r,
        framed(
            7,
            STREAM_PORT,
            asm::WRITE_V2,
            0,
            &write(u64::MAX - 0x7ff, 0x1000),
        ),
    );
    assert_eq!(
        basic_status(&a, asm::WRITE_V2),
        asm::EBADPARAM,
        "it would end past 2^64"
    );
    let a = one(
        &mut r,
        framed(
            7,
            STREAM_PORT,
            asm::WRITE_V2,
            0,
            &write(base + 0x800, 0x1000),
        ),
    );
    assert_eq!(
        basic_status(&a, asm::WRITE_V2),
        asm::EBADPARAM,
        "past the region's end"
    );
    assert!(
        r.handle(&framed(
            7,
            STREAM_PORT,
            asm::WRITE_V2,
            0,
            &write(base + 0x800, 0x800)
        ))
        .is_empty(),
        "the region's last 2 KiB fit"
    );
}
