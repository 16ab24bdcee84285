//! The xHCI host controller model (xHCI 1.2).
//!
//! [`Controller`] is everything behind BAR0: registers, rings, commands, transfers, ports and
//! interrupters. It is pure: guest memory arrives with each call that may touch it, time with
//! [`Controller::tick`], and interrupts leave through an [`InterruptSink`] (MSI-X vector N is
//! interrupter N). Devices plug into root ports through [`crate::usb::UsbDevice`].
//!
//! The guest is untrusted. Every TRB, context, ring pointer and ERST entry is checked; bad
//! input gets the completion code the specification prescribes and a warning in the log; a
//! guest-memory access outside guest RAM raises Host System Error and halts the controller.
//! Work per doorbell and per tick is bounded.
//!
//! How a transport drives it:
//!
//! ```
//! use sideband_device::usb::BusTime;
//! use sideband_device::xhci::{Config, Controller, LoopbackDevice, RecordingSink};
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x4000_0000), 1 << 20)]).unwrap();
//! let irqs = RecordingSink::default(); // the backend's sink writes MSI-X eventfds instead
//! let mut xhci = Controller::new(Config::default(), Box::new(irqs.clone())).unwrap();
//! xhci.attach(1, Box::new(LoopbackDevice::new())).unwrap(); // hot-plug, any time
//! let caplength = xhci.mmio_read(0, 1); // BAR0 reads need no guest memory
//! assert_eq!(caplength, 0x40);
//! xhci.mmio_write(&mem, 0x40, 4, 1); // USBCMD.R/S: writes may touch guest memory
//! xhci.tick(&mem, BusTime(1)); // every 125 µs microframe
//! assert_eq!(xhci.interrupter_stats(0).unwrap().interrupts, 0);
//! ```
//!
//! [`testkit`] is a small Linux-like driver over the same interface, for tests, benchmarks
//! and [`fuzz::run`].

pub mod command;
pub mod config;
pub mod context;
pub mod controller;
pub mod dma;
pub mod endpoint;
pub mod event_ring;
pub mod fuzz;
pub mod interrupter;
pub mod observe;
pub mod port;
pub mod regs;
pub mod ring;
pub mod slot;
pub mod testdev;
pub mod testkit;
pub mod transfer;
pub mod trb;

pub use config::Config;
pub use controller::{Controller, ControllerStats};
pub use interrupter::{InterruptSink, InterrupterStats, RecordingSink};
pub use observe::{RecordingObserver, TransferKind, TransferObserver, TransferRecord};
pub use testdev::LoopbackDevice;
