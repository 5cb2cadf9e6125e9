use serde_json::{json, Value};

use super::*;
use crate::columnar::{self, WriterConfig};
use crate::ingest::{Ingest, IngestConfig, Message};
use crate::keys::MasterKey;
use crate::memory::{MemoryIndex, MemoryRejects, MemoryStore, MemorySubjectKeys};
use crate::ports::{JournalIndex, ObjectStore};
use crate::timestamp::Timestamp;

type MemIngest = Ingest<MemoryStore, MemoryIndex, MemorySubjectKeys, MemoryRejects>;

fn now() -> Timestamp {
    Timestamp::parse("2026-03-16T00:00:00Z").unwrap()
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn journal(row_group_rows: usize) -> MemIngest {
    let config = IngestConfig {
        writer: WriterConfig {
            max_row_group_size: row_group_rows,
            ..WriterConfig::default()
        },
        ..IngestConfig::default()
    };
    Ingest::new(
        MemoryStore::default(),
        MemoryIndex::default(),
        MemorySubjectKeys::default(),
        MemoryRejects::default(),
        MasterKey::from_bytes(vec![5u8; 32]).unwrap(),
        config,
    )
}

fn decision(i: u32, model_version: &str) -> Value {
    json!({"schema_version":1,"kind":"decision","decision_id":format!("d-{i:05}"),
      "tenant_id":"t1","occurred_at":format!("2026-03-15T10:{:02}:{:02}.000Z", i / 60 % 60, i % 60),
      "subject":{"id":format!("user_{}", i % 3)},
      "model":{"name":"credit-risk","version":model_version,"artifact_sha256":"9f2c".repeat(16)},
      "features":{"credit_score":600 + i,"dti_ratio":0.35},
      "outputs":[{"label":"approve","score":0.92},{"label":"deny","score":0.08}],
      "decision":"approve","confidence":0.92,"threshold":0.75,"risk_tier":"high"})
}

fn outcome(i: u32) -> Value {
    json!({"schema_version":1,"kind":"outcome","outcome_id":format!("o-{i:05}"),
      "decision_id":format!("d-{i:05}"),"tenant_id":"t1",
      "occurred_at":"2026-03-15T12:00:00.000Z","outcome":{"label":"repaid","value":1.0}})
}

async fn ingest(j: &MemIngest, bodies: &[Value]) {
    let messages: Vec<Message> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| Message {
            message_id: format!("m{i}"),
            body: b.to_string().into_bytes(),
        })
        .collect();
    let out = j.ingest_batch(&messages, now()).await;
    assert!(out.failed.is_empty(), "{out:?}");
}

fn found(l: Lookup) -> Found {
    match l {
        Lookup::Found(f) => f,
        other => panic!("expected a record, got {other:?}"),
    }
}

#[tokio::test]
async fn every_record_is_found_by_id_with_a_verified_proof_within_the_get_budget() {
    let j = journal(64);
    let bodies: Vec<Value> = (0..10).map(|i| decision(i, "3.2.0")).collect();
    ingest(&j, &bodies[..6]).await;
    ingest(&j, &bodies[6..]).await;
    let finder = Finder::new(&j.store, &j.index);
    for i in 0..10 {
        let mut reader = RowReader::new(&j.store);
        let id = format!("d-{i:05}");
        let f = found(finder.by_id(&mut reader, "t1", &id, now()).await.unwrap());
        assert_eq!(f.record.decision_id, id);
        assert!(f.proof.verified, "{:?}", f.proof.faults);
        assert!(f.proof.leaf_matches_row && f.proof.linked_in_chain);
        let block = f.proof.block.as_ref().unwrap();
        assert_eq!(block.merkle_root, f.proof.merkle_root);
        assert_eq!(f.proof.block_size, block.count);
        // A file smaller than the footer probe arrives whole in the one suffix GET.
        assert_eq!(reader.cost.ranged_gets, 1, "{:?}", reader.cost);
        assert_eq!(reader.cost.index_reads, 2);
        let size = j
            .store
            .get_object(&f.file_key)
            .await
            .unwrap()
            .unwrap()
            .len() as u64;
        assert_eq!(reader.cost.bytes_read, size);
    }
    let mut reader = RowReader::new(&j.store);
    assert!(matches!(
        finder
            .by_id(&mut reader, "t1", "nope", now())
            .await
            .unwrap(),
        Lookup::NotFound { .. }
    ));
}

