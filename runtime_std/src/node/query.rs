//! The node's query plane: the admin request
//! `{"q": "query", "kind": K, "principal": P[, "route": R][, "seq": N][, "partition": DEV][, "what": W]}`.
//!
//! Every answer is one object. Answered: `{"node", "id", "incarnation", "manifest_id", "kind",
//! "answer": A}`; refused (principal or kind not exposed, no such device here): the same with
//! `"refused": "sentence"` instead of `"answer"`; a malformed request: `{"error": "sentence"}`;
//! a device that could not answer: the header with `"error": "sentence"`.
//!
//! The principal is checked against the manifest's query exposure (`query: {service, kinds,
//! principals}`): refused when the manifest exposes no queries, when P is not a principal, or
//! when the exposure kind of K is not exposed (topology, routes, links: `topology`; flow,
//! counters: `flow`; watermarks, taints, lineage, health: themselves; device: its `what`'s,
//! `latest` being `topology`). The principal is what the asker says it is: the admin endpoint is the
//! operator's (loopback or a trusted network), so this is exposure, not authentication.
//!
//! Answers A (field names as the Python typed objects' `to_dict()` of `manyfold.query.model`,
//! so a client builds the same objects as a local query; a schema is its manifest label
//! `name@version`):
//! - `topology`: `{"manifest_id", "partitions", "devices", "routes": [RouteInfo], "nodes":
//!   [NodeInfo], "edges": [EdgeInfo], "primitives": [{"instance", "contract", "version",
//!   "nodes", "routes", "stores"}]}`: the routes this node's partitions produce or consume;
//!   each node names the primitive instance it is a part of (`"primitive"`, or null), and
//!   `primitives` lists the manifest's instances with a part here (all their parts).
//! - `routes`: `[{"route", "owner", "producer", "consumers", "envelopes", "latest"}]`.
//! - `flow`: `{"mailboxes": [MailboxFlow], "edges": [EdgeFlow], "link_queues": [{"link",
//!   "route", "depth", "capacity", "dropped"}], "rate_limiters": [{"node", "kind", "passed",
//!   "dropped"}]}`. Rate limiters are what the graph counts: `rate_limit` nodes (dropped: over
//!   the rate), `resistor` nodes (dropped: coalesced) and `capacitor` nodes (dropped: lost when
//!   full); passed is what each emitted.
//! - `view` (`view`: a `materialized_view` node, optional `limit`): its rows and rebuild
//!   counts, [`crate::graph::view::MaterializedView::to_json`]; exposure kind `topology`.
//! - `watermarks`: `{"watermarks": [Watermark], "epochs": {"epoch", "holding": [{"edge", "held",
//!   "held_dropped"}]}}`.
//! - `taints`: `[RouteTaints]` of the routes with taints or repairs (`route` narrows to one).
//!   The upstream walk stays on this node: a taint that arrived already carried over a link
//!   has the origin `{"kind": "producer", "name": "upstream in partition P"}` (ask P's node).
//! - `links`: each link's status, as `status` gives it.
//! - `counters`: `{"published", "received", "mailbox_dropped", "link_dropped",
//!   "queries_answered", "queries_refused", "links": {name: {...}}}`.
//! - `lineage` (`route`, `seq`): the admin `lineage` answer (`lineage`, `elsewhere`); an
//!   envelope this node does not hold gives an empty `lineage` and itself in `elsewhere`, with
//!   the node that holds it.
//! - `health`: `{"kind": "health", "instances": [{"instance", "contract", "version", "state",
//!   "why", "parts": [{"node", "state", "why"}]}]}`: each primitive instance with a node here,
//!   its state the worst of its parts' (`healthy` < `degraded` < `blocked`), its `why` their
//!   reasons prefixed by the part (`"buf: full (4 of 4) ..."`); a part's health is its
//!   operator's joined with its input mailboxes' ([`Graph::node_health`]).
//! - `device` (`partition`, `what`: topology, flow, taints, latest (with `route`) or counters):
//!   the device's own typed answer, asked over its link by the [`DeviceHook`] of the node that
//!   owns it (the Python node, `manyfold node --device`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use manyfold_core::envelope::{EnvelopeId, RouteIdx};
use manyfold_core::taint::{Taint, TaintSet};
use serde_json::{json, Value as J};

use crate::graph::factory::overflow_word;
use crate::graph::{EdgeInfo, Graph, Health, HealthState, Param, RouteProducer, Target};
use crate::route::Layer;

use super::{admin, hex, NodeShared};

/// The query kinds a node answers.
pub const KINDS: [&str; 11] = ["topology", "routes", "flow", "watermarks", "taints", "links", "counters", "lineage", "device", "view", "health"];
/// What a `device` query may ask.
pub const DEVICE_WHATS: [&str; 5] = ["topology", "flow", "taints", "latest", "counters"];
/// How long a device query waits for the device hook.
pub const DEVICE_TIMEOUT_MS: u64 = 5_000;
/// How long `status` waits for the hook's list of devices.
pub const DEVICES_TIMEOUT_MS: u64 = 1_000;
/// Device hook calls in flight at most (each waits on a thread of its own).
pub const DEVICE_ASKS_MAX: usize = 8;

