//! Content moderation: a rule set over upstream classifier scores for toxicity, spam and nudity
//! (and the author's history) decides whether a post is published, removed, or escalated to a
//! human moderator. Low risk tier for published content,
//! medium when the platform acts against the author.

use serde_json::{json, Map, Value};

use super::{
    outputs_of, static_label, DomainSpec, Draft, FollowSeed, ModelSpec, ResolvedModel, StepDraft,
};
use crate::config::Domain;
use crate::sample::{self as s, Rng};

pub(crate) const SPEC: DomainSpec = DomainSpec {
    model: "content-safety",
    service: "moderation-svc",
    outcome_service: "appeals",
    review_service: "moderation-console",
    reviewer_prefix: "moderator",
    versions: &[
        ModelSpec {
            version: "5.0.1",
            weight: 50,
            threshold: 0.9,
            bias: 0.0,
            created_at: "2025-09-30T12:00:00.000Z",
            metrics: &[
                ("auc", 0.934),
                ("precision_at_remove", 0.91),
                ("recall_at_remove", 0.58),
            ],
        },
        ModelSpec {
            version: "5.1.0",
            weight: 45,
            threshold: 0.88,
            bias: 0.05,
            created_at: "2026-01-27T10:15:00.000Z",
            metrics: &[
                ("auc", 0.941),
                ("precision_at_remove", 0.9),
                ("recall_at_remove", 0.63),
            ],
        },
        ModelSpec {
            version: "6.0.0-shadow",
            weight: 5,
            threshold: 0.92,
            bias: -0.05,
            created_at: "2026-03-02T17:40:00.000Z",
            metrics: &[
                ("auc", 0.947),
                ("precision_at_remove", 0.88),
                ("recall_at_remove", 0.67),
            ],
        },
    ],
    has_dataset: false,
    lean_caller: true,
    labels: &["allow", "remove", "escalate"],
    confirm_notes: &[
        "Clear policy violation",
        "Context does not change the assessment",
        "Benign in context",
    ],
    override_notes: &[
        "Quoted speech, not targeted harassment",
        "Coordinated spam campaign",
        "Artistic nudity permitted under policy 4.2",
    ],
};

/// Harm score from which content goes to a human instead of being published.
const ESCALATE_AT: f64 = 0.5;
/// Producers keep one in five clean "allow" decisions; the rest are not journaled.
const ALLOW_SAMPLING: f64 = 0.2;

const CONTENT: &[(&str, u32)] = &[("comment", 55), ("post", 25), ("image", 15), ("profile", 5)];
const CHANNELS: &[(&str, u32)] = &[
    ("feed", 45),
    ("comments", 35),
    ("marketplace", 12),
    ("groups", 8),
];

/// One harm-class output of a rule: the upstream classifier's score for `label` shifted by
/// `offset` and kept within `[0, 1]`.
fn class(label: &str, offset: f64) -> Value {
    // Rounded so that sums like 0.05 + 0.1 are written as 0.15.
    let offset = s::round_to(offset, 3);
    let mut o = json!({"label": label, "from_feature": label, "min": 0, "max": 1});
    if offset != 0.0 {
        o["offset"] = json!(offset);
    }
    o
}

/// The registry artifact of a `content-safety` version: a rule set over the upstream
/// classifier scores (`toxic`, `spam` for text, `nsfw`, `toxic` for images) and the author's
/// history. The first matching rule picks the harm classes and how much to raise them; the
/// policy adds `ok` (no harm: `Π (1 − score)`), normalizes, and removes at the threshold or
/// escalates from [`ESCALATE_AT`]. Versions differ in calibration offset, threshold, and (the
/// 6.0 shadow) one more rule.
pub(crate) fn artifact(v: &ModelSpec) -> Value {
    let b = v.bias;
    let mut rules = vec![
        json!({"name": "image-classifiers",
               "when": [{"feature": "content_type", "op": "==", "value": "image"}],
               "then": [class("nsfw", b), class("toxic", b)]}),
        json!({"name": "repeat-offender",
               "when": [{"feature": "prior_strikes", "op": ">=", "value": 3},
                        {"feature": "toxic", "op": ">=", "value": 0.5}],
               "then": [class("toxic", b + 0.1), class("spam", b)]}),
        json!({"name": "mass-reported",
               "when": [{"feature": "report_count", "op": ">=", "value": 5}],
               "then": [class("toxic", b + 0.05), class("spam", b + 0.05)]}),
    ];
    if v.version.starts_with("6.") {
        rules.push(json!({"name": "reported-link-spam",
               "when": [{"feature": "spam", "op": ">=", "value": 0.3},
                        {"feature": "report_count", "op": ">=", "value": 2}],
               "then": [class("toxic", b), class("spam", b + 0.15)]}));
    }
    json!({
        "format": "dj-model/v1",
        "kind": "rule_set",
        "rules": rules,
        "default": [class("toxic", b), class("spam", b)],
        "policy": {
            "complement": "ok",
            "normalize": true,
            "decimals": 4,
            "decision_score": {"max_of": ["nsfw", "spam", "toxic"]},
            "threshold": v.threshold,
            "at_or_above": {"decision": "remove", "confidence": "top_output"},
            "bands": [{"min": ESCALATE_AT, "decision": "escalate", "confidence": "top_output"}],
            "below": {"decision": "allow", "confidence": "top_output"}
        }
    })
}

