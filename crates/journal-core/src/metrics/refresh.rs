//! Recomputing one tenant-day from its journal files, and reading days back.

use std::collections::BTreeMap;

use super::accumulate::{Attribution, DayAccumulator, ATTRIBUTION_CACHE_ENTRIES};
use super::codec::{decode_metrics, encode_metrics};
use super::dates::{days_between, parse_date};
use super::{MetricsError, ModelDayMetrics};
use crate::columnar::RowGroups;
use crate::layout;
use crate::ports::{FileState, IndexEntry, JournalIndex, ManifestEntry, ObjectStore, PortError};
use crate::record::Kind;

/// Recomputes the metrics of `tenant_id` for the partition date `date` (`YYYY-MM-DD`) from
/// every live file of the day, writes them to [`layout::metrics_key`] (replacing what was
/// there) and returns the rows.
///
/// Reads one file at a time, decoded one row group at a time. Refuses with
/// [`MetricsError::Unsettled`] (writing nothing) while a merge of the day is in flight. A day
/// without live files writes nothing and returns no rows; a day whose live files hold no
/// decision, review or outcome (only access records) writes a file with no rows.
pub async fn refresh_day<S: ObjectStore, I: JournalIndex>(
    store: &S,
    index: &I,
    tenant_id: &str,
    date: &str,
) -> Result<Vec<ModelDayMetrics>, MetricsError> {
    refresh_day_with(store, index, tenant_id, date, ATTRIBUTION_CACHE_ENTRIES).await
}

/// [`refresh_day`] remembering at most `cache_entries` decision ids (tests shrink it).
#[tracing::instrument(skip(store, index, cache_entries))]
pub(crate) async fn refresh_day_with<S: ObjectStore, I: JournalIndex>(
    store: &S,
    index: &I,
    tenant_id: &str,
    date: &str,
    cache_entries: usize,
) -> Result<Vec<ModelDayMetrics>, MetricsError> {
    check_tenant(tenant_id)?;
    parse_date("date", date)?;
    let entries = index
        .list_manifest(tenant_id, date)
        .await
        .map_err(port(format!(
            "listing the manifest of tenant {tenant_id} for {date}"
        )))?;
    let files = counted_files(tenant_id, date, &entries)?;
    if files.is_empty() {
        tracing::info!(
            manifest_entries = entries.len(),
            "no live files; nothing written"
        );
        return Ok(Vec::new());
    }
    let mut acc = DayAccumulator::with_cache_entries(tenant_id, date, cache_entries);
    let mut records: u64 = 0;
    let mut index_reads: u64 = 0;
    for file in &files {
        let key = file.file_key.as_str();
        let bytes = store
            .get_object(key)
            .await
            .map_err(port(format!("reading {key}")))?
            .ok_or_else(|| MetricsError::MissingFile {
                file_key: key.to_string(),
            })?;
        let groups = RowGroups::new(bytes).map_err(|e| decode_err(key, e))?;
        for group in groups {
            for row in group.map_err(|e| decode_err(key, e))? {
                let r = &row.record;
                records += 1;
                match r.kind {
                    Kind::Decision => acc.add_decision(r),
                    Kind::Outcome | Kind::Review => {
                        let to = match acc.known(&r.decision_id) {
                            Some(to) => to,
                            None => {
                                index_reads += 1;
                                attribute(index, &mut acc, tenant_id, &r.decision_id).await?
                            }
                        };
                        acc.add_follow_up(r, to);
                    }
                    Kind::Access => {}
                }
            }
        }
    }
    let rows = acc.finish();
    let key = layout::metrics_key(tenant_id, date);
    let bytes = encode_metrics(&key, &rows)?;
    let size = bytes.len();
    store
        .put_object(&key, bytes)
        .await
        .map_err(port(format!("writing {key}")))?;
    tracing::info!(
        files = files.len(),
        records,
        index_reads,
        rows = rows.len(),
        bytes = size,
        %key,
        "metrics refreshed"
    );
    Ok(rows)
}

