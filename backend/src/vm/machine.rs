//! The QEMU machine: options shared by the device-tree dump and the boot, and the devices the
//! backend serves. Adding a backend device is one change here: its QEMU arguments in
//! [`Sockets::qemu_args`] and its DT nodes in [`DeviceSet::dt_spec`].

use std::path::PathBuf;

use super::dt::{AdspCard, DtSpec, ViommuNode};

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
/// PCI slot of the virtio-serial controller that carries the ADSP's QRTR link.
pub const SERIAL_SLOT: u8 = 4;
/// PCI slot of the MHI function that carries the ADSP's QRTR link when the boot asks for it.
pub const MHI_SLOT: u8 = 5;
/// virtio-iommu endpoint id of the q6usb node; its low 4 bits are the SID the driver reports.
pub const Q6USB_ENDPOINT: u32 = 0x2000f;
/// virtio-iommu endpoint id of the q6asm-dais node (the platform card's PCM buffers, SID 1).
pub const Q6ASM_ENDPOINT: u32 = 0x20001;

/// Which devices the backend serves for a boot. Adding a device is a field here, its QEMU
/// arguments in [`Sockets::qemu_args`], its DT nodes in [`DeviceSet::dt_spec`] and its server in
/// `crate::devices`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DeviceSet {
    /// The ADSP's SMMU (virtio-iommu over vhost-user).
    pub viommu: bool,
    /// The ADSP's QRTR link (virtio-serial port to the guest's qrtr-tun relay).
    pub adsp_link: bool,
    /// The link goes over an emulated MHI PCI function (the guest's qrtr-mhi) instead: no user
    /// process on the path, so it works while the guest suspends.
    pub adsp_mhi: bool,
    /// The xHCI controller (vfio-user) with the headset and the loopback device on its ports.
    pub xhci: bool,
    /// The DSP's GLINK edge (APR's transport), served in the message RAM; its doorbell goes
    /// through the xHCI, so it needs `xhci`. Its DT nodes are always there (inert on a kernel
    /// without qcom_glink_rpm).
    pub adsp_glink: bool,
    /// The guest's sound card is the Qualcomm platform card on APR (needs `adsp_glink`)
    /// instead of the simple card that carries q6usb as an aux device.
    pub q6_card: bool,
}

impl DeviceSet {
    /// Everything implemented so far.
    pub fn all() -> Self {
        DeviceSet {
            viommu: true,
            adsp_link: true,
            adsp_mhi: false,
            xhci: true,
            adsp_glink: false,
            q6_card: false,
        }
    }

    /// The device-tree additions these devices need.
    pub fn dt_spec(&self) -> DtSpec {
        DtSpec {
            intr_idx: 2,
            viommu: self.viommu.then_some(ViommuNode {
                pci_slot: VIOMMU_SLOT,
                endpoint: Q6USB_ENDPOINT,
                pcm_endpoint: Q6ASM_ENDPOINT,
            }),
            xhci_pci_slot: self.xhci.then_some(XHCI_SLOT),
            card: if self.q6_card {
                AdspCard::Q6
            } else {
                AdspCard::Simple
            },
        }
    }

    /// Kernel command-line words that tell guest scenarios what hardware to expect.
    pub fn cmdline(&self) -> Vec<String> {
        vec![
            format!("sideband.adsp_smmu={}", u8::from(self.viommu)),
            match (self.adsp_link, self.adsp_mhi) {
                (true, true) => "sideband.adsp_link=mhi".to_string(),
                (link, _) => format!("sideband.adsp_link={}", u8::from(link)),
            },
            format!("sideband.xhci={}", u8::from(self.xhci)),
        ]
    }
}

/// The UNIX sockets the backend listens on for one boot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sockets {
    /// vhost-user socket of the virtio-iommu.
    pub viommu: Option<PathBuf>,
    /// vfio-user socket of the xHCI controller.
    pub xhci: Option<PathBuf>,
    /// Stream socket of the ADSP's QRTR link (virtio-serial port `sideband.qrtr`).
    pub qrtr: Option<PathBuf>,
    /// vfio-user socket of the MHI function that carries the ADSP's QRTR link instead.
    pub mhi: Option<PathBuf>,
}

