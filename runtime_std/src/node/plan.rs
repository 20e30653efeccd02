//! What a node hosting some partitions of a manifest has to do on each link: which routes cross
//! it in which direction, what the link requests, what the manifest's forward nodes already
//! taint, and which hosted nodes run user (Python) functions.

use std::collections::{BTreeMap, BTreeSet};

use manyfold_core::taint::{Taint, TaintSet};
use sha2::{Digest, Sha256};

use crate::manifest::{self, Cbor, LoadError};

use super::hash32;

/// A link of a hosted partition to a partition hosted elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlan {
    /// The manifest link's name.
    pub name: String,
    /// The hosted partition at this end, and the peer's partition.
    pub local: String,
    /// The partition at the other end.
    pub remote: String,
    /// `udp`, `tcp` or `zenoh`, as the manifest declares it.
    pub transport: String,
    /// What the manifest link keeps: ordered, reliable, authenticated, durable.
    pub ordered: bool,
    /// Delivers every event.
    pub reliable: bool,
    /// Frames carry a MAC under a pre-shared key.
    pub authenticated: bool,
    /// Events can be replayed after a restart.
    pub durable: bool,
    /// A bulk route crosses (either way): its lazy envelopes cross as metadata and their
    /// payloads are fetched on open, so the link requests `lazy` too.
    pub lazy: bool,
    /// Routes produced here and consumed across the link (manifest route indexes, sorted).
    pub outgoing: Vec<u32>,
    /// Routes produced across the link and consumed here, with the taints every forward node
    /// consuming them over this link already adds (sorted by route).
    pub incoming: Vec<(u32, TaintSet)>,
}

/// One route of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    /// The printed route.
    pub route: String,
    /// The partition producing it.
    pub partition: String,
    /// Its schema's SHA-256.
    pub schema_hash: [u8; 32],
}

/// The manifest's query exposure: which query kinds are answered, and who may ask.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryExposure {
    /// The query service's owner.
    pub service: String,
    /// Exposed kinds (`topology`, `flow`, `watermarks`, `taints`, `lineage`, ...).
    pub kinds: Vec<String>,
    /// Principals who may ask.
    pub principals: Vec<String>,
}

/// The manifest as the node needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// SHA-256 of the manifest's canonical CBOR (what `manyfold compile` writes): the
    /// manifest id both ends of a link compare.
    pub manifest_id: [u8; 32],
    /// The canonical CBOR.
    pub cbor: Vec<u8>,
    /// Every partition's name.
    pub partitions: Vec<String>,
    /// Every route, in manifest order (the index is the route's name on the wire).
    pub routes: Vec<RoutePlan>,
    /// Mesh links (transport `udp`, `tcp` or `zenoh`) between a hosted partition and one hosted
    /// elsewhere, sorted by name.
    pub links: Vec<LinkPlan>,
    /// Other links of hosted partitions (a `serial` link to a device partition): no mesh
    /// session runs on them; whoever hosts the node (the Python node with its devices) feeds
    /// their routes.
    pub other_links: Vec<LinkPlan>,
    /// Hosted nodes that call a user function: (node, function name).
    pub user_functions: Vec<(String, String)>,
    /// The manifest's `query`, if it exposes queries.
    pub query: Option<QueryExposure>,
    /// The manifest's primitive instances (all of them; the queries list the parts hosted here).
    pub primitives: Vec<manifest::PrimitiveRecord>,
}

fn text<'a>(entries: &'a [(String, Cbor)], key: &str) -> Option<&'a str> {
    entries.iter().find(|(k, _)| k == key).and_then(|(_, v)| if let Cbor::Text(t) = v { Some(t.as_str()) } else { None })
}

