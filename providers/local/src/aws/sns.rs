//! SNS on the local AWS endpoint: the query protocol (form-encoded `Action=...`, XML answers in
//! SNS's namespace) as boto3 and the AWS CLI speak it, over the topic model in
//! [`crate::topics`], and the fan-out of every published message to the subscribed queues and
//! functions.
//!
//! Operations: `Publish`, `PublishBatch`, `CreateTopic`, `DeleteTopic`, `ListTopics`,
//! `GetTopicAttributes`, `SetTopicAttributes`, `Subscribe`, `Unsubscribe`, `ListSubscriptions`,
//! `ListSubscriptionsByTopic`, `GetSubscriptionAttributes`, `SetSubscriptionAttributes`,
//! `ListTagsForResource`.
//!
//! Delivery: a queue subscriber gets the message before `Publish` answers (the queue has it on
//! disk), so a client that publishes and then receives sees it; a function subscriber is
//! invoked asynchronously, like SNS invokes Lambda (the `Event` invocation type): a failed
//! invocation is retried twice, 1 s and then 2 s later (AWS waits about 1 and 2 minutes; the
//! local cloud keeps the count and shortens the wait), then dropped and logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use hyper::StatusCode;

use super::{AwsContext, AwsError, AwsRequest, xml_escape};
use crate::http::{self, Resp};
use crate::queue::{MessageAttribute as SqsAttribute, SendInput};
use crate::topics::{
    Attributes, Message, MessageAttribute, Protocol, Subscriber, TopicError, TopicSettings, Urls,
};

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
/// SNS pages its lists by 100.
const PAGE: usize = 100;
/// PublishBatch takes at most 10 entries.
pub const MAX_BATCH: usize = 10;

impl From<TopicError> for AwsError {
    fn from(e: TopicError) -> AwsError {
        let status = match e {
            TopicError::NotFound(_) => StatusCode::NOT_FOUND,
            TopicError::InvalidParameter(_) | TopicError::Conflict(_) => StatusCode::BAD_REQUEST,
            TopicError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        AwsError::new(status, e.code(), e.message())
    }
}

type Result<T> = std::result::Result<T, AwsError>;

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::bad("InvalidParameter", msg)
}

fn required<'a>(req: &'a AwsRequest, name: &str) -> Result<&'a str> {
    req.param(name).ok_or_else(|| invalid(format!("Invalid parameter: {name}: the parameter is required")))
}

/// Answers one SNS request.
pub async fn handle(ctx: &AwsContext, req: &AwsRequest) -> Resp {
    let action = req.param("Action").unwrap_or("");
    let result = match action {
        "Publish" => publish(ctx, req).await,
        "PublishBatch" => publish_batch(ctx, req).await,
        "CreateTopic" => create_topic(ctx, req),
        "DeleteTopic" => delete_topic(ctx, req),
        "ListTopics" => list_topics(ctx, req),
        "GetTopicAttributes" => get_topic_attributes(ctx, req),
        "SetTopicAttributes" => set_topic_attributes(ctx, req),
        "Subscribe" => subscribe(ctx, req),
        "Unsubscribe" => unsubscribe(ctx, req),
        "ListSubscriptions" => list_subscriptions(ctx, req),
        "ListSubscriptionsByTopic" => list_subscriptions_by_topic(ctx, req),
        "GetSubscriptionAttributes" => get_subscription_attributes(ctx, req),
        "SetSubscriptionAttributes" => set_subscription_attributes(ctx, req),
        "ListTagsForResource" => list_tags(ctx, req),
        "" => Err(AwsError::bad("MissingAction", "the request has no Action parameter")),
        other => Err(AwsError::bad(
            "InvalidAction",
            format!(
                "SNS action `{other}` is not served by the local cloud; it serves Publish, PublishBatch, \
                 CreateTopic, DeleteTopic, ListTopics, GetTopicAttributes, SetTopicAttributes, Subscribe, \
                 Unsubscribe, ListSubscriptions, ListSubscriptionsByTopic, GetSubscriptionAttributes, \
                 SetSubscriptionAttributes and ListTagsForResource"
            ),
        )),
    };
    match result {
        Ok(inner) => ok(action, &inner, &req.request_id),
        Err(e) => e.query_xml(&req.request_id),
    }
}

