//! Who signs checkpoints (a port, implemented with KMS in `journal-aws`), an in-process signer
//! for tests, and offline verification with only the public key.

use std::future::Future;

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use sha2::{Digest, Sha256};

use crate::ports::PortError;

/// Signs checkpoints with an ECDSA P-256 key over SHA-256 of the canonical bytes (KMS `Sign`,
/// `MessageType=RAW`, `SigningAlgorithm=ECDSA_SHA_256`: KMS hashes the message itself; a
/// checkpoint is far below RAW's 4096-byte limit).
pub trait CheckpointSigner: Send + Sync {
    /// The key recorded in each checkpoint (for KMS, the key ARN).
    fn key_id(&self) -> &str;
    /// ASN.1 DER ECDSA signature over SHA-256(`message`).
    fn sign(&self, message: Vec<u8>) -> impl Future<Output = Result<Vec<u8>, PortError>> + Send;
}

/// A public key that cannot be used to verify checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a DER SubjectPublicKeyInfo of an ECDSA P-256 key: {0}")]
pub struct PublicKeyError(pub String);

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature is not base64")]
    NotBase64,
    #[error("signature is not an ASN.1 DER ECDSA signature")]
    NotDer,
    #[error("signature does not match the checkpoint and key")]
    Mismatch,
}

/// The verifying half of a checkpoint key, from the DER SubjectPublicKeyInfo KMS
/// `GetPublicKey` returns. Verification is offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointPublicKey {
    key: VerifyingKey,
}

impl CheckpointPublicKey {
    pub fn from_der(spki_der: &[u8]) -> Result<Self, PublicKeyError> {
        VerifyingKey::from_public_key_der(spki_der)
            .map(|key| Self { key })
            .map_err(|e| PublicKeyError(e.to_string()))
    }

    pub fn to_der(&self) -> Vec<u8> {
        self.key
            .to_public_key_der()
            .expect("a P-256 point always encodes")
            .as_bytes()
            .to_vec()
    }

    /// Checks a DER signature over a SHA-256 digest. High-S signatures are accepted, as KMS
    /// and OpenSSL produce them.
    pub fn verify_digest(&self, digest: &[u8; 32], der: &[u8]) -> Result<(), SignatureError> {
        let signature = Signature::from_der(der).map_err(|_| SignatureError::NotDer)?;
        self.key
            .verify_prehash(digest, &signature)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// An in-process P-256 key derived from a seed, for tests (never for real checkpoints).
#[derive(Clone)]
pub struct MemorySigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for MemorySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl MemorySigner {
    /// The same seed always gives the same key.
    pub fn from_seed(seed: &[u8]) -> Self {
        let mut counter = 0u32;
        let key = loop {
            let mut h = Sha256::new();
            h.update(b"decision-journal test checkpoint key\0");
            h.update(seed);
            h.update(counter.to_be_bytes());
            // A digest that is zero or not below the group order (odds ~2^-32) is skipped.
            if let Ok(key) = SigningKey::from_slice(&h.finalize()) {
                break key;
            }
            counter += 1;
        };
        let key_id = format!("memory:{}", &hex::encode(Sha256::digest(seed))[..16]);
        Self { key, key_id }
    }

    pub fn public_key(&self) -> CheckpointPublicKey {
        CheckpointPublicKey {
            key: *self.key.verifying_key(),
        }
    }

    /// DER SubjectPublicKeyInfo, as KMS `GetPublicKey` returns it.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.public_key().to_der()
    }

    /// Deterministic (RFC 6979) DER signature over a digest.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Vec<u8> {
        let signature: DerSignature = self
            .key
            .sign_prehash(digest)
            .expect("a 32-byte digest always signs");
        signature.as_bytes().to_vec()
    }
}

impl CheckpointSigner for MemorySigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, PortError> {
        Ok(self.sign_digest(&Sha256::digest(&message).into()))
    }
}
