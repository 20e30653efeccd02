//! Building operators from their description: a kind, named parameters, and the schemas of the
//! node's input and output routes.
//!
//! The Python API and the manifest loader both come through here, so a graph compiled to a
//! manifest and loaded again gets exactly the same operators, checked the same way. User
//! functions (a `map`'s function, a key function) are referenced by name and supplied by a
//! [`Callables`] registry; a missing one is a clear error, not a crash.

use std::collections::BTreeMap;
use std::fmt;

use manyfold_core::kernels::{Aggregate, Deadband, JoinWindow, Scale, Threshold};
use manyfold_core::mailbox::Overflow;
use manyfold_core::taint::{Taint, TaintSet};

use super::error::GraphError;
use super::operator::Operator;
use super::ops::{
    Capacitor, CountWindowOp, Extract, Filter, Idempotency, Join, JoinClass, JoinSpec, Map, Merge, OpenPayload,
    PredicateFn, RateLimit, Repair, Resequence, ResistorOp, Scalar, ScalarKernel, TimeSource, TimeWindowOp, ValueFn,
    WindowEmit, WriteBinding,
};
use crate::schema::{Schema, SchemaType};

/// A parameter value in an operator description.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Absent or null.
    Null,
    /// A flag.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text (a word, a field name, a proof).
    Text(String),
    /// A list (of taint names, say).
    List(Vec<ParamValue>),
    /// A user function, by name.
    Ref(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Null => write!(f, "null"),
            ParamValue::Bool(v) => write!(f, "{v}"),
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Text(v) => write!(f, "{v:?}"),
            ParamValue::List(v) => write!(f, "{v:?}"),
            ParamValue::Ref(v) => write!(f, "function {v}"),
        }
    }
}

/// Named parameters of an operator.
pub type ParamMap = BTreeMap<String, ParamValue>;

/// A node's port: the printed route and its schema.
pub struct PortSpec<'a> {
    /// The route, printed (for messages).
    pub route: String,
    /// Its schema.
    pub schema: &'a Schema,
}

/// Supplies the user functions an operator description refers to by name.
pub trait Callables {
    /// A function from values of `input` to values of `output` (any type when `None`).
    fn value_fn(&mut self, name: &str, input: &SchemaType, output: Option<&SchemaType>) -> Option<ValueFn>;
    /// A predicate on values of `input`.
    fn predicate(&mut self, name: &str, input: &SchemaType) -> Option<PredicateFn>;
}

/// No user functions: descriptions that refer to one fail with `CallableMissing`.
pub struct NoCallables;

impl Callables for NoCallables {
    fn value_fn(&mut self, _: &str, _: &SchemaType, _: Option<&SchemaType>) -> Option<ValueFn> {
        None
    }
    fn predicate(&mut self, _: &str, _: &SchemaType) -> Option<PredicateFn> {
        None
    }
}

struct Ctx<'a> {
    kind: &'a str,
    node: &'a str,
    params: &'a ParamMap,
}

