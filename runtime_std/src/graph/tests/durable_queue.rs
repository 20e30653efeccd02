//! The DurableQueue operator over an in-memory store: delivery, acks, retries, dead letters,
//! dedup, capacity, grouped commits and replay after a "restart" (a new operator over the same
//! store). The kill -9 tests with SQLite are in tests/durable (Python, real processes).

use manyfold_core::mailbox::Overflow;
use manyfold_core::taint::Taint;

use super::*;
use crate::graph::durable_queue::{DurableQueue, MemoryQueueStore, QueueConfig};
use crate::schema::RecordType;

fn job() -> Arc<Schema> {
    Arc::new(Schema::new("Job", 1, SchemaType::Record(Arc::new(RecordType { name: "Job".into(), fields: vec![("n".into(), SchemaType::Int), ("key".into(), SchemaType::Text)] }))))
}

fn delivery() -> Arc<Schema> {
    Arc::new(Schema::new(
        "Delivery[Job]",
        1,
        SchemaType::Record(Arc::new(RecordType {
            name: "Delivery".into(),
            fields: vec![("id".into(), SchemaType::Int), ("attempt".into(), SchemaType::Int), ("body".into(), job().ty.clone())],
        })),
    ))
}

fn cfg() -> QueueConfig {
    QueueConfig {
        capacity: 100,
        overflow: Overflow::Reject,
        visibility_timeout_us: 1_000,
        retry_max: 2,
        dedup_key: None,
        dedup_window: 0,
        inflight_max: 100,
        commit_every: 1,
        sync: "full".into(),
    }
}

struct Q {
    g: Graph,
    ingress: RouteIdx,
    acks: RouteIdx,
    nacks: RouteIdx,
    p: ProducerIdx,
    out: Seen,
    dead: Seen,
}

fn queue(cfg: QueueConfig, store: &MemoryQueueStore) -> Q {
    queue_over(cfg, Box::new(store.clone()))
}

fn queue_over(cfg: QueueConfig, store: Box<dyn crate::graph::durable_queue::QueueStore>) -> Q {
    let mut g = Graph::new_virtual();
    let ingress = g.declare_route(route("app", "jobs"), job(), RouteOptions::default()).unwrap();
    let acks = g.declare_route(route("app", "acks"), int(), RouteOptions::default()).unwrap();
    let nacks = g.declare_route(route("app", "nacks"), int(), RouteOptions::default()).unwrap();
    let deliveries = g.declare_route(route("q", "deliveries"), delivery(), RouteOptions::default()).unwrap();
    let dead = g.declare_route(route("q", "dead"), delivery(), RouteOptions::default()).unwrap();
    let op = DurableQueue::open(cfg, store, job().ty.clone()).unwrap();
    let inline = EdgePolicy::default();
    g.add_node("q", Box::new(op), &[(ingress, inline), (acks, inline), (nacks, inline)], &[deliveries, dead]).unwrap();
    let out = collect(&mut g, "out", deliveries, inline);
    let dead = collect(&mut g, "dead_out", dead, inline);
    let p = g.producer("app").unwrap();
    Q { g, ingress, acks, nacks, p, out, dead }
}

fn body(n: i64, key: &str) -> Value {
    Value::Record(Arc::from(vec![Value::Int(n), Value::Text(key.into())]))
}

impl Q {
    fn append(&mut self, n: i64, key: &str) -> Result<PublishReceipt, GraphError> {
        self.g.publish(self.p, self.ingress, body(n, key), &PublishOptions::default())
    }
    fn ack(&mut self, id: i64) {
        self.g.publish(self.p, self.acks, Value::Int(id), &PublishOptions::default()).unwrap();
    }
    fn nack(&mut self, id: i64) {
        self.g.publish(self.p, self.nacks, Value::Int(id), &PublishOptions::default()).unwrap();
    }
    /// (id, attempt, n, duplicated) of every delivery so far.
    fn seen(seen: &Seen) -> Vec<(i64, i64, i64, bool)> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|e| {
                let f = |i: usize| match e.value.field(i) {
                    Some(Value::Int(v)) => *v,
                    _ => panic!("not an int"),
                };
                let n = match e.value.field(2).and_then(|b| b.field(0)) {
                    Some(Value::Int(v)) => *v,
                    _ => panic!("no body"),
                };
                (f(0), f(1), n, e.meta.taints.contains(Taint::DeliveryDuplicated))
            })
            .collect()
    }
    fn deliveries(&self) -> Vec<(i64, i64, i64, bool)> {
        Q::seen(&self.out)
    }
    fn counter(&self, name: &str) -> u64 {
        let info = self.g.nodes().into_iter().find(|n| n.name == "q").unwrap();
        info.counters.into_iter().find(|(n, _)| *n == name).map(|(_, v)| v).unwrap()
    }
    fn health(&self) -> Health {
        let node = self.g.node_index("q").unwrap();
        self.g.nodes[node.0 as usize].op.health().unwrap()
    }
}

