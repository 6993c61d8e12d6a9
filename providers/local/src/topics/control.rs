//! The daemon's control routes for `local:Topic` and `local:TopicSubscription`, called by the
//! provider (bodies and answers are JSON, like the rest of the control API):
//!
//! | method and path | what |
//! |---|---|
//! | `PUT /v1/stacks/{stack}/topics/{name}` | deploy `{"fifo": bool}`; answers `{arn, topic_name, fifo}` |
//! | `GET`/`DELETE /v1/stacks/{stack}/topics/{name}` | read (404 when absent) / delete (with its subscriptions) |
//! | `PUT /v1/stacks/{stack}/topic-subscriptions/{name}` | deploy a [`SubscriptionSpec`]; answers the view |
//! | `GET`/`DELETE /v1/stacks/{stack}/topic-subscriptions/{name}` | read / delete |
//!
//! `{name}` is the resource name; a FIFO topic's physical name gets the `.fifo` suffix.
//!
//! `DELETE` takes an optional body `{"arn": ID}`, the resource id the engine holds: it deletes
//! the topic or subscription only if it still has that ARN. A create-before-delete replacement
//! first deploys the new one under the same resource name (another physical topic, or another
//! subscription ARN), then deletes the old one by its id, which must not touch the new one.

use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Protocol, SubscriptionRecord, TopicError, Topics};
use crate::http::{self, Resp};

/// What the provider deploys for a `local:TopicSubscription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionSpec {
    /// The topic's ARN.
    pub topic: String,
    /// A function name (protocol `lambda`)...
    #[serde(default)]
    pub function: Option<String>,
    /// ... or a queue ARN (protocol `sqs`).
    #[serde(default)]
    pub queue: Option<String>,
    /// A filter policy (a JSON object), or none.
    #[serde(default)]
    pub filter_policy: Option<Value>,
    #[serde(default)]
    pub filter_policy_scope: Option<String>,
    #[serde(default)]
    pub raw_message_delivery: bool,
}

/// The physical name of the `local:Topic` named `name`.
pub fn physical_name(name: &str, fifo: bool) -> String {
    if fifo && !name.ends_with(".fifo") { format!("{name}.fifo") } else { name.to_string() }
}

fn error(e: TopicError) -> Resp {
    let status = match e {
        TopicError::NotFound(_) => StatusCode::NOT_FOUND,
        TopicError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
        TopicError::Conflict(_) => StatusCode::CONFLICT,
        TopicError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    http::message(status, e.message())
}

fn topic_view(name: &str, t: &super::TopicRecord) -> Value {
    json!({"arn": t.arn, "topic_name": name, "fifo": t.fifo})
}

pub fn subscription_view(topic_arn: &str, r: &SubscriptionRecord) -> Value {
    json!({
        "arn": r.arn,
        "topic": topic_arn,
        "protocol": r.protocol.as_str(),
        "endpoint": r.endpoint,
        "function": (r.protocol == Protocol::Lambda).then(|| crate::aws::function_name(&r.endpoint)),
        "queue": (r.protocol == Protocol::Sqs).then_some(&r.endpoint),
        "filter_policy": r.filter_policy.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()),
        "filter_policy_scope": r.filter_policy_scope,
        "raw_message_delivery": r.raw_message_delivery,
    })
}

