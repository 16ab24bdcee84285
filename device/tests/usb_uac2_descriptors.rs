//! The UAC2 headset's descriptors, read through GET_DESCRIPTOR and checked field by field against
//! the USB Audio 2.0 layouts (§4.7–4.10) and against what Linux's snd-usb-audio looks for.

#[path = "usb_support.rs"]
mod support;

use sideband_device::usb::uac::{AudioProfile, UacDevice};
use sideband_device::usb::{UsbDevice, UsbSpeed};
use support::*;

fn device(profile: &str) -> UacDevice {
    UacDevice::headset(profile.parse::<AudioProfile>().unwrap()).unwrap()
}

/// Ceiling of frames per service interval at the fastest rate, plus one frame of slack.
fn needed_payload(rate: u32, interval_uframes: u32, channels: usize, subslot: usize) -> usize {
    let frames = (u64::from(rate) * u64::from(interval_uframes)).div_ceil(8000) as usize + 1;
    frames * channels * subslot
}

#[test]
fn device_descriptor_announces_an_iad_device() {
    let mut d = device("headset-uac2");
    assert_eq!(d.speed(), UsbSpeed::High);
    let dd = get_descriptor(&mut d, 1, 0, 18);
    assert_eq!(le16(&dd, 2), 0x0200, "bcdUSB 2.00: no BOS request");
    assert_eq!(
        (dd[4], dd[5], dd[6]),
        (0xEF, 0x02, 0x01),
        "IAD class triple"
    );
    assert_eq!(dd[7], 64);
    assert_eq!(le16(&dd, 8), 0x1209);
    for i in [dd[14], dd[15], dd[16]] {
        assert!(i != 0);
        assert!(!get_string(&mut d, i).is_empty());
    }
}

#[test]
fn configuration_totals_and_association() {
    let mut d = device("headset-uac2");
    let c = read_config(&mut d);
    assert_eq!(
        c.num_interfaces(),
        4,
        "the audio function and the HID buttons"
    );
    assert_eq!(c.iads.len(), 1);
    let iad = &c.iads[0];
    assert_eq!((iad[2], iad[3]), (0, 3), "bFirstInterface, bInterfaceCount");
    assert_eq!(
        (iad[4], iad[5], iad[6]),
        (0x01, 0x00, 0x20),
        "AUDIO, undefined, IP 2.0"
    );
    assert_eq!(c.header[7] & 0x80, 0x80, "bmAttributes bit 7");
}

