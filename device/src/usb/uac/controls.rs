//! The headset's control state (sample rates, master mute and volume) and the class requests
//! that read and change it, for both class versions.

use log::debug;

use super::layout::{endpoint, entity, interface};
use super::spec::UAC1_SAMPLING_FREQ_CONTROL;
use super::spec::{clock_control, feature_control, uac1_request, uac2_request};
use crate::usb::request::{exact_out_data, reply, Recipient, SetupFields};
use crate::usb::SetupPacket;

/// Volume limits in 1/256 dB, as the feature unit reports them (RANGE, GET_MIN/MAX/RES).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeRange {
    /// Lowest setting.
    pub min: i16,
    /// Highest setting.
    pub max: i16,
    /// Step.
    pub res: i16,
}

/// −64 dB to 0 dB in 1 dB steps.
pub const VOLUME_RANGE: VolumeRange = VolumeRange {
    min: -64 * 256,
    max: 0,
    res: 256,
};

/// What the host has set through class requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlState {
    /// Rates the device offers, ascending.
    pub rates: Vec<u32>,
    /// The playback rate (UAC2: the clock source's rate, shared with capture).
    pub playback_rate: u32,
    /// The capture rate (UAC1 sets it on the capture endpoint; UAC2 equals `playback_rate`).
    pub capture_rate: u32,
    /// Master mute.
    pub mute: bool,
    /// Master volume in 1/256 dB.
    pub volume: i16,
}

/// A request the device refuses; the caller answers STALL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

type Reply = Result<usize, Refused>;

fn refuse(setup: SetupPacket, why: &str) -> Reply {
    debug!("uac: class request {setup:?}: {why}: STALL");
    Err(Refused)
}

impl ControlState {
    /// The state after reset: `rate` selected, unmuted, 0 dB.
    pub fn new(rates: Vec<u32>, rate: u32) -> Self {
        ControlState {
            rates,
            playback_rate: rate,
            capture_rate: rate,
            mute: false,
            volume: 0,
        }
    }

    fn set_mute(&mut self, setup: SetupPacket, data: &[u8]) -> Reply {
        match exact_out_data(setup, data, 1) {
            Some([v @ (0 | 1)]) => {
                self.mute = *v == 1;
                Ok(0)
            }
            _ => refuse(setup, "mute takes one byte, 0 or 1"),
        }
    }

    fn set_volume(&mut self, setup: SetupPacket, data: &[u8]) -> Reply {
        let Some(&[lo, hi]) = exact_out_data(setup, data, 2) else {
            return refuse(setup, "volume takes two bytes");
        };
        let v = i16::from_le_bytes([lo, hi]);
        if !(VOLUME_RANGE.min..=VOLUME_RANGE.max).contains(&v) {
            return refuse(setup, "volume out of range");
        }
        self.volume = v;
        Ok(0)
    }

    /// Handles a UAC2 class request addressed to the AudioControl interface.
    pub fn uac2_request(&mut self, setup: SetupPacket, data: &mut [u8]) -> Reply {
        if setup.recipient() != Recipient::Interface || setup.index_low() != interface::CONTROL {
            return refuse(setup, "not addressed to the AudioControl interface");
        }
        let get = setup.is_device_to_host();
        let (selector, channel) = (setup.value_high(), setup.value_low());
        if channel != 0 {
            return refuse(setup, "only the master channel has controls");
        }
        let want = usize::from(setup.length);
        match (setup.index_high(), selector, setup.request, get) {
            (entity::CLOCK, clock_control::SAM_FREQ, uac2_request::CUR, true) if want == 4 => {
                Ok(reply(setup, data, &self.playback_rate.to_le_bytes()))
            }
            (entity::CLOCK, clock_control::SAM_FREQ, uac2_request::CUR, false) => {
                let Some(&[a, b, c, d]) = exact_out_data(setup, data, 4) else {
                    return refuse(setup, "sampling frequency takes four bytes");
                };
                let rate = u32::from_le_bytes([a, b, c, d]);
                if !self.rates.contains(&rate) {
                    return refuse(setup, "unsupported sampling frequency");
                }
                self.playback_rate = rate;
                self.capture_rate = rate;
                Ok(0)
            }
            (entity::CLOCK, clock_control::SAM_FREQ, uac2_request::RANGE, true) if want >= 2 => {
                // Layout 3: wNumSubRanges, then (dMIN, dMAX, dRES) per discrete rate.
                let mut block = (self.rates.len() as u16).to_le_bytes().to_vec(); // ≤ 8 rates
                for r in &self.rates {
                    block.extend_from_slice(&r.to_le_bytes());
                    block.extend_from_slice(&r.to_le_bytes());
                    block.extend_from_slice(&0u32.to_le_bytes());
                }
                Ok(reply(setup, data, &block))
            }
            (entity::CLOCK, clock_control::CLOCK_VALID, uac2_request::CUR, true) if want == 1 => {
                Ok(reply(setup, data, &[1]))
            }
            (entity::FEATURE_UNIT, feature_control::MUTE, uac2_request::CUR, true) if want == 1 => {
                Ok(reply(setup, data, &[u8::from(self.mute)]))
            }
            (entity::FEATURE_UNIT, feature_control::MUTE, uac2_request::CUR, false) => {
                self.set_mute(setup, data)
            }
            (entity::FEATURE_UNIT, feature_control::VOLUME, uac2_request::CUR, true)
                if want == 2 =>
            {
                Ok(reply(setup, data, &self.volume.to_le_bytes()))
            }
            (entity::FEATURE_UNIT, feature_control::VOLUME, uac2_request::CUR, false) => {
                self.set_volume(setup, data)
            }
            (entity::FEATURE_UNIT, feature_control::VOLUME, uac2_request::RANGE, true)
                if want >= 2 =>
            {
                // Layout 2: wNumSubRanges = 1, then wMIN, wMAX, wRES.
                let mut block = 1u16.to_le_bytes().to_vec();
                for v in [VOLUME_RANGE.min, VOLUME_RANGE.max, VOLUME_RANGE.res] {
                    block.extend_from_slice(&v.to_le_bytes());
                }
                Ok(reply(setup, data, &block))
            }
            _ => refuse(setup, "unsupported entity, control, request or length"),
        }
    }