/// `<ActionResponse><ActionResult>inner</ActionResult><ResponseMetadata>..`.
fn ok(action: &str, inner: &str, request_id: &str) -> Resp {
    let body = format!(
        "<{action}Response xmlns=\"{XMLNS}\"><{action}Result>{inner}</{action}Result>\
         <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    );
    let mut r = http::response(StatusCode::OK, "text/xml", body);
    super::set_header(&mut r, "x-amzn-requestid", request_id);
    r
}

fn tag(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", xml_escape(value))
}

fn entries(map: &BTreeMap<String, String>) -> String {
    let mut out = String::from("<Attributes>");
    for (k, v) in map {
        out.push_str("<entry>");
        out.push_str(&tag("key", k));
        out.push_str(&tag("value", v));
        out.push_str("</entry>");
    }
    out.push_str("</Attributes>");
    out
}

/// Groups indexed parameters: `prefix.N.rest=value` → `{N: {rest: value}}`, in N order.
fn members(req: &AwsRequest, prefix: &str) -> BTreeMap<usize, BTreeMap<String, String>> {
    let mut out: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for (k, v) in &req.params {
        let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else { continue };
        let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
        if let Ok(n) = n.parse::<usize>() {
            out.entry(n).or_default().insert(field.to_string(), v.clone());
        }
    }
    out
}

/// `Attributes.entry.N.key/value` → a map.
fn key_values(req: &AwsRequest, prefix: &str) -> BTreeMap<String, String> {
    members(req, prefix)
        .into_values()
        .filter_map(|m| Some((m.get("key")?.clone(), m.get("value").cloned().unwrap_or_default())))
        .collect()
}

/// Message attributes from `MessageAttributes.entry.N.{Name, Value.DataType, Value.StringValue,
/// Value.BinaryValue}` fields (already grouped by entry).
fn message_attributes(entries: BTreeMap<usize, BTreeMap<String, String>>) -> Result<Attributes> {
    let mut out = Attributes::new();
    for (_, e) in entries {
        let name = e.get("Name").cloned().unwrap_or_default();
        let data_type = e.get("Value.DataType").cloned().ok_or_else(|| {
            invalid(format!("Invalid parameter: The message attribute '{name}' must contain a DataType"))
        })?;
        let binary_value = match e.get("Value.BinaryValue") {
            None => None,
            Some(b) => Some(base64::engine::general_purpose::STANDARD.decode(b).map_err(|_| {
                invalid(format!(
                    "Invalid parameter: The message attribute '{name}' BinaryValue is not base64"
                ))
            })?),
        };
        let attr =
            MessageAttribute { data_type, string_value: e.get("Value.StringValue").cloned(), binary_value };
        if out.insert(name.clone(), attr).is_some() {
            return Err(invalid(format!(
                "Invalid parameter: Message attribute name '{name}' is given twice"
            )));
        }
    }
    Ok(out)
}

/// A message's fields as a Publish or a batch entry gives them.
struct Input<'a> {
    fields: &'a dyn Fn(&str) -> Option<String>,
    attributes: BTreeMap<usize, BTreeMap<String, String>>,
}

/// What a subscriber of each protocol receives: one text, or per-protocol texts
/// (`MessageStructure=json`).
struct Bodies {
    sqs: String,
    lambda: String,
}

fn build_message(input: Input<'_>) -> Result<(Message, Bodies)> {
    let f = input.fields;
    let message =
        f("Message").ok_or_else(|| invalid("Invalid parameter: Message: the parameter is required"))?;
    let bodies = match f("MessageStructure").as_deref() {
        None => Bodies { sqs: message.clone(), lambda: message.clone() },
        Some("json") => {
            let v: serde_json::Value = serde_json::from_str(&message).map_err(|_| {
                invalid("Invalid parameter: Message Structure - No JSON message body is parseable")
            })?;
            let default = v.get("default").and_then(|d| d.as_str()).ok_or_else(|| {
                invalid("Invalid parameter: Message Structure - No default entry in JSON message body")
            })?;
            let pick = |p: &str| v.get(p).and_then(|x| x.as_str()).unwrap_or(default).to_string();
            Bodies { sqs: pick("sqs"), lambda: pick("lambda") }
        }
        Some(other) => {
            return Err(invalid(format!(
                "Invalid parameter: MessageStructure: `{other}`; the only value is `json`"
            )));
        }
    };
    let m = Message {
        message_id: crate::pool::new_request_id(),
        topic_arn: String::new(),
        subject: f("Subject"),
        message,
        timestamp_ms: crate::logs::now_ms(),
        attributes: message_attributes(input.attributes)?,
        group_id: f("MessageGroupId"),
        deduplication_id: f("MessageDeduplicationId"),
        sequence_number: None,
    };
    Ok((m, bodies))
}

