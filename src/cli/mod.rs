//! The command-line interface: argument parsing, configuration from the environment, and
//! rendering. **Architecture Invariant:** only this module prints, and only this module reads
//! the process environment; it passes what it resolved into the library.

pub mod backend;
pub mod commands;
pub mod flags;
pub mod kms;
pub mod local_cloud;
pub mod progress;
pub mod render;
pub mod routes;
pub mod sdk_home;
pub mod style;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::engine::Session;
use crate::error::{Error, ErrorKind, Result};
use crate::project::Project;
use crate::providers::ProviderSettings;
use crate::secrets::{KeySource, KeyWrap, Passphrase, Vault};

/// skyform: infrastructure as code for serverless applications.
///
/// Describe functions, triggers and storage in a program; skyform compiles it into a resource
/// graph, diffs it against the stack's recorded state, previews the change and applies it.
#[derive(Parser, Debug)]
#[command(name = "skyform", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', long = "cwd", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The stack to work on (default: $SKYFORM_STACK, the one `skyform stack select` chose, the only
    /// stack, or `dev`).
    #[arg(short = 's', long = "stack", global = true, value_name = "STACK")]
    pub stack: Option<String>,
    /// Show provider and program logs as they come.
    #[arg(short = 'v', long = "verbose", global = true)]
    pub verbose: bool,
    /// Colour the output: `auto` (on a terminal, unless NO_COLOR is set or TERM=dumb), `always` or `never`.
    #[arg(long = "color", global = true, value_enum, default_value_t = style::ColorChoice::Auto, value_name = "WHEN")]
    pub color: style::ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes:
  0  success
  1  error: bad input, a failing program or provider (nothing was changed unless stated)
  2  usage error
  3  some steps failed while applying (the state records what happened)
  4  the stack is locked by a running command (the lock is freed when its process ends)
  5  an earlier run was interrupted: resolve it with `skyform refresh` or `--clear-pending`
  6  a saved plan no longer matches the stack's state
  130 interrupted by Ctrl-C";

#[derive(Subcommand, Debug)]
pub enum Command {
    New(commands::new::Args),
    Preview(commands::preview::Args),
    Up(commands::up::Args),
    Destroy(commands::destroy::Args),
    Dev(commands::dev::Args),
    Refresh(commands::refresh::Args),
    Outputs(commands::outputs::Args),
    /// Stacks: ls, select, init, rm, export, import, history, change-secrets-provider, migrate.
    #[command(subcommand)]
    Stack(commands::stack::StackCommand),
    Import(commands::import::Args),
    Graph(commands::graph::Args),
    /// The stack's config: ls, get, set (`--secret`: encrypted), rm.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    Synth(commands::synth::Args),
    Cancel(commands::cancel::Args),
    /// The local cloud: status, start, stop, run-schedule, env, console.
    #[command(subcommand)]
    Local(commands::local::LocalCommand),
    Logs(commands::logs::Args),
    Invoke(commands::invoke::Args),
    Completion(commands::completion::Args),
    /// Run a built-in provider on stdin/stdout (started by skyform itself).
    #[command(hide = true)]
    Provider {
        name: String,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    // Under `--json` nothing is coloured, not even the warnings and progress on stderr.
    let color = if cli.command.wants_json() { style::ColorChoice::Never } else { cli.color };
    style::init(color, std::env::var("NO_COLOR").ok().as_deref(), std::env::var("TERM").ok().as_deref());
    JSON_ERRORS.store(cli.command.wants_json(), std::sync::atomic::Ordering::Relaxed);
    if let Command::Provider { name } = &cli.command {
        return commands::provider::run(name);
    }
    if let Command::Local(commands::local::LocalCommand::Daemon { project_dir }) = &cli.command {
        return commands::local::run_daemon(project_dir.clone());
    }
    quiet_on_closed_output();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli));
    // Provider processes and tasks are done; do not wait for stray blocking work.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// `skyform local status | head -1`: when whoever reads our output goes away, stop as every