/// Messages get ids from 1 without gaps and are delivered, in order, once the scheduler runs.
#[test]
fn delivers_in_id_order_once_started() {
    let store = MemoryQueueStore::default();
    let mut q = queue(cfg(), &store);
    for n in 0..3 {
        q.append(n, "k").unwrap();
    }
    assert!(q.deliveries().is_empty(), "deliveries start when the scheduler first runs");
    q.g.run_until_idle(1000);
    assert_eq!(q.deliveries(), vec![(1, 1, 0, false), (2, 1, 1, false), (3, 1, 2, false)]);
    q.append(3, "k").unwrap();
    assert_eq!(q.deliveries().last(), Some(&(4, 1, 3, false)), "once started, a committed append is delivered at once");
}

/// A delivery not acked within the visibility timeout is delivered again, attempt 2, tainted.
#[test]
fn visibility_timeout_redelivers_marked() {
    let store = MemoryQueueStore::default();
    let mut q = queue(cfg(), &store);
    q.g.run_until_idle(1000);
    q.append(7, "a").unwrap();
    q.append(8, "b").unwrap();
    q.ack(2);
    q.g.advance_to(999).unwrap();
    assert_eq!(q.deliveries().len(), 2);
    q.g.advance_to(1000).unwrap();
    assert_eq!(q.deliveries(), vec![(1, 1, 7, false), (2, 1, 8, false), (1, 2, 7, true)]);
    assert_eq!((q.counter("timed_out"), q.counter("redelivered"), q.counter("acked")), (1, 1, 1));
}

/// A nack redelivers at once; after retry_max retries the message goes to the dead letters.
#[test]
fn retries_then_dead_letters() {
    let store = MemoryQueueStore::default();
    let mut q = queue(cfg(), &store);
    q.g.run_until_idle(1000);
    q.append(1, "a").unwrap();
    q.nack(1);
    q.nack(1);
    assert_eq!(q.deliveries(), vec![(1, 1, 1, false), (1, 2, 1, true), (1, 3, 1, true)]);
    assert!(q.dead.lock().unwrap().is_empty());
    q.nack(1);
    assert_eq!(Q::seen(&q.dead), vec![(1, 3, 1, true)]);
    assert_eq!((q.counter("dead_lettered"), q.counter("unacked")), (1, 0));
    let h = q.health();
    assert_eq!(h.state, HealthState::Degraded, "{h:?}");
    assert!(h.why[0].contains("dead-lettered"), "{h:?}");
}

/// A new operator over the same store replays only the unacknowledged messages, marked as
/// possible duplicates, and keeps numbering after the last id.
#[test]
fn restart_replays_unacked_only() {
    let store = MemoryQueueStore::default();
    let mut q = queue(cfg(), &store);
    q.g.run_until_idle(1000);
    for n in 0..5 {
        q.append(n, "k").unwrap();
    }
    q.ack(1);
    q.ack(2);
    q.ack(4);
    q.g.run_until_idle(1000);
    drop(q);
    let mut q = queue(cfg(), &store);
    q.g.run_until_idle(1000);
    assert_eq!(q.deliveries(), vec![(3, 1, 2, true), (5, 1, 4, true)]);
    q.append(9, "k").unwrap();
    assert_eq!(q.deliveries().last(), Some(&(6, 1, 9, false)));
    assert_eq!(q.counter("replayed"), 2);
}

/// Attempts survive a restart, so the retry limit holds across crashes.
#[test]
fn attempts_survive_restart() {
    let store = MemoryQueueStore::default();
    let mut q = queue(cfg(), &store);
    q.g.run_until_idle(1000);
    q.append(1, "a").unwrap();
    q.nack(1);
    q.g.run_until_idle(1000);
    drop(q);
    let mut q = queue(cfg(), &store);
    q.g.run_until_idle(1000);
    assert_eq!(q.deliveries(), vec![(1, 3, 1, true)]);
    q.nack(1);
    assert_eq!(Q::seen(&q.dead).len(), 1);
}