impl Ctx<'_> {
    fn config(&self, m: impl fmt::Display) -> GraphError {
        GraphError::OperatorConfig(format!("node {}: {m}", self.node))
    }

    fn get(&self, key: &str) -> Option<&ParamValue> {
        self.params.get(key).filter(|v| **v != ParamValue::Null)
    }

    fn int(&self, key: &str) -> Result<Option<i64>, GraphError> {
        match self.get(key) {
            None => Ok(None),
            Some(ParamValue::Int(v)) => Ok(Some(*v)),
            Some(other) => Err(self.config(format!("parameter {key} must be an integer, got {other}"))),
        }
    }

    fn req_int(&self, key: &str) -> Result<i64, GraphError> {
        self.int(key)?.ok_or_else(|| self.config(format!("parameter {key} is required")))
    }

    fn usize(&self, key: &str) -> Result<Option<usize>, GraphError> {
        match self.int(key)? {
            None => Ok(None),
            Some(v) if v >= 0 => Ok(Some(v as usize)),
            Some(v) => Err(self.config(format!("parameter {key} must not be negative, got {v}"))),
        }
    }

    fn req_usize(&self, key: &str) -> Result<usize, GraphError> {
        self.usize(key)?.ok_or_else(|| self.config(format!("parameter {key} is required")))
    }

    /// A number parameter: finite, as every float of a partition image (an infinite or NaN
    /// band, limit or scale would pass nothing, pass everything, or make every output NaN).
    fn float(&self, key: &str) -> Result<Option<f64>, GraphError> {
        let v = match self.get(key) {
            None => return Ok(None),
            Some(ParamValue::Float(v)) => *v,
            Some(ParamValue::Int(v)) => *v as f64,
            Some(other) => return Err(self.config(format!("parameter {key} must be a number, got {other}"))),
        };
        if !v.is_finite() {
            return Err(self.config(format!("parameter {key} must be a finite number, got {v}")));
        }
        Ok(Some(v))
    }

    fn req_float(&self, key: &str) -> Result<f64, GraphError> {
        self.float(key)?.ok_or_else(|| self.config(format!("parameter {key} is required")))
    }

    fn text(&self, key: &str) -> Result<Option<&str>, GraphError> {
        match self.get(key) {
            None => Ok(None),
            Some(ParamValue::Text(v)) => Ok(Some(v)),
            Some(other) => Err(self.config(format!("parameter {key} must be text, got {other}"))),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, GraphError> {
        match self.get(key) {
            None => Ok(default),
            Some(ParamValue::Bool(v)) => Ok(*v),
            Some(other) => Err(self.config(format!("parameter {key} must be true or false, got {other}"))),
        }
    }

    fn taints(&self, key: &str) -> Result<TaintSet, GraphError> {
        let mut set = TaintSet::EMPTY;
        let items = match self.get(key) {
            None => return Ok(set),
            Some(ParamValue::List(items)) => items,
            Some(other) => return Err(self.config(format!("parameter {key} must be a list of taint names, got {other}"))),
        };
        for item in items {
            let ParamValue::Text(name) = item else {
                return Err(self.config(format!("parameter {key} must list taint names, got {item}")));
            };
            let taint = Taint::from_name(name).ok_or_else(|| {
                let all: Vec<&str> = Taint::ALL.iter().map(|t| t.name()).collect();
                self.config(format!("unknown taint {name:?}; known taints: {}", all.join(", ")))
            })?;
            set = set.with(taint);
        }
        Ok(set)
    }

    fn callable_name(&self, key: &str) -> Result<&str, GraphError> {
        match self.get(key) {
            Some(ParamValue::Ref(name)) => Ok(name),
            None => Err(self.config(format!("parameter {key} (a function) is required"))),
            Some(other) => Err(self.config(format!("parameter {key} must be a function reference, got {other}"))),
        }
    }

    fn missing(&self, name: &str) -> GraphError {
        GraphError::CallableMissing(format!(
            "node {} ({}) needs the function {name:?}; supply it when loading (callables={{{name:?}: ...}})",
            self.node, self.kind
        ))
    }

    /// A `value` or `key` parameter: absent (the payload), a field name, or a function.
    fn extract(&self, key: &str, input: &Schema, numeric: bool, callables: &mut dyn Callables) -> Result<Option<Extract>, GraphError> {
        let node = self.node;
        match self.get(key) {
            None => Ok(None),
            Some(ParamValue::Text(field)) => {
                let SchemaType::Record(record) = &input.ty else {
                    return Err(GraphError::SchemaMismatch(format!("node {node}: its input carries {}, which has no field {field:?}", input.label())));
                };
                let Some((index, ty)) = record.field(field) else {
                    let names: Vec<&str> = record.fields.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(GraphError::SchemaMismatch(format!(
                        "node {node}: {} has no field {field:?} (fields: {})",
                        input.label(),
                        names.join(", ")
                    )));
                };
                let base = match ty {
                    SchemaType::Optional(inner) => inner.as_ref(),
                    other => other,
                };
                if numeric && !matches!(base, SchemaType::Float | SchemaType::Int) {
                    return Err(GraphError::SchemaMismatch(format!("node {node}: field {field} of {} is not a number", input.label())));
                }
                Ok(Some(Extract::Field { index, name: field.clone() }))
            }
            Some(ParamValue::Ref(name)) => {
                let f = callables.value_fn(name, &input.ty, None).ok_or_else(|| self.missing(name))?;
                Ok(Some(Extract::Call(f)))
            }
            Some(other) => Err(self.config(format!("{key} must be a field name or a function, got {other}"))),
        }
    }

    fn value(&self, input: &Schema, callables: &mut dyn Callables) -> Result<Extract, GraphError> {
        match self.extract("value", input, true, callables)? {
            Some(e) => Ok(e),
            None if matches!(input.ty, SchemaType::Float | SchemaType::Int) => Ok(Extract::Whole),
            None => Err(GraphError::SchemaMismatch(format!(
                "node {}: its input carries {} which is not a number; name a numeric field with value=\"field\"",
                self.node,
                input.label()
            ))),
        }
    }
}

fn same_schema(node: &str, input: &PortSpec<'_>, output: &PortSpec<'_>) -> Result<(), GraphError> {
    if input.schema.hash != output.schema.hash {
        return Err(GraphError::SchemaMismatch(format!(
            "node {node}: input {} carries {} but output {} carries {}; they must match",
            input.route,
            input.schema.label(),
            output.route,
            output.schema.label()
        )));
    }
    Ok(())
}

fn emits(node: &str, output: &PortSpec<'_>, ok: bool, wanted: &str) -> Result<(), GraphError> {
    if !ok {
        return Err(GraphError::SchemaMismatch(format!(
            "node {node}: output {} carries {}, but this operator emits {wanted}",
            output.route,
            output.schema.label()
        )));
    }
    Ok(())
}

fn is_record_named(schema: &Schema, name: &str) -> bool {
    matches!(&schema.ty, SchemaType::Record(r) if r.name == name)
}

/// Parses an overflow policy word.
pub fn overflow_of(word: &str) -> Result<Overflow, GraphError> {
    Ok(match word {
        "block" => Overflow::Block,
        "drop_oldest" => Overflow::DropOldest,
        "drop_newest" => Overflow::DropNewest,
        "reject" => Overflow::Reject,
        other => {
            return Err(GraphError::OperatorConfig(format!(
                "unknown overflow policy {other:?}; expected block, drop_oldest, drop_newest or reject"
            )))
        }
    })
}

/// The word of an overflow policy.
pub fn overflow_word(o: Overflow) -> &'static str {
    match o {
        Overflow::Block => "block",
        Overflow::DropOldest => "drop_oldest",
        Overflow::DropNewest => "drop_newest",
        Overflow::Reject => "reject",
    }
}