/// Unix tool does (killed by SIGPIPE, which shells report as 141), not with a panic and a
/// backtrace. Rust ignores SIGPIPE so that a write fails with `EPIPE` (which the provider
/// pipes rely on), and `println!` turns that failure into a panic; this hook catches exactly
/// that panic. A run cut short this way is like one killed: the journal keeps what it did.
fn quiet_on_closed_output() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let closed = message.starts_with("failed printing to std") && message.contains("Broken pipe");
        if closed {
            // SAFETY: restoring the default action of SIGPIPE and raising it ends this
            // process; nothing else runs in a signal handler here.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
        previous(info);
    }));
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let g = Global { dir: cli.dir.clone(), stack: cli.stack.clone(), verbose: cli.verbose };
    match cli.command {
        Command::New(a) => commands::new::run(&g, a).await,
        Command::Preview(a) => commands::preview::run(&g, a).await,
        Command::Up(a) => commands::up::run(&g, a).await,
        Command::Destroy(a) => commands::destroy::run(&g, a).await,
        Command::Dev(a) => commands::dev::run(&g, a).await,
        Command::Refresh(a) => commands::refresh::run(&g, a).await,
        Command::Outputs(a) => commands::outputs::run(&g, a).await,
        Command::Stack(c) => commands::stack::run(&g, c).await,
        Command::Import(a) => commands::import::run(&g, a).await,
        Command::Graph(a) => commands::graph::run(&g, a).await,
        Command::Config(c) => commands::config::run(&g, c).await,
        Command::Synth(a) => commands::synth::run(&g, a).await,
        Command::Cancel(a) => commands::cancel::run(&g, a).await,
        Command::Local(c) => commands::local::run(&g, c).await,
        Command::Logs(a) => commands::logs::run(&g, a).await,
        Command::Invoke(a) => commands::invoke::run(&g, a).await,
        Command::Completion(a) => commands::completion::run(a),
        Command::Provider { .. } => unreachable!("handled before the runtime starts"),
    }
}

impl Command {
    /// Whether the command was asked for JSON (`--json`): its errors are then JSON objects too.
    pub fn wants_json(&self) -> bool {
        use commands::{config::ConfigCommand as C, local::LocalCommand as L, stack::StackCommand as S};
        match self {
            Command::Preview(a) => a.json,
            Command::Up(a) => a.json,
            Command::Destroy(a) => a.json,
            Command::Refresh(a) => a.json,
            Command::Outputs(a) => a.json,
            Command::Logs(a) => a.json,
            Command::Invoke(a) => a.json,
            Command::Stack(S::Ls(a)) => a.json,
            Command::Stack(S::History(a)) => a.json,
            Command::Config(C::Ls { json, .. } | C::Get { json, .. }) => *json,
            Command::Local(L::Status { json } | L::Env { json } | L::RunSchedule { json, .. }) => *json,
            Command::Import(a) => a.json,
            Command::Synth(a) => a.json,
            Command::Stack(S::Export { json }) => *json,
            _ => false,
        }
    }
}

/// Set when the command runs with `--json`: errors are printed as JSON objects.
static JSON_ERRORS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The `kind` of an error as `--json` prints it (documented in `docs/json/error.schema.json`).
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::User => "user",
        ErrorKind::Io => "io",
        ErrorKind::Provider => "provider",
        ErrorKind::ProviderBroken => "provider_broken",
        ErrorKind::Locked => "locked",
        ErrorKind::Pending => "pending",
        ErrorKind::StalePlan => "stale_plan",
        ErrorKind::StepsFailed => "steps_failed",
        ErrorKind::Interrupted => "interrupted",
        ErrorKind::State => "state",
    }
}

