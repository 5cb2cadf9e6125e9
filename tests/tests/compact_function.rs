//! The compact function as its schedule runs it, against the local endpoint: the template's
//! EventBridge Scheduler schedule is deployed and checked, then ≥ 10,000 decisions ingested in
//! many small blocks are compacted by two runs of the schedule's task at once. Afterwards the
//! planner's expected outputs exist, every record is found by id and by subject with a verified
//! proof, the chains verify, no record is lost or duplicated, pyarrow and DuckDB read the
//! same rows as before, and the day's metrics equal a brute-force recount.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::{ensure, Context, Result};
use aws_sdk_s3::types::ObjectLockMode;
use futures::StreamExt;
use integration_tests::harness::{keep_to_one_day, ONE_DATE};
use integration_tests::stack::{python, repo_root};
use integration_tests::TestJournal;
use journal_aws::checkpoints::{CheckpointRetention, S3CheckpointStore};
use journal_core::checkpoint::{
    write_checkpoint, CheckpointWitness, MemorySigner, WitnessCache, WriteOutcome,
};
use journal_core::columnar;
use journal_core::integrity::verify_stored_chain;
use journal_core::ports::{FileState, JournalIndex, ManifestEntry, ObjectStore};
use journal_core::replay::{Finder, Lookup, RowReader};
use journal_core::timestamp::Timestamp;
use journal_synth::{generate_with_followups, producer_body_batch, record_id, SynthConfig};
use serde_json::{json, Value};

const DECISIONS: usize = 10_000;
const TARGET_BYTES: u64 = 1 << 20;
const HOUR_MS: i64 = 3_600_000;

/// `DECISIONS` generated decisions and the outcomes and reviews that follow them meanwhile.
fn records() -> Vec<Value> {
    let mut cfg = SynthConfig::new(47);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - 2 * HOUR_MS).expect("time");
    cfg.mean_gap_ms = 20;
    generate_with_followups(cfg, DECISIONS)
}

fn compact_deps_env(j: &TestJournal) -> Result<HashMap<String, String>> {
    j.stack.function_env(&[
        ("DJ_COMPACT_TARGET_BYTES", &TARGET_BYTES.to_string()),
        ("DJ_COMPACT_SETTLE_SECONDS", "0"),
        ("DJ_COMPACT_GRACE_SECONDS", "3600"),
    ])
}

/// The outputs the planner's documented rule makes of a partition date's live files: per
/// hour, in chain order, a new output whenever the next file would pass the target; an
/// output of one file is no output.
fn expected_outputs(entries: &[ManifestEntry]) -> usize {
    let mut by_hour: BTreeMap<u8, Vec<&ManifestEntry>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.state == FileState::Live) {
        let hour = journal_core::layout::hour_of_file_key(&e.file_key).expect("hour");
        by_hour.entry(hour).or_default().push(e);
    }
    let mut outputs = 0;
    for files in by_hour.values_mut() {
        files.sort_by_key(|e| e.seq);
        let (mut n, mut bytes) = (0usize, 0u64);
        for f in files.iter().filter(|f| f.size < TARGET_BYTES) {
            if n > 0 && bytes + f.size > TARGET_BYTES {
                outputs += usize::from(n > 1);
                (n, bytes) = (0, 0);
            }
            n += 1;
            bytes += f.size;
        }
        outputs += usize::from(n > 1);
    }
    outputs
}

/// A brute-force recount of one tenant's generated records by model version, from the
/// definitions in `journal_core::metrics` (all records are received on one day).
#[derive(Debug, Default)]
struct Recount {
    decisions: u64,
    labels: BTreeMap<String, u64>,
    confidences: Vec<f64>,
    reviews: u64,
    overrides: u64,
    outcomes: BTreeMap<String, u64>,
}

