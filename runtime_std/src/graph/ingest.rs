//! Envelopes received from a link: a runtime node hosting partition Q receives, over a link,
//! the envelopes of routes produced in the peer's partition. They are recorded on this graph's
//! copy of the route keeping their identity (route, seq), event time and domain, taints and
//! parents, with the runtime as their producer, then fanned out exactly as a publish is: the
//! forward node of the crossing (built from the manifest) then adds the link's taints, so the
//! split graph gives the values, taints and lineage of the single-process graph.

use manyfold_core::envelope::{EnvelopeId, EventTime, PayloadRef, ProducerRef};

use crate::envelope::Parents;

use super::*;

/// One envelope as a link delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    /// Its sequence number on the route (given by the producing node).
    pub seq: u64,
    /// Event time and clock domain.
    pub event_time: EventTime,
    /// Its taints, plus any the link adds (a capability it lacks).
    pub taints: TaintSet,
    /// Its parents (envelope ids: route indexes are the manifest's, the same on every node).
    pub parents: Parents,
    /// The decoded payload (for a lazy payload: its metadata).
    pub value: Value,
    /// Inline, or lazy with length and digest.
    pub payload: PayloadRef,
}

/// What ingest recorded and refused on one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestCounts {
    /// Envelopes recorded.
    pub ingested: u64,
    /// Envelopes refused because the route already had their sequence number or a later one.
    pub duplicates: u64,
}

impl Graph {
    /// Records `remote` on `route` and runs everything inline downstream, as a publish does.
    /// Refuses a route a local node produces (`NotOwner`: envelopes of a route come from one
    /// place), a sequence number not above the route's last (`Duplicate`, counted), and a value
    /// that does not fit the route's schema (`SchemaCheck`). A sequence number further ahead is
    /// accepted: what was skipped was lost on the way, and the link's taints say so.
    pub fn ingest(&mut self, route: RouteIdx, remote: Remote) -> Result<EnvelopeId, GraphError> {
        self.ingest_with(route, remote, None)
    }

    /// [`Graph::ingest`] of a lazy envelope: its metadata is recorded now, and `open` fetches
    /// its payload when someone opens it (over the link it came from). The open is checked,
    /// cached, counted and audited as a local lazy payload's is.
    pub fn ingest_lazy(&mut self, route: RouteIdx, remote: Remote, open: PayloadOpener) -> Result<EnvelopeId, GraphError> {
        self.ingest_with(route, remote, Some(open))
    }

    fn ingest_with(&mut self, route: RouteIdx, remote: Remote, open: Option<PayloadOpener>) -> Result<EnvelopeId, GraphError> {
        let state = self.route_state(route)?;
        if let RouteProducer::Node(node) = state.producer {
            return Err(GraphError::NotOwner(format!(
                "cannot ingest an envelope of {} from a link: node {} produces that route here",
                state.route, self.nodes[node.0 as usize].name
            )));
        }
        if remote.seq <= state.seq {
            let message = format!("{} already has seq {}; the envelope with seq {} from a link is a duplicate", state.route, state.seq, remote.seq);
            self.routes[route.0 as usize].duplicates += 1;
            return Err(GraphError::Duplicate(message));
        }
        self.check_value(route, &remote.value)?;
        let Remote { seq, event_time, taints, parents, value, payload } = remote;
        if let (Some(open), PayloadRef::Lazy { len, digest }) = (open, payload) {
            // Registered before downstream nodes (which may open it) run.
            self.payloads.add_source(EnvelopeId { route, seq }, len, digest, open);
        }
        let env = self.record_at(route, seq, value, payload, ProducerRef::Runtime, event_time, taints, parents, 0);
        self.routes[route.0 as usize].ingested += 1;
        let id = env.meta.id;
        self.fan_out(route, env);
        self.drain_queue();
        Ok(id)
    }

    /// What ingest recorded and refused on `route`.
    pub fn ingest_counts(&self, route: RouteIdx) -> Result<IngestCounts, GraphError> {
        let state = self.route_state(route)?;
        Ok(IngestCounts { ingested: state.ingested, duplicates: state.duplicates })
    }
}
