//! USB device framework and device models.

mod device;

pub use device::{BusTime, SetupPacket, TransferResult, UsbDevice, UsbSpeed};
