//! Deterministic synthetic decisions for tests, benchmarks and the demo.
//!
//! [`Generator`] yields producer-form records (raw `subject.id` and `features`, no fields that
//! ingest sets) as `serde_json::Value`s, in non-decreasing `occurred_at` order, for four domains:
//! loan underwriting, card fraud, content moderation and LLM-assisted ticket triage. Decisions are
//! interleaved with `outcome` and `review` records that refer to earlier decisions of the same
//! tenant. Everything derives from [`SynthConfig::seed`] through ChaCha8, never the clock, so the
//! same configuration gives byte-identical output on every machine.
//!
//! Serialized decisions average about 910 bytes with the default mix (loan ≈ 1045, fraud ≈ 840,
//! moderation ≈ 840, LLM ≈ 1250); outcomes and reviews are 350–450 bytes.
//!
//! Loan, fraud and moderation decisions are made by evaluating real model artifacts (a
//! scorecard, a logistic regression, a decision tree, gradient-boosted tree ensembles and rule
//! sets in the `dj-model/v1` format of [`journal_core::models`]) on the generated features;
//! [`model_artifacts`] lists them with their registry metadata, and every such decision records
//! its artifact's real SHA-256. Replaying a decision's artifact on its features reproduces its
//! `outputs`, `decision`, `confidence` and `threshold` exactly. LLM decisions are not re-run.
//!
//! [`bad_messages`] is the matching corpus of malformed bodies with the rejection each must get.
//!
//! ```
//! use journal_synth::{generate, SynthConfig};
//! let records = generate(SynthConfig::new(42), 100);
//! assert_eq!(records.len(), 100);
//! assert_eq!(records[0]["schema_version"], 1);
//! ```

mod bad;
mod config;
mod domains;
mod followups;
mod generator;
mod models;
mod sample;

#[cfg(test)]
mod tests;

use journal_core::timestamp::Timestamp;
use serde_json::Value;

pub use bad::{bad_messages, BadMessage, Scope};
pub use config::{Domain, SynthConfig};
pub use domains::domain_of;
pub use generator::Generator;
pub use models::{model_artifact, model_artifacts};

/// The first `n` records (all kinds) of the stream for `cfg`.
pub fn generate(cfg: SynthConfig, n: usize) -> Vec<Value> {
    Generator::new(cfg).take(n).collect()
}

/// The first `n` decisions of the stream for `cfg`, skipping outcomes and reviews. They are the
/// same decisions [`generate`] interleaves with follow-ups.
pub fn generate_decisions(cfg: SynthConfig, n: usize) -> Vec<Value> {
    Generator::new(cfg)
        .filter(|r| r["kind"] == "decision")
        .take(n)
        .collect()
}

/// The stream for `cfg` up to its `n`-th decision: those decisions and the outcomes and reviews
/// that followed them meanwhile (the stream stops before the next decision).
pub fn generate_with_followups(cfg: SynthConfig, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut decisions = 0;
    for r in Generator::new(cfg) {
        if r["kind"] == "decision" {
            if decisions == n {
                break;
            }
            decisions += 1;
        }
        out.push(r);
    }
    out
}

/// The idempotency key of a generated record, whatever its kind (what `Record::record_id`
/// gives once parsed).
pub fn record_id(record: &Value) -> String {
    let key = match record["kind"].as_str() {
        Some("outcome") => "outcome_id",
        Some("review") => "review_id",
        _ => "decision_id",
    };
    record[key].as_str().unwrap_or_default().to_string()
}

/// One record as a message body (a JSON object).
pub fn producer_body(record: &Value) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}

/// Several records packed into one message body (a JSON array), as the producer client sends
/// them to save SQS calls.
pub fn producer_body_batch(records: &[Value]) -> Vec<u8> {
    // Serializing a `Value` cannot fail: its keys are strings and its numbers finite.
    serde_json::to_vec(records).unwrap_or_default()
}

/// The latest `occurred_at` among `records` (a `now` at or after it makes all of them valid).
pub fn latest_occurred_at(records: &[Value]) -> Option<Timestamp> {
    records
        .iter()
        .filter_map(|r| r["occurred_at"].as_str())
        .filter_map(|t| Timestamp::parse(t).ok())
        .max()
}
