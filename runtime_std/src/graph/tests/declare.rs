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

/// A node refused for a bad mailbox on a later input leaves nothing behind: its name is free,
/// no edge is wired, publishes reach nothing, and its output route can go to another node.
#[test]
fn a_refused_node_leaves_nothing_behind() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = floats(&mut g, "n", "b");
    let out = floats(&mut g, "n", "out");
    let merge = || Box::new(ops::Merge { inputs: 2 });
    let err = g.add_node("m", merge(), &[(a, EdgePolicy::INLINE), (b, mailbox(0, Overflow::Block))], &[out]).unwrap_err();
    assert_eq!(err.kind(), "operator_config");
    assert!(err.message().starts_with("edge m_in1: a mailbox needs a capacity of 1 to"), "{}", err.message());
    assert_eq!(g.node_index("m"), None);
    assert!(g.nodes().is_empty() && g.edges().is_empty() && g.mailboxes().is_empty());
    assert!(g.route_consumers(a).unwrap().is_empty());
    assert_eq!(g.route_producer(out).unwrap(), RouteProducer::External);
    let p = g.producer("n").unwrap();
    publish(&mut g, p, a, 1.0);
    assert_eq!(g.route_seq(out).unwrap(), 0);
    let node = g.add_node("m", merge(), &[(a, EdgePolicy::INLINE), (b, mailbox(4, Overflow::Block))], &[out]).unwrap();
    assert_eq!(g.route_producer(out).unwrap(), RouteProducer::Node(node));
    assert_eq!((g.node_name(node), g.node_name(NodeIdx(node.0 + 1))), ("m", "?"));
    publish(&mut g, p, a, 2.0);
    assert_eq!(g.latest(out).unwrap().map(|e| e.value.clone()), Some(Value::Float(2.0)));
}

/// A subscription with a bad mailbox is refused before its name is taken.
#[test]
fn a_refused_subscription_leaves_its_name_free() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let err = g.subscribe("s", a, Box::new(CountingSubscriber::default()), mailbox(0, Overflow::DropOldest)).unwrap_err();
    assert_eq!(err.kind(), "operator_config");
    assert!(g.edges().is_empty() && g.route_consumers(a).unwrap().is_empty());
    g.subscribe("s", a, Box::new(CountingSubscriber::default()), mailbox(1, Overflow::DropOldest)).unwrap();
}

/// Retain defaults to RETAIN_DEFAULT, or to history when that is longer, so asking only for a
/// long history declares a valid route.
#[test]
fn retain_defaults_to_at_least_history() {
    assert_eq!(RouteOptions::with_history(8), RouteOptions::default());
    assert_eq!(RouteOptions::with_history(RETAIN_DEFAULT + 44).retain, RETAIN_DEFAULT + 44);
    let mut g = Graph::new_virtual();
    let r = g.declare_route(route("n", "long"), float(), RouteOptions::with_history(300)).unwrap();
    assert_eq!(g.route_options(r).unwrap().retain, 300);
}
