//! Property tests of the operator kernels on arbitrary values and times (proptest; raise the
//! case count with PROPTEST_CASES).
//!
//! What they prove: event and clock times anywhere in the `i64` range (the ends included, and
//! jumps of 2^63 or more) never overflow a kernel (tests run with overflow checks, so a wrap
//! panics) and never wrap into a wrong answer: join distances and lateness agree with exact
//! 128-bit arithmetic. NaN follows one rule: aggregates of values holding a NaN are NaN (count
//! counts it), filters pass it, and no kernel is left stuck by one; the references below say
//! it independently of the kernels.

use manyfold_core::kernels::{
    Accepted, Accumulator, Aggregate, CountWindow, Deadband, Insert, JoinWindow, Latest, RateLimiter, Resistor, ResistorAction,
    Threshold, TimeWindows, WindowSpec, WriteBinding,
};
use manyfold_core::taint::TaintSet;
use proptest::prelude::*;

/// Times that reach the ends of the range, zero, and small values that collide often.
fn time() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(i64::MIN + 1),
        Just(i64::MAX - 1),
        Just(0i64),
        -3_000i64..3_000,
        any::<i64>(),
    ]
}

/// Values with NaN, both infinities and signed zeros among ordinary numbers.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -100.0f64..100.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0f64),
        1 => any::<f64>(),
    ]
}

/// The NaN rule's reference for an aggregate of `values` (None: no value).
fn reference(values: &[f64], aggregate: Aggregate) -> Option<f64> {
    let nan = values.iter().any(|v| v.is_nan());
    match aggregate {
        Aggregate::Count => Some(values.len() as f64),
        Aggregate::Sum => Some(values.iter().sum()),
        _ if values.is_empty() => None,
        Aggregate::Mean => Some(values.iter().sum::<f64>() / values.len() as f64),
        _ if nan => Some(f64::NAN),
        Aggregate::Min => Some(values.iter().copied().fold(f64::INFINITY, f64::min)),
        Aggregate::Max => Some(values.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
    }
}

fn same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
        (None, None) => true,
        _ => false,
    }
}

const AGGREGATES: [Aggregate; 5] = [Aggregate::Count, Aggregate::Sum, Aggregate::Mean, Aggregate::Min, Aggregate::Max];

