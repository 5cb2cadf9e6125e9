//! The erasure of one subject through the retention function, against the local endpoint:
//! generated decisions (with outcomes and reviews) are ingested and compacted, an auditor reads
//! the subject through replay (journaled as an access record naming it), a legal hold refuses
//! the erasure, a dry run changes nothing, then the subject is erased. Afterwards every store
//! is searched for the subject's id, its ref and its record ids — every version of every
//! object in the bucket (Parquet rows decoded), every item of both tables — and nothing is
//! found; the subject's sealed features no longer decrypt; the tenant verifies against its
//! signed checkpoints with the erased rows accounted for by the signed receipt; lookups and
//! queries of the subject find nothing; its records sent again after the erasure are dropped.

use std::collections::{BTreeSet, HashMap};

use anyhow::{ensure, Context, Result};
use integration_tests::TestJournal;
use journal_core::checkpoint::{write_checkpoint, CheckpointPolicy, CheckpointStore, WriteOutcome};
use journal_core::columnar::decode_file;
use journal_core::features_crypto::{aad, open};
use journal_core::ports::{IndexEntry, JournalIndex, ObjectStore, SubjectKeyStore};
use journal_core::replay::api::Answer;
use journal_core::replay::audit::{verify_scope, VerifyScope};
use journal_core::retention::erasure_receipt::ReceiptFile;
use journal_core::timestamp::Timestamp;
use journal_synth::{generate_with_followups, producer_body_batch, record_id, SynthConfig};
use serde_json::{json, Value};

const DECISIONS: usize = 2_000;
const HOUR_MS: i64 = 3_600_000;
const AUDITOR: &str = "arn:aws:sts::123456789012:assumed-role/dj-auditor/erasure-test";

fn env(j: &TestJournal) -> Result<HashMap<String, String>> {
    let access_policy = json!({"version": 1, "roles": {
        "auditor": ["arn:aws:sts::123456789012:assumed-role/dj-auditor/*"]}});
    j.stack.function_env(&[
        ("DJ_COMPACT_TARGET_BYTES", "1048576"),
        ("DJ_COMPACT_SETTLE_SECONDS", "0"),
        ("DJ_COMPACT_GRACE_SECONDS", "0"),
        ("DJ_TRUST_PAYLOAD_PRINCIPAL", "true"),
        ("DJ_ACCESS_POLICY", &access_policy.to_string()),
    ])
}

