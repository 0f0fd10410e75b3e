//! How long to spin before sleeping, adapted to what recent waits needed.
//!
//! Spinning on shared memory answers in a tenth of a microsecond when both
//! sides run on their own cores; a blocking wake-up costs tens. But spinning
//! against a peer that is not on a CPU (a busy machine, or a long call) burns
//! the very time slice the peer needs. So each side keeps an [`AdaptiveSpin`]:
//! a wait answered while spinning doubles the budget (up to its maximum); a
//! wait that had to sleep halves it, and two in a row stop spinning
//! altogether, except for a short probe every [`AdaptiveSpin::PROBE_EVERY`]
//! waits to notice when spinning pays again.
//!
//! ```
//! use std::time::Duration;
//! use ffb_contract::spin::AdaptiveSpin;
//! let mut spin = AdaptiveSpin::new(Duration::from_micros(100));
//! spin.slept();
//! spin.slept();
//! assert_eq!(spin.budget(), Duration::ZERO);
//! spin.answered_while_spinning();
//! assert_eq!(spin.budget(), AdaptiveSpin::MIN);
//! ```

use std::time::Duration;

/// An adaptive spin budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveSpin {
    max: Duration,
    budget: Duration,
    sleeps_in_a_row: u32,
    waits: u32,
}

impl AdaptiveSpin {
    /// The smallest spinning budget: long enough to catch an answer from a
    /// peer that is running right now, short enough to cost little when not.
    pub const MIN: Duration = Duration::from_micros(2);
    /// While not spinning, every this many waits probe with [`Self::MIN`].
    pub const PROBE_EVERY: u32 = 16;

    /// Starts at `max`, the most this side ever spins.
    pub fn new(max: Duration) -> Self {
        Self {
            max,
            budget: max,
            sleeps_in_a_row: 0,
            waits: 0,
        }
    }

    /// How long to spin in the next wait.
    pub fn budget(&mut self) -> Duration {
        self.waits = self.waits.wrapping_add(1);
        if self.budget.is_zero() && self.waits.is_multiple_of(Self::PROBE_EVERY) {
            return Self::MIN.min(self.max);
        }
        self.budget
    }

    /// The last wait was answered while spinning.
    pub fn answered_while_spinning(&mut self) {
        self.sleeps_in_a_row = 0;
        self.budget = (self.budget * 2).max(Self::MIN).min(self.max);
    }

    /// The last wait had to sleep.
    pub fn slept(&mut self) {
        self.sleeps_in_a_row = self.sleeps_in_a_row.saturating_add(1);
        self.budget = if self.sleeps_in_a_row >= 2 {
            Duration::ZERO
        } else {
            (self.budget / 2).max(Self::MIN.min(self.max))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_back_to_its_maximum_and_never_past_it() {
        let max = Duration::from_micros(100);
        let mut s = AdaptiveSpin::new(max);
        s.slept();
        assert_eq!(s.budget(), max / 2);
        s.slept();
        assert_eq!(s.budget(), Duration::ZERO);
        // A probe now and then, so a quiet machine is noticed.
        let probes = (0..AdaptiveSpin::PROBE_EVERY * 2)
            .filter(|_| s.budget() == AdaptiveSpin::MIN)
            .count();
        assert_eq!(probes, 2);
        for _ in 0..20 {
            s.answered_while_spinning();
        }
        assert_eq!(s.budget(), max);
    }

    #[test]
    fn a_zero_maximum_never_spins() {
        let mut s = AdaptiveSpin::new(Duration::ZERO);
        s.answered_while_spinning();
        assert_eq!(s.budget(), Duration::ZERO);
        s.slept();
        s.slept();
        assert_eq!(s.budget(), Duration::ZERO);
    }
}
