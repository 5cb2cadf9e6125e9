//! `records.csv`: one row per record, RFC 4180 quoting.
//!
//! Text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab
//! or carriage return) get a leading `'`, as OWASP advises for CSV exports; `report.json` keeps
//! the exact values.

use super::rows::RecordRow;

pub const HEADER: [&str; 10] = [
    "record_id",
    "kind",
    "occurred_at",
    "model_name",
    "model_version",
    "decision",
    "confidence",
    "subject_ref",
    "verified",
    "status",
];

/// One field, quoted when it holds a comma, quote, CR or LF (or leading/trailing spaces).
pub fn field(text: &str) -> String {
    let needs_quotes =
        text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A text field, defused against spreadsheet formulas, then quoted as needed.
pub fn text_field(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        field(&format!("'{text}"))
    } else {
        field(text)
    }
}

fn line(cells: &[String]) -> String {
    let mut out = cells.join(",");
    out.push_str("\r\n");
    out
}

/// The whole file, header first, CRLF line ends.
pub fn records_csv(rows: &[RecordRow]) -> String {
    let mut out = line(&HEADER.map(field));
    for r in rows {
        let verified = match r.verified {
            Some(v) => v.to_string(),
            None => String::new(),
        };
        out.push_str(&line(&[
            text_field(&r.record_id),
            text_field(&r.kind),
            text_field(&r.occurred_at),
            text_field(&r.model_name),
            text_field(&r.model_version),
            text_field(&r.decision),
            field(&r.confidence),
            text_field(&r.subject_ref),
            field(&verified),
            text_field(&r.status),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field(""), "");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(field(" padded"), "\" padded\"");
    }

    #[test]
    fn formulas_are_defused_in_text_fields_but_numbers_are_kept() {
        assert_eq!(
            text_field("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(text_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text_field("approve"), "approve");
        assert_eq!(field("-0.5"), "-0.5");
    }

    #[test]
    fn the_file_has_a_header_and_one_row_per_record() {
        let rows = vec![
            RecordRow {
                record_id: "d1".into(),
                kind: "decision".into(),
                occurred_at: "2026-03-01T00:00:00.000Z".into(),
                model_name: "loan".into(),
                model_version: "3".into(),
                decision: "refer, manual".into(),
                confidence: "0.75".into(),
                subject_ref: "ab12".into(),
                verified: Some(true),
                status: "found".into(),
                checkpointed: None,
            },
            RecordRow {
                record_id: "d2".into(),
                status: "archived".into(),
                ..Default::default()
            },
        ];
        let csv = records_csv(&rows);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "record_id,kind,occurred_at,model_name,model_version,decision,confidence,subject_ref,verified,status"
        );
        assert_eq!(
            lines[1],
            "d1,decision,2026-03-01T00:00:00.000Z,loan,3,\"refer, manual\",0.75,ab12,true,found"
        );
        assert_eq!(lines[2], "d2,,,,,,,,,archived");
        assert_eq!(lines[3], "");
        assert_eq!(lines.len(), 4);
    }
}
