//! Codec tests: property-based round trip, writer properties as written, and refusals.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::{ArrowWriter, ARROW_SCHEMA_META_KEY};
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::{KeyValue, PageIndexPolicy};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Number, Value};

use super::*;
use crate::canonical::MAX_SAFE_INTEGER;
use crate::record::strategies::{record, text};
use crate::record::{Action, ActionType, Caller, Kind, ModelRef, Output, RiskTier, Step, Subject};
use crate::timestamp::Timestamp;

// ---------------------------------------------------------------------------------------------
// Strategies

fn journal_row() -> impl Strategy<Value = JournalRow> {
    (
        record(),
        text(),
        any::<u32>(),
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
        option::of(vec(any::<u8>(), 0..40)),
    )
        .prop_map(
            |(record, block_id, leaf_index, salt, leaf_hash, features_sealed)| JournalRow {
                record,
                block_id,
                leaf_index,
                salt,
                leaf_hash,
                features_sealed,
            },
        )
}

fn small_config() -> impl Strategy<Value = WriterConfig> {
    (1usize..6, 1usize..5, 1usize..4).prop_map(|(rg, batch, page)| WriterConfig {
        max_row_group_size: rg,
        batch_rows: batch,
        data_page_row_limit: page,
        ..WriterConfig::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Typed doubles are stored bit for bit (-0.0 included), beyond what canonical bytes can see.
fn typed_double_bits(r: &Record) -> Vec<Option<u64>> {
    let mut bits: Vec<Option<u64>> = [
        r.confidence,
        r.threshold,
        r.sampling_rate,
        r.outcome.as_ref().and_then(|o| o.value),
    ]
    .iter()
    .map(|v| v.map(f64::to_bits))
    .collect();
    bits.extend(r.outputs.iter().flatten().map(|o| Some(o.score.to_bits())));
    bits
}

fn assert_same_row(original: &JournalRow, back: &JournalRow) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        back.record.canonical_bytes().unwrap(),
        original.record.canonical_bytes().unwrap()
    );
    prop_assert_eq!(
        typed_double_bits(&back.record),
        typed_double_bits(&original.record)
    );
    prop_assert_eq!(&back.block_id, &original.block_id);
    prop_assert_eq!(back.leaf_index, original.leaf_index);
    prop_assert_eq!(back.salt, original.salt);
    prop_assert_eq!(back.leaf_hash, original.leaf_hash);
    prop_assert_eq!(&back.features_sealed, &original.features_sealed);
    Ok(())
}

fn hex_string(rng: &mut StdRng, bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rng.gen()).collect();
    hex::encode(raw)
}

