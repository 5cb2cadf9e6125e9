//! The retention function's settings, read once from the environment and validated at start.

use std::collections::HashMap;

use journal_core::retention::RetentionConfig;

use journal_aws::function_env::Env;
pub use journal_aws::function_env::EnvError as ConfigError;

#[derive(Clone, Debug)]
pub struct Config {
    pub table: String,
    pub ledger_table: String,
    pub bucket: String,
    pub master_key_secret_id: String,
    /// The KMS key that signs checkpoints also signs tombstones, reports and erasure receipts.
    pub checkpoint_key_id: String,
    /// The KMS key that wraps subject data keys (erasure deletes the subject's wrapped key).
    pub subject_key_id: String,
    pub retention: RetentionConfig,
    /// Time kept back from the Lambda deadline: no file starts later than this before it.
    pub reserve_ms: u64,
    /// Most files listed in an invocation's answer per tenant (the stored report has them all).
    pub answer_files: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(env);
        let required = |name: &'static str| env.required(name);
        let number = |name: &'static str, default: u64, min: u64, max: u64| {
            env.number(name, default, min, max)
        };
        let defaults = RetentionConfig::default();
        let retention = RetentionConfig {
            max_dates: number(
                "DJ_RETENTION_MAX_DATES",
                u64::from(defaults.max_dates),
                1,
                3_660,
            )? as u32,
            lease_ms: number(
                "DJ_RETENTION_LEASE_SECONDS",
                (defaults.lease_ms / 1000) as u64,
                60,
                86_400,
            )? as i64
                * 1000,
            stop_at: None,
        };
        Ok(Self {
            table: required("DJ_TABLE")?,
            ledger_table: required("DJ_LEDGER_TABLE")?,
            bucket: required("DJ_BUCKET")?,
            master_key_secret_id: required("DJ_MASTER_KEY_SECRET_ID")?,
            checkpoint_key_id: required("DJ_CHECKPOINT_KEY_ID")?,
            subject_key_id: required("DJ_SUBJECT_KEY_ID")?,
            retention,
            reserve_ms: number("DJ_RETENTION_RESERVE_SECONDS", 60, 0, 900)? * 1000,
            answer_files: number("DJ_RETENTION_ANSWER_FILES", 200, 0, 10_000)? as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<String, String> {
        [
            ("DJ_TABLE", "t"),
            ("DJ_LEDGER_TABLE", "l"),
            ("DJ_BUCKET", "b"),
            ("DJ_MASTER_KEY_SECRET_ID", "s"),
            ("DJ_CHECKPOINT_KEY_ID", "k"),
            ("DJ_SUBJECT_KEY_ID", "sk"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn defaults_and_bounds() {
        let c = Config::from_map(&base()).unwrap();
        assert_eq!((c.retention.max_dates, c.retention.lease_ms), (62, 900_000));
        assert_eq!(c.reserve_ms, 60_000);
        let mut env = base();
        env.insert("DJ_RETENTION_MAX_DATES".into(), "0".into());
        let err = Config::from_map(&env).unwrap_err().to_string();
        assert!(
            err.contains("DJ_RETENTION_MAX_DATES") && err.contains("outside"),
            "{err}"
        );
        let mut env = base();
        env.remove("DJ_CHECKPOINT_KEY_ID");
        assert!(matches!(
            Config::from_map(&env),
            Err(ConfigError::Missing("DJ_CHECKPOINT_KEY_ID"))
        ));
    }
}
