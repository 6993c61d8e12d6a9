//! `skyform up`: plan, confirm, apply.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::apply::{ApplyOptions, Cancel};
use crate::cli::render::{self, TerminalSink};
use crate::cli::{Global, confirm, install_interrupt};
use crate::engine::{self, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::Plan;
use crate::state::Snapshot;

/// Create or update the stack's resources to match the program.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Apply without asking for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Show property-level differences.
    #[arg(long)]
    pub diff: bool,
    /// Print the result as JSON (needs --yes).
    #[arg(long)]
    pub json: bool,
    /// Apply a plan saved by `skyform preview --save-plan FILE`; refused if the state moved.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Only these resources (and what they depend on). Repeatable.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// How many steps may run at once.
    #[arg(long, default_value_t = 32)]
    pub parallel: usize,
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
    let lock = session.lock("skyform up")?;
    let mut snap = session.recover(&lock)?;
    if args.clear_pending && !snap.pending_operations.is_empty() {
        let before = snap.clone();
        snap.pending_operations.clear();
        snap = session.write(&before, snap, "up --clear-pending", Instant::now())?;
    }
    engine::ensure_no_pending(&snap)?;
    let started = Instant::now();
    let (plan, providers) = match &args.plan {
        None => super::preview::make_plan(&session, &snap, &args.targets, false).await?,
        Some(path) => {
            let plan = load_plan(path, &mut snap, &session.vault)?;
            let providers = session.start_providers(None, &snap_with_plan_types(&snap, &plan), false).await?;
            (plan, providers)
        }
    };
    if !args.json {
        print!("{}", render::plan_text(&plan, args.diff, "Updating", args.show_secrets));
    }
    if !plan.has_changes() {
        providers.shutdown().await;
        if args.json {
            let stats = engine::CommitStats { serial: snap.serial, ..Default::default() };
            let report = crate::apply::ApplyReport {
                outputs: outputs_of(&snap, &session.vault)?,
                ..Default::default()
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&render::report_json(
                    &plan,
                    &report,
                    &stats,
                    0,
                    args.show_secrets
                ))
                .unwrap()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !confirm("\nDo you want to perform this update?", args.yes)? {
        providers.shutdown().await;
        println!("cancelled: nothing was changed");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        println!();
    }
    let view = View { json: args.json, show_secrets: args.show_secrets };
    apply_and_report(&session, plan, snap, providers, args.parallel, view, "up", started).await
}

/// Applies, writes the state and prints the summary. Shared by `up` and `destroy`.
#[allow(clippy::too_many_arguments)]
pub async fn apply_and_report(
    session: &Session,
    plan: Plan,
    snap: Snapshot,
    providers: crate::providers::Providers,
    parallel: usize,
    view: View,
    command: &str,
    started: Instant,
) -> Result<ExitCode> {
    let View { json, show_secrets } = view;
    let cancel = Cancel::default();
    install_interrupt(cancel.clone());
    let opts = ApplyOptions { parallel, cancel, vault: session.vault.clone() };
    let (_snap, report, stats) = session.apply(&plan, snap, providers, &opts, command).await?;
    let millis = started.elapsed().as_millis() as u64;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&render::report_json(&plan, &report, &stats, millis, show_secrets))
                .unwrap()
        );
    } else {
        print!("{}", render::report_text(&plan, &report, millis, show_secrets));
    }
    if report.interrupted {
        let e = Error::new(
            ErrorKind::Interrupted,
            "interrupted: the steps in flight finished and the state was saved",
        )
        .with_hint("run the command again to finish");
        return Ok(crate::cli::report(&e));
    }
    if !report.failed.is_empty() {
        let mut msg =
            format!("{} step{} failed", report.failed.len(), if report.failed.len() == 1 { "" } else { "s" });
        for (name, err) in &report.failed {
            msg.push_str(&format!("\n  - {name}: {err}"));
        }
        if !report.skipped.is_empty() {
            msg.push_str(&format!(
                "\n  {} step{} that depend on them did not run: {}",
                report.skipped.len(),
                if report.skipped.len() == 1 { "" } else { "s" },
                report.skipped.join(", ")
            ));
        }
        let e = Error::new(ErrorKind::StepsFailed, msg)
            .with_hint("the state records what was done; fix the cause and run the command again");
        return Ok(crate::cli::report(&e));
    }
    Ok(ExitCode::SUCCESS)
}

/// How the result is shown.
#[derive(Clone, Copy)]
pub struct View {
    pub json: bool,
    pub show_secrets: bool,
}

fn outputs_of(
    snap: &Snapshot,
    vault: &crate::secrets::Vault,
) -> Result<std::collections::BTreeMap<String, serde_json::Value>> {
    snap.outputs.iter().map(|(k, v)| Ok((k.clone(), v.open(vault)?))).collect()
}

fn load_plan(path: &std::path::Path, snap: &mut Snapshot, vault: &crate::secrets::Vault) -> Result<Plan> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading the plan {}", path.display()), e))?;
    let plan: Plan = vault.open_json(&bytes, &path.display().to_string()).map_err(|e| {
        if e.kind == ErrorKind::User && e.hint.is_none() {
            Error::user(
                format!("{} is not a skyform plan: {}", path.display(), e.message),
                "save one with `skyform preview --save-plan FILE`",
            )
        } else {
            e
        }
    })?;
    if plan.plan != crate::plan::PLAN_FORMAT {
        return Err(Error::user(
            format!("{} has plan format {}", path.display(), plan.plan),
            "make a new plan",
        ));
    }
    // A plan for a stack that had no state yet: the stack takes the plan's lineage.
    if plan.stack == snap.stack && plan.serial == 0 && snap.serial == 0 && snap.resources.is_empty() {
        snap.lineage = plan.lineage.clone();
    }
    if plan.stack != snap.stack || plan.lineage != snap.lineage || plan.serial != snap.serial {
        return Err(Error::new(
            ErrorKind::StalePlan,
            format!(
                "the plan in {} was made for stack `{}` at state serial {}, but the stack is now at serial {}{}",
                path.display(),
                plan.stack,
                plan.serial,
                snap.serial,
                if plan.lineage != snap.lineage { " of another lineage" } else { "" }
            ),
        )
        .with_hint("the state moved since the plan was made; run `skyform preview --save-plan` again"));
    }
    Ok(plan)
}

/// A snapshot listing the plan's types too, so that `start_providers` starts every provider
/// the plan needs without running the program.
fn snap_with_plan_types(snap: &Snapshot, plan: &Plan) -> Snapshot {
    let mut s = snap.clone();
    for step in &plan.steps {
        if s.live(&step.name).is_none() {
            s.pending_operations.push(crate::state::PendingOp {
                op: crate::state::OpKind::Create,
                name: step.name.clone(),
                type_: step.type_.clone(),
                id: None,
                inputs: Default::default(),
            });
        }
    }
    s
}
