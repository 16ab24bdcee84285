//! Checks that a recording contains the counter pattern a guest or the DSP sent: little-endian
//! samples (2, 3 or 4 bytes) whose values count up by one, starting at 1 and wrapping at the
//! sample width. Silence around the pattern (drivers pad streams) is allowed; a gap, a repeat or a
//! changed sample inside it is not, nor is a pattern whose first samples never arrived (a run that
//! starts above 1: the 16-bit counter wraps, so a run can look as if it started at 1 later on).

/// Progress of the check over one recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterCheck {
    /// Bytes per sample.
    width: usize,
    /// Sample index (over everything fed) where the current run started.
    run_start: Option<u64>,
    /// The value the next sample must have while in a run.
    next: u32,
    /// Consecutive counter samples in the current run.
    run: u64,
    /// The longest run seen.
    pub longest: u64,
    /// Samples fed so far.
    pub samples: u64,
    /// The first break inside a run: (sample index, expected, got).
    pub first_break: Option<(u64, u32, u32)>,
    /// The first run that ended in silence: (sample index, samples in the run so far). Silence
    /// after the whole pattern is normal; inside it, it is a gap.
    pub first_silence: Option<(u64, u64)>,
    /// The first counter sample after silence, when it is not 1: (sample index, value). The
    /// samples before it were lost before they reached the headset.
    pub first_late_start: Option<(u64, u32)>,
    /// Whether the longest run started at 1.
    longest_from_one: bool,
    /// Whether the current run started at 1.
    run_from_one: bool,
    partial: Vec<u8>,
}

impl Default for CounterCheck {
    fn default() -> Self {
        CounterCheck::new(2)
    }
}

impl CounterCheck {
    /// A check of `width`-byte samples (2, 3 or 4; anything else is taken as 2).
    pub fn new(width: usize) -> Self {
        CounterCheck {
            width: if matches!(width, 2..=4) { width } else { 2 },
            run_start: None,
            next: 0,
            run: 0,
            longest: 0,
            samples: 0,
            first_break: None,
            first_silence: None,
            first_late_start: None,
            longest_from_one: false,
            run_from_one: false,
            partial: Vec::new(),
        }
    }

    fn wrap(&self, v: u32) -> u32 {
        if self.width == 4 {
            v
        } else {
            v & ((1 << (8 * self.width)) - 1)
        }
    }

