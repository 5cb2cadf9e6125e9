//! The Arrow schema of a journal Parquet file and the codec between it and [`JournalRow`]s.
//!
//! A row is one *stored* record (no raw subject id, no raw features) plus the integrity columns
//! ingest adds. Queryable fields are real typed columns, so DuckDB, pyarrow and Athena read the
//! files without help; the free-form parts (`steps`, `llm`, `context`) are RFC 8785 canonical
//! JSON strings.
//!
//! **Round trip.** `decode(encode(rows))` returns rows whose [`Record::canonical_bytes`] are
//! byte-identical to the originals, which is what the leaf hashes cover. Absent and present are
//! kept apart (an absent `outputs` is a null list, an empty one is `[]`). Numbers are kept
//! exactly: typed floats are stored as IEEE doubles, and the JSON columns hold the canonical
//! text, which re-parses to values with the same canonical text.
//!
//! # Columns
//!
//! | column | Arrow type | null | record field |
//! |---|---|---|---|
//! | `record_id` | Utf8 | no | [`Record::record_id`] (decision, outcome or review id); bloom filter |
//! | `kind` | Utf8 (dict) | no | `kind`: `decision` / `outcome` / `review` |
//! | `schema_version` | Int32 | no | `schema_version` |
//! | `decision_id` | Utf8 | no | `decision_id` (for outcomes and reviews: the decision referred to) |
//! | `outcome_id` | Utf8 | yes | `outcome_id` |
//! | `review_id` | Utf8 | yes | `review_id` |
//! | `tenant_id` | Utf8 (dict) | no | `tenant_id` |
//! | `occurred_at` | Timestamp(ms, "UTC") | no | `occurred_at` |
//! | `received_at` | Timestamp(ms, "UTC") | yes | `received_at` |
//! | `subject_ref` | Utf8 | yes | `subject_ref`; bloom filter |
//! | `caller_principal` | Utf8 (dict) | yes | `caller.principal` |
//! | `caller_service` | Utf8 (dict) | yes | `caller.service` |
//! | `model_name` | Utf8 (dict) | yes | `model.name` |
//! | `model_version` | Utf8 (dict) | yes | `model.version` |
//! | `model_artifact_sha256` | Utf8 (dict) | yes | `model.artifact_sha256` |
//! | `dataset_manifest_sha256` | Utf8 (dict) | yes | `dataset_manifest_sha256` |
//! | `features_hmac` | Utf8 | yes | `features_hmac` |
//! | `outputs` | List<Struct<label: Utf8, score: Float64>> | yes | `outputs` (item field `element`) |
//! | `decision` | Utf8 (dict) | yes | `decision` |
//! | `confidence` | Float64 | yes | `confidence` |
//! | `threshold` | Float64 (dict) | yes | `threshold` |
//! | `rationale` | Utf8 (dict) | yes | `rationale` |
//! | `explanation_ref` | Utf8 | yes | `explanation_ref` |
//! | `action_type` | Utf8 (dict) | yes | `action.type`: `automated` / `recommendation` / `human_review` |
//! | `action_detail` | Utf8 (dict) | yes | `action.detail` |
//! | `risk_tier` | Utf8 (dict) | yes | `risk_tier`: `low` / `medium` / `high` |
//! | `outcome_label` | Utf8 (dict) | yes | `outcome.label` |
//! | `outcome_value` | Float64 | yes | `outcome.value` |
//! | `review_reviewer` | Utf8 (dict) | yes | `review.reviewer` |
//! | `review_verdict` | Utf8 (dict) | yes | `review.verdict`: `confirm` / `override` |
//! | `review_override_label` | Utf8 (dict) | yes | `review.override_label` |
//! | `review_notes` | Utf8 | yes | `review.notes` |
//! | `sampling_rate` | Float64 (dict) | yes | `sampling_rate` |
//! | `steps` | Utf8 | yes | `steps`, canonical JSON array |
//! | `llm` | Utf8 | yes | `llm`, canonical JSON object |
//! | `context` | Utf8 | yes | `context`, canonical JSON object |
//! | `block_id` | Utf8 (dict) | no | [`JournalRow::block_id`] |
//! | `leaf_index` | Int64 | no | [`JournalRow::leaf_index`] (0 ≤ i < 2^32; Int64 because Athena has no unsigned types) |
//! | `salt` | FixedSizeBinary(16) | no | [`JournalRow::salt`] |
//! | `leaf_hash` | FixedSizeBinary(32) | no | [`JournalRow::leaf_hash`] |
//! | `features_sealed` | Binary | yes | [`JournalRow::features_sealed`] |
//!
//! "(dict)" marks the columns written with Parquet dictionary encoding.
//!
//! Nested objects are flattened into `<object>_<field>` columns. The object is present exactly
//! when its required column is non-null (`model_name`, `action_type`, `outcome_label`,
//! `review_reviewer`). `caller` has no required field: it is present when either of its
//! columns is non-null, so `caller: {}` cannot be represented — validation refuses it on input
//! and [`encode_file`] refuses it with an error rather than silently dropping it.
//!
//! The file's key-value metadata holds `dj.format_version = 1` (see [`FORMAT_VERSION_KEY`]) and
//! whatever the caller adds; Arrow's own `ARROW:schema` entry is kept so that Arrow readers see
//! the exact types above.

