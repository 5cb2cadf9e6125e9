//! Vouching for one block with one signed checkpoint, for lookups.
//!
//! The checkpoint that lists block `k` is the first one whose `seq` reaches `k`; its locator
//! (`by-seq/<seq>-<number>`) is the first key after [`locator_search_after`]`(k)`, so one list
//! request and one GET find it without reading the chain. Checkpoints are write-once, so a
//! checked one (signature, list digest) is cached for the life of the process: a warm replay
//! function pays nothing per lookup for it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::document::{
    checkpoint_key, locator_prefix, locator_search_after, parse_locator_key, SignedCheckpoint,
    SIGNING_ALGORITHM,
};
use super::signer::CheckpointPublicKey;
use super::store::CheckpointStore;
use crate::ports::PortError;
use crate::timestamp::Timestamp;

/// The checkpoint a proof rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VouchingCheckpoint {
    pub number: u64,
    /// The blocks it lists: `first_seq..=seq`.
    pub first_seq: u64,
    pub seq: u64,
    pub signed_at: Timestamp,
    pub key_id: String,
    /// The signature verified with the configured public key (false when none is configured).
    pub signature_verified: bool,
}

/// What the checkpoints say about one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vouch {
    /// A validly signed checkpoint lists the block with this hash.
    Listed(VouchingCheckpoint),
    /// The checkpoint that lists the block's seq lists another hash.
    Contradicted {
        checkpoint: VouchingCheckpoint,
        listed: String,
    },
    /// No checkpoint reaches the block yet (it is newer than the newest checkpoint).
    NotYet,
    /// The checkpoint found for the block cannot vouch (unreadable, bad signature, altered
    /// list, or it does not list the block).
    Unusable { key: String, reason: String },
}

/// Something that can vouch for a block's hash; `requests` counts the storage requests made.
pub trait BlockWitness: Send + Sync {
    fn vouch(
        &self,
        tenant_id: &str,
        seq: u64,
        block_hash: &str,
        requests: &mut u32,
    ) -> impl Future<Output = Result<Vouch, PortError>> + Send;
}

/// No checkpoints consulted: every block is [`Vouch::NotYet`], so proofs rest on the chain.
pub struct NoWitness;

impl BlockWitness for NoWitness {
    async fn vouch(&self, _: &str, _: u64, _: &str, _: &mut u32) -> Result<Vouch, PortError> {
        Ok(Vouch::NotYet)
    }
}

/// A checkpoint as checked once: its list, and why it cannot vouch if it cannot.
#[derive(Debug)]
struct Checked {
    key: String,
    /// None when the object is not a readable checkpoint.
    vouching: Option<VouchingCheckpoint>,
    hashes: Vec<String>,
    unusable: Option<String>,
}

/// A tenant's checked checkpoints by `(seq, number)`.
type ByPosition = BTreeMap<(u64, u64), Arc<Checked>>;

/// Checked checkpoints by tenant and the last seq they list (they never change once written),
/// and the public key they were checked with.
#[derive(Debug, Default)]
pub struct WitnessCache {
    /// Keyed by `(seq, number)`: a re-signed unchanged head has the seq of the one before.
    by_tenant: Mutex<HashMap<String, ByPosition>>,
    /// The newest locator key seen per tenant: later listings start after it.
    newest_locator: Mutex<HashMap<String, String>>,
    key: Mutex<Option<Vec<u8>>>,
}

