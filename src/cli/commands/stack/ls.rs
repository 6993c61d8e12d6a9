//! `skyform stack ls`.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::Result;
use crate::ops;

pub fn run(g: &Global) -> Result<ExitCode> {
    let project = g.project()?;
    let current = g.stack_name(&project).ok();
    for s in ops::stack_ls(&project)? {
        let mark = if Some(&s.name) == current.as_ref() { "*" } else { " " };
        println!("{mark} {:<16} provider={:<8} resources={}", s.name, s.provider, s.resources);
    }
    Ok(ExitCode::SUCCESS)
}
