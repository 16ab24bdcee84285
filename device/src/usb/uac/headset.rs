//! The headset function: the class behaviour behind a [`StandardDevice`]. Playback packets go to
//! the [`Recorder`], capture packets come from the [`SignalSource`] at the pace of the device
//! clock, and the feedback endpoint reports that clock.

use log::debug;

use super::clock::{DeviceClock, FeedbackGenerator};
use super::controls::ControlState;
use super::descriptors_v1::uac1_descriptors;
use super::descriptors_v2::uac2_descriptors;
use super::format::StreamFormat;
use super::layout::{endpoint, interface, HeadsetLayout};
use super::profile::{AudioProfile, PlaybackSync, UacVersion};
use super::recorder::{Recorder, RecorderLimits};
use super::source::{Signal, SignalSource};
use crate::usb::descriptor::periodic_payload;
use crate::usb::hid::HidButtons;
use crate::usb::request::{Recipient, RequestKind, SetupFields};
use crate::usb::StandardDevice;
use crate::usb::{BusTime, ConfigError, SetupPacket, TransferResult, UsbFunction, UsbSpeed};

/// A USB audio headset device: the framework plus the headset function.
pub type UacDevice = StandardDevice<UacHeadset>;

/// Capture figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets sent.
    pub packets: u64,
    /// Frames sent.
    pub frames: u64,
    /// Packets cut short because the host's buffer was smaller than the clock's frames.
    pub truncated_packets: u64,
    /// The current stream's format.
    pub current_format: Option<StreamFormat>,
    /// Feedback values reported.
    pub feedback_reports: u64,
    /// The last feedback value, in the speed's fixed-point format.
    pub last_feedback: u32,
}

/// The audio class behaviour of the headset.
#[derive(Debug)]
pub struct UacHeadset {
    profile: AudioProfile,
    layout: HeadsetLayout,
    speed: UsbSpeed,
    controls: ControlState,
    playback_alt: u8,
    capture_alt: u8,
    feedback: FeedbackGenerator,
    recorder: Recorder,
    source: SignalSource,
    capture: CaptureStats,
    hid: HidButtons,
}

impl UacDevice {
    /// A headset device for `profile`, in the Default state, recording with default limits and
    /// capturing the counter pattern.
    pub fn headset(profile: AudioProfile) -> Result<Self, ConfigError> {
        Self::headset_with(profile, RecorderLimits::default())
    }

    /// As [`headset`](Self::headset), with explicit recorder limits.
    pub fn headset_with(
        profile: AudioProfile,
        limits: RecorderLimits,
    ) -> Result<Self, ConfigError> {
        let (speed, descriptors) = match profile.version {
            UacVersion::Uac2 => (UsbSpeed::High, uac2_descriptors(&profile)?),
            UacVersion::Uac1 => (UsbSpeed::Full, uac1_descriptors(&profile)?),
        };
        let function = UacHeadset::new(profile, speed, limits);
        Ok(StandardDevice::new(speed, descriptors, function))
    }
}

impl UacHeadset {
    fn new(profile: AudioProfile, speed: UsbSpeed, limits: RecorderLimits) -> Self {
        let rate = profile.default_rate();
        UacHeadset {
            layout: HeadsetLayout::new(&profile),
            hid: HeadsetLayout::new(&profile).hid(),
            controls: ControlState::new(profile.rates.clone(), rate),
            profile,
            speed,
            playback_alt: 0,
            capture_alt: 0,
            feedback: FeedbackGenerator::default(),
            recorder: Recorder::new(limits),
            source: SignalSource::new(Signal::Counter),
            capture: CaptureStats::default(),
        }
    }

    /// The profile the headset was built from.
    pub fn profile(&self) -> &AudioProfile {
        &self.profile
    }

    /// Rates, mute and volume as the host set them.
    pub fn controls(&self) -> &ControlState {
        &self.controls
    }

    /// The recorder (statistics, events).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The recorder, to drain chunks or attach a sink.
    pub fn recorder_mut(&mut self) -> &mut Recorder {
        &mut self.recorder
    }

    /// Capture figures.
    pub fn capture_stats(&self) -> &CaptureStats {
        &self.capture
    }

    /// The buttons (HID interface).
    pub fn buttons(&self) -> &HidButtons {
        &self.hid
    }

    /// The buttons, to queue presses.
    pub fn buttons_mut(&mut self) -> &mut HidButtons {
        &mut self.hid
    }

    /// The capture source.
    pub fn source(&self) -> &SignalSource {
        &self.source
    }

    /// Sets the capture signal (restarting it at position 0).
    pub fn set_signal(&mut self, signal: Signal) {
        self.source.set_signal(signal);
    }

    /// Changes the device clock's deviation from nominal (a running stream keeps its
    /// accounting reference until it restarts).
    pub fn set_ppm(&mut self, ppm: i32) {
        self.profile.ppm = ppm;
    }

    /// The device clock at the playback rate.
    pub fn playback_clock(&self) -> DeviceClock {
        DeviceClock {
            rate: self.controls.playback_rate,
            ppm: self.profile.ppm,
        }
    }

    /// The device clock at the capture rate.
    pub fn capture_clock(&self) -> DeviceClock {
        DeviceClock {
            rate: self.controls.capture_rate,
            ppm: self.profile.ppm,
        }
    }

