//! DurableQueue append+ack throughput beside the raw engine, in one process (no Python).
//! `benchmarks/durable_queue.py` runs it once per batch size and round.
//!
//! Usage: `durable_queue_bench DIR BATCH MESSAGES [ROUNDS] [full|normal]`. Raw and queue rounds
//! alternate; prints one JSON line of medians: `{"batch", "messages", "rounds", "sync",
//! "events_per_s", "raw_events_per_s", "p99_append_us", "raw_p99_append_us", "ratio"}` (ratio:
//! the median of the per-round queue/raw ratios).
//!
//! - queue: a `durable_queue` node (commit_every = BATCH) in a virtual-clock graph with a
//!   store directory; a producer appends MESSAGES 64-byte messages; a subscriber collects the
//!   delivered ids, and after every BATCH appends the producer acks all of them (acks ride along
//!   with the next commit). `p99_append_us` is over the append publish calls (the one in BATCH
//!   that commits is the slow one).
//! - raw: rusqlite alone on its own file, same WAL and synchronous level: per BATCH messages one
//!   transaction inserting BATCH rows `(seq, 64 bytes)` and deleting the BATCH rows of the batch
//!   before (their acks), with cached prepared statements.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use manyfold_core::mailbox::Overflow;
use manyfold_runtime::envelope::EnvelopeRef;
use manyfold_runtime::graph::durable_queue::{DurableQueue, QueueConfig};
use manyfold_runtime::graph::{EdgePolicy, Graph, OpFailure, PublishOptions, RouteOptions, Subscriber};
use manyfold_runtime::route::{Layer, Plane, Route, Variant};
use manyfold_runtime::schema::{RecordType, Schema, SchemaType};
use manyfold_runtime::value::Value;

const PAYLOAD_BYTES: usize = 64;

struct Ids(Arc<Mutex<Vec<i64>>>);

impl Subscriber for Ids {
    fn deliver(&mut self, envelope: &EnvelopeRef) -> Result<(), OpFailure> {
        if let Some(Value::Int(id)) = envelope.value.field(0) {
            self.0.lock().unwrap().push(*id);
        }
        Ok(())
    }
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1]
}

fn queue_run(dir: &Path, batch: usize, messages: usize, sync: &str) -> (f64, f64) {
    let job_ty = SchemaType::Record(Arc::new(RecordType { name: "Job".into(), fields: vec![("n".into(), SchemaType::Int), ("data".into(), SchemaType::Bytes)] }));
    let job = Arc::new(Schema::new("Job", 1, job_ty.clone()));
    let delivery = Arc::new(Schema::new(
        "Delivery[Job]",
        1,
        SchemaType::Record(Arc::new(RecordType {
            name: "Delivery".into(),
            fields: vec![("id".into(), SchemaType::Int), ("attempt".into(), SchemaType::Int), ("body".into(), job_ty.clone())],
        })),
    ));
    let int = Arc::new(Schema::new("int", 1, SchemaType::Int));
    let route = |owner: &str, stream: &str| Route::new(Plane::Read, Layer::Logical, owner, "bench", stream, Variant::Meta, 1).unwrap();
    let mut g = Graph::new_virtual();
    g.set_store_dir(dir.to_path_buf()).unwrap();
    let ingress = g.declare_route(route("app", "jobs"), job, RouteOptions::default()).unwrap();
    let acks = g.declare_route(route("app", "acks"), int, RouteOptions::default()).unwrap();
    let deliveries = g.declare_route(route("q", "deliveries"), delivery.clone(), RouteOptions::default()).unwrap();
    let dead = g.declare_route(route("q", "dead"), delivery, RouteOptions::default()).unwrap();
    let cfg = QueueConfig {
        capacity: messages + 1,
        overflow: Overflow::Reject,
        visibility_timeout_us: i64::MAX / 4,
        retry_max: 3,
        dedup_key: None,
        dedup_window: 0,
        inflight_max: (batch * 2).max(16),
        commit_every: batch,
        sync: sync.into(),
    };
    let store = manyfold_runtime::graph::durable_queue::open_store(g.store_dir(), "q", "queue", sync).unwrap();
    let op = DurableQueue::open(cfg, store, job_ty).unwrap();
    g.add_node("q", Box::new(op), &[(ingress, EdgePolicy::INLINE), (acks, EdgePolicy::INLINE)], &[deliveries, dead]).unwrap();
    let ids = Arc::new(Mutex::new(Vec::new()));
    g.subscribe("worker", deliveries, Box::new(Ids(ids.clone())), EdgePolicy::INLINE).unwrap();
    let producer = g.producer("app").unwrap();
    g.run_until_idle(1000);
    let payload: Arc<[u8]> = Arc::from(vec![7u8; PAYLOAD_BYTES]);
    let options = PublishOptions::default();
    let mut latencies = Vec::with_capacity(messages);
    let start = Instant::now();
    for n in 0..messages {
        let value = Value::Record(Arc::from(vec![Value::Int(n as i64), Value::Bytes(payload.clone())]));
        let t = Instant::now();
        g.publish(producer, ingress, value, &options).unwrap();
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
        if (n + 1) % batch == 0 {
            let done: Vec<i64> = std::mem::take(&mut *ids.lock().unwrap());
            for id in done {
                g.publish(producer, acks, Value::Int(id), &options).unwrap();
            }
        }
    }
    g.run_until_idle(1_000_000);
    let elapsed = start.elapsed().as_secs_f64();
    (messages as f64 / elapsed, p99(latencies))
}

