//! One retention run over a tenant: find the files whose hot window or retention period has
//! passed, archive or delete them, and write a signed report.
//!
//! # Which dates are read
//!
//! Files are listed per partition date. For every distinct threshold of the tenant's rules
//! (`archive:90d`, `expire:7y`) the tenant's state keeps a cursor: every date up to it has been
//! settled for that threshold. A run reads the dates after the cursor that the threshold has
//! reached (at most [`RetentionConfig::max_dates`] each), so a daily run lists a few dates, a
//! new rule or a long outage is caught up over several runs, and a file is never skipped: the
//! cursor stops at a date that still holds a file its threshold governs but has not reached
//! yet (a compacted file written a day after its partition date, a file whose newest record
//! is late in the day). Files kept by a legal hold are remembered and re-decided every run.
//!
//! # Crash safety
//!
//! Archiving: record the file's record ids beside it (to find its index entries once it can no
//! longer be read), mark its pointers archived, name the class in the manifest entry, move the
//! object, mark the entry archived.
//! Expiry: write the signed tombstone (write-once) and name it in the manifest entry, delete the
//! records' index entries, delete every version of the object, mark the entry deleted. Every step
//! is idempotent and the manifest entry changes last, so the next run redoes what a crash
//! interrupted; a tombstone already written is reused, never rewritten.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::plan::{decide, due_times, Action};
use super::policy::{ArchiveClass, LegalHold, RetentionPolicy};
use super::restores::{restore_markers_prefix, RestoreMarker};
use super::sealed::{digest_hex, Sealed};
use super::tombstone::{tombstone_for, tombstone_key, RemovalRule, TombstoneFile};
use crate::checkpoint::{CheckpointSigner, CheckpointStore};
use crate::columnar::{CodecError, LazyRowGroups};
use crate::faults::{CrashStep, FaultSwitch};
use crate::integrity::BlockHeader;
use crate::ports::{ArchiveState, ArchiveStore, FileState, JournalIndex, ManifestEntry, PortError};
use crate::timestamp::Timestamp;

pub const STATE_PREFIX: &str = "retention/state/";
pub const REPORTS_PREFIX: &str = "retention/reports/";
pub const IDS_PREFIX: &str = "retention/ids/";
pub const STATE_VERSION: u32 = 1;

const MS_PER_DAY: i64 = 86_400_000;

/// Where a tenant's retention state (cursors, held files) is kept.
pub fn state_key(tenant_id: &str) -> String {
    format!("{STATE_PREFIX}tenant={tenant_id}.json")
}

/// The record ids of an archived file, kept beside it in the hot class: expiry must find the
/// file's index entries without restoring it.
pub fn ids_key(file_key: &str) -> String {
    let rest = file_key
        .strip_prefix(crate::layout::DECISIONS_PREFIX)
        .unwrap_or(file_key);
    let stem = rest.strip_suffix(".parquet").unwrap_or(rest);
    format!("{IDS_PREFIX}{stem}.json")
}

pub fn report_key(tenant_id: &str, at: Timestamp, owner: &str) -> String {
    format!("{REPORTS_PREFIX}tenant={tenant_id}/{at}-{owner}.json")
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("{file_key}: {reason}")]
    File { file_key: String, reason: String },
    #[error("retention state {key} is unreadable: {reason}")]
    State { key: String, reason: String },
    /// An erasure refused: legal holds cover some of the subject's records.
    #[error("erasure refused: legal hold(s) {} cover the subject's records ({records} found); release them first", holds.join(", "))]
    Held { holds: Vec<String>, records: u64 },
}

/// The lease a retention run or an erasure takes on a tenant: one at a time per tenant.
pub(super) fn tenant_lease(tenant_id: &str) -> String {
    format!("retention#{tenant_id}")
}

pub(super) fn file_error(file_key: &str, reason: impl ToString) -> RetentionError {
    RetentionError::File {
        file_key: file_key.to_string(),
        reason: reason.to_string(),
    }
}