    /// The clock playback packets are checked against: the device clock when the host follows
    /// feedback, the nominal rate when the device adapts to the host.
    fn playback_reference(&self) -> DeviceClock {
        match self.profile.sync {
            PlaybackSync::Adaptive => DeviceClock {
                rate: self.controls.playback_rate,
                ppm: 0,
            },
            PlaybackSync::ExplicitFeedback | PlaybackSync::ImplicitFeedback => {
                self.playback_clock()
            }
        }
    }

    fn start_playback(&mut self) {
        self.feedback.reset();
        match self.layout.format_of(self.playback_alt) {
            Some(f) => {
                let format = f.at(self.controls.playback_rate);
                let reference = self.playback_reference();
                self.recorder.start(
                    format,
                    self.playback_alt,
                    self.profile.interval(),
                    reference,
                );
            }
            None => self.recorder.stop(),
        }
    }

    fn start_capture(&mut self) {
        self.source.rewind();
        self.capture.current_format = self
            .layout
            .format_of(self.capture_alt)
            .map(|f| f.at(self.controls.capture_rate));
    }

    fn playback_packet(&mut self, data: &[u8], now: BusTime) -> TransferResult {
        let Some(format) = self.layout.format_of(self.playback_alt) else {
            return TransferResult::Stall;
        };
        let limit = periodic_payload(self.profile.data_max_packet_size(format));
        if data.len() > limit {
            debug!(
                "uac: playback packet of {} bytes exceeds {limit}",
                data.len()
            );
            self.recorder.oversize(now, data.len());
            return TransferResult::TransactionError;
        }
        self.recorder.packet(now, data);
        TransferResult::Complete(data.len())
    }

    fn capture_packet(&mut self, buf: &mut [u8], now: BusTime) -> TransferResult {
        let Some(format) = self.capture.current_format else {
            return TransferResult::Stall;
        };
        let due = self
            .capture_clock()
            .frames_in_interval(now, self.profile.interval());
        let max = self.profile.max_frames_per_packet();
        let fits = (buf.len() / format.frame_bytes().max(1)) as u64;
        let frames = due.min(max).min(fits);
        if frames < due.min(max) {
            self.capture.truncated_packets += 1;
        }
        let n = self.source.render(format, frames as usize, buf); // ≤ buf.len() / frame
        self.capture.packets += 1;
        self.capture.frames += frames;
        TransferResult::Complete(n)
    }

    fn feedback_packet(&mut self, buf: &mut [u8]) -> TransferResult {
        let mut value = [0u8; 4];
        let len = self
            .feedback
            .next_bytes(self.playback_clock(), self.speed, &mut value);
        self.capture.feedback_reports += 1;
        self.capture.last_feedback = u32::from_le_bytes(value);
        let n = len.min(buf.len());
        buf[..n].copy_from_slice(&value[..n]);
        TransferResult::Complete(n)
    }
}

impl UsbFunction for UacHeadset {
    fn class_request(
        &mut self,
        setup: SetupPacket,
        data: &mut [u8],
        _now: BusTime,
    ) -> TransferResult {
        if setup.recipient() == Recipient::Interface && setup.index_low() == self.hid.interface() {
            return self.hid.class_request(setup, data);
        }
        if setup.kind() != RequestKind::Class {
            debug!("uac: vendor request {setup:?}: STALL");
            return TransferResult::Stall;
        }
        let before = (self.controls.playback_rate, self.controls.capture_rate);
        let result = match self.profile.version {
            UacVersion::Uac2 => self.controls.uac2_request(setup, data),
            UacVersion::Uac1 => self.controls.uac1_request(setup, data, self.layout.capture),
        };
        if before.0 != self.controls.playback_rate && self.playback_alt != 0 {
            self.start_playback();
        }
        if before.1 != self.controls.capture_rate && self.capture_alt != 0 {
            self.start_capture();
        }
        match result {
            Ok(n) => TransferResult::Complete(n),
            Err(_) => TransferResult::Stall,
        }
    }

    fn alternate_changed(&mut self, number: u8, alternate: u8, _now: BusTime) {
        debug!("uac: interface {number} alternate setting {alternate}");
        match number {
            interface::PLAYBACK => {
                self.playback_alt = alternate;
                self.start_playback();
            }
            interface::CAPTURE if self.layout.capture => {
                self.capture_alt = alternate;
                self.start_capture();
            }
            _ => {}
        }
    }

    fn deconfigured(&mut self) {
        self.playback_alt = 0;
        self.capture_alt = 0;
        self.recorder.stop();
        self.capture.current_format = None;
        self.hid.deconfigured();
    }

    fn data_out(&mut self, ep: u8, data: &[u8], now: BusTime) -> TransferResult {
        match ep {
            n if n == endpoint::PLAYBACK => self.playback_packet(data, now),
            _ => TransferResult::Stall,
        }
    }

    fn data_in(&mut self, ep: u8, buf: &mut [u8], now: BusTime) -> TransferResult {
        match ep | 0x80 {
            endpoint::CAPTURE => self.capture_packet(buf, now),
            endpoint::FEEDBACK if self.layout.feedback => self.feedback_packet(buf),
            endpoint::HID => self.hid.data_in(buf),
            _ => TransferResult::Stall,
        }
    }

    fn interface_descriptor(&self, interface: u8, kind: u8, index: u8) -> Option<Vec<u8>> {
        if interface != self.hid.interface() {
            return None;
        }
        self.hid.class_descriptor(kind, index)
    }
}
