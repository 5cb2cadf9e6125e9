//! The auditor export of a period: what `dj report` fetched, as one value that becomes
//! `report.json`, `report.html` and `records.csv`.

use journal_core::access::Role;
use journal_core::metrics::ModelDayMetrics;
use journal_core::replay::api::{AccessEvent, CheckpointCoverage, RecordView, TimeRange};
use journal_core::timestamp::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::audit;
use super::rows::{decisions_by_model, RecordRow};

/// One request made for the report, by its access record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Read {
    pub operation: String,
    pub access_id: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tenant: String,
    pub purpose: String,
    pub period: TimeRange,
    pub generated_at: Timestamp,
    pub function: String,
    /// The caller as the function established it, and its role.
    pub principal: String,
    pub role: Option<Role>,
    /// The verify answer for the period (its JSON, without the envelope).
    pub integrity: Value,
    /// Every record of the period as the caller's role sees it, with proofs.
    pub records: Vec<RecordView>,
    pub checkpoint: Option<CheckpointCoverage>,
    pub access_events: Vec<AccessEvent>,
    /// Daily metrics of the period's days (UTC days received; the period itself is by
    /// occurred_at), by date and model.
    pub metrics: Vec<ModelDayMetrics>,
    /// Days of the period without a metrics file.
    pub metrics_missing_dates: Vec<String>,
    /// Why the metrics could not be read; the report is written without them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_error: Option<String>,
    /// The requests that made this report, each journaled.
    pub reads: Vec<Read>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelCount {
    pub model_name: String,
    pub model_version: String,
    pub decision: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub records: usize,
    pub decisions: usize,
    pub verified: usize,
    pub not_verified: usize,
    pub without_proof: usize,
    pub integrity_ok: Option<bool>,
    pub faults: usize,
    pub decisions_by_model: Vec<ModelCount>,
    pub access_events: usize,
}

impl Report {
    /// Every day the metrics cover, in order (those with rows and those without).
    pub fn metrics_dates(&self) -> Vec<String> {
        let mut dates: Vec<String> = self
            .metrics
            .iter()
            .map(|r| r.date.clone())
            .chain(self.metrics_missing_dates.iter().cloned())
            .collect();
        dates.sort();
        dates.dedup();
        dates
    }

    pub fn rows(&self) -> Vec<RecordRow> {
        self.records.iter().map(RecordRow::from_view).collect()
    }

    pub fn summary(&self) -> Summary {
        let rows = self.rows();
        let decisions_by_model = decisions_by_model(&rows)
            .into_iter()
            .map(
                |((model_name, model_version, decision), count)| ModelCount {
                    model_name,
                    model_version,
                    decision,
                    count,
                },
            )
            .collect();
        Summary {
            records: rows.len(),
            decisions: rows.iter().filter(|r| r.kind == "decision").count(),
            verified: rows.iter().filter(|r| r.verified == Some(true)).count(),
            not_verified: rows.iter().filter(|r| r.verified == Some(false)).count(),
            without_proof: rows.iter().filter(|r| r.verified.is_none()).count(),
            integrity_ok: audit::ok(&self.integrity),
            faults: audit::faults(&self.integrity).len(),
            decisions_by_model,
            access_events: self.access_events.len(),
        }
    }

    /// `report.json`: the report and its summary.
    pub fn to_json(&self) -> Value {
        #[derive(Serialize)]
        struct Document<'a> {
            format: &'static str,
            summary: Summary,
            #[serde(flatten)]
            report: &'a Report,
        }
        serde_json::to_value(Document {
            format: "dj-report/v1",
            summary: self.summary(),
            report: self,
        })
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }
}
