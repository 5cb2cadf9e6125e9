//! Deterministic evaluation: features → labelled scores (per kind) → policy → [`Evaluation`].
//!
//! Determinism rules, so that a replay on any machine reproduces the recorded bits:
//! - only IEEE-754 binary64 `+ − × ÷`, comparisons, and `libm`'s pure-Rust `exp`, `log`,
//!   `log1p` and `round` (never the platform's libm, whose last bit differs between systems);
//! - sums are accumulated left to right in document order (terms, characteristics, trees);
//! - features are looked up by name, never iterated, so map order cannot matter;
//! - `one_hot` weights live in a `BTreeMap` and are looked up, not summed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::artifact::{
    Artifact, Characteristic, Condition, Confidence, DecisionScore, DecisionTree, LinearModel,
    Link, Model, Node, Op, Operand, Policy, RuleOutput, RuleSet, Scalar, Scorecard, Term,
    Transform, TreeEnsemble,
};
use super::ModelError;
use crate::record::Output;

/// What evaluating an artifact on one decision's features gives: the fields a decision record
/// carries, in the record's form (`outputs` highest score first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub outputs: Vec<Output>,
    pub decision: String,
    pub confidence: f64,
    pub threshold: f64,
}

/// The scoring half of a model kind: features → labelled raw scores, in the model's own order.
///
/// Every kind implements it, and the common [`Policy`] turns its scores into an
/// [`Evaluation`]. A later kind (an ONNX graph run by a pinned runtime, say) needs only this
/// implementation and a `kind` name; the policy, rounding, hashing and comparison stay as they are.
pub trait Evaluator {
    fn scores(&self, features: &Map<String, Value>) -> Result<Vec<(String, f64)>, ModelError>;
}

impl Evaluator for Model {
    fn scores(&self, features: &Map<String, Value>) -> Result<Vec<(String, f64)>, ModelError> {
        match self {
            Model::RuleSet(m) => m.scores(features),
            Model::Scorecard(m) => m.scores(features),
            Model::Linear(m) => {
                let z = m.sum(features)?;
                Ok(vec![(m.label.clone(), z)])
            }
            Model::Logistic(m) => {
                let z = m.sum(features)?;
                Ok(vec![(m.label.clone(), sigmoid(z))])
            }
            Model::DecisionTree(m) => m.scores(features),
            Model::TreeEnsemble(m) => m.scores(features),
        }
    }
}

/// Evaluates `artifact` on `features`; `threshold_override` replaces the policy's threshold
/// (a what-if), and is what the evaluation reports as its `threshold`.
pub fn evaluate(
    artifact: &Artifact,
    features: &Map<String, Value>,
    threshold_override: Option<f64>,
) -> Result<Evaluation, ModelError> {
    let threshold = threshold_of(&artifact.policy, threshold_override)?;
    let raw = artifact.model.scores(features)?;
    let outputs = finish_outputs(&artifact.policy, raw)?;
    let (decision, confidence) = decide(&artifact.policy, &outputs, threshold)?;
    Ok(Evaluation {
        outputs,
        decision,
        confidence,
        threshold,
    })
}

/// Re-decides from already computed `outputs` (as recorded) with the artifact's policy and
/// `threshold`: the what-if for a decision whose features are not at hand. The outputs are
/// taken as they are (the policy's decision only reads them).
pub fn redecide(
    artifact: &Artifact,
    outputs: &[Output],
    threshold: f64,
) -> Result<Evaluation, ModelError> {
    let threshold = threshold_of(&artifact.policy, Some(threshold))?;
    let (decision, confidence) = decide(&artifact.policy, outputs, threshold)?;
    Ok(Evaluation {
        outputs: outputs.to_vec(),
        decision,
        confidence,
        threshold,
    })
}

fn threshold_of(policy: &Policy, over: Option<f64>) -> Result<f64, ModelError> {
    let t = over.unwrap_or(policy.threshold);
    if t.is_finite() {
        Ok(t)
    } else {
        Err(ModelError::Policy {
            reason: format!("threshold {t} is not a finite number"),
        })
    }
}

/// `x` rounded half away from zero to `decimals` places: `round(x × 10^d) ÷ 10^d` in binary64
/// (each step exactly rounded, so the result is the same everywhere), with `−0` made `0`.
pub fn round_score(x: f64, decimals: u32) -> f64 {
    const POW10: [f64; 11] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
    let f = POW10[decimals.min(10) as usize];
    // Adding +0 turns −0 into +0 and changes nothing else.
    libm::round(x * f) / f + 0.0
}

