//! Reading row groups with one ZSTD decompression context per thread.
//!
//! parquet's page reader makes a codec for every column chunk it opens, and its ZSTD codec makes a
//! compression context and a decompression context. Each context runs `cpuid` three times, and
//! `cpuid` traps to the hypervisor: 8–10 µs each on the benchmark VM, so about 50 µs per chunk. A
//! lookup opens some forty chunks and a compaction every chunk of every input, so most of a
//! lookup's CPU went there. Here the page reader is given the chunk's metadata marked
//! uncompressed, and each page it returns is decompressed with a context kept per thread.
//! Chunks with any other codec are read by parquet's reader unchanged.

use std::cell::RefCell;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReader, RowGroups};
use parquet::arrow::{parquet_to_arrow_field_levels, ProjectionMask};
use parquet::basic::Compression;
use parquet::column::page::{Page, PageIterator, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use parquet::file::reader::ChunkReader;
use parquet::file::serialized_reader::SerializedPageReader;

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// The batches of row group `row_group`, `batch_rows` rows at a time.
pub(super) fn row_group_batches<T: ChunkReader + Clone + 'static>(
    reader: &T,
    meta: &ArrowReaderMetadata,
    row_group: usize,
    batch_rows: usize,
) -> Result<impl Iterator<Item = std::result::Result<RecordBatch, arrow_schema::ArrowError>>> {
    let levels = parquet_to_arrow_field_levels(
        meta.parquet_schema(),
        ProjectionMask::all(),
        Some(meta.schema().fields()),
    )?;
    let row_groups = SharedContextRowGroups {
        reader: Arc::new(reader.clone()),
        metadata: Arc::clone(meta.metadata()),
        row_groups: vec![row_group],
    };
    ParquetRecordBatchReader::try_new_with_row_groups(&levels, &row_groups, batch_rows, None)
}

struct SharedContextRowGroups<T> {
    reader: Arc<T>,
    metadata: Arc<ParquetMetaData>,
    row_groups: Vec<usize>,
}

impl<T: ChunkReader + 'static> RowGroups for SharedContextRowGroups<T> {
    fn num_rows(&self) -> usize {
        self.row_groups().map(|rg| rg.num_rows() as usize).sum()
    }

    fn column_chunks(&self, column: usize) -> Result<Box<dyn PageIterator>> {
        Ok(Box::new(ColumnChunks {
            reader: Arc::clone(&self.reader),
            metadata: Arc::clone(&self.metadata),
            column,
            row_groups: self.row_groups.clone().into_iter(),
        }))
    }

    fn row_groups(&self) -> Box<dyn Iterator<Item = &RowGroupMetaData> + '_> {
        Box::new(self.row_groups.iter().map(|&i| self.metadata.row_group(i)))
    }

    fn metadata(&self) -> &ParquetMetaData {
        &self.metadata
    }
}

/// The chunks of one column, one per selected row group.
struct ColumnChunks<T> {
    reader: Arc<T>,
    metadata: Arc<ParquetMetaData>,
    column: usize,
    row_groups: std::vec::IntoIter<usize>,
}

impl<T: ChunkReader + 'static> ColumnChunks<T> {
    fn open(&self, row_group: usize) -> Result<Box<dyn PageReader>> {
        let rg = self.metadata.row_group(row_group);
        let chunk = rg.column(self.column);
        let rows = usize::try_from(rg.num_rows())
            .map_err(|_| ParquetError::General("negative row count in a row group".into()))?;
        let reader = Arc::clone(&self.reader);
        // No page locations: our readers never load the page index, so pages are found through
        // their headers, as parquet's own reader finds them when it has none.
        if matches!(chunk.compression(), Compression::ZSTD(_)) {
            let plain = chunk
                .clone()
                .into_builder()
                .set_compression(Compression::UNCOMPRESSED)
                .build()?;
            let inner = SerializedPageReader::new(reader, &plain, rows, None)?;
            Ok(Box::new(ZstdPages { inner }))
        } else {
            Ok(Box::new(SerializedPageReader::new(
                reader, chunk, rows, None,
            )?))
        }
    }
}

