//! The `materialized_view` operator: keyed latest state of a record stream, kept durable in a
//! store file and rebuilt from its latest snapshot plus the log tail when the graph starts.
//!
//! Every record reaching input 0 is appended to the view's event log (committed before it is
//! applied: what the view answers was durable first), replaces the state of its key, and is
//! emitted unchanged on output 0 (the view's changes). Every `snapshot_every` updates the whole
//! state is written as one snapshot, and the log before it is dropped, in one transaction.
//! Store layout (`<store dir>/<store>.sqlite`): event log `updates` (each record as CBOR, in
//! field order), snapshot store `view` (a CBOR array of records), keyspace `view_meta` (the
//! input schema's hash under `schema`: a store written for another schema is refused).

use std::any::Any;
use std::collections::BTreeMap;

use manyfold_core::taint::TaintSet;

use super::error::GraphError;
use super::operator::{Health, HealthState, OpContext, OpFailure, Operator, Output, Param};
use super::Graph;
use crate::envelope::EnvelopeRef;
use crate::node::codec;
use crate::schema::{Schema, SchemaType};
use crate::store::{EventLog, Keyspace, Recovery, SnapshotStore, StoreDir, StoreFile, StoreOptions, Sync};
use crate::value::{Key, Value};

/// The operator kind.
pub const KIND: &str = "materialized_view";
/// Updates between snapshots when the description does not say.
pub const SNAPSHOT_EVERY_DEFAULT: u64 = 1000;
/// Log records read per step when rebuilding.
const REPLAY_CHUNK: usize = 1024;

/// What a view's description says.
#[derive(Debug, Clone)]
pub struct ViewConfig {
    /// The key field: its index in the record and its name.
    pub key: (usize, String),
    /// The store's name (its file is `<store dir>/<store>.sqlite`).
    pub store: String,
    /// Updates between snapshots (at least 1).
    pub snapshot_every: u64,
    /// The store file's fsync policy.
    pub sync: Sync,
}

/// Counts and findings of a view, for queries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewInfo {
    /// Keys held.
    pub keys: usize,
    /// Updates applied since the node started (not counting the rebuild).
    pub updates: u64,
    /// Log records replayed on top of the snapshot when the node started.
    pub replayed: u64,
    /// The log position of the snapshot the rebuild started from (0: none).
    pub snapshot_seq: u64,
    /// The last log position applied.
    pub last_seq: u64,
    /// Snapshots written since the node started.
    pub snapshots: u64,
    /// Store writes that failed (those updates were not applied).
    pub store_failures: u64,
    /// What recovering the store file lost (sentences; empty when nothing was lost).
    pub lost: Vec<String>,
    /// Other findings of the recovery (uncommitted WAL frames discarded, ...).
    pub notes: Vec<String>,
    /// The store file.
    pub store_path: String,
}

struct ViewStore {
    file: StoreFile,
    log: EventLog,
    snaps: SnapshotStore,
}

/// Keyed latest state, durable (see the module doc).
pub struct MaterializedView {
    config: ViewConfig,
    ty: SchemaType,
    store: ViewStore,
    state: BTreeMap<Key, Value>,
    since_snapshot: u64,
    info: ViewInfo,
    last_failure: Option<String>,
}

/// The sentence for a durable operator built without a store directory (contract §3).
pub fn needs_store_dir(node: &str, kind: &str) -> GraphError {
    GraphError::Store(format!(
        "node {node} ({kind}) keeps durable state: give the graph a store directory (Graph(store_dir=...), or manyfold-node --store DIR)"
    ))
}

fn store_err(node: &str, e: crate::store::StoreError) -> GraphError {
    GraphError::Store(format!("node {node}: {}", e.message()))
}

impl MaterializedView {
    /// Opens (or creates) the view's store in `dir` and rebuilds its state from the latest
    /// snapshot and the log after it. `input` is the schema of input 0 (a record type holding
    /// the key field).
    pub fn open(node: &str, config: ViewConfig, input: &Schema, dir: &StoreDir) -> Result<MaterializedView, GraphError> {
        let (file, recovery) = dir.open_store(&config.store, StoreOptions::new(config.sync)).map_err(|e| store_err(node, e))?;
        Self::with_file(node, config, input, file, recovery)
    }

