//! S3ObjectStore: put/get, missing objects, ranges, head and listing.

use aws_sdk_s3::types::ChecksumMode;
use bytes::Bytes;
use journal_aws::{S3ObjectStore, PARQUET_CONTENT_TYPE};
use journal_core::ports::{ArchiveState, ArchiveStore, ObjectStore, RangedObjectStore, ReadError};

use crate::common;

#[tokio::test]
async fn objects_round_trip_and_ranges_read_parts() {
    let Some(c) = common::clients("s3").await else {
        return;
    };
    let bucket = common::create_bucket(&c).await;
    let store = S3ObjectStore::new(c.s3.clone(), &bucket);

    let key = "decisions/tenant=bank_1/date=2026-03-15/hour=10/B1.parquet";
    let body = Bytes::from((0..=255u8).cycle().take(10_000).collect::<Vec<u8>>());
    store.put_object(key, body.clone()).await.unwrap();
    store
        .put_object("other/x.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();

    assert_eq!(store.get_object(key).await.unwrap(), Some(body.clone()));
    assert_eq!(
        store.get_object("nope/missing.parquet").await.unwrap(),
        None
    );

    assert_eq!(
        store.get_range(key, 10..20).await.unwrap(),
        body.slice(10..20)
    );
    assert_eq!(
        store.get_range(key, 9_990..10_000).await.unwrap(),
        body.slice(9_990..)
    );
    assert_eq!(store.get_range(key, 5..5).await.unwrap(), Bytes::new());
    let suffix = store.get_suffix(key, 8).await.unwrap();
    assert_eq!(
        (suffix.bytes, suffix.total_size),
        (body.slice(9_992..), 10_000)
    );
    assert!(matches!(
        store.get_suffix("nope/missing.parquet", 8).await,
        Err(ReadError::NotFound { .. })
    ));
    assert!(store.get_range("nope/missing.parquet", 0..4).await.is_err());

    let head = store.head(key).await.unwrap().unwrap();
    assert_eq!(
        (head.size, head.storage_class.as_str()),
        (10_000, "STANDARD")
    );
    assert_eq!(store.head("nope/missing.parquet").await.unwrap(), None);

    // Delete: gone for readers; a repeat, or a key never written, is not an error.
    store
        .put_object("tmp/gone.parquet", body.clone())
        .await
        .unwrap();
    store.delete_object("tmp/gone.parquet").await.unwrap();
    assert_eq!(store.get_object("tmp/gone.parquet").await.unwrap(), None);
    store.delete_object("tmp/gone.parquet").await.unwrap();
    store.delete_object("nope/never.parquet").await.unwrap();

    // Content type and the SHA-256 checksum S3 verified on upload.
    let raw =
        c.s3.head_object()
            .bucket(&bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
    assert_eq!(raw.content_type(), Some(PARQUET_CONTENT_TYPE));
    use base64::Engine;
    use sha2::Digest;
    let expected = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
    assert_eq!(raw.checksum_sha256(), Some(expected.as_str()));

    assert_eq!(
        store.list("decisions/tenant=bank_1/").await.unwrap(),
        vec![key.to_string()]
    );
    use futures::StreamExt;
    let puts: Vec<_> = (0..1005)
        .map(|i| {
            let store = store.clone();
            async move {
                store
                    .put_object(&format!("many/{i:05}"), Bytes::from_static(b"x"))
                    .await
            }
        })
        .collect();
    let results: Vec<_> = futures::stream::iter(puts)
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(results.iter().all(Result::is_ok));
    let listed = store.list("many/").await.unwrap();
    assert_eq!(listed.len(), 1005, "listing follows continuation tokens");
    assert!(listed.windows(2).all(|w| w[0] < w[1]));
}

async fn versions_of(c: &journal_aws::AwsClients, bucket: &str, key: &str) -> (usize, usize) {
    let out =
        c.s3.list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .send()
            .await
            .unwrap();
    let n = |k: Option<&str>| k == Some(key);
    (
        out.versions().iter().filter(|v| n(v.key())).count(),
        out.delete_markers().iter().filter(|m| n(m.key())).count(),
    )
}

#[tokio::test]
async fn objects_move_to_an_archive_class_in_place_and_purge_removes_every_version() {
    let Some(c) = common::clients("s3_archive").await else {
        return;
    };
    let bucket = common::create_bucket(&c).await;
    c.s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let store = S3ObjectStore::new(c.s3.clone(), &bucket);
    // Characters a copy source must encode.
    let key = "decisions/tenant=bank_1/date=2026-03-15/hour=10/compacted-000000000000-000000000003.parquet";
    let body = Bytes::from(vec![7u8; 300_000]);
    store.put_object(key, body.clone()).await.unwrap();

    store.set_storage_class(key, "DEEP_ARCHIVE").await.unwrap();
    let status = store.object_status(key).await.unwrap().unwrap();
    assert_eq!(
        (status.size, status.storage_class.as_str(), status.archive),
        (300_000, "DEEP_ARCHIVE", ArchiveState::Archived)
    );
    assert!(matches!(
        store.get_range(key, 0..10).await,
        Err(ReadError::Archived { .. })
    ));
    // The copy in STANDARD is not left behind as a noncurrent version.
    assert_eq!(versions_of(&c, &bucket, key).await, (1, 0));
    // Moving to the class it is in already changes nothing.
    store.set_storage_class(key, "DEEP_ARCHIVE").await.unwrap();
    assert_eq!(versions_of(&c, &bucket, key).await, (1, 0));

    // A restore makes it readable again.
    store.request_restore(key, 1).await.unwrap();
    let restored = store.object_status(key).await.unwrap().unwrap();
    assert!(
        matches!(
            restored.archive,
            ArchiveState::Restoring | ArchiveState::Restored { .. }
        ),
        "{restored:?}"
    );

    // Purge: every version and delete marker goes, a longer key beside it stays.
    let beside = format!("{key}.bak");
    store.put_object(&beside, body.clone()).await.unwrap();
    store.put_object(key, body.clone()).await.unwrap();
    store.delete_object(key).await.unwrap();
    assert_eq!(versions_of(&c, &bucket, key).await, (2, 1));
    assert_eq!(store.purge(key).await.unwrap(), 3);
    assert_eq!(versions_of(&c, &bucket, key).await, (0, 0));
    assert_eq!(store.purge(key).await.unwrap(), 0);
    assert_eq!(store.get_object(&beside).await.unwrap(), Some(body));
}
