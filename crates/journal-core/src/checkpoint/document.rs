//! The checkpoint document, its signed envelope, and where it is stored.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::timestamp::Timestamp;

/// Version 2 added `first_seq` and `blocks_sha256` (the block list).
pub const CHECKPOINT_VERSION: u32 = 2;

/// The only signing algorithm: ECDSA over NIST P-256 with SHA-256, named as KMS names it.
pub const SIGNING_ALGORITHM: &str = "ECDSA_SHA_256";

/// `prev_checkpoint_sha256` of a tenant's first checkpoint (number 0).
pub const GENESIS_CHECKPOINT_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Every checkpoint lives under this prefix (write-once: Object Lock retention per object).
pub const CHECKPOINTS_PREFIX: &str = "checkpoints/";

/// Empty objects that find a checkpoint by the chain seq it reaches (see [`locator_key`]).
pub const LOCATORS_PREFIX: &str = "checkpoints/by-seq/";

/// What one checkpoint commits to: the head of a tenant's chain at `signed_at`, every block
/// appended since the checkpoint before it (as the SHA-256 of their block hashes, listed beside
/// the document), and the checkpoint before it.
///
/// The list is what lets one record be proven with a single checkpoint, as a CloudTrail digest
/// file lists the log files it covers: leaf → Merkle root → block hash → listed in a signed
/// checkpoint, without reading the chain between the block and the checkpoint.
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
    /// First block listed: the previous checkpoint's `seq + 1` (0 for number 0). Equal to
    /// `seq + 1` when the head did not move since the previous checkpoint (empty list).
    pub first_seq: u64,
    /// Hex SHA-256 of the 32-byte block hashes of blocks `first_seq..=seq`, concatenated in
    /// seq order ([`blocks_digest`]); the hashes themselves are in
    /// [`SignedCheckpoint::block_hashes`].
    pub blocks_sha256: String,
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
    /// Hex block hashes of blocks `first_seq..=seq`, in seq order. Not signed directly (the
    /// signed document stays small): bound by `checkpoint.blocks_sha256`.
    pub block_hashes: Vec<String>,
}

impl SignedCheckpoint {
    pub fn new(checkpoint: Checkpoint, signature_der: &[u8], block_hashes: Vec<String>) -> Self {
        Self {
            checkpoint,
            signature: BASE64.encode(signature_der),
            algorithm: SIGNING_ALGORITHM.to_string(),
            block_hashes,
        }
    }

    /// The listed hash of block `seq`, if this checkpoint lists it.
    pub fn listed_hash(&self, seq: u64) -> Option<&str> {
        let offset = seq.checked_sub(self.checkpoint.first_seq)?;
        self.block_hashes
            .get(usize::try_from(offset).ok()?)
            .map(String::as_str)
    }

    /// Why the block list does not match what was signed, if it does not: its length must be
    /// `seq - first_seq + 1` and its digest `blocks_sha256`.
    pub fn list_fault(&self) -> Option<String> {
        let c = &self.checkpoint;
        let expected = (c.seq + 1).checked_sub(c.first_seq);
        if expected != Some(self.block_hashes.len() as u64) {
            return Some(format!(
                "lists {} block hashes for blocks {}..={}",
                self.block_hashes.len(),
                c.first_seq,
                c.seq
            ));
        }
        match blocks_digest(&self.block_hashes) {
            Some(d) if d == c.blocks_sha256 => None,
            Some(d) => Some(format!(
                "the listed block hashes digest to {d}, the signed blocks_sha256 is {}",
                c.blocks_sha256
            )),
            None => Some("a listed block hash is not 64 hex digits".into()),
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

/// Hex SHA-256 of the concatenated 32-byte block hashes, or None if one is not 64 hex digits.
pub fn blocks_digest<S: AsRef<str>>(hashes: &[S]) -> Option<String> {
    let mut digest = Sha256::new();
    for h in hashes {
        let raw: [u8; 32] = hex::decode(h.as_ref()).ok()?.try_into().ok()?;
        digest.update(raw);
    }
    Some(hex::encode(digest.finalize()))
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

/// Prefix of a tenant's locators.
pub fn locator_prefix(tenant_id: &str) -> String {
    format!("{LOCATORS_PREFIX}tenant={tenant_id}/")
}

/// `checkpoints/by-seq/tenant=<tenant>/<seq, 20 digits>-<number, 12 digits>`: an empty,
/// write-once object per checkpoint. Listing after the key of seq `k - 1` finds the first
/// checkpoint that reaches block `k` — the one that lists it — in one request, without knowing
/// its number.
pub fn locator_key(tenant_id: &str, seq: u64, number: u64) -> String {
    format!("{}{seq:020}-{number:012}", locator_prefix(tenant_id))
}

/// The key to list after to find the first locator with seq ≥ `seq`.
pub fn locator_search_after(tenant_id: &str, seq: u64) -> String {
    match seq.checked_sub(1) {
        Some(below) => format!("{}{below:020}-~", locator_prefix(tenant_id)),
        None => locator_prefix(tenant_id),
    }
}

/// `(seq, number)` of a locator key of `tenant_id`.
pub fn parse_locator_key(tenant_id: &str, key: &str) -> Option<(u64, u64)> {
    let rest = key.strip_prefix(&locator_prefix(tenant_id))?;
    let (seq, number) = rest.split_once('-')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(seq, 20) || !digits(number, 12) {
        return None;
    }
    Some((seq.parse().ok()?, number.parse().ok()?))
}
