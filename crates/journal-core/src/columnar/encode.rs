//! Encoding: journal rows → Arrow record batches → Parquet bytes.
//!
//! Arrays are built straight from the record fields (no JSON round trip); only the free-form
//! parts (`steps`, `llm`, `context`) go through [`crate::canonical`], or at ingest are sliced
//! from the record's canonical bytes, which sealing wrote already ([`encode_sealed_file`]).

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, FixedSizeBinaryBuilder, Float64Builder, GenericByteBuilder, Int32Builder,
    Int64Builder, NullBufferBuilder, OffsetBufferBuilder, TimestampMillisecondBuilder,
};
use arrow_array::types::{BinaryType, ByteArrayType, Utf8Type};
use arrow_array::{ArrayRef, Float64Array, ListArray, RecordBatch, StructArray};
use parquet::arrow::{ArrowWriter, ARROW_SCHEMA_META_KEY};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{
    BloomFilterPosition, BloomFilterProperties, EnabledStatistics, WriterProperties, WriterVersion,
    DEFAULT_CREATED_BY,
};
use parquet::schema::types::ColumnPath;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{
    arrow_schema, col, dictionary_columns, output_struct_fields, outputs_item_field, CodecError,
    JournalRow, RowPosition, WriterConfig, BLOOM_FILTER_COLUMNS, FAST_ZSTD_COLUMNS,
    FAST_ZSTD_LEVEL, FORMAT_VERSION, FORMAT_VERSION_KEY, LOW_CARDINALITY_COLUMNS,
    NO_STATISTICS_COLUMNS, SMALL_GAIN_COLUMNS, UNCOMPRESSED_COLUMNS,
};
use crate::canonical::{self, CanonicalError};
use crate::record::{write_llm_json, write_steps_json, CanonicalRecord, Llm, Output, Record, Step};

/// Page and dictionary page byte limits (the parquet crate's defaults, set explicitly).
const PAGE_BYTES: usize = 1024 * 1024;
/// Bytes of min/max kept in statistics and column indexes (ids and hashes fit whole).
const STATS_TRUNCATE: usize = 64;
/// Rows handed to a column writer at a time; also bounds how far pages overshoot the row limit.
const WRITE_BATCH_ROWS: usize = 1024;
/// Guess of compressed file bytes per row, to size in-memory output buffers.
const EST_FILE_BYTES_PER_ROW: usize = 256;
/// Arrow's 32-bit offsets bound the bytes of one variable-width column in one batch.
const MAX_COLUMN_BYTES: usize = i32::MAX as usize;

/// Parquet writer properties for journal files, with every setting that matters made explicit.
///
/// `metadata` pairs are added to the file's key-value metadata after
/// [`FORMAT_VERSION_KEY`]; they may not reuse that key or Arrow's schema key.
pub fn writer_properties(
    cfg: &WriterConfig,
    metadata: &[(String, String)],
) -> Result<WriterProperties, CodecError> {
    properties(cfg, metadata, &[])
}

