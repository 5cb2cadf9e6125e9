//! The file manifest (`F#tenant#date` / file key): one entry per data file, whose `state` is the
//! fencing token between an ingest that may still chain its block and a takeover abandoning it.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use journal_core::layout;
use journal_core::ports::{AbandonOutcome, FileState, ManifestEntry, PortError};
use journal_core::timestamp::Timestamp;

use super::items::{self, n, s, Item, PK, STATE};
use super::{key_pk, DynamoIndex};
use crate::errors::{condition_held, sdk_error};

#[tracing::instrument(skip_all, fields(table = %ix.ledger, file_key = %entry.file_key))]
pub(super) async fn put_pending(
    ix: &DynamoIndex,
    entry: &ManifestEntry,
) -> Result<bool, PortError> {
    const OP: &str = "put pending manifest entry";
    let mut item = items::manifest_item(OP, entry)?;
    item.insert(STATE.into(), s(FileState::Pending.as_str()));
    let pk = key_pk(&item);
    let sent = ix
        .client
        .put_item()
        .table_name(&ix.ledger)
        .set_item(Some(item))
        // The second arm lets an SDK retry of a put that had landed hold.
        .condition_expression(
            "attribute_not_exists(#pk) OR (#state = :pending AND #block_id = :block_id)",
        )
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#state", STATE)
        .expression_attribute_names("#block_id", "block_id")
        .expression_attribute_values(":pending", s(FileState::Pending.as_str()))
        .expression_attribute_values(":block_id", s(&entry.block_id))
        .send()
        .await;
    condition_held(sent, OP, &ix.target(&pk))
}

#[tracing::instrument(skip_all, fields(table = %ix.ledger, file_key = %file_key))]
pub(super) async fn get(
    ix: &DynamoIndex,
    tenant_id: &str,
    file_key: &str,
) -> Result<Option<ManifestEntry>, PortError> {
    const OP: &str = "get manifest entry";
    let key = items::manifest_key(OP, tenant_id, file_key)?;
    let Some(item) = ix.get_item(OP, key).await? else {
        return Ok(None);
    };
    items::manifest_entry(&item)
        .map(Some)
        .map_err(|e| e.at(OP, &item))
}

#[tracing::instrument(skip_all, fields(table = %ix.ledger, tenant_id = %tenant_id, date = %date))]
pub(super) async fn list(
    ix: &DynamoIndex,
    tenant_id: &str,
    date: &str,
) -> Result<Vec<ManifestEntry>, PortError> {
    const OP: &str = "list manifest";
    let pk = layout::manifest_pk(tenant_id, date);
    ix.query_partition(OP, &pk)
        .await?
        .iter()
        .map(|item| items::manifest_entry(item).map_err(|e| e.at(OP, item)))
        .collect()
}

/// Moves the entry to `abandoned` unless its block got chained; creates a complete (empty)
/// entry when the dead ingest never wrote one, so that it can never write one later.
#[tracing::instrument(skip_all, fields(table = %ix.ledger, file_key = %file_key, block_id = %block_id))]
pub(super) async fn abandon(
    ix: &DynamoIndex,
    tenant_id: &str,
    file_key: &str,
    block_id: &str,
    now: Timestamp,
) -> Result<AbandonOutcome, PortError> {
    const OP: &str = "abandon manifest entry";
    let key = items::manifest_key(OP, tenant_id, file_key)?;
    let pk = key_pk(&key);
    // Missing attributes get the values of an empty file, so the entry always parses.
    let defaults: [(&str, &str, AttributeValue); 10] = [
        ("tenant_id", ":tenant_id", s(tenant_id)),
        ("file_key", ":file_key", s(file_key)),
        ("block_id", ":block_id", s(block_id)),
        ("rows", ":zero", n(0)),
        ("size", ":zero", n(0)),
        ("sha256", ":empty", s("")),
        ("first_occurred_at", ":now", s(now.to_string())),
        ("last_occurred_at", ":now", s(now.to_string())),
        ("created_at", ":now", s(now.to_string())),
        ("created_at_ms", ":now_ms", n(now.millis())),
    ];
    let mut set = vec![
        "#state = :abandoned".to_string(),
        "#abandoned_at = :now".to_string(),
    ];
    let mut update = ix
        .client
        .update_item()
        .table_name(&ix.ledger)
        .set_key(Some(key.clone()))
        .condition_expression(
            "attribute_not_exists(#pk) OR #state = :pending OR #state = :abandoned",
        )
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#state", STATE)
        .expression_attribute_names("#abandoned_at", "abandoned_at")
        .expression_attribute_values(":abandoned", s(FileState::Abandoned.as_str()))
        .expression_attribute_values(":pending", s(FileState::Pending.as_str()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    for (i, (name, placeholder, value)) in defaults.into_iter().enumerate() {
        set.push(format!("#a{i} = if_not_exists(#a{i}, {placeholder})"));
        update = update
            .expression_attribute_names(format!("#a{i}"), name)
            .expression_attribute_values(placeholder, value);
    }
    let sent = update
        .update_expression(format!("SET {}", set.join(", ")))
        .send()
        .await;
    let err = match sent {
        Ok(_) => return Ok(AbandonOutcome::Abandoned),
        Err(err) => err,
    };
    let returned = match err.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(e)) => e.item().cloned(),
        _ => return Err(sdk_error(OP, &ix.target(&pk), &err)),
    };
    let item = match returned {
        Some(item) => item,
        None => ix.get_item(OP, key).await?.ok_or_else(|| {
            // Only a delete of a chained entry can get here; retention never deletes entries
            // of a chain that is still being appended to.
            PortError::transient(
                OP,
                format!("{}: entry vanished during abandon", ix.target(&pk)),
            )
        })?,
    };
    items::manifest_entry(&item)
        .map(|e| AbandonOutcome::AlreadyChained(Box::new(e)))
        .map_err(|e| e.at(OP, &item))
}

