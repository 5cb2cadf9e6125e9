//! The four simulated use cases and the record assembly they share.
//!
//! A domain module turns random draws into a [`Draft`] (features, model scores, the decision and
//! its explanation); [`decision_record`] wraps the draft in the producer-form envelope that is
//! common to every domain (ids, caller, subject, model, context, step hashes).

pub(crate) mod fraud;
pub(crate) mod llm;
pub(crate) mod loan;
pub(crate) mod moderation;

use journal_core::models::{self, Artifact, Evaluation};
use serde_json::{json, Map, Value};

use crate::config::Domain;
use crate::sample::{self, Rng};

/// One deployed model version and its share of traffic.
pub(crate) struct ModelSpec {
    pub version: &'static str,
    pub weight: u32,
    /// The policy threshold written into the version's artifact.
    pub threshold: f64,
    /// Shifts the version's scores a little, so versions are distinguishable in metrics
    /// (built into the artifact's parameters).
    pub bias: f64,
    /// When the version was registered (the registry metadata's `created_at`).
    pub created_at: &'static str,
    /// Validation metrics published with the version.
    pub metrics: &'static [(&'static str, f64)],
}

/// Static facts about a domain.
pub(crate) struct DomainSpec {
    pub model: &'static str,
    /// Service that makes the decision (also the IAM role name).
    pub service: &'static str,
    /// Service that later reports outcomes.
    pub outcome_service: &'static str,
    /// Case-management tool in which humans review decisions.
    pub review_service: &'static str,
    pub reviewer_prefix: &'static str,
    pub versions: &'static [ModelSpec],
    /// Whether producers send `dataset_manifest_sha256` (a vendor LLM has none; the high-volume
    /// producers leave it to the model registry, which maps the artifact to its manifest).
    pub has_dataset: bool,
    /// High-volume, latency-critical producer: `caller` names only the service (SQS records the
    /// sending principal anyway). Keeps those records near the 800-byte design size.
    pub lean_caller: bool,
    /// Every decision label; a reviewer's override picks another one.
    pub labels: &'static [&'static str],
    pub confirm_notes: &'static [&'static str],
    pub override_notes: &'static [&'static str],
}

pub(crate) fn spec(domain: Domain) -> &'static DomainSpec {
    match domain {
        Domain::Loan => &loan::SPEC,
        Domain::Fraud => &fraud::SPEC,
        Domain::Moderation => &moderation::SPEC,
        Domain::Llm => &llm::SPEC,
    }
}

/// The domain whose decision or follow-up services produced `record` (by `caller.service`).
pub fn domain_of(record: &Value) -> Option<Domain> {
    let service = record.pointer("/caller/service")?.as_str()?;
    Domain::ALL.into_iter().find(|d| {
        let s = spec(*d);
        [s.service, s.outcome_service, s.review_service].contains(&service)
    })
}

/// A model version with its artifact and hashes computed once.
pub(crate) struct ResolvedModel {
    pub name: &'static str,
    pub spec: &'static ModelSpec,
    /// The registry artifact that decides; `None` for the vendor LLM, which is not re-run.
    pub artifact: Option<Artifact>,
    pub artifact_sha256: String,
    /// The training-data manifest (sent by producers only when the domain has `has_dataset`).
    pub dataset_sha256: String,
}

impl ResolvedModel {
    /// Evaluates the version's artifact on `features` with its own threshold.
    ///
    /// Panics if the version has no artifact or the artifact refuses the features: both are
    /// bugs in this crate (every domain generates exactly the features its artifacts read).
    pub fn evaluate(&self, features: &Map<String, Value>) -> Evaluation {
        let Some(artifact) = &self.artifact else {
            panic!("{}@{} has no artifact", self.name, self.spec.version);
        };
        models::evaluate(artifact, features, None)
            .unwrap_or_else(|e| panic!("{}@{}: {e}", self.name, self.spec.version))
    }
}

