//! SQS (JSON 1.0 protocol): `aws:sqs:Queue` and `aws:sqs:QueuePolicy`; both are identified by
//! the queue URL.

use serde_json::{Map, Value, json};
use skyform_protocol::CheckFailure;

use crate::http::Result;
use crate::resource::{CheckCtx, Created, Ctx, Found, Kind, NameRule, Spec};
use crate::util::{Inputs, policy_string, policy_value, set};

async fn sqs(ctx: &Ctx, op: &str, body: Value) -> Result<Value> {
    ctx.aws.json("sqs", "1.0", &format!("AmazonSQS.{op}"), body).await
}

/// (input, SQS attribute) for the integer attributes.
const NUMBERS: &[(&str, &str)] = &[
    ("visibility_timeout_seconds", "VisibilityTimeout"),
    ("message_retention_seconds", "MessageRetentionPeriod"),
    ("delay_seconds", "DelaySeconds"),
    ("max_message_size", "MaximumMessageSize"),
    ("receive_wait_time_seconds", "ReceiveMessageWaitTimeSeconds"),
];

fn attributes(inputs: &Value, creating: bool) -> Map<String, Value> {
    let mut a = Map::new();
    for (input, attr) in NUMBERS {
        if let Some(n) = inputs.i64_of(input) {
            a.insert(attr.to_string(), json!(n.to_string()));
        }
    }
    let redrive = match inputs.obj_of("redrive_policy") {
        Some(r) => json!({"deadLetterTargetArn": r.get("dead_letter_target_arn"), "maxReceiveCount": r.get("max_receive_count")})
            .to_string(),
        None => String::new(), // an empty policy removes it
    };
    if creating {
        if !redrive.is_empty() {
            a.insert("RedrivePolicy".into(), json!(redrive));
        }
    } else {
        a.insert("RedrivePolicy".into(), json!(redrive));
    }
    if inputs.bool_of("fifo_queue") == Some(true) {
        if creating {
            a.insert("FifoQueue".into(), json!("true"));
        }
        let dedup = inputs.bool_of("content_based_deduplication").unwrap_or(false);
        a.insert("ContentBasedDeduplication".into(), json!(dedup.to_string()));
    }
    a
}

async fn queue_attributes(ctx: &Ctx, url: &str) -> Result<Map<String, Value>> {
    let v = sqs(ctx, "GetQueueAttributes", json!({"QueueUrl": url, "AttributeNames": ["All"]})).await?;
    Ok(v["Attributes"].as_object().cloned().unwrap_or_default())
}

fn outputs(url: &str, attrs: &Map<String, Value>) -> Value {
    let arn = attrs.get("QueueArn").and_then(Value::as_str).unwrap_or_default();
    json!({"url": url, "arn": arn, "name": arn.rsplit(':').next().unwrap_or_default()})
}

pub struct Queue;

/// The documented range of `max_message_size`; the upper bound is the default.
const MAX_MESSAGE_SIZE: (i64, i64) = (1024, 262_144);

