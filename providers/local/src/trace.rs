//! Traces: one id carried through every event the local cloud delivers, and the daemon's
//! recent history of invocations and steps, which the console shows.
//!
//! Serverless apps are distributed systems: a request enqueues a message, a worker takes it,
//! writes a table, publishes to a topic. AWS ties those steps together with X-Ray's trace
//! header, `Root=1-<time>-<24 hex>;Parent=<16 hex>;Sampled=0`, which Lambda hands to a function
//! as `_X_AMZN_TRACE_ID` (Runtime API header `Lambda-Runtime-Trace-Id`), which the AWS SDKs send
//! back as the `X-Amzn-Trace-Id` request header on every call (botocore's recursion-detection
//! handler, the JS SDK's middleware), and which SQS keeps on a message as its `AWSTraceHeader`
//! system attribute. The local cloud does the same:
//!
//! - the gateway takes a request's `X-Amzn-Trace-Id` or starts a trace; the AWS endpoint takes
//!   the header a function's SDK sent;
//! - the step that handles the event runs inside [`scope`] (a tokio task-local [`Ctx`]), so what
//!   it causes — an invocation, a message sent, a topic's fan-out — sees the trace with
//!   [`current`];
//! - [`crate::pool::Pool::invoke`] records each invocation ([`begin_invocation`]), and the
//!   Runtime API gives the process the header with [`runtime_header`];
//! - a queue message keeps the header, and its trigger invokes the worker inside its scope.
//!
//! What is recorded lives in memory, in the [`Hub`] (one per daemon process: a global, so that
//! the gateway, the pools and the AWS endpoint record without a handle threaded through every
//! constructor). It is bounded (the last [`MAX_SPANS`] steps and [`MAX_EVENTS`] live events) and
//! lost when the daemon stops: a debugging aid, not an audit log. Function logs stay in their
//! files ([`crate::logs`]); a span names the request id that finds them.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Notify;

/// How many steps (spans) the hub keeps.
pub const MAX_SPANS: usize = 2000;
/// How many live events the hub keeps for the console's event stream.
pub const MAX_EVENTS: usize = 2000;
/// The longest event recorded with an invocation (the console shows it; longer ones are cut):
/// with [`MAX_SPANS`], the hub holds at most about 16 MiB of events.
const MAX_EVENT_BYTES: usize = 8 * 1024;

/// The trace a piece of work belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Ctx {
    /// X-Ray's root id, `1-<8 hex seconds>-<24 hex>`.
    pub root: String,
    /// The span that caused this work, if known.
    pub parent: Option<String>,
    /// What delivered the work (`http POST /jobs`, `sqs jobs`, `sns done`, ...).
    pub trigger: String,
}

impl Ctx {
    /// A new trace started by `trigger`.
    pub fn start(trigger: impl Into<String>) -> Ctx {
        Ctx { root: new_root(), parent: None, trigger: trigger.into() }
    }

    /// The trace of an `X-Amzn-Trace-Id`/`AWSTraceHeader` value, or a new one when it has no
    /// well-formed root.
    pub fn from_header(header: Option<&str>, trigger: impl Into<String>) -> Ctx {
        let trigger = trigger.into();
        match header.and_then(parse_header) {
            Some((root, parent)) => Ctx { root, parent, trigger },
            None => Ctx::start(trigger),
        }
    }

    /// The context of work caused by the step `span` of this trace.
    pub fn child(&self, span: &str) -> Ctx {
        Ctx { root: self.root.clone(), parent: Some(span.to_string()), trigger: self.trigger.clone() }
    }

    /// This trace's header, with `span` as the parent.
    pub fn header(&self, span: &str) -> String {
        format!("Root={};Parent={span};Sampled=0", self.root)
    }
}

tokio::task_local! {
    static CURRENT: Ctx;
}

/// Runs `f` as part of the trace `ctx`.
pub async fn scope<F: Future>(ctx: Ctx, f: F) -> F::Output {
    CURRENT.scope(ctx, f).await
}

/// `f` in the current trace, if any: for work spawned onto another task (a task-local does
/// not follow `tokio::spawn`).
pub fn carry<F: Future>(f: F) -> impl Future<Output = F::Output> {
    let ctx = current();
    async move {
        match ctx {
            Some(c) => CURRENT.scope(c, f).await,
            None => f.await,
        }
    }
}

