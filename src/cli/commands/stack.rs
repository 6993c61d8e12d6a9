//! `skyform stack ...`: create, list, remove, export and import stacks.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::project::valid_name;
use crate::state::{self, StackFiles};

#[derive(clap::Subcommand, Debug)]
pub enum StackCommand {
    /// List the project's stacks.
    Ls,
    /// Create a stack: writes Skyform.NAME.toml.
    Init {
        name: String,
        /// The provider the program targets on this stack (`local` or `aws`).
        #[arg(long, default_value = "local")]
        provider: String,
    },
    /// Remove a stack that has no resources left (destroy it first).
    Rm {
        name: String,
        /// Remove it even if its state still records resources (they are forgotten, not deleted).
        #[arg(long)]
        force: bool,
    },
    /// Print the stack's state as JSON.
    Export,
    /// Replace the stack's state with the JSON state in FILE (validated first).
    Import { file: std::path::PathBuf },
    /// The commands that changed the stack's state.
    History {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(g: &Global, cmd: StackCommand) -> Result<ExitCode> {
    let project = g.project()?;
    match cmd {
        StackCommand::Ls => {
            let current = g.stack_name(&project).ok();
            for s in project.stacks()? {
                let file = project.load_stack(&s)?;
                let files = StackFiles::new(project.state_dir(), &s);
                let (snap, _) = state::load(&files, project.name())?;
                let mark = if Some(&s) == current.as_ref() { "*" } else { " " };
                println!("{mark} {s:<16} provider={:<8} resources={}", file.provider, snap.resources.len());
            }
        }
        StackCommand::Init { name, provider } => {
            if !valid_name(&name) {
                return Err(Error::user(
                    format!("`{name}` is not a valid stack name"),
                    "use letters, digits, `-` and `_`",
                ));
            }
            let path = project.stack_file_path(&name);
            if path.exists() {
                return Err(Error::user(
                    format!("stack `{name}` already exists ({})", path.display()),
                    "pick another name",
                ));
            }
            let text = format!(
                "# The `{name}` stack of project `{}`.\nprovider = \"{provider}\"\n\n[config]\n# Values the program reads with ctx.config(\"key\").\n\n# [providers.{provider}]\n# Settings for the provider (for aws: region, profile, endpoint).\n",
                project.name()
            );
            state::write_atomic(&path, text.as_bytes())?;
            println!("created stack `{name}` (provider {provider}): {}", path.display());
        }
        StackCommand::Rm { name, force } => {
            let path = project.stack_file_path(&name);
            if !path.exists() {
                return Err(Error::user(format!("stack `{name}` does not exist"), "see `skyform stack ls`"));
            }
            let files = StackFiles::new(project.state_dir(), &name);
            let (snap, _) = state::load(&files, project.name())?;
            if !snap.resources.is_empty() && !force {
                return Err(Error::user(
                    format!("stack `{name}` still has {} resources", snap.resources.len()),
                    format!("run `skyform destroy -s {name}` first, or pass --force to forget them"),
                ));
            }
            for p in [files.state(), files.journal(), files.history(), path] {
                if p.exists() {
                    std::fs::remove_file(&p)
                        .map_err(|e| Error::io(format!("removing {}", p.display()), e))?;
                }
            }
            println!("removed stack `{name}`");
        }
        StackCommand::Export => {
            let stack = g.stack_name(&project)?;
            let files = StackFiles::new(project.state_dir(), &stack);
            let (snap, _) = state::load(&files, project.name())?;
            print!("{}", String::from_utf8_lossy(&snap.to_bytes()));
        }
        StackCommand::Import { file } => {
            let stack = g.stack_name(&project)?;
            project.load_stack(&stack)?;
            let files = StackFiles::new(project.state_dir(), &stack);
            let bytes =
                std::fs::read(&file).map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
            let mut snap = state::parse_state(&bytes, &file.display().to_string())?;
            if snap.stack != stack {
                return Err(Error::user(
                    format!("{} holds the state of stack `{}`, not `{stack}`", file.display(), snap.stack),
                    format!("import it with `-s {}`", snap.stack),
                ));
            }
            let lock = crate::state::lock::Lock::acquire(
                &files.lock(),
                &crate::state::lock::LockInfo {
                    pid: std::process::id(),
                    host: crate::state::lock::hostname(),
                    user: std::env::var("USER").unwrap_or_default(),
                    started: crate::util::rfc3339(std::time::SystemTime::now()),
                    command: "skyform stack import".into(),
                },
            )?;
            if let Some(cur) = state::load_file(&files.state())? {
                snap.serial = snap.serial.max(cur.serial + 1);
            }
            snap.normalize();
            state::write_state(&files, &snap)?;
            state::journal::remove(&files.journal())?;
            drop(lock);
            println!(
                "imported the state of stack `{stack}` ({} resources, serial {})",
                snap.resources.len(),
                snap.serial
            );
        }
        StackCommand::History { json } => {
            let stack = g.stack_name(&project)?;
            let files = StackFiles::new(project.state_dir(), &stack);
            let entries = state::read_history(&files)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries).unwrap());
            } else if entries.is_empty() {
                println!("stack `{stack}` has no history yet");
            } else {
                for e in entries.iter().rev() {
                    let changes: Vec<String> = e.changes.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    println!(
                        "serial {:<4} {}  {:<12} {:<11} {:>6}ms  {}",
                        e.serial,
                        e.started,
                        e.command,
                        e.result,
                        e.duration_ms,
                        changes.join(", ")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