/// Prints an error with its hint and maps its kind to an exit code. Under `--json` the error
/// is a JSON object, `{"error": {"kind", "message", "hint"}}`: on stdout when the command has
/// printed no JSON document yet (so stdout always holds exactly one), else on stderr.
pub fn report(e: &Error) -> ExitCode {
    if JSON_ERRORS.load(std::sync::atomic::Ordering::Relaxed) {
        print_json_error(kind_name(e.kind), &e.message, e.hint.as_deref());
    } else {
        eprintln!("{} {}", style::paint(style::Stream::Err, style::BOLD_RED, "error:"), e.message);
        if let Some(h) = &e.hint {
            eprintln!("{} {h}", style::paint(style::Stream::Err, style::CYAN, "hint:"));
        }
    }
    ExitCode::from(exit_code(e.kind))
}

fn print_json_error(kind: &str, message: &str, hint: Option<&str>) {
    let doc = serde_json::json!({"error": {"kind": kind, "message": message, "hint": hint}});
    let text = serde_json::to_string_pretty(&doc).expect("json");
    if render::json_printed() {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// A command line clap refused (exit 2). With `--json` among the arguments, as a JSON error.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    let informational = matches!(e.kind(), K::DisplayHelp | K::DisplayVersion);
    if !informational && std::env::args_os().skip(1).any(|a| a == "--json") {
        let text = e.render().to_string();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let message = lines.next().unwrap_or("bad arguments").trim_start_matches("error: ").to_string();
        print_json_error("usage", &message, Some("see `skyform --help` or `skyform COMMAND --help`"));
        return ExitCode::from(2);
    }
    let _ = e.print();
    ExitCode::from(e.exit_code().clamp(0, 255) as u8)
}

pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::User
        | ErrorKind::Io
        | ErrorKind::Provider
        | ErrorKind::ProviderBroken
        | ErrorKind::State => 1,
        ErrorKind::StepsFailed => 3,
        ErrorKind::Locked => 4,
        ErrorKind::Pending => 5,
        ErrorKind::StalePlan => 6,
        ErrorKind::Interrupted => 130,
    }
}

/// Global flags, resolved.
pub struct Global {
    pub dir: Option<PathBuf>,
    pub stack: Option<String>,
    pub verbose: bool,
}

impl Global {
    /// The project: the nearest folder with a `Skyform.toml`, from the current folder (or
    /// `-C DIR`) upward, like cargo and git.
    pub fn project(&self) -> Result<Project> {
        let start = match &self.dir {
            Some(d) => d.clone(),
            None => std::env::current_dir().map_err(|e| Error::io("reading the current directory", e))?,
        };
        Project::load(&find_project(&start)?).map(backend::attach)
    }

    /// The stack named by `-s`, `$SKYFORM_STACK`, `skyform stack select`, the only stack, or `dev`.
    pub fn stack_name(&self, project: &Project) -> Result<String> {
        if let Some(s) = &self.stack {
            return Ok(s.clone());
        }
        if let Ok(s) = std::env::var("SKYFORM_STACK")
            && !s.is_empty()
        {
            return Ok(s);
        }
        let stacks = project.stacks()?;
        if let Some(selected) = selected_stack(project) {
            if stacks.contains(&selected) {
                return Ok(selected);
            }
            return Err(Error::user(
                format!(
                    "the selected stack `{selected}` does not exist any more (no Skyform.{selected}.toml)"
                ),
                format!(
                    "select another with `skyform stack select NAME` (the stacks: {})",
                    if stacks.is_empty() { "none yet".to_string() } else { stacks.join(", ") }
                ),
            ));
        }
        match stacks.as_slice() {
            [only] => Ok(only.clone()),
            _ if stacks.iter().any(|s| s == "dev") => Ok("dev".into()),
            [] => {
                Err(Error::user("this project has no stack yet", "create one with `skyform stack init dev`"))
            }
            many => Err(Error::user(
                format!("which stack? this project has {}", many.join(", ")),
                "pass `--stack NAME`, set SKYFORM_STACK, or `skyform stack select NAME`",
            )),
        }
    }

    pub fn session(&self, sink: crate::events::Sink) -> Result<Session> {
        let project = self.project()?;
        let stack = self.stack_name(&project)?;
        sdk_home::repair_project(&project.dir)?;
        let keys = key_source(&project, &stack);
        Session::open(project, &stack, provider_settings()?, sink, user(), keys)
    }

