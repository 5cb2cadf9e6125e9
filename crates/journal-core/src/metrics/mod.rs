//! The daily metrics read model (DESIGN §8): per tenant, day and model version, how many
//! decisions were made with which label and confidence, how many were reviewed or overridden by
//! a person, and which outcomes arrived. Stored as one small Parquet file per tenant and day
//! (`metrics/tenant=T/date=D/metrics.parquet`, [`crate::layout::metrics_key`]) that DuckDB,
//! pyarrow and Athena read directly; `docs/metrics.md` has the schema and query examples.
//!
//! # Definitions
//!
//! A row ([`ModelDayMetrics`]) is per `(tenant_id, date, model_name, model_version)`.
//!
//! - **date** is the partition date of the journal files: the UTC day the journal *received*
//!   the records (the `date=` part of the file key, [`crate::layout::date_of_file_key`]), not
//!   the day they occurred. A day's metrics then come from exactly one manifest partition, so
//!   a refresh reads one day's files and a late record can never change an older day.
//! - **decisions**: `decision` records. Counted by label (`decision`, which validation
//!   requires of every decision; the first output's label would stand in if it were absent).
//!   **Confidence** (`confidence`, in `[0, 1]` by validation) of those that carry one:
//!   count, mean (compensated running sum), and the nearest-rank p50/p90/p99 read from a
//!   fixed histogram of [`CONFIDENCE_BINS`] equal bins over `[0, 1]`: the bin that holds the
//!   rank's value reports its upper edge, capped at the largest value seen, so a percentile is
//!   exact to within `1e-4` (one bin) whatever the number of decisions, in constant memory.
//! - **reviews**: `review` records; **overrides** are those with verdict `override` (validation
//!   makes that the same as carrying an `override_label`). `review_share` = reviews /
//!   decisions, `override_share` = overrides / reviews.
//! - **outcomes**: `outcome` records, counted by `outcome.label`. `outcome_rate` = outcomes /
//!   decisions, and per label in `outcome_rate_by_label`.
//! - Reviews and outcomes do not name a model: each is counted under the model of the decision
//!   its `decision_id` names, looked up in the index (a decision seen earlier in the same
//!   refresh is remembered, within a bounded cache). One whose decision cannot be found is
//!   counted under model name `""`, version `""`: **unattributed**.
//! - Follow-ups are counted on the day *they* are received, decisions on theirs: the shares
//!   and rates compare two counts of the same day (a flow, not a cohort), so they can exceed 1
//!   when an older cohort's outcomes arrive. A ratio whose denominator is 0 is absent (`null`).
//! - Access records (reads journaled by the replay function) are not counted.
//! - At most [`MAX_LABELS`] distinct labels are kept per row and kind; further labels are
//!   counted together under [`OTHER_LABEL`].
//!
//! # Which files count
//!
//! [`refresh_day`] counts every file of the day whose manifest state is `live`, once: a
//! compacted input is skipped once its output is live (the output holds its rows). While a
//! merge is in flight (a merged output still `pending`, or a `compacted` input whose output is
//! not live yet) the day is refused with [`MetricsError::Unsettled`] and nothing is written,
//! so the caller refreshes again after compaction finishes. Files an ingest has not finished
//! (`pending`, `chained`) are not counted yet: their records are not acknowledged.

mod accumulate;
mod codec;
mod dates;
mod refresh;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use accumulate::{
    Attribution, ConfidenceHistogram, DayAccumulator, ATTRIBUTION_CACHE_ENTRIES, CONFIDENCE_BINS,
};
pub use codec::{decode_metrics, encode_metrics, metrics_schema, METRICS_FORMAT_KEY};
pub use dates::{days_between, parse_date, MAX_DAYS};
pub use refresh::{read_days, refresh_day};

use crate::ports::PortError;

/// Distinct labels kept per row for decisions and for outcomes.
pub const MAX_LABELS: usize = 1000;
/// Where labels beyond [`MAX_LABELS`] are counted.
pub const OTHER_LABEL: &str = "(other)";

/// One day of one model version of one tenant (see the module docs for every definition).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelDayMetrics {
    pub tenant_id: String,
    /// `YYYY-MM-DD`, the partition (receive) date.
    pub date: String,
    /// `""` for unattributed reviews and outcomes.
    pub model_name: String,
    pub model_version: String,
    pub decisions: u64,
    pub decisions_by_label: BTreeMap<String, u64>,
    /// Decisions that carry a confidence.
    pub confidence_count: u64,
    pub confidence_mean: Option<f64>,
    pub confidence_p50: Option<f64>,
    pub confidence_p90: Option<f64>,
    pub confidence_p99: Option<f64>,
    pub reviews: u64,
    pub overrides: u64,
    /// reviews / decisions.
    pub review_share: Option<f64>,
    /// overrides / reviews.
    pub override_share: Option<f64>,
    pub outcomes: u64,
    pub outcomes_by_label: BTreeMap<String, u64>,
    /// outcomes / decisions.
    pub outcome_rate: Option<f64>,
    /// outcomes with the label / decisions.
    pub outcome_rate_by_label: BTreeMap<String, f64>,
}

impl ModelDayMetrics {
    /// The row of reviews and outcomes whose decision was not found.
    pub fn is_unattributed(&self) -> bool {
        self.model_name.is_empty() && self.model_version.is_empty()
    }
}

/// `numerator / denominator`, absent when there is nothing to divide by.
pub(crate) fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A merge of the day is in flight; counting now could count its rows twice or not at all.
    #[error(
        "metrics of tenant {tenant_id} for {date} not refreshed: {file_key} is part of a merge \
         in flight; refresh again after compaction finishes"
    )]
    Unsettled {
        tenant_id: String,
        date: String,
        file_key: String,
    },
    /// A file of the day is in an archive storage class; the metrics written while it was hot
    /// stand.
    #[error("metrics of tenant {tenant_id} for {date} not refreshed: {file_key} is archived")]
    Archived {
        tenant_id: String,
        date: String,
        file_key: String,
    },
    /// The manifest names a live file that storage does not have.
    #[error("live file {file_key} is missing from storage")]
    MissingFile { file_key: String },
    /// A journal file (or a metrics file) that cannot be decoded.
    #[error("{key}: {reason}")]
    Decode { key: String, reason: String },
    /// The metrics could not be encoded (never for well-formed rows).
    #[error("encoding metrics for {key}: {reason}")]
    Encode { key: String, reason: String },
    /// A storage or index call failed.
    #[error("{what}: {source}")]
    Port {
        what: String,
        #[source]
        source: PortError,
    },
    /// A date argument that is not a `YYYY-MM-DD` calendar date in 2000..2099.
    #[error("{field}: {value:?} is not a date (YYYY-MM-DD, 2000-01-01 to 2099-12-31)")]
    BadDate { field: &'static str, value: String },
    #[error("tenant_id: {value:?} is not a tenant id (1-64 of A-Z a-z 0-9 _ - . :)")]
    BadTenant { value: String },
    #[error("from ({from}) is after to ({to}); both days are included")]
    Inverted { from: String, to: String },
    #[error("{from} to {to} spans {days} days; at most {MAX_DAYS} are read at once")]
    RangeTooLong { from: String, to: String, days: u64 },
}

impl MetricsError {
    /// The caller's input is wrong (as opposed to storage or data).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            MetricsError::BadDate { .. }
                | MetricsError::BadTenant { .. }
                | MetricsError::Inverted { .. }
                | MetricsError::RangeTooLong { .. }
        )
    }
}
