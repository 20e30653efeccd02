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
//! as a delivery taint.

pub mod audit;
pub mod error;
pub mod factory;
pub mod operator;
pub mod ops;
pub mod payload;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use manyfold_core::envelope::{
    ClockDomain, Envelope as Meta, EnvelopeId, EventTime, PayloadRef, ProducerRef, RouteIdx,
};
use manyfold_core::mailbox::{Mailbox, MailboxCounters, Offer, Overflow};
use manyfold_core::taint::{Taint, TaintSet};

use crate::envelope::{Envelope, EnvelopeRef, Parents};
use crate::route::{check_segment, Layer, Route};
use crate::schema::Schema;
use crate::value::Value;

pub use audit::{AuditEntry, AuditKind, AuditLog};
pub use error::GraphError;
pub use payload::{OpenRecord, PayloadOpener, Payloads, RouteDemand};
pub use operator::{Lineage, OpContext, OpFailure, Operator, Output, Param};

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

/// The most items an epoch-boundary edge holds between epochs; older ones are dropped (counted).
pub const EPOCH_HOLD_MAX: usize = 4096;
/// The most failures kept for the caller to inspect; later ones are only counted.
pub const FAILURES_KEPT_MAX: usize = 64;
/// The most expired guard records kept for scheduler queries.
pub const EXPIRED_KEPT_MAX: usize = 256;
/// Default bound on scheduler steps in one `run_until_idle`.
pub const RUN_STEPS_MAX_DEFAULT: u64 = 10_000_000;

/// Where time comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// Time moves only when the caller advances it: deterministic tests and simulation.
    Virtual {
        /// Current time.
        now_us: i64,
    },
    /// Time is the monotonic wall clock since the graph started, plus an offset.
    Wall {
        /// When the graph started.
        origin: Instant,
    },
}

/// Per-route settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteOptions {
    /// Envelopes kept for replay (at least 1: the latest).
    pub history: usize,
    /// Envelopes kept for lineage queries (at least `history`): a lineage walk can reach this
    /// far back on this route.
    pub retain: usize,
    /// Record publishes and deliveries on this route in the audit log.
    pub audit: bool,
    /// Clock domain of event times published without one.
    pub clock_domain: ClockDomain,
}

/// Default envelopes kept per route for lineage.
pub const RETAIN_DEFAULT: usize = 256;

impl Default for RouteOptions {
    fn default() -> Self {
        RouteOptions { history: 8, retain: RETAIN_DEFAULT, audit: false, clock_domain: ClockDomain::INGEST }
    }
}

/// A mailbox on an edge: capacity and overflow policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxSpec {
    /// Items held at most.
    pub capacity: usize,
    /// What happens when full.
    pub overflow: Overflow,
}

/// How an edge delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EdgePolicy {
    /// Buffer in a mailbox (asynchronous); `None` delivers inline.
    pub mailbox: Option<MailboxSpec>,
    /// Hold items until the next control epoch.
    pub epoch_boundary: bool,
}

impl EdgePolicy {
    /// Inline delivery.
    pub const INLINE: EdgePolicy = EdgePolicy { mailbox: None, epoch_boundary: false };

    /// True when delivery happens during the publish that fed the edge.
    pub fn is_inline(&self) -> bool {
        self.mailbox.is_none() && !self.epoch_boundary
    }
}

/// What an edge delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Input `port` of a node.
    Node {
        /// The node.
        node: NodeIdx,
        /// Its input port.
        port: usize,
    },
    /// A subscription.
    Subscription(SubscriptionIdx),
}

/// Who may publish on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteProducer {
    /// External producers named like the route's owner (or granted).
    External,
    /// Only this node.
    Node(NodeIdx),
}

/// A consumer of envelopes outside the graph (a callback, a counter).
pub trait Subscriber: Send {
    /// Receives one envelope.
    fn deliver(&mut self, envelope: &EnvelopeRef) -> Result<(), OpFailure>;
}

/// A subscriber that only counts, without leaving Rust.
#[derive(Debug, Default)]
pub struct CountingSubscriber {
    /// Shared count, readable while the graph runs.
    pub count: Arc<std::sync::atomic::AtomicU64>,
}

impl Subscriber for CountingSubscriber {
    fn deliver(&mut self, _envelope: &EnvelopeRef) -> Result<(), OpFailure> {
        // Only the graph (under its lock) writes the count, so a plain load and store is
        // enough; readers on other threads see a recent value without a locked instruction.
        let n = self.count.load(std::sync::atomic::Ordering::Relaxed);
        self.count.store(n + 1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Conditions that hold a publish back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Guard {
    /// Release only once the control epoch reaches this.
    pub not_before_epoch: Option<u64>,
    /// Release only once the clock reaches this.
    pub not_before_us: Option<i64>,
    /// Drop (expire) the work if it is still held at this time.
    pub expires_at_us: Option<i64>,
}

/// Options of one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishOptions {
    /// Event time; the ingest clock when `None`.
    pub event_time_us: Option<i64>,
    /// Clock domain of the event time; the route's default when `None`.
    pub clock_domain: Option<ClockDomain>,
    /// Taints the producer declares (for example `TrustUnverified`).
    pub taints: TaintSet,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishReceipt {
    /// The new envelope.
    pub id: EnvelopeId,
    /// Items this publish caused to be dropped in mailboxes downstream (0 = nothing lost).
    pub dropped: u64,
    /// Items refused by rejecting mailboxes downstream.
    pub rejected: u64,
}

/// Outcome of `run_until_idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Scheduler steps taken (mailbox deliveries, timers, releases).
    pub steps: u64,
    /// True when nothing is left to do now; false when the step bound stopped the run.
    pub idle: bool,
}

/// A failure inside an operator or subscriber, kept for the caller.
#[derive(Debug)]
pub struct Failure {
    /// The node or subscription that failed.
    pub origin: String,
    /// What went wrong.
    pub message: String,
    /// The original error object, if the failing code provided one.
    pub cause: Option<Box<dyn std::any::Any + Send>>,
}

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
    /// Blocking or rejecting mailboxes reachable inline, cached per topology version.
    admission: Option<(u64, Vec<MailboxIdx>)>,
}

struct EdgeState {
    name: String,
    source: RouteIdx,
    target: Target,
    policy: EdgePolicy,
    mailbox: Option<MailboxIdx>,
    active: bool,
    delivered: u64,
    /// Items held for the next control epoch (epoch-boundary edges).
    held: VecDeque<EnvelopeRef>,
    held_dropped: u64,
    /// Items a blocking mailbox could not take during a burst; moved in first as it drains.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerTarget {
    Node(NodeIdx, u64),
    Guards,
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

/// A guarded publish still waiting, for scheduler queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatedInfo {
    /// Guard id (in submission order).
    pub id: u64,
    /// The route it will publish on.
    pub route: RouteIdx,
    /// Its guard.
    pub guard: Guard,
    /// When it was submitted.
    pub submitted_us: i64,
}

/// A guarded publish that expired before its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredInfo {
    /// Guard id.
    pub id: u64,
    /// The route it would have published on.
    pub route: RouteIdx,
    /// When it expired.
    pub expired_at_us: i64,
}

