//! The local cloud: a per-project daemon that runs functions as warm processes behind the AWS
//! Lambda Runtime API and serves HTTP APIs with API Gateway v2 events, and the `local`
//! provider that deploys to it through its control API.
//!
//! ```text
//! engine ──NDJSON──▶ provider (skyform provider local) ──HTTP control API──▶ daemon
//!                                                                            │
//!        curl ──HTTP──▶ gateway (one port per API) ──event──▶ pool ──▶ env ──┤ Runtime API
//!                                                                            ▼
//!                                                     function process (python3/node/bootstrap)
//! ```
//!
//! Module map: [`layout`] (where data lives), [`registry`] (what is deployed, persisted),
//! [`artifact`] (content-addressed code), [`runtime`] (how a runtime is started; the shims),
//! [`env`](mod@env) (one process and its Runtime API listener), [`pool`] (warm environments,
//! concurrency, invocation), [`gateway`] (HTTP ⇄ events), [`logs`](mod@logs), [`daemon`] (control API),
//! [`client`] (the daemon's client, used by the provider and the CLI), [`provider`],
//! [`schedule`] (EventBridge Scheduler expressions and their next run; pure: no IO, no clock),
//! [`schedule_runner`] (the daemon's schedules and their timer), [`console`] (the local console,
//! a web page on the control port), [`trace`] (trace ids through every delivery; the recent
//! invocations and steps).
//!
//! **Architecture Invariant:** the library never prints; the daemon writes only to its own log
//! (its stderr, redirected to `.skyform/local/daemon.log`).
//!
//! **Architecture Invariant:** every function process runs in its own process group with
//! `PR_SET_PDEATHSIG`; dropping its environment kills the group, so no process outlives its
//! function or its daemon; after a `kill -9` of the daemon, what a function started itself
//! lives until the next daemon starts and kills it ([`pgroups`]).

pub mod aws;

/// The allocator the daemon's binaries set as their global allocator (mimalloc).
pub use mimalloc::MiMalloc as Allocator;
// Function code as artifacts and its dependencies live in `skyform-build`, shared with the aws
// provider; re-exported so `crate::artifact` and `crate::deps` read as before.
pub use skyform_build::{artifact, deps};
pub mod buckets;
pub mod client;
pub mod console;
pub mod daemon;
pub mod durability;
pub mod env;
pub mod gateway;
pub mod http;
pub mod layout;
pub mod logs;
pub mod outbox;
pub mod pgroups;
pub mod pool;
pub mod provider;
pub mod queue;
pub mod queue_control;
pub mod registry;
pub mod runtime;
pub mod schedule;
pub mod schedule_runner;
pub mod tables;
pub mod topics;
pub mod trace;
pub mod trigger;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

pub use client::LocalError;
pub use daemon::daemon_main;
pub use logs::LogRecord;

