//! Schema v1 of a journal record: decisions, their later outcomes, and human reviews.
//!
//! One struct serves both directions. As *received* it may carry `subject.id` and raw
//! `features`; as *stored* (what is hashed into the chain and written to Parquet) those are gone,
//! replaced by `subject_ref` and `features_hmac`, and `received_at` is set. Absent optional
//! fields are omitted, never `null`, so the canonical bytes of a stored record are unique.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical::CanonicalError;
use crate::timestamp::Timestamp;

mod canonical_form;
#[cfg(test)]
pub(crate) mod strategies;

pub use canonical_form::CanonicalRecord;
pub(crate) use canonical_form::{write_llm_json, write_steps_json};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Decision,
    Outcome,
    Review,
    /// A read of the journal (lookup, query, verify, what-if, export), written by the replay
    /// function itself: `decision_id` holds the access id, `caller.principal` the reader and
    /// `context` the [`AccessEvent`](crate::access::AccessEvent). Producers cannot send it.
    Access,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Decision => "decision",
            Kind::Outcome => "outcome",
            Kind::Review => "review",
            Kind::Access => "access",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskTier {
    Low,
    Medium,
    High,
}

impl RiskTier {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskTier::Low => "low",
            RiskTier::Medium => "medium",
            RiskTier::High => "high",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    Automated,
    Recommendation,
    HumanReview,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Confirm,
    Override,
}

impl ActionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Automated => "automated",
            ActionType::Recommendation => "recommendation",
            ActionType::HumanReview => "human_review",
        }
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirm => "confirm",
            Verdict::Override => "override",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// The raw subject identity as a producer sends it; never stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    pub artifact_sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub label: String,
    pub score: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: ActionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One evaluation step (a rule, a risk score, a model call) on the way to the decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmTokens {
    pub prompt: u32,
    pub completion: u32,
}

/// An LLM call, recorded by hashes so that prompts and responses are verifiable, not stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Llm {
    pub prompt_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<LlmParameters>,
    pub response_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<LlmTokens>,
}

/// What later happened (loan defaulted, chargeback filed …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeFields {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// A human confirming or overriding a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewFields {
    pub reviewer: String,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A journal record. See DESIGN §3 for the meaning of each field.
///
/// Identity: a decision's own id is `decision_id`; an outcome's is `outcome_id` and a review's is
/// `review_id`, while their `decision_id` names the decision they refer to. [`Record::record_id`]
/// is the idempotency key of any kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub schema_version: u32,
    pub kind: Kind,
    pub decision_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_id: Option<String>,
    pub tenant_id: String,
    #[serde(serialize_with = "timestamp_text::serialize")]
    pub occurred_at: Timestamp,
    /// Set by ingest; refused on input.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "timestamp_text::serialize_option"
    )]
    pub received_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
    /// Input only: replaced by `subject_ref` before anything is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// Set by ingest (HMAC of the subject id under the tenant key); refused on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_manifest_sha256: Option<String>,
    /// Input only: raw features; stored sealed per subject or not at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features_hmac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<Output>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_tier: Option<RiskTier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    // `llm`, `outcome` and `review` are boxed: most records have none of them, and ingest moves
    // each record several times between parse and write, so they would only widen every move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<Box<Llm>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Box<OutcomeFields>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Box<ReviewFields>>,
    /// Fraction of this kind of traffic the producer kept (1.0 = all), for reweighting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
}

impl Record {
    /// The idempotency key of this record, whatever its kind.
    pub fn record_id(&self) -> &str {
        match self.kind {
            Kind::Decision | Kind::Access => &self.decision_id,
            Kind::Outcome => self.outcome_id.as_deref().unwrap_or(&self.decision_id),
            Kind::Review => self.review_id.as_deref().unwrap_or(&self.decision_id),
        }
    }

    /// The decision an outcome or review refers to (None for decisions).
    pub fn refers_to(&self) -> Option<&str> {
        match self.kind {
            Kind::Decision | Kind::Access => None,
            Kind::Outcome | Kind::Review => Some(&self.decision_id),
        }
    }

