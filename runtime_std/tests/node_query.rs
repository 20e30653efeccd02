//! The node query plane (admin request `query`) on real `manyfold-node` processes: answers with
//! the field names of the Python typed objects, the manifest's query exposure enforced (a
//! refusal is an answer, counted), malformed requests answered with an error.

mod node_support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use node_support::*;

/// The keys of a JSON object.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn query(node: &NodeProc, kind: &str, principal: &str) -> Value {
    node.ask(json!({"q": "query", "kind": kind, "principal": principal}))
}

/// Starts a -> b -> c on `manifest` and sends 100 values through.
fn chain(manifest: &str) -> (NodeProc, NodeProc, NodeProc) {
    let a = NodeProc::start("a", &args(manifest, "a", 1, &["a"], &[]));
    let b = NodeProc::start("b", &args(manifest, "b", 2, &["b"], &[format!("--link=ab=udp://{}", a.listen())]));
    let c = NodeProc::start("c", &args(manifest, "c", 3, &["c"], &[format!("--link=bc=tcp://{}", b.listen())]));
    wait_for("links up", Duration::from_secs(10), || (b.link("ab")["state"] == json!("up") && c.link("bc")["state"] == json!("up")).then_some(()));
    let values: Vec<f64> = (0..100).map(f64::from).collect();
    a.publish(RAW, &values);
    wait_for("c's last event", Duration::from_secs(10), || (c.ask(json!({"q": "latest", "route": C_OUT}))["seq"] == json!(100)).then_some(()));
    (a, b, c)
}

