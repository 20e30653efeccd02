//! The DurableQueue operator (kind `durable_queue`): an at-least-once work queue whose messages
//! survive a crash of the process that holds it.
//!
//! # Ports
//! - inputs: 0 ingress (the message type `T`), 1 acks (int ids), 2 nacks (int ids, optional);
//! - outputs: 0 deliveries, 1 dead letters, both `Delivery{id: int, attempt: int, body: T}`.
//!
//! # What it keeps, and where
//! Every accepted message is appended to an event log (ids from 1 without gaps; the messages of
//! one commit are one log record) and delivered only once that append is committed, so an id a
//! consumer saw can never be reused by another message after a crash. Acks and dead letters are recorded as "done"
//! marks; a checkpoint says below which id everything is done, so a restart reads only the tail.
//! Attempts of redelivered messages are kept so the retry limit holds across restarts.
//! Writes are grouped: `commit_every` appends and acks per commit, the rest committed when the
//! scheduler next runs (a timer at the current time), so a burst costs one commit.
//!
//! # Delivery rules
//! - at most `inflight_max` deliveries await an ack at once; the rest wait in id order;
//! - a delivery not acked within `visibility_timeout_us` of graph time, or nacked, is delivered
//!   again with `attempt + 1`, until `retry_max` retries are spent: then it goes to the dead
//!   letters output and is done;
//! - redeliveries, and every message replayed after a restart (it may have been delivered
//!   before), carry the `delivery_duplicated` taint;
//! - with `dedup_key`, a message whose key was seen among the last `dedup_window` appends is not
//!   appended again (counted `deduplicated`): that is the queue's dedup boundary;
//! - at most `capacity` unacknowledged messages are kept; when full, `reject` refuses the publish
//!   (its receipt says rejected) and `drop_newest` drops the message (counted as a loss, the next
//!   delivery tainted `delivery_dropped`). Nothing is dropped silently.
//!
//! The store is reached through [`QueueStore`], so the logic is tested over an in-memory store
//! (`MemoryQueueStore`, built for tests only) as well as the SQLite store the factory opens.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
#[cfg(test)]
use std::sync::Mutex;

use manyfold_core::envelope::{ClockDomain, EnvelopeId, EventTime};
use manyfold_core::mailbox::Overflow;
use manyfold_core::taint::{Taint, TaintSet};

use super::operator::{Health, HealthState, OpContext, OpFailure, Operator, Output, Param};
use crate::envelope::{EnvelopeRef, Parents};
use crate::schema::SchemaType;
use crate::value::{Key, Value};

/// Timer tokens.
const TOKEN_START: u64 = 0;
const TOKEN_FLUSH: u64 = 1;
const TOKEN_VISIBILITY: u64 = 2;

/// The most messages a queue may hold (its capacity bound).
pub const QUEUE_CAPACITY_MAX: usize = 10_000_000;
/// The most deliveries awaiting acks at once.
pub const INFLIGHT_MAX_MAX: usize = 1_000_000;
/// The largest dedup window (keys remembered).
pub const DEDUP_WINDOW_MAX: usize = 10_000_000;
/// The most appends and acks grouped in one commit.
pub const COMMIT_EVERY_MAX: usize = 65_536;
/// Store loss sentences kept for health (the count is kept in full).
const LOSSES_KEPT_MAX: usize = 16;

/// How a message left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Acknowledged by a consumer.
    Acked,
    /// Sent to the dead letters after its last retry.
    DeadLettered,
}

/// One commit: everything the queue changed since the last one, written atomically.
#[derive(Debug, Default, Clone)]
pub struct QueueBatch {
    /// New messages: (id, encoded record). Ids follow the last committed one without gaps.
    pub appends: Vec<(u64, Vec<u8>)>,
    /// Messages that left the queue (at or above `done_below`: below it the checkpoint says so).
    pub done: Vec<(u64, Done)>,
    /// Done marks written earlier that the checkpoint now covers: delete them.
    pub forget: Vec<u64>,
    /// Attempts written earlier of messages now done: delete them.
    pub forget_attempts: Vec<u64>,
    /// Delivery attempts of messages delivered more than once (kept for the retry limit).
    pub attempts: Vec<(u64, u32)>,
    /// Every id below this is done: done marks below it may be forgotten.
    pub done_below: u64,
    /// Log records below this id may be discarded (none of them is needed again).
    pub discard_below: u64,
}

/// What a store holds when the queue starts.
#[derive(Debug, Default, Clone)]
pub struct QueueState {
    /// The last id appended (0 when empty).
    pub last_id: u64,
    /// Every id below this is done.
    pub done_below: u64,
    /// Done marks at or above `done_below`.
    pub done: Vec<u64>,
    /// Known attempts of messages delivered more than once.
    pub attempts: Vec<(u64, u32)>,
    /// Records from `from_id` to `last_id` that the store still has, in id order.
    pub records: Vec<(u64, Vec<u8>)>,
    /// What the store lost while opening (a torn or missing file), as sentences.
    pub lost: Vec<String>,
}

