//! The published JSON Schema applied to records from Rust: `schema/validate.py` (the schema
//! plus the JSON-text rules it cannot see) in the pinned venv, one process for many records.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context, Result};

use crate::stack::{python, repo_root};

/// What the schema check said of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaVerdict {
    pub valid: bool,
    /// `<JSON path>: <why>`, one per broken rule.
    pub errors: Vec<String>,
}

impl SchemaVerdict {
    /// Refused before the schema: the text is not JSON as ingest reads it (duplicate keys, lone
    /// surrogates, too deep, not JSON at all).
    pub fn refused_as_text(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.starts_with("$: not valid JSON text"))
    }
}

/// Checks each record (its JSON text, on one line) and returns the verdicts in order.
pub fn check_records(records: &[String]) -> Result<Vec<SchemaVerdict>> {
    for (i, r) in records.iter().enumerate() {
        // One record per line: a newline would split it, a blank line would be skipped.
        ensure!(
            !r.contains('\n') && !r.trim().is_empty(),
            "record {i} cannot be checked as one JSON line: {r:?}"
        );
    }
    let script = repo_root().join("schema/validate.py");
    let mut child = Command::new(python()?)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", script.display()))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let input: Vec<u8> = records
        .iter()
        .flat_map(|r| r.bytes().chain([b'\n']))
        .collect();
    // Written from another thread: the checker answers while it reads, and a full stdout pipe
    // would stop it.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("stdin writer panicked"))?
        .context("writing records to validate.py")?;
    // 0: all valid, 1: some invalid; anything else is the checker failing.
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!(
            "validate.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut verdicts = Vec::with_capacity(records.len());
    for line in String::from_utf8(out.stdout)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let n = v["line"].as_u64().context("line number")? as usize;
        ensure!(n == verdicts.len() + 1, "verdict for line {n} out of order");
        verdicts.push(SchemaVerdict {
            valid: v["valid"].as_bool().context("valid")?,
            errors: v["errors"]
                .as_array()
                .context("errors")?
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect(),
        });
    }
    ensure!(
        verdicts.len() == records.len(),
        "{} verdicts for {} records",
        verdicts.len(),
        records.len()
    );
    Ok(verdicts)
}
