//! Record claims, final pointers and the timeline queries over them.
//!
//! The record item (`D#tenant#record_id` / `D`) starts as a claim (`state = claimed`), written
//! with `attribute_not_exists(pk)` so that two deliveries of a record can never both be chained,
//! and is replaced by the final pointer (`state = indexed`) once its block is in the chain.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    DeleteRequest, KeysAndAttributes, PutRequest, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use futures::{StreamExt, TryStreamExt};
use journal_core::layout;
use journal_core::ports::{Claim, ClaimResult, IndexEntry, Pointer, PortError};
use journal_core::timestamp::Timestamp;

use super::items::{self, s, Item, PK, STATE, STATE_CLAIMED};
use super::{key_pk, key_sk, DynamoIndex, BATCH_CONCURRENCY, BATCH_SIZE, CLAIM_CONCURRENCY};
use crate::errors::{condition_held, sdk_error};

/// How often a claim is retried when the item it collided with vanished before it was read.
const CLAIM_ATTEMPTS: usize = 3;

#[tracing::instrument(skip_all, fields(table = %ix.table, claims = claims.len()))]
pub(super) async fn claim(
    ix: &DynamoIndex,
    claims: &[Claim],
) -> Result<Vec<ClaimResult>, PortError> {
    // `buffered` keeps input order while running up to CLAIM_CONCURRENCY puts at once. The
    // futures are made up front: a stream `map` closure over borrowed claims trips the
    // higher-ranked `Send` check of the trait's `impl Future + Send`.
    let puts: Vec<_> = claims.iter().map(|c| claim_one(ix, c)).collect();
    futures::stream::iter(puts)
        .buffered(CLAIM_CONCURRENCY)
        .try_collect()
        .await
}

async fn claim_one(ix: &DynamoIndex, c: &Claim) -> Result<ClaimResult, PortError> {
    const OP: &str = "claim record";
    let item = items::claim_item(c);
    let pk = key_pk(&item);
    for _ in 0..CLAIM_ATTEMPTS {
        let sent = ix
            .client
            .put_item()
            .table_name(&ix.table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(ClaimResult::Won),
            Err(err) => err,
        };
        let returned = match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(e)) => e.item().cloned(),
            _ => return Err(sdk_error(OP, &ix.target(&pk), &err)),
        };
        // Endpoints that ignore ReturnValuesOnConditionCheckFailure: read it instead.
        let existing = match returned {
            Some(item) => Some(item),
            None => {
                ix.get_item(OP, items::pointer_key(&c.tenant_id, &c.record_id))
                    .await?
            }
        };
        if let Some(existing) = existing {
            return items::existing_pointer(&existing)
                .map(ClaimResult::Existing)
                .map_err(|e| e.at(OP, &existing));
        }
        // Deleted between our put and our read (erasure): the record id is free again.
    }
    Err(PortError::transient(
        OP,
        format!("{}: the conflicting item kept disappearing", ix.target(&pk)),
    ))
}

#[tracing::instrument(skip_all, fields(table = %ix.table, record_id = %c.record_id, from_block_id = %from_block_id))]
pub(super) async fn take_over(
    ix: &DynamoIndex,
    c: &Claim,
    from_block_id: &str,
) -> Result<bool, PortError> {
    const OP: &str = "take over record claim";
    let item = items::claim_item(c);
    let pk = key_pk(&item);
    // `:mine` keeps an SDK retry of a put that had landed from reading as a lost race.
    let sent = ix
        .client
        .put_item()
        .table_name(&ix.table)
        .set_item(Some(item))
        .condition_expression("#state = :claimed AND #block_id IN (:from, :mine)")
        .expression_attribute_names("#state", STATE)
        .expression_attribute_names("#block_id", "block_id")
        .expression_attribute_values(":claimed", s(STATE_CLAIMED))
        .expression_attribute_values(":from", s(from_block_id))
        .expression_attribute_values(":mine", s(&c.block_id))
        .send()
        .await;
    condition_held(sent, OP, &ix.target(&pk))
}

