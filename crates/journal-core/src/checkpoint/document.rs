//! The checkpoint document, its signed envelope, and where it is stored.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::timestamp::Timestamp;

pub const CHECKPOINT_VERSION: u32 = 1;

/// The only signing algorithm: ECDSA over NIST P-256 with SHA-256, named as KMS names it.
pub const SIGNING_ALGORITHM: &str = "ECDSA_SHA_256";

/// `prev_checkpoint_sha256` of a tenant's first checkpoint (number 0).
pub const GENESIS_CHECKPOINT_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Every checkpoint lives under this prefix (write-once: Object Lock retention per object).
pub const CHECKPOINTS_PREFIX: &str = "checkpoints/";

/// What one checkpoint commits to: the head of a tenant's chain at `signed_at`, and the
/// checkpoint before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub version: u32,
    pub tenant_id: String,
    /// The chain covered (today always the tenant id; `tenant#shard` once chains are sharded).
    pub chain_id: String,
    /// Position of this checkpoint in the tenant's checkpoint sequence: 0, 1, 2, ... without
    /// gaps, so that the number of deleted checkpoints between two survivors is known exactly.
    pub number: u64,
    /// Sequence number of the newest block of the chain when signed.
    pub seq: u64,
    /// Hex block hash of block `seq`.
    pub block_hash: String,
    pub signed_at: Timestamp,
    /// Hex SHA-256 of the canonical bytes of checkpoint `number - 1`, or
    /// [`GENESIS_CHECKPOINT_HASH`] for number 0.
    pub prev_checkpoint_sha256: String,
    /// The key that signed it (for KMS: the key ARN).
    pub key_id: String,
}

impl Checkpoint {
    /// The signed bytes: RFC 8785 canonical JSON of the document.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical::to_vec_of(self).expect("a checkpoint holds only strings and safe integers")
    }

    /// SHA-256 of the canonical bytes: the digest that is signed, and (hex) the next
    /// checkpoint's `prev_checkpoint_sha256`.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(self.digest())
    }

    /// Where this checkpoint is stored.
    pub fn key(&self) -> String {
        checkpoint_key(&self.tenant_id, self.number)
    }
}

/// A checkpoint with its signature, as stored (canonical JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// Standard base64 of the ASN.1 DER ECDSA signature (`SEQUENCE { r, s }`) over
    /// SHA-256(canonical bytes of `checkpoint`).
    pub signature: String,
    /// Always [`SIGNING_ALGORITHM`].
    pub algorithm: String,
}

impl SignedCheckpoint {
    pub fn new(checkpoint: Checkpoint, signature_der: &[u8]) -> Self {
        Self {
            checkpoint,
            signature: BASE64.encode(signature_der),
            algorithm: SIGNING_ALGORITHM.to_string(),
        }
    }

    /// The stored form: canonical JSON, so the `checkpoint` member appears in it byte for byte
    /// as it was signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical::to_vec_of(self).expect("a checkpoint holds only strings and safe integers")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The DER signature, if the base64 decodes.
    pub fn signature_der(&self) -> Result<Vec<u8>, base64::DecodeError> {
        BASE64.decode(&self.signature)
    }
}

/// Prefix of every checkpoint of a tenant.
pub fn checkpoint_prefix(tenant_id: &str) -> String {
    format!("{CHECKPOINTS_PREFIX}tenant={tenant_id}/")
}

/// `checkpoints/tenant=<tenant>/<number, 12 digits>.json`: lists in checkpoint order, and one
/// key per number, so two writers racing for the same number collide on a conditional put.
pub fn checkpoint_key(tenant_id: &str, number: u64) -> String {
    format!("{}{number:012}.json", checkpoint_prefix(tenant_id))
}

/// The checkpoint number a key names, if it is a checkpoint key of `tenant_id`.
pub fn number_of_checkpoint_key(tenant_id: &str, key: &str) -> Option<u64> {
    let rest = key.strip_prefix(&checkpoint_prefix(tenant_id))?;
    let digits = rest.strip_suffix(".json")?;
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
