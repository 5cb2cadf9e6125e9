//! The verify operation: a whole tenant or a time range, chain and checkpoints, every fault named.
//!
//! [`verify_scope`] recomputes the journal's integrity from what storage holds (DESIGN §4):
//!
//! 1. the tenant's signed checkpoints (every object under its checkpoint prefix), then the chain
//!    head, then every block header — read in that order so that a checkpoint or block written
//!    concurrently never looks like a fault;
//! 2. the chain links of the **whole** chain ([`verify_chain`]): gaps of any length, `prev_hash`
//!    links, the head;
//! 3. the file of every block in scope, read once ([`BlockFiles`], which follows compaction to
//!    the merged file): each row's leaf hash
//!    recomputed, leaf indices complete and in order, membership, the Merkle root, and the file's
//!    bytes against the SHA-256 sealed into the header ([`check_block_file`]);
//! 4. the checkpoints ([`verify_checkpoint_chain`]): signatures with the public key only,
//!    numbering gaps, links, spacing, freshness, agreement with the chain;
//! 5. coverage: which blocks a validly signed checkpoint vouches for through unbroken links.
//!
//! Every fault is kept as found ([`AuditReport::chain_faults`],
//! [`AuditReport::checkpoint_faults`]) and named for people in [`AuditReport::faults`]: one
//! [`NamedFault`] with a stable snake_case [`kind`] and one sentence naming the seq, block,
//! file, leaf and record. Naming groups what one act of tampering produces: a substituted file
//! is one `substituted_file` (not a foreign and a missing row for every row), a run of missing
//! leaves one `missing_rows`, and a broken link names the block that was altered
//! (`altered_block`), not just the link.
//!
//! # Time ranges
//!
//! With `from`/`to`, only the files of blocks whose `[first_occurred_at, last_occurred_at]`
//! overlaps `from <= t < to` are read: files are the expensive part (a whole-object GET and a
//! Parquet decode each). The headers of the whole chain are still listed and all its links
//! checked, because that is what the range's integrity rests on: a checkpoint signs only the
//! newest block's hash, and a block in the range is vouched for only through every link between
//! it and a checkpointed block above it; and a block missing or altered anywhere below the newest
//! checkpoint means the checkpoints no longer cover `0..=seq` (reported as `missing_blocks` /
//! `altered_block` and `unvouched_blocks`, and by a lower [`AuditReport::covered_seq`]) even if it
//! lies outside the range. Headers are small (~0.5 KB) items of the ledger table, listed with
//! one Query per ~2,000 blocks, and the checkpoint verifier needs the block hash at every
//! checkpointed seq anyway, so checking only the range's neighbours would save little and would
//! miss a gap just outside the range. (Block ranges cannot be found by seq alone either: a block
//! holds one ingest invocation's records, whose `occurred_at` may be far apart.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    load_checkpoints, locator_faults, verify_checkpoint_chain, CheckpointFault, CheckpointPolicy,
    CheckpointPublicKey, CheckpointRef, CheckpointStore, PublicKeyError, SignedCheckpoint,
    SIGNING_ALGORITHM,
};
use crate::integrity::stored::{
    check_block_file, receipts_touching, tombstone_fault, BlockFiles, MovedFiles, StoredFile,
};
use crate::integrity::{note_deleted, verify_chain, BlockHeader, ChainHead, DeletedSpan, Fault};
use crate::ports::{JournalIndex, ObjectStore, PortError};
use crate::timestamp::Timestamp;

/// What to verify: a tenant's whole journal, or the blocks holding records with
/// `from <= occurred_at < to` (either end open).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyScope {
    pub tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
}

impl VerifyScope {
    /// Every block of the tenant.
    pub fn tenant(tenant_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            from: None,
            to: None,
        }
    }

    /// The blocks with records in `from <= occurred_at < to`.
    pub fn range(
        tenant_id: impl Into<String>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            from,
            to,
        }
    }

    /// Whether the block may hold records in the range (its time span overlaps it).
    pub fn overlaps(&self, header: &BlockHeader) -> bool {
        self.from.is_none_or(|f| header.last_occurred_at >= f)
            && self.to.is_none_or(|t| header.first_occurred_at < t)
    }
}

/// Consecutive chain positions `from_seq..=to_seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqSpan {
    pub from_seq: u64,
    pub to_seq: u64,
}

impl SeqSpan {
    /// How many positions the span holds.
    pub fn count(&self) -> u64 {
        self.to_seq - self.from_seq + 1
    }

    pub fn contains(&self, seq: u64) -> bool {
        (self.from_seq..=self.to_seq).contains(&seq)
    }

    fn describe(&self, what: &str) -> String {
        if self.from_seq == self.to_seq {
            format!("{what} {}", self.from_seq)
        } else {
            format!("{what}s {}..={}", self.from_seq, self.to_seq)
        }
    }
}

