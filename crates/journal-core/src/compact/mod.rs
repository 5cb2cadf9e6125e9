//! Compaction (DESIGN §8): a tenant's small ingest files of one partition merged, in chain
//! order, into few large ones that keep every row's leaf hash, salt, block id and leaf index,
//! so every block's Merkle root stays recomputable from the merged file alone.
//!
//! - [`plan`](mod@plan): which files to merge into which outputs.
//! - [`merge`](mod@merge): one output written in chain order, read back and checked against the chain.
//! - [`run`]: the crash-safe run: intent, write, pointer switch, inputs marked, deletion after
//!   a grace period, under a per-partition lease.

pub mod merge;
pub mod plan;
pub mod run;

pub use merge::{merge, output_key, verify_output, MergeError, MergedFile, WrittenFile};
pub use run::{CompactError, CompactStep, Compactor, CompactorConfig, RunReport, WrittenOutput};

pub use plan::{
    plan, CompactionConfig, OutputPlan, Partition, Plan, Skipped, DEFAULT_SETTLE_MS,
    DEFAULT_TARGET_BYTES,
};

#[cfg(test)]
mod tests;
