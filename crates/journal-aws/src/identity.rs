//! Caller identity for Lambda functions invoked with the plain Invoke API.
//!
//! A function invoked with `lambda:Invoke` does not learn the IAM principal of its caller. The
//! caller therefore proves who it is the way HashiCorp Vault's AWS IAM auth does it: it signs,
//! with its own credentials (SigV4), an STS `GetCallerIdentity` request without sending it, and
//! puts that request ([`IdentityProof`]) into the Invoke payload. The function forwards the exact
//! request to STS ([`IdentityVerifier::verify`]); STS answers with the caller's ARN only if the
//! signature is valid.
//!
//! The verifier forwards only to the one STS endpoint it was configured with — never to a URL
//! taken from the payload, otherwise an attacker could point it at a server answering any ARN.
//! It also refuses anything but the `GetCallerIdentity` action and proofs whose signed
//! `x-amz-date` is older (or further in the future) than [`DEFAULT_MAX_AGE`], which limits the
//! replay of a captured proof.
//!
//! Neither errors nor logs ever contain the `Authorization` header, the session token or the
//! secret key; [`IdentityProof`]'s `Debug` redacts them as well.
//!
//! Local endpoints (moto, LocalStack) do not check SigV4 signatures: they answer with the
//! identity belonging to the access key id named in the `Authorization` header. Only real STS
//! makes a proof unforgeable.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

/// The only request body a proof may carry (parameter order may differ).
pub const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// Content type of the signed request (the STS query protocol).
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// How far the signed `x-amz-date` may lie from the verifier's clock, either way. Matches the
/// validity of a SigV4 signature at AWS.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Upper bound for connecting to STS and receiving its whole answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const SIGNING_NAME: &str = "sts";
const SIGV4_ALGORITHM: &str = "AWS4-HMAC-SHA256";
const MAX_HEADERS: usize = 16;
const MAX_HEADER_VALUE_LEN: usize = 8 * 1024;
const MAX_URL_LEN: usize = 2048;
const MAX_RESPONSE_LEN: usize = 64 * 1024;
/// Headers whose values are credentials (or as good as): never shown.
const SENSITIVE_HEADERS: [&str; 2] = ["authorization", "x-amz-security-token"];
/// Connection-level headers, never forwarded (RFC 9110 §7.6.1), plus `content-length`, which
/// the client derives from the forwarded body itself.
const HOP_BY_HOP_HEADERS: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// A signed, unsent STS `GetCallerIdentity` request: what a caller puts into the Invoke payload.
///
/// `Debug` redacts the `Authorization` and `x-amz-security-token` values.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityProof {
    pub method: String,
    pub url: String,
    /// Header names in lower case, as signed.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl IdentityProof {
    /// The value of header `name` (case-insensitive); the first one if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for IdentityProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(name, value)| {
                        let shown = if is_sensitive(name) {
                            "<redacted>"
                        } else {
                            value.as_str()
                        };
                        (name.as_str(), shown)
                    }))
                    .finish()
            }
        }
        f.debug_struct("IdentityProof")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &Headers(&self.headers))
            .field("body", &self.body)
            .finish()
    }
}

/// Why a proof could not be made or was not accepted. Messages name the failing input but never
/// contain the `Authorization` header, the session token or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("STS url {url:?} is not usable: {reason}")]
    InvalidStsUrl { url: String, reason: String },
    #[error("signing region {region:?} is not a valid AWS region name")]
    InvalidRegion { region: String },
    #[error("the AWS configuration has no {what}; cannot prove the caller's identity")]
    MissingConfig { what: &'static str },
    #[error("loading AWS credentials to sign an identity proof: {reason}")]
    Credentials { reason: String },
    #[error("signing the GetCallerIdentity request for {url}: {reason}")]
    Signing { url: String, reason: String },
    #[error("setting up TLS for {url}: {reason}")]
    Tls { url: String, reason: String },
    #[error("identity proof uses method {method:?}; only POST is accepted")]
    MethodNotAllowed { method: String },
    #[error("identity proof is for {got:?}, but this verifier only forwards to {expected}")]
    UrlMismatch { expected: String, got: String },
    #[error(
        "identity proof body {body:?} is not exactly the GetCallerIdentity action \
         ({GET_CALLER_IDENTITY_BODY:?})"
    )]
    NotGetCallerIdentity { body: String },
    #[error("identity proof lacks the {name} header")]
    MissingHeader { name: &'static str },
    #[error("identity proof header {name:?} is not acceptable: {reason}")]
    BadHeader { name: String, reason: String },
    #[error("identity proof Authorization header is not acceptable: {reason}")]
    BadAuthorization { reason: String },
    #[error("identity proof x-amz-date {value:?} is not a SigV4 date (YYYYMMDDTHHMMSSZ)")]
    BadDate { value: String },
    #[error(
        "identity proof was signed at {signed_at} ({age_secs}s {direction} the verifier's clock), \
         more than the {max_age_secs}s accepted"
    )]
    Stale {
        signed_at: String,
        age_secs: u64,
        direction: &'static str,
        max_age_secs: u64,
    },
    #[error("forwarding the identity proof to {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("STS at {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("STS at {url} refused the identity proof (HTTP {status}): {code}: {message}")]
    Rejected {
        url: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("STS at {url} gave an unexpected answer (HTTP {status}): {reason}")]
    UnexpectedResponse {
        url: String,
        status: u16,
        reason: String,
    },
}

