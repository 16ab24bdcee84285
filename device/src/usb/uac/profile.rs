//! Headset profiles: the text a user writes (`uac2:rates=48000,96000:bits=16,24:ch=2`, or a
//! named profile such as `headset-uac2`, optionally followed by overrides) parsed into
//! [`AudioProfileArgs`], then validated into an [`AudioProfile`] by `TryFrom`.

use std::str::FromStr;

use thiserror::Error;

use super::clock::DeviceClock;
use super::format::AltFormat;
use crate::usb::descriptor::high_bandwidth_max_packet;

/// pid.codes' vendor id (open-source hardware); no entry in Linux's sound/usb quirk tables
/// (quirks.c, quirks-table.h, implicit.c, the quirk_flags table) or drivers/usb/core/quirks.c.
pub const VENDOR_ID: u16 = 0x1209;
/// pid.codes test product id used for the UAC2 headset.
pub const PRODUCT_ID_UAC2: u16 = 0x0001;
/// pid.codes test product id used for the UAC1 headset.
pub const PRODUCT_ID_UAC1: u16 = 0x0002;

/// Rates a UAC2 profile may offer.
pub const UAC2_RATES: [u32; 8] = [44100, 48000, 88200, 96000, 176400, 192000, 352800, 384000];
/// Rates a UAC1 profile may offer.
pub const UAC1_RATES: [u32; 7] = [8000, 16000, 32000, 44100, 48000, 88200, 96000];

/// The largest |ppm| accepted: far beyond any crystal, well inside Linux's feedback window.
pub const MAX_PPM: i32 = 10_000;

/// Bytes a high-speed isochronous endpoint moves per microframe (3 × 1024).
const HS_MAX_PAYLOAD: usize = 3072;
/// Bytes a full-speed isochronous endpoint moves per frame.
const FS_MAX_PAYLOAD: usize = 1023;

/// The audio class version, which also fixes the bus speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UacVersion {
    /// USB Audio 1.0 at full speed.
    Uac1,
    /// USB Audio 2.0 at high speed.
    Uac2,
}

/// How the playback endpoint is synchronised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaybackSync {
    /// UAC2: asynchronous, with an explicit feedback IN endpoint.
    ExplicitFeedback,
    /// UAC2: asynchronous; the capture endpoint is the host's implicit feedback source.
    ImplicitFeedback,
    /// UAC1: adaptive; the device follows the host's data rate.
    Adaptive,
}

/// Why a profile string or its values were rejected. Each variant names the field.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProfileError {
    /// The first element is not a class version or a named profile.
    #[error(
        "unknown profile `{0}`: expected uac1, uac2, headset-uac1, headset-uac2 or uac2-implicit"
    )]
    UnknownBase(String),
    /// An option that does not exist.
    #[error("unknown profile option `{0}`")]
    UnknownOption(String),
    /// A value that does not parse.
    #[error("{field}: `{value}` is not a valid value")]
    BadValue {
        /// The option.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// A list option with no elements.
    #[error("{field}: the list is empty")]
    Empty {
        /// The option.
        field: &'static str,
    },
    /// A rate the class version does not offer.
    #[error("rates: {rate} Hz is not supported by this class version")]
    UnsupportedRate {
        /// The rate.
        rate: u32,
    },
    /// A sample width other than 16, 24, 32 (UAC1: 16, 24).
    #[error("bits: {bits}-bit samples are not supported by this class version")]
    UnsupportedBits {
        /// The width.
        bits: u8,
    },
    /// Channels outside 1..=8.
    #[error("ch: {channels} channels is outside 1..=8")]
    Channels {
        /// The count.
        channels: u8,
    },
    /// A clock offset beyond ±[`MAX_PPM`].
    #[error("ppm: {ppm} is outside ±{MAX_PPM}")]
    Ppm {
        /// The offset.
        ppm: i32,
    },
    /// A data interval other than 1, 2, 4, 8 microframes (UAC2) or 8 (UAC1: one frame).
    #[error("interval: {uframes} microframes is not supported by this class version")]
    Interval {
        /// The interval.
        uframes: u32,
    },
    /// Implicit feedback needs UAC2 and a capture interface.
    #[error("sync: implicit feedback needs uac2 with capture")]
    ImplicitFeedback,
    /// The largest packet does not fit an isochronous endpoint.
    #[error("rates/bits/ch: {bytes} bytes per interval exceed the endpoint limit of {limit}")]
    PacketTooLarge {
        /// Bytes needed.
        bytes: usize,
        /// What the bus allows.
        limit: usize,
    },
}