/// `PUT`/`GET`/`DELETE` on `/v1/stacks/{stack}/topics/{name}`.
pub fn topic(topics: &Topics, method: &Method, stack: &str, name: &str, body: &[u8]) -> Resp {
    match *method {
        Method::PUT => {
            let fifo = match serde_json::from_slice::<Value>(body) {
                Ok(v) => v["fifo"].as_bool().unwrap_or(false),
                Err(e) => return http::message(StatusCode::BAD_REQUEST, &format!("bad topic spec: {e}")),
            };
            let physical = physical_name(name, fifo);
            match topics.put_owned_topic(stack, &physical, fifo) {
                Ok(t) => http::json(StatusCode::OK, &topic_view(&physical, &t)),
                Err(e) => error(e),
            }
        }
        Method::GET => {
            for physical in [name.to_string(), physical_name(name, true)] {
                if let Some(t) = topics.owned_topic(stack, &physical) {
                    return http::json(StatusCode::OK, &topic_view(&physical, &t));
                }
            }
            http::message(StatusCode::NOT_FOUND, &format!("no topic `{name}` in stack `{stack}`"))
        }
        Method::DELETE => {
            let mut deleted = false;
            let names = match arn_in(body) {
                Some(arn) => match topics.name_of(&arn) {
                    Some(n) => vec![n.to_string()],
                    None => Vec::new(),
                },
                None => vec![name.to_string(), physical_name(name, true)],
            };
            for physical in names {
                match topics.delete_owned_topic(stack, &physical) {
                    Ok(d) => deleted |= d,
                    Err(e) => return error(e),
                }
            }
            if deleted {
                http::json(StatusCode::OK, &json!({"deleted": true}))
            } else {
                http::message(StatusCode::NOT_FOUND, &format!("no topic `{name}` in stack `{stack}`"))
            }
        }
        _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

/// `PUT`/`GET`/`DELETE` on `/v1/stacks/{stack}/topic-subscriptions/{name}`.
pub fn subscription(topics: &Topics, method: &Method, stack: &str, name: &str, body: &[u8]) -> Resp {
    let owner = format!("{stack}/{name}");
    match *method {
        Method::PUT => {
            let spec: SubscriptionSpec = match serde_json::from_slice(body) {
                Ok(s) => s,
                Err(e) => {
                    return http::message(StatusCode::BAD_REQUEST, &format!("bad subscription spec: {e}"));
                }
            };
            let (protocol, endpoint) = match (&spec.function, &spec.queue) {
                (Some(f), None) => {
                    (Protocol::Lambda, crate::aws::AwsContext::arn("lambda", &format!("function:{f}")))
                }
                (None, Some(q)) => (Protocol::Sqs, q.clone()),
                _ => {
                    return http::message(
                        StatusCode::BAD_REQUEST,
                        "a topic subscription names exactly one of `function` and `queue`",
                    );
                }
            };
            let mut attrs = BTreeMap::new();
            if let Some(p) = &spec.filter_policy {
                attrs.insert("FilterPolicy".to_string(), p.to_string());
            }
            if let Some(s) = &spec.filter_policy_scope {
                attrs.insert("FilterPolicyScope".to_string(), s.clone());
            }
            attrs.insert("RawMessageDelivery".to_string(), spec.raw_message_delivery.to_string());
            match topics.put_owned_subscription(&owner, &spec.topic, protocol, &endpoint, &attrs) {
                Ok(r) => http::json(StatusCode::OK, &subscription_view(&spec.topic, &r)),
                Err(TopicError::NotFound(_)) => http::message(
                    StatusCode::NOT_FOUND,
                    &format!("topic `{}` does not exist; deploy the topic first", spec.topic),
                ),
                Err(e) => error(e),
            }
        }
        Method::GET => match topics.owned_subscription(&owner) {
            Some((t, r)) => http::json(StatusCode::OK, &subscription_view(&t, &r)),
            None => http::message(
                StatusCode::NOT_FOUND,
                &format!("no topic subscription `{name}` in stack `{stack}`"),
            ),
        },
        Method::DELETE => match arn_in(body) {
            Some(arn) if topics.owned_subscription(&owner).is_none_or(|(_, r)| r.arn != arn) => {
                http::message(
                    StatusCode::NOT_FOUND,
                    &format!("no topic subscription `{name}` with ARN {arn} in stack `{stack}`"),
                )
            }
            _ => match topics.delete_owned_subscription(&owner) {
                Ok(true) => http::json(StatusCode::OK, &json!({"deleted": true})),
                Ok(false) => http::message(
                    StatusCode::NOT_FOUND,
                    &format!("no topic subscription `{name}` in stack `{stack}`"),
                ),
                Err(e) => error(e),
            },
        },
        _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

/// The `arn` of a `DELETE` body, if any.
fn arn_in(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body).ok()?["arn"].as_str().map(str::to_string)
}

/// Every topic for `GET /v1/status` (the shape of [`crate::TopicStatus`]).
pub fn status(topics: &Topics) -> Vec<Value> {
    topics
        .all()
        .into_iter()
        .map(|(name, t)| {
            let mut subscriptions: Vec<String> = t
                .subscriptions
                .values()
                .map(|r| {
                    let target = match r.protocol {
                        Protocol::Lambda => crate::aws::function_name(&r.endpoint),
                        Protocol::Sqs => crate::queue::queue_name_of(&r.endpoint),
                    };
                    let raw = if r.raw_message_delivery { " (raw)" } else { "" };
                    let filtered = if r.filter_policy.is_some() { " (filtered)" } else { "" };
                    format!("{} {target}{raw}{filtered}", r.protocol.as_str())
                })
                .collect();
            subscriptions.sort();
            json!({"name": name, "arn": t.arn, "fifo": t.fifo, "stack": t.owner, "subscriptions": subscriptions})
        })
        .collect()
}
