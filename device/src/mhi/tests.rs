//! The device driven the way Linux's MHI host core drives it (init.c, pm.c, main.c): context
//! arrays and rings in guest memory, the READY → M0 power-up, START_CHAN on the command ring,
//! buffers queued on transfer rings and doorbells rung after the context's write pointer moved.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::regs::{self, code, element, state};
use super::ring::{Context, Element, CONTEXT_SIZE, ELEMENT_SIZE};
use super::{Mhi, Notice};

const RAM: u64 = 0x4000_0000;
const CHAN_CTX: u64 = RAM;
const EV_CTX: u64 = RAM + 0x2000;
const CMD_CTX: u64 = RAM + 0x2400;
const CMD_RING: u64 = RAM + 0x3000;
const EV_RING: u64 = RAM + 0x4000;
const UL_RING: u64 = RAM + 0x5000;
const DL_RING: u64 = RAM + 0x6000;
const BUFS: u64 = RAM + 0x10000;
const UL: u8 = 20;
const DL: u8 = 21;
const EV_ELEMENTS: u64 = 8;
const DL_ELEMENTS: u64 = 16;
const MSI_EV0: u32 = 1;

/// The host side: what mhi_init_dev_ctxt, mhi_init_mmio and the channel code write.
struct Host {
    mem: GuestMemoryMmap,
    dev: Mhi,
    ev_rp: u64,
    cmd_wp: u64,
    ul_wp: u64,
    dl_wp: u64,
}

fn put_ctx(mem: &GuestMemoryMmap, at: u64, dw: [u32; 3], base: u64, len: u64) {
    for (i, v) in dw.iter().enumerate() {
        mem.write_obj(*v, GuestAddress(at + 4 * i as u64)).unwrap();
    }
    for (off, v) in [(12, base), (20, len), (28, base), (36, base)] {
        mem.write_obj(v, GuestAddress(at + off)).unwrap();
    }
}

