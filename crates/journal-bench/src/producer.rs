//! `--producer`: what the producer client costs the request path. Generated decisions are
//! recorded at `--rate` per second (paced in 1 ms ticks) for `--seconds`; each `record` call is
//! timed on its own. The queue is a stand-in that answers every `SendMessageBatch` after
//! `--latency-ms` (SQS's typical answer time), so the background task packs, batches and keeps
//! several calls in flight as it would against SQS; the figures are the `record` latency
//! percentiles and the calls per 1,000 records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use journal_producer::{BatchSender, EntryFailure, Producer, ProducerConfig, SendFailure};
use journal_synth::{generate_decisions, SynthConfig};
use tokio::time::Instant;

pub struct Options {
    pub rate: usize,
    pub seconds: usize,
    pub latency_ms: u64,
}

struct SlowQueue {
    latency: Duration,
    calls: AtomicU64,
}

impl BatchSender for SlowQueue {
    async fn send_batch(
        &self,
        _queue_url: &str,
        _bodies: &[String],
    ) -> Result<Vec<EntryFailure>, SendFailure> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency).await;
        Ok(Vec::new())
    }
}

pub fn run(o: &Options) {
    let per_tick = (o.rate / 1000).max(1);
    let n = per_tick * 1000 * o.seconds.max(1);
    let mut cfg = SynthConfig::new(7);
    cfg.tenants = vec!["bank_1".into()];
    let records = generate_decisions(cfg, n);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let queue = Arc::new(SlowQueue {
        latency: Duration::from_millis(o.latency_ms),
        calls: AtomicU64::new(0),
    });
    let (mut nanos, stats) = runtime.block_on(async {
        let producer = Producer::start(queue.clone(), ProducerConfig::new("bench"));
        let mut nanos: Vec<u64> = Vec::with_capacity(n);
        let start = Instant::now();
        for (tick, chunk) in records.chunks(per_tick).enumerate() {
            tokio::time::sleep_until(start + Duration::from_millis(tick as u64)).await;
            for r in chunk {
                let r = r.clone();
                let t = std::time::Instant::now();
                let recorded = producer.record(r);
                nanos.push(t.elapsed().as_nanos() as u64);
                recorded.expect("record taken");
            }
        }
        let report = producer.shutdown().await;
        (nanos, report.stats)
    });
    assert_eq!(stats.sent_records, n as u64, "every record sent: {stats:?}");
    nanos.sort_unstable();
    let pct =
        |p: f64| nanos[((nanos.len() as f64 * p) as usize).min(nanos.len() - 1)] as f64 / 1000.0;
    println!("producer_records={n}");
    println!("producer_rate_per_sec={}", per_tick * 1000);
    println!("producer_sqs_latency_ms={}", o.latency_ms);
    println!("producer_enqueue_p50_us={:.2}", pct(0.50));
    println!("producer_enqueue_p99_us={:.2}", pct(0.99));
    println!("producer_enqueue_p999_us={:.2}", pct(0.999));
    println!("producer_enqueue_max_us={:.2}", pct(1.0));
    println!(
        "producer_sqs_calls_per_1000_records={:.2}",
        stats.calls as f64 * 1000.0 / n as f64
    );
    println!(
        "producer_records_per_message={:.1}",
        stats.sent_records as f64 / stats.sent_messages.max(1) as f64
    );
    assert_eq!(stats.calls, queue.calls.load(Ordering::Relaxed));
}
