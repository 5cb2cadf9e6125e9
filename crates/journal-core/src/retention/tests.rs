//! Retention over the in-memory ports, on files written by the real ingest and compaction.

use serde_json::{json, Value};

use super::*;
use crate::checkpoint::{CheckpointStore, MemorySigner};
use crate::compact::{CompactionConfig, Compactor, CompactorConfig};
use crate::ingest::{Ingest, IngestConfig, Message};
use crate::integrity::{verify_stored_chain, Fault};
use crate::keys::MasterKey;
use crate::memory::{MemoryIndex, MemoryRejects, MemoryStore, MemorySubjectKeys};
use crate::ports::{
    ArchiveState, FileState, IndexEntry, JournalIndex, ManifestEntry, ObjectStore,
    RangedObjectStore,
};
use crate::timestamp::Timestamp;

pub(super) type MemIngest = Ingest<MemoryStore, MemoryIndex, MemorySubjectKeys, MemoryRejects>;

pub(super) const DAY_MS: i64 = 86_400_000;
pub(super) const MERGED: &str =
    "decisions/tenant=t1/date=2026-03-15/hour=12/compacted-000000000000-000000000003.parquet";

pub(super) fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

pub(super) fn at(t: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_millis(t.millis() + ms).unwrap()
}

pub(super) fn decision(i: u32, day: &str, tier: &str) -> Value {
    json!({"schema_version":1,"kind":"decision","decision_id":format!("d-{day}-{i:05}"),
      "tenant_id":"t1","occurred_at":format!("{day}T10:{:02}:{:02}.000Z", i / 60 % 60, i % 60),
      "subject":{"id":format!("user_{}", i % 7)},
      "model":{"name":"credit-risk","version":"3.2.0","artifact_sha256":"9f2c".repeat(16)},
      "features":{"credit_score":600 + i, "income": 1000 * i},
      "outputs":[{"label":"approve","score":0.92},{"label":"deny","score":0.08}],
      "decision":"approve","confidence":0.92,"threshold":0.75,"risk_tier":tier,
      "rationale":"A rationale long enough to give the rows some weight in the file."})
}

pub(super) async fn ingest(j: &MemIngest, day: &str, blocks: u32, per_block: u32, now: Timestamp) {
    for b in 0..blocks {
        let messages: Vec<Message> = (0..per_block)
            .map(|i| {
                let n = b * per_block + i;
                // The second day's small file holds only low-tier decisions.
                let tier = if n % 3 == 0 && day == "2026-03-15" {
                    "high"
                } else {
                    "low"
                };
                Message {
                    message_id: format!("m{day}-{n}"),
                    body: decision(n, day, tier).to_string().into_bytes(),
                }
            })
            .collect();
        let out = j.ingest_batch(&messages, now).await;
        assert!(out.failed.is_empty() && out.blocks.len() == 1, "{out:?}");
    }
}

pub(super) fn ingested_at() -> Timestamp {
    ts("2026-03-15T12:00:00Z")
}

pub(super) fn compacted_at() -> Timestamp {
    ts("2026-03-15T14:00:00Z")
}

/// Four blocks of 2026-03-15 merged into one file (tiers high and low, > 128 KiB), their
/// inputs deleted; one small low-tier block of 2026-03-16 left alone.
pub(super) async fn journal() -> MemIngest {
    let j = Ingest::new(
        MemoryStore::default(),
        MemoryIndex::default(),
        MemorySubjectKeys::default(),
        MemoryRejects::default(),
        MasterKey::from_bytes(vec![9u8; 32]).unwrap(),
        IngestConfig::default(),
    );
    ingest(&j, "2026-03-15", 4, 300, ingested_at()).await;
    let config = CompactorConfig {
        plan: CompactionConfig {
            settle_ms: 0,
            whole_hours: false,
            ..CompactionConfig::default()
        },
        grace_ms: 0,
        verify_every: 1,
        ..CompactorConfig::default()
    };
    let c = Compactor::new(&j.store, &j.index, &j.master, config, "compact");
    let r = c.run("t1", "2026-03-15", compacted_at()).await.unwrap();
    assert_eq!(r.written.len(), 1, "{r:#?}");
    let r = c
        .run("t1", "2026-03-15", at(compacted_at(), 1))
        .await
        .unwrap();
    assert_eq!(r.deleted.len(), 4, "{r:#?}");
    ingest(&j, "2026-03-16", 1, 5, ts("2026-03-16T12:00:00Z")).await;
    let merged = entry(&j, MERGED).await;
    assert!(merged.size >= MIN_ARCHIVE_BYTES, "{}", merged.size);
    assert_eq!(merged.risk_tiers, ["high", "low"]);
    j
}