impl Host {
    fn new() -> Host {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(RAM), 0x10_0000)]).unwrap();
        put_ctx(
            &mem,
            EV_CTX,
            [0, 1, MSI_EV0],
            EV_RING,
            EV_ELEMENTS * ELEMENT_SIZE,
        );
        put_ctx(&mem, CMD_CTX, [0; 3], CMD_RING, 8 * ELEMENT_SIZE);
        Host {
            mem,
            dev: Mhi::new(),
            ev_rp: EV_RING,
            cmd_wp: CMD_RING,
            ul_wp: UL_RING,
            dl_wp: DL_RING,
        }
    }

    fn write64(&mut self, reg: u64, v: u64) -> super::Outcome {
        let mut out = self.dev.write(&self.mem, reg + 4, (v >> 32) as u32);
        out.merge(self.dev.write(&self.mem, reg, v as u32));
        out
    }

    /// mhi_ready_state_transition: contexts, all event ring elements handed over, then M0.
    fn power_up(&mut self) -> super::Outcome {
        assert_eq!(self.dev.read(regs::MHISTATUS) & regs::STATUS_READY, 1);
        let bhi = u64::from(self.dev.read(regs::BHIOFF));
        assert_eq!(
            self.dev.read(bhi + regs::BHI_EXECENV),
            u32::from(regs::ee::AMSS)
        );
        self.write64(regs::CCABAP, CHAN_CTX);
        self.write64(regs::ECABAP, EV_CTX);
        self.write64(regs::CRCBAP, CMD_CTX);
        let last = EV_RING + (EV_ELEMENTS - 1) * ELEMENT_SIZE;
        self.mem.write_obj(last, GuestAddress(EV_CTX + 36)).unwrap();
        let erdb = u64::from(self.dev.read(regs::ERDBOFF));
        self.write64(erdb, last);
        let ctrl = self.dev.read(regs::MHICTRL) & !0xff00;
        self.dev
            .write(&self.mem, regs::MHICTRL, ctrl | u32::from(state::M0) << 8)
    }

    /// Events the device wrote since the last call; gives their elements back (recycle + ER doorbell).
    fn events(&mut self) -> Vec<Element> {
        let dev_rp: u64 = self.mem.read_obj(GuestAddress(EV_CTX + 28)).unwrap();
        let mut got = Vec::new();
        while self.ev_rp != dev_rp {
            got.push(Element::read(&self.mem, self.ev_rp).unwrap());
            let wp: u64 = self.mem.read_obj(GuestAddress(EV_CTX + 36)).unwrap();
            let next = |p: u64| {
                if p + 16 >= EV_RING + EV_ELEMENTS * 16 {
                    EV_RING
                } else {
                    p + 16
                }
            };
            self.mem
                .write_obj(next(wp), GuestAddress(EV_CTX + 36))
                .unwrap();
            self.ev_rp = next(self.ev_rp);
        }
        if !got.is_empty() {
            let wp: u64 = self.mem.read_obj(GuestAddress(EV_CTX + 36)).unwrap();
            self.write64(regs::ERDB_BASE, wp);
        }
        got
    }

    fn command(&mut self, kind: u8, ch: u8) -> (u64, super::Outcome) {
        let at = self.cmd_wp;
        let cmd = Element {
            ptr: 0,
            dw0: 0,
            dw1: u32::from(ch) << 24 | u32::from(kind) << 16,
        };
        self.mem
            .write_slice(&cmd.to_bytes(), GuestAddress(at))
            .unwrap();
        self.cmd_wp = if at + 16 >= CMD_RING + 8 * 16 {
            CMD_RING
        } else {
            at + 16
        };
        self.mem
            .write_obj(self.cmd_wp, GuestAddress(CMD_CTX + 36))
            .unwrap();
        (at, self.write64(regs::CRDB, self.cmd_wp))
    }

    /// mhi_init_chan_ctxt + START_CHAN for the IPCR pair on event ring 0.
    fn start_ipcr(&mut self) -> Vec<Notice> {
        put_ctx(
            &self.mem,
            CHAN_CTX + CONTEXT_SIZE * u64::from(UL),
            [1, 1, 0],
            UL_RING,
            8 * ELEMENT_SIZE,
        );
        put_ctx(
            &self.mem,
            CHAN_CTX + CONTEXT_SIZE * u64::from(DL),
            [1, 2, 0],
            DL_RING,
            DL_ELEMENTS * ELEMENT_SIZE,
        );
        let mut notices = Vec::new();
        for ch in [UL, DL] {
            let (at, out) = self.command(element::START_CHAN, ch);
            notices.extend(out.notices);
            let done = self.events();
            assert_eq!(done.len(), 1);
            assert_eq!(
                (done[0].ptr, done[0].dw0 >> 24, done[0].kind()),
                (at, u32::from(code::SUCCESS), element::CMD_COMPLETION_EVENT)
            );
        }
        notices
    }

    fn queue(&mut self, ch: u8, buf: u64, len: u16) -> super::Outcome {
        let wp = if ch == UL {
            &mut self.ul_wp
        } else {
            &mut self.dl_wp
        };
        let (ring, n) = if ch == UL {
            (UL_RING, 8)
        } else {
            (DL_RING, DL_ELEMENTS)
        };
        let tre = Element {
            ptr: buf,
            dw0: u32::from(len),
            dw1: u32::from(element::TRANSFER) << 16 | 1 << 9,
        };
        self.mem
            .write_slice(&tre.to_bytes(), GuestAddress(*wp))
            .unwrap();
        *wp = if *wp + 16 >= ring + n * 16 {
            ring
        } else {
            *wp + 16
        };
        let wp = *wp;
        let ctx = CHAN_CTX + CONTEXT_SIZE * u64::from(ch);
        self.mem.write_obj(wp, GuestAddress(ctx + 36)).unwrap();
        self.write64(regs::CHDB_BASE + 8 * u64::from(ch), wp)
    }

    fn set_state(&mut self, s: u8) -> super::Outcome {
        let ctrl = self.dev.read(regs::MHICTRL) & !0xff00;
        self.dev
            .write(&self.mem, regs::MHICTRL, ctrl | u32::from(s) << 8)
    }
}

