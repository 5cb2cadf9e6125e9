//! The published JSON Schema (`schema/decision-record.v1.schema.json`, applied by
//! `schema/validate.py`) against the Rust validator it describes, which stays the authority:
//!
//! - every record the synthetic generator makes (all domains, all kinds, several seeds) is valid;
//! - every malformed-corpus record the validator rejects is refused by the schema, except for the
//!   rules listed below that JSON Schema cannot express;
//! - hand-made edge cases and a few thousand random timestamps get the same verdict from both,
//!   except for the documented differences, each of which must still show up as documented (so
//!   the list cannot go stale).
//!
//! Needs only the pinned venv (`DJ_PYTHON`), not the AWS endpoint.

use std::collections::BTreeSet;

use anyhow::{ensure, Context, Result};
use integration_tests::schema_check::{check_records, SchemaVerdict};
use journal_core::timestamp::Timestamp;
use journal_core::validate::{parse_body, parse_record, raw_text, Limits, Rejection};
use journal_synth::{bad_messages, domain_of, generate, latest_occurred_at, Domain, SynthConfig};
use serde_json::{json, Value};

/// Rules the validator applies to a message body as a whole, before reading any record; a
/// record's schema has nothing to say about them (matched against the rejection's reason).
const BODY_RULES: &[&str] = &[
    "invalid UTF-8",     // bodies must be UTF-8
    "over the limit of", // body size (256 KiB) and records per array (1000)
    "empty array",       // an array needs a record
    "empty body",        // nothing at all
    "not JSON",          // neither an object nor an array
    "not a JSON array",  // an array that does not parse
];

/// Why a record-level rejection lies outside what JSON Schema can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Beyond {
    /// The JSON text itself (duplicate keys, lone surrogates, nesting depth, syntax): a schema
    /// judges the parsed value, so validate.py checks these before the schema.
    Text,
    /// `occurred_at` too far in the future: relative to ingest's clock.
    Clock,
    /// The serialized record over 64 KiB: JSON Schema measures values, not their text.
    Size,
}

fn beyond_schema(r: &Rejection, raw: &str) -> Option<Beyond> {
    if r.field == "occurred_at" && r.reason.contains("in the future") {
        return Some(Beyond::Clock);
    }
    if r.field == "record" && r.reason.contains("bytes, over the limit") {
        return Some(Beyond::Size);
    }
    // serde_json refuses a number that overflows to infinity while parsing, but that one the
    // schema can refuse (parsers that accept it give an infinity, over the schema's bounds).
    let unparsable =
        serde_json::from_str::<Value>(raw).is_err() && !r.reason.contains("not finite");
    if unparsable || r.reason.contains("duplicate field") {
        return Some(Beyond::Text);
    }
    None
}

/// A documented difference between the schema and the validator (the schema's `$comment`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// An integer field written as 1.0 or 1e0: JSON Schema calls it an integer, serde does not.
    /// The validator refuses, the schema accepts.
    IntegerWrittenAsFloat,
    /// An integer-valued number beyond ±2^53 in free-form JSON written as a float (1e300), or
    /// beyond 64 bits: the validator reads it as a float and accepts; the schema refuses.
    LargeIntegralFloat,
    /// occurred_at on the first or last day of the range with a non-zero offset: the validator
    /// applies the range to the UTC instant, the schema to the written year. Either way round.
    RangeEdgeWithOffset,
    /// A leap second at a UTC month end written with a non-zero offset: the validator accepts,
    /// the schema (which takes :60 only at offset zero) refuses.
    LeapSecondWithOffset,
}

impl Known {
    /// Whether the two verdicts differ as this entry says they do.
    fn explains(self, rust_ok: bool, schema_ok: bool) -> bool {
        match self {
            Known::IntegerWrittenAsFloat => !rust_ok && schema_ok,
            Known::LargeIntegralFloat | Known::LeapSecondWithOffset => rust_ok && !schema_ok,
            Known::RangeEdgeWithOffset => rust_ok != schema_ok,
        }
    }
}

/// Whether the schema's errors point at `field` (the validator's path, e.g. `outputs[0].score`)
/// or inside it, or name it (a missing or unexpected property is reported at its parent).
fn field_mentioned(verdict: &SchemaVerdict, field: &str) -> bool {
    let path = if field == "record" {
        "$".to_string()
    } else {
        format!("$.{field}")
    };
    let last = field
        .rsplit(['.', ']'])
        .find(|s| !s.is_empty())
        .unwrap_or(field);
    verdict.errors.iter().any(|e| {
        e.strip_prefix(&path)
            .is_some_and(|rest| rest.starts_with([':', '.', '[']))
            || e.contains(&format!("'{last}'"))
    })
}

