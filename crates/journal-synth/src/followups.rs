//! Outcome and review records that refer back to an earlier decision.

use serde_json::{json, Map, Value};

use crate::config::Domain;
use crate::domains::{self, FollowSeed, Tenant};
use crate::sample::{self as s, Rng};

/// Decision labels that hand the case to a person; a review of them usually picks a real label.
const DEFERRING: &[&str] = &["refer", "escalate", "human_triage"];

fn envelope(
    kind: &str,
    id_field: &str,
    id: &str,
    seed: &FollowSeed,
    tenant: &Tenant,
    at: &str,
) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("schema_version".into(), json!(1));
    r.insert("kind".into(), json!(kind));
    r.insert(id_field.into(), json!(id));
    r.insert("decision_id".into(), json!(seed.decision_id));
    r.insert("tenant_id".into(), json!(tenant.name));
    r.insert("occurred_at".into(), json!(at));
    r.insert("subject".into(), json!({"id": seed.subject}));
    r
}

fn caller(tenant: &Tenant, service: &str) -> Value {
    json!({"principal": tenant.principal(service), "service": service})
}

pub(crate) fn outcome_record(
    rng: &mut Rng,
    seed: &FollowSeed,
    tenant: &Tenant,
    millis: i64,
    at: &str,
) -> Value {
    let id = s::ulid(rng, millis);
    let (label, value) = match seed.domain {
        Domain::Loan => domains::loan::outcome(rng, seed),
        Domain::Fraud => domains::fraud::outcome(rng, seed),
        Domain::Moderation => domains::moderation::outcome(rng, seed),
        Domain::Llm => domains::llm::outcome(rng, seed),
    };
    let mut r = envelope("outcome", "outcome_id", &id, seed, tenant, at);
    r.insert(
        "caller".into(),
        caller(tenant, domains::spec(seed.domain).outcome_service),
    );
    let mut o = Map::new();
    o.insert("label".into(), json!(label));
    if let Some(v) = value {
        o.insert("value".into(), json!(v));
    }
    r.insert("outcome".into(), Value::Object(o));
    Value::Object(r)
}

pub(crate) fn review_record(
    rng: &mut Rng,
    seed: &FollowSeed,
    tenant: &Tenant,
    millis: i64,
    at: &str,
) -> Value {
    let id = s::ulid(rng, millis);
    let spec = domains::spec(seed.domain);
    let deferred = DEFERRING.contains(&seed.decision);
    let override_p = if deferred { 0.85 } else { 0.12 };
    let alternatives: Vec<&str> = spec
        .labels
        .iter()
        .copied()
        .filter(|l| *l != seed.decision && !DEFERRING.contains(l))
        .collect();
    let override_label = (s::chance(rng, override_p) && !alternatives.is_empty())
        .then(|| *s::uniform(rng, &alternatives));
    let mut review = Map::new();
    review.insert(
        "reviewer".into(),
        json!(format!(
            "{}_{:03}",
            spec.reviewer_prefix,
            rand::Rng::gen_range(rng, 0..40)
        )),
    );
    match override_label {
        Some(label) => {
            review.insert("verdict".into(), json!("override"));
            review.insert("override_label".into(), json!(label));
        }
        None => {
            review.insert("verdict".into(), json!("confirm"));
        }
    }
    if s::chance(rng, 0.7) {
        let notes = if override_label.is_some() {
            spec.override_notes
        } else {
            spec.confirm_notes
        };
        review.insert("notes".into(), json!(s::uniform(rng, notes)));
    }
    let mut r = envelope("review", "review_id", &id, seed, tenant, at);
    r.insert("caller".into(), caller(tenant, spec.review_service));
    r.insert("review".into(), Value::Object(review));
    Value::Object(r)
}