/// Where a queue keeps its state: an event log of messages, done marks, attempts and a
/// checkpoint, written one batch per commit.
pub trait QueueStore: Send {
    /// Reads the queue's state; `from_id` is the lowest record id wanted.
    fn load(&mut self, records_from: u64) -> Result<QueueState, String>;
    /// Writes one batch atomically (all or nothing).
    fn commit(&mut self, batch: &QueueBatch) -> Result<(), String>;
    /// A short description (`memory`, `sqlite:<path>`), for parameters.
    fn describe(&self) -> String;
}

/// The contents of a [`MemoryQueueStore`], shared so a test can "restart" a queue over it.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryQueue {
    records: std::collections::BTreeMap<u64, Vec<u8>>,
    done: std::collections::BTreeMap<u64, Done>,
    attempts: HashMap<u64, u32>,
    done_below: u64,
    last_id: u64,
    /// Commits written.
    pub commits: u64,
}

/// A queue store in memory (tests): survives rebuilding the operator, not the process.
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub struct MemoryQueueStore(pub Arc<Mutex<MemoryQueue>>);

#[cfg(test)]
impl QueueStore for MemoryQueueStore {
    fn load(&mut self, records_from: u64) -> Result<QueueState, String> {
        let m = self.0.lock().map_err(|_| "the memory store was poisoned".to_string())?;
        Ok(QueueState {
            last_id: m.last_id,
            done_below: m.done_below,
            done: m.done.keys().copied().collect(),
            attempts: m.attempts.iter().map(|(k, v)| (*k, *v)).collect(),
            records: m.records.range(records_from.max(1)..).map(|(k, v)| (*k, v.clone())).collect(),
            lost: Vec::new(),
        })
    }
    fn commit(&mut self, batch: &QueueBatch) -> Result<(), String> {
        let mut m = self.0.lock().map_err(|_| "the memory store was poisoned".to_string())?;
        for (id, bytes) in &batch.appends {
            if *id != m.last_id + 1 {
                return Err(format!("append of id {id} after id {}: ids must follow without gaps", m.last_id));
            }
            m.records.insert(*id, bytes.clone());
            m.last_id = *id;
        }
        for (id, done) in &batch.done {
            m.done.insert(*id, *done);
        }
        for id in batch.forget.iter().chain(&batch.forget_attempts) {
            m.attempts.remove(id);
        }
        for (id, n) in &batch.attempts {
            m.attempts.insert(*id, *n);
        }
        m.done_below = m.done_below.max(batch.done_below);
        let below = m.done_below;
        m.done.retain(|id, _| *id >= below);
        let discard = batch.discard_below.min(m.last_id);
        m.records.retain(|id, _| *id >= discard);
        m.commits += 1;
        Ok(())
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

/// A queue's policies.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The most unacknowledged messages kept.
    pub capacity: usize,
    /// What a full queue does with a new message: `Reject` or `DropNewest`.
    pub overflow: Overflow,
    /// How long a delivery may wait for its ack before it is delivered again.
    pub visibility_timeout_us: i64,
    /// Redeliveries allowed before a message goes to the dead letters.
    pub retry_max: u32,
    /// The idempotency key: a field of the message record (index, name), if any.
    pub dedup_key: Option<(usize, String)>,
    /// How many recent appends the dedup boundary covers.
    pub dedup_window: usize,
    /// The most deliveries awaiting an ack at once.
    pub inflight_max: usize,
    /// Appends and acks per commit.
    pub commit_every: usize,
    /// The store's sync level, as a word (`full` or `normal`), for parameters.
    pub sync: String,
}

impl QueueConfig {
    /// Checks the bounds; the error is one sentence.
    pub fn check(&self) -> Result<(), String> {
        if self.capacity == 0 || self.capacity > QUEUE_CAPACITY_MAX {
            return Err(format!("a durable queue needs a capacity of 1 to {QUEUE_CAPACITY_MAX}, got {}", self.capacity));
        }
        if !matches!(self.overflow, Overflow::Reject | Overflow::DropNewest) {
            return Err("a durable queue's overflow must be reject or drop_newest (it never drops what it already holds)".into());
        }
        if self.visibility_timeout_us <= 0 {
            return Err(format!("visibility_timeout_us must be at least 1, got {}", self.visibility_timeout_us));
        }
        if self.inflight_max == 0 || self.inflight_max > INFLIGHT_MAX_MAX {
            return Err(format!("inflight_max must be 1 to {INFLIGHT_MAX_MAX}, got {}", self.inflight_max));
        }
        if self.commit_every == 0 || self.commit_every > COMMIT_EVERY_MAX {
            return Err(format!("commit_every must be 1 to {COMMIT_EVERY_MAX}, got {}", self.commit_every));
        }
        if self.dedup_window > DEDUP_WINDOW_MAX {
            return Err(format!("dedup_window must be at most {DEDUP_WINDOW_MAX}, got {}", self.dedup_window));
        }
        if self.dedup_key.is_some() && self.dedup_window == 0 {
            return Err("a dedup_key needs a dedup_window of at least 1".into());
        }
        Ok(())
    }
}

/// A message the queue holds (committed, not yet done).
struct Message {
    body: Value,
    event_time: EventTime,
    /// The envelope it came from, while this process saw it.
    origin: Option<(EnvelopeId, TaintSet)>,
    /// Deliveries so far (0 until first delivered).
    attempts: u32,
    /// Loaded from the store at start: it may have been delivered before the restart.
    replayed: bool,
}

/// Counters, for flow queries.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    appended: u64,
    delivered: u64,
    redelivered: u64,
    acked: u64,
    nacked: u64,
    timed_out: u64,
    dead_lettered: u64,
    deduplicated: u64,
    rejected: u64,
    dropped: u64,
    refused: u64,
    acks_unknown: u64,
    commits: u64,
    replayed: u64,
    store_failures: u64,
    store_losses: u64,
}

