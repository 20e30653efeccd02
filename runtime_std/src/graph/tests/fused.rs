//! The fused batch path (graph/fused.rs) against the per-event loop: twin graphs, one with
//! fusion off, fed the same seeded chunks and single publishes, must be identical in everything
//! observable: sequence numbers, taints seen, every retained envelope (value bits included),
//! lineage, latest, node, edge and producer stats, counters; and again after more events.

use std::sync::atomic::{AtomicU64, Ordering};

use manyfold_core::kernels::Aggregate;
use manyfold_core::taint::Taint;

use super::*;
use crate::graph::ops::{CountWindowOp, Extract, Forward, WindowEmit};

const AGGREGATES: [Aggregate; 5] = [Aggregate::Count, Aggregate::Sum, Aggregate::Mean, Aggregate::Min, Aggregate::Max];

/// A small deterministic generator (xorshift64*), so every run feeds the same values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Mostly ordinary floats; one in eight a special: NaN (two payloads), infinities, -0.0,
    /// subnormals, huge values that overflow a sum.
    fn value(&mut self) -> f64 {
        const SPECIAL: [f64; 9] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 5e-324, 1.5e-310, 1.7e308, -1.7e308, 0.1];
        let r = self.next();
        if r % 8 == 0 {
            let k = (r >> 8) as usize % (SPECIAL.len() + 1);
            return if k == SPECIAL.len() { f64::from_bits(0x7ff8_0000_0000_0001) } else { SPECIAL[k] };
        }
        ((r >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1000.0
    }

    fn values(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.value()).collect()
    }
}

/// The graph shapes under test; each returns the routes to compare and the counters.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// in -> window -> out -> counter (the `batch_mavg` shape).
    Window { size: usize, step: usize, aggregate: Aggregate },
    /// in -> window(3, 1, mean) -> a -> window(4, 2, sum) -> b -> counter.
    WindowWindow,
    /// in -> forward (adds a taint) -> a -> window(5, 1, max) -> b -> counter.
    ForwardWindow,
    /// in -> window(2, 1, sum) -> a; a -> counter; a -> window(3, 3, min) -> b -> counter.
    WindowCounterWindow,
}

struct Twin {
    g: Graph,
    producer: ProducerIdx,
    input: RouteIdx,
    routes: Vec<RouteIdx>,
    counters: Vec<Arc<AtomicU64>>,
}

fn window(size: usize, step: usize, aggregate: Aggregate) -> Box<dyn Operator> {
    Box::new(CountWindowOp::new(size, step, aggregate, WindowEmit::Value, Extract::Whole, None).unwrap())
}

fn counter(g: &mut Graph, name: &str, r: RouteIdx) -> Arc<AtomicU64> {
    let c = CountingSubscriber::default();
    let count = c.count.clone();
    g.subscribe(name, r, Box::new(c), EdgePolicy::INLINE).unwrap();
    count
}

fn build(shape: Shape, options: RouteOptions, fusion: bool) -> Twin {
    let mut g = Graph::new_virtual();
    g.set_fusion(fusion);
    let input = g.declare_route(route("sensor", "x"), float(), options).unwrap();
    let mut routes = vec![input];
    let mut counters = Vec::new();
    let node = |g: &mut Graph, name: &str, op: Box<dyn Operator>, from: RouteIdx| {
        let out = g.declare_route(route(name, "out"), float(), options).unwrap();
        g.add_node(name, op, &[(from, EdgePolicy::INLINE)], &[out]).unwrap();
        out
    };
    match shape {
        Shape::Window { size, step, aggregate } => {
            let out = node(&mut g, "w", window(size, step, aggregate), input);
            counters.push(counter(&mut g, "count", out));
            routes.push(out);
        }
        Shape::WindowWindow => {
            let a = node(&mut g, "w1", window(3, 1, Aggregate::Mean), input);
            let b = node(&mut g, "w2", window(4, 2, Aggregate::Sum), a);
            counters.push(counter(&mut g, "count", b));
            routes.extend([a, b]);
        }
        Shape::ForwardWindow => {
            let a = node(&mut g, "fwd", Box::new(Forward { added: TaintSet::EMPTY.with(Taint::OrderPossiblyOutOfOrder) }), input);
            let b = node(&mut g, "w", window(5, 1, Aggregate::Max), a);
            counters.push(counter(&mut g, "count", b));
            routes.extend([a, b]);
        }
        Shape::WindowCounterWindow => {
            let a = node(&mut g, "w1", window(2, 1, Aggregate::Sum), input);
            counters.push(counter(&mut g, "count_a", a));
            let b = node(&mut g, "w2", window(3, 3, Aggregate::Min), a);
            counters.push(counter(&mut g, "count_b", b));
            routes.extend([a, b]);
        }
    }
    let producer = g.producer("sensor").unwrap();
    Twin { g, producer, input, routes, counters }
}

