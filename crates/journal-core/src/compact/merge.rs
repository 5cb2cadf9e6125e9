//! Writing one output file: the inputs' rows in chain order, row group by row group, then the
//! written file read back and every block it holds checked against its chained header — before
//! anything may point at it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use arrow_array::{Array, StringArray};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::plan::OutputPlan;
use crate::columnar::{
    col, CodecError, JournalFileWriter, LazyRowGroups, RowPosition, WriterConfig,
};
use crate::integrity::{verify_block_erased, BlockHeader, Fault, Hash32, StoredLeaf};
use crate::layout;
use crate::ports::{JournalIndex, ObjectStore, PortError};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("input {file_key} is missing")]
    MissingInput { file_key: String },
    #[error("{file_key}: {source}")]
    Codec {
        file_key: String,
        source: CodecError,
    },
    #[error("input {file_key} holds block {block_id}, which is not in the chain")]
    UnchainedBlock { file_key: String, block_id: String },
    /// The written file does not prove its blocks: nothing may point at it.
    #[error("output {file_key} fails verification: {}", faults.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unverified {
        file_key: String,
        faults: Vec<Fault>,
    },
}

/// One output, written and verified; nothing points at it yet.
#[derive(Clone, Debug)]
pub struct MergedFile {
    pub file_key: String,
    pub bytes: Bytes,
    pub sha256: String,
    pub rows: u64,
    pub row_groups: usize,
    /// Every record in the file: `(record id, block id, position)`, in write order.
    pub placed: Vec<(String, String, RowPosition)>,
    /// The chained headers of the blocks it holds, by seq.
    pub blocks: Vec<BlockHeader>,
}

/// Where an output goes: its partition, named by the first and last block it holds, so a run
/// that resumes an interrupted merge writes the same key.
pub fn output_key(plan: &OutputPlan) -> String {
    let first = plan.inputs.first().and_then(|e| e.seq).unwrap_or(0);
    let last = plan.inputs.last().and_then(|e| e.seq).unwrap_or(0);
    layout::compacted_file_key(
        &plan.partition.tenant_id,
        &plan.partition.date,
        plan.partition.hour,
        first,
        last,
    )
}

/// An output as written, not yet checked: only [`verify_output`] of the bytes as stored makes
/// it a [`MergedFile`] anything may point at.
#[derive(Clone, Debug)]
pub struct WrittenFile {
    pub file_key: String,
    pub bytes: Bytes,
    /// The chained headers of the blocks it holds, by seq.
    pub blocks: Vec<BlockHeader>,
}

/// Reads the plan's inputs in order and copies their rows, unchanged (leaf hashes, salts, block
/// ids and leaf indexes as they are), into one file, Arrow batch by Arrow batch without
/// decoding a record, and finds the chained header of every block in it. Memory holds one
/// input file, one row group and the output. The caller stores the file and checks it as read
/// back ([`verify_output`]): checking the in-memory copy as well would only repeat that.
pub async fn merge<S: ObjectStore, I: JournalIndex>(
    store: &S,
    index: &I,
    plan: &OutputPlan,
    cfg: &WriterConfig,
) -> Result<WrittenFile, MergeError> {
    let file_key = output_key(plan);
    let mut writer =
        JournalFileWriter::new(Vec::new(), cfg, &[]).map_err(|source| codec(&file_key, source))?;
    let mut block_ids: BTreeMap<String, String> = BTreeMap::new();
    for input in &plan.inputs {
        let bytes =
            store
                .get_object(&input.file_key)
                .await?
                .ok_or_else(|| MergeError::MissingInput {
                    file_key: input.file_key.clone(),
                })?;
        let groups = LazyRowGroups::new(bytes).map_err(|source| codec(&input.file_key, source))?;
        for group in groups {
            let group = group.map_err(|source| codec(&input.file_key, source))?;
            for batch in group.batches() {
                let ids = batch
                    .column_by_name(col::BLOCK_ID)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                    .ok_or_else(|| MergeError::Codec {
                        file_key: input.file_key.clone(),
                        source: CodecError::Schema {
                            column: col::BLOCK_ID.into(),
                            reason: "missing or not text".into(),
                        },
                    })?;
                let mut last: Option<&str> = None;
                for i in 0..ids.len() {
                    let id = if ids.is_valid(i) { ids.value(i) } else { "" };
                    if last != Some(id) {
                        block_ids
                            .entry(id.to_string())
                            .or_insert_with(|| input.file_key.clone());
                        last = Some(id);
                    }
                }
                writer
                    .write_batch(batch)
                    .map_err(|source| codec(&file_key, source))?;
            }
        }
    }
    let (bytes, _) = writer
        .finish_into_inner()
        .map_err(|source| codec(&file_key, source))?;
    let blocks = chained_headers(index, plan, &block_ids).await?;
    Ok(WrittenFile {
        file_key,
        bytes: Bytes::from(bytes),
        blocks,
    })
}

