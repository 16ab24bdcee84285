//! The DSP's core service (AVCS, APR service 3) as q6core asks it: the framework version (which
//! q6afe, q6asm and q6adm query at probe, 100 ms each) and whether the DSP is ready. The DSP
//! lists no per-service API versions, so the drivers keep their first API (the one the design
//! notes describe).

use super::packet::{self, words, Header, MsgType};

/// AVCS_GET_VERSIONS and its answer.
pub const GET_VERSIONS: u32 = 0x0001_2905;
const GET_VERSIONS_RSP: u32 = 0x0001_2906;
/// AVCS_CMD_ADSP_EVENT_GET_STATE and its answer.
pub const GET_STATE: u32 = 0x0001_290C;
const GET_STATE_RSP: u32 = 0x0001_290D;
/// AVCS_CMD_GET_FWK_VERSION and its answer.
pub const GET_FWK_VERSION: u32 = 0x0001_292C;
const GET_FWK_VERSION_RSP: u32 = 0x0001_292D;

/// The framework version the emulated DSP reports: major, minor, branch, sub-branch.
const FWK_VERSION: [u32; 4] = [2, 8, 0, 0];

/// Answers one command to the core service.
pub fn handle(req: &Header, _payload: &[u8]) -> Vec<u8> {
    match req.opcode {
        GET_FWK_VERSION => {
            let mut p = FWK_VERSION.to_vec();
            p.push(0); // num_services
            packet::answer(req, MsgType::CmdRsp, GET_FWK_VERSION_RSP, &words(&p))
        }
        GET_VERSIONS => packet::answer(req, MsgType::CmdRsp, GET_VERSIONS_RSP, &words(&[0, 0])),
        GET_STATE => packet::answer(req, MsgType::CmdRsp, GET_STATE_RSP, &words(&[1])),
        _ => packet::basic(req, packet::EUNSUPPORTED),
    }
}
