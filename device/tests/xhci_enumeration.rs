//! The guest's enumeration sequence against the xHCI model and the loopback test device:
//! connect, port reset, Enable Slot, Address Device, GET_DESCRIPTOR through control TRBs,
//! SET_CONFIGURATION, Configure Endpoint, 1 MiB of bulk loopback, unplug and replug.

use sideband_device::usb::SetupPacket;
use sideband_device::xhci::context::{EndpointState, EndpointType, SlotState};
use sideband_device::xhci::regs::portsc;
use sideband_device::xhci::testkit::{bits, code, residual, Driver};
use sideband_device::xhci::trb::{CompletionCode, Trb, TrbType};
use sideband_device::xhci::{Config, LoopbackDevice};

const SUCCESS: u8 = CompletionCode::Success as u8;

fn port_events(d: &mut Driver) -> Vec<u8> {
    let mut ports = Vec::new();
    for e in d.events(0) {
        if e.trb_type() == Some(TrbType::PortStatusChangeEvent) {
            ports.push((e.parameter() >> 24) as u8);
        }
    }
    ports
}

/// Brings a loopback device on `port` to the Configured state; returns its slot.
fn enumerate(d: &mut Driver, port: u8) -> u8 {
    d.reset_port(port);
    assert!(d.read32(Driver::portsc(port)) & portsc::PED != 0);
    let slot = d.enable_slot();
    assert_eq!(d.address_device(slot, port, false), SUCCESS);

    let (events, data) = d.get_descriptor(slot, 0x0100, 18);
    assert_eq!(events.len(), 1, "one event, on the status stage");
    assert_eq!(code(&events[0]), SUCCESS);
    assert_eq!(&data[..4], &[18, 1, 0x00, 0x02]);
    assert_eq!(u16::from_le_bytes([data[8], data[9]]), 0x1209);

    let (_, head) = d.get_descriptor(slot, 0x0200, 9);
    let total = u16::from_le_bytes([head[2], head[3]]);
    assert_eq!(total, 32);
    let (_, config) = d.get_descriptor(slot, 0x0200, total);
    assert_eq!(config[9 + 5], 0xff, "vendor-specific interface");
    assert_eq!(config[18 + 2], 0x01);
    assert_eq!(config[25 + 2], 0x81);

    d.queue_control_nodata(
        slot,
        SetupPacket {
            request_type: 0,
            request: 9,
            value: 1,
            index: 0,
            length: 0,
        },
    );
    d.doorbell(slot, 1);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), SUCCESS);

    let eps = [
        (2, EndpointType::BulkOut, 512, 0),
        (3, EndpointType::BulkIn, 512, 0),
    ];
    assert_eq!(d.configure(slot, &eps, 0), SUCCESS);
    // The port reset's Port Status Change Event sits in the stash; it was seen.
    d.events(0);
    slot
}

#[test]
fn enumerate_and_loop_back_one_mebibyte() {
    let mut d = Driver::new(Config::default());
    d.init();
    assert_eq!(d.xhci.usbsts() & 1, 0, "running");

    d.xhci.attach(1, Box::new(LoopbackDevice::new())).unwrap();
    d.tick(1);
    assert_eq!(port_events(&mut d), vec![1]);
    assert!(d.irqs.take().contains(&0));
    let sc = d.read32(Driver::portsc(1));
    assert!(sc & portsc::CCS != 0 && sc & portsc::CSC != 0);
    assert_eq!((sc >> portsc::SPEED_SHIFT) & 0xf, 3, "high speed");

    let slot = enumerate(&mut d, 1);
    let s = d.output_slot(slot);
    assert_eq!(s.slot_state_bits(), SlotState::Configured as u8);
    assert_eq!(s.device_address(), slot);
    assert_eq!(s.context_entries(), 3);
    assert_eq!(
        d.output_ep(slot, 2).state_bits(),
        EndpointState::Running as u8
    );
    assert_eq!(
        d.output_ep(slot, 3).state_bits(),
        EndpointState::Running as u8
    );

    // 1 MiB in 8 KiB chunks, each as two chained 4 KiB Normal TRBs: the rings wrap.
    let chunk = 8192usize;
    let mut checked = 0usize;
    for i in 0..128u32 {
        let data: Vec<u8> = (0..chunk)
            .map(|j| (j as u32).wrapping_mul(31).wrapping_add(i * 7) as u8)
            .collect();
        let out = d.buffer(&data);
        d.queue(slot, 2, Trb::new(TrbType::Normal, out, 4096, bits::CH));
        d.queue(
            slot,
            2,
            Trb::new(TrbType::Normal, out + 4096, 4096, bits::IOC),
        );
        d.doorbell(slot, 2);
        let ev = d.transfer_events(0);
        assert_eq!(ev.len(), 1);
        assert_eq!(code(&ev[0]), SUCCESS);
        assert_eq!(ev[0].endpoint_id(), 2);

        let back = d.alloc(2);
        d.queue(
            slot,
            3,
            Trb::new(TrbType::Normal, back, 4096, bits::CH | bits::ISP),
        );
        d.queue(
            slot,
            3,
            Trb::new(TrbType::Normal, back + 4096, 4096, bits::IOC | bits::ISP),
        );
        d.doorbell(slot, 3);
        let ev = d.transfer_events(0);
        assert_eq!(ev.len(), 1);
        assert_eq!(code(&ev[0]), SUCCESS);
        assert_eq!(residual(&ev[0]), 0);
        assert_eq!(d.read_buffer(back, chunk), data, "chunk {i}");
        checked += chunk;
    }
    assert_eq!(checked, 1 << 20);
    assert!(d.xhci.stats().trbs >= 512);
    assert!(d.xhci.interrupter_stats(0).unwrap().interrupts > 0);
}