#[test]
fn every_generated_record_is_valid_under_the_schema() -> Result<()> {
    let mut records = Vec::new();
    for seed in [1, 7, 42, 2026] {
        let mut cfg = SynthConfig::new(seed);
        // More follow-ups than the default mix, so that outcomes and reviews come by hundreds.
        cfg.outcome_rate = 0.5;
        cfg.review_rate = 0.3;
        cfg.include_features = seed != 7;
        records.extend(generate(cfg, 1_000));
    }
    let now = latest_occurred_at(&records)
        .context("dated records")?
        .max(Timestamp::now());
    let texts: Vec<String> = records.iter().map(Value::to_string).collect();
    for (r, text) in records.iter().zip(&texts) {
        parse_record(text, &Limits::default(), now)
            .map_err(|e| anyhow::anyhow!("the validator refuses generated {r}: {e}"))?;
    }

    // What the records exercise, so that "all valid" covers the schema's branches.
    let mut seen = BTreeSet::new();
    for r in &records {
        let kind = r["kind"].as_str().unwrap_or_default().to_string();
        if let Some(d) = domain_of(r) {
            seen.insert(format!("{kind}/{}", d.as_str()));
        }
        for (key, value) in r.as_object().into_iter().flatten() {
            seen.insert(key.clone());
            for sub in value.as_object().into_iter().flat_map(|o| o.keys()) {
                seen.insert(format!("{key}.{sub}"));
            }
        }
        if let Some(tier) = r["risk_tier"].as_str() {
            seen.insert(format!("risk_tier={tier}"));
        }
        if let Some(v) = r.pointer("/review/verdict").and_then(Value::as_str) {
            seen.insert(format!("verdict={v}"));
        }
    }
    let mut expected: Vec<String> = Domain::ALL
        .iter()
        .flat_map(|d| ["decision", "outcome", "review"].map(|k| format!("{k}/{}", d.as_str())))
        .collect();
    expected.extend(
        [
            "caller.principal",
            "caller.service",
            "subject.id",
            "model",
            "features",
            "dataset_manifest_sha256",
            "outputs",
            "confidence",
            "threshold",
            "rationale",
            "explanation_ref",
            "action.type",
            "action.detail",
            "steps",
            "llm.parameters",
            "llm.tokens",
            "sampling_rate",
            "context",
            "outcome.value",
            "review.override_label",
            "review.notes",
            "risk_tier=low",
            "risk_tier=medium",
            "risk_tier=high",
            "verdict=confirm",
            "verdict=override",
        ]
        .map(String::from),
    );
    let missing: Vec<&String> = expected.iter().filter(|e| !seen.contains(*e)).collect();
    ensure!(
        missing.is_empty(),
        "the generated records never carry {missing:?}"
    );

    let verdicts = check_records(&texts)?;
    let refused: Vec<(&String, &SchemaVerdict)> = texts
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| !v.valid)
        .collect();
    ensure!(
        refused.is_empty(),
        "the schema refuses {} of {} generated records, e.g. {:?}",
        refused.len(),
        texts.len(),
        refused.first()
    );
    Ok(())
}

#[test]
fn the_malformed_corpus_is_refused_by_the_schema_where_json_schema_can_say_so() -> Result<()> {
    let now = Timestamp::now();
    let limits = Limits::default();
    let mut records = Vec::new();
    let mut body_level = 0;
    for bad in bad_messages(now) {
        match parse_body(&bad.body, &limits, now) {
            Err(r) => {
                ensure!(
                    BODY_RULES.iter().any(|rule| r.reason.contains(rule)),
                    "{}: body rejection not listed in BODY_RULES: {r}",
                    bad.class
                );
                body_level += 1;
            }
            Ok(parsed) => records.extend(
                parsed
                    .into_iter()
                    .map(|p| (bad.class, raw_text(&bad.body, &p.raw), p.result.err())),
            ),
        }
    }
    let texts: Vec<String> = records.iter().map(|(_, raw, _)| raw.clone()).collect();
    let verdicts = check_records(&texts)?;

    let mut by_schema = 0;
    let mut beyond = Vec::new();
    for ((class, raw, rejection), verdict) in records.iter().zip(&verdicts) {
        let Some(r) = rejection else {
            ensure!(
                verdict.valid,
                "{class}: accepted by the validator, refused by the schema: {verdict:?}"
            );
            continue;
        };
        match beyond_schema(r, raw) {
            Some(Beyond::Text) => ensure!(
                verdict.refused_as_text(),
                "{class}: the JSON text is refused ({r}), not by validate.py: {verdict:?}"
            ),
            // The rest of such a record is fine: the schema must accept it, which shows that
            // the rule, not something else, is what it misses.
            Some(b @ (Beyond::Clock | Beyond::Size)) => {
                ensure!(
                    verdict.valid,
                    "{class}: {b:?}, yet the schema refuses: {verdict:?}"
                );
                beyond.push((*class, b));
            }
            None => {
                ensure!(
                    !verdict.valid && !verdict.refused_as_text(),
                    "{class}: the validator refuses it ({r}), the schema does not: {verdict:?}"
                );
                ensure!(
                    field_mentioned(verdict, &r.field),
                    "{class}: the validator refuses {} ({}), the schema for another reason: {:?}",
                    r.field,
                    r.reason,
                    verdict.errors
                );
                by_schema += 1;
            }
        }
    }
    ensure!(
        body_level >= 5,
        "only {body_level} body-level cases in the corpus"
    );
    ensure!(
        by_schema >= 30,
        "only {by_schema} corpus records refused by the schema"
    );
    ensure!(
        beyond.iter().any(|(_, b)| *b == Beyond::Clock)
            && beyond.iter().any(|(_, b)| *b == Beyond::Size),
        "{beyond:?}"
    );
    Ok(())
}

