//! Two runtime nodes linked over loopback (UDP or TCP), with no Python: the Rust-only figure
//! beside `benchmarks/edge_link.py`. Both nodes run in this process (so they share one clock):
//! node `a` hosts partition `a`, whose route a thread publishes with `publish_many` in chunks
//! (each value the nanoseconds since a shared origin, a float64: 8 bytes); node `b` hosts
//! partition `b`, where a Rust subscriber records each envelope's one-way latency.
//!
//! ```text
//! cargo run --release -p manyfold-runtime --example edge_bench -- MANIFEST udp|tcp [EVENTS] [CHUNK] [LATENCY_EVENTS] [GAP_US] [QUEUE_DEPTH]
//! ```
//! The manifest is the one `benchmarks/edge_link.py` writes (partitions `a` and `b`, link `ab`,
//! route `read.raw.a.bench.stamp.event.v1` forwarded to `read.raw.b.bench.stamp.event.v1`).
//! Prints one JSON line: throughput (events received / (last receive - first send)), events lost,
//! and p50/p99 latency of single events sent `GAP_US` apart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use manyfold_runtime::envelope::EnvelopeRef;
use manyfold_runtime::graph::factory::NoCallables;
use manyfold_runtime::graph::{EdgePolicy, Graph, OpFailure, Subscriber};
use manyfold_runtime::manifest;
use manyfold_runtime::node::{Dial, GraphHost, Node, NodeOptions, NodePlan};
use manyfold_runtime::route::Route;
use manyfold_runtime::shared::SharedGraph;
use manyfold_runtime::value::Value;
use parking_lot::Mutex;

const SOURCE: &str = "read.raw.a.bench.stamp.event.v1";
const INBOUND: &str = "read.raw.b.bench.stamp.event.v1";

#[derive(Default)]
struct Record {
    sent: Vec<i64>,
    recv: Vec<i64>,
}

struct Recorder {
    origin: Instant,
    record: Arc<Mutex<Record>>,
}

impl Subscriber for Recorder {
    fn deliver(&mut self, envelope: &EnvelopeRef) -> Result<(), OpFailure> {
        let now = self.origin.elapsed().as_nanos() as i64;
        if let Value::Float(sent) = envelope.value {
            let mut r = self.record.lock();
            r.sent.push(sent as i64);
            r.recv.push(now);
        }
        Ok(())
    }
}

fn load(bytes: &[u8], partition: &str) -> (Arc<SharedGraph>, NodePlan) {
    let hosted = vec![partition.to_string()];
    let plan = NodePlan::new(bytes, &hosted).expect("the manifest can be hosted");
    let mut graph = Graph::new_wall();
    manifest::load(&mut graph, &plan.cbor, Some(&hosted), &mut Arc::new, &mut NoCallables, &mut |_, _, _| {}, &mut |_| {}).expect("the manifest loads");
    (Arc::new(SharedGraph::new(graph)), plan)
}

/// Waits until `n` events arrived or none arrived for a second (bounded by 60 s).
fn wait(record: &Mutex<Record>, n: usize) -> usize {
    let end = Instant::now() + Duration::from_secs(60);
    let (mut last, mut since) = (0, Instant::now());
    loop {
        let got = record.lock().recv.len();
        if got >= n || Instant::now() > end {
            return got;
        }
        if got != last {
            (last, since) = (got, Instant::now());
        } else if since.elapsed() > Duration::from_secs(1) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64 + 0.5).round() as usize).saturating_sub(1).min(sorted.len() - 1);
    sorted[i]
}

