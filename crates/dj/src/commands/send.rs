//! `dj send`: records to the ingest queue, one record per SQS message, ten messages per
//! SendMessageBatch call (fewer when ten would pass SQS's 256 KiB batch limit). Refused entries
//! are listed one by one and make the exit code 1; a call that fails as a whole stops the run.

use std::io::Read as _;
use std::path::Path;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use indicatif::{ProgressBar, ProgressStyle};
use journal_core::timestamp::Timestamp;
use journal_synth::{generate, latest_occurred_at, producer_body, SynthConfig};
use serde_json::Value;

use super::Ctx;
use crate::cli::SendArgs;
use crate::error::{error_chain, DjError, EXIT_NEGATIVE};
use crate::invoke::load_aws_config;
use crate::out;
use crate::render::table::new_table;

/// SQS limits: entries per batch, and bytes per message and per batch.
pub const MAX_BATCH_ENTRIES: usize = 10;
pub const MAX_BATCH_BYTES: usize = 262_144;

/// One message to send and how to name it in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub label: String,
    pub body: String,
}

/// An entry SQS (or `dj`) refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub label: String,
    pub code: String,
    pub message: String,
}

pub async fn run(ctx: &Ctx, args: SendArgs) -> Result<u8, DjError> {
    let messages = match (&args.file, args.generate) {
        (Some(path), _) => read_jsonl(path)?,
        (None, Some(n)) => generated(n, args.seed, args.start, ctx.global.tenant.as_deref())?,
        (None, None) => return Err(DjError::usage("give --file or --generate")),
    };
    let (batches, mut refused) = batches(messages.clone());

    let sdk = load_aws_config().await;
    let mut conf = aws_sdk_sqs::config::Builder::from(&sdk);
    if let Some(url) = &args.aws_endpoint_url {
        conf = conf.endpoint_url(url);
    }
    let sqs = aws_sdk_sqs::Client::from_conf(conf.build());

    let progress = ProgressBar::new(messages.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} messages ({eta} left)") {
        progress.set_style(style);
    }
    let mut accepted = 0usize;
    for batch in &batches {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(&m.body)
                    .build()
                    .map_err(|e| DjError::Queue {
                        queue_url: args.queue_url.clone(),
                        detail: format!("{}: {e}", m.label),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let result = sqs
            .send_message_batch()
            .queue_url(&args.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let output = match result {
            Ok(o) => o,
            Err(e) => {
                progress.finish_and_clear();
                return Err(DjError::Queue {
                    queue_url: args.queue_url.clone(),
                    detail: format!(
                        "{} (at {}; {accepted} of {} messages were accepted before)",
                        error_chain(&e),
                        batch.first().map(|m| m.label.as_str()).unwrap_or("?"),
                        messages.len()
                    ),
                });
            }
        };
        accepted += output.successful().len();
        for f in output.failed() {
            let label = f
                .id()
                .strip_prefix('m')
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| batch.get(i))
                .map(|m| m.label.clone())
                .unwrap_or_else(|| format!("entry {}", f.id()));
            refused.push(Refused {
                label,
                code: f.code().to_string(),
                message: f.message().unwrap_or_default().to_string(),
            });
        }
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();

    let line = format!(
        "sent {accepted} of {} message(s) to {} in {} batch call(s)",
        messages.len(),
        args.queue_url,
        batches.len()
    );
    if refused.is_empty() {
        out::line(ctx.style.good(&line));
        return Ok(0);
    }
    out::line(ctx.style.bad(&line));
    let mut t = new_table(&["message", "code", "reason"]);
    for r in &refused {
        t.add_row(vec![r.label.clone(), r.code.clone(), r.message.clone()]);
    }
    out::line(t.to_string());
    out::line(
        ctx.style
            .bad(&format!("{} message(s) refused", refused.len())),
    );
    Ok(EXIT_NEGATIVE)
}

/// The id of a record of any kind (the idempotency key), if it has one.
fn record_id(record: &Value) -> Option<&str> {
    let key = match record.get("kind").and_then(Value::as_str) {
        Some("outcome") => "outcome_id",
        Some("review") => "review_id",
        _ => "decision_id",
    };
    record.get(key).and_then(Value::as_str)
}

/// Parses JSON Lines text: every non-blank line is one message, sent as is.
pub fn parse_jsonl(text: &str) -> Vec<Message> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let body = l.trim_end_matches('\r').to_string();
            let id = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| record_id(&v).map(str::to_string));
            let label = match id {
                Some(id) => format!("line {} ({id})", i + 1),
                None => format!("line {}", i + 1),
            };
            Message { label, body }
        })
        .collect()
}

