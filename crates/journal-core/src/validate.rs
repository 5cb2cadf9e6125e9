//! Parsing and validation of producer messages.
//!
//! A message body is one record object or an array of them (packed by the producer client).
//! Each record is judged on its own so one bad record never sinks its neighbours; every
//! rejection names the field (a JSON path such as `outputs[1].score`) and the reason.

use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::canonical;
use crate::record::{Kind, Record, Verdict, SCHEMA_VERSION};
use crate::timestamp::Timestamp;

/// Size and content limits. Defaults follow SQS (256 KiB bodies).
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_record_bytes: usize,
    pub max_records_per_message: usize,
    pub max_short_string: usize,
    pub max_text: usize,
    pub max_outputs: usize,
    pub max_steps: usize,
    /// How far in the future `occurred_at` may be, for producer clock skew.
    pub max_future_skew_ms: i64,
    /// Accept `access` records: true only for the replay function's own access journal, so a
    /// producer cannot forge reads into it through the queue.
    pub accept_access: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_record_bytes: 64 * 1024,
            max_records_per_message: 1000,
            max_short_string: 256,
            max_text: 4096,
            max_outputs: 32,
            max_steps: 64,
            max_future_skew_ms: 5 * 60 * 1000,
            accept_access: false,
        }
    }
}

/// Why a message or one record in it was refused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    /// Position of the record in a packed array (None for a single-record body or the body).
    pub record_index: Option<usize>,
    /// JSON path of the offending field, or `body` for the message as a whole.
    pub field: String,
    pub reason: String,
}

impl Rejection {
    fn body(reason: impl Into<String>) -> Self {
        Self {
            record_index: None,
            field: "body".into(),
            reason: reason.into(),
        }
    }

    fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            record_index: None,
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field with the array element it belongs to: `name` → `list[i].name`.
    fn within(mut self, list: &str, i: usize) -> Self {
        self.field = format!("{list}[{i}].{}", self.field);
        self
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.record_index {
            Some(i) => write!(f, "record [{i}] {}: {}", self.field, self.reason),
            None => write!(f, "{}: {}", self.field, self.reason),
        }
    }
}

/// One record of a message: accepted (with where its raw JSON lies, for dead-lettering later)
/// or rejected.
#[derive(Debug)]
pub struct ParsedRecord {
    pub index: usize,
    /// The record's JSON in the body it was parsed from: a span rather than a copy, as most
    /// records are never dead-lettered.
    pub raw: Range<usize>,
    pub result: Result<Record, Rejection>,
}

/// A record's JSON as received: the text at its [`ParsedRecord::raw`] span of the body it was
/// parsed from.
pub fn raw_text(body: &[u8], raw: &Range<usize>) -> String {
    String::from_utf8_lossy(body.get(raw.clone()).unwrap_or_default()).into_owned()
}

/// Parses a message body into records. `Err` means the body as a whole is unusable.
pub fn parse_body(
    body: &[u8],
    limits: &Limits,
    now: Timestamp,
) -> Result<Vec<ParsedRecord>, Rejection> {
    if body.len() > limits.max_body_bytes {
        return Err(Rejection::body(format!(
            "body is {} bytes, over the limit of {}",
            body.len(),
            limits.max_body_bytes
        )));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        Rejection::body(format!(
            "invalid UTF-8 at byte {}; bodies must be UTF-8 JSON",
            e.valid_up_to()
        ))
    })?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text)
            .map_err(|e| Rejection::body(format!("not a JSON array of records: {e}")))?;
        if items.is_empty() {
            return Err(Rejection::body("empty array: no records"));
        }
        if items.len() > limits.max_records_per_message {
            return Err(Rejection::body(format!(
                "{} records in one message, over the limit of {}",
                items.len(),
                limits.max_records_per_message
            )));
        }
        Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let mut result = parse_record(raw.get(), limits, now);
                if let Err(r) = &mut result {
                    r.record_index = Some(i);
                }
                // `raw` borrows from `text`, so its offset there is its place in the body.
                let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                ParsedRecord {
                    index: i,
                    raw: start..start + raw.get().len(),
                    result,
                }
            })
            .collect())
    } else if trimmed.starts_with('{') {
        Ok(vec![ParsedRecord {
            index: 0,
            raw: 0..body.len(),
            result: parse_record(text, limits, now),
        }])
    } else if trimmed.is_empty() {
        Err(Rejection::body("empty body"))
    } else {
        Err(Rejection::body(
            "not JSON: a body must be a record object or an array of records",
        ))
    }
}

