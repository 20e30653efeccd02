//! The graph binding: `NativeGraph`, `Producer`, `Envelope`, `EnvelopeId`, `Subscription`,
//! `Counter` and `PublishReceipt`. The typed Python API in `manyfold.graph` builds on these.
//!
//! Locking: the graph lives in a [`SharedGraph`]. A call takes the lock (releasing the GIL
//! while it waits, so a real-time loop running Python callbacks can finish), marks the thread
//! as dispatching this graph, and runs. Python code running inside the graph (subscribers,
//! map functions) may publish to the same graph: those publishes are queued and run, in order,
//! right after the current dispatch. Other calls into the same graph from inside it are
//! refused with a clear error instead of deadlocking.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard, RwLock};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyTuple};

use manyfold_core::envelope::{EnvelopeId, PayloadRef, ProducerRef, RouteIdx};

use crate::graph::AuditKind;
use manyfold_core::taint::{Taint, TaintSet};

use super::convert::{int_arg, intern, repr, schema_type, time_arg, to_py, to_value};
use super::errors::{from_graph, graph_error};
use super::route::{PyRoute, RouteArg};
use super::snapshots::{self, EdgeStats, GraphDescription, MailboxStats, NodeStats, PayloadDemandStats, RouteStats, SchedulerStats};
use crate::envelope::EnvelopeRef;
use crate::graph::factory::{self, Callables, ParamMap, ParamValue, PortSpec};
use crate::graph::ops::{PredicateFn, ValueFn};
use crate::graph::{
    CountingSubscriber, EdgePolicy, Graph, GraphError, Guard, MailboxSpec, NodeIdx, OpFailure, ProducerIdx,
    PublishOptions, RouteOptions, RouteProducer, Subscriber, SubscriptionIdx, Target, GATED_MAX_DEFAULT,
    RUN_STEPS_MAX_DEFAULT,
};
use crate::route::Route;
use crate::schema::{Schema, SchemaType};
use crate::shared::SharedGraph;
use crate::value::Value;

/// The most queued re-entrant publishes run after one dispatch; a callback loop that keeps
/// publishing into its own graph beyond this is reported instead of spinning forever.
const DEFERRED_RUN_MAX: usize = 1_000_000;

/// The most publishes queued from inside one dispatch; one more is refused with
/// `RejectedError` (raised in the callback that made it).
const DEFERRED_MAX: usize = 65_536;

thread_local! {
    /// Graphs (by address) this thread is dispatching right now.
    static DISPATCHING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn is_dispatching(graph: usize) -> bool {
    DISPATCHING.with(|d| d.borrow().contains(&graph))
}

struct DispatchMark(usize);

impl DispatchMark {
    fn new(graph: usize) -> DispatchMark {
        DISPATCHING.with(|d| d.borrow_mut().push(graph));
        DispatchMark(graph)
    }
}

impl Drop for DispatchMark {
    fn drop(&mut self) {
        DISPATCHING.with(|d| {
            let mut d = d.borrow_mut();
            if let Some(pos) = d.iter().rposition(|g| *g == self.0) {
                d.remove(pos);
            }
        });
    }
}

pub(crate) struct RouteEntry {
    pub idx: RouteIdx,
    pub schema: Arc<Schema>,
    pub py_route: Py<PyRoute>,
}

/// Work queued from inside a dispatch, run right after it: a publish, or the audit record of a
/// publish refused before it reached the graph.
enum Deferred {
    Publish { producer: ProducerIdx, route: RouteIdx, value: Value, options: PublishOptions },
    Refused { producer: ProducerIdx, route: RouteIdx, reason: String },
}

#[derive(Default)]
struct Names {
    producers: Vec<String>,
    nodes: Vec<String>,
}

pub(crate) struct Inner {
    shared: SharedGraph,
    after_dispatch: Mutex<Option<Py<PyAny>>>,
    after_wanted: std::sync::atomic::AtomicBool,
    names: RwLock<Names>,
    routes: RwLock<HashMap<Route, Arc<RouteEntry>>>,
    by_index: RwLock<Vec<Arc<RouteEntry>>>,
    deferred: Mutex<VecDeque<Deferred>>,
}

impl Inner {
    fn key(&self) -> usize {
        self as *const Inner as usize
    }

    fn entry(&self, py: Python<'_>, route: &PyRoute) -> PyResult<Arc<RouteEntry>> {
        self.routes.read().get(&route.inner).cloned().ok_or_else(|| {
            graph_error(
                py,
                "route_unknown",
                &format!("route {} is not declared in this graph; declare it with graph.route(route, schema)", route.inner),
            )
        })
    }

    fn entry_at(&self, idx: RouteIdx) -> Option<Arc<RouteEntry>> {
        self.by_index.read().get(idx.0 as usize).cloned()
    }

    /// Locks the graph for a call from Python. Refuses calls made from code running inside
    /// this graph's dispatch (they would deadlock).
    fn lock(&self, py: Python<'_>, what: &str) -> PyResult<MutexGuard<'_, Graph>> {
        if is_dispatching(self.key()) {
            return Err(graph_error(
                py,
                "clock_mode",
                &format!(
                    "{what} cannot be called from a subscriber or operator running inside the same graph; \
                     use the envelope passed to you, or do it after the publish returns"
                ),
            ));
        }
        Ok(match self.shared.try_lock() {
            Some(guard) => guard,
            None => py.detach(|| self.shared.lock()),
        })
    }

    /// A publish by `producer` on `route` refused before it reached the graph (a value or an
    /// argument that does not convert): records it in the audit, then returns the error of
    /// `kind` naming the route.
    fn refuse(&self, py: Python<'_>, producer: ProducerIdx, entry: &RouteEntry, kind: &str, message: String) -> PyErr {
        let route = entry.idx;
        if is_dispatching(self.key()) {
            self.deferred.lock().push_back(Deferred::Refused { producer, route, reason: message.clone() });
        } else if let Err(e) = self.dispatch(py, "publish", |g| {
            g.note_refused(producer, route, message.clone());
            Ok(())
        }) {
            return e;
        }
        graph_error(py, kind, &message)
    }

    /// Runs queued re-entrant publishes, in order, until none are left.
    fn run_deferred(&self, graph: &mut Graph) {
        for _ in 0..DEFERRED_RUN_MAX {
            let Some(item) = self.deferred.lock().pop_front() else { return };
            match item {
                Deferred::Publish { producer, route, value, options } => {
                    if let Err(e) = graph.publish(producer, route, value, &options) {
                        graph.note_failure("queued publish", format!("a publish queued from inside the graph failed: {e}"));
                    }
                }
                Deferred::Refused { producer, route, reason } => graph.note_refused(producer, route, reason),
            }
        }
        let left = self.deferred.lock().len();
        if left > 0 {
            self.deferred.lock().clear();
            graph.note_failure("queued publish", format!("callbacks kept publishing into their own graph; {left} queued publishes were dropped"));
        }
    }

    /// Runs `f` on the locked graph as a dispatch, then queued publishes, then raises the first
    /// failure of user code, if any.
    fn dispatch<R>(&self, py: Python<'_>, what: &str, f: impl FnOnce(&mut Graph) -> Result<R, GraphError>) -> PyResult<R> {
        let mut graph = self.lock(py, what)?;
        let result = {
            let _mark = DispatchMark::new(self.key());
            let r = f(&mut graph);
            self.run_deferred(&mut graph);
            r
        };
        let (failures, _more) = graph.take_failures();
        drop(graph);
        self.shared.notify();
        if let Some(first) = failures.into_iter().next() {
            return Err(operator_error(py, first));
        }
        if self.after_wanted.swap(false, Ordering::AcqRel) && !is_dispatching(self.key()) {
            let hook = self.after_dispatch.lock().as_ref().map(|h| h.clone_ref(py));
            if let Some(hook) = hook {
                hook.call0(py)?;
            }
        }
        result.map_err(|e| from_graph(py, &e))
    }
}

/// The node's threads reach the graph through here: the graph's lock, marked as a dispatch
/// of this graph (publishes made by Python code running inside are queued and run after),
/// then the queued publishes. Failures stay in the graph for Python to take.
impl crate::node::GraphHost for Inner {
    fn with_graph(&self, f: &mut dyn FnMut(&mut Graph)) {
        // One Python thread state for the whole batch. A node's threads have none of their
        // own, so each Python subscriber or operator would otherwise attach per event, and
        // CPython builds and frees a thread state every time: 85% of a receiving link
        // thread's time, measured (docs/performance.md, edge links). The graph lock is taken
        // with the GIL released, as every binding call takes it, so neither waits on the other.
        Python::attach(|py| {
            let graph = py.detach(|| self.shared.lock());
            self.run_locked(graph, f);
        });
    }

    fn try_with_graph(&self, wait: std::time::Duration, f: &mut dyn FnMut(&mut Graph)) -> bool {
        // As with_graph: one thread state per batch, the lock awaited without the GIL.
        Python::attach(|py| {
            let Some(graph) = py.detach(|| self.shared.try_lock_for(wait)) else { return false };
            self.run_locked(graph, f);
            true
        })
    }
}

impl Inner {
    fn run_locked(&self, mut graph: MutexGuard<'_, Graph>, f: &mut dyn FnMut(&mut Graph)) {
        {
            let _mark = DispatchMark::new(self.key());
            f(&mut graph);
            self.run_deferred(&mut graph);
        }
        drop(graph);
        self.shared.notify();
    }
}

impl NativeGraph {
    /// The graph as a runtime node serves it (`_native.Node`).
    pub(crate) fn host(&self) -> Arc<dyn crate::node::GraphHost> {
        self.inner.clone()
    }
}

fn operator_error(py: Python<'_>, failure: crate::graph::Failure) -> PyErr {
    let message = format!("{} failed: {}", failure.origin, failure.message);
    let err = match py
        .import("manyfold.graph.errors")
        .and_then(|m| m.getattr("OperatorError"))
        .and_then(|cls| cls.call1((message.clone(), failure.origin.clone())))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => return e,
    };
    if let Some(cause) = failure.cause {
        if let Ok(original) = cause.downcast::<PyErr>() {
            err.set_cause(py, Some(*original));
        }
    }
    err
}

fn py_failure(err: PyErr) -> OpFailure {
    OpFailure { message: err.to_string(), cause: Some(Box::new(err)) }
}

// ---------------------------------------------------------------------- envelope objects

/// The identity of an envelope: its route and sequence number, printed `route@seq`.
#[pyclass(module = "manyfold.graph", name = "EnvelopeId", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyEnvelopeId {
    route: Route,
    seq: u64,
}

