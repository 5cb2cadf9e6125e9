use serde_json::{json, Map, Value};

use super::*;

fn artifact(v: Value) -> Artifact {
    Artifact::from_value(v).unwrap()
}

fn features(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("features are an object"),
    }
}

fn outputs(e: &Evaluation) -> Vec<(&str, f64)> {
    e.outputs
        .iter()
        .map(|o| (o.label.as_str(), o.score))
        .collect()
}

/// approve ≥ threshold, refer from 0.4, deny below (confidence = the deny score).
fn credit_policy() -> Value {
    json!({
        "complement": "deny",
        "decimals": 4,
        "decision_score": {"output": "approve"},
        "threshold": 0.7,
        "at_or_above": {"decision": "approve", "confidence": "decision_score"},
        "bands": [{"min": 0.4, "decision": "refer", "confidence": "decision_score"}],
        "below": {"decision": "deny", "confidence": {"output": "deny"}}
    })
}

fn fraud_policy() -> Value {
    json!({
        "complement": "legit",
        "decimals": 4,
        "decision_score": {"output": "fraud"},
        "threshold": 0.5,
        "at_or_above": {"decision": "block", "confidence": "decision_score"},
        "below": {"decision": "allow", "confidence": {"output": "legit"}}
    })
}

fn rule_set() -> Artifact {
    artifact(json!({
        "format": "dj-model/v1",
        "kind": "rule_set",
        "rules": [
            {"name": "image",
             "when": [{"feature": "content_type", "op": "==", "value": "image"}],
             "then": [{"label": "nsfw", "from_feature": "nsfw"},
                      {"label": "toxic", "from_feature": "toxic"}]},
            {"name": "repeat-offender",
             "when": [{"feature": "prior_strikes", "op": ">=", "value": 2},
                      {"feature": "toxic", "op": ">=", "value": 0.4}],
             "then": [{"label": "toxic", "from_feature": "toxic", "offset": 0.2, "max": 1},
                      {"label": "spam", "from_feature": "spam"}]}
        ],
        "default": [{"label": "toxic", "from_feature": "toxic"},
                    {"label": "spam", "from_feature": "spam"}],
        "policy": {
            "complement": "ok",
            "normalize": true,
            "decimals": 3,
            "decision_score": {"max_of": ["toxic", "spam", "nsfw"]},
            "threshold": 0.9,
            "at_or_above": {"decision": "remove", "confidence": "top_output"},
            "bands": [{"min": 0.5, "decision": "escalate", "confidence": "top_output"}],
            "below": {"decision": "allow", "confidence": "top_output"}
        }
    }))
}

fn scorecard() -> Artifact {
    artifact(json!({
        "format": "dj-model/v1",
        "kind": "scorecard",
        "label": "approve",
        "initial_points": 600,
        "characteristics": [
            {"feature": "credit_score",
             "bins": [{"below": 600, "points": -30}, {"below": 700, "points": 0}, {"points": 25}],
             "missing_points": -10},
            {"feature": "housing",
             "categories": [{"values": ["own"], "points": 15},
                            {"values": ["rent", "other"], "points": -5}]}
        ],
        "odds_scale": {"points": 600, "odds": 1, "pdo": 20},
        "policy": credit_policy()
    }))
}

fn logistic() -> Artifact {
    artifact(json!({
        "format": "dj-model/v1",
        "kind": "logistic",
        "label": "fraud",
        "intercept": -2,
        "terms": [
            {"feature": "amount", "weight": 0.5, "transforms": ["ln"]},
            {"feature": "channel", "one_hot": {"ecommerce": 1, "atm": 0.5}, "missing": "pos"},
            {"feature": "new_device", "weight": 2},
            {"feature": "txn_1h", "weight": 0.25,
             "transforms": [{"shift": -1}, {"clip": {"min": 0, "max": 4}}], "missing": 1}
        ],
        "policy": fraud_policy()
    }))
}