fn recount(records: &[Value], tenant: &str) -> BTreeMap<(String, String), Recount> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mine: Vec<&Value> = records
        .iter()
        .filter(|r| r["tenant_id"] == tenant)
        .collect();
    let model_of: HashMap<String, (String, String)> = mine
        .iter()
        .filter(|r| r["kind"] == "decision")
        .map(|r| {
            let model = (text(&r["model"]["name"]), text(&r["model"]["version"]));
            (text(&r["decision_id"]), model)
        })
        .collect();
    let mut out: BTreeMap<(String, String), Recount> = BTreeMap::new();
    for r in mine {
        let model = model_of
            .get(&text(&r["decision_id"]))
            .cloned()
            .unwrap_or_default();
        let e = out.entry(model).or_default();
        match r["kind"].as_str() {
            Some("decision") => {
                e.decisions += 1;
                let label = match r["decision"].as_str() {
                    Some(l) => l.to_string(),
                    None => text(&r["outputs"][0]["label"]),
                };
                *e.labels.entry(label).or_default() += 1;
                e.confidences.extend(r["confidence"].as_f64());
            }
            Some("review") => {
                e.reviews += 1;
                e.overrides += u64::from(r["review"]["verdict"] == "override");
            }
            Some("outcome") => *e.outcomes.entry(text(&r["outcome"]["label"])).or_default() += 1,
            _ => {}
        }
    }
    out
}

/// The stored metrics rows of a tenant-day equal the recount: counts exactly, the mean to
/// 1e-9, each percentile at or above the exact nearest-rank value and within one bin (1e-4).
fn check_metrics(
    rows: &[journal_core::metrics::ModelDayMetrics],
    expected: &BTreeMap<(String, String), Recount>,
) -> Result<()> {
    let keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.model_name.clone(), r.model_version.clone()))
        .collect();
    ensure!(
        keys == expected.keys().cloned().collect::<Vec<_>>(),
        "rows {keys:?}"
    );
    for row in rows {
        let e = &expected[&(row.model_name.clone(), row.model_version.clone())];
        let at = &row.model_name;
        ensure!(
            (row.decisions, row.reviews, row.overrides) == (e.decisions, e.reviews, e.overrides),
            "{at}: {row:?} vs {e:?}"
        );
        ensure!(row.decisions_by_label == e.labels, "{at}: labels");
        ensure!(row.outcomes_by_label == e.outcomes, "{at}: outcomes");
        ensure!(row.outcomes == e.outcomes.values().sum::<u64>(), "{at}");
        let mut sorted = e.confidences.clone();
        sorted.sort_by(f64::total_cmp);
        ensure!(row.confidence_count == sorted.len() as u64, "{at}");
        if sorted.is_empty() {
            continue;
        }
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        ensure!(
            row.confidence_mean.is_some_and(|m| (m - mean).abs() < 1e-9),
            "{at}: mean {:?} vs {mean}",
            row.confidence_mean
        );
        for (percent, got) in [
            (50, row.confidence_p50),
            (90, row.confidence_p90),
            (99, row.confidence_p99),
        ] {
            let exact = sorted[(percent * sorted.len()).div_ceil(100).max(1) - 1];
            ensure!(
                got.is_some_and(|g| g >= exact - 1e-12 && g <= exact + 1e-4 + 1e-12),
                "{at}: p{percent} {got:?} vs {exact}"
            );
        }
    }
    Ok(())
}

/// Writes every live file of the tenants' partition date into `dir`; returns the row count
/// and the record ids seen.
async fn download_live(
    j: &TestJournal,
    tenants: &[String],
    date: &str,
    dir: &Path,
) -> Result<Vec<String>> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let mut ids = Vec::new();
    for t in tenants {
        for (n, e) in j
            .deps
            .index
            .list_manifest(t, date)
            .await?
            .iter()
            .filter(|e| e.state == FileState::Live)
            .enumerate()
        {
            let bytes = j
                .deps
                .store
                .get_object(&e.file_key)
                .await?
                .with_context(|| format!("live file {} is missing", e.file_key))?;
            ids.extend(
                columnar::decode_file(bytes.clone())?
                    .into_iter()
                    .map(|r| r.record.record_id().to_string()),
            );
            std::fs::write(dir.join(format!("{t}-{n:05}.parquet")), &bytes)?;
        }
    }
    Ok(ids)
}

