//! The command line: global options and one subcommand per question.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use journal_core::timestamp::Timestamp;

use crate::time_arg::{parse_day, parse_time};

const AFTER_HELP: &str = "\
Every read is a request to the replay function through the Lambda Invoke API, and the function
journals it (who, role, purpose, what, when). Times are RFC 3339 (2026-03-15T10:23:45Z) or dates
(2026-03-15 = midnight UTC); ranges are from <= t < to.

Locally, `cargo lambda watch` serves the function at http://127.0.0.1:9000:
  dj --endpoint-url http://127.0.0.1:9000 --no-identity --principal me \\
     --tenant bank_456 --purpose 'case 42' replay <record-id>

Exit codes: 0 done; 1 the answer is negative (verify or report found faults, a record's proof
failed, a re-run differed, send had refused entries); 2 error (usage included); 3 denied.";

#[derive(Debug, Parser)]
#[command(
    name = "dj",
    version,
    about = "Ask the Decision Journal's replay function: look up, query, verify, re-run and export journaled AI decisions.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (before or after the command name).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Tenant whose journal is read.
    #[arg(long, env = "DJ_TENANT", global = true, value_name = "TENANT")]
    pub tenant: Option<String>,

    /// Why you read (a ticket, a case number, a sentence); recorded in the access journal.
    #[arg(long, env = "DJ_PURPOSE", global = true, value_name = "TEXT")]
    pub purpose: Option<String>,

    /// Name or ARN of the replay function.
    #[arg(
        long = "function",
        env = "DJ_REPLAY_FUNCTION",
        default_value = "replay",
        global = true,
        value_name = "NAME"
    )]
    pub function: String,

    /// Lambda endpoint override, e.g. the local emulator http://127.0.0.1:9000.
    #[arg(long, env = "DJ_LAMBDA_ENDPOINT", global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// State the caller's principal (honoured only by a function configured to trust it, locally).
    #[arg(long, env = "DJ_PRINCIPAL", global = true, value_name = "PRINCIPAL")]
    pub principal: Option<String>,

    /// Send no proof of IAM identity (for a local function that trusts --principal).
    #[arg(long, env = "DJ_NO_IDENTITY", global = true)]
    pub no_identity: bool,

    /// STS endpoint the identity proof is signed for [default: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else the region's STS].
    #[arg(long, env = "DJ_STS_URL", global = true, value_name = "URL")]
    pub sts_url: Option<String>,

    /// Print the function's raw JSON responses instead of tables (a JSON array when a command makes several calls).
    #[arg(long, global = true)]
    pub json: bool,

    /// No colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Look up one record by id with its proof, outcomes and reviews; optionally re-run its model.
    Replay(ReplayArgs),
    /// List records of a subject, of a model, or all of them, in a time range.
    Query(QueryArgs),
    /// Check the integrity of the tenant's chain (or the blocks of a time range).
    Verify(RangeArgs),
    /// Re-decide one decision, or a model's decisions in a range, with another threshold or model.
    WhatIf(WhatIfArgs),
    /// Show the access journal: who read what, when and why.
    Access(RangeArgs),
    /// Daily metrics per model: decisions by label, confidence, review and override shares, outcome rates.
    Metrics(MetricsArgs),
    /// Export a period for auditors: report.html, report.json, records.csv.
    Report(ReportArgs),
    /// Send records to the ingest queue (from a JSON Lines file, or generated).
    Send(SendArgs),
    /// Retention: what is due (plan), archive and expire it (run), the policy, legal holds,
    /// the erasure of a subject.
    #[command(subcommand)]
    Retention(RetentionCommand),
}

/// Retention commands go to the retention function (`--retention-function`), not replay.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Dry run: every file that would be archived, deleted, kept by a hold or left (and why).
    Plan(RetentionScope),
    /// Archive and expire what is due now; prints the run's signed report key per tenant.
    Run(RetentionScope),
    /// Print the policy in force, or publish a new version from a file (validated whole).
    Policy(PolicyArgs),
    /// Place a legal hold: nothing it covers expires until it is released.
    Hold(HoldArgs),
    /// Lift a legal hold.
    Release(ReleaseArgs),
    /// Erase a subject (GDPR art. 17): key shredded, rows and index entries removed, a signed
    /// receipt that names no personal data. Refused while a legal hold covers the subject.
    Erase(EraseArgs),
}

