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
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::Value;

use crate::apply::{ApplyOptions, ApplyReport, Cancel};
use crate::engine::{self, CommitStats, Drift, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::events::Event;
use crate::manifest::{self, Manifest};
use crate::plan::{self, Plan, PlanOptions};
use crate::project::{self, Project, valid_name};
use crate::providers::Providers;
use crate::secrets::{Crypter, KeyWrap, SecretsConfig, Vault};
use crate::state::backend::BackendUrl;
use crate::state::lock::{Lock, LockInfo};
use crate::state::{self, HistoryEntry, ResourceState, Snapshot};
use crate::util;
use crate::value;

/// Where the manifest comes from.
#[derive(Debug, Clone)]
pub enum Program {
    /// Run the project's program (`program` in `Skyform.toml`) and read what it prints.
    Project,
    /// A manifest made in this process (for example with `skyform_sdk::Program::manifest`):
    /// what Pulumi calls an inline program.
    Inline(Value),
    /// A manifest already read and checked (secret marks included), applied again without
    /// running the program: `skyform dev` redeploys a function whose code alone changed with
    /// the manifest of the last run, so the program is not run for an edit it cannot see.
    Manifest(Arc<Manifest>),
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
            Program::Manifest(m) => (**m).clone(),
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
        let opts = PlanOptions { targets: targets.to_vec(), vault: self.vault.clone() };
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
        let plan = plan::plan_destroy(&snap, &req.plan.targets, &self.vault)?;
        approve.planned(&plan);
        if !plan.has_changes() || !approve.approve(&plan)? {
            return not_applied(plan, &snap, &self.vault, started);
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
            return not_applied(plan, &snap, &self.vault, started);
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
                return not_applied(plan, &snap, &self.vault, started);
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
            ApplyOptions { parallel: req.parallel, cancel: req.cancel.clone(), vault: self.vault.clone() };
        let (after, report, stats) = self.apply(&plan, snap, providers, &opts, command).await?;
        Ok(Outcome {
            outputs: if plan.destroy { open_outputs(&after, &self.vault)? } else { report.outputs.clone() },
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
        let result = engine::refresh(&snap, &providers, &self.vault).await;
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
        // What the stack knows to be secret (its config secrets and the secrets its state
        // records) is marked wherever the imported resource holds it.
        let mut texts = self.config_secret_texts()?;
        for r in &snap.resources {
            value::secret_texts(&r.inputs.open(&self.vault)?, &mut texts);
            value::secret_texts(&r.outputs.open(&self.vault)?, &mut texts);
        }
        texts.retain(|t| !t.is_empty());
        let providers = self.start_providers_named(&names, false).await?;
        let result = engine::import(&snap, &providers, type_, name, id, &self.vault, &texts).await;
        providers.shutdown().await;
        let (next, resource) = result?;
        let written = self.write(&snap, next, "import", started)?;
        Ok((resource, written.serial))
    }

    /// The stack's state as recorded, with a leftover journal replayed in memory (read-only).
    /// Its secrets stay sealed.
    pub fn export(&self) -> Result<Snapshot> {
        state::load_compacted(&self.files, self.project.name()).map(|(snap, _, _)| snap)
    }

    /// The stack outputs, opened: secrets are marks (`{"$secret": ...}`), for the caller to mask
    /// or show. Needs the stack's key only when an output is secret.
    pub fn outputs(&self) -> Result<BTreeMap<String, Value>> {
        open_outputs(&self.export()?, &self.vault)
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
        // Its secrets must open with this stack's key, or the stack could not use them.
        snap.check_opens(&self.vault).map_err(|e| {
            Error::user(
                format!(
                    "the secrets in {origin} do not open with stack `{}`'s key: {}",
                    self.stack, e.message
                ),
                "import a state exported from this stack (each stack has its own key); nothing was changed",
            )
        })?;
        let _lock = self.lock("skyform stack import")?;
        let started = (SystemTime::now(), Instant::now());
        // A corrupt state is what `import` replaces (the corrupt-state error's hint says so);
        // a readable one keeps its serial going, and one of a newer format is refused.
        match state::read_state(&self.files) {
            Ok(Some(cur)) => snap.serial = snap.serial.max(cur.serial + 1),
            Ok(None) => {}
            Err(e) if e.kind == ErrorKind::State && e.message.contains(" is corrupt: ") => {}
            Err(e) => return Err(e),
        }
        snap.normalize();
        state::write_state(&self.files, &snap)?;
        state::journal::remove_for(&self.files)?;
        // A command that changed the state, like any other (state/README.md).
        state::append_history(
            &self.files,
            &HistoryEntry {
                serial: snap.serial,
                command: "stack import".into(),
                started: util::rfc3339(started.0),
                duration_ms: started.1.elapsed().as_millis() as u64,
                result: "succeeded".into(),
                changes: BTreeMap::new(),
            },
        )?;
        Ok(snap)
    }
}

impl Session {
    /// Writes a plan for `up --plan`: its secrets sealed with the stack's key, the file readable
    /// by its owner only.
    pub fn save_plan(&self, plan: &Plan, path: &Path) -> Result<()> {
        let bytes = self.vault.seal_json(plan)?;
        state::write_private(path, &bytes)?;
        Ok(())
    }

    /// Reads a plan written by [`Session::save_plan`] (opening its secrets with the stack's key).
    pub fn load_plan(&self, path: &Path) -> Result<SavedPlan> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::io(format!("reading the plan {}", path.display()), e)
                .with_hint("save one with `skyform preview --save-plan FILE`")
        })?;
        let plan: Plan = self.vault.open_json(&bytes, &path.display().to_string()).map_err(|e| {
            if e.kind == ErrorKind::User && e.hint.is_none() {
                Error::user(
                    format!("{} is not a skyform plan: {}", path.display(), e.message),
                    "save one with `skyform preview --save-plan FILE`",
                )
            } else {
                e
            }
        })?;
        Ok(SavedPlan { plan, origin: path.display().to_string() })
    }

    /// `stack change-secrets-provider`: every secret of the stack (state and config) re-encrypted
    /// under a new data key wrapped by `wrap`, under the lock. Everything is opened with the old
    /// key first, so a wrong passphrase changes nothing; if the stack file cannot be written, the
    /// state is put back. Returns the new `[secrets]` table.
    pub fn change_secrets_provider(&self, wrap: Arc<dyn KeyWrap>) -> Result<SecretsConfig> {
        let path = self.project.stack_file_path(&self.stack);
        let old = &self.vault;
        let lock = self.lock("skyform stack change-secrets-provider")?;
        let snap = self.recover(&lock)?;
        snap.check_opens(old)?;
        let config = old.open(&Value::Object(self.project.load_stack(&self.stack)?.config_json()))?;
        let (crypter, key) = Crypter::generate()?;
        let secrets = SecretsConfig { provider: wrap.provider(), key: Some(B64.encode(wrap.wrap(&key)?)) };
        let new = Vault::with_crypter(secrets.clone(), crypter);
        let resealed = snap.reseal(old, &new)?;
        // The config's secrets, re-encrypted, in the same places.
        let mut secure: Vec<(Vec<String>, String)> = Vec::new();
        collect_secure(&config, &mut Vec::new(), &new, &mut secure)?;
        let before_state = self.files.read_state_bytes()?;
        let before_file =
            std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        self.write(&snap, resealed, "change-secrets-provider", Instant::now())?;
        let result = project::edit_stack_file(&path, |doc| {
            for (segs, text) in &secure {
                let mut item =
                    doc.get_mut("config").ok_or_else(|| Error::user("no [config]", "restore the file"))?;
                for s in segs {
                    item = item
                        .get_mut(s)
                        .ok_or_else(|| Error::user(format!("no config `{s}`"), "restore the file"))?;
                }
                let mut t = toml_edit::InlineTable::new();
                t.insert("secure", text.clone().into());
                *item = toml_edit::value(t);
            }
            let mut t = toml_edit::Table::new();
            t.insert("provider", toml_edit::value(secrets.provider.clone()));
            t.insert("key", toml_edit::value(secrets.key.clone().unwrap_or_default()));
            doc.insert("secrets", toml_edit::Item::Table(t));
            Ok(())
        });
        if let Err(e) = result {
            // Put the state back as it was: the stack file still names the old key.
            if let Some(bytes) = before_state {
                self.files.write_state_bytes(&bytes)?;
            }
            state::write_atomic(&path, &before_file)?;
            return Err(e);
        }
        drop(lock);
        Ok(secrets)
    }

    /// `config set`: `segs` is the key's path into nested tables. A secret is stored as
    /// `{ secure = "v1:..." }`, encrypted with the stack's data key (made and recorded if this is
    /// the stack's first secret). The file is edited in place: comments and layout survive.
    pub fn config_set(&self, segs: &[String], text: String, secret: bool) -> Result<()> {
        check_config_key(segs)?;
        let item = if secret {
            let crypter = self.vault.crypter()?;
            let mut t = toml_edit::InlineTable::new();
            t.insert("secure", crypter.encrypt(&Value::String(text)).into());
            toml_edit::value(t)
        } else {
            toml_edit::value(text)
        };
        project::edit_stack_file(&self.project.stack_file_path(&self.stack), |doc| {
            let mut table =
                doc.entry("config").or_insert(toml_edit::table()).as_table_like_mut().ok_or_else(|| {
                    Error::user("`config` in the stack file is not a table", "fix the file")
                })?;
            for s in &segs[..segs.len() - 1] {
                table =
                    table.entry(s).or_insert(toml_edit::table()).as_table_like_mut().ok_or_else(|| {
                        Error::user(format!("config `{s}` is not a table"), "pick another key")
                    })?;
            }
            table.insert(&segs[segs.len() - 1], item);
            Ok(())
        })
    }

    /// `config rm`: whether the value was there.
    pub fn config_rm(&self, segs: &[String]) -> Result<bool> {
        check_config_key(segs)?;
        let mut removed = false;
        project::edit_stack_file(&self.project.stack_file_path(&self.stack), |doc| {
            let mut table = match doc.get_mut("config").and_then(|c| c.as_table_like_mut()) {
                Some(t) => t,
                None => return Ok(()),
            };
            for s in &segs[..segs.len() - 1] {
                table = match table.get_mut(s).and_then(|c| c.as_table_like_mut()) {
                    Some(t) => t,
                    None => return Ok(()),
                };
            }
            removed = table.remove(&segs[segs.len() - 1]).is_some();
            Ok(())
        })?;
        Ok(removed)
    }
}

