//! Transfer TRBs and their events: short packets, Event Data, IOC-less TDs, immediate data,
//! NAK retries, stalls, interrupt polling, isochronous scheduling (SIA, Frame ID, Missed
//! Service, Ring Underrun/Overrun) and interrupter routing (xHCI 1.2 §4.10, §4.11, §4.14,
//! §4.17).

use std::sync::{Arc, Mutex};

use sideband_device::usb::{BusTime, SetupPacket, TransferResult, UsbDevice, UsbSpeed};
use sideband_device::xhci::context::{EndpointState, EndpointType};
use sideband_device::xhci::regs::{erdp, iman, rt};
use sideband_device::xhci::testkit::{bits, code, residual, Driver};
use sideband_device::xhci::transfer::LATE_FRAME_GRACE;
use sideband_device::xhci::trb::{CompletionCode as Cc, Trb, TrbType};
use sideband_device::xhci::Config;

#[derive(Debug, Default)]
struct Log {
    out: Vec<(u8, Vec<u8>, u64)>,
    ins: Vec<(u8, u64)>,
}

/// A device whose endpoints behave as the tests need: EP1 takes anything and returns
/// `in_len` bytes, EP2 IN NAKs `naks` times, EP3 stalls, EP4 has transaction errors.
#[derive(Debug)]
struct ScriptedDevice {
    log: Arc<Mutex<Log>>,
    in_len: usize,
    naks: u32,
}

impl UsbDevice for ScriptedDevice {
    fn speed(&self) -> UsbSpeed {
        UsbSpeed::High
    }
    fn reset(&mut self) {}
    fn control(&mut self, s: SetupPacket, _: &mut [u8], _: BusTime) -> TransferResult {
        if s.request == 5 {
            TransferResult::Complete(0)
        } else {
            TransferResult::Stall
        }
    }
    fn data_out(&mut self, ep: u8, data: &[u8], now: BusTime) -> TransferResult {
        self.log
            .lock()
            .unwrap()
            .out
            .push((ep, data.to_vec(), now.0));
        match ep {
            3 => TransferResult::Stall,
            4 => TransferResult::TransactionError,
            _ => TransferResult::Complete(data.len()),
        }
    }
    fn data_in(&mut self, ep: u8, buf: &mut [u8], now: BusTime) -> TransferResult {
        self.log.lock().unwrap().ins.push((ep, now.0));
        match ep {
            2 if self.naks > 0 => {
                self.naks -= 1;
                TransferResult::Nak
            }
            3 => TransferResult::Stall,
            _ => {
                let n = buf.len().min(self.in_len);
                for (i, b) in buf[..n].iter_mut().enumerate() {
                    *b = i as u8;
                }
                TransferResult::Complete(n)
            }
        }
    }
}

fn scripted(eps: &[(u8, EndpointType, u16, u8)], naks: u32) -> (Driver, u8, Arc<Mutex<Log>>) {
    let mut d = Driver::new(Config::default());
    d.init();
    let log = Arc::new(Mutex::new(Log::default()));
    let dev = ScriptedDevice {
        log: log.clone(),
        in_len: 100,
        naks,
    };
    d.xhci.attach(1, Box::new(dev)).unwrap();
    d.reset_port(1);
    let s = d.enable_slot();
    assert_eq!(d.address_device(s, 1, false), Cc::Success as u8);
    assert_eq!(d.configure(s, eps, 0), Cc::Success as u8);
    d.events(0);
    d.irqs.take();
    (d, s, log)
}

fn normal(buf: u64, len: u32, flags: u32) -> Trb {
    Trb::new(TrbType::Normal, buf, len, flags)
}

#[test]
fn short_packet_reports_residual() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.queue_bulk_out(s, 2, &[7u8; 100], 0);
    d.doorbell(s, 2);
    d.transfer_events(0);
    let (trb, buf) = d.queue_bulk_in(s, 3, 1024, 0);
    d.doorbell(s, 3);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::ShortPacket as u8);
    assert_eq!(residual(&ev[0]), 924);
    assert_eq!(ev[0].parameter(), trb);
    assert_eq!(d.read_buffer(buf, 100), vec![7u8; 100]);
}

