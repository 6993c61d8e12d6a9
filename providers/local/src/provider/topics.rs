//! `local:Topic` and `local:TopicSubscription` in the provider: `check` validates the topic's
//! name and a subscription's filter policy (so a bad policy fails at preview with SNS's reason),
//! the rest calls the daemon's topic routes ([`crate::topics::control`]).

use serde_json::{Value, json};
use skyform_protocol::*;

use super::{LocalProvider, Res, is_unknown};
use crate::http::percent_encode;
use crate::topics::control::{SubscriptionSpec, physical_name};
use crate::topics::{FilterPolicy, Scope, check_topic_name};

pub const TOPIC: &str = "local:Topic";
pub const TOPIC_SUBSCRIPTION: &str = "local:TopicSubscription";

pub fn topic_path(stack: &str, name: &str) -> String {
    format!("/v1/stacks/{}/topics/{}", percent_encode(stack), percent_encode(name))
}

pub fn subscription_path(stack: &str, name: &str) -> String {
    format!("/v1/stacks/{}/topic-subscriptions/{}", percent_encode(stack), percent_encode(name))
}

pub fn topic_schema() -> ResourceSchema {
    ResourceSchema {
        description:
            "An SNS topic of the local cloud (Publish with boto3 or the AWS CLI on the local endpoint)".into(),
        inputs: json!({
            "type": "object",
            "properties": {
                "fifo": {"type": "boolean", "default": false, "description": "a FIFO topic; its name gets `.fifo`"}
            }
        }),
        outputs: vec!["arn".into(), "topic_name".into()],
        replace_on_changes: vec!["fifo".into()],
        stable_outputs: vec!["arn".into(), "topic_name".into()],
    }
}

pub fn subscription_schema() -> ResourceSchema {
    ResourceSchema {
        description:
            "A subscription of a function (SNS event, asynchronous) or a queue (SNS envelope or raw) \
                      to a topic of the local cloud"
                .into(),
        inputs: json!({
            "type": "object",
            "required": ["topic"],
            "properties": {
                "topic": {"type": "string", "description": "the topic's ARN"},
                "function": {"type": ["string", "null"], "description": "a function name; or"},
                "queue": {"type": ["string", "null"], "description": "a queue ARN"},
                "filter_policy": {"type": ["object", "null"], "description": "an SNS filter policy"},
                "filter_policy_scope": {"type": ["string", "null"], "description": "MessageAttributes (default) or MessageBody"},
                "raw_message_delivery": {"type": "boolean", "default": false, "description": "queues only: the message itself instead of the SNS envelope"}
            }
        }),
        outputs: vec!["arn".into()],
        replace_on_changes: vec!["topic".into(), "function".into(), "queue".into()],
        stable_outputs: vec!["arn".into()],
    }
}

/// Validates a topic's inputs (`fifo` defaults to false) and its name.
pub fn check_topic(name: &str, inputs: &Value) -> (Value, Vec<CheckFailure>) {
    let mut failures = Vec::new();
    let fifo = match inputs.get("fifo") {
        None | Some(Value::Null) => json!(false),
        Some(v @ Value::Bool(_)) => v.clone(),
        Some(v) if is_unknown(v) => v.clone(),
        Some(other) => {
            failures.push(CheckFailure {
                property: "fifo".into(),
                reason: format!("expected true or false, got {other}"),
            });
            other.clone()
        }
    };
    if let Some(f) = fifo.as_bool()
        && let Err(e) = check_topic_name(&physical_name(name, f), f)
    {
        let reason = e.strip_prefix("Invalid parameter: ").unwrap_or(&e).to_string();
        failures.push(CheckFailure { property: "name".into(), reason });
    }
    (json!({ "fifo": fifo }), failures)
}

