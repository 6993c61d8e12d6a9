//! `skyform up`: plan, confirm, apply.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::apply::{ApplyReport, Cancel};
use crate::cli::render::{self, TerminalSink};
use crate::cli::{Global, confirm_with_details, flags, install_interrupt};
use crate::engine::CommitStats;
use crate::error::{Error, ErrorKind, Result};
use crate::ops::{Approve, Outcome, PlanRequest, Program, UpRequest};
use crate::plan::Plan;

/// Create or update the stack's resources to match the program.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub apply: flags::Apply,
    /// Show property-level differences.
    #[arg(long)]
    pub diff: bool,
    /// Print the result as JSON (needs --yes).
    #[arg(long)]
    pub json: bool,
    /// Apply a plan saved by `skyform preview --save-plan FILE`; refused if the state moved.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub targets: flags::Targets,
    #[command(flatten)]
    pub pending: flags::ClearPending,
    /// Apply a plan that deletes every resource of the stack (the program declares none);
    /// refused without it, even with --yes. `skyform destroy` is the usual way to do that.
    #[arg(long)]
    pub allow_delete_all: bool,
    #[command(flatten)]
    pub secrets: flags::ShowSecrets,
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let sink = Arc::new(TerminalSink::new(g.verbose, args.json));
    let session = g.session(sink.clone())?;
    let saved_plan = match &args.plan {
        Some(path) => Some(session.load_plan(path)?),
        None => None,
    };
    crate::cli::local_cloud::bring_back(&session, saved_plan.is_some()).await?;
    let cancel = Cancel::default();
    install_interrupt(cancel.clone());
    let req = UpRequest {
        plan: PlanRequest {
            program: Program::Project,
            targets: args.targets.targets.clone(),
            clear_pending: args.pending.clear_pending,
        },
        saved_plan,
        parallel: args.apply.parallel,
        allow_delete_all: args.allow_delete_all,
        cancel,
    };
    let mut approve = Prompt {
        json: args.json,
        diff: args.diff,
        yes: args.apply.yes,
        verb: "Updating",
        question: "\nDo you want to perform this update?",
        refusal_hint: if args.json {
            "pass `--yes` to apply the plan (`skyform preview` shows it)"
        } else {
            "pass `--yes` to apply the plan shown above"
        },
        show_secrets: args.secrets.show_secrets,
    };
    let outcome = session.up(&req, &mut approve).await?;
    report(outcome, View { json: args.json, show_secrets: args.secrets.show_secrets }, true)
}

/// Shows the plan and asks (or takes `--yes`).
pub struct Prompt {
    pub json: bool,
    pub diff: bool,
    pub yes: bool,
    pub verb: &'static str,
    pub question: &'static str,
    /// What to do when there is no terminal to ask on; it names only what was shown.
    pub refusal_hint: &'static str,
    /// `--show-secrets`: the plan shows secrets in plaintext.
    pub show_secrets: bool,
}

impl Approve for Prompt {
    fn planned(&mut self, plan: &Plan) {
        for w in crate::cli::routes::shadowed(plan) {
            render::warn(&w);
        }
        if !self.json {
            print!("{}", render::plan_text(plan, self.diff, self.verb, self.show_secrets));
        }
    }
    fn approve(&mut self, plan: &Plan) -> Result<bool> {
        // `details`: the plan again, property by property.
        let (verb, reveal) = (self.verb, self.show_secrets);
        let mut details = || print!("\n{}", render::plan_text(plan, true, verb, reveal));
        if !confirm_with_details(self.question, self.yes, self.refusal_hint, &mut details)? {
            if self.json {
                eprintln!("cancelled: nothing was changed");
            } else {
                println!("cancelled: nothing was changed");
            }
            return Ok(false);
        }
        if !self.json {
            println!();
        }
        Ok(true)
    }
}

/// How the result is shown.
#[derive(Clone, Copy)]
pub struct View {
    pub json: bool,
    /// `--show-secrets`: secret outputs in plaintext instead of `[secret]`.
    pub show_secrets: bool,
}

/// Prints what `up` or `destroy` did and maps it to an exit code. Shared by `up` and `destroy`.
pub fn report(outcome: Outcome, view: View, json_when_unchanged: bool) -> Result<ExitCode> {
    let View { json, show_secrets } = view;
    let Outcome { plan, applied, outputs, serial, millis } = outcome;
    let Some(applied) = applied else {
        if json && json_when_unchanged && !plan.has_changes() {
            let stats = CommitStats { serial, ..Default::default() };
            let report = ApplyReport { outputs, ..Default::default() };
            render::print_json(&render::report_json(&plan, &report, &stats, 0, show_secrets));
        }
        return Ok(ExitCode::SUCCESS);
    };
    let report = applied.report;
    if json {
        render::print_json(&render::report_json(&plan, &report, &applied.stats, millis, show_secrets));
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
