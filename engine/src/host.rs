//! The provider host: starts provider processes and talks the protocol to them.
//!
//! One [`ProviderHandle`] per provider process. Requests are written to its stdin by a writer
//! task (batched: one flush per burst); a reader task matches response lines to waiting
//! callers by request id, so any number of requests can be in flight. Stderr goes to
//! `.skyform/logs/<provider>.log` and, as events, to the CLI (shown with `-v`).
//!
//! A provider that exits, answers something that is not a protocol message, or does not answer
//! within its timeout is marked broken: every waiting caller gets an error naming the provider
//! and the request, and the process is killed so that it cannot finish an operation behind
//! the engine's back.
//!
//! How the host reaches a provider is a [`Transport`]: [`Processes`] starts provider processes
//! and talks over their stdio (what users run); [`InMemory`] runs any
//! [`skyform_protocol::Provider`] as a task of this process, over in-memory pipes, through the
//! same `serve` loop and the same NDJSON — so the engine's own tests (and programs embedding the
//! engine) exercise the real protocol path without spawning anything.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use skyform_protocol::{
    Call, ErrorBody, ErrorCode, HandshakeRequest, HandshakeResponse, PROTOCOL_VERSION, Request,
    ResourceSchema, Response,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};

/// How to start a provider.
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// How long one request may take before the provider counts as hung.
    pub timeout: Duration,
    pub log_path: PathBuf,
    /// Extra environment for the process.
    pub env: Vec<(String, String)>,
}

/// A provider's end of the protocol, as a transport connected it.
pub struct Connection {
    /// What the provider writes (its stdout): one response per line.
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
    /// What the provider reads (its stdin): one request per line.
    pub writer: Box<dyn AsyncWrite + Send + Unpin>,
    /// Its log lines (stderr), if it has any.
    pub stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub peer: Box<dyn Peer>,
}

/// The running provider behind a connection: stopped when it breaks, awaited at shutdown.
pub trait Peer: Send {
    /// Stops it at once, so that it cannot finish an operation behind the engine's back.
    fn kill(&mut self);
    /// Waits for it to end; says how it ended.
    fn wait(&mut self) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
}

/// How the host reaches providers.
pub trait Transport: Send + Sync {
    fn connect(&self, spec: &ProviderSpec) -> Result<Connection>;
    /// Whether this transport knows the provider by name alone, with no executable to find.
    fn knows(&self, _name: &str) -> bool {
        false
    }
}

impl std::fmt::Debug for dyn Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transport")
    }
}

/// Provider processes, spoken to over stdio: what users run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Processes;

struct ProcessPeer(Child);

impl Peer for ProcessPeer {
    fn kill(&mut self) {
        let _ = self.0.start_kill();
    }
    fn wait(&mut self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move {
            match self.0.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => format!("cannot be waited for: {e}"),
            }
        })
    }
}

impl Transport for Processes {
    fn connect(&self, spec: &ProviderSpec) -> Result<Connection> {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the provider when
        // the engine dies, so an operation cannot complete after the engine stopped recording.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            Error::new(
                ErrorKind::Provider,
                format!("cannot start provider `{}` ({}): {e}", spec.name, spec.program.display()),
            )
            .with_hint("check that the provider executable exists and is executable")
        })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        Ok(Connection {
            reader: Box::new(stdout),
            writer: Box::new(stdin),
            stderr: Some(Box::new(stderr)),
            peer: Box::new(ProcessPeer(child)),
        })
    }
}

type Serve = Arc<
    dyn Fn(tokio::io::DuplexStream, tokio::io::DuplexStream) -> tokio::task::JoinHandle<()> + Send + Sync,
>;

/// Providers run in this process, each connection a `serve` task over in-memory pipes.
/// Providers not registered here are started as processes.
#[derive(Clone, Default)]
pub struct InMemory {
    providers: HashMap<String, Serve>,
}

