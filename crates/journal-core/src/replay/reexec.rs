//! Re-execution: the recorded model, loaded by its recorded hash, run on the recorded
//! features, compared bit for bit with what was decided.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::api::{Answer, OriginalDecision, Reexecution};
use super::lookup::{Finder, Found, Lookup, RowReader};
use super::service::{Done, Failure, ReplayService};
use super::views::record_view;
use crate::access::Role;
use crate::checkpoint::CheckpointStore;
use crate::features_crypto;
use crate::models::{self, compare, evaluate, Artifact, Recorded};
use crate::ports::{JournalIndex, ObjectStore, RangedObjectStore, SubjectKeyStore};
use crate::record::Kind;
use crate::timestamp::Timestamp;

/// Why an LLM decision is not re-run.
pub const LLM_NOT_RERUN: &str = "LLM decision: reconstructed from the journal and verified, \
    not re-run (a hosted model's generation is not reproducible)";

/// Artifacts loaded in one request, by SHA-256.
#[derive(Default)]
pub(super) struct Registry(HashMap<String, Arc<Artifact>>);

impl Registry {
    /// The artifact at `models/<sha256>`, its bytes checked against the address.
    pub async fn load<S: ObjectStore>(
        &mut self,
        store: &S,
        sha256: &str,
    ) -> Result<Arc<Artifact>, Failure> {
        if let Some(a) = self.0.get(sha256) {
            return Ok(a.clone());
        }
        if !models::is_sha256_hex(sha256) {
            return Err(Failure::bad_request(format!(
                "{sha256:?} is not a SHA-256 (64 lowercase hex digits)"
            )));
        }
        let key = models::artifact_key(sha256);
        let bytes = store.get_object(&key).await?.ok_or_else(|| {
            Failure::not_found(format!(
                "model artifact {sha256} is not in the registry ({key})"
            ))
        })?;
        let artifact = models::load_verified(&bytes, sha256)
            .map_err(|e| Failure::unavailable(format!("registry object {key}: {e}")))?;
        let artifact = Arc::new(artifact);
        self.0.insert(sha256.to_string(), artifact.clone());
        Ok(artifact)
    }
}

