//! Deadband: pass a value only when it moved at least `band` from the last value passed.
//!
//! The boundary is inclusive: a move of exactly `band` passes (so a band of 0 passes
//! everything). NaN in, NaN out: a move to, from or between NaNs has no size, and it passes,
//! so a NaN is never hidden and never leaves the deadband stuck.

// Comparisons are negated on purpose: "not below the band", "not refused" are true for NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

/// Why a deadband could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadbandError {
    /// The band is negative or NaN.
    ConfigBadBand,
}

/// Deadband filter state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadband {
    band: f64,
    last: Option<f64>,
}

impl Deadband {
    /// A deadband of width `band` (absolute, in the value's unit): 0 or more. (Hosts and
    /// partition images also refuse parameters that are not finite.)
    pub fn new(band: f64) -> Result<Self, DeadbandError> {
        // NaN fails the comparison.
        if !(band >= 0.0) {
            return Err(DeadbandError::ConfigBadBand);
        }
        Ok(Deadband { band, last: None })
    }

    /// The band.
    pub fn band(&self) -> f64 {
        self.band
    }

    /// True when `value` should pass; the first value always passes.
    pub fn pass(&mut self, value: f64) -> bool {
        let pass = match self.last {
            None => true,
            Some(last) => {
                let delta = value - last;
                // Equal infinities did not move (their difference is NaN); told by their bits,
                // which costs a board no float call.
                let still = value.to_bits() == last.to_bits() && value.to_bits() << 1 == f64::INFINITY.to_bits() << 1;
                let delta = if still { 0.0 } else { delta };
                let magnitude = if delta < 0.0 { -delta } else { delta };
                // Not "below the band": a move to or from NaN passes.
                !(magnitude < self.band)
            }
        };
        if pass {
            self.last = Some(value);
        }
        pass
    }
}

#[cfg(test)]
mod tests {
    use super::{Deadband, DeadbandError};

    /// Small wiggles are suppressed; a move of at least the band passes and re-centres.
    #[test]
    fn suppresses_wiggle() {
        let mut d = Deadband::new(0.5).unwrap();
        let passed: Vec<bool> = [20.0, 20.2, 20.49, 20.5, 20.1, 19.9].iter().map(|v| d.pass(*v)).collect();
        assert_eq!(passed, vec![true, false, false, true, false, true]);
    }

    /// A NaN passes, and so does the first number after it: the deadband is never stuck. Equal
    /// infinities did not move.
    #[test]
    fn nan_passes_and_unsticks() {
        let mut d = Deadband::new(1.0).unwrap();
        let passed: Vec<bool> = [f64::NAN, 1.0, 100.0, -50.0, -50.5, f64::NAN, f64::NAN, -50.5].iter().map(|v| d.pass(*v)).collect();
        assert_eq!(passed, vec![true, true, true, true, false, true, true, true]);
        let passed: Vec<bool> = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, 5.0].iter().map(|v| d.pass(*v)).collect();
        assert_eq!(passed, vec![true, false, true, true]);
    }

    /// Negative and NaN bands are refused.
    #[test]
    fn bad_band() {
        for band in [-1.0, f64::NEG_INFINITY, f64::NAN, -0.0 - 1e-300] {
            assert_eq!(Deadband::new(band).err(), Some(DeadbandError::ConfigBadBand), "{band}");
        }
        assert!(Deadband::new(0.0).is_ok());
    }
}
