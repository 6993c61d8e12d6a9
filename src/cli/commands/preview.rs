//! `skyform preview`: show what `up` would change, without changing anything.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::render::{self, TerminalSink};
use crate::cli::{Global, flags};
use crate::error::Result;
use crate::ops::{PlanRequest, Program};

/// Show the changes `up` would make: a tree of resources with `+ ~ - +-`, and a summary.
/// Changes nothing, not even the state file.
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
    #[command(flatten)]
    pub targets: flags::Targets,
    #[command(flatten)]
    pub pending: flags::ClearPending,
    #[command(flatten)]
    pub secrets: flags::ShowSecrets,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, args.json));
    let session = g.session(sink.clone())?;
    let plan = session
        .preview(&PlanRequest {
            program: Program::Project,
            targets: args.targets.targets.clone(),
            clear_pending: args.pending.clear_pending,
        })
        .await?;
    if let Some(path) = &args.save_plan {
        // Secrets sealed with the stack's key, and the file readable by its owner only.
        session.save_plan(&plan, path)?;
    }
    if plan.deletes_everything() {
        render::warn(&format!(
            "{}; `skyform up` will refuse it without `--allow-delete-all` (use `skyform destroy` to delete a stack's resources)",
            plan.delete_all_warning()
        ));
    }
    for w in crate::cli::routes::shadowed(&plan) {
        render::warn(&w);
    }
    if args.json {
        render::print_json(&render::plan_json(&plan, args.secrets.show_secrets));
    } else {
        let mut text = render::plan_text(&plan, args.diff, "Previewing update", args.secrets.show_secrets);
        // On AWS the header names what will change: provider, region, account, endpoint.
        if let Some(target) = super::invoke::aws_target(g).await {
            let head = format!("({}):", plan.stack);
            text = text.replacen(&head, &format!("({}) on {target}:", plan.stack), 1);
        }
        print!("{text}");
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