#[test]
fn unplug_and_replug_enumerate_again() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.xhci.attach(2, Box::new(LoopbackDevice::new())).unwrap();
    d.tick(1);
    assert_eq!(port_events(&mut d), vec![2]);
    let slot = enumerate(&mut d, 2);

    let dev = d.xhci.detach(2).unwrap();
    assert!(dev.is_some());
    d.tick(1);
    assert_eq!(port_events(&mut d), vec![2]);
    let sc = d.read32(Driver::portsc(2));
    assert_eq!(sc & (portsc::CCS | portsc::PED), 0);
    assert!(sc & portsc::CSC != 0);
    d.write32(Driver::portsc(2), sc & portsc::CHANGE_BITS);

    // A transfer to the vanished device fails and halts the endpoint.
    let buf = d.alloc(1);
    d.queue(slot, 3, Trb::new(TrbType::Normal, buf, 64, bits::IOC));
    d.doorbell(slot, 3);
    let ev = d.transfer_events(0);
    assert_eq!(code(&ev[0]), CompletionCode::UsbTransactionError as u8);
    assert_eq!(
        d.output_ep(slot, 3).state_bits(),
        EndpointState::Halted as u8
    );

    let e = d.command(Trb::new(TrbType::DisableSlot, 0, 0, u32::from(slot) << 24));
    assert_eq!(code(&e), SUCCESS);

    d.xhci.attach(2, dev.unwrap()).unwrap();
    d.tick(1);
    assert_eq!(port_events(&mut d), vec![2]);
    let sc = d.read32(Driver::portsc(2));
    d.write32(Driver::portsc(2), sc & portsc::CHANGE_BITS);
    let again = enumerate(&mut d, 2);
    assert_eq!(again, slot, "the freed slot is reused");
}

#[test]
fn address_device_with_bsr_then_without() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.xhci.attach(1, Box::new(LoopbackDevice::new())).unwrap();
    d.reset_port(1);
    let slot = d.enable_slot();
    assert_eq!(d.address_device(slot, 1, true), SUCCESS);
    let s = d.output_slot(slot);
    assert_eq!(s.slot_state_bits(), SlotState::Default as u8);
    assert_eq!(s.device_address(), 0);
    // Descriptors can be read in the Default state.
    let (ev, data) = d.get_descriptor(slot, 0x0100, 8);
    assert_eq!(code(&ev[0]), SUCCESS);
    assert_eq!(data[7], 64);
    // BSR = 1 again is a Context State Error; BSR = 0 addresses.
    assert_eq!(
        d.address_device(slot, 1, true),
        CompletionCode::ContextStateError as u8
    );
    assert_eq!(d.address_device(slot, 1, false), SUCCESS);
    assert_eq!(
        d.output_slot(slot).slot_state_bits(),
        SlotState::Addressed as u8
    );
    assert_eq!(
        d.address_device(slot, 1, false),
        CompletionCode::ContextStateError as u8
    );
}