/// Sorted seqs as runs of consecutive ones.
fn spans(seqs: impl IntoIterator<Item = u64>) -> Vec<SeqSpan> {
    let mut out: Vec<SeqSpan> = Vec::new();
    for s in seqs {
        match out.last_mut() {
            Some(last) if last.to_seq + 1 == s => last.to_seq = s,
            _ => out.push(SeqSpan {
                from_seq: s,
                to_seq: s,
            }),
        }
    }
    out
}

/// The stable names of [`NamedFault::kind`].
pub mod kind {
    // The chain.
    /// Blocks absent from the chain store: a gap of any length, or blocks missing up to the head.
    pub const MISSING_BLOCKS: &str = "missing_blocks";
    /// A block header no longer hashes to what its successor (or the head) recorded.
    pub const ALTERED_BLOCK: &str = "altered_block";
    pub const CONFLICTING_BLOCKS: &str = "conflicting_blocks";
    pub const BLOCK_AFTER_HEAD: &str = "block_after_head";
    pub const MISSING_HEAD: &str = "missing_head";
    // A block's file.
    pub const MISSING_FILE: &str = "missing_file";
    pub const UNREADABLE_FILE: &str = "unreadable_file";
    /// The file's bytes differ from what ingest wrote (rewritten).
    pub const FILE_CHANGED: &str = "file_changed";
    /// The file holds another block's rows.
    pub const SUBSTITUTED_FILE: &str = "substituted_file";
    // Rows.
    pub const ALTERED_ROW: &str = "altered_row";
    pub const MISSING_ROWS: &str = "missing_rows";
    pub const REORDERED_ROWS: &str = "reordered_rows";
    pub const DUPLICATE_ROW: &str = "duplicate_row";
    pub const EXTRA_ROW: &str = "extra_row";
    pub const UNREADABLE_ROW: &str = "unreadable_row";
    /// The leaves rebuild another Merkle root than the header's.
    pub const ROOT_MISMATCH: &str = "root_mismatch";
    /// A deleted file's tombstone does not account for its block (forged, altered, unsigned).
    pub const BAD_TOMBSTONE: &str = "bad_tombstone";
    /// A row an erasure receipt removed is still stored, or the receipt names a leaf that
    /// does not exist.
    pub const BAD_ERASURE: &str = "bad_erasure";
    // Coverage.
    /// Blocks below the newest valid checkpoint that no checkpoint vouches for.
    pub const UNVOUCHED_BLOCKS: &str = "unvouched_blocks";
    // Checkpoints.
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// Checkpoint numbers missing between survivors (deleted checkpoints).
    pub const MISSING_CHECKPOINTS: &str = "missing_checkpoints";
    /// The chain has blocks but no validly signed checkpoint.
    pub const NO_CHECKPOINT: &str = "no_checkpoint";
    /// The newest valid checkpoint is older than the policy allows.
    pub const STALE_CHECKPOINT: &str = "stale_checkpoint";
    pub const CHECKPOINT_INTERVAL_GAP: &str = "checkpoint_interval_gap";
    pub const UNREADABLE_CHECKPOINT: &str = "unreadable_checkpoint";
    pub const MISPLACED_CHECKPOINT: &str = "misplaced_checkpoint";
    pub const FOREIGN_CHECKPOINT: &str = "foreign_checkpoint";
    pub const DUPLICATE_CHECKPOINT: &str = "duplicate_checkpoint";
    pub const BROKEN_CHECKPOINT_LINK: &str = "broken_checkpoint_link";
    pub const CHECKPOINT_REGRESSED: &str = "checkpoint_regressed";
    /// A checkpoint signed a block hash the chain no longer has at that seq.
    pub const CHAIN_MISMATCH: &str = "chain_mismatch";
    pub const CHECKPOINT_BEYOND_HEAD: &str = "checkpoint_beyond_head";
    pub const FUTURE_CHECKPOINT: &str = "future_checkpoint";
    /// The block list beside a checkpoint is not the one its signature covers.
    pub const ALTERED_BLOCK_LIST: &str = "altered_block_list";
    /// A checkpoint's list does not start right after the one before it.
    pub const BLOCK_LIST_GAP: &str = "block_list_gap";
    /// A checkpoint lists a block hash the chain no longer has.
    pub const LISTED_BLOCK_MISMATCH: &str = "listed_block_mismatch";
    pub const MISSING_LOCATOR: &str = "missing_locator";
    pub const STRAY_LOCATOR: &str = "stray_locator";
}

/// One fault, named for people: a stable kind, one sentence, and what it points at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedFault {
    /// One of the [`kind`] constants.
    pub kind: String,
    /// One sentence naming the seq, block, file, row or checkpoint.
    pub message: String,
    /// The block (or first block of a span) at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Last block of a span (missing or unvouched blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_key: Option<String>,
    /// The row's leaf (first leaf of a run of missing rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// Last leaf of a run of missing rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_leaf_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// The checkpoint number (first of a run of missing ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<u64>,
}

