//! Deploys `infra/template.yaml` — the one source of truth for resources — into the endpoint
//! through its CloudFormation API, under a unique prefix so tests can run side by side.
//!
//! Deployment goes through `localstack/deploy.py`, which also fills in what moto's
//! CloudFormation silently skips (see localstack/README.md), so every test runs against the
//! same resources the demo and a real account get.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python interpreter of the pinned venv (set by scripts/test.sh), for deploy.py, pyarrow
/// and DuckDB.
pub fn python() -> Result<PathBuf> {
    let path = std::env::var_os("DJ_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    if !path.exists() {
        bail!(
            "no Python venv at {} — run the tests with scripts/test.sh, which creates it",
            path.display()
        );
    }
    Ok(path)
}

/// A deployed stack and its outputs.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub prefix: String,
    pub outputs: HashMap<String, String>,
}

impl Stack {
    pub fn output(&self, key: &str) -> Result<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("stack {} has no output {key}", self.name))
    }

    /// The environment the functions read, as their Lambda configuration would set it from
    /// this stack's outputs, with `extra` settings added (or overriding).
    pub fn function_env(&self, extra: &[(&str, &str)]) -> Result<HashMap<String, String>> {
        let mut env: HashMap<String, String> = [
            ("DJ_TABLE", "TableName"),
            ("DJ_LEDGER_TABLE", "LedgerTableName"),
            ("DJ_BUCKET", "BucketName"),
            ("DJ_DLQ_URL", "DlqUrl"),
            ("DJ_MASTER_KEY_SECRET_ID", "SecretArn"),
            ("DJ_SUBJECT_KEY_ID", "SubjectKeyId"),
            ("DJ_CHECKPOINT_KEY_ID", "CheckpointKeyId"),
        ]
        .into_iter()
        .map(|(k, output)| Ok((k.to_string(), self.output(output)?.to_string())))
        .collect::<Result<_>>()?;
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Ok(env)
    }

    /// Runs `localstack/check_stack.py` on the deployed resources; fails with its report unless
    /// every check passed and each of `expected` (a `PASS  …` line) is in it.
    pub fn check(&self, expected: &[&str]) -> Result<String> {
        let mut check = Command::new(python()?)
            .arg(repo_root().join("localstack/check_stack.py"))
            .args(["--outputs", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        serde_json::to_writer(check.stdin.take().context("stdin")?, &self.outputs)?;
        let checked = check.wait_with_output()?;
        let report = String::from_utf8_lossy(&checked.stdout).into_owned();
        if !checked.status.success() {
            bail!("check_stack.py:\n{report}");
        }
        for line in expected {
            if !report.contains(line) {
                bail!("{line} missing from:\n{report}");
            }
        }
        Ok(report)
    }

    /// Creates the stack and waits for it; fails with deploy.py's report if it does not complete.
    pub fn deploy(prefix: &str) -> Result<Self> {
        Self::deploy_with(prefix, &[])
    }

    /// As [`Stack::deploy`], with template parameters besides `Prefix`.
    pub fn deploy_with(prefix: &str, params: &[(&str, &str)]) -> Result<Self> {
        Self::run_deploy(prefix, params, None)
    }

    /// The whole stack, functions included: deploy.py zips `code_dir/<function>/bootstrap`
    /// (ingest, compact, retention, replay), uploads them to `<prefix>-artifacts` and sets the
    /// template's `CodeBucket` and `CodeKeyPrefix`. Deploying again with the same prefix updates
    /// the stack.
    pub fn deploy_with_code(
        prefix: &str,
        params: &[(&str, &str)],
        code_dir: &std::path::Path,
    ) -> Result<Self> {
        Self::run_deploy(prefix, params, Some(code_dir))
    }

    fn run_deploy(
        prefix: &str,
        params: &[(&str, &str)],
        code_dir: Option<&std::path::Path>,
    ) -> Result<Self> {
        let name = format!("{prefix}-stack");
        let mut cmd = Command::new(python()?);
        cmd.arg(repo_root().join("localstack/deploy.py"))
            .args(["--stack", &name, "--prefix", prefix]);
        for (k, v) in params {
            cmd.arg("--param").arg(format!("{k}={v}"));
        }
        if let Some(dir) = code_dir {
            cmd.arg("--code-dir").arg(dir);
        }
        let out = cmd.output().context("running localstack/deploy.py")?;
        if !out.status.success() {
            bail!(
                "deploying stack {name} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let outputs: HashMap<String, String> = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("deploy.py printed no outputs JSON for {name}"))?;
        Ok(Self {
            name,
            prefix: prefix.to_string(),
            outputs,
        })
    }
}
