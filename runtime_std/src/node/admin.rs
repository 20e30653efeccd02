//! The admin endpoint: TCP, one JSON object per line in, one per line out.
//!
//! - `{"q": "status"}`: the node and its links ([`NodeStatus::to_json`]).
//! - `{"q": "latest", "route": ROUTE}`: the route's latest envelope here, or `"seq": null`.
//! - `{"q": "lineage", "route": ROUTE, "seq": N}`: the envelope and its ancestors this node
//!   holds, and the ancestors held elsewhere, named by node id.
//! - `{"q": "history", "route": ROUTE}` (added): every envelope the route retains here, oldest
//!   first (`{"route", "envelopes": [...]}`, each as `latest` gives it).
//! - `{"q": "publish", "route": ROUTE, "values": [...]}` (added): publishes values as the
//!   route's owner (tests and benchmarks feed a node with it).
//! - `{"q": "publish_lazy", "route": ROUTE, "value": META, "payload": HEX}` (added): publishes
//!   one lazy envelope on a bulk route: `value` is its metadata, the bytes are held by this
//!   node and handed out when someone opens the payload (here or, over a link, at a peer).
//! - `{"q": "payload", "route": ROUTE, "seq": N, "consumer": NAME}` (added): opens the payload
//!   of an envelope as `consumer` (default `admin`): `{"route", "seq", "len", "sha256", "hex"}`.
//!   A lazy payload received over a link is fetched from the peer; the open is counted (see
//!   `demand`) and audited as any open.
//! - `{"q": "demand", "route": ROUTE}` (added): payload demand on a route: `{"route",
//!   "metadata_events", "opens", "cache_hits", "bytes_materialized", "failures", "by_consumer"}`.
//! - `{"q": "query", "kind": K, "principal": P, ...}` (added): the query plane, checked against
//!   the manifest's query exposure ([`super::query`]); `status` also lists `devices`.
//! - `{"q": "peers"[, "from": {...}]}` (added): this node and the peers it knows
//!   ([`super::discovery`]); `from`, the asker's own description, adds the asker.
//! - `{"q": "stop"}`: a clean stop, as SIGTERM.
//!
//! A bad request gets `{"error": "sentence"}`; the connection stays open.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use manyfold_core::envelope::{EnvelopeId, PayloadRef, RouteIdx};
use serde_json::{json, Value as J};

use crate::envelope::EnvelopeRef;
use crate::graph::{Graph, PublishOptions};
use crate::schema::SchemaType;
use crate::value::Value;

use super::{from_hex, hex, NodeShared};

/// Admin connections served at once; more are closed at once.
pub const CONNECTIONS_MAX: usize = 32;
/// Longest request line.
const LINE_MAX: usize = 1 << 20;
/// Envelopes a lineage answer walks at most.
const LINEAGE_MAX: usize = 256;

