//! People at the `dj` command line: role sessions from STS (the callers the replay function
//! maps to roles), and `dj` run as a process against a replay function's Invoke API.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The account moto and LocalStack use.
pub const ACCOUNT: &str = "123456789012";

/// An access policy mapping the `dj-auditor` and `dj-operator` role sessions to their roles.
pub fn access_policy() -> String {
    serde_json::json!({
        "version": 1,
        "roles": {
            "auditor": [format!("arn:aws:sts::{ACCOUNT}:assumed-role/dj-auditor/*")],
            "operator": [format!("arn:aws:sts::{ACCOUNT}:assumed-role/dj-operator/*")]
        }
    })
    .to_string()
}

/// Credentials of one caller (a role session from STS).
pub struct Creds {
    pub key: String,
    pub secret: String,
    pub token: String,
}

pub async fn assume(sts: &aws_sdk_sts::Client, role: &str) -> Result<Creds> {
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{role}"))
        .role_session_name(format!("{role}-session"))
        .send()
        .await?;
    let c = out.credentials().context("no credentials")?;
    Ok(Creds {
        key: c.access_key_id().to_string(),
        secret: c.secret_access_key().to_string(),
        token: c.session_token().to_string(),
    })
}

/// `dj` with one caller's credentials, for one tenant, against the replay function behind
/// `endpoint`.
pub struct Dj<'a> {
    pub bin: &'a Path,
    pub endpoint: String,
    pub function: &'a str,
}

impl Dj<'_> {
    fn command(&self, creds: &Creds, tenant: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin);
        cmd.env("AWS_ACCESS_KEY_ID", &creds.key)
            .env("AWS_SECRET_ACCESS_KEY", &creds.secret)
            .env("AWS_SESSION_TOKEN", &creds.token)
            .env("DJ_TENANT", tenant)
            .env("DJ_PURPOSE", "case 2026-118: model risk review")
            .env("DJ_LAMBDA_ENDPOINT", &self.endpoint)
            .env("DJ_REPLAY_FUNCTION", self.function)
            .args(args);
        cmd
    }

    /// Runs `dj`; returns exit code, stdout, stderr.
    pub fn run(&self, creds: &Creds, tenant: &str, args: &[&str]) -> Result<(i32, String, String)> {
        let out = self
            .command(creds, tenant, args)
            .env("NO_COLOR", "1")
            .output()
            .context("running dj")?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Runs `dj --json`; fails unless it exits 0 with JSON.
    pub fn json(&self, creds: &Creds, tenant: &str, args: &[&str]) -> Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.run(creds, tenant, &all)?;
        if code != 0 {
            bail!("dj {args:?} exited {code}: {err}{out}");
        }
        serde_json::from_str(&out).with_context(|| format!("dj {args:?} printed no JSON: {out}"))
    }

    /// Runs `dj` with its output on this terminal (tables and colours, as a person sees it);
    /// returns the exit code.
    pub fn show(&self, creds: &Creds, tenant: &str, args: &[&str]) -> Result<i32> {
        let status = self
            .command(creds, tenant, args)
            .status()
            .context("running dj")?;
        Ok(status.code().unwrap_or(-1))
    }
}
