//! The daemon's schedules (`local:Schedule`): what is deployed, when each runs next, and the
//! timer that invokes the target function when a schedule is due.
//!
//! Kept apart from the registry in `.skyform/local/schedules.json` (rewritten atomically on
//! every change), because a schedule has run-time state the registry does not: the instant a
//! rate counts from, the pending firing, the last run. Persisting the *pending* firing is what
//! lets a restarted daemon tell that it missed one.
//!
//! **What the function receives** is what EventBridge Scheduler sends for the same component on
//! `aws`, where the SDK sets the target's `Input` to the schedule's payload or `{}`: the payload
//! as JSON, or `{}` when there is none, with Scheduler's context keywords replaced
//! (`<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>`,
//! `<aws.scheduler.execution-id>`, `<aws.scheduler.attempt-number>`). The invocation is
//! asynchronous (Scheduler calls Lambda with `InvocationType=Event`): the timer does not wait
//! for the function, one run does not delay the next, and a failure is retried as Lambda
//! retries an asynchronous invocation ([`RETRY_DELAYS`]).
//!
//! **Missed runs.** Scheduler does not back-fill, but it keeps retrying a delivery it could not
//! make for up to 24 hours (its default maximum event age). The closest local equivalent: when
//! the daemon starts and the pending firing of a schedule passed while it was down, it fires
//! once, late, if that was less than 24 hours ago; older or further missed firings are dropped.
//! Then the schedule goes on from now. An `at()` schedule therefore still runs once if the
//! daemon was down at its time (within 24 hours).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

use crate::gateway::Functions;
use crate::http::{self, Resp};
use crate::layout::Layout;
use crate::pool::{InvokeResult, Invoked};
use crate::schedule::{Schedule, format_utc};

pub const FORMAT_VERSION: u32 = 1;

/// How late a missed firing may still be delivered after a restart (Scheduler's default
/// `MaximumEventAgeInSeconds`).
pub const MAX_EVENT_AGE_MS: i64 = 24 * 3600 * 1000;

/// The timer wakes at least this often, so that a change of the wall clock (a suspended
/// laptop, an NTP step) delays a firing by at most this much.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Lambda retries a failed asynchronous invocation twice (about 1 and 2 minutes later); the
/// local cloud keeps the count and shortens the waits, as it does for SNS deliveries.
pub const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

fn utc() -> String {
    "UTC".into()
}

fn yes() -> bool {
    true
}

/// A schedule as deployed: the control API takes this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// `rate(…)`, `cron(…)` or `at(…)`.
    pub expression: String,
    /// IANA time zone of cron and at expressions.
    #[serde(default = "utc")]
    pub timezone: String,
    /// The target function, in the same stack.
    pub function: String,
    /// The event (`null`: `{}`).
    #[serde(default)]
    pub payload: Value,
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl ScheduleSpec {
    /// The parsed expression, its rate counted from `start_ms`.
    pub fn schedule(&self, start_ms: i64) -> Result<Schedule, String> {
        let s = Schedule::parse(&self.expression, &self.timezone).map_err(|e| e.to_string())?;
        Ok(match Timestamp::from_millisecond(start_ms) {
            Ok(t) => s.starting_at(t),
            Err(_) => s,
        })
    }
}

/// Why a payload cannot be sent: Lambda takes JSON events, and Scheduler passes a string
/// payload through as the event's text.
pub fn payload_problem(payload: &Value) -> Option<String> {
    match payload {
        Value::String(s) if serde_json::from_str::<serde::de::IgnoredAny>(s).is_err() => Some(format!(
            "the payload {s:?} is a string that is not JSON; Lambda takes JSON events: pass an object \
             such as {{\"kind\": \"daily\"}}"
        )),
        _ => None,
    }
}

/// One invocation, as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    /// The instant it was due (epoch ms), as `<aws.scheduler.scheduled-time>` says.
    pub scheduled_ms: i64,
    pub started_ms: i64,
    /// `schedule` (on time), `late` (missed while the daemon was down) or `manual` (`run`).
    pub trigger: String,
    #[serde(default)]
    pub request_id: Option<String>,
    /// `None` while running or when it succeeded; the error type otherwise.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub finished: bool,
    /// Invocations so far: up to 1 + [`RETRY_DELAYS`] on a timer run.
    #[serde(default)]
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    spec: ScheduleSpec,
    /// When this expression was deployed (epoch ms): a rate counts from it.
    start_ms: i64,
    /// The pending firing (epoch ms); `None` when disabled or when nothing is left to run.
    next_ms: Option<i64>,
    #[serde(default)]
    runs: u64,
    #[serde(default)]
    last_run: Option<LastRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct File {
    version: u32,
    /// By stack, then name.
    #[serde(default)]
    stacks: BTreeMap<String, BTreeMap<String, Record>>,
}