fn linear() -> Artifact {
    artifact(json!({
        "format": "dj-model/v1",
        "kind": "linear",
        "label": "expected_loss",
        "intercept": 10,
        "terms": [
            {"feature": "exposure", "weight": 0.05},
            {"feature": "region", "one_hot": {"north": -2.5}}
        ],
        "policy": {
            "decimals": 2,
            "decision_score": {"output": "expected_loss"},
            "threshold": 100,
            "at_or_above": {"decision": "review", "confidence": "decision_score"},
            "below": {"decision": "accept", "confidence": "decision_score"}
        }
    }))
}

fn tree() -> Artifact {
    artifact(json!({
        "format": "dj-model/v1",
        "kind": "decision_tree",
        "label": "approve",
        "link": "identity",
        "tree": {"split": {
            "if": {"feature": "delinquencies", "op": ">=", "value": 2},
            "then": {"leaf": 0.2},
            "else": {"split": {
                "if": {"feature": "credit_score", "op": "<", "value": 650, "if_missing": true},
                "then": {"leaf": 0.55},
                "else": {"leaf": 0.9}}}}},
        "policy": credit_policy()
    }))
}

fn ensemble() -> Artifact {
    artifact(json!({
        "format": "dj-model/v1",
        "kind": "tree_ensemble",
        "label": "fraud",
        "link": "logistic",
        "base_score": -1,
        "trees": [
            {"split": {"if": {"feature": "mcc", "op": "in", "value": ["4829", "7995"]},
                       "then": {"leaf": 1.5}, "else": {"leaf": -0.5}}},
            {"split": {"if": {"feature": "country_mismatch", "op": "==", "value": true},
                       "then": {"leaf": 1.5}, "else": {"leaf": 0}}}
        ],
        "policy": fraud_policy()
    }))
}

fn all() -> Vec<Artifact> {
    vec![
        rule_set(),
        scorecard(),
        logistic(),
        linear(),
        tree(),
        ensemble(),
    ]
}

fn eval(a: &Artifact, f: Value) -> Evaluation {
    evaluate(a, &features(f), None).unwrap()
}

#[test]
fn rule_set_first_matching_rule_then_policy() {
    let a = rule_set();
    // Default rule: toxic 0.5, spam 0, ok = 0.5 × 1; normalized by 1.0. Ties sort by label.
    let e = eval(
        &a,
        json!({"content_type": "comment", "toxic": 0.5, "spam": 0.0, "prior_strikes": 0}),
    );
    assert_eq!(outputs(&e), [("ok", 0.5), ("toxic", 0.5), ("spam", 0.0)]);
    assert_eq!(
        (e.decision.as_str(), e.confidence, e.threshold),
        ("escalate", 0.5, 0.9)
    );

    // Repeat offender: toxic 0.8 + 0.2 = 1, capped at 1; ok = 0 × 1.
    let e = eval(
        &a,
        json!({"content_type": "post", "toxic": 0.8, "spam": 0, "prior_strikes": 3}),
    );
    assert_eq!(outputs(&e), [("toxic", 1.0), ("ok", 0.0), ("spam", 0.0)]);
    assert_eq!((e.decision.as_str(), e.confidence), ("remove", 1.0));

    // Image: nsfw 0.6, toxic 0.2, ok 0.4 × 0.8 = 0.32; total 1.12.
    // 0.6/1.12 = 0.5357… → 0.536, 0.32/1.12 = 0.2857… → 0.286, 0.2/1.12 = 0.1785… → 0.179.
    let f = json!({"content_type": "image", "nsfw": 0.6, "toxic": 0.2, "prior_strikes": 5});
    let e = eval(&a, f.clone());
    assert_eq!(
        outputs(&e),
        [("nsfw", 0.536), ("ok", 0.286), ("toxic", 0.179)]
    );
    assert_eq!((e.decision.as_str(), e.confidence), ("escalate", 0.536));
    // Another threshold re-decides the same scores.
    let e2 = evaluate(&a, &features(f.clone()), Some(0.5)).unwrap();
    assert_eq!(e2.outputs, e.outputs);
    assert_eq!((e2.decision.as_str(), e2.threshold), ("remove", 0.5));
    let e3 = evaluate(&a, &features(f), Some(0.99)).unwrap();
    assert_eq!(e3.decision, "escalate");
    // Below every band.
    let e = eval(
        &a,
        json!({"content_type": "comment", "toxic": 0.1, "spam": 0.05, "prior_strikes": 0}),
    );
    assert_eq!(e.decision, "allow");
    assert_eq!(e.confidence, e.outputs[0].score);
    assert_eq!(e.outputs[0].label, "ok");
}