#[derive(Debug, Args)]
pub struct EraseArgs {
    #[command(flatten)]
    pub function: RetentionFunction,
    /// The subject's raw id: the function turns it into the subject ref; the id is not stored.
    #[arg(long, value_name = "SUBJECT_ID")]
    pub subject: String,
    /// List the files and records that would be removed, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Which function retention commands invoke.
#[derive(Debug, Args)]
pub struct RetentionFunction {
    /// Name or ARN of the retention function.
    #[arg(
        long = "retention-function",
        env = "DJ_RETENTION_FUNCTION",
        default_value = "retention",
        value_name = "NAME"
    )]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct RetentionScope {
    #[command(flatten)]
    pub function: RetentionFunction,
    /// Only this tenant (default: --tenant if given, else every tenant).
    #[arg(long = "only", value_name = "TENANT")]
    pub only: Option<String>,
    /// Files listed per tenant (the stored report lists all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub function: RetentionFunction,
    /// Publish this document as the next version.
    #[arg(long, value_name = "FILE.json")]
    pub set: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub function: RetentionFunction,
    /// The hold's id (a case or matter number).
    #[arg(long)]
    pub id: String,
    /// Why (recorded in the policy).
    #[arg(long)]
    pub reason: String,
    /// A subject's raw id: the function turns it into the subject ref; the id is not stored.
    #[arg(long, value_name = "SUBJECT_ID")]
    pub subject: Option<String>,
    /// A model (with --model-version).
    #[arg(long, requires = "model_version")]
    pub model: Option<String>,
    #[arg(long, requires = "model")]
    pub model_version: Option<String>,
    /// Decisions from this time (inclusive).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub from: Option<Timestamp>,
    /// Decisions before this time.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub to: Option<Timestamp>,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub function: RetentionFunction,
    #[arg(long)]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Decision, outcome or review id.
    pub record_id: String,
    /// Also re-run the recorded model on the recorded features and compare.
    #[arg(long)]
    pub reexecute: bool,
    /// Features to re-run on (a JSON object), checked against the record's features_hmac.
    #[arg(long, requires = "reexecute", value_name = "FILE.json")]
    pub features: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct RangeArgs {
    /// Start of the range (inclusive).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub from: Option<Timestamp>,
    /// End of the range (exclusive).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub to: Option<Timestamp>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("selector").required(true).args(["subject", "model", "all"])))]
pub struct QueryArgs {
    /// Raw subject id (turned into its reference inside the function, never stored).
    #[arg(long, value_name = "ID")]
    pub subject: Option<String>,
    /// Model name.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Model version (with --model; every version when absent).
    // `conflicts_with`, not `requires = "model"`: clap waives a requirement on a member of an
    // exclusive group when another member is present.
    #[arg(long = "version", id = "model_version", conflicts_with_all = ["subject", "all"], value_name = "V")]
    pub version: Option<String>,
    /// Every record in the range.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Most records to fetch (all pages when absent).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub limit: Option<u64>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["decision", "model"])))]
#[command(group(ArgGroup::new("change").required(true).multiple(true).args(["threshold", "model_sha256"])))]
pub struct WhatIfArgs {
    /// One decision.
    #[arg(long, value_name = "ID")]
    pub decision: Option<String>,
    /// A model's decisions in --from .. --to.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Model version (with --model; every version when absent).
    #[arg(
        long = "version",
        id = "model_version",
        conflicts_with = "decision",
        value_name = "V"
    )]
    pub version: Option<String>,
    /// Start of the range (required with --model).
    #[arg(long, value_parser = parse_time, value_name = "TIME", conflicts_with = "decision", required_unless_present = "decision")]
    pub from: Option<Timestamp>,
    /// End of the range (required with --model).
    #[arg(long, value_parser = parse_time, value_name = "TIME", conflicts_with = "decision", required_unless_present = "decision")]
    pub to: Option<Timestamp>,
    /// The threshold to re-decide with.
    #[arg(long, value_name = "X")]
    pub threshold: Option<f64>,
    /// SHA-256 of another registered model artifact to re-decide with.
    #[arg(long, value_name = "SHA")]
    pub model_sha256: Option<String>,
    /// List every flip (a terminal shows the first 50 otherwise).
    #[arg(long)]
    pub all_flips: bool,
}

/// Days are UTC days the journal received the records (the metrics' partition dates).
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_day, value_name = "DATE")]
    pub from: String,
    /// Last day, included (at most 366 days in all) [default: --from].
    #[arg(long, value_parser = parse_day, value_name = "DATE")]
    pub to: Option<String>,
    /// Only this model (every version).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Start of the period (inclusive).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub from: Timestamp,
    /// End of the period (exclusive).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub to: Timestamp,
    /// Directory to write report.html, report.json and records.csv into (created if missing).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["file", "generate"])))]
