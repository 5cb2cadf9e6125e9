//! One journal per test: its own stack (bucket, queues, table, secret, key) under a unique
//! prefix, the ingest service wired to it exactly as the Lambda's `main` does, and helpers to
//! send, drain and read back.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use journal_aws::AwsClients;
use journal_core::columnar::decode_file;
use journal_core::columnar::JournalRow;
use journal_core::integrity::{verify_stored_chain, VerifyReport};
use journal_core::ports::ObjectStore;
use journal_core::timestamp::Timestamp;

use crate::poller::{drain, MappingConfig, MappingStats};
use crate::stack::Stack;

/// Fails loudly when the endpoint is missing: these tests must run against a real one.
pub fn require_endpoint() -> Result<()> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        bail!("AWS_ENDPOINT_URL is not set: run the tests with scripts/test.sh, which starts a local endpoint");
    }
    Ok(())
}

/// A short unique prefix (`a-z0-9-`, ≤ 40 chars) for one test's resources.
pub fn unique_prefix(test: &str) -> String {
    let tag: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(16)
        .collect();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("dj-{tag}-{}", &id[..8])
}

/// The most a one-date test needs from its first ingest to its last read, on a loaded machine.
pub const ONE_DATE: Duration = Duration::from_secs(20 * 60);

/// The most a one-hour test needs for its ingest, on a loaded machine.
pub const ONE_HOUR: Duration = Duration::from_secs(5 * 60);

/// Waits into the next UTC day when less than `needed` is left of this one. A test that ingests
/// and then reads back one partition date (`Timestamp::now().date_string()`) would otherwise
/// straddle midnight and find only the files written after it.
pub async fn keep_to_one_day(needed: Duration) {
    wait_for_next(86_400_000, needed, "day").await;
}

/// Waits into the next UTC hour when less than `needed` is left of this one. Compaction's
/// partitions are hours: a test that expects one partition per tenant (one lease, one crashed
/// run to resume) would otherwise find two. Within one hour is within one day.
pub async fn keep_to_one_hour(needed: Duration) {
    wait_for_next(3_600_000, needed, "hour").await;
}