#[tokio::test]
async fn a_record_is_found_in_any_row_group_of_a_block_spread_over_several() {
    // Row groups of 4 rows: a block of 10 spans three, and the proof still needs all leaves.
    let j = journal(4);
    let bodies: Vec<Value> = (0..10).map(|i| decision(i, "3.2.0")).collect();
    ingest(&j, &bodies).await;
    let finder = Finder::new(&j.store, &j.index);
    let mut reader = RowReader::new(&j.store);
    let f = found(
        finder
            .by_id(&mut reader, "t1", "d-00009", now())
            .await
            .unwrap(),
    );
    assert_eq!(f.row_group, 2);
    assert!(f.proof.verified, "{:?}", f.proof.faults);
    assert_eq!(f.proof.block_size, 10);
    assert_eq!(
        f.proof.audit_path.len(),
        2,
        "leaf 9 of 10: sibling 8, then the left 8"
    );
}

#[tokio::test]
async fn subject_model_and_linked_lookups_return_exactly_the_matching_records() {
    let j = journal(64);
    let mut bodies: Vec<Value> = (0..12)
        .map(|i| decision(i, if i % 2 == 0 { "3.2.0" } else { "3.3.0" }))
        .collect();
    bodies.push(outcome(4));
    ingest(&j, &bodies).await;
    let finder = Finder::new(&j.store, &j.index);
    let keys = MasterKey::from_bytes(vec![5u8; 32])
        .unwrap()
        .tenant_keys("t1");
    let range = (at("2026-03-15T00:00:00Z"), at("2026-03-16T00:00:00Z"));

    let mut reader = RowReader::new(&j.store);
    let subject = keys.subject_ref("user_1");
    let hits = finder
        .by_subject(&mut reader, "t1", &subject, range, 100)
        .await
        .unwrap();
    let ids: Vec<String> = hits
        .into_iter()
        .map(|l| found(l).record.decision_id)
        .collect();
    assert_eq!(ids, ["d-00001", "d-00004", "d-00007", "d-00010"]);
    // One small file: read once (one suffix GET) for all four.
    assert_eq!(reader.cost.ranged_gets, 1);

    let hits = finder
        .by_model(&mut reader, "t1", ("credit-risk", "3.3.0"), range, 100)
        .await
        .unwrap();
    let ids: Vec<String> = hits
        .into_iter()
        .map(|l| found(l).record.decision_id)
        .collect();
    assert_eq!(
        ids,
        ["d-00001", "d-00003", "d-00005", "d-00007", "d-00009", "d-00011"]
    );

    let linked = finder
        .linked(&mut reader, "t1", "d-00004", now())
        .await
        .unwrap();
    assert_eq!(linked.len(), 1);
    let o = found(linked.into_iter().next().unwrap());
    assert_eq!(o.record.outcome_id.as_deref(), Some("o-00004"));
    assert!(o.proof.verified);
}

/// Re-encodes the file holding `id` with `change` applied to the rows, as an attacker with
/// write access to the bucket would.
async fn tamper(j: &MemIngest, id: &str, change: impl FnOnce(&mut Vec<columnar::JournalRow>)) {
    let p = j
        .index
        .pointers()
        .into_iter()
        .find(|p| p.record_id == id)
        .unwrap();
    let bytes = j.store.get_object(&p.file_key).await.unwrap().unwrap();
    let mut rows = columnar::decode_file(bytes).unwrap();
    change(&mut rows);
    let cfg = WriterConfig {
        max_row_group_size: 64,
        ..WriterConfig::default()
    };
    let file = columnar::encode_file(&rows, &cfg, &[]).unwrap();
    j.store.put_object(&p.file_key, file.bytes).await.unwrap();
}