/// One envelope as comparable text: every metadata field and the value's bits.
fn describe(e: &EnvelopeRef) -> String {
    let bits = match e.value {
        Value::Float(x) => format!("{:016x}", x.to_bits()),
        ref other => format!("{other:?}"),
    };
    format!("{:?} elided={} value={bits}", e.meta, e.parents_elided)
}

/// Everything observable about the twin, as text (so a difference prints readably).
fn observe(t: &Twin) -> Vec<String> {
    let g = &t.g;
    let mut out = Vec::new();
    for r in &t.routes {
        out.push(format!("route {} seq={} taints={:?}", r.0, g.route_seq(*r).unwrap(), g.route_taints(*r).unwrap()));
        out.extend(g.retained(*r).iter().map(describe));
        out.push(format!("latest {:?}", g.latest(*r).unwrap().map(|e| describe(&e))));
        out.extend(g.replay(*r).unwrap().iter().map(|e| format!("replay {}", describe(e))));
        if let Some(last) = g.latest(*r).unwrap() {
            let (found, missing) = g.lineage(last.meta.id, 64);
            out.push(format!("lineage {:?} missing {missing:?}", found.iter().map(|e| e.meta.id).collect::<Vec<_>>()));
        }
    }
    out.extend(g.nodes().iter().map(|n| format!("{n:?}")));
    out.extend(g.edges().iter().map(|e| format!("{e:?}")));
    out.extend(g.mailboxes().iter().map(|m| format!("mailbox {} depth={} {:?} stalled={}", m.name, m.depth, m.counters, m.stalled)));
    out.extend(t.counters.iter().map(|c| format!("counter {}", c.load(Ordering::Relaxed))));
    out.push(format!("published {}", g.producer_published(t.producer)));
    out
}

fn assert_same(fused: &Twin, plain: &Twin, what: &str) {
    let (a, b) = (observe(fused), observe(plain));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "{what}");
    }
    assert_eq!(a.len(), b.len(), "{what}");
}

/// Feeds both twins the same steps: batches of the given sizes, each followed by a few single
/// publishes (one tainted, so windows hold mixed taints when the next batch comes), then
/// compares; then 9 single publishes more (a whole window of the largest size) and compares.
fn run_twins(shape: Shape, options: RouteOptions, chunks: &[usize], seed: u64) -> (u64, u64) {
    let mut fused = build(shape, options, true);
    let mut plain = build(shape, options, false);
    let mut rng = Rng(seed);
    let tainted = PublishOptions { taints: TaintSet::EMPTY.with(Taint::TrustUnverified), ..PublishOptions::default() };
    for (k, n) in chunks.iter().enumerate() {
        let values = rng.values(*n);
        for t in [&mut fused, &mut plain] {
            let (count, err) = t.g.publish_floats(t.producer, t.input, &values);
            assert!(err.is_none() && count == *n as u64);
        }
        let singles = rng.values(k % 3);
        for (i, v) in singles.iter().enumerate() {
            let options = if i == 0 { tainted } else { PublishOptions::default() };
            for t in [&mut fused, &mut plain] {
                t.g.publish(t.producer, t.input, Value::Float(*v), &options).unwrap();
            }
        }
        assert_same(&fused, &plain, &format!("{shape:?} after chunk {k} of {n}"));
    }
    for v in rng.values(9) {
        for t in [&mut fused, &mut plain] {
            publish(&mut t.g, t.producer, t.input, v);
        }
    }
    assert_same(&fused, &plain, &format!("{shape:?} after the last singles"));
    assert_eq!(plain.g.fusion_stats().0, 0);
    fused.g.fusion_stats()
}

