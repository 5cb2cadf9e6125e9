//! Benchmarks that print `name=value` lines. Run all with:
//!
//! ```text
//! cargo run --release -p journal-bench
//! ```
//!
//! `--ingest`: the in-process ingest CPU path on one thread — parse and validate each SQS body,
//! derive `subject_ref` and `features_hmac` (HMAC-SHA256), seal raw features (AES-256-GCM),
//! canonicalize and leaf-hash each record, build the Arrow batch, write Parquet with ZSTD and
//! bloom filters, and compute the Merkle root — on the synthetic mix (~800-byte records), in
//! blocks the size of a busy invocation.
//!
//! `--replay` (`--records` 20000, `--block`, `--lookups` 2000, `--rounds`,
//! `--compacted-row-group`): the cost of one lookup by decision id and the speed of full chain
//! verification; see [`replay`].
//!
//! `--compact` (`--records` 200000, `--block` 500, `--rounds`, `--zstd-level`,
//! `--verify-every`): compaction throughput, bytes per record of the output and the run's peak
//! heap; see [`compact`].
//!
//! `--retention` (`--records` 100000, `--block` 500, `--target-kib` 1024, `--erasures` 5):
//! files archived and expired per second by a retention run, and seconds per subject erased;
//! see [`retention`].
//!
//! `--producer` (`--rate` 20000, `--seconds` 5, `--latency-ms` 20): the producer client's
//! `record` latency at a paced rate and its SQS calls per 1,000 records; see [`producer`].
//!
//! Without `--ingest`, `--replay`, `--compact`, `--retention` or `--producer`, all five run,
//! each with its defaults.
//!
//! `DJ_BENCH_DUMP=path` writes a copy of the first ingest block (`--ingest`) or of the
//! compaction output (`--compact`) there.
//!
//! Every run first prints `machine_cpuid_ns`, the cost of one `cpuid` here: each ZSTD context
//! pays three, so ingest and compaction figures depend on it (see [`machine`]).

mod block_on;
mod compact;
mod machine;
mod peak_alloc;
mod producer;
mod replay;
mod retention;

use std::time::Instant;

use journal_core::columnar::WriterConfig;
use journal_core::features_crypto::DataKey;
use journal_core::ingest::{needs_data_key, prepare_block, seal_record};
use journal_core::keys::MasterKey;
use journal_core::timestamp::Timestamp;
use journal_core::validate::{parse_body, Limits};
use journal_synth::{generate_decisions, latest_occurred_at, producer_body, SynthConfig};

// The same allocator as the function binaries, so the figures are theirs; it counts only
// inside `GLOBAL.measure`, so a bench can report a step's peak heap.
#[global_allocator]
static GLOBAL: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc::new();

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn opt(name: &str) -> Option<usize> {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
}

fn main() {
    let has = |flag: &str| std::env::args().any(|a| a == flag);
    let chosen = [
        has("--ingest"),
        has("--replay"),
        has("--compact"),
        has("--retention"),
        has("--producer"),
    ];
    // No mode named: every benchmark, each with its own defaults.
    let all = !chosen.iter().any(|c| *c);
    let rounds = arg("--rounds", 3);
    if let Some(ns) = machine::cpuid_ns() {
        println!("machine_cpuid_ns={ns:.0}");
    }
    if all || chosen[0] {
        let zstd_level = arg("--zstd-level", WriterConfig::default().zstd_level as usize) as i32;
        bench_ingest(
            arg("--records", 200_000),
            arg("--block", 2_000),
            rounds,
            zstd_level,
        );
    }
    if all || chosen[1] {
        let block = arg("--block", 2_000);
        replay::run(&replay::Options {
            records: arg("--records", 20_000),
            block,
            lookups: arg("--lookups", 2_000),
            rounds,
            compacted_row_group: arg("--compacted-row-group", block),
        });
    }
    if all || chosen[2] {
        compact::run(&compact::Options {
            records: arg("--records", 200_000),
            block: arg("--block", 500),
            rounds,
            zstd_level: opt("--zstd-level").map(|l| l as i32),
            verify_every: opt("--verify-every"),
        });
    }
    if all || chosen[3] {
        retention::run(&retention::Options {
            records: arg("--records", 100_000),
            block: arg("--block", 500),
            target_kib: arg("--target-kib", 1024),
            erasures: arg("--erasures", 5),
        });
    }
    if all || chosen[4] {
        producer::run(&producer::Options {
            rate: arg("--rate", 20_000),
            seconds: arg("--seconds", 5),
            latency_ms: arg("--latency-ms", 20) as u64,
        });
    }
}

