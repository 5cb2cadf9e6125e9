//! Planning and merging over the in-memory ports, on blocks written by the real ingest.

use serde_json::{json, Value};

use super::*;
use crate::columnar::{self, WriterConfig};
use crate::ingest::{Ingest, IngestConfig, Message};
use crate::integrity::Fault;
use crate::keys::MasterKey;
use crate::memory::{MemoryIndex, MemoryRejects, MemoryStore, MemorySubjectKeys};
use crate::ports::{JournalIndex, ManifestEntry, ObjectStore};
use crate::timestamp::Timestamp;

type MemIngest = Ingest<MemoryStore, MemoryIndex, MemorySubjectKeys, MemoryRejects>;

fn now() -> Timestamp {
    Timestamp::parse("2026-03-15T12:00:00Z").unwrap()
}

fn decision(i: u32) -> Value {
    json!({"schema_version":1,"kind":"decision","decision_id":format!("d-{i:05}"),
      "tenant_id":"t1","occurred_at":format!("2026-03-15T10:{:02}:{:02}.000Z", i / 60 % 60, i % 60),
      "subject":{"id":format!("user_{}", i % 7)},
      "model":{"name":"credit-risk","version":"3.2.0","artifact_sha256":"9f2c".repeat(16)},
      "features":{"credit_score":600 + i},
      "outputs":[{"label":"approve","score":0.92},{"label":"deny","score":0.08}],
      "decision":"approve","confidence":0.92,"threshold":0.75,"risk_tier":"high"})
}

/// `blocks` ingest calls of `per_block` decisions each: one block and one file each.
async fn journal(blocks: u32, per_block: u32) -> MemIngest {
    let j = Ingest::new(
        MemoryStore::default(),
        MemoryIndex::default(),
        MemorySubjectKeys::default(),
        MemoryRejects::default(),
        MasterKey::from_bytes(vec![9u8; 32]).unwrap(),
        IngestConfig::default(),
    );
    for b in 0..blocks {
        let messages: Vec<Message> = (0..per_block)
            .map(|i| Message {
                message_id: format!("m{b}-{i}"),
                body: decision(b * per_block + i).to_string().into_bytes(),
            })
            .collect();
        let out = j.ingest_batch(&messages, now()).await;
        assert!(out.failed.is_empty() && out.blocks.len() == 1, "{out:?}");
    }
    j
}

async fn manifest(j: &MemIngest) -> Vec<ManifestEntry> {
    j.index.list_manifest("t1", "2026-03-15").await.unwrap()
}

fn settled() -> CompactionConfig {
    CompactionConfig {
        target_bytes: DEFAULT_TARGET_BYTES,
        settle_ms: 0,
        whole_hours: false,
    }
}

