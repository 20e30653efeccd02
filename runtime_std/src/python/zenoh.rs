//! `_native.ZENOH`, `_native.ZenohRouter` and `_native.ZenohClient`: a Zenoh router opened in
//! this process (what `manyfold zenoh-router` and the demo run), and a client that finds nodes by
//! their liveliness tokens and asks their admin queryables (`manyfold query --cluster zenoh:...`).
//! Thin: the typed wrappers are in `manyfold.zenoh`. Every wait releases the GIL.

use pyo3::prelude::*;

#[cfg(feature = "zenoh")]
mod imp {
    use std::time::Duration;

    use parking_lot::Mutex;
    use pyo3::prelude::*;
    use zenoh::Wait;

    use crate::node::zenoh::config;
    use crate::python::errors::graph_error;

    fn zenoh_error(py: Python<'_>, message: impl AsRef<str>) -> PyErr {
        graph_error(py, "zenoh", message.as_ref())
    }

    /// Opens a session in `mode`, releasing the GIL.
    pub(super) fn open(py: Python<'_>, mode: &str, connect: &[String], listen: &[String]) -> PyResult<zenoh::Session> {
        let c = config(mode, connect, listen).map_err(|e| zenoh_error(py, e))?;
        let what = if mode == "router" { format!("cannot open a Zenoh router on {}", listen.join(", ")) } else { format!("cannot reach the Zenoh router at {}", connect.join(", ")) };
        py.detach(move || zenoh::open(c).wait().map_err(crate::node::zenoh::error_text)).map_err(|e| zenoh_error(py, format!("{what}: {e}")))
    }

    /// A Zenoh router in this process, listening on `listen` (e.g. `["tcp/127.0.0.1:7447"]`;
    /// port 0: chosen, see `endpoints()`). Multicast scouting is off.
    #[pyclass(module = "manyfold._native", name = "ZenohRouter", frozen)]
    pub struct ZenohRouter {
        pub(super) session: Mutex<Option<zenoh::Session>>,
        endpoints: Vec<String>,
    }

    /// `tcp/HOST:0` with a port the system gives now (the stable API does not tell which port a
    /// session listens on); other endpoints unchanged.
    fn fill_port(endpoint: &str) -> String {
        let Some(addr) = endpoint.strip_prefix("tcp/") else { return endpoint.to_string() };
        let (addr, rest) = addr.split_once(['#', '?']).map_or((addr, ""), |(a, _)| (a, &endpoint[4 + a.len()..]));
        match crate::node::resolve(addr) {
            Ok(a) if a.port() == 0 => match std::net::TcpListener::bind(a).and_then(|l| l.local_addr()) {
                Ok(free) => format!("tcp/{free}{rest}"),
                Err(_) => endpoint.to_string(),
            },
            _ => endpoint.to_string(),
        }
    }

    #[pymethods]
    impl ZenohRouter {
        #[new]
        fn new(py: Python<'_>, listen: Vec<String>) -> PyResult<ZenohRouter> {
            if listen.is_empty() {
                return Err(zenoh_error(py, "a Zenoh router needs at least one endpoint to listen on, e.g. tcp/127.0.0.1:7447"));
            }
            let listen: Vec<String> = listen.iter().map(|e| fill_port(e)).collect();
            Ok(ZenohRouter { session: Mutex::new(Some(open(py, "router", &[], &listen)?)), endpoints: listen })
        }

        /// The endpoints it listens on (a port 0 given: the port chosen); empty once closed.
        fn endpoints(&self) -> Vec<String> {
            if self.session.lock().is_some() { self.endpoints.clone() } else { Vec::new() }
        }

        /// Closes the router (clients see it go); closing twice does nothing.
        fn close(&self, py: Python<'_>) {
            if let Some(s) = self.session.lock().take() {
                py.detach(move || {
                    let _ = s.close().wait();
                });
            }
        }

        fn __enter__(slf: Py<Self>) -> Py<Self> {
            slf
        }

        fn __exit__(&self, py: Python<'_>, _a: Option<Py<PyAny>>, _b: Option<Py<PyAny>>, _c: Option<Py<PyAny>>) {
            self.close(py);
        }
    }

    /// A Zenoh client of the routers `connect`: the nodes present (liveliness tokens under
    /// `prefix`) and their admin queryables.
    #[pyclass(module = "manyfold._native", name = "ZenohClient", frozen)]
    pub struct ZenohClient {
        pub(super) session: Mutex<Option<zenoh::Session>>,
        prefix: String,
    }

