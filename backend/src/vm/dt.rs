//! The guest device tree: QEMU's own `virt` DTB (from `-M virt,dumpdtb=`) plus the nodes the
//! offload stack needs (guest-driver.md §2 and §9): the q6usb DAI with its interrupter index and
//! IOMMU, an S/PDIF receiver and transmitter as the dummy CPU and codec of a simple-audio-card
//! that carries q6usb as an aux device, and, when the backend serves them, the virtio-iommu node
//! behind its own PCIe root port and the xHCI node with its `usb0` alias.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::machine::Machine;

/// The ADSP's message RAM: the last MiB of the guest's 1 GiB at 0x4000_0000, reserved `no-map`
/// so that Linux never uses it; GLINK's FIFOs live here (design: apr-glink.md §1), and the
/// DMA_WRITE self-test writes into it.
pub const ADSP_MSG_RAM: u64 = 0x7ff0_0000;
/// Bytes of [`ADSP_MSG_RAM`].
pub const ADSP_MSG_RAM_SIZE: u64 = 0x1_0000;
/// The APCS mailbox page (the guest's doorbell to the DSP): reserved RAM after the message RAM;
/// the DSP polls its FIFO instead of watching the doorbell.
pub const APCS_PAGE: u64 = 0x7ff1_0000;
/// The GIC interrupt (INTID) of the DSP's doorbell to the guest: SPI 111, the last one QEMU's
/// GICv2m frame accepts; the v2m node is told to leave it out of its MSI range.
pub const GLINK_INTID: u32 = 143;
/// The GLINK channel APR rides on.
pub const APR_CHANNEL: &str = "apr_audio_svc";

/// The virtio-iommu as a PCI function that the q6usb node points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ViommuNode {
    /// Slot of its PCIe root port on the root bus; the device is 0,0 behind the port.
    pub pci_slot: u8,
    /// The endpoint id q6usb uses (`iommus = <&viommu ID>`).
    pub endpoint: u32,
    /// The endpoint id of q6asm-dais, the platform card's PCM buffers (used with [`AdspCard::Q6`]).
    pub pcm_endpoint: u32,
}

/// The guest's sound card on the DSP side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AdspCard {
    /// A simple-audio-card with dummy S/PDIF DAIs that carries q6usb as an aux device: the
    /// offload driver runs, nothing on the guest's side plays through the DSP.
    #[default]
    Simple,
    /// The Qualcomm platform card (`qcom,sm8250-sndcard`): MultiMedia1 on q6asm-dais, the
    /// "USB Playback" back end on q6afe's USB_RX with q6routing and q6usb as its codec
    /// (apr-glink.md §5), so user space plays through APR.
    Q6,
}

/// What to add to QEMU's DTB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DtSpec {
    /// `qcom,usb-audio-intr-idx` of q6usb: the secondary interrupter the offload driver asks for.
    pub intr_idx: u16,
    /// The ADSP SMMU, if the backend serves it. Without it q6usb probes with no IOMMU domain.
    pub viommu: Option<ViommuNode>,
    /// Slot of the xHCI, if the backend serves it (gives the offload driver a controller number).
    pub xhci_pci_slot: Option<u8>,
    /// Which sound card carries q6usb.
    pub card: AdspCard,
}

/// `reg` phys.hi of a PCI function on bus 0: device << 11 | function << 8.
fn pci_reg(slot: u8) -> u32 {
    u32::from(slot) << 11
}

