//! What the core needs from storage, as traits; `journal-aws` implements them with S3, DynamoDB
//! and KMS, and [`crate::memory`] with in-process maps for unit tests.

use std::future::Future;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::features_crypto::DataKey;
use crate::integrity::{BlockHeader, ChainHead};
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    /// Worth retrying later (throttling, network, a service error).
    #[error("{op} failed: {message}")]
    Transient { op: String, message: String },
    /// Data or configuration is wrong; retrying will not help.
    #[error("{op} failed permanently: {message}")]
    Permanent { op: String, message: String },
    /// A fault injected by a test between two ingest steps (stands in for a crash).
    #[error("injected fault at {0}")]
    Injected(String),
}

impl PortError {
    pub fn transient(op: impl Into<String>, message: impl ToString) -> Self {
        Self::Transient {
            op: op.into(),
            message: message.to_string(),
        }
    }

    pub fn permanent(op: impl Into<String>, message: impl ToString) -> Self {
        Self::Permanent {
            op: op.into(),
            message: message.to_string(),
        }
    }
}

/// Life cycle of a data file in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Claimed by an ingest that has not chained it yet; the fencing token for takeovers.
    Pending,
    /// Its block is in the chain; index entries may still be missing.
    Chained,
    /// Chained and fully indexed.
    Live,
    /// Its ingest died before chaining; the records were ingested again elsewhere.
    Abandoned,
    Compacted,
    Archived,
    Deleted,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Pending => "pending",
            FileState::Chained => "chained",
            FileState::Live => "live",
            FileState::Abandoned => "abandoned",
            FileState::Compacted => "compacted",
            FileState::Archived => "archived",
            FileState::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => FileState::Pending,
            "chained" => FileState::Chained,
            "live" => FileState::Live,
            "abandoned" => FileState::Abandoned,
            "compacted" => FileState::Compacted,
            "archived" => FileState::Archived,
            "deleted" => FileState::Deleted,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub tenant_id: String,
    pub file_key: String,
    pub block_id: String,
    pub state: FileState,
    pub seq: Option<u64>,
    pub rows: u64,
    pub size: u64,
    pub sha256: String,
    pub first_occurred_at: Timestamp,
    pub last_occurred_at: Timestamp,
    pub created_at: Timestamp,
    /// Compaction's output: the seq of the last block it holds (`seq` is the first) and the
    /// files merged into it, in chain order. Empty for ingest files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// A compacted input: the file that now holds its rows, and when it may be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacted_into: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after: Option<Timestamp>,
    /// Risk tiers of the file's records, sorted (`none` for records without one). Empty on
    /// entries written before tiers were recorded: retention then applies the tenant's
    /// strictest rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk_tiers: Vec<String>,
    /// The archive class retention moved the file to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Key of the signed tombstone retention wrote when it deleted the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone: Option<String>,
    /// Keys of the signed erasure receipts whose rows this file (an erasure's rewrite) lacks,
    /// oldest first: verification takes their leaves in place of the missing rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erasure_receipts: Vec<String>,
}

impl ManifestEntry {
    /// A merged file (compaction's output), not one ingest block.
    pub fn is_merged(&self) -> bool {
        !self.merged_from.is_empty()
    }

    /// The tiers its records carry, or `None` when the entry predates recording them.
    pub fn known_tiers(&self) -> Option<&[String]> {
        (!self.risk_tiers.is_empty()).then_some(self.risk_tiers.as_slice())
    }
}

