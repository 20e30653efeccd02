//! Mailboxes and backpressure: each overflow policy with its counters, taints and audit
//! entries; admission through inline paths; bursts held at a full blocking mailbox; epoch holds.

use manyfold_core::mailbox::Overflow;
use manyfold_core::taint::Taint;

use super::*;

/// A drop-oldest mailbox overflows during a burst, counts the loss, and taints the next item.
#[test]
fn mailbox_overflow_is_counted_and_tainted() {
    let mut g = Graph::new_virtual();
    let input = g.declare_route(route("sensor", "burst"), float(), RouteOptions::default()).unwrap();
    let mailbox = EdgePolicy { mailbox: Some(MailboxSpec { capacity: 2, overflow: Overflow::DropOldest }), epoch_boundary: false };
    let seen = collect(&mut g, "slow", input, mailbox);
    let p = g.producer("sensor").unwrap();
    let mut dropped = 0;
    for v in 0..5 {
        dropped += g.publish(p, input, Value::Float(v as f64), &PublishOptions::default()).unwrap().dropped;
    }
    assert_eq!(dropped, 3);
    assert!(seen.lock().unwrap().is_empty(), "mailboxes deliver only when the scheduler runs");
    g.run_until_idle(100);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.iter().map(|e| e.value.clone()).collect::<Vec<_>>(), vec![Value::Float(3.0), Value::Float(4.0)]);
    assert!(seen[0].meta.taints.contains(Taint::DeliveryDropped));
    assert!(!seen[1].meta.taints.contains(Taint::DeliveryDropped));
    assert_eq!(g.mailboxes()[0].counters.dropped_oldest, 3);
}

/// A blocking mailbox refuses the publish when full, and accepts again after draining.
#[test]
fn blocking_mailbox_pushes_back() {
    let mut g = Graph::new_virtual();
    let input = g.declare_route(route("sensor", "b"), float(), RouteOptions::default()).unwrap();
    let mailbox = EdgePolicy { mailbox: Some(MailboxSpec { capacity: 1, overflow: Overflow::Block }), epoch_boundary: false };
    collect(&mut g, "slow", input, mailbox);
    let p = g.producer("sensor").unwrap();
    g.publish(p, input, Value::Float(1.0), &PublishOptions::default()).unwrap();
    let err = g.publish(p, input, Value::Float(2.0), &PublishOptions::default()).unwrap_err();
    assert_eq!(err.kind(), "must_wait");
    assert_eq!(g.route_seq(input).unwrap(), 1, "a refused publish records nothing");
    g.run_until_idle(100);
    g.publish(p, input, Value::Float(2.0), &PublishOptions::default()).unwrap();
}

/// A drop-newest mailbox keeps what it holds, discards and counts the new items, audits each
/// loss, and taints the next item it delivers.
#[test]
fn drop_newest_discards_counts_and_taints() {
    let mut g = Graph::new_virtual();
    let input = floats(&mut g, "sensor", "burst");
    let seen = collect(&mut g, "slow", input, mailbox(2, Overflow::DropNewest));
    let p = g.producer("sensor").unwrap();
    let dropped: u64 = (0..5).map(|v| publish(&mut g, p, input, v as f64).dropped).sum();
    assert_eq!(dropped, 3);
    g.run_until_idle(100);
    assert_eq!(values(&seen), vec![Value::Float(0.0), Value::Float(1.0)]);
    let seen = seen.lock().unwrap();
    assert!(seen[0].meta.taints.contains(Taint::DeliveryDropped), "the first delivery after a loss says so");
    assert!(!seen[1].meta.taints.contains(Taint::DeliveryDropped));
    let c = g.mailboxes()[0].counters;
    assert_eq!((c.accepted, c.delivered, c.dropped_newest, c.dropped_oldest, c.depth_max), (2, 2, 3, 0, 2));
    let drops: Vec<u64> = g.audit_of(input).iter().filter(|e| matches!(e.kind, AuditKind::Dropped { .. })).map(|e| e.id.seq).collect();
    assert_eq!(drops, vec![3, 4, 5], "each lost envelope is in the audit, although the route does not audit publishes");
}

