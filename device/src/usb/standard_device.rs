//! A USB device built from descriptors and a [`UsbFunction`]: device state, alternate settings,
//! endpoint halt, and the routing of control requests and data.

use log::debug;

use super::configuration::Configuration;
use super::descriptor::{DeviceDescriptor, EndpointDescriptor};
use super::device::{BusTime, SetupPacket, TransferResult, UsbDevice, UsbSpeed};
use super::function::UsbFunction;
use super::request::{Recipient, RequestKind, SetupFields};
use super::strings::StringTable;

/// The visible device states of USB 2.0 §9.1.1 (attached/powered are the port's business).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceState {
    /// After reset: address 0, unconfigured.
    Default,
    /// SET_ADDRESS done, unconfigured.
    Address,
    /// SET_CONFIGURATION with a non-zero value done.
    Configured,
}

/// Everything that describes a device to the host.
#[derive(Clone, Debug)]
pub struct DeviceDescriptors {
    /// The device descriptor.
    pub device: DeviceDescriptor,
    /// The one configuration (bNumConfigurations must be 1).
    pub configuration: Configuration,
    /// Strings.
    pub strings: StringTable,
}

/// A device model: chapter 9 handled here, class behaviour in `F`.
#[derive(Debug)]
pub struct StandardDevice<F> {
    pub(super) speed: UsbSpeed,
    pub(super) descriptors: DeviceDescriptors,
    pub(super) state: DeviceState,
    pub(super) address: u8,
    /// Current alternate setting per interface (meaningful when configured).
    pub(super) alternates: Vec<u8>,
    /// Halt bits per endpoint number: index 0 OUT, index 1 IN.
    pub(super) halted: [u16; 2],
    pub(super) function: F,
}

impl<F: UsbFunction> StandardDevice<F> {
    /// A device in the Default state.
    pub fn new(speed: UsbSpeed, descriptors: DeviceDescriptors, function: F) -> Self {
        let interfaces = descriptors.configuration.interfaces.len();
        StandardDevice {
            speed,
            descriptors,
            state: DeviceState::Default,
            address: 0,
            alternates: vec![0; interfaces],
            halted: [0; 2],
            function,
        }
    }

    /// The class behaviour.
    pub fn function(&self) -> &F {
        &self.function
    }

    /// The class behaviour, mutably (the backend drains the recorder through this).
    pub fn function_mut(&mut self) -> &mut F {
        &mut self.function
    }

    /// The descriptors the device presents.
    pub fn descriptors(&self) -> &DeviceDescriptors {
        &self.descriptors
    }

    /// The device state.
    pub fn state(&self) -> DeviceState {
        self.state
    }

    /// The address set by SET_ADDRESS (0 in the Default state).
    pub fn address(&self) -> u8 {
        self.address
    }

    /// The current alternate setting of `interface`, when configured.
    pub fn alternate(&self, interface: u8) -> Option<u8> {
        match self.state {
            DeviceState::Configured => self.alternates.get(usize::from(interface)).copied(),
            _ => None,
        }
    }

    /// True when endpoint `address` is halted.
    pub fn is_halted(&self, address: u8) -> bool {
        let dir = usize::from(address >> 7);
        self.halted[dir] & (1 << (address & 0x0F)) != 0
    }

    pub(super) fn set_halt(&mut self, address: u8, halt: bool) {
        let dir = usize::from(address >> 7);
        let bit = 1 << (address & 0x0F);
        if halt {
            self.halted[dir] |= bit;
        } else {
            self.halted[dir] &= !bit;
        }
    }

    /// The endpoint `address` in the current alternate setting of some interface, with the
    /// interface number.
    pub(super) fn active_endpoint(&self, address: u8) -> Option<(u8, &EndpointDescriptor)> {
        if self.state != DeviceState::Configured {
            return None;
        }
        let config = &self.descriptors.configuration;
        config.interfaces.iter().find_map(|i| {
            let alt = *self.alternates.get(usize::from(i.number))?;
            config
                .endpoint(i.number, alt, address)
                .map(|e| (i.number, e))
        })
    }

    /// True when `address` is an endpoint of any alternate setting of the configuration.
    fn configured_endpoint(&self, address: u8) -> bool {
        self.state == DeviceState::Configured
            && self.descriptors.configuration.interfaces.iter().any(|i| {
                i.alternates
                    .iter()
                    .any(|a| a.endpoints.iter().any(|e| e.address == address))
            })
    }

    pub(super) fn interface_exists(&self, number: u8) -> bool {
        self.state == DeviceState::Configured
            && self.descriptors.configuration.interface(number).is_some()
    }

    /// Leaves the Configured state, telling the function.
    pub(super) fn deconfigure(&mut self) {
        if self.state == DeviceState::Configured {
            self.function.deconfigured();
        }
        self.alternates.iter_mut().for_each(|a| *a = 0);
        self.halted = [0; 2];
    }

    fn class_or_vendor(
        &mut self,
        setup: SetupPacket,
        data: &mut [u8],
        now: BusTime,
    ) -> TransferResult {
        let target_ok = match setup.recipient() {
            Recipient::Interface => self.interface_exists(setup.index_low()),
            // Any endpoint of the configuration, not only active ones: UAC1 hosts may set an
            // endpoint's sampling frequency before selecting its alternate setting.
            Recipient::Endpoint => {
                setup.index_low() & 0x0F == 0 || self.configured_endpoint(setup.index_low())
            }
            Recipient::Device => self.state == DeviceState::Configured,
            Recipient::Other | Recipient::Reserved => false,
        };
        if !target_ok {
            debug!("usb: class request {setup:?} to an absent recipient: STALL");
            return TransferResult::Stall;
        }
        self.function.class_request(setup, data, now)
    }

    /// Checks that `address` (direction in bit 7) may move data now.
    fn data_target(&self, address: u8) -> Result<(), TransferResult> {
        if address & 0x0F == 0 || self.active_endpoint(address).is_none() {
            debug!("usb: data for endpoint {address:#04x}, which is not active: STALL");
            return Err(TransferResult::Stall);
        }
        if self.is_halted(address) {
            debug!("usb: data for halted endpoint {address:#04x}: STALL");
            return Err(TransferResult::Stall);
        }
        Ok(())
    }
}

impl<F: UsbFunction> UsbDevice for StandardDevice<F> {
    fn speed(&self) -> UsbSpeed {
        self.speed
    }

    fn reset(&mut self) {
        self.deconfigure();
        self.state = DeviceState::Default;
        self.address = 0;
    }

    fn control(&mut self, setup: SetupPacket, data: &mut [u8], now: BusTime) -> TransferResult {
        match setup.kind() {
            RequestKind::Standard => self.standard_request(setup, data, now),
            RequestKind::Class | RequestKind::Vendor => self.class_or_vendor(setup, data, now),
            RequestKind::Reserved => {
                debug!("usb: reserved request type {setup:?}: STALL");
                TransferResult::Stall
            }
        }
    }

    fn data_out(&mut self, ep: u8, data: &[u8], now: BusTime) -> TransferResult {
        if ep > 15 {
            return TransferResult::Stall;
        }
        match self.data_target(ep) {
            Ok(()) => self.function.data_out(ep, data, now),
            Err(r) => r,
        }
    }

    fn data_in(&mut self, ep: u8, buf: &mut [u8], now: BusTime) -> TransferResult {
        if ep > 15 {
            return TransferResult::Stall;
        }
        match self.data_target(ep | EndpointDescriptor::DIR_IN) {
            Ok(()) => self.function.data_in(ep, buf, now),
            Err(r) => r,
        }
    }
}
