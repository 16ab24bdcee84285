//! The DSP's GLINK-RPM end against a guest written from Linux's qcom_glink_rpm.c and
//! qcom_glink_native.c: the guest parses the table of contents, writes its commands at the ap2r
//! head (header, word-aligned data, padding to 8) and reads r2ap from its tail, on real guest
//! memory at the address the guest's DT reserves.

use sideband_device::adsp::glink::{Delivery, GlinkRemote, MsgRam};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const BASE: u64 = 0x7ff0_0000;
const SIZE: u64 = 0x1_0000;
const CHANNEL: &str = "apr_audio_svc";

/// The guest's half, as the kernel does it.
struct Guest {
    mem: GuestMemoryMmap,
    tx: (u64, u32),
    rx: (u64, u32),
}

impl Guest {
    fn probe(mem: GuestMemoryMmap) -> Guest {
        let toc = BASE + SIZE - 256;
        let word = |at: u64| mem.read_obj::<u32>(GuestAddress(at)).unwrap();
        assert_eq!(word(toc), 0x6772_7430, "grt0");
        let (mut tx, mut rx) = ((0, 0), (0, 0));
        for i in 0..word(toc + 4) as u64 {
            let e = toc + 8 + 12 * i;
            let (id, off, size) = (word(e), word(e + 4) as u64, word(e + 8));
            assert!(off + size as u64 <= SIZE);
            match id {
                0x6170_3272 => tx = (BASE + off, size),
                0x7232_6170 => rx = (BASE + off, size),
                _ => {}
            }
        }
        assert!(tx.1 > 0 && rx.1 > 0, "both FIFOs in the TOC");
        let g = Guest { mem, tx, rx };
        g.set(g.tx.0 + 4, 0); // TX head
        g.set(g.rx.0, 0); // RX tail
        g
    }

    fn get(&self, at: u64) -> u32 {
        self.mem.read_obj(GuestAddress(at)).unwrap()
    }

    fn set(&self, at: u64, v: u32) {
        self.mem.write_obj(v, GuestAddress(at)).unwrap()
    }

    fn write_ring(&self, (desc, len): (u64, u32), mut head: u32, bytes: &[u8]) -> u32 {
        for b in bytes {
            self.mem
                .write_obj(*b, GuestAddress(desc + 8 + head as u64))
                .unwrap();
            head = (head + 1) % len;
        }
        head
    }

    /// glink_rpm_tx_write: header, the data's whole words, its tail bytes and zeros to 8.
    fn send(&self, hdr: &[u8], data: &[u8]) {
        let mut head = self.get(self.tx.0 + 4);
        head = self.write_ring(self.tx, head, hdr);
        head = self.write_ring(self.tx, head, data);
        let total = hdr.len() + data.len();
        head = self.write_ring(self.tx, head, &vec![0; total.next_multiple_of(8) - total]);
        self.set(self.tx.0 + 4, head);
    }

    fn cmd(&self, cmd: u16, p1: u16, p2: u32) {
        self.send(
            &[cmd.to_le_bytes(), p1.to_le_bytes()].concat(),
            &p2.to_le_bytes(),
        );
    }

    fn open(&self, lcid: u16, name: &str) {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        self.send(
            &[2u16.to_le_bytes(), lcid.to_le_bytes()].concat(),
            &[(n.len() as u32).to_le_bytes().to_vec(), n].concat(),
        );
    }

    fn tx_data(&self, lcid: u16, chunk: &[u8], left: u32) {
        let hdr = [
            9u16.to_le_bytes().to_vec(),
            lcid.to_le_bytes().to_vec(),
            0u32.to_le_bytes().to_vec(),
            (chunk.len() as u32).to_le_bytes().to_vec(),
            left.to_le_bytes().to_vec(),
        ]
        .concat();
        self.send(&hdr, chunk);
    }

    fn avail(&self) -> u32 {
        let (head, tail) = (self.get(self.rx.0 + 4), self.get(self.rx.0));
        if head < tail {
            self.rx.1 - tail + head
        } else {
            head - tail
        }
    }

