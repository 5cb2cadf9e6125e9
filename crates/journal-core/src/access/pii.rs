//! Declared PII field paths: which parts of a stored record a tenant says are personal data.
//!
//! A path is dot-separated names, with `[]` after a name that holds a list to address every
//! element: `context.email`, `review.reviewer`, `caller.principal`, `features.postcode`,
//! `steps[].output.customer_name`. The structured parts of the record are checked against schema
//! v1 (so `review.reviewr` is refused); inside the free-form parts (`context`, `features`,
//! `steps[].output`) any key is accepted. Keys that contain `.`, `[`, `]` or whitespace cannot be
//! addressed: declare their parent instead.

use std::fmt;

use super::roles::PolicyError;
use super::{push_index, push_key};

/// One step of a declared path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// An object member.
    Key(String),
    /// Every element of a list (`[]`).
    Each,
}

/// A validated PII field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PiiPath {
    text: String,
    steps: Vec<Step>,
}

impl PiiPath {
    /// Parses and checks a path against the stored-record schema; the error says why.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        let mut steps = Vec::new();
        for segment in text.split('.') {
            let name_end = segment.find('[').unwrap_or(segment.len());
            let (name, mut brackets) = segment.split_at(name_end);
            if name.is_empty() {
                return Err(format!(
                    "{text:?}: empty name (paths look like `context.email` or `steps[].output.x`)"
                ));
            }
            if let Some(bad) = name
                .chars()
                .find(|c| c.is_whitespace() || c.is_control() || matches!(c, ']' | '*'))
            {
                return Err(format!(
                    "{text:?}: character {bad:?} is not allowed in a path"
                ));
            }
            steps.push(Step::Key(name.to_string()));
            while !brackets.is_empty() {
                match brackets.strip_prefix("[]") {
                    Some(rest) => {
                        steps.push(Step::Each);
                        brackets = rest;
                    }
                    None => {
                        return Err(format!(
                            "{text:?}: only `[]` (every element) may follow a name; \
                             indices are not supported"
                        ))
                    }
                }
            }
        }
        check_shape(&steps).map_err(|why| format!("{text:?}: {why}"))?;
        Ok(Self {
            text: text.to_string(),
            steps,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }
}

impl fmt::Display for PiiPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The PII field paths that apply to one tenant's records, in declaration order, without
/// repeats. Get them from [`AccessPolicy::pii_for`](super::AccessPolicy::pii_for).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PiiFields {
    paths: Vec<PiiPath>,
}

impl PiiFields {
    /// No declared PII (the subject, raw features and free text are still masked).
    pub fn none() -> Self {
        Self::default()
    }

    /// A list given directly (tests, tools); problems are named `pii[i]`.
    pub fn new<I, S>(paths: I) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed = Vec::new();
        let mut problems = Vec::new();
        for (i, text) in paths.into_iter().enumerate() {
            match PiiPath::parse(text.as_ref()) {
                Ok(p) => parsed.push(p),
                Err(reason) => {
                    let mut path = "pii".to_string();
                    push_index(&mut path, i);
                    problems.push(super::PolicyProblem { path, reason });
                }
            }
        }
        if problems.is_empty() {
            Ok(Self::from_paths(parsed))
        } else {
            Err(PolicyError { problems })
        }
    }

    pub(crate) fn from_paths(paths: Vec<PiiPath>) -> Self {
        let mut out = Self::none();
        for p in paths {
            out.push(p);
        }
        out
    }

    fn push(&mut self, path: PiiPath) {
        if !self.paths.iter().any(|p| p.text == path.text) {
            self.paths.push(path);
        }
    }

    /// These paths, then those of `more` not already present.
    pub(crate) fn union(&self, more: &PiiFields) -> Self {
        let mut out = self.clone();
        for p in &more.paths {
            out.push(p.clone());
        }
        out
    }

    pub fn paths(&self) -> &[PiiPath] {
        &self.paths
    }
}

/// What a part of a stored record looks like, for checking declared paths.
#[derive(Clone, Copy)]
enum Shape {
    /// A single value: no parts.
    Leaf,
    /// Free-form JSON: any key, at any depth.
    Free,
    Object(&'static [(&'static str, Shape)]),
    List(&'static Shape),
}

use Shape::{Free, Leaf, List, Object};

