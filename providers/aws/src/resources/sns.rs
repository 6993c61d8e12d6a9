//! SNS (query protocol): `aws:sns:Topic` and `aws:sns:Subscription`. Ids are ARNs.

use serde_json::{Map, Value, json};
use skyform_protocol::CheckFailure;

use crate::http::Result;
use crate::resource::{CheckCtx, Created, Ctx, Found, Kind, NameRule, Spec};
use crate::util::{Inputs, set};
use crate::xml;

async fn sns(ctx: &Ctx, action: &str, params: &[(&str, String)]) -> Result<String> {
    ctx.aws.query("sns", "2010-03-31", action, params).await
}

/// `<entry><key>K</key><value>V</value></entry>` pairs of an attributes answer.
fn attributes(text: &str) -> Map<String, Value> {
    xml::blocks(text, "entry")
        .into_iter()
        .filter_map(|e| Some((xml::tag(e, "key")?, json!(xml::tag(e, "value").unwrap_or_default()))))
        .collect()
}

/// Query-protocol map parameters: `Attributes.entry.N.key` / `.value`.
fn attribute_params(attrs: &[(&str, String)]) -> Vec<(String, String)> {
    attrs
        .iter()
        .enumerate()
        .flat_map(|(i, (k, v))| {
            [
                (format!("Attributes.entry.{}.key", i + 1), k.to_string()),
                (format!("Attributes.entry.{}.value", i + 1), v.clone()),
            ]
        })
        .collect()
}

pub struct Topic;

fn topic_outputs(arn: &str) -> Value {
    json!({"arn": arn, "name": arn.rsplit(':').next().unwrap_or_default()})
}

