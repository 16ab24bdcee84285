//! The headset's HID buttons interface as usbhid sees it (HID 1.11 §6, §7): where it sits in
//! the configuration of each profile, its class descriptors read through GET_DESCRIPTOR to the
//! interface, its class requests, and button reports on the interrupt IN endpoint.

#[path = "usb_support.rs"]
mod support;

use sideband_device::usb::hid::{Button, REPORT_DESCRIPTOR};
use sideband_device::usb::uac::{AudioProfile, UacDevice};
use sideband_device::usb::{TransferResult, UsbDevice};
use support::*;

fn device(profile: &str) -> UacDevice {
    UacDevice::headset(profile.parse::<AudioProfile>().unwrap()).unwrap()
}

/// (profile, HID interface number, audio interfaces in the IAD, bInterval).
const PROFILES: [(&str, u8, Option<u8>, u8); 3] = [
    ("headset-uac2", 3, Some(3), 7),
    ("headset-uac1", 3, None, 8),
    ("uac2:no-capture", 2, Some(2), 7),
];

#[test]
fn the_hid_interface_follows_the_audio_function() {
    for (profile, number, iad_count, interval) in PROFILES {
        let mut d = device(profile);
        let c = read_config(&mut d);
        assert_eq!(c.num_interfaces(), number + 1, "{profile}");
        match iad_count {
            Some(n) => assert_eq!((c.iads[0][2], c.iads[0][3]), (0, n), "{profile}: IAD"),
            None => assert!(c.iads.is_empty()),
        }
        let hid = c.alt(number, 0);
        assert_eq!(hid.class_triple(), (3, 0, 0), "{profile}");
        assert_eq!(c.alts_of(number).len(), 1);
        let desc = &hid.class_specific[0];
        assert_eq!(desc.as_slice()[..7], [9, 0x21, 0x11, 0x01, 0, 1, 0x22]);
        assert_eq!(usize::from(le16(desc, 7)), REPORT_DESCRIPTOR.len());
        let ep = &hid.endpoints[0];
        assert_eq!(
            (ep.address(), ep.attributes() & 3, ep.interval()),
            (0x83, 3, interval),
            "{profile}"
        );
        for other in c.interfaces.iter().filter(|i| i.number() != number) {
            assert_eq!(other.class_triple().0, 1, "every other interface is audio");
            assert!(other.endpoints.iter().all(|e| e.address() != 0x83));
        }
    }
}

#[test]
fn class_descriptors_are_read_from_the_interface() {
    let mut d = device("headset-uac2");
    let report = setup(0x81, 6, 0x2200, 3, 255);
    assert!(
        control_in(&mut d, report).is_err(),
        "not before configuration"
    );
    enumerate(&mut d);
    assert_eq!(
        control_in(&mut d, report).unwrap(),
        REPORT_DESCRIPTOR.to_vec()
    );
    let hid = control_in(&mut d, setup(0x81, 6, 0x2100, 3, 9)).unwrap();
    assert_eq!(hid[1], 0x21);
    for bad in [
        setup(0x81, 6, 0x2200, 0, 255), // the audio control interface has none
        setup(0x81, 6, 0x2200, 9, 255), // no such interface
        setup(0x81, 6, 0x2300, 3, 255), // physical descriptor: none
        setup(0x81, 6, 0x2201, 3, 255), // index 1: none
        setup(0x81, 6, 0x2200, 0x0103, 255),
    ] {
        assert_eq!(
            control_in(&mut d, bad),
            Err(TransferResult::Stall),
            "{bad:?}"
        );
    }
}

#[test]
fn usbhid_requests_and_reports() {
    let mut d = device("headset-uac1");
    enumerate(&mut d);
    // usbhid_parse: SET_IDLE(0) to the interface.
    assert_eq!(
        control_out(&mut d, setup(0x21, 0x0A, 0, 3, 0), &[]),
        TransferResult::Complete(0)
    );
    assert_eq!(
        control_in(&mut d, setup(0xA1, 0x01, 0x0100, 3, 1)),
        Ok(vec![0])
    );
    assert_eq!(
        control_out(&mut d, setup(0x21, 0x0B, 0, 3, 0), &[]),
        TransferResult::Stall,
        "SET_PROTOCOL: not a boot device"
    );
    let mut buf = [0u8; 8];
    assert_eq!(d.data_in(3, &mut buf, T0), TransferResult::Nak);
    d.function_mut().buttons_mut().press(Button::PlayPause);
    assert_eq!(d.data_in(3, &mut buf, T0), TransferResult::Complete(1));
    assert_eq!(buf[0], Button::PlayPause.bit());
    assert_eq!(d.data_in(3, &mut buf, T0), TransferResult::Complete(1));
    assert_eq!(buf[0], 0);
    assert_eq!(d.data_in(3, &mut buf, T0), TransferResult::Nak);
    assert_eq!(d.function().buttons().reports_sent(), 2);
    // The audio side still answers its own class requests (UAC1 mute GET_CUR).
    assert!(control_in(&mut d, setup(0xA1, 0x81, 0x0100, 0x0200, 1)).is_ok());
}
