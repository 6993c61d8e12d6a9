//! Day-2 operations on what an `aws` stack deployed, for the CLI's `invoke` and `logs`: Lambda
//! `Invoke` and CloudWatch Logs `FilterLogEvents`, over the same signed client (and credential
//! chain) as the provider. They live here rather than in the CLI so that the AWS wire details
//! stay in one crate.

use serde_json::{Value, json};

use crate::http::{Aws, Request, Result};
use crate::sigv4::uri_encode;

/// What `Invoke` answered.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// 200 for a synchronous call, 202 for an accepted asynchronous one.
    pub status: u16,
    pub request_id: String,
    /// `Unhandled` (or `Handled`) when the function failed; the payload is then Lambda's error
    /// document (`errorType`, `errorMessage`).
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
}

/// Lambda `Invoke`: `RequestResponse` (waits for the result) or `Event` (queued, answers 202).
pub async fn invoke(aws: &Aws, function: &str, payload: &[u8], asynchronous: bool) -> Result<Invoked> {
    let mut req = Request::new(
        "lambda",
        reqwest::Method::POST,
        format!("/2015-03-31/functions/{}/invocations", uri_encode(function)),
    );
    let kind = if asynchronous { "Event" } else { "RequestResponse" };
    req.headers.push(("x-amz-invocation-type".into(), kind.into()));
    req.headers.push(("content-type".into(), "application/json".into()));
    req.body = payload.to_vec();
    let resp = aws.send(req).await?;
    let header = |k: &str| resp.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok(Invoked {
        status: resp.status,
        request_id: header("x-amzn-requestid").unwrap_or_default(),
        function_error: header("x-amz-function-error"),
        payload: resp.body,
    })
}

/// One log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    pub id: String,
    pub time_ms: u64,
    pub stream: String,
    pub message: String,
}

/// The log group Lambda writes a function's output to.
pub fn function_log_group(function_name: &str) -> String {
    format!("/aws/lambda/{function_name}")
}

/// Every event of `group` from `start_ms` on, oldest first: `FilterLogEvents`, following
/// `nextToken` through every page.
pub async fn log_events(aws: &Aws, group: &str, start_ms: Option<u64>) -> Result<Vec<LogEvent>> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"logGroupName": group, "interleaved": true});
        if let Some(s) = start_ms {
            body["startTime"] = json!(s);
        }
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = aws.json("logs", "1.1", "Logs_20140328.FilterLogEvents", body).await?;
        for e in page["events"].as_array().into_iter().flatten() {
            events.push(LogEvent {
                id: e["eventId"].as_str().unwrap_or_default().to_string(),
                time_ms: e["timestamp"].as_u64().unwrap_or(0),
                stream: e["logStreamName"].as_str().unwrap_or_default().to_string(),
                message: e["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        match page["nextToken"].as_str() {
            Some(t) if !t.is_empty() && token.as_deref() != Some(t) => token = Some(t.to_string()),
            _ => break,
        }
    }
    events.sort_by_key(|e| e.time_ms);
    Ok(events)
}

/// The physical name and ARN of a function from its recorded outputs.
pub fn function_identity(outputs: &Value) -> Option<(String, String)> {
    Some((outputs.get("name")?.as_str()?.to_string(), outputs.get("arn")?.as_str()?.to_string()))
}

/// What a preview's header says the stack will change: "aws: region R, account A, endpoint E".
/// The account comes from STS `GetCallerIdentity`; when that fails the account is left out (the
/// provider's own `configure` reports the failure).
pub async fn describe_target(aws: &Aws) -> String {
    let account = match aws.account_id().await {
        Ok(a) => format!(", account {a}"),
        Err(_) => String::new(),
    };
    let endpoint = aws.settings.endpoint.clone().unwrap_or_else(|| "AWS (public endpoints)".into());
    format!("aws: region {}{account}, endpoint {endpoint}", aws.region())
}
