//! `skyform local ...`: the local cloud daemon of this project.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::{Error, Result};

#[derive(clap::Subcommand, Debug)]
pub enum LocalCommand {
    /// Show whether the local cloud runs, and what it serves.
    Status {
        /// Print as JSON (`null` when the local cloud is not running); schema in
        /// docs/json/local-status.schema.json.
        #[arg(long)]
        json: bool,
    },
    /// Start the local cloud (it also starts on demand).
    Start,
    /// Stop the local cloud and every function process; what is deployed stays recorded.
    Stop,
    /// Run a schedule now: invoke its function with the schedule's event and print the result.
    ///
    /// The event is what the schedule sends when it comes due: its payload (with Scheduler's
    /// `<aws.scheduler.scheduled-time>` and other keywords filled in), or `{}`. The schedule's
    /// next run does not move. Works on a disabled schedule too. The stack is `--stack`,
    /// `SKYFORM_STACK`, the project's only stack, or `dev`.
    RunSchedule {
        /// The schedule's name (its resource name, as `skyform local status` lists it).
        name: String,
        /// Print `{"schedule", "request_id", "payload", "function_error"}` as JSON; schema in
        /// docs/json/run-schedule.schema.json.
        #[arg(long)]
        json: bool,
    },
    /// Print `export` lines that point the AWS CLI and AWS SDKs at the local cloud's
    /// AWS-compatible endpoint: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION and AWS_DEFAULT_REGION (the key pair is the project's, in
    /// .skyform/local/credentials.json). Use `eval "$(skyform local env)"`, then e.g.
    /// `aws sqs list-queues`. Starts the local cloud if it is not running.
    Env {
        /// Print the variables as one JSON object instead; schema in
        /// docs/json/local-env.schema.json.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time login link to the local console, a live web page of the whole app.
    ///
    /// The console shows the stack's resources (a tree and a graph, inputs and outputs with secrets masked, the last
    /// operations), functions (recent invocations with their events and logs, invoke with an
    /// edited event, the HTTP routes with a request form), queues (depth, in flight, dead
    /// letters; peek, send, redrive, purge), buckets (browse, upload, download, delete), tables
    /// (browse, query, edit an item), schedules (next runs, run now) and traces (one request
    /// across queues, functions and topics, as a timeline with each step's logs).
    ///
    /// The link (http://127.0.0.1:PORT/console/login?code=...) works once, within ten minutes:
    /// opening it logs the browser in with a session cookie. Run the command again for another
    /// browser. Starts the local cloud if it is not running.
    Console,
    /// Run the daemon in the foreground (the provider starts it this way).
    #[command(hide = true)]
    Daemon {
        #[arg(long)]
        project_dir: std::path::PathBuf,
    },
}

fn local_error(e: skyform_local::LocalError) -> Error {
    Error::user(
        e.message,
        "see .skyform/local/daemon.log; `skyform local stop` then `skyform local start` restarts it",
    )
}

pub fn run_daemon(project_dir: std::path::PathBuf) -> ExitCode {
    skyform_local::daemon_main(project_dir)
}

pub async fn run(g: &Global, cmd: LocalCommand) -> Result<ExitCode> {
    let project = g.project()?;
    match cmd {
        LocalCommand::Status { json } => match skyform_local::status(&project.dir).map_err(local_error)? {
            None if json => crate::cli::render::print_json(&serde_json::Value::Null),
            None => println!(
                "the local cloud is not running (it starts on the next `skyform up`, or `skyform local start`)"
            ),
            Some(s) if json => crate::cli::render::print_json(&serde_json::to_value(&s).expect("json")),
            Some(s) => print_status(&s),
        },
        LocalCommand::Start => {
            let exe = std::env::current_exe().map_err(|e| Error::io("finding the skyform executable", e))?;
            let s = skyform_local::start_with_exe(&project.dir, Some(&exe)).map_err(local_error)?;
            print_status(&s);
        }
        LocalCommand::Stop => {
            if skyform_local::stop(&project.dir).map_err(local_error)? {
                println!("stopped the local cloud; `skyform local start` brings back what is deployed");
            } else {
                println!("the local cloud was not running");
            }
        }
        LocalCommand::Env { json } => {
            let exe = std::env::current_exe().map_err(|e| Error::io("finding the skyform executable", e))?;
            let vars = skyform_local::aws_env(&project.dir, Some(&exe)).map_err(local_error)?;
            if json {
                let map: serde_json::Map<String, serde_json::Value> =
                    vars.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
                crate::cli::render::print_json(&serde_json::Value::Object(map));
            } else {
                for (k, v) in vars {
                    println!("export {k}='{v}'");
                }
            }
        }
        LocalCommand::RunSchedule { name, json } => return run_schedule(g, &project, &name, json).await,
        LocalCommand::Console => {
            let exe = std::env::current_exe().map_err(|e| Error::io("finding the skyform executable", e))?;
            let url =
                skyform_local::console_login_link(&project.dir, Some(&exe)).await.map_err(local_error)?;
            println!("the local console: {url}");
            println!("(the link works once, for ten minutes; run `skyform local console` again for another)");
        }
        LocalCommand::Daemon { .. } => unreachable!("handled before the runtime starts"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_schedule(
    g: &Global,
    project: &crate::project::Project,
    name: &str,
    json: bool,
) -> Result<ExitCode> {
    let stack = g.stack_name(project)?;
    let out = skyform_local::run_schedule(&project.dir, &stack, name)
        .await
        .map_err(|e| Error::user(e.message, "list the schedules with `skyform local status`"))?;
    if json {
        let payload = serde_json::from_slice(&out.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&out.payload).into_owned())
        });
        crate::cli::render::print_json(&serde_json::json!({
            "schedule": name,
            "request_id": out.request_id,
            "payload": payload,
            "function_error": out.function_error,
        }));
    } else {
        println!("{}", String::from_utf8_lossy(&out.payload));
    }
    if out.function_error.is_some() {
        let body: serde_json::Value = serde_json::from_slice(&out.payload).unwrap_or_default();
        let kind = body["errorType"].as_str().unwrap_or("Unhandled");
        let message = body["errorMessage"].as_str().unwrap_or("");
        let e = Error::new(
            crate::error::ErrorKind::User,
            format!("the function failed: {kind}: {message} (request id {})", out.request_id),
        )
        .with_hint("see `skyform logs FUNCTION` for the schedule's function");
        return Ok(crate::cli::report(&e));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(s: &skyform_local::DaemonStatus) {
    println!("the local cloud runs (pid {}, control port {})", s.pid, s.port);
    if let Some(e) = &s.endpoint {
        println!("  AWS endpoint {e}  (`eval \"$(skyform local env)\"` points the AWS CLI at it)");
    }
    if s.is_idle() {
        println!("  nothing is deployed");
    }
    for f in &s.functions {
        println!("  function {}/{}  {}  {} warm", f.stack, f.name, f.runtime, f.environments);
    }
    for a in &s.apis {
        let state = if a.listening { "" } else { "  (not listening!)" };
        println!("  api      {}/{}  {}{state}", a.stack, a.name, a.url);
    }
    for q in &s.queues {
        println!(
            "  queue    {}  {} visible, {} in flight, {} delayed  {}",
            q.name, q.visible, q.in_flight, q.delayed, q.url
        );
    }
    for t in &s.topics {
        let subs = if t.subscriptions.is_empty() {
            "no subscribers".to_string()
        } else {
            t.subscriptions.join(", ")
        };
        println!("  topic    {}  -> {subs}  {}", t.name, t.arn);
    }
    for (name, objects) in s.bucket_list() {
        println!("  bucket   {name}  {objects} objects");
    }
    for t in &s.tables {
        println!(
            "  table    {}  {} items{}  {}",
            t["name"].as_str().unwrap_or(""),
            t["items"],
            if t["stream"].as_bool() == Some(true) { ", change stream" } else { "" },
            t["arn"].as_str().unwrap_or(""),
        );
    }
    for t in &s.queue_subscriptions {
        println!(
            "  trigger  {}/{}  {} -> {}  {} invocations ({} failed)",
            t["stack"].as_str().unwrap_or(""),
            t["name"].as_str().unwrap_or(""),
            skyform_local::queue::queue_name_of(t["spec"]["queue"].as_str().unwrap_or("")),
            t["spec"]["function"].as_str().unwrap_or(""),
            t["invocations"],
            t["failed_invocations"],
        );
    }
    for c in &s.schedules {
        let next = match (&c.next_run, c.enabled) {
            (_, false) => "disabled".to_string(),
            (Some(t), true) => format!("next run {t}"),
            (None, true) => "no run left".to_string(),
        };
        let tz = if c.timezone == "UTC" { String::new() } else { format!(" {}", c.timezone) };
        let last = match &c.last_run {
            Some(l) if l.finished && l.error.is_some() => format!(
                "  last run failed: {}{} (see `skyform logs {}`)",
                l.error.as_deref().unwrap_or_default(),
                if l.attempts > 1 { format!(" after {} attempts", l.attempts) } else { String::new() },
                c.function
            ),
            _ => String::new(),
        };
        println!("  schedule {}/{}  {}{tz} -> {}  {next}{last}", c.stack, c.name, c.expression, c.function);
    }
}