pub(crate) fn draft(rng: &mut Rng, model: &ResolvedModel) -> Draft {
    let content_type = *s::weighted(rng, CONTENT);
    let channel = *s::weighted(rng, CHANNELS);
    let prior_strikes = s::poisson(rng, 0.15, 10);
    let reports = s::poisson(rng, 0.2, 200);
    // Text is screened for toxicity and spam, images for nudity and toxic overlays.
    let classes: [(&'static str, f64); 2] = if content_type == "image" {
        [("nsfw", 0.04), ("toxic", 0.01)]
    } else {
        [("toxic", 0.025), ("spam", 0.015)]
    };
    // Each upstream classifier score is a mixture: most content is clean and scores low, a
    // small share violates and scores high, and reports and past strikes make a violation more
    // likely.
    let lift = 0.08 * f64::from(reports) + 0.04 * f64::from(prior_strikes);
    let scores = classes.map(|(label, prevalence)| {
        let x = if s::chance(rng, prevalence + lift) {
            0.55 + 0.45 * (1.0 - square(s::unit(rng)))
        } else {
            0.45 * square(square(s::unit(rng)))
        };
        (label, s::round_to(s::clamp(x, 0.0, 1.0), 3))
    });

    let mut features = Map::new();
    features.insert("content_type".into(), json!(content_type));
    for (label, score) in scores {
        features.insert(label.into(), json!(score));
    }
    features.insert("prior_strikes".into(), json!(prior_strikes));
    features.insert("report_count".into(), json!(reports));

    let e = model.evaluate(&features);
    let top_label = e.outputs.first().map_or("ok", |o| o.label.as_str());
    let (harm_label, harm_score) = e
        .outputs
        .iter()
        .find(|o| o.label != "ok")
        .map_or(("toxic", 0.0), |o| (o.label.as_str(), o.score));
    let threshold = e.threshold;
    let decision = static_label(Domain::Moderation, &e.decision);
    let (action_type, detail, rationale, tier) = match decision {
        "remove" => (
            "automated",
            Some(format!("removed under {} policy", policy(harm_label))),
            format!("{harm_label} score {harm_score} at or above {threshold}"),
            "medium",
        ),
        "escalate" => (
            "human_review",
            Some("queued for trust and safety review".to_string()),
            format!("{harm_label} score {harm_score} between {ESCALATE_AT} and {threshold}"),
            "medium",
        ),
        _ => (
            "automated",
            None,
            format!("No policy signal (max {harm_label} {harm_score})"),
            "low",
        ),
    };
    let sampled = decision == "allow" && top_label == "ok";

    let mut steps = Vec::new();
    if s::chance(rng, 0.1) {
        steps.push(StepDraft {
            name: "hash-match",
            version: "2.4.1",
            output: json!({"matched": false}),
        });
    }
    Draft {
        features,
        confidence: e.confidence,
        outputs: outputs_of(&e),
        decision,
        threshold,
        rationale,
        action_type,
        action_detail: detail,
        risk_tier: tier,
        steps,
        llm: None,
        explanation: false,
        sampling_rate: sampled.then_some(ALLOW_SAMPLING),
        channel,
        amount: 0.0,
        risk: harm_score,
    }
}

fn square(x: f64) -> f64 {
    x * x
}

fn policy(label: &str) -> &'static str {
    match label {
        "spam" => "spam",
        "nsfw" => "adult content",
        _ => "harassment",
    }
}

/// Appeals and later reports.
pub(crate) fn outcome(rng: &mut Rng, seed: &FollowSeed) -> (&'static str, Option<f64>) {
    match seed.decision {
        "remove" => match s::unit(rng) {
            x if x < 0.15 => ("appeal_upheld", None),
            x if x < 0.4 => ("appeal_rejected", None),
            _ => ("no_appeal", None),
        },
        "escalate" => {
            if s::chance(rng, seed.risk) {
                ("moderator_removed", None)
            } else {
                ("moderator_kept", None)
            }
        }
        _ => {
            let reports = f64::from(s::poisson(rng, 0.5, 50));
            if reports > 0.0 {
                ("reported_later", Some(reports))
            } else {
                ("no_action", None)
            }
        }
    }
}
