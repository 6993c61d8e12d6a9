//! The daemon: one per project, it owns the function processes and the API ports, and answers
//! the control API (HTTP on 127.0.0.1, bearer token) that the provider and the CLI call.
//!
//! On start it takes the project's `daemon.lock` (so a second daemon exits at once), writes a
//! fresh token and `daemon.json`, and restores every function and API from the registry, each
//! API on its recorded port. Processes start lazily, on the first invocation.
//!
//! Control API (JSON bodies; `{stack}` and `{name}` percent-encoded):
//!
//! | method and path | what |
//! |---|---|
//! | `GET /v1/status` | pid, port, every function (with its live environments) and API |
//! | `PUT /v1/stacks/{stack}/functions/{name}` | deploy a [`FunctionSpec`]; answers `{function_name, arn, code_hash}` |
//! | `GET`/`DELETE /v1/stacks/{stack}/functions/{name}` | read (404 when absent) / delete (kills its processes) |
//! | `POST /v1/stacks/{stack}/functions/{name}/invoke` | body = event; answers the result, `x-amz-function-error: Unhandled` on error |
//! | `GET /v1/stacks/{stack}/functions/{name}/logs?since_ms=N` | the function's log records, JSON lines |
//! | `PUT /v1/stacks/{stack}/apis/{name}` | deploy `{"routes":[...]}`; answers `{url, port, api_id, routes}` |
//! | `GET`/`DELETE /v1/stacks/{stack}/apis/{name}` | read / delete (closes the port) |
//! | `PUT /v1/stacks/{stack}/schedules/{name}` | deploy a [`crate::schedule_runner::ScheduleSpec`]; answers the schedule with `next_run` |
//! | `GET`/`DELETE /v1/stacks/{stack}/schedules/{name}` | read / delete |
//! | `POST /v1/stacks/{stack}/schedules/{name}/run` | run it now; answers the function's result as `invoke` does |
//! | `PUT`/`GET`/`DELETE /v1/stacks/{stack}/queues/{name}` | a queue ([`crate::queue_control`]) |
//! | `PUT`/`GET`/`DELETE /v1/stacks/{stack}/queue-subscriptions/{name}` | a queue's trigger |
//! | `PUT`/`GET`/`DELETE /v1/stacks/{stack}/topics/{name}` | a topic ([`crate::topics::control`]) |
//! | `PUT`/`GET`/`DELETE /v1/stacks/{stack}/topic-subscriptions/{name}` | a topic's subscription |
//! | `PUT`/`GET`/`DELETE /v1/stacks/{stack}/buckets/{name}`, `.../bucket-notifications/{name}` | a bucket, a bucket notification ([`crate::buckets`]) |
//! | `PUT`/`GET`/`DELETE /v1/stacks/{stack}/tables/{name}` | a table ([`crate::tables::control`]) |
//! | `PUT`/`GET`/`DELETE /v1/stacks/{stack}/table-subscriptions/{name}` | a table's change trigger |
//! | `POST /v1/console/login` | a one-time login link for the console ([`crate::console`]): `{url, expires_in_secs}` |
//! | `POST /v1/shutdown` | stop every process and exit |
//! | `/console/...` | the local console's page and API, with its session cookie; `/console/v1/...` is the control API for the page ([`crate::console`]) |
//!
//! It also serves the AWS-compatible endpoint ([`crate::aws`]) on its own port, recorded in
//! `endpoint.json` so that it stays the same across restarts.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::env::EnvConfig;
use crate::gateway::{self, Api, Routes};
use crate::http::{self, Resp};
use crate::layout::Layout;
use crate::logs::LogSink;
use crate::pool::{InvokeResult, Pool};
use crate::registry::{ApiRecord, ApiSpec, FunctionSpec, Registry};
use crate::runtime::{self, Shims};

/// How often a recorded API whose port was taken at restart tries to bind it again.
const API_RETRY: Duration = Duration::from_secs(1);

/// Raises the soft open-files limit to the hard one. The common soft limit, 1024, is soon
/// reached by a daemon that holds every API's connections, the function processes' pipes and
/// Runtime API sockets, queue logs and bucket files; the hard limit (often 524288) is what the
/// user allowed.
fn raise_open_files_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let before = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                eprintln!("skyform local daemon: open-files limit raised from {before} to {}", lim.rlim_max);
            }
        }
    }
}

/// How long an idle environment stays warm. `SKYFORM_LOCAL_IDLE_SECS` overrides it (tests).
const DEFAULT_IDLE: Duration = Duration::from_secs(300);