impl IdentityError {
    /// Whether retrying later may help (network, timeouts, STS throttling or 5xx). Everything
    /// else means the proof (or the configuration) is wrong and the caller is not identified.
    pub fn is_transient(&self) -> bool {
        match self {
            IdentityError::Transport { .. } | IdentityError::Timeout { .. } => true,
            IdentityError::Rejected { status, code, .. } => {
                *status >= 500 || matches!(code.as_str(), "Throttling" | "RequestLimitExceeded")
            }
            IdentityError::UnexpectedResponse { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// The STS endpoint in `region`, e.g. `https://sts.eu-west-1.amazonaws.com/`.
pub fn default_sts_url(region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{domain}/")
}

/// Signs (but does not send) an STS `GetCallerIdentity` request for `sts_url` with `creds`,
/// for signing region `region`, dated `now`.
///
/// `sts_url` must be the same endpoint the verifier forwards to (it is normalized:
/// `http://localhost:5000` and `http://localhost:5000/` are the same endpoint).
pub fn sign_identity_proof(
    creds: &Credentials,
    region: &str,
    sts_url: &str,
    now: SystemTime,
) -> Result<IdentityProof, IdentityError> {
    if !is_region_name(region) {
        return Err(IdentityError::InvalidRegion {
            region: clip(region),
        });
    }
    let endpoint = StsEndpoint::parse(sts_url)?;
    let url = endpoint.url();
    let host = endpoint.host_header();
    let signing_error = |reason: String| IdentityError::Signing {
        url: url.clone(),
        reason,
    };

    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| signing_error(e.to_string()))?
        .into();
    let unsigned = [("host", host.as_str()), ("content-type", FORM_CONTENT_TYPE)];
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        unsigned.iter().copied(),
        SignableBody::Bytes(GET_CALLER_IDENTITY_BODY.as_bytes()),
    )
    .map_err(|e| signing_error(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing_error(e.to_string()))?
        .into_parts();

    let mut headers: Vec<(String, String)> = unsigned
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    headers.extend(
        instructions
            .headers()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string())),
    );
    Ok(IdentityProof {
        method: "POST".into(),
        url,
        headers,
        body: GET_CALLER_IDENTITY_BODY.into(),
    })
}

/// Signs an identity proof with the credentials and region of `config` (for the command line).
pub async fn prove_identity(
    config: &aws_config::SdkConfig,
    sts_url: &str,
) -> Result<IdentityProof, IdentityError> {
    let provider = config
        .credentials_provider()
        .ok_or(IdentityError::MissingConfig {
            what: "credentials provider",
        })?;
    let region = config.region().ok_or(IdentityError::MissingConfig {
        what: "region (set AWS_REGION)",
    })?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| IdentityError::Credentials {
            reason: error_chain(&e),
        })?;
    sign_identity_proof(&creds, region.as_ref(), sts_url, SystemTime::now())
}

/// Checks identity proofs by forwarding them to the one STS endpoint it is configured with.
#[derive(Clone)]
pub struct IdentityVerifier {
    endpoint: StsEndpoint,
    uri: Uri,
    client: Transport,
    max_age: Duration,
    timeout: Duration,
}

