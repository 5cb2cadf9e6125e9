//! Exponential backoff with full jitter for the partial failures the SDK does not retry by itself
//! (BatchWriteItem `UnprocessedItems`, SendMessageBatch failed entries).

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Copy, Debug)]
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
    /// Delay before retry number `retry` (1-based): uniform in `[0, min(cap, base * 2^(retry-1))]`.
    pub fn delay(&self, retry: u32) -> Duration {
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