#[pymethods]
impl PyEnvelopeId {
    #[new]
    fn new(route: RouteArg<'_>, seq: u64) -> PyEnvelopeId {
        PyEnvelopeId { route: route.inner.clone(), seq }
    }
    /// The route.
    #[getter]
    fn route(&self) -> PyRoute {
        PyRoute::from(self.route.clone())
    }
    /// Per-route sequence number (from 1).
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }
    fn __str__(&self) -> String {
        format!("{}@{}", self.route, self.seq)
    }
    fn __repr__(&self) -> String {
        format!("EnvelopeId('{}@{}')", self.route, self.seq)
    }
}

fn envelope_id(inner: &Inner, id: EnvelopeId) -> PyEnvelopeId {
    let route = inner.entry_at(id.route).map(|e| Python::attach(|py| e.py_route.borrow(py).inner.clone()));
    PyEnvelopeId { route: route.unwrap_or_else(|| "debug.internal.unknown.unknown.unknown.event.v1".parse().unwrap_or_else(|_| unreachable!())), seq: id.seq }
}

/// One event: closed metadata (identity, producer, times, epoch, taints, parents, payload
/// reference) and its value.
#[pyclass(module = "manyfold.graph", name = "Envelope", frozen)]
pub struct PyEnvelope {
    env: EnvelopeRef,
    entry: Arc<RouteEntry>,
    inner: Arc<Inner>,
}

impl PyEnvelope {
    fn new(env: EnvelopeRef, entry: Arc<RouteEntry>, inner: Arc<Inner>) -> PyEnvelope {
        PyEnvelope { env, entry, inner }
    }
}

#[pymethods]
impl PyEnvelope {
    /// The route it was published on.
    #[getter]
    fn route(&self, py: Python<'_>) -> Py<PyRoute> {
        self.entry.py_route.clone_ref(py)
    }
    /// Per-route sequence number.
    #[getter]
    fn seq(&self) -> u64 {
        self.env.meta.id.seq
    }
    /// Its identity.
    #[getter]
    fn id(&self, py: Python<'_>) -> PyEnvelopeId {
        PyEnvelopeId { route: self.entry.py_route.borrow(py).inner.clone(), seq: self.env.meta.id.seq }
    }
    /// The payload, as the route's schema type (a dataclass instance for records).
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.env.value, &self.entry.schema.ty)
    }
    /// Who produced it: `("producer", name)`, `("node", name)` or `("runtime", "")`.
    #[getter]
    fn producer(&self) -> (&'static str, String) {
        let names = self.inner.names.read();
        match self.env.meta.producer {
            ProducerRef::External(p) => ("producer", names.producers.get(p as usize).cloned().unwrap_or_default()),
            ProducerRef::Node(n) => ("node", names.nodes.get(n as usize).cloned().unwrap_or_default()),
            ProducerRef::Runtime => ("runtime", String::new()),
        }
    }
    /// When the event happened, in microseconds of its clock domain.
    #[getter]
    fn event_time_us(&self) -> i64 {
        self.env.meta.event_time.time_us
    }
    /// The clock domain of the event time (0 ingest, 1 device, 2 control epoch).
    #[getter]
    fn clock_domain(&self) -> u16 {
        self.env.meta.event_time.domain.0
    }
    /// When the runtime took it in, in microseconds of the graph clock.
    #[getter]
    fn ingest_time_us(&self) -> i64 {
        self.env.meta.ingest_time_us
    }
    /// The control epoch it was produced in.
    #[getter]
    fn control_epoch(&self) -> Option<u64> {
        self.env.meta.control_epoch
    }
    /// Taints as a bitset (see `manyfold.graph.Taint`).
    #[getter]
    fn taint_bits(&self) -> u32 {
        self.env.meta.taints.0
    }
    /// Names of its taints, in bit order.
    #[getter]
    fn taint_names(&self) -> Vec<&'static str> {
        self.env.meta.taints.iter().map(|t| t.name()).collect()
    }
    /// The envelopes it was derived from.
    #[getter]
    fn parents(&self) -> Vec<PyEnvelopeId> {
        self.env.meta.parents.iter().map(|id| envelope_id(&self.inner, *id)).collect()
    }
    /// Parents not listed (over the lineage bound).
    #[getter]
    fn parents_elided(&self) -> u32 {
        self.env.parents_elided
    }
    /// `("inline", length)` or `("lazy", length, digest_hex)`.
    #[getter]
    fn payload_ref<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        match self.env.meta.payload {
            PayloadRef::Inline { len } => PyTuple::new(py, [("inline").into_pyobject(py)?.into_any(), len.into_pyobject(py)?.into_any()]),
            PayloadRef::Lazy { len, digest } => {
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                PyTuple::new(py, [("lazy").into_pyobject(py)?.into_any(), len.into_pyobject(py)?.into_any(), hex.into_pyobject(py)?.into_any()])
            }
        }
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        let value = self.value(py).and_then(|v| v.repr().map(|r| r.to_string())).unwrap_or_else(|_| "?".into());
        format!("Envelope({}@{}, value={value})", self.entry.py_route.borrow(py).inner, self.env.meta.id.seq)
    }
}

// ---------------------------------------------------------------------- producers

/// What a publish did: the new envelope's id, and what it cost downstream.
#[pyclass(module = "manyfold.graph", name = "PublishReceipt", frozen)]
pub struct PyReceipt {
    /// The new envelope's sequence number (0 when deferred).
    #[pyo3(get)]
    seq: u64,
    /// Items this publish caused to be dropped in mailboxes downstream (0: nothing lost).
    #[pyo3(get)]
    dropped: u64,
    /// Items refused by rejecting mailboxes downstream.
    #[pyo3(get)]
    rejected: u64,
    /// True when the publish was made from inside the graph and runs after the current dispatch.
    #[pyo3(get)]
    deferred: bool,
}

#[pymethods]
impl PyReceipt {
    /// True when nothing was dropped or refused downstream.
    #[getter]
    fn complete(&self) -> bool {
        self.dropped == 0 && self.rejected == 0
    }
    fn __repr__(&self) -> String {
        format!("PublishReceipt(seq={}, dropped={}, rejected={}, deferred={})", self.seq, self.dropped, self.rejected, self.deferred)
    }
}

/// A named producer: publishes on routes it owns (the route's owner segment is its name) or
/// was granted.
#[pyclass(module = "manyfold.graph", name = "Producer", frozen)]
pub struct PyProducer {
    inner: Arc<Inner>,
    pub(super) index: ProducerIdx,
    /// The producer's name.
    #[pyo3(get)]
    name: String,
}

