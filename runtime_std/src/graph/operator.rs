//! The operator interface: what a graph node implements.
//!
//! An operator sees one input envelope (or a timer, or a demand) at a time through
//! [`Operator::on_input`] and answers by pushing outputs into an [`OpContext`]. It never touches
//! the graph: the graph publishes the outputs on the node's output route, so identity, sequence
//! numbers, taints and lineage are handled in one place.

use std::any::Any;
use std::fmt;

use manyfold_core::envelope::{EnvelopeId, EventTime};
use manyfold_core::taint::TaintSet;

use super::audit::{AuditKind, AuditLog};
use super::payload::Payloads;
use crate::envelope::{Envelope, EnvelopeRef, Parents};
use crate::value::Value;

/// One value an operator emits.
#[derive(Debug, Clone)]
pub struct Output {
    /// The output port (index into the node's output routes); 0 for single-output nodes.
    pub port: usize,
    /// The payload.
    pub value: Value,
    /// The envelopes it was derived from.
    pub parents: Parents,
    /// Parents not listed (over the lineage bound).
    pub parents_elided: u32,
    /// Its event time.
    pub event_time: EventTime,
    /// Its taints: normally the join of its parents' taints plus any the operator adds.
    pub taints: TaintSet,
    /// When the value passes a lazy envelope through unchanged: that envelope, so the output
    /// carries the same lazy payload (opened from the same source).
    pub payload_from: Option<EnvelopeId>,
}

impl Output {
    /// An output derived from one input: same event time, the input's taints plus `added`,
    /// and the input's lazy payload if it has one.
    pub fn derived(value: Value, from: &Envelope, added: TaintSet) -> Output {
        let mut parents = Parents::new();
        parents.push(from.meta.id);
        Output {
            port: 0,
            value,
            parents,
            parents_elided: 0,
            event_time: from.meta.event_time,
            taints: from.meta.taints.join(added),
            payload_from: match from.meta.payload {
                manyfold_core::envelope::PayloadRef::Lazy { .. } => Some(from.meta.id),
                manyfold_core::envelope::PayloadRef::Inline { .. } => None,
            },
        }
    }
}

/// What an operator can do while handling one input.
pub struct OpContext<'a> {
    /// The graph clock, in microseconds.
    pub now_us: i64,
    /// The current control epoch.
    pub epoch: u64,
    pub(crate) outputs: &'a mut Vec<Output>,
    pub(crate) timers: &'a mut Vec<(i64, u64)>,
    /// Inputs this operator lost (dropped as late, over capacity, rate limited) while handling
    /// this input; the graph adds them to the publish receipt's `dropped`.
    pub(crate) lost: &'a mut u64,
    /// Inputs this operator rejected (a full rejecting buffer reached from inside a dispatch);
    /// the graph adds them to the publish receipt's `rejected`.
    pub(crate) rejected: &'a mut u64,
    pub(crate) node_name: &'a str,
    pub(crate) payloads: &'a mut Payloads,
    pub(crate) audit: &'a mut AuditLog,
    pub(crate) routes: &'a [super::RouteState],
}

impl OpContext<'_> {
    /// Reports that the operator lost `count` values (they will never be emitted), so the
    /// publish that caused it does not report a clean success.
    pub fn count_loss(&mut self, count: u64) {
        *self.lost += count;
    }

    /// Reports that the operator rejected `count` values it could not refuse to their producer
    /// (a full rejecting buffer reached from inside a dispatch).
    pub fn count_rejected(&mut self, count: u64) {
        *self.rejected += count;
    }

    /// Emits a value on the node's output route.
    pub fn emit(&mut self, output: Output) {
        self.outputs.push(output);
    }

    /// Opens the lazy payload of `id` on behalf of this node (cached, checked against its
    /// digest, recorded as demand by this node).
    pub fn open_payload(&mut self, id: EnvelopeId) -> Result<std::sync::Arc<[u8]>, OpFailure> {
        let label = match self.routes.get(id.route.0 as usize) {
            Some(r) => format!("{}@{}", r.route, id.seq),
            None => format!("route #{}@{}", id.route.0, id.seq),
        };
        let consumer = format!("node {}", self.node_name);
        let origin = self.payloads.origin(id);
        let result = self.payloads.open(id, &consumer, self.now_us, &label);
        if result.is_ok() {
            if let Some(record) = self.payloads.records().last().filter(|r| r.id == origin).cloned() {
                self.audit.push(self.now_us, origin, AuditKind::Opened { consumer: record.consumer, bytes: record.bytes, cache_hit: record.cache_hit });
            }
        }
        result.map_err(OpFailure::new)
    }

    /// The name of the node running.
    pub fn node_name(&self) -> &str {
        self.node_name
    }

    /// Asks for [`Operator::on_timer`] with `token` once the clock reaches `at_us`.
    pub fn set_timer(&mut self, at_us: i64, token: u64) {
        self.timers.push((at_us, token));
    }
}

