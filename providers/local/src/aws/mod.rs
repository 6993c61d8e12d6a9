//! The AWS-compatible endpoint: one HTTP port per project (127.0.0.1, recorded in the registry
//! so it stays the same across restarts and `kill -9`) that speaks AWS's wire protocols, so that
//! boto3, the AWS CLI and every AWS SDK reach the local cloud unchanged, with
//! `AWS_ENDPOINT_URL=http://127.0.0.1:PORT`.
//!
//! Every request must be signed (SigV4, [`sigv4`]) with the key pair the local cloud issued
//! (`.skyform/local/credentials.json`, mode 0600, made once per project); unsigned, wrongly
//! signed or expired requests are refused with the error code and body shape of the service
//! they were meant for, so SDKs raise the same exceptions as on AWS.
//!
//! Requests are routed by protocol:
//!
//! | request | service | module |
//! |---|---|---|
//! | `POST /` with `X-Amz-Target: AmazonSQS.<Op>` (JSON 1.0) | SQS | [`sqs`] |
//! | `POST /` form-encoded with `Action=<Op>`, signed for service `sns` | SNS | [`sns`] |
//! | `/2015-03-31/functions/{name}/invocations` | Lambda Invoke | [`lambda`] |
//! | S3 REST: signed for `s3`, presigned, or to `BUCKET.localhost` ([`crate::buckets::is_s3`]) | S3 | [`crate::buckets`] (s3s verifies SigV4 itself) |
//! | `POST /` with `X-Amz-Target: DynamoDB_20120810.<Op>` (JSON 1.0) | DynamoDB | [`dynamodb`] |
//!
//! ## For the other services (SNS, ...)
//!
//! A service module gets an [`AwsRequest`] (verified, body read, form parameters decoded) and
//! the shared [`AwsContext`], and answers a [`Resp`]. The context holds what a service needs of
//! the rest of the daemon:
//!
//! - [`AwsContext::queues`]: the SQS queues. `ctx.queues.send_by_arn(arn, SendInput{..})`
//!   enqueues durably (the message is fsynced when it returns `Ok`), as an SNS fan-out does;
//!   [`crate::queue::SqsError`] says why not (no such queue, too large...).
//! - [`AwsContext::invoke_async`] (`InvocationType=Event`: queued, runs in the background, the
//!   result is logged) and [`AwsContext::invoke`] (waits for the result) run a deployed function
//!   found by name or ARN ([`AwsContext::function`]).
//! - [`AwsContext::arn`] builds ARNs with the local region and account ([`REGION`], [`ACCOUNT`]).
//! - [`AwsError`] renders errors in each protocol's shape: [`AwsError::query_xml`] for SNS's
//!   query protocol, [`AwsError::json`] for SQS, [`AwsError::rest_json`] for Lambda.
//!
//! **Architecture Invariant:** nothing on this port is served before the SigV4 check passes.

pub mod dynamodb;
pub mod lambda;
pub mod sigv4;
pub mod sns;
pub mod sqs;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, StatusCode};

use crate::http::{self, Resp};
use crate::pool::{Invoked, Pool};

/// The region every local resource lives in.
pub const REGION: &str = "us-east-1";
/// The local cloud's account id (in ARNs and queue URLs).
pub const ACCOUNT: &str = "000000000000";

