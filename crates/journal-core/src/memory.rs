//! In-process implementations of the ports, with the same conditional semantics as the
//! DynamoDB/S3 adapters, for unit tests of the pipeline and verification. Not for production.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use crate::features_crypto::DataKey;
use crate::integrity::{BlockHeader, ChainHead};
use crate::ports::*;
use crate::timestamp::Timestamp;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
pub struct MemoryStore {
    pub objects: Mutex<BTreeMap<String, Bytes>>,
    /// Storage class and archive state of objects not in STANDARD (tests set these).
    pub archived: Mutex<HashMap<String, (String, ArchiveState)>>,
    /// Ranged GETs served, and their bytes (what a lookup costs).
    pub ranged_gets: AtomicU64,
    pub ranged_bytes: AtomicU64,
}

impl MemoryStore {
    /// Moves an object to an archive class, as a lifecycle transition would.
    pub fn archive(&self, key: &str, storage_class: &str) {
        lock(&self.archived).insert(
            key.to_string(),
            (storage_class.to_string(), ArchiveState::Archived),
        );
    }

    /// Completes a running restore, as S3 does hours later.
    pub fn finish_restore(&self, key: &str) {
        if let Some((_, state)) = lock(&self.archived).get_mut(key) {
            *state = ArchiveState::Restored {
                expires: Some("in 7 days".into()),
            };
        }
    }

    fn readable(&self, key: &str) -> Result<Bytes, ReadError> {
        if let Some((class, state)) = lock(&self.archived).get(key) {
            if !matches!(state, ArchiveState::Restored { .. }) {
                return Err(ReadError::Archived {
                    key: key.to_string(),
                    storage_class: class.clone(),
                });
            }
        }
        lock(&self.objects)
            .get(key)
            .cloned()
            .ok_or_else(|| ReadError::NotFound {
                key: key.to_string(),
            })
    }

    fn count(&self, bytes: &Bytes) {
        self.ranged_gets.fetch_add(1, Ordering::Relaxed);
        self.ranged_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}

impl RangedObjectStore for MemoryStore {
    async fn get_suffix(&self, key: &str, len: u64) -> Result<ObjectSuffix, ReadError> {
        let all = self.readable(key)?;
        let total = all.len() as u64;
        let start = usize::try_from(total.saturating_sub(len)).unwrap_or(0);
        let bytes = all.slice(start..);
        self.count(&bytes);
        Ok(ObjectSuffix {
            bytes,
            total_size: total,
        })
    }

    async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Bytes, ReadError> {
        let all = self.readable(key)?;
        let end = usize::try_from(range.end)
            .unwrap_or(usize::MAX)
            .min(all.len());
        let start = usize::try_from(range.start).unwrap_or(usize::MAX).min(end);
        let bytes = all.slice(start..end);
        self.count(&bytes);
        Ok(bytes)
    }

    async fn object_status(&self, key: &str) -> Result<Option<ObjectStatus>, PortError> {
        let Some(size) = lock(&self.objects).get(key).map(|b| b.len() as u64) else {
            return Ok(None);
        };
        let (storage_class, archive) = lock(&self.archived)
            .get(key)
            .cloned()
            .unwrap_or_else(|| ("STANDARD".into(), ArchiveState::Online));
        Ok(Some(ObjectStatus {
            size,
            storage_class,
            archive,
        }))
    }

    async fn request_restore(&self, key: &str, _days: u32) -> Result<(), PortError> {
        if let Some((_, state)) = lock(&self.archived).get_mut(key) {
            if *state == ArchiveState::Archived {
                *state = ArchiveState::Restoring;
            }
        }
        Ok(())
    }
}

impl ObjectStore for MemoryStore {
    async fn put_object(&self, key: &str, body: Bytes) -> Result<(), PortError> {
        lock(&self.objects).insert(key.to_string(), body);
        Ok(())
    }

    /// As S3: an archived object that is not restored cannot be read.
    async fn get_object(&self, key: &str) -> Result<Option<Bytes>, PortError> {
        match self.readable(key) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(ReadError::NotFound { .. }) => Ok(None),
            Err(e) => Err(PortError::permanent("get object", e)),
        }
    }

    async fn delete_object(&self, key: &str) -> Result<(), PortError> {
        lock(&self.objects).remove(key);
        lock(&self.archived).remove(key);
        Ok(())
    }
}

