//! The chapter 9 standard requests (USB 2.0 §9.4), shared by every device model.

use log::debug;

use super::descriptor::{descriptor_type, ConfigurationAttributes};
use super::device::{BusTime, SetupPacket, TransferResult, UsbSpeed};
use super::function::UsbFunction;
use super::request::{feature, reply, standard_request as req, Recipient, SetupFields};
use super::standard_device::{DeviceState, StandardDevice};

fn stall(setup: SetupPacket, why: &str) -> TransferResult {
    debug!("usb: standard request {setup:?}: {why}: STALL");
    TransferResult::Stall
}

impl<F: UsbFunction> StandardDevice<F> {
    pub(super) fn standard_request(
        &mut self,
        setup: SetupPacket,
        data: &mut [u8],
        now: BusTime,
    ) -> TransferResult {
        let d2h = setup.is_device_to_host();
        match (setup.request, d2h) {
            (req::GET_DESCRIPTOR, true) => self.get_descriptor(setup, data),
            (req::GET_STATUS, true) => self.get_status(setup, data),
            (req::CLEAR_FEATURE, false) => self.feature(setup, false),
            (req::SET_FEATURE, false) => self.feature(setup, true),
            (req::SET_ADDRESS, false) => self.set_address(setup),
            (req::GET_CONFIGURATION, true) => self.get_configuration(setup, data),
            (req::SET_CONFIGURATION, false) => self.set_configuration(setup, now),
            (req::GET_INTERFACE, true) => self.get_interface(setup, data),
            (req::SET_INTERFACE, false) => self.set_interface(setup, now),
            _ => stall(setup, "unsupported"),
        }
    }

    fn get_descriptor(&self, setup: SetupPacket, data: &mut [u8]) -> TransferResult {
        if setup.recipient() == Recipient::Interface
            && setup.index <= 0xFF
            && self.interface_exists(setup.index_low())
        {
            let (number, kind, index) = (setup.index_low(), setup.value_high(), setup.value_low());
            return match self.function.interface_descriptor(number, kind, index) {
                Some(bytes) => TransferResult::Complete(reply(setup, data, &bytes)),
                None => stall(setup, "no such interface descriptor"),
            };
        }
        if setup.recipient() != Recipient::Device {
            return stall(setup, "descriptor request not to the device");
        }
        let index = setup.value_low();
        let bytes = match setup.value_high() {
            descriptor_type::DEVICE if index == 0 => self.descriptors.device.to_bytes(),
            descriptor_type::CONFIGURATION if index == 0 => {
                self.descriptors.configuration.bytes.clone()
            }
            descriptor_type::STRING => {
                match self.descriptors.strings.descriptor(index, setup.index) {
                    Some(b) => b,
                    None => return stall(setup, "no such string"),
                }
            }
            // Only a high-speed device has another speed to describe; a full-speed-only device
            // must STALL (USB 2.0 §9.6.2).
            descriptor_type::DEVICE_QUALIFIER if index == 0 && self.speed == UsbSpeed::High => {
                self.descriptors.device.qualifier_bytes()
            }
            _ => return stall(setup, "no such descriptor"),
        };
        TransferResult::Complete(reply(setup, data, &bytes))
    }

    fn get_status(&self, setup: SetupPacket, data: &mut [u8]) -> TransferResult {
        if setup.value != 0 || setup.length != 2 {
            return stall(setup, "malformed GET_STATUS");
        }
        let status: u16 = match setup.recipient() {
            Recipient::Device if setup.index == 0 => {
                let attrs = self.descriptors.configuration.attributes.attributes;
                u16::from(attrs & ConfigurationAttributes::SELF_POWERED != 0)
            }
            Recipient::Interface
                if setup.index <= 0xFF && self.interface_exists(setup.index_low()) =>
            {
                0
            }
            Recipient::Endpoint
                if setup.index <= 0xFF && self.endpoint_addressable(setup.index_low()) =>
            {
                u16::from(self.is_halted(setup.index_low()))
            }
            _ => return stall(setup, "no such recipient"),
        };
        TransferResult::Complete(reply(setup, data, &status.to_le_bytes()))
    }

    /// Endpoint 0 always; other endpoints only when part of the current configuration.
    fn endpoint_addressable(&self, address: u8) -> bool {
        if address & 0x70 != 0 {
            return false;
        }
        if address & 0x0F == 0 {
            return self.state != DeviceState::Default || address == 0;
        }
        self.active_endpoint(address).is_some()
    }

