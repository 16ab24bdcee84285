//! The DSP's AFE service (APR service 4) for its USB playback port (0x7000, USB_RX), as q6afe
//! drives it: SET_PARAM_V2 with the parameters in band (the device token, which is the QMI
//! `usb_token` card << 16 | pcm << 8, so the DSP learns the card as on hardware; the LPCM
//! format; the service interval; the USB configuration), then DEVICE_START and DEVICE_STOP.
//! A start is answered at once and reported as an [`AfeEvent`]; the backend asks the guest's
//! offload driver for the stream (QMI enable) after it, never before the answer, because the
//! guest holds its PCM and AFE locks while it waits.

use super::packet::{self, u16_at, u32_at, Header};
use crate::adsp::uaudio::{types::AudioFormat, Direction, StreamParams};

/// AFE_PORT_CMD_DEVICE_START.
pub const DEVICE_START: u32 = 0x0001_00E5;
/// AFE_PORT_CMD_DEVICE_STOP.
pub const DEVICE_STOP: u32 = 0x0001_00E6;
/// AFE_PORT_CMD_SET_PARAM_V2.
pub const SET_PARAM_V2: u32 = 0x0001_00EF;
/// AFE_MODULE_AUDIO_DEV_INTERFACE.
pub const MODULE_AUDIO_DEV_INTERFACE: u32 = 0x0001_020C;
/// The USB device token.
pub const PARAM_USB_DEV_PARAMS: u32 = 0x0001_02A5;
/// The USB LPCM format (endianness).
pub const PARAM_USB_LPCM_FMT: u32 = 0x0001_02AA;
/// The USB service interval.
pub const PARAM_USB_SVC_INTERVAL: u32 = 0x0001_02B7;
/// The USB port configuration.
pub const PARAM_USB_CONFIG: u32 = 0x0001_02A4;
/// AFE_PORT_ID_USB_RX.
pub const PORT_USB_RX: u16 = 0x7000;
/// Status: a bad parameter.
pub const EBADPARAM: u32 = 2;

/// The USB port's configuration at its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsbPort {
    /// The guest's USB sound card (from the device token).
    pub card: u8,
    /// Its PCM device.
    pub pcm: u8,
    /// Sample rate in Hz.
    pub rate: u32,
    /// Bits per sample.
    pub bits: u16,
    /// Channels.
    pub channels: u16,
    /// Service interval in microseconds (0: the device's own).
    pub service_interval_us: u32,
}

impl UsbPort {
    /// The QMI stream enable the DSP sends the guest's offload driver for this port: the card
    /// and PCM of the device token, the port's format (16 bits as S16_LE, 24 as the 3-byte
    /// S24_3LE USB devices carry, 32 as S32_LE), the guest's default transfer buffer. The
    /// service interval stays out of the request: 7.3's decoder writes past its buffer on TLV
    /// 0x14 (the findings issue), and the device's own interval is what the port asked for
    /// when it sent none.
    pub fn stream_params(&self) -> StreamParams {
        let audio_format = match self.bits {
            24 => AudioFormat::S24_3Le,
            32 => AudioFormat::S32Le,
            _ => AudioFormat::S16Le,
        };
        StreamParams {
            card: u16::from(self.card),
            pcm: self.pcm,
            direction: Direction::Playback,
            audio_format: audio_format as u32,
            channels: u32::from(self.channels),
            rate: self.rate,
            xfer_buff_size: 0,
            service_interval: None,
        }
    }
}

/// What the AFE asks of the rest of the DSP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfeEvent {
    /// Start streaming to the USB device.
    Start(UsbPort),
    /// Stop it.
    Stop,
}

/// The AFE's state for the USB port.
#[derive(Clone, Debug, Default)]
pub struct Afe {
    dev_token: Option<u32>,
    config: Option<(u32, u16, u16)>,
    service_interval: u32,
    started: bool,
}

