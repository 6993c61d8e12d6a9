//! The AWS HTTP client: signing, retries with backoff, and AWS error bodies made readable.
//!
//! AWS speaks four wire protocols and this provider uses all of them: *query* (IAM, SNS, STS:
//! form-encoded POST, XML answers), *JSON* (Logs, SQS, DynamoDB: POST with `X-Amz-Target`),
//! *REST-JSON* (Lambda, API Gateway v2, Scheduler) and *REST-XML* (S3). They share one request
//! path here, [`Aws::send`], so that every call is signed, retried and decoded the same way.
//!
//! Retries: throttling (HTTP 429 or a throttling error code), 5xx and transport errors are
//! retried up to `max_attempts` times in all, sleeping a random time between zero and an
//! exponentially growing ceiling ("full jitter", which spreads out clients that were throttled
//! together). The request is signed again for each attempt, since the signature has a time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::config::Settings;
use crate::sigv4::{self, sha256_hex};
use crate::xml;

/// An error answered by AWS, or a request that never got an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// AWS answered with an error: its code (`NoSuchEntity`) and message.
    Api { status: u16, code: String, message: String },
    /// No answer: connection refused, timeout, TLS failure.
    Transport(String),
    /// Anything else this provider wants to say (already phrased for the user).
    Provider(skyform_protocol::ProviderError),
}

impl Error {
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when the error says the thing asked about does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Api { status, code, .. } => {
                *status == 404
                    || matches!(
                        code.as_str(),
                        "NoSuchEntity"
                            | "ResourceNotFoundException"
                            | "NotFoundException"
                            | "NotFound"
                            | "NoSuchBucket"
                            | "AWS.SimpleQueueService.NonExistentQueue"
                            | "QueueDoesNotExist"
                    )
            }
            _ => false,
        }
    }

    /// True when the error is about who is calling rather than what is asked.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "InvalidClientTokenId"
                    | "SignatureDoesNotMatch"
                    | "UnrecognizedClientException"
                    | "InvalidAccessKeyId"
                    | "ExpiredToken"
                    | "ExpiredTokenException"
                    | "InvalidSignatureException"
                    | "IncompleteSignature"
                    | "AuthFailure"
                    | "MissingAuthenticationToken"
            )
        )
    }

    fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, code, .. } => {
                *status == 429
                    || *status >= 500
                    || matches!(
                        code.as_str(),
                        "Throttling"
                            | "ThrottlingException"
                            | "ThrottledException"
                            | "TooManyRequestsException"
                            | "RequestLimitExceeded"
                            | "RequestThrottled"
                            | "RequestThrottledException"
                            | "ProvisionedThroughputExceededException"
                            | "SlowDown"
                            | "PriorRequestNotComplete"
                    )
            }
            Error::Transport(_) => true,
            Error::Provider(_) => false,
        }
    }
}

