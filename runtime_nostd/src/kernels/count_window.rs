//! Count windows: the last `size` values, emitted every `step` values.
//!
//! `step == size` gives tumbling windows; `step < size` sliding ones (a moving average is a
//! sliding count window with step 1). Each value carries a tag `G` (on the host, the id of the
//! envelope it came from) so the output can name its inputs.

use crate::kernels::aggregate::{Accumulator, Aggregate};
use crate::ring::Ring;

/// A count window over slots `S` holding `(value, tag)` pairs; the window size is the slot
/// count.
#[derive(Debug, Clone)]
pub struct CountWindow<G, S> {
    values: Ring<(f64, G), S>,
    step: usize,
    since_emit: usize,
}

/// Why a count window could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountWindowError {
    /// The window has no slots.
    ConfigEmptyWindow,
    /// The step is 0 or larger than the window.
    ConfigBadStep,
}

impl<G, S: AsRef<[Option<(f64, G)>]> + AsMut<[Option<(f64, G)>]>> CountWindow<G, S> {
    /// A window of `slots.len()` values that emits every `step` values.
    pub fn new(slots: S, step: usize) -> Result<Self, CountWindowError> {
        let size = slots.as_ref().len();
        if size == 0 {
            return Err(CountWindowError::ConfigEmptyWindow);
        }
        if step == 0 || step > size {
            return Err(CountWindowError::ConfigBadStep);
        }
        Ok(CountWindow { values: Ring::new(slots), step, since_emit: 0 })
    }

    /// The number of values in a full window.
    pub fn size(&self) -> usize {
        self.values.capacity()
    }

    /// Adds a value; returns the window's accumulator when this value completes a window.
    /// The tags of the window's values are then available from [`CountWindow::tags`].
    pub fn push(&mut self, value: f64, tag: G) -> Option<Accumulator> {
        if self.values.is_full() {
            self.values.pop_front();
        }
        // Cannot fail: a slot is free after the pop above.
        let _ = self.values.push_back((value, tag));
        self.since_emit += 1;
        if !self.values.is_full() || self.since_emit < self.step {
            return None;
        }
        self.since_emit = 0;
        let mut acc = Accumulator::default();
        for (v, _) in self.values.iter() {
            acc.push(*v);
        }
        Some(acc)
    }

    /// Tags of the values in the current window, oldest first.
    pub fn tags(&self) -> impl Iterator<Item = &G> + '_ {
        self.values.iter().map(|(_, tag)| tag)
    }

    /// Convenience: push and return the aggregate's value.
    pub fn push_aggregate(&mut self, value: f64, tag: G, aggregate: Aggregate) -> Option<f64> {
        self.push(value, tag).and_then(|acc| acc.result(aggregate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sliding window of 3 with step 1 is a moving average that starts at the third value.
    #[test]
    fn moving_average() {
        let mut w: CountWindow<u32, _> = CountWindow::new([None; 3], 1).unwrap();
        let out: Vec<Option<f64>> =
            [1.0, 2.0, 3.0, 4.0, 8.0].iter().enumerate().map(|(i, v)| w.push_aggregate(*v, i as u32, Aggregate::Mean)).collect();
        assert_eq!(out, vec![None, None, Some(2.0), Some(3.0), Some(5.0)]);
        assert_eq!(w.tags().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    /// A tumbling window (step == size) emits once per `size` values.
    #[test]
    fn tumbling() {
        let mut w: CountWindow<(), _> = CountWindow::new([None; 2], 2).unwrap();
        let out: Vec<Option<f64>> = [1.0, 2.0, 3.0, 4.0, 5.0].iter().map(|v| w.push_aggregate(*v, (), Aggregate::Sum)).collect();
        assert_eq!(out, vec![None, Some(3.0), None, Some(7.0), None]);
    }

    /// Nonsense configurations are refused.
    #[test]
    fn bad_config() {
        assert_eq!(CountWindow::<(), [Option<(f64, ())>; 0]>::new([], 1).err(), Some(CountWindowError::ConfigEmptyWindow));
        assert_eq!(CountWindow::<(), _>::new([None; 2], 3).err(), Some(CountWindowError::ConfigBadStep));
    }
}
