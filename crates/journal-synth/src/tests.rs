use std::collections::{BTreeMap, HashMap, HashSet};

use journal_core::models::{
    artifact_bytes, artifact_key, artifact_sha256, compare, evaluate, load_verified, Artifact,
    ModelMetadata, Recorded,
};
use journal_core::record::Record;
use journal_core::timestamp::Timestamp;
use journal_core::validate::{parse_body, Limits};
use serde_json::Value;

use crate::*;

fn sample(n: usize) -> Vec<Value> {
    generate(SynthConfig::new(20260315), n)
}

fn bytes(records: &[Value]) -> Vec<u8> {
    records.iter().flat_map(producer_body).collect()
}

fn kind(r: &Value) -> &str {
    r["kind"].as_str().unwrap()
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let a = bytes(&sample(3000));
    let b = bytes(&sample(3000));
    assert!(a == b, "two runs with one seed differ");
    let c = bytes(&generate(SynthConfig::new(20260316), 3000));
    assert!(a != c);
}

#[test]
fn every_record_passes_the_validator() {
    let records = sample(6000);
    let now = latest_occurred_at(&records).unwrap();
    let limits = Limits::default();
    for (i, r) in records.iter().enumerate() {
        let parsed = parse_body(&producer_body(r), &limits, now).unwrap();
        assert_eq!(parsed.len(), 1);
        if let Err(e) = &parsed[0].result {
            panic!("record {i} rejected: {e}\n{r}");
        }
    }
    // Packed form: 50 records per message, as the producer client sends them.
    for chunk in records.chunks(50) {
        let parsed = parse_body(&producer_body_batch(chunk), &limits, now).unwrap();
        assert_eq!(parsed.len(), chunk.len());
        assert!(parsed.iter().all(|p| p.result.is_ok()));
    }
}

#[test]
fn without_features_records_still_validate() {
    let mut cfg = SynthConfig::new(5);
    cfg.include_features = false;
    let records = generate(cfg, 500);
    let now = latest_occurred_at(&records).unwrap();
    for r in &records {
        assert!(r.get("features").is_none());
        let parsed = parse_body(&producer_body(r), &Limits::default(), now).unwrap();
        assert!(parsed[0].result.is_ok(), "{r}");
    }
}

#[test]
fn time_order_ids_and_references() {
    let records = sample(8000);
    let mut decisions: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut ids = HashSet::new();
    let mut last = String::new();
    for (i, r) in records.iter().enumerate() {
        let at = r["occurred_at"].as_str().unwrap();
        assert!(at >= last.as_str(), "record {i} goes back in time");
        last = at.to_string();
        let tenant = r["tenant_id"].as_str().unwrap();
        let own = match kind(r) {
            "decision" => {
                decisions.insert(r["decision_id"].as_str().unwrap(), (tenant, i));
                &r["decision_id"]
            }
            k => {
                let target = r["decision_id"].as_str().unwrap();
                let (t, _) = decisions
                    .get(target)
                    .unwrap_or_else(|| panic!("{k} {i} refers to no earlier decision"));
                assert_eq!(*t, tenant, "{k} {i} crosses tenants");
                &r[format!("{k}_id").as_str()]
            }
        };
        let own = own.as_str().unwrap();
        assert!(ids.insert(own.to_string()), "id {own} repeated");
        let ulid = ulid::Ulid::from_string(own).unwrap();
        let at = Timestamp::parse(r["occurred_at"].as_str().unwrap()).unwrap();
        assert_eq!(
            ulid.timestamp_ms() as i64,
            at.millis(),
            "ULID time is occurred_at"
        );
    }
}