#[test]
fn short_packet_mid_td_reports_once_on_the_short_trb() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.queue_bulk_out(s, 2, &[1u8; 100], 0);
    d.doorbell(s, 2);
    d.transfer_events(0);
    let buf = d.alloc(1);
    let first = d.queue(s, 3, normal(buf, 512, bits::CH | bits::ISP));
    d.queue(s, 3, normal(buf + 512, 512, bits::IOC | bits::ISP));
    d.doorbell(s, 3);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].parameter(), first);
    assert_eq!(code(&ev[0]), Cc::ShortPacket as u8);
    assert_eq!(residual(&ev[0]), 412);
}

#[test]
fn event_data_trb_reports_its_parameter_and_edtla() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let buf = d.buffer(&[3u8; 128]);
    d.queue(s, 2, normal(buf, 64, bits::CH));
    d.queue(s, 2, normal(buf + 64, 64, bits::CH));
    d.queue(
        s,
        2,
        Trb::new(TrbType::EventData, 0xdead_beef_0000_1234, 0, bits::IOC),
    );
    d.doorbell(s, 2);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].parameter(), 0xdead_beef_0000_1234);
    assert_eq!(ev[0].control() & (1 << 2), 1 << 2, "ED flag");
    assert_eq!(residual(&ev[0]), 128, "EDTLA");
    assert_eq!(code(&ev[0]), Cc::Success as u8);
}

#[test]
fn ioc_less_td_posts_nothing() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let buf = d.buffer(b"abcdef");
    d.queue(s, 2, normal(buf, 3, 0));
    let last = d.queue(s, 2, normal(buf + 3, 3, bits::IOC));
    d.doorbell(s, 2);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].parameter(), last);
    let (_, back) = d.queue_bulk_in(s, 3, 6, 0);
    d.doorbell(s, 3);
    d.transfer_events(0);
    assert_eq!(d.read_buffer(back, 6), b"abcdef");
}

#[test]
fn immediate_data_out() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let imm = u64::from_le_bytes(*b"hello\0\0\0");
    d.queue(s, 2, normal(imm, 5, bits::IOC | bits::IDT));
    d.doorbell(s, 2);
    assert_eq!(code(&d.transfer_events(0)[0]), Cc::Success as u8);
    let (_, back) = d.queue_bulk_in(s, 3, 5, 0);
    d.doorbell(s, 3);
    d.transfer_events(0);
    assert_eq!(d.read_buffer(back, 5), b"hello");
    // Immediate data longer than 8 bytes is a TRB Error.
    d.queue(s, 2, normal(imm, 9, bits::IOC | bits::IDT));
    d.doorbell(s, 2);
    assert_eq!(code(&d.transfer_events(0)[0]), Cc::TrbError as u8);
    assert_eq!(d.output_ep(s, 2).state_bits(), EndpointState::Halted as u8);
}

#[test]
fn nak_is_retried_on_later_ticks() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let (_, back) = d.queue_bulk_in(s, 3, 64, 0);
    d.doorbell(s, 3);
    assert!(d.transfer_events(0).is_empty());
    d.tick(3);
    assert!(d.transfer_events(0).is_empty());
    d.queue_bulk_out(s, 2, &[9u8; 64], 0);
    d.doorbell(s, 2);
    assert_eq!(d.transfer_events(0).len(), 1, "only the OUT so far");
    d.tick(1);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].endpoint_id(), 3);
    assert_eq!(d.read_buffer(back, 64), vec![9u8; 64]);
}

#[test]
fn no_op_transfer_trb() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let at = d.queue(s, 2, Trb::new(TrbType::NoOp, 0, 0, bits::IOC));
    d.doorbell(s, 2);
    let ev = d.transfer_events(0);
    assert_eq!(ev[0].parameter(), at);
    assert_eq!(code(&ev[0]), Cc::Success as u8);
}

