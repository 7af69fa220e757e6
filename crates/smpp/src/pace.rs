//! The SMSC's throughput cap, kept per session: submissions are given evenly spaced slots,
//! so no second ever carries more than the cap.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) struct Pace {
    /// None: no cap.
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pace {
    pub fn new(per_second: u32) -> Pace {
        Pace {
            interval: (per_second > 0).then(|| Duration::from_secs(1) / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Takes the next free slot and waits for it; false, without taking one, when that slot
    /// comes after `latest`.
    pub async fn wait(&self, latest: Instant) -> bool {
        let Some(interval) = self.interval else {
            return true;
        };
        let slot = {
            let Ok(mut next) = self.next.lock() else {
                return false;
            };
            let slot = (*next).max(Instant::now());
            if slot > latest {
                return false;
            }
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_by_the_cap_and_refused_past_the_deadline() {
        let pace = Pace::new(10);
        let start = Instant::now();
        for _ in 0..5 {
            assert!(pace.wait(start + Duration::from_secs(1)).await);
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
        assert!(!pace.wait(start + Duration::from_millis(450)).await);
        assert!(Pace::new(0).wait(start).await);
    }
}
