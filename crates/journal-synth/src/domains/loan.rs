//! Loan underwriting: a credit-risk model scores an application; strong applications are
//! approved automatically, weak ones declined with an adverse-action notice, the rest referred
//! to an underwriter. High risk tier (credit decisions fall under GDPR Art. 22 and SR 11-7).

use serde_json::{json, Map};

use super::{
    money, normalized, DomainSpec, Draft, FollowSeed, ModelSpec, ResolvedModel, StepDraft,
};
use crate::sample::{self as s, Rng};

pub(crate) const SPEC: DomainSpec = DomainSpec {
    model: "credit-risk",
    service: "loan-api",
    outcome_service: "loan-servicing",
    review_service: "underwriting-console",
    reviewer_prefix: "underwriter",
    versions: &[
        ModelSpec {
            version: "3.1.4",
            weight: 15,
            threshold: 0.75,
            bias: -0.15,
        },
        ModelSpec {
            version: "3.2.0",
            weight: 80,
            threshold: 0.75,
            bias: 0.0,
        },
        ModelSpec {
            version: "3.3.0-rc.1",
            weight: 5,
            threshold: 0.7,
            bias: 0.2,
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
    let channel = *s::weighted(rng, CHANNELS);

    // Logistic-ish score: the usual underwriting drivers with plausible signs and weights.
    let logit =
        1.6 + model.spec.bias + 0.014 * (credit_score - 690.0) + 0.6 * s::ln(income / 68_000.0)
            - 5.0 * (dti - 0.33)
            + 0.06 * employment_years.min(10.0)
            - 0.8 * f64::from(delinquencies)
            - 1.5 * (amount / income - 0.25)
            + s::normal(rng, 0.0, 0.35);
    let p = s::round_to(s::clamp(s::sigmoid(logit), 0.0001, 0.9999), 4);
    let outputs = normalized(vec![("approve", p), ("deny", 1.0 - p)]);
    let threshold = model.spec.threshold;

    let mut features = Map::new();
    features.insert("credit_score".into(), json!(credit_score as i64));
    features.insert("annual_income".into(), json!(income as i64));
    features.insert("dti_ratio".into(), json!(dti));
    features.insert("employment_years".into(), json!(employment_years as i64));
    features.insert("loan_amount".into(), json!(amount as i64));
    features.insert("delinquencies_24m".into(), json!(delinquencies));

    let (decision, action_type, action_detail, rationale) = if p >= threshold {
        let apr = s::round_to(5.0 + (1.0 - p) * 14.0, 1);
        (
            "approve",
            "automated",
            format!("offer issued: {term} mo at {apr}% APR"),
            format!(
                "Credit score {credit_score}, DTI {dti}, income {}",
                money(income)
            ),
        )
    } else if p < DENY_BELOW {
        (
            "deny",
            "automated",
            "adverse action notice sent".to_string(),
            adverse_reasons(credit_score, dti, delinquencies, amount / income),
        )
    } else {
        (
            "refer",
            "human_review",
            "queued for underwriter review".to_string(),
            format!("Score {p} below auto-approve {threshold}"),
        )
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
        outputs,
        decision,
        confidence: if decision == "deny" { 1.0 - p } else { p },
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
