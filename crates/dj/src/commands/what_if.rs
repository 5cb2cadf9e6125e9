//! `dj what-if`: re-decide one decision, or a model's decisions in a range page by page, with
//! another threshold and/or model artifact, and sum what would have flipped.

use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressStyle};
use journal_core::replay::api::{Answer, Flip, Operation, WhatIfPage};
use serde::Serialize;
use serde_json::json;

use super::paging::{spinner, CursorGuard};
use super::{caller, typed, wrong_answer, Ctx};
use crate::cli::WhatIfArgs;
use crate::error::DjError;
use crate::invoke::Reply;
use crate::out;
use crate::render::table::{new_table, number_cell};
use crate::render::values::float;
use crate::style::Style;
use crate::time_arg;

/// Flips listed on a terminal unless `--all-flips`.
const FLIPS_ON_TERMINAL: usize = 50;

/// What-if pages summed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WhatIfTotals {
    pub pages: u64,
    pub evaluated: u64,
    pub flipped: u64,
    pub skipped: BTreeMap<String, u64>,
    pub transitions: BTreeMap<String, u64>,
    /// Decisions in the whole range, as the function counted them (largest seen).
    pub total_in_range: u64,
    pub flips: Vec<Flip>,
}

impl WhatIfTotals {
    pub fn add(&mut self, page: &WhatIfPage) {
        self.pages += 1;
        self.evaluated += page.evaluated;
        self.flipped += page.flipped;
        for (reason, n) in &page.skipped {
            *self.skipped.entry(reason.clone()).or_insert(0) += n;
        }
        for (transition, n) in &page.transitions {
            *self.transitions.entry(transition.clone()).or_insert(0) += n;
        }
        self.total_in_range = self.total_in_range.max(page.total_in_range);
        self.flips.extend(page.flips.iter().cloned());
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Decisions looked at (evaluated or skipped), for progress.
    pub fn done(&self) -> u64 {
        self.evaluated + self.skipped_total()
    }
}

pub async fn run(ctx: &Ctx, args: WhatIfArgs) -> Result<u8, DjError> {
    let range = time_arg::range(args.from, args.to)?;
    let client = ctx.client().await?;
    let progress = spinner("re-deciding");
    let fetched = fetch(&client, &args, range, &progress).await;
    progress.finish_and_clear();
    let (totals, replies) = fetched?;

    if ctx.global.json {
        out::json(&json!({
            "totals": totals,
            "responses": replies.iter().map(|r| r.raw.clone()).collect::<Vec<_>>(),
        }));
        return Ok(0);
    }
    let shown = if ctx.style.terminal && !args.all_flips {
        FLIPS_ON_TERMINAL
    } else {
        usize::MAX
    };
    out::line(render(&totals, shown, ctx.style));
    if let Some(last) = replies.last().and_then(|r| r.response.as_ref().ok()) {
        out::line(ctx.style.dim(&format!(
            "read as {} · {} page(s), each journaled",
            caller(last),
            replies.len()
        )));
    }
    Ok(0)
}

async fn fetch(
    client: &crate::invoke::ReplayClient,
    args: &WhatIfArgs,
    range: journal_core::replay::api::TimeRange,
    progress: &ProgressBar,
) -> Result<(WhatIfTotals, Vec<Reply>), DjError> {
    let mut totals = WhatIfTotals::default();
    let mut replies = Vec::new();
    let mut cursor = None;
    let mut guard = CursorGuard::default();
    loop {
        let op = Operation::WhatIf {
            decision_id: args.decision.clone(),
            model_name: args.model.clone(),
            model_version: args.version.clone(),
            range,
            threshold: args.threshold,
            model_sha256: args.model_sha256.clone(),
            limit: None,
            cursor: cursor.take(),
        };
        let name = op.name();
        let reply = client.call(op).await?;
        let response = typed(&reply, client.function(), name)?;
        let Answer::WhatIf(page) = &response.answer else {
            return Err(wrong_answer(&reply, client.function(), name));
        };
        if totals.pages == 0 && page.total_in_range > 0 {
            progress.set_length(page.total_in_range);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} decisions re-decided ({eta} left)",
            ) {
                progress.set_style(style);
            }
        }
        totals.add(page);
        progress.set_position(totals.done());
        let next = guard.next(page.next_cursor.clone(), client.function(), name)?;
        replies.push(reply);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok((totals, replies))
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Totals, transitions and the first `shown` flips, as text.
pub fn render(t: &WhatIfTotals, shown: usize, style: Style) -> String {
    let mut parts = Vec::new();
    let mut summary = new_table(&["", "decisions"]);
    summary.add_row(vec![
        comfy_table::Cell::new("in range"),
        number_cell(t.total_in_range),
    ]);
    summary.add_row(vec![
        comfy_table::Cell::new("re-decided"),
        number_cell(t.evaluated),
    ]);
    summary.add_row(vec![
        comfy_table::Cell::new(if t.flipped > 0 {
            style.bad("would flip")
        } else {
            "would flip".to_string()
        }),
        number_cell(format!(
            "{} ({})",
            t.flipped,
            percent(t.flipped, t.evaluated)
        )),
    ]);
    for (reason, n) in &t.skipped {
        summary.add_row(vec![
            comfy_table::Cell::new(format!("skipped: {reason}")),
            number_cell(n),
        ]);
    }
    parts.push(summary.to_string());

    if !t.transitions.is_empty() {
        let mut transitions = new_table(&["original → new", "decisions"]);
        for (k, n) in &t.transitions {
            transitions.add_row(vec![comfy_table::Cell::new(k), number_cell(n)]);
        }
        parts.push(transitions.to_string());
    }
    if !t.flips.is_empty() {
        let mut flips = new_table(&["decision id", "occurred at", "original", "new", "score"]);
        for f in t.flips.iter().take(shown) {
            flips.add_row(vec![
                comfy_table::Cell::new(&f.decision_id),
                comfy_table::Cell::new(f.occurred_at.to_string()),
                comfy_table::Cell::new(&f.original),
                comfy_table::Cell::new(&f.new),
                number_cell(float(f.score)),
            ]);
        }
        parts.push(flips.to_string());
        if t.flips.len() > shown {
            parts.push(style.dim(&format!(
                "… and {} more flip(s) (--all-flips lists them, --json has all)",
                t.flips.len() - shown
            )));
        }
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal_core::timestamp::Timestamp;

    fn page(
        evaluated: u64,
        flipped: u64,
        skipped: &[(&str, u64)],
        transitions: &[(&str, u64)],
        flips: &[&str],
    ) -> WhatIfPage {
        WhatIfPage {
            evaluated,
            flipped,
            skipped: skipped.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            transitions: transitions
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            flips: flips
                .iter()
                .map(|id| Flip {
                    decision_id: id.to_string(),
                    occurred_at: Timestamp::parse("2026-03-01T00:00:00Z").unwrap(),
                    original: "approve".into(),
                    new: "refer".into(),
                    score: Some(0.5),
                })
                .collect(),
            next_cursor: None,
            total_in_range: 10,
        }
    }

    #[test]
    fn pages_sum_counts_maps_and_flips() {
        let mut t = WhatIfTotals::default();
        t.add(&page(4, 1, &[("llm", 1)], &[("approve→refer", 1)], &["d1"]));
        t.add(&page(
            3,
            2,
            &[("llm", 1), ("archived", 1)],
            &[("approve→refer", 1), ("refer→decline", 1)],
            &["d5", "d6"],
        ));
        assert_eq!(t.pages, 2);
        assert_eq!(t.evaluated, 7);
        assert_eq!(t.flipped, 3);
        assert_eq!(t.skipped["llm"], 2);
        assert_eq!(t.skipped["archived"], 1);
        assert_eq!(t.skipped_total(), 3);
        assert_eq!(t.transitions["approve→refer"], 2);
        assert_eq!(t.transitions["refer→decline"], 1);
        assert_eq!(t.total_in_range, 10);
        assert_eq!(t.done(), 10);
        let ids: Vec<&str> = t.flips.iter().map(|f| f.decision_id.as_str()).collect();
        assert_eq!(ids, ["d1", "d5", "d6"]);
    }

    #[test]
    fn rendering_lists_the_first_flips_only_when_asked() {
        let mut t = WhatIfTotals::default();
        t.add(&page(
            3,
            3,
            &[],
            &[("approve→refer", 3)],
            &["d1", "d2", "d3"],
        ));
        let text = render(&t, 2, Style::default());
        assert!(text.contains("3 (100.0%)"), "{text}");
        assert!(text.contains("approve→refer"), "{text}");
        assert!(text.contains("d2"), "{text}");
        assert!(!text.contains("d3"), "{text}");
        assert!(text.contains("1 more flip"), "{text}");
        let all = render(&t, usize::MAX, Style::default());
        assert!(all.contains("d3") && !all.contains("more flip"), "{all}");
    }
}