/// [`writer_properties`], with `all_null` columns (known to hold no value) left uncompressed:
/// their pages are a run of nulls that ZSTD cannot shrink.
pub(super) fn properties(
    cfg: &WriterConfig,
    metadata: &[(String, String)],
    all_null: &[&str],
) -> Result<WriterProperties, CodecError> {
    validate_config(cfg)?;
    let level = ZstdLevel::try_new(cfg.zstd_level)
        .map_err(|e| CodecError::Config(format!("zstd_level {}: {e}", cfg.zstd_level)))?;
    let mut builder = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0) // v1 pages: every reader, Athena included
        .set_created_by(created_by())
        .set_key_value_metadata(Some(key_value_metadata(metadata)?))
        .set_compression(Compression::ZSTD(level))
        .set_encoding(Encoding::PLAIN)
        .set_dictionary_enabled(false)
        .set_dictionary_page_size_limit(PAGE_BYTES)
        .set_data_page_size_limit(PAGE_BYTES)
        .set_data_page_row_count_limit(cfg.data_page_row_limit)
        .set_write_batch_size(cfg.data_page_row_limit.min(WRITE_BATCH_ROWS))
        .set_max_row_group_row_count(Some(cfg.max_row_group_size))
        .set_max_row_group_bytes(None)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_write_page_header_statistics(false)
        .set_statistics_truncate_length(Some(STATS_TRUNCATE))
        .set_column_index_truncate_length(Some(STATS_TRUNCATE))
        .set_offset_index_disabled(false)
        .set_write_row_group_number_distinct_values(false)
        .set_sorting_columns(None)
        .set_coerce_types(false)
        .set_write_path_in_schema(true)
        .set_content_defined_chunking(None)
        .set_bloom_filter_enabled(false)
        // After each row group, so a writer holds at most one row group's filters.
        .set_bloom_filter_position(BloomFilterPosition::AfterRowGroup)
        .set_bloom_filter_for_dictionary_encoded_chunks(true);
    for name in NO_STATISTICS_COLUMNS {
        builder =
            builder.set_column_statistics_enabled(ColumnPath::from(*name), EnabledStatistics::None);
    }
    for name in dictionary_columns() {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(name), true);
    }
    if cfg.zstd_level > FAST_ZSTD_LEVEL {
        let fast = Compression::ZSTD(ZstdLevel::try_new(FAST_ZSTD_LEVEL).expect("a valid level"));
        for name in FAST_ZSTD_COLUMNS {
            builder = builder.set_column_compression(ColumnPath::from(*name), fast);
        }
    }
    let (low_cardinality, small_gain) = if cfg.compress_low_cardinality {
        (&[][..], &[][..])
    } else {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(col::RECEIVED_AT), true)
            .set_column_encoding(
                ColumnPath::from(col::LEAF_INDEX),
                Encoding::DELTA_BINARY_PACKED,
            );
        (LOW_CARDINALITY_COLUMNS, SMALL_GAIN_COLUMNS)
    };
    for name in UNCOMPRESSED_COLUMNS
        .iter()
        .chain(low_cardinality)
        .chain(small_gain)
        .chain(all_null)
    {
        builder =
            builder.set_column_compression(ColumnPath::from(*name), Compression::UNCOMPRESSED);
    }
    let bloom = bloom_properties(cfg)?;
    for name in BLOOM_FILTER_COLUMNS {
        builder =
            builder.set_column_bloom_filter_properties(ColumnPath::from(*name), bloom.clone());
    }
    Ok(builder.build())
}

fn validate_config(cfg: &WriterConfig) -> Result<(), CodecError> {
    let positive = [
        ("max_row_group_size", cfg.max_row_group_size),
        ("data_page_row_limit", cfg.data_page_row_limit),
        ("batch_rows", cfg.batch_rows),
    ];
    if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
        return Err(CodecError::Config(format!("{name} must be at least 1")));
    }
    // Levels below 1 are zstd's "fast" modes, which would blow the stored-size budget.
    if !(1..=22).contains(&cfg.zstd_level) {
        return Err(CodecError::Config(format!(
            "zstd_level {} is outside 1..=22",
            cfg.zstd_level
        )));
    }
    if !(cfg.bloom_fpp > 0.0 && cfg.bloom_fpp < 1.0) {
        return Err(CodecError::Config(format!(
            "bloom_fpp {} is outside (0, 1)",
            cfg.bloom_fpp
        )));
    }
    if cfg.bloom_max_ndv == Some(0) {
        return Err(CodecError::Config(
            "bloom_max_ndv must be at least 1".into(),
        ));
    }
    Ok(())
}

fn bloom_properties(cfg: &WriterConfig) -> Result<BloomFilterProperties, CodecError> {
    let ndv = cfg
        .bloom_max_ndv
        .unwrap_or(u64::try_from(cfg.max_row_group_size).unwrap_or(u64::MAX));
    BloomFilterProperties::builder()
        .with_fpp(cfg.bloom_fpp)
        .with_max_ndv(ndv)
        .try_build()
        .map_err(|e| CodecError::Config(format!("bloom filter: {e}")))
}

/// `<app> version <v> (build <b>)` is the form readers parse; parquet-mr based readers
/// (Athena/Trino lineage) distrust binary statistics when `created_by` does not parse.
pub(crate) fn created_by() -> String {
    format!(
        "decision-journal version {} (build {DEFAULT_CREATED_BY})",
        env!("CARGO_PKG_VERSION")
    )
}

fn key_value_metadata(metadata: &[(String, String)]) -> Result<Vec<KeyValue>, CodecError> {
    let mut kv = Vec::with_capacity(metadata.len() + 1);
    kv.push(KeyValue::new(
        FORMAT_VERSION_KEY.to_string(),
        FORMAT_VERSION.to_string(),
    ));
    for (key, value) in metadata {
        if key == FORMAT_VERSION_KEY || key == ARROW_SCHEMA_META_KEY {
            return Err(CodecError::Config(format!(
                "metadata key {key:?} is reserved"
            )));
        }
        kv.push(KeyValue::new(key.clone(), value.clone()));
    }
    Ok(kv)
}