#[test]
fn block_event_interrupt_posts_without_msix() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let buf = d.buffer(b"x");
    d.queue(s, 2, normal(buf, 1, bits::IOC | bits::BIT9));
    d.doorbell(s, 2);
    assert!(d.irqs.take().is_empty());
    assert_eq!(d.transfer_events(0).len(), 1);
}

#[test]
fn stall_and_transaction_error_halt() {
    let eps = [
        (6, EndpointType::BulkOut, 512, 0),
        (8, EndpointType::BulkOut, 512, 0),
    ];
    let (mut d, s, _) = scripted(&eps, 0);
    let buf = d.buffer(&[0; 8]);
    let at = d.queue(s, 6, normal(buf, 8, bits::IOC));
    d.doorbell(s, 6);
    let ev = d.transfer_events(0);
    assert_eq!(code(&ev[0]), Cc::StallError as u8);
    assert_eq!(ev[0].parameter(), at);
    let ep = d.output_ep(s, 6);
    assert_eq!(ep.state_bits(), EndpointState::Halted as u8);
    assert_eq!(ep.dequeue(), at);
    d.queue(s, 8, normal(buf, 8, bits::IOC));
    d.doorbell(s, 8);
    assert_eq!(
        code(&d.transfer_events(0)[0]),
        Cc::UsbTransactionError as u8
    );
    assert_eq!(d.output_ep(s, 8).state_bits(), EndpointState::Halted as u8);
}

#[test]
fn interrupt_in_polls_at_its_interval() {
    // Interval 3: every 8 microframes.
    let eps = [(5, EndpointType::InterruptIn, 8, 3)];
    let (mut d, s, log) = scripted(&eps, 2);
    d.queue_bulk_in(s, 5, 8, 0);
    d.doorbell(s, 5);
    for _ in 0..20 {
        d.tick(1);
    }
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::Success as u8);
    let times: Vec<u64> = log.lock().unwrap().ins.iter().map(|x| x.1).collect();
    assert_eq!(times.len(), 3);
    assert_eq!(times[1] - times[0], 8);
    assert_eq!(times[2] - times[1], 8);
}

fn isoch(buf: u64, len: u32, target: u16, flags: u32) -> Trb {
    Trb::new(TrbType::Isoch, buf, len | (u32::from(target) << 22), flags)
}

#[test]
fn isoch_sia_one_td_per_interval_then_underrun() {
    let eps = [(2, EndpointType::IsochOut, 192, 3)];
    let (mut d, s, log) = scripted(&eps, 0);
    d.tick(5);
    let buf = d.buffer(&[5u8; 192]);
    for _ in 0..4 {
        d.queue(s, 2, isoch(buf, 192, 0, bits::IOC | bits::SIA));
    }
    d.doorbell(s, 2);
    assert_eq!(d.transfer_events(0).len(), 1, "first TD at once");
    d.tick(7);
    assert!(d.transfer_events(0).is_empty());
    d.tick(1);
    assert_eq!(d.transfer_events(0).len(), 1);
    d.tick(16);
    assert_eq!(d.transfer_events(0).len(), 2);
    let times: Vec<u64> = log.lock().unwrap().out.iter().map(|x| x.2).collect();
    assert_eq!(times, vec![5, 13, 21, 29]);
    // The next service opportunity finds the ring empty.
    d.tick(8);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::RingUnderrun as u8);
    assert_eq!(ev[0].parameter(), 0);
    d.tick(32);
    assert!(d.transfer_events(0).is_empty(), "one underrun, then idle");
    assert_eq!(d.output_ep(s, 2).state_bits(), EndpointState::Running as u8);
}