#[derive(Clone)]
enum Transport {
    Http(Client<HttpConnector, Full<Bytes>>),
    Https(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

impl fmt::Debug for IdentityVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityVerifier")
            .field("sts_url", &self.endpoint.url())
            .field("max_age", &self.max_age)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl IdentityVerifier {
    /// A verifier forwarding to `sts_url` only (`http://` for local endpoints, `https://` for
    /// AWS, see [`default_sts_url`]), accepting proofs up to [`DEFAULT_MAX_AGE`] old.
    ///
    /// For `https://` the TLS set-up uses the platform's root certificates and rustls'
    /// process-level crypto provider: the binary must install one first
    /// (`rustls::crypto::ring::default_provider().install_default()`), because the AWS SDK's
    /// rustls features compile in two providers and rustls will not pick one itself.
    pub fn new(sts_url: &str) -> Result<Self, IdentityError> {
        let endpoint = StsEndpoint::parse(sts_url)?;
        let url = endpoint.url();
        let uri: Uri = url.parse().map_err(|e| IdentityError::InvalidStsUrl {
            url: clip(sts_url),
            reason: format!("{e}"),
        })?;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(DEFAULT_TIMEOUT));
        let client = if endpoint.https {
            http.enforce_http(false);
            Transport::Https(
                Client::builder(TokioExecutor::new()).build(https_connector(&url, http)?),
            )
        } else {
            Transport::Http(Client::builder(TokioExecutor::new()).build(http))
        };
        Ok(Self {
            endpoint,
            uri,
            client,
            max_age: DEFAULT_MAX_AGE,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Accept proofs whose signed date is at most `max_age` away from `now` (either way).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Give up on STS after `timeout` (connecting and reading the whole answer).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The normalized STS url proofs must be made for.
    pub fn sts_url(&self) -> String {
        self.endpoint.url()
    }

    /// Checks `proof` locally (endpoint, action, signed date against `now`), forwards it to STS
    /// and returns the caller's principal ARN as STS reports it (for a role session:
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    pub async fn verify(
        &self,
        proof: &IdentityProof,
        now: SystemTime,
    ) -> Result<String, IdentityError> {
        let headers = self.check(proof, now)?;
        let url = self.endpoint.url();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(proof.body.clone())))
            .map_err(|e| IdentityError::Transport {
                url: url.clone(),
                reason: format!("building the request: {e}"),
            })?;

        let exchange = async {
            let response = match &self.client {
                Transport::Http(client) => client.request(request).await,
                Transport::Https(client) => client.request(request).await,
            }
            .map_err(|e| IdentityError::Transport {
                url: url.clone(),
                reason: error_chain(&e),
            })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_LEN)
                .collect()
                .await
                .map_err(|e| IdentityError::Transport {
                    url: url.clone(),
                    reason: format!("reading the answer: {}", error_chain(&*e)),
                })?
                .to_bytes();
            Ok::<_, IdentityError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| IdentityError::Timeout {
                url: url.clone(),
                after: self.timeout,
            })??;
        let arn = parse_sts_answer(&url, status, &body)?;
        tracing::debug!(sts = %url, principal = %arn, "identity proof verified");
        Ok(arn)
    }

    /// The local checks; returns the headers to forward.
    fn check(
        &self,
        proof: &IdentityProof,
        now: SystemTime,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, IdentityError> {
        if proof.method != "POST" {
            return Err(IdentityError::MethodNotAllowed {
                method: clip(&proof.method),
            });
        }
        let expected = self.endpoint.url();
        let same_endpoint = proof.url.len() <= MAX_URL_LEN
            && StsEndpoint::parse(&proof.url).is_ok_and(|e| e == self.endpoint);
        if !same_endpoint {
            return Err(IdentityError::UrlMismatch {
                expected,
                got: clip(&proof.url),
            });
        }
        if !is_get_caller_identity(&proof.body) {
            return Err(IdentityError::NotGetCallerIdentity {
                body: clip(&proof.body),
            });
        }

        let headers = checked_headers(proof)?;
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, v)| v)
        };
        let auth = find("authorization").ok_or(IdentityError::MissingHeader {
            name: "authorization",
        })?;
        let auth = parse_authorization(auth.to_str().unwrap_or_default())?;
        for required in ["host", "x-amz-date"] {
            if !auth.signed_headers.iter().any(|h| h == required) {
                return Err(IdentityError::BadAuthorization {
                    reason: format!("{required} is not among the signed headers"),
                });
            }
        }

        let host = find("host").ok_or(IdentityError::MissingHeader { name: "host" })?;
        let want_host = self.endpoint.host_header();
        if !host.as_bytes().eq_ignore_ascii_case(want_host.as_bytes()) {
            return Err(IdentityError::BadHeader {
                name: "host".into(),
                reason: format!(
                    "{:?} is not the STS endpoint's host {want_host:?}",
                    clip(&String::from_utf8_lossy(host.as_bytes()))
                ),
            });
        }

        let date = find("x-amz-date").ok_or(IdentityError::MissingHeader { name: "x-amz-date" })?;
        let date = date.to_str().unwrap_or_default();
        let signed_at =
            parse_amz_date(date).ok_or_else(|| IdentityError::BadDate { value: clip(date) })?;
        if !date.starts_with(&auth.scope_date) {
            return Err(IdentityError::BadAuthorization {
                reason: format!(
                    "credential scope date {:?} is not the date of x-amz-date {date:?}",
                    auth.scope_date
                ),
            });
        }
        let (age, direction) = match now.duration_since(signed_at) {
            Ok(age) => (age, "before"),
            Err(ahead) => (ahead.duration(), "after"),
        };
        if age > self.max_age {
            return Err(IdentityError::Stale {
                signed_at: date.to_string(),
                age_secs: age.as_secs(),
                direction,
                max_age_secs: self.max_age.as_secs(),
            });
        }

        Ok(headers
            .into_iter()
            .filter(|(name, _)| {
                let name = name.as_str();
                name == "authorization"
                    || name == "x-amz-security-token"
                    || auth.signed_headers.iter().any(|h| h == name)
            })
            .collect())
    }
}

