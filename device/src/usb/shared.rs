//! A device model the xHCI owns and the backend can still reach: the port holds one handle,
//! the backend another (to drain the headset's recorder or change its signal mid-run).

use std::sync::{Arc, Mutex};

use super::{BusTime, SetupPacket, TransferResult, UsbDevice, UsbSpeed};

/// A [`UsbDevice`] behind a shared lock. A poisoned lock makes the device look dead
/// (transaction errors) rather than panicking the controller.
#[derive(Debug)]
pub struct SharedDevice<D>(pub Arc<Mutex<D>>);

impl<D> Clone for SharedDevice<D> {
    fn clone(&self) -> Self {
        SharedDevice(self.0.clone())
    }
}

impl<D: UsbDevice> SharedDevice<D> {
    /// Wraps `device`.
    pub fn new(device: D) -> Self {
        SharedDevice(Arc::new(Mutex::new(device)))
    }

    fn with<R>(&self, dead: R, f: impl FnOnce(&mut D) -> R) -> R {
        match self.0.lock() {
            Ok(mut d) => f(&mut d),
            Err(_) => dead,
        }
    }
}

impl<D: UsbDevice> UsbDevice for SharedDevice<D> {
    fn speed(&self) -> UsbSpeed {
        self.0.lock().map(|d| d.speed()).unwrap_or(UsbSpeed::Full)
    }

    fn reset(&mut self) {
        self.with((), |d| d.reset());
    }

    fn control(&mut self, setup: SetupPacket, data: &mut [u8], now: BusTime) -> TransferResult {
        self.with(TransferResult::TransactionError, |d| {
            d.control(setup, data, now)
        })
    }

    fn data_out(&mut self, ep: u8, data: &[u8], now: BusTime) -> TransferResult {
        self.with(TransferResult::TransactionError, |d| {
            d.data_out(ep, data, now)
        })
    }

    fn data_in(&mut self, ep: u8, buf: &mut [u8], now: BusTime) -> TransferResult {
        self.with(TransferResult::TransactionError, |d| {
            d.data_in(ep, buf, now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usb::uac::{AudioProfile, UacDevice};

    #[test]
    fn both_handles_drive_the_same_device() {
        let profile: AudioProfile = "headset-uac2".parse().unwrap();
        let dev = SharedDevice::new(UacDevice::headset(profile).unwrap());
        let mut port_side: Box<dyn UsbDevice> = Box::new(dev.clone());
        // SET_ADDRESS through the port's handle is visible through the backend's handle.
        let set_address = SetupPacket {
            request_type: 0,
            request: 5,
            value: 7,
            index: 0,
            length: 0,
        };
        assert_eq!(
            port_side.control(set_address, &mut [], BusTime(0)),
            TransferResult::Complete(0)
        );
        assert_eq!(port_side.speed(), UsbSpeed::High);
        let d = dev.0.lock().unwrap();
        assert_eq!(
            (d.state(), d.address()),
            (crate::usb::DeviceState::Address, 7)
        );
    }
}
