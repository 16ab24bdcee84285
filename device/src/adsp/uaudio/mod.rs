//! The UAUDIO QMI service (service 0x41D, version 1; guest-driver.md §4): its messages and the
//! DSP's client of it.

pub mod client;
pub mod malformed;
pub mod messages;
pub mod resources;
pub mod types;

pub use client::{
    DownReason, Event, Outgoing, Pending, State, StreamParams, TxnKind, UaudioClient,
};
pub use malformed::Malformed;
pub use messages::{StreamIndication, StreamRequest, StreamResponse};
pub use resources::{Failure, MemRegion, StreamResources, XhciMemory};
pub use types::{
    errno_name, AppsMemInfo, AudioFormat, Direction, EndpointDescriptor, InterfaceDescriptor,
    MemInfo, Speed, UsbToken,
};