/// Who asks the devices behind a node: called with `{"what": W, "partition": P[, "route": R]}`
/// for a device query and `{"what": "devices"}` for the list in `status`, without the graph
/// lock. Returns the answer, `{"refused": sentence}` when it has no such device, or an error.
pub trait DeviceHook: Send + Sync {
    /// Asks; the answer is JSON.
    fn ask(&self, request: &J) -> Result<J, String>;
}

/// What the query plane counts.
#[derive(Debug, Default)]
pub(crate) struct QueryCounters {
    answered: AtomicU64,
    refused: AtomicU64,
    /// Device hook calls running (each on a thread of its own), at most [`DEVICE_ASKS_MAX`].
    device_asks: Arc<AtomicUsize>,
}

/// The exposure kind a query kind needs (`device`: its `what`'s), or None for an unknown one.
pub fn exposure_kind(kind: &str, what: Option<&str>) -> Option<&'static str> {
    Some(match kind {
        "topology" | "routes" | "links" | "view" => "topology",
        "flow" | "counters" => "flow",
        "watermarks" => "watermarks",
        "taints" => "taints",
        "lineage" => "lineage",
        "health" => "health",
        "device" => match what? {
            "topology" | "latest" => "topology",
            "flow" | "counters" => "flow",
            "taints" => "taints",
            _ => return None,
        },
        _ => return None,
    })
}

fn error(message: impl Into<String>) -> J {
    json!({ "error": message.into() })
}

fn header(node: &NodeShared, kind: &str) -> J {
    json!({
        "node": node.options.name,
        "id": node.options.id,
        "incarnation": node.incarnation,
        "manifest_id": hex(&node.plan.manifest_id),
        "kind": kind,
    })
}

fn refused(node: &NodeShared, kind: &str, sentence: String) -> J {
    node.queries.refused.fetch_add(1, Ordering::Relaxed);
    let mut out = header(node, kind);
    out["refused"] = json!(sentence);
    out
}

fn answered(node: &NodeShared, kind: &str, answer: J) -> J {
    node.queries.answered.fetch_add(1, Ordering::Relaxed);
    let mut out = header(node, kind);
    out["answer"] = answer;
    out
}

/// Why the manifest's exposure refuses `principal` asking `exposure` (None: allowed).
fn refusal(node: &NodeShared, principal: &str, kind: &str, exposure: &str) -> Option<String> {
    let Some(q) = &node.plan.query else {
        return Some("the manifest exposes no queries (declare them with manyfold.query.expose)".into());
    };
    if !q.principals.iter().any(|p| p == principal) {
        let who = if q.principals.is_empty() { "nobody".to_string() } else { q.principals.join(", ") };
        return Some(format!("principal {principal:?} may not query this graph; the manifest lets {who} ask"));
    }
    if !q.kinds.iter().any(|k| k == exposure) {
        let what = if kind == exposure { format!("{kind} queries") } else { format!("{kind} queries (they need {exposure})") };
        return Some(format!("the manifest does not expose {what}; it exposes {}", q.kinds.join(", ")));
    }
    None
}

/// The answer to a `query` request.
pub(crate) fn answer(node: &NodeShared, req: &J) -> J {
    let Some(kind) = req.get("kind").and_then(J::as_str) else {
        return error(format!("query needs \"kind\": one of {}", KINDS.join(", ")));
    };
    if !KINDS.contains(&kind) {
        return error(format!("unknown query kind {kind:?}; ask one of {}", KINDS.join(", ")));
    }
    let Some(principal) = req.get("principal").and_then(J::as_str) else {
        return error("query needs \"principal\": who asks (the manifest's query exposure names who may)");
    };
    let what = req.get("what").and_then(J::as_str);
    let route = match req.get("route").and_then(J::as_str) {
        Some(name) => match node.route_index.get(name) {
            Some(&r) => Some(r),
            None => return error(format!("the manifest has no route {name}")),
        },
        None => None,
    };
    if kind == "device" {
        let Some(w) = what.filter(|w| DEVICE_WHATS.contains(w)) else {
            return error(format!("a device query needs \"what\": one of {}", DEVICE_WHATS.join(", ")));
        };
        if req.get("partition").and_then(J::as_str).is_none() {
            return error("a device query needs \"partition\": the device's partition");
        }
        if w == "latest" && req.get("route").and_then(J::as_str).is_none() {
            return error("a device latest query needs \"route\": a printed route");
        }
    }
    let seq = req.get("seq").and_then(J::as_u64);
    if kind == "lineage" && (route.is_none() || seq.is_none()) {
        return error("a lineage query needs \"route\" (a printed route) and \"seq\" (a sequence number)");
    }
    if kind == "view" && req.get("view").and_then(J::as_str).is_none() {
        return error("a view query needs \"view\": the name of a materialized_view node");
    }
    let exposure = exposure_kind(kind, what).unwrap_or("topology");
    if let Some(sentence) = refusal(node, principal, kind, exposure) {
        return refused(node, kind, sentence);
    }
    match kind {
        "device" => device(node, req),
        "links" => {
            let links: Vec<J> = node.links.iter().map(|l| l.status(&node.route_names).to_json()).collect();
            answered(node, kind, J::Array(links))
        }
        "counters" => {
            // Counted before the answer is made, so it counts itself.
            node.queries.answered.fetch_add(1, Ordering::Relaxed);
            let mut out = J::Null;
            node.graph.with_graph(&mut |g| out = counters(node, g));
            let mut full = header(node, kind);
            full["answer"] = out;
            full
        }
        _ => {
            let devices = if kind == "topology" { device_partitions(node) } else { Vec::new() };
            let mut out = J::Null;
            node.graph.with_graph(&mut |g| {
                out = match kind {
                    "view" => crate::graph::view::query_answer(g, req),
                    "topology" => topology(node, g, &devices),
                    "routes" => routes(node, g),
                    "flow" => flow(node, g),
                    "watermarks" => watermarks(g),
                    "taints" => taints(node, g, route),
                    "health" => health(node, g),
                    _ => lineage(node, g, route.unwrap_or(0), seq.unwrap_or(0)),
                };
            });
            answered(node, kind, out)
        }
    }
}

