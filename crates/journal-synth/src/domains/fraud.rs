//! Card-payment fraud: a gradient-boosted model scores each authorization; high scores are
//! declined, middling ones challenged (3-D Secure step-up), the rest allowed. Medium risk tier.

use serde_json::{json, Map, Value};

use super::{
    outputs_of, score_of, static_label, DomainSpec, Draft, FollowSeed, ModelSpec, ResolvedModel,
    StepDraft,
};
use crate::config::Domain;
use crate::sample::{self as s, Rng};

pub(crate) const SPEC: DomainSpec = DomainSpec {
    model: "card-fraud-gbm",
    service: "card-auth",
    outcome_service: "chargeback-feed",
    review_service: "fraud-case-manager",
    reviewer_prefix: "fraud_analyst",
    versions: &[
        ModelSpec {
            version: "2025.11.2",
            weight: 30,
            threshold: 0.85,
            bias: 0.1,
            created_at: "2025-11-06T11:20:00.000Z",
            metrics: &[
                ("auc", 0.951),
                ("precision_at_block", 0.62),
                ("recall_at_block", 0.38),
            ],
        },
        ModelSpec {
            version: "2026.01.0",
            weight: 70,
            threshold: 0.9,
            bias: 0.0,
            created_at: "2026-01-12T08:05:00.000Z",
            metrics: &[
                ("auc", 0.962),
                ("precision_at_block", 0.71),
                ("recall_at_block", 0.41),
            ],
        },
    ],
    has_dataset: false,
    lean_caller: true,
    labels: &["allow", "block", "step_up"],
    confirm_notes: &[
        "Cardholder confirmed the transaction was not theirs",
        "Pattern matches known card-testing ring",
        "Merchant and device history consistent",
    ],
    override_notes: &[
        "Cardholder confirmed purchase by phone",
        "Travel notice on file explains country mismatch",
        "Linked to confirmed account takeover",
    ],
};

/// At or above this fraud probability (but below the block threshold) the payer is challenged.
const STEP_UP_AT: f64 = 0.35;

/// Merchant category code and description (the model's [`mcc_tree`] knows how much each
/// raises the fraud odds).
const MERCHANTS: &[((&str, &str), u32)] = &[
    (("5411", "grocery"), 24),
    (("5812", "restaurants"), 18),
    (("5541", "fuel"), 12),
    (("5999", "misc_retail"), 14),
    (("5732", "electronics"), 8),
    (("4829", "money_transfer"), 4),
    (("7995", "gambling"), 3),
    (("5311", "department_store"), 10),
    (("4121", "rideshare"), 7),
];
const RISKY_MERCHANTS: &[((&str, &str), u32)] = &[
    (("5732", "electronics"), 40),
    (("4829", "money_transfer"), 25),
    (("7995", "gambling"), 15),
    (("5999", "misc_retail"), 20),
];
const CHANNELS: &[(&str, u32)] = &[("pos", 55), ("ecommerce", 38), ("atm", 7)];
const FRAUD_CHANNELS: &[(&str, u32)] = &[("pos", 10), ("ecommerce", 85), ("atm", 5)];
const FRAUD_PREVALENCE: f64 = 0.01;

fn split(feature: &str, op: &str, value: Value, then: Value, otherwise: Value) -> Value {
    json!({"split": {"if": {"feature": feature, "op": op, "value": value},
                     "then": then, "else": otherwise}})
}

fn leaf(x: f64) -> Value {
    json!({ "leaf": x })
}

/// Merchant-category tree: the log-odds each category adds.
fn mcc_tree() -> Value {
    let is = |code: &str, then: Value, otherwise: Value| {
        split("mcc", "==", json!(code), then, otherwise)
    };
    split(
        "mcc",
        "in",
        json!(["4829", "7995", "5732"]),
        is("4829", leaf(1.6), is("7995", leaf(1.3), leaf(1.1))),
        split(
            "mcc",
            "in",
            json!(["5411", "5812", "4121"]),
            is("5411", leaf(-0.6), is("5812", leaf(-0.4), leaf(-0.2))),
            is("5999", leaf(0.3), is("5311", leaf(0.2), leaf(0.0))),
        ),
    )
}

/// The registry artifact of a `card-fraud-gbm` version: a gradient-boosted ensemble of small
/// trees whose leaf values (log-odds) are summed with a base score and squashed by the logistic
/// link into the fraud probability. 2026.01.0 learned two interactions (a country mismatch on
/// a card-not-present payment, a new device on a large amount) and an account-age tree that
/// 2025.11.2 lacks.
pub(crate) fn artifact(v: &ModelSpec) -> Value {
    let amount = split(
        "amount",
        "<",
        json!(42),
        split("amount", "<", json!(10), leaf(-1.0), leaf(-0.35)),
        split(
            "amount",
            "<",
            json!(200),
            leaf(0.35),
            split("amount", "<", json!(1000), leaf(1.15), leaf(1.9)),
        ),
    );
    let velocity = split(
        "txn_count_1h",
        "<",
        json!(2),
        leaf(0.0),
        split(
            "txn_count_1h",
            "<",
            json!(4),
            split("txn_count_1h", "<", json!(3), leaf(0.8), leaf(1.6)),
            split("txn_count_1h", "<", json!(6), leaf(2.8), leaf(4.4)),
        ),
    );
    let not_present = split("card_present", "==", json!(false), leaf(0.6), leaf(0.0));
    let (base, trees) = if v.version == "2025.11.2" {
        (
            -4.67,
            vec![
                amount,
                split("country_mismatch", "==", json!(true), leaf(2.3), leaf(0.0)),
                velocity,
                mcc_tree(),
                split("new_device", "==", json!(true), leaf(1.4), leaf(0.0)),
                not_present,
            ],
        )
    } else {
        (
            -4.77,
            vec![
                amount,
                split(
                    "country_mismatch",
                    "==",
                    json!(true),
                    split("card_present", "==", json!(false), leaf(2.7), leaf(1.9)),
                    leaf(0.0),
                ),
                velocity,
                mcc_tree(),
                split(
                    "new_device",
                    "==",
                    json!(true),
                    split("amount", "<", json!(200), leaf(1.2), leaf(1.8)),
                    leaf(0.0),
                ),
                not_present,
                split(
                    "account_age_days",
                    "<",
                    json!(90),
                    leaf(0.35),
                    split(
                        "account_age_days",
                        "<",
                        json!(730),
                        leaf(0.15),
                        split(
                            "account_age_days",
                            "<",
                            json!(2000),
                            leaf(-0.1),
                            leaf(-0.35),
                        ),
                    ),
                ),
            ],
        )
    };
    json!({
        "format": "dj-model/v1",
        "kind": "tree_ensemble",
        "label": "fraud",
        "link": "logistic",
        "base_score": base,
        "trees": trees,
        "policy": {
            "complement": "legit",
            "decimals": 4,
            "decision_score": {"output": "fraud"},
            "threshold": v.threshold,
            "at_or_above": {"decision": "block", "confidence": "decision_score"},
            "bands": [{"min": STEP_UP_AT, "decision": "step_up", "confidence": "decision_score"}],
            "below": {"decision": "allow", "confidence": {"output": "legit"}}
        }
    })
}