impl InMemory {
    pub fn new() -> InMemory {
        InMemory::default()
    }

    /// Registers a provider: `make` builds a fresh instance for every connection.
    pub fn with<P, F>(mut self, name: &str, make: F) -> InMemory
    where
        P: skyform_protocol::Provider,
        F: Fn() -> P + Send + Sync + 'static,
    {
        let serve: Serve = Arc::new(move |input, output| {
            let provider = make();
            tokio::spawn(async move {
                let _ = skyform_protocol::serve_io(provider, input, output).await;
            })
        });
        self.providers.insert(name.to_string(), serve);
        self
    }
}

struct TaskPeer(Option<tokio::task::JoinHandle<()>>);

impl Peer for TaskPeer {
    fn kill(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
    fn wait(&mut self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move {
            match self.0.take() {
                Some(t) => match t.await {
                    Ok(()) => "ended".to_string(),
                    Err(e) if e.is_cancelled() => "stopped".to_string(),
                    Err(e) => format!("panicked: {e}"),
                },
                None => "ended".to_string(),
            }
        })
    }
}

impl Transport for InMemory {
    fn connect(&self, spec: &ProviderSpec) -> Result<Connection> {
        let Some(serve) = self.providers.get(&spec.name) else {
            return Processes.connect(spec);
        };
        // Generous buffers: a burst of requests must not wait on the provider reading them.
        let (engine_out, provider_in) = tokio::io::duplex(1 << 20);
        let (provider_out, engine_in) = tokio::io::duplex(1 << 20);
        let task = serve(provider_in, provider_out);
        Ok(Connection {
            reader: Box::new(engine_in),
            writer: Box::new(engine_out),
            stderr: None,
            peer: Box::new(TaskPeer(Some(task))),
        })
    }
    fn knows(&self, name: &str) -> bool {
        self.providers.contains_key(name)
    }
}

type Answer = std::result::Result<Value, Failure>;

#[derive(Debug, Clone)]
enum Failure {
    /// The provider answered with an error.
    Answered(ErrorBody),
    /// The provider is broken (exited, garbage, hung).
    Broken(String),
}

struct Inner {
    name: String,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    broken: Mutex<Option<String>>,
    tx: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    child: Mutex<Option<Box<dyn Peer>>>,
    timeout: Duration,
    log_path: PathBuf,
}

/// A running provider. Cheap to clone.
#[derive(Clone)]
pub struct ProviderHandle {
    inner: Arc<Inner>,
    pub version: String,
    pub schemas: Arc<BTreeMap<String, ResourceSchema>>,
}

impl ProviderHandle {
    /// Starts the provider as a process and performs the handshake.
    pub async fn start(spec: ProviderSpec, sink: Sink) -> Result<ProviderHandle> {
        ProviderHandle::connect(&Processes, spec, sink).await
    }