/// Parses and validates one record from its JSON text.
pub fn parse_record(json: &str, limits: &Limits, now: Timestamp) -> Result<Record, Rejection> {
    if json.len() > limits.max_record_bytes {
        return Err(Rejection::field(
            "record",
            format!(
                "record is {} bytes, over the limit of {}",
                json.len(),
                limits.max_record_bytes
            ),
        ));
    }
    let record = deserialize_record(json)?;
    validate_record(&record, limits, now)?;
    Ok(record)
}

/// Deserializes without tracking paths; only a record that fails is read again with
/// `serde_path_to_error` to name the offending field (the same input fails the same way).
fn deserialize_record(json: &str) -> Result<Record, Rejection> {
    let mut de = serde_json::Deserializer::from_str(json);
    match Record::deserialize(&mut de) {
        Ok(record) => {
            de.end()
                .map_err(|e| Rejection::field("record", format!("trailing data: {e}")))?;
            Ok(record)
        }
        Err(_) => {
            let mut de = serde_json::Deserializer::from_str(json);
            let record: Record =
                serde_path_to_error::deserialize(&mut de).map_err(serde_rejection)?;
            // Not reached in practice: the first attempt failed on this very input.
            de.end()
                .map_err(|e| Rejection::field("record", format!("trailing data: {e}")))?;
            Ok(record)
        }
    }
}

/// Turns serde's error into field + reason, naming a missing field by its own path.
fn serde_rejection(err: serde_path_to_error::Error<serde_json::Error>) -> Rejection {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let message = strip_position(&inner.to_string());
    let parent = if path == "." || path == "?" {
        String::new()
    } else {
        path
    };
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|s| s.strip_suffix('`'))
    {
        let field = join(&parent, name);
        return Rejection::field(field, "required field is missing");
    }
    if message.starts_with("unknown field `") {
        // serde_path_to_error's path already ends with the unknown key.
        let field = if parent.is_empty() {
            "record".into()
        } else {
            parent
        };
        return Rejection::field(field, "not a schema v1 field");
    }
    if let Some(name) = message
        .strip_prefix("duplicate field `")
        .and_then(|s| s.strip_suffix('`'))
    {
        return Rejection::field(join(&parent, name), "duplicate field: keys must be unique");
    }
    let field = if parent.is_empty() {
        "record".to_string()
    } else {
        parent
    };
    let reason = if message.contains("surrogate")
        || message.contains("hex escape")
        || message.contains("invalid unicode")
    {
        format!("invalid Unicode text: {message}")
    } else if message.contains("number out of range") {
        format!("number is not finite (NaN and infinities are not allowed): {message}")
    } else {
        message
    };
    Rejection::field(field, reason)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// Semantic checks that serde's types cannot express.
