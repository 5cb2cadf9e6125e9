//! `--retention`: how many files a retention run archives and expires per second, on a tenant
//! of `--records` decisions (default 100,000) ingested `--block` per file and compacted into
//! `--target-kib` files; and, before those runs, how long the erasure of one subject takes
//! (`--erasures` subjects, one after the other: find, shred, unindex, receipt, every affected
//! file copied without the rows and checked, pointers of the kept rows moved).
//!
//! The ports are the in-process ones, so the figure is retention's own work per file — reading
//! the file's record ids, marking or deleting every pointer, moving or purging the object,
//! signing a tombstone, updating the manifest — without S3 and DynamoDB round trips (which a
//! real run spends mostly in the pointer batches: ⌈rows/25⌉ BatchWriteItem calls per file).
//! One thread, no runtime: the time is one core's.

use std::time::Instant;

use journal_core::checkpoint::MemorySigner;
use journal_core::compact::{Compactor, CompactorConfig};
use journal_core::ports::{FileState, JournalIndex};
use journal_core::retention::erasure::FileErasure;
use journal_core::retention::Erasure;
use journal_core::retention::{Retention, RetentionConfig, RetentionPolicy};
use journal_core::timestamp::Timestamp;

use crate::block_on::block_on;
use crate::replay::journal::{self, TENANT};

pub struct Options {
    pub records: usize,
    pub block: usize,
    pub target_kib: usize,
    /// Subjects erased, one after the other (0: none).
    pub erasures: usize,
}

const DAY_MS: i64 = 86_400_000;

pub fn run(o: &Options) {
    let journal = journal::ingest(o.records, o.block);
    let (store, index) = (&journal.ingest.store, &journal.ingest.index);
    let date = journal.now.date_string();
    let mut config = CompactorConfig::default();
    config.plan.settle_ms = 0;
    config.plan.whole_hours = false;
    config.plan.target_bytes = (o.target_kib as u64) * 1024;
    config.grace_ms = 0;
    let master = &journal.ingest.master;
    let compactor = Compactor::new(store, index, master, config, "bench");
    block_on(compactor.run(TENANT, &date, journal.now)).expect("compaction");
    let later = Timestamp::from_millis(journal.now.millis() + 1).expect("time");
    block_on(compactor.run(TENANT, &date, later)).expect("input deletion");
    let policy = RetentionPolicy::parse(
        br#"{"format":1,"version":1,"updated_at":"2026-01-01T00:00:00Z",
             "default":{"default":{"days_hot":30,"archive_class":"GLACIER","expire_after_years":1}}}"#,
    )
    .expect("policy");
    let signer = MemorySigner::from_seed(b"retention bench");
    let retention = Retention::new(
        store,
        index,
        store,
        &signer,
        &policy,
        RetentionConfig::default(),
        "bench",
    );
    let at = |ms: i64| Timestamp::from_millis(journal.now.millis() + ms).expect("time");

    let erased_rows = erase_subjects(o, &journal, &retention, at(DAY_MS));

    let files: Vec<_> = block_on(index.list_manifest(TENANT, &date))
        .expect("manifest")
        .into_iter()
        .filter(|e| e.state == FileState::Live)
        .collect();
    let rows: u64 = files.iter().map(|e| e.rows).sum();
    assert_eq!(
        rows + erased_rows,
        o.records as u64,
        "every record in a live file or erased"
    );

    let started = Instant::now();
    let archived = block_on(retention.run_tenant(TENANT, at(31 * DAY_MS), false)).expect("run");
    let archive_seconds = started.elapsed().as_secs_f64();
    let archived_files = archived.of("archive").count();

    let started = Instant::now();
    let expired = block_on(retention.run_tenant(TENANT, at(800 * DAY_MS), false)).expect("run");
    let expire_seconds = started.elapsed().as_secs_f64();
    let expired_files = expired.of("expire").count();
    assert!(
        expired.failed().next().is_none() && archived.failed().next().is_none(),
        "failed files: {:?} {:?}",
        archived.failed().collect::<Vec<_>>(),
        expired.failed().collect::<Vec<_>>()
    );
    assert_eq!(expired_files, files.len(), "every file expired");

    println!("retention_records={}", o.records);
    println!("retention_files={}", files.len());
    println!(
        "retention_records_per_file={:.0}",
        rows as f64 / files.len() as f64
    );
    println!(
        "retention_archive_files_per_sec={:.1}",
        archived_files as f64 / archive_seconds
    );
    println!(
        "retention_expire_files_per_sec={:.1}",
        expired_files as f64 / expire_seconds
    );
    println!(
        "retention_files_per_sec={:.1}",
        (archived_files + expired_files) as f64 / (archive_seconds + expire_seconds)
    );
    println!(
        "retention_records_per_sec={:.0}",
        2.0 * rows as f64 / (archive_seconds + expire_seconds)
    );
}