/// After which step a test crash is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetentionStep {
    /// Archiving: the pointers say archived, the object has not moved.
    PointersMarked,
    /// Archiving: the object moved, the manifest does not say so.
    Moved,
    /// Expiry: the tombstone is written, nothing deleted.
    Tombstoned,
    /// Expiry: the index entries are gone, the object is not.
    Unindexed,
    /// Expiry: the object is gone, the manifest does not say so.
    Purged,
}

impl CrashStep for RetentionStep {
    fn label(self) -> String {
        format!("{self:?}")
    }
}

impl RetentionStep {
    pub const ALL: [RetentionStep; 5] = [
        RetentionStep::PointersMarked,
        RetentionStep::Moved,
        RetentionStep::Tombstoned,
        RetentionStep::Unindexed,
        RetentionStep::Purged,
    ];
}

#[derive(Clone, Debug)]
pub struct RetentionConfig {
    /// Most partition dates one threshold's cursor advances per run.
    pub max_dates: u32,
    pub lease_ms: i64,
    /// No file is started after this instant; the rest is left for the next run.
    pub stop_at: Option<std::time::Instant>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            max_dates: 62,
            lease_ms: 15 * 60_000,
            stop_at: None,
        }
    }
}

/// A tenant's progress, kept between runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantState {
    pub version: u32,
    /// Per threshold (`archive:90d`, `expire:7y`): the last partition date settled for it.
    pub settled_through: BTreeMap<String, String>,
    /// Files past their retention period that a legal hold keeps, re-decided every run.
    pub held: BTreeSet<String>,
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A dry run: would be done.
    Planned,
    Done,
    /// Retention cannot act yet (e.g. the file must be restored first); retried next run.
    Waiting {
        reason: String,
    },
    Failed {
        error: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    pub file_key: String,
    pub size: u64,
    pub rows: u64,
    #[serde(flatten)]
    pub action: Action,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone: Option<String>,
}

/// What one run did (or, dry, would do) for a tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantReport {
    pub tenant_id: String,
    pub policy_version: u64,
    pub dry_run: bool,
    pub at: Option<Timestamp>,
    /// Every file archived, deleted, held, too small to archive, or failed (files with nothing
    /// due are only counted).
    pub files: Vec<FileReport>,
    /// Files per action name.
    pub counts: BTreeMap<String, u64>,
    pub dates_read: u64,
    /// Cursors after the run.
    pub settled_through: BTreeMap<String, String>,
    /// Another run holds the tenant.
    pub busy: bool,
    /// The run's time was up before everything due was done.
    pub deferred: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_key: Option<String>,
}

impl TenantReport {
    pub fn of(&self, action: &str) -> impl Iterator<Item = &FileReport> + '_ {
        let action = action.to_string();
        self.files.iter().filter(move |f| f.action.name() == action)
    }

    pub fn failed(&self) -> impl Iterator<Item = &FileReport> + '_ {
        self.files
            .iter()
            .filter(|f| matches!(f.outcome, Outcome::Failed { .. }))
    }
}

/// The signed part of a stored run report; the report itself is bound by `report_sha256`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSeal {
    pub tenant_id: String,
    pub at: Timestamp,
    pub policy_version: u64,
    pub counts: BTreeMap<String, u64>,
    pub report_sha256: String,
    pub key_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredReport {
    pub sealed: Sealed<ReportSeal>,
    pub report: TenantReport,
}

/// A threshold of the tenant's rules, with its cursor key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Threshold {
    Archive(u32),
    Expire(u32),
}

impl Threshold {
    fn key(&self) -> String {
        match self {
            Threshold::Archive(d) => format!("archive:{d}d"),
            Threshold::Expire(y) => format!("expire:{y}y"),
        }
    }

    /// The newest partition date the threshold has reached at `now`.
    fn reached_day(&self, now: Timestamp) -> i64 {
        let at = match self {
            Threshold::Archive(d) => Some(now.millis() - i64::from(*d) * MS_PER_DAY),
            Threshold::Expire(y) => minus_years(now, *y),
        };
        at.map_or(i64::MIN, |ms| ms.div_euclid(MS_PER_DAY))
    }

