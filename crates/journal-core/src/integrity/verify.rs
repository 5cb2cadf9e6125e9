//! Recomputes the journal's integrity from what is stored and names exactly what is wrong.
//!
//! [`verify_chain`] checks the headers of one chain: no gaps (of any length, at the start, in the
//! middle or after the last stored block up to the head), every `prev_hash` link, and the head.
//! [`verify_block`] checks one block's rows against its header: each row's leaf hash recomputed
//! from its canonical bytes and salt, the leaf indices complete and unique, the physical order,
//! membership (a row of another block means a substituted file), and the Merkle root.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::chain::{BlockHeader, ChainHead, GENESIS_PREV_HASH};
use super::leaf::leaf_hash;
use super::merkle::{merkle_root, Hash32};
use crate::columnar::JournalRow;

/// One thing verification found wrong. Each names the chain position and, where it applies, the
/// row, so an auditor can go straight to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// Blocks `from_seq..=to_seq` are absent from the chain store.
    MissingBlocks { from_seq: u64, to_seq: u64 },
    /// Two different headers claim the same sequence number.
    ConflictingBlocks { seq: u64 },
    /// Block `seq`'s `prev_hash` is not the hash of block `seq - 1` (one of the two was altered
    /// or replaced).
    BrokenLink {
        seq: u64,
        expected_prev: String,
        found_prev: String,
    },
    /// The head names a block hash that the stored block at its seq does not have.
    HeadMismatch {
        seq: u64,
        head_hash: String,
        block_hash: String,
    },
    /// A stored block lies beyond the head (written without moving the head).
    BlockAfterHead { seq: u64, head_seq: u64 },
    /// The chain has blocks but no head.
    MissingHead,
    /// The block's file is gone.
    MissingFile {
        seq: u64,
        block_id: String,
        file_key: String,
    },
    /// The file at the block's key does not decode as a journal Parquet file.
    UnreadableFile {
        seq: u64,
        block_id: String,
        file_key: String,
        reason: String,
    },
    /// The file at the block's key is not the file ingest wrote (different bytes): rewritten
    /// (rows altered, dropped or reordered) or substituted.
    FileChanged {
        seq: u64,
        file_key: String,
        expected_sha256: String,
        found_sha256: String,
    },
    /// A row in the block's file belongs to another block: the file was substituted or mixed.
    ForeignRow {
        seq: u64,
        block_id: String,
        record_id: String,
        row_block_id: String,
    },
    /// The row's content no longer matches its own leaf hash.
    AlteredRow {
        seq: u64,
        block_id: String,
        leaf_index: u64,
        record_id: String,
    },
    /// A leaf the header counts has no row.
    MissingRow {
        seq: u64,
        block_id: String,
        leaf_index: u64,
    },
    /// Two rows claim the same leaf.
    DuplicateRow {
        seq: u64,
        block_id: String,
        leaf_index: u64,
    },
    /// A row claims a leaf index the header does not have.
    ExtraRow {
        seq: u64,
        block_id: String,
        leaf_index: u64,
        record_id: String,
    },
    /// Rows are stored out of leaf order (first out-of-place row named).
    ReorderedRows {
        seq: u64,
        block_id: String,
        position: u64,
        leaf_index: u64,
    },
    /// The stored leaf hashes do not rebuild the sealed Merkle root (rows replaced by
    /// self-consistent forgeries, or leaf indices permuted).
    RootMismatch {
        seq: u64,
        block_id: String,
        expected: String,
        computed: String,
    },
    /// The block's file was deleted and the tombstone standing for it does not account for it
    /// (unreadable, altered, badly signed, or not listing the block as the chain holds it).
    BadTombstone {
        seq: u64,
        block_id: String,
        tombstone_key: String,
        reason: String,
    },
    /// An erasure receipt says this leaf's row was removed, but the row is still stored.
    ErasedRowPresent {
        seq: u64,
        block_id: String,
        leaf_index: u64,
    },
    /// An erasure receipt the rewritten file names does not account for itself (unreadable,
    /// altered, badly signed, another tenant's, or listing another block at this seq).
    BadReceipt {
        seq: u64,
        block_id: String,
        receipt_key: String,
        reason: String,
    },
    /// An erasure receipt names a leaf the block does not have.
    BadErasure {
        seq: u64,
        block_id: String,
        leaf_index: u64,
        reason: String,
    },
    /// A row cannot be canonicalized at all.
    UnreadableRow {
        seq: u64,
        block_id: String,
        leaf_index: u64,
        reason: String,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Fault::*;
        match self {
            MissingBlocks { from_seq, to_seq } if from_seq == to_seq => {
                write!(f, "missing block: seq {from_seq} is absent from the chain")
            }
            MissingBlocks { from_seq, to_seq } => write!(
                f,
                "missing blocks: seq {from_seq}..={to_seq} ({} blocks) are absent from the chain",
                to_seq - from_seq + 1
            ),
            ConflictingBlocks { seq } => write!(f, "two different blocks claim seq {seq}"),
            BrokenLink { seq, expected_prev, found_prev } => write!(
                f,
                "broken link at seq {seq}: prev_hash {found_prev} but block {} hashes to {expected_prev} (altered or substituted block)",
                seq.saturating_sub(1)
            ),
            HeadMismatch { seq, head_hash, block_hash } => write!(
                f,
                "chain head names block {seq} with hash {head_hash}, but the stored block hashes to {block_hash}"
            ),
            BlockAfterHead { seq, head_seq } => {
                write!(f, "block {seq} is stored beyond the chain head (seq {head_seq})")
            }
            MissingHead => write!(f, "chain has blocks but no head"),
            MissingFile { seq, block_id, file_key } => {
                write!(f, "block {seq} ({block_id}): file {file_key} is missing")
            }
            UnreadableFile { seq, block_id, file_key, reason } => write!(
                f,
                "block {seq} ({block_id}): file {file_key} is not a readable journal file: {reason}"
            ),
            FileChanged { seq, file_key, expected_sha256, found_sha256 } => write!(
                f,
                "block {seq}: file {file_key} has sha256 {found_sha256}, ingest wrote {expected_sha256} (file rewritten or substituted)"
            ),
            ForeignRow { seq, block_id, record_id, row_block_id } => write!(
                f,
                "block {seq} ({block_id}): row {record_id} belongs to block {row_block_id} (substituted file)"
            ),
            AlteredRow { seq, block_id, leaf_index, record_id } => write!(
                f,
                "block {seq} ({block_id}) leaf {leaf_index}: row {record_id} was altered (content does not match its leaf hash)"
            ),
            MissingRow { seq, block_id, leaf_index } => {
                write!(f, "block {seq} ({block_id}) leaf {leaf_index}: row is missing")
            }
            DuplicateRow { seq, block_id, leaf_index } => {
                write!(f, "block {seq} ({block_id}) leaf {leaf_index}: more than one row")
            }
            ExtraRow { seq, block_id, leaf_index, record_id } => write!(
                f,
                "block {seq} ({block_id}): row {record_id} claims leaf {leaf_index}, beyond the block's count"
            ),
            ReorderedRows { seq, block_id, position, leaf_index } => write!(
                f,
                "block {seq} ({block_id}): rows reordered (position {position} holds leaf {leaf_index})"
            ),
            RootMismatch { seq, block_id, expected, computed } => write!(
                f,
                "block {seq} ({block_id}): leaves rebuild Merkle root {computed}, sealed root is {expected}"
            ),
            BadTombstone { seq, block_id, tombstone_key, reason } => write!(
                f,
                "block {seq} ({block_id}): its file was deleted, but tombstone {tombstone_key} does not account for it: {reason}"
            ),
            ErasedRowPresent { seq, block_id, leaf_index } => write!(
                f,
                "block {seq} ({block_id}) leaf {leaf_index}: an erasure receipt removed this row, but it is still stored"
            ),
            BadReceipt { seq, block_id, receipt_key, reason } => write!(
                f,
                "block {seq} ({block_id}): rows were removed under erasure receipt {receipt_key}, which does not account for it: {reason}"
            ),
            BadErasure { seq, block_id, leaf_index, reason } => write!(
                f,
                "block {seq} ({block_id}): an erasure receipt names leaf {leaf_index}: {reason}"
            ),
            UnreadableRow { seq, block_id, leaf_index, reason } => {
                write!(f, "block {seq} ({block_id}) leaf {leaf_index}: unreadable row: {reason}")
            }
        }
    }
}

