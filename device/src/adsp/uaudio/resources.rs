//! What a successful enable hands the DSP (guest-driver.md §4.4, "Addresses"): the typed view of
//! a stream response, or why there is none.

use super::messages::StreamResponse;
use super::types::{
    errno_name, status, AppsMemInfo, EndpointDescriptor, InterfaceDescriptor, MemInfo, Speed,
    UsbToken,
};

/// One memory region as the DSP uses it. The wire `iova` is `SID << 32 | IOVA`; the SID is split
/// out here and `iova` keeps the low 32 bits, ready to translate through the SMMU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemRegion {
    /// Stream id of the SMMU context (`iommus` cell & 0xF).
    pub sid: u32,
    /// IOVA in the DSP's SMMU space (masked to 32 bits): DSP loads and stores go here.
    pub iova: u64,
    /// xHCI-side bus address of the same memory: TRB pointers and ERDP use this.
    pub dma: u64,
    /// Bytes.
    pub size: u32,
}

impl MemRegion {
    /// Splits a wire `mem_info`.
    pub fn from_wire(m: MemInfo) -> Self {
        Self {
            sid: (m.iova >> 32) as u32,
            iova: m.iova & 0xFFFF_FFFF,
            dma: m.dma,
            size: m.size,
        }
    }

    /// True if every field is zero (the driver's way of saying "none").
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The memory of an offloaded stream (`xhci_mem_info`; dcba is always zero and dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XhciMemory {
    /// The secondary interrupter's event ring (one 4 KiB segment).
    pub event_ring: MemRegion,
    /// Segment 0 of the data endpoint's transfer ring (4 KiB mapped).
    pub transfer_ring: MemRegion,
    /// Segment 0 of the sync endpoint's transfer ring, if there is one.
    pub sync_ring: Option<MemRegion>,
    /// The transfer buffer.
    pub transfer_buffer: MemRegion,
}

impl XhciMemory {
    /// From the wire form.
    pub fn from_wire(m: &AppsMemInfo) -> Self {
        let sync = MemRegion::from_wire(m.tr_sync);
        Self {
            event_ring: MemRegion::from_wire(m.evt_ring),
            transfer_ring: MemRegion::from_wire(m.tr_data),
            sync_ring: (!sync.is_empty()).then_some(sync),
            transfer_buffer: MemRegion::from_wire(m.xfer_buff),
        }
    }
}

/// Everything a successful enable returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamResources {
    /// TLV 0x10 (SUCCESS).
    pub status: i32,
    /// TLV 0x11 (0).
    pub internal_status: i32,
    /// TLV 0x13, the echoed token.
    pub usb_token: UsbToken,
    /// xHCI slot id of the device: the doorbell to ring.
    pub slot_id: u32,
    /// The secondary interrupter: Interrupter Target of our TRBs, and whose ERDP we advance.
    pub interrupter_num: u8,
    /// Device speed.
    pub speed: Speed,
    /// The AS interface's chosen altsetting.
    pub intf: InterfaceDescriptor,
    /// The data endpoint.
    pub data_ep: EndpointDescriptor,
    /// The sync (feedback) endpoint, if used.
    pub sync_ep: Option<EndpointDescriptor>,
    /// UAC spec revision (0x0100, 0x0200), absent for UAC3.
    pub spec_revision: Option<u16>,
    /// UAC1 data path delay in frames.
    pub data_path_delay: Option<u8>,
    /// Bytes per subslot.
    pub subslot_size: Option<u8>,
    /// Controller number, if the xHCI node has a "usb" alias.
    pub controller_num: Option<u8>,
    /// Rings and buffer.
    pub mem: XhciMemory,
}

/// Why a response gave no resources.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Failure {
    /// The driver refused: status FAILURE and the errno of the cause.
    #[error("status {status} ({}), internal status {internal_status} ({})",
        status::name(*status), errno_name(*internal_status))]
    Status {
        /// TLV 0x10.
        status: i32,
        /// TLV 0x11 as a signed errno.
        internal_status: i32,
    },
    /// A success without a field an enable always carries.
    #[error("successful response without {0}")]
    Incomplete(&'static str),
}

impl Failure {
    /// The errno of a refusal as the kernel names it ("-EBUSY"), if this is one.
    pub fn errno(&self) -> Option<String> {
        match self {
            Self::Status {
                internal_status, ..
            } => Some(errno_name(*internal_status)),
            Self::Incomplete(_) => None,
        }
    }
}

impl StreamResources {
    /// Reads an enable response. Success means status 0 *and* internal status 0 (the result TLV
    /// always says success and is not consulted); then every field a successful
    /// `prepare_qmi_response` sets must be present.
    pub fn from_response(r: &StreamResponse) -> Result<Self, Failure> {
        let status = r.status.ok_or(Failure::Incomplete("status"))?;
        let internal_status = r
            .internal_errno()
            .ok_or(Failure::Incomplete("internal_status"))?;
        if status != status::SUCCESS || internal_status != 0 {
            return Err(Failure::Status {
                status,
                internal_status,
            });
        }
        let mem = r
            .xhci_mem_info
            .as_ref()
            .ok_or(Failure::Incomplete("xhci_mem_info"))?;
        Ok(Self {
            status,
            internal_status,
            usb_token: UsbToken::from_raw(r.usb_token.ok_or(Failure::Incomplete("usb_token"))?),
            slot_id: r.slot_id.ok_or(Failure::Incomplete("slot_id"))?,
            interrupter_num: r
                .interrupter_num
                .ok_or(Failure::Incomplete("interrupter_num"))?,
            speed: Speed::from_raw(r.speed_info.ok_or(Failure::Incomplete("speed_info"))?),
            intf: r
                .intf_desc
                .ok_or(Failure::Incomplete("std_as_opr_intf_desc"))?,
            data_ep: r
                .data_ep_desc
                .ok_or(Failure::Incomplete("std_as_data_ep_desc"))?,
            sync_ep: r.sync_ep_desc,
            spec_revision: r.spec_revision,
            data_path_delay: r.data_path_delay,
            subslot_size: r.subslot_size,
            controller_num: r.controller_num,
            mem: XhciMemory::from_wire(mem),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_is_split_from_iova() {
        let r = MemRegion::from_wire(MemInfo {
            iova: 0x0000_0003_0000_a000,
            dma: 0x4123_4000,
            size: 4096,
        });
        assert_eq!(r.sid, 3);
        assert_eq!(r.iova, 0xa000);
        assert_eq!(r.dma, 0x4123_4000);
    }

    #[test]
    fn failure_names_the_errno() {
        let r = StreamResponse {
            status: Some(1),
            internal_status: Some(-16i32 as u32),
            ..Default::default()
        };
        let e = StreamResources::from_response(&r).unwrap_err();
        assert_eq!(e.errno().as_deref(), Some("-EBUSY"));
        assert_eq!(
            e.to_string(),
            "status 1 (FAILURE), internal status -16 (-EBUSY)"
        );
    }
}
