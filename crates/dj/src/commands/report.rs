//! `dj report`: an auditor export of a period.
//!
//! Fetches every record of the period (QueryRange pages, as the caller's role sees them), the
//! verify report for the period, the daily metrics of the period's days and the access journal
//! of the period; journals the export itself (`Export`, so the report can name that access too);
//! then writes `report.html`, `report.json` and `records.csv` into `--out`. Exit 1 (files
//! written) when verify found faults or a record's proof failed. Metrics that cannot be read
//! are named in the report, which is written without them.

use std::path::{Path, PathBuf};

use journal_core::metrics::MAX_DAYS;
use journal_core::replay::api::{Answer, Operation, Response, TimeRange};
use journal_core::timestamp::Timestamp;
use serde_json::Value;

use super::paging::{fetch_access, fetch_records, spinner};
use super::{typed, wrong_answer, Ctx};
use crate::cli::ReportArgs;
use crate::error::DjError;
use crate::invoke::{ReadContext, ReplayClient, Reply};
use crate::out;
use crate::render::report::{Read, Report};
use crate::render::{audit, csv, html};
use crate::time_arg;

/// The export format as journaled.
pub const FORMAT: &str = "html+json+csv";

const MS_PER_DAY: i64 = 86_400_000;

pub async fn run(ctx: &Ctx, args: ReportArgs) -> Result<u8, DjError> {
    let range = time_arg::range(Some(args.from), Some(args.to))?;
    let client = ctx.client().await?;

    let progress = spinner("fetching records");
    let records = fetch_records(&client, None, &progress, |cursor, limit| {
        Operation::QueryRange {
            range,
            limit,
            cursor,
        }
    })
    .await;
    progress.finish_and_clear();
    let records = records?;

    let verify = client.call(Operation::Verify { range }).await?;
    if verify.answer_kind() != "verify" {
        return Err(wrong_answer(&verify, client.function(), "verify"));
    }

    let progress = spinner("fetching daily metrics");
    let metrics = fetch_metrics(&client, &range).await;
    progress.finish_and_clear();
    let (metrics, metrics_error) = metrics?;

    let progress = spinner("fetching access events");
    let access = fetch_access(&client, range, &progress).await;
    progress.finish_and_clear();
    let access = access?;

    let export = client
        .call(Operation::Export {
            range,
            format: FORMAT.into(),
            records: records.records.len() as u64,
        })
        .await?;
    let export_response = typed(&export, client.function(), "export")?;
    if !matches!(export_response.answer, Answer::Exported { .. }) {
        return Err(wrong_answer(&export, client.function(), "export"));
    }

    let responses = |replies: &[Reply]| -> Vec<Response> {
        replies
            .iter()
            .filter_map(|r| r.response.as_ref().ok().cloned())
            .collect()
    };
    let mut report = assemble(
        client.context(),
        client.function(),
        range,
        Timestamp::now(),
        Answers {
            record_pages: &responses(&records.replies),
            verify_raw: &verify.raw,
            access_pages: &responses(&access.replies),
            metrics_pages: &metrics,
        },
    );
    report.metrics_error = metrics_error;
    if let Some(id) = verify.raw.get("access_id").and_then(Value::as_str) {
        report.reads.push(Read {
            operation: "verify".into(),
            access_id: id.to_string(),
        });
    }
    report.reads.push(Read {
        operation: "export".into(),
        access_id: export_response.access_id.clone(),
    });
    report.principal = export_response.principal.clone();
    report.role = export_response.role;
    let paths = write_files(&report, &args.out)?;

    if ctx.global.json {
        out::json(&serde_json::json!({
            "files": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "summary": report.summary(),
            "export": export.raw,
        }));
    } else {
        let summary = report.summary();
        let integrity = match summary.integrity_ok {
            Some(true) => ctx.style.good("integrity: ok"),
            Some(false) => ctx
                .style
                .bad(&format!("integrity: {} fault(s)", summary.faults)),
            None => ctx.style.warn("integrity: unknown"),
        };
        out::line(format!(
            "{} record(s), {} access event(s), {integrity} — {} for tenant {}",
            summary.records,
            summary.access_events,
            time_arg::describe(&range),
            report.tenant
        ));
        if let Some(why) = &report.metrics_error {
            out::line(
                ctx.style
                    .warn(&format!("daily metrics not included: {why}")),
            );
        }
        for p in &paths {
            out::line(p.display().to_string());
        }
        out::line(ctx.style.dim(&format!(
            "export journaled as access {}",
            export_response.access_id
        )));
    }
    // The files are written either way; a negative finding still shows in the exit code.
    let summary = report.summary();
    if summary.integrity_ok == Some(false) || summary.not_verified > 0 {
        return Ok(crate::error::EXIT_NEGATIVE);
    }
    Ok(0)
}