/// Serves the admin endpoint until the node stops.
pub(crate) fn run(node: Arc<NodeShared>, listener: TcpListener) {
    let _ = listener.set_nonblocking(true);
    let open = Arc::new(AtomicUsize::new(0));
    // Bounded by the stop flag (and then until every link said bye, so a client can watch).
    while !node.finished.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if open.fetch_add(1, Ordering::Relaxed) >= CONNECTIONS_MAX {
                    open.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                let (node, slot) = (node.clone(), open.clone());
                let spawned = std::thread::Builder::new().name("admin-conn".into()).spawn(move || {
                    serve(&node, stream);
                    slot.fetch_sub(1, Ordering::Relaxed);
                });
                if spawned.is_err() {
                    // The closure never ran: give its slot back.
                    open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn serve(node: &NodeShared, stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut out) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // Bounded by the connection: ends at EOF, an error, or when the node finished.
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with('\n') || line.len() > LINE_MAX => {}
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if node.finished.load(Ordering::Relaxed) {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        let request = line.trim();
        if !request.is_empty() {
            let answer = answer(node, request);
            let mut text = answer.to_string();
            text.push('\n');
            if out.write_all(text.as_bytes()).is_err() {
                return;
            }
        }
        line.clear();
    }
}

fn error(message: impl Into<String>) -> J {
    json!({ "error": message.into() })
}

/// Requests that change the node (publish into its graph, stop it): the admin endpoint takes
/// them, the Zenoh admin queryable does not (anyone on the router could send them).
pub(crate) const CHANGING_REQUESTS: [&str; 3] = ["publish", "publish_lazy", "stop"];

/// The answer to a request that arrived over Zenoh: questions only.
pub(crate) fn answer_question(node: &NodeShared, request: &str) -> J {
    let q = serde_json::from_str::<J>(request).ok().and_then(|r| r.get("q").and_then(J::as_str).map(str::to_string));
    match q {
        Some(q) if CHANGING_REQUESTS.contains(&q.as_str()) => error(format!(
            "over Zenoh a node answers questions only; send {q:?} to the node's admin endpoint"
        )),
        _ => answer(node, request),
    }
}

/// The answer to one request line.
pub(crate) fn answer(node: &NodeShared, request: &str) -> J {
    let req: J = match serde_json::from_str(request) {
        Ok(r) => r,
        Err(e) => return error(format!("the request is not JSON: {e}")),
    };
    let Some(q) = req.get("q").and_then(J::as_str) else {
        return error("a request is a JSON object with \"q\": status, query, latest, lineage, history, publish, publish_lazy, payload, demand, peers or stop");
    };
    match q {
        "status" => super::query::status(node),
        "query" => super::query::answer(node, &req),
        "peers" => node.discovery.answer(&req),
        "stop" => {
            node.stop.store(true, Ordering::Relaxed);
            for l in &node.links {
                l.queue.lock().poke = true;
                l.queue.notify();
            }
            json!({ "stopping": true, "node": node.options.name })
        }
        "latest" | "lineage" | "history" | "publish" | "publish_lazy" | "payload" | "demand" => {
            let Some(name) = req.get("route").and_then(J::as_str) else { return error(format!("{q} needs \"route\": a printed route")) };
            let Some(&route) = node.route_index.get(name) else { return error(format!("the manifest has no route {name}")) };
            let mut out = J::Null;
            node.graph.with_graph(&mut |g| {
                out = match q {
                    "latest" => latest(node, g, route),
                    "lineage" => lineage(node, g, route, &req),
                    "history" => history(node, g, route),
                    "publish_lazy" => publish_lazy(g, route, &req),
                    "payload" => open_payload(node, g, route, &req),
                    "demand" => demand(node, g, route),
                    _ => publish(g, route, &req),
                };
            });
            out
        }
        other => error(format!("unknown request {other:?}; ask status, query, latest, lineage, history, publish, publish_lazy, payload, demand, peers or stop")),
    }
}

/// The node holding an envelope: this one when it is here (produced or received), else the
/// peer across the link to the partition producing its route (`null` when no link of this
/// node leads there).
pub(crate) fn holder(node: &NodeShared, g: &Graph, id: EnvelopeId) -> J {
    if g.envelope(id).is_some() {
        return json!(node.options.id);
    }
    let Some(partition) = node.plan.routes.get(id.route.0 as usize).map(|r| r.partition.as_str()) else { return J::Null };
    if node.options.partitions.iter().any(|p| p == partition) {
        return json!(node.options.id);
    }
    match node.links.iter().find(|l| l.plan.remote == partition) {
        Some(l) => json!(l.status.lock().peer_id),
        None => J::Null,
    }
}

fn envelope_json(node: &NodeShared, g: &Graph, env: &EnvelopeRef, with_value: bool) -> J {
    let meta = &env.meta;
    let parents: Vec<J> = meta
        .parents
        .iter()
        .map(|p| json!([holder(node, g, *p), node.route_names.get(p.route.0 as usize), p.seq]))
        .collect();
    let mut out = json!({
        "route": node.route_names.get(meta.id.route.0 as usize),
        "seq": meta.id.seq,
        "node": node.options.id,
        "time_us": meta.event_time.time_us,
        "domain": meta.event_time.domain.0,
        "taints": meta.taints.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "parents": parents,
    });
    if let PayloadRef::Lazy { len, digest } = meta.payload {
        out["payload"] = json!({ "lazy": len, "sha256": hex(&digest) });
    }
    if with_value {
        let ty = g.schema(meta.id.route).map(|s| s.ty.clone()).unwrap_or(SchemaType::Bytes);
        out["value"] = to_json(&env.value, &ty);
    }
    out
}

fn latest(node: &NodeShared, g: &Graph, route: u32) -> J {
    match g.latest(RouteIdx(route)) {
        Ok(Some(env)) => envelope_json(node, g, &env, true),
        _ => json!({ "route": node.route_names.get(route as usize), "seq": null }),
    }
}

fn history(node: &NodeShared, g: &Graph, route: u32) -> J {
    let envelopes: Vec<J> = g.retained(RouteIdx(route)).iter().map(|e| envelope_json(node, g, e, true)).collect();
    json!({ "route": node.route_names.get(route as usize), "envelopes": envelopes })
}

pub(crate) fn lineage(node: &NodeShared, g: &Graph, route: u32, req: &J) -> J {
    let Some(seq) = req.get("seq").and_then(J::as_u64) else { return error("lineage needs \"seq\": a sequence number") };
    let id = EnvelopeId { route: RouteIdx(route), seq };
    let (found, missing) = g.lineage(id, LINEAGE_MAX);
    if found.is_empty() {
        return error(format!("this node does not hold seq {seq} of {}", node.route_names[route as usize]));
    }
    let elsewhere: Vec<J> = missing
        .iter()
        .map(|m| json!({ "route": node.route_names.get(m.route.0 as usize), "seq": m.seq, "node": holder(node, g, *m) }))
        .collect();
    json!({
        "route": node.route_names.get(route as usize),
        "seq": seq,
        "lineage": found.iter().map(|e| envelope_json(node, g, e, false)).collect::<Vec<_>>(),
        "elsewhere": elsewhere,
    })
}

fn publish(g: &mut Graph, route: u32, req: &J) -> J {
    let idx = RouteIdx(route);
    let Some(values) = req.get("values").and_then(J::as_array) else { return error("publish needs \"values\": a list") };
    let (ty, owner) = match (g.schema(idx), g.route(idx)) {
        (Ok(s), Ok(r)) => (s.ty.clone(), r.owner().to_string()),
        _ => return error("unknown route"),
    };
    let producer = match g.producer(&owner) {
        Ok(p) => p,
        Err(e) => return error(e.message()),
    };
    let mut published = 0u64;
    for v in values {
        let value = match from_json(v, &ty) {
            Ok(v) => v,
            Err(e) => return json!({ "published": published, "error": e }),
        };
        if let Err(e) = g.publish(producer, idx, value, &PublishOptions::default()) {
            return json!({ "published": published, "error": e.message() });
        }
        published += 1;
    }
    json!({ "published": published })
}

fn publish_lazy(g: &mut Graph, route: u32, req: &J) -> J {
    let idx = RouteIdx(route);
    let Some(bytes) = req.get("payload").and_then(J::as_str).and_then(from_hex) else {
        return error("publish_lazy needs \"payload\": the payload's bytes as hex");
    };
    let (ty, owner) = match (g.schema(idx), g.route(idx)) {
        (Ok(s), Ok(r)) => (s.ty.clone(), r.owner().to_string()),
        _ => return error("unknown route"),
    };
    let meta = match from_json(req.get("value").unwrap_or(&J::Null), &ty) {
        Ok(v) => v,
        Err(e) => return error(e),
    };
    let producer = match g.producer(&owner) {
        Ok(p) => p,
        Err(e) => return error(e.message()),
    };
    let (len, digest) = (bytes.len() as u64, crate::graph::payload::sha256(&bytes));
    let open = Box::new(move || Ok(bytes.clone()));
    match g.publish_lazy_value(producer, idx, meta, len, digest, open, &PublishOptions::default()) {
        Ok(r) => json!({ "published": 1, "seq": r.id.seq, "len": len, "sha256": hex(&digest) }),
        Err(e) => error(e.message()),
    }
}

fn open_payload(node: &NodeShared, g: &mut Graph, route: u32, req: &J) -> J {
    let Some(seq) = req.get("seq").and_then(J::as_u64) else { return error("payload needs \"seq\": a sequence number") };
    let consumer = req.get("consumer").and_then(J::as_str).unwrap_or("admin");
    match g.open_payload(EnvelopeId { route: RouteIdx(route), seq }, consumer) {
        Ok(bytes) => json!({
            "route": node.route_names.get(route as usize),
            "seq": seq,
            "len": bytes.len(),
            "sha256": hex(&crate::graph::payload::sha256(&bytes)),
            "hex": hex(&bytes),
        }),
        Err(e) => error(e.message()),
    }
}

fn demand(node: &NodeShared, g: &Graph, route: u32) -> J {
    let d = g.payload_demand(RouteIdx(route));
    json!({
        "route": node.route_names.get(route as usize),
        "metadata_events": d.metadata_events,
        "opens": d.opens,
        "cache_hits": d.cache_hits,
        "bytes_materialized": d.bytes_materialized,
        "failures": d.failures,
        "by_consumer": d.by_consumer,
    })
}

/// A value as JSON: records as objects by field name, bytes as hex.
pub fn to_json(v: &Value, ty: &SchemaType) -> J {
    match (v, ty) {
        (Value::Null, _) => J::Null,
        (Value::Bool(b), _) => json!(b),
        (Value::Int(i), _) => json!(i),
        (Value::Float(f), _) => json!(f),
        (Value::Text(t), _) => json!(&**t),
        (Value::Bytes(b), _) => json!(hex(b)),
        (Value::List(items), SchemaType::List(inner)) => J::Array(items.iter().map(|i| to_json(i, inner)).collect()),
        (Value::Record(items), SchemaType::Record(rt)) => {
            J::Object(rt.fields.iter().zip(items.iter()).map(|((name, t), i)| (name.clone(), to_json(i, t))).collect())
        }
        (v, SchemaType::Optional(inner)) => to_json(v, inner),
        (Value::List(items) | Value::Record(items), _) => J::Array(items.iter().map(|i| to_json(i, &SchemaType::Bytes)).collect()),
    }
}

/// A value of type `ty` from JSON (records from objects by field name or from lists).
pub fn from_json(v: &J, ty: &SchemaType) -> Result<Value, String> {
    let bad = || format!("{v} is not a {}", crate::schema::type_name(ty));
    Ok(match ty {
        SchemaType::Optional(inner) => if v.is_null() { Value::Null } else { from_json(v, inner)? },
        SchemaType::Bool => Value::Bool(v.as_bool().ok_or_else(bad)?),
        SchemaType::Int => Value::Int(v.as_i64().ok_or_else(bad)?),
        SchemaType::Float => Value::Float(v.as_f64().ok_or_else(bad)?),
        SchemaType::Text => Value::Text(v.as_str().ok_or_else(bad)?.into()),
        SchemaType::Bytes => {
            Value::Bytes(from_hex(v.as_str().ok_or_else(bad)?).ok_or_else(bad)?.into())
        }
        SchemaType::List(inner) => Value::List(v.as_array().ok_or_else(bad)?.iter().map(|i| from_json(i, inner)).collect::<Result<Vec<_>, _>>()?.into()),
        SchemaType::Record(rt) => {
            let items: Vec<Value> = match v {
                J::Object(map) => rt.fields.iter().map(|(n, t)| from_json(map.get(n).unwrap_or(&J::Null), t)).collect::<Result<_, _>>()?,
                J::Array(list) if list.len() == rt.fields.len() => rt.fields.iter().zip(list).map(|((_, t), i)| from_json(i, t)).collect::<Result<_, _>>()?,
                _ => return Err(bad()),
            };
            Value::Record(items.into())
        }
    })
}
