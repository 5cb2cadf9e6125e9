//! Reading rows from a file held remotely, with ranged reads: the footer from the file's end,
//! then only the byte range of the row group a lookup needs — never the whole file.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::FOOTER_SIZE;

use super::decode::{check_loaded, read_row_group_lazy, LazyRowGroup};
use super::CodecError;

/// Bytes read from a file's end in the first GET: enough for the footer of every journal file
/// up to tens of row groups, so one GET usually suffices.
pub const FOOTER_PROBE_BYTES: u64 = 64 * 1024;

/// Where the Thrift footer metadata sits in a file of `total_size` bytes whose last bytes are
/// `suffix`.
pub fn metadata_range(suffix: &[u8], total_size: u64) -> Result<Range<u64>, CodecError> {
    let n = suffix.len();
    if n < FOOTER_SIZE || (total_size as usize) < FOOTER_SIZE {
        return Err(not_parquet("shorter than a Parquet footer"));
    }
    let tail: &[u8; FOOTER_SIZE] = suffix[n - FOOTER_SIZE..]
        .try_into()
        .map_err(|_| not_parquet("footer"))?;
    if &tail[4..] != b"PAR1" {
        return Err(not_parquet("no PAR1 magic at the end"));
    }
    let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let end = total_size - FOOTER_SIZE as u64;
    let start = end
        .checked_sub(len)
        .ok_or_else(|| not_parquet("footer length exceeds the file"))?;
    Ok(start..end)
}

fn not_parquet(why: &str) -> CodecError {
    CodecError::Parquet(ParquetError::General(format!("not a Parquet file: {why}")))
}

/// The file's metadata from the bytes of [`metadata_range`], checked to be a journal file.
pub fn decode_footer(metadata: &[u8]) -> Result<ArrowReaderMetadata, CodecError> {
    let meta = ParquetMetaDataReader::decode_metadata(metadata)?;
    let loaded = ArrowReaderMetadata::try_new(Arc::new(meta), ArrowReaderOptions::new())?;
    check_loaded(&loaded)?;
    Ok(loaded)
}

/// The bytes holding every column chunk of one row group.
pub fn row_group_range(meta: &ParquetMetaData, row_group: usize) -> Result<Range<u64>, CodecError> {
    let count = meta.num_row_groups();
    let rg = meta
        .row_groups()
        .get(row_group)
        .ok_or(CodecError::NoSuchRowGroup { row_group, count })?;
    let mut range: Option<Range<u64>> = None;
    for column in rg.columns() {
        let (start, len) = column.byte_range();
        let end = start + len;
        range = Some(match range {
            None => start..end,
            Some(r) => r.start.min(start)..r.end.max(end),
        });
    }
    range.ok_or_else(|| not_parquet("row group without columns"))
}

/// Pieces of a file at their offsets, read by the Parquet reader as if it were the whole file.
#[derive(Clone, Debug)]
pub struct FileParts {
    len: u64,
    parts: Arc<Vec<(u64, Bytes)>>,
}

impl FileParts {
    pub fn new(len: u64, parts: Vec<(u64, Bytes)>) -> Self {
        Self {
            len,
            parts: Arc::new(parts),
        }
    }

    fn slice(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let end = start + length as u64;
        self.parts
            .iter()
            .find(|(at, bytes)| *at <= start && end <= at + bytes.len() as u64)
            .map(|(at, bytes)| bytes.slice((start - at) as usize..(end - at) as usize))
            .ok_or_else(|| {
                ParquetError::General(format!(
                    "bytes {start}..{end} were not fetched (a lookup reads one row group)"
                ))
            })
    }
}

impl Length for FileParts {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for FileParts {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let (at, bytes) = self
            .parts
            .iter()
            .find(|(at, bytes)| *at <= start && start < at + bytes.len() as u64)
            .ok_or_else(|| ParquetError::General(format!("byte {start} was not fetched")))?;
        Ok(bytes.slice((start - at) as usize..).reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, length)
    }
}

/// Reads one row group of a file held as [`FileParts`], keeping it as Arrow batches.
pub fn decode_row_group_lazy(
    meta: &ArrowReaderMetadata,
    parts: FileParts,
    row_group: usize,
) -> Result<LazyRowGroup, CodecError> {
    let count = meta.metadata().num_row_groups();
    if row_group >= count {
        return Err(CodecError::NoSuchRowGroup { row_group, count });
    }
    read_row_group_lazy(&parts, meta, row_group)
}