/// What a verification covered and what it found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub chain_id: String,
    pub blocks_checked: u64,
    pub rows_checked: u64,
    pub head_seq: Option<u64>,
    pub faults: Vec<Fault>,
    /// Blocks whose files retention deleted, each accounted for by a tombstone (not faults).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_by_rule: Vec<DeletedSpan>,
    /// Blocks some of whose rows an erasure removed, per receipt (the span's key): their
    /// leaves stand in for the rows, so the blocks still verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<DeletedSpan>,
    /// Blocks whose files are archived and not restored: linked in the chain, rows not read
    /// (the span's key is the file). Restore them to check their rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archived: Vec<DeletedSpan>,
}

/// Consecutive blocks deleted under one tombstone (or, in [`VerifyReport::archived`], held in
/// one archived file, named by `tombstone_key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedSpan {
    pub from_seq: u64,
    pub to_seq: u64,
    pub tombstone_key: String,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.faults.is_empty()
    }

    /// Records block `seq` as deleted under `tombstone_key` (blocks arrive by seq).
    pub fn note_deleted(&mut self, seq: u64, tombstone_key: &str) {
        note_deleted(&mut self.deleted_by_rule, seq, tombstone_key);
    }

    /// Records rows of block `seq` as erased under `receipt_key` (blocks arrive by seq).
    pub fn note_erased(&mut self, seq: u64, receipt_key: &str) {
        note_deleted(&mut self.erased, seq, receipt_key);
    }

    /// Records block `seq` as archived in `file_key` (blocks arrive by seq).
    pub fn note_archived(&mut self, seq: u64, file_key: &str) {
        note_deleted(&mut self.archived, seq, file_key);
    }

    pub fn blocks_deleted(&self) -> u64 {
        self.deleted_by_rule
            .iter()
            .map(|s| s.to_seq - s.from_seq + 1)
            .sum()
    }
}

