//! Test-side helpers shared by the `adsp_*` tests (included with `#[path]`): QRTR and QMI bytes
//! assembled by hand from the layouts in guest-driver.md §3.2–3.3, independent of the model's
//! encoders, and a parser for what the model sends.
#![allow(dead_code)]

pub const CTRL: u32 = 0xFFFF_FFFE;
pub const BCAST: u32 = 0xFFFF_FFFF;
pub const GUEST: u32 = 1;
pub const DSP: u32 = 5;
pub const DSP_PORT: u32 = 1;
/// The port the guest's UAUDIO service happens to have.
pub const SVC_PORT: u32 = 0x4005;

pub const DATA: u32 = 1;
pub const HELLO: u32 = 2;
pub const BYE: u32 = 3;
pub const NEW_SERVER: u32 = 4;
pub const DEL_SERVER: u32 = 5;
pub const DEL_CLIENT: u32 = 6;
pub const RESUME_TX: u32 = 7;

/// A v1 packet: eight le32 (version, type, src node, src port, confirm_rx, size, dst node,
/// dst port), payload, zero padding to 4.
pub fn v1(ty: u32, src: (u32, u32), confirm: bool, dst: (u32, u32), payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for f in [
        1,
        ty,
        src.0,
        src.1,
        confirm as u32,
        payload.len() as u32,
        dst.0,
        dst.1,
    ] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(payload);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b
}

/// `struct qrtr_ctrl_pkt`: le32 cmd and four le32 words.
pub fn ctrl(cmd: u32, words: [u32; 4]) -> Vec<u8> {
    let mut b = cmd.to_le_bytes().to_vec();
    for w in words {
        b.extend_from_slice(&w.to_le_bytes());
    }
    b
}

/// A control packet from the guest's name service (1:CTRL) to `dst_node`:CTRL.
pub fn guest_ctrl(cmd: u32, dst_node: u32, words: [u32; 4]) -> Vec<u8> {
    v1(
        cmd,
        (GUEST, CTRL),
        false,
        (dst_node, CTRL),
        &ctrl(cmd, words),
    )
}

/// NEW_SERVER for UAUDIO as the 7.2/7.3 name service sends it.
pub fn new_server_uaudio() -> Vec<u8> {
    guest_ctrl(NEW_SERVER, DSP, [0x41D, 1, GUEST, SVC_PORT])
}

/// A DATA packet from the guest's UAUDIO service port to our client port.
pub fn from_service(confirm: bool, qmi: &[u8]) -> Vec<u8> {
    v1(DATA, (GUEST, SVC_PORT), confirm, (DSP, DSP_PORT), qmi)
}

/// A parsed v1 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub ty: u32,
    pub src: (u32, u32),
    pub confirm: bool,
    pub dst: (u32, u32),
    pub payload: Vec<u8>,
}

/// Parses what the model sent, checking the v1 layout and padding rules on the way.
pub fn parse(b: &[u8]) -> Parsed {
    assert_eq!(b.len() % 4, 0, "unpadded packet");
    let w = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(w(0), 1, "not v1");
    let size = w(5) as usize;
    assert!(size > 0);
    assert_eq!(b.len(), 32 + size.div_ceil(4) * 4, "length rule");
    assert!(b[32 + size..].iter().all(|x| *x == 0), "padding not zero");
    Parsed {
        ty: w(1),
        src: (w(2), w(3)),
        confirm: w(4) != 0,
        dst: (w(6), w(7)),
        payload: b[32..32 + size].to_vec(),
    }
}

/// One TLV: type, le16 length, value.
pub fn tlv(ty: u8, value: &[u8]) -> Vec<u8> {
    let mut b = vec![ty];
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend_from_slice(value);
    b
}

/// A QMI message: u8 type, le16 txn, le16 msg id, le16 payload length, payload.
pub fn qmi(ty: u8, txn: u16, msg_id: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![ty];
    b.extend_from_slice(&txn.to_le_bytes());
    b.extend_from_slice(&msg_id.to_le_bytes());
    b.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    b.extend_from_slice(payload);
    b
}

pub fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// `mem_info_v01`: u64 iova, u64 dma, u32 size.
pub fn mem(iova: u64, dma: u64, size: u32) -> Vec<u8> {
    let mut b = iova.to_le_bytes().to_vec();
    b.extend_from_slice(&dma.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b
}

pub const SID: u64 = 2;
pub const INTF: [u8; 9] = [9, 4, 1, 1, 1, 1, 2, 0x20, 0];
pub const DATA_EP: [u8; 9] = [9, 5, 0x01, 0x05, 0xc0, 0x00, 1, 0, 0x81];
pub const SYNC_EP: [u8; 9] = [9, 5, 0x81, 0x11, 0x04, 0x00, 4, 0, 0];

/// The payload of a successful enable response with every TLV of §4.4: slot 1, interrupter 1,
/// HIGH speed, UAC2, event ring at IOVA 0x1000, rings at 0xA000/0xB000, buffer at 0x4A000,
/// each IOVA tagged with SID 2 in bits 63:32, controller 0.
pub fn full_response_payload(token: u32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(tlv(0x02, &[0, 0, 0, 0]));
    p.extend(tlv(0x10, &le32(0)));
    p.extend(tlv(0x11, &le32(0)));
    p.extend(tlv(0x12, &le32(1)));
    p.extend(tlv(0x13, &le32(token)));
    p.extend(tlv(0x14, &INTF));
    p.extend(tlv(0x15, &DATA_EP));
    p.extend(tlv(0x16, &SYNC_EP));
    p.extend(tlv(0x17, &0x0200u16.to_le_bytes()));
    p.extend(tlv(0x18, &[0]));
    p.extend(tlv(0x19, &[2]));
    let mut m = Vec::new();
    m.extend(mem(SID << 32 | 0x1000, 0x4100_0000, 4096));
    m.extend(mem(SID << 32 | 0xA000, 0x4100_2000, 4096));
    m.extend(mem(SID << 32 | 0xB000, 0x4100_4000, 4096));
    m.extend(mem(SID << 32 | 0x4A000, 0x4200_0000, 8192));
    m.extend(mem(0, 0, 0));
    assert_eq!(m.len(), 100);
    p.extend(tlv(0x1A, &m));
    p.extend(tlv(0x1B, &[1]));
    p.extend(tlv(0x1C, &le32(3)));
    p.extend(tlv(0x1D, &[0]));
    p
}

/// A failed response as the driver sends it: result 0/0, status FAILURE, errno, token.
pub fn failed_response_payload(token: u32, errno: i32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(tlv(0x02, &[0, 0, 0, 0]));
    p.extend(tlv(0x10, &le32(1)));
    p.extend(tlv(0x11, &errno.to_le_bytes()));
    p.extend(tlv(0x13, &le32(token)));
    p
}

/// A disable response: 0x02, 0x10, 0x11, 0x13, all success.
pub fn disable_response_payload(token: u32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(tlv(0x02, &[0, 0, 0, 0]));
    p.extend(tlv(0x10, &le32(0)));
    p.extend(tlv(0x11, &le32(0)));
    p.extend(tlv(0x13, &le32(token)));
    p
}

/// The DISCONNECT indication as `uaudio_send_disconnect_ind` sends it: dev_event 1, slot id,
/// controller_num valid with value `controller`.
pub fn disconnect_ind(txn: u16, slot: u32, controller: u8) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(tlv(0x01, &le32(1)));
    p.extend(tlv(0x02, &le32(slot)));
    p.extend(tlv(0x19, &[controller]));
    qmi(4, txn, 1, &p)
}