impl NamedFault {
    fn new(kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: kind.to_string(),
            message: message.into(),
            seq: None,
            to_seq: None,
            block_id: None,
            file_key: None,
            leaf_index: None,
            to_leaf_index: None,
            record_id: None,
            checkpoint: None,
        }
    }

    fn seq(mut self, seq: u64) -> Self {
        self.seq = Some(seq);
        self
    }

    fn span(mut self, span: SeqSpan) -> Self {
        self.seq = Some(span.from_seq);
        self.to_seq = Some(span.to_seq);
        self
    }

    fn block(mut self, block_id: &str) -> Self {
        self.block_id = Some(block_id.to_string());
        self
    }

    fn file(mut self, file_key: &str) -> Self {
        self.file_key = Some(file_key.to_string());
        self
    }

    fn leaf(mut self, leaf_index: u64) -> Self {
        self.leaf_index = Some(leaf_index);
        self
    }

    fn record(mut self, record_id: &str) -> Self {
        self.record_id = Some(record_id.to_string());
        self
    }

    fn checkpoint(mut self, c: &CheckpointRef) -> Self {
        self.checkpoint = Some(c.number);
        self.seq = Some(c.seq);
        self
    }
}

impl std::fmt::Display for NamedFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// What [`verify_scope`] checked and found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    pub tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// Block headers in the chain store (all of them are link-checked).
    pub blocks_total: u64,
    /// Blocks in scope whose files were read and checked row by row.
    pub blocks_checked: u64,
    /// Rows read from those files.
    pub records_checked: u64,
    /// The blocks in scope, as runs of seqs.
    pub checked: Vec<SeqSpan>,
    /// Blocks in scope whose files retention deleted, each accounted for by a validly signed
    /// tombstone that lists it as the chain holds it: deleted by rule, not tampered with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_by_rule: Vec<DeletedSpan>,
    /// Blocks in scope some of whose rows an erasure removed (`tombstone_key` names the signed
    /// receipt, whose leaves stand in for the rows): erased by request, not tampered with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<DeletedSpan>,
    /// Blocks in scope whose files are archived and not restored: linked and vouched for like
    /// every other block, rows not read (`tombstone_key` names the file). A restore makes them
    /// checkable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archived: Vec<DeletedSpan>,
    pub head_seq: Option<u64>,
    /// Blocks `0..=covered_seq` are each vouched for by a validly signed checkpoint that agrees
    /// with the chain, directly or through unbroken links from the checkpointed block down.
    /// Lower than the newest checkpoint's seq when blocks below it are missing or altered.
    pub covered_seq: Option<u64>,
    /// Blocks below the newest valid checkpoint that no checkpoint vouches for (missing ones
    /// included).
    pub unvouched: Vec<SeqSpan>,
    /// Objects under the tenant's checkpoint prefix.
    pub checkpoints_checked: u64,
    pub valid_signatures: u64,
    /// The newest validly signed checkpoint.
    pub newest_checkpoint: Option<CheckpointRef>,
    /// Every fault of the chain and of the files in scope, as found.
    pub chain_faults: Vec<Fault>,
    /// Every fault of the checkpoints, as found.
    pub checkpoint_faults: Vec<CheckpointFault>,
    /// The same, named for people (grouped where one act of tampering produces many).
    pub faults: Vec<NamedFault>,
    pub ok: bool,
}

impl AuditReport {
    /// The named faults of one kind.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a NamedFault> + 'a {
        self.faults.iter().filter(move |f| f.kind == kind)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    PublicKey(#[from] PublicKeyError),
    #[error("empty time range: from {from} is not before to {to}")]
    EmptyRange { from: Timestamp, to: Timestamp },
}

/// Verifies `scope` (see the module documentation for what is read and why) with the
/// checkpoint public key (DER SubjectPublicKeyInfo) and policy, at time `now`.
///
/// `store` holds the block files, `checkpoints` the signed checkpoints (on AWS, an
/// `S3ObjectStore` and an `S3CheckpointStore` on the same bucket; in tests, one
/// [`crate::memory::MemoryStore`] passed twice). Storage errors are errors; everything wrong
/// with what storage holds — unreadable files and checkpoints included — is a fault.
pub async fn verify_scope<I, S, C>(
    index: &I,
    store: &S,
    checkpoints: &C,
    scope: &VerifyScope,
    public_key_der: &[u8],
    policy: &CheckpointPolicy,
    now: Timestamp,
) -> Result<AuditReport, AuditError>
where
    I: JournalIndex,
    S: ObjectStore,
    C: CheckpointStore,
{
    audit(
        index,
        store,
        checkpoints,
        scope,
        public_key_der,
        policy,
        now,
    )
    .await
}

/// The index reads the audit makes (a seam, so tests can hand it a tampered chain store).
trait ChainSource: MovedFiles + Sync {
    fn head(
        &self,
        chain_id: &str,
    ) -> impl Future<Output = Result<Option<ChainHead>, PortError>> + Send;
    fn blocks(
        &self,
        chain_id: &str,
    ) -> impl Future<Output = Result<Vec<BlockHeader>, PortError>> + Send;
    fn blocks_between(
        &self,
        chain_id: &str,
        from_seq: u64,
        to_seq: u64,
    ) -> impl Future<Output = Result<Vec<BlockHeader>, PortError>> + Send;
}

impl<I: JournalIndex> ChainSource for I {
    fn head(
        &self,
        chain_id: &str,
    ) -> impl Future<Output = Result<Option<ChainHead>, PortError>> + Send {
        self.chain_head(chain_id)
    }

