//! A minimal xHCI driver for tests, benchmarks and the fuzz target. It lays guest memory out
//! the way Linux does: a DCBAA page, a one-segment command ring closed by a Link TRB with
//! Toggle Cycle, event rings behind an ERST, input and output contexts, and one-page
//! transfer rings. It drives the [`Controller`] only through BAR0 and guest memory.

use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::context::{
    device_ep_offset, input_ep_offset, EndpointContext, EndpointType, InputControlContext,
    SlotContext, CONTEXT_SIZE, INPUT_SLOT_OFFSET,
};
use super::controller::Controller;
use super::dma;
use super::interrupter::RecordingSink;
use super::regs::{self, erdp, iman, op, rt, usbcmd};
use super::trb::{event_code, CompletionCode, Trb, TrbType};
use super::Config;
use crate::usb::{BusTime, SetupPacket};

/// Where guest RAM starts (as on QEMU's arm64 `virt` machine).
pub const RAM_BASE: u64 = 0x4000_0000;
/// Size of guest RAM.
pub const RAM_SIZE: usize = 16 << 20;
/// Page size.
pub const PAGE: u64 = 4096;
/// TRBs in a one-page ring, the Link TRB included.
pub const RING_TRBS: u64 = PAGE / 16;

/// Control bits for building TRBs.
pub mod bits {
    /// Cycle.
    pub const CYCLE: u32 = 1;
    /// Toggle Cycle (Link).
    pub const TC: u32 = 1 << 1;
    /// Interrupt-on Short Packet.
    pub const ISP: u32 = 1 << 2;
    /// Chain.
    pub const CH: u32 = 1 << 4;
    /// Interrupt On Completion.
    pub const IOC: u32 = 1 << 5;
    /// Immediate Data.
    pub const IDT: u32 = 1 << 6;
    /// Block Event Interrupt / Block Set Address Request / Deconfigure (bit 9).
    pub const BIT9: u32 = 1 << 9;
    /// Direction IN (Data/Status Stage), bit 16.
    pub const DIR_IN: u32 = 1 << 16;
    /// Start Isoch ASAP.
    pub const SIA: u32 = 1 << 31;
}

/// A producer ring of one page whose last TRB links back with Toggle Cycle.
#[derive(Clone, Copy, Debug)]
pub struct ProducerRing {
    /// First TRB.
    pub base: u64,
    /// Next TRB to write.
    pub enqueue: u64,
    /// Producer cycle state.
    pub cycle: bool,
}

impl ProducerRing {
    /// A fresh ring at `base` (the page must be zeroed).
    pub fn new(base: u64) -> Self {
        ProducerRing {
            base,
            enqueue: base,
            cycle: true,
        }
    }

    /// Writes `trb` with the producer cycle bit and returns its address; wraps through the
    /// Link TRB (chained when `trb` is).
    pub fn push(&mut self, mem: &GuestMemoryMmap, trb: Trb) -> u64 {
        let at = self.enqueue;
        dma::write(mem, at, &trb.with_cycle(self.cycle).to_bytes()).expect("ring in RAM");
        self.enqueue += 16;
        if self.enqueue == self.base + (RING_TRBS - 1) * 16 {
            let chain = trb.control() & bits::CH;
            let link = Trb::new(TrbType::Link, self.base, 0, bits::TC | chain);
            dma::write(mem, self.enqueue, &link.with_cycle(self.cycle).to_bytes())
                .expect("ring in RAM");
            self.enqueue = self.base;
            self.cycle = !self.cycle;
        }
        at
    }
}

/// A consumer of one interrupter's event ring.
#[derive(Clone, Debug)]
pub struct EventReader {
    segments: Vec<(u64, u64)>,
    seg: usize,
    idx: u64,
    cycle: bool,
}

impl EventReader {
    /// Address of the next event to read (what goes into ERDP).
    pub fn dequeue(&self) -> u64 {
        self.segments[self.seg].0 + self.idx * 16
    }

    fn next(&mut self, mem: &GuestMemoryMmap) -> Option<Trb> {
        let t = dma::read_trb(mem, self.dequeue()).ok()?;
        if t.cycle() != self.cycle {
            return None;
        }
        self.idx += 1;
        if self.idx == self.segments[self.seg].1 {
            self.idx = 0;
            self.seg = (self.seg + 1) % self.segments.len();
            if self.seg == 0 {
                self.cycle = !self.cycle;
            }
        }
        Some(t)
    }
}

