//! Retention (DESIGN §9): the policy, tiering to archive classes, expiry with signed
//! tombstones, legal holds, and the signed report of every run.
//!
//! - [`policy`]: the versioned policy document and its validation.
//! - [`policy_store`]: policy versions, write-once, and legal holds placed by raw subject id.
//! - [`plan`]: what happens to one file and why (shared by dry and real runs).
//! - [`run`]: a tenant's run: cursors over partition dates, archiving, expiry, reports.
//! - [`restores`]: restores readers asked for, followed until the copy expires.
//! - [`erasure`]: one subject's erasure: key shredded, rows rewritten away, a signed receipt.
//! - [`erasure_receipt`]: the signed receipt of an erasure, naming no personal data.
//! - [`tombstone`]: the signed record of a deleted file that keeps the chain verifiable.
//! - [`sealed`]: documents signed with the checkpoint key.

pub mod erasure;
pub mod erasure_receipt;
pub mod plan;
pub mod policy;
pub mod policy_store;
pub mod restores;
pub mod run;
pub mod sealed;
pub mod tombstone;

#[cfg(test)]
mod erasure_tests;
#[cfg(test)]
mod tests;

pub use erasure::{Erasure, ErasureReport, ErasureStep};
pub use plan::{decide, Action};
pub use policy::{
    ArchiveClass, Governing, HoldScope, LegalHold, PolicyError, RetentionPolicy, Rule, TenantRules,
    MIN_ARCHIVE_BYTES,
};
pub use policy_store::{
    current_policy, publish_policy, with_hold, without_hold, HoldRequest, PolicyStoreError,
};
pub use run::{
    FileReport, Outcome, Retention, RetentionConfig, RetentionError, RetentionStep, StoredReport,
    TenantReport, TenantState,
};
pub use sealed::Sealed;
pub use tombstone::{tombstone_key, TombstoneFile, TombstonedBlock};
