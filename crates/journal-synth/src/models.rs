//! The model registry contents behind the generated decisions.
//!
//! Every loan, fraud and moderation decision is made by evaluating a real `dj-model/v1`
//! artifact ([`journal_core::models`]) on the decision's features, and records that artifact's
//! address in `model.artifact_sha256`. [`model_artifacts`] lists those artifacts with their
//! registry metadata, so tests, the demo and a registry upload can publish exactly what the
//! generator used (at `models/<sha256>`, with the metadata beside it).
//!
//! | model | version | kind |
//! |---|---|---|
//! | `credit-risk` | 3.1.4 | scorecard |
//! | `credit-risk` | 3.2.0 | logistic |
//! | `credit-risk` | 3.3.0-rc.1 | decision_tree |
//! | `card-fraud-gbm` | 2025.11.2, 2026.01.0 | tree_ensemble |
//! | `content-safety` | 5.0.1, 5.1.0, 6.0.0-shadow | rule_set |
//!
//! The LLM triage model (`ticket-triage-llm`) is a vendor model: its decisions are
//! reconstructed and verified, not re-run, so it has no artifact here and its records carry a
//! stand-in digest.

use std::collections::BTreeMap;

use journal_core::models::{Artifact, ModelMetadata};
use journal_core::timestamp::Timestamp;

use crate::config::Domain;
use crate::domains::{self, spec};

/// Every model version the generator decides with, as `(registry metadata, artifact)`, in
/// domain and version order. The metadata's `artifact_sha256` is the address the generated
/// records carry, and its `training_data_manifest_sha256` the `dataset_manifest_sha256` that
/// loan records send.
pub fn model_artifacts() -> Vec<(ModelMetadata, Artifact)> {
    let mut out = Vec::new();
    for domain in Domain::ALL {
        let s = spec(domain);
        for v in s.versions {
            let Some(artifact) = domains::artifact(domain, v) else {
                continue;
            };
            let metrics: BTreeMap<String, f64> =
                v.metrics.iter().map(|(k, x)| (k.to_string(), *x)).collect();
            let created_at = Timestamp::parse(v.created_at)
                .unwrap_or_else(|e| panic!("{} {}: created_at: {e}", s.model, v.version));
            let metadata = ModelMetadata::new(
                s.model,
                v.version,
                &artifact,
                Some(domains::dataset_sha256(s.model, v.version)),
                metrics,
                created_at,
            )
            .unwrap_or_else(|e| panic!("{} {}: {e}", s.model, v.version));
            out.push((metadata, artifact));
        }
    }
    out
}

/// The artifact (and its metadata) the generator uses under the address `artifact_sha256`.
pub fn model_artifact(artifact_sha256: &str) -> Option<(ModelMetadata, Artifact)> {
    model_artifacts()
        .into_iter()
        .find(|(m, _)| m.artifact_sha256 == artifact_sha256)
}
