//! The `ingest` Lambda: SQS batch in, one chained block per tenant out, partial batch response.
//! The domain lives in `journal_core::ingest`; this crate only wires AWS clients to it.

pub mod config;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use journal_aws::{
    load_master_key, AwsClients, DynamoIndex, KmsSubjectKeys, S3ObjectStore, SqsRejectSink,
};
use journal_core::columnar::WriterConfig;
use journal_core::ingest::{Ingest, IngestConfig, Message};
use journal_core::timestamp::Timestamp;
use lambda_runtime::LambdaEvent;
use tracing::Instrument;

pub use config::{Config, ConfigError};

/// Everything the handler needs, built once per process.
pub type Deps = Ingest<S3ObjectStore, DynamoIndex, KmsSubjectKeys, SqsRejectSink>;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] journal_aws::SecretError),
}

/// Builds the service from its configuration and the process's clients.
pub async fn build_deps(config: &Config, clients: &AwsClients) -> Result<Deps, StartError> {
    let master = load_master_key(&clients.secretsmanager, &config.master_key_secret_id).await?;
    let ingest_config = IngestConfig {
        keep_raw_features: config.keep_raw_features,
        claim_lease_ms: config.claim_lease_seconds * 1000,
        writer: WriterConfig {
            max_row_group_size: config.row_group_rows,
            ..WriterConfig::default()
        },
        ..IngestConfig::default()
    };
    Ok(Ingest::new(
        S3ObjectStore::new(clients.s3.clone(), &config.bucket),
        DynamoIndex::new(clients.dynamodb.clone(), &config.table)
            .with_ledger_table(&config.ledger_table),
        KmsSubjectKeys::new(
            clients.dynamodb.clone(),
            clients.kms.clone(),
            &config.table,
            &config.subject_key_id,
        ),
        SqsRejectSink::new(clients.sqs.clone(), &config.dead_letter_queue_url),
        master,
        ingest_config,
    ))
}

/// Handles one SQS batch; failed message ids go back to SQS for redelivery.
pub async fn function_handler(
    event: LambdaEvent<SqsEvent>,
    deps: &Deps,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(handle_batch(event.payload, deps, Timestamp::now()).await)
}

/// The handler without the Lambda envelope (the local event source stand-in calls this).
pub async fn handle_batch(event: SqsEvent, deps: &Deps, now: Timestamp) -> SqsBatchResponse {
    let messages: Vec<Message> = event
        .records
        .into_iter()
        .map(|r| Message {
            message_id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default().into_bytes(),
        })
        .collect();
    let span = tracing::info_span!("ingest_batch", messages = messages.len());
    let outcome = deps
        .ingest_batch(&messages, now)
        .instrument(span.clone())
        .await;
    let _in_span = span.enter();
    for block in &outcome.blocks {
        tracing::info!(tenant = %block.tenant_id, seq = block.seq, block_id = %block.block_id,
            file_key = %block.file_key, rows = block.rows, bytes = block.bytes, "block chained");
    }
    for error in &outcome.errors {
        tracing::warn!(%error, "messages will be retried");
    }
    tracing::info!(
        accepted = outcome.accepted,
        duplicates = outcome.duplicates,
        suppressed = outcome.suppressed,
        rejected = outcome.rejected,
        failed = outcome.failed.len(),
        "batch done"
    );
    let mut response = SqsBatchResponse::default();
    for id in outcome.failed {
        response.add_failure(id);
    }
    response
}
