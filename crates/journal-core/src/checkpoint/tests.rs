//! Writer and verifier over the in-memory ports: every fault, each deletion pattern.

use bytes::Bytes;

use super::*;
use crate::integrity::chain::{next_link, HEADER_VERSION};
use crate::integrity::{BlockHeader, ChainHead};
use crate::layout;
use crate::memory::{MemoryIndex, MemoryStore};
use crate::ports::{AppendOutcome, FileState, JournalIndex, ManifestEntry, PortError};
use crate::timestamp::Timestamp;

const T: &str = "bank_1";
const HOUR: i64 = 60;

/// Minutes after 2026-03-15T00:00:00Z.
fn at(minutes: i64) -> Timestamp {
    Timestamp::from_millis(
        Timestamp::parse("2026-03-15T00:00:00Z").unwrap().millis() + minutes * 60_000,
    )
    .unwrap()
}

struct Env {
    index: MemoryIndex,
    store: MemoryStore,
    signer: MemorySigner,
}

impl Env {
    fn new() -> Self {
        Self {
            index: MemoryIndex::default(),
            store: MemoryStore::default(),
            signer: MemorySigner::from_seed(b"checkpoint tests"),
        }
    }

    async fn append(&self, minutes: i64) -> BlockHeader {
        let head = self.index.chain_head(T).await.unwrap();
        let (seq, prev_hash) = next_link(head.as_ref());
        let block_id = format!("B{seq:04}");
        let sealed_at = at(minutes);
        let file_key = layout::block_file_key(T, sealed_at, &block_id);
        let entry = ManifestEntry {
            tenant_id: T.into(),
            file_key: file_key.clone(),
            block_id: block_id.clone(),
            state: FileState::Pending,
            seq: None,
            rows: 2,
            size: 100,
            sha256: "ab".repeat(32),
            first_occurred_at: sealed_at,
            last_occurred_at: sealed_at,
            created_at: sealed_at,
            last_seq: None,
            merged_from: Vec::new(),
            compacted_into: None,
            delete_after: None,
            risk_tiers: Vec::new(),
            storage_class: None,
            tombstone: None,
            erasure_receipts: Vec::new(),
        };
        assert!(self.index.put_manifest_pending(&entry).await.unwrap());
        let header = BlockHeader {
            version: HEADER_VERSION,
            chain_id: T.into(),
            tenant_id: T.into(),
            seq,
            block_id,
            prev_hash,
            merkle_root: "cd".repeat(32),
            count: 2,
            first_occurred_at: sealed_at,
            last_occurred_at: sealed_at,
            sealed_at,
            file_key,
            file_sha256: "ab".repeat(32),
        };
        assert_eq!(
            self.index.append_block(&header).await.unwrap(),
            AppendOutcome::Appended
        );
        header
    }

    async fn try_write(&self, minutes: i64) -> Result<WriteOutcome, CheckpointError> {
        write_checkpoint(&self.index, &self.store, &self.signer, T, at(minutes)).await
    }

    async fn write(&self, minutes: i64) -> WriteOutcome {
        self.try_write(minutes).await.unwrap()
    }

    /// Each hour `h`: a block at h:10, a checkpoint (number h) at h:30.
    async fn history(hours: i64) -> Self {
        let env = Self::new();
        for h in 0..hours {
            env.append(h * HOUR + 10).await;
            let out = env.write(h * HOUR + 30).await;
            assert!(
                matches!(&out, WriteOutcome::Written { checkpoint, .. } if checkpoint.number == h as u64),
                "{out:?}"
            );
        }
        env
    }

    async fn verify(&self, minutes: i64) -> CheckpointReport {
        verify_checkpoints(
            &self.index,
            &self.store,
            T,
            &self.signer.public_key_der(),
            &CheckpointPolicy::default(),
            at(minutes),
        )
        .await
        .unwrap()
    }

    fn stored(&self, number: u64) -> SignedCheckpoint {
        let bytes = self.store.objects.lock().unwrap()[&checkpoint_key(T, number)].clone();
        SignedCheckpoint::from_bytes(&bytes).unwrap()
    }