#[tokio::test]
async fn a_merged_file_holds_every_row_in_chain_order_and_proves_every_block() {
    let j = journal(6, 25).await;
    let plan = plan(&manifest(&j).await, now(), &settled());
    assert_eq!(plan.outputs.len(), 1, "{plan:#?}");
    let out = &plan.outputs[0];
    assert_eq!((out.inputs.len(), out.rows), (6, 150));
    let cfg = WriterConfig {
        max_row_group_size: 40,
        zstd_level: 3,
        ..WriterConfig::default()
    };
    let written = merge(&j.store, &j.index, out, &cfg).await.unwrap();
    let merged = verify_output(written.file_key, written.bytes, written.blocks, 1).unwrap();
    assert_eq!(
        merged.file_key,
        "decisions/tenant=t1/date=2026-03-15/hour=12/compacted-000000000000-000000000005.parquet"
    );
    assert_eq!((merged.rows, merged.row_groups), (150, 4));
    assert_eq!(
        merged.blocks.iter().map(|h| h.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    // Chain order: blocks by seq, each block's rows by leaf index.
    let rows = columnar::decode_file(merged.bytes.clone()).unwrap();
    let order: Vec<(String, u32)> = rows
        .iter()
        .map(|r| (r.block_id.clone(), r.leaf_index))
        .collect();
    let mut expected = Vec::new();
    for h in &merged.blocks {
        expected.extend((0..h.count as u32).map(|i| (h.block_id.clone(), i)));
    }
    assert_eq!(order, expected);
    // Row for row what the inputs held (leaf hashes, salts and records unchanged).
    let mut inputs = Vec::new();
    for e in &out.inputs {
        let bytes = j.store.get_object(&e.file_key).await.unwrap().unwrap();
        inputs.extend(columnar::decode_file(bytes).unwrap());
    }
    assert_eq!(rows, inputs);
    assert_eq!(merged.placed.len(), 150);
    assert_eq!(merged.placed[40].2.row_group, 1);
    assert_eq!(merged.placed[40].0, rows[40].record.record_id());
}

#[tokio::test]
async fn an_output_that_does_not_prove_its_blocks_is_refused() {
    let j = journal(3, 10).await;
    let plan = plan(&manifest(&j).await, now(), &settled());
    let merged = merge(
        &j.store,
        &j.index,
        &plan.outputs[0],
        &WriterConfig::default(),
    )
    .await
    .unwrap();
    // The same rows with one dropped and one altered, written as if merged.
    let mut rows = columnar::decode_file(merged.bytes.clone()).unwrap();
    rows.remove(3);
    rows[12].record.decision = Some("deny".into());
    let bytes = columnar::encode_file(&rows, &WriterConfig::default(), &[])
        .unwrap()
        .bytes;
    let err = verify_output(merged.file_key.clone(), bytes, merged.blocks.clone(), 1).unwrap_err();
    let MergeError::Unverified { faults, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        faults
            .iter()
            .any(|f| matches!(f, Fault::MissingRow { seq: 0, .. })),
        "{faults:?}"
    );
    assert!(
        faults
            .iter()
            .any(|f| matches!(f, Fault::AlteredRow { seq: 1, .. })),
        "{faults:?}"
    );
    assert!(
        err.to_string().starts_with("output decisions/tenant=t1/"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_input_or_a_block_outside_the_chain_stops_the_merge() {
    let j = journal(2, 5).await;
    let plan = plan(&manifest(&j).await, now(), &settled());
    let mut out = plan.outputs[0].clone();
    out.inputs[1].file_key = "decisions/tenant=t1/date=2026-03-15/hour=12/gone.parquet".into();
    let err = merge(&j.store, &j.index, &out, &WriterConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MergeError::MissingInput { file_key } if file_key.ends_with("gone.parquet")),
        "{err}"
    );

    // A file whose rows name a block the chain does not have.
    let mut rows = columnar::decode_file(
        j.store
            .get_object(&plan.outputs[0].inputs[0].file_key)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    for r in &mut rows {
        r.block_id = "NOT-CHAINED".into();
    }
    let stray = "decisions/tenant=t1/date=2026-03-15/hour=12/stray.parquet";
    j.store
        .put_object(
            stray,
            columnar::encode_file(&rows, &WriterConfig::default(), &[])
                .unwrap()
                .bytes,
        )
        .await
        .unwrap();
    let mut out = plan.outputs[0].clone();
    out.inputs[0].file_key = stray.into();
    let err = merge(&j.store, &j.index, &out, &WriterConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MergeError::UnchainedBlock { block_id, .. } if block_id == "NOT-CHAINED"),
        "{err}"
    );
}

mod runs {
    use super::*;
    use crate::integrity::verify_stored_chain;
    use crate::ports::FileState;
    use crate::replay::{Finder, Lookup, RowReader};

    const HOUR_MS: i64 = 3_600_000;

    fn later(ms: i64) -> Timestamp {
        Timestamp::from_millis(now().millis() + ms).unwrap()
    }

    fn config() -> CompactorConfig {
        CompactorConfig {
            plan: settled(),
            writer: WriterConfig {
                max_row_group_size: 32,
                ..WriterConfig::default()
            },
            grace_ms: HOUR_MS,
            lease_ms: 60_000,
            verify_every: 1,
            stop_at: None,
        }
    }

    /// Every decision is found by id with a verified proof, in a file that exists, exactly
    /// once among the files the manifest calls live; the stored chain verifies.
    async fn all_findable(j: &MemIngest, ids: &[String]) {
        all_findable_or_pending(j, ids).await;
        let mut live_rows = 0;
        for e in manifest(j).await {
            if e.state == FileState::Live {
                let bytes = j.store.get_object(&e.file_key).await.unwrap().unwrap();
                live_rows += columnar::decode_file(bytes).unwrap().len();
            }
        }
        assert_eq!(live_rows, ids.len(), "rows in live files");
    }

    fn ids(n: u32) -> Vec<String> {
        (0..n).map(|i| format!("d-{i:05}")).collect()
    }

    #[tokio::test]
    async fn a_run_merges_switches_and_later_deletes_with_every_record_findable_throughout() {
        let j = journal(6, 25).await;
        let ids = ids(150);
        let c = Compactor::new(&j.store, &j.index, &j.master, config(), "run-1");
        let report = c.run("t1", "2026-03-15", now()).await.unwrap();
        assert_eq!(report.written.len(), 1, "{report:#?}");
        let out = &report.written[0];
        assert_eq!((out.inputs, out.rows), (6, 150));
        all_findable(&j, &ids).await;
        let entries = manifest(&j).await;
        let merged = entries.iter().find(|e| e.file_key == out.file_key).unwrap();
        assert_eq!(
            (merged.state, merged.merged_from.len()),
            (FileState::Live, 6)
        );
        assert_eq!((merged.seq, merged.last_seq), (Some(0), Some(5)));
        let inputs: Vec<&ManifestEntry> = entries.iter().filter(|e| !e.is_merged()).collect();
        assert!(inputs.iter().all(|e| e.state == FileState::Compacted
            && e.compacted_into.as_deref() == Some(out.file_key.as_str())));

        // Within the grace period nothing is deleted and nothing more is merged.
        let report = c.run("t1", "2026-03-15", later(HOUR_MS / 2)).await.unwrap();
        assert!(
            report.written.is_empty() && report.deleted.is_empty(),
            "{report:#?}"
        );
        // After it, the inputs go; the records are still found and the chain verifies.
        let report = c.run("t1", "2026-03-15", later(HOUR_MS)).await.unwrap();
        assert_eq!(report.deleted.len(), 6, "{report:#?}");
        for key in &report.deleted {
            assert!(j.store.get_object(key).await.unwrap().is_none());
        }
        all_findable(&j, &ids).await;
        assert!(manifest(&j)
            .await
            .iter()
            .filter(|e| !e.is_merged())
            .all(|e| e.state == FileState::Deleted));
    }

    #[tokio::test]
    async fn a_crash_after_each_step_is_finished_by_the_next_run_with_nothing_lost_or_doubled() {
        for step in CompactStep::ALL {
            let j = journal(5, 20).await;
            let ids = ids(100);
            let first = Compactor::new(&j.store, &j.index, &j.master, config(), "dies");
            first.crash_after(step);
            let err = first.run("t1", "2026-03-15", now()).await.unwrap_err();
            assert!(err.to_string().contains(step.as_str()), "{step:?}: {err}");
            // Readers are served throughout (the inputs are still there).
            all_findable_or_pending(&j, &ids).await;

            // Another run while the dead run's lease lasts backs off.
            let second = Compactor::new(&j.store, &j.index, &j.master, config(), "next");
            let report = second.run("t1", "2026-03-15", later(1_000)).await.unwrap();
            assert_eq!(report.busy.len(), 1, "{step:?}: {report:#?}");
            assert!(report.written.is_empty());

            // Once it has expired, the next run finishes the interrupted merge.
            let report = second
                .run("t1", "2026-03-15", later(120_000))
                .await
                .unwrap();
            assert_eq!(report.resumed.len(), 1, "{step:?}: {report:#?}");
            assert_eq!(report.written.len(), 1, "{step:?}: {report:#?}");
            all_findable(&j, &ids).await;
            let report = second
                .run("t1", "2026-03-15", later(2 * HOUR_MS))
                .await
                .unwrap();
            assert_eq!(report.deleted.len(), 5, "{step:?}: {report:#?}");
            all_findable(&j, &ids).await;
        }
    }

    /// As [`all_findable`], but during a crashed merge: the output may exist beside its
    /// still-live inputs, so only the inputs are counted.
    async fn all_findable_or_pending(j: &MemIngest, ids: &[String]) {
        let finder = Finder::new(&j.store, &j.index);
        for id in ids {
            let mut reader = RowReader::new(&j.store);
            match finder.by_id(&mut reader, "t1", id, now()).await.unwrap() {
                Lookup::Found(f) => assert!(f.proof.verified, "{id}: {:?}", f.proof.faults),
                other => panic!("{id}: {other:?}"),
            }
        }
        let report = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
        assert!(report.ok(), "{:?}", report.faults);
        assert_eq!(report.rows_checked, ids.len() as u64);
    }

    #[tokio::test]
    async fn a_run_that_finds_the_partition_leased_leaves_it_alone() {
        let j = journal(3, 10).await;
        assert!(j
            .index
            .acquire_lease("compact#t1#2026-03-15#12", "other", now(), later(60_000))
            .await
            .unwrap());
        let c = Compactor::new(&j.store, &j.index, &j.master, config(), "run-1");
        let report = c.run("t1", "2026-03-15", now()).await.unwrap();
        assert_eq!(report.busy.len(), 1);
        assert!(report.written.is_empty());
        assert!(manifest(&j)
            .await
            .iter()
            .all(|e| e.state == FileState::Live && !e.is_merged()));
    }

    #[tokio::test]
    async fn a_run_out_of_time_defers_its_outputs_to_the_next_run() {
        let j = journal(4, 10).await;
        let mut cfg = config();
        cfg.stop_at = Some(std::time::Instant::now());
        let c = Compactor::new(&j.store, &j.index, &j.master, cfg, "late");
        let report = c.run("t1", "2026-03-15", now()).await.unwrap();
        assert_eq!((report.deferred.len(), report.written.len()), (1, 0));
        assert!(manifest(&j).await.iter().all(|e| !e.is_merged()));
        let c = Compactor::new(&j.store, &j.index, &j.master, config(), "next");
        let report = c.run("t1", "2026-03-15", now()).await.unwrap();
        assert_eq!((report.deferred.len(), report.written.len()), (0, 1));
    }

    #[tokio::test]
    async fn a_plan_another_run_carried_out_meanwhile_is_not_carried_out_again() {
        let j = journal(4, 10).await;
        let stale = plan(&manifest(&j).await, now(), &settled());
        assert_eq!(stale.outputs.len(), 1);
        let first = Compactor::new(&j.store, &j.index, &j.master, config(), "first");
        let done = first.run("t1", "2026-03-15", now()).await.unwrap();
        assert_eq!(done.written.len(), 1);
        let before = manifest(&j).await;

        // A second run that listed the manifest before the first one's switch.
        let second = Compactor::new(&j.store, &j.index, &j.master, config(), "second");
        let mut report = RunReport::default();
        let out = second
            .output(&stale.outputs[0], later(1_000), &mut report)
            .await
            .unwrap();
        assert!(out.is_none() && report.busy.len() == 1, "{report:#?}");
        assert_eq!(manifest(&j).await, before, "the manifest changed");
        // Nor does it keep the lease.
        assert!(j
            .index
            .acquire_lease(
                "compact#t1#2026-03-15#12",
                "third",
                later(2_000),
                later(60_000)
            )
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_pointer_that_names_another_file_is_rebuilt_from_its_row() {
        let j = journal(3, 10).await;
        let Some(crate::ports::IndexEntry::Indexed(original)) =
            j.index.get_pointer("t1", "d-00012").await.unwrap()
        else {
            panic!("d-00012 is not indexed")
        };
        let mut stray = original.clone();
        stray.file_key = "decisions/tenant=t1/elsewhere.parquet".into();
        stray.content_mac = "00".repeat(32);
        j.index.write_pointers(&[stray]).await.unwrap();

        let c = Compactor::new(&j.store, &j.index, &j.master, config(), "run-1");
        let report = c.run("t1", "2026-03-15", now()).await.unwrap();
        assert_eq!(report.written.len(), 1);
        all_findable(&j, &ids(30)).await;
        let Some(crate::ports::IndexEntry::Indexed(rebuilt)) =
            j.index.get_pointer("t1", "d-00012").await.unwrap()
        else {
            panic!("d-00012 is not indexed")
        };
        assert_eq!(rebuilt.file_key, report.written[0].file_key);
        // Rebuilt as ingest built it: the content MAC recomputed, not copied.
        assert_eq!(rebuilt.content_mac, original.content_mac);
        assert_eq!((rebuilt.row_group, rebuilt.row), (0, 12));
    }
}
