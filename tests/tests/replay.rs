//! Replay lookups against the local endpoint: ranged S3 reads, DynamoDB pointers and chain
//! items, proofs, and the archived-object path — on data that went through SQS → ingest.

use anyhow::{Context, Result};
use aws_sdk_s3::types::StorageClass;
use integration_tests::TestJournal;
use journal_core::ports::{JournalIndex, RangedObjectStore};
use journal_core::replay::{Finder, Lookup, RowReader};
use journal_core::timestamp::Timestamp;
use journal_synth::{generate, producer_body, record_id, SynthConfig};

fn recent(seed: u64) -> SynthConfig {
    let mut cfg = SynthConfig::new(seed);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - 2 * 3600 * 1000).unwrap();
    cfg.mean_gap_ms = 20;
    cfg.subjects_per_tenant = 40;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lookups_read_ranges_and_prove_every_record_and_archived_files_ask_for_a_restore(
) -> Result<()> {
    let j = TestJournal::new("replay-lookups", 900).await?;
    let records = generate(recent(11), 400);
    let bodies: Vec<Vec<u8>> = records.iter().map(producer_body).collect();
    j.send_and_drain(&bodies, 200).await?;
    let store = &j.deps.store;
    let index = &j.deps.index;
    let finder = Finder::new(store, index);
    let now = Timestamp::now();

    let mut most_gets = 0;
    for r in &records {
        let tenant = r["tenant_id"].as_str().context("tenant")?;
        let id = record_id(r);
        let mut reader = RowReader::new(store);
        match finder.by_id(&mut reader, tenant, &id, now).await? {
            Lookup::Found(f) => {
                assert_eq!(f.record.record_id(), id);
                assert!(f.proof.verified, "{id}: {:?}", f.proof.faults);
            }
            other => panic!("{id}: {other:?}"),
        }
        most_gets = most_gets.max(reader.cost.ranged_gets);
        // No checkpoints here: the pointer, then the chain items for the link.
        assert_eq!(reader.cost.index_reads, 2, "pointer + chain items");
    }
    assert!(
        (1..=3).contains(&most_gets),
        "ranged GETs per lookup: {most_gets}"
    );

    // By subject, over the S3 adapter: the subject's decisions and nothing else.
    let first = records
        .iter()
        .find(|r| r["kind"] == "decision" && r["subject"]["id"].is_string())
        .context("a decision with a subject")?;
    let tenant = first["tenant_id"].as_str().unwrap_or_default();
    let subject = first["subject"]["id"].as_str().unwrap_or_default();
    let subject_ref = j.deps.master.tenant_keys(tenant).subject_ref(subject);
    let mut expected: Vec<String> = records
        .iter()
        .filter(|r| r["tenant_id"] == tenant && r["subject"]["id"] == subject)
        .map(record_id)
        .collect();
    expected.sort();
    let range = (
        Timestamp::from_millis(now.millis() - 24 * 3600 * 1000).unwrap(),
        Timestamp::from_millis(now.millis() + 1).unwrap(),
    );
    let mut reader = RowReader::new(store);
    let mut got: Vec<String> = finder
        .by_subject(&mut reader, tenant, &subject_ref, range, 10_000)
        .await?
        .into_iter()
        .map(|l| match l {
            Lookup::Found(f) => f.record.record_id().to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(got, expected);

    // Archive the first decision's file the way a lifecycle rule would (copy in place to
    // GLACIER): the lookup asks for a restore and says when to come back.
    let p = match index.get_pointer(tenant, &record_id(first)).await? {
        Some(journal_core::ports::IndexEntry::Indexed(p)) => p,
        other => panic!("{other:?}"),
    };
    let s3 = &j.clients.s3;
    let bucket = store.bucket();
    s3.copy_object()
        .bucket(bucket)
        .key(&p.file_key)
        .copy_source(format!("{bucket}/{}", p.file_key))
        .storage_class(StorageClass::Glacier)
        .send()
        .await?;
    let mut reader = RowReader::new(store);
    match finder
        .by_id(&mut reader, tenant, &record_id(first), now)
        .await?
    {
        Lookup::Archived(n) => {
            assert_eq!(n.storage_class, "GLACIER");
            assert!(n.retry_after > now, "{n:?}");
        }
        other => panic!("expected archived, got {other:?}"),
    }
    let status = store
        .object_status(&p.file_key)
        .await?
        .context("archived file still exists")?;
    assert_ne!(
        status.archive,
        journal_core::ports::ArchiveState::Archived,
        "a restore was requested: {status:?}"
    );
    Ok(())
}
