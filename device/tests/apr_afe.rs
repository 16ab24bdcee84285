//! The AFE service's USB port as q6afe and q6usb drive it: the parameters q6afe_port_set_param_v2
//! sends in band, then DEVICE_START and DEVICE_STOP; the start reports the card the device
//! token names, so the DSP learns it in band as on a phone.

use sideband_device::adsp::apr::{packet, AfeEvent, Router, UsbPort};

fn command(opcode: u32, token: u32, payload: &[u8]) -> Vec<u8> {
    let size = 20 + payload.len();
    let mut v = Vec::new();
    v.extend_from_slice(&0x0250u16.to_le_bytes());
    v.extend_from_slice(&(size as u16).to_le_bytes());
    v.extend_from_slice(&[4, 5, 0, 0, 4, 4, 0, 0]);
    v.extend_from_slice(&token.to_le_bytes());
    v.extend_from_slice(&opcode.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// q6afe_port_set_param_v2: {port, payload_size, 0, 0, 0}{module, param, size, 0} param.
fn set_param(port: u16, module: u32, param: u32, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&port.to_le_bytes());
    p.extend_from_slice(&(12 + data.len() as u16).to_le_bytes());
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(&module.to_le_bytes());
    p.extend_from_slice(&param.to_le_bytes());
    p.extend_from_slice(&(data.len() as u16).to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(data);
    command(0x0001_00EF, 136, &p)
}

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn status(answer: &[u8]) -> u32 {
    let (h, p) = packet::parse(answer).unwrap();
    assert_eq!(h.opcode, packet::BASIC_RSP_RESULT);
    u32::from_le_bytes(p[4..8].try_into().unwrap())
}

const USB: u16 = 0x7000;
const MODULE: u32 = 0x0001_020C;

/// The usb cfg: {minor, rate, u16 bits, u16 ch, u16 format, u16 0, token, endian, interval}.
fn usb_cfg(rate: u32, bits: u16, ch: u16, token: u32, si: u32) -> Vec<u8> {
    let mut d = words(&[1, rate]);
    d.extend_from_slice(&bits.to_le_bytes());
    d.extend_from_slice(&ch.to_le_bytes());
    d.extend_from_slice(&[0, 0, 0, 0]);
    d.extend(words(&[token, 0, si]));
    d
}

#[test]
fn a_configured_usb_port_starts_with_the_card_its_token_names_and_stops() {
    let mut r = Router::default();
    let token = 1 << 16; // card 1, pcm 0: the QMI usb_token
    for pkt in [
        set_param(USB, MODULE, 0x0001_02A5, &words(&[1, token])),
        set_param(USB, MODULE, 0x0001_02AA, &words(&[1, 0])),
        set_param(USB, MODULE, 0x0001_02B7, &words(&[1, 1000])),
        set_param(
            USB,
            MODULE,
            0x0001_02A4,
            &usb_cfg(48_000, 16, 2, token, 1000),
        ),
    ] {
        let out = r.handle(&pkt);
        assert_eq!(status(&out[0]), packet::EOK);
    }
    assert!(
        r.take_events().is_empty(),
        "nothing starts before DEVICE_START"
    );
    let out = r.handle(&command(0x0001_00E5, 7, &[0x00, 0x70, 0, 0]));
    assert_eq!(status(&out[0]), packet::EOK);
    assert_eq!(
        r.take_events(),
        vec![AfeEvent::Start(UsbPort {
            card: 1,
            pcm: 0,
            rate: 48_000,
            bits: 16,
            channels: 2,
            service_interval_us: 1000,
        })]
    );
    // A second start of a running port is answered, not started twice.
    r.handle(&command(0x0001_00E5, 8, &[0x00, 0x70, 0, 0]));
    assert!(r.take_events().is_empty());
    let out = r.handle(&command(0x0001_00E6, 9, &[0x00, 0x70, 0, 0]));
    assert_eq!(status(&out[0]), packet::EOK);
    assert_eq!(r.take_events(), vec![AfeEvent::Stop]);
    r.handle(&command(0x0001_00E6, 10, &[0x00, 0x70, 0, 0]));
    assert!(
        r.take_events().is_empty(),
        "stopping a stopped port reports nothing"
    );
}

#[test]
fn bad_or_foreign_parameters_are_refused_and_start_needs_configuration() {
    let mut r = Router::default();
    let out = r.handle(&command(0x0001_00E5, 1, &[0x00, 0x70, 0, 0]));
    assert_eq!(
        status(&out[0]),
        2,
        "EBADPARAM before the token and configuration"
    );
    let mut bad_size = set_param(USB, MODULE, 0x0001_02A5, &words(&[1, 0x10000]));
    bad_size[22] += 4; // payload_size disagrees with param_size
    assert_eq!(status(&r.handle(&bad_size)[0]), 2);
    let short = set_param(USB, MODULE, 0x0001_02A4, &words(&[1]));
    assert_eq!(status(&r.handle(&short)[0]), 2, "a configuration cut short");
    let other_port = set_param(0x1000, MODULE, 0x0001_02A5, &words(&[1, 1]));
    assert_eq!(status(&r.handle(&other_port)[0]), packet::EUNSUPPORTED);
    let other_module = set_param(USB, 0x0001_0200, 0x0001_02A5, &words(&[1, 1]));
    assert_eq!(status(&r.handle(&other_module)[0]), packet::EUNSUPPORTED);
    assert!(r.take_events().is_empty());
    assert_eq!(r.stats().afe, 5);
}