pub fn arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:000000000000:function:{name}")
}

struct RunningApi {
    api: Arc<Api>,
    _stop: watch::Sender<bool>,
}

/// Functions by stack, then name. The gateway reads it on every request, so it is a plain
/// `RwLock` and lookups borrow `&str` keys.
#[derive(Default)]
struct FunctionTable {
    stacks: RwLock<HashMap<String, HashMap<String, Arc<Pool>>>>,
}

impl gateway::Functions for FunctionTable {
    fn pool(&self, stack: &str, name: &str) -> Option<Arc<Pool>> {
        self.stacks.read().unwrap().get(stack)?.get(name).cloned()
    }
}

impl crate::aws::FunctionLookup for FunctionTable {
    /// Function names are the account's (as on AWS): the first stack that has one wins.
    fn find(&self, name: &str) -> Option<Arc<Pool>> {
        self.stacks.read().unwrap().values().find_map(|m| m.get(name).cloned())
    }
}

struct Daemon {
    layout: Layout,
    shims: Shims,
    /// Serialises changes, and holds what is saved to disk.
    registry: tokio::sync::Mutex<Registry>,
    functions: Arc<FunctionTable>,
    apis: Mutex<HashMap<(String, String), RunningApi>>,
    logs: Mutex<HashMap<(String, String), LogSink>>,
    token: String,
    port: u16,
    shutdown: Notify,
    /// See [`crate::pool::DEFAULT_SPAWN_GRACE`]; `SKYFORM_LOCAL_SPAWN_GRACE_MS` overrides it.
    spawn_grace: Duration,
    /// `local:Schedule`s and their timer ([`crate::schedule_runner`]).
    schedules: Arc<crate::schedule_runner::Schedules>,
    /// The AWS endpoint's shared state: queues, credentials, port ([`crate::aws`]).
    aws: Arc<crate::aws::AwsContext>,
    /// Queue triggers ([`crate::trigger`]).
    triggers: Arc<crate::trigger::Triggers>,
    /// Table change triggers ([`crate::tables::stream`]).
    table_triggers: Arc<crate::tables::stream::TableTriggers>,
    /// The local console ([`crate::console`]), on the control port under `/console`.
    console: Arc<crate::console::Console>,
}

/// 8 random bytes from the OS.
pub fn os_random_u64() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_err() {
        let t = crate::logs::now_ms() ^ ((std::process::id() as u64) << 32);
        return t.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    u64::from_le_bytes(b)
}