/// A parameter value, for describing an operator in topology queries and manifests.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A word or name.
    Text(String),
    /// A flag.
    Bool(bool),
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Int(v) => write!(f, "{v}"),
            Param::Float(v) => write!(f, "{v}"),
            Param::Text(v) => write!(f, "{v}"),
            Param::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// An operator failed on an input (for example a Python callable raised). `cause` carries the
/// original error object for bindings that re-raise it.
pub struct OpFailure {
    /// What went wrong, as a sentence.
    pub message: String,
    /// The original error, if any.
    pub cause: Option<Box<dyn Any + Send>>,
}

impl OpFailure {
    /// A failure with only a message.
    pub fn new(message: impl Into<String>) -> OpFailure {
        OpFailure { message: message.into(), cause: None }
    }
}

impl fmt::Debug for OpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpFailure({:?})", self.message)
    }
}

/// How an operator is doing, for the `health` query: healthy; degraded (it works, but lost,
/// dropped or forced something); blocked (it refuses new work until something changes).
/// Ordered: the worst state is the greatest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthState { Healthy, Degraded, Blocked }

/// A health state and why (one sentence per reason; empty when healthy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health { pub state: HealthState, pub why: Vec<String> }

impl HealthState {
    /// The word answers use: `healthy`, `degraded` or `blocked`.
    pub fn word(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Blocked => "blocked",
        }
    }

    /// The state a word names (`healthy`, `degraded`, `blocked`).
    pub fn from_word(word: &str) -> Option<HealthState> {
        Some(match word {
            "healthy" => HealthState::Healthy,
            "degraded" => HealthState::Degraded,
            "blocked" => HealthState::Blocked,
            _ => return None,
        })
    }
}

impl Health {
    /// Healthy, with nothing to say.
    pub fn healthy() -> Health {
        Health { state: HealthState::Healthy, why: Vec::new() }
    }

    /// Adds one reason: the state becomes the worse of the two.
    pub fn add(&mut self, state: HealthState, why: impl Into<String>) {
        self.state = self.state.max(state);
        self.why.push(why.into());
    }

    /// Joins `other` in: the worse state, both lists of reasons.
    pub fn join(&mut self, other: Health) {
        self.state = self.state.max(other.state);
        self.why.extend(other.why);
    }

    /// None when healthy with nothing to say (what [`Operator::health`] returns then).
    pub fn reported(self) -> Option<Health> {
        (self.state != HealthState::Healthy || !self.why.is_empty()).then_some(self)
    }
}

/// A graph node's behaviour.
pub trait Operator: Send {
    /// The operator's kind, e.g. `"count_window"`.
    fn kind(&self) -> &'static str;

    /// The operator itself, for readers that know its type (a materialized view's rows).
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }

    /// Handles one envelope arriving on input `port`.
    fn on_input(&mut self, port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure>;

    /// Handles a timer set with [`OpContext::set_timer`].
    fn on_timer(&mut self, _token: u64, _ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        Ok(())
    }

    /// Handles a demand to release up to `count` buffered items (all when `None`).
    fn on_demand(&mut self, _count: Option<usize>, _ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        Ok(())
    }

    /// For an operator that buffers what reaches input `port` and refuses when full (a
    /// capacitor declared `block` or `reject`): its policy and whether it is full now. A publish
    /// that would reach such an input inline while it is full is refused before anything is
    /// recorded, as a full blocking or rejecting mailbox refuses it.
    fn admission(&self, _port: usize) -> Option<(manyfold_core::mailbox::Overflow, bool)> {
        None
    }

    /// A publish was refused because [`Operator::admission`] said this operator was full.
    fn refused(&mut self) {}

    /// The most outputs one input can cause (for flow planning).
    fn max_burst(&self) -> usize {
        1
    }

    /// Parameters, for topology queries and manifests.
    fn params(&self) -> Vec<(&'static str, Param)> {
        Vec::new()
    }

    /// Counters (late values, drops, ...), for flow queries.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// The operator's watermark, for windows and joins.
    fn watermark_us(&self) -> Option<i64> {
        None
    }

    /// Items the operator buffers now, and the most it can buffer.
    fn buffered(&self) -> Option<(usize, usize)> {
        None
    }

    /// False when the operator's outputs are not a function of its inputs.
    fn deterministic(&self) -> bool {
        true
    }

    /// How the operator is doing (healthy, degraded or blocked, and why), for the `health`
    /// query; None when it has nothing to say (healthy).
    fn health(&self) -> Option<Health> { None }

    /// A timer token to fire once at the graph's current time when the node is added (an
    /// operator that restores durable state delivers it then, after its consumers are wired).
    fn start_timer(&self) -> Option<u64> {
        None
    }

    /// Handles a whole column of float envelopes arriving on input `port` at once (the fused
    /// batch path, [`super::fused`]): fills `out` with exactly what [`Operator::on_input`]
    /// would have emitted for each envelope in turn, and leaves the operator in the state those
    /// calls would have left it in. `None`: this operator cannot (the graph then never fuses a
    /// batch through it). An empty column is the graph's probe and must change nothing.
    fn on_column(&mut self, _port: usize, _input: &Column, _out: &mut ColumnOut) -> Option<Result<(), OpFailure>> {
        None
    }
}

