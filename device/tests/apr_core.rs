//! APR packets as the guest's apr_send_pkt builds them, to the DSP's router: the core service
//! answers what q6core asks; everything malformed is dropped, never answered.

use sideband_device::adsp::apr::{packet, Router};

/// A command from the apps domain to service `svc`, as apr_send_pkt addresses it.
fn command(svc: u8, opcode: u32, token: u32, payload: &[u8]) -> Vec<u8> {
    let size = 20 + payload.len();
    let mut v = Vec::new();
    v.extend_from_slice(&0x0250u16.to_le_bytes()); // SEQ_CMD, 5 words, version 0
    v.extend_from_slice(&(size as u16).to_le_bytes());
    v.extend_from_slice(&[svc, 5, 0x11, 0x00, svc, 4, 0x22, 0x00]);
    v.extend_from_slice(&token.to_le_bytes());
    v.extend_from_slice(&opcode.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

fn words(b: &[u8]) -> Vec<u32> {
    b.chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn the_core_reports_its_framework_version_as_q6core_reads_it() {
    let mut r = Router::default();
    let out = r.handle(&command(3, 0x0001_292C, 0xabcd, &[]));
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(u16::from_le_bytes([a[0], a[1]]), 0x0150, "CMD_RSP, 5 words");
    assert_eq!(u16::from_le_bytes([a[2], a[3]]) as usize, a.len());
    assert_eq!(
        &a[4..12],
        &[3, 4, 0x22, 0, 3, 5, 0x11, 0],
        "addresses swapped"
    );
    let w = words(&a[12..]);
    assert_eq!(w[0], 0xabcd, "token echoed");
    assert_eq!(w[1], 0x0001_292D);
    assert_eq!(
        &w[2..],
        &[2, 8, 0, 0, 0],
        "version 2.8.0.0, no per-service list"
    );
    // The guest's own parser takes the answer.
    let (h, payload) = packet::parse(a).unwrap();
    assert_eq!((h.dest_svc, h.dest_domain, payload.len()), (3, 5, 20));
}

#[test]
fn ready_state_and_unknown_opcodes_are_answered() {
    let mut r = Router::default();
    let a = &r.handle(&command(3, 0x0001_290C, 1, &[]))[0];
    assert_eq!(words(&a[16..]), vec![0x0001_290D, 1], "ready");
    let a = &r.handle(&command(3, 0x0001_2345, 2, &[]))[0];
    assert_eq!(
        words(&a[16..]),
        vec![packet::BASIC_RSP_RESULT, 0x0001_2345, packet::EUNSUPPORTED]
    );
    let a = &r.handle(&command(0x0b, 0x0001_0001, 3, &[0; 8]))[0];
    assert_eq!(
        words(&a[16..])[2],
        packet::EUNSUPPORTED,
        "a service the DSP does not have"
    );
    assert_eq!((r.stats().core, r.stats().unsupported), (2, 1));
}

#[test]
fn malformed_packets_are_dropped_unanswered() {
    let mut r = Router::default();
    let good = command(3, 0x0001_292C, 1, &[]);
    let mut short = good.clone();
    short.truncate(12);
    let mut size = good.clone();
    size[2] = 24;
    let mut hdr = good.clone();
    hdr[0] = 0x40; // 4-word header
    let mut domain = good.clone();
    domain[9] = 9;
    let mut version = good.clone();
    version[0] |= 0x7;
    let mut elsewhere = good.clone();
    elsewhere[9] = 3; // the modem's domain
    for bad in [short, size, hdr, domain, version, elsewhere] {
        assert!(r.handle(&bad).is_empty(), "{bad:02x?}");
    }
    assert_eq!(r.stats().malformed, 6);
    let mut event = good;
    event[1] = 0x00; // an event from the guest: never answered
    assert!(r.handle(&event).is_empty());
}
