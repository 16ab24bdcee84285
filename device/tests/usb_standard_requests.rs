//! Chapter 9 standard requests, device states and endpoint halt, driven through `UsbDevice`
//! against a small loopback function built on the framework (and the headset for the speed-
//! dependent parts).

#[path = "usb_support.rs"]
mod support;

use sideband_device::usb::descriptor::{
    ConfigurationAttributes, DeviceDescriptor, EndpointDescriptor, InterfaceDescriptor,
};
use sideband_device::usb::uac::UacDevice;
use sideband_device::usb::{
    AlternateSetting, BusTime, ConfigurationBuilder, DeviceDescriptors, DeviceState, EndpointEntry,
    SetupPacket, StandardDevice, StringTable, TransferResult, UsbDevice, UsbFunction, UsbSpeed,
    LANGID_EN_US,
};
use support::*;

/// Interface 0: alt 0 without endpoints, alt 1 with bulk OUT 0x01 and bulk IN 0x81 that echo.
/// Vendor request 0x42 OUT stores one byte, IN reads it back.
#[derive(Debug, Default)]
struct Loopback {
    buffer: Vec<u8>,
    alt_changes: Vec<(u8, u8)>,
    deconfigured: u32,
    vendor_value: u8,
}

impl UsbFunction for Loopback {
    fn class_request(&mut self, s: SetupPacket, data: &mut [u8], _: BusTime) -> TransferResult {
        match (s.request_type, s.request, s.length) {
            (0x41, 0x42, 1) => {
                self.vendor_value = data[0];
                TransferResult::Complete(0)
            }
            (0xC1, 0x42, 1) => {
                data[0] = self.vendor_value;
                TransferResult::Complete(1)
            }
            _ => TransferResult::Stall,
        }
    }
    fn alternate_changed(&mut self, interface: u8, alternate: u8, _: BusTime) {
        self.alt_changes.push((interface, alternate));
    }
    fn deconfigured(&mut self) {
        self.deconfigured += 1;
    }
    fn data_out(&mut self, _: u8, data: &[u8], _: BusTime) -> TransferResult {
        self.buffer = data.to_vec();
        TransferResult::Complete(data.len())
    }
    fn data_in(&mut self, _: u8, buf: &mut [u8], _: BusTime) -> TransferResult {
        if self.buffer.is_empty() {
            return TransferResult::Nak;
        }
        let n = self.buffer.len().min(buf.len());
        buf[..n].copy_from_slice(&self.buffer[..n]);
        self.buffer.clear();
        TransferResult::Complete(n)
    }
}

fn loopback_device(self_powered: bool) -> StandardDevice<Loopback> {
    let mut strings = StringTable::new(LANGID_EN_US);
    let product = strings.add("Loopback");
    let iface = |alternate| InterfaceDescriptor {
        number: 0,
        alternate,
        class: 0xFF,
        subclass: 0,
        protocol: 0,
        string: 0,
    };
    let bulk = |address| EndpointEntry {
        descriptor: EndpointDescriptor {
            address,
            attributes: 2,
            max_packet_size: 512,
            interval: 0,
            audio: None,
        },
        class_specific: vec![],
    };
    let configuration = ConfigurationBuilder::new(ConfigurationAttributes {
        value: 1,
        string: 0,
        attributes: if self_powered { 0x40 } else { 0 },
        max_power: 10,
    })
    .alternate(AlternateSetting {
        interface: iface(0),
        class_specific: vec![],
        endpoints: vec![],
    })
    .alternate(AlternateSetting {
        interface: iface(1),
        class_specific: vec![],
        endpoints: vec![bulk(0x01), bulk(0x81)],
    })
    .build()
    .unwrap();
    let device = DeviceDescriptor {
        usb_version: 0x0200,
        class: 0,
        subclass: 0,
        protocol: 0,
        max_packet_size0: 64,
        vendor_id: 0x1209,
        product_id: 0x000F,
        device_version: 0x0001,
        manufacturer_string: 0,
        product_string: product,
        serial_string: 0,
        num_configurations: 1,
    };
    StandardDevice::new(
        UsbSpeed::High,
        DeviceDescriptors {
            device,
            configuration,
            strings,
        },
        Loopback::default(),
    )
}

