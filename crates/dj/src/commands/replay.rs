//! `dj replay <record-id>`: the record with its proof, linked outcomes and reviews, what was
//! redacted; with `--reexecute`, the model re-run on the recorded (or supplied) features.
//!
//! Exit 1 when the record's proof fails or the re-run does not match exactly.

use std::fmt::Write as _;
use std::path::Path;

use journal_core::replay::api::{Answer, Operation, RecordView, Reexecution};
use serde_json::{Map, Value};

use super::{caller, raw_array, typed, wrong_answer, Ctx};
use crate::cli::ReplayArgs;
use crate::error::{DjError, EXIT_NEGATIVE};
use crate::invoke::Reply;
use crate::out;
use crate::render::rows::RecordRow;
use crate::render::table::{self, key_values, new_table, verdict_cell};
use crate::render::values::{flatten_record, float, text};
use crate::style::Style;

pub async fn run(ctx: &Ctx, args: ReplayArgs) -> Result<u8, DjError> {
    let features = args.features.as_deref().map(read_features).transpose()?;
    let client = ctx.client().await?;
    let lookup = client
        .call(Operation::Lookup {
            record_id: args.record_id.clone(),
        })
        .await?;
    let reexecution = if args.reexecute {
        Some(
            client
                .call(Operation::Reexecute {
                    decision_id: args.record_id.clone(),
                    features,
                })
                .await?,
        )
    } else {
        None
    };

    if ctx.global.json {
        let exit = negative(&lookup, reexecution.as_ref());
        match reexecution {
            Some(r) => out::json(&raw_array(&[lookup, r])),
            None => out::json(&lookup.raw),
        }
        return Ok(exit);
    }

    let mut exit = 0;
    let response = typed(&lookup, client.function(), "lookup")?;
    let Answer::Records(page) = &response.answer else {
        return Err(wrong_answer(&lookup, client.function(), "lookup"));
    };
    let Some(view) = page.records.first() else {
        return Err(DjError::Answer {
            code: "not_found".into(),
            message: format!("record {} was not found", args.record_id),
        });
    };
    if view.status == "not_found" {
        return Err(DjError::Answer {
            code: "not_found".into(),
            message: format!("record {} was not found", args.record_id),
        });
    }
    out::line(render_lookup(view, ctx.style));
    if view.proof.as_ref().is_some_and(|p| !p.verified) {
        exit = EXIT_NEGATIVE;
    }
    out::line(ctx.style.dim(&format!(
        "read as {} · access {}",
        caller(response),
        response.access_id
    )));

    if let Some(reply) = &reexecution {
        let response = typed(reply, client.function(), "reexecute")?;
        let Answer::Reexecution(r) = &response.answer else {
            return Err(wrong_answer(reply, client.function(), "reexecute"));
        };
        out::line(String::new());
        out::line(render_reexecution(r, ctx.style));
        out::line(ctx.style.dim(&format!("access {}", response.access_id)));
        if r.comparison.as_ref().is_some_and(|c| !c.matches_exactly) {
            exit = EXIT_NEGATIVE;
        }
    }
    Ok(exit)
}

/// Exit 1 when the record's proof failed or the re-run differed (for `--json`, which prints
/// the answers as they came).
fn negative(lookup: &Reply, reexecution: Option<&Reply>) -> u8 {
    let proof_failed = match lookup.response.as_ref().map(|r| &r.answer) {
        Ok(Answer::Records(page)) => page
            .records
            .iter()
            .any(|v| v.proof.as_ref().is_some_and(|p| !p.verified)),
        _ => false,
    };
    let differs = match reexecution
        .and_then(|r| r.response.as_ref().ok())
        .map(|r| &r.answer)
    {
        Some(Answer::Reexecution(r)) => r.comparison.as_ref().is_some_and(|c| !c.matches_exactly),
        _ => false,
    };
    if proof_failed || differs {
        EXIT_NEGATIVE
    } else {
        0
    }
}