fn check_config_key(segs: &[String]) -> Result<()> {
    if segs.is_empty() || segs.iter().any(|s| s.is_empty()) {
        return Err(Error::user(
            format!("`{}` is not a config key", segs.join(".")),
            "use names like `stripe_key` or, with --path, `db.password`",
        ));
    }
    Ok(())
}

/// The paths of every secret in the opened config, with their new ciphertext.
fn collect_secure(
    v: &Value,
    path: &mut Vec<String>,
    vault: &Vault,
    out: &mut Vec<(Vec<String>, String)>,
) -> Result<()> {
    if let Some(inner) = value::as_mark(v) {
        out.push((path.clone(), vault.crypter()?.encrypt(inner)));
        return Ok(());
    }
    if let Value::Object(map) = v {
        for (k, c) in map {
            path.push(k.clone());
            collect_secure(c, path, vault, out)?;
            path.pop();
        }
    }
    Ok(())
}

fn not_applied(plan: Plan, snap: &Snapshot, vault: &Vault, started: Instant) -> Result<Outcome> {
    Ok(Outcome {
        plan,
        applied: None,
        outputs: open_outputs(snap, vault)?,
        serial: snap.serial,
        millis: started.elapsed().as_millis() as u64,
    })
}

/// A state's outputs, opened (secrets as marks).
fn open_outputs(snap: &Snapshot, vault: &Vault) -> Result<BTreeMap<String, Value>> {
    snap.outputs.iter().map(|(k, v)| Ok((k.clone(), v.open(vault)?))).collect()
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
        let files = project.stack_files(&s)?;
        let (snap, _) = state::load(&files, project.name())?;
        out.push(StackSummary { name: s, provider: file.provider, resources: snap.resources.len() });
    }
    Ok(out)
}