pub(super) fn policy(holds: Vec<LegalHold>) -> RetentionPolicy {
    let text = json!({
        "format": 1, "version": 1, "updated_at": "2026-01-01T00:00:00Z",
        "default": {"default": {"days_hot": 7, "archive_class": "GLACIER", "expire_after_years": 10}},
        "tenants": {"t1": {
            "default": {"days_hot": 30, "archive_class": "GLACIER", "expire_after_years": 1},
            "tiers": {"high": {"days_hot": 90, "archive_class": "DEEP_ARCHIVE", "expire_after_years": 2}}
        }},
        "legal_holds": holds,
    });
    RetentionPolicy::parse(text.to_string().as_bytes()).unwrap()
}

pub(super) fn signer() -> MemorySigner {
    MemorySigner::from_seed(b"retention tests")
}

async fn run(j: &MemIngest, policy: &RetentionPolicy, now: Timestamp, dry: bool) -> TenantReport {
    let signer = signer();
    let r = Retention::new(
        &j.store,
        &j.index,
        &j.store,
        &signer,
        policy,
        RetentionConfig::default(),
        "run",
    );
    r.run_tenant("t1", now, dry).await.unwrap()
}

pub(super) async fn entry(j: &MemIngest, key: &str) -> ManifestEntry {
    j.index.get_manifest("t1", key).await.unwrap().unwrap()
}

async fn small(j: &MemIngest) -> ManifestEntry {
    let mut all = j.index.list_manifest("t1", "2026-03-16").await.unwrap();
    assert_eq!(all.len(), 1);
    all.remove(0)
}

pub(super) fn archive_due() -> Timestamp {
    at(compacted_at(), 90 * DAY_MS)
}

#[tokio::test]
async fn files_move_to_the_archive_class_exactly_when_due_and_small_ones_are_reported() {
    let j = journal().await;
    let p = policy(vec![]);

    let early = run(&j, &p, at(archive_due(), -1), false).await;
    assert_eq!(early.of("archive").count(), 0, "{early:#?}");
    assert_eq!(entry(&j, MERGED).await.state, FileState::Live);
    // The small file is past its 30 days hot, but under 128 KiB.
    let too_small: Vec<_> = early.of("too_small").collect();
    assert_eq!(too_small.len(), 1, "{early:#?}");
    assert_eq!(too_small[0].file_key, small(&j).await.file_key);

    let due = run(&j, &p, archive_due(), false).await;
    let archived: Vec<_> = due.of("archive").collect();
    assert_eq!(archived.len(), 1, "{due:#?}");
    assert_eq!(archived[0].outcome, Outcome::Done);
    assert!(matches!(
        archived[0].action,
        Action::Archive { class: ArchiveClass::DeepArchive, ref rule, .. } if rule == "tenants.t1.tiers.high"
    ));
    let e = entry(&j, MERGED).await;
    assert_eq!(e.state, FileState::Archived);
    assert_eq!(e.storage_class.as_deref(), Some("DEEP_ARCHIVE"));
    let status = j.store.object_status(MERGED).await.unwrap().unwrap();
    assert_eq!(
        (status.storage_class.as_str(), status.archive),
        ("DEEP_ARCHIVE", ArchiveState::Archived)
    );
    // Every pointer of the file says archived.
    let Some(IndexEntry::Indexed(p0)) = j
        .index
        .get_pointer("t1", "d-2026-03-15-00007")
        .await
        .unwrap()
    else {
        panic!("pointer");
    };
    assert_eq!(
        (p0.file_key.as_str(), p0.storage_state),
        (MERGED, FileState::Archived)
    );
    // The report is stored, signed.
    let key = due.report_key.clone().unwrap();
    let stored: StoredReport =
        serde_json::from_slice(&CheckpointStore::get(&j.store, &key).await.unwrap().unwrap())
            .unwrap();
    assert_eq!(stored.sealed.signature_fault(&signer().public_key()), None);
    assert_eq!(stored.report.files, due.files);

    // Verification links through the archived blocks and says their rows were not read.
    let v = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(v.ok(), "{v:#?}");
    assert_eq!(
        v.archived
            .iter()
            .map(|s| (s.from_seq, s.to_seq, s.tombstone_key.as_str()))
            .collect::<Vec<_>>(),
        [(0, 3, MERGED)]
    );
    assert_eq!(v.rows_checked, 5, "only the small file's rows");
    j.store.finish_restore(MERGED);
    let v = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(
        v.ok() && v.archived.is_empty() && v.rows_checked == 1205,
        "{v:#?}"
    );
    j.store.archive(MERGED, "DEEP_ARCHIVE");

    // Nothing is archived twice.
    let again = run(&j, &p, at(archive_due(), DAY_MS), false).await;
    assert_eq!(again.of("archive").count(), 0, "{again:#?}");
}

