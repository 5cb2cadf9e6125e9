//! Sealing raw features under a per-subject data key (AES-256-GCM).
//!
//! The data key is generated and wrapped by KMS and kept only in wrapped form beside the index;
//! deleting that wrapped key (erasure) makes every sealed feature object of the subject
//! unreadable while the rows, their `features_hmac` and the hash chain stay intact. The AAD binds
//! each ciphertext to its tenant, record and `features_hmac`, so it cannot be moved to another row.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
/// Format tag so the sealing scheme can change without ambiguity.
const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed features are malformed ({0})")]
    Malformed(&'static str),
    #[error("sealed features do not open with this key and record (wrong key, moved or altered)")]
    Open,
}

/// A plaintext 256-bit data key, wiped on drop.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }
}

/// Associated data: what a sealed blob belongs to.
pub fn aad(tenant_id: &str, record_id: &str, features_hmac: &str) -> Vec<u8> {
    [tenant_id, record_id, features_hmac]
        .join("\u{0}")
        .into_bytes()
}

/// `version ‖ nonce ‖ ciphertext+tag`.
pub fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key.0.as_ref()).expect("32-byte key");
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of in-memory data cannot fail");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

pub fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() < 1 + NONCE_LEN + 16 {
        return Err(SealError::Malformed("too short"));
    }
    if sealed[0] != VERSION {
        return Err(SealError::Malformed("unknown version"));
    }
    let cipher = Aes256Gcm::new_from_slice(key.0.as_ref()).expect("32-byte key");
    let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_LEN]);
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: &sealed[1 + NONCE_LEN..],
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_record() {
        let k = DataKey::from_bytes(&[7u8; 32]).unwrap();
        let ad = aad("t", "d1", "ab");
        let sealed = seal(&k, &ad, br#"{"x":1}"#);
        assert_eq!(&open(&k, &ad, &sealed).unwrap()[..], br#"{"x":1}"#);
        assert_eq!(
            open(&k, &aad("t", "d2", "ab"), &sealed),
            Err(SealError::Open)
        );
        let other = DataKey::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(open(&other, &ad, &sealed), Err(SealError::Open));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(open(&k, &ad, &tampered), Err(SealError::Open));
        assert!(DataKey::from_bytes(&[1u8; 16]).is_none());
    }
}
