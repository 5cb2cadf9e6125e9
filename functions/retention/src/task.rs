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

/// Which tenants a run or plan covers: one, or every tenant with a chain.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub tenant_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldTask {
    pub hold_id: String,
    pub tenant_id: String,
    pub reason: String,
    /// The raw subject id: turned into the tenant's subject ref, never stored.
    #[serde(default)]
    pub subject_id: Option<String>,
    #[serde(default)]
    pub model_name: Option<String>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub from: Option<Timestamp>,
    #[serde(default)]
    pub to: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPolicyTask {
    pub policy: Value,
}

/// Erases one subject: the raw id is turned into the tenant's subject ref and never stored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseTask {
    pub tenant_id: String,
    pub subject_id: String,
    /// List what would be removed, changing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTask {
    pub hold_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// Archive and expire what is due.
    Run(Scope),
    /// The same decisions as `run`, changing nothing: what would be moved, deleted or skipped.
    Plan(Scope),
    /// The policy in force.
    Policy,
    /// Publishes a whole policy document as the next version.
    SetPolicy(SetPolicyTask),
    /// Places a legal hold (as the next policy version).
    Hold(HoldTask),
    /// Lifts a legal hold (as the next policy version).
    Release(ReleaseTask),
    /// Erases one subject (GDPR art. 17), or lists what that would remove.
    Erase(EraseTask),
}

/// Deserializes a task's fields, naming the one that is wrong.
fn fields<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, TaskError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        TaskError::Shape(if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        })
    })
}

impl Task {
    pub fn parse(payload: &Value) -> Result<Self, TaskError> {
        let Some(object) = payload.as_object() else {
            return Err(TaskError::Shape("the event is not a JSON object".into()));
        };
        let mut body = object.clone();
        let name = match body.remove("task") {
            Some(Value::String(name)) => name,
            Some(other) => {
                return Err(TaskError::Shape(format!(
                    "task: {other} is not a task name"
                )))
            }
            None => return Err(TaskError::Shape("missing field `task`".into())),
        };
        let body = Value::Object(body);
        let task = match name.as_str() {
            "run" => Task::Run(fields(body)?),
            "plan" => Task::Plan(fields(body)?),
            "policy" => {
                if !body.as_object().is_some_and(|o| o.is_empty()) {
                    return Err(TaskError::Shape("policy takes no fields".into()));
                }
                Task::Policy
            }
            "set_policy" => Task::SetPolicy(fields(body)?),
            "hold" => Task::Hold(fields(body)?),
            "release" => Task::Release(fields(body)?),
            "erase" => Task::Erase(fields(body)?),
            other => {
                return Err(TaskError::Shape(format!(
                    "unknown task {other:?}: run, plan, policy, set_policy, hold, release or erase"
                )))
            }
        };
        match &task {
            Task::Run(scope) | Task::Plan(scope) => {
                if let Some(t) = &scope.tenant_id {
                    tenant(t)?;
                }
            }
            Task::Hold(h) => {
                tenant(&h.tenant_id)?;
                if h.subject_id.as_deref().is_some_and(|s| s.trim().is_empty()) {
                    return Err(TaskError::Field {
                        field: "subject_id",
                        reason: "must not be empty".into(),
                    });
                }
            }
            Task::Erase(e) => {
                tenant(&e.tenant_id)?;
                if e.subject_id.trim().is_empty() {
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
            Task::Hold(h) => Some(HoldRequest {
                id: h.hold_id.clone(),
                tenant_id: h.tenant_id.clone(),
                reason: h.reason.clone(),
                subject_id: h.subject_id.clone(),
                model_name: h.model_name.clone(),
                model_version: h.model_version.clone(),
                from: h.from,
                to: h.to,
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
            Task::Run(Scope::default())
        );
        assert_eq!(
            Task::parse(&json!({"task": "plan", "tenant_id": "bank_1"})).unwrap(),
            Task::Plan(Scope {
                tenant_id: Some("bank_1".into())
            })
        );
        assert_eq!(
            Task::parse(&json!({"task": "policy"})).unwrap(),
            Task::Policy
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
        assert!(err.to_string().contains("unknown task"), "{err}");
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
        assert!(err.to_string().contains(": from: not an RFC 3339"), "{err}");

        assert_eq!(
            Task::parse(&json!({"task": "erase", "tenant_id": "bank_1", "subject_id": "u-1"}))
                .unwrap(),
            Task::Erase(EraseTask {
                tenant_id: "bank_1".into(),
                subject_id: "u-1".into(),
                dry_run: false
            })
        );
        let err = Task::parse(&json!({"task": "erase", "tenant_id": "bank_1", "subject_id": " "}))
            .unwrap_err();
        assert!(
            matches!(
                err,
                TaskError::Field {
                    field: "subject_id",
                    ..
                }
            ),
            "{err}"
        );
        let err = Task::parse(&json!({"task": "erase", "tenant_id": "bank_1"})).unwrap_err();
        assert!(err.to_string().contains("subject_id"), "{err}");
    }
}
