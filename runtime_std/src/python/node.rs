//! `_native.Node`: the runtime node ([`crate::node`]) serving a `NativeGraph` loaded from the
//! manifest with its Python callables, so `manyfold node` hosts partitions with Python
//! operators. The same options as `manyfold-node`; status as typed objects.

use std::collections::BTreeMap;
use parking_lot::Mutex;
use pyo3::prelude::*;

use super::errors::graph_error;
use super::graph::NativeGraph;
use crate::links::FaultSpec;
use crate::node::{self, Dial, LinkStatus, Node, NodeOptions, NodePlan, NodeStatus};

/// One link of a node: state, capabilities, counters.
#[pyclass(module = "manyfold._native", name = "NodeLinkStatus", frozen, get_all)]
#[derive(Clone)]
pub struct PyLinkStatus {
    name: String,
    peer: Option<String>,
    peer_id: Option<u16>,
    peer_incarnation: Option<u64>,
    peer_addr: Option<String>,
    transport: String,
    /// What the link waits for, if anything (a zenoh link: the router).
    note: Option<String>,
    dialer: bool,
    state: String,
    down_reason: Option<String>,
    requested: Vec<String>,
    provided: Vec<String>,
    missing: Vec<String>,
    events_tx: u64,
    events_rx: u64,
    dropped: u64,
    /// Of `dropped`, what each route's full flow dropped, by route name.
    dropped_by_route: std::collections::BTreeMap<String, u64>,
    retransmits: u64,
    duplicates: u64,
    gaps: u64,
    bad_frames: u64,
    /// Messages dropped because the link's inbox was full (Zenoh).
    rx_overflow: u64,
    rejected: u64,
    refused: BTreeMap<String, u64>,
    refusal: Option<String>,
    ups: u64,
    queued: u64,
    unacked: u64,
    fetches: u64,
    fetch_failures: u64,
    fetches_served: u64,
}

#[pymethods]
impl PyLinkStatus {
    fn __repr__(&self) -> String {
        format!("NodeLinkStatus({} {} {} tx={} rx={} dropped={})", self.name, self.transport, self.state, self.events_tx, self.events_rx, self.dropped)
    }
}

fn caps(c: manyfold_core::mesh::Caps) -> Vec<String> {
    c.iter().map(String::from).collect()
}

impl From<&LinkStatus> for PyLinkStatus {
    fn from(s: &LinkStatus) -> Self {
        PyLinkStatus {
            name: s.name.clone(),
            peer: s.peer.clone(),
            peer_id: s.peer_id,
            peer_incarnation: s.peer_incarnation,
            peer_addr: s.peer_addr.clone(),
            transport: s.transport.clone(),
            note: s.note.clone(),
            dialer: s.dialer,
            state: s.state.clone(),
            down_reason: s.down_reason.clone(),
            requested: caps(s.requested),
            provided: caps(s.provided),
            missing: caps(s.missing),
            events_tx: s.events_tx,
            events_rx: s.events_rx,
            dropped: s.dropped,
            dropped_by_route: s.dropped_by_route.clone(),
            retransmits: s.retransmits,
            duplicates: s.duplicates,
            gaps: s.gaps,
            bad_frames: s.bad_frames,
            rx_overflow: s.rx_overflow,
            rejected: s.rejected,
            refused: s.refused.clone(),
            refusal: s.refusal.clone(),
            ups: s.ups,
            queued: s.queued,
            unacked: s.unacked,
            fetches: s.fetches,
            fetch_failures: s.fetch_failures,
            fetches_served: s.fetches_served,
        }
    }
}

/// A node: who it is, what it hosts, its links.
#[pyclass(module = "manyfold._native", name = "NodeStatus", frozen, get_all)]
#[derive(Clone)]
pub struct PyNodeStatus {
    node: String,
    id: u16,
    incarnation: u64,
    pid: u32,
    manifest_id: String,
    partitions: Vec<String>,
    links: Vec<PyLinkStatus>,
    stopping: bool,
}

