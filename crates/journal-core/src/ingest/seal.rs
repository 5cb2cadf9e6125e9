//! Turning a validated producer record into its stored form.
//!
//! The raw subject id becomes `subject_ref` (tenant-keyed HMAC) and never goes further. Raw
//! features become `features_hmac`, and — where the tenant's policy keeps them and the record
//! has a subject — an AES-256-GCM blob under the subject's data key, so erasure can shred them.

use crate::canonical;
use crate::features_crypto::{self, DataKey};
use crate::keys::TenantKeys;
use crate::record::{CanonicalRecord, Record};
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
    /// Canonical bytes of `record` as sealed (what the leaf hash covers, and where its
    /// free-form columns' text lies), computed once with the content MAC. `record` must not be
    /// changed after sealing.
    pub(super) canonical: CanonicalRecord,
}

impl SealedRecord {
    /// RFC 8785 bytes of the stored record (equal to `self.record.canonical_bytes()`).
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.canonical.bytes
    }
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
        // One canonical form serves the HMAC and, where kept, the sealed plaintext.
        let plain =
            canonical::map_to_vec(&features).map_err(|e| rejection("features", e.to_string()))?;
        let hmac = keys.features_hmac_of_canonical(&plain);
        if let Some(sent) = &record.features_hmac {
            if *sent != hmac {
                return Err(rejection(
                    "features_hmac",
                    "does not match the HMAC of the features sent with it",
                ));
            }
        }
        if let Some(key) = data_key {
            let aad = features_crypto::aad(&record.tenant_id, record.record_id(), &hmac);
            sealed = Some(features_crypto::seal(key, &aad, &plain));
        }
        record.features_hmac = Some(hmac);
    }
    record.subject_ref = subject_ref;
    record.received_at = Some(received_at);
    let (canonical, content_mac) = stored_bytes_and_mac(&record, keys)?;
    Ok(SealedRecord {
        record,
        content_mac,
        features_sealed: sealed,
        canonical,
    })
}

/// The canonical bytes of a stored record and its content MAC, from one serialization: the
/// content is those bytes without the `received_at` member.
fn stored_bytes_and_mac(
    record: &Record,
    keys: &TenantKeys,
) -> Result<(CanonicalRecord, String), Rejection> {
    let canonical = record
        .canonical_record()
        .map_err(|e| rejection("record", e.to_string()))?;
    let bytes = &canonical.bytes;
    let mac = match &canonical.received_at {
        Some(cut) => keys.content_mac_of_parts(&[&bytes[..cut.start], &bytes[cut.end..]]),
        None => keys.content_mac(bytes),
    };
    Ok((canonical, mac))
}

/// The content fingerprint of a stored record (as [`seal_record`] computed it), for recovery
/// from rows read back from a file.
pub fn content_mac_of_stored(record: &Record, keys: &TenantKeys) -> Result<String, Rejection> {
    stored_bytes_and_mac(record, keys).map(|(_, mac)| mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MasterKey;

    #[test]
    fn one_serialization_gives_the_stored_bytes_and_the_content_mac() {
        let keys = MasterKey::from_bytes(vec![3u8; 32])
            .unwrap()
            .tenant_keys("t1");
        let text = r#"{"schema_version":1,"kind":"decision","decision_id":"d1","tenant_id":"t1",
            "occurred_at":"2026-03-15T10:23:45.123Z","subject":{"id":"u1"},
            "model":{"name":"m","version":"1","artifact_sha256":"a"},
            "features":{"b":2,"a":[1.5]},"outputs":[{"label":"l","score":0.5}],
            "decision":"approve","risk_tier":"low","context":{"received_at":"not this one"}}"#;
        let record: Record = serde_json::from_str(text).unwrap();
        let at = Timestamp::parse("2026-03-15T10:23:46Z").unwrap();
        let sealed = seal_record(record, &keys, None, at).unwrap();
        assert_eq!(
            sealed.canonical_bytes(),
            sealed.record.canonical_bytes().unwrap()
        );
        let mut content = sealed.record.clone();
        content.received_at = None;
        assert_eq!(
            sealed.content_mac,
            keys.content_mac(&content.canonical_bytes().unwrap())
        );
        assert_eq!(
            content_mac_of_stored(&sealed.record, &keys).unwrap(),
            sealed.content_mac
        );
        assert_eq!(
            sealed.record.features_hmac.as_deref(),
            Some(
                keys.features_hmac_of_canonical(br#"{"a":[1.5],"b":2}"#)
                    .as_str()
            )
        );
    }
}