/// The DTS text appended to QEMU's decompiled DTB. `pcie` is the host bridge node's path.
pub fn overlay(spec: &DtSpec, pcie: &str) -> String {
    let mut s = String::from("\n/* sideband additions */\n");
    let _ = write!(
        s,
        "/ {{\n    reserved-memory {{\n        #address-cells = <2>;\n        #size-cells = <2>;\n        ranges;\n        adsp_msg_ram: memory@{ADSP_MSG_RAM:x} {{\n            reg = <0 0x{ADSP_MSG_RAM:x} 0 0x{ADSP_MSG_RAM_SIZE:x}>;\n            no-map;\n        }};\n        memory@{APCS_PAGE:x} {{\n            reg = <0 0x{APCS_PAGE:x} 0 0x1000>;\n            no-map;\n        }};\n    }};\n}};\n"
    );
    s += &glink_nodes(spec);
    if let Some(v) = spec.viommu {
        // The virtio-iommu sits behind its own PCIe root port (see `machine::VIOMMU_SLOT`): the
        // bridge node at the port's slot, the device at 0,0 on the bus behind it.
        let _ = write!(
            s,
            "&{{{pcie}}} {{\n    pcie@{slot:x},0 {{\n        device_type = \"pci\";\n        reg = <0x{reg:x} 0 0 0 0>;\n        bus-range = <1 1>;\n        #address-cells = <3>;\n        #size-cells = <2>;\n        ranges;\n        viommu: virtio_iommu@0,0 {{\n            compatible = \"virtio,pci-iommu\", \"pci1af4,1057\";\n            reg = <0x10000 0 0 0 0>;\n            #iommu-cells = <1>;\n        }};\n    }};\n}};\n",
            slot = v.pci_slot,
            reg = pci_reg(v.pci_slot)
        );
    }
    if let Some(slot) = spec.xhci_pci_slot {
        let _ = write!(
            s,
            "&{{{pcie}}} {{\n    xhci: usb@{slot:x},0 {{\n        reg = <0x{reg:x} 0 0 0 0>;\n    }};\n}};\n/ {{ aliases {{ usb0 = &xhci; }}; }};\n",
            reg = pci_reg(slot)
        );
    }
    let iommus = spec
        .viommu
        .map(|v| format!("        iommus = <&viommu 0x{:x}>;\n", v.endpoint))
        .unwrap_or_default();
    let _ = write!(
        s,
        r#"/ {{
    q6usb: usbd {{
        compatible = "qcom,q6usb";
        #sound-dai-cells = <1>;
{iommus}        qcom,usb-audio-intr-idx = /bits/ 16 <{intr}>;
    }};
}};
"#,
        intr = spec.intr_idx
    );
    s += match spec.card {
        AdspCard::Simple => SIMPLE_CARD,
        AdspCard::Q6 => Q6_CARD,
    };
    s
}

/// Dummy S/PDIF DAIs as CPU and codec; q6usb rides along as an aux device.
const SIMPLE_CARD: &str = r#"/ {
    spdif_rx: spdif-rx {
        compatible = "linux,spdif-dir";
        #sound-dai-cells = <0>;
    };
    spdif_tx: spdif-tx {
        compatible = "linux,spdif-dit";
        #sound-dai-cells = <0>;
    };
    sound {
        compatible = "simple-audio-card";
        simple-audio-card,name = "q6usb-offload";
        simple-audio-card,widgets = "Headphone", "USB Playback";
        simple-audio-card,aux-devs = <&q6usb>;
        simple-audio-card,cpu {
            sound-dai = <&spdif_rx>;
        };
        simple-audio-card,codec {
            sound-dai = <&spdif_tx>;
        };
    };
};
"#;

/// The platform card: front end MultiMedia1 (q6asm-dai 0), back end USB_RX (q6afe-dai 136)
/// routed by q6routing into q6usb (port 136).
const Q6_CARD: &str = r#"/ {
    sound {
        compatible = "qcom,sm8250-sndcard";
        model = "sideband-q6";
        mm1-dai-link {
            link-name = "MultiMedia1";
            cpu {
                sound-dai = <&q6asmdai 0>;
            };
        };
        usb-dai-link {
            link-name = "USB Playback";
            cpu {
                sound-dai = <&q6afedai 136>;
            };
            platform {
                sound-dai = <&q6routing>;
            };
            codec {
                sound-dai = <&q6usb 136>;
            };
        };
    };
};
"#;

