//! What an invocation asks for. The schedule sends `{"task": "run"}`; `dj retention` sends
//! the others. A field that is unknown, missing or malformed is named in the error.

use journal_core::retention::HoldRequest;
use journal_core::timestamp::Timestamp;
use journal_core::validate::is_tenant_id;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TaskError {
    #[error("not a retention invocation: {0}")]
    Shape(String),
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// Archive and expire what is due: every tenant with a chain, or one.
    Run {
        #[serde(default)]
        tenant_id: Option<String>,
    },
    /// The same decisions as `run`, changing nothing: what would be moved, deleted or skipped.
    Plan {
        #[serde(default)]
        tenant_id: Option<String>,
    },
    /// The policy in force.
    Policy,
    /// Publishes a whole policy document as the next version.
    SetPolicy { policy: Value },
    /// Places a legal hold (as the next policy version). A subject is named by its raw id,
    /// which is turned into the tenant's subject ref and never stored.
    Hold {
        hold_id: String,
        tenant_id: String,
        reason: String,
        #[serde(default)]
        subject_id: Option<String>,
        #[serde(default)]
        model_name: Option<String>,
        #[serde(default)]
        model_version: Option<String>,
        #[serde(default)]
        from: Option<Timestamp>,
        #[serde(default)]
        to: Option<Timestamp>,
    },
    /// Lifts a legal hold (as the next policy version).
    Release { hold_id: String },
}

impl Task {
    pub fn parse(payload: &Value) -> Result<Self, TaskError> {
        let task: Task = serde_path_to_error::deserialize(payload)
            .map_err(|e| TaskError::Shape(format!("{}: {}", e.path(), e.inner())))?;
        match &task {
            Task::Run { tenant_id } | Task::Plan { tenant_id } => {
                if let Some(t) = tenant_id {
                    tenant(t)?;
                }
            }
            Task::Hold {
                tenant_id,
                subject_id,
                ..
            } => {
                tenant(tenant_id)?;
                if subject_id.as_deref().is_some_and(|s| s.trim().is_empty()) {
                    return Err(TaskError::Field {
                        field: "subject_id",
                        reason: "must not be empty".into(),
                    });
                }
            }
            _ => {}
        }
        Ok(task)
    }

    /// The hold a `hold` task asks for.
    pub fn hold_request(&self) -> Option<HoldRequest> {
        match self {
            Task::Hold {
                hold_id,
                tenant_id,
                reason,
                subject_id,
                model_name,
                model_version,
                from,
                to,
            } => Some(HoldRequest {
                id: hold_id.clone(),
                tenant_id: tenant_id.clone(),
                reason: reason.clone(),
                subject_id: subject_id.clone(),
                model_name: model_name.clone(),
                model_version: model_version.clone(),
                from: *from,
                to: *to,
            }),
            _ => None,
        }
    }
}

fn tenant(t: &str) -> Result<(), TaskError> {
    if is_tenant_id(t) {
        Ok(())
    } else {
        Err(TaskError::Field {
            field: "tenant_id",
            reason: format!("{t:?} is not a tenant id (1-64 of A-Z a-z 0-9 _ - . :)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tasks_parse_and_bad_fields_are_named() {
        assert_eq!(
            Task::parse(&json!({"task": "run"})).unwrap(),
            Task::Run { tenant_id: None }
        );
        assert_eq!(
            Task::parse(&json!({"task": "plan", "tenant_id": "bank_1"})).unwrap(),
            Task::Plan {
                tenant_id: Some("bank_1".into())
            }
        );
        let hold = Task::parse(
            &json!({"task": "hold", "hold_id": "case-1", "tenant_id": "bank_1",
            "reason": "litigation", "subject_id": "user_1", "from": "2026-01-01T00:00:00Z"}),
        )
        .unwrap();
        let request = hold.hold_request().unwrap();
        assert_eq!(request.subject_id.as_deref(), Some("user_1"));
        assert_eq!(
            request.from,
            Some(Timestamp::parse("2026-01-01T00:00:00Z").unwrap())
        );

        let err = Task::parse(&json!({"task": "run", "tenant": "x"})).unwrap_err();
        assert!(err.to_string().contains("unknown field `tenant`"), "{err}");
        let err = Task::parse(&json!({"task": "erase_everything"})).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
        let err = Task::parse(&json!({"task": "run", "tenant_id": "a b"})).unwrap_err();
        assert!(
            matches!(
                err,
                TaskError::Field {
                    field: "tenant_id",
                    ..
                }
            ),
            "{err}"
        );
        let err = Task::parse(&json!({"task": "hold", "hold_id": "h", "tenant_id": "t",
            "reason": "r", "from": "yesterday"}))
        .unwrap_err();
        assert!(err.to_string().contains("from"), "{err}");
    }
}
