//! Event-time windows closed by watermarks: tumbling (`slide == width`) and sliding.
//!
//! Time is cut into panes of `slide_us` (pane `p` is `[p * slide, (p + 1) * slide)`); a window
//! is `width / slide` (`n`) consecutive panes. A value goes into its pane's accumulator, and a
//! window is emitted (if it saw any value) once the watermark reaches its end. A value is
//! *late* when any window that should hold it was already emitted (with sliding windows, its
//! first one closes first): it is refused and counted, never silently merged into the windows
//! still open while missing from one that went out without it.
//!
//! Exact over the whole `i64` range without 128-bit arithmetic (whose compiler-rt routines
//! would cost a board flash): a window is named by its *last* pane `j`, covering
//! `[(j + 1) * slide - width, (j + 1) * slide)`. Pane indices always fit, and so does the end
//! of every window that can close (its end is at most the watermark). A window that would
//! start before `i64::MIN` (the first windows of the first panes) starts there: its `start_us`
//! saturates, its end is exact. A window that would end after `i64::MAX` never closes.
//!
//! Memory is a fixed number of panes (the slot count). When a value arrives so far ahead that
//! its pane's slot is still taken by a pane an open window needs, those windows are closed
//! early and marked `forced`, so state stays bounded and the caller can taint the result.

use crate::kernels::aggregate::Accumulator;

/// Window geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length.
    pub width_us: i64,
    /// Distance between window starts; equal to `width_us` for tumbling windows.
    pub slide_us: i64,
}

impl WindowSpec {
    /// Panes per window.
    pub fn panes_per_window(&self) -> i64 {
        self.width_us / self.slide_us
    }
}

/// One slide-length slice of time and what arrived in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pane {
    /// `floor(time / slide)` for the values in it.
    pub index: i64,
    /// Their accumulator.
    pub acc: Accumulator,
}

/// A closed window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowOutput {
    /// Start of the window (inclusive).
    pub start_us: i64,
    /// End of the window (exclusive).
    pub end_us: i64,
    /// Everything the window saw.
    pub acc: Accumulator,
    /// The window's first pane (for callers that keep per-pane lineage), or `i64::MIN` for a
    /// window of 1 us panes that starts before time (its first panes do not exist).
    pub first_pane: i64,
    /// The window's last pane: its values are in panes `first_pane ..= last_pane`.
    pub last_pane: i64,
    /// True when the window was closed before the watermark reached its end, to free memory.
    pub forced: bool,
}

/// Why a time window could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWindowError {
    /// Width or slide is not positive, or width is not a multiple of slide.
    ConfigBadSpec,
    /// Fewer pane slots than panes per window plus one.
    ConfigTooFewPanes,
}

/// Outcome of inserting a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Added to the pane with this index.
    Accepted {
        /// Pane index.
        pane: i64,
    },
    /// Refused: every window that would contain it was already emitted.
    Late,
}

/// Event-time windows over pane slots `S`.
#[derive(Debug, Clone)]
pub struct TimeWindows<S> {
    spec: WindowSpec,
    /// `spec.panes_per_window()`, kept: a board divides 64-bit numbers in software.
    per_window: i64,
    panes: S,
    /// The first window (by last pane) not yet emitted; `None` until the first value.
    next_window: Option<i64>,
    watermark_us: i64,
    late: u64,
    forced: u64,
}

impl<S: AsRef<[Option<Pane>]> + AsMut<[Option<Pane>]>> TimeWindows<S> {
    /// Windows of `spec` over `panes` slots (at least panes-per-window + 1 of them).
    pub fn new(spec: WindowSpec, mut panes: S) -> Result<Self, TimeWindowError> {
        if spec.width_us <= 0 || spec.slide_us <= 0 || spec.width_us % spec.slide_us != 0 {
            return Err(TimeWindowError::ConfigBadSpec);
        }
        if (panes.as_ref().len() as i64) < spec.panes_per_window() + 1 {
            return Err(TimeWindowError::ConfigTooFewPanes);
        }
        for slot in panes.as_mut().iter_mut() {
            *slot = None;
        }
        Ok(TimeWindows { spec, per_window: spec.panes_per_window(), panes, next_window: None, watermark_us: i64::MIN, late: 0, forced: 0 })
    }

    /// The geometry.
    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    /// The highest watermark seen (`i64::MIN` before any).
    pub fn watermark_us(&self) -> i64 {
        self.watermark_us
    }

    /// Values refused as late.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Windows closed early to free memory.
    pub fn forced(&self) -> u64 {
        self.forced
    }

