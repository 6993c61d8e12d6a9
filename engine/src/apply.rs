//! Applying a plan: running its steps against the providers.
//!
//! **Architecture Invariant:** apply performs only the steps of the plan it is given. A step
//! whose inputs were unknown at planning time is re-checked once they are known; it may turn
//! out to need less (an update that became a no-op, a replacement that became an update) but
//! never more: a step that would now need a replacement the plan did not show fails instead.
//!
//! Steps start as soon as the steps they depend on have finished, at most `parallel` at a
//! time. Creates, updates and replacements come first, in dependency order; deletions (of
//! removed resources and of the old copies left by replacements) come last, in reverse
//! dependency order. When a step fails, nothing that depends on it starts; independent steps
//! still run. Every mutating provider call is preceded by a durable `begin` entry in the
//! journal and followed by an `end` entry with its result, so the state always reflects what
//! really happened, whatever kills the process.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use skyform_protocol::{
    Call, CreateRequest, CreateResponse, DeleteRequest, DeleteResponse, UpdateRequest, UpdateResponse,
};
use tokio::sync::{Notify, OnceCell};
use tokio::task::JoinSet;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};
use crate::manifest::ResourceDecl;
use crate::plan::{self, Old, Plan, Step, StepKind};
use crate::providers::Providers;
use crate::secrets::{Sealed, Vault};
use crate::state::journal::{Entry, Journal};
use crate::state::{Mutation, OpKind, PendingOp, ResourceState, Snapshot, StackFiles};
use crate::value;

/// Ctrl-C: the first one stops new steps from starting.
#[derive(Clone, Default, Debug)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct ApplyOptions {
    pub parallel: usize,
    pub cancel: Cancel,
    /// Seals what the journal records (and opens nothing: the plan carries opened values).
    pub vault: Arc<Vault>,
}

/// What happened.
#[derive(Debug, Default, Clone)]
pub struct ApplyReport {
    pub done: BTreeMap<StepKind, usize>,
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<String>,
    /// Steps not started because of Ctrl-C.
    pub not_started: usize,
    pub interrupted: bool,
    /// The stack outputs, secrets marked (the CLI masks them).
    pub outputs: BTreeMap<String, Value>,
    pub journal_bytes: u64,
}

struct Ctx {
    providers: Providers,
    files: StackFiles,
    snap: Mutex<Snapshot>,
    /// id and outputs (secrets marked) of every resource known so far, for resolving references.
    known: Mutex<HashMap<String, Option<(String, Value)>>>,
    journal: OnceCell<Journal>,
    vault: Arc<Vault>,
    sink: Sink,
}

impl Ctx {
    async fn journal(&self) -> Result<&Journal> {
        self.journal
            .get_or_try_init(|| async {
                let (lineage, serial) = {
                    let s = self.snap.lock().unwrap();
                    (s.lineage.clone(), s.serial)
                };
                Journal::create_for(&self.files, &lineage, serial).await
            })
            .await
    }

    /// What the journal records for a value. The key was fetched before the run started (see
    /// [`apply`]), so sealing cannot fail here; if it ever did, the secret is masked, never
    /// written in plaintext.
    fn seal(&self, v: &Value) -> Sealed {
        Sealed::seal(v, &self.vault).unwrap_or_else(|_| Sealed::public(v))
    }

    /// The in-memory snapshot is not kept up to date step by step: the journal is the record,
    /// and `Session::commit` replays it. Only the stack outputs are tracked here.
    fn commit(&self, mutations: &[Mutation]) {
        for m in mutations {
            if let Mutation::Outputs { outputs } = m {
                self.snap.lock().unwrap().outputs = outputs.clone();
            }
        }
    }

    /// Records mutations that need no provider call.
    async fn record(&self, mutations: Vec<Mutation>) -> Result<()> {
        let journal = self.journal().await?;
        journal.append_nowait(&Entry::Record { mutations: mutations.clone() });
        self.commit(&mutations);
        Ok(())
    }

