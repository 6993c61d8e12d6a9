//! The local console: a web page served by the daemon on its control port (127.0.0.1), that
//! shows the whole app live — the stack's resources, function invocations and their logs,
//! queues, buckets, tables, schedules and traces — and acts on it.
//!
//! **Who may use it.** Whoever holds the control API's token: `skyform local console` (or
//! `skyform dev`) asks the daemon for a *login link* (`POST /v1/console/login`, bearer token):
//! `http://127.0.0.1:PORT/console/login?code=CODE`, a random code that works once, within
//! [`LOGIN_TTL`]. Opening it sets the session cookie (a random secret of this daemon, not the
//! token; `HttpOnly`, `SameSite=Strict`, `Path=/console`) and redirects to the page. With the
//! cookie the page calls the control API under `/console/v1/...` (the daemon serves it as
//! `/v1/...`) and the console's own routes (`/console/api/...`). Every request that changes
//! something must also carry the header `x-skyform-console: 1`, which a page of another site
//! cannot send without a CORS preflight (which is never granted): no cross-site request forgery.
//! The console answers only requests whose `Host` is `127.0.0.1:PORT` or `localhost:PORT`, so a
//! DNS-rebinding site cannot read it. Cookies are per host, not per port: the path keeps the
//! browser from sending the cookie to the project's own APIs on 127.0.0.1 (and the gateway
//! drops it from events in any case, so no function sees it).
//!
//! **Live updates.** `GET /console/events` is a server-sent event stream of the trace hub's
//! events ([`crate::trace`]: invocations, steps), the functions' new log lines and a
//! `resources` event when a queue's depth, a bucket's or a table's count changes. The server's
//! bodies are whole (`http::Resp`), so each answer carries the events available — waiting up to
//! 15 s for the first — and ends with `retry: 100`: the browser's `EventSource` reconnects at
//! once with `Last-Event-ID` and misses nothing the hub still holds.
//!
//! **Assets** (`index.html`, `app.js`, `app.css`) are compiled into the binary with
//! `include_str!`; the page loads nothing from anywhere else (its CSP says so).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::aws::AwsContext;
use crate::http::{self, Resp};
use crate::layout::Layout;

/// How long a login link works.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// The session cookie's name.
pub const COOKIE: &str = "skyform_console";
/// The header every changing request from the page carries.
pub const CSRF_HEADER: &str = "x-skyform-console";

const INDEX: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// The console's state in the daemon.
pub struct Console {
    layout: Layout,
    aws: Arc<AwsContext>,
    /// Login codes not used yet, and when each stops working.
    codes: Mutex<HashMap<String, Instant>>,
    /// The watcher (log tail, resource counts) runs once a page is open.
    watching: AtomicBool,
    /// The session cookie's value: random, for this daemon's life.
    session: String,
}

impl Console {
    pub fn new(layout: Layout, aws: Arc<AwsContext>) -> Console {
        let session =
            format!("{:016x}{:016x}", crate::daemon::os_random_u64(), crate::daemon::os_random_u64());
        Console { layout, aws, codes: Mutex::new(HashMap::new()), watching: AtomicBool::new(false), session }
    }

    /// A new one-time login link (`POST /v1/console/login`).
    pub fn new_login(&self, port: u16) -> Value {
        let code = format!("{:016x}{:016x}", crate::daemon::os_random_u64(), crate::daemon::os_random_u64());
        let mut codes = self.codes.lock().unwrap();
        let now = Instant::now();
        codes.retain(|_, until| *until > now);
        codes.insert(code.clone(), now + LOGIN_TTL);
        json!({"url": format!("http://127.0.0.1:{port}/console/login?code={code}"), "expires_in_secs": LOGIN_TTL.as_secs()})
    }