/// Runs the `local` provider on stdin/stdout (`skyform provider local`).
pub fn provider_main() -> ExitCode {
    match skyform_protocol::serve_blocking(provider::LocalProvider::default()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skyform provider local: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What `invoke` got back.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeOutput {
    pub request_id: String,
    /// The function's result (JSON), or Lambda's error JSON when `function_error`.
    pub payload: Vec<u8>,
    /// `Some("Unhandled")` when the function failed (raised, timed out, crashed, failed to
    /// start), like Lambda's `X-Amz-Function-Error`.
    pub function_error: Option<String>,
}

/// Invokes a deployed function with `payload` (an event, JSON) and waits for its result.
/// Starts the project's daemon when none runs.
pub async fn invoke(
    project_dir: &Path,
    stack: &str,
    function: &str,
    payload: &[u8],
) -> Result<InvokeOutput, LocalError> {
    let c = client::ensure_daemon(project_dir, None).await?;
    let path = format!("{}/invoke", client::function_path(stack, function));
    let a = c.request("POST", &path, payload).await?;
    if a.status == 404 {
        return Err(LocalError {
            message: format!(
                "no function `{function}` is deployed in stack `{stack}`; run `skyform up` first"
            ),
        });
    }
    if a.status != 200 {
        return Err(LocalError { message: format!("invoke of `{function}` failed: {}", a.message()) });
    }
    Ok(InvokeOutput {
        request_id: a.header("x-amzn-requestid").unwrap_or_default().to_string(),
        function_error: a.header("x-amz-function-error").map(str::to_string),
        payload: a.body,
    })
}

/// Runs a deployed schedule now (`skyform local run-schedule`): invokes its function with the
/// event the schedule sends, waits for the result, and leaves the next run where it was.
pub async fn run_schedule(
    project_dir: &Path,
    stack: &str,
    schedule: &str,
) -> Result<InvokeOutput, LocalError> {
    let c = client::ensure_daemon(project_dir, None).await?;
    let path = format!("{}/run", provider::schedule_path(stack, schedule));
    let a = c.request("POST", &path, &[]).await?;
    if a.status == 404 {
        return Err(LocalError { message: a.message() });
    }
    if a.status != 200 {
        return Err(LocalError { message: format!("run of schedule `{schedule}` failed: {}", a.message()) });
    }
    Ok(InvokeOutput {
        request_id: a.header("x-amzn-requestid").unwrap_or_default().to_string(),
        function_error: a.header("x-amz-function-error").map(str::to_string),
        payload: a.body,
    })
}

/// Reads a function's log records at or after `since_ms` (epoch ms), in order, passing each
/// to `on_record`; with `follow`, keeps waiting for new records until `on_record` returns
/// false. Reads the log file directly: works with the daemon stopped.
pub async fn logs(
    project_dir: &Path,
    stack: &str,
    function: &str,
    since_ms: Option<u64>,
    follow: bool,
    on_record: &mut (dyn FnMut(LogRecord) -> bool + Send),
) -> Result<(), LocalError> {
    let layout = layout::Layout::new(project_dir);
    let path = layout.function_log(stack, function);
    if !path.exists() && !follow {
        let reg = registry::Registry::load(&layout.registry())
            .map_err(|e| LocalError { message: e.to_string() })?;
        if !reg.stacks.get(stack).is_some_and(|s| s.functions.contains_key(function)) {
            return Err(LocalError {
                message: format!(
                    "no function `{function}` is deployed in stack `{stack}` (and it has no logs)"
                ),
            });
        }
    }
    logs::follow_file(&path, since_ms.unwrap_or(0), follow, on_record)
        .await
        .map_err(|e| LocalError { message: format!("cannot read {}: {e}", path.display()) })
}

/// `skyform local status`: the running daemon and what it serves; `None` when none runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub port: u16,
    pub project_dir: PathBuf,
    pub functions: Vec<FunctionStatus>,
    pub apis: Vec<ApiStatus>,
    #[serde(default)]
    pub schedules: Vec<ScheduleStatus>,
    /// The AWS-compatible endpoint (`http://127.0.0.1:PORT`).
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub queues: Vec<QueueStatus>,
    #[serde(default)]
    pub queue_subscriptions: Vec<serde_json::Value>,
    #[serde(default)]
    pub topics: Vec<TopicStatus>,
    /// `{"buckets": [{"name", "objects"}], "notifications": [...], "pending_events"}`.
    #[serde(default)]
    pub buckets: serde_json::Value,
    /// `[{"name", "arn", "items", "stream"}]`.
    #[serde(default)]
    pub tables: Vec<serde_json::Value>,
}

impl DaemonStatus {
    /// The buckets the daemon serves, as `(name, object count)`.
    pub fn bucket_list(&self) -> Vec<(String, u64)> {
        self.buckets["buckets"]
            .as_array()
            .map(|bs| {
                bs.iter()
                    .map(|b| {
                        (b["name"].as_str().unwrap_or("").to_string(), b["objects"].as_u64().unwrap_or(0))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Nothing at all is deployed or made on this local cloud, by any stack or through its APIs.
    pub fn is_idle(&self) -> bool {
        self.functions.is_empty()
            && self.apis.is_empty()
            && self.schedules.is_empty()
            && self.queues.is_empty()
            && self.topics.is_empty()
            && self.tables.is_empty()
            && self.bucket_list().is_empty()
    }
}

/// A topic and its subscriptions, as `skyform local status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicStatus {
    pub name: String,
    pub arn: String,
    pub fifo: bool,
    /// The stack whose `local:Topic` made it; `None` when made with `CreateTopic`.
    pub stack: Option<String>,
    /// `sqs QUEUE_NAME` or `lambda FUNCTION_NAME`, with `(raw)` and `(filtered)` marks.
    pub subscriptions: Vec<String>,
}

/// A queue and its depth, as `skyform local status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStatus {
    pub name: String,
    pub url: String,
    pub arn: String,
    pub fifo: bool,
    /// Messages that can be received now.
    pub visible: usize,
    /// Received and not yet deleted (invisible until their visibility timeout ends).
    pub in_flight: usize,
    /// Sent with a delay that has not passed.
    pub delayed: usize,
    /// Syncs (`fdatasync`) of its log and lines written since the daemon started: with group
    /// commit, fewer syncs than lines.
    #[serde(default)]
    pub log_syncs: u64,
    #[serde(default)]
    pub log_records: u64,
}

/// The variables that point AWS SDKs and the AWS CLI at the project's local cloud
/// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`), starting the daemon (`exe local daemon`) when none runs.
pub fn aws_env(project_dir: &Path, exe: Option<&Path>) -> Result<Vec<(String, String)>, LocalError> {
    let status = start_with_exe(project_dir, exe)?;
    let layout = layout::Layout::new(project_dir);
    let port = status
        .endpoint
        .as_deref()
        .and_then(|e| e.rsplit(':').next())
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| LocalError {
            message: "the running daemon has no AWS endpoint; restart it with `skyform local stop`".into(),
        })?;
    let creds = aws::Credentials::load_or_create(&layout.credentials())
        .map_err(|e| LocalError { message: format!("cannot read the local credentials: {e}") })?;
    Ok(aws::env_for(port, &creds))
}

/// A fresh login link to the local console ([`console`]) of the project's local cloud:
/// `http://127.0.0.1:PORT/console/login?code=CODE`. It works once, within ten minutes; opening
/// it logs the browser in (a session cookie) and shows the console. Starts the daemon (`exe
/// local daemon`, `None`: [`client::daemon_exe`]) when none runs. `skyform local console` and
/// `skyform dev` print it.
pub async fn console_login_link(project_dir: &Path, exe: Option<&Path>) -> Result<String, LocalError> {
    let c = client::ensure_daemon(project_dir, exe).await?;
    let a = c.request("POST", "/v1/console/login", &[]).await?;
    if a.status != 200 {
        return Err(LocalError {
            message: format!(
                "the local cloud gave no console login link ({}); a daemon started by an older skyform has no console: \
                 `skyform local stop`, then run this again",
                a.message()
            ),
        });
    }
    a.json()["url"].as_str().map(str::to_string).ok_or_else(|| LocalError {
        message: "the local cloud's answer to a console login has no url".into(),
    })
}

/// A deployed `local:Schedule`, as `skyform local status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleStatus {
    pub stack: String,
    pub name: String,
    pub expression: String,
    pub timezone: String,
    pub function: String,
    pub enabled: bool,
    /// The next firing, `2030-01-31T12:00:00Z`; `None` when disabled or when nothing is left.
    pub next_run: Option<String>,
    /// How many times it ran (on time, late or by `run-schedule`).
    pub runs: u64,
    #[serde(default)]
    pub last_run: Option<ScheduleRun>,
}

/// A schedule's last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRun {
    /// When it was due, `2030-01-31T12:00:00Z`.
    pub scheduled_time: Option<String>,
    /// `schedule` (on time), `late` (missed while the daemon was down) or `manual`.
    pub trigger: String,
    /// The function's error type when it failed (after its retries).
    pub error: Option<String>,
    pub finished: bool,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionStatus {
    pub stack: String,
    pub name: String,
    pub runtime: String,
    pub code_hash: String,
    /// Live execution environments (processes).
    pub environments: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiStatus {
    pub stack: String,
    pub name: String,
    pub url: String,
    pub port: u16,
    pub api_id: String,
    /// False when the API's port could not be opened again after a restart.
    pub listening: bool,
}

/// Runs `f` on a runtime of its own, on a thread of its own, so that these blocking entry
/// points work both inside and outside an async context.
fn blocking<T: Send>(f: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds")
                .block_on(f)
        })
        .join()
        .expect("the local cloud client thread panicked")
    })
}