    /// Runs a mutating provider call between a durable `begin` and an `end` entry.
    async fn mutate<T, F, Fut>(
        &self,
        op: PendingOp,
        call: F,
        on_ok: impl FnOnce(&T) -> Vec<Mutation>,
    ) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let journal = self.journal().await?;
        let seq = journal.next_seq();
        journal.append(&Entry::Begin { seq, op }).await?;
        match call().await {
            Ok(result) => {
                let mutations = on_ok(&result);
                journal.append_nowait(&Entry::End { seq, mutations: mutations.clone(), error: None });
                self.commit(&mutations);
                Ok(result)
            }
            Err(e) if e.kind == ErrorKind::ProviderBroken => {
                // The provider broke (crashed, hung, garbage): we do not know what happened,
                // so the operation stays pending in the journal and is resolved by `refresh`.
                Err(e)
            }
            Err(e) => {
                journal.append_nowait(&Entry::End {
                    seq,
                    mutations: Vec::new(),
                    error: Some(e.message.clone()),
                });
                Err(e)
            }
        }
    }
}

/// Applies `plan` to `snap`. Returns the new snapshot (not yet written) and what happened.
pub async fn apply(
    plan: &Plan,
    snap: Snapshot,
    files: &StackFiles,
    providers: Providers,
    opts: &ApplyOptions,
    sink: Sink,
) -> Result<(Snapshot, ApplyReport, Providers)> {
    let mut known = HashMap::new();
    for s in &plan.steps {
        if s.kind == StepKind::Same
            && let Some(o) = &s.old
        {
            known.insert(s.name.clone(), Some((o.id.clone(), o.outputs.clone())));
        }
    }
    // A plan with secrets needs the stack's key to record them: fetch it (or fail) before any
    // provider call, so that nothing is created that could not be recorded.
    let has_secrets = plan.steps.iter().any(|s| value::has_marks(&s.inputs) || value::has_marks(&s.declared))
        || plan.outputs.values().any(value::has_marks);
    if has_secrets {
        opts.vault.crypter()?;
    }
    let ctx = Arc::new(Ctx {
        providers,
        files: files.clone(),
        snap: Mutex::new(snap),
        known: Mutex::new(known),
        journal: OnceCell::new(),
        vault: opts.vault.clone(),
        sink: sink.clone(),
    });
    let mut report = ApplyReport::default();

    // Phase 1: everything but deletions, in dependency order.
    let phase1: Vec<&Step> = plan.steps.iter().filter(|s| s.kind != StepKind::Delete).collect();
    let index: HashMap<&str, usize> = phase1.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let waits: Vec<Vec<usize>> = phase1
        .iter()
        .map(|s| s.deps.iter().filter_map(|d| index.get(d.as_str()).copied()).collect())
        .collect();
    let mut replaced_olds: Vec<Old> = Vec::new();
    let failed_names =
        run_dag(&ctx, &phase1, &waits, opts, &mut report, &mut replaced_olds, &HashSet::new()).await;

    // Phase 2: deletions, dependents first.
    if !opts.cancel.is_cancelled() {
        let mut deletes: Vec<Step> =
            plan.steps.iter().filter(|s| s.kind == StepKind::Delete).cloned().collect();
        // The old copies this run's replacements left: their deletion is part of the replace
        // step already counted, not a delete of its own (the plan does not count it either).
        let part_of_replace: HashSet<(String, String)> =
            replaced_olds.iter().map(|o| (o.name.clone(), o.id.clone())).collect();
        for old in replaced_olds {
            deletes.push(Step {
                name: old.name.clone(),
                type_: plan
                    .steps
                    .iter()
                    .find(|s| s.name == old.name)
                    .map(|s| s.type_.clone())
                    .unwrap_or_default(),
                kind: StepKind::Delete,
                declared: Value::Null,
                inputs: Value::Null,
                deps: old.dependencies.clone(),
                options: old.options.clone(),
                old: Some(Old { pending_delete: true, ..old }),
                changed: Vec::new(),
                replaces: Vec::new(),
                delete_before_replace: false,
                parent: None,
                unknowns: false,
                metadata_changed: false,
            });
        }
        // Keep whatever a failed or skipped step still refers to.
        let still_needed: HashSet<&str> = plan
            .steps
            .iter()
            .filter(|s| failed_names.contains(&s.name))
            .filter_map(|s| s.old.as_ref())
            .flat_map(|o| o.dependencies.iter().map(|d| d.as_str()))
            .collect();
        let (keep, go): (Vec<Step>, Vec<Step>) =
            deletes.into_iter().partition(|d| still_needed.contains(d.name.as_str()));
        for k in keep {
            report.skipped.push(k.name.clone());
            sink.event(Event::StepSkipped {
                name: k.name.clone(),
                type_: k.type_.clone(),
                kind: StepKind::Delete,
                because: "something that failed still depends on it".into(),
            });
        }
        let refs: Vec<&Step> = go.iter().collect();
        let names: HashMap<&str, Vec<usize>> =
            refs.iter().enumerate().fold(HashMap::new(), |mut m, (i, s)| {
                m.entry(s.name.as_str()).or_default().push(i);
                m
            });
        // A deletion waits for the deletions of everything that depends on it.
        let mut waits: Vec<Vec<usize>> = vec![Vec::new(); refs.len()];
        for (i, s) in refs.iter().enumerate() {
            for d in &s.deps {
                if let Some(js) = names.get(d.as_str()) {
                    for &j in js {
                        if j != i {
                            waits[j].push(i);
                        }
                    }
                }
            }
        }
        let mut none = Vec::new();
        run_dag(&ctx, &refs, &waits, opts, &mut report, &mut none, &part_of_replace).await;
    }

    // Stack outputs, when everything they refer to is known.
    if !plan.destroy {
        let known = ctx.known.lock().unwrap().clone();
        let mut outputs = BTreeMap::new();
        for (name, declared) in &plan.outputs {
            let mut missing = Vec::new();
            let v = plan::resolve_inputs(declared, &known, &mut missing);
            if missing.is_empty() && !skyform_protocol::has_unknown(&v) {
                outputs.insert(name.clone(), v);
            }
        }
        let sealed: BTreeMap<String, Sealed> =
            outputs.iter().map(|(k, v)| (k.clone(), ctx.seal(v))).collect();
        let current = ctx.snap.lock().unwrap().outputs.clone();
        if sealed != current && report.failed.is_empty() && !opts.cancel.is_cancelled() {
            ctx.record(vec![Mutation::Outputs { outputs: sealed }]).await?;
        }
        report.outputs = outputs;
    } else if !ctx.snap.lock().unwrap().outputs.is_empty() && report.failed.is_empty() {
        ctx.record(vec![Mutation::Outputs { outputs: BTreeMap::new() }]).await?;
    }

    if let Some(j) = ctx.journal.get() {
        j.sync().await?;
        report.journal_bytes = j.bytes_written();
    }
    report.interrupted = opts.cancel.is_cancelled();
    let ctx = Arc::into_inner(ctx).expect("all steps finished");
    let mut snap = ctx.snap.into_inner().unwrap();
    snap.normalize();
    Ok((snap, report, ctx.providers))
}

