//! QRTR against byte layouts built by hand from guest-driver.md §3.2: headers, control packets,
//! the HELLO handshake as 7.2 and 7.3 really send it, flow control both ways, services coming
//! and going.

#[path = "adsp_support.rs"]
mod support;

use std::time::Duration;

use sideband_device::adsp::qrtr::packet::{self, V1_HEADER_LEN};
use sideband_device::adsp::qrtr::{
    encode_v1, node, Addr, Client, Control, NodeEvent, Packet, PacketType, QrtrNode, Server,
    Version, MAX_PACKET_LEN,
};
use sideband_device::adsp::uaudio::{DownReason, Event};
use sideband_device::adsp::{AdspLink, State};
use support::*;

const T: Duration = Duration::ZERO;

// ---- Packet codec ----

#[test]
fn v1_decode_reads_every_field_at_its_offset() {
    let mut b = Vec::new();
    for f in [1u32, 1, 1, 0x4005, 1, 5, 5, 1] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(&[0x10, 0x20, 0x30, 0x40, 0x50, 0, 0, 0]);
    let p = Packet::decode(&b).unwrap();
    assert_eq!(p.version, Version::V1);
    assert_eq!(p.ty, 1);
    assert_eq!(p.packet_type(), Some(PacketType::Data));
    assert_eq!(p.src, Addr::new(1, 0x4005));
    assert!(p.confirm_rx);
    assert_eq!(p.dst, Addr::new(5, 1));
    assert_eq!(p.payload, &[0x10, 0x20, 0x30, 0x40, 0x50]);
}

fn v2(ty: u8, flags: u8, opt: &[u8], src: (u16, u16), dst: (u16, u16), payload: &[u8]) -> Vec<u8> {
    let mut b = vec![3, ty, flags, opt.len() as u8];
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    for f in [src.0, src.1, dst.0, dst.1] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(opt);
    b.extend_from_slice(payload);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b
}

#[test]
fn v2_decode_reads_fields_options_and_maps_control_ports() {
    let b = v2(1, 1, &[0xee; 4], (1, 0x4005), (5, 1), &[1, 2, 3]);
    assert_eq!(b.len(), 16 + 4 + 4);
    let p = Packet::decode(&b).unwrap();
    assert_eq!(p.version, Version::V2);
    assert_eq!(p.ty, 1);
    assert!(p.confirm_rx);
    assert_eq!(p.src, Addr::new(1, 0x4005));
    assert_eq!(p.dst, Addr::new(5, 1));
    assert_eq!(p.payload, &[1, 2, 3]);

    // Flags other than bit 0 do not mean confirm_rx.
    let b = v2(1, 2, &[], (1, 2), (5, 1), &[1]);
    assert!(!Packet::decode(&b).unwrap().confirm_rx);

    // 0xFFFF (legacy) and 0xFFFE both stand for the control port, source and destination.
    let b = v2(2, 0, &[], (1, 0xffff), (5, 0xfffe), &ctrl(2, [0; 4]));
    let p = Packet::decode(&b).unwrap();
    assert_eq!(p.src, Addr::new(1, CTRL));
    assert_eq!(p.dst, Addr::new(5, CTRL));
    let b = v2(2, 0, &[], (1, 0xfffe), (5, 0xffff), &ctrl(2, [0; 4]));
    let p = Packet::decode(&b).unwrap();
    assert_eq!(p.src, Addr::new(1, CTRL));
    assert_eq!(p.dst, Addr::new(5, CTRL));
}

#[test]
fn v1_encode_matches_the_layout() {
    let got = encode_v1(
        PacketType::Data,
        true,
        Addr::new(5, 1),
        Addr::new(1, 0x4005),
        &[0xaa, 0xbb, 0xcc, 0xdd, 0xee],
    )
    .unwrap();
    let want = v1(
        DATA,
        (5, 1),
        true,
        (1, 0x4005),
        &[0xaa, 0xbb, 0xcc, 0xdd, 0xee],
    );
    assert_eq!(got, want);
    assert_eq!(got.len(), 32 + 8);
    assert_eq!(&got[20..24], &5u32.to_le_bytes(), "size excludes padding");
}

