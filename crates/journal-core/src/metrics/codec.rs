//! The metrics Parquet file: a typed Arrow schema, explicit writer properties, and the codec
//! between it and [`ModelDayMetrics`] rows.
//!
//! Counts are Int64 (Athena has no unsigned types), ratios Float64 (null when the denominator
//! is 0), the day a Date32, label counts `Map<Utf8, Int64>` with the Parquet spec's
//! `key_value` / `key` / `value` names, which DuckDB, pyarrow and Athena read as maps. The hive
//! key's `tenant=` and `date=` do not clash with the `tenant_id` and `day` columns (Athena
//! refuses partition keys that repeat a column).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    Float64Builder, Int64Builder, MapBuilder, MapFieldNames, StringBuilder,
};
use arrow_array::{
    Array, ArrayRef, Date32Array, Float64Array, Int64Array, MapArray, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};

use super::dates::{date_of_day, parse_date};
use super::{MetricsError, ModelDayMetrics};
use crate::columnar::created_by;

/// Key-value metadata key naming the metrics file format version.
pub const METRICS_FORMAT_KEY: &str = "dj.metrics_format_version";
const METRICS_FORMAT: &str = "1";

/// Files are a few KiB: a high level costs nothing.
const ZSTD_LEVEL: i32 = 9;
const ROW_GROUP_ROWS: usize = 65_536;

mod col {
    pub const TENANT_ID: &str = "tenant_id";
    pub const DAY: &str = "day";
    pub const MODEL_NAME: &str = "model_name";
    pub const MODEL_VERSION: &str = "model_version";
    pub const DECISIONS: &str = "decisions";
    pub const DECISIONS_BY_LABEL: &str = "decisions_by_label";
    pub const CONFIDENCE_COUNT: &str = "confidence_count";
    pub const CONFIDENCE_MEAN: &str = "confidence_mean";
    pub const CONFIDENCE_P50: &str = "confidence_p50";
    pub const CONFIDENCE_P90: &str = "confidence_p90";
    pub const CONFIDENCE_P99: &str = "confidence_p99";
    pub const REVIEWS: &str = "reviews";
    pub const OVERRIDES: &str = "overrides";
    pub const REVIEW_SHARE: &str = "review_share";
    pub const OVERRIDE_SHARE: &str = "override_share";
    pub const OUTCOMES: &str = "outcomes";
    pub const OUTCOMES_BY_LABEL: &str = "outcomes_by_label";
    pub const OUTCOME_RATE: &str = "outcome_rate";
    pub const OUTCOME_RATE_BY_LABEL: &str = "outcome_rate_by_label";
}

fn map_names() -> MapFieldNames {
    MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

fn value_field(value: DataType) -> Field {
    Field::new("value", value, false)
}

fn map_of(value: DataType) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        value_field(value),
    ]);
    DataType::Map(
        Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
        false,
    )
}

/// The Arrow schema of a metrics file (the table in `docs/metrics.md`).
pub fn metrics_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let int = |name: &str| Field::new(name, DataType::Int64, false);
            let float = |name: &str| Field::new(name, DataType::Float64, true);
            let text = |name: &str| Field::new(name, DataType::Utf8, false);
            Arc::new(Schema::new(vec![
                text(col::TENANT_ID),
                Field::new(col::DAY, DataType::Date32, false),
                text(col::MODEL_NAME),
                text(col::MODEL_VERSION),
                int(col::DECISIONS),
                Field::new(col::DECISIONS_BY_LABEL, map_of(DataType::Int64), false),
                int(col::CONFIDENCE_COUNT),
                float(col::CONFIDENCE_MEAN),
                float(col::CONFIDENCE_P50),
                float(col::CONFIDENCE_P90),
                float(col::CONFIDENCE_P99),
                int(col::REVIEWS),
                int(col::OVERRIDES),
                float(col::REVIEW_SHARE),
                float(col::OVERRIDE_SHARE),
                int(col::OUTCOMES),
                Field::new(col::OUTCOMES_BY_LABEL, map_of(DataType::Int64), false),
                float(col::OUTCOME_RATE),
                Field::new(col::OUTCOME_RATE_BY_LABEL, map_of(DataType::Float64), false),
            ]))
        })
        .clone()
}

fn writer_properties() -> Result<WriterProperties, String> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| e.to_string())?;
    Ok(WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0) // v1 pages: every reader, Athena included
        .set_created_by(created_by())
        .set_key_value_metadata(Some(vec![KeyValue::new(
            METRICS_FORMAT_KEY.to_string(),
            METRICS_FORMAT.to_string(),
        )]))
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(true) // tenant, model names and labels repeat
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(None)
        .build())
}

fn count(key: &str, field: &str, n: u64) -> Result<i64, MetricsError> {
    i64::try_from(n).map_err(|_| MetricsError::Encode {
        key: key.to_string(),
        reason: format!("{field} = {n} does not fit Int64"),
    })
}