    /// Serves `/console` and everything under it.
    pub async fn serve(self: &Arc<Self>, req: Request<Incoming>, port: u16) -> Resp {
        if !host_ok(&req, port) {
            return http::message(
                StatusCode::FORBIDDEN,
                "the console answers only on 127.0.0.1 or localhost",
            );
        }
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        if path == "/console/login" {
            return self.login(&query);
        }
        if !session_ok(&req, &self.session) {
            if req.method() == Method::GET && (path == "/console" || path == "/console/") {
                return http::response(
                    StatusCode::UNAUTHORIZED,
                    "text/plain; charset=utf-8",
                    "Not logged in. Run `skyform local console` and open the link it prints (it works once).\n",
                );
            }
            return http::message(
                StatusCode::UNAUTHORIZED,
                "not logged in: open a link from `skyform local console`",
            );
        }
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/console" | "/console/") => page(INDEX, "text/html; charset=utf-8"),
            (Method::GET, "/console/app.js") => page(APP_JS, "text/javascript; charset=utf-8"),
            (Method::GET, "/console/app.css") => page(APP_CSS, "text/css; charset=utf-8"),
            (Method::GET, "/console/events") => {
                self.start_watching();
                let last = req
                    .headers()
                    .get("last-event-id")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .or_else(|| param(&query, "after").and_then(|v| v.parse().ok()));
                events(last).await
            }
            (m, p) if p.starts_with("/console/api/") => {
                if m != Method::GET && !csrf_ok(&req) {
                    return http::message(StatusCode::FORBIDDEN, "missing the x-skyform-console header");
                }
                let rest = p["/console/api/".len()..].to_string();
                let body = match http::body_bytes(req).await {
                    Ok((_, b)) => b,
                    Err(e) => {
                        return http::message(StatusCode::BAD_REQUEST, &format!("cannot read the body: {e}"));
                    }
                };
                self.api(&m, &rest, &query, body).await
            }
            _ => http::message(StatusCode::NOT_FOUND, "no such console page"),
        }
    }

    /// Whether the page may make this control API request (`/console/v1/...`): the session
    /// cookie, the host check, and the CSRF header on anything but `GET`.
    pub fn allows_control<B>(&self, req: &Request<B>, port: u16) -> bool {
        control_allowed(req, &self.session, port)
    }

    fn login(&self, query: &str) -> Resp {
        let code = param(query, "code").unwrap_or_default();
        let valid = {
            let mut codes = self.codes.lock().unwrap();
            codes.remove(&code).is_some_and(|until| until > Instant::now())
        };
        if !valid {
            return http::response(
                StatusCode::FORBIDDEN,
                "text/plain; charset=utf-8",
                "This login link is used or expired. Run `skyform local console` for a new one.\n",
            );
        }
        let mut r = http::response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "logged in\n");
        let cookie = format!("{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict", self.session);
        if let Ok(v) = cookie.parse() {
            r.headers_mut().insert(hyper::header::SET_COOKIE, v);
        }
        r.headers_mut().insert(hyper::header::LOCATION, hyper::header::HeaderValue::from_static("/console/"));
        r
    }

    async fn api(&self, method: &Method, rest: &str, query: &str, body: Bytes) -> Resp {
        let parts: Vec<String> = rest.split('/').map(http::percent_decode).collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        match (method.clone(), parts.as_slice()) {
            (Method::GET, ["stacks"]) => http::json(StatusCode::OK, &stacks(&self.layout.project_dir)),
            (Method::GET, ["invocations"]) => {
                let f = param(query, "function");
                let s = param(query, "stack");
                let list = crate::trace::hub().spans(100, |v| {
                    v.kind == "invoke"
                        && f.as_deref().is_none_or(|f| v.function.as_deref() == Some(f))
                        && s.as_deref().is_none_or(|s| v.stack.as_deref() == Some(s))
                });
                http::json(StatusCode::OK, &list)
            }
            (Method::GET, ["traces"]) => http::json(StatusCode::OK, &crate::trace::hub().traces(100)),
            (Method::GET, ["traces", root]) => self.trace(root).await,
            (Method::GET, ["logs"]) => {
                let (Some(s), Some(f)) = (param(query, "stack"), param(query, "function")) else {
                    return http::message(StatusCode::BAD_REQUEST, "give stack and function");
                };
                let rid = param(query, "request_id");
                http::json(StatusCode::OK, &self.logs(&s, &f, rid.as_deref()).await)
            }
            (Method::POST, ["request"]) => self.forward(&body).await,
            (Method::GET, ["queues"]) => http::json(StatusCode::OK, &self.queues()),
            (m, ["queues", name, action]) => self.queue(&m, name, action, query, &body).await,
            (Method::GET, ["buckets", name]) => self.list_objects(name, query),
            (m, ["buckets", name, "object"]) => self.object(&m, name, query, body).await,
            (Method::GET, ["tables", name]) => self.items(name, query),
            (Method::PUT, ["tables", name, "item"]) => self.put_item(name, &body).await,
            _ => http::message(StatusCode::NOT_FOUND, "unknown console API path"),
        }
    }

    /// One trace's steps, oldest first, each invocation with its log lines.
    async fn trace(&self, root: &str) -> Resp {
        let mut spans = crate::trace::hub().spans(usize::MAX, |v| v.trace == root);
        spans.sort_by(|a, b| a["start_ms"].as_u64().cmp(&b["start_ms"].as_u64()));
        for s in &mut spans {
            if let (Some(st), Some(f), Some(r)) =
                (s["stack"].as_str(), s["function"].as_str(), s["request_id"].as_str())
            {
                let logs = self.logs(st, f, Some(r)).await;
                s["logs"] = logs;
            }
        }
        http::json(StatusCode::OK, &json!({"trace": root, "steps": spans}))
    }

    /// A function's last log lines (of one request when `request_id`).
    async fn logs(&self, stack: &str, function: &str, request_id: Option<&str>) -> Value {
        let path = self.layout.function_log(stack, function);
        let rid = request_id.map(str::to_string);
        let read = tokio::task::spawn_blocking(move || crate::logs::read_from(&path, 0, 0)).await;
        let records = match read {
            Ok(Ok((r, _))) => r,
            _ => Vec::new(),
        };
        let mut out: Vec<Value> = records
            .into_iter()
            .filter(|r| rid.as_deref().is_none_or(|id| r.request_id.as_deref() == Some(id)))
            .map(|r| json!({"time_ms": r.time_ms, "request_id": r.request_id, "message": r.message}))
            .collect();
        let keep = if rid.is_some() { 500 } else { 200 };
        if out.len() > keep {
            out.drain(..out.len() - keep);
        }
        Value::Array(out)
    }

    /// Sends a request to one of the project's HTTP APIs (the request form): the page cannot
    /// call another port itself (the gateway sends no CORS headers, as API Gateway without a
    /// CORS configuration). Only the ports of deployed APIs are reachable this way.
    async fn forward(&self, body: &[u8]) -> Resp {
        let req: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return http::message(StatusCode::BAD_REQUEST, &format!("bad request form: {e}")),
        };
        let port = req["port"].as_u64().unwrap_or(0) as u16;
        let reg = crate::registry::Registry::load(&self.layout.registry()).unwrap_or_default();
        if !reg.stacks.values().any(|s| s.apis.values().any(|a| a.port == port)) {
            return http::message(StatusCode::BAD_REQUEST, "that port is not one of the project's APIs");
        }
        let method = req["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let path = req["path"].as_str().unwrap_or("/");
        if !method.bytes().all(|b| b.is_ascii_uppercase())
            || !path.starts_with('/')
            || path.contains([' ', '\r', '\n'])
        {
            return http::message(StatusCode::BAD_REQUEST, "give a method and a path that starts with /");
        }
        let payload = req["body"].as_str().unwrap_or("");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
        if let Some(h) = req["headers"].as_object() {
            for (k, v) in h {
                let v = v.as_str().unwrap_or("");
                if k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !v.contains(['\r', '\n']) {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
            }
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
        let started = Instant::now();
        let answer = async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            s.write_all(head.as_bytes()).await?;
            s.write_all(payload.as_bytes()).await?;
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).await?;
            Ok::<_, std::io::Error>(raw)
        };
        let raw = match tokio::time::timeout(Duration::from_secs(60), answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return http::message(StatusCode::BAD_GATEWAY, &format!("the API did not answer: {e}"));
            }
            Err(_) => {
                return http::message(StatusCode::GATEWAY_TIMEOUT, "the API did not answer within 60 s");
            }
        };
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status =
            lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse::<u16>().ok()).unwrap_or(0);
        let headers: Vec<Value> =
            lines.filter_map(|l| l.split_once(':')).map(|(k, v)| json!([k.trim(), v.trim()])).collect();
        http::json(
            StatusCode::OK,
            &json!({"status": status, "headers": headers, "body": body, "duration_ms": started.elapsed().as_secs_f64() * 1000.0}),
        )
    }

    fn queues(&self) -> Value {
        let qs = &self.aws.queues;
        let mut names = qs.names();
        names.sort();
        let list: Vec<Value> = names
            .iter()
            .filter_map(|n| qs.get(n))
            .map(|q| {
                let d = q.depth();
                let c = q.config();
                let dlq = c.dead_letter.as_ref().map(|dl| crate::queue::queue_name_of(&dl.queue).to_string());
                let dead = dlq.as_deref().and_then(|n| qs.get(n)).map(|q| q.depth().visible).unwrap_or(0);
                let sources: Vec<String> = names
                    .iter()
                    .filter(|s| {
                        qs.get(s)
                            .and_then(|o| o.config().dead_letter)
                            .is_some_and(|dl| crate::queue::queue_name_of(&dl.queue) == q.name)
                    })
                    .cloned()
                    .collect();
                json!({
                    "name": q.name, "url": q.url(self.aws.port), "arn": q.arn(), "fifo": c.fifo,
                    "visible": d.visible, "in_flight": d.in_flight, "delayed": d.delayed,
                    "dead_letter_queue": dlq, "dead_letters": dead, "redrives_to": sources,
                })
            })
            .collect();
        Value::Array(list)
    }

    async fn queue(&self, method: &Method, name: &str, action: &str, query: &str, body: &[u8]) -> Resp {
        let Some(q) = self.aws.queues.get(name) else {
            return http::message(StatusCode::NOT_FOUND, &format!("no queue `{name}`"));
        };
        match (method.clone(), action) {
            (Method::GET, "peek") => {
                let max = param(query, "max").and_then(|m| m.parse().ok()).unwrap_or(20usize).min(100);
                let list: Vec<Value> = q
                    .peek(max)
                    .into_iter()
                    .map(|m| json!({"id": m.id, "body": m.body, "sent_ms": m.sent, "receives": m.n, "attributes": m.attrs, "trace": m.trace, "group": m.g}))
                    .collect();
                http::json(StatusCode::OK, &list)
            }
            (Method::POST, "send") => {
                let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                let Some(text) = v["body"].as_str() else {
                    return http::message(StatusCode::BAD_REQUEST, "give {\"body\": \"...\"}");
                };
                let input = crate::queue::SendInput {
                    body: text.to_string(),
                    group_id: v["group_id"].as_str().map(str::to_string),
                    dedup_id: v["dedup_id"].as_str().map(str::to_string),
                    ..Default::default()
                };
                let sent =
                    crate::trace::scope(crate::trace::Ctx::start(format!("console send {name}")), async {
                        q.check_send(&input)?;
                        q.send(input).await
                    })
                    .await;
                match sent {
                    Ok(s) => http::json(StatusCode::OK, &json!({"message_id": s.message_id})),
                    Err(e) => http::message(StatusCode::BAD_REQUEST, &e.to_string()),
                }
            }
            (Method::POST, "purge") => match q.purge().await {
                Ok(()) => http::json(StatusCode::OK, &json!({"purged": true})),
                Err(e) => http::message(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            (Method::POST, "redrive") => self.redrive(&q).await,
            _ => http::message(StatusCode::NOT_FOUND, "queue actions: peek, send, purge, redrive"),
        }
    }

    /// Moves the messages of the dead-letter queue `dlq` back to the queue that sends it its
    /// dead letters (SQS's "start DLQ redrive"): each is sent there, then deleted here.
    async fn redrive(&self, dlq: &crate::queue::Queue) -> Resp {
        let qs = &self.aws.queues;
        let source = qs.names().into_iter().find(|n| {
            qs.get(n)
                .and_then(|q| q.config().dead_letter)
                .is_some_and(|dl| crate::queue::queue_name_of(&dl.queue) == dlq.name)
        });
        let Some(source) = source.and_then(|n| qs.get(&n)) else {
            return http::message(
                StatusCode::BAD_REQUEST,
                &format!("no queue sends its dead letters to `{}`", dlq.name),
            );
        };
        let mut moved = 0;
        while moved < 10_000 {
            let opts =
                crate::queue::ReceiveOptions { max: 10, visibility_timeout: Some(30), wait: Duration::ZERO };
            let batch = match dlq.receive(qs, opts).await {
                Ok(b) if !b.is_empty() => b,
                Ok(_) => break,
                Err(e) => return http::message(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            };
            for r in batch {
                let input = crate::queue::SendInput {
                    body: r.message.body.clone(),
                    attributes: r.message.attrs.clone(),
                    group_id: r.message.g.clone(),
                    dedup_id: r.message.d.clone(),
                    ..Default::default()
                };
                let ctx = crate::trace::Ctx::from_header(r.message.trace.as_deref(), "console redrive");
                if let Err(e) = crate::trace::scope(ctx, source.send(input)).await {
                    return http::message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("after {moved} moved: {e}"),
                    );
                }
                let _ = dlq.delete(&r.receipt_handle).await;
                moved += 1;
            }
        }
        http::json(StatusCode::OK, &json!({"moved": moved, "to": source.name}))
    }

    fn list_objects(&self, name: &str, query: &str) -> Resp {
        let Some(b) = self.aws.buckets.store.bucket(name) else {
            return http::message(StatusCode::NOT_FOUND, &format!("no bucket `{name}`"));
        };
        let prefix = param(query, "prefix").unwrap_or_default();
        let (objects, prefixes, truncated, _) = b.list(&prefix, Some("/"), None, 500);
        let objects: Vec<Value> = objects
            .iter()
            .map(|m| json!({"key": m.key, "size": m.size, "etag": m.etag, "last_modified_ms": m.last_modified_ms, "content_type": m.content_type}))
            .collect();
        http::json(StatusCode::OK, &json!({"objects": objects, "prefixes": prefixes, "truncated": truncated}))
    }

    async fn object(&self, method: &Method, name: &str, query: &str, body: Bytes) -> Resp {
        let Some(b) = self.aws.buckets.store.bucket(name) else {
            return http::message(StatusCode::NOT_FOUND, &format!("no bucket `{name}`"));
        };
        let Some(key) = param(query, "key").filter(|k| !k.is_empty() && k.len() <= 1024) else {
            return http::message(StatusCode::BAD_REQUEST, "give a key (1 to 1024 bytes)");
        };
        let rid = crate::pool::new_request_id();
        match method.clone() {
            Method::GET => {
                let k = key.clone();
                let found = tokio::task::spawn_blocking(
                    move || -> std::io::Result<Option<(Vec<u8>, crate::buckets::store::ObjMeta)>> {
                        let Some((f, m)) = b.open(&k)? else { return Ok(None) };
                        let data = f.read_range(0, m.size)?;
                        Ok(Some((data, m)))
                    },
                )
                .await;
                match found {
                    Ok(Ok(Some((data, _m)))) => {
                        let mut r = http::response(StatusCode::OK, "application/octet-stream", data);
                        let file = key.rsplit('/').next().unwrap_or("object").replace(['"', '\\'], "_");
                        if let Ok(v) = format!("attachment; filename=\"{file}\"").parse() {
                            r.headers_mut().insert(hyper::header::CONTENT_DISPOSITION, v);
                        }
                        r
                    }
                    Ok(Ok(None)) => http::message(StatusCode::NOT_FOUND, &format!("no object `{key}`")),
                    _ => http::message(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the object"),
                }
            }
            Method::PUT => {
                // An upload starts a trace: the bucket's notifications go on in it.
                let trace = crate::trace::Ctx::start(format!("console upload {name}"));
                return crate::trace::scope(trace, self.put_object(b, name, key, query, body)).await;
            }
            Method::DELETE => {
                let k = key.clone();
                match tokio::task::spawn_blocking(move || b.delete(&k)).await {
                    Ok(Ok(old)) => {
                        if old.is_some() {
                            self.emit(name, "ObjectRemoved:Delete", &key, None, &rid);
                        }
                        http::json(StatusCode::OK, &json!({"deleted": old.is_some()}))
                    }
                    _ => http::message(StatusCode::INTERNAL_SERVER_ERROR, "cannot delete the object"),
                }
            }
            _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "GET, PUT or DELETE an object"),
        }
    }

    /// Stores an uploaded object as S3's PutObject does (fsynced, renamed) and emits its event.
    async fn put_object(
        &self,
        b: Arc<crate::buckets::store::BucketData>,
        name: &str,
        key: String,
        query: &str,
        body: Bytes,
    ) -> Resp {
        let rid = crate::pool::new_request_id();
        let content_type = param(query, "content_type").filter(|c| !c.is_empty());
        let k = key.clone();
        let put =
            tokio::task::spawn_blocking(move || -> Result<Arc<crate::buckets::store::ObjMeta>, String> {
                use md5::Digest;
                use std::io::Write;
                let (path, mut file) = b.temp_file().map_err(|e| e.to_string())?;
                let meta = crate::buckets::store::ObjMeta {
                    key: k,
                    size: body.len() as u64,
                    etag: crate::buckets::store::hex(&md5::Md5::digest(&body)),
                    last_modified_ms: crate::buckets::store::now_ms(),
                    content_type,
                    ..Default::default()
                };
                let written =
                    file.write_all(&body).and_then(|()| crate::buckets::store::finish_file(&mut file, &meta));
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&path);
                    return Err(e.to_string());
                }
                b.commit(&path, file, meta, |_| Ok(())).map_err(|e| format!("{e:?}"))
            })
            .await;
        let m = match put {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                return http::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot store the object: {e}"),
                );
            }
            Err(e) => return http::message(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        self.emit(name, "ObjectCreated:Put", &key, Some((m.size, &m.etag)), &rid);
        http::json(StatusCode::OK, &json!({"key": m.key, "size": m.size, "etag": m.etag}))
    }

    /// A bucket event, as S3 would send for the same change (notifications fire).
    fn emit(&self, bucket: &str, name: &str, key: &str, object: Option<(u64, &str)>, rid: &str) {
        let ev = crate::buckets::events::ObjectEvent { bucket, name, key, object, request_id: rid };
        if let Err(e) = self.aws.buckets.events.emit(&ev) {
            eprintln!("skyform local daemon: console: cannot record the bucket event: {e}");
        }
    }

    /// A table's items: the first 200, or one partition's (`hash=` its hash key's value).
    fn items(&self, name: &str, query: &str) -> Resp {
        let Some(def) = self.aws.tables.def(name) else {
            return http::message(StatusCode::NOT_FOUND, &format!("no table `{name}`"));
        };
        use crate::tables::Tables;
        let keys: Vec<String> = def.key_names().iter().map(|s| s.to_string()).collect();
        let (start, end) = match param(query, "hash").filter(|h| !h.is_empty()) {
            Some(h) => {
                let ty = def.spec.hash_key.type_.clone();
                match crate::tables::value::AV::from_json(&json!({ ty: h })) {
                    Ok(av) => Tables::partition_range(&def, None, &av),
                    Err(e) => return http::message(StatusCode::BAD_REQUEST, &format!("bad key value: {e}")),
                }
            }
            None => Tables::table_range(&def, None),
        };
        let range = crate::tables::ReadRange { start, end, reverse: false, index: false };
        let mut items = Vec::new();
        let read = self.aws.tables.read(&range, &mut |_, item| {
            items.push(crate::tables::value::item_to_json(&item));
            Ok(items.len() < 200)
        });
        if let Err(e) = read {
            return http::message(StatusCode::INTERNAL_SERVER_ERROR, &format!("{}: {}", e.code, e.message));
        }
        http::json(
            StatusCode::OK,
            &json!({"keys": keys, "items": items, "count": self.aws.tables.item_count(&def)}),
        )
    }

    /// Puts one item (DynamoDB JSON), as `PutItem` would: change triggers fire.
    async fn put_item(&self, name: &str, body: &[u8]) -> Resp {
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return http::message(StatusCode::BAD_REQUEST, &format!("the item is not JSON: {e}")),
        };
        let item = match crate::tables::value::item_from_json(&v) {
            Ok(i) => i,
            Err(e) => {
                return http::message(StatusCode::BAD_REQUEST, &format!("not an item in DynamoDB JSON: {e}"));
            }
        };
        let Some(def) = self.aws.tables.def(name) else {
            return http::message(StatusCode::NOT_FOUND, &format!("no table `{name}`"));
        };
        if let Err(e) = crate::tables::check_key(&def, &crate::tables::key_of(&def, &item)) {
            return http::message(StatusCode::BAD_REQUEST, &format!("{}: {}", e.code, e.message));
        }
        // An edit starts a trace: the table's change triggers go on in it.
        let trace = crate::trace::Ctx::start(format!("console put {name}"));
        let put = self.aws.tables.write_one(name, crate::tables::WriteOp::Put { item, cond: None });
        match crate::trace::scope(trace, put).await {
            Ok(_) => http::json(StatusCode::OK, &json!({"put": true})),
            Err(e) => http::message(StatusCode::BAD_REQUEST, &format!("{}: {}", e.code, e.message)),
        }
    }

    /// Starts (once) the task that publishes the functions' new log lines and a `resources`
    /// event when a count changes; it runs while the daemon does (a page reconnects often).
    fn start_watching(self: &Arc<Self>) {
        if self.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
            let mut first = true;
            let mut last_counts = Value::Null;
            loop {
                let reg = crate::registry::Registry::load(&this.layout.registry()).unwrap_or_default();
                for (stack, rec) in &reg.stacks {
                    for name in rec.functions.keys() {
                        let path = this.layout.function_log(stack, name);
                        let offset = offsets.get(&path).copied();
                        let p = path.clone();
                        // A log seen for the first time is read from its end (old lines are
                        // in the function view).
                        let start = match offset {
                            Some(o) => o,
                            None => std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0),
                        };
                        let Ok(Ok((records, next))) =
                            tokio::task::spawn_blocking(move || crate::logs::read_from(&p, start, 0)).await
                        else {
                            continue;
                        };
                        offsets.insert(path, next);
                        if first && offset.is_none() {
                            continue;
                        }
                        for r in records {
                            crate::trace::hub().publish(json!({
                                "kind": "log", "stack": stack, "function": name,
                                "request_id": r.request_id, "time_ms": r.time_ms, "message": r.message,
                            }));
                        }
                    }
                }
                first = false;
                let counts = json!({
                    "queues": crate::queue_control::status(&this.aws),
                    "buckets": this.aws.buckets.status()["buckets"],
                    "tables": crate::tables::control::status(&this.aws),
                });
                if counts != last_counts {
                    last_counts = counts;
                    crate::trace::hub().publish(json!({"kind": "resources"}));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
}

/// The events after `last` (or none, for a new page: it loads the current state itself),
/// waiting up to 15 s for one.
async fn events(last: Option<u64>) -> Resp {
    let hub = crate::trace::hub();
    let after = last.unwrap_or_else(|| hub.last_event());
    // A new page gets its starting point at once; a reconnection waits for news.
    if last.is_some() {
        hub.wait_after(after, Duration::from_secs(15)).await;
    }
    let (events, last_id) = hub.events_after(after);
    let mut out = String::from("retry: 100\n\n");
    if events.is_empty() {
        out.push_str(&format!("id: {last_id}\nevent: ping\ndata: {{}}\n\n"));
    }
    for (id, ev) in events {
        out.push_str(&format!("id: {id}\ndata: {ev}\n\n"));
    }
    let mut r = http::response(StatusCode::OK, "text/event-stream", out);
    r.headers_mut().insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-store"));
    r
}

/// Every stack's state (`state/<stack>.json`) with sealed secrets masked, and its last
/// operations (`state/<stack>.history.jsonl`). Secrets are never opened: the daemon has no key.
pub fn stacks(project_dir: &std::path::Path) -> Value {
    let dir = project_dir.join("state");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let list: Vec<Value> = names
        .iter()
        .filter_map(|name| {
            let bytes = std::fs::read(dir.join(format!("{name}.json"))).ok()?;
            let mut state: Value = serde_json::from_slice(&bytes).ok()?;
            state.get("resources")?;
            mask(&mut state);
            let history: Vec<Value> = std::fs::read_to_string(dir.join(format!("{name}.history.jsonl")))
                .unwrap_or_default()
                .lines()
                .rev()
                .take(20)
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            Some(json!({"stack": name, "state": state, "history": history}))
        })
        .collect();
    Value::Array(list)
}

/// Replaces every sealed (`{"$encrypted": ...}`) or marked (`{"$secret": ...}`) value, and a
/// format-1 fingerprint (`[secret:...]`), with `"••••••"`.
pub fn mask(v: &mut Value) {
    match v {
        Value::Object(o) if o.len() == 1 && (o.contains_key("$encrypted") || o.contains_key("$secret")) => {
            *v = json!("••••••");
        }
        Value::Object(o) => o.values_mut().for_each(mask),
        Value::Array(a) => a.iter_mut().for_each(mask),
        Value::String(s) if s.starts_with("[secret:") => *v = json!("••••••"),
        _ => {}
    }
}

fn page(body: &'static str, content_type: &'static str) -> Resp {
    let mut r = http::response(StatusCode::OK, content_type, body);
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        hyper::header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert("x-content-type-options", hyper::header::HeaderValue::from_static("nosniff"));
    h.insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-store"));
    r
}

/// A query parameter, percent-decoded (`+` as a space, as forms send it).
pub fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| http::percent_decode(&v.replace('+', " ")))
    })
}

