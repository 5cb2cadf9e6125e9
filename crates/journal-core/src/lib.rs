//! Decision Journal core: the domain, free of AWS SDK types.
//!
//! - [`record`], [`timestamp`], [`validate`]: schema v1 and the parser that names bad fields.
//! - [`canonical`]: RFC 8785 bytes that every hash and MAC covers.
//! - [`keys`], [`features_crypto`]: tenant HMAC keys, per-subject AES-256-GCM feature sealing.
//! - [`integrity`]: leaf hashes, RFC 6962 Merkle trees, the block chain and `verify`.
//! - [`columnar`]: the Arrow schema and Parquet codec.
//! - [`compact`]: merging a partition's small files into large ones (planning so far).
//! - [`layout`]: S3 keys and index keys.
//! - [`metrics`]: the daily metrics read model (per tenant, day and model; Parquet).
//! - [`retention`]: archive tiering, expiry with signed tombstones, legal holds.
//! - [`ports`], [`ingest`]: storage traits and the crash-safe ingest pipeline built on them;
//!   [`memory`]: in-process port implementations for unit tests.

pub mod access;
pub mod canonical;
pub mod checkpoint;
pub mod columnar;
pub mod compact;
pub mod faults;
pub mod features_crypto;
pub mod ingest;
pub mod integrity;
pub mod keys;
pub mod layout;
pub mod memory;
pub mod metrics;
pub mod models;
pub mod ports;
pub mod record;
pub mod replay;
pub mod retention;
pub mod timestamp;
pub mod validate;