pub fn validate_record(r: &Record, limits: &Limits, now: Timestamp) -> Result<(), Rejection> {
    let v = Checker { limits };
    if r.schema_version != SCHEMA_VERSION {
        return Err(Rejection::field(
            "schema_version",
            format!(
                "unsupported schema version {}; this ingest understands {SCHEMA_VERSION}",
                r.schema_version
            ),
        ));
    }
    v.id("tenant_id", &r.tenant_id, MAX_TENANT_ID)?;
    v.id("decision_id", &r.decision_id, 128)?;
    if r.occurred_at.millis() > now.millis() + limits.max_future_skew_ms {
        return Err(Rejection::field(
            "occurred_at",
            format!(
                "{} is in the future (now {}, allowed skew {} ms)",
                r.occurred_at, now, limits.max_future_skew_ms
            ),
        ));
    }
    set_by_ingest("received_at", r.received_at.is_some())?;
    set_by_ingest("subject_ref", r.subject_ref.is_some())?;
    if r.kind == Kind::Access && !limits.accept_access {
        return Err(Rejection::field(
            "kind",
            "access records are written by the replay function only; producers cannot send them",
        ));
    }
    check_kind_shape(r)?;
    if r.kind == Kind::Access {
        crate::access::AccessEvent::from_record(r).map_err(|e| Rejection::field("context", e))?;
    }
    if let Some(id) = &r.outcome_id {
        v.id("outcome_id", id, 128)?;
    }
    if let Some(id) = &r.review_id {
        v.id("review_id", id, 128)?;
    }
    if let Some(c) = &r.caller {
        if c.principal.is_none() && c.service.is_none() {
            return Err(Rejection::field(
                "caller",
                "must name a principal or a service (an empty object is not allowed)",
            ));
        }
        // IAM ARNs carry a path (up to 512 characters for users); a short-string cap would
        // refuse such callers' records, and the access journal must take every caller.
        v.opt_text("caller.principal", &c.principal)?;
        v.opt_short("caller.service", &c.service)?;
    }
    if let Some(s) = &r.subject {
        v.short("subject.id", &s.id)?;
    }
    if let Some(m) = &r.model {
        v.short("model.name", &m.name)?;
        v.short("model.version", &m.version)?;
        v.sha256("model.artifact_sha256", &m.artifact_sha256)?;
    }
    if let Some(h) = &r.dataset_manifest_sha256 {
        v.sha256("dataset_manifest_sha256", h)?;
    }
    if let Some(h) = &r.features_hmac {
        v.sha256("features_hmac", h)?;
    }
    if let Some(f) = &r.features {
        v.json("features", f)?;
    }
    if let Some(outputs) = &r.outputs {
        if outputs.is_empty() || outputs.len() > limits.max_outputs {
            return Err(Rejection::field(
                "outputs",
                format!(
                    "needs 1..={} entries, got {}",
                    limits.max_outputs,
                    outputs.len()
                ),
            ));
        }
        for (i, o) in outputs.iter().enumerate() {
            v.short("label", &o.label)
                .map_err(|e| e.within("outputs", i))?;
            finite("score", o.score).map_err(|e| e.within("outputs", i))?;
        }
    }
    v.opt_short("decision", &r.decision)?;
    if let Some(c) = r.confidence {
        unit_interval("confidence", c)?;
    }
    if let Some(t) = r.threshold {
        finite("threshold", t)?;
    }
    v.opt_text("rationale", &r.rationale)?;
    v.opt_text("explanation_ref", &r.explanation_ref)?;
    if let Some(a) = &r.action {
        v.opt_text("action.detail", &a.detail)?;
    }
    if let Some(steps) = &r.steps {
        if steps.is_empty() || steps.len() > limits.max_steps {
            return Err(Rejection::field(
                "steps",
                format!(
                    "needs 1..={} entries, got {}",
                    limits.max_steps,
                    steps.len()
                ),
            ));
        }
        for (i, s) in steps.iter().enumerate() {
            let at = |e: Rejection| e.within("steps", i);
            v.short("name", &s.name).map_err(at)?;
            v.opt_short("version", &s.version).map_err(at)?;
            if let Some(h) = &s.input_sha256 {
                v.sha256("input_sha256", h).map_err(at)?;
            }
            if let Some(o) = &s.output {
                if canonical::check_numbers(o, "").is_err() {
                    // Checked again with the full path only on failure: nothing to format when
                    // the output is fine.
                    let field = format!("steps[{i}].output");
                    if let Err(e) = canonical::check_numbers(o, &field) {
                        return Err(Rejection::field(field, e.to_string()));
                    }
                }
            }
        }
    }
    if let Some(llm) = &r.llm {
        v.sha256("llm.prompt_sha256", &llm.prompt_sha256)?;
        v.sha256("llm.response_sha256", &llm.response_sha256)?;
        if let Some(h) = &llm.system_prompt_sha256 {
            v.sha256("llm.system_prompt_sha256", h)?;
        }
        v.opt_short("llm.finish_reason", &llm.finish_reason)?;
        if let Some(p) = &llm.parameters {
            if p.temperature.is_none() && p.max_tokens.is_none() && p.top_p.is_none() {
                return Err(Rejection::field(
                    "llm.parameters",
                    "empty object; omit it instead",
                ));
            }
            if let Some(t) = p.temperature {
                finite("llm.parameters.temperature", t)?;
                if t < 0.0 {
                    return Err(Rejection::field(
                        "llm.parameters.temperature",
                        "must be ≥ 0",
                    ));
                }
            }
            if let Some(t) = p.top_p {
                unit_interval("llm.parameters.top_p", t)?;
            }
        }
    }
    if let Some(o) = &r.outcome {
        v.short("outcome.label", &o.label)?;
        if let Some(x) = o.value {
            finite("outcome.value", x)?;
        }
    }
    if let Some(rv) = &r.review {
        v.short("review.reviewer", &rv.reviewer)?;
        v.opt_short("review.override_label", &rv.override_label)?;
        v.opt_text("review.notes", &rv.notes)?;
        match (rv.verdict, &rv.override_label) {
            (Verdict::Override, None) => {
                return Err(Rejection::field(
                    "review.override_label",
                    "required when verdict is override",
                ))
            }
            (Verdict::Confirm, Some(_)) => {
                return Err(Rejection::field(
                    "review.override_label",
                    "only allowed when verdict is override",
                ))
            }
            _ => {}
        }
    }
    if let Some(s) = r.sampling_rate {
        finite("sampling_rate", s)?;
        if !(s > 0.0 && s <= 1.0) {
            return Err(Rejection::field("sampling_rate", "must be in (0, 1]"));
        }
    }
    if let Some(c) = &r.context {
        v.json("context", c)?;
    }
    Ok(())
}

