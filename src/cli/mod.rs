//! The command-line interface: argument parsing, configuration from the environment, and
//! rendering. **Architecture Invariant:** only this module prints, and only this module reads
//! the process environment; it passes what it resolved into the library.

pub mod commands;
pub mod flags;
pub mod kms;
pub mod progress;
pub mod render;

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
    /// The stack to work on (default: $SKYFORM_STACK, the only stack, or `dev`).
    #[arg(short = 's', long = "stack", global = true, value_name = "STACK")]
    pub stack: Option<String>,
    /// Show provider and program logs as they come.
    #[arg(short = 'v', long = "verbose", global = true)]
    pub verbose: bool,
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
    Refresh(commands::refresh::Args),
    Outputs(commands::outputs::Args),
    /// Stacks: ls, init, rm, export, import, history, change-secrets-provider.
    #[command(subcommand)]
    Stack(commands::stack::StackCommand),
    Import(commands::import::Args),
    Graph(commands::graph::Args),
    /// The stack's config: ls, get, set (`--secret`: encrypted), rm.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    Synth(commands::synth::Args),
    Cancel(commands::cancel::Args),
    /// The local cloud: status, start, stop.
    #[command(subcommand)]
    Local(commands::local::LocalCommand),
    Logs(commands::logs::Args),
    Invoke(commands::invoke::Args),
    /// Run a built-in provider on stdin/stdout (started by skyform itself).
    #[command(hide = true)]
    Provider {
        name: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Provider { name } = &cli.command {
        return commands::provider::run(name);
    }
    if let Command::Local(commands::local::LocalCommand::Daemon { project_dir }) = &cli.command {
        return commands::local::run_daemon(project_dir.clone());
    }
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

async fn run(cli: Cli) -> Result<ExitCode> {
    let g = Global { dir: cli.dir.clone(), stack: cli.stack.clone(), verbose: cli.verbose };
    match cli.command {
        Command::New(a) => commands::new::run(&g, a).await,
        Command::Preview(a) => commands::preview::run(&g, a).await,
        Command::Up(a) => commands::up::run(&g, a).await,
        Command::Destroy(a) => commands::destroy::run(&g, a).await,
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
        Command::Provider { .. } => unreachable!("handled before the runtime starts"),
    }
}

/// Prints an error with its hint and maps its kind to an exit code.
pub fn report(e: &Error) -> ExitCode {
    eprintln!("error: {}", e.message);
    if let Some(h) = &e.hint {
        eprintln!("hint: {h}");
    }
    ExitCode::from(exit_code(e.kind))
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
    pub fn project(&self) -> Result<Project> {
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => std::env::current_dir().map_err(|e| Error::io("reading the current directory", e))?,
        };
        Project::load(&dir)
    }

    /// The stack named by `-s`, `$SKYFORM_STACK`, the only stack, or `dev`.
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
        match stacks.as_slice() {
            [only] => Ok(only.clone()),
            _ if stacks.iter().any(|s| s == "dev") => Ok("dev".into()),
            [] => {
                Err(Error::user("this project has no stack yet", "create one with `skyform stack init dev`"))
            }
            many => Err(Error::user(
                format!("which stack? this project has {}", many.join(", ")),
                "pass `--stack NAME` or set SKYFORM_STACK",
            )),
        }
    }

    pub fn session(&self, sink: crate::events::Sink) -> Result<Session> {
        let project = self.project()?;
        let stack = self.stack_name(&project)?;
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
            format!("stack `{stack}` names the secrets provider `{provider}`, which skyform does not know"),
            "use `passphrase` or `awskms://KEY?region=REGION` under [secrets] provider (see `skyform stack change-secrets-provider`)",
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
        format!("stack `{stack}` has secrets, which are encrypted with a passphrase, but {var} is not set"),
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

/// Asks for confirmation on a terminal; refuses without one.
pub fn confirm(question: &str, yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !stdin_is_tty() {
        return Err(Error::user(
            "refusing to change the stack without confirmation: standard input is not a terminal",
            "pass `--yes` to apply the plan shown above",
        ));
    }
    use std::io::Write;
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Error::io("reading the answer", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
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
