//! Finds the first gap or glitch in a recorded stream: for the counter pattern the tests send,
//! the first sample that does not count up (a lost packet, silence inside the pattern, a repeat);
//! for any other audio, the first stretch of digital silence (at least a millisecond) between
//! sound, or the first jump of more than a full scale between two samples.

/// A gap or glitch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Glitch {
    /// Frame where it starts.
    pub frame: usize,
    /// What it is.
    pub kind: GlitchKind,
}

/// The kinds of glitch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlitchKind {
    /// The counter pattern broke (a sample missing, repeated or changed).
    CounterBreak,
    /// Silence between sound.
    Silence,
    /// A jump of more than full scale between two samples.
    Jump,
}

impl std::fmt::Display for GlitchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GlitchKind::CounterBreak => "counter break",
            GlitchKind::Silence => "silence",
            GlitchKind::Jump => "jump",
        })
    }
}

/// Decoded samples of one stream: interleaved, as signed integers of `bits` bits.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// Interleaved samples.
    pub data: Vec<i32>,
    /// Channels per frame (≥ 1).
    pub channels: usize,
    /// Bits per sample.
    pub bits: u32,
    /// Frames per second.
    pub rate: u32,
}

impl Samples {
    /// Decodes little-endian PCM of 8 (unsigned), 16, 24 or 32 bits.
    pub fn decode(bytes: &[u8], bits: u32, channels: usize, rate: u32) -> Self {
        let width = (bits as usize / 8).clamp(1, 4);
        let data = bytes
            .chunks_exact(width)
            .map(|c| match width {
                1 => i32::from(c[0]) - 128,
                2 => i32::from(i16::from_le_bytes([c[0], c[1]])),
                3 => i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8,
                _ => i32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            })
            .collect();
        Samples {
            data,
            channels: channels.max(1),
            bits: (width * 8) as u32,
            rate,
        }
    }

    /// Whole frames.
    pub fn frames(&self) -> usize {
        self.data.len() / self.channels
    }

    /// Sample `i` of channel 0 scaled to -1..1.
    pub fn value(&self, frame: usize) -> f64 {
        let full = f64::from(1u32 << (self.bits - 1).min(31));
        self.data
            .get(frame * self.channels)
            .map_or(0.0, |&v| f64::from(v) / full)
    }

    /// Frame `f` is digital silence on every channel.
    fn silent(&self, f: usize) -> bool {
        self.data[f * self.channels..(f + 1) * self.channels]
            .iter()
            .all(|&v| v == 0)
    }
}

/// The counter pattern: little-endian samples 1, 2, 3, ... as unsigned values of the width.
fn is_counter(s: &Samples) -> Option<(usize, usize)> {
    let first = s.data.iter().position(|&v| v != 0)?;
    let last = s.data.iter().rposition(|&v| v != 0)?;
    let mask = counter_mask(s.bits);
    let check = (last - first).min(64);
    let ok = (first..first + check)
        .all(|i| (s.data[i + 1] as u32 & mask) == ((s.data[i] as u32).wrapping_add(1) & mask));
    (check >= 16 && ok).then_some((first, last))
}

fn counter_mask(bits: u32) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1 << bits) - 1
    }
}

/// The first gap or glitch in `s`, if any.
pub fn first_glitch(s: &Samples) -> Option<Glitch> {
    if s.frames() < 2 {
        return None;
    }
    if let Some((first, last)) = is_counter(s) {
        let mask = counter_mask(s.bits);
        return (first..last)
            .find(|&i| (s.data[i + 1] as u32 & mask) != ((s.data[i] as u32).wrapping_add(1) & mask))
            .map(|i| Glitch {
                frame: (i + 1) / s.channels,
                kind: GlitchKind::CounterBreak,
            });
    }
    let min_gap = (s.rate as usize / 1000).max(8);
    let frames = s.frames();
    let first_sound = (0..frames).find(|&f| !s.silent(f))?;
    let mut f = first_sound;
    while f < frames {
        if s.silent(f) {
            let end = (f..frames).find(|&g| !s.silent(g))?;
            if end - f >= min_gap {
                return Some(Glitch {
                    frame: f,
                    kind: GlitchKind::Silence,
                });
            }
            f = end;
            continue;
        }
        if f > first_sound && (s.value(f) - s.value(f - 1)).abs() > 1.0 {
            return Some(Glitch {
                frame: f,
                kind: GlitchKind::Jump,
            });
        }
        f += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(frames: usize, channels: usize) -> Vec<i32> {
        (1..=frames * channels)
            .map(|v| (v as u32 & 0xffff) as u16 as i16 as i32)
            .collect()
    }

    #[test]
    fn a_hole_in_the_counter_pattern_is_found_where_it_starts() {
        let mut data = vec![0; 100];
        data.extend(counter(100_000, 2));
        data.extend(vec![0; 100]);
        let clean = Samples {
            data: data.clone(),
            channels: 2,
            bits: 16,
            rate: 48000,
        };
        assert_eq!(
            first_glitch(&clean),
            None,
            "wraps and silence around it are fine"
        );
        // A lost packet: 6 frames (12 samples) missing at frame 50 + 30000.
        data.drain(100 + 60_000..100 + 60_012);
        let lost = Samples {
            data,
            channels: 2,
            bits: 16,
            rate: 48000,
        };
        assert_eq!(
            first_glitch(&lost),
            Some(Glitch {
                frame: 30_050,
                kind: GlitchKind::CounterBreak
            })
        );
    }

    #[test]
    fn silence_inside_music_is_a_gap() {
        let tone: Vec<i32> = (0..48_000)
            .map(|i| ((i as f64 * 0.06).sin() * 10_000.0) as i32)
            .map(|v| if v == 0 { 1 } else { v })
            .collect();
        let mut s = Samples {
            data: tone,
            channels: 1,
            bits: 16,
            rate: 48000,
        };
        assert_eq!(first_glitch(&s), None);
        for v in &mut s.data[20_000..20_480] {
            *v = 0;
        }
        assert_eq!(
            first_glitch(&s),
            Some(Glitch {
                frame: 20_000,
                kind: GlitchKind::Silence
            })
        );
        s.data[10_000] = -32768;
        s.data[10_001] = 32767;
        assert_eq!(first_glitch(&s).unwrap().kind, GlitchKind::Jump);
    }

    #[test]
    fn decodes_every_width() {
        let s = Samples::decode(&[0xff, 0x7f, 0x00, 0x80], 16, 1, 8000);
        assert_eq!(s.data, vec![32767, -32768]);
        let s = Samples::decode(&[0x00, 0x00, 0x80], 24, 1, 8000);
        assert_eq!(s.data, vec![-(1 << 23)]);
        assert!((s.value(0) + 1.0).abs() < 1e-9);
    }
}
