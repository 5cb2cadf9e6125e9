//! LLM-assisted support-ticket triage: an instruction-tuned model reads the ticket and picks a
//! queue. Prompts and responses are recorded only as SHA-256 hashes. Truncated or filtered
//! generations and low-confidence picks go to a human triage desk. Low risk tier, medium for
//! refunds (money moves).

use serde_json::{json, Map};

use super::{normalized, DomainSpec, Draft, FollowSeed, ModelSpec, ResolvedModel, StepDraft};
use crate::sample::{self as s, Rng};

pub(crate) const SPEC: DomainSpec = DomainSpec {
    model: "ticket-triage-llm",
    service: "support-triage",
    outcome_service: "helpdesk",
    review_service: "support-console",
    reviewer_prefix: "support_lead",
    // A vendor model: no registry artifact (its decisions are reconstructed, not re-run), so
    // `threshold` and `bias` drive the simulation below and `created_at`/`metrics` go unused.
    versions: &[
        ModelSpec {
            version: "1.3.0",
            weight: 60,
            threshold: 0.6,
            bias: 0.0,
            created_at: "2025-10-14T13:00:00.000Z",
            metrics: &[],
        },
        ModelSpec {
            version: "1.4.0",
            weight: 40,
            threshold: 0.65,
            bias: 0.3,
            created_at: "2026-02-10T13:00:00.000Z",
            metrics: &[],
        },
    ],
    has_dataset: false,
    lean_caller: false,
    labels: &["billing", "technical", "account", "refund", "human_triage"],
    confirm_notes: &[
        "Routing correct",
        "Correct queue, priority adjusted",
        "Matches ticket history",
    ],
    override_notes: &[
        "Customer asks for a refund, not a billing explanation",
        "Login failure is a technical issue, not account admin",
        "Duplicate of an open ticket",
    ],
};

const CATEGORIES: &[(&str, u32)] = &[
    ("billing", 30),
    ("technical", 40),
    ("account", 18),
    ("refund", 12),
];
const TIERS: &[(&str, u32)] = &[("free", 55), ("pro", 35), ("enterprise", 10)];
const CHANNELS: &[(&str, u32)] = &[("email", 45), ("chat", 40), ("web_form", 15)];
const MAX_TOKENS: u32 = 256;
/// Tokens of the fixed system prompt and few-shot examples.
const SYSTEM_TOKENS: u32 = 640;

pub(crate) fn draft(rng: &mut Rng, model: &ResolvedModel) -> Draft {
    let truth = *s::weighted(rng, CATEGORIES);
    let tier = *s::weighted(rng, TIERS);
    let channel = *s::weighted(rng, CHANNELS);
    let ticket_chars = s::clamp(s::log_normal(rng, 600.0, 0.8), 40.0, 20_000.0).round() as u32;
    let sentiment = s::round_to(s::clamp(s::normal(rng, -0.2, 0.4), -1.0, 1.0), 2);

    // Softmax over category logits; the true category usually stands out.
    let raw: Vec<(&'static str, f64)> = CATEGORIES
        .iter()
        .map(|(c, _)| {
            let centre = if *c == truth {
                3.3 + model.spec.bias
            } else {
                0.0
            };
            (*c, s::exp(s::normal(rng, centre, 0.9)))
        })
        .collect();
    // The top category and the remaining mass, as the service logs them.
    let all = normalized(raw);
    let rest = all.iter().skip(1).map(|(_, x)| x).sum::<f64>();
    let (top, top_score) = all[0];
    let outputs = vec![
        (top.to_string(), top_score),
        ("other".to_string(), s::round_to(rest, 4)),
    ];
    let threshold = model.spec.threshold;

    let finish_reason = *s::weighted(rng, &[("stop", 95), ("length", 4), ("content_filter", 1)]);
    let completion = match finish_reason {
        "length" => MAX_TOKENS,
        _ => s::clamp(s::log_normal(rng, 60.0, 0.5), 5.0, f64::from(MAX_TOKENS)) as u32,
    };
    let temperature = if model.spec.version == "1.3.0" {
        0.0
    } else {
        0.2
    };
    let llm = json!({
        "prompt_sha256": s::random_sha256(rng),
        "system_prompt_sha256": s::sha256_hex(&[b"system-prompt:", model.spec.version.as_bytes()]),
        "parameters": {"temperature": temperature, "max_tokens": MAX_TOKENS, "top_p": 1.0},
        "response_sha256": s::random_sha256(rng),
        "finish_reason": finish_reason,
        "tokens": {"prompt": SYSTEM_TOKENS + ticket_chars / 4, "completion": completion},
    });

    let priority = match (tier, sentiment) {
        ("enterprise", _) => "P1",
        (_, x) if x < -0.5 => "P2",
        ("pro", _) => "P3",
        _ => "P4",
    };
    let mut features = Map::new();
    features.insert("customer_tier".into(), json!(tier));
    features.insert("sentiment".into(), json!(sentiment));

    let (decision, action_type, detail, rationale) = if finish_reason != "stop" {
        (
            "human_triage",
            "human_review",
            "sent to triage desk".to_string(),
            format!("Generation ended with {finish_reason}; output not trusted"),
        )
    } else if top_score < threshold {
        (
            "human_triage",
            "human_review",
            "sent to triage desk".to_string(),
            format!("Top category {top} at {top_score}, below {threshold}"),
        )
    } else {
        (
            top,
            if top == "refund" {
                "recommendation"
            } else {
                "automated"
            },
            format!("routed to {top} queue, {priority}"),
            format!("Ticket classified as {top} ({top_score})"),
        )
    };

    let mut steps = Vec::new();
    if s::chance(rng, 0.1) {
        steps.push(StepDraft {
            name: "kb-retrieval",
            version: "2.3.0",
            output: json!({"docs": 1 + s::poisson(rng, 2.0, 8)}),
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
        action_detail: Some(detail),
        risk_tier: if decision == "refund" {
            "medium"
        } else {
            "low"
        },
        steps,
        llm: Some(llm),
        explanation: false,
        sampling_rate: None,
        channel,
        amount: 0.0,
        risk: 1.0 - top_score,
    }
}

/// How the ticket ended; the value is hours to resolution.
pub(crate) fn outcome(rng: &mut Rng, seed: &FollowSeed) -> (&'static str, Option<f64>) {
    let hours = s::round_to(s::log_normal(rng, 6.0, 1.0), 1);
    if s::chance(rng, seed.risk * 0.8) {
        ("rerouted", Some(hours))
    } else if s::chance(rng, 0.08) {
        ("reopened", Some(hours))
    } else {
        ("resolved", Some(hours))
    }
}
