//! Bindings for the device link: `HostClient` (the blocking client of `crate::devlink` over a
//! Python port object, pyserial's API) and the typed objects it hands Python: `Event`,
//! `Lineage`, `Describe`, the page items, counters and board facts, and the requests a trace
//! is made of (`Step`, `Query`, `Heartbeat`, `Resume`).
//!
//! Python keeps the port I/O (the port's `read(n)` / `write(b)` / `close()`, and a `reopen()`
//! callable) and the clock (a callable returning seconds); the protocol runs here, in the
//! core's host role. Errors raise `manyfold.devices.link`'s `LinkTimeout`, `NackError` and
//! `LinkError`.

use manyfold_core::image::ImageError;
use manyfold_core::link::host::HostCounters as CoreHostCounters;
use manyfold_core::link::msg::{
    CAP_EVENTS, CAP_HEARTBEAT, CAP_LOCKSTEP, CAP_QUERIES, CAP_SOURCES, CAP_UPLOAD, DESCRIBE_RESET, HELLO_LOCKSTEP,
};
use manyfold_core::link::{self as core_link, Body, NackReason, QueryKind, Value};
use manyfold_core::taint::{Taint, TaintSet};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::devlink::client::snake;
use crate::devlink::{Client, ClientError, ClientTimers, Clock, OwnedAnswer, OwnedDescribe, Page, Port};

// --- typed objects ------------------------------------------------------------------------------

/// A value on a route: float, int or bool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Val(pub Value);

impl<'py> IntoPyObject<'py> for Val {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self.0 {
            Value::Float(x) => x.into_pyobject(py)?.into_any(),
            Value::Int(n) => n.into_pyobject(py)?.into_any(),
            Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        })
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Val {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(b) = ob.cast::<pyo3::types::PyBool>() {
            return Ok(Val(Value::Bool(b.is_true())));
        }
        if ob.is_instance_of::<pyo3::types::PyInt>() {
            return Ok(Val(Value::Int(ob.extract()?)));
        }
        Ok(Val(Value::Float(ob.extract()?)))
    }
}

/// Declares a frozen record class with a constructor, `__repr__`, equality and `to_dict()`.
macro_rules! record {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty = $default:expr),* $(,)? }) => {
        $(#[$doc])*
        #[pyclass(module = "manyfold._native", frozen, get_all, eq, from_py_object)]
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(#[allow(missing_docs)] pub $field: $ty),*
        }

        #[pymethods]
        impl $name {
            #[new]
            #[pyo3(signature = ($($field = $default),*))]
            fn new($($field: $ty),*) -> Self {
                $name { $($field),* }
            }

            fn __repr__(&self) -> String {
                format!("{:?}", self)
            }

            /// The fields, by name (for JSON).
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                $(d.set_item(stringify!($field), self.$field.clone())?;)*
                Ok(d)
            }
        }
    };
}

record!(
    /// What an event derives from: `count` consecutive events of `route` from `first_seq`
    /// (`count` 0: a source event).
    Lineage { route: u16 = 0, first_seq: u32 = 0, count: u32 = 0 }
);

record!(
    /// A host request of a trace: advance a lockstep device to `to_us` in control epoch `epoch`.
    Step { to_us: i64 = 0, epoch: u32 = 0 }
);

record!(
    /// A host request of a trace: one query (`what` a `QueryKind` code).
    Query { what: u8 = 0, arg: u32 = 0 }
);

record!(
    /// A host request of a trace: a keepalive (no answer).
    Heartbeat {}
);

record!(
    /// A host request of a trace: hand the clock back to the device.
    Resume {}
);