/// A conditional claim of one record id for one block, written before anything else so that
/// two deliveries of the same record can never both be chained.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub tenant_id: String,
    pub record_id: String,
    pub content_mac: String,
    pub block_id: String,
    pub file_key: String,
    pub claimed_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointerState {
    Claimed,
    Indexed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExistingPointer {
    pub state: PointerState,
    pub block_id: String,
    pub file_key: String,
    pub content_mac: String,
    pub claimed_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ClaimResult {
    Won,
    Existing(ExistingPointer),
}

/// Outcome of fencing off a dead ingest's block.
#[derive(Clone, Debug, PartialEq)]
pub enum AbandonOutcome {
    Abandoned,
    /// Too late: the block made it into the chain.
    AlreadyChained(Box<ManifestEntry>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum AppendOutcome {
    Appended,
    /// Another block was appended first; re-read the head and try again.
    HeadMoved,
    /// Our manifest entry is no longer pending (a takeover abandoned it): do not chain.
    Fenced,
}

/// The index entry of one record (DESIGN §5): where it is and what to find it by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pointer {
    pub tenant_id: String,
    pub record_id: String,
    pub kind: String,
    pub block_id: String,
    pub seq: u64,
    pub file_key: String,
    pub row_group: u32,
    pub row: u32,
    pub leaf_index: u32,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    pub subject_ref: Option<String>,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    pub decision: Option<String>,
    pub risk_tier: Option<String>,
    pub refers_to: Option<String>,
    pub content_mac: String,
    pub storage_state: FileState,
    /// The chained header of the record's block, copied at index time, so that a lookup
    /// proves leaf → root → block hash → signed checkpoint without reading the chain.
    pub block: BlockHeader,
}

pub trait ObjectStore: Send + Sync {
    fn put_object(
        &self,
        key: &str,
        body: Bytes,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Deletes the object (its current version on a versioned bucket); `Ok(())` when it is
    /// already gone.
    fn delete_object(&self, key: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// `Ok(None)` when the object does not exist.
    fn get_object(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Bytes>, PortError>> + Send;
}

/// The end of an object, with the object's total size (from the `Content-Range` answer), so a
/// Parquet footer can be placed without a separate HEAD.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectSuffix {
    pub bytes: Bytes,
    pub total_size: u64,
}

/// Why a ranged read returned no bytes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    #[error("object {key} does not exist")]
    NotFound { key: String },
    /// In an archive storage class and not restored: readable only after a restore.
    #[error("object {key} is archived in {storage_class} and not restored")]
    Archived { key: String, storage_class: String },
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Where an object stands with respect to archive storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ArchiveState {
    /// In a class that is read directly (STANDARD, STANDARD_IA, ...).
    Online,
    /// Archived; no restore asked for or the last one expired.
    Archived,
    /// Archived; a restore is running.
    Restoring,
    /// Archived; a restored copy is readable until `expires` (S3's wording).
    Restored { expires: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStatus {
    pub size: u64,
    pub storage_class: String,
    pub archive: ArchiveState,
}

/// Ranged reads and archive handling, for lookups that must never download a whole file.
pub trait RangedObjectStore: ObjectStore {
    /// The last `len` bytes (all of them if the object is shorter) and the total size.
    fn get_suffix(
        &self,
        key: &str,
        len: u64,
    ) -> impl Future<Output = Result<ObjectSuffix, ReadError>> + Send;
    /// Bytes `range.start..range.end`.
    fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> impl Future<Output = Result<Bytes, ReadError>> + Send;
    /// `Ok(None)` when the object does not exist.
    fn object_status(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectStatus>, PortError>> + Send;
    /// Asks for a temporary readable copy of an archived object for `days`; asking again while
    /// one runs is not an error.
    fn request_restore(
        &self,
        key: &str,
        days: u32,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Storage-class moves and permanent deletion, for retention.
pub trait ArchiveStore: RangedObjectStore {
    /// Moves the object to `storage_class` in place (same key, same bytes); the copy in the
    /// old class is removed, not left behind as a noncurrent version.
    fn set_storage_class(
        &self,
        key: &str,
        storage_class: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Deletes every version of the object (and its delete markers), so the bytes are gone,
    /// not hidden; returns how many versions went. `Ok(0)` when there are none.
    fn purge(&self, key: &str) -> impl Future<Output = Result<u64, PortError>> + Send;
}

/// A message (or one record of a packed message) refused by validation, on its way to the
/// dead-letter path with the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectedMessage {
    /// The SQS message id it arrived in.
    pub message_id: String,
    /// The rejected text: the whole body, or the one record of a packed array. Invalid UTF-8
    /// bodies are carried base64-encoded (`body_base64 = true`).
    pub body: String,
    pub body_base64: bool,
    pub rejection: crate::validate::Rejection,
}

/// The dead-letter path for rejected input.
pub trait RejectSink: Send + Sync {
    fn send_rejects(
        &self,
        rejects: &[RejectedMessage],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub trait JournalIndex: Send + Sync {
    /// Conditionally creates a claim per record; returns the existing pointer where one exists.
    fn claim(
        &self,
        claims: &[Claim],
    ) -> impl Future<Output = Result<Vec<ClaimResult>, PortError>> + Send;
    /// Moves a stale claim to a new block if it still names `from_block_id` (or already names
    /// the new block: a retried takeover holds).
    fn take_over(
        &self,
        claim: &Claim,
        from_block_id: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Creates the manifest entry in state pending; false if an entry already exists, unless it
    /// is this block's own pending entry (a retried put).
    fn put_manifest_pending(
        &self,
        entry: &ManifestEntry,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn get_manifest(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> impl Future<Output = Result<Option<ManifestEntry>, PortError>> + Send;
    /// Marks a dead ingest's file abandoned (creating the entry if it never got one), unless its
    /// block is already chained.
    fn abandon_manifest(
        &self,
        tenant_id: &str,
        file_key: &str,
        block_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<AbandonOutcome, PortError>> + Send;
    fn chain_head(
        &self,
        chain_id: &str,
    ) -> impl Future<Output = Result<Option<ChainHead>, PortError>> + Send;
    /// Atomically: move the head from `header.seq - 1` to `header`, store the block, and move
    /// the manifest entry pending → chained.
    fn append_block(
        &self,
        header: &BlockHeader,
    ) -> impl Future<Output = Result<AppendOutcome, PortError>> + Send;
    /// Writes final pointers (idempotent: same content on a repeat).
    fn write_pointers(
        &self,
        pointers: &[Pointer],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    fn mark_manifest_live(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    // Read side (lookups, verification, recovery).

    /// The index entry of a record, whatever its state.
    fn get_pointer(
        &self,
        tenant_id: &str,
        record_id: &str,
    ) -> impl Future<Output = Result<Option<IndexEntry>, PortError>> + Send;
    /// The indexed pointers of several records of a tenant, in no particular order; records
    /// not indexed (absent, or only claimed) are left out, and an id named twice is read once.
    fn get_pointers(
        &self,
        tenant_id: &str,
        record_ids: &[String],
    ) -> impl Future<Output = Result<Vec<Pointer>, PortError>> + Send;
    /// The index entry of a record and the indexed records that refer to it (outcomes,
    /// reviews; oldest first): one read of the record's partition.
    fn get_with_links(
        &self,
        tenant_id: &str,
        record_id: &str,
    ) -> impl Future<Output = Result<(Option<IndexEntry>, Vec<Pointer>), PortError>> + Send;
    /// Indexed records of a subject with `from <= occurred_at < to`, oldest first.
    fn query_subject(
        &self,
        tenant_id: &str,
        subject_ref: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<Pointer>, PortError>> + Send;
    /// Indexed records of a model version with `from <= occurred_at < to`, oldest first.
    fn query_model(
        &self,
        tenant_id: &str,
        model_name: &str,
        model_version: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<Pointer>, PortError>> + Send;
    /// Every chain's head, for scheduled work over all tenants (checkpoints).
    fn list_chain_heads(&self) -> impl Future<Output = Result<Vec<ChainHead>, PortError>> + Send;
    /// Access records (reads journaled by the replay function) with `from <= occurred_at <
    /// to`, oldest first.
    fn query_access(
        &self,
        tenant_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<Pointer>, PortError>> + Send;
    /// Outcomes and reviews that refer to `decision_id`, oldest first.
    fn query_refs(
        &self,
        tenant_id: &str,
        decision_id: &str,
    ) -> impl Future<Output = Result<Vec<Pointer>, PortError>> + Send;
    /// Block headers of a chain with `from_seq <= seq <= to_seq`, by seq.
    fn list_blocks_between(
        &self,
        chain_id: &str,
        from_seq: u64,
        to_seq: u64,
    ) -> impl Future<Output = Result<Vec<BlockHeader>, PortError>> + Send;
    /// Every stored block header of a chain, by seq.
    fn list_blocks(
        &self,
        chain_id: &str,
    ) -> impl Future<Output = Result<Vec<BlockHeader>, PortError>> + Send;
    // Compaction.

    /// Creates or replaces a manifest entry (compaction's outputs).
    fn put_manifest(
        &self,
        entry: &ManifestEntry,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Moves a live file to `compacted`, naming the file that now holds its rows and when it
    /// may be deleted. `Ok(false)` unless it was live or already compacted into `into`.
    fn mark_manifest_compacted(
        &self,
        tenant_id: &str,
        file_key: &str,
        into: &str,
        delete_after: Timestamp,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Moves a compacted file whose object is gone to `deleted`.
    fn mark_manifest_deleted(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Takes (or renews) the lease `name` for `owner` until `until`, unless another owner's
    /// lease runs past `now`. `Ok(false)` when another owner holds it.
    fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Gives the lease up if `owner` holds it.
    fn release_lease(
        &self,
        name: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Deletes records' index entries: the pointer (also the ingest claim and the GSI
    /// timelines' item) and, for an outcome or review, its link item in the decision's
    /// partition. Entries already gone are not an error.
    fn delete_entries(
        &self,
        pointers: &[Pointer],
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Manifest entries of a tenant's partition date (`YYYY-MM-DD`).
    fn list_manifest(
        &self,
        tenant_id: &str,
        date: &str,
    ) -> impl Future<Output = Result<Vec<ManifestEntry>, PortError>> + Send;

    /// Remembers an erased subject of the tenant (replacing an entry with the same token).
    fn put_suppression(
        &self,
        tenant_id: &str,
        suppression: &Suppression,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The tenant's suppressions that have not expired at `now`.
    fn suppressions(
        &self,
        tenant_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Suppression>, PortError>> + Send;
}

/// An erased subject, remembered so that its records still in flight when the erasure ran (an
/// SQS redelivery of a failed batch, a producer replaying its spill buffer) are dropped on
/// arrival instead of journaled again. It names nobody: the token is a keyed hash of the
/// subject's ref ([`crate::keys::TenantKeys::suppression_token`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub token: String,
    /// Records of the subject that occurred up to this instant are dropped.
    pub erased_at: Timestamp,
    /// After this nothing of the erasure's time can still be in flight; the entry may go.
    pub expires_at: Timestamp,
}

impl Suppression {
    /// How long a suppression lasts: SQS keeps a message at most 14 days, plus a day.
    pub const LASTS_DAYS: u32 = 15;

    pub fn new(token: String, erased_at: Timestamp) -> Self {
        Self {
            token,
            erased_at,
            expires_at: erased_at
                .plus_days(Self::LASTS_DAYS)
                .unwrap_or(Timestamp::MAX),
        }
    }

    /// Does it drop a record of the subject it names that occurred at `occurred_at`?
    pub fn drops(&self, token: &str, occurred_at: Timestamp) -> bool {
        self.token == token && occurred_at <= self.erased_at
    }
}

/// What the index holds under a record id.
// Returned one at a time from lookups, never stored in bulk, so the size difference is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum IndexEntry {
    /// Claimed by a block that may or may not have been chained yet.
    Claimed(ExistingPointer),
    Indexed(Pointer),
}

pub trait SubjectKeyStore: Send + Sync {
    /// The subject's data key, created (and stored wrapped) on first use.
    fn data_key(
        &self,
        tenant_id: &str,
        subject_ref: &str,
    ) -> impl Future<Output = Result<DataKey, PortError>> + Send;
    /// The subject's stored data key, or `None`; never creates one. For readers: the read
    /// role may not mint keys, and a shredded key must read as gone, not as a new key.
    fn existing_key(
        &self,
        tenant_id: &str,
        subject_ref: &str,
    ) -> impl Future<Output = Result<Option<DataKey>, PortError>> + Send;
    /// Erasure: deletes the subject's stored key, so that everything sealed under it can no
    /// longer be opened (a later `data_key` issues a new one). `Ok(true)` when a key existed.
    fn shred(
        &self,
        tenant_id: &str,
        subject_ref: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}
