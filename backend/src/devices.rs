//! The emulated hardware for one boot: starts a server for every device of a [`DeviceSet`] on a
//! socket in a private folder, before QEMU starts, and reports what each device saw.

use anyhow::{Context, Result};

use std::sync::{Arc, Mutex};

use crate::transport::qrtr_link::{PacketHandler, QrtrLink};
use crate::transport::viommu::{ViommuServer, ViommuStats};
use crate::vm::machine::{DeviceSet, Sockets};

/// The device servers of one boot; dropping it removes the sockets.
#[derive(Debug)]
pub struct RunningDevices {
    /// Where QEMU connects.
    pub sockets: Sockets,
    viommu: Option<ViommuServer>,
    adsp_link: Option<(QrtrLink, Arc<Mutex<LinkLog>>)>,
    _dir: tempfile::TempDir,
}

/// Until the ADSP's QRTR node answers on the link, the backend notes what the guest sends.
#[derive(Debug, Default)]
pub struct LinkLog {
    packets: u64,
    bytes: u64,
    connects: u64,
}

impl PacketHandler for LinkLog {
    fn on_packet(&mut self, packet: &[u8]) -> Vec<Vec<u8>> {
        self.packets += 1;
        self.bytes += packet.len() as u64;
        Vec::new()
    }
    fn on_connect(&mut self) -> Vec<Vec<u8>> {
        self.connects += 1;
        Vec::new()
    }
    fn on_disconnect(&mut self) {}
}

impl RunningDevices {
    /// Starts the servers. Sockets live in a fresh folder under the system temp dir (a UNIX
    /// socket path must stay under 108 bytes, which an output folder may not).
    pub fn start(set: &DeviceSet) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sideband-")
            .tempdir()
            .context("cannot create a folder for the device sockets")?;
        let mut sockets = Sockets::default();
        let viommu = if set.viommu {
            let path = dir.path().join("viommu.sock");
            let server =
                ViommuServer::serve(&path).context("cannot start the virtio-iommu (ADSP SMMU)")?;
            sockets.viommu = Some(path);
            Some(server)
        } else {
            None
        };
        let adsp_link = if set.adsp_link {
            let path = dir.path().join("qrtr.sock");
            let log = Arc::new(Mutex::new(LinkLog::default()));
            let link =
                QrtrLink::serve(&path, log.clone()).context("cannot start the ADSP QRTR link")?;
            sockets.qrtr = Some(path);
            Some((link, log))
        } else {
            None
        };
        Ok(RunningDevices {
            sockets,
            viommu,
            adsp_link,
            _dir: dir,
        })
    }

    /// The socket folder.
    #[cfg(test)]
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A one-line account of what the devices saw, for summaries and reports.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(v) = &self.viommu {
            let s = v.smmu.stats.lock().map(|s| s.clone()).unwrap_or_default();
            let mappings = v.smmu.table.lock().map(|t| t.mapping_count()).unwrap_or(0);
            lines.push(viommu_line(&s, mappings));
        }
        if let Some((_, log)) = &self.adsp_link {
            if let Ok(l) = log.lock() {
                lines.push(format!(
                    "adsp-link: QEMU connected {} time(s), guest sent {} QRTR packet(s), {} bytes",
                    l.connects, l.packets, l.bytes
                ));
            }
        }
        lines
    }
}

fn viommu_line(s: &ViommuStats, mappings: usize) -> String {
    let eps: Vec<String> = s.endpoints_seen.iter().map(|e| format!("{e:#x}")).collect();
    format!(
        "adsp-smmu: probe {} attach {} detach {} map {} unmap {} errors {}, endpoints [{}], {} mapping(s) left",
        s.probe,
        s.attach,
        s.detach,
        s.map,
        s.unmap,
        s.errors,
        eps.join(" "),
        mappings
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_the_configured_servers_only() {
        let none = RunningDevices::start(&DeviceSet::default()).unwrap();
        assert_eq!(none.sockets, Sockets::default());
        assert!(none.summary().is_empty());
        let all = RunningDevices::start(&DeviceSet::all()).unwrap();
        let sock = all.sockets.viommu.clone().unwrap();
        assert!(sock.exists(), "QEMU needs the socket before it starts");
        assert!(sock.starts_with(all.dir()));
        assert!(all.summary()[0].starts_with("adsp-smmu: probe 0 attach 0"));
        assert!(all.sockets.qrtr.as_ref().unwrap().exists());
        assert!(all.summary()[1].starts_with("adsp-link: QEMU connected 0 time(s)"));
    }
}