record!(
    /// A device's answer: the request `ref` was carried out; `info` is the device's time, or
    /// for an upload chunk the bytes received.
    Ack { r#ref: u32 = 0, info: i64 = 0 }
);

record!(
    /// A device's refusal: `reason` (a `NackReason` code) and its detail; `ref` is None when
    /// the refused frame had no readable id.
    Nack { r#ref: Option<u32> = None, reason: u8 = 0, detail: u32 = 0 }
);

record!(
    /// A node in a device's topology: operator code, input and output routes, mailbox.
    NodeInfo { op: u8 = 0, input: u16 = 0, output: u16 = 0, output2: Option<u16> = None, capacity: u16 = 0, overflow: u8 = 0 }
);

record!(
    /// A synthetic source in a device's topology.
    SourceInfo { route: u16 = 0, waveform: u8 = 0, period_us: u32 = 0, phase_us: u32 = 0 }
);

record!(
    /// A node's input mailbox on a device: depth and what it did.
    FlowInfo {
        node: u16 = 0, depth: u16 = 0, capacity: u16 = 0, accepted: u32 = 0, delivered: u32 = 0,
        dropped: u32 = 0, refused: u32 = 0, depth_max: u16 = 0,
    }
);

record!(
    /// A device route's taints: every one its events carried (`seen`), and those waiting to
    /// mark its next event (`pending`), as bit sets.
    TaintInfo { route: u16 = 0, seen: u32 = 0, pending: u32 = 0 }
);

record!(
    /// A device build's table capacities.
    Capacities { routes: u16 = 0, nodes: u16 = 0, sources: u16 = 0, windows: u16 = 0, mailbox_depth: u16 = 0, window_slots: u16 = 0 }
);

record!(
    /// A device's counters (docs/wire.md 2.8), since its last reset.
    DeviceCounters {
        frames: u32 = 0, frame_crc_errors: u32 = 0, frame_cobs_errors: u32 = 0, frame_short: u32 = 0,
        frame_oversize: u32 = 0, messages_rx: u32 = 0, messages_tx: u32 = 0, nacks_tx: u32 = 0,
        rx_gaps: u32 = 0, sessions: u32 = 0, resumes: u32 = 0, stale: u32 = 0, events_in: u32 = 0,
        events_out: u32 = 0, events_unsent: u32 = 0, mailbox_dropped: u32 = 0, late: u32 = 0,
        sampled: u32 = 0, steps: u32 = 0, source_events: u32 = 0,
    }
);

record!(
    /// What the host end of a link counted.
    HostCounters {
        frames: u32 = 0, frame_errors: u32 = 0, decode_errors: u32 = 0, messages_rx: u32 = 0,
        messages_tx: u32 = 0, events: u32 = 0, rx_gaps: u32 = 0, events_undecodable: u32 = 0,
        events_duplicate: u32 = 0, events_overflowed: u64 = 0, reconnects: u32 = 0, resumes: u32 = 0, sessions: u32 = 0,
        stale: u32 = 0, nacks: u32 = 0, retries: u32 = 0, stray_answers: u32 = 0,
    }
);

/// Board facts: uptime, stack peak and receive losses (the board's own; 0 in the simulation),
/// mode, time and table capacities.
#[pyclass(module = "manyfold._native", frozen, get_all, eq, from_py_object)]
#[derive(Debug, Clone, PartialEq)]
pub struct BoardInfo {
    #[allow(missing_docs)]
    pub uptime_ms: u32,
    #[allow(missing_docs)]
    pub stack_peak: u32,
    #[allow(missing_docs)]
    pub rx_dropped: u32,
    #[allow(missing_docs)]
    pub lockstep: bool,
    #[allow(missing_docs)]
    pub time_us: i64,
    #[allow(missing_docs)]
    pub capacities: Capacities,
}

#[pymethods]
impl BoardInfo {
    fn __repr__(&self) -> String {
        format!("{self:?}")
    }

    /// The fields, by name (for JSON).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("uptime_ms", self.uptime_ms)?;
        d.set_item("stack_peak", self.stack_peak)?;
        d.set_item("rx_dropped", self.rx_dropped)?;
        d.set_item("lockstep", self.lockstep)?;
        d.set_item("time_us", self.time_us)?;
        d.set_item("capacities", self.capacities.to_dict(py)?)?;
        Ok(d)
    }
}

/// The names of the taints set in `bits` (the bit order of `manyfold_core::taint::Taint`).
fn names_of(bits: u32) -> Vec<&'static str> {
    TaintSet(bits).iter().map(Taint::name).collect()
}

/// An event on a device route: route index, sequence number, event time (device clock),
/// control epoch, taints (bits; `taint_names` by name), lineage and value.
#[pyclass(module = "manyfold._native", frozen, get_all, eq, from_py_object)]
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    #[allow(missing_docs)]
    pub route: u16,
    #[allow(missing_docs)]
    pub seq: u32,
    #[allow(missing_docs)]
    pub time_us: i64,
    #[allow(missing_docs)]
    pub epoch: u32,
    #[allow(missing_docs)]
    pub taints: u32,
    #[allow(missing_docs)]
    pub lineage: Lineage,
    #[allow(missing_docs)]
    pub value: Val,
}

#[pymethods]
impl Event {
    #[new]
    #[pyo3(signature = (route, seq, time_us, epoch, taints, lineage, value))]
    fn new(route: u16, seq: u32, time_us: i64, epoch: u32, taints: u32, lineage: Lineage, value: Val) -> Self {
        Event { route, seq, time_us, epoch, taints, lineage, value }
    }

    /// The taints by name.
    #[getter]
    fn taint_names(&self) -> Vec<&'static str> {
        names_of(self.taints)
    }

    fn __repr__(&self) -> String {
        let v = match self.value.0 {
            Value::Float(x) => format!("{x}"),
            Value::Int(n) => format!("{n}"),
            Value::Bool(b) => format!("{b}"),
        };
        format!(
            "Event(route={}, seq={}, time_us={}, epoch={}, taints={:?}, lineage=({}, {}, {}), value={v})",
            self.route, self.seq, self.time_us, self.epoch, self.taint_names(), self.lineage.route, self.lineage.first_seq, self.lineage.count
        )
    }

    /// The fields, by name (for JSON): taints by name, lineage as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("route", self.route)?;
        d.set_item("seq", self.seq)?;
        d.set_item("time_us", self.time_us)?;
        d.set_item("epoch", self.epoch)?;
        d.set_item("value", self.value)?;
        d.set_item("taints", self.taint_names())?;
        d.set_item("lineage", self.lineage.to_dict(py)?)?;
        Ok(d)
    }
}

impl Event {
    pub(super) fn from_core(e: &core_link::Event) -> Self {
        Event {
            route: e.route,
            seq: e.seq,
            time_us: e.time_us,
            epoch: e.epoch,
            taints: e.taints.0,
            lineage: Lineage { route: e.lineage.route, first_seq: e.lineage.first_seq, count: e.lineage.count },
            value: Val(e.value),
        }
    }

