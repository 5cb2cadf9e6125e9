//! The producer client (DESIGN §2): a service records each decision with
//! [`Producer::record`], which returns at once; a background task packs records into SQS
//! messages (a JSON array per message, up to the message size limit) and sends them ten
//! messages per `SendMessageBatch`, several calls in flight. Failed sends are retried with
//! backoff; messages that still fail are kept in a bounded local spill buffer, retried later,
//! and reported; once the buffer is full, `record` refuses new records and hands them back.
//! Nothing is dropped without the caller knowing. Call [`Producer::flush`] before shutdown.
//!
//! Low-risk traffic can be sampled ([`Sampling`]): a decision is kept when a hash of its id
//! falls under its tier's rate, so every process keeps the same decisions, and the rate is
//! written into the record (`sampling_rate`) for analytics to reweight. High-risk decisions,
//! outcomes and reviews are always kept.

mod config;
mod pack;
mod producer;
mod sampling;
mod sender;

pub use config::{Backoff, ProducerConfig};
pub use pack::Packer;
pub use producer::{FlushReport, Producer, RecordError, Recorded, Stats};
pub use sampling::Sampling;
pub use sender::{BatchSender, EntryFailure, SendFailure};
