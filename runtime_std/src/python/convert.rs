//! Conversion between Python objects and [`Value`]s, guided by a schema type.
//!
//! Python to value checks the type as it converts, so a wrong value is refused with the path to
//! the bad field before it reaches the graph. Value to Python rebuilds dataclass instances for
//! records, using the classes registered when their schemas were declared.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::schema::{type_name, RecordType, SchemaType};
use crate::value::Value;

/// Why a Python value is not an integer argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntArgError {
    /// Not an `int` (a float, text, None), or a `bool`.
    NotInt,
    /// An `int` outside the range of the wanted type.
    OutOfRange,
}

/// An integer argument of type `T`: an `int` (not a `bool`) in `T`'s range. Callers turn the
/// error into a sentence naming the argument, never a bare `TypeError` or `OverflowError`.
pub fn int_arg<T: TryFrom<i64>>(value: &Bound<'_, PyAny>) -> Result<T, IntArgError> {
    if !value.is_instance_of::<PyInt>() || value.is_instance_of::<PyBool>() {
        return Err(IntArgError::NotInt);
    }
    value.extract::<i64>().ok().and_then(|v| T::try_from(v).ok()).ok_or(IntArgError::OutOfRange)
}

/// A time argument (an event time, a clock time, a guard time): `None`, or an `int` in the
/// signed 64-bit range of microseconds. Anything else (a float, text, a bool, a larger int) is
/// refused with a sentence naming `what`, never a bare `TypeError` or `OverflowError`.
pub fn time_arg(value: Option<&Bound<'_, PyAny>>, what: &str) -> Result<Option<i64>, String> {
    let Some(value) = value.filter(|v| !v.is_none()) else { return Ok(None) };
    int_arg::<i64>(value).map(Some).map_err(|e| match e {
        IntArgError::NotInt => {
            let kind = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            format!("{what} must be an integer number of microseconds, got {kind} {}", repr(value))
        }
        IntArgError::OutOfRange => {
            format!("{what} must be within the signed 64-bit range of microseconds ({} to {}), got {}", i64::MIN, i64::MAX, repr(value))
        }
    })
}

/// `value`'s repr for an error message, cut to 60 characters (a long list or text would
/// drown the sentence).
pub fn repr(value: &Bound<'_, PyAny>) -> String {
    repr_cut(value, 60)
}

/// `value`'s repr, cut to `chars_max` characters (the last three of them `...`); `?` when
/// its `__repr__` raises.
fn repr_cut(value: &Bound<'_, PyAny>, chars_max: usize) -> String {
    let text = value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
    if text.chars().count() > chars_max {
        format!("{}...", text.chars().take(chars_max - 3).collect::<String>())
    } else {
        text
    }
}