    fn to_core(&self) -> core_link::Event {
        core_link::Event {
            route: self.route,
            seq: self.seq,
            time_us: self.time_us,
            epoch: self.epoch,
            taints: TaintSet(self.taints),
            lineage: core_link::Lineage { route: self.lineage.route, first_seq: self.lineage.first_seq, count: self.lineage.count },
            value: self.value.0,
        }
    }
}

/// A route in a device's topology: id (first 4 bytes of SHA-256 over the printed name), schema
/// hash prefix, value kind, link direction bits (1 to the host, 2 from the host), last seq,
/// and (v1.1) the taints its events carry by construction.
#[pyclass(module = "manyfold._native", frozen, get_all, eq, from_py_object)]
#[derive(Debug, Clone, PartialEq)]
pub struct RouteInfo {
    #[allow(missing_docs)]
    pub id: u32,
    #[allow(missing_docs)]
    pub kind: u8,
    #[allow(missing_docs)]
    pub link: u8,
    #[allow(missing_docs)]
    pub seq: u32,
    #[allow(missing_docs)]
    pub taints: Option<u32>,
    schema_bytes: [u8; 8],
}

#[pymethods]
impl RouteInfo {
    /// The schema hash prefix (8 bytes).
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.schema_bytes)
    }

    fn __repr__(&self) -> String {
        format!("RouteInfo(id={:#010x}, kind={}, link={}, seq={}, taints={:?})", self.id, self.kind, self.link, self.seq, self.taints)
    }
}

/// A device's describe: protocol version, board, the loaded partition (or why none is), session
/// and mode.
#[pyclass(module = "manyfold._native", frozen)]
#[derive(Debug, Clone)]
pub struct Describe(OwnedDescribe);

#[pymethods]
impl Describe {
    /// The protocol version on the wire: 1 (v1) or 2 (v1.1).
    #[getter]
    fn version(&self) -> u32 {
        self.0.version
    }
    /// The protocol's name: "1" or "1.1".
    #[getter]
    fn protocol(&self) -> &'static str {
        if self.0.version >= core_link::v11::VERSION {
            "1.1"
        } else {
            "1"
        }
    }
    #[getter]
    fn max_message(&self) -> u32 {
        self.0.max_message
    }
    /// `CAP_*` bits.
    #[getter]
    fn capabilities(&self) -> u32 {
        self.0.capabilities
    }
    /// The capabilities by name.
    #[getter]
    fn capability_names(&self) -> Vec<&'static str> {
        CAPABILITIES.iter().filter(|(bit, _)| self.0.capabilities & bit != 0).map(|(_, name)| *name).collect()
    }
    #[getter]
    fn board(&self) -> &str {
        &self.0.board
    }
    /// 0 when a partition is loaded, else the image error code.
    #[getter]
    fn image_status(&self) -> u8 {
        self.0.image_status
    }
    /// "loaded", or the image error's name.
    #[getter]
    fn image_status_name(&self) -> String {
        image_status_name(self.0.image_status)
    }
    #[getter]
    fn manifest_id<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.0.manifest_id.map(|m| PyBytes::new(py, &m))
    }
    #[getter]
    fn partition(&self) -> &str {
        &self.0.partition
    }
    #[getter]
    fn session(&self) -> u32 {
        self.0.session
    }
    #[getter]
    fn flags(&self) -> u8 {
        self.0.flags
    }
    /// True when the device is in lockstep.
    #[getter]
    fn lockstep(&self) -> bool {
        self.0.flags & HELLO_LOCKSTEP != 0
    }
    /// True when the session was opened by a reset hello (v1.1).
    #[getter]
    fn reset(&self) -> bool {
        self.0.flags & DESCRIBE_RESET != 0 && self.0.version >= core_link::v11::VERSION
    }
    /// The device's time (v1.1; 0 from a v1 device).
    #[getter]
    fn time_us(&self) -> i64 {
        self.0.time_us
    }
    /// The control epoch in force (v1.1).
    #[getter]
    fn epoch(&self) -> u32 {
        self.0.epoch
    }
    /// True when this describe resumed the session after a reconnect.
    #[getter]
    fn resumed(&self) -> bool {
        self.0.resumed
    }
    fn __repr__(&self) -> String {
        format!(
            "Describe(board={:?}, partition={:?}, protocol={}, image_status={}, session={}, lockstep={})",
            self.0.board,
            self.0.partition,
            self.protocol(),
            self.image_status_name(),
            self.0.session,
            self.lockstep()
        )
    }
}

const CAPABILITIES: [(u32, &str); 6] = [
    (CAP_EVENTS, "events"),
    (CAP_QUERIES, "queries"),
    (CAP_LOCKSTEP, "lockstep"),
    (CAP_UPLOAD, "upload"),
    (CAP_SOURCES, "sources"),
    (CAP_HEARTBEAT, "heartbeats"),
];

/// "loaded" for 0, else the image error's name.
#[pyfunction]
pub fn image_status_name(code: u8) -> String {
    match ImageError::from_code(code) {
        Some(e) => snake(&format!("{e:?}")),
        None if code == 0 => "loaded".into(),
        None => format!("image_error_{code}"),
    }
}