    /// Whether `entry` is governed by this threshold and has not reached it yet.
    fn waits(&self, entry: &ManifestEntry, policy: &RetentionPolicy, now: Timestamp) -> bool {
        if !matches!(entry.state, FileState::Live | FileState::Archived) {
            return false;
        }
        let governing = policy.governing(&entry.tenant_id, entry.known_tiers());
        let (archive_at, expire_at) = due_times(entry, &governing);
        match self {
            Threshold::Archive(d) => {
                entry.state == FileState::Live
                    && governing.rule.days_hot == *d
                    && archive_at.is_none_or(|t| t > now)
            }
            Threshold::Expire(y) => {
                governing.rule.expire_after_years == Some(*y) && expire_at.is_some_and(|t| t > now)
            }
        }
    }
}

fn minus_years(now: Timestamp, years: u32) -> Option<i64> {
    // `now - years` is the instant whose `plus_years(years)` is `now`, to within the 29th of
    // February; a day early errs on the side of reading a date once more.
    let approx = now.millis()
        - i64::from(years) * 365 * MS_PER_DAY
        - (i64::from(years) / 4 + 1) * MS_PER_DAY;
    let mut t = Timestamp::from_millis(approx).ok()?;
    while let Some(next) = t.plus_days(1) {
        match next.plus_years(years) {
            Some(n) if n <= now => t = next,
            _ => break,
        }
    }
    Some(t.millis())
}

fn date_of_day(day: i64) -> Option<String> {
    Timestamp::from_millis(day * MS_PER_DAY)
        .ok()
        .map(Timestamp::date_string)
}

fn day_of_date(date: &str) -> Option<i64> {
    Timestamp::parse(&format!("{date}T00:00:00Z"))
        .ok()
        .map(|t| t.millis().div_euclid(MS_PER_DAY))
}

pub struct Retention<'a, S, I, C, G> {
    pub store: &'a S,
    pub index: &'a I,
    /// Write-once storage for tombstones and reports (the checkpoint store).
    pub evidence: &'a C,
    pub signer: &'a G,
    pub policy: &'a RetentionPolicy,
    pub config: RetentionConfig,
    /// Who this run is, in leases and report keys.
    pub owner: String,
    faults: FaultSwitch<RetentionStep>,
}

