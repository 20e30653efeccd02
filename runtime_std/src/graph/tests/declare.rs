//! Declaring: wiring checks on routes, nodes and edges.

use super::*;

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


/// A route has one producing node, and a node cannot take over a route producers already use.
#[test]
fn a_route_has_one_producer() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = floats(&mut g, "n", "b");
    let c = floats(&mut g, "n", "c");
    g.connect("ab", a, b, EdgePolicy::INLINE).unwrap();
    assert_eq!(g.connect("cb", c, b, EdgePolicy::INLINE).unwrap_err().kind(), "not_owner");
    let p = g.producer("n").unwrap();
    publish(&mut g, p, c, 1.0);
    assert_eq!(g.connect("ac", a, c, EdgePolicy::INLINE).unwrap_err().kind(), "not_owner");
}

/// Connecting routes of different schemas is refused, naming both routes.
#[test]
fn connect_checks_schemas() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = g.declare_route(route("n", "b"), int(), RouteOptions::default()).unwrap();
    let err = g.connect("ab", a, b, EdgePolicy::INLINE).unwrap_err();
    assert_eq!(err.kind(), "schema_mismatch");
    assert!(err.message().contains("read.logical.n.test.a.meta.v1") && err.message().contains("read.logical.n.test.b.meta.v1"));
}
