//! Every queue in the graph is bounded, and says what happens when full: guarded publishes,
//! timers, bursts waiting at a blocking mailbox, and epoch holds.

use manyfold_core::mailbox::Overflow;
use manyfold_core::taint::Taint;

use super::*;

/// Guarded publishes wait up to `gated_max`; one more is refused (counted and audited, nothing
/// held), and room comes back as waiting work is released.
#[test]
fn the_gate_refuses_beyond_gated_max() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "ctl", "cmd");
    g.set_gated_max(2).unwrap();
    let p = g.producer("ctl").unwrap();
    let next_epoch = Guard { not_before_epoch: Some(1), ..Guard::default() };
    for v in [1.0, 2.0] {
        g.publish_guarded(p, a, Value::Float(v), PublishOptions::default(), next_epoch).unwrap();
    }
    let err = g.publish_guarded(p, a, Value::Float(3.0), PublishOptions::default(), next_epoch).unwrap_err();
    assert_eq!(err.kind(), "rejected");
    assert!(err.message().contains("2 guarded publishes already wait (gated_max)"), "{}", err.message());
    assert_eq!((g.gated().len(), g.gated_refused()), (2, 1));
    assert!(g.audit_of(a).iter().any(|e| matches!(&e.kind, AuditKind::Refused { producer, .. } if producer == "ctl")));
    g.advance_epoch();
    assert_eq!(g.route_seq(a).unwrap(), 2, "the refused publish never ran");
    g.publish_guarded(p, a, Value::Float(3.0), PublishOptions::default(), Guard::default()).unwrap();
    assert_eq!(g.route_seq(a).unwrap(), 3);
}

/// `gated_max` is at least 1 and cannot drop below the work waiting now.
#[test]
fn gated_max_is_checked() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "ctl", "cmd");
    assert_eq!(g.gated_max(), GATED_MAX_DEFAULT);
    assert_eq!(g.set_gated_max(0).unwrap_err().kind(), "operator_config");
    let p = g.producer("ctl").unwrap();
    let later = Guard { not_before_epoch: Some(1), ..Guard::default() };
    for v in [1.0, 2.0] {
        g.publish_guarded(p, a, Value::Float(v), PublishOptions::default(), later).unwrap();
    }
    assert!(g.set_gated_max(1).unwrap_err().message().contains("the 2 guarded publishes waiting now"));
    g.set_gated_max(2).unwrap();
}

/// Guard times take no timers: work released early leaves nothing behind, and the next guard
/// time is still what a real-time loop wakes for.
#[test]
fn guard_times_do_not_pile_up_timers() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "ctl", "cmd");
    let p = g.producer("ctl").unwrap();
    let guard = Guard { not_before_epoch: Some(1), not_before_us: Some(700), expires_at_us: Some(900) };
    g.publish_guarded(p, a, Value::Float(0.0), PublishOptions::default(), guard).unwrap();
    assert_eq!((g.timer_count(), g.next_timer_us()), (0, Some(700)));
    g.advance_to(700).unwrap();
    assert_eq!(g.next_timer_us(), Some(900), "past its time, the guard still waits for its epoch until its deadline");
    g.advance_to(900).unwrap();
    assert_eq!((g.expired().1, g.next_timer_us()), (1, None));
    let far = Guard { expires_at_us: Some(1_000_000_000), ..Guard::default() };
    for v in 0..5_000 {
        g.publish_guarded(p, a, Value::Float(v as f64), PublishOptions::default(), far).unwrap();
    }
    assert_eq!((g.route_seq(a).unwrap(), g.gated().len(), g.timer_count()), (5_000, 0, 0));
}

/// A burst larger than a full blocking mailbox and its stall area drops the excess: counted as
/// dropped_newest, in the receipt and the audit, and the next delivery is tainted.
#[test]
fn a_burst_beyond_the_stall_area_is_dropped_and_tainted() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = floats(&mut g, "n", "b");
    let copies = STALLED_MAX + 3;
    g.add_node("burst", Box::new(Burst { copies }), &[(a, EdgePolicy::INLINE)], &[b]).unwrap();
    let seen = collect(&mut g, "slow", b, mailbox(1, Overflow::Block));
    let p = g.producer("n").unwrap();
    assert_eq!(publish(&mut g, p, a, 1.0).dropped, 2);
    let mb = &g.mailboxes()[0];
    assert_eq!((mb.depth, mb.stalled, mb.counters.dropped_newest), (1, STALLED_MAX, 2));
    let drops: Vec<u64> = g.audit_of(b).iter().filter(|e| matches!(e.kind, AuditKind::Dropped { .. })).map(|e| e.id.seq).collect();
    assert_eq!(drops, vec![copies as u64 - 1, copies as u64]);
    g.run_until_idle(u64::MAX);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), STALLED_MAX + 1);
    assert!(seen[0].meta.taints.contains(Taint::DeliveryDropped));
    assert!(seen[1..].iter().all(|e| e.meta.taints.is_empty()));
}

/// A full epoch hold drops its oldest item: counted, in the receipt and the audit, and the
/// first item released at the next epoch carries `delivery_dropped`.
#[test]
fn a_full_epoch_hold_drops_and_taints() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let held = EdgePolicy { mailbox: None, epoch_boundary: true };
    let seen = collect(&mut g, "next_epoch", a, held);
    let p = g.producer("n").unwrap();
    let dropped: u64 = (0..EPOCH_HOLD_MAX + 2).map(|v| publish(&mut g, p, a, v as f64).dropped).sum();
    assert_eq!(dropped, 2);
    assert_eq!((g.edges()[0].held, g.edges()[0].held_dropped), (EPOCH_HOLD_MAX, 2));
    let drops: Vec<(u64, String)> = g.audit_of(a).into_iter().filter_map(|e| match e.kind { AuditKind::Dropped { at } => Some((e.id.seq, at)), _ => None }).collect();
    assert_eq!(drops, [1, 2].map(|seq| (seq, "epoch hold next_epoch".to_string())));
    g.advance_epoch();
    let seen = seen.lock().unwrap();
    assert_eq!((seen.len(), seen[0].meta.id.seq), (EPOCH_HOLD_MAX, 3));
    assert!(seen[0].meta.taints.contains(Taint::DeliveryDropped));
    assert!(seen[1..].iter().all(|e| e.meta.taints.is_empty()));
}

/// The graph holds at most `TIMERS_MAX` node timers; one more is refused and reported as a
/// failure of the node that set it.
#[test]
fn timers_beyond_the_bound_are_refused_and_reported() {
    let mut g = Graph::new_virtual();
    let input = g.declare_route(route("n", "delays"), int(), RouteOptions::default()).unwrap();
    let fired = g.declare_route(route("n", "fired"), int(), RouteOptions::default()).unwrap();
    g.add_node("probe", Box::new(TimerProbe), &[(input, EdgePolicy::INLINE)], &[fired]).unwrap();
    let p = g.producer("n").unwrap();
    let (count, err) = g.publish_many(p, input, (0..=TIMERS_MAX).map(|_| Value::Int(10)));
    assert_eq!((count, err), (TIMERS_MAX as u64 + 1, None));
    assert_eq!(g.timer_count(), TIMERS_MAX);
    let (failures, more) = g.take_failures();
    assert_eq!((failures.len(), more), (1, 0));
    assert_eq!(failures[0].origin, "node probe");
    assert!(failures[0].message.contains("already holds 65536 timers"), "{}", failures[0].message);
    assert_eq!(g.nodes()[0].failures, 1);
    g.advance_to(10).unwrap();
    assert_eq!(g.route_seq(fired).unwrap(), TIMERS_MAX as u64);
}
