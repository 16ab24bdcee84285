//! The Linux usbmon pcap format (link type `LINKTYPE_USB_LINUX_MMAPPED`, 220) that Wireshark and
//! tshark decode: a 64-byte header per URB event, then for isochronous transfers the packet
//! descriptors (16 bytes each), then the data. Each transfer the model completed becomes a
//! submission (`S`, with the SETUP packet and OUT data) and a completion (`C`, with IN data).
//!
//! Transfers completed on a secondary interrupter (the DSP's offloaded stream) are put on bus
//! [`OFFLOAD_BUS_BASE`] + interrupter, so `usb.bus_id >= 100` selects offloaded traffic in
//! Wireshark; the interrupter is also the top 16 bits of the URB id.

use sideband_device::xhci::trb::CompletionCode;
use sideband_device::xhci::{TransferKind, TransferRecord};

/// `LINKTYPE_USB_LINUX_MMAPPED`.
pub const LINKTYPE_USB_LINUX_MMAPPED: u32 = 220;
/// Bus number of transfers completed on interrupter N ≥ 1: this plus N.
pub const OFFLOAD_BUS_BASE: u16 = 100;
/// Bytes of the usbmon header.
pub const HEADER_LEN: usize = 64;
/// Largest packet a record carries whole (snap length).
pub const SNAPLEN: u32 = 1 << 20;

/// The pcap file header.
pub fn file_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_USB_LINUX_MMAPPED.to_le_bytes());
    h
}

/// Bus number a record appears on: 1 for the USB 2 root hub, 2 for the USB 3 one (the order
/// Linux registers them), 100 + N for transfers completed on secondary interrupter N.
pub fn bus_number(r: &TransferRecord) -> u16 {
    if r.interrupter != 0 {
        OFFLOAD_BUS_BASE.saturating_add(r.interrupter)
    } else if r.superspeed_port {
        2
    } else {
        1
    }
}

/// The Linux URB status of a completion code (`-EPIPE` for a stall, `-EXDEV` for a missed
/// isochronous interval, `-EPROTO` for other errors).
pub fn linux_status(code: CompletionCode) -> i32 {
    match code {
        CompletionCode::Success | CompletionCode::ShortPacket => 0,
        CompletionCode::StallError => -32,
        CompletionCode::MissedService => -18,
        CompletionCode::BabbleDetected => -75,
        CompletionCode::DataBufferError => -84,
        _ => -71,
    }
}

fn xfer_type(k: TransferKind) -> u8 {
    match k {
        TransferKind::Isoch => 0,
        TransferKind::Interrupt => 1,
        TransferKind::Control => 2,
        TransferKind::Bulk => 3,
    }
}

/// Appends the `S` and `C` records of transfer `r` to `out`. `id` is the URB id's sequence part;
/// `epoch_us` is the wall-clock time (µs since 1970) of bus time 0.
pub fn encode(out: &mut Vec<u8>, r: &TransferRecord, id: u64, epoch_us: u64) {
    let ts = epoch_us.saturating_add(r.time.0.saturating_mul(125));
    let urb_id = (u64::from(r.interrupter) << 48) | (id & 0xffff_ffff_ffff);
    let is_in = r.is_in();
    let actual = r.data.len() as u32;
    let iso = r.kind == TransferKind::Isoch;
    let status = linux_status(r.code);
    // Submission: SETUP and OUT data.
    let submit_data: &[u8] = if is_in { &[] } else { &r.data };
    let ev = Event {
        kind: b'S',
        length: r.requested,
        data: submit_data,
        status: if iso { 0 } else { -115 }, // -EINPROGRESS, as usbmon shows submissions
        iso_desc: iso.then_some((0, r.requested)),
    };
    record(out, r, urb_id, ts, &ev);
    let complete_data: &[u8] = if is_in { &r.data } else { &[] };
    let ev = Event {
        kind: b'C',
        length: actual,
        data: complete_data,
        status: if iso { 0 } else { status },
        iso_desc: iso.then_some((status, actual)),
    };
    record(out, r, urb_id, ts, &ev);
}

struct Event<'a> {
    kind: u8,
    length: u32,
    data: &'a [u8],
    status: i32,
    /// Isochronous: the one packet's status and length.
    iso_desc: Option<(i32, u32)>,
}

