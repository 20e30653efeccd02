//! Write binding: the actuator side of a device setting (the device's `write binding`
//! operator, the host graph's `actuator`).
//!
//! A desired value is applied `apply_us` after it is accepted; the application is reported
//! (`reported`, then `effective`) at the clock time it happens. The rules:
//!
//! - **One pending write.** A desired value accepted while a write is pending replaces the
//!   pending value (a coalescing: the applied report carries `delivery_coalesced`, and its
//!   lineage is every desired value of the batch: the first one's tag and the count). The due
//!   time does not move: the write applies `apply_us` after the batch's *first* value, so a
//!   stream of desired values faster than `apply_us` still applies (no starvation).
//! - **Coherence.** While a setting is in effect, each accepted desired value re-emits that
//!   (old) setting on `effective` marked `coherence_write_pending`: until the actuator reports,
//!   the old setting is what is in effect.
//! - **`apply_us = 0`** applies at once: the value is reported and in effect immediately, and no
//!   write is ever pending.
//!
//! Time is an argument (a clock time: on a board the device's time, on the host the graph's).

use crate::kernels::batch::{Batch, Coalesced};
use crate::taint::{Taint, TaintSet};

/// Why a write binding could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteBindingError {
    /// `apply_us` is negative.
    ConfigBadDelay,
}

/// A write applied: emit its value on `reported`, then on `effective`, at the clock time of
/// the application. Its lineage is the batch of desired values it applies.
pub type Applied<V, G> = Coalesced<V, G>;

/// The setting in effect, to re-emit on `effective` while a write is on its way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StillInEffect<V> {
    /// The setting in effect (the old one).
    pub value: V,
    /// The accepted desired value's taints, with `coherence_write_pending`.
    pub taints: TaintSet,
}

/// What accepting a desired value did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Accepted<V, G> {
    /// Applied at once (`apply_us = 0`).
    Applied(Applied<V, G>),
    /// Pending until `due_us`.
    Pending {
        /// When the pending write applies.
        due_us: i64,
        /// This value started the pending write: arm a timer for `due_us`. False when it
        /// replaced a pending value (a coalescing, to be counted).
        armed: bool,
        /// The setting in effect, if any, to re-emit marked `coherence_write_pending`.
        in_effect: Option<StillInEffect<V>>,
    },
}

/// Write binding state: the pending write and the setting in effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteBinding<V, G> {
    apply_us: i64,
    due_us: i64,
    desired: V,
    effective: V,
    batch: Batch<G>,
    in_effect: bool,
}

impl<V: Clone + Default, G: Copy + Default> WriteBinding<V, G> {
    /// A binding whose actuator takes `apply_us` (0 or more) to apply a value.
    pub fn new(apply_us: i64) -> Result<Self, WriteBindingError> {
        if apply_us < 0 {
            return Err(WriteBindingError::ConfigBadDelay);
        }
        Ok(WriteBinding { apply_us, due_us: 0, desired: V::default(), effective: V::default(), batch: Batch::default(), in_effect: false })
    }

    /// The actuator's delay.
    pub fn apply_us(&self) -> i64 {
        self.apply_us
    }

    /// Desired values in the pending write (0: none pending).
    pub fn pending(&self) -> u32 {
        self.batch.len()
    }

    /// When the pending write applies, while one is pending.
    pub fn due_us(&self) -> Option<i64> {
        (self.batch.len() > 0).then_some(self.due_us)
    }

    /// The setting in effect, once a write applied.
    pub fn effective(&self) -> Option<&V> {
        self.in_effect.then_some(&self.effective)
    }