/// Runs the daemon for `project_dir` until `POST /v1/shutdown`, SIGTERM or SIGINT.
pub fn daemon_main(project_dir: PathBuf) -> ExitCode {
    let project_dir = match project_dir.canonicalize() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skyform local daemon: project folder {}: {e}", project_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let layout = Layout::new(&project_dir);
    if let Err(e) = std::fs::create_dir_all(&layout.root) {
        eprintln!("skyform local daemon: cannot create {}: {e}", layout.root.display());
        return ExitCode::FAILURE;
    }
    let lock =
        match std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(layout.daemon_lock())
        {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skyform local daemon: cannot open {}: {e}", layout.daemon_lock().display());
                return ExitCode::FAILURE;
            }
        };
    if lock.try_lock().is_err() {
        eprintln!("skyform local daemon: another daemon already serves {}", project_dir.display());
        return ExitCode::from(3);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("skyform local daemon: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(run(layout));
    drop(lock);
    code
}

async fn run(layout: Layout) -> ExitCode {
    let fail = |what: String| {
        eprintln!("skyform local daemon: {what}");
        ExitCode::FAILURE
    };
    raise_open_files_limit();
    match crate::pgroups::start(&layout.pgroups()) {
        Ok(0) => {}
        Ok(n) => eprintln!(
            "skyform local daemon: killed {n} process(es) that functions of the previous daemon had started"
        ),
        Err(e) => return fail(format!("cannot open {}: {e}", layout.pgroups().display())),
    }
    let shims = match Shims::install(&layout.shims()) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot write runtime shims: {e}")),
    };
    let registry = match Registry::load(&layout.registry()) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let token = format!("{:016x}{:016x}", os_random_u64(), os_random_u64());
    if let Err(e) = write_private(&layout.token(), token.as_bytes()) {
        return fail(format!("cannot write the token: {e}"));
    }
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot open the control port: {e}")),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let idle = std::env::var("SKYFORM_LOCAL_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_IDLE);
    let spawn_grace = std::env::var("SKYFORM_LOCAL_SPAWN_GRACE_MS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
        .unwrap_or(crate::pool::DEFAULT_SPAWN_GRACE);

    let functions = Arc::new(FunctionTable::default());
    let schedules = match crate::schedule_runner::Schedules::load(&layout, functions.clone()) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    // The AWS endpoint: the same port as last time (endpoint.json), else a new one.
    let credentials = match crate::aws::Credentials::load_or_create(&layout.credentials()) {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot read or make the local credentials: {e}")),
    };
    let queues = match crate::queue::Queues::load(&layout.queues()) {
        Ok(q) => Arc::new(q),
        Err(e) => return fail(format!("cannot load the queues in {}: {e}", layout.queues().display())),
    };
    let tables = match crate::tables::Tables::open(&layout.tables()) {
        Ok(t) => Arc::new(t),
        Err(e) => return fail(format!("cannot open the tables: {e}")),
    };
    let recorded_port = std::fs::read(layout.endpoint_json())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["port"].as_u64())
        .map(|p| p as u16);
    let aws_listener = match tokio::net::TcpListener::bind(("127.0.0.1", recorded_port.unwrap_or(0))).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "skyform local daemon: the AWS endpoint cannot listen on its port {} again ({e}); \
                 it moves to a new port: run `skyform local env` again",
                recorded_port.unwrap_or(0)
            );
            match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => return fail(format!("cannot open the AWS endpoint's port: {e}")),
            }
        }
    };
    let aws_port = aws_listener.local_addr().map(|a| a.port()).unwrap_or(0);
    if recorded_port != Some(aws_port)
        && let Err(e) = crate::registry::write_atomic(
            &layout.endpoint_json(),
            serde_json::json!({ "port": aws_port }).to_string().as_bytes(),
        )
    {
        return fail(format!("cannot write endpoint.json: {e}"));
    }
    let topics = match crate::topics::Topics::load(layout.topics(), crate::aws::REGION, crate::aws::ACCOUNT) {
        Ok(t) => Arc::new(t),
        Err(e) => return fail(format!("cannot load the topics: {e}")),
    };
    let buckets = match crate::buckets::Buckets::load(&layout.root, functions.clone(), &credentials, aws_port)
    {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot load the buckets: {e}")),
    };
    let aws = Arc::new(crate::aws::AwsContext {
        port: aws_port,
        credentials,
        queues: queues.clone(),
        functions: functions.clone(),
        topics,
        buckets: buckets.clone(),
        tables: tables.clone(),
    });
    let triggers = match crate::trigger::Triggers::load(&layout, aws.clone()) {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let table_triggers =
        match crate::tables::stream::TableTriggers::load(layout.table_subscriptions(), aws.clone(), tables) {
            Ok(t) => t,
            Err(e) => return fail(e.to_string()),
        };

    let daemon = Arc::new(Daemon {
        layout: layout.clone(),
        shims,
        registry: tokio::sync::Mutex::new(registry.clone()),
        functions,
        apis: Mutex::new(HashMap::new()),
        logs: Mutex::new(HashMap::new()),
        token,
        port,
        shutdown: Notify::new(),
        spawn_grace,
        schedules,
        aws: aws.clone(),
        triggers,
        table_triggers,
        console: Arc::new(crate::console::Console::new(layout.clone(), aws.clone())),
    });

    // Restore what was deployed.
    for (stack, rec) in &registry.stacks {
        for (name, spec) in &rec.functions {
            if let Err(e) = daemon.install_function(stack, name, spec) {
                eprintln!("skyform local daemon: cannot restore function {stack}/{name}: {e}");
            }
        }
        for (name, api) in &rec.apis {
            let routes = match compile_routes(&api.routes) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("skyform local daemon: cannot restore API {stack}/{name}: {e}");
                    continue;
                }
            };
            match tokio::net::TcpListener::bind(("127.0.0.1", api.port)).await {
                Ok(l) => daemon.start_api(stack, name, &api.api_id, l, routes),
                Err(e) => {
                    eprintln!(
                        "skyform local daemon: API {stack}/{name} cannot listen on its port {} again: {e}; \
                         retrying every second",
                        api.port
                    );
                    daemon.clone().retry_api(stack.clone(), name.clone());
                }
            }
        }
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let ctx = aws.clone();
    http::spawn_server(aws_listener, stop_rx.clone(), move |req, peer| {
        let ctx = ctx.clone();
        async move { crate::aws::handle(ctx, req, peer).await }
    });
    let d = daemon.clone();
    http::spawn_server(listener, stop_rx, move |req, peer| {
        let d = d.clone();
        async move { d.control(req, peer).await }
    });
    let info = json!({"pid": std::process::id(), "port": port, "started_ms": crate::logs::now_ms()});
    if let Err(e) = crate::registry::write_atomic(&layout.daemon_json(), info.to_string().as_bytes()) {
        return fail(format!("cannot write daemon.json: {e}"));
    }
    eprintln!(
        "skyform local daemon: pid {} serving {} on 127.0.0.1:{port}",
        std::process::id(),
        layout.project_dir.display()
    );

    // After the functions are restored: a schedule missed while the daemon was down runs now.
    daemon.schedules.spawn();
    daemon.triggers.spawn_all();
    daemon.aws.buckets.start();
    daemon.aws.topics.start(daemon.aws.functions.clone());
    daemon.table_triggers.spawn_all();

    let d = daemon.clone();
    tokio::spawn(async move {
        let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        loop {
            tokio::time::sleep(every).await;
            let pools: Vec<Arc<Pool>> =
                d.functions.stacks.read().unwrap().values().flat_map(|m| m.values().cloned()).collect();
            for p in pools {
                p.reap(idle);
            }
        }
    });

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = daemon.shutdown.notified() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
    eprintln!("skyform local daemon: shutting down");
    drop(stop_tx);
    daemon.apis.lock().unwrap().clear();
    let pools: Vec<Arc<Pool>> =
        daemon.functions.stacks.write().unwrap().drain().flat_map(|(_, m)| m.into_values()).collect();
    for p in pools {
        p.retire(true);
    }
    // Tables: every acknowledged write to disk now, not at the next checkpoint.
    let _ = daemon.aws.tables.checkpoint().await;
    // Only remove daemon.json if it is still ours.
    if let Ok(text) = std::fs::read_to_string(layout.daemon_json())
        && serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["pid"].as_u64())
            == Some(std::process::id() as u64)
    {
        let _ = std::fs::remove_file(layout.daemon_json());
    }
    // Let log writers flush.
    tokio::time::sleep(Duration::from_millis(50)).await;
    ExitCode::SUCCESS
}

