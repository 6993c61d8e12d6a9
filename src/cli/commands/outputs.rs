//! `skyform outputs`: the stack's outputs, and on an `aws` stack each function's physical name
//! and ARN (what the AWS console and CLI know it by).

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::render::people;
use crate::cli::style::{self, Stream, paint};
use crate::cli::{Global, flags};
use crate::error::{Error, Result};
use crate::events::NullSink;

/// Print the stack's outputs (or one of them, bare, for use in scripts); on an `aws` stack also
/// each function's physical name and ARN (under `functions`).
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
    let snap = session.export()?;
    // name -> {name, arn} of each AWS function, for `functions` in the listing.
    let functions: serde_json::Map<String, serde_json::Value> = snap
        .resources
        .iter()
        .filter(|r| r.type_ == "aws:lambda:Function" && !r.pending_delete)
        .filter_map(|r| {
            let (name, arn) = skyform_aws::ops::function_identity(r.outputs.sealed())?;
            Some((r.name.clone(), serde_json::json!({"name": name, "arn": arn})))
        })
        .collect();
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
        None if args.json => {
            let mut all = serde_json::to_value(&outputs).expect("json");
            // A stack output of that name wins.
            if !functions.is_empty() && !outputs.contains_key("functions") {
                all["functions"] = serde_json::Value::Object(functions);
            }
            crate::cli::render::print_json(&all)
        }
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
            if !functions.is_empty() {
                println!("functions:");
                for (k, f) in &functions {
                    println!(
                        "  {k}: {} {}",
                        f["name"].as_str().unwrap_or(""),
                        f["arn"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
