//! Threshold filter: pass values above, below, inside or outside limits.

/// Which values pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// `value > limit`.
    Above(f64),
    /// `value < limit`.
    Below(f64),
    /// `low <= value <= high`.
    Inside(f64, f64),
    /// `value < low || value > high`.
    Outside(f64, f64),
}

impl Threshold {
    /// True when `value` passes.
    pub fn pass(&self, value: f64) -> bool {
        match *self {
            Threshold::Above(limit) => value > limit,
            Threshold::Below(limit) => value < limit,
            Threshold::Inside(low, high) => value >= low && value <= high,
            Threshold::Outside(low, high) => value < low || value > high,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Threshold;

    /// Each mode's boundaries: strict for above/below, inclusive for inside.
    #[test]
    fn modes() {
        assert!(Threshold::Above(30.0).pass(30.5) && !Threshold::Above(30.0).pass(30.0));
        assert!(Threshold::Below(5.0).pass(4.0) && !Threshold::Below(5.0).pass(5.0));
        assert!(Threshold::Inside(1.0, 2.0).pass(2.0) && !Threshold::Inside(1.0, 2.0).pass(2.1));
        assert!(Threshold::Outside(1.0, 2.0).pass(0.9) && !Threshold::Outside(1.0, 2.0).pass(1.5));
    }
}