#[test]
fn mix_matches_the_configuration() {
    let cfg = SynthConfig::new(99);
    let records = generate(cfg.clone(), 20_000);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut domains: BTreeMap<Domain, usize> = BTreeMap::new();
    let mut labels: BTreeMap<(Domain, &str), usize> = BTreeMap::new();
    let mut tenants: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &records {
        *kinds.entry(kind(r)).or_default() += 1;
        let d = domain_of(r).expect("every record maps to a domain");
        if kind(r) == "decision" {
            *domains.entry(d).or_default() += 1;
            *labels
                .entry((d, r["decision"].as_str().unwrap()))
                .or_default() += 1;
            *tenants.entry(r["tenant_id"].as_str().unwrap()).or_default() += 1;
        }
    }
    let n = kinds["decision"] as f64;
    let outcomes = kinds["outcome"] as f64 / n;
    let reviews = kinds["review"] as f64 / n;
    assert!(
        (outcomes - cfg.outcome_rate).abs() < 0.02,
        "outcomes {outcomes}"
    );
    assert!(
        (reviews - cfg.review_rate).abs() < 0.01,
        "reviews {reviews}"
    );
    for d in Domain::ALL {
        let share = domains[&d] as f64 / n;
        assert!(
            (share - cfg.domain_share(d)).abs() < 0.02,
            "{d:?} share {share}"
        );
    }
    assert_eq!(tenants.len(), cfg.tenants.len());
    for (d, want) in [
        (Domain::Loan, &["approve", "deny", "refer"][..]),
        (Domain::Fraud, &["allow", "block", "step_up"][..]),
        (Domain::Moderation, &["allow", "remove", "escalate"][..]),
        (Domain::Llm, &["billing", "technical", "human_triage"][..]),
    ] {
        for l in want {
            assert!(
                labels.contains_key(&(d, *l)),
                "{d:?} never decides {l}: {labels:?}"
            );
        }
    }
    // Approval is the common loan decision; blocking is rare.
    assert!(labels[&(Domain::Loan, "approve")] > labels[&(Domain::Loan, "deny")]);
    assert!(labels[&(Domain::Fraud, "allow")] > 20 * labels[&(Domain::Fraud, "block")]);
}

#[test]
fn only_configured_domains_appear() {
    let mut cfg = SynthConfig::new(3);
    cfg.domains = vec![(Domain::Fraud, 1), (Domain::Loan, 0)];
    for r in generate(cfg, 300) {
        assert_eq!(domain_of(&r), Some(Domain::Fraud));
    }
}

