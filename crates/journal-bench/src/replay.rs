//! `--replay`: what one lookup by decision id costs (DESIGN §11 budget: ≤ 1 DynamoDB read,
//! ≤ 3 ranged S3 GETs, ≤ 5 ms CPU), and how fast a tenant's stored chain verifies.
//!
//! Records are ingested through the real pipeline into the in-memory ports, `--block` per
//! ingest call; `--lookups` random existing ids are then looked up with proofs, first in the
//! ingest files (`replay_*`), then after rewriting them into one large file with row groups of
//! `--compacted-row-group` rows (`replay_compacted_*`).

pub mod journal;
mod lookups;

use std::time::Instant;

use journal_core::integrity::verify_stored_chain;

use crate::block_on::block_on;
use journal::{Journal, TENANT};

pub struct Options {
    pub records: usize,
    pub block: usize,
    pub lookups: usize,
    pub rounds: usize,
    pub compacted_row_group: usize,
}

pub fn run(o: &Options) {
    assert!(
        o.records > 0 && o.block > 0 && o.lookups > 0 && o.compacted_row_group > 0,
        "--records, --block, --lookups and --compacted-row-group must be positive"
    );
    let journal = journal::ingest(o.records, o.block);
    let ids = sample(&journal.ids, o.lookups);
    println!("replay_records={}", o.records);
    println!("replay_block_records={}", o.block);
    println!(
        "replay_file_bytes={:.0}",
        journal::mean_ingest_file_bytes(&journal)
    );
    lookups::measure(&journal, &ids, o.rounds).print("replay");
    bench_verify(&journal, o.records, o.rounds);

    let compacted = journal::compact(&journal, o.compacted_row_group);
    println!("replay_compacted_file_bytes={}", compacted.bytes);
    println!("replay_compacted_row_groups={}", compacted.row_groups);
    println!(
        "replay_compacted_row_group_records={}",
        o.compacted_row_group
    );
    println!(
        "replay_compacted_blocks_split_across_row_groups={}",
        compacted.split_blocks
    );
    lookups::measure(&journal, &ids, o.rounds).print("replay_compacted");
}

/// Full verification of the tenant's chain as stored (every file read and decoded, every leaf
/// recomputed, every root and link checked); the fastest of `rounds`.
fn bench_verify(journal: &Journal, records: usize, rounds: usize) {
    let mut best = f64::MAX;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let report = block_on(verify_stored_chain(
            &journal.ingest.index,
            &journal.ingest.store,
            TENANT,
        ))
        .expect("stored chain readable");
        best = best.min(started.elapsed().as_secs_f64());
        assert!(
            report.ok() && report.rows_checked == records as u64,
            "verification of the stored chain failed or missed rows: {} of {records} rows, \
             faults {:?}",
            report.rows_checked,
            report.faults
        );
    }
    println!("verify_records_per_sec={:.0}", records as f64 / best);
}

/// `n` ids drawn uniformly with replacement by a fixed-seed SplitMix64, so runs compare.
fn sample(ids: &[String], n: usize) -> Vec<&str> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ids[(z % ids.len() as u64) as usize].as_str()
        })
        .collect()
}
