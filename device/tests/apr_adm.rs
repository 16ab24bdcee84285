//! The device manager as q6adm and q6routing drive it: open a COPP for the USB port, route
//! session 1 to it, close it.

#[path = "apr_support.rs"]
mod apr_support;
use apr_support::{basic_status, framed};

use sideband_device::adsp::apr::{adm, packet, Router};

const USB_RX: u16 = 0x7000;

/// {flags, mode, endpoint 1, endpoint 2, topology, channels, bits, rate, map[8]}; token
/// port index << 16 | copp index, ports the AFE port id.
fn open(r: &mut Router, channels: u16, rate: u32) -> (u32, u16) {
    let mut p = Vec::new();
    for v in [0u16, 1, USB_RX, 0xffff] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(&0x0001_0312u32.to_le_bytes());
    p.extend_from_slice(&channels.to_le_bytes());
    p.extend_from_slice(&16u16.to_le_bytes());
    p.extend_from_slice(&rate.to_le_bytes());
    p.extend_from_slice(&[1, 2, 0, 0, 0, 0, 0, 0]);
    let token = 136 << 16;
    let a = r
        .handle(&framed(8, USB_RX, adm::DEVICE_OPEN_V5, token, &p))
        .pop()
        .unwrap();
    let (h, p) = packet::parse(&a).unwrap();
    assert_eq!(h.opcode, 0x0001_0329);
    assert_eq!(h.token, token, "q6adm finds the COPP by the token");
    (
        u32::from_le_bytes(p[0..4].try_into().unwrap()),
        u16::from_le_bytes(p[4..6].try_into().unwrap()),
    )
}

/// {matrix 0, 1 session}{session, n copps}{copp ids}, padded to words as q6adm sizes it.
fn map(r: &mut Router, session: u16, copps: &[u16]) -> u32 {
    let mut p = Vec::new();
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&session.to_le_bytes());
    p.extend_from_slice(&(copps.len() as u16).to_le_bytes());
    for c in copps {
        p.extend_from_slice(&c.to_le_bytes());
    }
    p.resize(12 + 4 * copps.len(), 0);
    let a = r
        .handle(&framed(8, 0, adm::MATRIX_MAP_V5, 0, &p))
        .pop()
        .unwrap();
    basic_status(&a, adm::MATRIX_MAP_V5)
}

#[test]
fn a_copp_opens_for_the_usb_port_session_1_routes_to_it_and_it_closes() {
    let mut r = Router::default();
    let (status, copp) = open(&mut r, 2, 48_000);
    assert_eq!(status, 0);
    assert!(copp != 0xFF && copp != 0);
    assert_eq!(map(&mut r, 1, &[copp]), 0);
    assert_eq!(r.adm().ports_of_session(1), vec![USB_RX]);
    let a = r
        .handle(&framed(8, copp, adm::DEVICE_CLOSE_V5, 136 << 16, &[]))
        .pop()
        .unwrap();
    assert_eq!(basic_status(&a, adm::DEVICE_CLOSE_V5), 0);
    assert!(
        r.adm().ports_of_session(1).is_empty(),
        "a closed COPP carries no route"
    );
    let s = r.adm().stats();
    assert_eq!((s.opened, s.routes, s.closed, s.refused), (1, 1, 1, 0));
}

#[test]
fn bad_opens_routes_and_closes_are_refused() {
    let mut r = Router::default();
    assert_eq!(
        open(&mut r, 0, 48_000).1,
        0xFF,
        "no channels: the invalid COPP id"
    );
    assert_eq!(open(&mut r, 2, 0).1, 0xFF);
    assert_eq!(map(&mut r, 1, &[5]), adm::EBADPARAM, "COPP 5 is not open");
    let a = r
        .handle(&framed(8, 3, adm::DEVICE_CLOSE_V5, 0, &[]))
        .pop()
        .unwrap();
    assert_eq!(basic_status(&a, adm::DEVICE_CLOSE_V5), adm::EBADPARAM);
    let a = r
        .handle(&framed(
            8,
            0,
            adm::MATRIX_MAP_V5,
            0,
            &[0, 0, 0, 0, 2, 0, 0, 0],
        ))
        .pop()
        .unwrap();
    assert_eq!(
        basic_status(&a, adm::MATRIX_MAP_V5),
        adm::EBADPARAM,
        "two sessions promised, none sent"
    );
    let copps: Vec<u16> = (0..70).map(|_| open(&mut r, 2, 48_000).1).collect();
    assert_eq!(
        copps.iter().filter(|&&c| c == 0xFF).count(),
        6,
        "64 COPPs at most"
    );
}

#[test]
fn routes_are_bounded() {
    let mut r = Router::default();
    let (_, copp) = open(&mut r, 2, 48_000);
    let refused = (1..=100u16)
        .filter(|&s| map(&mut r, s, &[copp]) != 0)
        .count();
    assert_eq!(refused, 36, "64 routed sessions at most");
    assert_eq!(
        map(&mut r, 5, &[copp]),
        0,
        "a routed session can be routed again"
    );
}
