//! `--compact`: what compaction costs (DESIGN §11 budgets: ≥ 200,000 records/s per core, ≤ 160
//! bytes per record on the generated data) and how much memory one run needs.
//!
//! `--records` decisions are ingested through the real pipeline into the in-memory ports,
//! `--block` per ingest call (one small file each), then one `Compactor::run` over the
//! partition does all of it: plan, merge in chain order, write, read back and check every block
//! against the chain, switch every pointer, mark the inputs. One thread, no runtime: the time
//! is one core's. The peak is the heap high-water mark during the run above what was live
//! before it (the in-memory store already holds the inputs, as S3 would), taken in one more
//! round that is not timed, since counting allocations slows the run.

use std::time::Instant;

use journal_core::compact::{merge, plan, Compactor, CompactorConfig};
use journal_core::ports::{FileState, JournalIndex, ObjectStore};

use crate::block_on::block_on;
use crate::replay::journal::{self, TENANT};
use crate::GLOBAL;

pub struct Options {
    pub records: usize,
    pub block: usize,
    pub rounds: usize,
    /// Output ZSTD level and read-back re-hash rate; the compactor's defaults when `None`.
    pub zstd_level: Option<i32>,
    pub verify_every: Option<usize>,
}

#[derive(Default)]
struct Round {
    seconds: f64,
    merge_seconds: f64,
    input_files: usize,
    input_bytes: u64,
    output_files: usize,
    output_bytes: u64,
    peak_bytes: usize,
}

pub fn run(o: &Options) {
    assert!(
        o.records > 0 && o.block > 0,
        "--records and --block must be positive"
    );
    let mut best: Option<Round> = None;
    for _ in 0..o.rounds.max(1) {
        let round = one_round(o, false);
        if best.as_ref().is_none_or(|b| round.seconds < b.seconds) {
            best = Some(round);
        }
    }
    let b = best.unwrap_or_default();
    // Counting allocations slows the run it watches, so the peak comes from a round of its own.
    let peak_bytes = one_round(o, true).peak_bytes;
    let n = o.records as f64;
    let defaults = CompactorConfig::default();
    println!("compact_records={}", o.records);
    println!(
        "compact_zstd_level={}",
        o.zstd_level.unwrap_or(defaults.writer.zstd_level)
    );
    println!(
        "compact_verify_every={}",
        o.verify_every.unwrap_or(defaults.verify_every)
    );
    println!("compact_input_files={}", b.input_files);
    println!(
        "compact_input_bytes_per_record={:.1}",
        b.input_bytes as f64 / n
    );
    println!("compact_output_files={}", b.output_files);
    println!("compact_records_per_sec_per_core={:.0}", n / b.seconds);
    println!(
        "compact_merge_only_records_per_sec_per_core={:.0}",
        n / b.merge_seconds
    );
    println!(
        "compacted_bytes_per_record={:.1}",
        b.output_bytes as f64 / n
    );
    println!("compact_peak_heap_bytes={peak_bytes}");
    println!(
        "compact_peak_heap_mib={:.1}",
        peak_bytes as f64 / (1024.0 * 1024.0)
    );
}

/// One compaction of a freshly ingested journal; `count_peak` measures its peak heap (and slows
/// it).
fn one_round(o: &Options, count_peak: bool) -> Round {
    let journal = journal::ingest(o.records, o.block);
    let (store, index) = (&journal.ingest.store, &journal.ingest.index);
    let date = journal.now.date_string();
    let entries = block_on(index.list_manifest(TENANT, &date)).expect("manifest readable");
    let mut config = CompactorConfig::default();
    if let Some(level) = o.zstd_level {
        config.writer.zstd_level = level;
    }
    if let Some(every) = o.verify_every {
        config.verify_every = every;
    }
    // Every file was just written into the open hour: merge it now.
    config.plan.settle_ms = 0;
    config.plan.whole_hours = false;

    // The merge alone (no read-back, no switch), for the split of the cost.
    let planned = plan(&entries, journal.now, &config.plan);
    let started = Instant::now();
    for out in &planned.outputs {
        block_on(merge(store, index, out, &config.writer)).expect("merge");
    }
    let merge_seconds = started.elapsed().as_secs_f64();

    let master = &journal.ingest.master;
    let compactor = Compactor::new(store, index, master, config, "bench");
    let compact = || {
        let started = Instant::now();
        let report = block_on(compactor.run(TENANT, &date, journal.now)).expect("compaction");
        (report, started.elapsed().as_secs_f64())
    };
    let ((report, seconds), peak_bytes) = if count_peak {
        GLOBAL.measure(compact)
    } else {
        (compact(), 0)
    };

    let after = block_on(index.list_manifest(TENANT, &date)).expect("manifest readable");
    let compacted = after
        .iter()
        .filter(|e| e.state == FileState::Compacted)
        .count();
    assert!(
        compacted == entries.len()
            && report.written.iter().map(|w| w.rows).sum::<u64>() == o.records as u64,
        "compaction left files behind: {compacted} of {} inputs merged, report {:?}",
        entries.len(),
        report.written
    );
    let mut output_bytes = 0;
    for w in &report.written {
        let bytes = block_on(store.get_object(&w.file_key))
            .expect("store readable")
            .expect("output stored");
        output_bytes += bytes.len() as u64;
        if let Ok(path) = std::env::var("DJ_BENCH_DUMP") {
            std::fs::write(&path, &bytes).expect("dump writable");
        }
    }
    Round {
        seconds,
        merge_seconds,
        input_files: entries.len(),
        input_bytes: entries.iter().map(|e| e.size).sum(),
        output_files: report.written.len(),
        output_bytes,
        peak_bytes,
    }
}