/// The DurableQueue operator. See the module documentation.
pub struct DurableQueue {
    cfg: QueueConfig,
    store: Box<dyn QueueStore>,
    body_ty: SchemaType,
    /// The last id given to a message (staged or committed).
    last_id: u64,
    /// Appended, not yet committed: the records (id, bytes) and the messages (id, message).
    staged_records: Vec<(u64, Vec<u8>)>,
    staged: Vec<(u64, Message)>,
    /// Done marks and attempts waiting for the next commit.
    staged_done: Vec<(u64, Done)>,
    staged_attempts: Vec<(u64, u32)>,
    staged_forget_attempts: Vec<u64>,
    /// Committed messages not yet done, by id.
    messages: HashMap<u64, Message>,
    /// Ids waiting for delivery, in order.
    ready: VecDeque<u64>,
    /// Ids delivered and awaiting an ack: id -> attempt.
    inflight: HashMap<u64, u32>,
    /// Visibility deadlines in the order set: (deadline, id, attempt). Stale ones are skipped.
    deadlines: VecDeque<(i64, u64, u32)>,
    visibility_timer_at: Option<i64>,
    flush_timer_set: bool,
    /// Done ids at or above `done_below`, and the checkpoint itself.
    done: BTreeSet<u64>,
    done_below: u64,
    /// The dedup window: key -> id, and keys in append order.
    dedup: HashMap<Key, u64>,
    dedup_order: VecDeque<Key>,
    /// Taints for the next delivery (a message was dropped since the last one).
    pending_taints: TaintSet,
    counts: Counts,
    /// Losses the store reported, and failures to commit (sentences, the newest kept).
    losses: VecDeque<String>,
    /// Replays happened at start (deliveries wait for the start timer).
    started: bool,
}

/// Encodes a log record: `[event time us, clock domain, body]` as CBOR.
fn encode_record(body: &Value, event_time: EventTime) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.size_hint());
    {
        let mut e = minicbor::Encoder::new(&mut out);
        let _ = e.array(3).and_then(|e| e.i64(event_time.time_us)).and_then(|e| e.u16(event_time.domain.0));
    }
    crate::node::codec::encode(body, &mut out);
    out
}

fn decode_record(ty: &SchemaType, bytes: &[u8]) -> Result<(Value, EventTime), String> {
    let mut d = minicbor::Decoder::new(bytes);
    let bad = |e: minicbor::decode::Error| format!("a queue record is not valid CBOR: {e}");
    if d.array().map_err(bad)? != Some(3) {
        return Err("a queue record is not a 3-item array".into());
    }
    let time_us = d.i64().map_err(bad)?;
    let domain = d.u16().map_err(bad)?;
    let body = crate::node::codec::decode(ty, &bytes[d.position()..])?;
    Ok((body, EventTime { time_us, domain: ClockDomain(domain) }))
}

