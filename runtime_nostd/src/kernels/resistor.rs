//! Resistor: at most one output per `min_interval_us`. A value arriving too soon is held (the
//! latest replaces an earlier held one) and released when the interval has passed.

/// What to do with an offered value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResistorAction {
    /// Emit it now. `replaced` is true when a held value was waiting and this newer value
    /// goes out in its place (the held one is lost: a coalescing, to be counted).
    Emit {
        /// An earlier held value was replaced.
        replaced: bool,
    },
    /// Hold it; call [`Resistor::release`] at `release_at_us`. `replaced` is true when it
    /// displaced an earlier held value (which is then lost: a coalescing, to be counted).
    Hold {
        /// When the held value may go out.
        release_at_us: i64,
        /// An earlier held value was replaced.
        replaced: bool,
    },
}

/// Resistor state. The held value itself lives with the caller; the kernel tracks timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resistor {
    min_interval_us: i64,
    last_emit_us: Option<i64>,
    holding: bool,
}

impl Resistor {
    /// A resistor with the given minimum interval between outputs.
    pub fn new(min_interval_us: i64) -> Self {
        Resistor { min_interval_us: min_interval_us.max(0), last_emit_us: None, holding: false }
    }

    /// Decides for a value arriving at `now_us`.
    pub fn offer(&mut self, now_us: i64) -> ResistorAction {
        match self.last_emit_us {
            Some(last) if now_us.saturating_sub(last) < self.min_interval_us => {
                let replaced = self.holding;
                self.holding = true;
                ResistorAction::Hold { release_at_us: last.saturating_add(self.min_interval_us), replaced }
            }
            _ => {
                // Either nothing is held, or a held value's time has come before its release
                // ran: the newer value goes out now in its place.
                let replaced = self.holding;
                self.last_emit_us = Some(now_us);
                self.holding = false;
                ResistorAction::Emit { replaced }
            }
        }
    }

    /// At `now_us`, true when the held value should go out now.
    pub fn release(&mut self, now_us: i64) -> bool {
        match self.last_emit_us {
            Some(last) if self.holding && now_us.saturating_sub(last) >= self.min_interval_us => {
                self.holding = false;
                self.last_emit_us = Some(now_us);
                true
            }
            _ => false,
        }
    }

    /// True while a value is held.
    pub fn holding(&self) -> bool {
        self.holding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values closer than the interval are held, coalesced, and released on time.
    #[test]
    fn holds_and_releases() {
        let mut r = Resistor::new(100);
        assert_eq!(r.offer(0), ResistorAction::Emit { replaced: false });
        assert_eq!(r.offer(10), ResistorAction::Hold { release_at_us: 100, replaced: false });
        assert_eq!(r.offer(20), ResistorAction::Hold { release_at_us: 100, replaced: true });
        assert!(!r.release(99));
        assert!(r.release(100));
        assert!(!r.holding());
        assert_eq!(r.offer(250), ResistorAction::Emit { replaced: false });
        assert!(matches!(r.offer(260), ResistorAction::Hold { .. }));
        assert_eq!(r.offer(400), ResistorAction::Emit { replaced: true });
    }

    /// Near the end of time the release time saturates instead of wrapping into the past.
    #[test]
    fn release_time_saturates() {
        let mut r = Resistor::new(100);
        assert_eq!(r.offer(i64::MAX - 10), ResistorAction::Emit { replaced: false });
        assert_eq!(r.offer(i64::MAX), ResistorAction::Hold { release_at_us: i64::MAX, replaced: false });
        // Time cannot move past its end: the value stays held (buffered), never released "early"
        // by a wrapped time.
        assert!(!r.release(i64::MAX) && r.holding());
        let mut early = Resistor::new(100);
        assert_eq!(early.offer(i64::MIN), ResistorAction::Emit { replaced: false });
        assert_eq!(early.offer(i64::MAX), ResistorAction::Emit { replaced: false });
    }
}
