//! Erasure over the in-memory ports, on files written by the real ingest and compaction.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use super::erasure::{job_key, jobs_prefix, ErasureReport, ErasureStep, FileErasure};
use super::erasure_receipt::ReceiptFile;
use super::tests::{
    at, decision, journal, policy, signer, subject_ref_of, ts, MemIngest, DAY_MS, MERGED,
};
use super::*;
use crate::access::AccessEvent;
use crate::checkpoint::{CheckpointStore, MemorySigner};
use crate::columnar::{decode_file, decode_row_group};
use crate::compact::CompactorConfig;
use crate::features_crypto::{aad, open};
use crate::ingest::Message;
use crate::integrity::{verify_stored_chain, Fault};
use crate::memory::{MemoryIndex, MemoryStore, MemorySubjectKeys};
use crate::ports::{FileState, IndexEntry, JournalIndex, ObjectStore, SubjectKeyStore};

const SUBJECT: &str = "user_3";
/// user_3's decisions: every seventh of the 1,200 merged ones from d-…-00003, and one of the
/// five small ones.
const DECISIONS: u64 = 171 + 1;

fn erased_at() -> crate::timestamp::Timestamp {
    ts("2026-04-01T00:00:00Z")
}

/// The journal of the retention tests, plus an outcome of one of the subject's decisions, an
/// access record of a read that named the subject and one that named another subject, all in
/// one block of 2026-03-16 hour 15.
async fn journal_with_follow_ups() -> MemIngest {
    let mut j = journal().await;
    j.config.limits.accept_access = true;
    let keys = j.master.tenant_keys("t1");
    let access = |id: &str, subject: &str| {
        let mut target = Map::new();
        target.insert("subject_ref".into(), Value::from(keys.subject_ref(subject)));
        AccessEvent {
            access_id: id.into(),
            at: ts("2026-03-16T14:00:00Z"),
            principal: "arn:aws:iam::111122223333:role/auditor".into(),
            role: None,
            purpose: "a data subject request".into(),
            operation: "query_subject".into(),
            target,
            read: Vec::new(),
            read_count: 0,
            result: "ok".into(),
        }
        .to_record("t1")
    };
    let bodies = [
        json!({"schema_version":1,"kind":"outcome","outcome_id":"o-1",
          "decision_id":"d-2026-03-15-00003","tenant_id":"t1",
          "occurred_at":"2026-03-16T13:00:00.000Z","outcome":{"label":"repaid","value":1.0}}),
        serde_json::to_value(access("a-subject", SUBJECT)).unwrap(),
        serde_json::to_value(access("a-other", "user_4")).unwrap(),
    ];
    let messages: Vec<Message> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| Message {
            message_id: format!("f{i}"),
            body: b.to_string().into_bytes(),
        })
        .collect();
    let out = j.ingest_batch(&messages, ts("2026-03-16T15:00:00Z")).await;
    assert!(
        out.failed.is_empty() && out.accepted == 3,
        "{out:?} {:?}",
        j.rejects.sent.lock().unwrap()
    );
    j
}

type MemRetention<'a> = Retention<'a, MemoryStore, MemoryIndex, MemoryStore, MemorySigner>;

fn retention<'a>(
    j: &'a MemIngest,
    signer: &'a MemorySigner,
    policy: &'a RetentionPolicy,
) -> MemRetention<'a> {
    Retention::new(
        &j.store,
        &j.index,
        &j.store,
        signer,
        policy,
        RetentionConfig::default(),
        "erase",
    )
}

fn erasure<'r, 'a>(
    j: &'r MemIngest,
    r: &'r MemRetention<'a>,
) -> Erasure<'r, 'a, MemoryStore, MemoryIndex, MemoryStore, MemorySigner, MemorySubjectKeys> {
    Erasure::new(
        r,
        &j.subject_keys,
        &j.master,
        CompactorConfig::default().writer,
    )
}

async fn erase(
    j: &MemIngest,
    policy: &RetentionPolicy,
    crash: Option<ErasureStep>,
    dry_run: bool,
) -> Result<ErasureReport, RetentionError> {
    let signer = signer();
    let r = retention(j, &signer, policy);
    let e = erasure(j, &r);
    if let Some(step) = crash {
        e.crash_after(step);
    }
    e.erase("t1", SUBJECT, erased_at(), dry_run).await
}

