//! [`ObjectStore`] on one S3 bucket, plus the ranged reads and listings replay, compaction and
//! retention need.

use std::ops::Range;

use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, Delete, GlacierJobParameters, MetadataDirective, ObjectIdentifier,
    RestoreRequest, StorageClass, Tier,
};
use bytes::Bytes;
use journal_core::ports::{
    ArchiveState, ArchiveStore, ObjectStatus, ObjectStore, ObjectSuffix, PortError,
    RangedObjectStore, ReadError,
};

use crate::errors::{code_of, sdk_error, status_of};

pub const PARQUET_CONTENT_TYPE: &str = "application/vnd.apache.parquet";

/// What HeadObject says about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// `STANDARD` when S3 does not name one.
    pub storage_class: String,
    /// The `x-amz-restore` header of an archived object (`ongoing-request="true"` or the expiry).
    pub restore: Option<String>,
}

#[derive(Clone, Debug)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3ObjectStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    fn target(&self, key: &str) -> String {
        format!("(s3://{}/{key})", self.bucket)
    }

    /// Size and storage class of an object, `None` when it does not exist.
    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key))]
    pub async fn head(&self, key: &str) -> Result<Option<ObjectHead>, PortError> {
        const OP: &str = "head object";
        let out = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) => {
                // HEAD answers carry no body, so a missing key is only a bare 404.
                if matches!(err.as_service_error(), Some(HeadObjectError::NotFound(_)))
                    || status_of(&err) == Some(404)
                {
                    return Ok(None);
                }
                return Err(sdk_error(OP, &self.target(key), &err));
            }
        };
        Ok(Some(ObjectHead {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            storage_class: out
                .storage_class()
                .map_or("STANDARD", |c| c.as_str())
                .to_string(),
            restore: out.restore().map(str::to_string),
        }))
    }

    /// Every key under `prefix`, in S3's (lexicographic) order.
    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, prefix = %prefix))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        const OP: &str = "list objects";
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error(OP, &self.target(prefix), &e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match out.next_continuation_token() {
                Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => return Ok(keys),
            }
        }
    }

    /// The first key under `prefix` after `start_after`: one ListObjectsV2 with `MaxKeys` 1.
    pub async fn first_key_after(
        &self,
        prefix: &str,
        start_after: &str,
    ) -> Result<Option<String>, PortError> {
        const OP: &str = "list objects";
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .start_after(start_after)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &self.target(prefix), &e))?;
        Ok(out
            .contents()
            .first()
            .and_then(|o| o.key())
            .map(str::to_string))
    }
}

async fn collect(op: &str, target: &str, body: ByteStream) -> Result<Bytes, PortError> {
    body.collect()
        .await
        .map(|data| data.into_bytes())
        .map_err(|e| PortError::transient(op, format!("{target}: reading the body failed: {e}")))
}

impl ObjectStore for S3ObjectStore {
    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key, bytes = body.len()))]
    async fn put_object(&self, key: &str, body: Bytes) -> Result<(), PortError> {
        const OP: &str = "put object";
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            // S3 verifies the whole-object SHA-256 and stores it for later integrity checks.
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if key.ends_with(".parquet") {
            put = put.content_type(PARQUET_CONTENT_TYPE);
        }
        put.send()
            .await
            .map_err(|e| sdk_error(OP, &self.target(key), &e))?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key))]
    async fn get_object(&self, key: &str) -> Result<Option<Bytes>, PortError> {
        const OP: &str = "get object";
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) => {
                if matches!(err.as_service_error(), Some(GetObjectError::NoSuchKey(_)))
                    || code_of(&err) == Some("NoSuchKey")
                {
                    return Ok(None);
                }
                return Err(sdk_error(OP, &self.target(key), &err));
            }
        };
        collect(OP, &self.target(key), out.body).await.map(Some)
    }

    /// On the versioned journal bucket this adds a delete marker; S3 answers 204 for a key
    /// that does not exist, so a repeat is harmless.
    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key))]
    async fn delete_object(&self, key: &str) -> Result<(), PortError> {
        const OP: &str = "delete object";
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &self.target(key), &e))?;
        Ok(())
    }
}

