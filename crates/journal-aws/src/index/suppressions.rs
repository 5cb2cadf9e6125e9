//! Erased subjects' suppressions in the ledger table (`E#tenant` / token): what ingest reads
//! once per batch to drop records of a subject erased after they were sent. `ttl` (epoch
//! seconds) lets DynamoDB's TTL remove an entry once nothing it covers can still be in flight.

use journal_core::layout;
use journal_core::ports::{PortError, Suppression};
use journal_core::timestamp::Timestamp;

use super::items::{key, n, s, Attrs, Item, ItemError};
use super::DynamoIndex;
use crate::errors::sdk_error;

const ERASED_AT: &str = "erased_at";
const EXPIRES_AT: &str = "expires_at";
const TTL: &str = "ttl";

#[tracing::instrument(skip_all, fields(table = %ix.ledger))]
pub(super) async fn put(
    ix: &DynamoIndex,
    tenant_id: &str,
    suppression: &Suppression,
) -> Result<(), PortError> {
    const OP: &str = "put suppression";
    let pk = layout::suppression_pk(tenant_id);
    let mut item = key(pk.clone(), suppression.token.clone());
    item.insert(ERASED_AT.into(), s(suppression.erased_at.to_string()));
    item.insert(EXPIRES_AT.into(), s(suppression.expires_at.to_string()));
    item.insert(TTL.into(), n(suppression.expires_at.millis() / 1000));
    ix.client
        .put_item()
        .table_name(ix.table_for(&pk))
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| sdk_error(OP, &ix.target(&pk), &e))?;
    Ok(())
}

pub(super) async fn live(
    ix: &DynamoIndex,
    tenant_id: &str,
    now: Timestamp,
) -> Result<Vec<Suppression>, PortError> {
    const OP: &str = "list suppressions";
    let pk = layout::suppression_pk(tenant_id);
    let mut live = Vec::new();
    for item in ix.query_partition(OP, &pk).await? {
        let suppression = suppression(&item).map_err(|e| e.at(OP, &item))?;
        // TTL deletes within days, not at once: an expired entry may still be read.
        if suppression.expires_at > now {
            live.push(suppression);
        }
    }
    Ok(live)
}

fn suppression(item: &Item) -> Result<Suppression, ItemError> {
    let a = Attrs(item);
    Ok(Suppression {
        token: a.s(super::items::SK)?.to_string(),
        erased_at: a.ts(ERASED_AT)?,
        expires_at: a.ts(EXPIRES_AT)?,
    })
}
