//! Engine tests in Rust: the semantics the Python API relies on, without Python.

use std::sync::{Arc, Mutex};

use manyfold_core::kernels::Aggregate;
use manyfold_core::mailbox::Overflow;
use manyfold_core::taint::Taint;

use super::ops::{CountWindowOp, Extract, WindowEmit};
use super::*;
use crate::route::{Layer, Plane, Variant};
use crate::schema::{Schema, SchemaType};

fn float() -> Arc<Schema> {
    Arc::new(Schema::new("float", 1, SchemaType::Float))
}

fn route(owner: &str, stream: &str) -> Route {
    Route::new(Plane::Read, Layer::Logical, owner, "test", stream, Variant::Meta, 1).unwrap()
}

struct Collect(Arc<Mutex<Vec<EnvelopeRef>>>);

impl Subscriber for Collect {
    fn deliver(&mut self, envelope: &EnvelopeRef) -> Result<(), OpFailure> {
        self.0.lock().unwrap().push(envelope.clone());
        Ok(())
    }
}

fn collect(g: &mut Graph, name: &str, r: RouteIdx, policy: EdgePolicy) -> Arc<Mutex<Vec<EnvelopeRef>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    g.subscribe(name, r, Box::new(Collect(seen.clone())), policy).unwrap();
    seen
}

/// A moving average over 3 values, with lineage to its three inputs.
#[test]
fn moving_average_with_lineage() {
    let mut g = Graph::new_virtual();
    let input = g.declare_route(route("sensor", "temp"), float(), RouteOptions::default()).unwrap();
    let output = g.declare_route(route("avg", "temp_avg"), float(), RouteOptions::default()).unwrap();
    let op = CountWindowOp::new(3, 1, Aggregate::Mean, WindowEmit::Value, Extract::Whole, None).unwrap();
    g.add_node("avg", Box::new(op), &[(input, EdgePolicy::INLINE)], &[output]).unwrap();
    let seen = collect(&mut g, "sink", output, EdgePolicy::INLINE);
    let p = g.producer("sensor").unwrap();
    for v in [1.0, 2.0, 3.0, 7.0] {
        g.publish(p, input, Value::Float(v), &PublishOptions::default()).unwrap();
    }
    let seen = seen.lock().unwrap();
    let values: Vec<Value> = seen.iter().map(|e| e.value.clone()).collect();
    assert_eq!(values, vec![Value::Float(2.0), Value::Float(4.0)]);
    let parents: Vec<u64> = seen[1].meta.parents.iter().map(|p| p.seq).collect();
    assert_eq!(parents, vec![2, 3, 4]);
}

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

/// An inline loop is refused; the same loop through a mailbox is allowed.
#[test]
fn unsafe_cycles_are_refused() {
    let mut g = Graph::new_virtual();
    let a = g.declare_route(route("n", "a"), float(), RouteOptions::default()).unwrap();
    let b = g.declare_route(route("n", "b"), float(), RouteOptions::default()).unwrap();
    g.connect("ab", a, b, EdgePolicy::INLINE).unwrap();
    let err = g.connect("ba", b, a, EdgePolicy::INLINE).unwrap_err();
    assert_eq!(err.kind(), "unsafe_cycle");
    assert!(err.message().contains("read.logical.n.test.a.meta.v1"));
    let buffered = EdgePolicy { mailbox: Some(MailboxSpec { capacity: 4, overflow: Overflow::DropOldest }), epoch_boundary: false };
    g.connect("ba", b, a, buffered).unwrap();
}

/// Ownership: only the owner (or a grantee) publishes; nobody publishes on a node's output.
#[test]
fn ownership_is_enforced() {
    let mut g = Graph::new_virtual();
    let a = g.declare_route(route("sensor", "a"), float(), RouteOptions::default()).unwrap();
    let b = g.declare_route(route("sensor", "b"), float(), RouteOptions::default()).unwrap();
    g.connect("ab", a, b, EdgePolicy::INLINE).unwrap();
    let intruder = g.producer("other").unwrap();
    let owner = g.producer("sensor").unwrap();
    assert_eq!(g.publish(intruder, a, Value::Float(1.0), &PublishOptions::default()).unwrap_err().kind(), "not_owner");
    assert_eq!(g.publish(owner, b, Value::Float(1.0), &PublishOptions::default()).unwrap_err().kind(), "not_owner");
    g.grant(intruder, a).unwrap();
    g.publish(intruder, a, Value::Float(1.0), &PublishOptions::default()).unwrap();
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
