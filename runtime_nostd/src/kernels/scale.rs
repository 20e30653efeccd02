//! Scale and offset: `value * scale + offset`, e.g. raw ADC counts to engineering units.

/// Linear conversion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Multiplier.
    pub scale: f64,
    /// Added after multiplying.
    pub offset: f64,
}

impl Scale {
    /// Applies the conversion.
    pub fn apply(&self, value: f64) -> f64 {
        value * self.scale + self.offset
    }
}

#[cfg(test)]
mod tests {
    /// 12-bit ADC counts to degrees: 2048 counts at 0.1 degC per count minus 50.
    #[test]
    fn converts() {
        assert_eq!(super::Scale { scale: 0.1, offset: -50.0 }.apply(2048.0), 154.8);
    }
}