    fn take(&self, n: u32) -> Vec<u8> {
        let mut tail = self.get(self.rx.0);
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(
                self.mem
                    .read_obj::<u8>(GuestAddress(self.rx.0 + 8 + tail as u64))
                    .unwrap(),
            );
            tail = (tail + 1) % self.rx.1;
        }
        self.set(self.rx.0, tail);
        out
    }

    /// Reads one command as qcom_glink_native_rx frames it: (cmd, param1, param2, body).
    fn recv(&self) -> Option<(u16, u16, u32, Vec<u8>)> {
        if self.avail() < 8 {
            return None;
        }
        let h = self.take(8);
        let (cmd, p1) = (
            u16::from_le_bytes([h[0], h[1]]),
            u16::from_le_bytes([h[2], h[3]]),
        );
        let p2 = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let body = match cmd {
            2 => self.take((p2 & 0xffff).next_multiple_of(8)),
            9 => {
                let sizes = self.take(8);
                let chunk = u32::from_le_bytes(sizes[..4].try_into().unwrap());
                let mut b = sizes;
                b.extend(self.take(chunk.next_multiple_of(8)));
                b
            }
            _ => Vec::new(),
        };
        Some((cmd, p1, p2, body))
    }
}

fn setup() -> (Guest, GlinkRemote) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(BASE), SIZE as usize)]).unwrap();
    let mut remote = GlinkRemote::new(MsgRam::new(BASE, SIZE), &[CHANNEL]);
    remote.install(&mem).unwrap();
    (Guest::probe(mem), remote)
}

/// Version agreed, the DSP's channel opened both ways: returns the remote's id for it.
fn handshake(g: &Guest, r: &mut GlinkRemote, lcid: u16) -> u16 {
    g.cmd(0, 1, 0);
    let p = r.poll(&g.mem);
    assert!(p.interrupt, "the answer needs an interrupt");
    assert_eq!(
        g.recv(),
        Some((1, 1, 0, vec![])),
        "VERSION_ACK v1, features 0"
    );
    let (cmd, rcid, p2, name) = g.recv().expect("the DSP opens its channel");
    assert_eq!((cmd, p2), (2, CHANNEL.len() as u32 + 1));
    assert_eq!(&name[..CHANNEL.len() + 1], b"apr_audio_svc\0");
    // qcom_glink_create_remote: OPEN_ACK the remote's id, then the guest's own OPEN.
    g.cmd(4, rcid, 0);
    g.open(lcid, CHANNEL);
    let p = r.poll(&g.mem);
    assert_eq!(p.delivered, vec![Delivery::Up(CHANNEL.into())]);
    assert_eq!(
        g.recv(),
        Some((4, lcid, 0, vec![])),
        "OPEN_ACK of the guest's id"
    );
    assert!(r.is_up(CHANNEL));
    rcid
}

#[test]
fn version_and_open_handshake_as_the_guest_runs_it() {
    let (g, mut r) = setup();
    assert!(!r.poll(&g.mem).interrupt, "nothing written, nothing to say");
    handshake(&g, &mut r, 7);
    assert_eq!(g.recv(), None);
    assert_eq!(r.stats().malformed, 0);
}

#[test]
fn messages_cross_both_ways_whole_and_in_order_across_the_ring_end() {
    let (g, mut r) = setup();
    let rcid = handshake(&g, &mut r, 3);
    for round in 0..400u32 {
        // An APR packet in two chunks (the guest splits when its FIFO is short), then one.
        let payload: Vec<u8> = (0..61 + round % 7).map(|i| (i + round) as u8).collect();
        g.tx_data(3, &payload[..20], payload.len() as u32 - 20);
        g.tx_data(3, &payload[20..], 0);
        let p = r.poll(&g.mem);
        assert_eq!(
            p.delivered,
            vec![Delivery::Data {
                channel: CHANNEL.into(),
                payload: payload.clone()
            }]
        );
        r.send(CHANNEL, &payload).unwrap();
        assert!(r.poll(&g.mem).interrupt);
        let (cmd, id, _, body) = g.recv().unwrap();
        assert_eq!((cmd, id), (9, rcid), "TX_DATA under the remote's id");
        let chunk = u32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
        assert_eq!(u32::from_le_bytes(body[4..8].try_into().unwrap()), 0);
        assert_eq!(&body[8..8 + chunk], &payload[..]);
    }
    assert_eq!(r.stats().messages_in, 400);
}

