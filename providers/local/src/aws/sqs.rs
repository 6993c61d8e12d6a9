//! SQS's JSON protocol (`X-Amz-Target: AmazonSQS.<Operation>`, `application/x-amz-json-1.0`),
//! as current boto3 and the AWS CLI speak it, over the queues of [`crate::queue`].
//!
//! Errors carry the current model's code in `__type` and the legacy query code in
//! `x-amzn-query-error` (e.g. `AWS.SimpleQueueService.NonExistentQueue;Sender`), as SQS sends
//! them: boto3 raises the modeled exception (`QueueDoesNotExist`) with the legacy code in
//! `e.response["Error"]["Code"]`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::{AwsContext, AwsError, AwsRequest, set_header};
use crate::http::{self, Resp};
use crate::queue::{
    MAX_BATCH, MAX_MESSAGE_SIZE, MessageAttribute, QueueConfig, ReceiveOptions, Received, SendInput, SqsError,
};

impl From<SqsError> for AwsError {
    fn from(e: SqsError) -> AwsError {
        let status = if e.code == "InternalError" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut a = AwsError::new(status, e.code, e.message);
        if e.query_code != e.code {
            a = a.with_query_code(e.query_code);
        }
        a
    }
}

fn ok(rid: &str, v: Value) -> Resp {
    let mut r = http::response(StatusCode::OK, "application/x-amz-json-1.0", v.to_string());
    set_header(&mut r, "x-amzn-requestid", rid);
    r
}

/// Answers one SQS request.
pub async fn handle(ctx: &AwsContext, req: &AwsRequest) -> Resp {
    let rid = &req.request_id;
    let Some(op) = req.header("x-amz-target").and_then(|t| t.strip_prefix("AmazonSQS.")) else {
        return AwsError::bad(
            "InvalidAction",
            "the local cloud speaks SQS's JSON protocol only (X-Amz-Target: AmazonSQS.<Operation>); upgrade the SDK",
        )
        .json(rid, "com.amazonaws.sqs");
    };
    let input: Value = if req.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return AwsError::bad("SerializationException", "the body is not a JSON object")
                    .json(rid, "com.amazonaws.sqs");
            }
        }
    };
    match dispatch(ctx, op, &input).await {
        Ok(v) => ok(rid, v),
        Err(e) => e.json(rid, "com.amazonaws.sqs"),
    }
}

fn missing(name: &str) -> AwsError {
    AwsError::bad("MissingParameter", format!("The request must contain the parameter {name}."))
}

fn str_of<'a>(v: &'a Value, name: &str) -> Result<&'a str, AwsError> {
    match &v[name] {
        Value::String(s) => Ok(s),
        Value::Null => Err(missing(name)),
        _ => Err(AwsError::bad("InvalidParameterValue", format!("{name} must be a string"))),
    }
}

fn int_of(v: &Value, name: &str, min: i64, max: i64) -> Result<Option<i64>, AwsError> {
    match &v[name] {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let x = n.as_i64().unwrap_or(i64::MIN);
            if x < min || x > max {
                return Err(AwsError::bad(
                    "InvalidParameterValue",
                    format!(
                        "Value {n} for parameter {name} is invalid. Reason: Must be between {min} and {max}."
                    ),
                ));
            }
            Ok(Some(x))
        }
        other => Err(AwsError::bad("InvalidParameterValue", format!("{name} must be a number, got {other}"))),
    }
}

fn queue(ctx: &AwsContext, input: &Value) -> Result<std::sync::Arc<crate::queue::Queue>, AwsError> {
    let url = str_of(input, "QueueUrl")?;
    Ok(ctx.queues.by_ref(url)?)
}

fn parse_attributes(v: &Value) -> Result<BTreeMap<String, MessageAttribute>, AwsError> {
    let mut out = BTreeMap::new();
    let Some(map) = v.as_object() else {
        return if v.is_null() {
            Ok(out)
        } else {
            Err(AwsError::bad("InvalidParameterValue", "MessageAttributes must be a map"))
        };
    };
    for (name, a) in map {
        out.insert(
            name.clone(),
            MessageAttribute {
                data_type: a["DataType"].as_str().unwrap_or("").to_string(),
                string_value: a["StringValue"].as_str().map(str::to_string),
                binary_value: a["BinaryValue"].as_str().map(str::to_string),
            },
        );
    }
    Ok(out)
}

