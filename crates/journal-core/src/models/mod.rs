//! Content-addressed model artifacts and their deterministic evaluation.
//!
//! A model version is an [`Artifact`]: a JSON document in the `dj-model/v1` format (rule sets,
//! scorecards, linear and logistic models, decision trees and tree ensembles, each ending in a
//! decision [`Policy`]), described field by field in `docs/models.md`. Its address is
//! [`artifact_sha256`], the SHA-256 of its RFC 8785 canonical bytes, which is what a decision
//! records in `model.artifact_sha256`. The registry stores the canonical bytes under
//! [`artifact_key`] (`models/<sha256>`) and a [`ModelMetadata`] document beside them under
//! [`metadata_key`].
//!
//! Replay loads an artifact with [`load_verified`] (which refuses bytes whose hash is not the
//! recorded one), runs [`evaluate`] on the recorded features, and checks the result against
//! the record with [`compare`], bit for bit. A what-if passes another threshold to `evaluate`,
//! or re-decides recorded outputs with [`redecide`].
//!
//! Only portable arithmetic is used (see [`eval`]), so an evaluation gives the same bits on
//! every platform. Kinds this build does not know (an `"onnx"` artifact, later) parse as
//! [`ModelError::Unsupported`]; adding one means a new [`Model`] variant implementing
//! [`Evaluator`].

pub mod artifact;
pub mod eval;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical::{self, CanonicalError};
use crate::record::{Output, Record};
use crate::timestamp::Timestamp;

pub use artifact::{
    Artifact, Band, Bin, Category, Characteristic, Condition, Confidence, DecisionScore,
    DecisionTree, LinearModel, Link, Model, Node, OddsScale, Op, Operand, Policy, Rule, RuleOutput,
    RuleSet, Scalar, Scorecard, Split, Term, Tier, Transform, TreeEnsemble, FORMAT, KINDS,
    MAX_DECIMALS,
};
pub use eval::{evaluate, redecide, round_score, sigmoid, Evaluation, Evaluator};

/// Why an artifact could not be loaded or evaluated. Feature errors name the feature.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModelError {
    #[error("feature `{feature}` is missing and the model gives no default for it")]
    MissingFeature { feature: String },
    #[error("feature `{feature}` must be {expected}, found {found}")]
    WrongType {
        feature: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("feature `{feature}`: {reason}")]
    BadFeatureValue { feature: String, reason: String },
    #[error("unsupported artifact format {format:?} (this build reads {FORMAT:?})")]
    UnsupportedFormat { format: String },
    #[error("unsupported artifact kind {kind:?} (this build evaluates {KINDS:?})")]
    Unsupported { kind: String },
    /// `path` is where in the document (`terms[0].weight`), empty for the document as a whole.
    #[error("invalid artifact{}: {reason}", at_path(.path))]
    Invalid { path: String, reason: String },
    #[error("artifact hash mismatch: expected {expected}, the bytes hash to {actual}")]
    HashMismatch { expected: String, actual: String },
    #[error("decision policy: {reason}")]
    Policy { reason: String },
    #[error("artifact has no canonical form: {0}")]
    Canonical(String),
}

