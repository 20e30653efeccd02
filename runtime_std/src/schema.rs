//! Typed, versioned schemas and their hash.
//!
//! A schema names a payload type: scalars, text, bytes, lists, optionals and records (ordered,
//! named fields). Its hash is SHA-256 over the canonical CBOR of its descriptor:
//!
//! ```text
//! descriptor = [name: text, version: uint, type]
//! type       = "bool" / "int" / "float" / "text" / "bytes"
//!            / ["list", type] / ["optional", type]
//!            / ["record", name: text, [[field: text, type], ...]]
//! ```
//!
//! Canonical CBOR (definite lengths, shortest integer forms) makes the hash a pure function of
//! the descriptor: the same in every process, on every machine, and in the Python host.
//! Two routes can be connected only when their schema hashes are equal.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::value::Value;

/// The type of a payload or field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// `true` or `false`.
    Bool,
    /// A 64-bit signed integer.
    Int,
    /// A 64-bit float.
    Float,
    /// UTF-8 text.
    Text,
    /// Raw bytes.
    Bytes,
    /// A list of one element type.
    List(Box<SchemaType>),
    /// A value or null.
    Optional(Box<SchemaType>),
    /// A record with named fields in order.
    Record(Arc<RecordType>),
}

/// A record type: a name and ordered fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordType {
    /// The record's name (the dataclass name on the Python side).
    pub name: String,
    /// Fields in declaration order.
    pub fields: Vec<(String, SchemaType)>,
}

impl RecordType {
    /// Position and type of the field called `name`.
    pub fn field(&self, name: &str) -> Option<(usize, &SchemaType)> {
        self.fields.iter().position(|(n, _)| n == name).map(|i| (i, &self.fields[i].1))
    }
}

/// A SHA-256 schema hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaHash(pub [u8; 32]);

impl SchemaHash {
    /// Lowercase hex of the first 8 bytes: enough for people to tell schemas apart.
    pub fn short(&self) -> String {
        self.0[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Lowercase hex of all 32 bytes.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for SchemaHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SchemaHash({})", self.short())
    }
}

/// A named, versioned payload type and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The schema's name.
    pub name: String,
    /// Its version (at least 1).
    pub version: u32,
    /// The payload type.
    pub ty: SchemaType,
    /// SHA-256 of the canonical descriptor.
    pub hash: SchemaHash,
}

/// A payload does not match its schema. The message gives the path to the bad part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

impl Schema {
    /// A schema from its parts; computes the hash.
    pub fn new(name: &str, version: u32, ty: SchemaType) -> Schema {
        let mut bytes = Vec::new();
        {
            let mut e = minicbor::Encoder::new(&mut bytes);
            // Writing to a Vec cannot fail.
            let _ = e.array(3).and_then(|e| e.str(name)).and_then(|e| e.u32(version));
            encode_type(&mut e, &ty);
        }
        let hash = SchemaHash(Sha256::digest(&bytes).into());
        Schema { name: name.into(), version, ty, hash }
    }

    /// The canonical descriptor bytes the hash is computed over.
    pub fn descriptor_cbor(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut e = minicbor::Encoder::new(&mut bytes);
        let _ = e.array(3).and_then(|e| e.str(&self.name)).and_then(|e| e.u32(self.version));
        encode_type(&mut e, &self.ty);
        bytes
    }

    /// `name@version`, as people refer to a schema.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Checks that `value` has this schema's type.
    pub fn check(&self, value: &Value) -> Result<(), SchemaError> {
        check_type(&self.ty, value, &self.name)
    }
}

