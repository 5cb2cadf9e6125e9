//! The replay service: one audited door for every read. A request is checked (purpose, role),
//! answered, and journaled as an `access` record in the tenant's own chain before the answer
//! leaves; if the access cannot be journaled, nothing is returned.

use std::sync::Mutex;

use serde_json::{Map, Value};

use super::api::{
    AccessPage, Answer, CheckpointCoverage, ErrorAnswer, MetricsPage, Operation, RecordsPage,
    Request, Response, TimeRange, DEFAULT_PAGE, MAX_PAGE, MAX_PURPOSE_CHARS,
};
use super::audit::{verify_scope, AuditError, VerifyScope};
use super::lookup::{Finder, Lookup, LookupError, RowReader};
use super::views::{page_after, record_view, Cursor};
use crate::access::{AccessEvent, AccessPolicy, Role, MAX_LISTED_READS};
use crate::checkpoint::{CheckpointPolicy, CheckpointStore, CheckpointWitness, WitnessCache};
use crate::ingest::{Ingest, IngestConfig, Message};
use crate::keys::MasterKey;
use crate::metrics::read_days;
use crate::ports::{
    JournalIndex, PortError, RangedObjectStore, RejectSink, RejectedMessage, SubjectKeyStore,
};
use crate::timestamp::Timestamp;

/// Collects what ingest refuses of an access record (it never should: the record is built
/// here), so the refusal becomes the request's error instead of a dead letter.
#[derive(Default)]
pub struct AccessRejects(Mutex<Vec<RejectedMessage>>);

impl RejectSink for AccessRejects {
    async fn send_rejects(&self, rejects: &[RejectedMessage]) -> Result<(), PortError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(rejects);
        Ok(())
    }
}

/// A failed request: the code the caller sees and a message naming what failed.
#[derive(Debug)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: "bad_request",
            message: message.into(),
        }
    }
    pub fn denied(message: impl Into<String>) -> Self {
        Self {
            code: "denied",
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: "not_found",
            message: message.into(),
        }
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            code: "unavailable",
            message: message.into(),
        }
    }
}

impl From<LookupError> for Failure {
    fn from(e: LookupError) -> Self {
        Self::unavailable(e.to_string())
    }
}

impl From<PortError> for Failure {
    fn from(e: PortError) -> Self {
        Self::unavailable(e.to_string())
    }
}

/// What an operation produced: the answer, and what to journal about it.
pub(super) struct Done {
    pub answer: Answer,
    pub read: Vec<String>,
    pub read_count: u64,
}

impl Done {
    pub fn new(answer: Answer, read: Vec<String>) -> Self {
        let read_count = read.len() as u64;
        Self {
            answer,
            read,
            read_count,
        }
    }
}

/// Everything a request needs, built once per process.
pub struct ReplayService<S, I, K, C> {
    /// Where signed checkpoints are (write-once storage on AWS).
    pub checkpoints: C,
    /// Ingest for the access journal (accepts only `access` records); its ports and keys are
    /// the service's.
    pub journal: Ingest<S, I, K, AccessRejects>,
    pub policy: AccessPolicy,
    /// The checkpoint signing key's public half (DER), when checkpoints are verified.
    pub checkpoint_key: Option<Vec<u8>>,
    pub checkpoint_policy: CheckpointPolicy,
    /// Checkpoints already checked (they never change): a warm function proves a lookup
    /// against its checkpoint without reading it again.
    pub witness_cache: WitnessCache,
}

/// The caller as the function established it.
#[derive(Clone, Debug)]
pub enum Caller {
    Verified(String),
    /// No usable identity: the reason is journaled with the refusal.
    Unknown(String),
}

