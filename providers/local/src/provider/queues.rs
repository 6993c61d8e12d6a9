//! `local:Queue` and `local:QueueSubscription` in the provider: `check` validates and fills
//! SQS's defaults (so a bad setting fails at preview), the rest calls the daemon's queue and
//! queue-subscription routes ([`crate::queue_control`], [`crate::trigger`]).
//!
//! A queue's SQS name is its resource name, with characters SQS does not allow replaced by
//! `-`, cut to 80 characters, and `.fifo` appended for FIFO queues.

use serde_json::{Value, json};
use skyform_protocol::*;

use super::{LocalProvider, Res, is_unknown};
use crate::http::percent_encode;
use crate::queue::{DeadLetter, QueueConfig};
use crate::trigger::SubscriptionSpec;

pub const QUEUE: &str = "local:Queue";
pub const QUEUE_SUBSCRIPTION: &str = "local:QueueSubscription";

pub fn handles(type_: &str) -> bool {
    type_ == QUEUE || type_ == QUEUE_SUBSCRIPTION
}

pub fn queue_path(stack: &str, queue_name: &str) -> String {
    format!("/v1/stacks/{}/queues/{}", percent_encode(stack), percent_encode(queue_name))
}

pub fn subscription_path(stack: &str, name: &str) -> String {
    format!("/v1/stacks/{}/queue-subscriptions/{}", percent_encode(stack), percent_encode(name))
}

/// The SQS name of the queue resource `name`.
pub fn queue_name(name: &str, fifo: bool) -> String {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    let mut s: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    let room = if fifo { 75 } else { 80 };
    s.truncate(room);
    if s.is_empty() {
        s.push('q');
    }
    if fifo {
        s.push_str(".fifo");
    }
    s
}

pub fn schemas(m: &mut std::collections::BTreeMap<String, ResourceSchema>) {
    m.insert(
        QUEUE.to_string(),
        ResourceSchema {
            description: "An SQS queue of the local cloud, served on its AWS endpoint".into(),
            inputs: json!({
                "type": "object",
                "properties": {
                    "fifo": {"type": "boolean", "default": false},
                    "visibility_timeout": {"type": "integer", "default": 30, "description": "seconds, 0 to 43200"},
                    "message_retention": {"type": "integer", "default": 345600, "description": "seconds, 60 to 1209600"},
                    "delay": {"type": "integer", "default": 0, "description": "seconds, 0 to 900"},
                    "content_based_deduplication": {"type": "boolean", "default": false},
                    "dead_letter": {"type": ["object", "null"], "properties": {
                        "queue": {"type": "string", "description": "the dead-letter queue's ARN"},
                        "max_receive_count": {"type": "integer", "minimum": 1}
                    }}
                }
            }),
            outputs: vec!["url".into(), "arn".into(), "queue_name".into()],
            replace_on_changes: vec!["fifo".into()],
            stable_outputs: vec!["url".into(), "arn".into(), "queue_name".into()],
        },
    );
    m.insert(
        QUEUE_SUBSCRIPTION.to_string(),
        ResourceSchema {
            description: "Invokes a function with batches of a queue's messages (an SQS event), as Lambda's \
                          event source mapping does"
                .into(),
            inputs: json!({
                "type": "object",
                "required": ["queue", "function"],
                "properties": {
                    "queue": {"type": "string", "description": "the queue's ARN"},
                    "function": {"type": "string", "description": "the function's name"},
                    "batch_size": {"type": "integer", "default": 10, "description": "1 to 10"},
                    "batching_window": {"type": "number", "default": 0, "description": "seconds to wait for a fuller batch, 0 to 300"},
                    "maximum_concurrency": {"type": "integer", "default": 5, "description": "concurrent invocations, 1 to 1000"}
                }
            }),
            outputs: vec!["uuid".into(), "queue".into(), "function".into()],
            replace_on_changes: vec!["queue".into()],
            stable_outputs: vec!["uuid".into()],
        },
    );
}

/// A number input within bounds, or its default.
fn number(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    default: f64,
    (min, max): (f64, f64),
    failures: &mut Vec<CheckFailure>,
) -> Value {
    match obj.get(key) {
        None | Some(Value::Null) => json!(default),
        Some(v) if is_unknown(v) => v.clone(),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if !(min..=max).contains(&x) {
                failures.push(CheckFailure {
                    property: key.into(),
                    reason: format!("{key} must be between {min} and {max}, got {n}"),
                });
            }
            Value::Number(n.clone())
        }
        Some(other) => {
            failures.push(CheckFailure {
                property: key.into(),
                reason: format!("expected a number, got {other}"),
            });
            other.clone()
        }
    }
}

