//! `skyform cancel`: say who holds the stack's lock, and clear the name a dead holder left.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::Result;
use crate::state::lock;

/// Report the command that holds the stack's lock. In the folder backend the lock is an OS file
/// lock: it is released when its holder's process ends, however it ends (Ctrl-C, kill -9, a
/// crash), so there is no stale lock to remove. In an `s3://` backend it is an object in the
/// bucket: a holder of this host that has ended is removed; a holder on another machine only
/// with `--force`. A command that was interrupted mid-update may have left pending operations:
/// `skyform refresh` resolves them.
///
/// Exits 0 when the stack is free (clearing or removing the lock of a holder that ended), 4 when
/// a command holds it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove a remote backend's lock held by a command on another machine (make sure it is
    /// dead: a live one would then write the stack alongside the next command).
    #[arg(long)]
    pub force: bool,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let files = project.stack_files(&stack)?;
    if let Some(remote) = &files.remote {
        match remote.cancel(args.force, &lock::hostname())? {
            Some(info) => println!(
                "removed the lock of `{}` (pid {} on host {}, started {}) from {}; run `skyform refresh` if it was interrupted mid-update",
                info.command,
                info.pid,
                info.host,
                info.started,
                remote.describe(&remote.lock_key())
            ),
            None => println!("stack `{stack}` is not locked"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    match lock::cancel(&files.lock())? {
        Some(info) => println!(
            "stack `{stack}` is not locked: `{}` (pid {} on host {}, started {}) has ended; run `skyform refresh` if it was interrupted mid-update",
            info.command, info.pid, info.host, info.started
        ),
        None => println!("stack `{stack}` is not locked"),
    }
    Ok(ExitCode::SUCCESS)
}