impl From<skyform_protocol::ProviderError> for Error {
    fn from(e: skyform_protocol::ProviderError) -> Self {
        Error::Provider(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Api { code, message, .. } if message.is_empty() => f.write_str(code),
            Error::Api { code, message, .. } => write!(f, "{code}: {message}"),
            Error::Transport(m) => f.write_str(m),
            Error::Provider(e) => f.write_str(&e.message),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// One request before signing.
#[derive(Debug, Clone)]
pub struct Request {
    /// The signing name and endpoint prefix: `iam`, `lambda`, `s3`…
    pub service: &'static str,
    pub method: reqwest::Method,
    /// Already percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(service: &'static str, method: reqwest::Method, path: impl Into<String>) -> Self {
        Request {
            service,
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        if self.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&self.body).unwrap_or(Value::Null)
        }
    }
}

/// The signed, retrying client for one region and one set of credentials.
pub struct Aws {
    pub settings: Settings,
    http: reqwest::Client,
    account: tokio::sync::OnceCell<String>,
}

impl Aws {
    pub fn new(settings: Settings) -> std::result::Result<Self, String> {
        // reqwest is built without a default crypto provider (aws-lc-rs needs cmake); ring it is.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("skyform-provider-aws/", env!("CARGO_PKG_VERSION")));
        if settings.endpoint.is_some() {
            // A custom endpoint is a local emulator: never route it through a proxy.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Aws { settings, http, account: tokio::sync::OnceCell::new() })
    }

    pub fn region(&self) -> &str {
        &self.settings.region
    }

    /// The endpoint base URL and the signing region for a service.
    fn endpoint(&self, service: &str) -> (String, String) {
        // IAM is global: one endpoint, signed for us-east-1.
        let region = if service == "iam" { "us-east-1".to_string() } else { self.settings.region.clone() };
        if let Some(e) = &self.settings.endpoint {
            return (e.clone(), region);
        }
        let host = match service {
            "iam" => "https://iam.amazonaws.com".to_string(),
            _ => format!("https://{service}.{}.amazonaws.com", self.settings.region),
        };
        (host, region)
    }

    /// Sends a request, retrying throttling and server errors; an AWS error answer becomes
    /// [`Error::Api`].
    pub async fn send(&self, req: Request) -> Result<Response> {
        let max = self.settings.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(&req).await {
                Err(e) if e.is_retryable() && attempt < max => {
                    let ceiling =
                        self.settings.retry_base_ms.saturating_mul(1 << (attempt - 1).min(16)).min(20_000);
                    let sleep = if ceiling == 0 { 0 } else { random_u64() % (ceiling + 1) };
                    eprintln!(
                        "aws: {} {} {}: {e}; retrying in {sleep} ms (attempt {attempt} of {max})",
                        req.service, req.method, req.path
                    );
                    tokio::time::sleep(Duration::from_millis(sleep)).await;
                }
                Err(e) if e.is_retryable() && attempt > 1 => {
                    let note = format!(" (gave up after {attempt} attempts)");
                    return Err(match e {
                        Error::Api { status, code, message } => {
                            Error::Api { status, code, message: message + &note }
                        }
                        Error::Transport(m) => Error::Transport(m + &note),
                        other => other,
                    });
                }
                other => return other,
            }
        }
    }

