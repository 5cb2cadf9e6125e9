//! Sending a batch of message bodies: the SQS client, or a stand-in in tests and benchmarks.

use std::future::Future;

/// A message of a batch that SQS did not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryFailure {
    /// Its position in the batch.
    pub index: usize,
    /// False when the message itself was refused (sender fault): sending it again cannot work.
    pub retryable: bool,
    pub message: String,
}

/// The whole call failed (network, throttling, a queue that does not exist); worth retrying.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SendMessageBatch to {queue_url} failed: {message}")]
pub struct SendFailure {
    pub queue_url: String,
    pub message: String,
}

pub trait BatchSender: Send + Sync + 'static {
    /// Sends `bodies` (at most 10) as one batch; `Ok` lists the entries that failed.
    fn send_batch(
        &self,
        queue_url: &str,
        bodies: &[String],
    ) -> impl Future<Output = Result<Vec<EntryFailure>, SendFailure>> + Send;
}

/// A shared sender (the caller keeps a handle, e.g. to a test queue).
impl<T: BatchSender> BatchSender for std::sync::Arc<T> {
    fn send_batch(
        &self,
        queue_url: &str,
        bodies: &[String],
    ) -> impl Future<Output = Result<Vec<EntryFailure>, SendFailure>> + Send {
        (**self).send_batch(queue_url, bodies)
    }
}

impl BatchSender for aws_sdk_sqs::Client {
    async fn send_batch(
        &self,
        queue_url: &str,
        bodies: &[String],
    ) -> Result<Vec<EntryFailure>, SendFailure> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let mut entries = Vec::with_capacity(bodies.len());
        for (i, body) in bodies.iter().enumerate() {
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| SendFailure {
                        queue_url: queue_url.to_string(),
                        message: e.to_string(),
                    })?,
            );
        }
        let out = self
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| SendFailure {
                queue_url: queue_url.to_string(),
                message: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(out
            .failed()
            .iter()
            .map(|f| EntryFailure {
                index: f.id().parse().unwrap_or(usize::MAX),
                retryable: !f.sender_fault(),
                message: format!("{}: {}", f.code(), f.message().unwrap_or_default()),
            })
            .collect())
    }
}
