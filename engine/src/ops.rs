//! The use cases: what a command does with a stack, from opening it to writing its state.
//!
//! The CLI is one caller; a program embedding the engine (a test suite standing up an ephemeral
//! stack, a deployment service) is another, which is why these live here and not in the CLI:
//! every operation that touches a stack takes the stack's lock first, recovers an interrupted
//! run's journal, and reports progress only as [`Event`](crate::events::Event)s to the
//! session's sink. Decisions that need a person (confirming a plan, recording drift) are asked
//! through a callback, so that the CLI can show the plan and prompt, and a program can decide
//! in code. Nothing here prints or reads the environment.
//!
//! Each operation is a method of [`Session`] (one project, one stack). Project-level operations
//! (listing, creating and removing stacks) are free functions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::apply::{ApplyOptions, ApplyReport, Cancel};
use crate::engine::{self, CommitStats, Drift, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::events::Event;
use crate::manifest::{self, Manifest};
use crate::plan::{self, Plan, PlanOptions};
use crate::project::{Project, valid_name};
use crate::providers::Providers;
use crate::state::lock::{Lock, LockInfo};
use crate::state::{self, HistoryEntry, ResourceState, Snapshot, StackFiles};
use crate::util;

/// Where the manifest comes from.
#[derive(Debug, Clone)]
pub enum Program {
    /// Run the project's program (`program` in `Skyform.toml`) and read what it prints.
    Project,
    /// A manifest made in this process (for example with `skyform_sdk::Program::manifest`):
    /// what Pulumi calls an inline program.
    Inline(Value),
}

/// What `preview` and `up` plan against.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub program: Program,
    /// Only these resources (and what they depend on).
    pub targets: Vec<String>,
    /// Forget operations an interrupted run left unresolved (`up` records that; `preview` only
    /// plans as if).
    pub clear_pending: bool,
}

impl Default for PlanRequest {
    fn default() -> Self {
        PlanRequest { program: Program::Project, targets: Vec::new(), clear_pending: false }
    }
}

/// What `up` (and `destroy`) apply, and how.
#[derive(Debug, Clone)]
pub struct UpRequest {
    pub plan: PlanRequest,
    /// Apply this saved plan (`preview --save-plan`) instead of planning; refused if the state
    /// moved since it was made.
    pub saved_plan: Option<SavedPlan>,
    /// How many steps may run at once.
    pub parallel: usize,
    /// Allow a plan that deletes every resource because the program declares none.
    pub allow_delete_all: bool,
    /// Stops new steps from starting (the CLI's Ctrl-C).
    pub cancel: Cancel,
}

impl Default for UpRequest {
    fn default() -> Self {
        UpRequest {
            plan: PlanRequest::default(),
            saved_plan: None,
            parallel: 32,
            allow_delete_all: false,
            cancel: Cancel::default(),
        }
    }
}

/// A plan saved by `preview --save-plan`, and where it was read from (for messages).
#[derive(Debug, Clone)]
pub struct SavedPlan {
    pub plan: Plan,
    pub origin: String,
}

/// Asked during `up` and `destroy`.
pub trait Approve {
    /// The plan, before anything is decided (the CLI shows it).
    fn planned(&mut self, _plan: &Plan) {}
    /// Whether to apply a plan that has changes.
    fn approve(&mut self, plan: &Plan) -> Result<bool>;
}

/// Applies every plan without asking (`--yes`).
pub struct Yes;

impl Approve for Yes {
    fn approve(&mut self, _plan: &Plan) -> Result<bool> {
        Ok(true)
    }
}

/// What `up` or `destroy` did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    /// `None` when the plan had no changes or was not approved.
    pub applied: Option<Applied>,
    /// The stack outputs and serial after the operation.
    pub outputs: BTreeMap<String, Value>,
    pub serial: u64,
    /// Since the operation started.
    pub millis: u64,
}

#[derive(Debug, Clone)]
pub struct Applied {
    pub report: ApplyReport,
    pub stats: CommitStats,
}

/// What `refresh` found and did.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub drift: Vec<Drift>,
    /// Whether the state differs from what the providers report.
    pub changed: bool,
    /// The serial written, when the changes were recorded.
    pub written: Option<u64>,
}

