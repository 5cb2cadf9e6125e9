//! [`ObjectStore`] on one S3 bucket, plus the ranged reads and listings replay, compaction and
//! retention need.

use std::ops::Range;

use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use bytes::Bytes;
use journal_core::ports::{ObjectStore, PortError};

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

    /// Bytes `range.start..range.end` of an object (a ranged GET). Errors when the object is
    /// missing or the range starts past its end.
    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key, start = range.start, end = range.end))]
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, PortError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        self.get_ranged("get object range", key, header).await
    }

    /// The last `len` bytes of an object (e.g. a Parquet footer), without knowing its size.
    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, key = %key, len))]
    pub async fn get_suffix(&self, key: &str, len: u64) -> Result<Bytes, PortError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        self.get_ranged("get object suffix", key, format!("bytes=-{len}"))
            .await
    }

    async fn get_ranged(&self, op: &str, key: &str, range: String) -> Result<Bytes, PortError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(range)
            .send()
            .await
            .map_err(|e| sdk_error(op, &self.target(key), &e))?;
        collect(op, &self.target(key), out.body).await
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
}