    /// The stack's vault, for commands that read state without a session.
    pub fn vault(&self, project: &Project, stack: &str) -> Result<Arc<Vault>> {
        let file = project.load_stack(stack)?;
        Ok(Arc::new(Vault::new(
            file.secrets_config(),
            key_source(project, stack),
            Some(project.stack_file_path(stack)),
        )))
    }
}

/// The nearest folder holding a `Skyform.toml`: `start` or one of its parents.
pub fn find_project(start: &std::path::Path) -> Result<PathBuf> {
    let absolute = if start.is_absolute() {
        start.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| Error::io("reading the current directory", e))?.join(start)
    };
    if !absolute.is_dir() {
        return Err(Error::user(
            format!("{} is not a folder", start.display()),
            "pass `-C DIR` with a project folder (one holding Skyform.toml), or one inside it",
        ));
    }
    for dir in absolute.ancestors() {
        if dir.join(crate::project::PROJECT_FILE).is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    Err(Error::user(
        format!("no {} in {} or any folder above it", crate::project::PROJECT_FILE, absolute.display()),
        "run skyform inside a project, pass `-C DIR`, or create one with `skyform new http-api DIR`",
    ))
}

/// Where `skyform stack select` remembers the project's stack: local, git-ignored data, so each
/// clone (each developer) has its own.
pub fn selection_file(project: &Project) -> PathBuf {
    project.work_dir().join("stack")
}

/// The stack `skyform stack select` chose for this project, if any.
pub fn selected_stack(project: &Project) -> Option<String> {
    let text = std::fs::read_to_string(selection_file(project)).ok()?;
    let name = text.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The environment variables that hold a stack's passphrase.
pub const PASSPHRASE_VAR: &str = "SKYFORM_PASSPHRASE";
pub const PASSPHRASE_FILE_VAR: &str = "SKYFORM_PASSPHRASE_FILE";

/// How the library gets a stack's key wrapper: the CLI reads the passphrase from the
/// environment, or builds a KMS client from the stack's `[providers.aws]` settings. Called only
/// when a secret must be sealed or opened.
pub fn key_source(project: &Project, stack: &str) -> KeySource {
    let stack = stack.to_string();
    let aws_config = project.load_stack(&stack).map(|f| f.provider_config("aws")).unwrap_or_default();
    Arc::new(move |provider: &str| -> Result<Arc<dyn KeyWrap>> {
        if provider == crate::secrets::DEFAULT_PROVIDER {
            return Ok(Arc::new(passphrase_from_env(&stack, PASSPHRASE_VAR, PASSPHRASE_FILE_VAR)?));
        }
        if provider.starts_with("awskms://") {
            return Ok(Arc::new(kms::KmsWrap::new(provider, &aws_config)?));
        }
        Err(Error::user(
            format!("`{provider}` (for stack `{stack}`) is not a secrets provider skyform knows"),
            "use `passphrase` or `awskms://KEY?region=REGION` (with `--secrets-provider`, with \
             `skyform stack change-secrets-provider`, or as `provider` under [secrets] in the stack's file)",
        ))
    })
}

/// The passphrase from `var`, or from the file named by `file_var`.
pub fn passphrase_from_env(stack: &str, var: &str, file_var: &str) -> Result<Passphrase> {
    if let Ok(p) = std::env::var(var) {
        if p.is_empty() {
            return Err(Error::user(
                format!("{var} is set but empty"),
                format!("set {var} to the passphrase of stack `{stack}`"),
            ));
        }
        return Ok(Passphrase::new(p, var));
    }
    if let Some(path) = std::env::var_os(file_var) {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::user(
                format!("{file_var} names {}, which cannot be read: {e}", PathBuf::from(&path).display()),
                format!("point {file_var} at a file holding the passphrase, or set {var}"),
            )
        })?;
        let p = text.trim_end_matches(['\n', '\r']).to_string();
        if p.is_empty() {
            return Err(Error::user(
                format!("the file named by {file_var} is empty"),
                "write the passphrase into it",
            ));
        }
        return Ok(Passphrase::new(p, file_var));
    }
    Err(Error::user(
        format!("the secrets of stack `{stack}` are encrypted with a passphrase, but {var} is not set"),
        format!(
            "set {var} to the stack's passphrase (or {file_var} to a file holding it); a stack's first secret \
             takes the passphrase set at that time"
        ),
    ))
}

