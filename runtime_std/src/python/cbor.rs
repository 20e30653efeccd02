//! Deterministic CBOR (RFC 8949 §4.2.1, core deterministic encoding) of plain Python data, for
//! manifests and query answers: definite lengths, shortest integer and length forms, floats
//! in their shortest exact width (half, single, double), map keys ordered by the bytes of
//! their encodings. It gives the same bytes as `cbor2.dumps(obj, canonical=True)` for the
//! types manifests use, several times faster.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Nesting bound: manifests are shallow; a deeper structure is a mistake, not data.
const DEPTH_MAX: usize = 64;

fn head(out: &mut Vec<u8>, major: u8, value: u64) {
    let m = major << 5;
    match value {
        0..=23 => out.push(m | value as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, value as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

fn float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
        return;
    }
    let single = v as f32;
    if f64::from(single) == v {
        let half = half::f16::from_f32(single);
        if f32::from(half) == single {
            out.push(0xf9);
            out.extend_from_slice(&half.to_bits().to_be_bytes());
        } else {
            out.push(0xfa);
            out.extend_from_slice(&single.to_be_bytes());
        }
    } else {
        out.push(0xfb);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn encode(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if depth > DEPTH_MAX {
        return Err(PyTypeError::new_err("data nests deeper than 64 levels"));
    }
    if obj.is_none() {
        out.push(0xf6);
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.push(if b.is_true() { 0xf5 } else { 0xf4 });
    } else if obj.is_instance_of::<PyInt>() {
        let v: i128 = obj.extract()?;
        if v >= 0 {
            head(out, 0, u64::try_from(v).map_err(|_| PyTypeError::new_err("integer too large for CBOR"))?);
        } else {
            head(out, 1, u64::try_from(-1 - v).map_err(|_| PyTypeError::new_err("integer too small for CBOR"))?);
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        float(out, f.value());
    } else if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_str()?;
        head(out, 3, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        head(out, 2, b.as_bytes().len() as u64);
        out.extend_from_slice(b.as_bytes());
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let len = obj.len()?;
        head(out, 4, len as u64);
        for item in obj.try_iter()? {
            encode(&item?, out, depth + 1)?;
        }
    } else if let Ok(d) = obj.cast::<PyDict>() {
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let mut key = Vec::new();
            encode(&k, &mut key, depth + 1)?;
            let mut value = Vec::new();
            encode(&v, &mut value, depth + 1)?;
            entries.push((key, value));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if entries.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(PyTypeError::new_err("a map has two keys that encode alike"));
        }
        head(out, 5, entries.len() as u64);
        for (k, v) in entries {
            out.extend_from_slice(&k);
            out.extend_from_slice(&v);
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "cannot encode {} as deterministic CBOR (None, bool, int, float, str, bytes, list, tuple, dict)",
            obj.get_type().name()?
        )));
    }
    Ok(())
}

/// `obj` as deterministic CBOR bytes.
#[pyfunction]
pub fn canonical_cbor<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::new();
    encode(obj, &mut out, 0)?;
    Ok(PyBytes::new(py, &out))
}
