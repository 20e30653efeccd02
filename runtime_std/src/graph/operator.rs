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