    fn blocks(
        &self,
        chain_id: &str,
    ) -> impl Future<Output = Result<Vec<BlockHeader>, PortError>> + Send {
        self.list_blocks(chain_id)
    }

    fn blocks_between(
        &self,
        chain_id: &str,
        from_seq: u64,
        to_seq: u64,
    ) -> impl Future<Output = Result<Vec<BlockHeader>, PortError>> + Send {
        self.list_blocks_between(chain_id, from_seq, to_seq)
    }
}

async fn audit<X, S, C>(
    index: &X,
    store: &S,
    checkpoints: &C,
    scope: &VerifyScope,
    public_key_der: &[u8],
    policy: &CheckpointPolicy,
    now: Timestamp,
) -> Result<AuditReport, AuditError>
where
    X: ChainSource,
    S: ObjectStore,
    C: CheckpointStore,
{
    if let (Some(from), Some(to)) = (scope.from, scope.to) {
        if from >= to {
            return Err(AuditError::EmptyRange { from, to });
        }
    }
    let key = CheckpointPublicKey::from_der(public_key_der)?;
    let tenant = scope.tenant_id.as_str();

    // Checkpoints first, then the chain: a checkpoint written meanwhile signs a head at most
    // as new as the one read below.
    let (signed, mut checkpoint_faults, checkpoints_stored) =
        load_checkpoints(checkpoints, tenant).await?;
    let (head, blocks) = chain_snapshot(index, tenant).await?;

    let mut chain_faults = verify_chain(&blocks, head.as_ref());
    let chain_named = name_chain_faults(&chain_faults, &blocks);

    let seq_of: HashMap<&str, u64> = blocks
        .iter()
        .map(|h| (h.block_id.as_str(), h.seq))
        .collect();
    let mut block_named = Vec::new();
    let (mut blocks_checked, mut records_checked) = (0u64, 0u64);
    let mut checked_seqs = Vec::new();
    let mut files = BlockFiles::new(store, index);
    let mut deleted_by_rule = Vec::new();
    let mut archived = Vec::new();
    let mut erased = Vec::new();
    for header in blocks.iter().filter(|h| scope.overlaps(h)) {
        let file = files.read(header).await?;
        let (faults, rows) = match &file {
            StoredFile::Removed {
                tombstone_key,
                tombstone,
            } => {
                let faults = tombstone_fault(header, tombstone_key, tombstone, Some(&key));
                if faults.is_empty() {
                    note_deleted(&mut deleted_by_rule, header.seq, tombstone_key);
                }
                (faults, 0)
            }
            StoredFile::Archived { file_key, .. } => {
                note_deleted(&mut archived, header.seq, file_key);
                (Vec::new(), 0)
            }
            StoredFile::Moved { receipts, .. } => {
                for receipt_key in receipts_touching(header, receipts) {
                    note_deleted(&mut erased, header.seq, receipt_key);
                }
                check_block_file(header, &file, Some(&key))
            }
            _ => check_block_file(header, &file, Some(&key)),
        };
        blocks_checked += 1;
        records_checked += rows;
        checked_seqs.push(header.seq);
        block_named.extend(name_block_faults(header, &faults, &seq_of));
        chain_faults.extend(faults);
    }

    let report = verify_checkpoint_chain(
        tenant,
        &signed,
        public_key_der,
        &blocks,
        head.as_ref(),
        policy,
        now,
    )?;
    checkpoint_faults.extend(report.faults);
    checkpoint_faults.extend(locator_faults(checkpoints, tenant, &signed, &key).await?);

    let coverage = coverage(tenant, &signed, &key, &blocks, head.as_ref());

    let mut faults = chain_named;
    faults.extend(block_named);
    for span in &coverage.unvouched {
        let newest = coverage
            .newest_anchor
            .map(|c| c.to_string())
            .unwrap_or_default();
        let (verb, them) = if span.count() == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        };
        faults.push(
            NamedFault::new(
                kind::UNVOUCHED_BLOCKS,
                format!(
                    "{} {verb} below the newest agreeing checkpoint, {newest}, but no validly signed checkpoint vouches for {them}: block {} is missing or no longer hashes to what block {} recorded",
                    span.describe("block"),
                    span.to_seq,
                    span.to_seq + 1
                ),
            )
            .span(*span),
        );
    }
    faults.extend(checkpoint_faults.iter().map(name_checkpoint_fault));