impl Afe {
    /// Whether the USB port runs.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Answers one command; a start or stop of the USB port also comes back as an event.
    pub fn handle(&mut self, req: &Header, payload: &[u8]) -> (Vec<u8>, Option<AfeEvent>) {
        match req.opcode {
            SET_PARAM_V2 => (packet::basic(req, self.set_param(payload)), None),
            DEVICE_START => match (u16_at(payload, 0), self.usb_port()) {
                (Some(PORT_USB_RX), Some(port)) => {
                    let first = !self.started;
                    self.started = true;
                    let event = first.then_some(AfeEvent::Start(port));
                    (packet::basic(req, packet::EOK), event)
                }
                (Some(PORT_USB_RX), None) => {
                    log::warn!("AFE: USB port started before its token and configuration");
                    (packet::basic(req, EBADPARAM), None)
                }
                (port, _) => {
                    log::debug!("AFE: start of port {port:x?}, not modelled");
                    (packet::basic(req, packet::EUNSUPPORTED), None)
                }
            },
            DEVICE_STOP => match u16_at(payload, 0) {
                Some(PORT_USB_RX) => {
                    let event = std::mem::take(&mut self.started).then_some(AfeEvent::Stop);
                    (packet::basic(req, packet::EOK), event)
                }
                _ => (packet::basic(req, packet::EUNSUPPORTED), None),
            },
            _ => (packet::basic(req, packet::EUNSUPPORTED), None),
        }
    }

    fn usb_port(&self) -> Option<UsbPort> {
        let token = self.dev_token?;
        let (rate, bits, channels) = self.config?;
        Some(UsbPort {
            card: (token >> 16) as u8,
            pcm: (token >> 8) as u8,
            rate,
            bits,
            channels,
            service_interval_us: self.service_interval,
        })
    }

    /// {port, payload_size, address lsw, msw, map handle}{module, param, size, reserved} param:
    /// the parameter in band (a map handle of 0), for the USB port's interface module.
    fn set_param(&mut self, p: &[u8]) -> u32 {
        let fields = (|| {
            let port = u16_at(p, 0)?;
            let payload_size = u16_at(p, 2)? as usize;
            let handle = u32_at(p, 12)?;
            let module = u32_at(p, 16)?;
            let param = u32_at(p, 20)?;
            let size = u16_at(p, 24)? as usize;
            let data = p.get(28..28 + size)?;
            (payload_size == 12 + size && handle == 0).then_some((port, module, param, data))
        })();
        let Some((port, module, param, data)) = fields else {
            log::warn!("AFE: malformed SET_PARAM_V2 of {} byte(s)", p.len());
            return EBADPARAM;
        };
        if port != PORT_USB_RX || module != MODULE_AUDIO_DEV_INTERFACE {
            log::debug!(
                "AFE: parameter {param:#x} of module {module:#x} on port {port:#x}, not modelled"
            );
            return packet::EUNSUPPORTED;
        }
        let ok = match param {
            PARAM_USB_DEV_PARAMS => u32_at(data, 4).map(|t| self.dev_token = Some(t)),
            PARAM_USB_LPCM_FMT => u32_at(data, 4).map(|_| ()),
            PARAM_USB_SVC_INTERVAL => u32_at(data, 4).map(|si| self.service_interval = si),
            PARAM_USB_CONFIG => (|| {
                let rate = u32_at(data, 4)?;
                let bits = u16_at(data, 8)?;
                let channels = u16_at(data, 10)?;
                self.config = Some((rate, bits, channels));
                if let Some(si) = u32_at(data, 28) {
                    self.service_interval = si;
                }
                Some(())
            })(),
            _ => {
                log::debug!("AFE: USB parameter {param:#x}, not modelled");
                return packet::EUNSUPPORTED;
            }
        };
        match ok {
            Some(()) => packet::EOK,
            None => {
                log::warn!(
                    "AFE: USB parameter {param:#x} of {} byte(s) is too short",
                    data.len()
                );
                EBADPARAM
            }
        }
    }
}
