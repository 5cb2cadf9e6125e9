//! Adapters implementing `journal-core`'s ports with the AWS SDK (DESIGN §2, §5, §10).
//!
//! | port | adapter | service |
//! |---|---|---|
//! | `ObjectStore` | [`S3ObjectStore`] | S3 (Parquet files, ranged reads) |
//! | `JournalIndex` | [`DynamoIndex`] | DynamoDB single table (claims, pointers, manifest, chain) |
//! | `SubjectKeyStore` | [`KmsSubjectKeys`] | KMS data keys, wrapped in the same table |
//! | `RejectSink` | [`SqsRejectSink`] | SQS dead-letter queue |
//!
//! [`AwsClients::from_env`] builds every client once; endpoints come from `AWS_ENDPOINT_URL`
//! and `AWS_ENDPOINT_URL_<SERVICE>`, never from code.

pub mod checkpoints;
mod clients;
mod errors;
pub mod function_env;
pub mod identity;
mod index;
mod logging;
mod rejects;
mod retry;
mod s3;
mod subject_keys;

pub use clients::{load_master_key, AwsClients, SecretError};
pub use index::DynamoIndex;
pub use logging::init_lambda_tracing;
pub use rejects::{
    SqsRejectSink, ATTR_BODY_ENCODING, ATTR_FIELD, ATTR_REASON, ATTR_RECORD_INDEX,
    ATTR_SOURCE_MESSAGE_ID,
};
pub use retry::Backoff;
pub use s3::{ObjectHead, S3ObjectStore, PARQUET_CONTENT_TYPE};
pub use subject_keys::{KmsSubjectKeys, DEFAULT_CACHE_CAPACITY};
