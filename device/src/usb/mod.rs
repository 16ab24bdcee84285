//! USB device framework and device models.
//!
//! [`StandardDevice`] implements [`UsbDevice`] for any model: it answers the chapter 9 standard
//! requests from the model's descriptors and hands class requests and endpoint data to a
//! [`UsbFunction`]. The audio headset lives in [`uac`], its buttons in [`hid`]; [`Faulty`] makes
//! chosen endpoints of any device fail.

mod configuration;
pub mod descriptor;
mod device;
mod fault;
mod function;
pub mod hid;
pub mod request;
mod shared;
mod standard_device;
mod standard_requests;
mod strings;
pub mod uac;

pub use configuration::InterfaceLayout;
pub use configuration::{service_interval_uframes, ConfigurationBuilder, EndpointEntry};
pub use configuration::{AlternateLayout, AlternateSetting, ConfigError, Configuration};
pub use device::{BusTime, SetupPacket, TransferResult, UsbDevice, UsbSpeed};
pub use fault::{Fault, FaultError, FaultPlan, FaultSpan, Faulty};
pub use function::UsbFunction;
pub use shared::SharedDevice;
pub use standard_device::{DeviceDescriptors, DeviceState, StandardDevice};
pub use strings::{StringTable, LANGID_EN_US};
