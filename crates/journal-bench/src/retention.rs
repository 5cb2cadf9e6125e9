//! `--retention`: how many files a retention run archives and expires per second, on a tenant
//! of `--records` decisions (default 100,000) ingested `--block` per file and compacted into
//! `--target-kib` files.
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
use journal_core::retention::{Retention, RetentionConfig, RetentionPolicy};
use journal_core::timestamp::Timestamp;

use crate::block_on::block_on;
use crate::replay::journal::{self, TENANT};

pub struct Options {
    pub records: usize,
    pub block: usize,
    pub target_kib: usize,
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
    let files: Vec<_> = block_on(index.list_manifest(TENANT, &date))
        .expect("manifest")
        .into_iter()
        .filter(|e| e.state == FileState::Live)
        .collect();
    let rows: u64 = files.iter().map(|e| e.rows).sum();
    assert_eq!(rows, o.records as u64, "every record in a live file");

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
