//! The UAC2 high-speed headset's descriptors (USB Audio 2.0 §4): an interface association over
//! AudioControl + playback + capture, a programmable clock source, and one streaming alternate
//! setting per format.

use super::format::uac2_channel_config;
use super::layout::{endpoint, entity, interface, HeadsetLayout};
use super::profile::{AudioProfile, PlaybackSync};
use super::spec::{self, ac, as_subtype, terminal};
use crate::usb::descriptor::{
    endpoint_attributes, ConfigurationAttributes, DeviceDescriptor, EndpointDescriptor,
    InterfaceAssociation, InterfaceDescriptor, SyncType, TransferType, UsageType,
};
use crate::usb::{
    AlternateSetting, ConfigError, ConfigurationBuilder, DeviceDescriptors, EndpointEntry,
    StringTable, UsbSpeed, LANGID_EN_US,
};

/// Feedback endpoint bInterval: every 2^(4-1) = 8 microframes (1 ms).
const FEEDBACK_BINTERVAL: u8 = 4;

/// The descriptors of a UAC2 headset for `profile` (which must be a UAC2 profile).
pub fn uac2_descriptors(profile: &AudioProfile) -> Result<DeviceDescriptors, ConfigError> {
    let layout = HeadsetLayout::new(profile);
    let mut strings = StringTable::new(LANGID_EN_US);
    let manufacturer = strings.add("sideband");
    let product = strings.add("sideband UAC2 headset");
    let serial = strings.add("SB-UAC2-0001");
    let device = DeviceDescriptor {
        usb_version: 0x0200,
        // Miscellaneous / common class / IAD: the function is described by the association.
        class: 0xEF,
        subclass: 0x02,
        protocol: 0x01,
        max_packet_size0: 64,
        vendor_id: profile.vendor_id,
        product_id: profile.product_id,
        device_version: 0x0100,
        manufacturer_string: manufacturer,
        product_string: product,
        serial_string: serial,
        num_configurations: 1,
    };
    let mut builder = ConfigurationBuilder::new(ConfigurationAttributes {
        value: 1,
        string: 0,
        attributes: 0,
        max_power: 50,
    })
    .association(InterfaceAssociation {
        first_interface: interface::CONTROL,
        interface_count: layout.interface_count(),
        class: spec::AUDIO,
        subclass: spec::FUNCTION_SUBCLASS_UNDEFINED,
        protocol: spec::PROTOCOL_UAC2,
        string: product,
    })
    .alternate(AlternateSetting {
        interface: streaming_interface(interface::CONTROL, 0, spec::SUBCLASS_AUDIOCONTROL),
        class_specific: control_descriptors(profile, &layout),
        endpoints: vec![],
    });
    builder = streaming_alternates(builder, profile, &layout, true);
    if layout.capture {
        builder = streaming_alternates(builder, profile, &layout, false);
    }
    builder = builder.alternate(layout.hid().alternate_setting(UsbSpeed::High));
    Ok(DeviceDescriptors {
        device,
        configuration: builder.build()?,
        strings,
    })
}

fn streaming_interface(number: u8, alternate: u8, subclass: u8) -> InterfaceDescriptor {
    InterfaceDescriptor {
        number,
        alternate,
        class: spec::AUDIO,
        subclass,
        protocol: spec::PROTOCOL_UAC2,
        string: 0,
    }
}

fn cs(subtype: u8, body: &[u8]) -> Vec<u8> {
    let mut d = vec![(body.len() + 3) as u8, spec::CS_INTERFACE, subtype]; // bodies are < 60 bytes
    d.extend_from_slice(body);
    d
}

fn input_terminal(id: u8, kind: u16, channels: u8) -> Vec<u8> {
    let mut b = vec![id];
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&[0, entity::CLOCK, channels]); // bAssocTerminal, bCSourceID, bNrChannels
    b.extend_from_slice(&uac2_channel_config(channels).to_le_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]); // iChannelNames, bmControls (2), iTerminal
    cs(ac::INPUT_TERMINAL, &b)
}

fn output_terminal(id: u8, kind: u16, source: u8) -> Vec<u8> {
    let mut b = vec![id];
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&[0, source, entity::CLOCK, 0, 0, 0]); // assoc, src, clock, ctl(2), iTerm
    cs(ac::OUTPUT_TERMINAL, &b)
}

