//! `skyform cancel`: say who holds the stack's lock, and clear the name a dead holder left.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::Result;
use crate::state::{StackFiles, lock};

/// Report the command that holds the stack's lock. The lock is an OS file lock: it is released
/// when its holder's process ends, however it ends (Ctrl-C, kill -9, a crash), so there is no
/// stale lock to remove. A command that was interrupted mid-update may have left pending
/// operations: `skyform refresh` resolves them.
///
/// Exits 0 when the stack is free (clearing the name of a holder that ended), 4 when a running
/// command holds it: stop that command instead.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Accepted for compatibility; a lock held by a running command cannot be taken from it.
    #[arg(long, hide = true)]
    pub force: bool,
}

pub async fn run(g: &Global, _args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let files = StackFiles::new(project.state_dir(), &stack);
    match lock::cancel(&files.lock())? {
        Some(info) => println!(
            "stack `{stack}` is not locked: `{}` (pid {} on host {}, started {}) has ended; run `skyform refresh` if it was interrupted mid-update",
            info.command, info.pid, info.host, info.started
        ),
        None => println!("stack `{stack}` is not locked"),
    }
    Ok(ExitCode::SUCCESS)
}
