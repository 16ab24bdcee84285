//! A configuration: its descriptor blob (what GET_DESCRIPTOR(CONFIGURATION) returns) and the
//! interface / alternate setting / endpoint structure the framework routes requests and data by.

use thiserror::Error;

use super::descriptor::{ConfigurationAttributes, EndpointDescriptor, InterfaceAssociation};
use super::descriptor::{InterfaceDescriptor, TransferType};
use super::device::UsbSpeed;

/// Why a configuration could not be built.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Alternate settings of one interface must be added together, starting at 0, in order.
    #[error("interface {interface} alternate setting {alternate} is out of order")]
    AlternateOutOfOrder {
        /// bInterfaceNumber.
        interface: u8,
        /// bAlternateSetting.
        alternate: u8,
    },
    /// The same endpoint address appears twice in one alternate setting, or is endpoint 0.
    #[error("endpoint address {address:#04x} is invalid or repeated")]
    BadEndpoint {
        /// bEndpointAddress.
        address: u8,
    },
    /// Interfaces must be numbered 0, 1, 2… in the order they are added.
    #[error("interface {interface} is out of order")]
    InterfaceOutOfOrder {
        /// bInterfaceNumber.
        interface: u8,
    },
    /// The descriptors exceed wTotalLength's 65535 bytes or 255 endpoints.
    #[error("the configuration is too large")]
    TooLarge,
}

/// One endpoint of an alternate setting, with the class-specific descriptors that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointEntry {
    /// The standard endpoint descriptor.
    pub descriptor: EndpointDescriptor,
    /// Class-specific endpoint descriptors (e.g. the audio CS_ENDPOINT descriptor).
    pub class_specific: Vec<u8>,
}

/// One alternate setting of an interface, as it goes into the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlternateSetting {
    /// The standard interface descriptor (bNumEndpoints is counted from `endpoints`).
    pub interface: InterfaceDescriptor,
    /// Class-specific interface descriptors that follow it.
    pub class_specific: Vec<u8>,
    /// Its endpoints, in descriptor order.
    pub endpoints: Vec<EndpointEntry>,
}

/// What the framework keeps of an alternate setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlternateLayout {
    /// bAlternateSetting.
    pub alternate: u8,
    /// The endpoint descriptors of this alternate setting.
    pub endpoints: Vec<EndpointDescriptor>,
}

/// An interface and all its alternate settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceLayout {
    /// bInterfaceNumber.
    pub number: u8,
    /// Alternate settings, index = bAlternateSetting.
    pub alternates: Vec<AlternateLayout>,
}

/// A built configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configuration {
    /// The configuration-level fields.
    pub attributes: ConfigurationAttributes,
    /// The full descriptor set, configuration descriptor first.
    pub bytes: Vec<u8>,
    /// Interfaces, index = bInterfaceNumber.
    pub interfaces: Vec<InterfaceLayout>,
}

impl Configuration {
    /// The interface numbered `number`.
    pub fn interface(&self, number: u8) -> Option<&InterfaceLayout> {
        self.interfaces.get(usize::from(number))
    }

    /// The endpoint `address` in alternate setting `alt` of interface `number`.
    pub fn endpoint(&self, number: u8, alt: u8, address: u8) -> Option<&EndpointDescriptor> {
        let alt = self.interface(number)?.alternates.get(usize::from(alt))?;
        alt.endpoints.iter().find(|e| e.address == address)
    }
}

/// Assembles a configuration descriptor set in order and computes wTotalLength and
/// bNumInterfaces.
#[derive(Clone, Debug)]
pub struct ConfigurationBuilder {
    attributes: ConfigurationAttributes,
    body: Vec<u8>,
    interfaces: Vec<InterfaceLayout>,
    error: Option<ConfigError>,
}

impl ConfigurationBuilder {
    /// Starts a configuration.
    pub fn new(attributes: ConfigurationAttributes) -> Self {
        ConfigurationBuilder {
            attributes,
            body: Vec::new(),
            interfaces: Vec::new(),
            error: None,
        }
    }

    /// Appends an interface association descriptor (it must precede its first interface).
    pub fn association(mut self, iad: InterfaceAssociation) -> Self {
        self.body.extend_from_slice(&iad.to_bytes());
        self
    }

