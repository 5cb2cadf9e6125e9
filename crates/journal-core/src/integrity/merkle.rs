//! RFC 6962 §2.1 Merkle Tree Hash over leaf hashes, with audit (inclusion) paths.
//!
//! MTH({}) = SHA-256(""); MTH of one leaf is the leaf hash; otherwise, with k the largest power
//! of two smaller than n, `MTH(D[n]) = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))`.

use sha2::{Digest, Sha256};

pub type Hash32 = [u8; 32];

pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The tree hash of `leaves` (already leaf-hashed).
///
/// Computed bottom-up level by level, which yields the same tree as the recursive definition:
/// carrying an odd last node up unchanged reproduces RFC 6962's left-balanced split.
pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    if leaves.is_empty() {
        return Sha256::digest([]).into();
    }
    let mut level: Vec<Hash32> = leaves.to_vec();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [l, r] => next.push(node_hash(l, r)),
                [one] => next.push(*one),
                _ => unreachable!(),
            }
        }
        level = next;
    }
    level[0]
}

/// RFC 6962 §2.1.1 audit path for leaf `index` in `leaves`; `None` if out of range.
pub fn inclusion_proof(leaves: &[Hash32], index: usize) -> Option<Vec<Hash32>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(leaves, index, &mut path);
    Some(path)
}

fn path_into(leaves: &[Hash32], m: usize, out: &mut Vec<Hash32>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path_into(&leaves[..k], m, out);
        out.push(merkle_root(&leaves[k..]));
    } else {
        path_into(&leaves[k..], m - k, out);
        out.push(merkle_root(&leaves[..k]));
    }
}

/// Checks an audit path (RFC 9162 §2.1.3.2 algorithm, equivalent for RFC 6962 trees).
pub fn verify_inclusion(
    leaf: &Hash32,
    index: u64,
    tree_size: u64,
    proof: &[Hash32],
    root: &Hash32,
) -> bool {
    root_from_path(leaf, index, tree_size, proof).is_some_and(|r| r == *root)
}

/// The root an audit path leads to from `leaf` (RFC 9162 §2.1.3.2), or `None` if the path does
/// not fit a tree of `tree_size`. For the path of a tree's own leaf this is the tree's root, in
/// O(log n) hashes instead of the n of [`merkle_root`].
pub fn root_from_path(
    leaf: &Hash32,
    index: u64,
    tree_size: u64,
    proof: &[Hash32],
) -> Option<Hash32> {
    if index >= tree_size {
        return None;
    }
    let (mut fn_, mut sn) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight inputs of the RFC 6962 reference test data (certificate-transparency).
    fn rfc_leaves() -> Vec<Hash32> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|d| {
            let mut hasher = Sha256::new();
            hasher.update([0u8]);
            hasher.update(hex::decode(d).unwrap());
            hasher.finalize().into()
        })
        .collect()
    }

    #[test]
    fn roots_match_rfc6962_test_vectors() {
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = rfc_leaves();
        for (n, want) in roots.iter().enumerate() {
            assert_eq!(
                hex::encode(merkle_root(&leaves[..n + 1])),
                *want,
                "size {}",
                n + 1
            );
        }
        assert_eq!(
            hex::encode(merkle_root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn inclusion_proofs_match_rfc6962_test_vectors() {
        let leaves = rfc_leaves();
        let cases: &[(usize, usize, &[&str])] = &[
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, want) in cases {
            let tree = &leaves[..*size];
            let proof = inclusion_proof(tree, *index).unwrap();
            let got: Vec<String> = proof.iter().map(hex::encode).collect();
            assert_eq!(got, *want, "leaf {index} of {size}");
            let root = merkle_root(tree);
            assert!(verify_inclusion(
                &tree[*index],
                *index as u64,
                *size as u64,
                &proof,
                &root
            ));
        }
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails() {
        let leaves: Vec<Hash32> = (0u8..37).map(|i| Sha256::digest([i]).into()).collect();
        for n in 1..leaves.len() {
            let tree = &leaves[..n];
            let root = merkle_root(tree);
            for i in 0..n {
                let proof = inclusion_proof(tree, i).unwrap();
                assert!(verify_inclusion(
                    &tree[i], i as u64, n as u64, &proof, &root
                ));
                assert!(!verify_inclusion(
                    &leaves[36],
                    i as u64,
                    n as u64,
                    &proof,
                    &root
                ));
                if n > 1 {
                    let wrong = (i + 1) % n;
                    assert!(!verify_inclusion(
                        &tree[i],
                        wrong as u64,
                        n as u64,
                        &proof,
                        &root
                    ));
                }
            }
        }
        assert!(inclusion_proof(&leaves[..3], 3).is_none());
    }

    #[test]
    fn a_leafs_path_leads_to_the_tree_root() {
        let leaves: Vec<Hash32> = (0u16..300)
            .map(|i| Sha256::digest(i.to_be_bytes()).into())
            .collect();
        for n in (1..70).chain([128, 255, 256, 257, 300]) {
            let tree = &leaves[..n];
            let root = merkle_root(tree);
            for i in 0..n {
                let proof = inclusion_proof(tree, i).unwrap();
                let from_path = root_from_path(&tree[i], i as u64, n as u64, &proof);
                assert_eq!(from_path, Some(root), "n={n} i={i}");
            }
            let proof = inclusion_proof(tree, 0).unwrap();
            assert_eq!(root_from_path(&tree[0], n as u64, n as u64, &proof), None);
            if n > 2 {
                // A path too long for the tree leads nowhere.
                let mut long = proof.clone();
                long.push(root);
                assert_eq!(root_from_path(&tree[0], 0, n as u64, &long), None);
            }
        }
    }
}
