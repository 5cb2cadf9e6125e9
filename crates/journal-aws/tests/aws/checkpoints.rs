//! Checkpoints on KMS and S3: an `ECC_NIST_P256` key signs digests that its public key verifies
//! offline, and checkpoints are stored once, under Object Lock.

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_s3::types::ObjectLockMode;
use bytes::Bytes;
use journal_aws::checkpoints::{CheckpointRetention, KmsCheckpointSigner, S3CheckpointStore};
use journal_aws::AwsClients;
use journal_core::checkpoint::{
    checkpoint_key, verify_checkpoints, write_checkpoint, CheckpointFault, CheckpointPolicy,
    CheckpointPublicKey, CheckpointSigner, CheckpointStore, SignatureError, WriteOutcome,
};
use journal_core::integrity::chain::next_link;
use journal_core::memory::MemoryIndex;
use journal_core::ports::{AppendOutcome, JournalIndex, PortError};
use sha2::{Digest, Sha256};

use crate::common::{self, header, pending_entry, ts};

async fn create_signing_key(c: &AwsClients) -> String {
    let out = c
        .kms
        .create_key()
        .description("journal-aws test checkpoint key")
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .expect("create ECC_NIST_P256 key");
    out.key_metadata()
        .expect("key metadata")
        .key_id()
        .to_string()
}

async fn create_locked_bucket(c: &AwsClients) -> String {
    let bucket = common::unique("dj-test-lock");
    c.s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create bucket with Object Lock");
    bucket
}

async fn append(index: &MemoryIndex, tenant: &str) {
    let head = index.chain_head(tenant).await.unwrap();
    let (seq, prev) = next_link(head.as_ref());
    let block_id = format!("B{seq}");
    assert!(index
        .put_manifest_pending(&pending_entry(tenant, &block_id))
        .await
        .unwrap());
    assert_eq!(
        index
            .append_block(&header(tenant, seq, &prev, &block_id))
            .await
            .unwrap(),
        AppendOutcome::Appended
    );
}

#[tokio::test]
async fn kms_signs_checkpoint_digests_that_verify_offline() {
    let Some(c) = common::clients("checkpoints_kms").await else {
        return;
    };
    let key_id = create_signing_key(&c).await;
    let (signer, der) = KmsCheckpointSigner::resolve(c.kms.clone(), &key_id)
        .await
        .unwrap();
    assert!(signer.key_id().starts_with("arn:"), "{}", signer.key_id());
    assert!(signer.key_id().ends_with(&key_id), "{}", signer.key_id());
    assert_eq!(signer.public_key_der().await.unwrap(), der);
    let public = CheckpointPublicKey::from_der(&der).unwrap();

    for i in 0..8u8 {
        let message = vec![i; 200 + usize::from(i)];
        let signature = signer.sign(message.clone()).await.unwrap();
        let digest: [u8; 32] = Sha256::digest(&message).into();
        public.verify_digest(&digest, &signature).unwrap();
        let other: [u8; 32] = Sha256::digest([i, i]).into();
        assert_eq!(
            public.verify_digest(&other, &signature),
            Err(SignatureError::Mismatch)
        );
    }
    // Over KMS's RAW limit: refused before KMS is asked.
    let err = signer.sign(vec![0; 4097]).await.unwrap_err();
    assert!(matches!(err, PortError::Permanent { .. }), "{err}");

    // A symmetric key is refused before anything is signed with it.
    let symmetric = common::create_kms_key(&c).await;
    let err = KmsCheckpointSigner::resolve(c.kms.clone(), &symmetric)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Permanent { .. }), "{err}");
}

#[tokio::test]
async fn checkpoints_are_stored_once_under_object_lock_and_verify_with_the_public_key() {
    let Some(c) = common::clients("checkpoints_s3").await else {
        return;
    };
    let bucket = create_locked_bucket(&c).await;
    let retention = CheckpointRetention {
        mode: ObjectLockMode::Governance,
        days: 1,
    };
    let store = S3CheckpointStore::new(c.s3.clone(), &bucket, retention);

    // Conditional and locked.
    let key = "checkpoints/tenant=probe/000000000000.json";
    assert!(store
        .put_if_absent(key, Bytes::from_static(b"first"))
        .await
        .unwrap());
    assert!(!store
        .put_if_absent(key, Bytes::from_static(b"second"))
        .await
        .unwrap());
    assert_eq!(
        store.get(key).await.unwrap(),
        Some(Bytes::from_static(b"first"))
    );
    let head =
        c.s3.head_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    let until = head.object_lock_retain_until_date().expect("retain-until");
    let now_secs = journal_core::timestamp::Timestamp::now().millis() / 1000;
    assert!(until.secs() > now_secs + 23 * 3600, "{until}");
    let version = head.version_id().expect("versioned").to_string();
    let deleted =
        c.s3.delete_object()
            .bucket(&bucket)
            .key(key)
            .version_id(&version)
            .send()
            .await;
    assert!(deleted.is_err(), "a locked version was deleted");

    // End to end: a chain (in memory), KMS signatures, S3 storage, offline verification with
    // the public key only.
    let key_id = create_signing_key(&c).await;
    let (kms, der) = KmsCheckpointSigner::resolve(c.kms.clone(), &key_id)
        .await
        .unwrap();
    end_to_end(&c, &bucket, &store, &kms, &der).await;
}

async fn end_to_end<G: CheckpointSigner>(
    c: &AwsClients,
    bucket: &str,
    store: &S3CheckpointStore,
    signer: &G,
    der: &[u8],
) {
    let index = MemoryIndex::default();
    let t = "bank_1";
    append(&index, t).await;
    let out = write_checkpoint(&index, store, signer, t, ts("2026-03-15T10:30:00Z"))
        .await
        .unwrap();
    assert!(matches!(out, WriteOutcome::Written { .. }), "{out:?}");
    append(&index, t).await;
    let out = write_checkpoint(&index, store, signer, t, ts("2026-03-15T11:30:00Z"))
        .await
        .unwrap();
    let WriteOutcome::Written {
        key: newest,
        checkpoint,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!((checkpoint.number, checkpoint.seq), (1, 1));
    assert_eq!(newest, checkpoint_key(t, 1));
    let policy = CheckpointPolicy::default();
    let report = verify_checkpoints(&index, store, t, der, &policy, ts("2026-03-15T11:40:00Z"))
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.faults);
    assert_eq!(report.covered_seq, Some(1));

    if let Some(dir) = std::env::var_os("DJ_CHECKPOINT_EXAMPLE_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s3_public_key.der"), der).unwrap();
        for n in 0..2 {
            let body = store.get(&checkpoint_key(t, n)).await.unwrap().unwrap();
            std::fs::write(dir.join(format!("s3-{n:012}.json")), body).unwrap();
        }
    }

    // Deleting the newest leaves a delete marker (the locked version stays); the verifier,
    // which sees what a listing shows, finds the newest remaining checkpoint stale.
    c.s3.delete_object()
        .bucket(bucket)
        .key(&newest)
        .send()
        .await
        .unwrap();
    let report = verify_checkpoints(&index, store, t, der, &policy, ts("2026-03-15T11:40:00Z"))
        .await
        .unwrap();
    assert!(
        matches!(
            report.faults.as_slice(),
            [CheckpointFault::StaleCheckpoint { checkpoint, blocks_since: 1, .. }] if checkpoint.number == 0
        ),
        "{:?}",
        report.faults
    );
}
