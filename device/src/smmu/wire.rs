//! virtio-iommu wire format (virtio 1.2 §5.13; include/uapi/linux/virtio_iommu.h): feature bits,
//! the 40-byte config space, request decoding and the device-writable reply.

use super::table::SmmuTable;

/// VIRTIO_IOMMU_F_INPUT_RANGE.
pub const F_INPUT_RANGE: u64 = 1 << 0;
/// VIRTIO_IOMMU_F_DOMAIN_RANGE.
pub const F_DOMAIN_RANGE: u64 = 1 << 1;
/// VIRTIO_IOMMU_F_MAP_UNMAP.
pub const F_MAP_UNMAP: u64 = 1 << 2;
/// VIRTIO_IOMMU_F_PROBE.
pub const F_PROBE: u64 = 1 << 4;
/// VIRTIO_F_VERSION_1.
pub const F_VERSION_1: u64 = 1 << 32;
/// The features this device offers.
pub const DEVICE_FEATURES: u64 =
    F_INPUT_RANGE | F_DOMAIN_RANGE | F_MAP_UNMAP | F_PROBE | F_VERSION_1;

const T_ATTACH: u8 = 1;
const T_DETACH: u8 = 2;
const T_MAP: u8 = 3;
const T_UNMAP: u8 = 4;
const T_PROBE: u8 = 5;
/// Size of the status tail every reply ends with.
pub const TAIL_LEN: usize = 4;

/// Request status (VIRTIO_IOMMU_S_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// Virtio communication error.
    IoErr = 1,
    /// Unsupported request.
    Unsupp = 2,
    /// Internal device error.
    DevErr = 3,
    /// Invalid parameters.
    Inval = 4,
    /// Out-of-range parameters.
    Range = 5,
    /// Entry not found.
    NoEnt = 6,
    /// Bad address.
    Fault = 7,
    /// Insufficient resources.
    NoMem = 8,
}

/// Device configuration (struct virtio_iommu_config, 40 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Supported page sizes: bit N set = 2^N bytes.
    pub page_size_mask: u64,
    /// First IOVA the device translates.
    pub input_start: u64,
    /// Last IOVA (inclusive).
    pub input_end: u64,
    /// First valid domain id.
    pub domain_start: u32,
    /// Last valid domain id (inclusive).
    pub domain_end: u32,
    /// Bytes of properties the driver must provide for a PROBE reply.
    pub probe_size: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            page_size_mask: !0xfff,
            input_start: 0,
            input_end: (1 << 48) - 1,
            domain_start: 0,
            domain_end: u32::MAX,
            probe_size: 512,
        }
    }
}

impl Config {
    /// The little-endian config space.
    pub fn to_bytes(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0..8].copy_from_slice(&self.page_size_mask.to_le_bytes());
        b[8..16].copy_from_slice(&self.input_start.to_le_bytes());
        b[16..24].copy_from_slice(&self.input_end.to_le_bytes());
        b[24..28].copy_from_slice(&self.domain_start.to_le_bytes());
        b[28..32].copy_from_slice(&self.domain_end.to_le_bytes());
        b[32..36].copy_from_slice(&self.probe_size.to_le_bytes());
        b
    }
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// One decoded request, for logs and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// ATTACH endpoint to domain.
    Attach {
        domain: u32,
        endpoint: u32,
        flags: u32,
    },
    /// DETACH endpoint from domain.
    Detach { domain: u32, endpoint: u32 },
    /// MAP virt_start..=virt_end to phys.
    Map {
        domain: u32,
        virt_start: u64,
        virt_end: u64,
        phys: u64,
        flags: u32,
    },
    /// UNMAP virt_start..=virt_end.
    Unmap {
        domain: u32,
        virt_start: u64,
        virt_end: u64,
    },
    /// PROBE endpoint.
    Probe { endpoint: u32 },
}