#[test]
fn isoch_frame_id_waits_for_its_frame_or_misses() {
    let eps = [(2, EndpointType::IsochOut, 192, 0)];
    let (mut d, s, log) = scripted(&eps, 0);
    d.tick(20);
    let frame = (d.xhci.uframe() >> 3) as u32;
    let buf = d.buffer(&[1u8; 64]);
    d.queue(
        s,
        2,
        isoch(buf, 64, 0, bits::IOC | (((frame + 3) & 0x7ff) << 20)),
    );
    d.doorbell(s, 2);
    assert!(d.transfer_events(0).is_empty());
    while d.transfer_events(0).is_empty() {
        d.tick(1);
        assert!(d.now.0 < 100);
    }
    assert_eq!(log.lock().unwrap().out[0].2, u64::from(frame + 3) * 8);
    // A frame two frames past (a host that ran late): served at once and counted.
    let now_frame = (d.xhci.uframe() >> 3) as u32;
    d.queue(
        s,
        2,
        isoch(buf, 64, 0, bits::IOC | (((now_frame + 2046) & 0x7ff) << 20)),
    );
    d.doorbell(s, 2);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::Success as u8);
    assert_eq!(d.xhci.stats().late_frame_tds, 1);
    assert_eq!(log.lock().unwrap().out.len(), 2);
    // A frame that passed longer ago than the grace: Missed Service Error, the full length as
    // residual.
    let now_frame = (d.xhci.uframe() >> 3) as u32;
    let at = d.queue(
        s,
        2,
        isoch(
            buf,
            64,
            0,
            bits::IOC | (((now_frame + 2047 - LATE_FRAME_GRACE as u32) & 0x7ff) << 20),
        ),
    );
    d.doorbell(s, 2);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::MissedService as u8);
    assert_eq!(ev[0].parameter(), at);
    assert_eq!(residual(&ev[0]), 64);
    assert_eq!(log.lock().unwrap().out.len(), 2);
    assert_eq!(d.xhci.stats().late_frame_tds, 1);
}

#[test]
fn isoch_in_short_then_overrun_on_the_trb_interrupter() {
    let eps = [(3, EndpointType::IsochIn, 192, 0)];
    let (mut d, s, _) = scripted(&eps, 0);
    d.setup_interrupter(4, &[256], false);
    let buf = d.alloc(1);
    d.queue(s, 3, isoch(buf, 192, 4, bits::IOC | bits::ISP | bits::SIA));
    d.doorbell(s, 3);
    let ev = d.transfer_events(4);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::ShortPacket as u8);
    assert_eq!(residual(&ev[0]), 92);
    assert_eq!(d.read_buffer(buf, 4), vec![0, 1, 2, 3]);
    d.tick(1);
    let ev = d.transfer_events(4);
    assert_eq!(code(&ev[0]), Cc::RingOverrun as u8);
    assert!(d.transfer_events(0).is_empty(), "nothing on the primary");
    assert!(d.irqs.take().is_empty(), "IE clear on interrupter 4");
}

#[test]
fn transfer_events_follow_the_interrupter_target() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.setup_interrupter(2, &[256], true);
    d.setup_interrupter(3, &[256], false);
    d.queue_bulk_out(s, 2, b"to two", 2);
    d.doorbell(s, 2);
    assert_eq!(d.irqs.take(), vec![2]);
    assert_eq!(d.transfer_events(2).len(), 1);
    d.queue_bulk_out(s, 2, b"to three", 3);
    d.doorbell(s, 2);
    assert!(d.irqs.take().is_empty());
    assert!(d.transfer_events(0).is_empty());
    // With IE clear the event is posted but IP waits for IE (see Interrupter::service).
    let im = d.read32(Driver::ir(3, rt::IMAN));
    assert_eq!(im & iman::IP, 0);
    let ev = d.transfer_events(3);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::Success as u8);
    let st = d.xhci.interrupter_stats(3).unwrap();
    assert_eq!((st.events, st.interrupts), (1, 0));
    assert_eq!(d.xhci.interrupter_stats(2).unwrap().interrupts, 1);
    // A target beyond MaxIntrs falls back to interrupter 0.
    d.queue_bulk_out(s, 2, b"nowhere", 100);
    d.doorbell(s, 2);
    assert_eq!(d.transfer_events(0).len(), 1);
    assert_eq!(d.irqs.take(), vec![0]);
}