async fn faults_of(j: &MemIngest, id: &str) -> Vec<String> {
    let finder = Finder::new(&j.store, &j.index);
    let mut reader = RowReader::new(&j.store);
    let f = found(finder.by_id(&mut reader, "t1", id, now()).await.unwrap());
    assert_eq!(f.proof.verified, f.proof.faults.is_empty());
    f.proof.faults
}

#[tokio::test]
async fn tampering_with_a_row_or_its_leaf_is_named() {
    let j = journal(64);
    ingest(
        &j,
        &(0..5).map(|i| decision(i, "3.2.0")).collect::<Vec<_>>(),
    )
    .await;

    tamper(&j, "d-00002", |rows| {
        rows[2].record.decision = Some("deny".into())
    })
    .await;
    let faults = faults_of(&j, "d-00002").await;
    assert!(faults[0].starts_with("altered row"), "{faults:?}");
    // Its neighbours still prove (the stored leaves are untouched).
    assert_eq!(faults_of(&j, "d-00001").await, Vec::<String>::new());

    // Altering the row and its leaf together moves the root away from the chained one.
    tamper(&j, "d-00002", |rows| {
        let r = &mut rows[2];
        r.leaf_hash = crate::integrity::leaf_hash(&r.salt, &r.record.canonical_bytes().unwrap());
    })
    .await;
    let faults = faults_of(&j, "d-00002").await;
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(faults[0].starts_with("root mismatch"), "{faults:?}");
}

#[tokio::test]
async fn a_deleted_row_is_named_as_missing() {
    let j = journal(64);
    ingest(
        &j,
        &(0..5).map(|i| decision(i, "3.2.0")).collect::<Vec<_>>(),
    )
    .await;
    tamper(&j, "d-00000", |rows| {
        rows.remove(4);
    })
    .await;
    let faults = faults_of(&j, "d-00000").await;
    assert!(
        faults.iter().any(|f| f.starts_with("missing rows")),
        "{faults:?}"
    );
}

#[tokio::test]
async fn an_archived_file_answers_restore_requested_then_reads_once_restored() {
    let j = journal(64);
    ingest(&j, &[decision(1, "3.2.0")]).await;
    let p = j.index.pointers().pop().unwrap();
    j.store.archive(&p.file_key, "GLACIER");
    let finder = Finder::new(&j.store, &j.index);

    let mut reader = RowReader::new(&j.store);
    match finder
        .by_id(&mut reader, "t1", "d-00001", now())
        .await
        .unwrap()
    {
        Lookup::Archived(n) => {
            assert_eq!(
                (n.status.as_str(), n.storage_class.as_str()),
                ("restore requested", "GLACIER")
            );
            assert!(n.retry_after > now());
        }
        other => panic!("{other:?}"),
    }
    let mut reader = RowReader::new(&j.store);
    match finder
        .by_id(&mut reader, "t1", "d-00001", now())
        .await
        .unwrap()
    {
        Lookup::Archived(n) => assert_eq!(n.status, "restore in progress"),
        other => panic!("{other:?}"),
    }
    j.store.finish_restore(&p.file_key);
    let mut reader = RowReader::new(&j.store);
    let f = found(
        finder
            .by_id(&mut reader, "t1", "d-00001", now())
            .await
            .unwrap(),
    );
    assert!(f.proof.verified);
}

#[tokio::test]
async fn a_missing_block_header_is_named() {
    let j = journal(64);
    ingest(&j, &[decision(1, "3.2.0")]).await;
    let p = j.index.pointers().pop().unwrap();
    let header = j.index.list_blocks("t1").await.unwrap().pop().unwrap();
    assert_eq!(header.seq, p.seq);
    // A finder over an index without that block (as if its chain item were deleted).
    let empty = MemoryIndex::default();
    let mut reader = RowReader::new(&j.store);
    let f = Finder::new(&j.store, &empty)
        .at_pointer(&mut reader, &p, now())
        .await
        .unwrap();
    let f = found(f);
    assert_eq!(f.proof.faults.len(), 1, "{:?}", f.proof.faults);
    assert!(f.proof.faults[0].starts_with("missing block"));
}

