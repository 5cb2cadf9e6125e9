//! [`JournalIndex`] on one DynamoDB table (DESIGN §5; key formats in `journal_core::layout`).
//!
//! Item types and their attributes are in [`items`]; the ingest protocol's conditions are in
//! [`claims`] (record claims and pointers), [`manifest`] (file manifest) and [`chain`] (chain
//! head and blocks).

mod chain;
mod claims;
pub(crate) mod items;
mod leases;
mod manifest;
mod suppressions;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::Client;
use journal_core::integrity::{BlockHeader, ChainHead};
use journal_core::ports::{
    AbandonOutcome, AppendOutcome, Claim, ClaimResult, IndexEntry, JournalIndex, ManifestEntry,
    Pointer, PortError, Suppression,
};
use journal_core::timestamp::Timestamp;

use crate::errors::sdk_error;
use crate::retry::Backoff;
use items::Item;

/// Claims are conditional puts of one item each; this many run at once per call.
const CLAIM_CONCURRENCY: usize = 16;
/// BatchWriteItem calls in flight at once per `write_pointers` call.
const BATCH_CONCURRENCY: usize = 4;
/// DynamoDB's limit of items per BatchWriteItem.
const BATCH_SIZE: usize = 25;

/// The journal index on the DynamoDB table `table` (key `pk`/`sk`, GSIs `by_subject`,
/// `by_model`; outcomes and reviews are found by link items in their decision's partition).
#[derive(Clone, Debug)]
pub struct DynamoIndex {
    client: Client,
    table: String,
    /// Table of the chain and manifest items (the only ones written in transactions).
    ledger: String,
    backoff: Backoff,
}

impl DynamoIndex {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            ledger: table.clone(),
            table,
            backoff: Backoff::default(),
        }
    }

    /// Keeps chain heads, block headers and the file manifest in their own small table: they
    /// are the only transactional items, and a ledger table can be backed up, restored and
    /// provisioned apart from the large, write-heavy pointer table.
    pub fn with_ledger_table(mut self, ledger: impl Into<String>) -> Self {
        self.ledger = ledger.into();
        self
    }

    /// The table an item lives in, by its partition key (`C#…` chain, `F#…` manifest,
    /// `LEASE#…` leases, `E#…` erased-subject suppressions).
    pub(crate) fn table_for(&self, pk: &str) -> &str {
        if ["C#", "F#", "LEASE#", "E#"]
            .iter()
            .any(|prefix| pk.starts_with(prefix))
        {
            &self.ledger
        } else {
            &self.table
        }
    }

    /// Replaces the backoff used for unprocessed batch items.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn target(&self, pk: &str) -> String {
        format!("(table {}, pk {pk})", self.table_for(pk))
    }

    /// Strongly consistent GetItem.
    pub(crate) async fn get_item(&self, op: &str, key: Item) -> Result<Option<Item>, PortError> {
        let pk = key_pk(&key);
        let out = self
            .client
            .get_item()
            .table_name(self.table_for(&pk))
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(op, &self.target(&pk), &e))?;
        Ok(out.item)
    }

    /// Every item of the partition `pk`, strongly consistent.
    pub(crate) async fn query_partition(&self, op: &str, pk: &str) -> Result<Vec<Item>, PortError> {
        let query = self
            .client
            .query()
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", items::PK)
            .expression_attribute_values(":pk", items::s(pk))
            .consistent_read(true);
        self.query_all(op, pk, query).await
    }

    /// Runs a Query to the end, following `LastEvaluatedKey`.
    pub(crate) async fn query_all(
        &self,
        op: &str,
        pk: &str,
        query: QueryFluentBuilder,
    ) -> Result<Vec<Item>, PortError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = query
                .clone()
                .table_name(self.table_for(pk))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(op, &self.target(pk), &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}

