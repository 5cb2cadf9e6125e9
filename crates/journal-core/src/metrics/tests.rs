//! The metrics read model over the in-memory ports, on generated records written by the real
//! ingest, checked against a brute-force recount of the generated JSON.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::refresh::refresh_day_with;
use super::*;
use crate::columnar::WriterConfig;
use crate::compact::{CompactStep, CompactionConfig, Compactor, CompactorConfig};
use crate::ingest::{Ingest, IngestConfig, Message};
use crate::keys::MasterKey;
use crate::layout;
use crate::memory::{MemoryIndex, MemoryRejects, MemoryStore, MemorySubjectKeys};
use crate::ports::{FileState, JournalIndex, ManifestEntry, ObjectStore};
use crate::record::Record;
use crate::timestamp::Timestamp;

type MemIngest = Ingest<MemoryStore, MemoryIndex, MemorySubjectKeys, MemoryRejects>;

const T1: &str = "t1";
const T2: &str = "t2";
const DAY1: &str = "2026-03-15";
const DAY2: &str = "2026-03-16";

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

/// Receive times: every generated record occurred on 2026-03-15 shortly after midnight.
fn noon(date: &str) -> Timestamp {
    at(&format!("{date}T12:00:00Z"))
}

fn journal() -> MemIngest {
    let config = IngestConfig {
        // Several row groups per file: the refresh reads them one at a time.
        writer: WriterConfig {
            max_row_group_size: 16,
            ..WriterConfig::default()
        },
        ..IngestConfig::default()
    };
    Ingest::new(
        MemoryStore::default(),
        MemoryIndex::default(),
        MemorySubjectKeys::default(),
        MemoryRejects::default(),
        MasterKey::from_bytes(vec![3u8; 32]).unwrap(),
        config,
    )
}

/// Generated decisions, outcomes and reviews of two tenants, with many follow-ups.
fn generated(n: usize) -> Vec<Value> {
    let mut cfg = journal_synth::SynthConfig::new(11);
    cfg.tenants = vec![T1.to_string(), T2.to_string()];
    cfg.subjects_per_tenant = 50;
    cfg.outcome_rate = 0.4;
    cfg.review_rate = 0.3;
    journal_synth::generate(cfg, n)
}

/// Ingests `records` received at `now`, `per_batch` messages per ingest call (one block per
/// tenant per call).
async fn ingest(j: &MemIngest, records: &[Value], now: Timestamp, per_batch: usize) {
    for (c, chunk) in records.chunks(per_batch).enumerate() {
        let messages: Vec<Message> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| Message {
                message_id: format!("m{}-{c}-{i}", now.millis()),
                body: journal_synth::producer_body(r),
            })
            .collect();
        let out = j.ingest_batch(&messages, now).await;
        assert!(out.failed.is_empty(), "{out:?}");
        assert_eq!((out.accepted, out.rejected), (chunk.len(), 0), "{out:?}");
    }
}

fn follow_up(kind: &str, id: &str, decision_id: &str, extra: Value) -> Value {
    let mut r = json!({"schema_version": 1, "kind": kind, "decision_id": decision_id,
        "tenant_id": T1, "occurred_at": "2026-03-16T08:00:00.000Z"});
    r[format!("{kind}_id")] = json!(id);
    r[kind] = extra;
    r
}

/// Follow-ups of decisions the journal never saw: counted as unattributed.
fn orphans() -> Vec<Value> {
    vec![
        follow_up(
            "outcome",
            "o-orphan-1",
            "d-never",
            json!({"label": "repaid"}),
        ),
        follow_up(
            "review",
            "r-orphan-1",
            "d-never",
            json!({"reviewer": "ann", "verdict": "override", "override_label": "deny"}),
        ),
        follow_up(
            "review",
            "r-orphan-2",
            "d-never-either",
            json!({"reviewer": "ann", "verdict": "confirm"}),
        ),
    ]
}