    fn reference(&self, number: u64) -> CheckpointRef {
        let c = self.stored(number).checkpoint;
        CheckpointRef {
            number: c.number,
            seq: c.seq,
            signed_at: c.signed_at,
        }
    }

    fn delete(&self, number: u64) {
        assert!(self
            .store
            .objects
            .lock()
            .unwrap()
            .remove(&checkpoint_key(T, number))
            .is_some());
    }

    fn replace(&self, key: &str, body: Vec<u8>) {
        self.store
            .objects
            .lock()
            .unwrap()
            .insert(key.to_string(), Bytes::from(body));
    }

    /// Everything the pure verifier needs, as stored.
    async fn parts(&self) -> (Vec<SignedCheckpoint>, Vec<BlockHeader>, Option<ChainHead>) {
        let keys = self.store.list_keys(&checkpoint_prefix(T)).await.unwrap();
        let signed = keys
            .iter()
            .map(|k| SignedCheckpoint::from_bytes(&self.store.objects.lock().unwrap()[k]).unwrap())
            .collect();
        (
            signed,
            self.index.list_blocks(T).await.unwrap(),
            self.index.chain_head(T).await.unwrap(),
        )
    }

    /// A checkpoint signed by this env's key, for crafted cases, with the chain's hashes of
    /// blocks `first_seq..=seq` as its list (an empty list if `first_seq` is past `seq`).
    async fn sign(&self, mut checkpoint: Checkpoint) -> SignedCheckpoint {
        checkpoint.first_seq = checkpoint.first_seq.min(checkpoint.seq + 1);
        let hashes: Vec<String> = self
            .index
            .list_blocks_between(T, checkpoint.first_seq, checkpoint.seq)
            .await
            .unwrap()
            .iter()
            .map(BlockHeader::block_hash)
            .collect();
        checkpoint.blocks_sha256 = blocks_digest(&hashes).unwrap();
        SignedCheckpoint::new(
            checkpoint.clone(),
            &self.signer.sign_digest(&checkpoint.digest()),
            hashes,
        )
    }
}

fn pure(
    env: &Env,
    signed: &[SignedCheckpoint],
    blocks: &[BlockHeader],
    head: Option<&ChainHead>,
    minutes: i64,
) -> Vec<CheckpointFault> {
    verify_checkpoint_chain(
        T,
        signed,
        &env.signer.public_key_der(),
        blocks,
        head,
        &CheckpointPolicy::default(),
        at(minutes),
    )
    .unwrap()
    .faults
}

#[tokio::test]
async fn first_checkpoint_links_to_genesis_and_verifies_with_only_the_public_key() {
    let env = Env::history(1).await;
    let head = env.index.chain_head(T).await.unwrap().unwrap();
    let key = checkpoint_key(T, 0);
    assert_eq!(key, "checkpoints/tenant=bank_1/000000000000.json");
    assert_eq!(number_of_checkpoint_key(T, &key), Some(0));
    assert_eq!(number_of_checkpoint_key("bank", &key), None);

    let bytes = env.store.objects.lock().unwrap()[&key].clone();
    let signed = SignedCheckpoint::from_bytes(&bytes).unwrap();
    let c = &signed.checkpoint;
    assert_eq!(
        (
            c.version,
            c.number,
            c.seq,
            c.tenant_id.as_str(),
            c.chain_id.as_str()
        ),
        (CHECKPOINT_VERSION, 0, 0, T, T)
    );
    assert_eq!(c.block_hash, head.block_hash);
    assert_eq!(c.prev_checkpoint_sha256, GENESIS_CHECKPOINT_HASH);
    assert_eq!(c.signed_at, at(30));
    assert_eq!(c.key_id, env.signer.key_id());
    assert_eq!(signed.algorithm, SIGNING_ALGORITHM);

    // Stored canonically, with the signed bytes verbatim inside.
    assert_eq!(signed.to_bytes(), bytes.to_vec());
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let payload = String::from_utf8(c.canonical_bytes()).unwrap();
    assert!(text.contains(&payload), "{text}");
    assert!(payload.starts_with("{\"block_hash\":"), "{payload}");

    // Offline: the DER public key and the DER signature are all it takes.
    let public = CheckpointPublicKey::from_der(&env.signer.public_key_der()).unwrap();
    let der = signed.signature_der().unwrap();
    public.verify_digest(&c.digest(), &der).unwrap();
    let mut other = c.clone();
    other.seq = 1;
    assert_eq!(
        public.verify_digest(&other.digest(), &der),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        public.verify_digest(&c.digest(), b"\x30\x00"),
        Err(SignatureError::NotDer)
    );
    assert!(CheckpointPublicKey::from_der(b"not a key").is_err());
    assert!(verify_checkpoint_chain(
        T,
        &[signed],
        b"not a key",
        &[],
        None,
        &CheckpointPolicy::default(),
        at(0)
    )
    .is_err());

    // The same seed gives the same key; another seed another key.
    assert_eq!(
        MemorySigner::from_seed(b"checkpoint tests").public_key_der(),
        env.signer.public_key_der()
    );
    assert_ne!(
        MemorySigner::from_seed(b"other").public_key_der(),
        env.signer.public_key_der()
    );
    assert!(env.verify(40).await.ok());
}

