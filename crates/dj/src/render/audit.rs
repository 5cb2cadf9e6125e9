//! The verify answer read generically from its JSON (`ok`, `faults: [{kind, message, …}]`,
//! counters such as `blocks_checked`), so rendering does not depend on the report's Rust shape.

use serde_json::Value;

use super::table::short;
use super::values::text;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: String,
    pub message: String,
    /// Any other fields of the fault (`seq`, `record_id`, …) as `name=value`.
    pub detail: String,
}

/// `ok` of the report; None when the answer has no boolean `ok`.
pub fn ok(report: &Value) -> Option<bool> {
    report.get("ok").and_then(Value::as_bool)
}

pub fn faults(report: &Value) -> Vec<Fault> {
    let Some(items) = report.get("faults").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|f| match f {
            Value::Object(map) => Fault {
                kind: map.get("kind").map(text).unwrap_or_default(),
                message: map.get("message").map(text).unwrap_or_default(),
                detail: map
                    .iter()
                    .filter(|(k, _)| *k != "kind" && *k != "message")
                    .map(|(k, v)| format!("{k}={}", text(v)))
                    .collect::<Vec<_>>()
                    .join(" "),
            },
            other => Fault {
                kind: String::new(),
                message: text(other),
                detail: String::new(),
            },
        })
        .collect()
}

/// The report's other top-level fields (counters, seqs, spans), in name order, as text; objects
/// and arrays as compact JSON cut at 200 characters. The raw `chain_faults` and
/// `checkpoint_faults` are left to the JSON output: `faults` names the same faults for people.
pub fn counters(report: &Value) -> Vec<(String, String)> {
    let Some(map) = report.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "ok" | "faults" | "answer" | "chain_faults" | "checkpoint_faults"
            )
        })
        .map(|(k, v)| (k.clone(), short(&text(v), 200)))
        .collect()
}

/// The verify answer of a raw response, without the envelope (principal, role, access id) and
/// the `answer` tag.
pub fn answer_body(raw_response: &Value) -> Value {
    let mut body = crate::invoke::answer_object(raw_response).clone();
    if let Value::Object(map) = &mut body {
        for k in ["principal", "role", "access_id", "answer"] {
            map.remove(k);
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_are_read_from_json() {
        let raw = json!({"principal": "p", "role": "auditor", "access_id": "a",
            "answer": {"answer": "verify", "ok": false, "blocks_checked": 12, "head_seq": 11,
            "chain_faults": [{"gap": 3}],
            "faults": [{"kind": "root_mismatch", "message": "block 4 root", "seq": 4}]}});
        let body = answer_body(&raw);
        assert_eq!(ok(&body), Some(false));
        assert_eq!(
            faults(&body),
            [Fault {
                kind: "root_mismatch".into(),
                message: "block 4 root".into(),
                detail: "seq=4".into()
            }]
        );
        assert_eq!(
            counters(&body),
            [
                ("blocks_checked".to_string(), "12".to_string()),
                ("head_seq".to_string(), "11".to_string())
            ]
        );
        assert_eq!(ok(&json!({})), None);
    }
}
