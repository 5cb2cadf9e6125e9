//! The client and its background task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::config::ProducerConfig;
use crate::pack::{Message, Packer};
use crate::sampling::Sampling;
use crate::sender::BatchSender;

/// What became of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// On its way to the queue.
    Queued,
    /// Left out by sampling (its tier's rate).
    SampledOut,
}

/// Why a record was not taken; the record comes back with the error.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a JSON object")]
    NotAnObject { record: Box<Value> },
    #[error("the record is {size} bytes serialized; a message holds at most {max}")]
    TooLarge {
        record: Box<Value>,
        size: usize,
        max: usize,
    },
    #[error("{capacity} records are already waiting to be sent; try again shortly")]
    Backpressure { record: Box<Value>, capacity: usize },
    #[error("the queue has been unreachable and {bytes} bytes of messages are spilled locally (the limit); records are refused until it drains")]
    Unreachable { record: Box<Value>, bytes: usize },
    #[error("the producer has stopped")]
    Stopped { record: Box<Value> },
}

impl RecordError {
    /// The record that was not taken.
    pub fn into_record(self) -> Value {
        match self {
            RecordError::NotAnObject { record }
            | RecordError::TooLarge { record, .. }
            | RecordError::Backpressure { record, .. }
            | RecordError::Unreachable { record, .. }
            | RecordError::Stopped { record } => *record,
        }
    }
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub accepted: u64,
    pub sampled_out: u64,
    pub refused: u64,
    pub sent_records: u64,
    pub sent_messages: u64,
    /// `SendMessageBatch` calls, retries included.
    pub calls: u64,
    pub retries: u64,
    /// Records in messages held locally now, waiting for the queue.
    pub spilled_records: u64,
    /// Records in messages SQS refused as malformed or too large (never retried; logged).
    pub failed_records: u64,
}

/// Where things stand after a flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushReport {
    pub stats: Stats,
}

impl FlushReport {
    /// Everything accepted so far reached the queue (or was refused by it, which is counted).
    pub fn all_sent(&self) -> bool {
        self.stats.spilled_records == 0
    }
}

#[derive(Default)]
struct Shared {
    accepted: AtomicU64,
    sampled_out: AtomicU64,
    refused: AtomicU64,
    sent_records: AtomicU64,
    sent_messages: AtomicU64,
    calls: AtomicU64,
    retries: AtomicU64,
    spilled_records: AtomicU64,
    spilled_bytes: AtomicUsize,
    failed_records: AtomicU64,
    refusing: AtomicBool,
}

impl Shared {
    fn stats(&self) -> Stats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            accepted: get(&self.accepted),
            sampled_out: get(&self.sampled_out),
            refused: get(&self.refused),
            sent_records: get(&self.sent_records),
            sent_messages: get(&self.sent_messages),
            calls: get(&self.calls),
            retries: get(&self.retries),
            spilled_records: get(&self.spilled_records),
            failed_records: get(&self.failed_records),
        }
    }
}

enum Command {
    Record(Vec<u8>),
    Flush(oneshot::Sender<()>),
}

