//! The ADSP's SMMU, served to the guest as a virtio-iommu: the domain and mapping table the DSP
//! translates through, and the virtio-iommu request format that fills it.

mod table;
mod wire;

pub use table::{
    Fault, FaultReason, Mapping, SmmuTable, MAP_F_MMIO, MAP_F_READ, MAP_F_WRITE, PAGE_SIZE,
};
pub use wire::{decode, handle, Config, Reply, Request, Status, DEVICE_FEATURES, TAIL_LEN};
