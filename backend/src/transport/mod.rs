//! Transports between QEMU and the device models: vfio-user for PCI functions, the shared view
//! of guest memory, MSI-X eventfds.

// dma, msix and vfio_user serve the xHCI once its model is wired in (issue 4); until then their
// own tests (against the vfio_user crate's client) exercise them.
#[allow(dead_code)]
pub mod dma;
pub mod mhi_link;
#[allow(dead_code)]
pub mod msix;
pub mod qrtr_link;
#[allow(dead_code)]
pub mod vfio_user;
pub mod viommu;
