//! One place that builds the SDK clients, from the environment (DESIGN §10): the SDK itself
//! honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`; S3 additionally needs path-style
//! addressing when an endpoint is configured (local emulators serve no bucket subdomains).

use aws_config::{BehaviorVersion, SdkConfig};
use journal_core::keys::{KeyError, MasterKey};
use journal_core::ports::PortError;
use zeroize::Zeroizing;

use crate::errors::sdk_error;

/// The clients of every service the journal uses, built once per process and cheap to clone.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub kms: aws_sdk_kms::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub sdk_config: SdkConfig,
}

impl AwsClients {
    /// Loads the shared configuration (region, credentials, endpoints) from the environment.
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_sdk_config(&config)
    }

    /// Builds the clients from an already loaded configuration.
    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        let path_style = config.endpoint_url().is_some() || endpoint_env_set();
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            secretsmanager: aws_sdk_secretsmanager::Client::new(config),
            sdk_config: config.clone(),
        }
    }
}

/// Whether an S3 endpoint override is configured through the environment.
fn endpoint_env_set() -> bool {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Why the tenant master key could not be loaded. Messages name the secret, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret {secret_id:?}: {source}")]
    Fetch {
        secret_id: String,
        #[source]
        source: PortError,
    },
    #[error("secret {secret_id:?} has neither a string nor a binary value")]
    Empty { secret_id: String },
    #[error("secret {secret_id:?} is binary but not UTF-8 text")]
    NotText { secret_id: String },
    #[error("secret {secret_id:?} is not a valid master key secret: {source}")]
    Invalid {
        secret_id: String,
        #[source]
        source: KeyError,
    },
}

impl SecretError {
    /// Whether retrying later may help (throttling, network); otherwise fix the configuration.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SecretError::Fetch {
                source: PortError::Transient { .. },
                ..
            }
        )
    }
}

/// Reads the tenant master key secret (`{"version":1,"master_key":"…"}`) from Secrets Manager.
#[tracing::instrument(skip(client))]
pub async fn load_master_key(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<MasterKey, SecretError> {
    let mut out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| SecretError::Fetch {
            secret_id: secret_id.to_string(),
            source: sdk_error("get secret value", &format!("(secret {secret_id})"), &e),
        })?;
    let text = match (out.secret_string.take(), out.secret_binary.take()) {
        (Some(text), _) => Zeroizing::new(text),
        (None, Some(blob)) => {
            let bytes = Zeroizing::new(blob.into_inner());
            let text = std::str::from_utf8(&bytes).map_err(|_| SecretError::NotText {
                secret_id: secret_id.to_string(),
            })?;
            Zeroizing::new(text.to_string())
        }
        (None, None) => {
            return Err(SecretError::Empty {
                secret_id: secret_id.to_string(),
            })
        }
    };
    MasterKey::from_secret_json(&text).map_err(|source| SecretError::Invalid {
        secret_id: secret_id.to_string(),
        source,
    })
}