#[test]
fn exact_size_rule() {
    // size 3 in 4 payload bytes: fine (padding).
    let ok = v1(DATA, (1, 2), false, (5, 1), &[1, 2, 3]);
    assert_eq!(ok.len(), 36);
    assert_eq!(Packet::decode(&ok).unwrap().payload, &[1, 2, 3]);
    // size 4 exactly.
    assert!(Packet::decode(&v1(DATA, (1, 2), false, (5, 1), &[1, 2, 3, 4])).is_ok());
    // size 3 but 8 payload bytes: too much padding.
    let mut long = ok.clone();
    long.extend_from_slice(&[0; 4]);
    assert!(matches!(
        Packet::decode(&long),
        Err(packet::Error::SizeMismatch { size: 3, .. })
    ));
    // size 8 but 4 payload bytes: truncated.
    let mut trunc = v1(DATA, (1, 2), false, (5, 1), &[0; 8]);
    trunc.truncate(36);
    assert!(matches!(
        Packet::decode(&trunc),
        Err(packet::Error::SizeMismatch { size: 8, .. })
    ));
    // Not a multiple of 4.
    assert_eq!(Packet::decode(&ok[..35]), Err(packet::Error::Unaligned(35)));
    // size 0.
    let mut zero = v1(DATA, (1, 2), false, (5, 1), &[1]);
    zero[20..24].copy_from_slice(&0u32.to_le_bytes());
    zero.truncate(32);
    assert_eq!(Packet::decode(&zero), Err(packet::Error::ZeroSize));
    // Empty, header-only, oversized.
    assert_eq!(Packet::decode(&[]), Err(packet::Error::Empty));
    assert!(matches!(
        Packet::decode(&ok[..28]),
        Err(packet::Error::ShortHeader {
            len: 28,
            header: 32
        })
    ));
    let big = v1(DATA, (1, 2), false, (5, 1), &vec![0; MAX_PACKET_LEN]);
    assert_eq!(
        Packet::decode(&big),
        Err(packet::Error::TooLong(MAX_PACKET_LEN + 32))
    );
    // v2 with options longer than the packet.
    let mut b = v2(1, 0, &[], (1, 2), (5, 1), &[1, 2, 3, 4]);
    b[3] = 200;
    assert!(matches!(
        Packet::decode(&b),
        Err(packet::Error::SizeMismatch { .. })
    ));
    // size u32::MAX cannot wrap the arithmetic.
    let mut b = v1(DATA, (1, 2), false, (5, 1), &[1, 2, 3, 4]);
    b[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Packet::decode(&b),
        Err(packet::Error::SizeMismatch { .. })
    ));
    // Encoding refuses size 0 and oversized payloads.
    let a = Addr::new(5, 1);
    assert_eq!(
        encode_v1(PacketType::Data, false, a, a, &[]),
        Err(packet::Error::EmptyPayload)
    );
    assert!(encode_v1(PacketType::Data, false, a, a, &vec![0; MAX_PACKET_LEN]).is_err());
    assert!(encode_v1(
        PacketType::Data,
        false,
        a,
        a,
        &vec![0; MAX_PACKET_LEN - V1_HEADER_LEN]
    )
    .is_ok());
}

#[test]
fn receive_rules_of_qrtr_endpoint_post() {
    // NEW_SERVER and RESUME_TX need a whole control packet.
    let short = v1(
        NEW_SERVER,
        (1, CTRL),
        false,
        (5, CTRL),
        &ctrl(4, [0; 4])[..16],
    );
    assert_eq!(
        Packet::decode(&short),
        Err(packet::Error::ShortControl { ty: 4, size: 16 })
    );
    let short = v1(RESUME_TX, (1, 9), false, (5, 1), &ctrl(7, [0; 4])[..8]);
    assert!(matches!(
        Packet::decode(&short),
        Err(packet::Error::ShortControl { ty: 7, .. })
    ));
    // Control packets other than RESUME_TX must go to the control port.
    let b = v1(HELLO, (1, CTRL), false, (5, 1), &ctrl(2, [0; 4]));
    assert_eq!(
        Packet::decode(&b),
        Err(packet::Error::NotToControlPort { ty: 2, port: 1 })
    );
    assert!(Packet::decode(&v1(
        RESUME_TX,
        (1, 9),
        false,
        (5, 1),
        &ctrl(7, [1, 9, 0, 0])
    ))
    .is_ok());
    // Legacy control port as destination.
    let b = v1(HELLO, (1, CTRL), false, (5, 0xffff), &ctrl(2, [0; 4]));
    assert_eq!(Packet::decode(&b).unwrap().dst.port, CTRL);
    // Unknown version.
    let mut b = v1(DATA, (1, 2), false, (5, 1), &[1]);
    b[0] = 2;
    assert_eq!(Packet::decode(&b), Err(packet::Error::Version(2)));
}

