//! What can go wrong, as one-line messages, and the exit code each one gets.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | done, and the answer is negative: `verify` found faults, `send` had entries refused |
//! | 2 | an error: bad input, unreachable function or queue, a failed function, a refused request |
//! | 3 | the function denied the caller (no role, or a principal it does not trust) |

use std::fmt;
use std::path::PathBuf;

/// Exit code of a command whose answer is negative (faults found, entries refused).
pub const EXIT_NEGATIVE: u8 = 1;
/// Exit code of errors, usage errors included (clap uses 2 as well).
pub const EXIT_ERROR: u8 = 2;
/// Exit code when the replay function denied the request.
pub const EXIT_DENIED: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum DjError {
    /// Bad or missing input that clap cannot check on its own.
    #[error("{0}")]
    Usage(String),

    /// The Invoke call itself failed (endpoint unreachable, credentials, throttling …).
    #[error("invoking function `{function}` at {endpoint} ({op}) failed: {detail}")]
    Invoke {
        function: String,
        endpoint: String,
        op: &'static str,
        detail: String,
    },

    /// The function ran and failed (a Lambda function error, not an answer).
    #[error("function `{function}` failed ({op}): {detail}")]
    Function {
        function: String,
        op: &'static str,
        detail: String,
    },

    /// The function answered with `answer: error`.
    #[error("error ({code}): {message}")]
    Answer { code: String, message: String },

    /// The function's answer is not what the operation should get back.
    #[error("function `{function}` gave an unexpected answer to {op}: {detail}")]
    Unexpected {
        function: String,
        op: &'static str,
        detail: String,
    },

    #[error("could not prove the caller's identity to {sts_url}: {detail} (a local function that trusts stated principals takes --no-identity --principal NAME)")]
    Identity { sts_url: String, detail: String },

    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("sending to queue {queue_url} failed: {detail}")]
    Queue { queue_url: String, detail: String },
}

impl DjError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DjError::Answer { code, .. } if code == "denied" => EXIT_DENIED,
            _ => EXIT_ERROR,
        }
    }

    pub fn usage(message: impl fmt::Display) -> Self {
        DjError::Usage(message.to_string())
    }
}

/// An error and its sources as one line, `outer: inner: innermost`, leaving out a source whose
/// text the line already holds (SDK errors often repeat their cause).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = e.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chains_are_one_line() {
        let e = Outer(std::io::Error::other("inner\ntext"));
        assert_eq!(error_chain(&e), "outer: inner text");
    }

    #[test]
    fn denied_answers_exit_3_and_other_errors_exit_2() {
        let denied = DjError::Answer {
            code: "denied".into(),
            message: "no role".into(),
        };
        assert_eq!(denied.exit_code(), EXIT_DENIED);
        assert_eq!(denied.to_string(), "error (denied): no role");
        let not_found = DjError::Answer {
            code: "not_found".into(),
            message: "x".into(),
        };
        assert_eq!(not_found.exit_code(), EXIT_ERROR);
        assert_eq!(DjError::usage("bad").exit_code(), EXIT_ERROR);
    }
}