fn expiry_due() -> Timestamp {
    // Two years (the high tier) after the merged file's newest decision.
    entry_last_occurred().plus_years(2).unwrap()
}

fn entry_last_occurred() -> Timestamp {
    // 1,200 decisions from 10:00:00, one per second.
    ts("2026-03-15T10:19:59Z")
}

#[tokio::test]
async fn expired_files_are_deleted_with_a_tombstone_and_the_chain_still_verifies() {
    let j = journal().await;
    let p = policy(vec![]);
    let before = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(
        before.ok() && before.deleted_by_rule.is_empty(),
        "{before:#?}"
    );
    assert_eq!(
        entry(&j, MERGED).await.last_occurred_at,
        entry_last_occurred()
    );

    run(&j, &p, archive_due(), false).await;
    let early = run(&j, &p, at(expiry_due(), -1), false).await;
    assert_eq!(
        early.of("expire").count(),
        1,
        "the small file's one year: {early:#?}"
    );
    assert_eq!(entry(&j, MERGED).await.state, FileState::Archived);

    let due = run(&j, &p, expiry_due(), false).await;
    let expired: Vec<_> = due.of("expire").collect();
    assert_eq!(expired.len(), 1, "{due:#?}");
    assert_eq!(expired[0].outcome, Outcome::Done);
    let tomb_key = expired[0].tombstone.clone().unwrap();
    assert_eq!(tomb_key, tombstone_key(MERGED));

    // The data and its index entries are gone; the manifest names the tombstone.
    assert_eq!(j.store.object_status(MERGED).await.unwrap(), None);
    assert_eq!(
        ObjectStore::get_object(&j.store, &run::ids_key(MERGED))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        j.index
            .get_pointer("t1", "d-2026-03-15-00007")
            .await
            .unwrap(),
        None
    );
    let e = entry(&j, MERGED).await;
    assert_eq!(
        (e.state, e.tombstone.as_deref()),
        (FileState::Deleted, Some(tomb_key.as_str()))
    );

    // The tombstone is signed and lists the four blocks as the chain holds them.
    let bytes = CheckpointStore::get(&j.store, &tomb_key)
        .await
        .unwrap()
        .unwrap();
    let tomb = TombstoneFile::from_bytes(&bytes).unwrap();
    assert_eq!(tomb.fault(Some(&signer().public_key())), None);
    assert_eq!(
        tomb.blocks.iter().map(|b| b.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(tomb.tombstone().rows, 1200);
    assert_eq!(tomb.tombstone().removed_by.rule, "tenants.t1.tiers.high");

    // Verification passes and names the deleted range as deleted by rule.
    let after = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(after.ok(), "{after:#?}");
    assert_eq!(
        after.blocks_deleted(),
        5,
        "four merged blocks and the small one: {after:#?}"
    );
    assert!(after
        .deleted_by_rule
        .iter()
        .any(|s| (s.from_seq, s.to_seq, s.tombstone_key.as_str()) == (0, 3, tomb_key.as_str())));

    // An altered tombstone is a fault, not a deletion by rule.
    let mut forged = tomb.clone();
    forged.blocks[1].merkle_root = "00".repeat(32);
    j.store
        .objects
        .lock()
        .unwrap()
        .insert(tomb_key.clone(), forged.to_bytes().into());
    let tampered = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(
        tampered
            .faults
            .iter()
            .any(|f| matches!(f, Fault::BadTombstone { seq: 0, .. })),
        "{tampered:#?}"
    );
    // Signed by another key: the structure holds, the signature does not.
    let other = MemorySigner::from_seed(b"someone else");
    assert!(tomb.fault(Some(&other.public_key())).is_some());
}

pub(super) async fn subject_ref_of(j: &MemIngest, record_id: &str) -> String {
    match j.index.get_pointer("t1", record_id).await.unwrap() {
        Some(IndexEntry::Indexed(p)) => p.subject_ref.unwrap(),
        other => panic!("{other:?}"),
    }
}

pub(super) fn hold(id: &str, scope: HoldScope) -> LegalHold {
    LegalHold {
        id: id.into(),
        tenant_id: "t1".into(),
        reason: "litigation".into(),
        placed_at: ts("2026-06-01T00:00:00Z"),
        scope,
    }
}

#[tokio::test]
async fn held_files_are_kept_past_expiry_and_go_once_the_hold_is_lifted() {
    let j = journal().await;
    // user_5: in the merged file only (the small one holds users 0 to 4).
    let subject = subject_ref_of(&j, "d-2026-03-15-00005").await;
    let held = policy(vec![
        hold(
            "case-17",
            HoldScope {
                subject_ref: Some(subject),
                ..HoldScope::default()
            },
        ),
        // A time range that misses the file holds nothing.
        hold(
            "case-18",
            HoldScope {
                from: Some(ts("2027-01-01T00:00:00Z")),
                ..HoldScope::default()
            },
        ),
    ]);
    let r = run(&j, &held, expiry_due(), false).await;
    let kept: Vec<_> = r.of("held").collect();
    assert_eq!(kept.len(), 1, "{r:#?}");
    assert_eq!(kept[0].file_key, MERGED);
    assert!(matches!(&kept[0].action, Action::Held { holds, .. } if holds == &["case-17"]));
    assert_eq!(entry(&j, MERGED).await.state, FileState::Live);
    assert!(j.store.object_status(MERGED).await.unwrap().is_some());

    // Years later, still held: the run re-decides it from its held list.
    let later = run(&j, &held, at(expiry_due(), 400 * DAY_MS), false).await;
    assert_eq!(later.of("held").count(), 1, "{later:#?}");

    let mut lifted = policy(vec![]);
    lifted.version = 2;
    let r = run(&j, &lifted, at(expiry_due(), 401 * DAY_MS), false).await;
    assert_eq!(r.of("expire").count(), 1, "{r:#?}");
    assert_eq!(entry(&j, MERGED).await.state, FileState::Deleted);
    let v = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
    assert!(v.ok(), "{v:#?}");
}

/// What a finished run leaves, whichever way it got there: per file its state, tombstone
/// and class, and the objects stored (ingest files' keys hold random block ids, so they are
/// named by their role).
async fn finished(j: &MemIngest) -> (Vec<String>, Vec<String>) {
    let mut entries = j.index.list_manifest("t1", "2026-03-15").await.unwrap();
    entries.extend(j.index.list_manifest("t1", "2026-03-16").await.unwrap());
    let role = |key: &str| {
        if key.contains("compacted-") {
            key.to_string()
        } else {
            format!("{}/<block>", key.rsplit_once('/').unwrap().0)
        }
    };
    let mut files: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} {:?} {:?} {:?}",
                role(&e.file_key),
                e.state,
                e.tombstone.as_deref().map(role),
                e.storage_class
            )
        })
        .collect();
    files.sort();
    let mut objects: Vec<String> = j
        .store
        .objects
        .lock()
        .unwrap()
        .keys()
        .filter(|k| !k.starts_with("retention/reports/"))
        .map(|k| role(k))
        .collect();
    objects.sort();
    (files, objects)
}