/// Largest object one CopyObject copies (bigger ones need a multipart copy).
const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Percent-encodes a key for `x-amz-copy-source` (unreserved characters and `/` kept).
fn encode_copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl ArchiveStore for S3ObjectStore {
    /// CopyObject onto itself with the new class, then deletes the version copied from: on the
    /// versioned bucket it would otherwise stay, billed in its old class, until the lifecycle
    /// rule expires noncurrent versions.
    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key, storage_class))]
    async fn set_storage_class(&self, key: &str, storage_class: &str) -> Result<(), PortError> {
        const OP: &str = "set storage class";
        let head = self.head(key).await?.ok_or_else(|| {
            PortError::permanent(OP, format!("{}: no such object", self.target(key)))
        })?;
        if head.storage_class == storage_class {
            return Ok(());
        }
        if head.size > MAX_COPY_BYTES {
            return Err(PortError::permanent(
                OP,
                format!(
                    "{}: {} bytes is more than one CopyObject copies",
                    self.target(key),
                    head.size
                ),
            ));
        }
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(key)
            .copy_source(encode_copy_source(&self.bucket, key))
            .storage_class(StorageClass::from(storage_class))
            .metadata_directive(MetadataDirective::Copy)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &self.target(key), &e))?;
        if let (Some(old), Some(new)) = (out.copy_source_version_id(), out.version_id()) {
            if old != new {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .version_id(old)
                    .send()
                    .await
                    .map_err(|e| sdk_error(OP, &self.target(key), &e))?;
            }
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key))]
    async fn purge(&self, key: &str) -> Result<u64, PortError> {
        const OP: &str = "purge object versions";
        let mut versions: Vec<ObjectIdentifier> = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| sdk_error(OP, &self.target(key), &e))?;
            let found = out
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id()))
                .chain(
                    out.delete_markers()
                        .iter()
                        .map(|m| (m.key(), m.version_id())),
                );
            for (k, version) in found {
                // The prefix also lists longer keys that start with this one.
                if k == Some(key) {
                    versions.push(
                        ObjectIdentifier::builder()
                            .key(key)
                            .set_version_id(version.map(str::to_string))
                            .build()
                            .map_err(|e| PortError::permanent(OP, e))?,
                    );
                }
            }
            if out.is_truncated() != Some(true) {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_string);
            version_marker = out.next_version_id_marker().map(str::to_string);
        }
        let count = versions.len() as u64;
        for chunk in versions.chunks(1000) {
            let delete = Delete::builder()
                .set_objects(Some(chunk.to_vec()))
                .quiet(true)
                .build()
                .map_err(|e| PortError::permanent(OP, e))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| sdk_error(OP, &self.target(key), &e))?;
            if let Some(e) = out.errors().first() {
                return Err(PortError::transient(
                    OP,
                    format!(
                        "{}: version {} not deleted: {} {}",
                        self.target(key),
                        e.version_id().unwrap_or("-"),
                        e.code().unwrap_or("-"),
                        e.message().unwrap_or("")
                    ),
                ));
            }
        }
        Ok(count)
    }
}