async fn resume(j: &MemIngest, now: crate::timestamp::Timestamp) -> Vec<ErasureReport> {
    let signer = signer();
    let p = policy(vec![]);
    let r = retention(j, &signer, &p);
    let e = erasure(j, &r);
    e.resume("t1", now).await.unwrap()
}

/// The subject's record ids, read from the index before the erasure.
async fn subject_ids(j: &MemIngest, subject_ref: &str) -> HashSet<String> {
    let mut ids: HashSet<String> = j
        .index
        .pointers()
        .into_iter()
        .filter(|p| p.subject_ref.as_deref() == Some(subject_ref))
        .map(|p| p.record_id)
        .collect();
    ids.insert("o-1".into());
    ids
}

/// Searches every store for the subject: Parquet rows (decoded), every other object's bytes,
/// the index, the subject keys.
async fn assert_nothing_left(j: &MemIngest, subject_ref: &str, ids: &HashSet<String>) {
    let objects: Vec<(String, bytes::Bytes)> = j
        .store
        .objects
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, bytes) in objects {
        if key.ends_with(".parquet") {
            for row in decode_file(bytes).unwrap() {
                let text = String::from_utf8(row.record.canonical_bytes().unwrap()).unwrap();
                assert!(
                    !text.contains(subject_ref) && !ids.contains(row.record.record_id()),
                    "{key} still holds {}",
                    row.record.record_id()
                );
            }
        } else {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(subject_ref) && !text.contains(SUBJECT),
                "{key} names the subject"
            );
            for id in ids {
                assert!(!text.contains(&format!("\"{id}\"")), "{key} names {id}");
            }
        }
    }
    for p in j.index.pointers() {
        assert_ne!(p.subject_ref.as_deref(), Some(subject_ref), "{p:?}");
        assert!(!ids.contains(&p.record_id), "{p:?}");
    }
    for id in ids {
        assert_eq!(j.index.get_pointer("t1", id).await.unwrap(), None, "{id}");
    }
    let timeline = j
        .index
        .query_subject(
            "t1",
            subject_ref,
            crate::timestamp::Timestamp::MIN,
            crate::timestamp::Timestamp::MAX,
        )
        .await
        .unwrap();
    assert!(timeline.is_empty(), "{timeline:?}");
    assert!(j
        .index
        .query_refs("t1", "d-2026-03-15-00003")
        .await
        .unwrap()
        .is_empty());
    assert!(!j
        .subject_keys
        .keys
        .lock()
        .unwrap()
        .contains_key(&("t1".to_string(), subject_ref.to_string())));
    assert!(CheckpointStore::list_keys(&j.store, &jobs_prefix("t1"))
        .await
        .unwrap()
        .is_empty());
}

/// Everyone else is still there and found where the index says.
async fn assert_others_intact(j: &MemIngest) {
    for id in ["d-2026-03-15-00004", "d-2026-03-16-00004", "a-other"] {
        let Some(IndexEntry::Indexed(p)) = j.index.get_pointer("t1", id).await.unwrap() else {
            panic!("{id} is not indexed");
        };
        let bytes = ObjectStore::get_object(&j.store, &p.file_key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} is missing", p.file_key));
        let rows = decode_row_group(bytes, p.row_group as usize).unwrap();
        assert_eq!(rows[p.row as usize].record.record_id(), id);
    }
}