#[test]
fn scorecard_points_to_probability() {
    let a = scorecard();
    // 600 + 25 + 15 = 640 points: 40 points above the base, two doublings of even odds → 4:1.
    let e = eval(&a, json!({"credit_score": 720, "housing": "own"}));
    assert_eq!(outputs(&e), [("approve", 0.8), ("deny", 0.2)]);
    assert_eq!(
        (e.decision.as_str(), e.confidence, e.threshold),
        ("approve", 0.8, 0.7)
    );
    // 600 + 0 − 5 = 595: odds 2^(−1/4) = 0.8409 → p = 0.4568.
    let e = eval(&a, json!({"credit_score": 650, "housing": "rent"}));
    assert_eq!(outputs(&e), [("deny", 0.5432), ("approve", 0.4568)]);
    assert_eq!((e.decision.as_str(), e.confidence), ("refer", 0.4568));
    // Bin bounds are exclusive: 600 is in the second bin; a missing score gets −10.
    let a600 = eval(&a, json!({"credit_score": 600, "housing": "own"}));
    let a650 = eval(&a, json!({"credit_score": 650, "housing": "own"}));
    assert_eq!(a600.outputs, a650.outputs);
    // 600 − 30 − 5 = 565: odds 2^(−35/20) = 1/3.364 → p = 0.2292 → deny, confidence 0.7708.
    let e = eval(&a, json!({"housing": "other", "credit_score": 599}));
    let e_missing = eval(&a, json!({"housing": "other", "credit_score": null}));
    assert_eq!(outputs(&e), [("deny", 0.7708), ("approve", 0.2292)]);
    assert_eq!((e.decision.as_str(), e.confidence), ("deny", 0.7708));
    // −10 (missing) − 5 = 585: odds 2^(−3/4) = 0.5946 → p = 0.3729.
    assert_eq!(outputs(&e_missing), [("deny", 0.6271), ("approve", 0.3729)]);
    // Threshold override: 0.8 no longer reaches 0.95.
    let e = evaluate(
        &a,
        &features(json!({"credit_score": 720, "housing": "own"})),
        Some(0.95),
    )
    .unwrap();
    assert_eq!(
        (e.decision.as_str(), e.confidence, e.threshold),
        ("refer", 0.8, 0.95)
    );
}