pub(crate) fn key_pk(key: &Item) -> String {
    key.get(items::PK)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

pub(crate) fn key_sk(key: &Item) -> String {
    key.get(items::SK)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

impl JournalIndex for DynamoIndex {
    async fn claim(&self, claims: &[Claim]) -> Result<Vec<ClaimResult>, PortError> {
        claims::claim(self, claims).await
    }

    async fn take_over(&self, claim: &Claim, from_block_id: &str) -> Result<bool, PortError> {
        claims::take_over(self, claim, from_block_id).await
    }

    async fn put_manifest_pending(&self, entry: &ManifestEntry) -> Result<bool, PortError> {
        manifest::put_pending(self, entry).await
    }

    async fn get_manifest(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> Result<Option<ManifestEntry>, PortError> {
        manifest::get(self, tenant_id, file_key).await
    }

    async fn abandon_manifest(
        &self,
        tenant_id: &str,
        file_key: &str,
        block_id: &str,
        now: Timestamp,
    ) -> Result<AbandonOutcome, PortError> {
        manifest::abandon(self, tenant_id, file_key, block_id, now).await
    }

    async fn chain_head(&self, chain_id: &str) -> Result<Option<ChainHead>, PortError> {
        chain::head(self, chain_id).await
    }

    async fn append_block(&self, header: &BlockHeader) -> Result<AppendOutcome, PortError> {
        chain::append(self, header).await
    }

    async fn write_pointers(&self, pointers: &[Pointer]) -> Result<(), PortError> {
        claims::write_pointers(self, pointers).await
    }

    async fn mark_manifest_live(&self, tenant_id: &str, file_key: &str) -> Result<(), PortError> {
        manifest::mark_live(self, tenant_id, file_key).await
    }

    async fn get_pointer(
        &self,
        tenant_id: &str,
        record_id: &str,
    ) -> Result<Option<IndexEntry>, PortError> {
        claims::get_pointer(self, tenant_id, record_id).await
    }

    async fn get_pointers(
        &self,
        tenant_id: &str,
        record_ids: &[String],
    ) -> Result<Vec<Pointer>, PortError> {
        claims::get_pointers(self, tenant_id, record_ids).await
    }

    /// One Query of the record's partition: its pointer and its link items.
    async fn get_with_links(
        &self,
        tenant_id: &str,
        record_id: &str,
    ) -> Result<(Option<IndexEntry>, Vec<Pointer>), PortError> {
        claims::get_with_links(self, tenant_id, record_id).await
    }

    async fn query_subject(
        &self,
        tenant_id: &str,
        subject_ref: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Pointer>, PortError> {
        let pk = journal_core::layout::subject_pk(tenant_id, subject_ref);
        claims::query_timeline(self, claims::Timeline::Subject, &pk, from, to).await
    }

    /// Indexed records of a model version with `from <= occurred_at < to`, oldest first
    /// (GSI `by_model`).
    async fn query_model(
        &self,
        tenant_id: &str,
        model_name: &str,
        model_version: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Pointer>, PortError> {
        let pk = journal_core::layout::model_pk(tenant_id, model_name, model_version);
        claims::query_timeline(self, claims::Timeline::Model, &pk, from, to).await
    }

    /// Every chain head: a Scan of the ledger table for `HEAD` items (one per tenant chain;
    /// scheduled work only, never on a request path).
    async fn list_chain_heads(&self) -> Result<Vec<ChainHead>, PortError> {
        chain::list_heads(self).await
    }

    /// Access records with `from <= occurred_at < to`, oldest first (GSI `by_model`, partition
    /// `A#<tenant>`).
    async fn query_access(
        &self,
        tenant_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Pointer>, PortError> {
        let pk = journal_core::layout::access_pk(tenant_id);
        claims::query_timeline(self, claims::Timeline::Model, &pk, from, to).await
    }

    /// Outcomes and reviews that refer to `decision_id`, oldest first (the link items in the
    /// decision's partition).
    async fn query_refs(
        &self,
        tenant_id: &str,
        decision_id: &str,
    ) -> Result<Vec<Pointer>, PortError> {
        claims::query_links(self, tenant_id, decision_id).await
    }

    async fn list_blocks_between(
        &self,
        chain_id: &str,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<BlockHeader>, PortError> {
        chain::list_blocks_between(self, chain_id, from_seq, to_seq).await
    }

    async fn list_blocks(&self, chain_id: &str) -> Result<Vec<BlockHeader>, PortError> {
        chain::list_blocks(self, chain_id).await
    }

    async fn put_manifest(&self, entry: &ManifestEntry) -> Result<(), PortError> {
        manifest::put(self, entry).await
    }

    async fn mark_manifest_compacted(
        &self,
        tenant_id: &str,
        file_key: &str,
        into: &str,
        delete_after: Timestamp,
    ) -> Result<bool, PortError> {
        manifest::mark_compacted(self, tenant_id, file_key, into, delete_after).await
    }

    async fn mark_manifest_deleted(
        &self,
        tenant_id: &str,
        file_key: &str,
    ) -> Result<(), PortError> {
        manifest::mark_deleted(self, tenant_id, file_key).await
    }

    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, PortError> {
        leases::acquire(self, name, owner, now, until).await
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), PortError> {
        leases::release(self, name, owner).await
    }

    async fn delete_entries(&self, pointers: &[Pointer]) -> Result<(), PortError> {
        claims::delete_entries(self, pointers).await
    }

    async fn list_manifest(
        &self,
        tenant_id: &str,
        date: &str,
    ) -> Result<Vec<ManifestEntry>, PortError> {
        manifest::list(self, tenant_id, date).await
    }

    async fn put_suppression(
        &self,
        tenant_id: &str,
        suppression: &Suppression,
    ) -> Result<(), PortError> {
        suppressions::put(self, tenant_id, suppression).await
    }

    async fn suppressions(
        &self,
        tenant_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Suppression>, PortError> {
        suppressions::live(self, tenant_id, now).await
    }
}
