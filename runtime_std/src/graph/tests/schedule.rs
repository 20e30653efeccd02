//! The scheduler: inline FIFO dispatch, round-robin mailboxes, timer order, the step bound,
//! the virtual clock, and guarded (gated) work.

use manyfold_core::mailbox::Overflow;
use manyfold_core::taint::Taint;

use super::*;

/// Inline dispatch is FIFO: a route's consumers run in subscription order, and work they cause
/// runs after them (breadth first), all within the publish.
#[test]
fn inline_dispatch_is_fifo() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = floats(&mut g, "n", "b");
    let log = Log::default();
    log_to(&mut g, &log, "a1", a, EdgePolicy::INLINE);
    g.connect("ab", a, b, EdgePolicy::INLINE).unwrap();
    log_to(&mut g, &log, "a2", a, EdgePolicy::INLINE);
    log_to(&mut g, &log, "b1", b, EdgePolicy::INLINE);
    let p = g.producer("n").unwrap();
    publish(&mut g, p, a, 1.0);
    let order: Vec<String> = logged(&log).into_iter().map(|(who, _)| who).collect();
    assert_eq!(order, ["a1", "a2", "b1"]);
}

/// Mailboxes are served round-robin, one item each per round, in creation order (not in the
/// order their items were published).
#[test]
fn mailboxes_are_served_round_robin_in_creation_order() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = floats(&mut g, "n", "b");
    let log = Log::default();
    log_to(&mut g, &log, "first", a, mailbox(4, Overflow::Block));
    log_to(&mut g, &log, "second", b, mailbox(4, Overflow::Block));
    let p = g.producer("n").unwrap();
    for (r, v) in [(b, 3.0), (b, 4.0), (a, 1.0), (a, 2.0)] {
        publish(&mut g, p, r, v);
    }
    assert!(logged(&log).is_empty(), "mailboxes deliver only when the scheduler runs");
    let report = g.run_until_idle(100);
    assert_eq!(report, RunReport { steps: 4, idle: true });
    let expected: Vec<(String, Value)> =
        [("first", 1.0), ("second", 3.0), ("first", 2.0), ("second", 4.0)].map(|(w, v)| (w.to_string(), Value::Float(v))).into();
    assert_eq!(logged(&log), expected);
}

/// `run_until_idle` stops at its step bound and says work is left; the next run finishes it.
#[test]
fn run_until_idle_respects_its_step_bound() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let seen = collect(&mut g, "slow", a, mailbox(8, Overflow::Block));
    let p = g.producer("n").unwrap();
    for v in 0..5 {
        publish(&mut g, p, a, v as f64);
    }
    assert_eq!(g.ready_count(), 5);
    assert_eq!(g.run_until_idle(2), RunReport { steps: 2, idle: false });
    assert_eq!(values(&seen).len(), 2);
    assert_eq!(g.run_until_idle(100), RunReport { steps: 3, idle: true });
    assert_eq!(g.ready_count(), 0);
}

/// Timers fire in (due time, creation) order, each at its own due time on the virtual clock,
/// and not before it.
#[test]
fn timers_fire_in_due_then_creation_order() {
    let mut g = Graph::new_virtual();
    let input = g.declare_route(route("n", "delays"), int(), RouteOptions::default()).unwrap();
    let fired = g.declare_route(route("n", "fired"), int(), RouteOptions::default()).unwrap();
    g.add_node("probe", Box::new(TimerProbe), &[(input, EdgePolicy::INLINE)], &[fired]).unwrap();
    let seen = collect(&mut g, "sink", fired, EdgePolicy::INLINE);
    let p = g.producer("n").unwrap();
    for delay in [30, 10, 10] {
        g.publish(p, input, Value::Int(delay), &PublishOptions::default()).unwrap();
    }
    assert_eq!((g.timer_count(), g.next_timer_us()), (3, Some(10)));
    g.run_until_idle(100);
    assert!(values(&seen).is_empty(), "no timer is due at 0");
    g.advance_to(9).unwrap();
    assert!(values(&seen).is_empty());
    g.advance_to(100).unwrap();
    let fired_at: Vec<(Value, i64)> = seen.lock().unwrap().iter().map(|e| (e.value.clone(), e.meta.ingest_time_us)).collect();
    assert_eq!(fired_at, vec![(Value::Int(2), 10), (Value::Int(3), 10), (Value::Int(1), 30)]);
    assert_eq!((g.timer_count(), g.now_us()), (0, 100));
}

/// The virtual clock only moves forward, and a wall-clock graph cannot be advanced.
#[test]
fn clocks_refuse_what_they_cannot_do() {
    let mut g = Graph::new_virtual();
    g.advance_to(50).unwrap();
    let err = g.advance_to(10).unwrap_err();
    assert_eq!(err.kind(), "clock_mode");
    assert!(err.message().contains("from 50 us to 10 us"));
    assert_eq!(Graph::new_wall().advance_to(10).unwrap_err().kind(), "clock_mode");
}