    /// Panes holding values.
    pub fn open_panes(&self) -> usize {
        self.panes.as_ref().iter().filter(|p| p.is_some()).count()
    }

    fn slot_of(&self, pane: i64) -> usize {
        pane.rem_euclid(self.panes.as_ref().len() as i64) as usize
    }

    /// Adds `value` at event time `time_us`. May first emit windows early (`forced`) when the
    /// value's pane slot is needed.
    pub fn insert<F: FnMut(WindowOutput)>(&mut self, time_us: i64, value: f64, mut emit: F) -> Insert {
        let pane = time_us.div_euclid(self.spec.slide_us);
        // Windows before `first_open` are closed by the watermark, even with no data yet: window
        // `j` ends at `(j + 1) * slide`, at or before the watermark exactly when `j` is below
        // `floor(watermark / slide)`.
        let first_open = self.watermark_us.div_euclid(self.spec.slide_us);
        let next = self.next_window.unwrap_or(first_open).max(first_open);
        // Late when its first window (the one ending with its pane) already went out: the
        // value would be missing from it.
        if pane < next {
            self.late += 1;
            return Insert::Late;
        }
        if self.next_window.is_none() {
            // Start at the first window the watermark left open, not at this value's first
            // window: an earlier value that is not behind the watermark is still accepted
            // (runs of windows without data are skipped when they close).
            self.next_window = Some(first_open);
        }
        let slot = self.slot_of(pane);
        if let Some(held) = self.panes.as_ref()[slot] {
            if held.index > pane {
                // An older pane than the newest we hold, beyond what the slots can keep.
                self.late += 1;
                return Insert::Late;
            }
            if held.index < pane {
                // Close every window that still needs the held pane, then it is free. No
                // overflow: `pane` shares the slot, so it is at least `held + slots`, and
                // `slots > n`.
                self.close_windows_before(held.index + self.per_window, true, &mut emit);
            }
        }
        let entry = &mut self.panes.as_mut()[slot];
        let target = entry.get_or_insert(Pane { index: pane, acc: Accumulator::default() });
        target.acc.push(value);
        Insert::Accepted { pane }
    }

    /// Raises the watermark to `watermark_us` and emits every window that ends at or before it.
    pub fn advance<F: FnMut(WindowOutput)>(&mut self, watermark_us: i64, mut emit: F) {
        if watermark_us <= self.watermark_us {
            return;
        }
        self.watermark_us = watermark_us;
        if self.next_window.is_none() {
            return; // no data yet; `insert` starts after the watermark
        }
        // The windows that end at or before the watermark.
        self.close_windows_before(watermark_us.div_euclid(self.spec.slide_us), false, &mut emit);
    }

    /// Emits windows `next_window .. until` (by last pane; skipping runs without data) and
    /// frees their first panes. No held pane is older than the next window's first pane, so
    /// each pass emits a window holding the oldest pane (freeing it after at most `n` windows)
    /// or jumps past a run without data: bounded by `(n + 1) * slots + 1` passes.
    fn close_windows_before<F: FnMut(WindowOutput)>(&mut self, until: i64, forced: bool, emit: &mut F) {
        let n = self.per_window;
        let slide = self.spec.slide_us;
        let Some(mut j) = self.next_window else { return };
        while j < until {
            let Some(oldest) = self.oldest_pane() else {
                j = until;
                break;
            };
            if j < oldest {
                // Windows j .. oldest end before any data: skip them.
                j = oldest.min(until);
                continue;
            }
            // The window's first pane, if it exists (only 1 us panes start before time).
            let first = j.checked_sub(n - 1);
            let mut acc = Accumulator::default();
            for pane in first.unwrap_or(i64::MIN)..=j {
                let slot = self.slot_of(pane);
                if let Some(p) = self.panes.as_ref()[slot] {
                    if p.index == pane {
                        acc.merge(&p.acc);
                    }
                }
            }
            if acc.count > 0 {
                if forced {
                    self.forced += 1;
                }
                // The end of pane `j`. No overflow: `j < until <= floor(i64::MAX / slide)`, and
                // `j` is at least the first pane, `floor(i64::MIN / slide)`.
                let end_us = (j + 1) * slide;
                emit(WindowOutput {
                    start_us: end_us.saturating_sub(self.spec.width_us),
                    end_us,
                    acc,
                    first_pane: first.unwrap_or(i64::MIN),
                    last_pane: j,
                    forced,
                });
            }
            // The window's first pane belongs to no later window.
            if let Some(first) = first {
                let slot = self.slot_of(first);
                if matches!(self.panes.as_ref()[slot], Some(p) if p.index == first) {
                    self.panes.as_mut()[slot] = None;
                }
            }
            j += 1;
        }
        self.next_window = Some(j);
    }

