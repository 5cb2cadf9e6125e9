//! One compaction run over a tenant's partition date: finish interrupted merges, merge what the
//! plan selects, and delete inputs whose grace period has passed.
//!
//! Each output goes through these steps; a crash after any of them leaves every record findable
//! and verifiable, and the next run finishes the merge (every step is idempotent):
//!
//! 1. take the partition's lease (a conditional write; a second run on the same partition
//!    backs off);
//! 2. record the intent: the output's manifest entry, `pending`, naming its inputs
//!    ([`CompactStep::Intent`]);
//! 3. write the output, read it back from storage and check every block in it against the
//!    chain ([`CompactStep::Written`]);
//! 4. point every record's pointer (and link item) at the output
//!    ([`CompactStep::Switched`]);
//! 5. mark the inputs `compacted`, naming the output and when they may be deleted
//!    ([`CompactStep::Marked`]);
//! 6. mark the output `live`, give the lease back.
//!
//! Until step 5 the inputs are live and untouched: readers follow whichever file their pointer
//! names, and both hold the same rows. Inputs are deleted only by a later run, after the grace
//! period, and only once their output is live.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;

use super::merge::{headers_of, merge, output_key, verify_output, MergeError, MergedFile};
use super::plan::{plan, CompactionConfig, OutputPlan, Partition, Skipped};
use crate::columnar::{LazyRowGroups, WriterConfig};
use crate::faults::{CrashStep, FaultSwitch};
use crate::ingest::{content_mac_of_stored, pointer_for};
use crate::integrity::BlockHeader;
use crate::keys::MasterKey;
use crate::layout;
use crate::ports::{FileState, JournalIndex, ManifestEntry, ObjectStore, PortError};
use crate::timestamp::Timestamp;

/// After which step a test crash is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactStep {
    Intent,
    Written,
    Switched,
    Marked,
}

impl CrashStep for CompactStep {
    fn label(self) -> String {
        self.as_str().to_string()
    }
}

impl CompactStep {
    pub const ALL: [CompactStep; 4] = [
        CompactStep::Intent,
        CompactStep::Written,
        CompactStep::Switched,
        CompactStep::Marked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CompactStep::Intent => "after the intent",
            CompactStep::Written => "after the output was written",
            CompactStep::Switched => "after the pointer switch",
            CompactStep::Marked => "after the inputs were marked (before delete)",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error("{file_key}: {reason}")]
    Output { file_key: String, reason: String },
}

#[derive(Clone, Debug)]
pub struct CompactorConfig {
    pub plan: CompactionConfig,
    /// Writer settings of the outputs (bigger row groups, a stronger ZSTD level than ingest).
    pub writer: WriterConfig,
    /// How long inputs stay after their output is live (readers holding old pointers).
    pub grace_ms: i64,
    /// How long a partition's lease lasts; a run that dies frees it after this.
    pub lease_ms: i64,
    /// Every how many rows of an output the read-back check re-hashes the content (1: all,
    /// 0: none); leaf indexes and Merkle roots are checked for every row regardless.
    pub verify_every: usize,
    /// No output is started after this instant (the Lambda's deadline less a reserve); what
    /// is left is reported as deferred and picked up by the next run.
    pub stop_at: Option<std::time::Instant>,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            plan: CompactionConfig::default(),
            writer: WriterConfig {
                zstd_level: 6,
                compress_low_cardinality: true,
                ..WriterConfig::default()
            },
            grace_ms: 24 * 3_600_000,
            lease_ms: 15 * 60_000,
            verify_every: 16,
            stop_at: None,
        }
    }
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// Outputs made live: `(key, inputs, rows, bytes)`.
    pub written: Vec<WrittenOutput>,
    /// Interrupted merges this run finished.
    pub resumed: Vec<String>,
    /// Partitions another run holds.
    pub busy: Vec<Partition>,
    /// Outputs not started because the run's time was up.
    pub deferred: Vec<Partition>,
    /// Inputs deleted after their grace period.
    pub deleted: Vec<String>,
    pub skipped: Vec<Skipped>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WrittenOutput {
    pub file_key: String,
    pub inputs: usize,
    pub rows: u64,
    pub bytes: u64,
}