/// A message whose key was seen in the dedup window is not appended again, even after a restart.
#[test]
fn dedup_by_key_within_window() {
    let store = MemoryQueueStore::default();
    let c = QueueConfig { dedup_key: Some((1, "key".into())), dedup_window: 2, ..cfg() };
    let mut q = queue(c.clone(), &store);
    q.g.run_until_idle(1000);
    q.append(1, "a").unwrap();
    q.append(2, "a").unwrap();
    q.ack(1);
    q.g.run_until_idle(1000);
    drop(q);
    let mut q = queue(c, &store);
    q.g.run_until_idle(1000);
    q.append(3, "a").unwrap();
    assert_eq!(q.counter("deduplicated"), 1, "the acked message's key is still in the window after a restart");
    q.append(4, "b").unwrap();
    q.append(5, "c").unwrap();
    q.append(6, "a").unwrap();
    assert_eq!(q.deliveries().iter().map(|d| d.2).collect::<Vec<_>>(), vec![4, 5, 6], "key a left the window of 2");
}

/// Full with reject: the publish is refused before it is recorded; with drop_newest the receipt
/// says dropped and the next delivery is tainted. Neither is silent.
#[test]
fn full_queue_rejects_or_counts_drops() {
    let store = MemoryQueueStore::default();
    let mut q = queue(QueueConfig { capacity: 2, ..cfg() }, &store);
    q.append(1, "a").unwrap();
    q.append(2, "b").unwrap();
    let err = q.append(3, "c").unwrap_err();
    assert_eq!(err.kind(), "rejected", "{}", err.message());
    assert_eq!(q.counter("refused"), 1);
    let h = q.health();
    assert_eq!(h.state, HealthState::Blocked);
    let store = MemoryQueueStore::default();
    let mut q = queue(QueueConfig { capacity: 2, overflow: Overflow::DropNewest, ..cfg() }, &store);
    q.append(1, "a").unwrap();
    q.append(2, "b").unwrap();
    let receipt = q.append(3, "c").unwrap();
    assert_eq!(receipt.dropped, 1);
    assert_eq!(q.counter("dropped"), 1);
    q.g.run_until_idle(1000);
    q.ack(1);
    q.append(4, "d").unwrap();
    let tainted: Vec<bool> = q.out.lock().unwrap().iter().map(|e| e.meta.taints.contains(Taint::DeliveryDropped)).collect();
    assert_eq!(tainted, vec![true, false, false], "the first delivery after the drop says so");
}

/// At most inflight_max deliveries await acks; an ack lets the next one out.
#[test]
fn inflight_max_bounds_deliveries() {
    let store = MemoryQueueStore::default();
    let mut q = queue(QueueConfig { inflight_max: 2, ..cfg() }, &store);
    q.g.run_until_idle(1000);
    for n in 0..4 {
        q.append(n, "k").unwrap();
    }
    assert_eq!(q.deliveries().len(), 2);
    q.ack(1);
    assert_eq!(q.deliveries().iter().map(|d| d.0).collect::<Vec<_>>(), vec![1, 2, 3]);
}

/// Acks ride along with the next append's commit, or commit when the scheduler next runs:
/// a steady append+ack stream costs one commit per append at commit_every 1.
#[test]
fn acks_ride_with_appends() {
    let store = MemoryQueueStore::default();
    let mut q = queue(cfg(), &store);
    q.g.run_until_idle(1000);
    for n in 1..=10 {
        q.append(n, "k").unwrap();
        q.ack(n);
    }
    assert_eq!(store.0.lock().unwrap().commits, 10);
    q.g.run_until_idle(1000);
    assert_eq!(store.0.lock().unwrap().commits, 11, "the last ack committed when the scheduler ran");
    assert_eq!(q.counter("unacked"), 0);
}

/// commit_every groups appends: a burst costs one commit, committed when the scheduler runs,
/// and nothing is delivered before its commit.
#[test]
fn commits_are_grouped() {
    let store = MemoryQueueStore::default();
    let mut q = queue(QueueConfig { commit_every: 64, ..cfg() }, &store);
    q.g.run_until_idle(1000);
    for n in 0..10 {
        q.append(n, "k").unwrap();
    }
    assert!(q.deliveries().is_empty());
    assert_eq!(store.0.lock().unwrap().commits, 0);
    q.g.run_until_idle(1000);
    assert_eq!(q.deliveries().len(), 10);
    assert_eq!(store.0.lock().unwrap().commits, 1);
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("manyfold-queue-{tag}-{}-{}", std::process::id(), fastrand::u64(..)))
}

