//! `dj access`: the access journal of a range, every page.

use super::paging::{fetch_access, spinner};
use super::{raw_array, Ctx};
use crate::cli::RangeArgs;
use crate::error::DjError;
use crate::out;
use crate::render::table;
use crate::time_arg;

pub async fn run(ctx: &Ctx, args: RangeArgs) -> Result<u8, DjError> {
    let range = time_arg::range(args.from, args.to)?;
    let client = ctx.client().await?;
    let progress = spinner("fetching access events");
    let fetched = fetch_access(&client, range, &progress).await;
    progress.finish_and_clear();
    let pages = fetched?;
    if ctx.global.json {
        out::json(&raw_array(&pages.replies));
        return Ok(0);
    }
    if pages.events.is_empty() {
        out::line("no access events");
    } else {
        out::line(table::access_events(&pages.events, ctx.style).to_string());
    }
    out::line(ctx.style.dim(&format!(
        "{} access event(s) in {} (this read is journaled too)",
        pages.events.len(),
        time_arg::describe(&range)
    )));
    Ok(0)
}
