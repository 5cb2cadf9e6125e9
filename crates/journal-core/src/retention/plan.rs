//! What retention would do with one file, and why: a pure decision over its manifest entry,
//! the policy and the clock, so a dry run and a real run decide alike.

use serde::{Deserialize, Serialize};

use super::policy::{ArchiveClass, Governing, RetentionPolicy, MIN_ARCHIVE_BYTES};
use crate::ports::{FileState, ManifestEntry};
use crate::timestamp::Timestamp;

/// One file's fate in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Past its hot window: moves to `class`.
    Archive {
        class: ArchiveClass,
        due_at: Timestamp,
        rule: String,
    },
    /// Past its retention period and not held: deleted, with a tombstone.
    Expire {
        due_at: Timestamp,
        rule: String,
        expire_after_years: u32,
    },
    /// Due for archiving but below [`MIN_ARCHIVE_BYTES`]: stays hot (reported).
    TooSmall { size: u64, rule: String },
    /// Past its retention period, but a legal hold covers it.
    Held {
        due_at: Timestamp,
        holds: Vec<String>,
    },
    /// Nothing due yet.
    NotDue {
        /// When the next step (archive or expiry) falls due, if ever.
        next_due: Option<Timestamp>,
    },
    /// Not retention's to touch (pending, compacted, abandoned, already deleted).
    NotEligible { state: FileState },
    /// Archived, with a restore a reader asked for running or readable (until `expires`).
    Restored { expires: Option<String> },
    /// A reader's restore is over: the restored copy expired (archived only again), or an
    /// object restored for good (copied to a hot class) is moved back to `class`.
    Retiered { class: String },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Archive { .. } => "archive",
            Action::Expire { .. } => "expire",
            Action::TooSmall { .. } => "too_small",
            Action::Held { .. } => "held",
            Action::NotDue { .. } => "not_due",
            Action::NotEligible { .. } => "not_eligible",
            Action::Restored { .. } => "restored",
            Action::Retiered { .. } => "retiered",
        }
    }

    /// Whether the run changes something for it.
    pub fn acts(&self) -> bool {
        matches!(self, Action::Archive { .. } | Action::Expire { .. })
    }
}

/// When a file under `governing` is due for archiving and for expiry.
pub fn due_times(
    entry: &ManifestEntry,
    governing: &Governing,
) -> (Option<Timestamp>, Option<Timestamp>) {
    let archive = entry.created_at.plus_days(governing.rule.days_hot);
    let expire = governing.rule.expire_after_years.map(|y| {
        entry
            .last_occurred_at
            .plus_years(y)
            .unwrap_or(Timestamp::MAX)
    });
    (archive, expire)
}

/// Decides one file. `holds` are the ids of the legal holds covering it (the caller resolves
/// subject and model holds through the index).
pub fn decide(
    entry: &ManifestEntry,
    policy: &RetentionPolicy,
    holds: &[String],
    now: Timestamp,
) -> Action {
    if !matches!(entry.state, FileState::Live | FileState::Archived) {
        return Action::NotEligible { state: entry.state };
    }
    let governing = policy.governing(&entry.tenant_id, entry.known_tiers());
    let (archive_at, expire_at) = due_times(entry, &governing);
    if let Some(due_at) = expire_at.filter(|t| *t <= now) {
        if !holds.is_empty() {
            return Action::Held {
                due_at,
                holds: holds.to_vec(),
            };
        }
        return Action::Expire {
            due_at,
            rule: governing.path,
            expire_after_years: governing.rule.expire_after_years.unwrap_or_default(),
        };
    }
    if entry.state == FileState::Live {
        if let Some(due_at) = archive_at.filter(|t| *t <= now) {
            if entry.size < MIN_ARCHIVE_BYTES {
                return Action::TooSmall {
                    size: entry.size,
                    rule: governing.path,
                };
            }
            return Action::Archive {
                class: governing.rule.archive_class,
                due_at,
                rule: governing.path,
            };
        }
        return Action::NotDue {
            next_due: archive_at.or(expire_at),
        };
    }
    Action::NotDue {
        next_due: expire_at,
    }
}