/// One edge case: a record's text and, when the schema is known to differ on it, how.
struct Edge {
    name: String,
    text: String,
    known: Option<Known>,
}

/// Builds edge cases by editing valid base records.
struct Edges {
    out: Vec<Edge>,
}

const RAW: &str = "\"@raw@\"";

impl Edges {
    fn push(&mut self, name: &str, text: String, known: Option<Known>) {
        self.out.push(Edge {
            name: name.to_string(),
            text,
            known,
        });
    }

    /// `base` with the member at JSON pointer `path` set to `value` (added if missing).
    fn set(&mut self, name: &str, base: &Value, path: &str, value: Value) {
        self.push(name, edit(base, path, Some(value)).to_string(), None);
    }

    fn remove(&mut self, name: &str, base: &Value, path: &str) {
        self.push(name, edit(base, path, None).to_string(), None);
    }

    /// As `set`, with `literal` spliced in as JSON text (numbers a `Value` cannot hold as written).
    fn raw(&mut self, name: &str, base: &Value, path: &str, literal: &str, known: Option<Known>) {
        let text = edit(base, path, Some(json!("@raw@"))).to_string();
        self.push(name, text.replacen(RAW, literal, 1), known);
    }
}

fn edit(base: &Value, path: &str, value: Option<Value>) -> Value {
    let mut v = base.clone();
    let (parent, key) = path.rsplit_once('/').expect("a JSON pointer");
    let target = v.pointer_mut(parent).expect("the parent exists");
    match (target, value) {
        (Value::Object(o), Some(x)) => {
            o.insert(key.to_string(), x);
        }
        (Value::Object(o), None) => {
            o.remove(key);
        }
        (Value::Array(a), Some(x)) => a[key.parse::<usize>().expect("an index")] = x,
        _ => panic!("cannot edit {path}"),
    }
    v
}

fn first_of(records: &[Value], pred: impl Fn(&Value) -> bool) -> Result<Value> {
    records
        .iter()
        .find(|r| pred(r))
        .cloned()
        .context("a base record")
}