/// Validates a subscription: one of `function`/`queue`, a filter policy SNS would take.
pub fn check_subscription(inputs: &Value) -> (Value, Vec<CheckFailure>) {
    let mut failures = Vec::new();
    let mut fail =
        |property: &str, reason: String| failures.push(CheckFailure { property: property.into(), reason });
    let obj = inputs.as_object().cloned().unwrap_or_default();
    let get = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
    let (topic, function, queue) = (get("topic"), get("function"), get("queue"));
    let (policy, scope_v, raw) =
        (get("filter_policy"), get("filter_policy_scope"), get("raw_message_delivery"));
    if !topic.is_string() {
        fail("topic", format!("expected the topic's ARN (a reference to the topic's `arn`), got {topic}"));
    }
    for (k, v) in [("function", &function), ("queue", &queue)] {
        if !v.is_null() && !v.is_string() {
            fail(k, format!("expected a string, got {v}"));
        }
    }
    match (function.is_null(), queue.is_null()) {
        (true, true) => {
            fail("function", "a topic subscription needs a `function` (a name) or a `queue` (an ARN)".into())
        }
        (false, false) => {
            fail("queue", "give `function` or `queue`, not both: one subscription has one endpoint".into())
        }
        _ => {}
    }
    if let Some(q) = queue.as_str()
        && !is_unknown(&queue)
        && !q.starts_with("arn:aws:sqs:")
    {
        fail(
            "queue",
            format!("expected a queue ARN (arn:aws:sqs:...), got `{q}`; pass the queue's `arn` output"),
        );
    }
    let scope = match &scope_v {
        Value::Null => Some(Scope::MessageAttributes),
        Value::String(s) if !is_unknown(&scope_v) => match Scope::parse(s) {
            Ok(sc) => Some(sc),
            Err(e) => {
                fail(
                    "filter_policy_scope",
                    e.strip_prefix("Invalid parameter: Attributes Reason: ").unwrap_or(&e).into(),
                );
                None
            }
        },
        v if is_unknown(v) => None,
        other => {
            fail("filter_policy_scope", format!("expected MessageAttributes or MessageBody, got {other}"));
            None
        }
    };
    match (&policy, scope) {
        (Value::Null, _) => {}
        (Value::Object(_), Some(scope)) => {
            if let Err(e) = FilterPolicy::parse(&policy.to_string(), scope) {
                fail(
                    "filter_policy",
                    e.strip_prefix("Invalid parameter: FilterPolicy: ").unwrap_or(&e).into(),
                );
            }
        }
        (Value::Object(_), None) => {}
        (v, _) if is_unknown(v) => {}
        (other, _) => fail("filter_policy", format!("expected a filter policy object, got {other}")),
    }
    let raw = match raw {
        Value::Null => json!(false),
        v @ Value::Bool(_) => v,
        v if is_unknown(&v) => v,
        other => {
            fail("raw_message_delivery", format!("expected true or false, got {other}"));
            other
        }
    };
    if raw == json!(true) && !function.is_null() {
        fail(
            "raw_message_delivery",
            "raw delivery applies to queue subscriptions; a function always gets the SNS event".into(),
        );
    }
    let checked = json!({
        "topic": topic,
        "function": function,
        "queue": queue,
        "filter_policy": policy,
        "filter_policy_scope": scope_v,
        "raw_message_delivery": raw,
    });
    (checked, failures)
}

fn spec(inputs: &Value) -> Res<SubscriptionSpec> {
    serde_json::from_value(inputs.clone())
        .map_err(|e| ProviderError::invalid_inputs(format!("bad topic subscription inputs: {e}")))
}

fn subscription_inputs(view: &Value) -> Value {
    json!({
        "topic": view["topic"],
        "function": view["function"],
        "queue": view["queue"],
        "filter_policy": view["filter_policy"],
        "filter_policy_scope": view["filter_policy_scope"],
        "raw_message_delivery": view["raw_message_delivery"],
    })
}

impl LocalProvider {
    /// Deploys a topic; answers its outputs.
    pub(super) async fn put_topic(&self, name: &str, inputs: &Value) -> Res<Value> {
        let cfg = self.config()?;
        let body = json!({"fifo": inputs["fifo"].as_bool().unwrap_or(false)}).to_string();
        let v = self
            .control_put(&topic_path(&cfg.stack, name), body.as_bytes(), &format!("topic `{name}`"))
            .await?;
        Ok(json!({"arn": v["arn"], "topic_name": v["topic_name"]}))
    }

    pub(super) async fn read_topic(&self, name: &str) -> Res<Option<ReadResource>> {
        let cfg = self.config()?;
        let Some(v) = self.control_get(&topic_path(&cfg.stack, name)).await? else {
            return Ok(None);
        };
        Ok(Some(ReadResource {
            id: v["arn"].as_str().unwrap_or(name).to_string(),
            inputs: json!({"fifo": v["fifo"]}),
            outputs: json!({"arn": v["arn"], "topic_name": v["topic_name"]}),
        }))
    }