fn at_path(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

impl From<CanonicalError> for ModelError {
    fn from(e: CanonicalError) -> Self {
        ModelError::Canonical(e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Content addressing and the registry layout

/// Prefix of the model registry in the journal bucket.
pub const MODELS_PREFIX: &str = "models/";

/// Registry key of an artifact's canonical bytes: `models/<sha256>`.
pub fn artifact_key(artifact_sha256: &str) -> String {
    format!("{MODELS_PREFIX}{artifact_sha256}")
}

/// Registry key of an artifact's [`ModelMetadata`]: `models/<sha256>.metadata.json`.
pub fn metadata_key(artifact_sha256: &str) -> String {
    format!("{MODELS_PREFIX}{artifact_sha256}.metadata.json")
}

/// Whether `s` has the form of an artifact address (64 lower-case hex digits), so that it can
/// be put in a key without escaping.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The RFC 8785 canonical bytes of `artifact`: what the registry stores and the hash covers.
pub fn artifact_bytes(artifact: &Artifact) -> Result<Vec<u8>, ModelError> {
    Ok(canonical::to_vec_of(artifact)?)
}

/// Lower-case hex SHA-256 of the artifact's canonical bytes: its address.
pub fn artifact_sha256(artifact: &Artifact) -> Result<String, ModelError> {
    Ok(hex::encode(Sha256::digest(artifact_bytes(artifact)?)))
}

/// Parses `bytes` (any JSON spelling of an artifact) and checks that the artifact's address is
/// `expected_sha256`; the hash is recomputed over the canonical form of what was parsed, so it
/// covers exactly what will be evaluated.
pub fn load_verified(bytes: &[u8], expected_sha256: &str) -> Result<Artifact, ModelError> {
    let artifact = Artifact::from_json(bytes)?;
    let actual = artifact_sha256(&artifact)?;
    if actual != expected_sha256.to_ascii_lowercase() {
        return Err(ModelError::HashMismatch {
            expected: expected_sha256.to_string(),
            actual,
        });
    }
    Ok(artifact)
}

/// The registry's description of one artifact, stored under [`metadata_key`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMetadata {
    pub name: String,
    pub version: String,
    /// The artifact's `kind`.
    pub kind: String,
    pub artifact_sha256: String,
    /// The manifest of the data the model was trained on (what a record's
    /// `dataset_manifest_sha256` points to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_data_manifest_sha256: Option<String>,
    /// Validation metrics by name (`auc`, `ks`, `brier` …), in name order.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    pub created_at: Timestamp,
}

impl ModelMetadata {
    /// Metadata of `artifact`, its kind and address filled in.
    pub fn new(
        name: &str,
        version: &str,
        artifact: &Artifact,
        training_data_manifest_sha256: Option<String>,
        metrics: BTreeMap<String, f64>,
        created_at: Timestamp,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            name: name.to_string(),
            version: version.to_string(),
            kind: artifact.kind().to_string(),
            artifact_sha256: artifact_sha256(artifact)?,
            training_data_manifest_sha256,
            metrics,
            created_at,
        })
    }

    /// Canonical bytes of the document, as stored.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        Ok(canonical::to_vec_of(self)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Original vs replayed

/// The decision fields of a record that a replay must reproduce.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recorded<'a> {
    pub outputs: &'a [Output],
    pub decision: &'a str,
    pub confidence: Option<f64>,
    pub threshold: Option<f64>,
}

impl<'a> Recorded<'a> {
    /// The decision fields of `record`; `None` unless it has both `outputs` and `decision`.
    pub fn from_record(record: &'a Record) -> Option<Self> {
        Some(Self {
            outputs: record.outputs.as_deref()?,
            decision: record.decision.as_deref()?,
            confidence: record.confidence,
            threshold: record.threshold,
        })
    }
}

/// One field where the replay differs from the record (`null` where a side has no value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// `outputs`, `outputs[1].label`, `outputs[0].score`, `decision`, `confidence`, `threshold`.
    pub field: String,
    pub original: Value,
    pub replayed: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub matches_exactly: bool,
    pub differences: Vec<Difference>,
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or_else(|| Value::String(x.to_string()), Value::Number)
}

/// Compares a replay with the record: labels and order of `outputs`, every score, `decision`,
/// `confidence` and `threshold`, numbers by their exact bits (so `0.1` and `0.1 + 1e-17`
/// differ, and so do `0` and `−0`).
pub fn compare(original: &Recorded<'_>, replayed: &Evaluation) -> Comparison {
    let mut differences = Vec::new();
    let mut differ = |field: String, original: Value, replayed: Value| {
        differences.push(Difference {
            field,
            original,
            replayed,
        })
    };
    if original.outputs.len() != replayed.outputs.len() {
        differ(
            "outputs".to_string(),
            serde_json::to_value(original.outputs).unwrap_or(Value::Null),
            serde_json::to_value(&replayed.outputs).unwrap_or(Value::Null),
        );
    } else {
        for (i, (a, b)) in original.outputs.iter().zip(&replayed.outputs).enumerate() {
            if a.label != b.label {
                differ(
                    format!("outputs[{i}].label"),
                    Value::String(a.label.clone()),
                    Value::String(b.label.clone()),
                );
            }
            if a.score.to_bits() != b.score.to_bits() {
                differ(
                    format!("outputs[{i}].score"),
                    number(a.score),
                    number(b.score),
                );
            }
        }
    }
    if original.decision != replayed.decision {
        differ(
            "decision".to_string(),
            Value::String(original.decision.to_string()),
            Value::String(replayed.decision.clone()),
        );
    }
    for (field, a, b) in [
        ("confidence", original.confidence, replayed.confidence),
        ("threshold", original.threshold, replayed.threshold),
    ] {
        if a.map(f64::to_bits) != Some(b.to_bits()) {
            differ(field.to_string(), a.map_or(Value::Null, number), number(b));
        }
    }
    Comparison {
        matches_exactly: differences.is_empty(),
        differences,
    }
}
