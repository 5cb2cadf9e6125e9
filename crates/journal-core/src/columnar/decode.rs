//! Decoding: Parquet bytes → Arrow record batches → journal rows, rebuilding the exact records.

use arrow_array::{
    Array, BinaryArray, FixedSizeBinaryArray, Float64Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringArray, StructArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Schema};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::ChunkReader;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use super::pages::row_group_batches;
use super::{
    arrow_schema, col, CodecError, JournalRow, RowPosition, FORMAT_VERSION, FORMAT_VERSION_KEY,
};
use crate::canonical::MAX_SAFE_INTEGER;
use crate::record::{
    Action, ActionType, Caller, Kind, Llm, ModelRef, OutcomeFields, Output, Record, ReviewFields,
    RiskTier, Step, Verdict,
};
use crate::timestamp::Timestamp;

/// Rows per Arrow batch when reading a row group.
const READ_BATCH_ROWS: usize = 8_192;

/// Every row of a journal file, in physical order.
pub fn decode_file(bytes: Bytes) -> Result<Vec<JournalRow>, CodecError> {
    let meta = load_metadata(&bytes)?;
    let total = meta.metadata().file_metadata().num_rows();
    let mut rows = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for row_group in 0..meta.metadata().num_row_groups() {
        read_row_group(&bytes, &meta, row_group, &mut rows)?;
    }
    Ok(rows)
}

/// Every row of a journal file with its position, from one read of the footer.
pub fn decode_file_positioned(
    bytes: Bytes,
) -> Result<(Vec<JournalRow>, Vec<RowPosition>), CodecError> {
    let meta = load_metadata(&bytes)?;
    let total = usize::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mut rows = Vec::with_capacity(total);
    let mut positions = Vec::with_capacity(total);
    for row_group in 0..meta.metadata().num_row_groups() {
        let start = rows.len();
        read_row_group(&bytes, &meta, row_group, &mut rows)?;
        positions.extend((0..rows.len() - start).map(|row_in_group| RowPosition {
            row_group,
            row_in_group,
        }));
    }
    Ok((rows, positions))
}

/// The rows of one row group, in physical order.
pub fn decode_row_group(bytes: Bytes, row_group: usize) -> Result<Vec<JournalRow>, CodecError> {
    let meta = load_metadata(&bytes)?;
    let count = meta.metadata().num_row_groups();
    if row_group >= count {
        return Err(CodecError::NoSuchRowGroup { row_group, count });
    }
    let mut rows = Vec::new();
    read_row_group(&bytes, &meta, row_group, &mut rows)?;
    Ok(rows)
}

/// The row groups of a journal file, decoded one at a time: memory holds the file's bytes and
/// one row group, never the whole file decoded.
pub struct RowGroups(LazyRowGroups);

impl RowGroups {
    pub fn new(bytes: Bytes) -> Result<Self, CodecError> {
        LazyRowGroups::new(bytes).map(Self)
    }

    pub fn row_group_count(&self) -> usize {
        self.0.row_group_count()
    }
}

impl Iterator for RowGroups {
    type Item = Result<Vec<JournalRow>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|group| group?.rows())
    }
}

/// The row groups of a journal file as Arrow batches, one row group at a time, schema checked
/// and nothing decoded to rows: compaction copies them and reads their integrity columns.
pub struct LazyRowGroups {
    bytes: Bytes,
    meta: ArrowReaderMetadata,
    next: usize,
}

impl LazyRowGroups {
    pub fn new(bytes: Bytes) -> Result<Self, CodecError> {
        let meta = load_metadata(&bytes)?;
        Ok(Self {
            bytes,
            meta,
            next: 0,
        })
    }

    pub fn row_group_count(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }
}

impl Iterator for LazyRowGroups {
    type Item = Result<LazyRowGroup, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.row_group_count() {
            return None;
        }
        let group = read_row_group_lazy(&self.bytes, &self.meta, self.next);
        self.next += 1;
        Some(group)
    }
}

