//! Roles by IAM principal, from one versioned access-policy document.
//!
//! ```json
//! {"version": 1,
//!  "roles": {"auditor":  ["arn:aws:iam::123456789012:role/Auditor"],
//!            "operator": ["arn:aws:iam::123456789012:role/ops-*"]},
//!  "pii": {"*": ["context.email"], "bank_456": ["review.reviewer"]}}
//! ```
//!
//! Rules (see `docs/access.md`):
//!
//! - A pattern is an IAM or STS principal ARN, matched exactly, or a prefix ending in one `*`
//!   that may only stand in the resource part (after the account id).
//! - An assumed-role session `arn:aws:sts::A:assumed-role/Name/session` also matches patterns
//!   for its role `arn:aws:iam::A:role/[path/]Name` (STS drops the role's path; a role name is
//!   unique in its account), and a wildcard role pattern without a path (`role/ops-*`, `role/*`)
//!   matches the sessions of the roles it covers. A wildcard pattern *with* a path
//!   (`role/teams/*`) cannot be checked against a session and matches role ARNs only.
//! - No match means no access. When patterns of both roles match, the most specific one wins
//!   (an exact match beats any wildcard, a longer literal prefix beats a shorter one), and an
//!   equally specific tie goes to `operator`, the lesser role. The same pattern listed twice is
//!   refused.
//! - [`AccessPolicy::parse`] validates the whole document and reports every problem with its JSON
//!   path; a policy with any problem is refused whole.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::pii::{PiiFields, PiiPath};
use super::{push_index, push_key};

/// The only policy format version this build reads.
pub const POLICY_VERSION: u64 = 1;

/// What a caller may see: auditors get full records, operators masked ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Auditor,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auditor => "auditor",
            Role::Operator => "operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with a policy document: where (a JSON path such as `roles.auditor[1]`, or
/// `policy` for the document as a whole) and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyProblem {
    pub path: String,
    pub reason: String,
}

/// A refused policy: every problem found, in document order (never empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyError {
    pub problems: Vec<PolicyProblem>,
}

impl PolicyError {
    pub(crate) fn one(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            problems: vec![PolicyProblem {
                path: path.into(),
                reason: reason.into(),
            }],
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("access policy refused:")?;
        for (i, p) in self.problems.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}{}: {}", p.path, p.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// The role a principal was given, and the pattern (as written in the policy) that gave it,
/// for the access journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleGrant<'a> {
    pub role: Role,
    pub pattern: &'a str,
}

/// A validated access policy. Build it with [`AccessPolicy::parse`]; it is immutable.
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    patterns: Vec<Pattern>,
    pii_default: PiiFields,
    pii_tenants: BTreeMap<String, PiiFields>,
    sha256: String,
}

#[derive(Clone, Debug)]
struct Pattern {
    role: Role,
    /// As written in the policy.
    text: String,
    /// `text` without its trailing `*`.
    literal: String,
    wildcard: bool,
    /// For role patterns: the prefix of the assumed-role session ARNs of the roles it covers.
    session_prefix: Option<String>,
}

/// How closely a pattern matched: exact beats wildcard, then the longer literal wins.
type Specificity = (bool, usize);

impl Pattern {
    fn specificity(&self, principal: &str, is_session: bool) -> Option<Specificity> {
        let direct = if self.wildcard {
            principal
                .starts_with(&self.literal)
                .then_some((false, self.literal.len()))
        } else {
            (principal == self.text).then_some((true, self.text.len()))
        };
        let via_role = match &self.session_prefix {
            Some(prefix) if is_session && principal.starts_with(prefix.as_str()) => {
                Some((false, prefix.len()))
            }
            _ => None,
        };
        direct.max(via_role)
    }
}

impl AccessPolicy {
    /// Parses and validates a whole policy document. Any problem refuses the whole document;
    /// the error lists every problem found, each with its JSON path.
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        check_syntax_and_duplicates(json)?;
        let value: Value = serde_json::from_str(json)
            .map_err(|e| PolicyError::one("policy", format!("not valid JSON: {e}")))?;
        let Some(doc) = value.as_object() else {
            return Err(PolicyError::one("policy", "must be a JSON object"));
        };
        let mut problems = Vec::new();
        let mut problem = |path: &str, reason: String| {
            problems.push(PolicyProblem {
                path: path.to_string(),
                reason,
            })
        };