/// Converts rows (stored form) to one record batch with [`arrow_schema`](fn@arrow_schema).
///
/// Errors name the index of the offending row in `rows`.
pub fn rows_to_batch(rows: &[JournalRow]) -> Result<RecordBatch, CodecError> {
    rows_to_batch_from(rows, None, 0)
}

/// As [`rows_to_batch`], with row indexes in errors offset by `base`, and the free-form columns'
/// text taken from `canonical[i]` (row i's record's canonical bytes) where given.
fn rows_to_batch_from(
    rows: &[JournalRow],
    canonical: Option<&[CanonicalRecord]>,
    base: usize,
) -> Result<RecordBatch, CodecError> {
    let mut builder = BatchBuilder::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        builder.push(row, canonical.and_then(|c| c.get(i)), base + i)?;
    }
    builder.finish(base)
}

/// An encoded journal file held in memory.
#[derive(Clone, Debug)]
pub struct EncodedFile {
    pub bytes: bytes::Bytes,
    /// Lower-case hex SHA-256 of `bytes`.
    pub sha256: String,
    /// Where each input row landed, in input order.
    pub positions: Vec<RowPosition>,
    pub row_groups: usize,
}

/// Encodes `rows` into one Parquet file in memory, in the given order.
pub fn encode_file(
    rows: &[JournalRow],
    cfg: &WriterConfig,
    metadata: &[(String, String)],
) -> Result<EncodedFile, CodecError> {
    encode(rows, None, cfg, metadata)
}

/// [`encode_file`] for rows just sealed, whose records' canonical bytes are at hand
/// (`canonical[i]` is row i's): the `context`, `llm` and `steps` columns are those members'
/// bytes, not serialized again. The file is the same.
pub fn encode_sealed_file(
    rows: &[JournalRow],
    canonical: &[CanonicalRecord],
    cfg: &WriterConfig,
    metadata: &[(String, String)],
) -> Result<EncodedFile, CodecError> {
    if canonical.len() != rows.len() {
        return Err(CodecError::Config(format!(
            "{} rows with {} canonical forms",
            rows.len(),
            canonical.len()
        )));
    }
    encode(rows, Some(canonical), cfg, metadata)
}

fn encode(
    rows: &[JournalRow],
    canonical: Option<&[CanonicalRecord]>,
    cfg: &WriterConfig,
    metadata: &[(String, String)],
) -> Result<EncodedFile, CodecError> {
    // Compressed rows run well under this; reserving spares the buffer repeated regrowth.
    let capacity = rows.len().saturating_mul(EST_FILE_BYTES_PER_ROW) + 64 * 1024;
    // The row count is known: filters sized for it need no full-row-group buffer to fold down.
    let cfg = &WriterConfig {
        bloom_max_ndv: cfg.bloom_max_ndv.or_else(|| {
            let rows = rows.len().clamp(1, cfg.max_row_group_size.max(1));
            u64::try_from(rows).ok()
        }),
        ..cfg.clone()
    };
    let buf = Vec::with_capacity(capacity);
    let (buf, written) = if rows.len() <= cfg.batch_rows {
        // One batch, known before the writer exists: columns it leaves empty need no codec.
        let batch = rows_to_batch_from(rows, canonical, 0)?;
        let all_null = all_null_columns(&batch);
        let mut writer = JournalFileWriter::create(buf, cfg, metadata, &all_null)?;
        writer.write_batch(&batch)?;
        writer.finish_into_inner()?
    } else {
        let mut writer = JournalFileWriter::new(buf, cfg, metadata)?;
        writer.write_rows(rows)?;
        writer.finish_into_inner()?
    };
    let sha256 = hex::encode(Sha256::digest(&buf));
    Ok(EncodedFile {
        bytes: bytes::Bytes::from(buf),
        sha256,
        positions: written.positions().collect(),
        row_groups: written.row_groups,
    })
}

/// The top-level, non-nested columns of `batch` with no value in any row.
fn all_null_columns(batch: &RecordBatch) -> Vec<&str> {
    batch
        .schema_ref()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(field, array)| {
            !field.data_type().is_nested() && array.null_count() == array.len()
        })
        .map(|(field, _)| field.name().as_str())
        .collect()
}

/// What a [`JournalFileWriter`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFile {
    pub rows: u64,
    pub row_groups: usize,
    /// Rows in each row group, in file order.
    pub row_group_rows: Vec<u64>,
    /// Size of the complete file in bytes.
    pub bytes: u64,
}

