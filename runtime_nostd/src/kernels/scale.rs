//! Scale and offset: `value * scale + offset`, e.g. raw ADC counts to engineering units. NaN in,
//! NaN out.

/// Linear conversion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Multiplier.
    pub scale: f64,
    /// Added after multiplying.
    pub offset: f64,
}

/// Why a scale could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleError {
    /// The scale or the offset is infinite or NaN (every output would be NaN or infinite).
    ConfigNotFinite,
}

impl Scale {
    /// A conversion with a finite `scale` and `offset`.
    pub fn new(scale: f64, offset: f64) -> Result<Self, ScaleError> {
        if !(scale.is_finite() && offset.is_finite()) {
            return Err(ScaleError::ConfigNotFinite);
        }
        Ok(Scale { scale, offset })
    }

    /// Applies the conversion.
    pub fn apply(&self, value: f64) -> f64 {
        value * self.scale + self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::{Scale, ScaleError};

    /// 12-bit ADC counts to degrees: 2048 counts at 0.1 degC per count minus 50.
    #[test]
    fn converts() {
        assert_eq!(Scale::new(0.1, -50.0).unwrap().apply(2048.0), 154.8);
        assert!(Scale::new(0.1, -50.0).unwrap().apply(f64::NAN).is_nan());
    }

    /// A scale or offset that is not finite is refused.
    #[test]
    fn bad_config() {
        assert_eq!(Scale::new(f64::NAN, 0.0), Err(ScaleError::ConfigNotFinite));
        assert_eq!(Scale::new(1.0, f64::NEG_INFINITY), Err(ScaleError::ConfigNotFinite));
    }
}