    let ok = chain_faults.is_empty() && checkpoint_faults.is_empty() && faults.is_empty();
    Ok(AuditReport {
        tenant_id: tenant.to_string(),
        from: scope.from,
        to: scope.to,
        blocks_total: blocks.len() as u64,
        blocks_checked,
        records_checked,
        checked: spans(checked_seqs),
        deleted_by_rule,
        erased,
        archived,
        head_seq: head.as_ref().map(|h| h.seq),
        covered_seq: coverage.covered_seq,
        unvouched: coverage.unvouched,
        checkpoints_checked: checkpoints_stored,
        valid_signatures: report.valid_signatures,
        newest_checkpoint: report.newest,
        chain_faults,
        checkpoint_faults,
        faults,
        ok,
    })
}

/// The head and every block header of a chain, as one consistent snapshot.
///
/// The head is read first: a block appended after that shows up in the listing beyond the
/// head, so the head is read again and, if it has moved past the listing's last block, the
/// blocks up to it are listed too. A block that is still beyond the head after that is a real
/// [`Fault::BlockAfterHead`].
async fn chain_snapshot<X: ChainSource>(
    index: &X,
    chain_id: &str,
) -> Result<(Option<ChainHead>, Vec<BlockHeader>), PortError> {
    let mut head = index.head(chain_id).await?;
    let mut blocks = index.blocks(chain_id).await?;
    blocks.sort_by_key(|h| h.seq);
    let Some(last) = blocks.last().map(|h| h.seq) else {
        return Ok((head, blocks));
    };
    if head.as_ref().is_none_or(|h| h.seq < last) {
        if let Some(newer) = index.head(chain_id).await? {
            if newer.seq >= last {
                if newer.seq > last {
                    blocks.extend(index.blocks_between(chain_id, last + 1, newer.seq).await?);
                }
                head = Some(newer);
            }
        }
    }
    Ok((head, blocks))
}

/// Which blocks the checkpoints vouch for.
struct Coverage {
    covered_seq: Option<u64>,
    unvouched: Vec<SeqSpan>,
    newest_anchor: Option<CheckpointRef>,
}

/// A block is vouched for when a validly signed checkpoint of this tenant and chain signs its
/// hash, or when the block above it is vouched for and links to it. Blocks above the newest
/// such checkpoint are simply not checkpointed yet (the policy's freshness check covers them).
fn coverage(
    tenant_id: &str,
    signed: &[SignedCheckpoint],
    key: &CheckpointPublicKey,
    blocks: &[BlockHeader],
    head: Option<&ChainHead>,
) -> Coverage {
    let by_seq: BTreeMap<u64, &BlockHeader> = blocks.iter().map(|h| (h.seq, h)).collect();
    let hashes: BTreeMap<u64, String> = by_seq.iter().map(|(&s, h)| (s, h.block_hash())).collect();
    let head_seq = head.map(|h| h.seq);
    let mut anchors: BTreeMap<u64, CheckpointRef> = BTreeMap::new();
    for s in signed {
        let c = &s.checkpoint;
        let valid = s.algorithm == SIGNING_ALGORITHM
            && s.signature_der()
                .is_ok_and(|der| key.verify_digest(&c.digest(), &der).is_ok());
        let ours = c.tenant_id == tenant_id && head.is_none_or(|h| h.chain_id == c.chain_id);
        let agrees = head_seq.is_some_and(|h| c.seq <= h)
            && hashes.get(&c.seq).is_some_and(|h| *h == c.block_hash);
        if valid && ours && agrees {
            let r = CheckpointRef {
                number: c.number,
                seq: c.seq,
                signed_at: c.signed_at,
            };
            let slot = anchors.entry(c.seq).or_insert(r);
            if r.number > slot.number {
                *slot = r;
            }
        }
    }
    let Some((&newest_seq, &newest)) = anchors.last_key_value() else {
        return Coverage {
            covered_seq: None,
            unvouched: Vec::new(),
            newest_anchor: None,
        };
    };
    // Down from the top: vouched directly, or through the link from the vouched block above.
    let mut vouched: BTreeSet<u64> = BTreeSet::new();
    let mut above: Option<(u64, bool)> = None;
    for (&seq, _) in by_seq.range(..=newest_seq).rev() {
        let linked = matches!(above, Some((a, true)) if a == seq + 1
            && by_seq[&a].prev_hash == hashes[&seq]);
        let v = anchors.contains_key(&seq) || linked;
        if v {
            vouched.insert(seq);
        }
        above = Some((seq, v));
    }
    // Up from 0: the seqs (stored or missing) that are not vouched for.
    let mut unvouched = Vec::new();
    let mut open: Option<u64> = None;
    let mut expected = 0u64;
    for &seq in by_seq.range(..=newest_seq).map(|(s, _)| s) {
        if seq > expected {
            open.get_or_insert(expected);
        }
        if vouched.contains(&seq) {
            if let Some(from) = open.take() {
                unvouched.push(SeqSpan {
                    from_seq: from,
                    to_seq: seq - 1,
                });
            }
        } else {
            open.get_or_insert(seq);
        }
        expected = seq + 1;
    }
    let covered_seq = match unvouched.first() {
        None => Some(newest_seq),
        Some(s) => s.from_seq.checked_sub(1),
    };
    Coverage {
        covered_seq,
        unvouched,
        newest_anchor: Some(newest),
    }
}