fn host_ok<B>(req: &Request<B>, port: u16) -> bool {
    let host = req.headers().get(hyper::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}")
}

fn cookie_token<B>(req: &Request<B>) -> Option<String> {
    req.headers().get_all(hyper::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        c.split(';')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_string))
    })
}

/// Whether the request carries the console's session cookie `session`.
pub fn session_ok<B>(req: &Request<B>, session: &str) -> bool {
    cookie_token(req).is_some_and(|t| constant_time_eq(t.as_bytes(), session.as_bytes()))
}

fn csrf_ok<B>(req: &Request<B>) -> bool {
    req.headers().get(CSRF_HEADER).is_some_and(|v| v.as_bytes() == b"1")
}

/// Whether the console's session may make this control API request: the cookie, the host
/// check, and the CSRF header on anything but `GET`.
pub fn control_allowed<B>(req: &Request<B>, session: &str, port: u16) -> bool {
    session_ok(req, session) && host_ok(req, port) && (req.method() == Method::GET || csrf_ok(req))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let mut v = json!({"a": {"$encrypted": "v1:xyz"}, "b": ["[secret:abc]", 1, {"c": {"$secret": "p"}}], "d": "plain"});
        mask(&mut v);
        assert_eq!(v, json!({"a": "••••••", "b": ["••••••", 1, {"c": "••••••"}], "d": "plain"}));
    }

    #[test]
    fn params_and_cookies() {
        assert_eq!(param("a=1&key=x%2Fy+z", "key").as_deref(), Some("x/y z"));
        assert_eq!(param("a=1", "key"), None);
        let req = Request::builder()
            .header("cookie", "other=1; skyform_console=tok; x=2")
            .header("host", "127.0.0.1:9")
            .method("POST")
            .body(())
            .unwrap();
        assert!(session_ok(&req, "tok"));
        assert!(!session_ok(&req, "tok2"));
        assert!(!control_allowed(&req, "tok", 9), "a POST without the CSRF header");
        let req = Request::builder()
            .header("cookie", "skyform_console=tok")
            .header("host", "evil.example:9")
            .body(())
            .unwrap();
        assert!(!control_allowed(&req, "tok", 9), "another host name (DNS rebinding)");
    }
}