#[test]
fn power_up_announces_m0_and_mission_mode_on_the_primary_event_ring() {
    let mut h = Host::new();
    let out = h.power_up();
    assert_eq!(out.msi, vec![MSI_EV0 as u16]);
    let ev = h.events();
    assert_eq!(ev.len(), 2);
    assert_eq!(
        (ev[0].kind(), (ev[0].dw0 >> 24) as u8),
        (element::STATE_CHANGE_EVENT, state::M0)
    );
    assert_eq!(
        (ev[1].kind(), (ev[1].dw0 >> 24) as u8),
        (element::EE_EVENT, regs::ee::AMSS)
    );
    assert_eq!(
        h.dev.read(regs::MHISTATUS) >> 8 & 0xff,
        u32::from(state::M0)
    );
}

#[test]
fn start_chan_runs_the_channel_and_completes_at_the_command() {
    let mut h = Host::new();
    h.power_up();
    h.events();
    assert_eq!(
        h.start_ipcr(),
        vec![Notice::Started(UL), Notice::Started(DL)]
    );
    let ctx = Context::read(&h.mem, CHAN_CTX + CONTEXT_SIZE * u64::from(DL)).unwrap();
    assert_eq!(ctx.dw0 & 0xff, 2, "channel context says running");
    let (_, out) = h.command(element::RESET_CHAN, DL);
    assert_eq!(out.notices, vec![Notice::Stopped(DL)]);
    let (_, _) = h.command(0x7f, 3);
    let ev = h.events();
    assert_eq!(
        (ev[1].dw0 >> 24) as u8,
        code::UNDEFINED_ERR,
        "unknown command"
    );
}

#[test]
fn ul_packets_arrive_whole_and_dl_packets_wait_for_buffers() {
    let mut h = Host::new();
    h.power_up();
    h.events();
    h.start_ipcr();
    h.mem
        .write_slice(b"qrtr-hello", GuestAddress(BUFS))
        .unwrap();
    let out = h.queue(UL, BUFS, 10);
    assert_eq!(
        out.notices,
        vec![Notice::Received(UL, b"qrtr-hello".to_vec())]
    );
    let ev = h.events();
    assert_eq!(
        (
            ev[0].ptr,
            ev[0].length(),
            ev[0].channel(),
            (ev[0].dw0 >> 24) as u8
        ),
        (UL_RING, 10, UL, code::EOT)
    );

    assert!(
        h.dev.send(&h.mem, DL, b"answer".to_vec()).msi.is_empty(),
        "no buffer yet"
    );
    let out = h.queue(DL, BUFS + 0x1000, 0xffff);
    assert_eq!(out.msi, vec![MSI_EV0 as u16]);
    let ev = h.events();
    assert_eq!(
        (ev[0].ptr, ev[0].length(), ev[0].channel()),
        (DL_RING, 6, DL)
    );
    let mut got = [0u8; 6];
    h.mem
        .read_slice(&mut got, GuestAddress(BUFS + 0x1000))
        .unwrap();
    assert_eq!(&got, b"answer");
    assert_eq!(h.dev.counters.dl_packets, 1);
}

#[test]
fn nothing_moves_in_m3_and_waiting_packets_go_at_m0() {
    let mut h = Host::new();
    h.power_up();
    h.events();
    h.start_ipcr();
    h.queue(DL, BUFS, 0xffff);
    h.set_state(state::M3);
    let ev = h.events();
    assert_eq!(
        (ev[0].kind(), (ev[0].dw0 >> 24) as u8),
        (element::STATE_CHANGE_EVENT, state::M3)
    );
    assert!(h.dev.send(&h.mem, DL, b"in-m3".to_vec()).msi.is_empty());
    assert!(h.events().is_empty(), "no transfer while suspended");
    h.set_state(state::M0);
    let ev = h.events();
    assert_eq!(
        ev.len(),
        2,
        "M0 state change, then the waiting packet: {ev:?}"
    );
    assert_eq!((ev[1].kind(), ev[1].length()), (element::TX_EVENT, 5));
}