impl WrittenFile {
    /// Position of every row in write order.
    pub fn positions(&self) -> impl Iterator<Item = RowPosition> + '_ {
        self.row_group_rows
            .iter()
            .enumerate()
            .flat_map(|(row_group, &rows)| {
                (0..rows as usize).map(move |row_in_group| RowPosition {
                    row_group,
                    row_in_group,
                })
            })
    }
}

/// Streams rows into a Parquet file; memory stays bounded by one row group plus one batch.
///
/// After any error the output is incomplete: the writer refuses further writes and `finish`.
pub struct JournalFileWriter<W: Write + Send> {
    inner: ArrowWriter<CountingWrite<W>>,
    batch_rows: usize,
    rows: u64,
    failed: bool,
}

impl<W: Write + Send> JournalFileWriter<W> {
    pub fn new(
        writer: W,
        cfg: &WriterConfig,
        metadata: &[(String, String)],
    ) -> Result<Self, CodecError> {
        Self::create(writer, cfg, metadata, &[])
    }

    fn create(
        writer: W,
        cfg: &WriterConfig,
        metadata: &[(String, String)],
        all_null: &[&str],
    ) -> Result<Self, CodecError> {
        let props = properties(cfg, metadata, all_null)?;
        let sink = CountingWrite {
            inner: writer,
            bytes: 0,
        };
        Ok(Self {
            inner: ArrowWriter::try_new(sink, arrow_schema(), Some(props))?,
            batch_rows: cfg.batch_rows,
            rows: 0,
            failed: false,
        })
    }

    /// Appends rows in order, converting at most `batch_rows` to Arrow at a time.
    ///
    /// Row indexes in errors count from the start of `rows`.
    pub fn write_rows(&mut self, rows: &[JournalRow]) -> Result<(), CodecError> {
        self.check_usable()?;
        for (n, chunk) in rows.chunks(self.batch_rows).enumerate() {
            let written = rows_to_batch_from(chunk, None, n * self.batch_rows)
                .and_then(|batch| Ok(self.inner.write(&batch)?));
            if let Err(e) = written {
                self.failed = true;
                return Err(e);
            }
            self.rows += chunk.len() as u64;
        }
        Ok(())
    }

    /// Appends a batch read from another journal file, as it is (compaction's copy: no row is
    /// decoded or re-encoded as a record).
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), CodecError> {
        self.check_usable()?;
        // The reader's schema may differ in metadata only; the columns are the journal's.
        let written = RecordBatch::try_new(arrow_schema(), batch.columns().to_vec())
            .map_err(CodecError::from)
            .and_then(|b| Ok(self.inner.write(&b)?));
        if let Err(e) = written {
            self.failed = true;
            return Err(e);
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    pub fn rows_written(&self) -> u64 {
        self.rows
    }

    /// Writes the footer and flushes the underlying writer.
    pub fn finish(self) -> Result<WrittenFile, CodecError> {
        let (mut writer, written) = self.finish_into_inner()?;
        writer.flush().map_err(ParquetError::from)?;
        Ok(written)
    }

    /// Writes the footer and hands back the underlying writer (not flushed).
    pub fn finish_into_inner(mut self) -> Result<(W, WrittenFile), CodecError> {
        self.check_usable()?;
        self.inner.flush()?;
        let row_group_rows: Vec<u64> = self
            .inner
            .flushed_row_groups()
            .iter()
            .map(|rg| u64::try_from(rg.num_rows()).unwrap_or(0))
            .collect();
        let sink = self.inner.into_inner()?;
        let written = WrittenFile {
            rows: self.rows,
            row_groups: row_group_rows.len(),
            row_group_rows,
            bytes: sink.bytes,
        };
        Ok((sink.inner, written))
    }

    fn check_usable(&self) -> Result<(), CodecError> {
        if self.failed {
            return Err(CodecError::Parquet(ParquetError::General(
                "journal file writer failed earlier; its output is incomplete".into(),
            )));
        }
        Ok(())
    }
}

/// Counts the bytes of the file as they reach the caller's writer.
struct CountingWrite<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn encode_err(row: usize, field: &'static str, reason: impl Into<String>) -> CodecError {
    CodecError::Encode {
        row,
        field,
        reason: reason.into(),
    }
}

/// Refuses rows the columns must not or cannot hold.
fn check_row(r: &Record, row: usize) -> Result<(), CodecError> {
    if r.subject.is_some() {
        return Err(encode_err(
            row,
            "subject",
            "raw subject id present; the stored form carries subject_ref only",
        ));
    }
    if r.features.is_some() {
        return Err(encode_err(
            row,
            "features",
            "raw features present; the stored form keeps them sealed or not at all",
        ));
    }
    if r.received_at.is_none() {
        return Err(encode_err(
            row,
            col::RECEIVED_AT,
            "missing; ingest sets it before a record is stored",
        ));
    }
    if let Some(c) = &r.caller {
        if c.principal.is_none() && c.service.is_none() {
            return Err(encode_err(
                row,
                "caller",
                "caller {} has no field; the caller_* columns cannot tell it from no caller",
            ));
        }
    }
    Ok(())
}

fn steps_json<'b>(
    steps: &[Step],
    row: usize,
    buf: &'b mut Vec<u8>,
    sealed: Option<&'b [u8]>,
) -> Result<&'b str, CodecError> {
    // `output: null` would be read back as an absent output (serde's Option), changing the bytes.
    if let Some(i) = steps
        .iter()
        .position(|s| matches!(s.output, Some(Value::Null)))
    {
        return Err(encode_err(
            row,
            col::STEPS,
            format!("steps[{i}].output is null, which reads back as absent"),
        ));
    }
    json_text(buf, sealed, row, col::STEPS, |b| write_steps_json(steps, b))
}

