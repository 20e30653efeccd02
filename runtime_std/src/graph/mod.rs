//! The local graph runtime: routes, nodes, edges, mailboxes and a deterministic scheduler.
//!
//! # Model
//! - A **route** carries envelopes of one schema. It keeps its latest envelope and a bounded
//!   history for replay, and counts sequence numbers from 1.
//! - A **node** runs an [`Operator`] on envelopes arriving through its input edges and publishes
//!   what it emits on its one output route. `connect(a, b)` is a node too (kind `forward`).
//! - An **edge** joins a route to a node or a subscription. It is *inline* (the consumer runs
//!   during the publish that fed it), *buffered* (a bounded [`Mailbox`] with an overflow
//!   policy; the scheduler delivers later), or an *epoch boundary* (held until the next control
//!   epoch).
//! - The **scheduler** delivers buffered items, fires timers and releases guarded work. It is
//!   deterministic: one thread of control, FIFO dispatch, mailboxes served round-robin in
//!   creation order, timers in (due time, creation) order. Time is an input: tests advance a
//!   virtual clock; real-time mode reads a monotonic clock.
//!
//! Every queue is bounded, and every loss is counted where it happens and carried downstream
//! as a delivery taint. The bounds and what happens at each when full:
//!
//! | queue | bound | when full |
//! |---|---|---|
//! | mailbox | its capacity | its overflow policy: block or reject (the publish is refused), drop oldest or newest (counted, next delivery tainted) |
//! | burst waiting at a full blocking mailbox | [`STALLED_MAX`] per edge | dropped, counted as `dropped_newest`, next delivery tainted |
//! | epoch hold | [`EPOCH_HOLD_MAX`] per edge | oldest dropped, counted (`held_dropped`), next release tainted |
//! | guarded publishes | `gated_max` ([`GATED_MAX_DEFAULT`]) | the guarded publish is refused (`Rejected`), counted |
//! | node timers | [`TIMERS_MAX`] | the timer is refused: counted as a node failure and reported |
//! | expired guards, failures, audit | [`EXPIRED_KEPT_MAX`], [`FAILURES_KEPT_MAX`], [`audit::AUDIT_MAX`] | oldest forgotten (totals still counted) |
//! | inline dispatch | the inline graph (acyclic, checked when wiring) | cannot overflow: one publish causes finitely many deliveries |
//!
//! # Layout
//! One [`Graph`] type; its methods are split by job, one module each:
//! - this module: index types, the [`Graph`] and the per-route, edge, mailbox, node, producer
//!   and guard state it holds, and its constructors.
//! - [`declare`]: routes, producers and grants, nodes, edges and their mailboxes, subscriptions;
//!   the wiring checks (ownership of output routes, unsafe inline cycles).
//! - [`ingest`]: envelopes received from a link, recorded with the identity they were given.
//! - [`publish`]: envelopes in: ownership and schema checks, admission (backpressure), recording
//!   an envelope, fan-out into edges, mailboxes and epoch holds, inline dispatch into nodes and
//!   subscribers.
//! - [`schedule`]: the clock and control epochs, timers, guarded (gated) work, and the
//!   scheduler loop that delivers mailboxes.
//! - [`inspect`]: reading the graph: latest and replay, lineage, snapshots of nodes, edges,
//!   mailboxes and scheduler state, payload demand and opens, the route audit, failures.
//! - [`operator`], [`ops`], [`factory`]: the operator interface, the built-in operators over
//!   the `manyfold-core` kernels, and building them from parameters (Python and manifests).
//! - [`fused`]: the fused batch path: a batch of floats moved as columns through windows,
//!   forwards and counters, materializing only what can be observed.
//! - [`view`]: the `materialized_view` operator (durable keyed state) and reading it.
//! - [`payload`], [`audit`], [`error`]: lazy payloads, the audit ring, the error enum.

pub mod audit;
pub mod declare;
pub mod durable_queue;
pub mod error;
pub mod factory;
pub mod fused;
pub mod health;
pub mod ingest;
pub mod inspect;
pub mod operator;
pub mod ops;
pub mod payload;
pub mod publish;
pub mod schedule;
pub mod view;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use manyfold_core::envelope::RouteIdx;
use manyfold_core::mailbox::Mailbox;
use manyfold_core::taint::TaintSet;

use crate::envelope::{Envelope, EnvelopeRef};
use crate::route::Route;
use crate::schema::Schema;
use crate::value::Value;

