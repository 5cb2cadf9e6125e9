//! Writing the next checkpoint of a tenant (run on a schedule, at least hourly).

use bytes::Bytes;

use super::document::{
    checkpoint_prefix, number_of_checkpoint_key, Checkpoint, SignedCheckpoint, CHECKPOINT_VERSION,
    GENESIS_CHECKPOINT_HASH,
};
use super::signer::CheckpointSigner;
use super::store::CheckpointStore;
use crate::ports::{JournalIndex, PortError};
use crate::timestamp::Timestamp;

/// One hour: the longest a tenant's newest checkpoint may age.
pub const DEFAULT_MAX_INTERVAL_MS: i64 = 3_600_000;
/// Five minutes of slack for schedule jitter and clock skew.
pub const DEFAULT_GRACE_MS: i64 = 300_000;

/// How often checkpoints are due; the writer and the verifier share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// The newest checkpoint of a tenant is never older than this (plus `grace_ms`), and no
    /// two consecutive checkpoints with blocks appended between them are further apart.
    pub max_interval_ms: i64,
    /// Slack: the writer re-signs an unchanged head once it is `max_interval_ms - grace_ms`
    /// old (so a run scheduled every `max_interval_ms` that fires a little early still
    /// re-signs), and the verifier tolerates `max_interval_ms + grace_ms`.
    pub grace_ms: i64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            max_interval_ms: DEFAULT_MAX_INTERVAL_MS,
            grace_ms: DEFAULT_GRACE_MS,
        }
    }
}

impl CheckpointPolicy {
    /// The longest gap the verifier accepts.
    pub fn tolerance_ms(&self) -> i64 {
        self.max_interval_ms + self.grace_ms
    }

    /// Age at which the writer re-signs an unchanged head.
    pub fn refresh_after_ms(&self) -> i64 {
        (self.max_interval_ms - self.grace_ms).max(0)
    }
}

/// What [`write_checkpoint`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new checkpoint was signed and stored at `key`.
    Written { key: String, checkpoint: Checkpoint },
    /// The chain has not moved since the newest checkpoint and that one is recent enough.
    Unchanged { number: u64, seq: u64, age_ms: i64 },
    /// The chain has no blocks yet: nothing to sign.
    EmptyChain,
    /// Another writer stored checkpoint `number` first; nothing was overwritten.
    Raced { key: String, number: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Port(#[from] PortError),
    /// The newest stored checkpoint cannot be read: the writer will not chain onto it.
    #[error("checkpoint {key} is unreadable: {reason}")]
    Unreadable { key: String, reason: String },
    /// The chain no longer contains what the newest checkpoint signed (it was truncated or
    /// rewritten): the writer refuses to sign over it.
    #[error(
        "tenant {tenant_id}: the chain head (seq {head_seq}, {head_hash}) does not extend \
         checkpoint {number} (seq {checkpoint_seq}, {checkpoint_hash})"
    )]
    ChainDiverged {
        tenant_id: String,
        number: u64,
        checkpoint_seq: u64,
        checkpoint_hash: String,
        head_seq: u64,
        head_hash: String,
    },
    #[error(transparent)]
    PublicKey(#[from] super::signer::PublicKeyError),
}

/// The newest stored checkpoint of a tenant (highest number), with its key.
pub async fn latest_checkpoint<S: CheckpointStore>(
    store: &S,
    tenant_id: &str,
) -> Result<Option<(String, SignedCheckpoint)>, CheckpointError> {
    let keys = store.list_keys(&checkpoint_prefix(tenant_id)).await?;
    let Some(key) = keys
        .into_iter()
        .rev()
        .find(|k| number_of_checkpoint_key(tenant_id, k).is_some())
    else {
        return Ok(None);
    };
    let unreadable = |reason: String| CheckpointError::Unreadable {
        key: key.clone(),
        reason,
    };
    let bytes = store
        .get(&key)
        .await?
        .ok_or_else(|| unreadable("listed but gone".into()))?;
    let signed = SignedCheckpoint::from_bytes(&bytes).map_err(|e| unreadable(e.to_string()))?;
    if signed.checkpoint.key() != key {
        return Err(unreadable(format!(
            "it holds checkpoint {} of tenant {}",
            signed.checkpoint.number, signed.checkpoint.tenant_id
        )));
    }
    Ok(Some((key, signed)))
}

/// [`write_checkpoint_with`] under the default policy (1 h interval, 5 min grace).
pub async fn write_checkpoint<I, S, G>(
    index: &I,
    store: &S,
    signer: &G,
    tenant_id: &str,
    now: Timestamp,
) -> Result<WriteOutcome, CheckpointError>
where
    I: JournalIndex,
    S: CheckpointStore,
    G: CheckpointSigner,
{
    write_checkpoint_with(
        index,
        store,
        signer,
        tenant_id,
        now,
        &CheckpointPolicy::default(),
    )
    .await
}