impl ArchiveStore for MemoryStore {
    async fn set_storage_class(&self, key: &str, storage_class: &str) -> Result<(), PortError> {
        if !lock(&self.objects).contains_key(key) {
            return Err(PortError::permanent(
                "set storage class",
                format!("{key} does not exist"),
            ));
        }
        if matches!(storage_class, "GLACIER" | "DEEP_ARCHIVE") {
            self.archive(key, storage_class);
        } else {
            lock(&self.archived).remove(key);
        }
        Ok(())
    }

    async fn purge(&self, key: &str) -> Result<u64, PortError> {
        lock(&self.archived).remove(key);
        Ok(u64::from(lock(&self.objects).remove(key).is_some()))
    }
}

#[derive(Default)]
pub struct MemoryRejects {
    pub sent: Mutex<Vec<RejectedMessage>>,
}

impl RejectSink for MemoryRejects {
    async fn send_rejects(&self, rejects: &[RejectedMessage]) -> Result<(), PortError> {
        lock(&self.sent).extend_from_slice(rejects);
        Ok(())
    }
}

fn stored_key(k: &[u8; 32]) -> Result<DataKey, PortError> {
    DataKey::from_bytes(k).ok_or_else(|| PortError::permanent("data key", "bad length"))
}

/// Subject data keys derived from a counter; "shredding" removes them.
#[derive(Default)]
pub struct MemorySubjectKeys {
    pub keys: Mutex<HashMap<(String, String), [u8; 32]>>,
}

impl SubjectKeyStore for MemorySubjectKeys {
    async fn data_key(&self, tenant_id: &str, subject_ref: &str) -> Result<DataKey, PortError> {
        let mut keys = lock(&self.keys);
        let n = keys.len() as u8;
        let k = keys
            .entry((tenant_id.to_string(), subject_ref.to_string()))
            .or_insert_with(|| {
                let mut k = rand::random::<[u8; 32]>();
                k[0] = n;
                k
            });
        stored_key(k)
    }

    async fn existing_key(
        &self,
        tenant_id: &str,
        subject_ref: &str,
    ) -> Result<Option<DataKey>, PortError> {
        lock(&self.keys)
            .get(&(tenant_id.to_string(), subject_ref.to_string()))
            .map(stored_key)
            .transpose()
    }

    async fn shred(&self, tenant_id: &str, subject_ref: &str) -> Result<bool, PortError> {
        Ok(lock(&self.keys)
            .remove(&(tenant_id.to_string(), subject_ref.to_string()))
            .is_some())
    }
}

#[derive(Clone, Debug)]
// An in-memory test double: the pointer is stored inline, as the real index stores it whole.
#[allow(clippy::large_enum_variant)]
enum Entry {
    Claimed(Claim),
    Indexed(Pointer),
}

#[derive(Default)]
struct IndexState {
    records: HashMap<(String, String), Entry>,
    manifest: BTreeMap<(String, String), ManifestEntry>,
    heads: HashMap<String, ChainHead>,
    blocks: BTreeMap<(String, u64), BlockHeader>,
    /// `(tenant, decision id, occurred_at, record id)` of every outcome and review: the link
    /// items DynamoDB keeps in the decision's partition.
    links: BTreeSet<(String, String, Timestamp, String)>,
    /// Lease name → (owner, until).
    leases: HashMap<String, (String, Timestamp)>,
    /// (tenant, token) → suppression.
    suppressions: BTreeMap<(String, String), Suppression>,
}