fn topic_arn_param(req: &AwsRequest) -> Result<&str> {
    if req.param("PhoneNumber").is_some() {
        return Err(invalid(
            "Invalid parameter: PhoneNumber: SMS is not served by the local cloud; publish to a topic",
        ));
    }
    req.param("TopicArn").or_else(|| req.param("TargetArn")).ok_or_else(|| {
        invalid("Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
    })
}

async fn publish(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let arn = topic_arn_param(req)?;
    let fields = |k: &str| req.param(k).map(str::to_string);
    let (m, bodies) =
        build_message(Input { fields: &fields, attributes: members(req, "MessageAttributes.entry") })?;
    let (m, subs) = ctx.topics.prepare(arn, m)?;
    fan_out(ctx, &m, &bodies, &subs).await;
    let mut out = tag("MessageId", &m.message_id);
    if let Some(s) = &m.sequence_number {
        out.push_str(&tag("SequenceNumber", s));
    }
    Ok(out)
}

fn valid_entry_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 80 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn publish_batch(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let arn = required(req, "TopicArn")?;
    let entries = members(req, "PublishBatchRequestEntries.member");
    if entries.is_empty() {
        return Err(AwsError::bad("EmptyBatchRequest", "The batch request doesn't contain any entries."));
    }
    if entries.len() > MAX_BATCH {
        return Err(AwsError::bad(
            "TooManyEntriesInBatchRequest",
            format!(
                "The batch request contains more entries than permissible ({} > {MAX_BATCH}).",
                entries.len()
            ),
        ));
    }
    let mut ids = std::collections::HashSet::new();
    let mut total = 0;
    for e in entries.values() {
        let id = e.get("Id").map(String::as_str).unwrap_or("");
        if !valid_entry_id(id) {
            return Err(AwsError::bad(
                "InvalidBatchEntryId",
                format!(
                    "The Id of a batch entry in a batch request doesn't abide by the specification: `{id}` (1 to 80 letters, digits, `-`, `_`)."
                ),
            ));
        }
        if !ids.insert(id.to_string()) {
            return Err(AwsError::bad(
                "BatchEntryIdsNotDistinct",
                format!("Two or more batch entries in the request have the same Id `{id}`."),
            ));
        }
        total += e
            .iter()
            .filter(|(k, _)| *k == "Message" || k.ends_with("Value.StringValue"))
            .map(|(_, v)| v.len())
            .sum::<usize>();
    }
    if total > crate::topics::MAX_MESSAGE_BYTES {
        return Err(AwsError::bad(
            "BatchRequestTooLong",
            format!(
                "The length of all the messages put together is more than the limit ({total} > {} bytes).",
                crate::topics::MAX_MESSAGE_BYTES
            ),
        ));
    }
    // The topic must exist: an unknown topic fails the whole call, as on SNS.
    ctx.topics.topic(arn)?;
    let mut ok_xml = String::new();
    let mut failed_xml = String::new();
    for (_, e) in entries {
        let id = e.get("Id").cloned().unwrap_or_default();
        let mut attrs: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in &e {
            if let Some(rest) = k.strip_prefix("MessageAttributes.entry.")
                && let Some((n, field)) = rest.split_once('.')
                && let Ok(n) = n.parse::<usize>()
            {
                attrs.entry(n).or_default().insert(field.to_string(), v.clone());
            }
        }
        let fields = |k: &str| e.get(k).cloned();
        let prepared = build_message(Input { fields: &fields, attributes: attrs })
            .and_then(|(m, b)| Ok((ctx.topics.prepare(arn, m)?, b)));
        match prepared {
            Ok(((m, subs), bodies)) => {
                fan_out(ctx, &m, &bodies, &subs).await;
                ok_xml.push_str("<member>");
                ok_xml.push_str(&tag("Id", &id));
                ok_xml.push_str(&tag("MessageId", &m.message_id));
                if let Some(s) = &m.sequence_number {
                    ok_xml.push_str(&tag("SequenceNumber", s));
                }
                ok_xml.push_str("</member>");
            }
            Err(err) => {
                failed_xml.push_str("<member>");
                failed_xml.push_str(&tag("Id", &id));
                failed_xml.push_str(&tag("Code", &err.code));
                failed_xml.push_str(&tag("Message", &err.message));
                failed_xml.push_str(&tag("SenderFault", if err.sender { "true" } else { "false" }));
                failed_xml.push_str("</member>");
            }
        }
    }
    Ok(format!("<Successful>{ok_xml}</Successful><Failed>{failed_xml}</Failed>"))
}

/// Delivers `m` to every subscriber whose filter policy accepts it: queues before this returns,
/// functions through the topics' outbox ([`crate::outbox`]): on disk before this returns,
/// invoked in the background.
async fn fan_out(ctx: &AwsContext, m: &Message, bodies: &Bodies, subs: &Arc<Vec<Subscriber>>) {
    if subs.is_empty() {
        return;
    }
    let urls = Urls { endpoint: ctx.endpoint() };
    let mut sends = tokio::task::JoinSet::new();
    let mut invocations = Vec::new();
    for s in subs.iter().filter(|s| s.accepts(m)) {
        let r = &s.record;
        match r.protocol {
            Protocol::Sqs => {
                let mut msg = m.clone();
                msg.message = bodies.sqs.clone();
                let (body, attributes) = if r.raw_message_delivery {
                    (msg.message.clone(), msg.attributes.clone())
                } else {
                    (crate::topics::sqs_envelope(&msg, &r.arn, &urls), Attributes::new())
                };
                let queues = ctx.queues.clone();
                let (queue_arn, sub_arn) = (r.endpoint.clone(), r.arn.clone());
                sends.spawn(crate::trace::carry(async move {
                    deliver_to_queue(&queues, &queue_arn, &sub_arn, body, attributes, &msg).await
                }));
            }
            Protocol::Lambda => {
                let mut msg = m.clone();
                msg.message = bodies.lambda.clone();
                invocations.push((r.endpoint.clone(), crate::topics::lambda_event(&msg, &r.arn, &urls)));
            }
        }
    }
    if !invocations.is_empty() {
        let (outbox, id) = (ctx.topics.outbox.clone(), m.message_id.clone());
        let (trace, trigger) = (crate::trace::current_header(), crate::trace::current().map(|c| c.trigger));
        sends.spawn_blocking(move || {
            if let Err(e) = outbox.write_traced(&invocations, trace, trigger) {
                eprintln!(
                    "skyform local daemon: cannot keep message {id}'s deliveries to functions in the outbox: {e}"
                );
            }
        });
    }
    // Every queue has the message (on disk) before Publish answers.
    while sends.join_next().await.is_some() {}
}

async fn deliver_to_queue(
    queues: &crate::queue::Queues,
    queue_arn: &str,
    sub_arn: &str,
    body: String,
    attributes: Attributes,
    m: &Message,
) {
    // A FIFO queue takes the topic's group and deduplication ids (SNS FIFO topics deliver
    // only to FIFO queues); the message id deduplicates when the publisher gave none.
    let fifo = queue_arn.ends_with(".fifo");
    let input = SendInput {
        body,
        attributes: attributes
            .into_iter()
            .map(|(k, a)| {
                // SQS has no String.Array: it arrives as its JSON text, a String.
                let data_type =
                    if a.data_type == "String.Array" { "String".to_string() } else { a.data_type };
                let binary_value =
                    a.binary_value.map(|b| base64::engine::general_purpose::STANDARD.encode(b));
                (k, SqsAttribute { data_type, string_value: a.string_value, binary_value })
            })
            .collect(),
        delay: None,
        group_id: if fifo { m.group_id.clone() } else { None },
        dedup_id: if fifo {
            Some(m.deduplication_id.clone().unwrap_or_else(|| m.message_id.clone()))
        } else {
            None
        },
    };
    if let Err(e) = queues.send_by_arn(queue_arn, input).await {
        eprintln!(
            "skyform local daemon: SNS subscription {sub_arn}: cannot deliver message {} to queue {queue_arn}: {}: {}",
            m.message_id, e.code, e.message
        );
    }
}

fn create_topic(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let name = required(req, "Name")?;
    let attrs = key_values(req, "Attributes.entry");
    let flag = |k: &str| -> Result<bool> {
        match attrs.get(k).map(|v| v.to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(invalid(format!(
                "Invalid parameter: Attributes Reason: {k}: Invalid value [{v}]. Must be true or false."
            ))),
        }
    };
    let settings = TopicSettings {
        fifo: flag("FifoTopic")?,
        content_based_deduplication: flag("ContentBasedDeduplication")?,
        display_name: attrs.get("DisplayName").cloned().unwrap_or_default(),
    };
    let arn = ctx.topics.create_topic(name, &settings)?;
    Ok(tag("TopicArn", &arn))
}

fn delete_topic(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    ctx.topics.delete_topic(required(req, "TopicArn")?)?;
    Ok(String::new())
}

/// A page of `items` from `NextToken` (an offset, as text).
fn page<T>(req: &AwsRequest, items: Vec<T>) -> Result<(Vec<T>, Option<String>)> {
    let start = match req.param("NextToken") {
        None | Some("") => 0,
        Some(t) => t.parse::<usize>().map_err(|_| invalid("Invalid parameter: NextToken"))?,
    };
    let total = items.len();
    let rest: Vec<T> = items.into_iter().skip(start).take(PAGE).collect();
    let next = (start + PAGE < total).then(|| (start + PAGE).to_string());
    Ok((rest, next))
}

fn list_topics(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let (arns, next) = page(req, ctx.topics.list_topics())?;
    let mut out = String::from("<Topics>");
    for a in arns {
        out.push_str("<member>");
        out.push_str(&tag("TopicArn", &a));
        out.push_str("</member>");
    }
    out.push_str("</Topics>");
    if let Some(n) = next {
        out.push_str(&tag("NextToken", &n));
    }
    Ok(out)
}

fn get_topic_attributes(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let t = ctx.topics.topic(required(req, "TopicArn")?)?;
    let mut m = BTreeMap::new();
    m.insert("TopicArn".to_string(), t.arn.clone());
    m.insert("Owner".into(), super::ACCOUNT.into());
    m.insert("DisplayName".into(), t.display_name.clone());
    m.insert("SubscriptionsConfirmed".into(), t.subscriptions.len().to_string());
    m.insert("SubscriptionsPending".into(), "0".into());
    m.insert("SubscriptionsDeleted".into(), "0".into());
    m.insert(
        "Policy".into(),
        serde_json::json!({
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [{
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["SNS:Publish", "SNS:Subscribe", "SNS:GetTopicAttributes"],
                "Resource": t.arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": super::ACCOUNT}}
            }]
        })
        .to_string(),
    );
    m.insert(
        "EffectiveDeliveryPolicy".into(),
        r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false}}"#.into(),
    );
    if t.fifo {
        m.insert("FifoTopic".into(), "true".into());
        m.insert("ContentBasedDeduplication".into(), t.content_based_deduplication.to_string());
    }
    Ok(entries(&m))
}

