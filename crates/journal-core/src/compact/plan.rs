//! Which files of a partition to merge, and into how many outputs.
//!
//! A partition is a tenant's files of one receive date and hour (the Hive key ingest writes).
//! Live files that have settled and are below the target size are taken in chain order and
//! binned greedily into outputs of at most the target size; an output of a single file would
//! only rewrite it, so a partition with nothing to merge is left alone.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::layout;
use crate::ports::{FileState, ManifestEntry};
use crate::timestamp::Timestamp;

/// The smallest output worth its per-object costs, and the smallest an archive class should see
/// (DESIGN §6).
pub const DEFAULT_TARGET_BYTES: u64 = 64 * 1024 * 1024;
/// Files younger than this are left to ingest (a retried invocation may still be indexing).
pub const DEFAULT_SETTLE_MS: i64 = 15 * 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionConfig {
    /// Outputs hold at most this many input bytes (a single larger input is left as it is).
    pub target_bytes: u64,
    /// Only files created at least this long ago are merged.
    pub settle_ms: i64,
    /// Merge an hour only once it is over (and settled), so each hour is merged once and its
    /// outputs are final. `false` merges the open hour too (hand-run catch-up, tests).
    pub whole_hours: bool,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            target_bytes: DEFAULT_TARGET_BYTES,
            settle_ms: DEFAULT_SETTLE_MS,
            whole_hours: true,
        }
    }
}

/// A tenant's files of one receive date and hour.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Partition {
    pub tenant_id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub hour: u8,
}

/// One output file to write: its inputs in chain order.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputPlan {
    pub partition: Partition,
    pub inputs: Vec<ManifestEntry>,
    pub input_bytes: u64,
    pub rows: u64,
}

/// A file the plan leaves alone, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub file_key: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub outputs: Vec<OutputPlan>,
    pub skipped: Vec<Skipped>,
}

