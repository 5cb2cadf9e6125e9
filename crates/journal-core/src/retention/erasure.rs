//! Erasure of one subject (GDPR art. 17): the subject's data key is shredded, every record of
//! the subject (its decisions, the outcomes and reviews that refer to them, and the access
//! records of reads that named the subject) leaves the index and the Parquet files, and a
//! signed [`ReceiptFile`] keeps the removed rows' leaf hashes, so every block still verifies.
//!
//! # Steps
//!
//! 1. Find the records through the index (the subject's timeline, then each decision's links);
//!    refuse, naming the holds, if a legal hold covers any of them.
//! 2. Remember the subject in a [`Suppression`] (a keyed hash of its ref, the erasure time),
//!    so that ingest drops its records still in flight (a redelivery, a replayed spill
//!    buffer) for 15 days; find the records again (none can land after this), shred the
//!    subject's key, then record the job (`retention/erasures/tenant=T/<id>.json`: the files
//!    and the record ids to remove from each; no subject id or ref).
//! 3. Delete the records' index entries: from here on no lookup or query finds them.
//! 4. Once every file holding them can be read (archived ones are restored first; the job waits
//!    and later retention runs resume it), write the signed receipt: the removed leaves per
//!    block, read from the files.
//! 5. Per file: copy it without the rows to a new key in the same partition, read the copy back
//!    and check every block against the chain with the receipt's leaves in place of the rows,
//!    record the copy in the manifest (naming its receipts), move the other rows' pointers to
//!    it, point the file's inputs at it, mark the old file deleted, and delete every version of
//!    the old file and of the inputs compaction left (noncurrent versions would keep the rows).
//! 6. Delete the index entries once more (a compaction that ran meanwhile may have rebuilt
//!    some), then the job.
//!
//! Every step is idempotent and the job is deleted last, so a crash is finished by the next
//! erase or retention run. The copy's key names the job, so a resumed step writes the same key.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::erasure_receipt::{receipt_for, receipt_key, ErasedBlock, ErasedLeaf, ReceiptFile};
use super::policy::{ArchiveClass, LegalHold, MIN_ARCHIVE_BYTES};
use super::restores::{request_restore_tracked, restore_marker_key};
use super::run::{file_error, ids_key, tenant_lease, Retention, RetentionError};
use super::sealed::Sealed;
use crate::checkpoint::{CheckpointSigner, CheckpointStore};
use crate::columnar::filter::copy_without;
use crate::columnar::{LazyRowGroups, WriterConfig};
use crate::compact::merge::verify_output_erased;
use crate::compact::run::switch_pointers;
use crate::faults::{CrashStep, FaultSwitch};
use crate::integrity::{BlockHeader, Hash32};
use crate::keys::MasterKey;
use crate::layout;
use crate::ports::{
    ArchiveState, ArchiveStore, FileState, JournalIndex, ManifestEntry, Pointer, PortError,
    SubjectKeyStore, Suppression,
};
use crate::record::Kind;
use crate::timestamp::Timestamp;

pub const JOBS_PREFIX: &str = "retention/erasures/";
pub const JOB_VERSION: u32 = 1;
/// Days a restore for an erasure keeps the readable copy.
const RESTORE_DAYS: u32 = 7;
/// Most `compacted_into` hops followed to find where a file's rows are now.
const MAX_HOPS: usize = 8;

pub fn job_key(tenant_id: &str, job_id: &str) -> String {
    format!("{JOBS_PREFIX}tenant={tenant_id}/{job_id}.json")
}

pub fn jobs_prefix(tenant_id: &str) -> String {
    format!("{JOBS_PREFIX}tenant={tenant_id}/")
}

/// The key of the `n`-th file an erasure job rewrites: beside the file, in its partition.
pub fn erased_file_key(file_key: &str, job_id: &str, n: usize) -> String {
    let dir = file_key.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{dir}/{}{n:03}.parquet", output_prefix(job_id))
}

fn output_prefix(job_id: &str) -> String {
    format!("erased-{job_id}-")
}

/// An erasure in progress, as stored between steps: no subject id or ref, only where the
/// records are and which they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureJob {
    pub version: u32,
    /// Also the receipt's id: a random ULID.
    pub job_id: String,
    pub tenant_id: String,
    pub requested_at: Timestamp,
    /// Whether the subject had a stored data key that this erasure deleted.
    pub key_existed: bool,
    /// The files (as the index named them when the job started) and the ids of the records to
    /// remove from each.
    pub files: BTreeMap<String, Vec<String>>,
}