/// The link protocol's tables, for Python's enums: (code, name) of every nack reason, query
/// kind and message kind, the taint names by bit, the capability bits, and the versions.
#[pyfunction]
fn link_tables<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let reasons: Vec<(u8, String)> =
        (1..=u8::MAX).filter_map(|c| NackReason::from_code(c.into()).map(|r| (c, snake(&format!("{r:?}"))))).collect();
    d.set_item("nack_reasons", reasons)?;
    let queries: Vec<(u8, String)> =
        (0..=u8::MAX).filter_map(|c| QueryKind::from_code(c.into()).map(|q| (c, snake(&format!("{q:?}"))))).collect();
    d.set_item("query_kinds", queries)?;
    let kinds: Vec<(u8, String)> =
        (0..=u8::MAX).filter_map(|c| core_link::Kind::from_code(c.into()).map(|k| (c, snake(&format!("{k:?}"))))).collect();
    d.set_item("kinds", kinds)?;
    d.set_item("taint_names", Taint::ALL.iter().map(|t| t.name()).collect::<Vec<_>>())?;
    d.set_item("capabilities", CAPABILITIES.iter().map(|(b, n)| (*b, *n)).collect::<Vec<_>>())?;
    d.set_item("version_v1", core_link::VERSION)?;
    d.set_item("version_v1_1", core_link::v11::VERSION)?;
    d.set_item("image_errors", ImageError::ALL.iter().map(|e| (e.code(), snake(&format!("{e:?}")))).collect::<Vec<_>>())?;
    Ok(d)
}

// --- converting answers ---------------------------------------------------------------------------

fn route_info(r: &core_link::RouteInfo) -> RouteInfo {
    RouteInfo { id: r.id, kind: r.kind, link: r.link, seq: r.seq, taints: r.taints.map(|t| t.0), schema_bytes: r.schema }
}

fn counters(c: &core_link::Counters) -> DeviceCounters {
    DeviceCounters {
        frames: c.frames,
        frame_crc_errors: c.frame_crc_errors,
        frame_cobs_errors: c.frame_cobs_errors,
        frame_short: c.frame_short,
        frame_oversize: c.frame_oversize,
        messages_rx: c.messages_rx,
        messages_tx: c.messages_tx,
        nacks_tx: c.nacks_tx,
        rx_gaps: c.rx_gaps,
        sessions: c.sessions,
        resumes: c.resumes,
        stale: c.stale,
        events_in: c.events_in,
        events_out: c.events_out,
        events_unsent: c.events_unsent,
        mailbox_dropped: c.mailbox_dropped,
        late: c.late,
        sampled: c.sampled,
        steps: c.steps,
        source_events: c.source_events,
    }
}

fn page_items<'py>(py: Python<'py>, page: &Page) -> PyResult<Bound<'py, PyList>> {
    match page {
        Page::Routes(v) => PyList::new(py, v.iter().map(route_info)),
        Page::Nodes(v) => PyList::new(
            py,
            v.iter().map(|n| NodeInfo { op: n.op, input: n.input, output: n.output, output2: n.output2, capacity: n.capacity, overflow: n.overflow }),
        ),
        Page::Sources(v) => PyList::new(
            py,
            v.iter().map(|s| SourceInfo { route: s.route, waveform: s.waveform, period_us: s.period_us, phase_us: s.phase_us }),
        ),
        Page::Flow(v) => PyList::new(
            py,
            v.iter().map(|f| FlowInfo {
                node: f.node,
                depth: f.depth,
                capacity: f.capacity,
                accepted: f.accepted,
                delivered: f.delivered,
                dropped: f.dropped,
                refused: f.refused,
                depth_max: f.depth_max,
            }),
        ),
        Page::Taints(v) => PyList::new(py, v.iter().map(|t| TaintInfo { route: t.route, seen: t.seen.0, pending: t.pending.0 })),
    }
}

