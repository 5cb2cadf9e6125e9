//! Shaping answers: a record as the caller's role may see it, and page cursors.

use std::fmt;

use super::api::{Location, RecordView};
use super::lookup::Lookup;
use super::service::{lookup_id, lookup_status, Failure};
use crate::access::{mask_record, PiiFields, Role};
use crate::ports::Pointer;
use crate::timestamp::Timestamp;

/// A found record masked for `role`, with its proof and location; it is checkpointed when its
/// proof names the checkpoint that lists its block, or its block is at or below `covered_seq`
/// (the newest checkpointed chain position, when known).
pub fn record_view(
    found: &Lookup,
    role: Role,
    pii: &PiiFields,
    covered_seq: Option<u64>,
) -> RecordView {
    let mut view = RecordView {
        record_id: lookup_id(found),
        status: lookup_status(found).to_string(),
        record: None,
        redacted: Vec::new(),
        proof: None,
        location: None,
        archived: None,
        linked: Vec::new(),
        checkpointed: None,
    };
    match found {
        Lookup::Found(f) => {
            let masked = mask_record(&f.record, None, role, pii);
            view.record = Some(masked.record);
            view.redacted = masked.redacted;
            view.checkpointed = Some(
                f.proof.checkpoint.is_some() || covered_seq.is_some_and(|c| f.proof.block_seq <= c),
            );
            view.proof = Some(f.proof.clone());
            view.location = Some(Location {
                file_key: f.file_key.clone(),
                row_group: f.row_group,
                row: f.row,
            });
        }
        Lookup::Archived(a) => view.archived = Some(a.clone()),
        Lookup::Pending { .. } | Lookup::NotFound { .. } => {}
    }
    view
}

/// Where a page ended: the last item's time and id (timelines sort by both).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub at: Timestamp,
    pub id: String,
}

impl Cursor {
    pub fn of(p: &Pointer) -> Self {
        Self {
            at: p.occurred_at,
            id: p.record_id.clone(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, Failure> {
        let bad =
            || Failure::bad_request(format!("cursor: {text:?} is not a cursor this API gave"));
        let (ms, id) = text.split_once('#').ok_or_else(bad)?;
        let at = ms
            .parse::<i64>()
            .ok()
            .and_then(|ms| Timestamp::from_millis(ms).ok())
            .ok_or_else(bad)?;
        Ok(Self {
            at,
            id: id.to_string(),
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.at.millis(), self.id)
    }
}

/// The next `size` pointers after `after` (pointers in timeline order), and the cursor of the
/// page's end when more follow.
pub fn page_after<'p>(
    pointers: &'p [Pointer],
    after: Option<&Cursor>,
    size: usize,
) -> (&'p [Pointer], Option<Cursor>) {
    let start = match after {
        None => 0,
        Some(c) => pointers
            .partition_point(|p| (p.occurred_at, p.record_id.as_str()) <= (c.at, c.id.as_str())),
    };
    let end = (start + size).min(pointers.len());
    let page = &pointers[start..end];
    let next = (end < pointers.len())
        .then(|| page.last().map(Cursor::of))
        .flatten();
    (page, next)
}
