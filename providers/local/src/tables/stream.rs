//! Change triggers (`local:TableSubscription`, `table.on_change(&f)`): what Lambda's event
//! source mapping does for a DynamoDB stream.
//!
//! - While a table has a trigger, every change writes a change record in the same transaction
//!   as the change ([`super`]): `INSERT`, `MODIFY` or `REMOVE`, with keys, new and old images.
//! - One poller per trigger delivers the records in sequence order (so in order per item) in
//!   batches of up to `batch_size`, in DynamoDB Streams' event format, one invocation at a time.
//! - A failed invocation is retried with the same batch (back-off from 1 s to 30 s), up to
//!   `maximum_retry_attempts` (`-1`, the default: until it succeeds, as Lambda does until the
//!   records expire); then the batch is skipped. A result `{"batchItemFailures":
//!   [{"itemIdentifier": SEQUENCE_NUMBER}]}` checkpoints before the first failed record and
//!   retries from it.
//! - The position is saved in the store after each delivered batch, so a restarted (or
//!   `kill -9`ed) daemon resumes after the last delivered batch: delivery is at least once.
//!
//! Triggers are kept in `.skyform/local/table_subscriptions.json` (written atomically).
//! Control routes: `PUT`/`GET`/`DELETE /v1/stacks/{stack}/table-subscriptions/{name}` with a
//! [`SubscriptionSpec`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::Tables;
use crate::aws::AwsContext;
use crate::http::{self, Resp};
use crate::pool::InvokeResult;

fn default_batch() -> u32 {
    100
}
fn default_retries() -> i64 {
    -1
}

/// A change trigger, as the control API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionSpec {
    /// The table's name (or ARN).
    pub table: String,
    /// The function's name (or ARN).
    pub function: String,
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// `-1`: retry until it succeeds.
    #[serde(default = "default_retries")]
    pub maximum_retry_attempts: i64,
}

#[derive(Default)]
struct Counters {
    invocations: AtomicU64,
    failed: AtomicU64,
    delivered: AtomicU64,
}

struct Running {
    spec: SubscriptionSpec,
    counters: Arc<Counters>,
    _stop: watch::Sender<bool>,
}

type Saved = BTreeMap<String, BTreeMap<String, SubscriptionSpec>>;

pub struct TableTriggers {
    path: PathBuf,
    ctx: Arc<AwsContext>,
    tables: Arc<Tables>,
    subs: Mutex<BTreeMap<(String, String), Running>>,
    change: tokio::sync::Mutex<()>,
}

/// The table name in a name or `arn:...:table/NAME[/stream/...]`.
pub fn table_name(r: &str) -> &str {
    match r.find(":table/") {
        Some(i) => r[i + 7..].split('/').next().unwrap_or(r),
        None => r,
    }
}

impl TableTriggers {
    pub fn load(
        path: PathBuf,
        ctx: Arc<AwsContext>,
        tables: Arc<Tables>,
    ) -> std::io::Result<Arc<TableTriggers>> {
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
        let mut subs = BTreeMap::new();
        for (stack, m) in saved {
            for (name, spec) in m {
                let (tx, _) = watch::channel(false);
                subs.insert((stack.clone(), name), Running { spec, counters: Default::default(), _stop: tx });
            }
        }
        Ok(Arc::new(TableTriggers { path, ctx, tables, subs: Mutex::new(subs), change: Default::default() }))
    }

