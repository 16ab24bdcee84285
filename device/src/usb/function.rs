//! The class behaviour a device model plugs into the chapter 9 framework.

use super::device::{BusTime, SetupPacket, TransferResult};

/// A device's class (or vendor) behaviour. The [`StandardDevice`](super::StandardDevice) handles
/// every standard request, tracks alternate settings and endpoint halts, and calls the function
/// only for what is left. Data reaches the function only for endpoints that are part of the
/// current alternate setting of a configured device and not halted.
pub trait UsbFunction: Send + std::fmt::Debug {
    /// A class or vendor request. The framework has checked that the recipient interface (wIndex
    /// low byte) or endpoint (wIndex low byte) exists in the current configuration; everything
    /// else (selectors, lengths, values) is the function's to validate. Same data conventions as
    /// [`UsbDevice::control`](super::UsbDevice::control).
    fn class_request(
        &mut self,
        setup: SetupPacket,
        data: &mut [u8],
        now: BusTime,
    ) -> TransferResult;

    /// Interface `interface` switched to `alternate` (SET_INTERFACE, or SET_CONFIGURATION, which
    /// puts every interface in alternate 0).
    fn alternate_changed(&mut self, interface: u8, alternate: u8, now: BusTime);

    /// The device left the Configured state (bus reset, SET_CONFIGURATION(0)).
    fn deconfigured(&mut self);

    /// Data for OUT endpoint `ep`.
    fn data_out(&mut self, ep: u8, data: &[u8], now: BusTime) -> TransferResult;

    /// Data from IN endpoint `ep`.
    fn data_in(&mut self, ep: u8, buf: &mut [u8], now: BusTime) -> TransferResult;

    /// A standard GET_DESCRIPTOR addressed to interface `interface` (which exists in the
    /// configuration), for class descriptors such as HID's: descriptor type `kind`, index
    /// `index`. `None` (the default) STALLs.
    fn interface_descriptor(&self, interface: u8, kind: u8, index: u8) -> Option<Vec<u8>> {
        let _ = (interface, kind, index);
        None
    }
}
