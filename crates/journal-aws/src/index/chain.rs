//! The per-chain hash chain: head item (`C#chain` / `HEAD`) and block items (`C#chain` / `B#seq`).
//!
//! An append is one transaction that moves the head from `seq - 1` to `seq`, creates the block
//! item and moves the block's manifest entry pending → chained. The head condition serializes
//! concurrent ingests; the manifest condition is the fence against a takeover that abandoned
//! the block in the meantime.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, Put, TransactWriteItem, Update};
use journal_core::integrity::{BlockHeader, ChainHead};
use journal_core::layout;
use journal_core::ports::{AppendOutcome, FileState, PortError};

use super::items::{self, n, s, BLOCK_SK_PREFIX, PK, SK, STATE};
use super::DynamoIndex;
use crate::errors::sdk_error;

/// Positions of the three writes in the append transaction.
const HEAD: usize = 0;
const BLOCK: usize = 1;
const MANIFEST: usize = 2;

#[tracing::instrument(skip_all, fields(table = %ix.ledger, chain_id = %chain_id))]
pub(super) async fn head(ix: &DynamoIndex, chain_id: &str) -> Result<Option<ChainHead>, PortError> {
    const OP: &str = "read chain head";
    let Some(item) = ix.get_item(OP, items::head_key(chain_id)).await? else {
        return Ok(None);
    };
    items::chain_head(chain_id, &item)
        .map(Some)
        .map_err(|e| e.at(OP, &item))
}

#[tracing::instrument(
    skip_all,
    fields(table = %ix.ledger, chain_id = %header.chain_id, seq = header.seq, block_id = %header.block_id)
)]
pub(super) async fn append(
    ix: &DynamoIndex,
    header: &BlockHeader,
) -> Result<AppendOutcome, PortError> {
    const OP: &str = "append block";
    let block_hash = header.block_hash();
    let head = ChainHead {
        chain_id: header.chain_id.clone(),
        seq: header.seq,
        block_hash: block_hash.clone(),
        block_id: header.block_id.clone(),
    };
    let chain_pk = layout::chain_pk(&header.chain_id);
    let build_err = |e| PortError::permanent(OP, e);

    let head_put = Put::builder()
        .table_name(&ix.ledger)
        .set_item(Some(items::head_item(&head)));
    let head_put = match header.seq.checked_sub(1) {
        None => head_put
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK),
        Some(prev) => head_put
            .condition_expression("#seq = :prev")
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_values(":prev", n(prev)),
    }
    .build()
    .map_err(build_err)?;

    let block_put = Put::builder()
        .table_name(&ix.ledger)
        .set_item(Some(items::block_item(header, &block_hash)))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build()
        .map_err(build_err)?;

    let manifest_key = items::manifest_key(OP, &header.tenant_id, &header.file_key)?;
    let manifest_update = Update::builder()
        .table_name(&ix.ledger)
        .set_key(Some(manifest_key.clone()))
        .update_expression("SET #state = :chained, #seq = :seq")
        .condition_expression("#state = :pending AND #block_id = :block_id")
        .expression_attribute_names("#state", STATE)
        .expression_attribute_names("#seq", "seq")
        .expression_attribute_names("#block_id", "block_id")
        .expression_attribute_values(":chained", s(FileState::Chained.as_str()))
        .expression_attribute_values(":pending", s(FileState::Pending.as_str()))
        .expression_attribute_values(":seq", n(header.seq))
        .expression_attribute_values(":block_id", s(&header.block_id))
        .build()
        .map_err(build_err)?;

    let sent = ix
        .client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(head_put).build())
        .transact_items(TransactWriteItem::builder().put(block_put).build())
        .transact_items(TransactWriteItem::builder().update(manifest_update).build())
        .send()
        .await;
    let err = match sent {
        Ok(_) => return Ok(AppendOutcome::Appended),
        Err(err) => err,
    };
    let reasons: Vec<CancellationReason> = match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            e.cancellation_reasons().to_vec()
        }
        _ => return Err(sdk_error(OP, &ix.target(&chain_pk), &err)),
    };

    // A retry of an append that landed (lost response) trips every condition; it is done.
    if already_appended(ix, header, &block_hash).await? {
        return Ok(AppendOutcome::Appended);
    }

    let failed = |i: usize| {
        reasons
            .get(i)
            .and_then(|r| r.code())
            .is_some_and(|c| c == "ConditionalCheckFailed")
    };
    if reasons.len() == 3 {
        if failed(MANIFEST) {
            return Ok(AppendOutcome::Fenced);
        }
        if failed(HEAD) || failed(BLOCK) {
            return Ok(AppendOutcome::HeadMoved);
        }
        let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("None")).collect();
        return Err(PortError::transient(
            OP,
            format!(
                "{} seq {}: transaction cancelled ({})",
                ix.target(&chain_pk),
                header.seq,
                codes.join(", ")
            ),
        ));
    }
    decide_by_reading(ix, header, &chain_pk).await
}

