//! The one door: every read is an Invoke of the replay function.
//!
//! Requests are [`Invocation`]s serialized as the Invoke payload; answers are [`Response`]s. A
//! Lambda function error (`FunctionError`, or a payload with `errorType`/`errorMessage`) and an
//! `answer: error` from the function become [`DjError`]s naming the function and operation.

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_lambda::primitives::Blob;
use journal_core::replay::api::{Invocation, Operation, Request, Response, MAX_PURPOSE_CHARS};
use serde_json::Value;

use crate::cli::Global;
use crate::error::{error_chain, DjError};
use crate::identity::{self, Prover};

pub const PURPOSE_REQUIRED: &str =
    "a stated purpose is required (--purpose or DJ_PURPOSE); it is recorded in the access journal";
pub const TENANT_REQUIRED: &str = "a tenant is required (--tenant or DJ_TENANT)";

/// Region used when the environment names none (local endpoints accept any).
const FALLBACK_REGION: &str = "us-east-1";

/// Tenant and purpose, checked before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadContext {
    pub tenant: String,
    pub purpose: String,
}

impl ReadContext {
    pub fn from_global(global: &Global) -> Result<Self, DjError> {
        let purpose = global
            .purpose
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| DjError::usage(PURPOSE_REQUIRED))?;
        if purpose.chars().count() > MAX_PURPOSE_CHARS {
            return Err(DjError::usage(format!(
                "the stated purpose is longer than {MAX_PURPOSE_CHARS} characters"
            )));
        }
        let tenant = global
            .tenant
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| DjError::usage(TENANT_REQUIRED))?;
        Ok(ReadContext {
            tenant: tenant.to_string(),
            purpose: purpose.to_string(),
        })
    }
}

/// The AWS configuration from the environment, with a region even where none is set.
pub async fn load_aws_config() -> SdkConfig {
    let region = RegionProviderChain::default_provider().or_else(FALLBACK_REGION);
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .load()
        .await
}

/// One answer: the payload as received, and as a [`Response`] when it parses as one.
#[derive(Debug)]
pub struct Reply {
    pub raw: Value,
    pub response: Result<Response, String>,
}

impl Reply {
    /// Classifies a payload: function errors and `answer: error` are errors.
    pub fn from_payload(
        raw: Value,
        function: &str,
        op: &'static str,
        function_error: Option<&str>,
    ) -> Result<Reply, DjError> {
        let error_type = raw.get("errorType").and_then(Value::as_str);
        let error_message = raw.get("errorMessage").and_then(Value::as_str);
        if function_error.is_some() || error_type.is_some() || error_message.is_some() {
            let detail = match (error_type, error_message) {
                (Some(t), Some(m)) => format!("{t}: {m}"),
                (Some(t), None) => t.to_string(),
                (None, Some(m)) => m.to_string(),
                (None, None) => format!(
                    "{} error: {}",
                    function_error.unwrap_or("function"),
                    clip(&raw.to_string(), 300)
                ),
            };
            return Err(DjError::Function {
                function: function.to_string(),
                op,
                detail,
            });
        }
        let answer = answer_object(&raw);
        if answer.get("answer").and_then(Value::as_str) == Some("error") {
            let text = |k: &str| {
                answer
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("(none given)")
                    .to_string()
            };
            return Err(DjError::Answer {
                code: text("code"),
                message: text("message"),
            });
        }
        let response = serde_json::from_value::<Response>(raw.clone()).map_err(|e| e.to_string());
        if response.is_err() && raw.get("answer").is_none() {
            return Err(DjError::Unexpected {
                function: function.to_string(),
                op,
                detail: format!("no `answer` in {}", clip(&raw.to_string(), 300)),
            });
        }
        Ok(Reply { raw, response })
    }

    /// The `answer` tag (`records`, `verify`, …).
    pub fn answer_kind(&self) -> &str {
        answer_object(&self.raw)
            .get("answer")
            .and_then(Value::as_str)
            .unwrap_or("(none)")
    }
}

