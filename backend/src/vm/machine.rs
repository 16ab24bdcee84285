//! The QEMU machine: options shared by the device-tree dump and the boot, and the devices the
//! backend serves. Adding a backend device is one change here: its QEMU arguments in
//! [`GuestDevices::qemu_args`] and its DT nodes in [`GuestDevices::dt_spec`].

use std::path::PathBuf;

use super::dt::{DtSpec, ViommuNode};

/// CPU and memory of the guest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Machine {
    /// Guest RAM in MiB. It is a shared memfd, so out-of-process device servers can map it.
    pub memory_mib: u32,
    /// vCPUs (TCG threads).
    pub cpus: u32,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            memory_mib: 1024,
            cpus: 2,
        }
    }
}

impl Machine {
    /// Arguments that define the machine; `dumpdtb` (when given) is added to `-M`.
    pub fn qemu_args(&self, dumpdtb: Option<&std::path::Path>) -> Vec<String> {
        let mut m = "virt,memory-backend=mem".to_string();
        if let Some(path) = dumpdtb {
            m += &format!(",dumpdtb={}", path.display());
        }
        vec![
            "-M".into(),
            m,
            "-object".into(),
            format!(
                "memory-backend-memfd,id=mem,size={}M,share=on",
                self.memory_mib
            ),
            // pauth-impdef: the architected QARMA pointer-auth algorithm is slow under TCG.
            "-cpu".into(),
            "max,pauth-impdef=on".into(),
            "-smp".into(),
            self.cpus.to_string(),
            // The default NIC needs a ROM the private prefix does not carry.
            "-nic".into(),
            "none".into(),
            "-display".into(),
            "none".into(),
        ]
    }
}

/// PCI slot of the virtio-iommu (the ADSP's SMMU) on the root bus.
pub const VIOMMU_SLOT: u8 = 2;
/// PCI slot of the xHCI controller.
pub const XHCI_SLOT: u8 = 3;
/// virtio-iommu endpoint id of the q6usb node; its low 4 bits are the SID the driver reports.
pub const Q6USB_ENDPOINT: u32 = 0x2000f;

/// Devices served by the backend process, each reached through a UNIX socket it listens on.
/// All `None` boots the bare machine with the offload drivers loaded and no hardware behind them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GuestDevices {
    /// vhost-user socket of the virtio-iommu.
    pub viommu_socket: Option<PathBuf>,
    /// vfio-user socket of the xHCI controller.
    pub xhci_socket: Option<PathBuf>,
}

impl GuestDevices {
    /// QEMU arguments that attach the devices (the backend must already listen).
    pub fn qemu_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(sock) = &self.viommu_socket {
            args.push("-chardev".into());
            args.push(format!("socket,id=viommu0,path={}", sock.display()));
            args.push("-device".into());
            args.push(format!(
                "vhost-user-test-device-pci,chardev=viommu0,virtio-id=23,num_vqs=2,config_size=40,addr={VIOMMU_SLOT:02x}.0"
            ));
        }
        if let Some(sock) = &self.xhci_socket {
            args.push("-device".into());
            args.push(format!(
                r#"{{"driver":"vfio-user-pci","socket":{{"type":"unix","path":"{}"}},"addr":"{XHCI_SLOT:02x}.0","rombar":0}}"#,
                sock.display()
            ));
        }
        args
    }

    /// The device-tree additions these devices need.
    pub fn dt_spec(&self) -> DtSpec {
        DtSpec {
            intr_idx: 2,
            viommu: self.viommu_socket.as_ref().map(|_| ViommuNode {
                pci_slot: VIOMMU_SLOT,
                endpoint: Q6USB_ENDPOINT,
            }),
            xhci_pci_slot: self.xhci_socket.as_ref().map(|_| XHCI_SLOT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_args_share_ram_and_carry_dumpdtb() {
        let m = Machine::default();
        let args = m.qemu_args(Some(std::path::Path::new("/t/x.dtb")));
        assert!(args.contains(&"virt,memory-backend=mem,dumpdtb=/t/x.dtb".to_string()));
        assert!(args.contains(&"memory-backend-memfd,id=mem,size=1024M,share=on".to_string()));
        assert!(!m.qemu_args(None).iter().any(|a| a.contains("dumpdtb")));
    }

    #[test]
    fn devices_add_qemu_args_and_dt_nodes_together() {
        let none = GuestDevices::default();
        assert!(none.qemu_args().is_empty());
        assert!(none.dt_spec().viommu.is_none());
        let all = GuestDevices {
            viommu_socket: Some("/r/viommu.sock".into()),
            xhci_socket: Some("/r/xhci.sock".into()),
        };
        let args = all.qemu_args().join(" ");
        assert!(args.contains("virtio-id=23,num_vqs=2,config_size=40,addr=02.0"));
        assert!(args.contains(r#""path":"/r/xhci.sock"},"addr":"03.0""#));
        let spec = all.dt_spec();
        assert_eq!(spec.viommu.unwrap().pci_slot, VIOMMU_SLOT);
        assert_eq!(spec.xhci_pci_slot, Some(XHCI_SLOT));
    }
}
