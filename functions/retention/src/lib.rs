//! The `retention` Lambda: run by EventBridge Scheduler (`{"task": "run"}`) over every
//! tenant, archiving files past their hot window and deleting (with a signed tombstone) files
//! past their retention period unless a legal hold keeps them. `dj retention` invokes it for a
//! dry run (`plan`), the policy in force, a new policy version, legal holds, and the erasure
//! of one subject (`erase`; runs finish erasures that wait for a restore). The domain lives in
//! `journal_core::retention`.

pub mod config;
pub mod task;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use journal_aws::checkpoints::{CheckpointRetention, KmsCheckpointSigner, S3CheckpointStore};
use journal_aws::{load_master_key, AwsClients, DynamoIndex, KmsSubjectKeys, S3ObjectStore};
use journal_core::compact::CompactorConfig;
use journal_core::keys::MasterKey;
use journal_core::ports::JournalIndex;
use journal_core::retention::{
    current_policy, publish_policy, with_hold, without_hold, Erasure, ErasureReport, FileReport,
    PolicyStoreError, Retention, RetentionConfig, RetentionPolicy, TenantReport,
};
use journal_core::timestamp::Timestamp;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{json, Value};
use tracing::Instrument;

pub use config::{Config, ConfigError};
pub use task::{Task, TaskError};

/// Everything the handler needs, built once per process.
pub struct Deps {
    pub store: S3ObjectStore,
    pub index: DynamoIndex,
    /// Write-once, Object Lock retained: policy versions, tombstones, reports.
    pub evidence: S3CheckpointStore,
    pub signer: KmsCheckpointSigner,
    /// Erasure deletes the subject's wrapped data key.
    pub subject_keys: KmsSubjectKeys,
    pub master: MasterKey,
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] journal_aws::SecretError),
    #[error("checkpoint key {key_id}: {reason}")]
    SigningKey { key_id: String, reason: String },
}

pub async fn build_deps(config: Config, clients: &AwsClients) -> Result<Deps, StartError> {
    let master = load_master_key(&clients.secretsmanager, &config.master_key_secret_id).await?;
    let (signer, _) = KmsCheckpointSigner::resolve(clients.kms.clone(), &config.checkpoint_key_id)
        .await
        .map_err(|e| StartError::SigningKey {
            key_id: config.checkpoint_key_id.clone(),
            reason: e.to_string(),
        })?;
    Ok(Deps {
        store: S3ObjectStore::new(clients.s3.clone(), &config.bucket),
        index: DynamoIndex::new(clients.dynamodb.clone(), &config.table)
            .with_ledger_table(&config.ledger_table),
        evidence: S3CheckpointStore::new(
            clients.s3.clone(),
            &config.bucket,
            CheckpointRetention::default(),
        ),
        signer,
        subject_keys: KmsSubjectKeys::new(
            clients.dynamodb.clone(),
            clients.kms.clone(),
            &config.table,
            &config.subject_key_id,
        ),
        master,
        config,
    })
}

