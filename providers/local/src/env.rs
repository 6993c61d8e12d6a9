//! One execution environment: a function process and the Runtime API listener it polls.
//!
//! The process is started with `AWS_LAMBDA_RUNTIME_API` pointing at a listener of its own on
//! 127.0.0.1, so any Lambda runtime client (`awslambdaric`, the `lambda_runtime` crate, the
//! shims in `shims/`) works unchanged. An environment serves one invocation at a time: the
//! invoker hands it an `Invocation` through a channel, the listener gives it to the process
//! on `GET /invocation/next` and routes the process's `response`/`error` back to the invoker.
//!
//! The process runs in a process group of its own (so that killing the group also kills what
//! it spawned) with `PR_SET_PDEATHSIG`, so it does not outlive a daemon killed with `kill -9`.
//! Dropping an [`Env`] kills its group.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot, watch};

use crate::http::{self, Resp};
use crate::logs::LogSink;

/// Everything needed to start an environment of one function version.
pub struct EnvConfig {
    pub stack: String,
    pub name: String,
    pub arn: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub artifact: PathBuf,
    pub handler: String,
    pub env: BTreeMap<String, String>,
    /// The AWS endpoint, credentials and region ([`crate::aws::client_env`]); they replace
    /// Lambda's own and come before the function's `environment`.
    pub aws_env: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory: u64,
}

/// How an environment's process is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Running,
    /// The process reported `POST /init/error` with this body.
    InitError(Bytes),
    /// The process exited (`exit status: 1`, `signal: 9`).
    Exited(String),
}

/// What a process answered to one invocation.
pub enum Reply {
    Response(Bytes),
    Error(Bytes),
}

/// One invocation handed to an environment.
struct Invocation {
    request_id: Arc<str>,
    payload: Bytes,
    deadline_ms: u64,
    delivered: oneshot::Sender<()>,
    reply: oneshot::Sender<Reply>,
}

struct Pending {
    request_id: Arc<str>,
    reply: oneshot::Sender<Reply>,
}

/// State shared between the invoker side and the Runtime API listener.
struct Shared {
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<Option<Pending>>,
    status: watch::Sender<Status>,
    arn: String,
}

/// Why an invocation failed outside the handler's own error.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Timeout,
    InitError(Bytes),
    Exited(String),
}

/// The result of one invocation on one environment.
pub enum Outcome {
    Ok(Bytes),
    /// The handler raised (the body is the runtime's error JSON).
    HandlerError(Bytes),
    Failed(Failure),
}

static NEXT_ENV: AtomicU64 = AtomicU64::new(1);

/// The process-group ids of an owner's live environments (so that deleting a function kills
/// busy environments too).
pub type LiveSet = Arc<Mutex<HashMap<u64, i32>>>;

pub struct Env {
    pub id: u64,
    pub pid: i32,
    tx: mpsc::Sender<Invocation>,
    status: watch::Receiver<Status>,
    live: LiveSet,
    _stop: watch::Sender<bool>,
    pub last_used: Instant,
    log: mpsc::UnboundedSender<LogCtl>,
    /// `End`s sent to the log task, and how many it has written (see [`Env::invoke`]).
    ends_sent: u64,
    logged: Arc<Logged>,
    mem_mb: u64,
    mem_read: Option<Instant>,
}

