//! Bulk TRBs per second through the xHCI model: the test driver queues 512-byte Normal TRBs
//! in TDs of four (IOC on the last) on the loopback device's OUT and IN rings, rings the
//! doorbells and reaps the events, until about two seconds have passed.
//! Run with `cargo bench -p sideband-device --bench xhci_trbs`.

use std::time::{Duration, Instant};

use sideband_device::xhci::testkit::{bits, Driver};
use sideband_device::xhci::trb::{Trb, TrbType};
use sideband_device::xhci::Config;

const TRB_LEN: u32 = 512;
const TD_TRBS: usize = 4;
const TDS_PER_BATCH: usize = 63;

fn queue_batch(d: &mut Driver, slot: u8, dci: u8, buf: u64) {
    for _ in 0..TDS_PER_BATCH {
        for i in 0..TD_TRBS {
            let last = i + 1 == TD_TRBS;
            let flags = if last { bits::IOC } else { bits::CH } | bits::ISP;
            let at = buf + (i as u64) * u64::from(TRB_LEN);
            d.queue(slot, dci, Trb::new(TrbType::Normal, at, TRB_LEN, flags));
        }
    }
    d.doorbell(slot, dci);
}

fn main() {
    let (mut d, slot) = Driver::with_loopback(Config::default());
    let out = d.buffer(&[0x5a; TD_TRBS * TRB_LEN as usize]);
    let back = d.alloc(1);
    let start_trbs = d.xhci.stats().trbs;
    let started = Instant::now();
    let mut batches = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        queue_batch(&mut d, slot, 2, out);
        let n = d.transfer_events(0).len();
        queue_batch(&mut d, slot, 3, back);
        let m = d.transfer_events(0).len();
        assert_eq!((n, m), (TDS_PER_BATCH, TDS_PER_BATCH), "every TD completes");
        batches += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let trbs = d.xhci.stats().trbs - start_trbs;
    let mib = (trbs * u64::from(TRB_LEN)) as f64 / f64::from(1 << 20);
    println!(
        "xhci_trbs: {trbs} bulk TRBs in {elapsed:.2} s ({batches} batches): {:.2} M TRBs/s, {:.0} MiB/s",
        trbs as f64 / elapsed / 1e6,
        mib / elapsed
    );
}