mod decode;
mod encode;
pub mod filter;
mod pages;
pub mod ranged;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::record::Record;

pub use decode::{
    decode_batch, decode_file, decode_file_positioned, decode_row_group, positions_from_metadata,
    IntegrityRow, LazyRowGroup, LazyRowGroups, RowGroups,
};
pub use encode::{
    encode_file, encode_sealed_file, rows_to_batch, EncodedFile, JournalFileWriter, WrittenFile,
};

/// Key-value metadata key naming the journal file format version.
pub const FORMAT_VERSION_KEY: &str = "dj.format_version";
/// The format version this module writes and reads.
pub const FORMAT_VERSION: &str = "1";

/// One row of a journal Parquet file: a stored record and its integrity columns.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalRow {
    /// The STORED form: `subject` and `features` are `None`; `received_at` is set by ingest.
    pub record: Record,
    /// ULID of the ingest block the row was sealed in.
    pub block_id: String,
    /// Position in that block's Merkle tree.
    pub leaf_index: u32,
    pub salt: [u8; 16],
    pub leaf_hash: [u8; 32],
    /// AES-GCM ciphertext of the raw features (opaque here).
    pub features_sealed: Option<Vec<u8>>,
}

/// Where a row sits in a file: row group and row within that group (both from 0).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct RowPosition {
    pub row_group: usize,
    pub row_in_group: usize,
}