    pub fn spawn_all(self: &Arc<Self>) {
        let mut subs = self.subs.lock().unwrap();
        for ((s, n), r) in subs.iter_mut() {
            r._stop = start(
                self.ctx.clone(),
                self.tables.clone(),
                format!("{s}/{n}"),
                r.spec.clone(),
                r.counters.clone(),
            );
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
        let stream_arn = self.tables.def(table_name(&r.spec.table)).map(|d| d.stream_arn());
        Some(json!({
            "stack": stack,
            "name": name,
            "spec": r.spec,
            "uuid": crate::trigger::uuid_of(stack, &format!("table/{name}")),
            "stream_arn": stream_arn,
            "invocations": r.counters.invocations.load(Ordering::Relaxed),
            "failed_invocations": r.counters.failed.load(Ordering::Relaxed),
            "delivered": r.counters.delivered.load(Ordering::Relaxed),
        }))
    }

    pub fn status(&self) -> Vec<Value> {
        let keys: Vec<(String, String)> = self.subs.lock().unwrap().keys().cloned().collect();
        keys.iter().filter_map(|(s, n)| self.view(s, n)).collect()
    }

    /// Whether some trigger still reads `table`.
    fn table_has_triggers(&self, table: &str) -> bool {
        self.subs.lock().unwrap().values().any(|r| table_name(&r.spec.table) == table)
    }

    pub async fn control(&self, method: &Method, stack: &str, name: &str, body: &Bytes) -> Resp {
        let _guard = self.change.lock().await;
        let key = (stack.to_string(), name.to_string());
        let id = format!("{stack}/{name}");
        match *method {
            Method::PUT => {
                let spec: SubscriptionSpec = match serde_json::from_slice(body) {
                    Ok(s) => s,
                    Err(e) => {
                        return http::message(
                            StatusCode::BAD_REQUEST,
                            &format!("bad table subscription: {e}"),
                        );
                    }
                };
                if !(1..=10_000).contains(&spec.batch_size) {
                    return http::message(StatusCode::BAD_REQUEST, "batch_size must be 1 to 10000");
                }
                if spec.maximum_retry_attempts < -1 || spec.maximum_retry_attempts > 10_000 {
                    return http::message(
                        StatusCode::BAD_REQUEST,
                        "maximum_retry_attempts must be -1 to 10000",
                    );
                }
                let table = table_name(&spec.table).to_string();
                if self.tables.def(&table).is_none() {
                    return http::message(
                        StatusCode::BAD_REQUEST,
                        &format!("table `{table}` does not exist; declare it in the program"),
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
                    if let Err(e) = self.tables.set_stream(&table, true).await {
                        return http::message(StatusCode::INTERNAL_SERVER_ERROR, &e.message);
                    }
                    // A new trigger starts at the stream's end (Lambda's LATEST).
                    if self.tables.cursor(&id).is_none() {
                        let last = self.tables.last_seq().await.unwrap_or(0);
                        let def = self.tables.def(&table).unwrap();
                        if let Err(e) = self.tables.save_cursor(&id, def.id, last, None).await {
                            return http::message(StatusCode::INTERNAL_SERVER_ERROR, &e.message);
                        }
                    }
                    let counters = Arc::new(Counters::default());
                    let stop = start(
                        self.ctx.clone(),
                        self.tables.clone(),
                        id.clone(),
                        spec.clone(),
                        counters.clone(),
                    );
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
                    &format!("no table subscription `{name}` in stack `{stack}`"),
                ),
            },
            Method::DELETE => {
                let removed = self.subs.lock().unwrap().remove(&key);
                if let Err(e) = self.save() {
                    return http::message(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot save: {e}"));
                }
                let Some(r) = removed else {
                    return http::message(
                        StatusCode::NOT_FOUND,
                        &format!("no table subscription `{name}` in stack `{stack}`"),
                    );
                };
                let _ = self.tables.drop_cursor(&id).await;
                let table = table_name(&r.spec.table).to_string();
                if !self.table_has_triggers(&table) && self.tables.def(&table).is_some() {
                    let _ = self.tables.set_stream(&table, false).await;
                }
                http::json(StatusCode::OK, &json!({"deleted": true}))
            }
            _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }
}

fn start(
    ctx: Arc<AwsContext>,
    tables: Arc<Tables>,
    id: String,
    spec: SubscriptionSpec,
    counters: Arc<Counters>,
) -> watch::Sender<bool> {
    let (tx, mut rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = poll(&ctx, &tables, &id, &spec, &counters) => {}
            _ = rx.changed() => {}
        }
    });
    tx
}

async fn poll(ctx: &AwsContext, tables: &Tables, id: &str, spec: &SubscriptionSpec, counters: &Counters) {
    let mut attempts: i64 = 0;
    loop {
        let notified = tables.changed.notified();
        let Some(def) = tables.def(table_name(&spec.table)) else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let cursor = tables.cursor(id).unwrap_or(0);
        let batch = match tables.stream_after(def.id, cursor, spec.batch_size as usize) {
            Ok(b) => b,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
            continue;
        }
        let Some(pool) = ctx.function(&spec.function) else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let last = batch.last().and_then(|r| r["seq"].as_u64()).unwrap_or(cursor);
        let event = super::stream_event(&def, &batch);
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        let trace = crate::trace::Ctx::from_header(batch[0]["trace"].as_str(), format!("table {}", def.name));
        let invoked = crate::trace::scope(trace, pool.invoke(Bytes::from(event.to_string()))).await;
        // The position to save: all delivered, or up to before the first failed record.
        let upto = match invoked.result {
            InvokeResult::Ok(body) => first_failed(&body, &batch).map(|s| s - 1).unwrap_or(last),
            InvokeResult::Error { .. } => cursor,
        };
        if upto == last {
            attempts = 0;
        } else {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            attempts += 1;
            if spec.maximum_retry_attempts >= 0 && attempts > spec.maximum_retry_attempts {
                eprintln!(
                    "skyform local daemon: table trigger {id}: giving up on records up to {} after {attempts} attempts",
                    super::sequence_number(last)
                );
                attempts = 0;
                save(tables, id, def.id, last).await;
                continue;
            }
        }
        if upto > cursor {
            counters.delivered.fetch_add(
                batch.iter().filter(|r| r["seq"].as_u64().unwrap_or(0) <= upto).count() as u64,
                Ordering::Relaxed,
            );
            save(tables, id, def.id, upto).await;
        }
        if upto != last {
            let backoff = Duration::from_millis((1000u64 << attempts.clamp(0, 5) as u32).min(30_000) / 2);
            tokio::time::sleep(backoff).await;
        }
    }
}

async fn save(tables: &Tables, id: &str, table_id: u32, seq: u64) {
    // Records every trigger of this table has delivered can go; the smallest cursor decides
    // (the triggers of other tables have their own ids, so only this table's cursors count).
    let _ = tables.save_cursor(id, table_id, seq, None).await;
    let min = tables.min_cursor(table_id);
    if let Some(m) = min {
        let _ = tables.save_cursor(id, table_id, seq, Some(m + 1)).await;
    }
}

/// The sequence number of the first record a `batchItemFailures` result names; `None` when
/// nothing failed. A malformed list fails the whole batch (the first record).
fn first_failed(body: &[u8], batch: &[Value]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let list = v.get("batchItemFailures")?;
    if list.is_null() {
        return None;
    }
    let first = batch.first().and_then(|r| r["seq"].as_u64()).unwrap_or(1);
    let Some(items) = list.as_array() else { return Some(first) };
    let mut min: Option<u64> = None;
    for it in items {
        let id = it.get("itemIdentifier").and_then(Value::as_str).unwrap_or("");
        let Ok(seq) = id.parse::<u64>() else { return Some(first) };
        if !batch.iter().any(|r| r["seq"].as_u64() == Some(seq)) {
            return Some(first);
        }
        min = Some(min.map_or(seq, |m| m.min(seq)));
    }
    min
}
