//! Raising the Python exception classes defined in `manyfold.graph.errors`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::graph::GraphError;

static ERROR_FOR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The Python exception for an error kind and message (`manyfold.graph.errors.error_for`).
pub fn graph_error(py: Python<'_>, kind: &str, message: &str) -> PyErr {
    let factory = ERROR_FOR.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("manyfold.graph.errors")?.getattr("error_for")?.unbind())
    });
    match factory.and_then(|f| f.bind(py).call1((kind, message))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// Converts a [`GraphError`].
pub fn from_graph(py: Python<'_>, error: &GraphError) -> PyErr {
    graph_error(py, error.kind(), error.message())
}
