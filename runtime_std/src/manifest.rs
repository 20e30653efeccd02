//! Loading a graph manifest (`manyfold.graph.v1`, deterministic CBOR) into a [`Graph`].
//!
//! The loader builds exactly what the manifest describes: schemas (each checked against its
//! recorded hash), routes with their retention and writers, and nodes with their edges, built by
//! the same [`factory`](crate::graph::factory) the Python API uses. User functions are
//! referenced by name and supplied through [`Callables`]; a missing one fails the load with
//! the node and the name. Partitions, links and query exposure are placement and access data:
//! the local runtime reads them but has nothing to build for them.
//!
//! The format is documented field by field in `docs/manifest.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use manyfold_core::envelope::ClockDomain;
use minicbor::data::Type;

use crate::graph::factory::{self, Callables, ParamMap, ParamValue, PortSpec};
use crate::graph::{EdgePolicy, Graph, GraphError, MailboxSpec, RouteOptions};
use crate::route::Route;
use crate::schema::{RecordType, Schema, SchemaType};

/// The manifest format this loader reads.
pub const FORMAT: &str = "manyfold.graph.v1";

/// A decoded CBOR item (only what manifests use).
#[derive(Debug, Clone, PartialEq)]
pub enum Cbor {
    /// null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Cbor>),
    /// A map with text keys, in encoded order.
    Map(Vec<(String, Cbor)>),
}

/// Why a manifest could not be loaded. The message names the field or record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

impl From<GraphError> for LoadError {
    fn from(e: GraphError) -> Self {
        LoadError(e.message().to_string())
    }
}

const DEPTH_MAX: u32 = 64;

fn decode_item(d: &mut minicbor::Decoder<'_>, depth: u32) -> Result<Cbor, LoadError> {
    let bad = |e: minicbor::decode::Error| LoadError(format!("the manifest is not valid CBOR: {e}"));
    if depth > DEPTH_MAX {
        return Err(LoadError("the manifest nests deeper than 64 levels".into()));
    }
    Ok(match d.datatype().map_err(bad)? {
        Type::Null | Type::Undefined => {
            d.skip().map_err(bad)?;
            Cbor::Null
        }
        Type::Bool => Cbor::Bool(d.bool().map_err(bad)?),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 | Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => {
            let i: i128 = d.int().map_err(bad)?.into();
            Cbor::Int(i64::try_from(i).map_err(|_| LoadError(format!("integer {i} does not fit in 64 bits")))?)
        }
        // Deterministic CBOR writes each float in its shortest exact form.
        // Deterministic CBOR writes each float in its shortest exact form (half, single or
        // double precision); minicbor's `f64` reads all three (feature `half`).
        Type::F16 | Type::F32 | Type::F64 => Cbor::Float(d.f64().map_err(bad)?),
        Type::String => Cbor::Text(d.str().map_err(bad)?.to_string()),
        Type::Bytes => Cbor::Bytes(d.bytes().map_err(bad)?.to_vec()),
        Type::Array => {
            let len = d.array().map_err(bad)?.ok_or_else(|| LoadError("indefinite-length arrays are not deterministic CBOR".into()))?;
            let mut items = Vec::new();
            for _ in 0..len {
                items.push(decode_item(d, depth + 1)?);
            }
            Cbor::Array(items)
        }
        Type::Map => {
            let len = d.map().map_err(bad)?.ok_or_else(|| LoadError("indefinite-length maps are not deterministic CBOR".into()))?;
            let mut entries = Vec::new();
            for _ in 0..len {
                let key = match decode_item(d, depth + 1)? {
                    Cbor::Text(k) => k,
                    other => return Err(LoadError(format!("a map key must be text, got {other:?}"))),
                };
                entries.push((key, decode_item(d, depth + 1)?));
            }
            Cbor::Map(entries)
        }
        other => return Err(LoadError(format!("unexpected CBOR item {other:?} in a manifest"))),
    })
}

/// Decodes CBOR bytes into a [`Cbor`] tree; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Cbor, LoadError> {
    let mut d = minicbor::Decoder::new(bytes);
    let item = decode_item(&mut d, 0)?;
    if d.position() != bytes.len() {
        return Err(LoadError(format!("{} trailing bytes after the manifest", bytes.len() - d.position())));
    }
    Ok(item)
}

struct Obj<'a> {
    what: String,
    entries: &'a [(String, Cbor)],
}

