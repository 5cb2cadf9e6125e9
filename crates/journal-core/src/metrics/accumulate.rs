//! Counting one tenant-day, record by record, in memory bounded per model whatever the number
//! of records: counters, capped label maps, and a fixed confidence histogram.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use super::{ratio, ModelDayMetrics, MAX_LABELS, OTHER_LABEL};
use crate::record::{Kind, Record, Verdict};

/// Equal bins of the confidence histogram over `[0, 1]`: percentiles are exact to `1e-4`.
pub const CONFIDENCE_BINS: usize = 10_000;

/// Decision ids remembered for attributing follow-ups (two generations of half each), as
/// 128-bit hashes. A day at the design's peak holds ~1.7 billion decisions, far too many to
/// keep; the index answers what the cache does not, so the cache only saves reads (mostly for
/// reviews, which come soon after their decision). ~35 MiB when full.
pub const ATTRIBUTION_CACHE_ENTRIES: usize = 800_000;

/// Count, exact-as-possible mean, extremes and a fixed histogram of confidences in `[0, 1]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfidenceHistogram {
    /// Empty until the first value (rows without confidences stay small).
    bins: Vec<u64>,
    count: u64,
    /// Neumaier-compensated sum: the mean of billions of values stays exact to ~1e-15.
    sum: f64,
    compensation: f64,
    min: f64,
    max: f64,
}