/// The trace of the work running now, if any.
pub fn current() -> Option<Ctx> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The header that work caused now carries (a message sent, a request forwarded): the current
/// trace, its parent the current span.
pub fn current_header() -> Option<String> {
    current().map(|c| {
        let parent = c.parent.clone().unwrap_or_else(new_span_id);
        c.header(&parent)
    })
}

thread_local! {
    static SYNC_HEADER: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (synchronous work on another thread, such as the table writer's) with `header` as
/// its trace header, which [`sync_header`] gives back.
pub fn with_sync_header<R>(header: Option<String>, f: impl FnOnce() -> R) -> R {
    let old = SYNC_HEADER.with(|h| h.replace(header));
    let r = f();
    SYNC_HEADER.with(|h| *h.borrow_mut() = old);
    r
}

/// The header set by [`with_sync_header`] on this thread.
pub fn sync_header() -> Option<String> {
    SYNC_HEADER.with(|h| h.borrow().clone())
}

/// A new X-Ray root id.
pub fn new_root() -> String {
    let secs = crate::logs::now_ms() / 1000;
    let a = crate::pool::rand_u64();
    let b = crate::pool::rand_u64();
    format!("1-{:08x}-{:016x}{:08x}", secs as u32, a, b as u32)
}

/// A new span id (16 hex).
pub fn new_span_id() -> String {
    format!("{:016x}", crate::pool::rand_u64())
}

/// `(root, parent)` of a trace header; `None` without a well-formed `Root`.
pub fn parse_header(h: &str) -> Option<(String, Option<String>)> {
    let mut root = None;
    let mut parent = None;
    for part in h.split(';') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "Root" => root = Some(v.trim().to_string()),
            "Parent" => parent = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let root = root?;
    let ok = root.len() == 35
        && root.starts_with("1-")
        && root.as_bytes()[10] == b'-'
        && root.chars().enumerate().all(|(i, c)| i == 1 || i == 10 || i == 0 || c.is_ascii_hexdigit());
    ok.then_some((root, parent.filter(|p| p.len() <= 64 && p.chars().all(|c| c.is_ascii_alphanumeric()))))
}

/// The recorded history: steps (spans) and live events.
pub struct Hub {
    inner: Mutex<Inner>,
    /// Woken whenever an event is published.
    pub changed: Notify,
}

/// A finished step, as recorded: typed, so that recording one costs a few allocations (the
/// gateway and the AWS endpoint record one per request); it becomes JSON only when the console
/// asks (`{"trace", "span", "parent", "kind", "name", "trigger", "start_ms", "duration_ms",
/// "status"}`, plus `stack`, `function`, `request_id`, `cold` and `event` for an invocation, and
/// `detail` for another step).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Span {
    pub trace: String,
    pub span: String,
    pub parent: Option<String>,
    pub kind: String,
    pub name: String,
    pub trigger: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub start_ms: u64,
    pub duration_ms: f64,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

impl Span {
    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct Inner {
    next_event: u64,
    /// Live events; a finished step is shared with `spans` (no copy on the invocation path).
    events: VecDeque<(u64, Event)>,
    spans: VecDeque<Arc<Span>>,
    /// The trace header of each invocation in flight, by request id (the Runtime API hands it
    /// to the process).
    in_flight: HashMap<String, String>,
}

#[derive(Clone)]
enum Event {
    Plain(Value),
    Span(Arc<Span>),
    /// An invocation started (typed for the same reason as [`Span`]).
    InvocationStart {
        stack: String,
        function: String,
        request_id: String,
        trace: String,
        trigger: String,
        start_ms: u64,
    },
}

impl Event {
    fn to_json(&self) -> Value {
        match self {
            Event::Plain(v) => v.clone(),
            Event::Span(s) => json!({"kind": "span", "span": s.to_json()}),
            Event::InvocationStart { stack, function, request_id, trace, trigger, start_ms } => json!({
                "kind": "invocation-start", "stack": stack, "function": function, "request_id": request_id,
                "trace": trace, "trigger": trigger, "start_ms": start_ms,
            }),
        }
    }
}

/// The daemon's hub.
pub fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| Hub { inner: Mutex::new(Inner::default()), changed: Notify::new() })
}

impl Hub {
    /// Publishes a live event (`{"kind": ..., ...}`) to the console's stream.
    pub fn publish(&self, event: Value) {
        self.push(Event::Plain(event));
    }

    fn push(&self, event: Event) {
        {
            let mut i = self.inner.lock().unwrap();
            i.next_event += 1;
            let id = i.next_event;
            i.events.push_back((id, event));
            while i.events.len() > MAX_EVENTS {
                i.events.pop_front();
            }
        }
        self.changed.notify_waiters();
    }

    /// The events after `after`, and the id of the last one (or `after` when none).
    pub fn events_after(&self, after: u64) -> (Vec<(u64, Value)>, u64) {
        let i = self.inner.lock().unwrap();
        let out: Vec<(u64, Value)> =
            i.events.iter().filter(|(id, _)| *id > after).map(|(id, e)| (*id, e.to_json())).collect();
        let last = out.last().map(|(id, _)| *id).unwrap_or(after.min(i.next_event));
        (out, last)
    }

    /// The id of the newest event.
    pub fn last_event(&self) -> u64 {
        self.inner.lock().unwrap().next_event
    }

    /// Waits until an event after `after` exists, or `timeout`.
    pub async fn wait_after(&self, after: u64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.last_event() > after {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Records a finished step and publishes it.
    pub fn record(&self, span: Span) {
        let span = Arc::new(span);
        {
            let mut i = self.inner.lock().unwrap();
            i.spans.push_back(span.clone());
            while i.spans.len() > MAX_SPANS {
                i.spans.pop_front();
            }
        }
        self.push(Event::Span(span));
    }

    /// Recorded steps matching `f`, newest first, at most `max`, as JSON.
    pub fn spans(&self, max: usize, f: impl Fn(&Span) -> bool) -> Vec<Value> {
        let picked: Vec<Arc<Span>> = {
            let i = self.inner.lock().unwrap();
            i.spans.iter().rev().filter(|s| f(s)).take(max).cloned().collect()
        };
        picked.iter().map(|s| s.to_json()).collect()
    }

    /// The most recent traces: `{trace, start_ms, name, steps, error}`, newest first.
    pub fn traces(&self, max: usize) -> Vec<Value> {
        let i = self.inner.lock().unwrap();
        let mut by: HashMap<&str, (u64, u64, String, usize, bool)> = HashMap::new();
        for s in &i.spans {
            let start = s.start_ms;
            let e = by.entry(&s.trace).or_insert((start, start, s.name.clone(), 0, false));
            if start < e.0 {
                e.0 = start;
                e.2 = s.name.clone();
            }
            e.1 = e.1.max(start + s.duration_ms as u64);
            e.3 += 1;
            e.4 |= s.status != "ok";
        }
        let mut v: Vec<Value> = by
            .into_iter()
            .map(|(t, (start, end, name, steps, error))| {
                json!({"trace": t, "start_ms": start, "duration_ms": end - start, "name": name, "steps": steps, "error": error})
            })
            .collect();
        v.sort_by_key(|t| std::cmp::Reverse(t["start_ms"].as_u64().unwrap_or(0)));
        v.truncate(max);
        v
    }
}

/// Records a step that is not an invocation (an HTTP request, an AWS API call) in the trace
/// `ctx`: `kind` (`http`, `aws`, ...), what it was, when it started, how it ended.
pub fn record_step(
    ctx: &Ctx,
    span_id: &str,
    kind: &str,
    name: &str,
    started: (u64, Instant),
    status: &str,
    detail: Value,
) {
    hub().record(Span {
        trace: ctx.root.clone(),
        span: span_id.to_string(),
        parent: ctx.parent.clone(),
        kind: kind.to_string(),
        name: name.to_string(),
        trigger: ctx.trigger.clone(),
        stack: None,
        function: None,
        request_id: None,
        start_ms: started.0,
        duration_ms: started.1.elapsed().as_secs_f64() * 1000.0,
        status: status.to_string(),
        cold: None,
        event: None,
        detail: Some(detail),
    });
}

/// An invocation being recorded: made by [`begin_invocation`], ended by [`Invocation::finish`].
pub struct Invocation {
    ctx: Ctx,
    span: String,
    stack: String,
    function: String,
    request_id: String,
    event: String,
    start_ms: u64,
    started: Instant,
}

/// Starts recording an invocation of `stack/function` with `payload`, in the current trace (or
/// a new one, triggered by a direct invoke). Until it finishes, [`runtime_header`] gives its
/// trace header.
pub fn begin_invocation(stack: &str, function: &str, request_id: &str, payload: &[u8]) -> Invocation {
    let ctx = current().unwrap_or_else(|| Ctx::start("invoke"));
    let span: String = request_id.chars().filter(char::is_ascii_hexdigit).take(16).collect();
    let span = if span.len() == 16 { span } else { new_span_id() };
    let kept = &payload[..payload.len().min(MAX_EVENT_BYTES)];
    let mut event = match std::str::from_utf8(kept) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(kept).into_owned(),
    };
    if payload.len() > MAX_EVENT_BYTES {
        event.push('…');
    }
    let h = hub();
    h.inner.lock().unwrap().in_flight.insert(request_id.to_string(), ctx.header(&span));
    let start_ms = crate::logs::now_ms();
    h.push(Event::InvocationStart {
        stack: stack.to_string(),
        function: function.to_string(),
        request_id: request_id.to_string(),
        trace: ctx.root.clone(),
        trigger: ctx.trigger.clone(),
        start_ms,
    });
    Invocation {
        ctx,
        span,
        stack: stack.to_string(),
        function: function.to_string(),
        request_id: request_id.to_string(),
        event,
        start_ms,
        started: Instant::now(),
    }
}

impl Invocation {
    /// Records the end: `status` is `ok`, `error` or `timeout`; `cold` when a new process
    /// served it.
    pub fn finish(self, status: &str, cold: bool) {
        let h = hub();
        h.inner.lock().unwrap().in_flight.remove(&self.request_id);
        h.record(Span {
            name: format!("{} {}", self.function, self.ctx.trigger),
            trace: self.ctx.root,
            span: self.span,
            parent: self.ctx.parent,
            kind: "invoke".into(),
            trigger: self.ctx.trigger,
            stack: Some(self.stack),
            function: Some(self.function),
            request_id: Some(self.request_id),
            start_ms: self.start_ms,
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            status: status.to_string(),
            cold: Some(cold),
            event: Some(self.event),
            detail: None,
        });
    }
}

/// The trace header of the invocation `request_id` while it is in flight.
pub fn runtime_header(request_id: &str) -> Option<String> {
    hub().inner.lock().unwrap().in_flight.get(request_id).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let root = new_root();
        assert_eq!(root.len(), 35, "{root}");
        let ctx = Ctx { root: root.clone(), parent: None, trigger: "t".into() };
        let h = ctx.header("0123456789abcdef");
        assert_eq!(parse_header(&h), Some((root.clone(), Some("0123456789abcdef".into()))));
        assert_eq!(Ctx::from_header(Some(&h), "x").root, root);
        // Garbage starts a new trace rather than carrying it.
        assert_eq!(parse_header("Root=nope"), None);
        assert_eq!(parse_header("Root=1-zzzzzzzz-0123456789abcdef01234567"), None);
        assert_ne!(Ctx::from_header(Some("junk"), "x").root, root);
    }

    #[tokio::test]
    async fn scope_and_invocations() {
        assert_eq!(current(), None);
        let ctx = Ctx::start("http GET /");
        let root = ctx.root.clone();
        let inv =
            scope(ctx, async { begin_invocation("dev", "f", "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", b"{}") })
                .await;
        let header = runtime_header("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee").unwrap();
        assert!(header.starts_with(&format!("Root={root};Parent=aaaaaaaabbbb4ccc")), "{header}");
        inv.finish("ok", true);
        assert_eq!(runtime_header("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"), None);
        let spans = hub().spans(10, |s| s.trace == root);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0]["trigger"], "http GET /");
        assert_eq!(spans[0]["cold"], true);
        assert!(hub().traces(100).iter().any(|t| t["trace"] == root.as_str()));
    }
}
