//! Standard USB 2.0 descriptors (chapter 9.6) and their little-endian wire form.
//!
//! Each descriptor is a plain struct of its fields; `bLength` and `bDescriptorType` are implied by
//! the type and written by `to_bytes`. Class-specific descriptors are opaque byte blobs here; the
//! audio class builds its own in `usb::uac`.

/// bDescriptorType values (USB 2.0 table 9-5, plus the IAD from the ECN).
pub mod descriptor_type {
    /// DEVICE.
    pub const DEVICE: u8 = 0x01;
    /// CONFIGURATION.
    pub const CONFIGURATION: u8 = 0x02;
    /// STRING.
    pub const STRING: u8 = 0x03;
    /// INTERFACE.
    pub const INTERFACE: u8 = 0x04;
    /// ENDPOINT.
    pub const ENDPOINT: u8 = 0x05;
    /// DEVICE_QUALIFIER.
    pub const DEVICE_QUALIFIER: u8 = 0x06;
    /// OTHER_SPEED_CONFIGURATION.
    pub const OTHER_SPEED_CONFIGURATION: u8 = 0x07;
    /// INTERFACE_ASSOCIATION.
    pub const INTERFACE_ASSOCIATION: u8 = 0x0B;
    /// BOS (USB 2.0 LPM ECN / USB 3).
    pub const BOS: u8 = 0x0F;
}

/// Endpoint transfer types, bmAttributes bits 1:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferType {
    /// Control.
    Control = 0,
    /// Isochronous.
    Isochronous = 1,
    /// Bulk.
    Bulk = 2,
    /// Interrupt.
    Interrupt = 3,
}

/// Isochronous synchronisation types, bmAttributes bits 3:2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncType {
    /// No synchronisation.
    None = 0,
    /// Asynchronous: the device's own clock.
    Asynchronous = 1,
    /// Adaptive: the device follows the data rate.
    Adaptive = 2,
    /// Synchronous: locked to SOF.
    Synchronous = 3,
}

/// Isochronous usage types, bmAttributes bits 5:4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UsageType {
    /// Data endpoint.
    Data = 0,
    /// Explicit feedback endpoint.
    Feedback = 1,
    /// Data endpoint that is also an implicit feedback source.
    ImplicitFeedbackData = 2,
}

/// Encodes an endpoint's bmAttributes byte.
pub fn endpoint_attributes(transfer: TransferType, sync: SyncType, usage: UsageType) -> u8 {
    transfer as u8 | (sync as u8) << 2 | (usage as u8) << 4
}

/// The device descriptor (USB 2.0 §9.6.1), 18 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceDescriptor {
    /// bcdUSB.
    pub usb_version: u16,
    /// bDeviceClass.
    pub class: u8,
    /// bDeviceSubClass.
    pub subclass: u8,
    /// bDeviceProtocol.
    pub protocol: u8,
    /// bMaxPacketSize0 (8, 16, 32 or 64; 64 at high speed).
    pub max_packet_size0: u8,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice.
    pub device_version: u16,
    /// iManufacturer.
    pub manufacturer_string: u8,
    /// iProduct.
    pub product_string: u8,
    /// iSerialNumber.
    pub serial_string: u8,
    /// bNumConfigurations.
    pub num_configurations: u8,
}