#[pymethods]
impl PyNodeStatus {
    fn __repr__(&self) -> String {
        format!("NodeStatus({} id={} links={})", self.node, self.id, self.links.len())
    }
}

impl PyNodeStatus {
    fn from_status(s: &NodeStatus) -> PyNodeStatus {
        PyNodeStatus {
            node: s.node.clone(),
            id: s.id,
            incarnation: s.incarnation,
            pid: s.pid,
            manifest_id: s.manifest_id.clone(),
            partitions: s.partitions.clone(),
            links: s.links.iter().map(PyLinkStatus::from).collect(),
            stopping: s.stopping,
        }
    }
}

/// The device hook of a Python node: a callable `hook(request: dict) -> dict`, called with the
/// GIL (and without the graph's lock) for `device` queries and for the devices in `status`. The
/// request and answer cross as JSON; an exception is the device's error, as one sentence.
struct PyDeviceHook {
    callable: Py<PyAny>,
}

impl node::DeviceHook for PyDeviceHook {
    fn ask(&self, request: &serde_json::Value) -> Result<serde_json::Value, String> {
        Python::attach(|py| {
            let json = py.import("json").map_err(|e| e.to_string())?;
            let arg = json.call_method1("loads", (request.to_string(),)).map_err(|e| e.to_string())?;
            let answer = self.callable.bind(py).call1((arg,)).map_err(|e| {
                let value = e.value(py);
                value.str().map(|s| s.to_string()).unwrap_or_else(|_| e.to_string())
            })?;
            let text: String = json.call_method1("dumps", (answer,)).and_then(|t| t.extract()).map_err(|e| format!("the device hook's answer is not JSON: {e}"))?;
            serde_json::from_str(&text).map_err(|e| format!("the device hook's answer is not JSON: {e}"))
        })
    }
}

/// A runtime node serving a graph already loaded with the manifest's hosted partitions
/// (`NativeGraph.load_manifest(manifest, callables, partitions)`). `links` maps link names to
/// `udp://HOST:PORT` or `tcp://HOST:PORT` to dial; `keys` to key file paths; `faults` to fault
/// specs (`seed=N,drop=P,...`). `zenoh_connect` (routers, e.g. `tcp/127.0.0.1:7447`),
/// `zenoh_listen`, `zenoh_mode` (`client` or `peer`) and `zenoh_prefix` run the manifest's zenoh
/// links and show the node on Zenoh (liveliness token, admin queryable). `device_hook(request: dict) -> dict` answers the admin
/// endpoint's `device` queries and lists the devices in `status` (see `manyfold.cluster.node`).
/// Stop it with `stop()`.
#[pyclass(module = "manyfold._native", name = "Node", frozen)]
pub struct PyNode {
    node: Mutex<Option<Node>>,
    last: Mutex<Option<NodeStatus>>,
    name: String,
    listen: String,
    admin: Option<String>,
    incarnation: u64,
    ready: String,
}

fn node_error(py: Python<'_>, message: impl AsRef<str>) -> PyErr {
    graph_error(py, "node", message.as_ref())
}

