//! Adapter tests against a local AWS endpoint (moto server or LocalStack).
//!
//! ```sh
//! AWS_ENDPOINT_URL=http://127.0.0.1:5999 cargo test -p journal-aws
//! ```
//!
//! Without `AWS_ENDPOINT_URL` every test prints a skip line and passes. Each test creates its own
//! uniquely named table, bucket, queue, KMS key or secret.

mod checkpoints;
mod common;
mod index;
mod pointers;
mod quirks;
mod rejects;
mod s3;
mod secrets;
mod subject_keys;