#[tracing::instrument(skip_all, fields(table = %ix.ledger, file_key = %file_key))]
pub(super) async fn mark_live(
    ix: &DynamoIndex,
    tenant_id: &str,
    file_key: &str,
) -> Result<(), PortError> {
    const OP: &str = "mark manifest entry live";
    let key = items::manifest_key(OP, tenant_id, file_key)?;
    let pk = key_pk(&key);
    let sent = ix
        .client
        .update_item()
        .table_name(&ix.ledger)
        .set_key(Some(key))
        .update_expression("SET #state = :live")
        .condition_expression("attribute_exists(#pk) AND (#state = :chained OR #state = :live)")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#state", STATE)
        .expression_attribute_values(":live", s(FileState::Live.as_str()))
        .expression_attribute_values(":chained", s(FileState::Chained.as_str()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let err = match sent {
        Ok(_) => return Ok(()),
        Err(err) => err,
    };
    match err.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
            let state = e.item().map(state_of);
            Err(PortError::permanent(
                OP,
                format!(
                    "{} file {file_key:?}: only a chained entry can go live, this one is {}",
                    ix.target(&pk),
                    state.as_deref().unwrap_or("missing or in another state")
                ),
            ))
        }
        _ => Err(sdk_error(OP, &ix.target(&pk), &err)),
    }
}

fn state_of(item: &Item) -> String {
    match items::Attrs(item).s(STATE) {
        Ok(state) => state.to_string(),
        Err(e) => e.to_string(),
    }
}

/// Creates or replaces an entry (compaction's outputs).
#[tracing::instrument(skip_all, fields(table = %ix.ledger, file_key = %entry.file_key))]
pub(super) async fn put(ix: &DynamoIndex, entry: &ManifestEntry) -> Result<(), PortError> {
    const OP: &str = "put manifest entry";
    let item = items::manifest_item(OP, entry)?;
    let pk = key_pk(&item);
    ix.client
        .put_item()
        .table_name(&ix.ledger)
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| sdk_error(OP, &ix.target(&pk), &e))?;
    Ok(())
}

/// Live → compacted (or compacted into the same file again), with where and until when.
#[tracing::instrument(skip_all, fields(table = %ix.ledger, file_key = %file_key, into = %into))]
pub(super) async fn mark_compacted(
    ix: &DynamoIndex,
    tenant_id: &str,
    file_key: &str,
    into: &str,
    delete_after: Timestamp,
) -> Result<bool, PortError> {
    const OP: &str = "mark manifest entry compacted";
    let key = items::manifest_key(OP, tenant_id, file_key)?;
    let pk = key_pk(&key);
    let sent = ix
        .client
        .update_item()
        .table_name(&ix.ledger)
        .set_key(Some(key))
        .update_expression("SET #state = :compacted, #into = :into, #after = :after")
        .condition_expression("#state = :live OR (#state = :compacted AND #into = :into)")
        .expression_attribute_names("#state", STATE)
        .expression_attribute_names("#into", "compacted_into")
        .expression_attribute_names("#after", "delete_after")
        .expression_attribute_values(":compacted", s(FileState::Compacted.as_str()))
        .expression_attribute_values(":live", s(FileState::Live.as_str()))
        .expression_attribute_values(":into", s(into))
        .expression_attribute_values(":after", s(delete_after.to_string()))
        .send()
        .await;
    condition_held(sent, OP, &ix.target(&pk))
}

/// Compacted → deleted, once the object is gone.
#[tracing::instrument(skip_all, fields(table = %ix.ledger, file_key = %file_key))]
pub(super) async fn mark_deleted(
    ix: &DynamoIndex,
    tenant_id: &str,
    file_key: &str,
) -> Result<(), PortError> {
    const OP: &str = "mark manifest entry deleted";
    let key = items::manifest_key(OP, tenant_id, file_key)?;
    let pk = key_pk(&key);
    ix.client
        .update_item()
        .table_name(&ix.ledger)
        .set_key(Some(key))
        .update_expression("SET #state = :deleted")
        .condition_expression("#state = :compacted OR #state = :deleted")
        .expression_attribute_names("#state", STATE)
        .expression_attribute_values(":deleted", s(FileState::Deleted.as_str()))
        .expression_attribute_values(":compacted", s(FileState::Compacted.as_str()))
        .send()
        .await
        .map_err(|e| sdk_error(OP, &ix.target(&pk), &e))?;
    Ok(())
}
