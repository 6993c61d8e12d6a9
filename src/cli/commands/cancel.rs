//! `skyform cancel`: remove the lock of a command that died.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::Result;
use crate::state::{StackFiles, lock};

/// Remove the stack's lock when the command holding it is no longer running.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove the lock even if its holder seems alive (or runs on another host).
    #[arg(long)]
    pub force: bool,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let files = StackFiles::new(project.state_dir(), &stack);
    match lock::cancel(&files.lock(), args.force)? {
        Some(info) => println!(
            "removed the lock of `{}` (pid {} on host {}, started {}); run `skyform refresh` if it was interrupted mid-update",
            info.command, info.pid, info.host, info.started
        ),
        None => println!("stack `{stack}` is not locked"),
    }
    Ok(ExitCode::SUCCESS)
}