/// Looks the decision up in the index: a decision's pointer carries its model (for the
/// `by_model` timeline). Not found, still only claimed, or not a decision: unattributed.
async fn attribute<I: JournalIndex>(
    index: &I,
    acc: &mut DayAccumulator,
    tenant_id: &str,
    decision_id: &str,
) -> Result<Attribution, MetricsError> {
    let entry = index
        .get_pointer(tenant_id, decision_id)
        .await
        .map_err(port(format!(
            "looking up decision {decision_id} of tenant {tenant_id}"
        )))?;
    let model = match &entry {
        Some(IndexEntry::Indexed(p)) if p.kind == Kind::Decision.as_str() => {
            p.model_name.as_deref().zip(p.model_version.as_deref())
        }
        _ => None,
    };
    Ok(acc.remember(decision_id, model))
}

/// The files whose rows count, each row once, in chain order; refuses a day with a merge in
/// flight or an archived file.
fn counted_files<'a>(
    tenant_id: &str,
    date: &str,
    entries: &'a [ManifestEntry],
) -> Result<Vec<&'a ManifestEntry>, MetricsError> {
    let by_key: BTreeMap<&str, &ManifestEntry> =
        entries.iter().map(|e| (e.file_key.as_str(), e)).collect();
    let unsettled = |e: &ManifestEntry| MetricsError::Unsettled {
        tenant_id: tenant_id.to_string(),
        date: date.to_string(),
        file_key: e.file_key.clone(),
    };
    let mut files = Vec::new();
    for e in entries {
        match e.state {
            FileState::Live => files.push(e),
            // A merge's intent: its inputs are live and its output is being written.
            FileState::Pending if e.is_merged() => return Err(unsettled(e)),
            // Its rows are in its output, which counts them once it is live; while the output
            // is pending (or unknown) the rows are in neither place for sure.
            FileState::Compacted => {
                let output = e.compacted_into.as_deref().and_then(|k| by_key.get(k));
                if output.is_none_or(|o| o.state == FileState::Pending) {
                    return Err(unsettled(e));
                }
            }
            FileState::Archived => {
                return Err(MetricsError::Archived {
                    tenant_id: tenant_id.to_string(),
                    date: date.to_string(),
                    file_key: e.file_key.clone(),
                })
            }
            // Not acknowledged yet (an ingest in progress), given up, or gone.
            FileState::Pending | FileState::Chained | FileState::Abandoned | FileState::Deleted => {
            }
        }
    }
    files.sort_by(|a, b| (a.seq, &a.file_key).cmp(&(b.seq, &b.file_key)));
    Ok(files)
}

/// Reads the metrics of `tenant_id` for every date from `from` to `to` (both included, at
/// most [`super::MAX_DAYS`]): the rows, by date, and the dates that have no metrics file.
#[tracing::instrument(skip(store))]
pub async fn read_days<S: ObjectStore>(
    store: &S,
    tenant_id: &str,
    from: &str,
    to: &str,
) -> Result<(Vec<ModelDayMetrics>, Vec<String>), MetricsError> {
    check_tenant(tenant_id)?;
    let dates = days_between(from, to)?;
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for date in dates {
        let key = layout::metrics_key(tenant_id, &date);
        let Some(bytes) = store
            .get_object(&key)
            .await
            .map_err(port(format!("reading {key}")))?
        else {
            missing.push(date);
            continue;
        };
        let day = decode_metrics(&key, bytes)?;
        if let Some(stray) = day
            .iter()
            .find(|r| r.tenant_id != tenant_id || r.date != date)
        {
            return Err(MetricsError::Decode {
                key,
                reason: format!(
                    "holds a row of tenant {} for {}, not of this key",
                    stray.tenant_id, stray.date
                ),
            });
        }
        rows.extend(day);
    }
    Ok((rows, missing))
}

/// Tenant ids go into S3 keys: the validator's id alphabet only.
fn check_tenant(tenant_id: &str) -> Result<(), MetricsError> {
    if crate::validate::is_tenant_id(tenant_id) {
        Ok(())
    } else {
        Err(MetricsError::BadTenant {
            value: tenant_id.to_string(),
        })
    }
}

fn port(what: String) -> impl FnOnce(PortError) -> MetricsError {
    move |source| MetricsError::Port { what, source }
}

fn decode_err(key: &str, e: impl ToString) -> MetricsError {
    MetricsError::Decode {
        key: key.to_string(),
        reason: e.to_string(),
    }
}
