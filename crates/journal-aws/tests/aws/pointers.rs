//! Final pointers: batch writes and the timeline GSIs.

use journal_aws::DynamoIndex;
use journal_core::ports::{FileState, IndexEntry, JournalIndex, Pointer};
use journal_core::timestamp::Timestamp;

use crate::common::{self, file_key, ts};

/// Pointer `i` of a tenant: one record a minute from 10:00, subjects alternating s0/s1, every
/// fifth an outcome referring to decision `d0`, models v1/v2 by half.
pub fn pointer(i: u32, tenant: &str) -> Pointer {
    let occurred_at =
        Timestamp::from_millis(ts("2026-03-15T10:00:00Z").millis() + i64::from(i) * 60_000)
            .unwrap();
    let outcome = i % 5 == 4;
    Pointer {
        tenant_id: tenant.into(),
        record_id: format!("d{i}"),
        kind: if outcome { "outcome" } else { "decision" }.into(),
        block_id: "BLK".into(),
        seq: 7,
        file_key: file_key(tenant, "BLK"),
        row_group: i / 20,
        row: i % 20,
        leaf_index: i,
        occurred_at,
        received_at: ts("2026-03-15T12:00:00Z"),
        subject_ref: Some(format!("s{}", i % 2)),
        model_name: (!outcome).then(|| "credit-risk".to_string()),
        model_version: (!outcome).then(|| if i < 30 { "1" } else { "2" }.to_string()),
        decision: (!outcome).then(|| "approve".to_string()),
        risk_tier: (i % 3 == 0).then(|| "high".to_string()),
        refers_to: outcome.then(|| "d0".to_string()),
        content_mac: format!("mac{i}"),
        storage_state: FileState::Chained,
        block: {
            let mut h = common::header(tenant, 7, &"00".repeat(32), "BLK");
            // As after compaction: the rows moved, the header keeps the ingest file.
            if i % 7 == 6 {
                h.file_key = file_key(tenant, "ORIGINAL");
            }
            h
        },
    }
}

fn ids(ps: &[Pointer]) -> Vec<String> {
    ps.iter().map(|p| p.record_id.clone()).collect()
}

