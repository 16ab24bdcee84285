//! A hostile guest against the DSP's APR services: any bytes, and well-framed packets with any
//! service, opcode, ports, token and payload, are answered or dropped without a panic; what the
//! DSP keeps (maps, queued buffers, COPPs) and what it sends back stay bounded; the playout and
//! consume paths only hand out what was queued.

use proptest::prelude::*;
#[path = "apr_support.rs"]
mod apr_support;
use apr_support::framed;

use sideband_device::adsp::apr::{packet, Router};

/// Opcodes the services know, so most packets reach their decoders.
const OPCODES: [u32; 18] = [
    0x0001_292C,
    0x0001_290C,
    0x0001_2905, // core
    0x0001_00EF,
    0x0001_00E5,
    0x0001_00E6, // AFE
    0x0001_0D92,
    0x0001_0D94,
    0x0001_0DB3,
    0x0001_0D98,
    0x0001_0DAB,
    0x0001_0DAA,
    0x0001_0BD3,
    0x0001_0BDB,
    0x0001_0BCD, // ASM
    0x0001_0326,
    0x0001_0327,
    0x0001_0325, // ADM
];

fn op() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => (0..OPCODES.len()).prop_map(|i| OPCODES[i]),
        1 => any::<u32>(),
    ]
}

fn svc() -> impl Strategy<Value = u8> {
    prop_oneof![4 => prop::sample::select(vec![3u8, 4, 7, 8]), 1 => any::<u8>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_bytes_are_answered_or_dropped(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut r = Router::default();
        for answer in r.handle(&bytes) {
            prop_assert!(packet::parse(&answer).is_ok(), "the DSP answers with packets apr.c accepts");
        }
    }

    #[test]
    fn sequences_of_framed_commands_keep_the_dsp_bounded(
        cmds in prop::collection::vec(
            (svc(), any::<u16>(), any::<u32>(), op(), prop::collection::vec(any::<u8>(), 0..96), 0u64..50_000),
            1..120,
        )
    ) {
        let mut r = Router::default();
        let mut sent = 0usize;
        for (svc, port, token, opcode, payload, elapsed) in cmds {
            // Half the time, aim at session 1's stream port, where ASM keeps state.
            let port = if port % 2 == 0 { 0x0101 } else { port };
            let answers = r.handle(&framed(svc, port, opcode, token, &payload));
            prop_assert!(answers.len() <= 2, "one answer per command, and an EOS event at most");
            for a in &answers {
                prop_assert!(packet::parse(a).is_ok());
            }
            for session in 0..=9u8 {
                if let Some((_, len)) = r.asm().next_chunk(session, 4096) {
                    prop_assert!(len <= 4096);
                    sent += r.asm().consume(session, len).len();
                }
            }
            sent += r.asm().play(elapsed).len();
            let s = r.asm().stats();
            prop_assert!(s.writes_done <= s.writes, "only queued buffers come back");
            prop_assert!(s.eos_rendered <= r.stats().asm);
        }
        prop_assert!(sent <= 2 * 120 * 64, "the DSP's own events are bounded by what was queued");
        for session in 1..=8u16 {
            prop_assert!(r.adm().ports_of_session(session).len() <= 16);
        }
    }
}