#[tokio::test]
async fn a_crash_at_any_step_is_finished_by_the_next_run_with_nothing_half_applied() {
    let p = policy(vec![]);
    let reference = journal().await;
    run(&reference, &p, archive_due(), false).await;
    run(&reference, &p, expiry_due(), false).await;
    let want = finished(&reference).await;

    for step in RetentionStep::ALL {
        let j = journal().await;
        let archive_step = matches!(step, RetentionStep::PointersMarked | RetentionStep::Moved);
        if !archive_step {
            run(&j, &p, archive_due(), false).await;
        }
        let when = if archive_step {
            archive_due()
        } else {
            expiry_due()
        };
        let signer = signer();
        let dying = Retention::new(
            &j.store,
            &j.index,
            &j.store,
            &signer,
            &p,
            RetentionConfig::default(),
            "dies",
        );
        dying.crash_after(step);
        let err = dying.run_tenant("t1", when, false).await.unwrap_err();
        assert!(
            matches!(
                err,
                RetentionError::Port(crate::ports::PortError::Injected(_))
            ),
            "{step:?}: {err}"
        );

        // Mid-way, every record is still findable or properly tombstoned: the chain verifies.
        let mid = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
        assert!(mid.ok(), "{step:?}: {mid:#?}");

        // The lease of the dead run lapses; the next run finishes.
        let next = at(when, 16 * 60_000);
        let r = run(&j, &p, next, false).await;
        assert_eq!(r.failed().count(), 0, "{step:?}: {r:#?}");
        if archive_step {
            run(&j, &p, expiry_due(), false).await;
        }
        let v = verify_stored_chain(&j.index, &j.store, "t1").await.unwrap();
        assert!(v.ok(), "{step:?}: {v:#?}");
        assert_eq!(v.blocks_deleted(), 5, "{step:?}");
        assert_eq!(finished(&j).await, want, "{step:?}");
    }
}

