//! The guest sizes every TD, and the model buffers a TD whole before the device sees it: a TD
//! larger than its endpoint takes (MAX_TD_BYTES for bulk and interrupt, wLength's 16 bits for a
//! control Data Stage, the Max ESIT Payload for isochronous) gets TRB Error on the TRB that
//! passes the limit and halts the endpoint, before anything is allocated or reaches the device;
//! after Reset Endpoint and Set TR Dequeue Pointer the endpoint serves TDs again, and TDs of
//! exactly the limit still work.

use std::sync::{Arc, Mutex};

use sideband_device::usb::{BusTime, SetupPacket, TransferResult, UsbDevice, UsbSpeed};
use sideband_device::xhci::context::{EndpointState, EndpointType};
use sideband_device::xhci::testkit::{bits, code, Driver, PAGE};
use sideband_device::xhci::transfer::{MAX_CONTROL_BYTES, MAX_TD_BYTES};
use sideband_device::xhci::trb::{CompletionCode as Cc, Trb, TrbType};
use sideband_device::xhci::Config;

/// One call the device saw: endpoint (0 for control) and bytes offered.
type Calls = Arc<Mutex<Vec<(u8, usize)>>>;

/// A device that takes everything and fills every IN buffer whole.
#[derive(Debug)]
struct Sink(Calls);

impl UsbDevice for Sink {
    fn speed(&self) -> UsbSpeed {
        UsbSpeed::High
    }
    fn reset(&mut self) {}
    fn control(&mut self, s: SetupPacket, data: &mut [u8], _: BusTime) -> TransferResult {
        if s.request != 5 {
            self.0.lock().unwrap().push((0, data.len()));
        }
        data.fill(0x5a);
        TransferResult::Complete(data.len())
    }
    fn data_out(&mut self, ep: u8, data: &[u8], _: BusTime) -> TransferResult {
        self.0.lock().unwrap().push((ep, data.len()));
        TransferResult::Complete(data.len())
    }
    fn data_in(&mut self, ep: u8, buf: &mut [u8], _: BusTime) -> TransferResult {
        self.0.lock().unwrap().push((ep, buf.len()));
        buf.fill(0xa5);
        TransferResult::Complete(buf.len())
    }
}

/// A configured Sink with endpoints `eps` (DCI, type, max packet, interval).
fn sink(eps: &[(u8, EndpointType, u16, u8)]) -> (Driver, u8, Calls) {
    let mut d = Driver::new(Config::default());
    d.init();
    let calls = Calls::default();
    d.xhci.attach(1, Box::new(Sink(calls.clone()))).unwrap();
    d.reset_port(1);
    let s = d.enable_slot();
    assert_eq!(d.address_device(s, 1, false), Cc::Success as u8);
    assert_eq!(d.configure(s, eps, 0), Cc::Success as u8);
    d.events(0);
    d.irqs.take();
    (d, s, calls)
}

/// 64 KiB, the most one TRB carries.
const TRB_MAX: u32 = 1 << 16;

/// Queues a TD of `trbs` chained Normal TRBs of `len` bytes (the last one IOC) that all use the
/// same 64 KiB buffer; returns the TRB addresses.
fn queue_td(d: &mut Driver, s: u8, dci: u8, first: TrbType, trbs: usize, len: u32) -> Vec<u64> {
    let buf = d.alloc(u64::from(TRB_MAX) / PAGE);
    (0..trbs)
        .map(|i| {
            let ty = if i == 0 { first } else { TrbType::Normal };
            let last = i + 1 == trbs;
            let flags = if last { bits::IOC } else { bits::CH };
            d.queue(s, dci, Trb::new(ty, buf, len, flags))
        })
        .collect()
}

/// Reset Endpoint, then Set TR Dequeue Pointer to where the driver will queue next: Linux's
/// recovery from a halt.
fn recover(d: &mut Driver, s: u8, dci: u8) {
    let target = u32::from(s) << 24 | u32::from(dci) << 16;
    let e = d.command(Trb::new(TrbType::ResetEndpoint, 0, 0, target));
    assert_eq!(code(&e), Cc::Success as u8);
    let ring = d.slots[usize::from(s)].rings[usize::from(dci)].unwrap();
    let deq = ring.enqueue | u64::from(ring.cycle);
    let e = d.command(Trb::new(TrbType::SetTrDequeue, deq, 0, target));
    assert_eq!(code(&e), Cc::Success as u8);
}

/// Runs the TD just queued on `dci` and checks it was refused at `at` without reaching the
/// device, and that the endpoint halted there.
fn assert_refused(d: &mut Driver, s: u8, dci: u8, at: u64, calls: &Calls) {
    d.doorbell(s, dci);
    d.tick(16);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(code(&ev[0]), Cc::TrbError as u8);
    assert_eq!(ev[0].parameter(), at, "the TRB that passes the limit");
    let ep = d.output_ep(s, dci);
    assert_eq!(ep.state_bits(), EndpointState::Halted as u8);
    assert_eq!(ep.dequeue(), at);
    assert!(calls.lock().unwrap().is_empty(), "the device saw nothing");
}