fn publish_options(event_time_us: Option<i64>, clock_domain: Option<u16>, taint_bits: u32) -> PublishOptions {
    PublishOptions {
        event_time_us,
        clock_domain: clock_domain.map(manyfold_core::envelope::ClockDomain),
        taints: TaintSet(taint_bits),
    }
}

#[pymethods]
impl PyProducer {
    /// Publishes `value` on `route`. Raises BackpressureError when a blocking mailbox
    /// downstream is full; with `timeout_s`, waits up to that long for room first.
    #[pyo3(signature = (route, value, *, event_time_us = None, clock_domain = None, taint_bits = None, timeout_s = None))]
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        py: Python<'_>,
        route: RouteArg<'_>,
        value: &Bound<'_, PyAny>,
        event_time_us: Option<Bound<'_, PyAny>>,
        clock_domain: Option<Bound<'_, PyAny>>,
        taint_bits: Option<Bound<'_, PyAny>>,
        timeout_s: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyReceipt> {
        let entry = self.inner.entry(py, &route)?;
        let value = to_value(value, &entry.schema.ty, &entry.schema.name)
            .map_err(|m| self.inner.refuse(py, self.index, &entry, "schema_check", format!("cannot publish on {}: {m}", route.inner)))?;
        let event_time_us = self.event_time(py, &entry, event_time_us.as_ref())?;
        let bad = |what: &str, wanted: &str, got: &Bound<'_, PyAny>| {
            let got = repr(got);
            self.inner.refuse(py, self.index, &entry, "operator_config", format!("cannot publish on {}: {what} must be {wanted}, got {got}", route.inner))
        };
        let clock_domain = match clock_domain.filter(|v| !v.is_none()) {
            Some(v) => Some(int_arg::<u16>(&v).map_err(|_| bad("clock_domain", "an integer from 0 to 65535", &v))?),
            None => None,
        };
        let taint_bits = match taint_bits.filter(|v| !v.is_none()) {
            Some(v) => int_arg::<u32>(&v).ok().filter(|b| b & !TaintSet::ALL.0 == 0).ok_or_else(|| bad("taint_bits", "a set of taint bits (manyfold.graph.Taint)", &v))?,
            None => 0,
        };
        let timeout_s = match timeout_s.filter(|v| !v.is_none()) {
            Some(v) => Some(
                v.extract::<f64>().ok().filter(|t| *t >= 0.0 && *t <= 1e9).filter(|_| !v.is_instance_of::<pyo3::types::PyBool>()).ok_or_else(|| bad("timeout_s", "a number of seconds, 0 or more", &v))?,
            ),
            None => None,
        };
        let options = publish_options(event_time_us, clock_domain, taint_bits);
        if is_dispatching(self.inner.key()) {
            let mut deferred = self.inner.deferred.lock();
            if deferred.len() >= DEFERRED_MAX {
                return Err(graph_error(
                    py,
                    "rejected",
                    &format!(
                        "the publish on {} from inside the graph was refused: {DEFERRED_MAX} publishes made inside this dispatch already wait to run after it",
                        route.inner
                    ),
                ));
            }
            deferred.push_back(Deferred::Publish { producer: self.index, route: entry.idx, value, options });
            return Ok(PyReceipt { seq: 0, dropped: 0, rejected: 0, deferred: true });
        }
        let deadline = timeout_s.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        let (producer, idx) = (self.index, entry.idx);
        loop {
            let mut value_slot = Some(value.clone());
            let attempt = self.inner.dispatch(py, "publish", |g| {
                g.publish(producer, idx, value_slot.take().unwrap_or(Value::Null), &options)
            });
            match (attempt, deadline) {
                (Err(e), Some(deadline)) if e.is_instance_of::<pyo3::exceptions::PyException>(py) && is_backpressure(py, &e) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    let inner = self.inner.clone();
                    py.detach(move || {
                        let mut g = inner.shared.lock();
                        inner.shared.wait_until(&mut g, deadline.min(Instant::now() + Duration::from_millis(50)));
                    });
                }
                (Err(e), _) => return Err(e),
                (Ok(r), _) => return Ok(PyReceipt { seq: r.id.seq, dropped: r.dropped, rejected: r.rejected, deferred: false }),
            }
        }
    }

    /// Publishes every value of `values` on `route` in one call; returns how many were
    /// published. `values` is any iterable (a list of floats, say) or, for float routes, a
    /// buffer of doubles (`array('d')`, a NumPy float64 array). Every value is checked first:
    /// a value of the wrong type publishes nothing. A mailbox that refuses stops the batch
    /// there; the error is raised after the values before it were published.
    fn publish_many(&self, py: Python<'_>, route: RouteArg<'_>, values: &Bound<'_, PyAny>) -> PyResult<u64> {
        let entry = self.inner.entry(py, &route)?;
        let mut converted = Vec::new();
        let doubles = if entry.schema.ty == SchemaType::Float && !values.is_instance_of::<PyList>() && !values.is_instance_of::<PyTuple>() {
            PyBuffer::<f64>::get(values).ok()
        } else {
            None
        };
        if entry.schema.ty == SchemaType::Float {
            // Floats go straight to a column of f64 (the fused batch path when the graph
            // allows it), converted by the same rules as one publish.
            let floats = match doubles {
                Some(buffer) => buffer.to_vec(py)?,
                None => self.floats(py, &route, &entry, values)?,
            };
            let (producer, idx) = (self.index, entry.idx);
            let mut error = None;
            let count = self.inner.dispatch(py, "publish_many", |g| {
                let (n, e) = g.publish_floats(producer, idx, &floats);
                error = e;
                Ok(n)
            })?;
            return match error {
                Some(e) => Err(from_graph(py, &e)),
                None => Ok(count),
            };
        }
        if let Some(buffer) = doubles {
            converted = buffer.to_vec(py)?.into_iter().map(Value::Float).collect();
        } else {
            for (i, item) in values.try_iter()?.enumerate() {
                let item = item?;
                // The path is only built for the error message.
                let value = to_value(&item, &entry.schema.ty, "").map_err(|_| {
                    let m = to_value(&item, &entry.schema.ty, &format!("{}[{i}]", entry.schema.name)).err().unwrap_or_default();
                    self.inner.refuse(py, self.index, &entry, "schema_check", format!("cannot publish on {}: {m}", route.inner))
                })?;
                converted.push(value);
            }
        }
        let (producer, idx) = (self.index, entry.idx);
        let mut error = None;
        let count = self.inner.dispatch(py, "publish_many", |g| {
            let (n, e) = g.publish_many(producer, idx, converted);
            error = e;
            Ok(n)
        })?;
        match error {
            Some(e) => Err(from_graph(py, &e)),
            None => Ok(count),
        }
    }

    /// Publishes a lazy envelope: `value` is the metadata (the route's schema), the bytes are
    /// produced by `open()` only when someone opens the payload; `length` and `sha256` (32
    /// bytes) are declared now and checked at the open.
    #[pyo3(signature = (route, value, *, length, sha256, open, event_time_us = None))]
    #[allow(clippy::too_many_arguments)]
    fn publish_lazy(
        &self,
        py: Python<'_>,
        route: RouteArg<'_>,
        value: &Bound<'_, PyAny>,
        length: u64,
        sha256: Vec<u8>,
        open: Py<PyAny>,
        event_time_us: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyReceipt> {
        let entry = self.inner.entry(py, &route)?;
        let value = to_value(value, &entry.schema.ty, &entry.schema.name)
            .map_err(|m| self.inner.refuse(py, self.index, &entry, "schema_check", format!("cannot publish on {}: {m}", route.inner)))?;
        let event_time_us = self.event_time(py, &entry, event_time_us.as_ref())?;
        let digest: [u8; 32] = sha256.try_into().map_err(|_| {
            let message = format!("cannot publish on {}: sha256 must be 32 bytes (hashlib.sha256(data).digest())", route.inner);
            self.inner.refuse(py, self.index, &entry, "operator_config", message)
        })?;
        if is_dispatching(self.inner.key()) {
            return Err(graph_error(py, "clock_mode", "publish_lazy cannot be called from inside the same graph"));
        }
        let opener: crate::graph::PayloadOpener = Box::new(move || {
            Python::attach(|py| {
                let out = open.bind(py).call0().map_err(|e| e.to_string())?;
                out.extract::<Vec<u8>>().map_err(|_| "the payload source must return bytes".to_string())
            })
        });
        let options = publish_options(event_time_us, None, 0);
        let (producer, idx) = (self.index, entry.idx);
        let mut value = Some(value);
        let mut opener = Some(opener);
        let r = self.inner.dispatch(py, "publish_lazy", |g| {
            let meta = value.take().unwrap_or(Value::Null);
            g.publish_lazy_value(producer, idx, meta, length, digest, opener.take().unwrap_or_else(|| Box::new(|| Err("gone".into()))), &options)
        })?;
        Ok(PyReceipt { seq: r.id.seq, dropped: r.dropped, rejected: r.rejected, deferred: false })
    }

    fn __repr__(&self) -> String {
        format!("Producer({:?})", self.name)
    }
}