// ---- Control payloads ----

#[test]
fn control_payloads_round_trip_against_hand_layouts() {
    let s = Server {
        service: 0x41D,
        instance: 1,
        node: 1,
        port: 0x4005,
    };
    let c = Client { node: 5, port: 1 };
    let cases = [
        (Control::Hello, ctrl(2, [0; 4])),
        (Control::Bye, ctrl(3, [0; 4])),
        (Control::NewServer(s), ctrl(4, [0x41D, 1, 1, 0x4005])),
        (Control::DelServer(s), ctrl(5, [0x41D, 1, 1, 0x4005])),
        (Control::DelClient(c), ctrl(6, [5, 1, 0, 0])),
        (Control::ResumeTx(c), ctrl(7, [5, 1, 0, 0])),
        (Control::Exit, ctrl(8, [0; 4])),
        (Control::Ping, ctrl(9, [0; 4])),
        (
            Control::NewLookup {
                service: 0x41D,
                instance: 1,
            },
            ctrl(10, [0x41D, 1, 0, 0]),
        ),
        (
            Control::DelLookup {
                service: 0x41D,
                instance: 0,
            },
            ctrl(11, [0x41D, 0, 0, 0]),
        ),
    ];
    for (c, bytes) in cases {
        assert_eq!(c.encode().to_vec(), bytes, "{c:?}");
        assert_eq!(Control::decode(c.packet_type() as u32, &bytes), Ok(c));
    }
}

// ---- The handshake ----

fn hello_from_dsp(b: &[u8]) {
    let p = parse(b);
    assert_eq!(p.ty, HELLO);
    assert_eq!(p.src, (DSP, CTRL));
    assert_eq!(p.dst, (GUEST, CTRL));
    assert!(!p.confirm);
    assert_eq!(p.payload, ctrl(2, [0; 4]));
}

fn service_up(out: &[Event]) -> bool {
    out.contains(&Event::ServiceUp(Addr::new(GUEST, SVC_PORT)))
}

#[test]
fn handshake_7_3_guest_hello_first_to_broadcast_node() {
    let mut link = AdspLink::new();
    // 7.3: the endpoint registers and the core sends HELLO to dst node 0xFFFFFFFF before the
    // backend has said anything.
    let out = link.receive(&guest_ctrl(HELLO, BCAST, [0; 4]), T);
    assert_eq!(out.error, None);
    assert_eq!(out.packets.len(), 1, "first HELLO of the peer is answered");
    hello_from_dsp(&out.packets[0]);
    // The backend starts (link up) and says HELLO.
    let start = link.start(T);
    hello_from_dsp(&start[0]);
    assert!(matches!(link.client().state(), State::Looking { .. }));
    // The name service answers with NEW_SERVER; never HELLO.
    let out = link.receive(&new_server_uaudio(), T);
    assert!(out.packets.is_empty());
    assert!(service_up(&out.events));
    assert_eq!(
        link.client().state(),
        &State::ServiceUp {
            service: Addr::new(GUEST, SVC_PORT)
        }
    );
}

#[test]
fn handshake_7_3_our_hello_first() {
    let mut link = AdspLink::new();
    link.start(T);
    // Our HELLO reached the guest before its own went out: its HELLO now names node 5, and
    // its name service may have dropped the announcement (-EAGAIN), so we say HELLO again.
    let out = link.receive(&guest_ctrl(HELLO, DSP, [0; 4]), T);
    assert_eq!(out.packets.len(), 1);
    hello_from_dsp(&out.packets[0]);
    let out = link.receive(&new_server_uaudio(), T);
    assert!(service_up(&out.events));
    // A second announcement (both HELLOs answered) changes nothing.
    let out = link.receive(&new_server_uaudio(), T);
    assert!(out.events.is_empty());
}

