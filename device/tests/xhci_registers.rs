//! Registers as Linux reads and writes them: capabilities and the extended capability walk,
//! run/stop, HCRST, MFINDEX, ports through PORTSC, interrupt moderation, HCE.

use sideband_device::usb::{BusTime, SetupPacket, TransferResult, UsbDevice, UsbSpeed};
use sideband_device::xhci::regs::{self, cap, op, pls, portsc, rt, usbcmd, usbsts, OP_BASE};
use sideband_device::xhci::testkit::Driver;
use sideband_device::xhci::trb::TrbType;
use sideband_device::xhci::{Config, LoopbackDevice};

#[derive(Debug)]
struct SuperSpeedDummy;

impl UsbDevice for SuperSpeedDummy {
    fn speed(&self) -> UsbSpeed {
        UsbSpeed::Super
    }
    fn reset(&mut self) {}
    fn control(&mut self, _: SetupPacket, _: &mut [u8], _: BusTime) -> TransferResult {
        TransferResult::Complete(0)
    }
    fn data_out(&mut self, _: u8, d: &[u8], _: BusTime) -> TransferResult {
        TransferResult::Complete(d.len())
    }
    fn data_in(&mut self, _: u8, _: &mut [u8], _: BusTime) -> TransferResult {
        TransferResult::Nak
    }
}

#[test]
fn capabilities_and_supported_protocols_as_linux_walks_them() {
    let d = Driver::new(Config {
        max_interrupters: 9,
        usb2_ports: 1,
        usb3_ports: 3,
        ..Config::default()
    });
    assert_eq!(d.read32(0) & 0xff, 0x40);
    assert_eq!(d.read32(0) >> 16, 0x0110);
    let p1 = d.read32(cap::HCSPARAMS1);
    assert_eq!((p1 >> 8) & 0x7ff, 9);
    assert_eq!(p1 >> 24, 4);
    assert_eq!(d.read32(cap::DBOFF), 0x2000);
    assert_eq!(d.read32(cap::RTSOFF), 0x1000);
    assert_eq!(d.read32(cap::HCSPARAMS2) >> 21, 0, "no scratchpads");
    // Walk the extended capability list as xhci_find_next_ext_cap does.
    let mut at = u64::from(d.read32(cap::HCCPARAMS1) >> 16) * 4;
    let mut protocols = Vec::new();
    while at != 0 {
        let head = d.read32(at);
        if head & 0xff == 2 {
            assert_eq!(d.read32(at + 4), u32::from_le_bytes(*b"USB "));
            let ports = d.read32(at + 8);
            protocols.push((head >> 24, ports & 0xff, (ports >> 8) & 0xff));
        }
        let next = u64::from((head >> 8) & 0xff) * 4;
        at = if next == 0 { 0 } else { at + next };
    }
    assert_eq!(protocols, vec![(2, 1, 1), (3, 2, 3)]);
}

#[test]
fn run_stop_and_mfindex() {
    let mut d = Driver::new(Config::default());
    assert_eq!(d.xhci.usbsts() & usbsts::HCH, usbsts::HCH);
    assert_eq!(d.read32(OP_BASE + op::PAGESIZE), 1);
    d.init();
    assert_eq!(d.xhci.usbsts() & usbsts::HCH, 0);
    let mf = regs::RT_BASE + rt::MFINDEX;
    let start = d.read32(mf);
    d.tick(10);
    assert_eq!(d.read32(mf), start + 10);
    d.write32(OP_BASE + op::USBCMD, 0);
    assert_eq!(d.xhci.usbsts() & usbsts::HCH, usbsts::HCH);
    let stopped = d.read32(mf);
    d.tick(10);
    assert_eq!(d.read32(mf), stopped, "MFINDEX stops while halted");
    d.write32(OP_BASE + op::USBCMD, usbcmd::RS);
    d.tick(0x4000);
    assert_eq!(d.read32(mf), stopped, "14 bits wrap");
}