impl<T: ChunkReader + 'static> Iterator for ColumnChunks<T> {
    type Item = Result<Box<dyn PageReader>>;

    fn next(&mut self) -> Option<Self::Item> {
        let row_group = self.row_groups.next()?;
        Some(self.open(row_group))
    }
}

impl<T: ChunkReader + 'static> PageIterator for ColumnChunks<T> {}

/// A ZSTD chunk read as if uncompressed, each page then decompressed here.
struct ZstdPages<R: ChunkReader> {
    inner: SerializedPageReader<R>,
}

impl<R: ChunkReader> Iterator for ZstdPages<R> {
    type Item = Result<Page>;

    fn next(&mut self) -> Option<Self::Item> {
        self.get_next_page().transpose()
    }
}

impl<R: ChunkReader> PageReader for ZstdPages<R> {
    fn get_next_page(&mut self) -> Result<Option<Page>> {
        self.inner.get_next_page()?.map(decompressed).transpose()
    }

    fn peek_next_page(&mut self) -> Result<Option<PageMetadata>> {
        self.inner.peek_next_page()
    }

    fn skip_next_page(&mut self) -> Result<()> {
        self.inner.skip_next_page()
    }

    fn supports_deferred_dictionary(&self) -> bool {
        self.inner.supports_deferred_dictionary()
    }

    fn take_deferred_dictionary(&mut self) -> Result<Option<Page>> {
        self.inner
            .take_deferred_dictionary()?
            .map(decompressed)
            .transpose()
    }

    fn at_record_boundary(&mut self) -> Result<bool> {
        self.inner.at_record_boundary()
    }
}

/// The page with its compressed part decompressed (a v2 page keeps its levels uncompressed).
fn decompressed(mut page: Page) -> Result<Page> {
    match &mut page {
        Page::DataPage { buf, .. } | Page::DictionaryPage { buf, .. } => {
            *buf = decompress_after(buf, 0)?;
        }
        Page::DataPageV2 {
            buf,
            def_levels_byte_len,
            rep_levels_byte_len,
            is_compressed,
            ..
        } => {
            if *is_compressed {
                let levels = *def_levels_byte_len as usize + *rep_levels_byte_len as usize;
                *buf = decompress_after(buf, levels)?;
                *is_compressed = false;
            }
        }
    }
    Ok(page)
}

