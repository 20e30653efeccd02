//! Payload values on the host.
//!
//! A [`Value`] is what a route carries once decoded: scalars, text, bytes, lists and records
//! (fields in schema order). Values are cheap to clone (shared buffers) because one event is
//! delivered to many consumers. Keys for keyed operators are the subset of values that order
//! totally ([`Key`]).

use std::fmt;
use std::sync::Arc;

/// A decoded payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (an absent Optional field).
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A double-precision float.
    Float(f64),
    /// UTF-8 text.
    Text(Arc<str>),
    /// Raw bytes.
    Bytes(Arc<[u8]>),
    /// A list of values.
    List(Arc<[Value]>),
    /// A record: field values in the order its schema declares them.
    Record(Arc<[Value]>),
}

impl Value {
    /// The value as a float, for numeric operators (ints convert exactly up to 2^53).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// Equality as a comparison of settings (a write binding's report against the desired
    /// value): like `==`, except that NaN is the same as NaN, at any depth.
    pub fn same(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Value::List(a), Value::List(b)) | (Value::Record(a), Value::Record(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.same(y))
            }
            _ => self == other,
        }
    }

    /// Field `index` of a record.
    pub fn field(&self, index: usize) -> Option<&Value> {
        match self {
            Value::Record(fields) => fields.get(index),
            _ => None,
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Record(_) => "record",
        }
    }

    /// Rough encoded size in bytes (for flow accounting and payload demand reports).
    pub fn size_hint(&self) -> usize {
        match self {
            Value::Null | Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 9,
            Value::Text(s) => s.len() + 2,
            Value::Bytes(b) => b.len() + 2,
            Value::List(items) | Value::Record(items) => 1 + items.iter().map(Value::size_hint).sum::<usize>(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Text(v) => write!(f, "{v:?}"),
            Value::Bytes(v) => write!(f, "<{} bytes>", v.len()),
            Value::List(items) | Value::Record(items) => {
                let open = if matches!(self, Value::List(_)) { "[" } else { "(" };
                write!(f, "{open}")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "{}", if open == "[" { "]" } else { ")" })
            }
        }
    }
}

/// A value usable as a grouping key: totally ordered, so keyed state iterates in a fixed order
/// and keyed operators emit deterministically.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// The single key of an unkeyed operator.
    Unit,
    /// A boolean key.
    Bool(bool),
    /// An integer key.
    Int(i64),
    /// A text key.
    Text(Arc<str>),
    /// A bytes key.
    Bytes(Arc<[u8]>),
}

impl Key {
    /// The key for `value`, or `None` when the value cannot be a key (floats, lists, records).
    pub fn from_value(value: &Value) -> Option<Key> {
        match value {
            Value::Null => Some(Key::Unit),
            Value::Bool(v) => Some(Key::Bool(*v)),
            Value::Int(v) => Some(Key::Int(*v)),
            Value::Text(v) => Some(Key::Text(v.clone())),
            Value::Bytes(v) => Some(Key::Bytes(v.clone())),
            _ => None,
        }
    }

    /// The key as a value (for output records).
    pub fn to_value(&self) -> Value {
        match self {
            Key::Unit => Value::Null,
            Key::Bool(v) => Value::Bool(*v),
            Key::Int(v) => Value::Int(*v),
            Key::Text(v) => Value::Text(v.clone()),
            Key::Bytes(v) => Value::Bytes(v.clone()),
        }
    }

    /// A stable 64-bit hash (FNV-1a over a tagged encoding), for repartitioning: the same key
    /// lands in the same partition in every process.
    pub fn stable_hash(&self) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(PRIME);
            }
        };
        match self {
            Key::Unit => eat(&[0]),
            Key::Bool(v) => eat(&[1, u8::from(*v)]),
            Key::Int(v) => {
                eat(&[2]);
                eat(&v.to_le_bytes());
            }
            Key::Text(v) => {
                eat(&[3]);
                eat(v.as_bytes());
            }
            Key::Bytes(v) => {
                eat(&[4]);
                eat(v);
            }
        }
        hash
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_value(), f)
    }
}