impl DeviceDescriptor {
    /// bLength of the device descriptor.
    pub const LENGTH: u8 = 18;

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![Self::LENGTH, descriptor_type::DEVICE];
        b.extend_from_slice(&self.usb_version.to_le_bytes());
        b.extend_from_slice(&[
            self.class,
            self.subclass,
            self.protocol,
            self.max_packet_size0,
        ]);
        b.extend_from_slice(&self.vendor_id.to_le_bytes());
        b.extend_from_slice(&self.product_id.to_le_bytes());
        b.extend_from_slice(&self.device_version.to_le_bytes());
        b.extend_from_slice(&[
            self.manufacturer_string,
            self.product_string,
            self.serial_string,
            self.num_configurations,
        ]);
        b
    }

    /// The device qualifier (USB 2.0 §9.6.2) a high-speed capable device returns: the device's
    /// fields as they would be at the other speed. Our devices keep the same class codes there.
    pub fn qualifier_bytes(&self) -> Vec<u8> {
        let mut b = vec![10, descriptor_type::DEVICE_QUALIFIER];
        b.extend_from_slice(&self.usb_version.to_le_bytes());
        b.extend_from_slice(&[
            self.class,
            self.subclass,
            self.protocol,
            self.max_packet_size0,
            self.num_configurations,
            0, // bReserved
        ]);
        b
    }
}

/// Configuration-level fields of the configuration descriptor (USB 2.0 §9.6.3); wTotalLength and
/// bNumInterfaces are computed by the [`ConfigurationBuilder`](super::ConfigurationBuilder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigurationAttributes {
    /// bConfigurationValue (non-zero).
    pub value: u8,
    /// iConfiguration.
    pub string: u8,
    /// bmAttributes: bit 7 must be set; bit 6 self-powered; bit 5 remote wakeup.
    pub attributes: u8,
    /// bMaxPower in 2 mA units.
    pub max_power: u8,
}

impl ConfigurationAttributes {
    /// bLength of the configuration descriptor.
    pub const LENGTH: u8 = 9;
    /// bmAttributes bit 6.
    pub const SELF_POWERED: u8 = 0x40;
    /// bmAttributes bit 5.
    pub const REMOTE_WAKEUP: u8 = 0x20;

    /// The 9-byte descriptor with the given totals.
    pub fn to_bytes(&self, total_length: u16, num_interfaces: u8) -> [u8; 9] {
        let t = total_length.to_le_bytes();
        [
            Self::LENGTH,
            descriptor_type::CONFIGURATION,
            t[0],
            t[1],
            num_interfaces,
            self.value,
            self.string,
            self.attributes | 0x80,
            self.max_power,
        ]
    }
}

/// The interface association descriptor (IAD ECN), 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceAssociation {
    /// bFirstInterface.
    pub first_interface: u8,
    /// bInterfaceCount.
    pub interface_count: u8,
    /// bFunctionClass.
    pub class: u8,
    /// bFunctionSubClass.
    pub subclass: u8,
    /// bFunctionProtocol.
    pub protocol: u8,
    /// iFunction.
    pub string: u8,
}

impl InterfaceAssociation {
    /// The wire form.
    pub fn to_bytes(&self) -> [u8; 8] {
        [
            8,
            descriptor_type::INTERFACE_ASSOCIATION,
            self.first_interface,
            self.interface_count,
            self.class,
            self.subclass,
            self.protocol,
            self.string,
        ]
    }
}

/// The interface descriptor (USB 2.0 §9.6.5) without bNumEndpoints, which the builder counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceDescriptor {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alternate: u8,
    /// bInterfaceClass.
    pub class: u8,
    /// bInterfaceSubClass.
    pub subclass: u8,
    /// bInterfaceProtocol.
    pub protocol: u8,
    /// iInterface.
    pub string: u8,
}

impl InterfaceDescriptor {
    /// The 9-byte wire form.
    pub fn to_bytes(&self, num_endpoints: u8) -> [u8; 9] {
        [
            9,
            descriptor_type::INTERFACE,
            self.number,
            self.alternate,
            num_endpoints,
            self.class,
            self.subclass,
            self.protocol,
            self.string,
        ]
    }
}