impl<S, I, K, C> ReplayService<S, I, K, C>
where
    S: RangedObjectStore,
    C: CheckpointStore,
    I: JournalIndex,
    K: SubjectKeyStore,
{
    pub fn new(
        store: S,
        index: I,
        subject_keys: K,
        checkpoints: C,
        master: MasterKey,
        policy: AccessPolicy,
    ) -> Self {
        let mut config = IngestConfig::default();
        config.limits.accept_access = true;
        Self {
            checkpoints,
            journal: Ingest::new(
                store,
                index,
                subject_keys,
                AccessRejects::default(),
                master,
                config,
            ),
            policy,
            checkpoint_key: None,
            checkpoint_policy: CheckpointPolicy::default(),
            witness_cache: WitnessCache::default(),
        }
    }

    /// Finds the checkpoint that lists a block, for proofs.
    pub(super) fn witness(&self) -> CheckpointWitness<'_, C> {
        CheckpointWitness::new(
            &self.checkpoints,
            self.checkpoint_key.as_deref(),
            &self.witness_cache,
        )
    }

    pub fn store(&self) -> &S {
        &self.journal.store
    }

    pub fn index(&self) -> &I {
        &self.journal.index
    }

    /// Answers one request and journals it. Never fails as a whole: failures are answers.
    pub async fn handle(&self, caller: Caller, request: Request, now: Timestamp) -> Response {
        let access_id = ulid::Ulid::new().to_string();
        let (principal, role, outcome) = match &caller {
            Caller::Unknown(why) => (
                "unverified".to_string(),
                None,
                Err(Failure::denied(format!(
                    "caller identity not established: {why}"
                ))),
            ),
            Caller::Verified(p) => {
                let role = self.policy.role_of(p);
                let outcome = match role {
                    None => Err(Failure::denied(format!(
                        "{p} has no role in the access policy (policy {})",
                        self.policy.sha256()
                    ))),
                    Some(role) => match check_request(&request) {
                        Err(e) => Err(e),
                        Ok(()) => self.run(role, &request, now).await,
                    },
                };
                (p.clone(), role, outcome)
            }
        };
        let (answer, read, read_count, result) = match outcome {
            Ok(done) => (done.answer, done.read, done.read_count, "ok".to_string()),
            Err(f) => (
                Answer::Error(ErrorAnswer {
                    code: f.code.to_string(),
                    message: f.message,
                }),
                Vec::new(),
                0,
                f.code.to_string(),
            ),
        };
        let event = AccessEvent {
            access_id: access_id.clone(),
            at: now,
            principal: principal.clone(),
            role,
            purpose: request.purpose.chars().take(MAX_PURPOSE_CHARS).collect(),
            operation: request.op.name().to_string(),
            target: target_of(&self.journal.master, &request),
            read: listed_reads(read, self.journal.config.limits.max_record_bytes / 2),
            read_count,
            result,
        };
        // A refusal of a caller without a role must not open a chain for a tenant that has
        // none (anyone allowed to invoke could otherwise create chains at will).
        let unknown_tenant =
            role.is_none() && matches!(self.index().chain_head(&request.tenant_id).await, Ok(None));
        let journaled = if unknown_tenant {
            Err(format!("tenant {:?} has no journal", request.tenant_id))
        } else {
            self.journal_access(&request.tenant_id, &event, now).await
        };
        let answer = match journaled {
            Ok(()) => answer,
            // Nothing was read: the refusal stands, with why it could not be journaled.
            Err(why) if matches!(answer, Answer::Error(_)) => {
                tracing::warn!(%access_id, %why, "refusal not journaled");
                answer
            }
            Err(why) => {
                tracing::error!(%access_id, %why, "access not journaled; answer withheld");
                Answer::Error(ErrorAnswer {
                    code: "internal".into(),
                    message: format!(
                        "the access could not be journaled, so nothing is returned: {why}"
                    ),
                })
            }
        };
        Response {
            principal,
            role,
            access_id,
            answer,
        }
    }

    /// Seals the access record into the tenant's chain through the ingest path.
    async fn journal_access(
        &self,
        tenant_id: &str,
        event: &AccessEvent,
        now: Timestamp,
    ) -> Result<(), String> {
        let record = event.to_record(tenant_id);
        let body = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
        let message = Message {
            message_id: event.access_id.clone(),
            body,
        };
        let outcome = self.journal.ingest_batch(&[message], now).await;
        let rejected: Vec<RejectedMessage> = std::mem::take(
            &mut *self
                .journal
                .rejects
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if let Some(r) = rejected.first() {
            return Err(format!(
                "access record refused at {}: {}",
                r.rejection.field, r.rejection.reason
            ));
        }
        if outcome.accepted == 1 && outcome.failed.is_empty() {
            Ok(())
        } else {
            Err(outcome.errors.join("; "))
        }
    }

    async fn run(&self, role: Role, request: &Request, now: Timestamp) -> Result<Done, Failure> {
        let tenant = request.tenant_id.as_str();
        match &request.op {
            Operation::Lookup { record_id } => self.lookup(role, tenant, record_id, now).await,
            Operation::QuerySubject {
                subject_id,
                range,
                limit,
                cursor,
            } => {
                let subject_ref = self
                    .journal
                    .master
                    .tenant_keys(tenant)
                    .subject_ref(subject_id);
                let (from, to) = range.bounds();
                let mut pointers = self
                    .index()
                    .query_subject(tenant, &subject_ref, from, to)
                    .await?;
                // Reads of the subject share its timeline; they are the access log's to show.
                pointers.retain(|p| p.kind != crate::record::Kind::Access.as_str());
                self.pointer_page(role, tenant, pointers, *limit, cursor.as_deref(), now)
                    .await
            }
            Operation::QueryModel {
                model_name,
                model_version,
                range,
                limit,
                cursor,
            } => {
                let version = model_version.as_deref().ok_or_else(|| {
                    Failure::bad_request("model_version: required (the index is per version)")
                })?;
                let (from, to) = range.bounds();
                let pointers = self
                    .index()
                    .query_model(tenant, model_name, version, from, to)
                    .await?;
                self.pointer_page(role, tenant, pointers, *limit, cursor.as_deref(), now)
                    .await
            }
            Operation::QueryRange {
                range,
                limit,
                cursor,
            } => {
                super::range::query_range(self, role, tenant, range, *limit, cursor.as_deref())
                    .await
            }
            Operation::Verify { range } => self.verify(tenant, range, now).await,
            Operation::Reexecute {
                decision_id,
                features,
            } => {
                super::reexec::reexecute(self, role, tenant, decision_id, features.as_ref(), now)
                    .await
            }
            Operation::WhatIf { .. } => super::whatif::what_if(self, role, request, now).await,
            Operation::AccessLog {
                range,
                limit,
                cursor,
            } => {
                self.access_log(role, tenant, range, *limit, cursor.as_deref(), now)
                    .await
            }
            Operation::Metrics {
                from,
                to,
                model_name,
            } => self.metrics(tenant, from, to, model_name.as_deref()).await,
            Operation::Export { records, .. } => Ok(Done {
                answer: Answer::Exported { records: *records },
                read: Vec::new(),
                read_count: *records,
            }),
        }
    }

    /// The newest checkpoint with a valid signature (when a key is configured) and what it
    /// covers; an unreadable or unverifiable one counts as none. Found through the locators
    /// and kept checked: a warm function pays one list request.
    pub(super) async fn coverage(&self, tenant: &str) -> Option<CheckpointCoverage> {
        let mut requests = 0;
        let newest = self.witness().newest(tenant, &mut requests).await.ok()??;
        Some(CheckpointCoverage {
            number: Some(newest.number),
            signed_at: Some(newest.signed_at),
            covered_seq: Some(newest.seq),
        })
    }

    async fn verify(
        &self,
        tenant: &str,
        range: &TimeRange,
        now: Timestamp,
    ) -> Result<Done, Failure> {
        let key = self.checkpoint_key.as_deref().ok_or_else(|| {
            Failure::unavailable("no checkpoint public key is configured; cannot verify signatures")
        })?;
        let scope = VerifyScope::range(tenant, range.from, range.to);
        let report = verify_scope(
            self.index(),
            self.store(),
            &self.checkpoints,
            &scope,
            key,
            &self.checkpoint_policy,
            now,
        )
        .await
        .map_err(|e| match e {
            AuditError::EmptyRange { .. } => Failure::bad_request(e.to_string()),
            other => Failure::unavailable(other.to_string()),
        })?;
        let read = Vec::new();
        let records = report.records_checked;
        let mut done = Done::new(Answer::Verify(Box::new(report)), read);
        done.read_count = records;
        Ok(done)
    }

    async fn lookup(
        &self,
        role: Role,
        tenant: &str,
        record_id: &str,
        now: Timestamp,
    ) -> Result<Done, Failure> {
        let witness = self.witness();
        let finder = Finder::new(self.store(), self.index()).with_witness(&witness);
        let mut reader = RowReader::new(self.store());
        let (found, linked) = finder
            .by_id_with_links(&mut reader, tenant, record_id, now)
            .await?;
        let pii = self.policy.pii_for(tenant);
        let mut view = record_view(&found, role, &pii, None);
        let mut read = vec![record_id.to_string()];
        for linked in &linked {
            read.push(lookup_id(linked));
            view.linked.push(record_view(linked, role, &pii, None));
        }
        if matches!(found, Lookup::NotFound { .. }) {
            read.clear();
        }
        // The checkpoint the record's proof rests on (none while its block is newer).
        let coverage = match &found {
            Lookup::Found(f) => f.proof.checkpoint.as_ref().map(|c| CheckpointCoverage {
                number: Some(c.number),
                signed_at: Some(c.signed_at),
                covered_seq: Some(c.seq),
            }),
            _ => None,
        };
        tracing::info!(
            record_id,
            index_reads = reader.cost.index_reads,
            ranged_gets = reader.cost.ranged_gets,
            bytes_read = reader.cost.bytes_read,
            checkpoint_requests = reader.cost.checkpoint_requests,
            "lookup"
        );
        Ok(Done::new(
            Answer::Records(RecordsPage {
                records: vec![view],
                next_cursor: None,
                checkpoint: coverage,
            }),
            read,
        ))
    }

    async fn pointer_page(
        &self,
        role: Role,
        tenant: &str,
        pointers: Vec<crate::ports::Pointer>,
        limit: Option<usize>,
        cursor: Option<&str>,
        now: Timestamp,
    ) -> Result<Done, Failure> {
        let size = page_size(limit)?;
        let after = cursor.map(Cursor::parse).transpose()?;
        let (page, next) = page_after(&pointers, after.as_ref(), size);
        let witness = self.witness();
        let finder = Finder::new(self.store(), self.index()).with_witness(&witness);
        let mut reader = RowReader::new(self.store());
        let coverage = self.coverage(tenant).await;
        let covered = coverage.as_ref().and_then(|c| c.covered_seq);
        let pii = self.policy.pii_for(tenant);
        let mut records = Vec::with_capacity(page.len());
        let mut read = Vec::with_capacity(page.len());
        for p in page {
            let found = finder.at_pointer(&mut reader, p, now).await?;
            read.push(p.record_id.clone());
            records.push(record_view(&found, role, &pii, covered));
        }
        Ok(Done::new(
            Answer::Records(RecordsPage {
                records,
                next_cursor: next.map(|c| c.to_string()),
                checkpoint: coverage,
            }),
            read,
        ))
    }

    /// Aggregates from the metrics files, readable by both roles (they name no subject);
    /// journaled like every read, with the number of rows returned as `read_count`.
    async fn metrics(
        &self,
        tenant: &str,
        from: &str,
        to: &str,
        model_name: Option<&str>,
    ) -> Result<Done, Failure> {
        let (mut rows, missing_dates) =
            read_days(self.store(), tenant, from, to)
                .await
                .map_err(|e| {
                    if e.is_bad_request() {
                        Failure::bad_request(e.to_string())
                    } else {
                        Failure::unavailable(e.to_string())
                    }
                })?;
        if let Some(name) = model_name {
            rows.retain(|r| r.model_name == name);
        }
        let read_count = rows.len() as u64;
        Ok(Done {
            answer: Answer::Metrics(MetricsPage {
                rows,
                missing_dates,
            }),
            read: Vec::new(),
            read_count,
        })
    }

    async fn access_log(
        &self,
        role: Role,
        tenant: &str,
        range: &TimeRange,
        limit: Option<usize>,
        cursor: Option<&str>,
        now: Timestamp,
    ) -> Result<Done, Failure> {
        if role != Role::Auditor {
            return Err(Failure::denied(
                "the access journal names readers and purposes: auditor role required",
            ));
        }
        let size = page_size(limit)?;
        let after = cursor.map(Cursor::parse).transpose()?;
        let (from, to) = range.bounds();
        let pointers = self.index().query_access(tenant, from, to).await?;
        let (page, next) = page_after(&pointers, after.as_ref(), size);
        let witness = self.witness();
        let finder = Finder::new(self.store(), self.index()).with_witness(&witness);
        let mut reader = RowReader::new(self.store());
        let mut events = Vec::with_capacity(page.len());
        for p in page {
            match finder.at_pointer(&mut reader, p, now).await? {
                Lookup::Found(f) => {
                    if !f.proof.verified {
                        return Err(Failure::unavailable(format!(
                            "access record {} fails its proof: {}",
                            p.record_id,
                            f.proof.faults.join("; ")
                        )));
                    }
                    events.push(AccessEvent::from_record(&f.record).map_err(|e| {
                        Failure::unavailable(format!("access record {}: {e}", p.record_id))
                    })?);
                }
                other => {
                    return Err(Failure::unavailable(format!(
                        "access record {} is not readable now ({})",
                        p.record_id,
                        lookup_status(&other)
                    )))
                }
            }
        }
        let read = events.iter().map(|e| e.access_id.clone()).collect();
        Ok(Done::new(
            Answer::Access(AccessPage {
                events,
                next_cursor: next.map(|c| c.to_string()),
            }),
            read,
        ))
    }
}

