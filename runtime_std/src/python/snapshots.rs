//! Typed snapshots of the graph for Python: what `NativeGraph.nodes()`, `edges()`,
//! `mailboxes()`, `scheduler()`, `routes()`, `payload_demand()` and `describe()` return. Each is
//! a frozen class with read-only attributes; the query plane (`manyfold.query`) turns them into
//! its public typed answers, and only serialization boundaries turn anything into dicts.
//!
//! The builders take a `route` function that gives the Python route object of a route index,
//! so this module needs nothing from the binding's internals.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use manyfold_core::envelope::RouteIdx;

use crate::graph::factory::{overflow_word, ParamMap, ParamValue};
use crate::graph::{EdgeInfo, ExpiredInfo, GatedInfo, MailboxInfo, NodeInfo, Param, RouteDemand, RouteOptions, Target};

/// `Name(field=repr, ...)` from the object's own attributes.
fn repr_of(obj: &Bound<'_, PyAny>, name: &str, fields: &[&str]) -> PyResult<String> {
    let mut parts = Vec::with_capacity(fields.len());
    for field in fields {
        parts.push(format!("{field}={}", obj.getattr(*field)?.repr()?));
    }
    Ok(format!("{name}({})", parts.join(", ")))
}

/// A frozen Python class with read-only attributes and a repr listing them.
macro_rules! snapshot {
    ($(#[doc = $doc:literal])* $rust:ident = $py:literal { $($(#[doc = $fdoc:literal])* $field:ident: $ty:ty,)* }) => {
        $(#[doc = $doc])*
        #[pyclass(module = "manyfold.graph", name = $py, frozen, get_all)]
        pub struct $rust {
            $($(#[doc = $fdoc])* pub $field: $ty,)*
        }

        #[pymethods]
        impl $rust {
            fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                repr_of(slf.as_any(), $py, &[$(stringify!($field)),*])
            }
        }
    };
}

snapshot! {
    /// A node now: its operator, wiring, parameters, counters and the taints it added or
    /// removed.
    NodeStats = "NodeStats" {
        /// Its name.
        name: String,
        /// The operator's kind (`count_window`, `event_time_window`, `forward`, ...).
        kind: &'static str,
        /// The route each input port reads.
        inputs: Vec<Py<PyAny>>,
        /// The name of each input edge.
        input_edges: Vec<String>,
        /// Its output routes, by output port.
        outputs: Vec<Py<PyAny>>,
        /// Names of the taints its outputs carried that none of its inputs did.
        taints_added: Vec<&'static str>,
        /// Names of the taints its inputs carried that none of its outputs did.
        taints_removed: Vec<&'static str>,
        /// The operator's parameters, by name.
        params: Py<PyDict>,
        /// The operator's counters (late values, drops, ...), by name.
        counters: Py<PyDict>,
        /// Inputs handled.
        processed: u64,
        /// Outputs emitted.
        emitted: u64,
        /// Inputs on which the operator failed.
        failures: u64,
        /// Watermark (windows, joins, resequencers), if it has one.
        watermark_us: Option<i64>,
        /// Items it buffers now, if it buffers.
        buffered: Option<usize>,
        /// The most it can buffer, if it buffers.
        buffered_max: Option<usize>,
        /// Declared deterministic.
        deterministic: bool,
    }
}

snapshot! {
    /// An edge now: what it joins, how it delivers, and what went through it.
    EdgeStats = "EdgeStats" {
        /// Its name.
        name: String,
        /// The route it reads.
        source: Py<PyAny>,
        /// `node` or `subscription`.
        target_kind: &'static str,
        /// The node's or subscription's name.
        target: String,
        /// The node's input port (0 for subscriptions).
        port: usize,
        /// `inline`, `mailbox` or `epoch_boundary`.
        policy: &'static str,
        /// The mailbox's capacity, for mailbox edges.
        mailbox_capacity: Option<usize>,
        /// The mailbox's overflow policy (`block`, `drop_oldest`, `drop_newest`, `reject`).
        overflow: Option<&'static str>,
        /// Items delivered.
        delivered: u64,
        /// Items held for the next epoch now.
        held: usize,
        /// Items a full epoch hold dropped.
        held_dropped: u64,
        /// False once unsubscribed.
        active: bool,
    }
}

snapshot! {
    /// A mailbox now: depth, bound, policy, counters, and time spent full and busy.
    MailboxStats = "MailboxStats" {
        /// Its name (its edge's).
        name: String,
        /// The edge it sits on.
        edge: String,
        /// Items queued.
        depth: usize,
        /// Items it holds at most.
        capacity: usize,
        /// Its overflow policy.
        overflow: &'static str,
        /// Items queued so far.
        accepted: u64,
        /// Items delivered.
        delivered: u64,
        /// Items evicted by `drop_oldest`.
        dropped_oldest: u64,
        /// New items discarded (`drop_newest`, or a burst beyond the stall area).
        dropped_newest: u64,
        /// Publishes refused by `reject`.
        rejected: u64,
        /// Publishes told to wait by `block`.
        blocked: u64,
        /// The deepest it has been.
        depth_max: u64,
        /// Items of a burst waiting at its edge.
        stalled: usize,
        /// Graph time since it was created.
        span_us: i64,
        /// Graph time it spent full.
        full_us: i64,
        /// Wall time spent running its consumer.
        busy_ns: u64,
    }
}

snapshot! {
    /// A guarded publish still waiting for its epoch or time.
    GatedPublish = "GatedPublish" {
        /// Its guard id (submission order).
        guard_id: u64,
        /// The route it will publish on.
        route: Py<PyAny>,
        /// Released once the control epoch reaches this.
        not_before_epoch: Option<u64>,
        /// Released once the clock reaches this.
        not_before_us: Option<i64>,
        /// Expires if still waiting at this time.
        expires_at_us: Option<i64>,
        /// When it was submitted.
        submitted_us: i64,
    }
}

snapshot! {
    /// A guarded publish that expired before its release (never published).
    ExpiredPublish = "ExpiredPublish" {
        /// Its guard id.
        guard_id: u64,
        /// The route it would have published on.
        route: Py<PyAny>,
        /// When it expired.
        expired_at_us: i64,
    }
}

snapshot! {
    /// The scheduler now: clock, epoch, ready work, timers, and the gate of guarded publishes.
    SchedulerStats = "SchedulerStats" {
        /// The graph clock.
        now_us: i64,
        /// The control epoch.
        epoch: u64,
        /// Items ready to run now (inline work, mailbox items, due timers).
        ready: usize,
        /// Node timers set.
        timers: usize,
        /// Guarded publishes waiting, in submission order.
        gated: Vec<Py<GatedPublish>>,
        /// The most recent expired guarded publishes.
        expired: Vec<Py<ExpiredPublish>>,
        /// Guarded publishes expired in total.
        expired_total: u64,
        /// How many guarded publishes may wait at once.
        gated_max: usize,
        /// Guarded publishes refused because the gate was full.
        gated_refused: u64,
    }
}

snapshot! {
    /// A route now: schema, producer, envelopes and taints seen, and its declared settings.
    RouteStats = "RouteStats" {
        /// The route.
        route: Py<PyAny>,
        /// Its schema's hash (hex).
        schema_hash: String,
        /// `external` (producers named like its owner, or granted) or `node`.
        producer_kind: &'static str,
        /// The owner (external) or the producing node's name.
        producer: String,
        /// Envelopes published so far (its last sequence number).
        envelopes: u64,
        /// Union of the taints of its envelopes, as bits (see `manyfold.graph.Taint`).
        taint_bits: u32,
        /// Envelopes kept for replay.
        history: usize,
        /// Envelopes kept for lineage.
        retain: usize,
        /// Publishes and deliveries are audited.
        audit: bool,
        /// Clock domain of event times published without one.
        clock_domain: u16,
        /// Producers granted it besides its owner, sorted.
        writers: Vec<String>,
    }
}

snapshot! {
    /// Lazy payload demand on a route.
    PayloadDemandStats = "PayloadDemandStats" {
        /// Lazy envelopes published (metadata only).
        metadata_events: u64,
        /// Payload opens.
        opens: u64,
        /// Opens served from the cache.
        cache_hits: u64,
        /// Payload bytes produced by their sources.
        bytes_materialized: u64,
        /// Opens that failed.
        failures: u64,
        /// Opens per consumer.
        by_consumer: Py<PyDict>,
    }
}

snapshot! {
    /// A node as it was described (for manifests): the factory kind and parameters it was
    /// built from (functions as `{"ref": name}`), its input edges and output routes.
    NodeDeclaration = "NodeDeclaration" {
        /// Its name.
        name: String,
        /// The factory kind (`time_window`, `forward`, ...).
        kind: String,
        /// The parameters it was built from.
        params: Py<PyDict>,
        /// True when built from a description (the factory or `connect`).
        described: bool,
        /// Its input edges' names.
        inputs: Vec<String>,
        /// Its output routes.
        outputs: Vec<Py<PyAny>>,
    }
}

snapshot! {
    /// What a graph was built from, for manifests: routes, nodes and the edges into nodes, in
    /// creation order.
    GraphDescription = "GraphDescription" {
        /// Every route.
        routes: Vec<Py<RouteStats>>,
        /// Every node.
        nodes: Vec<Py<NodeDeclaration>>,
        /// Every edge into a node.
        edges: Vec<Py<EdgeStats>>,
    }
}

fn param_to_py<'py>(py: Python<'py>, v: &ParamValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        ParamValue::Null => py.None().into_bound(py),
        ParamValue::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        ParamValue::Int(i) => i.into_pyobject(py)?.into_any(),
        ParamValue::Float(f) => pyo3::types::PyFloat::new(py, *f).into_any(),
        ParamValue::Text(t) => pyo3::types::PyString::new(py, t).into_any(),
        ParamValue::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(param_to_py(py, item)?)?;
            }
            list.into_any()
        }
        ParamValue::Ref(name) => {
            let d = PyDict::new(py);
            d.set_item("ref", name)?;
            d.into_any()
        }
    })
}