/// `1 / (1 + e^−z)`.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + libm::exp(-z))
}

fn finish_outputs(policy: &Policy, mut raw: Vec<(String, f64)>) -> Result<Vec<Output>, ModelError> {
    for (i, (label, s)) in raw.iter().enumerate() {
        if !s.is_finite() {
            return Err(ModelError::Policy {
                reason: format!("score of `{label}` is not finite ({s})"),
            });
        }
        if raw[..i].iter().any(|(l, _)| l == label) {
            return Err(ModelError::Policy {
                reason: format!("the model produced label `{label}` twice"),
            });
        }
    }
    if let Some(label) = &policy.complement {
        if raw.iter().any(|(l, _)| l == label) {
            return Err(ModelError::Policy {
                reason: format!("complement label `{label}` is also a model output"),
            });
        }
        let mut none = 1.0;
        for (l, s) in &raw {
            if !(0.0..=1.0).contains(s) {
                return Err(ModelError::Policy {
                    reason: format!("complement needs probabilities, but `{l}` scored {s}"),
                });
            }
            none *= 1.0 - s;
        }
        raw.push((label.clone(), none));
    }
    if policy.normalize {
        let mut total = 0.0;
        for (l, s) in &raw {
            if *s < 0.0 {
                return Err(ModelError::Policy {
                    reason: format!("cannot normalize the negative score {s} of `{l}`"),
                });
            }
            total += s;
        }
        if !(total > 0.0 && total.is_finite()) {
            return Err(ModelError::Policy {
                reason: format!("cannot normalize scores that sum to {total}"),
            });
        }
        for (_, s) in &mut raw {
            *s /= total;
        }
    }
    let mut outputs: Vec<Output> = raw
        .into_iter()
        .map(|(label, s)| Output {
            label,
            score: round_score(s, policy.decimals),
        })
        .collect();
    if let Some(o) = outputs.iter().find(|o| !o.score.is_finite()) {
        return Err(ModelError::Policy {
            reason: format!("score of `{}` is not finite after rounding", o.label),
        });
    }
    // Highest first; equal scores by label (byte order), so the order never depends on input order.
    outputs.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.label.cmp(&b.label))
    });
    Ok(outputs)
}

fn output_score(outputs: &[Output], label: &str) -> Result<f64, ModelError> {
    outputs
        .iter()
        .find(|o| o.label == label)
        .map(|o| o.score)
        .ok_or_else(|| ModelError::Policy {
            reason: format!("no output labelled `{label}`"),
        })
}

fn decide(
    policy: &Policy,
    outputs: &[Output],
    threshold: f64,
) -> Result<(String, f64), ModelError> {
    let score = match &policy.decision_score {
        DecisionScore::Output(label) => output_score(outputs, label)?,
        DecisionScore::MaxOf(labels) => {
            let mut best: Option<f64> = None;
            for l in labels {
                if let Some(o) = outputs.iter().find(|o| &o.label == l) {
                    best = Some(best.map_or(o.score, |b| b.max(o.score)));
                }
            }
            best.ok_or_else(|| ModelError::Policy {
                reason: format!("none of the outputs {labels:?} is present"),
            })?
        }
    };
    let (decision, confidence) = if score >= threshold {
        (&policy.at_or_above.decision, &policy.at_or_above.confidence)
    } else if let Some(band) = policy.bands.iter().find(|b| score >= b.min) {
        (&band.decision, &band.confidence)
    } else {
        (&policy.below.decision, &policy.below.confidence)
    };
    let confidence = match confidence {
        Confidence::TopOutput => {
            outputs
                .first()
                .map(|o| o.score)
                .ok_or_else(|| ModelError::Policy {
                    reason: "there are no outputs".to_string(),
                })?
        }
        Confidence::DecisionScore => score,
        Confidence::Output(label) => output_score(outputs, label)?,
    };
    Ok((decision.clone(), confidence))
}

// ---------------------------------------------------------------------------------------------
// Reading features

/// The JSON type name of `v`, for error messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The feature's value; `None` when absent or `null`.
fn lookup<'a>(features: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    features.get(name).filter(|v| !v.is_null())
}

