//! Offline verification of a tenant's checkpoints with only the public key.
//!
//! Every signature is checked; then the walk goes back from the newest checkpoint to the
//! first, following the `prev_checkpoint_sha256` links and the checkpoint numbers, so a gap of
//! any length (one deleted checkpoint, two consecutive ones, the first ones) is named with the
//! survivors on either side. Each validly signed checkpoint is compared with the chain, the
//! spacing of checkpoints is checked against the policy (a deleted newest checkpoint shows as
//! a stale newest one, or, once a later one is written, as an interval gap), and the newest one
//! must be recent.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::document::{
    checkpoint_prefix, locator_prefix, number_of_checkpoint_key, parse_locator_key,
    SignedCheckpoint, GENESIS_CHECKPOINT_HASH, SIGNING_ALGORITHM,
};
use super::signer::{CheckpointPublicKey, PublicKeyError};
use super::store::CheckpointStore;
use super::write::{CheckpointError, CheckpointPolicy};
use crate::integrity::{BlockHeader, ChainHead};
use crate::ports::{JournalIndex, PortError};
use crate::timestamp::Timestamp;

/// A checkpoint named in a fault: its number, the chain seq it signed and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    pub number: u64,
    pub seq: u64,
    pub signed_at: Timestamp,
}

impl fmt::Display for CheckpointRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checkpoint {} (seq {}, signed {})",
            self.number, self.seq, self.signed_at
        )
    }
}

/// One thing wrong with a tenant's checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum CheckpointFault {
    /// An object under the checkpoint prefix is not a readable checkpoint.
    UnreadableCheckpoint { key: String, reason: String },
    /// The object at `key` holds another checkpoint (copied or renamed).
    MisplacedCheckpoint {
        key: String,
        tenant_id: String,
        number: u64,
    },
    /// The signature does not verify with the public key: the document was altered after
    /// signing, or signed with another key.
    BadSignature {
        checkpoint: CheckpointRef,
        key_id: String,
        reason: String,
    },
    /// A checkpoint of another tenant or chain.
    ForeignCheckpoint {
        checkpoint: CheckpointRef,
        tenant_id: String,
        chain_id: String,
    },
    /// Two different documents claim the same checkpoint number.
    DuplicateCheckpoint { number: u64 },
    /// Checkpoints `from_number..=to_number` are gone: between `after` (None when the first
    /// ones are missing) and `before`.
    MissingCheckpoints {
        from_number: u64,
        to_number: u64,
        count: u64,
        after: Option<CheckpointRef>,
        before: CheckpointRef,
    },
    /// `checkpoint.prev_checkpoint_sha256` is not the hash of the checkpoint before it (one of
    /// the two was replaced by another validly signed document).
    BrokenCheckpointLink {
        checkpoint: CheckpointRef,
        expected_prev: String,
        found_prev: String,
    },
    /// A checkpoint signs an older chain position or an earlier time than its predecessor.
    CheckpointRegressed {
        checkpoint: CheckpointRef,
        previous: CheckpointRef,
    },
    /// Blocks were appended between two validly signed checkpoints (consecutive among the
    /// valid ones) further apart than the policy allows.
    IntervalGap {
        after: CheckpointRef,
        before: CheckpointRef,
        gap_ms: i64,
        blocks_appended: u64,
    },
    /// The chain's block at the checkpoint's seq has another hash: the chain was rewritten
    /// after it was signed.
    ChainMismatch {
        checkpoint: CheckpointRef,
        checkpoint_hash: String,
        chain_hash: String,
    },
    /// The checkpoint signs a block beyond the chain head (the chain was truncated or its
    /// head rolled back).
    BeyondHead {
        checkpoint: CheckpointRef,
        head_seq: Option<u64>,
    },
    /// The chain has blocks but no validly signed checkpoint.
    NoCheckpoint { head_seq: u64 },
    /// The newest validly signed checkpoint is older than the policy allows (checkpointing
    /// stopped, or the newest checkpoints were deleted).
    StaleCheckpoint {
        checkpoint: CheckpointRef,
        age_ms: i64,
        blocks_since: u64,
    },
    /// A checkpoint dated after the verification time.
    FutureCheckpoint { checkpoint: CheckpointRef },
    /// The block list stored beside a validly signed checkpoint is not the one it signed
    /// (wrong length, or its digest differs from `blocks_sha256`).
    AlteredBlockList {
        checkpoint: CheckpointRef,
        reason: String,
    },
    /// A checkpoint's list does not start right after the checkpoint before it.
    BlockListGap {
        checkpoint: CheckpointRef,
        expected_first_seq: u64,
        first_seq: u64,
    },
    /// Blocks a checkpoint lists hash differently in the chain (rewritten after signing):
    /// `mismatches` of them, the first at `seq`.
    ListedBlockMismatch {
        checkpoint: CheckpointRef,
        seq: u64,
        listed: String,
        chain: String,
        mismatches: u64,
    },
    /// A checkpoint without its locator: lookups cannot find it by seq and fall back to
    /// reading the chain.
    MissingLocator { checkpoint: CheckpointRef },
    /// An object under the locator prefix that is not a locator key, or gives a validly
    /// signed checkpoint another seq (the checkpoint it was written for is gone).
    StrayLocator { key: String },
}