    fn with_file(node: &str, config: ViewConfig, input: &Schema, file: StoreFile, recovery: Recovery) -> Result<MaterializedView, GraphError> {
        let e = |e| store_err(node, e);
        let meta: Keyspace = file.keyspace("view_meta").map_err(e)?;
        let hash = input.hash.hex();
        match meta.get(b"schema").map_err(e)? {
            Some(held) if held != hash.as_bytes() => {
                return Err(GraphError::Store(format!(
                    "node {node}: store {} holds a view of another schema (hash {}), but its input carries {} (hash {hash}): name another store, or remove the file",
                    file.path().display(),
                    String::from_utf8_lossy(&held),
                    input.label()
                )))
            }
            Some(_) => {}
            None => meta.put(b"schema", hash.as_bytes()).map_err(e)?,
        }
        let store = ViewStore { log: file.event_log("updates").map_err(e)?, snaps: file.snapshots("view").map_err(e)?, file };
        let mut view = MaterializedView {
            info: ViewInfo {
                lost: recovery.lost,
                notes: recovery.notes,
                store_path: store.file.path().display().to_string(),
                ..ViewInfo::default()
            },
            config,
            ty: input.ty.clone(),
            store,
            state: BTreeMap::new(),
            since_snapshot: 0,
            last_failure: None,
        };
        view.rebuild(node)?;
        Ok(view)
    }

    fn rebuild(&mut self, node: &str) -> Result<(), GraphError> {
        let mut undecodable = 0u64;
        if let Some((at, bytes)) = self.store.snaps.latest().map_err(|e| store_err(node, e))? {
            let list = SchemaType::List(Box::new(self.ty.clone()));
            match codec::decode(&list, &bytes) {
                Ok(Value::List(records)) => {
                    for record in records.iter() {
                        if let Some(key) = self.key_of(record) {
                            self.state.insert(key, record.clone());
                        }
                    }
                }
                Ok(_) | Err(_) => self.info.lost.push(format!(
                    "the snapshot at log position {at} of {} could not be read: the view was rebuilt from the log records after it only",
                    self.info.store_path
                )),
            }
            self.info.snapshot_seq = at;
            self.info.last_seq = at;
        }
        let mut from = self.info.snapshot_seq + 1;
        loop {
            let chunk = self.store.log.read_from(from, REPLAY_CHUNK).map_err(|e| store_err(node, e))?;
            let Some((last, _)) = chunk.last() else { break };
            from = last + 1;
            for (seq, bytes) in chunk {
                match codec::decode(&self.ty, &bytes) {
                    Ok(record) => {
                        if let Some(key) = self.key_of(&record) {
                            self.state.insert(key, record);
                        }
                        self.info.replayed += 1;
                        self.since_snapshot += 1;
                    }
                    Err(_) => undecodable += 1,
                }
                self.info.last_seq = seq;
            }
        }
        if undecodable > 0 {
            self.info.lost.push(format!("{undecodable} log record(s) of {} could not be read and were skipped", self.info.store_path));
        }
        self.info.keys = self.state.len();
        Ok(())
    }

    fn key_of(&self, record: &Value) -> Option<Key> {
        record.field(self.config.key.0).and_then(Key::from_value)
    }

    fn snapshot(&mut self) -> Result<(), crate::store::StoreError> {
        let records: Vec<Value> = self.state.values().cloned().collect();
        let mut bytes = Vec::new();
        codec::encode(&Value::List(records.into()), &mut bytes);
        let at = self.info.last_seq;
        let (snaps, log) = (&self.store.snaps, &self.store.log);
        self.store.file.transaction(|_| {
            snaps.put(at, &bytes)?;
            log.truncate_before(at + 1)?;
            Ok(())
        })?;
        self.since_snapshot = 0;
        self.info.snapshots += 1;
        self.info.snapshot_seq = at;
        Ok(())
    }

    /// The latest record of every key, by key.
    pub fn rows(&self) -> Vec<(Value, Value)> {
        self.state.iter().map(|(k, v)| (k.to_value(), v.clone())).collect()
    }

    /// The latest record of `key`.
    pub fn get(&self, key: &Value) -> Option<&Value> {
        Key::from_value(key).and_then(|k| self.state.get(&k))
    }

    /// Counts and recovery findings.
    pub fn info(&self) -> ViewInfo {
        ViewInfo { keys: self.state.len(), ..self.info.clone() }
    }

    /// Its configuration.
    pub fn config(&self) -> &ViewConfig {
        &self.config
    }

    /// The type of its records.
    pub fn record_type(&self) -> &SchemaType {
        &self.ty
    }

