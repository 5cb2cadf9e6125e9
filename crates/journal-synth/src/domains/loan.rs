//! Loan underwriting: a credit-risk model (a scorecard, a logistic regression or a decision tree,
//! depending on the version) scores an application; strong applications are
//! approved automatically, weak ones declined with an adverse-action notice, the rest referred
//! to an underwriter. High risk tier (credit decisions fall under GDPR Art. 22 and SR 11-7).

use serde_json::{json, Map, Value};

use super::{
    money, outputs_of, score_of, static_label, DomainSpec, Draft, FollowSeed, ModelSpec,
    ResolvedModel, StepDraft,
};
use crate::config::Domain;
use crate::sample::{self as s, Rng};

pub(crate) const SPEC: DomainSpec = DomainSpec {
    model: "credit-risk",
    service: "loan-api",
    outcome_service: "loan-servicing",
    review_service: "underwriting-console",
    reviewer_prefix: "underwriter",
    versions: &[
        // The long-serving points scorecard, kept on a slice of traffic as the benchmark.
        ModelSpec {
            version: "3.1.4",
            weight: 15,
            threshold: 0.75,
            bias: -0.15,
            created_at: "2025-06-02T14:00:00.000Z",
            metrics: &[("auc", 0.771), ("gini", 0.542), ("ks", 0.41)],
        },
        // The production logistic regression.
        ModelSpec {
            version: "3.2.0",
            weight: 80,
            threshold: 0.75,
            bias: 0.0,
            created_at: "2025-11-18T09:30:00.000Z",
            metrics: &[
                ("auc", 0.802),
                ("brier", 0.121),
                ("gini", 0.604),
                ("ks", 0.47),
            ],
        },
        // A decision-tree challenger on canary traffic.
        ModelSpec {
            version: "3.3.0-rc.1",
            weight: 5,
            threshold: 0.7,
            bias: 0.2,
            created_at: "2026-02-24T16:45:00.000Z",
            metrics: &[("auc", 0.784), ("gini", 0.568), ("ks", 0.44)],
        },
    ],
    has_dataset: true,
    lean_caller: false,
    labels: &["approve", "deny", "refer"],
    confirm_notes: &[
        "Income verified against pay stubs",
        "Bureau file reviewed, no discrepancies",
        "Policy exception not warranted",
    ],
    override_notes: &[
        "Verified additional income not in application",
        "Recent delinquency disputed and corrected by bureau",
        "Collateral changes risk assessment",
    ],
};

/// Below this approval probability an application is declined outright.
const DENY_BELOW: f64 = 0.45;

const CHANNELS: &[(&str, u32)] = &[("web", 45), ("mobile", 35), ("branch", 12), ("broker", 8)];
const TERMS: &[u32] = &[36, 48, 60, 72];

/// Approve at or above the threshold, refer down to [`DENY_BELOW`], decline below it; the
/// confidence of a decline is the probability of `deny`.
fn policy(threshold: f64) -> Value {
    json!({
        "complement": "deny",
        "decimals": 4,
        "decision_score": {"output": "approve"},
        "threshold": threshold,
        "at_or_above": {"decision": "approve", "confidence": "decision_score"},
        "bands": [{"min": DENY_BELOW, "decision": "refer", "confidence": "decision_score"}],
        "below": {"decision": "deny", "confidence": {"output": "deny"}}
    })
}

/// The registry artifact of a `credit-risk` version: a points scorecard (3.1.4), a logistic
/// regression (3.2.0) or a decision tree (3.3.0-rc.1), all giving the approval probability.
/// Every number is a literal, so the artifact (and its hash) is the same on every platform.
pub(crate) fn artifact(v: &ModelSpec) -> Value {
    match v.version {
        "3.1.4" => scorecard(v),
        "3.3.0-rc.1" => tree(v),
        _ => logistic(v),
    }
}

fn logistic(v: &ModelSpec) -> Value {
    // The classic drivers: log income and log loan amount (together the loan-to-income ratio),
    // debt-to-income, tenure (capped at 10 years), delinquencies and recent credit inquiries
    // (absent from older producers' requests, then taken as none).
    json!({
        "format": "dj-model/v1",
        "kind": "logistic",
        "label": "approve",
        "intercept": -13.27 + v.bias,
        "terms": [
            {"feature": "credit_score", "weight": 0.014},
            {"feature": "annual_income", "weight": 0.95, "transforms": ["ln"]},
            {"feature": "loan_amount", "weight": -0.35, "transforms": ["ln"]},
            {"feature": "dti_ratio", "weight": -5.0},
            {"feature": "employment_years", "weight": 0.06, "transforms": [{"clip": {"min": 0, "max": 10}}]},
            {"feature": "delinquencies_24m", "weight": -0.8},
            {"feature": "inquiries_6m", "weight": -0.3, "missing": 0}
        ],
        "policy": policy(v.threshold)
    })
}