/// How the envelopes of a column past its head name their parents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnParents {
    /// No parents (published by an external producer).
    None,
    /// Element `i` is derived from the `span` consecutive envelopes of `source` whose newest
    /// has sequence number `newest + i * every`.
    Span {
        /// The route the parents were recorded on.
        source: manyfold_core::envelope::RouteIdx,
        /// Sequence number of element 0's newest parent.
        newest: u64,
        /// Parents' sequence numbers advance by this much per element.
        every: u64,
        /// Parents per element.
        span: u64,
    },
}

/// A run of float envelopes on one route that the fused batch path moves without building
/// them: values, and metadata that is the same for all (event time, taints, parent
/// arithmetic) except for the first `head.len()` elements, which carry their own taints and
/// parents. The graph sets `route` and `first_seq` when it records the column.
#[derive(Debug, Clone)]
pub struct Column {
    /// The values, oldest first.
    pub values: Vec<f64>,
    /// Event time of every element.
    pub event_time: EventTime,
    /// Taints of elements past the head.
    pub taints: TaintSet,
    /// Taints and parents of the first elements.
    pub head: Vec<(TaintSet, Parents)>,
    /// Parents of elements past the head.
    pub parents: ColumnParents,
    /// The route the column is recorded on.
    pub route: manyfold_core::envelope::RouteIdx,
    /// Sequence number of element 0 on `route`.
    pub first_seq: u64,
}

/// What an operator fills from [`Operator::on_column`]: the column it emits on output 0.
pub type ColumnOut = Column;

impl Column {
    /// A column with no elements.
    pub fn empty() -> Column {
        Column {
            values: Vec::new(),
            event_time: EventTime { time_us: 0, domain: manyfold_core::envelope::ClockDomain::INGEST },
            taints: TaintSet::EMPTY,
            head: Vec::new(),
            parents: ColumnParents::None,
            route: manyfold_core::envelope::RouteIdx(0),
            first_seq: 0,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The id of element `i` once recorded.
    #[inline]
    pub fn id(&self, i: usize) -> EnvelopeId {
        EnvelopeId { route: self.route, seq: self.first_seq + i as u64 }
    }

    /// The taints of element `i`.
    #[inline]
    pub fn taints_of(&self, i: usize) -> TaintSet {
        match self.head.get(i) {
            Some((t, _)) => *t,
            None => self.taints,
        }
    }

    /// The parents of element `i`.
    pub fn parents_of(&self, i: usize) -> Parents {
        if let Some((_, p)) = self.head.get(i) {
            return p.clone();
        }
        match self.parents {
            ColumnParents::None => Parents::new(),
            ColumnParents::Span { source, newest, every, span } => {
                let last = newest + i as u64 * every;
                (last + 1 - span..=last).map(|seq| EnvelopeId { route: source, seq }).collect()
            }
        }
    }

    /// The join of every element's taints (empty for an empty column).
    pub fn taints_all(&self) -> TaintSet {
        let n = self.values.len();
        let mut all = self.head.iter().take(n).fold(TaintSet::EMPTY, |acc, (t, _)| acc.join(*t));
        if n > self.head.len() {
            all = all.join(self.taints);
        }
        all
    }
}

/// Collects the ids and joined taints of the envelopes an output is derived from, keeping at
/// most `bound` ids and counting the rest.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    /// Parent ids (at most the bound).
    pub parents: Vec<EnvelopeId>,
    /// Parents beyond the bound.
    pub elided: u32,
    /// Join of the parents' taints.
    pub taints: TaintSet,
}

impl Lineage {
    /// Adds one parent.
    pub fn add(&mut self, id: EnvelopeId, taints: TaintSet, bound: usize) {
        if self.parents.len() < bound {
            self.parents.push(id);
        } else {
            self.elided = self.elided.saturating_add(1);
        }
        self.taints = self.taints.join(taints);
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &Lineage, bound: usize) {
        for id in &other.parents {
            if self.parents.len() < bound {
                self.parents.push(*id);
            } else {
                self.elided = self.elided.saturating_add(1);
            }
        }
        self.elided = self.elided.saturating_add(other.elided);
        self.taints = self.taints.join(other.taints);
    }
}
