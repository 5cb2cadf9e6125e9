//! The `dj-model/v1` artifact document: types, parsing and structural validation.
//!
//! Every artifact is one JSON object `{"format": "dj-model/v1", "kind": …, <kind fields>,
//! "policy": {…}}`. The kind fields say how features become labelled scores; the
//! [`Policy`] says how those scores become the recorded `outputs`, `decision`, `confidence`
//! and `threshold`. `docs/models.md` describes every field with an example per kind.
//!
//! Parsing is strict: unknown fields are refused (a typo must not silently change a model), and
//! an unknown `kind` is [`ModelError::Unsupported`] rather than a parse failure, so a registry
//! that already holds newer kinds (ONNX, say) is read without confusion.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::ModelError;

/// The value of every artifact's `format` member.
pub const FORMAT: &str = "dj-model/v1";

/// The most decimals a policy may round scores to (10^10 is exact in binary64, and finer
/// rounding is no rounding at all for probabilities).
pub const MAX_DECIMALS: u32 = 10;

/// A parsed, validated model artifact: a scoring model of one kind plus its decision policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Artifact {
    pub model: Model,
    pub policy: Policy,
}

/// The scoring part of an artifact, by `kind`.
///
/// New kinds are added here and in [`super::eval`]'s `Evaluator` dispatch; an ONNX graph, for
/// instance, would be a variant whose fields name the graph blob by its own SHA-256 and the
/// input/output tensor names, and whose scores feed the same [`Policy`].
#[derive(Clone, Debug, PartialEq)]
pub enum Model {
    /// `"rule_set"`: ordered rules, the first whose conditions all hold gives the scores.
    RuleSet(RuleSet),
    /// `"scorecard"`: points per feature bin, summed, mapped to a probability.
    Scorecard(Scorecard),
    /// `"linear"`: `intercept + Σ weight·x`, the value itself is the score.
    Linear(LinearModel),
    /// `"logistic"`: `1 / (1 + e^-(intercept + Σ weight·x))`.
    Logistic(LinearModel),
    /// `"decision_tree"`: one binary tree; the leaf value (through `link`) is the score.
    DecisionTree(DecisionTree),
    /// `"tree_ensemble"`: `base_score + Σ leaf values` of several trees, then `link` (a GBM).
    TreeEnsemble(TreeEnsemble),
}

impl Model {
    /// The `kind` string of this model.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::RuleSet(_) => "rule_set",
            Model::Scorecard(_) => "scorecard",
            Model::Linear(_) => "linear",
            Model::Logistic(_) => "logistic",
            Model::DecisionTree(_) => "decision_tree",
            Model::TreeEnsemble(_) => "tree_ensemble",
        }
    }
}

/// Every kind this version of the evaluator understands.
pub const KINDS: [&str; 6] = [
    "rule_set",
    "scorecard",
    "linear",
    "logistic",
    "decision_tree",
    "tree_ensemble",
];

// ---------------------------------------------------------------------------------------------
// Shared building blocks

/// A JSON scalar an artifact compares features with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// The right-hand side of a [`Condition`]: one scalar, or a list for `in` / `not_in`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Operand {
    One(Scalar),
    List(Vec<Scalar>),
}

/// Comparison operators of a [`Condition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "in")]
    In,
    #[serde(rename = "not_in")]
    NotIn,
}

/// `feature op value`. A feature that is absent or `null` makes the condition `if_missing`, or
/// is an error when `if_missing` is not given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub feature: String,
    pub op: Op,
    pub value: Operand,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_missing: Option<bool>,
}

/// How the final score of a single-score kind is obtained from the raw sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// The sum itself.
    Identity,
    /// `1 / (1 + e^-sum)`.
    Logistic,
}