#[test]
fn bulk_and_interrupt_tds_past_max_td_bytes_halt_with_trb_error() {
    let eps = [
        (2, EndpointType::BulkOut, 512, 0),
        (3, EndpointType::BulkIn, 512, 0),
        (5, EndpointType::InterruptIn, 64, 3),
    ];
    let (mut d, s, calls) = sink(&eps);
    let full = MAX_TD_BYTES / TRB_MAX as usize;
    for dci in [2, 3, 5] {
        // One full TRB more than the limit allows; the model never allocates its 4 MiB + 64 KiB.
        let td = queue_td(&mut d, s, dci, TrbType::Normal, full + 1, TRB_MAX);
        assert_refused(&mut d, s, dci, td[full], &calls);
        // Skipped by the driver, the TD is gone and the endpoint serves the next one.
        recover(&mut d, s, dci);
        queue_td(&mut d, s, dci, TrbType::Normal, 1, 100);
        d.doorbell(s, dci);
        d.tick(16);
        let ev = d.transfer_events(0);
        assert_eq!(ev.len(), 1);
        assert_eq!(code(&ev[0]), Cc::Success as u8);
        assert_eq!(
            d.output_ep(s, dci).state_bits(),
            EndpointState::Running as u8
        );
        assert_eq!(*calls.lock().unwrap(), vec![(dci / 2, 100)]);
        calls.lock().unwrap().clear();
    }
}

#[test]
fn bulk_tds_of_exactly_max_td_bytes_complete() {
    let eps = [
        (2, EndpointType::BulkOut, 512, 0),
        (3, EndpointType::BulkIn, 512, 0),
    ];
    let (mut d, s, calls) = sink(&eps);
    let full = MAX_TD_BYTES / TRB_MAX as usize;
    for dci in [2, 3] {
        let td = queue_td(&mut d, s, dci, TrbType::Normal, full, TRB_MAX);
        d.doorbell(s, dci);
        let ev = d.transfer_events(0);
        assert_eq!(ev.len(), 1);
        assert_eq!(code(&ev[0]), Cc::Success as u8);
        assert_eq!(ev[0].parameter(), td[full - 1]);
        assert_eq!(
            d.output_ep(s, dci).state_bits(),
            EndpointState::Running as u8
        );
    }
    assert_eq!(
        *calls.lock().unwrap(),
        vec![(1, MAX_TD_BYTES), (1, MAX_TD_BYTES)]
    );
}

/// A control transfer IN of `data` bytes in one Data Stage TRB and `extra` more in a chained
/// Normal TRB; returns the Data Stage's TRBs and the buffer.
fn queue_control_in(d: &mut Driver, s: u8, data: u32, extra: Option<u32>) -> (Vec<u64>, u64) {
    let setup = SetupPacket {
        request_type: 0xc0,
        request: 1,
        value: 0,
        index: 0,
        length: u16::MAX,
    };
    let p = u64::from_le_bytes(setup.to_bytes());
    let buf = d.alloc(2 * u64::from(TRB_MAX) / PAGE);
    d.queue(
        s,
        1,
        Trb::new(TrbType::SetupStage, p, 8, bits::IDT | (3 << 16)),
    );
    let chain = if extra.is_some() { bits::CH } else { 0 };
    let mut trbs = vec![d.queue(
        s,
        1,
        Trb::new(TrbType::DataStage, buf, data, bits::DIR_IN | chain),
    )];
    if let Some(n) = extra {
        let next = buf + u64::from(data);
        trbs.push(d.queue(s, 1, Trb::new(TrbType::Normal, next, n, 0)));
    }
    d.queue(s, 1, Trb::new(TrbType::StatusStage, 0, 0, bits::IOC));
    (trbs, buf)
}

#[test]
fn control_data_stage_past_wlength_halts_with_trb_error() {
    let (mut d, s, calls) = sink(&[(2, EndpointType::BulkOut, 512, 0)]);
    let max = MAX_CONTROL_BYTES as u32;
    // 65535 + 1 bytes: more than any wLength asks for.
    let (trbs, _) = queue_control_in(&mut d, s, max, Some(1));
    assert_refused(&mut d, s, 1, trbs[1], &calls);
    recover(&mut d, s, 1);
    // The largest legal Data Stage, 65535 bytes, goes through whole.
    let (_, buf) = queue_control_in(&mut d, s, max, None);
    d.doorbell(s, 1);
    let ev = d.transfer_events(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(code(&ev[0]), Cc::Success as u8);
    assert_eq!(*calls.lock().unwrap(), vec![(0, MAX_CONTROL_BYTES)]);
    let got = d.read_buffer(buf, MAX_CONTROL_BYTES + 1);
    assert!(got[..MAX_CONTROL_BYTES].iter().all(|&b| b == 0x5a));
    assert_eq!(got[MAX_CONTROL_BYTES], 0, "nothing past the Data Stage");
}

#[test]
fn isoch_td_past_max_esit_payload_halts_with_trb_error() {
    // Max Packet Size 192, no burst, Mult 0: the Max ESIT Payload is 192 bytes.
    let eps = [
        (2, EndpointType::IsochOut, 192, 3),
        (3, EndpointType::IsochIn, 192, 3),
    ];
    let (mut d, s, calls) = sink(&eps);
    d.tick(5);
    for dci in [2, 3] {
        let buf = d.alloc(1);
        let flags = bits::CH | bits::SIA;
        d.queue(s, dci, Trb::new(TrbType::Isoch, buf, 192, flags));
        let past = d.queue(s, dci, Trb::new(TrbType::Normal, buf, 1, bits::IOC));
        assert_refused(&mut d, s, dci, past, &calls);
        recover(&mut d, s, dci);
        // One interval's payload exactly is served.
        let flags = bits::IOC | bits::SIA;
        d.queue(s, dci, Trb::new(TrbType::Isoch, buf, 192, flags));
        d.doorbell(s, dci);
        d.tick(16);
        let ev = d.transfer_events(0);
        assert_eq!(code(&ev[0]), Cc::Success as u8, "{ev:?}");
        assert_eq!(
            d.output_ep(s, dci).state_bits(),
            EndpointState::Running as u8
        );
        assert_eq!(*calls.lock().unwrap(), vec![(1, 192)]);
        calls.lock().unwrap().clear();
    }
}
