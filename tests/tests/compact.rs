//! Compaction against the local endpoint: blocks ingested through SQS → ingest, merged by the
//! core's `Compactor` over the real S3 and DynamoDB adapters, with a crash injected after each
//! step and finished by the next run; every record stays findable and the chain verifies.

use anyhow::{ensure, Context, Result};
use integration_tests::harness::{keep_to_one_hour, ONE_HOUR};
use integration_tests::TestJournal;
use journal_core::columnar::{self, WriterConfig};
use journal_core::compact::{CompactStep, CompactionConfig, Compactor, CompactorConfig};
use journal_core::integrity::verify_stored_chain;
use journal_core::ports::{FileState, JournalIndex, ObjectStore};
use journal_core::replay::{Finder, Lookup, RowReader};
use journal_core::timestamp::Timestamp;
use journal_synth::{generate, producer_body, record_id, SynthConfig};
use serde_json::Value;

const HOUR_MS: i64 = 3_600_000;

fn config() -> CompactorConfig {
    CompactorConfig {
        plan: CompactionConfig {
            target_bytes: 64 * 1024 * 1024,
            settle_ms: 0,
            whole_hours: false,
        },
        writer: WriterConfig {
            max_row_group_size: 100,
            zstd_level: 6,
            ..WriterConfig::default()
        },
        grace_ms: HOUR_MS,
        lease_ms: 60_000,
        verify_every: 1,
        stop_at: None,
    }
}

fn at(now: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_millis(now.millis() + ms).expect("in range")
}

/// Every record is found by id with a verified proof, and each tenant's stored chain verifies
/// with every row read.
async fn all_findable(j: &TestJournal, records: &[Value], tenants: &[String]) -> Result<()> {
    let (store, index) = (&j.deps.store, &j.deps.index);
    let finder = Finder::new(store, index);
    for r in records {
        let tenant = r["tenant_id"].as_str().context("tenant")?;
        let id = record_id(r);
        let mut reader = RowReader::new(store);
        match finder
            .by_id(&mut reader, tenant, &id, Timestamp::now())
            .await?
        {
            Lookup::Found(f) => ensure!(f.proof.verified, "{id}: {:?}", f.proof.faults),
            other => anyhow::bail!("{id}: {other:?}"),
        }
    }
    let mut rows = 0;
    for t in tenants {
        let report = verify_stored_chain(index, store, t).await?;
        ensure!(report.ok(), "{t}: {:?}", report.faults);
        rows += report.rows_checked;
    }
    ensure!(rows == records.len() as u64, "{rows} rows verified");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_survives_a_crash_at_each_step_with_every_record_findable() -> Result<()> {
    let j = TestJournal::new("compact", 900).await?;
    let mut cfg = SynthConfig::new(31);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - 2 * HOUR_MS)?;
    cfg.mean_gap_ms = 200;
    let records = generate(cfg, 800);
    let bodies: Vec<Vec<u8>> = records.iter().map(producer_body).collect();
    // Small waves: many small blocks per tenant, all in one partition hour (each tenant's
    // crashed run and its resumption below are about that one partition).
    keep_to_one_hour(ONE_HOUR).await;
    j.send_and_drain(&bodies, 50).await?;
    let mut tenants: Vec<String> = records
        .iter()
        .filter_map(|r| r["tenant_id"].as_str().map(str::to_string))
        .collect();
    tenants.sort();
    tenants.dedup();
    let now = Timestamp::now();
    let date = now.date_string();
    all_findable(&j, &records, &tenants).await?;

    let (store, index) = (&j.deps.store, &j.deps.index);
    for (t, tenant) in tenants.iter().enumerate() {
        let before = index.list_manifest(tenant, &date).await?;
        let files = before.iter().filter(|e| e.state == FileState::Live).count();
        ensure!(files >= 3, "{tenant}: {files} files");
        // A crash after a different step for each tenant, then the next run finishes it.
        let step = CompactStep::ALL[t % CompactStep::ALL.len()];
        let dies = Compactor::new(store, index, &j.deps.master, config(), "dies");
        dies.crash_after(step);
        let err = dies.run(tenant, &date, now).await.unwrap_err();
        ensure!(err.to_string().contains(step.as_str()), "{err}");
        all_findable(&j, &records, &tenants).await?;

        let next = Compactor::new(store, index, &j.deps.master, config(), "next");
        let busy = next.run(tenant, &date, at(now, 1_000)).await?;
        ensure!(busy.busy.len() == 1 && busy.written.is_empty(), "{busy:?}");
        let report = next.run(tenant, &date, at(now, 120_000)).await?;
        ensure!(report.resumed.len() == 1, "{tenant} {step:?}: {report:?}");
        all_findable(&j, &records, &tenants).await?;

        // The merged files hold exactly their inputs' rows, in chain order. (One output per
        // partition hour: a run that straddles an hour may make two.)
        let mut outputs = report.written.clone();
        outputs.sort_by(|a, b| a.file_key.cmp(&b.file_key));
        let mut merged = Vec::new();
        for out in &outputs {
            merged.extend(columnar::decode_file(
                store
                    .get_object(&out.file_key)
                    .await?
                    .context("merged file")?,
            )?);
        }
        let after = index.list_manifest(tenant, &date).await?;
        let mut compacted: Vec<_> = after
            .iter()
            .filter(|e| e.state == FileState::Compacted)
            .collect();
        compacted.sort_by_key(|e| e.seq);
        let merged_inputs = compacted.len();
        ensure!(
            merged_inputs == outputs.iter().map(|o| o.inputs).sum::<usize>()
                && merged_inputs + 1 >= files,
            "{merged_inputs} of {files} files merged: {report:?}"
        );
        let mut inputs = Vec::new();
        for e in &compacted {
            inputs.extend(columnar::decode_file(
                store.get_object(&e.file_key).await?.context("input")?,
            )?);
        }
        ensure!(
            merged == inputs,
            "{tenant}: merged rows differ from the inputs'"
        );

        // After the grace period the inputs are deleted, and everything still holds.
        let report = next.run(tenant, &date, at(now, 2 * HOUR_MS)).await?;
        ensure!(report.deleted.len() == merged_inputs, "{report:?}");
        for key in &report.deleted {
            ensure!(store.get_object(key).await?.is_none(), "{key} still there");
        }
        all_findable(&j, &records, &tenants).await?;
    }
    Ok(())
}
