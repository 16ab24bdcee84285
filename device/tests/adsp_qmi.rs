//! The QMI codec and the UAUDIO messages against byte strings assembled by hand from
//! guest-driver.md §3.3 and §4.2–4.5.

#[path = "adsp_support.rs"]
mod support;

use sideband_device::adsp::qmi::{self, Header, MsgType};
use sideband_device::adsp::uaudio::messages::{self, STREAM_IND, STREAM_REQ, STREAM_RESP};
use sideband_device::adsp::uaudio::{
    AppsMemInfo, AudioFormat, Direction, EndpointDescriptor, InterfaceDescriptor, MemInfo,
    StreamIndication, StreamParams, StreamRequest, StreamResources, StreamResponse, UsbToken,
};
use sideband_device::adsp::uaudio::{MemRegion, Speed};
use support::*;

fn params() -> StreamParams {
    StreamParams {
        card: 1,
        pcm: 0,
        direction: Direction::Playback,
        audio_format: AudioFormat::S16Le as u32,
        channels: 2,
        rate: 48_000,
        xfer_buff_size: 0,
        service_interval: None,
    }
}

/// card 1 << 16 | pcm 0 << 8 | playback 0.
const TOKEN: u32 = 0x0001_0000;

#[test]
fn stream_req_is_byte_exact() {
    let got = params().request(true).encode(0x0102).unwrap();
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        0x00, 0x02, 0x01, 0x01, 0x00, 39, 0x00,       // request, txn 0x0102, msg 1, 39 bytes
        0x01, 0x01, 0x00, 0x01,                       // enable = 1
        0x02, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00,     // usb_token: card 1, pcm 0, playback
        0x10, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00,     // audio_format S16_LE
        0x11, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00,     // 2 channels
        0x12, 0x04, 0x00, 0x80, 0xbb, 0x00, 0x00,     // 48000 Hz
        0x13, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,     // xfer_buff_size 0
    ];
    assert_eq!(got, want);
    // The same through the hand helpers, and the disable differs only in the enable byte.
    let mut p = tlv(0x01, &[0]);
    p.extend(tlv(0x02, &le32(TOKEN)));
    p.extend(tlv(0x10, &le32(2)));
    p.extend(tlv(0x11, &le32(2)));
    p.extend(tlv(0x12, &le32(48_000)));
    p.extend(tlv(0x13, &le32(0)));
    assert_eq!(params().request(false).encode(7).unwrap(), qmi(0, 7, 1, &p));
    // 46 bytes: fits the guest's 53-byte receive buffer with room; TLV 0x14 is absent.
    assert_eq!(got.len(), 46);
    assert!(params().request(true).service_interval.is_none());
}

#[test]
fn service_interval_is_sent_only_when_asked_for() {
    let mut with_si = params();
    with_si.service_interval = Some(1000);
    let got = with_si.request(true).encode(0x0102).unwrap();
    let mut p = tlv(0x01, &[1]);
    p.extend(tlv(0x02, &le32(TOKEN)));
    p.extend(tlv(0x10, &le32(2)));
    p.extend(tlv(0x11, &le32(2)));
    p.extend(tlv(0x12, &le32(48_000)));
    p.extend(tlv(0x13, &le32(0)));
    p.extend(tlv(0x14, &le32(1000)));
    assert_eq!(got, qmi(0, 0x0102, 1, &p));
    assert_eq!(got.len(), 46 + 7, "TLV 0x14 adds 7 bytes");
}

