//! The ingest function's settings, read once from the environment and validated at start.

use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// DynamoDB index table (record pointers and claims, subject keys).
    pub table: String,
    /// DynamoDB ledger table (chain heads, block headers, file manifest).
    pub ledger_table: String,
    /// S3 bucket of the Parquet files.
    pub bucket: String,
    /// Queue that receives rejected messages with their reasons.
    pub dead_letter_queue_url: String,
    /// Secrets Manager id of the tenant master key secret.
    pub master_key_secret_id: String,
    /// KMS key that wraps per-subject data keys.
    pub subject_key_id: String,
    pub keep_raw_features: bool,
    /// Seconds before an unchained claim is presumed dead; must exceed the function timeout.
    pub claim_lease_seconds: i64,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            env.get(name)
                .filter(|v| !v.trim().is_empty())
                .cloned()
                .ok_or(ConfigError::Missing(name))
        };
        let number = |name: &'static str, default: i64, min: i64| -> Result<i64, ConfigError> {
            match env.get(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(ConfigError::Invalid {
                        name,
                        value: v.clone(),
                        reason: "expected a whole number in range",
                    }),
                },
            }
        };
        let keep_raw_features = match env.get("DJ_KEEP_RAW_FEATURES").map(|v| v.trim()) {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(v) => {
                return Err(ConfigError::Invalid {
                    name: "DJ_KEEP_RAW_FEATURES",
                    value: v.to_string(),
                    reason: "expected true or false",
                })
            }
        };
        Ok(Self {
            table: required("DJ_TABLE")?,
            ledger_table: required("DJ_LEDGER_TABLE")?,
            bucket: required("DJ_BUCKET")?,
            dead_letter_queue_url: required("DJ_DLQ_URL")?,
            master_key_secret_id: required("DJ_MASTER_KEY_SECRET_ID")?,
            subject_key_id: required("DJ_SUBJECT_KEY_ID")?,
            keep_raw_features,
            claim_lease_seconds: number("DJ_CLAIM_LEASE_SECONDS", 900, 0)?,
            row_group_rows: number("DJ_ROW_GROUP_ROWS", 65_536, 1)? as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const BASE: &[(&str, &str)] = &[
        ("DJ_TABLE", "t"),
        ("DJ_LEDGER_TABLE", "l"),
        ("DJ_BUCKET", "b"),
        ("DJ_DLQ_URL", "http://q"),
        ("DJ_MASTER_KEY_SECRET_ID", "s"),
        ("DJ_SUBJECT_KEY_ID", "k"),
    ];

    #[test]
    fn reads_required_and_defaults() {
        let c = Config::from_map(&env(BASE)).unwrap();
        assert_eq!(
            (c.table.as_str(), c.keep_raw_features, c.claim_lease_seconds),
            ("t", true, 900)
        );
    }

    #[test]
    fn names_the_missing_or_invalid_variable() {
        assert_eq!(
            Config::from_map(&env(&BASE[1..])),
            Err(ConfigError::Missing("DJ_TABLE"))
        );
        let mut bad = BASE.to_vec();
        bad.push(("DJ_CLAIM_LEASE_SECONDS", "soon"));
        let err = Config::from_map(&env(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("DJ_CLAIM_LEASE_SECONDS") && err.contains("soon"),
            "{err}"
        );
        let mut bad = BASE.to_vec();
        bad.push(("DJ_KEEP_RAW_FEATURES", "maybe"));
        assert!(Config::from_map(&env(&bad)).is_err());
    }
}