#[test]
fn logistic_and_linear_terms() {
    let a = logistic();
    // −2 + 0.5 ln 1 + 1 (ecommerce) + 2 (new device) + 0.25 × clip(9 − 1, 0, 4) = 2.
    let e = eval(
        &a,
        json!({"amount": 1, "channel": "ecommerce", "new_device": true, "txn_1h": 9}),
    );
    assert_eq!(outputs(&e), [("fraud", 0.8808), ("legit", 0.1192)]);
    assert_eq!((e.decision.as_str(), e.confidence), ("block", 0.8808));
    // Missing channel → "pos" (weight 0); missing txn_1h → 1 → 0; z = −2.
    let e = eval(&a, json!({"amount": 1.0, "new_device": false}));
    assert_eq!(outputs(&e), [("legit", 0.8808), ("fraud", 0.1192)]);
    assert_eq!((e.decision.as_str(), e.confidence), ("allow", 0.8808));
    // Unlisted category → 0; ln(e²) = 2 → +1.
    let amount = libm::exp(2.0);
    let e = eval(
        &a,
        json!({"amount": amount, "channel": "pos", "new_device": false, "txn_1h": 1}),
    );
    assert_eq!(e.outputs[0].label, "legit");
    assert_eq!(
        e.outputs[0].score,
        round_score(1.0 - sigmoid(-2.0 + 0.5 * libm::log(amount)), 4)
    );
    // A lower threshold blocks it.
    let e = evaluate(
        &a,
        &features(json!({"amount": 1, "new_device": false})),
        Some(0.1),
    )
    .unwrap();
    assert_eq!((e.decision.as_str(), e.confidence), ("block", 0.1192));

    let a = linear();
    let e = eval(&a, json!({"exposure": 2000, "region": "north"}));
    assert_eq!(outputs(&e), [("expected_loss", 107.5)]);
    assert_eq!(
        (e.decision.as_str(), e.confidence, e.threshold),
        ("review", 107.5, 100.0)
    );
    let e = eval(&a, json!({"exposure": 1000, "region": "south"}));
    assert_eq!(outputs(&e), [("expected_loss", 60.0)]);
    assert_eq!(e.decision, "accept");
    let e = evaluate(
        &a,
        &features(json!({"exposure": 1000, "region": "south"})),
        Some(50.0),
    )
    .unwrap();
    assert_eq!(e.decision, "review");
}

#[test]
fn trees_and_ensembles() {
    let a = tree();
    let e = eval(&a, json!({"delinquencies": 3, "credit_score": 800}));
    assert_eq!(outputs(&e), [("deny", 0.8), ("approve", 0.2)]);
    assert_eq!((e.decision.as_str(), e.confidence), ("deny", 0.8));
    let e = eval(&a, json!({"delinquencies": 0, "credit_score": 700}));
    assert_eq!(outputs(&e), [("approve", 0.9), ("deny", 0.1)]);
    assert_eq!(e.decision, "approve");
    // if_missing sends a missing credit score down the `then` branch.
    let e = eval(&a, json!({"delinquencies": 1}));
    assert_eq!(outputs(&e), [("approve", 0.55), ("deny", 0.45)]);
    assert_eq!((e.decision.as_str(), e.confidence), ("refer", 0.55));
    let e = evaluate(&a, &features(json!({"delinquencies": 1})), Some(0.5)).unwrap();
    assert_eq!(e.decision, "approve");

    let a = ensemble();
    // −1 + 1.5 + 1.5 = 2.
    let e = eval(&a, json!({"mcc": "4829", "country_mismatch": true}));
    assert_eq!(outputs(&e), [("fraud", 0.8808), ("legit", 0.1192)]);
    assert_eq!(e.decision, "block");
    // −1 − 0.5 + 0 = −1.5: 1 / (1 + e^1.5) = 0.18243 → 0.1824.
    let e = eval(&a, json!({"mcc": "5411", "country_mismatch": false}));
    assert_eq!(outputs(&e), [("legit", 0.8176), ("fraud", 0.1824)]);
    assert_eq!((e.decision.as_str(), e.confidence), ("allow", 0.8176));
    let e = evaluate(
        &a,
        &features(json!({"mcc": "5411", "country_mismatch": false})),
        Some(0.18),
    )
    .unwrap();
    assert_eq!((e.decision.as_str(), e.confidence), ("block", 0.1824));
}

