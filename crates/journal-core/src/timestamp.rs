//! Millisecond UTC timestamps, serialized as RFC 3339 `YYYY-MM-DDTHH:MM:SS.mmmZ`.
//!
//! Input may carry any RFC 3339 offset and fraction; it is normalized to UTC and truncated to
//! milliseconds, so the stored (and hashed) form has exactly one spelling.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{format_description::well_known::Rfc3339, OffsetDateTime, UtcOffset};

/// Earliest and latest instants accepted (2000-01-01 and 2100-01-01), to catch unit mix-ups.
const MIN_MS: i64 = 946_684_800_000;
const MAX_MS: i64 = 4_102_444_800_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimestampError {
    #[error("not an RFC 3339 timestamp with offset (e.g. 2026-03-15T10:23:45.123Z): {0:?}")]
    Syntax(String),
    #[error("outside the accepted range 2000-01-01..2100-01-01: {0:?}")]
    OutOfRange(String),
}

impl Timestamp {
    /// The earliest accepted instant (open range starts).
    pub const MIN: Timestamp = Timestamp(MIN_MS);
    /// The last accepted instant (open range ends).
    pub const MAX: Timestamp = Timestamp(MAX_MS - 1);

    pub fn from_millis(ms: i64) -> Result<Self, TimestampError> {
        if (MIN_MS..MAX_MS).contains(&ms) {
            Ok(Self(ms))
        } else {
            Err(TimestampError::OutOfRange(ms.to_string()))
        }
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        let ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        Self(ms.clamp(MIN_MS, MAX_MS - 1))
    }

    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let dt = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| TimestampError::Syntax(text.to_string()))?;
        let ms = (dt.unix_timestamp_nanos().div_euclid(1_000_000)) as i64;
        Self::from_millis(ms).map_err(|_| TimestampError::OutOfRange(text.to_string()))
    }

    fn datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .expect("range checked at construction")
            .to_offset(UtcOffset::UTC)
    }

    /// `YYYY-MM-DD` of the UTC date, for partition keys.
    pub fn date_string(self) -> String {
        let d = self.datetime();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }

    /// Hour of day (UTC), for partition keys.
    pub fn hour(self) -> u8 {
        self.datetime().hour()
    }

    /// The same instant `days` later (`None` past the accepted range).
    pub fn plus_days(self, days: u32) -> Option<Self> {
        Self::from_millis(self.0.checked_add(i64::from(days) * 86_400_000)?).ok()
    }

    /// The same calendar instant `years` later; 29 February becomes 28 February in a
    /// common year. `None` past the accepted range.
    pub fn plus_years(self, years: u32) -> Option<Self> {
        let d = self.datetime();
        let year = d.year().checked_add(i32::try_from(years).ok()?)?;
        let date = d.date();
        let moved = date
            .replace_year(year)
            .or_else(|_| date.replace_day(28).and_then(|d| d.replace_year(year)));
        let dt = d.replace_date(moved.ok()?);
        Self::from_millis((dt.unix_timestamp_nanos() / 1_000_000) as i64).ok()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.datetime();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second(),
            d.millisecond()
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_offsets_and_fraction() {
        let t = Timestamp::parse("2026-03-15T12:23:45.123456+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-03-15T10:23:45.123Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        assert_eq!(
            Timestamp::parse("2026-03-15T10:23:45Z")
                .unwrap()
                .to_string(),
            "2026-03-15T10:23:45.000Z"
        );
        assert_eq!(t.date_string(), "2026-03-15");
        assert_eq!(t.hour(), 10);
    }

    #[test]
    fn rejects_bad_text_and_range() {
        assert!(matches!(
            Timestamp::parse("2026-03-15 10:23:45"),
            Err(TimestampError::Syntax(_))
        ));
        assert!(matches!(
            Timestamp::parse("2026-03-15T10:23:45.123"),
            Err(TimestampError::Syntax(_))
        ));
        assert!(matches!(
            Timestamp::parse("1970-01-01T00:00:01Z"),
            Err(TimestampError::OutOfRange(_))
        ));
    }
}
