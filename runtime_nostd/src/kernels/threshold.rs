//! Threshold filter: pass values above, below, inside or outside limits.
//!
//! Limits are numbers, and `low <= high` for inside and outside ([`Threshold::checked`]; hosts
//! and partition images also refuse limits that are not finite). NaN in, NaN out: no limit can
//! place a NaN, so every mode passes it on rather than hide it.

// Comparisons are negated on purpose: "not below the band", "not refused" are true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

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

/// Why a threshold could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdError {
    /// A limit is NaN, or inside or outside limits have `low > high` (it would never pass, or
    /// always pass).
    ConfigBadLimits,
}

impl Threshold {
    /// The threshold, if its limits are numbers in order.
    pub fn checked(self) -> Result<Self, ThresholdError> {
        let (low, high) = match self {
            Threshold::Above(l) | Threshold::Below(l) => (l, l),
            Threshold::Inside(low, high) | Threshold::Outside(low, high) => (low, high),
        };
        // NaN fails the comparison.
        if !(low <= high) {
            return Err(ThresholdError::ConfigBadLimits);
        }
        Ok(self)
    }

    /// True when `value` passes. Each test is written as "not refused", so NaN passes.
    pub fn pass(&self, value: f64) -> bool {
        match *self {
            Threshold::Above(limit) => !(value <= limit),
            Threshold::Below(limit) => !(value >= limit),
            Threshold::Inside(low, high) => !(value < low || value > high),
            Threshold::Outside(low, high) => !(value >= low && value <= high),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Threshold, ThresholdError};

    /// Each mode's boundaries: strict for above/below, inclusive for inside.
    #[test]
    fn modes() {
        assert!(Threshold::Above(30.0).pass(30.5) && !Threshold::Above(30.0).pass(30.0));
        assert!(Threshold::Below(5.0).pass(4.0) && !Threshold::Below(5.0).pass(5.0));
        assert!(Threshold::Inside(1.0, 2.0).pass(2.0) && !Threshold::Inside(1.0, 2.0).pass(2.1));
        assert!(Threshold::Outside(1.0, 2.0).pass(0.9) && !Threshold::Outside(1.0, 2.0).pass(1.5));
    }

    /// Every mode passes NaN; infinities are ordinary values.
    #[test]
    fn nan_passes_every_mode() {
        for t in [Threshold::Above(1.0), Threshold::Below(1.0), Threshold::Inside(0.0, 2.0), Threshold::Outside(0.0, 2.0)] {
            assert!(t.pass(f64::NAN), "{t:?}");
        }
        assert!(Threshold::Above(1.0).pass(f64::INFINITY) && !Threshold::Above(1.0).pass(f64::NEG_INFINITY));
        assert!(!Threshold::Inside(0.0, 2.0).pass(f64::INFINITY) && Threshold::Outside(0.0, 2.0).pass(f64::INFINITY));
    }

    /// NaN limits and reversed limits are refused.
    #[test]
    fn bad_limits() {
        assert_eq!(Threshold::Above(f64::NAN).checked().err(), Some(ThresholdError::ConfigBadLimits));
        assert_eq!(Threshold::Inside(0.0, f64::NAN).checked().err(), Some(ThresholdError::ConfigBadLimits));
        assert_eq!(Threshold::Inside(5.0, 1.0).checked().err(), Some(ThresholdError::ConfigBadLimits));
        assert_eq!(Threshold::Outside(5.0, 1.0).checked().err(), Some(ThresholdError::ConfigBadLimits));
        assert_eq!(Threshold::Inside(1.0, 1.0).checked(), Ok(Threshold::Inside(1.0, 1.0)));
    }
}
