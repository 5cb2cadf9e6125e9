//! Where things live: S3 object keys and the single-table index keys (DESIGN §5, §6).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | record pointer (also the ingest claim) | `D#tenant#record_id` | `D` |
//! | subject timeline (GSI `by_subject`) | `S#tenant#subject_ref` | `occurred_at#record_id` |
//! | model timeline (GSI `by_model`) | `M#tenant#model#version` | `occurred_at#record_id` |
//! | outcome/review link (a copy of its pointer) | `D#tenant#decision_id` | `L#occurred_at#record_id` |
//! | file manifest | `F#tenant#date` | file key |
//! | chain head / block | `C#tenant` | `HEAD` / `B#<seq, 12 digits>` |
//! | subject data key (wrapped) | `K#tenant#subject_ref` | `K` |
//! | lease (e.g. a partition being compacted) | `LEASE#name` | `LEASE` |
//!
//! Tenant and record ids are validated to a `[A-Za-z0-9_.:-]` alphabet, so `#` and `/` can
//! separate key parts without escaping.

use crate::timestamp::Timestamp;

pub const DECISIONS_PREFIX: &str = "decisions/";
pub const POINTER_SK: &str = "D";
pub const HEAD_SK: &str = "HEAD";
pub const SUBJECT_KEY_SK: &str = "K";

pub const GSI_BY_SUBJECT: &str = "by_subject";
pub const GSI_BY_MODEL: &str = "by_model";

/// Hive-style key of the Parquet file one ingest block writes, partitioned by receive time
/// (a block holds one invocation's records, which may span several occurrence hours).
pub fn block_file_key(tenant_id: &str, received_at: Timestamp, block_id: &str) -> String {
    format!(
        "{DECISIONS_PREFIX}tenant={tenant_id}/date={}/hour={:02}/{block_id}.parquet",
        received_at.date_string(),
        received_at.hour()
    )
}

/// Key of a compacted file: the partition it merges, named by the first and last block seq it
/// holds (deterministic, so a resumed merge writes the same key).
pub fn compacted_file_key(
    tenant_id: &str,
    date: &str,
    hour: u8,
    first_seq: u64,
    last_seq: u64,
) -> String {
    format!(
        "{DECISIONS_PREFIX}tenant={tenant_id}/date={date}/hour={hour:02}/compacted-{first_seq:012}-{last_seq:012}.parquet"
    )
}

/// Prefix of the daily metrics read model (see [`crate::metrics`]).
pub const METRICS_PREFIX: &str = "metrics/";

/// Hive-style key of a tenant's metrics for one partition date (`YYYY-MM-DD`): one small
/// Parquet file per day, replaced whenever the day is recomputed.
pub fn metrics_key(tenant_id: &str, date: &str) -> String {
    format!("{METRICS_PREFIX}tenant={tenant_id}/date={date}/metrics.parquet")
}

/// Prefix of every file of a tenant.
pub fn tenant_prefix(tenant_id: &str) -> String {
    format!("{DECISIONS_PREFIX}tenant={tenant_id}/")
}

/// Partition date (`YYYY-MM-DD`) encoded in a file key, if it is one of ours.
pub fn date_of_file_key(file_key: &str) -> Option<&str> {
    let start = file_key.find("/date=")? + "/date=".len();
    file_key.get(start..start + 10)
}

/// Partition hour encoded in a file key, if it is one of ours.
pub fn hour_of_file_key(file_key: &str) -> Option<u8> {
    let start = file_key.find("/hour=")? + "/hour=".len();
    let digits = file_key.get(start..start + 2)?;
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())
        .flatten()
        .filter(|h| *h < 24)
}

pub fn pointer_pk(tenant_id: &str, record_id: &str) -> String {
    format!("D#{tenant_id}#{record_id}")
}

pub fn subject_pk(tenant_id: &str, subject_ref: &str) -> String {
    format!("S#{tenant_id}#{subject_ref}")
}

pub fn model_pk(tenant_id: &str, model: &str, version: &str) -> String {
    format!("M#{tenant_id}#{model}#{version}")
}

/// The access journal's timeline (kept on the `by_model` GSI: access records have no model).
pub fn access_pk(tenant_id: &str) -> String {
    format!("A#{tenant_id}")
}

/// Prefix of the link items in a decision's partition (`pointer_pk`): one per outcome or
/// review that refers to it, a copy of that record's pointer, so one Query returns a decision
/// and everything linked to it.
pub const LINK_SK_PREFIX: &str = "L#";

pub fn link_sk(occurred_at: Timestamp, record_id: &str) -> String {
    format!("{LINK_SK_PREFIX}{}", timeline_sk(occurred_at, record_id))
}

/// Sort key of the timelines: sorts by time, then id; ranges use `occurred_at` prefixes.
pub fn timeline_sk(occurred_at: Timestamp, record_id: &str) -> String {
    format!("{occurred_at}#{record_id}")
}

/// A lease (compaction's per-partition mutual exclusion), in the ledger table.
pub fn lease_pk(name: &str) -> String {
    format!("LEASE#{name}")
}

pub const LEASE_SK: &str = "LEASE";

pub fn manifest_pk(tenant_id: &str, date: &str) -> String {
    format!("F#{tenant_id}#{date}")
}

pub fn chain_pk(tenant_id: &str) -> String {
    format!("C#{tenant_id}")
}

pub fn block_sk(seq: u64) -> String {
    format!("B#{seq:012}")
}

/// The partition of a tenant's erased-subject suppressions (sort key: the token).
pub fn suppression_pk(tenant_id: &str) -> String {
    format!("E#{tenant_id}")
}

pub fn subject_key_pk(tenant_id: &str, subject_ref: &str) -> String {
    format!("K#{tenant_id}#{subject_ref}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hive_style_and_sortable() {
        let t = Timestamp::parse("2026-03-15T07:05:00Z").unwrap();
        let key = block_file_key("bank_1", t, "01JABC");
        assert_eq!(
            key,
            "decisions/tenant=bank_1/date=2026-03-15/hour=07/01JABC.parquet"
        );
        assert_eq!(date_of_file_key(&key), Some("2026-03-15"));
        assert!(key.starts_with(&tenant_prefix("bank_1")));
        assert!(block_sk(9) < block_sk(10));
        assert_eq!(timeline_sk(t, "d1"), "2026-03-15T07:05:00.000Z#d1");
        assert_eq!(
            metrics_key("bank_1", "2026-03-15"),
            "metrics/tenant=bank_1/date=2026-03-15/metrics.parquet"
        );
    }
}