impl DurableQueue {
    /// A queue over `store` carrying messages of type `body_ty`, restored from what the store
    /// holds (unacknowledged messages are delivered again once the graph runs).
    pub fn open(cfg: QueueConfig, mut store: Box<dyn QueueStore>, body_ty: SchemaType) -> Result<Self, String> {
        cfg.check()?;
        // Load twice would cost a read; load everything from the checkpoint or the dedup window,
        // whichever starts lower.
        let probe = store.load(u64::MAX)?;
        let mut records_from = probe.done_below.max(1);
        if cfg.dedup_key.is_some() {
            records_from = records_from.min(probe.last_id.saturating_sub(cfg.dedup_window as u64 - 1).max(1));
        }
        let state = store.load(records_from)?;
        let mut q = DurableQueue {
            cfg,
            store,
            body_ty,
            last_id: state.last_id,
            staged_records: Vec::new(),
            staged: Vec::new(),
            staged_done: Vec::new(),
            staged_attempts: Vec::new(),
            staged_forget_attempts: Vec::new(),
            messages: HashMap::new(),
            ready: VecDeque::new(),
            inflight: HashMap::new(),
            deadlines: VecDeque::new(),
            visibility_timer_at: None,
            flush_timer_set: false,
            done: state.done.iter().copied().collect(),
            done_below: state.done_below.max(1),
            dedup: HashMap::new(),
            dedup_order: VecDeque::new(),
            pending_taints: TaintSet::EMPTY,
            counts: Counts::default(),
            losses: VecDeque::new(),
            started: false,
        };
        for sentence in state.lost {
            q.note_loss(sentence);
        }
        let attempts: HashMap<u64, u32> = state.attempts.into_iter().collect();
        let mut expected = records_from;
        let mut missing = 0u64;
        for (id, bytes) in &state.records {
            if *id > expected {
                missing += id - expected;
            }
            expected = id + 1;
            let (body, event_time) = match decode_record(&q.body_ty, bytes) {
                Ok(r) => r,
                Err(e) => {
                    q.note_loss(format!("message {id} could not be read back ({e}); it is lost"));
                    continue;
                }
            };
            q.remember_key(&body, *id);
            if *id < q.done_below || q.done.contains(id) {
                continue;
            }
            q.messages.insert(*id, Message { body, event_time, origin: None, attempts: attempts.get(id).copied().unwrap_or(0), replayed: true });
            q.ready.push_back(*id);
        }
        if state.last_id >= expected {
            missing += state.last_id + 1 - expected;
        }
        // Records below the checkpoint may be discarded; a gap above it is a loss.
        if missing > 0 {
            let have: BTreeSet<u64> = state.records.iter().map(|(id, _)| *id).collect();
            let lost_ids = (q.done_below.max(records_from)..=state.last_id).filter(|id| !q.done.contains(id) && !have.contains(id)).count();
            if lost_ids > 0 {
                q.note_loss(format!("{lost_ids} unacknowledged message(s) are missing from the store; they cannot be delivered"));
            }
        }
        q.counts.replayed = q.ready.len() as u64;
        Ok(q)
    }

    fn note_loss(&mut self, sentence: String) {
        self.counts.store_losses += 1;
        if self.losses.len() >= LOSSES_KEPT_MAX {
            self.losses.pop_front();
        }
        self.losses.push_back(sentence);
    }

    fn key_of(&self, body: &Value) -> Option<Key> {
        let (index, _) = self.cfg.dedup_key.as_ref()?;
        body.field(*index).and_then(Key::from_value)
    }

    fn remember_key(&mut self, body: &Value, id: u64) {
        let Some(key) = self.key_of(body) else { return };
        if self.dedup.insert(key.clone(), id).is_none() {
            self.dedup_order.push_back(key);
        }
        while self.dedup_order.len() > self.cfg.dedup_window {
            if let Some(old) = self.dedup_order.pop_front() {
                self.dedup.remove(&old);
            }
        }
    }

    /// Unacknowledged messages held (committed or staged).
    fn held(&self) -> usize {
        self.messages.len() + self.staged.len()
    }

    fn full(&self) -> bool {
        self.held() >= self.cfg.capacity
    }

    fn append(&mut self, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        if let Some(key) = self.key_of(&input.value) {
            if self.dedup.contains_key(&key) {
                self.counts.deduplicated += 1;
                return Ok(());
            }
        }
        if self.full() {
            if self.cfg.overflow == Overflow::Reject {
                self.counts.rejected += 1;
                ctx.count_rejected(1);
            } else {
                self.counts.dropped += 1;
                ctx.count_loss(1);
            }
            self.pending_taints = self.pending_taints.with(Taint::DeliveryDropped);
            return Ok(());
        }
        self.last_id += 1;
        let id = self.last_id;
        let record = encode_record(&input.value, input.meta.event_time);
        self.remember_key(&input.value, id);
        let message = Message { body: input.value.clone(), event_time: input.meta.event_time, origin: Some((input.meta.id, input.meta.taints)), attempts: 0, replayed: false };
        self.staged_records.push((id, record));
        self.staged.push((id, message));
        self.counts.appended += 1;
        self.commit_if_due(ctx)
    }

    fn staged_ops(&self) -> usize {
        self.staged.len()
    }

    fn anything_staged(&self) -> bool {
        !self.staged.is_empty() || !self.staged_done.is_empty() || !self.staged_attempts.is_empty() || !self.staged_forget_attempts.is_empty()
    }

    /// `stored`: the message's attempts were written (a redelivery): forget them too.
    fn mark_done(&mut self, id: u64, done: Done, stored: bool) {
        self.staged_done.push((id, done));
        if stored {
            self.staged_forget_attempts.push(id);
        }
    }

    fn commit_if_due(&mut self, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        if self.staged_ops() >= self.cfg.commit_every {
            return self.commit(ctx);
        }
        if self.anything_staged() && !self.flush_timer_set {
            self.flush_timer_set = true;
            ctx.set_timer(ctx.now_us, TOKEN_FLUSH);
        }
        Ok(())
    }