impl ConfidenceHistogram {
    /// Adds a confidence; a value outside `[0, 1]` (validation refuses those) is not counted.
    pub fn add(&mut self, c: f64) -> bool {
        if !(0.0..=1.0).contains(&c) {
            return false;
        }
        if self.bins.is_empty() {
            self.bins = vec![0; CONFIDENCE_BINS];
            self.min = c;
            self.max = c;
        }
        // `as` saturates and floors; the top edge (c = 1) belongs to the last bin.
        let bin = ((c * CONFIDENCE_BINS as f64) as usize).min(CONFIDENCE_BINS - 1);
        self.bins[bin] += 1;
        self.count += 1;
        let t = self.sum + c;
        if self.sum.abs() >= c.abs() {
            self.compensation += (self.sum - t) + c;
        } else {
            self.compensation += (c - t) + self.sum;
        }
        self.sum = t;
        self.min = self.min.min(c);
        self.max = self.max.max(c);
        true
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.sum + self.compensation) / self.count as f64)
    }

    /// The nearest-rank `percent`-th percentile (1..=100): the value of rank
    /// `ceil(percent/100 · count)`, reported as the upper edge of its bin capped at the largest
    /// value seen, so at most one bin width (`1e-4`) above the exact value and never below it.
    pub fn percentile(&self, percent: u32) -> Option<f64> {
        if self.count == 0 || !(1..=100).contains(&percent) {
            return None;
        }
        // Integer ranks: no float rounding can move a rank across a boundary.
        let rank = (u128::from(percent) * u128::from(self.count)).div_ceil(100);
        let mut seen: u128 = 0;
        for (bin, n) in self.bins.iter().enumerate() {
            seen += u128::from(*n);
            if seen >= rank {
                let upper = (bin + 1) as f64 / CONFIDENCE_BINS as f64;
                return Some(upper.min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Label counts, at most [`MAX_LABELS`] distinct labels plus [`OTHER_LABEL`].
#[derive(Clone, Debug, Default)]
struct Labels(BTreeMap<String, u64>);

impl Labels {
    fn add(&mut self, label: &str) {
        if let Some(n) = self.0.get_mut(label) {
            *n += 1;
        } else if self.0.len() < MAX_LABELS {
            self.0.insert(label.to_string(), 1);
        } else {
            *self.0.entry(OTHER_LABEL.to_string()).or_insert(0) += 1;
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Group {
    model_name: String,
    model_version: String,
    decisions: u64,
    decision_labels: Labels,
    confidence: ConfidenceHistogram,
    reviews: u64,
    overrides: u64,
    outcomes: u64,
    outcome_labels: Labels,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.decisions == 0 && self.reviews == 0 && self.outcomes == 0
    }

    fn finish(self, tenant_id: &str, date: &str) -> ModelDayMetrics {
        let outcome_rate_by_label = self
            .outcome_labels
            .0
            .iter()
            .filter_map(|(label, n)| Some((label.clone(), ratio(*n, self.decisions)?)))
            .collect();
        ModelDayMetrics {
            tenant_id: tenant_id.to_string(),
            date: date.to_string(),
            model_name: self.model_name,
            model_version: self.model_version,
            decisions: self.decisions,
            decisions_by_label: self.decision_labels.0,
            confidence_count: self.confidence.count(),
            confidence_mean: self.confidence.mean(),
            confidence_p50: self.confidence.percentile(50),
            confidence_p90: self.confidence.percentile(90),
            confidence_p99: self.confidence.percentile(99),
            reviews: self.reviews,
            overrides: self.overrides,
            review_share: ratio(self.reviews, self.decisions),
            override_share: ratio(self.overrides, self.reviews),
            outcomes: self.outcomes,
            outcomes_by_label: self.outcome_labels.0,
            outcome_rate: ratio(self.outcomes, self.decisions),
            outcome_rate_by_label,
        }
    }
}

/// Which row a follow-up is counted in: the model of its decision, or unattributed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribution(usize);

/// Decision id → row, bounded: when the current generation is full it becomes the previous
/// one and the oldest generation is dropped (an approximate LRU without per-entry bookkeeping).
struct AttributionCache {
    hashers: (RandomState, RandomState),
    current: HashMap<u128, usize>,
    previous: HashMap<u128, usize>,
    generation: usize,
}

impl AttributionCache {
    fn new(entries: usize) -> Self {
        Self {
            hashers: (RandomState::new(), RandomState::new()),
            current: HashMap::new(),
            previous: HashMap::new(),
            generation: (entries / 2).max(1),
        }
    }

    /// Two independently keyed 64-bit hashes: a collision among a million ids has odds of
    /// ~1e-26, and a key costs 16 bytes instead of the id.
    fn key(&self, decision_id: &str) -> u128 {
        let high = self.hashers.0.hash_one(decision_id);
        let low = self.hashers.1.hash_one(decision_id);
        (u128::from(high) << 64) | u128::from(low)
    }

    fn get(&self, decision_id: &str) -> Option<usize> {
        let key = self.key(decision_id);
        self.current
            .get(&key)
            .or_else(|| self.previous.get(&key))
            .copied()
    }

    fn insert(&mut self, decision_id: &str, group: usize) {
        let key = self.key(decision_id);
        if self.current.len() >= self.generation && !self.current.contains_key(&key) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, group);
    }
}

/// The counts of one tenant-day, fed record by record ([`DayAccumulator::add_decision`],
/// [`DayAccumulator::add_follow_up`]) and turned into rows by [`DayAccumulator::finish`].
pub struct DayAccumulator {
    tenant_id: String,
    date: String,
    /// One per model version seen (a tenant has few; found by a scan, no key allocated per
    /// record).
    groups: Vec<Group>,
    cache: AttributionCache,
}

impl DayAccumulator {
    pub fn new(tenant_id: &str, date: &str) -> Self {
        Self::with_cache_entries(tenant_id, date, ATTRIBUTION_CACHE_ENTRIES)
    }

    /// As [`DayAccumulator::new`], remembering at most `entries` decision ids.
    pub fn with_cache_entries(tenant_id: &str, date: &str, entries: usize) -> Self {
        Self {
            tenant_id: tenant_id.to_string(),
            date: date.to_string(),
            groups: Vec::new(),
            cache: AttributionCache::new(entries),
        }
    }

    fn group(&mut self, model_name: &str, model_version: &str) -> usize {
        if let Some(i) = self
            .groups
            .iter()
            .position(|g| g.model_name == model_name && g.model_version == model_version)
        {
            return i;
        }
        self.groups.push(Group {
            model_name: model_name.to_string(),
            model_version: model_version.to_string(),
            ..Group::default()
        });
        self.groups.len() - 1
    }

    /// Counts a decision under its model, and remembers its id for follow-ups.
    pub fn add_decision(&mut self, record: &Record) {
        let (name, version) = record
            .model
            .as_ref()
            .map_or(("", ""), |m| (m.name.as_str(), m.version.as_str()));
        let g = self.group(name, version);
        self.cache.insert(&record.decision_id, g);
        let label = record
            .decision
            .as_deref()
            .or_else(|| {
                record
                    .outputs
                    .as_ref()
                    .and_then(|o| o.first())
                    .map(|o| o.label.as_str())
            })
            .unwrap_or_default();
        let group = &mut self.groups[g];
        group.decisions += 1;
        group.decision_labels.add(label);
        if let Some(c) = record.confidence {
            group.confidence.add(c);
        }
    }

    /// Where a follow-up of `decision_id` goes, if the decision was seen (or looked up) in this
    /// accumulation and is still remembered.
    pub fn known(&self, decision_id: &str) -> Option<Attribution> {
        self.cache.get(decision_id).map(Attribution)
    }

    /// Remembers where follow-ups of `decision_id` go: its model as the index has it, or
    /// `None` (unattributed) when the decision is not found.
    pub fn remember(&mut self, decision_id: &str, model: Option<(&str, &str)>) -> Attribution {
        let (name, version) = model.unwrap_or(("", ""));
        let g = self.group(name, version);
        self.cache.insert(decision_id, g);
        Attribution(g)
    }

    /// Counts a review or outcome under `to`; other kinds are ignored.
    pub fn add_follow_up(&mut self, record: &Record, to: Attribution) {
        let Some(group) = self.groups.get_mut(to.0) else {
            return;
        };
        match record.kind {
            Kind::Review => {
                group.reviews += 1;
                if record
                    .review
                    .as_ref()
                    .is_some_and(|r| r.verdict == Verdict::Override)
                {
                    group.overrides += 1;
                }
            }
            Kind::Outcome => {
                group.outcomes += 1;
                let label = record.outcome.as_ref().map_or("", |o| o.label.as_str());
                group.outcome_labels.add(label);
            }
            Kind::Decision | Kind::Access => {}
        }
    }

    /// One row per model version with anything counted, by model name and version (the
    /// unattributed row, named `""`, first).
    pub fn finish(self) -> Vec<ModelDayMetrics> {
        let mut rows: Vec<ModelDayMetrics> = self
            .groups
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(|g| g.finish(&self.tenant_id, &self.date))
            .collect();
        rows.sort_by(|a, b| {
            (&a.model_name, &a.model_version).cmp(&(&b.model_name, &b.model_version))
        });
        rows
    }
}