/// The period's days as metrics ranges of at most [`MAX_DAYS`] days each: from the UTC day of
/// `from` to the day of the period's last millisecond (metrics are per day received).
pub fn metrics_ranges(period: &TimeRange) -> Vec<(String, String)> {
    let (Some(from), Some(to)) = (period.from, period.to) else {
        return Vec::new();
    };
    let date = |day: i64| {
        Timestamp::from_millis(day * MS_PER_DAY)
            .map(Timestamp::date_string)
            .unwrap_or_default()
    };
    let first = from.millis().div_euclid(MS_PER_DAY);
    let last = (to.millis() - 1).div_euclid(MS_PER_DAY);
    let span = i64::try_from(MAX_DAYS).unwrap_or(366);
    let mut ranges = Vec::new();
    let mut start = first;
    while start <= last {
        let end = (start + span - 1).min(last);
        ranges.push((date(start), date(end)));
        start = end + 1;
    }
    ranges
}

/// The metrics answers for the period, or why they are missing. A refusal other than a denial
/// (a function without metrics, an unreadable file) leaves the report without metrics rather
/// than without everything; denials and failed invocations end the report as for every read.
async fn fetch_metrics(
    client: &ReplayClient,
    period: &TimeRange,
) -> Result<(Vec<Response>, Option<String>), DjError> {
    let mut pages = Vec::new();
    for (from, to) in metrics_ranges(period) {
        let op = Operation::Metrics {
            from,
            to,
            model_name: None,
        };
        match client.call(op).await {
            Ok(reply) => match reply.response {
                Ok(r) if matches!(r.answer, Answer::Metrics(_)) => pages.push(r),
                _ => {
                    let why = format!("unexpected answer `{}`", reply.answer_kind());
                    return Ok((pages, Some(why)));
                }
            },
            Err(DjError::Answer { code, message }) if code != "denied" => {
                return Ok((pages, Some(format!("{code}: {message}"))))
            }
            Err(e) => return Err(e),
        }
    }
    Ok((pages, None))
}

/// Writes the three files; returns their paths.
pub fn write_files(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, DjError> {
    std::fs::create_dir_all(dir).map_err(|source| DjError::File {
        what: "creating report directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let json = serde_json::to_string_pretty(&report.to_json()).map_err(|e| DjError::File {
        what: "serializing",
        path: dir.join("report.json"),
        source: std::io::Error::other(e),
    })?;
    let files = [
        ("report.html", html::render(report)),
        ("report.json", json),
        ("records.csv", csv::records_csv(&report.rows())),
    ];
    let mut paths = Vec::new();
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|source| DjError::File {
            what: "writing",
            path: path.clone(),
            source,
        })?;
        paths.push(path);
    }
    Ok(paths)
}

/// The function's answers a report is made of.
pub struct Answers<'a> {
    pub record_pages: &'a [Response],
    pub verify_raw: &'a Value,
    pub access_pages: &'a [Response],
    pub metrics_pages: &'a [Response],
}