/// Names the faults [`verify_chain`] found. A broken link names the block that was altered:
/// block `s - 1` when block `s` still links correctly to its own successor (or the head), since
/// then block `s` is intact and `s - 1` no longer hashes to what `s` recorded; block `s` itself
/// when its successor's link (or the head) is broken too.
fn name_chain_faults(faults: &[Fault], blocks: &[BlockHeader]) -> Vec<NamedFault> {
    let by_seq: BTreeMap<u64, &BlockHeader> = blocks.iter().map(|h| (h.seq, h)).collect();
    let id = |seq: u64| {
        by_seq
            .get(&seq)
            .map_or_else(String::new, |h| h.block_id.clone())
    };
    let broken: BTreeSet<u64> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::BrokenLink { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    let head_mismatch = faults.iter().find_map(|f| match f {
        Fault::HeadMismatch { seq, .. } => Some(*seq),
        _ => None,
    });
    let mut altered: BTreeSet<u64> = BTreeSet::new();
    let mut out = Vec::new();
    for f in faults {
        match f {
            Fault::MissingBlocks { from_seq, to_seq } => {
                let span = SeqSpan {
                    from_seq: *from_seq,
                    to_seq: *to_seq,
                };
                let after = from_seq
                    .checked_sub(1)
                    .filter(|s| by_seq.contains_key(s))
                    .map(|s| format!("after block {s}"));
                let before = by_seq
                    .contains_key(&(to_seq + 1))
                    .then(|| format!("before block {}", to_seq + 1))
                    .or_else(|| Some(format!("up to the head at seq {to_seq}")));
                let context: Vec<String> = [after, before].into_iter().flatten().collect();
                let verb = if span.count() == 1 {
                    "is missing".to_string()
                } else {
                    format!("({} blocks) are missing", span.count())
                };
                out.push(
                    NamedFault::new(
                        kind::MISSING_BLOCKS,
                        format!(
                            "gap in the chain: {} {verb}, {}",
                            span.describe("block"),
                            context.join(" and ")
                        ),
                    )
                    .span(span),
                );
            }
            Fault::BrokenLink {
                seq,
                expected_prev,
                found_prev,
            } => {
                let s = *seq;
                let successor_broken = broken.contains(&(s + 1)) || head_mismatch == Some(s);
                let suspect = if s == 0 || successor_broken { s } else { s - 1 };
                if !altered.insert(suspect) {
                    continue;
                }
                let message = if suspect + 1 == s {
                    format!(
                        "block {suspect} ({}) was altered or replaced after block {s} was chained: it hashes to {expected_prev}, but block {s} recorded prev_hash {found_prev}",
                        id(suspect)
                    )
                } else if s == 0 {
                    format!(
                        "block 0 ({}) was altered or replaced: its prev_hash is {found_prev}, not the genesis hash",
                        id(0)
                    )
                } else {
                    let next = if head_mismatch == Some(s) {
                        "the chain head".to_string()
                    } else {
                        format!("block {}", s + 1)
                    };
                    format!(
                        "block {s} ({}) was altered or replaced: its prev_hash {found_prev} is not the hash {expected_prev} of block {}, and {next} no longer links to it",
                        id(s),
                        s - 1
                    )
                };
                out.push(
                    NamedFault::new(kind::ALTERED_BLOCK, message)
                        .seq(suspect)
                        .block(&id(suspect)),
                );
            }
            Fault::HeadMismatch {
                seq,
                head_hash,
                block_hash,
            } => {
                if !altered.insert(*seq) {
                    continue;
                }
                out.push(
                    NamedFault::new(
                        kind::ALTERED_BLOCK,
                        format!(
                            "block {seq} ({}), the newest, hashes to {block_hash} but the chain head recorded {head_hash}: the block (or the head item) was altered",
                            id(*seq)
                        ),
                    )
                    .seq(*seq)
                    .block(&id(*seq)),
                );
            }
            Fault::ConflictingBlocks { seq } => {
                out.push(NamedFault::new(kind::CONFLICTING_BLOCKS, f.to_string()).seq(*seq))
            }
            Fault::BlockAfterHead { seq, .. } => out.push(
                NamedFault::new(kind::BLOCK_AFTER_HEAD, f.to_string())
                    .seq(*seq)
                    .block(&id(*seq)),
            ),
            Fault::MissingHead => out.push(NamedFault::new(kind::MISSING_HEAD, f.to_string())),
            // Block-level faults do not come from verify_chain.
            other => out.extend(name_block_fault(other)),
        }
    }
    out
}

/// Names the faults of one block's file. Another block's rows in the file make it one
/// `substituted_file` (its foreign rows, the block's own rows it lacks and the changed bytes
/// are that one act); runs of missing leaves are one `missing_rows` each.
fn name_block_faults(
    header: &BlockHeader,
    faults: &[Fault],
    seq_of: &HashMap<&str, u64>,
) -> Vec<NamedFault> {
    let mut out = Vec::new();
    let foreign: Vec<(&str, &str)> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::ForeignRow {
                record_id,
                row_block_id,
                ..
            } => Some((record_id.as_str(), row_block_id.as_str())),
            _ => None,
        })
        .collect();
    let missing: Vec<u64> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::MissingRow { leaf_index, .. } => Some(*leaf_index),
            _ => None,
        })
        .collect();
    let substituted = !foreign.is_empty();
    if substituted {
        let sources: BTreeSet<&str> = foreign.iter().map(|(_, b)| *b).collect();
        let named: Vec<String> = sources
            .iter()
            .map(|b| match seq_of.get(b) {
                Some(s) => format!("block {s} ({b})"),
                None => format!("block {b}, which is not in this chain"),
            })
            .collect();
        out.push(
            NamedFault::new(
                kind::SUBSTITUTED_FILE,
                format!(
                    "block {} ({}): file {} was substituted: it holds {} row(s) of {} (first: {}), and {}",
                    header.seq,
                    header.block_id,
                    header.file_key,
                    foreign.len(),
                    named.join(", "),
                    foreign[0].0,
                    if missing.len() as u64 == header.count {
                        format!("none of the block's own {} rows remain", header.count)
                    } else {
                        format!("{} of the block's {} rows are missing from it", missing.len(), header.count)
                    }
                ),
            )
            .seq(header.seq)
            .block(&header.block_id)
            .file(&header.file_key)
            .record(foreign[0].0),
        );
    } else {
        let mut leaves = missing.clone();
        leaves.sort_unstable();
        for run in spans(leaves) {
            let message = if run.from_seq == run.to_seq {
                format!(
                    "block {} ({}) leaf {}: the row is missing from file {}",
                    header.seq, header.block_id, run.from_seq, header.file_key
                )
            } else {
                format!(
                    "block {} ({}) leaves {}..={}: {} rows are missing from file {}",
                    header.seq,
                    header.block_id,
                    run.from_seq,
                    run.to_seq,
                    run.count(),
                    header.file_key
                )
            };
            let mut named = NamedFault::new(kind::MISSING_ROWS, message)
                .seq(header.seq)
                .block(&header.block_id)
                .file(&header.file_key)
                .leaf(run.from_seq);
            named.to_leaf_index = Some(run.to_seq);
            out.push(named);
        }
    }
    for f in faults {
        let folded = match f {
            Fault::ForeignRow { .. } | Fault::MissingRow { .. } => true,
            Fault::FileChanged { .. } | Fault::RootMismatch { .. } => substituted,
            _ => false,
        };
        if !folded {
            out.extend(
                name_block_fault(f).map(|n| n.file(&header.file_key).block(&header.block_id)),
            );
        }
    }
    out
}

