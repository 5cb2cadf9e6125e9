//! What every function does at start: read its settings from the environment (a map, so tests
//! pass their own) with one error shape, and work out when an invocation must stop starting
//! new work.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The environment as a function reads it: blank values count as unset.
pub struct Env<'a>(pub &'a HashMap<String, String>);

impl Env<'_> {
    pub fn get(&self, name: &'static str) -> Option<String> {
        self.0.get(name).filter(|v| !v.trim().is_empty()).cloned()
    }

    pub fn required(&self, name: &'static str) -> Result<String, EnvError> {
        self.get(name).ok_or(EnvError::Missing(name))
    }

    /// A whole number in `min..=max`, `default` when unset.
    pub fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, EnvError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        match text.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(n) => Err(EnvError::Invalid {
                name,
                reason: format!("{n} is outside {min}..={max}"),
            }),
            Err(e) => Err(EnvError::Invalid {
                name,
                reason: format!("{text:?} is not a whole number: {e}"),
            }),
        }
    }
}

/// The instant after which an invocation starts no new work: its deadline (milliseconds since
/// the epoch, as the runtime gives it) less `reserve_ms`. `None` when the deadline has passed
/// or is unknown.
pub fn stop_at(deadline_ms: u64, reserve_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let left = deadline_ms.checked_sub(now_ms)?.saturating_sub(reserve_ms);
    Some(Instant::now() + Duration::from_millis(left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_are_unset_and_numbers_are_bounded() {
        let map: HashMap<String, String> = [("A", " "), ("N", "12"), ("X", "1e3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = Env(&map);
        assert_eq!(env.required("A"), Err(EnvError::Missing("A")));
        assert_eq!(env.number("N", 1, 0, 20), Ok(12));
        assert_eq!(env.number("M", 7, 0, 20), Ok(7));
        assert!(matches!(
            env.number("N", 1, 13, 20),
            Err(EnvError::Invalid { name: "N", .. })
        ));
        assert!(env
            .number("X", 1, 0, 9999)
            .unwrap_err()
            .to_string()
            .contains("not a whole number"));
        assert!(stop_at(0, 0).is_none());
    }
}