fn take(record: &Mutex<Record>) -> (usize, f64, f64, f64) {
    let r = std::mem::take(&mut *record.lock());
    if r.recv.is_empty() {
        return (0, 0.0, 0.0, 0.0);
    }
    let mut lat: Vec<f64> = r.sent.iter().zip(&r.recv).map(|(s, v)| (v - s) as f64 / 1e3).collect();
    lat.sort_by(f64::total_cmp);
    let first = r.sent.iter().copied().min().unwrap_or(0);
    let span = (r.recv[r.recv.len() - 1] - first) as f64 / 1e9;
    (r.recv.len(), r.recv.len() as f64 / span, percentile(&lat, 0.5), percentile(&lat, 0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: edge_bench MANIFEST udp|tcp [EVENTS] [CHUNK] [LATENCY_EVENTS] [GAP_US] [QUEUE_DEPTH]");
    let transport = args.get(2).map_or("udp", String::as_str);
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (events, chunk, latency_events, gap_us) = (arg(3, 1_000_000), arg(4, 1000), arg(5, 5000), arg(6, 200));
    let queue_depth = arg(7, manyfold_runtime::node::QUEUE_DEPTH_DEFAULT as u64) as usize;
    let bytes = std::fs::read(path).expect("the manifest file");
    let origin = Instant::now();
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();

    let (graph_b, plan_b) = load(&bytes, "b");
    let record = Arc::new(Mutex::new(Record::default()));
    {
        let mut g = graph_b.lock();
        let inbound = g.route_index(&INBOUND.parse::<Route>().unwrap()).unwrap();
        g.subscribe("bench_recorder", inbound, Box::new(Recorder { origin, record: record.clone() }), EdgePolicy::INLINE).unwrap();
    }
    let mut options = NodeOptions::new("b", 2, vec!["b".into()], local);
    options.queue_depth_max = queue_depth;
    let node_b = Node::start(graph_b.clone(), plan_b, options).expect("node b starts");
    let (graph_a, plan_a) = load(&bytes, "a");
    let mut options = NodeOptions::new("a", 1, vec!["a".into()], local);
    options.queue_depth_max = queue_depth;
    let peer = node_b.listen_addr();
    options.dial.push(("ab".into(), if transport == "tcp" { Dial::Tcp(peer) } else { Dial::Udp(peer) }));
    let node_a = Node::start(graph_a.clone(), plan_a, options).expect("node a starts");
    let (producer, source) = {
        let mut g = graph_a.lock();
        (g.producer("a").unwrap(), g.route_index(&SOURCE.parse::<Route>().unwrap()).unwrap())
    };
    let stamp = || Value::Float(origin.elapsed().as_nanos() as f64);
    let publish = |values: &mut dyn Iterator<Item = Value>| {
        graph_a.with_graph(&mut |g| {
            let (_, e) = g.publish_many(producer, source, &mut *values);
            assert!(e.is_none(), "{e:?}");
        });
    };
    // Up: probe until the receiver saw an event (bounded: 20 s).
    let end = Instant::now() + Duration::from_secs(20);
    while record.lock().recv.is_empty() && Instant::now() < end {
        publish(&mut std::iter::once(stamp()));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!record.lock().recv.is_empty(), "the link never came up");
    let burst = |n: u64| {
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk);
            let v = stamp();
            publish(&mut (0..k).map(|_| v.clone()));
            left -= k;
        }
    };
    // Warm-up.
    burst(20_000);
    wait(&record, 20_000 + 1);
    take(&record);
    let t0 = Instant::now();
    burst(events);
    let publish_s = t0.elapsed().as_secs_f64();
    wait(&record, events as usize);
    let (received, rate, loaded_p50, loaded_p99) = take(&record);
    for _ in 0..latency_events {
        publish(&mut std::iter::once(stamp()));
        std::thread::sleep(Duration::from_micros(gap_us));
    }
    wait(&record, latency_events as usize);
    let (lat_received, _, p50, p99) = take(&record);
    let status = node_a.status();
    let dropped: u64 = status.links.iter().map(|l| l.dropped).sum();
    let (tx, rx) = (&status.links[0], &node_b.status().links[0]);
    let links = serde_json::json!({
        "a": {"events_tx": tx.events_tx, "retransmits": tx.retransmits, "unacked": tx.unacked},
        "b": {"events_rx": rx.events_rx, "gaps": rx.gaps, "duplicates": rx.duplicates, "rejected": rx.rejected, "bad_frames": rx.bad_frames},
    });
    println!(
        "{}",
        serde_json::json!({
            "transport": format!("{transport}-rust"), "events_per_s": rate.round(), "p50_us": (p50 * 10.0).round() / 10.0,
            "p99_us": (p99 * 10.0).round() / 10.0, "events": events, "chunk": chunk, "lost": events - received as u64,
            "queue_dropped": dropped, "publish_events_per_s": (events as f64 / publish_s).round(),
            "loaded_p50_us": loaded_p50.round(), "loaded_p99_us": loaded_p99.round(),
            "latency_events": latency_events, "latency_lost": latency_events - lat_received as u64, "gap_us": gap_us, "queue_depth": queue_depth, "links": links,
        })
    );
    node_a.request_stop();
    node_a.wait();
    node_b.request_stop();
    node_b.wait();
}
