//! The guest is untrusted: broken rings, tables, pointers and doorbells get the completion
//! codes the specification prescribes, or Host System Error for memory outside guest RAM, and
//! never a panic or an unbounded loop.

use sideband_device::xhci::context::EndpointState;
use sideband_device::xhci::dma;
use sideband_device::xhci::regs::{self, op, rt, usbcmd, usbsts, OP_BASE};
use sideband_device::xhci::testkit::{bits, code, Driver, RAM_BASE, RAM_SIZE};
use sideband_device::xhci::trb::{CompletionCode as Cc, Trb, TrbType};
use sideband_device::xhci::{fuzz, Config};

const OUTSIDE: u64 = RAM_BASE + RAM_SIZE as u64 + 0x1000;

fn halted_with_hse(d: &Driver) -> bool {
    let sts = d.xhci.usbsts();
    sts & usbsts::HSE != 0 && sts & usbsts::HCH != 0
}

#[test]
fn transfer_ring_of_links_pointing_at_each_other() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let ring = d.slots[usize::from(s)].rings[2].unwrap().enqueue;
    let a = Trb::new(TrbType::Link, ring + 16, 0, bits::CYCLE);
    let b = Trb::new(TrbType::Link, ring, 0, bits::CYCLE);
    dma::write(&d.mem, ring, &a.to_bytes()).unwrap();
    dma::write(&d.mem, ring + 16, &b.to_bytes()).unwrap();
    d.doorbell(s, 2);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::TrbError as u8);
    assert_eq!(d.output_ep(s, 2).state_bits(), EndpointState::Halted as u8);
    assert!(!halted_with_hse(&d));
}

#[test]
fn command_ring_of_links() {
    let mut d = Driver::new(Config::default());
    d.init();
    let ring = d.cmd.base;
    let a = Trb::new(TrbType::Link, ring, 0, bits::CYCLE);
    dma::write(&d.mem, ring, &a.to_bytes()).unwrap();
    d.write32(regs::DB_BASE, 0);
    let ev = d.events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::TrbError as u8);
    assert!(!halted_with_hse(&d));
}

#[test]
fn td_chain_longer_than_the_ring() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    // Fill the whole ring with chained TRBs; the link at its end toggles the cycle, so the
    // chain's end never comes: the TD waits, nothing is executed.
    let buf = d.alloc(1);
    for _ in 0..255 {
        d.queue(s, 2, Trb::new(TrbType::Normal, buf, 8, bits::CH));
    }
    d.doorbell(s, 2);
    d.tick(4);
    assert!(d.transfer_events(0).is_empty());
    // The same ring with a link that does not toggle: the chain comes round to its start.
    let (mut d, s) = Driver::with_loopback(Config::default());
    let ring = d.slots[usize::from(s)].rings[2].unwrap().base;
    for i in 0..4u64 {
        let t = Trb::new(TrbType::Normal, buf, 8, bits::CH | bits::CYCLE);
        dma::write(&d.mem, ring + 16 * i, &t.to_bytes()).unwrap();
    }
    let link = Trb::new(TrbType::Link, ring, 0, bits::CYCLE | bits::CH);
    dma::write(&d.mem, ring + 64, &link.to_bytes()).unwrap();
    d.doorbell(s, 2);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::TrbError as u8);
    assert_eq!(ev[0].parameter(), ring);
}

#[test]
fn zero_length_erst_on_the_primary_interrupter() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.write32(Driver::ir(0, rt::ERSTSZ), 0);
    d.cmd.push(&d.mem, Trb::new(TrbType::NoOpCommand, 0, 0, 0));
    d.write32(regs::DB_BASE, 0);
    assert_eq!(d.xhci.stats().commands, 1);
    assert_eq!(d.xhci.interrupter_stats(0).unwrap().dropped, 1);
    assert!(d.irqs.take().is_empty());
    assert!(!halted_with_hse(&d));
}

#[test]
fn erdp_outside_the_segment_is_ignored() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.write64(Driver::ir(0, rt::ERDP), 0x1234_5670);
    d.write64(Driver::ir(0, rt::ERDP), OUTSIDE);
    d.queue_bulk_out(s, 2, b"still fine", 0);
    d.doorbell(s, 2);
    assert_eq!(d.transfer_events(0).len(), 1);
    assert!(!halted_with_hse(&d));
}

#[test]
fn doorbells_for_disabled_slots_and_endpoints() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.doorbell(9, 1);
    d.doorbell(200, 1);
    d.doorbell(s, 0);
    d.doorbell(s, 31);
    d.doorbell(s, 255);
    d.write32(regs::DB_BASE, 5);
    assert!(d.events(0).is_empty());
    assert!(!halted_with_hse(&d));
    assert_eq!(d.xhci.stats().trbs, 0);
}

#[test]
fn transfer_buffer_outside_ram_is_host_system_error() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.queue(s, 2, Trb::new(TrbType::Normal, OUTSIDE, 64, bits::IOC));
    d.doorbell(s, 2);
    assert!(halted_with_hse(&d));
    assert_eq!(d.xhci.stats().host_system_errors, 1);
    // Halted: further doorbells do nothing; HCRST brings it back.
    d.doorbell(s, 2);
    assert_eq!(d.xhci.stats().host_system_errors, 1);
    d.init();
    assert_eq!(d.xhci.usbsts() & (usbsts::HSE | usbsts::HCH), 0);
}