    /// Writes what is staged, then delivers what became deliverable.
    fn commit(&mut self, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        if !self.anything_staged() {
            return Ok(());
        }
        // Advance the checkpoint over ids done (before this batch or in it). Done marks the
        // checkpoint covers at once are never written; older ones are deleted.
        let mut done_below = self.done_below;
        let staged_done = std::mem::take(&mut self.staged_done);
        let mut fresh: Vec<u64> = staged_done.iter().map(|(id, _)| *id).collect();
        fresh.sort_unstable();
        for id in &fresh {
            self.done.insert(*id);
        }
        let mut forget = Vec::new();
        while self.done.remove(&done_below) {
            if fresh.binary_search(&done_below).is_err() {
                forget.push(done_below);
            }
            done_below += 1;
        }
        let mut discard_below = done_below;
        if self.cfg.dedup_key.is_some() {
            discard_below = discard_below.min(self.last_id.saturating_sub(self.cfg.dedup_window as u64 - 1).max(1));
        }
        let batch = QueueBatch {
            appends: std::mem::take(&mut self.staged_records),
            done: staged_done.into_iter().filter(|(id, _)| *id >= done_below).collect(),
            forget,
            forget_attempts: std::mem::take(&mut self.staged_forget_attempts),
            attempts: std::mem::take(&mut self.staged_attempts),
            done_below,
            discard_below,
        };
        let result = self.store.commit(&batch);
        let staged = std::mem::take(&mut self.staged);
        let mut records = batch.appends;
        records.clear();
        self.staged_records = records;
        self.done_below = done_below;
        if let Err(e) = result {
            // The appends were never committed: they are lost, and their ids are given again.
            let lost = staged.len() as u64;
            self.last_id -= lost;
            for (_, m) in &staged {
                if let Some(key) = self.key_of(&m.body) {
                    self.dedup.remove(&key);
                }
            }
            self.counts.store_failures += 1;
            self.counts.dropped += lost;
            ctx.count_loss(lost);
            self.pending_taints = self.pending_taints.with(Taint::DeliveryDropped);
            let sentence = format!("a commit failed ({e}); {lost} message(s) appended since the last commit were not kept");
            self.note_loss(sentence.clone());
            return Err(OpFailure::new(sentence));
        }
        self.counts.commits += 1;
        for (id, message) in staged {
            self.messages.insert(id, message);
            self.ready.push_back(id);
        }
        self.pump(ctx);
        Ok(())
    }

    /// Delivers waiting messages while fewer than `inflight_max` await acks.
    fn pump(&mut self, ctx: &mut OpContext<'_>) {
        if !self.started {
            return;
        }
        while self.inflight.len() < self.cfg.inflight_max {
            let Some(id) = self.ready.pop_front() else { break };
            let Some(message) = self.messages.get_mut(&id) else { continue };
            message.attempts += 1;
            let attempt = message.attempts;
            let mut taints = std::mem::take(&mut self.pending_taints);
            let mut parents = Parents::new();
            if let Some((origin, origin_taints)) = message.origin {
                parents.push(origin);
                taints = taints.join(origin_taints);
            }
            if attempt > 1 || message.replayed {
                taints = taints.with(Taint::DeliveryDuplicated);
                self.counts.redelivered += 1;
            }
            // Attempts of redeliveries are kept, so a message that keeps failing (or keeps
            // crashing the process) reaches the dead letters instead of looping.
            if attempt > 1 || message.replayed {
                self.staged_attempts.push((id, attempt));
            }
            let value = Value::Record(Arc::from(vec![Value::Int(id as i64), Value::Int(i64::from(attempt)), message.body.clone()]));
            ctx.emit(Output { port: 0, value, parents, parents_elided: 0, event_time: message.event_time, taints, payload_from: None });
            self.counts.delivered += 1;
            self.inflight.insert(id, attempt);
            let deadline = ctx.now_us.saturating_add(self.cfg.visibility_timeout_us);
            self.deadlines.push_back((deadline, id, attempt));
            if self.visibility_timer_at.is_none() {
                self.visibility_timer_at = Some(deadline);
                ctx.set_timer(deadline, TOKEN_VISIBILITY);
            }
        }
    }

    /// A delivery failed (nack or timeout): deliver again, or dead-letter it after its last retry.
    fn retry(&mut self, id: u64, ctx: &mut OpContext<'_>) {
        let Some(message) = self.messages.get(&id) else { return };
        if message.attempts > self.cfg.retry_max {
            let message = self.messages.remove(&id).expect("present");
            let mut parents = Parents::new();
            let mut taints = TaintSet::EMPTY;
            if let Some((origin, origin_taints)) = message.origin {
                parents.push(origin);
                taints = origin_taints;
            }
            if message.attempts > 1 || message.replayed {
                taints = taints.with(Taint::DeliveryDuplicated);
            }
            let stored = message.attempts > 1 || message.replayed;
            let value = Value::Record(Arc::from(vec![Value::Int(id as i64), Value::Int(i64::from(message.attempts)), message.body]));
            ctx.emit(Output { port: 1, value, parents, parents_elided: 0, event_time: message.event_time, taints, payload_from: None });
            self.counts.dead_lettered += 1;
            self.mark_done(id, Done::DeadLettered, stored);
        } else {
            self.ready.push_front(id);
        }
    }