// ---------------------------------------------------------------------------------------------
// rule_set

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Tried in order; the first rule whose `when` conditions all hold gives the outputs.
    pub rules: Vec<Rule>,
    /// Outputs when no rule matches.
    pub default: Vec<RuleOutput>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A name for explanations and audits; not used in evaluation.
    pub name: String,
    /// All must hold (an empty list always holds).
    pub when: Vec<Condition>,
    pub then: Vec<RuleOutput>,
}

/// One labelled score a rule produces: a constant `score`, or
/// `clamp(scale × feature + offset, min, max)` from a numeric feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOutput {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_feature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// scorecard

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scorecard {
    /// Label of the probability the scorecard produces.
    pub label: String,
    /// Points every applicant starts with.
    pub initial_points: f64,
    /// Added to the points in order, one bin of each.
    pub characteristics: Vec<Characteristic>,
    /// Points → probability.
    pub odds_scale: OddsScale,
}

/// The points of one feature: numeric `bins` or categorical `categories` (exactly one is given).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Characteristic {
    pub feature: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bins: Vec<Bin>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// Points of a categorical value in no category (an error when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_points: Option<f64>,
    /// Points when the feature is absent or `null` (an error when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_points: Option<f64>,
}

/// A numeric bin: values `< below` that no earlier bin took. The last bin has no `below`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    pub points: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub values: Vec<Scalar>,
    pub points: f64,
}

/// The usual "points to double the odds" scaling: `odds` at `points`, doubling every `pdo`
/// points: `ln(odds(p)) = ln(odds) + (p − points) · ln 2 / pdo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OddsScale {
    pub points: f64,
    pub odds: f64,
    pub pdo: f64,
}

// ---------------------------------------------------------------------------------------------
// linear / logistic

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearModel {
    /// Label of the score the model produces.
    pub label: String,
    pub intercept: f64,
    /// Added to the intercept in order.
    pub terms: Vec<Term>,
}

/// One term: `weight × transforms(feature)` for a numeric feature, or the weight of the
/// feature's value in `one_hot` (0 for any value not listed) for a categorical one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    pub feature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_hot: Option<BTreeMap<String, f64>>,
    /// Used in place of an absent or `null` feature (an error when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Scalar>,
}

/// A numeric transform, applied in list order before the weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// `ln x`; `x` must be > 0.
    Ln,
    /// `ln(1 + x)`; `x` must be > −1.
    Ln1p,
    /// `x × c`.
    Scale(f64),
    /// `x + c`.
    Shift(f64),
    /// `min(max(x, min), max)`, either bound optional.
    Clip {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
}

// ---------------------------------------------------------------------------------------------
// decision_tree / tree_ensemble

/// A tree node: `{"leaf": value}` or `{"split": {"if": condition, "then": node, "else": node}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Node {
    Leaf(f64),
    Split(Box<Split>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    #[serde(rename = "if")]
    pub condition: Condition,
    pub then: Node,
    #[serde(rename = "else")]
    pub otherwise: Node,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionTree {
    pub label: String,
    pub link: Link,
    pub tree: Node,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeEnsemble {
    pub label: String,
    pub link: Link,
    pub base_score: f64,
    /// Leaf values are added to `base_score` in tree order.
    pub trees: Vec<Node>,
}

// ---------------------------------------------------------------------------------------------
// policy

/// How the model's labelled scores become `outputs`, `decision`, `confidence`, `threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Adds an output with this label scored `Π (1 − sᵢ)` over the model's scores (for one
    /// probability `p`, simply `1 − p`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complement: Option<String>,
    /// Divides every score by their sum (after the complement is added).
    #[serde(default, skip_serializing_if = "is_false")]
    pub normalize: bool,
    /// Scores are rounded half away from zero to this many decimals (0..=10).
    pub decimals: u32,
    /// Which score the threshold applies to.
    pub decision_score: DecisionScore,
    /// The default threshold; a what-if may evaluate with another.
    pub threshold: f64,
    /// The decision when the decision score is `>= threshold`.
    pub at_or_above: Tier,
    /// Tried in order when the decision score is below the threshold: the first band whose
    /// `min` the score reaches gives the decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bands: Vec<Band>,
    /// The decision when the score is below the threshold and reaches no band.
    pub below: Tier,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `{"output": label}`: that output's score; `{"max_of": [labels]}`: the highest score among
/// those outputs that are present (at least one must be).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DecisionScore {
    Output(String),
    MaxOf(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub decision: String,
    pub confidence: Confidence,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub min: f64,
    pub decision: String,
    pub confidence: Confidence,
}

/// Where `confidence` comes from: `"top_output"` (the first, highest output's score),
/// `"decision_score"`, or `{"output": label}` (that output's score).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Confidence {
    TopOutput,
    DecisionScore,
    Output(String),
}

// ---------------------------------------------------------------------------------------------
// Document form

#[derive(Serialize)]
struct Wire<'a, M: Serialize> {
    format: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    model: &'a M,
    policy: &'a Policy,
}

