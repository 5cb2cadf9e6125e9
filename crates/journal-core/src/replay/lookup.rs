//! Finding records and proving them: pointer → footer → row group (ranged reads only), then
//! the leaf recomputed from the row, its Merkle audit path to the block root, and the block's
//! hash listed in a signed checkpoint (the header travels in the pointer), or, for a block no
//! checkpoint reaches yet, the block's link into the chain.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{BlockWitness, NoWitness, Vouch, VouchingCheckpoint};
use crate::columnar::ranged::{
    decode_footer, decode_row_group_lazy, metadata_range, row_group_range, FileParts,
    FOOTER_PROBE_BYTES,
};
use crate::columnar::{JournalRow, LazyRowGroup};
use crate::integrity::{
    inclusion_proof, leaf_hash, merkle_root, root_from_path, verify_inclusion, BlockHeader,
};
use crate::ports::{
    ArchiveState, IndexEntry, JournalIndex, Pointer, PortError, RangedObjectStore, ReadError,
};
use crate::record::Record;
use crate::timestamp::Timestamp;

/// Days a restored copy of an archived file stays readable.
pub const RESTORE_DAYS: u32 = 7;
/// What S3 promises for a Standard-tier Glacier restore (3–5 h; Deep Archive up to 12 h).
const RESTORE_HOURS: i64 = 5;
const DEEP_ARCHIVE_RESTORE_HOURS: i64 = 12;

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("{file_key}: {reason}")]
    File { file_key: String, reason: String },
    #[error("index names {file_key} row group {row_group} row {row} for {record_id}, but {found}")]
    IndexMismatch {
        record_id: String,
        file_key: String,
        row_group: u32,
        row: u32,
        found: String,
    },
}

fn file_err(file_key: &str, reason: impl ToString) -> LookupError {
    LookupError::File {
        file_key: file_key.to_string(),
        reason: reason.to_string(),
    }
}

/// One record as found, with its proof.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// The stored form (no raw subject, raw features only as `features_sealed`).
    pub record: Record,
    #[serde(skip)]
    pub features_sealed: Option<Vec<u8>>,
    pub file_key: String,
    pub row_group: u32,
    pub row: u32,
    pub proof: Proof,
}

/// What was checked about one record and with what result. `verified` is true only when every
/// check passed; `faults` names each one that did not.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Proof {
    /// Leaf hash recomputed from the row's canonical bytes and salt (hex).
    pub leaf_hash: String,
    /// The recomputed leaf equals the stored `leaf_hash` column.
    pub leaf_matches_row: bool,
    pub leaf_index: u32,
    pub block_size: u64,
    /// RFC 6962 audit path from the leaf to the block root (hex, leaf side first).
    pub audit_path: Vec<String>,
    /// The root the audit path leads to; must equal the chained block header's root.
    pub merkle_root: String,
    pub block_seq: u64,
    pub block_hash: Option<String>,
    /// The block's header (copied into the index at ingest; equal to the chain's).
    pub block: Option<BlockHeader>,
    /// The block is in the chain: its hash is listed by `checkpoint`, or (not yet
    /// checkpointed) the chain stores this header and the next block names its hash.
    pub linked_in_chain: bool,
    /// The signed checkpoint that lists the block's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<VouchingCheckpoint>,
    /// Why the proof rests on the chain instead of a checkpoint (e.g. the block is newer
    /// than the newest checkpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_link_because: Option<String>,
    pub faults: Vec<String>,
    pub verified: bool,
}

/// What links a block into its chain, as the lookup found it.
pub enum Link<'h> {
    /// A signed checkpoint lists the block's hash.
    Checkpoint(VouchingCheckpoint),
    /// The checkpoint that lists the block's seq lists another hash.
    Contradicted {
        checkpoint: VouchingCheckpoint,
        listed: String,
    },
    /// The chain itself: the stored header at the block's seq and the block after it.
    Chain {
        stored: Option<&'h BlockHeader>,
        next: Option<&'h BlockHeader>,
        because: Option<String>,
    },
}

