//! The `replay` Lambda: the one audited door for auditors' and operators' reads. The caller's
//! IAM identity is proven by a signed STS request it cannot forge; the domain (lookups,
//! proofs, re-execution, what-if, masking, the access journal) lives in
//! `journal_core::replay`.

pub mod config;

use std::time::SystemTime;

use journal_aws::checkpoints::{CheckpointRetention, KmsCheckpointSigner, S3CheckpointStore};
use journal_aws::identity::{IdentityProof, IdentityVerifier};
use journal_aws::{load_master_key, AwsClients, DynamoIndex, KmsSubjectKeys, S3ObjectStore};
use journal_core::checkpoint::write_all_checkpoints;
use journal_core::replay::api::{Answer, ErrorAnswer, Invocation, Response};
use journal_core::replay::{Caller, ReplayService};
use journal_core::timestamp::Timestamp;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::Instrument;

pub use config::{Config, ConfigError, IdentityMode};

pub type Service = ReplayService<S3ObjectStore, DynamoIndex, KmsSubjectKeys, S3CheckpointStore>;

/// Everything the handler needs, built once per process.
pub struct Deps {
    pub service: Service,
    pub identity: Identity,
    /// Signs the scheduled checkpoints (KMS, `DJ_CHECKPOINT_KEY_ID`).
    pub signer: Option<KmsCheckpointSigner>,
}

/// How callers are identified (see [`IdentityMode`]).
pub enum Identity {
    Sts(Box<IdentityVerifier>),
    TrustPayload,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] journal_aws::SecretError),
    #[error("checkpoint key {key_id}: {reason}")]
    CheckpointKey { key_id: String, reason: String },
    #[error("identity verifier: {0}")]
    Identity(String),
}

/// Builds the service from its configuration and the process's clients.
pub async fn build_deps(config: &Config, clients: &AwsClients) -> Result<Deps, StartError> {
    let master = load_master_key(&clients.secretsmanager, &config.master_key_secret_id).await?;
    let mut service = ReplayService::new(
        S3ObjectStore::new(clients.s3.clone(), &config.bucket),
        DynamoIndex::new(clients.dynamodb.clone(), &config.table)
            .with_ledger_table(&config.ledger_table),
        KmsSubjectKeys::new(
            clients.dynamodb.clone(),
            clients.kms.clone(),
            &config.table,
            &config.subject_key_id,
        ),
        S3CheckpointStore::new(
            clients.s3.clone(),
            &config.bucket,
            CheckpointRetention::default(),
        ),
        master,
        config.policy.clone(),
    );
    let signer = match &config.checkpoint_key_id {
        Some(key_id) => {
            let (signer, der) = KmsCheckpointSigner::resolve(clients.kms.clone(), key_id)
                .await
                .map_err(|e| StartError::CheckpointKey {
                    key_id: key_id.clone(),
                    reason: e.to_string(),
                })?;
            Some((signer, der))
        }
        None => None,
    };
    service.checkpoint_key = config
        .checkpoint_public_key
        .clone()
        .or_else(|| signer.as_ref().map(|(_, der)| der.clone()));
    let identity = match &config.identity {
        IdentityMode::TrustPayload => {
            tracing::warn!("trusting the principal stated in payloads: local runs only");
            Identity::TrustPayload
        }
        IdentityMode::Sts { url } => Identity::Sts(Box::new(
            IdentityVerifier::new(url).map_err(|e| StartError::Identity(e.to_string()))?,
        )),
    };
    Ok(Deps {
        service,
        identity,
        signer: signer.map(|(s, _)| s),
    })
}

/// Handles one invocation: a scheduled task (`{"task": "checkpoint"}` from EventBridge
/// Scheduler), or a caller's request (establish the caller, answer, journal).
pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Value, lambda_runtime::Error> {
    let now = Timestamp::now();
    if let Some(task) = event.payload.get("task") {
        return match task.as_str() {
            Some("checkpoint") => checkpoint_task(deps, now).await,
            _ => {
                Err(format!("unknown task {task}; the replay function runs \"checkpoint\"").into())
            }
        };
    }
    let response = handle(event.payload, deps, now).await;
    Ok(serde_json::to_value(response)?)
}

/// Signs a checkpoint of every chain that moved since its last one. A tenant that fails is
/// reported and logged; the run fails (so the schedule's retry and alarm see it) if any did.
pub async fn checkpoint_task(deps: &Deps, now: Timestamp) -> Result<Value, lambda_runtime::Error> {
    let signer = deps
        .signer
        .as_ref()
        .ok_or("no checkpoint key configured (DJ_CHECKPOINT_KEY_ID)")?;
    let service = &deps.service;
    let runs = write_all_checkpoints(
        service.index(),
        &service.checkpoints,
        signer,
        now,
        &service.checkpoint_policy,
    )
    .await?;
    let mut failed = 0;
    for run in &runs {
        match &run.error {
            Some(error) => {
                failed += 1;
                tracing::error!(tenant = %run.tenant_id, %error, "checkpoint failed");
            }
            None => tracing::info!(tenant = %run.tenant_id, outcome = %run.outcome,
                number = ?run.number, seq = ?run.seq, "checkpoint"),
        }
    }
    if failed > 0 {
        return Err(format!(
            "{failed} of {} tenants could not be checkpointed",
            runs.len()
        )
        .into());
    }
    Ok(serde_json::json!({ "task": "checkpoint", "tenants": runs }))
}

/// The handler without the Lambda envelope.
pub async fn handle(payload: Value, deps: &Deps, now: Timestamp) -> Response {
    let invocation: Invocation = match serde_json::from_value(payload) {
        Ok(i) => i,
        Err(e) => {
            // Nothing to journal against: no tenant is known. Nothing is read either.
            return Response {
                principal: "unverified".into(),
                role: None,
                access_id: String::new(),
                answer: Answer::Error(ErrorAnswer {
                    code: "bad_request".into(),
                    message: format!("not a replay invocation: {e}"),
                }),
            };
        }
    };
    let caller = establish_caller(&invocation, deps).await;
    let span = tracing::info_span!(
        "replay",
        tenant = %invocation.request.tenant_id,
        op = invocation.request.op.name(),
    );
    let response = deps
        .service
        .handle(caller, invocation.request, now)
        .instrument(span.clone())
        .await;
    let _in = span.enter();
    match &response.answer {
        Answer::Error(e) => tracing::warn!(principal = %response.principal,
            access_id = %response.access_id, code = %e.code, message = %e.message, "refused"),
        _ => tracing::info!(principal = %response.principal,
            access_id = %response.access_id, "answered"),
    }
    response
}

async fn establish_caller(invocation: &Invocation, deps: &Deps) -> Caller {
    match &deps.identity {
        Identity::TrustPayload => match &invocation.principal {
            Some(p) if !p.trim().is_empty() => Caller::Verified(p.clone()),
            _ => Caller::Unknown("no principal stated (local trust mode)".into()),
        },
        Identity::Sts(verifier) => {
            let Some(proof) = &invocation.identity else {
                return Caller::Unknown(
                    "no identity proof: sign an STS GetCallerIdentity request (dj does)".into(),
                );
            };
            let proof: IdentityProof = match serde_json::from_value(proof.clone()) {
                Ok(p) => p,
                Err(e) => return Caller::Unknown(format!("identity proof unreadable: {e}")),
            };
            match verifier.verify(&proof, SystemTime::now()).await {
                Ok(arn) => Caller::Verified(arn),
                Err(e) => Caller::Unknown(e.to_string()),
            }
        }
    }
}