/// Runs steps as their dependencies finish. Returns the names of steps that failed or were
/// skipped. Steps of the old copies in `uncounted` (by name and id) are not counted in
/// `report.done`.
async fn run_dag(
    ctx: &Arc<Ctx>,
    steps: &[&Step],
    waits: &[Vec<usize>],
    opts: &ApplyOptions,
    report: &mut ApplyReport,
    replaced_olds: &mut Vec<Old>,
    uncounted: &HashSet<(String, String)>,
) -> HashSet<String> {
    let n = steps.len();
    let mut remaining: Vec<usize> = waits.iter().map(|w| w.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, w) in waits.iter().enumerate() {
        for &j in w {
            dependents[j].push(i);
        }
    }
    let mut ready: std::collections::VecDeque<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut running = JoinSet::new();
    let mut finished = vec![false; n];
    let mut bad: HashSet<String> = HashSet::new();
    let parallel = opts.parallel.max(1);

    loop {
        while running.len() < parallel && !opts.cancel.is_cancelled() {
            let Some(i) = ready.pop_front() else { break };
            let step = steps[i].clone();
            let ctx = ctx.clone();
            running.spawn(async move {
                let started = Instant::now();
                if step.kind != StepKind::Same || step.metadata_changed {
                    ctx.sink.event(Event::StepStarted {
                        name: step.name.clone(),
                        type_: step.type_.clone(),
                        kind: step.kind,
                    });
                }
                let result = run_step(&ctx, &step).await;
                (i, step, result, started.elapsed())
            });
        }
        if running.is_empty() {
            break;
        }
        let Some(joined) = running.join_next().await else { break };
        let (i, step, result, elapsed) = match joined {
            Ok(x) => x,
            Err(e) => {
                report.failed.push(("?".into(), format!("a step panicked: {e}")));
                continue;
            }
        };
        finished[i] = true;
        match result {
            Ok((kind, old)) => {
                if let Some(old) = old {
                    replaced_olds.push(old);
                }
                let counted =
                    !step.old.as_ref().is_some_and(|o| uncounted.contains(&(o.name.clone(), o.id.clone())));
                if kind != StepKind::Same || step.metadata_changed {
                    if counted {
                        *report.done.entry(kind).or_insert(0) += 1;
                    }
                    ctx.sink.event(Event::StepFinished {
                        name: step.name.clone(),
                        type_: step.type_.clone(),
                        kind,
                        error: None,
                        millis: elapsed.as_millis() as u64,
                    });
                }
                for &d in &dependents[i] {
                    remaining[d] -= 1;
                    if remaining[d] == 0 {
                        ready.push_back(d);
                    }
                }
            }
            Err(e) => {
                let mut message = e.message.clone();
                if let Some(h) = &e.hint {
                    message.push_str(&format!(" (hint: {h})"));
                }
                // A provider's error may quote what it was given: its secrets are scrubbed.
                let old = step.old.as_ref().map(|o| Value::Array(vec![o.inputs.clone(), o.outputs.clone()]));
                let given = Value::Array(vec![step.inputs.clone(), old.unwrap_or(Value::Null)]);
                let message = value::scrub(&message, &given);
                report.failed.push((step.name.clone(), message.clone()));
                bad.insert(step.name.clone());
                ctx.sink.event(Event::StepFinished {
                    name: step.name.clone(),
                    type_: step.type_.clone(),
                    kind: step.kind,
                    error: Some(message),
                    millis: elapsed.as_millis() as u64,
                });
                // Nothing that depends on it may start.
                let mut stack = dependents[i].clone();
                while let Some(d) = stack.pop() {
                    if finished[d] {
                        continue;
                    }
                    finished[d] = true;
                    remaining[d] = usize::MAX;
                    bad.insert(steps[d].name.clone());
                    report.skipped.push(steps[d].name.clone());
                    ctx.sink.event(Event::StepSkipped {
                        name: steps[d].name.clone(),
                        type_: steps[d].type_.clone(),
                        kind: steps[d].kind,
                        because: format!("`{}` failed", step.name),
                    });
                    stack.extend(dependents[d].iter().copied());
                }
            }
        }
    }
    report.not_started += finished.iter().filter(|f| !**f).count();
    bad
}

