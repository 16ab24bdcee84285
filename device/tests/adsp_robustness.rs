//! The guest is untrusted: random and mutated packets and messages never panic the models, and
//! the link keeps working afterwards.

#[path = "adsp_support.rs"]
mod support;

use std::time::Duration;

use sideband_device::adsp::qrtr::Packet;
use sideband_device::adsp::uaudio::{
    AudioFormat, Direction, StreamIndication, StreamRequest, StreamResponse,
};
use sideband_device::adsp::{AdspLink, State, StreamParams};
use support::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            2 => b.truncate(rng.below(b.len() + 1)),
            _ => {
                let n = rng.below(8);
                b.extend((0..n).map(|_| rng.next() as u8));
            }
        }
    }
    b
}

fn params() -> StreamParams {
    StreamParams {
        card: 1,
        pcm: 0,
        direction: Direction::Playback,
        audio_format: AudioFormat::S16Le as u32,
        channels: 2,
        rate: 48_000,
        xfer_buff_size: 0,
        service_interval: None,
    }
}

#[test]
fn mutated_packets_never_panic_and_the_link_recovers() {
    let resp = qmi(2, 1, 1, &full_response_payload(0x0001_0000));
    let seeds: Vec<Vec<u8>> = vec![
        guest_ctrl(HELLO, BCAST, [0; 4]),
        new_server_uaudio(),
        guest_ctrl(BYE, DSP, [0; 4]),
        guest_ctrl(DEL_SERVER, DSP, [0x41D, 1, GUEST, SVC_PORT]),
        v1(
            RESUME_TX,
            (GUEST, SVC_PORT),
            false,
            (DSP, DSP_PORT),
            &ctrl(7, [1, SVC_PORT, 0, 0]),
        ),
        from_service(true, &resp),
        from_service(false, &disconnect_ind(1, 1, 0)),
        from_service(false, &qmi(2, 1, 1, &disable_response_payload(0x0001_0000))),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut link = AdspLink::new();
    link.start(Duration::ZERO);
    let mut streaming = 0;
    for i in 0..30_000u64 {
        streaming += usize::from(matches!(link.client().state(), State::Streaming { .. }));
        let now = Duration::from_micros(i);
        // Keep the client busy in every state.
        match link.client().state() {
            State::ServiceUp { .. } if rng.below(4) == 0 => {
                let _ = link.enable(params(), now);
            }
            State::Streaming { .. } if rng.below(4) == 0 => {
                let _ = link.disable(now);
            }
            State::Enabling { .. } | State::Disabling { .. } if rng.below(50) == 0 => {
                link.abandon_pending();
            }
            _ => {}
        }
        // Responses answer the pending transaction, so the walk gets past Enabling.
        let txn = link.client().pending().map_or(1, |p| p.txn);
        let mut seeds = seeds.clone();
        seeds.push(from_service(
            false,
            &qmi(2, txn, 1, &full_response_payload(0x0001_0000)),
        ));
        seeds.push(from_service(
            false,
            &qmi(2, txn, 1, &disable_response_payload(0x0001_0000)),
        ));
        let pkt = if rng.below(10) == 0 {
            (0..rng.below(80)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            if rng.below(3) == 0 {
                seed.clone()
            } else {
                mutate(&mut rng, seed)
            }
        };
        let out = link.receive(&pkt, now);
        for p in &out.packets {
            // Everything we send is a valid packet.
            assert!(Packet::decode(p).is_ok(), "we sent {p:02x?}");
        }
    }
    assert!(
        streaming > 100,
        "the random walk reached streaming {streaming} times"
    );
    // Still works: a clean bring-up and enable.
    link.link_down();
    link.start(Duration::ZERO);
    link.receive(&guest_ctrl(HELLO, BCAST, [0; 4]), Duration::ZERO);
    link.receive(&new_server_uaudio(), Duration::ZERO);
    assert!(link.enable(params(), Duration::ZERO).is_ok());
    let txn = link.client().pending().unwrap().txn;
    let resp = qmi(2, txn, 1, &full_response_payload(0x0001_0000));
    let out = link.receive(&from_service(false, &resp), Duration::ZERO);
    assert!(out.error.is_none());
    assert!(link.client().resources().is_some());
}

#[test]
fn mutated_qmi_messages_never_panic() {
    let seeds = [
        qmi(2, 1, 1, &full_response_payload(0x0001_0000)),
        disconnect_ind(1, 1, 0),
        params().request(true).encode(1).unwrap(),
    ];
    let mut rng = Rng(42);
    let mut accepted = 0;
    for _ in 0..30_000 {
        let seed = &seeds[rng.below(seeds.len())];
        let b = mutate(&mut rng, seed);
        accepted += usize::from(StreamResponse::decode(&b).is_ok());
        accepted += usize::from(StreamIndication::decode(&b).is_ok());
        accepted += usize::from(StreamRequest::decode(&b).is_ok());
    }
    // Some mutations (in values, or skipped TLVs) stay valid; most do not.
    assert!(accepted > 0);
}
