//! The client's settings.

use std::time::Duration;

use crate::sampling::Sampling;

/// Exponential backoff with full jitter, for the partial failures the SDK does not retry by
/// itself (SendMessageBatch failed entries here; BatchWriteItem `UnprocessedItems` in
/// `journal-aws`, which uses this one too).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Total attempts, the first one included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// Delay before retry `retry` (1-based): uniform in `[0, min(cap, base * 2^(retry-1))]`.
    pub fn delay(&self, retry: u32) -> Duration {
        use rand::Rng;
        let exp = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.cap);
        let ms = exp.as_millis() as u64;
        // The thread-local RNG is not Send: it must never live across an await.
        Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
    }

    pub async fn sleep(&self, retry: u32) {
        tokio::time::sleep(self.delay(retry)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_bounded_by_the_cap() {
        let b = Backoff::default();
        for retry in 1..40 {
            assert!(b.delay(retry) <= b.cap);
        }
        assert!(b.delay(1) <= b.base);
    }
}

#[derive(Clone, Debug)]
pub struct ProducerConfig {
    pub queue_url: String,
    /// Most bytes of one message body. Ten of them go in one `SendMessageBatch`, whose total
    /// SQS caps at 256 KiB on queues with the historical limit, hence a tenth of it.
    pub max_message_bytes: usize,
    /// Messages per `SendMessageBatch` (SQS allows 10).
    pub batch_messages: usize,
    /// How long a partly filled batch waits for more records before it is sent.
    pub linger: Duration,
    /// `SendMessageBatch` calls in flight at once.
    pub max_in_flight: usize,
    /// Records waiting for the background task before `record` refuses (back-pressure).
    pub queue_capacity: usize,
    /// Bytes of unsent messages kept locally while the queue is unreachable; beyond it
    /// `record` refuses new records.
    pub spill_capacity_bytes: usize,
    /// How often spilled messages are tried again.
    pub spill_retry: Duration,
    pub backoff: Backoff,
    pub sampling: Sampling,
}

impl ProducerConfig {
    pub fn new(queue_url: impl Into<String>) -> Self {
        Self {
            queue_url: queue_url.into(),
            max_message_bytes: 25 * 1024,
            batch_messages: 10,
            linger: Duration::from_millis(20),
            max_in_flight: 8,
            queue_capacity: 100_000,
            spill_capacity_bytes: 64 * 1024 * 1024,
            spill_retry: Duration::from_secs(5),
            // Then spill: a request path keeps going while the queue is away.
            backoff: Backoff {
                max_attempts: 5,
                ..Backoff::default()
            },
            sampling: Sampling::default(),
        }
    }
}