/// Record types are interned, so equal record types share one `Arc`, and the Python class of a
/// record type can be found by pointer.
#[derive(Default)]
struct Registry {
    interned: HashMap<RecordType, Arc<RecordType>>,
    classes: HashMap<usize, Py<PyAny>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn descriptor_error(what: &str) -> PyErr {
    pyo3::exceptions::PyTypeError::new_err(format!("invalid schema descriptor: {what}"))
}

/// Builds a schema type from a Python descriptor (`("float",)`, `("list", T)`,
/// `("optional", T)`, `("record", name, ((field, T), ...), cls)`), registering record classes.
pub fn schema_type(descriptor: &Bound<'_, PyAny>) -> PyResult<SchemaType> {
    let tuple = descriptor.cast::<PyTuple>().map_err(|_| descriptor_error("expected a tuple"))?;
    let tag: String = tuple.get_item(0)?.extract()?;
    Ok(match tag.as_str() {
        "bool" => SchemaType::Bool,
        "int" => SchemaType::Int,
        "float" => SchemaType::Float,
        "text" => SchemaType::Text,
        "bytes" => SchemaType::Bytes,
        "list" => SchemaType::List(Box::new(schema_type(&tuple.get_item(1)?)?)),
        "optional" => SchemaType::Optional(Box::new(schema_type(&tuple.get_item(1)?)?)),
        "record" => {
            let name: String = tuple.get_item(1)?.extract()?;
            let mut fields = Vec::new();
            for field in tuple.get_item(2)?.try_iter()? {
                let field = field?;
                let pair = field.cast::<PyTuple>().map_err(|_| descriptor_error("a field is not a (name, type) tuple"))?;
                fields.push((pair.get_item(0)?.extract::<String>()?, schema_type(&pair.get_item(1)?)?));
            }
            let record = RecordType { name, fields };
            let class = if tuple.len() > 3 { Some(tuple.get_item(3)?.unbind()) } else { None };
            let mut reg = registry();
            let shared = reg.interned.entry(record.clone()).or_insert_with(|| Arc::new(record)).clone();
            if let Some(class) = class {
                if !class.bind(descriptor.py()).is_none() {
                    reg.classes.insert(Arc::as_ptr(&shared) as usize, class);
                }
            }
            SchemaType::Record(shared)
        }
        other => return Err(descriptor_error(&format!("unknown type tag {other:?}"))),
    })
}

/// The same type with every record type replaced by its interned copy, so values of a schema
/// built outside Python (a loaded manifest) convert to the Python classes registered for it.
pub fn intern(ty: SchemaType) -> SchemaType {
    match ty {
        SchemaType::List(inner) => SchemaType::List(Box::new(intern(*inner))),
        SchemaType::Optional(inner) => SchemaType::Optional(Box::new(intern(*inner))),
        SchemaType::Record(record) => {
            let fields = record.fields.iter().map(|(n, t)| (n.clone(), intern(t.clone()))).collect();
            let record = RecordType { name: record.name.clone(), fields };
            let mut reg = registry();
            SchemaType::Record(reg.interned.entry(record.clone()).or_insert_with(|| Arc::new(record)).clone())
        }
        other => other,
    }
}

fn type_of(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Converts `obj` to a value of type `ty`; the error is `path: expected T, got U`.
pub fn to_value(obj: &Bound<'_, PyAny>, ty: &SchemaType, path: &str) -> Result<Value, String> {
    let mismatch = || format!("{path}: expected {}, got {} ({})", type_name(ty), type_of(obj), short_repr(obj));
    match ty {
        SchemaType::Float => {
            if let Ok(f) = obj.cast_exact::<PyFloat>() {
                return Ok(Value::Float(f.value()));
            }
            if let Ok(f) = obj.cast::<PyFloat>() {
                return Ok(Value::Float(f.value()));
            }
            if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
                return obj.extract::<i64>().map(|i| Value::Float(i as f64)).map_err(|_| mismatch());
            }
            Err(mismatch())
        }
        SchemaType::Int => {
            if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
                return obj.extract::<i64>().map(Value::Int).map_err(|_| format!("{path}: {} does not fit in 64 bits", short_repr(obj)));
            }
            Err(mismatch())
        }
        SchemaType::Bool => obj.cast::<PyBool>().map(|b| Value::Bool(b.is_true())).map_err(|_| mismatch()),
        SchemaType::Text => obj
            .cast::<PyString>()
            .map_err(|_| mismatch())
            .and_then(|s| s.to_str().map(|s| Value::Text(s.into())).map_err(|_| format!("{path}: text is not valid UTF-8"))),
        SchemaType::Bytes => {
            if let Ok(b) = obj.cast::<PyBytes>() {
                return Ok(Value::Bytes(b.as_bytes().into()));
            }
            if let Ok(b) = obj.cast::<PyByteArray>() {
                return Ok(Value::Bytes(b.to_vec().into()));
            }
            Err(mismatch())
        }
        SchemaType::Optional(inner) => {
            if obj.is_none() {
                Ok(Value::Null)
            } else {
                to_value(obj, inner, path)
            }
        }
        SchemaType::List(inner) => {
            if !(obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>()) {
                return Err(mismatch());
            }
            let mut items = Vec::new();
            for (i, item) in obj.try_iter().map_err(|_| mismatch())?.enumerate() {
                let item = item.map_err(|e| e.to_string())?;
                items.push(to_value(&item, inner, &format!("{path}[{i}]"))?);
            }
            Ok(Value::List(items.into()))
        }
        SchemaType::Record(record) => {
            let class = registry().classes.get(&(Arc::as_ptr(record) as usize)).map(|c| c.clone_ref(obj.py()));
            if let Some(class) = class {
                if !obj.is_instance(class.bind(obj.py())).unwrap_or(false) {
                    return Err(mismatch());
                }
            }
            let mut fields = Vec::with_capacity(record.fields.len());
            for (name, field_ty) in &record.fields {
                let field = obj.getattr(name.as_str()).map_err(|_| format!("{path}: {} has no field {name}", type_of(obj)))?;
                fields.push(to_value(&field, field_ty, &format!("{path}.{name}"))?);
            }
            Ok(Value::Record(fields.into()))
        }
    }
}

/// A value's repr in a conversion error, cut to 40 characters (the path comes with it).
fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    repr_cut(obj, 40)
}

/// Converts a value of type `ty` to a Python object (records become their dataclass).
pub fn to_py<'py>(py: Python<'py>, value: &Value, ty: &SchemaType) -> PyResult<Bound<'py, PyAny>> {
    let ty = match ty {
        SchemaType::Optional(inner) => inner.as_ref(),
        other => other,
    };
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Text(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::List(items) => {
            let inner = match ty {
                SchemaType::List(inner) => inner.as_ref(),
                _ => ty,
            };
            let list = PyList::empty(py);
            for item in items.iter() {
                list.append(to_py(py, item, inner)?)?;
            }
            list.into_any()
        }
        Value::Record(fields) => {
            let SchemaType::Record(record) = ty else {
                let items: PyResult<Vec<Bound<'py, PyAny>>> = fields.iter().map(|f| to_py(py, f, &SchemaType::Bytes)).collect();
                return Ok(PyTuple::new(py, items?)?.into_any());
            };
            let mut args = Vec::with_capacity(fields.len());
            for (field, (_, field_ty)) in fields.iter().zip(record.fields.iter()) {
                args.push(to_py(py, field, field_ty)?);
            }
            let class = registry().classes.get(&(Arc::as_ptr(record) as usize)).map(|c| c.clone_ref(py));
            match class {
                Some(class) => class.bind(py).call1(PyTuple::new(py, args)?)?,
                None => PyTuple::new(py, args)?.into_any(),
            }
        }
    })
}