/// Appends `seq` to the last span if it continues it under the same tombstone.
pub fn note_deleted(spans: &mut Vec<DeletedSpan>, seq: u64, tombstone_key: &str) {
    match spans.last_mut() {
        Some(last) if last.to_seq + 1 == seq && last.tombstone_key == tombstone_key => {
            last.to_seq = seq
        }
        _ => spans.push(DeletedSpan {
            from_seq: seq,
            to_seq: seq,
            tombstone_key: tombstone_key.to_string(),
        }),
    }
}

/// Checks the chain's headers (in any order) against its head.
pub fn verify_chain(headers: &[BlockHeader], head: Option<&ChainHead>) -> Vec<Fault> {
    let mut faults = Vec::new();
    let mut by_seq: BTreeMap<u64, &BlockHeader> = BTreeMap::new();
    for h in headers {
        if let Some(existing) = by_seq.insert(h.seq, h) {
            if existing != h {
                faults.push(Fault::ConflictingBlocks { seq: h.seq });
            }
        }
    }
    let mut expected = 0u64;
    let mut prev: Option<&BlockHeader> = None;
    for (&seq, header) in &by_seq {
        if seq > expected {
            faults.push(Fault::MissingBlocks {
                from_seq: expected,
                to_seq: seq - 1,
            });
        } else {
            let want = match prev {
                Some(p) => p.block_hash(),
                None => GENESIS_PREV_HASH.to_string(),
            };
            if header.prev_hash != want {
                faults.push(Fault::BrokenLink {
                    seq,
                    expected_prev: want,
                    found_prev: header.prev_hash.clone(),
                });
            }
        }
        prev = Some(header);
        expected = seq + 1;
    }
    match (head, by_seq.last_key_value()) {
        (None, Some(_)) => faults.push(Fault::MissingHead),
        (None, None) => {}
        (Some(head), last) => {
            let stored_len = last.map_or(0, |(&s, _)| s + 1);
            if head.seq + 1 > stored_len {
                faults.push(Fault::MissingBlocks {
                    from_seq: stored_len,
                    to_seq: head.seq,
                });
            }
            for (&seq, _) in by_seq.range(head.seq + 1..) {
                faults.push(Fault::BlockAfterHead {
                    seq,
                    head_seq: head.seq,
                });
            }
            if let Some(block) = by_seq.get(&head.seq) {
                let hash = block.block_hash();
                if hash != head.block_hash {
                    faults.push(Fault::HeadMismatch {
                        seq: head.seq,
                        head_hash: head.block_hash.clone(),
                        block_hash: hash,
                    });
                }
            }
        }
    }
    faults
}

/// One stored row as its integrity columns state it, and what recomputing its leaf from its
/// content gave, where that was done.
#[derive(Clone, Debug)]
pub struct StoredLeaf<'a> {
    pub block_id: &'a str,
    pub record_id: &'a str,
    pub leaf_index: u32,
    pub leaf_hash: Hash32,
    /// `None`: the content was not re-hashed (a sampled check skipped this row);
    /// `Some(Err)`: the content could not be serialized.
    pub recomputed: Option<Result<Hash32, String>>,
}

impl<'a> StoredLeaf<'a> {
    /// The row with its leaf recomputed from its content.
    pub fn of_row(row: &'a JournalRow) -> Self {
        Self {
            block_id: &row.block_id,
            record_id: row.record.record_id(),
            leaf_index: row.leaf_index,
            leaf_hash: row.leaf_hash,
            recomputed: Some(Self::recompute(row)),
        }
    }

    /// The row's leaf recomputed from its content and salt.
    pub fn recompute(row: &JournalRow) -> Result<Hash32, String> {
        row.record
            .canonical_bytes()
            .map(|bytes| leaf_hash(&row.salt, &bytes))
            .map_err(|e| e.to_string())
    }
}