        // An unknown version is the only problem worth reporting: the rest would be judged by
        // rules the author did not write for.
        match doc.get("version") {
            None => return Err(PolicyError::one("version", "required field is missing")),
            Some(v) if v.as_u64() == Some(POLICY_VERSION) => {}
            Some(v) if v.is_u64() => {
                return Err(PolicyError::one(
                    "version",
                    format!("unsupported version {v}: this build reads version {POLICY_VERSION}"),
                ))
            }
            Some(v) => {
                return Err(PolicyError::one(
                    "version",
                    format!("must be the number {POLICY_VERSION}, found {v}"),
                ))
            }
        }
        for (key, _) in sorted(doc) {
            if !matches!(key.as_str(), "version" | "roles" | "pii") {
                let mut path = String::new();
                push_key(&mut path, key);
                problem(&path, "unknown field (expected version, roles, pii)".into());
            }
        }

        let mut patterns: Vec<Pattern> = Vec::new();
        match doc.get("roles") {
            None => problem("roles", "required field is missing".into()),
            Some(Value::Object(roles)) => {
                for (name, list) in sorted(roles) {
                    let mut path = "roles".to_string();
                    push_key(&mut path, name);
                    let role = match name.as_str() {
                        "auditor" => Role::Auditor,
                        "operator" => Role::Operator,
                        _ => {
                            problem(&path, "unknown role (expected auditor, operator)".into());
                            continue;
                        }
                    };
                    let Some(items) = string_list(list, &path, &mut problem) else {
                        continue;
                    };
                    for (i, text) in items {
                        let mut at = path.clone();
                        push_index(&mut at, i);
                        if let Some(first) = patterns.iter().find(|p| p.text == text) {
                            let reason = if first.role == role {
                                format!("duplicate pattern {text:?}")
                            } else {
                                format!(
                                    "pattern {text:?} is also listed under roles.{}: \
                                     a principal cannot hold both roles",
                                    first.role
                                )
                            };
                            problem(&at, reason);
                            continue;
                        }
                        match Pattern::parse(role, text) {
                            Ok(p) => patterns.push(p),
                            Err(reason) => problem(&at, reason),
                        }
                    }
                }
            }
            Some(_) => problem(
                "roles",
                "must be an object {\"auditor\": [...], \"operator\": [...]}".into(),
            ),
        }

        let mut pii_default = PiiFields::none();
        let mut pii_tenants = BTreeMap::new();
        match doc.get("pii") {
            None => {}
            Some(Value::Object(tenants)) => {
                for (tenant, list) in sorted(tenants) {
                    let mut path = "pii".to_string();
                    push_key(&mut path, tenant);
                    if tenant != "*" {
                        if let Err(reason) = check_tenant_id(tenant) {
                            problem(&path, reason);
                            continue;
                        }
                    }
                    let Some(items) = string_list(list, &path, &mut problem) else {
                        continue;
                    };
                    let mut fields = Vec::new();
                    for (i, text) in items {
                        let mut at = path.clone();
                        push_index(&mut at, i);
                        match PiiPath::parse(text) {
                            Ok(_) if fields.iter().any(|f: &PiiPath| f.as_str() == text) => {
                                problem(&at, format!("duplicate field path {text:?}"))
                            }
                            Ok(p) => fields.push(p),
                            Err(reason) => problem(&at, reason),
                        }
                    }
                    let fields = PiiFields::from_paths(fields);
                    if tenant == "*" {
                        pii_default = fields;
                    } else {
                        pii_tenants.insert(tenant.clone(), fields);
                    }
                }
            }
            Some(_) => problem(
                "pii",
                "must be an object of tenant id (or \"*\") to a list of field paths".into(),
            ),
        }

