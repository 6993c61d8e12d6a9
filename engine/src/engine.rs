//! The engine's operations, one stack at a time: run the program, plan, apply, refresh,
//! import. The CLI calls these; they report progress through the [`Sink`] and return data.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;
use skyform_protocol::{Call, ReadRequest, ReadResponse};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::task::JoinSet;

use crate::apply::{self, ApplyOptions, ApplyReport};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};
use crate::manifest::{self, Manifest};
use crate::plan::{self, Plan, StepKind};
use crate::project::{Project, StackFile};
use crate::providers::{ProviderSettings, Providers};
use crate::secrets::{KeySource, Sealed, Vault};
use crate::state::lock::{Lock, LockInfo};
use crate::state::{self, HistoryEntry, Mutation, OpKind, ResourceState, Snapshot, StackFiles};
use crate::util;
use crate::value;

/// Everything a command needs to work on one stack.
pub struct Session {
    pub project: Project,
    pub stack: String,
    pub stack_file: StackFile,
    pub files: StackFiles,
    pub settings: ProviderSettings,
    pub sink: Sink,
    /// The user name recorded in the lock (the CLI reads `$USER`).
    pub user: String,
    /// The stack's secrets: its data key, fetched from the key source on first use.
    pub vault: Arc<Vault>,
}

impl Session {
    pub fn open(
        project: Project,
        stack: &str,
        settings: ProviderSettings,
        sink: Sink,
        user: String,
        keys: KeySource,
    ) -> Result<Session> {
        let stack_file = project.load_stack(stack)?;
        let files = project.stack_files(stack)?;
        let vault =
            Arc::new(Vault::new(stack_file.secrets_config(), keys, Some(project.stack_file_path(stack))));
        Ok(Session { project, stack: stack.to_string(), stack_file, files, settings, sink, user, vault })
    }

    pub fn lock(&self, command: &str) -> Result<Lock> {
        self.files.acquire_lock(&LockInfo {
            pid: std::process::id(),
            host: state::lock::hostname(),
            user: self.user.clone(),
            started: util::rfc3339(SystemTime::now()),
            command: command.to_string(),
        })
    }

    /// Loads the state, compacting a journal left by an interrupted run.
    pub fn recover(&self, lock: &Lock) -> Result<Snapshot> {
        let snap = state::recover(&self.files, self.project.name(), lock)?;
        self.warn_legacy(&snap);
        Ok(snap)
    }

    /// A state upgraded from format 1 holds fingerprints of secrets: say what happens to them.
    fn warn_legacy(&self, snap: &Snapshot) {
        let legacy = snap.legacy_fingerprints();
        if legacy > 0 {
            self.sink.event(Event::Warning {
                message: format!(
                    "the state was written by an older skyform that kept only fingerprints of {legacy} secret \
                     value{}; the resources holding them are updated once by the next `up` (or re-read by \
                     `skyform refresh`), after which their secrets are recorded encrypted",
                    if legacy == 1 { "" } else { "s" }
                ),
            });
        }
    }

    /// The plaintexts of the stack's config secrets (to mark what contains them).
    pub fn config_secret_texts(&self) -> Result<Vec<String>> {
        let mut texts = Vec::new();
        value::secret_texts(&Value::Object(self.config()?), &mut texts);
        texts.retain(|t| !t.is_empty());
        Ok(texts)
    }

    /// The stack's `[config]` with its secrets opened into marks.
    pub fn config(&self) -> Result<serde_json::Map<String, Value>> {
        match self.vault.open(&Value::Object(self.stack_file.config_json()))? {
            Value::Object(m) => Ok(m),
            _ => Ok(Default::default()),
        }
    }

    /// Loads the state with a leftover journal replayed in memory only: what `preview` reads.
    /// **Preview never writes the state.**
    pub fn load(&self, _lock: &Lock) -> Result<Snapshot> {
        let (snap, _, _) = state::load_compacted(&self.files, self.project.name())?;
        self.warn_legacy(&snap);
        Ok(snap)
    }

