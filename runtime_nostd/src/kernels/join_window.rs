//! Join windows: the event-time rules of a join of two streams. Which values may pair, which
//! input is late, and which held value can no longer pair with anything on time.
//!
//! With a bound `within_us = w`, a left and a right value pair when their event times are at
//! most `w` apart. The join's **watermark** is the largest event time seen on either side. An
//! input more than `w` behind the watermark is **late**: values it should have paired with may
//! already be forgotten, so the caller drops it, counts it and taints the next output (as a
//! window does with a late value). A held value more than `2w` behind the watermark is
//! **expired**: no input on time (at most `w` behind) can be within `w` of it, so forgetting it
//! loses nothing. Without a bound nothing is late or expired.
//!
//! Every distance is taken as an unsigned difference, so event times anywhere in the `i64`
//! range (even 2^63 or more apart) never wrap into a false match.

/// Why a join window could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinWindowError {
    /// `within_us` is negative.
    ConfigNegativeWithin,
}

/// The event-time state of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindow {
    within_us: Option<u64>,
    watermark_us: Option<i64>,
}

impl JoinWindow {
    /// A join pairing values at most `within_us` apart (0 or more), or any values (`None`).
    pub fn new(within_us: Option<i64>) -> Result<Self, JoinWindowError> {
        let within_us = match within_us {
            Some(w) => Some(u64::try_from(w).map_err(|_| JoinWindowError::ConfigNegativeWithin)?),
            None => None,
        };
        Ok(JoinWindow { within_us, watermark_us: None })
    }

    /// The bound, if any.
    pub fn within_us(&self) -> Option<i64> {
        // Built from an i64, so it fits.
        self.within_us.map(|w| w as i64)
    }

    /// The largest event time seen, once a value arrived.
    pub fn watermark_us(&self) -> Option<i64> {
        self.watermark_us
    }

    /// Takes in an input at event time `time_us`: false when it is late (more than `within_us`
    /// behind the watermark). The watermark then rises to `time_us` if that is later.
    pub fn admit(&mut self, time_us: i64) -> bool {
        let on_time = !self.behind(time_us, 1);
        if self.watermark_us.is_none_or(|w| time_us > w) {
            self.watermark_us = Some(time_us);
        }
        on_time
    }

    /// True when values at `a_us` and `b_us` may pair.
    pub fn pairs(&self, a_us: i64, b_us: i64) -> bool {
        self.within_us.is_none_or(|w| a_us.abs_diff(b_us) <= w)
    }

    /// True when a held value at `time_us` can pair with no input on time any more.
    pub fn expired(&self, time_us: i64) -> bool {
        self.behind(time_us, 2)
    }

    /// True when `time_us` is more than `times * within_us` behind the watermark.
    fn behind(&self, time_us: i64, times: u64) -> bool {
        match (self.within_us, self.watermark_us) {
            (Some(w), Some(mark)) => mark > time_us && mark.abs_diff(time_us) > w.saturating_mul(times),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within 2, values at 0 and 5, then at 0: that one is late (5 - 0 > 2), and a value held
    /// at 0 is expired (5 - 0 > 4: nothing on time, at 3 or later, is within 2 of it); one at 1
    /// is not, and an input at 3 is on time and pairs with 1 and 5 but not 0.
    #[test]
    fn late_and_expired() {
        let mut j = JoinWindow::new(Some(2)).unwrap();
        assert!(j.admit(0) && j.admit(5));
        assert!(!j.admit(0));
        assert!(!j.expired(1) && j.expired(0));
        assert!(j.admit(3) && j.pairs(3, 5) && j.pairs(3, 1) && !j.pairs(3, 0));
        assert_eq!(j.watermark_us(), Some(5));
    }

    /// Distances of 2^63 and more never wrap into a match; the ends of the range are ordinary.
    #[test]
    fn extreme_times() {
        let j = JoinWindow::new(Some(10)).unwrap();
        assert!(!j.pairs(0, i64::MIN) && !j.pairs(i64::MIN, 0));
        assert!(!j.pairs(i64::MAX, i64::MIN) && !j.pairs(-(1 << 62), 1 << 62));
        assert!(j.pairs(i64::MAX, i64::MAX - 10) && j.pairs(i64::MIN + 10, i64::MIN));
        let mut j = JoinWindow::new(Some(i64::MAX)).unwrap();
        assert!(j.admit(i64::MAX) && !j.admit(i64::MIN) && j.admit(0));
        assert!(!j.expired(-1) && j.expired(i64::MIN) && j.pairs(i64::MIN, -1));
        assert!(!j.pairs(i64::MIN, i64::MAX));
    }

    /// Without a bound nothing is late or expired and everything pairs; a negative bound is
    /// refused.
    #[test]
    fn unbounded_and_bad() {
        let mut j = JoinWindow::new(None).unwrap();
        assert!(j.admit(i64::MAX) && j.admit(i64::MIN) && !j.expired(i64::MIN) && j.pairs(i64::MIN, i64::MAX));
        assert_eq!(JoinWindow::new(Some(-1)).err(), Some(JoinWindowError::ConfigNegativeWithin));
        assert_eq!(JoinWindow::new(Some(0)).unwrap().within_us(), Some(0));
    }
}
