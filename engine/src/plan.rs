//! Planning: from the desired resources and the recorded state to a list of steps.
//!
//! **Architecture Invariant:** planning only calls the providers' `check` and `diff`; it never
//! mutates anything. The result, [`Plan`], is plain data: `preview` renders it, `up` renders it
//! and then applies exactly it, `preview --save-plan` writes it to a file.
//!
//! Resources are planned in dependency layers; inside a layer every `check`/`diff` runs at once
//! (the provider host multiplexes them over one process). A resource whose dependency will be
//! created or changed sees that dependency's outputs as unknown (`(known after up)`); its step
//! is re-checked at apply time once the real values are there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use skyform_protocol::{Call, CheckRequest, CheckResponse, DiffRequest, DiffResponse, UNKNOWN, has_unknown};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{ComponentDecl, Graph, Manifest, ResourceDecl, ResourceOptions};
use crate::providers::Providers;
use crate::secrets::Vault;
use crate::state::{ResourceState, Snapshot};
use crate::value::{self, Lookup, Reference};

pub const PLAN_FORMAT: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Same,
    Create,
    Update,
    Replace,
    Delete,
}

impl StepKind {
    pub fn symbol(self) -> &'static str {
        match self {
            StepKind::Same => " ",
            StepKind::Create => "+",
            StepKind::Update => "~",
            StepKind::Replace => "+-",
            StepKind::Delete => "-",
        }
    }
    pub fn verb(self) -> &'static str {
        match self {
            StepKind::Same => "same",
            StepKind::Create => "create",
            StepKind::Update => "update",
            StepKind::Replace => "replace",
            StepKind::Delete => "delete",
        }
    }
}

/// The resource as it is recorded in state before the step, its secrets opened into marks
/// (a saved plan seals them again: see `Vault::seal_json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Old {
    pub name: String,
    #[serde(rename = "type", default)]
    pub type_: String,
    pub id: String,
    pub inputs: Value,
    pub outputs: Value,
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub options: ResourceOptions,
    #[serde(default)]
    pub pending_delete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

impl Old {
    /// The recorded resource with its secrets opened.
    pub fn open(r: &ResourceState, vault: &Vault) -> Result<Old> {
        Ok(Old {
            name: r.name.clone(),
            type_: r.type_.clone(),
            id: r.id.clone(),
            inputs: r.inputs.open(vault)?,
            outputs: r.outputs.open(vault)?,
            dependencies: r.dependencies.clone(),
            options: r.options.clone(),
            pending_delete: r.pending_delete,
            parent: r.parent.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub kind: StepKind,
    /// The inputs as the program declared them (with references), for re-resolving at apply.
    #[serde(default)]
    pub declared: Value,
    /// The checked inputs; may contain unknowns.
    #[serde(default)]
    pub inputs: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Old>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
    #[serde(default)]
    pub delete_before_replace: bool,
    /// Desired dependencies (for deletes: the recorded ones).
    #[serde(default)]
    pub deps: Vec<String>,
    #[serde(default)]
    pub options: ResourceOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The inputs depend on outputs that are not known yet.
    #[serde(default)]
    pub unknowns: bool,
    /// Recorded metadata (dependencies, options, parent, name) changes without a provider call.
    #[serde(default)]
    pub metadata_changed: bool,
}

impl Step {
    pub fn provider(&self) -> &str {
        skyform_protocol::provider_of(&self.type_).unwrap_or("")
    }
}

/// A plan. Its values carry their secrets as plaintext marks (it is what providers will be
/// given), so it is written only through `Vault::seal_json`, which encrypts them (`preview
/// --save-plan`), and shown only through the CLI's renderers, which mask them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub plan: u64,
    pub project: String,
    pub stack: String,
    /// The state this plan was made against: applying it elsewhere is refused.
    pub lineage: String,
    pub serial: u64,
    pub destroy: bool,
    pub steps: Vec<Step>,
    /// Stack outputs as declared (with references).
    pub outputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub components: Vec<ComponentDecl>,
    /// Stack outputs as far as they are known before applying (unknown parts are UNKNOWN).
    #[serde(default)]
    pub output_preview: BTreeMap<String, Value>,
}

impl Plan {
    pub fn counts(&self) -> BTreeMap<StepKind, usize> {
        let mut c = BTreeMap::new();
        for s in &self.steps {
            *c.entry(s.kind).or_insert(0) += 1;
        }
        c
    }
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.kind != StepKind::Same || s.metadata_changed)
    }
    /// An update (not a destroy) that deletes every resource of the stack and keeps none: what
    /// a program that declares nothing produces, often by mistake. `up` refuses it without
    /// `--allow-delete-all`, as `skyform destroy` is the command for that.
    pub fn deletes_everything(&self) -> bool {
        !self.destroy
            && self
                .steps
                .iter()
                .any(|s| s.kind == StepKind::Delete && !s.old.as_ref().is_some_and(|o| o.pending_delete))
            && self.steps.iter().all(|s| s.kind == StepKind::Delete)
    }
    /// The warning for a plan that [`deletes_everything`](Plan::deletes_everything).
    pub fn delete_all_warning(&self) -> String {
        let n = self.steps.iter().filter(|s| !s.old.as_ref().is_some_and(|o| o.pending_delete)).count();
        format!(
            "the program declares no resources: this update DELETES ALL {n} resource{} of stack `{}`",
            if n == 1 { "" } else { "s" },
            self.stack
        )
    }
}

