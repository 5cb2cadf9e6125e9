//! Tampering with a deployed journal the way an insider with write access to the bucket and
//! the ledger table could: raw S3 and DynamoDB calls on the stored objects and items, never
//! through the journal's ports. And [`Fixture`], the checkpointed journal the tamper tests
//! start from.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectLockMode;
use bytes::Bytes;
use journal_aws::checkpoints::{CheckpointRetention, S3CheckpointStore};
use journal_core::checkpoint::{
    checkpoint_key, write_checkpoint, CheckpointPolicy, CheckpointStore, MemorySigner,
    SignedCheckpoint, WriteOutcome,
};
use journal_core::columnar::{self, JournalRow, WriterConfig};
use journal_core::integrity::BlockHeader;
use journal_core::layout;
use journal_core::ports::{JournalIndex, ObjectStore};
use journal_core::replay::audit::{verify_scope, AuditReport, VerifyScope};
use journal_core::timestamp::Timestamp;
use journal_synth::{generate, producer_body, SynthConfig};
use serde_json::Value;

use crate::TestJournal;

/// Records sent per wave; each wave is drained (several ingest invocations, so several blocks
/// per tenant) and then checkpointed.
pub const WAVE: usize = 60;
pub const WAVES: usize = 4;

/// A journal with a few hundred generated records in several blocks per tenant, a signed
/// checkpoint per tenant after each wave, verified clean.
pub struct Fixture {
    pub j: TestJournal,
    /// Signs the checkpoints (the endpoint's KMS cannot sign digests; see
    /// `crates/journal-aws/tests/aws/checkpoints.rs`).
    pub signer: MemorySigner,
    /// The checkpoint store on the stack's bucket (Object Lock, GOVERNANCE for a day).
    pub checkpoints: S3CheckpointStore,
    /// Tenants, most blocks first.
    pub tenants: Vec<String>,
    /// Checkpoints written per tenant.
    pub checkpoint_counts: BTreeMap<String, u64>,
}

impl Fixture {
    pub async fn new(test: &str, seed: u64) -> Result<Self> {
        let j = TestJournal::new(test, 900).await?;
        let signer = MemorySigner::from_seed(test.as_bytes());
        let checkpoints = S3CheckpointStore::new(
            j.clients.s3.clone(),
            &j.config.bucket,
            CheckpointRetention {
                mode: ObjectLockMode::Governance,
                days: 1,
            },
        );
        let mut cfg = SynthConfig::new(seed);
        cfg.start = Timestamp::from_millis(Timestamp::now().millis() - 6 * 3600 * 1000)?;
        cfg.mean_gap_ms = 30_000;
        cfg.subjects_per_tenant = 40;
        let records = generate(cfg, WAVE * WAVES);
        let mut tenants: Vec<String> = records
            .iter()
            .filter_map(|r| r["tenant_id"].as_str().map(str::to_string))
            .collect();
        tenants.sort();
        tenants.dedup();
        let mut checkpoint_counts = BTreeMap::new();
        for wave in records.chunks(WAVE) {
            let bodies: Vec<Vec<u8>> = wave.iter().map(producer_body).collect();
            let stats = j.send_and_drain(&bodies, WAVE).await?;
            ensure!(stats.failed == 0, "ingest failed messages: {stats:?}");
            for t in &tenants {
                let out =
                    write_checkpoint(&j.deps.index, &checkpoints, &signer, t, Timestamp::now())
                        .await?;
                ensure!(
                    matches!(out, WriteOutcome::Written { .. }),
                    "tenant {t}: {out:?}"
                );
                *checkpoint_counts.entry(t.clone()).or_insert(0) += 1;
            }
        }
        let mut sized = Vec::new();
        for t in &tenants {
            sized.push((j.deps.index.list_blocks(t).await?.len(), t.clone()));
        }
        sized.sort_by(|a, b| b.cmp(a));
        let fixture = Self {
            j,
            signer,
            checkpoints,
            tenants: sized.iter().map(|(_, t)| t.clone()).collect(),
            checkpoint_counts,
        };
        // Clean before anything is touched.
        for (blocks, t) in &sized {
            ensure!(*blocks >= 5, "tenant {t} has only {blocks} blocks");
            let r = fixture.verify(t).await?;
            ensure!(
                r.ok && r.faults.is_empty() && r.chain_faults.is_empty(),
                "tenant {t} is not clean before tampering: {:#?}",
                r.faults
            );
            ensure!(r.blocks_checked == *blocks as u64, "{r:?}");
            ensure!(r.covered_seq == r.head_seq, "{r:?}");
            ensure!(r.valid_signatures == fixture.checkpoint_counts[t], "{r:?}");
        }
        Ok(fixture)
    }

