//! Verification of a chain as storage holds it: headers and head from the index, each block's
//! rows read back from its file.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::chain::BlockHeader;
use super::verify::{
    verify_block, verify_block_erased, verify_chain, Fault, StoredLeaf, VerifyReport,
};
use crate::checkpoint::CheckpointPublicKey;
use crate::columnar::{self, CodecError, JournalRow};
use crate::ports::{JournalIndex, ManifestEntry, ObjectStore, PortError};
use crate::retention::erasure_receipt::ReceiptFile;
use crate::retention::TombstoneFile;

#[derive(Debug, thiserror::Error)]
pub enum StoredVerifyError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("block {seq}: file {file_key} cannot be read: {source}")]
    Unreadable {
        seq: u64,
        file_key: String,
        source: CodecError,
    },
}

/// A block's file as read back from storage.
#[derive(Debug)]
pub enum StoredFile {
    /// No object at the header's `file_key`.
    Missing,
    /// The object exists but is not a journal Parquet file.
    Unreadable { sha256: String, error: CodecError },
    /// The decoded rows, in physical order, and the hex SHA-256 of the object's bytes.
    Rows {
        sha256: String,
        rows: Vec<JournalRow>,
    },
    /// The block's rows as compaction (or an erasure's rewrite) moved them into `file_key`
    /// (the manifest names it): the rows are checked against the header, but not the ingest
    /// file's SHA-256. `receipts` are the erasure receipts the file's entry names: their leaves
    /// stand in for the rows they removed.
    Moved {
        file_key: String,
        rows: Vec<JournalRow>,
        receipts: Receipts,
    },
    /// In an archive storage class (the manifest says so) and not restored: not readable until
    /// a restore. The chain still links through the block; its rows are not checked.
    Archived {
        file_key: String,
        storage_class: String,
    },
    /// Deleted by retention: the tombstone the manifest names (or why it cannot be read).
    Removed {
        tombstone_key: String,
        tombstone: Arc<Result<TombstoneFile, String>>,
    },
}

/// The erasure receipts a rewritten file's manifest entry names, each read (or why it could
/// not be), oldest first.
pub type Receipts = Arc<Vec<(String, Result<ReceiptFile, String>)>>;

/// The manifest entry of a file: where compaction moved its rows (`compacted_into`) and the
/// tombstone of a file retention deleted.
pub trait MovedFiles: Sync {
    fn file_entry(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> impl std::future::Future<Output = Result<Option<ManifestEntry>, PortError>> + Send;
}

impl<I: JournalIndex> MovedFiles for I {
    async fn file_entry(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> Result<Option<ManifestEntry>, PortError> {
        self.get_manifest(tenant_id, file_key).await
    }
}

/// Reads blocks' files, following compaction and retention: a block whose ingest file is gone
/// is read from the merged file its manifest entry names, and a file retention deleted is
/// answered with its tombstone. Consecutive blocks of one merged file (or one tombstone) read
/// it once.
pub struct BlockFiles<'a, S, I> {
    store: &'a S,
    index: &'a I,
    /// The last merged file read: its key, its rows by block id and its erasure receipts.
    merged: Option<(
        String,
        std::collections::HashMap<String, Vec<JournalRow>>,
        Receipts,
    )>,
    tombstone: Option<(String, Arc<Result<TombstoneFile, String>>)>,
}

impl<'a, S: ObjectStore, I: MovedFiles> BlockFiles<'a, S, I> {
    pub fn new(store: &'a S, index: &'a I) -> Self {
        Self {
            store,
            index,
            merged: None,
            tombstone: None,
        }
    }

