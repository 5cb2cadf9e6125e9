//! The record stream: decisions at exponential gaps, with follow-ups scheduled into the future
//! and released in time order.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use journal_core::timestamp::Timestamp;
use rand::{Rng as _, SeedableRng};
use serde_json::Value;

use crate::config::{default_tenants, Domain, SynthConfig};
use crate::domains::{self, Catalog, DecisionArgs, FollowSeed, Tenant};
use crate::followups;
use crate::sample::{self as s, Rng};

/// Median delay of an outcome after its decision, in mean decision gaps. Measured in gaps rather
/// than wall time so that a stream of any length and rate contains follow-ups at the configured
/// rates (a real chargeback arrives weeks later, which a 10,000-record test would never see).
const OUTCOME_DELAY_GAPS: f64 = 40.0;
/// Reviews come sooner than outcomes.
const REVIEW_DELAY_GAPS: f64 = 12.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FollowKind {
    Outcome,
    Review,
}

struct Pending {
    due: i64,
    seq: u64,
    kind: FollowKind,
    seed: FollowSeed,
}

// Ordered by due time, then creation order, so ties release deterministically.
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}

/// Deterministic, endless stream of producer-form records (`serde_json::Value` objects) in
/// non-decreasing `occurred_at` order: decisions, and outcomes/reviews of earlier decisions of the
/// same tenant. The stream ends only when time would pass the validator's range (year 2100).
pub struct Generator {
    rng: Rng,
    catalog: Catalog,
    tenants: Vec<Tenant>,
    domains: Vec<(Domain, u32)>,
    start: i64,
    gap: f64,
    outcome_rate: f64,
    review_rate: f64,
    include_features: bool,
    /// Milliseconds since `start`, kept fractional so rounding does not bias the rate.
    clock: f64,
    next_decision: Option<i64>,
    exhausted: bool,
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
}

impl Generator {
    /// Builds a generator; see [`SynthConfig`] for how odd values are sanitized.
    pub fn new(cfg: SynthConfig) -> Self {
        let tenants = if cfg.tenants.is_empty() {
            default_tenants()
        } else {
            cfg.tenants
        };
        let mut domains: Vec<(Domain, u32)> =
            cfg.domains.into_iter().filter(|(_, w)| *w > 0).collect();
        if domains.is_empty() {
            domains = Domain::ALL.iter().map(|d| (*d, 1)).collect();
        }
        let rate = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
        Self {
            rng: Rng::seed_from_u64(cfg.seed),
            catalog: Catalog::new(),
            tenants: tenants
                .iter()
                .map(|t| Tenant::new(t, cfg.subjects_per_tenant))
                .collect(),
            domains,
            start: cfg.start.millis(),
            gap: cfg.mean_gap_ms.max(1) as f64,
            outcome_rate: rate(cfg.outcome_rate),
            review_rate: rate(cfg.review_rate),
            include_features: cfg.include_features,
            clock: 0.0,
            next_decision: None,
            exhausted: false,
            pending: BinaryHeap::new(),
            seq: 0,
        }
    }

    fn decision(&mut self, millis: i64, at: Timestamp) -> Value {
        let rng = &mut self.rng;
        let tenant_index = rng.gen_range(0..self.tenants.len());
        let tenant = &self.tenants[tenant_index];
        let domain = *s::weighted(rng, &self.domains);
        let model = self.catalog.pick(rng, domain);
        let subject = tenant.subject(rng);
        let decision_id = s::ulid(rng, millis);
        let draft = match domain {
            Domain::Loan => domains::loan::draft(rng, model),
            Domain::Fraud => domains::fraud::draft(rng, model),
            Domain::Moderation => domains::moderation::draft(rng, model),
            Domain::Llm => domains::llm::draft(rng, model),
        };
        let seed = FollowSeed {
            domain,
            tenant: tenant_index,
            decision_id: decision_id.clone(),
            subject: subject.clone(),
            decision: draft.decision,
            amount: draft.amount,
            risk: draft.risk,
        };
        let args = DecisionArgs {
            domain,
            tenant,
            model,
            decision_id: &decision_id,
            occurred_at: &at.to_string(),
            subject: &subject,
            include_features: self.include_features,
        };
        let record = domains::decision_record(rng, &args, draft);
        if s::chance(rng, self.outcome_rate) {
            self.schedule(
                millis,
                OUTCOME_DELAY_GAPS,
                FollowKind::Outcome,
                seed.clone(),
            );
        }
        if s::chance(&mut self.rng, self.review_rate) {
            self.schedule(millis, REVIEW_DELAY_GAPS, FollowKind::Review, seed);
        }
        record
    }

    fn schedule(&mut self, millis: i64, median_gaps: f64, kind: FollowKind, seed: FollowSeed) {
        let delay = (self.gap * s::log_normal(&mut self.rng, median_gaps, 0.7))
            .ceil()
            .max(1.0);
        self.seq += 1;
        self.pending.push(Reverse(Pending {
            due: millis.saturating_add(delay as i64),
            seq: self.seq,
            kind,
            seed,
        }));
    }

    fn follow_up(&mut self, p: Pending, at: Timestamp) -> Value {
        let tenant = &self.tenants[p.seed.tenant];
        let text = at.to_string();
        match p.kind {
            FollowKind::Outcome => {
                followups::outcome_record(&mut self.rng, &p.seed, tenant, p.due, &text)
            }
            FollowKind::Review => {
                followups::review_record(&mut self.rng, &p.seed, tenant, p.due, &text)
            }
        }
    }
}

impl Iterator for Generator {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        loop {
            if self.next_decision.is_none() && !self.exhausted {
                self.clock += s::exponential(&mut self.rng, self.gap);
                let millis = self.start.saturating_add(self.clock as i64);
                match Timestamp::from_millis(millis) {
                    Ok(_) => self.next_decision = Some(millis),
                    Err(_) => self.exhausted = true,
                }
            }
            let follow_first = match (self.pending.peek(), self.next_decision) {
                (Some(Reverse(p)), Some(d)) => p.due <= d,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if follow_first {
                let Reverse(p) = self.pending.pop()?;
                match Timestamp::from_millis(p.due) {
                    Ok(at) => return Some(self.follow_up(p, at)),
                    // Past the end of representable time: the follow-up never happens.
                    Err(_) => continue,
                }
            }
            let millis = self.next_decision.take()?;
            let at = Timestamp::from_millis(millis).ok()?;
            return Some(self.decision(millis, at));
        }
    }
}