fn llm_json<'b>(
    llm: &Llm,
    row: usize,
    buf: &'b mut Vec<u8>,
    sealed: Option<&'b [u8]>,
) -> Result<&'b str, CodecError> {
    // A non-finite f64 has no JSON form (it would otherwise come back as an absent value).
    if let Some(p) = &llm.parameters {
        let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
        if !finite(p.temperature) || !finite(p.top_p) {
            return Err(encode_err(
                row,
                col::LLM,
                "llm.parameters: temperature and top_p must be finite",
            ));
        }
    }
    json_text(buf, sealed, row, col::LLM, |b| write_llm_json(llm, b))
}

fn context_json<'b>(
    context: &Map<String, Value>,
    row: usize,
    buf: &'b mut Vec<u8>,
    sealed: Option<&'b [u8]>,
) -> Result<&'b str, CodecError> {
    json_text(buf, sealed, row, col::CONTEXT, |b| {
        canonical::write_map(context, b)
    })
}

/// Canonical JSON text: `sealed` (the member's bytes in the record's canonical bytes) where
/// given, else written by `write` into `buf` (reused from row to row).
fn json_text<'b>(
    buf: &'b mut Vec<u8>,
    sealed: Option<&'b [u8]>,
    row: usize,
    field: &'static str,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), CanonicalError>,
) -> Result<&'b str, CodecError> {
    let text = match sealed {
        Some(sealed) => {
            debug_assert!(
                {
                    buf.clear();
                    write(buf).is_ok() && buf == sealed
                },
                "row {row}: {field}: the sealed bytes are not the member's canonical text"
            );
            sealed
        }
        None => {
            buf.clear();
            write(buf).map_err(|e| encode_err(row, field, e.to_string()))?;
            buf
        }
    };
    std::str::from_utf8(text).map_err(|e| encode_err(row, field, format!("canonical JSON: {e}")))
}

/// A variable-width column that reports, rather than panics on, 32-bit offset overflow.
struct ByteCol<T: ByteArrayType<Offset = i32>> {
    name: &'static str,
    builder: GenericByteBuilder<T>,
    bytes: usize,
    /// Row (batch-relative) at which the column first overflowed.
    overflow_row: Option<usize>,
}

type Utf8Col = ByteCol<Utf8Type>;
type BinaryCol = ByteCol<BinaryType>;

impl<T: ByteArrayType<Offset = i32>> ByteCol<T> {
    fn new(name: &'static str, rows: usize, bytes_per_row: usize) -> Self {
        Self {
            name,
            builder: GenericByteBuilder::with_capacity(rows, rows * bytes_per_row),
            bytes: 0,
            overflow_row: None,
        }
    }

    #[inline]
    fn push(&mut self, value: Option<&T::Native>) {
        let Some(value) = value else {
            self.builder.append_null();
            return;
        };
        let len = AsRef::<[u8]>::as_ref(value).len();
        if len > MAX_COLUMN_BYTES - self.bytes {
            self.overflow_row.get_or_insert(self.builder.len());
            self.builder.append_null();
            return;
        }
        self.bytes += len;
        self.builder.append_value(value);
    }

