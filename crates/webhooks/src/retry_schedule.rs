//! When to try again (pure).
//!
//! A fixed, growing schedule spread over about a day, with jitter so that a receiver
//! coming back from an outage is not hit by every queued delivery in the same second.
//! A receiver's `Retry-After` can push an attempt later, never earlier, and only up to
//! a cap, so a hostile receiver cannot park deliveries for ever.

use std::time::Duration;

use rand::Rng;

/// The retry schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    /// Base wait before attempt n+2, after n+1 attempts.
    pub delays: Vec<Duration>,
    /// Jitter as a fraction of the base wait, each way (0.2 = ±20 %).
    pub jitter: f64,
    /// The longest `Retry-After` honoured.
    pub retry_after_cap: Duration,
}

impl Default for RetrySchedule {
    /// 8 attempts: now, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    fn default() -> Self {
        let secs = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600];
        RetrySchedule {
            delays: secs.into_iter().map(Duration::from_secs).collect(),
            jitter: 0.2,
            retry_after_cap: Duration::from_secs(3600),
        }
    }
}

impl RetrySchedule {
    /// The first attempt plus one per delay.
    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The wait after `attempts_made` attempts (1 after the first one), or `None` when
    /// the schedule is exhausted. `jitter01` in `[0, 1]` picks the point in the jitter
    /// band (0.5 = the base wait); out-of-range values are clamped.
    pub fn delay_after(
        &self,
        attempts_made: usize,
        retry_after: Option<Duration>,
        jitter01: f64,
    ) -> Option<Duration> {
        let base = *self.delays.get(attempts_made.checked_sub(1)?)?;
        let ratio = self.jitter.clamp(0.0, 1.0);
        let point = if jitter01.is_nan() {
            0.5
        } else {
            jitter01.clamp(0.0, 1.0)
        };
        let factor = 1.0 - ratio + 2.0 * ratio * point;
        // Whole milliseconds: a schedule has no use for nanoseconds, and it keeps the
        // values exact and comparable.
        let millis = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
        let jittered = Duration::from_millis((millis as f64 * factor).round() as u64);
        let hint = retry_after.map_or(Duration::ZERO, |hint| hint.min(self.retry_after_cap));
        Some(jittered.max(hint))
    }

    /// [`RetrySchedule::delay_after`] with a random jitter point.
    pub fn delay_after_random(
        &self,
        attempts_made: usize,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let point = rand::thread_rng().gen_range(0.0..=1.0);
        self.delay_after(attempts_made, retry_after, point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exhausts_after_the_last_delay() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        assert_eq!(s.delay_after(0, None, 0.5), None);
        assert_eq!(s.delay_after(1, None, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(
            s.delay_after(7, None, 0.5),
            Some(Duration::from_secs(36_000))
        );
        assert_eq!(s.delay_after(8, None, 0.5), None);
    }

    #[test]
    fn jitter_band_edges() {
        let s = RetrySchedule::default();
        assert_eq!(s.delay_after(2, None, 0.0), Some(Duration::from_secs(240)));
        assert_eq!(s.delay_after(2, None, 1.0), Some(Duration::from_secs(360)));
        assert_eq!(s.delay_after(2, None, 7.0), Some(Duration::from_secs(360)));
        assert_eq!(
            s.delay_after(2, None, f64::NAN),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn retry_after_only_delays_and_is_capped() {
        let s = RetrySchedule::default();
        // Shorter than the schedule: ignored.
        assert_eq!(
            s.delay_after(2, Some(Duration::from_secs(1)), 0.5),
            Some(Duration::from_secs(300))
        );
        // Longer: honoured.
        assert_eq!(
            s.delay_after(1, Some(Duration::from_secs(120)), 0.5),
            Some(Duration::from_secs(120))
        );
        // Absurd: capped.
        assert_eq!(
            s.delay_after(1, Some(Duration::from_secs(86_400)), 0.5),
            Some(Duration::from_secs(3600))
        );
    }

    proptest! {
        #[test]
        fn always_within_bounds(attempt in 1usize..8, hint in proptest::option::of(0u64..200_000), j in 0.0f64..=1.0) {
            let s = RetrySchedule::default();
            let base = s.delays[attempt - 1].as_millis();
            let (low, high) = (base * 8 / 10, base * 12 / 10);
            let d = s.delay_after(attempt, hint.map(Duration::from_secs), j).unwrap().as_millis();
            prop_assert!(d >= low);
            prop_assert!(d <= high.max(s.retry_after_cap.as_millis()));
            if let Some(hint) = hint {
                prop_assert!(d >= u128::from(hint.min(3600)) * 1000);
            }
            let r = s.delay_after_random(attempt, None).unwrap().as_millis();
            prop_assert!(r >= low && r <= high);
        }
    }
}