impl WitnessCache {
    /// Forgets everything checked with another key than `der`.
    fn keep_only_for(&self, der: Option<&[u8]>) {
        let mut key = self.key.lock().unwrap_or_else(|e| e.into_inner());
        if key.as_deref() != der {
            *key = der.map(<[u8]>::to_vec);
            self.by_tenant
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }

    fn newest_locator(&self, tenant_id: &str) -> Option<String> {
        let map = self
            .newest_locator
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.get(tenant_id).cloned()
    }

    fn set_newest_locator(&self, tenant_id: &str, key: String) {
        let mut map = self
            .newest_locator
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.insert(tenant_id.to_string(), key);
    }

    fn find(&self, tenant_id: &str, seq: u64) -> Option<Arc<Checked>> {
        let map = self.by_tenant.lock().unwrap_or_else(|e| e.into_inner());
        // Lists never overlap, so the first checkpoint reaching `seq` is the only one that
        // can list it.
        let (_, c) = map.get(tenant_id)?.range((seq, 0)..).next()?;
        (c.vouching.as_ref()?.first_seq <= seq).then(|| c.clone())
    }

    fn get(&self, tenant_id: &str, seq: u64, number: u64) -> Option<Arc<Checked>> {
        let map = self.by_tenant.lock().unwrap_or_else(|e| e.into_inner());
        map.get(tenant_id)?.get(&(seq, number)).cloned()
    }

    fn insert(&self, tenant_id: &str, checked: Arc<Checked>) {
        let Some(at) = checked.vouching.as_ref().map(|v| (v.seq, v.number)) else {
            return;
        };
        let mut map = self.by_tenant.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(tenant_id.to_string())
            .or_default()
            .insert(at, checked);
    }
}

/// Vouches from the stored checkpoints, checking each with the public key once.
pub struct CheckpointWitness<'a, S> {
    store: &'a S,
    key: Option<CheckpointPublicKey>,
    cache: &'a WitnessCache,
}

impl<'a, S: CheckpointStore> CheckpointWitness<'a, S> {
    /// `public_key_der`: the signing key's public half; without it signatures are not checked
    /// and every vouch says so.
    pub fn new(store: &'a S, public_key_der: Option<&[u8]>, cache: &'a WitnessCache) -> Self {
        cache.keep_only_for(public_key_der);
        Self {
            store,
            key: public_key_der.and_then(|der| CheckpointPublicKey::from_der(der).ok()),
            cache,
        }
    }

    /// The newest checkpoint of a tenant, if it can vouch (a validly signed one, when a key is
    /// configured). Listing starts after the newest locator seen before, so a warm process
    /// pays one list request that usually returns nothing.
    pub async fn newest(
        &self,
        tenant_id: &str,
        requests: &mut u32,
    ) -> Result<Option<VouchingCheckpoint>, PortError> {
        let prefix = locator_prefix(tenant_id);
        let mut newest = self.cache.newest_locator(tenant_id);
        match &newest {
            None => {
                *requests += 1;
                newest = self.store.list_keys(&prefix).await?.pop();
            }
            Some(known) => {
                let mut after = known.clone();
                loop {
                    *requests += 1;
                    match self.store.first_key_after(&prefix, &after).await? {
                        Some(k) => after = k,
                        None => break,
                    }
                }
                newest = Some(after);
            }
        }
        let Some(locator) = newest else {
            return Ok(None);
        };
        self.cache.set_newest_locator(tenant_id, locator.clone());
        let Some(checked) = self.at_locator(tenant_id, &locator, requests).await? else {
            return Ok(None);
        };
        Ok(match (&checked.vouching, &checked.unusable) {
            (Some(v), None) => Some(v.clone()),
            _ => None,
        })
    }

    async fn load(
        &self,
        tenant_id: &str,
        seq: u64,
        requests: &mut u32,
    ) -> Result<Option<Arc<Checked>>, PortError> {
        if let Some(c) = self.cache.find(tenant_id, seq) {
            return Ok(Some(c));
        }
        *requests += 1;
        let Some(locator) = self
            .store
            .first_key_after(
                &locator_prefix(tenant_id),
                &locator_search_after(tenant_id, seq),
            )
            .await?
        else {
            return Ok(None);
        };
        self.at_locator(tenant_id, &locator, requests).await
    }