#[test]
fn response_with_every_tlv_decodes() {
    let payload = full_response_payload(TOKEN);
    assert_eq!(payload.len(), 202, "every TLV at full size is the maximum");
    let (h, r) = StreamResponse::decode(&qmi(2, 9, 1, &payload)).unwrap();
    assert_eq!(
        h,
        Header {
            ty: MsgType::Response,
            txn: 9,
            msg_id: 1,
            len: 202
        }
    );
    assert_eq!(r.result.result, 0);
    assert_eq!(r.result.error, 0);
    assert_eq!(r.status, Some(0));
    assert_eq!(r.internal_status, Some(0));
    assert_eq!(r.slot_id, Some(1));
    assert_eq!(r.usb_token, Some(TOKEN));
    assert_eq!(r.intf_desc, Some(InterfaceDescriptor::from_bytes(INTF)));
    let ep = r.data_ep_desc.unwrap();
    assert_eq!(ep.b_endpoint_address, 0x01);
    assert_eq!(ep.w_max_packet_size, 0x00c0);
    assert_eq!(ep.b_synch_address, 0x81);
    assert_eq!(ep.to_bytes(), DATA_EP);
    assert_eq!(r.sync_ep_desc.unwrap().to_bytes(), SYNC_EP);
    assert_eq!(r.spec_revision, Some(0x0200));
    assert_eq!(r.data_path_delay, Some(0));
    assert_eq!(r.subslot_size, Some(2));
    let m = r.xhci_mem_info.unwrap();
    assert_eq!(
        m.evt_ring,
        MemInfo {
            iova: 0x2_0000_1000,
            dma: 0x4100_0000,
            size: 4096
        }
    );
    assert_eq!(m.tr_data.iova, 0x2_0000_a000);
    assert_eq!(m.tr_sync.dma, 0x4100_4000);
    assert_eq!(m.xfer_buff.size, 8192);
    assert_eq!(m.dcba, MemInfo::default());
    assert_eq!(r.interrupter_num, Some(1));
    assert_eq!(r.speed_info, Some(3));
    assert_eq!(r.controller_num, Some(0));

    // The typed resources: IOVAs masked to 32 bits, the SID split out.
    let res = StreamResources::from_response(&r).unwrap();
    assert_eq!(
        res.mem.event_ring,
        MemRegion {
            sid: 2,
            iova: 0x1000,
            dma: 0x4100_0000,
            size: 4096
        }
    );
    assert_eq!(res.mem.transfer_ring.iova, 0xa000);
    assert_eq!(res.mem.sync_ring.unwrap().iova, 0xb000);
    assert_eq!(res.mem.transfer_buffer.iova, 0x4a000);
    assert_eq!(res.mem.transfer_buffer.dma, 0x4200_0000);
    assert_eq!(res.speed, Speed::High);
    assert_eq!(res.slot_id, 1);
    assert_eq!(res.interrupter_num, 1);
    assert_eq!(res.data_ep.dci(), 2);
    assert_eq!(res.sync_ep.unwrap().dci(), 3);
    assert_eq!(res.usb_token, UsbToken::new(1, 0, Direction::Playback));
}

fn full_response() -> StreamResponse {
    StreamResponse::decode(&qmi(2, 1, 1, &full_response_payload(TOKEN)))
        .unwrap()
        .1
}

fn full_indication() -> StreamIndication {
    let r = full_response();
    StreamIndication {
        dev_event: 1,
        slot_id: 3,
        usb_token: Some(TOKEN),
        intf_desc: r.intf_desc,
        data_ep_desc: r.data_ep_desc,
        sync_ep_desc: r.sync_ep_desc,
        spec_revision: Some(0x0100),
        data_path_delay: Some(1),
        subslot_size: Some(3),
        xhci_mem_info: r.xhci_mem_info,
        interrupter_num: Some(2),
        controller_num: Some(0),
    }
}

#[test]
fn every_message_round_trips() {
    let req = StreamRequest {
        enable: true,
        usb_token: UsbToken::new(2, 1, Direction::Capture),
        audio_format: Some(14),
        number_of_ch: Some(1),
        bit_rate: Some(44_100),
        xfer_buff_size: Some(8192),
        service_interval: Some(1000),
    };
    let b = req.encode(5).unwrap();
    assert_eq!(b.len(), 7 + 46, "every TLV: the maximum");
    assert_eq!(StreamRequest::decode(&b).unwrap().1, req);

    let resp = full_response();
    let b = resp.encode(5).unwrap();
    assert_eq!(b, qmi(2, 5, 1, &full_response_payload(TOKEN)));
    assert_eq!(StreamResponse::decode(&b).unwrap().1, resp);

    let ind = full_indication();
    let b = ind.encode(5).unwrap();
    assert_eq!(b.len(), 7 + 181, "every TLV: the maximum");
    assert_eq!(StreamIndication::decode(&b).unwrap().1, ind);

    // Sparse messages too.
    let sparse = StreamResponse {
        status: Some(1),
        internal_status: Some(-22i32 as u32),
        ..Default::default()
    };
    assert_eq!(
        StreamResponse::decode(&sparse.encode(1).unwrap())
            .unwrap()
            .1,
        sparse
    );
}