#[tokio::test]
async fn a_lookup_in_a_large_file_reads_ranges_never_the_whole_file() {
    let j = journal(1_000);
    let bodies: Vec<Value> = (0..3_000).map(|i| decision(i, "3.2.0")).collect();
    ingest(&j, &bodies).await;
    let p = j
        .index
        .pointers()
        .into_iter()
        .find(|p| p.record_id == "d-00000")
        .unwrap();
    let size = j
        .store
        .get_object(&p.file_key)
        .await
        .unwrap()
        .unwrap()
        .len() as u64;
    assert!(
        size > 2 * lookup_probe(),
        "the test needs a file larger than the probe: {size}"
    );
    let finder = Finder::new(&j.store, &j.index);
    let mut reader = RowReader::new(&j.store);
    // Row group 0 lies before the tail, so: suffix GET, row group GET — and the block spans
    // three row groups, so its other leaves cost one GET each (ingest files hold one row group
    // in production, where blocks are smaller than a row group).
    let f = found(
        finder
            .by_id(&mut reader, "t1", "d-00000", now())
            .await
            .unwrap(),
    );
    assert!(f.proof.verified, "{:?}", f.proof.faults);
    assert_eq!(f.proof.block_size, 3_000);
    assert!(reader.cost.ranged_gets <= 4, "{:?}", reader.cost);
    assert!(
        reader.cost.bytes_read < size + lookup_probe(),
        "{:?}",
        reader.cost
    );
}

fn lookup_probe() -> u64 {
    crate::columnar::ranged::FOOTER_PROBE_BYTES
}

mod against_checkpoints {
    use super::*;
    use crate::checkpoint::{
        locator_key, write_checkpoint, BlockWitness, CheckpointWitness, MemorySigner, WitnessCache,
    };