impl Kind for Topic {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:sns:Topic",
            description: "An SNS topic. Id: the topic ARN.",
            properties: json!({
                "name": {"type": "string", "description": "The topic name (`.fifo` is appended for FIFO topics); generated when absent."},
                "fifo_topic": {"type": "boolean", "default": false, "description": "A FIFO topic."},
                "display_name": {"type": "string", "description": "The display name (used by SMS and email)."},
            }),
            required: &[],
            outputs: &["arn", "name"],
            replace_on_changes: &["name", "fifo_topic"],
            identity: &["name"],
            name: Some(NameRule { prop: "name", max_len: 251, lowercase: false }),
            diff_ignore: &[],
        }
    }

    fn validate(
        &self,
        _ctx: &CheckCtx<'_>,
        inputs: &mut Map<String, Value>,
        failures: &mut Vec<CheckFailure>,
    ) {
        super::fifo_name(inputs, "fifo_topic", failures);
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let mut attrs = Vec::new();
        if inputs.bool_of("fifo_topic") == Some(true) {
            attrs.push(("FifoTopic", "true".to_string()));
        }
        if let Some(d) = inputs.str_of("display_name") {
            attrs.push(("DisplayName", d.to_string()));
        }
        let extra = attribute_params(&attrs);
        let mut params: Vec<(&str, String)> =
            vec![("Name", inputs.str_of("name").unwrap_or_default().to_string())];
        params.extend(extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let text = sns(ctx, "CreateTopic", &params).await?;
        let arn = xml::tag(&text, "TopicArn").unwrap_or_default();
        Ok(Created { outputs: topic_outputs(&arn), id: arn })
    }

    async fn find(&self, ctx: &Ctx, inputs: &Value) -> Result<Option<String>> {
        let Some(name) = inputs.str_of("name") else { return Ok(None) };
        let account = ctx.aws.account_id().await?;
        Ok(Some(format!("arn:aws:sns:{}:{account}:{name}", ctx.aws.region())))
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let attrs = attributes(&sns(ctx, "GetTopicAttributes", &[("TopicArn", id.into())]).await?);
        let out = topic_outputs(id);
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "name", out["name"].clone());
        set(&mut inputs, "fifo_topic", json!(attrs.get("FifoTopic").and_then(Value::as_str) == Some("true")));
        set(
            &mut inputs,
            "display_name",
            json!(attrs.get("DisplayName").and_then(Value::as_str).filter(|d| !d.is_empty())),
        );
        Ok(Some(Found { inputs, outputs: out }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, olds: &Value, news: &Value) -> Result<Value> {
        if olds.get("display_name") != news.get("display_name") {
            sns(
                ctx,
                "SetTopicAttributes",
                &[
                    ("TopicArn", id.into()),
                    ("AttributeName", "DisplayName".into()),
                    ("AttributeValue", news.str_of("display_name").unwrap_or("").into()),
                ],
            )
            .await?;
        }
        Ok(topic_outputs(id))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        sns(ctx, "DeleteTopic", &[("TopicArn", id.into())]).await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

pub struct Subscription;

fn sub_attrs(inputs: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("RawMessageDelivery", inputs.bool_of("raw_message_delivery").unwrap_or(false).to_string()),
        (
            "FilterPolicy",
            inputs.obj_of("filter_policy").map(|m| Value::Object(m.clone()).to_string()).unwrap_or_default(),
        ),
    ]
}

impl Kind for Subscription {
    fn spec(&self) -> Spec {
        Spec {
            token: "aws:sns:Subscription",
            description: "Subscribes an endpoint (a queue, a function, a URL) to a topic. Id: the subscription ARN.",
            properties: json!({
                "topic_arn": {"type": "string", "description": "The topic's ARN."},
                "protocol": {"type": "string", "description": "`sqs`, `lambda`, `https`, `email`, …"},
                "endpoint": {"type": "string", "description": "The queue's or function's ARN, the URL, the address."},
                "raw_message_delivery": {"type": "boolean", "default": false, "description": "Deliver the bare message (sqs, https)."},
                "filter_policy": {"type": "object", "description": "A filter policy on message attributes."},
            }),
            required: &["topic_arn", "protocol", "endpoint"],
            outputs: &["arn"],
            replace_on_changes: &["topic_arn", "protocol", "endpoint"],
            identity: &["topic_arn", "protocol", "endpoint"],
            name: None,
            diff_ignore: &[],
        }
    }

    async fn create(&self, ctx: &Ctx, inputs: &Value) -> Result<Created> {
        let attrs: Vec<(&str, String)> =
            sub_attrs(inputs).into_iter().filter(|(_, v)| !v.is_empty() && v != "false").collect();
        let extra = attribute_params(&attrs);
        let mut params: Vec<(&str, String)> = vec![
            ("TopicArn", inputs.str_of("topic_arn").unwrap_or_default().into()),
            ("Protocol", inputs.str_of("protocol").unwrap_or_default().into()),
            ("Endpoint", inputs.str_of("endpoint").unwrap_or_default().into()),
            ("ReturnSubscriptionArn", "true".into()),
        ];
        params.extend(extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let text = sns(ctx, "Subscribe", &params).await?;
        let arn = xml::tag(&text, "SubscriptionArn").unwrap_or_default();
        Ok(Created { outputs: json!({"arn": arn}), id: arn })
    }

    async fn find(&self, ctx: &Ctx, inputs: &Value) -> Result<Option<String>> {
        let (Some(topic), Some(protocol), Some(endpoint)) =
            (inputs.str_of("topic_arn"), inputs.str_of("protocol"), inputs.str_of("endpoint"))
        else {
            return Ok(None);
        };
        // Every page (100 subscriptions each): a busy topic has more.
        let mut token: Option<String> = None;
        loop {
            let mut params = vec![("TopicArn", topic.to_string())];
            if let Some(t) = &token {
                params.push(("NextToken", t.clone()));
            }
            let text = sns(ctx, "ListSubscriptionsByTopic", &params).await?;
            let found = xml::blocks(&text, "member")
                .into_iter()
                .find(|m| {
                    xml::tag(m, "Protocol").as_deref() == Some(protocol)
                        && xml::tag(m, "Endpoint").as_deref() == Some(endpoint)
                })
                .and_then(|m| xml::tag(m, "SubscriptionArn"));
            if found.is_some() {
                return Ok(found);
            }
            match xml::tag(&text, "NextToken") {
                Some(t) if !t.is_empty() && token.as_ref() != Some(&t) => token = Some(t),
                _ => return Ok(None),
            }
        }
    }

    async fn read(&self, ctx: &Ctx, id: &str, stored: &Value) -> Result<Option<Found>> {
        let attrs =
            attributes(&sns(ctx, "GetSubscriptionAttributes", &[("SubscriptionArn", id.into())]).await?);
        let get = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let mut inputs = if stored.is_object() { stored.clone() } else { json!({}) };
        set(&mut inputs, "topic_arn", json!(get("TopicArn")));
        set(&mut inputs, "protocol", json!(get("Protocol")));
        set(&mut inputs, "endpoint", json!(get("Endpoint")));
        set(&mut inputs, "raw_message_delivery", json!(get("RawMessageDelivery") == "true"));
        let filter = serde_json::from_str::<Value>(&get("FilterPolicy"))
            .ok()
            .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()));
        set(&mut inputs, "filter_policy", filter.unwrap_or(Value::Null));
        Ok(Some(Found { inputs, outputs: json!({"arn": id}) }))
    }

    async fn update(&self, ctx: &Ctx, id: &str, olds: &Value, news: &Value) -> Result<Value> {
        for ((name, old), (_, new)) in sub_attrs(olds).into_iter().zip(sub_attrs(news)) {
            if old != new {
                sns(
                    ctx,
                    "SetSubscriptionAttributes",
                    &[
                        ("SubscriptionArn", id.into()),
                        ("AttributeName", name.into()),
                        ("AttributeValue", new),
                    ],
                )
                .await?;
            }
        }
        Ok(json!({"arn": id}))
    }

    async fn delete(&self, ctx: &Ctx, id: &str, _inputs: &Value) -> Result<()> {
        sns(ctx, "Unsubscribe", &[("SubscriptionArn", id.into())]).await?;
        Ok(())
    }
}