    fn finish(mut self, base: usize) -> Result<ArrayRef, CodecError> {
        if let Some(row) = self.overflow_row {
            return Err(encode_err(
                base + row,
                self.name,
                "more than 2 GiB in one column of one batch; lower batch_rows",
            ));
        }
        Ok(Arc::new(self.builder.finish()))
    }
}

/// `outputs`: List<Struct<label, score>> assembled from flat children.
struct OutputsCol {
    offsets: OffsetBufferBuilder<i32>,
    validity: NullBufferBuilder,
    labels: Utf8Col,
    scores: Vec<f64>,
}

impl OutputsCol {
    fn new(rows: usize) -> Self {
        Self {
            offsets: OffsetBufferBuilder::new(rows),
            validity: NullBufferBuilder::new(rows),
            labels: Utf8Col::new(col::OUTPUTS, rows * 2, 8),
            scores: Vec::with_capacity(rows * 2),
        }
    }

    fn push(&mut self, outputs: Option<&[Output]>) {
        self.validity.append(outputs.is_some());
        let outputs = outputs.unwrap_or_default();
        for o in outputs {
            self.labels.push(Some(&o.label));
            self.scores.push(o.score);
        }
        self.offsets.push_length(outputs.len());
    }

    fn finish(mut self, base: usize) -> Result<ArrayRef, CodecError> {
        let labels = self.labels.finish(base)?;
        let scores: ArrayRef = Arc::new(Float64Array::from(self.scores));
        let items = StructArray::try_new(output_struct_fields(), vec![labels, scores], None)?;
        let offsets = self.offsets.try_finish().map_err(|e| {
            encode_err(
                base,
                col::OUTPUTS,
                format!("too many outputs in one batch: {e}"),
            )
        })?;
        let list = ListArray::try_new(
            outputs_item_field(),
            offsets,
            Arc::new(items),
            self.validity.finish(),
        )?;
        Ok(Arc::new(list))
    }
}

/// Column builders in schema order, filled one row at a time (rows are read once, in order).
struct BatchBuilder {
    record_id: Utf8Col,
    kind: Utf8Col,
    schema_version: Int32Builder,
    decision_id: Utf8Col,
    outcome_id: Utf8Col,
    review_id: Utf8Col,
    tenant_id: Utf8Col,
    occurred_at: TimestampMillisecondBuilder,
    received_at: TimestampMillisecondBuilder,
    subject_ref: Utf8Col,
    caller_principal: Utf8Col,
    caller_service: Utf8Col,
    model_name: Utf8Col,
    model_version: Utf8Col,
    model_artifact_sha256: Utf8Col,
    dataset_manifest_sha256: Utf8Col,
    features_hmac: Utf8Col,
    outputs: OutputsCol,
    decision: Utf8Col,
    confidence: Float64Builder,
    threshold: Float64Builder,
    rationale: Utf8Col,
    explanation_ref: Utf8Col,
    action_type: Utf8Col,
    action_detail: Utf8Col,
    risk_tier: Utf8Col,
    outcome_label: Utf8Col,
    outcome_value: Float64Builder,
    review_reviewer: Utf8Col,
    review_verdict: Utf8Col,
    review_override_label: Utf8Col,
    review_notes: Utf8Col,
    sampling_rate: Float64Builder,
    steps: Utf8Col,
    llm: Utf8Col,
    context: Utf8Col,
    block_id: Utf8Col,
    leaf_index: Int64Builder,
    salt: FixedSizeBinaryBuilder,
    leaf_hash: FixedSizeBinaryBuilder,
    features_sealed: BinaryCol,
    /// Scratch for the canonical JSON of `steps`, `llm` and `context`, reused row after row.
    json_bufs: [Vec<u8>; 3],
}

fn utc_builder(rows: usize) -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC")
}