impl PyProducer {
    /// The event time argument of a publish on `entry`'s route; a bad one is refused (audited,
    /// `TimeError` naming the route).
    fn event_time(&self, py: Python<'_>, entry: &RouteEntry, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
        time_arg(value, "event_time_us").map_err(|m| {
            let route = entry.py_route.borrow(py).inner.clone();
            self.inner.refuse(py, self.index, entry, "time_invalid", format!("cannot publish on {route}: {m}"))
        })
    }

    /// The items of `values` as floats for a float route, by the rules of one publish (floats
    /// and ints); the first that is not one is refused (audited, `SchemaError` naming it).
    fn floats(&self, py: Python<'_>, route: &RouteArg<'_>, entry: &RouteEntry, values: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
        let refuse = |i: usize, item: &Bound<'_, PyAny>| {
            let m = to_value(item, &entry.schema.ty, &format!("{}[{i}]", entry.schema.name)).err().unwrap_or_default();
            self.inner.refuse(py, self.index, entry, "schema_check", format!("cannot publish on {}: {m}", route.inner))
        };
        let one = |i: usize, item: &Bound<'_, PyAny>| -> PyResult<f64> {
            if let Ok(f) = item.cast_exact::<PyFloat>() {
                return Ok(f.value());
            }
            // The path is only built for the error message.
            match to_value(item, &entry.schema.ty, "") {
                Ok(Value::Float(x)) => Ok(x),
                _ => Err(refuse(i, item)),
            }
        };
        if let Ok(list) = values.cast::<PyList>() {
            let mut out = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                out.push(one(i, &item)?);
            }
            return Ok(out);
        }
        let mut out = Vec::new();
        for (i, item) in values.try_iter()?.enumerate() {
            out.push(one(i, &item?)?);
        }
        Ok(out)
    }
}

fn is_backpressure(py: Python<'_>, err: &PyErr) -> bool {
    err.value(py).getattr("kind").and_then(|k| k.extract::<String>()).map(|k| k == "must_wait").unwrap_or(false)
}

// ---------------------------------------------------------------------- subscriptions

struct PySubscriber {
    callback: Py<PyAny>,
    entry: Arc<RouteEntry>,
    inner: Weak<Inner>,
}

impl Subscriber for PySubscriber {
    fn deliver(&mut self, envelope: &EnvelopeRef) -> Result<(), OpFailure> {
        let Some(inner) = self.inner.upgrade() else { return Ok(()) };
        Python::attach(|py| {
            let env = PyEnvelope::new(envelope.clone(), self.entry.clone(), inner);
            self.callback.call1(py, (env,)).map(drop).map_err(py_failure)
        })
    }
}

/// A subscription: `cancel()` stops it.
#[pyclass(module = "manyfold.graph", name = "Subscription", frozen)]
pub struct PySubscription {
    inner: Arc<Inner>,
    index: SubscriptionIdx,
    /// Its name (also its edge's name).
    #[pyo3(get)]
    name: String,
}

#[pymethods]
impl PySubscription {
    /// Stops delivering to this subscription.
    fn cancel(&self, py: Python<'_>) -> PyResult<()> {
        let index = self.index;
        self.inner.dispatch(py, "cancel", |g| g.unsubscribe(index))
    }
}

/// A native subscriber that counts envelopes without calling Python.
#[pyclass(module = "manyfold.graph", name = "Counter", frozen)]
pub struct PyCounter {
    count: Arc<AtomicU64>,
    /// Its subscription name.
    #[pyo3(get)]
    name: String,
}