#[test]
fn disconnect_indication_is_25_bytes() {
    let b = disconnect_ind(0x33, 1, 0);
    assert_eq!(b.len(), 25);
    let (h, ind) = StreamIndication::decode(&b).unwrap();
    assert_eq!(h.ty, MsgType::Indication);
    assert_eq!(h.len, 18);
    assert_eq!(ind.dev_event, 1);
    assert_eq!(ind.slot_id, 1);
    assert_eq!(ind.controller_num, Some(0));
    assert_eq!(ind.usb_token, None);
    assert_eq!(ind.xhci_mem_info, None);
    // Our encoder produces the same bytes from the same fields.
    let mine = StreamIndication {
        dev_event: 1,
        slot_id: 1,
        controller_num: Some(0),
        ..Default::default()
    };
    assert_eq!(mine.encode(0x33).unwrap(), b);
}

#[test]
fn unknown_optional_tlv_is_skipped() {
    let mut p = disable_response_payload(TOKEN);
    p.extend(tlv(0x30, &[1, 2, 3, 4, 5]));
    p.extend(tlv(0x1E, &[]));
    let (_, r) = StreamResponse::decode(&qmi(2, 1, 1, &p)).unwrap();
    assert_eq!(r.status, Some(0));
    assert_eq!(r.usb_token, Some(TOKEN));
}

#[test]
fn unknown_mandatory_tlv_is_rejected() {
    let mut p = disable_response_payload(TOKEN);
    p.extend(tlv(0x05, &[0]));
    assert_eq!(
        StreamResponse::decode(&qmi(2, 1, 1, &p)),
        Err(qmi::Error::UnknownMandatory {
            msg: "QMI_UAUDIO_STREAM_RESP",
            ty: 0x05
        }
        .into())
    );
}

#[test]
fn wrong_tlv_lengths_are_rejected() {
    // slot_id (u32) in 2 bytes.
    let mut p = disable_response_payload(TOKEN);
    p.extend(tlv(0x12, &[1, 0]));
    assert!(matches!(
        StreamResponse::decode(&qmi(2, 1, 1, &p)),
        Err(messages::Error::Qmi(qmi::Error::BadLength {
            ty: 0x12,
            len: 2,
            expected: 4,
            ..
        }))
    ));
    // An endpoint descriptor of 8 bytes.
    let mut p = disable_response_payload(TOKEN);
    p.extend(tlv(0x15, &DATA_EP[..8]));
    assert!(matches!(
        StreamResponse::decode(&qmi(2, 1, 1, &p)),
        Err(messages::Error::Qmi(qmi::Error::BadLength {
            ty: 0x15,
            expected: 9,
            ..
        }))
    ));
    // mem_info of 101 bytes.
    let mut p = disable_response_payload(TOKEN);
    p.extend(tlv(0x1A, &[0; 101]));
    assert!(matches!(
        StreamResponse::decode(&qmi(2, 1, 1, &p)),
        Err(messages::Error::Qmi(qmi::Error::BadLength {
            ty: 0x1A,
            expected: 100,
            ..
        }))
    ));
    // The enable byte of a request as a u32.
    let mut p = tlv(0x01, &le32(1));
    p.extend(tlv(0x02, &le32(TOKEN)));
    assert!(StreamRequest::decode(&qmi(0, 1, 1, &p)).is_err());
}

#[test]
fn message_longer_than_its_maximum_is_rejected() {
    // A full response plus a 1-byte unknown optional TLV: 206 > 202.
    let mut p = full_response_payload(TOKEN);
    p.extend(tlv(0x30, &[0]));
    assert_eq!(
        StreamResponse::decode(&qmi(2, 1, 1, &p)),
        Err(qmi::Error::TooLong {
            msg: "QMI_UAUDIO_STREAM_RESP",
            len: 206,
            max: 202
        }
        .into())
    );
    // A request with every TLV plus one byte more.
    let mut p = tlv(0x01, &[1]);
    p.extend(tlv(0x02, &le32(TOKEN)));
    for t in 0x10..=0x14 {
        p.extend(tlv(t, &le32(0)));
    }
    assert_eq!(p.len(), 46);
    assert!(StreamRequest::decode(&qmi(0, 1, 1, &p)).is_ok());
    p.extend(tlv(0x30, &[]));
    assert!(StreamRequest::decode(&qmi(0, 1, 1, &p)).is_err());
}

