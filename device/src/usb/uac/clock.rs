//! The device's own sample clock: a nominal rate off by a few parts per million, counted against
//! bus time. Capture packet sizes, the feedback value and the playback checks all derive from it.

use crate::usb::{BusTime, UsbSpeed};

const MICROFRAMES_PER_SECOND: u128 = 8000;
const PPM: u128 = 1_000_000;

/// A sample clock running at `rate × (1 + ppm / 10⁶)` frames per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceClock {
    /// The nominal rate in Hz.
    pub rate: u32,
    /// The deviation from nominal in parts per million.
    pub ppm: i32,
}

impl DeviceClock {
    /// Frames per second scaled by 10⁶ (the actual rate in µHz).
    fn rate_micro_hz(self) -> u128 {
        let scale = (PPM as i128 + i128::from(self.ppm)).max(0) as u128;
        u128::from(self.rate) * scale
    }

    /// Frames the clock has produced from bus time 0 to `t`.
    pub fn frames_at(self, t: BusTime) -> u64 {
        let frames = u128::from(t.0) * self.rate_micro_hz() / (MICROFRAMES_PER_SECOND * PPM);
        u64::try_from(frames).unwrap_or(u64::MAX)
    }

    /// Frames produced in the `interval` microframes that end at `end`.
    pub fn frames_in_interval(self, end: BusTime, interval: u64) -> u64 {
        let start = BusTime(end.0.saturating_sub(interval));
        self.frames_at(end) - self.frames_at(start)
    }

    /// The fewest and most frames an interval of `interval` microframes can hold at this rate
    /// (the floor and ceiling of the exact count).
    pub fn frames_per_interval_bounds(self, interval: u64) -> (u64, u64) {
        let num = self.rate_micro_hz() * u128::from(interval);
        let den = MICROFRAMES_PER_SECOND * PPM;
        let lo = u64::try_from(num / den).unwrap_or(u64::MAX);
        let hi = u64::try_from(num.div_ceil(den)).unwrap_or(u64::MAX);
        (lo, hi)
    }
}

/// Produces the feedback endpoint's value (USB 2.0 §5.12.4.2): the clock's rate in frames per
/// microframe as 16.16 in 4 bytes at high speed, per 1 ms frame as 10.14 in 3 bytes at full
/// speed. The exact rate rarely fits the format, so the remainder is carried from one report to
/// the next: each value is the floor or the ceiling, and their average converges on the rate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedbackGenerator {
    remainder: u128,
}

impl FeedbackGenerator {
    /// Forgets the carried remainder (a new stream).
    pub fn reset(&mut self) {
        self.remainder = 0;
    }

    /// The next feedback value as an integer in the speed's fixed-point format.
    pub fn next_value(&mut self, clock: DeviceClock, speed: UsbSpeed) -> u32 {
        let (one, periods_per_second) = match speed {
            UsbSpeed::Full | UsbSpeed::Low => (1u128 << 14, 1000u128),
            UsbSpeed::High | UsbSpeed::Super => (1u128 << 16, MICROFRAMES_PER_SECOND),
        };
        let den = periods_per_second * PPM;
        let total = clock.rate_micro_hz() * one + self.remainder;
        self.remainder = total % den;
        u32::try_from(total / den).unwrap_or(u32::MAX)
    }

    /// The next feedback value in its wire form; returns the byte count (4 or 3).
    pub fn next_bytes(&mut self, clock: DeviceClock, speed: UsbSpeed, out: &mut [u8; 4]) -> usize {
        let v = self.next_value(clock, speed);
        *out = v.to_le_bytes();
        match speed {
            UsbSpeed::Full | UsbSpeed::Low => 3,
            UsbSpeed::High | UsbSpeed::Super => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_clock_counts_exactly() {
        let c = DeviceClock {
            rate: 44100,
            ppm: 0,
        };
        assert_eq!(c.frames_at(BusTime(8000)), 44100);
        assert_eq!(c.frames_per_interval_bounds(8), (44, 45));
        let sum: u64 = (1..=1000)
            .map(|i| c.frames_in_interval(BusTime(i * 8), 8))
            .sum();
        assert_eq!(sum, 44100);
    }

    #[test]
    fn fast_clock_runs_ahead() {
        let c = DeviceClock {
            rate: 48000,
            ppm: 100,
        };
        assert_eq!(c.frames_at(BusTime(8000 * 10)), 480_048);
        assert_eq!(c.frames_per_interval_bounds(1), (6, 7));
    }

    #[test]
    fn full_speed_feedback_is_10_14() {
        let mut g = FeedbackGenerator::default();
        let c = DeviceClock {
            rate: 48000,
            ppm: 0,
        };
        assert_eq!(g.next_value(c, UsbSpeed::Full), 48 << 14);
        let mut b = [0; 4];
        assert_eq!(g.next_bytes(c, UsbSpeed::Full, &mut b), 3);
    }
}