/// Each kind answers from the node's own graph and links, with the typed objects' field names:
/// topology (RouteInfo, NodeInfo, EdgeInfo), routes with their latest values, flow (MailboxFlow,
/// EdgeFlow, link queues), taints (RouteTaints with TaintOrigin: the link's forward node adds
/// what the link lacks), links, counters and lineage across the nodes.
#[test]
fn kinds_answer_with_the_typed_objects_fields() {
    let (a, b, c) = chain("exposed.json");
    let topo = query(&b, "topology", "operator");
    assert_eq!(keys(&topo), set(&["node", "id", "incarnation", "manifest_id", "kind", "answer"]), "{topo}");
    assert_eq!((topo["node"].as_str(), topo["id"].as_u64(), topo["kind"].as_str()), (Some("b"), Some(2), Some("topology")));
    assert_eq!(topo["manifest_id"], b.status()["manifest_id"]);
    let t = &topo["answer"];
    assert_eq!((t["partitions"].clone(), t["devices"].clone()), (json!(["b"]), json!([])));
    let out = t["routes"].as_array().unwrap().iter().find(|r| r["route"] == json!(B_OUT)).unwrap();
    assert_eq!(keys(out), set(&["route", "owner", "schema", "schema_hash", "producer_kind", "producer", "consumers", "envelopes"]));
    assert_eq!((out["producer_kind"].as_str(), out["producer"].as_str(), out["envelopes"].as_u64()), (Some("node"), Some("plus_one_b"), Some(100)));
    assert_eq!(out["consumers"], json!(["subscription mesh_bc_3"]), "b's output leaves over bc: {out}");
    assert!(out["schema"].as_str().unwrap().contains('@'), "{out}");
    let routes: BTreeSet<&str> = t["routes"].as_array().unwrap().iter().map(|r| r["route"].as_str().unwrap()).collect();
    assert!(routes.contains(SCALED) && !routes.contains(C_OUT), "b's routes: its own and what it receives: {routes:?}");
    let node = t["nodes"].as_array().unwrap().iter().find(|n| n["name"] == json!("plus_one_b")).unwrap();
    assert_eq!(keys(node), set(&["name", "primitive", "kind", "inputs", "outputs", "params", "deterministic", "buffered", "buffered_max"]));
    assert_eq!((node["primitive"].clone(), t["primitives"].clone()), (Value::Null, json!([])), "no primitive instances in this manifest");
    assert_eq!(node["outputs"], json!([B_OUT]));
    let edge = &t["edges"][0];
    assert_eq!(keys(edge), set(&["name", "source", "target_kind", "target", "port", "policy", "mailbox_capacity", "overflow"]));

    let routes = query(&c, "routes", "operator")["answer"].clone();
    let out = routes.as_array().unwrap().iter().find(|r| r["route"] == json!(C_OUT)).unwrap();
    assert_eq!(keys(out), set(&["route", "owner", "producer", "consumers", "envelopes", "latest"]));
    assert_eq!(out["latest"]["seq"], json!(100));
    assert_eq!(out["latest"]["value"], json!(99.0 * 2.0 + 2.0));

    let flow = query(&a, "flow", "operator")["answer"].clone();
    assert_eq!(keys(&flow), set(&["mailboxes", "edges", "link_queues", "rate_limiters"]));
    assert_eq!(flow["link_queues"], json!([{"link": "ab", "route": SCALED, "depth": 0, "capacity": 1024, "dropped": 0}]));
    assert_eq!(keys(&flow["edges"][0]), set(&["name", "delivered", "held", "held_dropped"]));

    let taints = c.ask(json!({"q": "query", "kind": "taints", "principal": "operator", "route": C_OUT}))["answer"].clone();
    let ct = &taints[0];
    assert_eq!(keys(ct), set(&["route", "taints", "added", "repaired"]));
    assert_eq!(ct["taints"], json!(["det_nonreplayable", "trust_unverified"]));
    assert!(ct["added"].as_array().unwrap().contains(&json!({"taint": "trust_unverified", "kind": "producer", "name": "upstream in partition b", "proof": null})), "{ct}");
    let bt = b.ask(json!({"q": "query", "kind": "taints", "principal": "operator", "route": B_OUT}))["answer"][0].clone();
    assert!(bt["added"].as_array().unwrap().contains(&json!({"taint": "trust_unverified", "kind": "link", "name": "forward_b", "proof": null})), "{bt}");
    let all = query(&c, "taints", "operator")["answer"].clone();
    assert!(all.as_array().unwrap().iter().all(|r| !r["taints"].as_array().unwrap().is_empty() || !r["repaired"].as_array().unwrap().is_empty()), "only tainted routes: {all}");

    let links = query(&b, "links", "operator")["answer"].clone();
    let names: Vec<&str> = links.as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ab", "bc"]);
    assert_eq!(links[0]["provided"], json!(["ordered", "reliable"]));

    // Lineage: c holds its part; a's raw input is held by a (node 1), which b names.
    let lineage = c.ask(json!({"q": "query", "kind": "lineage", "principal": "operator", "route": C_OUT, "seq": 100}))["answer"].clone();
    assert_eq!(lineage["lineage"][0]["route"], json!(C_OUT));
    let at_b = b.ask(json!({"q": "query", "kind": "lineage", "principal": "operator", "route": B_OUT, "seq": 100}))["answer"].clone();
    assert_eq!((at_b["elsewhere"][0]["route"].as_str(), at_b["elsewhere"][0]["node"].as_u64()), (Some(RAW), Some(1)));
    let not_here = b.ask(json!({"q": "query", "kind": "lineage", "principal": "operator", "route": RAW, "seq": 100}))["answer"].clone();
    assert_eq!(not_here["lineage"], json!([]));
    assert_eq!(not_here["elsewhere"], json!([{"route": RAW, "seq": 100, "node": 1}]));

    let counters = query(&c, "counters", "operator")["answer"].clone();
    assert_eq!(keys(&counters), set(&["published", "received", "mailbox_dropped", "link_dropped", "queries_answered", "queries_refused", "links"]));
    assert_eq!((counters["received"].as_u64(), counters["published"].as_u64()), (Some(100), Some(200)), "{counters}");
    assert_eq!((counters["queries_answered"].as_u64(), counters["queries_refused"].as_u64()), (Some(5), Some(0)), "{counters}");
    assert_eq!(counters["links"]["bc"]["events_rx"], json!(100));
    assert_eq!(c.status()["devices"], json!([]), "manyfold-node has no devices");
    drop((a, b, c));
}