    /// Runs the program and parses its manifest.
    pub async fn run_program(&self) -> Result<Manifest> {
        let command = self.project.program().to_string();
        self.sink.event(Event::ProgramStarted { command: command.clone() });
        self.sink.event(Event::Progress {
            id: "program".into(),
            message: Some(format!("running the program `{command}` (compiling it when it changed)")),
        });
        let result = self.run_program_inner(&command).await;
        self.sink.event(Event::Progress { id: "program".into(), message: None });
        result
    }

    async fn run_program_inner(&self, command: &str) -> Result<Manifest> {
        let command = command.to_string();
        // The program reads its config in plaintext; the engine then marks every string of the
        // manifest that contains a config secret, so that what the program built from a
        // secret stays secret.
        let opened = Value::Object(self.config()?);
        let mut config_secrets = Vec::new();
        value::secret_texts(&opened, &mut config_secrets);
        config_secrets.retain(|t| !t.is_empty());
        let config = value::unmark(&opened).to_string();
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(&self.project.dir)
            .env("SKYFORM_PROJECT", self.project.name())
            .env("SKYFORM_STACK", &self.stack)
            .env("SKYFORM_PROVIDER", &self.stack_file.provider)
            .env("SKYFORM_CONFIG", config)
            .env("SKYFORM_PROJECT_DIR", &self.project.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::user(
                    format!("cannot run the program `{command}`: {e}"),
                    "check `program` in Skyform.toml",
                )
            })?;
        let mut stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let sink = self.sink.clone();
        // What the program prints is shown (`-v`, errors) with its config secrets scrubbed.
        let scrub_with =
            value::mark(Value::Array(config_secrets.iter().cloned().map(Value::String).collect()));
        let progress_sink = self.sink.clone();
        let errs = tokio::spawn(async move {
            let mut kept = ProgramErrors::default();
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = value::scrub(&line, &scrub_with);
                // Cargo's own progress ("Compiling serde v1.0.2") shows what the wait is for.
                let t = line.trim_start();
                if t.starts_with("Compiling ") || t.starts_with("Downloaded ") || t.starts_with("Updating ") {
                    progress_sink.event(Event::Progress {
                        id: "program".into(),
                        message: Some(format!("compiling the program: {t}")),
                    });
                }
                sink.event(Event::ProgramLog { line: line.clone() });
                kept.push(line);
            }
            kept
        });
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).await.map_err(|e| Error::io("reading the program's output", e))?;
        let status = child.wait().await.map_err(|e| Error::io("waiting for the program", e))?;
        let kept = errs.await.unwrap_or_default();
        if !status.success() {
            let mut msg = format!("the program `{command}` failed ({status})");
            let shown = kept.summary();
            if !shown.is_empty() {
                msg.push_str(":\n");
                msg.push_str(&shown.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n"));
            }
            return Err(Error::user(msg, program_failure_hint(&shown)));
        }
        let text = String::from_utf8(out).map_err(|_| {
            Error::user(format!("the program `{command}` printed bytes that are not UTF-8"), "print JSON")
        })?;
        let mut manifest = manifest::parse(&text, &format!("the program `{command}`"))?;
        if !config_secrets.is_empty() {
            for r in &mut manifest.resources {
                r.inputs = value::mark_containing(&r.inputs, &config_secrets);
            }
            for v in manifest.outputs.values_mut() {
                *v = value::mark_containing(v, &config_secrets);
            }
        }
        Ok(manifest)
    }

    /// Starts the providers a manifest and a state need.
    pub async fn start_providers(
        &self,
        manifest: Option<&Manifest>,
        snap: &Snapshot,
        dry_run: bool,
    ) -> Result<Providers> {
        let mut names = BTreeSet::new();
        if let Some(m) = manifest {
            names.extend(m.resources.iter().map(|r| plan::provider_name(&r.type_).to_string()));
        }
        names.extend(snap.resources.iter().map(|r| plan::provider_name(&r.type_).to_string()));
        names.extend(snap.pending_operations.iter().map(|p| plan::provider_name(&p.type_).to_string()));
        self.start_providers_named(&names, dry_run).await
    }

    /// Starts the named providers (for a saved plan, or an import: no manifest to read them from).
    pub async fn start_providers_named(&self, names: &BTreeSet<String>, dry_run: bool) -> Result<Providers> {
        Providers::start(
            names,
            &self.project,
            &self.stack,
            &self.stack_file,
            &self.settings,
            dry_run,
            self.sink.clone(),
        )
        .await
    }

    /// Applies a plan, then compacts the journal into the state file.
    pub async fn apply(
        &self,
        plan: &Plan,
        snap: Snapshot,
        providers: Providers,
        opts: &ApplyOptions,
        command: &str,
    ) -> Result<(Snapshot, ApplyReport, CommitStats)> {
        let started = Instant::now();
        let started_at = util::rfc3339(SystemTime::now());
        let before = snap.clone();
        let (_mem, report, providers) =
            apply::apply(plan, snap, &self.files, providers, opts, self.sink.clone()).await?;
        providers.shutdown().await;
        let result = if report.interrupted {
            "interrupted"
        } else if report.failed.is_empty() {
            "succeeded"
        } else {
            "failed"
        };
        let (snap, stats) = self.commit(&before, command, &started_at, started, result, &report.done)?;
        let stats = CommitStats { journal_bytes: report.journal_bytes, ..stats };
        Ok((snap, report, stats))
    }

    /// Compacts: the state file plus the journal, written as the new state file when it
    /// changed. The journal on disk, not memory, is the truth: it is what a crash would leave.
    pub fn commit(
        &self,
        before: &Snapshot,
        command: &str,
        started_at: &str,
        started: Instant,
        result: &str,
        changes: &BTreeMap<StepKind, usize>,
    ) -> Result<(Snapshot, CommitStats)> {
        let (mut snap, replayed) = state::load(&self.files, self.project.name())?;
        let mut stats = CommitStats::default();
        // No journal: nothing was mutated, nothing to write.
        if replayed {
            if !snap.same_content(before) {
                snap.serial = before.serial + 1;
                stats.state_bytes = state::write_state(&self.files, &snap)?;
                state::append_history(
                    &self.files,
                    &HistoryEntry {
                        serial: snap.serial,
                        command: command.to_string(),
                        started: started_at.to_string(),
                        duration_ms: started.elapsed().as_millis() as u64,
                        result: result.to_string(),
                        changes: changes.iter().map(|(k, v)| (k.verb().to_string(), *v)).collect(),
                    },
                )?;
            }
            state::journal::remove_for(&self.files)?;
        }
        stats.serial = snap.serial;
        Ok((snap, stats))
    }

    /// Writes a snapshot computed in memory (refresh, import, clearing pending operations).
    pub fn write(
        &self,
        before: &Snapshot,
        mut snap: Snapshot,
        command: &str,
        started: Instant,
    ) -> Result<Snapshot> {
        snap.normalize();
        if snap.same_content(before) {
            return Ok(snap);
        }
        snap.serial = before.serial + 1;
        state::write_state(&self.files, &snap)?;
        state::append_history(
            &self.files,
            &HistoryEntry {
                serial: snap.serial,
                command: command.to_string(),
                started: util::rfc3339(SystemTime::now()),
                duration_ms: started.elapsed().as_millis() as u64,
                result: "succeeded".into(),
                changes: BTreeMap::new(),
            },
        )?;
        Ok(snap)
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CommitStats {
    pub journal_bytes: u64,
    pub state_bytes: u64,
    pub serial: u64,
}

/// Refuses to plan over operations an interrupted run left unresolved.
pub fn ensure_no_pending(snap: &Snapshot) -> Result<()> {
    if snap.pending_operations.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = snap
        .pending_operations
        .iter()
        .map(|p| format!("{} `{}` ({})", verb(p.op), p.name, p.type_))
        .collect();
    Err(Error::new(
        ErrorKind::Pending,
        format!(
            "an earlier run was interrupted; {} operation{} never finished: {}",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            list.join(", ")
        ),
    )
    .with_hint(
        "run `skyform refresh` to check them against the providers, or pass `--clear-pending` to forget them \
         (a create that did finish would then be orphaned)",
    ))
}

fn verb(op: OpKind) -> &'static str {
    match op {
        OpKind::Create => "create",
        OpKind::Update => "update",
        OpKind::Delete => "delete",
    }
}

