//! `skyform preview`: show what `up` would change, without changing anything.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Global;
use crate::cli::render::{self, TerminalSink};
use crate::engine::{self, Session};
use crate::error::{Error, Result};
use crate::plan::{self, Plan, PlanOptions};
use crate::state::Snapshot;

/// Show the changes `up` would make: a tree of resources with `+ ~ - +-`, and a summary.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show property-level differences.
    #[arg(long)]
    pub diff: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Save the plan to FILE; `skyform up --plan FILE` applies exactly it.
    #[arg(long, value_name = "FILE")]
    pub save_plan: Option<PathBuf>,
    /// Only these resources (and what they depend on). Repeatable.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Forget operations an interrupted run left unresolved.
    #[arg(long)]
    pub clear_pending: bool,
    /// Show secret values in plaintext instead of `[secret]`.
    #[arg(long)]
    pub show_secrets: bool,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, args.json));
    let session = g.session(sink.clone())?;
    let lock = session.lock("skyform preview")?;
    let mut snap = session.recover(&lock)?;
    if args.clear_pending {
        snap.pending_operations.clear();
    }
    engine::ensure_no_pending(&snap)?;
    let (plan, providers) = make_plan(&session, &snap, &args.targets, true).await?;
    providers.shutdown().await;
    drop(lock);
    if let Some(path) = &args.save_plan {
        // Secrets sealed with the stack's key, and the file readable by its owner only.
        let bytes = session.vault.seal_json(&plan)?;
        crate::state::write_private(path, &bytes)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&render::plan_json(&plan, args.show_secrets)).expect("json")
        );
    } else {
        print!("{}", render::plan_text(&plan, args.diff, "Previewing update", args.show_secrets));
        if let Some(path) = &args.save_plan {
            println!(
                "\nSaved the plan to {}; apply it with `skyform up --plan {}`",
                path.display(),
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the program, starts the providers and plans.
pub async fn make_plan(
    session: &Session,
    snap: &Snapshot,
    targets: &[String],
    dry_run: bool,
) -> Result<(Plan, crate::providers::Providers)> {
    let manifest = session.run_program().await?;
    if let Some(s) = &manifest.stack
        && s != &session.stack
    {
        return Err(Error::user(
            format!("the program wrote a manifest for stack `{s}`, but this is stack `{}`", session.stack),
            "the program should take the stack name from SKYFORM_STACK",
        ));
    }
    let graph = manifest.validate()?;
    let providers = session.start_providers(Some(&manifest), snap, dry_run).await?;
    let opts = PlanOptions { targets: targets.to_vec(), vault: session.vault.clone() };
    match plan::plan_update(&manifest, &graph, snap, &providers, &opts).await {
        Ok(p) => Ok((p, providers)),
        Err(e) => {
            providers.shutdown().await;
            Err(e)
        }
    }
}
