//! Policy → role → masking, end to end, and the proof that masking changes nothing but what it
//! lists.

use serde_json::{json, Map, Value};

use super::*;
use crate::canonical;
use crate::record::Record;

const POLICY: &str = r#"{
  "version": 1,
  "roles": {
    "auditor": ["arn:aws:iam::123456789012:role/Auditor"],
    "operator": ["arn:aws:iam::123456789012:role/ops-*"]
  },
  "pii": {
    "*": ["context.email"],
    "bank_456": ["context.customer_name", "features.postcode", "review.reviewer"],
    "other": ["caller.principal", "outputs[].score", "steps[].output.customer"]
  }
}"#;

fn policy() -> AccessPolicy {
    AccessPolicy::parse(POLICY).unwrap_or_else(|e| panic!("{e}"))
}

fn record(value: Value) -> Record {
    serde_json::from_value(value).unwrap()
}

/// A stored decision with personal data in every place masking looks at (object keys are in
/// sorted order so the expected lists hold whatever `serde_json`'s map order).
fn decision(tenant: &str) -> Record {
    record(json!({
        "schema_version": 1,
        "kind": "decision",
        "decision_id": "01JD6Z6M4Y8N3K2Q0V5R7T9W1X",
        "tenant_id": tenant,
        "occurred_at": "2026-03-15T10:23:45.123Z",
        "received_at": "2026-03-15T10:23:45.456Z",
        "caller": {
            "principal": "arn:aws:sts::123456789012:assumed-role/loan-api/jane.doe@bank.example",
            "service": "loan-api"
        },
        "subject_ref": "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592",
        "model": {"name": "credit-risk", "version": "3.2.0",
                  "artifact_sha256": "9f2c8b1e4a5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b"},
        "dataset_manifest_sha256": "abc18b1e4a5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b",
        "features_hmac": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "outputs": [{"label": "approve", "score": 0.92}, {"label": "deny", "score": 0.08}],
        "decision": "approve",
        "confidence": 0.92,
        "threshold": 0.75,
        "rationale": "Strong credit score; customer wrote from jane.doe@bank.example; DTI 0.35",
        "explanation_ref": "s3://explanations/2026/03/ssn-123-45-6789.json",
        "action": {"type": "automated", "detail": "offer paid to GB82 WEST 1234 5698 7654 32"},
        "risk_tier": "high",
        "steps": [
            {"name": "rules", "version": "1.0", "output": {
                "customer": "Jane Doe",
                "note": "card 4111 1111 1111 1111 matched",
                "order": "ORD-4111111111111112",
                "score": 0.1234567890123,
                "tags": ["ok", "ni AB123456C"]
            }},
            {"name": "model", "output": 0.92}
        ],
        "sampling_rate": 1.0,
        "context": {
            "count": 3,
            "customer_name": "Jane Doe",
            "e-mail address": "alt@bank.example",
            "email": "jane.doe@bank.example",
            "nested": {"contact": ["x", "bob@example.org"]},
            "order_id": "ORD-4111111111111112",
            "phone": "4155550132"
        }
    }))
}

fn review() -> Record {
    record(json!({
        "schema_version": 1,
        "kind": "review",
        "review_id": "01JD6Z7000000000000000000A",
        "decision_id": "01JD6Z6M4Y8N3K2Q0V5R7T9W1X",
        "tenant_id": "bank_456",
        "occurred_at": "2026-03-16T09:00:00.000Z",
        "received_at": "2026-03-16T09:00:00.010Z",
        "review": {
            "reviewer": "jane.smith@bank.example",
            "verdict": "override",
            "override_label": "deny",
            "notes": "Called 415 555 0132; SSN 123-45-6789 on file; IBAN DE89370400440532013000"
        }
    }))
}

fn outcome() -> Record {
    record(json!({
        "schema_version": 1,
        "kind": "outcome",
        "outcome_id": "01JD6Z8000000000000000000B",
        "decision_id": "01JD6Z6M4Y8N3K2Q0V5R7T9W1X",
        "tenant_id": "bank_456",
        "occurred_at": "2026-09-01T00:00:00.000Z",
        "received_at": "2026-09-01T00:00:00.001Z",
        "outcome": {"label": "default notice to jane.doe@bank.example", "value": 1200.5}
    }))
}