/// Per-slot memory the driver allocated.
#[derive(Clone, Debug, Default)]
pub struct SlotMem {
    /// Input context.
    pub input: u64,
    /// Output device context.
    pub output: u64,
    /// Transfer rings by DCI.
    pub rings: Vec<Option<ProducerRing>>,
}

/// The test driver: guest memory, the controller, and the driver's view of both.
#[derive(Debug)]
pub struct Driver {
    /// Guest RAM.
    pub mem: GuestMemoryMmap,
    /// The controller under test.
    pub xhci: Controller,
    /// Every MSI-X vector raised.
    pub irqs: RecordingSink,
    /// Current bus time.
    pub now: BusTime,
    /// DCBAA.
    pub dcbaa: u64,
    /// Command ring.
    pub cmd: ProducerRing,
    /// Event ring readers by interrupter.
    pub readers: Vec<Option<EventReader>>,
    /// Events read but not yet claimed, by interrupter.
    pub stash: Vec<Vec<Trb>>,
    /// Slot memory by slot ID.
    pub slots: Vec<SlotMem>,
    next_free: u64,
}

impl Driver {
    /// A driver with fresh guest RAM and a halted controller of `config`.
    pub fn new(config: Config) -> Self {
        let mem =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(RAM_BASE), RAM_SIZE)]).expect("guest RAM");
        let irqs = RecordingSink::default();
        let xhci = Controller::new(config, Box::new(irqs.clone())).expect("valid config");
        let n = usize::from(config.max_interrupters);
        Driver {
            mem,
            xhci,
            irqs,
            now: BusTime(0),
            dcbaa: 0,
            cmd: ProducerRing::new(0),
            readers: vec![None; n],
            stash: vec![Vec::new(); n],
            slots: vec![SlotMem::default(); usize::from(config.max_slots) + 1],
            next_free: RAM_BASE,
        }
    }

    /// Allocates `pages` zeroed pages.
    pub fn alloc(&mut self, pages: u64) -> u64 {
        let at = self.next_free;
        self.next_free += pages * PAGE;
        assert!(
            self.next_free <= RAM_BASE + RAM_SIZE as u64,
            "test RAM exhausted"
        );
        at
    }

    /// Reads a BAR0 dword.
    pub fn read32(&self, offset: u64) -> u32 {
        self.xhci.mmio_read(offset, 4) as u32
    }

    /// Writes a BAR0 dword.
    pub fn write32(&mut self, offset: u64, v: u32) {
        self.xhci.mmio_write(&self.mem, offset, 4, u64::from(v));
    }

    /// Writes a 64-bit register as Linux does (low dword, then high).
    pub fn write64(&mut self, offset: u64, v: u64) {
        self.write32(offset, v as u32);
        self.write32(offset + 4, (v >> 32) as u32);
    }

    /// Offset of interrupter `n`'s register `reg`.
    pub fn ir(n: u16, reg: u64) -> u64 {
        regs::RT_BASE + rt::IR_BASE + rt::IR_STRIDE * u64::from(n) + reg
    }

    /// Offset of one-based port `port`'s PORTSC.
    pub fn portsc(port: u8) -> u64 {
        regs::OP_BASE + op::PORT_BASE + op::PORT_STRIDE * (u64::from(port) - 1)
    }

    /// Advances time by `uframes` microframes, ticking each one.
    pub fn tick(&mut self, uframes: u64) {
        for _ in 0..uframes {
            self.now = BusTime(self.now.0 + 1);
            self.xhci.tick(&self.mem, self.now);
        }
    }

    /// Linux's bring-up: reset, DCBAA, command ring, interrupter 0 with IE, run.
    pub fn init(&mut self) {
        self.write32(regs::OP_BASE + op::USBCMD, usbcmd::HCRST);
        let slots = self.xhci.config().max_slots;
        self.write32(regs::OP_BASE + op::CONFIG, u32::from(slots));
        self.dcbaa = self.alloc(1);
        self.write64(regs::OP_BASE + op::DCBAAP, self.dcbaa);
        let ring = self.alloc(1);
        self.cmd = ProducerRing::new(ring);
        self.write64(regs::OP_BASE + op::CRCR, ring | 1);
        self.setup_interrupter(0, &[256], true);
        self.write32(
            regs::OP_BASE + op::USBCMD,
            usbcmd::RS | usbcmd::INTE | usbcmd::HSEE,
        );
    }

    /// Creates interrupter `n`'s event ring with segments of `sizes` TRBs, in the order Linux
    /// writes the registers (ERSTSZ, ERSTBA, ERDP, IMOD), and sets IMAN.IE if `ie`.
    pub fn setup_interrupter(&mut self, n: u16, sizes: &[u32], ie: bool) {
        let erst = self.alloc(1);
        let mut segments = Vec::new();
        for (i, &size) in sizes.iter().enumerate() {
            let pages = (u64::from(size) * 16).div_ceil(PAGE);
            let seg = self.alloc(pages);
            let mut e = [0u8; 16];
            e[0..8].copy_from_slice(&seg.to_le_bytes());
            e[8..12].copy_from_slice(&size.to_le_bytes());
            dma::write(&self.mem, erst + 16 * i as u64, &e).expect("ERST in RAM");
            segments.push((seg, u64::from(size)));
        }
        let first = segments.first().map_or(0, |s| s.0);
        self.write32(Self::ir(n, rt::ERSTSZ), sizes.len() as u32);
        self.write64(Self::ir(n, rt::ERSTBA), erst);
        self.write64(Self::ir(n, rt::ERDP), first);
        self.write32(Self::ir(n, rt::IMOD), 0);
        if ie {
            self.write32(Self::ir(n, rt::IMAN), iman::IE);
        }
        self.readers[usize::from(n)] = Some(EventReader {
            segments,
            seg: 0,
            idx: 0,
            cycle: true,
        });
    }

    /// Reads every new event of interrupter `n` (stashed ones first) and acknowledges them
    /// (ERDP with EHB, IMAN.IP cleared).
    pub fn events(&mut self, n: u16) -> Vec<Trb> {
        let i = usize::from(n);
        let mut out = std::mem::take(&mut self.stash[i]);
        let Some(mut reader) = self.readers[i].take() else {
            return out;
        };
        let mut got = false;
        while let Some(t) = reader.next(&self.mem) {
            out.push(t);
            got = true;
        }
        let deq = reader.dequeue();
        self.readers[i] = Some(reader);
        if got {
            self.write32(
                Self::ir(n, rt::IMAN),
                iman::IP | self.read32(Self::ir(n, rt::IMAN)),
            );
            self.write64(Self::ir(n, rt::ERDP), deq | erdp::EHB);
        }
        out
    }

    /// Runs a command and returns its completion event; other events on interrupter 0 stay
    /// stashed.
    pub fn command(&mut self, trb: Trb) -> Trb {
        let at = self.cmd.push(&self.mem, trb);
        self.write32(regs::DB_BASE, 0);
        let events = self.events(0);
        let mut done = None;
        for e in events {
            if e.trb_type() == Some(TrbType::CommandCompletionEvent) && e.parameter() == at {
                done = Some(e);
            } else {
                self.stash[0].push(e);
            }
        }
        done.expect("command completed")
    }

    /// Enable Slot; returns the slot ID.
    pub fn enable_slot(&mut self) -> u8 {
        let e = self.command(Trb::new(TrbType::EnableSlot, 0, 0, 0));
        assert_eq!(event_code(e), CompletionCode::Success as u8);
        let id = e.slot_id();
        let output = self.alloc(1);
        let input = self.alloc(1);
        dma::write(
            &self.mem,
            self.dcbaa + 8 * u64::from(id),
            &output.to_le_bytes(),
        )
        .expect("DCBAA in RAM");
        self.slots[usize::from(id)] = SlotMem {
            input,
            output,
            rings: vec![None; 32],
        };
        id
    }

    /// Resets one-based `port` (PORTSC.PR) and clears its change bits.
    pub fn reset_port(&mut self, port: u8) {
        let sc = self.read32(Self::portsc(port));
        self.write32(
            Self::portsc(port),
            (sc & regs::portsc::PP) | regs::portsc::PR,
        );
        let sc = self.read32(Self::portsc(port));
        self.write32(Self::portsc(port), sc & regs::portsc::CHANGE_BITS);
    }

    fn write_input(&mut self, id: u8, add: u32, drop: u32) {
        let input = self.slots[usize::from(id)].input;
        let icc = InputControlContext([drop, add, 0, 0, 0, 0, 0, 0]);
        dma::write(&self.mem, input, &icc.to_bytes()).expect("input in RAM");
    }

    fn write_input_slot(&mut self, id: u8, port: u8, entries: u8, target: u16) {
        let input = self.slots[usize::from(id)].input;
        let mut s = SlotContext::default();
        s.set_context_entries(entries);
        s.0[1] = u32::from(port) << 16;
        s.0[2] = u32::from(target) << 22;
        dma::write_slot_ctx(&self.mem, input + INPUT_SLOT_OFFSET, &s).expect("input in RAM");
    }

    fn write_input_ep(&mut self, id: u8, dci: u8, ty: EndpointType, mps: u16, interval: u8) {
        let ring_base = self.alloc(1);
        let ring = ProducerRing::new(ring_base);
        let mut c = EndpointContext::default();
        c.0[0] = u32::from(interval) << 16;
        c.0[1] = (3 << 1) | ((ty as u32) << 3) | (u32::from(mps) << 16);
        c.set_dequeue(ring_base, true);
        c.0[4] = 8;
        let input = self.slots[usize::from(id)].input;
        dma::write_ep_ctx(&self.mem, input + input_ep_offset(dci), &c).expect("input in RAM");
        self.slots[usize::from(id)].rings[usize::from(dci)] = Some(ring);
    }

    /// Address Device for slot `id` on one-based `port`; returns the completion code.
    pub fn address_device(&mut self, id: u8, port: u8, bsr: bool) -> u8 {
        self.write_input(id, 0b11, 0);
        self.write_input_slot(id, port, 1, 0);
        self.write_input_ep(id, 1, EndpointType::Control, 64, 0);
        let input = self.slots[usize::from(id)].input;
        let flags = (u32::from(id) << 24) | if bsr { bits::BIT9 } else { 0 };
        event_code(self.command(Trb::new(TrbType::AddressDevice, input, 0, flags)))
    }

    /// Configure Endpoint adding `eps` (DCI, type, max packet, interval) and dropping DCIs in
    /// `drop`; returns the completion code.
    pub fn configure(&mut self, id: u8, eps: &[(u8, EndpointType, u16, u8)], drop: u32) -> u8 {
        let add = eps.iter().fold(1u32, |a, e| a | (1 << e.0));
        self.write_input(id, add, drop);
        let last = eps.iter().map(|e| e.0).max().unwrap_or(1);
        self.write_input_slot(id, 0, last, 0);
        for &(dci, ty, mps, interval) in eps {
            self.write_input_ep(id, dci, ty, mps, interval);
        }
        let input = self.slots[usize::from(id)].input;
        event_code(self.command(Trb::new(
            TrbType::ConfigureEndpoint,
            input,
            0,
            u32::from(id) << 24,
        )))
    }

    /// Queues `trb` on slot `id`'s DCI `dci` ring; returns its address.
    pub fn queue(&mut self, id: u8, dci: u8, trb: Trb) -> u64 {
        let ring = self.slots[usize::from(id)].rings[usize::from(dci)]
            .as_mut()
            .expect("ring configured");
        ring.push(&self.mem, trb)
    }

    /// Rings slot `id`'s doorbell for `dci`.
    pub fn doorbell(&mut self, id: u8, dci: u8) {
        self.write32(regs::DB_BASE + 4 * u64::from(id), u32::from(dci));
    }

    /// Transfer events of interrupter `n` (other events stay stashed).
    pub fn transfer_events(&mut self, n: u16) -> Vec<Trb> {
        let mut out = Vec::new();
        for e in self.events(n) {
            if e.trb_type() == Some(TrbType::TransferEvent) {
                out.push(e);
            } else {
                self.stash[usize::from(n)].push(e);
            }
        }
        out
    }

    /// A control transfer IN with its data stage (ISP) and status stage (IOC), as Linux queues
    /// it; returns the data buffer address.
    pub fn queue_control_in(&mut self, id: u8, setup: SetupPacket) -> u64 {
        let buf = self.alloc(1);
        let p = u64::from_le_bytes(setup.to_bytes());
        self.queue(
            id,
            1,
            Trb::new(TrbType::SetupStage, p, 8, bits::IDT | (3 << 16)),
        );
        self.queue(
            id,
            1,
            Trb::new(
                TrbType::DataStage,
                buf,
                u32::from(setup.length),
                bits::ISP | bits::DIR_IN,
            ),
        );
        self.queue(id, 1, Trb::new(TrbType::StatusStage, 0, 0, bits::IOC));
        buf
    }

    /// A no-data control transfer OUT (SET_CONFIGURATION and friends).
    pub fn queue_control_nodata(&mut self, id: u8, setup: SetupPacket) {
        let p = u64::from_le_bytes(setup.to_bytes());
        self.queue(id, 1, Trb::new(TrbType::SetupStage, p, 8, bits::IDT));
        self.queue(
            id,
            1,
            Trb::new(TrbType::StatusStage, 0, 0, bits::IOC | bits::DIR_IN),
        );
    }

    /// GET_DESCRIPTOR through EP0; returns the events and the bytes received.
    pub fn get_descriptor(&mut self, id: u8, value: u16, len: u16) -> (Vec<Trb>, Vec<u8>) {
        let setup = SetupPacket {
            request_type: 0x80,
            request: 6,
            value,
            index: 0,
            length: len,
        };
        let buf = self.queue_control_in(id, setup);
        self.doorbell(id, 1);
        let events = self.transfer_events(0);
        let mut data = vec![0u8; usize::from(len)];
        dma::read(&self.mem, buf, &mut data).expect("buffer in RAM");
        (events, data)
    }

    /// Output endpoint context of slot `id`, DCI `dci`.
    pub fn output_ep(&self, id: u8, dci: u8) -> EndpointContext {
        let out = self.slots[usize::from(id)].output;
        dma::read_ep_ctx(&self.mem, out + device_ep_offset(dci)).expect("output in RAM")
    }

    /// Output slot context of slot `id`.
    pub fn output_slot(&self, id: u8) -> SlotContext {
        let out = self.slots[usize::from(id)].output;
        dma::read_slot_ctx(&self.mem, out).expect("output in RAM")
    }

    /// Writes `data` into a fresh buffer and returns its address.
    pub fn buffer(&mut self, data: &[u8]) -> u64 {
        let pages = (data.len() as u64).div_ceil(PAGE).max(1);
        let at = self.alloc(pages);
        dma::write(&self.mem, at, data).expect("buffer in RAM");
        at
    }

    /// Reads `len` bytes at `addr`.
    pub fn read_buffer(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        dma::read(&self.mem, addr, &mut v).expect("buffer in RAM");
        v
    }

    /// Context size, for tests that poke at contexts directly.
    pub const CONTEXT_SIZE: u64 = CONTEXT_SIZE;
}

