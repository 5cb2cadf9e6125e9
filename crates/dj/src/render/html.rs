//! `report.html`: one self-contained file (inline CSS, no scripts, no external resources) that
//! a person can read in a browser. Every piece of text from the journal is HTML-escaped.

use std::fmt::Write as _;

use journal_core::replay::api::AccessEvent;

use super::report::Report;
use super::rows::RecordRow;
use super::{audit, metrics};
use crate::time_arg::describe;

/// Escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1b1b1b;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dl.meta dt{font-weight:600}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}code,.mono{font-family:ui-monospace,monospace;font-size:.8rem}
.ok{color:#0a6b2b;font-weight:700}.bad{color:#b00020;font-weight:700}.muted{color:#666}
tr.bad td{background:#fdecee}
ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;font-size:.85rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.35rem;vertical-align:-.1rem}
.line{display:inline-block;width:1.2rem;border-top:2px solid #1b1b1b;margin-right:.35rem;vertical-align:.25rem}
svg.chart{max-width:100%;height:auto;font-family:inherit}";

fn cell(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

fn num(text: &str) -> String {
    format!("<td class=\"num\">{}</td>", escape(text))
}

fn mono(text: &str) -> String {
    format!("<td class=\"mono\">{}</td>", escape(text))
}

fn header_row(names: &[&str]) -> String {
    let cells: String = names
        .iter()
        .map(|n| format!("<th>{}</th>", escape(n)))
        .collect();
    format!("<tr>{cells}</tr>")
}

/// The whole document.
pub fn render(report: &Report) -> String {
    let summary = report.summary();
    let rows = report.rows();
    let period = describe(&report.period);
    let mut h = String::new();
    let role = report
        .role
        .map(|r| r.to_string())
        .unwrap_or_else(|| "(none)".into());

    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Decision Journal report: {} {}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n",
        escape(&report.tenant),
        escape(&period)
    );

    // Header.
    let _ = write!(
        h,
        "<header>\n<h1>Decision Journal report</h1>\n<dl class=\"meta\">\n\
         <dt>Tenant</dt><dd>{}</dd>\n<dt>Period</dt><dd>{} <span class=\"muted\">(from &le; occurred_at &lt; to)</span></dd>\n\
         <dt>Generated at</dt><dd>{}</dd>\n<dt>Principal</dt><dd class=\"mono\">{}</dd>\n\
         <dt>Role</dt><dd>{}</dd>\n<dt>Stated purpose</dt><dd>{}</dd>\n\
         <dt>Replay function</dt><dd class=\"mono\">{}</dd>\n</dl>\n</header>\n",
        escape(&report.tenant),
        escape(&period),
        escape(&report.generated_at.to_string()),
        escape(&report.principal),
        escape(&role),
        escape(&report.purpose),
        escape(&report.function),
    );

    // Integrity.
    h.push_str("<section id=\"integrity\">\n<h2>Integrity</h2>\n");
    let faults = audit::faults(&report.integrity);
    match summary.integrity_ok {
        Some(true) => h.push_str(
            "<p class=\"ok\">Verified: the chain and the blocks of the period show no faults.</p>\n",
        ),
        Some(false) => {
            let _ = writeln!(
                h,
                "<p class=\"bad\">Not verified: {} fault(s) found.</p>",
                faults.len()
            );
        }
        None => h.push_str(
            "<p class=\"bad\">Unknown: the verify answer does not say whether the journal verified.</p>\n",
        ),
    }
    let counters = audit::counters(&report.integrity);
    if !counters.is_empty() {
        h.push_str("<table>\n");
        for (k, v) in counters {
            let _ = writeln!(h, "<tr><th>{}</th>{}</tr>", escape(&k), mono(&v));
        }
        h.push_str("</table>\n");
    }
    let _ = writeln!(
        h,
        "<p>Records in the period: {} &mdash; proofs verified: {}, failed: {}, without proof \
         (archived or pending): {}.</p>",
        summary.records, summary.verified, summary.not_verified, summary.without_proof
    );
    if let Some(cp) = &report.checkpoint {
        let _ = writeln!(
            h,
            "<p>Newest valid signed checkpoint: number {}, signed at {}, covering chain seq {}.</p>",
            escape(&cp.number.map(|n| n.to_string()).unwrap_or_else(|| "(none)".into())),
            escape(&cp.signed_at.map(|t| t.to_string()).unwrap_or_else(|| "(none)".into())),
            escape(&cp.covered_seq.map(|n| n.to_string()).unwrap_or_else(|| "(none)".into())),
        );
    }
    if !faults.is_empty() {
        h.push_str("<table>\n");
        h.push_str(&header_row(&["kind", "message", "detail"]));
        h.push('\n');
        for f in &faults {
            let _ = writeln!(
                h,
                "<tr class=\"bad\">{}{}{}</tr>",
                mono(&f.kind),
                cell(&f.message),
                mono(&f.detail)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");

    // Decisions by model and label.
    h.push_str("<section id=\"decisions\">\n<h2>Decisions by model and decision label</h2>\n");
    if summary.decisions_by_model.is_empty() {
        h.push_str("<p class=\"muted\">No decisions in the period.</p>\n");
    } else {
        h.push_str("<table>\n");
        h.push_str(&header_row(&["model", "version", "decision", "count"]));
        h.push('\n');
        for m in &summary.decisions_by_model {
            let _ = writeln!(
                h,
                "<tr>{}{}{}{}</tr>",
                cell(&m.model_name),
                cell(&m.model_version),
                cell(&m.decision),
                num(&m.count.to_string())
            );
        }
        let _ = writeln!(
            h,
            "<tr><th colspan=\"3\">all decisions</th>{}</tr>",
            num(&summary.decisions.to_string())
        );
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");

    h.push_str(&metrics_section(report));

    // Records.
    let _ = writeln!(
        h,
        "<section id=\"records\">\n<h2>Records ({})</h2>",
        rows.len()
    );
    h.push_str(&records_table(&rows));
    h.push_str("</section>\n");

    // Access events.
    let _ = writeln!(
        h,
        "<section id=\"access\">\n<h2>Access events ({})</h2>",
        report.access_events.len()
    );
    h.push_str(&access_table(&report.access_events));
    h.push_str("</section>\n");

    // Footer: how this file was made.
    h.push_str("<footer>\n<h2>How this report was made</h2>\n<p>Every read went through the replay function, which journaled it:</p>\n<ul>\n");
    for r in &report.reads {
        let _ = writeln!(
            h,
            "<li>{} &mdash; access <span class=\"mono\">{}</span></li>",
            escape(&r.operation),
            escape(&r.access_id)
        );
    }
    h.push_str("</ul>\n</footer>\n</body>\n</html>\n");
    h
}

/// Daily metrics: the chart, the legend, a row per day and model, and the days without.
fn metrics_section(report: &Report) -> String {
    let dates = report.metrics_dates();
    let mut h = String::from("<section id=\"metrics\">\n<h2>Daily metrics</h2>\n");
    let _ = writeln!(
        h,
        "<p class=\"muted\">Per UTC day the journal received the records{}, from the metrics \
         read model; outcomes and reviews count under the model of the decision they name, on \
         the day they arrived.</p>",
        match (dates.first(), dates.last()) {
            (Some(first), Some(last)) => format!(": {} to {}", escape(first), escape(last)),
            _ => String::new(),
        }
    );
    if let Some(why) = &report.metrics_error {
        let _ = writeln!(
            h,
            "<p class=\"bad\">Metrics could not be read: {}</p>",
            escape(why)
        );
    }
    if report.metrics.is_empty() {
        if report.metrics_error.is_none() {
            h.push_str("<p class=\"muted\">No metrics for these days.</p>\n");
        }
    } else {
        let series = metrics::series(&report.metrics);
        if !series.is_empty() {
            h.push_str(&metrics::chart_svg(&dates, &report.metrics, &series));
            h.push_str("<ul class=\"legend\">\n");
            for s in &series {
                let _ = writeln!(
                    h,
                    "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
                    s.color,
                    escape(&s.label)
                );
            }
            h.push_str(
                "<li><span class=\"line\"></span>mean confidence, all models (right axis)</li>\n</ul>\n",
            );
        }
        h.push_str("<table>\n");
        h.push_str(&header_row(&[
            "date",
            "model",
            "version",
            "decisions",
            "labels",
            "mean confidence",
            "p50",
            "p90",
            "p99",
            "reviews",
            "review share",
            "overrides",
            "override share",
            "outcomes",
            "outcome rate",
            "outcome labels",
        ]));
        h.push('\n');
        for r in &report.metrics {
            let _ = writeln!(
                h,
                "<tr>{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}</tr>",
                cell(&r.date),
                cell(&metrics::model(r)),
                cell(&r.model_version),
                num(&r.decisions.to_string()),
                cell(&metrics::top_labels(&r.decisions_by_label, r.decisions, 5)),
                num(&metrics::confidence(r.confidence_mean)),
                num(&metrics::confidence(r.confidence_p50)),
                num(&metrics::confidence(r.confidence_p90)),
                num(&metrics::confidence(r.confidence_p99)),
                num(&r.reviews.to_string()),
                num(&metrics::percent(r.review_share)),
                num(&r.overrides.to_string()),
                num(&metrics::percent(r.override_share)),
                num(&r.outcomes.to_string()),
                num(&metrics::percent(r.outcome_rate)),
                cell(&metrics::top_labels(&r.outcomes_by_label, r.outcomes, 5)),
            );
        }
        h.push_str("</table>\n");
    }
    if !report.metrics_missing_dates.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"muted\">No metrics for {} day(s): {} (nothing received, or not computed yet).</p>",
            report.metrics_missing_dates.len(),
            escape(&metrics::date_runs(&report.metrics_missing_dates))
        );
    }
    h.push_str("</section>\n");
    h
}

fn records_table(rows: &[RecordRow]) -> String {
    if rows.is_empty() {
        return "<p class=\"muted\">No records in the period.</p>\n".into();
    }
    let mut h = String::from("<table>\n");
    h.push_str(&header_row(&[
        "record id",
        "kind",
        "occurred at",
        "model",
        "version",
        "decision",
        "confidence",
        "subject ref",
        "verified",
    ]));
    h.push('\n');
    for r in rows {
        let class = if r.verified == Some(false) {
            " class=\"bad\""
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<tr{class}>{}{}{}{}{}{}{}{}{}</tr>",
            mono(&r.record_id),
            cell(&r.kind),
            mono(&r.occurred_at),
            cell(&r.model_name),
            cell(&r.model_version),
            cell(&r.decision),
            num(&r.confidence),
            mono(&r.subject_ref),
            cell(&r.verified_text()),
        );
    }
    h.push_str("</table>\n");
    h
}

fn access_table(events: &[AccessEvent]) -> String {
    if events.is_empty() {
        return "<p class=\"muted\">No access events in the period.</p>\n".into();
    }
    let mut h = String::from("<table>\n");
    h.push_str(&header_row(&[
        "when",
        "principal",
        "role",
        "purpose",
        "operation",
        "records read",
        "result",
        "access id",
    ]));
    h.push('\n');
    for e in events {
        let class = if e.result == "ok" {
            ""
        } else {
            " class=\"bad\""
        };
        let _ = writeln!(
            h,
            "<tr{class}>{}{}{}{}{}{}{}{}</tr>",
            mono(&e.at.to_string()),
            mono(&e.principal),
            cell(&e.role.map(|r| r.to_string()).unwrap_or_default()),
            cell(&e.purpose),
            cell(&e.operation),
            num(&e.read_count.to_string()),
            cell(&e.result),
            mono(&e.access_id),
        );
    }
    h.push_str("</table>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            escape("<script>alert(\"x\" & 'y')</script>"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }
}
