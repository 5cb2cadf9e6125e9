//! The replay function's wire format: what `dj` (or any caller) sends through the Lambda
//! Invoke API, and what it gets back. JSON, documented in `docs/replay-api.md`.
//!
//! Every request names its tenant and a stated purpose; every answer names the access record
//! that journaled it, so an auditor can later show what was read, by whom and why.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::audit::AuditReport;
use super::lookup::{ArchivedNotice, Proof};
pub use crate::access::AccessEvent;
use crate::access::{Redaction, Role};
use crate::metrics::ModelDayMetrics;
use crate::models::{Comparison, Evaluation};
use crate::record::Output;
use crate::timestamp::Timestamp;

/// Longest accepted stated purpose (it is stored in the access journal).
pub const MAX_PURPOSE_CHARS: usize = 500;
/// Most records one query or what-if page returns.
pub const MAX_PAGE: usize = 1000;
/// Records per page unless the caller asks for fewer.
pub const DEFAULT_PAGE: usize = 200;

/// One invocation of the replay function.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    /// Proof of the caller's IAM identity: a SigV4-signed, unsent STS `GetCallerIdentity`
    /// request that the function forwards to STS (see `journal_aws::identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    /// The caller's principal as stated by the caller. Accepted only where the function is
    /// configured to trust it (local runs under the runtime emulator); refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub request: Request,
}

/// What the caller asks, for which tenant and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub tenant_id: String,
    /// Why the caller reads (a ticket, a case number, a sentence). Required, journaled.
    pub purpose: String,
    #[serde(flatten)]
    pub op: Operation,
}

/// A half-open time range `from <= t < to` over `occurred_at`; open ends are unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
}

impl TimeRange {
    /// The range with open ends closed at the accepted extremes.
    pub fn bounds(&self) -> (Timestamp, Timestamp) {
        (
            self.from.unwrap_or(Timestamp::MIN),
            self.to.unwrap_or(Timestamp::MAX),
        )
    }
}