fn answer_to_py<'py>(py: Python<'py>, answer: &OwnedAnswer) -> PyResult<Bound<'py, PyAny>> {
    Ok(match answer {
        OwnedAnswer::Ack(a) => Bound::new(py, Ack { r#ref: a.ref_id, info: a.info })?.into_any(),
        OwnedAnswer::Nack(n) => Bound::new(py, nack(n))?.into_any(),
        OwnedAnswer::Page { page, .. } => page_items(py, page)?.into_any(),
        OwnedAnswer::Counters(c) => Bound::new(py, counters(c))?.into_any(),
        OwnedAnswer::Latest(e) => match e {
            Some(e) => Bound::new(py, Event::from_core(e))?.into_any(),
            None => py.None().into_bound(py),
        },
        OwnedAnswer::Board(b) => {
            let c = &b.capacities;
            let capacities = Capacities {
                routes: c.routes,
                nodes: c.nodes,
                sources: c.sources,
                windows: c.windows,
                mailbox_depth: c.mailbox_depth,
                window_slots: c.window_slots,
            };
            let info = BoardInfo { uptime_ms: b.uptime_ms, stack_peak: b.stack_peak, rx_dropped: b.rx_dropped, lockstep: b.lockstep, time_us: b.time_us, capacities };
            Bound::new(py, info)?.into_any()
        }
    })
}

fn nack(n: &core_link::Nack) -> Nack {
    Nack { r#ref: n.ref_id, reason: n.reason as u8, detail: n.detail }
}

// --- the port and the clock ---------------------------------------------------------------------

/// A Python port (pyserial's API): `read(n)`, `write(b)`, `close()`, and a `reopen()` callable
/// that returns a new port.
struct PyPort {
    port: Py<PyAny>,
    reopen: Option<Py<PyAny>>,
    /// A KeyboardInterrupt (or other BaseException) raised while the port waited: the client's
    /// call stops and it is raised again.
    interrupt: Option<PyErr>,
}

fn io_error(e: PyErr) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl PyPort {
    fn keep_interrupt(&mut self, py: Python<'_>, e: PyErr) -> std::io::Error {
        let error = io_error(e.clone_ref(py));
        if !e.is_instance_of::<pyo3::exceptions::PyException>(py) {
            self.interrupt = Some(e);
        }
        error
    }
}

impl Port for PyPort {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Python::attach(|py| {
            let got = match self.port.bind(py).call_method1("read", (buf.len(),)) {
                Ok(got) => got,
                Err(e) => return Err(self.keep_interrupt(py, e)),
            };
            if got.is_none() {
                return Ok(0);
            }
            let bytes: Vec<u8> = got.extract().map_err(io_error)?;
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            Ok(n)
        })
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        Python::attach(|py| {
            let port = self.port.bind(py);
            if let Err(e) = port.call_method1("write", (PyBytes::new(py, data),)) {
                return Err(self.keep_interrupt(py, e));
            }
            if port.hasattr("flush").unwrap_or(false) {
                if let Err(e) = port.call_method0("flush") {
                    return Err(self.keep_interrupt(py, e));
                }
            }
            Ok(())
        })
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        Python::attach(|py| {
            let Some(reopen) = self.reopen.as_ref() else {
                return Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no reopen"));
            };
            match reopen.bind(py).call0() {
                Ok(port) => {
                    self.port = port.unbind();
                    Ok(())
                }
                Err(e) => Err(self.keep_interrupt(py, e)),
            }
        })
    }

    fn can_reopen(&self) -> bool {
        self.reopen.is_some()
    }

    fn close(&mut self) {
        Python::attach(|py| {
            let _ = self.port.bind(py).call_method0("close");
        });
    }

    fn interrupted(&mut self) -> bool {
        self.interrupt.is_some() || Python::attach(|py| py.check_signals()).map_err(|e| self.interrupt = Some(e)).is_err()
    }
}

/// A Python callable returning seconds.
struct PyClock(Py<PyAny>);

impl Clock for PyClock {
    fn now_s(&mut self) -> f64 {
        Python::attach(|py| self.0.bind(py).call0().and_then(|t| t.extract::<f64>()).unwrap_or(0.0))
    }
}

// --- errors -------------------------------------------------------------------------------------

static LINK_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn link_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    Ok(LINK_MODULE.get_or_try_init(py, || -> PyResult<Py<PyModule>> { Ok(py.import("manyfold.devices.link")?.unbind()) })?.bind(py))
}

fn raise(py: Python<'_>, client: &mut HostClient, error: ClientError) -> PyErr {
    if let Some(e) = client.client.port().interrupt.take() {
        return e;
    }
    let made = (|| -> PyResult<PyErr> {
        let module = link_module(py)?;
        Ok(match error {
            ClientError::Refused { what, nack: n } => {
                PyErr::from_value(module.getattr("NackError")?.call1((what, Bound::new(py, nack(&n))?))?)
            }
            ClientError::Timeout(message) => PyErr::from_value(module.getattr("LinkTimeout")?.call1((message,))?),
            ClientError::Request(message) => PyErr::from_value(module.getattr("LinkError")?.call1((message,))?),
            ClientError::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
        })
    })();
    made.unwrap_or_else(|e| e)
}

// --- the client ---------------------------------------------------------------------------------

/// The host end of a device link over a Python port. See the module docs.
#[pyclass(module = "manyfold._native", name = "HostClient", unsendable)]
pub struct HostClient {
    client: Client<PyPort, PyClock>,
}

fn kind_of(what: u8) -> PyResult<QueryKind> {
    QueryKind::from_code(what.into()).ok_or_else(|| PyValueError::new_err(format!("unknown query kind {what}")))
}

/// `(heartbeat_s, stale_s, down_s, hello_retry_s, reply_timeout_s, reconnect_timeout_s, retries)`.
type TimersTuple = (f64, f64, f64, f64, f64, f64, u8);

fn timers_of(t: TimersTuple) -> ClientTimers {
    ClientTimers {
        heartbeat_s: t.0,
        stale_s: t.1,
        down_s: t.2,
        hello_retry_s: t.3,
        reply_timeout_s: t.4,
        reconnect_timeout_s: t.5,
        retries: t.6,
    }
}

macro_rules! call {
    ($self:ident, $py:ident, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(error) => return Err(raise($py, $self, error)),
        }
    };
}