fn bins(points: &[(Option<f64>, f64)]) -> Value {
    Value::Array(
        points
            .iter()
            .map(|(below, p)| match below {
                Some(b) => json!({"below": b, "points": p}),
                None => json!({"points": p}),
            })
            .collect(),
    )
}

fn scorecard(v: &ModelSpec) -> Value {
    // 600 points at 4:1 approval odds, doubling every 20 points; a typical applicant scores
    // about 602 (p ≈ 0.81).
    json!({
        "format": "dj-model/v1",
        "kind": "scorecard",
        "label": "approve",
        "initial_points": 602,
        "characteristics": [
            {"feature": "credit_score", "bins": bins(&[
                (Some(580.0), -50.0), (Some(620.0), -32.0), (Some(660.0), -16.0),
                (Some(700.0), 0.0), (Some(740.0), 16.0), (Some(780.0), 30.0), (None, 45.0)])},
            {"feature": "dti_ratio", "bins": bins(&[
                (Some(0.2), 25.0), (Some(0.3), 10.0), (Some(0.36), 0.0),
                (Some(0.43), -13.0), (Some(0.5), -23.0), (None, -40.0)])},
            {"feature": "annual_income", "bins": bins(&[
                (Some(30_000.0), -18.0), (Some(50_000.0), -7.0), (Some(80_000.0), 0.0),
                (Some(120_000.0), 8.0), (Some(200_000.0), 14.0), (None, 22.0)])},
            {"feature": "loan_amount", "bins": bins(&[
                (Some(5_000.0), 6.0), (Some(15_000.0), 3.0), (Some(30_000.0), 0.0),
                (Some(60_000.0), -8.0), (None, -20.0)])},
            {"feature": "employment_years", "bins": bins(&[
                (Some(1.0), 0.0), (Some(3.0), 3.0), (Some(6.0), 8.0),
                (Some(10.0), 13.0), (None, 17.0)])},
            {"feature": "delinquencies_24m", "bins": bins(&[
                (Some(1.0), 0.0), (Some(2.0), -23.0), (Some(3.0), -46.0), (None, -70.0)])},
            {"feature": "inquiries_6m", "missing_points": 0, "bins": bins(&[
                (Some(1.0), 9.0), (Some(2.0), 0.0), (Some(3.0), -9.0),
                (Some(5.0), -20.0), (None, -35.0)])}
        ],
        "odds_scale": {"points": 600, "odds": 4, "pdo": 20},
        "policy": policy(v.threshold)
    })
}

fn split(feature: &str, op: &str, value: Value, then: Value, otherwise: Value) -> Value {
    json!({"split": {"if": {"feature": feature, "op": op, "value": value},
                     "then": then, "else": otherwise}})
}

fn leaf(x: f64) -> Value {
    json!({ "leaf": x })
}

fn tree(v: &ModelSpec) -> Value {
    // Leaves are approval probabilities (identity link): coarse, as a single tree's are.
    let strong = split(
        "dti_ratio",
        "<",
        json!(0.45),
        split("delinquencies_24m", "<", json!(1), leaf(0.93), leaf(0.79)),
        leaf(0.66),
    );
    let middle = split(
        "dti_ratio",
        "<",
        json!(0.36),
        split("annual_income", "<", json!(40_000), leaf(0.68), leaf(0.81)),
        split("dti_ratio", "<", json!(0.45), leaf(0.63), leaf(0.42)),
    );
    let weak = split("dti_ratio", "<", json!(0.3), leaf(0.52), leaf(0.31));
    let clean = split(
        "credit_score",
        "<",
        json!(620),
        weak,
        split("credit_score", "<", json!(700), middle, strong),
    );
    let root = split(
        "delinquencies_24m",
        ">=",
        json!(2),
        split("credit_score", "<", json!(680), leaf(0.18), leaf(0.41)),
        clean,
    );
    json!({
        "format": "dj-model/v1",
        "kind": "decision_tree",
        "label": "approve",
        "link": "identity",
        "tree": root,
        "policy": policy(v.threshold)
    })
}

