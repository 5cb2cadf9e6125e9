//! Content moderation: classifier scores for toxicity, spam and nudity decide whether a post is
//! published, removed, or escalated to a human moderator. Low risk tier for published content,
//! medium when the platform acts against the author.

use serde_json::{json, Map};

use super::{normalized, DomainSpec, Draft, FollowSeed, ModelSpec, ResolvedModel, StepDraft};
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
        },
        ModelSpec {
            version: "5.1.0",
            weight: 45,
            threshold: 0.88,
            bias: 0.05,
        },
        ModelSpec {
            version: "6.0.0-shadow",
            weight: 5,
            threshold: 0.92,
            bias: -0.05,
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
    // Each class is a mixture: most content is clean and scores low, a small share violates
    // and scores high, and reports and past strikes make a violation more likely.
    let lift = 0.08 * f64::from(reports) + 0.04 * f64::from(prior_strikes);
    let scores = classes.map(|(label, prevalence)| {
        let x = if s::chance(rng, prevalence + lift) {
            0.55 + 0.45 * (1.0 - square(s::unit(rng)))
        } else {
            0.45 * square(square(s::unit(rng)))
        };
        (
            label,
            s::round_to(s::clamp(x + model.spec.bias, 0.0, 1.0), 3),
        )
    });
    let clean = scores.iter().map(|(_, x)| 1.0 - x).product::<f64>();
    let outputs = normalized(vec![("ok", clean), scores[0], scores[1]]);
    let (top_label, top_score) = outputs[0];
    let (harm_label, harm_score) = outputs
        .iter()
        .copied()
        .find(|(l, _)| *l != "ok")
        .unwrap_or(("toxic", 0.0));
    let threshold = model.spec.threshold;

    let mut features = Map::new();
    features.insert("content_type".into(), json!(content_type));
    for (label, score) in scores {
        features.insert(label.into(), json!(score));
    }
    features.insert("prior_strikes".into(), json!(prior_strikes));
    features.insert("report_count".into(), json!(reports));

    let (decision, action_type, detail, rationale, tier) = if harm_score >= threshold {
        (
            "remove",
            "automated",
            Some(format!("removed under {} policy", policy(harm_label))),
            format!("{harm_label} score {harm_score} at or above {threshold}"),
            "medium",
        )
    } else if harm_score >= ESCALATE_AT {
        (
            "escalate",
            "human_review",
            Some("queued for trust and safety review".to_string()),
            format!("{harm_label} score {harm_score} between {ESCALATE_AT} and {threshold}"),
            "medium",
        )
    } else {
        (
            "allow",
            "automated",
            None,
            format!("No policy signal (max {harm_label} {harm_score})"),
            "low",
        )
    };

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
        confidence: top_score,
        outputs,
        decision,
        threshold,
        rationale,
        action_type,
        action_detail: detail,
        risk_tier: tier,
        steps,
        llm: None,
        explanation: false,
        sampling_rate: (decision == "allow" && top_label == "ok").then_some(ALLOW_SAMPLING),
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
