//! Verification of a chain as storage holds it: headers and head from the index, each block's
//! rows read back from its file.

use super::verify::{verify_block, verify_chain, VerifyReport};
use crate::columnar::{self, CodecError};
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

/// Verifies every stored block of `chain_id` and the links between them.
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
    for header in &blocks {
        let rows = match store.get_object(&header.file_key).await? {
            Some(bytes) => Some(columnar::decode_file(bytes).map_err(|source| {
                StoredVerifyError::Unreadable {
                    seq: header.seq,
                    file_key: header.file_key.clone(),
                    source,
                }
            })?),
            None => None,
        };
        report.rows_checked += rows.as_ref().map_or(0, |r| r.len() as u64);
        report.faults.extend(verify_block(header, rows.as_deref()));
        report.blocks_checked += 1;
    }
    Ok(report)
}