/// Runs one step. Returns the kind it turned out to be and, for a create-before-delete
/// replacement, the old copy to delete in phase 2.
async fn run_step(ctx: &Ctx, step: &Step) -> Result<(StepKind, Option<Old>)> {
    let provider = ctx.providers.get(step.provider())?;
    match step.kind {
        StepKind::Same => {
            let old = step.old.as_ref().expect("same has an old");
            if step.metadata_changed {
                let mut mutations = Vec::new();
                if old.name != step.name {
                    mutations.push(Mutation::Remove { name: old.name.clone(), id: old.id.clone() });
                }
                mutations.push(Mutation::Put {
                    resource: resource_state(ctx, step, &old.id, &old.inputs, &old.outputs),
                });
                ctx.record(mutations).await?;
            }
            ctx.known.lock().unwrap().insert(step.name.clone(), Some((old.id.clone(), old.outputs.clone())));
            Ok((StepKind::Same, None))
        }
        StepKind::Create | StepKind::Update | StepKind::Replace => {
            let (kind, inputs) = settle(ctx, &provider, step).await?;
            let old = step.old.as_ref();
            match kind {
                StepKind::Same => {
                    let old = old.expect("only an existing resource can turn out unchanged");
                    let mut mutations = Vec::new();
                    if old.name != step.name {
                        mutations.push(Mutation::Remove { name: old.name.clone(), id: old.id.clone() });
                    }
                    mutations.push(Mutation::Put {
                        resource: resource_state(ctx, step, &old.id, &old.inputs, &old.outputs),
                    });
                    ctx.record(mutations).await?;
                    ctx.known
                        .lock()
                        .unwrap()
                        .insert(step.name.clone(), Some((old.id.clone(), old.outputs.clone())));
                    Ok((StepKind::Same, None))
                }
                StepKind::Create => {
                    let resp = create(ctx, &provider, step, &inputs, Vec::new()).await?;
                    ctx.known.lock().unwrap().insert(step.name.clone(), Some((resp.id, resp.outputs)));
                    Ok((StepKind::Create, None))
                }
                StepKind::Update => {
                    let old = old.expect("update has an old");
                    let op = PendingOp {
                        op: OpKind::Update,
                        name: step.name.clone(),
                        type_: step.type_.clone(),
                        id: Some(old.id.clone()),
                        inputs: ctx.seal(&inputs),
                    };
                    // The provider gets plaintext; its answer is marked where it echoes a secret.
                    let request = UpdateRequest {
                        type_: step.type_.clone(),
                        name: step.name.clone(),
                        id: old.id.clone(),
                        olds: value::unmark(&old.inputs),
                        news: value::unmark(&inputs),
                        old_outputs: value::unmark(&old.outputs),
                    };
                    let call = || async {
                        let mut r: UpdateResponse = provider.call(Call::Update(request), &step.name).await?;
                        r.outputs = value::remark(&r.outputs, &inputs);
                        Ok(r)
                    };
                    let resp: UpdateResponse = ctx
                        .mutate(op, call, |r: &UpdateResponse| {
                            let mut m = Vec::new();
                            if old.name != step.name {
                                m.push(Mutation::Remove { name: old.name.clone(), id: old.id.clone() });
                            }
                            m.push(Mutation::Put {
                                resource: resource_state(ctx, step, &old.id, &inputs, &r.outputs),
                            });
                            m
                        })
                        .await?;
                    ctx.known.lock().unwrap().insert(step.name.clone(), Some((old.id.clone(), resp.outputs)));
                    Ok((StepKind::Update, None))
                }
                StepKind::Replace => {
                    let old = old.expect("replace has an old").clone();
                    if step.delete_before_replace {
                        delete(ctx, &provider, &step.type_, &old).await?;
                        let resp = create(ctx, &provider, step, &inputs, Vec::new()).await?;
                        ctx.known.lock().unwrap().insert(step.name.clone(), Some((resp.id, resp.outputs)));
                        Ok((StepKind::Replace, None))
                    } else {
                        let retire = vec![Mutation::Retire { name: old.name.clone(), id: old.id.clone() }];
                        let resp = create(ctx, &provider, step, &inputs, retire).await?;
                        ctx.known.lock().unwrap().insert(step.name.clone(), Some((resp.id, resp.outputs)));
                        Ok((StepKind::Replace, Some(old)))
                    }
                }
                StepKind::Delete => unreachable!("settle never turns a step into a delete"),
            }
        }
        StepKind::Delete => {
            let old = step.old.as_ref().expect("delete has an old");
            if old.options.retain_on_delete {
                ctx.record(vec![Mutation::Remove { name: old.name.clone(), id: old.id.clone() }]).await?;
                ctx.sink.event(Event::Warning {
                    message: format!("`{}` was removed from state but kept (retain_on_delete)", old.name),
                });
                return Ok((StepKind::Delete, None));
            }
            delete(ctx, &provider, &step.type_, old).await?;
            Ok((StepKind::Delete, None))
        }
    }
}