/// A row's integrity columns, read without decoding its record.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrityRow {
    pub record_id: String,
    pub block_id: String,
    pub leaf_index: u32,
    pub leaf_hash: [u8; 32],
}

/// `(row group, rows in it)` for every row group, in file order.
pub fn positions_from_metadata(meta: &ParquetMetaData) -> Vec<(usize, u64)> {
    meta.row_groups()
        .iter()
        .enumerate()
        .map(|(i, rg)| (i, u64::try_from(rg.num_rows()).unwrap_or(0)))
        .collect()
}

/// Refuses files without a `dj.format_version` this reader knows.
pub fn check_format_version(meta: &ParquetMetaData) -> Result<(), CodecError> {
    let version = meta
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == FORMAT_VERSION_KEY))
        .and_then(|e| e.value.as_deref());
    match version {
        Some(FORMAT_VERSION) => Ok(()),
        Some(other) => Err(CodecError::Schema {
            column: FORMAT_VERSION_KEY.to_string(),
            reason: format!(
                "unknown format version {other:?} (this reader knows {FORMAT_VERSION:?})"
            ),
        }),
        None => Err(CodecError::Schema {
            column: FORMAT_VERSION_KEY.to_string(),
            reason: "missing from the file metadata: not a journal file".into(),
        }),
    }
}

fn load_metadata(bytes: &Bytes) -> Result<ArrowReaderMetadata, CodecError> {
    let meta = ArrowReaderMetadata::load(bytes, ArrowReaderOptions::new())?;
    check_loaded(&meta)?;
    Ok(meta)
}

/// Refuses metadata that is not of a journal file this reader knows.
pub(super) fn check_loaded(meta: &ArrowReaderMetadata) -> Result<(), CodecError> {
    check_format_version(meta.metadata())?;
    check_schema(meta.schema())
}

pub(super) fn read_row_group<T: ChunkReader + Clone + 'static>(
    bytes: &T,
    meta: &ArrowReaderMetadata,
    row_group: usize,
    out: &mut Vec<JournalRow>,
) -> Result<(), CodecError> {
    let reader = row_group_batches(bytes, meta, row_group, READ_BATCH_ROWS)?;
    let mut row_in_group = 0;
    for batch in reader {
        let batch = batch?;
        let first = RowPosition {
            row_group,
            row_in_group,
        };
        decode_into(&batch, first, out)?;
        row_in_group += batch.num_rows();
    }
    Ok(())
}

/// One row group kept as Arrow batches: a row becomes a [`JournalRow`] only when asked for, so
/// a lookup pays for the one row it returns plus the three columns its proof needs.
pub struct LazyRowGroup {
    batches: Vec<RecordBatch>,
    row_group: usize,
    rows: usize,
}

impl LazyRowGroup {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The row at `row` (within the row group), fully decoded and checked.
    pub fn row(&self, row: usize) -> Result<Option<JournalRow>, CodecError> {
        let mut first = 0;
        for batch in &self.batches {
            if row < first + batch.num_rows() {
                let at = At {
                    i: row - first,
                    pos: RowPosition {
                        row_group: self.row_group,
                        row_in_group: row,
                    },
                };
                return Cols::new(batch)?.row(at).map(Some);
            }
            first += batch.num_rows();
        }
        Ok(None)
    }

    /// Every row, fully decoded and checked.
    pub fn rows(&self) -> Result<Vec<JournalRow>, CodecError> {
        let mut out = Vec::with_capacity(self.rows);
        let mut first = 0;
        for batch in &self.batches {
            let at = RowPosition {
                row_group: self.row_group,
                row_in_group: first,
            };
            decode_into(batch, at, &mut out)?;
            first += batch.num_rows();
        }
        Ok(out)
    }