#[test]
fn errors_name_the_feature() {
    let cases: Vec<(Artifact, Value, ModelError)> = vec![
        (
            scorecard(),
            json!({"credit_score": 700}),
            ModelError::MissingFeature {
                feature: "housing".into(),
            },
        ),
        (
            scorecard(),
            json!({"credit_score": 700, "housing": 3}),
            ModelError::WrongType {
                feature: "housing".into(),
                expected: "a string",
                found: "a number",
            },
        ),
        (
            scorecard(),
            json!({"credit_score": "700", "housing": "own"}),
            ModelError::WrongType {
                feature: "credit_score".into(),
                expected: "a number",
                found: "a string",
            },
        ),
        (
            logistic(),
            json!({"amount": 0, "new_device": false}),
            ModelError::BadFeatureValue {
                feature: "amount".into(),
                reason: "ln needs a positive number, got 0".into(),
            },
        ),
        (
            logistic(),
            json!({"amount": 5, "channel": 2, "new_device": false}),
            ModelError::WrongType {
                feature: "channel".into(),
                expected: "a string",
                found: "a number",
            },
        ),
        (
            tree(),
            json!({"credit_score": 700}),
            ModelError::MissingFeature {
                feature: "delinquencies".into(),
            },
        ),
        (
            ensemble(),
            json!({"mcc": "5411", "country_mismatch": "yes"}),
            ModelError::WrongType {
                feature: "country_mismatch".into(),
                expected: "a boolean",
                found: "a string",
            },
        ),
        (
            rule_set(),
            json!({"content_type": "comment", "toxic": 0.2}),
            ModelError::MissingFeature {
                feature: "prior_strikes".into(),
            },
        ),
        (
            rule_set(),
            json!({"content_type": "comment", "toxic": 0.2, "prior_strikes": 0}),
            ModelError::MissingFeature {
                feature: "spam".into(),
            },
        ),
    ];
    for (a, f, want) in cases {
        let got = evaluate(&a, &features(f.clone()), None).unwrap_err();
        assert_eq!(got, want, "{} on {f}", a.kind());
        let feature = match &want {
            ModelError::MissingFeature { feature }
            | ModelError::WrongType { feature, .. }
            | ModelError::BadFeatureValue { feature, .. } => feature,
            _ => unreachable!(),
        };
        assert!(got.to_string().contains(&format!("`{feature}`")), "{got}");
    }
    // A non-finite threshold is refused.
    let err = evaluate(
        &tree(),
        &features(json!({"delinquencies": 0})),
        Some(f64::NAN),
    );
    assert!(matches!(err, Err(ModelError::Policy { .. })));
}

#[test]
fn hash_addresses_the_canonical_bytes() {
    for a in all() {
        let sha = artifact_sha256(&a).unwrap();
        assert!(is_sha256_hex(&sha), "{sha}");
        let bytes = artifact_bytes(&a).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha);
        // Stored canonical bytes and any other spelling of the same document both verify.
        assert_eq!(load_verified(&bytes, &sha).unwrap(), a);
        let pretty =
            serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&bytes).unwrap()).unwrap();
        assert_eq!(load_verified(&pretty, &sha).unwrap(), a);
        assert_eq!(load_verified(&bytes, &sha.to_ascii_uppercase()).unwrap(), a);
        // The document starts with its format and kind.
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["format"], FORMAT);
        assert_eq!(v["kind"], a.kind());
        assert_eq!(artifact_key(&sha), format!("models/{sha}"));
        assert_eq!(metadata_key(&sha), format!("models/{sha}.metadata.json"));
    }
    // Any change to the model changes the address.
    let a = logistic();
    let sha = artifact_sha256(&a).unwrap();
    let mut v: Value = serde_json::from_slice(&artifact_bytes(&a).unwrap()).unwrap();
    v["terms"][2]["weight"] = json!(2.0000001);
    let tampered = serde_json::to_vec(&v).unwrap();
    match load_verified(&tampered, &sha) {
        Err(ModelError::HashMismatch { expected, actual }) => {
            assert_eq!(expected, sha);
            assert_ne!(actual, sha);
        }
        other => panic!("{other:?}"),
    }
    // Only the threshold differs: still another model.
    let mut v: Value = serde_json::from_slice(&artifact_bytes(&a).unwrap()).unwrap();
    v["policy"]["threshold"] = json!(0.6);
    assert_ne!(artifact_sha256(&artifact(v)).unwrap(), sha);
    // Distinct artifacts, distinct addresses.
    let mut shas: Vec<String> = all().iter().map(|a| artifact_sha256(a).unwrap()).collect();
    shas.sort();
    shas.dedup();
    assert_eq!(shas.len(), all().len());
    assert!(!is_sha256_hex("ABC"));
}