#[test]
fn structural_errors() {
    let ok = disable_response_payload(TOKEN);
    // Duplicate TLV.
    let mut p = ok.clone();
    p.extend(tlv(0x10, &le32(0)));
    assert!(matches!(
        StreamResponse::decode(&qmi(2, 1, 1, &p)),
        Err(messages::Error::Qmi(qmi::Error::Duplicate { ty: 0x10, .. }))
    ));
    // TLV length past the end.
    let mut p = ok.clone();
    p.extend([0x12, 0x04, 0x00, 0x01]);
    assert!(matches!(
        StreamResponse::decode(&qmi(2, 1, 1, &p)),
        Err(messages::Error::Qmi(qmi::Error::TlvPastEnd {
            ty: 0x12,
            len: 4,
            left: 1,
            ..
        }))
    ));
    // Truncated TLV header.
    let mut p = ok.clone();
    p.extend([0x12, 0x04]);
    assert!(matches!(
        StreamResponse::decode(&qmi(2, 1, 1, &p)),
        Err(messages::Error::Qmi(qmi::Error::TruncatedTlv { .. }))
    ));
    // Header length disagreeing with the packet.
    let mut b = qmi(2, 1, 1, &ok);
    b.push(0);
    assert!(matches!(
        StreamResponse::decode(&b),
        Err(messages::Error::Qmi(qmi::Error::Length { .. }))
    ));
    // Wrong message id, wrong message type.
    assert!(matches!(
        StreamResponse::decode(&qmi(2, 1, 2, &ok)),
        Err(messages::Error::Qmi(qmi::Error::MsgId { got: 2, .. }))
    ));
    assert!(matches!(
        StreamIndication::decode(&qmi(2, 1, 1, &disconnect_ind(1, 1, 0)[7..])),
        Err(messages::Error::MsgType { .. })
    ));
    assert!(matches!(
        StreamResponse::decode(&qmi(3, 1, 1, &ok)),
        Err(messages::Error::Qmi(qmi::Error::MsgType(3)))
    ));
    // Missing mandatory TLVs: result of a response, slot id of an indication.
    assert!(matches!(
        StreamResponse::decode(&qmi(2, 1, 1, &ok[7..])),
        Err(messages::Error::Missing { ty: 0x02, .. })
    ));
    assert!(matches!(
        StreamIndication::decode(&qmi(4, 1, 1, &tlv(0x01, &le32(1)))),
        Err(messages::Error::Missing { ty: 0x02, .. })
    ));
    // Empty and short.
    assert!(StreamResponse::decode(&[]).is_err());
    assert!(StreamResponse::decode(&[2, 1, 0, 1]).is_err());
}

#[test]
fn descriptions_state_the_wire_maxima() {
    assert_eq!(STREAM_REQ.max_len, 46);
    assert_eq!(STREAM_RESP.max_len, 202);
    assert_eq!(STREAM_IND.max_len, 181);
    for d in [&STREAM_REQ, &STREAM_RESP, &STREAM_IND] {
        assert_eq!(d.msg_id, 1);
        assert_eq!(d.computed_max_len(), d.max_len);
    }
    // The generic codec reads a hand-built response as TLVs.
    let t = qmi::decode(&STREAM_RESP, &disable_response_payload(TOKEN)).unwrap();
    assert_eq!(t.get(0x13), Some(&qmi::Value::U32(TOKEN)));
    assert_eq!(
        t.get(0x02),
        Some(&qmi::Value::Struct(vec![
            qmi::Value::U16(0),
            qmi::Value::U16(0)
        ]))
    );
}

#[test]
fn typed_values_keep_their_bytes() {
    let e = EndpointDescriptor::from_bytes(SYNC_EP);
    assert_eq!(e.to_bytes(), SYNC_EP);
    assert!(e.is_in());
    let i = InterfaceDescriptor::from_bytes(INTF);
    assert_eq!(i.to_bytes(), INTF);
    assert_eq!(AppsMemInfo::default().dcba, MemInfo::default());
}