    pub async fn read(&mut self, header: &BlockHeader) -> Result<StoredFile, PortError> {
        let tenant = header.tenant_id.as_str();
        let file = match read_block_file(self.store, header).await {
            Ok(file) => file,
            Err(e) => return self.archived_or(tenant, &header.file_key, e).await,
        };
        if !matches!(file, StoredFile::Missing) {
            return Ok(file);
        }
        let Some(entry) = self.index.file_entry(tenant, &header.file_key).await? else {
            return Ok(StoredFile::Missing);
        };
        if let Some(key) = entry.tombstone {
            return self.removed(key).await;
        }
        let Some(into) = entry.compacted_into else {
            return Ok(StoredFile::Missing);
        };
        if self.merged.as_ref().is_none_or(|(k, _, _)| *k != into) {
            let read = match self.store.get_object(&into).await {
                Ok(read) => read,
                Err(e) => return self.archived_or(tenant, &into, e).await,
            };
            let into_entry = self.index.file_entry(tenant, &into).await?;
            let Some(bytes) = read else {
                let tombstone = into_entry.and_then(|e| e.tombstone);
                return match tombstone {
                    Some(key) => self.removed(key).await,
                    None => Ok(StoredFile::Missing),
                };
            };
            let rows = match columnar::decode_file(bytes) {
                Ok(rows) => rows,
                Err(error) => {
                    return Ok(StoredFile::Unreadable {
                        sha256: String::new(),
                        error,
                    })
                }
            };
            let mut by_block: std::collections::HashMap<String, Vec<JournalRow>> =
                std::collections::HashMap::new();
            for r in rows {
                by_block.entry(r.block_id.clone()).or_default().push(r);
            }
            let receipt_keys = into_entry.map(|e| e.erasure_receipts).unwrap_or_default();
            let receipts = self.receipts(receipt_keys).await?;
            self.merged = Some((into.clone(), by_block, receipts));
        }
        let (rows, receipts) = match self.merged.as_mut() {
            Some((_, by_block, receipts)) => (
                by_block.remove(&header.block_id).unwrap_or_default(),
                receipts.clone(),
            ),
            None => (Vec::new(), Receipts::default()),
        };
        Ok(StoredFile::Moved {
            file_key: into,
            rows,
            receipts,
        })
    }

    async fn receipts(&self, keys: Vec<String>) -> Result<Receipts, PortError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let parsed = match self.store.get_object(&key).await? {
                Some(bytes) => ReceiptFile::from_bytes(&bytes),
                None => Err("the manifest names it but it does not exist".to_string()),
            };
            out.push((key, parsed));
        }
        Ok(Arc::new(out))
    }

    /// A file that could not be read: archived (as its manifest entry says), or the error.
    async fn archived_or(
        &self,
        tenant_id: &str,
        file_key: &str,
        error: PortError,
    ) -> Result<StoredFile, PortError> {
        match self.index.file_entry(tenant_id, file_key).await? {
            // Archived, or being archived (the class is named before the object moves).
            Some(e)
                if e.state == crate::ports::FileState::Archived || e.storage_class.is_some() =>
            {
                Ok(StoredFile::Archived {
                    file_key: file_key.to_string(),
                    storage_class: e.storage_class.unwrap_or_else(|| "GLACIER".into()),
                })
            }
            _ => Err(error),
        }
    }

    async fn removed(&mut self, key: String) -> Result<StoredFile, PortError> {
        if let Some((k, t)) = &self.tombstone {
            if *k == key {
                return Ok(StoredFile::Removed {
                    tombstone_key: key,
                    tombstone: t.clone(),
                });
            }
        }
        let parsed = match self.store.get_object(&key).await? {
            Some(bytes) => TombstoneFile::from_bytes(&bytes),
            None => Err("the manifest names it but it does not exist".to_string()),
        };
        let parsed = Arc::new(parsed);
        self.tombstone = Some((key.clone(), parsed.clone()));
        Ok(StoredFile::Removed {
            tombstone_key: key,
            tombstone: parsed,
        })
    }
}