fn small_chunks(size: usize) -> Vec<usize> {
    let retain = RETAIN_DEFAULT;
    vec![0, 1, size - 1, size, 1, retain - 1, retain, retain + 1, 3, size - 1, 0, 2 * retain + 5]
}

/// Every window size 1..8, every step, every aggregate: fused equals per-event, bit for bit,
/// and the fused path really ran.
#[test]
fn windows_of_every_size_step_and_aggregate_match_per_event() {
    for size in 1..=8 {
        for step in 1..=size {
            for (a, aggregate) in AGGREGATES.into_iter().enumerate() {
                let seed = (size * 100 + step * 10 + a) as u64 + 1;
                let (fused, unfused) = run_twins(Shape::Window { size, step, aggregate }, RouteOptions::default(), &small_chunks(size), seed);
                assert!(fused > 0 && unfused == 0, "fusion never ran: {fused} {unfused}");
            }
        }
    }
}

/// Large chunks (100k) with singles between them match per-event on the moving average.
#[test]
fn large_chunks_match_per_event() {
    run_twins(Shape::Window { size: 3, step: 1, aggregate: Aggregate::Mean }, RouteOptions::default(), &[100_000, 1, 100_000, 7], 42);
    run_twins(Shape::Window { size: 8, step: 3, aggregate: Aggregate::Sum }, RouteOptions::default(), &[100_000, 2, 99_999], 43);
}

/// Chains (window -> window, forward -> window, window -> counter + window) match per-event.
#[test]
fn chains_match_per_event() {
    for shape in [Shape::WindowWindow, Shape::ForwardWindow, Shape::WindowCounterWindow] {
        let (fused, _) = run_twins(shape, RouteOptions::default(), &small_chunks(5), 7);
        assert!(fused > 0);
        run_twins(shape, RouteOptions::default(), &[100_000, 3, 50_001], 8);
    }
}

/// A retain below and above the chunk sizes keeps exactly the envelopes per-event keeps.
#[test]
fn retain_below_and_above_the_chunk_matches_per_event() {
    let short = RouteOptions { history: 2, retain: 4, ..RouteOptions::default() };
    let long = RouteOptions { history: 8, retain: 5000, ..RouteOptions::default() };
    for options in [short, long] {
        for shape in [Shape::Window { size: 4, step: 2, aggregate: Aggregate::Mean }, Shape::WindowWindow] {
            run_twins(shape, options, &[0, 1, 3, 4, 5, 4999, 5000, 5001, 2, 12_000], 9);
        }
    }
}

/// An ephemeral input route stamps DetNonReplayable on every envelope, fused or not.
#[test]
fn ephemeral_route_matches_per_event() {
    let build_eph = |fusion: bool| {
        let mut g = Graph::new_virtual();
        g.set_fusion(fusion);
        let eph = Route::new(Plane::Read, Layer::Ephemeral, "sensor", "test", "x", Variant::Meta, 1).unwrap();
        let input = g.declare_route(eph, float(), RouteOptions::default()).unwrap();
        let out = g.declare_route(route("w", "out"), float(), RouteOptions::default()).unwrap();
        g.add_node("w", window(3, 1, Aggregate::Mean), &[(input, EdgePolicy::INLINE)], &[out]).unwrap();
        let c = counter(&mut g, "count", out);
        let producer = g.producer("sensor").unwrap();
        Twin { g, producer, input, routes: vec![input, out], counters: vec![c] }
    };
    let (mut fused, mut plain) = (build_eph(true), build_eph(false));
    let values = Rng(5).values(1000);
    for t in [&mut fused, &mut plain] {
        t.g.publish_floats(t.producer, t.input, &values);
    }
    assert_same(&fused, &plain, "ephemeral");
    assert!(fused.g.route_taints(fused.routes[1]).unwrap().contains(Taint::DetNonReplayable));
    assert_eq!(fused.g.fusion_stats(), (1, 0));
}