/// A rejecting mailbox refuses the publish when full: nothing is recorded, the refusal is
/// counted and audited, and publishing works again once it drained.
#[test]
fn reject_refuses_and_counts() {
    let mut g = Graph::new_virtual();
    let input = floats(&mut g, "sensor", "r");
    let seen = collect(&mut g, "slow", input, mailbox(1, Overflow::Reject));
    let p = g.producer("sensor").unwrap();
    publish(&mut g, p, input, 1.0);
    let err = g.publish(p, input, Value::Float(2.0), &PublishOptions::default()).unwrap_err();
    assert_eq!(err.kind(), "rejected");
    assert!(err.message().contains("mailbox slow is full (1 items)"), "{}", err.message());
    assert_eq!(g.route_seq(input).unwrap(), 1);
    assert_eq!(g.mailboxes()[0].counters.rejected, 1);
    assert!(g.audit_of(input).iter().any(|e| matches!(e.kind, AuditKind::Refused { .. })));
    g.run_until_idle(100);
    publish(&mut g, p, input, 3.0);
    g.run_until_idle(100);
    assert_eq!(values(&seen), vec![Value::Float(1.0), Value::Float(3.0)]);
    assert!(seen.lock().unwrap().iter().all(|e| e.meta.taints.is_empty()), "a refusal the producer saw is not a loss");
}

/// A blocking mailbox counts each publish it made wait, and loses nothing.
#[test]
fn block_counts_refusals_and_loses_nothing() {
    let mut g = Graph::new_virtual();
    let input = floats(&mut g, "sensor", "b");
    let seen = collect(&mut g, "slow", input, mailbox(1, Overflow::Block));
    let p = g.producer("sensor").unwrap();
    for v in 0..4 {
        // Bounded retry: the mailbox drains once per run.
        loop {
            match g.publish(p, input, Value::Float(v as f64), &PublishOptions::default()) {
                Ok(_) => break,
                Err(e) => {
                    assert_eq!(e.kind(), "must_wait");
                    g.run_until_idle(100);
                }
            }
        }
    }
    g.run_until_idle(100);
    assert_eq!(values(&seen).len(), 4);
    let c = g.mailboxes()[0].counters;
    assert_eq!((c.blocked, c.dropped()), (3, 0));
}

/// Admission looks through inline nodes: a full blocking mailbox two hops downstream refuses
/// the publish at the source, and nothing is recorded on either route.
#[test]
fn backpressure_reaches_through_inline_nodes() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = floats(&mut g, "n", "b");
    g.connect("ab", a, b, EdgePolicy::INLINE).unwrap();
    collect(&mut g, "slow", b, mailbox(1, Overflow::Block));
    let p = g.producer("n").unwrap();
    publish(&mut g, p, a, 1.0);
    assert_eq!(g.publish(p, a, Value::Float(2.0), &PublishOptions::default()).unwrap_err().kind(), "must_wait");
    assert_eq!((g.route_seq(a).unwrap(), g.route_seq(b).unwrap()), (1, 1));
    let (count, err) = g.publish_many(p, a, [3.0, 4.0].map(Value::Float));
    assert_eq!((count, err.map(|e| e.kind())), (0, Some("must_wait")), "a batch stops at the first refusal");
}

/// A burst from one publish that overflows a blocking mailbox waits at its edge (nothing lost),
/// further publishes are refused until it drained, and it is delivered in order.
#[test]
fn a_burst_waits_at_a_full_blocking_mailbox() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = floats(&mut g, "n", "b");
    g.add_node("burst", Box::new(Burst { copies: 3 }), &[(a, EdgePolicy::INLINE)], &[b]).unwrap();
    let seen = collect(&mut g, "slow", b, mailbox(2, Overflow::Block));
    let p = g.producer("n").unwrap();
    publish(&mut g, p, a, 1.0);
    let mb = &g.mailboxes()[0];
    assert_eq!((mb.depth, mb.stalled), (2, 1));
    assert_eq!(g.publish(p, a, Value::Float(2.0), &PublishOptions::default()).unwrap_err().kind(), "must_wait");
    g.run_until_idle(100);
    assert_eq!(seen.lock().unwrap().iter().map(|e| e.meta.id.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(seen.lock().unwrap().iter().all(|e| e.meta.taints.is_empty()));
    assert_eq!(g.mailboxes()[0].stalled, 0);
    publish(&mut g, p, a, 2.0);
}

/// An epoch-boundary edge holds items until the next control epoch, then delivers them in
/// order, stamped with the epoch they were published in.
#[test]
fn epoch_boundary_holds_until_the_next_epoch() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let held = EdgePolicy { mailbox: None, epoch_boundary: true };
    let seen = collect(&mut g, "next_epoch", a, held);
    let p = g.producer("n").unwrap();
    publish(&mut g, p, a, 1.0);
    publish(&mut g, p, a, 2.0);
    g.run_until_idle(100);
    assert!(values(&seen).is_empty());
    assert_eq!(g.edges()[0].held, 2);
    g.advance_epoch();
    assert_eq!(values(&seen), vec![Value::Float(1.0), Value::Float(2.0)]);
    assert!(seen.lock().unwrap().iter().all(|e| e.meta.control_epoch == Some(0)));
    assert_eq!((g.edges()[0].held, g.edges()[0].delivered), (0, 2));
}