/// The record ids an access record lists: at most [`MAX_LISTED_READS`], and at most
/// `max_bytes` of them as JSON, so that a page of long producer-chosen ids (up to 128
/// characters each) still fits the ingest's record size limit; `read_count` keeps the full
/// number.
fn listed_reads(read: Vec<String>, max_bytes: usize) -> Vec<String> {
    let mut bytes = 0;
    read.into_iter()
        .take(MAX_LISTED_READS)
        .take_while(|id| {
            bytes += id.len() + 3;
            bytes <= max_bytes
        })
        .collect()
}

/// Checks what every request must carry.
fn check_request(request: &Request) -> Result<(), Failure> {
    if request.tenant_id.trim().is_empty() {
        return Err(Failure::bad_request("tenant_id: required"));
    }
    let purpose = request.purpose.trim();
    if purpose.is_empty() {
        return Err(Failure::bad_request(
            "purpose: a stated purpose is required; it is recorded in the access journal",
        ));
    }
    if request.purpose.chars().count() > MAX_PURPOSE_CHARS {
        return Err(Failure::bad_request(format!(
            "purpose: longer than {MAX_PURPOSE_CHARS} characters"
        )));
    }
    Ok(())
}

pub(super) fn page_size(limit: Option<usize>) -> Result<usize, Failure> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(0) => Err(Failure::bad_request("limit: must be at least 1")),
        Some(n) => Ok(n.min(MAX_PAGE)),
    }
}

