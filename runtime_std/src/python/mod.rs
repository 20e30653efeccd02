//! The PyO3 extension module `manyfold._native`. Python users import the typed wrappers in the
//! `manyfold` package, which re-export these objects.

use pyo3::prelude::*;

mod framing;

/// Native hot path of the manyfold package. Import `manyfold`, not this module.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    framing::register(m)?;
    Ok(())
}
