use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::config::Backoff;
use crate::sender::{EntryFailure, SendFailure};

/// A queue stand-in: records every delivered body; `down` fails whole calls, `flaky` fails the
/// first entry of each of the next calls, `hang` never answers.
#[derive(Default)]
struct FakeQueue {
    delivered: Mutex<Vec<String>>,
    down: AtomicBool,
    flaky: AtomicU64,
    hang: AtomicBool,
}

impl BatchSender for FakeQueue {
    async fn send_batch(
        &self,
        queue_url: &str,
        bodies: &[String],
    ) -> Result<Vec<EntryFailure>, SendFailure> {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(SendFailure {
                queue_url: queue_url.into(),
                message: "connection refused".into(),
            });
        }
        let flaky = self
            .flaky
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let mut delivered = self.delivered.lock().unwrap();
        let mut failures = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            if flaky && i == 0 {
                failures.push(EntryFailure {
                    index: 0,
                    retryable: true,
                    message: "InternalError".into(),
                });
            } else {
                delivered.push(b.clone());
            }
        }
        Ok(failures)
    }
}

impl FakeQueue {
    fn records(&self) -> Vec<Value> {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| serde_json::from_str::<Vec<Value>>(b).unwrap())
            .collect()
    }
}

fn config() -> ProducerConfig {
    ProducerConfig {
        backoff: Backoff {
            max_attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
        },
        spill_retry: Duration::from_secs(3600),
        ..ProducerConfig::new("https://sqs.local/000000000000/decisions")
    }
}

fn decision(i: u32, tier: &str) -> Value {
    json!({"schema_version": 1, "kind": "decision", "decision_id": format!("d-{i:06}"),
        "tenant_id": "bank_1", "occurred_at": "2026-03-15T10:00:00Z", "risk_tier": tier,
        "subject": {"id": format!("user_{}", i % 97)},
        "rationale": "x".repeat(600)})
}

#[tokio::test]
async fn records_are_packed_sent_in_few_calls_and_all_arrive() {
    let queue = Arc::new(FakeQueue::default());
    let p = Producer::start(queue.clone(), config());
    for i in 0..3_000 {
        assert_eq!(p.record(decision(i, "low")).unwrap(), Recorded::Queued);
    }
    let report = p.flush().await;
    assert!(report.all_sent(), "{report:?}");
    let got = queue.records();
    assert_eq!(got.len(), 3_000);
    assert!(got.iter().all(|r| r["sampling_rate"] == 1.0));
    let s = report.stats;
    assert_eq!((s.accepted, s.sent_records), (3_000, 3_000));
    // About 800-byte records, 25 KiB messages, ten per call: about 300 records a call.
    assert!(s.calls <= 15, "{s:?}");
    assert!(queue
        .delivered
        .lock()
        .unwrap()
        .iter()
        .all(|b| b.len() <= 25 * 1024));
}

#[tokio::test]
async fn failed_entries_are_retried_and_delivered_once() {
    let queue = Arc::new(FakeQueue::default());
    queue.flaky.store(3, Ordering::SeqCst);
    let p = Producer::start(queue.clone(), config());
    for i in 0..1_000 {
        p.record(decision(i, "low")).unwrap();
    }
    let report = p.shutdown().await;
    assert!(report.all_sent(), "{report:?}");
    assert!(report.stats.retries >= 3, "{report:?}");
    let mut ids: Vec<String> = queue
        .records()
        .iter()
        .map(|r| r["decision_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1_000);
}

#[tokio::test]
async fn an_unreachable_queue_spills_then_refuses_and_nothing_is_lost() {
    let queue = Arc::new(FakeQueue::default());
    queue.down.store(true, Ordering::SeqCst);
    let p = Producer::start(
        queue.clone(),
        ProducerConfig {
            spill_capacity_bytes: 40 * 1024,
            ..config()
        },
    );
    for i in 0..100 {
        p.record(decision(i, "low")).unwrap();
    }
    let report = p.flush().await;
    assert_eq!(report.stats.spilled_records, 100, "{report:?}");
    assert!(!report.all_sent());
    // Over the spill limit: the next record comes back to the caller.
    let err = p.record(decision(100, "low")).unwrap_err();
    assert!(matches!(err, RecordError::Unreachable { .. }), "{err}");
    assert_eq!(err.into_record()["decision_id"], "d-000100");
    assert_eq!(p.stats().refused, 1);

    // The queue is back: the next flush delivers the spilled messages; records are taken again.
    queue.down.store(false, Ordering::SeqCst);
    let report = p.flush().await;
    assert!(report.all_sent(), "{report:?}");
    assert_eq!(queue.records().len(), 100);
    assert_eq!(p.record(decision(100, "low")).unwrap(), Recorded::Queued);
    assert_eq!(p.shutdown().await.stats.sent_records, 101);
}

#[tokio::test]
async fn sampling_keeps_the_same_low_risk_decisions_and_every_high_risk_one() {
    let queue = Arc::new(FakeQueue::default());
    let p = Producer::start(
        queue.clone(),
        ProducerConfig {
            sampling: Sampling::default().with_rate("low", 0.1),
            ..config()
        },
    );
    let mut expected = 0;
    for i in 0..2_000 {
        let tier = if i % 4 == 0 { "high" } else { "low" };
        let kept = tier == "high" || Sampling::keeps(&format!("d-{i:06}"), 0.1);
        let r = p.record(decision(i, tier)).unwrap();
        assert_eq!(r == Recorded::Queued, kept, "{i}");
        expected += u64::from(kept);
    }
    p.record(json!({"kind": "outcome", "outcome_id": "o-1", "decision_id": "d-000001"}))
        .unwrap();
    let report = p.shutdown().await;
    assert_eq!(report.stats.sent_records, expected + 1);
    assert_eq!(report.stats.sampled_out, 2_000 - expected);
    for r in queue.records() {
        match r["risk_tier"].as_str() {
            Some("high") => assert_eq!(r["sampling_rate"], 1.0),
            Some(_) => assert_eq!(r["sampling_rate"], 0.1),
            None => assert!(r.get("sampling_rate").is_none(), "{r}"),
        }
    }
}

#[tokio::test]
async fn a_full_queue_and_bad_input_are_refused_with_the_record_back() {
    let queue = Arc::new(FakeQueue::default());
    queue.hang.store(true, Ordering::SeqCst);
    let p = Producer::start(
        queue.clone(),
        ProducerConfig {
            queue_capacity: 4,
            max_in_flight: 1,
            batch_messages: 1,
            max_message_bytes: 1_000,
            ..config()
        },
    );
    let mut refused = None;
    for i in 0..1_000 {
        if let Err(e) = p.record(decision(i, "low")) {
            refused = Some(e);
            break;
        }
        tokio::task::yield_now().await;
    }
    let err = refused.expect("back-pressure once the sends hang");
    assert!(matches!(err, RecordError::Backpressure { .. }), "{err}");
    let err = p.record(json!("not an object")).unwrap_err();
    assert!(matches!(err, RecordError::NotAnObject { .. }));
    let mut big = decision(1, "low");
    big["rationale"] = json!("y".repeat(2_000));
    let err = p.record(big).unwrap_err();
    assert!(
        matches!(err, RecordError::TooLarge { max: 998, .. }),
        "{err}"
    );
}
