//! Class requests: UAC2 clock source and feature unit, UAC1 feature unit and endpoint sampling
//! frequency, and the STALLs for everything malformed.

#[path = "usb_support.rs"]
mod support;

use sideband_device::usb::uac::{AudioProfile, UacDevice, VOLUME_RANGE};
use sideband_device::usb::{TransferResult, UsbDevice};
use support::*;

const STALL: TransferResult = TransferResult::Stall;
const DONE: TransferResult = TransferResult::Complete(0);
const CLOCK: u16 = 9 << 8; // entity 9, interface 0
const FU: u16 = 2 << 8;

fn configured(profile: &str) -> UacDevice {
    let mut d = UacDevice::headset(profile.parse::<AudioProfile>().unwrap()).unwrap();
    enumerate(&mut d);
    d
}

fn get2(
    d: &mut UacDevice,
    request: u8,
    value: u16,
    index: u16,
    length: u16,
) -> Result<Vec<u8>, TransferResult> {
    control_in(d, setup(0xA1, request, value, index, length))
}

fn set2(d: &mut UacDevice, request: u8, value: u16, index: u16, data: &[u8]) -> TransferResult {
    control_out(d, setup(0x21, request, value, index, 0), data)
}

#[test]
fn uac2_sampling_frequency_cur_and_range() {
    let mut d = configured("headset-uac2");
    assert_eq!(
        get2(&mut d, 1, 0x0100, CLOCK, 4),
        Ok(48000u32.to_le_bytes().to_vec())
    );
    // Linux reads wNumSubRanges first, then the whole block.
    let head = get2(&mut d, 2, 0x0100, CLOCK, 2).unwrap();
    let n = usize::from(le16(&head, 0));
    assert_eq!(n, 8);
    let all = get2(&mut d, 2, 0x0100, CLOCK, (2 + 12 * n) as u16).unwrap();
    let rates: Vec<u32> = (0..n).map(|i| le32(&all, 2 + 12 * i)).collect();
    assert_eq!(
        rates,
        vec![44100, 48000, 88200, 96000, 176400, 192000, 352800, 384000]
    );
    for (i, rate) in rates.iter().enumerate() {
        assert_eq!(le32(&all, 2 + 12 * i + 4), *rate, "dMAX = dMIN");
        assert_eq!(le32(&all, 2 + 12 * i + 8), 0, "dRES");
    }
    assert_eq!(
        set2(&mut d, 1, 0x0100, CLOCK, &96000u32.to_le_bytes()),
        DONE
    );
    assert_eq!(
        get2(&mut d, 1, 0x0100, CLOCK, 4),
        Ok(96000u32.to_le_bytes().to_vec())
    );
    assert_eq!(d.function().controls().playback_rate, 96000);
    assert_eq!(
        d.function().controls().capture_rate,
        96000,
        "one clock for both"
    );
    // Out-of-range and malformed rate requests.
    assert_eq!(
        set2(&mut d, 1, 0x0100, CLOCK, &12345u32.to_le_bytes()),
        STALL
    );
    assert_eq!(
        set2(&mut d, 1, 0x0100, CLOCK, &[0x80, 0xBB, 0]),
        STALL,
        "three bytes"
    );
    assert_eq!(set2(&mut d, 1, 0x0100, CLOCK, &[0; 5]), STALL, "five bytes");
    assert_eq!(get2(&mut d, 1, 0x0100, CLOCK, 2), Err(STALL), "short CUR");
    assert_eq!(
        get2(&mut d, 2, 0x0100, CLOCK, 0),
        Err(STALL),
        "RANGE without data"
    );
    assert_eq!(set2(&mut d, 2, 0x0100, CLOCK, &[0; 4]), STALL, "SET RANGE");
    assert_eq!(get2(&mut d, 1, 0x0101, CLOCK, 4), Err(STALL), "channel 1");
    assert_eq!(d.function().controls().playback_rate, 96000);
}

