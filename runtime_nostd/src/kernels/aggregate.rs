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
/// Floating-point sums depend on the order of additions, so merging two accumulators can differ
/// from pushing all values one by one in the last bits. Results are still bit-reproducible:
/// every host runs this same code, which performs the same additions in the same order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accumulator {
    /// Values accumulated.
    pub count: u64,
    /// Their sum, added in arrival order.
    pub sum: f64,
    /// The smallest (NaN-free inputs assumed; NaN never wins).
    pub min: f64,
    /// The largest.
    pub max: f64,
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
        if value < self.min {
            self.min = value;
        }
        if value > self.max {
            self.max = value;
        }
    }

    /// Adds everything `other` accumulated, after what this one holds.
    pub fn merge(&mut self, other: &Accumulator) {
        self.count += other.count;
        self.sum += other.sum;
        if other.min < self.min {
            self.min = other.min;
        }
        if other.max > self.max {
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