fn set_by_ingest(field: &str, present: bool) -> Result<(), Rejection> {
    if present {
        Err(Rejection::field(
            field,
            "is set by ingest; producers must not send it",
        ))
    } else {
        Ok(())
    }
}

/// Which fields each kind requires or forbids.
fn check_kind_shape(r: &Record) -> Result<(), Rejection> {
    let need = |field: &str, present: bool| {
        if present {
            Ok(())
        } else {
            Err(Rejection::field(
                field,
                format!("required for kind {}", r.kind.as_str()),
            ))
        }
    };
    let forbid = |field: &str, present: bool| {
        if present {
            Err(Rejection::field(
                field,
                format!("not allowed for kind {}", r.kind.as_str()),
            ))
        } else {
            Ok(())
        }
    };
    match r.kind {
        Kind::Decision => {
            need("model", r.model.is_some())?;
            need("outputs", r.outputs.is_some())?;
            need("decision", r.decision.is_some())?;
            forbid("outcome_id", r.outcome_id.is_some())?;
            forbid("review_id", r.review_id.is_some())?;
            forbid("outcome", r.outcome.is_some())?;
            forbid("review", r.review.is_some())
        }
        Kind::Outcome => {
            need("outcome_id", r.outcome_id.is_some())?;
            need("outcome", r.outcome.is_some())?;
            forbid("review_id", r.review_id.is_some())?;
            forbid("review", r.review.is_some())?;
            forbid_decision_fields(r, forbid)
        }
        Kind::Access => {
            need(
                "caller",
                r.caller.as_ref().is_some_and(|c| c.principal.is_some()),
            )?;
            need("context", r.context.is_some())?;
            forbid("outcome_id", r.outcome_id.is_some())?;
            forbid("review_id", r.review_id.is_some())?;
            forbid("outcome", r.outcome.is_some())?;
            forbid("review", r.review.is_some())?;
            forbid("subject", r.subject.is_some())?;
            forbid_decision_fields(r, forbid)
        }
        Kind::Review => {
            need("review_id", r.review_id.is_some())?;
            need("review", r.review.is_some())?;
            forbid("outcome_id", r.outcome_id.is_some())?;
            forbid("outcome", r.outcome.is_some())?;
            forbid_decision_fields(r, forbid)
        }
    }
}

