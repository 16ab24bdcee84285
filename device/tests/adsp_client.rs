//! The DSP's UAUDIO client driven through the link with packets built by hand the way the
//! guest sends them (guest-driver.md §5(b)–(e)).

#[path = "adsp_support.rs"]
mod support;

use std::time::Duration;

use sideband_device::adsp::qrtr::Addr;
use sideband_device::adsp::uaudio::{
    AudioFormat, Direction, DownReason, Event, Failure, Speed, TxnKind,
};
use sideband_device::adsp::{AdspLink, State, StreamParams};
use support::*;

fn params() -> StreamParams {
    StreamParams {
        card: 1,
        pcm: 0,
        direction: Direction::Playback,
        audio_format: AudioFormat::S16Le as u32,
        channels: 2,
        rate: 48_000,
        xfer_buff_size: 8192,
        service_interval: None,
    }
}

const TOKEN: u32 = 0x0001_0000;

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn up() -> AdspLink {
    let mut link = AdspLink::new();
    link.start(at(0));
    link.receive(&guest_ctrl(HELLO, BCAST, [0; 4]), at(1));
    let out = link.receive(&new_server_uaudio(), at(2));
    assert_eq!(
        out.events,
        vec![Event::ServiceUp(Addr::new(GUEST, SVC_PORT))]
    );
    link
}

/// The request inside the one DATA packet `pkts` holds, checked for addressing.
fn request_in(pkts: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(pkts.len(), 1);
    let p = parse(&pkts[0]);
    assert_eq!(p.ty, DATA);
    assert_eq!(p.src, (DSP, DSP_PORT));
    assert_eq!(p.dst, (GUEST, SVC_PORT));
    assert!(!p.confirm);
    p.payload
}

/// The request the guest expects: TLVs 0x01, 0x02, 0x10–0x13, never 0x14.
fn expected_request(txn: u16, enable: bool) -> Vec<u8> {
    let mut p = tlv(0x01, &[enable as u8]);
    p.extend(tlv(0x02, &le32(TOKEN)));
    p.extend(tlv(0x10, &le32(2)));
    p.extend(tlv(0x11, &le32(2)));
    p.extend(tlv(0x12, &le32(48_000)));
    p.extend(tlv(0x13, &le32(8192)));
    qmi(0, txn, 1, &p)
}

fn enabled(link: &mut AdspLink) {
    let req = request_in(&link.enable(params(), at(10)).unwrap());
    assert_eq!(req, expected_request(1, true));
    let out = link.receive(
        &from_service(false, &qmi(2, 1, 1, &full_response_payload(TOKEN))),
        at(20),
    );
    assert!(out.packets.is_empty());
    assert!(matches!(out.events.as_slice(), [Event::Enabled(_)]));
}