/// Writes a file readable only by its owner, atomically.
pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut f =
            std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn compile_routes(routes: &[crate::registry::RouteSpec]) -> Result<Routes, String> {
    let mut out = Vec::new();
    for r in routes {
        out.push(gateway::parse_route(&r.route, &r.function)?);
    }
    Ok(Routes { routes: out })
}

fn new_api_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut n = crate::pool::rand_u64();
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

enum Target {
    Status,
    Shutdown,
    Function(String, String, Option<String>),
    Api(String, String),
    Schedule(String, String, Option<String>),
    Queue(String, String),
    QueueSubscription(String, String),
    Topic(String, String),
    TopicSubscription(String, String),
    Table(String, String),
    TableSubscription(String, String),
}

fn parse_target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", "status"] => Some(Target::Status),
        ["v1", "shutdown"] => Some(Target::Shutdown),
        ["v1", "stacks", s, "functions", n] => {
            Some(Target::Function(http::percent_decode(s), http::percent_decode(n), None))
        }
        ["v1", "stacks", s, "functions", n, action] => Some(Target::Function(
            http::percent_decode(s),
            http::percent_decode(n),
            Some((*action).to_string()),
        )),
        ["v1", "stacks", s, "apis", n] => Some(Target::Api(http::percent_decode(s), http::percent_decode(n))),
        ["v1", "stacks", s, "topics", n] => {
            Some(Target::Topic(http::percent_decode(s), http::percent_decode(n)))
        }
        ["v1", "stacks", s, "topic-subscriptions", n] => {
            Some(Target::TopicSubscription(http::percent_decode(s), http::percent_decode(n)))
        }
        ["v1", "stacks", s, "queues", n] => {
            Some(Target::Queue(http::percent_decode(s), http::percent_decode(n)))
        }
        ["v1", "stacks", s, "queue-subscriptions", n] => {
            Some(Target::QueueSubscription(http::percent_decode(s), http::percent_decode(n)))
        }
        ["v1", "stacks", s, "tables", n] => {
            Some(Target::Table(http::percent_decode(s), http::percent_decode(n)))
        }
        ["v1", "stacks", s, "table-subscriptions", n] => {
            Some(Target::TableSubscription(http::percent_decode(s), http::percent_decode(n)))
        }
        ["v1", "stacks", s, "schedules", n, rest @ ..] if rest.len() <= 1 => Some(Target::Schedule(
            http::percent_decode(s),
            http::percent_decode(n),
            rest.first().map(|a| (*a).to_string()),
        )),
        _ => None,
    }
}

