//! The ingest, compact and retention binaries as real Lambda processes under the runtime
//! emulator (`cargo lambda watch`), invoked through the Lambda Invoke API with the events AWS
//! sends: SQS events from the event source stand-in (batches gathered over a window, partial
//! batch responses, dead letters), and the payloads of the template's EventBridge Scheduler
//! schedules. The replay binary has its own test (`replay_function.rs`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use integration_tests::emulator::{build_binaries, Function, FUNCTION_NAME};
use integration_tests::poller::{drain, invoke_batch, MappingConfig};
use integration_tests::stack::repo_root;
use integration_tests::TestJournal;
use journal_core::ports::{FileState, IndexEntry, JournalIndex};
use journal_core::timestamp::Timestamp;
use journal_synth::{bad_messages, generate, producer_body, record_id, SynthConfig};
use serde_json::{json, Value};

fn records() -> Result<Vec<Value>> {
    let mut cfg = SynthConfig::new(71);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - 2 * 3600 * 1000)?;
    cfg.mean_gap_ms = 20;
    cfg.subjects_per_tenant = 40;
    Ok(generate(cfg, 400))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn function_binaries_answer_the_events_aws_sends() -> Result<()> {
    let j = TestJournal::new("functions-emulated", 900).await?;
    let bins = tokio::task::spawn_blocking(|| build_binaries(&["ingest", "compact", "retention"]))
        .await??;

    // Ingest: SQS events through the Invoke API, 25 messages gathered over up to a second, so
    // a batch is larger than one ReceiveMessage can return. Malformed messages sit among
    // good ones and go to the dead-letter queue without failing their batch.
    let ingest = Function::start(
        &bins[0],
        j.stack.function_env(&[("DJ_CLAIM_LEASE_SECONDS", "900")])?,
        &j.clients.sdk_config,
    )?;
    let records = records()?;
    let bad: Vec<_> = bad_messages(Timestamp::now())
        .into_iter()
        .filter(|b| std::str::from_utf8(&b.body).is_ok() && b.body.len() < 250 * 1024)
        .take(12)
        .collect();
    let mut bodies: Vec<Vec<u8>> = records.iter().map(producer_body).collect();
    for (i, b) in bad.iter().enumerate() {
        bodies.insert(i * 29, b.body.clone());
    }
    j.send(&bodies).await?;
    let mapping = MappingConfig {
        batch_size: 25,
        batching_window: std::time::Duration::from_secs(1),
        ..j.mapping.clone()
    };
    let stats = drain(&j.clients.sqs, &j.queue_url, &mapping, |event| {
        invoke_batch(&ingest.lambda, FUNCTION_NAME, event)
    })
    .await?;
    assert_eq!(stats.crashed_invocations, 0, "{stats:?}");
    assert_eq!(
        stats.failed, 0,
        "a bad message must not fail its batch: {stats:?}"
    );
    assert_eq!(stats.deleted, bodies.len() as u64, "{stats:?}");
    assert!(
        stats.invocations < bodies.len() as u64 / 10,
        "batches of up to 25 were not gathered: {stats:?}"
    );
    let letters = j.dead_letters().await?;
    assert_eq!(letters.len(), bad.len(), "one dead letter per bad message");
    for m in &letters {
        let field = m
            .message_attributes()
            .and_then(|a| a.get(journal_aws::ATTR_FIELD))
            .and_then(|v| v.string_value());
        assert!(field.is_some_and(|f| !f.is_empty()), "{m:?}");
    }
    let tenants: BTreeSet<String> = records
        .iter()
        .map(|r| r["tenant_id"].as_str().unwrap_or_default().to_string())
        .collect();
    for r in &records {
        let tenant = r["tenant_id"].as_str().unwrap_or_default();
        assert!(
            matches!(
                j.deps.index.get_pointer(tenant, &record_id(r)).await?,
                Some(IndexEntry::Indexed(_))
            ),
            "{} not indexed",
            record_id(r)
        );
    }
    drop(ingest);

    // Compact, as its hourly schedule invokes it (the template's Input). It merges only hours
    // that are over; the files of one come
    // from the in-process ingest on a clock four hours back (the binary's clock is the real one).
    let past = Timestamp::from_millis(Timestamp::now().millis() - 4 * 3600 * 1000)?;
    let mut cfg = SynthConfig::new(72);
    cfg.start = Timestamp::from_millis(past.millis() - 3600 * 1000)?;
    cfg.mean_gap_ms = 20;
    let earlier = generate(cfg, 300);
    j.send(&earlier.iter().map(producer_body).collect::<Vec<_>>())
        .await?;
    drain(&j.clients.sqs, &j.queue_url, &j.mapping, |event| async {
        Ok(ingest::handle_batch(event, &j.deps, past).await)
    })
    .await?;
    let compact = Function::start(
        &bins[1],
        j.stack.function_env(&[
            ("DJ_COMPACT_TARGET_BYTES", "1048576"),
            ("DJ_COMPACT_SETTLE_SECONDS", "0"),
            ("DJ_COMPACT_GRACE_SECONDS", "3600"),
        ])?,
        &j.clients.sdk_config,
    )?;
    let answer = compact
        .invoke(&json!({"task": "compact"}))
        .await?
        .map_err(anyhow::Error::msg)?;
    assert_eq!(answer["task"], "compact", "{answer}");
    let partitions = answer["partitions"].as_array().context("partitions")?;
    let past_date = past.date_string();
    let compacted: BTreeSet<&str> = partitions
        .iter()
        .filter(|p| p["date"] == past_date.as_str())
        .filter(|p| p["written"].as_array().is_some_and(|w| !w.is_empty()))
        .filter_map(|p| p["tenant_id"].as_str())
        .collect();
    let earlier_tenants: BTreeSet<&str> = earlier
        .iter()
        .filter_map(|r| r["tenant_id"].as_str())
        .collect();
    assert_eq!(compacted, earlier_tenants, "{answer}");
    for t in &compacted {
        let merged = j
            .deps
            .index
            .list_manifest(t, &past_date)
            .await?
            .into_iter()
            .filter(|e| e.state == FileState::Live && !e.merged_from.is_empty())
            .count();
        assert!(merged > 0, "{t}: no live compacted file in the manifest");
    }
    for r in records.iter().chain(&earlier) {
        let tenant = r["tenant_id"].as_str().unwrap_or_default();
        assert!(
            matches!(
                j.deps.index.get_pointer(tenant, &record_id(r)).await?,
                Some(IndexEntry::Indexed(_))
            ),
            "{} lost",
            record_id(r)
        );
    }
    for t in &tenants {
        let report = j.verify_tenant(t).await?;
        assert!(report.ok(), "{t}: {:?}", report.faults);
    }
    // A malformed invocation is a function error that names what is wrong.
    let refused = compact.invoke(&json!({"task": "compress"})).await?;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("compress")),
        "{refused:?}"
    );
    drop(compact);

    // Retention: the policy published as version 1, the daily schedule's run, an erasure dry
    // run that changes nothing, and a malformed erase that names the missing field.
    let retention = Function::start(&bins[2], j.stack.function_env(&[])?, &j.clients.sdk_config)?;
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(
        repo_root().join("infra/retention-policy.json"),
    )?)?;
    let set = retention
        .invoke(&json!({"task": "set_policy", "policy": policy}))
        .await?
        .map_err(anyhow::Error::msg)?;
    assert_eq!(set["version"], 1, "{set}");
    let run = retention
        .invoke(&json!({"task": "run"}))
        .await?
        .map_err(anyhow::Error::msg)?;
    assert_eq!(run["task"], "run", "{run}");
    let ran: BTreeSet<&str> = run["tenants"]
        .as_array()
        .context("tenants")?
        .iter()
        .filter_map(|t| t["tenant_id"].as_str())
        .collect();
    assert_eq!(
        ran,
        tenants.iter().map(String::as_str).collect(),
        "every tenant with a chain is covered: {run}"
    );

    let decision = records
        .iter()
        .find(|r| r["kind"] == "decision")
        .context("a decision")?;
    let (tenant, subject) = (
        decision["tenant_id"].as_str().context("tenant")?,
        decision["subject"]["id"].as_str().context("subject")?,
    );
    let subject_records: BTreeMap<String, u64> = {
        let dry = retention
            .invoke(&json!({"task": "erase", "tenant_id": tenant, "subject_id": subject, "dry_run": true}))
            .await?
            .map_err(anyhow::Error::msg)?;
        let erasure = &dry["erasure"];
        assert_eq!(erasure["dry_run"], true, "{dry}");
        assert!(
            !dry.to_string().contains(subject),
            "the answer names the raw subject id: {dry}"
        );
        serde_json::from_value(erasure["records"].clone())?
    };
    assert!(
        subject_records.values().sum::<u64>() >= 1,
        "{subject_records:?}"
    );
    assert!(
        matches!(
            j.deps
                .index
                .get_pointer(tenant, &record_id(decision))
                .await?,
            Some(IndexEntry::Indexed(_))
        ),
        "a dry run removed the decision"
    );
    let refused = retention
        .invoke(&json!({"task": "erase", "tenant_id": tenant}))
        .await?;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("subject_id")),
        "{refused:?}"
    );
    drop(retention);
    Ok(())
}