#[test]
fn enable_stream_disconnect_disable() {
    let mut link = up();
    // Enable.
    let req = request_in(&link.enable(params(), at(10)).unwrap());
    assert_eq!(req, expected_request(1, true));
    let pending = link.client().pending().unwrap();
    assert_eq!(pending.txn, 1);
    assert_eq!(pending.kind, TxnKind::Enable);
    assert_eq!(pending.since, at(10));
    assert!(matches!(link.client().state(), State::Enabling { .. }));
    // Another enable meanwhile is refused.
    assert!(link.enable(params(), at(11)).is_err());

    // The guest answers with every TLV, and asks for RESUME_TX while at it.
    let resp = qmi(2, 1, 1, &full_response_payload(TOKEN));
    let out = link.receive(&from_service(true, &resp), at(20));
    assert_eq!(out.error, None);
    assert_eq!(out.packets.len(), 1);
    let r = parse(&out.packets[0]);
    assert_eq!(
        (r.ty, r.src, r.dst),
        (RESUME_TX, (DSP, DSP_PORT), (GUEST, SVC_PORT))
    );
    let [Event::Enabled(res)] = out.events.as_slice() else {
        panic!("expected Enabled, got {:?}", out.events);
    };
    assert_eq!(res.slot_id, 1);
    assert_eq!(res.interrupter_num, 1);
    assert_eq!(res.speed, Speed::High);
    assert_eq!(res.data_ep.to_bytes(), DATA_EP);
    assert_eq!(res.sync_ep.unwrap().to_bytes(), SYNC_EP);
    assert_eq!(res.intf.to_bytes(), INTF);
    assert_eq!(res.spec_revision, Some(0x0200));
    assert_eq!(res.subslot_size, Some(2));
    assert_eq!(res.controller_num, Some(0));
    assert_eq!(res.mem.event_ring.iova, 0x1000);
    assert_eq!(res.mem.event_ring.sid, 2);
    assert_eq!(res.mem.event_ring.dma, 0x4100_0000);
    assert_eq!(res.mem.transfer_ring.iova, 0xa000);
    assert_eq!(res.mem.transfer_ring.dma, 0x4100_2000);
    assert_eq!(res.mem.sync_ring.unwrap().iova, 0xb000);
    assert_eq!(res.mem.transfer_buffer.iova, 0x4a000);
    assert_eq!(res.mem.transfer_buffer.size, 8192);
    assert!(matches!(link.client().state(), State::Streaming { .. }));
    assert_eq!(link.client().resources(), Some(&**res));
    assert_eq!(link.client().pending(), None);

    // Unplug: the guest sends DISCONNECT (25 bytes) to the requester's address.
    let out = link.receive(&from_service(false, &disconnect_ind(7, 1, 0)), at(30));
    let [Event::StopRequested(ind)] = out.events.as_slice() else {
        panic!("expected StopRequested, got {:?}", out.events);
    };
    assert_eq!(
        (ind.dev_event, ind.slot_id, ind.controller_num),
        (1, 1, Some(0))
    );
    assert!(matches!(
        link.client().state(),
        State::Streaming {
            stop_requested: true,
            ..
        }
    ));

    // The engine stopped; disable with the same TLVs 0x10–0x13.
    let req = request_in(&link.disable(at(40)).unwrap());
    assert_eq!(req, expected_request(2, false));
    assert!(matches!(link.client().state(), State::Disabling { .. }));
    assert_eq!(link.client().pending().unwrap().kind, TxnKind::Disable);

    let out = link.receive(
        &from_service(false, &qmi(2, 2, 1, &disable_response_payload(TOKEN))),
        at(50),
    );
    assert_eq!(
        out.events,
        vec![Event::Disabled {
            txn: 2,
            outcome: Ok(())
        }]
    );
    assert_eq!(
        link.client().state(),
        &State::ServiceUp {
            service: Addr::new(GUEST, SVC_PORT)
        }
    );
    assert_eq!(
        link.client().last_response().unwrap().usb_token,
        Some(TOKEN)
    );
    // And a new stream can start, with the next transaction id.
    let req = request_in(&link.enable(params(), at(60)).unwrap());
    assert_eq!(req, expected_request(3, true));
}

#[test]
fn failed_enable_reports_the_errno() {
    let mut link = up();
    link.enable(params(), at(10)).unwrap();
    let resp = qmi(2, 1, 1, &failed_response_payload(TOKEN, -16));
    let out = link.receive(&from_service(false, &resp), at(20));
    assert_eq!(
        out.events,
        vec![Event::EnableFailed {
            txn: 1,
            failure: Failure::Status {
                status: 1,
                internal_status: -16
            }
        }]
    );
    let Event::EnableFailed { failure, .. } = &out.events[0] else {
        unreachable!()
    };
    assert_eq!(failure.errno().as_deref(), Some("-EBUSY"));
    assert!(failure.to_string().contains("-EBUSY"));
    assert!(matches!(link.client().state(), State::ServiceUp { .. }));
    assert_eq!(link.client().last_response().unwrap().status, Some(1));

    // A card that does not exist: -ENODEV / -EINVAL.
    link.enable(
        StreamParams {
            card: 7,
            ..params()
        },
        at(30),
    )
    .unwrap();
    let resp = qmi(2, 2, 1, &failed_response_payload(7 << 16, -19));
    let out = link.receive(&from_service(false, &resp), at(40));
    let [Event::EnableFailed { failure, .. }] = out.events.as_slice() else {
        panic!("{:?}", out.events)
    };
    assert_eq!(failure.errno().as_deref(), Some("-ENODEV"));
}

#[test]
fn success_without_the_resources_is_a_failure() {
    let mut link = up();
    link.enable(params(), at(10)).unwrap();
    // status 0 but no mem info: unusable.
    let resp = qmi(2, 1, 1, &disable_response_payload(TOKEN));
    let out = link.receive(&from_service(false, &resp), at(20));
    assert!(matches!(
        out.events.as_slice(),
        [Event::EnableFailed {
            failure: Failure::Incomplete(_),
            ..
        }]
    ));
}

/// Only the stray response is reported, with what it said (status 0 in this payload).
fn only_stray(events: &[Event], want_txn: u16) -> bool {
    matches!(events, [Event::StrayResponse { txn, status: Some(0), .. }] if *txn == want_txn)
}