#[test]
fn uac2_rate_limited_by_profile() {
    let mut d = configured("uac2:rates=48000,96000");
    assert_eq!(
        set2(&mut d, 1, 0x0100, CLOCK, &44100u32.to_le_bytes()),
        STALL
    );
    let all = get2(&mut d, 2, 0x0100, CLOCK, 1024).unwrap();
    assert_eq!(all.len(), 2 + 24, "truncated to the block, not wLength");
}

#[test]
fn uac2_clock_validity() {
    let mut d = configured("headset-uac2");
    assert_eq!(get2(&mut d, 1, 0x0200, CLOCK, 1), Ok(vec![1]));
    assert_eq!(set2(&mut d, 1, 0x0200, CLOCK, &[0]), STALL, "read-only");
    assert_eq!(get2(&mut d, 2, 0x0200, CLOCK, 4), Err(STALL), "no RANGE");
    assert_eq!(
        get2(&mut d, 1, 0x0300, CLOCK, 1),
        Err(STALL),
        "unknown selector"
    );
}

#[test]
fn uac2_mute_and_volume() {
    let mut d = configured("headset-uac2");
    assert_eq!(get2(&mut d, 1, 0x0100, FU, 1), Ok(vec![0]));
    assert_eq!(set2(&mut d, 1, 0x0100, FU, &[1]), DONE);
    assert!(d.function().controls().mute);
    assert_eq!(get2(&mut d, 1, 0x0100, FU, 1), Ok(vec![1]));
    assert_eq!(set2(&mut d, 1, 0x0100, FU, &[2]), STALL, "not a boolean");
    assert_eq!(set2(&mut d, 1, 0x0100, FU, &[0, 0]), STALL, "two bytes");
    assert_eq!(
        get2(&mut d, 2, 0x0100, FU, 8),
        Err(STALL),
        "mute has no RANGE"
    );

    let range = get2(&mut d, 2, 0x0200, FU, 8).unwrap();
    assert_eq!(le16(&range, 0), 1);
    let (min, max, res) = (
        le16(&range, 2) as i16,
        le16(&range, 4) as i16,
        le16(&range, 6) as i16,
    );
    assert_eq!(
        (min, max, res),
        (VOLUME_RANGE.min, VOLUME_RANGE.max, VOLUME_RANGE.res)
    );
    assert!(min < max && res > 0);
    let minus_10_db = (-10i16 * 256).to_le_bytes();
    assert_eq!(set2(&mut d, 1, 0x0200, FU, &minus_10_db), DONE);
    assert_eq!(d.function().controls().volume, -2560);
    assert_eq!(get2(&mut d, 1, 0x0200, FU, 2), Ok(minus_10_db.to_vec()));
    assert_eq!(set2(&mut d, 1, 0x0200, FU, &(max + 1).to_le_bytes()), STALL);
    assert_eq!(set2(&mut d, 1, 0x0200, FU, &(min - 1).to_le_bytes()), STALL);
    assert_eq!(
        set2(&mut d, 1, 0x0201, FU, &minus_10_db),
        STALL,
        "no per-channel volume"
    );
    assert_eq!(get2(&mut d, 1, 0x0200, FU, 1), Err(STALL), "short CUR");
}

#[test]
fn uac2_requests_to_wrong_places_stall() {
    let mut d = configured("headset-uac2");
    assert_eq!(
        get2(&mut d, 1, 0x0100, 7 << 8, 4),
        Err(STALL),
        "unknown entity"
    );
    assert_eq!(
        get2(&mut d, 1, 0x0100, 3 << 8, 4),
        Err(STALL),
        "terminal has no controls"
    );
    assert_eq!(
        get2(&mut d, 1, 0x0100, CLOCK | 1, 4),
        Err(STALL),
        "streaming interface"
    );
    assert_eq!(
        get2(&mut d, 1, 0x0100, CLOCK | 9, 4),
        Err(STALL),
        "no interface 9"
    );
    assert_eq!(get2(&mut d, 3, 0x0100, CLOCK, 4), Err(STALL), "MEM request");
    assert_eq!(
        control_in(&mut d, setup(0xC1, 1, 0x0100, CLOCK, 4)),
        Err(STALL),
        "vendor"
    );
    assert_eq!(
        control_in(&mut d, setup(0xA2, 1, 0x0100, 0x01, 4)),
        Err(STALL),
        "endpoint"
    );
    d.reset();
    set_address(&mut d, 1);
    assert_eq!(
        get2(&mut d, 1, 0x0100, CLOCK, 4),
        Err(STALL),
        "not configured"
    );
}