/// The answer inside a response: `{"principal", "role", "access_id", "answer": {"answer":
/// "records", …}}` (the answer is tagged by its own `answer` field). A response with the answer
/// flattened into it (`"answer": "records"` next to the envelope) is read as well.
pub fn answer_object(raw: &Value) -> &Value {
    match raw.get("answer") {
        Some(inner @ Value::Object(_)) => inner,
        _ => raw,
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// A connection to the replay function for one tenant and purpose.
pub struct ReplayClient {
    lambda: aws_sdk_lambda::Client,
    sdk: SdkConfig,
    function: String,
    endpoint: String,
    prover: Option<Prover>,
    principal: Option<String>,
    context: ReadContext,
}

impl ReplayClient {
    pub async fn connect(global: &Global, context: ReadContext) -> Result<Self, DjError> {
        let (lambda, sdk, endpoint) = lambda_client(global).await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| FALLBACK_REGION.to_string());
        let prover = (!global.no_identity)
            .then(|| Prover::new(identity::sts_url(global.sts_url.as_deref(), &region)));
        Ok(ReplayClient {
            lambda,
            sdk,
            function: global.function.clone(),
            endpoint,
            prover,
            principal: global.principal.clone(),
            context,
        })
    }

    pub fn context(&self) -> &ReadContext {
        &self.context
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// The invocation for `op`, with a fresh (or recent) identity proof.
    async fn invocation(&self, op: Operation) -> Result<Invocation, DjError> {
        let identity = match &self.prover {
            Some(p) => Some(p.proof(&self.sdk).await?),
            None => None,
        };
        Ok(Invocation {
            identity,
            principal: self.principal.clone(),
            request: Request {
                tenant_id: self.context.tenant.clone(),
                purpose: self.context.purpose.clone(),
                op,
            },
        })
    }

    /// Sends `op` and returns the function's answer (errors of any kind as [`DjError`]).
    pub async fn call(&self, op: Operation) -> Result<Reply, DjError> {
        let name = op.name();
        let invocation = self.invocation(op).await?;
        let payload = serde_json::to_vec(&invocation).map_err(|e| DjError::Unexpected {
            function: self.function.clone(),
            op: name,
            detail: format!("the request does not serialize: {e}"),
        })?;
        let out = self
            .lambda
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| DjError::Invoke {
                function: self.function.clone(),
                endpoint: self.endpoint.clone(),
                op: name,
                detail: error_chain(&e),
            })?;
        let bytes = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        let raw: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) if out.function_error().is_some() => {
                Value::String(format!("{} ({e})", String::from_utf8_lossy(bytes)))
            }
            Err(e) => {
                return Err(DjError::Unexpected {
                    function: self.function.clone(),
                    op: name,
                    detail: format!(
                        "the payload is not JSON ({e}): {}",
                        clip(&String::from_utf8_lossy(bytes), 300)
                    ),
                })
            }
        };
        Reply::from_payload(raw, &self.function, name, out.function_error())
    }
}

/// A Lambda client for the configured endpoint (placeholder credentials for a local emulator
/// when there are none), the SDK configuration, and where calls go (for messages).
pub async fn lambda_client(global: &Global) -> (aws_sdk_lambda::Client, SdkConfig, String) {
    let sdk = load_aws_config().await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| FALLBACK_REGION.to_string());
    let mut lambda_config = aws_sdk_lambda::config::Builder::from(&sdk);
    if let Some(url) = &global.endpoint_url {
        lambda_config = lambda_config.endpoint_url(url);
        // The emulator checks no signature; without any credentials, sign with placeholders.
        let has_credentials = match sdk.credentials_provider() {
            Some(p) => p.provide_credentials().await.is_ok(),
            None => false,
        };
        if !has_credentials {
            lambda_config =
                lambda_config.credentials_provider(aws_sdk_lambda::config::Credentials::new(
                    "dj-local",
                    "dj-local",
                    None,
                    None,
                    "dj placeholder for an endpoint override",
                ));
        }
    }
    let endpoint = describe_endpoint(global.endpoint_url.as_deref(), &sdk, &region);
    (
        aws_sdk_lambda::Client::from_conf(lambda_config.build()),
        sdk,
        endpoint,
    )
}

