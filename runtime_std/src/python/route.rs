//! `Route`, `Plane`, `Layer` and `Variant` as Python classes over the Rust route identity.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::convert::repr;
use super::errors::graph_error;
use crate::route::{Layer, Plane, Route, Variant};

macro_rules! py_word_enum {
    ($py:ident, $rust:ident, $pyname:literal, $doc:literal, { $($variant:ident = $name:literal),* $(,)? }) => {
        #[doc = $doc]
        #[pyclass(module = "manyfold.graph", name = $pyname, eq, frozen, hash, from_py_object)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $py {
            $(#[pyo3(name = $name)] $variant,)*
        }

        impl From<$py> for $rust {
            fn from(v: $py) -> $rust {
                match v { $($py::$variant => $rust::$variant,)* }
            }
        }

        impl From<$rust> for $py {
            fn from(v: $rust) -> $py {
                match v { $($rust::$variant => $py::$variant,)* }
            }
        }

        #[pymethods]
        impl $py {
            /// The lowercase word used in printed routes.
            #[getter]
            fn word(&self) -> &'static str {
                $rust::from(*self).word()
            }

            /// The member for a printed word.
            #[staticmethod]
            fn parse(py: Python<'_>, word: &str) -> PyResult<$py> {
                $rust::from_word(word).map($py::from).ok_or_else(|| {
                    let all: Vec<&str> = $rust::ALL.iter().map(|v| v.word()).collect();
                    graph_error(py, "route", &format!("{:?} is not a {}; expected one of {}", word, $pyname, all.join(", ")))
                })
            }

            /// Every member.
            #[staticmethod]
            fn members() -> Vec<$py> {
                $rust::ALL.iter().map(|v| $py::from(*v)).collect()
            }

            fn __str__(&self) -> &'static str {
                self.word()
            }

            fn __repr__(&self) -> String {
                format!("{}.{}", $pyname, self.word().to_uppercase())
            }

            fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
                let cls = py.get_type::<$py>().getattr("parse")?;
                Ok((cls, PyTuple::new(py, [self.word()])?))
            }
        }
    };
}

py_word_enum!(PyPlane, Plane, "Plane", "What a route is for: read, write, state, query or debug.", {
    Read = "READ", Write = "WRITE", State = "STATE", Query = "QUERY", Debug = "DEBUG",
});
py_word_enum!(PyLayer, Layer, "Layer", "How close to the device and how heavy a route is.", {
    Raw = "RAW", Logical = "LOGICAL", Shadow = "SHADOW", Bulk = "BULK", Internal = "INTERNAL", Ephemeral = "EPHEMERAL",
});
py_word_enum!(PyVariant, Variant, "Variant", "Which surface of a stream a route is.", {
    Meta = "META", Payload = "PAYLOAD", Request = "REQUEST", Desired = "DESIRED", Reported = "REPORTED",
    Effective = "EFFECTIVE", Ack = "ACK", State = "STATE", Event = "EVENT", Health = "HEALTH",
    QueryRequest = "QUERY_REQUEST", QueryResponse = "QUERY_RESPONSE",
});

/// A route's identity: plane, layer, owner, family, stream, variant and version, printed as
/// `plane.layer.owner.family.stream.variant.vN`. Owner, family and stream are lowercase
/// identifiers, so the printed form is unambiguous and `Route.parse(str(r)) == r`.
#[pyclass(module = "manyfold.graph", name = "Route", frozen, eq, ord)]
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PyRoute {
    pub inner: Route,
    /// The hash of `inner`, computed once: routes are dictionary keys all over the host (the
    /// manifest compiler and validator look each one up several times), and hashing the three
    /// strings on every lookup cost a tenth of a 10k-route compile.
    hash: u64,
}

impl From<Route> for PyRoute {
    fn from(inner: Route) -> PyRoute {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        inner.hash(&mut hasher);
        PyRoute { hash: hasher.finish(), inner }
    }
}

#[pymethods]
impl PyRoute {
    #[new]
    #[pyo3(signature = (plane, layer, owner, family, stream, variant = PyVariant::Meta, version = 1))]
    fn new(
        py: Python<'_>,
        plane: PyPlane,
        layer: PyLayer,
        owner: &str,
        family: &str,
        stream: &str,
        variant: PyVariant,
        version: u32,
    ) -> PyResult<PyRoute> {
        Route::new(plane.into(), layer.into(), owner, family, stream, variant.into(), version)
            .map(PyRoute::from)
            .map_err(|e| graph_error(py, "route", &e.0))
    }