    fn oldest_pane(&self) -> Option<i64> {
        self.panes.as_ref().iter().flatten().map(|p| p.index).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: WindowSpec, slots: usize, events: &[(i64, f64)], watermarks: &[i64]) -> (Vec<(i64, i64, u64, f64)>, u64) {
        let mut w = TimeWindows::new(spec, vec![None; slots]).unwrap();
        let mut out = Vec::new();
        let mut collect = |o: WindowOutput| out.push((o.start_us, o.end_us, o.acc.count, o.acc.sum));
        for (t, v) in events {
            w.insert(*t, *v, &mut collect);
        }
        for wm in watermarks {
            w.advance(*wm, &mut collect);
        }
        let late = w.late();
        (out, late)
    }

    /// Tumbling windows of 10: values at 1, 5, 12, 3 give [0,10) = 1+5+3 and [10,20) = 12.
    #[test]
    fn tumbling_closes_on_watermark() {
        let spec = WindowSpec { width_us: 10, slide_us: 10 };
        let (out, late) = run(spec, 4, &[(1, 1.0), (5, 5.0), (12, 12.0), (3, 3.0)], &[9, 10, 20]);
        assert_eq!(out, vec![(0, 10, 3, 9.0), (10, 20, 1, 12.0)]);
        assert_eq!(late, 0);
    }

    /// Sliding width 10 slide 5: a value at 7 is in windows [0,10) and [5,15).
    #[test]
    fn sliding_counts_each_value_in_every_window() {
        let spec = WindowSpec { width_us: 10, slide_us: 5 };
        let (out, _) = run(spec, 4, &[(7, 1.0)], &[100]);
        assert_eq!(out, vec![(0, 10, 1, 1.0), (5, 15, 1, 1.0)]);
    }

    /// A first value behind a watermark that arrived before any data is late too.
    #[test]
    fn watermark_before_data_makes_old_values_late() {
        let spec = WindowSpec { width_us: 10, slide_us: 10 };
        let mut w = TimeWindows::new(spec, vec![None; 3]).unwrap();
        w.advance(25, |_| panic!("nothing to emit"));
        assert_eq!(w.insert(12, 1.0, |_| {}), Insert::Late);
        assert_eq!(w.insert(21, 1.0, |_| {}), Insert::Accepted { pane: 2 });
    }

    /// An earlier value within the watermark is accepted even when it precedes the first
    /// value seen (the first value does not close the windows before its own).
    #[test]
    fn earlier_value_before_watermark_is_accepted() {
        let spec = WindowSpec { width_us: 10, slide_us: 10 };
        let mut w = TimeWindows::new(spec, vec![None; 5]).unwrap();
        w.advance(12, |_| panic!("nothing to emit"));
        assert_eq!(w.insert(25, 25.0, |_| panic!("nothing forced")), Insert::Accepted { pane: 2 });
        assert_eq!(w.insert(12, 12.0, |_| panic!("nothing forced")), Insert::Accepted { pane: 1 });
        assert_eq!(w.insert(3, 3.0, |_| panic!("nothing forced")), Insert::Late);
        let mut out = Vec::new();
        w.advance(30, |o| out.push((o.start_us, o.end_us, o.acc.count, o.acc.sum)));
        assert_eq!(out, vec![(10, 20, 1, 12.0), (20, 30, 1, 25.0)]);
        assert_eq!(w.late(), 1);
    }

    /// A value behind the emitted windows is late: refused and counted.
    #[test]
    fn late_values_are_refused() {
        let spec = WindowSpec { width_us: 10, slide_us: 10 };
        let mut w = TimeWindows::new(spec, vec![None; 3]).unwrap();
        let mut out = Vec::new();
        w.insert(5, 1.0, |o| out.push(o));
        w.advance(10, |o| out.push(o));
        assert_eq!(w.insert(9, 1.0, |o| out.push(o)), Insert::Late);
        assert_eq!(w.late(), 1);
        assert_eq!(out.len(), 1);
    }

