//! Queue triggers (`local:QueueSubscription`): what Lambda's event source mapping does for
//! SQS. Pollers receive batches from the queue and invoke the function with an SQS event.
//!
//! - A batch is up to `batch_size` messages; with a `batching_window` (seconds) a poller that
//!   got fewer waits up to that long for more before it invokes.
//! - `maximum_concurrency` pollers run per subscription (default 5), so at most that many
//!   invocations of one subscription run at once.
//! - A successful invocation deletes the batch. A failed one (raised, timed out, crashed)
//!   deletes nothing: the messages become visible again when the queue's visibility timeout
//!   ends, are retried, and after the queue's `max_receive_count` go to its dead-letter queue
//!   (the queue does that at receive, as SQS does).
//! - A result `{"batchItemFailures": [{"itemIdentifier": MESSAGE_ID}, ...]}` deletes all but
//!   those (Lambda's `ReportBatchItemFailures`, always on here); a malformed list, or an id
//!   not in the batch, fails the whole batch as Lambda does.
//!
//! Subscriptions are kept in `.skyform/local/queue_subscriptions.json` (written atomically)
//! and restarted with the daemon. Control routes: `PUT`/`GET`/`DELETE
//! /v1/stacks/{stack}/queue-subscriptions/{name}` with a [`SubscriptionSpec`].

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::aws::{AwsContext, REGION};
use crate::http::{self, Resp};
use crate::layout::Layout;
use crate::pool::InvokeResult;
use crate::queue::{ReceiveOptions, Received};

fn default_batch() -> u32 {
    10
}
fn default_concurrency() -> u32 {
    5
}

/// A queue trigger, as the control API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionSpec {
    /// The queue's ARN (or URL, or name).
    pub queue: String,
    /// The function's name (or ARN).
    pub function: String,
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// Seconds to wait for a fuller batch (0: invoke with what is there).
    #[serde(default)]
    pub batching_window: f64,
    /// Pollers (so concurrent invocations) for this subscription.
    #[serde(default = "default_concurrency")]
    pub maximum_concurrency: u32,
}

#[derive(Default)]
struct Counters {
    invocations: AtomicU64,
    failed: AtomicU64,
    deleted: AtomicU64,
}

struct Running {
    spec: SubscriptionSpec,
    counters: Arc<Counters>,
    _stop: watch::Sender<bool>,
}

pub struct Triggers {
    path: PathBuf,
    ctx: Arc<AwsContext>,
    subs: Mutex<BTreeMap<(String, String), Running>>,
    /// Serialises changes and the file.
    change: tokio::sync::Mutex<()>,
}

type Saved = BTreeMap<String, BTreeMap<String, SubscriptionSpec>>;