/// Decodes the device-readable part of a request; `Err` carries the status to reply with.
pub fn decode(req: &[u8]) -> Result<Request, Status> {
    let ty = *req.first().ok_or(Status::Inval)?;
    let short = Status::Inval;
    // Every field sits after the 4-byte head; lengths match the spec's request structures minus
    // the tail, which lives in the device-writable part.
    let r = match ty {
        T_ATTACH | T_DETACH => {
            if req.len() < 20 {
                return Err(short);
            }
            let domain = le32(req, 4).ok_or(short)?;
            let endpoint = le32(req, 8).ok_or(short)?;
            if ty == T_ATTACH {
                Request::Attach {
                    domain,
                    endpoint,
                    flags: le32(req, 12).ok_or(short)?,
                }
            } else {
                Request::Detach { domain, endpoint }
            }
        }
        T_MAP => Request::Map {
            domain: le32(req, 4).ok_or(short)?,
            virt_start: le64(req, 8).ok_or(short)?,
            virt_end: le64(req, 16).ok_or(short)?,
            phys: le64(req, 24).ok_or(short)?,
            flags: le32(req, 32).ok_or(short)?,
        },
        T_UNMAP => {
            if req.len() < 28 {
                return Err(short);
            }
            Request::Unmap {
                domain: le32(req, 4).ok_or(short)?,
                virt_start: le64(req, 8).ok_or(short)?,
                virt_end: le64(req, 16).ok_or(short)?,
            }
        }
        T_PROBE => Request::Probe {
            endpoint: le32(req, 4).ok_or(short)?,
        },
        _ => return Err(Status::Unsupp),
    };
    Ok(r)
}

/// What the device writes back for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The decoded request, or the status an undecodable one got (for logs and counts).
    pub request: Result<Request, Status>,
    /// The request's status; it goes in the tail, the last [`TAIL_LEN`] writable bytes.
    pub status: Status,
    /// Bytes before the tail to fill with zeros (the PROBE property area: no properties).
    pub zeroed: usize,
}

