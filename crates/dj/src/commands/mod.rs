//! One module per command; each returns the process exit code or a [`DjError`].

pub mod access;
pub mod metrics;
pub mod paging;
pub mod query;
pub mod replay;
pub mod report;
pub mod retention;
pub mod send;
pub mod verify;
pub mod what_if;

use journal_core::replay::api::Response;
use serde_json::Value;

use crate::cli::{Cli, Command, Global};
use crate::error::DjError;
use crate::invoke::{ReadContext, ReplayClient, Reply};
use crate::out;
use crate::style::Style;

/// What every command gets: the global options and how to print.
pub struct Ctx {
    pub global: Global,
    pub style: Style,
}

impl Ctx {
    /// Checks tenant and purpose, then sets up the client (no request is sent yet).
    pub async fn client(&self) -> Result<ReplayClient, DjError> {
        let context = ReadContext::from_global(&self.global)?;
        ReplayClient::connect(&self.global, context).await
    }
}

pub async fn run(cli: Cli) -> Result<u8, DjError> {
    let ctx = Ctx {
        style: Style::detect(cli.global.no_color),
        global: cli.global,
    };
    match cli.command {
        Command::Replay(args) => replay::run(&ctx, args).await,
        Command::Query(args) => query::run(&ctx, args).await,
        Command::Verify(args) => verify::run(&ctx, args).await,
        Command::WhatIf(args) => what_if::run(&ctx, args).await,
        Command::Access(args) => access::run(&ctx, args).await,
        Command::Metrics(args) => metrics::run(&ctx, args).await,
        Command::Report(args) => report::run(&ctx, args).await,
        Command::Send(args) => send::run(&ctx, args).await,
        Command::Retention(cmd) => retention::run(&ctx, cmd).await,
    }
}

/// The typed response of `reply`; when it does not parse, the raw JSON is printed (so nothing
/// the function said is lost) and the parse error is returned.
pub fn typed<'a>(
    reply: &'a Reply,
    function: &str,
    op: &'static str,
) -> Result<&'a Response, DjError> {
    match &reply.response {
        Ok(r) => Ok(r),
        Err(e) => {
            out::json(&reply.raw);
            Err(DjError::Unexpected {
                function: function.to_string(),
                op,
                detail: format!(
                    "cannot read the `{}` answer ({e}); printed it as JSON above",
                    reply.answer_kind()
                ),
            })
        }
    }
}

/// An answer of the wrong kind for the operation.
pub fn wrong_answer(reply: &Reply, function: &str, op: &'static str) -> DjError {
    DjError::Unexpected {
        function: function.to_string(),
        op,
        detail: format!("answer `{}`", reply.answer_kind()),
    }
}

/// `--json` output of several replies: a JSON array of the raw responses.
pub fn raw_array(replies: &[Reply]) -> Value {
    Value::Array(replies.iter().map(|r| r.raw.clone()).collect())
}

/// `principal (role)` for footers.
pub fn caller(response: &Response) -> String {
    match response.role {
        Some(role) => format!("{} ({role})", response.principal),
        None => format!("{} (no role)", response.principal),
    }
}