fn sqlite(dir: &std::path::Path, sync: &str) -> Box<dyn crate::graph::durable_queue::QueueStore> {
    let dir = crate::store::StoreDir::open(dir).unwrap();
    crate::graph::durable_queue::open_store(Some(&dir), "q", "jobs", sync).unwrap()
}

/// Over a real SQLite store: acks, attempts and dedup keys survive reopening the file; only
/// unacknowledged messages come back, ids continue, and the log is compacted behind the checkpoint.
#[test]
fn sqlite_store_survives_reopen() {
    let dir = temp_dir("reopen");
    let c = QueueConfig { dedup_key: Some((1, "key".into())), dedup_window: 4, ..cfg() };
    let mut q = queue_over(c.clone(), sqlite(&dir, "full"));
    q.g.run_until_idle(1000);
    for n in 0..600 {
        q.append(n, &format!("k{n}")).unwrap();
        if n != 598 {
            q.ack(n + 1);
        }
    }
    q.nack(599);
    q.g.run_until_idle(1000);
    drop(q);
    let mut q = queue_over(c, sqlite(&dir, "full"));
    q.g.run_until_idle(1000);
    assert_eq!(q.deliveries(), vec![(599, 3, 598, true)], "only the unacked message, attempts kept");
    q.append(1000, "k599").unwrap();
    assert_eq!(q.counter("deduplicated"), 1);
    q.append(1001, "new").unwrap();
    assert_eq!(q.deliveries().last(), Some(&(601, 1, 1001, false)));
    let (file, _) = crate::store::StoreFile::open(dir.join("jobs.sqlite"), crate::store::StoreOptions::new(crate::store::Sync::Full), false).unwrap();
    let first = file.event_log("queue").unwrap().first_seq().unwrap().unwrap();
    assert!(first > 256, "records behind the checkpoint were discarded (first kept: {first})");
    let _ = std::fs::remove_dir_all(&dir);
}

/// No store directory: building the queue is a one-sentence error, not a crash.
#[test]
fn no_store_dir_is_a_clear_error() {
    let err = crate::graph::durable_queue::open_store(None, "image_jobs", "image_jobs", "full").err().unwrap();
    assert!(err.message().contains("node image_jobs (durable_queue) keeps durable state: give the graph a store directory"), "{}", err.message());
}

/// A store file that disappeared: the queue starts empty, says so in its health (degraded, with
/// the sentence) and counts it.
#[test]
fn a_missing_store_file_is_a_reported_loss() {
    let dir = temp_dir("missing");
    let mut q = queue_over(cfg(), sqlite(&dir, "full"));
    q.g.run_until_idle(1000);
    q.append(1, "a").unwrap();
    drop(q);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("jobs.sqlite{suffix}")));
    }
    let q = queue_over(cfg(), sqlite(&dir, "full"));
    let h = q.health();
    assert_eq!(h.state, HealthState::Degraded, "{h:?}");
    assert!(h.why.iter().any(|w| w.contains("is missing, though this directory created it")), "{h:?}");
    assert_eq!(q.counter("store_losses"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A message delivered before each of several crashes gains an attempt per restart, so one that
/// keeps crashing its consumer reaches the dead letters instead of looping forever.
#[test]
fn crash_loops_count_attempts() {
    let store = MemoryQueueStore::default();
    let mut q = queue(QueueConfig { retry_max: 1, ..cfg() }, &store);
    q.g.run_until_idle(1000);
    q.append(1, "a").unwrap();
    drop(q);
    let mut q = queue(QueueConfig { retry_max: 1, ..cfg() }, &store);
    q.g.run_until_idle(1000);
    assert_eq!(q.deliveries(), vec![(1, 1, 1, true)]);
    drop(q);
    let mut q = queue(QueueConfig { retry_max: 1, ..cfg() }, &store);
    q.g.run_until_idle(1000);
    assert_eq!(q.deliveries(), vec![(1, 2, 1, true)]);
    q.nack(1);
    assert_eq!(Q::seen(&q.dead), vec![(1, 2, 1, true)]);
}