async fn call(deps: &retention::Deps, v: Value, now: Timestamp) -> Result<Value> {
    retention::handle(deps, &retention::Task::parse(&v)?, now, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn ask(deps: &replay::Deps, tenant: &str, op: Value) -> Result<Answer> {
    let mut request = json!({"tenant_id": tenant, "purpose": "data subject request 42"});
    for (k, v) in op.as_object().context("op")? {
        request[k] = v.clone();
    }
    let response = replay::handle(
        json!({"principal": AUDITOR, "request": request}),
        deps,
        Timestamp::now(),
    )
    .await;
    Ok(response.answer)
}

/// What must not be found anywhere: the raw id, the ref, and the ids of the erased records.
struct Needles {
    subject_id: String,
    subject_ref: String,
    record_ids: BTreeSet<String>,
}

impl Needles {
    fn in_text(&self, text: &str) -> Option<String> {
        if text.contains(&self.subject_id) {
            return Some(format!("the subject id {}", self.subject_id));
        }
        if text.contains(&self.subject_ref) {
            return Some("the subject ref".into());
        }
        self.record_ids
            .iter()
            .find(|id| text.contains(&format!("\"{id}\"")))
            .map(|id| format!("record {id}"))
    }
}

/// Every version of every object in the bucket: Parquet files decoded row by row, every other
/// object as text. Returns how many versions were read.
async fn search_bucket(j: &TestJournal, bucket: &str, needles: &Needles) -> Result<usize> {
    let s3 = &j.clients.s3;
    let mut versions = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await?;
        for v in page.versions() {
            versions.push((
                v.key().context("key")?.to_string(),
                v.version_id().context("version")?.to_string(),
            ));
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
    for (key, version) in &versions {
        let out = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .with_context(|| format!("{key} {version}"))?;
        let bytes = out.body.collect().await?.into_bytes();
        if key.ends_with(".parquet") && key.starts_with("decisions/") {
            for row in decode_file(bytes)? {
                let text = String::from_utf8(row.record.canonical_bytes()?)?;
                let id = row.record.record_id().to_string();
                ensure!(
                    !needles.record_ids.contains(&id),
                    "{key} ({version}) still holds erased record {id}"
                );
                if let Some(found) = needles.in_text(&text) {
                    anyhow::bail!("{key} ({version}) row {id} holds {found}");
                }
            }
        } else if let Some(found) = needles.in_text(&String::from_utf8_lossy(&bytes)) {
            anyhow::bail!("{key} ({version}) holds {found}");
        }
    }
    Ok(versions.len())
}

/// Every item of a table, as text.
async fn search_table(j: &TestJournal, table: &str, needles: &Needles) -> Result<usize> {
    let mut items = 0;
    let mut pages = j
        .clients
        .dynamodb
        .scan()
        .table_name(table)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for item in page?.items() {
            items += 1;
            let text = format!("{item:?}");
            if let Some(found) = needles.in_text(&text) {
                anyhow::bail!("an item of {table} holds {found}: {text}");
            }
        }
    }
    Ok(items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_subject_is_found_in_no_store_and_the_tenant_still_verifies() -> Result<()> {
    let j = TestJournal::new("erasure", 900).await?;
    let started = std::time::Instant::now();
    let stage = |what: &str| eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let mut cfg = SynthConfig::new(71);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - HOUR_MS)?;
    cfg.mean_gap_ms = 20;
    let records = generate_with_followups(cfg, DECISIONS);
    let bodies: Vec<Vec<u8>> = records.chunks(10).map(producer_body_batch).collect();
    j.send_and_drain(&bodies, 200).await?;
    stage("ingested");

    // The subject with the most decisions.
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    for r in records.iter().filter(|r| r["kind"] == "decision") {
        if let (Some(t), Some(s)) = (r["tenant_id"].as_str(), r["subject"]["id"].as_str()) {
            *counts.entry((t.to_string(), s.to_string())).or_default() += 1;
        }
    }
    let ((tenant, subject), decisions) = counts
        .into_iter()
        .max_by_key(|(k, n)| (*n, k.clone()))
        .context("a subject")?;
    ensure!(decisions >= 2, "{decisions} decisions");
    let subject_ref = j.deps.master.tenant_keys(&tenant).subject_ref(&subject);

    let env = env(&j)?;
    let compact_deps = compact::build_deps(compact::Config::from_map(&env)?, &j.clients).await?;
    let deps = retention::build_deps(retention::Config::from_map(&env)?, &j.clients).await?;
    let replay_deps = replay::build_deps(&replay::Config::from_map(&env)?, &j.clients).await?;
    let compacted_at = Timestamp::from_millis(Timestamp::now().millis() + HOUR_MS + 60_000)?;
    let compact_task = compact::Task::parse(&json!({"task": "compact"}))?;
    for now in [
        compacted_at,
        Timestamp::from_millis(compacted_at.millis() + 1_000)?,
    ] {
        let runs = compact::compact(&compact_deps, &compact_task, now, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(runs.iter().all(|r| r.error.is_none()), "{runs:?}");
    }
    call(
        &deps,
        json!({"task": "set_policy", "policy": serde_json::from_str::<Value>(
            include_str!("../../infra/retention-policy.json"))?}),
        Timestamp::now(),
    )
    .await?;
    stage("compacted, policy published");

    // An auditor reads the subject (journaled, naming its ref) and another subject.
    if let Answer::Error(e) = ask(
        &replay_deps,
        &tenant,
        json!({"op": "query_subject", "subject_id": subject}),
    )
    .await?
    {
        anyhow::bail!("query_subject: {e:?}");
    }
    let other = records
        .iter()
        .find(|r| {
            r["kind"] == "decision"
                && r["tenant_id"] == tenant.as_str()
                && r["subject"]["id"].as_str().is_some_and(|s| s != subject)
        })
        .context("another subject")?;
    let other_id = record_id(other);
    if let Answer::Error(e) = ask(
        &replay_deps,
        &tenant,
        json!({"op": "lookup", "record_id": other_id}),
    )
    .await?
    {
        anyhow::bail!("lookup: {e:?}");
    }
    // Checkpoints over everything so far (access records included).
    let out = write_checkpoint(
        &j.deps.index,
        &deps.evidence,
        &deps.signer,
        &tenant,
        Timestamp::now(),
    )
    .await?;
    ensure!(matches!(out, WriteOutcome::Written { .. }), "{out:?}");

    // What the index holds of the subject: its decisions, their follow-ups, the access record.
    let timeline = j
        .deps
        .index
        .query_subject(&tenant, &subject_ref, Timestamp::MIN, Timestamp::MAX)
        .await?;
    let mut ids: BTreeSet<String> = timeline.iter().map(|p| p.record_id.clone()).collect();
    ensure!(
        timeline.iter().filter(|p| p.kind == "access").count() == 1,
        "the access record is on the subject's timeline"
    );
    for p in timeline.iter().filter(|p| p.kind == "decision") {
        for l in j.deps.index.query_refs(&tenant, &p.record_id).await? {
            ids.insert(l.record_id);
        }
    }
    ensure!(ids.len() > decisions, "{} ids", ids.len());
    // One of the subject's sealed features, readable now.
    let decision = timeline
        .iter()
        .find(|p| p.kind == "decision")
        .context("a decision")?;
    let row = j
        .read_file(&decision.file_key)
        .await?
        .into_iter()
        .find(|r| r.record.record_id() == decision.record_id)
        .context("the row")?;
    let sealed = row.features_sealed.clone().context("sealed features")?;
    let aad = aad(
        &tenant,
        &decision.record_id,
        row.record.features_hmac.as_deref().context("hmac")?,
    );
    let key = deps.subject_keys.data_key(&tenant, &subject_ref).await?;
    ensure!(open(&key, &aad, &sealed).is_ok());

    // A legal hold over the time of the subject's records refuses the erasure, naming it.
    let now = Timestamp::now();
    call(
        &deps,
        json!({"task": "hold", "hold_id": "case-88", "tenant_id": tenant,
               "reason": "regulator inquiry", "from": "2020-01-01T00:00:00Z"}),
        now,
    )
    .await?;
    let err = call(
        &deps,
        json!({"task": "erase", "tenant_id": tenant, "subject_id": subject}),
        now,
    )
    .await
    .unwrap_err()
    .to_string();
    ensure!(err.contains("case-88"), "{err}");
    call(&deps, json!({"task": "release", "hold_id": "case-88"}), now).await?;

    // A dry run lists the files and changes nothing.
    let plan = call(
        &deps,
        json!({"task": "erase", "tenant_id": tenant, "subject_id": subject, "dry_run": true}),
        now,
    )
    .await?;
    let planned: u64 = plan["erasure"]["files"]
        .as_array()
        .context("files")?
        .iter()
        .map(|f| f["records"].as_u64().unwrap_or(0))
        .sum();
    ensure!(planned as usize == ids.len(), "{plan:#}");
    ensure!(matches!(
        j.deps
            .index
            .get_pointer(&tenant, &decision.record_id)
            .await?,
        Some(IndexEntry::Indexed(_))
    ));
    stage("held, planned");

    let erased = call(
        &deps,
        json!({"task": "erase", "tenant_id": tenant, "subject_id": subject}),
        now,
    )
    .await?;
    let e = &erased["erasure"];
    ensure!(e["done"] == json!(true), "{erased:#}");
    ensure!(e["key_shredded"] == json!(true), "{erased:#}");
    let receipt_key = e["receipt_key"].as_str().context("receipt")?.to_string();
    // A retention run afterwards stores its report too (searched below).
    call(&deps, json!({"task": "run", "tenant_id": tenant}), now).await?;
    stage("erased");

    // The subject's records sent again (an SQS redelivery, a producer replaying its spill
    // buffer) are dropped and acknowledged, not journaled again nor dead-lettered: the
    // searches below still find nothing.
    let again: Vec<Value> = records
        .iter()
        .filter(|r| r["tenant_id"] == tenant.as_str() && r["subject"]["id"] == subject.as_str())
        .cloned()
        .collect();
    ensure!(again.len() >= decisions, "{} records", again.len());
    let again: Vec<Vec<u8>> = again.chunks(10).map(producer_body_batch).collect();
    let stats = j.send_and_drain(&again, 200).await?;
    ensure!(
        stats.failed == 0 && stats.deleted == again.len() as u64,
        "{stats:?}"
    );
    ensure!(j.dead_letters().await?.is_empty(), "dead-lettered");
    stage("sent the subject's records again: dropped");

    // Every store: every version of every object, every item of both tables.
    let needles = Needles {
        subject_id: subject.clone(),
        subject_ref: subject_ref.clone(),
        record_ids: ids.clone(),
    };
    let bucket = j.stack.output("BucketName")?;
    let versions = search_bucket(&j, bucket, &needles).await?;
    let items = search_table(&j, j.stack.output("TableName")?, &needles).await?
        + search_table(&j, j.stack.output("LedgerTableName")?, &needles).await?;
    ensure!(
        versions > 10 && items > 100,
        "{versions} versions, {items} items"
    );
    stage(&format!(
        "searched {versions} object versions and {items} items: nothing"
    ));

    // The sealed features no longer decrypt: the key is gone; a new one opens nothing.
    let fresh = deps.subject_keys.data_key(&tenant, &subject_ref).await?;
    ensure!(open(&fresh, &aad, &sealed).is_err());
    deps.subject_keys.shred(&tenant, &subject_ref).await?;

    // The receipt is signed by the checkpoint key and counts every removed row.
    let receipt = ReceiptFile::from_bytes(
        &deps
            .evidence
            .get(&receipt_key)
            .await?
            .context("receipt stored")?,
    )
    .map_err(anyhow::Error::msg)?;
    let public_key = deps.signer.public_key_der().await?;
    let key = journal_core::checkpoint::CheckpointPublicKey::from_der(&public_key)?;
    ensure!(receipt.fault(Some(&key)).is_none());
    ensure!(receipt.receipt().rows_removed as usize == ids.len());

    // The tenant verifies against its signed checkpoint, the erased rows accounted for.
    let audit = verify_scope(
        &j.deps.index,
        &j.deps.store,
        &deps.evidence,
        &VerifyScope::tenant(tenant.clone()),
        &public_key,
        &CheckpointPolicy::default(),
        Timestamp::now(),
    )
    .await?;
    ensure!(audit.ok, "{:#?}", audit.faults);
    ensure!(
        !audit.erased.is_empty() && audit.erased.iter().all(|s| s.tombstone_key == receipt_key),
        "{:?}",
        audit.erased
    );

    // Replay finds nothing of the subject, and still finds the others.
    let answer = ask(
        &replay_deps,
        &tenant,
        json!({"op": "lookup", "record_id": decision.record_id}),
    )
    .await?;
    let text = serde_json::to_value(&answer)?;
    ensure!(
        text["records"][0]["status"] == "not_found" && text["records"][0]["record"].is_null(),
        "an erased decision was answered: {text}"
    );
    let answer = ask(
        &replay_deps,
        &tenant,
        json!({"op": "query_subject", "subject_id": subject}),
    )
    .await?;
    let text = serde_json::to_string(&answer)?;
    ensure!(
        !ids.iter().any(|id| text.contains(&format!("\"{id}\""))),
        "{text}"
    );
    if let Answer::Error(e) = ask(
        &replay_deps,
        &tenant,
        json!({"op": "lookup", "record_id": other_id}),
    )
    .await?
    {
        anyhow::bail!("another subject's decision is gone: {e:?}");
    }
    let pointer = j.deps.index.get_pointer(&tenant, &other_id).await?;
    let Some(IndexEntry::Indexed(p)) = pointer else {
        anyhow::bail!("{other_id} is not indexed");
    };
    ensure!(j.deps.store.get_object(&p.file_key).await?.is_some());
    stage("verified; replay finds nothing of the subject");
    Ok(())
}