fn read_jsonl(path: &Path) -> Result<Vec<Message>, DjError> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|source| DjError::File {
        what: "reading records file",
        path: path.to_path_buf(),
        source,
    })?;
    let messages = parse_jsonl(&text);
    if messages.is_empty() {
        return Err(DjError::usage(format!(
            "records file {} has no records (expected one JSON object per line)",
            path.display()
        )));
    }
    Ok(messages)
}

/// `n` synthetic records; unless `start` is given, the stream ends a minute before now (ingest
/// refuses records from the future).
fn generated(
    n: usize,
    seed: u64,
    start: Option<Timestamp>,
    tenant: Option<&str>,
) -> Result<Vec<Message>, DjError> {
    if n == 0 {
        return Err(DjError::usage("--generate needs at least 1 record"));
    }
    let mut cfg = SynthConfig::new(seed);
    if let Some(t) = tenant {
        cfg.tenants = vec![t.to_string()];
    }
    let records = match start {
        Some(s) => {
            cfg.start = s;
            generate(cfg, n)
        }
        None => {
            let first = generate(cfg.clone(), n);
            let span = latest_occurred_at(&first)
                .map(|l| l.millis() - cfg.start.millis())
                .unwrap_or(0);
            let start_ms = Timestamp::now().millis() - span - 60_000;
            cfg.start = Timestamp::from_millis(start_ms).map_err(|e| {
                DjError::usage(format!(
                    "{n} generated records span too long to end before now ({e}); give --start"
                ))
            })?;
            generate(cfg, n)
        }
    };
    Ok(records
        .iter()
        .enumerate()
        .map(|(i, r)| Message {
            label: format!("record {} ({})", i + 1, record_id(r).unwrap_or("?")),
            body: String::from_utf8_lossy(&producer_body(r)).into_owned(),
        })
        .collect())
}

/// Groups messages into batches of at most ten and 256 KiB; a message alone over the limit is
/// refused here rather than sent.
pub fn batches(messages: Vec<Message>) -> (Vec<Vec<Message>>, Vec<Refused>) {
    let mut batches: Vec<Vec<Message>> = Vec::new();
    let mut refused = Vec::new();
    let mut current: Vec<Message> = Vec::new();
    let mut bytes = 0;
    for m in messages {
        let size = m.body.len();
        if size > MAX_BATCH_BYTES {
            refused.push(Refused {
                label: m.label,
                code: "TooLarge".into(),
                message: format!("{size} bytes; SQS takes at most {MAX_BATCH_BYTES}"),
            });
            continue;
        }
        if current.len() == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(m);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize, size: usize) -> Message {
        Message {
            label: format!("m{i}"),
            body: "x".repeat(size),
        }
    }

    #[test]
    fn batches_hold_ten_messages_and_at_most_256_kib() {
        let (b, refused) = batches((0..23).map(|i| msg(i, 10)).collect());
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 3]);
        assert!(refused.is_empty());

        let (b, refused) = batches(vec![
            msg(0, 100_000),
            msg(1, 100_000),
            msg(2, 100_000),
            msg(3, MAX_BATCH_BYTES + 1),
            msg(4, 5),
        ]);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].label, "m3");
    }

    #[test]
    fn jsonl_lines_become_messages_named_by_line_and_id() {
        let text = "{\"kind\":\"decision\",\"decision_id\":\"d1\"}\r\n\n  \n{\"kind\":\"outcome\",\"decision_id\":\"d1\",\"outcome_id\":\"o1\"}\nnot json\n";
        let m = parse_jsonl(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].label, "line 1 (d1)");
        assert_eq!(m[0].body, "{\"kind\":\"decision\",\"decision_id\":\"d1\"}");
        assert_eq!(m[1].label, "line 4 (o1)");
        assert_eq!(m[2].label, "line 5");
        assert_eq!(m[2].body, "not json");
    }

    #[test]
    fn generated_records_end_before_now_and_keep_the_tenant() {
        let m = generated(50, 7, None, Some("bank_456")).unwrap();
        assert_eq!(m.len(), 50);
        let now = Timestamp::now();
        for msg in &m {
            let v: Value = serde_json::from_str(&msg.body).unwrap();
            assert_eq!(v["tenant_id"], "bank_456");
            let at = Timestamp::parse(v["occurred_at"].as_str().unwrap()).unwrap();
            assert!(at < now, "{at} is not before {now}");
        }
        assert!(generated(0, 7, None, None).is_err());
    }
}
