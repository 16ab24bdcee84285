//! The UAC1 full-speed headset's descriptors, checked against the USB Audio 1.0 layouts
//! (§4.3–4.6).

#[path = "usb_support.rs"]
mod support;

use sideband_device::usb::uac::{AudioProfile, UacDevice};
use sideband_device::usb::{UsbDevice, UsbSpeed};
use support::*;

fn device(profile: &str) -> UacDevice {
    UacDevice::headset(profile.parse::<AudioProfile>().unwrap()).unwrap()
}

#[test]
fn device_is_full_speed_uac1() {
    let mut d = device("headset-uac1");
    assert_eq!(d.speed(), UsbSpeed::Full);
    let dd = get_descriptor(&mut d, 1, 0, 18);
    assert_eq!(le16(&dd, 2), 0x0110);
    assert_eq!((dd[4], dd[5], dd[6]), (0, 0, 0), "class per interface");
    assert_eq!(le16(&dd, 10), 0x0002);
    assert_eq!(get_string(&mut d, dd[15]), "sideband UAC1 headset");
}

#[test]
fn audio_control_header_lists_streaming_interfaces() {
    let mut d = device("headset-uac1");
    let c = read_config(&mut d);
    assert_eq!(
        c.num_interfaces(),
        4,
        "control, playback, capture, HID buttons"
    );
    assert!(c.iads.is_empty(), "UAC1 uses no IAD");
    let ac = c.alt(0, 0);
    assert_eq!(ac.class_triple(), (1, 1, 0));
    let header = ac.cs(0x01).unwrap();
    assert_eq!(header.len(), 8 + 2);
    assert_eq!(le16(header, 3), 0x0100, "bcdADC");
    let sum: usize = ac.class_specific.iter().map(Vec::len).sum();
    assert_eq!(
        usize::from(le16(header, 5)),
        sum,
        "wTotalLength of the CS AC descriptors"
    );
    assert_eq!(
        (header[7], header[8], header[9]),
        (2, 1, 2),
        "bInCollection, baInterfaceNr"
    );
    for it in ac.class_specific.iter().filter(|d| d[2] == 0x02) {
        assert_eq!(it.len(), 12);
        assert_eq!(it[7], 2, "bNrChannels");
        assert_eq!(le16(it, 8), 0x0003, "wChannelConfig L|R");
    }
    for ot in ac.class_specific.iter().filter(|d| d[2] == 0x03) {
        assert_eq!(ot.len(), 9);
    }
    let fu = ac.cs(0x06).unwrap();
    assert_eq!(fu.len(), 7 + 3, "7 + (ch + 1) × bControlSize");
    assert_eq!(fu[5], 1, "bControlSize");
    assert_eq!(
        (fu[6], fu[7], fu[8]),
        (0x03, 0, 0),
        "master mute + volume only"
    );
}

#[test]
fn streaming_interfaces_and_endpoints() {
    let mut d = device("headset-uac1");
    let c = read_config(&mut d);
    for (number, address, attributes) in [(1u8, 0x01u8, 0x09u8), (2, 0x82, 0x05)] {
        let alts = c.alts_of(number);
        assert_eq!(alts.len(), 2);
        assert_eq!(alts[0].num_endpoints(), 0);
        let alt = alts[1];
        assert_eq!(alt.class_triple(), (1, 2, 0));
        let general = alt.cs(0x01).unwrap();
        assert_eq!(general.len(), 7);
        assert_eq!(general[4], 1, "bDelay");
        assert_eq!(le16(general, 5), 0x0001, "PCM");
        let format = alt.cs(0x02).unwrap();
        assert_eq!(format.len(), 8 + 3 * 2);
        assert_eq!((format[3], format[4], format[5], format[6]), (1, 2, 2, 16));
        assert_eq!(format[7], 2, "bSamFreqType: two discrete rates");
        let rate = |i: usize| {
            u32::from_le_bytes([format[8 + 3 * i], format[9 + 3 * i], format[10 + 3 * i], 0])
        };
        assert_eq!((rate(0), rate(1)), (44100, 48000));
        let ep = &alt.endpoints[0];
        assert_eq!(
            ep.raw.len(),
            9,
            "audio endpoint with bRefresh/bSynchAddress"
        );
        assert_eq!((ep.raw[7], ep.raw[8]), (0, 0));
        assert_eq!(ep.address(), address);
        assert_eq!(
            ep.attributes(),
            attributes,
            "adaptive playback, asynchronous capture"
        );
        assert_eq!(ep.interval(), 1);
        assert!(usize::from(ep.max_packet_size()) >= 49 * 4);
        assert!(ep.max_packet_size() <= 1023);
        let cs = &ep.class_specific[0];
        assert_eq!((cs.len(), cs[1], cs[2]), (7, 0x25, 0x01));
        assert_eq!(cs[3] & 0x01, 0x01, "sampling frequency control");
    }
}