#[pymethods]
impl PyNode {
    #[new]
    #[pyo3(signature = (graph, manifest, name, node_id, partitions, listen, links = Vec::new(), keys = Vec::new(), admin = None, faults = Vec::new(), lease_ms = manyfold_core::mesh::LEASE_MS, queue_depth_max = node::QUEUE_DEPTH_DEFAULT, run_scheduler = false, device_hook = None, peers = Vec::new(), advertise = None, beacon = false, beacon_group = None, beacon_interface = None, gossip_ms = None, zenoh_connect = Vec::new(), zenoh_listen = Vec::new(), zenoh_mode = "client", zenoh_prefix = node::zenoh::PREFIX_DEFAULT))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        graph: &NativeGraph,
        manifest: &[u8],
        name: String,
        node_id: u16,
        partitions: Vec<String>,
        listen: &str,
        links: Vec<(String, String)>,
        keys: Vec<(String, String)>,
        admin: Option<&str>,
        faults: Vec<(String, String)>,
        lease_ms: u32,
        queue_depth_max: usize,
        run_scheduler: bool,
        device_hook: Option<Py<PyAny>>,
        peers: Vec<String>,
        advertise: Option<&str>,
        beacon: bool,
        beacon_group: Option<&str>,
        beacon_interface: Option<&str>,
        gossip_ms: Option<u32>,
        zenoh_connect: Vec<String>,
        zenoh_listen: Vec<String>,
        zenoh_mode: &str,
        zenoh_prefix: &str,
    ) -> PyResult<PyNode> {
        if let Some(h) = &device_hook {
            if !h.bind(py).is_callable() {
                return Err(node_error(py, "device_hook must be a callable taking a request dict and returning a dict"));
            }
        }
        let plan = NodePlan::new(manifest, &partitions).map_err(|e| node_error(py, format!("the manifest cannot be hosted: {e}")))?;
        let mut options = NodeOptions::new(&name, node_id, partitions, node::resolve(listen).map_err(|e| node_error(py, e))?);
        for (link, url) in links {
            options.dial.push((link, Dial::parse(&url).map_err(|e| node_error(py, e))?));
        }
        for (link, path) in keys {
            options.keys.push((link, node::read_key(std::path::Path::new(&path)).map_err(|e| node_error(py, e.0))?));
        }
        for (link, spec) in faults {
            options.faults.push((link, FaultSpec::parse(&spec).map_err(|e| node_error(py, e))?));
        }
        options.admin = match admin {
            Some(a) => Some(node::resolve(a).map_err(|e| node_error(py, e))?),
            None => None,
        };
        options.lease_ms = lease_ms;
        options.queue_depth_max = queue_depth_max;
        options.run_scheduler = run_scheduler;
        let d = &mut options.discovery;
        for p in peers {
            d.peers.push(node::resolve(&p).map_err(|e| node_error(py, e))?);
        }
        if let Some(h) = advertise {
            d.advertise = Some(node::discovery::advertise_host(h).map_err(|e| node_error(py, format!("advertise {e}")))?);
        }
        d.beacon = beacon;
        if let Some(g) = beacon_group {
            d.beacon_group = g.parse().map_err(|_| node_error(py, format!("beacon_group takes an IPv4 multicast GROUP:PORT, got {g:?}")))?;
        }
        if let Some(i) = beacon_interface {
            d.beacon_interface = i.parse().map_err(|_| node_error(py, format!("beacon_interface takes an IPv4 address of the interface, got {i:?}")))?;
        }
        if let Some(ms) = gossip_ms {
            d.gossip_ms = ms.max(1);
        }
        let mode = node::ZenohMode::parse(zenoh_mode).map_err(|e| node_error(py, format!("zenoh_mode: {e}")))?;
        if !zenoh_connect.is_empty() || !zenoh_listen.is_empty() {
            options.zenoh = Some(node::ZenohOptions { mode, connect: zenoh_connect, listen: zenoh_listen, prefix: zenoh_prefix.to_string() });
        }
        let host = graph.host();
        let node = py.detach(move || Node::start(host, plan, options)).map_err(|e| node_error(py, e.0))?;
        if let Some(callable) = device_hook {
            node.set_device_hook(Some(std::sync::Arc::new(PyDeviceHook { callable })));
        }
        Ok(PyNode {
            listen: node.listen_addr().to_string(),
            admin: node.admin_addr().map(|a| a.to_string()),
            incarnation: node.incarnation(),
            ready: node.ready_json().to_string(),
            node: Mutex::new(Some(node)),
            last: Mutex::new(None),
            name,
        })
    }

    /// The node's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }
    /// `HOST:PORT` where UDP and TCP listen.
    #[getter]
    fn listen(&self) -> &str {
        &self.listen
    }
    /// `HOST:PORT` of the admin endpoint, if any.
    #[getter]
    fn admin(&self) -> Option<&str> {
        self.admin.as_deref()
    }
    /// This process's incarnation.
    #[getter]
    fn incarnation(&self) -> u64 {
        self.incarnation
    }
    /// The ready line (JSON, as `manyfold-node` prints it).
    #[getter]
    fn ready_line(&self) -> &str {
        &self.ready
    }
    /// True once a stop was asked (here, or by the admin endpoint's `stop`).
    #[getter]
    fn stopping(&self) -> bool {
        self.node.lock().as_ref().is_none_or(Node::stopping)
    }

    /// The node and its links now (after `stop()`: as they were when it stopped).
    fn status(&self) -> PyNodeStatus {
        if let Some(n) = self.node.lock().as_ref() {
            return PyNodeStatus::from_status(&n.status());
        }
        PyNodeStatus::from_status(&self.last.lock().clone().unwrap_or_default())
    }

    /// Asks the node to stop and returns at once; `stop()` waits.
    fn request_stop(&self) {
        if let Some(n) = self.node.lock().as_ref() {
            n.request_stop();
        }
    }

    /// Stops cleanly: no new events, waits (at most 2 s) for what was sent to be acknowledged,
    /// says bye on every link, joins the node's threads. Returns the last status.
    fn stop(&self, py: Python<'_>) -> PyNodeStatus {
        let node = self.node.lock().take();
        if let Some(n) = node {
            n.request_stop();
            let status = py.detach(move || n.wait());
            *self.last.lock() = Some(status);
        }
        self.status()
    }

    /// Waits until the node stops (the admin endpoint's `stop`, or `request_stop()`), at most
    /// `timeout` seconds; True when it stopped.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> bool {
        let end = timeout.map(|t| std::time::Instant::now() + std::time::Duration::from_secs_f64(t.max(0.0)));
        // Bounded by `timeout` (when given); checks for signals between waits.
        loop {
            if self.stopping() {
                self.stop(py);
                return true;
            }
            if end.is_some_and(|e| std::time::Instant::now() >= e) || py.check_signals().is_err() {
                return false;
            }
            py.detach(|| std::thread::sleep(std::time::Duration::from_millis(20)));
        }
    }
}