/// Erases `o.erasures` subjects one after the other, then the subject with the most decisions,
/// and prints the time per subject; returns the rows removed.
fn erase_subjects<S, I, C, G>(
    o: &Options,
    journal: &journal::Journal,
    retention: &Retention<'_, S, I, C, G>,
    now: Timestamp,
) -> u64
where
    S: journal_core::ports::ArchiveStore,
    I: JournalIndex,
    C: journal_core::checkpoint::CheckpointStore,
    G: journal_core::checkpoint::CheckpointSigner,
{
    if o.erasures == 0 {
        return 0;
    }
    // Subjects evenly spaced over the distinct ones (draws are Zipf-like, so most have a few
    // decisions), and the one with the most decisions, reported on its own.
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for s in journal.subjects.iter().flatten() {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    let distinct: Vec<&str> = counts.keys().copied().collect();
    let heaviest = counts
        .iter()
        .max_by_key(|(s, n)| (**n, *s))
        .map(|(s, _)| *s)
        .expect("subjects");
    let step = (distinct.len() / o.erasures).max(1);
    let subjects: Vec<&str> = distinct
        .iter()
        .copied()
        .step_by(step)
        .filter(|s| *s != heaviest)
        .take(o.erasures)
        .collect();
    let erasure = Erasure::new(
        retention,
        &journal.ingest.subject_keys,
        &journal.ingest.master,
        CompactorConfig::default().writer,
    );
    let erase = |subject: &str| {
        let started = Instant::now();
        let report = block_on(erasure.erase(TENANT, subject, now, false)).expect("erasure");
        let took = started.elapsed().as_secs_f64();
        assert!(report.done, "erasure not finished: {report:?}");
        let records: u64 = report.records.values().sum();
        let (mut files, mut rows) = (0u64, 0u64);
        for f in &report.files {
            if let FileErasure::Rewritten { rows_removed, .. } = f.outcome {
                files += 1;
                rows += rows_removed;
            }
        }
        assert_eq!(rows, records, "every record found was removed");
        (took, records, files)
    };
    let (mut seconds, mut max, mut files, mut records) = (0.0, 0.0f64, 0, 0);
    for subject in &subjects {
        let (took, r, f) = erase(subject);
        seconds += took;
        max = max.max(took);
        records += r;
        files += f;
    }
    let (heavy_seconds, heavy_records, heavy_files) = erase(heaviest);
    let n = subjects.len() as f64;
    println!("erasure_subjects={}", subjects.len());
    println!("erasure_seconds_per_subject={:.3}", seconds / n);
    println!("erasure_max_seconds={max:.3}");
    println!("erasure_records_per_subject={:.1}", records as f64 / n);
    println!(
        "erasure_files_rewritten_per_subject={:.1}",
        files as f64 / n
    );
    println!("erasure_heaviest_subject_records={heavy_records}");
    println!("erasure_heaviest_subject_files_rewritten={heavy_files}");
    println!("erasure_heaviest_subject_seconds={heavy_seconds:.3}");
    records + heavy_records
}
