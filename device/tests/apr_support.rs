//! Test-side helpers shared by the `apr_*` tests (included with `#[path]`): APR packets framed by
//! hand as the guest's apr.c frames them, independent of the model's encoder.
#![allow(dead_code)]

use sideband_device::adsp::apr::packet;

/// A sequenced command from the apps domain (5) to service `svc` on the DSP (4), with the same
/// port on both ends (as q6asm, q6adm and q6afe address theirs).
pub fn framed(svc: u8, port: u16, opcode: u32, token: u32, payload: &[u8]) -> Vec<u8> {
    let size = 20 + payload.len();
    let mut v = Vec::with_capacity(size);
    v.extend_from_slice(&0x0250u16.to_le_bytes()); // SEQ_CMD, 5 words, version 0
    v.extend_from_slice(&(size as u16).to_le_bytes());
    v.extend_from_slice(&[svc, 5]);
    v.extend_from_slice(&port.to_le_bytes());
    v.extend_from_slice(&[svc, 4]);
    v.extend_from_slice(&port.to_le_bytes());
    v.extend_from_slice(&token.to_le_bytes());
    v.extend_from_slice(&opcode.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// Little-endian words.
pub fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The status of a basic answer to `opcode`.
pub fn basic_status(answer: &[u8], opcode: u32) -> u32 {
    let (h, p) = packet::parse(answer).unwrap();
    assert_eq!(h.opcode, packet::BASIC_RSP_RESULT);
    assert_eq!(u32::from_le_bytes(p[0..4].try_into().unwrap()), opcode);
    u32::from_le_bytes(p[4..8].try_into().unwrap())
}