pub(crate) fn draft(rng: &mut Rng, model: &ResolvedModel) -> Draft {
    let credit_score = s::clamp(s::normal(rng, 690.0, 70.0), 300.0, 850.0).round();
    let income = (s::clamp(s::log_normal(rng, 68_000.0, 0.55), 12_000.0, 2_000_000.0) / 100.0)
        .round()
        * 100.0;
    let dti = s::round_to(s::clamp(s::normal(rng, 0.33, 0.11), 0.02, 0.95), 2);
    let employment_years = s::clamp(s::exponential(rng, 6.0), 0.0, 45.0).floor();
    let amount =
        (s::clamp(s::log_normal(rng, 15_000.0, 0.7), 1_000.0, 250_000.0) / 500.0).round() * 500.0;
    let term = *s::uniform(rng, TERMS);
    let delinquencies = s::poisson(rng, 0.3, 9);
    let inquiries = s::poisson(rng, 1.0, 12);
    let channel = *s::weighted(rng, CHANNELS);

    let mut features = Map::new();
    features.insert("credit_score".into(), json!(credit_score as i64));
    features.insert("annual_income".into(), json!(income as i64));
    features.insert("dti_ratio".into(), json!(dti));
    features.insert("employment_years".into(), json!(employment_years as i64));
    features.insert("loan_amount".into(), json!(amount as i64));
    features.insert("delinquencies_24m".into(), json!(delinquencies));
    features.insert("inquiries_6m".into(), json!(inquiries));

    let e = model.evaluate(&features);
    let p = score_of(&e, "approve");
    let threshold = e.threshold;
    let decision = static_label(Domain::Loan, &e.decision);
    let (action_type, action_detail, rationale) = match decision {
        "approve" => {
            let apr = s::round_to(5.0 + (1.0 - p) * 14.0, 1);
            (
                "automated",
                format!("offer issued: {term} mo at {apr}% APR"),
                format!(
                    "Credit score {credit_score}, DTI {dti}, income {}",
                    money(income)
                ),
            )
        }
        "deny" => (
            "automated",
            "adverse action notice sent".to_string(),
            adverse_reasons(credit_score, dti, delinquencies, amount / income),
        ),
        _ => (
            "human_review",
            "queued for underwriter review".to_string(),
            format!("Score {p} below auto-approve {threshold}"),
        ),
    };

    let mut steps = Vec::new();
    if s::chance(rng, 0.15) {
        steps.push(StepDraft {
            name: "policy-rules",
            version: "2026.02",
            output: json!({"passed": dti <= 0.5 && credit_score >= 580.0}),
        });
    }
    Draft {
        features,
        outputs: outputs_of(&e),
        decision,
        confidence: e.confidence,
        threshold,
        rationale,
        action_type,
        action_detail: Some(action_detail),
        risk_tier: "high",
        steps,
        llm: None,
        explanation: decision == "deny",
        sampling_rate: None,
        channel,
        amount,
        risk: 1.0 - p,
    }
}

/// The main adverse-action reasons, strongest first (what a notice must state).
fn adverse_reasons(credit_score: f64, dti: f64, delinquencies: u32, lti: f64) -> String {
    let mut reasons: Vec<(f64, String)> = vec![
        (
            0.014 * (690.0 - credit_score),
            format!("credit score {credit_score}"),
        ),
        (5.0 * (dti - 0.33), format!("debt-to-income {dti}")),
        (
            0.8 * f64::from(delinquencies),
            format!("{delinquencies} delinquencies in 24 months"),
        ),
        (
            1.5 * (lti - 0.25),
            format!("loan-to-income {}", s::round_to(lti, 2)),
        ),
    ];
    reasons.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top: Vec<&str> = reasons.iter().take(2).map(|(_, r)| r.as_str()).collect();
    format!("Declined: {}", top.join("; "))
}

/// Later performance of the loan.
pub(crate) fn outcome(rng: &mut Rng, seed: &FollowSeed) -> (&'static str, Option<f64>) {
    match seed.decision {
        "approve" => {
            let x = s::unit(rng);
            if x < seed.risk * 0.6 {
                let loss = s::round_to(
                    seed.amount * s::clamp(s::normal(rng, 0.55, 0.15), 0.05, 1.0),
                    2,
                );
                ("defaulted", Some(loss))
            } else if x < 0.2 {
                ("prepaid", Some(seed.amount))
            } else {
                ("repaid", Some(seed.amount))
            }
        }
        "deny" => {
            if s::chance(rng, 0.1) {
                ("complaint_filed", None)
            } else {
                ("reapplied", None)
            }
        }
        _ => {
            if s::chance(rng, 0.3) {
                ("withdrawn", None)
            } else {
                ("funded_after_review", Some(seed.amount))
            }
        }
    }
}