pub(super) fn lookup_id(l: &Lookup) -> String {
    match l {
        Lookup::Found(f) => f.record.record_id().to_string(),
        Lookup::Archived(a) => a.record_id.clone(),
        Lookup::Pending { record_id } | Lookup::NotFound { record_id } => record_id.clone(),
    }
}

pub(super) fn lookup_status(l: &Lookup) -> &'static str {
    match l {
        Lookup::Found(_) => "found",
        Lookup::Archived(_) => "archived",
        Lookup::Pending { .. } => "pending",
        Lookup::NotFound { .. } => "not_found",
    }
}

/// The request's parameters as journaled: a raw subject id becomes its reference, supplied
/// features become their HMAC.
fn target_of(master: &MasterKey, request: &Request) -> Map<String, Value> {
    let mut value = serde_json::to_value(&request.op).unwrap_or(Value::Null);
    let Value::Object(map) = &mut value else {
        return Map::new();
    };
    map.remove("op");
    let keys = master.tenant_keys(&request.tenant_id);
    if let Some(Value::String(id)) = map.remove("subject_id") {
        map.insert("subject_ref".into(), Value::from(keys.subject_ref(&id)));
    }
    if let Some(Value::Object(features)) = map.remove("features") {
        if let Ok(hmac) = keys.features_hmac(&features) {
            map.insert("supplied_features_hmac".into(), Value::from(hmac));
        }
    }
    std::mem::take(map)
}
