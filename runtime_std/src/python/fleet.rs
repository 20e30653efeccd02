//! `SimFleet`: a [`crate::sim::Fleet`] for `manyfold.sim.fleet`. `run_to` releases the GIL and
//! runs every board in Rust; each tick's events, from every board, are published into the
//! attached host graph under one graph lock (board `i` as producer `owner#i`), and a virtual
//! graph clock is moved to the tick.

use std::str::FromStr;
use std::sync::Arc;

use manyfold_core::envelope::RouteIdx;
use manyfold_core::link as core_link;
use parking_lot::Mutex;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::devlink::Event;
use super::graph::{NativeGraph, PyProducer};
use crate::graph::{Graph, ProducerIdx, PublishOptions};
use crate::node::GraphHost;
use crate::route::Route;
use crate::sim::{reseed, BoardFaults, Fleet, FleetConfig, FleetEvent};
use crate::value::Value;

/// Where a fleet's events go.
struct Target {
    host: Arc<dyn GraphHost>,
    /// Host route of each device route (None: not published).
    routes: Vec<Option<RouteIdx>>,
    producers: Vec<ProducerIdx>,
}

/// What publishing did.
#[derive(Default)]
struct Published {
    events: u64,
    unrouted: u64,
    refused: u64,
    first_error: Option<String>,
}

struct State {
    fleet: Fleet,
    target: Option<Target>,
    published: Published,
}

fn publish(g: &mut Graph, target: &Target, tick_us: i64, events: &[FleetEvent], out: &mut Published) {
    for e in events {
        let Some(route) = target.routes.get(usize::from(e.route)).copied().flatten() else {
            out.unrouted += 1;
            continue;
        };
        let options = PublishOptions { event_time_us: Some(e.time_us), clock_domain: None, taints: e.taints };
        // The device route's kind is the host route's (the partition was lowered from it).
        let value = match e.value {
            core_link::Value::Float(x) => Value::Float(x),
            core_link::Value::Int(n) => Value::Int(n),
            core_link::Value::Bool(b) => Value::Bool(b),
        };
        match g.publish(target.producers[e.board as usize], route, value, &options) {
            Ok(_) => out.events += 1,
            Err(err) => {
                out.refused += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(err.to_string());
                }
            }
        }
    }
    if g.is_virtual() && g.now_us() < tick_us {
        if let Err(err) = g.advance_to(tick_us) {
            if out.first_error.is_none() {
                out.first_error = Some(err.to_string());
            }
        }
    }
}

/// N simulated boards in lockstep. See the module docs.
#[pyclass(module = "manyfold._native", name = "SimFleet")]
pub struct SimFleet {
    state: Mutex<State>,
}

/// `(seed, drop, corrupt, resets_per_hour, skew_ppm)`.
type FaultsTuple = (u64, f64, f64, f64, i32);

fn core_event(e: &FleetEvent) -> core_link::Event {
    core_link::Event { route: e.route, seq: e.seq, time_us: e.time_us, epoch: e.epoch, taints: e.taints, lineage: e.lineage, value: e.value }
}

impl SimFleet {
    /// The state, its lock awaited without the GIL: `run_to` holds it while it publishes,
    /// which needs the GIL.
    fn lock<'a>(&'a self, py: Python<'_>) -> parking_lot::MutexGuard<'a, State> {
        py.detach(|| self.state.lock())
    }
}

#[pymethods]
impl SimFleet {
    /// Boots the boards (one image, session and fault tuple each) and opens their sessions.
    #[new]
    #[pyo3(signature = (board, images, sessions, step_us, faults, record))]
    fn new(py: Python<'_>, board: String, images: Vec<Vec<u8>>, sessions: Vec<u32>, step_us: i64, faults: Vec<FaultsTuple>, record: Vec<usize>) -> PyResult<Self> {
        let faults = faults
            .into_iter()
            .map(|(seed, drop, corrupt, resets_per_hour, skew_ppm)| BoardFaults { seed, drop, corrupt, resets_per_hour, skew_ppm })
            .collect();
        let config = FleetConfig { board, images, sessions, step_us, faults, record };
        let fleet = py.detach(|| Fleet::new(config)).map_err(PyValueError::new_err)?;
        Ok(SimFleet { state: Mutex::new(State { fleet, target: None, published: Published::default() }) })
    }

    /// Publishes the events into `graph` from now on: device route `i` on host route
    /// `routes[i]` (a route string, or None to leave it out), board `b` as `producers[b]`
    /// (granted every one of those routes).
    fn attach(&self, py: Python<'_>, graph: PyRef<'_, NativeGraph>, routes: Vec<Option<String>>, producers: Vec<PyRef<'_, PyProducer>>) -> PyResult<()> {
        let mut state = self.lock(py);
        if producers.len() != state.fleet.len() {
            return Err(PyValueError::new_err(format!("a fleet of {} boards needs {} producers, got {}", state.fleet.len(), state.fleet.len(), producers.len())));
        }
        let parsed = routes
            .iter()
            .map(|r| r.as_deref().map(Route::from_str).transpose())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let producers: Vec<ProducerIdx> = producers.iter().map(|p| p.index).collect();
        let host = graph.host();
        let mut result: Result<Vec<Option<RouteIdx>>, String> = Ok(Vec::new());
        py.detach(|| {
            host.with_graph(&mut |g: &mut Graph| {
                result = (|| {
                    let mut idxs = Vec::with_capacity(parsed.len());
                    for r in &parsed {
                        let Some(r) = r else {
                            idxs.push(None);
                            continue;
                        };
                        let idx = g.route_index(r).ok_or_else(|| format!("the host graph has no route {r}: declare it before attaching the fleet"))?;
                        for p in &producers {
                            g.grant(*p, idx).map_err(|e| e.to_string())?;
                        }
                        idxs.push(Some(idx));
                    }
                    Ok(idxs)
                })();
            })
        });
        let routes = result.map_err(PyValueError::new_err)?;
        state.target = Some(Target { host, routes, producers });
        Ok(())
    }