fn field<'a>(entries: &'a [(String, Cbor)], key: &str) -> Option<&'a Cbor> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn records<'a>(top: &'a [(String, Cbor)], key: &str) -> Vec<&'a [(String, Cbor)]> {
    match field(top, key) {
        Some(Cbor::Array(items)) => items.iter().filter_map(|i| if let Cbor::Map(e) = i { Some(e.as_slice()) } else { None }).collect(),
        _ => Vec::new(),
    }
}

fn flag(entries: &[(String, Cbor)], key: &str) -> bool {
    matches!(field(entries, key), Some(Cbor::Bool(true)))
}

/// The user function names a parameter value refers to (`{"ref": name}`, also inside lists).
fn refs(item: &Cbor, out: &mut Vec<String>) {
    match item {
        Cbor::Map(entries) => {
            if let Some(name) = text(entries, "ref") {
                out.push(name.to_string());
            }
        }
        Cbor::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// Reads manifest bytes, CBOR or JSON (told apart by content, as `manyfold` does), into its
/// canonical CBOR.
pub fn canonical(bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let tree = if first == Some(b'{') {
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| LoadError(format!("the manifest is not valid JSON: {e}")))?;
        from_json(&json)?
    } else {
        manifest::decode(bytes)?
    };
    let mut out = Vec::new();
    encode_canonical(&tree, &mut out);
    Ok(out)
}

fn from_json(v: &serde_json::Value) -> Result<Cbor, LoadError> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Cbor::Null,
        J::Bool(b) => Cbor::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Cbor::Int(i),
            None => Cbor::Float(n.as_f64().ok_or_else(|| LoadError(format!("the manifest's number {n} does not fit")))?),
        },
        J::String(s) => Cbor::Text(s.clone()),
        J::Array(items) => Cbor::Array(items.iter().map(from_json).collect::<Result<_, _>>()?),
        J::Object(map) => Cbor::Map(map.iter().map(|(k, v)| Ok((k.clone(), from_json(v)?))).collect::<Result<_, LoadError>>()?),
    })
}

/// RFC 8949 core deterministic encoding: shortest heads, floats in their shortest exact form,
/// map keys sorted by their encoded bytes (what `manyfold`'s `canonical_cbor` writes).
pub fn encode_canonical(item: &Cbor, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail; minicbor writes every head in its shortest form.
    let mut e = minicbor::Encoder::new(&mut *out);
    let _ = match item {
        Cbor::Null => e.null(),
        Cbor::Bool(b) => e.bool(*b),
        Cbor::Int(i) => e.i64(*i),
        Cbor::Float(f) => {
            let h = half::f16::from_f64(*f);
            if h.to_f64() == *f || (f.is_nan() && h.is_nan()) {
                e.f16(h.to_f32())
            } else if (*f as f32) as f64 == *f {
                e.f32(*f as f32)
            } else {
                e.f64(*f)
            }
        }
        Cbor::Text(t) => e.str(t),
        Cbor::Bytes(b) => e.bytes(b),
        Cbor::Array(items) => {
            let _ = e.array(items.len() as u64);
            items.iter().for_each(|i| encode_canonical(i, out));
            return;
        }
        Cbor::Map(entries) => {
            let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = entries
                .iter()
                .map(|(k, v)| {
                    let (mut kb, mut vb) = (Vec::new(), Vec::new());
                    encode_canonical(&Cbor::Text(k.clone()), &mut kb);
                    encode_canonical(v, &mut vb);
                    (kb, vb)
                })
                .collect();
            encoded.sort();
            let _ = e.map(encoded.len() as u64);
            for (k, v) in encoded {
                out.extend(k);
                out.extend(v);
            }
            return;
        }
    };
}