impl ErasureJob {
    fn ids(&self) -> HashSet<&str> {
        self.files.values().flatten().map(String::as_str).collect()
    }

    fn record_count(&self) -> u64 {
        self.files.values().map(|v| v.len() as u64).sum()
    }
}

/// What happened (or, dry, would happen) to one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FileErasure {
    /// A dry run: would be rewritten.
    Planned { archived: bool },
    /// Copied without the rows to `into`; the old file is gone.
    Rewritten { into: String, rows_removed: u64 },
    /// Archived: a restore was requested; a later run finishes the job.
    Waiting { reason: String },
    /// The rows were gone already (expired, or rewritten by an earlier attempt).
    Gone,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileErasureReport {
    pub file_key: String,
    pub records: u64,
    #[serde(flatten)]
    pub outcome: FileErasure,
}

/// What an erasure did. Names no subject: counts, file keys, the receipt.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    pub tenant_id: String,
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Records found, by kind (`decision`, `outcome`, `review`, `access`).
    pub records: BTreeMap<String, u64>,
    pub files: Vec<FileErasureReport>,
    /// The subject had a data key and it was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_shredded: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_key: Option<String>,
    /// Everything is done: the job is gone and the receipt written.
    pub done: bool,
    /// Another retention run or erasure holds the tenant; nothing was done.
    pub busy: bool,
}

/// After which step a test crash is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErasureStep {
    /// The key is shredded and the job recorded; the index is untouched.
    Recorded,
    /// The index entries are gone; the files are untouched.
    Unindexed,
    /// The receipt is written; no file is rewritten.
    Receipted,
    /// A copy is written and in the manifest; pointers still name the old file.
    Copied,
    /// The old file is marked deleted but not yet purged.
    Marked,
}

impl CrashStep for ErasureStep {
    fn label(self) -> String {
        format!("{self:?}")
    }
}

impl ErasureStep {
    pub const ALL: [ErasureStep; 5] = [
        ErasureStep::Recorded,
        ErasureStep::Unindexed,
        ErasureStep::Receipted,
        ErasureStep::Copied,
        ErasureStep::Marked,
    ];
}

/// Where a job's file's rows are now.
enum Located {
    /// In this file (live, archived, or an ingest not yet done).
    At(Box<ManifestEntry>),
    /// In one of this job's copies already, reached through these (replaced) files.
    Copied { into: String, via: Vec<String> },
    /// Nowhere any more (expired by retention, or never listed).
    Gone,
}

/// Erasure for the tenants a [`Retention`] serves, with the subject keys and the master key.
pub struct Erasure<'r, 'a, S, I, C, G, K> {
    pub retention: &'r Retention<'a, S, I, C, G>,
    pub keys: &'r K,
    pub master: &'r MasterKey,
    /// Writer settings of the copies (those of compaction's outputs).
    pub writer: WriterConfig,
    faults: FaultSwitch<ErasureStep>,
}