pub fn provider_settings() -> Result<ProviderSettings> {
    let self_exe = std::env::current_exe().map_err(|e| Error::io("finding the skyform executable", e))?;
    let search_path =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    let default_timeout = match std::env::var("SKYFORM_PROVIDER_TIMEOUT") {
        Ok(t) => crate::project::parse_duration(&t).ok_or_else(|| {
            Error::user(
                format!("SKYFORM_PROVIDER_TIMEOUT=`{t}` is not a duration"),
                "write it like `30s` or `5m`",
            )
        })?,
        Err(_) => Duration::from_secs(30 * 60),
    };
    Ok(ProviderSettings {
        self_exe: self_exe.clone(),
        search_path,
        default_timeout,
        env: vec![("SKYFORM_EXE".to_string(), self_exe.display().to_string())],
        transport: Arc::new(crate::host::Processes),
    })
}

pub fn user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into())
}

pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Asks a yes/no question on a terminal; refuses without one (`hint` says what to pass).
pub fn confirm(question: &str, yes: bool, hint: &str) -> Result<bool> {
    ask(question, yes, hint, None)
}

/// Asks `yes / no / details` on a terminal: `details` runs `details` (which prints more, e.g.
/// the property-level diff) and asks again. Refuses without a terminal (`hint` says what to
/// pass). The question goes to stderr when stdout is kept for JSON.
pub fn confirm_with_details(
    question: &str,
    yes: bool,
    hint: &str,
    details: &mut dyn FnMut(),
) -> Result<bool> {
    ask(question, yes, hint, Some(details))
}

fn ask(question: &str, yes: bool, hint: &str, mut details: Option<&mut dyn FnMut()>) -> Result<bool> {
    use std::io::Write;
    if yes {
        return Ok(true);
    }
    if !stdin_is_tty() {
        return Err(Error::user(
            "refusing to change the stack without confirmation: standard input is not a terminal",
            hint,
        ));
    }
    let choices = if details.is_some() { "[yes/no/details]" } else { "[yes/no]" };
    let to_stderr = JSON_ERRORS.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        let stream = if to_stderr { style::Stream::Err } else { style::Stream::Out };
        let text = question.trim_start_matches('\n');
        let lead = &question[..question.len() - text.len()];
        let prompt = format!("{lead}{} {choices} ", style::paint(stream, style::BOLD, text));
        if to_stderr {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
        } else {
            print!("{prompt}");
            let _ = std::io::stdout().flush();
        }
        let mut answer = String::new();
        let n = std::io::stdin().read_line(&mut answer).map_err(|e| Error::io("reading the answer", e))?;
        if n == 0 {
            return Ok(false); // end of input: no
        }
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Ok(true),
            "n" | "no" | "" => return Ok(false),
            "d" | "details" if details.is_some() => {
                if let Some(show) = details.as_mut() {
                    show();
                }
            }
            _ => {
                let options = if details.is_some() { "yes, no or details" } else { "yes or no" };
                if to_stderr {
                    eprintln!("please answer {options}");
                } else {
                    println!("please answer {options}");
                }
            }
        }
    }
}

/// Ctrl-C: the first stops new steps from starting; the second exits at once, leaving the
/// journal for the next command to resolve.
pub fn install_interrupt(cancel: crate::apply::Cancel) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: finishing the steps in flight and saving the state (press Ctrl-C again to stop at once)"
            );
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopped at once; the next command will report the operations that were in flight");
                std::process::exit(130);
            }
        }
    });
}

pub type SinkArc = Arc<render::TerminalSink>;