fn https_connector(
    url: &str,
    http: HttpConnector,
) -> Result<HttpsConnector<HttpConnector>, IdentityError> {
    let tls_error = |reason: String| IdentityError::Tls {
        url: url.to_string(),
        reason,
    };
    // The provider is named: the SDK's features enable two, and rustls will not choose.
    let builder = HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| tls_error(format!("loading the platform's root certificates: {e}")))?;
    Ok(builder.https_only().enable_http1().wrap_connector(http))
}

/// An STS url, normalized: scheme and host in lower case, no default port, path at least `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct StsEndpoint {
    https: bool,
    host: String,
    port: Option<u16>,
    path: String,
}

impl StsEndpoint {
    fn parse(url: &str) -> Result<Self, IdentityError> {
        let invalid = |reason: &str| IdentityError::InvalidStsUrl {
            url: clip(url),
            reason: reason.into(),
        };
        if url.contains(['#', '?']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "it must not contain a query, a fragment or whitespace",
            ));
        }
        let uri: Uri = url.parse().map_err(|e| IdentityError::InvalidStsUrl {
            url: clip(url),
            reason: format!("{e}"),
        })?;
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("it must not contain user information"));
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid("it has no host"));
        }
        let default_port = if https { 443 } else { 80 };
        let port = authority.port_u16().filter(|&p| p != default_port);
        let path = match uri.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Ok(Self {
            https,
            host,
            port,
            path,
        })
    }

    /// The value of the `Host` header for this endpoint.
    fn host_header(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host_header(), self.path)
    }
}

/// Validates names and sizes; returns lower-case names with their values. Values of sensitive
/// headers are never put into errors.
fn checked_headers(proof: &IdentityProof) -> Result<Vec<(HeaderName, HeaderValue)>, IdentityError> {
    if proof.headers.len() > MAX_HEADERS {
        return Err(IdentityError::BadHeader {
            name: "*".into(),
            reason: format!(
                "{} headers, at most {MAX_HEADERS} are accepted",
                proof.headers.len()
            ),
        });
    }
    let mut out: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(proof.headers.len());
    for (name, value) in &proof.headers {
        let bad = |reason: &str| IdentityError::BadHeader {
            name: clip(name),
            reason: reason.into(),
        };
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("not a valid header name"))?;
        if HOP_BY_HOP_HEADERS.contains(&header.as_str()) {
            continue;
        }
        if out.iter().any(|(n, _)| *n == header) {
            return Err(bad("given more than once"));
        }
        if value.len() > MAX_HEADER_VALUE_LEN {
            return Err(bad("the value is too long"));
        }
        let mut value =
            HeaderValue::from_str(value).map_err(|_| bad("the value is not valid header text"))?;
        if is_sensitive(header.as_str()) {
            value.set_sensitive(true);
        }
        out.push((header, value));
    }
    Ok(out)
}

struct Authorization {
    scope_date: String,
    signed_headers: Vec<String>,
}

/// Parses `AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/sts/aws4_request,
/// SignedHeaders=a;b, Signature=<hex>`. Errors never quote the header.
fn parse_authorization(value: &str) -> Result<Authorization, IdentityError> {
    let bad = |reason: &str| IdentityError::BadAuthorization {
        reason: reason.into(),
    };
    let rest = value
        .strip_prefix(SIGV4_ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| bad("it is not an AWS4-HMAC-SHA256 signature"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(bad("it has an unknown or malformed component")),
        }
    }
    let credential = credential.ok_or_else(|| bad("it has no Credential"))?;
    let signed = signed.ok_or_else(|| bad("it has no SignedHeaders"))?;
    let signature = signature.ok_or_else(|| bad("it has no Signature"))?;
    if signature.is_empty() || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("its Signature is not hexadecimal"));
    }
    let scope: Vec<&str> = credential.rsplitn(5, '/').collect();
    let [terminator, service, region, date, key] = scope[..] else {
        return Err(bad(
            "its Credential is not <key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if key.is_empty() || terminator != "aws4_request" || !is_region_name(region) {
        return Err(bad(
            "its Credential is not <key>/<date>/<region>/<service>/aws4_request",
        ));
    }
    if service != SIGNING_NAME {
        return Err(IdentityError::BadAuthorization {
            reason: format!("it is signed for service {:?}, not sts", clip(service)),
        });
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("its credential scope date is not YYYYMMDD"));
    }
    Ok(Authorization {
        scope_date: date.to_string(),
        signed_headers: signed.split(';').map(str::to_string).collect(),
    })
}

fn is_get_caller_identity(body: &str) -> bool {
    let mut params: Vec<&str> = body.split('&').collect();
    params.sort_unstable();
    params == ["Action=GetCallerIdentity", "Version=2011-06-15"]
}

