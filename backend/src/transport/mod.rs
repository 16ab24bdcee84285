//! Transports between QEMU and the device models: vfio-user for PCI functions, the shared view
//! of guest memory, MSI-X eventfds.

pub mod dma;
pub mod mhi_link;
pub mod msix;
pub mod qrtr_link;
pub mod vfio_user;
pub mod vfio_user_server;
pub mod viommu;