/// The operator kinds this factory builds.
pub const KINDS: &[&str] = &[
    "map", "filter", "merge", "count_window", "time_window", "rate_limit", "capacitor", "resistor", "deadband",
    "threshold", "scale", "join", "repair", "resequence", "open_payload", "write_binding", "actuator", "sample", "forward",
    "materialized_view",
    "durable_queue",
];

/// Builds the operator of node `node` of `kind` from its parameters, checking them against the
/// schemas of its input and output routes. Durable operators keep their stores in
/// `store_dir` (the graph's store directory); without one they are refused.
pub fn build(
    kind: &str,
    node: &str,
    params: &ParamMap,
    inputs: &[PortSpec<'_>],
    outputs: &[PortSpec<'_>],
    callables: &mut dyn Callables,
    store_dir: Option<&crate::store::StoreDir>,
) -> Result<Box<dyn Operator>, GraphError> {
    let c = Ctx { kind, node, params };
    let outputs_wanted = if matches!(kind, "write_binding" | "actuator" | "durable_queue") { 2 } else { 1 };
    if outputs.len() != outputs_wanted {
        return Err(c.config(format!("{kind} has {outputs_wanted} output(s), got {}", outputs.len())));
    }
    let output = &outputs[0];
    let first = inputs.first().ok_or_else(|| c.config("an operator needs at least one input"))?;
    let need_inputs = |n: usize| -> Result<(), GraphError> {
        if inputs.len() != n {
            return Err(c.config(format!("{kind} takes {n} input(s), got {}", inputs.len())));
        }
        Ok(())
    };
    let aggregate = || -> Result<Aggregate, GraphError> {
        Ok(match c.text("aggregate")?.unwrap_or("mean") {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "mean" => Aggregate::Mean,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            other => return Err(c.config(format!("unknown aggregate {other:?}; expected count, sum, mean, min or max"))),
        })
    };
    Ok(match kind {
        "forward" => {
            need_inputs(1)?;
            same_schema(node, first, output)?;
            Box::new(super::ops::Forward { added: c.taints("link_taints")? })
        }
        "map" => {
            need_inputs(1)?;
            let name = c.callable_name("fn")?;
            let f = callables.value_fn(name, &first.schema.ty, Some(&output.schema.ty)).ok_or_else(|| c.missing(name))?;
            Box::new(Map { f, deterministic: c.bool("deterministic", true)? })
        }
        "filter" => {
            need_inputs(1)?;
            same_schema(node, first, output)?;
            let name = c.callable_name("fn")?;
            let f = callables.predicate(name, &first.schema.ty).ok_or_else(|| c.missing(name))?;
            Box::new(Filter { f, deterministic: c.bool("deterministic", true)?, refused: 0 })
        }
        "merge" => {
            for input in inputs {
                same_schema(node, input, output)?;
            }
            Box::new(Merge { inputs: inputs.len() })
        }
        "count_window" | "time_window" => {
            need_inputs(1)?;
            let emit = match c.text("emit")?.unwrap_or("value") {
                "value" => WindowEmit::Value,
                "record" => WindowEmit::Record,
                other => return Err(c.config(format!("emit must be value or record, got {other:?}"))),
            };
            match emit {
                WindowEmit::Value => emits(node, output, output.schema.ty == SchemaType::Float, "float")?,
                WindowEmit::Record => emits(node, output, is_record_named(output.schema, "WindowResult"), "WindowResult records")?,
            }
            let aggregate = aggregate()?;
            let value = c.value(first.schema, callables)?;
            let key = c.extract("key", first.schema, false, callables)?;
            if kind == "count_window" {
                let size = c.req_usize("size")?;
                let step = c.usize("step")?.unwrap_or(1);
                Box::new(CountWindowOp::new(size, step, aggregate, emit, value, key).map_err(|m| c.config(m))?)
            } else {
                let width_us = c.req_int("width_us")?;
                let slide_us = c.int("slide_us")?.unwrap_or(width_us);
                let lateness_us = c.int("lateness_us")?.unwrap_or(0);
                let time = match c.text("time")?.unwrap_or("event") {
                    "event" => TimeSource::Event,
                    "processing" => TimeSource::Processing,
                    other => return Err(c.config(format!("time must be event or processing, got {other:?}"))),
                };
                Box::new(TimeWindowOp::new(width_us, slide_us, lateness_us, aggregate, emit, time, value, key).map_err(|m| c.config(m))?)
            }
        }
        "rate_limit" => {
            need_inputs(1)?;
            same_schema(node, first, output)?;
            let max_events = c.req_usize("max_events")? as u64;
            let interval_us = c.req_usize("interval_us")? as u64;
            Box::new(RateLimit::new(max_events, interval_us).map_err(|m| c.config(m))?)
        }
        "capacitor" => {
            if inputs.is_empty() || inputs.len() > 2 {
                return Err(c.config("a capacitor takes a data input and an optional demand input"));
            }
            same_schema(node, first, output)?;
            let overflow = overflow_of(c.text("overflow")?.unwrap_or("drop_oldest")).map_err(|e| c.config(e))?;
            Box::new(Capacitor::new(c.req_usize("capacity")?, overflow).map_err(|m| c.config(m))?)
        }
        "resistor" => {
            need_inputs(1)?;
            same_schema(node, first, output)?;
            Box::new(ResistorOp::new(c.req_int("min_interval_us")?).map_err(|m| c.config(m))?)
        }
        "deadband" | "threshold" | "scale" => {
            need_inputs(1)?;
            let value = c.value(first.schema, callables)?;
            let kernel = match kind {
                "deadband" => {
                    same_schema(node, first, output)?;
                    let band = c.req_float("band")?;
                    ScalarKernel::Deadband(
                        Deadband::new(band).map_err(|_| c.config(format!("band must be 0 or more (got {band}): a negative band passes everything")))?,
                    )
                }
                "threshold" => {
                    same_schema(node, first, output)?;
                    let mode = c.text("mode")?.unwrap_or("").to_string();
                    let (low, high) = (c.float("low")?, c.float("high")?);
                    let missing = |what: &str| c.config(format!("threshold {mode} needs {what}"));
                    let threshold = match mode.as_str() {
                        "above" => Threshold::Above(low.ok_or_else(|| missing("low"))?),
                        "below" => Threshold::Below(high.ok_or_else(|| missing("high"))?),
                        "inside" => Threshold::Inside(low.ok_or_else(|| missing("low"))?, high.ok_or_else(|| missing("high"))?),
                        "outside" => Threshold::Outside(low.ok_or_else(|| missing("low"))?, high.ok_or_else(|| missing("high"))?),
                        other => return Err(c.config(format!("threshold mode must be above, below, inside or outside, got {other:?}"))),
                    };
                    ScalarKernel::Threshold(threshold.checked().map_err(|_| {
                        c.config(format!("threshold {mode} needs low <= high (got {low:?}, {high:?}): it would never pass, or always pass"))
                    })?)
                }
                _ => {
                    emits(node, output, output.schema.ty == SchemaType::Float, "float")?;
                    let (scale, offset) = (c.float("scale")?.unwrap_or(1.0), c.float("offset")?.unwrap_or(0.0));
                    ScalarKernel::Scale(
                        Scale::new(scale, offset).map_err(|_| c.config(format!("scale and offset must be finite numbers (got {scale}, {offset})")))?,
                    )
                }
            };
            Box::new(Scalar { kernel, value, refused: 0 })
        }
        "join" => {
            need_inputs(2)?;
            emits(node, output, is_record_named(output.schema, "Pair"), "Pair records")?;
            let class = match c.text("class")?.unwrap_or("") {
                "local" => JoinClass::Local,
                "lookup" => JoinClass::Lookup,
                "broadcast_mirror" => JoinClass::BroadcastMirror,
                "repartition" => JoinClass::Repartition,
                other => return Err(c.config(format!("join class must be local, lookup, broadcast_mirror or repartition, got {other:?}"))),
            };
            let capacity = c.usize("capacity")?.unwrap_or(1024);
            let partitions = c.usize("partitions")?.unwrap_or(4);
            if capacity == 0 || partitions == 0 {
                return Err(c.config(format!("a join needs capacity >= 1 and partitions >= 1 (got capacity {capacity}, partitions {partitions})")));
            }
            let within_us = c.int("within_us")?;
            let window = JoinWindow::new(within_us)
                .map_err(|_| c.config(format!("within_us must not be negative (got {}): the join would never pair", within_us.unwrap_or(0))))?;
            let spec = JoinSpec {
                class,
                left_key: c.extract("left_key", inputs[0].schema, false, callables)?,
                right_key: c.extract("right_key", inputs[1].schema, false, callables)?,
                window,
                capacity,
                partitions,
            };
            Box::new(Join::plan(spec, node).map_err(GraphError::JoinRejected)?)
        }
        "repair" => {
            need_inputs(1)?;
            same_schema(node, first, output)?;
            let proof = c.text("proof")?.unwrap_or("");
            Box::new(Repair::new(c.taints("clears")?, c.taints("adds")?, proof).map_err(|m| c.config(m))?)
        }
        "resequence" => {
            need_inputs(1)?;
            same_schema(node, first, output)?;
            Box::new(Resequence::new(c.req_int("delay_us")?, c.usize("capacity")?.unwrap_or(1024)).map_err(|m| c.config(m))?)
        }
        "open_payload" => {
            need_inputs(1)?;
            emits(node, output, output.schema.ty == SchemaType::Bytes, "bytes")?;
            Box::new(OpenPayload::new())
        }
        "write_binding" => {
            need_inputs(3)?;
            same_schema(node, &inputs[0], &outputs[0])?;
            same_schema(node, &inputs[1], &outputs[1])?;
            if inputs[0].schema.hash != inputs[1].schema.hash {
                return Err(GraphError::SchemaMismatch(format!("node {node}: request and reported routes must carry the same schema")));
            }
            let idempotency = match c.text("idempotency")?.unwrap_or("unknown") {
                "absolute_value" => Idempotency::AbsoluteValue,
                "request_id" => Idempotency::RequestId,
                "unknown" => Idempotency::Unknown,
                other => return Err(c.config(format!("idempotency must be absolute_value, request_id or unknown, got {other:?}"))),
            };
            let retry_max = u32::try_from(c.usize("retry_max")?.unwrap_or(0)).map_err(|_| c.config("retry_max is too large"))?;
            Box::new(WriteBinding::new(retry_max, c.int("retry_interval_us")?.unwrap_or(0), idempotency).map_err(|m| c.config(m))?)
        }
        "sample" => {
            need_inputs(1)?;
            same_schema(node, first, output)?;
            Box::new(super::ops::Sample::new(c.req_int("period_us")?).map_err(|m| c.config(m))?)
        }
        "actuator" => {
            need_inputs(1)?;
            same_schema(node, first, &outputs[0])?;
            same_schema(node, first, &outputs[1])?;
            Box::new(super::ops::Actuator::new(c.int("apply_us")?.unwrap_or(0)).map_err(|m| c.config(m))?)
        }
        "materialized_view" => {
            need_inputs(1)?;
            same_schema(node, first, output)?;
            let key = match c.extract("key", first.schema, false, callables)? {
                Some(super::ops::Extract::Field { index, name }) => (index, name),
                _ => return Err(c.config("parameter key (the field naming a record's key) is required")),
            };
            if let SchemaType::Record(r) = &first.schema.ty {
                if matches!(r.fields[key.0].1, SchemaType::Float | SchemaType::List(_) | SchemaType::Record(_)) {
                    return Err(c.config(format!("key field {} must be an int, text, bytes or bool field", key.1)));
                }
            }
            let word = c.text("sync")?.unwrap_or("full");
            let sync = crate::store::Sync::from_word(word).ok_or_else(|| c.config(format!("sync must be full or normal, got {word:?}")))?;
            let snapshot_every = c.usize("snapshot_every")?.unwrap_or(super::view::SNAPSHOT_EVERY_DEFAULT as usize) as u64;
            if snapshot_every == 0 {
                return Err(c.config("snapshot_every must be at least 1"));
            }
            let store = c.text("store")?.unwrap_or(node).to_string();
            crate::store::error::check_name("store", &store).map_err(|e| c.config(e.message()))?;
            let dir = store_dir.ok_or_else(|| super::view::needs_store_dir(node, kind))?;
            let config = super::view::ViewConfig { key, store, snapshot_every, sync };
            Box::new(super::view::MaterializedView::open(node, config, first.schema, dir)?)
        }
        "durable_queue" => {
            if inputs.len() < 2 || inputs.len() > 3 {
                return Err(c.config("a durable queue takes ingress, acks and an optional nacks input"));
            }
            for port in &inputs[1..] {
                if port.schema.ty != SchemaType::Int {
                    return Err(GraphError::SchemaMismatch(format!("node {node}: acks and nacks carry int ids, but {} carries {}", port.route, port.schema.label())));
                }
            }
            for out in outputs {
                let ok = matches!(&out.schema.ty, SchemaType::Record(r) if r.name == "Delivery" && r.fields.len() == 3
                    && r.fields[0] == ("id".into(), SchemaType::Int) && r.fields[1] == ("attempt".into(), SchemaType::Int)
                    && r.fields[2].0 == "body" && r.fields[2].1 == first.schema.ty);
                emits(node, out, ok, &format!("Delivery records (id, attempt, body: {})", first.schema.label()))?;
            }
            let dedup_key = match c.text("dedup_key")? {
                None => None,
                Some(field) => match c.extract("dedup_key", first.schema, false, callables)? {
                    Some(super::ops::Extract::Field { index, .. }) => Some((index, field.to_string())),
                    _ => return Err(c.config("dedup_key must name a field of the message record")),
                },
            };
            let sync = c.text("sync")?.unwrap_or("full").to_string();
            let cfg = super::durable_queue::QueueConfig {
                capacity: c.req_usize("capacity")?,
                overflow: overflow_of(c.text("overflow")?.unwrap_or("reject")).map_err(|e| c.config(e))?,
                visibility_timeout_us: c.int("visibility_timeout_us")?.unwrap_or(30_000_000),
                retry_max: u32::try_from(c.usize("retry_max")?.unwrap_or(3)).map_err(|_| c.config("retry_max is too large"))?,
                dedup_window: c.usize("dedup_window")?.unwrap_or(if dedup_key.is_some() { c.usize("capacity")?.unwrap_or(0) } else { 0 }),
                dedup_key,
                inflight_max: c.usize("inflight_max")?.unwrap_or(64),
                commit_every: c.usize("commit_every")?.unwrap_or(1),
                sync,
            };
            cfg.check().map_err(|m| c.config(m))?;
            let store_name = c.text("store")?.unwrap_or(node).to_string();
            let store = super::durable_queue::open_store(store_dir, node, &store_name, &cfg.sync)?;
            Box::new(super::durable_queue::DurableQueue::open(cfg, store, first.schema.ty.clone()).map_err(|m| c.config(m))?)
        }
        other => return Err(c.config(format!("unknown operator kind {other:?}; known kinds: {}", KINDS.join(", ")))),
    })
}