/// The inputs to apply and the kind of step they call for. Without unknowns that is exactly
/// the plan; with unknowns the step is re-checked and re-diffed now that values are known.
async fn settle(ctx: &Ctx, provider: &crate::host::ProviderHandle, step: &Step) -> Result<(StepKind, Value)> {
    if !step.unknowns {
        return Ok((step.kind, step.inputs.clone()));
    }
    let mut missing = Vec::new();
    let resolved = {
        // Only the step's own dependencies, not a copy of everything known so far.
        let all = ctx.known.lock().unwrap();
        let known: HashMap<String, Option<(String, Value)>> =
            step.deps.iter().filter_map(|d| all.get(d).map(|k| (d.clone(), k.clone()))).collect();
        plan::resolve_inputs(&step.declared, &known, &mut missing)
    };
    if skyform_protocol::has_unknown(&resolved) || !missing.is_empty() {
        return Err(Error::new(
            ErrorKind::Provider,
            format!("`{}`: a referenced output is still unknown after its resource was applied", step.name),
        ));
    }
    let decl = ResourceDecl {
        name: step.name.clone(),
        type_: step.type_.clone(),
        inputs: step.declared.clone(),
        options: step.options.clone(),
        parent: step.parent.clone(),
    };
    let old = step.old.as_ref();
    // A create is checked against the inputs it was planned with, so that a value the
    // provider generated (a random physical name) is the one the plan showed.
    let olds = old.map(|o| o.inputs.clone()).unwrap_or_else(|| step.inputs.clone());
    let checked = plan::check(provider, &decl, resolved, Some(olds)).await?;
    let Some(old) = old else { return Ok((StepKind::Create, checked)) };
    if step.kind == StepKind::Replace && step.replaces.iter().any(|r| r == "type") {
        return Ok((StepKind::Replace, checked));
    }
    let d = if checked == old.inputs {
        skyform_protocol::DiffResponse::default()
    } else {
        plan::diff(provider, &decl, old, checked.clone()).await?
    };
    let (changed, replaces, inputs) =
        plan::apply_options(&step.options, &old.inputs, checked, d.changed, d.replaces);
    let kind = if changed.is_empty() {
        StepKind::Same
    } else if !replaces.is_empty() {
        StepKind::Replace
    } else {
        StepKind::Update
    };
    if kind == StepKind::Replace && step.kind != StepKind::Replace {
        return Err(Error::new(
            ErrorKind::StalePlan,
            format!(
                "`{}`: the plan said update, but now that its inputs are known, changes to {} force a replacement",
                step.name,
                replaces.join(", ")
            ),
        )
        .with_hint("run `skyform up` again: the new plan will show the replacement"));
    }
    Ok((kind, inputs))
}