    fn __hash__(&self) -> u64 {
        self.hash
    }

    /// Parses `plane.layer.owner.family.stream.variant.vN`.
    #[staticmethod]
    fn parse(py: Python<'_>, text: &str) -> PyResult<PyRoute> {
        text.parse::<Route>().map(PyRoute::from).map_err(|e| graph_error(py, "route", &e.0))
    }

    /// A copy with some parts replaced.
    #[pyo3(signature = (*, plane = None, layer = None, owner = None, family = None, stream = None, variant = None, version = None))]
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &self,
        py: Python<'_>,
        plane: Option<PyPlane>,
        layer: Option<PyLayer>,
        owner: Option<&str>,
        family: Option<&str>,
        stream: Option<&str>,
        variant: Option<PyVariant>,
        version: Option<u32>,
    ) -> PyResult<PyRoute> {
        let r = &self.inner;
        Route::new(
            plane.map_or(r.plane(), Into::into),
            layer.map_or(r.layer(), Into::into),
            owner.unwrap_or(r.owner()),
            family.unwrap_or(r.family()),
            stream.unwrap_or(r.stream()),
            variant.map_or(r.variant(), Into::into),
            version.unwrap_or(r.version()),
        )
        .map(PyRoute::from)
        .map_err(|e| graph_error(py, "route", &e.0))
    }

    #[getter]
    fn plane(&self) -> PyPlane {
        self.inner.plane().into()
    }
    #[getter]
    fn layer(&self) -> PyLayer {
        self.inner.layer().into()
    }
    #[getter]
    fn owner(&self) -> &str {
        self.inner.owner()
    }
    #[getter]
    fn family(&self) -> &str {
        self.inner.family()
    }
    #[getter]
    fn stream(&self) -> &str {
        self.inner.stream()
    }
    #[getter]
    fn variant(&self) -> PyVariant {
        self.inner.variant().into()
    }
    #[getter]
    fn version(&self) -> u32 {
        self.inner.version()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("Route.parse('{}')", self.inner)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let parse = py.get_type::<PyRoute>().getattr("parse")?;
        Ok((parse, PyTuple::new(py, [self.inner.to_string()])?))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPlane>()?;
    m.add_class::<PyLayer>()?;
    m.add_class::<PyVariant>()?;
    m.add_class::<PyRoute>()?;
    Ok(())
}

/// A route argument from Python: a `Route`, or its printed name (`"read.logical.p.f.x.meta.v1"`).
/// Anything else is a `RouteError` that says what came instead (a node gets a hint to pass its
/// output route), so a wrong argument is a graph error like every other misuse, never a bare
/// `TypeError` from the binding layer.
pub struct RouteArg<'py>(Bound<'py, PyRoute>);

impl<'py> RouteArg<'py> {
    /// The `Route` object.
    pub fn into_bound(self) -> Bound<'py, PyRoute> {
        self.0
    }
}

impl std::ops::Deref for RouteArg<'_> {
    type Target = PyRoute;
    fn deref(&self) -> &PyRoute {
        self.0.get()
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for RouteArg<'py> {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = ob.py();
        if let Ok(route) = ob.cast::<PyRoute>() {
            return Ok(RouteArg(route.to_owned()));
        }
        if let Ok(text) = ob.cast::<pyo3::types::PyString>() {
            let route = PyRoute::parse(py, text.to_str()?)?;
            return Ok(RouteArg(Bound::new(py, route)?));
        }
        if let Ok(output) = ob.getattr("output") {
            if let Ok(route) = output.cast::<PyRoute>() {
                let name = ob.getattr("name").map(|n| n.to_string()).unwrap_or_default();
                let message = format!(
                    "expected a route, got node {name}: a node is not a route; pass node.output, the route it emits on ({})",
                    route.get().inner
                );
                return Err(graph_error(py, "route", &message));
            }
        }
        let kind = ob.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into());
        let shown = repr(&ob);
        let hint = ": pass the Route that graph.route(...) returned, or the route's name";
        Err(graph_error(py, "route", &format!("expected a route, got {kind} {shown}{hint}")))
    }
}