#[tokio::test]
async fn an_erased_subject_is_found_nowhere_its_features_stay_sealed_and_the_tenant_verifies() {
    let j = journal_with_follow_ups().await;
    let subject_ref = subject_ref_of(&j, "d-2026-03-15-00003").await;
    let ids = subject_ids(&j, &subject_ref).await;
    assert_eq!(
        ids.len() as u64,
        DECISIONS + 2,
        "decisions, the access record, the outcome"
    );
    let before = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(before.ok(), "{before:#?}");

    // One of the subject's sealed features, readable under its key before.
    let merged = decode_file(
        ObjectStore::get_object(&j.store, MERGED)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let row = merged
        .iter()
        .find(|r| r.record.record_id() == "d-2026-03-15-00003")
        .unwrap();
    let sealed = row.features_sealed.clone().unwrap();
    let aad = aad(
        "t1",
        "d-2026-03-15-00003",
        row.record.features_hmac.as_deref().unwrap(),
    );
    let key = j.subject_keys.data_key("t1", &subject_ref).await.unwrap();
    assert!(open(&key, &aad, &sealed).is_ok());

    let report = erase(&j, &policy(vec![]), None, false).await.unwrap();
    assert!(report.done, "{report:#?}");
    assert_eq!(report.key_shredded, Some(true));
    assert_eq!(
        report.records,
        BTreeMap::from([
            ("access".to_string(), 1),
            ("decision".to_string(), DECISIONS),
            ("outcome".to_string(), 1)
        ])
    );
    assert_eq!(report.files.len(), 3, "{report:#?}");
    let removed: u64 = report
        .files
        .iter()
        .map(|f| match &f.outcome {
            FileErasure::Rewritten { rows_removed, .. } => *rows_removed,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(removed, DECISIONS + 2);

    assert_nothing_left(&j, &subject_ref, &ids).await;
    assert_others_intact(&j).await;
    // The sealed features cannot be opened: the key is gone, and a new one opens nothing.
    let fresh = j.subject_keys.data_key("t1", &subject_ref).await.unwrap();
    assert!(open(&fresh, &aad, &sealed).is_err());

    // The receipt is signed, counts the rows and names no personal data.
    let receipt_key = report.receipt_key.clone().unwrap();
    let bytes = CheckpointStore::get(&j.store, &receipt_key)
        .await
        .unwrap()
        .unwrap();
    let receipt = ReceiptFile::from_bytes(&bytes).unwrap();
    assert_eq!(receipt.fault(Some(&signer().public_key())), None);
    assert_eq!(receipt.receipt().rows_removed, DECISIONS + 2);
    assert_eq!(receipt.receipt().files_rewritten, 3);
    assert!(receipt.receipt().key_shredded);

    // Verification passes, with the receipt's leaves standing in for the rows.
    let after = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(after.ok(), "{after:#?}");
    assert_eq!(after.rows_checked, before.rows_checked - (DECISIONS + 2));
    // All six blocks lost rows: the merged four, the small one, the follow-ups' one.
    assert_eq!(
        after
            .erased
            .iter()
            .map(|s| (s.from_seq, s.to_seq, s.tombstone_key.as_str()))
            .collect::<Vec<_>>(),
        [(0, 5, receipt_key.as_str())]
    );

    // A second erasure of another subject stacks its receipt on the first.
    let other = j.master.tenant_keys("t1").subject_ref("user_4");
    let signer = signer();
    let p = policy(vec![]);
    let r = retention(&j, &signer, &p);
    let e = erasure(&j, &r);
    let second = e
        .erase("t1", "user_4", at(erased_at(), DAY_MS), false)
        .await
        .unwrap();
    assert!(second.done, "{second:#?}");
    let v = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(v.ok(), "{v:#?}");
    let twice = j
        .index
        .manifest_entries()
        .into_iter()
        .find(|e| e.state == FileState::Live && e.erasure_receipts.len() == 2)
        .expect("the merged file's copy names both receipts");
    assert_eq!(twice.erasure_receipts[0], receipt_key);
    assert!(j
        .index
        .query_subject(
            "t1",
            &other,
            crate::timestamp::Timestamp::MIN,
            crate::timestamp::Timestamp::MAX
        )
        .await
        .unwrap()
        .is_empty());

    // A forged receipt is a fault, not an erasure.
    let mut forged = receipt.clone();
    forged.blocks[0].leaves[0].leaf_hash = "00".repeat(32);
    j.store
        .objects
        .lock()
        .unwrap()
        .insert(receipt_key.clone(), forged.to_bytes().into());
    let tampered = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(
        tampered
            .faults
            .iter()
            .any(|f| matches!(f, Fault::BadReceipt { receipt_key: k, .. } if *k == receipt_key)),
        "{tampered:#?}"
    );
}

#[tokio::test]
async fn a_crash_at_any_step_is_finished_by_the_next_run() {
    for step in ErasureStep::ALL {
        let j = journal_with_follow_ups().await;
        let subject_ref = subject_ref_of(&j, "d-2026-03-15-00003").await;
        let ids = subject_ids(&j, &subject_ref).await;
        let before = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
        let err = erase(&j, &policy(vec![]), Some(step), false)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RetentionError::Port(crate::ports::PortError::Injected(_))
            ),
            "{step:?}: {err}"
        );
        // Whatever the step, every other record is still found and verifiable.
        assert_others_intact(&j).await;
        let mid = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
        assert!(mid.ok(), "{step:?}: {mid:#?}");

        // The crashed run gave its lease back; the next run (another owner) finishes the job.
        let resumed = resume(&j, at(erased_at(), DAY_MS)).await;
        assert_eq!(resumed.len(), 1, "{step:?}");
        assert!(resumed[0].done, "{step:?}: {resumed:#?}");
        assert_nothing_left(&j, &subject_ref, &ids).await;
        assert_others_intact(&j).await;
        let v = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
        assert!(v.ok(), "{step:?}: {v:#?}");
        assert_eq!(
            v.rows_checked,
            before.rows_checked - (DECISIONS + 2),
            "{step:?}"
        );
        assert!(resume(&j, at(erased_at(), 2 * DAY_MS)).await.is_empty());
    }
}

#[tokio::test]
async fn a_legal_hold_refuses_the_erasure_and_a_dry_run_changes_nothing() {
    let j = journal_with_follow_ups().await;
    let subject_ref = subject_ref_of(&j, "d-2026-03-15-00003").await;
    let pointers_before = j.index.pointers().len();
    let scoped = |id: &str, scope: HoldScope| super::tests::hold(id, scope);
    let held = policy(vec![
        scoped(
            "case-9",
            HoldScope {
                subject_ref: Some(subject_ref.clone()),
                ..HoldScope::default()
            },
        ),
        // Another model's hold and a range without the subject's records hold nothing.
        scoped(
            "case-10",
            HoldScope {
                model_name: Some("fraud".into()),
                model_version: Some("1".into()),
                ..HoldScope::default()
            },
        ),
        scoped(
            "case-11",
            HoldScope {
                from: Some(ts("2026-05-01T00:00:00Z")),
                ..HoldScope::default()
            },
        ),
    ]);
    let err = erase(&j, &held, None, false).await.unwrap_err();
    match &err {
        RetentionError::Held { holds, records } => {
            assert_eq!(holds, &["case-9"]);
            assert_eq!(*records, DECISIONS + 2);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("case-9"), "{err}");
    // A time range over the subject's records holds them too.
    let ranged = policy(vec![scoped(
        "case-12",
        HoldScope {
            from: Some(ts("2026-03-16T00:00:00Z")),
            to: Some(ts("2026-03-17T00:00:00Z")),
            ..HoldScope::default()
        },
    )]);
    assert!(matches!(
        erase(&j, &ranged, None, false).await,
        Err(RetentionError::Held { .. })
    ));

    let plan = erase(&j, &policy(vec![]), None, true).await.unwrap();
    assert!(plan.dry_run && !plan.done, "{plan:#?}");
    assert_eq!(plan.files.len(), 3, "{plan:#?}");
    assert!(plan
        .files
        .iter()
        .all(|f| matches!(f.outcome, FileErasure::Planned { archived: false })));
    assert_eq!(
        plan.files.iter().map(|f| f.records).sum::<u64>(),
        DECISIONS + 2
    );

    // Nothing changed: the index, the key, no job, verification as before.
    assert_eq!(j.index.pointers().len(), pointers_before);
    assert!(j
        .subject_keys
        .keys
        .lock()
        .unwrap()
        .contains_key(&("t1".to_string(), subject_ref.clone())));
    assert!(CheckpointStore::list_keys(&j.store, &jobs_prefix("t1"))
        .await
        .unwrap()
        .is_empty());
    assert!(verify_stored_chain(&j.index, &j.store, "t1")
        .await
        .unwrap()
        .ok());
}

#[tokio::test]
async fn an_archived_file_is_restored_first_and_its_copy_archived_again() {
    let j = journal_with_follow_ups().await;
    let subject_ref = subject_ref_of(&j, "d-2026-03-15-00003").await;
    let ids = subject_ids(&j, &subject_ref).await;
    let p = policy(vec![]);
    let signer = signer();
    let r = retention(&j, &signer, &p);
    r.run_tenant("t1", super::tests::archive_due(), false)
        .await
        .unwrap();
    assert_eq!(
        super::tests::entry(&j, MERGED).await.state,
        FileState::Archived
    );

    let first = erase(&j, &p, None, false).await.unwrap();
    assert!(!first.done, "{first:#?}");
    assert!(first
        .files
        .iter()
        .any(|f| f.file_key == MERGED && matches!(f.outcome, FileErasure::Waiting { .. })));
    // Already unfindable: the key is shredded and the index entries are gone.
    assert_eq!(
        j.index
            .get_pointer("t1", "d-2026-03-15-00003")
            .await
            .unwrap(),
        None
    );
    assert!(
        ObjectStore::get_object(&j.store, &job_key("t1", first.job_id.as_deref().unwrap()))
            .await
            .unwrap()
            .is_some()
    );
    // Still archived: the next run waits again.
    let waiting = resume(&j, at(erased_at(), DAY_MS)).await;
    assert!(!waiting[0].done, "{waiting:#?}");

    j.store.finish_restore(MERGED);
    let done = resume(&j, at(erased_at(), 2 * DAY_MS)).await;
    assert!(done[0].done, "{done:#?}");
    assert_nothing_left(&j, &subject_ref, &ids).await;
    let copy = match &done[0]
        .files
        .iter()
        .find(|f| f.file_key == MERGED)
        .unwrap()
        .outcome
    {
        FileErasure::Rewritten { into, .. } => into.clone(),
        other => panic!("{other:?}"),
    };
    let e = super::tests::entry(&j, &copy).await;
    assert_eq!(
        (e.state, e.storage_class.as_deref()),
        (FileState::Archived, Some("DEEP_ARCHIVE")),
        "{e:#?}"
    );
    let v = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(v.ok(), "{v:#?}");
    assert!(v.archived.iter().any(|s| s.tombstone_key == copy), "{v:#?}");
}

#[tokio::test]
async fn records_of_the_subject_delivered_again_after_the_erasure_are_dropped() {
    let j = journal_with_follow_ups().await;
    let subject_ref = subject_ref_of(&j, "d-2026-03-15-00003").await;
    let ids = subject_ids(&j, &subject_ref).await;
    erase(&j, &policy(vec![]), None, false).await.unwrap();
    let rejected_before = j.rejects.sent.lock().unwrap().len();

    // Redeliveries: the subject's decisions 3 and 10 (10 with user_4's 4 in one message) and
    // another subject's 4 alone; then a new decision of the subject, made after the erasure.
    let body = |n: u32| decision(n, "2026-03-15", if n % 3 == 0 { "high" } else { "low" });
    let after = decision(7_003, "2026-04-02", "low");
    assert_eq!(after["subject"]["id"], json!(SUBJECT));
    let messages = [
        ("again-3", body(3).to_string()),
        ("again-10-4", json!([body(10), body(4)]).to_string()),
        ("after", after.to_string()),
    ]
    .map(|(id, body)| Message {
        message_id: id.into(),
        body: body.into_bytes(),
    });
    let now = at(erased_at(), 2 * DAY_MS);
    let out = j.ingest_batch(&messages, now).await;
    assert!(out.failed.is_empty(), "{out:?}");
    assert_eq!(
        (out.suppressed, out.duplicates, out.accepted),
        (2, 1, 1),
        "{out:?}"
    );
    // Dropped, not dead-lettered (the dead-letter queue would keep the raw id).
    assert_eq!(j.rejects.sent.lock().unwrap().len(), rejected_before);
    // Nothing erased came back, in the index or in any file; the new decision is journaled.
    for id in &ids {
        assert_eq!(j.index.get_pointer("t1", id).await.unwrap(), None, "{id}");
    }
    let files: Vec<bytes::Bytes> = j
        .store
        .objects
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .map(|(_, v)| v.clone())
        .collect();
    for bytes in files {
        for row in decode_file(bytes).unwrap() {
            assert!(!ids.contains(row.record.record_id()), "{row:?}");
        }
    }
    let timeline = j
        .index
        .query_subject(
            "t1",
            &subject_ref,
            crate::timestamp::Timestamp::MIN,
            crate::timestamp::Timestamp::MAX,
        )
        .await
        .unwrap();
    let found: Vec<&str> = timeline.iter().map(|p| p.record_id.as_str()).collect();
    assert_eq!(found, ["d-2026-04-02-07003"]);

    // Past the queue's retention the entry is no longer read.
    let live = j.index.suppressions("t1", now).await.unwrap();
    assert_eq!(live.len(), 1);
    assert!(j
        .index
        .suppressions("t1", live[0].expires_at)
        .await
        .unwrap()
        .is_empty());
}
