//! Where the batch moving-average pipeline's time goes: `local_bench`'s workload built up one
//! stage at a time, each printed as events per second and nanoseconds per input event:
//!
//! - `publish`: publish_many into a route nobody consumes (the envelope and its history);
//! - `publish+count`: a native counting subscriber on that route;
//! - `publish+window`: the moving average of 3 (a count window) on it, its output unconsumed;
//! - `publish+window+count`: the whole `batch_mavg_rust` pipeline.
//!
//! `cargo run --release --example local_bench_parts [STAGE]` (docs/performance.md, issue 3).

use std::sync::Arc;
use std::time::Instant;

use manyfold_core::kernels::Aggregate;
use manyfold_runtime::graph::ops::{CountWindowOp, Extract, WindowEmit};
use manyfold_runtime::graph::{CountingSubscriber, EdgePolicy, Graph, RouteOptions};
use manyfold_runtime::route::{Layer, Plane, Route, Variant};
use manyfold_runtime::schema::{Schema, SchemaType};
use manyfold_runtime::value::Value;

const EVENTS: u64 = 2_000_000;
const STAGES: [&str; 4] = ["publish", "publish+count", "publish+window", "publish+window+count"];

/// Median events per second over five rounds of `EVENTS` for one stage.
fn run(stage: &str) -> f64 {
    let float = Arc::new(Schema::new("float", 1, SchemaType::Float));
    let mut g = Graph::new_virtual();
    let route = |owner: &str, stream: &str| Route::new(Plane::Read, Layer::Logical, owner, "env", stream, Variant::Meta, 1).unwrap();
    let input = g.declare_route(route("sensor", "temperature"), float.clone(), RouteOptions::default()).unwrap();
    let output = g.declare_route(route("avg", "temperature"), float, RouteOptions::default()).unwrap();
    if stage.contains("window") {
        let op = CountWindowOp::new(3, 1, Aggregate::Mean, WindowEmit::Value, Extract::Whole, None).unwrap();
        g.add_node("avg", Box::new(op), &[(input, EdgePolicy::INLINE)], &[output]).unwrap();
    }
    if stage.ends_with("count") {
        let counted = if stage.contains("window") { output } else { input };
        g.subscribe("count", counted, Box::new(CountingSubscriber::default()), EdgePolicy::INLINE).unwrap();
    }
    let producer = g.producer("sensor").unwrap();
    let mut rates = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let (n, err) = g.publish_many(producer, input, (0..EVENTS).map(|i| Value::Float(i as f64)));
        assert!(err.is_none() && n == EVENTS);
        rates.push(EVENTS as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    let chosen: Vec<String> = std::env::args().skip(1).collect();
    for stage in STAGES.iter().filter(|s| chosen.is_empty() || chosen.iter().any(|c| c == *s)) {
        let rate = run(stage);
        println!("{{\"stage\": \"{stage}\", \"events_per_s\": {rate:.0}, \"ns_per_event\": {:.0}}}", 1e9 / rate);
    }
}