/// The operations, tagged by `op`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// One record by its id (decision, outcome or review id), with the outcomes and reviews
    /// that refer to it.
    Lookup { record_id: String },
    /// A subject's records in a time range. The raw subject id is turned into its HMAC
    /// reference inside the function and is never stored, not even in the access journal.
    QuerySubject {
        subject_id: String,
        #[serde(default, flatten)]
        range: TimeRange,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// A model version's decisions in a time range (`model_version` is required: the index
    /// keeps one timeline per version).
    QueryModel {
        model_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model_version: Option<String>,
        #[serde(default, flatten)]
        range: TimeRange,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// Every record of the tenant in a time range, in chain order (the report's source).
    QueryRange {
        #[serde(default, flatten)]
        range: TimeRange,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// Integrity of the whole tenant, or of the blocks overlapping a time range.
    Verify {
        #[serde(default, flatten)]
        range: TimeRange,
    },
    /// Re-runs the recorded model on the recorded features (decrypted), or on `features`
    /// supplied by the auditor and checked against the record's `features_hmac`.
    Reexecute {
        decision_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        features: Option<Map<String, Value>>,
    },
    /// Re-decides one decision, or a model's decisions in a range (a page at a time), with
    /// another threshold and/or another registered model version (by artifact SHA-256).
    WhatIf {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model_version: Option<String>,
        #[serde(default, flatten)]
        range: TimeRange,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model_sha256: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// The access journal: who read what, when and why.
    AccessLog {
        #[serde(default, flatten)]
        range: TimeRange,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// The daily metrics read model (aggregates only, no records) for the partition dates
    /// `from` to `to`, both included (`YYYY-MM-DD`, at most 366 days), optionally of one model.
    Metrics {
        from: String,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model_name: Option<String>,
    },
    /// Records an export made by a client from answers it already received (the `dj report`
    /// files), so exports are journaled like reads.
    Export {
        #[serde(default, flatten)]
        range: TimeRange,
        format: String,
        records: u64,
    },
}

impl Operation {
    /// The operation's name as journaled.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Lookup { .. } => "lookup",
            Operation::QuerySubject { .. } => "query_subject",
            Operation::QueryModel { .. } => "query_model",
            Operation::QueryRange { .. } => "query_range",
            Operation::Verify { .. } => "verify",
            Operation::Reexecute { .. } => "reexecute",
            Operation::WhatIf { .. } => "what_if",
            Operation::AccessLog { .. } => "access_log",
            Operation::Metrics { .. } => "metrics",
            Operation::Export { .. } => "export",
        }
    }
}

/// The function's answer to an invocation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    /// The caller as established (STS-verified ARN, or the trusted local principal).
    pub principal: String,
    pub role: Option<Role>,
    /// Id of the access record journaling this request (also for refusals).
    pub access_id: String,
    pub answer: Answer,
}

/// What was found or computed, tagged by `answer`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    Records(RecordsPage),
    Verify(Box<AuditReport>),
    Reexecution(Box<Reexecution>),
    WhatIf(WhatIfPage),
    Access(AccessPage),
    Metrics(MetricsPage),
    Exported {
        records: u64,
    },
    /// The request was refused or failed; nothing was read.
    Error(ErrorAnswer),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// `bad_request`, `denied`, `not_found`, `unavailable`, `internal`.
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecordsPage {
    pub records: Vec<RecordView>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Checkpoint coverage of the tenant's chain when the answer was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointCoverage>,
}

/// One record as the caller's role may see it, with its proof.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordView {
    pub record_id: String,
    /// `found`, `archived`, `pending`, `not_found`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
    /// What masking removed (empty for auditors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<Redaction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<ArchivedNotice>,
    /// Outcomes and reviews referring to this decision (lookups only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked: Vec<RecordView>,
    /// The block is at or below the newest valid signed checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpointed: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Location {
    pub file_key: String,
    pub row_group: u32,
    pub row: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CheckpointCoverage {
    /// Number of the newest checkpoint with a valid signature.
    pub number: Option<u64>,
    pub signed_at: Option<Timestamp>,
    /// Highest chain seq it covers; blocks above are not yet checkpointed.
    pub covered_seq: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reexecution {
    pub decision: RecordView,
    /// `decrypted` (sealed features opened with the subject's key) or `supplied` (checked
    /// against `features_hmac`), or `none` for decisions that are verified but not re-run.
    pub features_source: String,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    pub artifact_sha256: Option<String>,
    /// The artifact's kind (`scorecard`, `decision_tree`, …).
    pub artifact_kind: Option<String>,
    pub original: Option<OriginalDecision>,
    pub replayed: Option<Evaluation>,
    pub comparison: Option<Comparison>,
    /// Why it was not re-run (LLM decisions are reconstructed and verified, not re-run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_rerun: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OriginalDecision {
    pub outputs: Vec<Output>,
    pub decision: String,
    pub confidence: Option<f64>,
    pub threshold: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WhatIfPage {
    /// Decisions re-decided on this page.
    pub evaluated: u64,
    /// Whose decision would change.
    pub flipped: u64,
    /// Decisions skipped, with why (no model, archived, LLM …), counted by reason.
    pub skipped: std::collections::BTreeMap<String, u64>,
    /// Counts of original → new decision labels, e.g. `"approve→refer": 12`.
    pub transitions: std::collections::BTreeMap<String, u64>,
    pub flips: Vec<Flip>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Decisions in the whole range (known from the index), for progress.
    pub total_in_range: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Flip {
    pub decision_id: String,
    pub occurred_at: Timestamp,
    pub original: String,
    pub new: String,
    pub score: Option<f64>,
}

/// Daily metrics rows (see [`crate::metrics`] for every definition), by date, then model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsPage {
    pub rows: Vec<ModelDayMetrics>,
    /// Dates of the range that have no metrics (nothing received, or not computed yet).
    pub missing_dates: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AccessPage {
    pub events: Vec<AccessEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