impl Env {
    /// Starts the listener and the process. Returns once the process is spawned (its runtime
    /// client initialises while the first invocation waits).
    pub async fn start(cfg: &EnvConfig, log: &LogSink, live: &LiveSet) -> Result<Env, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot open a Runtime API port: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel(1);
        let (status_tx, status_rx) = watch::channel(Status::Running);
        let shared = Arc::new(Shared {
            next: tokio::sync::Mutex::new(rx),
            pending: Mutex::new(None),
            status: status_tx,
            arn: cfg.arn.clone(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let timeout_ms = cfg.timeout.as_millis() as u64;
        let s = shared.clone();
        http::spawn_server(listener, stop_rx, move |req, peer| {
            let s = s.clone();
            async move { runtime_api(&s, req, peer, timeout_ms).await }
        });

        let id = NEXT_ENV.fetch_add(1, Ordering::Relaxed);
        let mut cmd = tokio::process::Command::new(&cfg.program);
        cmd.args(&cfg.args)
            .current_dir(&cfg.artifact)
            .env_clear()
            .envs(base_env(cfg, addr, id))
            .envs(&cfg.env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            format!("cannot start `{}` for function `{}`: {e}", cfg.program.display(), cfg.name)
        })?;
        let pid = child.id().unwrap_or(0) as i32;
        crate::pgroups::record(pid);
        live.lock().unwrap().insert(id, pid);

        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let logged = Arc::new(Logged::default());
        tokio::spawn(log_task(child.stdout.take(), child.stderr.take(), log_rx, log.clone(), logged.clone()));

        let s = shared.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(st) => st.to_string(),
                Err(e) => e.to_string(),
            };
            s.status.send_if_modified(|cur| {
                if *cur == Status::Running {
                    *cur = Status::Exited(status);
                    true
                } else {
                    false
                }
            });
            // Fail an invocation the process took but never answered.
            s.pending.lock().unwrap().take();
        });

        Ok(Env {
            id,
            pid,
            tx,
            status: status_rx,
            live: live.clone(),
            _stop: stop_tx,
            last_used: Instant::now(),
            log: log_tx,
            ends_sent: 0,
            logged,
            mem_mb: 0,
            mem_read: None,
        })
    }

    /// Sends a log event to this environment's log task (`log_task`).
    pub fn log(&mut self, ctl: LogCtl) {
        if matches!(ctl, LogCtl::End(..)) {
            self.ends_sent += 1;
        }
        let _ = self.log.send(ctl);
    }

    /// Waits (briefly, bounded) until the log task has written the previous invocation's
    /// `END`. It drains the pipes when it does; were the next invocation already running, what
    /// that one prints could be drained with it and filed under the previous request.
    async fn previous_logged(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        loop {
            let notified = self.logged.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.logged.ends.load(Ordering::SeqCst) >= self.ends_sent {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    pub fn is_running(&self) -> bool {
        *self.status.borrow() == Status::Running
    }

    /// Runs one invocation: waits up to `init_timeout` for the process to take it, then up to
    /// the function's timeout for its answer. `taken` is dropped as soon as the process has
    /// taken the invocation (so, for a new process, once it has initialised).
    pub async fn invoke<T>(
        &mut self,
        request_id: Arc<str>,
        payload: Bytes,
        timeout: Duration,
        init_timeout: Duration,
        taken: T,
    ) -> Outcome {
        self.previous_logged().await;
        let (dtx, mut drx) = oneshot::channel();
        let (rtx, mut rrx) = oneshot::channel();
        let inv = Invocation { request_id, payload, deadline_ms: 0, delivered: dtx, reply: rtx };
        if self.tx.try_send(inv).is_err() {
            return Outcome::Failed(self.failure());
        }
        // Phase 1: the runtime client polls `next` (at once when warm; after init when cold).
        let deadline = tokio::time::sleep(init_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = &mut drx => {
                    if r.is_err() {
                        return Outcome::Failed(self.failure());
                    }
                    break;
                }
                changed = self.status.changed() => {
                    if changed.is_err() || !self.is_running() {
                        return Outcome::Failed(self.failure());
                    }
                }
                _ = &mut deadline => return Outcome::Failed(Failure::Timeout),
            }
        }
        drop(taken);
        // Phase 2: the handler runs.
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = &mut rrx => {
                    return match r {
                        Ok(Reply::Response(b)) => {
                            self.last_used = Instant::now();
                            Outcome::Ok(b)
                        }
                        Ok(Reply::Error(b)) => {
                            self.last_used = Instant::now();
                            Outcome::HandlerError(b)
                        }
                        Err(_) => Outcome::Failed(self.failure()),
                    };
                }
                changed = self.status.changed() => {
                    if changed.is_err() || !self.is_running() {
                        // Give a reply that raced the exit a chance to win.
                        if let Ok(r) = rrx.try_recv() {
                            return match r {
                                Reply::Response(b) => Outcome::Ok(b),
                                Reply::Error(b) => Outcome::HandlerError(b),
                            };
                        }
                        return Outcome::Failed(self.failure());
                    }
                }
                _ = &mut deadline => return Outcome::Failed(Failure::Timeout),
            }
        }
    }

    fn failure(&self) -> Failure {
        match &*self.status.borrow() {
            Status::InitError(b) => Failure::InitError(b.clone()),
            Status::Exited(s) => Failure::Exited(s.clone()),
            Status::Running => Failure::Exited("the runtime client stopped polling".into()),
        }
    }

    /// Peak resident memory of the process, in MB (`VmHWM` from `/proc`). Read at most once a
    /// second per environment, so that a busy function does not pay a file read per request.
    pub fn max_memory_mb(&mut self) -> u64 {
        let now = Instant::now();
        if self.mem_read.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            self.mem_read = Some(now);
            if let Some(mb) = read_hwm_mb(self.pid) {
                self.mem_mb = self.mem_mb.max(mb);
            }
        }
        self.mem_mb
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        kill_group(self.pid);
        self.live.lock().unwrap().remove(&self.id);
    }
}