/// The registry artifact of one model version, as JSON (`None` for the LLM domain).
pub(crate) fn artifact_json(domain: Domain, v: &ModelSpec) -> Option<Value> {
    match domain {
        Domain::Loan => Some(loan::artifact(v)),
        Domain::Fraud => Some(fraud::artifact(v)),
        Domain::Moderation => Some(moderation::artifact(v)),
        Domain::Llm => None,
    }
}

/// The parsed artifact of one model version. The artifacts are constants of this crate, so a
/// parse failure is a bug (and the crate's tests parse every one).
pub(crate) fn artifact(domain: Domain, v: &ModelSpec) -> Option<Artifact> {
    artifact_json(domain, v).map(|json| {
        Artifact::from_value(json)
            .unwrap_or_else(|e| panic!("{} {}: {e}", spec(domain).model, v.version))
    })
}

/// Stand-in digest of a training-data manifest: stable per name and version.
pub(crate) fn dataset_sha256(model: &str, version: &str) -> String {
    sample::sha256_hex(&[b"dataset:", model.as_bytes(), b"@", version.as_bytes()])
}

/// The decision label of `domain` equal to `label` (evaluations return owned strings; drafts
/// and follow-ups use the domain's static labels).
pub(crate) fn static_label(domain: Domain, label: &str) -> &'static str {
    spec(domain)
        .labels
        .iter()
        .copied()
        .find(|l| *l == label)
        .unwrap_or_else(|| panic!("{label:?} is not a {} label", domain.as_str()))
}

/// All model versions of all domains, indexed by [`Domain::index`].
pub(crate) struct Catalog {
    models: [Vec<ResolvedModel>; 4],
}

impl Catalog {
    pub fn new() -> Self {
        Self {
            models: Domain::ALL.map(|d| {
                let s = spec(d);
                s.versions
                    .iter()
                    .map(|v| {
                        let artifact = artifact(d, v);
                        let artifact_sha256 = match &artifact {
                            Some(a) => models::artifact_sha256(a)
                                .unwrap_or_else(|e| panic!("{} {}: {e}", s.model, v.version)),
                            // The vendor LLM has no registry artifact: a stable stand-in digest
                            // of its name and version.
                            None => sample::sha256_hex(&[
                                b"model:",
                                s.model.as_bytes(),
                                b"@",
                                v.version.as_bytes(),
                            ]),
                        };
                        ResolvedModel {
                            name: s.model,
                            spec: v,
                            artifact,
                            artifact_sha256,
                            dataset_sha256: dataset_sha256(s.model, v.version),
                        }
                    })
                    .collect()
            }),
        }
    }

    /// Draws a model version by its traffic weight.
    pub fn pick(&self, rng: &mut Rng, domain: Domain) -> &ResolvedModel {
        let list = &self.models[domain.index()];
        let total: u32 = list.iter().map(|m| m.spec.weight).sum();
        let mut x = rand::Rng::gen_range(rng, 0..total.max(1));
        for m in list {
            if x < m.spec.weight {
                return m;
            }
            x -= m.spec.weight;
        }
        &list[list.len() - 1]
    }
}

/// One evaluation step; its `input_sha256` is derived from the features by the assembler.
pub(crate) struct StepDraft {
    pub name: &'static str,
    pub version: &'static str,
    pub output: Value,
}

/// What a domain decides, before the common envelope is added.
pub(crate) struct Draft {
    pub features: Map<String, Value>,
    /// `(label, score)`, highest first, scores summing to ≈ 1.
    pub outputs: Vec<(String, f64)>,
    pub decision: &'static str,
    pub confidence: f64,
    pub threshold: f64,
    pub rationale: String,
    pub action_type: &'static str,
    /// Omitted for routine automated outcomes, where the decision label says it all.
    pub action_detail: Option<String>,
    pub risk_tier: &'static str,
    pub steps: Vec<StepDraft>,
    pub llm: Option<Value>,
    pub explanation: bool,
    pub sampling_rate: Option<f64>,
    pub channel: &'static str,
    /// Money or size involved (loan amount, transaction amount …), for outcome values.
    pub amount: f64,
    /// The model's probability of the adverse class, for outcome realism.
    pub risk: f64,
}