/// One property that differs between state and reality.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub kind: DriftKind,
    /// Property paths that changed, with the recorded and the real value.
    pub properties: Vec<(String, Value, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The resource differs from what state recorded.
    Changed,
    /// The resource no longer exists.
    Deleted,
    /// An interrupted create turned out to have succeeded; it is now recorded.
    Recovered,
    /// An interrupted operation was resolved without finding anything.
    Resolved,
}

/// Reads every resource (and every pending operation) and returns the updated snapshot.
///
/// An interrupted operation is resolved by what the read finds, never by the inputs the
/// operation carried:
/// - an interrupted **update** or **delete** of a recorded resource is resolved by reading that
///   resource as recorded. If it still exists it keeps its *recorded* inputs (with the outputs
///   read), so the next `up` plans the update (or the delete) again; provider updates are
///   idempotent, so running one twice is safe, whereas recording the new inputs would make the
///   engine believe an update happened that may not have.
/// - an interrupted **create** (also the create of a replacement) is looked up by name and the
///   inputs it was called with; if found it is recorded (and the copy it replaced becomes an old
///   copy to delete), otherwise it never happened and the next `up` plans it again.
///
/// The provider gets the recorded values in plaintext; what it reads back is marked secret
/// where the recorded inputs were (and wherever it contains a secret), so an unchanged secret
/// is no drift and a secret that changed is recorded sealed.
pub async fn refresh(
    snap: &Snapshot,
    providers: &Providers,
    vault: &Vault,
) -> Result<(Snapshot, Vec<Drift>)> {
    let opened: Vec<(Value, Value)> = snap
        .resources
        .iter()
        .map(|r| Ok((r.inputs.open(vault)?, r.outputs.open(vault)?)))
        .collect::<Result<_>>()?;
    let pending: Vec<Value> =
        snap.pending_operations.iter().map(|p| p.inputs.open(vault)).collect::<Result<_>>()?;
    // Interrupted updates and deletes, by the resource they were working on.
    // (Not by name: an update may also have been renaming the resource, by an alias.)
    let mut interrupted: HashMap<(&str, &str), OpKind> = HashMap::new();
    for p in &snap.pending_operations {
        if let (OpKind::Update | OpKind::Delete, Some(id)) = (p.op, &p.id) {
            interrupted.insert((p.type_.as_str(), id.as_str()), p.op);
        }
    }
    let mut set = JoinSet::new();
    for (i, r) in snap.resources.iter().enumerate() {
        let provider = providers.get(plan::provider_name(&r.type_))?;
        let req = ReadRequest {
            type_: r.type_.clone(),
            name: r.name.clone(),
            id: Some(r.id.clone()),
            inputs: value::unmark(&opened[i].0),
            outputs: value::unmark(&opened[i].1),
        };
        set.spawn(async move {
            let resp: Result<ReadResponse> = provider.call(Call::Read(req), "").await;
            (Some(i), None, resp)
        });
    }
    for (i, p) in snap.pending_operations.iter().enumerate() {
        if p.op != OpKind::Create {
            continue; // resolved by reading the resource itself (above)
        }
        let provider = providers.get(plan::provider_name(&p.type_))?;
        let req = ReadRequest {
            type_: p.type_.clone(),
            name: p.name.clone(),
            id: p.id.clone(),
            inputs: value::unmark(&pending[i]),
            outputs: Value::Null,
        };
        set.spawn(async move {
            let resp: Result<ReadResponse> = provider.call(Call::Read(req), "").await;
            (None, Some(i), resp)
        });
    }
    let mut next = snap.clone();
    next.pending_operations.clear();
    let mut drift = Vec::new();
    let mut reads: Vec<(Option<usize>, Option<usize>, ReadResponse)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (r, p, resp) =
            joined.map_err(|e| Error::new(ErrorKind::Provider, format!("refresh failed: {e}")))?;
        reads.push((r, p, resp?));
    }
    reads.sort_by_key(|(r, p, _)| (r.is_none(), r.unwrap_or(0), p.unwrap_or(0)));
    let resolved = |name: &str, type_: &str, kind: DriftKind| Drift {
        name: name.to_string(),
        type_: type_.to_string(),
        kind,
        properties: vec![],
    };
    for (r, p, resp) in reads {
        if let Some(i) = r {
            let old = &snap.resources[i];
            let (old_inputs, old_outputs) = &opened[i];
            let pending = interrupted.get(&(old.type_.as_str(), old.id.as_str())).copied();
            match resp.resource {
                None => {
                    next.apply(&Mutation::Remove { name: old.name.clone(), id: old.id.clone() });
                    let kind = if pending == Some(OpKind::Delete) {
                        DriftKind::Resolved
                    } else {
                        DriftKind::Deleted
                    };
                    drift.push(resolved(&old.name, &old.type_, kind));
                }
                Some(real) if pending == Some(OpKind::Update) => {
                    // Keep the recorded inputs: the update is planned again.
                    if let Some(slot) =
                        next.resources.iter_mut().find(|x| x.name == old.name && x.id == old.id)
                        && !real.outputs.is_null()
                    {
                        slot.outputs =
                            Sealed::seal(&value::remark_also(&real.outputs, old_outputs, old_inputs), vault)?;
                    }
                    drift.push(resolved(&old.name, &old.type_, DriftKind::Resolved));
                }
                Some(real) => {
                    let inputs = if real.inputs.is_null() {
                        old_inputs.clone()
                    } else {
                        value::remark(&real.inputs, old_inputs)
                    };
                    let outputs = value::remark_also(&real.outputs, old_outputs, old_inputs);
                    let mut props = Vec::new();
                    diff_values("", old_inputs, &inputs, &mut props);
                    let mut out_props = Vec::new();
                    diff_values("", old_outputs, &outputs, &mut out_props);
                    if !props.is_empty() || !out_props.is_empty() {
                        let mut updated = old.clone();
                        updated.inputs = Sealed::seal(&inputs, vault)?;
                        updated.outputs = Sealed::seal(&outputs, vault)?;
                        if let Some(slot) =
                            next.resources.iter_mut().find(|x| x.name == old.name && x.id == old.id)
                        {
                            *slot = updated;
                        }
                        props.extend(out_props.into_iter().map(|(k, a, b)| (format!("outputs.{k}"), a, b)));
                        drift.push(Drift {
                            name: old.name.clone(),
                            type_: old.type_.clone(),
                            kind: DriftKind::Changed,
                            properties: props,
                        });
                    }
                    if pending == Some(OpKind::Delete) {
                        // Still there: the next `up` (or `destroy`) deletes it again.
                        drift.push(resolved(&old.name, &old.type_, DriftKind::Resolved));
                    }
                }
            }
        } else if let Some(i) = p {
            let op = &snap.pending_operations[i];
            let op_inputs = &pending[i];
            match resp.resource {
                Some(real) if !next.resources.iter().any(|x| x.id == real.id && x.type_ == op.type_) => {
                    // The create happened. If it was a replacement, the copy it replaced becomes
                    // an old copy to delete, and the new one takes over its recorded metadata.
                    let replacing = next.live(&op.name).cloned();
                    if let Some(old) = &replacing {
                        next.apply(&Mutation::Retire { name: old.name.clone(), id: old.id.clone() });
                    }
                    next.apply(&Mutation::Put {
                        resource: ResourceState {
                            name: op.name.clone(),
                            type_: op.type_.clone(),
                            id: real.id.clone(),
                            inputs: op.inputs.clone(),
                            outputs: Sealed::seal(&value::remark(&real.outputs, op_inputs), vault)?,
                            dependencies: replacing
                                .as_ref()
                                .map(|o| o.dependencies.clone())
                                .unwrap_or_default(),
                            options: replacing.as_ref().map(|o| o.options.clone()).unwrap_or_default(),
                            parent: replacing.as_ref().and_then(|o| o.parent.clone()),
                            pending_delete: false,
                        },
                    });
                    drift.push(resolved(&op.name, &op.type_, DriftKind::Recovered));
                }
                _ => drift.push(resolved(&op.name, &op.type_, DriftKind::Resolved)),
            }
        }
    }
    // Interrupted updates and deletes whose resource is not recorded: nothing to read.
    for p in &snap.pending_operations {
        let recorded =
            p.id.as_ref().is_some_and(|id| snap.resources.iter().any(|r| r.type_ == p.type_ && &r.id == id));
        if p.op != OpKind::Create && !recorded {
            drift.push(resolved(&p.name, &p.type_, DriftKind::Resolved));
        }
    }
    next.normalize();
    Ok((next, drift))
}