#[tracing::instrument(skip_all, fields(table = %ix.table, pointers = pointers.len()))]
pub(super) async fn write_pointers(
    ix: &DynamoIndex,
    pointers: &[Pointer],
) -> Result<(), PortError> {
    // BatchWriteItem refuses two requests for one key; the last pointer of a record wins.
    let mut position: HashMap<(&str, &str), usize> = HashMap::new();
    let mut unique: Vec<&Pointer> = Vec::with_capacity(pointers.len());
    for p in pointers {
        match position.get(&(p.tenant_id.as_str(), p.record_id.as_str())) {
            Some(&i) => unique[i] = p,
            None => {
                position.insert((&p.tenant_id, &p.record_id), unique.len());
                unique.push(p);
            }
        }
    }
    // Each pointer, and for an outcome or review its link item under the decision.
    let all: Vec<Item> = unique
        .iter()
        .flat_map(|p| std::iter::once(items::pointer_item(p)).chain(items::link_item(p)))
        .collect();
    const OP: &str = "write pointers";
    let requests = all
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|put| WriteRequest::builder().put_request(put).build())
                .map_err(|e| PortError::permanent(OP, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    write_all(ix, OP, requests).await
}

/// Deletes records' pointers and, for outcomes and reviews, their link items.
#[tracing::instrument(skip_all, fields(table = %ix.table, pointers = pointers.len()))]
pub(super) async fn delete_entries(
    ix: &DynamoIndex,
    pointers: &[Pointer],
) -> Result<(), PortError> {
    const OP: &str = "delete index entries";
    let mut keys: Vec<Item> = Vec::with_capacity(pointers.len());
    let mut seen: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    for p in pointers {
        let link = items::link_item(p).map(|mut item| {
            item.retain(|k, _| k == PK || k == items::SK);
            item
        });
        for key in std::iter::once(items::pointer_key(&p.tenant_id, &p.record_id)).chain(link) {
            let id = (key_pk(&key), key_sk(&key));
            // BatchWriteItem refuses two requests for one key.
            if seen.insert(id) {
                keys.push(key);
            }
        }
    }
    let requests = keys
        .into_iter()
        .map(|key| {
            DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .map_err(|e| PortError::permanent(OP, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    write_all(ix, OP, requests).await
}

/// Sends write requests in BatchWriteItems of 25, several at once.
async fn write_all(
    ix: &DynamoIndex,
    op: &'static str,
    requests: Vec<WriteRequest>,
) -> Result<(), PortError> {
    let batches: Vec<Vec<WriteRequest>> = requests
        .chunks(BATCH_SIZE)
        .map(<[WriteRequest]>::to_vec)
        .collect();
    let writes: Vec<_> = batches
        .into_iter()
        .map(|b| write_batch(ix, op, b))
        .collect();
    futures::stream::iter(writes)
        .buffer_unordered(BATCH_CONCURRENCY)
        .try_collect::<()>()
        .await
}

fn request_pk(r: &WriteRequest) -> String {
    r.put_request()
        .map(|p| key_pk(p.item()))
        .or_else(|| r.delete_request().map(|d| key_pk(d.key())))
        .unwrap_or_default()
}

/// One BatchWriteItem of up to 25 requests, retrying `UnprocessedItems` with backoff and
/// jitter.
async fn write_batch(
    ix: &DynamoIndex,
    op: &'static str,
    batch: Vec<WriteRequest>,
) -> Result<(), PortError> {
    let first_pk = batch.first().map(request_pk).unwrap_or_default();
    let mut pending = batch;
    let mut attempt = 1;
    loop {
        let count = pending.len();
        let out = ix
            .client
            .batch_write_item()
            .request_items(&ix.table, pending)
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    op,
                    &format!("{} ({count} items from {first_pk})", ix.target(&first_pk)),
                    &e,
                )
            })?;
        pending = out
            .unprocessed_items
            .and_then(|mut m| m.remove(&ix.table))
            .unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
        if attempt >= ix.backoff.max_attempts {
            return Err(PortError::transient(
                op,
                format!(
                    "(table {}) {} of {count} items still unprocessed after {attempt} attempts",
                    ix.table,
                    pending.len()
                ),
            ));
        }
        tracing::debug!(
            unprocessed = pending.len(),
            attempt,
            "retrying unprocessed pointers"
        );
        ix.backoff.sleep(attempt).await;
        attempt += 1;
    }
}

#[tracing::instrument(skip_all, fields(table = %ix.table))]
pub(super) async fn get_pointer(
    ix: &DynamoIndex,
    tenant_id: &str,
    record_id: &str,
) -> Result<Option<IndexEntry>, PortError> {
    const OP: &str = "get pointer";
    let Some(item) = ix
        .get_item(OP, items::pointer_key(tenant_id, record_id))
        .await?
    else {
        return Ok(None);
    };
    items::index_entry(&item)
        .map(Some)
        .map_err(|e| e.at(OP, &item))
}

/// Most keys one BatchGetItem takes.
const GET_BATCH: usize = 100;

#[tracing::instrument(skip_all, fields(table = %ix.table, records = record_ids.len()))]
pub(super) async fn get_pointers(
    ix: &DynamoIndex,
    tenant_id: &str,
    record_ids: &[String],
) -> Result<Vec<Pointer>, PortError> {
    // BatchGetItem refuses a request that names a key twice.
    let mut unique: Vec<&String> = record_ids.iter().collect();
    unique.sort();
    unique.dedup();
    let unique: Vec<String> = unique.into_iter().cloned().collect();
    let reads: Vec<_> = unique
        .chunks(GET_BATCH)
        .map(|ids| get_batch(ix, tenant_id, ids))
        .collect();
    let found: Vec<Vec<Pointer>> = futures::stream::iter(reads)
        .buffer_unordered(BATCH_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// One BatchGetItem of up to 100 pointers, retrying `UnprocessedKeys` with backoff and jitter.
async fn get_batch(
    ix: &DynamoIndex,
    tenant_id: &str,
    record_ids: &[String],
) -> Result<Vec<Pointer>, PortError> {
    const OP: &str = "get pointers";
    let first_pk = layout::pointer_pk(tenant_id, record_ids.first().map_or("", String::as_str));
    let keys: Vec<Item> = record_ids
        .iter()
        .map(|id| items::pointer_key(tenant_id, id))
        .collect();
    let mut pending = Some(
        KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| PortError::permanent(OP, e))?,
    );
    let mut found = Vec::with_capacity(record_ids.len());
    let mut attempt = 1;
    while let Some(keys) = pending.take() {
        let out = ix
            .client
            .batch_get_item()
            .request_items(&ix.table, keys)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &ix.target(&first_pk), &e))?;
        for item in out
            .responses
            .and_then(|mut r| r.remove(&ix.table))
            .unwrap_or_default()
        {
            match items::index_entry(&item).map_err(|e| e.at(OP, &item))? {
                IndexEntry::Indexed(p) => found.push(p),
                IndexEntry::Claimed(_) => {}
            }
        }
        pending = out
            .unprocessed_keys
            .and_then(|mut m| m.remove(&ix.table))
            .filter(|k| !k.keys().is_empty());
        if let Some(left) = &pending {
            if attempt >= ix.backoff.max_attempts {
                return Err(PortError::transient(
                    OP,
                    format!(
                        "(table {}) {} of {} keys still unprocessed after {attempt} attempts",
                        ix.table,
                        left.keys().len(),
                        record_ids.len()
                    ),
                ));
            }
            ix.backoff.sleep(attempt).await;
            attempt += 1;
        }
    }
    Ok(found)
}

/// A record's entry and its link items: one Query of its partition.
pub(super) async fn get_with_links(
    ix: &DynamoIndex,
    tenant_id: &str,
    record_id: &str,
) -> Result<(Option<IndexEntry>, Vec<Pointer>), PortError> {
    const OP: &str = "get pointer with links";
    let pk = layout::pointer_pk(tenant_id, record_id);
    let query = ix
        .client
        .query()
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(&pk))
        .consistent_read(true);
    let mut entry = None;
    let mut links = Vec::new();
    for item in ix.query_all(OP, &pk, query).await? {
        let sk = item.get(items::SK).and_then(|v| v.as_s().ok());
        match sk.map(String::as_str) {
            Some(layout::POINTER_SK) => {
                entry = Some(items::index_entry(&item).map_err(|e| e.at(OP, &item))?)
            }
            Some(sk) if sk.starts_with(layout::LINK_SK_PREFIX) => {
                links.push(items::pointer(&item).map_err(|e| e.at(OP, &item))?)
            }
            _ => {}
        }
    }
    Ok((entry, links))
}