fn duration(ms: i64) -> String {
    let s = ms / 1000;
    format!("{}h{:02}m{:02}s", s / 3600, (s % 3600) / 60, s % 60)
}

impl fmt::Display for CheckpointFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CheckpointFault::*;
        match self {
            UnreadableCheckpoint { key, reason } => {
                write!(f, "{key} is not a readable checkpoint: {reason}")
            }
            MisplacedCheckpoint { key, tenant_id, number } => write!(
                f,
                "{key} holds checkpoint {number} of tenant {tenant_id} (copied or renamed)"
            ),
            BadSignature { checkpoint, key_id, reason } => write!(
                f,
                "bad signature on {checkpoint}, key {key_id}: {reason} (altered or signed by another key)"
            ),
            ForeignCheckpoint { checkpoint, tenant_id, chain_id } => write!(
                f,
                "{checkpoint} belongs to tenant {tenant_id}, chain {chain_id}"
            ),
            DuplicateCheckpoint { number } => {
                write!(f, "two different documents claim checkpoint number {number}")
            }
            MissingCheckpoints { count, after, before, .. } => {
                let what = if *count == 1 { "checkpoint" } else { "checkpoints" };
                match after {
                    Some(after) => write!(
                        f,
                        "{count} {what} missing between {after} and {before}",
                    ),
                    None => write!(f, "{count} {what} missing before the first stored one, {before}"),
                }
            }
            BrokenCheckpointLink { checkpoint, expected_prev, found_prev } => write!(
                f,
                "broken link at {checkpoint}: prev_checkpoint_sha256 {found_prev}, the checkpoint before it hashes to {expected_prev}"
            ),
            CheckpointRegressed { checkpoint, previous } => {
                write!(f, "{checkpoint} goes back behind {previous}")
            }
            IntervalGap { after, before, gap_ms, blocks_appended } => write!(
                f,
                "no validly signed checkpoint for {} between {after} and {before} while {blocks_appended} blocks were appended",
                duration(*gap_ms)
            ),
            ChainMismatch { checkpoint, checkpoint_hash, chain_hash } => write!(
                f,
                "{checkpoint} signed block hash {checkpoint_hash}, the chain's block at that seq hashes to {chain_hash} (chain rewritten)"
            ),
            BeyondHead { checkpoint, head_seq: Some(head) } => write!(
                f,
                "{checkpoint} signs a block beyond the chain head (seq {head}): chain truncated"
            ),
            BeyondHead { checkpoint, head_seq: None } => {
                write!(f, "{checkpoint} signs a block of a chain that has no head")
            }
            NoCheckpoint { head_seq } => write!(
                f,
                "the chain has blocks up to seq {head_seq} but no validly signed checkpoint"
            ),
            StaleCheckpoint { checkpoint, age_ms, blocks_since } => write!(
                f,
                "newest checkpoint is {checkpoint}, {} old ({blocks_since} blocks appended since)",
                duration(*age_ms)
            ),
            FutureCheckpoint { checkpoint } => {
                write!(f, "{checkpoint} is dated after the verification time")
            }
            AlteredBlockList { checkpoint, reason } => {
                write!(f, "altered block list of {checkpoint}: {reason}")
            }
            BlockListGap { checkpoint, expected_first_seq, first_seq } => write!(
                f,
                "{checkpoint} lists blocks from {first_seq}, the checkpoint before it ends at {}",
                expected_first_seq.saturating_sub(1)
            ),
            ListedBlockMismatch { checkpoint, seq, listed, chain, mismatches } => write!(
                f,
                "{checkpoint} lists block {seq} as {listed}, the chain's block hashes to {chain} \
                 ({mismatches} listed blocks differ: chain rewritten)"
            ),
            MissingLocator { checkpoint } => write!(
                f,
                "{checkpoint} has no locator: lookups cannot find it by seq"
            ),
            StrayLocator { key } => write!(
                f,
                "{key} names no stored checkpoint (one with that number and seq was deleted \
                 or replaced)"
            ),
        }
    }
}

