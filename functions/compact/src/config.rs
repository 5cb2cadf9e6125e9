//! The compact function's settings, read once from the environment and validated at start.

use std::collections::HashMap;

use journal_core::compact::{CompactorConfig, DEFAULT_SETTLE_MS, DEFAULT_TARGET_BYTES};

use journal_aws::function_env::Env;
pub use journal_aws::function_env::EnvError as ConfigError;

#[derive(Clone, Debug)]
pub struct Config {
    pub table: String,
    pub ledger_table: String,
    pub bucket: String,
    pub master_key_secret_id: String,
    pub compactor: CompactorConfig,
    /// How many partition dates, counting back from today (UTC), a scheduled run visits.
    pub lookback_days: u32,
    /// Time kept back from the Lambda deadline: no output starts later than this before it.
    pub reserve_ms: u64,
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
        let mut compactor = CompactorConfig::default();
        // At least 1 MiB (smaller outputs defeat the point); at most 5 GiB (one S3 PUT).
        compactor.plan.target_bytes = number(
            "DJ_COMPACT_TARGET_BYTES",
            DEFAULT_TARGET_BYTES,
            1 << 20,
            5 << 30,
        )?;
        compactor.plan.settle_ms = number(
            "DJ_COMPACT_SETTLE_SECONDS",
            (DEFAULT_SETTLE_MS / 1000) as u64,
            0,
            7 * 86_400,
        )? as i64
            * 1000;
        compactor.grace_ms = number(
            "DJ_COMPACT_GRACE_SECONDS",
            (compactor.grace_ms / 1000) as u64,
            0,
            30 * 86_400,
        )? as i64
            * 1000;
        compactor.lease_ms = number(
            "DJ_COMPACT_LEASE_SECONDS",
            (compactor.lease_ms / 1000) as u64,
            60,
            86_400,
        )? as i64
            * 1000;
        Ok(Self {
            table: required("DJ_TABLE")?,
            ledger_table: required("DJ_LEDGER_TABLE")?,
            bucket: required("DJ_BUCKET")?,
            master_key_secret_id: required("DJ_MASTER_KEY_SECRET_ID")?,
            compactor,
            lookback_days: number("DJ_COMPACT_LOOKBACK_DAYS", 2, 1, 400)? as u32,
            reserve_ms: number("DJ_COMPACT_RESERVE_SECONDS", 90, 0, 900)? * 1000,
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
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn defaults_follow_the_design() {
        let c = Config::from_map(&base()).unwrap();
        assert_eq!(c.compactor.plan.target_bytes, DEFAULT_TARGET_BYTES);
        assert_eq!(c.compactor.plan.settle_ms, DEFAULT_SETTLE_MS);
        assert_eq!(c.compactor.grace_ms, 24 * 3_600_000);
        assert_eq!(c.lookback_days, 2);
        assert_eq!(c.reserve_ms, 90_000);
    }

    #[test]
    fn settings_are_read_and_checked() {
        let mut env = base();
        env.insert("DJ_COMPACT_TARGET_BYTES".into(), "134217728".into());
        env.insert("DJ_COMPACT_SETTLE_SECONDS".into(), "60".into());
        let c = Config::from_map(&env).unwrap();
        assert_eq!(c.compactor.plan.target_bytes, 128 << 20);
        assert_eq!(c.compactor.plan.settle_ms, 60_000);

        env.insert("DJ_COMPACT_TARGET_BYTES".into(), "1000".into());
        let e = Config::from_map(&env).unwrap_err().to_string();
        assert!(
            e.contains("DJ_COMPACT_TARGET_BYTES") && e.contains("outside"),
            "{e}"
        );
        env.insert("DJ_COMPACT_TARGET_BYTES".into(), "64MiB".into());
        let e = Config::from_map(&env).unwrap_err().to_string();
        assert!(e.contains("not a whole number"), "{e}");

        let mut env = base();
        env.remove("DJ_BUCKET");
        let e = Config::from_map(&env).unwrap_err().to_string();
        assert_eq!(e, "environment variable DJ_BUCKET is required");
    }
}