impl Session {
    /// The manifest, from the project's program or inline, checked against this stack.
    pub async fn manifest(&self, program: &Program) -> Result<Manifest> {
        let manifest = match program {
            Program::Project => self.run_program().await?,
            Program::Inline(v) => manifest::parse(&v.to_string(), "the inline program")?,
        };
        if manifest.stack != self.stack {
            return Err(Error::user(
                format!(
                    "the program wrote a manifest for stack `{}`, but this is stack `{}`",
                    manifest.stack, self.stack
                ),
                "the program should take the stack name from SKYFORM_STACK",
            ));
        }
        if manifest.project != self.project.name() {
            return Err(Error::user(
                format!(
                    "the program wrote a manifest for project `{}`, but this is project `{}` (Skyform.toml)",
                    manifest.project,
                    self.project.name()
                ),
                "the program should take the project name from SKYFORM_PROJECT",
            ));
        }
        Ok(manifest)
    }

    /// Runs the program, starts the providers and plans (without the lock: the caller holds it).
    pub async fn make_plan(
        &self,
        snap: &Snapshot,
        program: &Program,
        targets: &[String],
        dry_run: bool,
    ) -> Result<(Plan, Providers)> {
        let manifest = self.manifest(program).await?;
        let graph = manifest.validate()?;
        let providers = self.start_providers(Some(&manifest), snap, dry_run).await?;
        let opts = PlanOptions { targets: targets.to_vec(), salt: snap.lineage.clone() };
        match plan::plan_update(&manifest, &graph, snap, &providers, &opts).await {
            Ok(p) => Ok((p, providers)),
            Err(e) => {
                providers.shutdown().await;
                Err(e)
            }
        }
    }

    /// `preview`: the plan `up` would apply. **Writes nothing**, not even a leftover journal's
    /// compaction.
    pub async fn preview(&self, req: &PlanRequest) -> Result<Plan> {
        let lock = self.lock("skyform preview")?;
        let mut snap = self.load(&lock)?;
        if req.clear_pending {
            snap.pending_operations.clear();
        }
        engine::ensure_no_pending(&snap)?;
        let (plan, providers) = self.make_plan(&snap, &req.program, &req.targets, true).await?;
        providers.shutdown().await;
        Ok(plan)
    }

    /// `up`: plan (or take a saved plan), ask, apply, record. Progress goes to the sink as
    /// events; the caller renders the returned report.
    pub async fn up(&self, req: &UpRequest, approve: &mut (dyn Approve + Send)) -> Result<Outcome> {
        let started = Instant::now();
        let lock = self.lock("skyform up")?;
        let mut snap = self.recover_clearing(&lock, req.plan.clear_pending, "up --clear-pending")?;
        let (plan, providers) = match &req.saved_plan {
            None => self.make_plan(&snap, &req.plan.program, &req.plan.targets, false).await?,
            Some(SavedPlan { plan: saved, origin }) => {
                check_saved_plan(saved, origin, &mut snap)?;
                // The providers of the plan's steps and of the state: no program to ask, and no
                // stand-in operations to make up.
                let mut names: BTreeSet<String> =
                    saved.steps.iter().map(|s| plan::provider_name(&s.type_).to_string()).collect();
                names.extend(snap.resources.iter().map(|r| plan::provider_name(&r.type_).to_string()));
                (saved.clone(), self.start_providers_named(&names, false).await?)
            }
        };
        self.apply_approved(plan, snap, providers, req, approve, "up", started).await
    }