#[test]
fn audio_control_interface() {
    let mut d = device("headset-uac2:ch=2");
    let c = read_config(&mut d);
    let ac = c.alt(0, 0);
    assert_eq!(ac.class_triple(), (1, 1, 0x20));
    assert_eq!(ac.num_endpoints(), 0, "no interrupt endpoint");
    let header = ac.cs(0x01).unwrap();
    assert_eq!(header.len(), 9);
    assert_eq!(le16(header, 3), 0x0200, "bcdADC");
    assert_eq!(header[5], 0x04, "bCategory HEADSET");
    let sum: usize = ac.class_specific.iter().map(Vec::len).sum();
    assert_eq!(usize::from(le16(header, 6)), sum, "header wTotalLength");

    let clock = ac.cs(0x0A).unwrap();
    assert_eq!(clock.len(), 8);
    let clock_id = clock[3];
    assert_eq!(clock[4] & 0x03, 0x03, "internal programmable clock");
    assert_eq!(clock[5] & 0x03, 0x03, "frequency control host programmable");
    assert_eq!(clock[5] & 0x0C, 0x04, "validity control read-only");

    let its: Vec<_> = ac.class_specific.iter().filter(|d| d[2] == 0x02).collect();
    let ots: Vec<_> = ac.class_specific.iter().filter(|d| d[2] == 0x03).collect();
    assert_eq!((its.len(), ots.len()), (2, 2));
    for it in &its {
        assert_eq!(it.len(), 17);
        assert_eq!(it[7], clock_id, "bCSourceID");
        assert_eq!(it[8], 2, "bNrChannels");
        assert_eq!(le32(it, 9), 0x3, "FL|FR");
    }
    for ot in &ots {
        assert_eq!(ot.len(), 12);
        assert_eq!(ot[8], clock_id);
    }
    let ids: Vec<u8> = ac.class_specific[1..].iter().map(|d| d[3]).collect();
    let usb_in = its.iter().find(|d| le16(d, 4) == 0x0101).unwrap();
    let mic = its.iter().find(|d| le16(d, 4) == 0x0201).unwrap();
    let phones = ots.iter().find(|d| le16(d, 4) == 0x0302).unwrap();
    let usb_out = ots.iter().find(|d| le16(d, 4) == 0x0101).unwrap();
    assert_eq!(usb_out[7], mic[3], "capture path: microphone → USB");

    let fu = ac.cs(0x06).unwrap();
    assert_eq!(fu.len(), 6 + (2 + 1) * 4, "bLength = 6 + (ch + 1) × 4");
    assert_eq!(
        fu[4], usb_in[3],
        "feature unit fed by the USB input terminal"
    );
    assert_eq!(phones[7], fu[3], "headphones fed by the feature unit");
    assert_eq!(
        le32(fu, 5),
        0x0F,
        "master: mute and volume host programmable"
    );
    assert_eq!(
        (le32(fu, 9), le32(fu, 13)),
        (0, 0),
        "no per-channel controls"
    );
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "entity ids unique");
}

#[test]
fn playback_alternates_with_explicit_feedback() {
    let mut d = device("headset-uac2");
    let c = read_config(&mut d);
    let alts = c.alts_of(1);
    assert_eq!(alts.len(), 4, "alt 0 + 16/24/32-bit");
    assert_eq!(alts[0].num_endpoints(), 0, "alt 0 is zero-bandwidth");
    assert!(alts[0].class_specific.is_empty());
    let usb_in_id = c
        .alt(0, 0)
        .class_specific
        .iter()
        .find(|d| d[2] == 2 && le16(d, 4) == 0x0101)
        .unwrap()[3];
    for (alt, (subslot, bits)) in alts[1..].iter().zip([(2u8, 16u8), (3, 24), (4, 32)]) {
        assert_eq!(alt.class_triple(), (1, 2, 0x20));
        let general = alt.cs(0x01).unwrap();
        assert_eq!(general.len(), 16);
        assert_eq!(general[3], usb_in_id, "bTerminalLink");
        assert_eq!(general[5], 1, "bFormatType I");
        assert_eq!(le32(general, 6), 1, "bmFormats PCM");
        assert_eq!(general[10], 2, "bNrChannels");
        assert_eq!(le32(general, 11), 3, "bmChannelConfig");
        let format = alt.cs(0x02).unwrap();
        assert_eq!(format.len(), 6);
        assert_eq!((format[3], format[4], format[5]), (1, subslot, bits));

        assert_eq!(alt.endpoints.len(), 2);
        let data = &alt.endpoints[0];
        assert_eq!(data.raw.len(), 7);
        assert_eq!(data.address(), 0x01);
        assert_eq!(data.attributes(), 0x05, "isochronous, asynchronous, data");
        assert_eq!(data.interval(), 1);
        assert!(data.payload() >= needed_payload(384000, 1, 2, usize::from(subslot)));
        assert_eq!(data.class_specific.len(), 1);
        let cs = &data.class_specific[0];
        assert_eq!(
            (cs.len(), cs[1], cs[2]),
            (8, 0x25, 0x01),
            "CS AS iso data endpoint"
        );
        let fb = &alt.endpoints[1];
        assert_eq!(fb.address(), 0x81);
        assert_eq!(fb.attributes(), 0x11, "isochronous, no sync, feedback");
        assert_eq!(fb.max_packet_size(), 4, "16.16 at high speed");
        assert!(fb.class_specific.is_empty());
    }
}