    fn settle(&mut self, port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let id = match input.value {
            Value::Int(id) if id > 0 => id as u64,
            _ => {
                self.counts.acks_unknown += 1;
                return Ok(());
            }
        };
        if port == 1 {
            // An ack: of a delivery awaiting it, or of a message waiting for redelivery (an ack
            // of an earlier attempt, or of a delivery made before a restart).
            let Some(message) = self.messages.remove(&id) else {
                self.counts.acks_unknown += 1;
                return Ok(());
            };
            if self.inflight.remove(&id).is_none() {
                self.ready.retain(|r| *r != id);
            }
            self.counts.acked += 1;
            self.mark_done(id, Done::Acked, message.attempts > 1 || message.replayed);
            // Deadlines of acked deliveries at the front are dropped now, so the list stays short.
            while let Some(&(_, front, attempt)) = self.deadlines.front() {
                if self.inflight.get(&front) == Some(&attempt) {
                    break;
                }
                self.deadlines.pop_front();
            }
        } else {
            if self.inflight.remove(&id).is_none() {
                self.counts.acks_unknown += 1;
                return Ok(());
            }
            self.counts.nacked += 1;
            self.retry(id, ctx);
        }
        self.pump(ctx);
        self.commit_if_due(ctx)
    }

    fn expire(&mut self, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        self.visibility_timer_at = None;
        while let Some(&(deadline, id, attempt)) = self.deadlines.front() {
            if deadline > ctx.now_us {
                break;
            }
            self.deadlines.pop_front();
            if self.inflight.get(&id) != Some(&attempt) {
                continue;
            }
            self.inflight.remove(&id);
            self.counts.timed_out += 1;
            self.retry(id, ctx);
        }
        self.pump(ctx);
        // Stale deadlines (acked deliveries) are skipped when they come due.
        while let Some(&(_, id, attempt)) = self.deadlines.front() {
            if self.inflight.get(&id) == Some(&attempt) {
                break;
            }
            self.deadlines.pop_front();
        }
        if self.visibility_timer_at.is_none() {
            if let Some(&(deadline, _, _)) = self.deadlines.front() {
                self.visibility_timer_at = Some(deadline);
                ctx.set_timer(deadline, TOKEN_VISIBILITY);
            }
        }
        self.commit_if_due(ctx)
    }
}

impl Operator for DurableQueue {
    fn kind(&self) -> &'static str {
        "durable_queue"
    }

    fn on_input(&mut self, port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        match port {
            0 => self.append(input, ctx),
            1 | 2 => self.settle(port, input, ctx),
            other => Err(OpFailure::new(format!("a durable queue has inputs 0 (ingress), 1 (acks) and 2 (nacks), not {other}"))),
        }
    }

    fn on_timer(&mut self, token: u64, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        match token {
            TOKEN_START => {
                self.started = true;
                self.pump(ctx);
                self.commit_if_due(ctx)
            }
            TOKEN_FLUSH => {
                self.flush_timer_set = false;
                self.commit(ctx)
            }
            _ => self.expire(ctx),
        }
    }

    fn start_timer(&self) -> Option<u64> {
        Some(TOKEN_START)
    }

    fn admission(&self, port: usize) -> Option<(Overflow, bool)> {
        (port == 0 && self.cfg.overflow == Overflow::Reject).then(|| (Overflow::Reject, self.full()))
    }

    fn refused(&mut self) {
        self.counts.refused += 1;
    }

    fn max_burst(&self) -> usize {
        self.cfg.inflight_max
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        let mut p = vec![
            ("capacity", Param::Int(self.cfg.capacity as i64)),
            ("overflow", Param::Text(super::factory::overflow_word(self.cfg.overflow).into())),
            ("visibility_timeout_us", Param::Int(self.cfg.visibility_timeout_us)),
            ("retry_max", Param::Int(i64::from(self.cfg.retry_max))),
            ("inflight_max", Param::Int(self.cfg.inflight_max as i64)),
            ("commit_every", Param::Int(self.cfg.commit_every as i64)),
            ("sync", Param::Text(self.cfg.sync.clone())),
            ("store", Param::Text(self.store.describe())),
        ];
        if let Some((_, name)) = &self.cfg.dedup_key {
            p.push(("dedup_key", Param::Text(name.clone())));
            p.push(("dedup_window", Param::Int(self.cfg.dedup_window as i64)));
        }
        p
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counts;
        vec![
            ("appended", c.appended),
            ("delivered", c.delivered),
            ("redelivered", c.redelivered),
            ("acked", c.acked),
            ("nacked", c.nacked),
            ("timed_out", c.timed_out),
            ("dead_lettered", c.dead_lettered),
            ("deduplicated", c.deduplicated),
            ("rejected", c.rejected),
            ("dropped", c.dropped),
            ("refused", c.refused),
            ("acks_unknown", c.acks_unknown),
            ("commits", c.commits),
            ("replayed", c.replayed),
            ("store_failures", c.store_failures),
            ("store_losses", c.store_losses),
            ("unacked", self.held() as u64),
            ("inflight", self.inflight.len() as u64),
        ]
    }

    fn buffered(&self) -> Option<(usize, usize)> {
        Some((self.held(), self.cfg.capacity))
    }

    fn health(&self) -> Option<Health> {
        let mut why = Vec::new();
        let mut state = HealthState::Healthy;
        if self.full() && self.cfg.overflow == Overflow::Reject {
            state = HealthState::Blocked;
            why.push(format!("full: {} of {} messages unacknowledged; new messages are rejected", self.held(), self.cfg.capacity));
        }
        let degrade = |state: &mut HealthState| {
            if *state == HealthState::Healthy {
                *state = HealthState::Degraded;
            }
        };
        if self.counts.dead_lettered > 0 {
            degrade(&mut state);
            why.push(format!("{} message(s) dead-lettered after {} retries", self.counts.dead_lettered, self.cfg.retry_max));
        }
        // A redelivery storm: more redeliveries than first deliveries (at least 16 of them).
        let first = self.counts.delivered - self.counts.redelivered;
        if self.counts.redelivered >= 16 && self.counts.redelivered > first {
            degrade(&mut state);
            why.push(format!("redelivery storm: {} redeliveries for {} first deliveries (acks late or missing)", self.counts.redelivered, first));
        }
        if self.counts.dropped > 0 {
            degrade(&mut state);
            why.push(format!("{} message(s) dropped (full queue or failed commits)", self.counts.dropped));
        }
        if self.counts.store_losses > 0 {
            degrade(&mut state);
            why.extend(self.losses.iter().cloned());
        }
        Some(Health { state, why })
    }
}