/// The auditor's features for a re-run: one JSON object.
fn read_features(path: &Path) -> Result<Map<String, Value>, DjError> {
    let text = std::fs::read_to_string(path).map_err(|source| DjError::File {
        what: "reading features file",
        path: path.to_path_buf(),
        source,
    })?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(DjError::usage(format!(
            "features file {}: expected a JSON object of feature name to value",
            path.display()
        ))),
        Err(e) => Err(DjError::usage(format!(
            "features file {}: not JSON: {e}",
            path.display()
        ))),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

/// One looked-up record, as text.
pub fn render_lookup(view: &RecordView, style: Style) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {}",
        style.bold(&format!("record {}", view.record_id)),
        style.dim(&format!("[{}]", view.status))
    );
    if let Some(record) = &view.record {
        let _ = writeln!(s, "{}", key_values(&flatten_record(record)));
    }

    if let Some(p) = &view.proof {
        let verdict = if p.verified {
            style.good("proof: verified")
        } else {
            style.bad("proof: NOT VERIFIED")
        };
        let _ = writeln!(s, "{verdict}");
        let mut pairs = vec![
            ("leaf hash".to_string(), p.leaf_hash.clone()),
            (
                "leaf matches row".to_string(),
                yes_no(p.leaf_matches_row).to_string(),
            ),
            (
                "leaf".to_string(),
                format!(
                    "{} of {} in block {}",
                    p.leaf_index, p.block_size, p.block_seq
                ),
            ),
            ("merkle root".to_string(), p.merkle_root.clone()),
            (
                "audit path".to_string(),
                format!("{} hash(es)", p.audit_path.len()),
            ),
            (
                "linked in chain".to_string(),
                yes_no(p.linked_in_chain).to_string(),
            ),
        ];
        if let Some(h) = &p.block_hash {
            pairs.push(("block hash".into(), h.clone()));
        }
        match (&p.checkpoint, view.checkpointed) {
            (Some(c), _) => pairs.push((
                "checkpoint".into(),
                format!(
                    "{} (signed {}, lists blocks {}..={}{})",
                    c.number,
                    c.signed_at,
                    c.first_seq,
                    c.seq,
                    if c.signature_verified {
                        ", signature verified"
                    } else {
                        ""
                    }
                ),
            )),
            (None, Some(c)) => pairs.push((
                "checkpointed".into(),
                if c { "yes" } else { "not yet" }.into(),
            )),
            (None, None) => {}
        }
        if let Some(why) = &p.chain_link_because {
            pairs.push(("linked through the chain".into(), why.clone()));
        }
        for f in &p.faults {
            pairs.push(("fault".into(), f.clone()));
        }
        let _ = writeln!(s, "{}", key_values(&pairs));
    }
    if let Some(loc) = &view.location {
        let _ = writeln!(
            s,
            "{}",
            style.dim(&format!(
                "stored in {} (row group {}, row {})",
                loc.file_key, loc.row_group, loc.row
            ))
        );
    }
    if let Some(a) = &view.archived {
        let _ = writeln!(
            s,
            "{}",
            style.warn(&format!(
                "archived in {} ({}): {}; come back after {}",
                a.file_key, a.storage_class, a.status, a.retry_after
            ))
        );
    }
    if !view.redacted.is_empty() {
        let _ = writeln!(s, "redacted for this role:");
        let mut t = new_table(&["field", "reason"]);
        for r in &view.redacted {
            t.add_row(vec![r.path.clone(), r.reason.as_str().to_string()]);
        }
        let _ = writeln!(s, "{t}");
    }
    if !view.linked.is_empty() {
        let _ = writeln!(s, "outcomes and reviews referring to it:");
        let rows: Vec<RecordRow> = view.linked.iter().map(RecordRow::from_view).collect();
        let _ = writeln!(s, "{}", table::records(&rows, style));
    }
    s.trim_end().to_string()
}