#[test]
fn handshake_7_2_hello_answered_once_no_ping_pong() {
    let mut link = AdspLink::new();
    hello_from_dsp(&link.start(T)[0]);
    // 7.2: the name service answers our HELLO with HELLO, then NEW_SERVERs.
    let out = link.receive(&guest_ctrl(HELLO, DSP, [0; 4]), T);
    assert_eq!(out.packets.len(), 1, "the first peer HELLO is answered");
    let out = link.receive(&new_server_uaudio(), T);
    assert!(service_up(&out.events));
    // Our answer made it answer again: HELLO + NEW_SERVER. This time we stay quiet.
    let out = link.receive(&guest_ctrl(HELLO, DSP, [0; 4]), T);
    assert!(out.packets.is_empty(), "no HELLO ping-pong");
    let out = link.receive(&new_server_uaudio(), T);
    assert!(out.packets.is_empty() && out.events.is_empty());
}

#[test]
fn broadcast_hello_after_traffic_means_the_peer_registered_anew() {
    let mut link = AdspLink::new();
    link.start(T);
    link.receive(&guest_ctrl(HELLO, BCAST, [0; 4]), T);
    link.receive(&new_server_uaudio(), T);
    let out = link.receive(&guest_ctrl(HELLO, BCAST, [0; 4]), T);
    assert_eq!(out.packets.len(), 1, "answered");
    assert!(out.events.iter().any(|e| matches!(
        e,
        Event::ServiceDown {
            reason: DownReason::Bye,
            ..
        }
    )));
    assert!(matches!(link.client().state(), State::Looking { .. }));
}

// ---- Flow control ----

#[test]
fn confirm_rx_is_answered_with_resume_tx_from_the_receiving_port() {
    let mut link = AdspLink::new();
    link.start(T);
    link.receive(&new_server_uaudio(), T);
    // Any DATA (even one the client cannot use) is acknowledged.
    let out = link.receive(
        &v1(DATA, (GUEST, 0x4009), true, (DSP, DSP_PORT), &[0; 3]),
        T,
    );
    assert_eq!(out.packets.len(), 1);
    let p = parse(&out.packets[0]);
    assert_eq!(p.ty, RESUME_TX);
    assert_eq!(p.src, (DSP, DSP_PORT));
    assert_eq!(p.dst, (GUEST, 0x4009));
    assert!(!p.confirm);
    assert_eq!(p.payload, ctrl(7, [DSP, DSP_PORT, 0, 0]));
    // Without confirm_rx nothing is sent.
    let out = link.receive(
        &v1(DATA, (GUEST, 0x4009), false, (DSP, DSP_PORT), &[0; 3]),
        T,
    );
    assert!(out.packets.is_empty());
}

#[test]
fn our_sends_wait_for_resume_tx_beyond_the_window() {
    let mut n = QrtrNode::new(DSP, GUEST);
    n.bind(DSP_PORT).unwrap();
    let dst = Addr::new(GUEST, SVC_PORT);
    let mut sent = Vec::new();
    for i in 0..12u8 {
        sent.push(n.send(DSP_PORT, dst, &[i]).unwrap());
    }
    for (i, s) in sent.iter().enumerate().take(10) {
        assert_eq!(s.len(), 1, "packet {} leaves", i + 1);
        let p = parse(&s[0]);
        assert_eq!(p.ty, DATA);
        assert_eq!(p.src, (DSP, DSP_PORT));
        assert_eq!(p.dst, (GUEST, SVC_PORT));
        assert_eq!(p.confirm, i == 4, "confirm_rx only on the 5th");
        assert_eq!(p.payload, [i as u8]);
    }
    assert!(
        sent[10].is_empty() && sent[11].is_empty(),
        "11th and 12th wait"
    );
    assert_eq!(n.outstanding(dst), 10);
    assert_eq!(n.queued(dst), 2);
    // The guest read the 5th and sends RESUME_TX {1, its port} from its port to ours.
    let resume = v1(
        RESUME_TX,
        (GUEST, SVC_PORT),
        false,
        (DSP, DSP_PORT),
        &ctrl(7, [GUEST, SVC_PORT, 0, 0]),
    );
    let out = n.receive(&resume).unwrap();
    assert_eq!(out.packets.len(), 2);
    assert_eq!(parse(&out.packets[0]).payload, [10]);
    assert_eq!(parse(&out.packets[1]).payload, [11]);
    assert_eq!(n.outstanding(dst), 2);
    assert_eq!(n.queued(dst), 0);
    // A RESUME_TX for a port we never sent to is harmless.
    let other = v1(
        RESUME_TX,
        (GUEST, 7),
        false,
        (DSP, DSP_PORT),
        &ctrl(7, [GUEST, 7, 0, 0]),
    );
    assert!(n.receive(&other).unwrap().packets.is_empty());
    // Sending from a port we do not have is refused.
    assert_eq!(n.send(9, dst, &[0]), Err(node::Error::NotBound(9)));
}