/// A realistic ~800-byte decision (the DESIGN §3 loan example, varied).
fn sample_row(i: usize, rng: &mut StdRng) -> JournalRow {
    let score: f64 = rng.gen_range(0.0..1.0);
    let base = 1_773_570_225_123i64;
    let rationales = [
        "Strong credit score, stable income, DTI 0.35",
        "Thin credit file; manual review advised",
        "High DTI ratio above policy limit",
        "Returning customer with clean history",
    ];
    let mut context = Map::new();
    context.insert("correlation_id".into(), Value::String(hex_string(rng, 16)));
    context.insert("channel".into(), json!(["web", "mobile", "branch"][i % 3]));
    let record = Record {
        schema_version: 1,
        kind: Kind::Decision,
        decision_id: format!("01JD6Z6M4Y{i:016X}"),
        outcome_id: None,
        review_id: None,
        tenant_id: ["bank_456", "bank_789", "insure_12"][i % 3].into(),
        occurred_at: Timestamp::from_millis(base + i as i64 * 7).unwrap(),
        received_at: Some(Timestamp::from_millis(base + i as i64 * 7 + 1_500).unwrap()),
        caller: Some(Caller {
            principal: Some("arn:aws:iam::123456789012:role/loan-api".into()),
            service: Some("loan-api".into()),
        }),
        subject: None,
        subject_ref: Some(hex_string(rng, 32)),
        model: Some(ModelRef {
            name: "credit-risk".into(),
            version: ["3.2.0", "3.3.0"][i % 2].into(),
            artifact_sha256: "9f2c".repeat(16),
        }),
        dataset_manifest_sha256: Some("abc1".repeat(16)),
        features: None,
        features_hmac: Some(hex_string(rng, 32)),
        outputs: Some(vec![
            Output {
                label: "approve".into(),
                score,
            },
            Output {
                label: "deny".into(),
                score: 1.0 - score,
            },
        ]),
        decision: Some(if score >= 0.75 { "approve" } else { "deny" }.into()),
        confidence: Some(score),
        threshold: Some(0.75),
        rationale: Some(rationales[i % rationales.len()].into()),
        explanation_ref: None,
        action: Some(Action {
            kind: ActionType::Automated,
            detail: Some("offer issued".into()),
        }),
        risk_tier: Some([RiskTier::Low, RiskTier::Medium, RiskTier::High][i % 3]),
        steps: None,
        llm: None,
        outcome: None,
        review: None,
        sampling_rate: Some(1.0),
        context: Some(context),
    };
    JournalRow {
        record,
        block_id: format!("01JD6Z6M4YBLOCK{:011}", i / 500),
        leaf_index: (i % 500) as u32,
        salt: rng.gen(),
        leaf_hash: rng.gen(),
        features_sealed: None,
    }
}

fn sample_rows(n: usize) -> Vec<JournalRow> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..n).map(|i| sample_row(i, &mut rng)).collect()
}

/// Writes `batch` as a Parquet file with the given key-value metadata, bypassing the codec.
fn raw_file(batch: &RecordBatch, metadata: Vec<KeyValue>) -> Bytes {
    let props = writer_properties(&WriterConfig::default(), &[])
        .unwrap()
        .into_builder()
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
    Bytes::from(buf)
}

/// `batch` with column `name` replaced (or removed when `array` is None).
fn with_column(batch: &RecordBatch, name: &str, array: Option<ArrayRef>) -> RecordBatch {
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.name() != name {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        } else if let Some(array) = &array {
            fields.push(Field::new(name, array.data_type().clone(), true));
            columns.push(array.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn version_kv(value: &str) -> KeyValue {
    KeyValue::new(FORMAT_VERSION_KEY.to_string(), value.to_string())
}

// ---------------------------------------------------------------------------------------------
// Round trip

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn round_trip_keeps_canonical_bytes_and_positions(
        rows in vec(journal_row(), 0..16),
        cfg in small_config(),
    ) {
        let file = encode_file(&rows, &cfg, &[]).unwrap();
        prop_assert_eq!(file.positions.len(), rows.len());
        prop_assert_eq!(file.row_groups, rows.len().div_ceil(cfg.max_row_group_size));

        let decoded = decode_file(file.bytes.clone()).unwrap();
        prop_assert_eq!(decoded.len(), rows.len());
        for (original, back) in rows.iter().zip(&decoded) {
            assert_same_row(original, back)?;
        }

        // Positions are consecutive in write order, and name the row read from that row group.
        let groups: Vec<Vec<JournalRow>> = (0..file.row_groups)
            .map(|rg| decode_row_group(file.bytes.clone(), rg).unwrap())
            .collect();
        prop_assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), rows.len());
        prop_assert!(groups.iter().all(|g| !g.is_empty() && g.len() <= cfg.max_row_group_size));
        let mut expected = RowPosition::default();
        for (original, position) in rows.iter().zip(&file.positions) {
            if expected.row_in_group == groups[expected.row_group].len() {
                expected = RowPosition { row_group: expected.row_group + 1, row_in_group: 0 };
            }
            prop_assert_eq!(*position, expected);
            assert_same_row(original, &groups[position.row_group][position.row_in_group])?;
            expected.row_in_group += 1;
        }
    }
}