/// Guarded work waits for its epoch, and expires at its deadline.
#[test]
fn guards_gate_on_epoch_and_deadline() {
    let mut g = Graph::new_virtual();
    let a = g.declare_route(route("ctl", "cmd"), float(), RouteOptions::default()).unwrap();
    let p = g.producer("ctl").unwrap();
    let guard = Guard { not_before_epoch: Some(1), ..Guard::default() };
    g.publish_guarded(p, a, Value::Float(1.0), PublishOptions::default(), guard).unwrap();
    let expiring = Guard { not_before_epoch: Some(5), expires_at_us: Some(1_000), ..Guard::default() };
    g.publish_guarded(p, a, Value::Float(2.0), PublishOptions::default(), expiring).unwrap();
    assert_eq!(g.gated().len(), 2);
    g.advance_epoch();
    let latest = g.latest(a).unwrap().unwrap();
    assert_eq!(latest.value, Value::Float(1.0));
    assert!(latest.meta.taints.contains(Taint::SchedGated));
    g.advance_to(2_000).unwrap();
    assert_eq!(g.gated().len(), 0);
    assert_eq!(g.expired().1, 1);
}

/// A time guard holds the publish until the clock reaches it; released work carries
/// `sched_gated` and the time it was released at.
#[test]
fn time_guards_release_at_their_time() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "ctl", "cmd");
    let p = g.producer("ctl").unwrap();
    let guard = Guard { not_before_us: Some(500), ..Guard::default() };
    let id = g.publish_guarded(p, a, Value::Float(1.0), PublishOptions::default(), guard).unwrap();
    g.advance_to(499).unwrap();
    assert_eq!(g.gated().iter().map(|w| w.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(g.route_seq(a).unwrap(), 0);
    g.advance_to(500).unwrap();
    let out = g.latest(a).unwrap().unwrap();
    assert_eq!((out.meta.ingest_time_us, out.meta.taints), (500, TaintSet::of(Taint::SchedGated)));
    assert!(g.gated().is_empty());
}

/// Guarded work whose conditions hold at once is released in submission order.
#[test]
fn guards_release_in_submission_order() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "ctl", "cmd");
    let p = g.producer("ctl").unwrap();
    let guard = Guard { not_before_epoch: Some(1), ..Guard::default() };
    for v in [1.0, 2.0, 3.0] {
        g.publish_guarded(p, a, Value::Float(v), PublishOptions::default(), guard).unwrap();
    }
    g.advance_epoch();
    assert_eq!(g.replay(a).unwrap().iter().map(|e| e.value.clone()).collect::<Vec<_>>(), [1.0, 2.0, 3.0].map(Value::Float));
}

/// Expired work is never published; it is recorded with the time it expired at.
#[test]
fn expired_guards_never_publish() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "ctl", "cmd");
    let p = g.producer("ctl").unwrap();
    let guard = Guard { not_before_epoch: Some(1), expires_at_us: Some(300), ..Guard::default() };
    let id = g.publish_guarded(p, a, Value::Float(1.0), PublishOptions::default(), guard).unwrap();
    g.advance_to(1_000).unwrap();
    g.advance_epoch();
    assert_eq!(g.route_seq(a).unwrap(), 0);
    let (expired, total) = g.expired();
    assert_eq!((expired[0].id, expired[0].expired_at_us, total), (id, 300, 1));
}

/// A guard that expires now or earlier, and a guarded publish by a non-owner, are refused and
/// hold nothing.
#[test]
fn invalid_guarded_publishes_are_refused() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "ctl", "cmd");
    g.advance_to(100).unwrap();
    let p = g.producer("ctl").unwrap();
    let stale = Guard { expires_at_us: Some(100), ..Guard::default() };
    let err = g.publish_guarded(p, a, Value::Float(1.0), PublishOptions::default(), stale).unwrap_err();
    assert_eq!(err.kind(), "guard_invalid");
    let other = g.producer("other").unwrap();
    let err = g.publish_guarded(other, a, Value::Float(1.0), PublishOptions::default(), Guard::default()).unwrap_err();
    assert_eq!(err.kind(), "not_owner");
    assert!(g.gated().is_empty());
}

/// Released guarded work respects backpressure: it stays gated while a blocking mailbox
/// downstream is full, and the scheduler releases it once the mailbox drained.
#[test]
fn guarded_work_waits_for_admission() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "ctl", "cmd");
    let seen = collect(&mut g, "slow", a, mailbox(1, Overflow::Block));
    let p = g.producer("ctl").unwrap();
    publish(&mut g, p, a, 1.0);
    g.publish_guarded(p, a, Value::Float(2.0), PublishOptions::default(), Guard::default()).unwrap();
    assert_eq!(g.gated().len(), 1, "the mailbox is full, so the release waits");
    g.run_until_idle(100);
    assert!(g.gated().is_empty());
    assert_eq!(values(&seen), vec![Value::Float(1.0), Value::Float(2.0)]);
    assert!(seen.lock().unwrap()[1].meta.taints.contains(Taint::SchedGated));
}