#[test]
fn decision_shapes_are_plausible() {
    let records = generate_decisions(SynthConfig::new(11), 4000);
    assert!(records.iter().all(|r| kind(r) == "decision"));
    let mut per_subject: HashMap<(&str, &str), usize> = HashMap::new();
    for r in &records {
        let outputs = r["outputs"].as_array().unwrap();
        let sum: f64 = outputs.iter().map(|o| o["score"].as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 0.002, "scores sum to {sum}: {r}");
        let c = r["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
        let subject = r["subject"]["id"].as_str().unwrap();
        assert!(subject.starts_with("user_") && subject.len() >= 11);
        *per_subject
            .entry((r["tenant_id"].as_str().unwrap(), subject))
            .or_default() += 1;
        if domain_of(r) == Some(Domain::Llm) {
            assert!(r["llm"]["prompt_sha256"].as_str().unwrap().len() == 64);
        }
    }
    // Zipf-like pools: a few subjects are seen far more often than the average.
    let max = per_subject.values().max().unwrap();
    assert!(*max >= 30, "hottest subject has only {max} decisions");
}

#[test]
fn mean_decision_size_is_about_800_bytes() {
    let records = generate_decisions(SynthConfig::new(1234), 20_000);
    let mut per: BTreeMap<Domain, (usize, usize)> = BTreeMap::new();
    let mut total = 0;
    for r in &records {
        let len = producer_body(r).len();
        total += len;
        let e = per.entry(domain_of(r).unwrap()).or_default();
        e.0 += 1;
        e.1 += len;
    }
    let mean = total as f64 / records.len() as f64;
    for (d, (n, b)) in &per {
        eprintln!(
            "{d:?}: mean {:.0} bytes over {n} decisions",
            *b as f64 / *n as f64
        );
    }
    eprintln!("all: mean {mean:.0} bytes");
    assert!((650.0..=950.0).contains(&mean), "mean decision size {mean}");
}

#[test]
fn bad_messages_are_rejected_as_described() {
    let now = Timestamp::parse("2026-03-16T12:00:00Z").unwrap();
    let corpus = bad_messages(now);
    let limits = Limits::default();
    let mut classes = HashSet::new();
    let mut ids = HashSet::new();
    for m in &corpus {
        classes.insert(m.class);
        if let Some(id) = &m.decision_id {
            assert!(ids.insert(id.clone()), "decision_id {id} reused");
            let text = String::from_utf8_lossy(&m.body);
            assert!(text.contains(id.as_str()), "{}: id not in body", m.class);
        }
        let rejection = match (m.scope, parse_body(&m.body, &limits, now)) {
            (Scope::Body, Err(r)) => r,
            (Scope::Record { index }, Ok(parsed)) => {
                assert_eq!(parsed.len(), 1, "{}", m.class);
                let r = parsed[0].result.as_ref().expect_err(m.class).clone();
                assert_eq!(r.record_index, index, "{}", m.class);
                r
            }
            (scope, other) => panic!("{} ({scope:?}) parsed as {other:?}", m.class),
        };
        assert_eq!(rejection.field, m.field, "{}: {rejection:?}", m.class);
        assert!(
            rejection.reason.contains(&m.reason_contains),
            "{}: reason {:?} lacks {:?}",
            m.class,
            rejection.reason,
            m.reason_contains
        );
    }
    for class in [
        "missing_field",
        "wrong_type",
        "bad_timestamp_syntax",
        "timestamp_out_of_range",
        "unknown_schema_version",
        "unknown_kind",
        "empty_string",
        "oversized_string",
        "non_finite_number",
        "invalid_utf8",
        "body_too_large",
        "unknown_field",
        "duplicate_key",
        "not_json",
        "empty_array",
        "set_by_ingest",
        "override_without_label",
    ] {
        assert!(classes.contains(class), "no {class} message");
    }
    // Another `now` gives other ids, so reruns against a live journal never collide.
    let later = Timestamp::from_millis(now.millis() + 1).unwrap();
    let again: HashSet<String> = bad_messages(later)
        .into_iter()
        .filter_map(|m| m.decision_id)
        .collect();
    assert!(again.is_disjoint(&ids));
}

#[test]
fn replaying_the_artifact_reproduces_every_decision_exactly() {
    let registry: HashMap<String, (ModelMetadata, Artifact)> = model_artifacts()
        .into_iter()
        .map(|(m, a)| (m.artifact_sha256.clone(), (m, a)))
        .collect();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut replayed = 0;
    let mut flips = 0;
    for r in generate_decisions(SynthConfig::new(31), 6000) {
        // As the journal receives it: a message body parsed back into a record.
        let body = producer_body(&r);
        let record: Record = serde_json::from_slice(&body).unwrap();
        let model = record.model.as_ref().unwrap();
        let entry = registry.get(&model.artifact_sha256);
        if domain_of(&r) == Some(Domain::Llm) {
            assert!(entry.is_none(), "LLM decisions are not re-run");
            continue;
        }
        let (meta, artifact) =
            entry.unwrap_or_else(|| panic!("{} not in the registry", model.artifact_sha256));
        assert_eq!((&meta.name, &meta.version), (&model.name, &model.version));
        if let Some(manifest) = &record.dataset_manifest_sha256 {
            assert_eq!(meta.training_data_manifest_sha256.as_ref(), Some(manifest));
        }
        let original = Recorded::from_record(&record).unwrap();
        let features = record.features.as_ref().unwrap();
        let replay = evaluate(artifact, features, None).unwrap();
        let c = compare(&original, &replay);
        assert!(c.matches_exactly, "{:?}\n{r}", c.differences);
        // Features as ingest canonicalizes them (before sealing) replay the same.
        let canonical = journal_core::canonical::map_to_vec(features).unwrap();
        let sealed_form: serde_json::Map<String, Value> =
            serde_json::from_slice(&canonical).unwrap();
        let again = evaluate(artifact, &sealed_form, None).unwrap();
        assert!(compare(&original, &again).matches_exactly, "{r}");
        // A what-if at another threshold changes only the decision and confidence.
        let what_if = evaluate(artifact, features, Some(0.5)).unwrap();
        assert_eq!(what_if.outputs, replay.outputs);
        flips += usize::from(what_if.decision != replay.decision);
        *kinds.entry(artifact.kind()).or_default() += 1;
        replayed += 1;
    }
    assert!(replayed > 5000, "{replayed}");
    assert!(flips > 0);
    for kind in [
        "rule_set",
        "scorecard",
        "logistic",
        "decision_tree",
        "tree_ensemble",
    ] {
        assert!(
            kinds.contains_key(kind),
            "no decision made by a {kind}: {kinds:?}"
        );
    }
}

#[test]
fn published_artifacts_verify_and_cover_every_kind() {
    let all = model_artifacts();
    let mut shas = HashSet::new();
    let mut kinds = BTreeMap::new();
    for (meta, artifact) in &all {
        let sha = artifact_sha256(artifact).unwrap();
        assert_eq!(meta.artifact_sha256, sha);
        assert_eq!(meta.kind, artifact.kind());
        assert!(
            shas.insert(sha.clone()),
            "{}@{} shares an artifact",
            meta.name,
            meta.version
        );
        let bytes = artifact_bytes(artifact).unwrap();
        assert_eq!(&load_verified(&bytes, &sha).unwrap(), artifact);
        assert_eq!(artifact_key(&sha), format!("models/{sha}"));
        assert!(meta.training_data_manifest_sha256.is_some());
        assert!(!meta.metrics.is_empty());
        kinds.insert(meta.kind.clone(), (meta.name.clone(), meta.version.clone()));
        assert_eq!(model_artifact(&sha).unwrap().0, *meta);
    }
    assert_eq!(all.len(), 8);
    // The four families: rule set, scorecard, logistic/linear, decision tree (and a GBM).
    for kind in [
        "rule_set",
        "scorecard",
        "logistic",
        "decision_tree",
        "tree_ensemble",
    ] {
        assert!(kinds.contains_key(kind), "{kind} unused: {kinds:?}");
    }
    // Generation (and so every hash) is the same in every run.
    let again: Vec<String> = model_artifacts()
        .into_iter()
        .map(|(m, _)| m.artifact_sha256)
        .collect();
    let first: Vec<String> = all.into_iter().map(|(m, _)| m.artifact_sha256).collect();
    assert_eq!(first, again);
}

/// Generation throughput; run with
/// `cargo test --release -p journal-synth -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    let n = 200_000;
    let started = std::time::Instant::now();
    let mut total = 0usize;
    for r in Generator::new(SynthConfig::new(1)).take(n) {
        total += producer_body(&r).len();
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{n} records ({total} bytes serialized) in {secs:.2} s: {:.0} records/s",
        n as f64 / secs
    );
}