/// The client. Cheap to share behind an `Arc`; [`Producer::record`] takes `&self`.
pub struct Producer {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    sampling: Sampling,
    max_record_bytes: usize,
    queue_capacity: usize,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    /// Starts the background task on the current Tokio runtime.
    pub fn start<S: BatchSender>(sender: S, config: ProducerConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            sender: Arc::new(sender),
            shared: shared.clone(),
            packer: Packer::new(config.max_message_bytes),
            in_flight: JoinSet::new(),
            spill: VecDeque::new(),
            config: config.clone(),
        };
        let task = tokio::spawn(worker.run(rx));
        Self {
            tx,
            shared,
            sampling: config.sampling.clone(),
            max_record_bytes: Packer::max_record_bytes(config.max_message_bytes),
            queue_capacity: config.queue_capacity,
            task,
        }
    }

    /// Takes a decision, outcome or review (the producer form: raw subject id and features,
    /// which ingest turns into refs and sealed features). Never waits: the record is sampled,
    /// serialized and handed to the background task, or comes back in the error.
    pub fn record(&self, mut record: Value) -> Result<Recorded, RecordError> {
        if !record.is_object() {
            return Err(RecordError::NotAnObject {
                record: Box::new(record),
            });
        }
        let rate = self.sampling.rate_of(&record);
        if record["kind"] == "decision" {
            let upstream = record["sampling_rate"].as_f64().unwrap_or(1.0);
            if rate < 1.0 {
                let id = record["decision_id"].as_str().unwrap_or_default();
                if !Sampling::keeps(id, rate) {
                    self.shared.sampled_out.fetch_add(1, Ordering::Relaxed);
                    return Ok(Recorded::SampledOut);
                }
            }
            record["sampling_rate"] = Value::from(upstream * rate);
        }
        if self.shared.refusing.load(Ordering::Relaxed) {
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            return Err(RecordError::Unreachable {
                record: Box::new(record),
                bytes: self.shared.spilled_bytes.load(Ordering::Relaxed),
            });
        }
        // Serializing a `Value` cannot fail: its keys are strings and its numbers finite.
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        if bytes.len() > self.max_record_bytes {
            return Err(RecordError::TooLarge {
                size: bytes.len(),
                max: self.max_record_bytes,
                record: Box::new(record),
            });
        }
        match self.tx.try_send(Command::Record(bytes)) {
            Ok(()) => {
                self.shared.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(Recorded::Queued)
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.refused.fetch_add(1, Ordering::Relaxed);
                Err(RecordError::Backpressure {
                    record: Box::new(record),
                    capacity: self.queue_capacity,
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(RecordError::Stopped {
                record: Box::new(record),
            }),
        }
    }

    /// Sends everything taken so far (spilled messages included: one more round of attempts)
    /// and waits for the answers.
    pub async fn flush(&self) -> FlushReport {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
        FlushReport {
            stats: self.shared.stats(),
        }
    }

    /// Flushes and stops the background task.
    pub async fn shutdown(self) -> FlushReport {
        let report = self.flush().await;
        drop(self.tx);
        let _ = self.task.await;
        report
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}

struct Worker<S> {
    sender: Arc<S>,
    shared: Arc<Shared>,
    packer: Packer,
    /// Batches being sent; each answers with the messages it could not deliver.
    in_flight: JoinSet<Vec<Message>>,
    spill: VecDeque<Message>,
    config: ProducerConfig,
}

impl<S: BatchSender> Worker<S> {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut deadline: Option<Instant> = None;
        let mut spill_retry = tokio::time::interval(self.config.spill_retry);
        spill_retry.tick().await;
        loop {
            tokio::select! {
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    self.returned(done);
                }
                command = rx.recv() => match command {
                    Some(Command::Record(bytes)) => {
                        self.packer.push(&bytes);
                        deadline.get_or_insert_with(|| Instant::now() + self.config.linger);
                        while self.packer.ready() >= self.config.batch_messages {
                            let batch = self.packer.take(self.config.batch_messages);
                            self.dispatch(batch).await;
                        }
                    }
                    Some(Command::Flush(done)) => {
                        self.drain_all(true).await;
                        deadline = None;
                        let _ = done.send(());
                    }
                    None => {
                        self.drain_all(true).await;
                        return;
                    }
                },
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    deadline = None;
                    self.packer.close();
                    while self.packer.ready() > 0 {
                        let batch = self.packer.take(self.config.batch_messages);
                        self.dispatch(batch).await;
                    }
                }
                _ = spill_retry.tick(), if !self.spill.is_empty() => {
                    self.retry_spill().await;
                }
            }
        }
    }

    /// Sends what is packed (and, with `spilled`, what is spilled) and waits for every answer.
    async fn drain_all(&mut self, spilled: bool) {
        self.packer.close();
        while self.packer.ready() > 0 {
            let batch = self.packer.take(self.config.batch_messages);
            self.dispatch(batch).await;
        }
        if spilled {
            self.retry_spill().await;
        }
        while let Some(done) = self.in_flight.join_next().await {
            self.returned(done);
        }
    }

    async fn retry_spill(&mut self) {
        let spilled: Vec<Message> = self.spill.drain(..).collect();
        self.unspill(&spilled);
        for batch in spilled.chunks(self.config.batch_messages) {
            self.dispatch(batch.to_vec()).await;
        }
    }

    /// Starts sending a batch, first waiting for a slot if `max_in_flight` are out.
    async fn dispatch(&mut self, batch: Vec<Message>) {
        while self.in_flight.len() >= self.config.max_in_flight.max(1) {
            match self.in_flight.join_next().await {
                Some(done) => self.returned(done),
                None => break,
            }
        }
        let (sender, shared, config) = (
            self.sender.clone(),
            self.shared.clone(),
            self.config.clone(),
        );
        self.in_flight
            .spawn(async move { send_with_retries(&*sender, &shared, &config, batch).await });
    }

    fn returned(&mut self, done: Result<Vec<Message>, tokio::task::JoinError>) {
        let unsent = match done {
            Ok(unsent) => unsent,
            Err(e) => {
                // A send task cannot panic short of a bug; its messages are then unaccounted.
                tracing::error!(error = %e, "a send task failed");
                return;
            }
        };
        if unsent.is_empty() {
            return;
        }
        let records: u64 = unsent.iter().map(|m| m.records).sum();
        tracing::warn!(
            messages = unsent.len(),
            records,
            queue_url = %self.config.queue_url,
            "queue unreachable after retries; messages kept locally"
        );
        for m in unsent {
            self.shared
                .spilled_records
                .fetch_add(m.records, Ordering::Relaxed);
            let bytes = self
                .shared
                .spilled_bytes
                .fetch_add(m.body.len(), Ordering::Relaxed)
                + m.body.len();
            if bytes >= self.config.spill_capacity_bytes
                && !self.shared.refusing.swap(true, Ordering::Relaxed)
            {
                tracing::error!(
                    bytes,
                    "spill buffer full: new records are refused until the queue takes them"
                );
            }
            self.spill.push_back(m);
        }
    }

    fn unspill(&self, messages: &[Message]) {
        let records: u64 = messages.iter().map(|m| m.records).sum();
        let bytes: usize = messages.iter().map(|m| m.body.len()).sum();
        self.shared
            .spilled_records
            .fetch_sub(records, Ordering::Relaxed);
        let left = self
            .shared
            .spilled_bytes
            .fetch_sub(bytes, Ordering::Relaxed)
            - bytes;
        if left < self.config.spill_capacity_bytes {
            self.shared.refusing.store(false, Ordering::Relaxed);
        }
    }
}