    /// The answer of the node query kind `view`: `{"view", "key", "rows": [{"key", "value"}],
    /// "keys", "truncated", "updates", "replayed", "snapshot_seq", "last_seq", "snapshots",
    /// "store_failures", "lost", "notes", "store"}`, at most `rows_max` rows (by key).
    pub fn to_json(&self, name: &str, rows_max: usize) -> serde_json::Value {
        use crate::node::admin::to_json;
        let key_ty = match &self.ty {
            SchemaType::Record(r) => r.fields[self.config.key.0].1.clone(),
            other => other.clone(),
        };
        let rows: Vec<serde_json::Value> = self
            .state
            .iter()
            .take(rows_max)
            .map(|(k, v)| serde_json::json!({ "key": to_json(&k.to_value(), &key_ty), "value": to_json(v, &self.ty) }))
            .collect();
        let info = self.info();
        serde_json::json!({
            "view": name,
            "key": self.config.key.1,
            "rows": rows,
            "keys": info.keys,
            "truncated": info.keys > rows_max,
            "updates": info.updates,
            "replayed": info.replayed,
            "snapshot_seq": info.snapshot_seq,
            "last_seq": info.last_seq,
            "snapshots": info.snapshots,
            "store_failures": info.store_failures,
            "lost": info.lost,
            "notes": info.notes,
            "store": info.store_path,
        })
    }
}

/// Rows a `view` query answers at most.
pub const VIEW_ROWS_MAX: usize = 10_000;

/// The node query `view` (`"view": NAME`): the view's answer, or `{"error": sentence}`.
pub fn query_answer(g: &Graph, req: &serde_json::Value) -> serde_json::Value {
    let Some(name) = req.get("view").and_then(serde_json::Value::as_str) else {
        return serde_json::json!({ "error": "a view query needs \"view\": the name of a materialized_view node" });
    };
    let rows_max = req.get("limit").and_then(serde_json::Value::as_u64).map_or(VIEW_ROWS_MAX, |n| (n as usize).min(VIEW_ROWS_MAX));
    match g.view(name) {
        Ok(view) => view.to_json(name, rows_max),
        Err(e) => serde_json::json!({ "error": e.message() }),
    }
}

impl Operator for MaterializedView {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn on_input(&mut self, _port: usize, input: &EnvelopeRef, ctx: &mut OpContext<'_>) -> Result<(), OpFailure> {
        let record = input.value.clone();
        let Some(key) = self.key_of(&record) else {
            return Err(OpFailure::new(format!("node {}: record has no usable key in field {}", ctx.node_name(), self.config.key.1)));
        };
        let mut bytes = Vec::new();
        codec::encode(&record, &mut bytes);
        match self.store.log.append(&bytes) {
            Ok(seq) => self.info.last_seq = seq,
            Err(e) => {
                self.info.store_failures += 1;
                let why = format!("node {}: the update was not applied: {}", ctx.node_name(), e.message());
                self.last_failure = Some(why.clone());
                return Err(OpFailure::new(why));
            }
        }
        self.state.insert(key, record.clone());
        self.info.updates += 1;
        self.since_snapshot += 1;
        if self.since_snapshot >= self.config.snapshot_every {
            if let Err(e) = self.snapshot() {
                // The update is in the log: the view stays right; the log grows until a
                // snapshot succeeds.
                self.info.store_failures += 1;
                self.last_failure = Some(format!("node {}: a snapshot failed: {}", ctx.node_name(), e.message()));
            }
        }
        ctx.emit(Output::derived(record, input, TaintSet::EMPTY));
        Ok(())
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![
            ("key", Param::Text(self.config.key.1.clone())),
            ("store", Param::Text(self.config.store.clone())),
            ("snapshot_every", Param::Int(i64::try_from(self.config.snapshot_every).unwrap_or(i64::MAX))),
            ("sync", Param::Text(self.config.sync.word().to_string())),
        ]
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("keys", self.state.len() as u64),
            ("updates", self.info.updates),
            ("replayed", self.info.replayed),
            ("snapshots", self.info.snapshots),
            ("store_failures", self.info.store_failures),
            ("recovery_lost", self.info.lost.len() as u64),
        ]
    }

    fn buffered(&self) -> Option<(usize, usize)> {
        None
    }

    fn health(&self) -> Option<Health> {
        let mut health = Health::healthy();
        for lost in &self.info.lost {
            health.add(HealthState::Degraded, format!("recovery lost data: {lost}"));
        }
        if let Some(why) = &self.last_failure {
            health.add(HealthState::Degraded, format!("{} store write(s) failed; the last: {why}", self.info.store_failures));
        }
        health.reported()
    }
}

impl Graph {
    /// The materialized view of node `name`.
    pub fn view(&self, name: &str) -> Result<&MaterializedView, GraphError> {
        let node = self.node_index(name).ok_or_else(|| GraphError::NameInvalid(format!("no node is named {name:?}")))?;
        let op = &self.nodes[node.0 as usize].op;
        op.as_any()
            .and_then(|a| a.downcast_ref::<MaterializedView>())
            .ok_or_else(|| GraphError::OperatorConfig(format!("node {name} is a {}, not a materialized view", op.kind())))
    }
}