use sha2::Digest as _;

#[test]
fn evaluation_is_deterministic_and_survives_json() {
    let f = features(json!({
        "content_type": "image", "nsfw": 0.73, "toxic": 0.31, "spam": 0.0,
        "prior_strikes": 1, "credit_score": 612, "housing": "rent", "amount": 123.45,
        "channel": "atm", "new_device": true, "txn_1h": 3, "exposure": 1234.5,
        "region": "north", "delinquencies": 1, "mcc": "7995", "country_mismatch": false
    }));
    // The same features in another insertion order.
    let mut reversed = Map::new();
    for (k, v) in f.iter().rev() {
        reversed.insert(k.clone(), v.clone());
    }
    for a in all() {
        let e1 = evaluate(&a, &f, None).unwrap();
        let e2 = evaluate(&a, &reversed, None).unwrap();
        let reparsed =
            load_verified(&artifact_bytes(&a).unwrap(), &artifact_sha256(&a).unwrap()).unwrap();
        let e3 = evaluate(&reparsed, &f, None).unwrap();
        assert!(compare(&recorded(&e1), &e2).matches_exactly);
        assert!(compare(&recorded(&e1), &e3).matches_exactly);
        // Through JSON text (as a record carries it) the bits are unchanged.
        let text = serde_json::to_string(&e1).unwrap();
        let back: Evaluation = serde_json::from_str(&text).unwrap();
        assert!(compare(&recorded(&back), &e1).matches_exactly, "{text}");
        // Sorted highest first.
        assert!(e1.outputs.windows(2).all(|w| w[0].score >= w[1].score));
    }
}

fn recorded(e: &Evaluation) -> Recorded<'_> {
    Recorded {
        outputs: &e.outputs,
        decision: &e.decision,
        confidence: Some(e.confidence),
        threshold: Some(e.threshold),
    }
}

#[test]
fn compare_reports_every_difference_bit_exactly() {
    let a = scorecard();
    let e = eval(&a, json!({"credit_score": 650, "housing": "rent"}));
    let mut outputs = e.outputs.clone();
    outputs[1].score = f64::from_bits(outputs[1].score.to_bits() + 1);
    let original = Recorded {
        outputs: &outputs,
        decision: "approve",
        confidence: None,
        threshold: Some(e.threshold),
    };
    let c = compare(&original, &e);
    assert!(!c.matches_exactly);
    let fields: Vec<&str> = c.differences.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["outputs[1].score", "decision", "confidence"]);
    assert_eq!(c.differences[2].original, Value::Null);
    // Zero and negative zero differ.
    let mut z = e.clone();
    z.confidence = 0.0;
    let mut nz = e.clone();
    nz.confidence = -0.0;
    assert!(!compare(&recorded(&z), &nz).matches_exactly);
    // Output count and label order.
    let short = &e.outputs[..1];
    let c = compare(
        &Recorded {
            outputs: short,
            ..recorded(&e)
        },
        &e,
    );
    assert_eq!(c.differences[0].field, "outputs");
    let swapped: Vec<Output> = e.outputs.iter().rev().cloned().collect();
    let c = compare(
        &Recorded {
            outputs: &swapped,
            ..recorded(&e)
        },
        &e,
    );
    assert_eq!(c.differences[0].field, "outputs[0].label");

    // From a record.
    let record: Record = serde_json::from_value(json!({
        "schema_version": 1, "kind": "decision", "decision_id": "d1", "tenant_id": "t",
        "occurred_at": "2026-03-15T10:00:00.000Z",
        "model": {"name": "m", "version": "1", "artifact_sha256": artifact_sha256(&a).unwrap()},
        "outputs": [{"label": "deny", "score": 0.5432}, {"label": "approve", "score": 0.4568}],
        "decision": "refer", "confidence": 0.4568, "threshold": 0.7
    }))
    .unwrap();
    let r = Recorded::from_record(&record).unwrap();
    assert!(compare(&r, &e).matches_exactly, "{:?}", compare(&r, &e));
}