    /// The Arrow batches of the row group, in row order.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The integrity columns of every row, in row order.
    pub fn integrity(&self) -> Result<Vec<IntegrityRow>, CodecError> {
        let mut out = Vec::with_capacity(self.rows);
        let mut first = 0;
        for batch in &self.batches {
            let record_ids: &StringArray = column(batch, col::RECORD_ID)?;
            let block_ids: &StringArray = column(batch, col::BLOCK_ID)?;
            let leaf_index: &Int64Array = column(batch, col::LEAF_INDEX)?;
            let leaf_hash: &FixedSizeBinaryArray = column(batch, col::LEAF_HASH)?;
            for i in 0..batch.num_rows() {
                let at = At {
                    i,
                    pos: RowPosition {
                        row_group: self.row_group,
                        row_in_group: first + i,
                    },
                };
                let text = |a: &StringArray, name: &'static str| {
                    if a.is_null(i) {
                        Err(at.err(name, "null in a required column"))
                    } else {
                        Ok(a.value(i).to_string())
                    }
                };
                out.push(IntegrityRow {
                    record_id: text(record_ids, col::RECORD_ID)?,
                    block_id: text(block_ids, col::BLOCK_ID)?,
                    leaf_index: u32::try_from(leaf_index.value(i))
                        .map_err(|_| at.err(col::LEAF_INDEX, "outside 0..2^32"))?,
                    leaf_hash: fixed::<32>(leaf_hash, at, col::LEAF_HASH)?,
                });
            }
            first += batch.num_rows();
        }
        Ok(out)
    }

    /// `(leaf_index, leaf_hash)` of every row of `block_id`, in file order.
    pub fn leaves_of(&self, block_id: &str) -> Result<Vec<(u32, [u8; 32])>, CodecError> {
        let mut out = Vec::new();
        let mut first = 0;
        for batch in &self.batches {
            let block_ids: &StringArray = column(batch, col::BLOCK_ID)?;
            let leaf_index: &Int64Array = column(batch, col::LEAF_INDEX)?;
            let leaf_hash: &FixedSizeBinaryArray = column(batch, col::LEAF_HASH)?;
            for i in 0..batch.num_rows() {
                if block_ids.is_valid(i) && block_ids.value(i) == block_id {
                    let at = At {
                        i,
                        pos: RowPosition {
                            row_group: self.row_group,
                            row_in_group: first + i,
                        },
                    };
                    let index = u32::try_from(leaf_index.value(i))
                        .map_err(|_| at.err(col::LEAF_INDEX, "outside 0..2^32"))?;
                    out.push((index, fixed::<32>(leaf_hash, at, col::LEAF_HASH)?));
                }
            }
            first += batch.num_rows();
        }
        Ok(out)
    }
}

/// Reads one row group into a [`LazyRowGroup`] (schema checked, nothing decoded to rows).
pub(super) fn read_row_group_lazy<T: ChunkReader + Clone + 'static>(
    bytes: &T,
    meta: &ArrowReaderMetadata,
    row_group: usize,
) -> Result<LazyRowGroup, CodecError> {
    let reader = row_group_batches(bytes, meta, row_group, READ_BATCH_ROWS)?;
    let mut batches = Vec::new();
    let mut rows = 0;
    for batch in reader {
        let batch = batch?;
        check_schema(batch.schema_ref())?;
        rows += batch.num_rows();
        batches.push(batch);
    }
    Ok(LazyRowGroup {
        batches,
        row_group,
        rows,
    })
}

/// Decodes a batch whose first row sits at `first` (used to name rows in errors).
pub fn decode_batch(
    batch: &RecordBatch,
    first: RowPosition,
) -> Result<Vec<JournalRow>, CodecError> {
    let mut rows = Vec::with_capacity(batch.num_rows());
    decode_into(batch, first, &mut rows)?;
    Ok(rows)
}

fn decode_into(
    batch: &RecordBatch,
    first: RowPosition,
    out: &mut Vec<JournalRow>,
) -> Result<(), CodecError> {
    let cols = Cols::new(batch)?;
    out.reserve(batch.num_rows());
    for i in 0..batch.num_rows() {
        let at = At {
            i,
            pos: RowPosition {
                row_group: first.row_group,
                row_in_group: first.row_in_group + i,
            },
        };
        out.push(cols.row(at)?);
    }
    Ok(())
}