#[test]
fn uac1_endpoint_sampling_frequency() {
    let mut d = configured("headset-uac1");
    let ep_set = |ep| setup(0x22, 0x01, 0x0100, ep, 3);
    let ep_get = |ep| setup(0xA2, 0x81, 0x0100, ep, 3);
    set_interface(&mut d, 1, 1);
    assert_eq!(control_out(&mut d, ep_set(0x01), &[0x44, 0xAC, 0x00]), DONE);
    assert_eq!(control_in(&mut d, ep_get(0x01)), Ok(vec![0x44, 0xAC, 0x00]));
    assert_eq!(d.function().controls().playback_rate, 44100);
    assert_eq!(
        d.function().controls().capture_rate,
        48000,
        "capture has its own rate"
    );
    // The capture endpoint may be set before its alternate setting is selected.
    assert_eq!(control_out(&mut d, ep_set(0x82), &[0x80, 0xBB, 0x00]), DONE);
    assert_eq!(
        control_out(&mut d, ep_set(0x01), &[0x00, 0x7D, 0x00]),
        STALL,
        "32 kHz not offered"
    );
    assert_eq!(
        control_out(&mut d, ep_set(0x01), &[0x44, 0xAC]),
        STALL,
        "two bytes"
    );
    assert_eq!(
        control_out(&mut d, ep_set(0x05), &[0x44, 0xAC, 0]),
        STALL,
        "no endpoint 5"
    );
    assert_eq!(
        control_out(&mut d, setup(0x22, 0x01, 0x0200, 0x01, 3), &[0x44, 0xAC, 0]),
        STALL,
        "pitch"
    );
    assert_eq!(
        control_in(&mut d, setup(0x22, 0x81, 0x0100, 0x01, 3)),
        Err(STALL),
        "GET code, OUT direction"
    );
    assert_eq!(
        control_in(&mut d, setup(0xA2, 0x82, 0x0100, 0x01, 3)),
        Err(STALL),
        "GET_MIN"
    );
}

#[test]
fn uac1_feature_unit() {
    let mut d = configured("headset-uac1");
    let get = |req, sel: u16, len| setup(0xA1, req, sel << 8, FU, len);
    let set = |sel: u16| setup(0x21, 0x01, sel << 8, FU, 0);
    let value = |d: &mut UacDevice, req| le16(&control_in(d, get(req, 2, 2)).unwrap(), 0) as i16;
    assert_eq!(value(&mut d, 0x82), VOLUME_RANGE.min);
    assert_eq!(value(&mut d, 0x83), VOLUME_RANGE.max);
    assert_eq!(value(&mut d, 0x84), VOLUME_RANGE.res);
    assert_eq!(control_out(&mut d, set(2), &(-512i16).to_le_bytes()), DONE);
    assert_eq!(value(&mut d, 0x81), -512);
    assert_eq!(control_out(&mut d, set(1), &[1]), DONE);
    assert_eq!(control_in(&mut d, get(0x81, 1, 1)), Ok(vec![1]));
    assert!(d.function().controls().mute);
    assert_eq!(
        control_in(&mut d, get(0x82, 1, 1)),
        Err(STALL),
        "mute has no MIN"
    );
    assert_eq!(
        control_in(&mut d, get(0x81, 2, 1)),
        Err(STALL),
        "volume is two bytes"
    );
    assert_eq!(control_out(&mut d, set(2), &i16::MAX.to_le_bytes()), STALL);
    assert_eq!(
        control_in(&mut d, setup(0xA1, 0x81, 0x0201, FU, 2)),
        Err(STALL),
        "channel 1"
    );
    assert_eq!(
        control_in(&mut d, setup(0xA1, 0x81, 0x0200, 6 << 8, 2)),
        Err(STALL),
        "entity 6"
    );
}