/// Per-tenant constants.
pub(crate) struct Tenant {
    pub name: String,
    pub account: String,
    pub regions: &'static [(&'static str, u32)],
    /// Maps Zipf ranks onto subject numbers so the hot subjects differ per tenant.
    pub perm_mul: u64,
    pub perm_add: u64,
    pub subjects: u32,
}

const REGIONS_US: &[(&str, u32)] = &[("us-east-1", 70), ("us-west-2", 30)];
const REGIONS_EU: &[(&str, u32)] = &[("eu-west-1", 60), ("eu-central-1", 40)];
const REGIONS_AP: &[(&str, u32)] = &[("ap-southeast-2", 55), ("ap-northeast-1", 45)];

impl Tenant {
    pub fn new(name: &str, subjects: u32) -> Self {
        let digest = sample::sha256_hex(&[b"tenant:", name.as_bytes()]);
        let word = |i: usize| u64::from_str_radix(&digest[i..i + 12], 16).unwrap_or(1);
        let account: String = digest
            .bytes()
            .filter(u8::is_ascii_digit)
            .chain(std::iter::repeat(b'7'))
            .take(12)
            .map(char::from)
            .collect();
        let regions = match word(0) % 3 {
            0 => REGIONS_US,
            1 => REGIONS_EU,
            _ => REGIONS_AP,
        };
        let n = u64::from(subjects.max(1));
        // A multiplier coprime to n makes rank -> (rank * mul + add) mod n a bijection.
        let mut mul = (word(12) % n) | 1;
        while gcd(mul, n) != 1 {
            mul += 1;
        }
        Self {
            name: name.to_string(),
            account,
            regions,
            perm_mul: mul,
            perm_add: word(24) % n,
            subjects: subjects.max(1),
        }
    }

    pub fn subject(&self, rng: &mut Rng) -> String {
        let rank = u128::from(sample::zipf_rank(rng, self.subjects));
        // u128: rank and multiplier are each below 2^33, so the product cannot overflow.
        let n = u128::from(self.subjects);
        let number = (rank * u128::from(self.perm_mul) + u128::from(self.perm_add)) % n;
        format!("user_{number:06}")
    }