/// What cannot take a column (an audited route, a subscriber that reads envelopes, a mailbox,
/// an epoch edge, a keyed window) sends the batch through the per-event loop: same results,
/// and the fused path never ran.
#[test]
fn fallbacks_take_the_per_event_loop_with_the_same_results() {
    type Extra = fn(&mut Graph, RouteIdx, RouteIdx);
    let audited: Extra = |_, _, _| {};
    let reader: Extra = |g, _, out| {
        collect(g, "reader", out, EdgePolicy::INLINE);
    };
    let mailboxed: Extra = |g, _, out| {
        collect(g, "mb", out, mailbox(4, Overflow::DropOldest));
    };
    let epoch: Extra = |g, input, _| {
        collect(g, "ep", input, EdgePolicy { mailbox: None, epoch_boundary: true });
    };
    let keyed: Extra = |g, input, _| {
        let op = CountWindowOp::new(2, 1, Aggregate::Sum, WindowEmit::Value, Extract::Whole, Some(Extract::Whole)).unwrap();
        let out = g.declare_route(route("keyed", "out"), float(), RouteOptions::default()).unwrap();
        g.add_node("keyed", Box::new(op), &[(input, EdgePolicy::INLINE)], &[out]).unwrap();
    };
    for (name, extra, audit) in [("audit", audited, true), ("reader", reader, false), ("mailbox", mailboxed, false), ("epoch", epoch, false), ("keyed", keyed, false)] {
        let make = |fusion: bool| {
            let options = RouteOptions { audit, ..RouteOptions::default() };
            let mut t = build(Shape::Window { size: 3, step: 1, aggregate: Aggregate::Mean }, options, fusion);
            let out = t.routes[1];
            extra(&mut t.g, t.input, out);
            t
        };
        let (mut fused, mut plain) = (make(true), make(false));
        let mut rng = Rng(11);
        for n in [0, 5, 300, 1] {
            let values = rng.values(n);
            for t in [&mut fused, &mut plain] {
                t.g.publish_floats(t.producer, t.input, &values);
            }
            assert_same(&fused, &plain, name);
        }
        assert_eq!(fused.g.fusion_stats().0, 0, "{name} was fused");
        if audit {
            assert_eq!(fused.g.audit_of(fused.input).len(), plain.g.audit_of(plain.input).len());
        }
    }
}

/// Wiring a reader after fused batches turns fusion off for the next batch (the plan follows
/// the topology), and results still match.
#[test]
fn plan_follows_topology_changes() {
    let shape = Shape::Window { size: 3, step: 1, aggregate: Aggregate::Mean };
    let (mut fused, mut plain) = (build(shape, RouteOptions::default(), true), build(shape, RouteOptions::default(), false));
    let values = Rng(3).values(500);
    for t in [&mut fused, &mut plain] {
        t.g.publish_floats(t.producer, t.input, &values);
    }
    let seen = collect(&mut fused.g, "late", fused.routes[1], EdgePolicy::INLINE);
    collect(&mut plain.g, "late", plain.routes[1], EdgePolicy::INLINE);
    for t in [&mut fused, &mut plain] {
        t.g.publish_floats(t.producer, t.input, &values);
    }
    assert_same(&fused, &plain, "after wiring a reader");
    assert_eq!(fused.g.fusion_stats(), (1, 1));
    assert_eq!(seen.lock().unwrap().len(), 500);
}

/// A batch on a route the producer does not own is refused before anything is recorded.
#[test]
fn refused_batch_records_nothing() {
    let mut t = build(Shape::Window { size: 3, step: 1, aggregate: Aggregate::Mean }, RouteOptions::default(), true);
    let other = t.g.producer("intruder").unwrap();
    let (n, err) = t.g.publish_floats(other, t.input, &[1.0, 2.0, 3.0]);
    assert_eq!(n, 0);
    assert!(matches!(err, Some(GraphError::NotOwner(_))));
    assert_eq!(t.g.route_seq(t.input).unwrap(), 0);
}
