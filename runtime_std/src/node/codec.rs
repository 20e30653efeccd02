//! Payloads on a mesh link: a value as CBOR (records as arrays in field order), read back with
//! the route's schema. Both ends hold the same schema (the handshake compares its hash).

use std::sync::Arc;

use minicbor::data::Type;

use crate::schema::SchemaType;
use crate::value::Value;

/// Deepest nesting read (a schema nests no deeper in practice).
const DEPTH_MAX: u32 = 32;

/// Appends `value` as CBOR.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    let mut e = minicbor::Encoder::new(out);
    // Writing to a Vec cannot fail.
    let _ = write(&mut e, value);
}

fn write(e: &mut minicbor::Encoder<&mut Vec<u8>>, value: &Value) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
    match value {
        Value::Null => {
            e.null()?;
        }
        Value::Bool(b) => {
            e.bool(*b)?;
        }
        Value::Int(i) => {
            e.i64(*i)?;
        }
        Value::Float(f) => {
            e.f64(*f)?;
        }
        Value::Text(t) => {
            e.str(t)?;
        }
        Value::Bytes(b) => {
            e.bytes(b)?;
        }
        Value::List(items) | Value::Record(items) => {
            e.array(items.len() as u64)?;
            for item in items.iter() {
                write(e, item)?;
            }
        }
    }
    Ok(())
}

/// Reads a value of type `ty` from `bytes` (all of them).
pub fn decode(ty: &SchemaType, bytes: &[u8]) -> Result<Value, String> {
    let mut d = minicbor::Decoder::new(bytes);
    let v = read(&mut d, ty, 0)?;
    if d.position() != bytes.len() {
        return Err(format!("{} bytes after the payload", bytes.len() - d.position()));
    }
    Ok(v)
}

fn read(d: &mut minicbor::Decoder<'_>, ty: &SchemaType, depth: u32) -> Result<Value, String> {
    let bad = |e: minicbor::decode::Error| format!("payload is not valid CBOR: {e}");
    if depth > DEPTH_MAX {
        return Err("payload nests too deep".into());
    }
    Ok(match ty {
        SchemaType::Optional(inner) => {
            if d.datatype().map_err(bad)? == Type::Null {
                d.skip().map_err(bad)?;
                Value::Null
            } else {
                read(d, inner, depth + 1)?
            }
        }
        SchemaType::Bool => Value::Bool(d.bool().map_err(bad)?),
        SchemaType::Int => Value::Int(d.i64().map_err(bad)?),
        SchemaType::Float => Value::Float(d.f64().map_err(bad)?),
        SchemaType::Text => Value::Text(Arc::from(d.str().map_err(bad)?)),
        SchemaType::Bytes => Value::Bytes(Arc::from(d.bytes().map_err(bad)?)),
        SchemaType::List(inner) => {
            let n = d.array().map_err(bad)?.ok_or("indefinite-length list")?;
            let items: Result<Vec<Value>, String> = (0..n).map(|_| read(d, inner, depth + 1)).collect();
            Value::List(items?.into())
        }
        SchemaType::Record(record) => {
            let n = d.array().map_err(bad)?.ok_or("indefinite-length record")?;
            if n as usize != record.fields.len() {
                return Err(format!("record {} has {} fields, the payload {n}", record.name, record.fields.len()));
            }
            let items: Result<Vec<Value>, String> = record.fields.iter().map(|(_, t)| read(d, t, depth + 1)).collect();
            Value::Record(items?.into())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::RecordType;

    #[test]
    fn values_round_trip_with_their_schema() {
        let record = SchemaType::Record(Arc::new(RecordType {
            name: "reading".into(),
            fields: vec![
                ("t".into(), SchemaType::Float),
                ("tags".into(), SchemaType::List(Box::new(SchemaType::Text))),
                ("note".into(), SchemaType::Optional(Box::new(SchemaType::Int))),
            ],
        }));
        let value = Value::Record(vec![Value::Float(21.5), Value::List(vec![Value::Text("a".into())].into()), Value::Null].into());
        let mut bytes = Vec::new();
        encode(&value, &mut bytes);
        assert_eq!(decode(&record, &bytes).unwrap(), value);
        assert!(decode(&SchemaType::Int, &bytes).is_err());
        let mut f = Vec::new();
        encode(&Value::Float(1.0), &mut f);
        assert_eq!(f.len(), 9);
        assert_eq!(decode(&SchemaType::Float, &f).unwrap(), Value::Float(1.0));
    }
}