/// Follow-ups refer to a decision; they must not restate (and so contradict) what it recorded.
fn forbid_decision_fields(
    r: &Record,
    forbid: impl Fn(&str, bool) -> Result<(), Rejection>,
) -> Result<(), Rejection> {
    forbid("model", r.model.is_some())?;
    forbid("outputs", r.outputs.is_some())?;
    forbid("decision", r.decision.is_some())?;
    forbid("features", r.features.is_some())?;
    forbid("features_hmac", r.features_hmac.is_some())?;
    forbid("llm", r.llm.is_some())
}

fn finite(field: &str, x: f64) -> Result<(), Rejection> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(Rejection::field(field, "must be a finite number"))
    }
}

fn unit_interval(field: &str, x: f64) -> Result<(), Rejection> {
    finite(field, x)?;
    if (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(Rejection::field(field, format!("{x} is outside [0, 1]")))
    }
}

struct Checker<'a> {
    limits: &'a Limits,
}

impl Checker<'_> {
    /// Ids end up in S3 keys and index keys, so they are restricted to a safe alphabet.
    fn id(&self, field: &str, value: &str, max: usize) -> Result<(), Rejection> {
        if value.is_empty() {
            return Err(Rejection::field(field, "must not be empty"));
        }
        if value.len() > max {
            return Err(Rejection::field(
                field,
                format!("{} characters, over the limit of {max}", value.len()),
            ));
        }
        // Id characters are ASCII, so a byte scan finds the first bad one; a non-ASCII byte
        // starts a character that is reported whole.
        let bad_at = value.bytes().position(|b| !is_id_char(char::from(b)));
        if let Some(bad) = bad_at.and_then(|at| value[at..].chars().next()) {
            return Err(Rejection::field(
                field,
                format!("character {bad:?} not allowed (use A-Z a-z 0-9 _ - . :)"),
            ));
        }
        Ok(())
    }

    fn bounded(&self, field: &str, value: &str, max: usize) -> Result<(), Rejection> {
        if value.trim().is_empty() {
            return Err(Rejection::field(field, "must not be empty"));
        }
        // No more characters than bytes: only a long value needs counting.
        if value.len() > max {
            let n = value.chars().count();
            if n > max {
                return Err(Rejection::field(
                    field,
                    format!("{n} characters, over the limit of {max}"),
                ));
            }
        }
        Ok(())
    }

    fn short(&self, field: &str, value: &str) -> Result<(), Rejection> {
        self.bounded(field, value, self.limits.max_short_string)
    }

    fn opt_short(&self, field: &str, value: &Option<String>) -> Result<(), Rejection> {
        value.as_deref().map_or(Ok(()), |v| self.short(field, v))
    }

    fn opt_text(&self, field: &str, value: &Option<String>) -> Result<(), Rejection> {
        value
            .as_deref()
            .map_or(Ok(()), |v| self.bounded(field, v, self.limits.max_text))
    }

    fn sha256(&self, field: &str, value: &str) -> Result<(), Rejection> {
        if value.len() == 64
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(())
        } else {
            Err(Rejection::field(
                field,
                "must be a SHA-256 as 64 lowercase hex characters",
            ))
        }
    }

    fn json(&self, field: &str, map: &Map<String, Value>) -> Result<(), Rejection> {
        canonical::check_map_numbers(map, field).map_err(|e| Rejection::field(field, e.to_string()))
    }
}

#[cfg(test)]
mod tests;

/// Longest tenant id the validator accepts.
pub const MAX_TENANT_ID: usize = 64;

/// A character ids (tenant, record, decision) may hold: they go into S3 and index keys.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// A tenant id as the validator accepts it.
pub fn is_tenant_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_TENANT_ID && value.chars().all(is_id_char)
}