fn outputs_text(outputs: &[journal_core::record::Output]) -> String {
    outputs
        .iter()
        .map(|o| format!("{}={}", o.label, o.score))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A re-execution, as text.
pub fn render_reexecution(r: &Reexecution, style: Style) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}",
        style.bold(&format!("re-execution of {}", r.decision.record_id))
    );
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let _ = writeln!(
        s,
        "{}",
        key_values(&[
            (
                "model".into(),
                format!("{} {}", opt(&r.model_name), opt(&r.model_version))
                    .trim()
                    .to_string()
            ),
            ("artifact kind".into(), opt(&r.artifact_kind)),
            ("artifact sha256".into(), opt(&r.artifact_sha256)),
            ("features".into(), r.features_source.clone()),
        ])
    );
    if let Some(reason) = &r.not_rerun {
        let _ = writeln!(s, "{}", style.warn(&format!("not re-run: {reason}")));
    }
    if r.original.is_some() || r.replayed.is_some() {
        let mut t = new_table(&["", "original", "replayed"]);
        let o = r.original.as_ref();
        let p = r.replayed.as_ref();
        t.add_row(vec![
            "outputs".to_string(),
            o.map(|o| outputs_text(&o.outputs)).unwrap_or_default(),
            p.map(|p| outputs_text(&p.outputs)).unwrap_or_default(),
        ]);
        t.add_row(vec![
            "decision".to_string(),
            o.map(|o| o.decision.clone()).unwrap_or_default(),
            p.map(|p| p.decision.clone()).unwrap_or_default(),
        ]);
        t.add_row(vec![
            "confidence".to_string(),
            float(o.and_then(|o| o.confidence)),
            float(p.map(|p| p.confidence)),
        ]);
        t.add_row(vec![
            "threshold".to_string(),
            float(o.and_then(|o| o.threshold)),
            float(p.map(|p| p.threshold)),
        ]);
        let _ = writeln!(s, "{t}");
    }
    if let Some(c) = &r.comparison {
        let verdict = if c.matches_exactly {
            style.good("matches exactly: yes")
        } else {
            style.bad("matches exactly: NO")
        };
        let _ = writeln!(s, "{verdict}");
        if !c.differences.is_empty() {
            let mut t = new_table(&["field", "original", "replayed"]);
            for d in &c.differences {
                t.add_row(vec![
                    verdict_cell(&d.field, Some(false), style),
                    comfy_table::Cell::new(text(&d.original)),
                    comfy_table::Cell::new(text(&d.replayed)),
                ]);
            }
            let _ = writeln!(s, "{t}");
        }
    }
    s.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_proof_names_the_checkpoint_it_rests_on_or_why_it_rests_on_the_chain() {
        let view = |proof: serde_json::Value| -> RecordView {
            serde_json::from_value(json!({
                "record_id": "dec-1", "status": "found",
                "record": {"kind": "decision", "decision_id": "dec-1"},
                "proof": proof, "checkpointed": true
            }))
            .unwrap()
        };
        let base = json!({"leaf_hash": "aa", "leaf_matches_row": true, "leaf_index": 0,
                          "block_size": 1, "audit_path": [], "merkle_root": "aa",
                          "block_seq": 5, "linked_in_chain": true, "faults": [],
                          "verified": true});
        let mut on_checkpoint = base.clone();
        on_checkpoint["checkpoint"] = json!({"number": 3, "first_seq": 4, "seq": 9,
            "signed_at": "2026-03-15T10:00:00.000Z", "key_id": "k",
            "signature_verified": true});
        let text = render_lookup(&view(on_checkpoint), Style::default());
        assert!(
            text.contains(
                "3 (signed 2026-03-15T10:00:00.000Z, lists blocks 4..=9, signature verified)"
            ),
            "{text}"
        );
        let mut on_chain = base;
        on_chain["chain_link_because"] = json!("no checkpoint reaches this block yet");
        let text = render_lookup(&view(on_chain), Style::default());
        assert!(
            text.contains("no checkpoint reaches this block yet"),
            "{text}"
        );
        assert!(text.contains("checkpointed"), "{text}");
    }

    #[test]
    fn lookups_show_record_proof_redactions_and_links() {
        let view: RecordView = serde_json::from_value(json!({
            "record_id": "dec-1",
            "status": "found",
            "record": {"kind": "decision", "decision_id": "dec-1", "decision": "approve",
                       "subject_ref": "[redacted]", "model": {"name": "loan", "version": "3"}},
            "redacted": [{"path": "subject_ref", "reason": "subject"}],
            "proof": {"leaf_hash": "aa", "leaf_matches_row": true, "leaf_index": 2,
                      "block_size": 8, "audit_path": ["bb", "cc", "dd"], "merkle_root": "ee",
                      "block_seq": 5, "block_hash": "ff", "linked_in_chain": true,
                      "faults": [], "verified": true},
            "linked": [{"record_id": "out-1", "status": "found",
                        "record": {"kind": "outcome", "decision_id": "dec-1",
                                   "outcome_id": "out-1", "outcome": {"label": "repaid"}}}],
            "checkpointed": false
        }))
        .unwrap();
        let text = render_lookup(&view, Style::default());
        for needle in [
            "record dec-1",
            "[found]",
            "model.name",
            "loan",
            "proof: verified",
            "2 of 8 in block 5",
            "3 hash(es)",
            "not yet",
            "redacted for this role",
            "subject_ref",
            "out-1",
            "repaid",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn reexecutions_show_both_sides_and_the_differences() {
        let r: Reexecution = serde_json::from_value(json!({
            "decision": {"record_id": "dec-1", "status": "found"},
            "features_source": "decrypted",
            "model_name": "loan", "model_version": "3", "artifact_sha256": "abc",
            "artifact_kind": "scorecard",
            "original": {"outputs": [{"label": "approve", "score": 0.8}], "decision": "approve",
                         "confidence": 0.8, "threshold": 0.5},
            "replayed": {"outputs": [{"label": "approve", "score": 0.7}], "decision": "approve",
                         "confidence": 0.7, "threshold": 0.5},
            "comparison": {"matches_exactly": false, "differences": [
                {"field": "outputs[0].score", "original": 0.8, "replayed": 0.7}]}
        }))
        .unwrap();
        let text = render_reexecution(&r, Style::default());
        for needle in [
            "re-execution of dec-1",
            "scorecard",
            "approve=0.8",
            "approve=0.7",
            "matches exactly: NO",
            "outputs[0].score",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }

        let llm: Reexecution = serde_json::from_value(json!({
            "decision": {"record_id": "dec-2", "status": "found"},
            "features_source": "none", "model_name": null, "model_version": null,
            "artifact_sha256": null, "artifact_kind": null, "original": null,
            "replayed": null, "comparison": null,
            "not_rerun": "LLM decisions are reconstructed and verified, not re-run"
        }))
        .unwrap();
        let text = render_reexecution(&llm, Style::default());
        assert!(text.contains("not re-run: LLM decisions"), "{text}");
        assert!(!text.contains("matches exactly"), "{text}");
    }
}