fn missing(name: &str) -> ModelError {
    ModelError::MissingFeature {
        feature: name.to_string(),
    }
}

fn wrong(name: &str, expected: &'static str, v: &Value) -> ModelError {
    ModelError::WrongType {
        feature: name.to_string(),
        expected,
        found: json_type(v),
    }
}

/// A number; booleans count as 1 and 0.
fn number(name: &str, v: &Value) -> Result<f64, ModelError> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| wrong(name, "a number", v)),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        _ => Err(wrong(name, "a number", v)),
    }
}

fn scalar_value(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Number(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        Scalar::Text(t) => Value::String(t.clone()),
    }
}

/// Whether the feature value `v` equals `s`: numerically for a number `s` (booleans as 1/0),
/// exactly for a string or boolean `s`, whose type the feature must have.
fn equals(name: &str, v: &Value, s: &Scalar) -> Result<bool, ModelError> {
    match s {
        Scalar::Number(x) => Ok(number(name, v)? == *x),
        Scalar::Text(t) => match v {
            Value::String(f) => Ok(f == t),
            _ => Err(wrong(name, "a string", v)),
        },
        Scalar::Bool(b) => match v {
            Value::Bool(f) => Ok(f == b),
            _ => Err(wrong(name, "a boolean", v)),
        },
    }
}