impl NodePlan {
    /// Plans a node hosting `hosted` partitions of the manifest `bytes` (CBOR or JSON).
    pub fn new(bytes: &[u8], hosted: &[String]) -> Result<NodePlan, LoadError> {
        let cbor = canonical(bytes)?;
        let tree = manifest::decode(&cbor)?;
        let Cbor::Map(top) = &tree else { return Err(LoadError("the manifest must be a map".into())) };
        let partitions: Vec<String> = records(top, "partitions").iter().filter_map(|p| text(p, "name").map(String::from)).collect();
        for p in hosted {
            if !partitions.contains(p) {
                return Err(LoadError(format!("the manifest has no partition {p:?}; its partitions are {}", partitions.join(", "))));
            }
        }
        let is_hosted = |p: &str| hosted.iter().any(|h| h == p);
        let mut routes = Vec::new();
        let mut route_at = BTreeMap::new();
        for r in records(top, "routes") {
            let route = text(r, "route").unwrap_or_default().to_string();
            let partition = text(r, "partition").unwrap_or("main").to_string();
            let schema_hash = hash32(text(r, "schema").unwrap_or_default())
                .ok_or_else(|| LoadError(format!("route {route}: its schema is not a SHA-256 in hex")))?;
            route_at.insert(route.clone(), routes.len() as u32);
            routes.push(RoutePlan { route, partition, schema_hash });
        }
        let mut node_partition = BTreeMap::new();
        let mut node_taints = BTreeMap::new();
        let mut user_functions = Vec::new();
        for n in records(top, "nodes") {
            let name = text(n, "name").unwrap_or_default().to_string();
            let partition = text(n, "partition").unwrap_or("main").to_string();
            if let Some(Cbor::Map(params)) = field(n, "params") {
                if is_hosted(&partition) {
                    let mut found = Vec::new();
                    params.iter().for_each(|(_, v)| refs(v, &mut found));
                    user_functions.extend(found.into_iter().map(|f| (name.clone(), f)));
                }
                if text(n, "kind") == Some("forward") {
                    let mut taints = TaintSet::EMPTY;
                    if let Some(Cbor::Array(names)) = params.iter().find(|(k, _)| k == "link_taints").map(|(_, v)| v) {
                        for t in names {
                            if let Cbor::Text(t) = t {
                                taints = taints.with(Taint::from_name(t).ok_or_else(|| LoadError(format!("node {name}: unknown taint {t:?}")))?);
                            }
                        }
                    }
                    node_taints.insert(name.clone(), taints);
                }
            }
            node_partition.insert(name, partition);
        }
        let mut links = Vec::new();
        for l in records(top, "links") {
            let name = text(l, "name").unwrap_or_default().to_string();
            let between: Vec<&str> = match field(l, "between") {
                Some(Cbor::Array(items)) => items.iter().filter_map(|i| if let Cbor::Text(t) = i { Some(t.as_str()) } else { None }).collect(),
                _ => Vec::new(),
            };
            let [a, b] = between[..] else { return Err(LoadError(format!("link {name}: between must name two partitions"))) };
            let (local, remote) = match (is_hosted(a), is_hosted(b)) {
                (true, false) => (a, b),
                (false, true) => (b, a),
                _ => continue,
            };
            let mut outgoing = BTreeSet::new();
            let mut incoming: BTreeMap<u32, Option<TaintSet>> = BTreeMap::new();
            for e in records(top, "edges") {
                if text(e, "link") != Some(name.as_str()) {
                    continue;
                }
                let source = text(e, "source").unwrap_or_default();
                let target = text(e, "target").unwrap_or_default();
                let Some(&r) = route_at.get(source) else { continue };
                let source_partition = routes[r as usize].partition.as_str();
                let target_partition = node_partition.get(target).map_or("main", String::as_str);
                if source_partition == local && target_partition == remote {
                    outgoing.insert(r);
                } else if source_partition == remote && target_partition == local {
                    // Taints every consuming forward node adds anyway: the intersection.
                    let declared = node_taints.get(target).copied().unwrap_or(TaintSet::EMPTY);
                    let slot = incoming.entry(r).or_insert(None);
                    *slot = Some(slot.map_or(declared, |t| TaintSet(t.0 & declared.0)));
                }
            }
            let is_bulk = |r: u32| routes.get(r as usize).is_some_and(|p| p.route.split('.').nth(1) == Some("bulk"));
            let lazy = outgoing.iter().chain(incoming.keys()).any(|r| is_bulk(*r));
            links.push(LinkPlan {
                lazy,
                transport: text(l, "transport").unwrap_or("udp").to_string(),
                ordered: flag(l, "ordered"),
                reliable: flag(l, "reliable"),
                authenticated: flag(l, "authenticated"),
                durable: flag(l, "durable"),
                outgoing: outgoing.into_iter().collect(),
                incoming: incoming.into_iter().map(|(r, t)| (r, t.unwrap_or(TaintSet::EMPTY))).collect(),
                local: local.to_string(),
                remote: remote.to_string(),
                name,
            });
        }
        links.sort_by(|a, b| a.name.cmp(&b.name));
        // Over Zenoh the names become key chunks (docs/wire.md 4.12).
        for l in links.iter().filter(|l| l.transport == "zenoh") {
            for (what, name) in [("link", &l.name), ("partition", &l.local), ("partition", &l.remote)] {
                if !super::zenoh::key_safe(name) {
                    return Err(LoadError(format!("link {} runs on zenoh, so its {what} name {name:?} must not be empty or contain / * $ ? #", l.name)));
                }
            }
        }
        let (links, other_links) = links.into_iter().partition(|l| matches!(l.transport.as_str(), "udp" | "tcp" | "zenoh"));
        let texts = |entries: &[(String, Cbor)], key: &str| -> Vec<String> {
            match field(entries, key) {
                Some(Cbor::Array(items)) => items.iter().filter_map(|i| if let Cbor::Text(t) = i { Some(t.clone()) } else { None }).collect(),
                _ => Vec::new(),
            }
        };
        let query = match field(top, "query") {
            Some(Cbor::Map(q)) => Some(QueryExposure { service: text(q, "service").unwrap_or_default().to_string(), kinds: texts(q, "kinds"), principals: texts(q, "principals") }),
            _ => None,
        };
        let primitives = manifest::primitives(&tree)?;
        Ok(NodePlan { manifest_id: Sha256::digest(&cbor).into(), cbor, partitions, routes, links, other_links, user_functions, query, primitives })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn index(plan: &NodePlan, route: &str) -> u32 {
        plan.routes.iter().position(|r| r.route == route).unwrap() as u32
    }

    /// Hosting the middle partition of a -> b -> c: ab brings a's scaled route in (its forward
    /// node declares trust_unverified and det_nonreplayable), bc takes b's output out.
    #[test]
    fn crossings_follow_the_edges_that_record_a_link() {
        let plan = NodePlan::new(&fixture("chain.json"), &["b".to_string()]).unwrap();
        let names: Vec<&str> = plan.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["ab", "bc"]);
        let (ab, bc) = (&plan.links[0], &plan.links[1]);
        assert_eq!((ab.local.as_str(), ab.remote.as_str()), ("b", "a"));
        assert!(ab.outgoing.is_empty());
        let declared = TaintSet::EMPTY.with(Taint::TrustUnverified).with(Taint::DetNonReplayable);
        assert_eq!(ab.incoming, vec![(index(&plan, "read.raw.a.temp.scaled.event.v1"), declared)]);
        assert_eq!(bc.outgoing, vec![index(&plan, "read.raw.b.temp.out.event.v1")]);
        assert!(bc.incoming.is_empty());
        assert!(ab.ordered && ab.reliable && !ab.authenticated && !ab.durable);
        assert!(plan.user_functions.is_empty());
        // Hosting a and b together: ab is inside the node, only bc remains.
        let both = NodePlan::new(&fixture("chain.json"), &["a".to_string(), "b".to_string()]).unwrap();
        assert_eq!(both.links.len(), 1);
        assert_eq!(both.manifest_id, plan.manifest_id);
    }