#[pymethods]
impl HostClient {
    /// A client over `port` (with `read(n)`, `write(b)`, `close()`), which it reopens with
    /// `reopen()` when the link breaks (None: it cannot), on `clock` (a callable returning
    /// seconds).
    #[new]
    #[pyo3(signature = (port, reopen, clock, max_message, session, timers, version_max = core_link::v11::VERSION, record = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(port: Py<PyAny>, reopen: Option<Py<PyAny>>, clock: Py<PyAny>, max_message: usize, session: u32, timers: TimersTuple, version_max: u32, record: bool) -> PyResult<Self> {
        if !(core_link::v11::MAX_MESSAGE_MIN as usize..=65_536).contains(&max_message) {
            return Err(PyValueError::new_err(format!("max_message must be between 128 and 65536 bytes, got {max_message}")));
        }
        if !(1..=core_link::v11::VERSION).contains(&version_max) {
            return Err(PyValueError::new_err(format!("version_max must be 1 (v1) or 2 (v1.1), got {version_max}")));
        }
        let mut client = Client::new(PyPort { port, reopen, interrupt: None }, PyClock(clock), max_message, session, timers_of(timers), version_max);
        client.record(record);
        Ok(HostClient { client })
    }

    /// The port object in use (a reconnect replaces it).
    #[getter]
    fn port(&mut self, py: Python<'_>) -> Py<PyAny> {
        self.client.port().port.clone_ref(py)
    }

    /// Waits for the 0x00 a board sends once its UART is up.
    fn wait_for_boot(&mut self, py: Python<'_>, timeout_s: f64) -> PyResult<()> {
        call!(self, py, self.client.wait_for_boot(timeout_s));
        Ok(())
    }

    /// Opens the session; returns the describe.
    #[pyo3(signature = (lockstep, reset, time_us, timeout_s, fetch_routes = true))]
    fn connect(&mut self, py: Python<'_>, lockstep: bool, reset: bool, time_us: i64, timeout_s: f64, fetch_routes: bool) -> PyResult<Describe> {
        Ok(Describe(call!(self, py, self.client.connect(lockstep, reset, time_us, timeout_s, fetch_routes))))
    }

    /// Reopens the port and resumes the session.
    fn reconnect(&mut self, py: Python<'_>) -> PyResult<Describe> {
        Ok(Describe(call!(self, py, self.client.reconnect())))
    }

    /// Reads for `timeout_s`, keeps the link alive; returns the events received.
    fn poll<'py>(&mut self, py: Python<'py>, timeout_s: f64) -> PyResult<Bound<'py, PyList>> {
        let events = call!(self, py, self.client.poll(timeout_s));
        PyList::new(py, events.iter().map(Event::from_core))
    }

    /// The events received and not yet returned.
    fn events<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events = self.client.take_events();
        PyList::new(py, events.iter().map(Event::from_core))
    }

    /// Advances a lockstep device; returns the events it emitted.
    #[pyo3(signature = (to_us, epoch = 0))]
    fn step<'py>(&mut self, py: Python<'py>, to_us: i64, epoch: u32) -> PyResult<Bound<'py, PyList>> {
        let events = call!(self, py, self.client.step(to_us, epoch));
        PyList::new(py, events.iter().map(Event::from_core))
    }

    /// Hands the clock back to the device.
    fn resume(&mut self, py: Python<'_>) -> PyResult<()> {
        call!(self, py, self.client.resume());
        Ok(())
    }

    /// Sends a heartbeat now.
    fn heartbeat(&mut self) {
        self.client.heartbeat();
    }

    /// Publishes `value` on device route `route` from the host, with `seq` (None: the host
    /// role's next seq for the route) and event time `time_us` (None: the device's time as the
    /// host knows it); returns the ack.
    #[pyo3(signature = (route, seq, value, time_us = None, taints = 0))]
    fn send_event(&mut self, py: Python<'_>, route: u16, seq: Option<u32>, value: Val, time_us: Option<i64>, taints: u32) -> PyResult<Ack> {
        let seq = seq.unwrap_or_else(|| self.client.link().next_event_seq(route));
        let time_us = time_us.unwrap_or_else(|| self.client.link().seen_us().unwrap_or(0));
        let event = core_link::Event {
            route,
            seq,
            time_us,
            epoch: self.client.link().epoch(),
            taints: TaintSet(taints),
            lineage: core_link::Lineage::default(),
            value: value.0,
        };
        let answer = call!(self, py, self.client.call(&Body::Event(event), &format!("the event on route {route}"), false));
        match answer {
            OwnedAnswer::Ack(a) => Ok(Ack { r#ref: a.ref_id, info: a.info }),
            _ => Err(PyValueError::new_err("the device answered an event with something else")),
        }
    }

    /// One query; the answer as a typed object (a page is a list of items).
    #[pyo3(signature = (what, arg = 0))]
    fn query<'py>(&mut self, py: Python<'py>, what: u8, arg: u32) -> PyResult<Bound<'py, PyAny>> {
        let answer = call!(self, py, self.client.query(kind_of(what)?, arg));
        answer_to_py(py, &answer)
    }

    /// A whole table (routes, nodes, sources, flow or taints), page by page.
    fn pages<'py>(&mut self, py: Python<'py>, what: u8) -> PyResult<Bound<'py, PyList>> {
        let page = call!(self, py, self.client.pages(kind_of(what)?));
        page_items(py, &page)
    }

    /// Uploads and activates a partition image.
    fn upload(&mut self, py: Python<'_>, image: &[u8], chunk_len: usize) -> PyResult<()> {
        call!(self, py, self.client.upload(image, chunk_len));
        Ok(())
    }

    /// Sends each request of `trace` (`Step`, `Query`, `Heartbeat`, `Resume`, `Event`) and
    /// waits for its answer; nacks are answers, not errors.
    fn run_trace(&mut self, py: Python<'_>, trace: &Bound<'_, PyList>) -> PyResult<()> {
        let mut bodies: Vec<Body<'static>> = Vec::with_capacity(trace.len());
        for item in trace.iter() {
            let body = if let Ok(s) = item.extract::<Step>() {
                Body::Step(core_link::Step { to_us: s.to_us, epoch: s.epoch, seen_us: 0 })
            } else if let Ok(q) = item.extract::<Query>() {
                Body::Query(core_link::Query { what: q.what, arg: q.arg })
            } else if item.extract::<Heartbeat>().is_ok() {
                Body::Heartbeat(core_link::Heartbeat { time_us: 0 })
            } else if item.extract::<Resume>().is_ok() {
                Body::Resume
            } else if let Ok(e) = item.extract::<Event>() {
                Body::Event(e.to_core())
            } else {
                return Err(PyValueError::new_err(format!("a trace holds Step, Query, Heartbeat, Resume or Event, not {}", item.get_type().name()?)));
            };
            bodies.push(body);
        }
        call!(self, py, self.client.run_trace(&bodies));
        Ok(())
    }

    /// Frames of every message received (with `record=True`).
    #[getter]
    fn transcript<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.client.transcript().iter().map(|f| PyBytes::new(py, f)))
    }

    /// Forgets the transcript so far.
    fn clear_transcript(&mut self) {
        self.client.clear_transcript();
    }

    /// The last describe.
    #[getter]
    fn describe(&self) -> Option<Describe> {
        self.client.describe().cloned().map(Describe)
    }

    /// The route table read while connecting.
    #[getter]
    fn routes_known<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.client.routes_known().iter().map(route_info))
    }

    /// The host end's counters.
    #[getter]
    fn counters(&self) -> HostCounters {
        let c: CoreHostCounters = self.client.counters();
        HostCounters {
            frames: c.frames,
            frame_errors: c.frame_errors,
            decode_errors: c.decode_errors,
            messages_rx: c.messages_rx,
            messages_tx: c.messages_tx,
            events: c.events,
            rx_gaps: c.rx_gaps,
            events_undecodable: c.events_undecodable,
            events_duplicate: c.events_duplicate,
            events_overflowed: self.client.events_overflowed(),
            reconnects: c.reconnects,
            resumes: c.resumes,
            sessions: c.sessions,
            stale: c.stale,
            nacks: c.nacks,
            retries: c.retries,
            stray_answers: c.stray_answers,
        }
    }

    /// "disconnected", "handshaking", "up" or "stale".
    #[getter]
    fn state(&self) -> String {
        snake(&format!("{:?}", self.client.link().state()))
    }

    /// True when requests can be sent.
    #[getter]
    fn ready(&self) -> bool {
        self.client.link().ready()
    }

    /// The session id in force.
    #[getter]
    fn session(&self) -> u32 {
        self.client.session()
    }

    /// True in lockstep.
    #[getter]
    fn lockstep(&self) -> bool {
        self.client.lockstep()
    }

    /// The protocol version of the session (1 or 2).
    #[getter]
    fn version(&self) -> u32 {
        self.client.link().version()
    }

    /// The control epoch in force.
    #[getter]
    fn epoch(&self) -> u32 {
        self.client.link().epoch()
    }

    /// The largest device time received (v1.1), or None.
    #[getter]
    fn seen_us(&self) -> Option<i64> {
        self.client.link().seen_us()
    }

    /// The last seq the host knows of on device route `route`.
    fn route_seq(&self, route: u16) -> Option<u32> {
        self.client.link().route_seq(route)
    }

    /// The last error the port raised, as text.
    #[getter]
    fn port_error(&self) -> Option<String> {
        self.client.port_error().map(str::to_string)
    }

    /// Sets the timers for the next calls.
    fn set_timers(&mut self, timers: TimersTuple) {
        self.client.set_timers(timers_of(timers));
    }

    /// Closes the port.
    fn close(&mut self) {
        self.client.close();
    }
}

