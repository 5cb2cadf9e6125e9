//! Restores asked for by readers, so retention can follow them: a restored copy is readable
//! until S3 drops it; an object restored for good (copied back to a hot class by hand) is moved
//! back to its archive class.
//!
//! Replay asks S3 for a restore when a lookup meets an archived file
//! ([`request_restore_tracked`]) and leaves a marker object beside the journal
//! (`retention/restores/<the file's key>.json`). Every retention run reads the tenant's markers.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::layout::DECISIONS_PREFIX;
use crate::ports::{PortError, RangedObjectStore};
use crate::timestamp::Timestamp;

pub const RESTORES_PREFIX: &str = "retention/restores/";

pub fn restore_marker_key(file_key: &str) -> String {
    let rest = file_key.strip_prefix(DECISIONS_PREFIX).unwrap_or(file_key);
    let stem = rest.strip_suffix(".parquet").unwrap_or(rest);
    format!("{RESTORES_PREFIX}{stem}.json")
}

/// Prefix of a tenant's markers.
pub fn restore_markers_prefix(tenant_id: &str) -> String {
    format!("{RESTORES_PREFIX}tenant={tenant_id}/")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreMarker {
    pub file_key: String,
    pub requested_at: Timestamp,
    pub days: u32,
}

/// Asks S3 for a temporary copy of an archived file and records the request for retention.
pub async fn request_restore_tracked<S: RangedObjectStore>(
    store: &S,
    file_key: &str,
    days: u32,
    now: Timestamp,
) -> Result<(), PortError> {
    store.request_restore(file_key, days).await?;
    let marker = RestoreMarker {
        file_key: file_key.to_string(),
        requested_at: now,
        days,
    };
    store
        .put_object(
            &restore_marker_key(file_key),
            Bytes::from(serde_json::to_vec(&marker).expect("marker serializes")),
        )
        .await
}