/// The DSP's GLINK edge over the message RAM and the APR services on it (apr-glink.md §1, §4),
/// and the GICv2m told to keep the doorbell's SPI out of its MSI range. Inert on a kernel
/// without `qcom_glink_rpm` (the stock one): nothing binds them. With the platform card, AFE
/// carries its DAIs and the stream (ASM) and device (ADM) managers join.
fn glink_nodes(spec: &DtSpec) -> String {
    let spi = GLINK_INTID - 32;
    let (afe_dais, pcm_services) = match spec.card {
        AdspCard::Simple => (String::new(), String::new()),
        AdspCard::Q6 => (
            "\n                q6afedai: dais {\n                    compatible = \"qcom,q6afe-dais\";\n                    #sound-dai-cells = <1>;\n                    #address-cells = <1>;\n                    #size-cells = <0>;\n                };".to_string(),
            format!(
                r#"
            service@7 {{
                reg = <7>;
                compatible = "qcom,q6asm";
                q6asmdai: dais {{
                    compatible = "qcom,q6asm-dais";
                    #sound-dai-cells = <1>;
                    #address-cells = <1>;
                    #size-cells = <0>;
{iommus}                    dai@0 {{
                        reg = <0>;
                    }};
                }};
            }};
            service@8 {{
                reg = <8>;
                compatible = "qcom,q6adm";
                q6routing: routing {{
                    compatible = "qcom,q6adm-routing";
                    #sound-dai-cells = <0>;
                }};
            }};"#,
                iommus = spec
                    .viommu
                    .map(|v| format!("                    iommus = <&viommu 0x{:x}>;\n", v.pcm_endpoint))
                    .unwrap_or_default()
            ),
        ),
    };
    format!(
        r#"&{{/intc@8000000/v2m@8020000}} {{
    arm,msi-base-spi = <80>;
    arm,msi-num-spis = <{num}>;
}};
/ {{
    apcs_glb: mailbox@{APCS_PAGE:x} {{
        compatible = "qcom,msm8994-apcs-kpss-global";
        reg = <0 0x{APCS_PAGE:x} 0 0x1000>;
        #mbox-cells = <1>;
    }};
    adsp-glink {{
        compatible = "qcom,glink-rpm";
        interrupts = <0 {spi} 1>;
        qcom,rpm-msg-ram = <&adsp_msg_ram>;
        mboxes = <&apcs_glb 0>;
        apr {{
            compatible = "qcom,apr-v2";
            qcom,glink-channels = "{APR_CHANNEL}";
            qcom,domain = <4>;
            #address-cells = <1>;
            #size-cells = <0>;
            service@3 {{
                reg = <3>;
                compatible = "qcom,q6core";
            }};
            service@4 {{
                reg = <4>;
                compatible = "qcom,q6afe";{afe_dais}
            }};{pcm_services}
        }};
    }};
}};
"#,
        // base-spi counts INTIDs here (QEMU's frame: INTIDs 80-143); stop below the doorbell.
        num = GLINK_INTID - 80
    )
}

/// The path of the PCI host bridge node in a decompiled `virt` DTS (`/pcie@10000000`).
pub fn find_pcie_node(dts: &str) -> Option<String> {
    dts.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("pcie@").and_then(|r| r.strip_suffix(" {")))
        .map(|addr| format!("/pcie@{addr}"))
}