#[test]
fn unsafe_looking_integers_from_doubles_round_trip() {
    // Integral doubles ≥ 2^53 are printed as integers by canonical JSON; they must come back.
    let mut row = sample_rows(1).remove(0);
    let mut context = Map::new();
    for (i, f) in [1e19, -9e18, 2f64.powi(60), 9_007_199_254_740_994.0, 1e21]
        .into_iter()
        .enumerate()
    {
        context.insert(format!("k{i}"), Value::Number(Number::from_f64(f).unwrap()));
    }
    row.record.context = Some(context.clone());
    row.record.steps = Some(vec![Step {
        name: "score".into(),
        version: None,
        input_sha256: None,
        output: Some(Value::Object(context)),
    }]);
    let file = encode_file(std::slice::from_ref(&row), &WriterConfig::default(), &[]).unwrap();
    let back = decode_file(file.bytes).unwrap().remove(0);
    assert_eq!(
        back.record.canonical_bytes().unwrap(),
        row.record.canonical_bytes().unwrap()
    );
    assert_eq!(back.record, row.record);
}

#[test]
fn streaming_writer_matches_rows_and_reports_layout() {
    let rows = sample_rows(23);
    let cfg = WriterConfig {
        max_row_group_size: 5,
        batch_rows: 4,
        ..WriterConfig::default()
    };
    let mut buf = Vec::new();
    let mut writer = JournalFileWriter::new(&mut buf, &cfg, &[]).unwrap();
    for part in rows.chunks(9) {
        writer.write_rows(part).unwrap();
    }
    assert_eq!(writer.rows_written(), 23);
    let written = writer.finish().unwrap();
    assert_eq!(written.rows, 23);
    assert_eq!(written.row_groups, 5);
    assert_eq!(written.row_group_rows, vec![5, 5, 5, 5, 3]);
    assert_eq!(written.bytes, buf.len() as u64);
    assert_eq!(written.positions().count(), 23);

    let decoded = decode_file(Bytes::from(buf)).unwrap();
    assert_eq!(decoded, rows);
}

// ---------------------------------------------------------------------------------------------
// Writer properties as written

#[test]
fn long_lived_files_compress_every_column_but_random_bytes() {
    let rows = sample_rows(30);
    let cfg = WriterConfig {
        compress_low_cardinality: true,
        ..WriterConfig::default()
    };
    // The streaming writer knows nothing of the rows to come: empty columns are compressed too.
    let mut buf = Vec::new();
    let mut writer = JournalFileWriter::new(&mut buf, &cfg, &[]).unwrap();
    writer.write_rows(&rows).unwrap();
    writer.finish().unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(buf)).unwrap();
    let mut zstd = 0;
    for chunk in reader.metadata().row_group(0).columns() {
        let path = chunk.column_path().string();
        if UNCOMPRESSED_COLUMNS.contains(&path.as_str()) {
            assert_eq!(chunk.compression(), Compression::UNCOMPRESSED, "{path}");
        } else {
            assert!(
                matches!(chunk.compression(), Compression::ZSTD(_)),
                "{path}"
            );
            zstd += 1;
        }
    }
    assert_eq!(
        zstd,
        reader.metadata().row_group(0).num_columns() - UNCOMPRESSED_COLUMNS.len()
    );
}

#[test]
fn digests_and_ids_are_compressed_fast_at_any_level() {
    use parquet::basic::ZstdLevel;
    use parquet::schema::types::ColumnPath;
    let zstd = |level| Compression::ZSTD(ZstdLevel::try_new(level).unwrap());
    for level in [1, 6, 19] {
        let cfg = WriterConfig {
            zstd_level: level,
            compress_low_cardinality: true,
            ..WriterConfig::default()
        };
        let props = encode::properties(&cfg, &[], &[col::OUTCOME_ID]).unwrap();
        let codec = |name: &str| props.compression(&ColumnPath::from(name));
        for name in FAST_ZSTD_COLUMNS.iter().filter(|n| **n != col::OUTCOME_ID) {
            assert_eq!(
                codec(name),
                zstd(FAST_ZSTD_LEVEL),
                "{name} at level {level}"
            );
        }
        // An empty column stays uncompressed, fast or not.
        assert_eq!(codec(col::OUTCOME_ID), Compression::UNCOMPRESSED);
        for name in [col::CONTEXT, col::SUBJECT_REF, col::RATIONALE, col::KIND] {
            assert_eq!(codec(name), zstd(level), "{name} at level {level}");
        }
        for name in UNCOMPRESSED_COLUMNS {
            assert_eq!(codec(name), Compression::UNCOMPRESSED, "{name}");
        }
    }
}