async fn status_async(project_dir: &Path) -> Result<Option<DaemonStatus>, LocalError> {
    let Some(c) = client::Client::probe(&layout::Layout::new(project_dir)).await? else { return Ok(None) };
    let a = c.request("GET", "/v1/status", &[]).await?;
    serde_json::from_slice(&a.body)
        .map(Some)
        .map_err(|e| LocalError { message: format!("the daemon sent an unreadable status: {e}") })
}

/// The project's daemon and what it serves, or `None` when no daemon runs.
pub fn status(project_dir: &Path) -> Result<Option<DaemonStatus>, LocalError> {
    blocking(status_async(project_dir))
}

/// Starts the project's daemon (no-op when it runs); returns its status. The daemon is
/// `$SKYFORM_EXE local daemon --project-dir DIR`, or this executable when that is unset.
pub fn start(project_dir: &Path) -> Result<DaemonStatus, LocalError> {
    start_with_exe(project_dir, None)
}

/// [`start`] with the executable that runs `local daemon --project-dir DIR` given.
pub fn start_with_exe(project_dir: &Path, exe: Option<&Path>) -> Result<DaemonStatus, LocalError> {
    blocking(async {
        client::ensure_daemon(project_dir, exe).await?;
        status_async(project_dir)
            .await?
            .ok_or_else(|| LocalError { message: "the daemon stopped right after starting".into() })
    })
}