/// A profile as written: a base and the options given, not yet checked against each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioProfileArgs {
    /// The class version.
    pub version: UacVersion,
    /// `rates=`.
    pub rates: Vec<u32>,
    /// `bits=`.
    pub bits: Vec<u8>,
    /// `ch=`.
    pub channels: u8,
    /// `implicit` / `explicit` (UAC2); UAC1 is always adaptive.
    pub implicit_feedback: bool,
    /// `ppm=`.
    pub ppm: i32,
    /// `interval=` in microframes.
    pub interval_uframes: u32,
    /// `capture=on|off` (`no-capture`).
    pub capture: bool,
}

impl AudioProfileArgs {
    /// The defaults of a base: a class version or a named profile.
    pub fn named(base: &str) -> Result<Self, ProfileError> {
        let uac2 = AudioProfileArgs {
            version: UacVersion::Uac2,
            rates: UAC2_RATES.to_vec(),
            bits: vec![16, 24, 32],
            channels: 2,
            implicit_feedback: false,
            ppm: 0,
            interval_uframes: 1,
            capture: true,
        };
        Ok(match base {
            "uac2" | "headset-uac2" => uac2,
            "uac2-implicit" => AudioProfileArgs {
                implicit_feedback: true,
                ..uac2
            },
            "uac1" | "headset-uac1" => AudioProfileArgs {
                version: UacVersion::Uac1,
                rates: vec![44100, 48000],
                bits: vec![16],
                interval_uframes: 8,
                ..uac2
            },
            _ => return Err(ProfileError::UnknownBase(base.to_owned())),
        })
    }

    fn apply(&mut self, option: &str) -> Result<(), ProfileError> {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        match key {
            "rates" => self.rates = parse_list("rates", value)?,
            "bits" => self.bits = parse_list("bits", value)?,
            "ch" => self.channels = parse_number("ch", value)?,
            "ppm" => self.ppm = parse_number("ppm", value.strip_prefix('+').unwrap_or(value))?,
            "interval" => self.interval_uframes = parse_number("interval", value)?,
            "implicit" if value.is_empty() => self.implicit_feedback = true,
            "explicit" if value.is_empty() => self.implicit_feedback = false,
            "no-capture" if value.is_empty() => self.capture = false,
            "capture" => {
                self.capture = match value {
                    "on" | "yes" | "1" => true,
                    "off" | "no" | "0" => false,
                    _ => return Err(bad("capture", value)),
                }
            }
            _ => return Err(ProfileError::UnknownOption(option.to_owned())),
        }
        Ok(())
    }
}

fn bad(field: &'static str, value: &str) -> ProfileError {
    ProfileError::BadValue {
        field,
        value: value.to_owned(),
    }
}

fn parse_number<T: FromStr>(field: &'static str, value: &str) -> Result<T, ProfileError> {
    value.trim().parse().map_err(|_| bad(field, value))
}

fn parse_list<T: FromStr>(field: &'static str, value: &str) -> Result<Vec<T>, ProfileError> {
    if value.trim().is_empty() {
        return Err(ProfileError::Empty { field });
    }
    value.split(',').map(|v| parse_number(field, v)).collect()
}

impl FromStr for AudioProfileArgs {
    type Err = ProfileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let mut args = AudioProfileArgs::named(parts.next().unwrap_or("").trim())?;
        for option in parts {
            args.apply(option.trim())?;
        }
        Ok(args)
    }
}

/// A validated headset description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioProfile {
    /// Class version (and speed).
    pub version: UacVersion,
    /// Offered rates, ascending, no duplicates.
    pub rates: Vec<u32>,
    /// One alternate setting per entry, in this order (alt 1 = first).
    pub formats: Vec<AltFormat>,
    /// Playback synchronisation.
    pub sync: PlaybackSync,
    /// The device clock's deviation from nominal.
    pub ppm: i32,
    /// Data endpoint service interval in microframes.
    pub interval_uframes: u32,
    /// Whether there is a capture interface.
    pub capture: bool,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
}

impl AudioProfile {
    /// The rate selected after reset: 48 kHz when offered, else the lowest.
    pub fn default_rate(&self) -> u32 {
        if self.rates.contains(&48000) {
            48000
        } else {
            self.rates.first().copied().unwrap_or(48000)
        }
    }

    /// The most frames one data packet can carry: one more than the fastest clock's ceiling.
    pub fn max_frames_per_packet(&self) -> u64 {
        let fastest = self.rates.last().copied().unwrap_or(0);
        let clock = DeviceClock {
            rate: fastest,
            ppm: self.ppm.max(0),
        };
        clock
            .frames_per_interval_bounds(u64::from(self.interval_uframes))
            .1
            + 1
    }

    /// The data endpoint payload (bytes per service interval) needed for `format`.
    pub fn max_payload(&self, format: AltFormat) -> usize {
        usize::try_from(self.max_frames_per_packet()).unwrap_or(usize::MAX) * format.frame_bytes()
    }