    pub fn principal(&self, service: &str) -> String {
        format!("arn:aws:iam::{}:role/{service}", self.account)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Everything about one decision that the follow-up records need later.
#[derive(Clone, Debug)]
pub(crate) struct FollowSeed {
    pub domain: Domain,
    pub tenant: usize,
    pub decision_id: String,
    pub subject: String,
    pub decision: &'static str,
    pub amount: f64,
    pub risk: f64,
}

pub(crate) struct DecisionArgs<'a> {
    pub domain: Domain,
    pub tenant: &'a Tenant,
    pub model: &'a ResolvedModel,
    pub decision_id: &'a str,
    pub occurred_at: &'a str,
    pub subject: &'a str,
    pub include_features: bool,
}

/// Wraps a draft in the producer-form decision envelope.
pub(crate) fn decision_record(rng: &mut Rng, a: &DecisionArgs<'_>, d: Draft) -> Value {
    let s = spec(a.domain);
    let mut r = Map::new();
    r.insert("schema_version".into(), json!(1));
    r.insert("kind".into(), json!("decision"));
    r.insert("decision_id".into(), json!(a.decision_id));
    r.insert("tenant_id".into(), json!(a.tenant.name));
    r.insert("occurred_at".into(), json!(a.occurred_at));
    let caller = if s.lean_caller {
        json!({"service": s.service})
    } else {
        json!({"principal": a.tenant.principal(s.service), "service": s.service})
    };
    r.insert("caller".into(), caller);
    r.insert("subject".into(), json!({"id": a.subject}));
    r.insert(
        "model".into(),
        json!({"name": a.model.name, "version": a.model.spec.version,
               "artifact_sha256": a.model.artifact_sha256}),
    );
    if s.has_dataset {
        r.insert(
            "dataset_manifest_sha256".into(),
            json!(a.model.dataset_sha256),
        );
    }
    if !d.steps.is_empty() {
        // Steps commit to their input without carrying it: hash of step name + feature JSON.
        let feature_bytes = serde_json::to_vec(&d.features).unwrap_or_default();
        let steps: Vec<Value> = d
            .steps
            .into_iter()
            .map(|st| {
                json!({"name": st.name, "version": st.version,
                       "input_sha256": sample::sha256_hex(&[st.name.as_bytes(), b"\0", &feature_bytes]),
                       "output": st.output})
            })
            .collect();
        r.insert("steps".into(), Value::Array(steps));
    }
    if a.include_features {
        r.insert("features".into(), Value::Object(d.features));
    }
    let outputs: Vec<Value> = d
        .outputs
        .iter()
        .map(|(label, score)| json!({"label": label, "score": score}))
        .collect();
    r.insert("outputs".into(), Value::Array(outputs));
    r.insert("decision".into(), json!(d.decision));
    r.insert("confidence".into(), json!(d.confidence));
    r.insert("threshold".into(), json!(d.threshold));
    r.insert("rationale".into(), json!(d.rationale));
    if d.explanation {
        r.insert(
            "explanation_ref".into(),
            json!(format!(
                "s3://explanations/{}/{}.json",
                a.model.name, a.decision_id
            )),
        );
    }
    let mut action = Map::new();
    action.insert("type".into(), json!(d.action_type));
    if let Some(detail) = d.action_detail {
        action.insert("detail".into(), json!(detail));
    }
    r.insert("action".into(), Value::Object(action));
    r.insert("risk_tier".into(), json!(d.risk_tier));
    if let Some(llm) = d.llm {
        r.insert("llm".into(), llm);
    }
    if let Some(rate) = d.sampling_rate {
        r.insert("sampling_rate".into(), json!(rate));
    }
    r.insert(
        "context".into(),
        json!({"correlation_id": format!("req-{}", sample::random_hex(rng, 6)),
               "region": sample::weighted(rng, a.tenant.regions),
               "channel": d.channel}),
    );
    Value::Object(r)
}

/// The evaluation's outputs as draft outputs (already rounded and ordered by the policy).
pub(crate) fn outputs_of(e: &Evaluation) -> Vec<(String, f64)> {
    e.outputs
        .iter()
        .map(|o| (o.label.clone(), o.score))
        .collect()
}

/// The score of output `label` (0 when the evaluation has no such output).
pub(crate) fn score_of(e: &Evaluation, label: &str) -> f64 {
    e.outputs
        .iter()
        .find(|o| o.label == label)
        .map_or(0.0, |o| o.score)
}

/// Scores rounded to 4 places, renormalized so they sum to ≈ 1, highest first.
pub(crate) fn normalized(mut raw: Vec<(&'static str, f64)>) -> Vec<(&'static str, f64)> {
    let total: f64 = raw.iter().map(|(_, s)| s.max(0.0)).sum();
    let total = if total > 0.0 { total } else { 1.0 };
    for (_, s) in &mut raw {
        *s = sample::round_to(s.max(0.0) / total, 4);
    }
    raw.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    raw
}

/// Formats money like `$12,345` or `$42.50`, for rationales.
pub(crate) fn money(x: f64) -> String {
    let cents = (x * 100.0).round() as i64;
    let (whole, frac) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + 4);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if frac == 0 {
        format!("${out}")
    } else {
        format!("${out}.{frac:02}")
    }
}
