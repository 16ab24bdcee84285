//! Pure models of the hardware that sideband emulates.
//!
//! Nothing in this crate opens a socket, spawns a thread, reads a clock or touches a file: guest
//! memory arrives as a [`vm_memory::GuestMemory`] and time as an argument. Transports, clocks and
//! processes live in the `sideband` (backend) crate.
#![deny(missing_debug_implementations)]

pub mod adsp;
pub mod mhi;
pub mod pci;
pub mod smmu;
pub mod usb;
pub mod xhci;