#[derive(Clone, Default)]
pub struct PlanOptions {
    /// Only these resources (and what they depend on; for destroy, what depends on them).
    pub targets: Vec<String>,
    /// Opens the secrets recorded in state (the old inputs and outputs).
    pub vault: Arc<Vault>,
}

/// Plans an update: make the stack look like the manifest.
pub async fn plan_update(
    manifest: &Manifest,
    graph: &Graph,
    snap: &Snapshot,
    providers: &Providers,
    opts: &PlanOptions,
) -> Result<Plan> {
    check_types(manifest, providers)?;

    // Which state entry each declared resource takes over (its own name, or an alias).
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    // The recorded resources with their secrets opened: planning compares plaintext marks.
    let mut olds: Vec<Option<Old>> = Vec::with_capacity(manifest.resources.len());
    let declared: BTreeSet<&str> = manifest.resources.iter().map(|r| r.name.as_str()).collect();
    let live: HashMap<&str, &ResourceState> =
        snap.resources.iter().filter(|r| !r.pending_delete).map(|r| (r.name.as_str(), r)).collect();
    for r in &manifest.resources {
        let mut old = live.get(r.name.as_str()).copied();
        if old.is_none() {
            old = r
                .options
                .aliases
                .iter()
                .filter(|a| !declared.contains(a.as_str()) && !claimed.contains(*a))
                .find_map(|a| live.get(a.as_str()).copied());
        }
        if let Some(o) = old {
            claimed.insert(o.name.clone());
        }
        olds.push(old.map(|r| Old::open(r, &opts.vault)).transpose()?);
    }

    // Targets: the targeted resources and everything they depend on.
    let in_scope: Option<BTreeSet<usize>> = if opts.targets.is_empty() {
        None
    } else {
        let mut scope = BTreeSet::new();
        let mut stack: Vec<usize> = Vec::new();
        for t in &opts.targets {
            match graph.index.get(t) {
                Some(&i) => stack.push(i),
                None if snap.live(t).is_some() => {}
                None => {
                    return Err(Error::user(
                        format!("--target `{t}` is neither declared by the program nor recorded in state"),
                        "check the name with `skyform preview`",
                    ));
                }
            }
        }
        while let Some(i) = stack.pop() {
            if scope.insert(i) {
                for d in &graph.deps[i] {
                    stack.push(graph.index[d]);
                }
            }
        }
        Some(scope)
    };

    // Plan layer by layer.
    let layers = layers(graph, manifest.resources.len());
    let mut planned: Vec<Option<Step>> = vec![None; manifest.resources.len()];
    let sem = Arc::new(Semaphore::new(256));
    let mut errors: Vec<String> = Vec::new();
    for layer in layers {
        let mut set = JoinSet::new();
        for i in layer {
            let decl = manifest.resources[i].clone();
            let old = olds[i].take();
            let deps = graph.deps[i].clone();
            if let Some(scope) = &in_scope
                && !scope.contains(&i)
            {
                // Out of scope: keep what state says, create nothing.
                if let Some(o) = &old {
                    planned[i] = Some(same_step(&decl, o, deps, false));
                }
                continue;
            }
            // Outputs of dependencies: known when the dependency stays the same.
            let mut known: HashMap<String, Option<(String, Value)>> = HashMap::new();
            for d in &deps {
                let j = graph.index[d];
                let k = planned[j].as_ref().and_then(|s| known_outputs(s, providers));
                known.insert(d.clone(), k);
            }
            let provider = providers.get(provider_name(&decl.type_))?;
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await.expect("semaphore open");
                let step = plan_resource(&provider, decl, old, deps, &known).await;
                (i, step)
            });
        }
        while let Some(joined) = set.join_next().await {
            let (i, step) =
                joined.map_err(|e| Error::new(ErrorKind::Provider, format!("planning failed: {e}")))?;
            match step {
                Ok(s) => planned[i] = Some(s),
                Err(e) => errors.push(e.message),
            }
        }
        if !errors.is_empty() {
            break;
        }
    }
    if !errors.is_empty() {
        errors.sort();
        let n = errors.len();
        let mut msg = format!("{n} resource{} cannot be planned:", if n == 1 { "" } else { "s" });
        for e in errors.iter().take(20) {
            msg.push_str("\n  - ");
            msg.push_str(e);
        }
        return Err(
            Error::new(ErrorKind::User, msg).with_hint("fix the program's inputs and run the command again")
        );
    }

    let mut steps: Vec<Step> = planned.into_iter().flatten().collect();
    // The stack outputs' preview: stable outputs of an in-place update stay known, as they do
    // for dependents (a route change does not make the API's unchanged `url` unknown).
    let known: HashMap<String, Option<(String, Value)>> =
        steps.iter().map(|s| (s.name.clone(), known_outputs(s, providers))).collect();
    let output_preview = manifest
        .outputs
        .iter()
        .map(|(k, v)| (k.clone(), resolve_inputs(v, &known, &mut Vec::new())))
        .collect();

    // Deletes: everything recorded that nothing declared claims.
    for r in &snap.resources {
        let unclaimed =
            r.pending_delete || (!declared.contains(r.name.as_str()) && !claimed.contains(&r.name));
        if !unclaimed {
            continue;
        }
        if let Some(scope) = &in_scope {
            let targeted =
                opts.targets.contains(&r.name) || scope.iter().any(|&i| manifest.resources[i].name == r.name);
            if !targeted {
                continue;
            }
        }
        if r.options.protect && !r.pending_delete {
            return Err(Error::user(
                format!("resource `{}` is protected and the program no longer declares it", r.name),
                "declare it again, or set `protect` to false (and run `skyform up`) before removing it",
            ));
        }
        steps.push(delete_step(r, Old::open(r, &opts.vault)?));
    }
    for s in &steps {
        if s.kind == StepKind::Replace && s.options.protect {
            return Err(Error::user(
                format!(
                    "resource `{}` is protected but its changes to {} force a replacement",
                    s.name,
                    s.replaces.join(", ")
                ),
                "set `protect` to false (and run `skyform up`) to allow replacing it, or revert the change",
            ));
        }
    }

    Ok(Plan {
        plan: PLAN_FORMAT,
        project: snap.project.clone(),
        stack: snap.stack.clone(),
        lineage: snap.lineage.clone(),
        serial: snap.serial,
        destroy: false,
        steps,
        outputs: manifest.outputs.clone(),
        components: manifest.components.clone(),
        output_preview,
    })
}