impl Default for File {
    fn default() -> Self {
        File { version: FORMAT_VERSION, stacks: BTreeMap::new() }
    }
}

pub fn arn(name: &str) -> String {
    format!("arn:aws:scheduler:us-east-1:000000000000:schedule/default/{name}")
}

fn now_ms() -> i64 {
    crate::logs::now_ms() as i64
}

fn rfc3339(ms: Option<i64>) -> Value {
    match ms.and_then(|m| Timestamp::from_millisecond(m).ok()) {
        Some(t) => json!(format_utc(t)),
        None => Value::Null,
    }
}

/// The firing of `spec` after `after_ms`, or `None` (disabled, or nothing left).
fn next_ms(spec: &ScheduleSpec, start_ms: i64, after_ms: i64) -> Option<i64> {
    if !spec.enabled {
        return None;
    }
    let s = spec.schedule(start_ms).ok()?;
    let after = Timestamp::from_millisecond(after_ms).ok()?;
    s.next_after(after).map(|t| t.as_millisecond())
}

/// The event text for one run.
fn event(spec: &ScheduleSpec, name: &str, scheduled_ms: i64, execution_id: &str) -> Bytes {
    let text = match &spec.payload {
        Value::Null => "{}".to_string(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let scheduled = Timestamp::from_millisecond(scheduled_ms).map(format_utc).unwrap_or_default();
    Bytes::from(
        text.replace("<aws.scheduler.schedule-arn>", &arn(name))
            .replace("<aws.scheduler.scheduled-time>", &scheduled)
            .replace("<aws.scheduler.execution-id>", execution_id)
            .replace("<aws.scheduler.attempt-number>", "1"),
    )
}

/// The daemon's schedules and their timer.
pub struct Schedules {
    path: PathBuf,
    file: Mutex<File>,
    wake: Notify,
    functions: Arc<dyn Functions>,
}

impl Schedules {
    /// Loads `schedules.json` (absent: none).
    pub fn load(layout: &Layout, functions: Arc<dyn Functions>) -> std::io::Result<Arc<Schedules>> {
        let path = layout.root.join("schedules.json");
        let file = match std::fs::read(&path) {
            Ok(b) => {
                let f: File = serde_json::from_slice(&b).map_err(|e| {
                    std::io::Error::other(format!(
                        "{} is not a valid schedules file ({e}); move it away and run `skyform up` again",
                        path.display()
                    ))
                })?;
                if f.version > FORMAT_VERSION {
                    return Err(std::io::Error::other(format!(
                        "{} has format version {}, this skyform reads up to {FORMAT_VERSION}; upgrade skyform",
                        path.display(),
                        f.version
                    )));
                }
                f
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(e),
        };
        Ok(Arc::new(Schedules { path, file: Mutex::new(file), wake: Notify::new(), functions }))
    }

    fn save(&self, file: &File) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(file).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        crate::registry::write_atomic(&self.path, &bytes)
    }

    /// [`Schedules::save`] for the timer: a failure goes to the daemon's log, and the next
    /// change writes the whole file again.
    fn save_or_log(&self, file: &File) {
        if let Err(e) = self.save(file) {
            eprintln!("skyform local daemon: cannot save {}: {e}", self.path.display());
        }
    }

    /// [`Schedules::save`] for a control API answer: the error answer when it failed.
    fn save_or_500(&self, file: &File) -> Option<Resp> {
        let e = self.save(file).err()?;
        Some(http::message(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot save the schedules: {e}")))
    }

    /// Starts the timer: first the runs missed while the daemon was down, then every schedule
    /// as it comes due, until the runtime stops.
    pub fn spawn(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            this.catch_up().await;
            this.run_timer().await;
        });
    }

    async fn catch_up(self: &Arc<Self>) {
        let now = now_ms();
        let mut due = Vec::new();
        let mut file = self.file.lock().await;
        for (stack, records) in file.stacks.iter_mut() {
            for (name, rec) in records.iter_mut() {
                let Some(pending) = rec.next_ms.filter(|n| *n <= now) else { continue };
                if rec.spec.enabled && now - pending <= MAX_EVENT_AGE_MS {
                    due.push((stack.clone(), name.clone(), rec.spec.clone(), pending));
                } else {
                    eprintln!(
                        "skyform local daemon: schedule {stack}/{name} missed its run at {} (more than 24 hours ago); not run",
                        rfc3339(Some(pending))
                    );
                }
                rec.next_ms = next_ms(&rec.spec, rec.start_ms, now);
            }
        }
        if !due.is_empty() {
            self.save_or_log(&file);
        }
        drop(file);
        for (stack, name, spec, scheduled) in due {
            eprintln!(
                "skyform local daemon: schedule {stack}/{name} missed its run at {} while the daemon was down; running it now",
                rfc3339(Some(scheduled))
            );
            let this = self.clone();
            tokio::spawn(async move { this.fire(&stack, &name, &spec, scheduled, "late").await });
        }
    }

    async fn run_timer(self: &Arc<Self>) {
        loop {
            let now = now_ms();
            let mut due = Vec::new();
            let mut earliest: Option<i64> = None;
            {
                let mut file = self.file.lock().await;
                for (stack, records) in file.stacks.iter_mut() {
                    for (name, rec) in records.iter_mut() {
                        if let Some(n) = rec.next_ms
                            && n <= now
                        {
                            due.push((stack.clone(), name.clone(), rec.spec.clone(), n));
                            // From now, not from `n`: a late timer never fires a burst.
                            rec.next_ms = next_ms(&rec.spec, rec.start_ms, now);
                        }
                        if let Some(n) = rec.next_ms {
                            earliest = Some(earliest.map_or(n, |e| e.min(n)));
                        }
                    }
                }
                if !due.is_empty() {
                    self.save_or_log(&file);
                }
            }
            for (stack, name, spec, scheduled) in due {
                let this = self.clone();
                tokio::spawn(async move { this.fire(&stack, &name, &spec, scheduled, "schedule").await });
            }
            let wait = earliest
                .map(|e| Duration::from_millis((e - now).max(0) as u64))
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Invokes the schedule's function and records the run: once for a manual run (which
    /// answers the result, like a synchronous invoke); on a timer run, a failure is retried
    /// as Lambda retries an asynchronous invocation ([`RETRY_DELAYS`]), with the same event.
    /// `None` when the function is not deployed.
    async fn fire(
        &self,
        stack: &str,
        name: &str,
        spec: &ScheduleSpec,
        scheduled_ms: i64,
        trigger: &str,
    ) -> Option<Invoked> {
        let retries = if trigger == "manual" { 0 } else { RETRY_DELAYS.len() };
        let execution_id = format!("{:016x}", crate::pool::rand_u64());
        let started_ms = now_ms();
        let mut last = LastRun {
            scheduled_ms,
            started_ms,
            trigger: trigger.to_string(),
            request_id: None,
            error: None,
            finished: false,
            attempts: 0,
        };
        let Some(pool) = self.functions.pool(stack, &spec.function) else {
            eprintln!(
                "skyform local daemon: schedule {stack}/{name}: function `{}` is not deployed; not run",
                spec.function
            );
            last.error = Some("ResourceNotFoundException".into());
            last.finished = true;
            self.record(stack, name, last, true).await;
            return None;
        };
        self.record(stack, name, last.clone(), true).await;
        let payload = event(spec, name, scheduled_ms, &execution_id);
        let mut attempt = 0;
        loop {
            let trace = crate::trace::Ctx::start(format!("schedule {name}"));
            let invoked = crate::trace::scope(trace, pool.invoke(payload.clone())).await;
            attempt += 1;
            last.attempts = attempt as u32;
            last.request_id = Some(invoked.request_id.to_string());
            let InvokeResult::Error { body, .. } = &invoked.result else {
                last.error = None;
                last.finished = true;
                self.record(stack, name, last, false).await;
                return Some(invoked);
            };
            let kind = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["errorType"].as_str().map(str::to_string))
                .unwrap_or_else(|| "Unhandled".into());
            last.error = Some(kind.clone());
            let retry = (attempt <= retries).then(|| RETRY_DELAYS[attempt - 1]);
            eprintln!(
                "skyform local daemon: schedule {stack}/{name}: function `{}` failed: {kind} (request id {}){}",
                spec.function,
                invoked.request_id,
                match retry {
                    Some(d) => format!("; retrying in {} s", d.as_secs()),
                    None if retries > 0 => format!("; gave up after {attempt} attempts"),
                    None => String::new(),
                }
            );
            match retry {
                Some(delay) => {
                    self.record(stack, name, last.clone(), false).await;
                    tokio::time::sleep(delay).await;
                }
                None => {
                    last.finished = true;
                    self.record(stack, name, last, false).await;
                    return Some(invoked);
                }
            }
        }
    }

    /// Stores `last` as the schedule's last run (when it still exists); `new_run` counts it.
    async fn record(&self, stack: &str, name: &str, last: LastRun, new_run: bool) {
        let mut file = self.file.lock().await;
        let Some(rec) = file.stacks.get_mut(stack).and_then(|r| r.get_mut(name)) else { return };
        // A later run may have started meanwhile: keep the newest.
        if rec.last_run.as_ref().is_some_and(|l| l.started_ms > last.started_ms) {
            return;
        }
        if new_run {
            rec.runs += 1;
        }
        rec.last_run = Some(last);
        self.save_or_log(&file);
    }

    /// The control API under `/v1/stacks/{stack}/schedules/{name}[/{action}]`.
    pub async fn control(
        &self,
        method: &Method,
        stack: &str,
        name: &str,
        action: Option<&str>,
        body: &Bytes,
    ) -> Resp {
        match (method, action) {
            (&Method::PUT, None) => self.put(stack, name, body).await,
            (&Method::GET, None) => {
                match self.file.lock().await.stacks.get(stack).and_then(|r| r.get(name)) {
                    Some(rec) => http::json(StatusCode::OK, &view(stack, name, rec)),
                    None => not_found(stack, name),
                }
            }
            (&Method::DELETE, None) => {
                let mut file = self.file.lock().await;
                let Some(old) = file.stacks.get_mut(stack).and_then(|r| r.remove(name)) else {
                    return not_found(stack, name);
                };
                if file.stacks.get(stack).is_some_and(BTreeMap::is_empty) {
                    file.stacks.remove(stack);
                }
                if let Some(r) = self.save_or_500(&file) {
                    // Not deleted: keep it, as the file still has it.
                    file.stacks.entry(stack.to_string()).or_default().insert(name.to_string(), old);
                    return r;
                }
                self.wake.notify_one();
                http::json(StatusCode::OK, &json!({"deleted": true}))
            }
            (&Method::POST, Some("run")) => self.run_now(stack, name).await,
            _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    async fn put(&self, stack: &str, name: &str, body: &Bytes) -> Resp {
        let spec: ScheduleSpec = match serde_json::from_slice(body) {
            Ok(s) => s,
            Err(e) => return bad_request(format!("bad schedule spec: {e}")),
        };
        if let Err(e) = spec.schedule(0) {
            return bad_request(e);
        }
        if let Some(p) = payload_problem(&spec.payload) {
            return bad_request(p);
        }
        if self.functions.pool(stack, &spec.function).is_none() {
            return bad_request(format!(
                "schedule `{name}` targets function `{}`, which is not deployed in stack `{stack}`; \
                 declare the function in the program (and pass it to the schedule)",
                spec.function
            ));
        }
        let now = now_ms();
        let mut file = self.file.lock().await;
        let records = file.stacks.entry(stack.to_string()).or_default();
        let rec = match records.get(name) {
            // Same expression: the rate keeps counting from when it was deployed.
            Some(old) if old.spec.expression == spec.expression && old.spec.timezone == spec.timezone => {
                Record { next_ms: next_ms(&spec, old.start_ms, now), spec, ..old.clone() }
            }
            // New, or a new expression: a rate starts now, with a first run at once, as
            // Scheduler starts a rate schedule that has no start date.
            old => Record {
                next_ms: next_ms(&spec, now, now - 1),
                spec,
                start_ms: now,
                runs: old.map_or(0, |o| o.runs),
                last_run: old.and_then(|o| o.last_run.clone()),
            },
        };
        let out = view(stack, name, &rec);
        let previous = records.insert(name.to_string(), rec);
        if let Some(r) = self.save_or_500(&file) {
            // Not deployed: the daemon keeps running what the file has.
            let records = file.stacks.entry(stack.to_string()).or_default();
            match previous {
                Some(old) => records.insert(name.to_string(), old),
                None => records.remove(name),
            };
            return r;
        }
        self.wake.notify_one();
        http::json(StatusCode::OK, &out)
    }

    /// Runs a schedule now, whatever its state, and answers the function's result as the
    /// invoke route does. Its next run does not move.
    async fn run_now(&self, stack: &str, name: &str) -> Resp {
        let spec = match self.file.lock().await.stacks.get(stack).and_then(|r| r.get(name)) {
            Some(rec) => rec.spec.clone(),
            None => return not_found(stack, name),
        };
        let Some(invoked) = self.fire(stack, name, &spec, now_ms(), "manual").await else {
            return http::message(
                StatusCode::NOT_FOUND,
                &format!(
                    "schedule `{name}` targets function `{}`, which is not deployed in stack `{stack}`; run `skyform up`",
                    spec.function
                ),
            );
        };
        let (payload, error) = match invoked.result {
            InvokeResult::Ok(b) => (b, None),
            InvokeResult::Error { body, .. } => (body, Some("Unhandled")),
        };
        let mut r = http::response(StatusCode::OK, "application/json", payload);
        if let Ok(v) = invoked.request_id.parse() {
            r.headers_mut().insert("x-amzn-requestid", v);
        }
        if let Some(e) = error {
            r.headers_mut().insert("x-amz-function-error", hyper::header::HeaderValue::from_static(e));
        }
        r
    }

    /// Every schedule, for `GET /v1/status`.
    pub async fn status(&self) -> Vec<Value> {
        let file = self.file.lock().await;
        let mut out = Vec::new();
        for (stack, records) in &file.stacks {
            for (name, rec) in records {
                out.push(view(stack, name, rec));
            }
        }
        out
    }
}

fn view(stack: &str, name: &str, rec: &Record) -> Value {
    json!({
        "stack": stack,
        "name": name,
        "arn": arn(name),
        "expression": rec.spec.expression,
        "timezone": rec.spec.timezone,
        "function": rec.spec.function,
        "enabled": rec.spec.enabled,
        "next_run": rfc3339(rec.next_ms),
        "runs": rec.runs,
        "last_run": rec.last_run.as_ref().map(|l| json!({
            "scheduled_time": rfc3339(Some(l.scheduled_ms)),
            "started": rfc3339(Some(l.started_ms)),
            "trigger": l.trigger,
            "request_id": l.request_id,
            "error": l.error,
            "finished": l.finished,
            "attempts": l.attempts,
        })),
        "spec": rec.spec,
    })
}

fn bad_request(msg: impl AsRef<str>) -> Resp {
    http::message(StatusCode::BAD_REQUEST, msg.as_ref())
}

fn not_found(stack: &str, name: &str) -> Resp {
    http::message(StatusCode::NOT_FOUND, &format!("no schedule `{name}` in stack `{stack}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(payload: Value) -> ScheduleSpec {
        ScheduleSpec {
            expression: "rate(5 minutes)".into(),
            timezone: "UTC".into(),
            function: "f".into(),
            payload,
            enabled: true,
        }
    }

    #[test]
    fn the_event_is_the_payload_or_an_empty_object() {
        assert_eq!(event(&spec(Value::Null), "s", 0, "x"), Bytes::from_static(b"{}"));
        assert_eq!(event(&spec(json!({"kind": "daily"})), "s", 0, "x"), Bytes::from(r#"{"kind":"daily"}"#));
        // A string is the event's text, as Scheduler's `Input`.
        assert_eq!(event(&spec(json!("[1,2]")), "s", 0, "x"), Bytes::from("[1,2]"));
    }

    #[test]
    fn context_keywords_are_replaced() {
        let p = json!({
            "at": "<aws.scheduler.scheduled-time>",
            "arn": "<aws.scheduler.schedule-arn>",
            "id": "<aws.scheduler.execution-id>",
            "n": "<aws.scheduler.attempt-number>",
        });
        let e: Value =
            serde_json::from_slice(&event(&spec(p), "nightly", 1_900_000_000_000, "abc123")).unwrap();
        assert_eq!(e["at"], "2030-03-17T17:46:40Z");
        assert_eq!(e["arn"], "arn:aws:scheduler:us-east-1:000000000000:schedule/default/nightly");
        assert_eq!(e["id"], "abc123");
        assert_eq!(e["n"], "1");
    }

    #[test]
    fn string_payloads_must_be_json() {
        assert!(payload_problem(&json!("hello")).unwrap().contains("is a string that is not JSON"));
        assert!(payload_problem(&json!("{\"a\":1}")).is_none());
        assert!(payload_problem(&json!({"a": 1})).is_none());
        assert!(payload_problem(&Value::Null).is_none());
    }

    #[test]
    fn a_disabled_schedule_has_no_next_run() {
        let mut s = spec(Value::Null);
        assert_eq!(next_ms(&s, 0, 0), Some(300_000));
        s.enabled = false;
        assert_eq!(next_ms(&s, 0, 0), None);
    }
}