impl<'a, S, I, C, G> Retention<'a, S, I, C, G>
where
    S: ArchiveStore,
    I: JournalIndex,
    C: CheckpointStore,
    G: CheckpointSigner,
{
    pub fn new(
        store: &'a S,
        index: &'a I,
        evidence: &'a C,
        signer: &'a G,
        policy: &'a RetentionPolicy,
        config: RetentionConfig,
        owner: impl Into<String>,
    ) -> Self {
        Self {
            store,
            index,
            evidence,
            signer,
            policy,
            config,
            owner: owner.into(),
            faults: FaultSwitch::default(),
        }
    }

    /// Makes the next file action stop after `step` with [`PortError::Injected`] (tests).
    pub fn crash_after(&self, step: RetentionStep) {
        self.faults.arm(step);
    }

    fn out_of_time(&self) -> bool {
        self.config
            .stop_at
            .is_some_and(|t| std::time::Instant::now() >= t)
    }

    /// Runs retention for one tenant at `now`; with `dry_run` nothing is changed or stored and
    /// the report lists what would be done.
    pub async fn run_tenant(
        &self,
        tenant_id: &str,
        now: Timestamp,
        dry_run: bool,
    ) -> Result<TenantReport, RetentionError> {
        let mut report = TenantReport {
            tenant_id: tenant_id.to_string(),
            policy_version: self.policy.version,
            dry_run,
            at: Some(now),
            ..TenantReport::default()
        };
        let lease = tenant_lease(tenant_id);
        if !dry_run {
            let until = Timestamp::from_millis(now.millis() + self.config.lease_ms)
                .unwrap_or(Timestamp::MAX);
            if !self
                .index
                .acquire_lease(&lease, &self.owner, now, until)
                .await?
            {
                report.busy = true;
                return Ok(report);
            }
        }
        let result = self.run_leased(tenant_id, now, dry_run, &mut report).await;
        if !dry_run {
            self.index.release_lease(&lease, &self.owner).await?;
        }
        result?;
        Ok(report)
    }

    async fn run_leased(
        &self,
        tenant_id: &str,
        now: Timestamp,
        dry_run: bool,
        report: &mut TenantReport,
    ) -> Result<(), RetentionError> {
        let mut state = self.load_state(tenant_id).await?;
        let Some(first_day) = self.first_day(tenant_id).await? else {
            return Ok(());
        };
        let mut holds = HoldResolver::new(self.index, self.policy, tenant_id);
        // Whether each file handled this run is settled (a failed or waiting one keeps every
        // cursor at its date).
        let mut settled_files: HashMap<String, bool> = HashMap::new();

        // Files kept by holds first: a lifted hold lets them go.
        let held: Vec<String> = state.held.iter().cloned().collect();
        for file_key in held {
            match self.index.get_manifest(tenant_id, &file_key).await? {
                Some(entry) => {
                    let settled = self
                        .handle(&entry, now, dry_run, &mut holds, &mut state, report)
                        .await?;
                    settled_files.insert(file_key, settled);
                }
                None => {
                    state.held.remove(&file_key);
                }
            }
        }

        self.follow_restores(tenant_id, dry_run, report).await?;

        let mut listed: HashMap<i64, Vec<ManifestEntry>> = HashMap::new();
        'thresholds: for threshold in self.thresholds(tenant_id) {
            let key = threshold.key();
            let reached = threshold.reached_day(now);
            let mut cursor = state
                .settled_through
                .get(&key)
                .and_then(|d| day_of_date(d))
                .unwrap_or(first_day - 1);
            let mut read = 0;
            while cursor < reached && read < self.config.max_dates {
                let day = cursor + 1;
                let Some(date) = date_of_day(day) else { break };
                if let std::collections::hash_map::Entry::Vacant(slot) = listed.entry(day) {
                    slot.insert(self.index.list_manifest(tenant_id, &date).await?);
                    report.dates_read += 1;
                }
                read += 1;
                let mut settled = true;
                for entry in &listed[&day] {
                    let done = match settled_files.get(&entry.file_key) {
                        Some(done) => *done,
                        None => {
                            if self.out_of_time() {
                                report.deferred = true;
                                break 'thresholds;
                            }
                            let done = self
                                .handle(entry, now, dry_run, &mut holds, &mut state, report)
                                .await?;
                            settled_files.insert(entry.file_key.clone(), done);
                            done
                        }
                    };
                    settled &= done && !threshold.waits(entry, self.policy, now);
                }
                if !settled {
                    break;
                }
                cursor = day;
                state.settled_through.insert(key.clone(), date);
            }
        }
        report.settled_through = state.settled_through.clone();
        if !dry_run {
            state.version = STATE_VERSION;
            self.store
                .put_object(
                    &state_key(tenant_id),
                    Bytes::from(serde_json::to_vec(&state).expect("state serializes")),
                )
                .await?;
            report.report_key = Some(self.store_report(report, now).await?);
        }
        Ok(())
    }

    /// Decides one file and, unless dry, acts. Returns whether the file is settled (nothing
    /// left to retry for it this run).
    async fn handle(
        &self,
        entry: &ManifestEntry,
        now: Timestamp,
        dry_run: bool,
        holds: &mut HoldResolver<'_, I>,
        state: &mut TenantState,
        report: &mut TenantReport,
    ) -> Result<bool, RetentionError> {
        let mut action = decide(entry, self.policy, &[], now);
        // Holds matter only to a file that is due to expire (resolving them may query the index).
        if matches!(action, Action::Expire { .. }) {
            let hold_ids = holds.covering(entry).await?;
            if !hold_ids.is_empty() {
                action = decide(entry, self.policy, &hold_ids, now);
            }
        }
        *report.counts.entry(action.name().to_string()).or_default() += 1;
        if matches!(action, Action::Held { .. }) {
            state.held.insert(entry.file_key.clone());
        } else {
            state.held.remove(&entry.file_key);
        }
        if matches!(action, Action::NotDue { .. } | Action::NotEligible { .. }) {
            return Ok(true);
        }
        let mut file = FileReport {
            file_key: entry.file_key.clone(),
            size: entry.size,
            rows: entry.rows,
            action: action.clone(),
            outcome: if action.acts() {
                Outcome::Planned
            } else {
                Outcome::Done
            },
            tombstone: None,
        };
        if dry_run || !action.acts() {
            report.files.push(file);
            return Ok(true);
        }
        let span = tracing::info_span!("retention_file", file_key = %entry.file_key, action = action.name());
        let result = async {
            match &action {
                Action::Archive { class, .. } => self.archive(entry, *class).await.map(|()| None),
                Action::Expire {
                    due_at,
                    rule,
                    expire_after_years,
                } => {
                    let removed_by = RemovalRule {
                        policy_version: self.policy.version,
                        rule: rule.clone(),
                        expire_after_years: *expire_after_years,
                        due_at: *due_at,
                    };
                    self.expire(entry, removed_by, now).await
                }
                _ => Ok(None),
            }
        }
        .instrument(span.clone())
        .await;
        let _enter = span.enter();
        let settled = match result {
            Ok(Some(Expiry::Deleted(key))) => {
                file.tombstone = Some(key);
                file.outcome = Outcome::Done;
                true
            }
            Ok(Some(Expiry::Waiting(reason))) => {
                file.outcome = Outcome::Waiting { reason };
                false
            }
            Ok(None) => {
                file.outcome = Outcome::Done;
                true
            }
            Err(RetentionError::Port(PortError::Injected(step))) => {
                return Err(PortError::Injected(step).into())
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention action failed");
                file.outcome = Outcome::Failed {
                    error: e.to_string(),
                };
                false
            }
        };
        report.files.push(file);
        Ok(settled)
    }

    /// Follows the restores readers asked for: reports the ones running or readable, and ends
    /// the ones that are over (the copy expired; or the object was restored for good into a
    /// hot class, and goes back to its archive class).
    async fn follow_restores(
        &self,
        tenant_id: &str,
        dry_run: bool,
        report: &mut TenantReport,
    ) -> Result<(), RetentionError> {
        let keys = self
            .evidence
            .list_keys(&restore_markers_prefix(tenant_id))
            .await?;
        for marker_key in keys {
            let Some(bytes) = self.store.get_object(&marker_key).await? else {
                continue;
            };
            let marker: RestoreMarker = match serde_json::from_slice(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(key = %marker_key, error = %e, "unreadable restore marker");
                    if !dry_run {
                        self.store.delete_object(&marker_key).await?;
                    }
                    continue;
                }
            };
            let entry = self.index.get_manifest(tenant_id, &marker.file_key).await?;
            let status = self.store.object_status(&marker.file_key).await?;
            let (Some(entry), Some(status)) = (entry, status) else {
                // The file is gone (expired, erased): nothing left to follow.
                if !dry_run {
                    self.store.delete_object(&marker_key).await?;
                }
                continue;
            };
            let class = entry
                .storage_class
                .clone()
                .unwrap_or_else(|| status.storage_class.clone());
            let action = match &status.archive {
                ArchiveState::Restoring => Action::Restored { expires: None },
                ArchiveState::Restored { expires } => Action::Restored {
                    expires: expires.clone(),
                },
                ArchiveState::Archived | ArchiveState::Online => Action::Retiered {
                    class: class.clone(),
                },
            };
            *report.counts.entry(action.name().to_string()).or_default() += 1;
            let mut file = FileReport {
                file_key: entry.file_key.clone(),
                size: entry.size,
                rows: entry.rows,
                action: action.clone(),
                outcome: if dry_run {
                    Outcome::Planned
                } else {
                    Outcome::Done
                },
                tombstone: None,
            };
            if !dry_run && matches!(action, Action::Retiered { .. }) {
                let moved_back = if status.archive == ArchiveState::Online
                    && entry.state == FileState::Archived
                {
                    self.store.set_storage_class(&entry.file_key, &class).await
                } else {
                    Ok(())
                };
                match moved_back {
                    Ok(()) => self.store.delete_object(&marker_key).await?,
                    Err(e) => {
                        file.outcome = Outcome::Failed {
                            error: e.to_string(),
                        }
                    }
                }
            }
            report.files.push(file);
        }
        Ok(())
    }

    pub(super) async fn archive(
        &self,
        entry: &ManifestEntry,
        class: ArchiveClass,
    ) -> Result<(), RetentionError> {
        let key = &entry.file_key;
        let status =
            self.store.object_status(key).await?.ok_or_else(|| {
                file_error(key, "the manifest lists it but the object is missing")
            })?;
        let mut moved_to = class.as_str().to_string();
        if status.archive != crate::ports::ArchiveState::Online {
            // Already archived (by the lifecycle rule, or under an earlier policy): record
            // where it is; it is not read again.
            moved_to = status.storage_class.clone();
        } else if status.storage_class != class.as_str() {
            let bytes = self
                .store
                .get_object(key)
                .await?
                .ok_or_else(|| file_error(key, "vanished while being archived"))?;
            let ids = record_ids(bytes).map_err(|e| file_error(key, e))?;
            self.store
                .put_object(
                    &ids_key(key),
                    Bytes::from(serde_json::to_vec(&ids).expect("ids serialize")),
                )
                .await?;
            let mut pointers = self.index.get_pointers(&entry.tenant_id, &ids).await?;
            pointers.retain(|p| p.file_key == *key && p.storage_state != FileState::Archived);
            for p in &mut pointers {
                p.storage_state = FileState::Archived;
            }
            self.index.write_pointers(&pointers).await?;
            self.faults.check(RetentionStep::PointersMarked)?;
            // The class first (the entry stays live): from here on a reader that cannot read
            // the object knows it is archived.
            let mut moving = entry.clone();
            moving.storage_class = Some(class.as_str().to_string());
            self.index.put_manifest(&moving).await?;
            self.store.set_storage_class(key, class.as_str()).await?;
            self.faults.check(RetentionStep::Moved)?;
        }
        let mut archived = entry.clone();
        archived.state = FileState::Archived;
        archived.storage_class = Some(moved_to);
        self.index.put_manifest(&archived).await?;
        Ok(())
    }

    async fn expire(
        &self,
        entry: &ManifestEntry,
        removed_by: RemovalRule,
        now: Timestamp,
    ) -> Result<Option<Expiry>, RetentionError> {
        let key = &entry.file_key;
        let Some(ids) = self.ids_of(entry).await? else {
            return Ok(Some(Expiry::Waiting(
                "archived without a record-id list: a restore was requested; deleted once readable"
                    .into(),
            )));
        };
        let tomb_key = tombstone_key(key);
        match self.evidence.get(&tomb_key).await? {
            Some(bytes) => {
                let t = TombstoneFile::from_bytes(&bytes).map_err(|e| file_error(&tomb_key, e))?;
                if t.tombstone().file_key != *key || t.tombstone().tenant_id != entry.tenant_id {
                    return Err(file_error(&tomb_key, "names another file"));
                }
            }
            None => {
                let blocks = self.blocks_of(entry).await?;
                let (tombstone, listed) = tombstone_for(
                    &entry.tenant_id,
                    key,
                    &entry.sha256,
                    entry.rows,
                    (entry.first_occurred_at, entry.last_occurred_at),
                    removed_by,
                    now,
                    &blocks,
                    self.signer.key_id(),
                )?;
                let file = TombstoneFile {
                    sealed: Sealed::sign(tombstone, self.signer).await?,
                    blocks: listed,
                };
                // Write-once: of two writers the first stands (both sign the same blocks).
                self.evidence
                    .put_if_absent(&tomb_key, Bytes::from(file.to_bytes()))
                    .await?;
            }
        }
        // From here on a missing object is accounted for by the tombstone.
        let mut marked = entry.clone();
        marked.tombstone = Some(tomb_key.clone());
        if entry.tombstone.as_ref() != Some(&tomb_key) {
            self.index.put_manifest(&marked).await?;
        }
        self.faults.check(RetentionStep::Tombstoned)?;
        let mut pointers = self.index.get_pointers(&entry.tenant_id, &ids).await?;
        pointers.retain(|p| p.file_key == *key);
        self.index.delete_entries(&pointers).await?;
        self.faults.check(RetentionStep::Unindexed)?;
        self.store.purge(key).await?;
        self.store.purge(&ids_key(key)).await?;
        self.faults.check(RetentionStep::Purged)?;
        let mut deleted = marked;
        deleted.state = FileState::Deleted;
        self.index.put_manifest(&deleted).await?;
        Ok(Some(Expiry::Deleted(tomb_key)))
    }

    /// The file's record ids: from the list archiving left, or from the file while it can be
    /// read. `None` for an archived file without a list (moved by a lifecycle rule): a restore
    /// is requested.
    async fn ids_of(&self, entry: &ManifestEntry) -> Result<Option<Vec<String>>, RetentionError> {
        let key = &entry.file_key;
        if let Some(bytes) = self.store.get_object(&ids_key(key)).await? {
            let ids: Vec<String> =
                serde_json::from_slice(&bytes).map_err(|e| file_error(&ids_key(key), e))?;
            return Ok(Some(ids));
        }
        let status = self.store.object_status(key).await?;
        let readable = match &status {
            None => {
                // Gone already (a crash after the purge): nothing is left to find by id.
                return Ok(Some(Vec::new()));
            }
            Some(s) => matches!(
                s.archive,
                crate::ports::ArchiveState::Online | crate::ports::ArchiveState::Restored { .. }
            ),
        };
        if !readable {
            self.store.request_restore(key, 7).await?;
            return Ok(None);
        }
        let bytes = self
            .store
            .get_object(key)
            .await?
            .ok_or_else(|| file_error(key, "vanished while being expired"))?;
        Ok(Some(record_ids(bytes).map_err(|e| file_error(key, e))?))
    }

    /// The chained headers of the blocks a file holds, by seq.
    pub(super) async fn blocks_of(
        &self,
        entry: &ManifestEntry,
    ) -> Result<Vec<BlockHeader>, RetentionError> {
        let key = &entry.file_key;
        let first = entry
            .seq
            .ok_or_else(|| file_error(key, "the manifest entry has no seq"))?;
        let last = entry.last_seq.unwrap_or(first);
        let headers = self
            .index
            .list_blocks_between(&entry.tenant_id, first, last)
            .await?;
        let inputs: HashSet<&str> = entry.merged_from.iter().map(String::as_str).collect();
        let blocks: Vec<BlockHeader> = headers
            .into_iter()
            .filter(|h| {
                if entry.is_merged() {
                    inputs.contains(h.file_key.as_str())
                } else {
                    h.file_key == *key
                }
            })
            .collect();
        let expected = if entry.is_merged() {
            entry.merged_from.len()
        } else {
            1
        };
        if blocks.len() != expected {
            return Err(file_error(
                key,
                format!(
                    "holds {expected} blocks, the chain lists {} of them",
                    blocks.len()
                ),
            ));
        }
        Ok(blocks)
    }

    async fn load_state(&self, tenant_id: &str) -> Result<TenantState, RetentionError> {
        let key = state_key(tenant_id);
        match self.store.get_object(&key).await? {
            None => Ok(TenantState::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| RetentionError::State {
                key,
                reason: e.to_string(),
            }),
        }
    }

    /// The first partition date of the tenant: its first block's.
    async fn first_day(&self, tenant_id: &str) -> Result<Option<i64>, RetentionError> {
        let first = self.index.list_blocks_between(tenant_id, 0, 0).await?;
        Ok(first.first().and_then(|h| {
            crate::layout::date_of_file_key(&h.file_key)
                .and_then(day_of_date)
                .or_else(|| Some(h.sealed_at.millis().div_euclid(MS_PER_DAY)))
        }))
    }

    fn thresholds(&self, tenant_id: &str) -> BTreeSet<Threshold> {
        let (rules, _) = self.policy.rules_of(tenant_id);
        std::iter::once(&rules.default)
            .chain(rules.tiers.values())
            .flat_map(|r| {
                std::iter::once(Threshold::Archive(r.days_hot))
                    .chain(r.expire_after_years.map(Threshold::Expire))
            })
            .collect()
    }

    async fn store_report(
        &self,
        report: &TenantReport,
        now: Timestamp,
    ) -> Result<String, RetentionError> {
        let key = report_key(&report.tenant_id, now, &self.owner);
        let mut body = report.clone();
        body.report_key = Some(key.clone());
        let seal = ReportSeal {
            tenant_id: report.tenant_id.clone(),
            at: now,
            policy_version: report.policy_version,
            counts: report.counts.clone(),
            report_sha256: digest_hex(&body)?,
            key_id: self.signer.key_id().to_string(),
        };
        let stored = StoredReport {
            sealed: Sealed::sign(seal, self.signer).await?,
            report: body,
        };
        self.evidence
            .put_if_absent(
                &key,
                Bytes::from(serde_json::to_vec(&stored).expect("report serializes")),
            )
            .await?;
        Ok(key)
    }
}