impl Sockets {
    /// QEMU arguments that attach the devices (the backend must already listen).
    pub fn qemu_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(sock) = &self.viommu {
            args.push("-chardev".into());
            args.push(format!("socket,id=viommu0,path={}", sock.display()));
            // Behind a root port the device is PCI Express, so it can say No_Soft_Reset in its
            // power-management capability: virtio-pci then keeps it alive across system suspend.
            // Without that the guest resets it at suspend and, as virtio-iommu has no restore
            // callback, spins forever on its next request after resume.
            args.push("-device".into());
            args.push(format!(
                "pcie-root-port,id=sbrp0,bus=pcie.0,addr={VIOMMU_SLOT:02x}.0,chassis=2"
            ));
            args.push("-device".into());
            args.push(
                "vhost-user-test-device-pci,chardev=viommu0,virtio-id=23,num_vqs=2,config_size=40,bus=sbrp0,addr=00.0,x-pcie-pm-no-soft-reset=on".into()
            );
        }
        if let Some(sock) = &self.qrtr {
            args.push("-chardev".into());
            // QEMU reconnects after the backend drops the link (the DSP-crash fault).
            args.push(format!(
                "socket,id=qrtr0,path={},reconnect-ms=500",
                sock.display()
            ));
            args.push("-device".into());
            args.push(format!(
                "virtio-serial-pci,id=vser0,addr={SERIAL_SLOT:02x}.0"
            ));
            args.push("-device".into());
            args.push("virtserialport,bus=vser0.0,chardev=qrtr0,name=sideband.qrtr".into());
        }
        if let Some(sock) = &self.mhi {
            args.push("-device".into());
            args.push(format!(
                r#"{{"driver":"vfio-user-pci","socket":{{"type":"unix","path":"{}"}},"addr":"{MHI_SLOT:02x}.0","rombar":0}}"#,
                sock.display()
            ));
        }
        if let Some(sock) = &self.xhci {
            args.push("-device".into());
            args.push(format!(
                r#"{{"driver":"vfio-user-pci","socket":{{"type":"unix","path":"{}"}},"addr":"{XHCI_SLOT:02x}.0","rombar":0}}"#,
                sock.display()
            ));
        }
        args
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
    fn sockets_become_qemu_devices() {
        assert!(Sockets::default().qemu_args().is_empty());
        let all = Sockets {
            viommu: Some("/r/viommu.sock".into()),
            xhci: Some("/r/xhci.sock".into()),
            qrtr: Some("/r/qrtr.sock".into()),
            mhi: Some("/r/mhi.sock".into()),
        };
        let args = all.qemu_args().join(" ");
        assert!(args.contains("socket,id=viommu0,path=/r/viommu.sock"));
        assert!(args.contains("pcie-root-port,id=sbrp0,bus=pcie.0,addr=02.0"));
        assert!(args.contains(
            "virtio-id=23,num_vqs=2,config_size=40,bus=sbrp0,addr=00.0,x-pcie-pm-no-soft-reset=on"
        ));
        assert!(args.contains(r#""path":"/r/xhci.sock"},"addr":"03.0""#));
        assert!(args.contains("virtio-serial-pci,id=vser0,addr=04.0"));
        assert!(args.contains("virtserialport,bus=vser0.0,chardev=qrtr0,name=sideband.qrtr"));
        assert!(args.contains(r#""path":"/r/mhi.sock"},"addr":"05.0""#));
    }

    #[test]
    fn device_set_drives_dt_and_cmdline() {
        let none = DeviceSet::default();
        assert!(none.dt_spec().viommu.is_none());
        assert_eq!(
            none.cmdline(),
            [
                "sideband.adsp_smmu=0",
                "sideband.adsp_link=0",
                "sideband.xhci=0"
            ]
        );
        assert_eq!(none.dt_spec().xhci_pci_slot, None);
        let all = DeviceSet::all();
        assert_eq!(all.dt_spec().viommu.unwrap().endpoint, Q6USB_ENDPOINT);
        assert_eq!(all.dt_spec().card, AdspCard::Simple);
        let card = DeviceSet {
            adsp_glink: true,
            q6_card: true,
            ..DeviceSet::all()
        };
        assert_eq!(card.dt_spec().card, AdspCard::Q6);
        assert_eq!(card.dt_spec().viommu.unwrap().pcm_endpoint, Q6ASM_ENDPOINT);
        assert_eq!(
            all.cmdline(),
            [
                "sideband.adsp_smmu=1",
                "sideband.adsp_link=1",
                "sideband.xhci=1"
            ]
        );
        assert_eq!(all.dt_spec().xhci_pci_slot, Some(XHCI_SLOT));
        let mhi = DeviceSet {
            adsp_mhi: true,
            ..all
        };
        assert!(mhi
            .cmdline()
            .contains(&"sideband.adsp_link=mhi".to_string()));
    }
}