fn counts_map(
    key: &str,
    field: &str,
    rows: &[ModelDayMetrics],
    get: impl Fn(&ModelDayMetrics) -> &BTreeMap<String, u64>,
) -> Result<ArrayRef, MetricsError> {
    let mut b = MapBuilder::new(Some(map_names()), StringBuilder::new(), Int64Builder::new())
        .with_values_field(value_field(DataType::Int64));
    for r in rows {
        for (label, n) in get(r) {
            b.keys().append_value(label);
            b.values().append_value(count(key, field, *n)?);
        }
        b.append(true).map_err(|e| encode_err(key, e))?;
    }
    Ok(Arc::new(b.finish()))
}

fn rates_map(rows: &[ModelDayMetrics], key: &str) -> Result<ArrayRef, MetricsError> {
    let mut b = MapBuilder::new(
        Some(map_names()),
        StringBuilder::new(),
        Float64Builder::new(),
    )
    .with_values_field(value_field(DataType::Float64));
    for r in rows {
        for (label, rate) in &r.outcome_rate_by_label {
            b.keys().append_value(label);
            b.values().append_value(*rate);
        }
        b.append(true).map_err(|e| encode_err(key, e))?;
    }
    Ok(Arc::new(b.finish()))
}

fn encode_err(key: &str, e: impl ToString) -> MetricsError {
    MetricsError::Encode {
        key: key.to_string(),
        reason: e.to_string(),
    }
}

/// The rows as one metrics Parquet file (`key` names the file in errors).
pub fn encode_metrics(key: &str, rows: &[ModelDayMetrics]) -> Result<Bytes, MetricsError> {
    let ints = |field: &str, get: fn(&ModelDayMetrics) -> u64| -> Result<ArrayRef, MetricsError> {
        let values = rows
            .iter()
            .map(|r| count(key, field, get(r)))
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(Arc::new(Int64Array::from(values)))
    };
    let floats = |get: fn(&ModelDayMetrics) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from(rows.iter().map(get).collect::<Vec<_>>()))
    };
    let texts = |get: fn(&ModelDayMetrics) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(get).collect::<Vec<_>>()))
    };
    let days = rows
        .iter()
        .map(|r| parse_date("date", &r.date))
        .collect::<Result<Vec<i32>, _>>()?;
    let columns: Vec<ArrayRef> = vec![
        texts(|r| &r.tenant_id),
        Arc::new(Date32Array::from(days)),
        texts(|r| &r.model_name),
        texts(|r| &r.model_version),
        ints(col::DECISIONS, |r| r.decisions)?,
        counts_map(key, col::DECISIONS_BY_LABEL, rows, |r| {
            &r.decisions_by_label
        })?,
        ints(col::CONFIDENCE_COUNT, |r| r.confidence_count)?,
        floats(|r| r.confidence_mean),
        floats(|r| r.confidence_p50),
        floats(|r| r.confidence_p90),
        floats(|r| r.confidence_p99),
        ints(col::REVIEWS, |r| r.reviews)?,
        ints(col::OVERRIDES, |r| r.overrides)?,
        floats(|r| r.review_share),
        floats(|r| r.override_share),
        ints(col::OUTCOMES, |r| r.outcomes)?,
        counts_map(key, col::OUTCOMES_BY_LABEL, rows, |r| &r.outcomes_by_label)?,
        floats(|r| r.outcome_rate),
        rates_map(rows, key)?,
    ];
    let batch = RecordBatch::try_new(metrics_schema(), columns).map_err(|e| encode_err(key, e))?;
    let props = writer_properties().map_err(|e| encode_err(key, e))?;
    let mut writer =
        ArrowWriter::try_new(Vec::with_capacity(16 * 1024), metrics_schema(), Some(props))
            .map_err(|e| encode_err(key, e))?;
    writer.write(&batch).map_err(|e| encode_err(key, e))?;
    let buf = writer.into_inner().map_err(|e| encode_err(key, e))?;
    Ok(Bytes::from(buf))
}

/// The rows of a metrics Parquet file, in file order (`key` names the file in errors).
pub fn decode_metrics(key: &str, bytes: Bytes) -> Result<Vec<ModelDayMetrics>, MetricsError> {
    let err = |reason: String| MetricsError::Decode {
        key: key.to_string(),
        reason,
    };
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| err(e.to_string()))?;
    let version = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == METRICS_FORMAT_KEY))
        .and_then(|e| e.value.clone());
    if version.as_deref() != Some(METRICS_FORMAT) {
        return Err(err(format!(
            "{METRICS_FORMAT_KEY} is {version:?}, this reader knows {METRICS_FORMAT:?}: not a \
             metrics file of this version"
        )));
    }
    let reader = builder.build().map_err(|e| err(e.to_string()))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(e.to_string()))?;
        decode_batch(&batch, &mut rows).map_err(err)?;
    }
    Ok(rows)
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("column {name} is missing"))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("column {name} has an unexpected type"))
}