/// What a checkpoint verification covered and found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointReport {
    pub tenant_id: String,
    pub checkpoints_checked: u64,
    pub valid_signatures: u64,
    /// The newest validly signed checkpoint.
    pub newest: Option<CheckpointRef>,
    /// Blocks `0..=covered_seq` are covered by a validly signed checkpoint that agrees with the
    /// chain.
    pub covered_seq: Option<u64>,
    pub head_seq: Option<u64>,
    pub faults: Vec<CheckpointFault>,
}

impl CheckpointReport {
    pub fn ok(&self) -> bool {
        self.faults.is_empty()
    }
}

fn reference(signed: &SignedCheckpoint) -> CheckpointRef {
    CheckpointRef {
        number: signed.checkpoint.number,
        seq: signed.checkpoint.seq,
        signed_at: signed.checkpoint.signed_at,
    }
}

/// Why `signed` does not verify, if it does not.
fn signature_fault(key: &CheckpointPublicKey, signed: &SignedCheckpoint) -> Option<String> {
    if signed.algorithm != SIGNING_ALGORITHM {
        return Some(format!(
            "algorithm {:?}, expected {SIGNING_ALGORITHM}",
            signed.algorithm
        ));
    }
    let Ok(der) = signed.signature_der() else {
        return Some("signature is not base64".into());
    };
    key.verify_digest(&signed.checkpoint.digest(), &der)
        .err()
        .map(|e| e.to_string())
}

