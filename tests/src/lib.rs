//! Integration-test support: a local AWS endpoint (started by scripts/test.sh), stacks deployed
//! from `infra/`, a stand-in for the SQS event source mapping, and readers that check the journal
//! from the outside (pyarrow, DuckDB).

pub mod auditor;
pub mod emulator;
pub mod harness;
pub mod poller;
pub mod schema_check;
pub mod stack;
pub mod tamper_tools;

pub use harness::TestJournal;