    /// Handles a UAC1 class request: feature unit controls on the AudioControl interface, and
    /// the sampling frequency control of a data endpoint.
    pub fn uac1_request(&mut self, setup: SetupPacket, data: &mut [u8], capture: bool) -> Reply {
        let get = setup.is_device_to_host();
        if get != (setup.request & 0x80 != 0) {
            return refuse(setup, "request code and direction disagree");
        }
        let want = usize::from(setup.length);
        match setup.recipient() {
            Recipient::Endpoint => self.uac1_endpoint_request(setup, data, capture, want),
            Recipient::Interface if setup.index_low() == interface::CONTROL => {
                if setup.index_high() != entity::FEATURE_UNIT || setup.value_low() != 0 {
                    return refuse(setup, "only the feature unit's master channel has controls");
                }
                let range = VOLUME_RANGE;
                match (setup.value_high(), setup.request) {
                    (feature_control::MUTE, uac1_request::GET_CUR) if want == 1 => {
                        Ok(reply(setup, data, &[u8::from(self.mute)]))
                    }
                    (feature_control::MUTE, uac1_request::SET_CUR) => self.set_mute(setup, data),
                    (feature_control::VOLUME, uac1_request::SET_CUR) => {
                        self.set_volume(setup, data)
                    }
                    (feature_control::VOLUME, r) if want == 2 => {
                        let v = match r {
                            uac1_request::GET_CUR => self.volume,
                            uac1_request::GET_MIN => range.min,
                            uac1_request::GET_MAX => range.max,
                            uac1_request::GET_RES => range.res,
                            _ => return refuse(setup, "unsupported volume request"),
                        };
                        Ok(reply(setup, data, &v.to_le_bytes()))
                    }
                    _ => refuse(setup, "unsupported feature unit request"),
                }
            }
            _ => refuse(
                setup,
                "not addressed to the AudioControl interface or an endpoint",
            ),
        }
    }

    fn uac1_endpoint_request(
        &mut self,
        setup: SetupPacket,
        data: &mut [u8],
        capture: bool,
        want: usize,
    ) -> Reply {
        let target = match setup.index {
            i if i == u16::from(endpoint::PLAYBACK) => &mut self.playback_rate,
            i if capture && i == u16::from(endpoint::CAPTURE) => &mut self.capture_rate,
            _ => return refuse(setup, "no sampling frequency control on this endpoint"),
        };
        if setup.value != u16::from(UAC1_SAMPLING_FREQ_CONTROL) << 8 {
            return refuse(setup, "unsupported endpoint control");
        }
        match setup.request {
            uac1_request::GET_CUR if want == 3 => {
                Ok(reply(setup, data, &target.to_le_bytes()[..3]))
            }
            uac1_request::SET_CUR => {
                let Some(&[a, b, c]) = exact_out_data(setup, data, 3) else {
                    return refuse(setup, "sampling frequency takes three bytes");
                };
                let rate = u32::from_le_bytes([a, b, c, 0]);
                if !self.rates.contains(&rate) {
                    return refuse(setup, "unsupported sampling frequency");
                }
                *target = rate;
                Ok(0)
            }
            _ => refuse(setup, "unsupported sampling frequency request"),
        }
    }
}