/// Reads and decodes the file a header names (one whole-object GET).
pub async fn read_block_file<S: ObjectStore>(
    store: &S,
    header: &BlockHeader,
) -> Result<StoredFile, PortError> {
    let Some(bytes) = store.get_object(&header.file_key).await? else {
        return Ok(StoredFile::Missing);
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(match columnar::decode_file(bytes) {
        Ok(rows) => StoredFile::Rows { sha256, rows },
        Err(error) => StoredFile::Unreadable { sha256, error },
    })
}

/// Everything wrong with one block's stored file: the rows against the header
/// ([`verify_block`]), the file's bytes against the SHA-256 ingest sealed into the header
/// ([`Fault::FileChanged`]), and a file that does not decode ([`Fault::UnreadableFile`]).
/// Returns the faults and the number of rows read.
pub fn check_block_file(
    header: &BlockHeader,
    file: &StoredFile,
    key: Option<&CheckpointPublicKey>,
) -> (Vec<Fault>, u64) {
    let (sha256, rows) = match file {
        StoredFile::Missing => return (verify_block(header, None), 0),
        StoredFile::Unreadable { sha256, error } => {
            let mut faults = vec![Fault::UnreadableFile {
                seq: header.seq,
                block_id: header.block_id.clone(),
                file_key: header.file_key.clone(),
                reason: error.to_string(),
            }];
            faults.extend(file_changed(header, sha256));
            return (faults, 0);
        }
        StoredFile::Rows { sha256, rows } => (sha256, rows),
        StoredFile::Moved { rows, receipts, .. } => {
            let (mut faults, erased) = erased_leaves(header, receipts, key);
            let leaves: Vec<StoredLeaf> = rows.iter().map(StoredLeaf::of_row).collect();
            faults.extend(verify_block_erased(header, Some(&leaves), &erased));
            return (faults, rows.len() as u64);
        }
        StoredFile::Removed {
            tombstone_key,
            tombstone,
        } => return (tombstone_fault(header, tombstone_key, tombstone, None), 0),
        StoredFile::Archived { .. } => return (Vec::new(), 0),
    };
    let mut faults = verify_block(header, Some(rows));
    faults.extend(file_changed(header, sha256));
    (faults, rows.len() as u64)
}

/// The leaves `receipts` say were erased from `header`'s block, and a fault for each receipt
/// that does not account for itself (unreadable, altered, badly signed with a key, another
/// tenant's). A receipt that cannot be read is reported on every block of its file; one that
/// reads is reported on the blocks it lists.
pub fn erased_leaves(
    header: &BlockHeader,
    receipts: &Receipts,
    key: Option<&CheckpointPublicKey>,
) -> (Vec<Fault>, Vec<(u32, super::Hash32)>) {
    let mut faults = Vec::new();
    let mut leaves = Vec::new();
    let bad = |receipt_key: &str, reason: String| Fault::BadReceipt {
        seq: header.seq,
        block_id: header.block_id.clone(),
        receipt_key: receipt_key.to_string(),
        reason,
    };
    for (receipt_key, receipt) in receipts.iter() {
        let r = match receipt {
            Err(e) => {
                faults.push(bad(receipt_key, format!("unreadable: {e}")));
                continue;
            }
            Ok(r) => r,
        };
        if !r.blocks.iter().any(|b| b.seq == header.seq) {
            continue;
        }
        let fault = r.fault(key).or_else(|| {
            (r.receipt().tenant_id != header.tenant_id)
                .then(|| "another tenant's receipt".to_string())
        });
        if let Some(reason) = fault {
            faults.push(bad(receipt_key, reason));
            continue;
        }
        if let Some(b) = r
            .blocks
            .iter()
            .find(|b| b.seq == header.seq && b.block_id != header.block_id)
        {
            faults.push(bad(
                receipt_key,
                format!("lists block {} at seq {}", b.block_id, header.seq),
            ));
            continue;
        }
        match r.leaves_of(header.seq) {
            Ok(l) => leaves.extend(l),
            Err(e) => faults.push(bad(receipt_key, e)),
        }
    }
    (faults, leaves)
}

/// The erasure receipts that removed rows of `header`'s block.
pub fn receipts_touching<'a>(
    header: &'a BlockHeader,
    receipts: &'a Receipts,
) -> impl Iterator<Item = &'a str> + 'a {
    receipts.iter().filter_map(move |(key, r)| {
        r.as_ref()
            .ok()
            .filter(|r| r.blocks.iter().any(|b| b.seq == header.seq))
            .map(|_| key.as_str())
    })
}