/// The key pair the local cloud issues; SigV4 signatures are verified against it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Credentials {
    /// Reads `.skyform/local/credentials.json`, or makes a new key pair and writes it (mode
    /// 0600). The pair stays the same across daemon restarts, so that exported variables
    /// (`skyform local env`) keep working.
    pub fn load_or_create(path: &Path) -> std::io::Result<Credentials> {
        match std::fs::read(path) {
            Ok(b) => {
                return serde_json::from_slice(&b).map_err(|e| {
                    std::io::Error::other(format!(
                        "{} is not valid ({e}); delete it and a new key pair is made at the next start",
                        path.display()
                    ))
                });
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let pick = |alphabet: &[u8], n: usize| -> String {
            let mut out = String::new();
            while out.len() < n {
                let mut r = crate::daemon::os_random_u64();
                for _ in 0..8 {
                    if out.len() == n {
                        break;
                    }
                    out.push(alphabet[(r % alphabet.len() as u64) as usize] as char);
                    r /= alphabet.len() as u64;
                }
            }
            out
        };
        let c = Credentials {
            access_key_id: format!("LKIA{}", pick(UPPER, 16)),
            secret_access_key: pick(SECRET, 40),
        };
        let bytes = serde_json::to_vec_pretty(&c).map_err(std::io::Error::other)?;
        crate::daemon::write_private(path, &bytes)?;
        Ok(c)
    }
}

/// Finds deployed functions by name (or ARN) for Lambda's `Invoke` and for triggers.
pub trait FunctionLookup: Send + Sync {
    /// The function's pool; `name` is a function name (any stack).
    fn find(&self, name: &str) -> Option<Arc<Pool>>;
}

/// What the endpoint's services share (see the module docs).
pub struct AwsContext {
    pub port: u16,
    pub credentials: Credentials,
    pub queues: Arc<crate::queue::Queues>,
    pub functions: Arc<dyn FunctionLookup>,
    /// SNS topics and subscriptions ([`crate::topics`]).
    pub topics: Arc<crate::topics::Topics>,
    /// S3 buckets ([`crate::buckets`]).
    pub buckets: Arc<crate::buckets::Buckets>,
    /// DynamoDB tables ([`crate::tables`]).
    pub tables: Arc<crate::tables::Tables>,
}

impl AwsContext {
    /// `http://127.0.0.1:PORT`, what `AWS_ENDPOINT_URL` is set to.
    pub fn endpoint(&self) -> String {
        endpoint_url(self.port)
    }

    /// `arn:aws:<service>:us-east-1:000000000000:<resource>`.
    pub fn arn(service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}")
    }

    /// A deployed function, by name, partial ARN (`ACCOUNT:function:NAME`) or full ARN; a
    /// `:$LATEST` qualifier is accepted.
    pub fn function(&self, name_or_arn: &str) -> Option<Arc<Pool>> {
        self.functions.find(function_name(name_or_arn))
    }

    /// Runs the function and waits for its result; `None` when no such function is deployed.
    pub async fn invoke(&self, name_or_arn: &str, payload: Bytes) -> Option<Invoked> {
        let pool = self.function(name_or_arn)?;
        Some(pool.invoke(payload).await)
    }

    /// Queues an asynchronous invocation (Lambda's `Event` type) and returns at once; the
    /// outcome is in the function's log. `false` when no such function is deployed.
    pub fn invoke_async(&self, name_or_arn: &str, payload: Bytes) -> bool {
        let Some(pool) = self.function(name_or_arn) else { return false };
        tokio::spawn(async move {
            let _ = pool.invoke(payload).await;
        });
        true
    }
}

/// The variables that point AWS SDKs and the AWS CLI at the endpoint: `AWS_ENDPOINT_URL`,
/// the issued key pair, `AWS_REGION` and `AWS_DEFAULT_REGION`. Functions get them; `skyform
/// local env` prints them.
pub fn client_env(ctx: &AwsContext) -> Vec<(String, String)> {
    env_for(ctx.port, &ctx.credentials)
}

/// [`client_env`] for a port and key pair.
pub fn env_for(port: u16, c: &Credentials) -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL".into(), endpoint_url(port)),
        ("AWS_ACCESS_KEY_ID".into(), c.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY".into(), c.secret_access_key.clone()),
        ("AWS_REGION".into(), REGION.into()),
        ("AWS_DEFAULT_REGION".into(), REGION.into()),
    ]
}

/// The function name in `name`, `ACCOUNT:function:name` or a full ARN (qualifier dropped).
pub fn function_name(name_or_arn: &str) -> &str {
    let s = name_or_arn.strip_prefix("arn:aws:lambda:").unwrap_or(name_or_arn);
    let s = match s.find("function:") {
        Some(i) => &s[i + "function:".len()..],
        None => s,
    };
    s.split(':').next().unwrap_or(s)
}

pub fn endpoint_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Which service a request is for (decided before it is verified, to shape its errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Sqs,
    Sns,
    Lambda,
    DynamoDb,
    Unknown,
}

/// A verified request, as a service module sees it.
pub struct AwsRequest {
    pub method: hyper::Method,
    /// Percent-encoded, as it arrived.
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Form parameters (query protocol: the body of a form POST, or the query string of a GET).
    pub params: Vec<(String, String)>,
    /// An id for the answer (`x-amzn-RequestId`, `<RequestId>`).
    pub request_id: String,
}

impl AwsRequest {
    /// The first form parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An AWS error, rendered in the shape of the protocol that is answering.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub status: StatusCode,
    /// The code (`__type`, `<Code>`, `x-amzn-ErrorType`), e.g. `QueueDoesNotExist`.
    pub code: String,
    /// For SQS's query-compatible JSON: the legacy code sent in `x-amzn-query-error`
    /// (e.g. `AWS.SimpleQueueService.NonExistentQueue`), which boto3 reports as the code.
    pub query_code: Option<String>,
    pub message: String,
    /// `Sender` (the client's fault) or `Receiver`.
    pub sender: bool,
}

