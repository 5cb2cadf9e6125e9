//! Mapping of SDK errors onto [`PortError`]: transient when a later retry may succeed, permanent
//! when the request or the configuration is wrong. Messages name the operation and the
//! table/bucket/queue/key involved, never attribute values or key material.

use std::error::Error;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use journal_core::ports::PortError;

/// Error codes that mean "try again later" across DynamoDB, S3, SQS, KMS and Secrets Manager.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "InternalServerError",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "TransactionConflictException",
    "TransactionInProgressException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
    "LimitExceededException",
    "InternalServiceError",
];

/// Whether an error code (or HTTP status) of a service answer is worth retrying.
pub(crate) fn is_transient_code(code: Option<&str>, status: Option<u16>) -> bool {
    if let Some(code) = code {
        if TRANSIENT_CODES.contains(&code) {
            return true;
        }
    }
    matches!(status, Some(s) if s >= 500 || s == 429)
}

/// Classifies an SDK error of operation `op` on `target` (e.g. `(table t, pk D#a#b)`).
pub(crate) fn sdk_error<E>(op: &str, target: &str, err: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let op = format!("{op} {target}");
    let detail = DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            PortError::transient(op, detail)
        }
        SdkError::ConstructionFailure(_) => PortError::permanent(op, detail),
        SdkError::ResponseError(r) => {
            // An answer that could not be parsed (a proxy page, a truncated body): a client error
            // status still means the request was refused; anything else may pass.
            let status = r.raw().status().as_u16();
            if (400..500).contains(&status) && status != 429 {
                PortError::permanent(op, detail)
            } else {
                PortError::transient(op, detail)
            }
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            if is_transient_code(err.code(), Some(status)) {
                PortError::transient(op, detail)
            } else {
                PortError::permanent(op, detail)
            }
        }
        _ => PortError::transient(op, detail),
    }
}

/// The error code of a service answer, if it was one.
pub(crate) fn code_of<E>(err: &SdkError<E, HttpResponse>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

/// A conditional write's answer: `Ok(true)` written, `Ok(false)` when its condition did not
/// hold, any other failure an error of `op` on `target`.
pub(crate) fn condition_held<T, E>(
    sent: Result<T, SdkError<E, HttpResponse>>,
    op: &str,
    target: &str,
) -> Result<bool, PortError>
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    match sent {
        Ok(_) => Ok(true),
        Err(err) if code_of(&err) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(err) => Err(sdk_error(op, target, &err)),
    }
}

/// HTTP status of a service answer, if there was one.
pub(crate) fn status_of<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        assert!(is_transient_code(Some("ThrottlingException"), Some(400)));
        assert!(is_transient_code(Some("Whatever"), Some(503)));
        assert!(is_transient_code(None, Some(429)));
        assert!(!is_transient_code(Some("ValidationException"), Some(400)));
        assert!(!is_transient_code(Some("AccessDeniedException"), Some(400)));
        assert!(!is_transient_code(
            Some("ResourceNotFoundException"),
            Some(400)
        ));
    }
}
