//! DynamoIndex: the ingest protocol's conditions against a real endpoint.

use aws_sdk_dynamodb::types::AttributeValue;
use journal_aws::DynamoIndex;
use journal_core::integrity::{ChainHead, GENESIS_PREV_HASH};
use journal_core::ports::{
    AbandonOutcome, AppendOutcome, Claim, ClaimResult, FileState, IndexEntry, JournalIndex,
    PointerState, PortError, Suppression,
};

use crate::common::{self, file_key, header, pending_entry, ts};

async fn index(test: &str) -> Option<DynamoIndex> {
    let c = common::clients(test).await?;
    let table = common::create_table(&c).await;
    Some(DynamoIndex::new(c.dynamodb.clone(), table))
}

fn claim(record: &str, block: &str, mac: &str) -> Claim {
    Claim {
        tenant_id: "bank_1".into(),
        record_id: record.into(),
        content_mac: mac.into(),
        block_id: block.into(),
        file_key: file_key("bank_1", block),
        claimed_at: ts("2026-03-15T10:00:00.5Z"),
    }
}

fn existing(r: &ClaimResult) -> &journal_core::ports::ExistingPointer {
    match r {
        ClaimResult::Existing(e) => e,
        ClaimResult::Won => panic!("expected an existing pointer, got Won"),
    }
}