/// Rows as pyarrow and DuckDB read them (tests/python/read_parquet.py).
fn read_with_python(dir: &Path) -> Result<Value> {
    let out = std::process::Command::new(python()?)
        .arg(repo_root().join("tests/python/read_parquet.py"))
        .arg(dir)
        .output()?;
    ensure!(
        out.status.success(),
        "read_parquet.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Value = serde_json::from_slice(&out.stdout)?;
    Ok(json!({"pyarrow": v["pyarrow"].take(), "duckdb": v["duckdb"].take()}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_scheduled_runs_at_once_compact_ten_thousand_decisions_with_nothing_lost() -> Result<()>
{
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let j = TestJournal::with_params("compactfn", 900, |prefix| {
        vec![(
            "CompactFunctionArn".into(),
            format!("arn:aws:lambda:{region}:123456789012:function:{prefix}-compact"),
        )]
    })
    .await?;

    // The template's schedule exists and sends the task this test runs.
    j.stack.check(&[
        "PASS  compact schedule input is the compact task",
        "PASS  scheduler role may only invoke the compact function",
    ])?;
    let schedule_input: Value = serde_json::from_str(r#"{"task":"compact"}"#)?;
    let task = compact::Task::parse(&schedule_input)?;

    // Many small blocks: ten records per message, ten messages per invocation.
    let started = std::time::Instant::now();
    let stage = |what: &str| eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let records = records();
    let bodies: Vec<Vec<u8>> = records.chunks(10).map(producer_body_batch).collect();
    keep_to_one_day(ONE_DATE).await;
    j.send_and_drain(&bodies, 200).await?;
    let mut tenants: Vec<String> = records
        .iter()
        .filter_map(|r| r["tenant_id"].as_str().map(str::to_string))
        .collect();
    tenants.sort();
    tenants.dedup();
    stage("ingested");
    // A signed checkpoint per tenant before compaction: afterwards every lookup's proof rests
    // on it, though the blocks it lists have moved into other files.
    let signer = MemorySigner::from_seed(b"compact function");
    let checkpoints = S3CheckpointStore::new(
        j.clients.s3.clone(),
        &j.config.bucket,
        CheckpointRetention {
            mode: ObjectLockMode::Governance,
            days: 1,
        },
    );
    for t in &tenants {
        let out =
            write_checkpoint(&j.deps.index, &checkpoints, &signer, t, Timestamp::now()).await?;
        ensure!(matches!(out, WriteOutcome::Written { .. }), "{t}: {out:?}");
    }
    let date = Timestamp::now().date_string();
    let scratch = std::env::temp_dir().join(format!("{}-compact", j.stack.prefix));

    let mut expected = 0;
    let mut files_before = 0;
    for t in &tenants {
        let entries = j.deps.index.list_manifest(t, &date).await?;
        files_before += entries.len();
        expected += expected_outputs(&entries);
    }
    ensure!(
        files_before >= 100,
        "{files_before} files: not many small blocks"
    );
    let before_ids = download_live(&j, &tenants, &date, &scratch.join("before")).await?;
    ensure!(
        before_ids.len() == records.len(),
        "{} rows",
        before_ids.len()
    );
    let before = read_with_python(&scratch.join("before"))?;

    stage("read before compaction");
    // Two runs of the schedule's task at once, as two overlapping invocations would.
    let config = compact::Config::from_map(&compact_deps_env(&j)?)?;
    let deps = compact::build_deps(config, &j.clients).await?;
    // The runs' clock: past the end of every hour the records landed in (whole hours only).
    let now = Timestamp::from_millis(Timestamp::now().millis() + HOUR_MS + 60_000)?;
    let (a, b) = tokio::join!(
        compact::compact(&deps, &task, now, None),
        compact::compact(&deps, &task, now, None)
    );
    let runs: Vec<compact::PartitionRun> = a
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .chain(b.map_err(|e| anyhow::anyhow!("{e}"))?)
        .collect();
    // The run that finished a tenant's day last found no merge in flight and counted it.
    for t in &tenants {
        ensure!(
            runs.iter().any(|r| &r.tenant_id == t
                && r.date == date
                && matches!(r.metrics, compact::MetricsRun::Refreshed { rows } if rows > 0)),
            "{t}: metrics not refreshed by either run: {runs:#?}"
        );
    }
    let mut written = BTreeSet::new();
    for r in &runs {
        ensure!(r.error.is_none(), "{r:?}");
        for w in &r.report.written {
            ensure!(
                written.insert(w.file_key.clone()),
                "{} written twice",
                w.file_key
            );
        }
    }
    ensure!(
        written.len() == expected,
        "{} outputs, the plan's rule gives {expected}: {runs:#?}",
        written.len()
    );
    let mut live_keys = BTreeSet::new();
    for t in &tenants {
        let entries = j.deps.index.list_manifest(t, &date).await?;
        live_keys.extend(
            entries
                .iter()
                .filter(|e| e.state == FileState::Live)
                .map(|e| e.file_key.clone()),
        );
        ensure!(
            !entries.iter().any(|e| e.state == FileState::Pending),
            "{t}: a merge left pending"
        );
    }
    let files_after = live_keys.len();
    ensure!(
        files_after * 10 <= files_before,
        "{files_before} files became {files_after}"
    );

    stage("compacted");
    // Every record found by id with a verified proof; subjects find exactly theirs.
    let (store, index) = (&j.deps.store, &j.deps.index);
    let cache = WitnessCache::default();
    let der = signer.public_key_der();
    let witness = CheckpointWitness::new(&checkpoints, Some(der.as_slice()), &cache);
    let finder = Finder::new(store, index).with_witness(&witness);
    // Neighbouring records share files and row groups: one reader (and its cache) per run of
    // 250 records, 8 runs at a time.
    let finder = &finder;
    let mut lookups = futures::stream::iter(records.chunks(250).map(|chunk| async move {
        let mut reader = RowReader::new(store);
        let mut found = Vec::new();
        for r in chunk {
            let tenant = r["tenant_id"].as_str().unwrap_or_default();
            let id = record_id(r);
            let lookup = finder.by_id(&mut reader, tenant, &id, now).await;
            found.push((id, lookup));
        }
        found
    }))
    .buffer_unordered(8);
    let mut in_outputs = 0;
    while let Some(found) = lookups.next().await {
        for (id, lookup) in found {
            match lookup? {
                Lookup::Found(f) => {
                    ensure!(f.proof.verified, "{id}: {:?}", f.proof.faults);
                    ensure!(
                        f.proof.checkpoint.is_some(),
                        "{id}: proof does not rest on the checkpoint: {:?}",
                        f.proof
                    );
                    ensure!(
                        live_keys.contains(&f.file_key),
                        "{id} points at {}, not a live file",
                        f.file_key
                    );
                    in_outputs += usize::from(written.contains(&f.file_key));
                }
                other => anyhow::bail!("{id}: {other:?}"),
            }
        }
    }
    drop(lookups);
    ensure!(
        in_outputs * 10 >= records.len() * 9,
        "only {in_outputs} of {} records are in compacted files",
        records.len()
    );
    stage("found by id");
    let mut subjects: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for r in records.iter().filter(|r| r["subject"]["id"].is_string()) {
        let key = (
            r["tenant_id"].as_str().unwrap_or_default().to_string(),
            r["subject"]["id"].as_str().unwrap_or_default().to_string(),
        );
        subjects.entry(key).or_default().insert(record_id(r));
    }
    // Every record occurred within the last three hours of the runs' clock.
    let range = (
        Timestamp::from_millis(now.millis() - 5 * HOUR_MS)?,
        Timestamp::from_millis(now.millis() + HOUR_MS)?,
    );
    for ((tenant, subject), ids) in subjects.iter().step_by(subjects.len().div_ceil(100)) {
        let sref = j.deps.master.tenant_keys(tenant).subject_ref(subject);
        let mut reader = RowReader::new(store);
        let mut got = BTreeSet::new();
        for l in finder
            .by_subject(&mut reader, tenant, &sref, range, 10_000)
            .await?
        {
            match l {
                Lookup::Found(f) => {
                    ensure!(f.proof.verified, "{subject}: {:?}", f.proof.faults);
                    got.insert(f.record.record_id().to_string());
                }
                other => anyhow::bail!("{subject}: {other:?}"),
            }
        }
        ensure!(&got == ids, "{tenant}/{subject}: {got:?} != {ids:?}");
    }
    stage("found by subject");
    let mut rows = 0;
    for t in &tenants {
        let report = verify_stored_chain(index, store, t).await?;
        ensure!(report.ok(), "{t}: {:?}", report.faults);
        rows += report.rows_checked;
    }
    ensure!(rows == records.len() as u64, "{rows} rows verified");

    stage("verified");
    // After the grace period a scheduled run deletes the inputs; the live files then hold
    // every record exactly once, and pyarrow and DuckDB read the same rows as before.
    let later = Timestamp::from_millis(now.millis() + HOUR_MS + 60_000)?;
    let runs = compact::compact(&deps, &task, later, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let deleted: usize = runs.iter().map(|r| r.report.deleted).sum();
    ensure!(
        runs.iter().all(|r| r.report.written.is_empty()),
        "a compacted partition was merged again: {runs:#?}"
    );
    ensure!(
        deleted + files_after == files_before + written.len(),
        "{deleted} deleted, {files_after} live of {files_before} + {}",
        written.len()
    );
    ensure!(
        runs.iter()
            .all(|r| matches!(r.metrics, compact::MetricsRun::Refreshed { .. })),
        "{runs:#?}"
    );
    for t in &tenants {
        let (rows, missing) = journal_core::metrics::read_days(store, t, &date, &date).await?;
        ensure!(missing.is_empty(), "{t}: no metrics for {date}");
        check_metrics(&rows, &recount(&records, t)).with_context(|| format!("{t} metrics"))?;
        // The stored file as pyarrow and DuckDB read it: the same rows.
        let key = journal_core::layout::metrics_key(t, &date);
        let bytes = store.get_object(&key).await?.context("metrics file")?;
        let file = scratch.join(format!("metrics-{t}.parquet"));
        std::fs::create_dir_all(&scratch)?;
        std::fs::write(&file, &bytes)?;
        let out = std::process::Command::new(python()?)
            .arg(repo_root().join("tests/python/read_metrics.py"))
            .arg(&file)
            .output()?;
        ensure!(
            out.status.success(),
            "read_metrics.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read: Value = serde_json::from_slice(&out.stdout)?;
        for reader in ["pyarrow", "duckdb"] {
            let got = read[reader].as_array().context("rows")?;
            ensure!(got.len() == rows.len(), "{reader}: {} rows", got.len());
            for (g, r) in got.iter().zip(&rows) {
                let want = json!({
                    "tenant_id": r.tenant_id, "day": r.date, "model_name": r.model_name,
                    "model_version": r.model_version, "decisions": r.decisions,
                    "confidence_count": r.confidence_count, "reviews": r.reviews,
                    "overrides": r.overrides, "outcomes": r.outcomes,
                    "decisions_by_label": r.decisions_by_label,
                    "outcomes_by_label": r.outcomes_by_label,
                    "confidence_mean": r.confidence_mean,
                });
                ensure!(g == &want, "{reader} reads {g} for {want}");
            }
        }
    }
    stage("metrics equal a recount");
    let mut after_ids = download_live(&j, &tenants, &date, &scratch.join("after")).await?;
    after_ids.sort();
    let unique: BTreeSet<&String> = after_ids.iter().collect();
    ensure!(
        unique.len() == after_ids.len() && after_ids.len() == records.len(),
        "{} rows, {} distinct, {} records",
        after_ids.len(),
        unique.len(),
        records.len()
    );
    let after = read_with_python(&scratch.join("after"))?;
    for reader in ["pyarrow", "duckdb"] {
        let (b, a) = (&before[reader], &after[reader]);
        ensure!(
            b.as_array().map(Vec::len) == Some(records.len()),
            "{reader} read {:?} rows",
            b.as_array().map(Vec::len)
        );
        ensure!(a == b, "{reader} reads different rows after compaction");
    }
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}