fn bench_ingest(n: usize, block_size: usize, rounds: usize, zstd_level: i32) {
    let mut cfg = SynthConfig::new(7);
    cfg.tenants = vec!["bank_1".into()];
    let decisions = generate_decisions(cfg, n);
    let now = latest_occurred_at(&decisions).expect("records were generated");
    let bodies: Vec<Vec<u8>> = decisions.iter().map(producer_body).collect();
    let input_bytes: usize = bodies.iter().map(Vec::len).sum();
    let master = MasterKey::from_bytes(vec![7u8; 32]).expect("32-byte key");
    let keys = master.tenant_keys("bank_1");
    // A real run fetches each subject's key once (cached); the bench holds one.
    let data_key = DataKey::from_bytes(&[9u8; 32]).expect("32-byte key");
    let writer = WriterConfig {
        zstd_level,
        ..WriterConfig::default()
    };
    let limits = Limits::default();
    // A copy of the first block, for inspection (pyarrow, DuckDB); not part of the phases.
    let dump = std::env::var("DJ_BENCH_DUMP").ok();

    let mut best = f64::MAX;
    let mut best_phases = Phases::default();
    let mut stored = 0usize;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut phases = Phases::default();
        let mut dumping = std::time::Duration::ZERO;
        stored = 0;
        for (b, chunk) in bodies.chunks(block_size).enumerate() {
            let t0 = Instant::now();
            let mut records = Vec::with_capacity(chunk.len());
            for body in chunk {
                for parsed in parse_body(body, &limits, now).expect("generated bodies are valid") {
                    records.push(parsed.result.expect("generated records are valid"));
                }
            }
            let t1 = Instant::now();
            let mut sealed = Vec::with_capacity(records.len());
            for record in records {
                let dk = needs_data_key(&record, true).then_some(&data_key);
                sealed.push(seal_record(record, &keys, dk, now).expect("sealable"));
            }
            let t2 = Instant::now();
            let block_id = format!("01BENCH{b:019}");
            let key = format!("decisions/tenant=bank_1/b/{block_id}.parquet");
            let prepared =
                prepare_block("bank_1", &block_id, &key, sealed, &writer, Timestamp::now())
                    .expect("block builds");
            stored += prepared.file.bytes.len();
            let t3 = Instant::now();
            if let Some(path) = dump.as_ref().filter(|_| b == 0) {
                std::fs::write(path, &prepared.file.bytes).expect("dump writable");
            }
            let t3_dumped = Instant::now();
            dumping += t3_dumped - t3;
            drop(prepared);
            let t4 = Instant::now();
            phases.add([t1 - t0, t2 - t1, t3 - t2, t4 - t3_dumped]);
        }
        let elapsed = (started.elapsed() - dumping).as_secs_f64();
        if elapsed < best {
            best = elapsed;
            best_phases = phases;
        }
    }
    println!("ingest_records={n}");
    println!("ingest_block_records={block_size}");
    println!("ingest_zstd_level={zstd_level}");
    println!(
        "ingest_input_bytes_per_record={:.0}",
        input_bytes as f64 / n as f64
    );
    println!("ingest_records_per_sec_per_core={:.0}", n as f64 / best);
    println!("stored_bytes_per_record={:.1}", stored as f64 / n as f64);
    for (name, secs) in Phases::NAMES.iter().zip(best_phases.secs) {
        println!("ingest_{name}_ns_per_record={:.0}", secs * 1e9 / n as f64);
    }
}

/// Time spent in each step of the fastest round (where a regression shows first).
#[derive(Clone, Copy, Default)]
struct Phases {
    secs: [f64; 4],
}

impl Phases {
    const NAMES: [&'static str; 4] = ["parse", "seal", "block", "drop"];

    fn add(&mut self, spans: [std::time::Duration; 4]) {
        for (total, span) in self.secs.iter_mut().zip(spans) {
            *total += span.as_secs_f64();
        }
    }
}
