//! The journal a replay bench reads: synthetic decisions ingested through the real pipeline
//! into the in-memory ports, and the same rows rewritten into one large file, as compaction
//! will write them.

use std::collections::HashMap;

use journal_core::checkpoint::{write_all_checkpoints, CheckpointPolicy, MemorySigner};
use journal_core::columnar::{decode_file, encode_file, WriterConfig};
use journal_core::ingest::{Ingest, IngestConfig, Message};
use journal_core::keys::MasterKey;
use journal_core::memory::{MemoryIndex, MemoryRejects, MemoryStore, MemorySubjectKeys};
use journal_core::ports::{JournalIndex, ObjectStore};
use journal_core::timestamp::Timestamp;
use journal_synth::{generate_decisions, latest_occurred_at, producer_body, SynthConfig};

use crate::block_on::block_on;

pub const TENANT: &str = "bank_1";

pub type MemIngest = Ingest<MemoryStore, MemoryIndex, MemorySubjectKeys, MemoryRejects>;

pub struct Journal {
    pub ingest: MemIngest,
    /// Signed checkpoints over the whole chain, as the hourly run writes them.
    pub checkpoints: MemoryStore,
    pub signer: MemorySigner,
    /// Every decision id ingested, in generation order.
    pub ids: Vec<String>,
    /// The raw subject id of each of those decisions (erasure picks subjects from these).
    pub subjects: Vec<Option<String>>,
    /// At or after every `occurred_at`: valid for ingest and lookups.
    pub now: Timestamp,
}

/// Ingests `n` decisions, `block` messages per `ingest_batch` call (one call of one tenant
/// makes one block and one file, as one Lambda invocation does).
pub fn ingest(n: usize, block: usize) -> Journal {
    let mut cfg = SynthConfig::new(7);
    cfg.tenants = vec![TENANT.into()];
    let decisions = generate_decisions(cfg, n);
    let now = latest_occurred_at(&decisions).expect("records were generated");
    let ids: Vec<String> = decisions
        .iter()
        .map(|d| {
            d["decision_id"]
                .as_str()
                .expect("decisions have ids")
                .to_string()
        })
        .collect();
    let subjects: Vec<Option<String>> = decisions
        .iter()
        .map(|d| d["subject"]["id"].as_str().map(str::to_string))
        .collect();
    let ingest = Ingest::new(
        MemoryStore::default(),
        MemoryIndex::default(),
        MemorySubjectKeys::default(),
        MemoryRejects::default(),
        MasterKey::from_bytes(vec![7u8; 32]).expect("32-byte key"),
        IngestConfig::default(),
    );
    for (b, chunk) in decisions.chunks(block).enumerate() {
        let messages: Vec<Message> = chunk
            .iter()
            .enumerate()
            .map(|(i, d)| Message {
                message_id: format!("m{b}-{i}"),
                body: producer_body(d),
            })
            .collect();
        let out = block_on(ingest.ingest_batch(&messages, now));
        assert!(
            out.failed.is_empty() && out.accepted == chunk.len() && out.blocks.len() == 1,
            "ingest of block {b} did not make one block of {} records: {out:?}",
            chunk.len()
        );
    }
    let checkpoints = MemoryStore::default();
    let signer = MemorySigner::from_seed(b"replay bench");
    let runs = block_on(write_all_checkpoints(
        &ingest.index,
        &checkpoints,
        &signer,
        now,
        &CheckpointPolicy::default(),
    ))
    .expect("checkpoints writable");
    assert!(
        runs.iter().all(|r| r.outcome == "written"),
        "checkpointing failed: {runs:?}"
    );
    Journal {
        ingest,
        checkpoints,
        signer,
        ids,
        subjects,
        now,
    }
}

/// What [`compact`] wrote.
pub struct CompactedFile {
    pub bytes: usize,
    pub row_groups: usize,
    /// Blocks whose rows landed in more than one row group (their proofs read every group).
    pub split_blocks: usize,
}

/// Rewrites every ingest file of the tenant into one file with row groups of `row_group_rows`,
/// rows in chain order (leaf hashes, salts and block ids carried as they are), and points the
/// index at it. A stand-in for compaction, which is not built yet; the ingest files stay, so the
/// chain still verifies against them.
pub fn compact(journal: &Journal, row_group_rows: usize) -> CompactedFile {
    let (store, index) = (&journal.ingest.store, &journal.ingest.index);
    let headers = block_on(index.list_blocks(TENANT)).expect("chain readable");
    let mut rows = Vec::new();
    for h in &headers {
        let bytes = block_on(store.get_object(&h.file_key))
            .expect("store readable")
            .unwrap_or_else(|| panic!("block {} names a missing file {}", h.seq, h.file_key));
        rows.extend(decode_file(bytes).expect("ingest files decode"));
    }
    let writer = WriterConfig {
        max_row_group_size: row_group_rows,
        ..WriterConfig::default()
    };
    let file = encode_file(&rows, &writer, &[]).expect("rows re-encode");
    let key = format!("decisions/tenant={TENANT}/compacted/bench-0001.parquet");
    block_on(store.put_object(&key, file.bytes.clone())).expect("store writable");

    let at: HashMap<&str, _> = rows
        .iter()
        .zip(&file.positions)
        .map(|(r, pos)| (r.record.record_id(), *pos))
        .collect();
    let mut groups_of_block: HashMap<&str, (usize, usize)> = HashMap::new();
    for (r, pos) in rows.iter().zip(&file.positions) {
        let span = groups_of_block
            .entry(r.block_id.as_str())
            .or_insert((pos.row_group, pos.row_group));
        span.1 = pos.row_group;
    }
    let mut pointers = index.pointers();
    for p in &mut pointers {
        let pos = at[p.record_id.as_str()];
        p.file_key = key.clone();
        p.row_group = pos.row_group as u32;
        p.row = pos.row_in_group as u32;
    }
    block_on(index.write_pointers(&pointers)).expect("index writable");
    CompactedFile {
        bytes: file.bytes.len(),
        row_groups: file.row_groups,
        split_blocks: groups_of_block.values().filter(|(a, b)| a != b).count(),
    }
}

/// Mean size in bytes of the tenant's ingest files.
pub fn mean_ingest_file_bytes(journal: &Journal) -> f64 {
    let headers = block_on(journal.ingest.index.list_blocks(TENANT)).expect("chain readable");
    let total: usize = headers
        .iter()
        .map(|h| {
            block_on(journal.ingest.store.get_object(&h.file_key))
                .expect("store readable")
                .map_or(0, |b| b.len())
        })
        .sum();
    total as f64 / headers.len().max(1) as f64
}
