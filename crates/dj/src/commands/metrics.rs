//! `dj metrics`: the daily metrics read model for a range of days, one row per day and model.

use journal_core::metrics::days_between;
use journal_core::replay::api::{Answer, Operation};

use super::{caller, typed, wrong_answer, Ctx};
use crate::cli::MetricsArgs;
use crate::error::DjError;
use crate::out;
use crate::render::metrics::date_runs;
use crate::render::table;

pub async fn run(ctx: &Ctx, args: MetricsArgs) -> Result<u8, DjError> {
    let to = args.to.clone().unwrap_or_else(|| args.from.clone());
    // The function checks too; refusing here saves a journaled, failed request.
    days_between(&args.from, &to).map_err(|e| DjError::usage(format!("--from/--to: {e}")))?;
    let client = ctx.client().await?;
    let op = Operation::Metrics {
        from: args.from.clone(),
        to: to.clone(),
        model_name: args.model.clone(),
    };
    let name = op.name();
    let reply = client.call(op).await?;
    if reply.answer_kind() != "metrics" {
        return Err(wrong_answer(&reply, client.function(), name));
    }
    if ctx.global.json {
        out::json(&reply.raw);
        return Ok(0);
    }
    let response = typed(&reply, client.function(), name)?;
    let Answer::Metrics(page) = &response.answer else {
        return Err(wrong_answer(&reply, client.function(), name));
    };
    if page.rows.is_empty() {
        out::line("no metrics");
    } else {
        out::line(table::metrics(&page.rows).to_string());
    }
    if !page.missing_dates.is_empty() {
        out::line(ctx.style.warn(&format!(
            "no metrics for {} day(s): {} (nothing received, or not computed yet)",
            page.missing_dates.len(),
            date_runs(&page.missing_dates)
        )));
    }
    let model = args
        .model
        .as_deref()
        .map(|m| format!(", model {m}"))
        .unwrap_or_default();
    out::line(ctx.style.dim(&format!(
        "{} row(s), {} to {} (UTC days received){model}, tenant {} — access {} as {}",
        page.rows.len(),
        args.from,
        to,
        client.context().tenant,
        response.access_id,
        caller(response)
    )));
    Ok(0)
}