/// A node's snapshot; `edges` are all edges (by index), for its inputs.
pub(super) fn node_stats(py: Python<'_>, n: NodeInfo, edges: &[EdgeInfo], route: &dyn Fn(RouteIdx) -> Py<PyAny>) -> PyResult<NodeStats> {
    let params = PyDict::new(py);
    for (k, v) in &n.params {
        match v {
            Param::Int(i) => params.set_item(k, i)?,
            Param::Float(f) => params.set_item(k, f)?,
            Param::Text(t) => params.set_item(k, t)?,
            Param::Bool(b) => params.set_item(k, b)?,
        }
    }
    let counters = PyDict::new(py);
    for (k, v) in &n.counters {
        counters.set_item(k, v)?;
    }
    Ok(NodeStats {
        inputs: n.inputs.iter().map(|e| route(edges[e.0 as usize].source)).collect(),
        input_edges: n.inputs.iter().map(|e| edges[e.0 as usize].name.clone()).collect(),
        outputs: n.outputs.iter().map(|r| route(*r)).collect(),
        taints_added: n.taints_added.iter().map(|t| t.name()).collect(),
        taints_removed: n.taints_removed.iter().map(|t| t.name()).collect(),
        params: params.unbind(),
        counters: counters.unbind(),
        name: n.name,
        kind: n.kind,
        processed: n.processed,
        emitted: n.emitted,
        failures: n.failures,
        watermark_us: n.watermark_us,
        buffered: n.buffered.map(|(now, _)| now),
        buffered_max: n.buffered.map(|(_, max)| max),
        deterministic: n.deterministic,
    })
}

