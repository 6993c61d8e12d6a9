//! `skyform stack ls`.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::Global;
use crate::error::Result;
use crate::ops;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print as JSON (`{"current", "stacks": [{"name", "provider", "resources", "current"}]}`);
    /// schema in docs/json/stack-ls.schema.json.
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    // The stack commands would work on; `*` marks it (none when the choice is ambiguous).
    let current = g.stack_name(&project).ok();
    let stacks = ops::stack_ls(&project)?;
    if args.json {
        let list: Vec<_> = stacks
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "provider": s.provider,
                    "resources": s.resources,
                    "current": Some(&s.name) == current.as_ref(),
                })
            })
            .collect();
        crate::cli::render::print_json(&json!({"current": current, "stacks": list}));
        return Ok(ExitCode::SUCCESS);
    }
    if stacks.is_empty() {
        println!("this project has no stack yet; create one with `skyform stack init dev`");
    }
    for s in stacks {
        let mark = if Some(&s.name) == current.as_ref() { "*" } else { " " };
        println!("{mark} {:<16} provider={:<8} resources={}", s.name, s.provider, s.resources);
    }
    Ok(ExitCode::SUCCESS)
}
