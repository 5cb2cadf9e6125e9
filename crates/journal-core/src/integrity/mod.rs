//! Integrity: what makes the journal tamper-evident (DESIGN §4).
//!
//! - [`leaf`]: salted RFC 6962 leaf hashes over a record's canonical bytes.
//! - [`merkle`]: RFC 6962 Merkle tree hash, inclusion proofs and their verification.
//! - [`chain`]: block headers, block hashes and the per-tenant chain head.
//! - [`verify`]: recomputes all of it from stored rows and names every fault;
//!   [`stored`]: the same over what the storage ports hold.

pub mod chain;
pub mod leaf;
pub mod merkle;
pub mod stored;
pub mod verify;

pub use chain::{BlockHeader, ChainHead, GENESIS_PREV_HASH};
pub use leaf::{leaf_hash, new_salt, Salt};
pub use merkle::{inclusion_proof, merkle_root, root_from_path, verify_inclusion, Hash32};
pub use stored::{verify_stored_chain, StoredVerifyError};
pub use verify::{
    note_deleted, verify_block, verify_block_erased, verify_block_leaves, verify_chain,
    DeletedSpan, Fault, StoredLeaf, VerifyReport,
};
