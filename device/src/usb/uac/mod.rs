//! The USB Audio Class headset: UAC2 at high speed (explicit or implicit feedback) and UAC1 at
//! full speed, built from an [`AudioProfile`].
//!
//! The backend builds a device with [`UacDevice::headset`], hands it to the xHCI as a
//! [`UsbDevice`](crate::usb::UsbDevice), and reaches the headset through
//! [`StandardDevice::function_mut`](crate::usb::StandardDevice::function_mut): drain or sink the
//! [`Recorder`], read [`PlaybackStats`] and [`CaptureStats`], set the capture [`Signal`].

mod clock;
mod controls;
mod descriptors_v1;
mod descriptors_v2;
mod format;
mod headset;
pub mod layout;
mod profile;
mod recorder;
mod source;
pub mod spec;

pub use clock::{DeviceClock, FeedbackGenerator};
pub use controls::{ControlState, VolumeRange, VOLUME_RANGE};
pub use format::{uac1_channel_config, uac2_channel_config, AltFormat, StreamFormat};
pub use headset::{CaptureStats, UacDevice, UacHeadset};
pub use profile::{AudioProfile, AudioProfileArgs, PlaybackSync, ProfileError, UacVersion};
pub use profile::{PRODUCT_ID_UAC1, PRODUCT_ID_UAC2, UAC1_RATES, UAC2_RATES, VENDOR_ID};
pub use recorder::{PlaybackStats, RecordSink, RecordedChunk, Recorder, RecorderLimits};
pub use recorder::{StreamEvent, StreamEventKind};
pub use source::{Signal, SignalSource};