/// The link items of a decision (outcomes and reviews referring to it), oldest first.
pub(super) async fn query_links(
    ix: &DynamoIndex,
    tenant_id: &str,
    decision_id: &str,
) -> Result<Vec<Pointer>, PortError> {
    const OP: &str = "query links";
    let pk = layout::pointer_pk(tenant_id, decision_id);
    let query = ix
        .client
        .query()
        .key_condition_expression("pk = :pk AND begins_with(sk, :links)")
        .expression_attribute_values(":pk", s(&pk))
        .expression_attribute_values(":links", s(layout::LINK_SK_PREFIX))
        .scan_index_forward(true);
    parse_pointers(OP, ix.query_all(OP, &pk, query).await?)
}

/// The GSIs over the record items; each sorts by `occurred_at#record_id`.
#[derive(Clone, Copy, Debug)]
pub(super) enum Timeline {
    Subject,
    Model,
}

impl Timeline {
    fn index(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Timeline::Subject => (layout::GSI_BY_SUBJECT, items::GSI1PK, items::GSI1SK),
            Timeline::Model => (layout::GSI_BY_MODEL, items::GSI2PK, items::GSI2SK),
        }
    }
}

/// Sort-key bounds selecting `from <= occurred_at < to`, or None when the range is empty.
///
/// Timeline keys are `occurred_at#record_id` with fixed-width timestamps: `from` alone sorts
/// before every key at `from`, and the last millisecond before `to` followed by `#` and the
/// highest code point sorts after every key at that millisecond.
pub(super) fn timeline_bounds(from: Timestamp, to: Timestamp) -> Option<(String, String)> {
    if to <= from {
        return None;
    }
    let last = Timestamp::from_millis(to.millis() - 1).ok()?;
    Some((from.to_string(), format!("{last}#\u{10FFFF}")))
}