impl Driver {
    /// A running controller with the loopback device on port 1, enumerated to Configured with
    /// bulk OUT at DCI 2 and bulk IN at DCI 3, all events consumed. Returns the slot.
    pub fn with_loopback(config: Config) -> (Driver, u8) {
        let mut d = Driver::new(config);
        d.init();
        d.xhci
            .attach(1, Box::new(super::LoopbackDevice::new()))
            .expect("port 1 is USB 2");
        d.tick(1);
        d.reset_port(1);
        let slot = d.enable_slot();
        assert_eq!(
            d.address_device(slot, 1, false),
            CompletionCode::Success as u8
        );
        let eps = [
            (2, EndpointType::BulkOut, 512, 0),
            (3, EndpointType::BulkIn, 512, 0),
        ];
        assert_eq!(d.configure(slot, &eps, 0), CompletionCode::Success as u8);
        d.events(0);
        d.irqs.take();
        (d, slot)
    }

    /// Queues one bulk OUT Normal TRB (IOC) with `data` and Interrupter Target `target`.
    pub fn queue_bulk_out(&mut self, id: u8, dci: u8, data: &[u8], target: u16) -> u64 {
        let buf = self.buffer(data);
        let status = data.len() as u32 | (u32::from(target) << 22);
        self.queue(id, dci, Trb::new(TrbType::Normal, buf, status, bits::IOC))
    }

    /// Queues one bulk IN Normal TRB (ISP, IOC) of `len` bytes; returns (TRB, buffer).
    pub fn queue_bulk_in(&mut self, id: u8, dci: u8, len: u32, target: u16) -> (u64, u64) {
        let buf = self.alloc(u64::from(len).div_ceil(PAGE).max(1));
        let status = len | (u32::from(target) << 22);
        let at = self.queue(
            id,
            dci,
            Trb::new(TrbType::Normal, buf, status, bits::IOC | bits::ISP),
        );
        (at, buf)
    }
}

/// Completion code of an event, decoded.
pub fn code(e: &Trb) -> u8 {
    event_code(*e)
}

/// Residual length of a transfer event.
pub fn residual(e: &Trb) -> u32 {
    e.status() & 0xff_ffff
}