impl Triggers {
    /// Reads the saved subscriptions (they start with [`Triggers::spawn_all`]).
    pub fn load(layout: &Layout, ctx: Arc<AwsContext>) -> std::io::Result<Arc<Triggers>> {
        let path = layout.queue_subscriptions();
        let saved: Saved = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                std::io::Error::other(format!(
                    "{} is not valid ({e}); move it away and run `skyform up`",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::new(),
            Err(e) => return Err(e),
        };
        let t =
            Arc::new(Triggers { path, ctx, subs: Mutex::new(BTreeMap::new()), change: Default::default() });
        let mut subs = t.subs.lock().unwrap();
        for (stack, m) in saved {
            for (name, spec) in m {
                let (tx, _) = watch::channel(false);
                subs.insert((stack.clone(), name), Running { spec, counters: Default::default(), _stop: tx });
            }
        }
        drop(subs);
        Ok(t)
    }

    /// Starts the pollers of every loaded subscription.
    pub fn spawn_all(self: &Arc<Self>) {
        let mut subs = self.subs.lock().unwrap();
        for r in subs.values_mut() {
            r._stop = start(self.ctx.clone(), r.spec.clone(), r.counters.clone());
        }
    }

    fn save(&self) -> std::io::Result<()> {
        let mut saved = Saved::new();
        for ((s, n), r) in self.subs.lock().unwrap().iter() {
            saved.entry(s.clone()).or_default().insert(n.clone(), r.spec.clone());
        }
        let bytes = serde_json::to_vec_pretty(&saved).map_err(std::io::Error::other)?;
        crate::registry::write_atomic(&self.path, &bytes)
    }

    fn view(&self, stack: &str, name: &str) -> Option<Value> {
        let subs = self.subs.lock().unwrap();
        let r = subs.get(&(stack.to_string(), name.to_string()))?;
        Some(json!({
            "stack": stack,
            "name": name,
            "spec": r.spec,
            "uuid": uuid_of(stack, name),
            "invocations": r.counters.invocations.load(Ordering::Relaxed),
            "failed_invocations": r.counters.failed.load(Ordering::Relaxed),
            "deleted": r.counters.deleted.load(Ordering::Relaxed),
        }))
    }

    pub fn status(&self) -> Vec<Value> {
        let keys: Vec<(String, String)> = self.subs.lock().unwrap().keys().cloned().collect();
        keys.iter().filter_map(|(s, n)| self.view(s, n)).collect()
    }

    pub async fn control(&self, method: &Method, stack: &str, name: &str, body: &Bytes) -> Resp {
        let _guard = self.change.lock().await;
        let key = (stack.to_string(), name.to_string());
        match *method {
            Method::PUT => {
                let spec: SubscriptionSpec = match serde_json::from_slice(body) {
                    Ok(s) => s,
                    Err(e) => {
                        return http::message(StatusCode::BAD_REQUEST, &format!("bad subscription: {e}"));
                    }
                };
                if !(1..=10).contains(&spec.batch_size) {
                    return http::message(StatusCode::BAD_REQUEST, "batch_size must be 1 to 10");
                }
                if spec.maximum_concurrency == 0 || spec.maximum_concurrency > 1000 {
                    return http::message(StatusCode::BAD_REQUEST, "maximum_concurrency must be 1 to 1000");
                }
                if !(0.0..=300.0).contains(&spec.batching_window) {
                    return http::message(
                        StatusCode::BAD_REQUEST,
                        "batching_window must be 0 to 300 seconds",
                    );
                }
                if self.ctx.queues.by_ref(&spec.queue).is_err() {
                    return http::message(
                        StatusCode::BAD_REQUEST,
                        &format!("queue `{}` does not exist; declare it in the program", spec.queue),
                    );
                }
                if self.ctx.function(&spec.function).is_none() {
                    return http::message(
                        StatusCode::BAD_REQUEST,
                        &format!("function `{}` is not deployed; declare it in the program", spec.function),
                    );
                }
                let unchanged = self.subs.lock().unwrap().get(&key).is_some_and(|r| r.spec == spec);
                if !unchanged {
                    let counters = Arc::new(Counters::default());
                    let stop = start(self.ctx.clone(), spec.clone(), counters.clone());
                    self.subs.lock().unwrap().insert(key, Running { spec, counters, _stop: stop });
                    if let Err(e) = self.save() {
                        return http::message(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &format!("cannot save: {e}"),
                        );
                    }
                }
                http::json(StatusCode::OK, &self.view(stack, name).unwrap_or_default())
            }
            Method::GET => match self.view(stack, name) {
                Some(v) => http::json(StatusCode::OK, &v),
                None => http::message(
                    StatusCode::NOT_FOUND,
                    &format!("no queue subscription `{name}` in stack `{stack}`"),
                ),
            },
            Method::DELETE => {
                let existed = self.subs.lock().unwrap().remove(&key).is_some();
                if let Err(e) = self.save() {
                    return http::message(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot save: {e}"));
                }
                if existed {
                    http::json(StatusCode::OK, &json!({"deleted": true}))
                } else {
                    http::message(
                        StatusCode::NOT_FOUND,
                        &format!("no queue subscription `{name}` in stack `{stack}`"),
                    )
                }
            }
            _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }
}

/// A stable UUID-shaped id for the mapping (outputs).
pub fn uuid_of(stack: &str, name: &str) -> String {
    let h = crate::aws::sigv4::sha256_hex(format!("{stack}/{name}").as_bytes());
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Starts the pollers; dropping the returned sender stops them.
fn start(ctx: Arc<AwsContext>, spec: SubscriptionSpec, counters: Arc<Counters>) -> watch::Sender<bool> {
    let (tx, rx) = watch::channel(false);
    for _ in 0..spec.maximum_concurrency {
        let (ctx, spec, counters, mut rx) = (ctx.clone(), spec.clone(), counters.clone(), rx.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = poll(&ctx, &spec, &counters) => {}
                _ = rx.changed() => {}
            }
        });
    }
    tx
}

async fn poll(ctx: &AwsContext, spec: &SubscriptionSpec, counters: &Counters) {
    loop {
        let Ok(q) = ctx.queues.by_ref(&spec.queue) else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let max = spec.batch_size as usize;
        let opts = ReceiveOptions { max, visibility_timeout: None, wait: Duration::from_secs(20) };
        let mut batch = match q.receive(&ctx.queues, opts).await {
            Ok(b) => b,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        if spec.batching_window > 0.0 && batch.len() < max {
            let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(spec.batching_window);
            while batch.len() < max {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                let more = ReceiveOptions { max: max - batch.len(), visibility_timeout: None, wait: left };
                match q.receive(&ctx.queues, more).await {
                    Ok(m) => batch.extend(m),
                    Err(_) => break,
                }
            }
        }
        let Some(pool) = ctx.function(&spec.function) else {
            // The function is gone: the messages come back after the visibility timeout.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let event = sqs_event(&q.arn(), &batch);
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        // The worker goes on in the trace of the batch's first message (crate::trace).
        let trace =
            crate::trace::Ctx::from_header(batch[0].message.trace.as_deref(), format!("sqs {}", q.name));
        let invoked = crate::trace::scope(trace, pool.invoke(Bytes::from(event.to_string()))).await;
        let keep: HashSet<String> = match invoked.result {
            InvokeResult::Ok(body) => match failed_items(&body, &batch) {
                Some(ids) => ids,
                None => batch.iter().map(|r| r.message.id.clone()).collect(),
            },
            InvokeResult::Error { .. } => batch.iter().map(|r| r.message.id.clone()).collect(),
        };
        if !keep.is_empty() {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        let done: Vec<&Received> = batch.iter().filter(|r| !keep.contains(&r.message.id)).collect();
        let mut deleted = 0;
        for r in &done {
            if q.delete(&r.receipt_handle).await.is_ok() {
                deleted += 1;
            }
        }
        counters.deleted.fetch_add(deleted, Ordering::Relaxed);
    }
}

/// The message ids a `batchItemFailures` result names; `None` when the whole batch failed
/// (a malformed list or an unknown id, as Lambda treats them). No list: nothing failed.
fn failed_items(body: &[u8], batch: &[Received]) -> Option<HashSet<String>> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(list) = v.get("batchItemFailures") else { return Some(HashSet::new()) };
    if list.is_null() {
        return Some(HashSet::new());
    }
    let items = list.as_array()?;
    let ids: HashSet<&str> = batch.iter().map(|r| r.message.id.as_str()).collect();
    let mut out = HashSet::new();
    for it in items {
        let id = it.get("itemIdentifier").and_then(Value::as_str)?;
        if id.is_empty() || !ids.contains(id) {
            return None;
        }
        out.insert(id.to_string());
    }
    Some(out)
}

/// Lambda's SQS event for a batch.
pub fn sqs_event(queue_arn: &str, batch: &[Received]) -> Value {
    let records: Vec<Value> = batch
        .iter()
        .map(|r| {
            let m = &r.message;
            let mut attrs = Map::new();
            attrs.insert("ApproximateReceiveCount".into(), json!(m.n.to_string()));
            attrs.insert("SentTimestamp".into(), json!(m.sent.to_string()));
            attrs.insert("SenderId".into(), json!(crate::aws::ACCOUNT));
            attrs.insert(
                "ApproximateFirstReceiveTimestamp".into(),
                json!(m.first.unwrap_or(m.sent).to_string()),
            );
            if let Some(t) = &m.trace {
                attrs.insert("AWSTraceHeader".into(), json!(t));
            }
            if let Some(g) = &m.g {
                attrs.insert("SequenceNumber".into(), json!(m.sequence_number()));
                attrs.insert("MessageGroupId".into(), json!(g));
                if let Some(d) = &m.d {
                    attrs.insert("MessageDeduplicationId".into(), json!(d));
                }
            }
            let message_attributes: Map<String, Value> = m
                .attrs
                .iter()
                .map(|(k, a)| {
                    let mut o = Map::new();
                    if let Some(s) = &a.string_value {
                        o.insert("stringValue".into(), json!(s));
                    }
                    if let Some(b) = &a.binary_value {
                        o.insert("binaryValue".into(), json!(b));
                    }
                    o.insert("stringListValues".into(), json!([]));
                    o.insert("binaryListValues".into(), json!([]));
                    o.insert("dataType".into(), json!(a.data_type));
                    (k.clone(), Value::Object(o))
                })
                .collect();
            json!({
                "messageId": m.id,
                "receiptHandle": r.receipt_handle,
                "body": m.body,
                "attributes": attrs,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_body(),
                "md5OfMessageAttributes": crate::queue::md5_attributes(&m.attrs),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    json!({ "Records": records })
}