    /// RFC 8785 bytes of the record as it stands (call on the stored form for leaf hashing).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, CanonicalError> {
        self.canonical_record().map(|c| c.bytes)
    }

    /// [`Record::canonical_bytes`] with where some members lie in them: without the
    /// `received_at` member they are the record's content (what the content MAC covers), and the
    /// free-form members are their columns' text.
    pub fn canonical_record(&self) -> Result<CanonicalRecord, CanonicalError> {
        canonical_form::record_with_spans(self)
    }

    /// True when nothing the stored form must not contain is present.
    pub fn is_stored_form(&self) -> bool {
        self.subject.is_none() && self.features.is_none() && self.received_at.is_some()
    }
}

/// Record timestamps serialized as [`Timestamp`]'s own `Serialize` does (its `Display` text,
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`), but formatted directly from the milliseconds: every record is
/// serialized on ingest, and the calendar conversion through `time` and `fmt` cost more than the
/// rest of a timestamp's share of it.
mod timestamp_text {
    use serde::{Serialize, Serializer};

    use crate::timestamp::Timestamp;

    const MS_PER_DAY: i64 = 86_400_000;

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        let text = format(*t);
        s.serialize_str(std::str::from_utf8(&text).expect("ASCII digits and separators"))
    }

    pub fn serialize_option<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        struct Text(Timestamp);
        impl Serialize for Text {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize(&self.0, s)
            }
        }
        match t {
            Some(t) => s.serialize_some(&Text(*t)),
            None => s.serialize_none(),
        }
    }

    /// The UTC text of `t`; its year has four digits (timestamps are within 2000..2100).
    pub(super) fn format(t: Timestamp) -> [u8; 24] {
        let ms = t.millis();
        let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
        let in_day = ms.rem_euclid(MS_PER_DAY);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        digits(&mut out[0..4], year);
        digits(&mut out[5..7], month);
        digits(&mut out[8..10], day);
        digits(&mut out[11..13], in_day / 3_600_000);
        digits(&mut out[14..16], in_day / 60_000 % 60);
        digits(&mut out[17..19], in_day / 1000 % 60);
        digits(&mut out[20..23], in_day % 1000);
        out
    }

    /// Writes the last `into.len()` decimal digits of `n` (≥ 0), zero-padded.
    fn digits(into: &mut [u8], mut n: i64) {
        for d in into.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }

    /// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01, by the
    /// era-of-400-years method (eras start on March 1st, so leap days end a year).
    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468; // days since 0000-03-01
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097; // 0..=146_096
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153; // 0 = March … 11 = February
        let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use proptest::prelude::*;

        /// 2000-01-01 and 2100-01-01 (exclusive), as in `Timestamp`.
        const MIN_MS: i64 = 946_684_800_000;
        const MAX_MS: i64 = 4_102_444_800_000;

        fn check(ms: i64) {
            let t = Timestamp::from_millis(ms).unwrap();
            assert_eq!(std::str::from_utf8(&format(t)).unwrap(), t.to_string());
        }

        #[test]
        fn matches_display_at_edges_and_leap_days() {
            for text in [
                "2000-01-01T00:00:00.000Z",
                "2000-02-28T23:59:59.999Z",
                "2000-02-29T00:00:00.000Z",
                "2000-03-01T00:00:00.000Z",
                "2000-12-31T23:59:59.999Z",
                "2024-02-29T12:34:56.789Z",
                "2026-03-15T10:23:45.123Z",
                "2099-12-31T23:59:59.999Z",
            ] {
                let t = Timestamp::parse(text).unwrap();
                assert_eq!(std::str::from_utf8(&format(t)).unwrap(), text);
            }
            check(MIN_MS);
            check(MAX_MS - 1);
            // Every day of the range, at a varying time of day.
            for day in 0..(MAX_MS - MIN_MS) / MS_PER_DAY {
                check(MIN_MS + day * MS_PER_DAY + (day * 7_919_011) % MS_PER_DAY);
            }
        }

        proptest! {
            #[test]
            fn matches_display(ms in MIN_MS..MAX_MS) {
                check(ms);
            }
        }
    }
}