pub struct Compactor<'a, S, I> {
    pub store: &'a S,
    pub index: &'a I,
    pub master: &'a MasterKey,
    pub config: CompactorConfig,
    /// Who this run is, in leases.
    pub owner: String,
    faults: FaultSwitch<CompactStep>,
}

impl<'a, S: ObjectStore, I: JournalIndex> Compactor<'a, S, I> {
    pub fn new(
        store: &'a S,
        index: &'a I,
        master: &'a MasterKey,
        config: CompactorConfig,
        owner: impl Into<String>,
    ) -> Self {
        Self {
            store,
            index,
            master,
            config,
            owner: owner.into(),
            faults: FaultSwitch::default(),
        }
    }

    /// Makes the next run fail right after `step` (tests of crash recovery).
    pub fn crash_after(&self, step: CompactStep) {
        self.faults.arm(step);
    }

    /// Compacts a tenant's partition date (`YYYY-MM-DD`) as of `now`.
    pub async fn run(
        &self,
        tenant_id: &str,
        date: &str,
        now: Timestamp,
    ) -> Result<RunReport, CompactError> {
        self.run_partition(tenant_id, date, None, now).await
    }

    /// Compacts one hour of a partition date, or every hour when `hour` is `None`.
    pub async fn run_partition(
        &self,
        tenant_id: &str,
        date: &str,
        hour: Option<u8>,
        now: Timestamp,
    ) -> Result<RunReport, CompactError> {
        let mut report = RunReport::default();
        let mut entries = self.index.list_manifest(tenant_id, date).await?;
        if let Some(hour) = hour {
            entries.retain(|e| layout::hour_of_file_key(&e.file_key) == Some(hour));
        }
        let by_key: BTreeMap<&str, &ManifestEntry> =
            entries.iter().map(|e| (e.file_key.as_str(), e)).collect();

        // Interrupted merges first: their inputs are not planned again.
        let pending: Vec<&ManifestEntry> = entries
            .iter()
            .filter(|e| e.is_merged() && e.state == FileState::Pending)
            .collect();
        let claimed: std::collections::BTreeSet<&str> = pending
            .iter()
            .flat_map(|e| e.merged_from.iter().map(String::as_str))
            .collect();
        for out in &pending {
            let inputs: Vec<ManifestEntry> = out
                .merged_from
                .iter()
                .filter_map(|k| by_key.get(k.as_str()).map(|e| (*e).clone()))
                .collect();
            let Some(partition) = partition_of(out) else {
                continue;
            };
            let plan = OutputPlan {
                partition,
                input_bytes: inputs.iter().map(|e| e.size).sum(),
                rows: inputs.iter().map(|e| e.rows).sum(),
                inputs,
            };
            if let Some(done) = self.output(&plan, now, &mut report).await? {
                report.resumed.push(done.file_key.clone());
                report.written.push(done);
            }
        }

        let candidates: Vec<ManifestEntry> = entries
            .iter()
            .filter(|e| {
                let unfinished = e.is_merged() && e.state == FileState::Pending;
                !(unfinished || claimed.contains(e.file_key.as_str()))
            })
            .cloned()
            .collect();
        let planned = plan(&candidates, now, &self.config.plan);
        report.skipped = planned.skipped;
        for out in &planned.outputs {
            if let Some(done) = self.output(out, now, &mut report).await? {
                report.written.push(done);
            }
        }

        // Inputs past their grace period, once their output is live.
        for e in &entries {
            let due = e.state == FileState::Compacted
                && e.delete_after.is_some_and(|t| t <= now)
                && e.compacted_into
                    .as_deref()
                    .and_then(|k| by_key.get(k))
                    .is_some_and(|o| o.state == FileState::Live);
            if due {
                self.store.delete_object(&e.file_key).await?;
                self.index
                    .mark_manifest_deleted(&e.tenant_id, &e.file_key)
                    .await?;
                report.deleted.push(e.file_key.clone());
            }
        }
        Ok(report)
    }

