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
