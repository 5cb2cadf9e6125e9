//! `dj query`: a subject's, a model's, or all records in a range, every page. Exit 1 when a
//! record's proof failed.

use journal_core::replay::api::Operation;

use super::paging::{fetch_records, spinner};
use super::{raw_array, Ctx};
use crate::cli::QueryArgs;
use crate::error::{DjError, EXIT_NEGATIVE};
use crate::out;
use crate::render::rows::RecordRow;
use crate::render::table;
use crate::time_arg;

pub async fn run(ctx: &Ctx, args: QueryArgs) -> Result<u8, DjError> {
    let range = time_arg::range(args.range.from, args.range.to)?;
    let client = ctx.client().await?;
    let progress = spinner("fetching records");
    let op = |cursor: Option<String>, limit: Option<usize>| {
        if let Some(subject_id) = &args.subject {
            Operation::QuerySubject {
                subject_id: subject_id.clone(),
                range,
                limit,
                cursor,
            }
        } else if let Some(model_name) = &args.model {
            Operation::QueryModel {
                model_name: model_name.clone(),
                model_version: args.version.clone(),
                range,
                limit,
                cursor,
            }
        } else {
            Operation::QueryRange {
                range,
                limit,
                cursor,
            }
        }
    };
    let fetched = fetch_records(&client, args.limit, &progress, op).await;
    progress.finish_and_clear();
    let pages = fetched?;

    let rows: Vec<RecordRow> = pages.records.iter().map(RecordRow::from_view).collect();
    let failed = rows.iter().filter(|r| r.verified == Some(false)).count();
    let exit = if failed > 0 { EXIT_NEGATIVE } else { 0 };
    if ctx.global.json {
        out::json(&raw_array(&pages.replies));
        return Ok(exit);
    }
    if rows.is_empty() {
        out::line("no records");
    } else {
        out::line(table::records(&rows, ctx.style).to_string());
    }
    let mut footer = format!(
        "{} record(s) in {} · {} page(s) · read as {}",
        rows.len(),
        time_arg::describe(&range),
        pages.replies.len(),
        match pages.role {
            Some(role) => format!("{} ({role})", pages.principal),
            None => format!("{} (no role)", pages.principal),
        }
    );
    if let Some(cp) = &pages.checkpoint {
        if let Some(seq) = cp.covered_seq {
            footer.push_str(&format!(" · checkpointed up to chain seq {seq}"));
        }
    }
    out::line(ctx.style.dim(&footer));
    if failed > 0 {
        out::line(
            ctx.style
                .bad(&format!("{failed} record(s) failed their proof")),
        );
        return Ok(crate::error::EXIT_NEGATIVE);
    }
    Ok(0)
}