impl BatchBuilder {
    fn with_capacity(n: usize) -> Self {
        let s = |name, bytes_per_row| Utf8Col::new(name, n, bytes_per_row);
        Self {
            record_id: s(col::RECORD_ID, 26),
            kind: s(col::KIND, 8),
            schema_version: Int32Builder::with_capacity(n),
            decision_id: s(col::DECISION_ID, 26),
            outcome_id: s(col::OUTCOME_ID, 0),
            review_id: s(col::REVIEW_ID, 0),
            tenant_id: s(col::TENANT_ID, 12),
            occurred_at: utc_builder(n),
            received_at: utc_builder(n),
            subject_ref: s(col::SUBJECT_REF, 64),
            caller_principal: s(col::CALLER_PRINCIPAL, 48),
            caller_service: s(col::CALLER_SERVICE, 12),
            model_name: s(col::MODEL_NAME, 16),
            model_version: s(col::MODEL_VERSION, 8),
            model_artifact_sha256: s(col::MODEL_ARTIFACT_SHA256, 64),
            dataset_manifest_sha256: s(col::DATASET_MANIFEST_SHA256, 64),
            features_hmac: s(col::FEATURES_HMAC, 64),
            outputs: OutputsCol::new(n),
            decision: s(col::DECISION, 8),
            confidence: Float64Builder::with_capacity(n),
            threshold: Float64Builder::with_capacity(n),
            rationale: s(col::RATIONALE, 48),
            explanation_ref: s(col::EXPLANATION_REF, 0),
            action_type: s(col::ACTION_TYPE, 12),
            action_detail: s(col::ACTION_DETAIL, 12),
            risk_tier: s(col::RISK_TIER, 6),
            outcome_label: s(col::OUTCOME_LABEL, 0),
            outcome_value: Float64Builder::with_capacity(n),
            review_reviewer: s(col::REVIEW_REVIEWER, 0),
            review_verdict: s(col::REVIEW_VERDICT, 0),
            review_override_label: s(col::REVIEW_OVERRIDE_LABEL, 0),
            review_notes: s(col::REVIEW_NOTES, 0),
            sampling_rate: Float64Builder::with_capacity(n),
            steps: s(col::STEPS, 0),
            llm: s(col::LLM, 0),
            context: s(col::CONTEXT, 32),
            block_id: s(col::BLOCK_ID, 26),
            leaf_index: Int64Builder::with_capacity(n),
            salt: FixedSizeBinaryBuilder::with_capacity(n, 16),
            leaf_hash: FixedSizeBinaryBuilder::with_capacity(n, 32),
            features_sealed: BinaryCol::new(col::FEATURES_SEALED, n, 0),
            json_bufs: Default::default(),
        }
    }

    /// Appends one row; on error the builder is left unusable (callers drop it).
    /// `canonical`, where given, is the record's canonical bytes (see [`encode_sealed_file`]).
    fn push(
        &mut self,
        row: &JournalRow,
        canonical: Option<&CanonicalRecord>,
        index: usize,
    ) -> Result<(), CodecError> {
        let r = &row.record;
        check_row(r, index)?;
        // Everything fallible first, so that no column is left a row short.
        let mut bufs = std::mem::take(&mut self.json_bufs);
        let [steps_buf, llm_buf, context_buf] = &mut bufs;
        let steps = r
            .steps
            .as_deref()
            .map(|s| {
                let sealed = canonical.and_then(|c| c.member(&c.steps));
                steps_json(s, index, steps_buf, sealed)
            })
            .transpose()?;
        let llm = r
            .llm
            .as_ref()
            .map(|l| llm_json(l, index, llm_buf, canonical.and_then(|c| c.member(&c.llm))))
            .transpose()?;
        let context = r
            .context
            .as_ref()
            .map(|m| {
                let sealed = canonical.and_then(|c| c.member(&c.context));
                context_json(m, index, context_buf, sealed)
            })
            .transpose()?;
        let schema_version = i32::try_from(r.schema_version)
            .map_err(|_| encode_err(index, col::SCHEMA_VERSION, "does not fit the Int32 column"))?;
        self.push_identity(r, schema_version);
        self.push_model_and_decision(r);
        self.push_outcome_and_review(r);
        self.push_json(steps, llm, context);
        self.json_bufs = bufs;
        self.push_integrity(row)
    }

    fn push_identity(&mut self, r: &Record, schema_version: i32) {
        self.record_id.push(Some(r.record_id()));
        self.kind.push(Some(r.kind.as_str()));
        self.schema_version.append_value(schema_version);
        self.decision_id.push(Some(&r.decision_id));
        self.outcome_id.push(r.outcome_id.as_deref());
        self.review_id.push(r.review_id.as_deref());
        self.tenant_id.push(Some(&r.tenant_id));
        self.occurred_at.append_value(r.occurred_at.millis());
        self.received_at
            .append_option(r.received_at.map(|t| t.millis()));
        self.subject_ref.push(r.subject_ref.as_deref());
        let caller = r.caller.as_ref();
        self.caller_principal
            .push(caller.and_then(|c| c.principal.as_deref()));
        self.caller_service
            .push(caller.and_then(|c| c.service.as_deref()));
    }