/// Two days: the first 60% of the stream received on day 1, the rest (whose follow-ups often
/// name day-1 decisions) and the orphans on day 2.
async fn two_days() -> (MemIngest, Vec<(&'static str, Vec<Value>)>) {
    let records = generated(1500);
    let split = records.len() * 3 / 5;
    let day1 = records[..split].to_vec();
    let mut day2 = records[split..].to_vec();
    day2.extend(orphans());
    let j = journal();
    ingest(&j, &day1, noon(DAY1), 120).await;
    ingest(&j, &day2, noon(DAY2), 120).await;
    (j, vec![(DAY1, day1), (DAY2, day2)])
}

// ---------------------------------------------------------------------------------------------
// The brute-force recount, written from the definitions without the accumulator.

#[derive(Debug, Default)]
struct Recount {
    decisions: u64,
    labels: BTreeMap<String, u64>,
    confidences: Vec<f64>,
    reviews: u64,
    overrides: u64,
    outcomes: u64,
    outcome_labels: BTreeMap<String, u64>,
}

type Key = (String, String, String); // date, model name, model version

fn recount(days: &[(&str, Vec<Value>)], tenant: &str) -> BTreeMap<Key, Recount> {
    let mine = |r: &&Value| r["tenant_id"] == tenant;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let model_of: HashMap<String, (String, String)> = days
        .iter()
        .flat_map(|(_, records)| records.iter().filter(mine))
        .filter(|r| r["kind"] == "decision")
        .map(|r| {
            (
                text(&r["decision_id"]),
                (text(&r["model"]["name"]), text(&r["model"]["version"])),
            )
        })
        .collect();
    let mut out: BTreeMap<Key, Recount> = BTreeMap::new();
    for (date, records) in days {
        for r in records.iter().filter(mine) {
            let (name, version) = match r["kind"].as_str() {
                Some("decision") => (text(&r["model"]["name"]), text(&r["model"]["version"])),
                _ => model_of
                    .get(&text(&r["decision_id"]))
                    .cloned()
                    .unwrap_or_default(),
            };
            let e = out.entry((date.to_string(), name, version)).or_default();
            match r["kind"].as_str() {
                Some("decision") => {
                    e.decisions += 1;
                    *e.labels.entry(text(&r["decision"])).or_default() += 1;
                    if let Some(c) = r["confidence"].as_f64() {
                        e.confidences.push(c);
                    }
                }
                Some("review") => {
                    e.reviews += 1;
                    if r["review"]["verdict"] == "override" {
                        e.overrides += 1;
                    }
                }
                Some("outcome") => {
                    e.outcomes += 1;
                    *e.outcome_labels
                        .entry(text(&r["outcome"]["label"]))
                        .or_default() += 1;
                }
                other => panic!("unexpected kind {other:?}"),
            }
        }
    }
    out
}

/// The exact nearest-rank percentile: the value of rank ceil(p/100 · n) in sorted order.
fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn close(a: Option<f64>, b: Option<f64>, tolerance: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= tolerance,
        (None, None) => true,
        _ => false,
    }
}