fn bad_request(msg: impl AsRef<str>) -> Resp {
    http::message(StatusCode::BAD_REQUEST, msg.as_ref())
}

fn not_found(msg: impl AsRef<str>) -> Resp {
    http::message(StatusCode::NOT_FOUND, msg.as_ref())
}

impl Daemon {
    /// What every function process gets to reach the AWS endpoint with boto3 and friends.
    fn aws_env(&self) -> Vec<(String, String)> {
        crate::aws::client_env(&self.aws)
    }

    fn log_sink(&self, stack: &str, name: &str) -> LogSink {
        self.logs
            .lock()
            .unwrap()
            .entry((stack.to_string(), name.to_string()))
            .or_insert_with(|| LogSink::open(self.layout.function_log(stack, name)))
            .clone()
    }

    /// Builds the pool for `spec` and swaps it in, retiring the old one.
    fn install_function(&self, stack: &str, name: &str, spec: &FunctionSpec) -> Result<(), String> {
        let runtime = runtime::normalize(&spec.runtime).ok_or_else(|| {
            format!("unknown runtime `{}`; valid: {}", spec.runtime, runtime::VALID_RUNTIMES)
        })?;
        let artifact = self.layout.artifact(&spec.code_hash);
        if !artifact.is_dir() {
            return Err(format!(
                "artifact {} is missing; run `skyform up` to upload the code again",
                artifact.display()
            ));
        }
        let (program, args) = runtime::command(
            runtime,
            &spec.handler,
            &spec.environment,
            &artifact,
            &self.shims,
            spec.interpreter.as_deref(),
        );
        // Lambda's runtime packages (boto3) and the code's folder in the project, which the
        // shims use for `sys.path` and to name the user's files in tracebacks.
        let mut env = spec.environment.clone();
        if let Some(d) = &spec.runtime_dir {
            env.entry("LAMBDA_RUNTIME_DIR".into()).or_insert_with(|| d.clone());
        }
        if let Some(s) = &spec.source {
            env.entry("SKYFORM_SOURCE_DIR".into()).or_insert_with(|| s.clone());
        }
        let cfg = EnvConfig {
            stack: stack.to_string(),
            name: name.to_string(),
            arn: arn(name),
            program,
            args,
            artifact,
            handler: spec.handler.clone(),
            env,
            aws_env: self.aws_env(),
            timeout: Duration::from_secs_f64(spec.timeout.max(0.001)),
            memory: spec.memory,
        };
        let pool = Arc::new(Pool::with_spawn_grace(
            cfg,
            spec.code_hash.clone(),
            spec.reserved_concurrency,
            self.log_sink(stack, name),
            self.spawn_grace,
        ));
        let old = self
            .functions
            .stacks
            .write()
            .unwrap()
            .entry(stack.to_string())
            .or_default()
            .insert(name.to_string(), pool);
        if let Some(old) = old {
            old.retire(false);
        }
        Ok(())
    }