/// A report from answers already received (used by `run`, and by tests with hand-built ones).
pub fn assemble(
    context: &ReadContext,
    function: &str,
    period: TimeRange,
    generated_at: Timestamp,
    answers: Answers<'_>,
) -> Report {
    let Answers {
        record_pages,
        verify_raw,
        access_pages,
        metrics_pages,
    } = answers;
    let mut report = Report {
        tenant: context.tenant.clone(),
        purpose: context.purpose.clone(),
        period,
        generated_at,
        function: function.to_string(),
        principal: String::new(),
        role: None,
        integrity: audit::answer_body(verify_raw),
        records: Vec::new(),
        checkpoint: None,
        access_events: Vec::new(),
        metrics: Vec::new(),
        metrics_missing_dates: Vec::new(),
        metrics_error: None,
        reads: Vec::new(),
    };
    for r in record_pages.iter().chain(access_pages).chain(metrics_pages) {
        report.principal = r.principal.clone();
        report.role = r.role;
        match &r.answer {
            Answer::Records(page) => {
                report.records.extend(page.records.iter().cloned());
                if page.checkpoint.is_some() {
                    report.checkpoint = page.checkpoint.clone();
                }
            }
            Answer::Access(page) => report.access_events.extend(page.events.iter().cloned()),
            Answer::Metrics(page) => {
                report.metrics.extend(page.rows.iter().cloned());
                report
                    .metrics_missing_dates
                    .extend(page.missing_dates.iter().cloned());
            }
            _ => {}
        }
        report.reads.push(Read {
            operation: match r.answer {
                Answer::Records(_) => "query_range".into(),
                Answer::Metrics(_) => "metrics".into(),
                _ => "access_log".into(),
            },
            access_id: r.access_id.clone(),
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(value: Value) -> Response {
        serde_json::from_value(value).unwrap()
    }

    fn hand_built() -> Report {
        let records = response(json!({
            "principal": "arn:aws:iam::1:role/Auditor",
            "role": "auditor",
            "access_id": "acc-1",
            "answer": {"answer": "records", "records": [
                {"record_id": "d-1", "status": "found",
                 "record": {"kind": "decision", "decision_id": "d-1",
                            "occurred_at": "2026-03-01T10:00:00.000Z",
                            "model": {"name": "loan<scorecard>", "version": "3",
                                      "artifact_sha256": "ab"},
                            "decision": "approve, \"fast\"", "confidence": 0.8125,
                            "subject_ref": "=cmd|' /C calc'!A0"},
                 "proof": {"leaf_hash": "aa", "leaf_matches_row": true, "leaf_index": 0,
                           "block_size": 2, "audit_path": ["bb"], "merkle_root": "cc",
                           "block_seq": 4, "linked_in_chain": true, "faults": [],
                           "verified": true}},
                {"record_id": "d-2", "status": "found",
                 "record": {"kind": "decision", "decision_id": "d-2",
                            "occurred_at": "2026-03-01T11:00:00.000Z",
                            "model": {"name": "loan<scorecard>", "version": "3",
                                      "artifact_sha256": "ab"},
                            "decision": "decline", "confidence": 0.25},
                 "proof": {"leaf_hash": "dd", "leaf_matches_row": false, "leaf_index": 1,
                           "block_size": 2, "audit_path": ["aa"], "merkle_root": "cc",
                           "block_seq": 4, "linked_in_chain": true,
                           "faults": ["leaf differs"], "verified": false}},
                {"record_id": "d-3", "status": "archived"}
            ], "checkpoint": {"number": 7, "signed_at": "2026-03-02T00:00:00.000Z",
                              "covered_seq": 4}}
        }));
        let access = response(json!({
            "principal": "arn:aws:iam::1:role/Auditor",
            "role": "auditor",
            "access_id": "acc-2",
            "answer": {"answer": "access", "events": [
                {"access_id": "acc-0", "at": "2026-03-01T12:00:00.000Z",
                 "principal": "arn:aws:iam::1:role/ops-<b>x</b>", "role": "operator",
                 "purpose": "ticket #7 & 'urgent'", "operation": "lookup",
                 "target": {"record_id": "d-1"}, "read": ["d-1"], "read_count": 1,
                 "result": "ok"}]}
        }));
        let verify = json!({"principal": "p", "role": "auditor", "access_id": "acc-3",
            "answer": {"answer": "verify", "ok": false, "blocks_checked": 1,
                       "records_checked": 2, "head_seq": 4, "covered_seq": 4,
                       "faults": [{"kind": "altered_row",
                                   "message": "block 4 leaf 1 <changed>", "seq": 4}]}});
        let metrics = response(json!({
            "principal": "arn:aws:iam::1:role/Auditor",
            "role": "auditor",
            "access_id": "acc-4",
            "answer": {"answer": "metrics", "rows": [
                {"tenant_id": "bank_456", "date": "2026-03-01", "model_name": "loan<scorecard>",
                 "model_version": "3", "decisions": 2,
                 "decisions_by_label": {"approve, \"fast\"": 1, "decline": 1},
                 "confidence_count": 2, "confidence_mean": 0.53125, "confidence_p50": 0.25,
                 "confidence_p90": 0.8125, "confidence_p99": 0.8125, "reviews": 1,
                 "overrides": 1, "review_share": 0.5, "override_share": 1.0, "outcomes": 0,
                 "outcomes_by_label": {}, "outcome_rate": 0.0, "outcome_rate_by_label": {}},
                {"tenant_id": "bank_456", "date": "2026-03-02", "model_name": "",
                 "model_version": "", "decisions": 0, "decisions_by_label": {},
                 "confidence_count": 0, "confidence_mean": null, "confidence_p50": null,
                 "confidence_p90": null, "confidence_p99": null, "reviews": 0, "overrides": 0,
                 "review_share": null, "override_share": null, "outcomes": 3,
                 "outcomes_by_label": {"repaid": 3}, "outcome_rate": null,
                 "outcome_rate_by_label": {}}
            ], "missing_dates": ["2026-03-03", "2026-03-04"]}
        }));
        let context = ReadContext {
            tenant: "bank_456".into(),
            purpose: "audit Q1 <2026>".into(),
        };
        let period = time_arg::range(
            Some(Timestamp::parse("2026-03-01T00:00:00Z").unwrap()),
            Some(Timestamp::parse("2026-04-01T00:00:00Z").unwrap()),
        )
        .unwrap();
        assemble(
            &context,
            "replay",
            period,
            Timestamp::parse("2026-04-02T09:00:00Z").unwrap(),
            Answers {
                record_pages: &[records],
                verify_raw: &verify,
                access_pages: &[access],
                metrics_pages: &[metrics],
            },
        )
    }

    #[test]
    fn the_html_report_has_every_section_and_escapes_all_text() {
        let report = hand_built();
        let html = html::render(&report);
        for needle in [
            "<!DOCTYPE html>",
            "bank_456",
            "2026-03-01T00:00:00.000Z .. 2026-04-01T00:00:00.000Z",
            "2026-04-02T09:00:00.000Z",
            "arn:aws:iam::1:role/Auditor",
            "auditor",
            "audit Q1 &lt;2026&gt;",
            "Not verified: 1 fault(s) found.",
            "altered_row",
            "block 4 leaf 1 &lt;changed&gt;",
            "covered_seq",
            "loan&lt;scorecard&gt;",
            "approve, &quot;fast&quot;",
            "Records (3)",
            "d-3",
            "archived",
            "arn:aws:iam::1:role/ops-&lt;b&gt;x&lt;/b&gt;",
            "ticket #7 &amp; &#39;urgent&#39;",
            "acc-1",
            "acc-2",
            "covering chain seq 4",
        ] {
            assert!(html.contains(needle), "missing {needle:?}");
        }
        for raw in ["<b>x</b>", "<changed>", "<scorecard>", "<2026>", "\"fast\""] {
            assert!(!html.contains(raw), "unescaped {raw:?}");
        }
        // Decisions by model and label: one row per label, and the total.
        assert!(html.contains(
            "<tr><td>loan&lt;scorecard&gt;</td><td>3</td><td>approve, &quot;fast&quot;</td><td class=\"num\">1</td></tr>"
        ));
        assert!(html.contains("all decisions</th><td class=\"num\">2</td>"));
        // The failing record is marked.
        assert!(html.contains("<tr class=\"bad\"><td class=\"mono\">d-2</td>"));
        // Daily metrics: a chart drawn inline, a row per day and model, the days without.
        let metrics = &html[html.find("<section id=\"metrics\">").unwrap()..];
        let metrics = &metrics[..metrics.find("</section>").unwrap()];
        assert!(metrics.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(
            metrics.matches("<rect ").count(),
            1,
            "one model made decisions"
        );
        assert!(metrics.contains("<td>2026-03-01</td><td>loan&lt;scorecard&gt;</td><td>3</td>"));
        assert!(metrics.contains("(unattributed)"));
        assert!(metrics.contains("approve, &quot;fast&quot; 50.0%"));
        assert!(metrics.contains("2026-03-03..2026-03-04"));
        assert!(!html.contains("<script"), "no scripts");
    }

    #[test]
    fn metrics_ranges_cover_the_periods_days_in_spans_of_at_most_366() {
        let t = |s: &str| Some(Timestamp::parse(s).unwrap());
        let range = |from: &str, to: &str| TimeRange {
            from: t(from),
            to: t(to),
        };
        assert_eq!(
            metrics_ranges(&range("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")),
            [("2026-03-01".to_string(), "2026-03-31".to_string())]
        );
        assert_eq!(
            metrics_ranges(&range("2026-03-01T10:00:00Z", "2026-03-01T10:00:01Z")),
            [("2026-03-01".to_string(), "2026-03-01".to_string())]
        );
        let long = metrics_ranges(&range("2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z"));
        assert_eq!(
            long,
            [
                ("2024-01-01".to_string(), "2024-12-31".to_string()),
                ("2025-01-01".to_string(), "2025-12-31".to_string())
            ]
        );
        assert!(metrics_ranges(&TimeRange::default()).is_empty());
    }

    #[test]
    fn the_csv_and_json_carry_every_record() {
        let report = hand_built();
        let csv = csv::records_csv(&report.rows());
        let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1],
            "d-1,decision,2026-03-01T10:00:00.000Z,loan<scorecard>,3,\"approve, \"\"fast\"\"\",0.8125,'=cmd|' /C calc'!A0,true,found"
        );
        assert!(lines[2].ends_with(",false,found"), "{}", lines[2]);
        assert_eq!(lines[3], "d-3,,,,,,,,,archived");

        let json = report.to_json();
        assert_eq!(json["format"], "dj-report/v1");
        assert_eq!(json["tenant"], "bank_456");
        assert_eq!(json["records"].as_array().unwrap().len(), 3);
        assert_eq!(json["summary"]["verified"], 1);
        assert_eq!(json["summary"]["not_verified"], 1);
        assert_eq!(json["summary"]["without_proof"], 1);
        assert_eq!(json["summary"]["integrity_ok"], false);
        assert_eq!(json["summary"]["decisions_by_model"][0]["count"], 1);
        assert_eq!(json["integrity"]["faults"][0]["kind"], "altered_row");
        assert_eq!(json["access_events"][0]["purpose"], "ticket #7 & 'urgent'");
        assert_eq!(json["period"]["from"], "2026-03-01T00:00:00.000Z");
        assert_eq!(json["reads"][0]["access_id"], "acc-1");
    }

    #[test]
    fn files_are_written_into_the_directory() {
        let dir = std::env::temp_dir().join(format!("dj-report-test-{}", std::process::id()));
        let paths = write_files(&hand_built(), &dir).unwrap();
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["report.html", "report.json", "records.csv"]);
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["summary"]["records"], 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
