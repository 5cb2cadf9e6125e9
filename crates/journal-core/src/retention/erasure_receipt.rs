//! The receipt of one subject's erasure: which leaves of which blocks were removed, when, and
//! whether the subject's key was shredded, signed like a checkpoint. It names no personal data:
//! no subject id or ref and no record id, only chain positions and the leaf hashes (salted
//! hashes whose salts went with the rows), so the chain still verifies and the erasure itself is
//! provable without saying whom it was about.

use serde::{Deserialize, Serialize};

use super::sealed::{digest_hex, Sealed};
use crate::checkpoint::CheckpointPublicKey;
use crate::integrity::Hash32;
use crate::ports::PortError;
use crate::timestamp::Timestamp;

pub const RECEIPT_VERSION: u32 = 1;
pub const RECEIPTS_PREFIX: &str = "erasures/";

pub fn receipt_key(tenant_id: &str, receipt_id: &str) -> String {
    format!("{RECEIPTS_PREFIX}tenant={tenant_id}/{receipt_id}.json")
}

/// The signed part; the block list is bound by `blocks_sha256`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureReceipt {
    pub version: u32,
    /// A random ULID: nothing in it derives from the subject.
    pub receipt_id: String,
    pub tenant_id: String,
    pub erased_at: Timestamp,
    pub rows_removed: u64,
    pub files_rewritten: u64,
    /// The subject's data key was deleted (sealed raw features cannot be decrypted).
    pub key_shredded: bool,
    pub block_count: u64,
    pub blocks_sha256: String,
    pub key_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasedLeaf {
    pub leaf_index: u32,
    /// Hex leaf hash, as the block's Merkle tree holds it.
    pub leaf_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasedBlock {
    pub seq: u64,
    pub block_id: String,
    pub leaves: Vec<ErasedLeaf>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptFile {
    pub sealed: Sealed<ErasureReceipt>,
    pub blocks: Vec<ErasedBlock>,
}

impl ReceiptFile {
    pub fn receipt(&self) -> &ErasureReceipt {
        &self.sealed.document
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a receipt serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// What is wrong with the receipt itself: the list must be the one signed; with a key, the
    /// signature must hold.
    pub fn fault(&self, key: Option<&CheckpointPublicKey>) -> Option<String> {
        let r = self.receipt();
        if r.version != RECEIPT_VERSION {
            return Some(format!("unknown receipt version {}", r.version));
        }
        if r.block_count != self.blocks.len() as u64 {
            return Some(format!(
                "signed for {} blocks, lists {}",
                r.block_count,
                self.blocks.len()
            ));
        }
        match digest_hex(&self.blocks) {
            Ok(d) if d == r.blocks_sha256 => {}
            Ok(d) => {
                return Some(format!(
                    "the listed blocks digest to {d}, the signed blocks_sha256 is {}",
                    r.blocks_sha256
                ))
            }
            Err(e) => return Some(e.to_string()),
        }
        key.and_then(|k| self.sealed.signature_fault(k))
            .map(|e| format!("signature: {e}"))
    }

    /// The removed leaves of block `seq`, for [`crate::integrity::verify_block_erased`];
    /// `Err` names a leaf hash that is not 32 bytes of hex.
    pub fn leaves_of(&self, seq: u64) -> Result<Vec<(u32, Hash32)>, String> {
        let mut out = Vec::new();
        for b in self.blocks.iter().filter(|b| b.seq == seq) {
            for l in &b.leaves {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&l.leaf_hash, &mut hash)
                    .map_err(|e| format!("block {seq} leaf {}: {e}", l.leaf_index))?;
                out.push((l.leaf_index, hash));
            }
        }
        Ok(out)
    }
}

/// Builds the signed part over `blocks` (sorted by seq, leaves by index, here).
#[allow(clippy::too_many_arguments)]
pub fn receipt_for(
    receipt_id: &str,
    tenant_id: &str,
    erased_at: Timestamp,
    files_rewritten: u64,
    key_shredded: bool,
    mut blocks: Vec<ErasedBlock>,
    key_id: &str,
) -> Result<(ErasureReceipt, Vec<ErasedBlock>), PortError> {
    blocks.sort_by_key(|b| b.seq);
    for b in &mut blocks {
        b.leaves.sort_by_key(|l| l.leaf_index);
    }
    let receipt = ErasureReceipt {
        version: RECEIPT_VERSION,
        receipt_id: receipt_id.to_string(),
        tenant_id: tenant_id.to_string(),
        erased_at,
        rows_removed: blocks.iter().map(|b| b.leaves.len() as u64).sum(),
        files_rewritten,
        key_shredded,
        block_count: blocks.len() as u64,
        blocks_sha256: digest_hex(&blocks)?,
        key_id: key_id.to_string(),
    };
    Ok((receipt, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::MemorySigner;

    #[tokio::test]
    async fn a_receipt_is_signed_binds_its_leaves_and_names_no_subject() {
        let signer = MemorySigner::from_seed(b"receipt");
        let blocks = vec![
            ErasedBlock {
                seq: 7,
                block_id: "B7".into(),
                leaves: vec![
                    ErasedLeaf {
                        leaf_index: 4,
                        leaf_hash: "ab".repeat(32),
                    },
                    ErasedLeaf {
                        leaf_index: 1,
                        leaf_hash: "cd".repeat(32),
                    },
                ],
            },
            ErasedBlock {
                seq: 3,
                block_id: "B3".into(),
                leaves: vec![ErasedLeaf {
                    leaf_index: 0,
                    leaf_hash: "ef".repeat(32),
                }],
            },
        ];
        let at = Timestamp::parse("2027-01-01T00:00:00Z").unwrap();
        let (receipt, blocks) =
            receipt_for("01JRECEIPT", "bank_1", at, 2, true, blocks, "test-key").unwrap();
        assert_eq!((receipt.rows_removed, receipt.block_count), (3, 2));
        let file = ReceiptFile {
            sealed: Sealed::sign(receipt, &signer).await.unwrap(),
            blocks,
        };
        assert_eq!(file.fault(Some(&signer.public_key())), None);
        let back = ReceiptFile::from_bytes(&file.to_bytes()).unwrap();
        assert_eq!(back, file);
        let leaves = back.leaves_of(7).unwrap();
        assert_eq!(leaves.iter().map(|l| l.0).collect::<Vec<_>>(), [1, 4]);
        // An altered leaf breaks the bound list; another key breaks the signature.
        let mut altered = back.clone();
        altered.blocks[1].leaves[0].leaf_hash = "00".repeat(32);
        assert!(altered.fault(None).unwrap().contains("digest"));
        let other = MemorySigner::from_seed(b"other");
        assert!(back
            .fault(Some(&other.public_key()))
            .unwrap()
            .starts_with("signature"));
    }
}