/// The endpoint descriptor (USB 2.0 §9.6.6); with `audio` set it is the 9-byte form of the USB
/// Audio 1.0 spec (§4.6.1.1) that adds bRefresh and bSynchAddress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointDescriptor {
    /// bEndpointAddress: bit 7 set for IN, bits 3:0 the endpoint number.
    pub address: u8,
    /// bmAttributes.
    pub attributes: u8,
    /// wMaxPacketSize, including the high-bandwidth bits 12:11.
    pub max_packet_size: u16,
    /// bInterval.
    pub interval: u8,
    /// `Some((bRefresh, bSynchAddress))` for the 9-byte audio endpoint form.
    pub audio: Option<(u8, u8)>,
}

impl EndpointDescriptor {
    /// bEndpointAddress bit 7.
    pub const DIR_IN: u8 = 0x80;

    /// The wire form: 7 bytes, or 9 with the audio fields.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![7, descriptor_type::ENDPOINT, self.address, self.attributes];
        b.extend_from_slice(&self.max_packet_size.to_le_bytes());
        b.push(self.interval);
        if let Some((refresh, synch)) = self.audio {
            b[0] = 9;
            b.extend_from_slice(&[refresh, synch]);
        }
        b
    }

    /// The endpoint number, 0..=15.
    pub fn number(&self) -> u8 {
        self.address & 0x0F
    }

    /// True for an IN endpoint.
    pub fn is_in(&self) -> bool {
        self.address & Self::DIR_IN != 0
    }

    /// The transfer type in bmAttributes.
    pub fn transfer_type(&self) -> TransferType {
        match self.attributes & 0x3 {
            0 => TransferType::Control,
            1 => TransferType::Isochronous,
            2 => TransferType::Bulk,
            _ => TransferType::Interrupt,
        }
    }

    /// Bytes per (micro)frame this endpoint can move: the packet size times the high-bandwidth
    /// transaction count.
    pub fn max_payload_per_interval(&self) -> usize {
        periodic_payload(self.max_packet_size)
    }
}

/// Bytes per (micro)frame a periodic endpoint with this wMaxPacketSize moves: bits 10:0 are the
/// packet size, bits 12:11 the additional high-bandwidth transactions.
pub fn periodic_payload(max_packet_size: u16) -> usize {
    let size = usize::from(max_packet_size & 0x7FF);
    let extra = usize::from((max_packet_size >> 11) & 0x3);
    size * (extra + 1)
}

/// Encodes wMaxPacketSize for a periodic high-speed endpoint that moves `bytes` per microframe:
/// up to three transactions of at most 1024 bytes (USB 2.0 §5.9.2). `None` if it cannot.
pub fn high_bandwidth_max_packet(bytes: usize) -> Option<u16> {
    let transactions = bytes.div_ceil(1024).max(1);
    if transactions > 3 {
        return None;
    }
    let size = bytes.div_ceil(transactions);
    u16::try_from(size | (transactions - 1) << 11).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_bandwidth_encoding_splits_into_transactions() {
        assert_eq!(high_bandwidth_max_packet(392), Some(392));
        assert_eq!(high_bandwidth_max_packet(1024), Some(1024));
        assert_eq!(high_bandwidth_max_packet(1568), Some(784 | 1 << 11));
        assert_eq!(high_bandwidth_max_packet(3072), Some(1024 | 2 << 11));
        assert_eq!(high_bandwidth_max_packet(3073), None);
    }

    #[test]
    fn endpoint_payload_counts_extra_transactions() {
        let ep = EndpointDescriptor {
            address: 0x01,
            attributes: 0x05,
            max_packet_size: 784 | 1 << 11,
            interval: 1,
            audio: None,
        };
        assert_eq!(ep.max_payload_per_interval(), 1568);
        assert_eq!(ep.to_bytes().len(), 7);
    }

    #[test]
    fn audio_endpoint_is_nine_bytes() {
        let ep = EndpointDescriptor {
            address: 0x81,
            attributes: 0x05,
            max_packet_size: 200,
            interval: 1,
            audio: Some((0, 0x02)),
        };
        assert_eq!(ep.to_bytes(), vec![9, 5, 0x81, 0x05, 200, 0, 1, 0, 0x02]);
    }
}
