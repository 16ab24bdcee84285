//! Every command the model implements, with its success path and the completion codes the
//! specification prescribes for bad use (xHCI 1.2 §4.6).

use sideband_device::usb::SetupPacket;
use sideband_device::xhci::context::{EndpointState, EndpointType, SlotState};
use sideband_device::xhci::regs::{crcr, op, OP_BASE};
use sideband_device::xhci::testkit::{bits, code, Driver};
use sideband_device::xhci::trb::{CompletionCode as Cc, Trb, TrbType};
use sideband_device::xhci::Config;

fn cmd(d: &mut Driver, ty: TrbType, param: u64, slot: u8, extra: u32) -> u8 {
    code(&d.command(Trb::new(ty, param, 0, (u32::from(slot) << 24) | extra)))
}

fn ep_cmd(d: &mut Driver, ty: TrbType, slot: u8, dci: u8) -> u8 {
    cmd(d, ty, 0, slot, u32::from(dci) << 16)
}

#[test]
fn no_op_and_unknown_commands() {
    let mut d = Driver::new(Config::default());
    d.init();
    let e = d.command(Trb::new(TrbType::NoOpCommand, 0, 0, 0));
    assert_eq!(code(&e), Cc::Success as u8);
    assert_eq!(
        cmd(&mut d, TrbType::ForceHeader, 0, 0, 0),
        Cc::TrbError as u8
    );
    // A transfer TRB type and a reserved type on the command ring.
    assert_eq!(cmd(&mut d, TrbType::Normal, 0, 0, 0), Cc::TrbError as u8);
    let reserved = Trb([0, 0, 0, 50 << 10]);
    assert_eq!(code(&d.command(reserved)), Cc::TrbError as u8);
    assert_eq!(d.xhci.stats().commands, 4);
}

#[test]
fn enable_slot_until_none_left() {
    let mut d = Driver::new(Config {
        max_slots: 2,
        ..Config::default()
    });
    d.init();
    assert_eq!(d.enable_slot(), 1);
    assert_eq!(d.enable_slot(), 2);
    assert_eq!(
        cmd(&mut d, TrbType::EnableSlot, 0, 0, 0),
        Cc::NoSlotsAvailable as u8
    );
    // CONFIG.MaxSlotsEn bounds the slots handed out.
    let mut d = Driver::new(Config::default());
    d.init();
    d.write32(OP_BASE + op::CONFIG, 1);
    assert_eq!(d.enable_slot(), 1);
    assert_eq!(
        cmd(&mut d, TrbType::EnableSlot, 0, 0, 0),
        Cc::NoSlotsAvailable as u8
    );
}

#[test]
fn disable_slot() {
    let mut d = Driver::new(Config::default());
    d.init();
    let s = d.enable_slot();
    assert_eq!(
        cmd(&mut d, TrbType::DisableSlot, 0, s, 0),
        Cc::Success as u8
    );
    assert_eq!(
        cmd(&mut d, TrbType::DisableSlot, 0, s, 0),
        Cc::SlotNotEnabled as u8
    );
    assert_eq!(
        cmd(&mut d, TrbType::DisableSlot, 0, 0, 0),
        Cc::TrbError as u8
    );
    assert_eq!(
        cmd(&mut d, TrbType::DisableSlot, 0, 200, 0),
        Cc::TrbError as u8
    );
}

