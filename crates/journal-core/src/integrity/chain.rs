//! Block headers and the per-tenant hash chain.
//!
//! A block is what one ingest invocation writes for one tenant (one Parquet file). Its header
//! commits to the Merkle root of the block's leaves, their count and time range, the file it was
//! written to, and the previous block's hash; the block hash is SHA-256 of the header's RFC 8785
//! bytes. Block `seq` 0 links to [`GENESIS_PREV_HASH`]. The chain head is moved from `seq - 1`
//! to `seq` by a conditional write, so concurrent ingests serialize without locks.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::timestamp::Timestamp;

/// `prev_hash` of the first block of every chain.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

pub const HEADER_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    pub version: u32,
    /// Chain this block belongs to: a tenant, or `tenant#shard` when a tenant is sharded.
    pub chain_id: String,
    pub tenant_id: String,
    pub seq: u64,
    /// ULID of the block; every row of the block carries it.
    pub block_id: String,
    /// Hex block hash of block `seq - 1`, or [`GENESIS_PREV_HASH`].
    pub prev_hash: String,
    /// Hex RFC 6962 root over the leaf hashes in leaf-index order.
    pub merkle_root: String,
    pub count: u64,
    pub first_occurred_at: Timestamp,
    pub last_occurred_at: Timestamp,
    /// When ingest sealed the block.
    pub sealed_at: Timestamp,
    /// Where ingest wrote the block (compaction may move the rows later; membership stays).
    pub file_key: String,
    /// Hex SHA-256 of the file as ingest wrote it.
    pub file_sha256: String,
}

impl BlockHeader {
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical::to_vec_of(self).expect("a header holds only strings and safe integers")
    }

    /// Hex SHA-256 of the canonical header.
    pub fn block_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }
}

/// The newest block of a chain, as stored beside it (the target of the conditional append).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub chain_id: String,
    pub seq: u64,
    pub block_hash: String,
    pub block_id: String,
}

impl ChainHead {
    pub fn of(header: &BlockHeader) -> Self {
        Self {
            chain_id: header.chain_id.clone(),
            seq: header.seq,
            block_hash: header.block_hash(),
            block_id: header.block_id.clone(),
        }
    }
}

/// Sequence number and previous hash for the block after `head` (or the genesis block).
pub fn next_link(head: Option<&ChainHead>) -> (u64, String) {
    match head {
        Some(h) => (h.seq + 1, h.block_hash.clone()),
        None => (0, GENESIS_PREV_HASH.to_string()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn header(seq: u64, prev: &str) -> BlockHeader {
        let t = Timestamp::parse("2026-03-15T10:00:00Z").unwrap();
        BlockHeader {
            version: HEADER_VERSION,
            chain_id: "bank_1".into(),
            tenant_id: "bank_1".into(),
            seq,
            block_id: format!("B{seq}"),
            prev_hash: prev.into(),
            merkle_root: "ab".repeat(32),
            count: 3,
            first_occurred_at: t,
            last_occurred_at: t,
            sealed_at: t,
            file_key: format!("decisions/tenant=bank_1/date=2026-03-15/hour=10/B{seq}.parquet"),
            file_sha256: "cd".repeat(32),
        }
    }

    #[test]
    fn block_hash_covers_every_field_and_is_stable() {
        let h = header(0, GENESIS_PREV_HASH);
        assert_eq!(h.block_hash(), h.clone().block_hash());
        let mut other = h.clone();
        other.count = 4;
        assert_ne!(h.block_hash(), other.block_hash());
        let mut other = h.clone();
        other.prev_hash = "11".repeat(32);
        assert_ne!(h.block_hash(), other.block_hash());
        assert!(String::from_utf8(h.canonical_bytes())
            .unwrap()
            .starts_with("{\"block_id\""));
        assert_eq!(next_link(None), (0, GENESIS_PREV_HASH.to_string()));
        assert_eq!(next_link(Some(&ChainHead::of(&h))), (1, h.block_hash()));
    }
}