// --- the UDP port -------------------------------------------------------------------------------

/// A board's link over UDP (`udp://HOST:PORT`, `crate::devlink::udp`) with pyserial's API
/// (`read(n)`, `write(b)`, `flush()`, `close()`, `is_open`), so that `LinkClient` and every tool
/// built on ports use it as they use a serial port. Reads wait at most `timeout` seconds, without
/// the GIL. Bytes read are COBS frames, one per datagram (the frame layer checks them).
#[pyclass(module = "manyfold._native", name = "UdpPort", unsendable)]
struct PyUdpPort {
    port: Option<crate::devlink::udp::UdpPort>,
    url: String,
    /// Bytes of a frame read but not yet taken (a read of fewer bytes than the frame).
    rest: Vec<u8>,
    buf: Vec<u8>,
}

#[pymethods]
impl PyUdpPort {
    /// `faults_to_board` and `faults_to_host`: seeded datagram faults on each direction, as
    /// `seed=N,drop=P,dup=P,reorder=P,corrupt=P,delay_ms=N` (the node links' fault wrapper).
    #[new]
    #[pyo3(signature = (url, timeout = 0.02, faults_to_board = None, faults_to_host = None))]
    fn new(url: &str, timeout: f64, faults_to_board: Option<&str>, faults_to_host: Option<&str>) -> PyResult<Self> {
        let wait = std::time::Duration::from_secs_f64(timeout.clamp(0.001, 60.0));
        let spec = |text: Option<&str>| text.map(crate::links::FaultSpec::parse).transpose().map_err(PyValueError::new_err);
        let (to_board, to_host) = (spec(faults_to_board)?, spec(faults_to_host)?);
        let port = crate::devlink::udp::UdpPort::open(url, wait).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => PyValueError::new_err(e.to_string()),
            _ => pyo3::exceptions::PyOSError::new_err(format!("cannot open {url}: {e}")),
        })?;
        let port = port.with_faults(to_board, to_host);
        Ok(PyUdpPort { port: Some(port), url: url.to_string(), rest: Vec::new(), buf: vec![0; 1 << 16] })
    }

    /// Up to `n` bytes: what is left of the last frame, else the next datagram as a frame
    /// (waiting at most the timeout); empty when nothing came.
    #[pyo3(signature = (n = 1))]
    fn read<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        if self.rest.is_empty() {
            let Some(port) = self.port.as_mut() else {
                return Err(pyo3::exceptions::PyOSError::new_err(format!("{} is closed", self.url)));
            };
            let buf = &mut self.buf;
            let got = py.detach(|| crate::devlink::Port::read(port, buf)).map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{}: {e}", self.url)))?;
            self.rest.extend_from_slice(&self.buf[..got]);
        }
        let take = n.min(self.rest.len());
        let out = PyBytes::new(py, &self.rest[..take]);
        self.rest.drain(..take);
        Ok(out)
    }

    /// Sends the frames in `data` as datagrams (a frame cut across writes goes when complete).
    fn write(&mut self, data: &[u8]) -> PyResult<usize> {
        let Some(port) = self.port.as_mut() else {
            return Err(pyo3::exceptions::PyOSError::new_err(format!("{} is closed", self.url)));
        };
        crate::devlink::Port::write(port, data).map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{}: {e}", self.url)))?;
        Ok(data.len())
    }

    fn flush(&self) {}

    fn close(&mut self) {
        if let Some(mut port) = self.port.take() {
            crate::devlink::Port::close(&mut port);
        }
        self.rest.clear();
    }

    #[getter]
    fn is_open(&self) -> bool {
        self.port.is_some()
    }

    /// Bytes read and not yet taken.
    #[getter]
    fn in_waiting(&self) -> usize {
        self.rest.len()
    }

    /// The URL it was opened with.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// What the faults did, per direction (`to_board`, `to_host`): offered, dropped,
    /// duplicated, reordered, corrupted and delayed datagrams.
    #[getter]
    fn fault_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let (to_board, to_host) = self.port.as_ref().map(|p| p.fault_counts()).unwrap_or_default();
        for (name, c) in [("to_board", to_board), ("to_host", to_host)] {
            let d = PyDict::new(py);
            for (k, v) in [("offered", c.offered), ("dropped", c.dropped), ("duplicated", c.duplicated), ("reordered", c.reordered), ("corrupted", c.corrupted), ("delayed", c.delayed)] {
                d.set_item(k, v)?;
            }
            out.set_item(name, d)?;
        }
        Ok(out)
    }

    /// Datagrams sent and received (before the faults toward the host).
    #[getter]
    fn datagrams(&self) -> (u64, u64) {
        self.port.as_ref().map(|p| p.datagrams()).unwrap_or_default()
    }

    /// This end's `(host, port)`: the host address the board sees (before any NAT).
    #[getter]
    fn local(&self) -> Option<(String, u16)> {
        self.port.as_ref().and_then(|p| p.local()).map(|a| (a.ip().to_string(), a.port()))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EVENTS_MAX", crate::devlink::EVENTS_MAX)?;
    m.add_class::<PyUdpPort>()?;
    m.add_class::<HostClient>()?;
    m.add_class::<Event>()?;
    m.add_class::<Lineage>()?;
    m.add_class::<Describe>()?;
    m.add_class::<Ack>()?;
    m.add_class::<Nack>()?;
    m.add_class::<RouteInfo>()?;
    m.add_class::<NodeInfo>()?;
    m.add_class::<SourceInfo>()?;
    m.add_class::<FlowInfo>()?;
    m.add_class::<TaintInfo>()?;
    m.add_class::<DeviceCounters>()?;
    m.add_class::<HostCounters>()?;
    m.add_class::<Capacities>()?;
    m.add_class::<BoardInfo>()?;
    m.add_class::<Step>()?;
    m.add_class::<Query>()?;
    m.add_class::<Heartbeat>()?;
    m.add_class::<Resume>()?;
    m.add_function(wrap_pyfunction!(link_tables, m)?)?;
    m.add_function(wrap_pyfunction!(image_status_name, m)?)?;
    Ok(())
}