#[pymethods]
impl PyCounter {
    /// Envelopes counted so far.
    #[getter]
    fn value(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------- parameters

fn policy_of(py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<EdgePolicy> {
    if spec.is_none() {
        return Ok(EdgePolicy::INLINE);
    }
    let (capacity, overflow, epoch_boundary): (Option<usize>, Option<String>, bool) = spec.extract()?;
    let mailbox = match capacity {
        None => None,
        Some(capacity) => Some(MailboxSpec {
            capacity,
            overflow: factory::overflow_of(overflow.as_deref().unwrap_or("block")).map_err(|e| from_graph(py, &e))?,
        }),
    };
    Ok(EdgePolicy { mailbox, epoch_boundary })
}



/// A permissive conversion for values returned by key and value functions.
fn any_to_value(obj: &Bound<'_, PyAny>) -> Result<Value, String> {
    for ty in [SchemaType::Bool, SchemaType::Int, SchemaType::Float, SchemaType::Text, SchemaType::Bytes] {
        if let Ok(v) = to_value(obj, &ty, "result") {
            return Ok(v);
        }
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    Err(format!("a key or value function returned {}, expected a number, text, bytes, bool or None", obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()))
}

fn callable_fn(callable: Py<PyAny>, input: SchemaType, output: Option<SchemaType>) -> Box<dyn FnMut(&Value) -> Result<Value, OpFailure> + Send> {
    Box::new(move |v: &Value| {
        Python::attach(|py| {
            let arg = to_py(py, v, &input).map_err(py_failure)?;
            let out = callable.bind(py).call1((arg,)).map_err(py_failure)?;
            match &output {
                Some(ty) => to_value(&out, ty, "result").map_err(|m| OpFailure::new(format!("the function returned a value that does not fit the output route: {m}"))),
                None => any_to_value(&out).map_err(OpFailure::new),
            }
        })
    })
}

fn taint_set(py: Python<'_>, names: &[String]) -> PyResult<TaintSet> {
    let mut set = TaintSet::EMPTY;
    for name in names {
        let taint = Taint::from_name(name).ok_or_else(|| {
            let all: Vec<&str> = Taint::ALL.iter().map(|t| t.name()).collect();
            graph_error(py, "operator_config", &format!("unknown taint {name:?}; known taints: {}", all.join(", ")))
        })?;
        set = set.with(taint);
    }
    Ok(set)
}

/// The output route of a node being built: its printed name and schema.
struct OutputSpec {
    name: String,
    schema: Arc<Schema>,
}

/// The user functions passed with an operator (or a manifest load), by name.
struct PyCallables<'py> {
    map: Bound<'py, PyDict>,
}

impl Callables for PyCallables<'_> {
    fn value_fn(&mut self, name: &str, input: &SchemaType, output: Option<&SchemaType>) -> Option<ValueFn> {
        let f = self.map.get_item(name).ok().flatten()?;
        Some(callable_fn(f.unbind(), input.clone(), output.cloned()))
    }

    fn predicate(&mut self, name: &str, input: &SchemaType) -> Option<PredicateFn> {
        let f = self.map.get_item(name).ok().flatten()?.unbind();
        let input = input.clone();
        Some(Box::new(move |v: &Value| {
            Python::attach(|py| {
                let arg = to_py(py, v, &input).map_err(py_failure)?;
                f.bind(py).call1((arg,)).and_then(|r| r.is_truthy()).map_err(py_failure)
            })
        }))
    }
}

/// Converts Python parameters: None, bool, int, float, str, lists, and `{"ref": name}` for a
/// function reference.
fn param_value(py: Python<'_>, key: &str, v: &Bound<'_, PyAny>) -> PyResult<ParamValue> {
    if v.is_none() {
        return Ok(ParamValue::Null);
    }
    if let Ok(b) = v.cast::<pyo3::types::PyBool>() {
        return Ok(ParamValue::Bool(b.is_true()));
    }
    if let Ok(i) = v.extract::<i64>() {
        if v.is_instance_of::<pyo3::types::PyInt>() {
            return Ok(ParamValue::Int(i));
        }
    }
    if let Ok(f) = v.cast::<pyo3::types::PyFloat>() {
        return Ok(ParamValue::Float(f.value()));
    }
    if let Ok(t) = v.extract::<String>() {
        return Ok(ParamValue::Text(t));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        if let Some(name) = d.get_item("ref")? {
            return Ok(ParamValue::Ref(name.extract()?));
        }
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in v.try_iter()? {
            items.push(param_value(py, key, &item?)?);
        }
        return Ok(ParamValue::List(items));
    }
    Err(graph_error(py, "operator_config", &format!("parameter {key} has an unsupported type {}", v.get_type().name()?)))
}

fn param_map(py: Python<'_>, params: &Bound<'_, PyDict>) -> PyResult<ParamMap> {
    let mut map = ParamMap::new();
    for (k, v) in params.iter() {
        let key: String = k.extract()?;
        let value = param_value(py, &key, &v)?;
        // Absent and null mean the same; keeping only set parameters keeps manifests short.
        if value != ParamValue::Null {
            map.insert(key, value);
        }
    }
    Ok(map)
}

// ---------------------------------------------------------------------- the graph

/// The native local graph. Use `manyfold.graph.Graph`, which wraps it with typed methods.
#[pyclass(module = "manyfold._native", name = "NativeGraph", frozen)]
pub struct NativeGraph {
    inner: Arc<Inner>,
}

fn route_repr(py: Python<'_>, inner: &Inner, idx: RouteIdx) -> Py<PyAny> {
    match inner.entry_at(idx) {
        Some(e) => e.py_route.clone_ref(py).into_any(),
        None => py.None(),
    }
}

/// What every route reports, read under the graph's lock.
fn route_parts(g: &Graph) -> Vec<snapshots::RouteParts> {
    g.routes()
        .map(|(idx, route, schema)| snapshots::RouteParts {
            idx,
            schema_hash: schema.hash.hex(),
            producer_node: match g.route_producer(idx) {
                Ok(RouteProducer::Node(n)) => Some(g.node_name(n).to_string()),
                _ => None,
            },
            owner: route.owner().to_string(),
            envelopes: g.route_seq(idx).unwrap_or(0),
            taint_bits: g.route_taints(idx).map(|t| t.0).unwrap_or(0),
            options: g.route_options(idx).unwrap_or_default(),
            writers: g.route_writers(idx),
        })
        .collect()
}

#[pymethods]
impl NativeGraph {
    #[new]
    #[pyo3(signature = (realtime = false, gated_max = GATED_MAX_DEFAULT))]
    fn new(py: Python<'_>, realtime: bool, gated_max: usize) -> PyResult<NativeGraph> {
        let mut graph = if realtime { Graph::new_wall() } else { Graph::new_virtual() };
        graph.set_gated_max(gated_max).map_err(|e| from_graph(py, &e))?;
        Ok(NativeGraph {
            inner: Arc::new(Inner {
                shared: SharedGraph::new(graph),
                after_dispatch: Mutex::new(None),
                after_wanted: std::sync::atomic::AtomicBool::new(false),
                names: RwLock::new(Names::default()),
                routes: RwLock::new(HashMap::new()),
                by_index: RwLock::new(Vec::new()),
                deferred: Mutex::new(VecDeque::new()),
            }),
        })
    }

    /// Turns the fused batch path on (the default) or off (benchmarks and tests compare the
    /// two; results are the same either way).
    fn _set_fusion(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        self.inner.lock(py, "_set_fusion")?.set_fusion(on);
        Ok(())
    }

    /// (batches that took the fused path, batches that took the per-event loop).
    fn _fusion_stats(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        Ok(self.inner.lock(py, "_fusion_stats")?.fusion_stats())
    }

    /// How many guarded publishes may wait at once.
    #[getter]
    fn gated_max(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.inner.lock(py, "gated_max")?.gated_max())
    }

    /// Declares `route` with a schema (name, version, descriptor); returns its index. Without
    /// `retain`, the route retains `RETAIN_DEFAULT` envelopes, or `history` if that is more.
    #[pyo3(signature = (route, schema_name, schema_version, descriptor, history = RouteOptions::default().history, retain = None, audit = false, clock_domain = 0))]
    #[allow(clippy::too_many_arguments)]
    fn declare_route(
        &self,
        py: Python<'_>,
        route: Bound<'_, PyRoute>,
        schema_name: &str,
        schema_version: u32,
        descriptor: &Bound<'_, PyAny>,
        history: usize,
        retain: Option<usize>,
        audit: bool,
        clock_domain: u16,
    ) -> PyResult<u32> {
        let ty = schema_type(descriptor)?;
        let schema = Arc::new(Schema::new(schema_name, schema_version, ty));
        let key = route.borrow().inner.clone();
        let mut options = RouteOptions::with_history(history);
        options.retain = retain.unwrap_or(options.retain);
        options.audit = audit;
        options.clock_domain = manyfold_core::envelope::ClockDomain(clock_domain);
        let idx = self.inner.dispatch(py, "route", |g| g.declare_route(key.clone(), schema.clone(), options))?;
        let mut by_index = self.inner.by_index.write();
        if by_index.len() == idx.0 as usize {
            let entry = Arc::new(RouteEntry { idx, schema, py_route: route.unbind() });
            by_index.push(entry.clone());
            self.inner.routes.write().insert(key, entry);
        }
        Ok(idx.0)
    }

    /// The schema hash (hex) of a declared route.
    fn schema_hash_of(&self, py: Python<'_>, route: RouteArg<'_>) -> PyResult<String> {
        Ok(self.inner.entry(py, &route)?.schema.hash.hex())
    }

    /// A producer called `name` (the same object state for the same name).
    fn producer(&self, py: Python<'_>, name: &str) -> PyResult<PyProducer> {
        let index = self.inner.dispatch(py, "producer", |g| g.producer(name))?;
        let mut names = self.inner.names.write();
        if names.producers.len() == index.0 as usize {
            names.producers.push(name.into());
        }
        drop(names);
        Ok(PyProducer { inner: self.inner.clone(), index, name: name.into() })
    }

    /// Lets `producer` publish on `route` although it does not own it.
    fn grant(&self, py: Python<'_>, producer: &PyProducer, route: RouteArg<'_>) -> PyResult<()> {
        let entry = self.inner.entry(py, &route)?;
        let index = producer.index;
        self.inner.dispatch(py, "grant", |g| g.grant(index, entry.idx))
    }

    /// Calls `callback(envelope)` for each envelope of `route`.
    #[pyo3(signature = (route, callback, name, policy = None))]
    fn subscribe(&self, py: Python<'_>, route: RouteArg<'_>, callback: Py<PyAny>, name: &str, policy: Option<Bound<'_, PyAny>>) -> PyResult<PySubscription> {
        let entry = self.inner.entry(py, &route)?;
        let policy = match policy {
            Some(p) => policy_of(py, &p)?,
            None => EdgePolicy::INLINE,
        };
        let sink = Box::new(PySubscriber { callback, entry: entry.clone(), inner: Arc::downgrade(&self.inner) });
        let index = self.inner.dispatch(py, "subscribe", |g| g.subscribe(name, entry.idx, sink, policy))?;
        Ok(PySubscription { inner: self.inner.clone(), index, name: name.into() })
    }

    /// A native counter of the envelopes on `route`.
    fn count(&self, py: Python<'_>, route: RouteArg<'_>, name: &str) -> PyResult<PyCounter> {
        let entry = self.inner.entry(py, &route)?;
        let counter = CountingSubscriber::default();
        let count = counter.count.clone();
        self.inner.dispatch(py, "count", |g| g.subscribe(name, entry.idx, Box::new(counter), EdgePolicy::INLINE))?;
        Ok(PyCounter { count, name: name.into() })
    }

    /// Adds an operator node. `outputs` lists `(route, schema)` per output port; `schema` is
    /// `(name, version, descriptor)` for routes not declared yet (declared only after the
    /// operator's configuration was accepted) or None. Function parameters are `{"ref": name}`
    /// and `callables` maps each name to the Python function.
    #[pyo3(signature = (kind, name, inputs, outputs, params, callables = None))]
    fn add_operator(
        &self,
        py: Python<'_>,
        kind: &str,
        name: &str,
        inputs: &Bound<'_, PyList>,
        outputs: &Bound<'_, PyList>,
        params: Bound<'_, PyDict>,
        callables: Option<Bound<'_, PyDict>>,
    ) -> PyResult<u32> {
        let mut input_entries = Vec::new();
        let mut edges = Vec::new();
        for item in inputs.iter() {
            let (route, policy): (Bound<'_, PyRoute>, Bound<'_, PyAny>) = item.extract()?;
            let entry = self.inner.entry(py, &route.borrow())?;
            edges.push((entry.idx, policy_of(py, &policy)?));
            input_entries.push(entry);
        }
        let mut specs = Vec::new();
        let mut plan = Vec::new();
        for item in outputs.iter() {
            let (route, schema): (Bound<'_, PyRoute>, Option<(String, u32, Bound<'_, PyAny>)>) = item.extract()?;
            let key = route.borrow().inner.clone();
            let existing = self.inner.routes.read().get(&key).cloned();
            let spec = match (&existing, schema) {
                (Some(entry), _) => OutputSpec { name: key.to_string(), schema: entry.schema.clone() },
                (None, Some((schema_name, version, descriptor))) => {
                    OutputSpec { name: key.to_string(), schema: Arc::new(Schema::new(&schema_name, version, schema_type(&descriptor)?)) }
                }
                (None, None) => return Err(graph_error(py, "route_unknown", &format!("output route {key} is not declared"))),
            };
            plan.push((key, existing, route));
            specs.push(spec);
        }
        if specs.is_empty() {
            return Err(graph_error(py, "operator_config", &format!("node {name} needs an output route")));
        }
        let param_map = param_map(py, &params)?;
        let input_ports: Vec<PortSpec<'_>> = input_entries
            .iter()
            .map(|e| PortSpec { route: e.py_route.borrow(py).inner.to_string(), schema: &e.schema })
            .collect();
        let output_ports: Vec<PortSpec<'_>> = specs.iter().map(|o| PortSpec { route: o.name.clone(), schema: &o.schema }).collect();
        let mut registry = PyCallables { map: callables.unwrap_or_else(|| PyDict::new(py)) };
        let store_dir = self.inner.dispatch(py, "add operator", |g| Ok(g.store_dir().cloned()))?;
        let op = factory::build(kind, name, &param_map, &input_ports, &output_ports, &mut registry, store_dir.as_ref()).map_err(|e| from_graph(py, &e))?;
        let schemas: Vec<Arc<Schema>> = specs.iter().map(|s| s.schema.clone()).collect();
        let (indices, node) = self.inner.dispatch(py, "add operator", |g| {
            // New output routes are declared for the node alone: when the graph refuses the
            // node, they are taken back, so Python and the graph keep the same routes.
            let declared = g.route_count();
            let mut indices = Vec::new();
            let build = |g: &mut Graph| {
                for ((key, existing, _), schema) in plan.iter().zip(&schemas) {
                    indices.push(match existing {
                        Some(entry) => entry.idx,
                        None => g.declare_route(key.clone(), schema.clone(), RouteOptions::default())?,
                    });
                }
                g.add_node_described(name, kind, op, &edges, &indices, param_map.clone())
            };
            match build(g) {
                Ok(node) => Ok((indices, node)),
                Err(e) => {
                    g.undeclare_routes_from(declared)?;
                    Err(e)
                }
            }
        })?;
        for ((key, existing, route), (idx, schema)) in plan.into_iter().zip(indices.into_iter().zip(schemas)) {
            if existing.is_none() {
                let mut by_index = self.inner.by_index.write();
                if by_index.len() == idx.0 as usize {
                    let entry = Arc::new(RouteEntry { idx, schema, py_route: route.unbind() });
                    by_index.push(entry.clone());
                    self.inner.routes.write().insert(key, entry);
                }
            }
        }
        self.inner.names.write().nodes.push(name.into());
        Ok(node.0)
    }

