//! The fused batch path: a batch of floats published on one route moves through the graph as
//! columns ([`Column`]), not as one envelope per value, and only what someone can observe is
//! built.
//!
//! Observable after a batch: each route's sequence number and `taints_seen`, its retained ring
//! (`latest`, `replay`, `envelope`, `lineage`), node, edge, producer and subscriber counters.
//! The fused path adds the totals to the counters and builds only the last `min(n, retain)`
//! envelopes of each route, with exactly the fields [`Graph::record_at`] writes; operators keep
//! the state the per-event loop would have left ([`Operator::on_column`]).
//!
//! A batch is fused only when everything its route reaches can take a column, checked once per
//! (route, topology version): a virtual clock (a wall clock would give each event its own
//! ingest time), no audited route, only active inline edges, subscribers that take counts
//! ([`Subscriber::deliver_many`]), and nodes with one input and one output whose operator takes
//! columns. Anything else takes the per-event loop ([`Graph::publish_many`]), so results never
//! depend on which path ran.


use manyfold_core::envelope::{Envelope as Meta, EventTime, PayloadRef, ProducerRef, RouteIdx};
use manyfold_core::taint::Taint;

use crate::envelope::Envelope;
use crate::schema::SchemaType;
use crate::value::Value;

use super::schedule::Clock;
use super::*;

impl Graph {
    /// Turns the fused batch path on (the default) or off; off, every batch takes the
    /// per-event loop. Results are the same either way.
    pub fn set_fusion(&mut self, on: bool) {
        self.fusion = on;
    }

    /// Batches of floats that took the fused path, and those that took the per-event loop.
    pub fn fusion_stats(&self) -> (u64, u64) {
        (self.fused_batches, self.unfused_batches)
    }

    /// Publishes `values` on the float route `route` as `producer`, fused when the route
    /// allows it (see this module), else one by one. Returns how many were published and the
    /// error that stopped the batch, as [`Graph::publish_many`] does.
    pub fn publish_floats(&mut self, producer: ProducerIdx, route: RouteIdx, values: &[f64]) -> (u64, Option<GraphError>) {
        if let Err(e) = self.admit_producer(producer, route) {
            return (0, Some(e));
        }
        if self.fusable(route) {
            self.fused_batches += 1;
            let now = self.now_us();
            let state = &self.routes[route.0 as usize];
            let mut column = Column::empty();
            column.values = values.to_vec();
            column.event_time = EventTime { time_us: now, domain: state.options.clock_domain };
            self.producers[producer.0 as usize].published += values.len() as u64;
            self.run_column(route, ProducerRef::External(producer.0), column);
            return (values.len() as u64, None);
        }
        self.unfused_batches += 1;
        self.publish_many(producer, route, values.iter().map(|v| Value::Float(*v)))
    }

    /// True when a batch on `route` (a float route) can take the fused path now.
    fn fusable(&mut self, route: RouteIdx) -> bool {
        if !self.fusion || !matches!(self.clock, Clock::Virtual { .. }) {
            return false;
        }
        let Some(state) = self.routes.get(route.0 as usize) else { return false };
        if state.schema.ty != SchemaType::Float {
            return false;
        }
        if let Some((version, ok)) = state.fused {
            if version == self.topology_version {
                return ok;
            }
        }
        let ok = self.plan_column(route);
        self.routes[route.0 as usize].fused = Some((self.topology_version, ok));
        ok
    }

    /// True when every consumer reachable from `route` takes a column. Bounded: the inline
    /// graph is acyclic, and each node has one input, so each route is visited once.
    fn plan_column(&mut self, route: RouteIdx) -> bool {
        let state = &self.routes[route.0 as usize];
        if state.options.audit {
            return false;
        }
        for e in state.consumers.clone() {
            let edge = &self.edges[e.0 as usize];
            if !edge.active || !edge.policy.is_inline() || edge.mailbox.is_some() {
                return false;
            }
            match edge.target {
                Target::Subscription(sub) => {
                    if !self.subscriptions[sub.0 as usize].sink.deliver_many(0) {
                        return false;
                    }
                }
                Target::Node { node, port } => {
                    let state = &mut self.nodes[node.0 as usize];
                    if state.inputs.len() != 1 || state.outputs.len() != 1 {
                        return false;
                    }
                    let (probe, mut out) = (Column::empty(), Column::empty());
                    if state.op.on_column(port, &probe, &mut out).is_none() || !out.is_empty() {
                        return false;
                    }
                    let output = state.outputs[0];
                    if !self.plan_column(output) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Records `column` on `route` and runs it through the route's consumers (a plan said
    /// they all take columns).
    fn run_column(&mut self, route: RouteIdx, producer: ProducerRef, mut column: Column) {
        let n = column.len();
        if n == 0 {
            return;
        }
        self.record_column(route, producer, &mut column);
        let taints = column.taints_all();
        for e in self.routes[route.0 as usize].consumers.clone() {
            let edge = &mut self.edges[e.0 as usize];
            edge.delivered += n as u64;
            match edge.target {
                Target::Subscription(sub) => {
                    // Cannot refuse: the plan asked it.
                    self.subscriptions[sub.0 as usize].sink.deliver_many(n as u64);
                }
                Target::Node { node, port } => {
                    let state = &mut self.nodes[node.0 as usize];
                    state.processed += n as u64;
                    state.taints_in = state.taints_in.join(taints);
                    let mut out = Column::empty();
                    let result = match state.op.on_column(port, &column, &mut out) {
                        Some(result) => result,
                        None => Err(OpFailure::new("took columns when planned, then refused one; the batch stopped at this node")),
                    };
                    if let Err(failure) = result {
                        state.failures += 1;
                        let origin = format!("node {}", state.name);
                        self.keep_failure(origin, failure);
                        continue;
                    }
                    state.emitted += out.len() as u64;
                    state.taints_out = state.taints_out.join(out.taints_all());
                    let output = state.outputs[0];
                    self.run_column(output, ProducerRef::Node(node.0), out);
                }
            }
        }
    }

    /// Advances `route` by the column's elements: sequence numbers, `taints_seen`, and the
    /// retained ring, which gets the last `min(n, retain)` envelopes built as
    /// [`Graph::record_at`] builds them.
    fn record_column(&mut self, route: RouteIdx, producer: ProducerRef, column: &mut Column) {
        let now = self.now_us();
        let epoch = self.epoch;
        let state = &mut self.routes[route.0 as usize];
        if state.ephemeral {
            column.taints = column.taints.with(Taint::DetNonReplayable);
            for (t, _) in &mut column.head {
                *t = t.with(Taint::DetNonReplayable);
            }
        }
        let n = column.len();
        column.route = route;
        column.first_seq = state.seq + 1;
        state.seq += n as u64;
        state.taints_seen = state.taints_seen.join(column.taints_all());
        let keep = n.min(state.options.retain);
        for i in n - keep..n {
            let fresh = Envelope {
                meta: Meta {
                    id: column.id(i),
                    producer,
                    event_time: column.event_time,
                    ingest_time_us: now,
                    control_epoch: Some(epoch),
                    taints: column.taints_of(i),
                    parents: column.parents_of(i),
                    payload: PayloadRef::Inline { len: 9 },
                },
                value: Value::Float(column.values[i]),
                parents_elided: 0,
            };
            state.retain_envelope(fresh);
        }
    }
}