fn boolean(obj: &serde_json::Map<String, Value>, key: &str, failures: &mut Vec<CheckFailure>) -> Value {
    match obj.get(key) {
        None | Some(Value::Null) => json!(false),
        Some(v @ Value::Bool(_)) => v.clone(),
        Some(v) if is_unknown(v) => v.clone(),
        Some(other) => {
            failures.push(CheckFailure {
                property: key.into(),
                reason: format!("expected true or false, got {other}"),
            });
            other.clone()
        }
    }
}

pub fn check(type_: &str, inputs: &Value) -> (Value, Vec<CheckFailure>) {
    let obj = inputs.as_object().cloned().unwrap_or_default();
    let mut failures = Vec::new();
    if type_ == QUEUE {
        let fifo = boolean(&obj, "fifo", &mut failures);
        let dedup = boolean(&obj, "content_based_deduplication", &mut failures);
        if dedup == json!(true) && fifo == json!(false) {
            failures.push(CheckFailure {
                property: "content_based_deduplication".into(),
                reason: "content-based deduplication is for FIFO queues only; set `fifo` too".into(),
            });
        }
        let dead_letter = match obj.get("dead_letter") {
            None | Some(Value::Null) => Value::Null,
            Some(v) if is_unknown(v) => v.clone(),
            Some(Value::Object(d)) => {
                if !d.get("queue").is_some_and(|q| q.is_string()) {
                    failures.push(CheckFailure {
                        property: "dead_letter.queue".into(),
                        reason: "expected the dead-letter queue's ARN".into(),
                    });
                }
                let max = number(d, "max_receive_count", 0.0, (1.0, 1000.0), &mut failures);
                json!({"queue": d.get("queue").cloned().unwrap_or(Value::Null), "max_receive_count": max})
            }
            Some(other) => {
                failures.push(CheckFailure {
                    property: "dead_letter".into(),
                    reason: format!(
                        "expected null or {{\"queue\": ARN, \"max_receive_count\": N}}, got {other}"
                    ),
                });
                other.clone()
            }
        };
        let checked = json!({
            "fifo": fifo,
            "visibility_timeout": number(&obj, "visibility_timeout", 30.0, (0.0, 43_200.0), &mut failures),
            "message_retention": number(&obj, "message_retention", 345_600.0, (60.0, 1_209_600.0), &mut failures),
            "delay": number(&obj, "delay", 0.0, (0.0, 900.0), &mut failures),
            "content_based_deduplication": dedup,
            "dead_letter": dead_letter,
        });
        (checked, failures)
    } else {
        for key in ["queue", "function"] {
            match obj.get(key) {
                Some(Value::String(_)) => {}
                Some(v) if is_unknown(v) => {}
                other => failures.push(CheckFailure {
                    property: key.into(),
                    reason: format!(
                        "expected the {}, got {}",
                        if key == "queue" { "queue's ARN" } else { "function's name" },
                        other.cloned().unwrap_or(Value::Null)
                    ),
                }),
            }
        }
        let checked = json!({
            "queue": obj.get("queue").cloned().unwrap_or(Value::Null),
            "function": obj.get("function").cloned().unwrap_or(Value::Null),
            "batch_size": number(&obj, "batch_size", 10.0, (1.0, 10.0), &mut failures),
            "batching_window": number(&obj, "batching_window", 0.0, (0.0, 300.0), &mut failures),
            "maximum_concurrency": number(&obj, "maximum_concurrency", 5.0, (1.0, 1000.0), &mut failures),
        });
        (checked, failures)
    }
}

fn config(inputs: &Value) -> Res<QueueConfig> {
    let n = |k: &str, d: u64| inputs[k].as_u64().unwrap_or(d) as u32;
    let dead_letter = match &inputs["dead_letter"] {
        Value::Object(d) => Some(DeadLetter {
            queue: d.get("queue").and_then(Value::as_str).unwrap_or_default().to_string(),
            max_receive_count: d.get("max_receive_count").and_then(Value::as_u64).unwrap_or(1) as u32,
        }),
        _ => None,
    };
    Ok(QueueConfig {
        fifo: inputs["fifo"].as_bool().unwrap_or(false),
        visibility_timeout: n("visibility_timeout", 30),
        message_retention: n("message_retention", 345_600),
        delay: n("delay", 0),
        receive_wait: 0,
        content_based_deduplication: inputs["content_based_deduplication"].as_bool().unwrap_or(false),
        dead_letter,
        created_ms: 0,
    })
}

fn queue_outputs(view: &Value) -> Value {
    json!({"url": view["url"], "arn": view["arn"], "queue_name": view["queue_name"]})
}

fn subscription_outputs(view: &Value) -> Value {
    json!({"uuid": view["uuid"], "queue": view["spec"]["queue"], "function": view["spec"]["function"]})
}

impl LocalProvider {
    fn physical(&self, type_: &str, name: &str, inputs: &Value) -> Res<String> {
        let cfg = self.config()?;
        Ok(if type_ == QUEUE {
            queue_path(&cfg.stack, &queue_name(name, inputs["fifo"].as_bool().unwrap_or(false)))
        } else {
            subscription_path(&cfg.stack, name)
        })
    }

