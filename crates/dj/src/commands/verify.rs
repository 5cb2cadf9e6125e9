//! `dj verify`: the integrity of the tenant's chain, or of the blocks of a range.
//!
//! The report is read from the answer's JSON (see [`crate::render::audit`]). Exit 1 when the
//! function found faults, 2 when its answer does not say (`ok` missing).

use journal_core::replay::api::Operation;

use super::Ctx;
use crate::cli::RangeArgs;
use crate::error::{DjError, EXIT_NEGATIVE};
use crate::out;
use crate::render::{audit, table};
use crate::time_arg;

pub async fn run(ctx: &Ctx, args: RangeArgs) -> Result<u8, DjError> {
    let range = time_arg::range(args.from, args.to)?;
    let client = ctx.client().await?;
    let op = Operation::Verify { range };
    let name = op.name();
    let reply = client.call(op).await?;
    if reply.answer_kind() != "verify" {
        return Err(super::wrong_answer(&reply, client.function(), name));
    }
    let report = audit::answer_body(&reply.raw);
    let ok = audit::ok(&report);
    if ctx.global.json {
        out::json(&reply.raw);
    } else {
        let style = ctx.style;
        let faults = audit::faults(&report);
        let headline = match ok {
            Some(true) => style.good(&format!(
                "OK: no faults in {} for tenant {}",
                time_arg::describe(&range),
                client.context().tenant
            )),
            Some(false) => style.bad(&format!(
                "FAULTS: {} fault(s) in {} for tenant {}",
                faults.len(),
                time_arg::describe(&range),
                client.context().tenant
            )),
            None => style.warn("the verify answer has no `ok`"),
        };
        out::line(headline);
        let counters = audit::counters(&report);
        if !counters.is_empty() {
            out::line(table::key_values(&counters).to_string());
        }
        if !faults.is_empty() {
            out::line(table::faults(&faults, style).to_string());
        }
        if let Some(access_id) = reply.raw.get("access_id").and_then(|v| v.as_str()) {
            out::line(style.dim(&format!("access {access_id}")));
        }
    }
    match ok {
        Some(true) => Ok(0),
        Some(false) => Ok(EXIT_NEGATIVE),
        None => Err(DjError::Unexpected {
            function: client.function().to_string(),
            op: name,
            detail:
                "the verify answer has no boolean `ok`; cannot tell whether the journal verified"
                    .into(),
        }),
    }
}