    /// Runs every board to fleet time `t_us` (in ticks), publishing as it goes.
    fn run_to(&self, py: Python<'_>, t_us: i64) -> PyResult<()> {
        let mut state = self.lock(py);
        if t_us < state.fleet.now_us() {
            return Err(PyValueError::new_err(format!("the fleet is at {} us; it cannot run back to {t_us} us", state.fleet.now_us())));
        }
        let State { fleet, target, published } = &mut *state;
        py.detach(|| match target {
            Some(target) => fleet.run_to(t_us, &mut |tick, events| {
                target.host.with_graph(&mut |g: &mut Graph| publish(g, target, tick, events, published));
            }),
            None => fleet.run_to(t_us, &mut |_, _| {}),
        });
        Ok(())
    }

    /// Fleet time, microseconds.
    #[getter]
    fn now_us(&self, py: Python<'_>) -> i64 {
        self.lock(py).fleet.now_us()
    }

    /// The boards.
    fn __len__(&self, py: Python<'_>) -> usize {
        self.lock(py).fleet.len()
    }

    /// `(events, unrouted, refused, first_error)`: what publishing into the graph did.
    fn published(&self, py: Python<'_>) -> (u64, u64, u64, Option<String>) {
        let s = self.lock(py);
        (s.published.events, s.published.unrouted, s.published.refused, s.published.first_error.clone())
    }

    /// Board `i`'s report, by field.
    fn board<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyDict>> {
        let s = self.lock(py);
        let r = s.fleet.board(i).ok_or_else(|| PyIndexError::new_err(format!("no board {i}: the fleet has boards 0 to {}", s.fleet.len() - 1)))?;
        let d = PyDict::new(py);
        d.set_item("board", r.board)?;
        d.set_item("session", r.session)?;
        d.set_item("skew_ppm", r.skew_ppm)?;
        d.set_item("device_time_us", r.device_time_us)?;
        d.set_item("target_us", r.target_us)?;
        d.set_item("ready", r.ready)?;
        let h = r.host;
        let host = PyDict::new(py);
        for (k, v) in [
            ("frames", h.frames),
            ("frame_errors", h.frame_errors),
            ("decode_errors", h.decode_errors),
            ("messages_rx", h.messages_rx),
            ("messages_tx", h.messages_tx),
            ("events", h.events),
            ("rx_gaps", h.rx_gaps),
            ("events_undecodable", h.events_undecodable),
            ("reconnects", h.reconnects),
            ("resumes", h.resumes),
            ("sessions", h.sessions),
            ("stale", h.stale),
            ("nacks", h.nacks),
            ("retries", h.retries),
            ("stray_answers", h.stray_answers),
        ] {
            host.set_item(k, v)?;
        }
        d.set_item("host", host)?;
        d.set_item("events", r.events)?;
        d.set_item("events_tainted", r.events_tainted)?;
        d.set_item("taints", r.taints.0)?;
        d.set_item("route_taints", r.route_taints.iter().map(|t| t.0).collect::<Vec<_>>())?;
        d.set_item("steps", r.steps)?;
        d.set_item("steps_failed", r.steps_failed)?;
        d.set_item("resets", r.resets)?;
        d.set_item("rehellos", r.rehellos)?;
        d.set_item("bytes_dropped", r.to_device.dropped + r.from_device.dropped)?;
        d.set_item("bytes_corrupted", r.to_device.corrupted + r.from_device.corrupted)?;
        d.set_item("tx_lost", r.tx_lost)?;
        Ok(d)
    }

    /// Board `i`'s image.
    fn image<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyBytes>> {
        let s = self.lock(py);
        let image = s.fleet.image(i).ok_or_else(|| PyIndexError::new_err(format!("no board {i}")))?;
        Ok(PyBytes::new(py, image))
    }

    /// Recorded board `i`'s frames received (None when it is not recorded).
    fn transcript<'py>(&self, py: Python<'py>, i: usize) -> Option<Vec<Bound<'py, PyBytes>>> {
        let s = self.lock(py);
        s.fleet.transcript(i).map(|t| t.frames.iter().map(|f| PyBytes::new(py, f)).collect())
    }

    /// Recorded board `i`'s link pieces: `(to_device after faults, from_device before faults)`.
    #[allow(clippy::type_complexity)]
    fn pieces<'py>(&self, py: Python<'py>, i: usize) -> Option<(Vec<Bound<'py, PyBytes>>, Vec<Bound<'py, PyBytes>>)> {
        let s = self.lock(py);
        s.fleet.transcript(i).map(|t| {
            (t.to_device.iter().map(|f| PyBytes::new(py, f)).collect(), t.from_device.iter().map(|f| PyBytes::new(py, f)).collect())
        })
    }

    /// Recorded board `i`'s events, in order (None when it is not recorded).
    fn events(&self, py: Python<'_>, i: usize) -> Option<Vec<Event>> {
        let s = self.lock(py);
        s.fleet.transcript(i).map(|t| t.events.iter().map(|e| Event::from_core(&core_event(e))).collect())
    }
}

/// `image` with source `j` seeded `seed + j`, its header rebuilt.
#[pyfunction]
fn reseed_image<'py>(py: Python<'py>, image: &[u8], seed: u64) -> PyResult<Bound<'py, PyBytes>> {
    let out = reseed(image, seed).map_err(PyValueError::new_err)?;
    Ok(PyBytes::new(py, &out))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SimFleet>()?;
    m.add_function(wrap_pyfunction!(reseed_image, m)?)?;
    Ok(())
}
