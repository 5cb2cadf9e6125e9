//! Where policy versions are kept: one write-once object per version
//! (`retention/policy/v0000000003.json`), so every version that was ever in force stays
//! readable, and the newest is the one in force.

use bytes::Bytes;

use super::policy::{HoldScope, LegalHold, PolicyError, RetentionPolicy};
use crate::checkpoint::CheckpointStore;
use crate::keys::MasterKey;
use crate::ports::PortError;
use crate::timestamp::Timestamp;

pub const POLICY_PREFIX: &str = "retention/policy/";

pub fn policy_key(version: u64) -> String {
    format!("{POLICY_PREFIX}v{version:010}.json")
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyStoreError {
    #[error(transparent)]
    Port(#[from] PortError),
    /// The stored version in force does not validate: nothing is applied until it is replaced.
    #[error("policy {key} in force is invalid, nothing is applied: {error}")]
    StoredInvalid { key: String, error: PolicyError },
    #[error(transparent)]
    Rejected(#[from] PolicyError),
    #[error("policy version {got} cannot follow version {current}: versions go up by one")]
    Version { current: u64, got: u64 },
    #[error("policy version {version} was published by someone else meanwhile; read it and retry")]
    Raced { version: u64 },
    #[error("no retention policy is published yet")]
    NoPolicy,
    #[error("legal hold {0:?} does not exist")]
    UnknownHold(String),
}

/// The policy in force (the highest version), if any.
pub async fn current_policy<C: CheckpointStore>(
    store: &C,
) -> Result<Option<(String, RetentionPolicy)>, PolicyStoreError> {
    let keys = store.list_keys(POLICY_PREFIX).await?;
    let Some(key) = keys.into_iter().rfind(|k| k.ends_with(".json")) else {
        return Ok(None);
    };
    let bytes = store
        .get(&key)
        .await?
        .ok_or_else(|| PortError::transient("read policy", format!("{key} listed but gone")))?;
    let policy =
        RetentionPolicy::parse(&bytes).map_err(|error| PolicyStoreError::StoredInvalid {
            key: key.clone(),
            error,
        })?;
    if policy_key(policy.version) != key {
        return Err(PolicyStoreError::StoredInvalid {
            key,
            error: PolicyError {
                path: "version".into(),
                reason: format!(
                    "{} does not match the key it is stored under",
                    policy.version
                ),
            },
        });
    }
    Ok(Some((key, policy)))
}

/// Validates `policy` whole and stores it as the next version; an invalid document, a version
/// that does not follow the one in force, or a concurrent publisher leaves everything as it was.
pub async fn publish_policy<C: CheckpointStore>(
    store: &C,
    policy: &RetentionPolicy,
) -> Result<String, PolicyStoreError> {
    policy.validate()?;
    let current = match current_policy(store).await {
        Ok(c) => c.map_or(0, |(_, p)| p.version),
        // A broken version in force is replaced by a valid successor.
        Err(PolicyStoreError::StoredInvalid { key, .. }) => key
            .strip_prefix(POLICY_PREFIX)
            .and_then(|k| k.strip_prefix('v'))
            .and_then(|k| k.strip_suffix(".json"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        Err(e) => return Err(e),
    };
    if policy.version != current + 1 {
        return Err(PolicyStoreError::Version {
            current,
            got: policy.version,
        });
    }
    let key = policy_key(policy.version);
    if !store
        .put_if_absent(&key, Bytes::from(policy.to_bytes()))
        .await?
    {
        return Err(PolicyStoreError::Raced {
            version: policy.version,
        });
    }
    Ok(key)
}

/// A legal hold as asked for: a subject is named by its raw id, which is turned into the
/// tenant's subject ref here and never stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldRequest {
    pub id: String,
    pub tenant_id: String,
    pub reason: String,
    pub subject_id: Option<String>,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// The policy in force with `hold` added, as the next version (not yet published).
pub fn with_hold(
    policy: &RetentionPolicy,
    hold: &HoldRequest,
    master: &MasterKey,
    now: Timestamp,
) -> Result<RetentionPolicy, PolicyError> {
    let mut next = policy.clone();
    next.version += 1;
    next.updated_at = now;
    next.legal_holds.push(LegalHold {
        id: hold.id.clone(),
        tenant_id: hold.tenant_id.clone(),
        reason: hold.reason.clone(),
        placed_at: now,
        scope: HoldScope {
            subject_ref: hold
                .subject_id
                .as_deref()
                .map(|s| master.tenant_keys(&hold.tenant_id).subject_ref(s)),
            model_name: hold.model_name.clone(),
            model_version: hold.model_version.clone(),
            from: hold.from,
            to: hold.to,
        },
    });
    next.validate()?;
    Ok(next)
}

/// The policy in force without hold `id`, as the next version.
pub fn without_hold(
    policy: &RetentionPolicy,
    id: &str,
    now: Timestamp,
) -> Result<RetentionPolicy, PolicyStoreError> {
    let mut next = policy.clone();
    let before = next.legal_holds.len();
    next.legal_holds.retain(|h| h.id != id);
    if next.legal_holds.len() == before {
        return Err(PolicyStoreError::UnknownHold(id.to_string()));
    }
    next.version += 1;
    next.updated_at = now;
    Ok(next)
}