    /// Forwards `source` to `sink` through a `forward` node; `link_taints` (taint names) are
    /// what the crossing cannot promise.
    #[pyo3(signature = (name, source, sink, policy = None, link_taints = Vec::new()))]
    fn connect(&self, py: Python<'_>, name: &str, source: RouteArg<'_>, sink: RouteArg<'_>, policy: Option<Bound<'_, PyAny>>, link_taints: Vec<String>) -> PyResult<u32> {
        let (a, b) = (self.inner.entry(py, &source)?, self.inner.entry(py, &sink)?);
        let policy = match policy {
            Some(p) => policy_of(py, &p)?,
            None => EdgePolicy::INLINE,
        };
        let taints = taint_set(py, &link_taints)?;
        let node = self.inner.dispatch(py, "connect", |g| g.connect_over(name, a.idx, b.idx, policy, taints))?;
        self.inner.names.write().nodes.push(name.into());
        Ok(node.0)
    }

    /// The latest envelope of `route`, or None.
    fn latest(&self, py: Python<'_>, route: RouteArg<'_>) -> PyResult<Option<PyEnvelope>> {
        let entry = self.inner.entry(py, &route)?;
        let env = self.inner.dispatch(py, "latest", |g| g.latest(entry.idx))?;
        Ok(env.map(|e| PyEnvelope::new(e, entry, self.inner.clone())))
    }

    /// The envelope `route@seq` if it is still retained.
    fn envelope(&self, py: Python<'_>, route: RouteArg<'_>, seq: u64) -> PyResult<Option<PyEnvelope>> {
        let entry = self.inner.entry(py, &route)?;
        let env = self.inner.lock(py, "envelope")?.envelope(EnvelopeId { route: entry.idx, seq });
        Ok(env.map(|e| PyEnvelope::new(e, entry, self.inner.clone())))
    }

    /// The retained history of `route`, oldest first.
    fn replay(&self, py: Python<'_>, route: RouteArg<'_>) -> PyResult<Vec<PyEnvelope>> {
        let entry = self.inner.entry(py, &route)?;
        let envs = self.inner.dispatch(py, "replay", |g| g.replay(entry.idx))?;
        Ok(envs.into_iter().map(|e| PyEnvelope::new(e, entry.clone(), self.inner.clone())).collect())
    }

    /// Runs the scheduler until nothing is due; returns (steps, idle).
    #[pyo3(signature = (steps_max = RUN_STEPS_MAX_DEFAULT))]
    fn run_until_idle(&self, py: Python<'_>, steps_max: u64) -> PyResult<(u64, bool)> {
        let r = self.inner.dispatch(py, "run_until_idle", |g| Ok(g.run_until_idle(steps_max)))?;
        Ok((r.steps, r.idle))
    }

    /// Moves a virtual clock to `time_us`, running everything due on the way.
    fn advance_to(&self, py: Python<'_>, time_us: &Bound<'_, PyAny>) -> PyResult<(u64, bool)> {
        let time_us = time_arg(Some(time_us), "the time to advance_to")
            .map_err(|m| graph_error(py, "time_invalid", &format!("cannot advance the clock: {m}")))?
            .ok_or_else(|| graph_error(py, "time_invalid", "cannot advance the clock: the time to advance_to must be an integer number of microseconds, got None"))?;
        let r = self.inner.dispatch(py, "advance_to", |g| g.advance_to(time_us))?;
        Ok((r.steps, r.idle))
    }

    /// The clock, in microseconds.
    #[getter]
    fn now_us(&self, py: Python<'_>) -> PyResult<i64> {
        Ok(self.inner.lock(py, "now_us")?.now_us())
    }