pub use audit::{AuditEntry, AuditKind, AuditLog};
pub use error::GraphError;
pub use payload::{OpenRecord, PayloadOpener, Payloads, RouteDemand};
pub use operator::{Column, ColumnOut, ColumnParents, Health, HealthState, Lineage, OpContext, OpFailure, Operator, Output, Param};
pub use ingest::{Remote, IngestCounts};
pub use declare::{CountingSubscriber, EdgePolicy, MailboxSpec, RouteOptions, RouteProducer, Subscriber, Target, RETAIN_DEFAULT};
pub use inspect::{EdgeInfo, Failure, MailboxInfo, NodeInfo};
pub use health::NodeHealth;
pub use publish::{PublishOptions, PublishReceipt, EPOCH_HOLD_MAX, FAILURES_KEPT_MAX, STALLED_MAX};
pub use schedule::{Clock, ExpiredInfo, GatedInfo, Guard, RunReport, EXPIRED_KEPT_MAX, GATED_MAX_DEFAULT, RUN_STEPS_MAX_DEFAULT, TIMERS_MAX};

/// Index of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIdx(pub u32);
/// Index of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeIdx(pub u32);
/// Index of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxIdx(pub u32);
/// Index of an external producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProducerIdx(pub u32);
/// Index of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionIdx(pub u32);

// ---------------------------------------------------------------------- the graph's state
// Private to this module tree: the job modules below read and change it through `Graph`.

pub(crate) struct RouteState {
    route: Route,
    schema: Arc<Schema>,
    options: RouteOptions,
    seq: u64,
    /// The last `max(history, retain)` envelopes: replay reads the newest `history` of them,
    /// lineage reads all.
    retained: VecDeque<EnvelopeRef>,
    consumers: Vec<EdgeIdx>,
    producer: RouteProducer,
    taints_seen: TaintSet,
    /// Ephemeral routes stamp `DetNonReplayable` on every envelope.
    ephemeral: bool,
    /// Blocking or rejecting buffers reachable inline, cached per topology version.
    admission: Option<(u64, Vec<publish::Gate>)>,
    /// Envelopes ingested from links, and those refused as duplicates (see [`ingest`]).
    ingested: u64,
    duplicates: u64,
    /// Whether a batch published here can take the fused path, cached per topology version.
    fused: Option<(u64, bool)>,
}

impl RouteState {
    /// Keeps `fresh` in the retained ring (the oldest leaves when full) and returns it. Reuses
    /// the allocation of the envelope leaving the ring when nobody else holds it: a steady
    /// stream then publishes without touching the allocator.
    fn retain_envelope(&mut self, fresh: Envelope) -> EnvelopeRef {
        let evicted = if self.retained.len() >= self.options.retain { self.retained.pop_front() } else { None };
        let env = match evicted {
            Some(mut old) => match Arc::get_mut(&mut old) {
                Some(slot) => {
                    *slot = fresh;
                    old
                }
                None => Arc::new(fresh),
            },
            None => Arc::new(fresh),
        };
        self.retained.push_back(env.clone());
        env
    }
}

struct EdgeState {
    name: String,
    source: RouteIdx,
    target: Target,
    policy: EdgePolicy,
    mailbox: Option<MailboxIdx>,
    active: bool,
    delivered: u64,
    /// Items held for the next control epoch (epoch-boundary edges), at most `EPOCH_HOLD_MAX`.
    held: VecDeque<EnvelopeRef>,
    held_dropped: u64,
    /// Taints for the first item released at the next epoch: the hold dropped items since.
    held_taints: TaintSet,
    /// Items a blocking mailbox could not take during a burst; moved in first as it drains.
    /// At most `STALLED_MAX`; beyond that they are dropped (counted and tainted).
    stalled: VecDeque<EnvelopeRef>,
}

struct MailboxState {
    name: String,
    edge: EdgeIdx,
    queue: Mailbox<EnvelopeRef, Box<[Option<EnvelopeRef>]>>,
    /// Taints for the next item delivered: a loss happened since the last delivery.
    pending_taints: TaintSet,
    /// Publishes refused before reaching the mailbox because it was full (block or reject).
    refused_publishes: u64,
    /// Items of a burst dropped because the stall area at its edge was full too.
    stall_dropped: u64,
    /// Graph time the mailbox was created, full since (if full), and full in total.
    created_us: i64,
    full_since_us: Option<i64>,
    full_us: i64,
    /// Wall time spent delivering its items to the consumer.
    busy_ns: u64,
}

struct NodeState {
    name: String,
    op: Box<dyn Operator>,
    inputs: Vec<EdgeIdx>,
    outputs: Vec<RouteIdx>,
    processed: u64,
    emitted: u64,
    failures: u64,
    /// Union of the taints of the envelopes it consumed and of those it emitted: their
    /// difference says which taints the node added and which it repaired.
    taints_in: TaintSet,
    taints_out: TaintSet,
    /// The factory kind and parameters it was built from (kept for manifests).
    spec: Option<(String, factory::ParamMap)>,
}