    /// The whole tenant, now.
    pub async fn verify(&self, tenant: &str) -> Result<AuditReport> {
        self.verify_scope(&VerifyScope::tenant(tenant), Timestamp::now())
            .await
    }

    pub async fn verify_scope(&self, scope: &VerifyScope, now: Timestamp) -> Result<AuditReport> {
        Ok(verify_scope(
            &self.j.deps.index,
            &self.j.deps.store,
            &self.checkpoints,
            scope,
            &self.signer.public_key_der(),
            &CheckpointPolicy::default(),
            now,
        )
        .await?)
    }

    /// The tenant's block headers, by seq.
    pub async fn blocks(&self, tenant: &str) -> Result<Vec<BlockHeader>> {
        Ok(self.j.deps.index.list_blocks(tenant).await?)
    }

    /// A block of the tenant away from both ends of the chain with at least `rows` rows.
    pub async fn middle_block(&self, tenant: &str, rows: u64) -> Result<BlockHeader> {
        let blocks = self.blocks(tenant).await?;
        let n = blocks.len();
        blocks
            .iter()
            .skip(n / 3)
            .chain(blocks.iter())
            .find(|h| h.count >= rows && h.seq > 0 && (h.seq as usize) + 1 < n)
            .cloned()
            .with_context(|| format!("tenant {tenant}: no inner block with {rows} rows"))
    }

    pub fn bucket(&self) -> &str {
        &self.j.config.bucket
    }

    pub fn ledger_table(&self) -> &str {
        &self.j.config.ledger_table
    }

    // S3.

    pub async fn get_object(&self, key: &str) -> Result<Bytes> {
        self.j
            .deps
            .store
            .get_object(key)
            .await?
            .with_context(|| format!("{key} is missing"))
    }

    /// PutObject over `key` (in the versioned bucket: a new current version).
    pub async fn put_object(&self, key: &str, body: Bytes) -> Result<()> {
        self.j
            .clients
            .s3
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .with_context(|| format!("put {key}"))?;
        Ok(())
    }

    /// DeleteObject without a version: a delete marker (allowed under Object Lock).
    pub async fn delete_object(&self, key: &str) -> Result<()> {
        self.j
            .clients
            .s3
            .delete_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
            .with_context(|| format!("delete {key}"))?;
        Ok(())
    }

    /// CopyObject `from` over `to`.
    pub async fn copy_object(&self, from: &str, to: &str) -> Result<()> {
        self.j
            .clients
            .s3
            .copy_object()
            .bucket(self.bucket())
            .key(to)
            .copy_source(format!("{}/{from}", self.bucket()))
            .send()
            .await
            .with_context(|| format!("copy {from} to {to}"))?;
        Ok(())
    }

    /// Decodes a block's file, applies `edit` to its rows (the stored `leaf_hash` column goes
    /// along unchanged) and writes the re-encoded file over the same key.
    pub async fn rewrite_file(
        &self,
        header: &BlockHeader,
        edit: impl FnOnce(&mut Vec<JournalRow>),
    ) -> Result<()> {
        let mut rows = columnar::decode_file(self.get_object(&header.file_key).await?)?;
        edit(&mut rows);
        let metadata = [
            ("dj.tenant_id".to_string(), header.tenant_id.clone()),
            ("dj.block_id".to_string(), header.block_id.clone()),
        ];
        let writer = WriterConfig {
            max_row_group_size: self.j.config.row_group_rows,
            ..WriterConfig::default()
        };
        let file = columnar::encode_file(&rows, &writer, &metadata)?;
        self.put_object(&header.file_key, file.bytes).await
    }

    // DynamoDB (the ledger table).

    fn block_key(&self, tenant: &str, seq: u64) -> [(String, AttributeValue); 2] {
        [
            ("pk".into(), AttributeValue::S(layout::chain_pk(tenant))),
            ("sk".into(), AttributeValue::S(layout::block_sk(seq))),
        ]
    }

