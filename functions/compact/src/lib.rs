//! The `compact` Lambda: run by EventBridge Scheduler (`{"task": "compact"}`) over every
//! tenant's recent partition dates, or invoked by hand for one tenant, date or hour. After each
//! date it refreshes that day's metrics read model. The domain (plan, merge, crash-safe switch,
//! leases; metrics) lives in `journal_core::compact` and `journal_core::metrics`.

pub mod config;
pub mod task;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use journal_aws::{load_master_key, AwsClients, DynamoIndex, S3ObjectStore};
use journal_core::compact::{Compactor, CompactorConfig, RunReport};
use journal_core::keys::MasterKey;
use journal_core::metrics::{refresh_day, MetricsError};
use journal_core::ports::JournalIndex;
use journal_core::timestamp::Timestamp;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

pub use config::{Config, ConfigError};
pub use task::{Task, TaskError};

/// Everything the handler needs, built once per process.
pub struct Deps {
    pub store: S3ObjectStore,
    pub index: DynamoIndex,
    pub master: MasterKey,
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] journal_aws::SecretError),
}

pub async fn build_deps(config: Config, clients: &AwsClients) -> Result<Deps, StartError> {
    let master = load_master_key(&clients.secretsmanager, &config.master_key_secret_id).await?;
    Ok(Deps {
        store: S3ObjectStore::new(clients.s3.clone(), &config.bucket),
        index: DynamoIndex::new(clients.dynamodb.clone(), &config.table)
            .with_ledger_table(&config.ledger_table),
        master,
        config,
    })
}

/// One partition date's run, as the invocation answers it.
#[derive(Debug, Serialize)]
pub struct PartitionRun {
    pub tenant_id: String,
    pub date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour: Option<u8>,
    #[serde(flatten)]
    pub report: Summary,
    pub metrics: MetricsRun,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What became of the day's metrics after the compaction run.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum MetricsRun {
    /// Recomputed and written: one row per model version (and unattributed follow-ups).
    Refreshed { rows: usize },
    /// A merge of the day is still in flight (deferred, busy or crashed): the next run
    /// refreshes it once the merge is finished. The metrics already written stand.
    Unsettled { file_key: String },
    /// A file of the day is archived: the metrics written while it was hot stand.
    Archived { file_key: String },
    /// Not attempted: the compaction failed, or the invocation is out of time.
    NotRun,
    /// The refresh failed; the invocation fails with it.
    Failed { error: String },
}

/// A run report without the per-file list of what the plan left alone (logged instead: a
/// compacted day has thousands of entries and the answer must stay far below 6 MB).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub written: Vec<journal_core::compact::WrittenOutput>,
    pub resumed: Vec<String>,
    pub busy: Vec<String>,
    pub deferred: Vec<String>,
    pub deleted: usize,
    pub skipped: usize,
}

impl From<RunReport> for Summary {
    fn from(r: RunReport) -> Self {
        let hours = |ps: Vec<journal_core::compact::Partition>| {
            ps.into_iter()
                .map(|p| format!("{}/{:02}", p.date, p.hour))
                .collect()
        };
        Self {
            written: r.written,
            resumed: r.resumed,
            busy: hours(r.busy),
            deferred: hours(r.deferred),
            deleted: r.deleted.len(),
            skipped: r.skipped.len(),
        }
    }
}

/// Handles one invocation. A partition that fails is reported and logged and the others still
/// run; the invocation then fails, so the schedule's retry policy and the error alarm see it.
pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Value, lambda_runtime::Error> {
    let task = Task::parse(&event.payload)?;
    let stop_at =
        journal_aws::function_env::stop_at(event.context.deadline, deps.config.reserve_ms);
    let runs = compact(deps, &task, Timestamp::now(), stop_at).await?;
    let failed = runs.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        let first = runs.iter().find_map(|r| r.error.as_deref()).unwrap_or("");
        return Err(format!(
            "{failed} of {} partition dates failed; first: {first}",
            runs.len()
        )
        .into());
    }
    Ok(serde_json::json!({ "task": "compact", "partitions": runs }))
}

