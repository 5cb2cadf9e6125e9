//! Every record of a tenant in a time range, block by block in chain order: the source of an
//! auditor's report for a period. Blocks are chosen by the time span their header records, so
//! only files that can hold rows of the range are read.

use super::api::{Answer, RecordsPage, TimeRange};
use super::lookup::{prove, Found, Link, Lookup, RowReadError, RowReader, RESTORE_DAYS};
use super::service::{page_size, Done, Failure, ReplayService};
use super::views::record_view;
use crate::access::Role;
use crate::checkpoint::CheckpointStore;
use crate::ports::{JournalIndex, RangedObjectStore, ReadError, SubjectKeyStore};
use crate::record::Kind;

/// Where a range page ended: chain seq and leaf index of the last record returned.
fn parse_cursor(text: &str) -> Result<(u64, u32), Failure> {
    let bad = || Failure::bad_request(format!("cursor: {text:?} is not a cursor this API gave"));
    let (seq, leaf) = text.split_once(':').ok_or_else(bad)?;
    Ok((
        seq.parse().map_err(|_| bad())?,
        leaf.parse().map_err(|_| bad())?,
    ))
}

pub(super) async fn query_range<S, I, K, C>(
    svc: &ReplayService<S, I, K, C>,
    role: Role,
    tenant: &str,
    range: &TimeRange,
    limit: Option<usize>,
    cursor: Option<&str>,
) -> Result<Done, Failure>
where
    S: RangedObjectStore,
    C: CheckpointStore,
    I: JournalIndex,
    K: SubjectKeyStore,
{
    let size = page_size(limit)?;
    let after = cursor.map(parse_cursor).transpose()?;
    let (from, to) = range.bounds();
    let headers = svc.index().list_blocks(tenant).await?;
    let coverage = svc.coverage(tenant).await;
    let covered = coverage.as_ref().and_then(|c| c.covered_seq);
    let pii = svc.policy.pii_for(tenant);
    let mut reader = RowReader::new(svc.store());
    let mut records = Vec::new();
    let mut read = Vec::new();
    let mut next_cursor = None;
    // Chain position of the last record on the page: where the next page starts.
    let mut last: Option<(u64, u32)> = None;
    'blocks: for (i, h) in headers.iter().enumerate() {
        if h.last_occurred_at < from || h.first_occurred_at >= to {
            continue;
        }
        if after.is_some_and(|(seq, _)| h.seq < seq) {
            continue;
        }
        // A compacted block's rows are in the file its manifest entry names.
        let mut file_key = h.file_key.clone();
        let mut counted = reader.row_group_count(&file_key).await;
        if let Err(RowReadError::Read(ReadError::NotFound { .. })) = counted {
            let entry = svc.index().get_manifest(tenant, &h.file_key).await?;
            // Deleted by retention (with a tombstone): the range has no rows of it to show.
            if entry.as_ref().is_some_and(|e| e.tombstone.is_some()) {
                continue;
            }
            if let Some(into) = entry.and_then(|e| e.compacted_into) {
                counted = reader.row_group_count(&into).await;
                if let Err(RowReadError::Read(ReadError::NotFound { .. })) = counted {
                    let moved = svc.index().get_manifest(tenant, &into).await?;
                    if moved.is_some_and(|e| e.tombstone.is_some()) {
                        continue;
                    }
                }
                file_key = into;
            }
        }
        let groups = match counted {
            Ok(n) => n,
            Err(RowReadError::Read(ReadError::Archived { storage_class, .. })) => {
                // Ask for the file back now, so that retrying the page can succeed.
                crate::retention::restores::request_restore_tracked(
                    svc.store(),
                    &file_key,
                    RESTORE_DAYS,
                    crate::timestamp::Timestamp::now(),
                )
                .await?;
                return Err(Failure::unavailable(format!(
                    "block {} ({file_key}) is archived in {storage_class}; restore requested; \
                     retry in a few hours",
                    h.seq
                )));
            }
            Err(e) => {
                return Err(Failure::unavailable(format!(
                    "block {} ({}): {e}",
                    h.seq, h.file_key
                )))
            }
        };
        let mut rows = Vec::new();
        for g in 0..groups {
            let group = reader
                .row_group(&file_key, g)
                .await
                .map_err(|e| Failure::unavailable(format!("{file_key} row group {g}: {e}")))?;
            for (n, row) in group.into_iter().enumerate() {
                if row.block_id == h.block_id {
                    rows.push((g as u32, n as u32, row));
                }
            }
        }
        rows.sort_by_key(|(_, _, r)| r.leaf_index);
        let leaves: Vec<(u32, [u8; 32])> = rows
            .iter()
            .map(|(_, _, r)| (r.leaf_index, r.leaf_hash))
            .collect();
        let next = headers.get(i + 1).filter(|n| n.seq == h.seq + 1);
        for (g, n, row) in &rows {
            let at = row.record.occurred_at;
            if at < from || at >= to || row.record.kind == Kind::Access {
                continue;
            }
            if after.is_some_and(|(seq, leaf)| h.seq == seq && row.leaf_index <= leaf) {
                continue;
            }
            if records.len() == size {
                next_cursor = last.map(|(seq, leaf)| format!("{seq}:{leaf}"));
                break 'blocks;
            }
            let found = Lookup::Found(Found {
                record: row.record.clone(),
                features_sealed: None,
                file_key: file_key.clone(),
                row_group: *g,
                row: *n,
                proof: prove(
                    row,
                    &leaves,
                    h,
                    Link::Chain {
                        stored: Some(h),
                        next,
                        because: None,
                    },
                ),
            });
            read.push(row.record.record_id().to_string());
            records.push(record_view(&found, role, &pii, covered));
            last = Some((h.seq, row.leaf_index));
        }
    }
    Ok(Done::new(
        Answer::Records(RecordsPage {
            records,
            next_cursor,
            checkpoint: coverage,
        }),
        read,
    ))
}