    /// Creates or updates a queue or a subscription; answers its outputs.
    pub(super) async fn put_queue_resource(&self, type_: &str, name: &str, inputs: &Value) -> Res<Value> {
        let path = self.physical(type_, name, inputs)?;
        let body = if type_ == QUEUE {
            serde_json::to_vec(&config(inputs)?)
        } else {
            serde_json::to_vec(&SubscriptionSpec {
                queue: inputs["queue"].as_str().unwrap_or_default().to_string(),
                function: inputs["function"].as_str().unwrap_or_default().to_string(),
                batch_size: inputs["batch_size"].as_u64().unwrap_or(10) as u32,
                batching_window: inputs["batching_window"].as_f64().unwrap_or(0.0),
                maximum_concurrency: inputs["maximum_concurrency"].as_u64().unwrap_or(5) as u32,
            })
        }
        .map_err(|e| ProviderError::failed(e.to_string()))?;
        let view = self.control_put(&path, &body, &format!("`{name}`")).await?;
        Ok(if type_ == QUEUE { queue_outputs(&view) } else { subscription_outputs(&view) })
    }

    pub(super) async fn create_queue_resource(&self, req: CreateRequest) -> Res<CreateResponse> {
        let outputs = self.put_queue_resource(&req.type_, &req.name, &req.inputs).await?;
        let id = if req.type_ == QUEUE {
            outputs["queue_name"].as_str().unwrap_or(&req.name).to_string()
        } else {
            outputs["uuid"].as_str().unwrap_or(&req.name).to_string()
        };
        Ok(CreateResponse { id, outputs })
    }

    pub(super) async fn read_queue_resource(&self, req: &ReadRequest) -> Res<ReadResponse> {
        let path = self.physical(&req.type_, &req.name, &req.inputs)?;
        let Some(view) = self.control_get(&path).await? else {
            return Ok(ReadResponse { resource: None });
        };
        let resource = if req.type_ == QUEUE {
            let c: QueueConfig = serde_json::from_value(view["config"].clone())
                .map_err(|e| ProviderError::failed(e.to_string()))?;
            let inputs = json!({
                "fifo": c.fifo,
                "visibility_timeout": c.visibility_timeout,
                "message_retention": c.message_retention,
                "delay": c.delay,
                "content_based_deduplication": c.content_based_deduplication,
                "dead_letter": c.dead_letter.map(|d| json!({"queue": d.queue, "max_receive_count": d.max_receive_count})),
            });
            ReadResource {
                id: view["queue_name"].as_str().unwrap_or_default().into(),
                inputs,
                outputs: queue_outputs(&view),
            }
        } else {
            let s = &view["spec"];
            let inputs = json!({
                "queue": s["queue"],
                "function": s["function"],
                "batch_size": s["batch_size"],
                "batching_window": s["batching_window"],
                "maximum_concurrency": s["maximum_concurrency"],
            });
            ReadResource {
                id: view["uuid"].as_str().unwrap_or_default().into(),
                inputs,
                outputs: subscription_outputs(&view),
            }
        };
        Ok(ReadResponse { resource: Some(resource) })
    }

    pub(super) async fn delete_queue_resource(&self, req: &DeleteRequest) -> Res<DeleteResponse> {
        let path = self.physical(&req.type_, &req.name, &req.inputs)?;
        self.control_delete(&path, &[], &req.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_valid_sqs_names() {
        assert_eq!(queue_name("jobs", false), "jobs");
        assert_eq!(queue_name("app/jobs", false), "app-jobs");
        assert_eq!(queue_name("orders", true), "orders.fifo");
        assert_eq!(queue_name("orders.fifo", true), "orders.fifo");
        assert_eq!(queue_name(&"x".repeat(100), true).len(), 80);
        for n in ["jobs", "app/jobs", "orders"] {
            assert!(crate::queue::check_queue_name(&queue_name(n, true), true).is_ok());
        }
    }

    #[test]
    fn bad_settings_fail_at_check() {
        let (_, f) = check(
            QUEUE,
            &json!({"visibility_timeout": 50000, "dead_letter": {"queue": "arn", "max_receive_count": 0}}),
        );
        let props: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(props, ["max_receive_count", "visibility_timeout"]);
        let (checked, f) = check(QUEUE, &json!({}));
        assert!(f.is_empty());
        assert_eq!(checked["visibility_timeout"], 30.0);
        let (_, f) = check(QUEUE_SUBSCRIPTION, &json!({"queue": "q", "function": "f", "batch_size": 11}));
        assert_eq!(f[0].property, "batch_size");
        let (_, f) = check(QUEUE_SUBSCRIPTION, &json!({"function": "f"}));
        assert_eq!(f[0].property, "queue");
    }
}
