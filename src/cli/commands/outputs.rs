//! `skyform outputs`: the stack's outputs.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::render::people;
use crate::cli::style::{self, Stream, paint};
use crate::cli::{Global, flags};
use crate::error::{Error, Result};
use crate::events::NullSink;

/// Print the stack's outputs (or one of them, bare, for use in scripts).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print only this output's value.
    pub name: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub secrets: flags::ShowSecrets,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let session = g.session(Arc::new(NullSink))?;
    let stack = session.stack.clone();
    // Secret outputs are `[secret]` unless --show-secrets; only then is the stack's key needed.
    let outputs: std::collections::BTreeMap<String, serde_json::Value> = if args.secrets.show_secrets {
        session.outputs()?.into_iter().map(|(k, v)| (k, people(&v, true))).collect()
    } else {
        session.export()?.outputs.into_iter().map(|(k, v)| (k, crate::value::mask(v.sealed()))).collect()
    };
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
                _ => crate::cli::render::print_json(v),
            }
        }
        None if args.json => crate::cli::render::print_json(&serde_json::to_value(&outputs).expect("json")),
        None => {
            if outputs.is_empty() {
                println!("stack `{stack}` has no outputs");
            } else {
                // The header names the stack, like every view of a stack's contents.
                println!("{} ({stack}):", paint(Stream::Out, style::BOLD, "Outputs"));
            }
            for (k, v) in &outputs {
                match v {
                    serde_json::Value::String(s) => println!("    {k}: {s}"),
                    other => println!("    {k}: {other}"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