fn set_topic_attributes(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let arn = required(req, "TopicArn")?;
    let name = required(req, "AttributeName")?;
    let value = req.param("AttributeValue").unwrap_or("");
    ctx.topics.set_topic_attribute(arn, name, value)?;
    Ok(String::new())
}

fn subscribe(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let arn = required(req, "TopicArn")?;
    let protocol = Protocol::parse(required(req, "Protocol")?).map_err(invalid)?;
    let endpoint = required(req, "Endpoint")?;
    let attrs = key_values(req, "Attributes.entry");
    let sub = ctx.topics.subscribe(arn, protocol, endpoint, &attrs)?;
    Ok(tag("SubscriptionArn", &sub))
}

fn unsubscribe(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    ctx.topics.unsubscribe(required(req, "SubscriptionArn")?)?;
    Ok(String::new())
}

fn subscriptions_xml(subs: Vec<(String, crate::topics::SubscriptionRecord)>, next: Option<String>) -> String {
    let mut out = String::from("<Subscriptions>");
    for (topic, s) in subs {
        out.push_str("<member>");
        out.push_str(&tag("TopicArn", &topic));
        out.push_str(&tag("Protocol", s.protocol.as_str()));
        out.push_str(&tag("SubscriptionArn", &s.arn));
        out.push_str(&tag("Owner", super::ACCOUNT));
        out.push_str(&tag("Endpoint", &s.endpoint));
        out.push_str("</member>");
    }
    out.push_str("</Subscriptions>");
    if let Some(n) = next {
        out.push_str(&tag("NextToken", &n));
    }
    out
}