#[test]
fn save_and_restore_state_while_halted_keep_slots_and_report_no_error() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.write32(OP_BASE + op::USBCMD, 0);
    d.write32(OP_BASE + op::USBCMD, usbcmd::CSS);
    let st = d.xhci.usbsts();
    assert_eq!(
        st & (usbsts::SSS | usbsts::SRE),
        0,
        "saved at once, no error"
    );
    d.write32(OP_BASE + op::USBCMD, usbcmd::CRS);
    assert_eq!(d.xhci.usbsts() & (usbsts::RSS | usbsts::SRE), 0);
    let dcbaap = d.read32(OP_BASE + op::DCBAAP);
    assert_ne!(dcbaap, 0, "the controller's state survived the cycle");
    d.write32(OP_BASE + op::USBCMD, usbcmd::RS);
    assert_eq!(d.xhci.usbsts() & usbsts::HCH, 0);
    // The slot still works after the cycle.
    assert!(s > 0);
}

#[test]
fn hcrst_resets_everything_but_attached_devices() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.write32(OP_BASE + op::USBCMD, usbcmd::HCRST);
    assert_eq!(d.read32(OP_BASE + op::USBCMD), 0);
    assert_eq!(d.read32(OP_BASE + op::DCBAAP), 0);
    assert_eq!(d.read32(Driver::ir(0, rt::ERSTSZ)), 0);
    let sc = d.read32(Driver::portsc(1));
    assert!(sc & portsc::CCS != 0 && sc & portsc::CSC != 0 && sc & portsc::PED == 0);
    d.init();
    // Slots are gone.
    d.doorbell(s, 1);
    assert!(d.events(0).is_empty());
    assert_eq!(d.enable_slot(), 1);
}

#[test]
fn port_reset_posts_a_port_status_change_event() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.xhci.attach(2, Box::new(LoopbackDevice::new())).unwrap();
    d.tick(1);
    d.events(0);
    assert!(d.xhci.usbsts() & usbsts::PCD != 0);
    d.write32(OP_BASE + op::USBSTS, usbsts::PCD);
    d.write32(Driver::portsc(2), portsc::PP | portsc::PR);
    let ev = d.events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].trb_type(), Some(TrbType::PortStatusChangeEvent));
    assert_eq!(ev[0].parameter() >> 24, 2);
    let sc = d.read32(Driver::portsc(2));
    assert!(sc & portsc::PRC != 0 && sc & portsc::PED != 0);
    assert_eq!((sc >> portsc::PLS_SHIFT) & 0xf, pls::U0);
    // Clearing a change bit posts nothing; a second reset posts again only once PRC is 0.
    d.write32(Driver::portsc(2), sc & portsc::CHANGE_BITS);
    assert!(d.events(0).is_empty());
    // Wrong speed for the port, and port numbers out of range.
    assert!(d.xhci.attach(3, Box::new(LoopbackDevice::new())).is_err());
    assert!(d.xhci.attach(0, Box::new(LoopbackDevice::new())).is_err());
    assert!(d.xhci.detach(9).is_err());
}

#[test]
fn usb3_port_warm_reset() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.xhci.attach(3, Box::new(SuperSpeedDummy)).unwrap();
    d.tick(1);
    let sc = d.read32(Driver::portsc(3));
    assert!(sc & portsc::PED != 0, "USB 3 ports enable themselves");
    assert_eq!((sc >> portsc::SPEED_SHIFT) & 0xf, 4);
    d.write32(Driver::portsc(3), sc & portsc::CHANGE_BITS);
    d.events(0);
    d.write32(Driver::portsc(3), portsc::WPR);
    let sc = d.read32(Driver::portsc(3));
    assert!(sc & portsc::WRC != 0 && sc & portsc::PRC != 0);
    assert_eq!(d.events(0).len(), 1);
}