#[test]
fn response_with_unknown_txn_changes_nothing_and_is_reported_as_stray() {
    let mut link = up();
    link.enable(params(), at(10)).unwrap();
    let out = link.receive(
        &from_service(false, &qmi(2, 42, 1, &full_response_payload(TOKEN))),
        at(20),
    );
    assert!(only_stray(&out.events, 42), "{:?}", out.events);
    assert!(matches!(link.client().state(), State::Enabling { .. }));
    // A response when nothing is pending, too.
    let mut idle = up();
    let out = idle.receive(
        &from_service(false, &qmi(2, 1, 1, &full_response_payload(TOKEN))),
        at(20),
    );
    assert!(only_stray(&out.events, 1), "{:?}", out.events);
    assert!(matches!(idle.client().state(), State::ServiceUp { .. }));
}

#[test]
fn timeouts_are_the_callers() {
    let mut link = up();
    link.enable(params(), at(10)).unwrap();
    let p = link.client().pending().unwrap();
    assert_eq!(p.since, at(10));
    // The caller decides it waited long enough.
    assert_eq!(link.abandon_pending(), Some(p));
    assert!(matches!(link.client().state(), State::ServiceUp { .. }));
    assert_eq!(link.abandon_pending(), None);
    // The late response is an unknown transaction now.
    let out = link.receive(
        &from_service(false, &qmi(2, 1, 1, &full_response_payload(TOKEN))),
        at(9000),
    );
    assert!(only_stray(&out.events, 1), "{:?}", out.events);
    // The caller can still disable what may have been enabled.
    let req = request_in(&link.disable_params(params(), at(9001)).unwrap());
    assert_eq!(req, expected_request(2, false));
}

#[test]
fn requests_need_the_service() {
    let mut link = AdspLink::new();
    assert!(link.enable(params(), at(0)).is_err());
    link.start(at(0));
    assert_eq!(link.client().looking_since(), Some(at(0)));
    assert!(link.enable(params(), at(0)).is_err());
    assert!(link.disable(at(0)).is_err());
    let mut link = up();
    assert!(link.disable(at(0)).is_err(), "no stream to disable");
}

#[test]
fn disconnect_before_the_enable_response() {
    // The driver sets in_use and drops qdev_mutex before sending the response, so an unplug
    // can get its DISCONNECT out first.
    let mut link = up();
    link.enable(params(), at(10)).unwrap();
    let out = link.receive(&from_service(false, &disconnect_ind(9, 1, 0)), at(15));
    assert!(matches!(out.events.as_slice(), [Event::Indication(_)]));
    let out = link.receive(
        &from_service(false, &qmi(2, 1, 1, &full_response_payload(TOKEN))),
        at(20),
    );
    assert!(matches!(
        out.events.as_slice(),
        [Event::Enabled(_), Event::StopRequested(_)]
    ));
    assert!(link.disable(at(21)).is_ok());
}

#[test]
fn bye_while_streaming_loses_the_stream() {
    let mut link = up();
    enabled(&mut link);
    let out = link.receive(&guest_ctrl(BYE, DSP, [0; 4]), at(30));
    assert_eq!(
        out.events,
        vec![Event::ServiceDown {
            service: Addr::new(GUEST, SVC_PORT),
            reason: DownReason::Bye,
            stream_lost: true
        }]
    );
    assert_eq!(link.client().state(), &State::Looking { since: at(30) });
    assert!(link.client().resources().is_none());
}

#[test]
fn del_server_then_new_server_brings_it_back() {
    let mut link = up();
    enabled(&mut link);
    let out = link.receive(
        &guest_ctrl(DEL_SERVER, DSP, [0x41D, 1, GUEST, SVC_PORT]),
        at(30),
    );
    assert!(matches!(
        out.events.as_slice(),
        [Event::ServiceDown {
            reason: DownReason::DelServer,
            stream_lost: true,
            ..
        }]
    ));
    // The module is loaded again: new port.
    let out = link.receive(
        &guest_ctrl(NEW_SERVER, DSP, [0x41D, 1, GUEST, 0x4020]),
        at(40),
    );
    assert_eq!(out.events, vec![Event::ServiceUp(Addr::new(GUEST, 0x4020))]);
    let pkts = link.enable(params(), at(50)).unwrap();
    assert_eq!(parse(&pkts[0]).dst, (GUEST, 0x4020));
}