/// Column names, for queries and index code that refer to them.
pub mod col {
    pub const RECORD_ID: &str = "record_id";
    pub const KIND: &str = "kind";
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const DECISION_ID: &str = "decision_id";
    pub const OUTCOME_ID: &str = "outcome_id";
    pub const REVIEW_ID: &str = "review_id";
    pub const TENANT_ID: &str = "tenant_id";
    pub const OCCURRED_AT: &str = "occurred_at";
    pub const RECEIVED_AT: &str = "received_at";
    pub const SUBJECT_REF: &str = "subject_ref";
    pub const CALLER_PRINCIPAL: &str = "caller_principal";
    pub const CALLER_SERVICE: &str = "caller_service";
    pub const MODEL_NAME: &str = "model_name";
    pub const MODEL_VERSION: &str = "model_version";
    pub const MODEL_ARTIFACT_SHA256: &str = "model_artifact_sha256";
    pub const DATASET_MANIFEST_SHA256: &str = "dataset_manifest_sha256";
    pub const FEATURES_HMAC: &str = "features_hmac";
    pub const OUTPUTS: &str = "outputs";
    /// Name of the list item field of `outputs` (the Parquet spec's `element`).
    pub const OUTPUTS_ITEM: &str = "element";
    pub const OUTPUT_LABEL: &str = "label";
    pub const OUTPUT_SCORE: &str = "score";
    pub const DECISION: &str = "decision";
    pub const CONFIDENCE: &str = "confidence";
    pub const THRESHOLD: &str = "threshold";
    pub const RATIONALE: &str = "rationale";
    pub const EXPLANATION_REF: &str = "explanation_ref";
    pub const ACTION_TYPE: &str = "action_type";
    pub const ACTION_DETAIL: &str = "action_detail";
    pub const RISK_TIER: &str = "risk_tier";
    pub const OUTCOME_LABEL: &str = "outcome_label";
    pub const OUTCOME_VALUE: &str = "outcome_value";
    pub const REVIEW_REVIEWER: &str = "review_reviewer";
    pub const REVIEW_VERDICT: &str = "review_verdict";
    pub const REVIEW_OVERRIDE_LABEL: &str = "review_override_label";
    pub const REVIEW_NOTES: &str = "review_notes";
    pub const SAMPLING_RATE: &str = "sampling_rate";
    pub const STEPS: &str = "steps";
    pub const LLM: &str = "llm";
    pub const CONTEXT: &str = "context";
    pub const BLOCK_ID: &str = "block_id";
    pub const LEAF_INDEX: &str = "leaf_index";
    pub const SALT: &str = "salt";
    pub const LEAF_HASH: &str = "leaf_hash";
    pub const FEATURES_SEALED: &str = "features_sealed";
}

/// Dictionary-encoded columns besides [`LOW_CARDINALITY_COLUMNS`]: repeated free text and
/// labels, on which ZSTD pays.
pub(crate) const VARIED_DICTIONARY_COLUMNS: &[&str] = &[
    col::RATIONALE,
    col::ACTION_DETAIL,
    col::OUTCOME_LABEL,
    col::REVIEW_REVIEWER,
    col::REVIEW_OVERRIDE_LABEL,
];

/// Columns written with Parquet dictionary encoding; the rest are plain.
pub(crate) fn dictionary_columns() -> impl Iterator<Item = &'static str> {
    LOW_CARDINALITY_COLUMNS
        .iter()
        .chain(VARIED_DICTIONARY_COLUMNS)
        .copied()
}

/// Binary columns of random bytes (salts, leaf hashes, AES-GCM ciphertext: about two thirds of
/// a record's stored bytes) written uncompressed: ZSTD cannot shrink them and only spends time
/// searching them, at ingest and again at compaction. (`features_hmac` is hex text: ZSTD halves
/// it.)
pub const UNCOMPRESSED_COLUMNS: &[&str] = &[col::SALT, col::LEAF_HASH, col::FEATURES_SEALED];

/// Digests and identifiers (hex HMACs, ULID-style ids) and the JSON columns made mostly of them
/// (`llm`: prompt and response digests; `steps`: input digests), compressed at
/// [`FAST_ZSTD_LEVEL`] whatever the file's level. What ZSTD gains on them is the entropy coding
/// of their alphabet and their shared prefixes, which level 1 finds; higher levels search unique
/// strings for matches that are not there. At level 6 they took about 40% of a compaction's
/// ZSTD time, and level 1 left them 0.7 bytes per record smaller (`journal-bench --compact`).
pub const FAST_ZSTD_COLUMNS: &[&str] = &[
    col::FEATURES_HMAC,
    col::RECORD_ID,
    col::DECISION_ID,
    col::OUTCOME_ID,
    col::REVIEW_ID,
    col::LLM,
    col::STEPS,
];

/// The ZSTD level of [`FAST_ZSTD_COLUMNS`].
pub const FAST_ZSTD_LEVEL: i32 = 1;

