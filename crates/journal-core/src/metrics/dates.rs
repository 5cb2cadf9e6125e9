//! Partition dates (`YYYY-MM-DD`, UTC) as arguments: parsed strictly, ranges capped.

use super::MetricsError;
use crate::timestamp::Timestamp;

/// Most days one read covers (a leap year).
pub const MAX_DAYS: u64 = 366;

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date; `field` names the argument in errors.
pub fn parse_date(field: &'static str, text: &str) -> Result<i32, MetricsError> {
    let bad = || MetricsError::BadDate {
        field,
        value: text.to_string(),
    };
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shaped {
        return Err(bad());
    }
    // The RFC 3339 parser checks the calendar (no 2026-02-30) and the accepted years.
    let t = Timestamp::parse(&format!("{text}T00:00:00Z")).map_err(|_| bad())?;
    i32::try_from(t.millis().div_euclid(MS_PER_DAY)).map_err(|_| bad())
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01); `None` outside the accepted years.
pub(crate) fn date_of_day(day: i32) -> Option<String> {
    Timestamp::from_millis(i64::from(day) * MS_PER_DAY)
        .ok()
        .map(Timestamp::date_string)
}

/// Every date from `from` to `to`, both included, at most [`MAX_DAYS`].
pub fn days_between(from: &str, to: &str) -> Result<Vec<String>, MetricsError> {
    let first = parse_date("from", from)?;
    let last = parse_date("to", to)?;
    if first > last {
        return Err(MetricsError::Inverted {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    let days = u64::try_from(i64::from(last) - i64::from(first) + 1).unwrap_or(u64::MAX);
    if days > MAX_DAYS {
        return Err(MetricsError::RangeTooLong {
            from: from.to_string(),
            to: to.to_string(),
            days,
        });
    }
    Ok((first..=last).filter_map(date_of_day).collect())
}
