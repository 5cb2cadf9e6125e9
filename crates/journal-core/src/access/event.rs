//! The access journal's entries: one per read of the journal, stored as an `access` record in
//! the tenant's own chain, so reads are as tamper-evident as the decisions they read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Role;
use crate::record::{Caller, Kind, Record, SCHEMA_VERSION};
use crate::timestamp::Timestamp;

/// One journaled access: who read, in which role, why, what was asked and what came back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessEvent {
    /// The access record's id (its `decision_id`).
    pub access_id: String,
    /// When the request was answered (the record's `occurred_at`).
    pub at: Timestamp,
    pub principal: String,
    /// Absent when the caller has no role and was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    pub purpose: String,
    /// `lookup`, `query_subject`, `query_model`, `query_range`, `verify`, `reexecute`,
    /// `what_if`, `access_log`, `metrics`, `export`.
    pub operation: String,
    /// The request's parameters; a raw subject id appears only as its reference.
    pub target: Map<String, Value>,
    /// Ids of the records the answer carried (capped; `read_count` has the full number).
    pub read: Vec<String>,
    pub read_count: u64,
    /// `ok`, or the error code of the answer.
    pub result: String,
}

/// Most record ids one access record lists (a page or a what-if may touch more; the count
/// says how many).
pub const MAX_LISTED_READS: usize = 1000;

impl AccessEvent {
    /// The event as a record of `tenant_id`'s journal (not yet stored: ingest seals it).
    pub fn to_record(&self, tenant_id: &str) -> Record {
        let mut context = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        // Carried by the record's own fields.
        context.remove("access_id");
        context.remove("at");
        Record {
            schema_version: SCHEMA_VERSION,
            kind: Kind::Access,
            decision_id: self.access_id.clone(),
            outcome_id: None,
            review_id: None,
            tenant_id: tenant_id.to_string(),
            occurred_at: self.at,
            received_at: None,
            caller: Some(Caller {
                principal: Some(self.principal.clone()),
                service: Some("dj-replay".to_string()),
            }),
            subject: None,
            subject_ref: None,
            model: None,
            dataset_manifest_sha256: None,
            features: None,
            features_hmac: None,
            outputs: None,
            decision: None,
            confidence: None,
            threshold: None,
            rationale: None,
            explanation_ref: None,
            action: None,
            risk_tier: None,
            steps: None,
            llm: None,
            outcome: None,
            review: None,
            sampling_rate: None,
            context: Some(context),
        }
    }

    /// The event an `access` record holds.
    pub fn from_record(record: &Record) -> Result<Self, String> {
        if record.kind != Kind::Access {
            return Err(format!(
                "{} is a {} record",
                record.decision_id,
                record.kind.as_str()
            ));
        }
        let mut map = record
            .context
            .clone()
            .ok_or_else(|| "an access record needs its event in context".to_string())?;
        map.insert("access_id".into(), Value::from(record.decision_id.clone()));
        map.insert(
            "at".into(),
            serde_json::to_value(record.occurred_at).unwrap_or_default(),
        );
        let event: AccessEvent = serde_json::from_value(Value::Object(map))
            .map_err(|e| format!("not an access event: {e}"))?;
        let principal = record.caller.as_ref().and_then(|c| c.principal.as_deref());
        if principal != Some(event.principal.as_str()) {
            return Err("caller.principal must name the event's principal".into());
        }
        Ok(event)
    }
}