/// Stops the project's daemon and every function process; returns whether one was running.
/// What is deployed stays recorded: the next `start` (or deploy, or invoke) brings it back.
/// A daemon that does not answer (stopped with `kill -STOP`, or wedged) is killed; its
/// function processes die with it (`PR_SET_PDEATHSIG`) and the next daemon ends what they
/// started ([`pgroups`]).
pub fn stop(project_dir: &Path) -> Result<bool, LocalError> {
    blocking(async {
        let layout = layout::Layout::new(project_dir);
        let c = match client::Client::probe(&layout).await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(false),
            Err(_) => {
                let Some(c) = client::Client::recorded(&layout) else { return Ok(false) };
                return kill_daemon(c.pid).await.map(|()| true);
            }
        };
        if c.request_within("POST", "/v1/shutdown", &[], client::STATUS_TIMEOUT).await.is_err() {
            return kill_daemon(c.pid).await.map(|()| true);
        }
        // Wait for the process to go, so that a following start does not race it.
        for _ in 0..200 {
            if !process_alive(c.pid) {
                return Ok(true);
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        Err(LocalError { message: format!("the daemon (pid {}) did not stop within 5 s", c.pid) })
    })
}

/// Kills a daemon that does not answer, and waits for it to go.
async fn kill_daemon(pid: u32) -> Result<(), LocalError> {
    // Only a skyform daemon: daemon.json may name a pid that a reboot gave to another program.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !cmdline.windows(13).any(|w| w == b"local\0daemon\0") {
        return Err(LocalError {
            message: format!(
                "pid {pid} in daemon.json does not answer and is not a skyform daemon; remove .skyform/local/daemon.json"
            ),
        });
    }
    // SAFETY: kill(2) with a pid read from daemon.json, whose process answered once on the
    // project's control port; SIGKILL also ends a stopped process.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    for _ in 0..200 {
        if !process_alive(pid) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Err(LocalError { message: format!("the daemon (pid {pid}) did not die within 5 s of SIGKILL") })
}

/// Whether `pid` runs (a zombie, exited but not yet reaped, does not).
pub(crate) fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}
