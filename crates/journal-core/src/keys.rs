//! Tenant keys for the keyed hashes ingest computes.
//!
//! One master secret (held in Secrets Manager, read once at start) yields an independent key per
//! tenant and purpose by HMAC-SHA256(master, label), so adding a tenant needs no secret change
//! and a key of one tenant says nothing about another's.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::canonical::{self, CanonicalError};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("tenant key secret is not JSON with a string field `master_key`: {0}")]
    BadSecret(String),
    #[error("tenant key secret `master_key` is {0} bytes; at least 32 are required")]
    ShortKey(usize),
}

/// The master secret. Never printed: `Debug` is redacted.
pub struct MasterKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, KeyError> {
        if bytes.len() < 32 {
            return Err(KeyError::ShortKey(bytes.len()));
        }
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// Parses the secret string `{"version":1,"master_key":"…"}`.
    pub fn from_secret_json(secret: &str) -> Result<Self, KeyError> {
        let v: Value =
            serde_json::from_str(secret).map_err(|e| KeyError::BadSecret(e.to_string()))?;
        let key = v
            .get("master_key")
            .and_then(Value::as_str)
            .ok_or_else(|| KeyError::BadSecret("field `master_key` missing".into()))?;
        Self::from_bytes(key.as_bytes().to_vec())
    }

    pub fn tenant_keys(&self, tenant_id: &str) -> TenantKeys {
        let derive = |purpose: &str| {
            let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
            mac.update(b"decision-journal/v1/");
            mac.update(purpose.as_bytes());
            mac.update(b"/");
            mac.update(tenant_id.as_bytes());
            let key: Zeroizing<[u8; 32]> = Zeroizing::new(mac.finalize().into_bytes().into());
            HmacSha256::new_from_slice(key.as_slice()).expect("HMAC takes any key length")
        };
        TenantKeys {
            subject: derive("subject-ref"),
            features: derive("features-hmac"),
            content: derive("content-mac"),
            suppression: derive("erasure-suppression"),
        }
    }
}

/// Per-tenant keys, one per purpose so that no MAC can stand in for another.
/// A tenant's four HMAC keys, held as keyed HMAC states: each MAC clones a state instead of
/// hashing the padded key again (two SHA-256 blocks saved per MAC, three MACs per record).
/// The states are key-equivalent and, unlike the derived key bytes, not zeroized on drop.
#[derive(Clone)]
pub struct TenantKeys {
    subject: HmacSha256,
    features: HmacSha256,
    content: HmacSha256,
    suppression: HmacSha256,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKeys(<redacted>)")
    }
}

/// Hex HMAC-SHA256 under `key` of the concatenation of `parts`.
fn mac_hex(keyed: &HmacSha256, parts: &[&[u8]]) -> String {
    let mut mac = keyed.clone();
    for part in parts {
        mac.update(part);
    }
    lower_hex(&mac.finalize().into_bytes())
}

/// Lower-case hex of `bytes` (what `hex::encode` gives, without its per-character collecting).
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xF)]));
    }
    text
}

impl TenantKeys {
    /// `subject_ref` = HMAC-SHA256(tenant subject key, raw subject id), hex.
    pub fn subject_ref(&self, subject_id: &str) -> String {
        mac_hex(&self.subject, &[subject_id.as_bytes()])
    }

    /// `features_hmac` = HMAC-SHA256(tenant features key, canonical features), hex.
    pub fn features_hmac(&self, features: &Map<String, Value>) -> Result<String, CanonicalError> {
        let bytes = canonical::map_to_vec(features)?;
        Ok(self.features_hmac_of_canonical(&bytes))
    }

    /// [`Self::features_hmac`] from the features' canonical bytes, when the caller has them.
    pub fn features_hmac_of_canonical(&self, canonical_bytes: &[u8]) -> String {
        mac_hex(&self.features, &[canonical_bytes])
    }

    /// Keyed fingerprint of a record's content, used to tell a redelivery (same content) from a
    /// conflicting reuse of an id (different content). Keyed so it reveals nothing guessable.
    pub fn content_mac(&self, canonical_bytes: &[u8]) -> String {
        self.content_mac_of_parts(&[canonical_bytes])
    }

    /// [`Self::content_mac`] of the concatenation of `parts` (without building it).
    pub fn content_mac_of_parts(&self, parts: &[&[u8]]) -> String {
        mac_hex(&self.content, parts)
    }

    /// The token an erased subject is remembered by while its records may still be in flight
    /// (HMAC-SHA256 of its `subject_ref` under a key of its own, hex): equal to neither the raw
    /// id nor the ref, so the entry that holds it names nobody.
    pub fn suppression_token(&self, subject_ref: &str) -> String {
        mac_hex(&self.suppression, &[subject_ref.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn master() -> MasterKey {
        MasterKey::from_secret_json(
            r#"{"version":1,"master_key":"0123456789abcdef0123456789abcdef"}"#,
        )
        .unwrap()
    }

    #[test]
    fn keys_differ_by_tenant_and_purpose_and_are_stable() {
        let m = master();
        let a = m.tenant_keys("bank_1");
        let b = m.tenant_keys("bank_2");
        assert_eq!(
            a.subject_ref("user_1"),
            m.tenant_keys("bank_1").subject_ref("user_1")
        );
        assert_ne!(a.subject_ref("user_1"), b.subject_ref("user_1"));
        assert_ne!(a.subject_ref("x"), a.content_mac(b"x"));
        assert_eq!(a.subject_ref("user_1").len(), 64);
        // The token names neither the id nor the ref, and differs by tenant.
        let r = a.subject_ref("user_1");
        let token = a.suppression_token(&r);
        assert_eq!(token, m.tenant_keys("bank_1").suppression_token(&r));
        assert!(token != r && token != a.subject_ref(&r) && token.len() == 64);
        assert_ne!(token, b.suppression_token(&r));
    }

    #[test]
    fn features_hmac_is_over_canonical_form() {
        let k = master().tenant_keys("t");
        let one: Map<String, Value> = serde_json::from_value(json!({"b": 1.0, "a": 2})).unwrap();
        let two: Map<String, Value> = serde_json::from_str(r#"{"a":2,"b":1}"#).unwrap();
        assert_eq!(
            k.features_hmac(&one).unwrap(),
            k.features_hmac(&two).unwrap()
        );
        assert_eq!(
            k.features_hmac(&one).unwrap(),
            k.features_hmac_of_canonical(br#"{"a":2,"b":1}"#)
        );
    }

    #[test]
    fn lower_hex_matches_hex_encode() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
    }

    #[test]
    fn content_mac_of_parts_is_the_mac_of_their_concatenation() {
        let k = master().tenant_keys("t");
        assert_eq!(
            k.content_mac_of_parts(&[b"ab", b"", b"c"]),
            k.content_mac(b"abc")
        );
        assert_ne!(k.content_mac(b"abc"), k.features_hmac_of_canonical(b"abc"));
    }

    #[test]
    fn rejects_weak_or_malformed_secrets_without_echoing_them() {
        assert!(matches!(
            MasterKey::from_secret_json(r#"{"master_key":"short"}"#),
            Err(KeyError::ShortKey(5))
        ));
        let err = MasterKey::from_secret_json("not json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not JSON"));
        assert_eq!(format!("{:?}", master()), "MasterKey(<redacted>)");
    }
}
