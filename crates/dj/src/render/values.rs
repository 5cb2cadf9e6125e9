//! JSON values as short text, and records flattened into `path = value` lines.

use serde_json::Value;

/// A value as a cell: strings bare, null empty, numbers in their exact JSON form, the rest as
/// compact JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// The text at `path` (dot-separated object keys), empty when absent.
pub fn at(value: &Value, path: &str) -> String {
    let mut v = value;
    for key in path.split('.') {
        match v.get(key) {
            Some(next) => v = next,
            None => return String::new(),
        }
    }
    text(v)
}

/// Record fields in schema order; fields not listed follow in name order.
const FIELD_ORDER: &[&str] = &[
    "schema_version",
    "kind",
    "decision_id",
    "outcome_id",
    "review_id",
    "tenant_id",
    "occurred_at",
    "received_at",
    "caller",
    "subject_ref",
    "model",
    "dataset_manifest_sha256",
    "features_hmac",
    "features",
    "outputs",
    "decision",
    "confidence",
    "threshold",
    "rationale",
    "explanation_ref",
    "action",
    "risk_tier",
    "steps",
    "llm",
    "outcome",
    "review",
    "sampling_rate",
    "context",
];

/// Every leaf of a record as (`model.name`, `loan_scorecard`), (`outputs[0].score`, `0.8`), …
pub fn flatten_record(record: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Value::Object(map) = record else {
        flatten("", record, &mut out);
        return out;
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| {
        (
            FIELD_ORDER
                .iter()
                .position(|f| f == k)
                .unwrap_or(FIELD_ORDER.len()),
            k.as_str(),
        )
    });
    for key in keys {
        flatten(key, &map[key], &mut out);
    }
    out
}

fn flatten(path: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), v, out);
            }
        }
        leaf => out.push((path.to_string(), text(leaf))),
    }
}

/// A float as Rust prints it: the shortest text that reads back as the same bits.
pub fn float(x: Option<f64>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_flatten_in_schema_order() {
        let record = json!({
            "zeta": 1,
            "decision": "approve",
            "kind": "decision",
            "outputs": [{"label": "approve", "score": 0.8125}],
            "model": {"name": "m", "version": "1"},
            "empty": [],
        });
        let flat = flatten_record(&record);
        let paths: Vec<&str> = flat.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "kind",
                "model.name",
                "model.version",
                "outputs[0].label",
                "outputs[0].score",
                "decision",
                "empty",
                "zeta"
            ]
        );
        assert_eq!(flat[4].1, "0.8125");
        assert_eq!(flat[6].1, "[]");
        assert_eq!(at(&record, "model.version"), "1");
        assert_eq!(at(&record, "model.sha"), "");
    }
}
