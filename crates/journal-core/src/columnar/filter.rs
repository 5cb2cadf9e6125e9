//! A journal file copied without some of its rows (an erasure's rewrite): Arrow batch by Arrow
//! batch, the kept rows as they are (leaf hashes, salts, block ids and leaf indexes unchanged),
//! so the kept rows still prove their blocks.

use std::collections::HashSet;

use arrow_array::BooleanArray;
use bytes::Bytes;

use super::{CodecError, IntegrityRow, JournalFileWriter, LazyRowGroups, WriterConfig};

/// The copy, and the integrity columns of every row left out, in file order.
#[derive(Debug)]
pub struct FilteredFile {
    pub bytes: Vec<u8>,
    pub kept: u64,
    pub removed: Vec<IntegrityRow>,
}

/// Copies the journal file `bytes` into a new file written with `cfg`, leaving out the rows
/// whose record id is in `drop`.
pub fn copy_without(
    bytes: Bytes,
    drop: &HashSet<&str>,
    cfg: &WriterConfig,
) -> Result<FilteredFile, CodecError> {
    let mut writer = JournalFileWriter::new(Vec::new(), cfg, &[])?;
    let mut removed = Vec::new();
    for group in LazyRowGroups::new(bytes)? {
        let group = group?;
        let rows = group.integrity()?;
        let keep: Vec<bool> = rows
            .iter()
            .map(|r| !drop.contains(r.record_id.as_str()))
            .collect();
        let mut first = 0;
        for batch in group.batches() {
            let n = batch.num_rows();
            let mask = BooleanArray::from(keep[first..first + n].to_vec());
            first += n;
            let kept = arrow_select::filter::filter_record_batch(batch, &mask)?;
            if kept.num_rows() > 0 {
                writer.write_batch(&kept)?;
            }
        }
        removed.extend(
            rows.into_iter()
                .zip(&keep)
                .filter(|(_, k)| !**k)
                .map(|(r, _)| r),
        );
    }
    let kept = writer.rows_written();
    let (bytes, _) = writer.finish_into_inner()?;
    Ok(FilteredFile {
        bytes,
        kept,
        removed,
    })
}