fn send_input(v: &Value) -> Result<SendInput, AwsError> {
    Ok(SendInput {
        body: match &v["MessageBody"] {
            Value::String(s) => s.clone(),
            Value::Null => return Err(missing("MessageBody")),
            _ => return Err(AwsError::bad("InvalidParameterValue", "MessageBody must be a string")),
        },
        attributes: parse_attributes(&v["MessageAttributes"])?,
        delay: int_of(v, "DelaySeconds", 0, 900)?.map(|d| d as u32),
        group_id: v["MessageGroupId"].as_str().map(str::to_string),
        dedup_id: v["MessageDeduplicationId"].as_str().map(str::to_string),
    })
}

fn sent_json(s: &crate::queue::Sent) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("MessageId".into(), json!(s.message_id));
    m.insert("MD5OfMessageBody".into(), json!(s.md5_body));
    if let Some(a) = &s.md5_attributes {
        m.insert("MD5OfMessageAttributes".into(), json!(a));
    }
    if let Some(n) = &s.sequence_number {
        m.insert("SequenceNumber".into(), json!(n));
    }
    m
}

/// Checks a batch's entries: 1–10, ids distinct and well formed.
fn batch_entries<'a>(input: &'a Value, name: &str, op: &str) -> Result<&'a Vec<Value>, AwsError> {
    let entries = match &input[name] {
        Value::Array(a) => a,
        Value::Null => return Err(missing(name)),
        _ => return Err(AwsError::bad("InvalidParameterValue", format!("{name} must be a list"))),
    };
    if entries.is_empty() {
        return Err(AwsError::bad(
            "EmptyBatchRequest",
            format!("There should be at least one {op}RequestEntry in the request."),
        )
        .with_query_code("AWS.SimpleQueueService.EmptyBatchRequest"));
    }
    if entries.len() > MAX_BATCH {
        return Err(AwsError::bad(
            "TooManyEntriesInBatchRequest",
            format!(
                "Maximum number of entries per request are {MAX_BATCH}. You have sent {}.",
                entries.len()
            ),
        )
        .with_query_code("AWS.SimpleQueueService.TooManyEntriesInBatchRequest"));
    }
    let mut seen = HashSet::new();
    for e in entries {
        let id = e["Id"].as_str().unwrap_or("");
        if id.is_empty()
            || id.len() > 80
            || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(AwsError::bad(
                "InvalidBatchEntryId",
                format!("A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long (got `{id}`)."),
            )
            .with_query_code("AWS.SimpleQueueService.InvalidBatchEntryId"));
        }
        if !seen.insert(id) {
            return Err(AwsError::bad("BatchEntryIdsNotDistinct", format!("Id {id} repeated."))
                .with_query_code("AWS.SimpleQueueService.BatchEntryIdsNotDistinct"));
        }
    }
    Ok(entries)
}

fn failed(id: &str, e: SqsError) -> Value {
    json!({"Id": id, "SenderFault": e.code != "InternalError", "Code": e.query_code, "Message": e.message})
}

/// Which message attributes a receive asked for (`All`, `.*`, names, `prefix.*`).
fn wanted(names: &Value) -> impl Fn(&str) -> bool + '_ {
    move |name: &str| {
        names.as_array().is_some_and(|a| {
            a.iter().filter_map(Value::as_str).any(|w| {
                w == "All"
                    || w == ".*"
                    || w == name
                    || w.strip_suffix(".*").is_some_and(|p| name.starts_with(&format!("{p}.")))
            })
        })
    }
}

/// The system attributes of a received message (`Attributes`), those asked for.
pub fn system_attributes(r: &Received, names: &[&str]) -> Map<String, Value> {
    let m = &r.message;
    let all = names.contains(&"All");
    let want = |n: &str| all || names.contains(&n);
    let mut a = Map::new();
    if want("SenderId") {
        a.insert("SenderId".into(), json!(super::ACCOUNT));
    }
    if want("SentTimestamp") {
        a.insert("SentTimestamp".into(), json!(m.sent.to_string()));
    }
    if want("ApproximateReceiveCount") {
        a.insert("ApproximateReceiveCount".into(), json!(m.n.to_string()));
    }
    if want("ApproximateFirstReceiveTimestamp") {
        a.insert("ApproximateFirstReceiveTimestamp".into(), json!(m.first.unwrap_or(m.sent).to_string()));
    }
    if let Some(g) = &m.g {
        if want("MessageGroupId") {
            a.insert("MessageGroupId".into(), json!(g));
        }
        if want("MessageDeduplicationId")
            && let Some(d) = &m.d
        {
            a.insert("MessageDeduplicationId".into(), json!(d));
        }
        if want("SequenceNumber") {
            a.insert("SequenceNumber".into(), json!(m.sequence_number()));
        }
    }
    a
}