#[derive(Default)]
pub struct MemoryIndex {
    state: Mutex<IndexState>,
    /// Tests: a claim that lands is answered as if it had been sent twice (an SDK retry of a
    /// put whose first attempt landed), so the caller meets its own claim.
    #[cfg(test)]
    echo_claims: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl MemoryIndex {
    /// Overwrites a stored block header in place (tampering, for tests).
    pub(crate) fn replace_block_for_tests(&self, header: &BlockHeader) {
        lock(&self.state)
            .blocks
            .insert((header.chain_id.clone(), header.seq), header.clone());
    }

    pub(crate) fn echo_claims_for_tests(&self) {
        self.echo_claims
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn existing(entry: &Entry) -> ExistingPointer {
    match entry {
        Entry::Claimed(c) => ExistingPointer {
            state: PointerState::Claimed,
            block_id: c.block_id.clone(),
            file_key: c.file_key.clone(),
            content_mac: c.content_mac.clone(),
            claimed_at: c.claimed_at,
        },
        Entry::Indexed(p) => ExistingPointer {
            state: PointerState::Indexed,
            block_id: p.block_id.clone(),
            file_key: p.file_key.clone(),
            content_mac: p.content_mac.clone(),
            claimed_at: p.received_at,
        },
    }
}

impl MemoryIndex {
    /// Every indexed pointer (for tests that count entries).
    pub fn pointers(&self) -> Vec<Pointer> {
        lock(&self.state)
            .records
            .values()
            .filter_map(|e| match e {
                Entry::Indexed(p) => Some(p.clone()),
                Entry::Claimed(_) => None,
            })
            .collect()
    }

    /// Indexed pointers matching `keep`, oldest first, as the GSI timelines return them.
    fn timeline(&self, keep: impl Fn(&Pointer) -> bool) -> Vec<Pointer> {
        let mut out: Vec<Pointer> = lock(&self.state)
            .records
            .values()
            .filter_map(|e| match e {
                Entry::Indexed(p) if keep(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| (a.occurred_at, &a.record_id).cmp(&(b.occurred_at, &b.record_id)));
        out
    }

    pub fn manifest_entries(&self) -> Vec<ManifestEntry> {
        lock(&self.state).manifest.values().cloned().collect()
    }
}

impl JournalIndex for MemoryIndex {
    async fn claim(&self, claims: &[Claim]) -> Result<Vec<ClaimResult>, PortError> {
        let mut s = lock(&self.state);
        Ok(claims
            .iter()
            .map(|c| {
                let key = (c.tenant_id.clone(), c.record_id.clone());
                match s.records.get(&key) {
                    Some(e) => ClaimResult::Existing(existing(e)),
                    None => {
                        s.records.insert(key, Entry::Claimed(c.clone()));
                        #[cfg(test)]
                        if self.echo_claims.load(std::sync::atomic::Ordering::SeqCst) {
                            return ClaimResult::Existing(existing(&Entry::Claimed(c.clone())));
                        }
                        ClaimResult::Won
                    }
                }
            })
            .collect())
    }

    async fn take_over(&self, claim: &Claim, from_block_id: &str) -> Result<bool, PortError> {
        let mut s = lock(&self.state);
        let key = (claim.tenant_id.clone(), claim.record_id.clone());
        match s.records.get(&key) {
            Some(Entry::Claimed(c))
                if c.block_id == from_block_id || c.block_id == claim.block_id =>
            {
                s.records.insert(key, Entry::Claimed(claim.clone()));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn put_manifest_pending(&self, entry: &ManifestEntry) -> Result<bool, PortError> {
        let mut s = lock(&self.state);
        let key = (entry.tenant_id.clone(), entry.file_key.clone());
        if let Some(e) = s.manifest.get(&key) {
            return Ok(e.state == FileState::Pending && e.block_id == entry.block_id);
        }
        s.manifest.insert(key, entry.clone());
        Ok(true)
    }

    async fn get_manifest(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> Result<Option<ManifestEntry>, PortError> {
        let key = (tenant_id.to_string(), file_key.to_string());
        Ok(lock(&self.state).manifest.get(&key).cloned())
    }

    async fn abandon_manifest(
        &self,
        tenant_id: &str,
        file_key: &str,
        block_id: &str,
        now: Timestamp,
    ) -> Result<AbandonOutcome, PortError> {
        let mut s = lock(&self.state);
        let key = (tenant_id.to_string(), file_key.to_string());
        match s.manifest.get_mut(&key) {
            Some(e) if matches!(e.state, FileState::Pending | FileState::Abandoned) => {
                e.state = FileState::Abandoned;
                Ok(AbandonOutcome::Abandoned)
            }
            Some(e) => Ok(AbandonOutcome::AlreadyChained(Box::new(e.clone()))),
            None => {
                s.manifest.insert(
                    key,
                    ManifestEntry {
                        tenant_id: tenant_id.to_string(),
                        file_key: file_key.to_string(),
                        block_id: block_id.to_string(),
                        state: FileState::Abandoned,
                        seq: None,
                        rows: 0,
                        size: 0,
                        sha256: String::new(),
                        first_occurred_at: now,
                        last_occurred_at: now,
                        created_at: now,
                        last_seq: None,
                        merged_from: Vec::new(),
                        compacted_into: None,
                        delete_after: None,
                        risk_tiers: Vec::new(),
                        storage_class: None,
                        tombstone: None,
                        erasure_receipts: Vec::new(),
                    },
                );
                Ok(AbandonOutcome::Abandoned)
            }
        }
    }

    async fn chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>, PortError> {
        Ok(lock(&self.state).heads.get(chain_id).cloned())
    }

    async fn append_block(&self, header: &BlockHeader) -> Result<AppendOutcome, PortError> {
        let mut s = lock(&self.state);
        let mkey = (header.tenant_id.clone(), header.file_key.clone());
        if s.manifest.get(&mkey).map(|e| e.state) != Some(FileState::Pending) {
            return Ok(AppendOutcome::Fenced);
        }
        let head_ok = match s.heads.get(&header.chain_id) {
            None => header.seq == 0,
            Some(h) => h.seq + 1 == header.seq,
        };
        if !head_ok
            || s.blocks
                .contains_key(&(header.chain_id.clone(), header.seq))
        {
            return Ok(AppendOutcome::HeadMoved);
        }
        s.heads
            .insert(header.chain_id.clone(), ChainHead::of(header));
        s.blocks
            .insert((header.chain_id.clone(), header.seq), header.clone());
        if let Some(e) = s.manifest.get_mut(&mkey) {
            e.state = FileState::Chained;
            e.seq = Some(header.seq);
        }
        Ok(AppendOutcome::Appended)
    }

    async fn write_pointers(&self, pointers: &[Pointer]) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        for p in pointers {
            if let Some(decision_id) = p.refers_to.as_ref().filter(|d| !d.is_empty()) {
                s.links.insert((
                    p.tenant_id.clone(),
                    decision_id.clone(),
                    p.occurred_at,
                    p.record_id.clone(),
                ));
            }
            s.records.insert(
                (p.tenant_id.clone(), p.record_id.clone()),
                Entry::Indexed(p.clone()),
            );
        }
        Ok(())
    }

    async fn mark_manifest_live(&self, tenant_id: &str, file_key: &str) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        let key = (tenant_id.to_string(), file_key.to_string());
        match s.manifest.get_mut(&key) {
            Some(e) if matches!(e.state, FileState::Chained | FileState::Live) => {
                e.state = FileState::Live;
                Ok(())
            }
            other => Err(PortError::permanent(
                "mark manifest live",
                format!("{file_key}: state {:?}", other.map(|e| e.state)),
            )),
        }
    }

    async fn get_pointer(
        &self,
        tenant_id: &str,
        record_id: &str,
    ) -> Result<Option<IndexEntry>, PortError> {
        let s = lock(&self.state);
        Ok(s.records
            .get(&(tenant_id.to_string(), record_id.to_string()))
            .map(|e| match e {
                Entry::Claimed(_) => IndexEntry::Claimed(existing(e)),
                Entry::Indexed(p) => IndexEntry::Indexed(p.clone()),
            }))
    }

    async fn get_pointers(
        &self,
        tenant_id: &str,
        record_ids: &[String],
    ) -> Result<Vec<Pointer>, PortError> {
        let s = lock(&self.state);
        let unique: std::collections::BTreeSet<&String> = record_ids.iter().collect();
        Ok(unique
            .into_iter()
            .filter_map(
                |id| match s.records.get(&(tenant_id.to_string(), id.clone())) {
                    Some(Entry::Indexed(p)) => Some(p.clone()),
                    _ => None,
                },
            )
            .collect())
    }

    async fn get_with_links(
        &self,
        tenant_id: &str,
        record_id: &str,
    ) -> Result<(Option<IndexEntry>, Vec<Pointer>), PortError> {
        let entry = self.get_pointer(tenant_id, record_id).await?;
        let links = self.query_refs(tenant_id, record_id).await?;
        Ok((entry, links))
    }

    async fn query_subject(
        &self,
        tenant_id: &str,
        subject_ref: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Pointer>, PortError> {
        Ok(self.timeline(|p| {
            p.tenant_id == tenant_id
                && p.subject_ref.as_deref() == Some(subject_ref)
                && p.occurred_at >= from
                && p.occurred_at < to
        }))
    }

    async fn query_model(
        &self,
        tenant_id: &str,
        model_name: &str,
        model_version: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Pointer>, PortError> {
        Ok(self.timeline(|p| {
            p.tenant_id == tenant_id
                && p.model_name.as_deref() == Some(model_name)
                && p.model_version.as_deref() == Some(model_version)
                && p.occurred_at >= from
                && p.occurred_at < to
        }))
    }

    async fn list_chain_heads(&self) -> Result<Vec<ChainHead>, PortError> {
        let mut heads: Vec<ChainHead> = lock(&self.state).heads.values().cloned().collect();
        heads.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
        Ok(heads)
    }

    async fn query_access(
        &self,
        tenant_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Pointer>, PortError> {
        Ok(self.timeline(|p| {
            p.tenant_id == tenant_id
                && p.kind == "access"
                && p.occurred_at >= from
                && p.occurred_at < to
        }))
    }

    async fn query_refs(
        &self,
        tenant_id: &str,
        decision_id: &str,
    ) -> Result<Vec<Pointer>, PortError> {
        let s = lock(&self.state);
        let (t, d) = (tenant_id.to_string(), decision_id.to_string());
        Ok(s.links
            .range((t.clone(), d.clone(), Timestamp::MIN, String::new())..)
            .take_while(|(lt, ld, _, _)| *lt == t && *ld == d)
            .filter_map(
                |(_, _, _, id)| match s.records.get(&(t.clone(), id.clone())) {
                    Some(Entry::Indexed(p)) => Some(p.clone()),
                    _ => None,
                },
            )
            .collect())
    }

    async fn put_manifest(&self, entry: &ManifestEntry) -> Result<(), PortError> {
        lock(&self.state).manifest.insert(
            (entry.tenant_id.clone(), entry.file_key.clone()),
            entry.clone(),
        );
        Ok(())
    }

    async fn mark_manifest_compacted(
        &self,
        tenant_id: &str,
        file_key: &str,
        into: &str,
        delete_after: Timestamp,
    ) -> Result<bool, PortError> {
        let mut s = lock(&self.state);
        let key = (tenant_id.to_string(), file_key.to_string());
        match s.manifest.get_mut(&key) {
            Some(e)
                if e.state == FileState::Live
                    || (e.state == FileState::Compacted
                        && e.compacted_into.as_deref() == Some(into)) =>
            {
                e.state = FileState::Compacted;
                e.compacted_into = Some(into.to_string());
                e.delete_after = Some(delete_after);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_manifest_deleted(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        let key = (tenant_id.to_string(), file_key.to_string());
        match s.manifest.get_mut(&key) {
            Some(e) if matches!(e.state, FileState::Compacted | FileState::Deleted) => {
                e.state = FileState::Deleted;
                Ok(())
            }
            other => Err(PortError::permanent(
                "mark manifest deleted",
                format!("{file_key}: state {:?}", other.map(|e| e.state)),
            )),
        }
    }

    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, PortError> {
        let mut s = lock(&self.state);
        match s.leases.get(name) {
            Some((holder, expires)) if holder != owner && *expires > now => Ok(false),
            _ => {
                s.leases
                    .insert(name.to_string(), (owner.to_string(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        if s.leases
            .get(name)
            .is_some_and(|(holder, _)| holder == owner)
        {
            s.leases.remove(name);
        }
        Ok(())
    }

    async fn list_blocks_between(
        &self,
        chain_id: &str,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<BlockHeader>, PortError> {
        if from_seq > to_seq {
            return Ok(Vec::new());
        }
        let s = lock(&self.state);
        Ok(s.blocks
            .range((chain_id.to_string(), from_seq)..=(chain_id.to_string(), to_seq))
            .map(|(_, h)| h.clone())
            .collect())
    }

    async fn list_blocks(&self, chain_id: &str) -> Result<Vec<BlockHeader>, PortError> {
        let s = lock(&self.state);
        Ok(s.blocks
            .range((chain_id.to_string(), 0)..=(chain_id.to_string(), u64::MAX))
            .map(|(_, h)| h.clone())
            .collect())
    }

    async fn delete_entries(&self, pointers: &[Pointer]) -> Result<(), PortError> {
        let mut s = lock(&self.state);
        for p in pointers {
            s.records
                .remove(&(p.tenant_id.clone(), p.record_id.clone()));
            if let Some(decision_id) = &p.refers_to {
                s.links.remove(&(
                    p.tenant_id.clone(),
                    decision_id.clone(),
                    p.occurred_at,
                    p.record_id.clone(),
                ));
            }
        }
        Ok(())
    }

    async fn list_manifest(
        &self,
        tenant_id: &str,
        date: &str,
    ) -> Result<Vec<ManifestEntry>, PortError> {
        let s = lock(&self.state);
        Ok(s.manifest
            .values()
            .filter(|e| {
                e.tenant_id == tenant_id
                    && crate::layout::date_of_file_key(&e.file_key) == Some(date)
            })
            .cloned()
            .collect())
    }

    async fn put_suppression(
        &self,
        tenant_id: &str,
        suppression: &Suppression,
    ) -> Result<(), PortError> {
        lock(&self.state).suppressions.insert(
            (tenant_id.to_string(), suppression.token.clone()),
            suppression.clone(),
        );
        Ok(())
    }

    async fn suppressions(
        &self,
        tenant_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Suppression>, PortError> {
        let s = lock(&self.state);
        Ok(s.suppressions
            .iter()
            .filter(|((t, _), v)| t == tenant_id && v.expires_at > now)
            .map(|(_, v)| v.clone())
            .collect())
    }
}
