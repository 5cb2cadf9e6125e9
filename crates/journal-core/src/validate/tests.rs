use super::*;
use serde_json::json;

fn now() -> Timestamp {
    Timestamp::parse("2026-03-16T00:00:00Z").unwrap()
}

fn loan() -> Value {
    json!({"schema_version":1,"kind":"decision","decision_id":"01JD6Z6M4Y8N3K2Q0V5R7T9W1X",
      "tenant_id":"bank_456","occurred_at":"2026-03-15T10:23:45.123Z",
      "caller":{"principal":"arn:aws:iam::123456789012:role/loan-api","service":"loan-api"},
      "subject":{"id":"user_123"},
      "model":{"name":"credit-risk","version":"3.2.0","artifact_sha256":"9f2c".repeat(16)},
      "dataset_manifest_sha256":"abc1".repeat(16),
      "features":{"credit_score":720,"annual_income":120000,"dti_ratio":0.35,"employment_years":5},
      "outputs":[{"label":"approve","score":0.92},{"label":"deny","score":0.08}],
      "decision":"approve","confidence":0.92,"threshold":0.75,
      "rationale":"Strong credit score, stable income, DTI 0.35",
      "action":{"type":"automated","detail":"offer issued"},"risk_tier":"high"})
}

fn one(body: &str) -> Result<Record, Rejection> {
    let mut parsed = parse_body(body.as_bytes(), &Limits::default(), now())?;
    assert_eq!(parsed.len(), 1);
    parsed.remove(0).result
}

fn reject(v: Value) -> Rejection {
    one(&v.to_string()).expect_err("should be rejected")
}

fn with(path: &[&str], value: Value) -> Value {
    let mut v = loan();
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = cur.get_mut(*p).unwrap();
    }
    cur[path[path.len() - 1]] = value;
    v
}

fn without(field: &str) -> Value {
    let mut v = loan();
    v.as_object_mut().unwrap().remove(field);
    v
}

#[track_caller]
fn assert_rejects(r: Rejection, field: &str, reason_part: &str) {
    assert_eq!(r.field, field, "field of {r:?}");
    assert!(
        r.reason.contains(reason_part),
        "reason {:?} should mention {reason_part:?}",
        r.reason
    );
}

#[test]
fn accepts_the_design_example() {
    let r = one(&loan().to_string()).unwrap();
    assert_eq!(r.record_id(), "01JD6Z6M4Y8N3K2Q0V5R7T9W1X");
    assert_eq!(r.occurred_at.to_string(), "2026-03-15T10:23:45.123Z");
}

#[test]
fn missing_and_wrong_typed_fields_are_named() {
    assert_rejects(reject(without("tenant_id")), "tenant_id", "missing");
    assert_rejects(
        reject(without("model")),
        "model",
        "required for kind decision",
    );
    assert_rejects(
        reject(with(
            &["outputs"],
            json!([{"label":"approve","score":"high"}]),
        )),
        "outputs[0].score",
        "invalid type",
    );
    assert_rejects(
        reject(with(&["model", "version"], json!(3))),
        "model.version",
        "invalid type",
    );
    let mut v = loan();
    v["model"]
        .as_object_mut()
        .unwrap()
        .remove("artifact_sha256");
    assert_rejects(reject(v), "model.artifact_sha256", "missing");
}

#[test]
fn unknown_version_kind_and_fields() {
    assert_rejects(
        reject(with(&["schema_version"], json!(2))),
        "schema_version",
        "unsupported",
    );
    assert_rejects(
        reject(with(&["kind"], json!("verdict"))),
        "kind",
        "unknown variant",
    );
    assert_rejects(
        reject(with(&["colour"], json!("red"))),
        "colour",
        "not a schema v1 field",
    );
    assert_rejects(
        reject(with(&["subject_ref"], json!("ab"))),
        "subject_ref",
        "set by ingest",
    );
}

#[test]
fn bad_timestamps() {
    assert_rejects(
        reject(with(&["occurred_at"], json!("15/03/2026 10:23"))),
        "occurred_at",
        "RFC 3339",
    );
    assert_rejects(
        reject(with(&["occurred_at"], json!("2026-03-15T10:23:45.123"))),
        "occurred_at",
        "RFC 3339",
    );
    assert_rejects(
        reject(with(&["occurred_at"], json!("2027-01-01T00:00:00Z"))),
        "occurred_at",
        "future",
    );
    assert_rejects(
        reject(with(&["occurred_at"], json!("1970-01-01T00:00:00Z"))),
        "occurred_at",
        "range",
    );
}

#[test]
fn empty_oversized_and_unsafe_strings() {
    assert_rejects(
        reject(with(&["decision_id"], json!(""))),
        "decision_id",
        "empty",
    );
    assert_rejects(
        reject(with(&["decision"], json!("  "))),
        "decision",
        "empty",
    );
    assert_rejects(
        reject(with(&["decision_id"], json!("a".repeat(129)))),
        "decision_id",
        "over the limit",
    );
    assert_rejects(
        reject(with(&["tenant_id"], json!("bank#1"))),
        "tenant_id",
        "not allowed",
    );
    assert_rejects(
        reject(with(&["rationale"], json!("x".repeat(5000)))),
        "rationale",
        "over the limit",
    );
    assert_rejects(
        reject(with(&["model", "artifact_sha256"], json!("XYZ"))),
        "model.artifact_sha256",
        "64 lowercase hex",
    );
}