#[test]
fn address_device_errors() {
    let mut d = Driver::new(Config::default());
    d.init();
    // Slot not enabled.
    let input = d.alloc(1);
    assert_eq!(
        cmd(&mut d, TrbType::AddressDevice, input, 3, 0),
        Cc::SlotNotEnabled as u8
    );
    let s = d.enable_slot();
    // No device on port 1.
    assert_eq!(d.address_device(s, 1, false), Cc::UsbTransactionError as u8);
    // Port 9 does not exist.
    assert_eq!(d.address_device(s, 9, false), Cc::ParameterError as u8);
    d.xhci
        .attach(1, Box::new(sideband_device::xhci::LoopbackDevice::new()))
        .unwrap();
    // Attached but the port was never reset: not enabled.
    assert_eq!(d.address_device(s, 1, false), Cc::UsbTransactionError as u8);
    d.reset_port(1);
    // A0/A1 missing.
    let input = d.slots[usize::from(s)].input;
    d.write32(0, 0);
    sideband_device::xhci::dma::write(&d.mem, input + 4, &[0b01, 0, 0, 0]).unwrap();
    assert_eq!(
        cmd(&mut d, TrbType::AddressDevice, input, s, 0),
        Cc::ParameterError as u8
    );
    // DCBAA entry zero.
    sideband_device::xhci::dma::write(&d.mem, d.dcbaa + 8 * u64::from(s), &[0; 8]).unwrap();
    assert_eq!(d.address_device(s, 1, false), Cc::ParameterError as u8);
    let out = d.slots[usize::from(s)].output;
    sideband_device::xhci::dma::write(&d.mem, d.dcbaa + 8 * u64::from(s), &out.to_le_bytes())
        .unwrap();
    assert_eq!(d.address_device(s, 1, false), Cc::Success as u8);
}

#[test]
fn address_device_rejects_bad_ep0_context() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.xhci
        .attach(1, Box::new(sideband_device::xhci::LoopbackDevice::new()))
        .unwrap();
    d.reset_port(1);
    let s = d.enable_slot();
    assert_eq!(d.address_device(s, 1, true), Cc::Success as u8);
    // Rewrite EP0's input context as a bulk endpoint and try again.
    let input = d.slots[usize::from(s)].input;
    sideband_device::xhci::dma::write(
        &d.mem,
        input + 64 + 4,
        &((2u32 << 3) | (64 << 16)).to_le_bytes(),
    )
    .unwrap();
    let e = d.command(Trb::new(
        TrbType::AddressDevice,
        input,
        0,
        u32::from(s) << 24,
    ));
    assert_eq!(code(&e), Cc::ParameterError as u8);
}

#[test]
fn configure_endpoint_add_drop_deconfigure() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    assert_eq!(
        d.output_slot(s).slot_state_bits(),
        SlotState::Configured as u8
    );
    // Drop DCI 3, add an interrupt IN at DCI 5.
    let eps = [(5, EndpointType::InterruptIn, 8, 3)];
    assert_eq!(d.configure(s, &eps, 1 << 3), Cc::Success as u8);
    assert_eq!(
        d.output_ep(s, 3).state_bits(),
        EndpointState::Disabled as u8
    );
    assert_eq!(d.output_ep(s, 5).state_bits(), EndpointState::Running as u8);
    assert_eq!(d.output_slot(s).context_entries(), 5);
    // An OUT type at an IN DCI: Parameter Error, nothing applied.
    let bad = [
        (7, EndpointType::BulkIn, 512, 0),
        (9, EndpointType::BulkOut, 512, 0),
    ];
    assert_eq!(d.configure(s, &bad, 1 << 5), Cc::ParameterError as u8);
    assert_eq!(d.output_ep(s, 5).state_bits(), EndpointState::Running as u8);
    assert_eq!(
        d.output_ep(s, 7).state_bits(),
        EndpointState::Disabled as u8
    );
    // Deconfigure.
    let input = d.slots[usize::from(s)].input;
    let e = d.command(Trb::new(
        TrbType::ConfigureEndpoint,
        input,
        0,
        (u32::from(s) << 24) | bits::BIT9,
    ));
    assert_eq!(code(&e), Cc::Success as u8);
    assert_eq!(
        d.output_ep(s, 2).state_bits(),
        EndpointState::Disabled as u8
    );
    assert_eq!(
        d.output_ep(s, 5).state_bits(),
        EndpointState::Disabled as u8
    );
    let slot = d.output_slot(s);
    assert_eq!(slot.slot_state_bits(), SlotState::Addressed as u8);
    assert_eq!(slot.context_entries(), 1);
}

#[test]
fn configure_endpoint_needs_an_addressed_slot() {
    let mut d = Driver::new(Config::default());
    d.init();
    let s = d.enable_slot();
    let eps = [(2, EndpointType::BulkOut, 512, 0)];
    assert_eq!(d.configure(s, &eps, 0), Cc::ContextStateError as u8);
    let input = d.slots[usize::from(s)].input;
    assert_eq!(
        cmd(&mut d, TrbType::ConfigureEndpoint, input, 7, 0),
        Cc::SlotNotEnabled as u8
    );
}

