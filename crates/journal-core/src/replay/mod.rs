//! Replay: lookups with proofs, re-execution, what-if, and the access journal.
//!
//! A lookup reads one pointer from the index, then the Parquet footer and the one row group
//! that holds the row with ranged GETs ([`lookup::RowReader`]), and proves the row: leaf hash
//! recomputed, Merkle audit path to the block root, root equal to the chained header's, header
//! linked to the next block.

pub mod api;
pub mod audit;
pub mod lookup;
mod range;
mod reexec;
pub mod service;
mod views;
mod whatif;

#[cfg(test)]
mod tests;

pub use lookup::{
    ArchivedNotice, Finder, Found, Link, Lookup, LookupError, Proof, ReadCost, RowReader,
};
pub use reexec::LLM_NOT_RERUN;
pub use service::{AccessRejects, Caller, ReplayService};
pub use views::Cursor;