    /// Feeds recorded bytes (little-endian samples of the check's width, any chunking).
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.partial.push(b);
            if self.partial.len() == self.width {
                let mut le = [0u8; 4];
                le[..self.width].copy_from_slice(&self.partial);
                self.partial.clear();
                self.sample(u32::from_le_bytes(le));
            }
        }
    }

    fn sample(&mut self, v: u32) {
        let index = self.samples;
        self.samples += 1;
        if self.run_start.is_some() {
            if v == self.next {
                self.extend_run(v);
                return;
            }
            if v != 0 && self.first_break.is_none() {
                self.first_break = Some((index, self.next, v));
            }
            if v == 0 && self.first_silence.is_none() {
                self.first_silence = Some((index, self.run));
            }
            self.run_start = None;
            self.run = 0;
        }
        if v != 0 {
            if v != 1 && self.first_break.is_none() && self.first_late_start.is_none() {
                self.first_late_start = Some((index, v));
            }
            self.run_start = Some(index);
            self.run = 0;
            self.run_from_one = v == 1;
            self.extend_run(v);
        }
    }

    fn extend_run(&mut self, v: u32) {
        self.run += 1;
        self.next = self.wrap(v.wrapping_add(1));
        if self.run > self.longest {
            self.longest = self.run;
            self.longest_from_one = self.run_from_one;
        }
    }

    /// Ok when a run of exactly `expected` counter samples was recorded without a break.
    pub fn verdict(&self, expected: u64) -> Result<String, String> {
        if let Some((at, want, got)) = self.first_break {
            return Err(format!(
                "the counter pattern broke at recorded sample {at}: expected {want}, got {got} (longest intact run {} of {expected})",
                self.longest
            ));
        }
        if let Some((at, value)) = self.first_late_start {
            return Err(format!(
                "the recording's pattern starts at counter value {value} (recorded sample {at}): the first {} sample(s) the guest sent never reached the headset (longest intact run {} of {expected})",
                value - 1,
                self.longest
            ));
        }
        if self.longest != expected || !self.longest_from_one {
            let gap = match self.first_silence {
                Some((at, run)) if run < expected => {
                    format!("; the first run stopped for silence at recorded sample {at} after {run} samples")
                }
                _ => String::new(),
            };
            return Err(format!(
                "recorded {} counter samples in a row, the guest sent {expected} ({} samples recorded in all){gap}",
                self.longest, self.samples
            ));
        }
        Ok(format!(
            "{expected} samples bit-exact ({} recorded in all, silence around them)",
            self.samples
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(values: impl IntoIterator<Item = u16>) -> Vec<u8> {
        values.into_iter().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn three_and_four_byte_samples_wrap_at_their_width() {
        let mut c = CounterCheck::new(3);
        let mut b: Vec<u8> = (1..=10u32)
            .flat_map(|v| v.to_le_bytes()[..3].to_vec())
            .collect();
        b.extend([0xff, 0xff, 0xff]);
        c.feed(&b[..7]);
        c.feed(&b[7..]);
        assert!(c.first_break.is_some(), "0xffffff does not follow 10");
        let mut c = CounterCheck::new(3);
        let start = 0xff_fffe_u32;
        let b: Vec<u8> = [1u32]
            .into_iter()
            .chain(2..5)
            .flat_map(|v| v.to_le_bytes()[..3].to_vec())
            .collect();
        c.feed(&b);
        assert_eq!(
            c.verdict(4),
            Ok("4 samples bit-exact (4 recorded in all, silence around them)".into())
        );
        assert_eq!(c.wrap(start + 2), 0, "24-bit values wrap to 0");
        let mut c = CounterCheck::new(4);
        c.feed(&[1, 0, 0, 0, 2, 0, 0, 0, 3, 0]);
        assert_eq!(c.longest, 2);
    }

    #[test]
    fn finds_the_pattern_inside_silence_across_odd_chunking() {
        let mut all = bytes([0, 0, 0]);
        all.extend(bytes((1..=70_000u32).map(|n| n as u16)));
        all.extend(bytes([0, 0]));
        let mut c = CounterCheck::default();
        for piece in all.chunks(333) {
            c.feed(piece);
        }
        assert_eq!(
            c.verdict(70_000),
            Ok("70000 samples bit-exact (70005 recorded in all, silence around them)".into())
        );
        assert!(c.verdict(70_001).is_err());
    }

    #[test]
    fn a_pattern_whose_first_packet_is_missing_is_named_not_mistaken_for_a_wrapped_run() {
        let mut all = bytes((97..=96_000u32).map(|n| n as u16));
        all.extend(bytes([0; 11_520]));
        let mut c = CounterCheck::default();
        c.feed(&all);
        let e = c.verdict(96_000).unwrap_err();
        assert!(
            e.contains("starts at counter value 97 (recorded sample 0): the first 96 sample(s)"),
            "{e}"
        );
    }

    #[test]
    fn a_dropped_or_changed_sample_is_a_break() {
        let mut c = CounterCheck::default();
        c.feed(&bytes([1, 2, 3, 5, 6]));
        let e = c.verdict(5).unwrap_err();
        assert!(
            e.contains("broke at recorded sample 3: expected 4, got 5"),
            "{e}"
        );
        let mut c = CounterCheck::default();
        c.feed(&bytes([1, 2, 3, 3]));
        assert!(c.verdict(3).is_err());
    }
}

/// Checks that captured samples count up by one (wrapping at the sample width) from whatever
/// value the first one has: the headset's counter source, as the DSP received it.
#[derive(Clone, Debug)]
pub struct Continuity {
    width: usize,
    prev: Option<u32>,
    /// Samples seen.
    pub samples: u64,
    /// The first break: (sample index, expected, got).
    pub first_break: Option<(u64, u32, u32)>,
    partial: Vec<u8>,
}

impl Continuity {
    /// A check of `width`-byte little-endian samples (2, 3 or 4).
    pub fn new(width: usize) -> Self {
        Continuity {
            width: width.clamp(2, 4),
            prev: None,
            samples: 0,
            first_break: None,
            partial: Vec::new(),
        }
    }

    /// Feeds bytes in any chunking.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mask = if self.width == 4 {
            u32::MAX
        } else {
            (1u32 << (8 * self.width)) - 1
        };
        for &b in bytes {
            self.partial.push(b);
            if self.partial.len() < self.width {
                continue;
            }
            let mut le = [0u8; 4];
            le[..self.width].copy_from_slice(&self.partial);
            self.partial.clear();
            let v = u32::from_le_bytes(le);
            if let Some(p) = self.prev {
                let want = p.wrapping_add(1) & mask;
                if v != want && self.first_break.is_none() {
                    self.first_break = Some((self.samples, want, v));
                }
            }
            self.prev = Some(v);
            self.samples += 1;
        }
    }
}

#[cfg(test)]
mod continuity_tests {
    use super::*;

    #[test]
    fn counts_from_any_start_and_finds_the_first_break() {
        let mut c = Continuity::new(2);
        c.feed(&[0xfe, 0xff, 0xff, 0xff, 0, 0, 1]);
        c.feed(&[0]);
        assert_eq!((c.samples, c.first_break), (4, None));
        c.feed(&[3, 0]);
        assert_eq!(c.first_break, Some((4, 2, 3)));
    }
}