/// Executes one request against the table. `writable` is the size of the device-writable part
/// of the descriptor chain; the tail goes at its end, as the Linux driver reads it.
/// `None` when there is no room even for the tail (the request is dropped and logged).
pub fn handle(
    table: &mut SmmuTable,
    config: &Config,
    req: &[u8],
    writable: usize,
) -> Option<Reply> {
    if writable < TAIL_LEN {
        log::warn!("virtio-iommu: request with {writable} writable bytes, no room for a status");
        return None;
    }
    let decoded = decode(req);
    let (status, zeroed) = match decoded {
        Err(s) => {
            log::warn!(
                "virtio-iommu: bad request ({} bytes, type {:?}): {s:?}",
                req.len(),
                req.first()
            );
            (s, 0)
        }
        Ok(Request::Attach {
            domain,
            endpoint,
            flags,
        }) => {
            if flags != 0 {
                (Status::Inval, 0)
            } else if domain < config.domain_start || domain > config.domain_end {
                (Status::Range, 0)
            } else {
                (table.attach(domain, endpoint), 0)
            }
        }
        Ok(Request::Detach { domain, endpoint }) => (table.detach(domain, endpoint), 0),
        Ok(Request::Map {
            domain,
            virt_start,
            virt_end,
            phys,
            flags,
        }) => {
            if virt_start < config.input_start || virt_end > config.input_end {
                (Status::Range, 0)
            } else {
                (table.map(domain, virt_start, virt_end, phys, flags), 0)
            }
        }
        Ok(Request::Unmap {
            domain,
            virt_start,
            virt_end,
        }) => (table.unmap(domain, virt_start, virt_end), 0),
        Ok(Request::Probe { .. }) => {
            // Every endpoint id is ours (the q6usb node may use any); no properties to report:
            // an all-zero area reads as a single NONE property, which ends the list.
            let room = writable - TAIL_LEN;
            if room < config.probe_size as usize {
                (Status::Inval, 0)
            } else {
                (Status::Ok, config.probe_size as usize)
            }
        }
    };
    if status != Status::Ok {
        log::warn!("virtio-iommu: {decoded:?} -> {status:?}");
    }
    Some(Reply {
        request: decoded,
        status,
        zeroed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attach(domain: u32, endpoint: u32) -> Vec<u8> {
        let mut b = vec![T_ATTACH, 0, 0, 0];
        b.extend(domain.to_le_bytes());
        b.extend(endpoint.to_le_bytes());
        b.extend([0u8; 8]);
        b
    }

    fn map(domain: u32, s: u64, e: u64, p: u64, flags: u32) -> Vec<u8> {
        let mut b = vec![T_MAP, 0, 0, 0];
        b.extend(domain.to_le_bytes());
        b.extend(s.to_le_bytes());
        b.extend(e.to_le_bytes());
        b.extend(p.to_le_bytes());
        b.extend(flags.to_le_bytes());
        b
    }

    fn status(t: &mut SmmuTable, req: &[u8], writable: usize) -> u8 {
        handle(t, &Config::default(), req, writable).unwrap().status as u8
    }

    #[test]
    fn config_layout_is_40_bytes_le() {
        let b = Config::default().to_bytes();
        assert_eq!(
            u64::from_le_bytes(b[0..8].try_into().unwrap()) & 0x1000,
            0x1000
        );
        assert_eq!(
            u64::from_le_bytes(b[16..24].try_into().unwrap()),
            (1 << 48) - 1
        );
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 512);
    }

    #[test]
    fn attach_map_unmap_round_trip_as_the_linux_driver_sends_them() {
        let mut t = SmmuTable::default();
        assert_eq!(status(&mut t, &attach(1, 0x2000f), 4), Status::Ok as u8);
        assert_eq!(
            status(&mut t, &map(1, 0x1000, 0x1fff, 0x4000_0000, 3), 4),
            Status::Ok as u8
        );
        assert_eq!(
            t.translate(0x2000f, 0x1004, 4, true),
            Ok(vec![(0x4000_1004 - 0x1000, 4)])
        );
        let mut unmap = vec![T_UNMAP, 0, 0, 0];
        unmap.extend(1u32.to_le_bytes());
        unmap.extend(0x1000u64.to_le_bytes());
        unmap.extend(0x1fffu64.to_le_bytes());
        unmap.extend([0u8; 4]);
        assert_eq!(status(&mut t, &unmap, 4), Status::Ok as u8);
        assert_eq!(t.mapping_count(), 0);
    }

    #[test]
    fn probe_fills_zero_properties_then_ok() {
        let mut t = SmmuTable::default();
        let mut probe = vec![T_PROBE, 0, 0, 0];
        probe.extend(0x2000fu32.to_le_bytes());
        probe.extend([0u8; 64]);
        let r = handle(&mut t, &Config::default(), &probe, 512 + 4).unwrap();
        assert_eq!(r.request, Ok(Request::Probe { endpoint: 0x2000f }));
        assert_eq!((r.status, r.zeroed), (Status::Ok, 512));
        assert_eq!(
            status(&mut t, &probe, 100),
            Status::Inval as u8,
            "probe area smaller than probe_size"
        );
    }

    #[test]
    fn malformed_requests_get_a_status_not_a_panic() {
        let mut t = SmmuTable::default();
        assert_eq!(status(&mut t, &[], 4), Status::Inval as u8);
        assert_eq!(status(&mut t, &[99, 0, 0, 0], 4), Status::Unsupp as u8);
        assert_eq!(status(&mut t, &[T_MAP, 0, 0, 0, 1], 4), Status::Inval as u8);
        assert_eq!(status(&mut t, &attach(1, 5)[..10], 4), Status::Inval as u8);
        let mut flagged = attach(1, 5);
        flagged[12] = 1;
        assert_eq!(status(&mut t, &flagged, 4), Status::Inval as u8);
        assert_eq!(
            status(&mut t, &map(1, 0, 0xfff, 0, 3), 4),
            Status::NoEnt as u8
        );
        assert_eq!(
            status(&mut t, &map(1, 0, 1 << 50, 0, 3), 4),
            Status::Range as u8
        );
        assert!(handle(&mut t, &Config::default(), &attach(1, 5), 2).is_none());
    }
}
