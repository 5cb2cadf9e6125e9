//! Canonical JSON bytes (RFC 8785, JSON Canonicalization Scheme).
//!
//! Every hash and MAC in the journal is taken over these bytes, so one record has exactly one
//! serialization: object members sorted by the UTF-16 code units of their names, no insignificant
//! white space, strings with the minimal escaping of RFC 8785 §3.2.2.2, numbers formatted as
//! ECMAScript's `Number.prototype.toString` does (via `ryu-js`).
//!
//! Numbers must be I-JSON (RFC 7493): integers beyond ±2^53 cannot be represented exactly as an
//! IEEE double and are refused rather than silently rounded.

use serde_json::{Map, Number, Value};

/// The largest integer an IEEE double holds exactly (2^53).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_992;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("{path}: integer {value} is outside ±2^53 and cannot be represented exactly")]
    UnsafeInteger { path: String, value: String },
    #[error("{path}: number is not finite")]
    NonFinite { path: String },
}

/// Serializes `value` to its RFC 8785 canonical bytes.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out, &mut String::new())?;
    Ok(out)
}

/// Canonical bytes of any serializable value (serialized through `serde_json::Value`).
pub fn to_vec_of<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let v = serde_json::to_value(value).map_err(|_| CanonicalError::NonFinite {
        path: String::from("$"),
    })?;
    to_vec(&v)
}

/// Checks that every number in `value` can be canonicalized; returns the first offending path.
pub fn check_numbers(value: &Value, path: &str) -> Result<(), CanonicalError> {
    match value {
        Value::Number(n) => number_repr(n, path).map(|_| ()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_numbers(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_numbers(v, &join_path(path, k))),
        _ => Ok(()),
    }
}

fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn write_value(value: &Value, out: &mut Vec<u8>, path: &mut String) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(number_repr(n, path)?.as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                write_value(item, out, path)?;
                path.truncate(len);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out, path)?,
    }
    Ok(())
}

fn write_object(
    map: &Map<String, Value>,
    out: &mut Vec<u8>,
    path: &mut String,
) -> Result<(), CanonicalError> {
    let mut keys: Vec<&String> = map.keys().collect();
    // RFC 8785 §3.2.3: sort by UTF-16 code units, which differs from UTF-8 byte order only for
    // characters outside the Basic Multilingual Plane versus U+E000..U+FFFF.
    keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    out.push(b'{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        write_value(&map[key], out, path)?;
        path.truncate(len);
    }
    out.push(b'}');
    Ok(())
}

fn number_repr(n: &Number, path: &str) -> Result<String, CanonicalError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(CanonicalError::UnsafeInteger {
                path: path.to_string(),
                value: u.to_string(),
            });
        }
        return Ok(u.to_string());
    }
    if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(CanonicalError::UnsafeInteger {
                path: path.to_string(),
                value: i.to_string(),
            });
        }
        return Ok(i.to_string());
    }
    let f = n.as_f64().ok_or_else(|| CanonicalError::NonFinite {
        path: path.to_string(),
    })?;
    if !f.is_finite() {
        return Err(CanonicalError::NonFinite {
            path: path.to_string(),
        });
    }
    if f == 0.0 {
        // -0 serializes as 0 (RFC 8785 §3.2.2.3).
        return Ok("0".to_string());
    }
    let mut buf = ryu_js::Buffer::new();
    Ok(buf.format_finite(f).to_string())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0C}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_number_examples() {
        // RFC 8785 Appendix B samples (IEEE-754 double → JCS text).
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992.0, "9007199254740992"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (333333333.3333333, "333333333.3333333"),
            (-1.0, "-1"),
            (0.1, "0.1"),
        ];
        for (f, want) in cases {
            assert_eq!(canon(json!(f)), *want, "formatting {f:e}");
        }
    }

    #[test]
    fn sorts_keys_by_utf16_and_escapes_minimally() {
        let v = json!({"b": 1, "a": "x\u{0001}\"\\\n/é", "\u{20ac}": true, "\u{1f600}": null, "\u{fb33}": 0});
        // U+1F600 (surrogates D83D..) sorts before U+FB33 in UTF-16 order but after it in UTF-8.
        assert_eq!(
            canon(v),
            "{\"a\":\"x\\u0001\\\"\\\\\\n/é\",\"b\":1,\"€\":true,\"\u{1f600}\":null,\"\u{fb33}\":0}"
        );
    }

    #[test]
    fn refuses_unsafe_integers_with_path() {
        let err = to_vec(&json!({"f": {"n": [1, 9007199254740993u64]}})).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::UnsafeInteger {
                path: "f.n[1]".into(),
                value: "9007199254740993".into()
            }
        );
    }

    #[test]
    fn canonical_text_reparses_to_same_bytes() {
        let v = json!({"x": [0.92, 1.0, 1e-9, 123456789012345.6], "s": "\u{7f}\u{2028}"});
        let first = to_vec(&v).unwrap();
        let again: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(to_vec(&again).unwrap(), first);
    }
}