/// An edge's snapshot; `target` is the name of the node or subscription it delivers to.
pub(super) fn edge_stats(e: EdgeInfo, target: String, route: &dyn Fn(RouteIdx) -> Py<PyAny>) -> EdgeStats {
    let (target_kind, port) = match e.target {
        Target::Node { port, .. } => ("node", port),
        Target::Subscription(_) => ("subscription", 0),
    };
    let policy = match (e.policy.mailbox, e.policy.epoch_boundary) {
        (Some(_), _) => "mailbox",
        (None, true) => "epoch_boundary",
        (None, false) => "inline",
    };
    EdgeStats {
        name: e.name,
        source: route(e.source),
        target_kind,
        target,
        port,
        policy,
        mailbox_capacity: e.policy.mailbox.map(|m| m.capacity),
        overflow: e.policy.mailbox.map(|m| overflow_word(m.overflow)),
        delivered: e.delivered,
        held: e.held,
        held_dropped: e.held_dropped,
        active: e.active,
    }
}

/// A mailbox's snapshot; `edge` is its edge's name.
pub(super) fn mailbox_stats(m: MailboxInfo) -> MailboxStats {
    MailboxStats {
        // A mailbox is named after its edge.
        edge: m.name.clone(),
        name: m.name,
        depth: m.depth,
        capacity: m.capacity,
        overflow: overflow_word(m.overflow),
        accepted: m.counters.accepted,
        delivered: m.counters.delivered,
        dropped_oldest: m.counters.dropped_oldest,
        dropped_newest: m.counters.dropped_newest,
        rejected: m.counters.rejected,
        blocked: m.counters.blocked,
        depth_max: m.counters.depth_max,
        stalled: m.stalled,
        span_us: m.span_us,
        full_us: m.full_us,
        busy_ns: m.busy_ns,
    }
}

