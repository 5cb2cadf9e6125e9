//! `infra/template.yaml` as a whole: lint-clean, and deployed into the endpoint with the four
//! function binaries, its key settings are what the code and the security design rely on
//! (`localstack/check_stack.py` reads them back through the service APIs: the DLQ redrive, the
//! event source mapping with ReportBatchItemFailures, Object Lock, GSIs, the schedules and their
//! inputs, each role's IAM actions, the alarms). Storage-only stacks, which the other
//! integration tests deploy, keep working.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use integration_tests::emulator::build_binaries;
use integration_tests::harness::{require_endpoint, unique_prefix};
use integration_tests::stack::{python, repo_root, Stack};

const FUNCTIONS: [&str; 4] = ["ingest", "compact", "retention", "replay"];

#[test]
fn the_template_is_cfn_lint_clean() -> Result<()> {
    let python = python()?;
    let cfn_lint = python
        .parent()
        .context("venv python has no bin directory")?
        .join("cfn-lint");
    let out = Command::new(&cfn_lint)
        .arg(repo_root().join("infra/template.yaml"))
        .output()
        .with_context(|| format!("running {}", cfn_lint.display()))?;
    ensure!(
        out.status.success(),
        "cfn-lint infra/template.yaml failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `dir/<function>/bootstrap` for each function, as `cargo lambda build` lays them out, from
/// the dev binaries (copied: deploy.py zips them with mode 0755).
fn code_dir(dir: &Path, binaries: &[PathBuf]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (function, binary) in FUNCTIONS.iter().zip(binaries) {
        let to = dir.join(function);
        std::fs::create_dir_all(&to)?;
        let bootstrap = to.join("bootstrap");
        std::fs::copy(binary, &bootstrap)
            .with_context(|| format!("copying {} to {}", binary.display(), bootstrap.display()))?;
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Removes the code directory however the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_whole_stack_deploys_with_its_functions_trigger_roles_alarms_and_schedules() -> Result<()> {
    require_endpoint()?;
    let started = std::time::Instant::now();
    let stage = |what: &str| eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let binaries = build_binaries(&FUNCTIONS)?;
    stage("function binaries built");
    let prefix = unique_prefix("stack");
    let dir = TempDir(std::env::temp_dir().join(format!("{prefix}-code")));
    code_dir(&dir.0, &binaries)?;

    // Not the defaults, so the check sees the parameters arrive. 6 x 25 + 20 stays within the
    // queue's 180 s visibility timeout, as AWS asks of an SQS event source.
    let params = [
        ("IngestBatchSize", "50"),
        ("IngestBatchingWindowSeconds", "20"),
        ("IngestTimeout", "25"),
    ];
    let stack = Stack::deploy_with_code(&prefix, &params, &dir.0)?;
    stage("whole stack deployed");
    for function in FUNCTIONS {
        let cap = format!("{}{}", function[..1].to_uppercase(), &function[1..]);
        let name = stack.output(&format!("{cap}FunctionName"))?;
        ensure!(
            name == format!("{prefix}-{function}"),
            "{function}: function name {name}"
        );
    }

    let dlq = format!("{prefix}-ingest-dlq");
    let mut expected: Vec<String> = [
        // Storage the code relies on.
        "sqs redrive to the DLQ",
        "sqs maxReceiveCount 5",
        "s3 versioning Enabled",
        "s3 Object Lock enabled",
        "s3 Object Lock has no default retention",
        "dynamodb GSIs by_subject, by_model",
        "dynamodb point-in-time recovery",
        // The trigger.
        "esm exactly one mapping into ingest",
        "esm source is the ingest queue",
        "esm target is the ingest function",
        "esm ReportBatchItemFailures",
        "esm batch size 50",
        "esm batching window 20 s",
        "esm enabled",
        "sqs visibility timeout >= 6 x ingest timeout + batching window",
        // The schedules and what they send.
        "compact schedule targets the stack's compact function",
        "compact schedule input is the compact task",
        "scheduler role may only invoke the compact function",
        "retention schedule targets the stack's retention function",
        "retention schedule input is the run task",
        "scheduler role may only invoke the retention function",
        "replay schedule targets the stack's replay function",
        "replay schedule input is the checkpoint task",
        "scheduler role may only invoke the replay function",
        // Least privilege.
        "iam no wildcard actions, no Resource *, Allow statements only",
        "iam producer role: exactly the reviewed actions and resources",
        "iam auditor role: exactly the reviewed actions and resources",
        "iam kms:Decrypt of the subject key: ingest (sealing) and replay only",
        "iam kms:GenerateDataKey of the subject key: ingest only",
        "iam compact and retention hold no subject-key permission",
        "iam kms:Sign with the checkpoint key: retention and replay only",
        "iam only replay reads the whole bucket, and people reach it only through the auditor policy",
        "iam subject-key use is bound to a tenant_id + subject_ref encryption context",
        "iam producer role carries the producer policy and nothing else",
        "iam auditor role carries the auditor policy and nothing else",
        "replay access policy names the stack's auditor role",
        // Alarms.
        "alarm dlq depth exists",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    expected.push(format!(
        "alarm dlq depth: AWS/SQS ApproximateNumberOfMessagesVisible of QueueName={dlq} > 0"
    ));
    for function in FUNCTIONS {
        expected.extend([
            format!("{function} function runtime provided.al2023, handler bootstrap"),
            format!("{function} function code uploaded"),
            format!("{function} function runs as its own role"),
            format!("{function} function environment has every variable config.rs requires"),
            format!("{function} function environment names this stack's resources"),
            format!("{function} function does not trust payload principals"),
            format!("iam {function} role: exactly the reviewed actions and resources"),
            format!("iam {function} role trusted by lambda.amazonaws.com only"),
            format!(
                "alarm {function} errors: AWS/Lambda Errors of FunctionName={prefix}-{function} > 0"
            ),
        ]);
    }
    let expected: Vec<String> = expected.into_iter().map(|l| format!("PASS  {l}")).collect();
    let lines: Vec<&str> = expected.iter().map(String::as_str).collect();
    let report = stack.check(&lines)?;
    ensure!(!report.contains("FAIL"), "check_stack.py:\n{report}");
    stage("deployed settings checked");

    // An update with nothing to change (the same code, the same parameters) leaves every
    // resource as it was: the same functions, keys and mapping.
    let again = Stack::deploy_with_code(&prefix, &params, &dir.0)?;
    for key in [
        "IngestFunctionArn",
        "ReplayFunctionArn",
        "CheckpointKeyId",
        "SubjectKeyId",
        "SecretArn",
        "IngestEventSourceMappingId",
    ] {
        ensure!(
            again.output(key)? == stack.output(key)?,
            "{key} changed on a redeploy: {} -> {}",
            stack.output(key)?,
            again.output(key)?
        );
    }
    again.check(&lines)?;
    stage("redeployed unchanged and checked again");
    Ok(())
}

#[test]
fn a_storage_only_stack_has_no_functions_and_schedules_functions_given_by_arn() -> Result<()> {
    require_endpoint()?;
    let prefix = unique_prefix("storage");
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let arn = |f: &str| format!("arn:aws:lambda:{region}:123456789012:function:{prefix}-{f}");
    let (compact, retention) = (arn("compact"), arn("retention"));
    let stack = Stack::deploy_with(
        &prefix,
        &[
            ("CompactFunctionArn", &compact),
            ("RetentionFunctionArn", &retention),
        ],
    )?;
    for key in [
        "IngestFunctionName",
        "IngestEventSourceMappingId",
        "AuditorPolicyArn",
        "DeadLetterAlarmName",
        "CheckpointScheduleName",
    ] {
        if stack.outputs.contains_key(key) {
            bail!("storage-only stack {} has output {key}", stack.name);
        }
    }
    let report = stack.check(&[
        "PASS  sqs redrive to the DLQ",
        "PASS  s3 Object Lock enabled",
        "PASS  dynamodb GSIs by_subject, by_model",
        "PASS  compact schedule input is the compact task",
        "PASS  scheduler role may only invoke the compact function",
        "PASS  retention schedule input is the run task",
        "PASS  scheduler role may only invoke the retention function",
    ])?;
    ensure!(
        report.contains(&format!(
            "(arn:aws:lambda:{region}:123456789012:function:{prefix}-compact)"
        )) && !report.contains("function outputs present"),
        "schedules should target the given ARNs and no function be checked:\n{report}"
    );
    Ok(())
}
