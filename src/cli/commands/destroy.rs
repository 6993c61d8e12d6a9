//! `skyform destroy`: delete every resource of the stack (a plan against an empty program).

use std::process::ExitCode;
use std::sync::Arc;

use crate::apply::Cancel;
use crate::cli::render::TerminalSink;
use crate::cli::{Global, flags, install_interrupt};
use crate::error::Result;
use crate::ops::{PlanRequest, UpRequest};

use super::up::{Prompt, View, report};

/// Delete all of the stack's resources, dependents first.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub apply: flags::Apply,
    /// Print the result as JSON (needs --yes).
    #[arg(long)]
    pub json: bool,
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
    let cancel = Cancel::default();
    install_interrupt(cancel.clone());
    let req = UpRequest {
        plan: PlanRequest {
            targets: args.targets.targets.clone(),
            clear_pending: args.pending.clear_pending,
            ..Default::default()
        },
        parallel: args.apply.parallel,
        cancel,
        ..Default::default()
    };
    let mut prompt = Prompt {
        json: args.json,
        diff: false,
        yes: args.apply.yes,
        verb: "Destroying",
        question: "\nDo you want to delete these resources?",
        refusal_hint: if args.json {
            "pass `--yes` to delete the stack's resources (`skyform destroy` without `--json` lists them first)"
        } else {
            "pass `--yes` to delete the resources listed above"
        },
        show_secrets: args.secrets.show_secrets,
    };
    let outcome = session.destroy(&req, &mut prompt).await?;
    let touched = outcome.applied.is_some() || !outcome.plan.has_changes();
    // Under --json a stack with nothing to delete still gets its (empty) result document.
    let code = report(outcome, View { json: args.json, show_secrets: args.secrets.show_secrets }, true)?;
    // Only a stack on the local cloud can leave its daemon idle: destroying an `aws` stack
    // says nothing about (and does nothing to) the local cloud.
    if touched && session.stack_file.provider == "local" {
        stop_idle_local_cloud(&session.project.dir, args.json);
    }
    Ok(code)
}

/// `destroy` leaves no process behind: once nothing is deployed on this project's local cloud
/// (by any stack), its daemon is stopped. It comes back on the next `up`.
fn stop_idle_local_cloud(project_dir: &std::path::Path, json: bool) {
    if let Ok(Some(status)) = skyform_local::status(project_dir)
        && status.is_idle()
        && let Ok(true) = skyform_local::stop(project_dir)
        && !json
    {
        eprintln!(
            "stopped the local cloud: nothing is deployed on it any more (the next `skyform up` starts it)"
        );
    }
}