#[test]
fn evaluate_context() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let input = d.slots[usize::from(s)].input;
    let dw = |d: &Driver, off: u64, v: u32| {
        sideband_device::xhci::dma::write(&d.mem, input + off, &v.to_le_bytes()).unwrap()
    };
    dw(&d, 0, 0);
    dw(&d, 4, 0b11);
    dw(&d, 32 + 4, 0x1234); // Max Exit Latency
    dw(&d, 32 + 8, 4 << 22); // Interrupter Target
    dw(&d, 64 + 4, (4 << 3) | (9 << 16)); // EP0 max packet 9
    let e = d.command(Trb::new(
        TrbType::EvaluateContext,
        input,
        0,
        u32::from(s) << 24,
    ));
    assert_eq!(code(&e), Cc::Success as u8);
    let slot = d.output_slot(s);
    assert_eq!(slot.max_exit_latency(), 0x1234);
    assert_eq!(slot.interrupter_target(), 4);
    assert_eq!(slot.root_hub_port(), 1, "not evaluated");
    assert_eq!(d.output_ep(s, 1).max_packet_size(), 9);
    // In the Enabled state: Context State Error.
    let t = d.enable_slot();
    let e = d.command(Trb::new(
        TrbType::EvaluateContext,
        input,
        0,
        u32::from(t) << 24,
    ));
    assert_eq!(code(&e), Cc::ContextStateError as u8);
}

#[test]
fn stop_endpoint_and_restart_by_doorbell() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    assert_eq!(
        ep_cmd(&mut d, TrbType::StopEndpoint, s, 2),
        Cc::Success as u8
    );
    let ep = d.output_ep(s, 2);
    assert_eq!(ep.state_bits(), EndpointState::Stopped as u8);
    let ring = d.slots[usize::from(s)].rings[2].unwrap();
    assert_eq!(ep.dequeue(), ring.enqueue);
    assert!(ep.dcs());
    assert_eq!(
        ep_cmd(&mut d, TrbType::StopEndpoint, s, 2),
        Cc::ContextStateError as u8
    );
    assert_eq!(
        ep_cmd(&mut d, TrbType::StopEndpoint, s, 9),
        Cc::EndpointNotEnabled as u8
    );
    assert_eq!(
        ep_cmd(&mut d, TrbType::StopEndpoint, s, 0),
        Cc::TrbError as u8
    );
    d.queue_bulk_out(s, 2, b"abc", 0);
    d.doorbell(s, 2);
    assert_eq!(d.output_ep(s, 2).state_bits(), EndpointState::Running as u8);
    let ev = d.transfer_events(0);
    assert_eq!(code(&ev[0]), Cc::Success as u8);
}

#[test]
fn stop_endpoint_reports_the_td_in_progress_on_its_interrupter() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.setup_interrupter(2, &[256], false);
    // Nothing to read back: the IN TD NAKs and stays in progress.
    let (trb, _) = d.queue_bulk_in(s, 3, 512, 2);
    d.doorbell(s, 3);
    assert!(d.transfer_events(2).is_empty());
    assert_eq!(
        ep_cmd(&mut d, TrbType::StopEndpoint, s, 3),
        Cc::Success as u8
    );
    let ev = d.transfer_events(2);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::Stopped as u8);
    assert_eq!(ev[0].parameter(), trb);
    assert!(d.transfer_events(0).is_empty());
    assert_eq!(d.output_ep(s, 3).dequeue(), trb);
}