#[tracing::instrument(skip_all, fields(table = %ix.table, ?timeline, pk = %pk))]
pub(super) async fn query_timeline(
    ix: &DynamoIndex,
    timeline: Timeline,
    pk: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Pointer>, PortError> {
    const OP: &str = "query timeline";
    let Some((lo, hi)) = timeline_bounds(from, to) else {
        return Ok(Vec::new());
    };
    let (index, pk_attr, sk_attr) = timeline.index();
    let query = ix
        .client
        .query()
        .index_name(index)
        .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
        .expression_attribute_names("#pk", pk_attr)
        .expression_attribute_names("#sk", sk_attr)
        .expression_attribute_values(":pk", s(pk))
        .expression_attribute_values(":lo", s(lo))
        .expression_attribute_values(":hi", s(hi))
        .scan_index_forward(true);
    parse_pointers(OP, ix.query_all(OP, pk, query).await?)
}

fn parse_pointers(op: &str, found: Vec<Item>) -> Result<Vec<Pointer>, PortError> {
    found
        .iter()
        .map(|item| items::pointer(item).map_err(|e| e.at(op, item)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cover_the_half_open_range() {
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let (lo, hi) =
            timeline_bounds(t("2026-03-15T10:00:00Z"), t("2026-03-15T11:00:00Z")).unwrap();
        let at = |s: &str| layout::timeline_sk(t(s), "01JZZZZZZZZZZZZZZZZZZZZZZZ");
        assert!(lo <= at("2026-03-15T10:00:00Z"));
        assert!(at("2026-03-15T10:59:59.999Z") <= hi);
        assert!(at("2026-03-15T11:00:00Z") > hi);
        assert!(at("2026-03-15T09:59:59.999Z") < lo);
        assert!(timeline_bounds(t("2026-03-15T10:00:00Z"), t("2026-03-15T10:00:00Z")).is_none());
    }
}