proptest! {
    /// Every aggregate of pushed values, and of two merged accumulators, is the reference's:
    /// NaN in, NaN out, never an infinity in its place.
    #[test]
    fn aggregates_follow_the_nan_rule(values in proptest::collection::vec(value(), 0..12), split in 0usize..12) {
        let split = split.min(values.len());
        let (mut all, mut a, mut b) = (Accumulator::default(), Accumulator::default(), Accumulator::default());
        values.iter().for_each(|v| all.push(*v));
        values[..split].iter().for_each(|v| a.push(*v));
        values[split..].iter().for_each(|v| b.push(*v));
        a.merge(&b);
        for aggregate in AGGREGATES {
            let want = reference(&values, aggregate);
            prop_assert!(same(all.result(aggregate), want), "{aggregate:?} of {values:?}: {:?}", all.result(aggregate));
            // Sums may differ in the last bits when merged; min, max and count are exact.
            if matches!(aggregate, Aggregate::Count | Aggregate::Min | Aggregate::Max) {
                prop_assert!(same(a.result(aggregate), want), "merged {aggregate:?} of {values:?}");
            }
        }
    }

    /// A count window emits the reference aggregate of its last `size` values, first at the
    /// `size`-th value and then every `step` values.
    #[test]
    fn count_windows_match_the_reference(values in proptest::collection::vec(value(), 0..30), size in 1usize..5, step in 1usize..5) {
        let step = step.min(size);
        for aggregate in AGGREGATES {
            let mut w: CountWindow<usize, _> = CountWindow::new(vec![None; size], step).unwrap();
            for (i, v) in values.iter().enumerate() {
                let n = i + 1;
                let due = n >= size && (n - size) % step == 0;
                let got = w.push_aggregate(*v, i, aggregate);
                let want = due.then(|| reference(&values[n - size..n], aggregate)).flatten();
                prop_assert!(same(got, want), "{aggregate:?} size {size} step {step} at {n}: {got:?} vs {want:?}");
            }
        }
    }

    /// Deadband: a value passes when it moved at least the band (inclusive) from the last one
    /// passed, or when either is NaN; threshold: every mode passes NaN.
    #[test]
    fn scalar_filters_follow_the_nan_rule(values in proptest::collection::vec(value(), 0..30), band in 0.0f64..20.0, low in -50.0f64..50.0, width in 0.0f64..30.0) {
        let mut d = Deadband::new(band).unwrap();
        let mut last: Option<f64> = None;
        for v in &values {
            let want = match last {
                None => true,
                Some(l) => l.is_nan() || v.is_nan() || *v == l && band == 0.0 || *v != l && (v - l).abs() >= band,
            };
            prop_assert_eq!(d.pass(*v), want, "band {} last {:?} value {}", band, last, v);
            if want {
                last = Some(*v);
            }
        }
        let high = low + width;
        for v in &values {
            let nan = v.is_nan();
            prop_assert_eq!(Threshold::Above(low).pass(*v), nan || *v > low);
            prop_assert_eq!(Threshold::Below(low).pass(*v), nan || *v < low);
            prop_assert_eq!(Threshold::Inside(low, high).pass(*v), nan || (*v >= low && *v <= high));
            prop_assert_eq!(Threshold::Outside(low, high).pass(*v), nan || *v < low || *v > high);
        }
    }

    /// Join windows agree with exact 128-bit arithmetic on pairing, lateness and expiry, for
    /// any times and bounds.
    #[test]
    fn join_windows_never_wrap(times in proptest::collection::vec(time(), 1..20), within in prop_oneof![Just(None), (0i64..100).prop_map(Some), any::<i64>().prop_map(|w| Some(w.saturating_abs())), Just(Some(i64::MAX))]) {
        let mut j = JoinWindow::new(within).unwrap();
        let mut mark: Option<i128> = None;
        for t in &times {
            let t128 = i128::from(*t);
            let late = match (within, mark) {
                (Some(w), Some(m)) => m - t128 > i128::from(w),
                _ => false,
            };
            prop_assert_eq!(j.admit(*t), !late, "admit {} after mark {:?} within {:?}", t, mark, within);
            mark = Some(mark.map_or(t128, |m| m.max(t128)));
            for other in &times {
                let o = i128::from(*other);
                let pairs = within.is_none_or(|w| (t128 - o).abs() <= i128::from(w));
                prop_assert_eq!(j.pairs(*t, *other), pairs);
                let expired = within.is_some_and(|w| mark.unwrap() - o > 2 * i128::from(w));
                prop_assert_eq!(j.expired(*other), expired);
            }
        }
    }

    /// Time windows over any event times agree with exact 128-bit arithmetic: each value is
    /// late exactly when its first window already ended at the watermark, and the windows come
    /// out in order, each once, with its exact end, its start (saturated at `i64::MIN` for a
    /// window that starts before time), its panes and its count; windows that would end after
    /// the last microsecond never close.
    #[test]
    fn time_windows_take_any_time(times in proptest::collection::vec(time(), 0..25), spec in prop_oneof![Just((1i64, 1i64)), Just((3, 1)), Just((10, 10)), Just((10, 5)), Just((300, 100)), Just((i64::MAX, i64::MAX)), Just((i64::MAX / 3 * 2, i64::MAX / 3))]) {
        let (width_us, slide_us) = spec;
        let spec = WindowSpec { width_us, slide_us };
        let n = spec.panes_per_window();
        let slots = (n + 1) as usize;
        let mut w = TimeWindows::new(spec, vec![None; slots]).unwrap();
        let (width, slide) = (i128::from(width_us), i128::from(slide_us));
        // The reference: window k is [k * slide, k * slide + width); values per window.
        let mut counts: std::collections::BTreeMap<i128, u64> = Default::default();
        let mut mark: Option<i128> = None;
        let mut want: Vec<(i64, i64, i64, i64, u64)> = Vec::new();
        let close = |counts: &mut std::collections::BTreeMap<i128, u64>, mark: i128, want: &mut Vec<(i64, i64, i64, i64, u64)>| {
            let closed: Vec<i128> = counts.keys().copied().filter(|k| k * slide + width <= mark).collect();
            for k in closed {
                let count = counts.remove(&k).unwrap();
                let start = (k * slide).max(i128::from(i64::MIN));
                let first = k.max(i128::from(i64::MIN));
                let end = k * slide + width;
                want.push((start as i64, end as i64, first as i64, (k + i128::from(n) - 1) as i64, count));
            }
        };
        let mut got: Vec<(i64, i64, i64, i64, u64)> = Vec::new();
        let mut late_values = 0u64;
        for t in &times {
            let t128 = i128::from(*t);
            let mut record = |o: manyfold_core::kernels::WindowOutput| {
                assert!(!o.forced, "nothing is forced with panes-per-window + 1 slots: {o:?}");
                got.push((o.start_us, o.end_us, o.first_pane, o.last_pane, o.acc.count));
            };
            w.advance(*t, &mut record);
            mark = Some(mark.map_or(t128, |m| m.max(t128)));
            close(&mut counts, mark.unwrap(), &mut want);
            let pane = t128.div_euclid(slide);
            // Late when its first window (pane - n + 1), which ends at (pane + 1) * slide, has
            // ended at the watermark.
            let late = (pane + 1) * slide <= mark.unwrap();
            let expected = if late { Insert::Late } else { Insert::Accepted { pane: pane as i64 } };
            prop_assert_eq!(w.insert(*t, 1.0, &mut record), expected, "insert {} after mark {:?}", t, mark);
            if late {
                late_values += 1;
            } else {
                for k in pane - i128::from(n) + 1..=pane {
                    *counts.entry(k).or_default() += 1;
                }
            }
            prop_assert_eq!(&got, &want, "after {}", t);
        }
        w.advance(i64::MAX, |o| got.push((o.start_us, o.end_us, o.first_pane, o.last_pane, o.acc.count)));
        close(&mut counts, i128::from(i64::MAX), &mut want);
        prop_assert_eq!(&got, &want);
        // What is left are the windows that would end after the last microsecond.
        prop_assert!(counts.keys().all(|k| k * slide + width > i128::from(i64::MAX)));
        prop_assert_eq!(w.late(), late_values);
    }

    /// Rate limiter, resistor, latest and write binding at clock and event times anywhere in
    /// the range: no overflow; due and release times are never in the past of their arming.
    #[test]
    fn timed_kernels_take_any_time(times in proptest::collection::vec(time(), 1..25), interval in prop_oneof![Just(1i64), 1i64..1_000, Just(i64::MAX)]) {
        let mut limiter = RateLimiter::new(2, interval as u64);
        let mut resistor = Resistor::new(interval);
        let mut latest: Latest<f64, u32> = Latest::new(interval).unwrap();
        let mut binding: WriteBinding<f64, u32> = WriteBinding::new(interval).unwrap();
        let mut clock = i64::MIN;
        for (i, t) in times.iter().enumerate() {
            // Event times may go back; a clock only goes forward.
            clock = clock.max(*t);
            let burst = (0..3).filter(|_| limiter.admit(*t)).count();
            prop_assert!(burst <= 2);
            match resistor.offer(clock) {
                ResistorAction::Hold { release_at_us, .. } => prop_assert!(release_at_us >= clock || release_at_us == i64::MAX),
                ResistorAction::Emit { .. } => {}
            }
            resistor.release(clock);
            if let Some(due) = latest.offer(clock, i as f64, i as u32, TaintSet::EMPTY) {
                prop_assert!(due > clock || due == i64::MAX);
            }
            latest.fire(clock);
            if let Accepted::Pending { due_us, armed: true, .. } = binding.offer(clock, i as f64, i as u32, TaintSet::EMPTY) {
                prop_assert!(due_us >= clock);
            }
            binding.fire(clock);
        }
    }
}