#[test]
fn service_announced_at_a_new_port_replaces_the_old() {
    let mut link = up();
    let out = link.receive(
        &guest_ctrl(NEW_SERVER, DSP, [0x41D, 1, GUEST, 0x4020]),
        at(40),
    );
    assert_eq!(
        out.events,
        vec![
            Event::ServiceDown {
                service: Addr::new(GUEST, SVC_PORT),
                reason: DownReason::Moved,
                stream_lost: false
            },
            Event::ServiceUp(Addr::new(GUEST, 0x4020))
        ]
    );
}

#[test]
fn malformed_messages_from_the_service() {
    let mut link = up();
    link.enable(params(), at(10)).unwrap();
    // Unreadable header: reported, the request stays pending.
    let out = link.receive(&from_service(true, &[2, 1, 0]), at(11));
    assert!(matches!(
        out.events.as_slice(),
        [Event::BadMessage { txn: None, .. }]
    ));
    assert_eq!(out.packets.len(), 1, "RESUME_TX still sent");
    assert!(link.client().pending().is_some());
    // A response to our transaction with an unknown mandatory TLV: the request ends.
    let mut p = full_response_payload(TOKEN);
    p.truncate(p.len() - 4);
    p.extend(tlv(0x03, &[0]));
    let out = link.receive(&from_service(false, &qmi(2, 1, 1, &p)), at(12));
    assert!(matches!(
        out.events.as_slice(),
        [Event::BadMessage { txn: Some(1), .. }]
    ));
    assert!(matches!(link.client().state(), State::ServiceUp { .. }));
    // A bad indication is reported, nothing else changes.
    let mut ind = disconnect_ind(3, 1, 0);
    ind[7 + 1] = 2; // dev_event TLV claims 2 bytes
    let out = link.receive(&from_service(false, &ind), at(13));
    assert!(matches!(
        out.events.as_slice(),
        [Event::BadMessage { txn: Some(3), .. }]
    ));
    // Messages from a port that is not the service are ignored.
    let out = link.receive(
        &v1(
            DATA,
            (GUEST, 0x4444),
            false,
            (DSP, DSP_PORT),
            &disconnect_ind(1, 1, 0),
        ),
        at(14),
    );
    assert!(out.events.is_empty());
    // Requests and other message ids are ignored.
    let out = link.receive(&from_service(false, &expected_request(1, true)), at(15));
    assert!(out.events.is_empty());
    let out = link.receive(&from_service(false, &qmi(2, 1, 0x20, &[])), at(16));
    assert!(out.events.is_empty());
}

#[test]
fn other_indications_are_reported() {
    let mut link = up();
    let mut p = tlv(0x01, &le32(2)); // SUSPEND
    p.extend(tlv(0x02, &le32(1)));
    let out = link.receive(&from_service(false, &qmi(4, 1, 1, &p)), at(10));
    let [Event::Indication(ind)] = out.events.as_slice() else {
        panic!("{:?}", out.events)
    };
    assert_eq!(ind.dev_event, 2);
    // DISCONNECT with no stream: reported, nothing to stop.
    let out = link.receive(&from_service(false, &disconnect_ind(2, 1, 0)), at(11));
    assert!(matches!(out.events.as_slice(), [Event::Indication(_)]));
}

#[test]
fn failed_disable_is_reported() {
    let mut link = up();
    enabled(&mut link);
    link.disable(at(30)).unwrap();
    let resp = qmi(2, 2, 1, &failed_response_payload(TOKEN, -22));
    let out = link.receive(&from_service(false, &resp), at(40));
    assert_eq!(
        out.events,
        vec![Event::Disabled {
            txn: 2,
            outcome: Err(Failure::Status {
                status: 1,
                internal_status: -22
            })
        }]
    );
}

#[test]
fn the_guest_blocks_on_no_packet_of_ours() {
    // Eleven guest DATA packets with confirm_rx on the 5th and 10th each get RESUME_TX.
    let mut link = up();
    let mut resumes = 0;
    for i in 1..=11 {
        let out = link.receive(
            &from_service(i % 5 == 0, &disconnect_ind(i as u16, 1, 0)),
            at(i),
        );
        resumes += out.packets.len();
    }
    assert_eq!(resumes, 2);
}

#[test]
fn link_down_while_streaming() {
    let mut link = up();
    enabled(&mut link);
    let ev = link.link_down();
    assert!(matches!(
        ev.as_slice(),
        [Event::ServiceDown {
            reason: DownReason::LinkDown,
            stream_lost: true,
            ..
        }]
    ));
    assert_eq!(link.client().state(), &State::Idle);
}
