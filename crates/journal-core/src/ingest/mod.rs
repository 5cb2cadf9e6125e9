//! The ingest pipeline: SQS messages in, one chained block per tenant out.
//!
//! Order of steps per tenant, and why each crash point is safe:
//!
//! 1. **Claim** every record id (conditional put). A second delivery of a record finds the claim
//!    and becomes a duplicate; an id reused with other content is rejected.
//! 2. **Manifest pending**: the file's manifest entry, the fencing token of this attempt.
//! 3. **Write** the Parquet file to S3.
//! 4. **Append** the block to the tenant chain: one transaction moves the head, stores the header
//!    and turns the manifest pending → chained, unless a takeover has fenced it (abandoned).
//! 5. **Index**: final pointers (with the subject/model/ref timelines), then manifest → live.
//!
//! A crash before 4 leaves claims naming an unchained block: when the messages come back, the
//! claims are stale after `claim_lease_ms`, the old manifest is fenced (abandoned) and the claims
//! are taken over by the new attempt. A crash after 4 leaves a chained block without pointers:
//! the redelivery finds the claim, sees the block chained, re-indexes the whole block from its
//! file and acknowledges. A message is acknowledged only when every one of its records is
//! chained and indexed (or a duplicate of one that is), or rejected onto the dead-letter path.
//!
//! A record of an erased subject that occurred before the erasure (a redelivery, a replayed
//! spill buffer) is dropped and acknowledged: the tenant's [`Suppression`]s are read once per
//! batch, and only the keyed token of the subject is compared.

mod block;
mod seal;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use base64::Engine;

pub use block::{pointer_for, prepare_block, PreparedBlock};
pub use seal::{content_mac_of_stored, needs_data_key, seal_record, SealedRecord};

use crate::columnar::{self, WriterConfig};
use crate::faults::CrashStep;
use crate::keys::{MasterKey, TenantKeys};
use crate::layout;
use crate::ports::{
    AbandonOutcome, AppendOutcome, Claim, ClaimResult, ExistingPointer, FileState, JournalIndex,
    ManifestEntry, ObjectStore, PointerState, PortError, RejectSink, RejectedMessage,
    SubjectKeyStore, Suppression,
};
use crate::timestamp::Timestamp;
use crate::validate::{self, Limits, Rejection};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("encoding the block failed: {0}")]
    Encode(String),
    #[error("block {block_id}: chain head kept moving after {attempts} attempts")]
    Contention { block_id: String, attempts: u32 },
    #[error("block {block_id} was fenced off by a takeover; its records will be retried")]
    Fenced { block_id: String },
    #[error("recovering block {block_id} ({file_key}): {reason}")]
    Recovery {
        block_id: String,
        file_key: String,
        reason: String,
    },
}

/// The steps after which a test can make ingest stop as if the process had crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IngestStep {
    Claimed,
    ManifestPending,
    FileWritten,
    Chained,
    Indexed,
}

impl IngestStep {
    pub const ALL: [IngestStep; 5] = [
        IngestStep::Claimed,
        IngestStep::ManifestPending,
        IngestStep::FileWritten,
        IngestStep::Chained,
        IngestStep::Indexed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IngestStep::Claimed => "claimed",
            IngestStep::ManifestPending => "manifest_pending",
            IngestStep::FileWritten => "file_written",
            IngestStep::Chained => "chained",
            IngestStep::Indexed => "indexed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.as_str() == s)
    }
}

impl CrashStep for IngestStep {
    fn label(self) -> String {
        self.as_str().to_string()
    }
}

/// Armed by tests with the step after which ingest stops.
pub type FaultSwitch = crate::faults::FaultSwitch<IngestStep>;

#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub limits: Limits,
    pub writer: WriterConfig,
    /// Keep raw features sealed under the subject's data key (else only `features_hmac`).
    pub keep_raw_features: bool,
    /// After this long, a claim whose block never got chained is presumed dead and taken over.
    /// Must exceed the function timeout.
    pub claim_lease_ms: i64,
    /// Attempts to append a block when other ingests keep moving the head.
    pub append_attempts: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            writer: WriterConfig::default(),
            keep_raw_features: true,
            claim_lease_ms: 5 * 60 * 1000,
            append_attempts: 64,
        }
    }
}