/// Names a fault about one block's file or rows.
fn name_block_fault(f: &Fault) -> Option<NamedFault> {
    let message = f.to_string();
    Some(match f {
        Fault::MissingFile {
            seq,
            block_id,
            file_key,
        } => NamedFault::new(kind::MISSING_FILE, message)
            .seq(*seq)
            .block(block_id)
            .file(file_key),
        Fault::UnreadableFile {
            seq,
            block_id,
            file_key,
            ..
        } => NamedFault::new(kind::UNREADABLE_FILE, message)
            .seq(*seq)
            .block(block_id)
            .file(file_key),
        Fault::FileChanged { seq, file_key, .. } => NamedFault::new(kind::FILE_CHANGED, message)
            .seq(*seq)
            .file(file_key),
        Fault::ForeignRow {
            seq,
            block_id,
            record_id,
            ..
        } => NamedFault::new(kind::SUBSTITUTED_FILE, message)
            .seq(*seq)
            .block(block_id)
            .record(record_id),
        Fault::AlteredRow {
            seq,
            block_id,
            leaf_index,
            record_id,
        } => NamedFault::new(kind::ALTERED_ROW, message)
            .seq(*seq)
            .block(block_id)
            .leaf(*leaf_index)
            .record(record_id),
        Fault::MissingRow {
            seq,
            block_id,
            leaf_index,
        } => NamedFault::new(kind::MISSING_ROWS, message)
            .seq(*seq)
            .block(block_id)
            .leaf(*leaf_index),
        Fault::DuplicateRow {
            seq,
            block_id,
            leaf_index,
        } => NamedFault::new(kind::DUPLICATE_ROW, message)
            .seq(*seq)
            .block(block_id)
            .leaf(*leaf_index),
        Fault::ExtraRow {
            seq,
            block_id,
            leaf_index,
            record_id,
        } => NamedFault::new(kind::EXTRA_ROW, message)
            .seq(*seq)
            .block(block_id)
            .leaf(*leaf_index)
            .record(record_id),
        Fault::ReorderedRows {
            seq,
            block_id,
            leaf_index,
            ..
        } => NamedFault::new(kind::REORDERED_ROWS, message)
            .seq(*seq)
            .block(block_id)
            .leaf(*leaf_index),
        Fault::RootMismatch { seq, block_id, .. } => NamedFault::new(kind::ROOT_MISMATCH, message)
            .seq(*seq)
            .block(block_id),
        Fault::UnreadableRow {
            seq,
            block_id,
            leaf_index,
            ..
        } => NamedFault::new(kind::UNREADABLE_ROW, message)
            .seq(*seq)
            .block(block_id)
            .leaf(*leaf_index),
        Fault::BadTombstone {
            seq,
            block_id,
            tombstone_key,
            ..
        } => NamedFault::new(kind::BAD_TOMBSTONE, message)
            .seq(*seq)
            .block(block_id)
            .file(tombstone_key),
        Fault::BadReceipt {
            seq,
            block_id,
            receipt_key,
            ..
        } => NamedFault::new(kind::BAD_ERASURE, message)
            .seq(*seq)
            .block(block_id)
            .file(receipt_key),
        Fault::ErasedRowPresent {
            seq,
            block_id,
            leaf_index,
        }
        | Fault::BadErasure {
            seq,
            block_id,
            leaf_index,
            ..
        } => NamedFault::new(kind::BAD_ERASURE, message)
            .seq(*seq)
            .block(block_id)
            .leaf(*leaf_index),
        Fault::MissingBlocks { .. }
        | Fault::ConflictingBlocks { .. }
        | Fault::BrokenLink { .. }
        | Fault::HeadMismatch { .. }
        | Fault::BlockAfterHead { .. }
        | Fault::MissingHead => return None,
    })
}