    /// A serial link (to a device partition) is not a mesh link: no session runs on it.
    #[test]
    fn serial_links_are_set_apart() {
        let text = String::from_utf8(fixture("chain.json")).unwrap().replace("\"name\": \"ab\", \"ordered\": true, \"reliable\": true, \"transport\": \"udp\"", "\"name\": \"ab\", \"ordered\": true, \"reliable\": true, \"transport\": \"serial\"");
        let plan = NodePlan::new(text.as_bytes(), &["b".to_string()]).unwrap();
        assert_eq!(plan.links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["bc"]);
        assert_eq!(plan.other_links.iter().map(|l| (l.name.as_str(), l.transport.as_str())).collect::<Vec<_>>(), [("ab", "serial")]);
    }

    #[test]
    fn unknown_partitions_and_user_functions_are_named() {
        let err = NodePlan::new(&fixture("chain.json"), &["z".to_string()]).unwrap_err();
        assert!(err.0.contains("no partition \"z\""), "{}", err.0);
        let plan = NodePlan::new(&fixture("python.json"), &["b".to_string()]).unwrap();
        assert_eq!(plan.user_functions.len(), 1);
        assert_eq!(plan.user_functions[0].0, "plus_one");
        assert!(NodePlan::new(&fixture("python.json"), &["a".to_string()]).unwrap().user_functions.is_empty());
    }