#[test]
fn capture_alternates() {
    let mut d = device("headset-uac2:bits=16,24");
    let c = read_config(&mut d);
    let alts = c.alts_of(2);
    assert_eq!(alts.len(), 3);
    let usb_out_id = c
        .alt(0, 0)
        .class_specific
        .iter()
        .find(|d| d[2] == 3 && le16(d, 4) == 0x0101)
        .unwrap()[3];
    for alt in &alts[1..] {
        assert_eq!(alt.cs(0x01).unwrap()[3], usb_out_id);
        assert_eq!(alt.endpoints.len(), 1);
        let ep = &alt.endpoints[0];
        assert_eq!(ep.address(), 0x82);
        assert_eq!(ep.attributes(), 0x05, "isochronous, asynchronous, data");
    }
}

/// Linux's generic UAC2 implicit feedback rule (sound/usb/implicit.c,
/// `audioformat_implicit_fb_quirk` → `add_generic_uac2_implicit_fb`): an asynchronous playback
/// data endpoint alone in its alternate setting, and interface number + 1 with the same
/// alternate setting being UAC2 AudioStreaming whose first endpoint is isochronous IN with usage
/// "implicit feedback data".
#[test]
fn implicit_feedback_layout_matches_linux_rule() {
    let mut d = device("uac2-implicit");
    let c = read_config(&mut d);
    for alt in &c.alts_of(1)[1..] {
        assert_eq!(alt.num_endpoints(), 1, "no feedback endpoint");
        let data = &alt.endpoints[0];
        assert_eq!(data.attributes() & 0x0C, 0x04, "asynchronous");
        let partner = c.alt(alt.number() + 1, alt.alternate());
        assert_eq!(partner.class_triple(), (1, 2, 0x20));
        let ep = &partner.endpoints[0];
        assert_eq!(ep.address() & 0x80, 0x80);
        assert_eq!(ep.attributes() & 0x03, 0x01, "isochronous");
        assert_eq!(ep.attributes() & 0x30, 0x20, "implicit feedback data");
    }
    let mut explicit = device("headset-uac2");
    let c = read_config(&mut explicit);
    assert_eq!(
        c.alt(2, 1).endpoints[0].attributes() & 0x30,
        0,
        "plain data when explicit"
    );
}

#[test]
fn interval_and_high_bandwidth_packets() {
    let mut d = device("uac2:rates=48000,96000:bits=16:interval=8");
    let c = read_config(&mut d);
    let ep = &c.alt(1, 1).endpoints[0];
    assert_eq!(ep.interval(), 4, "2^(4-1) = 8 microframes");
    assert!(ep.payload() >= needed_payload(96000, 8, 2, 2));
    let mut big = device("uac2:rates=384000:bits=32:ch=8");
    let c = read_config(&mut big);
    let ep = &c.alt(1, 1).endpoints[0];
    assert!(ep.max_packet_size() >> 11 > 0, "needs extra transactions");
    assert!(usize::from(ep.max_packet_size() & 0x7FF) <= 1024);
    assert!(ep.payload() >= needed_payload(384000, 1, 8, 4));
    let general = c.alt(1, 1).cs(0x01).unwrap();
    assert_eq!(general[10], 8);
    assert_eq!(le32(general, 11).count_ones(), 8);
}

#[test]
fn playback_only_profile_has_two_audio_interfaces() {
    let mut d = device("headset-uac2:no-capture");
    let c = read_config(&mut d);
    assert_eq!(c.num_interfaces(), 3, "control, playback, HID buttons");
    assert_eq!(c.iads[0][3], 2);
    let ac = c.alt(0, 0);
    assert_eq!(ac.class_specific.iter().filter(|d| d[2] == 2).count(), 1);
}