#[test]
fn stall_reset_endpoint_set_dequeue() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    // Reset Endpoint on a Running endpoint.
    assert_eq!(
        ep_cmd(&mut d, TrbType::ResetEndpoint, s, 1),
        Cc::ContextStateError as u8
    );
    // GET_DESCRIPTOR(DEVICE_QUALIFIER) stalls on the loopback device.
    let (ev, _) = d.get_descriptor(s, 0x0600, 10);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::StallError as u8);
    let halted = d.output_ep(s, 1);
    assert_eq!(halted.state_bits(), EndpointState::Halted as u8);
    // A doorbell does not restart a halted endpoint.
    d.doorbell(s, 1);
    assert!(d.transfer_events(0).is_empty());
    // Set TR Dequeue needs Stopped.
    let ring = d.slots[usize::from(s)].rings[1].unwrap();
    let next = ring.enqueue | u64::from(ring.cycle);
    assert_eq!(
        cmd(&mut d, TrbType::SetTrDequeue, next, s, 1 << 16),
        Cc::ContextStateError as u8
    );
    assert_eq!(
        ep_cmd(&mut d, TrbType::ResetEndpoint, s, 1),
        Cc::Success as u8
    );
    assert_eq!(d.output_ep(s, 1).state_bits(), EndpointState::Stopped as u8);
    assert_eq!(
        cmd(&mut d, TrbType::SetTrDequeue, 0, s, 1 << 16),
        Cc::TrbError as u8
    );
    assert_eq!(
        cmd(&mut d, TrbType::SetTrDequeue, next, s, 1 << 16),
        Cc::Success as u8
    );
    assert_eq!(d.output_ep(s, 1).dequeue(), ring.enqueue);
    // The control endpoint works again.
    let (ev, data) = d.get_descriptor(s, 0x0100, 18);
    assert_eq!(code(&ev[0]), Cc::Success as u8);
    assert_eq!(data[1], 1);
    assert_eq!(
        ep_cmd(&mut d, TrbType::ResetEndpoint, s, 20),
        Cc::EndpointNotEnabled as u8
    );
}

#[test]
fn reset_device() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    assert_eq!(
        cmd(&mut d, TrbType::ResetDevice, 0, s, 0),
        Cc::Success as u8
    );
    let slot = d.output_slot(s);
    assert_eq!(slot.slot_state_bits(), SlotState::Default as u8);
    assert_eq!(slot.device_address(), 0);
    assert_eq!(slot.context_entries(), 1);
    assert_eq!(
        d.output_ep(s, 2).state_bits(),
        EndpointState::Disabled as u8
    );
    // The guest addresses it again.
    assert_eq!(d.address_device(s, 1, false), Cc::Success as u8);
    let t = d.enable_slot();
    assert_eq!(
        cmd(&mut d, TrbType::ResetDevice, 0, t, 0),
        Cc::ContextStateError as u8
    );
    let _ = SetupPacket::default();
}

#[test]
fn command_ring_wraps_with_toggle_cycle() {
    let mut d = Driver::new(Config::default());
    d.init();
    // 600 commands: more than two trips around a 255-TRB ring, and more than the event ring
    // holds, so the driver must consume as it goes.
    for _ in 0..600 {
        let e = d.command(Trb::new(TrbType::NoOpCommand, 0, 0, 0));
        assert_eq!(code(&e), Cc::Success as u8);
    }
    // 600 TRBs over 255-TRB laps: the producer is on its third lap, cycle back to 1.
    assert!(d.cmd.cycle);
}

#[test]
fn command_ring_stop_and_resume() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.command(Trb::new(TrbType::NoOpCommand, 0, 0, 0));
    let crcr_off = OP_BASE + op::CRCR;
    assert_eq!(u64::from(d.read32(crcr_off)) & crcr::CRR, crcr::CRR);
    d.write64(crcr_off, crcr::CA);
    assert_eq!(u64::from(d.read32(crcr_off)) & crcr::CRR, 0);
    let ev = d.events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::CommandRingStopped as u8);
    assert_eq!(ev[0].parameter(), d.cmd.enqueue);
    // The ring kept its dequeue pointer: the next doorbell resumes it.
    let e = d.command(Trb::new(TrbType::NoOpCommand, 0, 0, 0));
    assert_eq!(code(&e), Cc::Success as u8);
}

#[test]
fn commands_stay_bounded_per_doorbell() {
    let mut d = Driver::new(Config::default());
    d.init();
    for _ in 0..100 {
        d.cmd.push(&d.mem, Trb::new(TrbType::NoOpCommand, 0, 0, 0));
    }
    d.write32(sideband_device::xhci::regs::DB_BASE, 0);
    assert_eq!(d.xhci.stats().commands, 64);
    d.tick(1);
    assert_eq!(d.xhci.stats().commands, 100);
    assert_eq!(d.events(0).len(), 100);
}