impl AwsError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> AwsError {
        AwsError {
            status,
            code: code.to_string(),
            query_code: None,
            message: message.into(),
            sender: status.is_client_error(),
        }
    }
    pub fn bad(code: &str, message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn with_query_code(mut self, code: &str) -> AwsError {
        self.query_code = Some(code.to_string());
        self
    }
    fn fault(&self) -> &'static str {
        if self.sender { "Sender" } else { "Receiver" }
    }

    /// The query protocol's XML (SNS): `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`.
    pub fn query_xml(&self, request_id: &str) -> Resp {
        let body = format!(
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            self.fault(),
            xml_escape(&self.code),
            xml_escape(&self.message),
            request_id
        );
        let mut r = http::response(self.status, "text/xml", body);
        set_header(&mut r, "x-amzn-requestid", request_id);
        r
    }

    /// JSON 1.0 (SQS): `{"__type": "com.amazonaws.sqs#Code", "message": ...}`, with the
    /// `x-amzn-query-error: Code;Sender` header of query-compatible services.
    pub fn json(&self, request_id: &str, namespace: &str) -> Resp {
        let body =
            serde_json::json!({"__type": format!("{namespace}#{}", self.code), "message": self.message});
        let mut r = http::response(self.status, "application/x-amz-json-1.0", body.to_string());
        set_header(&mut r, "x-amzn-requestid", request_id);
        let q = format!("{};{}", self.query_code.as_deref().unwrap_or(&self.code), self.fault());
        set_header(&mut r, "x-amzn-query-error", &q);
        r
    }

    /// REST-JSON (Lambda): `x-amzn-ErrorType: Code` and `{"Type": "User", "message": ...}`.
    pub fn rest_json(&self, request_id: &str) -> Resp {
        let body = serde_json::json!({
            "Type": if self.sender { "User" } else { "Service" },
            "message": self.message,
        });
        let mut r = http::response(self.status, "application/json", body.to_string());
        set_header(&mut r, "x-amzn-requestid", request_id);
        set_header(&mut r, "x-amzn-errortype", &self.code);
        r
    }

    /// Renders in the shape `service` uses.
    pub fn render(&self, service: Service, request_id: &str) -> Resp {
        match service {
            Service::Sqs => self.json(request_id, "com.amazonaws.sqs"),
            Service::Sns | Service::Unknown => self.query_xml(request_id),
            Service::Lambda => self.rest_json(request_id),
            Service::DynamoDb => self.json(request_id, dynamodb::NAMESPACE),
        }
    }
}

pub fn set_header(r: &mut Resp, name: &'static str, value: &str) {
    if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// The service a request is for, from its shape (before verification).
fn classify(method: &hyper::Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Service {
    if headers.get("x-amz-target").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("AmazonSQS."))
    {
        return Service::Sqs;
    }
    if headers.get("x-amz-target").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("DynamoDB_")) {
        return Service::DynamoDb;
    }
    if path.starts_with("/2015-03-31/functions") {
        return Service::Lambda;
    }
    let scope = sigv4::scope_service(headers);
    match scope.as_deref() {
        Some("sqs") => return Service::Sqs,
        Some("sns") => return Service::Sns,
        Some("lambda") => return Service::Lambda,
        Some("dynamodb") => return Service::DynamoDb,
        _ => {}
    }
    if *method == hyper::Method::POST
        && (body.starts_with(b"Action=") || body.windows(8).any(|w| w == b"&Action="))
    {
        return Service::Sns;
    }
    Service::Unknown
}