/// Where an archived record's file stands.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ArchivedNotice {
    pub record_id: String,
    pub file_key: String,
    pub storage_class: String,
    /// `restore requested` (this lookup asked), `restore in progress`.
    pub status: String,
    pub retry_after: Timestamp,
}

/// The result of looking up one record id.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
// A lookup answers one of these at a time; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Lookup {
    Found(Found),
    /// Archived; a restore was requested or is running.
    Archived(ArchivedNotice),
    /// Accepted by ingest but not yet indexed (its block may still be in flight).
    Pending {
        record_id: String,
    },
    NotFound {
        record_id: String,
    },
}

/// Cost of a lookup, for the benchmark and the budget (≤ 1 index read for the pointer, ≤ 3
/// ranged GETs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadCost {
    pub index_reads: u32,
    pub ranged_gets: u32,
    pub bytes_read: u64,
    /// Locator lists and checkpoint GETs (none when the checkpoint is cached).
    pub checkpoint_requests: u32,
}

/// A file's parsed footer and the tail bytes read with it (small files arrive whole).
#[derive(Clone)]
struct Footer {
    total: u64,
    meta: parquet::arrow::arrow_reader::ArrowReaderMetadata,
    tail_start: u64,
    tail: bytes::Bytes,
}

/// Reads rows of journal files by ranged GETs, caching footers within one request.
pub struct RowReader<'a, S> {
    store: &'a S,
    footers: HashMap<String, Footer>,
    lazy: HashMap<(String, usize), std::sync::Arc<LazyRowGroup>>,
    pub cost: ReadCost,
}

impl<'a, S: RangedObjectStore> RowReader<'a, S> {
    pub fn new(store: &'a S) -> Self {
        Self {
            store,
            footers: HashMap::new(),
            lazy: HashMap::new(),
            cost: ReadCost::default(),
        }
    }

    async fn suffix(&mut self, key: &str) -> Result<(u64, bytes::Bytes), ReadError> {
        let s = self.store.get_suffix(key, FOOTER_PROBE_BYTES).await?;
        self.cost.ranged_gets += 1;
        self.cost.bytes_read += s.bytes.len() as u64;
        Ok((s.total_size, s.bytes))
    }