/// Verifies a tenant's checkpoints (in any order) against the public key (DER
/// SubjectPublicKeyInfo) and the chain (`blocks` in any order, and its head).
pub fn verify_checkpoint_chain(
    tenant_id: &str,
    signed: &[SignedCheckpoint],
    public_key_der: &[u8],
    blocks: &[BlockHeader],
    head: Option<&ChainHead>,
    policy: &CheckpointPolicy,
    now: Timestamp,
) -> Result<CheckpointReport, PublicKeyError> {
    let key = CheckpointPublicKey::from_der(public_key_der)?;
    let mut faults = Vec::new();

    // One document per number; each marked with whether its signature verifies.
    let mut by_number: BTreeMap<u64, (&SignedCheckpoint, bool)> = BTreeMap::new();
    for s in signed {
        let cp = &s.checkpoint;
        let valid = match signature_fault(&key, s) {
            Some(reason) => {
                faults.push(CheckpointFault::BadSignature {
                    checkpoint: reference(s),
                    key_id: cp.key_id.clone(),
                    reason,
                });
                false
            }
            None => true,
        };
        let foreign = cp.tenant_id != tenant_id || head.is_some_and(|h| h.chain_id != cp.chain_id);
        if foreign {
            faults.push(CheckpointFault::ForeignCheckpoint {
                checkpoint: reference(s),
                tenant_id: cp.tenant_id.clone(),
                chain_id: cp.chain_id.clone(),
            });
            continue;
        }
        match by_number.get(&cp.number) {
            None => {
                by_number.insert(cp.number, (s, valid));
            }
            Some((other, other_valid)) => {
                if *other != s {
                    faults.push(CheckpointFault::DuplicateCheckpoint { number: cp.number });
                    if valid && !other_valid {
                        by_number.insert(cp.number, (s, valid));
                    }
                }
            }
        }
    }
    let all: Vec<(&SignedCheckpoint, bool)> = by_number.into_values().collect();

    // Walk back from the newest: numbers without gaps, each linked to the one before.
    let mut walk = Vec::new();
    for (i, &(cur, cur_valid)) in all.iter().enumerate().rev() {
        let c = &cur.checkpoint;
        let prev = i.checked_sub(1).map(|j| all[j]);
        let (first_missing, expected_prev) = match prev {
            Some((p, _)) => (p.checkpoint.number + 1, p.checkpoint.sha256_hex()),
            None => (0, GENESIS_CHECKPOINT_HASH.to_string()),
        };
        if c.number > first_missing {
            walk.push(CheckpointFault::MissingCheckpoints {
                from_number: first_missing,
                to_number: c.number - 1,
                count: c.number - first_missing,
                after: prev.map(|(p, _)| reference(p)),
                before: reference(cur),
            });
        } else if cur_valid
            && prev.is_none_or(|(_, v)| v)
            && c.prev_checkpoint_sha256 != expected_prev
        {
            walk.push(CheckpointFault::BrokenCheckpointLink {
                checkpoint: reference(cur),
                expected_prev,
                found_prev: c.prev_checkpoint_sha256.clone(),
            });
        }
    }
    walk.reverse();
    faults.extend(walk);

    // The validly signed ones: spacing, monotonicity, agreement with the chain, freshness.
    let valid: Vec<&SignedCheckpoint> = all.iter().filter(|(_, v)| *v).map(|(s, _)| *s).collect();
    let hashes: BTreeMap<u64, String> = blocks
        .iter()
        .map(|h| (h.seq, h.block_hash()))
        .rev()
        .collect();
    let head_seq = head.map(|h| h.seq);
    let mut covered_seq: Option<u64> = None;
    for (i, s) in valid.iter().enumerate() {
        let c = &s.checkpoint;
        if let Some(p) = i.checked_sub(1).map(|j| &valid[j].checkpoint) {
            if c.seq < p.seq || c.signed_at < p.signed_at {
                faults.push(CheckpointFault::CheckpointRegressed {
                    checkpoint: reference(s),
                    previous: reference(valid[i - 1]),
                });
            }
            let gap_ms = c.signed_at.millis() - p.signed_at.millis();
            if c.seq > p.seq && gap_ms > policy.tolerance_ms() {
                faults.push(CheckpointFault::IntervalGap {
                    after: reference(valid[i - 1]),
                    before: reference(s),
                    gap_ms,
                    blocks_appended: c.seq - p.seq,
                });
            }
        }
        if c.signed_at.millis() > now.millis() + policy.grace_ms {
            faults.push(CheckpointFault::FutureCheckpoint {
                checkpoint: reference(s),
            });
        }
        faults.extend(list_faults(s, valid_before(&valid, i), &hashes));
        if head_seq.is_none_or(|h| c.seq > h) {
            faults.push(CheckpointFault::BeyondHead {
                checkpoint: reference(s),
                head_seq,
            });
            continue;
        }
        let chain_hash = hashes
            .get(&c.seq)
            .or(head.filter(|h| h.seq == c.seq).map(|h| &h.block_hash));
        match chain_hash {
            Some(hash) if *hash != c.block_hash => {
                faults.push(CheckpointFault::ChainMismatch {
                    checkpoint: reference(s),
                    checkpoint_hash: c.block_hash.clone(),
                    chain_hash: hash.clone(),
                });
            }
            // A block missing from the chain store is the chain verifier's to report.
            _ => covered_seq = covered_seq.max(Some(c.seq)),
        }
    }

    let newest = valid.last().map(|s| reference(s));
    match (newest, head_seq) {
        (None, Some(head_seq)) => faults.push(CheckpointFault::NoCheckpoint { head_seq }),
        (Some(newest), _) => {
            let age_ms = now.millis() - newest.signed_at.millis();
            if age_ms > policy.tolerance_ms() {
                faults.push(CheckpointFault::StaleCheckpoint {
                    checkpoint: newest,
                    age_ms,
                    blocks_since: head_seq.map_or(0, |h| h.saturating_sub(newest.seq)),
                });
            }
        }
        (None, None) => {}
    }

    Ok(CheckpointReport {
        tenant_id: tenant_id.to_string(),
        checkpoints_checked: signed.len() as u64,
        valid_signatures: valid.len() as u64,
        newest,
        covered_seq,
        head_seq,
        faults,
    })
}