pub(crate) fn draft(rng: &mut Rng, model: &ResolvedModel) -> Draft {
    // A latent "really fraud" class (about 1 in 100) shifts every signal at once, which gives
    // the model's scores the bimodal shape real fraud scores have.
    let fraud = s::chance(rng, FRAUD_PREVALENCE);
    let &(mcc, category) = if fraud {
        s::weighted(rng, RISKY_MERCHANTS)
    } else {
        s::weighted(rng, MERCHANTS)
    };
    let channel = *s::weighted(rng, if fraud { FRAUD_CHANNELS } else { CHANNELS });
    let median_amount = if fraud { 220.0 } else { 42.0 };
    let amount = s::round_to(
        s::clamp(s::log_normal(rng, median_amount, 1.0), 0.5, 25_000.0),
        2,
    );
    let card_present = channel != "ecommerce";
    let country_mismatch = s::chance(rng, if fraud { 0.45 } else { 0.03 });
    let txn_1h = 1 + s::poisson(rng, if fraud { 3.0 } else { 0.3 }, 30);
    let account_age_days = s::clamp(s::log_normal(rng, 900.0, 1.0), 1.0, 20_000.0).round();
    let new_device = !card_present && s::chance(rng, if fraud { 0.6 } else { 0.08 });

    let mut features = Map::new();
    features.insert("amount".into(), json!(amount));
    features.insert("mcc".into(), json!(mcc));
    features.insert("card_present".into(), json!(card_present));
    features.insert("country_mismatch".into(), json!(country_mismatch));
    features.insert("txn_count_1h".into(), json!(txn_1h));
    features.insert("account_age_days".into(), json!(account_age_days as i64));
    features.insert("new_device".into(), json!(new_device));

    let e = model.evaluate(&features);
    let p = score_of(&e, "fraud");
    let decision = static_label(Domain::Fraud, &e.decision);
    let signals = risk_signals(country_mismatch, txn_1h, new_device, card_present, category);
    let (detail, rationale) = match decision {
        "block" => (
            Some("authorization declined; card locked pending contact"),
            format!("Fraud score {p}: {signals}"),
        ),
        "step_up" => (
            Some("3-D Secure challenge sent"),
            format!("Elevated fraud score {p}: {signals}"),
        ),
        _ => (None, format!("Fraud score {p} below step-up {STEP_UP_AT}")),
    };

    let mut steps = Vec::new();
    if s::chance(rng, 0.1) {
        steps.push(StepDraft {
            name: "velocity-rules",
            version: "1.9.0",
            output: json!({"hits": u32::from(txn_1h > 3) + u32::from(country_mismatch)}),
        });
    }
    Draft {
        features,
        outputs: outputs_of(&e),
        decision,
        confidence: e.confidence,
        threshold: e.threshold,
        rationale,
        action_type: "automated",
        action_detail: detail.map(str::to_string),
        risk_tier: "medium",
        steps,
        llm: None,
        explanation: false,
        sampling_rate: None,
        channel,
        amount,
        risk: p,
    }
}

fn risk_signals(
    mismatch: bool,
    txn_1h: u32,
    new_device: bool,
    present: bool,
    category: &str,
) -> String {
    let mut out: Vec<String> = Vec::new();
    if mismatch {
        out.push("card country differs from merchant".into());
    }
    if txn_1h > 2 {
        out.push(format!("{txn_1h} transactions in 1h"));
    }
    if new_device {
        out.push("new device".into());
    }
    if !present {
        out.push("card not present".into());
    }
    out.push(format!("merchant category {category}"));
    out.join(", ")
}

/// What the payment network later reported.
pub(crate) fn outcome(rng: &mut Rng, seed: &FollowSeed) -> (&'static str, Option<f64>) {
    let fraud = s::chance(rng, seed.risk);
    match (seed.decision, fraud) {
        ("allow", true) => ("chargeback", Some(seed.amount)),
        ("allow", false) => ("settled", Some(seed.amount)),
        ("block", true) => ("confirmed_fraud", Some(seed.amount)),
        ("block", false) => ("false_positive", Some(seed.amount)),
        (_, true) => ("challenge_failed", None),
        (_, false) => ("challenge_passed", Some(seed.amount)),
    }
}
