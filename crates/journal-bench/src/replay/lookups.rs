//! Lookups by decision id as the replay function serves them, with their measured cost.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use journal_core::checkpoint::{CheckpointWitness, WitnessCache};
use journal_core::replay::{Finder, Lookup, RowReader};

use super::journal::{Journal, TENANT};
use crate::block_on::block_on;

/// Cost of the lookups of the fastest round (the read counts are the same every round).
pub struct LookupFigures {
    pub lookups: usize,
    pub gets_mean: f64,
    pub gets_max: u32,
    pub bytes_mean: f64,
    pub index_reads_mean: f64,
    pub index_reads_max: u32,
    /// Checkpoint locator lists and GETs per lookup in the first (cold-cache) round, and in
    /// the last round (warm: a replay function keeps checked checkpoints).
    pub checkpoint_requests_cold: f64,
    pub checkpoint_requests_warm: f64,
    pub cpu_ms_mean: f64,
    pub cpu_ms_p99: f64,
}

/// Looks up each of `ids` by id with its linked records, as the replay function does, `rounds`
/// times, each lookup with a fresh [`RowReader`] (one lookup is one request: no footer or row
/// group cached from the one before); proofs rest on the signed checkpoints, which stay
/// cached across rounds as in a warm function. Panics unless every lookup finds its record
/// with a verified, checkpointed proof: a failed lookup is not a measurement.
///
/// Time is wall time on this one thread over in-memory ports (no I/O, no runtime threads), so
/// it is the CPU time of the request: index reads, footer decode, row group decode, proof.
pub fn measure(journal: &Journal, ids: &[&str], rounds: usize) -> LookupFigures {
    let store = &journal.ingest.store;
    let cache = WitnessCache::default();
    let der = journal.signer.public_key_der();
    let witness = CheckpointWitness::new(&journal.checkpoints, Some(der.as_slice()), &cache);
    let finder = Finder::new(store, &journal.ingest.index).with_witness(&witness);
    let mut best: Option<(Duration, Vec<Duration>)> = None;
    let (mut gets, mut bytes, mut index_reads) = (0u64, 0u64, 0u64);
    let (mut gets_max, mut index_reads_max) = (0u32, 0u32);
    let (mut cold, mut warm): (Option<u64>, u64) = (None, 0);
    for _ in 0..rounds.max(1) {
        let store_gets = store.ranged_gets.load(Ordering::Relaxed);
        let store_bytes = store.ranged_bytes.load(Ordering::Relaxed);
        (gets, bytes, index_reads, gets_max, index_reads_max) = (0, 0, 0, 0, 0);
        let mut checkpoint_requests = 0u64;
        let mut spans = Vec::with_capacity(ids.len());
        let round = Instant::now();
        for id in ids {
            let started = Instant::now();
            let mut reader = RowReader::new(store);
            let lookup = block_on(finder.by_id_with_links(&mut reader, TENANT, id, journal.now));
            let found = match lookup.map(|(found, _)| found) {
                Ok(Lookup::Found(f)) => f,
                Ok(other) => panic!("lookup of {id} did not find the record: {other:?}"),
                Err(e) => panic!("lookup of {id} failed: {e}"),
            };
            assert!(
                found.proof.verified && found.proof.checkpoint.is_some(),
                "lookup of {id}: proof not verified on a checkpoint: {:?} {:?}",
                found.proof.faults,
                found.proof.chain_link_because
            );
            spans.push(started.elapsed());
            let cost = reader.cost;
            gets += u64::from(cost.ranged_gets);
            bytes += cost.bytes_read;
            index_reads += u64::from(cost.index_reads);
            checkpoint_requests += u64::from(cost.checkpoint_requests);
            gets_max = gets_max.max(cost.ranged_gets);
            index_reads_max = index_reads_max.max(cost.index_reads);
        }
        let elapsed = round.elapsed();
        // The store counts what it served; the readers must agree with it.
        assert_eq!(
            (gets, bytes),
            (
                store.ranged_gets.load(Ordering::Relaxed) - store_gets,
                store.ranged_bytes.load(Ordering::Relaxed) - store_bytes
            ),
            "RowReader costs disagree with the store's counters"
        );
        cold.get_or_insert(checkpoint_requests);
        warm = checkpoint_requests;
        if best.as_ref().is_none_or(|(b, _)| elapsed < *b) {
            best = Some((elapsed, spans));
        }
    }
    let (elapsed, mut spans) = best.expect("at least one round");
    spans.sort_unstable();
    let n = ids.len().max(1) as f64;
    let p99 = spans[(spans.len() * 99 / 100).min(spans.len() - 1)];
    LookupFigures {
        lookups: ids.len(),
        gets_mean: gets as f64 / n,
        gets_max,
        bytes_mean: bytes as f64 / n,
        index_reads_mean: index_reads as f64 / n,
        index_reads_max,
        checkpoint_requests_cold: cold.unwrap_or(0) as f64 / n,
        checkpoint_requests_warm: warm as f64 / n,
        cpu_ms_mean: elapsed.as_secs_f64() * 1e3 / n,
        cpu_ms_p99: p99.as_secs_f64() * 1e3,
    }
}

impl LookupFigures {
    /// Prints the figures as `<prefix>_<name>=value` lines.
    pub fn print(&self, prefix: &str) {
        println!("{prefix}_lookups={}", self.lookups);
        println!("{prefix}_s3_gets_per_lookup={:.2}", self.gets_mean);
        println!("{prefix}_s3_gets_per_lookup_max={}", self.gets_max);
        println!("{prefix}_bytes_read_per_lookup={:.0}", self.bytes_mean);
        println!(
            "{prefix}_index_reads_per_lookup={:.2}",
            self.index_reads_mean
        );
        println!(
            "{prefix}_index_reads_per_lookup_max={}",
            self.index_reads_max
        );
        println!(
            "{prefix}_checkpoint_requests_per_lookup_cold={:.3}",
            self.checkpoint_requests_cold
        );
        println!(
            "{prefix}_checkpoint_requests_per_lookup_warm={:.3}",
            self.checkpoint_requests_warm
        );
        println!("{prefix}_cpu_ms_per_lookup={:.3}", self.cpu_ms_mean);
        println!("{prefix}_cpu_ms_per_lookup_p99={:.3}", self.cpu_ms_p99);
    }
}