/// What a planned step's id and outputs are before `up`: all recorded ones when it stays the
/// same; when it is updated in place, its id and the outputs its provider declares stable
/// (`stable_outputs`), the others unknown; nothing for creates, replacements and deletes.
fn known_outputs(s: &Step, providers: &Providers) -> Option<(String, Value)> {
    let o = s.old.as_ref()?;
    match s.kind {
        StepKind::Same => Some((o.id.clone(), o.outputs.clone())),
        StepKind::Update => {
            let provider = providers.get(provider_name(&s.type_)).ok()?;
            let stable = &provider.schemas.get(&s.type_)?.stable_outputs;
            let outputs = match &o.outputs {
                Value::Object(map) => Value::Object(
                    map.iter()
                        .map(|(k, v)| {
                            let v =
                                if stable.contains(k) { v.clone() } else { Value::String(UNKNOWN.into()) };
                            (k.clone(), v)
                        })
                        .collect(),
                ),
                _ => Value::String(UNKNOWN.into()),
            };
            Some((o.id.clone(), outputs))
        }
        _ => None,
    }
}

/// Plans a destroy: delete everything recorded (or the targets and what depends on them).
pub fn plan_destroy(snap: &Snapshot, targets: &[String], vault: &Vault) -> Result<Plan> {
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    if targets.is_empty() {
        chosen.extend(snap.resources.iter().map(|r| r.name.clone()));
    } else {
        for t in targets {
            if !snap.resources.iter().any(|r| &r.name == t) {
                return Err(Error::user(
                    format!("--target `{t}` is not recorded in state"),
                    "see `skyform stack export`",
                ));
            }
            chosen.insert(t.clone());
        }
        // Everything that depends on a target goes too, so nothing is left dangling.
        loop {
            let before = chosen.len();
            for r in &snap.resources {
                if r.dependencies.iter().any(|d| chosen.contains(d)) {
                    chosen.insert(r.name.clone());
                }
            }
            if chosen.len() == before {
                break;
            }
        }
    }
    let mut steps = Vec::new();
    for r in &snap.resources {
        if !chosen.contains(&r.name) {
            continue;
        }
        if r.options.protect && !r.pending_delete {
            return Err(Error::user(
                format!("resource `{}` is protected", r.name),
                "set `protect` to false and run `skyform up` first, or leave it out with --target",
            ));
        }
        steps.push(delete_step(r, Old::open(r, vault)?));
    }
    Ok(Plan {
        plan: PLAN_FORMAT,
        project: snap.project.clone(),
        stack: snap.stack.clone(),
        lineage: snap.lineage.clone(),
        serial: snap.serial,
        destroy: true,
        steps,
        outputs: BTreeMap::new(),
        components: Vec::new(),
        output_preview: BTreeMap::new(),
    })
}