/// What the scheduler reports, read under the graph's lock.
pub(super) struct SchedulerParts {
    pub now_us: i64,
    pub epoch: u64,
    pub ready: usize,
    pub timers: usize,
    pub gated: Vec<GatedInfo>,
    pub expired: Vec<ExpiredInfo>,
    pub expired_total: u64,
    pub gated_max: usize,
    pub gated_refused: u64,
}

/// The scheduler's snapshot.
pub(super) fn scheduler_stats(py: Python<'_>, s: SchedulerParts, route: &dyn Fn(RouteIdx) -> Py<PyAny>) -> PyResult<SchedulerStats> {
    let gated = s
        .gated
        .into_iter()
        .map(|g| {
            let w = GatedPublish {
                guard_id: g.id,
                route: route(g.route),
                not_before_epoch: g.guard.not_before_epoch,
                not_before_us: g.guard.not_before_us,
                expires_at_us: g.guard.expires_at_us,
                submitted_us: g.submitted_us,
            };
            Py::new(py, w)
        })
        .collect::<PyResult<_>>()?;
    let expired = s
        .expired
        .into_iter()
        .map(|e| Py::new(py, ExpiredPublish { guard_id: e.id, route: route(e.route), expired_at_us: e.expired_at_us }))
        .collect::<PyResult<_>>()?;
    Ok(SchedulerStats {
        now_us: s.now_us,
        epoch: s.epoch,
        ready: s.ready,
        timers: s.timers,
        gated,
        expired,
        expired_total: s.expired_total,
        gated_max: s.gated_max,
        gated_refused: s.gated_refused,
    })
}

/// What a route reports, read under the graph's lock.
pub(super) struct RouteParts {
    pub idx: RouteIdx,
    pub schema_hash: String,
    pub producer_node: Option<String>,
    pub owner: String,
    pub envelopes: u64,
    pub taint_bits: u32,
    pub options: RouteOptions,
    pub writers: Vec<String>,
}

/// A route's snapshot.
pub(super) fn route_stats(r: RouteParts, route: &dyn Fn(RouteIdx) -> Py<PyAny>) -> RouteStats {
    let (producer_kind, producer) = match r.producer_node {
        Some(node) => ("node", node),
        None => ("external", r.owner),
    };
    RouteStats {
        route: route(r.idx),
        schema_hash: r.schema_hash,
        producer_kind,
        producer,
        envelopes: r.envelopes,
        taint_bits: r.taint_bits,
        history: r.options.history,
        retain: r.options.retain,
        audit: r.options.audit,
        clock_domain: r.options.clock_domain.0,
        writers: r.writers,
    }
}

/// Payload demand's snapshot.
pub(super) fn payload_demand(py: Python<'_>, d: RouteDemand) -> PyResult<PayloadDemandStats> {
    let by_consumer = PyDict::new(py);
    for (k, v) in d.by_consumer {
        by_consumer.set_item(k, v)?;
    }
    Ok(PayloadDemandStats {
        metadata_events: d.metadata_events,
        opens: d.opens,
        cache_hits: d.cache_hits,
        bytes_materialized: d.bytes_materialized,
        failures: d.failures,
        by_consumer: by_consumer.unbind(),
    })
}

/// A node's declaration: `spec` is the factory kind and parameters it was described with.
pub(super) fn node_declaration(
    py: Python<'_>,
    n: &NodeInfo,
    spec: Option<(&str, &ParamMap)>,
    edges: &[EdgeInfo],
    route: &dyn Fn(RouteIdx) -> Py<PyAny>,
) -> PyResult<NodeDeclaration> {
    let params = PyDict::new(py);
    if let Some((_, spec)) = spec {
        for (k, v) in spec {
            params.set_item(k, param_to_py(py, v)?)?;
        }
    }
    Ok(NodeDeclaration {
        name: n.name.clone(),
        kind: spec.map_or(n.kind, |(kind, _)| kind).to_string(),
        params: params.unbind(),
        described: spec.is_some(),
        inputs: n.inputs.iter().map(|e| edges[e.0 as usize].name.clone()).collect(),
        outputs: n.outputs.iter().map(|r| route(*r)).collect(),
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NodeStats>()?;
    m.add_class::<EdgeStats>()?;
    m.add_class::<MailboxStats>()?;
    m.add_class::<GatedPublish>()?;
    m.add_class::<ExpiredPublish>()?;
    m.add_class::<SchedulerStats>()?;
    m.add_class::<RouteStats>()?;
    m.add_class::<PayloadDemandStats>()?;
    m.add_class::<NodeDeclaration>()?;
    m.add_class::<GraphDescription>()?;
    Ok(())
}
