//! Masking of records for operators.
//!
//! A masked record is a `serde_json::Value`, not a [`Record`]: markers such as `"[redacted]"`
//! stand where numbers, objects or hashes were, which a `Record` could not hold or would not
//! validate. It is the record's own JSON (as `serde_json::to_value` gives it) with only the
//! redacted parts replaced, so every other value is exactly what the record holds.
//!
//! For an **auditor** the record is returned whole and `redacted` is empty. For an **operator**,
//! in this order:
//!
//! 1. `subject` (raw, input form only) and `subject_ref` are replaced by [`REDACTED`]
//!    (reason `subject`);
//! 2. raw features are withheld: [`Masked::features`] is None and a `features` member of the
//!    record is replaced by [`REDACTED`] (one entry, path `features`, reason `features_withheld`,
//!    whenever either was present);
//! 3. every value at a declared PII path is replaced by [`REDACTED`], whatever its type
//!    (reason `declared_pii`; a value inside something already redacted is not listed again);
//! 4. the strings of the free-text parts are scrubbed (see [`super::scrub`]) with typed markers
//!    (reason `free_text:<kind>`, one entry per path and kind): `caller.principal`, `rationale`,
//!    `explanation_ref`, `action.detail`, every string inside `steps[].output`, `outcome.label`,
//!    `review.reviewer`, `review.notes` and every string inside `context`. Object keys and
//!    numbers are not scanned.
//!
//! `redacted` lists every replaced value in that order, by its concrete JSON path
//! (`steps[2].output.note`, `context["e-mail"]`). Masking is a pure function of its inputs.

use std::fmt;
use std::sync::LazyLock;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::pii::{PiiFields, PiiPath, Step};
use super::roles::Role;
use super::scrub::{scrub_text, TextKind};
use super::{covers, push_index, push_key};
use crate::record::Record;

/// What replaces a whole redacted value.
pub const REDACTED: &str = "[redacted]";

/// Why a value was redacted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The subject's identity (`subject_ref`, or a raw `subject`).
    Subject,
    /// Raw features are personal data and are never shown to operators.
    FeaturesWithheld,
    /// The path is declared as PII for the record's tenant.
    DeclaredPii,
    /// Personal data found in free text.
    FreeText(TextKind),
}

impl Reason {
    /// `subject`, `features_withheld`, `declared_pii`, `free_text:email`, `free_text:card`,
    /// `free_text:national_id`, `free_text:iban`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Subject => "subject",
            Reason::FeaturesWithheld => "features_withheld",
            Reason::DeclaredPii => "declared_pii",
            Reason::FreeText(TextKind::Email) => "free_text:email",
            Reason::FreeText(TextKind::Card) => "free_text:card",
            Reason::FreeText(TextKind::NationalId) => "free_text:national_id",
            Reason::FreeText(TextKind::Iban) => "free_text:iban",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Reason::Subject,
            Reason::FeaturesWithheld,
            Reason::DeclaredPii,
        ]
        .into_iter()
        .chain(TextKind::ALL.map(Reason::FreeText))
        .find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Reason::parse(&text)
            .ok_or_else(|| de::Error::custom(format!("unknown redaction reason {text:?}")))
    }
}

/// One redacted value: where it was and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    pub path: String,
    pub reason: Reason,
}

/// A record as a role may see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Masked {
    pub role: Role,
    /// The record's JSON with redacted values replaced.
    pub record: Value,
    /// Decrypted raw features: given to auditors, always None for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Map<String, Value>>,
    /// Every redacted value, in the order described in the module docs (empty for auditors).
    pub redacted: Vec<Redaction>,
}

/// The parts of a record whose strings are scanned for personal data, in record field order.
static FREE_TEXT: LazyLock<Vec<PiiPath>> = LazyLock::new(|| {
    [
        "caller.principal",
        "rationale",
        "explanation_ref",
        "action.detail",
        "steps[].output",
        "outcome.label",
        "review.reviewer",
        "review.notes",
        "context",
    ]
    .into_iter()
    .map(|p| PiiPath::parse(p).expect("free-text paths are valid"))
    .collect()
});