#[test]
fn multi_segment_event_ring_wraps() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.setup_interrupter(1, &[16, 32, 16], false);
    let mut seen = Vec::new();
    let mut queued = Vec::new();
    for i in 0..200u32 {
        queued.push(d.queue_bulk_out(s, 2, &i.to_le_bytes(), 1));
        d.doorbell(s, 2);
        if i % 10 == 9 {
            seen.extend(d.transfer_events(1).iter().map(|e| e.parameter()));
        }
    }
    assert_eq!(seen, queued);
    assert_eq!(d.xhci.interrupter_stats(1).unwrap().dropped, 0);
}

#[test]
fn event_ring_full_then_recovers() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.setup_interrupter(1, &[16], false);
    for i in 0..20u32 {
        d.queue_bulk_out(s, 2, &i.to_le_bytes(), 1);
        d.doorbell(s, 2);
    }
    let ev = d.events(1);
    assert_eq!(ev.len(), 15);
    assert_eq!(ev[14].trb_type(), Some(TrbType::HostControllerEvent));
    assert_eq!(code(&ev[14]), Cc::EventRingFullError as u8);
    assert_eq!(d.xhci.interrupter_stats(1).unwrap().dropped, 6);
    d.queue_bulk_out(s, 2, b"again", 1);
    d.doorbell(s, 2);
    let ev = d.transfer_events(1);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::Success as u8);
}

#[test]
fn secondary_interrupter_removed_as_linux_does() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    d.setup_interrupter(1, &[256], false);
    d.queue_bulk_out(s, 2, b"one", 1);
    d.doorbell(s, 2);
    // xhci_remove_secondary_interrupter: IE off, consume, ERSTSZ = 0, ERDP | DESI | EHB.
    d.write32(Driver::ir(1, rt::IMAN), 0);
    let sw_deq = d.read32(Driver::ir(1, rt::ERDP)) as u64 & erdp::PTR_MASK;
    d.write32(Driver::ir(1, rt::IMAN), iman::IP);
    d.write32(Driver::ir(1, rt::ERSTSZ), 0);
    d.write64(
        Driver::ir(1, rt::ERDP),
        sw_deq | erdp::DESI_MASK | erdp::EHB,
    );
    d.queue_bulk_out(s, 2, b"two", 1);
    d.doorbell(s, 2);
    assert_eq!(d.xhci.interrupter_stats(1).unwrap().dropped, 1);
    assert_eq!(d.xhci.usbsts() & 0b101, 0, "still running, no HSE");
    // The driver creates it again: events flow.
    d.setup_interrupter(1, &[256], false);
    d.queue_bulk_out(s, 2, b"three", 1);
    d.doorbell(s, 2);
    assert_eq!(d.transfer_events(1).len(), 1);
}

#[test]
fn control_no_data_and_out_data_stage() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    // SET_CONFIGURATION without data.
    d.queue_control_nodata(
        s,
        SetupPacket {
            request_type: 0,
            request: 9,
            value: 1,
            index: 0,
            length: 0,
        },
    );
    d.doorbell(s, 1);
    assert_eq!(code(&d.transfer_events(0)[0]), Cc::Success as u8);
    // GET_CONFIGURATION returns 1.
    let setup = SetupPacket {
        request_type: 0x80,
        request: 8,
        value: 0,
        index: 0,
        length: 1,
    };
    let buf = d.queue_control_in(s, setup);
    d.doorbell(s, 1);
    assert_eq!(code(&d.transfer_events(0)[0]), Cc::Success as u8);
    assert_eq!(d.read_buffer(buf, 1), vec![1]);
}

#[test]
fn control_short_data_stage_reports_short_then_status() {
    let (mut d, s) = Driver::with_loopback(Config::default());
    let (ev, data) = d.get_descriptor(s, 0x0100, 64);
    assert_eq!(ev.len(), 2);
    assert_eq!(code(&ev[0]), Cc::ShortPacket as u8);
    assert_eq!(residual(&ev[0]), 64 - 18);
    assert_eq!(code(&ev[1]), Cc::Success as u8);
    assert_eq!(data[0], 18);
}
