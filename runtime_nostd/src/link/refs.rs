//! References: what each end of a v1.1 link knows about the other, so that an event can leave
//! out what the receiver already has (docs/wire.md 2.5).
//!
//! A short-form event carries only the low 16 bits of its route's sequence number and of its
//! event time in milliseconds. The receiver expands them to the full values nearest to a
//! reference it holds: for the sequence, the route's last known seq (from the routes table the
//! host asked for, then from each event of the route); for time, the largest device time it
//! has received in any message. The sender uses the short form only when that expansion is
//! exact whatever the receiver lost on the way:
//!
//! - **time**: the receiver's reference `x` lies between the largest time the receiver has
//!   acknowledged (`acked`, which the host reports in its heartbeats and steps) and the largest
//!   time the sender has sent (`sent`). A time `t` expands exactly from every such `x` when
//!   `sent - 32768 ms <= t <= acked + 32767 ms` (and `t` is a whole millisecond), which is what
//!   [`TxTime::short`] checks. No loss can break it: a lost message only keeps `x` lower, and
//!   `x` never falls below what the host said it had.
//! - **sequence**: a route's short form is used only after the device sent the route's row in a
//!   routes reply in this session (the route is *announced*); the expansion is exact while fewer
//!   than 32768 consecutive events of the route are lost. A host that hears nothing for `down`
//!   reconnects, and a resumed session announces every route again, which bounds the loss.

/// Half the span of a 16-bit field: expansions are exact within `-HALF ..= HALF - 1`.
const HALF: i64 = 1 << 15;

/// The low 16 bits of a value, as carried by a short-form field.
pub fn low16(x: i64) -> u16 {
    x as u16
}

/// The value nearest to `reference` whose low 16 bits are `low` (within `-32768 ..= 32767`).
pub fn expand16(reference: i64, low: u16) -> i64 {
    let delta = low.wrapping_sub(reference as u16) as i16;
    reference.saturating_add(i64::from(delta))
}

/// The sender's time references (a device sending events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxTime {
    /// The largest device time sent in any message, in microseconds.
    sent_us: i64,
    /// The largest device time the host said it received, at most `sent_us`.
    acked_us: i64,
}

/// The span a short time field reaches past a reference, in microseconds (32768 ms back,
/// 32767 ms ahead, in whole milliseconds).
const BACK_US: i64 = HALF * 1000;
const AHEAD_US: i64 = (HALF - 1) * 1000;

impl TxTime {
    /// Both references at `time_us` (a describe, which carries the device's time, was sent).
    pub fn reset(&mut self, time_us: i64) {
        *self = TxTime { sent_us: time_us, acked_us: time_us };
    }

    /// A message carrying `time_us` was sent.
    pub fn sent(&mut self, time_us: i64) {
        self.sent_us = self.sent_us.max(time_us);
    }

    /// The host reported `seen_us` as the largest device time it received.
    pub fn acked(&mut self, seen_us: i64) {
        self.acked_us = self.acked_us.max(seen_us.min(self.sent_us));
    }

    /// The 16-bit millisecond field of `time_us` when the host can expand it exactly: a whole
    /// millisecond with `sent - 32768 ms <= t <= acked + 32767 ms`. (In milliseconds, floored,
    /// that is `t - x` within `-32768 ..= 32767` for every reference `x` between the two.)
    pub fn short(&self, time_us: i64) -> Option<u16> {
        // Negative times (a host may step from any time) always go in full.
        if time_us < 0 || time_us < self.sent_us.wrapping_sub(BACK_US) || time_us > self.acked_us.wrapping_add(AHEAD_US) {
            return None;
        }
        let ms = time_us as u64 / 1000;
        (ms * 1000 == time_us as u64).then_some(ms as u16)
    }

    /// The largest device time acknowledged.
    pub fn acked_us(&self) -> i64 {
        self.acked_us
    }
}

/// The receiver's time reference (a host receiving events): the largest device time received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxTime {
    max_us: Option<i64>,
}

impl RxTime {
    /// The reference is `time_us` (a describe arrived).
    pub fn reset(&mut self, time_us: i64) {
        self.max_us = Some(time_us);
    }

    /// A device time arrived.
    pub fn received(&mut self, time_us: i64) {
        self.max_us = Some(self.max_us.map_or(time_us, |m| m.max(time_us)));
    }

    /// The largest device time received (what the host reports as `seen_us`).
    pub fn max_us(&self) -> Option<i64> {
        self.max_us
    }

    /// The full time of a short-form field, or `None` without a reference.
    pub fn expand(&self, low_ms: u16) -> Option<i64> {
        let reference = self.max_us?.div_euclid(1000);
        expand16(reference, low_ms).checked_mul(1000)
    }
}

/// The full sequence number of a short-form field, from the route's reference; `None` when the
/// result is not a valid seq (0 or above `u32::MAX`).
pub fn expand_seq(reference: u32, low: u16) -> Option<u32> {
    u32::try_from(expand16(i64::from(reference), low)).ok().filter(|s| *s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expansion picks the nearest value, across wraps in both directions.
    #[test]
    fn expand_is_nearest() {
        assert_eq!(expand16(100, 105), 105);
        assert_eq!(expand16(100, 95), 95);
        assert_eq!(expand16(65_530, 3), 65_539);
        assert_eq!(expand16(65_539, 65_530), 65_530);
        assert_eq!(expand16(1_000_000, low16(1_000_000 + 32_767)), 1_000_000 + 32_767);
        assert_eq!(expand16(1_000_000, low16(1_000_000 - 32_768)), 1_000_000 - 32_768);
        assert_eq!(expand_seq(5, 0), None, "seq 0 is not a seq");
        assert_eq!(expand_seq(70_000, low16(70_001)), Some(70_001));
    }

    /// The sender's rule keeps every expansion exact whatever the receiver lost: for all
    /// receiver references between `acked` and `sent`, a short time expands to itself.
    #[test]
    fn short_times_expand_exactly_from_any_reference_the_host_can_hold() {
        let mut tx = TxTime::default();
        tx.reset(10_000_000);
        tx.sent(50_000_000);
        tx.acked(20_000_000);
        for t_ms in (10_000..90_000).step_by(7) {
            let t = t_ms * 1000;
            if tx.short(t).is_none() {
                continue;
            }
            for x in (20_000_000..=50_000_000).step_by(999_999) {
                let mut rx = RxTime::default();
                rx.reset(x);
                assert_eq!(rx.expand(low16(t_ms)), Some(t), "t {t} from x {x}");
            }
        }
        let short = |t: i64| tx.short(t).is_some();
        assert!(short(52_767_000) && !short(52_768_000), "at most 32767 ms past what the host acknowledged");
        assert!(short(17_232_000) && !short(17_231_000), "at least 32768 ms before the largest time sent");
        assert!(!short(30_000_500), "only whole milliseconds");
        assert_eq!(tx.short(30_000_000), Some(low16(30_000)));
    }

    /// A host cannot acknowledge more than was sent.
    #[test]
    fn acks_are_clamped_to_what_was_sent() {
        let mut tx = TxTime::default();
        tx.reset(0);
        tx.acked(1_000_000_000);
        assert_eq!(tx.acked_us(), 0);
        tx.sent(5_000);
        tx.acked(4_000);
        assert_eq!(tx.acked_us(), 4_000);
        tx.acked(1_000);
        assert_eq!(tx.acked_us(), 4_000, "acknowledgements never go back");
    }
}