impl Kind for Queue {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:sqs:Queue",
            description: "An SQS queue, optionally FIFO, optionally with a dead-letter queue. Id: the queue URL.",
            properties: json!({
                "name": {"type": "string", "description": "The queue name (1-80 characters; `.fifo` is appended for FIFO queues); generated when absent."},
                "fifo_queue": {"type": "boolean", "default": false, "description": "A FIFO queue."},
                "content_based_deduplication": {"type": "boolean", "description": "FIFO only: deduplicate by body hash."},
                "visibility_timeout_seconds": {"type": "integer", "default": 30, "description": "How long a received message stays hidden (0-43200)."},
                "message_retention_seconds": {"type": "integer", "default": 345600, "description": "How long messages are kept (60-1209600)."},
                "delay_seconds": {"type": "integer", "default": 0, "description": "Delivery delay (0-900)."},
                "max_message_size": {"type": "integer", "description": "Largest message in bytes (1024-262144). When absent: 262144, except that a queue which already has a larger size (AWS and moto now default to 1048576, so an imported queue may) keeps it."},
                "receive_wait_time_seconds": {"type": "integer", "default": 0, "description": "Long-polling wait (0-20)."},
                "redrive_policy": {
                    "type": "object",
                    "description": "`{dead_letter_target_arn, max_receive_count}`: where messages go after too many receives.",
                    "properties": {"dead_letter_target_arn": {"type": "string"}, "max_receive_count": {"type": "integer"}},
                },
            }),
            required: &[],
            outputs: &["url", "arn", "name"],
            replace_on_changes: &["name", "fifo_queue"],
            identity: &["name"],
            name: Some(NameRule { prop: "name", max_len: 75, lowercase: false }),
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        ctx: &CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<CheckFailure>,
    ) {
        super::fifo_name(inputs, "fifo_queue", failures);
        // `None` while the flag is unknown (a preview): then nothing is checked against it.
        let flag = inputs.get("fifo_queue").and_then(Value::as_bool);
        if flag == Some(false) && inputs.contains_key("content_based_deduplication") {
            failures.push(CheckFailure {
                property: "content_based_deduplication".into(),
                reason: "only FIFO queues (`fifo_queue = true`) deduplicate".into(),
            });
        }
        if !inputs.contains_key("max_message_size") {
            // The documented default, unless the queue has a size above the range (AWS's and
            // moto's newer 1 MiB default, on an imported queue): that one is kept, so leaving
            // the input out does not preview a change. Drift inside the range is put back.
            let kept = ctx
                .olds
                .and_then(|o| o.get("max_message_size"))
                .filter(|v| v.as_i64().is_some_and(|n| n > MAX_MESSAGE_SIZE.1))
                .cloned();
            inputs.insert("max_message_size".into(), kept.unwrap_or(json!(MAX_MESSAGE_SIZE.1)));
        } else if let Some(n) = inputs.get("max_message_size").and_then(Value::as_i64)
            && !(MAX_MESSAGE_SIZE.0..=MAX_MESSAGE_SIZE.1).contains(&n)
        {
            failures.push(CheckFailure {
                property: "max_message_size".into(),
                reason: format!(
                    "`max_message_size` must be between {} and {} bytes, got {n}",
                    MAX_MESSAGE_SIZE.0, MAX_MESSAGE_SIZE.1
                ),
            });
        }
        let unknown_keys = crate::resource::unknown_nested_keys(
            inputs,
            "redrive_policy",
            &["dead_letter_target_arn", "max_receive_count"],
            failures,
        );
        if let Some(r) = inputs.get("redrive_policy").and_then(Value::as_object) {
            let ok = r.get("dead_letter_target_arn").is_some_and(Value::is_string)
                && r.get("max_receive_count").is_some_and(|n| n.is_u64() || n.is_string());
            if !ok && !unknown_keys {
                failures.push(CheckFailure {
                    property: "redrive_policy".into(),
                    reason:
                        "`redrive_policy` is `{dead_letter_target_arn = \"arn:…\", max_receive_count = 5}`"
                            .into(),
                });
            }
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let name = inputs.str_of("name").unwrap_or_default();
        let v = sqs(ctx, "CreateQueue", json!({"QueueName": name, "Attributes": attributes(inputs, true)}))
            .await?;
        let url = v["QueueUrl"].as_str().unwrap_or_default().to_string();
        let attrs = queue_attributes(ctx, &url).await?;
        Ok(Created { outputs: outputs(&url, &attrs), id: url })
    }

    async fn find(&self, ctx: &Ctx, inputs: &Value) -> Result<Option<String>> {
        let Some(name) = inputs.str_of("name") else { return Ok(None) };
        let v = sqs(ctx, "GetQueueUrl", json!({"QueueName": name})).await?;
        Ok(v["QueueUrl"].as_str().map(String::from))
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let attrs = queue_attributes(ctx, id).await?;
        let num = |k: &str| {
            attrs.get(k).and_then(|v| v.as_str().and_then(|s| s.parse::<i64>().ok()).or(v.as_i64()))
        };
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        let out = outputs(id, &attrs);
        set(&mut inputs, "name", out["name"].clone());
        let fifo = attrs.get("FifoQueue").and_then(Value::as_str) == Some("true");
        set(&mut inputs, "fifo_queue", json!(fifo));
        for (input, attr) in NUMBERS {
            set(&mut inputs, input, json!(num(attr)));
        }
        let redrive = attrs
            .get("RedrivePolicy")
            .and_then(Value::as_str)
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
            .filter(|r| r.get("deadLetterTargetArn").is_some())
            .map(|r| {
                let count = &r["maxReceiveCount"];
                json!({
                    "dead_letter_target_arn": r["deadLetterTargetArn"],
                    "max_receive_count": count.as_i64().or(count.as_str().and_then(|s| s.parse().ok())),
                })
            });
        set(&mut inputs, "redrive_policy", redrive.unwrap_or(Value::Null));
        if fifo {
            let dedup = attrs.get("ContentBasedDeduplication").and_then(Value::as_str) == Some("true");
            if dedup || stored.has("content_based_deduplication") {
                set(&mut inputs, "content_based_deduplication", json!(dedup));
            }
        }
        Ok(Some(Found { inputs, outputs: out }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        sqs(ctx, "SetQueueAttributes", json!({"QueueUrl": id, "Attributes": attributes(news, false)}))
            .await?;
        let attrs = queue_attributes(ctx, id).await?;
        Ok(outputs(id, &attrs))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        sqs(ctx, "DeleteQueue", json!({"QueueUrl": id})).await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

/// A queue's access policy (its `Policy` attribute), such as the statement that lets an SNS
/// topic send to it. SQS keeps one policy document per queue, so a queue has at most one of
/// these; deleting it removes the policy. Id: the queue URL.
pub struct QueuePolicy;

impl Kind for QueuePolicy {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:sqs:QueuePolicy",
            description: "The access policy of an SQS queue (who may send to it, e.g. an SNS topic). Id: the queue URL.",
            properties: json!({
                "queue_url": {"type": "string", "description": "The queue's URL."},
                "policy": {"type": ["object", "string"], "description": "The policy document."},
            }),
            required: &["queue_url", "policy"],
            outputs: &["queue_url"],
            replace_on_changes: &["queue_url"],
            identity: &["queue_url"],
            name: None,
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<CheckFailure>,
    ) {
        crate::resources::iam::normalise_policy(inputs, "policy", failures);
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let url = inputs.str_of("queue_url").unwrap_or_default().to_string();
        set_policy(ctx, &url, &policy_string(&inputs["policy"])).await?;
        Ok(Created { outputs: json!({"queue_url": url}), id: url })
    }

    async fn find(&self, ctx: &Ctx, inputs: &Value) -> Result<Option<String>> {
        let Some(url) = inputs.str_of("queue_url") else { return Ok(None) };
        let attrs = queue_attributes(ctx, url).await?;
        Ok(attrs.get("Policy").and_then(Value::as_str).filter(|p| !p.is_empty()).map(|_| url.to_string()))
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let attrs = queue_attributes(ctx, id).await?;
        let Some(policy) = attrs.get("Policy").and_then(Value::as_str).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "queue_url", json!(id));
        set(&mut inputs, "policy", policy_value(policy));
        Ok(Some(Found { inputs, outputs: json!({"queue_url": id}) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, _olds: &Value, news: &Value) -> Result<Value> {
        set_policy(ctx, id, &policy_string(&news["policy"])).await?;
        Ok(json!({"queue_url": id}))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        set_policy(ctx, id, "").await
    }
}

async fn set_policy(ctx: &Ctx, url: &str, policy: &str) -> Result<()> {
    sqs(ctx, "SetQueueAttributes", json!({"QueueUrl": url, "Attributes": {"Policy": policy}})).await?;
    Ok(())
}