/// The decision's raw features: `supplied` ones checked against its `features_hmac`, else the
/// sealed ones opened with the subject's data key. Returns the features and their source.
pub(super) async fn features_of<S, I, K, C>(
    svc: &ReplayService<S, I, K, C>,
    found: &Found,
    supplied: Option<&Map<String, Value>>,
) -> Result<(Map<String, Value>, &'static str), Failure>
where
    S: RangedObjectStore,
    C: CheckpointStore,
    I: JournalIndex,
    K: SubjectKeyStore,
{
    let r = &found.record;
    let recorded_hmac = r.features_hmac.as_deref().ok_or_else(|| {
        Failure::not_found(format!(
            "{}: the decision recorded no features",
            r.decision_id
        ))
    })?;
    if let Some(features) = supplied {
        let hmac = svc
            .journal
            .master
            .tenant_keys(&r.tenant_id)
            .features_hmac(features)
            .map_err(|e| Failure::bad_request(format!("features: {e}")))?;
        if hmac != recorded_hmac {
            return Err(Failure::bad_request(format!(
                "features: the supplied features do not match {}'s features_hmac",
                r.decision_id
            )));
        }
        return Ok((features.clone(), "supplied"));
    }
    let sealed = found.features_sealed.as_deref().ok_or_else(|| {
        Failure::not_found(format!(
            "{}: no raw features were kept (tenant policy); supply them to re-execute",
            r.decision_id
        ))
    })?;
    let subject_ref = r.subject_ref.as_deref().ok_or_else(|| {
        Failure::not_found(format!("{}: sealed features but no subject", r.decision_id))
    })?;
    // A reader never mints a key: a shredded one reads as gone.
    let key = svc
        .journal
        .subject_keys
        .existing_key(&r.tenant_id, subject_ref)
        .await?
        .ok_or_else(|| {
            Failure::unavailable(format!(
                "{}: the subject's data key was shredded (erasure), so its sealed features \
                 cannot be opened; supply the features to re-execute",
                r.decision_id
            ))
        })?;
    let aad = features_crypto::aad(&r.tenant_id, r.record_id(), recorded_hmac);
    let plain = features_crypto::open(&key, &aad, sealed).map_err(|e| {
        Failure::unavailable(format!(
            "{}: the sealed features cannot be opened (subject erased?): {e}",
            r.decision_id
        ))
    })?;
    let features: Map<String, Value> = serde_json::from_slice(&plain).map_err(|e| {
        Failure::unavailable(format!(
            "{}: opened features are not JSON: {e}",
            r.decision_id
        ))
    })?;
    Ok((features, "decrypted"))
}

pub(super) async fn reexecute<S, I, K, C>(
    svc: &ReplayService<S, I, K, C>,
    role: Role,
    tenant: &str,
    decision_id: &str,
    supplied: Option<&Map<String, Value>>,
    now: Timestamp,
) -> Result<Done, Failure>
where
    S: RangedObjectStore,
    C: CheckpointStore,
    I: JournalIndex,
    K: SubjectKeyStore,
{
    if role != Role::Auditor {
        return Err(Failure::denied(
            "re-execution reads raw features: auditor role required",
        ));
    }
    let witness = svc.witness();
    let finder = Finder::new(svc.store(), svc.index()).with_witness(&witness);
    let mut reader = RowReader::new(svc.store());
    let found = finder.by_id(&mut reader, tenant, decision_id, now).await?;
    let covered = svc.coverage(tenant).await.and_then(|c| c.covered_seq);
    let pii = svc.policy.pii_for(tenant);
    let view = record_view(&found, role, &pii, covered);
    let f = match &found {
        Lookup::Found(f) => f,
        Lookup::NotFound { .. } => {
            return Err(Failure::not_found(format!("{decision_id}: no such record")))
        }
        Lookup::Pending { .. } => {
            return Err(Failure::unavailable(format!(
                "{decision_id}: accepted but not yet indexed; retry shortly"
            )))
        }
        Lookup::Archived(a) => {
            let answer = Reexecution {
                decision: view,
                features_source: "none".into(),
                model_name: None,
                model_version: None,
                artifact_sha256: None,
                artifact_kind: None,
                original: None,
                replayed: None,
                comparison: None,
                not_rerun: Some(format!(
                    "archived in {}; {}; try again after {}",
                    a.storage_class, a.status, a.retry_after
                )),
            };
            return Ok(Done::new(
                Answer::Reexecution(Box::new(answer)),
                vec![decision_id.to_string()],
            ));
        }
    };
    let r = &f.record;
    if r.kind != Kind::Decision {
        return Err(Failure::bad_request(format!(
            "{decision_id} is a {} record; only decisions are re-executed",
            r.kind.as_str()
        )));
    }
    let model = r.model.as_ref();
    let mut answer = Reexecution {
        decision: view,
        features_source: "none".into(),
        model_name: model.map(|m| m.name.clone()),
        model_version: model.map(|m| m.version.clone()),
        artifact_sha256: model.map(|m| m.artifact_sha256.clone()),
        artifact_kind: None,
        original: Recorded::from_record(r).map(|o| OriginalDecision {
            outputs: o.outputs.to_vec(),
            decision: o.decision.to_string(),
            confidence: o.confidence,
            threshold: o.threshold,
        }),
        replayed: None,
        comparison: None,
        not_rerun: None,
    };
    if r.llm.is_some() {
        answer.not_rerun = Some(LLM_NOT_RERUN.into());
        return Ok(Done::new(
            Answer::Reexecution(Box::new(answer)),
            vec![decision_id.to_string()],
        ));
    }
    let sha = model
        .map(|m| m.artifact_sha256.as_str())
        .ok_or_else(|| Failure::bad_request(format!("{decision_id}: no model recorded")))?;
    let artifact = Registry::default().load(svc.store(), sha).await?;
    answer.artifact_kind = Some(artifact.kind().to_string());
    let (features, source) = features_of(svc, f, supplied).await?;
    answer.features_source = source.into();
    let replayed = evaluate(&artifact, &features, None)
        .map_err(|e| Failure::bad_request(format!("evaluating {sha} on {decision_id}: {e}")))?;
    let original = Recorded::from_record(r)
        .ok_or_else(|| Failure::bad_request(format!("{decision_id}: no outputs recorded")))?;
    answer.comparison = Some(compare(&original, &replayed));
    answer.replayed = Some(replayed);
    Ok(Done::new(
        Answer::Reexecution(Box::new(answer)),
        vec![decision_id.to_string()],
    ))
}