/// Property-level differences between two JSON values, as (path, old, new).
pub fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<(String, Value, Value)>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                diff_values(&p, a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null), out);
            }
        }
        (a, b) if a != b => out.push((path.to_string(), a.clone(), b.clone())),
        _ => {}
    }
}

/// Reads an existing resource by id and records it in state under `name`.
pub async fn import(
    snap: &Snapshot,
    providers: &Providers,
    type_: &str,
    name: &str,
    id: &str,
    vault: &Vault,
    secret_texts: &[String],
) -> Result<(Snapshot, ResourceState)> {
    if snap.live(name).is_some() {
        return Err(Error::user(
            format!("a resource named `{name}` is already recorded in this stack"),
            "pick another name, or remove the program's resource first",
        ));
    }
    let provider = providers.get(plan::provider_name(type_))?;
    if !provider.schemas.contains_key(type_) {
        return Err(Error::user(
            format!("provider `{}` has no resource type `{type_}`", provider.name()),
            format!("it serves: {}", provider.schemas.keys().cloned().collect::<Vec<_>>().join(", ")),
        ));
    }
    let resp: ReadResponse = provider
        .call(
            Call::Read(ReadRequest {
                type_: type_.to_string(),
                name: name.to_string(),
                id: Some(id.to_string()),
                inputs: Value::Null,
                outputs: Value::Null,
            }),
            name,
        )
        .await?;
    let Some(real) = resp.resource else {
        return Err(Error::user(
            format!("provider `{}` found no {type_} with id `{id}`", provider.name()),
            "check the id (for AWS: the physical name or ARN the provider documents)",
        ));
    };
    // A resource read for the first time: what is known to be secret is the stack's config
    // secrets (any string containing one is marked); the program's declaration marks the rest
    // at the next `up`.
    let inputs = value::mark_containing(&real.inputs, secret_texts);
    let outputs =
        value::remark_also(&value::mark_containing(&real.outputs, secret_texts), &Value::Null, &inputs);
    let resource = ResourceState {
        name: name.to_string(),
        type_: type_.to_string(),
        id: real.id,
        inputs: Sealed::seal(&inputs, vault)?,
        outputs: Sealed::seal(&outputs, vault)?,
        dependencies: Vec::new(),
        options: Default::default(),
        parent: None,
        pending_delete: false,
    };
    let mut next = snap.clone();
    next.apply(&Mutation::Put { resource: resource.clone() });
    Ok((next, resource))
}

