//! The retention policy: one versioned document holding every tenant's rules and every legal
//! hold. It is parsed and validated whole; the first problem found is reported with the path of
//! the field (`tenants.bank_1.tiers.high.days_hot`) and the reason, and a document with any
//! problem is never applied.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::record::RiskTier;
use crate::timestamp::Timestamp;
use crate::validate::is_tenant_id;

/// Version of the document's shape (not of its content: that is [`RetentionPolicy::version`]).
pub const POLICY_FORMAT: u32 = 1;

/// Files smaller than this are never moved to an archive class: Glacier bills every object as
/// at least 128 KiB and adds per-object overhead, so archiving them costs more than it saves.
pub const MIN_ARCHIVE_BYTES: u64 = 128 * 1024;

/// How long a file stays in the hot class at least: compaction merges the last two days' hours
/// (its lookback), and an archived file can no longer be merged.
pub const MIN_DAYS_HOT: u32 = 7;

const MAX_DAYS_HOT: u32 = 36_500;
const MAX_YEARS: u32 = 100;
const MAX_HOLDS: usize = 10_000;
const MAX_TEXT: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ArchiveClass {
    #[serde(rename = "GLACIER")]
    Glacier,
    #[serde(rename = "DEEP_ARCHIVE")]
    DeepArchive,
}

impl ArchiveClass {
    /// S3's name of the storage class.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveClass::Glacier => "GLACIER",
            ArchiveClass::DeepArchive => "DEEP_ARCHIVE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GLACIER" => Some(ArchiveClass::Glacier),
            "DEEP_ARCHIVE" => Some(ArchiveClass::DeepArchive),
            _ => None,
        }
    }
}

/// What happens to a file over its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Days after a file is written before it moves to `archive_class`.
    pub days_hot: u32,
    pub archive_class: ArchiveClass,
    /// Years after a file's newest decision before it is deleted (with a tombstone); `None`
    /// keeps it for ever.
    #[serde(default)]
    pub expire_after_years: Option<u32>,
}

/// A tenant's rules: one for records of every risk tier, and overrides per tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRules {
    pub default: Rule,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<RiskTier, Rule>,
}

/// What a legal hold protects from expiry and erasure. Every field given narrows it; a hold
/// with none of them covers the whole tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldScope {
    /// The subject's ref (HMAC of the subject id under the tenant key), never the raw id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_ref: Option<String>,
    /// A model version (both or neither: the index finds a model's records by version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Decisions with `from <= occurred_at < to` (either end open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalHold {
    /// Unique within the document (a case or matter number).
    pub id: String,
    pub tenant_id: String,
    pub reason: String,
    pub placed_at: Timestamp,
    #[serde(default)]
    pub scope: HoldScope,
}

impl LegalHold {
    pub fn covers_time(&self, first: Timestamp, last: Timestamp) -> bool {
        self.scope.from.is_none_or(|from| last >= from) && self.scope.to.is_none_or(|to| first < to)
    }

