//! Documents signed with the checkpoint key (tombstones, erasure receipts, run reports): the
//! document's RFC 8785 bytes, signed as checkpoints are, so that one public key verifies every
//! piece of evidence the journal produces, offline.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::checkpoint::{CheckpointPublicKey, CheckpointSigner, SIGNING_ALGORITHM};
use crate::ports::PortError;

/// KMS signs RAW messages of at most 4096 bytes; longer lists are bound by a digest instead.
pub const MAX_SIGNED_BYTES: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed<T> {
    pub document: T,
    /// Standard base64 of the DER ECDSA signature over SHA-256(canonical bytes of `document`).
    pub signature: String,
    /// Always [`SIGNING_ALGORITHM`].
    pub algorithm: String,
}

/// The canonical bytes of a document (what is signed).
pub fn canonical_bytes<T: Serialize>(document: &T) -> Result<Vec<u8>, PortError> {
    canonical::to_vec_of(document).map_err(|e| PortError::permanent("canonicalize document", e))
}

/// Hex SHA-256 of the canonical bytes of `value` (binds a list that is not signed directly).
pub fn digest_hex<T: Serialize>(value: &T) -> Result<String, PortError> {
    Ok(hex::encode(Sha256::digest(canonical_bytes(value)?)))
}

impl<T: Serialize + DeserializeOwned> Sealed<T> {
    pub async fn sign<G: CheckpointSigner>(document: T, signer: &G) -> Result<Self, PortError> {
        let bytes = canonical_bytes(&document)?;
        if bytes.len() > MAX_SIGNED_BYTES {
            return Err(PortError::permanent(
                "sign document",
                format!(
                    "{} canonical bytes, more than KMS signs ({MAX_SIGNED_BYTES})",
                    bytes.len()
                ),
            ));
        }
        let der = signer.sign(bytes).await?;
        Ok(Self {
            document,
            signature: BASE64.encode(der),
            algorithm: SIGNING_ALGORITHM.to_string(),
        })
    }

    /// Why the signature does not hold, if it does not.
    pub fn signature_fault(&self, key: &CheckpointPublicKey) -> Option<String> {
        if self.algorithm != SIGNING_ALGORITHM {
            return Some(format!("unknown signing algorithm {:?}", self.algorithm));
        }
        let Ok(der) = BASE64.decode(&self.signature) else {
            return Some("signature is not base64".into());
        };
        let bytes = match canonical_bytes(&self.document) {
            Ok(b) => b,
            Err(e) => return Some(e.to_string()),
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        key.verify_digest(&digest, &der)
            .err()
            .map(|e| e.to_string())
    }
}
