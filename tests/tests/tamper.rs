//! Tamper evidence against the local endpoint: a journal ingested through SQS → ingest into
//! S3 and DynamoDB, checkpointed, verified clean; then stored objects and items are changed
//! directly with the raw SDK clients, and `verify_scope` must name each change by kind and by
//! the block, row or checkpoint it hit.
//!
//! Each test deploys its own stack; its sub-cases each tamper with a different tenant, so they
//! do not see each other's damage.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use integration_tests::tamper_tools::Fixture;
use journal_core::checkpoint::{checkpoint_key, CheckpointWitness, WitnessCache};
use journal_core::columnar;
use journal_core::integrity::Fault;
use journal_core::replay::audit::{kind, AuditReport, NamedFault, VerifyScope};
use journal_core::replay::{Finder, Lookup, RowReader};
use journal_core::timestamp::Timestamp;
use serde_json::Value;

fn kinds(r: &AuditReport) -> Vec<&str> {
    r.faults.iter().map(|f| f.kind.as_str()).collect()
}

/// The one named fault of `kind`.
fn only<'a>(r: &'a AuditReport, kind: &'a str) -> &'a NamedFault {
    let found: Vec<&NamedFault> = r.of_kind(kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in {:#?}", r.faults);
    found[0]
}

fn show(r: &AuditReport) {
    for f in &r.faults {
        println!("  {f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn altered_missing_and_reordered_rows_are_named_by_block_and_leaf() -> Result<()> {
    let fx = Fixture::new("tamper-rows", 101).await?;
    let [a, b, c] = &fx.tenants[..] else {
        panic!("three tenants: {:?}", fx.tenants)
    };

    // Altered row: one field of one row changed, its stored leaf hash kept.
    let block = fx.middle_block(a, 3).await?;
    let mut target = (0u64, String::new());
    fx.rewrite_file(&block, |rows| {
        let i = rows
            .iter()
            .position(|r| r.record.decision.is_some())
            .unwrap_or(0);
        let row = &mut rows[i];
        match &mut row.record.decision {
            Some(d) => d.push_str("-edited"),
            None => row.record.rationale = Some("edited".into()),
        }
        target = (
            u64::from(row.leaf_index),
            row.record.record_id().to_string(),
        );
    })
    .await?;
    let r = fx.verify(a).await?;
    show(&r);
    assert!(!r.ok);
    assert_eq!(kinds(&r), [kind::ALTERED_ROW, kind::FILE_CHANGED], "{r:#?}");
    let f = only(&r, kind::ALTERED_ROW);
    assert_eq!(f.seq, Some(block.seq));
    assert_eq!(f.leaf_index, Some(target.0));
    assert_eq!(f.record_id.as_deref(), Some(target.1.as_str()));
    assert!(f.message.contains(&target.1), "{f}");
    assert_eq!(only(&r, kind::FILE_CHANGED).seq, Some(block.seq));
    // The chain is intact: still covered by the checkpoints.
    assert_eq!(r.covered_seq, r.head_seq);

    // Missing row: the file rewritten without one row.
    let block = fx.middle_block(b, 3).await?;
    let mut dropped = 0u64;
    fx.rewrite_file(&block, |rows| {
        dropped = u64::from(rows.remove(1).leaf_index);
    })
    .await?;
    let r = fx.verify(b).await?;
    show(&r);
    assert_eq!(
        kinds(&r),
        [kind::MISSING_ROWS, kind::FILE_CHANGED],
        "{r:#?}"
    );
    let f = only(&r, kind::MISSING_ROWS);
    assert_eq!(
        (f.seq, f.leaf_index, f.to_leaf_index),
        (Some(block.seq), Some(dropped), Some(dropped))
    );

    // Reordered rows: two rows swapped (each keeps its leaf index).
    let block = fx.middle_block(c, 3).await?;
    let mut first_out_of_place = 0u64;
    fx.rewrite_file(&block, |rows| {
        rows.swap(0, 1);
        first_out_of_place = u64::from(rows[1].leaf_index);
    })
    .await?;
    let r = fx.verify(c).await?;
    show(&r);
    assert_eq!(
        kinds(&r),
        [kind::REORDERED_ROWS, kind::FILE_CHANGED],
        "{r:#?}"
    );
    let f = only(&r, kind::REORDERED_ROWS);
    assert_eq!(f.seq, Some(block.seq));
    assert_eq!(f.leaf_index, Some(first_out_of_place));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn substituted_file_and_altered_block_header_are_named() -> Result<()> {
    let fx = Fixture::new("tamper-files", 202).await?;
    let [a, b, ..] = &fx.tenants[..] else {
        panic!("tenants: {:?}", fx.tenants)
    };

    // Substituted file: another block's file copied over this block's key.
    let blocks = fx.blocks(a).await?;
    let victim = fx.middle_block(a, 1).await?;
    let source = blocks
        .iter()
        .rev()
        .find(|h| h.seq != victim.seq)
        .context("another block")?;
    fx.copy_object(&source.file_key, &victim.file_key).await?;
    let r = fx.verify(a).await?;
    show(&r);
    assert_eq!(kinds(&r), [kind::SUBSTITUTED_FILE], "{r:#?}");
    let f = &r.faults[0];
    assert_eq!(f.seq, Some(victim.seq));
    assert_eq!(f.file_key.as_deref(), Some(victim.file_key.as_str()));
    assert!(
        f.message
            .contains(&format!("block {} ({})", source.seq, source.block_id)),
        "{f}"
    );
    // Underneath: a foreign row per row of the copied file and the changed bytes.
    let foreign = r
        .chain_faults
        .iter()
        .filter(|x| matches!(x, Fault::ForeignRow { seq, .. } if *seq == victim.seq))
        .count() as u64;
    assert_eq!(foreign, source.count);

    // Altered block: the merkle_root in a stored header rewritten.
    let block = fx.middle_block(b, 1).await?;
    fx.edit_block_item(b, block.seq, |h| {
        h.insert("merkle_root".into(), Value::String("00".repeat(32)));
    })
    .await?;
    let r = fx.verify(b).await?;
    show(&r);
    let f = only(&r, kind::ALTERED_BLOCK);
    assert_eq!(f.seq, Some(block.seq), "{f}");
    assert_eq!(f.block_id.as_deref(), Some(block.block_id.as_str()));
    assert_eq!(only(&r, kind::ROOT_MISMATCH).seq, Some(block.seq));
    assert!(r
        .chain_faults
        .iter()
        .any(|x| matches!(x, Fault::BrokenLink { seq, .. } if *seq == block.seq + 1)));
    // The checkpoints no longer vouch for the altered block.
    assert!(
        r.unvouched.iter().any(|s| s.contains(block.seq)),
        "{:?}",
        r.unvouched
    );
    assert!(r.covered_seq.is_none_or(|c| c < block.seq), "{r:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_chain_items_are_named_gaps_of_one_and_of_three() -> Result<()> {
    let fx = Fixture::new("tamper-gaps", 303).await?;
    let [a, b, c] = &fx.tenants[..] else {
        panic!("three tenants: {:?}", fx.tenants)
    };

    // One chain item deleted: a missing block, a gap of one.
    let block = fx.middle_block(a, 1).await?;
    fx.delete_block_item(a, block.seq).await?;
    let r = fx.verify(a).await?;
    show(&r);
    let f = only(&r, kind::MISSING_BLOCKS);
    assert_eq!((f.seq, f.to_seq), (Some(block.seq), Some(block.seq)));
    assert!(
        f.message
            .contains(&format!("block {} is missing", block.seq)),
        "{f}"
    );
    assert!(r.covered_seq.is_none_or(|c| c < block.seq), "{r:?}");
    assert!(r.of_kind(kind::ALTERED_BLOCK).next().is_none(), "{r:#?}");

    // Three consecutive items deleted: one gap of three, not three gaps, not fewer.
    let first = fx.middle_block(b, 1).await?;
    for seq in first.seq..first.seq + 3 {
        fx.delete_block_item(b, seq).await?;
    }
    let r = fx.verify(b).await?;
    show(&r);
    let f = only(&r, kind::MISSING_BLOCKS);
    assert_eq!((f.seq, f.to_seq), (Some(first.seq), Some(first.seq + 2)));
    assert!(f.message.contains("(3 blocks)"), "{f}");
    assert!(r.covered_seq.is_none_or(|c| c < first.seq), "{r:?}");

    // The two newest items deleted, the head left alone: a gap up to the head.
    let head = head_seq(&fx, c).await?;
    fx.delete_block_item(c, head).await?;
    fx.delete_block_item(c, head - 1).await?;
    let r = fx.verify(c).await?;
    show(&r);
    let f = only(&r, kind::MISSING_BLOCKS);
    assert_eq!((f.seq, f.to_seq), (Some(head - 1), Some(head)));
    assert!(f.message.contains("up to the head"), "{f}");
    Ok(())
}

async fn head_seq(fx: &Fixture, tenant: &str) -> Result<u64> {
    fx.verify(tenant).await?.head_seq.context("a head")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_deleted_and_absent_checkpoints_are_named() -> Result<()> {
    let fx = Fixture::new("tamper-checkpoints", 404).await?;
    let [a, b, c] = &fx.tenants[..] else {
        panic!("three tenants: {:?}", fx.tenants)
    };
    let count = fx.checkpoint_counts[a];
    assert!(count >= 3, "{count}");

    // Bad signature: one byte of checkpoint 1's signature flipped, put over its key.
    fx.flip_signature_byte(a, 1).await?;
    let r = fx.verify(a).await?;
    show(&r);
    assert_eq!(kinds(&r), [kind::BAD_SIGNATURE], "{r:#?}");
    let f = only(&r, kind::BAD_SIGNATURE);
    assert_eq!(f.checkpoint, Some(1));
    assert!(f.message.contains("checkpoint 1"), "{f}");
    assert_eq!(r.valid_signatures, count - 1);
    // The other checkpoints still vouch for the whole chain.
    assert_eq!(r.covered_seq, r.head_seq);

    // Altered block list: checkpoint 0's list rewritten beside its untouched signature.
    fx.edit_block_list(a, 0, |hashes| hashes[0] = "ab".repeat(32))
        .await?;
    let r = fx.verify(a).await?;
    show(&r);
    assert_eq!(
        kinds(&r),
        [kind::BAD_SIGNATURE, kind::ALTERED_BLOCK_LIST],
        "{r:#?}"
    );
    let f = only(&r, kind::ALTERED_BLOCK_LIST);
    assert_eq!(f.checkpoint, Some(0));
    assert!(f.message.contains("digest to"), "{f}");

    // Missing checkpoint: checkpoint 1 deleted (a delete marker; the locked version stays).
    let b_count = fx.checkpoint_counts[b.as_str()];
    fx.delete_object(&checkpoint_key(b, 1)).await?;
    let r = fx.verify(b).await?;
    show(&r);
    assert_eq!(kinds(&r), [kind::MISSING_CHECKPOINTS], "{r:#?}");
    assert_eq!(only(&r, kind::MISSING_CHECKPOINTS).checkpoint, Some(1));
    assert_eq!(r.checkpoints_checked, b_count - 1);
    // Later, with nothing signed for longer than the policy allows: stale as well.
    let later = Timestamp::from_millis(Timestamp::now().millis() + 3 * 3600 * 1000)?;
    let r = fx
        .verify_scope(&VerifyScope::tenant(b.as_str()), later)
        .await?;
    show(&r);
    assert_eq!(
        kinds(&r),
        [kind::MISSING_CHECKPOINTS, kind::STALE_CHECKPOINT],
        "{r:#?}"
    );
    assert_eq!(
        only(&r, kind::STALE_CHECKPOINT).checkpoint,
        Some(b_count - 1)
    );

    // Every checkpoint of a tenant deleted: a chain with none.
    for n in 0..fx.checkpoint_counts[c.as_str()] {
        fx.delete_object(&checkpoint_key(c, n)).await?;
    }
    let r = fx.verify(c).await?;
    show(&r);
    assert_eq!(kinds(&r), [kind::NO_CHECKPOINT], "{r:#?}");
    assert_eq!(r.faults[0].seq, r.head_seq);
    assert_eq!(r.covered_seq, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_time_range_reads_only_its_blocks_but_still_reports_a_gap_before_it() -> Result<()> {
    let fx = Fixture::new("tamper-range", 505).await?;
    let a = &fx.tenants[0];
    let blocks = fx.blocks(a).await?;
    let n = blocks.len();
    assert!(n >= 9, "{n} blocks");

    // A range around two blocks in the middle of the chain, by occurred_at.
    let lo = &blocks[n / 2];
    let hi = &blocks[n / 2 + 1];
    let from = lo.first_occurred_at.min(hi.first_occurred_at);
    let to = Timestamp::from_millis(lo.last_occurred_at.max(hi.last_occurred_at).millis() + 1)?;
    let scope = VerifyScope::range(a.as_str(), Some(from), Some(to));
    let expected: Vec<u64> = blocks
        .iter()
        .filter(|h| scope.overlaps(h))
        .map(|h| h.seq)
        .collect();
    let r = fx.verify_scope(&scope, Timestamp::now()).await?;
    show(&r);
    assert!(r.ok, "{:#?}", r.faults);
    assert_eq!(r.blocks_checked, expected.len() as u64);
    assert!(
        r.blocks_checked < r.blocks_total,
        "{} of {}",
        r.blocks_checked,
        r.blocks_total
    );
    assert_eq!(r.blocks_total, n as u64);
    let checked: Vec<u64> = r
        .checked
        .iter()
        .flat_map(|s| s.from_seq..=s.to_seq)
        .collect();
    assert_eq!(checked, expected);

    // Below the range: a row altered (not read by the range check) and a chain item deleted
    // (a gap, found because every link is checked).
    let first_checked = expected[0];
    assert!(first_checked >= 2, "room below the range: {expected:?}");
    let gap = first_checked / 2;
    let altered = blocks
        .iter()
        .find(|h| h.seq < first_checked && h.seq != gap && !scope.overlaps(h))
        .context("a block below the range")?
        .clone();
    fx.rewrite_file(&altered, |rows| {
        rows[0].record.rationale = Some("edited".into());
    })
    .await?;
    fx.delete_block_item(a, gap).await?;

    let r = fx.verify_scope(&scope, Timestamp::now()).await?;
    show(&r);
    assert_eq!(r.blocks_checked, expected.len() as u64);
    assert!(r.of_kind(kind::ALTERED_ROW).next().is_none(), "{r:#?}");
    let f = only(&r, kind::MISSING_BLOCKS);
    assert_eq!((f.seq, f.to_seq), (Some(gap), Some(gap)));
    // The gap breaks what the checkpoints cover from 0 up ...
    assert!(r.covered_seq.is_none_or(|c| c < gap), "{r:?}");
    assert!(r.unvouched.iter().any(|s| s.contains(gap)), "{r:?}");
    // ... while the range itself is still linked to a checkpoint above it.
    let newest = r.newest_checkpoint.context("a checkpoint")?.seq;
    for seq in expected.iter().filter(|&&s| s <= newest) {
        assert!(
            r.unvouched.iter().all(|s| !s.contains(*seq)),
            "{seq}: {:?}",
            r.unvouched
        );
    }
    assert!(!r.ok);

    // The whole tenant finds the altered row as well.
    let r = fx.verify(a).await?;
    assert_eq!(only(&r, kind::ALTERED_ROW).seq, Some(altered.seq));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lookup_rests_on_one_index_read_and_its_checkpoint_and_names_an_altered_header_copy(
) -> Result<()> {
    let fx = Fixture::new("tamper-lookup", 606).await?;
    let a = &fx.tenants[0];
    let block = fx.middle_block(a, 2).await?;
    let rows = columnar::decode_file(fx.get_object(&block.file_key).await?)?;
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.record.record_id().to_string())
        .collect();
    let (store, index) = (&fx.j.deps.store, &fx.j.deps.index);
    let cache = WitnessCache::default();
    let der = fx.signer.public_key_der();
    let witness = CheckpointWitness::new(&fx.checkpoints, Some(der.as_slice()), &cache);
    let finder = Finder::new(store, index).with_witness(&witness);
    let lookup = |id: String| {
        let finder = &finder;
        async move {
            let mut reader = RowReader::new(store);
            let (found, linked) = finder
                .by_id_with_links(&mut reader, a, &id, Timestamp::now())
                .await?;
            let Lookup::Found(f) = found else {
                anyhow::bail!("{id}: {found:?}")
            };
            // Linked outcomes and reviews may sit in blocks another checkpoint lists.
            let (mut rests_on, mut files) = (BTreeSet::new(), BTreeSet::new());
            for l in std::iter::once(&f).chain(linked.iter().filter_map(|l| match l {
                Lookup::Found(x) => Some(x),
                _ => None,
            })) {
                rests_on.extend(l.proof.checkpoint.as_ref().map(|c| c.number));
                files.insert(l.file_key.clone());
            }
            Ok((f, reader.cost, (rests_on, files.len() as u32)))
        }
    };

    // Cold: the pointer (one Query), the file, and each checkpoint the record and its linked
    // records rest on by its locator (list + GET).
    let (f, cost, (rests_on, files)) = lookup(ids[0].clone()).await?;
    assert!(f.proof.verified, "{:?}", f.proof.faults);
    let c = f
        .proof
        .checkpoint
        .clone()
        .context("rests on a checkpoint")?;
    assert!(c.signature_verified && c.first_seq <= block.seq && block.seq <= c.seq);
    assert_eq!(
        (cost.index_reads, cost.checkpoint_requests),
        (1, 2 * rests_on.len() as u32),
        "{cost:?}"
    );
    assert!((1..=3 * files).contains(&cost.ranged_gets), "{cost:?}");
    // Warm: one index read, the checkpoints already checked (but those of linked records not
    // seen before).
    let (f, cost, (also, _)) = lookup(ids[1].clone()).await?;
    assert!(f.proof.verified && f.proof.checkpoint == Some(c.clone()));
    assert_eq!(
        (cost.index_reads, cost.checkpoint_requests),
        (1, 2 * also.difference(&rests_on).count() as u32),
        "{cost:?}"
    );

    // The index's copy of the header altered: the checkpoint does not list what it hashes to.
    fx.flip_pointer_header_bit(a, &ids[1]).await?;
    let (f, _, _) = lookup(ids[1].clone()).await?;
    assert!(!f.proof.verified && !f.proof.linked_in_chain);
    let fault = &f.proof.faults[0];
    assert!(
        fault.starts_with(&format!(
            "altered block header: block {} hashes to",
            block.seq
        )) && fault.contains(&format!(
            "checkpoint {} lists {}",
            c.number,
            block.block_hash()
        )),
        "{:?}",
        f.proof.faults
    );
    // Its neighbour's pointer is untouched and still proves.
    assert!(lookup(ids[0].clone()).await?.0.proof.verified);
    Ok(())
}