fn delete_step(r: &ResourceState, old: Old) -> Step {
    Step {
        name: r.name.clone(),
        type_: r.type_.clone(),
        kind: StepKind::Delete,
        declared: Value::Null,
        inputs: Value::Null,
        old: Some(old),
        changed: Vec::new(),
        replaces: Vec::new(),
        delete_before_replace: false,
        deps: r.dependencies.clone(),
        options: r.options.clone(),
        parent: r.parent.clone(),
        unknowns: false,
        metadata_changed: false,
    }
}

fn same_step(decl: &ResourceDecl, old: &Old, deps: Vec<String>, in_scope: bool) -> Step {
    let metadata_changed = in_scope
        && (old.name != decl.name
            || old.dependencies != deps
            || old.options != decl.options
            || old.parent != decl.parent);
    Step {
        name: decl.name.clone(),
        type_: old.type_.clone(),
        kind: StepKind::Same,
        declared: decl.inputs.clone(),
        inputs: old.inputs.clone(),
        old: Some(old.clone()),
        changed: Vec::new(),
        replaces: Vec::new(),
        delete_before_replace: false,
        deps: if in_scope { deps } else { old.dependencies.clone() },
        options: if in_scope { decl.options.clone() } else { old.options.clone() },
        parent: if in_scope { decl.parent.clone() } else { old.parent.clone() },
        unknowns: false,
        metadata_changed,
    }
}

pub fn provider_name(type_: &str) -> &str {
    skyform_protocol::provider_of(type_).unwrap_or(type_)
}