#[test]
fn a_full_event_ring_holds_deliveries_until_the_host_gives_elements_back() {
    let mut h = Host::new();
    h.power_up();
    h.events();
    h.start_ipcr();
    for i in 0..8 {
        h.queue(DL, BUFS + 0x100 * i, 0x100);
    }
    // 7 free event elements: 7 packets go, the eighth waits for the ER doorbell.
    for i in 0..8u8 {
        h.dev.send(&h.mem, DL, vec![i; 4]);
    }
    assert_eq!(h.dev.counters.dl_packets, 7);
    assert_eq!(h.events().len(), 7);
    assert_eq!(
        h.dev.counters.dl_packets, 8,
        "the doorbell released the last one"
    );
}

#[test]
fn malformed_rings_are_refused_without_panic() {
    let mut h = Host::new();
    h.power_up();
    h.events();
    // A channel ring whose length is not a whole number of elements, and one whose read pointer
    // is outside it.
    put_ctx(&h.mem, CHAN_CTX + CONTEXT_SIZE * 5, [1, 1, 0], UL_RING, 24);
    put_ctx(&h.mem, CHAN_CTX + CONTEXT_SIZE * 6, [1, 1, 0], UL_RING, 128);
    h.mem
        .write_obj(
            UL_RING + 4096,
            GuestAddress(CHAN_CTX + CONTEXT_SIZE * 6 + 28),
        )
        .unwrap();
    for ch in [5, 6] {
        let (_, out) = h.command(element::START_CHAN, ch);
        assert!(out.notices.is_empty());
    }
    let ev = h.events();
    assert!(
        ev.iter()
            .all(|e| (e.dw0 >> 24) as u8 == code::UNDEFINED_ERR),
        "{ev:?}"
    );
    // Context arrays outside guest RAM, and at the top of the address space.
    for base in [0xdead_0000_0000, u64::MAX - 8] {
        h.write64(regs::CCABAP, base);
        let (_, out) = h.command(element::START_CHAN, UL);
        assert!(out.notices.is_empty());
    }
    assert!(h.dev.counters.errors >= 3);
    // A doorbell for a channel nobody started, and a write past the registers.
    h.write64(regs::CHDB_BASE + 8 * 9, UL_RING);
    h.dev.write(&h.mem, 0x1_0000, 1);
}

#[test]
fn mhi_reset_stops_channels_and_returns_to_ready() {
    let mut h = Host::new();
    h.power_up();
    h.events();
    h.start_ipcr();
    let out = h.dev.write(&h.mem, regs::MHICTRL, regs::CTRL_RESET);
    assert_eq!(out.notices, vec![Notice::Stopped(UL), Notice::Stopped(DL)]);
    assert_eq!(
        h.dev.read(regs::MHICTRL) & regs::CTRL_RESET,
        0,
        "reset bit clears"
    );
    assert_eq!(
        h.dev.read(regs::MHISTATUS),
        u32::from(state::READY) << 8 | regs::STATUS_READY
    );
    assert!(h.dev.send(&h.mem, DL, vec![1]).notices.is_empty());
}

/// Event ring 1: 512 elements, all but one handed to the device.
const BIG_EV_CTX: u64 = EV_CTX + CONTEXT_SIZE;
const BIG_EV_RING: u64 = RAM + 0x20000;
const BIG_EV_ELEMENTS: u64 = 512;
/// Rings of two more outbound channels on event ring 1, and a 64 KiB buffer they all send.
const RING_A: u64 = RAM + 0x24000;
const RING_B: u64 = RAM + 0x28000;
const BIG_RING_ELEMENTS: u64 = 300;
const BIG_BUF: u64 = RAM + 0x30000;

