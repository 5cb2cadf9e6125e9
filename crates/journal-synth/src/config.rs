//! Generator configuration and the four decision domains.

use journal_core::timestamp::Timestamp;

/// A business use case the generator can simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// Loan underwriting: approve / deny / refer; risk tier high.
    Loan,
    /// Card-payment fraud blocking: allow / block / step_up; risk tier medium.
    Fraud,
    /// Content moderation: allow / remove / escalate; risk tier low or medium.
    Moderation,
    /// LLM-assisted support-ticket triage, with an `llm` block; risk tier low or medium.
    Llm,
}

impl Domain {
    pub const ALL: [Domain; 4] = [Domain::Loan, Domain::Fraud, Domain::Moderation, Domain::Llm];

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Loan => "loan",
            Domain::Fraud => "fraud",
            Domain::Moderation => "moderation",
            Domain::Llm => "llm",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Domain::Loan => 0,
            Domain::Fraud => 1,
            Domain::Moderation => 2,
            Domain::Llm => 3,
        }
    }
}

/// What to generate. Construct with [`SynthConfig::new`] and adjust fields.
///
/// Out-of-range values are sanitized by [`crate::Generator::new`] rather than rejected: rates are
/// clamped to `[0, 1]` (NaN counts as 0), `mean_gap_ms` and `subjects_per_tenant` to at least 1,
/// an empty tenant list becomes the default list, and all-zero domain weights mean "equal".
/// Tenant names are used verbatim, so they must satisfy the validator's id rules
/// (`A-Z a-z 0-9 _ - . :`, at most 64 characters) for the records to be accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// Seeds the ChaCha8 stream; the same config yields byte-identical records.
    pub seed: u64,
    /// Tenants, each drawn with equal probability per decision.
    pub tenants: Vec<String>,
    /// `occurred_at` of the stream's start; the first decision comes one gap later.
    pub start: Timestamp,
    /// Mean time between consecutive decisions of this generator (exponential gaps).
    pub mean_gap_ms: u64,
    /// Size of each tenant's subject pool (`user_000000` …); draws are Zipf-like.
    pub subjects_per_tenant: u32,
    /// Probability that a decision later gets an `outcome` record.
    pub outcome_rate: f64,
    /// Probability that a decision later gets a human `review` record.
    pub review_rate: f64,
    /// Send raw `features` (as most producers do); when false they are omitted.
    pub include_features: bool,
    /// Relative weight of each domain in the decision stream.
    pub domains: Vec<(Domain, u32)>,
}

impl SynthConfig {
    /// Defaults: three tenants, start 2026-03-15T00:00:00Z, one decision every 50 ms, 10,000
    /// subjects per tenant, 20 % outcomes, 5 % reviews, raw features, and a domain mix shaped like
    /// real traffic (card authorizations and content dominate): loan 15 % / fraud 45 % /
    /// moderation 30 % / LLM 10 %.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            tenants: default_tenants(),
            start: default_start(),
            mean_gap_ms: 50,
            subjects_per_tenant: 10_000,
            outcome_rate: 0.2,
            review_rate: 0.05,
            include_features: true,
            domains: vec![
                (Domain::Loan, 15),
                (Domain::Fraud, 45),
                (Domain::Moderation, 30),
                (Domain::Llm, 10),
            ],
        }
    }

    /// Expected fraction of decisions in `domain` under this configuration's weights.
    pub fn domain_share(&self, domain: Domain) -> f64 {
        let total: u64 = self.domains.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return 0.25;
        }
        let mine: u64 = self
            .domains
            .iter()
            .filter(|(d, _)| *d == domain)
            .map(|(_, w)| u64::from(*w))
            .sum();
        mine as f64 / total as f64
    }
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self::new(0)
    }
}

pub(crate) fn default_tenants() -> Vec<String> {
    ["bank_456", "fintech_eu", "market_789"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn default_start() -> Timestamp {
    // 2026-03-15T00:00:00Z, well inside the accepted range, so this cannot fail.
    Timestamp::from_millis(1_773_532_800_000).expect("constant within the accepted range")
}
