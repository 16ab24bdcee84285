//! An MHI (Modem Host Interface) device as Linux's MHI host core (`drivers/bus/mhi/host`) drives
//! it over PCI: the register space of BAR 0, the channel, event and command context arrays the
//! host keeps in its memory, the command ring, transfer rings and event rings.
//!
//! The device is already in its mission-mode execution environment (AMSS) when the host powers
//! it up, so no firmware is loaded. It carries whole packets: what the host queues on an
//! outbound (UL) channel comes back as [`Notice::Received`]; [`Mhi::send`] puts a packet into the
//! next buffer the host queued on an inbound (DL) channel. The sideband ADSP uses the IPCR pair
//! (channels 20 and 21), which the guest's `qrtr-mhi` binds: a QRTR link with no user process on
//! its path, so it keeps working while the guest's tasks are frozen for system suspend.
//!
//! Everything the host hands over (context arrays, rings, elements, buffers) is checked: a bad
//! ring is refused with a warning and a completion code where the protocol has one, never a
//! panic, and every loop is bounded by the ring's size.

pub mod controller;
pub mod regs;
pub mod ring;

pub use controller::{Mhi, Notice, Outcome};

#[cfg(test)]
mod tests;