    /// Steps 1–6 for one output; `None` when another run holds the partition or has merged
    /// the plan's inputs already, or the run's time is up.
    pub(super) async fn output(
        &self,
        plan: &OutputPlan,
        now: Timestamp,
        report: &mut RunReport,
    ) -> Result<Option<WrittenOutput>, CompactError> {
        let p = &plan.partition;
        if self
            .config
            .stop_at
            .is_some_and(|t| std::time::Instant::now() >= t)
        {
            report.deferred.push(p.clone());
            return Ok(None);
        }
        let lease = format!("compact#{}#{}#{:02}", p.tenant_id, p.date, p.hour);
        let until = Timestamp::from_millis(now.millis() + self.config.lease_ms).unwrap_or(now);
        if !self
            .index
            .acquire_lease(&lease, &self.owner, now, until)
            .await?
        {
            report.busy.push(p.clone());
            return Ok(None);
        }
        // The plan was read before the lease was taken: a run that held it meanwhile may have
        // merged these inputs already.
        let Some(plan) = self.still_current(plan).await? else {
            self.index.release_lease(&lease, &self.owner).await?;
            report.busy.push(p.clone());
            return Ok(None);
        };
        let done = self.steps(&plan, now).await;
        // A failed run keeps the lease until it expires: its intent is what the next run
        // resumes, and nobody else should start on those inputs meanwhile.
        if done.is_ok() {
            self.index.release_lease(&lease, &self.owner).await?;
        }
        done.map(Some)
    }

