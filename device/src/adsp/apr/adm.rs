//! The DSP's device manager (ADM, APR service 8), as q6adm and q6routing drive it: a COPP (the
//! post-processing chain in front of an AFE port) is opened per port and format
//! (DEVICE_OPEN_V5, answered with its id), a stream session is routed to COPPs
//! (MATRIX_MAP_ROUTINGS_V5), and the COPP is closed (DEVICE_CLOSE_V5). The route is what tells
//! the DSP that session 1's PCM goes to the USB port.

use std::collections::BTreeMap;

use super::packet::{self, u16_at, u32_at, Header, MsgType};

/// ADM_CMD_DEVICE_OPEN_V5 and its answer.
pub const DEVICE_OPEN_V5: u32 = 0x0001_0326;
const DEVICE_OPEN_V5_RSP: u32 = 0x0001_0329;
/// ADM_CMD_DEVICE_CLOSE_V5.
pub const DEVICE_CLOSE_V5: u32 = 0x0001_0327;
/// ADM_CMD_MATRIX_MAP_ROUTINGS_V5.
pub const MATRIX_MAP_V5: u32 = 0x0001_0325;
/// Status: a bad parameter (ADSP_EBADPARAM).
pub const EBADPARAM: u32 = 2;
/// The answer's "no COPP" id.
const INVALID_COPP: u16 = 0xFF;
/// COPPs alive at once (AFE_MAX_PORTS × MAX_COPPS_PER_PORT is far more than a card uses).
const MAX_COPPS: usize = 64;
/// COPPs one route may name (q6routing sends one per BE).
const MAX_ROUTE_COPPS: usize = 16;
/// Sessions with a route at once (q6asm has 8; the guest picks the number).
const MAX_ROUTES: usize = 64;

/// One open COPP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copp {
    /// The AFE port it feeds (endpoint_id_1).
    pub afe_port: u16,
    /// Its format: channels, bits, rate.
    pub channels: u16,
    /// See `channels`.
    pub bits: u16,
    /// See `channels`.
    pub rate: u32,
}

/// Figures of the device manager.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmStats {
    /// COPPs opened.
    pub opened: u64,
    /// COPPs closed.
    pub closed: u64,
    /// Routes set.
    pub routes: u64,
    /// Commands refused.
    pub refused: u64,
}

/// The device manager's state.
#[derive(Clone, Debug, Default)]
pub struct Adm {
    copps: BTreeMap<u16, Copp>,
    routes: BTreeMap<u16, Vec<u16>>,
    stats: AdmStats,
}

impl Adm {
    /// Figures so far.
    pub fn stats(&self) -> AdmStats {
        self.stats
    }

    /// The AFE ports a stream session is routed to (through open COPPs).
    pub fn ports_of_session(&self, session: u16) -> Vec<u16> {
        self.routes
            .get(&session)
            .into_iter()
            .flatten()
            .filter_map(|id| self.copps.get(id).map(|c| c.afe_port))
            .collect()
    }

    fn refuse(&mut self, req: &Header, why: &str) -> Vec<u8> {
        log::warn!("ADM: refused {:#x}: {why}", req.opcode);
        self.stats.refused += 1;
        packet::basic(req, EBADPARAM)
    }

    /// Answers one command.
    pub fn handle(&mut self, req: &Header, p: &[u8]) -> Vec<u8> {
        match req.opcode {
            DEVICE_OPEN_V5 => self.open(req, p),
            DEVICE_CLOSE_V5 => match self.copps.remove(&req.dest_port) {
                Some(_) => {
                    self.stats.closed += 1;
                    for copps in self.routes.values_mut() {
                        copps.retain(|&c| c != req.dest_port);
                    }
                    packet::basic(req, packet::EOK)
                }
                None => self.refuse(req, "DEVICE_CLOSE_V5 of a COPP that is not open"),
            },
            MATRIX_MAP_V5 => self.matrix_map(req, p),
            other => {
                log::debug!("ADM: command {other:#x}, not modelled");
                packet::basic(req, packet::EUNSUPPORTED)
            }
        }
    }

    /// {u16 flags, u16 mode, u16 endpoint 1, u16 endpoint 2, topology, u16 channels, u16 bits,
    /// rate, map[8]} → {status, u16 copp id, u16 0}; an id of 0xFF refuses.
    fn open(&mut self, req: &Header, p: &[u8]) -> Vec<u8> {
        let fields = (|| {
            Some((
                u16_at(p, 4)?,
                u16_at(p, 12)?,
                u16_at(p, 14)?,
                u32_at(p, 16)?,
            ))
        })();
        let free = (1..=MAX_COPPS as u16).find(|id| !self.copps.contains_key(id));
        let copp = match (fields, free) {
            (Some((afe_port, channels, bits, rate)), Some(id))
                if (1..=8).contains(&channels) && rate != 0 =>
            {
                self.copps.insert(
                    id,
                    Copp {
                        afe_port,
                        channels,
                        bits,
                        rate,
                    },
                );
                self.stats.opened += 1;
                id
            }
            (fields, free) => {
                log::warn!(
                    "ADM: DEVICE_OPEN_V5 refused ({})",
                    if free.is_none() {
                        "no free COPP"
                    } else if fields.is_none() {
                        "short"
                    } else {
                        "format out of range"
                    }
                );
                self.stats.refused += 1;
                INVALID_COPP
            }
        };
        let mut payload = 0u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&copp.to_le_bytes());
        payload.extend_from_slice(&[0, 0]);
        packet::answer(req, MsgType::CmdRsp, DEVICE_OPEN_V5_RSP, &payload)
    }

    /// {matrix id, num sessions}{u16 session, u16 num copps}{u16 copp id...}: q6adm sends one
    /// session per command.
    fn matrix_map(&mut self, req: &Header, p: &[u8]) -> Vec<u8> {
        let fields = (|| {
            if u32_at(p, 4)? != 1 {
                return None;
            }
            let session = u16_at(p, 8)?;
            let n = usize::from(u16_at(p, 10)?);
            if n > MAX_ROUTE_COPPS {
                return None;
            }
            let copps = (0..n)
                .map(|i| u16_at(p, 12 + 2 * i))
                .collect::<Option<Vec<_>>>()?;
            Some((session, copps))
        })();
        let Some((session, copps)) = fields else {
            return self.refuse(req, "malformed MATRIX_MAP_ROUTINGS_V5");
        };
        if let Some(bad) = copps.iter().find(|c| !self.copps.contains_key(c)) {
            return self.refuse(req, &format!("route to COPP {bad}, which is not open"));
        }
        if !self.routes.contains_key(&session) && self.routes.len() >= MAX_ROUTES {
            return self.refuse(req, "too many routed sessions");
        }
        self.routes.insert(session, copps);
        self.stats.routes += 1;
        packet::basic(req, packet::EOK)
    }
}
