use super::*;
use crate::integrity::chain::{tests::header, HEADER_VERSION};
use crate::integrity::leaf::leaf_hash;
use crate::record::{Kind, ModelRef, Output, Record};
use crate::timestamp::Timestamp;

fn record(i: u32) -> Record {
    let t = Timestamp::parse("2026-03-15T10:00:00Z").unwrap();
    Record {
        schema_version: 1,
        kind: Kind::Decision,
        decision_id: format!("d{i:04}"),
        outcome_id: None,
        review_id: None,
        tenant_id: "bank_1".into(),
        occurred_at: Timestamp::from_millis(t.millis() + i64::from(i)).unwrap(),
        received_at: Some(t),
        caller: None,
        subject: None,
        subject_ref: Some(format!("{i:064x}")),
        model: Some(ModelRef {
            name: "m".into(),
            version: "1".into(),
            artifact_sha256: "a".repeat(64),
        }),
        dataset_manifest_sha256: None,
        features: None,
        features_hmac: None,
        outputs: Some(vec![Output {
            label: "approve".into(),
            score: 0.5 + f64::from(i) / 1e4,
        }]),
        decision: Some("approve".into()),
        confidence: Some(0.9),
        threshold: None,
        rationale: None,
        explanation_ref: None,
        action: None,
        risk_tier: None,
        steps: None,
        llm: None,
        outcome: None,
        review: None,
        sampling_rate: None,
        context: None,
    }
}

/// A sealed block of `n` rows and its header (seq 0).
fn block(n: u32) -> (BlockHeader, Vec<JournalRow>) {
    let rows: Vec<JournalRow> = (0..n)
        .map(|i| {
            let record = record(i);
            let salt = [i as u8; 16];
            let leaf_hash = leaf_hash(&salt, &record.canonical_bytes().unwrap());
            JournalRow {
                record,
                block_id: "B0".into(),
                leaf_index: i,
                salt,
                leaf_hash,
                features_sealed: None,
            }
        })
        .collect();
    let leaves: Vec<Hash32> = rows.iter().map(|r| r.leaf_hash).collect();
    let mut h = header(0, GENESIS_PREV_HASH);
    h.merkle_root = hex::encode(merkle_root(&leaves));
    h.count = u64::from(n);
    (h, rows)
}

fn chain(n: u64) -> Vec<BlockHeader> {
    let mut out: Vec<BlockHeader> = Vec::new();
    for seq in 0..n {
        let prev = out
            .last()
            .map_or(GENESIS_PREV_HASH.to_string(), |h| h.block_hash());
        out.push(header(seq, &prev));
    }
    out
}

fn head_of(chain: &[BlockHeader]) -> ChainHead {
    ChainHead::of(chain.last().unwrap())
}

#[test]
fn intact_chain_and_block_verify_clean() {
    let c = chain(6);
    assert_eq!(verify_chain(&c, Some(&head_of(&c))), vec![]);
    let (h, rows) = block(11);
    assert_eq!(verify_block(&h, Some(&rows)), vec![]);
    assert_eq!(verify_chain(&[], None), vec![]);
    assert_eq!(h.version, HEADER_VERSION);
}

#[test]
fn gaps_of_any_length_are_reported_as_ranges() {
    let c = chain(10);
    let head = head_of(&c);
    // Two consecutive blocks gone (the CloudTrail validator once missed exactly this).
    let kept: Vec<_> = c
        .iter()
        .filter(|h| h.seq != 4 && h.seq != 5)
        .cloned()
        .collect();
    let faults = verify_chain(&kept, Some(&head));
    assert_eq!(
        faults,
        vec![Fault::MissingBlocks {
            from_seq: 4,
            to_seq: 5
        }]
    );
    assert!(faults[0].to_string().contains("4..=5 (2 blocks)"));
    // The first block, and the newest blocks up to the head.
    let faults = verify_chain(&c[1..7], Some(&head));
    assert_eq!(
        faults,
        vec![
            Fault::MissingBlocks {
                from_seq: 0,
                to_seq: 0
            },
            Fault::MissingBlocks {
                from_seq: 7,
                to_seq: 9
            },
        ]
    );
    assert_eq!(verify_chain(&c, None), vec![Fault::MissingHead]);
}

#[test]
fn altered_or_substituted_block_breaks_the_next_link() {
    let mut c = chain(5);
    c[2].count += 1;
    let faults = verify_chain(&c, Some(&head_of(&chain(5))));
    assert!(
        matches!(&faults[..], [Fault::BrokenLink { seq: 3, .. }]),
        "{faults:?}"
    );
    // Altering the newest block is caught by the head.
    let mut c = chain(5);
    let head = head_of(&c);
    c[4].merkle_root = "00".repeat(32);
    let faults = verify_chain(&c, Some(&head));
    assert!(
        matches!(&faults[..], [Fault::HeadMismatch { seq: 4, .. }]),
        "{faults:?}"
    );
    // A block beyond the head, and two headers for one seq.
    let c = chain(5);
    let faults = verify_chain(&c, Some(&ChainHead::of(&c[3])));
    assert_eq!(
        faults,
        vec![Fault::BlockAfterHead {
            seq: 4,
            head_seq: 3
        }]
    );
    let mut twin = c[2].clone();
    twin.count = 99;
    let mut with_twin = c.clone();
    with_twin.push(twin);
    let faults = verify_chain(&with_twin, Some(&head_of(&c)));
    assert!(
        faults.contains(&Fault::ConflictingBlocks { seq: 2 }),
        "{faults:?}"
    );
}