    /// Accepts desired `value` (tagged `tag`, with `taints`) at clock time `now_us`.
    pub fn offer(&mut self, now_us: i64, value: V, tag: G, taints: TaintSet) -> Accepted<V, G> {
        if self.apply_us == 0 {
            self.effective = value.clone();
            self.in_effect = true;
            return Accepted::Applied(Coalesced { value, first: tag, count: 1, taints });
        }
        let in_effect = self
            .in_effect
            .then(|| StillInEffect { value: self.effective.clone(), taints: taints.with(Taint::CoherenceWritePending) });
        let armed = self.batch.add(tag, taints);
        if armed {
            self.due_us = now_us.saturating_add(self.apply_us);
        }
        self.desired = value;
        Accepted::Pending { due_us: self.due_us, armed, in_effect }
    }

    /// At clock time `now_us`: the pending write, if one is due. It is then in effect.
    pub fn fire(&mut self, now_us: i64) -> Option<Applied<V, G>> {
        if self.batch.len() == 0 || now_us < self.due_us {
            return None;
        }
        self.effective = self.desired.clone();
        self.in_effect = true;
        Some(self.batch.close(core::mem::take(&mut self.desired)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type W = WriteBinding<f64, u32>;

    fn pending(a: Accepted<f64, u32>) -> (i64, bool, Option<(f64, TaintSet)>) {
        match a {
            Accepted::Pending { due_us, armed, in_effect } => (due_us, armed, in_effect.map(|e| (e.value, e.taints))),
            Accepted::Applied(_) => panic!("applied at once"),
        }
    }

    /// The first write applies `apply_us` later; nothing is in effect before it, so nothing
    /// is re-emitted.
    #[test]
    fn first_write_applies_after_the_delay() {
        let mut w = W::new(200).unwrap();
        assert_eq!(pending(w.offer(1_000, 40.0, 1, TaintSet::EMPTY)), (1_200, true, None));
        assert_eq!(w.fire(1_199), None);
        assert_eq!(w.fire(1_200), Some(Applied { value: 40.0, first: 1, count: 1, taints: TaintSet::EMPTY }));
        assert_eq!((w.effective(), w.due_us()), (Some(&40.0), None));
    }

    /// While a setting is in effect, each desired value re-emits it marked write-pending;
    /// newer values replace the pending one without moving its due time (no starvation), and
    /// the applied report is coalesced with the batch's lineage.
    #[test]
    fn coalesces_without_starving() {
        let mut w = W::new(200).unwrap();
        w.offer(0, 10.0, 1, TaintSet::EMPTY);
        w.fire(200);
        let wp = TaintSet::of(Taint::CoherenceWritePending);
        assert_eq!(pending(w.offer(300, 20.0, 2, TaintSet::EMPTY)), (500, true, Some((10.0, wp))));
        // Faster than apply_us: the due time stays at 500.
        assert_eq!(pending(w.offer(400, 30.0, 3, TaintSet::of(Taint::OrderKeyed))), (500, false, Some((10.0, wp.with(Taint::OrderKeyed)))));
        assert_eq!(pending(w.offer(499, 40.0, 4, TaintSet::EMPTY)), (500, false, Some((10.0, wp))));
        let applied = w.fire(500).unwrap();
        assert_eq!((applied.value, applied.first, applied.count), (40.0, 2, 3));
        assert_eq!(applied.taints, TaintSet::of(Taint::OrderKeyed).with(Taint::DeliveryCoalesced));
        assert_eq!(w.effective(), Some(&40.0));
    }

    /// `apply_us = 0` applies at once and never has a pending write.
    #[test]
    fn zero_delay_applies_at_once() {
        let mut w = W::new(0).unwrap();
        assert_eq!(w.offer(5, 1.0, 9, TaintSet::EMPTY), Accepted::Applied(Applied { value: 1.0, first: 9, count: 1, taints: TaintSet::EMPTY }));
        assert!(matches!(w.offer(5, 2.0, 10, TaintSet::EMPTY), Accepted::Applied(Applied { value: 2.0, .. })));
        assert_eq!((w.due_us(), w.fire(i64::MAX), w.effective()), (None, None, Some(&2.0)));
    }

    /// A negative delay is refused.
    #[test]
    fn bad_delay() {
        assert_eq!(W::new(-1).err(), Some(WriteBindingError::ConfigBadDelay));
    }
}
