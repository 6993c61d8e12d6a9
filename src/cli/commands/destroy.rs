//! `skyform destroy`: delete every resource of the stack (a plan against an empty program).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::render::{self, TerminalSink};
use crate::cli::{Global, confirm};
use crate::engine;
use crate::error::Result;
use crate::plan;

/// Delete all of the stack's resources, dependents first.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Delete without asking for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Print the result as JSON (needs --yes).
    #[arg(long)]
    pub json: bool,
    /// Only these resources and whatever depends on them. Repeatable.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// How many steps may run at once.
    #[arg(long, default_value_t = 32)]
    pub parallel: usize,
    /// Forget operations an interrupted run left unresolved.
    #[arg(long)]
    pub clear_pending: bool,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, args.json));
    let session = g.session(sink.clone())?;
    let lock = session.lock("skyform destroy")?;
    let mut snap = session.recover(&lock)?;
    if args.clear_pending && !snap.pending_operations.is_empty() {
        let before = snap.clone();
        snap.pending_operations.clear();
        snap = session.write(&before, snap, "destroy --clear-pending", Instant::now())?;
    }
    engine::ensure_no_pending(&snap)?;
    let started = Instant::now();
    let plan = plan::plan_destroy(&snap, &args.targets, &session.vault)?;
    if !args.json {
        print!("{}", render::plan_text(&plan, false, "Destroying", false));
    }
    if !plan.has_changes() {
        stop_idle_local_cloud(&session.project.dir);
        return Ok(ExitCode::SUCCESS);
    }
    if !confirm("\nDo you want to delete these resources?", args.yes)? {
        println!("cancelled: nothing was changed");
        return Ok(ExitCode::SUCCESS);
    }
    let providers = session.start_providers(None, &snap, false).await?;
    if !args.json {
        println!();
    }
    let code = super::up::apply_and_report(
        &session,
        plan,
        snap,
        providers,
        args.parallel,
        super::up::View { json: args.json, show_secrets: false },
        "destroy",
        started,
    )
    .await?;
    stop_idle_local_cloud(&session.project.dir);
    Ok(code)
}

/// `destroy` leaves no process behind: once nothing is deployed on this project's local cloud
/// (by any stack), its daemon is stopped. It comes back on the next `up`.
fn stop_idle_local_cloud(project_dir: &std::path::Path) {
    if let Ok(Some(status)) = skyform_local::status(project_dir)
        && status.functions.is_empty()
        && status.apis.is_empty()
        && let Ok(true) = skyform_local::stop(project_dir)
    {
        eprintln!(
            "stopped the local cloud: nothing is deployed on it any more (the next `skyform up` starts it)"
        );
    }
}