/// Discard log segments once at least this many ids before the checkpoint can go.
const DISCARD_STEP: u64 = 256;

/// A queue's state in one SQLite store file (see [`crate::store`]): the event log `queue`,
/// whose records are *segments* (the messages of one commit: `[first id, [record, ...]]` as
/// CBOR, so a commit of N messages writes one row), the checkpoint store `queue` (keys
/// `done_below` and `last_id`), and the keyspaces `queue_done` (done marks above the
/// checkpoint) and `queue_attempts` (attempts of redelivered messages). Each batch is one
/// transaction.
pub struct SqliteQueueStore {
    file: crate::store::StoreFile,
    log: crate::store::EventLog,
    checkpoints: crate::store::CheckpointStore,
    done: crate::store::Keyspace,
    attempts: crate::store::Keyspace,
    /// What recovery reported when the file was opened (handed to the queue by the first load).
    lost: Vec<String>,
    /// Segments held: (log seq, first id, last id), in order.
    segments: VecDeque<(u64, u64, u64)>,
}

fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn key_id(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

fn encode_segment(appends: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + appends.iter().map(|(_, r)| r.len() + 5).sum::<usize>());
    let mut e = minicbor::Encoder::new(&mut out);
    let _ = e.array(2).and_then(|e| e.u64(appends[0].0)).and_then(|e| e.array(appends.len() as u64));
    for (_, record) in appends {
        let _ = e.bytes(record);
    }
    out
}

fn decode_segment(bytes: &[u8]) -> Result<(u64, Vec<Vec<u8>>), String> {
    let bad = |e: minicbor::decode::Error| format!("a queue segment is not valid CBOR: {e}");
    let mut d = minicbor::Decoder::new(bytes);
    if d.array().map_err(bad)? != Some(2) {
        return Err("a queue segment is not a 2-item array".into());
    }
    let first = d.u64().map_err(bad)?;
    let n = d.array().map_err(bad)?.ok_or("a queue segment's records have no length")?;
    let mut records = Vec::with_capacity(n.min(1 << 20) as usize);
    for _ in 0..n {
        records.push(d.bytes().map_err(bad)?.to_vec());
    }
    Ok((first, records))
}

impl SqliteQueueStore {
    /// The queue stores in an open store file; `lost` are the recovery's loss sentences.
    pub fn new(file: crate::store::StoreFile, lost: Vec<String>) -> Result<SqliteQueueStore, String> {
        let e = |e: crate::store::StoreError| e.message().to_string();
        Ok(SqliteQueueStore {
            log: file.event_log("queue").map_err(e)?,
            checkpoints: file.checkpoints("queue").map_err(e)?,
            done: file.keyspace("queue_done").map_err(e)?,
            attempts: file.keyspace("queue_attempts").map_err(e)?,
            file,
            lost,
            segments: VecDeque::new(),
        })
    }
}