#[test]
fn moderation_holds_interrupts_until_the_interval_passes() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    // 8000 × 250 ns = 16 microframes.
    d.write32(Driver::ir(0, rt::IMOD), 8000);
    d.queue_bulk_out(s, 2, b"1", 0);
    d.doorbell(s, 2);

    assert_eq!(d.irqs.take(), vec![0]);
    d.events(0);
    d.queue_bulk_out(s, 2, b"2", 0);
    d.doorbell(s, 2);
    assert!(d.irqs.take().is_empty());
    d.tick(15);
    assert!(d.irqs.take().is_empty());
    d.tick(1);
    assert_eq!(d.irqs.take(), vec![0]);
    assert!(d.xhci.usbsts() & usbsts::EINT != 0);
    // INTE clear: IP is set but no MSI-X.
    d.events(0);
    d.write32(OP_BASE + op::USBCMD, usbcmd::RS);
    d.tick(20);
    d.queue_bulk_out(s, 2, b"3", 0);
    d.doorbell(s, 2);
    assert!(d.irqs.take().is_empty());
}

#[test]
fn host_controller_error_needs_hcrst() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.xhci.inject_host_controller_error();
    assert!(d.xhci.usbsts() & usbsts::HCE != 0);
    d.write32(OP_BASE + op::USBCMD, usbcmd::RS);
    assert!(!d.xhci.is_running());
    d.init();
    assert!(d.xhci.is_running());
    d.xhci.inject_host_system_error();
    assert!(d.xhci.usbsts() & usbsts::HSE != 0);
    d.write32(OP_BASE + op::USBSTS, usbsts::HSE);
    assert_eq!(d.xhci.usbsts() & usbsts::HSE, 0);
}

#[test]
fn injected_fatal_error_halts_and_interrupts_so_the_handler_sees_it() {
    let mut d = Driver::new(Config::default());
    d.init();
    d.irqs.take();
    d.xhci.inject_fatal_error(false);
    d.tick(1);
    assert!(!d.xhci.is_running());
    let sts = d.read32(OP_BASE + op::USBSTS);
    assert_eq!(
        sts & (usbsts::HSE | usbsts::EINT | usbsts::HCH),
        usbsts::HSE | usbsts::EINT | usbsts::HCH
    );
    assert_eq!(d.irqs.take(), vec![0], "MSI-X vector 0 fires");
    d.init();
    d.xhci.inject_fatal_error(true);
    d.tick(1);
    assert!(d.read32(OP_BASE + op::USBSTS) & usbsts::HCE != 0);
    assert_eq!(d.irqs.take(), vec![0]);
}

#[test]
fn a_controller_off_the_bus_reads_all_ones_and_ignores_doorbells_until_revived() {
    let (mut d, slot) = Driver::with_loopback(Config::default());
    d.xhci.fall_off_bus();
    assert!(d.xhci.is_gone());
    assert_eq!(d.read32(OP_BASE + op::USBSTS), u32::MAX);
    assert_eq!(d.xhci.mmio_read(OP_BASE + op::DCBAAP, 8), u64::MAX);
    assert_eq!(d.xhci.mmio_read(0, 1), 0xff);
    d.queue_bulk_out(slot, 2, &[1, 2, 3], 0);
    d.doorbell(slot, 2);
    d.tick(8);
    assert!(d.irqs.take().is_empty(), "nothing runs off the bus");
    d.write32(OP_BASE + op::USBCMD, usbcmd::HCRST);
    assert_eq!(
        d.read32(OP_BASE + op::USBSTS),
        u32::MAX,
        "HCRST is lost too"
    );
    d.xhci.revive();
    assert!(!d.xhci.is_gone());
    assert_eq!(
        d.read32(OP_BASE + op::USBSTS) & usbsts::HCH,
        usbsts::HCH,
        "back halted, as after power-on"
    );
    assert_eq!(d.read32(OP_BASE + op::DCBAAP), 0);
    d.init();
    assert!(d.xhci.is_running());
}