    fn push_model_and_decision(&mut self, r: &Record) {
        let model = r.model.as_ref();
        self.model_name.push(model.map(|m| m.name.as_str()));
        self.model_version.push(model.map(|m| m.version.as_str()));
        self.model_artifact_sha256
            .push(model.map(|m| m.artifact_sha256.as_str()));
        self.dataset_manifest_sha256
            .push(r.dataset_manifest_sha256.as_deref());
        self.features_hmac.push(r.features_hmac.as_deref());
        self.outputs.push(r.outputs.as_deref());
        self.decision.push(r.decision.as_deref());
        self.confidence.append_option(r.confidence);
        self.threshold.append_option(r.threshold);
        self.rationale.push(r.rationale.as_deref());
        self.explanation_ref.push(r.explanation_ref.as_deref());
        let action = r.action.as_ref();
        self.action_type.push(action.map(|a| a.kind.as_str()));
        self.action_detail
            .push(action.and_then(|a| a.detail.as_deref()));
        self.risk_tier.push(r.risk_tier.map(|t| t.as_str()));
    }

    fn push_outcome_and_review(&mut self, r: &Record) {
        let outcome = r.outcome.as_ref();
        self.outcome_label.push(outcome.map(|o| o.label.as_str()));
        self.outcome_value
            .append_option(outcome.and_then(|o| o.value));
        let review = r.review.as_ref();
        self.review_reviewer
            .push(review.map(|v| v.reviewer.as_str()));
        self.review_verdict.push(review.map(|v| v.verdict.as_str()));
        self.review_override_label
            .push(review.and_then(|v| v.override_label.as_deref()));
        self.review_notes
            .push(review.and_then(|v| v.notes.as_deref()));
        self.sampling_rate.append_option(r.sampling_rate);
    }

    fn push_json(&mut self, steps: Option<&str>, llm: Option<&str>, context: Option<&str>) {
        self.steps.push(steps);
        self.llm.push(llm);
        self.context.push(context);
    }

    fn push_integrity(&mut self, row: &JournalRow) -> Result<(), CodecError> {
        self.block_id.push(Some(&row.block_id));
        self.leaf_index.append_value(i64::from(row.leaf_index));
        self.salt.append_value(row.salt)?;
        self.leaf_hash.append_value(row.leaf_hash)?;
        self.features_sealed.push(row.features_sealed.as_deref());
        Ok(())
    }

    /// Assembles the batch; `base` turns batch-relative rows in errors into caller indexes.
    fn finish(mut self, base: usize) -> Result<RecordBatch, CodecError> {
        let columns: Vec<ArrayRef> = vec![
            self.record_id.finish(base)?,
            self.kind.finish(base)?,
            Arc::new(self.schema_version.finish()),
            self.decision_id.finish(base)?,
            self.outcome_id.finish(base)?,
            self.review_id.finish(base)?,
            self.tenant_id.finish(base)?,
            Arc::new(self.occurred_at.finish()),
            Arc::new(self.received_at.finish()),
            self.subject_ref.finish(base)?,
            self.caller_principal.finish(base)?,
            self.caller_service.finish(base)?,
            self.model_name.finish(base)?,
            self.model_version.finish(base)?,
            self.model_artifact_sha256.finish(base)?,
            self.dataset_manifest_sha256.finish(base)?,
            self.features_hmac.finish(base)?,
            self.outputs.finish(base)?,
            self.decision.finish(base)?,
            Arc::new(self.confidence.finish()),
            Arc::new(self.threshold.finish()),
            self.rationale.finish(base)?,
            self.explanation_ref.finish(base)?,
            self.action_type.finish(base)?,
            self.action_detail.finish(base)?,
            self.risk_tier.finish(base)?,
            self.outcome_label.finish(base)?,
            Arc::new(self.outcome_value.finish()),
            self.review_reviewer.finish(base)?,
            self.review_verdict.finish(base)?,
            self.review_override_label.finish(base)?,
            self.review_notes.finish(base)?,
            Arc::new(self.sampling_rate.finish()),
            self.steps.finish(base)?,
            self.llm.finish(base)?,
            self.context.finish(base)?,
            self.block_id.finish(base)?,
            Arc::new(self.leaf_index.finish()),
            Arc::new(self.salt.finish()),
            Arc::new(self.leaf_hash.finish()),
            self.features_sealed.finish(base)?,
        ];
        Ok(RecordBatch::try_new(arrow_schema(), columns)?)
    }
}