#[test]
fn redecide_uses_only_the_recorded_outputs() {
    let a = ensemble();
    let e = eval(&a, json!({"mcc": "5411", "country_mismatch": false}));
    let same = redecide(&a, &e.outputs, e.threshold).unwrap();
    assert_eq!(same, e);
    let flipped = redecide(&a, &e.outputs, 0.15).unwrap();
    assert_eq!(
        (flipped.decision.as_str(), flipped.confidence),
        ("block", 0.1824)
    );
    let missing = redecide(&a, &e.outputs[..1], 0.5);
    assert!(matches!(missing, Err(ModelError::Policy { .. })));
}

#[test]
fn rounding_is_half_away_from_zero_without_negative_zero() {
    assert_eq!(round_score(0.12345, 3), 0.123);
    assert_eq!(round_score(0.125, 2), 0.13);
    assert_eq!(round_score(-0.125, 2), -0.13);
    assert_eq!(round_score(2.5, 0), 3.0);
    let z = round_score(-0.00001, 3);
    assert_eq!(z.to_bits(), 0.0f64.to_bits());
    assert_eq!(round_score(0.3, 10), 0.3);
    // 1 − 0.8808 in binary64 is 0.11919999999999997; rounding gives the shortest form.
    assert_eq!(round_score(1.0 - 0.8808, 4).to_string(), "0.1192");
}