/// Classes whose objects must be restored before a GET (Glacier Instant Retrieval reads directly).
fn is_archive_class(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

/// Reads S3's `x-amz-restore` header: `ongoing-request="true"`, or `"false"` with an expiry.
fn archive_state(storage_class: &str, restore: Option<&str>) -> ArchiveState {
    if !is_archive_class(storage_class) {
        return ArchiveState::Online;
    }
    match restore {
        None => ArchiveState::Archived,
        Some(h) if h.contains("ongoing-request=\"true\"") => ArchiveState::Restoring,
        Some(h) => ArchiveState::Restored {
            expires: h
                .split("expiry-date=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string),
        },
    }
}

/// Total object size from `Content-Range: bytes a-b/total`.
fn total_from_content_range(header: Option<&str>) -> Option<u64> {
    header?.rsplit('/').next()?.trim().parse().ok()
}

impl S3ObjectStore {
    async fn get_ranged(
        &self,
        op: &str,
        key: &str,
        range: String,
    ) -> Result<(Bytes, Option<u64>), ReadError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(range)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) => {
                let code = code_of(&err);
                if matches!(err.as_service_error(), Some(GetObjectError::NoSuchKey(_)))
                    || code == Some("NoSuchKey")
                {
                    return Err(ReadError::NotFound {
                        key: key.to_string(),
                    });
                }
                if matches!(
                    err.as_service_error(),
                    Some(GetObjectError::InvalidObjectState(_))
                ) || code == Some("InvalidObjectState")
                {
                    let storage_class = match err.as_service_error() {
                        Some(GetObjectError::InvalidObjectState(e)) => e
                            .storage_class()
                            .map_or("GLACIER", |c| c.as_str())
                            .to_string(),
                        _ => "GLACIER".to_string(),
                    };
                    return Err(ReadError::Archived {
                        key: key.to_string(),
                        storage_class,
                    });
                }
                return Err(sdk_error(op, &self.target(key), &err).into());
            }
        };
        let total = total_from_content_range(out.content_range());
        let bytes = collect(op, &self.target(key), out.body).await?;
        Ok((bytes, total))
    }
}

impl RangedObjectStore for S3ObjectStore {
    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key, len))]
    async fn get_suffix(&self, key: &str, len: u64) -> Result<ObjectSuffix, ReadError> {
        const OP: &str = "get object suffix";
        let (bytes, total) = self
            .get_ranged(OP, key, format!("bytes=-{}", len.max(1)))
            .await?;
        // Without Content-Range (a short object answered whole), the body is the object.
        let total_size = total.unwrap_or(bytes.len() as u64);
        Ok(ObjectSuffix { bytes, total_size })
    }

    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key, start = range.start, end = range.end))]
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, ReadError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        Ok(self.get_ranged("get object range", key, header).await?.0)
    }

    async fn object_status(&self, key: &str) -> Result<Option<ObjectStatus>, PortError> {
        Ok(self.head(key).await?.map(|h| ObjectStatus {
            size: h.size,
            archive: archive_state(&h.storage_class, h.restore.as_deref()),
            storage_class: h.storage_class,
        }))
    }

    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key, days))]
    async fn request_restore(&self, key: &str, days: u32) -> Result<(), PortError> {
        const OP: &str = "restore object";
        let request = RestoreRequest::builder()
            .days(i32::try_from(days).unwrap_or(i32::MAX))
            .glacier_job_parameters(
                GlacierJobParameters::builder()
                    .tier(Tier::Standard)
                    .build()
                    .map_err(|e| PortError::permanent(OP, e))?,
            )
            .build();
        match self
            .client
            .restore_object()
            .bucket(&self.bucket)
            .key(key)
            .restore_request(request)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Asking twice is fine: the first restore is running.
            Err(err) if code_of(&err) == Some("RestoreAlreadyInProgress") => Ok(()),
            Err(err) => Err(sdk_error(OP, &self.target(key), &err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_header_and_content_range_are_read() {
        assert_eq!(archive_state("STANDARD", None), ArchiveState::Online);
        assert_eq!(archive_state("GLACIER_IR", None), ArchiveState::Online);
        assert_eq!(archive_state("GLACIER", None), ArchiveState::Archived);
        assert_eq!(
            archive_state("DEEP_ARCHIVE", Some("ongoing-request=\"true\"")),
            ArchiveState::Restoring
        );
        assert_eq!(
            archive_state(
                "GLACIER",
                Some("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"")
            ),
            ArchiveState::Restored {
                expires: Some("Fri, 21 Dec 2012 00:00:00 GMT".into())
            }
        );
        assert_eq!(
            total_from_content_range(Some("bytes 9992-9999/10000")),
            Some(10_000)
        );
        assert_eq!(total_from_content_range(None), None);
    }
}