/// What to do when the program failed. A program that cannot even be built because its
/// `skyform-sdk` dependency is missing needs its Cargo.toml fixed, not its code.
fn program_failure_hint(stderr_tail: &[String]) -> &'static str {
    let sdk_missing = stderr_tail.iter().any(|l| {
        l.contains("skyform-sdk")
            && (l.contains("failed to load manifest")
                || l.contains("failed to read")
                || l.contains("no matching package")
                || l.contains("failed to get"))
    });
    if sdk_missing {
        "the program's `skyform-sdk` dependency cannot be found: name it by path in Cargo.toml, \
         `skyform-sdk = { path = \"../../sdk\" }`; a path that does not exist is pointed at the SDK \
         this skyform carries (~/.local/share/skyform/sdk/VERSION-HASH), and `skyform new` \
         projects use that SDK"
    } else {
        "fix the program; run the command again with `-v` to see all it printed (or `skyform synth`)"
    }
}

/// What a failed program printed, kept so that its error can be shown without its whole
/// output: the first compiler error (the one to fix first; the rest often follow from it), a
/// panic's location and message, and the last lines (how it stopped).
#[derive(Default)]
pub(crate) struct ProgramErrors {
    first_error: Vec<String>,
    panic: Vec<String>,
    tail: std::collections::VecDeque<String>,
}