    /// The plan with its inputs as the manifest shows them now, if they are all still live
    /// (or already marked into this very output) and the output is not yet live.
    async fn still_current(&self, plan: &OutputPlan) -> Result<Option<OutputPlan>, CompactError> {
        let p = &plan.partition;
        let file_key = output_key(plan);
        let now: BTreeMap<String, ManifestEntry> = self
            .index
            .list_manifest(&p.tenant_id, &p.date)
            .await?
            .into_iter()
            .map(|e| (e.file_key.clone(), e))
            .collect();
        if now
            .get(&file_key)
            .is_some_and(|o| o.state == FileState::Live)
        {
            return Ok(None);
        }
        let mut inputs = Vec::with_capacity(plan.inputs.len());
        for i in &plan.inputs {
            match now.get(&i.file_key) {
                Some(e)
                    if e.state == FileState::Live
                        || (e.state == FileState::Compacted
                            && e.compacted_into.as_deref() == Some(file_key.as_str())) =>
                {
                    inputs.push(e.clone())
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(OutputPlan {
            inputs,
            ..plan.clone()
        }))
    }

    async fn steps(
        &self,
        plan: &OutputPlan,
        now: Timestamp,
    ) -> Result<WrittenOutput, CompactError> {
        let file_key = output_key(plan);
        let mut entry = intent(plan, &file_key, now);
        self.index.put_manifest(&entry).await?;
        self.faults.check(CompactStep::Intent)?;

        let merged = self.written(plan, &file_key).await?;
        self.faults.check(CompactStep::Written)?;

        self.switch(&merged, plan).await?;
        self.faults.check(CompactStep::Switched)?;

        let delete_after =
            Timestamp::from_millis(now.millis() + self.config.grace_ms).unwrap_or(now);
        for input in &plan.inputs {
            if input.state == FileState::Compacted
                && input.compacted_into.as_deref() == Some(file_key.as_str())
            {
                continue;
            }
            let marked = self
                .index
                .mark_manifest_compacted(&input.tenant_id, &input.file_key, &file_key, delete_after)
                .await?;
            if !marked {
                return Err(CompactError::Output {
                    file_key: file_key.clone(),
                    reason: format!(
                        "input {} is no longer live; the output holds its rows, the pointers \
                         name the output, and the input is left for an operator",
                        input.file_key
                    ),
                });
            }
        }
        self.faults.check(CompactStep::Marked)?;

        entry.state = FileState::Live;
        entry.size = merged.bytes.len() as u64;
        entry.sha256 = merged.sha256.clone();
        self.index.put_manifest(&entry).await?;
        tracing::info!(%file_key, inputs = plan.inputs.len(), rows = merged.rows, bytes = entry.size, "compacted");
        Ok(WrittenOutput {
            file_key,
            inputs: plan.inputs.len(),
            rows: merged.rows,
            bytes: entry.size,
        })
    }

    /// The output as stored: written now, or (a resumed merge) already there; in both cases
    /// read back from storage and checked against the chain.
    async fn written(&self, plan: &OutputPlan, file_key: &str) -> Result<MergedFile, CompactError> {
        if let Some(bytes) = self.store.get_object(file_key).await? {
            let blocks = self.blocks_of(&bytes, plan).await?;
            let every = self.config.verify_every;
            if let Ok(merged) = verify_output(file_key.to_string(), bytes, blocks, every) {
                return Ok(merged);
            }
            // A partial or foreign object under our key: write it again from the inputs.
        }
        let written = merge(self.store, self.index, plan, &self.config.writer).await?;
        self.store.put_object(file_key, written.bytes).await?;
        let stored =
            self.store
                .get_object(file_key)
                .await?
                .ok_or_else(|| CompactError::Output {
                    file_key: file_key.to_string(),
                    reason: "written but not found when read back".into(),
                })?;
        Ok(verify_output(
            file_key.to_string(),
            stored,
            written.blocks,
            self.config.verify_every,
        )?)
    }

    /// The chained headers of the blocks a stored output holds.
    async fn blocks_of(
        &self,
        bytes: &Bytes,
        plan: &OutputPlan,
    ) -> Result<Vec<BlockHeader>, CompactError> {
        let mut ids = std::collections::BTreeSet::new();
        let fail = |e: crate::columnar::CodecError| CompactError::Output {
            file_key: output_key(plan),
            reason: e.to_string(),
        };
        for group in LazyRowGroups::new(bytes.clone()).map_err(fail)? {
            let rows = group.and_then(|g| g.integrity()).map_err(fail)?;
            ids.extend(rows.into_iter().map(|r| r.block_id));
        }
        Ok(headers_of(self.index, plan, &ids).await?)
    }

    async fn switch(&self, merged: &MergedFile, plan: &OutputPlan) -> Result<(), CompactError> {
        let inputs: Vec<&str> = plan.inputs.iter().map(|e| e.file_key.as_str()).collect();
        switch_pointers(
            self.index,
            self.master,
            &plan.partition.tenant_id,
            merged,
            &inputs,
        )
        .await
    }
}

/// Every record of `merged` gets a pointer to its new place (its link item too, for an outcome
/// or review). A pointer that names the record's block in one of `inputs` (or already the
/// output) only changes place; any other is rebuilt from the row, its chained header and the
/// tenant's keys, as ingest built it.
pub(crate) async fn switch_pointers<I: JournalIndex>(
    index: &I,
    master: &MasterKey,
    tenant_id: &str,
    merged: &MergedFile,
    inputs: &[&str],
) -> Result<(), CompactError> {
    const CHUNK: usize = 2_000;
    let here: std::collections::BTreeSet<&str> = inputs
        .iter()
        .copied()
        .chain([merged.file_key.as_str()])
        .collect();
    let mut rebuild = Vec::new();
    for chunk in merged.placed.chunks(CHUNK) {
        let ids: Vec<String> = chunk.iter().map(|(id, _, _)| id.clone()).collect();
        let mut old: std::collections::HashMap<String, crate::ports::Pointer> = index
            .get_pointers(tenant_id, &ids)
            .await?
            .into_iter()
            .map(|p| (p.record_id.clone(), p))
            .collect();
        let mut pointers = Vec::with_capacity(chunk.len());
        for (record_id, block_id, at) in chunk {
            match old.remove(record_id) {
                Some(mut p) if &p.block_id == block_id && here.contains(p.file_key.as_str()) => {
                    p.file_key.clone_from(&merged.file_key);
                    p.row_group = at.row_group as u32;
                    p.row = at.row_in_group as u32;
                    p.storage_state = FileState::Live;
                    pointers.push(p);
                }
                _ => rebuild.push(*at),
            }
        }
        index.write_pointers(&pointers).await?;
    }
    if !rebuild.is_empty() {
        tracing::warn!(file_key = %merged.file_key, rows = rebuild.len(),
                "pointers rebuilt from their rows");
        rebuild_pointers(index, master, merged, &rebuild).await?;
    }
    Ok(())
}

/// Pointers for the rows at `positions` (in file order), rebuilt from the rows.
async fn rebuild_pointers<I: JournalIndex>(
    index: &I,
    master: &MasterKey,
    merged: &MergedFile,
    positions: &[crate::columnar::RowPosition],
) -> Result<(), CompactError> {
    let fail = |reason: String| CompactError::Output {
        file_key: merged.file_key.clone(),
        reason,
    };
    let headers: BTreeMap<&str, &BlockHeader> = merged
        .blocks
        .iter()
        .map(|h| (h.block_id.as_str(), h))
        .collect();
    let groups = LazyRowGroups::new(merged.bytes.clone()).map_err(|e| fail(e.to_string()))?;
    let mut wanted = positions.iter().peekable();
    for (g, group) in groups.enumerate() {
        if wanted.peek().is_none() {
            break;
        }
        let group = group.map_err(|e| fail(e.to_string()))?;
        let mut pointers = Vec::new();
        while let Some(at) = wanted.next_if(|at| at.row_group == g) {
            let row = group
                .row(at.row_in_group)
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| {
                    fail(format!(
                        "row {} of row group {g} is not there",
                        at.row_in_group
                    ))
                })?;
            let header = headers
                .get(row.block_id.as_str())
                .ok_or_else(|| fail(format!("row {at:?} names unknown block {}", row.block_id)))?;
            let keys = master.tenant_keys(&row.record.tenant_id);
            let mac = content_mac_of_stored(&row.record, &keys)
                .map_err(|e| fail(format!("record {}: {e}", row.record.record_id())))?;
            pointers.push(pointer_for(&row, *at, header, &merged.file_key, mac));
        }
        index.write_pointers(&pointers).await?;
    }
    Ok(())
}

/// The partition a merged file's key names.
fn partition_of(e: &ManifestEntry) -> Option<Partition> {
    Some(Partition {
        tenant_id: e.tenant_id.clone(),
        date: layout::date_of_file_key(&e.file_key)?.to_string(),
        hour: layout::hour_of_file_key(&e.file_key)?,
    })
}

/// The output's manifest entry while it is being made: pending, naming its inputs.
fn intent(plan: &OutputPlan, file_key: &str, now: Timestamp) -> ManifestEntry {
    let first = plan.inputs.first();
    ManifestEntry {
        tenant_id: plan.partition.tenant_id.clone(),
        file_key: file_key.to_string(),
        block_id: first.map(|e| e.block_id.clone()).unwrap_or_default(),
        state: FileState::Pending,
        seq: first.and_then(|e| e.seq),
        rows: plan.rows,
        size: 0,
        sha256: String::new(),
        first_occurred_at: plan
            .inputs
            .iter()
            .map(|e| e.first_occurred_at)
            .min()
            .unwrap_or(now),
        last_occurred_at: plan
            .inputs
            .iter()
            .map(|e| e.last_occurred_at)
            .max()
            .unwrap_or(now),
        created_at: now,
        last_seq: plan
            .inputs
            .iter()
            .map(|e| e.last_seq.or(e.seq).unwrap_or(0))
            .max(),
        merged_from: plan.inputs.iter().map(|e| e.file_key.clone()).collect(),
        compacted_into: None,
        delete_after: None,
        // Unknown (empty) if any input's tiers are unknown.
        risk_tiers: if plan.inputs.iter().all(|e| !e.risk_tiers.is_empty()) {
            let tiers: std::collections::BTreeSet<&String> =
                plan.inputs.iter().flat_map(|e| &e.risk_tiers).collect();
            tiers.into_iter().cloned().collect()
        } else {
            Vec::new()
        },
        storage_class: None,
        tombstone: None,
        erasure_receipts: Vec::new(),
    }
}
