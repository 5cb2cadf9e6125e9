//! The retention function against the local endpoint, with a controllable clock: generated
//! decisions are ingested and compacted, a policy is published, then the clock moves. Files
//! move to the archive class exactly when due (small ones are reported, not moved); an
//! archived decision is looked up, restored and read; a legal hold placed by raw subject id
//! keeps its files past expiry; expired files are deleted with signed tombstones and the
//! tenant still verifies, naming the tombstoned blocks as deleted by rule; a run that dies
//! mid-file is finished by the next; an invalid policy is rejected whole.

use std::collections::{BTreeSet, HashMap};

use anyhow::{ensure, Context, Result};
use integration_tests::harness::{keep_to_one_day, ONE_DATE};
use integration_tests::TestJournal;
use journal_core::checkpoint::{write_checkpoint, CheckpointPolicy, CheckpointStore, WriteOutcome};
use journal_core::ports::{FileState, IndexEntry, JournalIndex, ManifestEntry};
use journal_core::replay::audit::{verify_scope, VerifyScope};
use journal_core::replay::{Finder, Lookup, RowReader};
use journal_core::retention::plan::due_times;
use journal_core::retention::{
    current_policy, Retention, RetentionConfig, RetentionPolicy, RetentionStep, MIN_ARCHIVE_BYTES,
};
use journal_core::timestamp::Timestamp;
use journal_synth::{generate_with_followups, producer_body_batch, record_id, SynthConfig};
use serde_json::{json, Value};

/// About 1.5 MB of ingest files per tenant: two outputs each at the smallest target (1 MiB).
const DECISIONS: usize = 4_500;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

fn records() -> Vec<Value> {
    let mut cfg = SynthConfig::new(53);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - HOUR_MS).expect("time");
    cfg.mean_gap_ms = 20;
    generate_with_followups(cfg, DECISIONS)
}

fn env(j: &TestJournal) -> Result<HashMap<String, String>> {
    j.stack.function_env(&[
        ("DJ_COMPACT_TARGET_BYTES", "1048576"),
        ("DJ_COMPACT_SETTLE_SECONDS", "0"),
        ("DJ_COMPACT_GRACE_SECONDS", "0"),
    ])
}

fn policy_doc(version: u64) -> Value {
    json!({
        "format": 1, "version": version, "updated_at": "2026-01-01T00:00:00Z",
        "default": {
            "default": {"days_hot": 30, "archive_class": "GLACIER", "expire_after_years": 1},
            "tiers": {"high": {"days_hot": 60, "archive_class": "DEEP_ARCHIVE", "expire_after_years": 2}}
        }
    })
}

fn task(v: Value) -> Result<retention::Task> {
    Ok(retention::Task::parse(&v)?)
}