fn schema_err(column: &str, reason: impl Into<String>) -> CodecError {
    CodecError::Schema {
        column: column.to_string(),
        reason: reason.into(),
    }
}

/// Checks that `schema` has every journal column with a compatible type (extra columns are
/// ignored, order does not matter).
fn check_schema(schema: &Schema) -> Result<(), CodecError> {
    for expected in arrow_schema().fields() {
        let found = schema
            .field_with_name(expected.name())
            .map_err(|_| schema_err(expected.name(), "missing"))?;
        check_type(expected.name(), expected.data_type(), found.data_type())?;
    }
    Ok(())
}

fn check_type(column: &str, expected: &DataType, found: &DataType) -> Result<(), CodecError> {
    if type_matches(expected, found) {
        Ok(())
    } else {
        Err(schema_err(
            column,
            format!("expected {expected}, found {found}"),
        ))
    }
}

/// Type equality, except that any UTC-normalized timestamp zone and any list item name or
/// nullability are accepted (other writers spell them differently; the values are the same).
fn type_matches(expected: &DataType, found: &DataType) -> bool {
    match (expected, found) {
        (DataType::Timestamp(u1, Some(_)), DataType::Timestamp(u2, Some(_))) => u1 == u2,
        (DataType::List(e), DataType::List(f)) => type_matches(e.data_type(), f.data_type()),
        (DataType::Struct(e), DataType::Struct(f)) => {
            e.len() == f.len()
                && e.iter().zip(f.iter()).all(|(e, f)| {
                    e.name() == f.name() && type_matches(e.data_type(), f.data_type())
                })
        }
        _ => expected == found,
    }
}

fn column<'a, A: Array + 'static>(
    batch: &'a RecordBatch,
    name: &'static str,
) -> Result<&'a A, CodecError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| schema_err(name, "missing"))?
        .as_any()
        .downcast_ref::<A>()
        .ok_or_else(|| schema_err(name, "unexpected array type"))
}