#[test]
fn the_guest_fifo_is_never_filled_and_the_rest_waits_its_turn() {
    let (g, mut r) = setup();
    handshake(&g, &mut r, 1);
    let msg = vec![0x5a; 1000];
    for _ in 0..60 {
        r.send(CHANNEL, &msg).unwrap();
    }
    r.poll(&g.mem);
    assert!(g.avail() < g.rx.1, "head never catches the tail");
    let mut got = 0;
    while got < 60 {
        while g.recv().is_some() {
            got += 1;
        }
        r.poll(&g.mem);
        assert!(got > 0);
    }
    assert_eq!(got, 60);
}

#[test]
fn read_notif_asks_for_an_interrupt() {
    let (g, mut r) = setup();
    handshake(&g, &mut r, 1);
    g.cmd(13, 0, 0);
    assert!(r.poll(&g.mem).interrupt);
}

#[test]
fn a_closed_channel_is_acknowledged_closed_and_offered_again() {
    let (g, mut r) = setup();
    let rcid = handshake(&g, &mut r, 2);
    g.cmd(3, 2, 0);
    let p = r.poll(&g.mem);
    assert_eq!(p.delivered, vec![Delivery::Down(CHANNEL.into())]);
    assert_eq!(g.recv(), Some((11, 2, 0, vec![])), "CLOSE_ACK");
    assert_eq!(
        g.recv(),
        Some((3, rcid, 0, vec![])),
        "the remote closes its end"
    );
    assert!(r.send(CHANNEL, b"x").is_err());
    g.cmd(11, rcid, 0);
    r.poll(&g.mem);
    let (cmd, new_rcid, _, _) = g.recv().unwrap();
    assert_eq!(cmd, 2, "offered again");
    assert_ne!(new_rcid, rcid);
}

#[test]
fn hostile_commands_are_dropped_and_counted_and_a_corrupt_index_stops_the_link() {
    let (g, mut r) = setup();
    handshake(&g, &mut r, 4);
    // An unknown command: its length is unknown, everything written is dropped.
    g.cmd(77, 0, 0);
    g.tx_data(4, b"lost", 0);
    assert!(r.poll(&g.mem).delivered.is_empty());
    assert_eq!(r.stats().malformed, 1);
    // A name longer than GLINK allows, a message longer than the bound, data on no channel.
    g.send(&[2, 0, 9, 0], &200u32.to_le_bytes());
    r.poll(&g.mem);
    g.tx_data(4, b"big", 1 << 30);
    assert!(r.poll(&g.mem).delivered.is_empty());
    g.tx_data(9, b"nobody", 0);
    assert!(r.poll(&g.mem).delivered.is_empty());
    assert_eq!(r.stats().malformed, 4);
    // The channel still works.
    g.tx_data(4, b"fine", 0);
    assert_eq!(r.poll(&g.mem).delivered.len(), 1);
    // A head index outside the ring: the link stops, quietly from then on.
    g.set(g.tx.0 + 4, g.tx.1 + 16);
    assert!(r.poll(&g.mem).delivered.is_empty());
    assert!(
        r.broken().unwrap().contains("ap2r head index"),
        "{:?}",
        r.broken()
    );
    assert_eq!(r.poll(&g.mem), Default::default());
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the guest writes into its FIFO and whatever indices it leaves, a poll
        /// returns (no panic), delivers at most what was written, and the remote's own queue
        /// stays bounded.
        #[test]
        fn any_guest_bytes_and_indices_are_survived(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            head in any::<u32>(),
            tail in any::<u32>(),
            handshake_first in any::<bool>(),
        ) {
            let (g, mut r) = setup();
            if handshake_first {
                let _ = super::handshake(&g, &mut r, 1);
            }
            let ring = g.tx.0 + 8;
            g.mem.write_slice(&bytes, GuestAddress(ring)).unwrap();
            // Sometimes a consistent head, sometimes anything.
            let head = if head % 2 == 0 { bytes.len() as u32 } else { head };
            g.set(g.tx.0 + 4, head);
            if tail % 3 == 0 {
                g.set(g.tx.0, tail);
            }
            for _ in 0..4 {
                let p = r.poll(&g.mem);
                let delivered: usize = p.delivered.iter().map(|d| match d {
                    Delivery::Data { payload, .. } => payload.len(),
                    _ => 0,
                }).sum();
                prop_assert!(delivered <= bytes.len());
            }
            // The guest's receive FIFO is never filled completely.
            prop_assert!(g.avail() < g.rx.1);
        }
    }
}