fn run(cmd: &mut Command, what: &str) -> Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Builds (or reuses from `cache`) the DTB for `machine` with `spec`'s additions.
pub fn build(qemu: &Path, machine: &Machine, spec: &DtSpec, cache: &Path) -> Result<PathBuf> {
    let qemu_version = run(Command::new(qemu).arg("--version"), "qemu --version")?;
    let mut h = Sha256::new();
    h.update(&qemu_version);
    h.update(machine.qemu_args(None).join(" "));
    h.update(overlay(spec, "/pcie"));
    let key: String = h
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = cache.join("dtb");
    let out = dir.join(format!("{key}.dtb"));
    if out.exists() {
        return Ok(out);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let base = dir.join(format!("{key}.virt.dtb"));
    run(
        Command::new(qemu)
            .args(machine.qemu_args(Some(&base)))
            .args(["-nographic", "-monitor", "none", "-serial", "none"]),
        "qemu dumpdtb",
    )?;
    let dts = run(
        Command::new("dtc")
            .args(["-q", "-I", "dtb", "-O", "dts"])
            .arg(&base),
        "dtc (decompile)",
    )?;
    let mut dts = String::from_utf8(dts).context("dtc printed non-UTF-8")?;
    let pcie = find_pcie_node(&dts).context("QEMU's virt DTB has no pcie@ node")?;
    dts += &overlay(spec, &pcie);
    let src = dir.join(format!("{key}.dts"));
    std::fs::write(&src, &dts).with_context(|| format!("cannot write {}", src.display()))?;
    let tmp = dir.join(format!("{key}.dtb.tmp"));
    run(
        Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&tmp)
            .arg(&src),
        "dtc (compile)",
    )?;
    std::fs::rename(&tmp, &out)?;
    let _ = std::fs::remove_file(&base);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q6usb_node_has_u16_intr_idx_and_no_iommu_without_viommu() {
        let spec = DtSpec {
            intr_idx: 2,
            viommu: None,
            xhci_pci_slot: None,
            card: AdspCard::Simple,
        };
        let dts = overlay(&spec, "/pcie@10000000");
        assert!(dts.contains("qcom,usb-audio-intr-idx = /bits/ 16 <2>;"));
        assert!(!dts.contains("iommus"));
        assert!(dts.contains("simple-audio-card,aux-devs = <&q6usb>;"));
        assert!(dts.contains("\"Headphone\", \"USB Playback\""));
        assert!(dts.contains("compatible = \"linux,spdif-dir\""));
        assert!(dts.contains(
            "memory@7ff00000 {\n            reg = <0 0x7ff00000 0 0x10000>;\n            no-map;"
        ));
    }

    #[test]
    fn viommu_and_xhci_nodes_sit_under_the_host_bridge() {
        let spec = DtSpec {
            intr_idx: 2,
            viommu: Some(ViommuNode {
                pci_slot: 2,
                endpoint: 0x2000f,
                pcm_endpoint: 0x20001,
            }),
            xhci_pci_slot: Some(3),
            card: AdspCard::Simple,
        };
        let dts = overlay(&spec, "/pcie@10000000");
        assert!(dts.contains("&{/pcie@10000000} {\n    pcie@2,0 {"));
        assert!(dts.contains("reg = <0x1000 0 0 0 0>;"));
        assert!(dts.contains("viommu: virtio_iommu@0,0 {"));
        assert!(dts.contains("reg = <0x10000 0 0 0 0>;"));
        assert!(dts.contains("iommus = <&viommu 0x2000f>;"));
        assert!(dts.contains("xhci: usb@3,0 {\n        reg = <0x1800 0 0 0 0>;"));
        assert!(dts.contains("usb0 = &xhci;"));
        assert!(
            !dts.contains("iommu-map"),
            "PCI devices must stay untranslated"
        );
        assert!(
            !dts.contains("q6asm"),
            "the simple card has no stream manager"
        );
    }

    #[test]
    fn the_platform_card_routes_multimedia1_to_q6usb_and_gives_q6asm_its_own_endpoint() {
        let spec = DtSpec {
            intr_idx: 2,
            viommu: Some(ViommuNode {
                pci_slot: 2,
                endpoint: 0x2000f,
                pcm_endpoint: 0x20001,
            }),
            xhci_pci_slot: Some(3),
            card: AdspCard::Q6,
        };
        let dts = overlay(&spec, "/pcie@10000000");
        assert!(dts.contains("compatible = \"qcom,sm8250-sndcard\";"));
        assert!(!dts.contains("simple-audio-card"));
        assert!(dts.contains("sound-dai = <&q6asmdai 0>;"));
        assert!(dts.contains("sound-dai = <&q6afedai 136>;"));
        assert!(dts.contains("sound-dai = <&q6usb 136>;"));
        assert!(dts.contains("q6routing: routing {"));
        assert!(dts.contains("iommus = <&viommu 0x20001>;"));
        assert!(dts.contains("iommus = <&viommu 0x2000f>;"));
        assert!(dts.contains("q6afedai: dais {"));
    }

    #[test]
    fn finds_host_bridge() {
        let dts = "/ {\n\tpcie@10000000 {\n\t\tcompatible = \"pci-host-ecam-generic\";\n";
        assert_eq!(find_pcie_node(dts).as_deref(), Some("/pcie@10000000"));
        assert_eq!(find_pcie_node("/ { };"), None);
    }
}