fn div(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Every row equals the recount: counts exactly, mean to 1e-12, percentiles to one bin.
fn assert_matches(rows: &[ModelDayMetrics], expected: &BTreeMap<Key, Recount>, tenant: &str) {
    let keys: Vec<Key> = rows
        .iter()
        .map(|r| {
            (
                r.date.clone(),
                r.model_name.clone(),
                r.model_version.clone(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        expected.keys().cloned().collect::<Vec<_>>(),
        "one row per date and model"
    );
    for row in rows {
        let key = (
            row.date.clone(),
            row.model_name.clone(),
            row.model_version.clone(),
        );
        let e = &expected[&key];
        let at = format!("{key:?}");
        assert_eq!(row.tenant_id, tenant);
        assert_eq!(row.decisions, e.decisions, "{at}");
        assert_eq!(row.decisions_by_label, e.labels, "{at}");
        assert_eq!(row.confidence_count, e.confidences.len() as u64, "{at}");
        let mut sorted = e.confidences.clone();
        sorted.sort_by(f64::total_cmp);
        let mean = (!sorted.is_empty()).then(|| sorted.iter().sum::<f64>() / sorted.len() as f64);
        assert!(close(row.confidence_mean, mean, 1e-12), "{at}: mean");
        for (percent, got) in [
            (50, row.confidence_p50),
            (90, row.confidence_p90),
            (99, row.confidence_p99),
        ] {
            let exact = (!sorted.is_empty()).then(|| nearest_rank(&sorted, percent));
            assert!(
                close(got, exact, 1e-4 + 1e-12),
                "{at}: p{percent} {got:?} vs {exact:?}"
            );
            if let (Some(got), Some(exact)) = (got, exact) {
                assert!(
                    got >= exact - 1e-12,
                    "{at}: p{percent} below the exact value"
                );
            }
        }
        assert_eq!(
            (row.reviews, row.overrides, row.outcomes),
            (e.reviews, e.overrides, e.outcomes),
            "{at}"
        );
        assert_eq!(row.outcomes_by_label, e.outcome_labels, "{at}");
        assert_eq!(row.review_share, div(e.reviews, e.decisions), "{at}");
        assert_eq!(row.override_share, div(e.overrides, e.reviews), "{at}");
        assert_eq!(row.outcome_rate, div(e.outcomes, e.decisions), "{at}");
        let rates: BTreeMap<String, f64> = e
            .outcome_labels
            .iter()
            .filter_map(|(l, n)| Some((l.clone(), div(*n, e.decisions)?)))
            .collect();
        assert_eq!(row.outcome_rate_by_label, rates, "{at}");
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn refreshed_days_equal_a_brute_force_recount_and_read_back_the_same() {
    let (j, days) = two_days().await;
    for tenant in [T1, T2] {
        let mut rows = Vec::new();
        for (date, _) in &days {
            let day = refresh_day(&j.store, &j.index, tenant, date).await.unwrap();
            assert!(!day.is_empty(), "{tenant} {date}");
            rows.extend(day);
        }
        let expected = recount(&days, tenant);
        assert_matches(&rows, &expected, tenant);

        let (read, missing) = read_days(&j.store, tenant, "2026-03-14", "2026-03-17")
            .await
            .unwrap();
        assert_eq!(read, rows);
        assert_eq!(missing, ["2026-03-14", "2026-03-17"]);
    }
    // The stream really exercises what the metrics define.
    let t1 = recount(&days, T1);
    let sum = |f: fn(&Recount) -> u64| t1.values().map(f).sum::<u64>();
    assert!(sum(|r| r.overrides) > 0 && sum(|r| r.outcomes) > 0);
    let models = t1.keys().filter(|k| k.0 == DAY1).count();
    assert!(models >= 3, "{models} models on day 1");
}

#[tokio::test]
async fn follow_ups_count_under_their_decisions_model_across_days_or_as_unattributed() {
    let (j, days) = two_days().await;
    let rows = refresh_day(&j.store, &j.index, T1, DAY2).await.unwrap();

    // Day-2 follow-ups of day-1 decisions: attributed through the index.
    let day1_models: HashMap<String, (String, String)> = days[0]
        .1
        .iter()
        .filter(|r| r["tenant_id"] == T1 && r["kind"] == "decision")
        .map(|r| {
            (
                r["decision_id"].as_str().unwrap().to_string(),
                (
                    r["model"]["name"].as_str().unwrap().to_string(),
                    r["model"]["version"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let late = days[1]
        .1
        .iter()
        .filter(|r| r["tenant_id"] == T1 && r["kind"] != "decision")
        .filter(|r| day1_models.contains_key(r["decision_id"].as_str().unwrap()))
        .count();
    assert!(late >= 5, "only {late} cross-day follow-ups");

    let unattributed = rows.iter().find(|r| r.is_unattributed()).unwrap();
    assert_eq!(
        (
            unattributed.decisions,
            unattributed.reviews,
            unattributed.overrides,
            unattributed.outcomes
        ),
        (0, 2, 1, 1)
    );
    assert_eq!(unattributed.review_share, None, "no decisions to divide by");
    assert_eq!(unattributed.override_share, Some(0.5));
    assert_eq!(unattributed.outcome_rate, None);
    assert_eq!(rows.iter().filter(|r| r.is_unattributed()).count(), 1);

    // A cache of two entries forgets nearly everything: the index answers, same rows.
    let small = refresh_day_with(&j.store, &j.index, T1, DAY2, 2)
        .await
        .unwrap();
    assert_eq!(small, rows);
}

#[tokio::test]
async fn a_merge_in_flight_refuses_the_day_and_the_merged_day_counts_every_row_once() {
    let records = generated(600);
    let config = CompactorConfig {
        plan: CompactionConfig {
            settle_ms: 0,
            whole_hours: false,
            ..CompactionConfig::default()
        },
        lease_ms: 60_000,
        ..CompactorConfig::default()
    };
    let later = |ms: i64| Timestamp::from_millis(noon(DAY1).millis() + ms).unwrap();
    for step in CompactStep::ALL {
        let j = journal();
        ingest(&j, &records, noon(DAY1), 50).await;
        let before = refresh_day(&j.store, &j.index, T1, DAY1).await.unwrap();
        let key = layout::metrics_key(T1, DAY1);
        let written = j.store.get_object(&key).await.unwrap().unwrap();

        let dying = Compactor::new(&j.store, &j.index, &j.master, config.clone(), "dies");
        dying.crash_after(step);
        dying.run(T1, DAY1, later(1_000)).await.unwrap_err();
        let err = refresh_day(&j.store, &j.index, T1, DAY1).await.unwrap_err();
        let MetricsError::Unsettled { file_key, .. } = &err else {
            panic!("{step:?}: {err}")
        };
        assert!(file_key.contains("/date=2026-03-15/"), "{file_key}");
        assert!(err.to_string().contains("refresh again after compaction"));
        assert_eq!(
            j.store.get_object(&key).await.unwrap().unwrap(),
            written,
            "{step:?}: nothing written"
        );

        let next = Compactor::new(&j.store, &j.index, &j.master, config.clone(), "next");
        let report = next.run(T1, DAY1, later(120_000)).await.unwrap();
        assert_eq!(report.resumed.len(), 1, "{step:?}: {report:#?}");
        let after = refresh_day(&j.store, &j.index, T1, DAY1).await.unwrap();
        assert_eq!(after, before, "{step:?}: compaction changes no count");
        // Once the inputs are deleted, the output alone counts.
        let report = next.run(T1, DAY1, later(48 * 3_600_000)).await.unwrap();
        assert!(!report.deleted.is_empty(), "{step:?}: {report:#?}");
        let after = refresh_day(&j.store, &j.index, T1, DAY1).await.unwrap();
        assert_eq!(after, before, "{step:?}: after deletion");
    }
}

fn entry(key: &str, state: FileState) -> ManifestEntry {
    ManifestEntry {
        tenant_id: T1.into(),
        file_key: key.into(),
        block_id: "01JFAKE".into(),
        state,
        seq: None,
        rows: 1,
        size: 1,
        sha256: String::new(),
        first_occurred_at: noon(DAY1),
        last_occurred_at: noon(DAY1),
        created_at: noon(DAY1),
        last_seq: None,
        merged_from: Vec::new(),
        compacted_into: None,
        delete_after: None,
        risk_tiers: Vec::new(),
        storage_class: None,
        tombstone: None,
        erasure_receipts: Vec::new(),
    }
}

#[tokio::test]
async fn unfinished_ingests_are_not_counted_and_archived_or_orphaned_files_refuse_the_day() {
    let j = journal();
    ingest(&j, &generated(200), noon(DAY1), 100).await;
    let before = refresh_day(&j.store, &j.index, T1, DAY1).await.unwrap();
    let key = |name: &str| format!("decisions/tenant={T1}/date={DAY1}/hour=13/{name}.parquet");

    // An ingest in progress: its file is not in storage and is not read.
    assert!(j
        .index
        .put_manifest_pending(&entry(&key("pending"), FileState::Pending))
        .await
        .unwrap());
    j.index
        .put_manifest(&entry(&key("chained"), FileState::Chained))
        .await
        .unwrap();
    j.index
        .put_manifest(&entry(&key("abandoned"), FileState::Abandoned))
        .await
        .unwrap();
    assert_eq!(
        refresh_day(&j.store, &j.index, T1, DAY1).await.unwrap(),
        before
    );

    // A live file storage does not have.
    j.index
        .put_manifest(&entry(&key("lost"), FileState::Live))
        .await
        .unwrap();
    let err = refresh_day(&j.store, &j.index, T1, DAY1).await.unwrap_err();
    assert!(
        matches!(&err, MetricsError::MissingFile { file_key } if *file_key == key("lost")),
        "{err}"
    );
    j.index
        .put_manifest(&entry(&key("lost"), FileState::Deleted))
        .await
        .unwrap();

    // A compacted file whose output the manifest does not know.
    j.index
        .put_manifest(&entry(&key("orphan"), FileState::Compacted))
        .await
        .unwrap();
    let err = refresh_day(&j.store, &j.index, T1, DAY1).await.unwrap_err();
    assert!(matches!(err, MetricsError::Unsettled { .. }), "{err}");
    j.index
        .put_manifest(&entry(&key("orphan"), FileState::Deleted))
        .await
        .unwrap();

    j.index
        .put_manifest(&entry(&key("cold"), FileState::Archived))
        .await
        .unwrap();
    let err = refresh_day(&j.store, &j.index, T1, DAY1).await.unwrap_err();
    assert!(
        matches!(&err, MetricsError::Archived { file_key, .. } if *file_key == key("cold")),
        "{err}"
    );
}

#[tokio::test]
async fn an_empty_day_writes_nothing_and_is_listed_as_without_metrics() {
    let j = journal();
    ingest(&j, &generated(50), noon(DAY1), 50).await;
    let rows = refresh_day(&j.store, &j.index, T1, DAY2).await.unwrap();
    assert!(rows.is_empty());
    assert!(j
        .store
        .get_object(&layout::metrics_key(T1, DAY2))
        .await
        .unwrap()
        .is_none());
    let (rows, missing) = read_days(&j.store, T1, DAY2, DAY2).await.unwrap();
    assert!(rows.is_empty());
    assert_eq!(missing, [DAY2]);
}

fn sample_rows() -> Vec<ModelDayMetrics> {
    vec![
        ModelDayMetrics {
            tenant_id: T1.into(),
            date: DAY1.into(),
            model_name: String::new(),
            model_version: String::new(),
            reviews: 3,
            overrides: 1,
            override_share: Some(1.0 / 3.0),
            ..ModelDayMetrics::default()
        },
        ModelDayMetrics {
            tenant_id: T1.into(),
            date: DAY1.into(),
            model_name: "credit-risk".into(),
            model_version: "3.2.0".into(),
            decisions: 7,
            decisions_by_label: [("approve".to_string(), 5), ("deny, \"x\"".to_string(), 2)]
                .into_iter()
                .collect(),
            confidence_count: 6,
            confidence_mean: Some(0.7123456789012345),
            confidence_p50: Some(0.7),
            confidence_p90: Some(0.9001),
            confidence_p99: Some(1.0),
            reviews: 2,
            overrides: 0,
            review_share: Some(2.0 / 7.0),
            override_share: Some(0.0),
            outcomes: 1,
            outcomes_by_label: [("défaut".to_string(), 1)].into_iter().collect(),
            outcome_rate: Some(1.0 / 7.0),
            outcome_rate_by_label: [("défaut".to_string(), 1.0 / 7.0)].into_iter().collect(),
        },
    ]
}

#[tokio::test]
async fn metrics_files_round_trip_with_typed_columns_zstd_and_statistics() {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let (j, _) = two_days().await;
    let mut rows = refresh_day(&j.store, &j.index, T1, DAY2).await.unwrap();
    rows.extend(sample_rows());
    rows.push(ModelDayMetrics {
        tenant_id: T1.into(),
        date: "2099-12-31".into(),
        ..ModelDayMetrics::default()
    });
    let bytes = encode_metrics("k", &rows).unwrap();
    assert_eq!(decode_metrics("k", bytes.clone()).unwrap(), rows);
    assert!(encode_metrics("k", &[]).is_ok_and(|b| decode_metrics("k", b).unwrap().is_empty()));

    let reader = SerializedFileReader::new(bytes.clone()).unwrap();
    let meta = reader.metadata();
    assert!(meta
        .file_metadata()
        .created_by()
        .unwrap()
        .starts_with("decision-journal version"));
    for rg in meta.row_groups() {
        for c in rg.columns() {
            assert!(
                matches!(c.compression(), parquet::basic::Compression::ZSTD(_)),
                "{}",
                c.column_path()
            );
            assert!(c.statistics().is_some(), "{} statistics", c.column_path());
        }
    }
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    assert_eq!(builder.schema().fields(), metrics_schema().fields());
    assert_eq!(
        builder
            .schema()
            .metadata()
            .get(METRICS_FORMAT_KEY)
            .map(String::as_str),
        Some("1")
    );

    // Not a metrics file: refused with the key named.
    let journal_file = j
        .index
        .list_manifest(T1, DAY2)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.state == FileState::Live)
        .unwrap();
    let other = j
        .store
        .get_object(&journal_file.file_key)
        .await
        .unwrap()
        .unwrap();
    let err = decode_metrics("metrics/x", other).unwrap_err();
    assert!(err.to_string().starts_with("metrics/x: "), "{err}");
    let err = decode_metrics("metrics/y", Bytes::from_static(b"nope")).unwrap_err();
    assert!(err.to_string().starts_with("metrics/y: "), "{err}");
}

#[tokio::test]
async fn a_metrics_file_under_another_tenants_key_is_refused() {
    let store = MemoryStore::default();
    let bytes = encode_metrics("k", &sample_rows()).unwrap();
    store
        .put_object(&layout::metrics_key(T2, DAY1), bytes)
        .await
        .unwrap();
    let err = read_days(&store, T2, DAY1, DAY1).await.unwrap_err();
    assert!(
        err.to_string().contains("holds a row of tenant t1"),
        "{err}"
    );
}

#[tokio::test]
async fn date_ranges_are_checked_and_capped_at_366_days() {
    let store = MemoryStore::default();
    let (rows, missing) = read_days(&store, T1, "2024-01-01", "2024-12-31")
        .await
        .unwrap();
    assert!(rows.is_empty());
    assert_eq!(missing.len(), 366);
    assert_eq!(missing[59], "2024-02-29");
    // 2026 has 365 days: to 2027-01-01 is 366 days, the most one read covers.
    let (_, missing) = read_days(&store, T1, "2026-01-01", "2027-01-01")
        .await
        .unwrap();
    assert_eq!(missing.len(), 366);
    let err = read_days(&store, T1, "2026-01-01", "2027-01-02")
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetricsError::RangeTooLong { days: 367, .. }),
        "{err}"
    );
    assert!(err.is_bad_request());
    for (from, to, field) in [
        ("2026-02-30", "2026-03-01", "from"),
        ("2026-3-1", "2026-03-01", "from"),
        ("2026-03-01", "2026-03-01T00:00:00Z", "to"),
        ("2026-03-01", "1999-12-31", "to"),
        ("2026-03-01", "", "to"),
    ] {
        let err = read_days(&store, T1, from, to).await.unwrap_err();
        assert!(
            matches!(&err, MetricsError::BadDate { field: f, .. } if *f == field),
            "{from} {to}: {err}"
        );
        assert!(err.to_string().starts_with(&format!("{field}: ")), "{err}");
        assert!(err.is_bad_request());
    }
    let err = read_days(&store, T1, "2026-03-02", "2026-03-01")
        .await
        .unwrap_err();
    assert!(matches!(err, MetricsError::Inverted { .. }), "{err}");
    let err = read_days(&store, "a/b", DAY1, DAY1).await.unwrap_err();
    assert!(matches!(err, MetricsError::BadTenant { .. }), "{err}");
    assert_eq!(days_between(DAY1, DAY2).unwrap(), [DAY1, DAY2]);
}

#[test]
fn histogram_percentiles_are_within_one_bin_above_the_exact_nearest_rank() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for n in [1usize, 2, 3, 10, 99, 100, 101, 1000, 20_000] {
        let mut values: Vec<f64> = (0..n)
            .map(|i| match i % 7 {
                0 => 0.0,
                1 => 1.0,
                2 => f64::from(rng.gen_range(0..=10_000u32)) / 10_000.0, // bin edges
                _ => rng.gen::<f64>(),
            })
            .collect();
        let mut h = ConfidenceHistogram::default();
        for v in &values {
            assert!(h.add(*v));
        }
        values.sort_by(f64::total_cmp);
        assert_eq!(h.count(), n as u64);
        let mean = values.iter().sum::<f64>() / n as f64;
        assert!((h.mean().unwrap() - mean).abs() < 1e-12);
        for percent in 1..=100u32 {
            let exact = nearest_rank(&values, percent as usize);
            let got = h.percentile(percent).unwrap();
            assert!(
                got >= exact - 1e-12 && got <= exact + 1e-4 + 1e-12,
                "n={n} p{percent}: {got} vs {exact}"
            );
        }
    }
    // Capped at the largest value: one repeated confidence is reported exactly.
    let mut h = ConfidenceHistogram::default();
    for _ in 0..1000 {
        h.add(0.92);
    }
    assert_eq!(h.percentile(50), Some(0.92));
    assert_eq!(h.percentile(99), Some(0.92));
    let mut empty = ConfidenceHistogram::default();
    assert_eq!((empty.mean(), empty.percentile(50)), (None, None));
    assert!(!empty.add(1.5) && !empty.add(f64::NAN) && !empty.add(-0.1));
    assert_eq!(empty.count(), 0);
}

fn decision(id: &str, label: &str, confidence: Option<f64>) -> Record {
    let text = json!({"schema_version": 1, "kind": "decision", "decision_id": id,
        "tenant_id": T1, "occurred_at": "2026-03-15T10:00:00.000Z",
        "model": {"name": "m", "version": "1", "artifact_sha256": "ab".repeat(32)},
        "outputs": [{"label": label, "score": 0.5}], "decision": label});
    let mut r: Record = serde_json::from_value(text).unwrap();
    r.confidence = confidence;
    r
}

#[test]
fn labels_beyond_the_cap_are_counted_together_and_the_first_output_stands_in() {
    let mut acc = DayAccumulator::new(T1, DAY1);
    // First, so that its label is among the kept ones.
    let mut no_label = decision("d-x", "fallback", Some(0.25));
    no_label.decision = None;
    acc.add_decision(&no_label);
    for i in 0..MAX_LABELS + 5 {
        acc.add_decision(&decision(&format!("d{i}"), &format!("label-{i:04}"), None));
    }
    let mut no_model = decision("d-y", "approve", None);
    no_model.model = None;
    acc.add_decision(&no_model);
    let rows = acc.finish();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].is_unattributed());
    assert_eq!(rows[0].decisions, 1);
    let m = &rows[1];
    assert_eq!(m.decisions, MAX_LABELS as u64 + 6);
    assert_eq!(m.decisions_by_label.len(), MAX_LABELS + 1);
    assert_eq!(m.decisions_by_label[OTHER_LABEL], 6);
    assert_eq!(m.decisions_by_label["fallback"], 1);
    assert_eq!(
        (m.confidence_count, m.confidence_mean, m.confidence_p50),
        (1, Some(0.25), Some(0.25))
    );
    assert_eq!(
        (m.model_name.as_str(), m.model_version.as_str()),
        ("m", "1")
    );
}