    /// Sliding windows: a value whose first window already went out is late, even though its
    /// later windows are still open (it would be missing from the first one).
    #[test]
    fn a_value_missing_from_a_closed_sliding_window_is_late() {
        let spec = WindowSpec { width_us: 10, slide_us: 5 };
        let mut w = TimeWindows::new(spec, vec![None; 4]).unwrap();
        let mut out = Vec::new();
        w.insert(7, 7.0, |o| out.push(o));
        w.advance(12, |o| out.push(o)); // [0, 10) goes out with 7 only
        assert_eq!(w.insert(9, 9.0, |o| out.push(o)), Insert::Late); // in [0, 10) and [5, 15)
        assert_eq!(w.insert(10, 10.0, |o| out.push(o)), Insert::Accepted { pane: 2 }); // in [5, 15) and [10, 20)
        w.advance(i64::MAX, |o| out.push(o));
        let sums: Vec<(i64, f64)> = out.iter().map(|o| (o.start_us, o.acc.sum)).collect();
        assert_eq!(sums, vec![(0, 7.0), (5, 17.0), (10, 10.0)]);
        assert_eq!(w.late(), 1);
    }

    /// A value far ahead forces older windows out early (flagged) instead of growing memory.
    #[test]
    fn far_future_forces_early_close() {
        let spec = WindowSpec { width_us: 10, slide_us: 10 };
        let mut w = TimeWindows::new(spec, vec![None; 2]).unwrap();
        let mut out = Vec::new();
        w.insert(5, 1.0, |o| out.push(o));
        w.insert(25, 2.0, |o| out.push(o)); // pane 2 needs pane 0's slot
        assert_eq!(out.len(), 1);
        assert!(out[0].forced);
        assert_eq!(w.forced(), 1);
        assert!(w.open_panes() <= 2);
    }

    /// A huge jump in the watermark is handled in bounded work (empty runs are skipped).
    #[test]
    fn sparse_time_is_cheap() {
        let spec = WindowSpec { width_us: 10, slide_us: 1 };
        let (out, _) = run(spec, 16, &[(0, 1.0), (1_000_000_000_000, 2.0)], &[i64::MAX]);
        assert_eq!(out.len(), 20);
    }

    /// Event times at both ends of the range: windows open and close, are forced out and
    /// skipped without an overflow (a debug build panics on one) and without a wrapped bound.
    #[test]
    fn extreme_times_never_overflow() {
        for (width_us, slide_us) in [(1, 1), (3, 1), (10, 5), (i64::MAX, i64::MAX)] {
            let spec = WindowSpec { width_us, slide_us };
            let slots = spec.panes_per_window() as usize + 1;
            let mut w = TimeWindows::new(spec, vec![None; slots]).unwrap();
            let mut out = Vec::new();
            for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX, i64::MIN] {
                w.advance(t, |o| out.push(o));
                w.insert(t, 1.0, |o| out.push(o));
            }
            w.advance(i64::MAX, |o| out.push(o));
            assert!(out.iter().all(|o| o.start_us <= o.end_us && o.acc.count >= 1), "{width_us}/{slide_us}: {out:?}");
            assert!(w.late() >= 1);
        }
    }

    /// Width 10, slide 5 at the start of time: a first value at `i64::MIN + 3` is not late and
    /// is in windows ending at `MIN + 8` and `MIN + 13`; one at `i64::MIN` is in each of the
    /// windows ending at `MIN + 3` and `MIN + 8` once, both starting (saturated) at `MIN`.
    #[test]
    fn windows_at_the_start_of_time_are_exact() {
        let spec = WindowSpec { width_us: 10, slide_us: 5 };
        for (first, ends) in [(i64::MIN + 3, [i64::MIN + 8, i64::MIN + 13]), (i64::MIN, [i64::MIN + 3, i64::MIN + 8])] {
            let mut w = TimeWindows::new(spec, vec![None; 3]).unwrap();
            let mut out = Vec::new();
            w.advance(first, |o| out.push(o));
            assert!(matches!(w.insert(first, 1.0, |o| out.push(o)), Insert::Accepted { .. }));
            w.advance(first + 1_000, |o| out.push(o));
            let got: Vec<(i64, i64, u64)> = out.iter().map(|o| (o.start_us, o.end_us, o.acc.count)).collect();
            assert_eq!(got, vec![(ends[0].saturating_sub(10), ends[0], 1), (ends[1].saturating_sub(10), ends[1], 1)]);
            assert_eq!(w.late(), 0);
        }
    }

    /// Bad geometry is refused.
    #[test]
    fn bad_spec() {
        assert_eq!(TimeWindows::new(WindowSpec { width_us: 10, slide_us: 3 }, [None; 8]).err(), Some(TimeWindowError::ConfigBadSpec));
        assert_eq!(TimeWindows::new(WindowSpec { width_us: 10, slide_us: 5 }, [None; 2]).err(), Some(TimeWindowError::ConfigTooFewPanes));
    }
}