    impl ZenohClient {
        fn session(&self, py: Python<'_>) -> PyResult<zenoh::Session> {
            self.session.lock().clone().ok_or_else(|| zenoh_error(py, "the Zenoh client is closed"))
        }
    }

    fn timeout(ms: u64) -> Duration {
        Duration::from_millis(ms.clamp(1, 600_000))
    }

    #[pymethods]
    impl ZenohClient {
        #[new]
        #[pyo3(signature = (connect, prefix = "manyfold".to_string()))]
        fn new(py: Python<'_>, connect: Vec<String>, prefix: String) -> PyResult<ZenohClient> {
            if connect.is_empty() {
                return Err(zenoh_error(py, "a Zenoh client needs a router to connect to, e.g. tcp/127.0.0.1:7447"));
            }
            if !crate::node::zenoh::prefix_safe(&prefix) {
                return Err(zenoh_error(py, format!("the Zenoh prefix {prefix:?} must be chunks of letters, digits, '_' or '-' separated by '/'")));
            }
            Ok(ZenohClient { session: Mutex::new(Some(open(py, "client", &connect, &[])?)), prefix })
        }

        /// The liveliness keys of the nodes present now
        /// (`PREFIX/<mid16>/node/<name>/<id>/<incarnation>`), sorted; waits at most
        /// `timeout_ms` for the answers.
        #[pyo3(signature = (timeout_ms = 1000))]
        fn nodes(&self, py: Python<'_>, timeout_ms: u64) -> PyResult<Vec<String>> {
            let s = self.session(py)?;
            let key = format!("{}/*/node/**", self.prefix);
            let got = py.detach(move || -> Result<Vec<String>, String> {
                let replies = s.liveliness().get(key).timeout(timeout(timeout_ms)).wait().map_err(crate::node::zenoh::error_text)?;
                let mut keys = Vec::new();
                // Bounded: the query ends at its timeout.
                while let Ok(r) = replies.recv() {
                    if let Ok(sample) = r.result() {
                        keys.push(sample.key_expr().to_string());
                    }
                }
                keys.sort();
                keys.dedup();
                Ok(keys)
            });
            got.map_err(|e| zenoh_error(py, format!("the liveliness query failed: {e}")))
        }

        /// Sends `request` (one admin JSON request) to the queryables matching `key` (e.g.
        /// `manyfold/<mid16>/admin/*`) and returns `[(reply key, reply JSON)]` that came within
        /// `timeout_ms`, sorted by key.
        #[pyo3(signature = (key, request, timeout_ms = 2000))]
        fn ask(&self, py: Python<'_>, key: String, request: String, timeout_ms: u64) -> PyResult<Vec<(String, String)>> {
            let s = self.session(py)?;
            let k = key.clone();
            let got = py.detach(move || -> Result<Vec<(String, String)>, String> {
                let replies = s
                    .get(k)
                    .payload(request)
                    .target(zenoh::query::QueryTarget::All)
                    .consolidation(zenoh::query::ConsolidationMode::None)
                    .timeout(timeout(timeout_ms))
                    .wait()
                    .map_err(crate::node::zenoh::error_text)?;
                let mut out = Vec::new();
                // Bounded: the query ends at its timeout.
                while let Ok(r) = replies.recv() {
                    if let Ok(sample) = r.result() {
                        out.push((sample.key_expr().to_string(), String::from_utf8_lossy(&sample.payload().to_bytes()).into_owned()));
                    }
                }
                out.sort();
                Ok(out)
            });
            got.map_err(|e| zenoh_error(py, format!("the query of {key} failed: {e}")))
        }

        /// Closes the client; closing twice does nothing.
        fn close(&self, py: Python<'_>) {
            if let Some(s) = self.session.lock().take() {
                py.detach(move || {
                    let _ = s.close().wait();
                });
            }
        }

        fn __enter__(slf: Py<Self>) -> Py<Self> {
            slf
        }

        fn __exit__(&self, py: Python<'_>, _a: Option<Py<PyAny>>, _b: Option<Py<PyAny>>, _c: Option<Py<PyAny>>) {
            self.close(py);
        }
    }
}

/// Registers `ZENOH` (true when this build has the Zenoh transport) and, with it, the classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ZENOH", cfg!(feature = "zenoh"))?;
    #[cfg(feature = "zenoh")]
    {
        m.add_class::<imp::ZenohRouter>()?;
        m.add_class::<imp::ZenohClient>()?;
    }
    Ok(())
}