impl ProgramErrors {
    const TAIL: usize = 12;
    const BLOCK: usize = 20;

    pub(crate) fn push(&mut self, line: String) {
        let t = line.trim_start();
        if self.first_error.is_empty() {
            if t.starts_with("error") {
                self.first_error.push(line.clone());
            }
        } else if self.first_error.len() < Self::BLOCK
            && !self.first_error.last().is_some_and(|l| l.trim().is_empty())
        {
            self.first_error.push(line.clone());
        }
        if self.panic.is_empty() {
            if t.contains("panicked at") {
                self.panic.push(line.clone());
            }
        } else if self.panic.len() < 4 && !t.starts_with("note:") && !t.starts_with("stack backtrace") {
            self.panic.push(line.clone());
        }
        self.tail.push_back(line);
        if self.tail.len() > Self::TAIL {
            self.tail.pop_front();
        }
    }

    /// The lines to show, each once, in the order above.
    pub(crate) fn summary(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in self.first_error.iter().chain(self.panic.iter()) {
            if l.trim().is_empty() || !out.contains(l) {
                out.push(l.clone());
            }
        }
        let tail: Vec<&String> = self.tail.iter().filter(|l| !out.contains(l)).collect();
        if !out.is_empty() && !tail.is_empty() {
            out.push("…".into());
        }
        out.extend(tail.into_iter().cloned());
        while out.last().is_some_and(|l| l.trim().is_empty()) {
            out.pop();
        }
        out
    }
}

#[cfg(test)]
mod program_errors_tests {
    use super::ProgramErrors;

    #[test]
    fn first_error_and_panic_survive_long_output() {
        let mut k = ProgramErrors::default();
        k.push("   Compiling sdk v0.1.0".into());
        k.push("error[E0425]: cannot find value `x` in this scope".into());
        k.push(" --> src/main.rs:3:5".into());
        k.push("".into());
        for i in 0..100 {
            k.push(format!("error: follow-up {i}"));
        }
        k.push("thread 'main' panicked at src/main.rs:9:1:".into());
        k.push("the bucket name is empty".into());
        k.push("note: run with `RUST_BACKTRACE=1`".into());
        let s = k.summary().join("\n");
        assert!(s.starts_with("error[E0425]: cannot find value `x`"), "{s}");
        assert!(s.contains(" --> src/main.rs:3:5"), "{s}");
        assert!(s.contains("panicked at src/main.rs:9:1:\nthe bucket name is empty"), "{s}");
        assert!(!s.contains("follow-up 3\n"), "{s}");
        assert!(s.contains("follow-up 99"), "the end is kept: {s}");
    }
}