        if !problems.is_empty() {
            return Err(PolicyError { problems });
        }
        Ok(Self {
            patterns,
            pii_default,
            pii_tenants,
            sha256: hex::encode(Sha256::digest(json.as_bytes())),
        })
    }

    /// The role of a caller, or None (no access) when no pattern matches or the principal is not
    /// a well-formed IAM/STS principal ARN.
    pub fn role_of(&self, principal: &str) -> Option<Role> {
        self.resolve(principal).map(|g| g.role)
    }

    /// The role of a caller and the pattern that decided it (see the module docs for the rules).
    pub fn resolve(&self, principal: &str) -> Option<RoleGrant<'_>> {
        let arn = parse_arn(principal, false).ok()?;
        let is_session = arn.service == "sts" && arn.resource.starts_with("assumed-role/");
        let mut best: Option<(Specificity, &Pattern)> = None;
        for p in &self.patterns {
            let Some(spec) = p.specificity(principal, is_session) else {
                continue;
            };
            let better = match best {
                None => true,
                Some((b, bp)) => {
                    spec > b || (spec == b && p.role == Role::Operator && bp.role != p.role)
                }
            };
            if better {
                best = Some((spec, p));
            }
        }
        best.map(|(_, p)| RoleGrant {
            role: p.role,
            pattern: &p.text,
        })
    }

    /// The PII field paths declared for a tenant: the `*` default list, then the tenant's own
    /// additions (a tenant list extends the default; it never removes from it).
    pub fn pii_for(&self, tenant_id: &str) -> PiiFields {
        match self.pii_tenants.get(tenant_id) {
            Some(own) => self.pii_default.union(own),
            None => self.pii_default.clone(),
        }
    }

    /// Hex SHA-256 of the policy document as parsed, for recording which policy decided.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// A map's entries in key order whatever `serde_json`'s features, so that problems are always
/// reported in the same order.
fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// The elements of a JSON array of strings with their indices; reports what is wrong otherwise.
fn string_list<'v>(
    value: &'v Value,
    path: &str,
    problem: &mut impl FnMut(&str, String),
) -> Option<Vec<(usize, &'v str)>> {
    let Value::Array(items) = value else {
        problem(path, "must be a list of strings".into());
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if s.is_empty() => {
                let mut at = path.to_string();
                push_index(&mut at, i);
                problem(&at, "must not be empty".into());
            }
            Value::String(s) => out.push((i, s.as_str())),
            other => {
                let mut at = path.to_string();
                push_index(&mut at, i);
                problem(&at, format!("must be a string, found {other}"));
            }
        }
    }
    Some(out)
}

/// Tenant ids as the record validator accepts them.
fn check_tenant_id(tenant: &str) -> Result<(), String> {
    if tenant.is_empty() || tenant.len() > crate::validate::MAX_TENANT_ID {
        return Err("tenant id must be 1 to 64 characters (or \"*\" for every tenant)".into());
    }
    match tenant.chars().find(|c| !crate::validate::is_id_char(*c)) {
        Some(bad) => Err(format!(
            "tenant id: character {bad:?} not allowed (use A-Z a-z 0-9 _ - . :, or \"*\")"
        )),
        None => Ok(()),
    }
}

impl Pattern {
    fn parse(role: Role, text: &str) -> Result<Self, String> {
        if text.chars().any(char::is_whitespace) {
            return Err("must not contain whitespace".into());
        }
        let (literal, wildcard) = match text.strip_suffix('*') {
            Some(literal) => (literal, true),
            None => (text, false),
        };
        if literal.contains('*') {
            return Err("`*` may only appear once, at the very end".into());
        }
        let arn = parse_arn(literal, wildcard)?;
        let session_prefix = if arn.service != "iam" {
            None
        } else if wildcard && arn.resource.is_empty() {
            // The whole account's IAM principals, hence also its role sessions.
            Some(String::new())
        } else if let Some(rest) = arn.resource.strip_prefix("role/") {
            match (wildcard, rest.rsplit_once('/')) {
                // `role/ops-*`, `role/*`: sessions whose role name starts so.
                (true, None) => Some(rest.to_string()),
                // `role/teams/*`: the path is unknown for a session; role ARNs only.
                (true, Some(_)) => None,
                // `role/[path/]Name`: every session of the role named Name.
                (false, split) => Some(format!("{}/", split.map_or(rest, |(_, name)| name))),
            }
        } else {
            None
        };
        let session_prefix = session_prefix.map(|tail| {
            format!(
                "arn:{}:sts::{}:assumed-role/{tail}",
                arn.partition, arn.account
            )
        });
        Ok(Self {
            role,
            text: text.to_string(),
            literal: literal.to_string(),
            wildcard,
            session_prefix,
        })
    }
}