/// One tenant's run as the invocation answers it: the counts, and the first files (the
/// stored report lists them all).
#[derive(Debug, Serialize)]
pub struct TenantRun {
    pub tenant_id: String,
    #[serde(flatten)]
    pub report: TenantReport,
    /// Files left out of `files` to keep the answer small.
    pub files_not_listed: usize,
    /// Erasures this run finished or found still waiting.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub erasures: Vec<ErasureReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Handles one invocation. A tenant whose run fails (or leaves files failed) is reported and
/// the others still run; the invocation then fails, so the schedule's retries and the error
/// alarm see it.
pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Value, lambda_runtime::Error> {
    let task = Task::parse(&event.payload)?;
    let stop_at =
        journal_aws::function_env::stop_at(event.context.deadline, deps.config.reserve_ms);
    handle(deps, &task, Timestamp::now(), stop_at).await
}

/// Runs a task at `now` (the handler passes the clock; tests pass their own).
pub async fn handle(
    deps: &Deps,
    task: &Task,
    now: Timestamp,
    stop_at: Option<Instant>,
) -> Result<Value, lambda_runtime::Error> {
    match task {
        Task::Run(scope) | Task::Plan(scope) => {
            let dry_run = matches!(task, Task::Plan(_));
            let runs = retain(deps, scope.tenant_id.as_deref(), now, dry_run, stop_at).await?;
            let failed: Vec<String> = runs
                .iter()
                .filter_map(|r| {
                    r.error.clone().or_else(|| {
                        r.report
                            .failed()
                            .next()
                            .map(|f| format!("{}: {:?}", f.file_key, f.outcome))
                    })
                })
                .collect();
            if !failed.is_empty() {
                return Err(format!(
                    "retention failed for {} of {} tenants; first: {}",
                    failed.len(),
                    runs.len(),
                    failed[0]
                )
                .into());
            }
            let name = if dry_run { "plan" } else { "run" };
            Ok(json!({ "task": name, "tenants": runs }))
        }
        Task::Policy => {
            let (key, policy) = current_policy(&deps.evidence)
                .await?
                .ok_or(PolicyStoreError::NoPolicy)?;
            Ok(json!({ "task": "policy", "key": key, "policy": policy }))
        }
        Task::SetPolicy(set) => {
            let bytes = serde_json::to_vec(&set.policy)?;
            let policy = RetentionPolicy::parse(&bytes).map_err(PolicyStoreError::from)?;
            let key = publish_policy(&deps.evidence, &policy).await?;
            Ok(json!({ "task": "set_policy", "key": key, "version": policy.version }))
        }
        Task::Hold(_) => {
            let request = task.hold_request().ok_or("not a hold")?;
            let (_, policy) = current_policy(&deps.evidence)
                .await?
                .ok_or(PolicyStoreError::NoPolicy)?;
            let next =
                with_hold(&policy, &request, &deps.master, now).map_err(PolicyStoreError::from)?;
            let key = publish_policy(&deps.evidence, &next).await?;
            Ok(
                json!({ "task": "hold", "hold_id": request.id, "key": key, "version": next.version }),
            )
        }
        Task::Erase(erase) => {
            let (_, policy) = current_policy(&deps.evidence)
                .await?
                .ok_or(PolicyStoreError::NoPolicy)?;
            let retention = retention_for(deps, &policy, now, stop_at);
            let erasure = erasure_for(deps, &retention);
            let span =
                tracing::info_span!("erase", tenant = %erase.tenant_id, dry_run = erase.dry_run);
            let report = erasure
                .erase(&erase.tenant_id, &erase.subject_id, now, erase.dry_run)
                .instrument(span)
                .await?;
            if report.busy {
                return Err(format!(
                    "tenant {} is busy with another retention run or erasure; try again",
                    erase.tenant_id
                )
                .into());
            }
            Ok(json!({ "task": "erase", "erasure": report }))
        }
        Task::Release(release) => {
            let hold_id = &release.hold_id;
            let (_, policy) = current_policy(&deps.evidence)
                .await?
                .ok_or(PolicyStoreError::NoPolicy)?;
            let next = without_hold(&policy, hold_id, now)?;
            let key = publish_policy(&deps.evidence, &next).await?;
            Ok(
                json!({ "task": "release", "hold_id": hold_id, "key": key, "version": next.version }),
            )
        }
    }
}

/// Runs (or, dry, plans) retention for one tenant or every tenant with a chain.
pub async fn retain(
    deps: &Deps,
    tenant_id: Option<&str>,
    now: Timestamp,
    dry_run: bool,
    stop_at: Option<Instant>,
) -> Result<Vec<TenantRun>, lambda_runtime::Error> {
    let (_, policy) = current_policy(&deps.evidence)
        .await?
        .ok_or(PolicyStoreError::NoPolicy)?;
    let tenants = match tenant_id {
        Some(t) => vec![t.to_string()],
        None => deps
            .index
            .list_chain_heads()
            .await?
            .into_iter()
            .map(|h| h.chain_id)
            .collect(),
    };
    let retention = retention_for(deps, &policy, now, stop_at);
    let erasure = erasure_for(deps, &retention);
    let mut runs = Vec::new();
    for tenant in tenants {
        let span = tracing::info_span!("retention", tenant = %tenant, dry_run);
        let result = async {
            let report = retention.run_tenant(&tenant, now, dry_run).await?;
            let erasures = if dry_run {
                Vec::new()
            } else {
                erasure.resume(&tenant, now).await?
            };
            Ok::<_, journal_core::retention::RetentionError>((report, erasures))
        }
        .instrument(span.clone())
        .await;
        let _in = span.enter();
        runs.push(match result {
            Ok((mut report, erasures)) => {
                tracing::info!(counts = ?report.counts, report = ?report.report_key, "retention run");
                let listed = deps.config.answer_files.min(report.files.len());
                let files_not_listed = report.files.len() - listed;
                let files: Vec<FileReport> = report.files.drain(..listed).collect();
                report.files = files;
                TenantRun {
                    tenant_id: tenant,
                    report,
                    files_not_listed,
                    erasures,
                    error: None,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "retention run failed");
                TenantRun {
                    tenant_id: tenant.clone(),
                    report: TenantReport {
                        tenant_id: tenant,
                        ..TenantReport::default()
                    },
                    files_not_listed: 0,
                    erasures: Vec::new(),
                    error: Some(e.to_string()),
                }
            }
        });
    }
    Ok(runs)
}

/// A retention run's settings for this invocation, under an owner unique per run (also between
/// runs of one process).
fn retention_for<'a>(
    deps: &'a Deps,
    policy: &'a RetentionPolicy,
    now: Timestamp,
    stop_at: Option<Instant>,
) -> AwsRetention<'a> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let owner = format!(
        "retention-{}-{}-{}",
        std::process::id(),
        now.millis(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    Retention::new(
        &deps.store,
        &deps.index,
        &deps.evidence,
        &deps.signer,
        policy,
        RetentionConfig {
            stop_at,
            ..deps.config.retention.clone()
        },
        owner,
    )
}

