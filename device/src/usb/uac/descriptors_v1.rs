//! The UAC1 full-speed headset's descriptors (USB Audio 1.0 §4): AudioControl with a header that
//! lists the streaming interfaces, adaptive playback, asynchronous capture, and a sampling
//! frequency control on each data endpoint.

use super::format::uac1_channel_config;
use super::layout::{endpoint, entity, interface, HeadsetLayout};
use super::profile::AudioProfile;
use super::spec::{self, ac, as_subtype, terminal};
use crate::usb::descriptor::{
    endpoint_attributes, ConfigurationAttributes, DeviceDescriptor, EndpointDescriptor,
    InterfaceDescriptor, SyncType, TransferType, UsageType,
};
use crate::usb::{
    AlternateSetting, ConfigError, ConfigurationBuilder, DeviceDescriptors, EndpointEntry,
    StringTable, UsbSpeed, LANGID_EN_US,
};

/// The descriptors of a UAC1 headset for `profile` (which must be a UAC1 profile).
pub fn uac1_descriptors(profile: &AudioProfile) -> Result<DeviceDescriptors, ConfigError> {
    let layout = HeadsetLayout::new(profile);
    let mut strings = StringTable::new(LANGID_EN_US);
    let manufacturer = strings.add("sideband");
    let product = strings.add("sideband UAC1 headset");
    let serial = strings.add("SB-UAC1-0001");
    let device = DeviceDescriptor {
        usb_version: 0x0110,
        class: 0,
        subclass: 0,
        protocol: 0,
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
    .alternate(AlternateSetting {
        interface: audio_interface(interface::CONTROL, 0, spec::SUBCLASS_AUDIOCONTROL),
        class_specific: control_descriptors(profile, &layout),
        endpoints: vec![],
    });
    builder = streaming_alternates(builder, profile, &layout, true);
    if layout.capture {
        builder = streaming_alternates(builder, profile, &layout, false);
    }
    builder = builder.alternate(layout.hid().alternate_setting(UsbSpeed::Full));
    Ok(DeviceDescriptors {
        device,
        configuration: builder.build()?,
        strings,
    })
}

fn audio_interface(number: u8, alternate: u8, subclass: u8) -> InterfaceDescriptor {
    InterfaceDescriptor {
        number,
        alternate,
        class: spec::AUDIO,
        subclass,
        protocol: spec::PROTOCOL_UAC1,
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
    b.extend_from_slice(&[0, channels]); // bAssocTerminal, bNrChannels
    b.extend_from_slice(&uac1_channel_config(channels).to_le_bytes());
    b.extend_from_slice(&[0, 0]); // iChannelNames, iTerminal
    cs(ac::INPUT_TERMINAL, &b)
}

fn output_terminal(id: u8, kind: u16, source: u8) -> Vec<u8> {
    let mut b = vec![id];
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&[0, source, 0]); // bAssocTerminal, bSourceID, iTerminal
    cs(ac::OUTPUT_TERMINAL, &b)
}

fn control_descriptors(profile: &AudioProfile, layout: &HeadsetLayout) -> Vec<u8> {
    let channels = profile.formats.first().map_or(2, |f| f.channels);
    let mut body = input_terminal(entity::PLAYBACK_INPUT, terminal::USB_STREAMING, channels);
    // Feature unit, bControlSize 1: master mute (D0) and volume (D1); no per-channel controls.
    let mut fu = vec![entity::FEATURE_UNIT, entity::PLAYBACK_INPUT, 1, 0x03];
    fu.extend(std::iter::repeat_n(0, usize::from(channels)));
    fu.push(0); // iFeature
    body.extend(cs(ac::FEATURE_UNIT, &fu));
    body.extend(output_terminal(
        entity::HEADPHONES,
        terminal::HEADPHONES,
        entity::FEATURE_UNIT,
    ));
    let mut collection = vec![interface::PLAYBACK];
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
        collection.push(interface::CAPTURE);
    }
    let header_len = 8 + collection.len();
    let total = (header_len + body.len()) as u16; // a few hundred bytes at most
    let mut header = vec![0x00, 0x01]; // bcdADC 1.00
    header.extend_from_slice(&total.to_le_bytes());
    header.push(collection.len() as u8); // bInCollection
    header.extend(collection);
    let mut all = cs(ac::HEADER, &header);
    all.extend(body);
    all
}

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
        interface: audio_interface(number, 0, spec::SUBCLASS_AUDIOSTREAMING),
        class_specific: vec![],
        endpoints: vec![],
    });
    for (i, format) in layout.formats.iter().enumerate() {
        let alternate = (i + 1) as u8; // formats ≤ 2
        let link = if playback {
            entity::PLAYBACK_INPUT
        } else {
            entity::CAPTURE_OUTPUT
        };
        let pcm = spec::UAC1_FORMAT_PCM.to_le_bytes();
        // bTerminalLink, bDelay (1 frame), wFormatTag.
        let mut class_specific = cs(as_subtype::GENERAL, &[link, 1, pcm[0], pcm[1]]);
        let mut ft = vec![
            spec::FORMAT_TYPE_I,
            format.channels,
            format.subslot_bytes() as u8,
            format.bits,
            profile.rates.len() as u8, // ≤ 7
        ];
        for rate in &profile.rates {
            ft.extend_from_slice(&rate.to_le_bytes()[..3]);
        }
        class_specific.extend(cs(as_subtype::FORMAT_TYPE, &ft));
        let sync = if playback {
            SyncType::Adaptive
        } else {
            SyncType::Asynchronous
        };
        let data = EndpointEntry {
            descriptor: EndpointDescriptor {
                address: if playback {
                    endpoint::PLAYBACK
                } else {
                    endpoint::CAPTURE
                },
                attributes: endpoint_attributes(TransferType::Isochronous, sync, UsageType::Data),
                max_packet_size: profile.data_max_packet_size(*format),
                interval: 1,
                audio: Some((0, 0)),
            },
            class_specific: vec![
                7,
                spec::CS_ENDPOINT,
                spec::EP_GENERAL,
                spec::UAC1_EP_SAMPLING_FREQ,
                0,
                0,
                0,
            ],
        };
        builder = builder.alternate(AlternateSetting {
            interface: audio_interface(number, alternate, spec::SUBCLASS_AUDIOSTREAMING),
            class_specific,
            endpoints: vec![data],
        });
    }
    builder
}