#[tokio::test]
async fn write_pointers_in_batches_then_look_up_and_query() {
    let Some(c) = common::clients("pointers").await else {
        return;
    };
    let ix = DynamoIndex::new(c.dynamodb.clone(), common::create_table(&c).await);
    let t = "bank_1";
    let pointers: Vec<Pointer> = (0..60).map(|i| pointer(i, t)).collect();

    // A claim first, as ingest does: the pointer replaces it.
    ix.claim(&[journal_core::ports::Claim {
        tenant_id: t.into(),
        record_id: "d0".into(),
        content_mac: "mac0".into(),
        block_id: "BLK".into(),
        file_key: file_key(t, "BLK"),
        claimed_at: ts("2026-03-15T12:00:00Z"),
    }])
    .await
    .unwrap();

    // 60 pointers = three BatchWriteItem calls (25, 25, 10); a repeat is idempotent, and a
    // duplicate in one call keeps the last version.
    ix.write_pointers(&pointers).await.unwrap();
    let mut dup = pointer(3, t);
    dup.storage_state = FileState::Live;
    ix.write_pointers(&[pointer(3, t), pointers[1].clone(), dup.clone()])
        .await
        .unwrap();
    ix.write_pointers(&[]).await.unwrap();

    for (i, p) in pointers.iter().enumerate() {
        let expected = if i == 3 { &dup } else { p };
        assert_eq!(
            ix.get_pointer(t, &p.record_id).await.unwrap(),
            Some(IndexEntry::Indexed(expected.clone())),
            "pointer {i}"
        );
    }

    // Subject s0 holds the even records, one every two minutes from 10:00.
    let all = ix
        .query_subject(
            t,
            "s0",
            ts("2026-03-15T00:00:00Z"),
            ts("2026-03-16T00:00:00Z"),
        )
        .await
        .unwrap();
    let evens: Vec<String> = (0..60).step_by(2).map(|i| format!("d{i}")).collect();
    assert_eq!(ids(&all), evens);
    assert!(all.windows(2).all(|w| w[0].occurred_at < w[1].occurred_at));

    // [10:02, 10:08): from is inclusive, to exclusive.
    let part = ix
        .query_subject(
            t,
            "s0",
            ts("2026-03-15T10:02:00Z"),
            ts("2026-03-15T10:08:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(ids(&part), vec!["d2", "d4", "d6"]);
    // One millisecond more takes in d8.
    let part = ix
        .query_subject(
            t,
            "s0",
            ts("2026-03-15T10:02:00Z"),
            ts("2026-03-15T10:08:00.001Z"),
        )
        .await
        .unwrap();
    assert_eq!(ids(&part), vec!["d2", "d4", "d6", "d8"]);
    assert!(ix
        .query_subject(
            t,
            "s0",
            ts("2026-03-15T10:08:00Z"),
            ts("2026-03-15T10:08:00Z")
        )
        .await
        .unwrap()
        .is_empty());
    assert!(ix
        .query_subject(
            t,
            "s9",
            ts("2026-03-15T00:00:00Z"),
            ts("2026-03-16T00:00:00Z")
        )
        .await
        .unwrap()
        .is_empty());
    assert!(ix
        .query_subject(
            "bank_2",
            "s0",
            ts("2026-03-15T00:00:00Z"),
            ts("2026-03-16T00:00:00Z")
        )
        .await
        .unwrap()
        .is_empty());

    // Model timeline: decisions of version 2 (records 30..60 that are not outcomes).
    let v2 = ix
        .query_model(
            t,
            "credit-risk",
            "2",
            ts("2026-03-15T00:00:00Z"),
            ts("2026-03-16T00:00:00Z"),
        )
        .await
        .unwrap();
    let expected: Vec<String> = (30..60)
        .filter(|i| i % 5 != 4)
        .map(|i| format!("d{i}"))
        .collect();
    assert_eq!(ids(&v2), expected);

    // Outcomes referring to d0.
    let refs = ix.query_refs(t, "d0").await.unwrap();
    let expected: Vec<String> = (0..60)
        .filter(|i| i % 5 == 4)
        .map(|i| format!("d{i}"))
        .collect();
    assert_eq!(ids(&refs), expected);
    assert!(refs.iter().all(|p| p.kind == "outcome"));

    // The decision and its outcomes in one Query of its partition, as written.
    let (entry, links) = ix.get_with_links(t, "d0").await.unwrap();
    assert_eq!(entry, Some(IndexEntry::Indexed(pointers[0].clone())));
    assert_eq!(links, refs);
    assert_eq!(links[1], pointers[9]);
    let (entry, links) = ix.get_with_links(t, "d9x").await.unwrap();
    assert_eq!((entry, links.len()), (None, 0));
}

#[tokio::test]
async fn many_pointers_take_many_batches() {
    let Some(c) = common::clients("pointers_many").await else {
        return;
    };
    let ix = DynamoIndex::new(c.dynamodb.clone(), common::create_table(&c).await);
    let pointers: Vec<Pointer> = (0..260).map(|i| pointer(i, "bank_3")).collect();
    ix.write_pointers(&pointers).await.unwrap();
    let all = ix
        .query_subject(
            "bank_3",
            "s1",
            ts("2026-03-15T00:00:00Z"),
            ts("2026-03-17T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 130);
}

#[tokio::test]
async fn get_pointers_reads_many_in_batches_of_a_hundred_skipping_claims_and_unknown_ids() {
    let Some(c) = common::clients("pointers_get").await else {
        return;
    };
    let ix = DynamoIndex::new(c.dynamodb.clone(), common::create_table(&c).await);
    let t = "bank_4";
    let pointers: Vec<Pointer> = (0..230).map(|i| pointer(i, t)).collect();
    ix.write_pointers(&pointers).await.unwrap();
    // Another tenant's pointer of the same id is not read.
    ix.write_pointers(&[pointer(5, "bank_5")]).await.unwrap();
    ix.claim(&[journal_core::ports::Claim {
        tenant_id: t.into(),
        record_id: "claimed".into(),
        content_mac: "mac".into(),
        block_id: "BLK".into(),
        file_key: file_key(t, "BLK"),
        claimed_at: ts("2026-03-15T12:00:00Z"),
    }])
    .await
    .unwrap();

    // 230 known, one claimed, one unknown, and repeats: three BatchGetItem calls.
    let mut asked: Vec<String> = (0..230).map(|i| format!("d{i}")).collect();
    asked.extend(["claimed".to_string(), "nope".to_string()]);
    asked.extend(["d0".to_string(), "d229".to_string()]);
    let mut got = ix.get_pointers(t, &asked).await.unwrap();
    got.sort_by_key(|p| p.leaf_index);
    assert_eq!(got, pointers);
    assert!(ix.get_pointers(t, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_entries_removes_pointers_links_and_timelines_in_batches() {
    let Some(c) = common::clients("pointers_delete").await else {
        return;
    };
    let ix = DynamoIndex::new(c.dynamodb.clone(), common::create_table(&c).await);
    let pointers: Vec<Pointer> = (0..60).map(|i| pointer(i, "bank_4")).collect();
    ix.write_pointers(&pointers).await.unwrap();
    let (_, links) = ix.get_with_links("bank_4", "d0").await.unwrap();
    assert_eq!(links.len(), 12);

    // Every other record goes (a repeat in the list, and one never written, are harmless).
    let mut gone: Vec<Pointer> = pointers
        .iter()
        .filter(|p| p.leaf_index % 2 == 1)
        .cloned()
        .collect();
    gone.push(gone[0].clone());
    gone.push(pointer(999, "bank_4"));
    ix.delete_entries(&gone).await.unwrap();

    let left = ix.get_pointers("bank_4", &ids(&pointers)).await.unwrap();
    let mut left_ids = ids(&left);
    left_ids.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
    let even: Vec<String> = (0..60)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("d{i}"))
        .collect();
    assert_eq!(left_ids, even);
    // Outcomes d4, d14, ... were even and stay; d9, d19, ... went with their link items.
    let (_, links) = ix.get_with_links("bank_4", "d0").await.unwrap();
    assert_eq!(
        ids(&links),
        ["d4", "d14", "d24", "d34", "d44", "d54"],
        "links after the delete"
    );
    let all = ix
        .query_subject(
            "bank_4",
            "s1",
            ts("2026-03-15T00:00:00Z"),
            ts("2026-03-17T00:00:00Z"),
        )
        .await
        .unwrap();
    assert!(all.is_empty(), "odd records are subject s1: {all:?}");
    let v1 = ix
        .query_model(
            "bank_4",
            "credit-risk",
            "1",
            ts("2026-03-15T00:00:00Z"),
            ts("2026-03-17T00:00:00Z"),
        )
        .await
        .unwrap();
    assert!(v1.iter().all(|p| p.leaf_index % 2 == 0) && !v1.is_empty());
}