    /// The checkpoint a locator names: from the cache, or read and checked (one GET).
    async fn at_locator(
        &self,
        tenant_id: &str,
        locator: &str,
        requests: &mut u32,
    ) -> Result<Option<Arc<Checked>>, PortError> {
        let Some((seq, number)) = parse_locator_key(tenant_id, locator) else {
            return Ok(None);
        };
        if let Some(c) = self.cache.get(tenant_id, seq, number) {
            return Ok(Some(c));
        }
        let key = checkpoint_key(tenant_id, number);
        *requests += 1;
        let Some(bytes) = self.store.get(&key).await? else {
            return Ok(Some(Arc::new(unusable_stub(
                key,
                "the locator names it but it is gone",
            ))));
        };
        let checked = match SignedCheckpoint::from_bytes(&bytes) {
            Err(e) => unusable_stub(key, &format!("unreadable: {e}")),
            Ok(s) => self.check(key, tenant_id, s),
        };
        let checked = Arc::new(checked);
        if checked.unusable.is_none() {
            self.cache.insert(tenant_id, checked.clone());
        }
        Ok(Some(checked))
    }

    fn check(&self, key: String, tenant_id: &str, s: SignedCheckpoint) -> Checked {
        let c = &s.checkpoint;
        let mut unusable = None;
        if c.key() != key || c.tenant_id != tenant_id {
            unusable = Some(format!(
                "it holds checkpoint {} of tenant {}",
                c.number, c.tenant_id
            ));
        }
        let verified = match &self.key {
            None => false,
            Some(k) => {
                let fault = if s.algorithm != SIGNING_ALGORITHM {
                    Some(format!("algorithm {:?}", s.algorithm))
                } else {
                    match s.signature_der() {
                        Err(_) => Some("signature is not base64".to_string()),
                        Ok(der) => k
                            .verify_digest(&c.digest(), &der)
                            .err()
                            .map(|e| e.to_string()),
                    }
                };
                if let Some(f) = fault {
                    unusable.get_or_insert(format!("bad signature: {f}"));
                }
                unusable.is_none()
            }
        };
        if let Some(f) = s.list_fault() {
            unusable.get_or_insert(format!("altered block list: {f}"));
        }
        Checked {
            key,
            vouching: Some(VouchingCheckpoint {
                number: c.number,
                first_seq: c.first_seq,
                seq: c.seq,
                signed_at: c.signed_at,
                key_id: c.key_id.clone(),
                signature_verified: verified,
            }),
            hashes: s.block_hashes,
            unusable,
        }
    }
}

fn unusable_stub(key: String, reason: &str) -> Checked {
    Checked {
        key,
        vouching: None,
        hashes: Vec::new(),
        unusable: Some(reason.to_string()),
    }
}

impl<S: CheckpointStore> BlockWitness for CheckpointWitness<'_, S> {
    async fn vouch(
        &self,
        tenant_id: &str,
        seq: u64,
        block_hash: &str,
        requests: &mut u32,
    ) -> Result<Vouch, PortError> {
        let Some(c) = self.load(tenant_id, seq, requests).await? else {
            return Ok(Vouch::NotYet);
        };
        let (Some(vouching), None) = (&c.vouching, &c.unusable) else {
            return Ok(Vouch::Unusable {
                key: c.key.clone(),
                reason: c.unusable.clone().unwrap_or_default(),
            });
        };
        let listed = seq
            .checked_sub(vouching.first_seq)
            .and_then(|i| c.hashes.get(i as usize));
        Ok(match listed {
            None => Vouch::Unusable {
                key: c.key.clone(),
                reason: format!(
                    "it lists blocks {}..={}, not block {seq} (the checkpoint before it has no \
                     locator)",
                    vouching.first_seq, vouching.seq
                ),
            },
            Some(h) if h == block_hash => Vouch::Listed(vouching.clone()),
            Some(h) => Vouch::Contradicted {
                checkpoint: vouching.clone(),
                listed: h.clone(),
            },
        })
    }
}