    async fn range(
        &mut self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes, ReadError> {
        let b = self.store.get_range(key, range).await?;
        self.cost.ranged_gets += 1;
        self.cost.bytes_read += b.len() as u64;
        Ok(b)
    }

    /// The file's footer, cached: one GET of the file's end (small files arrive whole with
    /// it), maybe one more for a large footer.
    async fn footer(&mut self, file_key: &str) -> Result<Footer, RowReadError> {
        if !self.footers.contains_key(file_key) {
            let (total, suffix) = self.suffix(file_key).await?;
            let meta_range = metadata_range(&suffix, total).map_err(|e| file_err(file_key, e))?;
            let suffix_start = total - suffix.len() as u64;
            let metadata = if meta_range.start >= suffix_start {
                let from = (meta_range.start - suffix_start) as usize;
                let to = (meta_range.end - suffix_start) as usize;
                suffix.slice(from..to)
            } else {
                let mut head = self
                    .range(file_key, meta_range.start..suffix_start)
                    .await?
                    .to_vec();
                head.extend_from_slice(&suffix[..(meta_range.end - suffix_start) as usize]);
                bytes::Bytes::from(head)
            };
            let meta = decode_footer(&metadata).map_err(|e| file_err(file_key, e))?;
            self.footers.insert(
                file_key.to_string(),
                Footer {
                    total,
                    meta,
                    tail_start: suffix_start,
                    tail: suffix,
                },
            );
        }
        Ok(self.footers[file_key].clone())
    }

    /// The footer, then the bytes of one row group: one GET for the part of the row group
    /// the footer read did not cover (none when it did).
    async fn fetch_group(
        &mut self,
        file_key: &str,
        row_group: usize,
    ) -> Result<(Footer, FileParts), RowReadError> {
        let footer = self.footer(file_key).await?;
        let range = row_group_range(footer.meta.metadata(), row_group)
            .map_err(|e| file_err(file_key, e))?;
        let part = if range.start >= footer.tail_start {
            // Inside the tail already read: no second GET.
            (footer.tail_start, footer.tail.clone())
        } else if range.end > footer.tail_start {
            // Straddles the tail: fetch only the part before it.
            let mut joined = self
                .range(file_key, range.start..footer.tail_start)
                .await?
                .to_vec();
            joined.extend_from_slice(&footer.tail);
            (range.start, bytes::Bytes::from(joined))
        } else {
            (range.start, self.range(file_key, range.clone()).await?)
        };
        let parts = FileParts::new(footer.total, vec![part]);
        Ok((footer, parts))
    }

    /// Every row of one row group, decoded (from the one cached copy of the group).
    pub async fn row_group(
        &mut self,
        file_key: &str,
        row_group: usize,
    ) -> Result<Vec<JournalRow>, RowReadError> {
        let group = self.lazy_group(file_key, row_group).await?;
        Ok(group.rows().map_err(|e| file_err(file_key, e))?)
    }

    /// One row group as Arrow batches, rows decoded on demand (what a lookup needs).
    pub async fn lazy_group(
        &mut self,
        file_key: &str,
        row_group: usize,
    ) -> Result<std::sync::Arc<LazyRowGroup>, RowReadError> {
        if let Some(group) = self.lazy.get(&(file_key.to_string(), row_group)) {
            return Ok(group.clone());
        }
        let (footer, parts) = self.fetch_group(file_key, row_group).await?;
        let group = decode_row_group_lazy(&footer.meta, parts, row_group)
            .map_err(|e| file_err(file_key, e))?;
        let group = std::sync::Arc::new(group);
        self.lazy
            .insert((file_key.to_string(), row_group), group.clone());
        Ok(group)
    }

    /// Row groups in the file (reads the footer if not cached).
    pub async fn row_group_count(&mut self, file_key: &str) -> Result<usize, RowReadError> {
        Ok(self
            .footer(file_key)
            .await?
            .meta
            .metadata()
            .num_row_groups())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RowReadError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

/// Looks up records and proves them against their blocks and the checkpoints (or the chain).
pub struct Finder<'a, S, I, W = NoWitness> {
    pub store: &'a S,
    pub index: &'a I,
    pub witness: &'a W,
}

impl<'a, S: RangedObjectStore, I: JournalIndex> Finder<'a, S, I, NoWitness> {
    /// A finder whose proofs rest on the chain (no checkpoints consulted).
    pub fn new(store: &'a S, index: &'a I) -> Self {
        Self {
            store,
            index,
            witness: &NoWitness,
        }
    }
}

impl<'a, S: RangedObjectStore, I: JournalIndex, W: BlockWitness> Finder<'a, S, I, W> {
    /// The same finder, with proofs resting on the checkpoints `witness` finds.
    pub fn with_witness<V: BlockWitness>(self, witness: &'a V) -> Finder<'a, S, I, V> {
        Finder {
            store: self.store,
            index: self.index,
            witness,
        }
    }

    /// One record by id: 1 index read, ≤ 3 ranged GETs (plus, for a block no checkpoint
    /// reaches yet, one chain read).
    pub async fn by_id(
        &self,
        reader: &mut RowReader<'a, S>,
        tenant_id: &str,
        record_id: &str,
        now: Timestamp,
    ) -> Result<Lookup, LookupError> {
        reader.cost.index_reads += 1;
        let entry = self.index.get_pointer(tenant_id, record_id).await?;
        self.entry(reader, record_id, entry, now).await
    }

    /// One record by id with the outcomes and reviews that refer to it, from the same one
    /// index read.
    pub async fn by_id_with_links(
        &self,
        reader: &mut RowReader<'a, S>,
        tenant_id: &str,
        record_id: &str,
        now: Timestamp,
    ) -> Result<(Lookup, Vec<Lookup>), LookupError> {
        reader.cost.index_reads += 1;
        let (entry, links) = self.index.get_with_links(tenant_id, record_id).await?;
        let found = self.entry(reader, record_id, entry, now).await?;
        let linked = match &found {
            Lookup::Found(f) if f.record.refers_to().is_none() => {
                self.all(reader, links, usize::MAX, now).await?
            }
            _ => Vec::new(),
        };
        Ok((found, linked))
    }

    async fn entry(
        &self,
        reader: &mut RowReader<'a, S>,
        record_id: &str,
        entry: Option<IndexEntry>,
        now: Timestamp,
    ) -> Result<Lookup, LookupError> {
        match entry {
            None => Ok(Lookup::NotFound {
                record_id: record_id.to_string(),
            }),
            Some(IndexEntry::Claimed(_)) => Ok(Lookup::Pending {
                record_id: record_id.to_string(),
            }),
            Some(IndexEntry::Indexed(p)) => self.at_pointer(reader, &p, now).await,
        }
    }

    /// The record a pointer names, proven.
    pub async fn at_pointer(
        &self,
        reader: &mut RowReader<'a, S>,
        p: &Pointer,
        now: Timestamp,
    ) -> Result<Lookup, LookupError> {
        let group = match reader.lazy_group(&p.file_key, p.row_group as usize).await {
            Ok(group) => group,
            Err(RowReadError::Read(ReadError::Archived { storage_class, .. })) => {
                return self.archived(p, storage_class, now).await;
            }
            Err(RowReadError::Read(ReadError::NotFound { key })) => {
                return Err(file_err(
                    &key,
                    "named by the index but missing from storage",
                ));
            }
            Err(RowReadError::Read(ReadError::Port(e))) => return Err(e.into()),
            Err(RowReadError::Lookup(e)) => return Err(e),
        };
        let mismatch = |found: String| LookupError::IndexMismatch {
            record_id: p.record_id.clone(),
            file_key: p.file_key.clone(),
            row_group: p.row_group,
            row: p.row,
            found,
        };
        let row = group
            .row(p.row as usize)
            .map_err(|e| file_err(&p.file_key, e))?
            .ok_or_else(|| mismatch(format!("the row group has {} rows", group.len())))?;
        if row.record.record_id() != p.record_id || row.block_id != p.block_id {
            return Err(mismatch(format!(
                "that row is {} of block {}",
                row.record.record_id(),
                row.block_id
            )));
        }
        // The block's leaves: all in this row group for ingest files; compacted files may
        // spread a block over row groups, which are then read too.
        let mut leaves = group
            .leaves_of(&p.block_id)
            .map_err(|e| file_err(&p.file_key, e))?;
        if (leaves.len() as u64) < p.block.count {
            let groups = reader
                .row_group_count(&p.file_key)
                .await
                .map_err(|e| file_err(&p.file_key, e))?;
            for g in (0..groups).filter(|g| *g != p.row_group as usize) {
                let more = reader
                    .lazy_group(&p.file_key, g)
                    .await
                    .map_err(|e| file_err(&p.file_key, e))?;
                leaves.extend(
                    more.leaves_of(&p.block_id)
                        .map_err(|e| file_err(&p.file_key, e))?,
                );
            }
        }
        leaves.sort_by_key(|(i, _)| *i);
        let hash = p.block.block_hash();
        let mut requests = 0;
        let vouch = self
            .witness
            .vouch(&p.tenant_id, p.seq, &hash, &mut requests)
            .await;
        reader.cost.checkpoint_requests += requests;
        let because = match vouch? {
            Vouch::Listed(c) => {
                let proof = prove(&row, &leaves, &p.block, Link::Checkpoint(c));
                return Ok(found(row, p, proof));
            }
            Vouch::Contradicted { checkpoint, listed } => {
                let link = Link::Contradicted { checkpoint, listed };
                let proof = prove(&row, &leaves, &p.block, link);
                return Ok(found(row, p, proof));
            }
            Vouch::NotYet => "no checkpoint reaches this block yet".to_string(),
            Vouch::Unusable { key, reason } => format!("checkpoint {key} cannot vouch: {reason}"),
        };
        reader.cost.index_reads += 1;
        let headers = self
            .index
            .list_blocks_between(&p.tenant_id, p.seq, p.seq + 1)
            .await?;
        let link = Link::Chain {
            stored: headers.iter().find(|h| h.seq == p.seq),
            next: headers.iter().find(|h| h.seq == p.seq + 1),
            because: Some(because),
        };
        let proof = prove(&row, &leaves, &p.block, link);
        Ok(found(row, p, proof))
    }

    /// Every indexed record of a subject with `from <= occurred_at < to` (at most `limit`).
    pub async fn by_subject(
        &self,
        reader: &mut RowReader<'a, S>,
        tenant_id: &str,
        subject_ref: &str,
        range: (Timestamp, Timestamp),
        limit: usize,
    ) -> Result<Vec<Lookup>, LookupError> {
        reader.cost.index_reads += 1;
        let mut pointers = self
            .index
            .query_subject(tenant_id, subject_ref, range.0, range.1)
            .await?;
        pointers.retain(|p| p.kind != crate::record::Kind::Access.as_str());
        self.all(reader, pointers, limit, range.1).await
    }

    /// Every indexed decision of a model version with `from <= occurred_at < to`.
    pub async fn by_model(
        &self,
        reader: &mut RowReader<'a, S>,
        tenant_id: &str,
        model: (&str, &str),
        range: (Timestamp, Timestamp),
        limit: usize,
    ) -> Result<Vec<Lookup>, LookupError> {
        reader.cost.index_reads += 1;
        let pointers = self
            .index
            .query_model(tenant_id, model.0, model.1, range.0, range.1)
            .await?;
        self.all(reader, pointers, limit, range.1).await
    }

    /// The outcomes and reviews that refer to a decision, oldest first.
    pub async fn linked(
        &self,
        reader: &mut RowReader<'a, S>,
        tenant_id: &str,
        decision_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Lookup>, LookupError> {
        reader.cost.index_reads += 1;
        let pointers = self.index.query_refs(tenant_id, decision_id).await?;
        self.all(reader, pointers, usize::MAX, now).await
    }

    async fn all(
        &self,
        reader: &mut RowReader<'a, S>,
        pointers: Vec<Pointer>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Vec<Lookup>, LookupError> {
        let mut out = Vec::with_capacity(pointers.len().min(limit));
        for p in pointers.iter().take(limit) {
            out.push(self.at_pointer(reader, p, now).await?);
        }
        Ok(out)
    }

    async fn archived(
        &self,
        p: &Pointer,
        storage_class: String,
        now: Timestamp,
    ) -> Result<Lookup, LookupError> {
        let status = self.store.object_status(&p.file_key).await?;
        let running = matches!(
            status.as_ref().map(|s| &s.archive),
            Some(ArchiveState::Restoring)
        );
        if !running {
            crate::retention::restores::request_restore_tracked(
                self.store,
                &p.file_key,
                RESTORE_DAYS,
                now,
            )
            .await?;
        }
        let hours = if storage_class == "DEEP_ARCHIVE" {
            DEEP_ARCHIVE_RESTORE_HOURS
        } else {
            RESTORE_HOURS
        };
        Ok(Lookup::Archived(ArchivedNotice {
            record_id: p.record_id.clone(),
            file_key: p.file_key.clone(),
            storage_class,
            status: if running {
                "restore in progress".into()
            } else {
                "restore requested".into()
            },
            retry_after: Timestamp::from_millis(now.millis() + hours * 3_600_000).unwrap_or(now),
        }))
    }
}

fn found(row: JournalRow, p: &Pointer, proof: Proof) -> Lookup {
    Lookup::Found(Found {
        record: row.record,
        features_sealed: row.features_sealed,
        file_key: p.file_key.clone(),
        row_group: p.row_group,
        row: p.row,
        proof,
    })
}

/// Checks one row against its block's leaves and header, and the header against what links
/// it into the chain.
pub fn prove(
    row: &JournalRow,
    leaves: &[(u32, [u8; 32])],
    header: &BlockHeader,
    link: Link<'_>,
) -> Proof {
    let mut faults = Vec::new();
    let recomputed = match row.record.canonical_bytes() {
        Ok(bytes) => leaf_hash(&row.salt, &bytes),
        Err(e) => {
            faults.push(format!("row cannot be canonicalized: {e}"));
            [0u8; 32]
        }
    };
    let leaf_matches_row = recomputed == row.leaf_hash;
    if !leaf_matches_row {
        faults.push(format!(
            "altered row: leaf recomputed from the row is {} but the stored leaf is {}",
            hex::encode(recomputed),
            hex::encode(row.leaf_hash)
        ));
    }
    let hashes: Vec<[u8; 32]> = leaves.iter().map(|(_, h)| *h).collect();
    let contiguous = leaves
        .iter()
        .enumerate()
        .all(|(i, (li, _))| *li as usize == i);
    if !contiguous {
        faults.push("the block's rows in the file do not have leaf indexes 0..n".into());
    }
    let index = row.leaf_index as usize;
    let path = inclusion_proof(&hashes, index);
    // The path already holds every subtree beside the row's: the root follows in log n hashes.
    let root = path
        .as_ref()
        .and_then(|p| root_from_path(&hashes[index], index as u64, hashes.len() as u64, p))
        .unwrap_or_else(|| merkle_root(&hashes));
    let path = path.unwrap_or_default();
    let h = header;
    if h.block_id != row.block_id {
        faults.push(format!(
            "substituted block: block {} is {}, the row says {}",
            h.seq, h.block_id, row.block_id
        ));
    }
    if h.count != hashes.len() as u64 {
        faults.push(format!(
            "missing rows: the header counts {} rows, the file holds {}",
            h.count,
            hashes.len()
        ));
    }
    let chained_root = hex::decode(&h.merkle_root).ok();
    let root_ok = chained_root.as_deref() == Some(root.as_slice())
        && verify_inclusion(
            &row.leaf_hash,
            index as u64,
            hashes.len() as u64,
            &path,
            &root,
        );
    if !root_ok {
        faults.push(format!(
            "root mismatch: the file's leaves give {} but the block header says {}",
            hex::encode(root),
            h.merkle_root
        ));
    }
    let hash = h.block_hash();
    let (linked, checkpoint, because) = match link {
        Link::Checkpoint(c) => (true, Some(c), None),
        Link::Contradicted { checkpoint, listed } => {
            faults.push(format!(
                "altered block header: block {} hashes to {hash} but checkpoint {} lists {listed}",
                h.seq, checkpoint.number
            ));
            (false, None, None)
        }
        Link::Chain {
            stored,
            next,
            because,
        } => {
            let mut linked = true;
            match stored {
                None => {
                    faults.push(format!(
                        "missing block: the chain has no header at seq {}",
                        h.seq
                    ));
                    linked = false;
                }
                Some(s) if s != h => {
                    faults.push(format!(
                        "altered block header: the index's copy of block {} hashes to {hash}, \
                         the chain's to {}",
                        h.seq,
                        s.block_hash()
                    ));
                    linked = false;
                }
                Some(_) => {}
            }
            if let Some(n) = next.filter(|n| n.prev_hash != hash) {
                faults.push(format!(
                    "broken link: block {} hashes to {hash} but block {} names {}",
                    h.seq, n.seq, n.prev_hash
                ));
                linked = false;
            }
            (linked, None, because)
        }
    };
    Proof {
        leaf_hash: hex::encode(recomputed),
        leaf_matches_row,
        leaf_index: row.leaf_index,
        block_size: hashes.len() as u64,
        audit_path: path.iter().map(hex::encode).collect(),
        merkle_root: hex::encode(root),
        block_seq: h.seq,
        block_hash: Some(hash),
        block: Some(h.clone()),
        linked_in_chain: linked,
        checkpoint,
        chain_link_because: because,
        verified: faults.is_empty(),
        faults,
    }
}