/// Checks one block's rows, as found in storage in physical order, against its header.
/// `rows = None` means the block's file is missing.
pub fn verify_block(header: &BlockHeader, rows: Option<&[JournalRow]>) -> Vec<Fault> {
    let leaves: Option<Vec<StoredLeaf>> = rows.map(|r| r.iter().map(StoredLeaf::of_row).collect());
    verify_block_leaves(header, leaves.as_deref())
}

/// [`verify_block`] over rows' integrity columns: leaf indexes `0..count` once each in order,
/// the Merkle root of the stored leaves, and every recomputed leaf equal to the stored one.
pub fn verify_block_leaves(header: &BlockHeader, rows: Option<&[StoredLeaf]>) -> Vec<Fault> {
    verify_block_erased(header, rows, &[])
}

/// [`verify_block_leaves`] for a block some of whose rows were erased: `erased` holds the leaf
/// index and hash of each row an erasure receipt says was removed. They stand in for their rows
/// in the completeness check and the Merkle root; a row still stored under an erased leaf is a
/// fault.
pub fn verify_block_erased(
    header: &BlockHeader,
    rows: Option<&[StoredLeaf]>,
    erased: &[(u32, Hash32)],
) -> Vec<Fault> {
    let seq = header.seq;
    let block_id = || header.block_id.clone();
    let Some(rows) = rows else {
        return vec![Fault::MissingFile {
            seq,
            block_id: block_id(),
            file_key: header.file_key.clone(),
        }];
    };
    let mut faults = Vec::new();
    let mut leaves: BTreeMap<u64, Hash32> = BTreeMap::new();
    let mut last_index: Option<u64> = None;
    let mut reported_order = false;
    for (position, row) in rows.iter().enumerate() {
        let leaf_index = u64::from(row.leaf_index);
        if row.block_id != header.block_id {
            faults.push(Fault::ForeignRow {
                seq,
                block_id: block_id(),
                record_id: row.record_id.to_string(),
                row_block_id: row.block_id.to_string(),
            });
            continue;
        }
        if leaf_index >= header.count {
            faults.push(Fault::ExtraRow {
                seq,
                block_id: block_id(),
                leaf_index,
                record_id: row.record_id.to_string(),
            });
            continue;
        }
        if !reported_order && last_index.is_some_and(|l| leaf_index < l) {
            faults.push(Fault::ReorderedRows {
                seq,
                block_id: block_id(),
                position: position as u64,
                leaf_index,
            });
            reported_order = true;
        }
        last_index = Some(leaf_index);
        match &row.recomputed {
            Some(Ok(leaf)) if *leaf != row.leaf_hash => faults.push(Fault::AlteredRow {
                seq,
                block_id: block_id(),
                leaf_index,
                record_id: row.record_id.to_string(),
            }),
            Some(Err(reason)) => faults.push(Fault::UnreadableRow {
                seq,
                block_id: block_id(),
                leaf_index,
                reason: reason.clone(),
            }),
            _ => {}
        }
        if leaves.insert(leaf_index, row.leaf_hash).is_some() {
            faults.push(Fault::DuplicateRow {
                seq,
                block_id: block_id(),
                leaf_index,
            });
        }
    }
    for &(leaf_index, leaf_hash) in erased {
        let leaf_index = u64::from(leaf_index);
        if leaf_index >= header.count {
            faults.push(Fault::BadErasure {
                seq,
                block_id: block_id(),
                leaf_index,
                reason: format!("the block has {} leaves", header.count),
            });
        } else if let std::collections::btree_map::Entry::Vacant(slot) = leaves.entry(leaf_index) {
            slot.insert(leaf_hash);
        } else {
            faults.push(Fault::ErasedRowPresent {
                seq,
                block_id: block_id(),
                leaf_index,
            });
        }
    }
    let missing: Vec<u64> = (0..header.count)
        .filter(|i| !leaves.contains_key(i))
        .collect();
    for &leaf_index in &missing {
        faults.push(Fault::MissingRow {
            seq,
            block_id: block_id(),
            leaf_index,
        });
    }
    // The root is only meaningful over a complete leaf set; with rows missing the faults above
    // already name them.
    if missing.is_empty() {
        let ordered: Vec<Hash32> = leaves.into_values().collect();
        let computed = hex::encode(merkle_root(&ordered));
        if computed != header.merkle_root {
            faults.push(Fault::RootMismatch {
                seq,
                block_id: block_id(),
                expected: header.merkle_root.clone(),
                computed,
            });
        }
    }
    faults
}

#[cfg(test)]
mod tests;