fn holds(c: &Condition, features: &Map<String, Value>) -> Result<bool, ModelError> {
    let Some(v) = lookup(features, &c.feature) else {
        return c.if_missing.ok_or_else(|| missing(&c.feature));
    };
    let name = c.feature.as_str();
    match (c.op, &c.value) {
        (Op::Lt | Op::Le | Op::Gt | Op::Ge, Operand::One(Scalar::Number(rhs))) => {
            let x = number(name, v)?;
            Ok(match c.op {
                Op::Lt => x < *rhs,
                Op::Le => x <= *rhs,
                Op::Gt => x > *rhs,
                _ => x >= *rhs,
            })
        }
        (Op::Eq, Operand::One(s)) => equals(name, v, s),
        (Op::Ne, Operand::One(s)) => equals(name, v, s).map(|e| !e),
        (Op::In | Op::NotIn, Operand::List(items)) => {
            let mut found = false;
            for s in items {
                if equals(name, v, s)? {
                    found = true;
                    break;
                }
            }
            Ok(found == (c.op == Op::In))
        }
        // Refused by validation; kept total for artifacts built in code.
        _ => Err(ModelError::Invalid {
            path: format!("condition on `{name}`"),
            reason: "operator and value do not fit".to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Kinds

impl RuleSet {
    fn scores(&self, features: &Map<String, Value>) -> Result<Vec<(String, f64)>, ModelError> {
        for rule in &self.rules {
            let mut all = true;
            for c in &rule.when {
                if !holds(c, features)? {
                    all = false;
                    break;
                }
            }
            if all {
                return rule_outputs(&rule.then, features);
            }
        }
        rule_outputs(&self.default, features)
    }
}

fn rule_outputs(
    outputs: &[RuleOutput],
    features: &Map<String, Value>,
) -> Result<Vec<(String, f64)>, ModelError> {
    outputs
        .iter()
        .map(|o| {
            let score = match (&o.score, &o.from_feature) {
                (Some(x), _) => *x,
                (None, Some(name)) => {
                    let v = lookup(features, name).ok_or_else(|| missing(name))?;
                    let mut x = number(name, v)? * o.scale.unwrap_or(1.0) + o.offset.unwrap_or(0.0);
                    if let Some(lo) = o.min {
                        x = x.max(lo);
                    }
                    if let Some(hi) = o.max {
                        x = x.min(hi);
                    }
                    x
                }
                (None, None) => {
                    return Err(ModelError::Invalid {
                        path: format!("output `{}`", o.label),
                        reason: "neither score nor from_feature".to_string(),
                    })
                }
            };
            Ok((o.label.clone(), score))
        })
        .collect()
}

impl Scorecard {
    fn scores(&self, features: &Map<String, Value>) -> Result<Vec<(String, f64)>, ModelError> {
        let mut points = self.initial_points;
        for c in &self.characteristics {
            points += c.points(features)?;
        }
        let s = &self.odds_scale;
        let z = libm::log(s.odds) + (points - s.points) * std::f64::consts::LN_2 / s.pdo;
        Ok(vec![(self.label.clone(), sigmoid(z))])
    }
}

impl Characteristic {
    fn points(&self, features: &Map<String, Value>) -> Result<f64, ModelError> {
        let name = self.feature.as_str();
        let Some(v) = lookup(features, name) else {
            return self.missing_points.ok_or_else(|| missing(name));
        };
        if !self.bins.is_empty() {
            let x = number(name, v)?;
            if x.is_nan() {
                return Err(ModelError::BadFeatureValue {
                    feature: name.to_string(),
                    reason: "not a number".to_string(),
                });
            }
            for b in &self.bins {
                match b.below {
                    Some(bound) if x < bound => return Ok(b.points),
                    Some(_) => {}
                    None => return Ok(b.points),
                }
            }
            return Err(ModelError::BadFeatureValue {
                feature: name.to_string(),
                reason: format!("{x} falls in no bin"),
            });
        }
        for cat in &self.categories {
            for s in &cat.values {
                if equals(name, v, s)? {
                    return Ok(cat.points);
                }
            }
        }
        self.other_points
            .ok_or_else(|| ModelError::BadFeatureValue {
                feature: name.to_string(),
                reason: format!("value {v} is in no category and there are no other_points"),
            })
    }
}

impl LinearModel {
    /// `intercept + Σ term`, left to right.
    fn sum(&self, features: &Map<String, Value>) -> Result<f64, ModelError> {
        let mut z = self.intercept;
        for t in &self.terms {
            z += t.contribution(features)?;
        }
        Ok(z)
    }
}

impl Term {
    fn contribution(&self, features: &Map<String, Value>) -> Result<f64, ModelError> {
        let name = self.feature.as_str();
        let default = self.missing.as_ref().map(scalar_value);
        let v = match (lookup(features, name), &default) {
            (Some(v), _) => v,
            (None, Some(d)) => d,
            (None, None) => return Err(missing(name)),
        };
        if let Some(weights) = &self.one_hot {
            return match v {
                Value::String(s) => Ok(weights.get(s).copied().unwrap_or(0.0)),
                Value::Bool(b) => Ok(weights
                    .get(if *b { "true" } else { "false" })
                    .copied()
                    .unwrap_or(0.0)),
                _ => Err(wrong(name, "a string", v)),
            };
        }
        let mut x = number(name, v)?;
        for t in &self.transforms {
            x = match t {
                Transform::Ln if x > 0.0 => libm::log(x),
                Transform::Ln => {
                    return Err(ModelError::BadFeatureValue {
                        feature: name.to_string(),
                        reason: format!("ln needs a positive number, got {x}"),
                    })
                }
                Transform::Ln1p if x > -1.0 => libm::log1p(x),
                Transform::Ln1p => {
                    return Err(ModelError::BadFeatureValue {
                        feature: name.to_string(),
                        reason: format!("ln1p needs a number above -1, got {x}"),
                    })
                }
                Transform::Scale(c) => x * c,
                Transform::Shift(c) => x + c,
                Transform::Clip { min, max } => {
                    let mut y = x;
                    if let Some(lo) = min {
                        y = y.max(*lo);
                    }
                    if let Some(hi) = max {
                        y = y.min(*hi);
                    }
                    y
                }
            };
        }
        Ok(self.weight.unwrap_or(0.0) * x)
    }
}

fn leaf(node: &Node, features: &Map<String, Value>) -> Result<f64, ModelError> {
    let mut n = node;
    loop {
        match n {
            Node::Leaf(x) => return Ok(*x),
            Node::Split(s) => {
                n = if holds(&s.condition, features)? {
                    &s.then
                } else {
                    &s.otherwise
                };
            }
        }
    }
}

fn link(l: Link, z: f64) -> f64 {
    match l {
        Link::Identity => z,
        Link::Logistic => sigmoid(z),
    }
}

impl DecisionTree {
    fn scores(&self, features: &Map<String, Value>) -> Result<Vec<(String, f64)>, ModelError> {
        let z = leaf(&self.tree, features)?;
        Ok(vec![(self.label.clone(), link(self.link, z))])
    }
}

impl TreeEnsemble {
    fn scores(&self, features: &Map<String, Value>) -> Result<Vec<(String, f64)>, ModelError> {
        let mut z = self.base_score;
        for t in &self.trees {
            z += leaf(t, features)?;
        }
        Ok(vec![(self.label.clone(), link(self.link, z))])
    }
}
