//! Leaf hash = SHA-256(0x00 ‖ salt ‖ canonical bytes).
//!
//! The 0x00 prefix is RFC 6962's leaf domain separator (nodes use 0x01), so a leaf can never be
//! passed off as an interior node. The random 16-byte salt makes the leaf a hiding commitment:
//! once a row and its salt are erased, the kept leaf hash cannot be confirmed by guessing.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub type Salt = [u8; 16];

pub fn leaf_hash(salt: &Salt, canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(salt);
    h.update(canonical);
    h.finalize().into()
}

pub fn new_salt() -> Salt {
    let mut s = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salt_and_content_both_change_the_leaf() {
        let a = leaf_hash(&[0; 16], b"{}");
        assert_ne!(a, leaf_hash(&[1; 16], b"{}"));
        assert_ne!(a, leaf_hash(&[0; 16], b"{ }"));
        assert_eq!(a, leaf_hash(&[0; 16], b"{}"));
        assert_ne!(new_salt(), new_salt());
    }
}