    /// Appends an alternate setting with its class-specific descriptors and endpoints.
    pub fn alternate(mut self, alt: AlternateSetting) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.add_alternate(alt) {
                self.error = Some(e);
            }
        }
        self
    }

    fn add_alternate(&mut self, alt: AlternateSetting) -> Result<(), ConfigError> {
        let number = alt.interface.number;
        let alternate = alt.interface.alternate;
        if alternate == 0 {
            if usize::from(number) != self.interfaces.len() {
                return Err(ConfigError::InterfaceOutOfOrder { interface: number });
            }
            self.interfaces.push(InterfaceLayout {
                number,
                alternates: Vec::new(),
            });
        }
        let layout = self
            .interfaces
            .last_mut()
            .filter(|i| i.number == number && usize::from(alternate) == i.alternates.len())
            .ok_or(ConfigError::AlternateOutOfOrder {
                interface: number,
                alternate,
            })?;
        let mut endpoints: Vec<EndpointDescriptor> = Vec::new();
        for e in &alt.endpoints {
            let a = e.descriptor.address;
            if a & 0x0F == 0 || a & 0x70 != 0 || endpoints.iter().any(|x| x.address == a) {
                return Err(ConfigError::BadEndpoint { address: a });
            }
            endpoints.push(e.descriptor);
        }
        let count = u8::try_from(endpoints.len()).map_err(|_| ConfigError::TooLarge)?;
        self.body.extend_from_slice(&alt.interface.to_bytes(count));
        self.body.extend_from_slice(&alt.class_specific);
        for e in &alt.endpoints {
            self.body.extend_from_slice(&e.descriptor.to_bytes());
            self.body.extend_from_slice(&e.class_specific);
        }
        layout.alternates.push(AlternateLayout {
            alternate,
            endpoints,
        });
        Ok(())
    }

    /// Finishes the configuration.
    pub fn build(self) -> Result<Configuration, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let total = usize::from(ConfigurationAttributes::LENGTH) + self.body.len();
        let total = u16::try_from(total).map_err(|_| ConfigError::TooLarge)?;
        let count = u8::try_from(self.interfaces.len()).map_err(|_| ConfigError::TooLarge)?;
        let mut bytes = self.attributes.to_bytes(total, count).to_vec();
        bytes.extend_from_slice(&self.body);
        Ok(Configuration {
            attributes: self.attributes,
            bytes,
            interfaces: self.interfaces,
        })
    }
}

/// The service interval of a periodic endpoint in 125 µs microframes (bInterval decoded per
/// USB 2.0 table 9-13). Returns 1 for bulk and control, which have none.
pub fn service_interval_uframes(ep: &EndpointDescriptor, speed: UsbSpeed) -> u64 {
    let exponent = u32::from(ep.interval.clamp(1, 16) - 1);
    match (ep.transfer_type(), speed) {
        (TransferType::Isochronous, UsbSpeed::Full | UsbSpeed::Low) => 8 << exponent,
        (TransferType::Interrupt, UsbSpeed::Full | UsbSpeed::Low) => 8 * u64::from(ep.interval),
        (TransferType::Isochronous | TransferType::Interrupt, _) => 1 << exponent,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(number: u8, alternate: u8) -> InterfaceDescriptor {
        InterfaceDescriptor {
            number,
            alternate,
            class: 0xFF,
            subclass: 0,
            protocol: 0,
            string: 0,
        }
    }

    fn ep(address: u8) -> EndpointEntry {
        EndpointEntry {
            descriptor: EndpointDescriptor {
                address,
                attributes: 2,
                max_packet_size: 512,
                interval: 0,
                audio: None,
            },
            class_specific: vec![],
        }
    }

    fn attrs() -> ConfigurationAttributes {
        ConfigurationAttributes {
            value: 1,
            string: 0,
            attributes: 0,
            max_power: 50,
        }
    }

    #[test]
    fn totals_are_computed() {
        let c = ConfigurationBuilder::new(attrs())
            .alternate(AlternateSetting {
                interface: iface(0, 0),
                class_specific: vec![3, 0x24, 1],
                endpoints: vec![ep(0x81), ep(0x01)],
            })
            .build()
            .unwrap();
        assert_eq!(c.bytes.len(), 9 + 9 + 3 + 7 + 7);
        assert_eq!(u16::from_le_bytes([c.bytes[2], c.bytes[3]]), 35);
        assert_eq!(c.bytes[4], 1);
        assert_eq!(c.bytes[9 + 4], 2, "bNumEndpoints");
        assert!(c.endpoint(0, 0, 0x81).is_some());
        assert!(c.endpoint(0, 1, 0x81).is_none());
    }

    #[test]
    fn order_and_endpoint_errors() {
        let r = ConfigurationBuilder::new(attrs())
            .alternate(AlternateSetting {
                interface: iface(1, 0),
                class_specific: vec![],
                endpoints: vec![],
            })
            .build();
        assert_eq!(r, Err(ConfigError::InterfaceOutOfOrder { interface: 1 }));
        let r = ConfigurationBuilder::new(attrs())
            .alternate(AlternateSetting {
                interface: iface(0, 1),
                class_specific: vec![],
                endpoints: vec![],
            })
            .build();
        assert!(matches!(r, Err(ConfigError::AlternateOutOfOrder { .. })));
        let r = ConfigurationBuilder::new(attrs())
            .alternate(AlternateSetting {
                interface: iface(0, 0),
                class_specific: vec![],
                endpoints: vec![ep(0x81), ep(0x81)],
            })
            .build();
        assert_eq!(r, Err(ConfigError::BadEndpoint { address: 0x81 }));
    }

    #[test]
    fn intervals_by_speed() {
        let mut e = ep(0x81).descriptor;
        e.attributes = 1;
        e.interval = 4;
        assert_eq!(service_interval_uframes(&e, UsbSpeed::High), 8);
        assert_eq!(service_interval_uframes(&e, UsbSpeed::Full), 64);
        e.interval = 1;
        assert_eq!(service_interval_uframes(&e, UsbSpeed::Full), 8);
        e.interval = 0;
        assert_eq!(service_interval_uframes(&e, UsbSpeed::High), 1);
    }
}
