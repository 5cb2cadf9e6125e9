//! The verify operation over the in-memory ports: a journal ingested block by block and
//! checkpointed, then tampered with in each way DESIGN §4 names, each fault named precisely.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::checkpoint::{
    checkpoint_key, write_checkpoint, CheckpointPolicy, MemorySigner, SignedCheckpoint,
    WriteOutcome,
};
use crate::columnar::{self, JournalRow, WriterConfig};
use crate::ingest::{Ingest, IngestConfig, Message};
use crate::integrity::{BlockHeader, ChainHead};
use crate::keys::MasterKey;
use crate::memory::{MemoryIndex, MemoryRejects, MemoryStore, MemorySubjectKeys};
use crate::ports::{JournalIndex, ObjectStore, PortError};
use crate::timestamp::Timestamp;

type MemIngest = Ingest<MemoryStore, MemoryIndex, MemorySubjectKeys, MemoryRejects>;

const T: &str = "t1";
const BLOCKS: u32 = 6;
const PER_BLOCK: u32 = 8;

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

/// Block `b` is ingested at 2026-03-16T00:b0 (its records occurred in hour 10+b of the 15th)
/// and checkpointed, if it is, five minutes later.
fn ingested_at(b: u32) -> Timestamp {
    at(&format!("2026-03-16T00:{:02}:00Z", b * 10))
}

fn checkpointed_at(b: u32) -> Timestamp {
    at(&format!("2026-03-16T00:{:02}:00Z", b * 10 + 5))
}

/// Verification time: five minutes after the last checkpoint.
fn now() -> Timestamp {
    at("2026-03-16T01:00:00Z")
}

fn decision(b: u32, i: u32) -> Value {
    json!({"schema_version":1,"kind":"decision","decision_id":format!("d-{b}-{i:03}"),
      "tenant_id":T,"occurred_at":format!("2026-03-15T{:02}:{i:02}:00.000Z", 10 + b),
      "subject":{"id":format!("user_{}", i % 3)},
      "model":{"name":"credit-risk","version":"3.2.0","artifact_sha256":"9f2c".repeat(16)},
      "features":{"credit_score":600 + i,"dti_ratio":0.35},
      "outputs":[{"label":"approve","score":0.92},{"label":"deny","score":0.08}],
      "decision":"approve","confidence":0.92,"threshold":0.75,"risk_tier":"high"})
}

struct Env {
    j: MemIngest,
    signer: MemorySigner,
}

impl Env {
    /// `BLOCKS` blocks of `PER_BLOCK` records; a checkpoint after each block in `checkpoints`.
    async fn new(checkpoints: &[u32]) -> Self {
        let j = Ingest::new(
            MemoryStore::default(),
            MemoryIndex::default(),
            MemorySubjectKeys::default(),
            MemoryRejects::default(),
            MasterKey::from_bytes(vec![5u8; 32]).unwrap(),
            IngestConfig::default(),
        );
        let signer = MemorySigner::from_seed(b"audit tests");
        for b in 0..BLOCKS {
            let messages: Vec<Message> = (0..PER_BLOCK)
                .map(|i| Message {
                    message_id: format!("m{b}-{i}"),
                    body: decision(b, i).to_string().into_bytes(),
                })
                .collect();
            let out = j.ingest_batch(&messages, ingested_at(b)).await;
            assert!(out.failed.is_empty(), "{out:?}");
            if checkpoints.contains(&b) {
                let out = write_checkpoint(&j.index, &j.store, &signer, T, checkpointed_at(b))
                    .await
                    .unwrap();
                assert!(matches!(out, WriteOutcome::Written { .. }), "{out:?}");
            }
        }
        Self { j, signer }
    }

    /// Checkpoints after every block.
    async fn every() -> Self {
        Self::new(&(0..BLOCKS).collect::<Vec<_>>()).await
    }

    async fn audit_with<X: ChainSource>(&self, index: &X, scope: &VerifyScope) -> AuditReport {
        self.audit_at(index, scope, now()).await
    }