/// A beacon datagram as the nodes send it, parsed by the node's own parser
/// (`node::discovery::Beacon::parse`): `(node, id, incarnation, manifest_id, admin, listen)`, or
/// None for anything that is not a valid beacon (never raises).
#[pyfunction]
fn parse_beacon(data: &[u8]) -> Option<(String, u16, u64, String, String, Option<String>)> {
    let b = node::discovery::Beacon::parse(data).ok()?;
    Some((b.node, b.id, b.incarnation, b.manifest_id, b.admin.to_string(), b.listen.map(|l| l.to_string())))
}

/// What a node link on `transport` (`udp` or `tcp`) can provide when keyed, as the core's
/// session computes it (`Caps::provided`): the capabilities validate lets a manifest link
/// declare. None for a transport that is not a mesh link.
#[pyfunction]
fn mesh_link_provides(transport: &str) -> Option<Vec<String>> {
    if !matches!(transport, "udp" | "tcp" | "zenoh") {
        return None;
    }
    let provided = manyfold_core::mesh::Caps::provided(manyfold_core::mesh::Caps::ALL, node::link::transport_caps(transport), true);
    Some(caps(provided.minus(manyfold_core::mesh::Caps::LAZY)))
}

/// Registers the node classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyNode>()?;
    m.add_class::<PyNodeStatus>()?;
    m.add_class::<PyLinkStatus>()?;
    m.add_function(wrap_pyfunction!(parse_beacon, m)?)?;
    m.add_function(wrap_pyfunction!(mesh_link_provides, m)?)?;
    Ok(())
}