/// Columns no query bounds by value (JSON text, free text, random bytes): min/max statistics and
/// column indexes would prune nothing, and computing them compares long values row by row.
pub const NO_STATISTICS_COLUMNS: &[&str] = &[
    col::STEPS,
    col::LLM,
    col::CONTEXT,
    col::REVIEW_NOTES,
    col::SALT,
    col::LEAF_HASH,
    col::FEATURES_SEALED,
];

/// Dictionary-encoded columns with a handful of values per tenant: a chunk is a short dictionary
/// and bit-packed indexes, which ZSTD shrinks by a few hundred bytes per 2,000 rows. Unless
/// [`WriterConfig::compress_low_cardinality`], they are written uncompressed: parquet makes two
/// ZSTD contexts for each compressed chunk it writes, and over an ingest file's 2,000 rows that
/// costs more than the bytes it saves (`journal-bench --ingest`).
pub const LOW_CARDINALITY_COLUMNS: &[&str] = &[
    col::KIND,
    col::SCHEMA_VERSION,
    col::TENANT_ID,
    col::CALLER_PRINCIPAL,
    col::CALLER_SERVICE,
    col::MODEL_NAME,
    col::MODEL_VERSION,
    col::MODEL_ARTIFACT_SHA256,
    col::DATASET_MANIFEST_SHA256,
    col::DECISION,
    col::THRESHOLD,
    col::RISK_TIER,
    col::ACTION_TYPE,
    col::REVIEW_VERDICT,
    col::SAMPLING_RATE,
    col::BLOCK_ID,
];

/// Columns ZSTD shrinks by a few bytes per record at most in an ingest file, written
/// uncompressed there (unless [`WriterConfig::compress_low_cardinality`]) for the reason given
/// at [`LOW_CARDINALITY_COLUMNS`]. Two get an encoding that does ZSTD's work there:
/// `received_at` (one value per block) a dictionary, `leaf_index` (0, 1, 2, …) deltas.
pub const SMALL_GAIN_COLUMNS: &[&str] = &[
    col::EXPLANATION_REF,
    col::ACTION_DETAIL,
    col::RECEIVED_AT,
    col::LEAF_INDEX,
];

/// Columns with a Parquet bloom filter (point lookups by id and by subject).
pub const BLOOM_FILTER_COLUMNS: &[&str] = &[col::RECORD_ID, col::SUBJECT_REF];

fn output_struct_fields() -> Fields {
    Fields::from(vec![
        Field::new(col::OUTPUT_LABEL, DataType::Utf8, false),
        Field::new(col::OUTPUT_SCORE, DataType::Float64, false),
    ])
}

pub(crate) fn outputs_item_field() -> Arc<Field> {
    Arc::new(Field::new(
        col::OUTPUTS_ITEM,
        DataType::Struct(output_struct_fields()),
        false,
    ))
}

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC")))
}