/// One SQS message.
#[derive(Clone, Debug)]
pub struct Message {
    pub message_id: String,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSummary {
    pub tenant_id: String,
    pub seq: u64,
    pub block_id: String,
    pub file_key: String,
    pub rows: usize,
    pub bytes: usize,
}

/// What happened to a batch. `failed` lists the message ids SQS must deliver again.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub failed: Vec<String>,
    pub accepted: usize,
    pub duplicates: usize,
    /// Records of an erased subject, from before its erasure, dropped on arrival.
    pub suppressed: usize,
    pub rejected: usize,
    pub blocks: Vec<BlockSummary>,
    /// Why messages failed (for the logs).
    pub errors: Vec<String>,
}

/// The ingest service: ports and keys built once at start, then one call per batch.
pub struct Ingest<S, I, K, R> {
    pub store: S,
    pub index: I,
    pub subject_keys: K,
    pub rejects: R,
    pub master: MasterKey,
    pub config: IngestConfig,
    pub faults: FaultSwitch,
}

/// A sealed record waiting for its block, with the messages that carried it.
struct Pending {
    sealed: SealedRecord,
    /// Where the record's JSON lies in its first message's body, for the dead-letter path.
    raw: Range<usize>,
    messages: Vec<usize>,
}

struct BatchState {
    failed: Vec<bool>,
    errors: Vec<String>,
    outcome: BatchOutcome,
}

impl BatchState {
    fn fail(&mut self, messages: &[usize], why: &str) {
        for &m in messages {
            self.failed[m] = true;
        }
        self.errors.push(why.to_string());
    }
}

