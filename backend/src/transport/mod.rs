//! Transports between QEMU and the device models: vfio-user for PCI functions, the shared view
//! of guest memory, MSI-X eventfds.

pub mod dma;
pub mod msix;
pub mod vfio_user;