    /// `destroy`: delete every resource of the stack (or the targets and what depends on them).
    pub async fn destroy(&self, req: &UpRequest, approve: &mut (dyn Approve + Send)) -> Result<Outcome> {
        let started = Instant::now();
        let lock = self.lock("skyform destroy")?;
        let snap = self.recover_clearing(&lock, req.plan.clear_pending, "destroy --clear-pending")?;
        let plan = plan::plan_destroy(&snap, &req.plan.targets)?;
        approve.planned(&plan);
        if !plan.has_changes() || !approve.approve(&plan)? {
            return Ok(not_applied(plan, &snap, started));
        }
        let providers = self.start_providers(None, &snap, false).await?;
        self.apply_plan(plan, snap, providers, req, "destroy", started).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_approved(
        &self,
        plan: Plan,
        snap: Snapshot,
        providers: Providers,
        req: &UpRequest,
        approve: &mut (dyn Approve + Send),
        command: &str,
        started: Instant,
    ) -> Result<Outcome> {
        approve.planned(&plan);
        if !plan.has_changes() {
            providers.shutdown().await;
            return Ok(not_applied(plan, &snap, started));
        }
        if plan.deletes_everything() {
            if !req.allow_delete_all {
                providers.shutdown().await;
                return Err(Error::user(
                    format!("refusing to apply: {}", plan.delete_all_warning()),
                    "if the program is right to declare nothing, run `skyform destroy` (or pass `--allow-delete-all`); \
                     otherwise fix the program: nothing was changed",
                ));
            }
            self.sink.event(Event::Warning { message: plan.delete_all_warning() });
        }
        match approve.approve(&plan) {
            Ok(true) => {}
            other => {
                providers.shutdown().await;
                other?;
                return Ok(not_applied(plan, &snap, started));
            }
        }
        self.apply_plan(plan, snap, providers, req, command, started).await
    }

    async fn apply_plan(
        &self,
        plan: Plan,
        snap: Snapshot,
        providers: Providers,
        req: &UpRequest,
        command: &str,
        started: Instant,
    ) -> Result<Outcome> {
        let opts =
            ApplyOptions { parallel: req.parallel, cancel: req.cancel.clone(), salt: snap.lineage.clone() };
        let (after, report, stats) = self.apply(&plan, snap, providers, &opts, command).await?;
        Ok(Outcome {
            outputs: if plan.destroy { after.outputs.clone() } else { report.outputs.clone() },
            serial: stats.serial,
            millis: started.elapsed().as_millis() as u64,
            applied: Some(Applied { report, stats }),
            plan,
        })
    }

    /// Recovers the state and, if asked, forgets its pending operations (recorded as `command`).
    fn recover_clearing(&self, lock: &Lock, clear: bool, command: &str) -> Result<Snapshot> {
        let mut snap = self.recover(lock)?;
        if clear && !snap.pending_operations.is_empty() {
            let before = snap.clone();
            snap.pending_operations.clear();
            snap = self.write(&before, snap, command, Instant::now())?;
        }
        engine::ensure_no_pending(&snap)?;
        Ok(snap)
    }

    /// `refresh`: read every resource and every pending operation; `record` sees the drift
    /// (and whether the state would change) and says whether to write it.
    pub async fn refresh_state(
        &self,
        record: &mut (dyn FnMut(&[Drift], bool) -> Result<bool> + Send),
    ) -> Result<Refreshed> {
        let started = Instant::now();
        let lock = self.lock("skyform refresh")?;
        let snap = self.recover(&lock)?;
        let providers = self.start_providers(None, &snap, true).await?;
        let result = engine::refresh(&snap, &providers, &snap.lineage).await;
        providers.shutdown().await;
        let (next, drift) = result?;
        let changed = !next.same_content(&snap);
        let mut written = None;
        if record(&drift, changed)? && changed {
            written = Some(self.write(&snap, next, "refresh", started)?.serial);
        }
        Ok(Refreshed { drift, changed, written })
    }

    /// `import`: read an existing resource by its provider id and record it under `name`.
    /// Returns what was recorded and the new serial.
    pub async fn import_resource(&self, type_: &str, name: &str, id: &str) -> Result<(ResourceState, u64)> {
        let started = Instant::now();
        let lock = self.lock("skyform import")?;
        let snap = self.recover(&lock)?;
        engine::ensure_no_pending(&snap)?;
        let names = BTreeSet::from([plan::provider_name(type_).to_string()]);
        let providers = self.start_providers_named(&names, false).await?;
        let result = engine::import(&snap, &providers, type_, name, id).await;
        providers.shutdown().await;
        let (next, resource) = result?;
        let written = self.write(&snap, next, "import", started)?;
        Ok((resource, written.serial))
    }

    /// The stack's state as recorded, with a leftover journal replayed in memory (read-only).
    pub fn export(&self) -> Result<Snapshot> {
        state::load_compacted(&self.files, self.project.name()).map(|(snap, _, _)| snap)
    }

    /// The stack outputs.
    pub fn outputs(&self) -> Result<BTreeMap<String, Value>> {
        Ok(self.export()?.outputs)
    }

    /// The commands that changed the state, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>> {
        state::read_history(&self.files)
    }

    /// `stack import`: replace the state with `bytes` (a state file, validated first).
    pub fn import_state(&self, bytes: &[u8], origin: &str) -> Result<Snapshot> {
        let mut snap = state::parse_state(bytes, origin)?;
        if snap.stack != self.stack {
            return Err(Error::user(
                format!("{origin} holds the state of stack `{}`, not `{}`", snap.stack, self.stack),
                format!("import it with `-s {}`", snap.stack),
            ));
        }
        let _lock = self.lock("skyform stack import")?;
        if let Some(cur) = state::load_file(&self.files.state())? {
            snap.serial = snap.serial.max(cur.serial + 1);
        }
        snap.normalize();
        state::write_state(&self.files, &snap)?;
        state::journal::remove(&self.files.journal())?;
        Ok(snap)
    }
}

