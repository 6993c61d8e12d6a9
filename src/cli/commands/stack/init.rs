//! `skyform stack init NAME`.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::Result;
use crate::ops;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub name: String,
    /// The provider the program targets on this stack (`local` or `aws`).
    #[arg(long, default_value = "local")]
    pub provider: String,
}

pub fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let path = ops::stack_init(&project, &args.name, &args.provider)?;
    println!("created stack `{}` (provider {}): {}", args.name, args.provider, path.display());
    Ok(ExitCode::SUCCESS)
}