#[test]
fn limits_count_characters_and_a_bad_id_character_is_named_whole() {
    let max = Limits::default().max_short_string;
    // Two bytes a character: over the limit in bytes, within it in characters.
    let fits = one(&with(&["decision"], json!("é".repeat(max))).to_string()).unwrap();
    assert_eq!(fits.decision.unwrap().chars().count(), max);
    assert_rejects(
        reject(with(&["decision"], json!("é".repeat(max + 1)))),
        "decision",
        &format!("{} characters, over the limit of {max}", max + 1),
    );
    assert_rejects(
        reject(with(&["decision_id"], json!("d-1\u{e9}x"))),
        "decision_id",
        "character 'é' not allowed",
    );
}

#[test]
fn non_finite_and_out_of_range_numbers() {
    // JSON has no NaN literal; an overflowing literal is how infinities arrive.
    let body = loan().to_string().replace("0.92}", "1e999}");
    assert_rejects(one(&body).unwrap_err(), "outputs[0].score", "not finite");
    let body = loan()
        .to_string()
        .replace("\"score\":0.08", "\"score\":NaN");
    let r = one(&body).unwrap_err();
    assert_eq!(r.field, "outputs[1].score");
    assert_rejects(
        reject(with(&["confidence"], json!(1.5))),
        "confidence",
        "outside [0, 1]",
    );
    assert_rejects(
        reject(with(&["features", "big"], json!(9007199254740993u64))),
        "features",
        "2^53",
    );
}

#[test]
fn invalid_unicode_and_utf8() {
    let body = loan()
        .to_string()
        .replace("Strong credit score", "Strong \\ud800 score");
    assert_rejects(one(&body).unwrap_err(), "rationale", "Unicode");
    let mut bytes = loan().to_string().into_bytes();
    let at = bytes.len() - 10;
    bytes[at] = 0xff;
    let r = parse_body(&bytes, &Limits::default(), now()).unwrap_err();
    assert_rejects(r, "body", "invalid UTF-8");
}

#[test]
fn body_limits_and_shapes() {
    let limits = Limits {
        max_body_bytes: 100,
        ..Limits::default()
    };
    let r = parse_body(loan().to_string().as_bytes(), &limits, now()).unwrap_err();
    assert_rejects(r, "body", "over the limit");
    for (body, why) in [
        ("", "empty body"),
        ("[]", "empty array"),
        ("hello", "not JSON"),
        ("[1,", "not a JSON array"),
    ] {
        let r = parse_body(body.as_bytes(), &Limits::default(), now()).unwrap_err();
        assert_rejects(r, "body", why);
    }
    assert_rejects(one("{\"schema_version\":1,").unwrap_err(), "record", "EOF");
}

#[test]
fn packed_array_judges_each_record_alone() {
    let good = loan();
    let mut bad = loan();
    bad["decision_id"] = json!("second");
    bad["outputs"] = json!([]);
    let body = json!([good, bad]).to_string();
    let parsed = parse_body(body.as_bytes(), &Limits::default(), now()).unwrap();
    assert!(parsed[0].result.is_ok());
    let r = parsed[1].result.as_ref().unwrap_err();
    assert_eq!(r.record_index, Some(1));
    assert_eq!(r.field, "outputs");
    assert_eq!(raw_text(body.as_bytes(), &parsed[0].raw), good.to_string());
    assert_eq!(raw_text(body.as_bytes(), &parsed[1].raw), bad.to_string());
}

#[test]
fn kind_shapes_for_outcomes_and_reviews() {
    let outcome = json!({"schema_version":1,"kind":"outcome","outcome_id":"o1","decision_id":"d1",
        "tenant_id":"t","occurred_at":"2026-03-15T10:00:00Z","outcome":{"label":"repaid","value":1}});
    let r = one(&outcome.to_string()).unwrap();
    assert_eq!(r.record_id(), "o1");
    assert_eq!(r.refers_to(), Some("d1"));
    let review = json!({"schema_version":1,"kind":"review","review_id":"r1","decision_id":"d1",
        "tenant_id":"t","occurred_at":"2026-03-15T10:00:00Z",
        "review":{"reviewer":"alice","verdict":"override"}});
    assert_rejects(
        reject(review),
        "review.override_label",
        "required when verdict",
    );
    let mut o = outcome.clone();
    o.as_object_mut().unwrap().remove("outcome_id");
    assert_rejects(reject(o), "outcome_id", "required for kind outcome");
    let mut d = loan();
    d["outcome"] = json!({"label":"x"});
    assert_rejects(reject(d), "outcome", "not allowed for kind decision");
    let mut o = outcome.clone();
    o["decision"] = json!("approve");
    assert_rejects(reject(o), "decision", "not allowed for kind outcome");
    let mut o = outcome.clone();
    o["kind"] = json!("review");
    o["review_id"] = json!("r2");
    o["review"] = json!({"reviewer":"bob","verdict":"confirm"});
    o.as_object_mut().unwrap().remove("outcome_id");
    o.as_object_mut().unwrap().remove("outcome");
    o["outputs"] = json!([{"label":"x","score":1}]);
    assert_rejects(reject(o), "outputs", "not allowed for kind review");
}

#[test]
fn duplicate_keys_are_refused() {
    let body = loan().to_string().replacen(
        "\"decision\":\"approve\"",
        "\"decision\":\"approve\",\"decision\":\"deny\"",
        1,
    );
    assert_rejects(one(&body).unwrap_err(), "decision", "must be unique");
}