async fn create(
    ctx: &Ctx,
    provider: &crate::host::ProviderHandle,
    step: &Step,
    inputs: &Value,
    mut before: Vec<Mutation>,
) -> Result<CreateResponse> {
    let op = PendingOp {
        op: OpKind::Create,
        name: step.name.clone(),
        type_: step.type_.clone(),
        id: None,
        inputs: ctx.seal(inputs),
    };
    // The provider gets plaintext; its answer is marked where it echoes a secret.
    let request =
        CreateRequest { type_: step.type_.clone(), name: step.name.clone(), inputs: value::unmark(inputs) };
    let call = || async {
        let mut r: CreateResponse = provider.call(Call::Create(request), &step.name).await?;
        r.outputs = value::remark(&r.outputs, inputs);
        Ok(r)
    };
    ctx.mutate(op, call, |r: &CreateResponse| {
        before.push(Mutation::Put { resource: resource_state(ctx, step, &r.id, inputs, &r.outputs) });
        before
    })
    .await
}

async fn delete(ctx: &Ctx, provider: &crate::host::ProviderHandle, type_: &str, old: &Old) -> Result<()> {
    let op = PendingOp {
        op: OpKind::Delete,
        name: old.name.clone(),
        type_: type_.to_string(),
        id: Some(old.id.clone()),
        inputs: ctx.seal(&old.inputs),
    };
    let request = DeleteRequest {
        type_: type_.to_string(),
        name: old.name.clone(),
        id: old.id.clone(),
        inputs: value::unmark(&old.inputs),
        outputs: value::unmark(&old.outputs),
    };
    let remove = vec![Mutation::Remove { name: old.name.clone(), id: old.id.clone() }];
    let result = ctx
        .mutate(op, || provider.call::<DeleteResponse>(Call::Delete(request), &old.name), |_| remove.clone())
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.provider_code == Some(skyform_protocol::ErrorCode::NotFound) => {
            // Already gone: that is what we wanted.
            ctx.record(remove).await?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The state record of a resource: its inputs and outputs sealed.
fn resource_state(ctx: &Ctx, step: &Step, id: &str, inputs: &Value, outputs: &Value) -> ResourceState {
    ResourceState {
        name: step.name.clone(),
        type_: step.type_.clone(),
        id: id.to_string(),
        inputs: ctx.seal(inputs),
        outputs: ctx.seal(outputs),
        dependencies: step.deps.clone(),
        options: step.options.clone(),
        parent: step.parent.clone(),
        pending_delete: false,
    }
}
