//! Signed checkpoints on AWS (DESIGN §4, `docs/checkpoints.md`): [`KmsCheckpointSigner`]
//! signs with an asymmetric KMS key (`ECC_NIST_P256`, `SIGN_VERIFY`) and hands out its public
//! key for offline verification; [`S3CheckpointStore`] keeps checkpoints write-once, each put
//! conditional (`If-None-Match: *`) and locked (`x-amz-object-lock-mode` /
//! `-retain-until-date`) in the Object Lock enabled journal bucket.

use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use aws_smithy_types::{Blob, DateTime};
use bytes::Bytes;
use journal_core::checkpoint::{CheckpointPublicKey, CheckpointSigner, CheckpointStore};
use journal_core::ports::{ObjectStore, PortError};
use journal_core::timestamp::Timestamp;
use sha2::{Digest, Sha256};

use crate::errors::{code_of, sdk_error, status_of};
use crate::s3::S3ObjectStore;

pub const CHECKPOINT_CONTENT_TYPE: &str = "application/json";

/// Largest message KMS `Sign` takes with `MessageType=RAW`.
const RAW_MESSAGE_LIMIT: usize = 4096;

/// Seven years (SR 11-7), in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 2557;

/// Signs checkpoints with KMS `Sign` (`MessageType=RAW`, `SigningAlgorithm=ECDSA_SHA_256`):
/// KMS hashes the canonical bytes with SHA-256 and signs the hash; the signature is ASN.1 DER.
/// RAW rather than DIGEST because emulators differ on DIGEST (moto 5.2 hashes a digest again)
/// while RAW means the same everywhere, and a checkpoint is far below RAW's 4096-byte limit.
///
/// A signer made by [`KmsCheckpointSigner::resolve`] also checks every signature against the
/// key's public half before handing it out, so a checkpoint that would not verify is never
/// stored.
#[derive(Clone, Debug)]
pub struct KmsCheckpointSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
    check: Option<CheckpointPublicKey>,
}

impl KmsCheckpointSigner {
    /// `key_id`: key id, ARN or alias, recorded as given in every checkpoint. Prefer
    /// [`KmsCheckpointSigner::resolve`], which records the key ARN.
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
            check: None,
        }
    }

    /// Looks the key up (`GetPublicKey`), checks that it is an ECDSA P-256 signing key, and
    /// returns a signer that records the key's ARN and verifies each signature it gets from
    /// KMS, with the key's DER public key.
    pub async fn resolve(
        client: aws_sdk_kms::Client,
        key_id: &str,
    ) -> Result<(Self, Vec<u8>), PortError> {
        let (arn, der) = public_key(&client, key_id).await?;
        let check = CheckpointPublicKey::from_der(&der)
            .map_err(|e| PortError::permanent("get checkpoint public key", e))?;
        let mut signer = Self::new(client, arn);
        signer.check = Some(check);
        Ok((signer, der))
    }

    /// The DER SubjectPublicKeyInfo of the key (`GetPublicKey`): all an auditor needs to
    /// verify checkpoints offline.
    pub async fn public_key_der(&self) -> Result<Vec<u8>, PortError> {
        public_key(&self.client, &self.key_id)
            .await
            .map(|(_, der)| der)
    }

    fn target(&self) -> String {
        format!("(kms key {})", self.key_id)
    }
}

/// Key ARN and DER public key of `key_id`, refusing anything but an ECDSA P-256 signing key.
async fn public_key(
    client: &aws_sdk_kms::Client,
    key_id: &str,
) -> Result<(String, Vec<u8>), PortError> {
    const OP: &str = "get checkpoint public key";
    let target = format!("(kms key {key_id})");
    let out = client
        .get_public_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| sdk_error(OP, &target, &e))?;
    let wrong = |what: String| PortError::permanent(OP, format!("{target}: {what}"));
    // moto answers only the deprecated CustomerMasterKeySpec; the DER parse below is the
    // check that counts.
    if let Some(spec) = out.key_spec().filter(|s| **s != KeySpec::EccNistP256) {
        return Err(wrong(format!("key spec {spec}, expected ECC_NIST_P256")));
    }
    if out.key_usage() != Some(&KeyUsageType::SignVerify) {
        let usage = out.key_usage().map_or("none".into(), |u| u.to_string());
        return Err(wrong(format!("key usage {usage}, expected SIGN_VERIFY")));
    }
    if !out
        .signing_algorithms()
        .contains(&SigningAlgorithmSpec::EcdsaSha256)
    {
        return Err(wrong(
            "ECDSA_SHA_256 is not among its signing algorithms".into(),
        ));
    }
    let der = out
        .public_key()
        .ok_or_else(|| wrong("no public key in the answer".into()))?
        .as_ref()
        .to_vec();
    CheckpointPublicKey::from_der(&der).map_err(|e| wrong(e.to_string()))?;
    let arn = match out.key_id() {
        Some(arn) if arn.starts_with("arn:") => arn.to_string(),
        // KMS answers the key ARN; moto the bare key id.
        _ => key_arn(client, key_id).await?,
    };
    Ok((arn, der))
}