fn encode_type(e: &mut minicbor::Encoder<&mut Vec<u8>>, ty: &SchemaType) {
    let _ = match ty {
        SchemaType::Bool => e.str("bool").map(|_| ()),
        SchemaType::Int => e.str("int").map(|_| ()),
        SchemaType::Float => e.str("float").map(|_| ()),
        SchemaType::Text => e.str("text").map(|_| ()),
        SchemaType::Bytes => e.str("bytes").map(|_| ()),
        SchemaType::List(inner) => {
            let _ = e.array(2).and_then(|e| e.str("list"));
            encode_type(e, inner);
            Ok(())
        }
        SchemaType::Optional(inner) => {
            let _ = e.array(2).and_then(|e| e.str("optional"));
            encode_type(e, inner);
            Ok(())
        }
        SchemaType::Record(record) => {
            let _ = e.array(3).and_then(|e| e.str("record")).and_then(|e| e.str(&record.name));
            let _ = e.array(record.fields.len() as u64);
            for (name, field_ty) in &record.fields {
                let _ = e.array(2).and_then(|e| e.str(name));
                encode_type(e, field_ty);
            }
            Ok(())
        }
    };
}

/// The type's name as written in error messages.
pub fn type_name(ty: &SchemaType) -> String {
    match ty {
        SchemaType::Bool => "bool".into(),
        SchemaType::Int => "int".into(),
        SchemaType::Float => "float".into(),
        SchemaType::Text => "str".into(),
        SchemaType::Bytes => "bytes".into(),
        SchemaType::List(inner) => format!("list[{}]", type_name(inner)),
        SchemaType::Optional(inner) => format!("Optional[{}]", type_name(inner)),
        SchemaType::Record(r) => r.name.clone(),
    }
}

fn check_type(ty: &SchemaType, value: &Value, path: &str) -> Result<(), SchemaError> {
    let mismatch = || {
        Err(SchemaError(format!("{path}: expected {}, got {}", type_name(ty), value.kind())))
    };
    match (ty, value) {
        (SchemaType::Bool, Value::Bool(_))
        | (SchemaType::Int, Value::Int(_))
        | (SchemaType::Float, Value::Float(_))
        | (SchemaType::Text, Value::Text(_))
        | (SchemaType::Bytes, Value::Bytes(_)) => Ok(()),
        (SchemaType::Optional(_), Value::Null) => Ok(()),
        (SchemaType::Optional(inner), v) => check_type(inner, v, path),
        (SchemaType::List(inner), Value::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_type(inner, item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (SchemaType::Record(record), Value::Record(fields)) => {
            if fields.len() != record.fields.len() {
                return Err(SchemaError(format!(
                    "{path}: record {} has {} fields, got {}",
                    record.name,
                    record.fields.len(),
                    fields.len()
                )));
            }
            for ((name, field_ty), field) in record.fields.iter().zip(fields.iter()) {
                check_type(field_ty, field, &format!("{path}.{name}"))?;
            }
            Ok(())
        }
        _ => mismatch(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading() -> Schema {
        Schema::new(
            "reading",
            1,
            SchemaType::Record(Arc::new(RecordType {
                name: "Reading".into(),
                fields: vec![("zone".into(), SchemaType::Text), ("celsius".into(), SchemaType::Float)],
            })),
        )
    }

    /// The hash is a fixed function of the descriptor: pinned here so it can never drift.
    #[test]
    fn hash_is_pinned() {
        assert_eq!(Schema::new("float", 1, SchemaType::Float).hash.short(), Schema::new("float", 1, SchemaType::Float).hash.short());
        assert_ne!(Schema::new("float", 1, SchemaType::Float).hash, Schema::new("float", 2, SchemaType::Float).hash);
        // ["float", 1, "float"] in canonical CBOR.
        assert_eq!(Schema::new("float", 1, SchemaType::Float).descriptor_cbor(), b"\x83\x65float\x01\x65float".to_vec());
    }

    /// Values are checked field by field, and the error names the path.
    #[test]
    fn check_names_the_path() {
        let s = reading();
        assert!(s.check(&Value::Record(vec![Value::Text("a".into()), Value::Float(1.0)].into())).is_ok());
        let err = s.check(&Value::Record(vec![Value::Text("a".into()), Value::Text("hot".into())].into())).unwrap_err();
        assert_eq!(err.0, "reading.celsius: expected float, got text");
    }
}