#[tokio::test]
async fn writer_skips_an_unchanged_head_until_the_interval_and_links_each_checkpoint() {
    let env = Env::new();
    assert_eq!(env.write(0).await, WriteOutcome::EmptyChain);

    env.append(0).await;
    let WriteOutcome::Written { checkpoint: c0, .. } = env.write(1).await else {
        panic!("first checkpoint not written")
    };
    assert_eq!(
        env.write(11).await,
        WriteOutcome::Unchanged {
            number: 0,
            seq: 0,
            age_ms: 600_000
        }
    );
    // Unchanged, but 55 minutes old (interval minus grace): re-signed.
    let WriteOutcome::Written {
        checkpoint: c1,
        key,
    } = env.write(56).await
    else {
        panic!("refresh not written")
    };
    assert_eq!(key, checkpoint_key(T, 1));
    assert_eq!((c1.number, c1.seq, &c1.block_hash), (1, 0, &c0.block_hash));
    assert_eq!(c1.prev_checkpoint_sha256, c0.sha256_hex());

    // A new block: written at once.
    env.append(57).await;
    let WriteOutcome::Written { checkpoint: c2, .. } = env.write(58).await else {
        panic!("new head not written")
    };
    assert_eq!((c2.number, c2.seq), (2, 1));
    assert_eq!(c2.prev_checkpoint_sha256, c1.sha256_hex());
    assert!(env.verify(60).await.ok());
    assert_eq!(env.verify(60).await.covered_seq, Some(1));
}

/// A store on which a rival writer always stores the same key just before us.
struct Rival<'a>(&'a MemoryStore);

impl CheckpointStore for Rival<'_> {
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, PortError> {
        if key.starts_with(LOCATORS_PREFIX) {
            return self.0.put_if_absent(key, body).await;
        }
        assert!(
            self.0
                .put_if_absent(key, Bytes::from_static(b"rival"))
                .await?
        );
        self.0.put_if_absent(key, body).await
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        self.0.list_keys(prefix).await
    }

    async fn first_key_after(
        &self,
        prefix: &str,
        start_after: &str,
    ) -> Result<Option<String>, PortError> {
        self.0.first_key_after(prefix, start_after).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, PortError> {
        self.0.get(key).await
    }
}

