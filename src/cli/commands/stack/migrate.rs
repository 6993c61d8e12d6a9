//! `skyform stack migrate --to BACKEND`: move a stack's state and history between backends.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::Result;
use crate::ops;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to move the stack: `s3://BUCKET/PREFIX[?region=R&endpoint=URL&profile=P]`, or
    /// `folder` (the project's state/ folder).
    #[arg(long, value_name = "BACKEND")]
    pub to: String,
}

pub fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let m = ops::stack_migrate(&project, &stack, &args.to, &crate::cli::user())?;
    println!(
        "moved stack `{stack}` from {} to {}: serial {}, {} resources, {} history entries; Skyform.{stack}.toml now says backend = \"{}\"",
        m.from, m.to, m.serial, m.resources, m.history, args.to
    );
    Ok(ExitCode::SUCCESS)
}
