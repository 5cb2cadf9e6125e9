//! The caller's proof of IAM identity, put into every invocation unless `--no-identity`.
//!
//! The proof is an STS `GetCallerIdentity` request signed with the caller's credentials and not
//! sent (`journal_aws::identity`); the replay function forwards it to STS to learn who calls.
//! A proof is accepted for a limited time, so long runs (what-if over many pages, reports) sign
//! a fresh one every few minutes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use serde_json::Value;

use crate::error::DjError;

/// How long one signed proof is reused (the verifier accepts 15 minutes).
const REUSE_FOR: Duration = Duration::from_secs(5 * 60);

/// Which STS endpoint the proof is signed for: `--sts-url`/`DJ_STS_URL`, else a local
/// endpoint from `AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL`, else the region's STS.
pub fn sts_url(explicit: Option<&str>, region: &str) -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    explicit
        .map(str::to_string)
        .or_else(|| env("AWS_ENDPOINT_URL_STS"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| journal_aws::identity::default_sts_url(region))
}

/// Signs proofs for one STS endpoint, reusing each for a few minutes.
pub struct Prover {
    sts_url: String,
    cached: Mutex<Option<(Instant, Value)>>,
}

impl Prover {
    pub fn new(sts_url: String) -> Self {
        Prover {
            sts_url,
            cached: Mutex::new(None),
        }
    }

    /// The proof as JSON for `Invocation.identity`.
    pub async fn proof(&self, config: &SdkConfig) -> Result<Value, DjError> {
        if let Ok(cached) = self.cached.lock() {
            if let Some((at, proof)) = cached.as_ref() {
                if at.elapsed() < REUSE_FOR {
                    return Ok(proof.clone());
                }
            }
        }
        let failed = |detail: String| DjError::Identity {
            sts_url: self.sts_url.clone(),
            detail,
        };
        let proof = journal_aws::identity::prove_identity(config, &self.sts_url)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let value = serde_json::to_value(&proof).map_err(|e| failed(e.to_string()))?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), value.clone()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_sts_url_wins() {
        assert_eq!(
            sts_url(Some("http://127.0.0.1:5000"), "eu-west-1"),
            "http://127.0.0.1:5000"
        );
    }
}