/// Whether the block item at `header.seq` already is this very block.
async fn already_appended(
    ix: &DynamoIndex,
    header: &BlockHeader,
    block_hash: &str,
) -> Result<bool, PortError> {
    const OP: &str = "append block (check for own block)";
    let key = items::key(
        layout::chain_pk(&header.chain_id),
        layout::block_sk(header.seq),
    );
    Ok(ix
        .get_item(OP, key)
        .await?
        .and_then(|item| {
            items::Attrs(&item)
                .s("block_hash")
                .ok()
                .map(|h| h == block_hash)
        })
        .unwrap_or(false))
}

/// Without per-item cancellation reasons, the current state tells which condition failed.
async fn decide_by_reading(
    ix: &DynamoIndex,
    header: &BlockHeader,
    chain_pk: &str,
) -> Result<AppendOutcome, PortError> {
    const OP: &str = "append block (read back after cancellation)";
    let manifest = super::manifest::get(ix, &header.tenant_id, &header.file_key).await?;
    let ours_pending =
        manifest.is_some_and(|m| m.state == FileState::Pending && m.block_id == header.block_id);
    if !ours_pending {
        return Ok(AppendOutcome::Fenced);
    }
    let head = head(ix, &header.chain_id).await?;
    let head_ok = match (header.seq.checked_sub(1), head) {
        (None, None) => true,
        (Some(prev), Some(h)) => h.seq == prev,
        _ => false,
    };
    if !head_ok {
        return Ok(AppendOutcome::HeadMoved);
    }
    Err(PortError::transient(
        OP,
        format!(
            "{} seq {}: transaction cancelled although its conditions hold now (conflict)",
            ix.target(chain_pk),
            header.seq
        ),
    ))
}

#[tracing::instrument(skip_all, fields(table = %ix.ledger, chain_id = %chain_id))]
pub(super) async fn list_blocks(
    ix: &DynamoIndex,
    chain_id: &str,
) -> Result<Vec<BlockHeader>, PortError> {
    query_blocks(
        ix,
        "list blocks",
        chain_id,
        "begins_with(#sk, :prefix)",
        &[(":prefix", BLOCK_SK_PREFIX.to_string())],
    )
    .await
}

/// Block headers with `from_seq <= seq <= to_seq` (one Query on the sort-key range).
#[tracing::instrument(skip_all, fields(table = %ix.ledger, chain_id = %chain_id, from_seq, to_seq))]
pub(super) async fn list_blocks_between(
    ix: &DynamoIndex,
    chain_id: &str,
    from_seq: u64,
    to_seq: u64,
) -> Result<Vec<BlockHeader>, PortError> {
    if from_seq > to_seq {
        return Ok(Vec::new());
    }
    query_blocks(
        ix,
        "list blocks between",
        chain_id,
        "#sk BETWEEN :from AND :to",
        &[
            (":from", layout::block_sk(from_seq)),
            (":to", layout::block_sk(to_seq)),
        ],
    )
    .await
}

/// The block headers of a chain whose sort key meets `sk_condition`, by seq.
async fn query_blocks(
    ix: &DynamoIndex,
    op: &str,
    chain_id: &str,
    sk_condition: &str,
    values: &[(&str, String)],
) -> Result<Vec<BlockHeader>, PortError> {
    let pk = layout::chain_pk(chain_id);
    let mut query = ix
        .client
        .query()
        .key_condition_expression(format!("#pk = :pk AND {sk_condition}"))
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_values(":pk", s(&pk))
        .consistent_read(true)
        .scan_index_forward(true);
    for (name, value) in values {
        query = query.expression_attribute_values(*name, s(value));
    }
    ix.query_all(op, &pk, query)
        .await?
        .iter()
        .map(|item| items::block_header(item).map_err(|e| e.at(op, item)))
        .collect()
}

#[tracing::instrument(skip_all, fields(table = %ix.ledger))]
pub(super) async fn list_heads(ix: &DynamoIndex) -> Result<Vec<ChainHead>, PortError> {
    const OP: &str = "list chain heads";
    let target = format!("(table {})", ix.ledger);
    let mut heads = Vec::new();
    let mut start = None;
    loop {
        let out = ix
            .client
            .scan()
            .table_name(&ix.ledger)
            .filter_expression("#sk = :head")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":head", AttributeValue::S(layout::HEAD_SK.into()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error(OP, &target, &e))?;
        for item in out.items.unwrap_or_default() {
            let pk = super::key_pk(&item);
            let chain_id = pk.strip_prefix("C#").unwrap_or(&pk).to_string();
            heads.push(items::chain_head(&chain_id, &item).map_err(|e| e.at(OP, &item))?);
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    heads.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
    Ok(heads)
}