fn not_applied(plan: Plan, snap: &Snapshot, started: Instant) -> Outcome {
    Outcome {
        plan,
        applied: None,
        outputs: snap.outputs.clone(),
        serial: snap.serial,
        millis: started.elapsed().as_millis() as u64,
    }
}

/// A saved plan applies only to the state it was made against.
pub fn check_saved_plan(plan: &Plan, origin: &str, snap: &mut Snapshot) -> Result<()> {
    if plan.plan != plan::PLAN_FORMAT {
        return Err(Error::user(format!("{origin} has plan format {}", plan.plan), "make a new plan"));
    }
    // A plan for a stack that had no state yet: the stack takes the plan's lineage.
    if plan.stack == snap.stack && plan.serial == 0 && snap.serial == 0 && snap.resources.is_empty() {
        snap.lineage = plan.lineage.clone();
    }
    if plan.stack != snap.stack || plan.lineage != snap.lineage || plan.serial != snap.serial {
        return Err(Error::new(
            ErrorKind::StalePlan,
            format!(
                "the plan in {origin} was made for stack `{}` at state serial {}, but the stack is now at serial {}{}",
                plan.stack,
                plan.serial,
                snap.serial,
                if plan.lineage != snap.lineage { " of another lineage" } else { "" }
            ),
        )
        .with_hint("the state moved since the plan was made; run `skyform preview --save-plan` again"));
    }
    Ok(())
}

/// One line of `stack ls`.
#[derive(Debug, Clone, Serialize)]
pub struct StackSummary {
    pub name: String,
    pub provider: String,
    pub resources: usize,
}

/// The project's stacks, with their provider and how many resources they record.
pub fn stack_ls(project: &Project) -> Result<Vec<StackSummary>> {
    let mut out = Vec::new();
    for s in project.stacks()? {
        let file = project.load_stack(&s)?;
        let files = StackFiles::new(project.state_dir(), &s);
        let (snap, _) = state::load(&files, project.name())?;
        out.push(StackSummary { name: s, provider: file.provider, resources: snap.resources.len() });
    }
    Ok(out)
}

/// `stack init`: writes `Skyform.<name>.toml`. Returns its path.
pub fn stack_init(project: &Project, name: &str, provider: &str) -> Result<PathBuf> {
    if !valid_name(name) {
        return Err(Error::user(
            format!("`{name}` is not a valid stack name"),
            "use letters, digits, `-` and `_`",
        ));
    }
    let path = project.stack_file_path(name);
    if path.exists() {
        return Err(Error::user(
            format!("stack `{name}` already exists ({})", path.display()),
            "pick another name",
        ));
    }
    let text = format!(
        "# The `{name}` stack of project `{}`.\nprovider = \"{provider}\"\n\n[config]\n# Values the program reads with ctx.config(\"key\").\n\n# [providers.{provider}]\n# Settings for the provider (for aws: region, profile, endpoint).\n",
        project.name()
    );
    state::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// `stack rm`: removes a stack that records no resources (or, with `force`, forgets them),
/// under the stack's lock, so that it cannot vanish under a running command.
pub fn stack_rm(project: &Project, name: &str, force: bool, user: &str) -> Result<()> {
    let path = project.stack_file_path(name);
    if !path.exists() {
        return Err(Error::user(format!("stack `{name}` does not exist"), "see `skyform stack ls`"));
    }
    let files = StackFiles::new(project.state_dir(), name);
    let _lock = Lock::acquire(&files.lock(), &lock_info(user, "skyform stack rm"))?;
    let (snap, _) = state::load(&files, project.name())?;
    if !snap.resources.is_empty() && !force {
        return Err(Error::user(
            format!("stack `{name}` still has {} resources", snap.resources.len()),
            format!("run `skyform destroy -s {name}` first, or pass --force to forget them"),
        ));
    }
    for p in [files.state(), files.journal(), files.history(), path] {
        remove_if_present(&p)?;
    }
    Ok(())
}

fn remove_if_present(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", p.display()), e)),
    }
}

/// Who holds a lock: this process, for `command`.
pub fn lock_info(user: &str, command: &str) -> LockInfo {
    LockInfo {
        pid: std::process::id(),
        host: state::lock::hostname(),
        user: user.to_string(),
        started: util::rfc3339(SystemTime::now()),
        command: command.to_string(),
    }
}