/// Sends one batch, retrying what failed with backoff; returns what could not be delivered.
async fn send_with_retries<S: BatchSender>(
    sender: &S,
    shared: &Shared,
    config: &ProducerConfig,
    mut pending: Vec<Message>,
) -> Vec<Message> {
    for attempt in 1..=config.backoff.max_attempts.max(1) {
        if attempt > 1 {
            shared.retries.fetch_add(1, Ordering::Relaxed);
            config.backoff.sleep(attempt - 1).await;
        }
        shared.calls.fetch_add(1, Ordering::Relaxed);
        let bodies: Vec<String> = pending.iter().map(|m| m.body.clone()).collect();
        match sender.send_batch(&config.queue_url, &bodies).await {
            Ok(failures) => {
                let mut again = Vec::new();
                let mut failed = vec![false; pending.len()];
                for f in &failures {
                    let Some(slot) = failed.get_mut(f.index) else {
                        continue;
                    };
                    *slot = true;
                    if f.retryable {
                        again.push(f.index);
                    } else {
                        let records = pending[f.index].records;
                        shared.failed_records.fetch_add(records, Ordering::Relaxed);
                        tracing::error!(records, reason = %f.message, "the queue refused a message");
                    }
                }
                for (m, _) in pending.iter().zip(&failed).filter(|(_, f)| !**f) {
                    shared.sent_records.fetch_add(m.records, Ordering::Relaxed);
                    shared.sent_messages.fetch_add(1, Ordering::Relaxed);
                }
                pending = again.into_iter().map(|i| pending[i].clone()).collect();
                if pending.is_empty() {
                    return pending;
                }
            }
            Err(e) => tracing::warn!(attempt, error = %e, "send failed"),
        }
    }
    pending
}

#[cfg(test)]
mod tests;