#[test]
fn writer_properties_are_applied_to_the_file() {
    let rows = sample_rows(100);
    let cfg = WriterConfig {
        max_row_group_size: 40,
        data_page_row_limit: 16,
        ..WriterConfig::default()
    };
    let extra = [("dj.tenant".to_string(), "bank_456".to_string())];
    let file = encode_file(&rows, &cfg, &extra).unwrap();
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new_with_options(file.bytes.clone(), options).unwrap();
    let meta = reader.metadata().clone();
    assert_eq!(meta.num_row_groups(), 3);
    // Columns no row fills: written without a codec.
    let batch = rows_to_batch(&rows).unwrap();
    let all_null: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, a)| !f.data_type().is_nested() && a.null_count() == a.len())
        .map(|(f, _)| f.name().clone())
        .collect();
    assert!(!all_null.is_empty(), "the sample leaves some columns empty");

    let fm = meta.file_metadata();
    assert!(fm
        .created_by()
        .unwrap()
        .starts_with("decision-journal version "));
    let kv = fm.key_value_metadata().unwrap();
    let value = |key: &str| {
        kv.iter()
            .find(|e| e.key == key)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(value(FORMAT_VERSION_KEY).as_deref(), Some(FORMAT_VERSION));
    assert_eq!(value("dj.tenant").as_deref(), Some("bank_456"));
    assert!(value(ARROW_SCHEMA_META_KEY).is_some());

    let mut first_row = 0;
    for (rg_index, rg) in meta.row_groups().iter().enumerate() {
        let page_index = meta.page_index_for_row_group(rg_index);
        for (c, chunk) in rg.columns().iter().enumerate() {
            let path = chunk.column_path().string();
            if UNCOMPRESSED_COLUMNS.contains(&path.as_str())
                || LOW_CARDINALITY_COLUMNS.contains(&path.as_str())
                || SMALL_GAIN_COLUMNS.contains(&path.as_str())
                || all_null.contains(&path)
            {
                assert_eq!(chunk.compression(), Compression::UNCOMPRESSED, "{path}");
            } else {
                assert!(
                    matches!(chunk.compression(), Compression::ZSTD(_)),
                    "{path}"
                );
            }
            // Values no query bounds carry no statistics, hence no column index.
            let bounded = !NO_STATISTICS_COLUMNS.contains(&path.as_str());
            assert_eq!(chunk.column_index_offset().is_some(), bounded, "{path}");
            assert_eq!(chunk.statistics().is_some(), bounded, "{path}");
            assert!(chunk.offset_index_offset().is_some(), "{path}");
            assert!(page_index.offset_index(c).is_some(), "{path}");
            let bloom = BLOOM_FILTER_COLUMNS.contains(&path.as_str());
            assert_eq!(chunk.bloom_filter_offset().is_some(), bloom, "{path}");
            let dictionary = chunk.dictionary_page_offset().is_some();
            // An ingest file's one `received_at` per block is a dictionary of one value.
            if path == col::RECEIVED_AT {
                assert!(dictionary, "{path}");
            } else if !dictionary_columns().any(|d| d == path) {
                assert!(!dictionary, "{path} must not be dictionary encoded");
                assert!(
                    !chunk.encodings().any(|e| e == Encoding::RLE_DICTIONARY),
                    "{path}"
                );
            }
        }
        // Column indexes of typed columns hold page statistics.
        assert!(page_index.column_index(0).is_some());

        let group = &rows[first_row..first_row + rg.num_rows() as usize];
        for name in BLOOM_FILTER_COLUMNS {
            let c = rg
                .columns()
                .iter()
                .position(|chunk| chunk.column_path().string() == *name)
                .unwrap();
            let filter = reader
                .get_row_group_column_bloom_filter(rg_index, c)
                .unwrap()
                .unwrap();
            for row in group {
                let value = match *name {
                    col::RECORD_ID => row.record.record_id(),
                    _ => row.record.subject_ref.as_deref().unwrap(),
                };
                assert!(filter.check(value), "{name} bloom filter misses {value}");
            }
        }
        first_row += rg.num_rows() as usize;
    }

    let column_chunk = |name: &str| {
        meta.row_group(0)
            .columns()
            .iter()
            .find(|c| c.column_path().string() == name)
            .unwrap()
            .clone()
    };
    for name in [col::KIND, col::TENANT_ID, col::THRESHOLD, col::MODEL_NAME] {
        let chunk = column_chunk(name);
        assert!(chunk.dictionary_page_offset().is_some(), "{name}");
        assert!(
            chunk.encodings().any(|e| e == Encoding::RLE_DICTIONARY),
            "{name}"
        );
    }
    for name in [col::LEAF_HASH, col::RECORD_ID, col::SALT, col::CONFIDENCE] {
        assert!(
            column_chunk(name).dictionary_page_offset().is_none(),
            "{name}"
        );
    }
}

