//! What an invocation asks for: `{"task": "compact"}` from the schedule, optionally narrowed
//! by hand to a tenant, a partition date and an hour.

use journal_core::timestamp::Timestamp;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TaskError {
    #[error("not a compact invocation: {0}")]
    Shape(String),
    #[error("task {0:?}: the compact function runs \"compact\"")]
    UnknownTask(String),
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub task: String,
    /// One tenant; every tenant with a chain when absent.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// One partition date (`YYYY-MM-DD`); the last `lookback_days` dates when absent.
    #[serde(default)]
    pub date: Option<String>,
    /// One hour of that date.
    #[serde(default)]
    pub hour: Option<u8>,
}

impl Task {
    pub fn parse(payload: &Value) -> Result<Self, TaskError> {
        let task: Task =
            serde_json::from_value(payload.clone()).map_err(|e| TaskError::Shape(e.to_string()))?;
        if task.task != "compact" {
            return Err(TaskError::UnknownTask(task.task));
        }
        if let Some(t) = &task.tenant_id {
            if !journal_core::validate::is_tenant_id(t) {
                return Err(TaskError::Field {
                    field: "tenant_id",
                    reason: format!("{t:?} is not a tenant id (1-64 of A-Z a-z 0-9 _ - . :)"),
                });
            }
        }
        if let Some(d) = &task.date {
            if journal_core::metrics::parse_date("date", d).is_err() {
                return Err(TaskError::Field {
                    field: "date",
                    reason: format!("{d:?} is not a date (YYYY-MM-DD)"),
                });
            }
        }
        match task.hour {
            Some(h) if h > 23 => Err(TaskError::Field {
                field: "hour",
                reason: format!("{h} is not an hour (0..=23)"),
            }),
            Some(_) if task.date.is_none() => Err(TaskError::Field {
                field: "hour",
                reason: "an hour needs a date".into(),
            }),
            _ => Ok(task),
        }
    }

    /// The partition dates to visit, newest first.
    pub fn dates(&self, now: Timestamp, lookback_days: u32) -> Vec<String> {
        if let Some(d) = &self.date {
            return vec![d.clone()];
        }
        (0..lookback_days as i64)
            .filter_map(|n| Timestamp::from_millis(now.millis() - n * 86_400_000).ok())
            .map(Timestamp::date_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schedule_and_a_hand_invocation_parse() {
        let t = Task::parse(&json!({"task": "compact"})).unwrap();
        assert_eq!((t.tenant_id, t.date, t.hour), (None, None, None));
        let t = Task::parse(&json!({"task": "compact", "tenant_id": "acme",
            "date": "2026-11-24", "hour": 7}))
        .unwrap();
        assert_eq!(t.tenant_id.as_deref(), Some("acme"));
        assert_eq!(t.dates(Timestamp::now(), 2), vec!["2026-11-24".to_string()]);
        assert_eq!(t.hour, Some(7));
    }

    #[test]
    fn a_scheduled_run_visits_the_lookback_dates() {
        let t = Task::parse(&json!({"task": "compact"})).unwrap();
        let now = Timestamp::parse("2026-03-01T00:10:00Z").unwrap();
        assert_eq!(
            t.dates(now, 3),
            vec!["2026-03-01", "2026-02-28", "2026-02-27"]
        );
    }

    #[test]
    fn bad_invocations_name_the_field() {
        let cases = [
            (json!({"task": "retention"}), "task \"retention\""),
            (
                json!({"task": "compact", "date": "2026-13-01"}),
                "date: \"2026-13-01\"",
            ),
            (
                json!({"task": "compact", "date": "2026-11-24", "hour": 24}),
                "hour: 24",
            ),
            (
                json!({"task": "compact", "hour": 3}),
                "hour: an hour needs a date",
            ),
            (json!({"task": "compact", "tenant_id": "a#b"}), "tenant_id"),
            (
                json!({"task": "compact", "tenant": "acme"}),
                "unknown field `tenant`",
            ),
            (json!([1]), "not a compact invocation"),
        ];
        for (payload, expected) in cases {
            let e = Task::parse(&payload).unwrap_err().to_string();
            assert!(e.contains(expected), "{payload}: {e}");
        }
    }
}