async fn wait_for_next(period_ms: i64, needed: Duration, what: &str) {
    let left = period_ms - Timestamp::now().millis().rem_euclid(period_ms);
    if left < needed.as_millis() as i64 {
        eprintln!(
            "waiting {:.0} s for the next UTC {what}, so the test's files share one",
            left as f64 / 1000.0
        );
        tokio::time::sleep(Duration::from_millis(left as u64 + 1_000)).await;
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

pub struct TestJournal {
    pub stack: Stack,
    pub clients: AwsClients,
    pub config: ingest::Config,
    pub deps: ingest::Deps,
    pub queue_url: String,
    pub dlq_url: String,
    pub mapping: MappingConfig,
}

impl TestJournal {
    /// Deploys a fresh stack and builds the ingest service against it.
    pub async fn new(test: &str, claim_lease_seconds: i64) -> Result<Self> {
        Self::with_params(test, claim_lease_seconds, |_| Vec::new()).await
    }

    /// As [`TestJournal::new`], with template parameters computed from the stack's prefix.
    pub async fn with_params(
        test: &str,
        claim_lease_seconds: i64,
        params: impl FnOnce(&str) -> Vec<(String, String)>,
    ) -> Result<Self> {
        require_endpoint()?;
        init_tracing();
        let prefix = unique_prefix(test);
        let params = params(&prefix);
        let stack = tokio::task::spawn_blocking(move || {
            let params: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            Stack::deploy_with(&prefix, &params)
        })
        .await??;
        let clients = AwsClients::from_env().await;
        let env = stack.function_env(&[
            ("DJ_CLAIM_LEASE_SECONDS", &claim_lease_seconds.to_string()),
            ("DJ_ROW_GROUP_ROWS", "512"),
        ])?;
        let config = ingest::Config::from_map(&env)?;
        let deps = ingest::build_deps(&config, &clients).await?;
        let mapping = MappingConfig {
            batch_size: 10,
            batching_window: Duration::ZERO,
            wait: Duration::from_secs(0),
            retry_delay: Duration::from_secs(0),
            idle_polls: 3,
            queue_arn: stack.output("QueueArn")?.to_string(),
        };
        Ok(Self {
            queue_url: stack.output("QueueUrl")?.to_string(),
            dlq_url: stack.output("DlqUrl")?.to_string(),
            stack,
            clients,
            config,
            deps,
            mapping,
        })
    }

    /// Sends bodies to the ingest queue, 10 per SendMessageBatch call, a few calls at a time.
    pub async fn send(&self, bodies: &[Vec<u8>]) -> Result<()> {
        use futures::stream::{self, TryStreamExt};
        stream::iter(bodies.chunks(10).map(Ok::<_, anyhow::Error>))
            .try_for_each_concurrent(8, |chunk| async move {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        let body = String::from_utf8(b.clone())
                            .context("SQS bodies must be UTF-8 text")?;
                        Ok(SendMessageBatchRequestEntry::builder()
                            .id(format!("m{i}"))
                            .message_body(body)
                            .build()?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let out = self
                    .clients
                    .sqs
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .context("send_message_batch")?;
                if !out.failed().is_empty() {
                    bail!(
                        "SQS refused {} messages: {:?}",
                        out.failed().len(),
                        out.failed()
                    );
                }
                Ok(())
            })
            .await
    }

    /// Sends `bodies` in waves of `wave` messages, draining the queue after each wave, as a
    /// steady producer and the event source mapping interleave. (moto's ReceiveMessage costs
    /// time linear in the queue length, so a queue thousands deep makes a test quadratic.)
    pub async fn send_and_drain(&self, bodies: &[Vec<u8>], wave: usize) -> Result<MappingStats> {
        let mut total = MappingStats::default();
        for chunk in bodies.chunks(wave.max(1)) {
            self.send(chunk).await?;
            let s = self.drain().await?;
            total.invocations += s.invocations;
            total.messages += s.messages;
            total.deleted += s.deleted;
            total.failed += s.failed;
            total.crashed_invocations += s.crashed_invocations;
        }
        Ok(total)
    }

    /// Runs the event source stand-in until the queue stays empty, with `now` as the clock.
    pub async fn drain(&self) -> Result<MappingStats> {
        drain(
            &self.clients.sqs,
            &self.queue_url,
            &self.mapping,
            |event| async { Ok(ingest::handle_batch(event, &self.deps, Timestamp::now()).await) },
        )
        .await
    }

    /// Uploads the generator's model registry (artifacts and their metadata), so replay can
    /// re-execute the decisions it made.
    pub async fn publish_model_registry(&self) -> Result<()> {
        use journal_core::models::{artifact_bytes, artifact_key, metadata_key};
        for (meta, artifact) in journal_synth::model_artifacts() {
            let sha = &meta.artifact_sha256;
            let store = &self.deps.store;
            store
                .put_object(&artifact_key(sha), artifact_bytes(&artifact)?.into())
                .await?;
            store
                .put_object(&metadata_key(sha), meta.to_bytes()?.into())
                .await?;
        }
        Ok(())
    }

    /// Every dead-lettered message with its attributes (drains the DLQ).
    pub async fn dead_letters(&self) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        let mut out = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let got = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .visibility_timeout(300)
                .send()
                .await?;
            if got.messages().is_empty() {
                empty += 1;
            }
            out.extend(got.messages().iter().cloned());
        }
        Ok(out)
    }

    /// Reads a block file back from S3.
    pub async fn read_file(&self, key: &str) -> Result<Vec<JournalRow>> {
        let bytes = self
            .deps
            .store
            .get_object(key)
            .await?
            .with_context(|| format!("file {key} is missing"))?;
        Ok(decode_file(bytes)?)
    }

    /// Full verification of one tenant's chain from what is stored.
    pub async fn verify_tenant(&self, tenant: &str) -> Result<VerifyReport> {
        Ok(verify_stored_chain(&self.deps.index, &self.deps.store, tenant).await?)
    }
}