/// A snapshot of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Its name (the edge's).
    pub name: String,
    /// The edge it sits on.
    pub edge: EdgeIdx,
    /// Items queued.
    pub depth: usize,
    /// Items it holds at most.
    pub capacity: usize,
    /// Its overflow policy.
    pub overflow: Overflow,
    /// What it did.
    pub counters: MailboxCounters,
    /// Items waiting at its edge because it was full during a burst.
    pub stalled: usize,
    /// Graph time since the mailbox was created.
    pub span_us: i64,
    /// Graph time it spent full (blocking or dropping), up to now.
    pub full_us: i64,
    /// Wall time spent running its consumer on delivered items.
    pub busy_ns: u64,
}

/// A snapshot of one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeInfo {
    /// Its name.
    pub name: String,
    /// Source route.
    pub source: RouteIdx,
    /// What it delivers to.
    pub target: Target,
    /// Its policy.
    pub policy: EdgePolicy,
    /// Its mailbox, if buffered.
    pub mailbox: Option<MailboxIdx>,
    /// Items delivered.
    pub delivered: u64,
    /// Items held for the next epoch now.
    pub held: usize,
    /// Items an epoch hold dropped because it was full.
    pub held_dropped: u64,
    /// False once unsubscribed.
    pub active: bool,
}

