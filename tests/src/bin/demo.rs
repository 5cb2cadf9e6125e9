//! The README's demo: the whole life of a decision on the local endpoint. It deploys
//! `infra/template.yaml`, publishes `infra/retention-policy.json` as policy version 1, records a
//! few thousand generated decisions with their outcomes and reviews through the producer client
//! (plus some malformed messages), ingests them with the ingest binary invoked through the
//! Lambda Invoke API by the event source stand-in, compacts, signs checkpoints with the replay
//! binary, asks the retention binary for a dry run, and then, as an auditor at the `dj` command
//! line, replays a decision with its proof, re-executes it, runs a what-if, verifies the chain
//! and writes the HTML report. The function binaries run as Lambda processes under the runtime
//! emulator (`cargo lambda watch`).
//!
//! Run through `scripts/demo.sh`, which starts the endpoint and installs the emulator first.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::auditor::{access_policy, assume, Dj};
use integration_tests::emulator::{build_binaries, Function, FUNCTION_NAME};
use integration_tests::poller::{drain, invoke_batch, MappingConfig};
use integration_tests::stack::repo_root;
use integration_tests::TestJournal;
use journal_core::ports::JournalIndex;
use journal_core::timestamp::Timestamp;
use journal_producer::{Producer, ProducerConfig, Recorded};
use journal_synth::{bad_messages, generate_with_followups, SynthConfig};
use serde_json::{json, Value};

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stage(title: &str) {
    println!("\n== {title}");
}