    async fn audit_at<X: ChainSource>(
        &self,
        index: &X,
        scope: &VerifyScope,
        now: Timestamp,
    ) -> AuditReport {
        let report = audit(
            index,
            &self.j.store,
            &self.j.store,
            scope,
            &self.signer.public_key_der(),
            &CheckpointPolicy::default(),
            now,
        )
        .await
        .unwrap();
        // The report is what the function returns as JSON.
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(
            serde_json::from_str::<AuditReport>(&json).unwrap(),
            report,
            "{json}"
        );
        assert_eq!(report.ok, report.faults.is_empty());
        for f in &report.faults {
            assert!(!f.message.contains('\n'), "one sentence: {f}");
        }
        report
    }

    async fn audit(&self) -> AuditReport {
        self.audit_with(&self.j.index, &VerifyScope::tenant(T))
            .await
    }

    async fn header(&self, seq: u64) -> BlockHeader {
        self.j
            .index
            .list_blocks_between(T, seq, seq)
            .await
            .unwrap()
            .pop()
            .unwrap()
    }

    async fn rows(&self, seq: u64) -> Vec<JournalRow> {
        let h = self.header(seq).await;
        let bytes = self.j.store.get_object(&h.file_key).await.unwrap().unwrap();
        columnar::decode_file(bytes).unwrap()
    }

    /// Rewrites block `seq`'s file with `edit` applied to its rows (stored leaf hashes kept).
    async fn rewrite(&self, seq: u64, edit: impl FnOnce(&mut Vec<JournalRow>)) -> BlockHeader {
        self.rewrite_with(seq, &WriterConfig::default(), edit).await
    }

    async fn rewrite_with(
        &self,
        seq: u64,
        writer: &WriterConfig,
        edit: impl FnOnce(&mut Vec<JournalRow>),
    ) -> BlockHeader {
        let h = self.header(seq).await;
        let mut rows = self.rows(seq).await;
        edit(&mut rows);
        let metadata = [
            ("dj.tenant_id".to_string(), T.to_string()),
            ("dj.block_id".to_string(), h.block_id.clone()),
        ];
        let file = columnar::encode_file(&rows, writer, &metadata).unwrap();
        self.put(&h.file_key, file.bytes);
        h
    }

    fn put(&self, key: &str, body: Bytes) {
        self.j
            .store
            .objects
            .lock()
            .unwrap()
            .insert(key.to_string(), body);
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        self.j.store.objects.lock().unwrap().get(key).cloned()
    }

    fn delete(&self, key: &str) {
        assert!(self.j.store.objects.lock().unwrap().remove(key).is_some());
    }
}

fn kinds(r: &AuditReport) -> Vec<&str> {
    r.faults.iter().map(|f| f.kind.as_str()).collect()
}

