//! Test harness: clients against the local endpoint, and uniquely named resources per test.
//!
//! Tests run only when `AWS_ENDPOINT_URL` is set (e.g. moto server or LocalStack); otherwise
//! they print why and return. Missing region/credentials default to `us-east-1` / `test`.

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus,
};
use journal_aws::AwsClients;
use journal_core::integrity::chain::HEADER_VERSION;
use journal_core::integrity::BlockHeader;
use journal_core::layout;
use journal_core::ports::{FileState, ManifestEntry};
use journal_core::timestamp::Timestamp;

/// Clients for the local endpoint, or None (after saying so) when none is configured.
pub async fn clients(test: &str) -> Option<AwsClients> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none_or(|v| v.is_empty()) {
        println!("skipping {test}: AWS_ENDPOINT_URL is not set (start moto or LocalStack)");
        return None;
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(RegionProviderChain::default_provider().or_else(Region::new("us-east-1")));
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none()
    {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "journal-aws-tests",
        ));
    }
    Some(AwsClients::from_sdk_config(&loader.load().await))
}

/// A fresh lowercase name, valid for tables, buckets, queues and aliases.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates the journal table as infra/template.yaml does: `pk`/`sk` and three GSIs.
pub async fn create_table(c: &AwsClients) -> String {
    let table = unique("dj-test");
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let gsi = |name: &str, pk: &str, sk: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash))
            .key_schema(key(sk, KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .unwrap()
    };
    let mut create = c
        .dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(gsi(layout::GSI_BY_SUBJECT, "gsi1pk", "gsi1sk"))
        .global_secondary_indexes(gsi(layout::GSI_BY_MODEL, "gsi2pk", "gsi2sk"));
    for name in ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"] {
        create = create.attribute_definitions(attr(name));
    }
    create.send().await.expect("create table");
    for _ in 0..120 {
        let out = c
            .dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .expect("describe table");
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return table;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("table {table} did not become active");
}

pub async fn create_bucket(c: &AwsClients) -> String {
    let bucket = unique("dj-test");
    c.s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    bucket
}

pub async fn create_queue(c: &AwsClients) -> String {
    let out = c
        .sqs
        .create_queue()
        .queue_name(unique("dj-test-dlq"))
        .send()
        .await
        .expect("create queue");
    out.queue_url().expect("queue url").to_string()
}

pub async fn create_kms_key(c: &AwsClients) -> String {
    let out = c
        .kms
        .create_key()
        .description("journal-aws test subject keys")
        .send()
        .await
        .expect("create key");
    out.key_metadata()
        .expect("key metadata")
        .key_id()
        .to_string()
}

pub fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

pub fn file_key(tenant: &str, block_id: &str) -> String {
    layout::block_file_key(tenant, ts("2026-03-15T10:00:00Z"), block_id)
}

pub fn pending_entry(tenant: &str, block_id: &str) -> ManifestEntry {
    ManifestEntry {
        tenant_id: tenant.into(),
        file_key: file_key(tenant, block_id),
        block_id: block_id.into(),
        state: FileState::Pending,
        seq: None,
        rows: 3,
        size: 1234,
        sha256: "ab".repeat(32),
        first_occurred_at: ts("2026-03-15T09:59:00Z"),
        last_occurred_at: ts("2026-03-15T10:00:00Z"),
        created_at: ts("2026-03-15T10:00:01Z"),
        last_seq: None,
        merged_from: Vec::new(),
        compacted_into: None,
        delete_after: None,
        risk_tiers: Vec::new(),
        storage_class: None,
        tombstone: None,
        erasure_receipts: Vec::new(),
    }
}

pub fn header(tenant: &str, seq: u64, prev_hash: &str, block_id: &str) -> BlockHeader {
    BlockHeader {
        version: HEADER_VERSION,
        chain_id: tenant.into(),
        tenant_id: tenant.into(),
        seq,
        block_id: block_id.into(),
        prev_hash: prev_hash.into(),
        merkle_root: "cd".repeat(32),
        count: 3,
        first_occurred_at: ts("2026-03-15T09:59:00Z"),
        last_occurred_at: ts("2026-03-15T10:00:00Z"),
        sealed_at: ts("2026-03-15T10:00:01Z"),
        file_key: file_key(tenant, block_id),
        file_sha256: "ab".repeat(32),
    }
}
