//! The ADSP's SMMU served to QEMU's `vhost-user-test-device-pci` (virtio id 23) over vhost-user.
//! Requests on virtqueue 0 go to the pure model in `sideband_device::smmu`; the table is shared
//! with the rest of the backend (the DSP translates through it).

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use sideband_device::smmu::{self, Config, Request, SmmuTable, Status, TAIL_LEN};
use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::Listener;
use vhost_user_backend::{VhostUserBackendMut, VhostUserDaemon, VringRwLock, VringT};
use virtio_queue::QueueOwnedT;
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;

/// Queue size QEMU's generic vhost-user device uses (its `vq_size` default).
const QUEUE_SIZE: usize = 64;
/// VHOST_USER_F_PROTOCOL_FEATURES: without it QEMU never asks for protocol features (CONFIG).
const F_PROTOCOL_FEATURES: u64 = 1 << 30;
/// Requests are at most 72 bytes (PROBE); anything longer is truncated before decoding.
const MAX_REQUEST: usize = 256;
/// A PROBE property area larger than this is refused rather than zeroed.
const MAX_WRITABLE: usize = 64 * 1024;

/// What the SMMU has seen, for reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViommuStats {
    /// Requests by kind.
    pub attach: u64,
    /// DETACH requests.
    pub detach: u64,
    /// MAP requests.
    pub map: u64,
    /// UNMAP requests.
    pub unmap: u64,
    /// PROBE requests.
    pub probe: u64,
    /// Requests answered with a status other than OK.
    pub errors: u64,
    /// Endpoints that were attached at least once.
    pub endpoints_seen: Vec<u32>,
}

/// State shared between the vhost-user thread and the rest of the backend.
#[derive(Clone, Debug, Default)]
pub struct Smmu {
    /// The translation table.
    pub table: Arc<Mutex<SmmuTable>>,
    /// Request counters.
    pub stats: Arc<Mutex<ViommuStats>>,
}

struct Backend {
    smmu: Smmu,
    config: Config,
    mem: Option<GuestMemoryAtomic<GuestMemoryMmap>>,
}

impl Backend {
    fn count(&self, request: &Result<Request, Status>, status: Status) {
        let Some(mut s) = crate::fatal::lock(&self.smmu.stats, "SMMU stats") else {
            return;
        };
        match request {
            Ok(Request::Attach { endpoint, .. }) => {
                s.attach += 1;
                if !s.endpoints_seen.contains(endpoint) {
                    s.endpoints_seen.push(*endpoint);
                }
            }
            Ok(Request::Detach { .. }) => s.detach += 1,
            Ok(Request::Map { .. }) => s.map += 1,
            Ok(Request::Unmap { .. }) => s.unmap += 1,
            Ok(Request::Probe { .. }) => s.probe += 1,
            Err(_) => {}
        }
        if status != Status::Ok {
            s.errors += 1;
        }
    }

    fn process_queue(&self, vring: &VringRwLock) -> io::Result<()> {
        let Some(atomic) = &self.mem else {
            log::warn!("virtio-iommu: kick before the memory table");
            return Ok(());
        };
        let mem = atomic.memory();
        let chains: Vec<_> = vring
            .get_mut()
            .get_queue_mut()
            .iter(mem.clone())
            .map_err(|e| io::Error::other(format!("virtio-iommu queue: {e}")))?
            .collect();
        for chain in chains {
            let head = chain.head_index();
            let mut request = Vec::new();
            let mut writable: Vec<(GuestAddress, usize)> = Vec::new();
            let mut broken = false;
            for desc in chain {
                let len = desc.len() as usize;
                if desc.is_write_only() {
                    writable.push((desc.addr(), len));
                } else if !writable.is_empty() {
                    // Readable after writable breaks the virtio ordering rule.
                    broken = true;
                } else if request.len() < MAX_REQUEST {
                    let take = len.min(MAX_REQUEST - request.len());
                    let mut buf = vec![0u8; take];
                    if mem.read_slice(&mut buf, desc.addr()).is_err() {
                        broken = true;
                    }
                    request.extend(buf);
                }
            }
            let total: usize = writable.iter().map(|(_, l)| *l).sum();
            let used = if broken || total > MAX_WRITABLE {
                log::warn!(
                    "virtio-iommu: malformed descriptor chain (head {head}); reporting IOERR"
                );
                write_reply(
                    &mem,
                    &writable,
                    total,
                    0,
                    if broken { Status::IoErr } else { Status::Inval },
                )
            } else {
                let table = crate::fatal::lock(&self.smmu.table, "SMMU")
                    .ok_or_else(|| io::Error::other("smmu lock poisoned"))?;
                let mut table = table;
                match smmu::handle(&mut table, &self.config, &request, total) {
                    Some(reply) => {
                        drop(table);
                        self.count(&reply.request, reply.status);
                        log::debug!("virtio-iommu: {:?} -> {:?}", reply.request, reply.status);
                        write_reply(&mem, &writable, total, reply.zeroed, reply.status)
                    }
                    None => 0,
                }
            };
            vring
                .add_used(head, used as u32)
                .map_err(|e| io::Error::other(format!("virtio-iommu add_used: {e}")))?;
        }
        vring.signal_used_queue()
    }
}