#[test]
fn writer_properties_reflect_the_config() {
    let cfg = WriterConfig {
        max_row_group_size: 1_000,
        zstd_level: 9,
        bloom_fpp: 0.001,
        bloom_max_ndv: Some(500),
        data_page_row_limit: 100,
        batch_rows: 10,
        compress_low_cardinality: false,
    };
    let props = writer_properties(&cfg, &[]).unwrap();
    let path = |name: &str| parquet::schema::types::ColumnPath::from(name);
    assert_eq!(props.max_row_group_row_count(), Some(1_000));
    assert_eq!(props.data_page_row_count_limit(), 100);
    assert!(props.write_batch_size() <= 100);
    match props.compression(&path(col::CONTEXT)) {
        Compression::ZSTD(level) => assert_eq!(level.compression_level(), 9),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        props.compression(&path(col::FEATURES_SEALED)),
        Compression::UNCOMPRESSED
    );
    let bloom = props
        .bloom_filter_properties(&path(col::SUBJECT_REF))
        .unwrap();
    assert_eq!((bloom.fpp(), bloom.ndv()), (0.001, 500));
    assert!(props
        .bloom_filter_properties(&path(col::DECISION_ID))
        .is_none());
    assert!(props.dictionary_enabled(&path(col::RISK_TIER)));
    assert!(!props.dictionary_enabled(&path(col::REVIEW_NOTES)));
    for name in [
        col::RISK_TIER,
        col::ACTION_DETAIL,
        col::RECEIVED_AT,
        col::LEAF_INDEX,
    ] {
        assert_eq!(
            props.compression(&path(name)),
            Compression::UNCOMPRESSED,
            "{name}"
        );
    }
    assert!(props.dictionary_enabled(&path(col::RECEIVED_AT)));
    assert_eq!(
        props.encoding(&path(col::LEAF_INDEX)),
        Some(Encoding::DELTA_BINARY_PACKED)
    );
    let long_lived = WriterConfig {
        compress_low_cardinality: true,
        ..cfg
    };
    let props = writer_properties(&long_lived, &[]).unwrap();
    for name in [
        col::RISK_TIER,
        col::ACTION_DETAIL,
        col::RECEIVED_AT,
        col::LEAF_INDEX,
    ] {
        assert!(
            matches!(props.compression(&path(name)), Compression::ZSTD(_)),
            "{name}"
        );
    }
    assert!(!props.dictionary_enabled(&path(col::RECEIVED_AT)));
    assert_eq!(
        props.encoding(&path(col::LEAF_INDEX)),
        Some(Encoding::PLAIN)
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals

fn encode_error(rows: &[JournalRow]) -> (usize, &'static str) {
    match encode_file(rows, &WriterConfig::default(), &[]) {
        Err(CodecError::Encode { row, field, .. }) => (row, field),
        other => panic!("expected an encode error, got {other:?}"),
    }
}

#[test]
fn refuses_rows_not_in_stored_form() {
    let mut rows = sample_rows(3);
    rows[2].record.subject = Some(Subject {
        id: "user_123".into(),
    });
    assert_eq!(encode_error(&rows), (2, "subject"));

    let mut rows = sample_rows(3);
    rows[1].record.features = Some(Map::new());
    assert_eq!(encode_error(&rows), (1, "features"));

    let mut rows = sample_rows(3);
    rows[0].record.received_at = None;
    assert_eq!(encode_error(&rows), (0, col::RECEIVED_AT));
}

#[test]
fn refuses_what_the_columns_cannot_represent() {
    let mut rows = sample_rows(2);
    rows[1].record.caller = Some(Caller {
        principal: None,
        service: None,
    });
    assert_eq!(encode_error(&rows), (1, "caller"));

    let mut rows = sample_rows(2);
    rows[0].record.steps = Some(vec![Step {
        name: "rule".into(),
        version: None,
        input_sha256: None,
        output: Some(Value::Null),
    }]);
    assert_eq!(encode_error(&rows), (0, col::STEPS));

    let mut rows = sample_rows(2);
    let mut context = Map::new();
    context.insert("big".into(), json!(MAX_SAFE_INTEGER + 1));
    rows[1].record.context = Some(context);
    assert_eq!(encode_error(&rows), (1, col::CONTEXT));
}

#[test]
fn streaming_writer_names_the_row_and_refuses_to_finish_after_an_error() {
    let mut rows = sample_rows(10);
    rows[7].record.received_at = None;
    let cfg = WriterConfig {
        batch_rows: 3,
        ..WriterConfig::default()
    };
    let mut writer = JournalFileWriter::new(Vec::new(), &cfg, &[]).unwrap();
    match writer.write_rows(&rows) {
        Err(CodecError::Encode { row: 7, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(writer.write_rows(&rows[..1]).is_err());
    assert!(writer.finish().is_err());
}

#[test]
fn refuses_bad_config() {
    let base = WriterConfig::default();
    let bad = [
        WriterConfig {
            max_row_group_size: 0,
            ..base.clone()
        },
        WriterConfig {
            data_page_row_limit: 0,
            ..base.clone()
        },
        WriterConfig {
            batch_rows: 0,
            ..base.clone()
        },
        WriterConfig {
            zstd_level: 0,
            ..base.clone()
        },
        WriterConfig {
            zstd_level: 23,
            ..base.clone()
        },
        WriterConfig {
            bloom_fpp: 0.0,
            ..base.clone()
        },
        WriterConfig {
            bloom_fpp: 1.0,
            ..base.clone()
        },
        WriterConfig {
            bloom_fpp: f64::NAN,
            ..base.clone()
        },
        WriterConfig {
            bloom_max_ndv: Some(0),
            ..base.clone()
        },
    ];
    for cfg in bad {
        assert!(
            matches!(writer_properties(&cfg, &[]), Err(CodecError::Config(_))),
            "{cfg:?}"
        );
    }
    for key in [FORMAT_VERSION_KEY, ARROW_SCHEMA_META_KEY] {
        let metadata = [(key.to_string(), "x".to_string())];
        assert!(matches!(
            writer_properties(&base, &metadata),
            Err(CodecError::Config(_))
        ));
    }
}

#[test]
fn decode_refuses_a_wrong_schema() {
    let batch = rows_to_batch(&sample_rows(2)).unwrap();
    let first = RowPosition::default();

    let retyped = with_column(
        &batch,
        col::LEAF_INDEX,
        Some(Arc::new(Int32Array::from(vec![0, 1]))),
    );
    match decode_batch(&retyped, first) {
        Err(CodecError::Schema { column, .. }) => assert_eq!(column, col::LEAF_INDEX),
        other => panic!("{other:?}"),
    }

    let missing = with_column(&batch, col::SALT, None);
    match decode_batch(&missing, first) {
        Err(CodecError::Schema { column, .. }) => assert_eq!(column, col::SALT),
        other => panic!("{other:?}"),
    }

    // A file whose schema is wrong is refused before any row is read.
    let file = raw_file(&retyped, vec![version_kv(FORMAT_VERSION)]);
    assert!(matches!(decode_file(file), Err(CodecError::Schema { .. })));
}

#[test]
fn decode_refuses_unknown_or_missing_format_version() {
    let batch = rows_to_batch(&sample_rows(2)).unwrap();
    for metadata in [vec![version_kv("2")], vec![]] {
        let file = raw_file(&batch, metadata);
        match decode_file(file.clone()) {
            Err(CodecError::Schema { column, .. }) => assert_eq!(column, FORMAT_VERSION_KEY),
            other => panic!("{other:?}"),
        }
        assert!(decode_row_group(file, 0).is_err());
    }
    // The same batch with the right version decodes.
    let file = raw_file(&batch, vec![version_kv(FORMAT_VERSION)]);
    assert_eq!(decode_file(file).unwrap().len(), 2);
}

#[test]
fn decode_refuses_an_out_of_range_row_group() {
    let file = encode_file(&sample_rows(3), &WriterConfig::default(), &[]).unwrap();
    assert_eq!(file.row_groups, 1);
    match decode_row_group(file.bytes, 1) {
        Err(CodecError::NoSuchRowGroup {
            row_group: 1,
            count: 1,
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn decode_names_the_row_and_column_of_bad_values() {
    let batch = rows_to_batch(&sample_rows(3)).unwrap();
    let first = RowPosition {
        row_group: 4,
        row_in_group: 10,
    };
    let expect = |batch: RecordBatch, want: &str, row: usize| match decode_batch(&batch, first) {
        Err(CodecError::Decode {
            position, column, ..
        }) => {
            assert_eq!(column, want);
            assert_eq!(
                position,
                RowPosition {
                    row_group: 4,
                    row_in_group: 10 + row
                }
            );
        }
        other => panic!("{other:?}"),
    };

    let kinds = StringArray::from(vec!["decision", "decision", "verdict"]);
    expect(
        with_column(&batch, col::KIND, Some(Arc::new(kinds))),
        col::KIND,
        2,
    );

    let names = StringArray::from(vec![Some("credit-risk"), None, Some("credit-risk")]);
    expect(
        with_column(&batch, col::MODEL_NAME, Some(Arc::new(names))),
        col::MODEL_VERSION,
        1,
    );

    let ids = StringArray::from(vec!["x", "01JD6Z6M4Y0000000000000001", "y"]);
    expect(
        with_column(&batch, col::RECORD_ID, Some(Arc::new(ids))),
        col::RECORD_ID,
        0,
    );

    let steps = StringArray::from(vec![None, Some("{not json"), None]);
    expect(
        with_column(&batch, col::STEPS, Some(Arc::new(steps))),
        col::STEPS,
        1,
    );
}

#[test]
fn positions_from_metadata_lists_row_groups() {
    let cfg = WriterConfig {
        max_row_group_size: 4,
        ..WriterConfig::default()
    };
    let file = encode_file(&sample_rows(10), &cfg, &[]).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file.bytes).unwrap();
    assert_eq!(
        positions_from_metadata(reader.metadata()),
        vec![(0, 4), (1, 4), (2, 2)]
    );
}

#[test]
fn empty_input_gives_a_readable_empty_file() {
    let file = encode_file(&[], &WriterConfig::default(), &[]).unwrap();
    assert_eq!((file.row_groups, file.positions.len()), (0, 0));
    assert!(decode_file(file.bytes).unwrap().is_empty());
    assert_eq!(rows_to_batch(&[]).unwrap().num_rows(), 0);
}

#[test]
fn schema_types_match_the_documented_table() {
    let schema = arrow_schema();
    assert_eq!(schema.fields().len(), 41);
    assert_eq!(
        schema.field_with_name(col::SALT).unwrap().data_type(),
        &DataType::FixedSizeBinary(16)
    );
}

// ---------------------------------------------------------------------------------------------
// Throughput (a measurement, not a test: run in release with --ignored --nocapture)

/// Best rows/s of three runs of `f` over `rows` rows.
fn rows_per_second(rows: usize, mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            rows as f64 / start.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

/// Encode/decode rates on realistic decisions; `DJ_ZSTD_LEVEL` overrides the default level.
#[test]
#[ignore = "measurement; run with --release -- --ignored --nocapture"]
fn encode_throughput() {
    let rows = sample_rows(200_000);
    let n = rows.len();
    let json_bytes: usize = rows
        .iter()
        .map(|r| r.record.canonical_bytes().unwrap().len())
        .sum();
    let cfg = WriterConfig {
        zstd_level: std::env::var("DJ_ZSTD_LEVEL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(WriterConfig::default().zstd_level),
        ..WriterConfig::default()
    };
    let file = encode_file(&rows, &cfg, &[]).unwrap();
    let encode = rows_per_second(n, || {
        encode_file(&rows, &cfg, &[]).unwrap();
    });
    let arrow = rows_per_second(n, || {
        for chunk in rows.chunks(cfg.batch_rows) {
            rows_to_batch(chunk).unwrap();
        }
    });
    let batches: Vec<RecordBatch> = rows
        .chunks(cfg.batch_rows)
        .map(|c| rows_to_batch(c).unwrap())
        .collect();
    let parquet = rows_per_second(n, || {
        let props = writer_properties(&cfg, &[]).unwrap();
        let mut writer = ArrowWriter::try_new(Vec::new(), arrow_schema(), Some(props)).unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        writer.close().unwrap();
    });
    let decode = rows_per_second(n, || {
        decode_file(file.bytes.clone()).unwrap();
    });
    println!(
        "{n} rows, {:.0} canonical bytes/row, {:.1} file bytes/row: encode_file {encode:.0} rows/s \
         (rows_to_batch {arrow:.0} rows/s, Parquet write of ready batches {parquet:.0} rows/s); \
         decode_file {decode:.0} rows/s",
        json_bytes as f64 / n as f64,
        file.bytes.len() as f64 / n as f64,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Ingest's columns sliced from the sealed bytes make the file the writer makes alone.
    #[test]
    fn sealed_rows_encode_to_the_same_file(rows in vec(journal_row(), 1..6)) {
        let canonical: Result<Vec<_>, _> =
            rows.iter().map(|r| r.record.canonical_record()).collect();
        let canonical = canonical.unwrap();
        let cfg = WriterConfig::default();
        let sealed = encode_sealed_file(&rows, &canonical, &cfg, &[]);
        match (encode_file(&rows, &cfg, &[]), sealed) {
            (Ok(plain), Ok(sealed)) => prop_assert_eq!(plain.bytes, sealed.bytes),
            (plain, sealed) => prop_assert_eq!(
                plain.map(|f| f.bytes).map_err(|e| e.to_string()),
                sealed.map(|f| f.bytes).map_err(|e| e.to_string())
            ),
        }
    }
}

#[test]
fn sealed_bytes_must_come_one_per_row() {
    let rows = sample_rows(2);
    let canonical = vec![rows[0].record.canonical_record().unwrap()];
    let err = encode_sealed_file(&rows, &canonical, &WriterConfig::default(), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "writer configuration: 2 rows with 1 canonical forms"
    );
}