/// The validly signed checkpoint numbered right before `valid[i]`, if it is valid too.
fn valid_before<'a>(valid: &[&'a SignedCheckpoint], i: usize) -> Option<&'a SignedCheckpoint> {
    let p = *valid.get(i.checked_sub(1)?)?;
    (p.checkpoint.number + 1 == valid[i].checkpoint.number).then_some(p)
}

/// What is wrong with a validly signed checkpoint's block list: not the list it signed, not
/// starting after `prev` (or at 0 for the first checkpoint), or naming blocks the chain
/// (`chain`: seq → block hash) hashes differently.
fn list_faults(
    s: &SignedCheckpoint,
    prev: Option<&SignedCheckpoint>,
    chain: &BTreeMap<u64, String>,
) -> Vec<CheckpointFault> {
    let c = &s.checkpoint;
    let mut faults = Vec::new();
    if let Some(reason) = s.list_fault() {
        faults.push(CheckpointFault::AlteredBlockList {
            checkpoint: reference(s),
            reason,
        });
        return faults;
    }
    let expected_first_seq = match (c.number, prev) {
        (0, _) => Some(0),
        (_, Some(p)) => Some(p.checkpoint.seq + 1),
        // Its predecessor is missing or invalid: reported as such.
        (_, None) => None,
    };
    if let Some(expected) = expected_first_seq.filter(|e| *e != c.first_seq) {
        faults.push(CheckpointFault::BlockListGap {
            checkpoint: reference(s),
            expected_first_seq: expected,
            first_seq: c.first_seq,
        });
    }
    let mut first: Option<(u64, String, String)> = None;
    let mut mismatches = 0;
    // The last listed block is the signed `block_hash`: `ChainMismatch` names it.
    for (seq, listed) in (c.first_seq..c.seq).zip(&s.block_hashes) {
        // A block missing from the chain store is the chain verifier's to report.
        if let Some(chain_hash) = chain.get(&seq).filter(|h| *h != listed) {
            mismatches += 1;
            first.get_or_insert((seq, listed.clone(), chain_hash.clone()));
        }
    }
    if let Some((seq, listed, chain)) = first {
        faults.push(CheckpointFault::ListedBlockMismatch {
            checkpoint: reference(s),
            seq,
            listed,
            chain,
            mismatches,
        });
    }
    faults
}