/// The chained headers of the blocks in `ids`, by seq: one Query over the inputs' seq range
/// (first block of the first input to last block of the last), the whole chain only if some
/// block lies outside it.
pub(super) async fn headers_of<I: JournalIndex>(
    index: &I,
    plan: &OutputPlan,
    ids: &BTreeSet<String>,
) -> Result<Vec<BlockHeader>, PortError> {
    let tenant_id = &plan.partition.tenant_id;
    let lo = plan.inputs.iter().filter_map(|e| e.seq).min().unwrap_or(0);
    let hi = plan
        .inputs
        .iter()
        .filter_map(|e| e.last_seq.or(e.seq))
        .max()
        .unwrap_or(lo);
    let pick = |all: Vec<BlockHeader>| -> Vec<BlockHeader> {
        all.into_iter()
            .filter(|h| ids.contains(&h.block_id))
            .collect()
    };
    let mut found = pick(index.list_blocks_between(tenant_id, lo, hi).await?);
    if found.len() < ids.len() {
        found = pick(index.list_blocks(tenant_id).await?);
    }
    found.sort_by_key(|h| h.seq);
    Ok(found)
}

/// [`headers_of`] the blocks in `block_ids` (block id → the input it came from); a block the
/// chain does not have stops the merge.
async fn chained_headers<I: JournalIndex>(
    index: &I,
    plan: &OutputPlan,
    block_ids: &BTreeMap<String, String>,
) -> Result<Vec<BlockHeader>, MergeError> {
    let ids: BTreeSet<String> = block_ids.keys().cloned().collect();
    let found = headers_of(index, plan, &ids).await?;
    if let Some((block_id, file_key)) = block_ids
        .iter()
        .find(|(id, _)| !found.iter().any(|h| &h.block_id == *id))
    {
        return Err(MergeError::UnchainedBlock {
            file_key: file_key.clone(),
            block_id: block_id.clone(),
        });
    }
    Ok(found)
}

/// A row's leaf index, stored leaf hash and, when sampled, its re-hashed leaf.
type SampledLeaf = (u32, Hash32, Option<Result<Hash32, String>>);

/// Reads a written output back and checks each block's rows against its header: leaf indexes
/// `0..count` once each, in order; the Merkle root of the stored leaves equal to the chained
/// one; and, for every `verify_every`-th row (every row when 1, none when 0), the leaf
/// recomputed from the row's content equal to the stored leaf. Any fault refuses the file.
///
/// The leaves and roots prove every row's place in its chained block; the sampled re-hash
/// guards the copy itself (a codec that altered content would alter most rows). Full content
/// verification stays the job of `verify`, and every lookup re-hashes the row it returns.
pub fn verify_output(
    file_key: String,
    bytes: Bytes,
    blocks: Vec<BlockHeader>,
    verify_every: usize,
) -> Result<MergedFile, MergeError> {
    verify_output_erased(file_key, bytes, blocks, verify_every, &HashMap::new())
}

/// [`verify_output`] of a file some of whose rows were erased: `erased` holds, per block id,
/// the leaf index and hash of each removed row (from the erasure receipts), which stand in for
/// the rows; a removed row still present refuses the file.
pub fn verify_output_erased(
    file_key: String,
    bytes: Bytes,
    blocks: Vec<BlockHeader>,
    verify_every: usize,
    erased: &HashMap<String, Vec<(u32, Hash32)>>,
) -> Result<MergedFile, MergeError> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let groups = LazyRowGroups::new(bytes.clone()).map_err(|source| codec(&file_key, source))?;
    let row_groups = groups.row_group_count();
    let mut placed = Vec::new();
    let mut leaves: Vec<SampledLeaf> = Vec::new();
    for (g, group) in groups.enumerate() {
        let group = group.map_err(|source| codec(&file_key, source))?;
        let integrity = group
            .integrity()
            .map_err(|source| codec(&file_key, source))?;
        for (i, row) in integrity.into_iter().enumerate() {
            let sampled = verify_every > 0 && placed.len() % verify_every == 0;
            let recomputed = sampled.then(|| match group.row(i) {
                Ok(Some(full)) => StoredLeaf::recompute(&full),
                Ok(None) => Err(format!("row {i} of row group {g} is not there")),
                Err(e) => Err(e.to_string()),
            });
            leaves.push((row.leaf_index, row.leaf_hash, recomputed));
            placed.push((
                row.record_id,
                row.block_id,
                RowPosition {
                    row_group: g,
                    row_in_group: i,
                },
            ));
        }
    }
    let mut by_block: HashMap<&str, Vec<StoredLeaf>> = HashMap::new();
    for ((record_id, block_id, _), (leaf_index, leaf_hash, recomputed)) in placed.iter().zip(leaves)
    {
        by_block
            .entry(block_id.as_str())
            .or_default()
            .push(StoredLeaf {
                block_id,
                record_id,
                leaf_index,
                leaf_hash,
                recomputed,
            });
    }
    let mut faults = Vec::new();
    for h in &blocks {
        faults.extend(verify_block_erased(
            h,
            // The file exists; a block without rows (all erased) is checked as such.
            Some(
                by_block
                    .get(h.block_id.as_str())
                    .map_or(&[][..], Vec::as_slice),
            ),
            erased.get(&h.block_id).map_or(&[], Vec::as_slice),
        ));
    }
    drop(by_block);
    if !faults.is_empty() {
        return Err(MergeError::Unverified { file_key, faults });
    }
    Ok(MergedFile {
        file_key,
        sha256,
        rows: placed.len() as u64,
        row_groups,
        placed,
        blocks,
        bytes,
    })
}

fn codec(file_key: &str, source: CodecError) -> MergeError {
    MergeError::Codec {
        file_key: file_key.to_string(),
        source,
    }
}