impl<'a> Obj<'a> {
    fn of(item: &'a Cbor, what: impl Into<String>) -> Result<Obj<'a>, LoadError> {
        let what = what.into();
        match item {
            Cbor::Map(entries) => Ok(Obj { what, entries }),
            _ => Err(LoadError(format!("{what} must be a map"))),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Cbor> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| **v != Cbor::Null)
    }

    fn req(&self, key: &str) -> Result<&'a Cbor, LoadError> {
        self.get(key).ok_or_else(|| LoadError(format!("{} has no field {key:?}", self.what)))
    }

    fn text(&self, key: &str) -> Result<&'a str, LoadError> {
        match self.req(key)? {
            Cbor::Text(t) => Ok(t),
            _ => Err(LoadError(format!("{}: field {key:?} must be text", self.what))),
        }
    }

    fn int(&self, key: &str) -> Result<i64, LoadError> {
        match self.req(key)? {
            Cbor::Int(i) => Ok(*i),
            _ => Err(LoadError(format!("{}: field {key:?} must be an integer", self.what))),
        }
    }

    fn bool(&self, key: &str) -> Result<bool, LoadError> {
        match self.get(key) {
            None => Ok(false),
            Some(Cbor::Bool(b)) => Ok(*b),
            Some(_) => Err(LoadError(format!("{}: field {key:?} must be true or false", self.what))),
        }
    }

    fn array(&self, key: &str) -> Result<&'a [Cbor], LoadError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Cbor::Array(items)) => Ok(items),
            Some(_) => Err(LoadError(format!("{}: field {key:?} must be a list", self.what))),
        }
    }
}

/// Turns a type descriptor (`"float"`, `["list", T]`, `["record", name, [[field, T], ...]]`)
/// into a schema type.
pub fn schema_type(item: &Cbor, what: &str) -> Result<SchemaType, LoadError> {
    let bad = || LoadError(format!("{what}: invalid type descriptor {item:?}"));
    Ok(match item {
        Cbor::Text(t) => match t.as_str() {
            "bool" => SchemaType::Bool,
            "int" => SchemaType::Int,
            "float" => SchemaType::Float,
            "text" => SchemaType::Text,
            "bytes" => SchemaType::Bytes,
            _ => return Err(bad()),
        },
        Cbor::Array(parts) => match parts.as_slice() {
            [Cbor::Text(tag), inner] if tag == "list" => SchemaType::List(Box::new(schema_type(inner, what)?)),
            [Cbor::Text(tag), inner] if tag == "optional" => SchemaType::Optional(Box::new(schema_type(inner, what)?)),
            [Cbor::Text(tag), Cbor::Text(name), Cbor::Array(fields)] if tag == "record" => {
                let mut out = Vec::new();
                for field in fields {
                    match field {
                        Cbor::Array(pair) if pair.len() == 2 => match &pair[0] {
                            Cbor::Text(n) => out.push((n.clone(), schema_type(&pair[1], what)?)),
                            _ => return Err(bad()),
                        },
                        _ => return Err(bad()),
                    }
                }
                SchemaType::Record(Arc::new(RecordType { name: name.clone(), fields: out }))
            }
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    })
}

fn param_value(item: &Cbor, what: &str) -> Result<ParamValue, LoadError> {
    Ok(match item {
        Cbor::Null => ParamValue::Null,
        Cbor::Bool(b) => ParamValue::Bool(*b),
        Cbor::Int(i) => ParamValue::Int(*i),
        Cbor::Float(f) => ParamValue::Float(*f),
        Cbor::Text(t) => ParamValue::Text(t.clone()),
        Cbor::Array(items) => ParamValue::List(items.iter().map(|i| param_value(i, what)).collect::<Result<_, _>>()?),
        Cbor::Map(entries) => match entries.as_slice() {
            [(k, Cbor::Text(name))] if k == "ref" => ParamValue::Ref(name.clone()),
            _ => return Err(LoadError(format!("{what}: a map parameter must be {{\"ref\": name}}"))),
        },
        Cbor::Bytes(_) => return Err(LoadError(format!("{what}: bytes are not a parameter type"))),
    })
}

/// What a load built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Schemas, routes, nodes and edges declared.
    pub schemas: usize,
    /// Routes declared.
    pub routes: usize,
    /// Nodes built.
    pub nodes: usize,
    /// Edges created.
    pub edges: usize,
    /// The manifest's primitive instances (all of them, whichever partitions were built).
    pub primitives: Vec<PrimitiveRecord>,
}

/// A store a primitive instance declared (`parts.stores`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimitiveStore {
    /// The store's name (its file is `<store dir>/<name>.sqlite`).
    pub name: String,
    /// What it is: `EventLog`, `SnapshotStore`, `CheckpointStore`, `Keyspace`.
    pub kind: String,
    /// Its sync policy: `full` or `normal`.
    pub sync: String,
}

