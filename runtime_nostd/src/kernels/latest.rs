//! Latest: at most one value per period, the latest winning (the device's `latest` operator,
//! the host graph's `sample`).
//!
//! The first value of a batch arms the emission at the next multiple of `period_us` after the
//! time it arrives (a clock time, passed in). Later values replace the held one, and their taints
//! stay with it. When the emission is due, the held value goes out with the taints of the whole
//! batch, marked `delivery_coalesced` when it replaced others. Its lineage is the batch: the tag
//! of its first value and the number of values.
//!
//! The kernel holds one value `T` (on a board its value and event time; on the host the
//! envelope) and the tag `G` of the batch's first value (on a board a sequence number).

use crate::kernels::batch::{Batch, Coalesced};
use crate::taint::TaintSet;

/// Why a latest operator could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatestError {
    /// The period is not positive.
    ConfigBadPeriod,
}

/// Latest state: the held value of the current batch and when it goes out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest<T, G> {
    period_us: i64,
    due_us: i64,
    held: T,
    batch: Batch<G>,
}

impl<T: Default, G: Copy + Default> Latest<T, G> {
    /// A latest operator emitting at most once per `period_us` (at least 1).
    pub fn new(period_us: i64) -> Result<Self, LatestError> {
        if period_us <= 0 {
            return Err(LatestError::ConfigBadPeriod);
        }
        Ok(Latest { period_us, due_us: 0, held: T::default(), batch: Batch::default() })
    }

    /// The emission period.
    pub fn period_us(&self) -> i64 {
        self.period_us
    }

    /// Values held for the next emission (0: none).
    pub fn held(&self) -> u32 {
        self.batch.len()
    }

    /// When the held value goes out, while one is held.
    pub fn due_us(&self) -> Option<i64> {
        (self.batch.len() > 0).then_some(self.due_us)
    }

    /// Holds `value` (tagged `tag`, with `taints`) arriving at clock time `now_us`. Returns the
    /// due time when this value starts a batch (the caller arms a timer for it); `None` when it
    /// replaced a held value (a coalescing, to be counted).
    pub fn offer(&mut self, now_us: i64, value: T, tag: G, taints: TaintSet) -> Option<i64> {
        self.held = value;
        if !self.batch.add(tag, taints) {
            return None;
        }
        self.due_us = now_us.div_euclid(self.period_us).saturating_add(1).saturating_mul(self.period_us);
        Some(self.due_us)
    }

    /// At clock time `now_us`: the batch to emit, if one is held and due. The kernel is then
    /// empty until the next value.
    pub fn fire(&mut self, now_us: i64) -> Option<Coalesced<T, G>> {
        if self.batch.len() == 0 || now_us < self.due_us {
            return None;
        }
        Some(self.batch.close(core::mem::take(&mut self.held)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taint::Taint;

    type L = Latest<f64, u32>;

    /// The first value arms the next multiple of the period; later ones replace it; the batch
    /// goes out once, coalesced, with the first tag and the count.
    #[test]
    fn latest_wins_and_is_coalesced() {
        let mut l = L::new(1_000).unwrap();
        assert_eq!(l.offer(250, 1.0, 7, TaintSet::EMPTY), Some(1_000));
        assert_eq!(l.offer(600, 2.0, 8, TaintSet::of(Taint::OrderKeyed)), None);
        assert_eq!(l.fire(999), None);
        let out = l.fire(1_000).unwrap();
        assert_eq!((out.value, out.first, out.count), (2.0, 7, 2));
        assert_eq!(out.taints, TaintSet::of(Taint::OrderKeyed).with(Taint::DeliveryCoalesced));
        assert_eq!((l.fire(5_000), l.due_us(), l.held()), (None, None, 0));
    }

    /// A single value goes out clean; a value arriving exactly on a period boundary waits for
    /// the next one (the due time is strictly after the arrival).
    #[test]
    fn single_value_and_boundary() {
        let mut l = L::new(1_000).unwrap();
        assert_eq!(l.offer(2_000, 5.0, 1, TaintSet::EMPTY), Some(3_000));
        let out = l.fire(3_000).unwrap();
        assert_eq!((out.value, out.count, out.taints), (5.0, 1, TaintSet::EMPTY));
        assert_eq!(l.offer(-1, 6.0, 2, TaintSet::EMPTY), Some(0));
    }

    /// A period that is not positive is refused.
    #[test]
    fn bad_period() {
        assert_eq!(L::new(0).err(), Some(LatestError::ConfigBadPeriod));
        assert_eq!(L::new(-5).err(), Some(LatestError::ConfigBadPeriod));
    }
}
