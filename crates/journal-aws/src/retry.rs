//! Backoff for the partial failures the SDK does not retry by itself: the producer client's
//! (the lightest crate both use).

pub use journal_producer::Backoff;