/// Plans the compaction of a tenant's manifest entries (any dates and hours), as of `now`.
pub fn plan(entries: &[ManifestEntry], now: Timestamp, cfg: &CompactionConfig) -> Plan {
    let mut plan = Plan::default();
    let mut skip = |e: &ManifestEntry, reason: String| {
        plan.skipped.push(Skipped {
            file_key: e.file_key.clone(),
            reason,
        })
    };
    let mut partitions: BTreeMap<Partition, Vec<&ManifestEntry>> = BTreeMap::new();
    for e in entries {
        match e.state {
            FileState::Live => {}
            // Ingest has not finished with it: its index may still be incomplete.
            FileState::Pending | FileState::Chained => {
                skip(
                    e,
                    format!("ingest is not done with it (state {})", e.state.as_str()),
                );
                continue;
            }
            // Not live data any more: nothing to report.
            FileState::Abandoned
            | FileState::Compacted
            | FileState::Archived
            | FileState::Deleted => continue,
        }
        // Outputs are final: merging them again would rewrite the same rows every run.
        if e.is_merged() {
            continue;
        }
        let age_ms = now.millis() - e.created_at.millis();
        if age_ms < cfg.settle_ms {
            skip(
                e,
                format!(
                    "settling: written {}s ago, merged after {}s",
                    age_ms / 1000,
                    cfg.settle_ms / 1000
                ),
            );
            continue;
        }
        if e.size >= cfg.target_bytes {
            skip(e, "already at the target size".into());
            continue;
        }
        let (Some(date), Some(hour)) = (
            layout::date_of_file_key(&e.file_key),
            layout::hour_of_file_key(&e.file_key),
        ) else {
            skip(e, "not a partitioned journal file key".into());
            continue;
        };
        partitions
            .entry(Partition {
                tenant_id: e.tenant_id.clone(),
                date: date.to_string(),
                hour,
            })
            .or_default()
            .push(e);
    }
    for (partition, mut files) in partitions {
        if cfg.whole_hours {
            let closes =
                Timestamp::parse(&format!("{}T{:02}:00:00Z", partition.date, partition.hour))
                    .map(|t| t.millis() + 3_600_000 + cfg.settle_ms)
                    .ok()
                    .filter(|c| now.millis() < *c);
            if let Some(closes) = closes {
                let wait = (closes - now.millis()) / 1000;
                for f in files {
                    skip(
                        f,
                        format!(
                            "hour {:02} is not over and settled: merged in {wait}s",
                            partition.hour
                        ),
                    );
                }
                continue;
            }
        }
        files.sort_by(|a, b| (a.seq, &a.file_key).cmp(&(b.seq, &b.file_key)));
        let mut bins: Vec<Vec<&ManifestEntry>> = vec![Vec::new()];
        let mut bytes = 0u64;
        for f in files {
            let open = bins.last_mut().expect("one open bin");
            if !open.is_empty() && bytes + f.size > cfg.target_bytes {
                bins.push(Vec::new());
                bytes = 0;
            }
            bins.last_mut().expect("one open bin").push(f);
            bytes += f.size;
        }
        for bin in bins {
            match bin.as_slice() {
                [] => {}
                [only] => skip(only, "nothing to merge it with in its partition".into()),
                _ => plan.outputs.push(OutputPlan {
                    partition: partition.clone(),
                    input_bytes: bin.iter().map(|e| e.size).sum(),
                    rows: bin.iter().map(|e| e.rows).sum(),
                    inputs: bin.into_iter().cloned().collect(),
                }),
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    /// A live ingest file of `size` bytes, block `seq`, written at `created` into hour `hour`.
    fn file(seq: u64, hour: u8, size: u64, created: &str) -> ManifestEntry {
        let t = at(created);
        ManifestEntry {
            tenant_id: "t1".into(),
            file_key: format!(
                "decisions/tenant=t1/date=2026-03-15/hour={hour:02}/B{seq:04}.parquet"
            ),
            block_id: format!("B{seq:04}"),
            state: FileState::Live,
            seq: Some(seq),
            rows: 10,
            size,
            sha256: "ab".repeat(32),
            first_occurred_at: t,
            last_occurred_at: t,
            created_at: t,
            last_seq: None,
            merged_from: Vec::new(),
            compacted_into: None,
            delete_after: None,
            risk_tiers: Vec::new(),
            storage_class: None,
            tombstone: None,
            erasure_receipts: Vec::new(),
        }
    }

    fn keys(o: &OutputPlan) -> Vec<u64> {
        o.inputs.iter().filter_map(|e| e.seq).collect()
    }

    const NOW: &str = "2026-03-15T12:00:00Z";

    #[test]
    fn settled_small_live_files_are_binned_in_chain_order_per_hour() {
        let cfg = CompactionConfig {
            target_bytes: 100,
            settle_ms: 15 * 60_000,
            whole_hours: false,
        };
        // Hour 10: seqs 0..6 of 30 bytes each, listed out of order; hour 11: two files.
        let mut entries: Vec<ManifestEntry> = [5, 1, 0, 3, 2, 4]
            .into_iter()
            .map(|s| file(s, 10, 30, "2026-03-15T10:30:00Z"))
            .collect();
        entries.push(file(6, 11, 40, "2026-03-15T11:10:00Z"));
        entries.push(file(7, 11, 40, "2026-03-15T11:20:00Z"));
        let p = plan(&entries, at(NOW), &cfg);
        assert_eq!(p.outputs.len(), 3, "{p:#?}");
        assert_eq!(keys(&p.outputs[0]), [0, 1, 2]);
        assert_eq!(keys(&p.outputs[1]), [3, 4, 5]);
        assert_eq!((p.outputs[0].input_bytes, p.outputs[0].rows), (90, 30));
        assert_eq!(p.outputs[2].partition.hour, 11);
        assert_eq!(keys(&p.outputs[2]), [6, 7]);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    }

    #[test]
    fn an_hour_is_merged_once_it_is_over_and_its_outputs_are_final() {
        let cfg = CompactionConfig {
            target_bytes: 100,
            settle_ms: 15 * 60_000,
            whole_hours: true,
        };
        let mut output = file(9, 10, 40, "2026-03-15T11:20:00Z");
        output.merged_from = vec!["a".into(), "b".into()];
        let entries = vec![
            file(0, 11, 10, "2026-03-15T11:10:00Z"),
            file(1, 11, 10, "2026-03-15T11:20:00Z"),
            file(2, 10, 10, "2026-03-15T10:59:00Z"),
            file(3, 10, 10, "2026-03-15T10:59:30Z"),
            output,
        ];
        // At 12:10, hour 10 is over and settled; hour 11 settles at 12:15. The output of an
        // earlier merge in hour 10 is not merged again.
        let p = plan(&entries, at("2026-03-15T12:10:00Z"), &cfg);
        assert_eq!(p.outputs.len(), 1, "{p:#?}");
        assert_eq!(keys(&p.outputs[0]), [2, 3]);
        let reasons: Vec<&str> = p.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(
            reasons, ["hour 11 is not over and settled: merged in 300s"; 2],
            "{p:#?}"
        );
        let p = plan(&entries, at("2026-03-15T12:15:00Z"), &cfg);
        assert_eq!(p.outputs.len(), 2, "{p:#?}");
    }

    #[test]
    fn young_large_unfinished_lonely_and_dead_files_are_left_alone_with_a_reason() {
        let cfg = CompactionConfig {
            target_bytes: 100,
            settle_ms: 15 * 60_000,
            whole_hours: false,
        };
        let mut chained = file(2, 10, 10, "2026-03-15T10:00:00Z");
        chained.state = FileState::Chained;
        let mut compacted = file(3, 10, 10, "2026-03-15T10:00:00Z");
        compacted.state = FileState::Compacted;
        let entries = vec![
            file(0, 10, 100, "2026-03-15T10:00:00Z"),
            file(1, 10, 10, "2026-03-15T11:50:00Z"),
            chained,
            compacted,
            file(4, 9, 10, "2026-03-15T09:00:00Z"),
        ];
        let p = plan(&entries, at(NOW), &cfg);
        assert!(p.outputs.is_empty(), "{p:#?}");
        let reasons: Vec<(&str, &str)> = p
            .skipped
            .iter()
            .map(|s| (&s.file_key[s.file_key.len() - 13..], s.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("B0000.parquet", "already at the target size"),
                (
                    "B0001.parquet",
                    "settling: written 600s ago, merged after 900s"
                ),
                (
                    "B0002.parquet",
                    "ingest is not done with it (state chained)"
                ),
                ("B0004.parquet", "nothing to merge it with in its partition"),
            ]
        );
    }
}