/// `status` with the devices behind the node (`[]` without a device hook).
pub(crate) fn status(node: &NodeShared) -> J {
    let mut out = node.status().to_json();
    out["devices"] = J::Array(devices(node));
    out
}

/// The devices behind this node, as its device hook lists them (`[]` without a hook, or when
/// it did not answer within [`DEVICES_TIMEOUT_MS`]).
fn devices(node: &NodeShared) -> Vec<J> {
    match ask_hook(node, json!({ "what": "devices" }), DEVICES_TIMEOUT_MS) {
        Some(Ok(answer)) => answer.get("devices").and_then(J::as_array).cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Calls the device hook on a thread of its own, waiting at most `timeout_ms`; None without a
/// hook.
fn ask_hook(node: &NodeShared, request: J, timeout_ms: u64) -> Option<Result<J, String>> {
    let hook = node.device_hook.read().clone()?;
    let asks = &node.queries.device_asks;
    if asks.fetch_add(1, Ordering::Relaxed) >= DEVICE_ASKS_MAX {
        asks.fetch_sub(1, Ordering::Relaxed);
        return Some(Err(format!("{DEVICE_ASKS_MAX} device queries already wait on node {}", node.options.name)));
    }
    let (tx, rx) = mpsc::channel();
    // The slot is given back when the hook returns (or panics), not when the wait ends: a hook
    // that hangs keeps its slot, so at most DEVICE_ASKS_MAX threads ever wait on hooks.
    struct Slot(Arc<AtomicUsize>);
    impl Drop for Slot {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let slot = Slot(asks.clone());
    let spawned = std::thread::Builder::new().name("device-query".into()).spawn(move || {
        let _slot = slot;
        let _ = tx.send(hook.ask(&request));
    });
    let result = match spawned {
        Ok(_) => match rx.recv_timeout(Duration::from_millis(timeout_ms)) {
            Ok(r) => r,
            Err(_) => Err(format!("the device did not answer within {timeout_ms} ms")),
        },
        // The closure (and its slot) was dropped: the slot is back.
        Err(e) => Err(format!("cannot start a thread for the device query: {e}")),
    };
    Some(result)
}

/// The device partitions behind this node, as its device hook lists them.
fn device_partitions(node: &NodeShared) -> Vec<String> {
    devices(node).iter().filter_map(|d| d.get("partition").and_then(J::as_str).map(String::from)).collect()
}

fn device(node: &NodeShared, req: &J) -> J {
    let partition = req.get("partition").and_then(J::as_str).unwrap_or_default();
    let no_device = || format!("no device {partition} behind node {}", node.options.name);
    if !node.options.partitions.iter().any(|p| p == partition) {
        return refused(node, "device", no_device());
    }
    let mut request = json!({ "what": req.get("what"), "partition": partition });
    if let Some(r) = req.get("route") {
        request["route"] = r.clone();
    }
    match ask_hook(node, request, DEVICE_TIMEOUT_MS) {
        None => refused(node, "device", no_device()),
        Some(Ok(answer)) => match answer.get("refused").and_then(J::as_str) {
            Some(sentence) => refused(node, "device", sentence.to_string()),
            None => answered(node, "device", answer),
        },
        Some(Err(e)) => {
            let mut out = header(node, "device");
            out["error"] = json!(format!("device {partition} behind node {}: {e}", node.options.name));
            out
        }
    }
}

// ---------------------------------------------------------------------------- answers

fn route_name(node: &NodeShared, r: RouteIdx) -> J {
    json!(node.route_names.get(r.0 as usize))
}

fn hosted(node: &NodeShared, r: RouteIdx) -> bool {
    node.plan.routes.get(r.0 as usize).is_some_and(|p| node.options.partitions.iter().any(|h| h == &p.partition))
}

fn target_name(g: &Graph, e: &EdgeInfo) -> (&'static str, String, usize) {
    match e.target {
        Target::Node { node, port } => ("node", g.node_name(node).to_string(), port),
        Target::Subscription(s) => ("subscription", g.subscription(s).map(|(n, _, _)| n.to_string()).unwrap_or_default(), 0),
    }
}

fn policy_word(e: &EdgeInfo) -> &'static str {
    match (e.policy.mailbox, e.policy.epoch_boundary) {
        (Some(_), _) => "mailbox",
        (None, true) => "epoch_boundary",
        (None, false) => "inline",
    }
}

/// (producer_kind, producer) as `RouteInfo` gives them.
fn producer(g: &Graph, r: RouteIdx, owner: &str) -> (&'static str, String) {
    match g.route_producer(r) {
        Ok(RouteProducer::Node(n)) => ("node", g.node_name(n).to_string()),
        _ => ("external", owner.to_string()),
    }
}

/// Consumers of every route (`"node NAME"`, `"subscription NAME"`), from the active edges.
fn consumers(g: &Graph, edges: &[EdgeInfo]) -> BTreeMap<u32, Vec<String>> {
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for e in edges.iter().filter(|e| e.active) {
        let (kind, name, _) = target_name(g, e);
        out.entry(e.source.0).or_default().push(format!("{kind} {name}"));
    }
    out
}

/// The routes this node's partitions produce or consume: hosted here, or with a consumer here.
fn local_routes(node: &NodeShared, g: &Graph, consumers: &BTreeMap<u32, Vec<String>>) -> Vec<RouteIdx> {
    g.routes().map(|(r, _, _)| r).filter(|r| hosted(node, *r) || consumers.contains_key(&r.0)).collect()
}

fn param_json(p: &Param) -> J {
    match p {
        Param::Int(i) => json!(i),
        Param::Float(f) => json!(f),
        Param::Text(t) => json!(t),
        Param::Bool(b) => json!(b),
    }
}

fn topology(node: &NodeShared, g: &Graph, devices: &[String]) -> J {
    let edges = g.edges();
    let consumers = consumers(g, &edges);
    let mut routes = Vec::new();
    for r in local_routes(node, g, &consumers) {
        let (Ok(route), Ok(schema)) = (g.route(r), g.schema(r)) else { continue };
        let (producer_kind, producer) = producer(g, r, route.owner());
        routes.push(json!({
            "route": route_name(node, r),
            "owner": route.owner(),
            "schema": format!("{}@{}", schema.name, schema.version),
            "schema_hash": schema.hash.hex(),
            "producer_kind": producer_kind,
            "producer": producer,
            "consumers": consumers.get(&r.0).cloned().unwrap_or_default(),
            "envelopes": g.route_seq(r).unwrap_or(0),
        }));
    }
    let instance_of = |name: &str| node.plan.primitives.iter().find(|p| p.nodes.iter().any(|n| n == name)).map(|p| p.instance.clone());
    let nodes: Vec<J> = g
        .nodes()
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "primitive": instance_of(&n.name),
                "kind": n.kind,
                "inputs": n.inputs.iter().map(|e| route_name(node, edges[e.0 as usize].source)).collect::<Vec<_>>(),
                "outputs": n.outputs.iter().map(|r| route_name(node, *r)).collect::<Vec<_>>(),
                "params": n.params.iter().map(|(k, v)| (k.to_string(), param_json(v))).collect::<serde_json::Map<_, _>>(),
                "deterministic": n.deterministic,
                "buffered": n.buffered.map(|(now, _)| now),
                "buffered_max": n.buffered.map(|(_, max)| max),
            })
        })
        .collect();
    let edge_infos: Vec<J> = edges
        .iter()
        .map(|e| {
            let (target_kind, target, port) = target_name(g, e);
            json!({
                "name": e.name,
                "source": route_name(node, e.source),
                "target_kind": target_kind,
                "target": target,
                "port": port,
                "policy": policy_word(e),
                "mailbox_capacity": e.policy.mailbox.map(|m| m.capacity),
                "overflow": e.policy.mailbox.map(|m| overflow_word(m.overflow)),
            })
        })
        .collect();
    let partitions: Vec<&String> = node.options.partitions.iter().filter(|p| !devices.contains(p)).collect();
    json!({
        "manifest_id": hex(&node.plan.manifest_id),
        "partitions": partitions,
        "devices": devices,
        "routes": routes,
        "nodes": nodes,
        "edges": edge_infos,
        "primitives": primitives_here(node, g),
    })
}