fn raw_features() -> Map<String, Value> {
    match json!({"annual_income": 120000, "credit_score": 720, "postcode": "SW1A 1AA"}) {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn listed(masked: &Masked) -> Vec<(String, String)> {
    masked
        .redacted
        .iter()
        .map(|r| (r.path.clone(), r.reason.as_str().to_string()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(p, r)| (p.to_string(), r.to_string()))
        .collect()
}

// ---- reading the paths `redacted` lists (`a.b[2]["c d"]`), for the proofs ----

enum Seg {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if rest.starts_with("[\"") {
            let mut stream = serde_json::Deserializer::from_str(&rest[1..]).into_iter::<String>();
            let key = stream.next().unwrap().unwrap();
            let used = stream.byte_offset();
            segs.push(Seg::Key(key));
            rest = rest[1 + used..].strip_prefix(']').expect(path);
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap();
            segs.push(Seg::Index(r[..end].parse().unwrap()));
            rest = &r[end + 1..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            segs.push(Seg::Key(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    segs
}

fn get<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    parse_path(path).iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

fn get_mut<'a>(value: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    parse_path(path).iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(i) => v.get_mut(*i),
    })
}

/// The proof: (1) every listed path held something in the record and holds something else now
/// (precise), and (2) putting the original values back at the listed paths gives exactly the
/// record's canonical bytes (complete: nothing unlisted changed, byte for byte).
fn assert_only_listed_changed(record: &Record, masked: &Masked) {
    let original = serde_json::to_value(record).unwrap();
    let mut restored = masked.record.clone();
    for r in &masked.redacted {
        if r.reason == Reason::FeaturesWithheld && get(&original, &r.path).is_none() {
            continue; // the separately decrypted features, not part of the record
        }
        let before = get(&original, &r.path)
            .unwrap_or_else(|| panic!("{} listed but not in the record", r.path));
        let now = get(&masked.record, &r.path).unwrap();
        assert_ne!(before, now, "{} listed but unchanged", r.path);
        *get_mut(&mut restored, &r.path).unwrap() = before.clone();
    }
    assert_eq!(
        String::from_utf8(canonical::to_vec(&restored).unwrap()).unwrap(),
        String::from_utf8(record.canonical_bytes().unwrap()).unwrap(),
        "something not listed changed"
    );
}

#[test]
fn operator_sees_a_decision_masked_with_every_redaction_listed() {
    let p = policy();
    let principal = "arn:aws:sts::123456789012:assumed-role/ops-east/bob";
    let role = p.role_of(principal).unwrap();
    assert_eq!(role, Role::Operator);
    let rec = decision("bank_456");
    let features = raw_features();
    let masked = mask_record(&rec, Some(&features), role, &p.pii_for(&rec.tenant_id));

    assert_eq!(
        listed(&masked),
        pairs(&[
            ("subject_ref", "subject"),
            ("features", "features_withheld"),
            ("context.email", "declared_pii"),
            ("context.customer_name", "declared_pii"),
            ("caller.principal", "free_text:email"),
            ("rationale", "free_text:email"),
            ("explanation_ref", "free_text:national_id"),
            ("action.detail", "free_text:iban"),
            ("steps[0].output.note", "free_text:card"),
            ("steps[0].output.tags[1]", "free_text:national_id"),
            (r#"context["e-mail address"]"#, "free_text:email"),
            ("context.nested.contact[1]", "free_text:email"),
        ])
    );
    assert_eq!(masked.features, None);
    let r = &masked.record;
    assert_eq!(r["subject_ref"], json!(REDACTED));
    assert_eq!(r["context"]["email"], json!(REDACTED));
    assert_eq!(r["context"]["customer_name"], json!(REDACTED));
    assert_eq!(
        r["caller"]["principal"],
        json!("arn:aws:sts::123456789012:assumed-role/loan-api/[email]")
    );
    assert_eq!(
        r["rationale"],
        json!("Strong credit score; customer wrote from [email]; DTI 0.35")
    );
    assert_eq!(
        r["explanation_ref"],
        json!("s3://explanations/2026/03/ssn-[national-id].json")
    );
    assert_eq!(r["action"]["detail"], json!("offer paid to [iban]"));
    assert_eq!(
        r["steps"][0]["output"]["note"],
        json!("card [card] matched")
    );
    assert_eq!(
        r["steps"][0]["output"]["tags"],
        json!(["ok", "ni [national-id]"])
    );
    // Negatives kept verbatim: a Luhn-failing order id, a phone number, numbers, names that
    // are not declared for this tenant.
    assert_eq!(r["context"]["order_id"], json!("ORD-4111111111111112"));
    assert_eq!(
        r["steps"][0]["output"]["order"],
        json!("ORD-4111111111111112")
    );
    assert_eq!(r["context"]["phone"], json!("4155550132"));
    assert_eq!(r["steps"][0]["output"]["customer"], json!("Jane Doe"));
    assert_eq!(
        r["features_hmac"],
        serde_json::to_value(&rec).unwrap()["features_hmac"]
    );
    assert_only_listed_changed(&rec, &masked);
}

#[test]
fn operator_reviews_and_outcomes() {
    let p = policy();
    let pii = p.pii_for("bank_456");

    let rec = review();
    let masked = mask_record(&rec, None, Role::Operator, &pii);
    assert_eq!(
        listed(&masked),
        pairs(&[
            ("review.reviewer", "declared_pii"),
            ("review.notes", "free_text:national_id"),
            ("review.notes", "free_text:iban"),
        ])
    );
    assert_eq!(
        masked.record["review"]["notes"],
        json!("Called 415 555 0132; SSN [national-id] on file; IBAN [iban]")
    );
    assert_eq!(masked.record["review"]["override_label"], json!("deny"));
    assert_only_listed_changed(&rec, &masked);

    let rec = outcome();
    let masked = mask_record(&rec, None, Role::Operator, &pii);
    assert_eq!(
        listed(&masked),
        pairs(&[("outcome.label", "free_text:email")])
    );
    assert_eq!(
        masked.record["outcome"],
        json!({"label": "default notice to [email]", "value": 1200.5})
    );
    assert_only_listed_changed(&rec, &masked);
}

#[test]
fn declared_paths_of_any_type_and_in_lists() {
    let p = policy();
    let rec = decision("other");
    let masked = mask_record(&rec, None, Role::Operator, &p.pii_for("other"));
    assert_eq!(
        listed(&masked),
        pairs(&[
            ("subject_ref", "subject"),
            ("context.email", "declared_pii"),
            ("caller.principal", "declared_pii"),
            ("outputs[0].score", "declared_pii"),
            ("outputs[1].score", "declared_pii"),
            ("steps[0].output.customer", "declared_pii"),
            ("rationale", "free_text:email"),
            ("explanation_ref", "free_text:national_id"),
            ("action.detail", "free_text:iban"),
            ("steps[0].output.note", "free_text:card"),
            ("steps[0].output.tags[1]", "free_text:national_id"),
            (r#"context["e-mail address"]"#, "free_text:email"),
            ("context.nested.contact[1]", "free_text:email"),
        ])
    );
    assert_eq!(
        masked.record["outputs"],
        json!([{"label": "approve", "score": REDACTED}, {"label": "deny", "score": REDACTED}])
    );
    // Not declared for this tenant.
    assert_eq!(masked.record["context"]["customer_name"], json!("Jane Doe"));
    assert_only_listed_changed(&rec, &masked);
}

#[test]
fn overlapping_declarations_are_listed_once_at_the_widest_path() {
    let rec = decision("t");
    for order in [
        ["context.email", "context", "subject_ref"],
        ["context", "context.email", "subject_ref"],
    ] {
        let pii = PiiFields::new(order).unwrap();
        let masked = mask_record(&rec, None, Role::Operator, &pii);
        let first: Vec<_> = listed(&masked).into_iter().take(4).collect();
        assert_eq!(
            first,
            pairs(&[
                ("subject_ref", "subject"),
                ("context", "declared_pii"),
                ("caller.principal", "free_text:email"),
                ("rationale", "free_text:email"),
            ]),
            "{order:?}"
        );
        assert!(masked
            .redacted
            .iter()
            .all(|r| !r.path.starts_with("context.")));
        assert_eq!(masked.record["context"], json!(REDACTED));
        assert_only_listed_changed(&rec, &masked);
    }
}

#[test]
fn input_form_subject_and_features_are_redacted() {
    let mut rec = decision("t");
    rec.subject = Some(crate::record::Subject {
        id: "user_123".into(),
    });
    rec.subject_ref = None;
    rec.features = Some(raw_features());
    let masked = mask_record(&rec, None, Role::Operator, &PiiFields::none());
    let got = listed(&masked);
    assert_eq!(
        got[..2],
        pairs(&[("subject", "subject"), ("features", "features_withheld")])
    );
    assert_eq!(masked.record["subject"], json!(REDACTED));
    assert_eq!(masked.record["features"], json!(REDACTED));
    assert!(!masked.record.to_string().contains("user_123"));
    assert!(!masked.record.to_string().contains("SW1A"));
    assert_only_listed_changed(&rec, &masked);
}

#[test]
fn features_are_withheld_only_when_there_are_some() {
    let rec = decision("t");
    let masked = mask_record(&rec, None, Role::Operator, &PiiFields::none());
    assert!(masked.redacted.iter().all(|r| r.path != "features"));
}

#[test]
fn auditors_see_everything_unchanged() {
    let p = policy();
    let role = p
        .role_of("arn:aws:sts::123456789012:assumed-role/Auditor/jane")
        .unwrap();
    assert_eq!(role, Role::Auditor);
    let features = raw_features();
    for rec in [decision("bank_456"), decision("other"), review(), outcome()] {
        let masked = mask_record(&rec, Some(&features), role, &p.pii_for(&rec.tenant_id));
        assert!(masked.redacted.is_empty());
        assert_eq!(masked.features.as_ref(), Some(&features));
        assert_eq!(
            canonical::to_vec(&masked.record).unwrap(),
            rec.canonical_bytes().unwrap()
        );
        assert_eq!(masked.record, serde_json::to_value(&rec).unwrap());
    }
}

#[test]
fn masking_is_deterministic() {
    let p = policy();
    let features = raw_features();
    for tenant in ["bank_456", "other"] {
        let rec = decision(tenant);
        let pii = p.pii_for(tenant);
        let a = serde_json::to_string(&mask_record(&rec, Some(&features), Role::Operator, &pii))
            .unwrap();
        for _ in 0..3 {
            let b = mask_record(&rec.clone(), Some(&features), Role::Operator, &pii);
            assert_eq!(serde_json::to_string(&b).unwrap(), a);
        }
    }
}

#[test]
fn masked_answer_serializes_and_reads_back() {
    let p = policy();
    let rec = decision("bank_456");
    let masked = mask_record(
        &rec,
        Some(&raw_features()),
        Role::Operator,
        &p.pii_for("bank_456"),
    );
    let text = serde_json::to_string(&masked).unwrap();
    assert!(text.contains(r#""role":"operator""#));
    assert!(text.contains(r#"{"path":"subject_ref","reason":"subject"}"#));
    assert!(!text.contains(r#""features":{"#));
    let back: Masked = serde_json::from_str(&text).unwrap();
    assert_eq!(back, masked);
}

#[test]
fn nothing_personal_leaks_to_operators() {
    let p = policy();
    for rec in [decision("bank_456"), review(), outcome()] {
        let masked = mask_record(
            &rec,
            Some(&raw_features()),
            Role::Operator,
            &p.pii_for("bank_456"),
        );
        let text = serde_json::to_string(&masked).unwrap();
        for secret in [
            "jane.doe@bank.example",
            "alt@bank.example",
            "bob@example.org",
            "jane.smith@bank.example",
            "5d41402abc4b2a76",
            "4111 1111 1111 1111",
            "123-45-6789",
            "AB123456C",
            "GB82 WEST",
            "DE89370400440532013000",
            "SW1A 1AA",
            "120000",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }
}
