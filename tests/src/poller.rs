//! A local stand-in for the SQS → Lambda event source mapping: receives up to `batch_size`
//! messages (gathering for up to `batching_window`, as `MaximumBatchingWindowInSeconds` does),
//! hands them to the function as an `SqsEvent` — in process, or through the Lambda Invoke API
//! ([`invoke_batch`]) to a function binary — deletes what the function did not report as failed
//! (`ReportBatchItemFailures`), and makes failed ones visible again after `retry_delay`, so
//! redelivery, and the queue's redrive to the DLQ after its max receive count, happen as they do
//! on AWS. A function error or a crash fails the whole batch, as on AWS.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};

/// Lambda's synchronous invocation payload limit; the mapping keeps a batch's bodies under it.
const MAX_BATCH_BYTES: usize = 6 * 1024 * 1024;
/// SQS's largest message body: one more receive of 10 could add this much per message.
const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct MappingConfig {
    /// Messages per invocation (1–10,000, as the mapping's `BatchSize`).
    pub batch_size: i32,
    /// How long to keep gathering a batch that is not yet full (`MaximumBatchingWindowInSeconds`;
    /// zero: one receive per batch).
    pub batching_window: Duration,
    /// Long-poll wait per receive.
    pub wait: Duration,
    /// Visibility given to failed messages before SQS offers them again (on AWS the queue's
    /// visibility timeout; shorter here so tests need not wait it out).
    pub retry_delay: Duration,
    /// Stop after this many consecutive empty receives.
    pub idle_polls: u32,
    /// Put in each record's `eventSourceARN`, as AWS does.
    pub queue_arn: String,
}
#[derive(Debug, Default, Clone, Copy)]
pub struct MappingStats {
    pub invocations: u64,
    pub messages: u64,
    pub deleted: u64,
    pub failed: u64,
    pub crashed_invocations: u64,
}

/// Polls `queue_url` and invokes `handler` until the queue stays empty.
pub async fn drain<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    cfg: &MappingConfig,
    mut handler: F,
) -> Result<MappingStats>
where
    F: FnMut(SqsEvent) -> Fut,
    Fut: Future<Output = Result<SqsBatchResponse>>,
{
    if !(1..=10_000).contains(&cfg.batch_size) {
        bail!("batch size {} is outside 1–10,000", cfg.batch_size);
    }
    let mut stats = MappingStats::default();
    let mut idle = 0;
    while idle < cfg.idle_polls {
        let messages = gather(sqs, queue_url, cfg).await?;
        if messages.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        let messages = messages.as_slice();
        let mut event = SqsEvent::default();
        for m in messages {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id().map(str::to_string);
            record.receipt_handle = m.receipt_handle().map(str::to_string);
            record.body = m.body().map(str::to_string);
            record.md5_of_body = m.md5_of_body().map(str::to_string);
            record.attributes = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(cfg.queue_arn.clone());
            record.aws_region = std::env::var("AWS_REGION").ok();
            event.records.push(record);
        }
        stats.invocations += 1;
        stats.messages += messages.len() as u64;
        let failed: Vec<String> = match handler(event).await {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "invocation failed as a whole; the batch will be redelivered");
                stats.crashed_invocations += 1;
                messages
                    .iter()
                    .filter_map(|m| m.message_id().map(str::to_string))
                    .collect()
            }
        };
        let mut deletes = Vec::new();
        for m in messages {
            let (Some(id), Some(handle)) = (m.message_id(), m.receipt_handle()) else {
                continue;
            };
            if failed.iter().any(|f| f == id) {
                stats.failed += 1;
                sqs.change_message_visibility()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(cfg.retry_delay.as_secs() as i32)
                    .send()
                    .await
                    .context("change_message_visibility")?;
            } else {
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("d{}", deletes.len()))
                        .receipt_handle(handle)
                        .build()?,
                );
            }
        }
        if !deletes.is_empty() {
            stats.deleted += deletes.len() as u64;
            sqs.delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(deletes))
                .send()
                .await
                .context("delete_message_batch")?;
        }
    }
    Ok(stats)
}

/// Receives one batch: up to `batch_size` messages within `batching_window`, stopping early
/// where one more receive could take the bodies past Lambda's payload limit.
async fn gather(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    cfg: &MappingConfig,
) -> Result<Vec<Message>> {
    let started = Instant::now();
    let mut batch: Vec<Message> = Vec::new();
    let mut bytes = 0;
    loop {
        let want = (cfg.batch_size as usize - batch.len()).min(10);
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(want as i32)
            .wait_time_seconds(cfg.wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .context("receive_message")?;
        let got = received.messages.unwrap_or_default();
        let empty = got.is_empty();
        bytes += got
            .iter()
            .map(|m| m.body().map_or(0, str::len))
            .sum::<usize>();
        batch.extend(got);
        let full =
            batch.len() >= cfg.batch_size as usize || bytes + 10 * MAX_BODY_BYTES > MAX_BATCH_BYTES;
        let window_over = started.elapsed() >= cfg.batching_window;
        if full || window_over || (empty && batch.is_empty()) {
            return Ok(batch);
        }
        if empty {
            tokio::time::sleep(Duration::from_millis(100).min(cfg.batching_window)).await;
        }
    }
}

/// Invokes a function through the Lambda Invoke API (RequestResponse) with an SQS event and
/// reads its partial batch response. A function error is an error, failing the whole batch.
pub async fn invoke_batch(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: SqsEvent,
) -> Result<SqsBatchResponse> {
    let payload = serde_json::to_vec(&event)?;
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(aws_smithy_types::Blob::new(payload))
        .send()
        .await
        .with_context(|| format!("invoking {function}"))?;
    let body = out.payload().map(|p| p.as_ref()).unwrap_or_default();
    if let Some(kind) = out.function_error() {
        bail!(
            "{function} failed ({kind}): {}",
            String::from_utf8_lossy(body)
        );
    }
    serde_json::from_slice(body).with_context(|| {
        format!(
            "{function} answered something other than an SqsBatchResponse: {}",
            String::from_utf8_lossy(body)
        )
    })
}
