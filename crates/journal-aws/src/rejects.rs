//! The dead-letter path for rejected input: one SQS message per rejected message or record, the
//! rejected text as the body and the reason in message attributes.
//!
//! | attribute | value |
//! |---|---|
//! | `dj-reject-field` | JSON path of the offending field, or `body` |
//! | `dj-reject-reason` | what was wrong |
//! | `dj-source-message-id` | the SQS message id it arrived in |
//! | `dj-record-index` (Number) | position in a packed array, when it was one record of several |
//! | `dj-body-encoding` | `base64` when the body is base64 of the original bytes; `empty` when the original was empty (the body is then a placeholder) |

use std::collections::HashMap;

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use base64::Engine;
use journal_core::ports::{PortError, RejectSink, RejectedMessage};

use crate::errors::{is_transient_code, sdk_error};
use crate::retry::Backoff;

pub const ATTR_FIELD: &str = "dj-reject-field";
pub const ATTR_REASON: &str = "dj-reject-reason";
pub const ATTR_SOURCE_MESSAGE_ID: &str = "dj-source-message-id";
pub const ATTR_RECORD_INDEX: &str = "dj-record-index";
pub const ATTR_BODY_ENCODING: &str = "dj-body-encoding";

/// SendMessageBatch limits: entries per call, and total payload (kept at the historical
/// 256 KiB so that queues configured with the old maximum accept every batch).
const MAX_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Placeholder body for an empty rejected message (SQS refuses empty bodies).
const EMPTY_BODY: &str = "(empty)";

#[derive(Clone, Debug)]
pub struct SqsRejectSink {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    backoff: Backoff,
}

impl SqsRejectSink {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            backoff: Backoff::default(),
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Sends one batch, retrying entries that failed through no fault of ours.
    async fn send_batch(&self, mut batch: Vec<Entry>) -> Result<(), PortError> {
        const OP: &str = "send rejects";
        let target = format!("(queue {})", self.queue_url);
        let mut attempt = 1;
        loop {
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(batch.iter().map(|e| e.request.clone()).collect()))
                .send()
                .await
                .map_err(|e| sdk_error(OP, &target, &e))?;
            let failed: HashMap<&str, _> = out.failed().iter().map(|f| (f.id(), f)).collect();
            if failed.is_empty() {
                return Ok(());
            }
            let mut permanent = Vec::new();
            let mut retry = Vec::new();
            for entry in batch {
                match failed.get(entry.request.id()) {
                    None => {}
                    Some(f) if f.sender_fault() && !is_transient_code(Some(f.code()), None) => {
                        permanent.push(format!(
                            "message {:?}: {} {}",
                            entry.source_message_id,
                            f.code(),
                            f.message().unwrap_or_default()
                        ));
                    }
                    Some(_) => retry.push(entry),
                }
            }
            if !permanent.is_empty() {
                return Err(PortError::permanent(
                    OP,
                    format!("{target} refused {}", permanent.join("; ")),
                ));
            }
            if attempt >= self.backoff.max_attempts {
                let ids: Vec<&str> = retry.iter().map(|e| e.source_message_id.as_str()).collect();
                return Err(PortError::transient(
                    OP,
                    format!(
                        "{target}: rejects of messages {ids:?} not accepted after {attempt} attempts"
                    ),
                ));
            }
            tracing::debug!(
                failed = retry.len(),
                attempt,
                "retrying rejected-message sends"
            );
            self.backoff.sleep(attempt).await;
            attempt += 1;
            batch = retry;
        }
    }
}

