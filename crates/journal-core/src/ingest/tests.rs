use std::collections::HashSet;

use serde_json::{json, Value};

use super::*;
use crate::features_crypto;
use crate::integrity::verify_stored_chain;
use crate::memory::{MemoryIndex, MemoryRejects, MemoryStore, MemorySubjectKeys};
use crate::ports::IndexEntry;

type MemIngest = Ingest<MemoryStore, MemoryIndex, MemorySubjectKeys, MemoryRejects>;

fn now() -> Timestamp {
    Timestamp::parse("2026-03-16T00:00:00Z").unwrap()
}

fn later(ms: i64) -> Timestamp {
    Timestamp::from_millis(now().millis() + ms).unwrap()
}

fn service() -> MemIngest {
    let master = MasterKey::from_bytes(vec![42u8; 32]).unwrap();
    let config = IngestConfig {
        writer: WriterConfig {
            max_row_group_size: 4,
            ..WriterConfig::default()
        },
        claim_lease_ms: 60_000,
        ..IngestConfig::default()
    };
    Ingest::new(
        MemoryStore::default(),
        MemoryIndex::default(),
        MemorySubjectKeys::default(),
        MemoryRejects::default(),
        master,
        config,
    )
}

fn decision(tenant: &str, i: u32) -> Value {
    json!({"schema_version":1,"kind":"decision","decision_id":format!("d-{tenant}-{i:05}"),
      "tenant_id":tenant,"occurred_at":format!("2026-03-15T10:{:02}:{:02}.{:03}Z", i / 60 % 60, i % 60, i % 1000),
      "subject":{"id":format!("user_{}", i % 7)},
      "model":{"name":"credit-risk","version":"3.2.0","artifact_sha256":"9f2c".repeat(16)},
      "features":{"credit_score":600 + i,"dti_ratio":0.35},
      "outputs":[{"label":"approve","score":0.92},{"label":"deny","score":0.08}],
      "decision":"approve","confidence":0.92,"threshold":0.75,"risk_tier":"high"})
}

fn msg(id: &str, body: &Value) -> Message {
    Message {
        message_id: id.into(),
        body: body.to_string().into_bytes(),
    }
}

fn batch(tenants: &[&str], n: u32) -> Vec<Message> {
    let mut out = Vec::new();
    for t in tenants {
        for i in 0..n {
            out.push(msg(&format!("m-{t}-{i}"), &decision(t, i)));
        }
    }
    out
}

/// Every chain verifies and every indexed pointer resolves to its row.
async fn assert_journal_sound(svc: &MemIngest, tenants: &[&str]) {
    for t in tenants {
        let report = verify_stored_chain(&svc.index, &svc.store, t)
            .await
            .unwrap();
        assert_eq!(report.faults, vec![], "chain of {t}");
        let blocks = svc.index.list_blocks(t).await.unwrap();
        assert_eq!(report.blocks_checked, blocks.len() as u64, "chain of {t}");
    }
    for p in svc.index.pointers() {
        let bytes = svc.store.get_object(&p.file_key).await.unwrap().unwrap();
        let (rows, positions) = columnar::decode_file_positioned(bytes).unwrap();
        let at = positions
            .iter()
            .position(|pos| {
                pos.row_group == p.row_group as usize && pos.row_in_group == p.row as usize
            })
            .unwrap();
        assert_eq!(rows[at].record.record_id(), p.record_id);
    }
}

