//! Exponential backoff with jitter, as the Java client does for reconnects.

use std::time::Duration;

/// Doubles from `initial` up to `max`, each delay jittered by ±20%.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max: max.max(initial), attempt: 0 }
    }

    /// The delay before the next attempt; grows with each call.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.initial.saturating_mul(1u32 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = 0.8 + fastrand::f64() * 0.4;
        base.mul_f64(jitter).min(self.max)
    }

    /// Back to `initial` after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_bounded_jitter() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_millis(1000));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(40) && delays[0] <= Duration::from_millis(60), "{delays:?}");
        assert!(delays[3] >= Duration::from_millis(320) && delays[3] <= Duration::from_millis(480), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(1000)));
        assert!(delays[9] >= Duration::from_millis(800));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(60));
    }
}
