//! Terminal tables (comfy-table), coloured only when [`Style::color`] says so.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Color, ContentArrangement, Table};
use journal_core::metrics::ModelDayMetrics;
use journal_core::replay::api::AccessEvent;

use super::audit::Fault;
use super::metrics::{confidence, model, percent, top_labels};
use super::rows::RecordRow;
use crate::style::Style;

pub fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(Cell::new));
    t
}

/// A cell coloured green/red by `good` when colour is on.
pub fn verdict_cell(text: &str, good: Option<bool>, style: Style) -> Cell {
    let cell = Cell::new(text);
    match (style.color, good) {
        (true, Some(true)) => cell.fg(Color::Green),
        (true, Some(false)) => cell.fg(Color::Red),
        _ => cell,
    }
}

pub fn number_cell(text: impl ToString) -> Cell {
    Cell::new(text.to_string()).set_alignment(CellAlignment::Right)
}

/// Two columns: name, value.
pub fn key_values(pairs: &[(String, String)]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    for (k, v) in pairs {
        t.add_row(vec![Cell::new(k), Cell::new(v)]);
    }
    t
}

pub fn records(rows: &[RecordRow], style: Style) -> Table {
    let mut t = new_table(&[
        "record id",
        "kind",
        "occurred at",
        "model",
        "decision",
        "confidence",
        "subject ref",
        "verified",
    ]);
    for r in rows {
        t.add_row(vec![
            Cell::new(&r.record_id),
            Cell::new(&r.kind),
            Cell::new(&r.occurred_at),
            Cell::new(r.model()),
            Cell::new(&r.decision),
            number_cell(&r.confidence),
            Cell::new(short(&r.subject_ref, 16)),
            verdict_cell(&r.verified_text(), r.verified, style),
        ]);
    }
    t
}

/// One row per day and model version.
pub fn metrics(rows: &[ModelDayMetrics]) -> Table {
    let mut t = new_table(&[
        "date",
        "model",
        "version",
        "decisions",
        "top labels",
        "mean conf",
        "p50",
        "p90",
        "p99",
        "reviewed",
        "overridden",
        "outcomes",
    ]);
    for r in rows {
        t.add_row(vec![
            Cell::new(&r.date),
            Cell::new(model(r)),
            Cell::new(&r.model_version),
            number_cell(r.decisions),
            Cell::new(top_labels(&r.decisions_by_label, r.decisions, 3)),
            number_cell(confidence(r.confidence_mean)),
            number_cell(confidence(r.confidence_p50)),
            number_cell(confidence(r.confidence_p90)),
            number_cell(confidence(r.confidence_p99)),
            number_cell(format!("{} ({})", r.reviews, percent(r.review_share))),
            number_cell(format!("{} ({})", r.overrides, percent(r.override_share))),
            number_cell(format!("{} ({})", r.outcomes, percent(r.outcome_rate))),
        ]);
    }
    t
}

pub fn faults(faults: &[Fault], style: Style) -> Table {
    let mut t = new_table(&["kind", "message", "detail"]);
    for f in faults {
        t.add_row(vec![
            verdict_cell(&f.kind, Some(false), style),
            Cell::new(&f.message),
            Cell::new(&f.detail),
        ]);
    }
    t
}

pub fn access_events(events: &[AccessEvent], style: Style) -> Table {
    let mut t = new_table(&[
        "when",
        "who",
        "role",
        "purpose",
        "operation",
        "read",
        "result",
    ]);
    for e in events {
        t.add_row(vec![
            Cell::new(e.at.to_string()),
            Cell::new(&e.principal),
            Cell::new(e.role.map(|r| r.to_string()).unwrap_or_else(|| "-".into())),
            Cell::new(&e.purpose),
            Cell::new(&e.operation),
            number_cell(e.read_count),
            verdict_cell(&e.result, Some(e.result == "ok"), style),
        ]);
    }
    t
}

/// At most `max` characters, with `…` when cut (for long hashes in narrow columns).
pub fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_tables_show_every_row_and_shorten_refs() {
        let rows = vec![RecordRow {
            record_id: "dec-1".into(),
            kind: "decision".into(),
            decision: "approve".into(),
            subject_ref: "0123456789abcdef0123".into(),
            verified: Some(false),
            status: "found".into(),
            ..Default::default()
        }];
        let text = records(&rows, Style::default()).to_string();
        assert!(text.contains("dec-1"), "{text}");
        assert!(text.contains("approve"), "{text}");
        assert!(text.contains("0123456789abcdef…"), "{text}");
        assert!(text.contains("NO"), "{text}");
        assert!(!text.contains('\x1b'), "no colour when off: {text}");
    }
}