/// A record as `role` may see it; `features` are raw features decrypted for replay, `pii` the
/// paths declared for the record's tenant ([`AccessPolicy::pii_for`](super::AccessPolicy::pii_for)).
pub fn mask_record(
    record: &Record,
    features: Option<&Map<String, Value>>,
    role: Role,
    pii: &PiiFields,
) -> Masked {
    let mut value =
        serde_json::to_value(record).expect("a Record has string keys and serializes to JSON");
    if role == Role::Auditor {
        return Masked {
            role,
            record: value,
            features: features.cloned(),
            redacted: Vec::new(),
        };
    }

    let mut redacted: Vec<Redaction> = Vec::new();
    if let Value::Object(fields) = &mut value {
        for key in ["subject", "subject_ref"] {
            if let Some(v) = fields.get_mut(key) {
                *v = Value::from(REDACTED);
                redacted.push(Redaction {
                    path: key.to_string(),
                    reason: Reason::Subject,
                });
            }
        }
        let mut embedded = false;
        if let Some(v) = fields.get_mut("features") {
            *v = Value::from(REDACTED);
            embedded = true;
        }
        if embedded || features.is_some() {
            redacted.push(Redaction {
                path: "features".to_string(),
                reason: Reason::FeaturesWithheld,
            });
        }
    }

    for declared in pii.paths() {
        visit(
            &mut value,
            declared.steps(),
            &mut String::new(),
            &mut |at, v| {
                if redacted.iter().any(|r| covers(&r.path, at)) {
                    return;
                }
                *v = Value::from(REDACTED);
                // An earlier, narrower declaration is now inside this one.
                redacted.retain(|r| !covers(at, &r.path));
                redacted.push(Redaction {
                    path: at.clone(),
                    reason: Reason::DeclaredPii,
                });
            },
        );
    }

    for part in FREE_TEXT.iter() {
        visit(
            &mut value,
            part.steps(),
            &mut String::new(),
            &mut |at, v| scrub_strings(v, at, &mut redacted),
        );
    }

    Masked {
        role,
        record: value,
        features: None,
        redacted,
    }
}

/// Calls `hit` with the concrete path and value of everything `steps` addresses in `value`.
fn visit(
    value: &mut Value,
    steps: &[Step],
    path: &mut String,
    hit: &mut dyn FnMut(&mut String, &mut Value),
) {
    let Some((step, rest)) = steps.split_first() else {
        hit(path, value);
        return;
    };
    let len = path.len();
    match (step, value) {
        (Step::Key(key), Value::Object(fields)) => {
            if let Some(v) = fields.get_mut(key) {
                push_key(path, key);
                visit(v, rest, path, hit);
            }
        }
        (Step::Each, Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                push_index(path, i);
                visit(item, rest, path, hit);
                path.truncate(len);
            }
        }
        _ => {}
    }
    path.truncate(len);
}

/// Scrubs every string in `value`, at any depth, recording what was found where.
fn scrub_strings(value: &mut Value, path: &mut String, redacted: &mut Vec<Redaction>) {
    let len = path.len();
    match value {
        Value::String(text) => {
            let (scrubbed, kinds) = scrub_text(text);
            let scrubbed = scrubbed.into_owned();
            if !kinds.is_empty() {
                *text = scrubbed;
                redacted.extend(kinds.into_iter().map(|kind| Redaction {
                    path: path.clone(),
                    reason: Reason::FreeText(kind),
                }));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                push_index(path, i);
                scrub_strings(item, path, redacted);
                path.truncate(len);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields.iter_mut() {
                push_key(path, key);
                scrub_strings(item, path, redacted);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reason_names() -> Vec<&'static str> {
        [
            Reason::Subject,
            Reason::FeaturesWithheld,
            Reason::DeclaredPii,
        ]
        .into_iter()
        .chain(TextKind::ALL.map(Reason::FreeText))
        .map(Reason::as_str)
        .collect()
    }

    #[test]
    fn reasons_round_trip_as_strings() {
        assert_eq!(
            reason_names(),
            [
                "subject",
                "features_withheld",
                "declared_pii",
                "free_text:email",
                "free_text:card",
                "free_text:national_id",
                "free_text:iban"
            ]
        );
        for name in reason_names() {
            let r = Reason::parse(name).unwrap();
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(text, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Reason>(&text).unwrap(), r);
        }
        assert!(serde_json::from_str::<Reason>("\"free_text:phone\"").is_err());
    }

    #[test]
    fn visit_reaches_every_element() {
        let mut v = json!({"steps":[{"output":{"a":1}},{"name":"x"},{"output":"s"}]});
        let mut seen = Vec::new();
        let p = PiiPath::parse("steps[].output").unwrap();
        visit(&mut v, p.steps(), &mut String::new(), &mut |at, v| {
            seen.push((at.clone(), v.clone()))
        });
        assert_eq!(
            seen,
            [
                ("steps[0].output".to_string(), json!({"a":1})),
                ("steps[2].output".to_string(), json!("s"))
            ]
        );
    }
}
