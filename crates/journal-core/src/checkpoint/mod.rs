//! Signed checkpoints over the chain heads (DESIGN §4; format and auditor recipe in
//! `docs/checkpoints.md`).
//!
//! A checkpoint signs `{tenant, chain, number, seq, block hash, first listed seq, digest of the
//! listed block hashes, time, previous checkpoint's hash, key}` with an asymmetric ECDSA P-256 key (KMS `ECC_NIST_P256`, `ECDSA_SHA_256`) and is
//! stored once, under a write-once prefix (S3 Object Lock), at a key named by its number.
//!
//! - [`document`]: [`Checkpoint`], [`SignedCheckpoint`], canonical bytes and the S3 layout.
//! - [`signer`]: the [`CheckpointSigner`] port, [`MemorySigner`] for tests, and offline
//!   verification with only the public key ([`CheckpointPublicKey`]).
//! - [`store`]: the write-once [`CheckpointStore`] port (implemented for
//!   [`crate::memory::MemoryStore`]).
//! - [`write`](mod@write): [`write_checkpoint`], run on a schedule.
//! - [`witness`]: [`CheckpointWitness`], which finds the checkpoint that lists a block (by its
//!   locator) and vouches for the block's hash, for lookups.
//! - [`verify`]: [`verify_checkpoint_chain`] (pure) and [`verify_checkpoints`] (from storage),
//!   naming every [`CheckpointFault`].

pub mod document;
pub mod signer;
pub mod store;
pub mod verify;
pub mod witness;
pub mod write;

pub use document::{
    blocks_digest, checkpoint_key, checkpoint_prefix, locator_key, locator_prefix,
    locator_search_after, number_of_checkpoint_key, parse_locator_key, Checkpoint,
    SignedCheckpoint, CHECKPOINTS_PREFIX, CHECKPOINT_VERSION, GENESIS_CHECKPOINT_HASH,
    LOCATORS_PREFIX, SIGNING_ALGORITHM,
};
pub use signer::{
    CheckpointPublicKey, CheckpointSigner, MemorySigner, PublicKeyError, SignatureError,
};
pub use store::CheckpointStore;
pub use verify::{
    load_checkpoints, locator_faults, verify_checkpoint_chain, verify_checkpoints, CheckpointFault,
    CheckpointRef, CheckpointReport,
};
pub use witness::{
    BlockWitness, CheckpointWitness, NoWitness, Vouch, VouchingCheckpoint, WitnessCache,
};
pub use write::{
    latest_checkpoint, write_all_checkpoints, write_checkpoint, write_checkpoint_with,
    CheckpointError, CheckpointPolicy, TenantRun, WriteOutcome, DEFAULT_GRACE_MS,
    DEFAULT_MAX_BLOCKS, DEFAULT_MAX_INTERVAL_MS,
};

#[cfg(test)]
mod tests;