fn only<'a>(r: &'a AuditReport, kind: &'a str) -> &'a NamedFault {
    let found: Vec<&NamedFault> = r.of_kind(kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in {:#?}", r.faults);
    found[0]
}

/// The chain store as an attacker with write access to the ledger table left it: blocks
/// deleted or replaced, the head rewritten. Everything else is the ingest's index.
struct TamperedIndex<'a> {
    inner: &'a MemoryIndex,
    deleted: BTreeSet<u64>,
    replaced: BTreeMap<u64, BlockHeader>,
}

impl<'a> TamperedIndex<'a> {
    fn new(inner: &'a MemoryIndex) -> Self {
        Self {
            inner,
            deleted: BTreeSet::new(),
            replaced: BTreeMap::new(),
        }
    }

    fn delete(mut self, seqs: impl IntoIterator<Item = u64>) -> Self {
        self.deleted.extend(seqs);
        self
    }

    fn replace(mut self, header: BlockHeader) -> Self {
        self.replaced.insert(header.seq, header);
        self
    }

    fn tamper(&self, blocks: Vec<BlockHeader>) -> Vec<BlockHeader> {
        blocks
            .into_iter()
            .filter(|h| !self.deleted.contains(&h.seq))
            .map(|h| self.replaced.get(&h.seq).cloned().unwrap_or(h))
            .collect()
    }
}

impl crate::integrity::stored::MovedFiles for TamperedIndex<'_> {
    async fn file_entry(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> Result<Option<crate::ports::ManifestEntry>, PortError> {
        self.inner.file_entry(tenant_id, file_key).await
    }
}

impl ChainSource for TamperedIndex<'_> {
    async fn head(&self, chain_id: &str) -> Result<Option<ChainHead>, PortError> {
        self.inner.chain_head(chain_id).await
    }
    async fn blocks(&self, chain_id: &str) -> Result<Vec<BlockHeader>, PortError> {
        Ok(self.tamper(self.inner.list_blocks(chain_id).await?))
    }
    async fn blocks_between(
        &self,
        chain_id: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<BlockHeader>, PortError> {
        let blocks = self.inner.list_blocks_between(chain_id, from, to).await?;
        Ok(self.tamper(blocks))
    }
}

#[tokio::test]
async fn an_intact_journal_verifies_clean_and_is_covered_up_to_the_newest_checkpoint() {
    let env = Env::every().await;
    let r = env.audit().await;
    assert!(r.ok, "{:#?}", r.faults);
    assert!(r.chain_faults.is_empty() && r.checkpoint_faults.is_empty());
    assert_eq!(r.blocks_total, u64::from(BLOCKS));
    assert_eq!(r.blocks_checked, u64::from(BLOCKS));
    assert_eq!(r.records_checked, u64::from(BLOCKS * PER_BLOCK));
    assert_eq!(
        r.checked,
        vec![SeqSpan {
            from_seq: 0,
            to_seq: 5
        }]
    );
    assert_eq!(r.head_seq, Some(5));
    assert_eq!(r.covered_seq, Some(5));
    assert!(r.unvouched.is_empty());
    assert_eq!((r.checkpoints_checked, r.valid_signatures), (6, 6));
    assert_eq!(r.newest_checkpoint.map(|c| (c.number, c.seq)), Some((5, 5)));

    // Checkpoints at seqs 1 and 5 only: 0..=4 are vouched for through the links.
    let env = Env::new(&[1, 5]).await;
    let r = env.audit().await;
    assert!(r.ok, "{:#?}", r.faults);
    assert_eq!(r.covered_seq, Some(5));
}

#[tokio::test]
async fn an_altered_row_is_named_by_seq_leaf_and_record() {
    let env = Env::every().await;
    let mut altered_id = String::new();
    let h = env
        .rewrite(2, |rows| {
            rows[3].record.decision = Some("deny".into());
            altered_id = rows[3].record.record_id().to_string();
        })
        .await;
    let r = env.audit().await;
    assert!(!r.ok);
    assert_eq!(kinds(&r), [kind::ALTERED_ROW, kind::FILE_CHANGED], "{r:#?}");
    let f = only(&r, kind::ALTERED_ROW);
    assert_eq!(f.seq, Some(2));
    assert_eq!(f.leaf_index, Some(3));
    assert_eq!(f.record_id.as_deref(), Some(altered_id.as_str()));
    assert_eq!(f.block_id.as_deref(), Some(h.block_id.as_str()));
    assert_eq!(f.file_key.as_deref(), Some(h.file_key.as_str()));
    assert!(f.message.contains("block 2") && f.message.contains(&altered_id));
    assert_eq!(only(&r, kind::FILE_CHANGED).seq, Some(2));
    // The chain itself is intact and still covered.
    assert_eq!(r.covered_seq, Some(5));
}

#[tokio::test]
async fn missing_rows_are_named_by_leaf_and_runs_are_grouped() {
    let env = Env::every().await;
    env.rewrite(1, |rows| {
        rows.remove(3);
    })
    .await;
    env.rewrite(4, |rows| {
        rows.drain(2..5);
    })
    .await;
    let r = env.audit().await;
    let missing: Vec<(Option<u64>, Option<u64>, Option<u64>)> = r
        .of_kind(kind::MISSING_ROWS)
        .map(|f| (f.seq, f.leaf_index, f.to_leaf_index))
        .collect();
    assert_eq!(
        missing,
        [(Some(1), Some(3), Some(3)), (Some(4), Some(2), Some(4))]
    );
    assert_eq!(r.of_kind(kind::FILE_CHANGED).count(), 2);
    assert_eq!(r.faults.len(), 4, "{:#?}", r.faults);
    assert!(r.faults[0].message.contains("leaf 3"), "{}", r.faults[0]);
}

#[tokio::test]
async fn reordered_rows_are_named_and_permuted_leaf_indices_break_the_root() {
    let env = Env::every().await;
    env.rewrite(3, |rows| rows.swap(1, 4)).await;
    let r = env.audit().await;
    assert_eq!(
        kinds(&r),
        [kind::REORDERED_ROWS, kind::FILE_CHANGED],
        "{r:#?}"
    );
    let f = only(&r, kind::REORDERED_ROWS);
    assert_eq!(f.seq, Some(3));
    // Physical order 0, 4, 2, ...: position 2 holds leaf 2, the first out of place.
    assert_eq!(f.leaf_index, Some(2));

    // Rows swapped with their leaf indices rewritten to look in order: the root breaks.
    let env = Env::every().await;
    env.rewrite(3, |rows| {
        rows.swap(1, 4);
        rows[1].leaf_index = 1;
        rows[4].leaf_index = 4;
    })
    .await;
    let r = env.audit().await;
    assert_eq!(
        kinds(&r),
        [kind::ROOT_MISMATCH, kind::FILE_CHANGED],
        "{r:#?}"
    );
    assert_eq!(only(&r, kind::ROOT_MISMATCH).seq, Some(3));
}

#[tokio::test]
async fn a_substituted_file_is_one_fault_naming_the_block_it_came_from() {
    let env = Env::every().await;
    let victim = env.header(1).await;
    let source = env.header(4).await;
    env.put(&victim.file_key, env.get(&source.file_key).unwrap());
    let r = env.audit().await;
    assert_eq!(kinds(&r), [kind::SUBSTITUTED_FILE], "{r:#?}");
    let f = &r.faults[0];
    assert_eq!(f.seq, Some(1));
    assert_eq!(f.file_key.as_deref(), Some(victim.file_key.as_str()));
    assert!(
        f.message
            .contains(&format!("block 4 ({})", source.block_id)),
        "{f}"
    );
    // Every underlying fault is kept: a foreign and a missing row per row, the changed bytes.
    let foreign = r
        .chain_faults
        .iter()
        .filter(|f| matches!(f, Fault::ForeignRow { seq: 1, .. }))
        .count();
    assert_eq!(foreign, PER_BLOCK as usize);
    assert!(r
        .chain_faults
        .iter()
        .any(|f| matches!(f, Fault::FileChanged { seq: 1, .. })));
}

#[tokio::test]
async fn missing_unreadable_and_rewritten_files_are_named() {
    let env = Env::every().await;
    let gone = env.header(0).await;
    env.delete(&gone.file_key);
    let garbage = env.header(2).await;
    env.put(&garbage.file_key, Bytes::from_static(b"not parquet"));
    // Same rows, re-encoded with other settings: nothing to blame on a row, but not the file.
    let small_groups = WriterConfig {
        max_row_group_size: 3,
        ..WriterConfig::default()
    };
    env.rewrite_with(5, &small_groups, |_| {}).await;
    let r = env.audit().await;
    assert_eq!(
        kinds(&r),
        [
            kind::MISSING_FILE,
            kind::UNREADABLE_FILE,
            kind::FILE_CHANGED,
            kind::FILE_CHANGED
        ],
        "{r:#?}"
    );
    assert_eq!(r.faults[0].seq, Some(0));
    assert_eq!(r.faults[1].seq, Some(2));
    assert_eq!(r.faults[3].seq, Some(5));
    assert_eq!(r.records_checked, u64::from(4 * PER_BLOCK));
}

#[tokio::test]
async fn gaps_of_one_and_of_three_blocks_are_named_and_break_coverage() {
    let env = Env::new(&[1, 5]).await;
    let one = TamperedIndex::new(&env.j.index).delete([3]);
    let r = env.audit_with(&one, &VerifyScope::tenant(T)).await;
    let f = only(&r, kind::MISSING_BLOCKS);
    assert_eq!((f.seq, f.to_seq), (Some(3), Some(3)));
    assert!(f.message.contains("block 3 is missing"), "{f}");
    // Block 2 is no longer linked to the checkpoint at seq 5; the one at seq 1 still holds.
    assert_eq!(
        r.unvouched,
        [SeqSpan {
            from_seq: 2,
            to_seq: 3
        }]
    );
    assert_eq!(r.covered_seq, Some(1));
    assert_eq!(kinds(&r), [kind::MISSING_BLOCKS, kind::UNVOUCHED_BLOCKS]);
    assert_eq!(r.blocks_checked, 5);

    let three = TamperedIndex::new(&env.j.index).delete([2, 3, 4]);
    let r = env.audit_with(&three, &VerifyScope::tenant(T)).await;
    let f = only(&r, kind::MISSING_BLOCKS);
    assert_eq!((f.seq, f.to_seq), (Some(2), Some(4)));
    assert!(f.message.contains("blocks 2..=4 (3 blocks)"), "{f}");
    assert_eq!(r.covered_seq, Some(1));

    // The newest blocks gone (head still names seq 5): a gap up to the head, and the newest
    // checkpoint signs a block that is no longer stored.
    let tail = TamperedIndex::new(&env.j.index).delete([4, 5]);
    let r = env.audit_with(&tail, &VerifyScope::tenant(T)).await;
    let f = only(&r, kind::MISSING_BLOCKS);
    assert_eq!((f.seq, f.to_seq), (Some(4), Some(5)));
    assert!(f.message.contains("up to the head"), "{f}");

    // From the start.
    let first = TamperedIndex::new(&env.j.index).delete([0]);
    let r = env.audit_with(&first, &VerifyScope::tenant(T)).await;
    let f = only(&r, kind::MISSING_BLOCKS);
    assert_eq!((f.seq, f.to_seq), (Some(0), Some(0)));
    assert_eq!(r.covered_seq, None);
}

#[tokio::test]
async fn an_altered_block_header_is_named_by_the_block_not_only_the_link() {
    let env = Env::new(&[1, 5]).await;
    let mut h = env.header(2).await;
    h.merkle_root = "00".repeat(32);
    let ix = TamperedIndex::new(&env.j.index).replace(h.clone());
    let r = env.audit_with(&ix, &VerifyScope::tenant(T)).await;
    assert_eq!(
        kinds(&r),
        [
            kind::ALTERED_BLOCK,
            kind::ROOT_MISMATCH,
            kind::UNVOUCHED_BLOCKS,
            // Checkpoint 1 listed block 2 as it was.
            kind::LISTED_BLOCK_MISMATCH,
        ],
        "{r:#?}"
    );
    assert_eq!(only(&r, kind::LISTED_BLOCK_MISMATCH).seq, Some(2));
    let f = only(&r, kind::ALTERED_BLOCK);
    assert_eq!(f.seq, Some(2));
    assert_eq!(f.block_id.as_deref(), Some(h.block_id.as_str()));
    assert!(f.message.starts_with("block 2 "), "{f}");
    assert_eq!(only(&r, kind::ROOT_MISMATCH).seq, Some(2));
    assert_eq!(
        r.unvouched,
        [SeqSpan {
            from_seq: 2,
            to_seq: 2
        }]
    );
    assert_eq!(r.covered_seq, Some(1));

    // Its prev_hash rewritten: both links around it break; one block is named.
    let mut h = env.header(3).await;
    h.prev_hash = "11".repeat(32);
    let ix = TamperedIndex::new(&env.j.index).replace(h);
    let r = env.audit_with(&ix, &VerifyScope::tenant(T)).await;
    assert_eq!(r.chain_faults.len(), 2, "{:#?}", r.chain_faults);
    let f = only(&r, kind::ALTERED_BLOCK);
    assert_eq!(f.seq, Some(3));

    // The newest block altered: the head and the checkpoint that signed it disagree with it.
    let mut h = env.header(5).await;
    h.count += 1;
    let ix = TamperedIndex::new(&env.j.index).replace(h);
    let r = env.audit_with(&ix, &VerifyScope::tenant(T)).await;
    assert_eq!(only(&r, kind::ALTERED_BLOCK).seq, Some(5));
    assert_eq!(only(&r, kind::CHAIN_MISMATCH).seq, Some(5));
    assert_eq!(
        only(&r, kind::MISSING_ROWS).leaf_index,
        Some(PER_BLOCK.into())
    );
    // Nothing vouches for the chain above checkpoint 0 (seq 1) any more.
    assert_eq!(r.covered_seq, Some(1));
}

#[tokio::test]
async fn bad_and_missing_checkpoints_are_named_by_number() {
    let env = Env::every().await;
    // One byte of checkpoint 2's signature flipped.
    let key = checkpoint_key(T, 2);
    let mut signed = SignedCheckpoint::from_bytes(&env.get(&key).unwrap()).unwrap();
    let mut der = signed.signature_der().unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    signed = SignedCheckpoint::new(signed.checkpoint, &der, signed.block_hashes);
    env.put(&key, Bytes::from(signed.to_bytes()));
    // Checkpoint 4 deleted.
    env.delete(&checkpoint_key(T, 4));
    let r = env.audit().await;
    assert_eq!(
        kinds(&r),
        [kind::BAD_SIGNATURE, kind::MISSING_CHECKPOINTS],
        "{r:#?}"
    );
    let f = only(&r, kind::BAD_SIGNATURE);
    assert_eq!((f.checkpoint, f.seq), (Some(2), Some(2)));
    assert!(f.message.contains("checkpoint 2"), "{f}");
    assert_eq!(only(&r, kind::MISSING_CHECKPOINTS).checkpoint, Some(4));
    assert_eq!(r.valid_signatures, 4);
    // Blocks are still each vouched for by a valid checkpoint.
    assert_eq!(r.covered_seq, Some(5));

    // A chain nobody checkpointed, and one whose newest checkpoint is too old.
    let env = Env::new(&[]).await;
    let r = env.audit().await;
    assert_eq!(kinds(&r), [kind::NO_CHECKPOINT]);
    assert_eq!(r.faults[0].seq, Some(5));
    assert_eq!(r.covered_seq, None);
    let env = Env::new(&[0]).await;
    let later = at("2026-03-16T03:00:00Z");
    let r = env
        .audit_at(&env.j.index, &VerifyScope::tenant(T), later)
        .await;
    assert_eq!(kinds(&r), [kind::STALE_CHECKPOINT]);
    assert_eq!(r.faults[0].checkpoint, Some(0));
    assert_eq!(r.covered_seq, Some(0));
}

#[tokio::test]
async fn a_time_range_reads_only_overlapping_blocks_but_checks_every_link() {
    let env = Env::new(&[5]).await;
    // Records of block b occurred in hour 10+b: 13:00..15:00 holds blocks 3 and 4.
    let scope = VerifyScope::range(
        T,
        Some(at("2026-03-15T13:00:00Z")),
        Some(at("2026-03-15T15:00:00Z")),
    );
    let r = env.audit_with(&env.j.index, &scope).await;
    assert!(r.ok, "{:#?}", r.faults);
    assert_eq!(r.blocks_checked, 2);
    assert_eq!(r.records_checked, u64::from(2 * PER_BLOCK));
    assert_eq!(
        r.checked,
        [SeqSpan {
            from_seq: 3,
            to_seq: 4
        }]
    );
    assert_eq!((r.from, r.to), (scope.from, scope.to));

    // A row altered outside the range is not read ...
    env.rewrite(0, |rows| rows[0].record.decision = Some("deny".into()))
        .await;
    let r = env.audit_with(&env.j.index, &scope).await;
    assert!(r.ok, "{:#?}", r.faults);
    // ... but a block deleted outside it is still a gap, and it cuts coverage below it.
    let ix = TamperedIndex::new(&env.j.index).delete([1]);
    let r = env.audit_with(&ix, &scope).await;
    assert_eq!(r.blocks_checked, 2);
    assert_eq!(kinds(&r), [kind::MISSING_BLOCKS, kind::UNVOUCHED_BLOCKS]);
    assert_eq!(only(&r, kind::MISSING_BLOCKS).seq, Some(1));
    assert_eq!(
        r.unvouched,
        [SeqSpan {
            from_seq: 0,
            to_seq: 1
        }]
    );
    assert_eq!(r.covered_seq, None);
    // The range itself is still linked to the checkpoint.
    assert!(r.unvouched.iter().all(|s| !s.contains(3) && !s.contains(4)));

    // The whole tenant finds the altered row too.
    let r = env.audit().await;
    assert_eq!(only(&r, kind::ALTERED_ROW).seq, Some(0));

    // Open ends, and an empty range refused.
    let r = env
        .audit_with(
            &env.j.index,
            &VerifyScope::range(T, Some(at("2026-03-15T14:05:00Z")), None),
        )
        .await;
    assert_eq!(
        r.checked,
        [SeqSpan {
            from_seq: 4,
            to_seq: 5
        }]
    );
    let err = verify_scope(
        &env.j.index,
        &env.j.store,
        &env.j.store,
        &VerifyScope::range(T, scope.to, scope.from),
        &env.signer.public_key_der(),
        &CheckpointPolicy::default(),
        now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AuditError::EmptyRange { .. }), "{err}");
}