#[test]
fn parsing_is_strict_and_names_the_place() {
    let base = serde_json::to_value(logistic()).unwrap();
    let with = |pointer: &str, value: Value| {
        let mut v = base.clone();
        *v.pointer_mut(pointer).unwrap() = value;
        Artifact::from_value(v)
    };
    assert_eq!(
        with("/kind", json!("onnx")),
        Err(ModelError::Unsupported {
            kind: "onnx".into()
        })
    );
    assert_eq!(
        with("/format", json!("dj-model/v2")),
        Err(ModelError::UnsupportedFormat {
            format: "dj-model/v2".into()
        })
    );
    let mut v = base.clone();
    v.as_object_mut()
        .unwrap()
        .insert("intercep".into(), json!(1));
    match Artifact::from_value(v) {
        Err(ModelError::Invalid { reason, .. }) => assert!(reason.contains("intercep"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match with("/terms/0/weight", json!("heavy")) {
        Err(ModelError::Invalid { path, .. }) => assert_eq!(path, "terms[0].weight"),
        other => panic!("{other:?}"),
    }
    match with("/policy/decimals", json!(11)) {
        Err(ModelError::Invalid { path, .. }) => assert_eq!(path, "policy.decimals"),
        other => panic!("{other:?}"),
    }
    match with("/policy/decision_score", json!({"best": "fraud"})) {
        Err(ModelError::Invalid { path, .. }) => assert!(path.starts_with("policy"), "{path}"),
        other => panic!("{other:?}"),
    }
    let mut v = base.clone();
    v["terms"][1]["weight"] = json!(1);
    match Artifact::from_value(v) {
        Err(ModelError::Invalid { path, reason }) => {
            assert_eq!(path, "terms[1]");
            assert!(reason.contains("exactly one"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let sc = serde_json::to_value(scorecard()).unwrap();
    let mut v = sc.clone();
    v["characteristics"][0]["bins"][1]["below"] = json!(500);
    match Artifact::from_value(v) {
        Err(ModelError::Invalid { path, .. }) => {
            assert_eq!(path, "characteristics[0].bins[1].below")
        }
        other => panic!("{other:?}"),
    }
    let tr = serde_json::to_value(tree()).unwrap();
    let mut v = tr.clone();
    v["tree"]["split"]["if"]["value"] = json!("two");
    match Artifact::from_value(v) {
        Err(ModelError::Invalid { path, .. }) => assert_eq!(path, "tree.split.if.value"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Artifact::from_json(b"[1]"),
        Err(ModelError::Invalid { .. })
    ));
    assert!(matches!(
        load_verified(b"not json", &"0".repeat(64)),
        Err(ModelError::Invalid { .. })
    ));
    // Serde entry point gives the same artifact.
    let via_serde: Artifact = serde_json::from_value(base.clone()).unwrap();
    assert_eq!(via_serde, logistic());
}

#[test]
fn metadata_document() {
    let a = ensemble();
    let m = ModelMetadata::new(
        "card-fraud-gbm",
        "2026.01.0",
        &a,
        Some("ab".repeat(32)),
        [("auc".to_string(), 0.94), ("ks".to_string(), 0.71)]
            .into_iter()
            .collect(),
        crate::timestamp::Timestamp::parse("2026-01-20T09:00:00Z").unwrap(),
    )
    .unwrap();
    assert_eq!(m.kind, "tree_ensemble");
    assert_eq!(m.artifact_sha256, artifact_sha256(&a).unwrap());
    let bytes = m.to_bytes().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.contains(r#""created_at":"2026-01-20T09:00:00.000Z""#),
        "{text}"
    );
    let back: ModelMetadata = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, m);
}

/// Every artifact in `docs/models.md` parses, and every `json example` block after it
/// evaluates to exactly the evaluation shown.
#[test]
fn docs_examples() {
    let doc = include_str!("../../../../docs/models.md");
    let mut current: Option<Artifact> = None;
    let (mut artifacts, mut examples) = (0, 0);
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let info = info.trim().to_string();
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        match info.as_str() {
            "json" if body.contains("\"format\"") => {
                let a =
                    Artifact::from_json(body.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{body}"));
                // Any spelling verifies against the address of the parsed artifact.
                let sha = artifact_sha256(&a).unwrap();
                assert_eq!(load_verified(body.as_bytes(), &sha).unwrap(), a);
                current = Some(a);
                artifacts += 1;
            }
            "json example" => {
                let v: Value =
                    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
                let a = current.as_ref().expect("an example follows an artifact");
                let want: Evaluation = serde_json::from_value(v["evaluation"].clone()).unwrap();
                let got = evaluate(a, &features(v["features"].clone()), v["threshold"].as_f64())
                    .unwrap_or_else(|e| panic!("{e}\n{body}"));
                let c = compare(&recorded(&want), &got);
                assert!(c.matches_exactly, "{:?}\n{body}", c.differences);
                examples += 1;
            }
            _ => {}
        }
    }
    assert_eq!(artifacts, 6);
    assert!(examples >= 8, "{examples}");
}

#[test]
fn error_messages_read_well() {
    let e = Artifact::from_value({
        let mut v = serde_json::to_value(logistic()).unwrap();
        v["terms"][0]["weight"] = json!("heavy");
        v
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid artifact at `terms[0].weight`: invalid type: string \"heavy\", expected f64"
    );
    let e = evaluate(&scorecard(), &features(json!({"credit_score": 1})), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "feature `housing` is missing and the model gives no default for it"
    );
    let e = redecide(&ensemble(), &[], 0.5).unwrap_err();
    assert_eq!(e.to_string(), "decision policy: no output labelled `fraud`");
}

#[test]
fn document_level_errors_have_no_path() {
    let e = Artifact::from_json(b"[1]").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid artifact: an artifact is a JSON object"
    );
    let mut v = serde_json::to_value(logistic()).unwrap();
    v.as_object_mut()
        .unwrap()
        .insert("intercep".into(), json!(1));
    let e = Artifact::from_value(v).unwrap_err();
    assert!(e.to_string().starts_with("invalid artifact"), "{e}");
    assert!(e.to_string().contains("intercep"), "{e}");
}