fn raw_run(path: &Path, batch: usize, messages: usize, sync: &str) -> (f64, f64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", if sync == "full" { "FULL" } else { "NORMAL" }).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)").unwrap();
    let payload = vec![7u8; PAYLOAD_BYTES];
    let mut latencies = Vec::with_capacity(messages);
    let start = Instant::now();
    let mut seq = 0i64;
    conn.execute_batch("BEGIN").unwrap();
    for n in 0..messages {
        let t = Instant::now();
        seq += 1;
        conn.prepare_cached("INSERT INTO log (seq, data) VALUES (?1, ?2)").unwrap().execute(rusqlite::params![seq, payload]).unwrap();
        if (n + 1) % batch == 0 {
            // The acks of the batch before, then the commit.
            let mut delete = conn.prepare_cached("DELETE FROM log WHERE seq = ?1").unwrap();
            for acked in (seq - 2 * batch as i64 + 1).max(1)..=(seq - batch as i64) {
                delete.execute([acked]).unwrap();
            }
            drop(delete);
            conn.execute_batch("COMMIT; BEGIN").unwrap();
        }
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
    }
    conn.execute_batch("COMMIT").unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    (messages as f64 / elapsed, p99(latencies))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: durable_queue_bench DIR BATCH MESSAGES [ROUNDS] [full|normal]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[1]);
    let batch: usize = args[2].parse().expect("BATCH is a number");
    let messages: usize = args[3].parse().expect("MESSAGES is a number");
    let rounds: usize = args.get(4).map(|r| r.parse().expect("ROUNDS is a number")).unwrap_or(1).max(1);
    let sync = args.get(5).map(String::as_str).unwrap_or("full");
    std::fs::create_dir_all(&dir).unwrap();
    // Raw and queue rounds alternate, each on fresh files, so both see the same machine load.
    let (mut rates, mut p99s, mut raw_rates, mut raw_p99s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let tag = format!("{batch}-{}-{round}", std::process::id());
        let (raw_rate, raw_p99) = raw_run(&dir.join(format!("raw-{tag}.sqlite")), batch, messages, sync);
        let (rate, p99_us) = queue_run(&dir.join(format!("queue-{tag}")), batch, messages, sync);
        raw_rates.push(raw_rate);
        raw_p99s.push(raw_p99);
        rates.push(rate);
        p99s.push(p99_us);
    }
    let ratios: Vec<f64> = rates.iter().zip(&raw_rates).map(|(q, r)| q / r).collect();
    println!(
        "{{\"batch\": {batch}, \"messages\": {messages}, \"rounds\": {rounds}, \"sync\": \"{sync}\", \"events_per_s\": {:.0}, \"raw_events_per_s\": {:.0}, \"p99_append_us\": {:.1}, \"raw_p99_append_us\": {:.1}, \"ratio\": {:.2}}}",
        median(rates),
        median(raw_rates),
        median(p99s),
        median(raw_p99s),
        median(ratios)
    );
}
