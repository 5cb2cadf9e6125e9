//! A local stand-in for the SQS → Lambda event source mapping: receives up to `batch_size`
//! messages, hands them to the function as an `SqsEvent`, deletes what the function did not
//! report as failed (`ReportBatchItemFailures`), and makes failed ones visible again after
//! `retry_delay` — so redelivery, and the queue's redrive to the DLQ after its max receive count,
//! happen as they do on AWS.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};

#[derive(Clone, Debug)]
pub struct MappingConfig {
    pub batch_size: i32,
    /// Long-poll wait per receive (the batching window).
    pub wait: Duration,
    /// Visibility given to failed messages before SQS offers them again.
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
    let mut stats = MappingStats::default();
    let mut idle = 0;
    while idle < cfg.idle_polls {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(cfg.batch_size.min(10))
            .wait_time_seconds(cfg.wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .context("receive_message")?;
        let messages = received.messages();
        if messages.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
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