/// Names a checkpoint fault; the sentence is its `Display`.
fn name_checkpoint_fault(f: &CheckpointFault) -> NamedFault {
    use CheckpointFault::*;
    let message = f.to_string();
    match f {
        UnreadableCheckpoint { .. } => NamedFault::new(kind::UNREADABLE_CHECKPOINT, message),
        MisplacedCheckpoint { number, .. } => {
            let mut n = NamedFault::new(kind::MISPLACED_CHECKPOINT, message);
            n.checkpoint = Some(*number);
            n
        }
        BadSignature { checkpoint, .. } => {
            NamedFault::new(kind::BAD_SIGNATURE, message).checkpoint(checkpoint)
        }
        ForeignCheckpoint { checkpoint, .. } => {
            NamedFault::new(kind::FOREIGN_CHECKPOINT, message).checkpoint(checkpoint)
        }
        DuplicateCheckpoint { number } => {
            let mut n = NamedFault::new(kind::DUPLICATE_CHECKPOINT, message);
            n.checkpoint = Some(*number);
            n
        }
        MissingCheckpoints { from_number, .. } => {
            let mut n = NamedFault::new(kind::MISSING_CHECKPOINTS, message);
            n.checkpoint = Some(*from_number);
            n
        }
        BrokenCheckpointLink { checkpoint, .. } => {
            NamedFault::new(kind::BROKEN_CHECKPOINT_LINK, message).checkpoint(checkpoint)
        }
        CheckpointRegressed { checkpoint, .. } => {
            NamedFault::new(kind::CHECKPOINT_REGRESSED, message).checkpoint(checkpoint)
        }
        IntervalGap { before, .. } => {
            NamedFault::new(kind::CHECKPOINT_INTERVAL_GAP, message).checkpoint(before)
        }
        ChainMismatch { checkpoint, .. } => {
            NamedFault::new(kind::CHAIN_MISMATCH, message).checkpoint(checkpoint)
        }
        BeyondHead { checkpoint, .. } => {
            NamedFault::new(kind::CHECKPOINT_BEYOND_HEAD, message).checkpoint(checkpoint)
        }
        NoCheckpoint { head_seq } => NamedFault::new(kind::NO_CHECKPOINT, message).seq(*head_seq),
        StaleCheckpoint { checkpoint, .. } => {
            NamedFault::new(kind::STALE_CHECKPOINT, message).checkpoint(checkpoint)
        }
        FutureCheckpoint { checkpoint } => {
            NamedFault::new(kind::FUTURE_CHECKPOINT, message).checkpoint(checkpoint)
        }
        AlteredBlockList { checkpoint, .. } => {
            NamedFault::new(kind::ALTERED_BLOCK_LIST, message).checkpoint(checkpoint)
        }
        BlockListGap { checkpoint, .. } => {
            NamedFault::new(kind::BLOCK_LIST_GAP, message).checkpoint(checkpoint)
        }
        ListedBlockMismatch {
            checkpoint, seq, ..
        } => NamedFault::new(kind::LISTED_BLOCK_MISMATCH, message)
            .checkpoint(checkpoint)
            .seq(*seq),
        MissingLocator { checkpoint } => {
            NamedFault::new(kind::MISSING_LOCATOR, message).checkpoint(checkpoint)
        }
        StrayLocator { .. } => NamedFault::new(kind::STRAY_LOCATOR, message),
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