enum Expiry {
    Deleted(String),
    Waiting(String),
}

/// The record ids of a journal file, in file order, without decoding the records.
pub fn record_ids(bytes: Bytes) -> Result<Vec<String>, CodecError> {
    let mut ids = Vec::new();
    for group in LazyRowGroups::new(bytes)? {
        ids.extend(group?.integrity()?.into_iter().map(|r| r.record_id));
    }
    Ok(ids)
}

/// Which of a tenant's legal holds cover a file; subject and model holds are resolved through
/// the index once per run.
struct HoldResolver<'a, I> {
    index: &'a I,
    holds: Vec<&'a LegalHold>,
    files: HashMap<String, HashSet<String>>,
}

impl<'a, I: JournalIndex> HoldResolver<'a, I> {
    fn new(index: &'a I, policy: &'a RetentionPolicy, tenant_id: &'a str) -> Self {
        Self {
            index,
            holds: policy.holds_of(tenant_id).collect(),
            files: HashMap::new(),
        }
    }

    async fn covering(&mut self, entry: &ManifestEntry) -> Result<Vec<String>, PortError> {
        let mut out = Vec::new();
        for hold in self.holds.clone() {
            if !hold.covers_time(entry.first_occurred_at, entry.last_occurred_at) {
                continue;
            }
            if hold.needs_index() && !self.files_of(hold).await?.contains(&entry.file_key) {
                continue;
            }
            out.push(hold.id.clone());
        }
        Ok(out)
    }

    async fn files_of(&mut self, hold: &LegalHold) -> Result<&HashSet<String>, PortError> {
        if !self.files.contains_key(&hold.id) {
            let s = &hold.scope;
            let from = s.from.unwrap_or(Timestamp::MIN);
            let to = s.to.unwrap_or(Timestamp::MAX);
            let mut files: Option<HashSet<String>> = None;
            if let Some(subject_ref) = &s.subject_ref {
                let p = self
                    .index
                    .query_subject(&hold.tenant_id, subject_ref, from, to)
                    .await?;
                files = Some(p.into_iter().map(|p| p.file_key).collect());
            }
            if let (Some(name), Some(version)) = (&s.model_name, &s.model_version) {
                let p = self
                    .index
                    .query_model(&hold.tenant_id, name, version, from, to)
                    .await?;
                let by_model: HashSet<String> = p.into_iter().map(|p| p.file_key).collect();
                files = Some(match files {
                    Some(f) => f.intersection(&by_model).cloned().collect(),
                    None => by_model,
                });
            }
            self.files
                .insert(hold.id.clone(), files.unwrap_or_default());
        }
        Ok(&self.files[&hold.id])
    }
}