fn child<'a, A: Array + 'static>(items: &'a StructArray, name: &str) -> Result<&'a A, CodecError> {
    items
        .column_by_name(name)
        .and_then(|a| a.as_any().downcast_ref::<A>())
        .ok_or_else(|| {
            schema_err(
                col::OUTPUTS,
                format!("item field {name} missing or mistyped"),
            )
        })
}

/// One row's address: index in the batch and position in the file.
#[derive(Clone, Copy)]
struct At {
    i: usize,
    pos: RowPosition,
}

impl At {
    fn err(self, column: &'static str, reason: impl Into<String>) -> CodecError {
        CodecError::Decode {
            position: self.pos,
            column,
            reason: reason.into(),
        }
    }

    fn str(self, a: &StringArray) -> Option<&str> {
        a.is_valid(self.i).then(|| a.value(self.i))
    }

    fn string(self, a: &StringArray) -> Option<String> {
        self.str(a).map(str::to_owned)
    }

    fn req<'a>(self, a: &'a StringArray, column: &'static str) -> Result<&'a str, CodecError> {
        self.str(a)
            .ok_or_else(|| self.err(column, "null in a required column"))
    }

    fn f64(self, a: &Float64Array) -> Option<f64> {
        a.is_valid(self.i).then(|| a.value(self.i))
    }

    fn time(
        self,
        a: &TimestampMillisecondArray,
        column: &'static str,
    ) -> Result<Option<Timestamp>, CodecError> {
        if a.is_null(self.i) {
            return Ok(None);
        }
        Timestamp::from_millis(a.value(self.i))
            .map(Some)
            .map_err(|e| self.err(column, e.to_string()))
    }

    fn req_time(
        self,
        a: &TimestampMillisecondArray,
        column: &'static str,
    ) -> Result<Timestamp, CodecError> {
        self.time(a, column)?
            .ok_or_else(|| self.err(column, "null in a required column"))
    }

    /// Errors when a member column is set although its object's required column is null.
    fn no_orphans(
        self,
        parent: &'static str,
        members: &[(&'static str, bool)],
    ) -> Result<(), CodecError> {
        match members.iter().find(|(_, set)| *set) {
            Some((column, _)) => Err(self.err(column, format!("set while {parent} is null"))),
            None => Ok(()),
        }
    }

    fn json<T: DeserializeOwned>(
        self,
        a: &StringArray,
        column: &'static str,
    ) -> Result<Option<T>, CodecError> {
        self.str(a)
            .map(|text| serde_json::from_str(text).map_err(|e| self.err(column, e.to_string())))
            .transpose()
    }
}

fn parse_enum<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str, text: &str) -> Option<T> {
    all.iter().copied().find(|v| name(*v) == text)
}

/// The journal columns of one batch, downcast once.
struct Cols<'a> {
    record_id: &'a StringArray,
    kind: &'a StringArray,
    schema_version: &'a Int32Array,
    decision_id: &'a StringArray,
    outcome_id: &'a StringArray,
    review_id: &'a StringArray,
    tenant_id: &'a StringArray,
    occurred_at: &'a TimestampMillisecondArray,
    received_at: &'a TimestampMillisecondArray,
    subject_ref: &'a StringArray,
    caller_principal: &'a StringArray,
    caller_service: &'a StringArray,
    model_name: &'a StringArray,
    model_version: &'a StringArray,
    model_artifact_sha256: &'a StringArray,
    dataset_manifest_sha256: &'a StringArray,
    features_hmac: &'a StringArray,
    outputs: &'a ListArray,
    output_items: &'a StructArray,
    output_labels: &'a StringArray,
    output_scores: &'a Float64Array,
    decision: &'a StringArray,
    confidence: &'a Float64Array,
    threshold: &'a Float64Array,
    rationale: &'a StringArray,
    explanation_ref: &'a StringArray,
    action_type: &'a StringArray,
    action_detail: &'a StringArray,
    risk_tier: &'a StringArray,
    outcome_label: &'a StringArray,
    outcome_value: &'a Float64Array,
    review_reviewer: &'a StringArray,
    review_verdict: &'a StringArray,
    review_override_label: &'a StringArray,
    review_notes: &'a StringArray,
    sampling_rate: &'a Float64Array,
    steps: &'a StringArray,
    llm: &'a StringArray,
    context: &'a StringArray,
    block_id: &'a StringArray,
    leaf_index: &'a Int64Array,
    salt: &'a FixedSizeBinaryArray,
    leaf_hash: &'a FixedSizeBinaryArray,
    features_sealed: &'a BinaryArray,
}

impl<'a> Cols<'a> {
    fn new(batch: &'a RecordBatch) -> Result<Self, CodecError> {
        check_schema(batch.schema_ref())?;
        let outputs: &ListArray = column(batch, col::OUTPUTS)?;
        let output_items = outputs
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| schema_err(col::OUTPUTS, "items are not structs"))?;
        Ok(Self {
            record_id: column(batch, col::RECORD_ID)?,
            kind: column(batch, col::KIND)?,
            schema_version: column(batch, col::SCHEMA_VERSION)?,
            decision_id: column(batch, col::DECISION_ID)?,
            outcome_id: column(batch, col::OUTCOME_ID)?,
            review_id: column(batch, col::REVIEW_ID)?,
            tenant_id: column(batch, col::TENANT_ID)?,
            occurred_at: column(batch, col::OCCURRED_AT)?,
            received_at: column(batch, col::RECEIVED_AT)?,
            subject_ref: column(batch, col::SUBJECT_REF)?,
            caller_principal: column(batch, col::CALLER_PRINCIPAL)?,
            caller_service: column(batch, col::CALLER_SERVICE)?,
            model_name: column(batch, col::MODEL_NAME)?,
            model_version: column(batch, col::MODEL_VERSION)?,
            model_artifact_sha256: column(batch, col::MODEL_ARTIFACT_SHA256)?,
            dataset_manifest_sha256: column(batch, col::DATASET_MANIFEST_SHA256)?,
            features_hmac: column(batch, col::FEATURES_HMAC)?,
            outputs,
            output_items,
            output_labels: child(output_items, col::OUTPUT_LABEL)?,
            output_scores: child(output_items, col::OUTPUT_SCORE)?,
            decision: column(batch, col::DECISION)?,
            confidence: column(batch, col::CONFIDENCE)?,
            threshold: column(batch, col::THRESHOLD)?,
            rationale: column(batch, col::RATIONALE)?,
            explanation_ref: column(batch, col::EXPLANATION_REF)?,
            action_type: column(batch, col::ACTION_TYPE)?,
            action_detail: column(batch, col::ACTION_DETAIL)?,
            risk_tier: column(batch, col::RISK_TIER)?,
            outcome_label: column(batch, col::OUTCOME_LABEL)?,
            outcome_value: column(batch, col::OUTCOME_VALUE)?,
            review_reviewer: column(batch, col::REVIEW_REVIEWER)?,
            review_verdict: column(batch, col::REVIEW_VERDICT)?,
            review_override_label: column(batch, col::REVIEW_OVERRIDE_LABEL)?,
            review_notes: column(batch, col::REVIEW_NOTES)?,
            sampling_rate: column(batch, col::SAMPLING_RATE)?,
            steps: column(batch, col::STEPS)?,
            llm: column(batch, col::LLM)?,
            context: column(batch, col::CONTEXT)?,
            block_id: column(batch, col::BLOCK_ID)?,
            leaf_index: column(batch, col::LEAF_INDEX)?,
            salt: column(batch, col::SALT)?,
            leaf_hash: column(batch, col::LEAF_HASH)?,
            features_sealed: column(batch, col::FEATURES_SEALED)?,
        })
    }

    fn row(&self, at: At) -> Result<JournalRow, CodecError> {
        let record = self.record(at)?;
        // The id column is redundant with the record; disagreement means tampering or a bug.
        if record.record_id() != at.req(self.record_id, col::RECORD_ID)? {
            return Err(at.err(col::RECORD_ID, "disagrees with the record's own id"));
        }
        self.integrity(at, record)
    }

    fn record(&self, at: At) -> Result<Record, CodecError> {
        let kind_text = at.req(self.kind, col::KIND)?;
        let kind = parse_enum(
            &[Kind::Decision, Kind::Outcome, Kind::Review, Kind::Access],
            Kind::as_str,
            kind_text,
        )
        .ok_or_else(|| at.err(col::KIND, format!("unknown kind {kind_text:?}")))?;
        let schema_version = self.schema_version(at)?;
        Ok(Record {
            schema_version,
            kind,
            decision_id: at.req(self.decision_id, col::DECISION_ID)?.to_owned(),
            outcome_id: at.string(self.outcome_id),
            review_id: at.string(self.review_id),
            tenant_id: at.req(self.tenant_id, col::TENANT_ID)?.to_owned(),
            occurred_at: at.req_time(self.occurred_at, col::OCCURRED_AT)?,
            received_at: at.time(self.received_at, col::RECEIVED_AT)?,
            caller: self.caller(at),
            subject: None,
            subject_ref: at.string(self.subject_ref),
            model: self.model(at)?,
            dataset_manifest_sha256: at.string(self.dataset_manifest_sha256),
            features: None,
            features_hmac: at.string(self.features_hmac),
            outputs: self.outputs(at)?,
            decision: at.string(self.decision),
            confidence: at.f64(self.confidence),
            threshold: at.f64(self.threshold),
            rationale: at.string(self.rationale),
            explanation_ref: at.string(self.explanation_ref),
            action: self.action(at)?,
            risk_tier: self.risk_tier(at)?,
            steps: self.steps(at)?,
            llm: at.json::<Llm>(self.llm, col::LLM)?.map(Box::new),
            outcome: self.outcome(at)?.map(Box::new),
            review: self.review(at)?.map(Box::new),
            sampling_rate: at.f64(self.sampling_rate),
            context: self.context(at)?,
        })
    }

    fn schema_version(&self, at: At) -> Result<u32, CodecError> {
        if self.schema_version.is_null(at.i) {
            return Err(at.err(col::SCHEMA_VERSION, "null in a required column"));
        }
        u32::try_from(self.schema_version.value(at.i))
            .map_err(|_| at.err(col::SCHEMA_VERSION, "negative"))
    }

    fn caller(&self, at: At) -> Option<Caller> {
        let principal = at.string(self.caller_principal);
        let service = at.string(self.caller_service);
        (principal.is_some() || service.is_some()).then_some(Caller { principal, service })
    }

    fn model(&self, at: At) -> Result<Option<ModelRef>, CodecError> {
        let Some(name) = at.string(self.model_name) else {
            at.no_orphans(
                col::MODEL_NAME,
                &[
                    (col::MODEL_VERSION, self.model_version.is_valid(at.i)),
                    (
                        col::MODEL_ARTIFACT_SHA256,
                        self.model_artifact_sha256.is_valid(at.i),
                    ),
                ],
            )?;
            return Ok(None);
        };
        Ok(Some(ModelRef {
            name,
            version: at.req(self.model_version, col::MODEL_VERSION)?.to_owned(),
            artifact_sha256: at
                .req(self.model_artifact_sha256, col::MODEL_ARTIFACT_SHA256)?
                .to_owned(),
        }))
    }

    fn outputs(&self, at: At) -> Result<Option<Vec<Output>>, CodecError> {
        if self.outputs.is_null(at.i) {
            return Ok(None);
        }
        let offsets = self.outputs.value_offsets();
        let (start, end) = (offsets[at.i] as usize, offsets[at.i + 1] as usize);
        (start..end)
            .map(|j| {
                if self.output_items.is_null(j)
                    || self.output_labels.is_null(j)
                    || self.output_scores.is_null(j)
                {
                    return Err(at.err(col::OUTPUTS, "null output, label or score"));
                }
                Ok(Output {
                    label: self.output_labels.value(j).to_owned(),
                    score: self.output_scores.value(j),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn action(&self, at: At) -> Result<Option<Action>, CodecError> {
        let detail = at.string(self.action_detail);
        let Some(text) = at.str(self.action_type) else {
            at.no_orphans(col::ACTION_TYPE, &[(col::ACTION_DETAIL, detail.is_some())])?;
            return Ok(None);
        };
        let all = [
            ActionType::Automated,
            ActionType::Recommendation,
            ActionType::HumanReview,
        ];
        let kind = parse_enum(&all, ActionType::as_str, text)
            .ok_or_else(|| at.err(col::ACTION_TYPE, format!("unknown action type {text:?}")))?;
        Ok(Some(Action { kind, detail }))
    }

    fn risk_tier(&self, at: At) -> Result<Option<RiskTier>, CodecError> {
        let Some(text) = at.str(self.risk_tier) else {
            return Ok(None);
        };
        let all = [RiskTier::Low, RiskTier::Medium, RiskTier::High];
        parse_enum(&all, RiskTier::as_str, text)
            .map(Some)
            .ok_or_else(|| at.err(col::RISK_TIER, format!("unknown risk tier {text:?}")))
    }

    fn outcome(&self, at: At) -> Result<Option<OutcomeFields>, CodecError> {
        let value = at.f64(self.outcome_value);
        let Some(label) = at.string(self.outcome_label) else {
            at.no_orphans(col::OUTCOME_LABEL, &[(col::OUTCOME_VALUE, value.is_some())])?;
            return Ok(None);
        };
        Ok(Some(OutcomeFields { label, value }))
    }

    fn review(&self, at: At) -> Result<Option<ReviewFields>, CodecError> {
        let override_label = at.string(self.review_override_label);
        let notes = at.string(self.review_notes);
        let Some(reviewer) = at.string(self.review_reviewer) else {
            at.no_orphans(
                col::REVIEW_REVIEWER,
                &[
                    (col::REVIEW_VERDICT, self.review_verdict.is_valid(at.i)),
                    (col::REVIEW_OVERRIDE_LABEL, override_label.is_some()),
                    (col::REVIEW_NOTES, notes.is_some()),
                ],
            )?;
            return Ok(None);
        };
        let text = at.req(self.review_verdict, col::REVIEW_VERDICT)?;
        let verdict = parse_enum(
            &[Verdict::Confirm, Verdict::Override],
            Verdict::as_str,
            text,
        )
        .ok_or_else(|| at.err(col::REVIEW_VERDICT, format!("unknown verdict {text:?}")))?;
        Ok(Some(ReviewFields {
            reviewer,
            verdict,
            override_label,
            notes,
        }))
    }

    fn steps(&self, at: At) -> Result<Option<Vec<Step>>, CodecError> {
        let mut steps = at.json::<Vec<Step>>(self.steps, col::STEPS)?;
        for output in steps.iter_mut().flatten().filter_map(|s| s.output.as_mut()) {
            restore_big_doubles(output);
        }
        Ok(steps)
    }

    fn context(&self, at: At) -> Result<Option<Map<String, Value>>, CodecError> {
        let mut context = at.json::<Map<String, Value>>(self.context, col::CONTEXT)?;
        for value in context.iter_mut().flat_map(|m| m.values_mut()) {
            restore_big_doubles(value);
        }
        Ok(context)
    }

    fn integrity(&self, at: At, record: Record) -> Result<JournalRow, CodecError> {
        let null = |column| at.err(column, "null in a required column");
        if self.leaf_index.is_null(at.i) {
            return Err(null(col::LEAF_INDEX));
        }
        let leaf_index = u32::try_from(self.leaf_index.value(at.i))
            .map_err(|_| at.err(col::LEAF_INDEX, "outside 0..2^32"))?;
        let salt = fixed::<16>(self.salt, at, col::SALT)?;
        let leaf_hash = fixed::<32>(self.leaf_hash, at, col::LEAF_HASH)?;
        let features_sealed = self
            .features_sealed
            .is_valid(at.i)
            .then(|| self.features_sealed.value(at.i).to_vec());
        Ok(JournalRow {
            record,
            block_id: at.req(self.block_id, col::BLOCK_ID)?.to_owned(),
            leaf_index,
            salt,
            leaf_hash,
            features_sealed,
        })
    }
}

fn fixed<const N: usize>(
    a: &FixedSizeBinaryArray,
    at: At,
    column: &'static str,
) -> Result<[u8; N], CodecError> {
    if a.is_null(at.i) {
        return Err(at.err(column, "null in a required column"));
    }
    a.value(at.i)
        .try_into()
        .map_err(|_| at.err(column, format!("not {N} bytes")))
}

/// Canonical JSON writes integral doubles from 2^53 up to 1e21 as plain integers; serde_json
/// reads those back as u64/i64, which canonicalization refuses as unsafe integers. Only a double
/// can have produced them (unsafe integers are refused on the way in), so make them doubles again:
/// the conversion is exact because the text is the shortest round-trip form of that double.
fn restore_big_doubles(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(double) = unsafe_integer(n).and_then(Number::from_f64) {
                *n = double;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(restore_big_doubles),
        Value::Object(map) => map.values_mut().for_each(restore_big_doubles),
        _ => {}
    }
}

fn unsafe_integer(n: &Number) -> Option<f64> {
    if let Some(u) = n.as_u64() {
        return (u > MAX_SAFE_INTEGER).then_some(u as f64);
    }
    let i = n.as_i64()?;
    (i.unsigned_abs() > MAX_SAFE_INTEGER).then_some(i as f64)
}