/// Every checkpoint object of a tenant: the readable ones, a fault for each object that is not
/// a readable checkpoint or holds another checkpoint than its key names, and how many objects
/// were listed.
pub async fn load_checkpoints<S: CheckpointStore>(
    store: &S,
    tenant_id: &str,
) -> Result<(Vec<SignedCheckpoint>, Vec<CheckpointFault>, u64), PortError> {
    let mut faults = Vec::new();
    let mut signed = Vec::new();
    let keys = store.list_keys(&checkpoint_prefix(tenant_id)).await?;
    let stored = keys.len() as u64;
    for key in keys {
        let unreadable = |reason: &str| CheckpointFault::UnreadableCheckpoint {
            key: key.clone(),
            reason: reason.to_string(),
        };
        if number_of_checkpoint_key(tenant_id, &key).is_none() {
            faults.push(unreadable("not a checkpoint key"));
            continue;
        }
        let Some(bytes) = store.get(&key).await? else {
            faults.push(unreadable("listed but gone"));
            continue;
        };
        match SignedCheckpoint::from_bytes(&bytes) {
            Err(e) => faults.push(unreadable(&e.to_string())),
            Ok(s) if s.checkpoint.key() != key => {
                faults.push(CheckpointFault::MisplacedCheckpoint {
                    key,
                    tenant_id: s.checkpoint.tenant_id,
                    number: s.checkpoint.number,
                })
            }
            Ok(s) => signed.push(s),
        }
    }
    Ok((signed, faults, stored))
}

/// Reads a tenant's checkpoints and chain from storage and verifies them with
/// [`verify_checkpoint_chain`]; objects under the checkpoint prefix that are not readable
/// checkpoints, or hold a checkpoint other than the one their key names, are faults too.
pub async fn verify_checkpoints<I, S>(
    index: &I,
    store: &S,
    tenant_id: &str,
    public_key_der: &[u8],
    policy: &CheckpointPolicy,
    now: Timestamp,
) -> Result<CheckpointReport, CheckpointError>
where
    I: JournalIndex,
    S: CheckpointStore,
{
    let (signed, mut faults, stored) = load_checkpoints(store, tenant_id).await?;
    let blocks = index.list_blocks(tenant_id).await?;
    let head = index.chain_head(tenant_id).await?;
    let mut report = verify_checkpoint_chain(
        tenant_id,
        &signed,
        public_key_der,
        &blocks,
        head.as_ref(),
        policy,
        now,
    )?;
    report.checkpoints_checked = stored;
    faults.append(&mut report.faults);
    let key = CheckpointPublicKey::from_der(public_key_der)?;
    faults.extend(locator_faults(store, tenant_id, &signed, &key).await?);
    report.faults = faults;
    Ok(report)
}

/// Validly signed checkpoints without their locator, and locators that are not locator keys
/// or give a validly signed checkpoint another seq. A locator whose checkpoint is gone or
/// invalid is not named again: the missing or bad checkpoint is.
pub async fn locator_faults<S: CheckpointStore>(
    store: &S,
    tenant_id: &str,
    signed: &[SignedCheckpoint],
    key: &CheckpointPublicKey,
) -> Result<Vec<CheckpointFault>, PortError> {
    let keys = store.list_keys(&locator_prefix(tenant_id)).await?;
    let located: std::collections::BTreeSet<(u64, u64)> = keys
        .iter()
        .filter_map(|k| parse_locator_key(tenant_id, k))
        .collect();
    let valid: BTreeMap<u64, &SignedCheckpoint> = signed
        .iter()
        .filter(|s| s.checkpoint.tenant_id == tenant_id && signature_fault(key, s).is_none())
        .map(|s| (s.checkpoint.number, s))
        .collect();
    let mut faults: Vec<CheckpointFault> = valid
        .values()
        .filter(|s| !located.contains(&(s.checkpoint.seq, s.checkpoint.number)))
        .map(|s| CheckpointFault::MissingLocator {
            checkpoint: reference(s),
        })
        .collect();
    faults.extend(
        keys.into_iter()
            .filter(|k| match parse_locator_key(tenant_id, k) {
                None => true,
                Some((seq, number)) => valid.get(&number).is_some_and(|s| s.checkpoint.seq != seq),
            })
            .map(|key| CheckpointFault::StrayLocator { key }),
    );
    Ok(faults)
}