    /// One lookup by id as one request (a fresh reader), with what it cost.
    async fn look<'a, W: BlockWitness>(
        finder: &Finder<'a, MemoryStore, MemoryIndex, W>,
        id: &str,
    ) -> (Found, ReadCost) {
        let mut reader = RowReader::new(finder.store);
        let f = found(finder.by_id(&mut reader, "t1", id, now()).await.unwrap());
        (f, reader.cost)
    }

    struct Signed {
        checkpoints: MemoryStore,
        signer: MemorySigner,
        cache: WitnessCache,
    }

    impl Signed {
        fn new() -> Self {
            Self {
                checkpoints: MemoryStore::default(),
                signer: MemorySigner::from_seed(b"lookup tests"),
                cache: WitnessCache::default(),
            }
        }

        async fn checkpoint(&self, j: &MemIngest) {
            write_checkpoint(&j.index, &self.checkpoints, &self.signer, "t1", now())
                .await
                .unwrap();
        }

        fn witness(&self) -> CheckpointWitness<'_, MemoryStore> {
            let der = self.signer.public_key_der();
            CheckpointWitness::new(&self.checkpoints, Some(der.as_slice()), &self.cache)
        }
    }

    #[tokio::test]
    async fn a_checkpointed_record_costs_one_index_read_and_rests_on_its_checkpoint() {
        let j = journal(64);
        let bodies: Vec<Value> = (0..6).map(|i| decision(i, "3.2.0")).collect();
        ingest(&j, &bodies[..3]).await;
        ingest(&j, &[outcome(0), outcome(1)]).await;
        ingest(&j, &bodies[3..]).await;
        let signed = Signed::new();
        signed.checkpoint(&j).await;
        let witness = signed.witness();
        let finder = Finder::new(&j.store, &j.index).with_witness(&witness);

        // First lookup: one index read (pointer and links), one GET of the small file, and
        // the checkpoint found by its locator (one list, one GET).
        let mut reader = RowReader::new(&j.store);
        let (f, linked) = finder
            .by_id_with_links(&mut reader, "t1", "d-00000", now())
            .await
            .unwrap();
        let f = found(f);
        assert!(f.proof.verified, "{:?}", f.proof.faults);
        let c = f.proof.checkpoint.as_ref().expect("rests on a checkpoint");
        assert_eq!((c.number, c.first_seq, c.seq), (0, 0, 2));
        assert!(c.signature_verified);
        assert_eq!(f.proof.chain_link_because, None);
        assert_eq!(linked.len(), 1);
        assert!(
            matches!(&linked[0], Lookup::Found(o) if o.record.record_id() == "o-00000"
            && o.proof.verified && o.proof.checkpoint.is_some())
        );
        // The outcome's block is read too (it is another file), with no more index reads.
        assert_eq!(reader.cost.index_reads, 1, "{:?}", reader.cost);
        assert_eq!(reader.cost.checkpoint_requests, 2, "{:?}", reader.cost);

        // Warm: the checkpoint is cached; every lookup is one index read.
        for i in 0..6 {
            let (f, cost) = look(&finder, &format!("d-{i:05}")).await;
            assert!(
                f.proof.verified && f.proof.linked_in_chain,
                "{:?}",
                f.proof.faults
            );
            assert_eq!((cost.index_reads, cost.checkpoint_requests), (1, 0));
            assert_eq!(cost.ranged_gets, 1);
        }
    }

    #[tokio::test]
    async fn the_newest_checkpoint_is_found_by_listing_only_locators_not_seen_before() {
        let j = journal(64);
        let signed = Signed::new();
        let witness = signed.witness();
        let mut requests = 0;
        assert_eq!(witness.newest("t1", &mut requests).await.unwrap(), None);
        ingest(&j, &[decision(0, "3.2.0")]).await;
        signed.checkpoint(&j).await;
        ingest(&j, &[decision(1, "3.2.0")]).await;
        signed.checkpoint(&j).await;
        // Cold: one listing of the locators, one GET of the newest checkpoint.
        let witness = CheckpointWitness::new(
            &signed.checkpoints,
            Some(signed.signer.public_key_der().as_slice()),
            &signed.cache,
        );
        let mut requests = 0;
        let newest = witness.newest("t1", &mut requests).await.unwrap().unwrap();
        assert_eq!((newest.number, newest.seq, requests), (1, 1, 2));
        // Warm: one list request that finds nothing new.
        let mut requests = 0;
        let again = witness.newest("t1", &mut requests).await.unwrap().unwrap();
        assert_eq!((again, requests), (newest, 1));
        // A new checkpoint: found after the known locator, read once.
        ingest(&j, &[decision(2, "3.2.0")]).await;
        signed.checkpoint(&j).await;
        let mut requests = 0;
        let newer = witness.newest("t1", &mut requests).await.unwrap().unwrap();
        assert_eq!(
            (newer.number, newer.first_seq, newer.seq, requests),
            (2, 2, 2, 3)
        );
    }

    #[tokio::test]
    async fn a_block_newer_than_the_newest_checkpoint_rests_on_the_chain_and_says_why() {
        let j = journal(64);
        ingest(&j, &[decision(0, "3.2.0")]).await;
        let signed = Signed::new();
        signed.checkpoint(&j).await;
        ingest(&j, &[decision(1, "3.2.0")]).await;
        let witness = signed.witness();
        let finder = Finder::new(&j.store, &j.index).with_witness(&witness);
        let (f, cost) = look(&finder, "d-00001").await;
        assert!(f.proof.verified, "{:?}", f.proof.faults);
        assert!(f.proof.linked_in_chain && f.proof.checkpoint.is_none());
        assert_eq!(
            f.proof.chain_link_because.as_deref(),
            Some("no checkpoint reaches this block yet")
        );
        assert_eq!(cost.index_reads, 2);

        // A checkpoint without its locator: the next checkpoint's locator is found instead,
        // which does not list the block, so the chain is read and the proof says why.
        signed.checkpoint(&j).await;
        ingest(&j, &[decision(2, "3.2.0")]).await;
        signed.checkpoint(&j).await;
        let remove = |key: &str| {
            let removed = signed.checkpoints.objects.lock().unwrap().remove(key);
            assert!(removed.is_some(), "{key}");
        };
        remove(&locator_key("t1", 1, 1));
        let cache = WitnessCache::default();
        let der = signed.signer.public_key_der();
        let cold = CheckpointWitness::new(&signed.checkpoints, Some(der.as_slice()), &cache);
        let finder = Finder::new(&j.store, &j.index).with_witness(&cold);
        let (f, _) = look(&finder, "d-00001").await;
        assert!(f.proof.verified, "{:?}", f.proof.faults);
        assert_eq!(f.proof.checkpoint, None);
        assert_eq!(
            f.proof.chain_link_because.as_deref(),
            Some(
                "checkpoint checkpoints/tenant=t1/000000000002.json cannot vouch: it lists \
                 blocks 2..=2, not block 1 (the checkpoint before it has no locator)"
            )
        );

        // The next run puts back the newest checkpoint's locator if it is the one missing.
        remove(&locator_key("t1", 2, 2));
        signed.checkpoint(&j).await;
        assert!(signed
            .checkpoints
            .objects
            .lock()
            .unwrap()
            .contains_key(&locator_key("t1", 2, 2)));
    }

    #[tokio::test]
    async fn an_index_copy_of_a_header_that_the_checkpoint_does_not_list_is_named() {
        let j = journal(64);
        ingest(&j, &[decision(0, "3.2.0"), decision(1, "3.2.0")]).await;
        let signed = Signed::new();
        signed.checkpoint(&j).await;
        // Rewrite the pointer's copy of the header (and nothing else).
        let Some(crate::ports::IndexEntry::Indexed(mut p)) =
            j.index.get_pointer("t1", "d-00001").await.unwrap()
        else {
            panic!("indexed")
        };
        p.block.sealed_at = at("2026-03-15T23:00:00Z");
        j.index.write_pointers(&[p]).await.unwrap();
        let witness = signed.witness();
        let finder = Finder::new(&j.store, &j.index).with_witness(&witness);
        let (f, _) = look(&finder, "d-00001").await;
        assert!(!f.proof.verified && !f.proof.linked_in_chain);
        assert_eq!(f.proof.faults.len(), 1, "{:?}", f.proof.faults);
        assert!(
            f.proof.faults[0].starts_with("altered block header: block 0 hashes to"),
            "{:?}",
            f.proof.faults
        );
        assert!(f.proof.faults[0].contains("checkpoint 0 lists"));

        // Without checkpoints the chain's own header shows the same.
        let finder = Finder::new(&j.store, &j.index);
        let (f, _) = look(&finder, "d-00001").await;
        assert!(
            f.proof.faults[0].contains("the index's copy of block 0"),
            "{:?}",
            f.proof.faults
        );
    }

    #[tokio::test]
    async fn a_checkpoint_with_a_bad_signature_or_altered_list_cannot_vouch() {
        let j = journal(64);
        ingest(&j, &[decision(0, "3.2.0")]).await;
        let signed = Signed::new();
        signed.checkpoint(&j).await;
        let key = crate::checkpoint::checkpoint_key("t1", 0);
        let stored = signed.checkpoints.objects.lock().unwrap()[&key].clone();
        let mut doc = crate::checkpoint::SignedCheckpoint::from_bytes(&stored).unwrap();
        doc.block_hashes[0] = "ab".repeat(32);
        signed
            .checkpoints
            .objects
            .lock()
            .unwrap()
            .insert(key.clone(), doc.to_bytes().into());
        let witness = signed.witness();
        let finder = Finder::new(&j.store, &j.index).with_witness(&witness);
        let (f, _) = look(&finder, "d-00000").await;
        // The chain still links the block: verified, but not on that checkpoint's word.
        assert!(f.proof.verified && f.proof.checkpoint.is_none());
        let because = f.proof.chain_link_because.unwrap();
        assert!(
            because.starts_with(&format!(
                "checkpoint {key} cannot vouch: altered block list"
            )),
            "{because}"
        );
    }
}
