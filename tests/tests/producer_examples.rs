//! The producer examples against the local endpoint: `examples/python/producer.py` (boto3, from
//! the pinned venv) and `examples/typescript` (AWS SDK v3; `npm ci`, `tsc`, then node) send to a
//! fresh stack's queue, the event-source stand-in drains it through the in-process ingest, and
//! every record each example reports is found in the journal by id with its kind, none is
//! dead-lettered, every body held at most 25 KiB and every record passes the JSON Schema. The
//! sampled-out decisions are those the Rust client's rule drops, none is in the journal, and
//! each kept decision is stored with the rate of its risk tier.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, ensure, Context, Result};
use integration_tests::poller::drain;
use integration_tests::schema_check::check_records;
use integration_tests::stack::{python, repo_root};
use integration_tests::TestJournal;
use journal_core::columnar::JournalRow;
use journal_core::ports::{IndexEntry, JournalIndex};
use journal_core::timestamp::Timestamp;
use journal_producer::Sampling;
use journal_synth::record_id;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Decisions per example: enough for several 25 KiB bodies (so more than one
/// SendMessageBatch), and for every risk tier to be both kept and dropped.
const COUNT: usize = 400;
const LOW_RATE: f64 = 0.5;
const MEDIUM_RATE: f64 = 0.8;
/// The examples' limit on one message body.
const MAX_MESSAGE_BYTES: usize = 25 * 1024;

/// What an example prints on stdout.
#[derive(Debug, Deserialize)]
struct Report {
    sent: Vec<Sent>,
    sampled_out: Vec<SampledOut>,
    failed: Vec<String>,
    messages: usize,
    calls: usize,
}

#[derive(Debug, Deserialize)]
struct Sent {
    record_id: String,
    kind: String,
    tenant_id: String,
    decision_id: String,
    risk_tier: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SampledOut {
    decision_id: String,
    risk_tier: String,
    rate: f64,
}

/// The rate the test asked for, by tier: what a kept decision must carry.
fn expected_rate(tier: &str) -> Result<f64> {
    Ok(match tier {
        "high" => 1.0,
        "medium" => MEDIUM_RATE,
        "low" => LOW_RATE,
        other => bail!("unexpected risk tier {other:?}"),
    })
}

fn run(what: &str, cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Fails with a message naming the tool when it is not installed.
fn require_tool(tool: &str) -> Result<()> {
    match Command::new(tool).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => bail!("`{tool}` is not available: the TypeScript example needs Node.js 20+ and npm"),
    }
}

/// Installs the locked dependencies and compiles the example to `dist/`.
fn build_typescript(dir: &Path) -> Result<PathBuf> {
    require_tool("node")?;
    require_tool("npm")?;
    run(
        "npm ci",
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefer-offline"])
            .current_dir(dir),
    )?;
    run(
        "tsc",
        Command::new("npm").args(["run", "build"]).current_dir(dir),
    )?;
    let js = dir.join("dist/producer.js");
    ensure!(js.exists(), "tsc did not write {}", js.display());
    Ok(js)
}

/// Each example writes as its own tenant, so that its records cannot be mistaken for the other's.
fn tenant_of(example: &str) -> String {
    format!("examples_{}", example.to_lowercase())
}

fn run_example(name: &str, mut cmd: Command, queue_url: &str) -> Result<Report> {
    let count = COUNT.to_string();
    let (low, medium) = (LOW_RATE.to_string(), MEDIUM_RATE.to_string());
    cmd.args(["--queue-url", queue_url, "--count", &count])
        .args(["--tenant", &tenant_of(name)])
        .args(["--low-rate", &low, "--medium-rate", &medium]);
    let out = run(&format!("the {name} example"), &mut cmd)?;
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "the {name} example's report: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_and_typescript_examples_records_are_found_in_the_journal() -> Result<()> {
    let ts_dir = repo_root().join("examples/typescript");
    // The TypeScript build does not need the stack: both at once.
    let build = tokio::task::spawn_blocking({
        let dir = ts_dir.clone();
        move || build_typescript(&dir)
    });
    let j = TestJournal::new("producer_examples", 900).await?;
    let js = build.await??;

    let queue = j.queue_url.clone();
    let py = python()?;
    let script = repo_root().join("examples/python/producer.py");
    let python_run = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(py);
        cmd.arg(script);
        run_example("Python", cmd, &queue)
    });
    let queue = j.queue_url.clone();
    let typescript_run = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("node");
        cmd.arg(js).current_dir(&ts_dir);
        run_example("TypeScript", cmd, &queue)
    });
    let reports = [
        ("Python", python_run.await??),
        ("TypeScript", typescript_run.await??),
    ];

    // Ingest, keeping each message body as it arrived, once per message id.
    let mut bodies = BTreeMap::new();
    let stats = drain(&j.clients.sqs, &j.queue_url, &j.mapping, |event| {
        for m in &event.records {
            if let (Some(id), Some(body)) = (&m.message_id, &m.body) {
                bodies.insert(id.clone(), body.clone());
            }
        }
        let deps = &j.deps;
        async move { Ok(ingest::handle_batch(event, deps, Timestamp::now()).await) }
    })
    .await?;
    ensure!(stats.failed == 0, "{stats:?}");
    ensure!(j.dead_letters().await?.is_empty(), "dead-lettered messages");

    let expected_messages: usize = reports.iter().map(|(_, r)| r.messages).sum();
    ensure!(
        bodies.len() == expected_messages,
        "{} messages on the queue, the examples report {expected_messages}",
        bodies.len()
    );
    let mut texts = Vec::new();
    for body in bodies.values() {
        ensure!(
            body.len() <= MAX_MESSAGE_BYTES,
            "a body of {} bytes",
            body.len()
        );
        let records: Vec<&RawValue> =
            serde_json::from_str(body).context("a body is a JSON array")?;
        texts.extend(records.iter().map(|r| r.get().to_string()));
    }
    let verdicts = check_records(&texts)?;
    for (text, v) in texts.iter().zip(&verdicts) {
        ensure!(
            v.valid,
            "the JSON Schema refuses a sent record {text}: {:?}",
            v.errors
        );
    }
    let queued: BTreeSet<String> = texts
        .iter()
        .map(|t| serde_json::from_str(t).map(|v| record_id(&v)))
        .collect::<Result<_, _>>()?;
    let reported: usize = reports.iter().map(|(_, r)| r.sent.len()).sum();
    ensure!(
        queued.len() == texts.len() && texts.len() == reported,
        "{} records queued ({} distinct ids), {reported} reported sent",
        texts.len(),
        queued.len()
    );

    let mut files: HashMap<String, Vec<JournalRow>> = HashMap::new();
    for (name, report) in &reports {
        ensure!(
            report.failed.is_empty(),
            "{name}: failed {:?}",
            report.failed
        );
        ensure!(
            report.messages >= 2,
            "{name}: {} messages: nothing was packed apart",
            report.messages
        );
        ensure!(
            report.calls >= report.messages.div_ceil(10),
            "{name}: {} messages in {} SendMessageBatch calls",
            report.messages,
            report.calls
        );
        let decisions = report.sent.iter().filter(|s| s.kind == "decision").count();
        ensure!(
            decisions + report.sampled_out.len() == COUNT,
            "{name}: {decisions} decisions sent and {} sampled out of {COUNT}",
            report.sampled_out.len()
        );
        for kind in ["outcome", "review"] {
            ensure!(
                report.sent.iter().filter(|s| s.kind == kind).count() == 1,
                "{name}: one {kind} expected"
            );
        }
        for s in &report.sent {
            ensure!(
                s.tenant_id == tenant_of(name),
                "{name}: tenant {}",
                s.tenant_id
            );
            ensure!(
                queued.contains(&s.record_id),
                "{name}: {} reported but never queued",
                s.record_id
            );
        }
        for s in &report.sent {
            let found = j.deps.index.get_pointer(&s.tenant_id, &s.record_id).await?;
            let Some(IndexEntry::Indexed(p)) = found else {
                bail!(
                    "{name}: {} {} was sent but is not in the journal: {found:?}",
                    s.kind,
                    s.record_id
                );
            };
            ensure!(
                p.kind == s.kind,
                "{name}: {} stored as {}, sent as {}",
                s.record_id,
                p.kind,
                s.kind
            );
            if s.kind == "decision" {
                let tier = s.risk_tier.as_deref().context("a decision's risk tier")?;
                ensure!(
                    p.risk_tier.as_deref() == Some(tier),
                    "{name}: tier of {}",
                    s.record_id
                );
                let rate = expected_rate(tier)?;
                ensure!(
                    Sampling::keeps(&s.decision_id, rate),
                    "{name}: {} was sent though the producer client would drop it at {rate}",
                    s.decision_id
                );
                if !files.contains_key(&p.file_key) {
                    files.insert(p.file_key.clone(), j.read_file(&p.file_key).await?);
                }
                let row = files[&p.file_key]
                    .iter()
                    .find(|row| row.record.record_id() == s.record_id)
                    .context("the decision's row")?;
                ensure!(
                    row.record.sampling_rate == Some(rate),
                    "{name}: {} stored with sampling rate {:?}, expected {rate}",
                    s.record_id,
                    row.record.sampling_rate
                );
            } else {
                ensure!(
                    p.refers_to.as_deref() == Some(s.decision_id.as_str()),
                    "{name}: {} refers to {:?}",
                    s.record_id,
                    p.refers_to
                );
                ensure!(
                    report
                        .sent
                        .iter()
                        .any(|d| d.kind == "decision" && d.record_id == s.decision_id),
                    "{name}: a {} of a decision that was not sent",
                    s.kind
                );
            }
        }

        for d in &report.sampled_out {
            let rate = expected_rate(&d.risk_tier)?;
            ensure!(
                d.rate == rate && rate < 1.0,
                "{name}: {d:?} sampled at {rate}"
            );
            ensure!(
                !Sampling::keeps(&d.decision_id, rate),
                "{name}: {} was dropped though the producer client would keep it at {rate}",
                d.decision_id
            );
            ensure!(
                j.deps
                    .index
                    .get_pointer(&tenant_of(name), &d.decision_id)
                    .await?
                    .is_none(),
                "{name}: {} was sampled out but is in the journal",
                d.decision_id
            );
        }
        // Both sides of the rule for each sampled tier, so the checks above are not vacuous.
        for tier in ["low", "medium"] {
            ensure!(
                report.sampled_out.iter().any(|d| d.risk_tier == tier),
                "{name}: no {tier}-risk decision was sampled out"
            );
            ensure!(
                report
                    .sent
                    .iter()
                    .any(|s| s.risk_tier.as_deref() == Some(tier)),
                "{name}: no {tier}-risk decision was kept"
            );
        }
        ensure!(
            report
                .sent
                .iter()
                .any(|s| s.risk_tier.as_deref() == Some("high")),
            "{name}: no high-risk decision"
        );
    }
    Ok(())
}
