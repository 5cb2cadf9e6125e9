//! Time arguments: RFC 3339 instants, or dates meaning midnight UTC.

use journal_core::replay::api::TimeRange;
use journal_core::timestamp::Timestamp;

use crate::error::DjError;

/// Parses `2026-03-01T10:00:00Z` (any RFC 3339 offset) or `2026-03-01` (midnight UTC).
///
/// Used as a clap value parser, so the message names the expected forms.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let trimmed = text.trim();
    let expanded = if is_date(trimmed) {
        format!("{trimmed}T00:00:00Z")
    } else {
        trimmed.to_string()
    };
    Timestamp::parse(&expanded).map_err(|e| {
        format!(
            "`{text}` is not a time: expected RFC 3339 (2026-03-15T10:23:45Z) or a date (2026-03-15) ({e})"
        )
    })
}

/// A day, `YYYY-MM-DD` (a clap value parser for the metrics' partition dates).
pub fn parse_day(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    journal_core::metrics::parse_date("date", trimmed)
        .map(|_| trimmed.to_string())
        .map_err(|_| format!("`{text}` is not a day: expected YYYY-MM-DD (2026-03-15)"))
}

/// `YYYY-MM-DD` exactly (whether the day exists is left to the timestamp parser).
fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// A range from optional ends, refusing an empty or inverted one.
pub fn range(from: Option<Timestamp>, to: Option<Timestamp>) -> Result<TimeRange, DjError> {
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(DjError::usage(format!(
                "--from ({f}) must be before --to ({t}); the range is from <= t < to"
            )));
        }
    }
    Ok(TimeRange { from, to })
}

/// `2026-03-01T00:00:00.000Z .. 2026-04-01T00:00:00.000Z`, with open ends shown as such.
pub fn describe(range: &TimeRange) -> String {
    let end = |t: Option<Timestamp>, open: &str| t.map_or(open.to_string(), |t| t.to_string());
    format!(
        "{} .. {}",
        end(range.from, "(beginning)"),
        end(range.to, "(now)")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_mean_midnight_utc() {
        let t = parse_time("2026-03-01").unwrap();
        assert_eq!(t.to_string(), "2026-03-01T00:00:00.000Z");
        assert_eq!(t, Timestamp::parse("2026-03-01T00:00:00Z").unwrap());
        assert_eq!(parse_time(" 2026-03-01 ").unwrap(), t);
    }

    #[test]
    fn rfc3339_with_any_offset_is_normalized_to_utc() {
        let t = parse_time("2026-03-15T12:23:45.5+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-03-15T10:23:45.500Z");
        assert_eq!(
            parse_time("2026-03-15T10:23:45Z").unwrap().to_string(),
            "2026-03-15T10:23:45.000Z"
        );
    }

    #[test]
    fn bad_times_are_refused_with_the_expected_forms() {
        for bad in [
            "2026-02-30",
            "2026-3-1",
            "yesterday",
            "2026-03-15 10:00:00",
            "2026-03-15T10:00:00",
            "1999-12-31",
            "",
        ] {
            let err = parse_time(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }

    #[test]
    fn days_are_calendar_dates_only() {
        assert_eq!(parse_day(" 2026-03-01 ").unwrap(), "2026-03-01");
        for bad in [
            "2026-02-30",
            "2026-3-1",
            "2026-03-01T00:00:00Z",
            "1999-12-31",
            "",
        ] {
            let err = parse_day(bad).unwrap_err();
            assert!(err.contains("YYYY-MM-DD"), "{bad}: {err}");
        }
    }

    #[test]
    fn ranges_must_not_be_empty_or_inverted() {
        let a = parse_time("2026-03-01").unwrap();
        let b = parse_time("2026-03-02").unwrap();
        assert_eq!(
            range(Some(a), Some(b)).unwrap(),
            TimeRange {
                from: Some(a),
                to: Some(b)
            }
        );
        assert!(range(Some(b), Some(a)).is_err());
        assert!(range(Some(a), Some(a)).is_err());
        assert!(range(None, Some(a)).is_ok());
        assert_eq!(
            describe(&TimeRange {
                from: Some(a),
                to: None
            }),
            "2026-03-01T00:00:00.000Z .. (now)"
        );
    }
}