impl Host {
    /// Outbound channels `chans` with rings at `rings` on event ring 1, started; a powered-up
    /// device.
    fn outbound_on_big_event_ring(&mut self, chans: &[(u8, u64)]) {
        self.power_up();
        self.events();
        let len = BIG_EV_ELEMENTS * ELEMENT_SIZE;
        put_ctx(&self.mem, BIG_EV_CTX, [0, 1, 2], BIG_EV_RING, len);
        let last = BIG_EV_RING + len - ELEMENT_SIZE;
        self.mem
            .write_obj(last, GuestAddress(BIG_EV_CTX + 36))
            .unwrap();
        for &(ch, ring) in chans {
            let at = CHAN_CTX + CONTEXT_SIZE * u64::from(ch);
            let len = BIG_RING_ELEMENTS * ELEMENT_SIZE;
            put_ctx(&self.mem, at, [1, 1, 1], ring, len);
            let (_, out) = self.command(element::START_CHAN, ch);
            assert_eq!(out.notices, vec![Notice::Started(ch)]);
            self.events();
        }
    }

    /// Queues elements of `lens` bytes (chained when true) from `BIG_BUF` on channel `ch`, then
    /// rings its doorbell.
    fn send_ul(&mut self, ch: u8, lens: &[(u16, bool)]) -> super::Outcome {
        let ctx = CHAN_CTX + CONTEXT_SIZE * u64::from(ch);
        let mut wp: u64 = self.mem.read_obj(GuestAddress(ctx + 36)).unwrap();
        for &(len, chain) in lens {
            let tre = Element {
                ptr: BIG_BUF,
                dw0: u32::from(len),
                dw1: u32::from(element::TRANSFER) << 16 | u32::from(chain),
            };
            self.mem
                .write_slice(&tre.to_bytes(), GuestAddress(wp))
                .unwrap();
            wp = Context::read(&self.mem, ctx).unwrap().next(wp);
        }
        self.mem.write_obj(wp, GuestAddress(ctx + 36)).unwrap();
        self.write64(regs::CHDB_BASE + 8 * u64::from(ch), wp)
    }
}

fn received(out: &super::Outcome) -> Vec<(u8, usize)> {
    out.notices
        .iter()
        .filter_map(|n| match n {
            Notice::Received(ch, p) => Some((*ch, p.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn one_doorbell_takes_at_most_max_ul_bytes_and_the_next_takes_the_rest() {
    let mut h = Host::new();
    h.outbound_on_big_event_ring(&[(22, RING_A)]);
    // 299 whole 64 KiB packets: 19.6 MB at one doorbell unless bounded.
    let out = h.send_ul(22, &[(u16::MAX, false); 299]);
    let first = received(&out);
    let per = usize::from(u16::MAX);
    let taken = super::controller::MAX_UL_BYTES_PER_DOORBELL.div_ceil(per);
    assert_eq!(first, vec![(22, per); taken]);
    // The host's next doorbell (the write pointer unchanged) takes the rest.
    let out = h.send_ul(22, &[]);
    assert_eq!(received(&out), vec![(22, per); 299 - taken]);
    assert_eq!(h.dev.counters.ul_packets, 299);
}

#[test]
fn unfinished_chained_packets_are_bounded_across_channels() {
    let mut h = Host::new();
    h.outbound_on_big_event_ring(&[(22, RING_A), (24, RING_B)]);
    let per = usize::from(u16::MAX);
    // Channel 22 holds 15 chained elements, channel 24 one more: just under 1 MiB in all.
    assert!(h.send_ul(22, &[(u16::MAX, true); 15]).notices.is_empty());
    assert!(h.send_ul(24, &[(u16::MAX, true)]).notices.is_empty());
    assert!(16 * per <= super::controller::MAX_PACKET);
    // 100 bytes more on channel 24 would pass the bound: its packet is dropped.
    let errors = h.dev.counters.errors;
    assert!(h.send_ul(24, &[(100, true)]).notices.is_empty());
    assert_eq!(h.dev.counters.errors, errors + 1);
    // Channel 22's packet is whole, and channel 24 starts afresh.
    let out = h.send_ul(22, &[(10, false)]);
    assert_eq!(received(&out), vec![(22, 15 * per + 10)]);
    let out = h.send_ul(24, &[(5, false)]);
    assert_eq!(received(&out), vec![(24, 5)]);
}