#[tokio::test]
async fn a_checkpoint_is_never_overwritten_and_the_writer_refuses_bad_ground() {
    let env = Env::history(2).await;
    env.append(2 * HOUR + 10).await;
    let out = write_checkpoint(
        &env.index,
        &Rival(&env.store),
        &env.signer,
        T,
        at(2 * HOUR + 30),
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        WriteOutcome::Raced {
            key: checkpoint_key(T, 2),
            number: 2
        }
    );
    assert_eq!(
        env.store.get(&checkpoint_key(T, 2)).await.unwrap().unwrap(),
        Bytes::from_static(b"rival")
    );

    // The newest checkpoint is garbage: the writer will not chain onto it.
    let err = env.try_write(3 * HOUR).await.unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Unreadable { key, .. } if *key == checkpoint_key(T, 2)),
        "{err}"
    );

    // The newest checkpoint signed a block the chain no longer has at that seq.
    let env = Env::history(1).await;
    let mut forged = env.stored(0).checkpoint;
    forged.number = 1;
    forged.seq = 5;
    env.replace(&checkpoint_key(T, 1), env.sign(forged).await.to_bytes());
    let err = env.try_write(HOUR).await.unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::ChainDiverged {
                number: 1,
                checkpoint_seq: 5,
                head_seq: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_clean_history_verifies() {
    let env = Env::history(6).await;
    let report = env.verify(5 * HOUR + 40).await;
    assert!(report.ok(), "{:?}", report.faults);
    assert_eq!(report.checkpoints_checked, 6);
    assert_eq!(report.valid_signatures, 6);
    assert_eq!(report.newest, Some(env.reference(5)));
    assert_eq!(report.covered_seq, Some(5));
    assert_eq!(report.head_seq, Some(5));

    // An empty tenant is fine too.
    let empty = Env::new();
    assert!(empty.verify(0).await.ok());
}

#[tokio::test]
async fn an_altered_checkpoint_or_another_key_is_a_bad_signature() {
    let env = Env::history(4).await;
    let mut altered = env.stored(2);
    altered.checkpoint.seq = 1;
    env.replace(&checkpoint_key(T, 2), altered.to_bytes());
    let report = env.verify(3 * HOUR + 40).await;
    // A badly signed checkpoint counts for nothing: checkpoints 1 and 3 are two hours apart.
    assert_eq!(
        report.faults,
        vec![
            CheckpointFault::BadSignature {
                checkpoint: CheckpointRef {
                    seq: 1,
                    ..env.reference(2)
                },
                key_id: env.signer.key_id().to_string(),
                reason: SignatureError::Mismatch.to_string(),
            },
            CheckpointFault::IntervalGap {
                after: env.reference(1),
                before: env.reference(3),
                gap_ms: 2 * 3_600_000,
                blocks_appended: 2,
            },
        ]
    );
    assert_eq!(report.valid_signatures, 3);

    // Checkpoint 3 re-signed by someone else's key.
    let env = Env::history(4).await;
    let c3 = env.stored(3).checkpoint;
    let intruder = MemorySigner::from_seed(b"intruder");
    let hashes = env.stored(3).block_hashes;
    let forged = SignedCheckpoint::new(c3.clone(), &intruder.sign_digest(&c3.digest()), hashes);
    env.replace(&checkpoint_key(T, 3), forged.to_bytes());
    let report = env.verify(3 * HOUR + 40).await;
    // The newest valid one is now checkpoint 2, signed 1 h 10 ago.
    assert!(
        matches!(
            report.faults.as_slice(),
            [
                CheckpointFault::BadSignature { checkpoint, .. },
                CheckpointFault::StaleCheckpoint { age_ms: 4_200_000, .. },
            ] if checkpoint.number == 3
        ),
        "{:?}",
        report.faults
    );
    assert_eq!(report.newest, Some(env.reference(2)));

    // Wrong algorithm or a signature that is not base64.
    let mut odd = env.stored(1);
    odd.algorithm = "RSASSA_PSS_SHA_256".into();
    let mut junk = env.stored(0);
    junk.signature = "%%%".into();
    let faults = pure(&env, &[junk, odd], &[], None, 0);
    assert!(
        matches!(&faults[0], CheckpointFault::BadSignature { reason, .. } if reason.contains("base64")),
        "{faults:?}"
    );
    assert!(
        matches!(&faults[1], CheckpointFault::BadSignature { reason, .. } if reason.contains("RSASSA")),
        "{faults:?}"
    );
}

#[tokio::test]
async fn one_deleted_checkpoint_is_named_with_its_neighbours() {
    let env = Env::history(5).await;
    let (r1, r3) = (env.reference(1), env.reference(3));
    env.delete(2);
    let report = env.verify(4 * HOUR + 40).await;
    assert_eq!(
        report.faults,
        vec![
            CheckpointFault::MissingCheckpoints {
                from_number: 2,
                to_number: 2,
                count: 1,
                after: Some(r1),
                before: r3,
            },
            CheckpointFault::IntervalGap {
                after: r1,
                before: r3,
                gap_ms: 2 * 3_600_000,
                blocks_appended: 2,
            },
        ]
    );
    assert_eq!(
        report.faults[0].to_string(),
        "1 checkpoint missing between checkpoint 1 (seq 1, signed 2026-03-15T01:30:00.000Z) \
         and checkpoint 3 (seq 3, signed 2026-03-15T03:30:00.000Z)"
    );
}

#[tokio::test]
async fn two_consecutive_deleted_checkpoints_are_one_gap_of_two() {
    let env = Env::history(6).await;
    let (r1, r4) = (env.reference(1), env.reference(4));
    env.delete(2);
    env.delete(3);
    let report = env.verify(5 * HOUR + 40).await;
    assert_eq!(
        report.faults,
        vec![
            CheckpointFault::MissingCheckpoints {
                from_number: 2,
                to_number: 3,
                count: 2,
                after: Some(r1),
                before: r4,
            },
            CheckpointFault::IntervalGap {
                after: r1,
                before: r4,
                gap_ms: 3 * 3_600_000,
                blocks_appended: 3,
            },
        ]
    );
    assert!(report.faults[0]
        .to_string()
        .starts_with("2 checkpoints missing between checkpoint 1"));
    assert!(report.faults[1]
        .to_string()
        .starts_with("no validly signed checkpoint for 3h00m00s between checkpoint 1"));

    // Deleting the first two: missing before the first stored one.
    let env = Env::history(4).await;
    let r2 = env.reference(2);
    env.delete(0);
    env.delete(1);
    let report = env.verify(3 * HOUR + 40).await;
    assert_eq!(
        report.faults,
        vec![CheckpointFault::MissingCheckpoints {
            from_number: 0,
            to_number: 1,
            count: 2,
            after: None,
            before: r2,
        }]
    );
}

#[tokio::test]
async fn a_deleted_newest_checkpoint_is_stale_and_after_the_next_write_a_gap() {
    let env = Env::history(4).await;
    let r2 = env.reference(2);
    env.delete(3);
    // Ten minutes after checkpoint 3 was signed, the newest left is 1 h 10 old.
    let report = env.verify(3 * HOUR + 40).await;
    assert_eq!(
        report.faults,
        vec![CheckpointFault::StaleCheckpoint {
            checkpoint: r2,
            age_ms: 70 * 60_000,
            blocks_since: 1,
        }]
    );
    assert_eq!(report.covered_seq, Some(2));

    // The next run writes number 3 again, linked to 2: the link holds, the time gap does not.
    env.append(4 * HOUR + 10).await;
    env.write(4 * HOUR + 30).await;
    let r3 = env.reference(3);
    assert_eq!(r3.seq, 4);
    let report = env.verify(4 * HOUR + 40).await;
    assert_eq!(
        report.faults,
        vec![
            CheckpointFault::IntervalGap {
                after: r2,
                before: r3,
                gap_ms: 2 * 3_600_000,
                blocks_appended: 2,
            },
            // The deleted checkpoint's locator outlives it and tells what it signed.
            CheckpointFault::StrayLocator {
                key: locator_key(T, 3, 3),
            },
        ]
    );
}

#[tokio::test]
async fn an_interval_gap_needs_appended_blocks() {
    let env = Env::history(2).await;
    // Checkpointing pauses for three hours while blocks keep coming.
    for h in 2..5 {
        env.append(h * HOUR + 10).await;
    }
    env.write(4 * HOUR + 30).await;
    let (r1, r2) = (env.reference(1), env.reference(2));
    let report = env.verify(4 * HOUR + 40).await;
    assert_eq!(
        report.faults,
        vec![CheckpointFault::IntervalGap {
            after: r1,
            before: r2,
            gap_ms: 3 * 3_600_000,
            blocks_appended: 3,
        }]
    );

    // A pause with no blocks appended leaves nothing uncovered.
    let env = Env::history(2).await;
    env.write(4 * HOUR + 30).await;
    let report = env.verify(4 * HOUR + 40).await;
    assert!(report.ok(), "{:?}", report.faults);
}

#[tokio::test]
async fn a_checkpoint_disagrees_with_a_rewritten_chain() {
    let env = Env::history(3).await;
    let (signed, mut blocks, head) = env.parts().await;
    let original = blocks[1].block_hash();
    blocks[1].merkle_root = "ee".repeat(32);
    assert_eq!(
        pure(&env, &signed, &blocks, head.as_ref(), 2 * HOUR + 40),
        vec![CheckpointFault::ChainMismatch {
            checkpoint: env.reference(1),
            checkpoint_hash: original,
            chain_hash: blocks[1].block_hash(),
        }]
    );
    assert!(CheckpointFault::ChainMismatch {
        checkpoint: env.reference(1),
        checkpoint_hash: String::new(),
        chain_hash: String::new(),
    }
    .to_string()
    .contains("chain rewritten"));
}

#[tokio::test]
async fn a_checkpoint_beyond_the_head_means_a_truncated_chain() {
    let env = Env::history(3).await;
    let (signed, blocks, _) = env.parts().await;
    let head = ChainHead::of(&blocks[1]);
    let report = verify_checkpoint_chain(
        T,
        &signed,
        &env.signer.public_key_der(),
        &blocks[..2],
        Some(&head),
        &CheckpointPolicy::default(),
        at(2 * HOUR + 40),
    )
    .unwrap();
    assert_eq!(
        report.faults,
        vec![CheckpointFault::BeyondHead {
            checkpoint: env.reference(2),
            head_seq: Some(1),
        }]
    );
    assert_eq!(report.covered_seq, Some(1));

    // No chain at all.
    let faults = pure(&env, &signed, &[], None, 2 * HOUR + 40);
    assert_eq!(faults.len(), 3);
    assert!(faults
        .iter()
        .all(|f| matches!(f, CheckpointFault::BeyondHead { head_seq: None, .. })));
}

#[tokio::test]
async fn a_chain_without_checkpoints_and_a_stale_newest_one() {
    let env = Env::new();
    env.append(0).await;
    env.append(10).await;
    assert_eq!(
        env.verify(20).await.faults,
        vec![CheckpointFault::NoCheckpoint { head_seq: 1 }]
    );

    // Checkpointing stopped three hours ago and two blocks came since.
    let env = Env::history(2).await;
    env.append(2 * HOUR).await;
    env.append(3 * HOUR).await;
    let report = env.verify(4 * HOUR + 30).await;
    assert_eq!(
        report.faults,
        vec![CheckpointFault::StaleCheckpoint {
            checkpoint: env.reference(1),
            age_ms: 3 * 3_600_000,
            blocks_since: 2,
        }]
    );
    assert!(report.faults[0]
        .to_string()
        .contains("3h00m00s old (2 blocks appended since)"));
    // Only badly signed checkpoints: none covers the chain.
    let (mut signed, blocks, head) = env.parts().await;
    for s in &mut signed {
        s.checkpoint.key_id = "forged".into();
    }
    let faults = pure(&env, &signed, &blocks, head.as_ref(), 4 * HOUR + 30);
    assert_eq!(faults.len(), 3, "{faults:?}");
    assert_eq!(faults[2], CheckpointFault::NoCheckpoint { head_seq: 3 });
}

#[tokio::test]
async fn crafted_links_regressions_future_dates_duplicates_and_foreign_tenants() {
    let env = Env::history(3).await;
    let (signed, blocks, head) = env.parts().await;
    let now = 2 * HOUR + 40;
    let base = signed[2].checkpoint.clone();

    // Number 3, validly signed, but linked to something else and going back to seq 1.
    let mut c3 = base.clone();
    c3.number = 3;
    c3.seq = 1;
    c3.block_hash = blocks[1].block_hash();
    c3.signed_at = at(now);
    c3.prev_checkpoint_sha256 = "11".repeat(32);
    let s3 = env.sign(c3).await;
    let c3 = s3.checkpoint.clone();
    // Number 4 dated an hour ahead.
    let mut c4 = c3.clone();
    c4.number = 4;
    c4.seq = 2;
    c4.block_hash = blocks[2].block_hash();
    c4.signed_at = at(now + HOUR);
    c4.prev_checkpoint_sha256 = c3.sha256_hex();
    // Another tenant's checkpoint, and a second document numbered 0.
    let mut foreign = base.clone();
    foreign.tenant_id = "bank_2".into();
    let mut dup0 = signed[0].checkpoint.clone();
    dup0.signed_at = at(31);

    let mut all = signed.clone();
    all.extend([
        s3,
        env.sign(c4.clone()).await,
        env.sign(foreign).await,
        env.sign(dup0).await,
    ]);
    let faults = pure(&env, &all, &blocks, head.as_ref(), now);
    let r = |c: &Checkpoint| CheckpointRef {
        number: c.number,
        seq: c.seq,
        signed_at: c.signed_at,
    };
    assert_eq!(
        faults,
        vec![
            CheckpointFault::ForeignCheckpoint {
                checkpoint: r(&base),
                tenant_id: "bank_2".into(),
                chain_id: T.into(),
            },
            CheckpointFault::DuplicateCheckpoint { number: 0 },
            CheckpointFault::BrokenCheckpointLink {
                checkpoint: r(&c3),
                expected_prev: base.sha256_hex(),
                found_prev: "11".repeat(32),
            },
            CheckpointFault::CheckpointRegressed {
                checkpoint: r(&c3),
                previous: r(&base),
            },
            // Its list (empty: it goes back) does not start after checkpoint 2's.
            CheckpointFault::BlockListGap {
                checkpoint: r(&c3),
                expected_first_seq: 3,
                first_seq: 2,
            },
            CheckpointFault::FutureCheckpoint { checkpoint: r(&c4) },
        ]
    );
    // Faults serialize with a tag an auditor's tooling can switch on.
    let json = serde_json::to_value(&faults[2]).unwrap();
    assert_eq!(json["fault"], "broken_checkpoint_link");
    assert_eq!(json["checkpoint"]["number"], 3);
}

#[tokio::test]
async fn stray_and_misplaced_objects_under_the_prefix_are_named() {
    let env = Env::history(3).await;
    let copy = env.store.get(&checkpoint_key(T, 1)).await.unwrap().unwrap();
    env.replace(&checkpoint_key(T, 3), copy.to_vec());
    env.replace(&checkpoint_key(T, 4), b"{\"checkpoint\":".to_vec());
    let stray = format!("{}notes.txt", checkpoint_prefix(T));
    env.replace(&stray, b"hello".to_vec());
    let report = env.verify(2 * HOUR + 40).await;
    assert_eq!(report.checkpoints_checked, 6);
    assert_eq!(report.faults.len(), 3, "{:?}", report.faults);
    assert_eq!(
        report.faults[0],
        CheckpointFault::MisplacedCheckpoint {
            key: checkpoint_key(T, 3),
            tenant_id: T.into(),
            number: 1,
        }
    );
    assert!(
        matches!(&report.faults[1], CheckpointFault::UnreadableCheckpoint { key, .. } if *key == checkpoint_key(T, 4))
    );
    assert_eq!(
        report.faults[2],
        CheckpointFault::UnreadableCheckpoint {
            key: stray,
            reason: "not a checkpoint key".into(),
        }
    );
}

/// With `DJ_CHECKPOINT_EXAMPLE_DIR` set, writes a signed checkpoint and its public key there
/// for the OpenSSL recipe in docs/checkpoints.md.
#[tokio::test]
async fn export_an_example_for_the_openssl_recipe() {
    let Some(dir) = std::env::var_os("DJ_CHECKPOINT_EXAMPLE_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let env = Env::history(2).await;
    std::fs::write(dir.join("public_key.der"), env.signer.public_key_der()).unwrap();
    for n in 0..2 {
        std::fs::write(dir.join(format!("{n:012}.json")), env.stored(n).to_bytes()).unwrap();
    }
}

#[tokio::test]
async fn each_checkpoint_lists_the_blocks_since_the_one_before_and_long_runs_are_split() {
    let env = Env::new();
    for m in 0..5 {
        env.append(m).await;
    }
    let policy = CheckpointPolicy {
        max_blocks: 2,
        ..CheckpointPolicy::default()
    };
    let runs = write_all_checkpoints(&env.index, &env.store, &env.signer, at(10), &policy)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].number, runs[0].seq), (Some(2), Some(4)));
    let blocks = env.index.list_blocks(T).await.unwrap();
    let listed = |seqs: std::ops::RangeInclusive<usize>| -> Vec<String> {
        blocks[seqs].iter().map(BlockHeader::block_hash).collect()
    };
    for (number, first, last) in [(0u64, 0usize, 1usize), (1, 2, 3), (2, 4, 4)] {
        let s = env.stored(number);
        assert_eq!(
            (s.checkpoint.first_seq, s.checkpoint.seq),
            (first as u64, last as u64)
        );
        assert_eq!(s.block_hashes, listed(first..=last));
        assert_eq!(
            s.listed_hash(last as u64),
            Some(s.checkpoint.block_hash.as_str())
        );
        assert_eq!(s.list_fault(), None);
        let locator = locator_key(T, last as u64, number);
        assert!(
            env.store.get(&locator).await.unwrap().is_some(),
            "{locator}"
        );
    }
    // An unchanged head re-signed an hour later lists nothing.
    let WriteOutcome::Written { checkpoint, .. } = env.write(HOUR + 5).await else {
        panic!("the refresh is due")
    };
    assert_eq!((checkpoint.first_seq, checkpoint.seq), (5, 4));
    assert!(env.stored(3).block_hashes.is_empty());
    assert_eq!(env.verify(HOUR + 10).await.faults, vec![]);

    // A list edited beside its signed document, and a lost locator, are named.
    let mut edited = env.stored(1);
    edited.block_hashes.swap(0, 1);
    env.replace(&checkpoint_key(T, 1), edited.to_bytes());
    env.store
        .objects
        .lock()
        .unwrap()
        .remove(&locator_key(T, 4, 2));
    let faults = env.verify(HOUR + 10).await.faults;
    assert_eq!(faults.len(), 2, "{faults:?}");
    assert!(
        matches!(&faults[0], CheckpointFault::AlteredBlockList { checkpoint, reason }
            if checkpoint.number == 1 && reason.contains("digest to")),
        "{faults:?}"
    );
    assert_eq!(
        faults[1],
        CheckpointFault::MissingLocator {
            checkpoint: env.reference(2)
        }
    );
    assert!(faults[0]
        .to_string()
        .starts_with("altered block list of checkpoint 1"));
}

#[tokio::test]
async fn the_writer_will_not_list_a_broken_chain() {
    let env = Env::history(1).await;
    env.append(HOUR + 10).await;
    let mut h = env.append(HOUR + 20).await;
    // Block 2 rewritten so that it no longer names block 1.
    h.prev_hash = "77".repeat(32);
    env.index.replace_block_for_tests(&h);
    let err = env.try_write(HOUR + 30).await.unwrap_err();
    assert!(
        matches!(&err, CheckpointError::BrokenChain { from_seq: 1, to_seq: 2, reason, .. }
            if reason.starts_with("block 2 names previous hash 7777")),
        "{err}"
    );
}
