//! Leases in the ledger table (`LEASE#name` / `LEASE`): a conditional put takes one when it
//! is free, expired or already ours, so two compactions of one partition never overlap.

use journal_core::layout;
use journal_core::ports::PortError;
use journal_core::timestamp::Timestamp;

use super::items::{key, n, s, PK};
use super::DynamoIndex;
use crate::errors::condition_held;

#[tracing::instrument(skip_all, fields(table = %ix.ledger, lease = %name, owner = %owner))]
pub(super) async fn acquire(
    ix: &DynamoIndex,
    name: &str,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool, PortError> {
    const OP: &str = "acquire lease";
    let pk = layout::lease_pk(name);
    let mut item = key(pk.clone(), layout::LEASE_SK);
    item.insert("owner".into(), s(owner));
    item.insert("until_ms".into(), n(until.millis()));
    item.insert("until".into(), s(until.to_string()));
    let sent = ix
        .client
        .put_item()
        .table_name(&ix.ledger)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk) OR #owner = :owner OR #until < :now")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#owner", "owner")
        .expression_attribute_names("#until", "until_ms")
        .expression_attribute_values(":owner", s(owner))
        .expression_attribute_values(":now", n(now.millis()))
        .send()
        .await;
    condition_held(sent, OP, &ix.target(&pk))
}

#[tracing::instrument(skip_all, fields(table = %ix.ledger, lease = %name, owner = %owner))]
pub(super) async fn release(ix: &DynamoIndex, name: &str, owner: &str) -> Result<(), PortError> {
    const OP: &str = "release lease";
    let pk = layout::lease_pk(name);
    let sent = ix
        .client
        .delete_item()
        .table_name(&ix.ledger)
        .set_key(Some(key(pk.clone(), layout::LEASE_SK)))
        .condition_expression("#owner = :owner")
        .expression_attribute_names("#owner", "owner")
        .expression_attribute_values(":owner", s(owner))
        .send()
        .await;
    // Not ours (expired and taken over) or already gone: nothing to give up.
    condition_held(sent, OP, &ix.target(&pk)).map(|_| ())
}