/// Runs the task's partition dates in turn.
pub async fn compact(
    deps: &Deps,
    task: &Task,
    now: Timestamp,
    stop_at: Option<Instant>,
) -> Result<Vec<PartitionRun>, lambda_runtime::Error> {
    let tenants = match &task.tenant_id {
        Some(t) => vec![t.clone()],
        None => deps
            .index
            .list_chain_heads()
            .await?
            .into_iter()
            .map(|h| h.chain_id)
            .collect(),
    };
    let dates = task.dates(now, deps.config.lookback_days);
    let config = CompactorConfig {
        stop_at,
        ..deps.config.compactor.clone()
    };
    // Unique per run, also between runs of one process (tests run two at once).
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let owner = format!(
        "compact-{}-{}-{}",
        std::process::id(),
        now.millis(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let compactor = Compactor::new(&deps.store, &deps.index, &deps.master, config, owner);
    let mut runs = Vec::new();
    for tenant_id in &tenants {
        for date in &dates {
            let span =
                tracing::info_span!("compact", tenant = %tenant_id, %date, hour = ?task.hour);
            let result = compactor
                .run_partition(tenant_id, date, task.hour, now)
                .instrument(span.clone())
                .await;
            let metrics = match &result {
                Ok(_) if out_of_time(stop_at) => MetricsRun::NotRun,
                Ok(_) => {
                    refresh(deps, tenant_id, date)
                        .instrument(span.clone())
                        .await
                }
                Err(_) => MetricsRun::NotRun,
            };
            let _in = span.enter();
            let metrics_error = match &metrics {
                MetricsRun::Failed { error } => Some(format!("{tenant_id} {date}: {error}")),
                _ => None,
            };
            let run = match result {
                Ok(report) => {
                    for s in &report.skipped {
                        tracing::debug!(file = %s.file_key, reason = %s.reason, "left alone");
                    }
                    tracing::info!(
                        written = report.written.len(),
                        resumed = report.resumed.len(),
                        busy = report.busy.len(),
                        deferred = report.deferred.len(),
                        deleted = report.deleted.len(),
                        "partition date done"
                    );
                    PartitionRun {
                        tenant_id: tenant_id.clone(),
                        date: date.clone(),
                        hour: task.hour,
                        report: report.into(),
                        metrics,
                        error: metrics_error,
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "partition date failed");
                    PartitionRun {
                        tenant_id: tenant_id.clone(),
                        date: date.clone(),
                        hour: task.hour,
                        report: Summary::default(),
                        metrics,
                        error: Some(format!("{tenant_id} {date}: {e}")),
                    }
                }
            };
            runs.push(run);
        }
    }
    Ok(runs)
}

fn out_of_time(stop_at: Option<Instant>) -> bool {
    stop_at.is_some_and(|at| Instant::now() >= at)
}

/// Recomputes the metrics of one tenant-day from its (now compacted) files.
async fn refresh(deps: &Deps, tenant_id: &str, date: &str) -> MetricsRun {
    match refresh_day(&deps.store, &deps.index, tenant_id, date).await {
        Ok(rows) => {
            tracing::info!(rows = rows.len(), "metrics refreshed");
            MetricsRun::Refreshed { rows: rows.len() }
        }
        Err(MetricsError::Unsettled { file_key, .. }) => {
            tracing::info!(file = %file_key, "metrics left for the next run: a merge is in flight");
            MetricsRun::Unsettled { file_key }
        }
        Err(MetricsError::Archived { file_key, .. }) => MetricsRun::Archived { file_key },
        Err(e) => {
            tracing::error!(error = %e, "metrics refresh failed");
            MetricsRun::Failed {
                error: format!("metrics: {e}"),
            }
        }
    }
}
