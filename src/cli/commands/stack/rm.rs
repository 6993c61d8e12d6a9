//! `skyform stack rm NAME`: under the stack's lock, so a stack cannot vanish under a command.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::Result;
use crate::ops;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub name: String,
    /// Remove it even if its state still records resources (they are forgotten, not deleted).
    #[arg(long)]
    pub force: bool,
}

pub fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    ops::stack_rm(&project, &args.name, args.force, &crate::cli::user())?;
    // A removed stack is no longer selected.
    if crate::cli::selected_stack(&project).as_deref() == Some(args.name.as_str()) {
        let _ = std::fs::remove_file(crate::cli::selection_file(&project));
    }
    println!("removed stack `{}`", args.name);
    Ok(ExitCode::SUCCESS)
}