/// The ARN of a key given by id, ARN or alias (`DescribeKey`).
async fn key_arn(client: &aws_sdk_kms::Client, key_id: &str) -> Result<String, PortError> {
    const OP: &str = "describe checkpoint key";
    let target = format!("(kms key {key_id})");
    let out = client
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| sdk_error(OP, &target, &e))?;
    out.key_metadata()
        .and_then(|m| m.arn())
        .map(str::to_string)
        .ok_or_else(|| PortError::permanent(OP, format!("{target}: no key ARN in the answer")))
}

impl CheckpointSigner for KmsCheckpointSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    #[tracing::instrument(skip_all, fields(key_id = %self.key_id))]
    async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, PortError> {
        const OP: &str = "sign checkpoint";
        if message.len() > RAW_MESSAGE_LIMIT {
            return Err(PortError::permanent(
                OP,
                format!(
                    "{}: {} bytes to sign, over KMS's RAW limit of {RAW_MESSAGE_LIMIT}",
                    self.target(),
                    message.len()
                ),
            ));
        }
        let digest: [u8; 32] = Sha256::digest(&message).into();
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &self.target(), &e))?;
        let signature = out
            .signature()
            .map(|s| s.as_ref().to_vec())
            .ok_or_else(|| {
                PortError::permanent(OP, format!("{}: no signature in the answer", self.target()))
            })?;
        if let Some(key) = &self.check {
            key.verify_digest(&digest, &signature).map_err(|e| {
                PortError::permanent(
                    OP,
                    format!(
                        "{}: KMS returned a signature that does not verify over SHA-256 of \
                         the message ({e})",
                        self.target()
                    ),
                )
            })?;
        }
        Ok(signature)
    }
}

/// Object Lock retention given to every checkpoint when it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointRetention {
    /// `COMPLIANCE` (nobody, root included, can delete or shorten it) or `GOVERNANCE`
    /// (principals with `s3:BypassGovernanceRetention` can).
    pub mode: ObjectLockMode,
    pub days: u32,
}

impl Default for CheckpointRetention {
    fn default() -> Self {
        Self {
            mode: ObjectLockMode::Compliance,
            days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// Puts `body` at `key` only if no object is there (`If-None-Match: *`), locked until
/// `retention.days` from now. `Ok(false)` when the key is taken (`412 PreconditionFailed`)
/// or another conditional put of it is in flight (`409 ConditionalRequestConflict`).
/// The bucket must have Object Lock enabled.
#[tracing::instrument(skip(client, body, retention), fields(bytes = body.len()))]
pub async fn put_write_once(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Bytes,
    retention: &CheckpointRetention,
) -> Result<bool, PortError> {
    const OP: &str = "put write-once object";
    let retain_until =
        DateTime::from_millis(Timestamp::now().millis() + i64::from(retention.days) * 86_400_000);
    let result = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .content_type(CHECKPOINT_CONTENT_TYPE)
        .if_none_match("*")
        // Object Lock puts need an integrity header; S3 also keeps the SHA-256.
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .object_lock_mode(retention.mode.clone())
        .object_lock_retain_until_date(retain_until)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if matches!(
                code_of(&err),
                Some("PreconditionFailed" | "ConditionalRequestConflict")
            ) || matches!(status_of(&err), Some(412 | 409)) =>
        {
            Ok(false)
        }
        Err(err) => Err(sdk_error(OP, &format!("(s3://{bucket}/{key})"), &err)),
    }
}

/// The [`CheckpointStore`] on the journal bucket: conditional, Object Lock retained puts;
/// listing and reads as [`S3ObjectStore`] does them.
#[derive(Clone, Debug)]
pub struct S3CheckpointStore {
    objects: S3ObjectStore,
    retention: CheckpointRetention,
}

impl S3CheckpointStore {
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        retention: CheckpointRetention,
    ) -> Self {
        Self {
            objects: S3ObjectStore::new(client, bucket),
            retention,
        }
    }

    pub fn bucket(&self) -> &str {
        self.objects.bucket()
    }

    pub fn retention(&self) -> &CheckpointRetention {
        &self.retention
    }
}

impl CheckpointStore for S3CheckpointStore {
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, PortError> {
        put_write_once(
            self.objects.client(),
            self.objects.bucket(),
            key,
            body,
            &self.retention,
        )
        .await
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        self.objects.list(prefix).await
    }

    async fn first_key_after(
        &self,
        prefix: &str,
        start_after: &str,
    ) -> Result<Option<String>, PortError> {
        self.objects.first_key_after(prefix, start_after).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, PortError> {
        self.objects.get_object(key).await
    }
}