/// One installed primitive instance (the manifest's `primitives` list): the contract it was
/// installed from, at which version, layer and maturity, its policies, and the parts it
/// lowered into (nodes, routes, stores), so queries can group those parts under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimitiveRecord {
    /// The instance's name (unique in the manifest).
    pub instance: String,
    /// The contract's name, e.g. `DurableQueue`.
    pub contract: String,
    /// The contract's version.
    pub version: u32,
    /// The contract's layer (`atom` ... `application`).
    pub layer: String,
    /// The contract's maturity (`named` ... `stable`).
    pub maturity: String,
    /// The policies it was installed with, as a JSON object.
    pub policies: serde_json::Value,
    /// Its graph nodes.
    pub nodes: Vec<String>,
    /// Its routes (printed).
    pub routes: Vec<String>,
    /// Its stores.
    pub stores: Vec<PrimitiveStore>,
}

fn cbor_json(item: &Cbor) -> serde_json::Value {
    use serde_json::Value as J;
    match item {
        Cbor::Null => J::Null,
        Cbor::Bool(b) => J::Bool(*b),
        Cbor::Int(i) => J::from(*i),
        Cbor::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Cbor::Text(t) => J::String(t.clone()),
        Cbor::Bytes(b) => J::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        Cbor::Array(items) => J::Array(items.iter().map(cbor_json).collect()),
        Cbor::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.clone(), cbor_json(v))).collect()),
    }
}

fn texts(o: &Obj<'_>, key: &str) -> Result<Vec<String>, LoadError> {
    o.array(key)?
        .iter()
        .map(|i| match i {
            Cbor::Text(t) => Ok(t.clone()),
            _ => Err(LoadError(format!("{}: field {key:?} must be a list of names", o.what))),
        })
        .collect()
}

/// The manifest's primitive instances (its `primitives` list, `[]` when it has none). Each
/// record must name its instance, contract, version, layer and maturity; `policies` and
/// `parts` (`nodes`, `routes`, `stores`) may be left out. Part names are not checked here
/// ([`load`] checks them against the manifest's nodes and routes).
pub fn primitives(root: &Cbor) -> Result<Vec<PrimitiveRecord>, LoadError> {
    let top = Obj::of(root, "the manifest")?;
    let mut out: Vec<PrimitiveRecord> = Vec::new();
    for (i, item) in top.array("primitives")?.iter().enumerate() {
        let o = Obj::of(item, format!("primitives[{i}]"))?;
        let instance = o.text("instance")?.to_string();
        let o = Obj { what: format!("primitive {instance}"), entries: o.entries };
        if out.iter().any(|p| p.instance == instance) {
            return Err(LoadError(format!("primitive {instance} is recorded twice in the manifest")));
        }
        let version = u32::try_from(o.int("version")?).map_err(|_| LoadError(format!("primitive {instance}: version out of range")))?;
        let policies = match o.get("policies") {
            None => serde_json::Value::Object(serde_json::Map::new()),
            Some(p @ Cbor::Map(_)) => cbor_json(p),
            Some(_) => return Err(LoadError(format!("primitive {instance}: field \"policies\" must be a map"))),
        };
        let (mut nodes, mut routes, mut stores) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(parts) = o.get("parts") {
            let parts = Obj::of(parts, format!("primitive {instance}: parts"))?;
            nodes = texts(&parts, "nodes")?;
            routes = texts(&parts, "routes")?;
            for (j, s) in parts.array("stores")?.iter().enumerate() {
                let s = Obj::of(s, format!("primitive {instance}: parts.stores[{j}]"))?;
                stores.push(PrimitiveStore { name: s.text("name")?.to_string(), kind: s.text("kind")?.to_string(), sync: s.text("sync")?.to_string() });
            }
        }
        out.push(PrimitiveRecord {
            contract: o.text("contract")?.to_string(),
            version,
            layer: o.text("layer")?.to_string(),
            maturity: o.text("maturity")?.to_string(),
            policies,
            nodes,
            routes,
            stores,
            instance,
        });
    }
    Ok(out)
}

