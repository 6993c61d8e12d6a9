//! `skyform refresh`: read every resource from its provider and record what is really there.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use crate::cli::render::{self, TerminalSink, people, show};
use crate::cli::style::{self, Stream, paint};
use crate::cli::{Global, confirm, flags};
use crate::engine::{Drift, DriftKind};
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
    #[command(flatten)]
    pub secrets: flags::ShowSecrets,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, args.json));
    let session = g.session(sink.clone())?;
    let stack = session.stack.clone();
    let refreshed = session
        .refresh_state(&mut |drift, changed| {
            show_drift(&stack, drift, args.json, args.secrets.show_secrets);
            if !changed || args.preview_only {
                return Ok(false);
            }
            let hint = "pass `--yes` to record the drift in the state, or `--preview-only` to only see it";
            if !confirm("Do you want to record these changes in the state?", args.yes, hint)? {
                println!("cancelled: the state was not changed");
                return Ok(false);
            }
            Ok(true)
        })
        .await?;
    if let Some(serial) = refreshed.written
        && !args.json
    {
        println!("the state is updated (serial {serial})");
    }
    Ok(ExitCode::SUCCESS)
}

/// The drift, with secrets masked unless `reveal` (`--show-secrets`).
fn show_drift(stack: &str, drift: &[Drift], json: bool, reveal: bool) {
    if json {
        render::print_json(&people(&json!({"stack": stack, "drift": drift}), reveal));
        return;
    }
    let sym = |s: &str| paint(Stream::Out, style::symbol_style(s), &format!("{s:<2}"));
    println!("{} ({stack}):\n", paint(Stream::Out, style::BOLD, "Refreshing"));
    if drift.is_empty() {
        println!("  no drift: every resource matches the state");
    }
    for d in drift {
        match d.kind {
            DriftKind::Deleted => {
                println!(" {}  {}  {}  deleted outside skyform (or never created)", sym("-"), d.type_, d.name)
            }
            DriftKind::Recovered => {
                println!(
                    " {}  {}  {}  an interrupted create had succeeded: now recorded",
                    sym("+"),
                    d.type_,
                    d.name
                )
            }
            DriftKind::Resolved => {
                println!("     {}  {}  interrupted operation resolved", d.type_, d.name)
            }
            DriftKind::Changed => {
                println!(" {}  {}  {}  changed outside skyform", sym("~"), d.type_, d.name);
                for (path, old, new) in &d.properties {
                    println!("         ~ {path}: {} => {}", show(old, reveal), show(new, reveal));
                }
            }
        }
    }
    println!();
}