    /// Whether the hold needs the index to know which files it covers (a subject or a model).
    pub fn needs_index(&self) -> bool {
        self.scope.subject_ref.is_some() || self.scope.model_name.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    pub format: u32,
    /// Increases by one with every change; files and tombstones name the version that moved or
    /// removed them.
    pub version: u64,
    pub updated_at: Timestamp,
    /// Rules of tenants not listed under `tenants`.
    pub default: TenantRules,
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantRules>,
    #[serde(default)]
    pub legal_holds: Vec<LegalHold>,
}

/// The first problem of a policy document: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("retention policy rejected: {path}: {reason}")]
pub struct PolicyError {
    pub path: String,
    pub reason: String,
}

fn bad(path: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The rule that governs a file and where in the policy it comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Governing {
    /// Path of the rule in the document, e.g. `tenants.bank_1.tiers.high`.
    pub path: String,
    pub rule: Rule,
}

impl RetentionPolicy {
    /// Parses and validates a document; nothing of an invalid one is used.
    pub fn parse(bytes: &[u8]) -> Result<Self, PolicyError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let policy: RetentionPolicy = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            // A bad map key shows as `?`: name the map.
            let path = path.strip_suffix(".?").map_or(path.clone(), str::to_string);
            bad(
                if path == "." {
                    "(document)".into()
                } else {
                    path
                },
                e.into_inner().to_string(),
            )
        })?;
        de.end()
            .map_err(|e| bad("(document)", format!("trailing data: {e}")))?;
        policy.validate()?;
        Ok(policy)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a policy serializes")
    }

    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.format != POLICY_FORMAT {
            return Err(bad(
                "format",
                format!(
                    "unknown format {}, this build reads {POLICY_FORMAT}",
                    self.format
                ),
            ));
        }
        if self.version == 0 {
            return Err(bad("version", "starts at 1"));
        }
        validate_tenant_rules("default", &self.default)?;
        for (tenant, rules) in &self.tenants {
            if !is_tenant_id(tenant) {
                return Err(bad(
                    format!("tenants.{tenant}"),
                    "not a tenant id (1-64 of A-Z a-z 0-9 _ . : -)",
                ));
            }
            validate_tenant_rules(&format!("tenants.{tenant}"), rules)?;
        }
        if self.legal_holds.len() > MAX_HOLDS {
            return Err(bad("legal_holds", format!("more than {MAX_HOLDS} holds")));
        }
        let mut ids = BTreeSet::new();
        for (i, hold) in self.legal_holds.iter().enumerate() {
            let at = |field: &str| format!("legal_holds[{i}].{field}");
            text(&at("id"), &hold.id)?;
            if !ids.insert(hold.id.as_str()) {
                return Err(bad(
                    at("id"),
                    format!("{:?} is used by an earlier hold", hold.id),
                ));
            }
            if !is_tenant_id(&hold.tenant_id) {
                return Err(bad(at("tenant_id"), "not a tenant id"));
            }
            text(&at("reason"), &hold.reason)?;
            let s = &hold.scope;
            if let Some(r) = &s.subject_ref {
                if r.len() != 64 || !r.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(bad(
                        at("scope.subject_ref"),
                        "must be a subject ref (64 lowercase hex digits); raw subject ids are never stored, place a subject hold with `dj retention hold --subject`",
                    ));
                }
            }
            match (&s.model_name, &s.model_version) {
                (Some(m), Some(v)) => {
                    text(&at("scope.model_name"), m)?;
                    text(&at("scope.model_version"), v)?;
                }
                (Some(_), None) => {
                    return Err(bad(
                        at("scope.model_version"),
                        "needed with scope.model_name",
                    ))
                }
                (None, Some(_)) => {
                    return Err(bad(
                        at("scope.model_name"),
                        "needed with scope.model_version",
                    ))
                }
                (None, None) => {}
            }
            if let (Some(from), Some(to)) = (s.from, s.to) {
                if from >= to {
                    return Err(bad(
                        at("scope.to"),
                        format!("{to} is not after from {from}"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn rules_of(&self, tenant_id: &str) -> (&TenantRules, String) {
        match self.tenants.get(tenant_id) {
            Some(r) => (r, format!("tenants.{tenant_id}")),
            None => (&self.default, "default".to_string()),
        }
    }

    /// The rule of a file holding records of `tiers` (`None`: not known, e.g. a file written
    /// before tiers were recorded): the one that keeps data hot longest and expires it last,
    /// so no record leaves earlier than its own tier allows.
    pub fn governing(&self, tenant_id: &str, tiers: Option<&[String]>) -> Governing {
        let (rules, base) = self.rules_of(tenant_id);
        let candidates: Vec<(String, &Rule)> = match tiers {
            Some(tiers) => {
                let mut out = Vec::new();
                for t in tiers {
                    match tier_of(t).and_then(|tier| rules.tiers.get(&tier).map(|r| (tier, r))) {
                        Some((tier, r)) => out.push((format!("{base}.tiers.{}", tier.as_str()), r)),
                        None => out.push((format!("{base}.default"), &rules.default)),
                    }
                }
                if out.is_empty() {
                    out.push((format!("{base}.default"), &rules.default));
                }
                out
            }
            None => std::iter::once((format!("{base}.default"), &rules.default))
                .chain(
                    rules
                        .tiers
                        .iter()
                        .map(|(t, r)| (format!("{base}.tiers.{}", t.as_str()), r)),
                )
                .collect(),
        };
        let mut best: Option<(String, Rule)> = None;
        for (path, rule) in candidates {
            best = Some(match best {
                None => (path, rule.clone()),
                Some((bp, br)) => {
                    let expiry = match (br.expire_after_years, rule.expire_after_years) {
                        (None, _) | (_, None) => None,
                        (Some(a), Some(b)) => Some(a.max(b)),
                    };
                    let (path, class) = if rule.days_hot > br.days_hot {
                        (path, rule.archive_class)
                    } else {
                        (bp, br.archive_class)
                    };
                    (
                        path,
                        Rule {
                            days_hot: br.days_hot.max(rule.days_hot),
                            archive_class: class,
                            expire_after_years: expiry,
                        },
                    )
                }
            });
        }
        let (path, rule) = best.expect("at least one candidate");
        Governing { path, rule }
    }

    /// The holds of one tenant.
    pub fn holds_of<'a>(&'a self, tenant_id: &'a str) -> impl Iterator<Item = &'a LegalHold> + 'a {
        self.legal_holds
            .iter()
            .filter(move |h| h.tenant_id == tenant_id)
    }

    /// The S3 lifecycle transition that can stand beside the function: after the longest hot
    /// window of any rule, into that rule's class, objects over [`MIN_ARCHIVE_BYTES`] only.
    /// A lifecycle rule cannot tell tenants without rules of their own (prefix filters do not
    /// negate) nor tiers within a file apart, so it is a backstop that never moves a file
    /// earlier than the function would; expiry is never left to lifecycle rules (they write no
    /// tombstone and know no legal hold).
    pub fn lifecycle_backstop(&self) -> (u32, ArchiveClass) {
        let rules = std::iter::once(&self.default)
            .chain(self.tenants.values())
            .flat_map(|t| std::iter::once(&t.default).chain(t.tiers.values()));
        let mut best = (
            self.default.default.days_hot,
            self.default.default.archive_class,
        );
        for r in rules {
            if r.days_hot > best.0 {
                best = (r.days_hot, r.archive_class);
            }
        }
        best
    }
}

/// The tier named in a manifest entry's `risk_tiers` (`"none"` for records without one).
pub fn tier_of(name: &str) -> Option<RiskTier> {
    match name {
        "low" => Some(RiskTier::Low),
        "medium" => Some(RiskTier::Medium),
        "high" => Some(RiskTier::High),
        _ => None,
    }
}

fn validate_tenant_rules(path: &str, rules: &TenantRules) -> Result<(), PolicyError> {
    validate_rule(&format!("{path}.default"), &rules.default)?;
    for (tier, rule) in &rules.tiers {
        validate_rule(&format!("{path}.tiers.{}", tier.as_str()), rule)?;
    }
    Ok(())
}

fn validate_rule(path: &str, rule: &Rule) -> Result<(), PolicyError> {
    if rule.days_hot < MIN_DAYS_HOT || rule.days_hot > MAX_DAYS_HOT {
        return Err(bad(
            format!("{path}.days_hot"),
            format!(
                "{} is outside {MIN_DAYS_HOT}..={MAX_DAYS_HOT} (files must stay hot while compaction may still merge them)",
                rule.days_hot
            ),
        ));
    }
    if let Some(years) = rule.expire_after_years {
        if years == 0 || years > MAX_YEARS {
            return Err(bad(
                format!("{path}.expire_after_years"),
                format!("{years} is outside 1..={MAX_YEARS}"),
            ));
        }
        if u64::from(rule.days_hot) >= u64::from(years) * 365 {
            return Err(bad(
                format!("{path}.days_hot"),
                format!(
                    "{} days hot reaches past the expiry after {years} years: the file would be deleted before it is archived",
                    rule.days_hot
                ),
            ));
        }
    }
    Ok(())
}

fn text(path: &str, value: &str) -> Result<(), PolicyError> {
    if value.trim().is_empty() {
        return Err(bad(path, "must not be empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(bad(path, format!("longer than {MAX_TEXT} bytes")));
    }
    Ok(())
}
