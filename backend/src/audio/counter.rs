//! Checks that a recording contains the counter pattern a guest sent: 16-bit little-endian
//! samples whose values count up by one (wrapping), starting at 1. Silence around the pattern
//! (the driver pads streams) is allowed; a gap, a repeat or a changed sample inside it is not.

/// Progress of the check over one recording.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterCheck {
    /// Sample index (over everything fed) where the current run started.
    run_start: Option<u64>,
    /// The value the next sample must have while in a run.
    next: u16,
    /// Consecutive counter samples in the current run.
    run: u64,
    /// The longest run seen.
    pub longest: u64,
    /// Samples fed so far.
    pub samples: u64,
    /// The first break inside a run: (sample index, expected, got).
    pub first_break: Option<(u64, u16, u16)>,
    odd_byte: Option<u8>,
}

impl CounterCheck {
    /// Feeds recorded bytes (16-bit little-endian samples, any chunking).
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        if let Some(lo) = self.odd_byte.take() {
            if let Some((&hi, r)) = rest.split_first() {
                self.sample(u16::from_le_bytes([lo, hi]));
                rest = r;
            } else {
                self.odd_byte = Some(lo);
                return;
            }
        }
        let mut pairs = rest.chunks_exact(2);
        for p in &mut pairs {
            self.sample(u16::from_le_bytes([p[0], p[1]]));
        }
        self.odd_byte = pairs.remainder().first().copied();
    }

    fn sample(&mut self, v: u16) {
        let index = self.samples;
        self.samples += 1;
        if self.run_start.is_some() {
            if v == self.next {
                self.run += 1;
                self.next = v.wrapping_add(1);
                self.longest = self.longest.max(self.run);
                return;
            }
            if v != 0 && self.first_break.is_none() {
                self.first_break = Some((index, self.next, v));
            }
            self.run_start = None;
            self.run = 0;
        }
        if v == 1 {
            self.run_start = Some(index);
            self.run = 1;
            self.next = 2;
            self.longest = self.longest.max(1);
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
        if self.longest != expected {
            return Err(format!(
                "recorded {} counter samples in a row, the guest sent {expected} ({} samples recorded in all)",
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
