//! The tombstone of a file retention deleted: which rule removed it, when, and the blocks it
//! held (their hashes and Merkle roots), signed like a checkpoint.
//!
//! A file holds whole blocks (an ingest file one, a compacted file several), so the block
//! headers that stay in the chain, and the roots the tombstone repeats, are what verification
//! needs: the chain still links through every deleted block, and a missing file is either
//! covered by a validly signed tombstone that agrees with its headers ("deleted by rule") or a
//! fault. Leaf hashes are not repeated: every leaf of a listed block is gone, and the root
//! already commits to them.

use serde::{Deserialize, Serialize};

use super::sealed::{digest_hex, Sealed};
use crate::checkpoint::CheckpointPublicKey;
use crate::integrity::BlockHeader;
use crate::layout::DECISIONS_PREFIX;
use crate::ports::PortError;
use crate::timestamp::Timestamp;

pub const TOMBSTONE_VERSION: u32 = 1;
pub const TOMBSTONES_PREFIX: &str = "tombstones/";

/// Where the tombstone of a data file is kept: its key with `tombstones/` for `decisions/` and
/// `.json` for `.parquet`, so a resumed run finds the one it wrote.
pub fn tombstone_key(file_key: &str) -> String {
    let rest = file_key.strip_prefix(DECISIONS_PREFIX).unwrap_or(file_key);
    let stem = rest.strip_suffix(".parquet").unwrap_or(rest);
    format!("{TOMBSTONES_PREFIX}{stem}.json")
}

/// The rule that removed a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovalRule {
    pub policy_version: u64,
    /// Path of the rule in the policy, e.g. `tenants.bank_1.tiers.high`.
    pub rule: String,
    pub expire_after_years: u32,
    /// When the file's newest record reached its expiry.
    pub due_at: Timestamp,
}

/// The signed part (small: KMS signs at most 4 KiB); the block list is bound by
/// `blocks_sha256`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tombstone {
    pub version: u32,
    pub tenant_id: String,
    pub file_key: String,
    pub file_sha256: String,
    pub rows: u64,
    pub first_occurred_at: Timestamp,
    pub last_occurred_at: Timestamp,
    pub removed_by: RemovalRule,
    pub deleted_at: Timestamp,
    pub first_seq: u64,
    pub last_seq: u64,
    pub block_count: u64,
    /// Hex SHA-256 of the canonical JSON of `blocks`.
    pub blocks_sha256: String,
    pub key_id: String,
}

/// One deleted block, as its header in the chain names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TombstonedBlock {
    pub seq: u64,
    pub block_id: String,
    pub block_hash: String,
    pub merkle_root: String,
    pub count: u64,
}

impl TombstonedBlock {
    pub fn of(header: &BlockHeader) -> Self {
        Self {
            seq: header.seq,
            block_id: header.block_id.clone(),
            block_hash: header.block_hash(),
            merkle_root: header.merkle_root.clone(),
            count: header.count,
        }
    }
}

/// A tombstone as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TombstoneFile {
    pub sealed: Sealed<Tombstone>,
    pub blocks: Vec<TombstonedBlock>,
}

impl TombstoneFile {
    pub fn tombstone(&self) -> &Tombstone {
        &self.sealed.document
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a tombstone serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// What is wrong with the tombstone itself, if anything: the block list must be the one
    /// signed; with a key, the signature must hold.
    pub fn fault(&self, key: Option<&CheckpointPublicKey>) -> Option<String> {
        let t = self.tombstone();
        if t.version != TOMBSTONE_VERSION {
            return Some(format!("unknown tombstone version {}", t.version));
        }
        if t.block_count != self.blocks.len() as u64 {
            return Some(format!(
                "signed for {} blocks, lists {}",
                t.block_count,
                self.blocks.len()
            ));
        }
        match digest_hex(&self.blocks) {
            Ok(d) if d == t.blocks_sha256 => {}
            Ok(d) => {
                return Some(format!(
                    "the listed blocks digest to {d}, the signed blocks_sha256 is {}",
                    t.blocks_sha256
                ))
            }
            Err(e) => return Some(e.to_string()),
        }
        key.and_then(|k| self.sealed.signature_fault(k))
            .map(|e| format!("signature: {e}"))
    }

    /// Why this tombstone does not account for the block `header` names, if it does not.
    pub fn block_fault(&self, header: &BlockHeader) -> Option<String> {
        let Some(listed) = self.blocks.iter().find(|b| b.seq == header.seq) else {
            return Some(format!("does not list block {}", header.seq));
        };
        if *listed != TombstonedBlock::of(header) {
            return Some(format!(
                "lists block {} as {} with root {}, the chain holds {} with root {}",
                header.seq,
                listed.block_hash,
                listed.merkle_root,
                header.block_hash(),
                header.merkle_root
            ));
        }
        None
    }
}

/// Builds the tombstone of `file_key` over `blocks` (their headers, by seq).
#[allow(clippy::too_many_arguments)]
pub fn tombstone_for(
    tenant_id: &str,
    file_key: &str,
    file_sha256: &str,
    rows: u64,
    occurred: (Timestamp, Timestamp),
    removed_by: RemovalRule,
    deleted_at: Timestamp,
    blocks: &[BlockHeader],
    key_id: &str,
) -> Result<(Tombstone, Vec<TombstonedBlock>), PortError> {
    let listed: Vec<TombstonedBlock> = blocks.iter().map(TombstonedBlock::of).collect();
    let tombstone = Tombstone {
        version: TOMBSTONE_VERSION,
        tenant_id: tenant_id.to_string(),
        file_key: file_key.to_string(),
        file_sha256: file_sha256.to_string(),
        rows,
        first_occurred_at: occurred.0,
        last_occurred_at: occurred.1,
        removed_by,
        deleted_at,
        first_seq: listed.first().map_or(0, |b| b.seq),
        last_seq: listed.last().map_or(0, |b| b.seq),
        block_count: listed.len() as u64,
        blocks_sha256: digest_hex(&listed)?,
        key_id: key_id.to_string(),
    };
    Ok((tombstone, listed))
}