fn list_subscriptions(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let (subs, next) = page(req, ctx.topics.list_subscriptions())?;
    Ok(subscriptions_xml(subs, next))
}

fn list_subscriptions_by_topic(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let arn = required(req, "TopicArn")?;
    let subs = ctx.topics.list_subscriptions_by_topic(arn)?;
    let (subs, next) = page(req, subs.into_iter().map(|s| (arn.to_string(), s)).collect())?;
    Ok(subscriptions_xml(subs, next))
}

fn get_subscription_attributes(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let (topic, s) = ctx.topics.subscription(required(req, "SubscriptionArn")?)?;
    let mut m = s.attributes();
    m.insert("TopicArn".into(), topic);
    m.insert("Owner".into(), super::ACCOUNT.into());
    Ok(entries(&m))
}

fn set_subscription_attributes(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    let arn = required(req, "SubscriptionArn")?;
    let name = required(req, "AttributeName")?;
    ctx.topics.set_subscription_attribute(arn, name, req.param("AttributeValue").unwrap_or(""))?;
    Ok(String::new())
}

fn list_tags(ctx: &AwsContext, req: &AwsRequest) -> Result<String> {
    ctx.topics.topic(required(req, "ResourceArn")?)?;
    Ok("<Tags/>".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn request(params: &[(&str, &str)]) -> AwsRequest {
        AwsRequest {
            method: hyper::Method::POST,
            path: "/".into(),
            query: String::new(),
            headers: hyper::HeaderMap::new(),
            body: Bytes::new(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            request_id: "rid".into(),
        }
    }

    #[test]
    fn indexed_parameters_group_by_member() {
        let r = request(&[
            ("MessageAttributes.entry.2.Name", "b"),
            ("MessageAttributes.entry.1.Name", "a"),
            ("MessageAttributes.entry.1.Value.DataType", "String"),
            ("MessageAttributes.entry.1.Value.StringValue", "x y"),
            ("MessageAttributes.entry.2.Value.DataType", "Binary"),
            ("MessageAttributes.entry.2.Value.BinaryValue", "AAE="),
            ("Attributes.entry.1.key", "RawMessageDelivery"),
            ("Attributes.entry.1.value", "true"),
        ]);
        let attrs = message_attributes(members(&r, "MessageAttributes.entry")).unwrap();
        assert_eq!(attrs["a"].string_value.as_deref(), Some("x y"));
        assert_eq!(attrs["b"].binary_value.as_deref(), Some(&[0u8, 1][..]));
        assert_eq!(key_values(&r, "Attributes.entry")["RawMessageDelivery"], "true");
        let bad = request(&[
            ("MessageAttributes.entry.1.Name", "a"),
            ("MessageAttributes.entry.1.Value.DataType", "Binary"),
            ("MessageAttributes.entry.1.Value.BinaryValue", "!!"),
        ]);
        assert!(message_attributes(members(&bad, "MessageAttributes.entry")).is_err());
    }

    #[test]
    fn message_structure_json_picks_per_protocol_texts() {
        let fields = |k: &str| match k {
            "Message" => Some(r#"{"default": "d", "sqs": "for queues"}"#.to_string()),
            "MessageStructure" => Some("json".to_string()),
            _ => None,
        };
        let (_, b) = build_message(Input { fields: &fields, attributes: BTreeMap::new() }).unwrap();
        assert_eq!((b.sqs.as_str(), b.lambda.as_str()), ("for queues", "d"));
        let no_default = |k: &str| match k {
            "Message" => Some(r#"{"sqs": "x"}"#.to_string()),
            "MessageStructure" => Some("json".to_string()),
            _ => None,
        };
        let e = build_message(Input { fields: &no_default, attributes: BTreeMap::new() }).err().unwrap();
        assert!(e.message.contains("No default entry"));
    }

    #[test]
    fn responses_are_sns_xml() {
        let r = ok("Publish", &tag("MessageId", "m<1>"), "rid");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-amzn-requestid"], "rid");
        let page_req = request(&[("NextToken", "100")]);
        let (items, next) = page(&page_req, (0..250).collect::<Vec<_>>()).unwrap();
        assert_eq!((items[0], items.len(), next.as_deref()), (100, 100, Some("200")));
        assert!(page(&request(&[("NextToken", "x")]), vec![1]).is_err());
    }
}
