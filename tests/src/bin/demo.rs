//! The README's demo: deploys a stack into the local endpoint, sends a few thousand generated
//! decisions (plus outcomes, reviews and some malformed messages) through SQS, runs the ingest
//! function on them the way the SQS event source mapping would, and shows where everything
//! landed, one decision looked up with its proof, and the verified chains.
//!
//! Run through `scripts/demo.sh`, which starts the endpoint first.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use integration_tests::TestJournal;
use journal_core::columnar::decode_file;
use journal_core::integrity::{inclusion_proof, leaf_hash, verify_inclusion};
use journal_core::ports::{IndexEntry, JournalIndex, ObjectStore};
use journal_core::timestamp::Timestamp;
use journal_synth::{bad_messages, generate, producer_body, producer_body_batch, SynthConfig};
use serde_json::Value;

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<()> {
    let n = arg("--records", 3000);
    println!("== Decision Journal demo ==");
    println!(
        "endpoint: {}",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );
    println!("deploying infra/template.yaml ...");
    let j = TestJournal::new("demo", 900).await?;
    for key in [
        "BucketName",
        "QueueUrl",
        "DlqUrl",
        "TableName",
        "LedgerTableName",
        "SecretArn",
    ] {
        println!("  {key:<16} {}", j.stack.output(key)?);
    }

    let mut cfg = SynthConfig::new(2026);
    cfg.start = Timestamp::from_millis(Timestamp::now().millis() - 3600 * 1000)?;
    cfg.mean_gap_ms = 1000;
    let records = generate(cfg, n);
    let (single, packed) = records.split_at(records.len() / 2);
    let mut bodies: Vec<Vec<u8>> = single.iter().map(producer_body).collect();
    bodies.extend(packed.chunks(10).map(producer_body_batch));
    let bad: Vec<_> = bad_messages(Timestamp::now())
        .into_iter()
        .filter(|b| std::str::from_utf8(&b.body).is_ok() && b.body.len() < 200 * 1024)
        .take(8)
        .collect();
    bodies.extend(bad.iter().map(|b| b.body.clone()));
    println!(
        "\nsending {} records in {} SQS messages (half packed ten to a message) plus {} malformed messages ...",
        records.len(),
        bodies.len() - bad.len(),
        bad.len()
    );
    println!("running ingest as the SQS event source mapping would (batches of 10, partial batch failures, deletes) ...");
    let stats = j.send_and_drain(&bodies, 200).await?;
    println!(
        "  invocations {}  messages {}  deleted {}  retried {}",
        stats.invocations, stats.messages, stats.deleted, stats.failed
    );

    let mut tenants: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        *tenants
            .entry(r["tenant_id"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    println!(
        "\nwhere they landed (bucket {}):",
        j.stack.output("BucketName")?
    );
    for (tenant, count) in &tenants {
        let blocks = j.deps.index.list_blocks(tenant).await?;
        let report = j.verify_tenant(tenant).await?;
        println!(
            "  {tenant:<12} {count:>5} records in {:>3} blocks; chain verified: {} ({} rows checked{})",
            blocks.len(),
            if report.ok() { "OK" } else { "FAULTS" },
            report.rows_checked,
            if report.ok() { String::new() } else { format!(", {:?}", report.faults) }
        );
        if let Some(b) = blocks.last() {
            println!(
                "    newest block seq {} -> s3://{}/{}",
                b.seq,
                j.stack.output("BucketName")?,
                b.file_key
            );
        }
    }

    let letters = j.dead_letters().await?;
    println!(
        "\ndead-letter queue: {} rejected messages, each with its reason:",
        letters.len()
    );
    for m in letters.iter().take(8) {
        let attr = |k: &str| {
            m.message_attributes()
                .and_then(|a| a.get(k))
                .and_then(|v| v.string_value())
                .unwrap_or_default()
                .to_string()
        };
        println!(
            "  {:<24} {}",
            attr(journal_aws::ATTR_FIELD),
            attr(journal_aws::ATTR_REASON)
        );
    }

    // From the packed half, so that its block holds many leaves and the proof is non-trivial.
    let sample = packed
        .iter()
        .find(|r| r["kind"] == "decision" && r["risk_tier"] == "high")
        .or_else(|| records.first())
        .context("no records")?;
    look_up(&j, sample).await
}

/// One decision, looked up by id: pointer → one file → its row, with its proof.
async fn look_up(j: &TestJournal, producer: &Value) -> Result<()> {
    let tenant = producer["tenant_id"].as_str().context("tenant")?;
    let id = producer["decision_id"].as_str().context("id")?;
    println!("\nlooking up decision {id} of {tenant}:");
    let Some(IndexEntry::Indexed(p)) = j.deps.index.get_pointer(tenant, id).await? else {
        anyhow::bail!("{id} is not indexed");
    };
    println!(
        "  index: block seq {} leaf {} in {} (row group {}, row {})",
        p.seq, p.leaf_index, p.file_key, p.row_group, p.row
    );
    let bytes = j
        .deps
        .store
        .get_object(&p.file_key)
        .await?
        .context("file missing")?;
    let rows = decode_file(bytes)?;
    let row = rows
        .iter()
        .find(|r| r.record.record_id() == id)
        .context("row missing from its file")?;
    println!("  stored record (raw subject id replaced by subject_ref, raw features sealed):");
    for line in serde_json::to_string_pretty(&row.record)?.lines() {
        println!("    {line}");
    }
    let recomputed = leaf_hash(&row.salt, &row.record.canonical_bytes()?);
    let leaves: Vec<[u8; 32]> = {
        let mut sorted: Vec<_> = rows.iter().collect();
        sorted.sort_by_key(|r| r.leaf_index);
        sorted.iter().map(|r| r.leaf_hash).collect()
    };
    let proof = inclusion_proof(&leaves, row.leaf_index as usize).context("proof")?;
    let blocks = j.deps.index.list_blocks(tenant).await?;
    let header = blocks
        .iter()
        .find(|b| b.seq == p.seq)
        .context("block header")?;
    let root: [u8; 32] = hex::decode(&header.merkle_root)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("bad root"))?;
    println!(
        "  leaf hash recomputed from the row: {}",
        hex::encode(recomputed)
    );
    println!(
        "  matches the stored leaf: {}; Merkle inclusion ({} hashes) in block {} root {}: {}",
        recomputed == row.leaf_hash,
        proof.len(),
        header.seq,
        &header.merkle_root[..16],
        verify_inclusion(
            &recomputed,
            u64::from(row.leaf_index),
            header.count,
            &proof,
            &root
        )
    );
    println!(
        "  block hash {} links to prev {}",
        &header.block_hash()[..16],
        &header.prev_hash[..16]
    );
    println!("\nthe endpoint is still running: `source .dj/endpoint.env` to use it, `localstack/stop.sh` to stop it.");
    Ok(())
}