impl<'r, 'a, S, I, C, G, K> Erasure<'r, 'a, S, I, C, G, K>
where
    S: ArchiveStore,
    I: JournalIndex,
    C: CheckpointStore,
    G: CheckpointSigner,
    K: SubjectKeyStore,
{
    pub fn new(
        retention: &'r Retention<'a, S, I, C, G>,
        keys: &'r K,
        master: &'r MasterKey,
        writer: WriterConfig,
    ) -> Self {
        Self {
            retention,
            keys,
            master,
            writer,
            faults: FaultSwitch::default(),
        }
    }

    /// Makes the erasure stop after `step` with [`PortError::Injected`] (tests).
    pub fn crash_after(&self, step: ErasureStep) {
        self.faults.arm(step);
    }

    fn store(&self) -> &'a S {
        self.retention.store
    }

    fn index(&self) -> &'a I {
        self.retention.index
    }

    /// Erases the subject `subject_id` (the raw id: only its ref is used) of `tenant_id` at
    /// `now`; with `dry_run` nothing is changed and the report lists what would be done.
    pub async fn erase(
        &self,
        tenant_id: &str,
        subject_id: &str,
        now: Timestamp,
        dry_run: bool,
    ) -> Result<ErasureReport, RetentionError> {
        let tenant_keys = self.master.tenant_keys(tenant_id);
        let subject_ref = tenant_keys.subject_ref(subject_id);
        let mut report = ErasureReport {
            tenant_id: tenant_id.to_string(),
            dry_run,
            ..ErasureReport::default()
        };
        let found = self.find(tenant_id, &subject_ref).await?;
        count_records(&mut report, &found);
        let held = holds_covering(
            self.retention.policy.holds_of(tenant_id),
            &subject_ref,
            &found,
        );
        if !held.is_empty() {
            return Err(RetentionError::Held {
                holds: held,
                records: found.len() as u64,
            });
        }
        if dry_run {
            for (file_key, ids) in &files_of(&found) {
                let archived = self
                    .index()
                    .get_manifest(tenant_id, file_key)
                    .await?
                    .is_some_and(|e| e.state == FileState::Archived);
                report.files.push(FileErasureReport {
                    file_key: file_key.clone(),
                    records: ids.len() as u64,
                    outcome: FileErasure::Planned { archived },
                });
            }
            return Ok(report);
        }
        if !self.lease(&tenant_lease(tenant_id), now).await? {
            report.busy = true;
            return Ok(report);
        }
        let result = async {
            // Earlier jobs first: one waiting for a restore may hold this subject's rows. One
            // that fails is left for the scheduled runs (which report it), not in this one's way.
            let pending = self.pending_jobs(tenant_id).await?;
            if let Err(e) = self.resume_leased(tenant_id, pending, now).await {
                tracing::warn!(error = %e, "an earlier erasure could not be finished");
            }
            // From here on ingest drops the subject's records that occurred up to now, so one
            // still in flight cannot land after its rows are gone; what landed before is found
            // again below.
            let suppression = Suppression::new(tenant_keys.suppression_token(&subject_ref), now);
            self.index()
                .put_suppression(tenant_id, &suppression)
                .await?;
            let found = self.find(tenant_id, &subject_ref).await?;
            report.records.clear();
            count_records(&mut report, &found);
            let files = files_of(&found);
            let key_existed = self.keys.shred(tenant_id, &subject_ref).await?;
            let job = ErasureJob {
                version: JOB_VERSION,
                job_id: ulid::Ulid::new().to_string(),
                tenant_id: tenant_id.to_string(),
                requested_at: now,
                key_existed,
                files,
            };
            self.save(&job).await?;
            self.faults.check(ErasureStep::Recorded)?;
            self.continue_job(&job, now, &mut report).await
        }
        .await;
        self.release(&tenant_lease(tenant_id)).await?;
        result?;
        Ok(report)
    }

    /// Finishes the tenant's interrupted or waiting erasures (retention runs call this).
    pub async fn resume(
        &self,
        tenant_id: &str,
        now: Timestamp,
    ) -> Result<Vec<ErasureReport>, RetentionError> {
        let pending = self.pending_jobs(tenant_id).await?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        if !self.lease(&tenant_lease(tenant_id), now).await? {
            return Ok(vec![ErasureReport {
                tenant_id: tenant_id.to_string(),
                busy: true,
                ..ErasureReport::default()
            }]);
        }
        let result = self.resume_leased(tenant_id, pending, now).await;
        self.release(&tenant_lease(tenant_id)).await?;
        result
    }

    async fn pending_jobs(&self, tenant_id: &str) -> Result<Vec<String>, PortError> {
        self.retention
            .evidence
            .list_keys(&jobs_prefix(tenant_id))
            .await
    }

    /// [`Erasure::resume`] under the tenant's lease.
    async fn resume_leased(
        &self,
        tenant_id: &str,
        keys: Vec<String>,
        now: Timestamp,
    ) -> Result<Vec<ErasureReport>, RetentionError> {
        let mut reports = Vec::new();
        for key in keys {
            let Some(bytes) = self.store().get_object(&key).await? else {
                continue;
            };
            let job: ErasureJob =
                serde_json::from_slice(&bytes).map_err(|e| RetentionError::State {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
            let mut report = ErasureReport {
                tenant_id: tenant_id.to_string(),
                ..ErasureReport::default()
            };
            self.continue_job(&job, now, &mut report).await?;
            reports.push(report);
        }
        Ok(reports)
    }

    /// Takes (or renews) the lease `name` for this run until the configured lease time.
    async fn lease(&self, name: &str, now: Timestamp) -> Result<bool, PortError> {
        let until = Timestamp::from_millis(now.millis() + self.retention.config.lease_ms)
            .unwrap_or(Timestamp::MAX);
        self.index()
            .acquire_lease(name, &self.retention.owner, now, until)
            .await
    }

    async fn release(&self, name: &str) -> Result<(), PortError> {
        self.index()
            .release_lease(name, &self.retention.owner)
            .await
    }

    /// The subject's indexed records: its timeline (decisions, and access records that named
    /// it) and the outcomes and reviews linked to its decisions.
    async fn find(&self, tenant_id: &str, subject_ref: &str) -> Result<Vec<Pointer>, PortError> {
        let mut found: BTreeMap<String, Pointer> = BTreeMap::new();
        let timeline = self
            .index()
            .query_subject(tenant_id, subject_ref, Timestamp::MIN, Timestamp::MAX)
            .await?;
        for p in timeline {
            found.insert(p.record_id.clone(), p);
        }
        let decisions: Vec<String> = found
            .values()
            .filter(|p| p.kind == Kind::Decision.as_str())
            .map(|p| p.record_id.clone())
            .collect();
        for d in decisions {
            for p in self.index().query_refs(tenant_id, &d).await? {
                found.entry(p.record_id.clone()).or_insert(p);
            }
        }
        Ok(found.into_values().collect())
    }

    async fn save(&self, job: &ErasureJob) -> Result<(), PortError> {
        self.store()
            .put_object(
                &job_key(&job.tenant_id, &job.job_id),
                Bytes::from(serde_json::to_vec(job).expect("a job serializes")),
            )
            .await
    }

    async fn continue_job(
        &self,
        job: &ErasureJob,
        now: Timestamp,
        report: &mut ErasureReport,
    ) -> Result<(), RetentionError> {
        let span = tracing::info_span!("erasure", tenant = %job.tenant_id, job = %job.job_id);
        self.continue_in_span(job, now, report)
            .instrument(span)
            .await
    }

    async fn continue_in_span(
        &self,
        job: &ErasureJob,
        now: Timestamp,
        report: &mut ErasureReport,
    ) -> Result<(), RetentionError> {
        report.job_id = Some(job.job_id.clone());
        report.key_shredded = Some(job.key_existed);
        self.unindex(job).await?;
        self.faults.check(ErasureStep::Unindexed)?;

        // Every file must be readable before the receipt can list its leaves.
        let mut waiting = false;
        let mut located = Vec::new();
        for (file_key, ids) in &job.files {
            let at = self.locate(&job.tenant_id, file_key, &job.job_id).await?;
            if let Located::At(entry) = &at {
                let why = if matches!(entry.state, FileState::Pending | FileState::Chained) {
                    Some(format!(
                        "{} is still being indexed by ingest; the next run rewrites it",
                        entry.file_key
                    ))
                } else if !self.readable(entry).await? {
                    request_restore_tracked(self.store(), &entry.file_key, RESTORE_DAYS, now)
                        .await?;
                    Some(format!(
                        "{} is archived: a restore was requested; retention runs finish the erasure once it is readable",
                        entry.file_key
                    ))
                } else {
                    None
                };
                if let Some(reason) = why {
                    report.files.push(FileErasureReport {
                        file_key: file_key.clone(),
                        records: ids.len() as u64,
                        outcome: FileErasure::Waiting { reason },
                    });
                    waiting = true;
                }
            }
            located.push((file_key, ids, at));
        }
        if waiting {
            return Ok(());
        }

        let receipt = self.receipt(job, now).await?;
        let receipt_key = receipt_key(&job.tenant_id, &job.job_id);
        report.receipt_key = Some(receipt_key.clone());
        self.faults.check(ErasureStep::Receipted)?;

        let ids = job.ids();
        let mut incomplete = false;
        for (n, (file_key, file_ids, at)) in located.into_iter().enumerate() {
            // Located again: an earlier file's copy may have taken this one's rows along.
            let at = match at {
                Located::At(_) => self.locate(&job.tenant_id, file_key, &job.job_id).await?,
                other => other,
            };
            let outcome = match at {
                Located::At(entry) => {
                    // Compaction stays off the partition while its file is rewritten.
                    let lease = compaction_lease(&entry);
                    if !self.lease(&lease, now).await? {
                        incomplete = true;
                        FileErasure::Waiting {
                            reason: format!(
                                "{} is being compacted; the next run rewrites it",
                                entry.file_key
                            ),
                        }
                    } else {
                        let into = erased_file_key(&entry.file_key, &job.job_id, n);
                        let removed = self
                            .rewrite(&entry, &into, &ids, &receipt_key, &receipt, now)
                            .await;
                        self.release(&lease).await?;
                        FileErasure::Rewritten {
                            into,
                            rows_removed: removed?,
                        }
                    }
                }
                Located::Copied { into, via } => {
                    // A crash may have come between marking and purging.
                    let inputs = self
                        .index()
                        .get_manifest(&job.tenant_id, &into)
                        .await?
                        .map(|e| e.merged_from)
                        .unwrap_or_default();
                    for old in &via {
                        self.purge_replaced(old, &inputs).await?;
                    }
                    FileErasure::Rewritten {
                        into,
                        rows_removed: 0,
                    }
                }
                Located::Gone => FileErasure::Gone,
            };
            report.files.push(FileErasureReport {
                file_key: file_key.clone(),
                records: file_ids.len() as u64,
                outcome,
            });
        }

        self.unindex(job).await?;
        if incomplete {
            return Ok(());
        }
        self.store()
            .purge(&job_key(&job.tenant_id, &job.job_id))
            .await?;
        report.done = true;
        tracing::info!(records = job.record_count(), files = job.files.len(), receipt = %receipt_key, "subject erased");
        Ok(())
    }

    /// Deletes the index entries of the job's records that are still there.
    async fn unindex(&self, job: &ErasureJob) -> Result<(), PortError> {
        let ids: Vec<String> = job.files.values().flatten().cloned().collect();
        for chunk in ids.chunks(1_000) {
            let pointers = self.index().get_pointers(&job.tenant_id, chunk).await?;
            self.index().delete_entries(&pointers).await?;
        }
        Ok(())
    }

    /// Follows a file's `compacted_into` to where its rows are now.
    async fn locate(
        &self,
        tenant_id: &str,
        file_key: &str,
        job_id: &str,
    ) -> Result<Located, PortError> {
        let ours = output_prefix(job_id);
        let mut key = file_key.to_string();
        let mut via = Vec::new();
        for _ in 0..MAX_HOPS {
            if key.rsplit('/').next().is_some_and(|n| n.starts_with(&ours)) {
                return Ok(Located::Copied { into: key, via });
            }
            let Some(entry) = self.index().get_manifest(tenant_id, &key).await? else {
                return Ok(Located::Gone);
            };
            if entry.tombstone.is_some() {
                return Ok(Located::Gone);
            }
            match (&entry.state, &entry.compacted_into) {
                (FileState::Compacted | FileState::Deleted, Some(into)) => {
                    via.push(key);
                    key = into.clone();
                }
                (FileState::Deleted | FileState::Abandoned, None) => return Ok(Located::Gone),
                _ => return Ok(Located::At(Box::new(entry))),
            }
        }
        Err(PortError::permanent(
            "locate file",
            format!("{file_key}: more than {MAX_HOPS} compacted_into hops"),
        ))
    }

    async fn readable(&self, entry: &ManifestEntry) -> Result<bool, PortError> {
        if entry.state != FileState::Archived && entry.storage_class.is_none() {
            return Ok(true);
        }
        Ok(match self.store().object_status(&entry.file_key).await? {
            Some(s) => matches!(
                s.archive,
                ArchiveState::Online | ArchiveState::Restored { .. }
            ),
            None => true,
        })
    }

    /// The job's receipt: the stored one, or one built from the files' rows, signed and stored
    /// write-once.
    async fn receipt(
        &self,
        job: &ErasureJob,
        now: Timestamp,
    ) -> Result<ReceiptFile, RetentionError> {
        let key = receipt_key(&job.tenant_id, &job.job_id);
        if let Some(bytes) = self.retention.evidence.get(&key).await? {
            return ReceiptFile::from_bytes(&bytes).map_err(|e| file_error(&key, e));
        }
        let ids = job.ids();
        let mut blocks: BTreeMap<u64, ErasedBlock> = BTreeMap::new();
        let mut read = BTreeSet::new();
        let mut files = 0u64;
        for file_key in job.files.keys() {
            let Located::At(entry) = self.locate(&job.tenant_id, file_key, &job.job_id).await?
            else {
                continue;
            };
            if !read.insert(entry.file_key.clone()) {
                continue;
            }
            let headers = self.retention.blocks_of(&entry).await?;
            let seq_of: HashMap<&str, u64> = headers
                .iter()
                .map(|h| (h.block_id.as_str(), h.seq))
                .collect();
            let bytes = self
                .store()
                .get_object(&entry.file_key)
                .await?
                .ok_or_else(|| {
                    file_error(&entry.file_key, "the manifest lists it but it is missing")
                })?;
            let mut any = false;
            let groups = LazyRowGroups::new(bytes).map_err(|e| file_error(&entry.file_key, e))?;
            for group in groups {
                let rows = group
                    .and_then(|g| g.integrity())
                    .map_err(|e| file_error(&entry.file_key, e))?;
                for r in rows
                    .into_iter()
                    .filter(|r| ids.contains(r.record_id.as_str()))
                {
                    let seq = *seq_of.get(r.block_id.as_str()).ok_or_else(|| {
                        file_error(
                            &entry.file_key,
                            format!("row of block {} that the chain does not list", r.block_id),
                        )
                    })?;
                    blocks
                        .entry(seq)
                        .or_insert_with(|| ErasedBlock {
                            seq,
                            block_id: r.block_id.clone(),
                            leaves: Vec::new(),
                        })
                        .leaves
                        .push(ErasedLeaf {
                            leaf_index: r.leaf_index,
                            leaf_hash: hex::encode(r.leaf_hash),
                        });
                    any = true;
                }
            }
            files += u64::from(any);
        }
        let signer = self.retention.signer;
        let (receipt, listed) = receipt_for(
            &job.job_id,
            &job.tenant_id,
            now,
            files,
            job.key_existed,
            blocks.into_values().collect(),
            signer.key_id(),
        )?;
        let file = ReceiptFile {
            sealed: Sealed::sign(receipt, signer).await?,
            blocks: listed,
        };
        if self
            .retention
            .evidence
            .put_if_absent(&key, Bytes::from(file.to_bytes()))
            .await?
        {
            return Ok(file);
        }
        // Another attempt stored it first: that one stands.
        let bytes = self
            .retention
            .evidence
            .get(&key)
            .await?
            .ok_or_else(|| file_error(&key, "taken but not readable"))?;
        ReceiptFile::from_bytes(&bytes).map_err(|e| file_error(&key, e))
    }

    /// Step 5 for one file; returns the rows removed.
    async fn rewrite(
        &self,
        entry: &ManifestEntry,
        into: &str,
        ids: &HashSet<&str>,
        receipt_key: &str,
        receipt: &ReceiptFile,
        now: Timestamp,
    ) -> Result<u64, RetentionError> {
        let tenant_id = &entry.tenant_id;
        let old = &entry.file_key;
        let bytes = self
            .store()
            .get_object(old)
            .await?
            .ok_or_else(|| file_error(old, "the manifest lists it but it is missing"))?;
        let headers = self.retention.blocks_of(entry).await?;
        let copy = copy_without(bytes, ids, &self.writer).map_err(|e| file_error(old, e))?;
        let removed = copy.removed.len() as u64;

        // The leaves every receipt of the copy removed, by block: the file's earlier ones and
        // this one.
        let mut receipts = entry.erasure_receipts.clone();
        receipts.push(receipt_key.to_string());
        let mut erased: HashMap<String, Vec<(u32, Hash32)>> = HashMap::new();
        add_leaves(&mut erased, receipt, &headers).map_err(|e| file_error(receipt_key, e))?;
        for key in &entry.erasure_receipts {
            let earlier = self
                .store()
                .get_object(key)
                .await?
                .ok_or_else(|| file_error(key, "named by the manifest but missing"))
                .and_then(|b| ReceiptFile::from_bytes(&b).map_err(|e| file_error(key, e)))?;
            add_leaves(&mut erased, &earlier, &headers).map_err(|e| file_error(key, e))?;
        }

        self.store()
            .put_object(into, Bytes::from(copy.bytes))
            .await?;
        let stored = self
            .store()
            .get_object(into)
            .await?
            .ok_or_else(|| file_error(into, "written but not found when read back"))?;
        let merged = verify_output_erased(into.to_string(), stored, headers, 1, &erased)
            .map_err(|e| file_error(into, e))?;

        let inputs: Vec<String> = if entry.is_merged() {
            entry.merged_from.clone()
        } else {
            vec![old.clone()]
        };
        let copied = ManifestEntry {
            file_key: into.to_string(),
            state: FileState::Live,
            rows: merged.rows,
            size: merged.bytes.len() as u64,
            sha256: merged.sha256.clone(),
            created_at: now,
            last_seq: entry.last_seq.or(entry.seq),
            merged_from: inputs.clone(),
            compacted_into: None,
            delete_after: None,
            storage_class: None,
            tombstone: None,
            erasure_receipts: receipts,
            ..entry.clone()
        };
        self.index().put_manifest(&copied).await?;
        self.faults.check(ErasureStep::Copied)?;

        let mut from: Vec<&str> = inputs.iter().map(String::as_str).collect();
        from.push(old);
        switch_pointers(self.index(), self.master, tenant_id, &merged, &from)
            .await
            .map_err(|e| file_error(into, e))?;
        // An archived file's copy goes back to its class (if it is big enough for one).
        if entry.state == FileState::Archived && copied.size >= MIN_ARCHIVE_BYTES {
            if let Some(class) = entry.storage_class.as_deref().and_then(ArchiveClass::parse) {
                self.retention.archive(&copied, class).await?;
            }
        }

        for input in inputs.iter().filter(|k| *k != old) {
            if let Some(mut e) = self.index().get_manifest(tenant_id, input).await? {
                if e.compacted_into.as_deref() != Some(into) {
                    e.compacted_into = Some(into.to_string());
                    self.index().put_manifest(&e).await?;
                }
            }
        }
        let mut gone = entry.clone();
        gone.state = FileState::Deleted;
        gone.compacted_into = Some(into.to_string());
        self.index().put_manifest(&gone).await?;
        self.faults.check(ErasureStep::Marked)?;

        self.purge_replaced(old, &inputs).await?;
        tracing::info!(file_key = %old, %into, removed, kept = copy.kept, "file rewritten without the subject");
        Ok(removed)
    }

    /// Deletes every version of a replaced file, of its id list and of the compaction inputs
    /// its copy names (a noncurrent version would keep the rows until the bucket's lifecycle
    /// rule removes it), and its restore marker.
    async fn purge_replaced(&self, old: &str, inputs: &[String]) -> Result<(), PortError> {
        self.store().purge(old).await?;
        for input in inputs.iter().filter(|k| *k != old) {
            self.store().purge(input).await?;
        }
        self.store().purge(&ids_key(old)).await?;
        self.store().delete_object(&restore_marker_key(old)).await
    }
}

/// The lease compaction takes on a file's partition (see `compact::run`).
fn count_records(report: &mut ErasureReport, found: &[Pointer]) {
    for p in found {
        *report.records.entry(p.kind.clone()).or_default() += 1;
    }
}

/// The files holding `found`, with the ids of the records in each.
fn files_of(found: &[Pointer]) -> BTreeMap<String, Vec<String>> {
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in found {
        files
            .entry(p.file_key.clone())
            .or_default()
            .push(p.record_id.clone());
    }
    files
}

fn compaction_lease(entry: &ManifestEntry) -> String {
    format!(
        "compact#{}#{}#{:02}",
        entry.tenant_id,
        layout::date_of_file_key(&entry.file_key).unwrap_or_default(),
        layout::hour_of_file_key(&entry.file_key).unwrap_or_default()
    )
}

/// Adds `receipt`'s leaves of the blocks in `headers` to `erased` (by block id).
fn add_leaves(
    erased: &mut HashMap<String, Vec<(u32, Hash32)>>,
    receipt: &ReceiptFile,
    headers: &[BlockHeader],
) -> Result<(), String> {
    for h in headers {
        let leaves = receipt.leaves_of(h.seq)?;
        if !leaves.is_empty() {
            erased.entry(h.block_id.clone()).or_default().extend(leaves);
        }
    }
    Ok(())
}

/// The ids of the holds that cover any of the subject's records: a hold on the subject, on the
/// model version of one of its decisions, on a time range holding one, or on the whole tenant.
pub fn holds_covering<'h>(
    holds: impl Iterator<Item = &'h LegalHold>,
    subject_ref: &str,
    records: &[Pointer],
) -> Vec<String> {
    holds
        .filter(|h| {
            let s = &h.scope;
            records.iter().any(|p| {
                h.covers_time(p.occurred_at, p.occurred_at)
                    && s.subject_ref.as_deref().is_none_or(|r| r == subject_ref)
                    && (s.model_name.is_none()
                        || (p.model_name == s.model_name && p.model_version == s.model_version))
            })
        })
        .map(|h| h.id.clone())
        .collect()
}
