//! The replay function as a real Lambda process under the runtime emulator, driven by `dj` as
//! a process: callers proven by signed STS requests and mapped to roles, masking per role,
//! re-execution, what-if against a brute-force recount, verify, the report files, and an
//! access journal that names every one of those reads.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use integration_tests::auditor::{access_policy, assume, Creds, Dj};
use integration_tests::emulator::{build_binaries, Emulated, FUNCTION_NAME};
use integration_tests::TestJournal;
use journal_aws::checkpoints::{CheckpointRetention, S3CheckpointStore};
use journal_core::checkpoint::{latest_checkpoint, CheckpointPublicKey};
use journal_core::models::redecide;
use journal_core::record::Output;
use journal_core::timestamp::Timestamp;
use journal_synth::{generate, model_artifacts, producer_body, record_id, SynthConfig};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_replay_binary_answers_dj_through_the_runtime_emulator_and_journals_every_read(
) -> Result<()> {
    let j = TestJournal::new("replay-fn", 900).await?;
    let mut cfg = SynthConfig::new(31);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - 3 * 3600 * 1000)?;
    cfg.mean_gap_ms = 20;
    cfg.subjects_per_tenant = 30;
    let records = generate(cfg, 300);
    let bodies: Vec<Vec<u8>> = records.iter().map(producer_body).collect();
    j.send_and_drain(&bodies, 100).await?;

    // The registry the generator decided with, and a signed checkpoint per tenant.
    j.publish_model_registry().await?;
    let bucket = j.stack.output("BucketName")?.to_string();
    let checkpoint_key = j.stack.output("CheckpointKeyId")?.to_string();
    let tenants: BTreeSet<String> = records
        .iter()
        .filter_map(|r| r["tenant_id"].as_str().map(str::to_string))
        .collect();

    // The binaries, and the function running under the emulator.
    let bins = build_binaries(&["replay", "dj"])?;
    let (replay_bin, dj_bin) = (&bins[0], &bins[1]);
    let mut emu = Emulated::start()?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").context("AWS_ENDPOINT_URL")?;
    let env: Vec<(String, String)> = [
        ("DJ_TABLE", j.config.table.clone()),
        ("DJ_LEDGER_TABLE", j.config.ledger_table.clone()),
        ("DJ_BUCKET", bucket.clone()),
        (
            "DJ_MASTER_KEY_SECRET_ID",
            j.config.master_key_secret_id.clone(),
        ),
        ("DJ_SUBJECT_KEY_ID", j.config.subject_key_id.clone()),
        ("DJ_ACCESS_POLICY", access_policy()),
        ("DJ_CHECKPOINT_KEY_ID", checkpoint_key.clone()),
        ("DJ_STS_URL", endpoint.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    emu.run_function(replay_bin, &env)?;

    // The scheduled checkpoint run, as EventBridge Scheduler invokes it: one signed checkpoint
    // per tenant, with the KMS key of the stack.
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&j.clients.sdk_config)
            .endpoint_url(emu.endpoint())
            .build(),
    );
    let out = lambda
        .invoke()
        .function_name(FUNCTION_NAME)
        .payload(aws_smithy_types::Blob::new(
            br#"{"task":"checkpoint"}"#.to_vec(),
        ))
        .send()
        .await?;
    let payload: Value = serde_json::from_slice(out.payload().context("payload")?.as_ref())?;
    assert!(out.function_error().is_none(), "{payload}");
    let written: BTreeSet<String> = payload["tenants"]
        .as_array()
        .context("tenants")?
        .iter()
        .filter(|t| t["outcome"] == "written")
        .filter_map(|t| t["tenant_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(written, tenants, "{payload}");

    // Each verifies offline with only the public key; an altered one does not.
    let public = j
        .clients
        .kms
        .get_public_key()
        .key_id(&checkpoint_key)
        .send()
        .await?;
    let public = CheckpointPublicKey::from_der(public.public_key().context("DER")?.as_ref())?;
    let checkpoints = S3CheckpointStore::new(
        j.clients.s3.clone(),
        &bucket,
        CheckpointRetention::default(),
    );
    for t in &tenants {
        let (_, signed) = latest_checkpoint(&checkpoints, t)
            .await?
            .context("checkpoint")?;
        let signature = signed.signature_der()?;
        public.verify_digest(&signed.checkpoint.digest(), &signature)?;
        let mut altered = signed.checkpoint.clone();
        altered.seq += 1;
        assert!(public.verify_digest(&altered.digest(), &signature).is_err());
    }

    let dj = Dj {
        bin: dj_bin,
        endpoint: emu.endpoint(),
        function: FUNCTION_NAME,
    };
    let sts = aws_sdk_sts::Client::new(&j.clients.sdk_config);
    let auditor = assume(&sts, "dj-auditor").await?;
    let operator = assume(&sts, "dj-operator").await?;

    // A scored decision of a deterministic model, with its tenant.
    let decision = records
        .iter()
        .find(|r| {
            r["kind"] == "decision"
                && r.get("llm").is_none()
                && r["model"]["name"].as_str() == Some("credit-risk")
        })
        .context("a credit-risk decision")?;
    let tenant = decision["tenant_id"].as_str().context("tenant")?;
    let id = record_id(decision);

    // Lookup as auditor: full record, proof, checkpoint coverage.
    let full = dj.json(&auditor, tenant, &["replay", &id])?;
    assert_eq!(full["role"], "auditor", "{full}");
    let view = &full["answer"]["records"][0];
    assert_eq!(view["status"], "found", "{full}");
    assert_eq!(view["proof"]["verified"], true, "{full}");
    assert_eq!(view["checkpointed"], true, "{full}");
    assert!(view.get("redacted").is_none(), "auditors see everything");
    let subject_ref = view["record"]["subject_ref"]
        .as_str()
        .context("subject_ref")?;
    assert_eq!(subject_ref.len(), 64);

    // The same lookup as operator: masked, the redactions listed.
    let masked = dj.json(&operator, tenant, &["replay", &id])?;
    assert_eq!(masked["role"], "operator");
    let mview = &masked["answer"]["records"][0];
    let redacted: Vec<&str> = mview["redacted"]
        .as_array()
        .context("redacted list")?
        .iter()
        .filter_map(|r| r["path"].as_str())
        .collect();
    assert!(redacted.contains(&"subject_ref"), "{redacted:?}");
    assert_ne!(mview["record"]["subject_ref"].as_str(), Some(subject_ref));

    // Re-execution by the auditor matches exactly; operators may not.
    let rx = dj.json(&auditor, tenant, &["replay", &id, "--reexecute"])?;
    let reexec = &rx[1]["answer"];
    assert_eq!(reexec["features_source"], "decrypted", "{rx}");
    assert_eq!(reexec["comparison"]["matches_exactly"], true, "{rx}");
    let (code, _, err) = dj.run(&operator, tenant, &["replay", &id, "--reexecute"])?;
    assert_eq!(code, 3, "operator re-execution is denied: {err}");

    // One decision of each artifact kind present: each re-runs exactly.
    let kinds: BTreeMap<String, String> = model_artifacts()
        .into_iter()
        .map(|(m, a)| (m.artifact_sha256, a.kind().to_string()))
        .collect();
    let mut seen = BTreeSet::new();
    for r in &records {
        let Some(kind) = r["model"]["artifact_sha256"]
            .as_str()
            .and_then(|sha| kinds.get(sha))
        else {
            continue;
        };
        if r["kind"] != "decision" || !seen.insert(kind.clone()) {
            continue;
        }
        let rid = record_id(r);
        let t = r["tenant_id"].as_str().context("tenant")?;
        let rx = dj.json(&auditor, t, &["replay", &rid, "--reexecute"])?;
        let answer = &rx[1]["answer"];
        assert_eq!(answer["artifact_kind"], kind.as_str(), "{rx}");
        assert_eq!(answer["comparison"]["matches_exactly"], true, "{rx}");
    }
    // (300 records need not hold every kind; the in-process service test covers all of them.)
    assert!(seen.len() >= 3, "kinds re-executed: {seen:?}");

    // A subject's records: the raw id goes in, exactly that subject's records come out.
    let subject_id = decision["subject"]["id"].as_str().context("subject id")?;
    let expected: BTreeSet<String> = records
        .iter()
        .filter(|r| r["tenant_id"] == tenant && r["subject"]["id"].as_str() == Some(subject_id))
        .map(record_id)
        .collect();
    let pages = dj.json(&auditor, tenant, &["query", "--subject", subject_id])?;
    let got: BTreeSet<String> = pages
        .as_array()
        .context("pages")?
        .iter()
        .flat_map(|p| {
            p["answer"]["records"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|v| v["record_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(got, expected);

    // What-if over the model's range equals a brute-force recount.
    let (name, version) = (
        decision["model"]["name"].as_str().context("name")?,
        decision["model"]["version"].as_str().context("version")?,
    );
    let artifact = model_artifacts()
        .into_iter()
        .find(|(m, _)| m.name == name && m.version == version)
        .map(|(_, a)| a)
        .context("artifact")?;
    let mut brute = BTreeMap::new();
    for r in records.iter().filter(|r| {
        r["kind"] == "decision"
            && r["tenant_id"] == tenant
            && r["model"]["name"] == name
            && r["model"]["version"] == version
    }) {
        let outputs: Vec<Output> = serde_json::from_value(r["outputs"].clone())?;
        let new = redecide(&artifact, &outputs, 0.8)?.decision;
        if Some(new.as_str()) != r["decision"].as_str() {
            brute.insert(record_id(r), new);
        }
    }
    let wi = dj.json(
        &auditor,
        tenant,
        &[
            "what-if",
            "--model",
            name,
            "--version",
            version,
            "--from",
            "2020-01-01",
            "--to",
            "2090-01-01",
            "--threshold",
            "0.8",
        ],
    )?;
    let flips: BTreeMap<String, String> = wi["totals"]["flips"]
        .as_array()
        .context("flips")?
        .iter()
        .map(|f| {
            (
                f["decision_id"].as_str().unwrap_or_default().to_string(),
                f["new"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(flips, brute, "{}", wi["totals"]);

    // Verify passes with the checkpoint key; exit 0.
    let verified = dj.json(&auditor, tenant, &["verify"])?;
    assert_eq!(verified["answer"]["ok"], true, "{verified}");

    // The report files.
    let out_dir = std::env::temp_dir().join(format!("dj-report-{}", uuid::Uuid::new_v4()));
    let (code, _, err) = dj.run(
        &auditor,
        tenant,
        &[
            "report",
            "--from",
            "2020-01-01",
            "--to",
            "2090-01-01",
            "--out",
            out_dir.to_str().context("path")?,
        ],
    )?;
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out_dir.join("report.html"))?;
    assert!(
        html.contains(tenant) && html.contains(&id),
        "report names the records"
    );
    let csv = std::fs::read_to_string(out_dir.join("records.csv"))?;
    assert!(csv.lines().count() > 1);
    let _ = std::fs::remove_dir_all(&out_dir);

    // A caller with no role is refused (and still journaled).
    let base = Creds {
        key: std::env::var("AWS_ACCESS_KEY_ID")?,
        secret: std::env::var("AWS_SECRET_ACCESS_KEY")?,
        token: String::new(),
    };
    let (code, _, err) = dj.run(&base, tenant, &["replay", &id])?;
    assert_eq!(code, 3, "no role → denied: {err}");

    // The access journal names every read above, with who, role, purpose and what.
    let log = dj.json(&auditor, tenant, &["access"])?;
    let events: Vec<Value> = log
        .as_array()
        .context("pages")?
        .iter()
        .flat_map(|p| {
            p["answer"]["events"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let ops: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().unwrap_or_default().to_string(),
                e["role"].as_str().unwrap_or("none").to_string(),
                e["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for want in [
        ("lookup", "auditor", "ok"),
        ("lookup", "operator", "ok"),
        ("reexecute", "auditor", "ok"),
        ("reexecute", "operator", "denied"),
        ("query_subject", "auditor", "ok"),
        ("what_if", "auditor", "ok"),
        ("verify", "auditor", "ok"),
        ("query_range", "auditor", "ok"),
        ("export", "auditor", "ok"),
        ("lookup", "none", "denied"),
    ] {
        let want = (want.0.to_string(), want.1.to_string(), want.2.to_string());
        assert!(ops.contains(&want), "{want:?} missing from {ops:?}");
    }
    assert!(events
        .iter()
        .all(|e| e["purpose"] == "case 2026-118: model risk review"));
    let lookup = events
        .iter()
        .find(|e| e["operation"] == "lookup" && e["role"] == "auditor")
        .context("lookup event")?;
    assert!(lookup["read"]
        .as_array()
        .is_some_and(|r| r.iter().any(|x| x == id.as_str())));
    let text = serde_json::to_string(&events)?;
    assert!(
        !text.contains(subject_id),
        "the raw subject id never reaches the journal"
    );
    Ok(())
}
