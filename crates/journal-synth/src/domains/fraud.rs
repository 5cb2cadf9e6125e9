//! Card-payment fraud: a gradient-boosted model scores each authorization; high scores are
//! declined, middling ones challenged (3-D Secure step-up), the rest allowed. Medium risk tier.

use serde_json::{json, Map};

use super::{normalized, DomainSpec, Draft, FollowSeed, ModelSpec, ResolvedModel, StepDraft};
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
        },
        ModelSpec {
            version: "2026.01.0",
            weight: 70,
            threshold: 0.9,
            bias: 0.0,
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

/// Merchant category code, description, and how much it raises fraud odds.
const MERCHANTS: &[((&str, &str, f64), u32)] = &[
    (("5411", "grocery", -0.6), 24),
    (("5812", "restaurants", -0.4), 18),
    (("5541", "fuel", 0.0), 12),
    (("5999", "misc_retail", 0.3), 14),
    (("5732", "electronics", 1.1), 8),
    (("4829", "money_transfer", 1.6), 4),
    (("7995", "gambling", 1.3), 3),
    (("5311", "department_store", 0.2), 10),
    (("4121", "rideshare", -0.2), 7),
];
const RISKY_MERCHANTS: &[((&str, &str, f64), u32)] = &[
    (("5732", "electronics", 1.1), 40),
    (("4829", "money_transfer", 1.6), 25),
    (("7995", "gambling", 1.3), 15),
    (("5999", "misc_retail", 0.3), 20),
];
const CHANNELS: &[(&str, u32)] = &[("pos", 55), ("ecommerce", 38), ("atm", 7)];
const FRAUD_CHANNELS: &[(&str, u32)] = &[("pos", 10), ("ecommerce", 85), ("atm", 5)];
const FRAUD_PREVALENCE: f64 = 0.01;

pub(crate) fn draft(rng: &mut Rng, model: &ResolvedModel) -> Draft {
    // A latent "really fraud" class (about 1 in 100) shifts every signal at once, which gives
    // the model's scores the bimodal shape real fraud scores have.
    let fraud = s::chance(rng, FRAUD_PREVALENCE);
    let &(mcc, category, mcc_risk) = if fraud {
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

    let logit = -4.4
        + model.spec.bias
        + 0.5 * s::ln(amount / 42.0)
        + 2.4 * f64::from(u8::from(country_mismatch))
        + 0.8 * f64::from(txn_1h - 1).min(6.0)
        + mcc_risk
        + 1.4 * f64::from(u8::from(new_device))
        + 0.6 * f64::from(u8::from(!card_present))
        - 0.3 * s::ln(1.0 + account_age_days / 365.0)
        + s::normal(rng, 0.0, 0.6);
    let p = s::round_to(s::clamp(s::sigmoid(logit), 0.0001, 0.9999), 4);
    let threshold = model.spec.threshold;

    let mut features = Map::new();
    features.insert("amount".into(), json!(amount));
    features.insert("mcc".into(), json!(mcc));
    features.insert("card_present".into(), json!(card_present));
    features.insert("country_mismatch".into(), json!(country_mismatch));
    features.insert("txn_count_1h".into(), json!(txn_1h));
    features.insert("account_age_days".into(), json!(account_age_days as i64));
    features.insert("new_device".into(), json!(new_device));

    let signals = risk_signals(country_mismatch, txn_1h, new_device, card_present, category);
    let (decision, detail, rationale) = if p >= threshold {
        (
            "block",
            Some("authorization declined; card locked pending contact"),
            format!("Fraud score {p}: {signals}"),
        )
    } else if p >= STEP_UP_AT {
        (
            "step_up",
            Some("3-D Secure challenge sent"),
            format!("Elevated fraud score {p}: {signals}"),
        )
    } else {
        (
            "allow",
            None,
            format!("Fraud score {p} below step-up {STEP_UP_AT}"),
        )
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
        outputs: normalized(vec![("fraud", p), ("legit", 1.0 - p)]),
        decision,
        confidence: if decision == "allow" { 1.0 - p } else { p },
        threshold,
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