    async fn send_once(&self, req: &Request) -> Result<Response> {
        let (base, region) = self.endpoint(req.service);
        let authority = base.split("://").nth(1).unwrap_or(&base).split('/').next().unwrap_or("").to_string();
        let base_path = base
            .split("://")
            .nth(1)
            .and_then(|r| r.find('/').map(|i| r[i..].to_string()))
            .unwrap_or_default();
        let path = format!("{base_path}{}", req.path);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let amz_date = sigv4::amz_date(now);
        let payload_hash = sha256_hex(&req.body);
        let creds = &self.settings.credentials.get().await?;

        let mut headers = req.headers.clone();
        headers.push(("host".into(), authority));
        headers.push(("x-amz-date".into(), amz_date.clone()));
        headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
        if let Some(token) = &creds.session_token {
            headers.push(("x-amz-security-token".into(), token.clone()));
        }
        let scope = sigv4::Scope { region: &region, service: req.service, amz_date: &amz_date };
        let authorization = sigv4::sign(
            creds,
            &scope,
            req.method.as_str(),
            &path,
            req.service != "s3",
            &req.query,
            &headers,
            &payload_hash,
        );

        let mut url = format!("{base}{}", req.path);
        if !req.query.is_empty() {
            url.push('?');
            url.push_str(&sigv4::canonical_query(&req.query));
        }
        let mut builder = self.http.request(req.method.clone(), &url).header("authorization", authorization);
        for (k, v) in &headers {
            if k != "host" {
                builder = builder.header(k.as_str(), v.as_str());
            }
        }
        let resp = builder.body(req.body.clone()).send().await.map_err(|e| {
            Error::Transport(format!("cannot reach {base} ({}): {}", req.service, error_chain(&e)))
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::Transport(format!("reading the answer from {base}: {}", error_chain(&e))))?
            .to_vec();
        if status >= 300 {
            return Err(parse_error(status, &headers, &body));
        }
        Ok(Response { status, headers, body })
    }

    // ----- the four protocols -----

    /// A query-protocol call (IAM, SNS, STS): returns the XML answer.
    pub async fn query(
        &self,
        service: &'static str,
        version: &str,
        action: &str,
        params: &[(&str, String)],
    ) -> Result<String> {
        let mut form =
            vec![("Action".to_string(), action.to_string()), ("Version".to_string(), version.to_string())];
        form.extend(params.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let body = sigv4::canonical_query(&form);
        let mut req = Request::new(service, reqwest::Method::POST, "/");
        req.headers.push(("content-type".into(), "application/x-www-form-urlencoded; charset=utf-8".into()));
        req.body = body.into_bytes();
        Ok(self.send(req).await?.text())
    }

    /// A JSON-protocol call (Logs, SQS, DynamoDB): `target` is `Prefix.Operation`.
    pub async fn json(
        &self,
        service: &'static str,
        json_version: &str,
        target: &str,
        body: Value,
    ) -> Result<Value> {
        let mut req = Request::new(service, reqwest::Method::POST, "/");
        req.headers.push(("content-type".into(), format!("application/x-amz-json-{json_version}")));
        req.headers.push(("x-amz-target".into(), target.to_string()));
        req.body = serde_json::to_vec(&body).expect("a JSON value serializes");
        Ok(self.send(req).await?.json())
    }

    /// A REST-JSON call (Lambda, API Gateway v2, Scheduler).
    pub async fn rest(
        &self,
        service: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        self.rest_query(service, method, path, &[], body).await
    }

    pub async fn rest_query(
        &self,
        service: &'static str,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = Request::new(service, method, path);
        req.query = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some(b) = body {
            req.headers.push(("content-type".into(), "application/json".into()));
            req.body = serde_json::to_vec(&b).expect("a JSON value serializes");
        }
        Ok(self.send(req).await?.json())
    }

    /// The account id of the credentials (STS GetCallerIdentity), asked once.
    pub async fn account_id(&self) -> Result<String> {
        self.account
            .get_or_try_init(|| async {
                let xml = self.query("sts", "2011-06-15", "GetCallerIdentity", &[]).await?;
                xml::tag(&xml, "Account")
                    .ok_or_else(|| Error::Transport("GetCallerIdentity answered no Account".into()))
            })
            .await
            .cloned()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

/// Decodes an AWS error answer: XML `<Error><Code>`, JSON `__type`/`message`, or the REST
/// header `x-amzn-ErrorType`; failing those, the HTTP status.
pub fn parse_error(status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body);
    let clean = |c: &str| -> String {
        // `com.amazonaws.lambda#ResourceNotFoundException`, `ResourceNotFoundException:http://…`
        let c = c.rsplit('#').next().unwrap_or(c);
        c.split(':').next().unwrap_or(c).trim().to_string()
    };
    let mut code = headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(clean);
    let mut message = None;
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if code.is_none() {
            code = ["__type", "code", "Code", "Type"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str))
                .filter(|c| *c != "User" && *c != "Service")
                .map(clean);
        }
        message = ["message", "Message", "errorMessage"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .map(String::from);
    } else if text.trim_start().starts_with('<') {
        if code.is_none() {
            code = xml::tag(&text, "Code").map(|c| clean(&c));
        }
        message = xml::tag(&text, "Message");
    }
    let code = code.filter(|c| !c.is_empty()).unwrap_or_else(|| match status {
        404 => "NotFound".into(),
        403 => "AccessDenied".into(),
        429 => "TooManyRequestsException".into(),
        s => format!("HTTP{s}"),
    });
    let message = message.unwrap_or_else(|| {
        let t = text.trim();
        if t.len() > 300 { format!("{}…", &t[..t.floor_char_boundary(300)]) } else { t.to_string() }
    });
    Error::Api { status, code, message }
}

/// A random number from the standard library's per-process SipHash keys: good enough for
/// jitter and name suffixes, and no dependency.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    #[test]
    fn decodes_xml_json_and_header_errors() {
        let h = HeaderMap::new();
        let e = parse_error(
            403,
            &h,
            b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no &amp; no</Message></Error></ErrorResponse>",
        );
        assert_eq!(e.to_string(), "AccessDenied: no & no");
        let e = parse_error(
            400,
            &h,
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceInUseException","message":"in use"}"#,
        );
        assert_eq!(e.to_string(), "ResourceInUseException: in use");
        let mut h2 = HeaderMap::new();
        h2.insert(
            "x-amzn-errortype",
            "ResourceNotFoundException:http://internal.amazon.com/".parse().unwrap(),
        );
        let e = parse_error(404, &h2, br#"{"Type":"User","Message":"Function not found"}"#);
        assert_eq!(e.to_string(), "ResourceNotFoundException: Function not found");
        assert!(e.is_not_found());
        let e = parse_error(503, &h, b"");
        assert_eq!(e.code(), Some("HTTP503"));
        assert!(e.is_retryable());
        assert!(parse_error(400, &h, b"<Error><Code>Throttling</Code></Error>").is_retryable());
        assert!(!parse_error(400, &h, b"<Error><Code>ValidationError</Code></Error>").is_retryable());
    }
}