#[test]
fn del_client_drops_what_waits_for_that_port() {
    let mut n = QrtrNode::new(DSP, GUEST);
    n.bind(DSP_PORT).unwrap();
    let dst = Addr::new(GUEST, SVC_PORT);
    for _ in 0..11 {
        n.send(DSP_PORT, dst, &[0]).unwrap();
    }
    assert_eq!(n.queued(dst), 1);
    let del = v1(
        DEL_CLIENT,
        (GUEST, SVC_PORT),
        false,
        (DSP, CTRL),
        &ctrl(6, [GUEST, SVC_PORT, 0, 0]),
    );
    let out = n.receive(&del).unwrap();
    assert_eq!(
        out.events,
        vec![NodeEvent::DelClient(Client {
            node: GUEST,
            port: SVC_PORT
        })]
    );
    assert_eq!(n.queued(dst), 0);
    assert_eq!(n.outstanding(dst), 0);
}

// ---- Services going away ----

fn up() -> AdspLink {
    let mut link = AdspLink::new();
    link.start(T);
    link.receive(&guest_ctrl(HELLO, BCAST, [0; 4]), T);
    assert!(service_up(&link.receive(&new_server_uaudio(), T).events));
    link
}

fn down_reason(events: &[Event]) -> Option<DownReason> {
    events.iter().find_map(|e| match e {
        Event::ServiceDown { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn bye_from_the_guest_node_takes_the_service_down() {
    let mut link = up();
    let out = link.receive(&guest_ctrl(BYE, DSP, [0; 4]), T);
    assert_eq!(down_reason(&out.events), Some(DownReason::Bye));
    assert!(matches!(link.client().state(), State::Looking { .. }));
    assert_eq!(link.node().servers().count(), 0);
    // After BYE the next HELLO is answered again, and a new NEW_SERVER brings it back.
    let out = link.receive(&guest_ctrl(HELLO, DSP, [0; 4]), T);
    assert_eq!(out.packets.len(), 1);
    assert!(service_up(&link.receive(&new_server_uaudio(), T).events));
}

#[test]
fn del_server_takes_the_service_down() {
    let mut link = up();
    // Another service going away is not ours.
    let out = link.receive(&guest_ctrl(DEL_SERVER, DSP, [0x42, 1, GUEST, 0x4010]), T);
    assert_eq!(out.error, None);
    assert_eq!(down_reason(&out.events), None);
    let out = link.receive(&guest_ctrl(DEL_SERVER, DSP, [0x41D, 1, GUEST, SVC_PORT]), T);
    assert_eq!(down_reason(&out.events), Some(DownReason::DelServer));
    assert!(link.node().lookup(0x41D, 1).is_none());
}

#[test]
fn del_client_of_the_service_port_takes_it_down() {
    let mut link = up();
    let del = v1(
        DEL_CLIENT,
        (GUEST, SVC_PORT),
        false,
        (DSP, CTRL),
        &ctrl(6, [GUEST, SVC_PORT, 0, 0]),
    );
    let out = link.receive(&del, T);
    assert_eq!(down_reason(&out.events), Some(DownReason::DelClient));
}

#[test]
fn other_services_and_instances_are_not_uaudio() {
    let mut link = AdspLink::new();
    link.start(T);
    let out = link.receive(&guest_ctrl(NEW_SERVER, DSP, [0x42, 1, GUEST, 0x4001]), T);
    assert!(out.events.is_empty());
    let out = link.receive(
        &guest_ctrl(NEW_SERVER, DSP, [0x41D, 0x101, GUEST, 0x4002]),
        T,
    );
    assert!(out.events.is_empty());
    assert!(link.node().lookup(0x42, 1).is_some());
    assert!(matches!(link.client().state(), State::Looking { .. }));
}

// ---- Refusals ----

#[test]
fn bad_packets_are_refused_and_nothing_is_sent() {
    let mut link = up();
    let cases: Vec<(Vec<u8>, node::Error)> = vec![
        // From a node that is not the guest.
        (
            v1(HELLO, (7, CTRL), false, (DSP, CTRL), &ctrl(2, [0; 4])),
            node::Error::UnexpectedSource(Addr::new(7, CTRL)),
        ),
        // For another node.
        (
            v1(DATA, (GUEST, 9), true, (6, DSP_PORT), &[1]),
            node::Error::NotForUs(Addr::new(6, DSP_PORT)),
        ),
        // DATA for a port nobody bound: dropped as the kernel drops it.
        (
            v1(DATA, (GUEST, 9), true, (DSP, 77), &[1]),
            node::Error::UnboundPort(77),
        ),
        // NEW_SERVER naming another node than the sender.
        (
            guest_ctrl(NEW_SERVER, DSP, [0x41D, 1, 3, SVC_PORT]),
            node::Error::ServerNode {
                service: 0x41D,
                node: 3,
                from: GUEST,
            },
        ),
        // NEW_SERVER with port 0.
        (
            guest_ctrl(NEW_SERVER, DSP, [0x41D, 1, GUEST, 0]),
            node::Error::InvalidServer {
                service: 0x41D,
                port: 0,
            },
        ),
        // DEL_CLIENT for our node, spoofed by the guest.
        (
            guest_ctrl(DEL_CLIENT, DSP, [DSP, DSP_PORT, 0, 0]),
            node::Error::SpoofedDelClient {
                client: Addr::new(DSP, DSP_PORT),
                from: GUEST,
            },
        ),
    ];
    for (pkt, want) in cases {
        let out = link.receive(&pkt, T);
        assert_eq!(out.error, Some(want.into()), "{want}");
        assert!(out.packets.is_empty() && out.events.is_empty());
    }
    // Control payload not 20 bytes, or cmd not the header type.
    let out = link.receive(
        &v1(
            HELLO,
            (GUEST, CTRL),
            false,
            (DSP, CTRL),
            &2u32.to_le_bytes(),
        ),
        T,
    );
    assert!(out.error.is_some());
    let out = link.receive(
        &v1(BYE, (GUEST, CTRL), false, (DSP, CTRL), &ctrl(2, [0; 4])),
        T,
    );
    assert!(out.error.is_some());
    // Still up after all of it.
    assert!(matches!(link.client().state(), State::ServiceUp { .. }));
}

#[test]
fn unknown_and_ignored_types_do_nothing() {
    let mut link = up();
    for ty in [8u32, 9, 10, 11] {
        let out = link.receive(&guest_ctrl(ty, DSP, [0x41D, 1, 0, 0]), T);
        assert_eq!(out.error, None, "type {ty}");
        assert!(out.packets.is_empty() && out.events.is_empty());
    }
    let out = link.receive(&v1(42, (GUEST, CTRL), false, (DSP, CTRL), &[0; 20]), T);
    assert_eq!(out.error, None);
    assert!(out.packets.is_empty() && out.events.is_empty());
}

#[test]
fn bind_rules() {
    let mut n = QrtrNode::new(DSP, GUEST);
    assert!(n.bind(CTRL).is_err());
    assert!(n.bind(0xffff).is_err());
    n.bind(3).unwrap();
    assert_eq!(n.bind(3), Err(node::Error::BindRefused(3)));
}

#[test]
fn goodbye_is_del_client_then_bye() {
    let link = up();
    let g = link.goodbye();
    let del = parse(&g[0]);
    assert_eq!(del.ty, DEL_CLIENT);
    assert_eq!(del.src, (DSP, DSP_PORT));
    assert_eq!(del.dst, (GUEST, CTRL));
    assert_eq!(del.payload, ctrl(6, [DSP, DSP_PORT, 0, 0]));
    let bye = parse(&g[1]);
    assert_eq!(bye.ty, BYE);
    assert_eq!(bye.src, (DSP, CTRL));
    assert_eq!(bye.dst, (GUEST, CTRL));
    assert_eq!(bye.payload, ctrl(3, [0; 4]));
}

#[test]
fn link_down_forgets_everything() {
    let mut link = up();
    let ev = link.link_down();
    assert_eq!(down_reason(&ev), Some(DownReason::LinkDown));
    assert_eq!(link.client().state(), &State::Idle);
    assert_eq!(link.node().servers().count(), 0);
    // Coming back: HELLO again, and the first peer HELLO is answered again.
    link.start(T);
    let out = link.receive(&guest_ctrl(HELLO, BCAST, [0; 4]), T);
    assert_eq!(out.packets.len(), 1);
}
