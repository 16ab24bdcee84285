//! PCM stream formats: sample width, channel count, rate, and the bytes they occupy.

/// One alternate setting's PCM layout (the rate is chosen separately, by the clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AltFormat {
    /// Valid bits per sample: 16, 24 or 32. The subslot is exactly `bits / 8` bytes.
    pub bits: u8,
    /// Interleaved channels, 1..=8.
    pub channels: u8,
}

impl AltFormat {
    /// Bytes per sample (bSubslotSize / bSubframeSize).
    pub fn subslot_bytes(self) -> usize {
        usize::from(self.bits / 8)
    }

    /// Bytes per frame (one sample of every channel).
    pub fn frame_bytes(self) -> usize {
        self.subslot_bytes() * usize::from(self.channels)
    }

    /// This layout at `rate` Hz.
    pub fn at(self, rate: u32) -> StreamFormat {
        StreamFormat {
            bits: self.bits,
            channels: self.channels,
            rate,
        }
    }
}

/// A running stream's format: what a WAV header needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamFormat {
    /// Valid bits per sample, equal to the container width (16, 24 or 32).
    pub bits: u8,
    /// Interleaved channels.
    pub channels: u8,
    /// Frames per second.
    pub rate: u32,
}

impl StreamFormat {
    /// The layout without the rate.
    pub fn layout(self) -> AltFormat {
        AltFormat {
            bits: self.bits,
            channels: self.channels,
        }
    }

    /// Bytes per frame.
    pub fn frame_bytes(self) -> usize {
        self.layout().frame_bytes()
    }
}

/// UAC2 bmChannelConfig (spatial locations, UAC2 §4.1) for the usual layouts of 1..=8 channels:
/// mono FC; stereo FL FR; then FC, BL/BR, LFE and SL/SR as in 3.0, 4.0, 5.0, 5.1, 6.1, 7.1.
pub fn uac2_channel_config(channels: u8) -> u32 {
    const FL: u32 = 1 << 0;
    const FR: u32 = 1 << 1;
    const FC: u32 = 1 << 2;
    const LFE: u32 = 1 << 3;
    const BL: u32 = 1 << 4;
    const BR: u32 = 1 << 5;
    const BC: u32 = 1 << 8;
    const SL: u32 = 1 << 9;
    const SR: u32 = 1 << 10;
    match channels {
        1 => FC,
        2 => FL | FR,
        3 => FL | FR | FC,
        4 => FL | FR | BL | BR,
        5 => FL | FR | FC | BL | BR,
        6 => FL | FR | FC | LFE | BL | BR,
        7 => FL | FR | FC | LFE | BL | BR | BC,
        _ => FL | FR | FC | LFE | BL | BR | SL | SR,
    }
}

/// UAC1 wChannelConfig (UAC1 §3.7.2.3, a different bit order from UAC2): mono C, stereo L R,
/// more channels add C, LFE, Ls/Rs, S, Sl/Sr like [`uac2_channel_config`].
pub fn uac1_channel_config(channels: u8) -> u16 {
    const L: u16 = 1 << 0;
    const R: u16 = 1 << 1;
    const C: u16 = 1 << 2;
    const LFE: u16 = 1 << 3;
    const LS: u16 = 1 << 4;
    const RS: u16 = 1 << 5;
    const S: u16 = 1 << 8;
    const SL: u16 = 1 << 9;
    const SR: u16 = 1 << 10;
    match channels {
        1 => C,
        2 => L | R,
        3 => L | R | C,
        4 => L | R | LS | RS,
        5 => L | R | C | LS | RS,
        6 => L | R | C | LFE | LS | RS,
        7 => L | R | C | LFE | LS | RS | S,
        _ => L | R | C | LFE | LS | RS | SL | SR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_configs_have_one_bit_per_channel() {
        for ch in 1..=8u8 {
            assert_eq!(uac2_channel_config(ch).count_ones(), u32::from(ch));
            assert_eq!(uac1_channel_config(ch).count_ones(), u32::from(ch));
        }
    }

    #[test]
    fn frame_sizes() {
        let f = AltFormat {
            bits: 24,
            channels: 2,
        };
        assert_eq!(f.subslot_bytes(), 3);
        assert_eq!(f.frame_bytes(), 6);
        assert_eq!(f.at(96000).frame_bytes(), 6);
    }
}