/// The class-specific AudioControl descriptors, header first with its wTotalLength.
fn control_descriptors(profile: &AudioProfile, layout: &HeadsetLayout) -> Vec<u8> {
    let channels = profile.formats.first().map_or(2, |f| f.channels);
    let mut body = Vec::new();
    // Clock source: internal programmable (bmAttributes 0b11); frequency control host
    // programmable (0b11), validity control read-only (0b01 << 2).
    body.extend(cs(ac::CLOCK_SOURCE, &[entity::CLOCK, 0x03, 0x07, 0, 0]));
    body.extend(input_terminal(
        entity::PLAYBACK_INPUT,
        terminal::USB_STREAMING,
        channels,
    ));
    // Feature unit: master channel mute and volume, both host programmable (0b11 each).
    let mut fu = vec![entity::FEATURE_UNIT, entity::PLAYBACK_INPUT];
    fu.extend_from_slice(&0x0000_000Fu32.to_le_bytes());
    for _ in 0..channels {
        fu.extend_from_slice(&0u32.to_le_bytes());
    }
    fu.push(0); // iFeature
    body.extend(cs(ac::FEATURE_UNIT, &fu));
    body.extend(output_terminal(
        entity::HEADPHONES,
        terminal::HEADPHONES,
        entity::FEATURE_UNIT,
    ));
    if layout.capture {
        body.extend(input_terminal(
            entity::MICROPHONE,
            terminal::MICROPHONE,
            channels,
        ));
        body.extend(output_terminal(
            entity::CAPTURE_OUTPUT,
            terminal::USB_STREAMING,
            entity::MICROPHONE,
        ));
    }
    let total = (9 + body.len()) as u16; // a few hundred bytes at most
    let mut header = vec![0x00, 0x02, spec::CATEGORY_HEADSET]; // bcdADC 2.00, bCategory
    header.extend_from_slice(&total.to_le_bytes());
    header.push(0); // bmControls
    let mut all = cs(ac::HEADER, &header);
    all.extend(body);
    all
}

/// Interface `playback ? PLAYBACK : CAPTURE`: alt 0 without endpoints, then one per format.
fn streaming_alternates(
    mut builder: ConfigurationBuilder,
    profile: &AudioProfile,
    layout: &HeadsetLayout,
    playback: bool,
) -> ConfigurationBuilder {
    let number = if playback {
        interface::PLAYBACK
    } else {
        interface::CAPTURE
    };
    builder = builder.alternate(AlternateSetting {
        interface: streaming_interface(number, 0, spec::SUBCLASS_AUDIOSTREAMING),
        class_specific: vec![],
        endpoints: vec![],
    });
    let interval = HeadsetLayout::hs_binterval(profile.interval_uframes);
    for (i, format) in layout.formats.iter().enumerate() {
        let alternate = (i + 1) as u8; // formats ≤ 3
        let mut general = vec![if playback {
            entity::PLAYBACK_INPUT
        } else {
            entity::CAPTURE_OUTPUT
        }];
        general.extend_from_slice(&[0, spec::FORMAT_TYPE_I]); // bmControls, bFormatType
        general.extend_from_slice(&spec::UAC2_FORMAT_PCM.to_le_bytes());
        general.push(format.channels);
        general.extend_from_slice(&uac2_channel_config(format.channels).to_le_bytes());
        general.push(0); // iChannelNames
        let mut class_specific = cs(as_subtype::GENERAL, &general);
        class_specific.extend(cs(
            as_subtype::FORMAT_TYPE,
            &[
                spec::FORMAT_TYPE_I,
                format.subslot_bytes() as u8,
                format.bits,
            ],
        ));
        let usage = match (playback, profile.sync) {
            (false, PlaybackSync::ImplicitFeedback) => UsageType::ImplicitFeedbackData,
            _ => UsageType::Data,
        };
        let max_packet = profile.data_max_packet_size(*format);
        let data = EndpointEntry {
            descriptor: EndpointDescriptor {
                address: if playback {
                    endpoint::PLAYBACK
                } else {
                    endpoint::CAPTURE
                },
                attributes: endpoint_attributes(
                    TransferType::Isochronous,
                    SyncType::Asynchronous,
                    usage,
                ),
                max_packet_size: max_packet,
                interval,
                audio: None,
            },
            // CS AS isochronous data endpoint: no controls, no lock delay.
            class_specific: vec![8, spec::CS_ENDPOINT, spec::EP_GENERAL, 0, 0, 0, 0, 0],
        };
        let mut endpoints = vec![data];
        if playback && layout.feedback {
            endpoints.push(EndpointEntry {
                descriptor: EndpointDescriptor {
                    address: endpoint::FEEDBACK,
                    attributes: endpoint_attributes(
                        TransferType::Isochronous,
                        SyncType::None,
                        UsageType::Feedback,
                    ),
                    max_packet_size: 4,
                    interval: FEEDBACK_BINTERVAL,
                    audio: None,
                },
                class_specific: vec![],
            });
        }
        builder = builder.alternate(AlternateSetting {
            interface: streaming_interface(number, alternate, spec::SUBCLASS_AUDIOSTREAMING),
            class_specific,
            endpoints,
        });
    }
    builder
}
