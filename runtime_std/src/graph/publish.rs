//! Envelopes in: a publish is checked (ownership, schema, admission through blocking and
//! rejecting mailboxes), recorded on its route, and fanned out into its edges: inline consumers
//! run now, mailboxes take it (or drop, counted and tainted), epoch boundaries hold it.

use std::collections::BTreeSet;

use manyfold_core::envelope::{
    ClockDomain, Envelope as Meta, EnvelopeId, EventTime, PayloadRef, ProducerRef, RouteIdx,
};
use manyfold_core::mailbox::{Offer, Overflow};
use manyfold_core::taint::{Taint, TaintSet};

use crate::envelope::{Envelope, EnvelopeRef, Parents};
use crate::value::Value;

use super::*;

/// The most items an epoch-boundary edge holds between epochs; older ones are dropped
/// (counted, and the first item released at the next epoch is tainted).
pub const EPOCH_HOLD_MAX: usize = 4096;

/// The most items of a burst that wait at a full blocking mailbox's edge (a burst comes from
/// one dispatch: an operator emitting several outputs, timers firing together); beyond that
/// they are dropped, counted as `dropped_newest` and tainted.
pub const STALLED_MAX: usize = 4096;

/// The most failures kept for the caller to inspect; later ones are only counted.
pub const FAILURES_KEPT_MAX: usize = 64;