/// Invokes a function and fails with its error message if it reports one.
async fn call(f: &Function, payload: Value) -> Result<Value> {
    f.invoke(&payload)
        .await?
        .map_err(|e| anyhow::anyhow!("{payload} failed: {e}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let n = arg("--records", 2500);
    println!("Decision Journal demo");
    println!(
        "endpoint: {}",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );

    stage("deploy infra/template.yaml");
    let j = TestJournal::new("demo", 900).await?;
    for key in [
        "BucketName",
        "QueueUrl",
        "DlqUrl",
        "TableName",
        "LedgerTableName",
    ] {
        println!("  {key:<16} {}", j.stack.output(key)?);
    }
    let bucket = j.stack.output("BucketName")?.to_string();

    stage("build the function binaries and start them under the Lambda runtime emulator");
    let bins = tokio::task::spawn_blocking(|| {
        build_binaries(&["ingest", "compact", "retention", "replay", "dj"])
    })
    .await??;
    let sdk = &j.clients.sdk_config;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").context("AWS_ENDPOINT_URL")?;
    let ingest = Function::start(
        &bins[0],
        j.stack.function_env(&[("DJ_CLAIM_LEASE_SECONDS", "900")])?,
        sdk,
    )?;
    let retention = Function::start(&bins[2], j.stack.function_env(&[])?, sdk)?;
    let policy = access_policy();
    let replay = Function::start(
        &bins[3],
        j.stack
            .function_env(&[("DJ_ACCESS_POLICY", &policy), ("DJ_STS_URL", &endpoint)])?,
        sdk,
    )?;
    println!("  ingest, retention and replay are listening (compaction runs in process below)");

    stage("publish infra/retention-policy.json");
    let policy_doc: Value = serde_json::from_str(&std::fs::read_to_string(
        repo_root().join("infra/retention-policy.json"),
    )?)?;
    let set = call(
        &retention,
        json!({"task": "set_policy", "policy": policy_doc}),
    )
    .await?;
    println!("  policy version {} at {}", set["version"], set["key"]);

    // The registry the generator decided with, so re-execution has the recorded models.
    j.publish_model_registry().await?;

    stage("record decisions, outcomes and reviews through the producer client");
    let mut cfg = SynthConfig::new(2026);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - 3_600_000)?;
    cfg.mean_gap_ms = 200;
    let records = generate_with_followups(cfg, n);
    let producer = Producer::start(
        j.clients.sqs.clone(),
        ProducerConfig::new(j.queue_url.clone()),
    );
    let mut kept = Vec::new();
    for r in &records {
        if let Recorded::Queued = producer.record(r.clone())? {
            kept.push(r);
        }
    }
    let report = producer.shutdown().await;
    ensure!(report.all_sent(), "the producer could not send: {report:?}");
    let s = &report.stats;
    println!(
        "  {} records ({} decisions) in {} SQS messages, {} SendMessageBatch calls, {} sampled out",
        s.sent_records,
        kept.iter().filter(|r| r["kind"] == "decision").count(),
        s.sent_messages,
        s.calls,
        s.sampled_out
    );
    let bad: Vec<Vec<u8>> = bad_messages(Timestamp::now())
        .into_iter()
        .filter(|b| std::str::from_utf8(&b.body).is_ok() && b.body.len() < 200 * 1024)
        .take(6)
        .map(|b| b.body)
        .collect();
    j.send(&bad).await?;
    println!("  and {} malformed messages", bad.len());

    stage("ingest: the event source stand-in invokes the ingest binary through the Invoke API");
    let mapping = MappingConfig {
        batch_size: 10,
        batching_window: Duration::from_secs(1),
        ..j.mapping.clone()
    };
    let stats = drain(&j.clients.sqs, &j.queue_url, &mapping, |event| {
        invoke_batch(&ingest.lambda, FUNCTION_NAME, event)
    })
    .await?;
    println!(
        "  {} invocations, {} messages, {} deleted, {} sent back for redelivery",
        stats.invocations, stats.messages, stats.deleted, stats.failed
    );
    let letters = j.dead_letters().await?;
    println!(
        "  dead-letter queue: {} messages, each with field and reason:",
        letters.len()
    );
    for m in &letters {
        let attr = |k: &str| {
            m.message_attributes()
                .and_then(|a| a.get(k))
                .and_then(|v| v.string_value())
                .unwrap_or_default()
                .to_string()
        };
        println!(
            "    {:<22} {}",
            attr(journal_aws::ATTR_FIELD),
            attr(journal_aws::ATTR_REASON)
        );
    }
    let mut tenants: BTreeMap<String, usize> = BTreeMap::new();
    for r in &kept {
        *tenants
            .entry(r["tenant_id"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    for (tenant, count) in &tenants {
        let blocks = j.deps.index.list_blocks(tenant).await?;
        println!(
            "  {tenant:<12} {count:>5} records in {:>3} blocks",
            blocks.len()
        );
    }

    stage("compact, as the hourly schedule will once this hour is over (clock one hour ahead)");
    let compact_env = j
        .stack
        .function_env(&[("DJ_COMPACT_SETTLE_SECONDS", "0")])?;
    let compact_deps =
        compact::build_deps(compact::Config::from_map(&compact_env)?, &j.clients).await?;
    let task = compact::Task::parse(&json!({"task": "compact"}))?;
    let later = Timestamp::from_millis(Timestamp::now().millis() + 3_600_000 + 60_000)?;
    let runs = compact::compact(&compact_deps, &task, later, None)
        .await
        .map_err(|e| anyhow::anyhow!("compaction failed: {e}"))?;
    for run in runs.iter().filter(|r| !r.report.written.is_empty()) {
        for w in &run.report.written {
            println!(
                "  {} {}: {} files -> {} rows, {} KiB in s3://{bucket}/{}",
                run.tenant_id,
                run.date,
                w.inputs,
                w.rows,
                w.bytes / 1024,
                w.file_key
            );
        }
    }

    stage("checkpoints: the replay binary signs each tenant's chain head with the KMS key");
    let signed = call(&replay, json!({"task": "checkpoint"})).await?;
    for t in signed["tenants"].as_array().into_iter().flatten() {
        println!(
            "  {:<12} {} (seq {})",
            t["tenant_id"].as_str().unwrap_or_default(),
            t["outcome"].as_str().unwrap_or_default(),
            t["seq"]
        );
    }

    stage("retention dry run: what policy version 1 would archive, expire or hold");
    let plan = call(&retention, json!({"task": "plan"})).await?;
    for t in plan["tenants"].as_array().into_iter().flatten() {
        let due = match t["counts"].as_object() {
            Some(c) if !c.is_empty() => t["counts"].to_string(),
            // Every file is minutes old; the policy's shortest hot window is days.
            _ => "nothing due yet".to_string(),
        };
        println!(
            "  {:<12} policy v{}  {due}",
            t["tenant_id"].as_str().unwrap_or_default(),
            t["policy_version"],
        );
    }

    // An auditor's session at the command line, as a person runs it.
    let sts = aws_sdk_sts::Client::new(sdk);
    let auditor = assume(&sts, "dj-auditor").await?;
    let dj = Dj {
        bin: &bins[4],
        endpoint: replay.endpoint(),
        function: FUNCTION_NAME,
    };
    let decision = kept
        .iter()
        .find(|r| {
            r["kind"] == "decision" && r.get("llm").is_none() && r["model"]["name"] == "credit-risk"
        })
        .or_else(|| kept.iter().find(|r| r["kind"] == "decision"))
        .context("no decision recorded")?;
    let tenant = decision["tenant_id"].as_str().context("tenant")?;
    let id = decision["decision_id"].as_str().context("decision_id")?;
    let (model, version) = (
        decision["model"]["name"].as_str().context("model")?,
        decision["model"]["version"].as_str().context("version")?,
    );
    let from = Timestamp::from_millis(Timestamp::now().millis() - 86_400_000)?.date_string();
    let to = Timestamp::from_millis(Timestamp::now().millis() + 86_400_000)?.date_string();
    let report_dir = repo_root().canonicalize()?.join(".dj/demo-report");
    let report_dir = report_dir.to_str().context("report path")?;
    let steps: Vec<(String, Vec<&str>)> = vec![
        (
            format!("dj replay {id}  (the record, its proof: leaf -> Merkle root -> chain -> checkpoint)"),
            vec!["replay", id],
        ),
        (
            format!("dj replay {id} --reexecute  (the recorded model on the decrypted features)"),
            vec!["replay", id, "--reexecute"],
        ),
        (
            format!("dj what-if --model {model} --version {version} --threshold 0.8"),
            vec![
                "what-if", "--model", model, "--version", version, "--from", &from, "--to", &to,
                "--threshold", "0.8",
            ],
        ),
        (
            "dj verify  (every block, leaf and link recomputed from storage)".to_string(),
            vec!["verify", "--from", &from, "--to", &to],
        ),
        (
            format!("dj report --out {report_dir}"),
            vec!["report", "--from", &from, "--to", &to, "--out", report_dir],
        ),
        (
            "dj access  (every read above, journaled)".to_string(),
            vec!["access", "--from", &from],
        ),
    ];
    for (title, args) in steps {
        stage(&format!("auditor, tenant {tenant}: {title}"));
        let code = dj.show(&auditor, tenant, &args)?;
        ensure!(code == 0, "dj {args:?} exited {code}");
    }

    stage("where to look");
    println!("  report:     {report_dir}/report.html (and report.json, records.csv)");
    println!("  bucket:     s3://{bucket}  (decisions/, checkpoints/, metrics/, retention/)");
    println!(
        "  index:      DynamoDB tables {} and {}",
        j.stack.output("TableName")?,
        j.stack.output("LedgerTableName")?
    );
    println!("  endpoint:   still running; `source .dj/endpoint.env` to use it, `localstack/stop.sh` to stop it");
    Ok(())
}