#[tokio::test]
async fn claims_win_once_and_report_the_existing_claim() {
    let Some(ix) = index("claims").await else {
        return;
    };
    let first = ix
        .claim(&[claim("r1", "A", "mac1"), claim("r2", "A", "mac2")])
        .await
        .unwrap();
    assert_eq!(first, vec![ClaimResult::Won, ClaimResult::Won]);

    // Redelivery (same content) and id reuse (other content), mixed with new records: results
    // come back in input order.
    let second = ix
        .claim(&[
            claim("r3", "B", "mac3"),
            claim("r1", "B", "mac1"),
            claim("r2", "B", "other"),
            claim("r4", "B", "mac4"),
        ])
        .await
        .unwrap();
    assert_eq!(second[0], ClaimResult::Won);
    assert_eq!(second[3], ClaimResult::Won);
    for (r, mac) in [(&second[1], "mac1"), (&second[2], "mac2")] {
        let e = existing(r);
        assert_eq!(e.state, PointerState::Claimed);
        assert_eq!(e.block_id, "A");
        assert_eq!(e.file_key, file_key("bank_1", "A"));
        assert_eq!(e.content_mac, mac);
        assert_eq!(e.claimed_at, ts("2026-03-15T10:00:00.500Z"));
    }

    // Many at once (bounded concurrency) still answer in input order.
    let many: Vec<Claim> = (0..50)
        .map(|i| claim(&format!("m{i}"), "C", &format!("mac{i}")))
        .collect();
    assert!(ix
        .claim(&many)
        .await
        .unwrap()
        .iter()
        .all(|r| *r == ClaimResult::Won));
    let mut again = many.clone();
    again.insert(25, claim("fresh", "D", "x"));
    let results = ix.claim(&again).await.unwrap();
    assert_eq!(results[25], ClaimResult::Won);
    for (i, r) in results.iter().enumerate().filter(|(i, _)| *i != 25) {
        let n = if i < 25 { i } else { i - 1 };
        assert_eq!(existing(r).content_mac, format!("mac{n}"));
    }

    match ix.get_pointer("bank_1", "r1").await.unwrap() {
        Some(IndexEntry::Claimed(e)) => assert_eq!(e.block_id, "A"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(ix.get_pointer("bank_1", "nope").await.unwrap(), None);
}

#[tokio::test]
async fn take_over_needs_a_claim_of_the_named_block() {
    let Some(ix) = index("take_over").await else {
        return;
    };
    ix.claim(&[claim("r1", "A", "mac1")]).await.unwrap();

    assert!(!ix.take_over(&claim("r1", "B", "mac1"), "X").await.unwrap());
    assert!(ix.take_over(&claim("r1", "B", "mac1"), "A").await.unwrap());
    match ix.get_pointer("bank_1", "r1").await.unwrap() {
        Some(IndexEntry::Claimed(e)) => {
            assert_eq!(e.block_id, "B");
            assert_eq!(e.file_key, file_key("bank_1", "B"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // The same takeover again (an SDK retry of a put that had landed) still holds.
    assert!(ix.take_over(&claim("r1", "B", "mac1"), "A").await.unwrap());
    // The first takeover moved it on: a second one from A loses.
    assert!(!ix.take_over(&claim("r1", "C", "mac1"), "A").await.unwrap());
    // No claim at all: nothing to take over (and nothing is created).
    assert!(!ix.take_over(&claim("r9", "C", "mac9"), "A").await.unwrap());
    assert_eq!(ix.get_pointer("bank_1", "r9").await.unwrap(), None);

    // Indexed pointers are final.
    let mut p = crate::pointers::pointer(0, "bank_1");
    p.record_id = "r1".into();
    p.block_id = "B".into();
    ix.write_pointers(&[p]).await.unwrap();
    assert!(!ix.take_over(&claim("r1", "C", "mac1"), "B").await.unwrap());
    let r = ix.claim(&[claim("r1", "C", "mac1")]).await.unwrap();
    assert_eq!(existing(&r[0]).state, PointerState::Indexed);
}

#[tokio::test]
async fn manifest_pending_abandoned_chained_live() {
    let Some(ix) = index("manifest").await else {
        return;
    };
    let t = "bank_1";

    let a = pending_entry(t, "A");
    assert!(ix.put_manifest_pending(&a).await.unwrap());
    // The same put again (an SDK retry of one that had landed) holds; another block's does not.
    assert!(ix.put_manifest_pending(&a).await.unwrap());
    let mut other = a.clone();
    other.block_id = "Z".into();
    assert!(!ix.put_manifest_pending(&other).await.unwrap());
    assert_eq!(
        ix.get_manifest(t, &a.file_key).await.unwrap(),
        Some(a.clone())
    );

    // pending → abandoned, keeping what the ingest recorded; abandoning again is a no-op.
    let now = ts("2026-03-15T10:05:00Z");
    assert_eq!(
        ix.abandon_manifest(t, &a.file_key, "A", now).await.unwrap(),
        AbandonOutcome::Abandoned
    );
    let abandoned = ix.get_manifest(t, &a.file_key).await.unwrap().unwrap();
    assert_eq!(abandoned.state, FileState::Abandoned);
    assert_eq!(abandoned.rows, a.rows);
    assert_eq!(abandoned.created_at, a.created_at);
    assert_eq!(
        ix.abandon_manifest(t, &a.file_key, "A", now).await.unwrap(),
        AbandonOutcome::Abandoned
    );
    // The dead ingest can no longer register the file.
    assert!(!ix.put_manifest_pending(&a).await.unwrap());

    // An ingest that died before writing its entry: abandon creates it, fenced for good.
    let b_key = file_key(t, "B");
    assert_eq!(
        ix.abandon_manifest(t, &b_key, "B", now).await.unwrap(),
        AbandonOutcome::Abandoned
    );
    let b = ix.get_manifest(t, &b_key).await.unwrap().unwrap();
    assert_eq!(
        (b.state, b.block_id.as_str(), b.rows, b.created_at),
        (FileState::Abandoned, "B", 0, now)
    );
    assert!(!ix
        .put_manifest_pending(&pending_entry(t, "B"))
        .await
        .unwrap());

    // Chained entries cannot be abandoned: the caller gets the entry instead.
    let c = pending_entry(t, "C");
    assert!(ix.put_manifest_pending(&c).await.unwrap());
    let h = header(t, 0, GENESIS_PREV_HASH, "C");
    assert_eq!(ix.append_block(&h).await.unwrap(), AppendOutcome::Appended);
    match ix.abandon_manifest(t, &c.file_key, "C", now).await.unwrap() {
        AbandonOutcome::AlreadyChained(e) => {
            assert_eq!((e.state, e.seq), (FileState::Chained, Some(0)));
            assert_eq!(e.sha256, c.sha256);
        }
        other => panic!("unexpected {other:?}"),
    }

    // chained → live (twice is fine); abandoned or missing entries cannot go live.
    ix.mark_manifest_live(t, &c.file_key).await.unwrap();
    ix.mark_manifest_live(t, &c.file_key).await.unwrap();
    assert_eq!(
        ix.get_manifest(t, &c.file_key)
            .await
            .unwrap()
            .unwrap()
            .state,
        FileState::Live
    );
    assert!(matches!(
        ix.abandon_manifest(t, &c.file_key, "C", now).await.unwrap(),
        AbandonOutcome::AlreadyChained(e) if e.state == FileState::Live
    ));
    let err = ix.mark_manifest_live(t, &a.file_key).await.unwrap_err();
    assert!(
        matches!(&err, PortError::Permanent { message, .. } if message.contains("abandoned")),
        "{err}"
    );
    assert!(ix.mark_manifest_live(t, &file_key(t, "Z")).await.is_err());

    let listed = ix.list_manifest(t, "2026-03-15").await.unwrap();
    let blocks: Vec<&str> = listed.iter().map(|e| e.block_id.as_str()).collect();
    assert_eq!(blocks, vec!["A", "B", "C"]);
    assert!(ix.list_manifest(t, "2026-03-16").await.unwrap().is_empty());
    assert!(ix
        .list_manifest("other", "2026-03-15")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(ix.get_manifest(t, &file_key(t, "Z")).await.unwrap(), None);
    assert!(ix.get_manifest(t, "not/a/partitioned/key").await.is_err());
}

#[tokio::test]
async fn append_block_serializes_the_chain_and_respects_the_fence() {
    let Some(ix) = index("append").await else {
        return;
    };
    let t = "bank_1";
    assert_eq!(ix.chain_head(t).await.unwrap(), None);

    let mut headers = Vec::new();
    let mut prev = GENESIS_PREV_HASH.to_string();
    for seq in 0..12u64 {
        let block = format!("B{seq:02}");
        assert!(ix
            .put_manifest_pending(&pending_entry(t, &block))
            .await
            .unwrap());
        let h = header(t, seq, &prev, &block);
        assert_eq!(
            ix.append_block(&h).await.unwrap(),
            AppendOutcome::Appended,
            "seq {seq}"
        );
        assert_eq!(ix.chain_head(t).await.unwrap(), Some(ChainHead::of(&h)));
        let m = ix.get_manifest(t, &h.file_key).await.unwrap().unwrap();
        assert_eq!((m.state, m.seq), (FileState::Chained, Some(seq)));
        prev = h.block_hash();
        headers.push(h);
    }
    assert_eq!(ix.list_blocks(t).await.unwrap(), headers);
    let head = ix.chain_head(t).await.unwrap().unwrap();

    // A block built on a stale head (seq taken, or a second genesis) moves nothing.
    for (seq, block) in [(5u64, "S1"), (0, "S2")] {
        let stale = pending_entry(t, block);
        assert!(ix.put_manifest_pending(&stale).await.unwrap());
        let h = header(t, seq, "00", block);
        assert_eq!(ix.append_block(&h).await.unwrap(), AppendOutcome::HeadMoved);
        let m = ix.get_manifest(t, &stale.file_key).await.unwrap().unwrap();
        assert_eq!(
            m.state,
            FileState::Pending,
            "a failed append leaves the manifest alone"
        );
    }
    // A seq beyond the head (the previous block is missing) is a moved head as well.
    assert!(ix
        .put_manifest_pending(&pending_entry(t, "S3"))
        .await
        .unwrap());
    assert_eq!(
        ix.append_block(&header(t, 14, &prev, "S3")).await.unwrap(),
        AppendOutcome::HeadMoved
    );
    assert_eq!(ix.chain_head(t).await.unwrap(), Some(head.clone()));

    // Fenced: the manifest entry was abandoned by a takeover, or never written.
    let fenced = pending_entry(t, "F1");
    assert!(ix.put_manifest_pending(&fenced).await.unwrap());
    ix.abandon_manifest(t, &fenced.file_key, "F1", ts("2026-03-15T10:10:00Z"))
        .await
        .unwrap();
    assert_eq!(
        ix.append_block(&header(t, 12, &prev, "F1")).await.unwrap(),
        AppendOutcome::Fenced
    );
    assert_eq!(
        ix.append_block(&header(t, 12, &prev, "F2")).await.unwrap(),
        AppendOutcome::Fenced
    );
    // Fenced and stale at once: the fence wins (the block must never be chained).
    assert_eq!(
        ix.append_block(&header(t, 3, &prev, "F1")).await.unwrap(),
        AppendOutcome::Fenced
    );
    assert_eq!(ix.chain_head(t).await.unwrap(), Some(head));

    // Repeating an append that already landed (a lost response) reports it as appended.
    assert_eq!(
        ix.append_block(&headers[11]).await.unwrap(),
        AppendOutcome::Appended
    );

    // Two ingests racing for the same seq: exactly one wins.
    for block in ["R1", "R2"] {
        assert!(ix
            .put_manifest_pending(&pending_entry(t, block))
            .await
            .unwrap());
    }
    let (h1, h2) = (header(t, 12, &prev, "R1"), header(t, 12, &prev, "R2"));
    let (o1, o2) = tokio::join!(ix.append_block(&h1), ix.append_block(&h2));
    let mut outcomes = [o1.unwrap(), o2.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        [AppendOutcome::Appended, AppendOutcome::HeadMoved]
    );
    assert_eq!(ix.list_blocks(t).await.unwrap().len(), 13);

    // Chains are independent.
    assert_eq!(ix.list_blocks("bank_2").await.unwrap(), vec![]);
}

#[tokio::test]
async fn compaction_manifest_moves_and_leases() {
    let Some(ix) = index("compaction_manifest").await else {
        return;
    };
    // An ingest file made live, and a merged output recorded as intent.
    let input = pending_entry("bank_1", "B1");
    assert!(ix.put_manifest_pending(&input).await.unwrap());
    let mut live = input.clone();
    live.state = FileState::Live;
    live.seq = Some(4);
    ix.put_manifest(&live).await.unwrap();
    let out_key = "decisions/tenant=bank_1/date=2026-03-15/hour=10/compacted-000000000004-000000000009.parquet";
    let mut out = pending_entry("bank_1", "B1");
    out.file_key = out_key.into();
    out.seq = Some(4);
    out.last_seq = Some(9);
    out.merged_from = vec![input.file_key.clone(), file_key("bank_1", "B2")];
    ix.put_manifest(&out).await.unwrap();
    assert_eq!(
        ix.get_manifest("bank_1", out_key).await.unwrap(),
        Some(out.clone())
    );

    // live → compacted once; again into the same output is fine, into another is refused.
    let after = ts("2026-03-16T10:00:00Z");
    assert!(ix
        .mark_manifest_compacted("bank_1", &input.file_key, out_key, after)
        .await
        .unwrap());
    assert!(ix
        .mark_manifest_compacted("bank_1", &input.file_key, out_key, after)
        .await
        .unwrap());
    assert!(!ix
        .mark_manifest_compacted("bank_1", &input.file_key, "other", after)
        .await
        .unwrap());
    let moved = ix
        .get_manifest("bank_1", &input.file_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.state, FileState::Compacted);
    assert_eq!(
        (moved.compacted_into.as_deref(), moved.delete_after),
        (Some(out_key), Some(after))
    );
    ix.mark_manifest_deleted("bank_1", &input.file_key)
        .await
        .unwrap();
    let gone = ix
        .get_manifest("bank_1", &input.file_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.state, FileState::Deleted);
    // A live file cannot be marked deleted.
    assert!(ix.mark_manifest_deleted("bank_1", out_key).await.is_err());

    // Leases: one holder at a time until it expires; renewable by its holder.
    let (t0, t1, t2) = (
        ts("2026-03-15T10:00:00Z"),
        ts("2026-03-15T10:15:00Z"),
        ts("2026-03-15T10:16:00Z"),
    );
    assert!(ix
        .acquire_lease("compact#bank_1#2026-03-15#10", "a", t0, t1)
        .await
        .unwrap());
    assert!(!ix
        .acquire_lease("compact#bank_1#2026-03-15#10", "b", t0, t1)
        .await
        .unwrap());
    assert!(ix
        .acquire_lease("compact#bank_1#2026-03-15#10", "a", t0, t2)
        .await
        .unwrap());
    assert!(!ix
        .acquire_lease("compact#bank_1#2026-03-15#10", "b", t1, t2)
        .await
        .unwrap());
    assert!(ix
        .acquire_lease(
            "compact#bank_1#2026-03-15#10",
            "b",
            ts("2026-03-15T10:17:00Z"),
            ts("2026-03-15T10:30:00Z")
        )
        .await
        .unwrap());
    // Releasing someone else's lease changes nothing; the holder's release frees it.
    ix.release_lease("compact#bank_1#2026-03-15#10", "a")
        .await
        .unwrap();
    assert!(!ix
        .acquire_lease("compact#bank_1#2026-03-15#10", "a", t2, t2)
        .await
        .unwrap());
    ix.release_lease("compact#bank_1#2026-03-15#10", "b")
        .await
        .unwrap();
    assert!(ix
        .acquire_lease("compact#bank_1#2026-03-15#10", "a", t2, t2)
        .await
        .unwrap());
}

#[tokio::test]
async fn suppressions_live_in_the_ledger_until_they_expire() {
    let Some(c) = common::clients("suppressions").await else {
        return;
    };
    let table = common::create_table(&c).await;
    let ledger = common::create_table(&c).await;
    let ix = DynamoIndex::new(c.dynamodb.clone(), &table).with_ledger_table(&ledger);
    let erased_at = ts("2026-03-15T10:00:00Z");
    let first = Suppression::new("aa".repeat(32), erased_at);
    let second = Suppression::new("bb".repeat(32), ts("2026-03-20T10:00:00Z"));
    assert_eq!(
        ix.suppressions("bank_1", erased_at).await.unwrap(),
        Vec::new()
    );
    for s in [&first, &second] {
        ix.put_suppression("bank_1", s).await.unwrap();
    }
    // Putting again replaces; another tenant sees none of them.
    ix.put_suppression("bank_1", &first).await.unwrap();
    assert!(ix
        .suppressions("bank_2", erased_at)
        .await
        .unwrap()
        .is_empty());
    let mut live = ix.suppressions("bank_1", erased_at).await.unwrap();
    live.sort_by(|a, b| a.token.cmp(&b.token));
    assert_eq!(live, vec![first.clone(), second.clone()]);
    // Past the first's expiry only the second is live.
    let later = first.expires_at;
    assert_eq!(
        ix.suppressions("bank_1", later).await.unwrap(),
        vec![second]
    );

    // Stored in the ledger table, with a TTL in epoch seconds, naming only the token.
    let item = c
        .dynamodb
        .get_item()
        .table_name(&ledger)
        .key("pk", AttributeValue::S("E#bank_1".into()))
        .key("sk", AttributeValue::S(first.token.clone()))
        .send()
        .await
        .unwrap()
        .item
        .expect("in the ledger table");
    assert_eq!(
        item.get("ttl").and_then(|v| v.as_n().ok()).cloned(),
        Some((first.expires_at.millis() / 1000).to_string())
    );
    let main = c.dynamodb.scan().table_name(&table).send().await.unwrap();
    assert_eq!(main.count(), 0, "nothing in the pointer table");
}