/// Invokes `function` with a JSON payload and returns its JSON answer; a function error
/// becomes [`DjError::Function`] with the function's message.
pub async fn invoke_json(
    global: &Global,
    function: &str,
    op: &'static str,
    payload: &Value,
) -> Result<Value, DjError> {
    let (lambda, _, endpoint) = lambda_client(global).await;
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload.to_string().into_bytes()))
        .send()
        .await
        .map_err(|e| DjError::Invoke {
            function: function.to_string(),
            endpoint,
            op,
            detail: error_chain(&e),
        })?;
    let bytes = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    let raw: Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()));
    if out.function_error().is_some() {
        let detail = raw
            .get("errorMessage")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| clip(&raw.to_string(), 500));
        return Err(DjError::Function {
            function: function.to_string(),
            op,
            detail,
        });
    }
    Ok(raw)
}

/// Where the Invoke calls go, for messages.
fn describe_endpoint(explicit: Option<&str>, sdk: &SdkConfig, region: &str) -> String {
    if let Some(url) = explicit {
        return url.to_string();
    }
    if let Some(url) = std::env::var("AWS_ENDPOINT_URL_LAMBDA")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return url;
    }
    match sdk.endpoint_url() {
        Some(url) => url.to_string(),
        None => format!("AWS Lambda in {region}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn global(purpose: Option<&str>, tenant: Option<&str>) -> Global {
        Global {
            tenant: tenant.map(str::to_string),
            purpose: purpose.map(str::to_string),
            function: "replay".into(),
            endpoint_url: None,
            principal: None,
            no_identity: true,
            sts_url: None,
            json: false,
            no_color: true,
        }
    }

    #[test]
    fn purpose_and_tenant_are_required_and_trimmed() {
        let err = ReadContext::from_global(&global(None, Some("t"))).unwrap_err();
        assert_eq!(err.to_string(), PURPOSE_REQUIRED);
        let err = ReadContext::from_global(&global(Some("  "), Some("t"))).unwrap_err();
        assert_eq!(err.to_string(), PURPOSE_REQUIRED);
        let err = ReadContext::from_global(&global(Some("case 7"), None)).unwrap_err();
        assert_eq!(err.to_string(), TENANT_REQUIRED);
        let long = "x".repeat(MAX_PURPOSE_CHARS + 1);
        assert!(ReadContext::from_global(&global(Some(&long), Some("t"))).is_err());
        assert_eq!(
            ReadContext::from_global(&global(Some(" case 7 "), Some("t"))).unwrap(),
            ReadContext {
                tenant: "t".into(),
                purpose: "case 7".into()
            }
        );
    }

    #[test]
    fn function_errors_name_type_and_message() {
        let raw = json!({"errorType": "Runtime.ExitError", "errorMessage": "boom"});
        let err = Reply::from_payload(raw, "replay", "lookup", Some("Unhandled")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "function `replay` failed (lookup): Runtime.ExitError: boom"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn error_answers_carry_code_and_message() {
        let raw = json!({"principal": "p", "role": null, "access_id": "a",
            "answer": {"answer": "error", "code": "denied", "message": "no role for p"}});
        let err = Reply::from_payload(raw, "replay", "lookup", None).unwrap_err();
        assert_eq!(err.to_string(), "error (denied): no role for p");
        assert_eq!(err.exit_code(), 3);
        let flat = json!({"principal": "p", "role": null, "access_id": "a",
            "answer": "error", "code": "bad_request", "message": "no such op"});
        let err = Reply::from_payload(flat, "replay", "lookup", None).unwrap_err();
        assert_eq!(err.to_string(), "error (bad_request): no such op");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn answers_parse_into_responses() {
        let raw = json!({"principal": "arn:aws:iam::1:role/Auditor", "role": "auditor",
                         "access_id": "01J", "answer": {"answer": "exported", "records": 3}});
        let reply = Reply::from_payload(raw, "replay", "export", None).unwrap();
        assert_eq!(reply.answer_kind(), "exported");
        let response = reply.response.unwrap();
        assert_eq!(response.access_id, "01J");
        assert!(matches!(
            response.answer,
            journal_core::replay::api::Answer::Exported { records: 3 }
        ));
        let bad = Reply::from_payload(json!({"hello": 1}), "replay", "export", None);
        assert!(matches!(bad, Err(DjError::Unexpected { .. })));
    }
}
