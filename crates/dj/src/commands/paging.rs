//! Following `next_cursor` until the last page (or a limit), with a spinner on a terminal.

use std::collections::HashSet;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use journal_core::access::Role;
use journal_core::replay::api::{
    AccessEvent, Answer, CheckpointCoverage, Operation, RecordView, TimeRange, DEFAULT_PAGE,
};

use super::{typed, wrong_answer};
use crate::error::DjError;
use crate::invoke::{ReplayClient, Reply};

/// A spinner on stderr (drawn only when stderr is a terminal).
pub fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {pos} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Refuses a cursor seen before, so a misbehaving function cannot make `dj` loop forever.
#[derive(Default)]
pub struct CursorGuard {
    seen: HashSet<String>,
}

impl CursorGuard {
    pub fn next(
        &mut self,
        cursor: Option<String>,
        function: &str,
        op: &'static str,
    ) -> Result<Option<String>, DjError> {
        match cursor {
            Some(c) if !self.seen.insert(c.clone()) => Err(DjError::Unexpected {
                function: function.to_string(),
                op,
                detail: format!("next_cursor {c:?} was already returned; stopping"),
            }),
            other => Ok(other),
        }
    }
}

/// Records gathered over pages.
#[derive(Default)]
pub struct RecordPages {
    pub replies: Vec<Reply>,
    pub records: Vec<RecordView>,
    pub checkpoint: Option<CheckpointCoverage>,
    pub principal: String,
    pub role: Option<Role>,
}

/// Fetches pages of `op(cursor, page_limit)` until the last page or `limit` records.
pub async fn fetch_records(
    client: &ReplayClient,
    limit: Option<u64>,
    progress: &ProgressBar,
    op: impl Fn(Option<String>, Option<usize>) -> Operation,
) -> Result<RecordPages, DjError> {
    let mut pages = RecordPages::default();
    let mut cursor = None;
    let mut guard = CursorGuard::default();
    loop {
        let remaining = limit.map(|l| l.saturating_sub(pages.records.len() as u64));
        let page_limit =
            remaining.map(|r| usize::try_from(r).unwrap_or(usize::MAX).min(DEFAULT_PAGE));
        let request = op(cursor.take(), page_limit);
        let name = request.name();
        let reply = client.call(request).await?;
        let response = typed(&reply, client.function(), name)?;
        let Answer::Records(page) = &response.answer else {
            return Err(wrong_answer(&reply, client.function(), name));
        };
        pages.principal = response.principal.clone();
        pages.role = response.role;
        if page.checkpoint.is_some() {
            pages.checkpoint = page.checkpoint.clone();
        }
        pages.records.extend(page.records.iter().cloned());
        let next = guard.next(page.next_cursor.clone(), client.function(), name)?;
        pages.replies.push(reply);
        progress.set_position(pages.records.len() as u64);
        if let Some(l) = limit {
            if pages.records.len() as u64 >= l {
                pages
                    .records
                    .truncate(usize::try_from(l).unwrap_or(usize::MAX));
                break;
            }
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(pages)
}

/// Access events gathered over pages.
#[derive(Default)]
pub struct AccessPages {
    pub replies: Vec<Reply>,
    pub events: Vec<AccessEvent>,
    pub principal: String,
    pub role: Option<Role>,
}

pub async fn fetch_access(
    client: &ReplayClient,
    range: TimeRange,
    progress: &ProgressBar,
) -> Result<AccessPages, DjError> {
    let mut pages = AccessPages::default();
    let mut cursor = None;
    let mut guard = CursorGuard::default();
    loop {
        let request = Operation::AccessLog {
            range,
            limit: None,
            cursor: cursor.take(),
        };
        let name = request.name();
        let reply = client.call(request).await?;
        let response = typed(&reply, client.function(), name)?;
        let Answer::Access(page) = &response.answer else {
            return Err(wrong_answer(&reply, client.function(), name));
        };
        pages.principal = response.principal.clone();
        pages.role = response.role;
        pages.events.extend(page.events.iter().cloned());
        let next = guard.next(page.next_cursor.clone(), client.function(), name)?;
        pages.replies.push(reply);
        progress.set_position(pages.events.len() as u64);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_cursor_stops_paging() {
        let mut guard = CursorGuard::default();
        assert_eq!(
            guard.next(Some("a".into()), "f", "op").unwrap(),
            Some("a".into())
        );
        assert_eq!(guard.next(None, "f", "op").unwrap(), None);
        assert!(guard.next(Some("a".into()), "f", "op").is_err());
    }
}