/// The primitive instances with a part on this node (a node built here, or a route this node's
/// partitions produce), each with all its parts, as `PrimitiveInfo.to_dict()` gives them.
fn primitives_here(node: &NodeShared, g: &Graph) -> Vec<J> {
    let route_hosted = |name: &str| node.route_index.get(name).is_some_and(|r| hosted(node, RouteIdx(*r)));
    node.plan
        .primitives
        .iter()
        .filter(|p| p.nodes.iter().any(|n| g.node_index(n).is_some()) || p.routes.iter().any(|r| route_hosted(r)))
        .map(|p| {
            json!({
                "instance": p.instance,
                "contract": p.contract,
                "version": p.version,
                "nodes": p.nodes,
                "routes": p.routes,
                "stores": p.stores.iter().map(|s| json!({ "name": s.name, "kind": s.kind, "sync": s.sync })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Per primitive instance with nodes here: its state (the worst of its parts here) and why
/// (each part's reasons, prefixed by the part), and each part's state and why.
fn health(node: &NodeShared, g: &Graph) -> J {
    let by_node: BTreeMap<String, Health> = g.node_health().into_iter().map(|n| (n.name, n.health)).collect();
    let mut instances = Vec::new();
    for p in &node.plan.primitives {
        let parts: Vec<(&String, &Health)> = p.nodes.iter().filter_map(|n| by_node.get(n).map(|h| (n, h))).collect();
        if parts.is_empty() {
            continue;
        }
        let state = parts.iter().map(|(_, h)| h.state).max().unwrap_or(HealthState::Healthy);
        let why: Vec<String> = parts.iter().flat_map(|(n, h)| h.why.iter().map(move |w| format!("{n}: {w}"))).collect();
        instances.push(json!({
            "instance": p.instance,
            "contract": p.contract,
            "version": p.version,
            "state": state.word(),
            "why": why,
            "parts": parts.iter().map(|(n, h)| json!({ "node": n, "state": h.state.word(), "why": h.why })).collect::<Vec<_>>(),
        }));
    }
    json!({ "kind": "health", "instances": instances })
}

fn routes(node: &NodeShared, g: &Graph) -> J {
    let edges = g.edges();
    let consumers = consumers(g, &edges);
    let mut out = Vec::new();
    for r in local_routes(node, g, &consumers) {
        let Ok(route) = g.route(r) else { continue };
        let (_, producer) = producer(g, r, route.owner());
        let latest = match g.latest(r) {
            Ok(Some(env)) => {
                let ty = g.schema(r).map(|s| s.ty.clone()).unwrap_or(crate::schema::SchemaType::Bytes);
                json!({
                    "seq": env.meta.id.seq,
                    "time_us": env.meta.event_time.time_us,
                    "taints": env.meta.taints.iter().map(|t| t.name()).collect::<Vec<_>>(),
                    "value": admin::to_json(&env.value, &ty),
                })
            }
            _ => J::Null,
        };
        out.push(json!({
            "route": route_name(node, r),
            "owner": route.owner(),
            "producer": producer,
            "consumers": consumers.get(&r.0).cloned().unwrap_or_default(),
            "envelopes": g.route_seq(r).unwrap_or(0),
            "latest": latest,
        }));
    }
    J::Array(out)
}

/// A node's counter by name (0 when it has none of that name).
fn node_counter(n: &crate::graph::NodeInfo, name: &str) -> u64 {
    n.counters.iter().find(|(k, _)| *k == name).map_or(0, |(_, v)| *v)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn flow(node: &NodeShared, g: &Graph) -> J {
    // As manyfold.query.flow: rates per second of graph time since the mailbox was made.
    let mailboxes: Vec<J> = g
        .mailboxes()
        .into_iter()
        .map(|m| {
            let span_s = m.span_us as f64 / 1e6;
            let per_s = |x: f64| if span_s > 0.0 { (x / span_s).min(1000.0) } else { 0.0 };
            let busy = per_s(m.busy_ns as f64 / 1e6);
            let blocked = per_s(m.full_us as f64 / 1e3);
            let c = m.counters;
            json!({
                "name": m.name,
                "edge": m.name,
                "depth": m.depth,
                "capacity": m.capacity,
                "overflow": overflow_word(m.overflow),
                "accepted": c.accepted,
                "delivered": c.delivered,
                "dropped": c.dropped_oldest + c.dropped_newest,
                "rejected": c.rejected,
                "blocked": c.blocked,
                "depth_max": c.depth_max,
                "busy_ms_per_s": round3(busy),
                "blocked_ms_per_s": round3(blocked),
                "idle_ms_per_s": round3((1000.0 - busy - blocked).max(0.0)),
            })
        })
        .collect();
    let edges: Vec<J> = g
        .edges()
        .iter()
        .map(|e| json!({ "name": e.name, "delivered": e.delivered, "held": e.held, "held_dropped": e.held_dropped }))
        .collect();
    let mut link_queues = Vec::new();
    for l in &node.links {
        let q = l.queue.lock();
        for (route, depth, dropped) in q.events.by_route() {
            link_queues.push(json!({
                "link": l.plan.name,
                "route": route_name(node, RouteIdx(route)),
                "depth": depth,
                "capacity": q.capacity,
                "dropped": dropped,
            }));
        }
    }
    let rate_limiters: Vec<J> = g
        .nodes()
        .iter()
        .filter_map(|n| {
            let counter = |name: &str| node_counter(n, name);
            let dropped = match n.kind {
                "rate_limit" | "capacitor" => counter("dropped"),
                "resistor" => counter("coalesced"),
                _ => return None,
            };
            Some(json!({ "node": n.name, "kind": n.kind, "passed": n.emitted, "dropped": dropped }))
        })
        .collect();
    json!({ "mailboxes": mailboxes, "edges": edges, "link_queues": link_queues, "rate_limiters": rate_limiters })
}

/// Operators with a watermark (as `manyfold.query.queries.WATERMARKED`).
const WATERMARKED: [&str; 4] = ["event_time_window", "processing_time_window", "join", "resequence"];

fn watermarks(g: &Graph) -> J {
    let marks: Vec<J> = g
        .nodes()
        .iter()
        .filter(|n| WATERMARKED.contains(&n.kind))
        .map(|n| {
            let counter = |name: &str| node_counter(n, name);
            json!({ "node": n.name, "kind": n.kind, "watermark_us": n.watermark_us, "late": counter("late"), "forced": counter("forced") })
        })
        .collect();
    let holding: Vec<J> = g
        .edges()
        .iter()
        .filter(|e| e.held > 0 || e.held_dropped > 0)
        .map(|e| json!({ "edge": e.name, "held": e.held, "held_dropped": e.held_dropped }))
        .collect();
    json!({ "watermarks": marks, "epochs": { "epoch": g.epoch(), "holding": holding } })
}

fn origin(taint: Taint, kind: &str, name: &str, proof: Option<&str>) -> J {
    json!({ "taint": taint.name(), "kind": kind, "name": name, "proof": proof })
}

/// As `manyfold.query.taints`: per route, the taints seen, where upstream each was added, and
/// which upstream nodes repaired which (with their proofs).
fn taints(node: &NodeShared, g: &Graph, only: Option<u32>) -> J {
    let nodes = g.nodes();
    let edges = g.edges();
    let mut producer_of: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.outputs {
            producer_of.insert(o.0, i);
        }
    }
    let lossy_mailboxes: BTreeSet<String> = g
        .mailboxes()
        .into_iter()
        .filter(|m| m.counters.dropped_oldest + m.counters.dropped_newest + m.counters.rejected > 0)
        .map(|m| m.name)
        .collect();
    let text_param = |n: &crate::graph::NodeInfo, key: &str| {
        n.params.iter().find(|(k, _)| *k == key).map(|(_, v)| match v {
            Param::Text(t) => t.clone(),
            other => param_json(other).to_string(),
        })
    };
    let mut out = Vec::new();
    for (r, route, _) in g.routes() {
        if only.is_some_and(|o| o != r.0) {
            continue;
        }
        let seen = g.route_taints(r).unwrap_or(TaintSet::EMPTY);
        // Upstream nodes, their input edges and the routes on the way (each visited once).
        let (mut up_nodes, mut up_edges, mut up_routes) = (Vec::new(), Vec::new(), Vec::new());
        let mut frontier = vec![r.0];
        while let Some(next) = frontier.pop() {
            if up_routes.contains(&next) {
                continue;
            }
            up_routes.push(next);
            let Some(&i) = producer_of.get(&next) else { continue };
            if up_nodes.contains(&i) {
                continue;
            }
            up_nodes.push(i);
            for e in &nodes[i].inputs {
                up_edges.push(e.0 as usize);
                frontier.push(edges[e.0 as usize].source.0);
            }
        }
        let mut added = Vec::new();
        for t in seen.iter() {
            let mut found = false;
            for &i in &up_nodes {
                let n = &nodes[i];
                if n.taints_added.contains(t) {
                    let is_link = n.kind == "forward" && n.params.iter().any(|(k, _)| *k == "link_taints");
                    added.push(origin(t, if is_link { "link" } else { "node" }, &n.name, None));
                    found = true;
                }
            }
            if t == Taint::DeliveryDropped {
                for &e in &up_edges {
                    let name = &edges[e].name;
                    if lossy_mailboxes.contains(name) {
                        added.push(origin(t, "mailbox", name, None));
                        found = true;
                    }
                    if edges[e].held_dropped > 0 {
                        added.push(origin(t, "epoch_hold", name, None));
                        found = true;
                    }
                }
            }
            if t == Taint::DetNonReplayable {
                for &u in &up_routes {
                    if g.route(RouteIdx(u)).is_ok_and(|x| x.layer() == Layer::Ephemeral) {
                        added.push(origin(t, "route", node.route_names.get(u as usize).map_or("?", String::as_str), None));
                        found = true;
                    }
                }
            }
            if !found {
                // Arrived already tainted over a link: its origin is in the partition upstream.
                let remote = up_routes.iter().filter_map(|u| node.plan.routes.get(*u as usize)).find(|p| !node.options.partitions.contains(&p.partition));
                let who = match (remote, producer(g, r, route.owner())) {
                    (Some(p), _) => format!("upstream in partition {}", p.partition),
                    (None, ("external", owner)) => owner,
                    _ => "upstream producer".to_string(),
                };
                added.push(origin(t, "producer", &who, None));
            }
        }
        let mut repaired = Vec::new();
        for &i in &up_nodes {
            let n = &nodes[i];
            // Only nodes that declare a proof repair.
            let Some(proof) = text_param(n, "proof") else { continue };
            for t in n.taints_removed.iter() {
                repaired.push(origin(t, "node", &n.name, Some(&proof)));
            }
        }
        if seen == TaintSet::EMPTY && repaired.is_empty() && only.is_none() {
            continue;
        }
        let mut names: Vec<&str> = seen.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        out.push(json!({ "route": route.to_string(), "taints": names, "added": added, "repaired": repaired }));
    }
    J::Array(out)
}

fn lineage(node: &NodeShared, g: &Graph, route: u32, seq: u64) -> J {
    let found = admin::lineage(node, g, route, &json!({ "seq": seq }));
    if found.get("error").is_none() {
        return found;
    }
    // Not held here: the envelope itself is elsewhere, at the node that holds it.
    let id = EnvelopeId { route: RouteIdx(route), seq };
    json!({
        "route": route_name(node, id.route),
        "seq": seq,
        "lineage": [],
        "elsewhere": [{ "route": route_name(node, id.route), "seq": seq, "node": admin::holder(node, g, id) }],
    })
}

fn counters(node: &NodeShared, g: &Graph) -> J {
    let published: u64 = g.routes().filter(|(r, _, _)| hosted(node, *r)).map(|(r, _, _)| g.route_seq(r).unwrap_or(0)).sum();
    let mailbox_dropped: u64 = g.mailboxes().iter().map(|m| m.counters.dropped_oldest + m.counters.dropped_newest + m.counters.rejected).sum();
    let statuses: Vec<_> = node.links.iter().map(|l| l.status(&node.route_names)).collect();
    let links: serde_json::Map<String, J> = statuses
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                json!({
                    "state": s.state,
                    "events_tx": s.events_tx,
                    "events_rx": s.events_rx,
                    "dropped": s.dropped,
                    "retransmits": s.retransmits,
                    "duplicates": s.duplicates,
                    "gaps": s.gaps,
                    "rejected": s.rejected,
                    "queued": s.queued,
                    "unacked": s.unacked,
                }),
            )
        })
        .collect();
    json!({
        "published": published,
        "received": statuses.iter().map(|s| s.events_rx).sum::<u64>(),
        "mailbox_dropped": mailbox_dropped,
        "link_dropped": statuses.iter().map(|s| s.dropped).sum::<u64>(),
        "queries_answered": node.queries.answered.load(Ordering::Relaxed),
        "queries_refused": node.queries.refused.load(Ordering::Relaxed),
        "links": links,
    })
}

/// A device hook from a closure (tests, embedders).
pub struct FnHook<F>(pub F);

impl<F: Fn(&J) -> Result<J, String> + Send + Sync> DeviceHook for FnHook<F> {
    fn ask(&self, request: &J) -> Result<J, String> {
        (self.0)(request)
    }
}

/// Shorthand: an `Arc`'d hook.
pub fn hook<F: Fn(&J) -> Result<J, String> + Send + Sync + 'static>(f: F) -> Arc<dyn DeviceHook> {
    Arc::new(FnHook(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodePlan;

    /// Each kind needs the exposure kind the contract gives it; a device query needs its what's.
    #[test]
    fn exposure_kinds_follow_the_kind_or_the_device_what() {
        for (kind, what, exposure) in [
            ("topology", None, Some("topology")),
            ("routes", None, Some("topology")),
            ("links", None, Some("topology")),
            ("flow", None, Some("flow")),
            ("counters", None, Some("flow")),
            ("watermarks", None, Some("watermarks")),
            ("taints", None, Some("taints")),
            ("lineage", None, Some("lineage")),
            ("health", None, Some("health")),
            ("device", Some("latest"), Some("topology")),
            ("device", Some("counters"), Some("flow")),
            ("device", Some("taints"), Some("taints")),
            ("device", Some("board"), None),
            ("device", None, None),
            ("everything", None, None),
        ] {
            assert_eq!(exposure_kind(kind, what), exposure, "{kind} {what:?}");
        }
    }

    /// Node "n" (id 7) hosting partition a of the exposed fixture, no admin endpoint.
    fn exposed_node() -> crate::node::Node {
        use crate::graph::factory::NoCallables;
        use crate::graph::Graph;
        use crate::node::{Node, NodeOptions};
        use crate::shared::SharedGraph;

        let bytes = std::fs::read(format!("{}/tests/fixtures/exposed.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let hosted = vec!["a".to_string()];
        let plan = NodePlan::new(&bytes, &hosted).unwrap();
        let mut graph = Graph::new_wall();
        crate::manifest::load(&mut graph, &plan.cbor, Some(&hosted), &mut Arc::new, &mut NoCallables, &mut |_, _, _| {}, &mut |_| {}).unwrap();
        Node::start(Arc::new(SharedGraph::new(graph)), plan, NodeOptions::new("n", 7, hosted, "127.0.0.1:0".parse().unwrap())).unwrap()
    }

    /// A device query goes to the device hook (outside the graph lock) and its answer, refusal
    /// or error comes back as the query's; a partition not hosted here never reaches the hook;
    /// `status` and `topology` list the hook's devices.
    #[test]
    fn device_queries_go_through_the_hook() {
        let node = exposed_node();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let graph = node.shared.graph.clone();
        node.set_device_hook(Some(hook(move |req: &J| {
            seen.fetch_add(1, Ordering::Relaxed);
            // Every answer below needs the graph free while the hook runs.
            if !graph.try_with_graph(Duration::from_millis(500), &mut |_| {}) {
                return Err("the hook was called with the graph locked".to_string());
            }
            match req["what"].as_str() {
                Some("devices") => Ok(json!({"devices": [{"partition": "a", "port": "sim:x", "where": "here", "state": "running"}]})),
                Some("taints") => Ok(json!({"partition": req["partition"], "taints": []})),
                Some("counters") => Ok(json!({"refused": "the device says no"})),
                _ => Err("the device stopped answering".to_string()),
            }
        })));
        let ask = |what: &str, partition: &str| answer(&node.shared, &json!({"kind": "device", "principal": "operator", "partition": partition, "what": what}));
        assert_eq!(ask("taints", "a")["answer"], json!({"partition": "a", "taints": []}));
        assert_eq!(ask("counters", "a")["refused"], json!("the device says no"));
        assert_eq!(ask("flow", "a")["error"], json!("device a behind node n: the device stopped answering"));
        let before = calls.load(Ordering::Relaxed);
        assert_eq!(ask("taints", "b")["refused"], json!("no device b behind node n"));
        assert_eq!(calls.load(Ordering::Relaxed), before, "a partition not hosted here never reaches the hook");
        assert_eq!(status(&node.shared)["devices"][0]["partition"], json!("a"));
        let topology = answer(&node.shared, &json!({"kind": "topology", "principal": "operator"}));
        assert_eq!((topology["answer"]["partitions"].clone(), topology["answer"]["devices"].clone()), (json!([]), json!(["a"])));
        node.set_device_hook(None);
        assert_eq!(ask("taints", "a")["refused"], json!("no device a behind node n"));
        assert_eq!(status(&node.shared)["devices"], json!([]));
        node.request_stop();
        node.wait();
    }

    /// A hook that hangs keeps its slot: however many queries time out, at most DEVICE_ASKS_MAX
    /// threads ever wait on it, the rest are refused at once, and the slots come back when it
    /// returns.
    #[test]
    fn a_hanging_hook_holds_at_most_its_bound_of_threads() {
        use std::sync::{Condvar, Mutex};
        let node = exposed_node();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let started = Arc::new(AtomicUsize::new(0));
        let (g, st) = (gate.clone(), started.clone());
        node.set_device_hook(Some(hook(move |_: &J| {
            st.fetch_add(1, Ordering::SeqCst);
            let (open, cv) = &*g;
            let mut o = open.lock().unwrap();
            // Bounded by the test: it opens the gate below.
            while !*o {
                o = cv.wait(o).unwrap();
            }
            Ok(json!({ "devices": [] }))
        })));
        let asks = 3 * DEVICE_ASKS_MAX;
        let errors: Vec<String> = (0..asks).map(|_| ask_hook(&node.shared, json!({ "what": "devices" }), 5).unwrap().unwrap_err()).collect();
        let refused = errors.iter().filter(|e| e.contains("already wait")).count();
        assert_eq!(refused, asks - DEVICE_ASKS_MAX, "{errors:?}");
        assert!(started.load(Ordering::SeqCst) <= DEVICE_ASKS_MAX);
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
        let end = std::time::Instant::now() + Duration::from_secs(5);
        // Bounded: 5 s of 10 ms polls.
        while node.shared.queries.device_asks.load(Ordering::SeqCst) > 0 {
            assert!(std::time::Instant::now() < end, "the slots never came back");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(started.load(Ordering::SeqCst), DEVICE_ASKS_MAX);
        assert_eq!(ask_hook(&node.shared, json!({ "what": "devices" }), 1_000).unwrap(), Ok(json!({ "devices": [] })));
        node.request_stop();
        node.wait();
    }

    /// A hook that panics gives its slot back: after more panics than there are slots, the
    /// hook is still asked (and the query gets an error, not a hang).
    #[test]
    fn a_panicking_hook_gives_its_slot_back() {
        let node = exposed_node();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        node.set_device_hook(Some(hook(move |_: &J| -> Result<J, String> {
            seen.fetch_add(1, Ordering::SeqCst);
            panic!("a broken hook")
        })));
        for _ in 0..2 * DEVICE_ASKS_MAX {
            let e = ask_hook(&node.shared, json!({ "what": "devices" }), 1_000).unwrap().unwrap_err();
            assert!(e.contains("did not answer"), "{e}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2 * DEVICE_ASKS_MAX);
        node.request_stop();
        node.wait();
    }

    /// The manifest's `query` is read into the plan; a manifest without one has none.
    #[test]
    fn the_plan_reads_the_query_exposure() {
        let read = |name: &str| std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let plan = NodePlan::new(&read("exposed.json"), &["a".to_string()]).unwrap();
        let q = plan.query.unwrap();
        assert_eq!((q.service.as_str(), q.principals.clone()), ("manyfold", vec!["operator".to_string()]));
        assert_eq!(q.kinds, ["topology", "flow", "taints", "lineage"]);
        assert!(NodePlan::new(&read("chain.json"), &["a".to_string()]).unwrap().query.is_none());
    }
}