type AwsRetention<'a> =
    Retention<'a, S3ObjectStore, DynamoIndex, S3CheckpointStore, KmsCheckpointSigner>;

/// Erasure beside a run: copies are written like compaction's outputs.
fn erasure_for<'r, 'a>(
    deps: &'r Deps,
    retention: &'r AwsRetention<'a>,
) -> Erasure<
    'r,
    'a,
    S3ObjectStore,
    DynamoIndex,
    S3CheckpointStore,
    KmsCheckpointSigner,
    KmsSubjectKeys,
> {
    Erasure::new(
        retention,
        &deps.subject_keys,
        &deps.master,
        CompactorConfig::default().writer,
    )
}

#[cfg(test)]
mod tests {
    use journal_core::retention::{ArchiveClass, RetentionPolicy};

    /// The default of a template parameter, read from its block in `infra/template.yaml`.
    fn parameter_default(template: &str, name: &str) -> String {
        let start = template
            .find(&format!("\n  {name}:\n"))
            .unwrap_or_else(|| panic!("parameter {name}"));
        template[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with("    "))
            .find_map(|l| l.trim().strip_prefix("Default:"))
            .unwrap_or_else(|| panic!("default of {name}"))
            .trim()
            .to_string()
    }

    #[test]
    fn the_lifecycle_backstop_in_infra_agrees_with_the_shipped_policy() {
        let policy =
            RetentionPolicy::parse(include_bytes!("../../../infra/retention-policy.json")).unwrap();
        let template = include_str!("../../../infra/template.yaml");
        let (days, class) = policy.lifecycle_backstop();
        assert_eq!(
            parameter_default(template, "ArchiveBackstopDays"),
            days.to_string()
        );
        assert_eq!(
            ArchiveClass::parse(&parameter_default(template, "ArchiveBackstopClass")),
            Some(class)
        );
        // And the rule that uses them only moves objects over 128 KiB.
        assert!(template.contains("ObjectSizeGreaterThan: \"131071\""));
        assert_eq!(journal_core::retention::MIN_ARCHIVE_BYTES, 131_072);
    }
}