fn edge_cases() -> Result<Vec<Edge>> {
    let mut cfg = SynthConfig::new(5);
    cfg.outcome_rate = 0.5;
    cfg.review_rate = 0.5;
    let records = generate(cfg, 400);
    let loan = first_of(&records, |r| {
        r["kind"] == "decision" && domain_of(r) == Some(Domain::Loan)
    })?;
    let llm = first_of(&records, |r| {
        r["kind"] == "decision" && r.get("llm").is_some()
    })?;
    let outcome = first_of(&records, |r| r["kind"] == "outcome")?;
    let review = first_of(&records, |r| r["kind"] == "review")?;
    let mut e = Edges { out: Vec::new() };
    let (d, l, o, rv) = (&loan, &llm, &outcome, &review);

    for (name, base) in [
        ("decision", d),
        ("llm decision", l),
        ("outcome", o),
        ("review", rv),
    ] {
        e.push(&format!("{name} as generated"), base.to_string(), None);
    }

    // Ids.
    for id in ["a", "A-Z_a.z:09", "", "a b", "a\n", "ü", "bank#1", "\u{0}"] {
        e.set(&format!("decision_id {id:?}"), d, "/decision_id", json!(id));
    }
    for n in [128, 129] {
        e.set(
            &format!("decision_id of {n}"),
            d,
            "/decision_id",
            json!("x".repeat(n)),
        );
    }
    for n in [64, 65] {
        e.set(
            &format!("tenant_id of {n}"),
            d,
            "/tenant_id",
            json!("t".repeat(n)),
        );
    }
    e.set("decision_id a number", d, "/decision_id", json!(7));
    e.set("outcome_id null", o, "/outcome_id", Value::Null);
    e.set("outcome_id on a decision", d, "/outcome_id", json!("o-1"));
    e.set(
        "outcome_id null on a decision",
        d,
        "/outcome_id",
        Value::Null,
    );
    e.set("review_id on an outcome", o, "/review_id", json!("r-1"));
    e.set("review_id null on an outcome", o, "/review_id", Value::Null);
    e.set(
        "review_id too long",
        rv,
        "/review_id",
        json!("r".repeat(129)),
    );

    // Timestamps (more in the random test below).
    for (t, known) in [
        ("2026-03-15T10:23:45Z", None),
        ("2026-03-15T10:23:45.1Z", None),
        ("2026-03-15T10:23:45.123456789123Z", None),
        ("2026-03-15 10:23:45Z", None),
        ("2026-03-15t10:23:45z", None),
        ("2026-03-15x10:23:45Z", None),
        ("2026-03-15\u{e9}10:23:45Z", None),
        ("2026-03-15T10:23:45+05:30", None),
        ("2026-03-15T10:23:45-23:59", None),
        ("2026-03-15T10:23:45+24:00", None),
        ("2026-03-15T10:23:45+0530", None),
        ("2026-03-15T10:23:45.Z", None),
        ("2026-03-15T10:23:45", None),
        ("2026-03-15T10:23Z", None),
        ("2026-03-15T24:00:00Z", None),
        ("2026-02-29T00:00:00Z", None),
        ("2024-02-29T00:00:00Z", None),
        ("2026-04-31T00:00:00Z", None),
        ("2026-03-31T23:59:60Z", None),
        ("2026-03-31T23:59:60.5-00:00", None),
        ("2026-03-30T23:59:60Z", None),
        ("2024-02-28T23:59:60Z", None),
        ("2024-02-29T23:59:60Z", None),
        (
            "2026-04-01T01:59:60+02:00",
            Some(Known::LeapSecondWithOffset),
        ),
        ("2026-03-15T10:23:45Z\n", None),
        ("2026-03-15T10:23:45Z ", None),
        (" 2026-03-15T10:23:45Z", None),
        ("+2026-03-15T10:23:45Z", None),
        ("2000-01-01T00:00:00Z", None),
        ("1999-12-31T23:59:59.999Z", None),
        ("2099-12-31T23:59:59.999Z", None),
        ("2100-01-01T00:00:00Z", None),
        (
            "2000-01-01T00:30:00+01:00",
            Some(Known::RangeEdgeWithOffset),
        ),
        (
            "1999-12-31T23:30:00-01:00",
            Some(Known::RangeEdgeWithOffset),
        ),
        (
            "2099-12-31T23:30:00-01:00",
            Some(Known::RangeEdgeWithOffset),
        ),
        (
            "2100-01-01T00:30:00+01:00",
            Some(Known::RangeEdgeWithOffset),
        ),
        ("2026-03-15", None),
        ("١٩٩٩-03-15T10:23:45Z", None),
    ] {
        e.out.push(Edge {
            name: format!("occurred_at {t:?}"),
            text: edit(d, "/occurred_at", Some(json!(t))).to_string(),
            known,
        });
    }
    e.set(
        "occurred_at a number",
        d,
        "/occurred_at",
        json!(1_773_532_800_000u64),
    );
    e.set("received_at null", d, "/received_at", Value::Null);
    e.set(
        "received_at set",
        d,
        "/received_at",
        json!("2026-03-15T10:23:45Z"),
    );
    e.set("subject_ref null", d, "/subject_ref", Value::Null);
    e.set("subject_ref set", d, "/subject_ref", json!("ab".repeat(32)));

    // Text fields: blank means Unicode White_Space only; lengths count code points.
    for s in [
        "   ", "\t\r\n", "\u{85}", "\u{a0}", "\u{2028}", "\u{3000}", "\u{feff}", "\u{1c}",
        "\u{200b}", "x", " x ",
    ] {
        e.set(&format!("decision {s:?}"), d, "/decision", json!(s));
    }
    for (c, n) in [("é", 256), ("é", 257), ("😀", 256), ("😀", 257)] {
        e.set(
            &format!("decision {c}×{n}"),
            d,
            "/decision",
            json!(c.repeat(n)),
        );
    }
    for n in [4096, 4097] {
        e.set(
            &format!("rationale of {n}"),
            d,
            "/rationale",
            json!("r".repeat(n)),
        );
    }
    e.set("rationale null", d, "/rationale", Value::Null);
    e.set("explanation_ref empty", d, "/explanation_ref", json!(""));
    e.set("decision null", d, "/decision", Value::Null);
    e.set("decision on an outcome", o, "/decision", json!("approve"));
    e.set("decision null on an outcome", o, "/decision", Value::Null);

    // Caller and subject.
    for (name, caller) in [
        ("empty", json!({})),
        ("both null", json!({"principal": null, "service": null})),
        (
            "principal only",
            json!({"principal": "arn:aws:iam::1:role/x"}),
        ),
        ("service only", json!({"service": "loan-api"})),
        ("service null", json!({"principal": "p", "service": null})),
        ("long principal", json!({"principal": "p".repeat(600)})),
        ("long service", json!({"service": "s".repeat(300)})),
        ("unknown key", json!({"service": "s", "team": "risk"})),
        ("a string", json!("loan-api")),
    ] {
        e.set(&format!("caller {name}"), d, "/caller", caller);
    }
    e.set("caller null", d, "/caller", Value::Null);
    e.set("subject null", d, "/subject", Value::Null);
    e.set("subject empty", d, "/subject", json!({}));
    e.set("subject id null", d, "/subject", json!({"id": null}));
    e.set("subject id number", d, "/subject", json!({"id": 12}));

    // Model and hashes.
    e.set("model null", d, "/model", Value::Null);
    e.remove("model missing", d, "/model");
    e.set("model on an outcome", o, "/model", d["model"].clone());
    e.set("model null on an outcome", o, "/model", Value::Null);
    e.remove("model version missing", d, "/model/version");
    for (name, h) in [
        ("uppercase", "AB".repeat(32)),
        ("63 chars", "a".repeat(63)),
        ("newline", format!("{}\n", "a".repeat(64))),
        ("65 chars", "a".repeat(65)),
    ] {
        e.set(
            &format!("artifact_sha256 {name}"),
            d,
            "/model/artifact_sha256",
            json!(h),
        );
    }
    e.set("features_hmac", d, "/features_hmac", json!("0f".repeat(32)));
    e.set(
        "features_hmac on a review",
        rv,
        "/features_hmac",
        json!("0f".repeat(32)),
    );
    e.set(
        "dataset_manifest_sha256 bad",
        d,
        "/dataset_manifest_sha256",
        json!("x"),
    );

    // Free-form JSON: finite numbers, integers exact as doubles.
    for (literal, known) in [
        ("9007199254740992", None),
        ("9007199254740993", None),
        ("-9007199254740992", None),
        ("-9007199254740993", None),
        ("18446744073709551615", None),
        ("18446744073709551616", Some(Known::LargeIntegralFloat)),
        ("-9223372036854775809", Some(Known::LargeIntegralFloat)),
        ("1e300", Some(Known::LargeIntegralFloat)),
        // 2^53 + 2: a double exactly, unlike 2^53 + 1, which rounds to 2^53.
        ("9007199254740994.0", Some(Known::LargeIntegralFloat)),
        ("9007199254740992.0", None),
        ("0.5", None),
        ("-0", None),
        ("1e999", None),
        ("-1e999", None),
        ("NaN", None),
        ("[1, {\"a\": 9007199254740993}]", None),
        ("{\"deep\": [[[1.5]]]}", None),
        ("null", None),
    ] {
        e.raw(
            &format!("features.x = {literal}"),
            d,
            "/features/x",
            literal,
            known,
        );
        e.raw(
            &format!("context.x = {literal}"),
            o,
            "/context",
            &format!("{{\"x\": {literal}}}"),
            known,
        );
    }
    e.set("features an array", d, "/features", json!([1, 2]));
    e.set("features null", d, "/features", Value::Null);
    e.set("features on an outcome", o, "/features", json!({"a": 1}));
    e.set("context a string", d, "/context", json!("x"));
    // serde_json's parser stops at 128 nested arrays/objects; the record and features are two.
    for k in [124, 125, 126] {
        let literal = format!("{}{}", "[".repeat(k), "]".repeat(k));
        e.raw(
            &format!("features nested {} deep", k + 2),
            d,
            "/features/x",
            &literal,
            None,
        );
    }
    e.push(
        "duplicate key",
        d.to_string().replacen("{", "{\"decision\":\"deny\",", 1),
        None,
    );
    e.push(
        "lone surrogate",
        edit(d, "/rationale", Some(json!("@s@")))
            .to_string()
            .replacen("@s@", "\\ud800", 1),
        None,
    );
    e.push(
        "surrogate pair",
        edit(d, "/rationale", Some(json!("😀"))).to_string(),
        None,
    );

    // Outputs and scores.
    let output = json!({"label": "approve", "score": 0.5});
    for n in [0, 1, 32, 33] {
        e.set(
            &format!("{n} outputs"),
            d,
            "/outputs",
            Value::Array(vec![output.clone(); n]),
        );
    }
    for (name, o2) in [
        ("score a string", json!({"label": "a", "score": "high"})),
        ("score null", json!({"label": "a", "score": null})),
        ("label empty", json!({"label": "", "score": 0.1})),
        ("extra key", json!({"label": "a", "score": 0.1, "rank": 1})),
        ("score missing", json!({"label": "a"})),
        ("score 1e308", json!({"label": "a", "score": 1e308})),
        ("score -3", json!({"label": "a", "score": -3})),
    ] {
        e.set(&format!("output {name}"), d, "/outputs/0", o2);
    }
    e.raw("score 1e999", d, "/outputs/0/score", "1e999", None);
    e.raw(
        "score 2^64",
        d,
        "/outputs/0/score",
        "18446744073709551616",
        None,
    );
    for c in [
        json!(-0.0001),
        json!(0),
        json!(1),
        json!(1.0000001),
        json!("0.5"),
        Value::Null,
    ] {
        e.set(&format!("confidence {c}"), d, "/confidence", c);
    }
    e.set("threshold -5", d, "/threshold", json!(-5));
    e.raw("threshold 1e999", d, "/threshold", "1e999", None);
    for s in [
        json!(0),
        json!(1e-300),
        json!(0.5),
        json!(1),
        json!(1.5),
        json!(-0.1),
        Value::Null,
    ] {
        e.set(&format!("sampling_rate {s}"), d, "/sampling_rate", s);
    }
    e.set(
        "sampling_rate on a review",
        rv,
        "/sampling_rate",
        json!(0.5),
    );

    // Action, risk tier, kind, version.
    for a in [
        json!({"type": "human_review"}),
        json!({"type": "manual"}),
        json!({"detail": "x"}),
        json!({"type": "automated", "detail": ""}),
        json!({"type": "automated", "detail": null}),
    ] {
        e.set(&format!("action {a}"), d, "/action", a);
    }
    for t in [json!("low"), json!("critical"), json!("HIGH"), Value::Null] {
        e.set(&format!("risk_tier {t}"), d, "/risk_tier", t);
    }
    e.set("risk_tier on an outcome", o, "/risk_tier", json!("low"));
    for k in ["access", "Decision", "outcome"] {
        e.set(&format!("kind {k}"), d, "/kind", json!(k));
    }
    e.set("kind decision on an outcome", o, "/kind", json!("decision"));
    for v in [json!(2), json!("1"), json!(true), json!(0)] {
        e.set(&format!("schema_version {v}"), d, "/schema_version", v);
    }
    e.raw(
        "schema_version 1.0",
        d,
        "/schema_version",
        "1.0",
        Some(Known::IntegerWrittenAsFloat),
    );
    e.raw(
        "schema_version 1e0",
        d,
        "/schema_version",
        "1e0",
        Some(Known::IntegerWrittenAsFloat),
    );
    e.set("unknown field", d, "/colour", json!("red"));
    e.set("unknown field null", d, "/colour", Value::Null);
    e.push("an array", "[]".to_string(), None);
    e.push("a string", "\"decision\"".to_string(), None);

    // Steps.
    let step = json!({"name": "bureau_score"});
    for n in [0, 1, 64, 65] {
        e.set(
            &format!("{n} steps"),
            d,
            "/steps",
            Value::Array(vec![step.clone(); n]),
        );
    }
    for (name, s) in [
        ("version empty", json!({"name": "a", "version": ""})),
        (
            "bad input hash",
            json!({"name": "a", "input_sha256": "abc"}),
        ),
        ("output a string", json!({"name": "a", "output": "ok"})),
        ("output null", json!({"name": "a", "output": null})),
        ("extra key", json!({"name": "a", "weight": 1})),
        ("name missing", json!({"version": "1"})),
    ] {
        e.set(&format!("step {name}"), d, "/steps", json!([s]));
    }
    e.raw(
        "step output unsafe",
        d,
        "/steps",
        "[{\"name\":\"a\",\"output\":{\"n\":9007199254740993}}]",
        None,
    );

    // LLM block.
    for (name, p) in [
        ("empty", json!({})),
        (
            "all null",
            json!({"temperature": null, "max_tokens": null, "top_p": null}),
        ),
        ("temperature 0", json!({"temperature": 0})),
        ("temperature 2.5", json!({"temperature": 2.5})),
        ("temperature negative", json!({"temperature": -0.1})),
        (
            "max_tokens u32 max",
            json!({"max_tokens": 4_294_967_295u64}),
        ),
        (
            "max_tokens over u32",
            json!({"max_tokens": 4_294_967_296u64}),
        ),
        ("max_tokens negative", json!({"max_tokens": -1})),
        ("top_p 1", json!({"top_p": 1})),
        ("top_p over 1", json!({"top_p": 1.01})),
        ("unknown key", json!({"seed": 3})),
    ] {
        e.set(&format!("llm.parameters {name}"), l, "/llm/parameters", p);
    }
    e.raw(
        "llm.parameters max_tokens 5.0",
        l,
        "/llm/parameters",
        "{\"max_tokens\": 5.0}",
        Some(Known::IntegerWrittenAsFloat),
    );
    e.set("llm.parameters null", l, "/llm/parameters", Value::Null);
    for (name, t) in [
        ("complete", json!({"prompt": 10, "completion": 2})),
        ("half", json!({"prompt": 10})),
        ("negative", json!({"prompt": -1, "completion": 2})),
    ] {
        e.set(&format!("llm.tokens {name}"), l, "/llm/tokens", t);
    }
    e.remove("llm prompt hash missing", l, "/llm/prompt_sha256");
    e.set(
        "llm finish_reason empty",
        l,
        "/llm/finish_reason",
        json!(""),
    );
    e.set(
        "llm system prompt hash null",
        l,
        "/llm/system_prompt_sha256",
        Value::Null,
    );
    e.set("llm on a review", rv, "/llm", l["llm"].clone());

    // Outcome and review.
    e.remove("outcome missing", o, "/outcome");
    e.set("outcome null", o, "/outcome", Value::Null);
    e.set("outcome without label", o, "/outcome", json!({"value": 3}));
    e.set(
        "outcome value null",
        o,
        "/outcome",
        json!({"label": "repaid", "value": null}),
    );
    e.raw("outcome value 1e999", o, "/outcome/value", "1e999", None);
    e.set(
        "outcome on a review",
        rv,
        "/outcome",
        json!({"label": "repaid"}),
    );
    for (name, r) in [
        (
            "override with label",
            json!({"reviewer": "u1", "verdict": "override", "override_label": "deny"}),
        ),
        (
            "override without label",
            json!({"reviewer": "u1", "verdict": "override"}),
        ),
        (
            "override with null label",
            json!({"reviewer": "u1", "verdict": "override", "override_label": null}),
        ),
        (
            "confirm with label",
            json!({"reviewer": "u1", "verdict": "confirm", "override_label": "deny"}),
        ),
        (
            "confirm with null label",
            json!({"reviewer": "u1", "verdict": "confirm", "override_label": null}),
        ),
        ("confirm", json!({"reviewer": "u1", "verdict": "confirm"})),
        (
            "unknown verdict",
            json!({"reviewer": "u1", "verdict": "approve"}),
        ),
        (
            "blank reviewer",
            json!({"reviewer": " ", "verdict": "confirm"}),
        ),
        (
            "long notes",
            json!({"reviewer": "u1", "verdict": "confirm", "notes": "n".repeat(4097)}),
        ),
        ("no verdict", json!({"reviewer": "u1"})),
    ] {
        e.set(&format!("review {name}"), rv, "/review", r);
    }
    e.set("review on a decision", d, "/review", rv["review"].clone());
    Ok(e.out)
}

