//! The producer client against the local endpoint's SQS: generated decisions, outcomes and
//! reviews are recorded (low-risk decisions sampled at a half), flushed, ingested by the event
//! source stand-in, and every kept record is found in the journal with its sampling rate; the
//! sampled-out ones are not. A queue that does not exist keeps the records spilled and
//! reported, and refuses new ones once the spill is full, handing them back.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::TestJournal;
use journal_core::ports::{IndexEntry, JournalIndex};
use journal_core::timestamp::Timestamp;
use journal_producer::{Backoff, Producer, ProducerConfig, RecordError, Recorded, Sampling};
use journal_synth::{generate_with_followups, record_id, SynthConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_decisions_reach_the_journal_and_sampled_out_ones_do_not() -> Result<()> {
    let j = TestJournal::new("producer", 900).await?;
    let mut cfg = SynthConfig::new(29);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - 3_600_000)?;
    cfg.mean_gap_ms = 20;
    let records = generate_with_followups(cfg, 1_500);

    let producer = Producer::start(
        j.clients.sqs.clone(),
        ProducerConfig {
            sampling: Sampling::default().with_rate("low", 0.5),
            ..ProducerConfig::new(j.queue_url.clone())
        },
    );
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for r in &records {
        match producer.record(r.clone()) {
            Ok(Recorded::Queued) => kept.push(r),
            Ok(Recorded::SampledOut) => dropped.push(r),
            Err(e) => anyhow::bail!("{} refused: {e}", record_id(r)),
        }
    }
    let report = producer.shutdown().await;
    ensure!(report.all_sent(), "{report:?}");
    ensure!(report.stats.sent_records == kept.len() as u64);
    ensure!(!dropped.is_empty() && dropped.iter().all(|r| r["risk_tier"] != "high"));
    ensure!(
        report.stats.calls * 50 <= kept.len() as u64,
        "more than one call per 50 records: {report:?}"
    );
    let stats = j.drain().await?;
    ensure!(stats.failed == 0, "{stats:?}");
    ensure!(j.dead_letters().await?.is_empty(), "dead-lettered records");

    for r in &kept {
        let (t, id) = (r["tenant_id"].as_str().context("tenant")?, record_id(r));
        let found = j.deps.index.get_pointer(t, &id).await?;
        ensure!(
            matches!(found, Some(IndexEntry::Indexed(_))),
            "{id} was recorded but is not in the journal"
        );
    }
    for r in &dropped {
        let (t, id) = (r["tenant_id"].as_str().context("tenant")?, record_id(r));
        ensure!(
            j.deps.index.get_pointer(t, &id).await?.is_none(),
            "{id} was sampled out but is in the journal"
        );
    }
    // The rate is stored with each decision, for analytics to reweight: the producer's 0.5
    // times any rate the record was already sampled at upstream (the generator's moderation
    // decisions carry 0.2).
    let low = kept
        .iter()
        .find(|r| r["kind"] == "decision" && r["risk_tier"] == "low")
        .context("a kept low-risk decision")?;
    let (t, id) = (low["tenant_id"].as_str().context("tenant")?, record_id(low));
    let Some(IndexEntry::Indexed(p)) = j.deps.index.get_pointer(t, &id).await? else {
        anyhow::bail!("{id} not indexed");
    };
    let row = j
        .read_file(&p.file_key)
        .await?
        .into_iter()
        .find(|row| row.record.record_id() == id)
        .context("the row")?;
    let expected = low["sampling_rate"].as_f64().unwrap_or(1.0) * 0.5;
    ensure!(
        row.record.sampling_rate == Some(expected),
        "{id}: stored {:?}, expected {expected}",
        row.record.sampling_rate
    );

    // A queue that does not exist: the records are kept locally and reported, then refused.
    let missing = format!("{}-missing", j.queue_url);
    let producer = Producer::start(
        j.clients.sqs.clone(),
        ProducerConfig {
            spill_capacity_bytes: 30 * 1024,
            backoff: Backoff {
                max_attempts: 2,
                base: Duration::from_millis(10),
                cap: Duration::from_millis(20),
            },
            ..ProducerConfig::new(missing)
        },
    );
    for r in records.iter().take(100) {
        producer.record(r.clone())?;
    }
    let report = producer.flush().await;
    ensure!(report.stats.spilled_records == 100, "{report:?}");
    match producer.record(records[100].clone()) {
        Err(e @ RecordError::Unreachable { .. }) => {
            ensure!(record_id(&e.into_record()) == record_id(&records[100]));
        }
        other => anyhow::bail!("expected a refusal, got {other:?}"),
    }
    Ok(())
}