/// `stack init`: writes `Skyform.<name>.toml`. Returns its path.
///
/// `secrets`, when given, is called once the file exists and returns the key wrapper of the
/// stack's secrets provider (a KMS key, say): the stack's data key is made and recorded now, so
/// that a bad key is found at once rather than at the first secret; if that fails the file is
/// removed again. Without it the stack uses a passphrase, asked for at its first secret.
pub fn stack_init(
    project: &Project,
    name: &str,
    provider: &str,
    secrets: Option<&dyn Fn() -> Result<Arc<dyn KeyWrap>>>,
) -> Result<PathBuf> {
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
    if let Some(secrets) = secrets {
        let result = secrets().and_then(|wrap| {
            let (_, key) = Crypter::generate()?;
            let config = SecretsConfig { provider: wrap.provider(), key: Some(B64.encode(wrap.wrap(&key)?)) };
            project::write_secrets_config(&path, &config)
        });
        if let Err(e) = result {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    }
    Ok(path)
}

/// `stack rm`: removes a stack that records no resources (or, with `force`, forgets them),
/// under the stack's lock, so that it cannot vanish under a running command.
pub fn stack_rm(project: &Project, name: &str, force: bool, user: &str) -> Result<()> {
    let path = project.stack_file_path(name);
    if !path.exists() {
        return Err(Error::user(format!("stack `{name}` does not exist"), "see `skyform stack ls`"));
    }
    let files = project.stack_files(name)?;
    let _lock = files.acquire_lock(&lock_info(user, "skyform stack rm"))?;
    let (snap, _) = state::load(&files, project.name())?;
    if !snap.resources.is_empty() && !force {
        return Err(Error::user(
            format!("stack `{name}` still has {} resources", snap.resources.len()),
            format!("run `skyform destroy -s {name}` first, or pass --force to forget them"),
        ));
    }
    files.remove_all()?;
    remove_if_present(&path)?;
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

/// What `stack migrate` moved.
#[derive(Debug, Clone, Serialize)]
pub struct Migrated {
    pub from: String,
    pub to: String,
    pub serial: u64,
    pub resources: usize,
    pub history: usize,
}

/// `stack migrate --to BACKEND`: moves the stack's state and history to another backend, under
/// both backends' locks, then records `backend = "..."` in the stack file and removes the old
/// copy. A leftover journal is compacted first; the state is copied byte for byte (its secrets
/// stay sealed with the stack's key, which stays in the stack file). The target must not hold
/// a state of this stack already. If recording the new backend fails, the copy is removed and
/// the stack stays where it was.
pub fn stack_migrate(project: &Project, stack: &str, to: &str, user: &str) -> Result<Migrated> {
    let target_url = BackendUrl::parse(to)?;
    let source_url = project.backend(stack)?;
    if source_url == target_url {
        return Err(Error::user(
            format!("stack `{stack}` already keeps its state in {target_url}"),
            "name another backend with --to (`folder`, or `s3://BUCKET/PREFIX`)",
        ));
    }
    let source = project.stack_files(stack)?;
    let target = project.stack_files_at(stack, &target_url)?;
    let lock = source.acquire_lock(&lock_info(user, "skyform stack migrate"))?;
    let _target_lock = target.acquire_lock(&lock_info(user, "skyform stack migrate"))?;
    let snap = state::recover(&source, project.name(), &lock)?;
    let bytes = source.read_state_bytes()?;
    let history = state::read_history(&source)?;
    if target.read_state_bytes()?.is_some() || !state::read_history(&target)?.is_empty() {
        return Err(Error::user(
            format!("{} already holds a state of stack `{stack}`", target.describe()),
            "nothing was changed; remove it (or pick another prefix) and migrate again",
        ));
    }
    let copy = || -> Result<()> {
        if let Some(b) = &bytes {
            target.write_state_bytes(b)?;
        }
        for entry in &history {
            state::append_history(&target, entry)?;
        }
        // Read it back: what the next command will load.
        if bytes.is_some() {
            let back = state::read_state(&target)?;
            if back.as_ref().map(|s| (&s.lineage, s.serial)) != Some((&snap.lineage, snap.serial)) {
                return Err(Error::new(
                    ErrorKind::State,
                    format!("the state copied to {} does not read back as written", target.describe()),
                ));
            }
        }
        project::edit_stack_file(&project.stack_file_path(stack), |doc| {
            doc.insert("backend", toml_edit::value(to));
            Ok(())
        })
    };
    if let Err(mut e) = copy() {
        let _ = target.remove_all();
        let kept = format!("the stack still keeps its state in {source_url}; nothing was lost");
        e.hint = Some(match e.hint.take() {
            Some(h) => format!("{h}; {kept}"),
            None => kept,
        });
        return Err(e);
    }
    source.remove_all()?;
    drop(lock);
    Ok(Migrated {
        from: source_url.to_string(),
        to: target_url.to_string(),
        serial: snap.serial,
        resources: snap.resources.len(),
        history: history.len(),
    })
}