/// Signs and stores the next checkpoint of `tenant_id`'s chain, unless the head is the one the
/// newest checkpoint already signed and that checkpoint is younger than
/// [`CheckpointPolicy::refresh_after_ms`]. The put is conditional: a checkpoint is never
/// overwritten, and of two concurrent writers one wins and the other reports
/// [`WriteOutcome::Raced`].
pub async fn write_checkpoint_with<I, S, G>(
    index: &I,
    store: &S,
    signer: &G,
    tenant_id: &str,
    now: Timestamp,
    policy: &CheckpointPolicy,
) -> Result<WriteOutcome, CheckpointError>
where
    I: JournalIndex,
    S: CheckpointStore,
    G: CheckpointSigner,
{
    let Some(head) = index.chain_head(tenant_id).await? else {
        return Ok(WriteOutcome::EmptyChain);
    };
    let latest = latest_checkpoint(store, tenant_id).await?;
    let (number, prev_checkpoint_sha256) = match &latest {
        None => (0, GENESIS_CHECKPOINT_HASH.to_string()),
        Some((_, signed)) => {
            let last = &signed.checkpoint;
            let same_head = last.seq == head.seq && last.block_hash == head.block_hash;
            if last.seq > head.seq || (last.seq == head.seq && !same_head) {
                return Err(CheckpointError::ChainDiverged {
                    tenant_id: tenant_id.to_string(),
                    number: last.number,
                    checkpoint_seq: last.seq,
                    checkpoint_hash: last.block_hash.clone(),
                    head_seq: head.seq,
                    head_hash: head.block_hash.clone(),
                });
            }
            let age_ms = now.millis() - last.signed_at.millis();
            if same_head && age_ms < policy.refresh_after_ms() {
                return Ok(WriteOutcome::Unchanged {
                    number: last.number,
                    seq: last.seq,
                    age_ms,
                });
            }
            (last.number + 1, last.sha256_hex())
        }
    };
    let checkpoint = Checkpoint {
        version: CHECKPOINT_VERSION,
        tenant_id: tenant_id.to_string(),
        chain_id: head.chain_id.clone(),
        number,
        seq: head.seq,
        block_hash: head.block_hash.clone(),
        signed_at: now,
        prev_checkpoint_sha256,
        key_id: signer.key_id().to_string(),
    };
    let signature = signer.sign(checkpoint.canonical_bytes()).await?;
    let key = checkpoint.key();
    let body = Bytes::from(SignedCheckpoint::new(checkpoint.clone(), &signature).to_bytes());
    if store.put_if_absent(&key, body).await? {
        tracing::info!(tenant_id, number, seq = head.seq, %key, "checkpoint written");
        Ok(WriteOutcome::Written { key, checkpoint })
    } else {
        Ok(WriteOutcome::Raced { key, number })
    }
}

/// What one scheduled run did for one tenant.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TenantRun {
    pub tenant_id: String,
    /// `written`, `unchanged`, `empty`, `raced` or `failed`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The scheduled run: a checkpoint for every chain that moved (or whose newest checkpoint is
/// due for a refresh). One tenant's failure does not stop the others; it is reported.
pub async fn write_all_checkpoints<I, S, G>(
    index: &I,
    store: &S,
    signer: &G,
    now: Timestamp,
    policy: &CheckpointPolicy,
) -> Result<Vec<TenantRun>, PortError>
where
    I: JournalIndex,
    S: CheckpointStore,
    G: CheckpointSigner,
{
    let mut runs = Vec::new();
    for head in index.list_chain_heads().await? {
        let tenant_id = head.chain_id;
        let run = |outcome: &str, number, seq, error| TenantRun {
            tenant_id: tenant_id.clone(),
            outcome: outcome.to_string(),
            number,
            seq,
            error,
        };
        runs.push(
            match write_checkpoint_with(index, store, signer, &tenant_id, now, policy).await {
                Ok(WriteOutcome::Written { checkpoint, .. }) => run(
                    "written",
                    Some(checkpoint.number),
                    Some(checkpoint.seq),
                    None,
                ),
                Ok(WriteOutcome::Unchanged { number, seq, .. }) => {
                    run("unchanged", Some(number), Some(seq), None)
                }
                Ok(WriteOutcome::EmptyChain) => run("empty", None, None, None),
                Ok(WriteOutcome::Raced { number, .. }) => run("raced", Some(number), None, None),
                Err(e) => run("failed", None, None, Some(e.to_string())),
            },
        );
    }
    Ok(runs)
}