    fn start_api(
        &self,
        stack: &str,
        name: &str,
        api_id: &str,
        listener: tokio::net::TcpListener,
        routes: Routes,
    ) {
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let api = Arc::new(Api {
            stack: stack.to_string(),
            api_id: api_id.to_string(),
            port,
            routes: RwLock::new(Arc::new(routes)),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let a = api.clone();
        let functions = self.functions.clone();
        http::spawn_server(listener, stop_rx, move |req, peer| {
            let a = a.clone();
            let f = functions.clone();
            async move { gateway::handle(&a, &*f, req, peer).await }
        });
        self.apis
            .lock()
            .unwrap()
            .insert((stack.to_string(), name.to_string()), RunningApi { api, _stop: stop_tx });
    }

    /// Binds a recorded API's port again, every second, until it is free (then the API is
    /// served again), deleted, or deployed anew.
    fn retry_api(self: Arc<Self>, stack: String, name: String) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(API_RETRY).await;
                if self.apis.lock().unwrap().contains_key(&(stack.clone(), name.clone())) {
                    return;
                }
                let reg = self.registry.lock().await;
                let Some(api) = reg.stacks.get(&stack).and_then(|s| s.apis.get(&name)).cloned() else {
                    return;
                };
                let Ok(routes) = compile_routes(&api.routes) else { return };
                if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", api.port)).await {
                    self.start_api(&stack, &name, &api.api_id, l, routes);
                    eprintln!(
                        "skyform local daemon: API {stack}/{name} listens on its port {} again",
                        api.port
                    );
                    return;
                }
            }
        });
    }

    async fn control(self: Arc<Self>, mut req: Request<Incoming>, _peer: SocketAddr) -> Resp {
        // The console's page calls the control API under /console/v1/ with its session cookie
        // (crate::console); everything else under /console is the console's.
        let path = req.uri().path();
        let mut via_console = false;
        if let Some(rest) = path.strip_prefix("/console/v1/") {
            if !self.console.allows_control(&req, self.port) {
                return http::message(
                    StatusCode::UNAUTHORIZED,
                    "not logged in to the console, or no CSRF header",
                );
            }
            let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
            match format!("/v1/{rest}{query}").parse() {
                Ok(uri) => *req.uri_mut() = uri,
                Err(_) => return bad_request("bad path"),
            }
            via_console = true;
        } else if path == "/console" || path.starts_with("/console/") {
            return self.console.serve(req, self.port).await;
        }
        let bearer = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t == self.token);
        if bearer && req.method() == Method::POST && req.uri().path() == "/v1/console/login" {
            return http::json(StatusCode::OK, &self.console.new_login(self.port));
        }
        let authorized = bearer || via_console;
        if !authorized {
            return http::message(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (it is in .skyform/local/token)",
            );
        }
        // Buckets and their notifications (crate::buckets) route themselves.
        if let ["v1", "stacks", s, kind @ ("buckets" | "bucket-notifications"), n] =
            req.uri().path().trim_start_matches('/').split('/').collect::<Vec<_>>().as_slice()
        {
            let (s, kind, n) = (http::percent_decode(s), kind.to_string(), http::percent_decode(n));
            let method = req.method().clone();
            return match http::body_bytes(req).await {
                Ok((_, body)) => self.aws.buckets.control(&method, &kind, &s, &n, &body).await,
                Err(e) => bad_request(format!("cannot read the body: {e}")),
            };
        }
        let Some(target) = parse_target(req.uri().path()) else {
            return not_found("unknown control API path");
        };
        let method = req.method().clone();
        let query = req.uri().query().unwrap_or("").to_string();
        let (_, body) = match http::body_bytes(req).await {
            Ok(x) => x,
            Err(e) => return bad_request(format!("cannot read the body: {e}")),
        };
        match (method, target) {
            (Method::GET, Target::Status) => http::json(StatusCode::OK, &self.status().await),
            (Method::POST, Target::Shutdown) => {
                self.shutdown.notify_one();
                http::json(StatusCode::OK, &json!({"stopping": true}))
            }
            (Method::PUT, Target::Function(s, n, None)) => self.put_function(&s, &n, &body).await,
            (Method::GET, Target::Function(s, n, None)) => {
                let reg = self.registry.lock().await;
                match reg.stacks.get(&s).and_then(|r| r.functions.get(&n)) {
                    Some(spec) => http::json(StatusCode::OK, &function_view(&n, spec)),
                    None => not_found(format!("no function `{n}` in stack `{s}`")),
                }
            }
            (Method::DELETE, Target::Function(s, n, None)) => self.delete_function(&s, &n).await,
            (Method::POST, Target::Function(s, n, Some(a))) if a == "invoke" => {
                let Some(pool) = gateway::Functions::pool(&*self.functions, &s, &n) else {
                    return not_found(format!(
                        "no function `{n}` in stack `{s}`; deploy it with `skyform up`"
                    ));
                };
                if body.len() > gateway::MAX_INVOKE_PAYLOAD {
                    return http::message(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!(
                            "the payload is {} bytes; Lambda takes at most {} bytes (6 MB) for a \
                             synchronous invocation: send a reference (e.g. a bucket key) instead",
                            body.len(),
                            gateway::MAX_INVOKE_PAYLOAD
                        ),
                    );
                }
                // Lambda takes only JSON events; no payload is `{}`.
                let body =
                    if body.iter().all(u8::is_ascii_whitespace) { Bytes::from_static(b"{}") } else { body };
                if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                    return bad_request(format!("the payload is not valid JSON: {e}"));
                }
                let invoked = pool.invoke(body).await;
                let (payload, error) = match invoked.result {
                    InvokeResult::Ok(b) => (b, None),
                    InvokeResult::Error { body, .. } => (body, Some("Unhandled")),
                };
                let mut r = http::response(StatusCode::OK, "application/json", payload);
                if let Ok(v) = invoked.request_id.parse() {
                    r.headers_mut().insert("x-amzn-requestid", v);
                }
                if let Some(e) = error {
                    r.headers_mut()
                        .insert("x-amz-function-error", hyper::header::HeaderValue::from_static(e));
                }
                r
            }
            (Method::GET, Target::Function(s, n, Some(a))) if a == "logs" => {
                let since = query
                    .split('&')
                    .find_map(|p| p.strip_prefix("since_ms="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let path = self.layout.function_log(&s, &n);
                match tokio::task::spawn_blocking(move || crate::logs::read_from(&path, 0, since)).await {
                    Ok(Ok((records, _))) => {
                        let mut out = Vec::new();
                        for r in records {
                            let _ = serde_json::to_writer(&mut out, &r);
                            out.push(b'\n');
                        }
                        http::response(StatusCode::OK, "application/x-ndjson", out)
                    }
                    _ => http::message(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the log"),
                }
            }
            (Method::PUT, Target::Api(s, n)) => self.put_api(&s, &n, &body).await,
            (m, Target::Schedule(s, n, a)) => self.schedules.control(&m, &s, &n, a.as_deref(), &body).await,
            (m, Target::Queue(s, n)) => crate::queue_control::queue(&self.aws, &m, &s, &n, &body).await,
            (m, Target::QueueSubscription(s, n)) => self.triggers.control(&m, &s, &n, &body).await,
            (m, Target::Topic(s, n)) => crate::topics::control::topic(&self.aws.topics, &m, &s, &n, &body),
            (m, Target::TopicSubscription(s, n)) => {
                crate::topics::control::subscription(&self.aws.topics, &m, &s, &n, &body)
            }
            (m, Target::Table(s, n)) => crate::tables::control::table(&self.aws, &m, &s, &n, &body).await,
            (m, Target::TableSubscription(s, n)) => self.table_triggers.control(&m, &s, &n, &body).await,
            (Method::GET, Target::Api(s, n)) => {
                let reg = self.registry.lock().await;
                match reg.stacks.get(&s).and_then(|r| r.apis.get(&n)) {
                    Some(rec) => {
                        let mut view = api_view(rec);
                        view["listening"] =
                            json!(self.apis.lock().unwrap().contains_key(&(s.clone(), n.clone())));
                        http::json(StatusCode::OK, &view)
                    }
                    None => not_found(format!("no API `{n}` in stack `{s}`")),
                }
            }
            (Method::DELETE, Target::Api(s, n)) => {
                let mut reg = self.registry.lock().await;
                let existed = reg.stack_mut(&s).apis.remove(&n).is_some();
                if let Err(e) = reg.save(&self.layout.registry()) {
                    return http::message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("cannot save the registry: {e}"),
                    );
                }
                // Dropping the stop sender closes the port and every open connection.
                self.apis.lock().unwrap().remove(&(s.clone(), n.clone()));
                if existed {
                    http::json(StatusCode::OK, &json!({"deleted": true}))
                } else {
                    not_found(format!("no API `{n}` in stack `{s}`"))
                }
            }
            _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    async fn put_function(&self, stack: &str, name: &str, body: &Bytes) -> Resp {
        let spec: FunctionSpec = match serde_json::from_slice(body) {
            Ok(s) => s,
            Err(e) => return bad_request(format!("bad function spec: {e}")),
        };
        let mut reg = self.registry.lock().await;
        let unchanged = reg.stacks.get(stack).and_then(|r| r.functions.get(name)) == Some(&spec)
            && gateway::Functions::pool(&*self.functions, stack, name).is_some();
        if !unchanged {
            if let Err(e) = self.install_function(stack, name, &spec) {
                return bad_request(e);
            }
            reg.stack_mut(stack).functions.insert(name.to_string(), spec.clone());
            if let Err(e) = reg.save(&self.layout.registry()) {
                return http::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot save the registry: {e}"),
                );
            }
        }
        http::json(StatusCode::OK, &function_view(name, &spec))
    }

    async fn delete_function(&self, stack: &str, name: &str) -> Resp {
        let mut reg = self.registry.lock().await;
        let existed = reg.stack_mut(stack).functions.remove(name).is_some();
        if let Err(e) = reg.save(&self.layout.registry()) {
            return http::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot save the registry: {e}"),
            );
        }
        let pool = self.functions.stacks.write().unwrap().get_mut(stack).and_then(|m| m.remove(name));
        if let Some(p) = pool {
            p.retire(true);
        }
        if existed {
            http::json(StatusCode::OK, &json!({"deleted": true}))
        } else {
            not_found(format!("no function `{name}` in stack `{stack}`"))
        }
    }

    async fn put_api(&self, stack: &str, name: &str, body: &Bytes) -> Resp {
        let spec: ApiSpec = match serde_json::from_slice(body) {
            Ok(s) => s,
            Err(e) => return bad_request(format!("bad API spec: {e}")),
        };
        let routes = match compile_routes(&spec.routes) {
            Ok(r) => r,
            Err(e) => return bad_request(e),
        };
        let mut reg = self.registry.lock().await;
        for r in &spec.routes {
            if !reg.stacks.get(stack).is_some_and(|s| s.functions.contains_key(&r.function)) {
                return bad_request(format!(
                    "route `{}` names function `{}`, which is not deployed in stack `{stack}`; \
                     declare the function in the program (and pass its name to the route)",
                    r.route, r.function
                ));
            }
        }
        let existing = reg.stacks.get(stack).and_then(|s| s.apis.get(name)).cloned();
        let running =
            self.apis.lock().unwrap().get(&(stack.to_string(), name.to_string())).map(|r| r.api.clone());
        let record = match (existing, running) {
            (Some(rec), Some(api)) => {
                *api.routes.write().unwrap() = Arc::new(routes);
                ApiRecord { routes: spec.routes.clone(), ..rec }
            }
            (existing, _) => {
                // New, or recorded but not listening (its port was taken at restart): bind.
                let want = existing.as_ref().map(|r| r.port).unwrap_or(0);
                let listener = match tokio::net::TcpListener::bind(("127.0.0.1", want)).await {
                    Ok(l) => l,
                    Err(e) if want != 0 => {
                        return http::message(
                            StatusCode::CONFLICT,
                            &format!(
                                "API `{name}` cannot listen on its port {want} again: {e}; free the port"
                            ),
                        );
                    }
                    Err(e) => {
                        return http::message(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &format!("cannot open a port: {e}"),
                        );
                    }
                };
                let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                let api_id = existing.map(|r| r.api_id).unwrap_or_else(new_api_id);
                self.start_api(stack, name, &api_id, listener, routes);
                ApiRecord { routes: spec.routes.clone(), port, api_id }
            }
        };
        reg.stack_mut(stack).apis.insert(name.to_string(), record.clone());
        if let Err(e) = reg.save(&self.layout.registry()) {
            return http::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot save the registry: {e}"),
            );
        }
        http::json(StatusCode::OK, &api_view(&record))
    }

    async fn status(&self) -> serde_json::Value {
        let reg = self.registry.lock().await.clone();
        let mut functions = Vec::new();
        let mut apis = Vec::new();
        for (stack, rec) in &reg.stacks {
            for (name, spec) in &rec.functions {
                let pool = gateway::Functions::pool(&*self.functions, stack, name);
                functions.push(json!({
                    "stack": stack,
                    "name": name,
                    "runtime": spec.runtime,
                    "code_hash": spec.code_hash,
                    "environments": pool.map(|p| p.environments()).unwrap_or(0),
                }));
            }
            for (name, api) in &rec.apis {
                let listening = self.apis.lock().unwrap().contains_key(&(stack.clone(), name.clone()));
                apis.push(json!({
                    "stack": stack,
                    "name": name,
                    "url": format!("http://127.0.0.1:{}", api.port),
                    "port": api.port,
                    "api_id": api.api_id,
                    "listening": listening,
                    "routes": api.routes,
                }));
            }
        }
        json!({
            "pid": std::process::id(),
            "port": self.port,
            "project_dir": self.layout.project_dir,
            "functions": functions,
            "apis": apis,
            "schedules": self.schedules.status().await,
            "endpoint": self.aws.endpoint(),
            "queues": crate::queue_control::status(&self.aws),
            "queue_subscriptions": self.triggers.status(),
            "topics": crate::topics::control::status(&self.aws.topics),
            "buckets": self.aws.buckets.status(),
            "tables": crate::tables::control::status(&self.aws),
            "table_subscriptions": self.table_triggers.status(),
        })
    }
}

fn function_view(name: &str, spec: &FunctionSpec) -> serde_json::Value {
    json!({"function_name": name, "arn": arn(name), "code_hash": spec.code_hash, "spec": spec})
}

fn api_view(rec: &ApiRecord) -> serde_json::Value {
    json!({
        "url": format!("http://127.0.0.1:{}", rec.port),
        "port": rec.port,
        "api_id": rec.api_id,
        "routes": rec.routes,
    })
}