#[test]
fn command_ring_outside_ram_is_host_system_error() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.write32(OP_BASE + op::USBCMD, 0);
    d.write64(OP_BASE + op::CRCR, OUTSIDE | 1);
    d.write32(OP_BASE + op::USBCMD, usbcmd::RS);
    d.write32(regs::DB_BASE, 0);
    assert!(halted_with_hse(&d));
}

#[test]
fn erst_outside_ram_is_host_system_error() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.write32(Driver::ir(1, rt::ERSTSZ), 1);
    d.write64(Driver::ir(1, rt::ERSTBA), OUTSIDE);
    assert!(halted_with_hse(&d));
}

#[test]
fn erst_with_bad_segment_size_disables_the_ring() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let erst = d.alloc(1);
    let mut e = [0u8; 16];
    e[0..8].copy_from_slice(&d.alloc(1).to_le_bytes());
    e[8..10].copy_from_slice(&5u16.to_le_bytes());
    dma::write(&d.mem, erst, &e).unwrap();
    d.write32(Driver::ir(1, rt::ERSTSZ), 1);
    d.write64(Driver::ir(1, rt::ERSTBA), erst);
    // ERSTSZ above 2^ERST Max.
    d.write32(Driver::ir(2, rt::ERSTSZ), 100);
    d.write64(Driver::ir(2, rt::ERSTBA), erst);
    d.queue_bulk_out(s, 2, b"a", 1);
    d.queue_bulk_out(s, 2, b"b", 2);
    d.doorbell(s, 2);
    assert_eq!(d.xhci.interrupter_stats(1).unwrap().dropped, 1);
    assert_eq!(d.xhci.interrupter_stats(2).unwrap().dropped, 1);
    assert!(!halted_with_hse(&d));
}

#[test]
fn bad_trbs_on_transfer_rings() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    // A command TRB on a bulk ring.
    d.queue(s, 2, Trb::new(TrbType::EnableSlot, 0, 0, bits::IOC));
    d.doorbell(s, 2);
    assert_eq!(code(&d.transfer_events(0)[0]), Cc::TrbError as u8);
    // A Setup Stage without immediate data on EP0.
    d.queue(s, 1, Trb::new(TrbType::SetupStage, 0, 8, 0));
    d.queue(s, 1, Trb::new(TrbType::StatusStage, 0, 0, bits::IOC));
    d.doorbell(s, 1);
    assert_eq!(code(&d.transfer_events(0)[0]), Cc::TrbError as u8);
    assert_eq!(d.output_ep(s, 1).state_bits(), EndpointState::Halted as u8);
}

#[test]
fn control_transfer_with_a_bad_stage_order() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let setup = u64::from_le_bytes([0x80, 6, 0, 1, 0, 0, 18, 0]);
    d.queue(
        s,
        1,
        Trb::new(TrbType::SetupStage, setup, 8, bits::IDT | (3 << 16)),
    );
    d.queue(s, 1, Trb::new(TrbType::Normal, 0, 0, bits::IOC));
    d.doorbell(s, 1);
    assert_eq!(code(&d.transfer_events(0)[0]), Cc::TrbError as u8);
}

#[test]
fn mmio_oddities() {
    let mut d = Driver::new(Config::default());
    d.init();
    // Reads of holes are zero; odd sizes all-ones; reads never change state.
    assert_eq!(d.xhci.mmio_read(0x900, 4), 0);
    assert_eq!(d.xhci.mmio_read(0x2f00, 4), 0);
    assert_eq!(d.xhci.mmio_read(0xffff_fff0, 8), 0);
    assert_eq!(d.xhci.mmio_read(0, 3), u64::MAX);
    assert_eq!(d.xhci.mmio_read(0, 1), 0x40);
    assert_eq!(d.xhci.mmio_read(2, 2), 0x0110);
    // Sub-dword and unaligned writes are dropped.
    d.xhci.mmio_write(&d.mem, OP_BASE + op::USBCMD, 1, 0);
    d.xhci.mmio_write(&d.mem, OP_BASE + op::USBCMD + 1, 4, 0);
    assert_eq!(d.xhci.usbsts() & usbsts::HCH, 0);
    // Writes to capability registers and far offsets are ignored.
    d.write32(0x4, 0);
    d.write32(0xfff0, 0xffff_ffff);
    assert_eq!(d.read32(0x4) & 0xff, 32);
    // Save State while running is ignored: no error, and the controller keeps running.
    d.write32(
        OP_BASE + op::USBCMD,
        usbcmd::RS | usbcmd::INTE | usbcmd::CSS,
    );
    assert_eq!(d.xhci.usbsts() & (usbsts::SRE | usbsts::HCH), 0);
}

#[test]
fn fuzz_entry_point_survives_junk() {
    let mut seed = 0x1234_5678u32;
    for len in [0usize, 1, 7, 64, 300, 5000] {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        fuzz::run(&data);
    }
}
