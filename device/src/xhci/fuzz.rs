//! A fuzz-friendly entry point: one byte slice drives a guest-memory image, MMIO writes,
//! doorbells, time and hot-plug against a fresh controller. A cargo-fuzz target only needs
//! `fuzz_target!(|data: &[u8]| sideband_device::xhci::fuzz::run(data));`.
//!
//! Input layout: two bytes (little-endian) give the image length L; the next L bytes are
//! copied to guest address 0 (64 KiB of RAM); the rest is a list of 7-byte operations
//! `[kind, offset lo, offset hi, value (4 bytes LE)]`.

use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::regs::{self, op, rt, usbcmd};
use super::testdev::LoopbackDevice;
use super::{Config, Controller, RecordingSink};
use crate::usb::BusTime;

/// Size of the fuzzed guest RAM.
pub const RAM: usize = 0x1_0000;
/// Most operations run per input.
pub const MAX_OPS: usize = 4096;

/// Runs one fuzz input. Never panics for any input (that is what the fuzzer checks).
pub fn run(data: &[u8]) {
    let Ok(mem) = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), RAM)]) else {
        return;
    };
    let (len, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let (image, ops) = rest.split_at(len.min(rest.len()));
    let _ = super::dma::write(&mem, 0, image);

    let sink = RecordingSink::default();
    let Ok(mut xhci) = Controller::new(Config::default(), Box::new(sink.clone())) else {
        return;
    };
    let _ = xhci.attach(1, Box::new(LoopbackDevice::new()));
    // A running controller with its structures inside the image, so doorbells reach
    // fuzzer-made rings straight away.
    let ir0 = regs::RT_BASE + rt::IR_BASE;
    for (off, v) in [
        (regs::OP_BASE + op::CONFIG, 32),
        (regs::OP_BASE + op::DCBAAP, 0x1000),
        (regs::OP_BASE + op::CRCR, 0x2001),
        (ir0 + rt::ERSTSZ, 1),
        (ir0 + rt::ERSTBA, 0x3000),
        (ir0 + rt::ERSTBA + 4, 0),
        (ir0 + rt::ERDP, 0x4000),
        (ir0 + rt::IMAN, 2),
        (
            regs::OP_BASE + op::USBCMD,
            u64::from(usbcmd::RS | usbcmd::INTE),
        ),
    ] {
        xhci.mmio_write(&mem, off, 4, v);
    }

    let mut now = 0u64;
    for chunk in ops.chunks_exact(7).take(MAX_OPS) {
        let offset = u64::from(u16::from_le_bytes([chunk[1], chunk[2]]));
        let value = u32::from_le_bytes([chunk[3], chunk[4], chunk[5], chunk[6]]);
        match chunk[0] % 8 {
            0..=3 => xhci.mmio_write(&mem, offset & !3, 4, u64::from(value)),
            4 => {
                let db = regs::DB_BASE + 4 * (offset & 0xff);
                xhci.mmio_write(&mem, db, 4, u64::from(value));
            }
            5 => {
                now += u64::from(value & 0xff);
                xhci.tick(&mem, BusTime(now));
            }
            6 => {
                let _ = xhci.mmio_read(offset, 1 << (value % 4));
            }
            _ => {
                let port = (offset % 5) as u8;
                if value & 1 == 0 {
                    let _ = xhci.attach(port, Box::new(LoopbackDevice::new()));
                } else {
                    let _ = xhci.detach(port);
                }
            }
        }
    }
    sink.take();
}
