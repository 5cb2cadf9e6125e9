//! The replay function's settings, read once from the environment and validated at start.

use std::collections::HashMap;

use base64::Engine;
use journal_core::access::AccessPolicy;

use journal_aws::function_env::Env;
pub use journal_aws::function_env::EnvError as ConfigError;

/// How the function learns who calls it.
#[derive(Clone, Debug, PartialEq)]
pub enum IdentityMode {
    /// Forward the caller's signed STS GetCallerIdentity request to this STS endpoint.
    Sts { url: String },
    /// Take the principal the payload states. Local runs only (the runtime emulator has no
    /// IAM); the infra template never sets it.
    TrustPayload,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub table: String,
    pub ledger_table: String,
    pub bucket: String,
    pub master_key_secret_id: String,
    pub subject_key_id: String,
    /// Roles by principal and declared PII fields per tenant (DESIGN §7), validated whole.
    pub policy: AccessPolicy,
    /// KMS key whose public half verifies checkpoints (fetched once at start).
    pub checkpoint_key_id: Option<String>,
    /// The public half given directly (DER), e.g. exported once from KMS.
    pub checkpoint_public_key: Option<Vec<u8>>,
    pub identity: IdentityMode,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(env);
        let get = |name: &'static str| env.get(name);
        let required = |name: &'static str| env.required(name);
        let policy_text = required("DJ_ACCESS_POLICY")?;
        let policy = AccessPolicy::parse(&policy_text).map_err(|e| ConfigError::Invalid {
            name: "DJ_ACCESS_POLICY",
            reason: e.to_string(),
        })?;
        let checkpoint_public_key = match get("DJ_CHECKPOINT_PUBLIC_KEY") {
            None => None,
            Some(b64) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| ConfigError::Invalid {
                        name: "DJ_CHECKPOINT_PUBLIC_KEY",
                        reason: format!("not base64 DER: {e}"),
                    })?,
            ),
        };
        let identity = match get("DJ_TRUST_PAYLOAD_PRINCIPAL").as_deref().map(str::trim) {
            Some("true") => IdentityMode::TrustPayload,
            None | Some("false") => IdentityMode::Sts {
                url: get("DJ_STS_URL")
                    .or_else(|| get("AWS_ENDPOINT_URL_STS"))
                    .or_else(|| get("AWS_ENDPOINT_URL"))
                    .unwrap_or_else(|| {
                        let region = get("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
                        journal_aws::identity::default_sts_url(&region)
                    }),
            },
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "DJ_TRUST_PAYLOAD_PRINCIPAL",
                    reason: format!("{other:?}: expected true or false"),
                })
            }
        };
        Ok(Self {
            table: required("DJ_TABLE")?,
            ledger_table: required("DJ_LEDGER_TABLE")?,
            bucket: required("DJ_BUCKET")?,
            master_key_secret_id: required("DJ_MASTER_KEY_SECRET_ID")?,
            subject_key_id: required("DJ_SUBJECT_KEY_ID")?,
            policy,
            checkpoint_key_id: get("DJ_CHECKPOINT_KEY_ID"),
            checkpoint_public_key,
            identity,
        })
    }
}
