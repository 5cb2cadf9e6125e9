//! One flat row per record, shared by the terminal table, the HTML report and the CSV.

use std::collections::BTreeMap;

use journal_core::replay::api::RecordView;
use serde::Serialize;
use serde_json::Value;

use super::values::{at, text};

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RecordRow {
    pub record_id: String,
    pub kind: String,
    pub occurred_at: String,
    pub model_name: String,
    pub model_version: String,
    /// The decision label; for outcomes the outcome label, for reviews the verdict.
    pub decision: String,
    pub confidence: String,
    pub subject_ref: String,
    /// The record's proof checked out (None when there is no proof, e.g. archived).
    pub verified: Option<bool>,
    /// `found`, `archived`, `pending`, `not_found`.
    pub status: String,
    pub checkpointed: Option<bool>,
}

impl RecordRow {
    pub fn from_view(view: &RecordView) -> Self {
        let record = view.record.as_ref().unwrap_or(&Value::Null);
        let kind = at(record, "kind");
        let decision = match kind.as_str() {
            "outcome" => at(record, "outcome.label"),
            "review" => {
                let verdict = at(record, "review.verdict");
                match at(record, "review.override_label") {
                    o if o.is_empty() => verdict,
                    o => format!("{verdict} → {o}"),
                }
            }
            _ => at(record, "decision"),
        };
        RecordRow {
            record_id: view.record_id.clone(),
            kind,
            occurred_at: at(record, "occurred_at"),
            model_name: at(record, "model.name"),
            model_version: at(record, "model.version"),
            decision,
            confidence: record.get("confidence").map(text).unwrap_or_default(),
            subject_ref: at(record, "subject_ref"),
            verified: view.proof.as_ref().map(|p| p.verified),
            status: view.status.clone(),
            checkpointed: view.checkpointed,
        }
    }

    /// `yes`, `NO`, or the status when there is no proof.
    pub fn verified_text(&self) -> String {
        match self.verified {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => self.status.clone(),
        }
    }

    /// `name@version`, or empty.
    pub fn model(&self) -> String {
        match (self.model_name.as_str(), self.model_version.as_str()) {
            ("", _) => String::new(),
            (n, "") => n.to_string(),
            (n, v) => format!("{n}@{v}"),
        }
    }
}

/// Decision counts by (model name, model version, decision label); decisions only.
pub fn decisions_by_model(rows: &[RecordRow]) -> BTreeMap<(String, String, String), u64> {
    let mut counts = BTreeMap::new();
    for r in rows.iter().filter(|r| r.kind == "decision") {
        *counts
            .entry((
                r.model_name.clone(),
                r.model_version.clone(),
                r.decision.clone(),
            ))
            .or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(record: Value) -> RecordView {
        serde_json::from_value(json!({
            "record_id": record["decision_id"].clone(),
            "status": "found",
            "record": record,
        }))
        .unwrap()
    }

    #[test]
    fn rows_take_labels_by_kind_and_count_decisions_by_model() {
        let d1 = view(
            json!({"kind": "decision", "decision_id": "d1", "decision": "approve",
            "confidence": 0.75, "model": {"name": "loan", "version": "3"},
            "occurred_at": "2026-03-01T00:00:00.000Z", "subject_ref": "ab"}),
        );
        let d2 = view(
            json!({"kind": "decision", "decision_id": "d2", "decision": "approve",
            "model": {"name": "loan", "version": "3"}}),
        );
        let review = view(json!({"kind": "review", "decision_id": "d1",
            "review": {"verdict": "override", "override_label": "decline"}}));
        let rows: Vec<RecordRow> = [d1, d2, review].iter().map(RecordRow::from_view).collect();
        assert_eq!(rows[0].confidence, "0.75");
        assert_eq!(rows[0].model(), "loan@3");
        assert_eq!(rows[0].verified_text(), "found");
        assert_eq!(rows[2].decision, "override → decline");
        let counts = decisions_by_model(&rows);
        assert_eq!(counts.len(), 1);
        assert_eq!(
            counts[&("loan".to_string(), "3".to_string(), "approve".to_string())],
            2
        );
    }
}
