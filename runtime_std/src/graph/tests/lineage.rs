//! Lineage and taints through built-in operators: parents, link taints, repairs, ephemeral
//! routes, losses carried downstream, and lineage walks with forgotten ancestors.

use manyfold_core::kernels::Aggregate;
use manyfold_core::mailbox::Overflow;
use manyfold_core::taint::Taint;

use super::super::ops::{CountWindowOp, Extract, WindowEmit};
use super::*;

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

fn mean_of(n: usize) -> Box<dyn Operator> {
    Box::new(CountWindowOp::new(n, 1, Aggregate::Mean, WindowEmit::Value, Extract::Whole, None).unwrap())
}

fn ids(envs: &[EnvelopeRef], g: &Graph) -> Vec<String> {
    envs.iter().map(|e| format!("{}@{}", g.route(e.meta.id.route).unwrap().stream(), e.meta.id.seq)).collect()
}

/// A link that cannot keep order taints every forwarded envelope, keeps its parent, and the
/// forward node reports the taint as one it added.
#[test]
fn link_taints_are_added_by_the_crossing() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = floats(&mut g, "n", "b");
    let link = TaintSet::of(Taint::OrderPossiblyOutOfOrder);
    g.connect_over("link", a, b, EdgePolicy::INLINE, link).unwrap();
    let p = g.producer("n").unwrap();
    let sent = publish(&mut g, p, a, 1.0).id;
    let out = g.latest(b).unwrap().unwrap();
    assert_eq!(out.meta.taints, link);
    assert_eq!(out.meta.parents.to_vec(), vec![sent]);
    let node = &g.nodes()[0];
    assert_eq!((node.taints_added, node.taints_removed), (link, TaintSet::EMPTY));
    assert!(g.route_taints(b).unwrap().contains(Taint::OrderPossiblyOutOfOrder));
    assert!(g.route_taints(a).unwrap().is_empty());
}

/// A repair clears the taints it proves and adds its own; the node reports both.
#[test]
fn repair_clears_and_adds_taints() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let b = floats(&mut g, "n", "b");
    let op = super::super::ops::Repair::new(TaintSet::of(Taint::OrderPossiblyOutOfOrder), TaintSet::of(Taint::OrderResequenced), "resequenced upstream").unwrap();
    g.add_node("fix", Box::new(op), &[(a, EdgePolicy::INLINE)], &[b]).unwrap();
    let p = g.producer("n").unwrap();
    let options = PublishOptions { taints: TaintSet::of(Taint::OrderPossiblyOutOfOrder), ..PublishOptions::default() };
    g.publish(p, a, Value::Float(1.0), &options).unwrap();
    assert_eq!(g.latest(b).unwrap().unwrap().meta.taints, TaintSet::of(Taint::OrderResequenced));
    let node = &g.nodes()[0];
    assert_eq!(node.taints_removed, TaintSet::of(Taint::OrderPossiblyOutOfOrder));
    assert_eq!(node.taints_added, TaintSet::of(Taint::OrderResequenced));
}

/// An ephemeral route stamps `det_nonreplayable` on what it carries, and the taint follows the
/// value downstream.
#[test]
fn ephemeral_routes_taint_downstream() {
    let mut g = Graph::new_virtual();
    let eph = Route::new(Plane::Read, Layer::Ephemeral, "n", "test", "e", Variant::Event, 1).unwrap();
    let e = g.declare_route(eph, float(), RouteOptions::default()).unwrap();
    let b = floats(&mut g, "n", "b");
    g.connect("fwd", e, b, EdgePolicy::INLINE).unwrap();
    let p = g.producer("n").unwrap();
    publish(&mut g, p, e, 1.0);
    assert!(g.latest(e).unwrap().unwrap().meta.taints.contains(Taint::DetNonReplayable));
    assert!(g.latest(b).unwrap().unwrap().meta.taints.contains(Taint::DetNonReplayable));
    assert!(g.nodes()[0].taints_added.is_empty(), "the forward passed the taint on, it did not add it");
}

/// A loss in a mailbox taints the next delivered item, and a window over it carries the taint
/// into its output (the join of its parents' taints).
#[test]
fn a_mailbox_loss_is_carried_through_a_window() {
    let mut g = Graph::new_virtual();
    let a = floats(&mut g, "n", "a");
    let avg = floats(&mut g, "n", "avg");
    g.add_node("avg", mean_of(2), &[(a, mailbox(1, Overflow::DropOldest))], &[avg]).unwrap();
    let p = g.producer("n").unwrap();
    publish(&mut g, p, a, 1.0);
    g.run_until_idle(100);
    publish(&mut g, p, a, 2.0);
    assert_eq!(publish(&mut g, p, a, 3.0).dropped, 1, "2.0 was evicted");
    g.run_until_idle(100);
    let out = g.latest(avg).unwrap().unwrap();
    assert_eq!(out.value, Value::Float(2.0));
    assert!(out.meta.taints.contains(Taint::DeliveryDropped));
    assert_eq!(out.meta.parents.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![1, 3]);
    assert!(!g.latest(a).unwrap().unwrap().meta.taints.contains(Taint::DeliveryDropped), "the source route itself is clean");
}

/// A lineage walk goes back through two nodes to the inputs, breadth first, and names the
/// ancestors its routes no longer retain.
#[test]
fn lineage_walks_back_and_names_forgotten_ancestors() {
    let mut g = Graph::new_virtual();
    let short = RouteOptions { history: 1, retain: 1, ..RouteOptions::default() };
    let a = g.declare_route(route("n", "a"), float(), short).unwrap();
    let b = floats(&mut g, "n", "b");
    let c = floats(&mut g, "n", "c");
    g.add_node("avg", mean_of(2), &[(a, EdgePolicy::INLINE)], &[b]).unwrap();
    g.connect("fwd", b, c, EdgePolicy::INLINE).unwrap();
    let p = g.producer("n").unwrap();
    for v in [1.0, 2.0, 3.0] {
        publish(&mut g, p, a, v);
    }
    let last = g.latest(c).unwrap().unwrap().meta.id;
    let (found, missing) = g.lineage(last, 100);
    assert_eq!(ids(&found, &g), vec!["c@2", "b@2", "a@3"]);
    assert_eq!(missing, vec![EnvelopeId { route: a, seq: 2 }], "a keeps only its latest envelope");
    let (bounded, _) = g.lineage(last, 2);
    assert_eq!(bounded.len(), 2, "the walk stops at nodes_max");
}