/// Writes `zeroed` zero bytes at the start of the writable area and the status tail at its end;
/// returns the bytes written (the used length), 0 if guest memory refused the writes.
fn write_reply(
    mem: &GuestMemoryMmap,
    writable: &[(GuestAddress, usize)],
    total: usize,
    zeroed: usize,
    status: Status,
) -> usize {
    if total < TAIL_LEN {
        return 0;
    }
    let mut tail = [0u8; TAIL_LEN];
    tail[0] = status as u8;
    let mut ok = write_at(mem, writable, 0, &vec![0u8; zeroed.min(total - TAIL_LEN)]);
    ok &= write_at(mem, writable, total - TAIL_LEN, &tail);
    if ok {
        total
    } else {
        0
    }
}

/// Writes `bytes` at byte `offset` of the scattered area `segs`.
fn write_at(
    mem: &GuestMemoryMmap,
    segs: &[(GuestAddress, usize)],
    mut offset: usize,
    mut bytes: &[u8],
) -> bool {
    for (addr, len) in segs {
        if bytes.is_empty() {
            break;
        }
        if offset >= *len {
            offset -= len;
            continue;
        }
        let n = (len - offset).min(bytes.len());
        let Some(at) = addr.0.checked_add(offset as u64) else {
            return false;
        };
        if mem.write_slice(&bytes[..n], GuestAddress(at)).is_err() {
            return false;
        }
        bytes = &bytes[n..];
        offset = 0;
    }
    bytes.is_empty()
}

impl VhostUserBackendMut for Backend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        2
    }

    fn max_queue_size(&self) -> usize {
        QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        smmu::DEVICE_FEATURES | F_PROTOCOL_FEATURES
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::CONFIG | VhostUserProtocolFeatures::REPLY_ACK
    }

    fn set_event_idx(&mut self, _enabled: bool) {}

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let bytes = self.config.to_bytes();
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(size as usize).min(bytes.len());
        let mut out = bytes[start..end].to_vec();
        out.resize(size as usize, 0);
        out
    }

    fn update_memory(&mut self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        self.mem = Some(mem);
        Ok(())
    }

    fn reset_device(&mut self) {
        if let Some(mut t) = crate::fatal::lock(&self.smmu.table, "SMMU") {
            t.reset();
        }
    }

    fn handle_event(
        &mut self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread: usize,
    ) -> io::Result<()> {
        if evset != EventSet::IN {
            return Err(io::Error::other(format!(
                "virtio-iommu: unexpected event set {evset:?}"
            )));
        }
        match device_event {
            0 => self.process_queue(&vrings[0]),
            // The event queue carries faults to the driver; we report faults on our side instead.
            1 => Ok(()),
            other => Err(io::Error::other(format!(
                "virtio-iommu: event for queue {other}"
            ))),
        }
    }
}

/// A running vhost-user virtio-iommu for one QEMU connection.
#[derive(Debug)]
pub struct ViommuServer {
    /// The shared table and counters.
    pub smmu: Smmu,
    _thread: JoinHandle<()>,
}

impl ViommuServer {
    /// Listens on `socket` now (QEMU may connect as soon as this returns) and serves one
    /// connection on a thread of its own.
    pub fn serve(socket: &Path) -> io::Result<Self> {
        let mut listener = Listener::new(socket, true).map_err(|e| {
            io::Error::other(format!("vhost-user listener on {}: {e}", socket.display()))
        })?;
        let smmu = Smmu::default();
        let backend = Arc::new(RwLock::new(Backend {
            smmu: smmu.clone(),
            config: Config::default(),
            mem: None,
        }));
        let mut daemon = VhostUserDaemon::new(
            "viommu".into(),
            backend,
            GuestMemoryAtomic::new(GuestMemoryMmap::new()),
        )
        .map_err(|e| io::Error::other(format!("vhost-user daemon: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("viommu".into())
            .spawn(move || {
                if let Err(e) = daemon.start(&mut listener) {
                    log::error!("virtio-iommu: vhost-user start failed: {e}");
                    return;
                }
                match daemon.wait() {
                    Ok(()) => log::debug!("virtio-iommu: QEMU disconnected"),
                    Err(e) => log::debug!("virtio-iommu: connection ended: {e}"),
                }
            })?;
        Ok(ViommuServer {
            smmu,
            _thread: thread,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_goes_at_the_end_of_scattered_writable_area() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0x1000), 0x1000)]).unwrap();
        mem.write_slice(&[0xaa; 16], GuestAddress(0x1000)).unwrap();
        let segs = [(GuestAddress(0x1000), 6), (GuestAddress(0x1800), 6)];
        assert_eq!(write_reply(&mem, &segs, 12, 8, Status::Range), 12);
        let mut a = [0u8; 6];
        mem.read_slice(&mut a, GuestAddress(0x1000)).unwrap();
        assert_eq!(a, [0; 6]);
        let mut b = [0u8; 6];
        mem.read_slice(&mut b, GuestAddress(0x1800)).unwrap();
        assert_eq!(b, [0, 0, Status::Range as u8, 0, 0, 0]);
        assert_eq!(
            write_reply(&mem, &[(GuestAddress(0x9000), 4)], 4, 0, Status::Ok),
            0
        );
    }

    #[test]
    fn config_reads_are_clamped_and_padded() {
        let b = Backend {
            smmu: Smmu::default(),
            config: Config::default(),
            mem: None,
        };
        assert_eq!(b.get_config(0, 40), Config::default().to_bytes().to_vec());
        assert_eq!(b.get_config(36, 8), vec![0; 8]);
        assert_eq!(b.get_config(100, 4), vec![0; 4]);
    }
}