/// Schema v1 as stored (see [`crate::record::Record`]; `subject` and `features` are input
/// forms but may be declared too).
const RECORD: &[(&str, Shape)] = &[
    ("schema_version", Leaf),
    ("kind", Leaf),
    ("decision_id", Leaf),
    ("outcome_id", Leaf),
    ("review_id", Leaf),
    ("tenant_id", Leaf),
    ("occurred_at", Leaf),
    ("received_at", Leaf),
    ("caller", Object(&[("principal", Leaf), ("service", Leaf)])),
    ("subject", Object(&[("id", Leaf)])),
    ("subject_ref", Leaf),
    (
        "model",
        Object(&[("name", Leaf), ("version", Leaf), ("artifact_sha256", Leaf)]),
    ),
    ("dataset_manifest_sha256", Leaf),
    ("features", Free),
    ("features_hmac", Leaf),
    (
        "outputs",
        List(&Object(&[("label", Leaf), ("score", Leaf)])),
    ),
    ("decision", Leaf),
    ("confidence", Leaf),
    ("threshold", Leaf),
    ("rationale", Leaf),
    ("explanation_ref", Leaf),
    ("action", Object(&[("type", Leaf), ("detail", Leaf)])),
    ("risk_tier", Leaf),
    (
        "steps",
        List(&Object(&[
            ("name", Leaf),
            ("version", Leaf),
            ("input_sha256", Leaf),
            ("output", Free),
        ])),
    ),
    (
        "llm",
        Object(&[
            ("prompt_sha256", Leaf),
            ("system_prompt_sha256", Leaf),
            (
                "parameters",
                Object(&[("temperature", Leaf), ("max_tokens", Leaf), ("top_p", Leaf)]),
            ),
            ("response_sha256", Leaf),
            ("finish_reason", Leaf),
            ("tokens", Object(&[("prompt", Leaf), ("completion", Leaf)])),
        ]),
    ),
    ("outcome", Object(&[("label", Leaf), ("value", Leaf)])),
    (
        "review",
        Object(&[
            ("reviewer", Leaf),
            ("verdict", Leaf),
            ("override_label", Leaf),
            ("notes", Leaf),
        ]),
    ),
    ("sampling_rate", Leaf),
    ("context", Free),
];

fn check_shape(steps: &[Step]) -> Result<(), String> {
    let mut shape = Object(RECORD);
    let mut at = String::new();
    for step in steps {
        shape = match (shape, step) {
            (Free, _) => return Ok(()),
            (Object(fields), Step::Key(key)) => {
                match fields.iter().find(|(n, _)| *n == key.as_str()) {
                    Some((_, inner)) => *inner,
                    None if at.is_empty() => {
                        return Err(format!("`{key}` is not a field of a stored record"))
                    }
                    None => {
                        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
                        return Err(format!(
                            "`{at}` has no field `{key}` (it has {})",
                            names.join(", ")
                        ));
                    }
                }
            }
            (Object(_), Step::Each) => return Err(format!("`{at}` is an object, not a list")),
            (List(inner), Step::Each) => *inner,
            (List(_), Step::Key(_)) => {
                return Err(format!(
                    "`{at}` is a list: write `{at}[]` to address every element"
                ))
            }
            (Leaf, _) => return Err(format!("`{at}` is a single value and has no parts")),
        };
        match step {
            Step::Key(key) => push_key(&mut at, key),
            Step::Each => at.push_str("[]"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_paths() {
        for ok in [
            "context.email",
            "context.customer_name",
            "context",
            "context.a.b.c",
            "context.list[].name",
            "context.matrix[][]",
            "features.postcode",
            "review.reviewer",
            "review.notes",
            "caller.principal",
            "caller",
            "steps[].output.customer_name",
            "steps[].output",
            "steps[]",
            "steps",
            "outputs[].label",
            "llm.parameters.top_p",
            "subject_ref",
            "subject.id",
            "decision_id",
            "context.e-mail",
            "context.über",
        ] {
            let p = PiiPath::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(p.as_str(), ok);
        }
        assert_eq!(
            PiiPath::parse("steps[].output.x").unwrap().steps(),
            [
                Step::Key("steps".into()),
                Step::Each,
                Step::Key("output".into()),
                Step::Key("x".into())
            ]
        );
    }

    #[test]
    fn refused_paths_say_why() {
        for (bad, why) in [
            ("", "must not be empty"),
            ("contxt.email", "not a field of a stored record"),
            ("review.reviewr", "`review` has no field `reviewr`"),
            ("caller.principal.x", "single value"),
            ("rationale.x", "single value"),
            ("steps.output", "write `steps[]`"),
            ("caller[]", "not a list"),
            ("steps[0].output", "indices are not supported"),
            ("steps[].output[", "indices are not supported"),
            ("context..email", "empty name"),
            (".context", "empty name"),
            ("context.", "empty name"),
            ("context.*", "not allowed"),
            ("context.a b", "not allowed"),
            ("[]", "empty name"),
        ] {
            let err = PiiPath::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn lists_deduplicate_and_name_bad_entries() {
        let f = PiiFields::new(["context.email", "review.reviewer", "context.email"]).unwrap();
        let texts: Vec<&str> = f.paths().iter().map(PiiPath::as_str).collect();
        assert_eq!(texts, ["context.email", "review.reviewer"]);
        let err = PiiFields::new(["context.email", "nope", "review.x"]).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["pii[1]", "pii[2]"]);
    }
}