#[test]
fn altered_row_is_named() {
    let (h, mut rows) = block(8);
    rows[5].record.decision = Some("deny".into());
    let faults = verify_block(&h, Some(&rows));
    assert_eq!(
        faults,
        vec![Fault::AlteredRow {
            seq: 0,
            block_id: "B0".into(),
            leaf_index: 5,
            record_id: "d0005".into()
        }]
    );
}

#[test]
fn forged_self_consistent_row_breaks_the_root() {
    let (h, mut rows) = block(8);
    rows[2].record.decision = Some("deny".into());
    rows[2].leaf_hash = leaf_hash(&rows[2].salt, &rows[2].record.canonical_bytes().unwrap());
    let faults = verify_block(&h, Some(&rows));
    assert!(
        matches!(&faults[..], [Fault::RootMismatch { seq: 0, .. }]),
        "{faults:?}"
    );
}

#[test]
fn missing_duplicate_extra_and_reordered_rows() {
    let (h, rows) = block(8);
    let mut missing = rows.clone();
    missing.remove(3);
    assert_eq!(
        verify_block(&h, Some(&missing)),
        vec![Fault::MissingRow {
            seq: 0,
            block_id: "B0".into(),
            leaf_index: 3
        }]
    );

    let mut reordered = rows.clone();
    reordered.swap(1, 6);
    let faults = verify_block(&h, Some(&reordered));
    assert_eq!(
        faults,
        vec![Fault::ReorderedRows {
            seq: 0,
            block_id: "B0".into(),
            position: 2,
            leaf_index: 2
        }]
    );

    // Leaf indices swapped along with the rows: the order looks right but the root cannot match.
    let mut permuted = rows.clone();
    permuted.swap(1, 6);
    permuted[1].leaf_index = 1;
    permuted[6].leaf_index = 6;
    let faults = verify_block(&h, Some(&permuted));
    assert!(
        matches!(&faults[..], [Fault::RootMismatch { .. }]),
        "{faults:?}"
    );

    let mut dup = rows.clone();
    dup.push(rows[7].clone());
    assert!(verify_block(&h, Some(&dup)).contains(&Fault::DuplicateRow {
        seq: 0,
        block_id: "B0".into(),
        leaf_index: 7
    }));

    let mut extra = rows.clone();
    let mut row = rows[0].clone();
    row.leaf_index = 8;
    extra.push(row);
    assert!(matches!(
        &verify_block(&h, Some(&extra))[..],
        [Fault::ExtraRow { leaf_index: 8, .. }]
    ));
}

#[test]
fn substituted_or_missing_file() {
    let (h, mut rows) = block(4);
    for r in &mut rows {
        r.block_id = "OTHER".into();
    }
    let faults = verify_block(&h, Some(&rows));
    assert_eq!(
        faults
            .iter()
            .filter(|f| matches!(f, Fault::ForeignRow { .. }))
            .count(),
        4
    );
    assert_eq!(
        faults
            .iter()
            .filter(|f| matches!(f, Fault::MissingRow { .. }))
            .count(),
        4
    );
    assert_eq!(
        verify_block(&h, None),
        vec![Fault::MissingFile {
            seq: 0,
            block_id: "B0".into(),
            file_key: h.file_key.clone()
        }]
    );
}

#[test]
fn erased_leaves_stand_in_for_their_rows_and_a_row_left_behind_is_a_fault() {
    let (h, rows) = block(7);
    let erased: Vec<(u32, Hash32)> = [2u32, 5]
        .iter()
        .map(|&i| (i, rows[i as usize].leaf_hash))
        .collect();
    let kept: Vec<JournalRow> = rows
        .iter()
        .filter(|r| r.leaf_index != 2 && r.leaf_index != 5)
        .cloned()
        .collect();
    let leaves: Vec<StoredLeaf> = kept.iter().map(StoredLeaf::of_row).collect();
    assert_eq!(verify_block_erased(&h, Some(&leaves), &erased), []);
    // Without the receipt the same rows are two missing rows.
    assert_eq!(verify_block_leaves(&h, Some(&leaves)).len(), 2);
    // A receipt that lies about a leaf's hash breaks the root.
    let mut forged = erased.clone();
    forged[0].1 = [0u8; 32];
    assert!(matches!(
        verify_block_erased(&h, Some(&leaves), &forged)[..],
        [Fault::RootMismatch { .. }]
    ));
    // A row the receipt removed is still there.
    let all: Vec<StoredLeaf> = rows.iter().map(StoredLeaf::of_row).collect();
    let faults = verify_block_erased(&h, Some(&all), &erased);
    assert_eq!(
        faults,
        [2, 5].map(|leaf_index| Fault::ErasedRowPresent {
            seq: 0,
            block_id: "B0".into(),
            leaf_index
        })
    );
    // A leaf beyond the block.
    let faults = verify_block_erased(
        &h,
        Some(&leaves),
        &[(2, erased[0].1), (5, erased[1].1), (9, [1u8; 32])],
    );
    assert!(
        matches!(faults[..], [Fault::BadErasure { leaf_index: 9, .. }]),
        "{faults:?}"
    );
}
