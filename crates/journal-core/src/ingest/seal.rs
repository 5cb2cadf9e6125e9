//! Turning a validated producer record into its stored form.
//!
//! The raw subject id becomes `subject_ref` (tenant-keyed HMAC) and never goes further. Raw
//! features become `features_hmac`, and — where the tenant's policy keeps them and the record
//! has a subject — an AES-256-GCM blob under the subject's data key, so erasure can shred them.

use serde_json::Value;

use crate::canonical;
use crate::features_crypto::{self, DataKey};
use crate::keys::TenantKeys;
use crate::record::Record;
use crate::timestamp::Timestamp;
use crate::validate::Rejection;

/// A record ready to be written, with what ingest derived from it.
#[derive(Clone, Debug)]
pub struct SealedRecord {
    /// Stored form: no `subject`, no `features`, `received_at` set.
    pub record: Record,
    /// Keyed fingerprint of the content (stored form without `received_at`): equal for a
    /// redelivery, different for an id reused with other content.
    pub content_mac: String,
    pub features_sealed: Option<Vec<u8>>,
}

fn rejection(field: &str, reason: impl Into<String>) -> Rejection {
    Rejection {
        record_index: None,
        field: field.into(),
        reason: reason.into(),
    }
}

/// Does the record need the subject's data key to be sealed (raw features kept under a subject)?
pub fn needs_data_key(record: &Record, keep_raw_features: bool) -> bool {
    keep_raw_features && record.features.is_some() && record.subject.is_some()
}

/// Seals one validated record. `data_key` must be the subject's key when [`needs_data_key`].
pub fn seal_record(
    mut record: Record,
    keys: &TenantKeys,
    data_key: Option<&DataKey>,
    received_at: Timestamp,
) -> Result<SealedRecord, Rejection> {
    let subject_ref = record.subject.take().map(|s| keys.subject_ref(&s.id));
    let mut sealed = None;
    if let Some(features) = record.features.take() {
        let hmac = keys
            .features_hmac(&features)
            .map_err(|e| rejection("features", e.to_string()))?;
        if let Some(sent) = &record.features_hmac {
            if *sent != hmac {
                return Err(rejection(
                    "features_hmac",
                    "does not match the HMAC of the features sent with it",
                ));
            }
        }
        if let Some(key) = data_key {
            let plain = canonical::to_vec(&Value::Object(features))
                .map_err(|e| rejection("features", e.to_string()))?;
            let aad = features_crypto::aad(&record.tenant_id, record.record_id(), &hmac);
            sealed = Some(features_crypto::seal(key, &aad, &plain));
        }
        record.features_hmac = Some(hmac);
    }
    record.subject_ref = subject_ref;
    record.received_at = None;
    let content = record
        .canonical_bytes()
        .map_err(|e| rejection("record", e.to_string()))?;
    let content_mac = keys.content_mac(&content);
    record.received_at = Some(received_at);
    Ok(SealedRecord {
        record,
        content_mac,
        features_sealed: sealed,
    })
}

/// The content fingerprint of a stored record (as [`seal_record`] computed it), for recovery
/// from rows read back from a file.
pub fn content_mac_of_stored(record: &Record, keys: &TenantKeys) -> Result<String, Rejection> {
    let mut r = record.clone();
    r.received_at = None;
    let content = r
        .canonical_bytes()
        .map_err(|e| rejection("record", e.to_string()))?;
    Ok(keys.content_mac(&content))
}
