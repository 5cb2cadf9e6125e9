//! `dj`: the Decision Journal command line for auditors and operators.
//!
//! Every read goes through the replay function (Lambda Invoke), which journals it. See
//! `dj --help` and `crates/journal-core/src/replay/api.rs` for the wire format.

mod cli;
mod commands;
mod error;
mod identity;
mod invoke;
mod out;
mod render;
mod style;
mod time_arg;

use std::process::ExitCode;

use clap::Parser;

use crate::error::{DjError, EXIT_ERROR};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            match &err {
                DjError::Answer { .. } => eprintln!("{err}"),
                _ => eprintln!("error: {err}"),
            }
            ExitCode::from(err.exit_code())
        }
    }
}