/// Decision-label shares per domain, for tuning the score models; run with `--ignored`.
#[test]
#[ignore]
fn label_mix() {
    let records = generate_decisions(SynthConfig::new(77), 40_000);
    let mut labels: BTreeMap<(Domain, String), usize> = BTreeMap::new();
    let mut per: BTreeMap<Domain, usize> = BTreeMap::new();
    for r in &records {
        let d = domain_of(r).unwrap();
        *per.entry(d).or_default() += 1;
        *labels
            .entry((d, r["decision"].as_str().unwrap().to_string()))
            .or_default() += 1;
    }
    for ((d, l), n) in labels {
        eprintln!("{d:?} {l}: {:.2}%", 100.0 * n as f64 / per[&d] as f64);
    }
    // Per model version, since versions are different kinds of artifact.
    let mut by_version: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut per_version: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        let v = format!(
            "{}@{}",
            r["model"]["name"].as_str().unwrap(),
            r["model"]["version"].as_str().unwrap()
        );
        *per_version.entry(v.clone()).or_default() += 1;
        *by_version
            .entry((v, r["decision"].as_str().unwrap().to_string()))
            .or_default() += 1;
    }
    for ((v, l), n) in by_version {
        eprintln!("{v} {l}: {:.2}%", 100.0 * n as f64 / per_version[&v] as f64);
    }
}