impl Serialize for Artifact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let kind = self.model.kind();
        let policy = &self.policy;
        macro_rules! wire {
            ($m:expr) => {
                Wire {
                    format: FORMAT,
                    kind,
                    model: $m,
                    policy,
                }
                .serialize(s)
            };
        }
        match &self.model {
            Model::RuleSet(m) => wire!(m),
            Model::Scorecard(m) => wire!(m),
            Model::Linear(m) | Model::Logistic(m) => wire!(m),
            Model::DecisionTree(m) => wire!(m),
            Model::TreeEnsemble(m) => wire!(m),
        }
    }
}

impl<'de> Deserialize<'de> for Artifact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Artifact::from_value(value).map_err(serde::de::Error::custom)
    }
}

fn part<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ModelError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix, inner.as_str()) {
            (p, ".") => p.to_string(),
            ("", i) => i.to_string(),
            (p, i) => format!("{p}.{i}"),
        };
        ModelError::Invalid {
            path,
            reason: e.into_inner().to_string(),
        }
    })
}

fn take_string(map: &mut Map<String, Value>, name: &str) -> Result<String, ModelError> {
    match map.remove(name) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ModelError::Invalid {
            path: name.to_string(),
            reason: format!(
                "expected a string, found {}",
                super::eval::json_type(&other)
            ),
        }),
        None => Err(ModelError::Invalid {
            path: name.to_string(),
            reason: "missing field".to_string(),
        }),
    }
}

