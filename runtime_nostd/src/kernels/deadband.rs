//! Deadband: pass a value only when it moved at least `band` from the last value passed.

/// Deadband filter state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadband {
    band: f64,
    last: Option<f64>,
}

impl Deadband {
    /// A deadband of width `band` (absolute, in the value's unit).
    pub fn new(band: f64) -> Self {
        Deadband { band, last: None }
    }

    /// True when `value` should pass; the first value always passes.
    pub fn pass(&mut self, value: f64) -> bool {
        let pass = match self.last {
            None => true,
            Some(last) => {
                let delta = value - last;
                let magnitude = if delta < 0.0 { -delta } else { delta };
                magnitude >= self.band
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
    use super::Deadband;

    /// Small wiggles are suppressed; a move of at least the band passes and re-centres.
    #[test]
    fn suppresses_wiggle() {
        let mut d = Deadband::new(0.5);
        let passed: Vec<bool> = [20.0, 20.2, 20.49, 20.5, 20.1, 19.9].iter().map(|v| d.pass(*v)).collect();
        assert_eq!(passed, vec![true, false, false, true, false, true]);
    }
}
