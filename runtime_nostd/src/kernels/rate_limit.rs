//! Rate limiter: a token bucket in integer arithmetic, so boards and hosts agree exactly.
//!
//! At most `max_events` pass per `interval_us`, with bursts up to `max_events`. Credit is kept
//! in units of 1/interval_us events, so refill needs no division.

/// Token bucket state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimiter {
    max_events: u64,
    interval_us: u64,
    credit: u64,
    last_us: Option<i64>,
}

impl RateLimiter {
    /// Allows `max_events` per `interval_us` (both at least 1; 0 is raised to 1).
    pub fn new(max_events: u64, interval_us: u64) -> Self {
        let max_events = max_events.max(1);
        let interval_us = interval_us.max(1);
        RateLimiter { max_events, interval_us, credit: max_events.saturating_mul(interval_us), last_us: None }
    }

    /// True when an event at `now_us` may pass (and spends its token).
    pub fn admit(&mut self, now_us: i64) -> bool {
        let credit_max = self.max_events.saturating_mul(self.interval_us);
        if let Some(last) = self.last_us {
            // The distance is taken in u64: two i64 times can be up to 2^64 - 1 apart.
            let elapsed = if now_us > last { now_us.abs_diff(last) } else { 0 };
            self.credit = self.credit.saturating_add(elapsed.saturating_mul(self.max_events)).min(credit_max);
        }
        if self.last_us.is_none_or(|last| now_us > last) {
            self.last_us = Some(now_us);
        }
        if self.credit >= self.interval_us {
            self.credit -= self.interval_us;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimiter;

    /// 2 events per second: a burst of 2 passes, the third waits for refill.
    #[test]
    fn two_per_second() {
        let mut r = RateLimiter::new(2, 1_000_000);
        assert!(r.admit(0) && r.admit(0));
        assert!(!r.admit(100_000));
        assert!(r.admit(600_000)); // 0.5 s refilled one token
        assert!(!r.admit(700_000));
        assert!(r.admit(10_000_000) && r.admit(10_000_000) && !r.admit(10_000_000)); // burst capped at 2
    }

    /// Times at both ends of the range: the refill is computed without wrapping, and a time
    /// before the last one refills nothing.
    #[test]
    fn extreme_times() {
        let mut r = RateLimiter::new(1, 10);
        assert!(r.admit(i64::MIN) && !r.admit(i64::MIN));
        assert!(r.admit(i64::MAX) && !r.admit(i64::MIN) && !r.admit(i64::MAX));
    }
}