impl<S, I, K, R> Ingest<S, I, K, R>
where
    S: ObjectStore,
    I: JournalIndex,
    K: SubjectKeyStore,
    R: RejectSink,
{
    pub fn new(
        store: S,
        index: I,
        subject_keys: K,
        rejects: R,
        master: MasterKey,
        config: IngestConfig,
    ) -> Self {
        Self {
            store,
            index,
            subject_keys,
            rejects,
            master,
            config,
            faults: FaultSwitch::default(),
        }
    }

    /// Ingests one batch. Never fails as a whole: what could not be done is in `failed`.
    pub async fn ingest_batch(&self, messages: &[Message], now: Timestamp) -> BatchOutcome {
        let mut state = BatchState {
            failed: vec![false; messages.len()],
            errors: Vec::new(),
            outcome: BatchOutcome::default(),
        };
        let mut tenant_keys: HashMap<String, TenantKeys> = HashMap::new();
        let mut rejects: Vec<(usize, RejectedMessage)> = Vec::new();
        // (tenant, record id) → pending record; BTreeMap keeps blocks in a stable order.
        let mut by_tenant: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        let mut seen: HashMap<(String, String), (String, usize)> = HashMap::new();
        // Tenant → its erased subjects' suppressions, read once per batch where needed.
        let mut suppressions: HashMap<String, Vec<Suppression>> = HashMap::new();

        for (m, msg) in messages.iter().enumerate() {
            let parsed = match validate::parse_body(&msg.body, &self.config.limits, now) {
                Ok(p) => p,
                Err(rejection) => {
                    rejects.push((m, reject_whole(msg, rejection)));
                    continue;
                }
            };
            for rec in parsed {
                let record = match rec.result {
                    Ok(r) => r,
                    Err(rejection) => {
                        rejects.push((
                            m,
                            reject_part(msg, validate::raw_text(&msg.body, &rec.raw), rejection),
                        ));
                        continue;
                    }
                };
                let keys = tenant_keys
                    .entry(record.tenant_id.clone())
                    .or_insert_with(|| self.master.tenant_keys(&record.tenant_id));
                if let Some(subject) = &record.subject {
                    if !suppressions.contains_key(&record.tenant_id) {
                        match self.index.suppressions(&record.tenant_id, now).await {
                            Ok(live) => {
                                suppressions.insert(record.tenant_id.clone(), live);
                            }
                            Err(e) => {
                                state.fail(&[m], &format!("erased subjects: {e}"));
                                continue;
                            }
                        }
                    }
                    let live = &suppressions[&record.tenant_id];
                    if !live.is_empty() {
                        let token = keys.suppression_token(&keys.subject_ref(&subject.id));
                        if live.iter().any(|s| s.drops(&token, record.occurred_at)) {
                            // Acknowledged, not dead-lettered: the DLQ would keep the raw id.
                            state.outcome.suppressed += 1;
                            continue;
                        }
                    }
                }
                // Only records whose raw features are kept need the subject's key.
                let subject_ref = record
                    .subject
                    .as_ref()
                    .filter(|_| needs_data_key(&record, self.config.keep_raw_features))
                    .map(|s| keys.subject_ref(&s.id));
                let data_key = match subject_ref {
                    None => None,
                    Some(subject_ref) => match self
                        .subject_keys
                        .data_key(&record.tenant_id, &subject_ref)
                        .await
                    {
                        Ok(k) => Some(k),
                        Err(e) => {
                            state.fail(&[m], &format!("subject data key: {e}"));
                            continue;
                        }
                    },
                };
                let sealed = match seal_record(record, keys, data_key.as_ref(), now) {
                    Ok(s) => s,
                    Err(mut rejection) => {
                        if is_array(&msg.body) {
                            rejection.record_index = Some(rec.index);
                        }
                        rejects.push((
                            m,
                            reject_part(msg, validate::raw_text(&msg.body, &rec.raw), rejection),
                        ));
                        continue;
                    }
                };
                let tenant = sealed.record.tenant_id.clone();
                let id = sealed.record.record_id().to_string();
                match seen.get(&(tenant.clone(), id.clone())) {
                    Some((mac, slot)) if *mac == sealed.content_mac => {
                        // Same record twice in one batch: it lands once, for both messages.
                        let pending =
                            &mut by_tenant.get_mut(&tenant).expect("seen implies present")[*slot];
                        pending.messages.push(m);
                        state.outcome.duplicates += 1;
                    }
                    Some(_) => {
                        let raw = validate::raw_text(&msg.body, &rec.raw);
                        rejects.push((m, reject_part(msg, raw, id_conflict(&sealed))));
                    }
                    None => {
                        let list = by_tenant.entry(tenant.clone()).or_default();
                        seen.insert((tenant, id), (sealed.content_mac.clone(), list.len()));
                        list.push(Pending {
                            sealed,
                            raw: rec.raw,
                            messages: vec![m],
                        });
                    }
                }
            }
        }

        for (tenant, pending) in by_tenant {
            let keys = tenant_keys
                .get(&tenant)
                .cloned()
                .unwrap_or_else(|| self.master.tenant_keys(&tenant));
            let all: Vec<usize> = pending.iter().flat_map(|p| p.messages.clone()).collect();
            let block_id = ulid::Ulid::from_parts(now.millis() as u64, rand::random()).to_string();
            let file_key = layout::block_file_key(&tenant, now, &block_id);
            let target = BlockTarget {
                tenant: &tenant,
                block_id: &block_id,
                file_key: &file_key,
            };
            let result = self
                .ingest_tenant(
                    &target,
                    pending,
                    &keys,
                    now,
                    messages,
                    &mut state,
                    &mut rejects,
                )
                .await;
            if let Err(e) = result {
                tracing::warn!(tenant = %tenant, block_id = %block_id, error = %e, "block failed; its messages will be retried");
                state.fail(&all, &format!("tenant {tenant}: {e}"));
                if !matches!(e, IngestError::Port(PortError::Injected(_))) {
                    // Still alive: fence our own block now so the retry need not wait out the
                    // claim lease (an injected fault stands for a crash, which cannot do this).
                    let fenced = self
                        .index
                        .abandon_manifest(&tenant, &file_key, &block_id, now)
                        .await;
                    if let Err(e) = fenced {
                        tracing::warn!(block_id = %block_id, error = %e, "could not fence the failed block");
                    }
                }
            }
        }

        if !rejects.is_empty() {
            let batch: Vec<RejectedMessage> = rejects.iter().map(|(_, r)| r.clone()).collect();
            match self.rejects.send_rejects(&batch).await {
                Ok(()) => state.outcome.rejected = batch.len(),
                Err(e) => {
                    let owners: Vec<usize> = rejects.iter().map(|(m, _)| *m).collect();
                    state.fail(&owners, &format!("dead-letter send: {e}"));
                }
            }
        }

        let mut outcome = state.outcome;
        outcome.failed = messages
            .iter()
            .zip(&state.failed)
            .filter(|(_, f)| **f)
            .map(|(m, _)| m.message_id.clone())
            .collect();
        outcome.errors = state.errors;
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    async fn ingest_tenant(
        &self,
        target: &BlockTarget<'_>,
        pending: Vec<Pending>,
        keys: &TenantKeys,
        now: Timestamp,
        messages_in: &[Message],
        state: &mut BatchState,
        rejects: &mut Vec<(usize, RejectedMessage)>,
    ) -> Result<(), IngestError> {
        let (tenant, block_id, file_key) = (
            target.tenant,
            target.block_id.to_string(),
            target.file_key.to_string(),
        );
        let claims: Vec<Claim> = pending
            .iter()
            .map(|p| Claim {
                tenant_id: tenant.to_string(),
                record_id: p.sealed.record.record_id().to_string(),
                content_mac: p.sealed.content_mac.clone(),
                block_id: block_id.clone(),
                file_key: file_key.clone(),
                claimed_at: now,
            })
            .collect();
        let results = self.index.claim(&claims).await?;
        let mut won: Vec<Pending> = Vec::new();
        let mut settled_files: HashSet<String> = HashSet::new();
        for ((p, claim), result) in pending.into_iter().zip(&claims).zip(results) {
            match result {
                ClaimResult::Won => won.push(p),
                ClaimResult::Existing(existing) => {
                    let resolved = self
                        .resolve_existing(claim, &existing, keys, now, &mut settled_files)
                        .await;
                    match resolved {
                        Ok(Resolution::Ours) => won.push(p),
                        Ok(Resolution::Duplicate) => state.outcome.duplicates += p.messages.len(),
                        Ok(Resolution::Conflict) => {
                            let rejection = id_conflict(&p.sealed);
                            // The same record in every message; the first one's text stands for all.
                            let raw = validate::raw_text(&messages_in[p.messages[0]].body, &p.raw);
                            for &m in &p.messages {
                                let part =
                                    reject_part(&messages_in[m], raw.clone(), rejection.clone());
                                rejects.push((m, part));
                            }
                        }
                        Ok(Resolution::Retry(why)) => state.fail(&p.messages, &why),
                        Err(e) => state.fail(&p.messages, &e.to_string()),
                    }
                }
            }
        }
        self.faults.check(IngestStep::Claimed)?;
        if won.is_empty() {
            return Ok(());
        }
        let macs: Vec<String> = won.iter().map(|p| p.sealed.content_mac.clone()).collect();
        let records: Vec<SealedRecord> = won.into_iter().map(|p| p.sealed).collect();
        let block = prepare_block(
            tenant,
            &block_id,
            &file_key,
            records,
            &self.config.writer,
            now,
        )?;

        let entry = ManifestEntry {
            tenant_id: tenant.to_string(),
            file_key: file_key.clone(),
            block_id: block_id.clone(),
            state: FileState::Pending,
            seq: None,
            rows: block.rows.len() as u64,
            size: block.file.bytes.len() as u64,
            sha256: block.file.sha256.clone(),
            first_occurred_at: block.first_occurred_at,
            last_occurred_at: block.last_occurred_at,
            created_at: now,
            last_seq: None,
            merged_from: Vec::new(),
            compacted_into: None,
            delete_after: None,
            risk_tiers: block.risk_tiers(),
            storage_class: None,
            tombstone: None,
            erasure_receipts: Vec::new(),
        };
        if !self.index.put_manifest_pending(&entry).await? {
            return Err(
                PortError::permanent("put manifest", format!("{file_key} already exists")).into(),
            );
        }
        self.faults.check(IngestStep::ManifestPending)?;
        self.store
            .put_object(&file_key, block.file.bytes.clone())
            .await?;
        self.faults.check(IngestStep::FileWritten)?;

        let header = self.append(&block).await?;
        self.faults.check(IngestStep::Chained)?;

        let pointers: Vec<_> = block
            .rows
            .iter()
            .zip(&block.file.positions)
            .zip(macs)
            .map(|((row, pos), mac)| pointer_for(row, *pos, &header, &file_key, mac))
            .collect();
        self.index.write_pointers(&pointers).await?;
        self.faults.check(IngestStep::Indexed)?;
        self.index.mark_manifest_live(tenant, &file_key).await?;

        state.outcome.accepted += block.rows.len();
        state.outcome.blocks.push(BlockSummary {
            tenant_id: tenant.to_string(),
            seq: header.seq,
            block_id,
            file_key,
            rows: block.rows.len(),
            bytes: block.file.bytes.len(),
        });
        Ok(())
    }

    /// Links the block after the current head, retrying while other ingests win the race.
    async fn append(
        &self,
        block: &PreparedBlock,
    ) -> Result<crate::integrity::BlockHeader, IngestError> {
        for _ in 0..self.config.append_attempts {
            let head = self.index.chain_head(&block.tenant_id).await?;
            let header = block.header_after(head.as_ref());
            match self.index.append_block(&header).await? {
                AppendOutcome::Appended => return Ok(header),
                AppendOutcome::HeadMoved => continue,
                AppendOutcome::Fenced => {
                    return Err(IngestError::Fenced {
                        block_id: block.block_id.clone(),
                    })
                }
            }
        }
        Err(IngestError::Contention {
            block_id: block.block_id.clone(),
            attempts: self.config.append_attempts,
        })
    }

    /// Decides what to do with a record whose id is already claimed.
    async fn resolve_existing(
        &self,
        claim: &Claim,
        existing: &ExistingPointer,
        keys: &TenantKeys,
        now: Timestamp,
        settled_files: &mut HashSet<String>,
    ) -> Result<Resolution, IngestError> {
        if existing.content_mac != claim.content_mac {
            return Ok(Resolution::Conflict);
        }
        if existing.block_id == claim.block_id {
            // Our own claim: a retried put whose first attempt had landed.
            return Ok(Resolution::Ours);
        }
        if settled_files.contains(&existing.file_key) {
            return Ok(Resolution::Duplicate);
        }
        let tenant = &claim.tenant_id;
        let manifest = self.index.get_manifest(tenant, &existing.file_key).await?;
        if existing.state == PointerState::Indexed {
            // A crash inside the index step can leave the block chained with part of its
            // pointers written: finish it (rewriting pointers is idempotent).
            if let Some(entry) = manifest.filter(|m| m.state == FileState::Chained) {
                self.recover_block(&entry, keys).await?;
            }
            settled_files.insert(existing.file_key.clone());
            return Ok(Resolution::Duplicate);
        }
        let state = manifest.as_ref().map(|m| m.state);
        match state {
            Some(FileState::Abandoned) => Ok(self.take_over(claim, existing).await?),
            Some(FileState::Pending) | None => {
                let stale =
                    now.millis() - existing.claimed_at.millis() >= self.config.claim_lease_ms;
                if !stale {
                    return Ok(Resolution::Retry(format!(
                        "record {} is being ingested by block {} (claimed at {})",
                        claim.record_id, existing.block_id, existing.claimed_at
                    )));
                }
                match self
                    .index
                    .abandon_manifest(tenant, &existing.file_key, &existing.block_id, now)
                    .await?
                {
                    AbandonOutcome::Abandoned => Ok(self.take_over(claim, existing).await?),
                    AbandonOutcome::AlreadyChained(entry) => {
                        self.recover_block(&entry, keys).await?;
                        Ok(Resolution::Duplicate)
                    }
                }
            }
            Some(_) => {
                let entry = manifest.expect("state came from it");
                if entry.state == FileState::Chained {
                    self.recover_block(&entry, keys).await?;
                }
                settled_files.insert(existing.file_key.clone());
                Ok(Resolution::Duplicate)
            }
        }
    }

    async fn take_over(
        &self,
        claim: &Claim,
        existing: &ExistingPointer,
    ) -> Result<Resolution, PortError> {
        if self.index.take_over(claim, &existing.block_id).await? {
            Ok(Resolution::Ours)
        } else {
            Ok(Resolution::Retry(format!(
                "record {}: another ingest took over block {} first",
                claim.record_id, existing.block_id
            )))
        }
    }

    /// Completes the index of a block that was chained before its ingest died.
    pub async fn recover_block(
        &self,
        entry: &ManifestEntry,
        keys: &TenantKeys,
    ) -> Result<(), IngestError> {
        let fail = |reason: String| IngestError::Recovery {
            block_id: entry.block_id.clone(),
            file_key: entry.file_key.clone(),
            reason,
        };
        let seq = entry
            .seq
            .ok_or_else(|| fail("chained manifest entry has no seq".into()))?;
        let header = self
            .index
            .list_blocks_between(&entry.tenant_id, seq, seq)
            .await?
            .into_iter()
            .find(|h| h.block_id == entry.block_id)
            .ok_or_else(|| {
                fail(format!(
                    "the chain has no block {} at seq {seq}",
                    entry.block_id
                ))
            })?;
        let bytes = self
            .store
            .get_object(&entry.file_key)
            .await?
            .ok_or_else(|| fail("file is missing".into()))?;
        let (rows, positions) =
            columnar::decode_file_positioned(bytes).map_err(|e| fail(e.to_string()))?;
        let mut pointers = Vec::with_capacity(rows.len());
        for (row, pos) in rows.iter().zip(positions) {
            let mac = content_mac_of_stored(&row.record, keys).map_err(|e| fail(e.to_string()))?;
            pointers.push(pointer_for(row, pos, &header, &entry.file_key, mac));
        }
        self.index.write_pointers(&pointers).await?;
        self.index
            .mark_manifest_live(&entry.tenant_id, &entry.file_key)
            .await?;
        tracing::info!(block_id = %entry.block_id, rows = rows.len(), "recovered the index of a chained block");
        Ok(())
    }
}

struct BlockTarget<'a> {
    tenant: &'a str,
    block_id: &'a str,
    file_key: &'a str,
}

