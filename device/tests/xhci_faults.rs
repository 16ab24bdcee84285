//! The endpoint fault plan seen through the xHCI model: the headset's HID interrupt IN endpoint
//! NAKs while no button is pending, delivers a press and a release report, and, faulted,
//! completes with USB Transaction Error (or Stall Error) and halts the endpoint until Reset
//! Endpoint (xHCI 1.2 §4.10.2.1, §4.6.8).

use sideband_device::usb::hid::Button;
use sideband_device::usb::uac::{AudioProfile, UacDevice};
use sideband_device::usb::{Fault, FaultSpan, Faulty, SetupPacket, SharedDevice};
use sideband_device::xhci::context::{EndpointState, EndpointType};
use sideband_device::xhci::testkit::{bits, code, Driver};
use sideband_device::xhci::trb::{CompletionCode as Cc, Trb, TrbType};
use sideband_device::xhci::Config;

/// DCI of endpoint 0x83: 2 × 3 + 1.
const HID_DCI: u8 = 7;

type Headset = SharedDevice<Faulty<UacDevice>>;

/// A running controller with the UAC2 headset on port 1, configured, the HID endpoint's
/// context added (interval 2^6 microframes, as bInterval 7 asks).
fn headset() -> (Driver, u8, Headset) {
    let profile: AudioProfile = "headset-uac2".parse().unwrap();
    let dev = SharedDevice::new(Faulty::new(UacDevice::headset(profile).unwrap()));
    let mut d = Driver::new(Config::default());
    d.init();
    d.xhci.attach(1, Box::new(dev.clone())).unwrap();
    d.tick(1);
    d.reset_port(1);
    let slot = d.enable_slot();
    assert_eq!(d.address_device(slot, 1, false), Cc::Success as u8);
    let set_config = SetupPacket {
        request_type: 0,
        request: 9,
        value: 1,
        index: 0,
        length: 0,
    };
    d.queue_control_nodata(slot, set_config);
    d.doorbell(slot, 1);
    assert!(d
        .transfer_events(0)
        .iter()
        .all(|e| code(e) == Cc::Success as u8));
    let eps = [(HID_DCI, EndpointType::InterruptIn, 8, 6)];
    assert_eq!(d.configure(slot, &eps, 0), Cc::Success as u8);
    d.events(0);
    (d, slot, dev)
}

/// Queues one 8-byte interrupt IN TD; returns its buffer.
fn queue_in(d: &mut Driver, slot: u8) -> u64 {
    let buf = d.alloc(1);
    d.queue(
        slot,
        HID_DCI,
        Trb::new(TrbType::Normal, buf, 8, bits::IOC | bits::ISP),
    );
    d.doorbell(slot, HID_DCI);
    buf
}

#[test]
fn buttons_arrive_as_press_then_release() {
    let (mut d, slot, dev) = headset();
    let buf = queue_in(&mut d, slot);
    d.tick(200);
    assert!(
        d.transfer_events(0).is_empty(),
        "NAK while nothing is pending"
    );
    dev.0
        .lock()
        .unwrap()
        .function_mut()
        .buttons_mut()
        .press(Button::VolumeUp);
    d.tick(70);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::ShortPacket as u8);
    assert_eq!(d.read_buffer(buf, 1), vec![0x01]);
    let buf = queue_in(&mut d, slot);
    d.tick(70);
    assert_eq!(d.transfer_events(0).len(), 1);
    assert_eq!(d.read_buffer(buf, 1), vec![0x00]);
}

#[test]
fn a_faulted_interrupt_endpoint_reports_transaction_error_and_halts() {
    let (mut d, slot, dev) = headset();
    dev.0
        .lock()
        .unwrap()
        .faults_mut()
        .set(0x83, Fault::TransactionError, FaultSpan::Next(1))
        .unwrap();
    queue_in(&mut d, slot);
    d.tick(70);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::UsbTransactionError as u8);
    assert_eq!(code(&ev[0]), 4);
    let ctx = d.output_ep(slot, HID_DCI);
    assert_eq!(ctx.state_bits(), EndpointState::Halted as u8);
    // Reset Endpoint (TSP), then the same TD is retried: the one-shot fault is used up, so
    // the endpoint NAKs again and a press completes it.
    let reset = Trb::new(
        TrbType::ResetEndpoint,
        0,
        0,
        (u32::from(slot) << 24) | (u32::from(HID_DCI) << 16) | bits::BIT9,
    );
    assert_eq!(code(&d.command(reset)), Cc::Success as u8);
    d.doorbell(slot, HID_DCI);
    d.tick(70);
    assert!(d.transfer_events(0).is_empty());
    dev.0
        .lock()
        .unwrap()
        .function_mut()
        .buttons_mut()
        .press(Button::Mute);
    d.tick(70);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(code(&ev[0]), Cc::ShortPacket as u8);
    assert_eq!(dev.0.lock().unwrap().faults().injected(), 1);
}

#[test]
fn a_stalled_interrupt_endpoint_reports_stall_error() {
    let (mut d, slot, dev) = headset();
    dev.0
        .lock()
        .unwrap()
        .faults_mut()
        .set(0x83, Fault::Stall, FaultSpan::UntilCleared)
        .unwrap();
    queue_in(&mut d, slot);
    d.tick(70);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::StallError as u8);
    assert_eq!(
        d.output_ep(slot, HID_DCI).state_bits(),
        EndpointState::Halted as u8
    );
}
