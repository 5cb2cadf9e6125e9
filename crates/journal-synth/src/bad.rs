//! A corpus of malformed message bodies, each paired with the rejection `parse_body` gives.
//!
//! Ingest tests send these next to good records and check that each one is dead-lettered with
//! exactly this field and reason, and that none of them ever lands in the journal.

use journal_core::timestamp::Timestamp;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::config::{Domain, SynthConfig};
use crate::generator::Generator;
use crate::sample::{self as s, Rng};

/// Where `parse_body` reports the problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `parse_body` returns `Err`: the body as a whole is unusable (field `body`).
    Body,
    /// `parse_body` returns `Ok` with exactly one record whose result is this rejection;
    /// `index` is the rejection's `record_index` (`None` for a single-object body, `Some(i)` for
    /// a record inside a packed array).
    Record { index: Option<usize> },
}

/// One malformed message and the rejection it must produce.
#[derive(Clone, Debug)]
pub struct BadMessage {
    /// Short category name (`missing_field`, `invalid_utf8`, …); several entries may share one.
    pub class: &'static str,
    pub body: Vec<u8>,
    pub scope: Scope,
    /// The rejection's `field`.
    pub field: String,
    /// A substring of the rejection's `reason`.
    pub reason_contains: String,
    /// The message's `decision_id` (fresh for every message) when it has a usable one; for
    /// outcomes and reviews their own `outcome_id`/`review_id` are fresh too.
    pub decision_id: Option<String>,
}

struct Corpus {
    rng: Rng,
    now: Timestamp,
    base: Value,
    out: Vec<BadMessage>,
}

impl Corpus {
    fn fresh_id(&mut self) -> String {
        s::ulid(&mut self.rng, self.now.millis())
    }

    /// A valid decision with a fresh id, ready to be broken.
    fn decision(&mut self) -> (Value, String) {
        let mut v = self.base.clone();
        let id = self.fresh_id();
        v["decision_id"] = json!(id);
        (v, id)
    }

    fn push(
        &mut self,
        class: &'static str,
        body: Vec<u8>,
        scope: Scope,
        field: &str,
        reason: &str,
        id: Option<String>,
    ) {
        self.out.push(BadMessage {
            class,
            body,
            scope,
            field: field.to_string(),
            reason_contains: reason.to_string(),
            decision_id: id,
        });
    }

    /// A single-record body rejected at `field`.
    fn record(
        &mut self,
        class: &'static str,
        body: impl Into<Vec<u8>>,
        field: &str,
        reason: &str,
        id: Option<String>,
    ) {
        self.push(
            class,
            body.into(),
            Scope::Record { index: None },
            field,
            reason,
            id,
        );
    }

    fn body(
        &mut self,
        class: &'static str,
        body: impl Into<Vec<u8>>,
        reason: &str,
        id: Option<String>,
    ) {
        self.push(class, body.into(), Scope::Body, "body", reason, id);
    }

    /// A decision with `edit` applied, rejected at `field`.
    fn edited(
        &mut self,
        class: &'static str,
        field: &str,
        reason: &str,
        edit: impl FnOnce(&mut Value),
    ) {
        let (mut v, id) = self.decision();
        edit(&mut v);
        let kept = v.get("decision_id").and_then(Value::as_str) == Some(id.as_str());
        self.record(class, v.to_string(), field, reason, kept.then_some(id));
    }

    /// A decision whose serialized text has `from` replaced by `to` (for what `Value` cannot hold).
    fn textual(&mut self, class: &'static str, field: &str, reason: &str, from: &str, to: &str) {
        let (v, id) = self.decision();
        let text = v.to_string();
        self.record(class, text.replacen(from, to, 1), field, reason, Some(id));
    }

    fn follow_up(&mut self, kind: &str, own_id: &str, payload: (&str, Value)) -> (Value, String) {
        let decision_id = self.fresh_id();
        let own = self.fresh_id();
        let v = json!({"schema_version": 1, "kind": kind, own_id: own, "decision_id": decision_id,
            "tenant_id": self.base["tenant_id"], "occurred_at": self.base["occurred_at"],
            payload.0: payload.1});
        (v, decision_id)
    }
}

fn remove(path: &'static [&'static str]) -> impl FnOnce(&mut Value) {
    move |v| {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut cur = v;
        for p in parents {
            cur = &mut cur[*p];
        }
        if let Some(o) = cur.as_object_mut() {
            o.remove(*last);
        }
    }
}

fn set(path: &'static [&'static str], value: Value) -> impl FnOnce(&mut Value) {
    move |v| {
        let mut cur = v;
        for p in path {
            cur = &mut cur[*p];
        }
        *cur = value;
    }
}