struct SubscriptionState {
    name: String,
    route: RouteIdx,
    sink: Box<dyn Subscriber>,
    edge: EdgeIdx,
}

struct ProducerState {
    name: String,
    grants: BTreeSet<RouteIdx>,
    published: u64,
}

struct GatedItem {
    id: u64,
    producer: ProducerIdx,
    route: RouteIdx,
    value: Value,
    options: PublishOptions,
    guard: Guard,
    submitted_us: i64,
}

/// The local graph.
pub struct Graph {
    clock: Clock,
    routes: Vec<RouteState>,
    by_route: HashMap<Route, RouteIdx>,
    producers: Vec<ProducerState>,
    by_producer: HashMap<String, ProducerIdx>,
    nodes: Vec<NodeState>,
    by_node: HashMap<String, NodeIdx>,
    edges: Vec<EdgeState>,
    edge_names: HashMap<String, EdgeIdx>,
    mailboxes: Vec<MailboxState>,
    subscriptions: Vec<SubscriptionState>,
    /// Node timers: (due, creation order, node, token), at most `TIMERS_MAX`.
    timers: BinaryHeap<Reverse<(i64, u64, NodeIdx, u64)>>,
    timer_seq: u64,
    /// Guarded publishes waiting, in submission order, at most `gated_max`.
    gated: Vec<GatedItem>,
    gated_max: usize,
    gated_refused: u64,
    gated_seq: u64,
    expired: VecDeque<ExpiredInfo>,
    expired_total: u64,
    epoch: u64,
    queue: VecDeque<(EdgeIdx, EnvelopeRef)>,
    topology_version: u64,
    failures: Vec<Failure>,
    failures_total: u64,
    /// Running totals used to fill publish receipts.
    lost_total: u64,
    rejected_total: u64,
    scratch_outputs: Vec<Output>,
    scratch_timers: Vec<(i64, u64)>,
    payloads: Payloads,
    audit: AuditLog,
    /// Where durable operators keep their store files (`<dir>/<store>.sqlite`).
    store_dir: Option<crate::store::StoreDir>,
    /// Batches of floats may take the fused path (on by default; see [`fused`]).
    fusion: bool,
    /// Batches that took the fused path, and those that took the per-event loop.
    fused_batches: u64,
    unfused_batches: u64,
}

fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Graph {
    /// An empty graph on a virtual clock starting at 0.
    pub fn new_virtual() -> Graph {
        Graph::with_clock(Clock::Virtual { now_us: 0 })
    }

    /// An empty graph on the monotonic wall clock.
    pub fn new_wall() -> Graph {
        Graph::with_clock(Clock::Wall { origin: Instant::now() })
    }

    fn with_clock(clock: Clock) -> Graph {
        Graph {
            clock,
            routes: Vec::new(),
            by_route: HashMap::new(),
            producers: Vec::new(),
            by_producer: HashMap::new(),
            nodes: Vec::new(),
            by_node: HashMap::new(),
            edges: Vec::new(),
            edge_names: HashMap::new(),
            mailboxes: Vec::new(),
            subscriptions: Vec::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            gated: Vec::new(),
            gated_max: GATED_MAX_DEFAULT,
            gated_refused: 0,
            gated_seq: 0,
            expired: VecDeque::new(),
            expired_total: 0,
            epoch: 0,
            queue: VecDeque::new(),
            topology_version: 0,
            failures: Vec::new(),
            failures_total: 0,
            lost_total: 0,
            rejected_total: 0,
            scratch_outputs: Vec::new(),
            scratch_timers: Vec::new(),
            payloads: Payloads::default(),
            audit: AuditLog::default(),
            store_dir: None,
            fusion: true,
            fused_batches: 0,
            unfused_batches: 0,
        }
    }

    /// Gives the graph a store directory: durable operators built after this keep their
    /// stores there (`<dir>/<store>.sqlite`). The directory is created by the first durable
    /// operator; refused when `dir` is a file.
    pub fn set_store_dir(&mut self, dir: std::path::PathBuf) -> Result<(), GraphError> {
        self.store_dir = Some(crate::store::StoreDir::lazy(dir)?);
        Ok(())
    }

    /// The graph's store directory, if it has one.
    pub fn store_dir(&self) -> Option<&crate::store::StoreDir> {
        self.store_dir.as_ref()
    }
}

#[cfg(test)]
mod tests;