fn uint(values: &Int64Array, name: &str, i: usize) -> Result<u64, String> {
    u64::try_from(values.value(i)).map_err(|_| format!("row {i}: {name} is negative"))
}

fn float(values: &Float64Array, i: usize) -> Option<f64> {
    values.is_valid(i).then(|| values.value(i))
}

fn map_entries<'a, V: 'static>(
    map: &'a MapArray,
    name: &str,
    i: usize,
) -> Result<(&'a StringArray, &'a V, std::ops::Range<usize>), String> {
    let keys = map
        .keys()
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| format!("column {name}: keys are not strings"))?;
    let values = map
        .values()
        .as_any()
        .downcast_ref::<V>()
        .ok_or_else(|| format!("column {name}: values have an unexpected type"))?;
    let offsets = map.value_offsets();
    let (start, end) = (offsets[i], offsets[i + 1]);
    let range = usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0);
    Ok((keys, values, range))
}

fn counts_of(map: &MapArray, name: &str, i: usize) -> Result<BTreeMap<String, u64>, String> {
    let (keys, values, range) = map_entries::<Int64Array>(map, name, i)?;
    range
        .map(|j| Ok((keys.value(j).to_string(), uint(values, name, j)?)))
        .collect()
}

fn rates_of(map: &MapArray, name: &str, i: usize) -> Result<BTreeMap<String, f64>, String> {
    let (keys, values, range) = map_entries::<Float64Array>(map, name, i)?;
    Ok(range
        .map(|j| (keys.value(j).to_string(), values.value(j)))
        .collect())
}

fn decode_batch(batch: &RecordBatch, out: &mut Vec<ModelDayMetrics>) -> Result<(), String> {
    let text = |name| column::<StringArray>(batch, name);
    let int = |name| column::<Int64Array>(batch, name);
    let real = |name| column::<Float64Array>(batch, name);
    let map = |name| column::<MapArray>(batch, name);
    let tenant = text(col::TENANT_ID)?;
    let day = column::<Date32Array>(batch, col::DAY)?;
    let model_name = text(col::MODEL_NAME)?;
    let model_version = text(col::MODEL_VERSION)?;
    let decisions = int(col::DECISIONS)?;
    let decisions_by_label = map(col::DECISIONS_BY_LABEL)?;
    let confidence_count = int(col::CONFIDENCE_COUNT)?;
    let mean = real(col::CONFIDENCE_MEAN)?;
    let p50 = real(col::CONFIDENCE_P50)?;
    let p90 = real(col::CONFIDENCE_P90)?;
    let p99 = real(col::CONFIDENCE_P99)?;
    let reviews = int(col::REVIEWS)?;
    let overrides = int(col::OVERRIDES)?;
    let review_share = real(col::REVIEW_SHARE)?;
    let override_share = real(col::OVERRIDE_SHARE)?;
    let outcomes = int(col::OUTCOMES)?;
    let outcomes_by_label = map(col::OUTCOMES_BY_LABEL)?;
    let outcome_rate = real(col::OUTCOME_RATE)?;
    let outcome_rate_by_label = map(col::OUTCOME_RATE_BY_LABEL)?;
    out.reserve(batch.num_rows());
    for i in 0..batch.num_rows() {
        let date = date_of_day(day.value(i))
            .ok_or_else(|| format!("row {i}: day {} is out of range", day.value(i)))?;
        out.push(ModelDayMetrics {
            tenant_id: tenant.value(i).to_string(),
            date,
            model_name: model_name.value(i).to_string(),
            model_version: model_version.value(i).to_string(),
            decisions: uint(decisions, col::DECISIONS, i)?,
            decisions_by_label: counts_of(decisions_by_label, col::DECISIONS_BY_LABEL, i)?,
            confidence_count: uint(confidence_count, col::CONFIDENCE_COUNT, i)?,
            confidence_mean: float(mean, i),
            confidence_p50: float(p50, i),
            confidence_p90: float(p90, i),
            confidence_p99: float(p99, i),
            reviews: uint(reviews, col::REVIEWS, i)?,
            overrides: uint(overrides, col::OVERRIDES, i)?,
            review_share: float(review_share, i),
            override_share: float(override_share, i),
            outcomes: uint(outcomes, col::OUTCOMES, i)?,
            outcomes_by_label: counts_of(outcomes_by_label, col::OUTCOMES_BY_LABEL, i)?,
            outcome_rate: float(outcome_rate, i),
            outcome_rate_by_label: rates_of(outcome_rate_by_label, col::OUTCOME_RATE_BY_LABEL, i)?,
        });
    }
    Ok(())
}
