//! Lambda's `Invoke` (REST-JSON, `POST /2015-03-31/functions/{name}/invocations`) on the local
//! AWS endpoint, so that one function invokes another with boto3 as on AWS.
//!
//! `X-Amz-Invocation-Type`: `RequestResponse` (the default) answers 200 with the function's
//! result, and `X-Amz-Function-Error: Unhandled` with Lambda's error payload when it failed;
//! `Event` answers 202 at once and runs the function in the background; `DryRun` answers 204.
//! An unknown function is 404 `ResourceNotFoundException`; a payload that is not JSON is 400
//! `InvalidRequestContentException`.

use bytes::Bytes;
use hyper::StatusCode;

use super::{AwsContext, AwsError, AwsRequest, set_header};
use crate::http::{self, Resp};
use crate::pool::InvokeResult;

pub async fn handle(ctx: &AwsContext, req: &AwsRequest) -> Resp {
    let rid = &req.request_id;
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let name = match segs.as_slice() {
        ["2015-03-31", "functions", name, "invocations"] if req.method == hyper::Method::POST => {
            crate::http::percent_decode(name)
        }
        _ => {
            return AwsError::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                format!(
                    "{} {} is not served; the local cloud serves Lambda's Invoke only",
                    req.method, req.path
                ),
            )
            .rest_json(rid);
        }
    };
    let Some(pool) = ctx.function(&name) else {
        return AwsError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!(
                "Function not found: {}",
                AwsContext::arn("lambda", &format!("function:{}", super::function_name(&name)))
            ),
        )
        .rest_json(rid);
    };
    if req.body.len() > crate::gateway::MAX_INVOKE_PAYLOAD {
        return AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            format!(
                "Request must be smaller than {} bytes for the InvokeFunction operation",
                crate::gateway::MAX_INVOKE_PAYLOAD
            ),
        )
        .rest_json(rid);
    }
    let payload = if req.body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        req.body.clone()
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        return AwsError::bad(
            "InvalidRequestContentException",
            format!("Could not parse request body into json: {e}"),
        )
        .rest_json(rid);
    }
    match req.header("x-amz-invocation-type").unwrap_or("RequestResponse") {
        "RequestResponse" => {
            let invoked = pool.invoke(payload).await;
            let (body, error) = match invoked.result {
                InvokeResult::Ok(b) => (b, false),
                InvokeResult::Error { body, .. } => (body, true),
            };
            let mut r = http::response(StatusCode::OK, "application/json", body);
            set_header(&mut r, "x-amzn-requestid", &invoked.request_id);
            set_header(&mut r, "x-amz-executed-version", "$LATEST");
            if error {
                set_header(&mut r, "x-amz-function-error", "Unhandled");
            }
            r
        }
        "Event" => {
            tokio::spawn(async move {
                let _ = pool.invoke(payload).await;
            });
            let mut r = http::response(StatusCode::ACCEPTED, "application/json", Bytes::new());
            set_header(&mut r, "x-amzn-requestid", rid);
            r
        }
        "DryRun" => {
            let mut r = http::response(StatusCode::NO_CONTENT, "application/json", Bytes::new());
            set_header(&mut r, "x-amzn-requestid", rid);
            r
        }
        other => AwsError::bad(
            "InvalidParameterValueException",
            format!("X-Amz-Invocation-Type `{other}` is not one of RequestResponse, Event, DryRun"),
        )
        .rest_json(rid),
    }
}