enum Resolution {
    /// The claim is now this attempt's.
    Ours,
    /// Already in the journal (or now recovered): acknowledge.
    Duplicate,
    /// Same id, other content.
    Conflict,
    /// Cannot decide now; let SQS deliver the message again.
    Retry(String),
}

fn is_array(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

fn id_conflict(sealed: &SealedRecord) -> Rejection {
    let field = match sealed.record.kind {
        crate::record::Kind::Decision | crate::record::Kind::Access => "decision_id",
        crate::record::Kind::Outcome => "outcome_id",
        crate::record::Kind::Review => "review_id",
    };
    Rejection {
        record_index: None,
        field: field.into(),
        reason: format!(
            "{} is already journaled with different content; ids must not be reused",
            sealed.record.record_id()
        ),
    }
}

fn reject_whole(msg: &Message, rejection: Rejection) -> RejectedMessage {
    match std::str::from_utf8(&msg.body) {
        Ok(text) => RejectedMessage {
            message_id: msg.message_id.clone(),
            body: text.to_string(),
            body_base64: false,
            rejection,
        },
        Err(_) => RejectedMessage {
            message_id: msg.message_id.clone(),
            body: base64::engine::general_purpose::STANDARD.encode(&msg.body),
            body_base64: true,
            rejection,
        },
    }
}

fn reject_part(msg: &Message, raw: String, rejection: Rejection) -> RejectedMessage {
    RejectedMessage {
        message_id: msg.message_id.clone(),
        body: raw,
        body_base64: false,
        rejection,
    }
}
