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
    println!("removed stack `{}`", args.name);
    Ok(ExitCode::SUCCESS)
}