/// A buffer a publish must find room in before anything is recorded: a blocking or rejecting
/// mailbox, or a node input that refuses when full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Gate {
    /// A mailbox.
    Mailbox(MailboxIdx),
    /// Input `port` of a node.
    Node(NodeIdx, usize),
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
    pub(super) fn check_owner(&self, producer: ProducerIdx, route: RouteIdx) -> Result<(), GraphError> {
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

    /// Blocking and rejecting buffers a publish on `route` reaches inline: mailboxes, and node
    /// inputs that refuse when full (capacitors declared `block` or `reject`).
    fn admission_set(&mut self, route: RouteIdx) -> Vec<Gate> {
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
                        set.push(Gate::Mailbox(mb));
                    }
                } else if !edge.policy.epoch_boundary {
                    if let Target::Node { node, port } = edge.target {
                        let state = &self.nodes[node.0 as usize];
                        if state.op.admission(port).is_some() {
                            set.push(Gate::Node(node, port));
                        }
                        for out in &state.outputs {
                            if seen.insert(*out) {
                                frontier.push(*out);
                            }
                        }
                    }
                }
            }
        }
        set.sort();
        set.dedup();
        self.routes[route.0 as usize].admission = Some((self.topology_version, set.clone()));
        set
    }

    /// The policy of `gate` when it is full now (a mailbox with no room beyond the items
    /// stalled at its edge, a node input that says it is full).
    fn gate_full(&self, gate: Gate) -> Option<Overflow> {
        match gate {
            Gate::Mailbox(mb) => {
                let state = &self.mailboxes[mb.0 as usize];
                let stalled = self.edges[state.edge.0 as usize].stalled.len();
                (state.queue.free() <= stalled).then(|| state.queue.overflow())
            }
            Gate::Node(node, port) => match self.nodes[node.0 as usize].op.admission(port) {
                Some((overflow, true)) => Some(overflow),
                _ => None,
            },
        }
    }

    /// True when a publish on `route` would find room in every blocking or rejecting buffer it
    /// reaches inline. Counts and records nothing (the scheduler asks it for guarded work).
    pub fn admissible(&mut self, route: RouteIdx) -> bool {
        self.admission_set(route).into_iter().all(|gate| self.gate_full(gate).is_none())
    }

    /// Checks that a publish on `route` by `producer` would not hit a full blocking or
    /// rejecting buffer (mailbox or capacitor). When it would, the publish is refused: every
    /// full buffer counts the refusal, the audit records who was refused and why, and the error
    /// names the buffer. A full `reject` buffer wins over a full `block` one (`Rejected`, not
    /// `MustWait`): it promises an immediate refusal, and waiting for the blocking one to
    /// drain would break that promise.
    pub fn check_admission(&mut self, producer: ProducerIdx, route: RouteIdx) -> Result<(), GraphError> {
        let gates = self.admission_set(route);
        let (mut first, mut reject) = (None, None);
        for gate in &gates {
            if let Some(overflow) = self.gate_full(*gate) {
                first = first.or(Some((*gate, overflow)));
                if overflow == Overflow::Reject {
                    reject = reject.or(Some((*gate, overflow)));
                }
            }
        }
        let Some((gate, overflow)) = reject.or(first) else { return Ok(()) };
        for other in gates {
            if self.gate_full(other).is_some() {
                match other {
                    Gate::Mailbox(mb) => self.mailboxes[mb.0 as usize].refused_publishes += 1,
                    Gate::Node(node, _) => self.nodes[node.0 as usize].op.refused(),
                }
            }
        }
        let (what, capacity, wait) = match gate {
            Gate::Mailbox(mb) => {
                let state = &self.mailboxes[mb.0 as usize];
                (format!("mailbox {}", state.name), state.queue.capacity(), "wait for the scheduler to drain it")
            }
            Gate::Node(node, _) => {
                let state = &self.nodes[node.0 as usize];
                let capacity = state.op.buffered().map_or(0, |(_, c)| c);
                (format!("node {} ({})", state.name, state.op.kind()), capacity, "discharge it")
            }
        };
        let policy = if overflow == Overflow::Block { "block" } else { "reject" };
        self.note_refused(producer, route, format!("{what} is full ({policy})"));
        let route_name = &self.routes[route.0 as usize].route;
        Err(match overflow {
            Overflow::Block => GraphError::MustWait(format!(
                "{what} is full ({capacity} items) and blocks: {wait}, then publish on {route_name} again"
            )),
            _ => GraphError::Rejected(format!("{what} is full ({capacity} items) and rejects: the publish on {route_name} was refused")),
        })
    }

    /// Records that `producer` was refused a publish on `route` (by the graph, or before it
    /// reached the graph: a value or an argument a binding could not convert), so the audit
    /// names every refusal.
    pub fn note_refused(&mut self, producer: ProducerIdx, route: RouteIdx, reason: String) {
        let now = self.now_us();
        let who = self.producer_name(producer).to_string();
        self.audit.push(now, EnvelopeId { route, seq: 0 }, AuditKind::Refused { producer: who, reason });
    }

    /// Admits publishes by `producer` on `route`: it owns the route or was granted it. A
    /// refusal is recorded in the route audit. [`Graph::admit_value`] admits each value.
    pub(super) fn admit_producer(&mut self, producer: ProducerIdx, route: RouteIdx) -> Result<(), GraphError> {
        self.check_owner(producer, route).inspect_err(|e| {
            if matches!(e, GraphError::NotOwner(_)) {
                self.note_refused(producer, route, "not the owner".into());
            }
        })
    }

    /// Admits one value of a publish [`Graph::admit_producer`] admitted: it fits the route's
    /// schema and, with `room`, every blocking or rejecting buffer it reaches inline has room
    /// ([`Graph::check_admission`]). A refusal is recorded in the route audit.
    pub(super) fn admit_value(&mut self, producer: ProducerIdx, route: RouteIdx, value: &Value, room: bool) -> Result<(), GraphError> {
        if let Err(e) = self.check_value(route, value) {
            self.note_refused(producer, route, e.message().to_string());
            return Err(e);
        }
        if room {
            self.check_admission(producer, route)?;
        }
        Ok(())
    }

    /// The one admission of every publish call: [`Graph::admit_producer`], then
    /// [`Graph::admit_value`]. Whatever refuses the publish, the route audit records it.
    pub(super) fn admit(&mut self, producer: ProducerIdx, route: RouteIdx, value: &Value, room: bool) -> Result<(), GraphError> {
        self.admit_producer(producer, route)?;
        self.admit_value(producer, route, value, room)
    }

    /// Publishes `value` on `route` as `producer`, and runs everything inline downstream.
    pub fn publish(
        &mut self,
        producer: ProducerIdx,
        route: RouteIdx,
        value: Value,
        options: &PublishOptions,
    ) -> Result<PublishReceipt, GraphError> {
        self.admit(producer, route, &value, true)?;
        self.publish_unchecked(producer, route, value, options)
    }

    /// Checks `value` against the schema of `route`.
    pub(super) fn check_value(&self, route: RouteIdx, value: &Value) -> Result<(), GraphError> {
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
        if let Err(e) = self.admit_producer(producer, route) {
            return (0, Some(e));
        }
        let options = PublishOptions::default();
        let mut count = 0;
        // The topology cannot change during this call, so an empty admission set stays empty.
        let gated = !self.admission_set(route).is_empty();
        for value in values {
            if let Err(e) = self.admit_value(producer, route, &value, gated) {
                return (count, Some(e));
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
    // Each argument is one fact of the envelope the caller already holds apart; a struct would
    // only be built to be taken apart again on this one call.
    #[allow(clippy::too_many_arguments)]
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
        self.admit(producer, route, &meta, true)?;
        // The source must be registered before downstream nodes (which may open it) run, so
        // the envelope id is predicted from the route's sequence number.
        let id = EnvelopeId { route, seq: self.routes[route.0 as usize].seq + 1 };
        self.payloads.add_source(id, len, digest, open);
        self.publish_with_payload(producer, route, meta, PayloadRef::Lazy { len, digest }, options)
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
        let seq = self.routes[route.0 as usize].seq + 1;
        self.record_at(route, seq, value, payload, producer, event_time, taints, parents, parents_elided)
    }

    /// Records an envelope on `route` with sequence number `seq` (above the route's last: a
    /// local publish takes the next one, an ingested envelope keeps the one it was given).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_at(
        &mut self,
        route: RouteIdx,
        seq: u64,
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
        state.seq = seq;
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
        let env = state.retain_envelope(fresh);
        state.taints_seen = state.taints_seen.join(taints);
        if state.options.audit {
            let id = env.meta.id;
            self.audit.push(now, id, AuditKind::Published { producer });
        }
        env
    }

    pub(super) fn fan_out(&mut self, route: RouteIdx, env: EnvelopeRef) {
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
        let state = &self.edges[edge.0 as usize];
        if let Some(mb) = state.mailbox {
            self.offer_mailbox(mb, env);
        } else if state.policy.epoch_boundary {
            self.hold_for_epoch(edge, env);
        } else {
            self.queue.push_back((edge, env));
        }
    }

    /// Holds `env` at an epoch-boundary edge until the next epoch; a full hold drops its oldest
    /// item (counted, audited, and the first item released next is tainted).
    fn hold_for_epoch(&mut self, edge: EdgeIdx, env: EnvelopeRef) {
        let now = self.now_us();
        let state = &mut self.edges[edge.0 as usize];
        if state.held.len() >= EPOCH_HOLD_MAX {
            if let Some(lost) = state.held.pop_front() {
                state.held_dropped += 1;
                state.held_taints = state.held_taints.with(Taint::DeliveryDropped);
                self.lost_total += 1;
                let at = format!("epoch hold {}", state.name);
                self.audit.push(now, lost.meta.id, AuditKind::Dropped { at });
            }
        }
        state.held.push_back(env);
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
                let at = format!("mailbox {}", state.name);
                self.audit.push(now, lost.meta.id, AuditKind::Dropped { at });
            }
            Offer::Rejected(lost) => {
                state.pending_taints = state.pending_taints.with(Taint::DeliveryDropped);
                self.rejected_total += 1;
                let at = format!("mailbox {}", state.name);
                self.audit.push(now, lost.meta.id, AuditKind::Dropped { at });
            }
            Offer::MustWait(env) => {
                // A burst from inside one dispatch: it waits at the edge, up to STALLED_MAX.
                let stalled = &mut self.edges[state.edge.0 as usize].stalled;
                if stalled.len() < STALLED_MAX {
                    stalled.push_back(env);
                } else {
                    state.stall_dropped += 1;
                    state.pending_taints = state.pending_taints.with(Taint::DeliveryDropped);
                    self.lost_total += 1;
                    let at = format!("mailbox {}", state.name);
                    self.audit.push(now, env.meta.id, AuditKind::Dropped { at });
                }
            }
        }
    }

    pub(super) fn drain_queue(&mut self) {
        // Bounded: the inline graph is acyclic (checked when edges are added), so each publish
        // causes finitely many deliveries.
        while let Some((edge, env)) = self.queue.pop_front() {
            self.deliver(edge, &env);
        }
    }

    pub(super) fn deliver(&mut self, edge: EdgeIdx, env: &EnvelopeRef) {
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

    pub(super) fn keep_failure(&mut self, origin: String, failure: OpFailure) {
        self.failures_total += 1;
        if self.failures.len() < FAILURES_KEPT_MAX {
            self.failures.push(Failure { origin, message: failure.message, cause: failure.cause });
        }
    }

    pub(super) fn run_node<F>(&mut self, node: NodeIdx, input_taints: TaintSet, f: F)
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
        let (mut lost, mut rejected) = (0u64, 0u64);
        let result = {
            let mut ctx = OpContext {
                now_us,
                epoch,
                outputs: &mut outputs,
                timers: &mut timers,
                lost: &mut lost,
                rejected: &mut rejected,
                node_name: &state.name,
                payloads,
                audit,
                routes,
            };
            f(state.op.as_mut(), &mut ctx)
        };
        self.lost_total += lost;
        self.rejected_total += rejected;
        if let Err(failure) = result {
            let state = &mut self.nodes[node.0 as usize];
            state.failures += 1;
            let origin = format!("node {}", state.name);
            self.keep_failure(origin, failure);
        }
        for (at, token) in timers.drain(..) {
            if self.timers.len() >= TIMERS_MAX {
                let state = &mut self.nodes[node.0 as usize];
                state.failures += 1;
                let origin = format!("node {}", state.name);
                let message = format!("set a timer for {at} us, but the graph already holds {TIMERS_MAX} timers; the timer was refused");
                self.keep_failure(origin, OpFailure::new(message));
                continue;
            }
            self.timer_seq += 1;
            self.timers.push(Reverse((at, self.timer_seq, node, token)));
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
}