    /// True on a virtual clock.
    #[getter]
    fn is_virtual(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.inner.lock(py, "is_virtual")?.is_virtual())
    }

    /// The control epoch.
    #[getter]
    fn epoch(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.inner.lock(py, "epoch")?.epoch())
    }

    /// Starts the next control epoch.
    fn advance_epoch(&self, py: Python<'_>) -> PyResult<(u64, bool)> {
        let r = self.inner.dispatch(py, "advance_epoch", |g| Ok(g.advance_epoch()))?;
        Ok((r.steps, r.idle))
    }

    /// Runs against the wall clock for `seconds` (real-time graphs), releasing the GIL while
    /// idle. Returns the scheduler steps taken.
    fn run_realtime(&self, py: Python<'_>, seconds: f64) -> PyResult<u64> {
        if self.inner.lock(py, "run_realtime")?.is_virtual() {
            return Err(graph_error(py, "clock_mode", "run_realtime needs a real-time graph: Graph(realtime=True)"));
        }
        if is_dispatching(self.inner.key()) {
            return Err(graph_error(py, "clock_mode", "run_realtime cannot be called from inside the graph"));
        }
        let inner = self.inner.clone();
        let duration = Duration::from_secs_f64(seconds.max(0.0));
        // The failures are taken before the GIL comes back: locking the graph while holding
        // the GIL deadlocks against a node's link thread, which holds the graph and waits for
        // the GIL to run Python operators (GraphHost::with_graph).
        let (steps, failures) = py.detach(move || {
            let key = inner.key();
            let steps = {
                let _mark = DispatchMark::new(key);
                inner.shared.run_realtime(duration, RUN_STEPS_MAX_DEFAULT, |g| inner.run_deferred(g))
            };
            (steps, inner.shared.lock().take_failures().0)
        });
        if let Some(first) = failures.into_iter().next() {
            return Err(operator_error(py, first));
        }
        Ok(steps)
    }

    /// Submits a guarded publish; returns its guard id.
    #[pyo3(signature = (producer, route, value, not_before_epoch = None, not_before_us = None, expires_at_us = None))]
    #[allow(clippy::too_many_arguments)]
    fn publish_guarded(
        &self,
        py: Python<'_>,
        producer: &PyProducer,
        route: RouteArg<'_>,
        value: &Bound<'_, PyAny>,
        not_before_epoch: Option<Bound<'_, PyAny>>,
        not_before_us: Option<Bound<'_, PyAny>>,
        expires_at_us: Option<Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let entry = self.inner.entry(py, &route)?;
        let value = to_value(value, &entry.schema.ty, &entry.schema.name)
            .map_err(|m| self.inner.refuse(py, producer.index, &entry, "schema_check", format!("cannot publish on {}: {m}", route.inner)))?;
        let time = |v: Option<&Bound<'_, PyAny>>, what: &str| {
            time_arg(v, what).map_err(|m| self.inner.refuse(py, producer.index, &entry, "time_invalid", format!("cannot publish on {}: {m}", route.inner)))
        };
        let (not_before_us, expires_at_us) = (time(not_before_us.as_ref(), "not_before_us")?, time(expires_at_us.as_ref(), "expires_at_us")?);
        let not_before_epoch = match time(not_before_epoch.as_ref(), "not_before_epoch")? {
            Some(e) => Some(u64::try_from(e).map_err(|_| {
                self.inner.refuse(py, producer.index, &entry, "time_invalid", format!("cannot publish on {}: not_before_epoch must not be negative, got {e}", route.inner))
            })?),
            None => None,
        };
        let guard = Guard { not_before_epoch, not_before_us, expires_at_us };
        let index = producer.index;
        self.inner.dispatch(py, "publish_guarded", |g| g.publish_guarded(index, entry.idx, value, PublishOptions::default(), guard))
    }

    /// Asks a node (a capacitor) to release `count` buffered items, or all.
    #[pyo3(signature = (node, count = None))]
    fn demand(&self, py: Python<'_>, node: &str, count: Option<usize>) -> PyResult<()> {
        self.inner.dispatch(py, "demand", |g| {
            let idx = g.node_index(node).ok_or_else(|| GraphError::NameInvalid(format!("no node called {node}")))?;
            g.demand(idx, count)
        })
    }

    /// Opens the payload of envelope `route@seq` for `consumer`; returns the bytes.
    fn open_payload<'py>(&self, py: Python<'py>, route: RouteArg<'_>, seq: u64, consumer: &str) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let entry = self.inner.entry(py, &route)?;
        // Without the GIL: a payload received over a link is fetched by the node's threads,
        // and the peer may be a node of this process whose payload source is Python code.
        let id = EnvelopeId { route: entry.idx, seq };
        let bytes = self.inner.dispatch(py, "open_payload", |g| py.detach(|| g.open_payload(id, consumer)))?;
        Ok(pyo3::types::PyBytes::new(py, &bytes))
    }

    /// Gives the graph a store directory (durable operators keep their stores there).
    fn set_store_dir(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        self.inner.dispatch(py, "set_store_dir", |g| g.set_store_dir(path))
    }

    /// The rows of materialized view `name` (key, record) by key, and its counts and recovery
    /// findings as `super::stores::view_info`'s tuple.
    #[allow(clippy::type_complexity)]
    fn view_read<'py>(&self, py: Python<'py>, name: &str) -> PyResult<(Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>, Bound<'py, PyTuple>)> {
        let (rows, ty, key_ty, info) = self.inner.dispatch(py, "view", |g| {
            let view = g.view(name)?;
            let ty = view.record_type().clone();
            let key_ty = match &ty {
                SchemaType::Record(r) => r.fields[view.config().key.0].1.clone(),
                other => other.clone(),
            };
            Ok((view.rows(), ty, key_ty, view.info()))
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in &rows {
            out.push((to_py(py, k, &key_ty)?, to_py(py, v, &ty)?));
        }
        Ok((out, super::stores::view_info(py, &info)?))
    }

    /// Payload demand on `route`.
    fn payload_demand(&self, py: Python<'_>, route: RouteArg<'_>) -> PyResult<PayloadDemandStats> {
        let entry = self.inner.entry(py, &route)?;
        let d = self.inner.lock(py, "payload_demand")?.payload_demand(entry.idx);
        snapshots::payload_demand(py, d)
    }

    /// Opens of one envelope's payload: list of (consumer, bytes, cache_hit, time_us).
    fn payload_opens(&self, py: Python<'_>, route: RouteArg<'_>, seq: u64) -> PyResult<Vec<(String, u64, bool, i64)>> {
        let entry = self.inner.entry(py, &route)?;
        let g = self.inner.lock(py, "payload_opens")?;
        let origin = EnvelopeId { route: entry.idx, seq };
        Ok(g.payload_opens(origin).into_iter().map(|r| (r.consumer, r.bytes, r.cache_hit, r.time_us)).collect())
    }

    /// Lineage of `route@seq`: (ancestor envelopes found, breadth first, including itself;
    /// ids that were no longer retained).
    #[pyo3(signature = (route, seq, nodes_max = 10_000))]
    fn lineage(&self, py: Python<'_>, route: RouteArg<'_>, seq: u64, nodes_max: usize) -> PyResult<(Vec<PyEnvelope>, Vec<PyEnvelopeId>)> {
        let entry = self.inner.entry(py, &route)?;
        let (found, missing) = self.inner.lock(py, "lineage")?.lineage(EnvelopeId { route: entry.idx, seq }, nodes_max);
        let found = found
            .into_iter()
            .filter_map(|env| self.inner.entry_at(env.meta.id.route).map(|e| PyEnvelope::new(env, e, self.inner.clone())))
            .collect();
        let missing = missing.into_iter().map(|id| envelope_id(&self.inner, id)).collect();
        Ok((found, missing))
    }

    /// Audit entries of `route`: (order, time_us, seq, kind, who, detail).
    fn audit(&self, py: Python<'_>, route: RouteArg<'_>) -> PyResult<Vec<(u64, i64, u64, &'static str, String, String)>> {
        let entry = self.inner.entry(py, &route)?;
        let entries = self.inner.lock(py, "audit")?.audit_of(entry.idx);
        let names = self.inner.names.read();
        Ok(entries
            .into_iter()
            .map(|e| {
                let (kind, who, detail) = match e.kind {
                    AuditKind::Published { producer } => (
                        "published",
                        match producer {
                            ProducerRef::External(p) => format!("producer {}", names.producers.get(p as usize).cloned().unwrap_or_default()),
                            ProducerRef::Node(n) => format!("node {}", names.nodes.get(n as usize).cloned().unwrap_or_default()),
                            ProducerRef::Runtime => "runtime".into(),
                        },
                        String::new(),
                    ),
                    AuditKind::Delivered { consumer } => ("delivered", consumer, String::new()),
                    AuditKind::Opened { consumer, bytes, cache_hit } => {
                        ("opened", consumer, format!("{bytes} bytes{}", if cache_hit { ", cache hit" } else { "" }))
                    }
                    AuditKind::Dropped { at } => ("dropped", at, String::new()),
                    AuditKind::Refused { producer, reason } => ("refused", format!("producer {producer}"), reason),
                };
                (e.order, e.time_us, e.id.seq, kind, who, detail)
            })
            .collect())
    }

    /// Registers `hook()` to run after a dispatch in which `request_after_dispatch()` was called
    /// (outside the graph's lock, so it may query and publish). Query services use it.
    fn set_after_dispatch(&self, hook: Py<PyAny>) {
        *self.inner.after_dispatch.lock() = Some(hook);
    }

    /// Asks for the after-dispatch hook to run when the current dispatch ends. Safe to call
    /// from inside the graph.
    fn request_after_dispatch(&self) {
        self.inner.after_wanted.store(true, Ordering::Release);
    }

    /// What the graph was built from, for manifests: routes (with their settings and writers),
    /// nodes (as described: factory kind, parameters, input edges, outputs) and the edges into
    /// nodes, in creation order.
    fn describe(&self, py: Python<'_>) -> PyResult<GraphDescription> {
        let (routes, nodes, specs, edges, node_names) = {
            let g = self.inner.lock(py, "describe")?;
            let nodes = g.nodes();
            let specs: Vec<Option<(String, ParamMap)>> =
                (0..nodes.len()).map(|i| g.node_spec(NodeIdx(i as u32)).map(|(k, p)| (k.to_string(), p.clone()))).collect();
            let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
            (route_parts(&g), nodes, specs, g.edges(), names)
        };
        let route = |idx: RouteIdx| route_repr(py, &self.inner, idx);
        let routes = routes.into_iter().map(|r| Py::new(py, snapshots::route_stats(r, &route))).collect::<PyResult<_>>()?;
        let declared = nodes
            .iter()
            .zip(&specs)
            .map(|(n, spec)| Py::new(py, snapshots::node_declaration(py, n, spec.as_ref().map(|(k, p)| (k.as_str(), p)), &edges, &route)?))
            .collect::<PyResult<_>>()?;
        let into_nodes = edges
            .iter()
            .filter_map(|e| match e.target {
                Target::Node { node, .. } => Some(Py::new(py, snapshots::edge_stats(e.clone(), node_names[node.0 as usize].clone(), &route))),
                Target::Subscription(_) => None,
            })
            .collect::<PyResult<_>>()?;
        Ok(GraphDescription { routes, nodes: declared, edges: into_nodes })
    }

    /// Builds this (empty) graph from manifest CBOR; `callables` maps function names to
    /// Python functions; `partitions` limits the nodes built to those partitions. Returns
    /// (schemas, routes, nodes, edges) read.
    #[pyo3(signature = (manifest, callables, partitions = None))]
    fn load_manifest(
        &self,
        py: Python<'_>,
        manifest: &[u8],
        callables: Bound<'_, PyDict>,
        partitions: Option<Vec<String>>,
    ) -> PyResult<(usize, usize, usize, usize)> {
        let inner = self.inner.clone();
        let mut registry = PyCallables { map: callables };
        let mut declared = Vec::new();
        let mut nodes = Vec::new();
        let report = {
            let mut g = self.inner.lock(py, "load_manifest")?;
            if g.routes().next().is_some() {
                return Err(graph_error(py, "operator_config", "a manifest loads into an empty graph"));
            }
            let mut resolve = |schema: Schema| -> Arc<Schema> { Arc::new(Schema { ty: intern(schema.ty.clone()), ..schema }) };
            let mut on_route = |idx: RouteIdx, route: &Route, schema: &Arc<Schema>| declared.push((idx, route.clone(), schema.clone()));
            let mut on_node = |name: &str| nodes.push(name.to_string());
            crate::manifest::load(&mut g, manifest, partitions.as_deref(), &mut resolve, &mut registry, &mut on_route, &mut on_node)
                .map_err(|e| graph_error(py, "manifest", &e.0))?
        };
        for (idx, route, schema) in declared {
            let py_route = Py::new(py, PyRoute::from(route.clone()))?;
            let entry = Arc::new(RouteEntry { idx, schema, py_route });
            inner.by_index.write().push(entry.clone());
            inner.routes.write().insert(route, entry);
        }
        let producers: Vec<String> = {
            let g = self.inner.lock(py, "load_manifest")?;
            (0..).map_while(|i| { let n = g.producer_name(ProducerIdx(i)); (n != "?").then(|| n.to_string()) }).collect()
        };
        let mut names = self.inner.names.write();
        names.nodes.extend(nodes);
        names.producers = producers;
        Ok((report.schemas, report.routes, report.nodes, report.edges))
    }

    /// Every node, in creation order.
    fn nodes(&self, py: Python<'_>) -> PyResult<Vec<NodeStats>> {
        let (nodes, edges) = {
            let g = self.inner.lock(py, "nodes")?;
            (g.nodes(), g.edges())
        };
        let route = |idx: RouteIdx| route_repr(py, &self.inner, idx);
        nodes.into_iter().map(|n| snapshots::node_stats(py, n, &edges, &route)).collect()
    }

    /// Every node's health, in creation order: `(name, state, why)` with state `healthy`,
    /// `degraded` or `blocked` (its operator's health joined with its input mailboxes').
    fn node_health(&self, py: Python<'_>) -> PyResult<Vec<(String, &'static str, Vec<String>)>> {
        let g = self.inner.lock(py, "node_health")?;
        Ok(g.node_health().into_iter().map(|n| (n.name, n.health.state.word(), n.health.why)).collect())
    }

    /// Every edge, in creation order.
    fn edges(&self, py: Python<'_>) -> PyResult<Vec<EdgeStats>> {
        let (edges, targets) = {
            let g = self.inner.lock(py, "edges")?;
            let edges = g.edges();
            let targets: Vec<String> = edges
                .iter()
                .map(|e| match e.target {
                    Target::Node { node, .. } => g.node_name(node).to_string(),
                    Target::Subscription(s) => g.subscription(s).map(|(n, _, _)| n.to_string()).unwrap_or_default(),
                })
                .collect();
            (edges, targets)
        };
        let route = |idx: RouteIdx| route_repr(py, &self.inner, idx);
        Ok(edges.into_iter().zip(targets).map(|(e, target)| snapshots::edge_stats(e, target, &route)).collect())
    }

    /// Every mailbox, in creation order.
    fn mailboxes(&self, py: Python<'_>) -> PyResult<Vec<MailboxStats>> {
        let mailboxes = self.inner.lock(py, "mailboxes")?.mailboxes();
        Ok(mailboxes.into_iter().map(snapshots::mailbox_stats).collect())
    }

    /// Scheduler state: clock, epoch, ready work, timers, and gated and expired guards.
    fn scheduler(&self, py: Python<'_>) -> PyResult<SchedulerStats> {
        let parts = {
            let g = self.inner.lock(py, "scheduler")?;
            let (expired, expired_total) = g.expired();
            snapshots::SchedulerParts {
                now_us: g.now_us(),
                epoch: g.epoch(),
                ready: g.ready_count(),
                timers: g.timer_count(),
                gated: g.gated(),
                expired,
                expired_total,
                gated_max: g.gated_max(),
                gated_refused: g.gated_refused(),
            }
        };
        snapshots::scheduler_stats(py, parts, &|idx| route_repr(py, &self.inner, idx))
    }

    /// Every route, in declaration order: schema, producer, envelopes, taints and settings.
    fn routes(&self, py: Python<'_>) -> PyResult<Vec<RouteStats>> {
        let parts = {
            route_parts(&*self.inner.lock(py, "routes")?)
        };
        let route = |idx: RouteIdx| route_repr(py, &self.inner, idx);
        Ok(parts.into_iter().map(|r| snapshots::route_stats(r, &route)).collect())
    }
}

/// `route` as a `Route`: a `Route` is returned as is, a route's name is parsed; anything else
/// raises `RouteError` saying what came instead (the graph API's one check of route arguments).
#[pyfunction]
fn as_route<'py>(route: RouteArg<'py>) -> Bound<'py, PyRoute> {
    route.into_bound()
}

