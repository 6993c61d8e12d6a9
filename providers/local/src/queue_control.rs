//! The control API's queue routes (`/v1/stacks/{stack}/queues/{name}`), which the provider's
//! `local:Queue` calls, and the queues in `GET /v1/status`.
//!
//! `{name}` is the queue's SQS name (queue names belong to the account and region, as on AWS,
//! so the stack is not part of it). `PUT` takes a [`QueueConfig`] and creates the queue or
//! changes its settings (a standard queue cannot become FIFO: replace it); `GET` answers
//! `{queue_name, url, arn, config, depth}`; `DELETE` removes the queue and its messages.

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::aws::AwsContext;
use crate::http::{self, Resp};
use crate::queue::QueueConfig;

pub fn view(ctx: &AwsContext, q: &crate::queue::Queue) -> Value {
    json!({
        "queue_name": q.name,
        "url": q.url(ctx.port),
        "arn": q.arn(),
        "config": q.config(),
        "depth": q.depth(),
    })
}

pub async fn queue(ctx: &AwsContext, method: &Method, _stack: &str, name: &str, body: &Bytes) -> Resp {
    match *method {
        Method::PUT => {
            let config: QueueConfig = match serde_json::from_slice(body) {
                Ok(c) => c,
                Err(e) => return http::message(StatusCode::BAD_REQUEST, &format!("bad queue settings: {e}")),
            };
            if let Some(dl) = &config.dead_letter
                && crate::queue::queue_name_of(&dl.queue) == name
            {
                return http::message(StatusCode::BAD_REQUEST, "a queue cannot be its own dead-letter queue");
            }
            match ctx.queues.put(name, config).await {
                Ok(q) => http::json(StatusCode::OK, &view(ctx, &q)),
                Err(e) => http::message(StatusCode::BAD_REQUEST, &e.message),
            }
        }
        Method::GET => match ctx.queues.get(name) {
            Some(q) => http::json(StatusCode::OK, &view(ctx, &q)),
            None => http::message(StatusCode::NOT_FOUND, &format!("no queue `{name}`")),
        },
        Method::DELETE => {
            if ctx.queues.delete(name).await {
                http::json(StatusCode::OK, &json!({"deleted": true}))
            } else {
                http::message(StatusCode::NOT_FOUND, &format!("no queue `{name}`"))
            }
        }
        _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

/// Every queue with its depth, for `GET /v1/status`.
pub fn status(ctx: &AwsContext) -> Vec<Value> {
    ctx.queues
        .names()
        .iter()
        .filter_map(|n| ctx.queues.get(n))
        .map(|q| {
            let d = q.depth();
            json!({
                "name": q.name,
                "url": q.url(ctx.port),
                "arn": q.arn(),
                "fifo": q.config().fifo,
                "visible": d.visible,
                "in_flight": d.in_flight,
                "delayed": d.delayed,
                "log_syncs": q.stats.fsyncs.load(std::sync::atomic::Ordering::Relaxed),
                "log_records": q.stats.records.load(std::sync::atomic::Ordering::Relaxed),
            })
        })
        .collect()
}
