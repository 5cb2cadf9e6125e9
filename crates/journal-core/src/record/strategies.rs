//! Proptest strategies for records in their stored form, shared by the tests of the codec and
//! of the canonical writer.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{json, Map, Number, Value};

use super::{
    Action, ActionType, Caller, Kind, Llm, LlmParameters, LlmTokens, ModelRef, OutcomeFields,
    Output, Record, ReviewFields, RiskTier, Step, Verdict,
};
use crate::canonical::MAX_SAFE_INTEGER;
use crate::timestamp::Timestamp;

/// Strings mixing ASCII, control characters, astral-plane and other awkward characters.
pub(crate) fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('\u{0}', '\u{1f}'),
        1 => proptest::char::range('\u{10000}', '\u{10FFFF}'),
        1 => any::<char>(),
        1 => prop::sample::select(vec!['"', '\\', '/', '\u{7f}', '\u{2028}', '\u{E000}', '\u{FFFF}']),
    ];
    vec(ch, 0..10).prop_map(|cs| cs.into_iter().collect())
}

/// Finite doubles of every magnitude, with the canonical-JSON edge cases over-represented.
fn double() -> impl Strategy<Value = f64> {
    let edges = vec![
        0.0,
        -0.0,
        1e21,
        -1e21,
        1e-7,
        1e-6,
        5e-324,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        9_007_199_254_740_992.0,
        9_007_199_254_740_994.0,
        1e19,
        -9e18,
        1_152_921_504_606_846_976.0,
        123_456_789_012_345_680_000.0,
        0.1,
        -1.5,
    ];
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (1u64..(1u64 << 52)).prop_map(f64::from_bits), // subnormals
        prop::sample::select(edges),
        -1e6..1e6f64,
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    let safe = MAX_SAFE_INTEGER as i64;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        double().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (-safe..=safe).prop_map(Value::from),
        text().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((text(), inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

pub(crate) fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    vec((text(), json_value()), 0..4).prop_map(|kv| kv.into_iter().collect())
}

fn step() -> impl Strategy<Value = Step> {
    // A top-level null output cannot be stored (see the refusal test), so none is generated.
    let output = json_value().prop_map(|v| if v.is_null() { json!([]) } else { v });
    (
        text(),
        option::of(text()),
        option::of(text()),
        option::of(output),
    )
        .prop_map(|(name, version, input_sha256, output)| Step {
            name,
            version,
            input_sha256,
            output,
        })
}

fn llm() -> impl Strategy<Value = Llm> {
    let parameters = (
        option::of(double()),
        option::of(any::<u32>()),
        option::of(double()),
    )
        .prop_map(|(temperature, max_tokens, top_p)| LlmParameters {
            temperature,
            max_tokens,
            top_p,
        });
    let tokens = (any::<u32>(), any::<u32>())
        .prop_map(|(prompt, completion)| LlmTokens { prompt, completion });
    (
        text(),
        option::of(text()),
        option::of(parameters),
        text(),
        option::of(text()),
        option::of(tokens),
    )
        .prop_map(
            |(
                prompt_sha256,
                system_prompt_sha256,
                parameters,
                response_sha256,
                finish_reason,
                tokens,
            )| Llm {
                prompt_sha256,
                system_prompt_sha256,
                parameters,
                response_sha256,
                finish_reason,
                tokens,
            },
        )
}

fn caller() -> impl Strategy<Value = Caller> {
    prop_oneof![
        (text(), option::of(text())).prop_map(|(p, s)| Caller {
            principal: Some(p),
            service: s,
        }),
        text().prop_map(|s| Caller {
            principal: None,
            service: Some(s),
        }),
    ]
}

fn model() -> impl Strategy<Value = ModelRef> {
    (text(), text(), text()).prop_map(|(name, version, artifact_sha256)| ModelRef {
        name,
        version,
        artifact_sha256,
    })
}

fn action() -> impl Strategy<Value = Action> {
    let kind = prop::sample::select(vec![
        ActionType::Automated,
        ActionType::Recommendation,
        ActionType::HumanReview,
    ]);
    (kind, option::of(text())).prop_map(|(kind, detail)| Action { kind, detail })
}

fn review() -> impl Strategy<Value = ReviewFields> {
    let verdict = prop::sample::select(vec![Verdict::Confirm, Verdict::Override]);
    (text(), verdict, option::of(text()), option::of(text())).prop_map(
        |(reviewer, verdict, override_label, notes)| ReviewFields {
            reviewer,
            verdict,
            override_label,
            notes,
        },
    )
}

fn millis() -> impl Strategy<Value = Timestamp> {
    (946_684_800_000i64..4_102_444_800_000).prop_map(|ms| Timestamp::from_millis(ms).unwrap())
}

/// Any stored record: every kind, every optional field sometimes present.
pub(crate) fn record() -> impl Strategy<Value = Record> {
    let kind = prop::sample::select(vec![Kind::Decision, Kind::Outcome, Kind::Review]);
    let version = prop_oneof![Just(1u32), 0..=i32::MAX as u32];
    let ids = (
        version,
        kind,
        text(),
        option::of(text()),
        option::of(text()),
        text(),
        millis(),
        millis(),
    );
    let who = (
        option::of(caller()),
        option::of(text()),
        option::of(model()),
        option::of(text()),
        option::of(text()),
    );
    let output = (text(), double()).prop_map(|(label, score)| Output { label, score });
    let risk = prop::sample::select(vec![RiskTier::Low, RiskTier::Medium, RiskTier::High]);
    let decided = (
        option::of(vec(output, 0..3)),
        option::of(text()),
        option::of(double()),
        option::of(double()),
        option::of(text()),
        option::of(text()),
        option::of(action()),
        option::of(risk),
    );
    let outcome =
        (text(), option::of(double())).prop_map(|(label, value)| OutcomeFields { label, value });
    let rest = (
        option::of(vec(step(), 0..3)),
        option::of(llm()),
        option::of(outcome),
        option::of(review()),
        option::of(double()),
        option::of(json_object()),
    );
    (ids, who, decided, rest).prop_map(|(ids, who, decided, rest)| {
        let (
            schema_version,
            kind,
            decision_id,
            outcome_id,
            review_id,
            tenant_id,
            occurred,
            received,
        ) = ids;
        let (caller, subject_ref, model, dataset_manifest_sha256, features_hmac) = who;
        let (
            outputs,
            decision,
            confidence,
            threshold,
            rationale,
            explanation_ref,
            action,
            risk_tier,
        ) = decided;
        let (steps, llm, outcome, review, sampling_rate, context) = rest;
        Record {
            schema_version,
            kind,
            decision_id,
            outcome_id,
            review_id,
            tenant_id,
            occurred_at: occurred,
            received_at: Some(received),
            caller,
            subject: None,
            subject_ref,
            model,
            dataset_manifest_sha256,
            features: None,
            features_hmac,
            outputs,
            decision,
            confidence,
            threshold,
            rationale,
            explanation_ref,
            action,
            risk_tier,
            steps,
            llm: llm.map(Box::new),
            outcome: outcome.map(Box::new),
            review: review.map(Box::new),
            sampling_rate,
            context,
        }
    })
}