/// A snapshot of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Operator kind.
    pub kind: &'static str,
    /// Input edges.
    pub inputs: Vec<EdgeIdx>,
    /// Output routes (by output port).
    pub outputs: Vec<RouteIdx>,
    /// Parameters.
    pub params: Vec<(&'static str, Param)>,
    /// Operator counters.
    pub counters: Vec<(&'static str, u64)>,
    /// Inputs handled.
    pub processed: u64,
    /// Outputs emitted.
    pub emitted: u64,
    /// Inputs on which the operator failed.
    pub failures: u64,
    /// Watermark, for windows and joins.
    pub watermark_us: Option<i64>,
    /// Buffered items and the bound.
    pub buffered: Option<(usize, usize)>,
    /// Declared deterministic.
    pub deterministic: bool,
    /// Taints its outputs carried that none of its inputs did.
    pub taints_added: TaintSet,
    /// Taints its inputs carried that none of its outputs did.
    pub taints_removed: TaintSet,
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
    timers: BinaryHeap<Reverse<(i64, u64, TimerTarget)>>,
    timer_seq: u64,
    gated: Vec<GatedItem>,
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
}

fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The payload reference of a value carried with its envelope: its encoded length (a float or
/// an integer is 9 bytes of CBOR at most, without asking).
#[inline]
fn inline_payload(value: &Value) -> PayloadRef {
    let len = match value {
        Value::Float(_) | Value::Int(_) => 9,
        other => u32::try_from(other.size_hint()).unwrap_or(u32::MAX),
    };
    PayloadRef::Inline { len }
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
        }
    }

    // ------------------------------------------------------------------ clock and epochs

    /// The clock now, in microseconds.
    pub fn now_us(&self) -> i64 {
        match self.clock {
            Clock::Virtual { now_us } => now_us,
            Clock::Wall { origin } => i64::try_from(origin.elapsed().as_micros()).unwrap_or(i64::MAX),
        }
    }

    fn now_us_const(&self) -> i64 {
        self.now_us()
    }

    /// True on a virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(self.clock, Clock::Virtual { .. })
    }

    /// The current control epoch (starts at 0).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Moves a virtual clock to `time_us`, firing every timer due on the way in order and
    /// running the scheduler to idle at each.
    pub fn advance_to(&mut self, time_us: i64) -> Result<RunReport, GraphError> {
        let Clock::Virtual { now_us } = self.clock else {
            return Err(GraphError::ClockMode("the graph runs on the wall clock; only a virtual clock can be advanced".into()));
        };
        let mut report = RunReport { steps: 0, idle: true };
        if time_us < now_us {
            return Err(GraphError::ClockMode(format!(
                "cannot move the clock back from {now_us} us to {time_us} us"
            )));
        }
        // Bounded: each pass fires at least the earliest due timer, and timers only go forward.
        while let Some(Reverse((due, _, _))) = self.timers.peek().copied() {
            if due > time_us {
                break;
            }
            self.clock = Clock::Virtual { now_us: due.max(now_us) };
            let r = self.run_until_idle(RUN_STEPS_MAX_DEFAULT);
            report.steps += r.steps;
            if !r.idle {
                report.idle = false;
                return Ok(report);
            }
        }
        self.clock = Clock::Virtual { now_us: time_us };
        let r = self.run_until_idle(RUN_STEPS_MAX_DEFAULT);
        report.steps += r.steps;
        report.idle = r.idle;
        Ok(report)
    }

    /// Starts the next control epoch: releases items held on epoch-boundary edges and guarded
    /// work waiting for this epoch, then runs the scheduler to idle.
    pub fn advance_epoch(&mut self) -> RunReport {
        self.epoch += 1;
        for e in 0..self.edges.len() {
            while let Some(env) = self.edges[e].held.pop_front() {
                self.queue.push_back((EdgeIdx(idx(e)), env));
            }
        }
        self.run_until_idle(RUN_STEPS_MAX_DEFAULT)
    }

    /// When the next timer is due, for real-time loops that sleep until then.
    pub fn next_timer_us(&self) -> Option<i64> {
        self.timers.peek().map(|Reverse((due, _, _))| *due)
    }

    // ------------------------------------------------------------------ topology

    /// Declares a route with its schema.
    pub fn declare_route(&mut self, route: Route, schema: Arc<Schema>, options: RouteOptions) -> Result<RouteIdx, GraphError> {
        if let Some(existing) = self.by_route.get(&route) {
            let st = &self.routes[existing.0 as usize];
            if st.schema.hash == schema.hash {
                return Ok(*existing);
            }
            return Err(GraphError::RouteDeclaredTwice(format!(
                "route {route} is already declared with schema {}, not {}",
                st.schema.label(),
                schema.label()
            )));
        }
        let index = RouteIdx(idx(self.routes.len()));
        let history = options.history.max(1);
        self.routes.push(RouteState {
            ephemeral: route.layer() == Layer::Ephemeral,
            route: route.clone(),
            schema,
            options: RouteOptions { history, retain: options.retain.max(history), ..options },
            seq: 0,
            retained: VecDeque::new(),
            consumers: Vec::new(),
            producer: RouteProducer::External,
            taints_seen: TaintSet::EMPTY,
            admission: None,
        });
        self.by_route.insert(route, index);
        self.topology_version += 1;
        Ok(index)
    }

    /// The index of a declared route.
    pub fn route_index(&self, route: &Route) -> Option<RouteIdx> {
        self.by_route.get(route).copied()
    }

    fn route_state(&self, route: RouteIdx) -> Result<&RouteState, GraphError> {
        self.routes
            .get(route.0 as usize)
            .ok_or_else(|| GraphError::RouteUnknown(format!("no route with index {}", route.0)))
    }

    /// The route at an index.
    pub fn route(&self, route: RouteIdx) -> Result<&Route, GraphError> {
        Ok(&self.route_state(route)?.route)
    }

    /// The schema of a route.
    pub fn schema(&self, route: RouteIdx) -> Result<&Arc<Schema>, GraphError> {
        Ok(&self.route_state(route)?.schema)
    }

    /// Who may publish on a route.
    pub fn route_producer(&self, route: RouteIdx) -> Result<RouteProducer, GraphError> {
        Ok(self.route_state(route)?.producer)
    }

    /// Every declared route, in declaration order.
    pub fn routes(&self) -> impl Iterator<Item = (RouteIdx, &Route, &Arc<Schema>)> + '_ {
        self.routes.iter().enumerate().map(|(i, r)| (RouteIdx(idx(i)), &r.route, &r.schema))
    }

    /// Union of the taints of every envelope published on a route so far.
    pub fn route_taints(&self, route: RouteIdx) -> Result<TaintSet, GraphError> {
        Ok(self.route_state(route)?.taints_seen)
    }

    /// Sequence number of the last envelope on a route (0 before any).
    pub fn route_seq(&self, route: RouteIdx) -> Result<u64, GraphError> {
        Ok(self.route_state(route)?.seq)
    }

    /// Edges consuming a route.
    pub fn route_consumers(&self, route: RouteIdx) -> Result<Vec<EdgeIdx>, GraphError> {
        Ok(self.route_state(route)?.consumers.clone())
    }

    /// An external producer called `name` (created on first use).
    pub fn producer(&mut self, name: &str) -> Result<ProducerIdx, GraphError> {
        if let Some(p) = self.by_producer.get(name) {
            return Ok(*p);
        }
        check_segment("producer", name).map_err(|e| GraphError::NameInvalid(e.0))?;
        let index = ProducerIdx(idx(self.producers.len()));
        self.producers.push(ProducerState { name: name.into(), grants: BTreeSet::new(), published: 0 });
        self.by_producer.insert(name.into(), index);
        Ok(index)
    }

    /// The name of a producer.
    pub fn producer_name(&self, producer: ProducerIdx) -> &str {
        self.producers.get(producer.0 as usize).map_or("?", |p| p.name.as_str())
    }

    /// Lets `producer` publish on `route` although it does not own it.
    pub fn grant(&mut self, producer: ProducerIdx, route: RouteIdx) -> Result<(), GraphError> {
        self.route_state(route)?;
        let p = self
            .producers
            .get_mut(producer.0 as usize)
            .ok_or_else(|| GraphError::NameInvalid(format!("no producer with index {}", producer.0)))?;
        p.grants.insert(route);
        Ok(())
    }

    fn check_name(&self, what: &str, name: &str) -> Result<(), GraphError> {
        check_segment(what, name).map_err(|e| GraphError::NameInvalid(e.0))?;
        if self.by_node.contains_key(name) || self.edge_names.contains_key(name) {
            return Err(GraphError::NameInvalid(format!("the name {name:?} is already used by a node or edge")));
        }
        Ok(())
    }

    /// Finds a path of inline edges from `from` to `to`, as printed route names.
    fn inline_path(&self, from: RouteIdx, to: RouteIdx) -> Option<Vec<String>> {
        let mut previous: HashMap<RouteIdx, (RouteIdx, NodeIdx)> = HashMap::new();
        let mut frontier = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        // Bounded: each route enters the frontier at most once.
        while let Some(r) = frontier.pop_front() {
            if r == to {
                let mut path = vec![self.routes[to.0 as usize].route.to_string()];
                let mut at = to;
                while let Some((prev, node)) = previous.get(&at).copied() {
                    path.push(format!("[{}]", self.nodes[node.0 as usize].name));
                    path.push(self.routes[prev.0 as usize].route.to_string());
                    at = prev;
                }
                path.reverse();
                return Some(path);
            }
            for e in &self.routes[r.0 as usize].consumers {
                let edge = &self.edges[e.0 as usize];
                if !edge.active || !edge.policy.is_inline() {
                    continue;
                }
                if let Target::Node { node, .. } = edge.target {
                    for out in &self.nodes[node.0 as usize].outputs {
                        if seen.insert(*out) {
                            previous.insert(*out, (r, node));
                            frontier.push_back(*out);
                        }
                    }
                }
            }
        }
        None
    }

    fn new_edge(&mut self, name: String, source: RouteIdx, target: Target, policy: EdgePolicy) -> Result<EdgeIdx, GraphError> {
        if let Some(spec) = policy.mailbox {
            if spec.capacity == 0 {
                return Err(GraphError::OperatorConfig(format!("edge {name}: a mailbox needs a capacity of at least 1")));
            }
        }
        let edge = EdgeIdx(idx(self.edges.len()));
        let mailbox = policy.mailbox.map(|spec| {
            let mb = MailboxIdx(idx(self.mailboxes.len()));
            let slots: Box<[Option<EnvelopeRef>]> = (0..spec.capacity).map(|_| None).collect();
            self.mailboxes.push(MailboxState {
                name: name.clone(),
                edge,
                queue: Mailbox::new(slots, spec.overflow),
                pending_taints: TaintSet::EMPTY,
                refused_publishes: 0,
                created_us: self.now_us_const(),
                full_since_us: None,
                full_us: 0,
                busy_ns: 0,
            });
            mb
        });
        self.edge_names.insert(name.clone(), edge);
        self.edges.push(EdgeState {
            name,
            source,
            target,
            policy,
            mailbox,
            active: true,
            delivered: 0,
            held: VecDeque::new(),
            held_dropped: 0,
            stalled: VecDeque::new(),
        });
        self.routes[source.0 as usize].consumers.push(edge);
        self.topology_version += 1;
        Ok(edge)
    }

    /// Adds a node running `op`, fed by `inputs` (route and edge policy per input port), that
    /// publishes on `outputs` (one route per output port). Refuses an output route someone
    /// else produces, and an inline feedback loop.
    pub fn add_node(
        &mut self,
        name: &str,
        op: Box<dyn Operator>,
        inputs: &[(RouteIdx, EdgePolicy)],
        outputs: &[RouteIdx],
    ) -> Result<NodeIdx, GraphError> {
        self.check_name("node", name)?;
        if outputs.is_empty() {
            return Err(GraphError::OperatorConfig(format!("node {name} needs at least one output route")));
        }
        for (i, output) in outputs.iter().enumerate() {
            let out_state = self.route_state(*output)?;
            if let RouteProducer::Node(other) = out_state.producer {
                return Err(GraphError::NotOwner(format!(
                    "route {} is already produced by node {}; a route has one producing node",
                    out_state.route, self.nodes[other.0 as usize].name
                )));
            }
            if out_state.seq > 0 {
                return Err(GraphError::NotOwner(format!(
                    "route {} already carries envelopes from external producers; give node {name} its own output route",
                    out_state.route
                )));
            }
            if outputs[..i].contains(output) {
                return Err(GraphError::OperatorConfig(format!("node {name} lists output {} twice", out_state.route)));
            }
        }
        for (input, policy) in inputs {
            self.route_state(*input)?;
            if !policy.is_inline() {
                continue;
            }
            for output in outputs {
                if let Some(path) = self.inline_path(*output, *input) {
                    return Err(GraphError::UnsafeCycle(format!(
                        "node {name} would close a feedback loop without a mailbox or control-epoch boundary: \
                         {} -> [{name}] -> {}; put a mailbox or an epoch boundary on one of its edges",
                        path.join(" -> "),
                        self.routes[output.0 as usize].route
                    )));
                }
            }
        }
        let node = NodeIdx(idx(self.nodes.len()));
        self.nodes.push(NodeState {
            name: name.into(),
            op,
            inputs: Vec::new(),
            outputs: outputs.to_vec(),
            processed: 0,
            emitted: 0,
            failures: 0,
            taints_in: TaintSet::EMPTY,
            taints_out: TaintSet::EMPTY,
            spec: None,
        });
        self.by_node.insert(name.into(), node);
        for (port, (input, policy)) in inputs.iter().enumerate() {
            let edge_name = if inputs.len() == 1 { format!("{name}_in") } else { format!("{name}_in{port}") };
            let edge = self.new_edge(edge_name, *input, Target::Node { node, port }, *policy)?;
            self.nodes[node.0 as usize].inputs.push(edge);
        }
        for output in outputs {
            self.routes[output.0 as usize].producer = RouteProducer::Node(node);
        }
        self.topology_version += 1;
        Ok(node)
    }

    /// Adds a node built by [`factory::build`] from `params`, and keeps the parameters so the
    /// node can be written to a manifest exactly as it was described.
    #[allow(clippy::too_many_arguments)]
    pub fn add_node_described(
        &mut self,
        name: &str,
        kind: &str,
        op: Box<dyn Operator>,
        inputs: &[(RouteIdx, EdgePolicy)],
        outputs: &[RouteIdx],
        params: factory::ParamMap,
    ) -> Result<NodeIdx, GraphError> {
        let node = self.add_node(name, op, inputs, outputs)?;
        self.nodes[node.0 as usize].spec = Some((kind.to_string(), params));
        Ok(node)
    }

    /// The factory kind and parameters a node was described with (factory-built nodes and
    /// `connect`).
    pub fn node_spec(&self, node: NodeIdx) -> Option<(&str, &factory::ParamMap)> {
        self.nodes.get(node.0 as usize).and_then(|n| n.spec.as_ref()).map(|(k, p)| (k.as_str(), p))
    }

    /// A route's settings.
    pub fn route_options(&self, route: RouteIdx) -> Result<RouteOptions, GraphError> {
        Ok(self.route_state(route)?.options)
    }

    /// Producers granted `route` (besides its owner), by name, sorted.
    pub fn route_writers(&self, route: RouteIdx) -> Vec<String> {
        let mut names: Vec<String> = self.producers.iter().filter(|p| p.grants.contains(&route)).map(|p| p.name.clone()).collect();
        names.sort();
        names
    }

    /// Forwards every envelope of `source` to `sink` (a `forward` node named `name`). The two
    /// routes must carry the same schema. `link_taints` are what the crossing cannot promise
    /// (a link without ordering adds `OrderPossiblyOutOfOrder`, and so on); every forwarded
    /// envelope carries them.
    pub fn connect(&mut self, name: &str, source: RouteIdx, sink: RouteIdx, policy: EdgePolicy) -> Result<NodeIdx, GraphError> {
        self.connect_over(name, source, sink, policy, TaintSet::EMPTY)
    }

    /// [`Graph::connect`] across a link that adds `link_taints`.
    pub fn connect_over(
        &mut self,
        name: &str,
        source: RouteIdx,
        sink: RouteIdx,
        policy: EdgePolicy,
        link_taints: TaintSet,
    ) -> Result<NodeIdx, GraphError> {
        let (a, b) = (self.route_state(source)?, self.route_state(sink)?);
        if a.schema.hash != b.schema.hash {
            return Err(GraphError::SchemaMismatch(format!(
                "cannot connect {} ({}, hash {}) to {} ({}, hash {}): the schemas differ",
                a.route,
                a.schema.label(),
                a.schema.hash.short(),
                b.route,
                b.schema.label(),
                b.schema.hash.short()
            )));
        }
        let mut spec = factory::ParamMap::new();
        if !link_taints.is_empty() {
            let names = link_taints.iter().map(|t| factory::ParamValue::Text(t.name().into())).collect();
            spec.insert("link_taints".into(), factory::ParamValue::List(names));
        }
        self.add_node_described(name, "forward", Box::new(ops::Forward { added: link_taints }), &[(source, policy)], &[sink], spec)
    }

    /// Delivers every envelope of `route` to `sink` (inline or through a mailbox).
    pub fn subscribe(
        &mut self,
        name: &str,
        route: RouteIdx,
        sink: Box<dyn Subscriber>,
        policy: EdgePolicy,
    ) -> Result<SubscriptionIdx, GraphError> {
        self.check_name("subscription", name)?;
        self.route_state(route)?;
        let sub = SubscriptionIdx(idx(self.subscriptions.len()));
        let edge = self.new_edge(name.into(), route, Target::Subscription(sub), policy)?;
        self.subscriptions.push(SubscriptionState { name: name.into(), route, sink, edge });
        Ok(sub)
    }

    /// Stops a subscription; its mailbox, if any, is emptied (its items counted as delivered
    /// nowhere, so they show as dropped).
    pub fn unsubscribe(&mut self, sub: SubscriptionIdx) -> Result<(), GraphError> {
        let edge = self
            .subscriptions
            .get(sub.0 as usize)
            .map(|s| s.edge)
            .ok_or_else(|| GraphError::NameInvalid(format!("no subscription with index {}", sub.0)))?;
        let state = &mut self.edges[edge.0 as usize];
        state.active = false;
        let source = state.source;
        self.routes[source.0 as usize].consumers.retain(|e| *e != edge);
        self.topology_version += 1;
        Ok(())
    }

    // ------------------------------------------------------------------ publishing

    fn check_owner(&self, producer: ProducerIdx, route: RouteIdx) -> Result<(), GraphError> {
        let r = self.route_state(route)?;
        let p = self
            .producers
            .get(producer.0 as usize)
            .ok_or_else(|| GraphError::NameInvalid(format!("no producer with index {}", producer.0)))?;
        if let RouteProducer::Node(node) = r.producer {
            return Err(GraphError::NotOwner(format!(
                "producer {} cannot publish on {}: that route is produced by node {}",
                p.name, r.route, self.nodes[node.0 as usize].name
            )));
        }
        if r.route.owner() != p.name && !p.grants.contains(&route) {
            return Err(GraphError::NotOwner(format!(
                "producer {} cannot publish on {}: the route is owned by {}; publish as {} or grant {} this route",
                p.name,
                r.route,
                r.route.owner(),
                r.route.owner(),
                p.name
            )));
        }
        Ok(())
    }

    /// Blocking and rejecting mailboxes a publish on `route` reaches inline.
    fn admission_set(&mut self, route: RouteIdx) -> Vec<MailboxIdx> {
        if let Some((version, set)) = &self.routes[route.0 as usize].admission {
            if *version == self.topology_version {
                return set.clone();
            }
        }
        let mut set = Vec::new();
        let mut seen = BTreeSet::from([route]);
        let mut frontier = vec![route];
        // Bounded: each route is visited once.
        while let Some(r) = frontier.pop() {
            for e in &self.routes[r.0 as usize].consumers {
                let edge = &self.edges[e.0 as usize];
                if let Some(mb) = edge.mailbox {
                    let overflow = self.mailboxes[mb.0 as usize].queue.overflow();
                    if matches!(overflow, Overflow::Block | Overflow::Reject) {
                        set.push(mb);
                    }
                } else if !edge.policy.epoch_boundary {
                    if let Target::Node { node, .. } = edge.target {
                        for out in &self.nodes[node.0 as usize].outputs {
                            if seen.insert(*out) {
                                frontier.push(*out);
                            }
                        }
                    }
                }
            }
        }
        set.sort();
        self.routes[route.0 as usize].admission = Some((self.topology_version, set.clone()));
        set
    }

    /// Checks that a publish on `route` would not hit a full blocking or rejecting mailbox.
    pub fn check_admission(&mut self, route: RouteIdx) -> Result<(), GraphError> {
        for mb in self.admission_set(route) {
            let stalled = self.edges[self.mailboxes[mb.0 as usize].edge.0 as usize].stalled.len();
            let state = &mut self.mailboxes[mb.0 as usize];
            if state.queue.free() > stalled {
                continue;
            }
            state.refused_publishes += 1;
            let reason = format!("mailbox {} full", state.name);
            let overflow = state.queue.overflow();
            let capacity = state.queue.capacity();
            let mailbox_name = state.name.clone();
            let now = self.now_us();
            self.audit.push(now, EnvelopeId { route, seq: 0 }, AuditKind::Refused { producer: String::new(), reason });
            let route_name = &self.routes[route.0 as usize].route;
            let state = (mailbox_name, capacity);
            return Err(match overflow {
                Overflow::Block => GraphError::MustWait(format!(
                    "mailbox {} is full ({} items) and blocks: wait for the scheduler to drain it, then publish on {route_name} again",
                    state.0, state.1
                )),
                _ => GraphError::Rejected(format!(
                    "mailbox {} is full ({} items) and rejects: the publish on {route_name} was refused",
                    state.0, state.1
                )),
            });
        }
        Ok(())
    }

    /// Publishes `value` on `route` as `producer`, and runs everything inline downstream.
    pub fn publish(
        &mut self,
        producer: ProducerIdx,
        route: RouteIdx,
        value: Value,
        options: &PublishOptions,
    ) -> Result<PublishReceipt, GraphError> {
        if let Err(e) = self.check_owner(producer, route) {
            let now = self.now_us();
            let who = self.producer_name(producer).to_string();
            self.audit.push(now, EnvelopeId { route, seq: 0 }, AuditKind::Refused { producer: who, reason: "not the owner".into() });
            return Err(e);
        }
        self.check_value(route, &value)?;
        self.check_admission(route)?;
        self.publish_unchecked(producer, route, value, options)
    }

    /// Checks `value` against the schema of `route`.
    fn check_value(&self, route: RouteIdx, value: &Value) -> Result<(), GraphError> {
        let state = &self.routes[route.0 as usize];
        state.schema.check(value).map_err(|e| GraphError::SchemaCheck(format!("cannot publish on {}: {}", state.route, e.0)))
    }

    /// Publishes a value already checked against the route's schema and ownership.
    pub(crate) fn publish_unchecked(
        &mut self,
        producer: ProducerIdx,
        route: RouteIdx,
        value: Value,
        options: &PublishOptions,
    ) -> Result<PublishReceipt, GraphError> {
        let payload = inline_payload(&value);
        self.publish_with_payload(producer, route, value, payload, options)
    }

    fn publish_with_payload(
        &mut self,
        producer: ProducerIdx,
        route: RouteIdx,
        value: Value,
        payload: PayloadRef,
        options: &PublishOptions,
    ) -> Result<PublishReceipt, GraphError> {
        let (lost, rejected) = (self.lost_total, self.rejected_total);
        let now = self.now_us();
        let domain = options.clock_domain.unwrap_or(self.routes[route.0 as usize].options.clock_domain);
        let event_time = EventTime { time_us: options.event_time_us.unwrap_or(now), domain };
        let env = self.record(route, value, payload, ProducerRef::External(producer.0), event_time, options.taints, Parents::new(), 0);
        self.producers[producer.0 as usize].published += 1;
        let id = env.meta.id;
        self.fan_out(route, env);
        self.drain_queue();
        Ok(PublishReceipt {
            id,
            dropped: self.lost_total - lost,
            rejected: self.rejected_total - rejected,
        })
    }

    /// Publishes many values of one route (each checked); stops at the first error and returns
    /// how many were published with it.
    pub fn publish_many<I: IntoIterator<Item = Value>>(
        &mut self,
        producer: ProducerIdx,
        route: RouteIdx,
        values: I,
    ) -> (u64, Option<GraphError>) {
        if let Err(e) = self.check_owner(producer, route) {
            return (0, Some(e));
        }
        let options = PublishOptions::default();
        let mut count = 0;
        // The topology cannot change during this call, so an empty admission set stays empty.
        let gated = !self.admission_set(route).is_empty();
        for value in values {
            if let Err(e) = self.check_value(route, &value) {
                return (count, Some(e));
            }
            if gated {
                if let Err(e) = self.check_admission(route) {
                    return (count, Some(e));
                }
            }
            if let Err(e) = self.publish_unchecked(producer, route, value, &options) {
                return (count, Some(e));
            }
            count += 1;
        }
        (count, None)
    }

    /// Publishes a lazy envelope on a bulk route: its value is the metadata (the route's schema),
    /// published now with the payload's declared length and SHA-256; the bytes only when
    /// someone opens them (`open` produces them on demand).
    pub fn publish_lazy_value(
        &mut self,
        producer: ProducerIdx,
        route: RouteIdx,
        meta: Value,
        len: u64,
        digest: manyfold_core::envelope::Digest,
        open: PayloadOpener,
        options: &PublishOptions,
    ) -> Result<PublishReceipt, GraphError> {
        self.check_owner(producer, route)?;
        self.check_value(route, &meta)?;
        self.check_admission(route)?;
        // The source must be registered before downstream nodes (which may open it) run, so
        // the envelope id is predicted from the route's sequence number.
        let id = EnvelopeId { route, seq: self.routes[route.0 as usize].seq + 1 };
        self.payloads.add_source(id, len, digest, open);
        self.publish_with_payload(producer, route, meta, PayloadRef::Lazy { len, digest }, options)
    }

    /// Opens the payload of a lazy envelope for `consumer` (cached; recorded in payload demand,
    /// lineage and the audit log). Inline payloads are returned as their value's bytes only
    /// for bytes routes; other inline values have no separate payload to open.
    pub fn open_payload(&mut self, id: EnvelopeId, consumer: &str) -> Result<Arc<[u8]>, GraphError> {
        let label = format!("{}@{}", self.route_state(id.route)?.route, id.seq);
        let now = self.now_us();
        let origin = self.payloads.origin(id);
        let result = self.payloads.open(id, consumer, now, &label);
        if result.is_ok() {
            if let Some(record) = self.payloads.records().last().filter(|r| r.id == origin).cloned() {
                self.audit.push(now, origin, AuditKind::Opened { consumer: record.consumer, bytes: record.bytes, cache_hit: record.cache_hit });
            }
        }
        result.map_err(GraphError::PayloadOpen)
    }

    /// Payload demand on a route.
    pub fn payload_demand(&self, route: RouteIdx) -> RouteDemand {
        self.payloads.demand(route)
    }

    /// Opens of one envelope's payload.
    pub fn payload_opens(&self, id: EnvelopeId) -> Vec<OpenRecord> {
        self.payloads.opens_of(id)
    }

    /// Bounds the payload cache.
    pub fn set_payload_cache_bytes(&mut self, bytes: usize) {
        self.payloads.set_cache_bytes_max(bytes);
    }

    /// Audit entries of a route, oldest first.
    pub fn audit_of(&self, route: RouteIdx) -> Vec<AuditEntry> {
        self.audit.of_route(route)
    }

    /// A retained envelope by id (for lineage), if still kept.
    pub fn envelope(&self, id: EnvelopeId) -> Option<EnvelopeRef> {
        let state = self.routes.get(id.route.0 as usize)?;
        let first = state.retained.front()?.meta.id.seq;
        let offset = id.seq.checked_sub(first)?;
        state.retained.get(usize::try_from(offset).ok()?).cloned()
    }

    /// Walks lineage back from `id`: every ancestor envelope still retained, breadth first,
    /// and the ids it could not find (forgotten), visiting at most `nodes_max` envelopes.
    pub fn lineage(&self, id: EnvelopeId, nodes_max: usize) -> (Vec<EnvelopeRef>, Vec<EnvelopeId>) {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        let mut seen = BTreeSet::from([id]);
        let mut frontier = VecDeque::from([id]);
        // Bounded by nodes_max visits.
        while let Some(next) = frontier.pop_front() {
            if found.len() >= nodes_max {
                break;
            }
            match self.envelope(next) {
                None => missing.push(next),
                Some(env) => {
                    for parent in env.meta.parents.iter() {
                        if seen.insert(*parent) {
                            frontier.push_back(*parent);
                        }
                    }
                    found.push(env);
                }
            }
        }
        (found, missing)
    }

    /// Submits a publish that waits for its guard (epoch or time) and expires at its deadline.
    pub fn publish_guarded(
        &mut self,
        producer: ProducerIdx,
        route: RouteIdx,
        value: Value,
        options: PublishOptions,
        guard: Guard,
    ) -> Result<u64, GraphError> {
        self.check_owner(producer, route)?;
        self.check_value(route, &value)?;
        let now = self.now_us();
        if let Some(expiry) = guard.expires_at_us {
            if expiry <= now {
                return Err(GraphError::GuardInvalid(format!(
                    "the guard expires at {expiry} us, which is not after now ({now} us)"
                )));
            }
            self.push_timer(expiry, TimerTarget::Guards);
        }
        if let Some(at) = guard.not_before_us {
            self.push_timer(at, TimerTarget::Guards);
        }
        self.gated_seq += 1;
        let id = self.gated_seq;
        self.gated.push(GatedItem { id, producer, route, value, options, guard, submitted_us: now });
        self.release_guarded();
        Ok(id)
    }

    fn push_timer(&mut self, due: i64, target: TimerTarget) {
        self.timer_seq += 1;
        self.timers.push(Reverse((due, self.timer_seq, target)));
    }

    /// Publishes guarded items whose conditions hold; expires those past their deadline.
    fn release_guarded(&mut self) -> u64 {
        let now = self.now_us();
        let mut released = 0;
        let mut i = 0;
        // Bounded by the number of gated items; each pass removes one or moves past it.
        while i < self.gated.len() {
            let g = self.gated[i].guard;
            if g.expires_at_us.is_some_and(|t| now >= t) {
                let item = self.gated.remove(i);
                self.expired_total += 1;
                if self.expired.len() == EXPIRED_KEPT_MAX {
                    self.expired.pop_front();
                }
                self.expired.push_back(ExpiredInfo { id: item.id, route: item.route, expired_at_us: now });
                continue;
            }
            let epoch_ok = g.not_before_epoch.is_none_or(|e| self.epoch >= e);
            let time_ok = g.not_before_us.is_none_or(|t| now >= t);
            if epoch_ok && time_ok && self.check_admission(self.gated[i].route).is_ok() {
                let item = self.gated.remove(i);
                let mut options = item.options;
                options.taints = options.taints.with(Taint::SchedGated);
                let _ = self.publish_unchecked(item.producer, item.route, item.value, &options);
                released += 1;
                continue;
            }
            i += 1;
        }
        released
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        route: RouteIdx,
        value: Value,
        payload: PayloadRef,
        producer: ProducerRef,
        event_time: EventTime,
        taints: TaintSet,
        parents: Parents,
        parents_elided: u32,
    ) -> EnvelopeRef {
        let now = self.now_us();
        let epoch = self.epoch;
        let state = &mut self.routes[route.0 as usize];
        state.seq += 1;
        let taints = if state.ephemeral { taints.with(Taint::DetNonReplayable) } else { taints };
        let fresh = Envelope {
            meta: Meta {
                id: EnvelopeId { route, seq: state.seq },
                producer,
                event_time,
                ingest_time_us: now,
                control_epoch: Some(epoch),
                taints,
                parents,
                payload,
            },
            value,
            parents_elided,
        };
        // Reuse the allocation of the envelope leaving the retained ring when nobody else holds
        // it: a steady stream then publishes without touching the allocator.
        let evicted = if state.retained.len() >= state.options.retain { state.retained.pop_front() } else { None };
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
        state.retained.push_back(env.clone());
        state.taints_seen = state.taints_seen.join(taints);
        if state.options.audit {
            let id = env.meta.id;
            self.audit.push(now, id, AuditKind::Published { producer });
        }
        env
    }

    fn fan_out(&mut self, route: RouteIdx, env: EnvelopeRef) {
        let consumers = self.routes[route.0 as usize].consumers.len();
        // The last consumer takes the caller's reference: one atomic refcount pair less per hop.
        for i in 0..consumers.saturating_sub(1) {
            let edge = self.routes[route.0 as usize].consumers[i];
            self.enqueue(edge, env.clone());
        }
        if let Some(last) = self.routes[route.0 as usize].consumers.last().copied() {
            self.enqueue(last, env);
        }
    }

    fn enqueue(&mut self, edge: EdgeIdx, env: EnvelopeRef) {
        let state = &mut self.edges[edge.0 as usize];
        if let Some(mb) = state.mailbox {
            self.offer_mailbox(mb, env);
        } else if state.policy.epoch_boundary {
            if state.held.len() >= EPOCH_HOLD_MAX {
                state.held.pop_front();
                state.held_dropped += 1;
                self.lost_total += 1;
            }
            state.held.push_back(env);
        } else {
            self.queue.push_back((edge, env));
        }
    }

    fn offer_mailbox(&mut self, mb: MailboxIdx, env: EnvelopeRef) {
        let now = self.now_us();
        let state = &mut self.mailboxes[mb.0 as usize];
        let outcome = state.queue.offer(env);
        if state.queue.free() == 0 && state.full_since_us.is_none() {
            state.full_since_us = Some(now);
        }
        match outcome {
            Offer::Accepted => {}
            Offer::AcceptedEvicting(lost) | Offer::DroppedNewest(lost) => {
                state.pending_taints = state.pending_taints.with(Taint::DeliveryDropped);
                self.lost_total += 1;
                let mailbox = state.name.clone();
                self.audit.push(now, lost.meta.id, AuditKind::Dropped { mailbox });
            }
            Offer::Rejected(lost) => {
                state.pending_taints = state.pending_taints.with(Taint::DeliveryDropped);
                self.rejected_total += 1;
                let mailbox = state.name.clone();
                self.audit.push(now, lost.meta.id, AuditKind::Dropped { mailbox });
            }
            Offer::MustWait(env) => {
                // A burst from inside one publish: hold it at the edge, bounded by the burst.
                let edge = state.edge;
                self.edges[edge.0 as usize].stalled.push_back(env);
            }
        }
    }

    fn drain_queue(&mut self) {
        // Bounded: the inline graph is acyclic (checked when edges are added), so each publish
        // causes finitely many deliveries.
        while let Some((edge, env)) = self.queue.pop_front() {
            self.deliver(edge, &env);
        }
    }

    fn deliver(&mut self, edge: EdgeIdx, env: &EnvelopeRef) {
        let state = &mut self.edges[edge.0 as usize];
        if !state.active {
            return;
        }
        state.delivered += 1;
        let target = state.target;
        if self.routes[env.meta.id.route.0 as usize].options.audit {
            let consumer = match target {
                Target::Subscription(sub) => format!("subscription {}", self.subscriptions[sub.0 as usize].name),
                Target::Node { node, .. } => format!("node {}", self.nodes[node.0 as usize].name),
            };
            let now = self.now_us();
            self.audit.push(now, env.meta.id, AuditKind::Delivered { consumer });
        }
        match target {
            Target::Subscription(sub) => {
                let s = &mut self.subscriptions[sub.0 as usize];
                if let Err(failure) = s.sink.deliver(env) {
                    let origin = format!("subscription {}", s.name);
                    self.keep_failure(origin, failure);
                }
            }
            Target::Node { node, port } => {
                self.run_node(node, env.meta.taints, |op, ctx| op.on_input(port, env, ctx));
            }
        }
    }

    /// Records a failure that happened outside any node (for example a queued publish made by a
    /// binding); the caller sees it with the others from [`Graph::take_failures`].
    pub fn note_failure(&mut self, origin: &str, message: String) {
        self.keep_failure(origin.to_string(), OpFailure::new(message));
    }

    fn keep_failure(&mut self, origin: String, failure: OpFailure) {
        self.failures_total += 1;
        if self.failures.len() < FAILURES_KEPT_MAX {
            self.failures.push(Failure { origin, message: failure.message, cause: failure.cause });
        }
    }

    fn run_node<F>(&mut self, node: NodeIdx, input_taints: TaintSet, f: F)
    where
        F: FnOnce(&mut dyn Operator, &mut OpContext<'_>) -> Result<(), OpFailure>,
    {
        let mut outputs = std::mem::take(&mut self.scratch_outputs);
        let mut timers = std::mem::take(&mut self.scratch_timers);
        let now_us = self.now_us();
        let epoch = self.epoch;
        let Graph { nodes, payloads, audit, routes, .. } = self;
        let state = &mut nodes[node.0 as usize];
        state.processed += 1;
        state.taints_in = state.taints_in.join(input_taints);
        let mut lost = 0u64;
        let result = {
            let mut ctx = OpContext {
                now_us,
                epoch,
                outputs: &mut outputs,
                timers: &mut timers,
                lost: &mut lost,
                node_name: &state.name,
                payloads,
                audit,
                routes,
            };
            f(state.op.as_mut(), &mut ctx)
        };
        self.lost_total += lost;
        if let Err(failure) = result {
            let state = &mut self.nodes[node.0 as usize];
            state.failures += 1;
            let origin = format!("node {}", state.name);
            self.keep_failure(origin, failure);
        }
        for (at, token) in timers.drain(..) {
            self.push_timer(at, TimerTarget::Node(node, token));
        }
        self.nodes[node.0 as usize].emitted += outputs.len() as u64;
        for out in outputs.drain(..) {
            let state = &mut self.nodes[node.0 as usize];
            let Some(route) = state.outputs.get(out.port).copied() else {
                let origin = format!("node {}", state.name);
                let message = format!("emitted on output port {} but has {} outputs", out.port, state.outputs.len());
                self.keep_failure(origin, OpFailure::new(message));
                continue;
            };
            state.taints_out = state.taints_out.join(out.taints);
            let lazy = out.payload_from.and_then(|from| self.payloads.lazy_ref(from));
            let payload = match lazy {
                Some((_, len, digest)) => PayloadRef::Lazy { len, digest },
                None => inline_payload(&out.value),
            };
            let env = self.record(route, out.value, payload, ProducerRef::Node(node.0), out.event_time, out.taints, out.parents, out.parents_elided);
            if let Some((origin, _, _)) = lazy {
                self.payloads.alias(env.meta.id, origin);
            }
            self.fan_out(route, env);
        }
        self.scratch_outputs = outputs;
        self.scratch_timers = timers;
    }

    /// Asks a node to release buffered items (capacitors): `count` of them, or all.
    pub fn demand(&mut self, node: NodeIdx, count: Option<usize>) -> Result<(), GraphError> {
        if node.0 as usize >= self.nodes.len() {
            return Err(GraphError::NameInvalid(format!("no node with index {}", node.0)));
        }
        self.run_node(node, TaintSet::EMPTY, |op, ctx| op.on_demand(count, ctx));
        self.drain_queue();
        Ok(())
    }

    // ------------------------------------------------------------------ scheduler

    /// Does everything that is due now: inline work, due timers, guarded releases and mailbox
    /// deliveries (round-robin, one item per mailbox per round), until nothing is left or
    /// `steps_max` steps were taken.
    pub fn run_until_idle(&mut self, steps_max: u64) -> RunReport {
        let mut steps = 0u64;
        loop {
            self.drain_queue();
            let mut progressed = false;
            let now = self.now_us();
            while let Some(Reverse((due, _, target))) = self.timers.peek().copied() {
                if due > now || steps >= steps_max {
                    break;
                }
                self.timers.pop();
                steps += 1;
                progressed = true;
                match target {
                    TimerTarget::Node(node, token) => self.run_node(node, TaintSet::EMPTY, |op, ctx| op.on_timer(token, ctx)),
                    TimerTarget::Guards => {}
                }
                self.drain_queue();
            }
            if !self.gated.is_empty() {
                let released = self.release_guarded();
                if released > 0 {
                    steps += released;
                    progressed = true;
                }
            }
            for m in 0..self.mailboxes.len() {
                if steps >= steps_max {
                    break;
                }
                let edge = self.mailboxes[m].edge;
                // Items stalled at the edge during a burst go in first, in order.
                while self.mailboxes[m].queue.free() > 0 {
                    let Some(env) = self.edges[edge.0 as usize].stalled.pop_front() else { break };
                    let _ = self.mailboxes[m].queue.offer(env);
                }
                let Some(env) = self.mailboxes[m].queue.take() else { continue };
                let pending = std::mem::take(&mut self.mailboxes[m].pending_taints);
                let env = if pending.is_empty() {
                    env
                } else {
                    let mut tainted = (*env).clone();
                    tainted.meta.taints = tainted.meta.taints.join(pending);
                    Arc::new(tainted)
                };
                if let Some(since) = self.mailboxes[m].full_since_us.take() {
                    let now = self.now_us();
                    self.mailboxes[m].full_us += now - since;
                }
                let started = Instant::now();
                self.deliver(edge, &env);
                self.drain_queue();
                self.mailboxes[m].busy_ns += u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                steps += 1;
                progressed = true;
            }
            if !progressed {
                return RunReport { steps, idle: true };
            }
            if steps >= steps_max {
                return RunReport { steps, idle: false };
            }
        }
    }

    // ------------------------------------------------------------------ reading

    /// The latest envelope of a route.
    pub fn latest(&self, route: RouteIdx) -> Result<Option<EnvelopeRef>, GraphError> {
        Ok(self.route_state(route)?.retained.back().cloned())
    }

    /// The replay history of a route (its newest `history` envelopes), oldest first.
    pub fn replay(&self, route: RouteIdx) -> Result<Vec<EnvelopeRef>, GraphError> {
        let state = self.route_state(route)?;
        let skip = state.retained.len().saturating_sub(state.options.history);
        Ok(state.retained.iter().skip(skip).cloned().collect())
    }

    /// Failures since the last call, and how many were not kept.
    pub fn take_failures(&mut self) -> (Vec<Failure>, u64) {
        let kept = std::mem::take(&mut self.failures);
        let dropped = self.failures_total - kept.len() as u64;
        self.failures_total = 0;
        (kept, dropped)
    }

    /// Every node.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes
            .iter()
            .map(|n| NodeInfo {
                name: n.name.clone(),
                kind: n.op.kind(),
                inputs: n.inputs.clone(),
                outputs: n.outputs.clone(),
                params: n.op.params(),
                counters: n.op.counters(),
                processed: n.processed,
                emitted: n.emitted,
                failures: n.failures,
                watermark_us: n.op.watermark_us(),
                buffered: n.op.buffered(),
                deterministic: n.op.deterministic(),
                taints_added: TaintSet(n.taints_out.0 & !n.taints_in.0),
                taints_removed: TaintSet(n.taints_in.0 & !n.taints_out.0),
            })
            .collect()
    }

    /// The node called `name`.
    pub fn node_index(&self, name: &str) -> Option<NodeIdx> {
        self.by_node.get(name).copied()
    }

    /// Every edge.
    pub fn edges(&self) -> Vec<EdgeInfo> {
        self.edges
            .iter()
            .map(|e| EdgeInfo {
                name: e.name.clone(),
                source: e.source,
                target: e.target,
                policy: e.policy,
                mailbox: e.mailbox,
                delivered: e.delivered,
                held: e.held.len(),
                held_dropped: e.held_dropped,
                active: e.active,
            })
            .collect()
    }

    /// Every mailbox.
    pub fn mailboxes(&self) -> Vec<MailboxInfo> {
        self.mailboxes
            .iter()
            .map(|m| MailboxInfo {
                name: m.name.clone(),
                edge: m.edge,
                depth: m.queue.depth(),
                capacity: m.queue.capacity(),
                overflow: m.queue.overflow(),
                counters: {
                    // Publishes refused at admission count as the mailbox refusing them.
                    let mut c = m.queue.counters();
                    match m.queue.overflow() {
                        Overflow::Block => c.blocked += m.refused_publishes,
                        _ => c.rejected += m.refused_publishes,
                    }
                    c
                },
                stalled: self.edges[m.edge.0 as usize].stalled.len(),
                span_us: self.now_us() - m.created_us,
                full_us: m.full_us + m.full_since_us.map_or(0, |since| self.now_us() - since),
                busy_ns: m.busy_ns,
            })
            .collect()
    }

    /// The subscription's name and route.
    pub fn subscription(&self, sub: SubscriptionIdx) -> Option<(&str, RouteIdx, EdgeIdx)> {
        self.subscriptions.get(sub.0 as usize).map(|s| (s.name.as_str(), s.route, s.edge))
    }

    /// Guarded work still waiting.
    pub fn gated(&self) -> Vec<GatedInfo> {
        self.gated
            .iter()
            .map(|g| GatedInfo { id: g.id, route: g.route, guard: g.guard, submitted_us: g.submitted_us })
            .collect()
    }

    /// Guarded work that expired (the most recent ones) and the total.
    pub fn expired(&self) -> (Vec<ExpiredInfo>, u64) {
        (self.expired.iter().cloned().collect(), self.expired_total)
    }

    /// Items ready to run now: inline work, mailbox items and due timers.
    pub fn ready_count(&self) -> usize {
        let now = self.now_us();
        self.queue.len()
            + self.mailboxes.iter().map(|m| m.queue.depth()).sum::<usize>()
            + self.timers.iter().filter(|Reverse((due, _, _))| *due <= now).count()
    }

    /// Timers set for later.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Envelopes published by a producer.
    pub fn producer_published(&self, producer: ProducerIdx) -> u64 {
        self.producers.get(producer.0 as usize).map_or(0, |p| p.published)
    }
}

#[cfg(test)]
mod tests;