fn indexed_ids(svc: &MemIngest) -> Vec<String> {
    let mut ids: Vec<String> = svc
        .index
        .pointers()
        .into_iter()
        .map(|p| p.record_id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn batch_lands_one_block_per_tenant_and_verifies() {
    let svc = service();
    let out = svc
        .ingest_batch(&batch(&["bank_1", "bank_2"], 10), now())
        .await;
    assert_eq!(out.failed, Vec::<String>::new(), "{:?}", out.errors);
    assert_eq!((out.accepted, out.duplicates, out.rejected), (20, 0, 0));
    assert_eq!(out.blocks.len(), 2);
    assert!(out.blocks.iter().all(|b| b.seq == 0 && b.rows == 10));
    let out = svc
        .ingest_batch(&batch(&["bank_1"], 25)[10..], later(1))
        .await;
    assert_eq!(out.blocks[0].seq, 1);
    assert_eq!(indexed_ids(&svc).len(), 35);
    assert!(svc
        .index
        .manifest_entries()
        .iter()
        .all(|e| e.state == FileState::Live));
    assert_journal_sound(&svc, &["bank_1", "bank_2"]).await;
}

#[tokio::test]
async fn raw_subject_ids_and_features_never_reach_storage() {
    let svc = service();
    svc.ingest_batch(&batch(&["bank_1"], 5), now()).await;
    let objects = svc.store.objects.lock().unwrap().clone();
    let (key, bytes) = objects.iter().next().unwrap();
    let haystack = String::from_utf8_lossy(bytes);
    assert!(!haystack.contains("user_1"), "raw subject id in {key}");
    let rows = columnar::decode_file(bytes.clone()).unwrap();
    let row = &rows[0];
    assert!(row.record.subject.is_none() && row.record.features.is_none());
    let keys = svc.master.tenant_keys("bank_1");
    assert_eq!(
        row.record.subject_ref.as_deref(),
        Some(keys.subject_ref("user_0").as_str())
    );
    // The sealed features open with the subject's key and nothing else.
    let dk = svc
        .subject_keys
        .data_key("bank_1", &keys.subject_ref("user_0"))
        .await
        .unwrap();
    let aad = features_crypto::aad(
        "bank_1",
        row.record.record_id(),
        row.record.features_hmac.as_deref().unwrap(),
    );
    let plain = features_crypto::open(&dk, &aad, row.features_sealed.as_ref().unwrap()).unwrap();
    assert_eq!(&plain[..], br#"{"credit_score":600,"dti_ratio":0.35}"#);
    let other = svc
        .subject_keys
        .data_key("bank_1", &keys.subject_ref("user_1"))
        .await
        .unwrap();
    assert!(features_crypto::open(&other, &aad, row.features_sealed.as_ref().unwrap()).is_err());
}

#[tokio::test]
async fn redelivery_and_in_batch_copies_add_nothing() {
    let svc = service();
    let msgs = batch(&["bank_1"], 8);
    svc.ingest_batch(&msgs, now()).await;
    let before = svc.index.list_blocks("bank_1").await.unwrap().len();
    let out = svc.ingest_batch(&msgs, later(1000)).await;
    assert!(out.failed.is_empty());
    assert_eq!((out.accepted, out.duplicates), (0, 8));
    assert_eq!(svc.index.list_blocks("bank_1").await.unwrap().len(), before);
    // The same record in two messages of one batch, and packed beside a new one.
    let packed = json!([decision("bank_1", 3), decision("bank_1", 100)]);
    let copies = vec![
        msg("a", &decision("bank_1", 101)),
        msg("b", &decision("bank_1", 101)),
        msg("c", &packed),
    ];
    let out = svc.ingest_batch(&copies, later(2000)).await;
    assert!(out.failed.is_empty(), "{:?}", out.errors);
    assert_eq!((out.accepted, out.duplicates), (2, 2));
    assert_eq!(indexed_ids(&svc).len(), 10);
    assert_journal_sound(&svc, &["bank_1"]).await;
}

#[tokio::test]
async fn reused_id_with_other_content_is_rejected_not_overwritten() {
    let svc = service();
    svc.ingest_batch(&batch(&["bank_1"], 2), now()).await;
    let mut changed = decision("bank_1", 1);
    changed["decision"] = json!("deny");
    let out = svc.ingest_batch(&[msg("x", &changed)], later(1)).await;
    assert!(out.failed.is_empty());
    assert_eq!(out.rejected, 1);
    let sent = svc.rejects.sent.lock().unwrap().clone();
    assert_eq!(sent[0].message_id, "x");
    assert_eq!(sent[0].rejection.field, "decision_id");
    assert!(sent[0].rejection.reason.contains("different content"));
    let Some(IndexEntry::Indexed(p)) = svc
        .index
        .get_pointer("bank_1", "d-bank_1-00001")
        .await
        .unwrap()
    else {
        panic!("pointer missing");
    };
    assert_eq!(p.decision.as_deref(), Some("approve"));
}

#[tokio::test]
async fn bad_messages_go_to_dead_letter_and_neighbours_land() {
    let svc = service();
    let mut msgs = batch(&["bank_1"], 3);
    let mut bad_field = decision("bank_1", 50);
    bad_field["outputs"][0]["score"] = json!("high");
    msgs.push(msg("bad-type", &bad_field));
    msgs.push(Message {
        message_id: "bad-utf8".into(),
        body: vec![b'{', 0xff, b'}'],
    });
    let mut mismatch = decision("bank_1", 51);
    mismatch["features_hmac"] = json!("0".repeat(64));
    msgs.push(msg("bad-hmac", &json!([decision("bank_1", 52), mismatch])));
    let out = svc.ingest_batch(&msgs, now()).await;
    assert!(out.failed.is_empty(), "{:?}", out.errors);
    assert_eq!((out.accepted, out.rejected), (4, 3));
    let sent = svc.rejects.sent.lock().unwrap().clone();
    let by_id = |id: &str| sent.iter().find(|r| r.message_id == id).unwrap().clone();
    assert_eq!(by_id("bad-type").rejection.field, "outputs[0].score");
    assert!(by_id("bad-utf8").body_base64);
    assert_eq!(by_id("bad-utf8").rejection.field, "body");
    let h = by_id("bad-hmac");
    assert_eq!(
        (h.rejection.field.as_str(), h.rejection.record_index),
        ("features_hmac", Some(1))
    );
    assert!(h.body.contains("d-bank_1-00051"));
    assert!(indexed_ids(&svc).contains(&"d-bank_1-00052".to_string()));
}

#[tokio::test]
async fn a_crash_after_any_step_is_recovered_by_redelivery() {
    for step in IngestStep::ALL {
        let svc = service();
        let first = batch(&["bank_1"], 6);
        svc.ingest_batch(&first, now()).await;
        let msgs = batch(&["bank_1"], 12)[6..].to_vec();
        svc.faults.arm(step);
        let out = svc.ingest_batch(&msgs, later(1000)).await;
        assert_eq!(
            out.failed.len(),
            6,
            "{step:?}: every message of the crashed block is retried"
        );

        // Redelivered before the lease ran out: a crash before chaining must wait.
        let early = svc.ingest_batch(&msgs, later(2000)).await;
        let chained = matches!(step, IngestStep::Chained | IngestStep::Indexed);
        assert_eq!(
            early.failed.is_empty(),
            chained,
            "{step:?}: {:?}",
            early.errors
        );

        let out = svc.ingest_batch(&msgs, later(120_000)).await;
        assert!(out.failed.is_empty(), "{step:?}: {:?}", out.errors);
        let ids = indexed_ids(&svc);
        assert_eq!(ids.len(), 12, "{step:?}");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 12);
        let blocks = svc.index.list_blocks("bank_1").await.unwrap();
        assert_eq!(
            blocks.len(),
            2,
            "{step:?}: the records were chained exactly once"
        );
        assert_eq!(blocks.iter().map(|b| b.count).sum::<u64>(), 12);
        assert!(svc
            .index
            .manifest_entries()
            .iter()
            .all(|e| matches!(e.state, FileState::Live | FileState::Abandoned)));
        assert_journal_sound(&svc, &["bank_1"]).await;
    }
}

#[tokio::test]
async fn a_retried_claim_that_had_landed_is_still_ours() {
    let svc = service();
    svc.index.echo_claims_for_tests();
    let out = svc.ingest_batch(&batch(&["bank_1"], 3), now()).await;
    assert!(out.failed.is_empty(), "{:?}", out.errors);
    assert_eq!(out.accepted, 3);
    assert_eq!(out.duplicates, 0);
    assert_journal_sound(&svc, &["bank_1"]).await;
}

#[tokio::test]
async fn a_failed_write_fences_itself_so_the_retry_needs_no_lease() {
    struct FailingStore;
    impl ObjectStore for FailingStore {
        async fn put_object(&self, key: &str, _: bytes::Bytes) -> Result<(), PortError> {
            Err(PortError::transient("put", key))
        }
        async fn get_object(&self, _: &str) -> Result<Option<bytes::Bytes>, PortError> {
            Ok(None)
        }
        async fn delete_object(&self, key: &str) -> Result<(), PortError> {
            Err(PortError::transient("delete", key))
        }
    }
    let svc = service();
    let failing = Ingest::new(
        FailingStore,
        svc.index,
        MemorySubjectKeys::default(),
        MemoryRejects::default(),
        MasterKey::from_bytes(vec![42u8; 32]).unwrap(),
        svc.config.clone(),
    );
    let msgs = batch(&["bank_1"], 3);
    assert_eq!(failing.ingest_batch(&msgs, now()).await.failed.len(), 3);
    let healthy = Ingest::new(
        MemoryStore::default(),
        failing.index,
        MemorySubjectKeys::default(),
        MemoryRejects::default(),
        MasterKey::from_bytes(vec![42u8; 32]).unwrap(),
        svc.config,
    );
    let out = healthy.ingest_batch(&msgs, later(10)).await;
    assert!(out.failed.is_empty(), "{:?}", out.errors);
    assert_eq!(out.accepted, 3);
}

#[tokio::test]
async fn concurrent_ingests_of_one_tenant_serialize_on_the_head() {
    let svc = service();
    let a = batch(&["bank_1"], 20);
    let (x, y) = tokio::join!(
        svc.ingest_batch(&a[..10], now()),
        svc.ingest_batch(&a[10..], now())
    );
    assert!(x.failed.is_empty() && y.failed.is_empty());
    let blocks = svc.index.list_blocks("bank_1").await.unwrap();
    assert_eq!(blocks.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![0, 1]);
    assert_journal_sound(&svc, &["bank_1"]).await;
}