fn record(out: &mut Vec<u8>, r: &TransferRecord, urb_id: u64, ts_us: u64, ev: &Event<'_>) {
    let data = &ev.data[..ev.data.len().min(SNAPLEN as usize - HEADER_LEN - 16)];
    let ndesc = u32::from(ev.iso_desc.is_some());
    let caplen = HEADER_LEN + 16 * ndesc as usize + data.len();
    let origlen = HEADER_LEN + 16 * ndesc as usize + ev.length as usize;
    let (sec, usec) = (ts_us / 1_000_000, (ts_us % 1_000_000) as u32);
    // pcap record header.
    out.extend_from_slice(&(sec as u32).to_le_bytes());
    out.extend_from_slice(&usec.to_le_bytes());
    out.extend_from_slice(&(caplen as u32).to_le_bytes());
    out.extend_from_slice(&(origlen.min(u32::MAX as usize) as u32).to_le_bytes());
    // usbmon mmapped header.
    let setup = (ev.kind == b'S').then_some(r.setup).flatten();
    out.extend_from_slice(&urb_id.to_le_bytes());
    out.push(ev.kind);
    out.push(xfer_type(r.kind));
    out.push(r.endpoint);
    out.push(r.address);
    out.extend_from_slice(&bus_number(r).to_le_bytes());
    out.push(if setup.is_some() { 0 } else { b'-' });
    out.push(match (data.is_empty(), r.is_in()) {
        (false, _) => 0,
        (true, true) => b'<',
        (true, false) => b'>',
    });
    out.extend_from_slice(&(sec as i64).to_le_bytes());
    out.extend_from_slice(&(usec as i32).to_le_bytes());
    out.extend_from_slice(&ev.status.to_le_bytes());
    out.extend_from_slice(&ev.length.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    match (setup, ev.iso_desc) {
        (Some(s), _) => out.extend_from_slice(&s),
        (None, Some((status, _))) => {
            out.extend_from_slice(&i32::from(status != 0).to_le_bytes());
            out.extend_from_slice(&1i32.to_le_bytes());
        }
        (None, None) => out.extend_from_slice(&[0; 8]),
    }
    let interval = i32::try_from(r.interval).unwrap_or(i32::MAX);
    out.extend_from_slice(&interval.to_le_bytes());
    let start_frame = if r.kind == TransferKind::Isoch {
        (r.uframe & 0x3fff) as i32
    } else {
        0
    };
    out.extend_from_slice(&start_frame.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // xfer_flags
    out.extend_from_slice(&ndesc.to_le_bytes());
    if let Some((status, len)) = ev.iso_desc {
        out.extend_from_slice(&status.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // offset
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sideband_device::usb::BusTime;

    fn rec(kind: TransferKind, endpoint: u8, data: &[u8], interrupter: u16) -> TransferRecord {
        TransferRecord {
            slot_id: 1,
            port: 1,
            superspeed_port: false,
            address: 1,
            endpoint,
            kind,
            setup: (kind == TransferKind::Control).then_some([0x80, 6, 0, 1, 0, 0, 18, 0]),
            requested: 18,
            data: data.to_vec(),
            code: CompletionCode::Success,
            interrupter,
            time: BusTime(8_000),
            uframe: 8_000,
            interval: 1,
        }
    }

    #[test]
    fn control_in_is_a_submission_with_setup_and_a_completion_with_data() {
        let mut out = Vec::new();
        encode(
            &mut out,
            &rec(TransferKind::Control, 0x80, &[7; 18], 0),
            5,
            0,
        );
        assert_eq!(out.len(), 2 * (16 + 64) + 18);
        let s = &out[16..80];
        assert_eq!(u64::from_le_bytes(s[0..8].try_into().unwrap()), 5);
        assert_eq!(&s[8..12], &[b'S', 2, 0x80, 1]);
        assert_eq!(u16::from_le_bytes([s[12], s[13]]), 1, "bus 1");
        assert_eq!((s[14], s[15]), (0, b'<'), "setup present, data comes later");
        assert_eq!(u64::from_le_bytes(s[16..24].try_into().unwrap()), 1, "1 s");
        assert_eq!(&s[40..48], &[0x80, 6, 0, 1, 0, 0, 18, 0]);
        let c = &out[96..160];
        assert_eq!(c[8], b'C');
        assert_eq!(
            u32::from_le_bytes(c[36..40].try_into().unwrap()),
            18,
            "len_cap"
        );
        assert_eq!(&out[160..], &[7; 18]);
        assert_eq!(
            u32::from_le_bytes(out[88..92].try_into().unwrap()),
            64 + 18,
            "caplen"
        );
    }

    #[test]
    fn offloaded_isoch_out_carries_its_descriptor_and_bus() {
        let mut out = Vec::new();
        let r = rec(TransferKind::Isoch, 0x01, &[1, 2, 3], 2);
        encode(&mut out, &r, 9, 1_000_000);
        let s = &out[16..80];
        assert_eq!(u64::from_le_bytes(s[0..8].try_into().unwrap()), 2 << 48 | 9);
        assert_eq!(&s[8..12], &[b'S', 0, 0x01, 1]);
        assert_eq!(u16::from_le_bytes([s[12], s[13]]), 102);
        assert_eq!((s[14], s[15]), (b'-', 0));
        assert_eq!(
            u32::from_le_bytes(s[63 - 3..64].try_into().unwrap()),
            1,
            "ndesc"
        );
        assert_eq!(
            u32::from_le_bytes(out[80 + 8..80 + 12].try_into().unwrap()),
            18,
            "descriptor length"
        );
        assert_eq!(&out[96..99], &[1, 2, 3]);
        assert_eq!(bus_number(&rec(TransferKind::Bulk, 1, &[], 0)), 1);
        assert_eq!(linux_status(CompletionCode::MissedService), -18);
    }
}