    /// Connects to the provider through `transport` and performs the handshake.
    pub async fn connect(
        transport: &dyn Transport,
        spec: ProviderSpec,
        sink: Sink,
    ) -> Result<ProviderHandle> {
        if let Some(dir) = spec.log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let Connection { reader: stdout, writer: stdin, stderr, peer: child } = transport.connect(&spec)?;

        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let inner = Arc::new(Inner {
            name: spec.name.clone(),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            broken: Mutex::new(None),
            tx: Mutex::new(Some(tx)),
            child: Mutex::new(Some(child)),
            timeout: spec.timeout,
            log_path: spec.log_path.clone(),
        });

        // Writer: one flush per burst of requests.
        let mut stdin = tokio::io::BufWriter::new(stdin);
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if stdin.write_all(&line).await.is_err() {
                    return;
                }
                while let Ok(more) = rx.try_recv() {
                    if stdin.write_all(&more).await.is_err() {
                        return;
                    }
                }
                if stdin.flush().await.is_err() {
                    return;
                }
            }
            let _ = stdin.shutdown().await;
        });

        // Stderr: to the log file and to the sink.
        let log_path = spec.log_path.clone();
        let provider = spec.name.clone();
        let log_sink = sink.clone();
        if let Some(stderr) = stderr {
            tokio::spawn(async move {
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).ok();
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(f) = file.as_mut() {
                        use std::io::Write;
                        let _ = writeln!(f, "{line}");
                    }
                    // `@progress ID [MESSAGE]` and `@notice MESSAGE` lines are for the user
                    // (PROTOCOL.md, "Finding and starting a provider").
                    if let Some(rest) = line.strip_prefix("@progress ") {
                        let (id, message) = match rest.split_once(' ') {
                            Some((id, m)) => (id, Some(m.to_string())),
                            None => (rest.trim(), None),
                        };
                        log_sink.event(Event::Progress { id: format!("{provider}/{id}"), message });
                    } else if let Some(message) = line.strip_prefix("@notice ") {
                        log_sink.event(Event::Warning { message: message.to_string() });
                    } else {
                        log_sink.event(Event::ProviderLog { provider: provider.clone(), line });
                    }
                }
            });
        }

        // Reader: route answers by id.
        let reader_inner = inner.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if line.trim().is_empty() {
                            continue;
                        }
                        match serde_json::from_str::<Response>(&line) {
                            Ok(resp) => {
                                let waiter = reader_inner.pending.lock().unwrap().remove(&resp.id);
                                if let Some(w) = waiter {
                                    let answer = match (resp.result, resp.error) {
                                        (_, Some(e)) => Err(Failure::Answered(e)),
                                        (Some(v), None) => Ok(v),
                                        (None, None) => Ok(Value::Null),
                                    };
                                    let _ = w.send(answer);
                                }
                            }
                            Err(_) => {
                                let shown: String = line.chars().take(200).collect();
                                reader_inner.break_with(format!(
                                    "answered with something that is not a protocol message: `{shown}`"
                                ));
                                return;
                            }
                        }
                    }
                    Ok(None) | Err(_) => {
                        let child = reader_inner.child.lock().unwrap().take();
                        let status = match child {
                            // Give the process a moment to be reaped, to say how it ended.
                            Some(mut c) => {
                                match tokio::time::timeout(Duration::from_millis(200), c.wait()).await {
                                    Ok(s) => s,
                                    _ => "its output closed".into(),
                                }
                            }
                            None => "stopped".into(),
                        };
                        reader_inner.break_with(format!("exited unexpectedly ({status})"));
                        return;
                    }
                }
            }
        });

        let handle = ProviderHandle { inner, version: String::new(), schemas: Arc::new(BTreeMap::new()) };
        let hello: HandshakeResponse = handle
            .call(
                Call::Handshake(HandshakeRequest {
                    protocol_versions: vec![PROTOCOL_VERSION],
                    engine_version: env!("CARGO_PKG_VERSION").to_string(),
                }),
                "",
            )
            .await?;
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(Error::new(
                ErrorKind::Provider,
                format!(
                    "provider `{}` picked protocol version {}, but skyform speaks {PROTOCOL_VERSION}",
                    spec.name, hello.protocol_version
                ),
            )
            .with_hint("upgrade the provider or skyform so that they share a protocol version"));
        }
        if hello.name != spec.name {
            return Err(Error::new(
                ErrorKind::Provider,
                format!("provider `{}` calls itself `{}` in its handshake", spec.name, hello.name),
            ));
        }
        sink.event(Event::ProviderStarted { name: spec.name.clone(), version: hello.version.clone() });
        Ok(ProviderHandle { inner: handle.inner, version: hello.version, schemas: Arc::new(hello.resources) })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Sends a request and waits for its answer. `about` names the resource for messages.
    pub async fn call<T: DeserializeOwned>(&self, call: Call, about: &str) -> Result<T> {
        let method = call.method();
        let value = self.call_raw(call, about).await?;
        serde_json::from_value(value).map_err(|e| {
            self.error(method, about, format!("answered `{method}` with a result skyform cannot read: {e}"))
        })
    }

    async fn call_raw(&self, call: Call, about: &str) -> Result<Value> {
        let method = call.method();
        if let Some(reason) = self.inner.broken.lock().unwrap().clone() {
            return Err(self.error(method, about, reason));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inner.pending.lock().unwrap().insert(id, tx);
        let mut line = serde_json::to_vec(&Request { id, call }).expect("requests serialize");
        line.push(b'\n');
        let sent = self.inner.tx.lock().unwrap().as_ref().map(|tx| tx.send(line).is_ok()).unwrap_or(false);
        if !sent {
            self.inner.pending.lock().unwrap().remove(&id);
            let reason =
                self.inner.broken.lock().unwrap().clone().unwrap_or_else(|| "has stopped".to_string());
            return Err(self.error(method, about, reason));
        }
        match tokio::time::timeout(self.inner.timeout, rx).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(Failure::Answered(e)))) => Err(self.answered_error(method, about, e)),
            Ok(Ok(Err(Failure::Broken(reason)))) => Err(self.error(method, about, reason)),
            Ok(Err(_)) => Err(self.error(method, about, "dropped the request".into())),
            Err(_) => {
                self.inner.pending.lock().unwrap().remove(&id);
                let reason = format!("did not answer within {}", human_duration(self.inner.timeout));
                self.inner.break_with(reason.clone());
                Err(self.error(method, about, reason).with_hint(format!(
                    "the provider was stopped; see its log {} (raise `timeout` under [providers.{}] in Skyform.toml if it is just slow)",
                    self.inner.log_path.display(),
                    self.inner.name
                )))
            }
        }
    }

    fn error(&self, method: &str, about: &str, reason: String) -> Error {
        let what = if about.is_empty() { format!("`{method}`") } else { format!("`{method}` of `{about}`") };
        Error::new(
            ErrorKind::ProviderBroken,
            format!("provider `{}` {reason} (during {what})", self.inner.name),
        )
        .with_hint(format!("see the provider's log: {}", self.inner.log_path.display()))
    }

    fn answered_error(&self, method: &str, about: &str, e: ErrorBody) -> Error {
        let verb = match method {
            "create" => "creating",
            "update" => "updating",
            "delete" => "deleting",
            "read" => "reading",
            "check" => "checking",
            "diff" => "diffing",
            "configure" => "configuring",
            _ => method,
        };
        let target = if about.is_empty() { String::new() } else { format!(" `{about}`") };
        let mut err = Error::new(ErrorKind::Provider, format!("{verb}{target} failed: {}", e.message));
        err.provider_code = Some(e.code);
        if e.code == ErrorCode::Configuration {
            err = err
                .with_hint(format!("check the `[providers.{}]` table of the stack's file", self.inner.name));
        }
        err
    }

    /// Closes the provider's stdin and waits briefly for it to exit; kills it otherwise.
    pub async fn shutdown(&self) {
        self.inner.tx.lock().unwrap().take();
        let child = self.inner.child.lock().unwrap().take();
        if let Some(mut child) = child
            && tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err()
        {
            child.kill();
        }
    }
}

impl Inner {
    fn break_with(&self, reason: String) {
        {
            let mut broken = self.broken.lock().unwrap();
            if broken.is_none() {
                *broken = Some(reason.clone());
            }
        }
        self.tx.lock().unwrap().take();
        if let Some(mut child) = self.child.lock().unwrap().take() {
            child.kill();
        }
        let waiters: Vec<_> = self.pending.lock().unwrap().drain().collect();
        for (_, w) in waiters {
            let _ = w.send(Err(Failure::Broken(reason.clone())));
        }
    }
}

pub fn human_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.as_secs() < 120 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}m", d.as_secs() / 60)
    }
}