/// Loads manifest `bytes` into `graph`: every route, and the nodes of `partitions` (all when
/// `None`; a runtime hosting one partition builds only its nodes, and the routes other
/// partitions produce arrive over links). `resolve` turns each decoded schema into the shared
/// schema to use (the Python binding interns record types there); `callables` supplies the
/// user functions nodes refer to. `on_route` is told each route declared (index, route,
/// schema), `on_node` each node built (its name).
#[allow(clippy::too_many_arguments)]
pub fn load(
    graph: &mut Graph,
    bytes: &[u8],
    partitions: Option<&[String]>,
    resolve: &mut dyn FnMut(Schema) -> Arc<Schema>,
    callables: &mut dyn Callables,
    on_route: &mut dyn FnMut(manyfold_core::envelope::RouteIdx, &Route, &Arc<Schema>),
    on_node: &mut dyn FnMut(&str),
) -> Result<LoadReport, LoadError> {
    let root = decode(bytes)?;
    let top = Obj::of(&root, "the manifest")?;
    let format = top.text("format")?;
    if format != FORMAT {
        return Err(LoadError(format!("unknown manifest format {format:?}; this runtime reads {FORMAT:?}")));
    }
    let mut report = LoadReport { primitives: primitives(&root)?, ..LoadReport::default() };

    let mut schemas: BTreeMap<String, Arc<Schema>> = BTreeMap::new();
    for (i, item) in top.array("schemas")?.iter().enumerate() {
        let o = Obj::of(item, format!("schemas[{i}]"))?;
        let name = o.text("name")?;
        let version = u32::try_from(o.int("version")?).map_err(|_| LoadError(format!("schema {name}: version out of range")))?;
        let ty = schema_type(o.req("type")?, &format!("schema {name}@{version}"))?;
        let schema = Schema::new(name, version, ty);
        let recorded = o.text("hash")?;
        if schema.hash.hex() != recorded {
            return Err(LoadError(format!(
                "schema {name}@{version}: the manifest records hash {recorded} but its type hashes to {}; the manifest was edited or corrupted",
                schema.hash.hex()
            )));
        }
        schemas.insert(recorded.to_string(), resolve(schema));
        report.schemas += 1;
    }

    let settings = match top.get("settings") {
        Some(s) => Some(Obj::of(s, "settings")?),
        None => None,
    };
    if let Some(Cbor::Int(n)) = settings.as_ref().and_then(|s| s.get("payload_cache_bytes")) {
        graph.set_payload_cache_bytes(usize::try_from(*n).unwrap_or(0));
    }
    if let Some(s) = settings.as_ref().filter(|s| s.get("gated_max").is_some()) {
        let gated_max = usize::try_from(s.int("gated_max")?).unwrap_or(0);
        graph.set_gated_max(gated_max).map_err(|e| LoadError(format!("settings.gated_max: {}", e.message())))?;
    }

    let mut route_index = BTreeMap::new();
    let mut grants: Vec<(String, manyfold_core::envelope::RouteIdx)> = Vec::new();
    for (i, item) in top.array("routes")?.iter().enumerate() {
        let o = Obj::of(item, format!("routes[{i}]"))?;
        let text = o.text("route")?;
        let route: Route = text.parse().map_err(|e: crate::route::RouteError| LoadError(format!("routes[{i}]: {e}")))?;
        let hash = o.text("schema")?;
        let schema = schemas
            .get(hash)
            .cloned()
            .ok_or_else(|| LoadError(format!("route {route}: schema {hash} is not in the manifest's schemas")))?;
        // A field left out takes the graph's default (retain: at least history).
        let count = |key: &str| -> Result<Option<usize>, LoadError> {
            let Some(_) = o.get(key) else { return Ok(None) };
            let v = o.int(key)?;
            usize::try_from(v).map(Some).map_err(|_| LoadError(format!("route {route}: {key} must not be negative, got {v}")))
        };
        let mut options = RouteOptions::with_history(count("history")?.unwrap_or(RouteOptions::default().history));
        options.retain = count("retain")?.unwrap_or(options.retain);
        options.audit = o.bool("audit")?;
        if o.get("clock_domain").is_some() {
            options.clock_domain = ClockDomain(u16::try_from(o.int("clock_domain")?).unwrap_or(0));
        }
        let idx = graph.declare_route(route.clone(), schema.clone(), options)?;
        on_route(idx, &route, &schema);
        for writer in o.array("writers")? {
            match writer {
                Cbor::Text(w) => grants.push((w.clone(), idx)),
                _ => return Err(LoadError(format!("route {route}: writers must be names"))),
            }
        }
        route_index.insert(text.to_string(), (idx, route, schema));
        report.routes += 1;
    }
    for (writer, idx) in grants {
        let p = graph.producer(&writer)?;
        graph.grant(p, idx)?;
    }

    let mut edges: BTreeMap<String, (String, String, usize, EdgePolicy)> = BTreeMap::new();
    for (i, item) in top.array("edges")?.iter().enumerate() {
        let o = Obj::of(item, format!("edges[{i}]"))?;
        let name = o.text("name")?.to_string();
        let policy = Obj::of(o.req("policy")?, format!("edge {name}: policy"))?;
        let policy = match policy.text("kind")? {
            "inline" => EdgePolicy::INLINE,
            "epoch_boundary" => EdgePolicy { mailbox: None, epoch_boundary: true },
            "mailbox" => {
                let capacity = usize::try_from(policy.int("capacity")?).map_err(|_| LoadError(format!("edge {name}: capacity must be positive")))?;
                let overflow = factory::overflow_of(policy.text("overflow")?)?;
                EdgePolicy { mailbox: Some(MailboxSpec { capacity, overflow }), epoch_boundary: false }
            }
            other => return Err(LoadError(format!("edge {name}: unknown policy kind {other:?}"))),
        };
        let port = usize::try_from(o.int("port")?).map_err(|_| LoadError(format!("edge {name}: port must not be negative")))?;
        edges.insert(name.clone(), (o.text("source")?.to_string(), o.text("target")?.to_string(), port, policy));
        report.edges += 1;
    }

    for (i, item) in top.array("nodes")?.iter().enumerate() {
        let o = Obj::of(item, format!("nodes[{i}]"))?;
        let name = o.text("name")?;
        let kind = o.text("kind")?;
        if let Some(wanted) = partitions {
            let partition = if o.get("partition").is_some() { o.text("partition")? } else { "main" };
            if !wanted.iter().any(|p| p == partition) {
                continue;
            }
        }
        let mut inputs = Vec::new();
        for edge in o.array("inputs")? {
            let Cbor::Text(edge_name) = edge else { return Err(LoadError(format!("node {name}: inputs must be edge names"))) };
            let (source, target, port, policy) =
                edges.get(edge_name).ok_or_else(|| LoadError(format!("node {name}: input edge {edge_name} is not in the manifest's edges")))?;
            if target != name || *port != inputs.len() {
                return Err(LoadError(format!("node {name}: edge {edge_name} leads to {target} port {port}, not to this node's port {}", inputs.len())));
            }
            let (idx, _, schema) = route_index.get(source).ok_or_else(|| LoadError(format!("edge {edge_name}: source route {source} is not declared")))?;
            inputs.push((*idx, *policy, source.clone(), schema.clone()));
        }
        let mut outputs = Vec::new();
        for out in o.array("outputs")? {
            let Cbor::Text(route) = out else { return Err(LoadError(format!("node {name}: outputs must be routes"))) };
            let (idx, _, schema) = route_index.get(route).ok_or_else(|| LoadError(format!("node {name}: output route {route} is not declared")))?;
            outputs.push((*idx, route.clone(), schema.clone()));
        }
        let mut params = ParamMap::new();
        if let Some(p) = o.get("params") {
            for (k, v) in Obj::of(p, format!("node {name}: params"))?.entries {
                params.insert(k.clone(), param_value(v, &format!("node {name}: parameter {k}"))?);
            }
        }
        let input_ports: Vec<PortSpec<'_>> = inputs.iter().map(|(_, _, r, s)| PortSpec { route: r.clone(), schema: s }).collect();
        let output_ports: Vec<PortSpec<'_>> = outputs.iter().map(|(_, r, s)| PortSpec { route: r.clone(), schema: s }).collect();
        let op = factory::build(kind, name, &params, &input_ports, &output_ports, callables, graph.store_dir())?;
        let edge_list: Vec<_> = inputs.iter().map(|(idx, policy, _, _)| (*idx, *policy)).collect();
        let out_list: Vec<_> = outputs.iter().map(|(idx, _, _)| *idx).collect();
        graph.add_node_described(name, kind, op, &edge_list, &out_list, params)?;
        on_node(name);
        report.nodes += 1;
    }
    let node_names: Vec<&str> = top.array("nodes")?.iter().filter_map(|n| Obj::of(n, "node").ok()?.text("name").ok()).collect();
    for p in &report.primitives {
        if let Some(n) = p.nodes.iter().find(|n| !node_names.contains(&n.as_str())) {
            return Err(LoadError(format!("primitive {}: its part node {n} is not in the manifest's nodes", p.instance)));
        }
        if let Some(r) = p.routes.iter().find(|r| !route_index.contains_key(r.as_str())) {
            return Err(LoadError(format!("primitive {}: its part route {r} is not in the manifest's routes", p.instance)));
        }
    }
    Ok(report)
}
