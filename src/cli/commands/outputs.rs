//! `skyform outputs`: the stack's outputs.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

use serde_json::Value;

use crate::state;
use crate::value;

/// Print the stack's outputs (or one of them, bare, for use in scripts).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print only this output's value.
    pub name: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print secret outputs in plaintext (decrypted with the stack's key) instead of `[secret]`.
    #[arg(long)]
    pub show_secrets: bool,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    project.load_stack(&stack)?;
    let files = state::StackFiles::new(project.state_dir(), &stack);
    let (snap, _) = state::load(&files, project.name())?;
    let vault = g.vault(&project, &stack)?;
    let outputs: BTreeMap<String, Value> = snap
        .outputs
        .iter()
        .map(|(k, v)| {
            let shown =
                if args.show_secrets { value::unmark(&v.open(&vault)?) } else { value::mask(v.sealed()) };
            Ok((k.clone(), shown))
        })
        .collect::<Result<_>>()?;
    match args.name {
        Some(name) => {
            let v = outputs.get(&name).ok_or_else(|| {
                let known: Vec<&String> = outputs.keys().collect();
                Error::user(
                    format!("stack `{stack}` has no output `{name}`"),
                    if known.is_empty() {
                        "it has no outputs yet; run `skyform up`".to_string()
                    } else {
                        format!(
                            "its outputs are: {}",
                            known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    },
                )
            })?;
            match (args.json, v) {
                (false, serde_json::Value::String(s)) => println!("{s}"),
                _ => println!("{}", serde_json::to_string_pretty(v).unwrap()),
            }
        }
        None if args.json => println!("{}", serde_json::to_string_pretty(&outputs).unwrap()),
        None => {
            if outputs.is_empty() {
                println!("stack `{stack}` has no outputs");
            }
            for (k, v) in &outputs {
                match v {
                    serde_json::Value::String(s) => println!("{k}: {s}"),
                    other => println!("{k}: {other}"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