/// SHA-256 schema hash of a descriptor (the same function the graph uses).
#[pyfunction]
fn schema_hash<'py>(py: Python<'py>, name: &str, version: u32, descriptor: &Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let schema = Schema::new(name, version, schema_type(descriptor)?);
    Ok(pyo3::types::PyBytes::new(py, &schema.hash.0))
}

/// The canonical CBOR bytes the schema hash is computed over.
#[pyfunction]
fn schema_descriptor_cbor<'py>(py: Python<'py>, name: &str, version: u32, descriptor: &Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let schema = Schema::new(name, version, schema_type(descriptor)?);
    Ok(pyo3::types::PyBytes::new(py, &schema.descriptor_cbor()))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeGraph>()?;
    m.add_class::<PyProducer>()?;
    m.add_class::<PyEnvelope>()?;
    m.add_class::<PyEnvelopeId>()?;
    m.add_class::<PyReceipt>()?;
    m.add_class::<PySubscription>()?;
    m.add_class::<PyCounter>()?;
    m.add("GATED_MAX_DEFAULT", GATED_MAX_DEFAULT)?;
    m.add("RETAIN_DEFAULT", crate::graph::RETAIN_DEFAULT)?;
    m.add("CAPACITY_MAX", crate::graph::ops::CAPACITY_MAX)?;
    m.add_function(wrap_pyfunction!(as_route, m)?)?;
    m.add_function(wrap_pyfunction!(schema_hash, m)?)?;
    m.add_function(wrap_pyfunction!(schema_descriptor_cbor, m)?)?;
    Ok(())
}