    /// The manifest's primitive instances are read into typed records (all of them, whichever
    /// partitions are hosted); a manifest without them has none; a malformed record or a part
    /// the manifest lacks fails with a sentence naming the instance.
    #[test]
    fn primitive_instances_are_read_into_records() {
        let plan = NodePlan::new(&fixture("primitives.json"), &["a".to_string()]).unwrap();
        let names: Vec<(&str, &str, u32)> = plan.primitives.iter().map(|p| (p.instance.as_str(), p.contract.as_str(), p.version)).collect();
        assert_eq!(names, [("buf", "Capacitor", 1), ("limit", "RateLimiter", 1)]);
        let buf = &plan.primitives[0];
        assert_eq!((buf.layer.as_str(), buf.maturity.as_str()), ("local", "executable"));
        assert_eq!(buf.policies, serde_json::json!({"capacity": 4, "overflow": "reject"}));
        assert_eq!((buf.nodes.clone(), buf.routes.clone(), buf.stores.len()), (vec!["buf".to_string()], vec!["read.internal.buf.temp.raw.event.v1".to_string()], 0));
        assert!(NodePlan::new(&fixture("chain.json"), &["a".to_string()]).unwrap().primitives.is_empty());

        let text = String::from_utf8(fixture("primitives.json")).unwrap();
        let bad = text.replace("\"contract\": \"Capacitor\", ", "");
        assert_eq!(NodePlan::new(bad.as_bytes(), &["a".to_string()]).unwrap_err().0, "primitive buf has no field \"contract\"");
        let stored = text.replace("\"stores\": []}, \"policies\": {\"capacity\"", "\"stores\": [{\"name\": \"q\", \"kind\": \"EventLog\", \"sync\": \"full\"}]}, \"policies\": {\"capacity\"");
        let plan = NodePlan::new(stored.as_bytes(), &["a".to_string()]).unwrap();
        assert_eq!(plan.primitives[0].stores, [manifest::PrimitiveStore { name: "q".into(), kind: "EventLog".into(), sync: "full".into() }]);

        let missing = text.replace("\"nodes\": [\"buf\"]", "\"nodes\": [\"nowhere\"]");
        let cbor = canonical(missing.as_bytes()).unwrap();
        let mut graph = crate::graph::Graph::new_virtual();
        let err = manifest::load(&mut graph, &cbor, None, &mut std::sync::Arc::new, &mut crate::graph::factory::NoCallables, &mut |_, _, _| {}, &mut |_| {}).unwrap_err();
        assert_eq!(err.0, "primitive buf: its part node nowhere is not in the manifest's nodes");
        let mut graph = crate::graph::Graph::new_virtual();
        let report = manifest::load(&mut graph, &canonical(text.as_bytes()).unwrap(), None, &mut std::sync::Arc::new, &mut crate::graph::factory::NoCallables, &mut |_, _, _| {}, &mut |_| {}).unwrap();
        assert_eq!(report.primitives, NodePlan::new(text.as_bytes(), &["a".to_string()]).unwrap().primitives);
    }

    /// A zenoh link is a mesh link; on zenoh, a name with key-expression syntax is refused.
    #[test]
    fn zenoh_links_are_mesh_links_with_key_safe_names() {
        let udp = "\"name\": \"ab\", \"ordered\": true, \"reliable\": true, \"transport\": \"udp\"";
        let text = String::from_utf8(fixture("chain.json")).unwrap().replace(udp, &udp.replace("udp", "zenoh"));
        let plan = NodePlan::new(text.as_bytes(), &["b".to_string()]).unwrap();
        assert_eq!(plan.links.iter().map(|l| (l.name.as_str(), l.transport.as_str())).collect::<Vec<_>>(), [("ab", "zenoh"), ("bc", "udp")]);
        let bad = text.replace("\"ab\"", "\"a*b\"");
        let err = NodePlan::new(bad.as_bytes(), &["b".to_string()]).unwrap_err();
        assert_eq!(err.0, "link a*b runs on zenoh, so its link name \"a*b\" must not be empty or contain / * $ ? #");
        // The same name on udp is not a key: accepted.
        assert!(NodePlan::new(String::from_utf8(fixture("chain.json")).unwrap().replace("\"ab\"", "\"a*b\"").as_bytes(), &["b".to_string()]).is_ok());
    }

    /// The JSON and the CBOR of one manifest have one id: the canonical CBOR's SHA-256.
    #[test]
    fn json_and_cbor_give_one_manifest_id() {
        let json = fixture("chain.json");
        let cbor = canonical(&json).unwrap();
        let a = NodePlan::new(&json, &["a".to_string()]).unwrap();
        let b = NodePlan::new(&cbor, &["a".to_string()]).unwrap();
        assert_eq!(a.manifest_id, b.manifest_id);
        assert_ne!(a.manifest_id, NodePlan::new(&fixture("other.json"), &["a".to_string()]).unwrap().manifest_id);
    }
}