/// `YYYYMMDDTHHMMSSZ` (UTC) as a point in time.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let s = value.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || year < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (i64::from(year) - 1, i64::from(month) + 9)
    } else {
        (i64::from(year), i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Reads STS's XML answer: the `<Arn>` of a `GetCallerIdentityResult`, or an error naming STS's
/// code and message.
fn parse_sts_answer(url: &str, status: u16, body: &[u8]) -> Result<String, IdentityError> {
    let text = String::from_utf8_lossy(body);
    if text.contains("<ErrorResponse") || text.contains("<Error>") || status != 200 {
        let code = xml_text(&text, "Code");
        let message = xml_text(&text, "Message");
        if code.is_some() || message.is_some() {
            return Err(IdentityError::Rejected {
                url: url.to_string(),
                status,
                code: clip(&code.unwrap_or_else(|| "(no code)".into())),
                message: clip(&message.unwrap_or_else(|| "(no message)".into())),
            });
        }
        return Err(IdentityError::UnexpectedResponse {
            url: url.to_string(),
            status,
            reason: format!("not an STS answer: {:?}", clip(&text)),
        });
    }
    let unexpected = |reason: String| IdentityError::UnexpectedResponse {
        url: url.to_string(),
        status,
        reason,
    };
    if !text.contains("GetCallerIdentityResult") {
        return Err(unexpected(format!(
            "no GetCallerIdentityResult in {:?}",
            clip(&text)
        )));
    }
    let arn = xml_text(&text, "Arn")
        .ok_or_else(|| unexpected(format!("no <Arn> in {:?}", clip(&text))))?;
    if !arn.starts_with("arn:") || arn.len() > 2048 || arn.chars().any(char::is_whitespace) {
        return Err(unexpected(format!("{:?} is not an ARN", clip(&arn))));
    }
    Ok(arn)
}

/// The unescaped text of the first `<tag>…</tag>` in `xml`.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    let raw = xml[start..start + len].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn is_sensitive(name: &str) -> bool {
    SENSITIVE_HEADERS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
}

fn is_region_name(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// At most 200 characters of untrusted text, for messages.
fn clip(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY";
    const TOKEN: &str = "FQoGZXIvYXdzSESSIONTOKENvalue";
    const LOCAL: &str = "http://127.0.0.1:9/";

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            SECRET,
            token.map(str::to_string),
            None,
            "test",
        )
    }

    /// 2024-03-15T10:00:00Z
    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_710_496_800)
    }

    fn proof(url: &str) -> IdentityProof {
        sign_identity_proof(&creds(Some(TOKEN)), "eu-west-1", url, t0()).unwrap()
    }

    fn verifier() -> IdentityVerifier {
        IdentityVerifier::new(LOCAL).unwrap()
    }

    fn assert_no_secrets(text: &str) {
        let signature = proof(LOCAL)
            .header("authorization")
            .unwrap()
            .rsplit("Signature=")
            .next()
            .unwrap()
            .to_string();
        for secret in [SECRET, TOKEN, signature.as_str()] {
            assert!(!text.contains(secret), "{text:?} contains {secret:?}");
        }
    }

    #[test]
    fn signing_produces_the_sts_credential_scope_and_signed_headers() {
        let p = proof("http://localhost:5000");
        assert_eq!(p.method, "POST");
        assert_eq!(p.url, "http://localhost:5000/");
        assert_eq!(p.body, GET_CALLER_IDENTITY_BODY);
        assert_eq!(p.header("host"), Some("localhost:5000"));
        assert_eq!(p.header("content-type"), Some(FORM_CONTENT_TYPE));
        assert_eq!(p.header("x-amz-date"), Some("20240315T100000Z"));
        assert_eq!(p.header("x-amz-security-token"), Some(TOKEN));
        let auth = p.header("authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240315/eu-west-1/sts/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
        let signature = auth.rsplit("Signature=").next().unwrap();
        assert_eq!(signature.len(), 64);
        // Deterministic for the same input; a different secret signs differently.
        assert_eq!(proof("http://localhost:5000/"), p);
        let other = sign_identity_proof(
            &Credentials::new("AKIDEXAMPLE", "other", Some(TOKEN.into()), None, "t"),
            "eu-west-1",
            "http://localhost:5000/",
            t0(),
        )
        .unwrap();
        assert_ne!(other.header("authorization"), Some(auth));

        let aws = sign_identity_proof(
            &creds(None),
            "eu-west-1",
            &default_sts_url("eu-west-1"),
            t0(),
        )
        .unwrap();
        assert_eq!(aws.url, "https://sts.eu-west-1.amazonaws.com/");
        assert_eq!(aws.header("host"), Some("sts.eu-west-1.amazonaws.com"));
        assert_eq!(aws.header("x-amz-security-token"), None);
        assert!(aws
            .header("authorization")
            .unwrap()
            .contains("SignedHeaders=content-type;host;x-amz-date, "));
    }

    #[test]
    fn proof_round_trips_through_json_and_debug_redacts_credentials() {
        let p = proof(LOCAL);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<IdentityProof>(&json).unwrap(), p);
        let debug = format!("{p:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(debug.contains("20240315T100000Z"), "{debug}");
        assert_no_secrets(&debug);
    }

    #[test]
    fn sts_urls_are_normalized() {
        let same = |a: &str, b: &str| {
            assert_eq!(
                StsEndpoint::parse(a).unwrap(),
                StsEndpoint::parse(b).unwrap(),
                "{a} vs {b}"
            )
        };
        same("http://localhost:5000", "http://localhost:5000/");
        same("HTTP://LocalHost:5000/", "http://localhost:5000");
        same(
            "https://sts.eu-west-1.amazonaws.com:443/",
            "https://sts.eu-west-1.amazonaws.com",
        );
        same("http://127.0.0.1:80", "http://127.0.0.1/");
        assert_ne!(
            StsEndpoint::parse("http://localhost:5000/").unwrap(),
            StsEndpoint::parse("https://localhost:5000/").unwrap()
        );
        assert_ne!(
            StsEndpoint::parse("http://localhost:5000/").unwrap(),
            StsEndpoint::parse("http://localhost:5001/").unwrap()
        );
        assert_eq!(
            StsEndpoint::parse("http://LOCALHOST:5000").unwrap().url(),
            "http://localhost:5000/"
        );
        for bad in [
            "ftp://sts.amazonaws.com/",
            "sts.amazonaws.com",
            "/",
            "http://user:pw@sts.amazonaws.com/",
            "https://sts.amazonaws.com/?Action=AssumeRole",
            "https://sts.amazonaws.com/#x",
            "https://sts.amazon aws.com/",
            "",
        ] {
            let err = StsEndpoint::parse(bad).unwrap_err();
            assert!(matches!(err, IdentityError::InvalidStsUrl { .. }), "{bad}");
            assert!(IdentityVerifier::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            default_sts_url("eu-west-1"),
            "https://sts.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            default_sts_url("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
    }

    #[test]
    fn signing_refuses_bad_input() {
        let err = sign_identity_proof(&creds(None), "EU WEST", LOCAL, t0()).unwrap_err();
        assert!(matches!(err, IdentityError::InvalidRegion { .. }), "{err}");
        let err = sign_identity_proof(&creds(None), "eu-west-1", "sts", t0()).unwrap_err();
        assert!(matches!(err, IdentityError::InvalidStsUrl { .. }), "{err}");
        assert!(err.to_string().contains("\"sts\""), "{err}");
    }

    #[test]
    fn a_proof_for_another_endpoint_is_refused() {
        let v = verifier();
        assert_eq!(v.sts_url(), LOCAL);
        for url in [
            "http://evil.example/",
            "https://127.0.0.1:9/",
            "http://127.0.0.1:10/",
            "http://127.0.0.1:9/other",
            "http://127.0.0.1:9/?x=1",
            "not a url",
        ] {
            let mut p = proof(LOCAL);
            p.url = url.into();
            let err = v.check(&p, t0()).unwrap_err();
            assert!(
                matches!(err, IdentityError::UrlMismatch { .. }),
                "{url}: {err}"
            );
            assert!(err.to_string().contains(LOCAL), "{err}");
            assert_no_secrets(&err.to_string());
            assert_no_secrets(&format!("{err:?}"));
        }
        // The same endpoint spelled differently is fine.
        let mut p = proof(LOCAL);
        p.url = "HTTP://127.0.0.1:9".into();
        v.check(&p, t0()).unwrap();
        // Signed for another host, sent to ours: the Host header gives it away.
        let p = proof("http://evil.example/");
        let mut moved = p.clone();
        moved.url = LOCAL.into();
        let err = v.check(&moved, t0()).unwrap_err();
        assert!(
            matches!(&err, IdentityError::BadHeader { name, .. } if name == "host"),
            "{err}"
        );
    }

    #[test]
    fn only_get_caller_identity_is_accepted() {
        let v = verifier();
        for body in [
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::1:role/x",
            "Action=GetCallerIdentity&Version=2011-06-15&Action=AssumeRole",
            "Action=GetCallerIdentity",
            "",
            "Action=GetCallerIdentity&Version=2011-06-15&",
        ] {
            let mut p = proof(LOCAL);
            p.body = body.into();
            let err = v.check(&p, t0()).unwrap_err();
            assert!(
                matches!(err, IdentityError::NotGetCallerIdentity { .. }),
                "{body}: {err}"
            );
        }
        let mut p = proof(LOCAL);
        p.body = "Version=2011-06-15&Action=GetCallerIdentity".into();
        v.check(&p, t0()).unwrap();
        let mut p = proof(LOCAL);
        p.method = "GET".into();
        let err = v.check(&p, t0()).unwrap_err();
        assert!(
            matches!(err, IdentityError::MethodNotAllowed { .. }),
            "{err}"
        );
    }

    #[test]
    fn stale_and_future_dates_are_refused() {
        let v = verifier();
        let p = proof(LOCAL);
        let minute = Duration::from_secs(60);
        v.check(&p, t0()).unwrap();
        v.check(&p, t0() + 15 * minute).unwrap();
        v.check(&p, t0() - 15 * minute).unwrap();
        let err = v.check(&p, t0() + 16 * minute).unwrap_err();
        assert!(
            matches!(
                err,
                IdentityError::Stale {
                    age_secs: 960,
                    direction: "before",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("20240315T100000Z"), "{err}");
        let err = v.check(&p, t0() - 16 * minute).unwrap_err();
        assert!(
            matches!(
                err,
                IdentityError::Stale {
                    direction: "after",
                    ..
                }
            ),
            "{err}"
        );
        let strict = verifier().with_max_age(minute);
        assert!(strict.check(&p, t0() + 2 * minute).is_err());

        let mut bad = p.clone();
        for (n, v) in &mut bad.headers {
            if n == "x-amz-date" {
                *v = "2024-03-15T10:00:00Z".into();
            }
        }
        let err = v.check(&bad, t0()).unwrap_err();
        assert!(matches!(err, IdentityError::BadDate { .. }), "{err}");
    }

    #[test]
    fn amz_dates_parse() {
        assert_eq!(parse_amz_date("20240315T100000Z"), Some(t0()));
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_amz_date("20000229T235959Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_799))
        );
        for bad in [
            "20241315T100000Z",
            "20240315 100000Z",
            "2024031T100000Z",
            "+0240315T100000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_and_authorization_are_checked_without_quoting_credentials() {
        let v = verifier();
        let without = |name: &str| {
            let mut p = proof(LOCAL);
            p.headers.retain(|(n, _)| n != name);
            v.check(&p, t0()).unwrap_err()
        };
        for name in ["authorization", "host", "x-amz-date"] {
            let err = without(name);
            assert!(
                matches!(err, IdentityError::MissingHeader { name: n } if n == name),
                "{name}: {err}"
            );
        }

        let with_auth = |f: &dyn Fn(&str) -> String| {
            let mut p = proof(LOCAL);
            for (n, v) in &mut p.headers {
                if n == "authorization" {
                    *v = f(v);
                }
            }
            v.check(&p, t0()).unwrap_err()
        };
        let cases: [&dyn Fn(&str) -> String; 6] = [
            &|a| {
                a.replace(
                    "SignedHeaders=content-type;host;x-amz-date;",
                    "SignedHeaders=host;",
                )
            },
            &|a| a.replace("/sts/", "/s3/"),
            &|a| a.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
            &|a| a.replace("Signature=", "Signature=zz"),
            &|a| a.replace("/20240315/", "/20240314/"),
            &|a| format!("{a}, Extra=1"),
        ];
        for case in cases {
            let err = with_auth(case);
            assert!(
                matches!(err, IdentityError::BadAuthorization { .. }),
                "{err}"
            );
            assert_no_secrets(&err.to_string());
            assert_no_secrets(&format!("{err:?}"));
        }

        let mut p = proof(LOCAL);
        p.headers.push(("Authorization".into(), "again".into()));
        let err = v.check(&p, t0()).unwrap_err();
        assert!(matches!(err, IdentityError::BadHeader { .. }), "{err}");
        assert!(!err.to_string().contains("again"), "{err}");

        let mut p = proof(LOCAL);
        p.headers
            .push(("x-amz-security-token".into(), format!("{TOKEN}\n")));
        p.headers
            .retain(|(n, v)| n != "x-amz-security-token" || v != TOKEN);
        let err = v.check(&p, t0()).unwrap_err();
        assert_no_secrets(&err.to_string());
    }

    #[test]
    fn forwarded_headers_are_the_signed_ones_without_hop_by_hop() {
        let v = verifier();
        let mut p = proof(LOCAL);
        p.headers.push(("Connection".into(), "upgrade".into()));
        p.headers
            .push(("transfer-encoding".into(), "chunked".into()));
        p.headers.push(("content-length".into(), "999".into()));
        p.headers.push(("x-unsigned".into(), "1".into()));
        let forwarded: Vec<String> = v
            .check(&p, t0())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(
            forwarded,
            [
                "host",
                "content-type",
                "x-amz-date",
                "authorization",
                "x-amz-security-token"
            ]
        );
    }

    #[test]
    fn sts_answers_are_parsed() {
        let ok = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/dj-auditor/alice</Arn>
    <UserId>AROA:alice</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
</GetCallerIdentityResponse>"#;
        assert_eq!(
            parse_sts_answer(LOCAL, 200, ok.as_bytes()).unwrap(),
            "arn:aws:sts::123456789012:assumed-role/dj-auditor/alice"
        );
        let denied = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>
  <Message>The request signature we calculated does not match &amp; so on</Message></Error>
  <RequestId>x</RequestId></ErrorResponse>"#;
        let err = parse_sts_answer(LOCAL, 403, denied.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, IdentityError::Rejected { status: 403, code, .. } if code == "SignatureDoesNotMatch"),
            "{err}"
        );
        assert!(err.to_string().contains("does not match & so on"), "{err}");
        assert!(!err.is_transient());
        let err = parse_sts_answer(LOCAL, 200, denied.as_bytes()).unwrap_err();
        assert!(matches!(err, IdentityError::Rejected { .. }), "{err}");
        let err = parse_sts_answer(LOCAL, 503, b"<html>busy</html>").unwrap_err();
        assert!(
            matches!(err, IdentityError::UnexpectedResponse { .. }),
            "{err}"
        );
        assert!(err.is_transient());
        let err = parse_sts_answer(LOCAL, 200, b"<Arn>arn:x</Arn>").unwrap_err();
        assert!(
            matches!(err, IdentityError::UnexpectedResponse { .. }),
            "{err}"
        );
        let err = parse_sts_answer(
            LOCAL,
            200,
            b"<GetCallerIdentityResult><Arn>root</Arn></GetCallerIdentityResult>",
        )
        .unwrap_err();
        assert!(
            matches!(err, IdentityError::UnexpectedResponse { .. }),
            "{err}"
        );
    }

    /// Serves one request on a local port with `answer`; sends back what it received.
    fn fake_sts(status: &str, answer: &str) -> (String, mpsc::Receiver<(Vec<String>, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut lines = Vec::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                lines.push(line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            stream.write_all(response.as_bytes()).unwrap();
            tx.send((lines, String::from_utf8(body).unwrap())).unwrap();
        });
        (url, rx)
    }

    #[tokio::test]
    async fn verify_forwards_the_exact_signed_request_and_reads_the_arn() {
        let arn = "arn:aws:sts::123456789012:assumed-role/dj-auditor/alice";
        let (url, seen) = fake_sts(
            "200 OK",
            &format!(
                "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>{arn}</Arn>\
                 </GetCallerIdentityResult></GetCallerIdentityResponse>"
            ),
        );
        let v = IdentityVerifier::new(&url).unwrap();
        let mut p = sign_identity_proof(&creds(Some(TOKEN)), "us-east-1", &url, t0()).unwrap();
        p.headers
            .push(("connection".into(), "keep-alive, x-amz-date".into()));
        assert_eq!(v.verify(&p, t0()).await.unwrap(), arn);
        let (lines, body) = seen.recv().unwrap();
        assert_eq!(lines[0], "POST / HTTP/1.1");
        assert_eq!(body, GET_CALLER_IDENTITY_BODY);
        let lower: Vec<String> = lines.iter().map(|l| l.to_ascii_lowercase()).collect();
        for (name, value) in &p.headers {
            if name != "connection" {
                assert!(
                    lower.contains(&format!("{name}: {}", value.to_ascii_lowercase())),
                    "{name} not forwarded as signed: {lines:?}"
                );
            }
        }
        assert!(!lower.iter().any(|l| l.contains("keep-alive, x-amz-date")));
    }

    #[tokio::test]
    async fn verify_reports_sts_refusals_and_unreachable_endpoints() {
        let (url, _seen) = fake_sts(
            "403 Forbidden",
            "<ErrorResponse><Error><Code>InvalidClientTokenId</Code>\
             <Message>The security token included in the request is invalid.</Message>\
             </Error></ErrorResponse>",
        );
        let v = IdentityVerifier::new(&url).unwrap();
        let p = sign_identity_proof(&creds(Some(TOKEN)), "us-east-1", &url, t0()).unwrap();
        let err = v.verify(&p, t0()).await.unwrap_err();
        assert!(
            matches!(&err, IdentityError::Rejected { status: 403, code, .. } if code == "InvalidClientTokenId"),
            "{err}"
        );
        assert!(err.to_string().contains(&url), "{err}");
        assert_no_secrets(&err.to_string());

        // Nothing listens on the port any more.
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/", l.local_addr().unwrap())
        };
        let v = IdentityVerifier::new(&closed).unwrap();
        let p = sign_identity_proof(&creds(Some(TOKEN)), "us-east-1", &closed, t0()).unwrap();
        let err = v.verify(&p, t0()).await.unwrap_err();
        assert!(matches!(err, IdentityError::Transport { .. }), "{err}");
        assert!(err.is_transient());
        assert_no_secrets(&err.to_string());
        assert_no_secrets(&format!("{err:?}"));
    }

    #[test]
    fn https_verifier_is_built_or_names_the_missing_crypto_provider() {
        // Never panics: either a provider is installed, or the error says how to install one.
        match IdentityVerifier::new(&default_sts_url("eu-west-1")) {
            Ok(v) => assert_eq!(v.sts_url(), "https://sts.eu-west-1.amazonaws.com/"),
            Err(err) => {
                assert!(matches!(err, IdentityError::Tls { .. }), "{err}");
                assert!(
                    err.to_string().contains("sts.eu-west-1.amazonaws.com"),
                    "{err}"
                );
            }
        }
    }
}
