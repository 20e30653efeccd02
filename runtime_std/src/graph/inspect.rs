//! Reading the graph without changing it (except for explicit payload opens): latest envelopes
//! and replay, lineage, snapshots of nodes, edges, mailboxes and the scheduler, payload demand,
//! the route audit and the failures kept for the caller.

use std::cmp::Reverse;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use manyfold_core::envelope::{EnvelopeId, RouteIdx};
use manyfold_core::mailbox::{MailboxCounters, Overflow};
use manyfold_core::taint::TaintSet;

use crate::envelope::EnvelopeRef;

use super::*;

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

impl Graph {
    /// The latest envelope of a route.
    pub fn latest(&self, route: RouteIdx) -> Result<Option<EnvelopeRef>, GraphError> {
        Ok(self.route_state(route)?.retained.back().cloned())
    }

    /// Every envelope a route retains (for lineage), oldest first.
    pub fn retained(&self, route: RouteIdx) -> Vec<EnvelopeRef> {
        self.routes.get(route.0 as usize).map_or_else(Vec::new, |r| r.retained.iter().cloned().collect())
    }

    /// The replay history of a route (its newest `history` envelopes), oldest first.
    pub fn replay(&self, route: RouteIdx) -> Result<Vec<EnvelopeRef>, GraphError> {
        let state = self.route_state(route)?;
        let skip = state.retained.len().saturating_sub(state.options.history);
        Ok(state.retained.iter().skip(skip).cloned().collect())
    }

    /// A retained envelope by id (for lineage), if still kept.
    pub fn envelope(&self, id: EnvelopeId) -> Option<EnvelopeRef> {
        let state = self.routes.get(id.route.0 as usize)?;
        let first = state.retained.front()?.meta.id.seq;
        let offset = id.seq.checked_sub(first)?;
        // Local publishes number a route without gaps; envelopes ingested from a link may skip
        // the sequence numbers lost on the way, so a miss at the offset searches.
        match state.retained.get(usize::try_from(offset).ok()?) {
            Some(env) if env.meta.id.seq == id.seq => Some(env.clone()),
            _ => state.retained.binary_search_by_key(&id.seq, |e| e.meta.id.seq).ok().map(|i| state.retained[i].clone()),
        }
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

    /// Union of the taints of every envelope published on a route so far.
    pub fn route_taints(&self, route: RouteIdx) -> Result<TaintSet, GraphError> {
        Ok(self.route_state(route)?.taints_seen)
    }

    /// Sequence number of the last envelope on a route (0 before any).
    pub fn route_seq(&self, route: RouteIdx) -> Result<u64, GraphError> {
        Ok(self.route_state(route)?.seq)
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

    /// The name of a node (`"?"` for an index no node has), without a snapshot of every node.
    pub fn node_name(&self, node: NodeIdx) -> &str {
        self.nodes.get(node.0 as usize).map_or("?", |n| n.name.as_str())
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
                    // Publishes refused at admission count as the mailbox refusing them, and
                    // burst items dropped at a full stall area as new items it discarded.
                    let mut c = m.queue.counters();
                    c.dropped_newest += m.stall_dropped;
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
            + self.timers.iter().filter(|Reverse((due, _, _, _))| *due <= now).count()
    }

    /// How many guarded publishes may wait at once.
    pub fn gated_max(&self) -> usize {
        self.gated_max
    }

    /// Guarded publishes refused because `gated_max` were already waiting.
    pub fn gated_refused(&self) -> u64 {
        self.gated_refused
    }

    /// Node timers set (due now or later).
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Envelopes published by a producer.
    pub fn producer_published(&self, producer: ProducerIdx) -> u64 {
        self.producers.get(producer.0 as usize).map_or(0, |p| p.published)
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

    /// The declared length and SHA-256 of the lazy payload `id` carries (directly or derived
    /// from a lazy envelope), while this graph still holds its source.
    pub fn lazy_payload(&self, id: EnvelopeId) -> Option<(u64, manyfold_core::envelope::Digest)> {
        self.payloads.lazy_ref(id).map(|(_, len, digest)| (len, digest))
    }

    /// Payload demand on a route.
    pub fn payload_demand(&self, route: RouteIdx) -> RouteDemand {
        self.payloads.demand(route)
    }

    /// Opens of one envelope's payload.
    pub fn payload_opens(&self, id: EnvelopeId) -> Vec<OpenRecord> {
        self.payloads.opens_of(id)
    }

    /// Bounds the lazy payload sources kept (older payloads are no longer held).
    pub fn set_payload_sources_max(&mut self, sources: usize) {
        self.payloads.set_sources_max(sources);
    }

    /// Bounds the payload cache.
    pub fn set_payload_cache_bytes(&mut self, bytes: usize) {
        self.payloads.set_cache_bytes_max(bytes);
    }

    /// Audit entries of a route, oldest first.
    pub fn audit_of(&self, route: RouteIdx) -> Vec<AuditEntry> {
        self.audit.of_route(route)
    }
}