pub struct SendArgs {
    /// Records, one JSON object per line (`-` reads standard input); each line is sent as is.
    #[arg(long, value_name = "records.jsonl")]
    pub file: Option<PathBuf>,
    /// Generate N synthetic records (decisions, outcomes, reviews) ending just before now, for
    /// --tenant only when given.
    #[arg(long, value_name = "N")]
    pub generate: Option<usize>,
    /// Seed of the generated stream (the same seed gives the same records).
    #[arg(long, conflicts_with = "file", default_value_t = 42, value_name = "S")]
    pub seed: u64,
    /// occurred_at of the generated stream's start [default: so the last record is a minute old].
    #[arg(long, conflicts_with = "file", value_parser = parse_time, value_name = "TIME")]
    pub start: Option<Timestamp>,
    /// The ingest queue.
    #[arg(long, env = "DJ_QUEUE_URL", value_name = "URL")]
    pub queue_url: String,
    /// AWS endpoint override for SQS (e.g. a local endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_come_after_the_command_too() {
        let cli = Cli::try_parse_from([
            "dj",
            "replay",
            "X",
            "--purpose",
            "p",
            "--tenant",
            "t",
            "--no-identity",
        ])
        .unwrap();
        assert_eq!(cli.global.purpose.as_deref(), Some("p"));
        assert_eq!(cli.global.tenant.as_deref(), Some("t"));
        assert!(cli.global.no_identity);
        assert_eq!(cli.global.function, "replay");
    }

    #[test]
    fn query_takes_exactly_one_selector() {
        assert!(Cli::try_parse_from(["dj", "query"]).is_err());
        assert!(Cli::try_parse_from(["dj", "query", "--all", "--subject", "s"]).is_err());
        assert!(Cli::try_parse_from(["dj", "query", "--version", "1", "--subject", "s"]).is_err());
        assert!(Cli::try_parse_from(["dj", "query", "--version", "1", "--all"]).is_err());
        assert!(Cli::try_parse_from(["dj", "query", "--version", "1"]).is_err());
        assert!(Cli::try_parse_from(["dj", "query", "--version", "1", "--model", "m"]).is_ok());
        let cli =
            Cli::try_parse_from(["dj", "query", "--model", "m", "--from", "2026-03-01"]).unwrap();
        match cli.command {
            Command::Query(q) => {
                assert_eq!(q.model.as_deref(), Some("m"));
                assert_eq!(
                    q.range.from.map(|t| t.to_string()).as_deref(),
                    Some("2026-03-01T00:00:00.000Z")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retention_commands_parse_and_a_model_hold_needs_its_version() {
        let cli = Cli::try_parse_from(["dj", "retention", "plan", "--only", "bank_1"]).unwrap();
        match cli.command {
            Command::Retention(RetentionCommand::Plan(s)) => {
                assert_eq!((s.only.as_deref(), s.limit), (Some("bank_1"), 20))
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "dj",
            "--tenant",
            "bank_1",
            "retention",
            "hold",
            "--id",
            "case-1",
            "--reason",
            "court",
            "--subject",
            "user_9",
            "--from",
            "2026-01-01",
        ])
        .unwrap();
        match cli.command {
            Command::Retention(RetentionCommand::Hold(h)) => {
                assert_eq!(
                    (h.id.as_str(), h.subject.as_deref()),
                    ("case-1", Some("user_9"))
                );
                assert!(h.from.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from([
            "dj",
            "retention",
            "hold",
            "--id",
            "h",
            "--reason",
            "r",
            "--model",
            "credit-risk"
        ])
        .is_err());
        assert!(Cli::try_parse_from(["dj", "retention", "erase-everything"]).is_err());
        let cli = Cli::try_parse_from([
            "dj",
            "--tenant",
            "bank_1",
            "retention",
            "erase",
            "--subject",
            "user_9",
            "--dry-run",
        ])
        .unwrap();
        match cli.command {
            Command::Retention(RetentionCommand::Erase(e)) => {
                assert_eq!((e.subject.as_str(), e.dry_run), ("user_9", true));
            }
            other => panic!("{other:?}"),
        }
        // An erasure names its subject.
        assert!(Cli::try_parse_from(["dj", "retention", "erase"]).is_err());
    }

    #[test]
    fn metrics_takes_days_and_the_last_defaults_to_the_first() {
        let cli = Cli::try_parse_from(["dj", "metrics", "--from", "2026-03-01"]).unwrap();
        match cli.command {
            Command::Metrics(m) => {
                assert_eq!((m.from.as_str(), m.to, m.model), ("2026-03-01", None, None))
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["dj", "metrics"]).is_err());
        assert!(Cli::try_parse_from(["dj", "metrics", "--from", "2026-03-01T00:00:00Z"]).is_err());
        assert!(Cli::try_parse_from(["dj", "metrics", "--from", "2026-02-30"]).is_err());
    }

    #[test]
    fn what_if_needs_a_target_a_change_and_a_range_for_models() {
        assert!(Cli::try_parse_from(["dj", "what-if", "--decision", "d"]).is_err());
        assert!(
            Cli::try_parse_from(["dj", "what-if", "--decision", "d", "--threshold", "0.5"]).is_ok()
        );
        assert!(
            Cli::try_parse_from(["dj", "what-if", "--model", "m", "--threshold", "0.5"]).is_err()
        );
        assert!(Cli::try_parse_from([
            "dj",
            "what-if",
            "--decision",
            "d",
            "--from",
            "2026-03-01",
            "--threshold",
            "0.5"
        ])
        .is_err());
        assert!(Cli::try_parse_from([
            "dj",
            "what-if",
            "--model",
            "m",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
            "--model-sha256",
            "ab"
        ])
        .is_ok());
    }
}