#[tokio::test]
async fn a_block_appended_while_verifying_is_not_a_fault() {
    // The head is read before the listing; an append in between must not look like a block
    // written beyond the head, nor one missing below it.
    let env = Env::every().await;
    let head = env.j.index.chain_head(T).await.unwrap().unwrap();
    // Simulate: the snapshot's first head read saw seq 5; the listing then sees seq 6.
    let mut next = env.header(5).await;
    next.seq = 6;
    next.prev_hash = head.block_hash.clone();
    next.block_id = "NEXT".into();
    let ix = TamperedIndexAppend {
        inner: &env.j.index,
        reads: AtomicU32::new(0),
        next: next.clone(),
    };
    let r = env.audit_with(&ix, &VerifyScope::tenant(T)).await;
    assert_eq!(r.head_seq, Some(6));
    assert!(
        r.chain_faults.iter().all(|f| !matches!(
            f,
            Fault::BlockAfterHead { .. } | Fault::MissingBlocks { .. }
        )),
        "{:#?}",
        r.chain_faults
    );
}

/// Head reads after the first see one more block, which the listing shows too.
struct TamperedIndexAppend<'a> {
    inner: &'a MemoryIndex,
    reads: AtomicU32,
    next: BlockHeader,
}

impl crate::integrity::stored::MovedFiles for TamperedIndexAppend<'_> {
    async fn file_entry(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> Result<Option<crate::ports::ManifestEntry>, PortError> {
        self.inner.file_entry(tenant_id, file_key).await
    }
}

impl ChainSource for TamperedIndexAppend<'_> {
    async fn head(&self, chain_id: &str) -> Result<Option<ChainHead>, PortError> {
        if self.reads.fetch_add(1, Ordering::SeqCst) == 0 {
            self.inner.chain_head(chain_id).await
        } else {
            Ok(Some(ChainHead::of(&self.next)))
        }
    }
    async fn blocks(&self, chain_id: &str) -> Result<Vec<BlockHeader>, PortError> {
        let mut blocks = self.inner.list_blocks(chain_id).await?;
        blocks.push(self.next.clone());
        Ok(blocks)
    }
    async fn blocks_between(
        &self,
        chain_id: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<BlockHeader>, PortError> {
        let mut blocks = self.inner.list_blocks_between(chain_id, from, to).await?;
        if (from..=to).contains(&self.next.seq) {
            blocks.push(self.next.clone());
        }
        Ok(blocks)
    }
}