const STALL: TransferResult = TransferResult::Stall;
const DONE: TransferResult = TransferResult::Complete(0);

#[test]
fn device_descriptor_fields_and_truncation() {
    let mut d = loopback_device(false);
    let full = get_descriptor(&mut d, 1, 0, 64);
    assert_eq!(full.len(), 18);
    assert_eq!((full[0], full[1]), (18, 1));
    assert_eq!(le16(&full, 2), 0x0200);
    assert_eq!(full[7], 64, "bMaxPacketSize0");
    assert_eq!((le16(&full, 8), le16(&full, 10)), (0x1209, 0x000F));
    assert_eq!(full[17], 1, "bNumConfigurations");
    // Linux's first read asks for 8 (or 64) bytes before the address is set.
    assert_eq!(get_descriptor(&mut d, 1, 0, 8), full[..8]);
    assert_eq!(
        control_in(&mut d, setup(0x80, 6, 0x0101, 0, 18)),
        Err(STALL),
        "index 1"
    );
}

#[test]
fn configuration_descriptor_read_in_two_steps() {
    let mut d = loopback_device(false);
    let c = read_config(&mut d);
    assert_eq!(c.total_length(), 9 + 9 + 9 + 7 + 7);
    assert_eq!(c.num_interfaces(), 1);
    assert_eq!(c.alt(0, 1).endpoints.len(), 2);
}