/// The Arrow schema of a journal Parquet file (see the module docs for the column table).
pub fn arrow_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
            let f64c = |name: &str| Field::new(name, DataType::Float64, true);
            Arc::new(Schema::new(vec![
                utf8(col::RECORD_ID, false),
                utf8(col::KIND, false),
                Field::new(col::SCHEMA_VERSION, DataType::Int32, false),
                utf8(col::DECISION_ID, false),
                utf8(col::OUTCOME_ID, true),
                utf8(col::REVIEW_ID, true),
                utf8(col::TENANT_ID, false),
                Field::new(col::OCCURRED_AT, utc_millis(), false),
                Field::new(col::RECEIVED_AT, utc_millis(), true),
                utf8(col::SUBJECT_REF, true),
                utf8(col::CALLER_PRINCIPAL, true),
                utf8(col::CALLER_SERVICE, true),
                utf8(col::MODEL_NAME, true),
                utf8(col::MODEL_VERSION, true),
                utf8(col::MODEL_ARTIFACT_SHA256, true),
                utf8(col::DATASET_MANIFEST_SHA256, true),
                utf8(col::FEATURES_HMAC, true),
                Field::new(col::OUTPUTS, DataType::List(outputs_item_field()), true),
                utf8(col::DECISION, true),
                f64c(col::CONFIDENCE),
                f64c(col::THRESHOLD),
                utf8(col::RATIONALE, true),
                utf8(col::EXPLANATION_REF, true),
                utf8(col::ACTION_TYPE, true),
                utf8(col::ACTION_DETAIL, true),
                utf8(col::RISK_TIER, true),
                utf8(col::OUTCOME_LABEL, true),
                f64c(col::OUTCOME_VALUE),
                utf8(col::REVIEW_REVIEWER, true),
                utf8(col::REVIEW_VERDICT, true),
                utf8(col::REVIEW_OVERRIDE_LABEL, true),
                utf8(col::REVIEW_NOTES, true),
                f64c(col::SAMPLING_RATE),
                utf8(col::STEPS, true),
                utf8(col::LLM, true),
                utf8(col::CONTEXT, true),
                utf8(col::BLOCK_ID, false),
                Field::new(col::LEAF_INDEX, DataType::Int64, false),
                Field::new(col::SALT, DataType::FixedSizeBinary(16), false),
                Field::new(col::LEAF_HASH, DataType::FixedSizeBinary(32), false),
                Field::new(col::FEATURES_SEALED, DataType::Binary, true),
            ]))
        })
        .clone()
}

/// Writer settings. The Parquet crate's defaults (uncompressed, 1 Mi-row groups) are never used
/// as they stand: [`writer_properties`] sets every property that matters explicitly.
#[derive(Clone, Debug, PartialEq)]
pub struct WriterConfig {
    /// Rows per row group at most; a replay lookup reads one row group.
    pub max_row_group_size: usize,
    /// ZSTD level for every column.
    pub zstd_level: i32,
    /// Target false-positive probability of the bloom filters.
    pub bloom_fpp: f64,
    /// Distinct values the bloom filters are sized for before folding; `None` = one per row of
    /// a full row group. Filters are folded down to fit the values actually written.
    pub bloom_max_ndv: Option<u64>,
    /// Rows per data page at most (finer pages make page-index lookups read less).
    pub data_page_row_limit: usize,
    /// Rows converted to Arrow at a time by [`JournalFileWriter::write_rows`].
    pub batch_rows: usize,
    /// ZSTD for [`LOW_CARDINALITY_COLUMNS`] and [`SMALL_GAIN_COLUMNS`] too: worth it for the
    /// long-lived compacted files, not for ingest's short-lived small ones (see there).
    pub compress_low_cardinality: bool,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_row_group_size: 65_536,
            // Ingest's small files: level 1 measured 11% faster than 3 and no larger (bench
            // `--zstd-level`); compaction picks its own level for the long-lived files.
            zstd_level: 1,
            bloom_fpp: 0.01,
            bloom_max_ndv: None,
            data_page_row_limit: 20_000,
            batch_rows: 8_192,
            compress_low_cardinality: false,
        }
    }
}

/// The `created_by` every Parquet file of ours carries (the metrics read model too).
pub(crate) use encode::created_by;
pub use encode::writer_properties;

/// Why encoding or decoding failed; names the row and column where one is to blame.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// An input row cannot be written (index into the rows given to the writer).
    #[error("row {row}: {field}: {reason}")]
    Encode {
        row: usize,
        field: &'static str,
        reason: String,
    },
    /// A stored value cannot be read back into a record.
    #[error("row group {}, row {}: column {column}: {reason}", .position.row_group, .position.row_in_group)]
    Decode {
        position: RowPosition,
        column: &'static str,
        reason: String,
    },
    /// The file's schema lacks a column or has it with another type.
    #[error("column {column}: {reason}")]
    Schema { column: String, reason: String },
    #[error("row group {row_group} does not exist (the file has {count})")]
    NoSuchRowGroup { row_group: usize, count: usize },
    #[error("writer configuration: {0}")]
    Config(String),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}