struct Arn<'a> {
    partition: &'a str,
    service: &'a str,
    account: &'a str,
    resource: &'a str,
}

const ARN_SHAPE: &str = "arn:aws:iam::123456789012:role/Name";

/// Checks an IAM/STS principal ARN, or with `prefix` the literal part of a wildcard pattern
/// (which must still spell out partition, service and account, and may stop anywhere in the
/// resource part after a resource type).
fn parse_arn(text: &str, prefix: bool) -> Result<Arn<'_>, String> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    if parts.len() < 6 {
        return Err(if prefix {
            format!(
                "`*` may only stand in the resource part: spell out `arn:partition:service::account:` first (like {ARN_SHAPE}*)"
            )
        } else {
            format!("not an IAM principal ARN (expected the shape {ARN_SHAPE})")
        });
    }
    let (head, partition, service, region, account, resource) =
        (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]);
    if head != "arn" {
        return Err(format!("must start with `arn:` (like {ARN_SHAPE})"));
    }
    if partition.is_empty()
        || !partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "partition {partition:?} is not valid (aws, aws-cn, aws-us-gov, …)"
        ));
    }
    if service != "iam" && service != "sts" {
        return Err(format!(
            "service {service:?} does not name a principal (use iam or sts)"
        ));
    }
    if !region.is_empty() {
        return Err(format!(
            "IAM and STS ARNs have no region (found {region:?}): write `arn:{partition}:{service}::…`"
        ));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account id {account:?} must be 12 digits"));
    }
    check_resource(service, resource, prefix)?;
    Ok(Arn {
        partition,
        service,
        account,
        resource,
    })
}

/// Characters IAM allows in role, user and session names (and path segments).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | ',' | '.' | '@' | '_' | '-')
}

/// `segments` of a name/path: each non-empty and of IAM name characters, except that a prefix
/// may end part-way (its last segment may be empty or partial).
fn check_segments(rest: &str, prefix: bool, what: &str) -> Result<usize, String> {
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if seg.is_empty() && !(prefix && last) {
            return Err(format!("{what}: empty name or path segment in {rest:?}"));
        }
        if let Some(bad) = seg.chars().find(|c| !name_char(*c)) {
            return Err(format!(
                "{what}: character {bad:?} is not allowed in IAM names"
            ));
        }
    }
    Ok(segments.len())
}

fn check_resource(service: &str, resource: &str, prefix: bool) -> Result<(), String> {
    if prefix && resource.is_empty() {
        return Ok(());
    }
    let kinds: &[&str] = if service == "iam" {
        &["role/", "user/"]
    } else {
        &["assumed-role/", "federated-user/"]
    };
    if service == "iam" && resource == "root" && !prefix {
        return Ok(());
    }
    let Some(kind) = kinds.iter().find(|k| resource.starts_with(**k)) else {
        let expected = if service == "iam" {
            "role/…, user/… or root"
        } else {
            "assumed-role/Role/session or federated-user/…"
        };
        return Err(format!(
            "resource {resource:?} is not a principal of {service} (expected {expected}{})",
            if prefix { ", before the `*`" } else { "" }
        ));
    };
    let rest = &resource[kind.len()..];
    let count = check_segments(rest, prefix, kind.trim_end_matches('/'))?;
    match *kind {
        "assumed-role/" if count > 2 || (!prefix && count != 2) => Err(format!(
            "assumed-role ARNs are `assumed-role/RoleName/session`, found {resource:?}"
        )),
        "federated-user/" if count > 1 => Err(format!(
            "federated-user ARNs are `federated-user/name`, found {resource:?}"
        )),
        _ => Ok(()),
    }
}