#[test]
fn strings_and_langids() {
    let mut d = loopback_device(false);
    assert_eq!(get_descriptor(&mut d, 3, 0, 255), vec![4, 3, 0x09, 0x04]);
    let s = control_in(&mut d, setup(0x80, 6, 0x0301, 0x0409, 255)).unwrap();
    let text: Vec<u16> = s[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(String::from_utf16(&text).unwrap(), "Loopback");
    assert_eq!(usize::from(s[0]), s.len());
    assert_eq!(
        control_in(&mut d, setup(0x80, 6, 0x0302, 0x0409, 255)),
        Err(STALL)
    );
    assert_eq!(
        control_in(&mut d, setup(0x80, 6, 0x0301, 0x0407, 255)),
        Err(STALL)
    );
    // Truncation to wLength = 2 gives the header only.
    assert_eq!(
        control_in(&mut d, setup(0x80, 6, 0x0301, 0x0409, 2)).unwrap(),
        s[..2]
    );
}

#[test]
fn device_qualifier_only_at_high_speed() {
    let mut hs = loopback_device(false);
    let q = get_descriptor(&mut hs, 6, 0, 10);
    assert_eq!(q.len(), 10);
    assert_eq!((q[0], q[1]), (10, 6));
    assert_eq!(le16(&q, 2), 0x0200);
    assert_eq!(q[7], 64);
    assert_eq!(q[8], 1);
    let mut fs = UacDevice::headset("headset-uac1".parse().unwrap()).unwrap();
    assert_eq!(fs.speed(), UsbSpeed::Full);
    assert_eq!(
        control_in(&mut fs, setup(0x80, 6, 0x0600, 0, 10)),
        Err(STALL)
    );
    // Other-speed configuration is not offered.
    assert_eq!(
        control_in(&mut hs, setup(0x80, 6, 0x0700, 0, 9)),
        Err(STALL)
    );
}

#[test]
fn address_and_configuration_states() {
    let mut d = loopback_device(false);
    assert_eq!(d.state(), DeviceState::Default);
    assert_eq!(
        set_configuration(&mut d, 1),
        STALL,
        "not before SET_ADDRESS"
    );
    assert_eq!(set_address(&mut d, 128), STALL);
    assert_eq!(
        control_out(&mut d, setup(0x00, 5, 3, 1, 0), &[]),
        STALL,
        "wIndex"
    );
    assert_eq!(set_address(&mut d, 7), DONE);
    assert_eq!((d.state(), d.address()), (DeviceState::Address, 7));
    assert_eq!(control_in(&mut d, setup(0x80, 8, 0, 0, 1)), Ok(vec![0]));
    assert_eq!(set_configuration(&mut d, 2), STALL, "no configuration 2");
    assert_eq!(set_configuration(&mut d, 1), DONE);
    assert_eq!(d.state(), DeviceState::Configured);
    assert_eq!(d.function().alt_changes, vec![(0, 0)]);
    assert_eq!(control_in(&mut d, setup(0x80, 8, 0, 0, 1)), Ok(vec![1]));
    assert_eq!(
        control_in(&mut d, setup(0x80, 8, 0, 0, 2)),
        Err(STALL),
        "wLength"
    );
    assert_eq!(set_address(&mut d, 9), STALL, "not while configured");
    assert_eq!(set_configuration(&mut d, 0), DONE);
    assert_eq!(d.state(), DeviceState::Address);
    assert_eq!(d.function().deconfigured, 1);
    assert_eq!(set_address(&mut d, 0), DONE);
    assert_eq!(d.state(), DeviceState::Default);
}

#[test]
fn alternate_settings_route_data() {
    let mut d = loopback_device(false);
    assert_eq!(d.data_out(1, b"x", T0), STALL, "unconfigured");
    enumerate(&mut d);
    assert_eq!(d.data_out(1, b"x", T0), STALL, "alt 0 has no endpoints");
    assert_eq!(control_in(&mut d, setup(0x81, 10, 0, 0, 1)), Ok(vec![0]));
    assert_eq!(set_interface(&mut d, 0, 2), STALL, "no alt 2");
    assert_eq!(set_interface(&mut d, 1, 0), STALL, "no interface 1");
    assert_eq!(set_interface(&mut d, 0, 1), DONE);
    assert_eq!(d.function().alt_changes.last(), Some(&(0, 1)));
    assert_eq!(control_in(&mut d, setup(0x81, 10, 0, 0, 1)), Ok(vec![1]));
    assert_eq!(control_in(&mut d, setup(0x81, 10, 0, 1, 1)), Err(STALL));
    assert_eq!(d.data_out(1, b"hello", T0), TransferResult::Complete(5));
    let mut buf = [0u8; 16];
    assert_eq!(d.data_in(1, &mut buf, T0), TransferResult::Complete(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(d.data_in(1, &mut buf, T0), TransferResult::Nak);
    assert_eq!(d.data_in(2, &mut buf, T0), STALL, "no endpoint 0x82");
    assert_eq!(d.data_out(0, b"x", T0), STALL, "endpoint 0 is control");
    assert_eq!(d.data_out(200, b"x", T0), STALL);
}

#[test]
fn get_status_of_each_recipient() {
    let mut d = loopback_device(true);
    assert_eq!(
        control_in(&mut d, setup(0x80, 0, 0, 0, 2)),
        Ok(vec![1, 0]),
        "self-powered"
    );
    assert_eq!(
        control_in(&mut d, setup(0x80, 0, 0, 0, 1)),
        Err(STALL),
        "wLength"
    );
    assert_eq!(
        control_in(&mut d, setup(0x80, 0, 1, 0, 2)),
        Err(STALL),
        "wValue"
    );
    assert_eq!(
        control_in(&mut d, setup(0x81, 0, 0, 0, 2)),
        Err(STALL),
        "unconfigured"
    );
    assert_eq!(
        control_in(&mut d, setup(0x82, 0, 0, 0, 2)),
        Ok(vec![0, 0]),
        "ep0"
    );
    enumerate(&mut d);
    assert_eq!(control_in(&mut d, setup(0x81, 0, 0, 0, 2)), Ok(vec![0, 0]));
    assert_eq!(control_in(&mut d, setup(0x81, 0, 0, 5, 2)), Err(STALL));
    assert_eq!(
        control_in(&mut d, setup(0x82, 0, 0, 0x81, 2)),
        Err(STALL),
        "inactive"
    );
    set_interface(&mut d, 0, 1);
    assert_eq!(
        control_in(&mut d, setup(0x82, 0, 0, 0x81, 2)),
        Ok(vec![0, 0])
    );
    assert_eq!(
        control_in(&mut d, setup(0x82, 0, 0, 0x0181, 2)),
        Err(STALL),
        "wIndex"
    );
    let mut bus = loopback_device(false);
    assert_eq!(
        control_in(&mut bus, setup(0x80, 0, 0, 0, 2)),
        Ok(vec![0, 0])
    );
}

#[test]
fn endpoint_halt_stalls_data_until_cleared() {
    let mut d = loopback_device(false);
    enumerate(&mut d);
    let halt = |ep: u16| setup(0x02, 3, 0, ep, 0);
    let clear = |ep: u16| setup(0x02, 1, 0, ep, 0);
    assert_eq!(
        control_out(&mut d, halt(0x01), &[]),
        STALL,
        "inactive endpoint"
    );
    set_interface(&mut d, 0, 1);
    assert_eq!(control_out(&mut d, halt(0x01), &[]), DONE);
    assert!(d.is_halted(0x01) && !d.is_halted(0x81));
    assert_eq!(
        control_in(&mut d, setup(0x82, 0, 0, 0x01, 2)),
        Ok(vec![1, 0])
    );
    assert_eq!(d.data_out(1, b"x", T0), STALL);
    let mut buf = [0u8; 4];
    assert_eq!(
        d.data_in(1, &mut buf, T0),
        TransferResult::Nak,
        "IN side not halted"
    );
    assert_eq!(control_out(&mut d, clear(0x01), &[]), DONE);
    assert_eq!(d.data_out(1, b"x", T0), TransferResult::Complete(1));
    // SET_INTERFACE clears halt.
    control_out(&mut d, halt(0x81), &[]);
    assert_eq!(d.data_in(1, &mut buf, T0), STALL);
    set_interface(&mut d, 0, 1);
    assert!(!d.is_halted(0x81));
    // Endpoint 0 halt is accepted and has no lasting effect; a data stage is refused.
    assert_eq!(control_out(&mut d, halt(0x00), &[]), DONE);
    assert_eq!(control_out(&mut d, halt(0x01), &[0]), STALL, "wLength");
    assert_eq!(
        control_out(&mut d, setup(0x02, 3, 5, 0x01, 0), &[]),
        STALL,
        "feature 5"
    );
}

#[test]
fn unsupported_requests_stall() {
    let mut d = loopback_device(false);
    enumerate(&mut d);
    for (rt, req, value) in [
        (0x00, 3, 1u16),   // SET_FEATURE(DEVICE_REMOTE_WAKEUP): not advertised
        (0x00, 3, 2),      // TEST_MODE
        (0x00, 1, 1),      // CLEAR_FEATURE(DEVICE_REMOTE_WAKEUP)
        (0x00, 7, 0x0100), // SET_DESCRIPTOR
        (0x00, 2, 0),      // reserved request 2
        (0x00, 0xFF, 0),
        (0x60, 0, 0), // reserved type
        (0x21, 1, 0), // class request the function does not know
    ] {
        assert_eq!(
            control_out(&mut d, setup(rt, req, value, 0, 0), &[]),
            STALL,
            "{rt:#x} {req}"
        );
    }
    assert_eq!(
        control_in(&mut d, setup(0x82, 12, 0, 0x81, 2)),
        Err(STALL),
        "SYNCH_FRAME"
    );
    assert_eq!(
        control_in(&mut d, setup(0x00, 6, 0x0100, 0, 18)),
        Err(STALL),
        "wrong direction"
    );
    assert_eq!(
        control_in(&mut d, setup(0x81, 6, 0x2200, 0, 64)),
        Err(STALL),
        "HID report"
    );
}

#[test]
fn vendor_requests_reach_the_function_only_when_configured() {
    let mut d = loopback_device(false);
    set_address(&mut d, 1);
    assert_eq!(control_out(&mut d, setup(0x41, 0x42, 0, 0, 1), &[9]), STALL);
    set_configuration(&mut d, 1);
    assert_eq!(control_out(&mut d, setup(0x41, 0x42, 0, 0, 1), &[9]), DONE);
    assert_eq!(control_in(&mut d, setup(0xC1, 0x42, 0, 0, 1)), Ok(vec![9]));
    assert_eq!(
        control_out(&mut d, setup(0x41, 0x42, 0, 3, 1), &[9]),
        STALL,
        "no interface 3"
    );
}

#[test]
fn reset_returns_to_default() {
    let mut d = loopback_device(false);
    enumerate(&mut d);
    set_interface(&mut d, 0, 1);
    control_out(&mut d, setup(0x02, 3, 0, 0x01, 0), &[]);
    d.reset();
    assert_eq!((d.state(), d.address()), (DeviceState::Default, 0));
    assert_eq!(d.function().deconfigured, 1);
    assert_eq!(d.data_out(1, b"x", T0), STALL);
    enumerate(&mut d);
    assert!(!d.is_halted(0x01), "halt cleared by reset");
    assert_eq!(d.alternate(0), Some(0));
}

/// Every request type, request code and a spread of values, indices and lengths (up to the
/// maximum wLength) in every state: the device answers something and never panics.
#[test]
fn arbitrary_control_requests_never_panic() {
    let mut seed: u64 = 0x5EED;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u16
    };
    let mut devices: Vec<Box<dyn UsbDevice>> = vec![
        Box::new(loopback_device(false)),
        Box::new(UacDevice::headset("headset-uac2".parse().unwrap()).unwrap()),
        Box::new(UacDevice::headset("headset-uac1".parse().unwrap()).unwrap()),
        Box::new(UacDevice::headset("uac2-implicit".parse().unwrap()).unwrap()),
    ];
    for d in devices.iter_mut() {
        for state in 0..3 {
            d.reset();
            if state >= 1 {
                set_address(d.as_mut(), 2);
            }
            if state == 2 {
                set_configuration(d.as_mut(), 1);
                set_interface(d.as_mut(), 1, 1);
                set_interface(d.as_mut(), 2, 1);
            }
            for rt in 0..=255u8 {
                for req in [
                    0u8, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0x82, 0x83, 0x84, 0xFF,
                ] {
                    let (value, index) = (next(), next() & 0x0FFF);
                    for length in [0u16, 1, 2, 3, 4, 7, 64, 65535] {
                        let s = setup(rt, req, value, index, length);
                        let mut buf = vec![0u8; usize::from(length)];
                        if let TransferResult::Complete(n) = d.control(s, &mut buf, T0) {
                            assert!(n <= buf.len());
                        }
                        // A buffer shorter than wLength (a confused host controller).
                        let mut short = [0u8; 1];
                        let _ = d.control(s, &mut short, T0);
                    }
                }
            }
            for ep in 0..=255u8 {
                let mut buf = [0u8; 4096];
                let _ = d.data_out(ep, &buf[..(usize::from(ep) * 16)], BusTime(u64::from(ep)));
                let _ = d.data_in(
                    ep,
                    &mut buf[..(usize::from(ep) * 3)],
                    BusTime(u64::from(ep)),
                );
            }
        }
    }
}
