//! The batch moving-average pipeline in Rust alone (no Python): publish floats, a built-in
//! moving average over 3 values, a native counting subscriber. Prints events per second.
//! `benchmarks/local_runtime.py` runs it beside the Python API.

use std::sync::Arc;
use std::time::Instant;

use manyfold_core::kernels::Aggregate;
use manyfold_runtime::graph::ops::{CountWindowOp, Extract, WindowEmit};
use manyfold_runtime::graph::{CountingSubscriber, EdgePolicy, Graph, RouteOptions};
use manyfold_runtime::route::{Layer, Plane, Route, Variant};
use manyfold_runtime::schema::{Schema, SchemaType};
use manyfold_runtime::value::Value;

fn main() {
    let events: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let float = Arc::new(Schema::new("float", 1, SchemaType::Float));
    let mut g = Graph::new_virtual();
    let route = |owner: &str, stream: &str| Route::new(Plane::Read, Layer::Logical, owner, "env", stream, Variant::Meta, 1).unwrap();
    let input = g.declare_route(route("sensor", "temperature"), float.clone(), RouteOptions::default()).unwrap();
    let output = g.declare_route(route("avg", "temperature"), float, RouteOptions::default()).unwrap();
    let op = CountWindowOp::new(3, 1, Aggregate::Mean, WindowEmit::Value, Extract::Whole, None).unwrap();
    g.add_node("avg", Box::new(op), &[(input, EdgePolicy::INLINE)], &[output]).unwrap();
    let counter = CountingSubscriber::default();
    let count = counter.count.clone();
    g.subscribe("count", output, Box::new(counter), EdgePolicy::INLINE).unwrap();
    let producer = g.producer("sensor").unwrap();
    let mut rates = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let (n, err) = g.publish_many(producer, input, (0..events).map(|i| Value::Float(i as f64)));
        assert!(err.is_none() && n == events);
        rates.push(events as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "{{\"workload\": \"batch_mavg_rust\", \"events_per_s\": {:.0}, \"outputs\": {}}}",
        rates[rates.len() / 2],
        count.load(std::sync::atomic::Ordering::Relaxed)
    );
}