/// Both judges' verdicts on `edges`: the unexplained disagreements, the documented differences
/// that did not show up, and how many cases the validator refused and accepted.
fn compare(edges: &[Edge]) -> Result<(Vec<String>, Vec<String>, [usize; 2])> {
    let texts: Vec<String> = edges.iter().map(|e| e.text.clone()).collect();
    let verdicts = check_records(&texts)?;
    let mut disagree = Vec::new();
    let mut unused = Vec::new();
    let mut counts = [0, 0];
    for (edge, verdict) in edges.iter().zip(&verdicts) {
        let rust = parse_record(&edge.text, &Limits::default(), Timestamp::MAX);
        let rust_ok = rust.is_ok();
        counts[usize::from(rust_ok)] += 1;
        if rust_ok == verdict.valid {
            if let Some(k) = edge.known {
                unused.push(format!(
                    "{}: listed as {k:?}, but both say ok = {rust_ok}",
                    edge.name
                ));
            }
        } else if !edge
            .known
            .is_some_and(|k| k.explains(rust_ok, verdict.valid))
        {
            disagree.push(format!(
                "{}: validator {:?}, schema {:?}",
                edge.name,
                rust.map(|_| "accepts").map_err(|e| e.to_string()),
                verdict.errors
            ));
        }
    }
    Ok((disagree, unused, counts))
}