    /// Deploys a subscription; answers `(id, outputs)`: the id is the subscription ARN.
    pub(super) async fn put_topic_subscription(&self, name: &str, inputs: &Value) -> Res<(String, Value)> {
        let cfg = self.config()?;
        let body = serde_json::to_vec(&spec(inputs)?).map_err(|e| ProviderError::failed(e.to_string()))?;
        let what = format!("topic subscription `{name}`");
        let v = self.control_put(&subscription_path(&cfg.stack, name), &body, &what).await?;
        let arn = v["arn"].as_str().unwrap_or(name).to_string();
        Ok((arn.clone(), json!({ "arn": arn })))
    }

    /// Deletes a topic or a subscription by its id (its ARN): a replacement's old copy goes,
    /// the new one under the same name stays. Already gone is deleted.
    pub(super) async fn delete_topic_resource(&self, req: &DeleteRequest) -> Res<DeleteResponse> {
        let cfg = self.config()?;
        let path = if req.type_ == TOPIC {
            topic_path(&cfg.stack, &req.name)
        } else {
            subscription_path(&cfg.stack, &req.name)
        };
        let body = json!({"arn": req.id}).to_string();
        self.control_delete(&path, body.as_bytes(), &req.name).await
    }

    pub(super) async fn read_topic_subscription(&self, name: &str) -> Res<Option<ReadResource>> {
        let cfg = self.config()?;
        let Some(v) = self.control_get(&subscription_path(&cfg.stack, name)).await? else {
            return Ok(None);
        };
        Ok(Some(ReadResource {
            id: v["arn"].as_str().unwrap_or(name).to_string(),
            inputs: subscription_inputs(&v),
            outputs: json!({"arn": v["arn"]}),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(f: Vec<CheckFailure>) -> Vec<String> {
        f.into_iter().map(|f| f.property).collect()
    }

    #[test]
    fn topics_check_fifo_and_name() {
        let (c, f) = check_topic("events", &json!({}));
        assert!(f.is_empty());
        assert_eq!(c, json!({"fifo": false}));
        assert!(check_topic("orders", &json!({"fifo": true})).1.is_empty());
        assert_eq!(props(check_topic("bad name", &json!({"fifo": false})).1), ["name"]);
        assert_eq!(props(check_topic("x", &json!({"fifo": "yes"})).1), ["fifo"]);
        assert!(check_topic("x", &json!({"fifo": UNKNOWN})).1.is_empty());
    }

    #[test]
    fn subscriptions_check_endpoint_and_policy_at_preview() {
        let ok = json!({"topic": "arn:aws:sns:us-east-1:000000000000:t", "function": "f"});
        let (c, f) = check_subscription(&ok);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(c["raw_message_delivery"], false);
        assert!(c["queue"].is_null() && c["filter_policy"].is_null());
        let t = "arn:aws:sns:us-east-1:000000000000:t";
        assert_eq!(props(check_subscription(&json!({"topic": t})).1), ["function"]);
        assert_eq!(
            props(check_subscription(&json!({"topic": t, "function": "f", "queue": "arn:aws:sqs:x"})).1),
            ["queue"]
        );
        assert_eq!(props(check_subscription(&json!({"topic": t, "queue": "jobs"})).1), ["queue"]);
        let bad =
            check_subscription(&json!({"topic": t, "function": "f", "filter_policy": {"color": "red"}})).1;
        assert_eq!(bad[0].property, "filter_policy");
        assert!(bad[0].reason.contains("must be an array of conditions"), "{}", bad[0].reason);
        let f = check_subscription(&json!({"topic": t, "function": "f", "raw_message_delivery": true})).1;
        assert_eq!(props(f), ["raw_message_delivery"]);
        let f = check_subscription(
            &json!({"topic": t, "queue": "arn:aws:sqs:us-east-1:0:q", "filter_policy_scope": "Body"}),
        )
        .1;
        assert_eq!(props(f), ["filter_policy_scope"]);
        let body_policy = json!({"topic": t, "queue": "arn:aws:sqs:us-east-1:0:q",
            "filter_policy": {"a": {"b": ["c"]}}, "filter_policy_scope": "MessageBody"});
        assert!(check_subscription(&body_policy).1.is_empty());
        assert!(check_subscription(&json!({"topic": UNKNOWN, "function": UNKNOWN})).1.is_empty());
    }
}
