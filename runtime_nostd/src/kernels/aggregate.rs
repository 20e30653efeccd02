//! Aggregates over a window: count, sum, mean, min, max.

/// Which aggregate a window emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// Number of values.
    Count,
    /// Sum of the values.
    Sum,
    /// Sum divided by count.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
}

/// Running count, sum, min and max.
///
/// NaN in, NaN out: a NaN is counted like any value and makes the sum, mean, min and max NaN
/// (min and max keep a NaN once they hold one: nothing compares below or above it), so no
/// aggregate ever turns a NaN into a number or an infinity.
///
/// Floating-point sums depend on the order of additions, so merging two accumulators can differ
/// from pushing all values one by one in the last bits. Results are still bit-reproducible:
/// every host runs this same code, which performs the same additions in the same order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accumulator {
    /// Values accumulated.
    pub count: u64,
    /// Their sum, added in arrival order.
    pub sum: f64,
    /// The smallest, or NaN once a NaN was pushed.
    pub min: f64,
    /// The largest, or NaN once a NaN was pushed.
    pub max: f64,
}

/// NaN test on the bits: integer instructions, no soft-float call on a board.
#[inline(always)]
fn is_nan(x: f64) -> bool {
    (x.to_bits() << 1) > (f64::INFINITY.to_bits() << 1)
}

impl Default for Accumulator {
    fn default() -> Self {
        Accumulator { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Accumulator {
    /// Adds one value.
    pub fn push(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        // A NaN enters and then stays: no comparison with it is true.
        let nan = is_nan(value);
        if value < self.min || nan {
            self.min = value;
        }
        if value > self.max || nan {
            self.max = value;
        }
    }

    /// Adds everything `other` accumulated, after what this one holds.
    pub fn merge(&mut self, other: &Accumulator) {
        self.count += other.count;
        self.sum += other.sum;
        // A NaN min or max (the other side saw a NaN) wins, as in `push`.
        if other.min < self.min || is_nan(other.min) {
            self.min = other.min;
        }
        if other.max > self.max || is_nan(other.max) {
            self.max = other.max;
        }
    }

    /// The aggregate's value, or `None` for an empty accumulator (no mean, min or max of
    /// nothing; count and sum of nothing are 0).
    pub fn result(&self, aggregate: Aggregate) -> Option<f64> {
        match aggregate {
            Aggregate::Count => Some(self.count as f64),
            Aggregate::Sum => Some(self.sum),
            _ if self.count == 0 => None,
            Aggregate::Mean => Some(self.sum / self.count as f64),
            Aggregate::Min => Some(self.min),
            Aggregate::Max => Some(self.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each aggregate over 1, 5, 3; empty windows have count and sum but no mean.
    #[test]
    fn aggregates() {
        let mut acc = Accumulator::default();
        for v in [1.0, 5.0, 3.0] {
            acc.push(v);
        }
        assert_eq!(acc.result(Aggregate::Count), Some(3.0));
        assert_eq!(acc.result(Aggregate::Sum), Some(9.0));
        assert_eq!(acc.result(Aggregate::Mean), Some(3.0));
        assert_eq!(acc.result(Aggregate::Min), Some(1.0));
        assert_eq!(acc.result(Aggregate::Max), Some(5.0));
        assert_eq!(Accumulator::default().result(Aggregate::Mean), None);
        assert_eq!(Accumulator::default().result(Aggregate::Count), Some(0.0));
    }

    /// NaN in, NaN out: min, max, sum and mean of values holding a NaN are NaN (never an
    /// infinity, and the NaN is not skipped), whatever comes before or after it, pushed or
    /// merged; count counts it.
    #[test]
    fn nan_wins_every_aggregate_but_count() {
        for values in [[f64::NAN, 1.0, 2.0], [1.0, f64::NAN, f64::INFINITY], [f64::NEG_INFINITY, 3.0, f64::NAN]] {
            let mut acc = Accumulator::default();
            values.iter().for_each(|v| acc.push(*v));
            for a in [Aggregate::Sum, Aggregate::Mean, Aggregate::Min, Aggregate::Max] {
                assert!(acc.result(a).unwrap().is_nan(), "{a:?} of {values:?}");
            }
            assert_eq!(acc.result(Aggregate::Count), Some(3.0));
            let (mut clean, mut dirty) = (Accumulator::default(), Accumulator::default());
            clean.push(5.0);
            dirty.push(f64::NAN);
            let mut merged = clean;
            merged.merge(&dirty);
            merged.merge(&clean);
            assert!(merged.result(Aggregate::Min).unwrap().is_nan() && merged.result(Aggregate::Max).unwrap().is_nan());
        }
        let mut only = Accumulator::default();
        only.push(f64::NAN);
        assert!(only.result(Aggregate::Min).unwrap().is_nan() && only.result(Aggregate::Max).unwrap().is_nan());
    }

    /// Infinities without a NaN are kept exactly: the min of [inf, -inf] is -inf, the max inf.
    #[test]
    fn infinities_are_values() {
        let mut acc = Accumulator::default();
        acc.push(f64::INFINITY);
        acc.push(f64::NEG_INFINITY);
        assert_eq!((acc.result(Aggregate::Min), acc.result(Aggregate::Max)), (Some(f64::NEG_INFINITY), Some(f64::INFINITY)));
    }

    /// Merging equals pushing the same values when the sums are exact (small integers).
    #[test]
    fn merge_equals_push() {
        let (mut a, mut b, mut all) = (Accumulator::default(), Accumulator::default(), Accumulator::default());
        for v in [1.0, 2.0] {
            a.push(v);
            all.push(v);
        }
        for v in [3.0, -4.0] {
            b.push(v);
            all.push(v);
        }
        a.merge(&b);
        assert_eq!(a, all);
    }
}