fn auth_error(service: Service, e: sigv4::AuthError) -> AwsError {
    use sigv4::AuthError::*;
    // DynamoDB answers auth errors with Lambda's codes.
    let lambda = matches!(service, Service::Lambda | Service::DynamoDb);
    match e {
        Missing if lambda => AwsError::new(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        Missing => AwsError::new(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token; sign it with the local cloud's credentials (`skyform local env`)",
        ),
        Incomplete(m) => AwsError::new(StatusCode::BAD_REQUEST, "IncompleteSignature", m),
        UnknownKey(k) => AwsError::new(
            StatusCode::FORBIDDEN,
            if lambda { "UnrecognizedClientException" } else { "InvalidClientTokenId" },
            format!(
                "The security token included in the request is invalid: access key `{k}` is not the local \
                 cloud's; use the credentials `skyform local env` prints"
            ),
        ),
        Mismatch => AwsError::new(
            StatusCode::FORBIDDEN,
            if lambda { "InvalidSignatureException" } else { "SignatureDoesNotMatch" },
            "The request signature we calculated does not match the signature you provided. Check your \
             AWS Secret Access Key and signing method.",
        ),
        Expired(m) => AwsError::new(
            if lambda { StatusCode::FORBIDDEN } else { StatusCode::BAD_REQUEST },
            if lambda { "InvalidSignatureException" } else { "SignatureDoesNotMatch" },
            m,
        ),
    }
}

/// Serves one request on the endpoint.
pub async fn handle(ctx: Arc<AwsContext>, req: Request<Incoming>, _peer: SocketAddr) -> Resp {
    // S3 streams its bodies and verifies SigV4 (incl. presigned URLs and aws-chunked
    // payloads) in s3s, before any operation runs.
    if crate::buckets::is_s3(&req) {
        // A function's S3 call carries its trace on to the bucket's notifications.
        let trace = req.headers().get("x-amzn-trace-id").and_then(|v| v.to_str().ok());
        return match trace.map(|h| crate::trace::Ctx::from_header(Some(h), "S3")) {
            Some(t) => crate::trace::scope(t, ctx.buckets.serve(req)).await,
            None => ctx.buckets.serve(req).await,
        };
    }
    let request_id = crate::pool::new_request_id();
    let (parts, body) = match http::body_bytes(req).await {
        Ok(x) => x,
        Err(e) => {
            return AwsError::bad("InvalidRequest", format!("cannot read the body: {e}"))
                .render(Service::Unknown, &request_id);
        }
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let service = classify(&parts.method, &path, &parts.headers, &body);
    let signed = sigv4::SignedRequest {
        method: parts.method.as_str(),
        raw_path: &path,
        raw_query: &query,
        headers: &parts.headers,
        body: &body,
    };
    if let Err(e) = sigv4::verify(&signed, &ctx.credentials.access_key_id, &ctx.credentials.secret_access_key)
    {
        return auth_error(service, e).render(service, &request_id);
    }
    let form = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let mut params = sigv4::parse_query(&query);
    if form {
        params.extend(sigv4::parse_query(&String::from_utf8_lossy(&body)));
    }
    let areq =
        AwsRequest { method: parts.method, path, query, headers: parts.headers, body, params, request_id };
    // A call made by a function carries its trace (X-Amzn-Trace-Id, sent by the AWS SDKs):
    // what the call causes (a message, a fan-out) goes on in that trace (crate::trace).
    if let Some(header) = areq.header("x-amzn-trace-id").map(str::to_string) {
        let action = areq
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .or_else(|| areq.param("Action"))
            .unwrap_or("Invoke")
            .to_string();
        let service_name = match service {
            Service::Sqs => "SQS",
            Service::Sns => "SNS",
            Service::Lambda => "Lambda",
            Service::DynamoDb => "DynamoDB",
            Service::Unknown => "AWS",
        };
        // What the call is about: the queue, table, topic or function (by name).
        let body: serde_json::Value = serde_json::from_slice(&areq.body).unwrap_or_default();
        let about = ["QueueUrl", "TableName", "FunctionName"]
            .iter()
            .find_map(|k| body[*k].as_str())
            .or_else(|| areq.param("TopicArn"))
            .or_else(|| areq.param("QueueUrl"))
            .map(|v| v.rsplit(['/', ':']).next().unwrap_or(v).to_string());
        let name = match about {
            Some(a) => format!("{service_name} {action} {a}"),
            None => format!("{service_name} {action}"),
        };
        let trace = crate::trace::Ctx::from_header(Some(&header), name.clone());
        let span = crate::trace::new_span_id();
        let started = (crate::logs::now_ms(), std::time::Instant::now());
        let resp = crate::trace::scope(trace.child(&span), dispatch(&ctx, service, &areq)).await;
        let status = if resp.status().is_success() { "ok" } else { "error" };
        let detail = serde_json::json!({"status": resp.status().as_u16()});
        crate::trace::record_step(&trace, &span, "aws", &name, started, status, detail);
        return resp;
    }
    dispatch(&ctx, service, &areq).await
}

async fn dispatch(ctx: &AwsContext, service: Service, areq: &AwsRequest) -> Resp {
    match service {
        Service::Sqs => sqs::handle(ctx, areq).await,
        Service::Sns => sns::handle(ctx, areq).await,
        Service::Lambda => lambda::handle(ctx, areq).await,
        Service::DynamoDb => dynamodb::handle(ctx, areq).await,
        Service::Unknown => AwsError::bad(
            "UnknownOperation",
            "this endpoint serves SQS (JSON protocol), SNS (query protocol) and Lambda Invoke",
        )
        .query_xml(&areq.request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_arns() {
        assert_eq!(function_name("f"), "f");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:000000000000:function:f"), "f");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"), "f");
        assert_eq!(function_name("000000000000:function:f"), "f");
    }

    #[test]
    fn credentials_are_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("skyform-cred-{}", crate::pool::rand_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("credentials.json");
        let a = Credentials::load_or_create(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(a.access_key_id.len(), 20);
        assert_eq!(a.secret_access_key.len(), 40);
        assert_eq!(Credentials::load_or_create(&p).unwrap(), a);
        std::fs::write(&p, "nope").unwrap();
        assert!(Credentials::load_or_create(&p).unwrap_err().to_string().contains("delete it"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