    /// wMaxPacketSize of the data endpoints for `format` (high-bandwidth encoded at high speed).
    pub fn data_max_packet_size(&self, format: AltFormat) -> u16 {
        let bytes = self.max_payload(format);
        match self.version {
            UacVersion::Uac2 => high_bandwidth_max_packet(bytes).unwrap_or(1024),
            UacVersion::Uac1 => u16::try_from(bytes).unwrap_or(1023),
        }
    }

    /// The data endpoint's service interval in microframes.
    pub fn interval(&self) -> u64 {
        u64::from(self.interval_uframes)
    }
}

impl TryFrom<AudioProfileArgs> for AudioProfile {
    type Error = ProfileError;

    fn try_from(a: AudioProfileArgs) -> Result<Self, Self::Error> {
        let (allowed_rates, allowed_bits, allowed_intervals, limit): (&[u32], &[u8], &[u32], _) =
            match a.version {
                UacVersion::Uac2 => (&UAC2_RATES, &[16, 24, 32], &[1, 2, 4, 8], HS_MAX_PAYLOAD),
                UacVersion::Uac1 => (&UAC1_RATES, &[16, 24], &[8], FS_MAX_PAYLOAD),
            };
        let mut rates = a.rates.clone();
        rates.sort_unstable();
        rates.dedup();
        if rates.is_empty() {
            return Err(ProfileError::Empty { field: "rates" });
        }
        if let Some(&rate) = rates.iter().find(|r| !allowed_rates.contains(r)) {
            return Err(ProfileError::UnsupportedRate { rate });
        }
        let mut bits: Vec<u8> = Vec::new();
        for b in &a.bits {
            if !bits.contains(b) {
                bits.push(*b);
            }
        }
        if bits.is_empty() {
            return Err(ProfileError::Empty { field: "bits" });
        }
        if let Some(&b) = bits.iter().find(|b| !allowed_bits.contains(b)) {
            return Err(ProfileError::UnsupportedBits { bits: b });
        }
        if !(1..=8).contains(&a.channels) {
            return Err(ProfileError::Channels {
                channels: a.channels,
            });
        }
        if a.ppm.unsigned_abs() > MAX_PPM.unsigned_abs() {
            return Err(ProfileError::Ppm { ppm: a.ppm });
        }
        if !allowed_intervals.contains(&a.interval_uframes) {
            return Err(ProfileError::Interval {
                uframes: a.interval_uframes,
            });
        }
        let sync = match (a.version, a.implicit_feedback) {
            (UacVersion::Uac2, false) => PlaybackSync::ExplicitFeedback,
            (UacVersion::Uac2, true) if a.capture => PlaybackSync::ImplicitFeedback,
            (UacVersion::Uac1, false) => PlaybackSync::Adaptive,
            _ => return Err(ProfileError::ImplicitFeedback),
        };
        let profile = AudioProfile {
            version: a.version,
            rates,
            formats: bits
                .iter()
                .map(|&bits| AltFormat {
                    bits,
                    channels: a.channels,
                })
                .collect(),
            sync,
            ppm: a.ppm,
            interval_uframes: a.interval_uframes,
            capture: a.capture,
            vendor_id: VENDOR_ID,
            product_id: match a.version {
                UacVersion::Uac2 => PRODUCT_ID_UAC2,
                UacVersion::Uac1 => PRODUCT_ID_UAC1,
            },
        };
        let bytes = profile
            .formats
            .iter()
            .map(|f| profile.max_payload(*f))
            .max()
            .unwrap_or(0);
        if bytes > limit {
            return Err(ProfileError::PacketTooLarge { bytes, limit });
        }
        Ok(profile)
    }
}

impl FromStr for AudioProfile {
    type Err = ProfileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AudioProfile::try_from(s.parse::<AudioProfileArgs>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_profiles_validate() {
        for name in [
            "headset-uac2",
            "headset-uac1",
            "uac2-implicit",
            "uac1",
            "uac2",
        ] {
            let p: AudioProfile = name.parse().unwrap();
            assert!(!p.formats.is_empty(), "{name}");
        }
    }

    #[test]
    fn overrides_apply_in_order() {
        let p: AudioProfile = "headset-uac2:ppm=+100:rates=96000,48000:bits=24:ch=1"
            .parse()
            .unwrap();
        assert_eq!(p.rates, vec![48000, 96000]);
        assert_eq!(p.ppm, 100);
        assert_eq!(
            p.formats,
            vec![AltFormat {
                bits: 24,
                channels: 1
            }]
        );
    }

    #[test]
    fn max_payload_covers_the_fastest_rate() {
        let p: AudioProfile = "uac2:rates=384000:bits=32:ch=2".parse().unwrap();
        assert_eq!(p.max_frames_per_packet(), 49);
        assert_eq!(p.max_payload(p.formats[0]), 392);
    }
}