#[test]
fn edge_cases_get_the_validators_verdict() -> Result<()> {
    let edges = edge_cases()?;
    let (disagree, unused, [refused, accepted]) = compare(&edges)?;
    ensure!(
        disagree.is_empty(),
        "{} of {} edge cases judged differently:\n{}",
        disagree.len(),
        edges.len(),
        disagree.join("\n")
    );
    ensure!(
        unused.is_empty(),
        "documented differences that no longer hold:\n{}",
        unused.join("\n")
    );
    ensure!(
        refused >= 100 && accepted >= 60,
        "{refused} refused, {accepted} accepted"
    );
    Ok(())
}

/// SplitMix64: a few lines of deterministic randomness, without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn two_digits(&mut self, below: u64) -> String {
        format!("{:02}", self.below(below))
    }
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[test]
fn random_timestamps_get_the_validators_verdict() -> Result<()> {
    let mut rng = SplitMix(20_260_315);
    let base = edit(&generate(SynthConfig::new(3), 1)[0], "/features", None);
    const ZERO: &[&str] = &["Z", "z", "+00:00", "-00:00"];
    const EDGE_DAYS: &[(u64, u64, u64)] =
        &[(1999, 12, 31), (2000, 1, 1), (2099, 12, 31), (2100, 1, 1)];
    let mut edges = Vec::new();
    for _ in 0..3_000 {
        let year = match rng.below(4) {
            0 => rng
                .pick(&["1999", "2000", "2099", "2100", "2024", "2023", "1970"])
                .parse()?,
            _ => 2000 + rng.below(100),
        };
        // Mostly real dates, some one past the month's end, some month ends (for leap seconds).
        let month = match rng.below(10) {
            0 => rng.below(14),
            _ => 1 + rng.below(12),
        };
        let last = days_in_month(year, month.clamp(1, 12));
        let day = match rng.below(6) {
            0 => last + 1,
            1 | 2 => last,
            3 => rng.below(32),
            _ => 1 + rng.below(last),
        };
        let (mut hour, mut minute) = (rng.two_digits(24), rng.two_digits(60));
        let second = match rng.below(8) {
            0 => "60".to_string(),
            1 => rng.two_digits(62),
            _ => rng.two_digits(60),
        };
        if second == "60" && rng.below(2) == 0 {
            (hour, minute) = ("23".into(), "59".into());
        }
        let sep = rng.pick(&["T", "T", "T", "t", " ", "x", "\n", "\u{0}", "é", "\u{7f}"]);
        let frac = rng.pick(&["", "", ".123", ".5", ".999999999999", ".", ".1a"]);
        let offset = rng.pick(&[
            "Z", "Z", "z", "+00:00", "-00:00", "+01:00", "-01:00", "+05:30", "-23:59", "+23:59",
            "+24:00", "+01:60", "", "+0100", "Z\n", " Z",
        ]);
        let (hour, minute) = if rng.below(10) == 0 {
            (rng.two_digits(26), rng.two_digits(62))
        } else {
            (hour, minute)
        };
        let text =
            format!("{year:04}-{month:02}-{day:02}{sep}{hour}:{minute}:{second}{frac}{offset}");
        let nonzero_offset = !ZERO.contains(&offset);
        let known = if nonzero_offset && EDGE_DAYS.contains(&(year, month, day)) {
            Some(Known::RangeEdgeWithOffset)
        } else if nonzero_offset && second == "60" {
            Some(Known::LeapSecondWithOffset)
        } else {
            None
        };
        edges.push(Edge {
            name: format!("{text:?}"),
            text: edit(&base, "/occurred_at", Some(json!(text))).to_string(),
            known,
        });
    }
    let (disagree, _, [refused, accepted]) = compare(&edges)?;
    // For random cases a documented difference is a licence, not a prediction: most such
    // timestamps are judged alike.
    ensure!(
        disagree.is_empty(),
        "{} of {} timestamps judged differently:\n{}",
        disagree.len(),
        edges.len(),
        disagree.join("\n")
    );
    ensure!(
        refused >= 500 && accepted >= 500,
        "{refused} refused, {accepted} accepted"
    );
    Ok(())
}
