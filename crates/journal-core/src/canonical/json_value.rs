//! A direct walk over `serde_json` values, for the JSON parts of records (`features`, `context`,
//! step outputs), which ingest canonicalizes for every record.
//!
//! It writes a value in one pass where the generic writer would collect and sort each object's
//! members: a `serde_json::Map` iterates in byte order of its keys, which is RFC 8785's order
//! when they are ASCII. It declines whatever it is not sure of (a non-ASCII key, keys out of
//! order, an unsafe integer, deep nesting); the caller then writes the value with the generic
//! writer, which gives the same bytes or says why there are none.

use serde_json::{Map, Number, Value};

use super::{write_decimal, write_finite_f64, write_string, Declined, MAX_SAFE_INTEGER};

/// Values nested deeper are left to the generic writer, so the walk's recursion stays shallow.
const MAX_DEPTH: usize = 128;

pub(super) fn value(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), Declined> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(Declined);
            }
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                self::value(item, out, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Object(map) => object(map, out, depth)?,
    }
    Ok(())
}

pub(super) fn object(
    map: &Map<String, Value>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Declined> {
    if depth >= MAX_DEPTH {
        return Err(Declined);
    }
    out.push(b'{');
    let mut previous: Option<&str> = None;
    for (key, item) in map {
        // Checked rather than assumed: a map type that kept insertion order would come here too.
        if !key.is_ascii() || previous.is_some_and(|p| p >= key.as_str()) {
            return Err(Declined);
        }
        if previous.is_some() {
            out.push(b',');
        }
        previous = Some(key);
        write_string(key, out);
        out.push(b':');
        value(item, out, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

/// As the generic writer writes `serde_json`'s three kinds of number.
fn number(n: &Number, out: &mut Vec<u8>) -> Result<(), Declined> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(Declined);
        }
        write_decimal(u, false, out);
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(Declined);
        }
        write_decimal(i.unsigned_abs(), i < 0, out);
    } else if !n.as_f64().is_some_and(|f| write_finite_f64(f, out)) {
        return Err(Declined);
    }
    Ok(())
}
