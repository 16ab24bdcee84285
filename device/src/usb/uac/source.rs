//! The capture source: a configured signal rendered into packets in the stream's format.

use std::f64::consts::TAU;

use super::format::StreamFormat;

/// What the microphone "hears".
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    /// All zeros.
    Silence,
    /// The same sine on every channel.
    Sine {
        /// Frequency in Hz.
        frequency: f64,
        /// Peak as a fraction of full scale, 0..=1.
        amplitude: f64,
    },
    /// A linear sweep from `start` to `end` Hz over `seconds`, then again from `start`.
    Chirp {
        /// First frequency in Hz.
        start: f64,
        /// Last frequency in Hz.
        end: f64,
        /// Sweep duration in seconds.
        seconds: f64,
        /// Peak as a fraction of full scale, 0..=1.
        amplitude: f64,
    },
    /// Interleaved sample number n (counting every channel's sample) has the value n modulo
    /// 2^bits, as a two's complement integer of the stream's width: bit-exact checks are trivial.
    Counter,
    /// Interleaved samples from the backend, full-scale 32-bit (a narrower stream keeps the top
    /// bits), looped. Stream channel c plays supplied channel c modulo `channels`.
    Samples {
        /// Channels in `data`.
        channels: u8,
        /// Interleaved samples.
        data: Vec<i32>,
    },
}

/// Renders a [`Signal`]; its position advances only by what was actually sent, so a counter
/// stays continuous across packets and missed intervals.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalSource {
    signal: Signal,
    /// Frames rendered since the signal was set.
    position: u64,
}

impl SignalSource {
    /// A source at position 0.
    pub fn new(signal: Signal) -> Self {
        SignalSource {
            signal,
            position: 0,
        }
    }

    /// The signal.
    pub fn signal(&self) -> &Signal {
        &self.signal
    }

    /// Replaces the signal and restarts at position 0.
    pub fn set_signal(&mut self, signal: Signal) {
        *self = SignalSource::new(signal);
    }

    /// Frames rendered so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Restarts the signal at position 0 (a new capture stream).
    pub fn rewind(&mut self) {
        self.position = 0;
    }

    /// Writes `frames` frames of `format` to the start of `out` (which must hold them) and
    /// advances; returns the bytes written.
    pub fn render(&mut self, format: StreamFormat, frames: usize, out: &mut [u8]) -> usize {
        let width = usize::from(format.bits / 8);
        let channels = usize::from(format.channels);
        let frames = frames.min(out.len() / (width * channels).max(1));
        for f in 0..frames {
            let frame = self.position + f as u64;
            for c in 0..channels {
                let v = self.sample(format, frame, c);
                let at = (f * channels + c) * width;
                out[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            }
        }
        self.position += frames as u64;
        frames * width * channels
    }

    /// Sample value at `frame`, channel `c`, as an integer of `format.bits` bits in an i32
    /// (only the low `bits` bits are sent).
    fn sample(&self, format: StreamFormat, frame: u64, c: usize) -> i32 {
        let bits = u32::from(format.bits).clamp(8, 32);
        let full_scale = ((1i64 << (bits - 1)) - 1) as f64;
        let rate = f64::from(format.rate.max(1));
        let t = frame as f64 / rate;
        let analog = |a: f64, phase: f64| (a.clamp(0.0, 1.0) * full_scale * phase.sin()).round();
        match &self.signal {
            Signal::Silence => 0,
            Signal::Sine {
                frequency,
                amplitude,
            } => analog(*amplitude, TAU * frequency * t) as i32,
            Signal::Chirp {
                start,
                end,
                seconds,
                amplitude,
            } => {
                let period = seconds.max(1.0 / rate);
                let t = t % period;
                let phase = TAU * (start * t + (end - start) * t * t / (2.0 * period));
                analog(*amplitude, phase) as i32
            }
            Signal::Counter => {
                let n = frame * u64::from(format.channels) + c as u64;
                (n & ((1u64 << bits) - 1)) as u32 as i32
            }
            Signal::Samples { channels, data } => {
                let ch = usize::from((*channels).max(1));
                let frames = (data.len() / ch) as u64;
                if frames == 0 {
                    return 0;
                }
                let i = (frame % frames) as usize * ch + c % ch;
                data.get(i).map_or(0, |v| v >> (32 - bits))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(bits: u8) -> StreamFormat {
        StreamFormat {
            bits,
            channels: 2,
            rate: 48000,
        }
    }

    #[test]
    fn counter_continues_across_renders() {
        let mut s = SignalSource::new(Signal::Counter);
        let mut out = [0u8; 24];
        assert_eq!(s.render(fmt(24), 2, &mut out), 12);
        assert_eq!(s.render(fmt(24), 2, &mut out[12..]), 12);
        for n in 0..8u32 {
            let i = n as usize * 3;
            assert_eq!(u32::from_le_bytes([out[i], out[i + 1], out[i + 2], 0]), n);
        }
    }

    #[test]
    fn sine_peaks_at_amplitude() {
        let mut s = SignalSource::new(Signal::Sine {
            frequency: 12000.0,
            amplitude: 0.5,
        });
        let mut out = [0u8; 8];
        s.render(fmt(16), 2, &mut out);
        // Frame 1 is a quarter period in: sin = 1.
        assert_eq!(
            i16::from_le_bytes([out[4], out[5]]),
            (0.5f64 * 32767.0).round() as i16
        );
    }

    #[test]
    fn supplied_samples_keep_top_bits() {
        let mut s = SignalSource::new(Signal::Samples {
            channels: 1,
            data: vec![0x1234_5678],
        });
        let mut out = [0u8; 4];
        s.render(fmt(16), 1, &mut out);
        assert_eq!(out, [0x34, 0x12, 0x34, 0x12]);
    }
}
