//! Writing the next checkpoint of a tenant (run on a schedule, at least hourly).

use bytes::Bytes;

use super::document::{
    blocks_digest, checkpoint_prefix, locator_key, number_of_checkpoint_key, Checkpoint,
    SignedCheckpoint, CHECKPOINT_VERSION, GENESIS_CHECKPOINT_HASH,
};
use super::signer::CheckpointSigner;
use super::store::CheckpointStore;
use crate::ports::{JournalIndex, PortError};
use crate::timestamp::Timestamp;

/// One hour: the longest a tenant's newest checkpoint may age.
pub const DEFAULT_MAX_INTERVAL_MS: i64 = 3_600_000;
/// Five minutes of slack for schedule jitter and clock skew.
pub const DEFAULT_GRACE_MS: i64 = 300_000;
/// Blocks one checkpoint lists at most (a list of 1,024 is ~67 KB); a run that finds more
/// writes several checkpoints.
pub const DEFAULT_MAX_BLOCKS: u64 = 1024;

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
    /// Blocks one checkpoint lists at most.
    pub max_blocks: u64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            max_interval_ms: DEFAULT_MAX_INTERVAL_MS,
            grace_ms: DEFAULT_GRACE_MS,
            max_blocks: DEFAULT_MAX_BLOCKS,
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
    /// The blocks to list do not form an unbroken chain from the newest checkpoint (a block
    /// is missing or a link is broken): the writer refuses to sign over them.
    #[error("tenant {tenant_id}: cannot list blocks {from_seq}..={to_seq}: {reason}")]
    BrokenChain {
        tenant_id: String,
        from_seq: u64,
        to_seq: u64,
        reason: String,
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
    let (number, prev_checkpoint_sha256, prev_hash, first_seq) = match &latest {
        None => (
            0,
            GENESIS_CHECKPOINT_HASH.to_string(),
            crate::integrity::GENESIS_PREV_HASH.to_string(),
            0,
        ),
        Some((_, signed)) => {
            let last = &signed.checkpoint;
            // A run that died between the checkpoint and its locator left it unfindable by seq.
            store
                .put_if_absent(&locator_key(tenant_id, last.seq, last.number), Bytes::new())
                .await?;
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
            (
                last.number + 1,
                last.sha256_hex(),
                last.block_hash.clone(),
                last.seq + 1,
            )
        }
    };
    let seq = head
        .seq
        .min(first_seq.saturating_add(policy.max_blocks.max(1) - 1));
    let block_hashes = if first_seq > seq {
        Vec::new()
    } else {
        listed_blocks(index, tenant_id, first_seq, seq, &prev_hash).await?
    };
    let block_hash = block_hashes.last().cloned().unwrap_or(prev_hash);
    if seq == head.seq && block_hash != head.block_hash {
        return Err(CheckpointError::BrokenChain {
            tenant_id: tenant_id.to_string(),
            from_seq: first_seq,
            to_seq: seq,
            reason: format!(
                "block {seq} hashes to {block_hash}, the chain head names {}",
                head.block_hash
            ),
        });
    }
    let checkpoint = Checkpoint {
        version: CHECKPOINT_VERSION,
        tenant_id: tenant_id.to_string(),
        chain_id: head.chain_id.clone(),
        number,
        seq,
        block_hash,
        first_seq,
        blocks_sha256: blocks_digest(&block_hashes).expect("block hashes are hex SHA-256"),
        signed_at: now,
        prev_checkpoint_sha256,
        key_id: signer.key_id().to_string(),
    };
    let signature = signer.sign(checkpoint.canonical_bytes()).await?;
    let key = checkpoint.key();
    let body =
        Bytes::from(SignedCheckpoint::new(checkpoint.clone(), &signature, block_hashes).to_bytes());
    if !store.put_if_absent(&key, body).await? {
        return Ok(WriteOutcome::Raced { key, number });
    }
    store
        .put_if_absent(&locator_key(tenant_id, seq, number), Bytes::new())
        .await?;
    tracing::info!(tenant_id, number, seq, first_seq, %key, "checkpoint written");
    Ok(WriteOutcome::Written { key, checkpoint })
}

/// The block hashes of `from_seq..=to_seq`, checked to link from `prev_hash` one to the next.
async fn listed_blocks<I: JournalIndex>(
    index: &I,
    tenant_id: &str,
    from_seq: u64,
    to_seq: u64,
    prev_hash: &str,
) -> Result<Vec<String>, CheckpointError> {
    let broken = |reason: String| CheckpointError::BrokenChain {
        tenant_id: tenant_id.to_string(),
        from_seq,
        to_seq,
        reason,
    };
    let headers = index
        .list_blocks_between(tenant_id, from_seq, to_seq)
        .await?;
    let mut hashes = Vec::with_capacity(headers.len());
    let mut prev = prev_hash.to_string();
    for (expected_seq, h) in (from_seq..=to_seq).zip(headers.iter()) {
        if h.seq != expected_seq {
            return Err(broken(format!("block {expected_seq} is missing")));
        }
        if h.prev_hash != prev {
            return Err(broken(format!(
                "block {} names previous hash {}, the block before it hashes to {prev}",
                h.seq, h.prev_hash
            )));
        }
        prev = h.block_hash();
        hashes.push(prev.clone());
    }
    if hashes.len() as u64 != to_seq - from_seq + 1 {
        return Err(broken(format!(
            "the chain holds {} of the {} blocks",
            hashes.len(),
            to_seq - from_seq + 1
        )));
    }
    Ok(hashes)
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
        // A chain that grew by more than one list's worth gets several checkpoints; all but
        // the last are reported only through the last one's number.
        let mut outcome =
            write_checkpoint_with(index, store, signer, &tenant_id, now, policy).await;
        while let Ok(WriteOutcome::Written { checkpoint, .. }) = &outcome {
            if checkpoint.seq >= head.seq {
                break;
            }
            outcome = write_checkpoint_with(index, store, signer, &tenant_id, now, policy).await;
        }
        let run = |outcome: &str, number, seq, error| TenantRun {
            tenant_id: tenant_id.clone(),
            outcome: outcome.to_string(),
            number,
            seq,
            error,
        };
        runs.push(match outcome {
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
        });
    }
    Ok(runs)
}