    fn feature(&mut self, setup: SetupPacket, set: bool) -> TransferResult {
        if setup.length != 0 {
            return stall(setup, "feature request with a data stage");
        }
        match (setup.recipient(), setup.value) {
            (Recipient::Endpoint, feature::ENDPOINT_HALT) if setup.index <= 0xFF => {
                let address = setup.index_low();
                if address & 0x0F == 0 {
                    // Endpoint 0 cannot stay halted: a protocol stall clears at the next SETUP.
                    return if self.endpoint_addressable(address) {
                        TransferResult::Complete(0)
                    } else {
                        stall(setup, "endpoint 0 halt in the Default state")
                    };
                }
                if self.active_endpoint(address).is_none() {
                    return stall(setup, "halt of an inactive endpoint");
                }
                self.set_halt(address, set);
                debug!("usb: endpoint {address:#04x} halt = {set}");
                TransferResult::Complete(0)
            }
            _ => stall(setup, "unsupported feature"),
        }
    }

    fn set_address(&mut self, setup: SetupPacket) -> TransferResult {
        if setup.recipient() != Recipient::Device
            || setup.index != 0
            || setup.length != 0
            || setup.value > 127
        {
            return stall(setup, "malformed SET_ADDRESS");
        }
        let address = setup.value as u8; // ≤ 127, checked above
        match self.state {
            DeviceState::Configured => stall(setup, "SET_ADDRESS while configured"),
            DeviceState::Default | DeviceState::Address => {
                self.address = address;
                self.state = if address == 0 {
                    DeviceState::Default
                } else {
                    DeviceState::Address
                };
                TransferResult::Complete(0)
            }
        }
    }

    fn get_configuration(&self, setup: SetupPacket, data: &mut [u8]) -> TransferResult {
        if setup.recipient() != Recipient::Device
            || setup.value != 0
            || setup.index != 0
            || setup.length != 1
        {
            return stall(setup, "malformed GET_CONFIGURATION");
        }
        let value = match self.state {
            DeviceState::Configured => self.descriptors.configuration.attributes.value,
            _ => 0,
        };
        TransferResult::Complete(reply(setup, data, &[value]))
    }

    fn set_configuration(&mut self, setup: SetupPacket, now: BusTime) -> TransferResult {
        if setup.recipient() != Recipient::Device || setup.index != 0 || setup.length != 0 {
            return stall(setup, "malformed SET_CONFIGURATION");
        }
        if self.state == DeviceState::Default {
            return stall(setup, "SET_CONFIGURATION before SET_ADDRESS");
        }
        let ours = self.descriptors.configuration.attributes.value;
        match setup.value {
            0 => {
                self.deconfigure();
                self.state = DeviceState::Address;
            }
            v if v == u16::from(ours) => {
                self.deconfigure();
                self.state = DeviceState::Configured;
                for i in 0..self.alternates.len() {
                    self.function.alternate_changed(i as u8, 0, now); // ≤ 255 interfaces
                }
            }
            _ => return stall(setup, "no such configuration"),
        }
        TransferResult::Complete(0)
    }

    fn get_interface(&self, setup: SetupPacket, data: &mut [u8]) -> TransferResult {
        if setup.recipient() != Recipient::Interface
            || setup.value != 0
            || setup.length != 1
            || setup.index > 0xFF
            || !self.interface_exists(setup.index_low())
        {
            return stall(setup, "GET_INTERFACE of no interface");
        }
        let alt = self.alternates[usize::from(setup.index_low())];
        TransferResult::Complete(reply(setup, data, &[alt]))
    }

    fn set_interface(&mut self, setup: SetupPacket, now: BusTime) -> TransferResult {
        if setup.recipient() != Recipient::Interface
            || setup.length != 0
            || setup.index > 0xFF
            || setup.value > 0xFF
            || !self.interface_exists(setup.index_low())
        {
            return stall(setup, "SET_INTERFACE of no interface");
        }
        let number = setup.index_low();
        let alt = setup.value_low();
        let Some(layout) = self.descriptors.configuration.interface(number) else {
            return stall(setup, "no such interface");
        };
        if usize::from(alt) >= layout.alternates.len() {
            return stall(setup, "no such alternate setting");
        }
        // Selecting an alternate setting resets its endpoints, halt included (USB 2.0 §9.4.10).
        let old = self.alternates[usize::from(number)];
        let mut addresses: Vec<u8> = Vec::new();
        for a in [old, alt] {
            if let Some(al) = layout.alternates.get(usize::from(a)) {
                addresses.extend(al.endpoints.iter().map(|e| e.address));
            }
        }
        for a in addresses {
            self.set_halt(a, false);
        }
        self.alternates[usize::from(number)] = alt;
        self.function.alternate_changed(number, alt, now);
        TransferResult::Complete(0)
    }
}