fn attribute_json(a: &MessageAttribute) -> Value {
    let mut o = Map::new();
    o.insert("DataType".into(), json!(a.data_type));
    if let Some(s) = &a.string_value {
        o.insert("StringValue".into(), json!(s));
    }
    if let Some(b) = &a.binary_value {
        o.insert("BinaryValue".into(), json!(b));
    }
    Value::Object(o)
}

async fn dispatch(ctx: &AwsContext, op: &str, input: &Value) -> Result<Value, AwsError> {
    match op {
        "SendMessage" => {
            let q = queue(ctx, input)?;
            let sent = q.send(send_input(input)?).await?;
            Ok(Value::Object(sent_json(&sent)))
        }
        "SendMessageBatch" => {
            let q = queue(ctx, input)?;
            let entries = batch_entries(input, "Entries", "SendMessageBatch")?;
            let mut inputs = Vec::new();
            let mut total = 0;
            for e in entries {
                let i = send_input(e);
                if let Ok(i) = &i {
                    total += i.body.len()
                        + i.attributes
                            .iter()
                            .map(|(k, a)| {
                                k.len()
                                    + a.data_type.len()
                                    + a.string_value.as_ref().map_or(0, String::len)
                                    + a.binary_value.as_ref().map_or(0, String::len)
                            })
                            .sum::<usize>();
                }
                inputs.push(i);
            }
            if total > MAX_MESSAGE_SIZE {
                return Err(AwsError::bad(
                    "BatchRequestTooLong",
                    format!("Batch requests cannot be longer than {MAX_MESSAGE_SIZE} bytes. You have sent {total} bytes."),
                )
                .with_query_code("AWS.SimpleQueueService.BatchRequestTooLong"));
            }
            // Send every entry concurrently: their records share one group commit.
            let futs = entries.iter().zip(inputs).map(|(e, i)| {
                let q = q.clone();
                async move {
                    let id = e["Id"].as_str().unwrap_or_default().to_string();
                    match i {
                        Err(err) => Err(
                            json!({"Id": id, "SenderFault": true, "Code": err.code, "Message": err.message}),
                        ),
                        Ok(i) => match q.send(i).await {
                            Ok(s) => {
                                let mut m = sent_json(&s);
                                m.insert("Id".into(), json!(id));
                                Ok(Value::Object(m))
                            }
                            Err(err) => Err(failed(&id, err)),
                        },
                    }
                }
            });
            let results = futures_join_all(futs).await;
            let (mut ok, mut bad) = (Vec::new(), Vec::new());
            for r in results {
                match r {
                    Ok(v) => ok.push(v),
                    Err(v) => bad.push(v),
                }
            }
            Ok(json!({"Successful": ok, "Failed": bad}))
        }
        "ReceiveMessage" => {
            let q = queue(ctx, input)?;
            let max = int_of(input, "MaxNumberOfMessages", 1, 10)?.unwrap_or(1) as usize;
            let vis = int_of(input, "VisibilityTimeout", 0, 43_200)?.map(|v| v as u32);
            let wait = int_of(input, "WaitTimeSeconds", 0, 20)?
                .map(|w| w as u64)
                .unwrap_or(q.config().receive_wait as u64);
            let got = q
                .receive(
                    &ctx.queues,
                    ReceiveOptions { max, visibility_timeout: vis, wait: Duration::from_secs(wait) },
                )
                .await?;
            let mut names: Vec<&str> = Vec::new();
            for key in ["AttributeNames", "MessageSystemAttributeNames"] {
                if let Some(a) = input[key].as_array() {
                    names.extend(a.iter().filter_map(Value::as_str));
                }
            }
            let want_attr = wanted(&input["MessageAttributeNames"]);
            let mut msgs = Vec::new();
            for r in &got {
                let m = &r.message;
                let mut o = Map::new();
                o.insert("MessageId".into(), json!(m.id));
                o.insert("ReceiptHandle".into(), json!(r.receipt_handle));
                o.insert("MD5OfBody".into(), json!(m.md5_body()));
                o.insert("Body".into(), json!(m.body));
                let sys = system_attributes(r, &names);
                if !sys.is_empty() {
                    o.insert("Attributes".into(), Value::Object(sys));
                }
                let chosen: BTreeMap<String, MessageAttribute> = m
                    .attrs
                    .iter()
                    .filter(|(k, _)| want_attr(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if let Some(md5) = crate::queue::md5_attributes(&chosen) {
                    o.insert("MD5OfMessageAttributes".into(), json!(md5));
                    o.insert(
                        "MessageAttributes".into(),
                        Value::Object(chosen.iter().map(|(k, a)| (k.clone(), attribute_json(a))).collect()),
                    );
                }
                msgs.push(Value::Object(o));
            }
            if msgs.is_empty() { Ok(json!({})) } else { Ok(json!({"Messages": msgs})) }
        }
        "DeleteMessage" => {
            let q = queue(ctx, input)?;
            q.delete(str_of(input, "ReceiptHandle")?).await?;
            Ok(json!({}))
        }
        "DeleteMessageBatch" => {
            let q = queue(ctx, input)?;
            let entries = batch_entries(input, "Entries", "DeleteMessageBatch")?;
            let (mut ok, mut bad) = (Vec::new(), Vec::new());
            for e in entries {
                let id = e["Id"].as_str().unwrap_or_default();
                match q.delete(e["ReceiptHandle"].as_str().unwrap_or("")).await {
                    Ok(()) => ok.push(json!({"Id": id})),
                    Err(err) => bad.push(failed(id, err)),
                }
            }
            Ok(json!({"Successful": ok, "Failed": bad}))
        }
        "ChangeMessageVisibility" => {
            let q = queue(ctx, input)?;
            let t =
                int_of(input, "VisibilityTimeout", 0, 43_200)?.ok_or_else(|| missing("VisibilityTimeout"))?;
            q.change_visibility(str_of(input, "ReceiptHandle")?, t as u32).await?;
            Ok(json!({}))
        }
        "ChangeMessageVisibilityBatch" => {
            let q = queue(ctx, input)?;
            let entries = batch_entries(input, "Entries", "ChangeMessageVisibilityBatch")?;
            let (mut ok, mut bad) = (Vec::new(), Vec::new());
            for e in entries {
                let id = e["Id"].as_str().unwrap_or_default();
                let t = e["VisibilityTimeout"].as_u64().unwrap_or(0).min(u32::MAX as u64) as u32;
                match q.change_visibility(e["ReceiptHandle"].as_str().unwrap_or(""), t).await {
                    Ok(()) => ok.push(json!({"Id": id})),
                    Err(err) => bad.push(failed(id, err)),
                }
            }
            Ok(json!({"Successful": ok, "Failed": bad}))
        }
        "GetQueueUrl" => {
            let name = str_of(input, "QueueName")?;
            let q = ctx.queues.get(name).ok_or_else(|| AwsError::from(SqsError::no_queue()))?;
            Ok(json!({"QueueUrl": q.url(ctx.port)}))
        }
        "GetQueueAttributes" => {
            let q = queue(ctx, input)?;
            let all = q.attributes();
            let names: Vec<&str> = input["AttributeNames"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = Map::new();
            for n in &names {
                if *n == "All" {
                    out.extend(all.iter().map(|(k, v)| (k.clone(), json!(v))));
                } else if let Some(v) = all.get(*n) {
                    out.insert(n.to_string(), json!(v));
                } else if !KNOWN_ATTRIBUTES.contains(n) {
                    return Err(AwsError::bad("InvalidAttributeName", format!("Unknown Attribute {n}."))
                        .with_query_code("InvalidAttributeName"));
                }
            }
            if out.is_empty() { Ok(json!({})) } else { Ok(json!({"Attributes": out})) }
        }
        "ListQueues" => {
            let prefix = input["QueueNamePrefix"].as_str().unwrap_or("");
            let max = int_of(input, "MaxResults", 1, 1000)?.map(|m| m as usize);
            let start: usize = input["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
            let names: Vec<String> =
                ctx.queues.names().into_iter().filter(|n| n.starts_with(prefix)).collect();
            let end = max.map(|m| (start + m).min(names.len())).unwrap_or(names.len().min(start + 1000));
            let urls: Vec<String> = names
                .get(start..end)
                .unwrap_or(&[])
                .iter()
                .map(|n| format!("http://127.0.0.1:{}/{}/{n}", ctx.port, super::ACCOUNT))
                .collect();
            let mut out = Map::new();
            if !urls.is_empty() {
                out.insert("QueueUrls".into(), json!(urls));
            }
            if max.is_some() && end < names.len() {
                out.insert("NextToken".into(), json!(end.to_string()));
            }
            Ok(Value::Object(out))
        }
        "PurgeQueue" => {
            queue(ctx, input)?.purge().await?;
            Ok(json!({}))
        }
        "CreateQueue" => {
            let name = str_of(input, "QueueName")?;
            let attrs = input["Attributes"].as_object().cloned().unwrap_or_default();
            let config = config_from_attributes(&attrs, name)?;
            if let Some(q) = ctx.queues.get(name) {
                let mut mine = q.config();
                mine.created_ms = 0;
                if mine != config {
                    return Err(AwsError::bad("QueueNameExists", format!("A queue already exists with the same name and a different value for attribute(s): `{name}`"))
                        .with_query_code("QueueAlreadyExists"));
                }
                return Ok(json!({"QueueUrl": q.url(ctx.port)}));
            }
            let q = ctx.queues.put(name, config).await?;
            Ok(json!({"QueueUrl": q.url(ctx.port)}))
        }
        "DeleteQueue" => {
            let url = str_of(input, "QueueUrl")?;
            if !ctx.queues.delete(crate::queue::queue_name_of(url)).await {
                return Err(SqsError::no_queue().into());
            }
            Ok(json!({}))
        }
        other => Err(AwsError::bad(
            "InvalidAction",
            format!(
                "The action {other} is not valid for this endpoint (the local cloud serves: {}).",
                OPERATIONS.join(", ")
            ),
        )
        .with_query_code("InvalidAction")),
    }
}

pub const OPERATIONS: &[&str] = &[
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "GetQueueUrl",
    "GetQueueAttributes",
    "ListQueues",
    "PurgeQueue",
    "CreateQueue",
    "DeleteQueue",
];

const KNOWN_ATTRIBUTES: &[&str] = &[
    "Policy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "ContentBasedDeduplication",
    "FifoQueue",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "SqsManagedSseEnabled",
];

/// `CreateQueue`'s attributes as a [`QueueConfig`].
fn config_from_attributes(a: &Map<String, Value>, name: &str) -> Result<QueueConfig, AwsError> {
    let num = |k: &str, min: u32, max: u32, default: u32| -> Result<u32, AwsError> {
        match a.get(k).and_then(Value::as_str) {
            None => Ok(default),
            Some(s) => s.parse::<u32>().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| {
                AwsError::bad(
                    "InvalidAttributeValue",
                    format!("Invalid value for the parameter {k}: `{s}` (must be {min} to {max})."),
                )
                .with_query_code("InvalidAttributeValue")
            }),
        }
    };
    let fifo = a.get("FifoQueue").and_then(Value::as_str) == Some("true");
    let dead_letter = match a.get("RedrivePolicy").and_then(Value::as_str) {
        None => None,
        Some(s) => {
            let p: Value = serde_json::from_str(s).map_err(|e| {
                AwsError::bad("InvalidAttributeValue", format!("RedrivePolicy is not JSON: {e}"))
            })?;
            let arn = p["deadLetterTargetArn"].as_str().unwrap_or_default().to_string();
            let max = p["maxReceiveCount"]
                .as_u64()
                .or_else(|| p["maxReceiveCount"].as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0);
            if arn.is_empty() || max == 0 {
                return Err(AwsError::bad(
                    "InvalidParameterValue",
                    "RedrivePolicy needs deadLetterTargetArn and a maxReceiveCount of at least 1",
                ));
            }
            Some(crate::queue::DeadLetter { queue: arn, max_receive_count: max as u32 })
        }
    };
    if fifo != name.ends_with(".fifo") {
        return Err(AwsError::bad(
            "InvalidParameterValue",
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix",
        ));
    }
    Ok(QueueConfig {
        fifo,
        visibility_timeout: num("VisibilityTimeout", 0, 43_200, 30)?,
        message_retention: num("MessageRetentionPeriod", 60, 1_209_600, 345_600)?,
        delay: num("DelaySeconds", 0, 900, 0)?,
        receive_wait: num("ReceiveMessageWaitTimeSeconds", 0, 20, 0)?,
        content_based_deduplication: a.get("ContentBasedDeduplication").and_then(Value::as_str)
            == Some("true"),
        dead_letter,
        created_ms: 0,
    })
}

/// Runs futures concurrently and collects their results in order.
async fn futures_join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = Vec::with_capacity(set.len());
    // Poll all of them together: each `send` queues its record at its first poll, so the
    // records of a batch reach the log writer before any of them waits.
    let mut results: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("every future completed")));
    out
}