impl RejectSink for SqsRejectSink {
    #[tracing::instrument(skip_all, fields(queue = %self.queue_url, rejects = rejects.len()))]
    async fn send_rejects(&self, rejects: &[RejectedMessage]) -> Result<(), PortError> {
        let entries = rejects
            .iter()
            .enumerate()
            .map(|(i, r)| entry(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        for batch in batches(entries) {
            self.send_batch(batch).await?;
        }
        Ok(())
    }
}

struct Entry {
    request: SendMessageBatchRequestEntry,
    source_message_id: String,
    size: usize,
}

fn entry(i: usize, r: &RejectedMessage) -> Result<Entry, PortError> {
    const OP: &str = "send rejects";
    let (body, encoding) = sqs_body(r);
    let mut attrs: Vec<(&str, &str, String)> = vec![
        (ATTR_FIELD, "String", attr_text(&r.rejection.field)),
        (ATTR_REASON, "String", attr_text(&r.rejection.reason)),
        (ATTR_SOURCE_MESSAGE_ID, "String", attr_text(&r.message_id)),
    ];
    if let Some(index) = r.rejection.record_index {
        attrs.push((ATTR_RECORD_INDEX, "Number", index.to_string()));
    }
    if let Some(encoding) = encoding {
        attrs.push((ATTR_BODY_ENCODING, "String", encoding.to_string()));
    }
    // What SQS counts against the message size: body plus attribute names, types and values.
    let size = body.len()
        + attrs
            .iter()
            .map(|(n, t, v)| n.len() + t.len() + v.len())
            .sum::<usize>();
    let mut request = SendMessageBatchRequestEntry::builder()
        .id(format!("r{i}"))
        .message_body(body);
    for (name, data_type, value) in attrs {
        let value = MessageAttributeValue::builder()
            .data_type(data_type)
            .string_value(value)
            .build()
            .map_err(|e| PortError::permanent(OP, e))?;
        request = request.message_attributes(name, value);
    }
    Ok(Entry {
        request: request.build().map_err(|e| PortError::permanent(OP, e))?,
        source_message_id: r.message_id.clone(),
        size,
    })
}

/// Groups entries into SendMessageBatch calls of at most 10 entries and 256 KiB.
fn batches(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut out: Vec<Vec<Entry>> = Vec::new();
    let mut bytes = 0;
    for e in entries {
        let fits = out
            .last()
            .is_some_and(|b| b.len() < MAX_ENTRIES && bytes + e.size <= MAX_BATCH_BYTES);
        if !fits {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += e.size;
        out.last_mut().expect("pushed above").push(e);
    }
    out
}

/// The body SQS will accept for a rejected text: as is when it is non-empty and made of the
/// characters SQS allows, otherwise base64 of its bytes (or a placeholder when empty).
fn sqs_body(r: &RejectedMessage) -> (String, Option<&'static str>) {
    if r.body.is_empty() {
        return (EMPTY_BODY.to_string(), Some("empty"));
    }
    if r.body_base64 {
        return (r.body.clone(), Some("base64"));
    }
    if r.body.chars().all(sqs_allows) {
        return (r.body.clone(), None);
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(r.body.as_bytes());
    (encoded, Some("base64"))
}

/// The characters SQS accepts in bodies and string attributes (XML 1.0 characters).
fn sqs_allows(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// An attribute value SQS accepts: disallowed characters replaced, never empty.
fn attr_text(text: &str) -> String {
    if text.is_empty() {
        return "-".to_string();
    }
    text.chars()
        .map(|c| if sqs_allows(c) { c } else { '\u{FFFD}' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal_core::validate::Rejection;

    fn reject(body: &str, index: Option<usize>) -> RejectedMessage {
        RejectedMessage {
            message_id: "m1".into(),
            body: body.into(),
            body_base64: false,
            rejection: Rejection {
                record_index: index,
                field: "decision".into(),
                reason: "missing".into(),
            },
        }
    }

    #[test]
    fn bodies_sqs_would_refuse_are_encoded() {
        assert_eq!(sqs_body(&reject("{}", None)), ("{}".to_string(), None));
        assert_eq!(
            sqs_body(&reject("a\u{0}b", None)),
            ("YQBi".to_string(), Some("base64"))
        );
        assert_eq!(sqs_body(&reject("", None)).1, Some("empty"));
        assert_eq!(attr_text(""), "-");
        assert_eq!(attr_text("x\u{1}"), "x\u{FFFD}");
    }

    #[test]
    fn batches_respect_count_and_size() {
        let entries: Vec<Entry> = (0..25)
            .map(|i| entry(i, &reject("{}", Some(i))).unwrap())
            .collect();
        let sizes: Vec<usize> = batches(entries).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        let big = "x".repeat(100 * 1024);
        let entries: Vec<Entry> = (0..5)
            .map(|i| entry(i, &reject(&big, None)).unwrap())
            .collect();
        let sizes: Vec<usize> = batches(entries).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }
}