#[tokio::test]
async fn a_dry_run_lists_what_it_would_do_and_changes_nothing() {
    let j = journal().await;
    let p = policy(vec![]);
    let objects_before = j.store.objects.lock().unwrap().clone();
    let manifest_before = finished(&j).await;
    let r = run(&j, &p, expiry_due(), true).await;
    assert!(r.dry_run);
    let planned: Vec<_> = r.of("expire").collect();
    assert_eq!(planned.len(), 2, "{r:#?}");
    assert!(planned.iter().all(|f| f.outcome == Outcome::Planned));
    assert_eq!(r.report_key, None);
    assert_eq!(*j.store.objects.lock().unwrap(), objects_before);
    assert_eq!(finished(&j).await.0, manifest_before.0);
}

#[tokio::test]
async fn a_second_run_while_one_holds_the_tenant_backs_off() {
    let j = journal().await;
    let p = policy(vec![]);
    let now = archive_due();
    let until = at(now, 60_000);
    assert!(j
        .index
        .acquire_lease("retention#t1", "other", now, until)
        .await
        .unwrap());
    let r = run(&j, &p, now, false).await;
    assert!(r.busy, "{r:#?}");
    assert_eq!(entry(&j, MERGED).await.state, FileState::Live);
}

#[test]
fn an_invalid_policy_is_rejected_whole_with_the_field_and_the_reason() {
    let good = policy(vec![]);
    let base = serde_json::to_value(&good).unwrap();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"tenants": {"t1": {"default": {"days_hot": 3, "archive_class": "GLACIER"}}}}),
            "tenants.t1.default.days_hot",
            "outside 7..=36500",
        ),
        (
            json!({"tenants": {"t1": {"default": {"days_hot": 30, "archive_class": "GLACIER_IR"}}}}),
            "tenants.t1.default.archive_class",
            "unknown variant",
        ),
        (
            json!({"tenants": {"t1": {"default": {"days_hot": 400, "archive_class": "GLACIER", "expire_after_years": 1}}}}),
            "tenants.t1.default.days_hot",
            "deleted before it is archived",
        ),
        (
            json!({"tenants": {"t1": {"default": {"days_hot": 30, "archive_class": "GLACIER", "expire_after_years": 1}, "tiers": {"extreme": {"days_hot": 30, "archive_class": "GLACIER"}}}}}),
            "tenants.t1.tiers",
            "unknown variant",
        ),
        (
            json!({"tenants": {"bad tenant": {"default": {"days_hot": 30, "archive_class": "GLACIER"}}}}),
            "tenants.bad tenant",
            "not a tenant id",
        ),
        (
            json!({"legal_holds": [{"id": "h", "tenant_id": "t1", "reason": "r", "placed_at": "2026-01-01T00:00:00Z", "scope": {"subject_ref": "user_123"}}]}),
            "legal_holds[0].scope.subject_ref",
            "raw subject ids are never stored",
        ),
        (
            json!({"legal_holds": [
                {"id": "h", "tenant_id": "t1", "reason": "r", "placed_at": "2026-01-01T00:00:00Z"},
                {"id": "h", "tenant_id": "t1", "reason": "r", "placed_at": "2026-01-01T00:00:00Z"}]}),
            "legal_holds[1].id",
            "used by an earlier hold",
        ),
        (
            json!({"legal_holds": [{"id": "h", "tenant_id": "t1", "reason": "r", "placed_at": "2026-01-01T00:00:00Z", "scope": {"model_name": "m"}}]}),
            "legal_holds[0].scope.model_version",
            "needed with scope.model_name",
        ),
        (
            json!({"legal_holds": [{"id": "h", "tenant_id": "t1", "reason": "r", "placed_at": "2026-01-01T00:00:00Z", "scope": {"from": "2027-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}]}),
            "legal_holds[0].scope.to",
            "is not after",
        ),
        (
            json!({"retention": "forever"}),
            "retention",
            "unknown field `retention`",
        ),
        (json!({"format": 2}), "format", "unknown format 2"),
    ];
    for (patch, path, reason) in cases {
        let mut doc = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            doc[k] = v.clone();
        }
        let err = RetentionPolicy::parse(doc.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.path, path, "{err}");
        assert!(err.reason.contains(reason), "{path}: {err}");
    }
    // The same document, unpatched, is fine.
    assert_eq!(RetentionPolicy::parse(&good.to_bytes()).unwrap(), good);
}

#[test]
fn a_file_of_several_tiers_is_governed_by_the_rule_that_keeps_it_longest() {
    let p = policy(vec![]);
    let tiers = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let g = p.governing("t1", Some(&tiers(&["low"])));
    assert_eq!(
        (g.path.as_str(), g.rule.days_hot, g.rule.expire_after_years),
        ("tenants.t1.default", 30, Some(1))
    );
    let g = p.governing("t1", Some(&tiers(&["high", "low"])));
    assert_eq!(
        (g.path.as_str(), g.rule.days_hot, g.rule.expire_after_years),
        ("tenants.t1.tiers.high", 90, Some(2))
    );
    // Unknown tiers: the strictest of the tenant's rules.
    let g = p.governing("t1", None);
    assert_eq!((g.rule.days_hot, g.rule.expire_after_years), (90, Some(2)));
    // A tenant without rules of its own gets the document's default.
    let g = p.governing("t2", Some(&tiers(&["high"])));
    assert_eq!((g.path.as_str(), g.rule.days_hot), ("default.default", 7));
}

#[test]
fn years_are_added_on_the_calendar() {
    let leap = ts("2028-02-29T10:00:00Z");
    assert_eq!(leap.plus_years(1), Some(ts("2029-02-28T10:00:00Z")));
    assert_eq!(
        ts("2026-03-15T10:00:00Z").plus_years(7),
        Some(ts("2033-03-15T10:00:00Z"))
    );
}

#[tokio::test]
async fn policy_versions_are_published_once_each_and_holds_name_no_raw_subject() {
    let store = MemoryStore::default();
    let master = MasterKey::from_bytes(vec![9u8; 32]).unwrap();
    assert!(current_policy(&store).await.unwrap().is_none());
    let v1 = policy(vec![]);
    assert_eq!(
        publish_policy(&store, &v1).await.unwrap(),
        "retention/policy/v0000000001.json"
    );
    // Not the successor of the version in force.
    assert!(matches!(
        publish_policy(&store, &v1).await,
        Err(PolicyStoreError::Version { current: 1, got: 1 })
    ));
    // Invalid: rejected whole, nothing stored.
    let mut bad = v1.clone();
    bad.version = 2;
    bad.default.default.days_hot = 1;
    assert!(matches!(
        publish_policy(&store, &bad).await,
        Err(PolicyStoreError::Rejected(PolicyError { ref path, .. })) if path == "default.default.days_hot"
    ));
    assert_eq!(current_policy(&store).await.unwrap().unwrap().1, v1);

    let request = HoldRequest {
        id: "case-9".into(),
        tenant_id: "t1".into(),
        reason: "regulator inquiry".into(),
        subject_id: Some("user_123".into()),
        ..HoldRequest::default()
    };
    let v2 = with_hold(&v1, &request, &master, ts("2026-06-01T00:00:00Z")).unwrap();
    publish_policy(&store, &v2).await.unwrap();
    let (key, in_force) = current_policy(&store).await.unwrap().unwrap();
    assert_eq!(
        (key.as_str(), in_force.version),
        ("retention/policy/v0000000002.json", 2)
    );
    let stored = String::from_utf8(
        CheckpointStore::get(&store, &key)
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(!stored.contains("user_123"), "{stored}");
    assert_eq!(
        in_force.legal_holds[0].scope.subject_ref.as_deref(),
        Some(master.tenant_keys("t1").subject_ref("user_123").as_str())
    );
    // A second hold with the same id is refused.
    assert!(with_hold(&in_force, &request, &master, ts("2026-06-02T00:00:00Z")).is_err());

    let v3 = without_hold(&in_force, "case-9", ts("2026-07-01T00:00:00Z")).unwrap();
    publish_policy(&store, &v3).await.unwrap();
    assert!(current_policy(&store)
        .await
        .unwrap()
        .unwrap()
        .1
        .legal_holds
        .is_empty());
    assert!(matches!(
        without_hold(&v3, "case-9", ts("2026-07-02T00:00:00Z")),
        Err(PolicyStoreError::UnknownHold(_))
    ));
    // Every version stays readable.
    assert_eq!(
        CheckpointStore::list_keys(&store, policy_store::POLICY_PREFIX)
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn restores_readers_ask_for_are_followed_until_the_file_is_archived_only_again() {
    use crate::ports::ArchiveStore;
    use crate::replay::{Finder, Lookup, RowReader};
    use crate::retention::restores::restore_marker_key;

    let j = journal().await;
    let p = policy(vec![]);
    run(&j, &p, archive_due(), false).await;
    let marker = restore_marker_key(MERGED);

    // A reader meets the archived file: replay asks for a restore and leaves a marker.
    let finder = Finder::new(&j.store, &j.index);
    let mut reader = RowReader::new(&j.store);
    let lookup = finder
        .by_id(&mut reader, "t1", "d-2026-03-15-00007", archive_due())
        .await
        .unwrap();
    assert!(matches!(lookup, Lookup::Archived(_)), "{lookup:?}");
    assert!(ObjectStore::get_object(&j.store, &marker)
        .await
        .unwrap()
        .is_some());

    let day = |n: i64| at(archive_due(), n * DAY_MS);
    let r = run(&j, &p, day(1), false).await;
    assert_eq!(r.of("restored").count(), 1, "restoring: {r:#?}");
    j.store.finish_restore(MERGED);
    let r = run(&j, &p, day(2), false).await;
    assert!(
        matches!(
            &r.of("restored").next().unwrap().action,
            Action::Restored { expires: Some(_) }
        ),
        "{r:#?}"
    );
    // The restored copy expires: archived only again, the marker goes.
    j.store.archive(MERGED, "DEEP_ARCHIVE");
    let r = run(&j, &p, day(9), false).await;
    assert_eq!(r.of("retiered").count(), 1, "{r:#?}");
    assert!(ObjectStore::get_object(&j.store, &marker)
        .await
        .unwrap()
        .is_none());

    // Restored for good (copied into STANDARD by hand): moved back to its class.
    crate::retention::restores::request_restore_tracked(&j.store, MERGED, 7, day(10))
        .await
        .unwrap();
    j.store.set_storage_class(MERGED, "STANDARD").await.unwrap();
    let r = run(&j, &p, day(11), false).await;
    assert_eq!(r.of("retiered").count(), 1, "{r:#?}");
    let status = j.store.object_status(MERGED).await.unwrap().unwrap();
    assert_eq!(status.storage_class, "DEEP_ARCHIVE");
    assert!(ObjectStore::get_object(&j.store, &marker)
        .await
        .unwrap()
        .is_none());
    let r = run(&j, &p, day(12), false).await;
    assert_eq!(
        r.of("retiered").count() + r.of("restored").count(),
        0,
        "{r:#?}"
    );
}