/// `buf[..keep]` as it is, followed by `buf[keep..]` decompressed.
fn decompress_after(buf: &[u8], keep: usize) -> Result<Bytes> {
    if keep > buf.len() {
        return Err(ParquetError::General(format!(
            "page levels ({keep} bytes) longer than the page ({} bytes)",
            buf.len()
        )));
    }
    let (levels, compressed) = buf.split_at(keep);
    // An empty compressed part is a page with no non-null values (as parquet reads it).
    if compressed.is_empty() {
        return Ok(Bytes::copy_from_slice(levels));
    }
    let size = zstd::zstd_safe::get_frame_content_size(compressed)
        .map_err(|_| ParquetError::General("ZSTD page: unreadable frame header".into()))?
        .ok_or_else(|| {
            ParquetError::General("ZSTD page: the frame does not record its size".into())
        })?;
    // A page's size is an i32 in its header; a larger claim is a corrupt frame.
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= i32::MAX as usize)
        .ok_or_else(|| ParquetError::General(format!("ZSTD page claims {size} bytes")))?;
    let mut out = Vec::with_capacity(keep + size);
    out.extend_from_slice(levels);
    let mut cursor = Cursor::new(&mut out);
    cursor.set_position(keep as u64);
    let written = DECOMPRESSOR.with(|slot| -> Result<usize> {
        let mut slot = slot.borrow_mut();
        let decompressor = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        Ok(decompressor.decompress_to_buffer(compressed, &mut cursor)?)
    })?;
    if written != size {
        return Err(ParquetError::General(format!(
            "ZSTD page decompressed to {written} bytes, its frame says {size}"
        )));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::{
        ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    };
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{WriterProperties, WriterVersion};

    use super::row_group_batches;

    fn batch(rows: usize) -> RecordBatch {
        let ints: Int64Array = (0..rows as i64)
            .map(|i| (i % 7 != 0).then_some(i * 31))
            .collect();
        let labels: StringArray = (0..rows)
            .map(|i| (i % 5 != 0).then(|| ["approve", "decline", "refer"][i % 3]))
            .collect();
        let text: StringArray = (0..rows)
            .map(|i| Some(format!("req-{:012x} {}", i * 7919, "x".repeat(i % 40))))
            .collect();
        let blobs: BinaryArray = (0..rows)
            .map(|i| (i % 3 != 0).then(|| vec![(i % 251) as u8; i % 50]))
            .collect::<Vec<_>>()
            .iter()
            .map(|b| b.as_deref())
            .collect();
        let mut lists = ListBuilder::new(StringBuilder::new());
        for i in 0..rows {
            if i % 11 == 0 {
                lists.append_null();
            } else {
                for j in 0..i % 4 {
                    lists.values().append_value(format!("step-{j}"));
                }
                lists.append(true);
            }
        }
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("ints", Arc::new(ints)),
            ("labels", Arc::new(labels)),
            ("text", Arc::new(text)),
            ("blobs", Arc::new(blobs)),
            ("lists", Arc::new(lists.finish())),
        ];
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn file(props: WriterProperties, rows: usize) -> Bytes {
        let batch = batch(rows);
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        Bytes::from(out)
    }

    /// Every row group read here equals the same row group read by parquet's own reader.
    fn assert_same_as_parquet(bytes: Bytes) -> usize {
        let meta = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).unwrap();
        let groups = meta.metadata().num_row_groups();
        let mut rows = 0;
        for rg in 0..groups {
            let ours: Vec<RecordBatch> = row_group_batches(&bytes, &meta, rg, 100)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let theirs: Vec<RecordBatch> =
                ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), meta.clone())
                    .with_row_groups(vec![rg])
                    .with_batch_size(100)
                    .build()
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
            assert_eq!(ours, theirs, "row group {rg}");
            rows += ours.iter().map(RecordBatch::num_rows).sum::<usize>();
        }
        rows
    }

    fn props(version: WriterVersion, compression: Compression) -> WriterProperties {
        WriterProperties::builder()
            .set_writer_version(version)
            .set_compression(compression)
            .set_max_row_group_row_count(Some(700))
            .set_data_page_row_count_limit(64)
            .set_write_batch_size(64)
            .build()
    }

    #[test]
    fn zstd_pages_read_the_same_as_parquets_reader_v1_and_v2() {
        let zstd = Compression::ZSTD(ZstdLevel::try_new(3).unwrap());
        for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
            let bytes = file(props(version, zstd), 2_000);
            assert_eq!(assert_same_as_parquet(bytes), 2_000, "{version:?}");
        }
    }

    #[test]
    fn uncompressed_and_mixed_chunks_read_the_same() {
        let bytes = file(
            props(WriterVersion::PARQUET_1_0, Compression::UNCOMPRESSED),
            900,
        );
        assert_eq!(assert_same_as_parquet(bytes), 900);
        let mixed = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
            .set_column_compression("labels".into(), Compression::UNCOMPRESSED)
            .set_column_compression("blobs".into(), Compression::UNCOMPRESSED)
            .build();
        assert_eq!(assert_same_as_parquet(file(mixed, 900)), 900);
    }

    #[test]
    fn a_corrupt_zstd_frame_is_an_error_not_a_panic() {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
            .set_dictionary_enabled(false)
            .build();
        let good = file(props, 500);
        let meta = ArrowReaderMetadata::load(&good, ArrowReaderOptions::new()).unwrap();
        let (start, len) = meta.metadata().row_group(0).column(2).byte_range();
        let chunk = start as usize..(start + len) as usize;
        // The first ZSTD frame of `text`, found by its magic number, gets a bad header.
        let magic = [0x28, 0xb5, 0x2f, 0xfd];
        let at = chunk.start
            + good[chunk]
                .windows(4)
                .position(|w| w == magic)
                .expect("a ZSTD frame in the chunk");
        let mut bad = good.to_vec();
        bad[at] ^= 0xff;
        let bad = Bytes::from(bad);
        let read: Result<Vec<RecordBatch>, _> =
            row_group_batches(&bad, &meta, 0, 100).unwrap().collect();
        let err = read.expect_err("a frame without its magic number must not decode");
        assert!(err.to_string().contains("ZSTD"), "{err}");
    }
}