impl Artifact {
    /// Parses and validates an artifact document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ModelError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ModelError::Invalid {
            path: String::new(),
            reason: format!("not JSON: {e}"),
        })?;
        Self::from_value(value)
    }

    /// Parses and validates an artifact given as a JSON value.
    pub fn from_value(value: Value) -> Result<Self, ModelError> {
        let Value::Object(mut map) = value else {
            return Err(ModelError::Invalid {
                path: String::new(),
                reason: "an artifact is a JSON object".to_string(),
            });
        };
        let format = take_string(&mut map, "format")?;
        if format != FORMAT {
            return Err(ModelError::UnsupportedFormat { format });
        }
        let kind = take_string(&mut map, "kind")?;
        if !KINDS.contains(&kind.as_str()) {
            // The seam for later kinds (e.g. "onnx"): recognized as an artifact, not evaluable here.
            return Err(ModelError::Unsupported { kind });
        }
        let policy = map.remove("policy").ok_or_else(|| ModelError::Invalid {
            path: "policy".to_string(),
            reason: "missing field".to_string(),
        })?;
        let policy: Policy = part(policy, "policy")?;
        let body = Value::Object(map);
        let model = match kind.as_str() {
            "rule_set" => Model::RuleSet(part(body, "")?),
            "scorecard" => Model::Scorecard(part(body, "")?),
            "linear" => Model::Linear(part(body, "")?),
            "logistic" => Model::Logistic(part(body, "")?),
            "decision_tree" => Model::DecisionTree(part(body, "")?),
            "tree_ensemble" => Model::TreeEnsemble(part(body, "")?),
            _ => return Err(ModelError::Unsupported { kind }),
        };
        let artifact = Artifact { model, policy };
        artifact.validate()?;
        Ok(artifact)
    }

    /// The `kind` string.
    pub fn kind(&self) -> &'static str {
        self.model.kind()
    }

    /// Checks what the types cannot: finite numbers, one shape per field, ordered bins,
    /// operands that fit their operator, a decimals count in range.
    pub fn validate(&self) -> Result<(), ModelError> {
        let mut v = Validator::default();
        match &self.model {
            Model::RuleSet(m) => {
                for (i, rule) in m.rules.iter().enumerate() {
                    let at = format!("rules[{i}]");
                    for (j, c) in rule.when.iter().enumerate() {
                        v.condition(c, &format!("{at}.when[{j}]"));
                    }
                    v.rule_outputs(&rule.then, &format!("{at}.then"));
                }
                v.rule_outputs(&m.default, "default");
            }
            Model::Scorecard(m) => {
                v.label(&m.label, "label");
                v.finite(m.initial_points, "initial_points");
                for (i, c) in m.characteristics.iter().enumerate() {
                    v.characteristic(c, &format!("characteristics[{i}]"));
                }
                v.finite(m.odds_scale.points, "odds_scale.points");
                v.check(
                    m.odds_scale.odds.is_finite() && m.odds_scale.odds > 0.0,
                    "odds_scale.odds",
                    "must be a positive number",
                );
                v.check(
                    m.odds_scale.pdo.is_finite() && m.odds_scale.pdo != 0.0,
                    "odds_scale.pdo",
                    "must be a non-zero number",
                );
            }
            Model::Linear(m) | Model::Logistic(m) => {
                v.label(&m.label, "label");
                v.finite(m.intercept, "intercept");
                for (i, t) in m.terms.iter().enumerate() {
                    v.term(t, &format!("terms[{i}]"));
                }
            }
            Model::DecisionTree(m) => {
                v.label(&m.label, "label");
                v.node(&m.tree, "tree");
            }
            Model::TreeEnsemble(m) => {
                v.label(&m.label, "label");
                v.finite(m.base_score, "base_score");
                v.check(!m.trees.is_empty(), "trees", "needs at least one tree");
                for (i, t) in m.trees.iter().enumerate() {
                    v.node(t, &format!("trees[{i}]"));
                }
            }
        }
        v.policy(&self.policy);
        v.first.map_or(Ok(()), Err)
    }
}

/// Collects the first structural problem, with its path.
#[derive(Default)]
struct Validator {
    first: Option<ModelError>,
}