/// The malformed-message corpus. `now` is the instant the test will pass to `parse_body` (its
/// valid parts are dated a minute before it); message ids are derived from it, so two runs with
/// different `now` never share ids.
pub fn bad_messages(now: Timestamp) -> Vec<BadMessage> {
    let start = Timestamp::from_millis(now.millis() - 120_000).unwrap_or(now);
    let mut cfg = SynthConfig::new(now.millis() as u64);
    cfg.start = start;
    cfg.mean_gap_ms = 1;
    cfg.domains = vec![(Domain::Loan, 1)];
    cfg.outcome_rate = 0.0;
    cfg.review_rate = 0.0;
    let base = Generator::new(cfg).next().unwrap_or(Value::Null);
    let mut c = Corpus {
        rng: Rng::seed_from_u64(now.millis() as u64 ^ 0xBAD),
        now,
        base,
        out: Vec::new(),
    };

    c.edited(
        "missing_field",
        "tenant_id",
        "required field is missing",
        remove(&["tenant_id"]),
    );
    c.edited(
        "missing_field",
        "decision_id",
        "required field is missing",
        remove(&["decision_id"]),
    );
    c.edited(
        "missing_field",
        "model",
        "required for kind decision",
        remove(&["model"]),
    );
    c.edited(
        "missing_field",
        "model.artifact_sha256",
        "required field is missing",
        remove(&["model", "artifact_sha256"]),
    );
    let (mut o, id) = c.follow_up(
        "outcome",
        "outcome_id",
        ("outcome", json!({"label": "repaid"})),
    );
    remove(&["outcome_id"])(&mut o);
    c.record(
        "missing_field",
        o.to_string(),
        "outcome_id",
        "required for kind outcome",
        Some(id),
    );

    c.edited(
        "wrong_type",
        "outputs[0].score",
        "invalid type",
        set(&["outputs"], json!([{"label": "approve", "score": "high"}])),
    );
    c.edited(
        "wrong_type",
        "model.version",
        "invalid type",
        set(&["model", "version"], json!(3)),
    );
    c.edited(
        "wrong_type",
        "schema_version",
        "invalid type",
        set(&["schema_version"], json!("1")),
    );
    c.edited(
        "wrong_type",
        "features",
        "invalid type",
        set(&["features"], json!([720, 0.35])),
    );

    c.edited(
        "bad_timestamp_syntax",
        "occurred_at",
        "RFC 3339",
        set(&["occurred_at"], json!("15/03/2026 10:23")),
    );
    c.edited(
        "bad_timestamp_syntax",
        "occurred_at",
        "RFC 3339",
        set(&["occurred_at"], json!("2026-03-15T10:23:45.123")),
    );
    c.edited(
        "timestamp_out_of_range",
        "occurred_at",
        "outside the accepted range",
        set(&["occurred_at"], json!("1970-01-01T00:00:00Z")),
    );
    c.edited(
        "timestamp_out_of_range",
        "occurred_at",
        "outside the accepted range",
        set(&["occurred_at"], json!("2100-06-01T00:00:00Z")),
    );
    if let Ok(future) = Timestamp::from_millis(now.millis() + 86_400_000) {
        c.edited(
            "timestamp_in_future",
            "occurred_at",
            "in the future",
            set(&["occurred_at"], json!(future.to_string())),
        );
    }

    c.edited(
        "unknown_schema_version",
        "schema_version",
        "unsupported schema version",
        set(&["schema_version"], json!(2)),
    );
    c.edited(
        "unknown_kind",
        "kind",
        "unknown variant",
        set(&["kind"], json!("verdict")),
    );

    c.edited(
        "empty_string",
        "decision_id",
        "must not be empty",
        set(&["decision_id"], json!("")),
    );
    c.edited(
        "empty_string",
        "tenant_id",
        "must not be empty",
        set(&["tenant_id"], json!("")),
    );
    c.edited(
        "empty_string",
        "decision",
        "must not be empty",
        set(&["decision"], json!("")),
    );
    c.edited(
        "empty_string",
        "subject.id",
        "must not be empty",
        set(&["subject", "id"], json!("   ")),
    );

    c.edited(
        "oversized_string",
        "rationale",
        "over the limit",
        set(&["rationale"], json!("x".repeat(5000))),
    );
    c.edited(
        "oversized_string",
        "model.name",
        "over the limit",
        set(&["model", "name"], json!("m".repeat(300))),
    );
    let (mut v, id) = c.decision();
    let long_id = format!("{id}{}", "0".repeat(129 - id.len()));
    v["decision_id"] = json!(long_id);
    c.record(
        "oversized_string",
        v.to_string(),
        "decision_id",
        "over the limit",
        Some(long_id),
    );

    let (mut v, id) = c.decision();
    v["confidence"] = json!(0.5);
    let text = v
        .to_string()
        .replacen("\"confidence\":0.5", "\"confidence\":1e999", 1);
    c.record(
        "non_finite_number",
        text,
        "confidence",
        "not finite",
        Some(id),
    );
    let (mut v, id) = c.decision();
    v["outputs"] = json!([{"label": "approve", "score": 0.5}, {"label": "deny", "score": 0.5}]);
    let text = v
        .to_string()
        .replacen("\"score\":0.5", "\"score\":1e999", 1);
    c.record(
        "non_finite_number",
        text,
        "outputs[0].score",
        "not finite",
        Some(id),
    );
    c.edited(
        "non_finite_number",
        "features",
        "2^53",
        set(
            &["features", "credit_score"],
            json!(9_007_199_254_740_993u64),
        ),
    );

    let (v, id) = c.decision();
    let mut bytes = v.to_string().into_bytes();
    if let Some(at) = find(&bytes, b"\"rationale\":\"") {
        bytes[at + 13] = 0xff;
    }
    c.body("invalid_utf8", bytes, "invalid UTF-8", Some(id));
    c.textual(
        "invalid_unicode_escape",
        "rationale",
        "invalid Unicode",
        "\"rationale\":\"",
        "\"rationale\":\"\\ud800 ",
    );

    let (mut v, id) = c.decision();
    v["rationale"] = json!("y".repeat(300 * 1024));
    c.body("body_too_large", v.to_string(), "over the limit", Some(id));
    c.edited(
        "record_too_large",
        "record",
        "over the limit",
        set(&["features", "notes"], json!("z".repeat(70 * 1024))),
    );
    c.body(
        "too_many_records",
        format!("[{}{{}}]", "{},".repeat(1000)),
        "over the limit of 1000",
        None,
    );

    c.edited(
        "unknown_field",
        "colour",
        "not a schema v1 field",
        set(&["colour"], json!("red")),
    );
    c.edited(
        "unknown_field",
        "model.tag",
        "not a schema v1 field",
        set(&["model", "tag"], json!("latest")),
    );
    c.textual(
        "duplicate_key",
        "decision",
        "must be unique",
        "\"decision\":",
        "\"decision\":\"deny\",\"decision\":",
    );

    c.body("not_json", "hello", "not JSON", None);
    c.body("not_json", "", "empty body", None);
    c.body("not_json", "[1,", "not a JSON array", None);
    // Cut off after a complete member, so the parser fails at the top level.
    let id = c.fresh_id();
    let text = format!("{{\"schema_version\":1,\"kind\":\"decision\",\"decision_id\":\"{id}\",");
    c.record("not_json", text, "record", "EOF", Some(id));
    c.body("empty_array", "[]", "empty array", None);

    c.edited(
        "set_by_ingest",
        "subject_ref",
        "set by ingest",
        set(&["subject_ref"], json!("ab".repeat(32))),
    );
    c.edited(
        "set_by_ingest",
        "received_at",
        "set by ingest",
        set(&["received_at"], json!(now.to_string())),
    );

    let (v, id) = c.follow_up(
        "review",
        "review_id",
        (
            "review",
            json!({"reviewer": "underwriter_007", "verdict": "override"}),
        ),
    );
    c.record(
        "override_without_label",
        v.to_string(),
        "review.override_label",
        "required when verdict",
        Some(id),
    );
    let (v, id) = c.follow_up(
        "review",
        "review_id",
        (
            "review",
            json!({"reviewer": "underwriter_007", "verdict": "confirm", "override_label": "deny"}),
        ),
    );
    c.record(
        "confirm_with_label",
        v.to_string(),
        "review.override_label",
        "only allowed",
        Some(id),
    );

    c.edited(
        "invalid_value",
        "tenant_id",
        "not allowed",
        set(&["tenant_id"], json!("bank#1")),
    );
    c.edited(
        "invalid_value",
        "model.artifact_sha256",
        "64 lowercase hex",
        set(&["model", "artifact_sha256"], json!("XYZ")),
    );
    c.edited(
        "invalid_value",
        "confidence",
        "outside [0, 1]",
        set(&["confidence"], json!(1.5)),
    );
    c.edited(
        "invalid_value",
        "outputs",
        "needs 1..=",
        set(&["outputs"], json!([])),
    );
    c.edited(
        "wrong_kind_shape",
        "outcome",
        "not allowed for kind decision",
        set(&["outcome"], json!({"label": "repaid"})),
    );

    // The same record-level problem inside a packed array is reported with its index.
    let (mut v, id) = c.decision();
    remove(&["outputs"])(&mut v);
    let body = crate::producer_body_batch(&[v]);
    c.push(
        "packed_bad_record",
        body,
        Scope::Record { index: Some(0) },
        "outputs",
        "required for kind decision",
        Some(id),
    );
    c.out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
