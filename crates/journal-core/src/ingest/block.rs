//! Building one block from sealed records: rows with salts and leaf hashes, the Parquet file,
//! the Merkle root and header, and the index pointers. Pure CPU, no I/O (the benchmark drives
//! exactly this path).

use crate::columnar::{self, EncodedFile, JournalRow, RowPosition, WriterConfig};
use crate::integrity::chain::{next_link, HEADER_VERSION};
use crate::integrity::{leaf_hash, merkle_root, new_salt, BlockHeader, ChainHead};
use crate::ports::{FileState, Pointer};
use crate::record::Record;
use crate::timestamp::Timestamp;

use super::seal::SealedRecord;
use super::IngestError;

/// A block whose file is encoded but not yet chained.
#[derive(Debug)]
pub struct PreparedBlock {
    pub tenant_id: String,
    pub block_id: String,
    pub file_key: String,
    pub rows: Vec<JournalRow>,
    pub file: EncodedFile,
    pub merkle_root: String,
    pub first_occurred_at: Timestamp,
    pub last_occurred_at: Timestamp,
    pub sealed_at: Timestamp,
}

impl PreparedBlock {
    /// The risk tiers of the block's records, sorted and distinct (`none` for records
    /// without one), for retention.
    pub fn risk_tiers(&self) -> Vec<String> {
        let tiers: std::collections::BTreeSet<&str> = self
            .rows
            .iter()
            .map(|r| r.record.risk_tier.map_or("none", |t| t.as_str()))
            .collect();
        tiers.into_iter().map(str::to_string).collect()
    }
}

pub fn prepare_block(
    tenant_id: &str,
    block_id: &str,
    file_key: &str,
    records: Vec<SealedRecord>,
    writer: &WriterConfig,
    sealed_at: Timestamp,
) -> Result<PreparedBlock, IngestError> {
    let mut rows: Vec<JournalRow> = Vec::with_capacity(records.len());
    let mut canonical = Vec::with_capacity(records.len());
    for (i, s) in records.into_iter().enumerate() {
        let salt = new_salt();
        // Sealing computed the canonical bytes already; the record has not changed since.
        debug_assert_eq!(
            s.record.canonical_bytes().ok().as_deref(),
            Some(s.canonical_bytes()),
            "sealed record changed after sealing"
        );
        rows.push(JournalRow {
            leaf_hash: leaf_hash(&salt, s.canonical_bytes()),
            record: s.record,
            block_id: block_id.to_string(),
            leaf_index: u32::try_from(i)
                .map_err(|_| IngestError::Encode("block too large".into()))?,
            salt,
            features_sealed: s.features_sealed,
        });
        canonical.push(s.canonical);
    }
    let first = rows.iter().map(|r| r.record.occurred_at).min();
    let last = rows.iter().map(|r| r.record.occurred_at).max();
    let (Some(first_occurred_at), Some(last_occurred_at)) = (first, last) else {
        return Err(IngestError::Encode(
            "a block needs at least one record".into(),
        ));
    };
    let leaves: Vec<[u8; 32]> = rows.iter().map(|r| r.leaf_hash).collect();
    let metadata = [
        ("dj.tenant_id".to_string(), tenant_id.to_string()),
        ("dj.block_id".to_string(), block_id.to_string()),
    ];
    // The free-form columns are slices of the bytes the leaves cover, not written again.
    let file = columnar::encode_sealed_file(&rows, &canonical, writer, &metadata)
        .map_err(|e| IngestError::Encode(e.to_string()))?;
    Ok(PreparedBlock {
        tenant_id: tenant_id.to_string(),
        block_id: block_id.to_string(),
        file_key: file_key.to_string(),
        merkle_root: hex::encode(merkle_root(&leaves)),
        rows,
        file,
        first_occurred_at,
        last_occurred_at,
        sealed_at,
    })
}

impl PreparedBlock {
    /// The header linking this block after `head` (or as the genesis block).
    pub fn header_after(&self, head: Option<&ChainHead>) -> BlockHeader {
        let (seq, prev_hash) = next_link(head);
        BlockHeader {
            version: HEADER_VERSION,
            chain_id: self.tenant_id.clone(),
            tenant_id: self.tenant_id.clone(),
            seq,
            block_id: self.block_id.clone(),
            prev_hash,
            merkle_root: self.merkle_root.clone(),
            count: self.rows.len() as u64,
            first_occurred_at: self.first_occurred_at,
            last_occurred_at: self.last_occurred_at,
            sealed_at: self.sealed_at,
            file_key: self.file_key.clone(),
            file_sha256: self.file.sha256.clone(),
        }
    }
}

/// The subject timeline a record is indexed under: its own subject, or, for an access record,
/// the subject its request named (so an erasure finds who searched for the subject; replay's
/// subject queries leave access records out).
pub fn timeline_subject(r: &Record) -> Option<String> {
    if r.kind != crate::record::Kind::Access {
        return r.subject_ref.clone();
    }
    r.context
        .as_ref()
        .and_then(|c| c.get("target"))
        .and_then(|t| t.get("subject_ref"))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The final index entry of a row at `position` of a chained block.
pub fn pointer_for(
    row: &JournalRow,
    position: RowPosition,
    header: &BlockHeader,
    file_key: &str,
    content_mac: String,
) -> Pointer {
    let r: &Record = &row.record;
    Pointer {
        tenant_id: r.tenant_id.clone(),
        record_id: r.record_id().to_string(),
        kind: r.kind.as_str().to_string(),
        block_id: row.block_id.clone(),
        seq: header.seq,
        file_key: file_key.to_string(),
        row_group: position.row_group as u32,
        row: position.row_in_group as u32,
        leaf_index: row.leaf_index,
        occurred_at: r.occurred_at,
        received_at: r.received_at.unwrap_or(r.occurred_at),
        subject_ref: timeline_subject(r),
        model_name: r.model.as_ref().map(|m| m.name.clone()),
        model_version: r.model.as_ref().map(|m| m.version.clone()),
        decision: r.decision.clone(),
        risk_tier: r.risk_tier.map(|t| t.as_str().to_string()),
        refers_to: r.refers_to().map(str::to_string),
        content_mac,
        storage_state: FileState::Live,
        block: header.clone(),
    }
}