/// First pass over the document: reports JSON syntax errors, and duplicate object keys (which
/// `serde_json::Value` would silently collapse to the last one) with their path.
fn check_syntax_and_duplicates(json: &str) -> Result<(), PolicyError> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(json);
    let result = NoDuplicates {
        path: String::new(),
        found: &found,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (result, found.into_inner()) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(path)) => Err(PolicyError::one(
            path,
            "duplicate key: each key may appear only once",
        )),
        (Err(e), None) => Err(PolicyError::one("policy", format!("not valid JSON: {e}"))),
    }
}

struct NoDuplicates<'a> {
    path: String,
    found: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for NoDuplicates<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let mut path = self.path.clone();
            push_index(&mut path, i);
            let seed = NoDuplicates {
                path,
                found: self.found,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let mut path = self.path.clone();
            push_key(&mut path, &key);
            if seen.insert(key, Value::Null).is_some() {
                *self.found.borrow_mut() = Some(path);
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value_seed(NoDuplicates {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCT: &str = "123456789012";

    fn policy(roles: &str) -> AccessPolicy {
        AccessPolicy::parse(&format!(r#"{{"version":1,"roles":{roles}}}"#))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn problems(json: &str) -> Vec<(String, String)> {
        match AccessPolicy::parse(json) {
            Ok(_) => panic!("accepted: {json}"),
            Err(e) => e.problems.into_iter().map(|p| (p.path, p.reason)).collect(),
        }
    }

    fn paths(json: &str) -> Vec<String> {
        problems(json).into_iter().map(|(p, _)| p).collect()
    }

    fn role(p: &str) -> String {
        format!("arn:aws:iam::{ACCT}:role/{p}")
    }
    fn session(r: &str, s: &str) -> String {
        format!("arn:aws:sts::{ACCT}:assumed-role/{r}/{s}")
    }

    #[test]
    fn exact_role_and_user_patterns() {
        let p = policy(&format!(
            r#"{{"auditor":["{}","arn:aws:iam::{ACCT}:user/alice"],"operator":["{}"]}}"#,
            role("Auditor"),
            role("Ops")
        ));
        assert_eq!(p.role_of(&role("Auditor")), Some(Role::Auditor));
        assert_eq!(
            p.role_of(&format!("arn:aws:iam::{ACCT}:user/alice")),
            Some(Role::Auditor)
        );
        assert_eq!(p.role_of(&role("Ops")), Some(Role::Operator));
        // Exact means exact: no prefixes, no other accounts, no case folding.
        assert_eq!(p.role_of(&role("AuditorX")), None);
        assert_eq!(p.role_of(&role("auditor")), None);
        assert_eq!(p.role_of("arn:aws:iam::999999999999:role/Auditor"), None);
        assert_eq!(p.role_of(&format!("arn:aws:iam::{ACCT}:user/alice2")), None);
        // Not an ARN at all: no access, no panic.
        for bad in ["", "Auditor", "arn:aws:iam::123:role/Auditor", "*"] {
            assert_eq!(p.role_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn assumed_role_sessions_match_their_role() {
        let p = policy(&format!(
            r#"{{"auditor":["{}","{}"],"operator":["{}"]}}"#,
            role("Auditor"),
            role("compliance/team/Reviewer"),
            role("ops-*")
        ));
        assert_eq!(
            p.role_of(&session("Auditor", "jane@bank.example")),
            Some(Role::Auditor)
        );
        // STS drops the role path; role names are unique per account.
        assert_eq!(p.role_of(&session("Reviewer", "s1")), Some(Role::Auditor));
        assert_eq!(p.role_of(&session("ops-east", "bot")), Some(Role::Operator));
        assert_eq!(p.role_of(&session("ops", "bot")), None);
        // A session of another account, partition or role does not match.
        assert_eq!(
            p.role_of("arn:aws:sts::999999999999:assumed-role/Auditor/s"),
            None
        );
        assert_eq!(
            p.role_of(&format!("arn:aws-cn:sts::{ACCT}:assumed-role/Auditor/s")),
            None
        );
        assert_eq!(p.role_of(&session("AuditorX", "s")), None);
        assert_eq!(p.role_of(&session("Audito", "r")), None);
        // Malformed sessions are refused.
        assert_eq!(
            p.role_of(&format!("arn:aws:sts::{ACCT}:assumed-role/Auditor")),
            None
        );
        assert_eq!(
            p.role_of(&format!("arn:aws:sts::{ACCT}:assumed-role/Auditor/")),
            None
        );
        assert_eq!(
            p.resolve(&session("Auditor", "x")).unwrap().pattern,
            role("Auditor")
        );
    }

    #[test]
    fn wildcards() {
        let p = policy(&format!(
            r#"{{"auditor":["arn:aws:sts::{ACCT}:assumed-role/Break-glass/*"],
                "operator":["{}","{}"]}}"#,
            role("ops-*"),
            role("teams/support/*")
        ));
        assert_eq!(p.role_of(&role("ops-")), Some(Role::Operator));
        assert_eq!(p.role_of(&role("ops-west")), Some(Role::Operator));
        assert_eq!(p.role_of(&role("teams/support/l1")), Some(Role::Operator));
        // A wildcard with a path cannot be checked against a session (its path is unknown).
        assert_eq!(p.role_of(&session("l1", "s")), None);
        assert_eq!(p.role_of(&role("teams/supportx")), None);
        assert_eq!(
            p.role_of(&session("Break-glass", "incident-42")),
            Some(Role::Auditor)
        );
        // A session pattern never matches the role ARN itself.
        assert_eq!(p.role_of(&role("Break-glass")), None);

        let account_wide = policy(&format!(r#"{{"operator":["arn:aws:iam::{ACCT}:*"]}}"#));
        assert_eq!(account_wide.role_of(&role("x")), Some(Role::Operator));
        assert_eq!(
            account_wide.role_of(&format!("arn:aws:iam::{ACCT}:user/u")),
            Some(Role::Operator)
        );
        assert_eq!(
            account_wide.role_of(&session("x", "s")),
            Some(Role::Operator)
        );
        assert_eq!(
            account_wide.role_of("arn:aws:iam::999999999999:role/x"),
            None
        );
    }

    #[test]
    fn most_specific_match_wins_and_ties_go_to_operator() {
        // Broad operators, named auditors.
        let p = policy(&format!(
            r#"{{"operator":["{}"],"auditor":["{}"]}}"#,
            role("*"),
            role("Auditor")
        ));
        assert_eq!(p.role_of(&role("Auditor")), Some(Role::Auditor));
        assert_eq!(p.role_of(&session("Auditor", "s")), Some(Role::Auditor));
        assert_eq!(p.role_of(&role("anyone")), Some(Role::Operator));
        assert_eq!(p.role_of(&session("anyone", "s")), Some(Role::Operator));

        // Broad auditors, a narrower operator carve-out.
        let p = policy(&format!(
            r#"{{"auditor":["{}"],"operator":["{}"]}}"#,
            role("compliance-*"),
            role("compliance-intern-*")
        ));
        assert_eq!(p.role_of(&role("compliance-lead")), Some(Role::Auditor));
        assert_eq!(
            p.role_of(&session("compliance-intern-3", "s")),
            Some(Role::Operator)
        );

        // An exact session beats its role's wildcard.
        let p = policy(&format!(
            r#"{{"operator":["{}"],"auditor":["{}"]}}"#,
            role("Shared"),
            session("Shared", "auditor-jane")
        ));
        assert_eq!(
            p.role_of(&session("Shared", "auditor-jane")),
            Some(Role::Auditor)
        );
        assert_eq!(p.role_of(&session("Shared", "bob")), Some(Role::Operator));

        // Equally specific (a role and all its sessions): the lesser role, in either order.
        for (a, o) in [
            (
                role("Shared"),
                format!("arn:aws:sts::{ACCT}:assumed-role/Shared/*"),
            ),
            (
                format!("arn:aws:sts::{ACCT}:assumed-role/Shared/*"),
                role("Shared"),
            ),
        ] {
            let p = policy(&format!(r#"{{"auditor":["{a}"],"operator":["{o}"]}}"#));
            assert_eq!(p.role_of(&session("Shared", "s")), Some(Role::Operator));
            let p = policy(&format!(r#"{{"operator":["{o}"],"auditor":["{a}"]}}"#));
            assert_eq!(p.role_of(&session("Shared", "s")), Some(Role::Operator));
        }
    }

    #[test]
    fn no_patterns_means_no_access() {
        let p = policy("{}");
        assert_eq!(p.role_of(&role("Auditor")), None);
        let p = policy(r#"{"auditor":[],"operator":[]}"#);
        assert_eq!(p.role_of(&role("Auditor")), None);
    }

    #[test]
    fn pattern_shapes_refused() {
        let cases = [
            ("*", "resource part"),
            ("arn:*", "resource part"),
            ("arn:aws:iam::*", "resource part"),
            (&format!("arn:aws:iam::{ACCT}*"), "resource part"),
            (&format!("arn:aws:iam::{ACCT}:role/a*b"), "only appear once"),
            (&format!("arn:aws:iam::{ACCT}:role/**"), "only appear once"),
            (&format!("arn:aws:iam::{ACCT}:role/*x"), "only appear once"),
            ("arn:aws:iam::12345:role/A", "12 digits"),
            ("arn:aws:iam::12345678901x:role/A", "12 digits"),
            (
                &format!("arn:aws:s3::{ACCT}:bucket"),
                "does not name a principal",
            ),
            (&format!("arn:aws:iam:eu-west-1:{ACCT}:role/A"), "no region"),
            (
                &format!("arm:aws:iam::{ACCT}:role/A"),
                "must start with `arn:`",
            ),
            (&format!("arn:AWS:iam::{ACCT}:role/A"), "partition"),
            (&format!("arn:aws:iam::{ACCT}:role/"), "empty"),
            (&format!("arn:aws:iam::{ACCT}:role"), "not a principal"),
            (&format!("arn:aws:iam::{ACCT}:role*"), "not a principal"),
            (&format!("arn:aws:iam::{ACCT}:group/g"), "not a principal"),
            (&format!("arn:aws:iam::{ACCT}:role//A"), "empty"),
            (&format!("arn:aws:iam::{ACCT}:role/A B"), "whitespace"),
            (&format!("arn:aws:iam::{ACCT}:role/A#"), "not allowed"),
            (
                &format!("arn:aws:sts::{ACCT}:assumed-role/A"),
                "assumed-role/RoleName",
            ),
            (
                &format!("arn:aws:sts::{ACCT}:assumed-role/A/s/t"),
                "assumed-role/RoleName",
            ),
            (&format!("arn:aws:sts::{ACCT}:role/A"), "not a principal"),
        ];
        for (pattern, why) in cases {
            let json = format!(r#"{{"version":1,"roles":{{"auditor":["{pattern}"]}}}}"#);
            let got = problems(&json);
            assert_eq!(got.len(), 1, "{pattern}: {got:?}");
            assert_eq!(got[0].0, "roles.auditor[0]", "{pattern}");
            assert!(got[0].1.contains(why), "{pattern}: {:?}", got[0].1);
        }
        // The shapes that are fine.
        for ok in [
            format!("arn:aws:iam::{ACCT}:root"),
            format!("arn:aws:iam::{ACCT}:*"),
            format!("arn:aws:iam::{ACCT}:role/*"),
            format!("arn:aws:iam::{ACCT}:role/path/*"),
            format!("arn:aws:iam::{ACCT}:user/a.b+c=d,e@f_g-h"),
            format!("arn:aws-us-gov:sts::{ACCT}:assumed-role/A/*"),
            format!("arn:aws:sts::{ACCT}:assumed-role/A*"),
            format!("arn:aws:sts::{ACCT}:federated-user/bob"),
        ] {
            policy(&format!(r#"{{"auditor":["{ok}"]}}"#));
        }
    }

    #[test]
    fn documents_refused_whole_with_every_path_named() {
        let r = role("A");
        let json = format!(
            r#"{{"version":1,"extra":true,
                "roles":{{"auditor":["{r}","", 7, "{r}"],"admin":["{r}"],"operator":"{r}"}},
                "pii":{{"*":["context.email","context.email","subjekt.id"],"bad tenant":["rationale"],
                        "t1":"rationale"}}}}"#
        );
        assert_eq!(
            paths(&json),
            [
                "extra",
                "roles.admin",
                "roles.auditor[1]",
                "roles.auditor[2]",
                "roles.auditor[3]",
                "roles.operator",
                "pii.*[1]",
                "pii.*[2]",
                r#"pii["bad tenant"]"#,
                "pii.t1",
            ]
        );
        let err = AccessPolicy::parse(&json).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("access policy refused: extra: unknown field"),
            "{text}"
        );
        assert!(
            text.contains("roles.auditor[3]: duplicate pattern"),
            "{text}"
        );

        // The same pattern under both roles.
        let got = problems(&format!(
            r#"{{"version":1,"roles":{{"auditor":["{r}"],"operator":["{r}"]}}}}"#
        ));
        assert_eq!(got[0].0, "roles.operator[0]");
        assert!(
            got[0].1.contains("also listed under roles.auditor"),
            "{got:?}"
        );
    }

    #[test]
    fn version_and_document_shape() {
        assert_eq!(
            problems(r#"{"roles":{}}"#),
            [(
                "version".to_string(),
                "required field is missing".to_string()
            )]
        );
        let got = problems(r#"{"version":2,"roles":{"auditor":["nonsense"]},"later":1}"#);
        assert_eq!(got.len(), 1, "only the version is judged: {got:?}");
        assert_eq!(got[0].0, "version");
        assert!(got[0].1.contains("unsupported version 2"));
        for v in [r#""1""#, "1.0", "-1", "null"] {
            let got = problems(&format!(r#"{{"version":{v},"roles":{{}}}}"#));
            assert_eq!(got[0].0, "version", "{v}");
        }
        assert_eq!(paths(r#"{"version":1}"#), ["roles"]);
        assert_eq!(paths(r#"{"version":1,"roles":[]}"#), ["roles"]);
        assert_eq!(paths(r#"{"version":1,"roles":{},"pii":[]}"#), ["pii"]);
        assert_eq!(paths("[]"), ["policy"]);
        assert_eq!(paths(""), ["policy"]);
        assert_eq!(paths(r#"{"version":1,"roles":{}} x"#), ["policy"]);
        assert_eq!(paths(r#"{"version":1,"roles":{"#), ["policy"]);
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let r = role("A");
        let json =
            format!(r#"{{"version":1,"roles":{{"auditor":["{r}"],"operator":[],"auditor":[]}}}}"#);
        let got = problems(&json);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "roles.auditor");
        assert!(got[0].1.contains("duplicate key"));
        assert_eq!(
            paths(r#"{"version":1,"roles":{},"pii":{"*":[],"t":[],"t":[]}}"#),
            ["pii.t"]
        );
        assert_eq!(
            paths(r#"{"version":1,"version":1,"roles":{}}"#),
            ["version"]
        );
    }

    #[test]
    fn pii_default_extends_to_every_tenant() {
        let p = AccessPolicy::parse(
            r#"{"version":1,"roles":{},
                "pii":{"*":["context.email","caller.principal"],
                       "bank_456":["features.postcode","context.email","review.reviewer"]}}"#,
        )
        .unwrap();
        let list = |t: &str| {
            p.pii_for(t)
                .paths()
                .iter()
                .map(|p| p.as_str().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(list("other"), ["context.email", "caller.principal"]);
        assert_eq!(
            list("bank_456"),
            [
                "context.email",
                "caller.principal",
                "features.postcode",
                "review.reviewer"
            ]
        );
        let none = AccessPolicy::parse(r#"{"version":1,"roles":{}}"#).unwrap();
        assert!(none.pii_for("t").paths().is_empty());
    }

    #[test]
    fn digest_names_the_document() {
        let a = AccessPolicy::parse(r#"{"version":1,"roles":{}}"#).unwrap();
        let b = AccessPolicy::parse(r#"{"version":1, "roles":{}}"#).unwrap();
        assert_eq!(a.sha256().len(), 64);
        assert_ne!(a.sha256(), b.sha256());
    }
}