/// A principal the manifest does not name, a kind it does not expose, a device this node does
/// not own and a manifest without query exposure are refused as answers (counted); a request
/// without a kind or principal is an error, and the connection stays open.
#[test]
fn principals_and_kinds_are_enforced() {
    let a = NodeProc::start("a", &args("exposed.json", "a", 1, &["a"], &[]));
    let refused = query(&a, "topology", "intruder");
    assert_eq!(keys(&refused), set(&["node", "id", "incarnation", "manifest_id", "kind", "refused"]), "{refused}");
    assert!(refused["refused"].as_str().unwrap().contains("principal \"intruder\" may not query"), "{refused}");
    let watermarks = query(&a, "watermarks", "operator");
    assert!(watermarks["refused"].as_str().unwrap().contains("does not expose watermarks"), "{watermarks}");
    let device = a.ask(json!({"q": "query", "kind": "device", "principal": "operator", "partition": "a", "what": "taints"}));
    assert_eq!(device["refused"], json!("no device a behind node a"), "{device}");
    let forbidden_device = a.ask(json!({"q": "query", "kind": "device", "principal": "intruder", "partition": "a", "what": "taints"}));
    assert!(forbidden_device["refused"].as_str().unwrap().contains("intruder"), "{forbidden_device}");
    for bad in [json!({"q": "query", "principal": "operator"}), json!({"q": "query", "kind": "topology"}), json!({"q": "query", "kind": "everything", "principal": "operator"}), json!({"q": "query", "kind": "device", "principal": "operator", "partition": "a"})] {
        let answer = a.ask(bad.clone());
        assert_eq!(keys(&answer), set(&["error"]), "{bad} -> {answer}");
    }
    let counters = query(&a, "counters", "operator")["answer"].clone();
    assert_eq!((counters["queries_refused"].as_u64(), counters["queries_answered"].as_u64()), (Some(4), Some(1)), "{counters}");

    let plain = NodeProc::start("plain", &args("chain.json", "plain", 4, &["a"], &[]));
    let none = query(&plain, "topology", "operator");
    assert!(none["refused"].as_str().unwrap().contains("exposes no queries"), "{none}");
}

/// A manifest's primitive instances answer `health` on the node holding their parts: a's
/// Capacitor `buf` (capacity 4, overflow reject) is healthy until it fills, then blocked with
/// why (and the refused publish counted); b's RateLimiter `limit` dropping over its rate is
/// degraded; each node lists only its own instances; topology names each node's instance and
/// lists the instances with their parts; `health` needs its own exposure kind.
#[test]
fn primitive_instances_answer_health() {
    const A_RAW: &str = "read.raw.a.temp.raw.event.v1";
    const B_RAW: &str = "read.raw.b.temp.raw.event.v1";
    let a = NodeProc::start("a", &args("primitives.json", "a", 1, &["a"], &[]));
    let b = NodeProc::start("b", &args("primitives.json", "b", 2, &["b"], &[]));
    let healthy = json!({"kind": "health", "instances": [
        {"instance": "buf", "contract": "Capacitor", "version": 1, "state": "healthy", "why": [], "parts": [{"node": "buf", "state": "healthy", "why": []}]}
    ]});
    assert_eq!(query(&a, "health", "operator")["answer"], healthy);
    a.publish(A_RAW, &[1.0, 2.0, 3.0, 4.0]);
    let refused = a.ask(json!({"q": "publish", "route": A_RAW, "values": [5.0]}));
    assert_eq!(refused["published"], json!(0), "a full rejecting capacitor refuses: {refused}");
    let why = "full (4 of 4) and refusing new values until some are released (overflow reject); refused 1 so far";
    assert_eq!(query(&a, "health", "operator")["answer"], json!({"kind": "health", "instances": [
        {"instance": "buf", "contract": "Capacitor", "version": 1, "state": "blocked", "why": [format!("buf: {why}")], "parts": [{"node": "buf", "state": "blocked", "why": [why]}]}
    ]}));

    b.publish(B_RAW, &[1.0; 10]);
    let limit = query(&b, "health", "operator")["answer"]["instances"].clone();
    assert_eq!(limit.as_array().map(Vec::len), Some(1), "b holds only limit: {limit}");
    assert_eq!((limit[0]["instance"].as_str(), limit[0]["state"].as_str()), (Some("limit"), Some("degraded")), "{limit}");
    let said = limit[0]["why"][0].as_str().unwrap();
    assert!(said.starts_with("limit: dropped ") && said.ends_with(" values over its rate of 2 per 1000000 us"), "{said}");

    let topo = query(&a, "topology", "operator")["answer"].clone();
    let buf = topo["nodes"].as_array().unwrap().iter().find(|n| n["name"] == json!("buf")).unwrap();
    assert_eq!(buf["primitive"], json!("buf"));
    assert_eq!(topo["primitives"], json!([{"instance": "buf", "contract": "Capacitor", "version": 1, "nodes": ["buf"], "routes": ["read.internal.buf.temp.raw.event.v1"], "stores": []}]));
    // exposed.json exposes topology, flow, taints and lineage, not health.
    let other = NodeProc::start("other", &args("exposed.json", "other", 3, &["a"], &[]));
    let refused = query(&other, "health", "operator");
    assert!(refused["refused"].as_str().unwrap().contains("does not expose health"), "{refused}");
}