fn read_hwm_mb(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

pub fn kill_group(pid: i32) {
    if pid > 0 {
        // SAFETY: plain syscall; a negative pid addresses the process group.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// What the invoker tells an environment's log task.
pub enum LogCtl {
    /// An invocation starts: write `START`, attribute printed lines to it from now on.
    Start(Arc<str>),
    /// An invocation ended: write these lines (`END`, `REPORT`, a timeout notice) once the
    /// output already printed has been written.
    End(Arc<str>, Vec<String>),
}

/// How many `End`s an environment's log task has written; waiters are woken on each.
#[derive(Default)]
struct Logged {
    ends: AtomicU64,
    changed: tokio::sync::Notify,
}

/// One of a process's output pipes, split into lines.
struct Pipe<R> {
    reader: Option<R>,
    fd: i32,
    pending: Vec<u8>,
    chunk: Box<[u8]>,
}

impl<R: tokio::io::AsyncRead + Unpin> Pipe<R> {
    fn new(reader: Option<R>, fd: i32) -> Self {
        Pipe { reader, fd, pending: Vec::new(), chunk: vec![0; 16 * 1024].into_boxed_slice() }
    }

    /// Reads one chunk (cancel-safe: a read either happened whole or not at all). Returns
    /// false at end of file.
    async fn read(&mut self) -> bool {
        let Some(r) = self.reader.as_mut() else { return false };
        match r.read(&mut self.chunk).await {
            Ok(0) | Err(_) => {
                self.reader = None;
                false
            }
            Ok(n) => {
                self.pending.extend_from_slice(&self.chunk[..n]);
                true
            }
        }
    }

    /// Bytes written to the pipe and not read yet, asked of the kernel (not of the IO
    /// driver's readiness, which may lag).
    fn unread(&self) -> usize {
        if self.reader.is_none() {
            return 0;
        }
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int; the fd stays open while `reader` is Some.
        let rc = unsafe { libc::ioctl(self.fd, libc::FIONREAD, &mut n) };
        if rc == 0 { n.max(0) as usize } else { 0 }
    }

    /// Sends the complete lines (and, with `all`, a trailing partial one) to the log.
    fn emit(&mut self, log: &LogSink, rid: &Option<Arc<str>>, all: bool) {
        let mut start = 0;
        while let Some(i) = self.pending[start..].iter().position(|c| *c == b'\n') {
            let mut line = &self.pending[start..start + i];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            log.line(rid.clone(), String::from_utf8_lossy(line).into_owned());
            start += i + 1;
        }
        self.pending.drain(..start);
        if all && !self.pending.is_empty() {
            log.line(rid.clone(), String::from_utf8_lossy(&self.pending).into_owned());
            self.pending.clear();
        }
    }
}

/// Copies a process's stdout and stderr to the function's log, line by line, attributed to
/// the invocation in progress.
///
/// Ordering: a runtime client prints before it posts its answer, so when the invoker's `End`
/// arrives, what the invocation printed is already in the pipes. Before writing `END`, the
/// task asks the kernel how many bytes each pipe still holds (`FIONREAD`) and reads them, so a
/// request's lines land between its `START` and its `END`, attributed to it.
async fn log_task(
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
    mut ctl: mpsc::UnboundedReceiver<LogCtl>,
    log: LogSink,
    logged: Arc<Logged>,
) {
    use std::os::fd::AsRawFd;
    let ofd = stdout.as_ref().map(|o| o.as_raw_fd()).unwrap_or(-1);
    let efd = stderr.as_ref().map(|e| e.as_raw_fd()).unwrap_or(-1);
    let mut out = Pipe::new(stdout, ofd);
    let mut err = Pipe::new(stderr, efd);
    let mut current: Option<Arc<str>> = None;
    let mut ctl_open = true;
    loop {
        if !ctl_open && out.reader.is_none() && err.reader.is_none() {
            out.emit(&log, &current, true);
            err.emit(&log, &current, true);
            return;
        }
        // Control messages first: when `Start` and the new request's output are both ready,
        // the output is read after `Start` (the process got the request after it was sent).
        tokio::select! {
            biased;
            msg = ctl.recv(), if ctl_open => match msg {
                Some(LogCtl::Start(rid)) => {
                    log.line(Some(rid.clone()), format!("START RequestId: {rid} Version: $LATEST"));
                    current = Some(rid);
                }
                Some(LogCtl::End(rid, lines)) => {
                    // Bounded: a process that keeps printing must not hold END back forever.
                    for _ in 0..64 {
                        if out.unread() > 0 {
                            out.read().await;
                        } else if err.unread() > 0 {
                            err.read().await;
                        } else {
                            break;
                        }
                    }
                    out.emit(&log, &current, true);
                    err.emit(&log, &current, true);
                    for l in lines {
                        log.line(Some(rid.clone()), l);
                    }
                    logged.ends.fetch_add(1, Ordering::SeqCst);
                    logged.changed.notify_waiters();
                }
                // The environment was dropped (its group killed): write what is left in
                // the pipes, until they close.
                None => ctl_open = false,
            },
            more = out.read(), if out.reader.is_some() => {
                out.emit(&log, &current, !more);
            }
            more = err.read(), if err.reader.is_some() => {
                err.emit(&log, &current, !more);
            }
        }
    }
}

/// What a function process inherits from the daemon ([`skyform_build::inherited_env`]).
pub fn inherited_env() -> Vec<(String, String)> {
    skyform_build::inherited_env()
}

fn base_env(cfg: &EnvConfig, addr: SocketAddr, id: u64) -> Vec<(String, String)> {
    let mut v = inherited_env();
    let task_root = cfg.artifact.to_string_lossy().into_owned();
    let stream = format!("local/[$LATEST]{id:016x}");
    v.extend([
        ("AWS_LAMBDA_RUNTIME_API".into(), addr.to_string()),
        ("_HANDLER".into(), cfg.handler.clone()),
        ("LAMBDA_TASK_ROOT".into(), task_root.clone()),
        ("LAMBDA_RUNTIME_DIR".into(), task_root),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), cfg.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), cfg.memory.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".into(), format!("/aws/lambda/{}", cfg.name)),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), stream),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        ("AWS_EXECUTION_ENV".into(), "skyform-local".into()),
        ("SKYFORM_STACK".into(), cfg.stack.clone()),
        // Lines reach the log as they are printed, and imports never write into the artifact.
        ("PYTHONUNBUFFERED".into(), "1".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
    ]);
    v.extend(cfg.aws_env.iter().cloned());
    v
}

const PREFIX: &str = "/2018-06-01/runtime";

async fn runtime_api(s: &Shared, req: Request<Incoming>, _peer: SocketAddr, timeout_ms: u64) -> Resp {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return http::message(StatusCode::NOT_FOUND, "not a Runtime API path");
    };
    if req.method() == Method::GET && rest == "/invocation/next" {
        let inv = { s.next.lock().await.recv().await };
        let Some(mut inv) = inv else {
            return http::message(StatusCode::INTERNAL_SERVER_ERROR, "environment shutting down");
        };
        inv.deadline_ms = crate::logs::now_ms() + timeout_ms;
        *s.pending.lock().unwrap() = Some(Pending { request_id: inv.request_id.clone(), reply: inv.reply });
        let _ = inv.delivered.send(());
        let mut r = hyper::Response::new(http_body_util::Full::new(inv.payload));
        let h = r.headers_mut();
        let hv = |v: &str| {
            hyper::header::HeaderValue::from_str(v).unwrap_or(hyper::header::HeaderValue::from_static(""))
        };
        h.insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
        h.insert("lambda-runtime-aws-request-id", hv(&inv.request_id));
        h.insert("lambda-runtime-deadline-ms", hyper::header::HeaderValue::from(inv.deadline_ms));
        h.insert("lambda-runtime-invoked-function-arn", hv(&s.arn));
        let trace =
            crate::trace::runtime_header(&inv.request_id).unwrap_or_else(|| trace_id(&inv.request_id));
        h.insert("lambda-runtime-trace-id", hv(&trace));
        return r;
    }
    if req.method() == Method::POST {
        if rest == "/init/error" {
            let body = http::body_bytes(req).await.map(|(_, b)| b).unwrap_or_default();
            s.status.send_if_modified(|cur| {
                if *cur == Status::Running {
                    *cur = Status::InitError(body);
                    true
                } else {
                    false
                }
            });
            return http::json(StatusCode::ACCEPTED, &serde_json::json!({"status": "OK"}));
        }
        if let Some(tail) = rest.strip_prefix("/invocation/") {
            let (id, kind) = match tail.rsplit_once('/') {
                Some((id, "response")) => (id.to_string(), true),
                Some((id, "error")) => (id.to_string(), false),
                _ => return http::message(StatusCode::NOT_FOUND, "unknown Runtime API path"),
            };
            let body = match http::body_bytes(req).await {
                Ok((_, b)) => b,
                Err(_) => return http::message(StatusCode::BAD_REQUEST, "cannot read body"),
            };
            let pending = {
                let mut p = s.pending.lock().unwrap();
                if p.as_ref().is_some_and(|p| *p.request_id == id) { p.take() } else { None }
            };
            let Some(pending) = pending else {
                return http::json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}),
                );
            };
            let _ = pending.reply.send(if kind { Reply::Response(body) } else { Reply::Error(body) });
            return http::json(StatusCode::ACCEPTED, &serde_json::json!({"status": "OK"}));
        }
    }
    http::message(StatusCode::NOT_FOUND, "unknown Runtime API path")
}

fn trace_id(request_id: &str) -> String {
    let hexpart: String = request_id.chars().filter(|c| c.is_ascii_hexdigit()).take(24).collect();
    format!(
        "Root=1-{:08x}-{hexpart:0<24};Parent={};Sampled=0",
        crate::logs::now_ms() / 1000,
        &hexpart[..hexpart.len().min(16)]
    )
}