impl QueueStore for SqliteQueueStore {
    fn load(&mut self, records_from: u64) -> Result<QueueState, String> {
        let e = |e: crate::store::StoreError| e.message().to_string();
        let last_id = self.checkpoints.get("last_id").map_err(e)?.unwrap_or(0);
        let done_below = self.checkpoints.get("done_below").map_err(e)?.unwrap_or(1);
        if records_from == u64::MAX {
            return Ok(QueueState { last_id, done_below, ..QueueState::default() });
        }
        let done = self.done.scan(b"", usize::MAX).map_err(e)?.iter().filter_map(|(k, _)| key_id(k)).collect();
        let attempts = self
            .attempts
            .scan(b"", usize::MAX)
            .map_err(e)?
            .iter()
            .filter_map(|(k, v)| Some((key_id(k)?, u32::from_le_bytes(v.as_slice().try_into().ok()?))))
            .collect();
        let mut lost = std::mem::take(&mut self.lost);
        let mut records = Vec::new();
        self.segments.clear();
        for (seq, bytes) in self.log.read_from(1, usize::MAX).map_err(e)? {
            match decode_segment(&bytes) {
                Ok((first, items)) => {
                    let last = first + items.len() as u64 - 1;
                    self.segments.push_back((seq, first, last));
                    for (i, record) in items.into_iter().enumerate() {
                        let id = first + i as u64;
                        if id >= records_from && id <= last_id {
                            records.push((id, record));
                        }
                    }
                }
                Err(why) => lost.push(format!("queue log segment {seq} could not be read ({why}); its messages are lost")),
            }
        }
        Ok(QueueState { last_id, done_below, done, attempts, records, lost })
    }

    fn commit(&mut self, batch: &QueueBatch) -> Result<(), String> {
        let mut discard_to = None;
        let mut poppable = 0u64;
        for (seq, first, last) in &self.segments {
            if *last >= batch.discard_below {
                break;
            }
            poppable += last - first + 1;
            discard_to = Some(*seq + 1);
        }
        let discard_to = discard_to.filter(|_| poppable >= DISCARD_STEP);
        let appended = self
            .file
            .transaction(|_| {
                let mut appended = None;
                if let (Some((first, _)), Some((last, _))) = (batch.appends.first(), batch.appends.last()) {
                    let seq = self.log.append(&encode_segment(&batch.appends))?;
                    self.checkpoints.set("last_id", *last)?;
                    appended = Some((seq, *first, *last));
                }
                for (id, done) in &batch.done {
                    self.done.put(&id_key(*id), &[if *done == Done::Acked { 1 } else { 2 }])?;
                }
                for id in &batch.forget {
                    self.done.delete(&id_key(*id))?;
                }
                for id in &batch.forget_attempts {
                    self.attempts.delete(&id_key(*id))?;
                }
                for (id, n) in &batch.attempts {
                    self.attempts.put(&id_key(*id), &n.to_le_bytes())?;
                }
                self.checkpoints.set("done_below", batch.done_below)?;
                if let Some(seq) = discard_to {
                    self.log.truncate_before(seq)?;
                }
                Ok(appended)
            })
            .map_err(|e| e.message().to_string())?;
        if let Some(seq) = discard_to {
            while self.segments.front().is_some_and(|(s, _, _)| *s < seq) {
                self.segments.pop_front();
            }
        }
        if let Some(segment) = appended {
            self.segments.push_back(segment);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.file.path().display())
    }
}

/// Opens the queue store `store` of node `node` in the graph's store directory.
pub fn open_store(store_dir: Option<&crate::store::StoreDir>, node: &str, store: &str, sync: &str) -> Result<Box<dyn QueueStore>, super::GraphError> {
    let dir = store_dir.ok_or_else(|| super::view::needs_store_dir(node, "durable_queue"))?;
    let fail = |e: crate::store::StoreError| super::GraphError::Store(format!("node {node}: {}", e.message()));
    let sync = crate::store::Sync::from_word(sync)
        .ok_or_else(|| super::GraphError::OperatorConfig(format!("node {node}: sync must be full or normal, got {sync:?}")))?;
    let (file, recovery) = dir.open_store(store, crate::store::StoreOptions::new(sync)).map_err(fail)?;
    let mut lost = dir.notes().to_vec();
    lost.extend(recovery.lost);
    Ok(Box::new(SqliteQueueStore::new(file, lost).map_err(|m| super::GraphError::Store(format!("node {node}: {m}")))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let body = Value::Record(Arc::from(vec![Value::Int(7), Value::Text("a".into())]));
        let ty = SchemaType::Record(Arc::new(crate::schema::RecordType { name: "J".into(), fields: vec![("n".into(), SchemaType::Int), ("s".into(), SchemaType::Text)] }));
        let t = EventTime { time_us: -5, domain: ClockDomain::DEVICE };
        assert_eq!(decode_record(&ty, &encode_record(&body, t)).unwrap(), (body, t));
    }
}