    /// DeleteItem of the chain item `C#tenant` / `B#seq`.
    pub async fn delete_block_item(&self, tenant: &str, seq: u64) -> Result<()> {
        let out = self
            .j
            .clients
            .dynamodb
            .delete_item()
            .table_name(self.ledger_table())
            .set_key(Some(self.block_key(tenant, seq).into_iter().collect()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .with_context(|| format!("delete block item {tenant} {seq}"))?;
        ensure!(out.attributes().is_some(), "no block item {tenant} / {seq}");
        Ok(())
    }

    /// Rewrites the header stored in the chain item `C#tenant` / `B#seq` (its `header`
    /// attribute, the canonical header JSON that is the record of truth) with `edit` applied.
    pub async fn edit_block_item(
        &self,
        tenant: &str,
        seq: u64,
        edit: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> Result<()> {
        let ddb = &self.j.clients.dynamodb;
        let item = ddb
            .get_item()
            .table_name(self.ledger_table())
            .set_key(Some(self.block_key(tenant, seq).into_iter().collect()))
            .consistent_read(true)
            .send()
            .await?
            .item
            .with_context(|| format!("no block item {tenant} / {seq}"))?;
        let text = item
            .get("header")
            .and_then(|v| v.as_s().ok())
            .context("block item without a header attribute")?;
        let mut header: serde_json::Map<String, Value> = serde_json::from_str(text)?;
        edit(&mut header);
        ddb.update_item()
            .table_name(self.ledger_table())
            .set_key(Some(self.block_key(tenant, seq).into_iter().collect()))
            .update_expression("SET #h = :h")
            .expression_attribute_names("#h", "header")
            .expression_attribute_values(":h", AttributeValue::S(Value::Object(header).to_string()))
            .send()
            .await?;
        Ok(())
    }

    // Checkpoints.

    pub async fn checkpoint(&self, tenant: &str, number: u64) -> Result<SignedCheckpoint> {
        let bytes = self
            .checkpoints
            .get(&checkpoint_key(tenant, number))
            .await?
            .with_context(|| format!("no checkpoint {number} of {tenant}"))?;
        Ok(SignedCheckpoint::from_bytes(&bytes)?)
    }

    /// Puts a checkpoint back over its key with `edit` applied to its block list; the signed
    /// document and signature stay as they were.
    pub async fn edit_block_list(
        &self,
        tenant: &str,
        number: u64,
        edit: impl FnOnce(&mut Vec<String>),
    ) -> Result<()> {
        let mut signed = self.checkpoint(tenant, number).await?;
        edit(&mut signed.block_hashes);
        self.put_object(
            &checkpoint_key(tenant, number),
            Bytes::from(signed.to_bytes()),
        )
        .await
    }

    // Index.

    /// Flips the lowest bit of the pointer's copy of its block header (the `block` attribute
    /// of `D#tenant#record`): its last byte is the low byte of the header's `sealed_at`.
    pub async fn flip_pointer_header_bit(&self, tenant: &str, record_id: &str) -> Result<()> {
        let ddb = &self.j.clients.dynamodb;
        let key = [
            (
                "pk".to_string(),
                AttributeValue::S(layout::pointer_pk(tenant, record_id)),
            ),
            (
                "sk".to_string(),
                AttributeValue::S(layout::POINTER_SK.into()),
            ),
        ];
        let item = ddb
            .get_item()
            .table_name(&self.j.config.table)
            .set_key(Some(key.clone().into_iter().collect()))
            .consistent_read(true)
            .send()
            .await?
            .item
            .with_context(|| format!("no pointer {tenant} / {record_id}"))?;
        let mut blob = item
            .get("block")
            .and_then(|v| v.as_b().ok())
            .context("pointer without a block attribute")?
            .as_ref()
            .to_vec();
        let last = blob.len() - 1;
        blob[last] ^= 0x01;
        ddb.update_item()
            .table_name(&self.j.config.table)
            .set_key(Some(key.into_iter().collect()))
            .update_expression("SET #b = :b")
            .expression_attribute_names("#b", "block")
            .expression_attribute_values(":b", AttributeValue::B(blob.into()))
            .send()
            .await?;
        Ok(())
    }

    /// Flips one bit of the last byte of a checkpoint's DER signature and puts the document
    /// back over its key: Object Lock keeps the signed version, but a versioned bucket takes a
    /// new current version, which is what readers see.
    pub async fn flip_signature_byte(&self, tenant: &str, number: u64) -> Result<()> {
        let signed = self.checkpoint(tenant, number).await?;
        let mut der = signed.signature_der()?;
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let forged = SignedCheckpoint::new(signed.checkpoint, &der, signed.block_hashes);
        self.put_object(
            &checkpoint_key(tenant, number),
            Bytes::from(forged.to_bytes()),
        )
        .await
    }
}
