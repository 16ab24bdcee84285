//! The transfer observer: every completed transfer is reported once, with the bytes that crossed
//! the bus, the SETUP packet, the completion code and the interrupter its events went to; with
//! no observer nothing is recorded.

use sideband_device::usb::SetupPacket;
use sideband_device::xhci::context::EndpointType;
use sideband_device::xhci::testkit::Driver;
use sideband_device::xhci::trb::{CompletionCode as Cc, Trb, TrbType};
use sideband_device::xhci::{Config, LoopbackDevice, RecordingObserver, TransferKind};

fn isoch(buf: u64, len: u32, target: u16, flags: u32) -> Trb {
    Trb::new(TrbType::Isoch, buf, len | (u32::from(target) << 22), flags)
}

#[test]
fn control_and_bulk_transfers_are_reported_with_their_bytes() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let obs = RecordingObserver::default();
    assert!(d.xhci.set_observer(Some(Box::new(obs.clone()))).is_none());
    let (_, data) = d.get_descriptor(s, 0x0100, 64);
    d.queue_bulk_out(s, 2, b"hello", 0);
    d.doorbell(s, 2);
    let (_, buf) = d.queue_bulk_in(s, 3, 512, 0);
    d.doorbell(s, 3);
    let r = obs.take();
    assert_eq!(r.len(), 3, "{r:#?}");
    let ctl = &r[0];
    assert_eq!(ctl.kind, TransferKind::Control);
    assert_eq!(ctl.endpoint, 0x80);
    assert_eq!(ctl.slot_id, s);
    assert_eq!((ctl.port, ctl.address, ctl.superspeed_port), (1, s, false));
    let setup = SetupPacket::from_bytes(ctl.setup.unwrap());
    assert_eq!((setup.request, setup.value, setup.length), (6, 0x0100, 64));
    assert_eq!(ctl.requested, 64);
    assert_eq!(
        ctl.data,
        data[..18].to_vec(),
        "the 18 bytes written to guest memory"
    );
    assert_eq!(ctl.code, Cc::ShortPacket);
    let out = &r[1];
    assert_eq!((out.kind, out.endpoint), (TransferKind::Bulk, 0x01));
    assert_eq!(out.data, b"hello");
    assert_eq!(out.code, Cc::Success);
    assert_eq!(out.interrupter, 0);
    let inn = &r[2];
    assert_eq!((inn.endpoint, inn.requested), (0x81, 512));
    assert_eq!(inn.data, b"hello");
    assert_eq!(d.read_buffer(buf, 5), b"hello");
    assert!(inn.is_in());
    // Detached: nothing more is recorded.
    assert!(d.xhci.set_observer(None).is_some());
    d.queue_bulk_out(s, 2, b"again", 0);
    d.doorbell(s, 2);
    assert!(obs.take().is_empty());
}

#[test]
fn isoch_packets_carry_interrupter_time_and_missed_service() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.xhci.attach(1, Box::new(LoopbackDevice::new())).unwrap();
    d.reset_port(1);
    let s = d.enable_slot();
    d.address_device(s, 1, false);
    let eps = [(2u8, EndpointType::IsochOut, 192u16, 1u8)];
    assert_eq!(d.configure(s, &eps, 0), Cc::Success as u8);
    d.setup_interrupter(2, &[256], false);
    let obs = RecordingObserver::default();
    d.xhci.set_observer(Some(Box::new(obs.clone())));
    d.tick(4);
    let a = d.buffer(&[0xa5u8; 24]);
    let b = d.buffer(&[0x5au8; 24]);
    d.queue(s, 2, isoch(a, 24, 2, 1 << 5 | 1 << 31)); // IOC, SIA
    d.queue(s, 2, isoch(b, 24, 2, 1 << 5 | 1 << 31));
    d.doorbell(s, 2);
    d.tick(4);
    let r = obs.take();
    assert_eq!(r.len(), 2, "{r:#?}");
    assert!(r.iter().all(|x| x.kind == TransferKind::Isoch
        && x.endpoint == 0x01
        && x.interrupter == 2
        && x.interval == 2
        && x.code == Cc::Success));
    assert_eq!(r[0].data, vec![0xa5; 24]);
    assert_eq!(r[1].data, vec![0x5a; 24]);
    assert_eq!(r[1].uframe - r[0].uframe, 2, "one per service interval");
    assert!(r[1].time > r[0].time);
    // A Frame ID long past (beyond the grace for a late host): Missed Service, with no data.
    let frame = (d.xhci.uframe() >> 3) as u32;
    let late = (frame.wrapping_sub(100) & 0x7ff) << 20;
    d.queue(s, 2, isoch(a, 24, 2, 1 << 5 | late));
    d.doorbell(s, 2);
    let r = obs.take();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].code, Cc::MissedService);
    assert!(r[0].data.is_empty());
    assert_eq!(r[0].requested, 24);
}