async fn call(deps: &retention::Deps, v: Value, now: Timestamp) -> Result<Value> {
    retention::handle(deps, &task(v)?, now, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Every file of the tenants' partition dates (one date: all records were received today).
async fn files(j: &TestJournal, tenants: &[String], date: &str) -> Result<Vec<ManifestEntry>> {
    let mut out = Vec::new();
    for t in tenants {
        out.extend(j.deps.index.list_manifest(t, date).await?);
    }
    Ok(out)
}

fn at(t: Timestamp, ms: i64) -> Result<Timestamp> {
    Ok(Timestamp::from_millis(t.millis() + ms)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_are_archived_held_and_expired_on_time_and_the_journal_still_verifies() -> Result<()>
{
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let j = TestJournal::with_params("retention", 900, |prefix| {
        vec![(
            "RetentionFunctionArn".into(),
            format!("arn:aws:lambda:{region}:123456789012:function:{prefix}-retention"),
        )]
    })
    .await?;
    // The template's daily schedule exists and sends the task this test runs.
    j.stack.check(&[
        "PASS  retention schedule input is the run task",
        "PASS  scheduler role may only invoke the retention function",
    ])?;
    let schedule_task = task(json!({"task": "run"}))?;
    ensure!(schedule_task == retention::Task::Run(retention::task::Scope::default()));
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
    let date = Timestamp::now().date_string();
    stage("ingested");

    let env = env(&j)?;
    let compact_deps = compact::build_deps(compact::Config::from_map(&env)?, &j.clients).await?;
    let deps = retention::build_deps(retention::Config::from_map(&env)?, &j.clients).await?;
    // Compaction's clock: past the hours the records landed in; a second run deletes inputs.
    let compacted_at = at(Timestamp::now(), HOUR_MS + 60_000)?;
    let compact_task = compact::Task::parse(&json!({"task": "compact"}))?;
    for now in [compacted_at, at(compacted_at, 1_000)?] {
        let runs = compact::compact(&compact_deps, &compact_task, now, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(runs.iter().all(|r| r.error.is_none()), "{runs:?}");
    }
    // Checkpoints signed by the key that will sign the tombstones.
    for t in &tenants {
        let out = write_checkpoint(
            &j.deps.index,
            &deps.evidence,
            &deps.signer,
            t,
            Timestamp::now(),
        )
        .await?;
        ensure!(matches!(out, WriteOutcome::Written { .. }), "{t}: {out:?}");
    }
    let public_key = deps.signer.public_key_der().await?;
    let audit = |t: String| {
        let (index, store, evidence, key) =
            (&j.deps.index, &j.deps.store, &deps.evidence, &public_key);
        async move {
            verify_scope(
                index,
                store,
                evidence,
                &VerifyScope::tenant(t),
                key,
                &CheckpointPolicy::default(),
                Timestamp::now(),
            )
            .await
        }
    };
    stage("compacted and checkpointed");

    // No policy yet: a run refuses to guess.
    ensure!(call(&deps, json!({"task": "run"}), compacted_at)
        .await
        .is_err());
    // An invalid policy is rejected whole, naming the field.
    let mut bad = policy_doc(1);
    bad["default"]["tiers"]["high"]["days_hot"] = json!(2);
    let err = call(
        &deps,
        json!({"task": "set_policy", "policy": bad}),
        compacted_at,
    )
    .await
    .unwrap_err()
    .to_string();
    ensure!(err.contains("default.tiers.high.days_hot"), "{err}");
    ensure!(current_policy(&deps.evidence).await?.is_none());
    call(
        &deps,
        json!({"task": "set_policy", "policy": policy_doc(1)}),
        compacted_at,
    )
    .await?;
    let policy: RetentionPolicy = current_policy(&deps.evidence).await?.context("policy")?.1;

    // When each live file falls due, by the rule of the tiers it holds.
    let live: Vec<ManifestEntry> = files(&j, &tenants, &date)
        .await?
        .into_iter()
        .filter(|e| e.state == FileState::Live)
        .collect();
    ensure!(live.len() >= tenants.len(), "{} live files", live.len());
    let due = |e: &ManifestEntry| {
        let g = policy.governing(&e.tenant_id, e.known_tiers());
        let (archive, expire) = due_times(e, &g);
        (archive.expect("archive due"), expire.expect("expiry"), g)
    };
    let first_archive = live.iter().map(|e| due(e).0).min().context("files")?;
    let last_archive = live.iter().map(|e| due(e).0).max().context("files")?;
    let big: BTreeSet<String> = live
        .iter()
        .filter(|e| e.size >= MIN_ARCHIVE_BYTES)
        .map(|e| e.file_key.clone())
        .collect();
    ensure!(!big.is_empty(), "no file reaches 128 KiB: {live:?}");

    // A dry run at the due time lists what it would move and changes nothing.
    let plan = call(&deps, json!({"task": "plan"}), last_archive).await?;
    let planned: usize = plan["tenants"]
        .as_array()
        .context("tenants")?
        .iter()
        .map(|t| t["counts"]["archive"].as_u64().unwrap_or(0) as usize)
        .sum();
    ensure!(planned == big.len(), "plan: {plan:#}");
    ensure!(files(&j, &tenants, &date)
        .await?
        .iter()
        .all(|e| e.state != FileState::Archived));

    let early = call(&deps, json!({"task": "run"}), at(first_archive, -1)?).await?;
    ensure!(
        files(&j, &tenants, &date)
            .await?
            .iter()
            .all(|e| e.state != FileState::Archived),
        "archived before due: {early:#}"
    );
    let run = call(&deps, json!({"task": "run"}), last_archive).await?;
    for e in files(&j, &tenants, &date).await? {
        let head = deps.store.head(&e.file_key).await?;
        if big.contains(&e.file_key) {
            let class = due(&e).2.rule.archive_class.as_str();
            ensure!(
                e.state == FileState::Archived,
                "{}: {:?}",
                e.file_key,
                e.state
            );
            ensure!(e.storage_class.as_deref() == Some(class), "{e:?}");
            ensure!(
                head.context("object")?.storage_class == class,
                "{}",
                e.file_key
            );
        } else if e.state == FileState::Live {
            ensure!(
                head.context("object")?.storage_class == "STANDARD",
                "{}",
                e.file_key
            );
        }
    }
    let too_small: u64 = run["tenants"]
        .as_array()
        .context("tenants")?
        .iter()
        .map(|t| t["counts"]["too_small"].as_u64().unwrap_or(0))
        .sum();
    ensure!(
        too_small as usize == live.len() - big.len(),
        "small files reported: {run:#}"
    );
    stage("archived when due");

    // An archived decision: the lookup asks for a restore; once restored it is read and proven.
    let finder = Finder::new(&j.deps.store, &j.deps.index);
    let mut found_archived = None;
    for r in &records {
        let (t, id) = (r["tenant_id"].as_str().unwrap_or_default(), record_id(r));
        if let Some(IndexEntry::Indexed(p)) = j.deps.index.get_pointer(t, &id).await? {
            if big.contains(&p.file_key) {
                ensure!(p.storage_state == FileState::Archived, "{p:?}");
                found_archived = Some((t.to_string(), id));
                break;
            }
        }
    }
    let (t, id) = found_archived.context("no record in an archived file")?;
    let mut reader = RowReader::new(&j.deps.store);
    match finder.by_id(&mut reader, &t, &id, Timestamp::now()).await? {
        Lookup::Archived(notice) => ensure!(notice.status.contains("restore"), "{notice:?}"),
        other => anyhow::bail!("{id}: expected archived, got {other:?}"),
    }
    // The local endpoint completes restores at once (S3 takes hours).
    let mut reader = RowReader::new(&j.deps.store);
    match finder.by_id(&mut reader, &t, &id, Timestamp::now()).await? {
        Lookup::Found(f) => ensure!(f.proof.verified, "{:?}", f.proof.faults),
        other => anyhow::bail!("{id}: after the restore: {other:?}"),
    }
    // The next run follows the restore the lookup asked for.
    let run = call(&deps, json!({"task": "run"}), at(last_archive, DAY_MS)?).await?;
    let restored: u64 = run["tenants"]
        .as_array()
        .context("tenants")?
        .iter()
        .map(|t| t["counts"]["restored"].as_u64().unwrap_or(0))
        .sum();
    ensure!(restored >= 1, "restore not followed: {run:#}");
    stage("archived decision restored and read");

    // A legal hold on one subject, placed by raw id: a subject whose files are some, not all,
    // of its tenant's, so that tenant has held files and files that expire.
    let mut chosen = None;
    for r in records
        .iter()
        .filter(|r| r["kind"] == "decision" && r["subject"]["id"].is_string())
        .take(200)
    {
        let tenant = r["tenant_id"].as_str().context("tenant")?.to_string();
        let subject = r["subject"]["id"].as_str().context("subject")?.to_string();
        let subject_ref = j.deps.master.tenant_keys(&tenant).subject_ref(&subject);
        let subject_files: BTreeSet<String> = j
            .deps
            .index
            .query_subject(&tenant, &subject_ref, Timestamp::MIN, Timestamp::MAX)
            .await?
            .into_iter()
            .map(|p| p.file_key)
            .collect();
        let tenant_files = live.iter().filter(|e| e.tenant_id == tenant).count();
        if !subject_files.is_empty() && subject_files.len() < tenant_files {
            chosen = Some((tenant, subject, subject_files));
            break;
        }
    }
    let (held_tenant, held_subject, held_files) = chosen.with_context(|| {
        format!(
            "no subject is in some but not all of its tenant's files ({} live files)",
            live.len()
        )
    })?;
    call(
        &deps,
        json!({"task": "hold", "hold_id": "case-2026-17", "tenant_id": held_tenant,
               "reason": "pending litigation", "subject_id": held_subject}),
        last_archive,
    )
    .await?;
    let stored_policy = current_policy(&deps.evidence).await?.context("policy")?;
    ensure!(stored_policy.1.version == 2);
    ensure!(
        !serde_json::to_string(&stored_policy.1)?.contains(&held_subject),
        "the raw subject id reached the policy"
    );

    // Expiry. A first run dies after deleting a file's index entries, before the object: on a
    // tenant without the hold, whose every file is due (the held tenant may have one file).
    let dying_tenant = tenants
        .iter()
        .find(|t| **t != held_tenant)
        .context("a tenant without the hold")?
        .clone();
    let all_expired = live.iter().map(|e| due(e).1).max().context("files")?;
    let expiry_now = at(all_expired, DAY_MS)?;
    let dying = Retention::new(
        &deps.store,
        &deps.index,
        &deps.evidence,
        &deps.signer,
        &stored_policy.1,
        RetentionConfig::default(),
        "dies",
    );
    dying.crash_after(RetentionStep::Unindexed);
    let crashed = dying.run_tenant(&dying_tenant, expiry_now, false).await;
    ensure!(crashed.is_err(), "{crashed:?}");
    let mid = audit(dying_tenant.clone()).await?;
    ensure!(mid.ok, "mid-run: {:#?}", mid.faults);

    // The next run (after the dead run's lease) finishes it and does the rest.
    let run = call(&deps, json!({"task": "run"}), at(expiry_now, 16 * 60_000)?).await?;
    let held_count: u64 = run["tenants"]
        .as_array()
        .context("tenants")?
        .iter()
        .map(|t| t["counts"]["held"].as_u64().unwrap_or(0))
        .sum();
    ensure!(held_count as usize == held_files.len(), "held: {run:#}");
    for e in files(&j, &tenants, &date).await? {
        if held_files.contains(&e.file_key) {
            ensure!(
                matches!(e.state, FileState::Live | FileState::Archived),
                "held file {} is {:?}",
                e.file_key,
                e.state
            );
            ensure!(deps.store.head(&e.file_key).await?.is_some());
        } else if e.merged_from.is_empty() && e.compacted_into.is_some() {
            // A compaction input: its rows went with its output.
        } else {
            ensure!(
                e.state == FileState::Deleted,
                "{}: {:?}",
                e.file_key,
                e.state
            );
            ensure!(e.tombstone.is_some(), "{e:?}");
            ensure!(
                deps.store.head(&e.file_key).await?.is_none(),
                "{}",
                e.file_key
            );
        }
    }
    // Records of expired files are no longer indexed; the held subject's still are.
    let mut expired_ids = 0;
    for r in records.iter().take(300) {
        let (t, id) = (r["tenant_id"].as_str().unwrap_or_default(), record_id(r));
        if let Some(IndexEntry::Indexed(p)) = j.deps.index.get_pointer(t, &id).await? {
            ensure!(
                held_files.contains(&p.file_key),
                "{id} is still indexed at {}",
                p.file_key
            );
        } else {
            expired_ids += 1;
        }
    }
    ensure!(expired_ids > 0);
    for t in &tenants {
        let report = audit(t.clone()).await?;
        ensure!(report.ok, "{t}: {:#?}", report.faults);
        ensure!(!report.deleted_by_rule.is_empty(), "{t}: {report:?}");
        let deleted: u64 = report
            .deleted_by_rule
            .iter()
            .map(|s| s.to_seq - s.from_seq + 1)
            .sum();
        ensure!(
            deleted < report.blocks_total || *t != held_tenant,
            "{t}: {report:?}"
        );
    }
    stage("expired with tombstones, held files kept, tenants verify");

    // The hold is lifted: the next run lets its files go.
    call(
        &deps,
        json!({"task": "release", "hold_id": "case-2026-17"}),
        expiry_now,
    )
    .await?;
    let run = call(&deps, json!({"task": "run"}), at(expiry_now, DAY_MS)?).await?;
    let expired: u64 = run["tenants"]
        .as_array()
        .context("tenants")?
        .iter()
        .map(|t| t["counts"]["expire"].as_u64().unwrap_or(0))
        .sum();
    ensure!(expired as usize == held_files.len(), "{run:#}");
    for t in &tenants {
        let report = audit(t.clone()).await?;
        ensure!(report.ok, "{t}: {:#?}", report.faults);
        ensure!(report.records_checked == 0, "{t}: rows left: {report:?}");
        ensure!(
            report
                .deleted_by_rule
                .iter()
                .map(|s| s.to_seq - s.from_seq + 1)
                .sum::<u64>()
                == report.blocks_total,
            "{t}: {report:?}"
        );
    }
    let reports = deps
        .evidence
        .list_keys(journal_core::retention::run::REPORTS_PREFIX)
        .await?;
    // Every real run stored a signed report per tenant (the dry run none).
    ensure!(
        reports.len() >= 4 * tenants.len(),
        "{} reports",
        reports.len()
    );
    stage("hold lifted, everything expired, tenants verify");
    Ok(())
}