impl Validator {
    fn check(&mut self, ok: bool, path: &str, reason: &str) {
        if !ok && self.first.is_none() {
            self.first = Some(ModelError::Invalid {
                path: path.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    fn finite(&mut self, x: f64, path: &str) {
        self.check(x.is_finite(), path, "must be a finite number");
    }

    fn label(&mut self, label: &str, path: &str) {
        self.check(!label.is_empty(), path, "must not be empty");
    }

    fn scalar(&mut self, s: &Scalar, path: &str) {
        if let Scalar::Number(x) = s {
            self.finite(*x, path);
        }
    }

    fn condition(&mut self, c: &Condition, path: &str) {
        self.check(
            !c.feature.is_empty(),
            &format!("{path}.feature"),
            "must not be empty",
        );
        let at = format!("{path}.value");
        match (c.op, &c.value) {
            (Op::Lt | Op::Le | Op::Gt | Op::Ge, Operand::One(Scalar::Number(x))) => {
                self.finite(*x, &at)
            }
            (Op::Lt | Op::Le | Op::Gt | Op::Ge, _) => {
                self.check(false, &at, "an ordering operator needs a number")
            }
            (Op::Eq | Op::Ne, Operand::One(s)) => self.scalar(s, &at),
            (Op::Eq | Op::Ne, Operand::List(_)) => {
                self.check(false, &at, "`==` and `!=` need one value, not a list")
            }
            (Op::In | Op::NotIn, Operand::List(items)) => {
                self.check(!items.is_empty(), &at, "the list must not be empty");
                self.same_type(items, &at);
            }
            (Op::In | Op::NotIn, Operand::One(_)) => {
                self.check(false, &at, "`in` and `not_in` need a list")
            }
        }
    }

    fn same_type(&mut self, items: &[Scalar], path: &str) {
        let tag = |s: &Scalar| std::mem::discriminant(s);
        if let Some(first) = items.first() {
            let same = items.iter().all(|s| tag(s) == tag(first));
            self.check(same, path, "list values must all have the same JSON type");
        }
        for (i, s) in items.iter().enumerate() {
            self.scalar(s, &format!("{path}[{i}]"));
        }
    }

    fn rule_outputs(&mut self, outputs: &[RuleOutput], path: &str) {
        self.check(!outputs.is_empty(), path, "needs at least one output");
        for (i, o) in outputs.iter().enumerate() {
            let at = format!("{path}[{i}]");
            self.label(&o.label, &format!("{at}.label"));
            let dup = outputs[..i].iter().any(|p| p.label == o.label);
            self.check(!dup, &format!("{at}.label"), "label repeated");
            match (&o.score, &o.from_feature) {
                (Some(x), None) => {
                    self.finite(*x, &format!("{at}.score"));
                    let extra = o.scale.is_some()
                        || o.offset.is_some()
                        || o.min.is_some()
                        || o.max.is_some();
                    self.check(
                        !extra,
                        &at,
                        "scale, offset, min and max apply only to from_feature",
                    );
                }
                (None, Some(f)) => {
                    self.check(
                        !f.is_empty(),
                        &format!("{at}.from_feature"),
                        "must not be empty",
                    );
                    for (name, x) in [
                        ("scale", o.scale),
                        ("offset", o.offset),
                        ("min", o.min),
                        ("max", o.max),
                    ] {
                        if let Some(x) = x {
                            self.finite(x, &format!("{at}.{name}"));
                        }
                    }
                    if let (Some(lo), Some(hi)) = (o.min, o.max) {
                        self.check(lo <= hi, &at, "min is above max");
                    }
                }
                _ => self.check(false, &at, "give exactly one of score and from_feature"),
            }
        }
    }

    fn characteristic(&mut self, c: &Characteristic, path: &str) {
        self.check(
            !c.feature.is_empty(),
            &format!("{path}.feature"),
            "must not be empty",
        );
        if let Some(x) = c.missing_points {
            self.finite(x, &format!("{path}.missing_points"));
        }
        match (c.bins.is_empty(), c.categories.is_empty()) {
            (false, true) => {
                self.check(
                    c.other_points.is_none(),
                    &format!("{path}.other_points"),
                    "applies only to categories",
                );
                let last = c.bins.len() - 1;
                let mut previous = f64::NEG_INFINITY;
                for (i, b) in c.bins.iter().enumerate() {
                    let at = format!("{path}.bins[{i}]");
                    self.finite(b.points, &format!("{at}.points"));
                    match (b.below, i == last) {
                        (Some(x), false) => {
                            self.finite(x, &format!("{at}.below"));
                            self.check(
                                x > previous,
                                &format!("{at}.below"),
                                "bin bounds must increase strictly",
                            );
                            previous = x;
                        }
                        (None, true) => {}
                        (Some(_), true) => self.check(
                            false,
                            &format!("{at}.below"),
                            "the last bin takes every remaining value and has no `below`",
                        ),
                        (None, false) => self.check(
                            false,
                            &format!("{at}.below"),
                            "only the last bin may omit `below`",
                        ),
                    }
                }
            }
            (true, false) => {
                if let Some(x) = c.other_points {
                    self.finite(x, &format!("{path}.other_points"));
                }
                for (i, cat) in c.categories.iter().enumerate() {
                    let at = format!("{path}.categories[{i}]");
                    self.finite(cat.points, &format!("{at}.points"));
                    self.check(
                        !cat.values.is_empty(),
                        &format!("{at}.values"),
                        "must not be empty",
                    );
                    self.same_type(&cat.values, &format!("{at}.values"));
                }
            }
            _ => self.check(false, path, "give exactly one of bins and categories"),
        }
    }

    fn term(&mut self, t: &Term, path: &str) {
        self.check(
            !t.feature.is_empty(),
            &format!("{path}.feature"),
            "must not be empty",
        );
        if let Some(m) = &t.missing {
            self.scalar(m, &format!("{path}.missing"));
        }
        match (&t.weight, &t.one_hot) {
            (Some(w), None) => {
                self.finite(*w, &format!("{path}.weight"));
                for (i, tr) in t.transforms.iter().enumerate() {
                    let at = format!("{path}.transforms[{i}]");
                    match tr {
                        Transform::Ln | Transform::Ln1p => {}
                        Transform::Scale(x) | Transform::Shift(x) => self.finite(*x, &at),
                        Transform::Clip { min, max } => {
                            for x in [min, max].into_iter().flatten() {
                                self.finite(*x, &at);
                            }
                            if let (Some(lo), Some(hi)) = (min, max) {
                                self.check(lo <= hi, &at, "min is above max");
                            }
                        }
                    }
                }
            }
            (None, Some(weights)) => {
                self.check(
                    t.transforms.is_empty(),
                    &format!("{path}.transforms"),
                    "one_hot terms take no transforms",
                );
                for (k, w) in weights {
                    self.finite(*w, &format!("{path}.one_hot.{k}"));
                }
            }
            _ => self.check(false, path, "give exactly one of weight and one_hot"),
        }
    }

    fn node(&mut self, node: &Node, path: &str) {
        // Iterative, so that a deep tree cannot exhaust the stack.
        let mut stack = vec![(node, path.to_string())];
        while let Some((n, at)) = stack.pop() {
            match n {
                Node::Leaf(x) => self.finite(*x, &format!("{at}.leaf")),
                Node::Split(s) => {
                    self.condition(&s.condition, &format!("{at}.split.if"));
                    stack.push((&s.otherwise, format!("{at}.split.else")));
                    stack.push((&s.then, format!("{at}.split.then")));
                }
            }
        }
    }

    fn policy(&mut self, p: &Policy) {
        if let Some(c) = &p.complement {
            self.label(c, "policy.complement");
        }
        self.check(
            p.decimals <= MAX_DECIMALS,
            "policy.decimals",
            "must be between 0 and 10",
        );
        match &p.decision_score {
            DecisionScore::Output(l) => self.label(l, "policy.decision_score.output"),
            DecisionScore::MaxOf(ls) => self.check(
                !ls.is_empty() && ls.iter().all(|l| !l.is_empty()),
                "policy.decision_score.max_of",
                "needs at least one non-empty label",
            ),
        }
        self.finite(p.threshold, "policy.threshold");
        self.tier(
            &p.at_or_above.decision,
            &p.at_or_above.confidence,
            "policy.at_or_above",
        );
        for (i, b) in p.bands.iter().enumerate() {
            let at = format!("policy.bands[{i}]");
            self.finite(b.min, &format!("{at}.min"));
            self.tier(&b.decision, &b.confidence, &at);
        }
        self.tier(&p.below.decision, &p.below.confidence, "policy.below");
    }

    fn tier(&mut self, decision: &str, confidence: &Confidence, path: &str) {
        self.label(decision, &format!("{path}.decision"));
        if let Confidence::Output(l) = confidence {
            self.label(l, &format!("{path}.confidence.output"));
        }
    }
}
