//! Verification of a chain as storage holds it: headers and head from the index, each block's
//! rows read back from its file.

use sha2::{Digest, Sha256};

use super::chain::BlockHeader;
use super::verify::{verify_block, verify_chain, Fault, VerifyReport};
use crate::columnar::{self, CodecError, JournalRow};
use crate::ports::{JournalIndex, ObjectStore, PortError};

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
    /// The block's rows as compaction moved them into `file_key` (the manifest names it): the
    /// rows are checked against the header, but not the ingest file's SHA-256.
    Moved {
        file_key: String,
        rows: Vec<JournalRow>,
    },
}

/// Where compaction moved a file's rows (the manifest's `compacted_into`).
pub trait MovedFiles: Sync {
    fn compacted_into(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> impl std::future::Future<Output = Result<Option<String>, PortError>> + Send;
}

impl<I: JournalIndex> MovedFiles for I {
    async fn compacted_into(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> Result<Option<String>, PortError> {
        Ok(self
            .get_manifest(tenant_id, file_key)
            .await?
            .and_then(|e| e.compacted_into))
    }
}

/// Reads blocks' files, following compaction: a block whose ingest file is gone is read from
/// the merged file its manifest entry names. Consecutive blocks of one merged file decode it
/// once.
pub struct BlockFiles<'a, S, I> {
    store: &'a S,
    index: &'a I,
    /// The last merged file read: its key and its rows by block id.
    merged: Option<(String, std::collections::HashMap<String, Vec<JournalRow>>)>,
}

impl<'a, S: ObjectStore, I: MovedFiles> BlockFiles<'a, S, I> {
    pub fn new(store: &'a S, index: &'a I) -> Self {
        Self {
            store,
            index,
            merged: None,
        }
    }

    pub async fn read(&mut self, header: &BlockHeader) -> Result<StoredFile, PortError> {
        let file = read_block_file(self.store, header).await?;
        if !matches!(file, StoredFile::Missing) {
            return Ok(file);
        }
        let moved = self
            .index
            .compacted_into(&header.tenant_id, &header.file_key)
            .await?;
        let Some(into) = moved else {
            return Ok(StoredFile::Missing);
        };
        if self.merged.as_ref().is_none_or(|(k, _)| *k != into) {
            let Some(bytes) = self.store.get_object(&into).await? else {
                return Ok(StoredFile::Missing);
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
            self.merged = Some((into.clone(), by_block));
        }
        let rows = self
            .merged
            .as_mut()
            .and_then(|(_, by_block)| by_block.remove(&header.block_id))
            .unwrap_or_default();
        Ok(StoredFile::Moved {
            file_key: into,
            rows,
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
pub fn check_block_file(header: &BlockHeader, file: &StoredFile) -> (Vec<Fault>, u64) {
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
        StoredFile::Moved { rows, .. } => {
            return (verify_block(header, Some(rows)), rows.len() as u64);
        }
    };
    let mut faults = verify_block(header, Some(rows));
    faults.extend(file_changed(header, sha256));
    (faults, rows.len() as u64)
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
        let rows = match files.read(header).await? {
            StoredFile::Missing => None,
            StoredFile::Unreadable { error, .. } => {
                return Err(StoredVerifyError::Unreadable {
                    seq: header.seq,
                    file_key: header.file_key.clone(),
                    source: error,
                })
            }
            StoredFile::Rows { rows, .. } | StoredFile::Moved { rows, .. } => Some(rows),
        };
        report.rows_checked += rows.as_ref().map_or(0, |r| r.len() as u64);
        report.faults.extend(verify_block(header, rows.as_deref()));
        report.blocks_checked += 1;
    }
    Ok(report)
}
