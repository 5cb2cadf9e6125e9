//! Deterministic sampling by risk tier.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Rates per risk tier (`low`, `medium`; `high` is always 1). A tier without a rate, and a
/// decision without a tier, use `default_rate`. Outcomes and reviews are always kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    pub rates: BTreeMap<String, f64>,
    pub default_rate: f64,
}

impl Default for Sampling {
    /// Everything kept.
    fn default() -> Self {
        Self {
            rates: BTreeMap::new(),
            default_rate: 1.0,
        }
    }
}

impl Sampling {
    /// Keeps `rate` of the `tier` decisions.
    pub fn with_rate(mut self, tier: &str, rate: f64) -> Self {
        self.rates.insert(tier.to_string(), rate);
        self
    }

    /// The rate a record is kept at: 1 for outcomes, reviews and high-risk decisions.
    pub fn rate_of(&self, record: &Value) -> f64 {
        if record["kind"].as_str().is_some_and(|k| k != "decision") {
            return 1.0;
        }
        let rate = match record["risk_tier"].as_str() {
            Some("high") => 1.0,
            Some(tier) => self.rates.get(tier).copied().unwrap_or(self.default_rate),
            None => self.default_rate,
        };
        if rate.is_finite() {
            rate.clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    /// Whether the decision `decision_id` falls under `rate`: the first 8 bytes of its SHA-256
    /// as a fraction of 2^64, so every process decides alike.
    pub fn keeps(decision_id: &str, rate: f64) -> bool {
        if rate >= 1.0 {
            return true;
        }
        let digest = Sha256::digest(decision_id.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(head) as f64) < rate * 18_446_744_073_709_551_616.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn low_tier_is_kept_at_its_rate_by_id_high_tier_and_follow_ups_always() {
        let s = Sampling::default().with_rate("low", 0.25);
        let low = |i: u32| json!({"kind": "decision", "decision_id": format!("d-{i}"), "risk_tier": "low"});
        assert_eq!(s.rate_of(&low(1)), 0.25);
        assert_eq!(
            s.rate_of(&json!({"kind": "decision", "risk_tier": "high"})),
            1.0
        );
        assert_eq!(
            s.rate_of(&json!({"kind": "outcome", "risk_tier": "low"})),
            1.0
        );
        assert_eq!(s.rate_of(&json!({"kind": "decision"})), 1.0);
        let kept = (0..20_000)
            .filter(|i| Sampling::keeps(&format!("d-{i}"), 0.25))
            .count();
        assert!((4_600..5_400).contains(&kept), "{kept} of 20000 at 0.25");
        // The answer depends on the id alone, as any implementation of the rule computes it
        // (these from Python's hashlib: first 8 bytes of SHA-256, big-endian, under 2^63).
        let kept: Vec<bool> = (0..8)
            .map(|i| Sampling::keeps(&format!("d-{i}"), 0.5))
            .collect();
        assert_eq!(kept, [false, true, true, false, false, false, true, false]);
        assert!(Sampling::keeps("anything", 1.0));
        assert!(!Sampling::keeps("anything", 0.0));
    }
}
