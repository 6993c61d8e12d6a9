//! `skyform refresh`: read every resource from its provider and record what is really there.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::cli::render::{TerminalSink, people, show};
use crate::cli::{Global, confirm};
use crate::engine::{self, DriftKind};
use crate::error::Result;

/// Read every resource, show drift property by property, and update the state to match.
/// Also resolves the operations an interrupted run left unfinished.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Update the state without asking.
    #[arg(short, long)]
    pub yes: bool,
    /// Only show the drift; change nothing.
    #[arg(long)]
    pub preview_only: bool,
    /// Print the drift as JSON.
    #[arg(long)]
    pub json: bool,
    /// Show secret values in plaintext instead of `[secret]`.
    #[arg(long)]
    pub show_secrets: bool,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, args.json));
    let session = g.session(sink.clone())?;
    let lock = session.lock("skyform refresh")?;
    let snap = session.recover(&lock)?;
    let started = Instant::now();
    let providers = session.start_providers(None, &snap, true).await?;
    let result = engine::refresh(&snap, &providers, &session.vault).await;
    providers.shutdown().await;
    let (next, drift) = result?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&people(
                &json!({"stack": session.stack, "drift": drift}),
                args.show_secrets
            ))
            .unwrap()
        );
    } else {
        println!("Refreshing ({}):\n", session.stack);
        if drift.is_empty() {
            println!("  no drift: every resource matches the state");
        }
        for d in &drift {
            match d.kind {
                DriftKind::Deleted => {
                    println!(" -   {}  {}  deleted outside skyform (or never created)", d.type_, d.name)
                }
                DriftKind::Recovered => {
                    println!(
                        " +   {}  {}  an interrupted create had succeeded: now recorded",
                        d.type_, d.name
                    )
                }
                DriftKind::Resolved => {
                    println!("     {}  {}  interrupted operation resolved", d.type_, d.name)
                }
                DriftKind::Changed => {
                    println!(" ~   {}  {}  changed outside skyform", d.type_, d.name);
                    for (path, old, new) in &d.properties {
                        println!(
                            "         ~ {path}: {} => {}",
                            show(old, args.show_secrets),
                            show(new, args.show_secrets)
                        );
                    }
                }
            }
        }
        println!();
    }
    let changed = !next.same_content(&snap);
    if !changed || args.preview_only {
        return Ok(ExitCode::SUCCESS);
    }
    if !confirm("Do you want to record these changes in the state?", args.yes)? {
        println!("cancelled: the state was not changed");
        return Ok(ExitCode::SUCCESS);
    }
    let written = session.write(&snap, next, "refresh", started)?;
    drop(lock);
    if !args.json {
        println!("the state is updated (serial {})", written.serial);
    }
    Ok(ExitCode::SUCCESS)
}
