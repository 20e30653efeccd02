//! The batch moving-average pipeline in Rust alone (no Python): publish floats, a built-in
//! moving average over 3 values, a native counting subscriber. Prints events per second, fused
//! (`publish_floats`, 100k floats per call) and unfused (fusion off: the per-event loop), the
//! two alternating round by round. `benchmarks/local_runtime.py` runs it beside the Python API.

use std::sync::Arc;
use std::time::Instant;

use manyfold_core::kernels::Aggregate;
use manyfold_runtime::graph::ops::{CountWindowOp, Extract, WindowEmit};
use manyfold_runtime::graph::{CountingSubscriber, EdgePolicy, Graph, RouteOptions};
use manyfold_runtime::route::{Layer, Plane, Route, Variant};
use manyfold_runtime::schema::{Schema, SchemaType};

fn main() {
    let events: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let values: Vec<f64> = (0..events).map(|i| i as f64).collect();
    let (mut fused, mut unfused) = (Vec::new(), Vec::new());
    let mut outputs = (0, 0);
    for _ in 0..5 {
        let (rate, n) = run(&values, true);
        fused.push(rate);
        outputs.0 = n;
        let (rate, n) = run(&values, false);
        unfused.push(rate);
        outputs.1 = n;
    }
    for (name, mut rates, n) in [("batch_mavg_rust", fused, outputs.0), ("batch_mavg_rust_unfused", unfused, outputs.1)] {
        rates.sort_by(f64::total_cmp);
        println!("{{\"workload\": \"{name}\", \"events_per_s\": {:.0}, \"outputs\": {n}}}", rates[rates.len() / 2]);
    }
}

/// One round on a fresh graph: events per second, and the outputs counted.
fn run(values: &[f64], fusion: bool) -> (f64, u64) {
    let float = Arc::new(Schema::new("float", 1, SchemaType::Float));
    let mut g = Graph::new_virtual();
    g.set_fusion(fusion);
    let route = |owner: &str, stream: &str| Route::new(Plane::Read, Layer::Logical, owner, "env", stream, Variant::Meta, 1).unwrap();
    let input = g.declare_route(route("sensor", "temperature"), float.clone(), RouteOptions::default()).unwrap();
    let output = g.declare_route(route("avg", "temperature"), float, RouteOptions::default()).unwrap();
    let op = CountWindowOp::new(3, 1, Aggregate::Mean, WindowEmit::Value, Extract::Whole, None).unwrap();
    g.add_node("avg", Box::new(op), &[(input, EdgePolicy::INLINE)], &[output]).unwrap();
    let counter = CountingSubscriber::default();
    let count = counter.count.clone();
    g.subscribe("count", output, Box::new(counter), EdgePolicy::INLINE).unwrap();
    let producer = g.producer("sensor").unwrap();
    let start = Instant::now();
    for chunk in values.chunks(100_000) {
        let (n, err) = g.publish_floats(producer, input, chunk);
        assert!(err.is_none() && n == chunk.len() as u64);
    }
    let rate = values.len() as f64 / start.elapsed().as_secs_f64();
    (rate, count.load(std::sync::atomic::Ordering::Relaxed))
}