/// Why a tombstone does not account for a deleted block, if it does not: it must read, list
/// exactly what it signed, (with a key) carry a valid signature, and list the block as the
/// chain holds it.
pub fn tombstone_fault(
    header: &BlockHeader,
    tombstone_key: &str,
    tombstone: &Result<TombstoneFile, String>,
    key: Option<&CheckpointPublicKey>,
) -> Vec<Fault> {
    let reason = match tombstone {
        Err(e) => Some(format!("unreadable: {e}")),
        Ok(t) => t
            .fault(key)
            .or_else(|| {
                (t.tombstone().tenant_id != header.tenant_id)
                    .then(|| "another tenant's tombstone".to_string())
            })
            .or_else(|| t.block_fault(header)),
    };
    reason
        .map(|reason| Fault::BadTombstone {
            seq: header.seq,
            block_id: header.block_id.clone(),
            tombstone_key: tombstone_key.to_string(),
            reason,
        })
        .into_iter()
        .collect()
}

fn file_changed(header: &BlockHeader, sha256: &str) -> Option<Fault> {
    (sha256 != header.file_sha256).then(|| Fault::FileChanged {
        seq: header.seq,
        file_key: header.file_key.clone(),
        expected_sha256: header.file_sha256.clone(),
        found_sha256: sha256.to_string(),
    })
}

/// Verifies every stored block of `chain_id` and the links between them.
///
/// Checks the rows of each file against its header (not the file's bytes against
/// `file_sha256`; [`check_block_file`] does both) and fails on a file that does not decode.
pub async fn verify_stored_chain<I: JournalIndex, S: ObjectStore>(
    index: &I,
    store: &S,
    chain_id: &str,
) -> Result<VerifyReport, StoredVerifyError> {
    let blocks = index.list_blocks(chain_id).await?;
    let head = index.chain_head(chain_id).await?;
    let mut report = VerifyReport {
        chain_id: chain_id.to_string(),
        head_seq: head.as_ref().map(|h| h.seq),
        faults: verify_chain(&blocks, head.as_ref()),
        ..VerifyReport::default()
    };
    let mut files = BlockFiles::new(store, index);
    for header in &blocks {
        report.blocks_checked += 1;
        let file = files.read(header).await?;
        if let StoredFile::Unreadable { error, .. } = file {
            return Err(StoredVerifyError::Unreadable {
                seq: header.seq,
                file_key: header.file_key.clone(),
                source: error,
            });
        }
        match &file {
            StoredFile::Removed {
                tombstone_key,
                tombstone,
            } => {
                let faults = tombstone_fault(header, tombstone_key, tombstone, None);
                if faults.is_empty() {
                    report.note_deleted(header.seq, tombstone_key);
                }
                report.faults.extend(faults);
            }
            StoredFile::Archived { file_key, .. } => report.note_archived(header.seq, file_key),
            StoredFile::Unreadable { .. } => {}
            StoredFile::Moved { receipts, .. } => {
                for key in receipts_touching(header, receipts) {
                    report.note_erased(header.seq, key);
                }
                let (faults, rows) = check_block_file(header, &file, None);
                report.rows_checked += rows;
                report.faults.extend(faults);
            }
            StoredFile::Missing => report.faults.extend(verify_block(header, None)),
            StoredFile::Rows { rows, .. } => {
                report.rows_checked += rows.len() as u64;
                report.faults.extend(verify_block(header, Some(rows)));
            }
        }
    }
    Ok(report)
}