/// Unknown types and outputs, reported before anything else happens.
fn check_types(manifest: &Manifest, providers: &Providers) -> Result<()> {
    let mut errors = Vec::new();
    let types: HashMap<&str, &str> =
        manifest.resources.iter().map(|r| (r.name.as_str(), r.type_.as_str())).collect();
    for r in &manifest.resources {
        let provider = providers.get(provider_name(&r.type_))?;
        let Some(_schema) = provider.schemas.get(&r.type_) else {
            errors.push(format!(
                "resource `{}` has type `{}`, which provider `{}` does not serve (it serves: {})",
                r.name,
                r.type_,
                provider.name(),
                provider.schemas.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        };
        let mut refs = Vec::new();
        value::references(&r.inputs, &mut refs);
        for Reference { resource, output } in refs {
            let (Some(output), Some(t)) = (output, types.get(resource.as_str())) else { continue };
            let Ok(p) = providers.get(provider_name(t)) else { continue };
            let Some(schema) = p.schemas.get(*t) else { continue };
            let head = output.split('.').next().unwrap_or("");
            if !schema.outputs.is_empty() && !schema.outputs.iter().any(|o| o == head) && head != "id" {
                errors.push(format!(
                    "resource `{}` refers to output `{output}` of `{resource}` ({t}), which has outputs: {}",
                    r.name,
                    schema.outputs.join(", ")
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::user(
            format!("the manifest is not valid:\n  - {}", errors.join("\n  - ")),
            "fix the program",
        ))
    }
}

/// Kahn's algorithm: resources grouped so that each depends only on earlier groups.
fn layers(graph: &Graph, n: usize) -> Vec<Vec<usize>> {
    let mut indegree: Vec<usize> = graph.deps.iter().map(|d| d.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in graph.deps.iter().enumerate() {
        for d in ds {
            dependents[graph.index[d]].push(i);
        }
    }
    let mut current: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut out = Vec::new();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dependents[i] {
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    next.push(j);
                }
            }
        }
        out.push(std::mem::take(&mut current));
        current = next;
    }
    out
}

/// Resolves references given the known outputs of dependencies.
pub fn resolve_inputs(
    declared: &Value,
    known: &HashMap<String, Option<(String, Value)>>,
    missing: &mut Vec<Reference>,
) -> Value {
    let lookup = |r: &Reference| -> Lookup {
        match known.get(&r.resource) {
            Some(Some((id, outputs))) => match &r.output {
                None => Lookup::Known(Value::String(id.clone())),
                Some(path) => match value::get_path(outputs, path) {
                    Some(v) => Lookup::Known(v),
                    None if value::path_crosses_unknown(outputs, path) => Lookup::Unknown,
                    None => Lookup::Missing,
                },
            },
            _ => Lookup::Unknown,
        }
    };
    value::resolve(declared, &lookup, missing)
}

async fn plan_resource(
    provider: &crate::host::ProviderHandle,
    decl: ResourceDecl,
    old: Option<Old>,
    deps: Vec<String>,
    known: &HashMap<String, Option<(String, Value)>>,
) -> Result<Step> {
    let mut missing = Vec::new();
    let resolved = resolve_inputs(&decl.inputs, known, &mut missing);
    if let Some(m) = missing.first() {
        return Err(Error::user(
            format!(
                "`{}` refers to output `{}` of `{}`, which that resource does not have",
                decl.name,
                m.output.as_deref().unwrap_or("id"),
                m.resource
            ),
            "check the output's name",
        ));
    }
    let unknowns = has_unknown(&resolved);
    let checked = check(provider, &decl, resolved, old.as_ref().map(|o| o.inputs.clone())).await?;

    let Some(old) = old else {
        return Ok(Step {
            name: decl.name.clone(),
            type_: decl.type_.clone(),
            kind: StepKind::Create,
            declared: decl.inputs,
            inputs: checked,
            old: None,
            changed: Vec::new(),
            replaces: Vec::new(),
            delete_before_replace: false,
            deps,
            options: decl.options,
            parent: decl.parent,
            unknowns,
            metadata_changed: false,
        });
    };

    let (kind, changed, replaces, dbr, inputs) = if old.type_ != decl.type_ {
        (
            StepKind::Replace,
            vec!["type".to_string()],
            vec!["type".to_string()],
            decl.options.delete_before_replace,
            checked,
        )
    } else {
        // Identical inputs are no change: the provider is not asked. This halves the round
        // trips of a preview where little changed (10,000 unchanged resources: 10,000 calls).
        // Both sides carry their secret marks, so a secret compares by its plaintext.
        let d = if checked == old.inputs {
            DiffResponse::default()
        } else {
            diff(provider, &decl, &old, checked.clone()).await?
        };
        let (changed, replaces, inputs) =
            apply_options(&decl.options, &old.inputs, checked, d.changed, d.replaces);
        let kind = if changed.is_empty() {
            StepKind::Same
        } else if !replaces.is_empty() {
            StepKind::Replace
        } else {
            StepKind::Update
        };
        (kind, changed, replaces, d.delete_before_replace || decl.options.delete_before_replace, inputs)
    };
    if kind == StepKind::Same {
        let mut s = same_step(&decl, &old, deps, true);
        s.declared = decl.inputs;
        return Ok(s);
    }
    Ok(Step {
        name: decl.name.clone(),
        type_: decl.type_.clone(),
        kind,
        declared: decl.inputs,
        inputs,
        old: Some(old),
        changed,
        replaces,
        delete_before_replace: dbr,
        deps,
        options: decl.options,
        parent: decl.parent,
        unknowns,
        metadata_changed: false,
    })
}

/// `ignore_changes` keeps the recorded value of a property; `replace_on_changes` turns a change
/// into a replacement (`*` means any property).
pub fn apply_options(
    options: &ResourceOptions,
    old_inputs: &Value,
    mut news: Value,
    mut changed: Vec<String>,
    mut replaces: Vec<String>,
) -> (Vec<String>, Vec<String>, Value) {
    for p in &options.ignore_changes {
        changed.retain(|c| c != p);
        replaces.retain(|c| c != p);
        if let Some(obj) = news.as_object_mut() {
            match old_inputs.get(p) {
                Some(v) => {
                    obj.insert(p.clone(), v.clone());
                }
                None => {
                    obj.remove(p);
                }
            }
        }
    }
    for c in &changed {
        let forced = options.replace_on_changes.iter().any(|r| r == c || r == "*");
        if forced && !replaces.contains(c) {
            replaces.push(c.clone());
        }
    }
    (changed, replaces, news)
}

/// Asks the provider to check inputs. `inputs` and `olds` carry secret marks: the provider gets
/// plaintext, and the checked inputs it answers are marked where the inputs were secret.
pub async fn check(
    provider: &crate::host::ProviderHandle,
    decl: &ResourceDecl,
    inputs: Value,
    olds: Option<Value>,
) -> Result<Value> {
    // Without secrets (the common case) the values are moved, not copied.
    let (send, secret) =
        if value::has_marks(&inputs) { (value::unmark(&inputs), Some(inputs)) } else { (inputs, None) };
    let olds = olds.map(|o| if value::has_marks(&o) { value::unmark(&o) } else { o });
    let resp: CheckResponse = provider
        .call(
            Call::Check(CheckRequest {
                type_: decl.type_.clone(),
                name: decl.name.clone(),
                inputs: send,
                olds,
            }),
            &decl.name,
        )
        .await?;
    if !resp.failures.is_empty() {
        // A provider's reason may quote the value it was given: secrets are scrubbed from it.
        let list: Vec<String> = resp
            .failures
            .iter()
            .map(|f| match &secret {
                Some(like) => format!("`{}`: {}", f.property, value::scrub(&f.reason, like)),
                None => format!("`{}`: {}", f.property, f.reason),
            })
            .collect();
        return Err(Error::user(
            format!("`{}` ({}) has invalid inputs: {}", decl.name, decl.type_, list.join("; ")),
            "fix the inputs in the program",
        ));
    }
    Ok(match &secret {
        Some(like) => value::remark(&resp.inputs, like),
        None => resp.inputs,
    })
}

/// Asks the provider what changed; it gets plaintext, like every provider call.
pub async fn diff(
    provider: &crate::host::ProviderHandle,
    decl: &ResourceDecl,
    old: &Old,
    news: Value,
) -> Result<DiffResponse> {
    provider
        .call(
            Call::Diff(DiffRequest {
                type_: decl.type_.clone(),
                name: decl.name.clone(),
                id: old.id.clone(),
                olds: value::unmark(&old.inputs),
                news: value::unmark(&news),
                old_outputs: value::unmark(&old.outputs),
            }),
            &decl.name,
        )
        .await
}
