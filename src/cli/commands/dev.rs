//! `skyform dev`: deploy the stack, then stay in the foreground, watching the project, serving
//! every edit, and streaming every function's logs.
//!
//! The loop has two speeds, because the two kinds of edit cost very different amounts of work:
//!
//! - **A function's code** (a file inside a function's `code` folder, or the cargo package it
//!   is built from) cannot change the program's manifest, so the program is not run again: the
//!   manifest of the last run is applied once more ([`Program::Manifest`]) with only the edited
//!   functions as targets. The provider's `check` hashes the folder, the plan sees a new
//!   `code_hash`, and the update copies the code and redeploys the one function; its old
//!   processes finish their requests and retire. While the engine plans, the edited Python and
//!   Node files are compiled (`compile()`, `node --check`), and the plan is applied only if they
//!   parse (the approval callback waits for the checks): an edit that does not parse is
//!   reported and never deployed, so the last good version keeps serving.
//! - **Anything else** (the program's sources, `Skyform*.toml`, a new folder) re-runs the
//!   program, prints the plan and applies it, exactly as `skyform up --yes` would (a plan that
//!   deletes every resource is still refused). A failing program or plan changes nothing.
//!
//! Both go through the engine's use cases and the stack's lock, so the state always records
//! what runs and a later `skyform up` finds nothing to do.
//!
//! File events come from the `notify` crate (inotify on Linux) through its small debouncer: a
//! save that touches several files (an editor's temporary file and rename, a `git checkout`)
//! becomes one batch. Build outputs and local data (`target/`, `.skyform/`, the state folder,
//! `.git/`, `__pycache__/`, editor swap files) are not watched or are ignored.
//!
//! The logs are read from the local cloud's log files (`.skyform/local/logs/<stack>/`), which
//! the daemon writes; following them from here keeps the daemon unaware of `dev`. Paths of the
//! local cloud's copies of the code (`.skyform/local/artifacts/<hash>/app.py`) are shown as the
//! user's files (`functions/hello/app.py`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::apply::Cancel;
use crate::cli::render::{self, TerminalSink};
use crate::cli::{Global, flags};
use crate::engine::Session;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::ops::{Approve, PlanRequest, Program, UpRequest, Yes};
use crate::plan::Plan;

/// Deploy the stack, then watch: edits served at once, every function's logs.
///
/// A function's code is redeployed on its own (the program is not run again); any other change
/// re-runs the program and applies the plan. An edit that does not parse, a failing program or
/// plan changes nothing: the last good version keeps serving. Ctrl-C stops watching and leaves
/// the stack deployed and served (`--down` tears it down).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// When stopped with Ctrl-C, destroy the stack's resources (as `skyform destroy --yes`).
    #[arg(long)]
    pub down: bool,
    /// How long files must stay quiet before a change is acted on, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    pub debounce: u64,
    /// Do not print the functions' logs.
    #[arg(long)]
    pub no_logs: bool,
    #[command(flatten)]
    pub secrets: flags::ShowSecrets,
}

/// A function whose code `dev` watches.
#[derive(Debug, Clone)]
struct Function {
    name: String,
    /// The folder holding its code (canonical), or the cargo package it is built from.
    dir: PathBuf,
    /// The runtime as declared (`python3.12`, `nodejs20.x`, ...), when declared.
    runtime: Option<String>,
    /// `SKYFORM_PYTHON` / `SKYFORM_NODE` from the function's environment: the interpreter it
    /// runs with, hence the one that checks its syntax.
    python: Option<String>,
    node: Option<String>,
}

/// What a batch of file events asks for.
#[derive(Debug, Default, PartialEq)]
struct Changes {
    /// Files outside every function's folder: the program must run again.
    infra: Vec<PathBuf>,
    /// Function name → the edited files in its folder.
    code: BTreeMap<String, BTreeSet<PathBuf>>,
}

enum Input {
    Files(Vec<PathBuf>),
    WatchError(String),
}

pub async fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let root = project.dir.canonicalize().map_err(|e| Error::io("reading the project folder", e))?;
    let state_dir = project.state_dir().canonicalize().unwrap_or_else(|_| root.join("state"));
    let reveal = args.secrets.show_secrets;
    // `--color`, `NO_COLOR` and `TERM=dumb`, as every command (crate::cli::style).
    let color = crate::cli::style::enabled(crate::cli::style::Stream::Out);
    let paint = Paint { on: color };

    // Two sessions on the stack: infrastructure changes print their steps as `up` does; code
    // redeploys print one line of their own.
    let loud = g.session(Arc::new(TerminalSink::new(g.verbose, false)))?;
    let quiet = g.session(Arc::new(TerminalSink::new(g.verbose, true)))?;

    // Ctrl-C: the first stops watching (steps in flight finish and are recorded); the second
    // exits at once, as in `up`.
    let cancel = Cancel::default();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
                let _ = stop_tx.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "stopped at once; the next command will report the operations that were in flight"
                    );
                    std::process::exit(130);
                }
            }
        });
    }

    // The watcher, started before the first deploy so that no edit is missed: the project's
    // top-level entries, except build outputs and local data, plus (below) any function
    // folder outside the project.
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let mut debouncer =
        new_debouncer(Duration::from_millis(args.debounce), None, move |res: DebounceEventResult| {
            let _ = match res {
                // Reads (the program reading its sources, `check` hashing a folder) are not edits.
                Ok(events) => tx.send(Input::Files(
                    events
                        .into_iter()
                        .filter(|e| {
                            matches!(
                                e.kind,
                                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                            )
                        })
                        .flat_map(|e| e.event.paths)
                        .collect(),
                )),
                Err(errors) => tx.send(Input::WatchError(
                    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
                )),
            };
        })
        .map_err(|e| Error::user(format!("cannot watch the project's files: {e}"), inotify_hint()))?;
    let mut watched: BTreeSet<PathBuf> = BTreeSet::new();
    let mut watch = |path: &Path, mode: RecursiveMode, watched: &mut BTreeSet<PathBuf>| -> Result<()> {
        if watched.contains(path) || !path.exists() {
            return Ok(());
        }
        debouncer
            .watch(path, mode)
            .map_err(|e| Error::user(format!("cannot watch {}: {e}", path.display()), inotify_hint()))?;
        watched.insert(path.to_path_buf());
        Ok(())
    };
    watch(&root, RecursiveMode::NonRecursive, &mut watched)?;
    for dir in top_level_dirs(&root, &state_dir) {
        watch(&dir, RecursiveMode::Recursive, &mut watched)?;
    }
    println!("{}", paint.bold(&format!("skyform dev: deploying stack `{stack}`")));
    let mut dev =
        Dev { loud, quiet, root: root.clone(), reveal, paint, cancel: cancel.clone(), manifest: None };
    let started = Instant::now();
    let first_failed = !dev.deploy_all("", true, &BTreeMap::new()).await;
    let functions = dev.functions();

    // The local console's one-time login link (a stack on the local cloud only).
    if project.load_stack(&stack).map(|f| f.provider == "local").unwrap_or(false) {
        let exe = std::env::current_exe().ok();
        match skyform_local::console_login_link(&root, exe.as_deref()).await {
            Ok(link) => println!("console: {link}  (works once; `skyform local console` gives another)"),
            Err(e) => eprintln!("warning: no console link: {}", e.message),
        }
    }

    for f in &functions {
        if !f.dir.starts_with(&root) {
            watch(&f.dir, RecursiveMode::Recursive, &mut watched)?;
        }
    }

    // The logs of every function of the stack, interleaved.
    let names: Arc<Mutex<HashMap<String, String>>> = Arc::new(Mutex::new(code_dirs(&root, &functions)));
    if !args.no_logs {
        spawn_log_follower(&project.dir, &stack, names.clone(), paint, stop_rx.clone());
    }

    println!(
        "{} {} function{} and the program's sources ({} ms); Ctrl-C stops watching, the stack stays up{}",
        paint.bold("watching"),
        functions.len(),
        if functions.len() == 1 { "" } else { "s" },
        started.elapsed().as_millis(),
        if args.down { " until then (--down)" } else { "" },
    );
    let _ = std::io::stdout().flush();

    // Edits not yet deployed, by function: their files are checked again until they deploy.
    let mut dirty: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut infra_pending = first_failed;
    loop {
        let first = tokio::select! {
            _ = stop_rx.changed() => break,
            input = rx.recv() => match input { Some(i) => i, None => break },
        };
        // Everything that arrived meanwhile is one batch.
        let mut paths = Vec::new();
        let mut pending = Some(first);
        while let Some(input) = pending.take() {
            match input {
                Input::Files(p) => paths.extend(p),
                Input::WatchError(e) => println!("{} {e}", paint.red("file watcher:")),
            }
            pending = rx.try_recv().ok();
        }
        // A new top-level folder is watched from now on (and counts as a change).
        for p in &paths {
            if p.parent() == Some(root.as_path())
                && p.is_dir()
                && !ignored(&root, &state_dir, p)
                && let Err(e) = watch(p, RecursiveMode::Recursive, &mut watched)
            {
                println!("{} {}", paint.red("file watcher:"), e.message);
            }
        }
        let functions = dev.functions();
        let changes = classify(&root, &state_dir, &functions, &paths);
        // After an infrastructure run that did not go through, every edit tries it again.
        if !changes.infra.is_empty() || (infra_pending && !changes.code.is_empty()) {
            let mut all = changes.infra.clone();
            all.extend(changes.code.values().flatten().cloned());
            let what = shown_paths(&root, &all);
            for (name, files) in changes.code {
                dirty.entry(name).or_default().extend(files);
            }
            // A successful run deployed every function's code as it is now.
            infra_pending = !dev.deploy_all(&what, false, &dirty).await;
            if !infra_pending {
                dirty.clear();
            }
            let functions = dev.functions();
            *names.lock().unwrap() = code_dirs(&root, &functions);
            for f in &functions {
                if !f.dir.starts_with(&root)
                    && let Err(e) = watch(&f.dir, RecursiveMode::Recursive, &mut watched)
                {
                    println!("{} {}", paint.red("file watcher:"), e.message);
                }
            }
        } else if !changes.code.is_empty() {
            let edited: Vec<String> = changes.code.keys().cloned().collect();
            for (name, files) in changes.code {
                dirty.entry(name).or_default().extend(files);
            }
            dev.deploy_code(&functions, &edited, &mut dirty).await;
        }
        if *stop_rx.borrow() {
            break;
        }
        let _ = std::io::stdout().flush();
    }

    drop(debouncer);
    if args.down {
        println!("\n{}", paint.bold(&format!("stopping: destroying stack `{stack}` (--down)")));
        let req = UpRequest { cancel: Cancel::default(), ..UpRequest::default() };
        let outcome = dev.loud.destroy(&req, &mut Yes).await?;
        return crate::cli::commands::up::report(
            outcome,
            crate::cli::commands::up::View { json: false, show_secrets: reveal },
            false,
        );
    }
    println!("\nstopped watching; stack `{stack}` stays deployed and served (`skyform destroy` removes it)");
    Ok(ExitCode::SUCCESS)
}

fn inotify_hint() -> &'static str {
    "on Linux, raise the inotify limits (`sysctl fs.inotify.max_user_watches=524288`, \
     `fs.inotify.max_user_instances`) or watch a smaller project"
}

struct Dev {
    loud: Session,
    quiet: Session,
    root: PathBuf,
    reveal: bool,
    paint: Paint,
    cancel: Cancel,
    /// The manifest of the last good run of the program.
    manifest: Option<Arc<Manifest>>,
}

impl Dev {
    fn functions(&self) -> Vec<Function> {
        self.manifest.as_deref().map(|m| functions_of(&self.root, m)).unwrap_or_default()
    }

    /// Starts the syntax checks of the functions' edited files (they run while the engine
    /// plans; the plan is applied only once they pass).
    fn start_checks(
        &self,
        functions: &[Function],
        dirty: &BTreeMap<String, BTreeSet<PathBuf>>,
        only: Option<&[String]>,
    ) -> Gate {
        let mut checks = Vec::new();
        for (name, files) in dirty {
            if only.is_some_and(|o| !o.contains(name)) {
                continue;
            }
            let Some(f) = functions.iter().find(|f| &f.name == name).cloned() else { continue };
            let (root, files) = (self.root.clone(), files.clone());
            checks.push((name.clone(), tokio::spawn(async move { check_syntax(&root, &f, &files).await })));
        }
        Gate { checks, broken: Vec::new(), paint: self.paint }
    }

    /// Runs the program and applies its plan, printing both; whether it all went through. On
    /// failure, says so: what was deployed before keeps serving. Files edited and not yet
    /// deployed must parse, as for a code edit: this plan deploys them too.
    async fn deploy_all(
        &mut self,
        because: &str,
        first: bool,
        dirty: &BTreeMap<String, BTreeSet<PathBuf>>,
    ) -> bool {
        let p = self.paint;
        if !because.is_empty() {
            println!("\n{} {because}: running the program", p.bold("changed"));
        }
        let started = Instant::now();
        let manifest = match self.loud.manifest(&Program::Project).await {
            Ok(m) => Arc::new(m),
            Err(e) => {
                print_error(
                    p,
                    &e,
                    if first { "nothing was deployed" } else { "the last good version keeps serving" },
                );
                return false;
            }
        };
        let req = UpRequest {
            plan: PlanRequest { program: Program::Manifest(manifest.clone()), ..PlanRequest::default() },
            cancel: self.cancel.clone(),
            ..UpRequest::default()
        };
        let functions = functions_of(&self.root, &manifest);
        let mut gate = self.start_checks(&functions, dirty, None);
        let mut approve = Gated { gate: &mut gate, then: ShowPlan { reveal: self.reveal } };
        match self.loud.up(&req, &mut approve).await {
            Ok(outcome) => {
                if !gate.broken.is_empty() {
                    return false;
                }
                self.manifest = Some(manifest);
                if let Some(applied) = &outcome.applied {
                    print!(
                        "{}",
                        render::report_text(&outcome.plan, &applied.report, outcome.millis, self.reveal)
                    );
                    for (name, err) in &applied.report.failed {
                        println!("{} {name}: {err}", p.red("failed:"));
                    }
                } else if first && !outcome.outputs.is_empty() {
                    println!("Outputs:");
                    for (k, v) in &outcome.outputs {
                        println!("    {k}: {}", render::show(v, self.reveal));
                    }
                }
                if !first {
                    println!("{} in {} ms", p.green("applied"), started.elapsed().as_millis());
                }
                outcome.applied.is_none_or(|a| a.report.failed.is_empty() && !a.report.interrupted)
            }
            Err(e) => {
                print_error(
                    p,
                    &e,
                    if first { "nothing more was deployed" } else { "the last good version keeps serving" },
                );
                false
            }
        }
    }

    /// Redeploys the `edited` functions with the last manifest, once every file edited since
    /// their last deploy parses (a file broken earlier and not touched since still counts).
    async fn deploy_code(
        &mut self,
        functions: &[Function],
        edited: &[String],
        dirty: &mut BTreeMap<String, BTreeSet<PathBuf>>,
    ) {
        let p = self.paint;
        let Some(manifest) = self.manifest.clone() else { return };
        let started = Instant::now();
        let targets: Vec<String> =
            edited.iter().filter(|n| functions.iter().any(|f| &f.name == *n)).cloned().collect();
        if targets.is_empty() {
            return;
        }
        let mut gate = self.start_checks(functions, dirty, Some(&targets));
        let req = UpRequest {
            plan: PlanRequest {
                program: Program::Manifest(manifest),
                targets: targets.clone(),
                clear_pending: false,
            },
            cancel: self.cancel.clone(),
            ..UpRequest::default()
        };
        let result = self.quiet.up(&req, &mut Gated { gate: &mut gate, then: Yes }).await;
        if !gate.broken.is_empty() {
            return; // reported by the gate; nothing was applied
        }
        match result {
            Ok(outcome) => {
                let failed = outcome.applied.as_ref().map(|a| a.report.failed.clone()).unwrap_or_default();
                for (name, err) in &failed {
                    println!("\n{} {name}: {err}; the running version keeps serving", p.red("error:"));
                }
                let updated: Vec<&str> = outcome
                    .plan
                    .steps
                    .iter()
                    .filter(|s| {
                        s.kind != crate::plan::StepKind::Same && !failed.iter().any(|(n, _)| n == &s.name)
                    })
                    .map(|s| s.name.as_str())
                    .collect();
                for name in &targets {
                    if !failed.iter().any(|(n, _)| n == name) {
                        dirty.remove(name);
                    }
                }
                if !updated.is_empty() {
                    println!(
                        "{} {}: new code served ({} ms)",
                        p.green("reloaded"),
                        updated.join(", "),
                        started.elapsed().as_millis()
                    );
                }
            }
            Err(e) => {
                print_error(p, &e, "the running version keeps serving");
            }
        }
    }
}

/// The syntax checks of a redeploy, running while the engine plans.
struct Gate {
    checks: Vec<(String, tokio::task::JoinHandle<std::result::Result<(), String>>)>,
    /// The functions whose edits did not parse (reported).
    broken: Vec<String>,
    paint: Paint,
}

impl Gate {
    /// Waits for the checks; prints what did not parse; whether everything did.
    fn passed(&mut self) -> bool {
        let checks = std::mem::take(&mut self.checks);
        // `approve` is synchronous and called on the runtime: wait there without starving it.
        let results = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let mut out = Vec::new();
                for (name, check) in checks {
                    out.push((name, check.await.unwrap_or(Ok(()))));
                }
                out
            })
        });
        let p = self.paint;
        for (name, result) in results {
            if let Err(report) = result {
                println!(
                    "\n{} {name}: the edit does not parse; the running version keeps serving",
                    p.red("error:")
                );
                for line in report.lines() {
                    println!("  {} {line}", p.red("|"));
                }
                self.broken.push(name);
            }
        }
        self.broken.is_empty()
    }
}

/// Applies a plan (as `then` decides) only if the gate's checks pass.
struct Gated<'a, A: Approve> {
    gate: &'a mut Gate,
    then: A,
}

impl<A: Approve + Send> Approve for Gated<'_, A> {
    fn planned(&mut self, plan: &Plan) {
        self.then.planned(plan)
    }
    fn approve(&mut self, plan: &Plan) -> Result<bool> {
        if !self.gate.passed() {
            return Ok(false);
        }
        self.then.approve(plan)
    }
}

/// Prints the plan of an infrastructure change and applies it without asking: `dev` is the
/// command that keeps the stack in step with the files.
struct ShowPlan {
    reveal: bool,
}

impl Approve for ShowPlan {
    fn planned(&mut self, plan: &Plan) {
        if plan.has_changes() {
            print!("{}", render::plan_text(plan, false, "Updating", self.reveal));
        } else {
            println!("no changes: the stack matches the program");
        }
    }
    fn approve(&mut self, _plan: &Plan) -> Result<bool> {
        Ok(true)
    }
}

fn print_error(p: Paint, e: &Error, consequence: &str) {
    println!("\n{} {}", p.red("error:"), e.message);
    if let Some(h) = &e.hint {
        println!("{} {h}", p.dim("hint:"));
    }
    println!("{}", p.dim(&format!("({consequence}; waiting for the next edit)")));
}

/// The functions of a manifest and the folders their code comes from: a `code` folder, or the
/// folder of the cargo package named by `build.cargo_package`.
fn functions_of(root: &Path, manifest: &Manifest) -> Vec<Function> {
    let mut out = Vec::new();
    for r in &manifest.resources {
        let inputs = &r.inputs;
        let code = inputs.get("code").and_then(Value::as_str);
        let package = inputs.get("build").and_then(|b| b.get("cargo_package")).and_then(Value::as_str);
        let dir = match (code, package) {
            (Some(c), _) => root.join(c),
            (None, Some(pkg)) => match skyform_local::artifact::find_package_manifest(root, pkg) {
                Some(m) => m.parent().map(Path::to_path_buf).unwrap_or_else(|| root.to_path_buf()),
                None => continue,
            },
            (None, None) => continue,
        };
        let dir = dir.canonicalize().unwrap_or(dir);
        if dir == root {
            continue; // a function built from the project itself: its edits are the program's
        }
        let env = inputs.get("environment");
        let var = |k: &str| env.and_then(|e| e.get(k)).and_then(Value::as_str).map(str::to_string);
        out.push(Function {
            name: r.name.clone(),
            dir,
            runtime: inputs.get("runtime").and_then(Value::as_str).map(str::to_string),
            python: var("SKYFORM_PYTHON"),
            node: var("SKYFORM_NODE"),
        });
    }
    out
}

/// Function name → its folder as the user names it (relative to the project when inside it).
fn code_dirs(root: &Path, functions: &[Function]) -> HashMap<String, String> {
    functions
        .iter()
        .map(|f| {
            let shown = f.dir.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| f.dir.clone());
            (f.name.clone(), shown.display().to_string())
        })
        .collect()
}

/// The project's top-level folders worth watching (recursively).
fn top_level_dirs(root: &Path, state_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !ignored(root, state_dir, p))
        // A JavaScript program's own dependencies are not the app's.
        .filter(|p| p.file_name().is_none_or(|n| n != "node_modules"))
        .collect();
    out.sort();
    out
}

/// Build outputs, local data, VCS folders and editors' temporary files.
fn ignored(root: &Path, state_dir: &Path, path: &Path) -> bool {
    if path.starts_with(state_dir) {
        return true;
    }
    let rel = path.strip_prefix(root).unwrap_or(path);
    for c in rel.components() {
        let c = c.as_os_str().to_string_lossy();
        if matches!(
            c.as_ref(),
            ".git" | ".hg" | ".svn" | "target" | ".skyform" | "__pycache__" | ".idea" | ".vscode"
        ) {
            return true;
        }
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.ends_with('~')
        || name.starts_with(".#")
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name == "4913" // vim's probe for a writable folder
        || name == ".DS_Store"
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
}

/// Sorts changed paths into code edits (by function) and everything else.
fn classify(root: &Path, state_dir: &Path, functions: &[Function], paths: &[PathBuf]) -> Changes {
    let mut out = Changes::default();
    let mut seen = BTreeSet::new();
    for p in paths {
        if ignored(root, state_dir, p) || !seen.insert(p.clone()) {
            continue;
        }
        // The deepest function folder holding it (folders may nest).
        let owner =
            functions.iter().filter(|f| p.starts_with(&f.dir)).max_by_key(|f| f.dir.components().count());
        match owner {
            Some(f) => {
                // Every function built from this folder gets the new code.
                for g in functions.iter().filter(|g| g.dir == f.dir) {
                    out.code.entry(g.name.clone()).or_default().insert(p.clone());
                }
            }
            None if p == root => {} // the folder itself (an entry added or removed below)
            None => out.infra.push(p.clone()),
        }
    }
    out
}

fn shown_paths(root: &Path, paths: &[PathBuf]) -> String {
    let mut shown: Vec<String> =
        paths.iter().map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string()).collect();
    shown.sort();
    shown.dedup();
    if shown.len() > 3 {
        let more = shown.len() - 3;
        shown.truncate(3);
        shown.push(format!("and {more} more"));
    }
    shown.join(", ")
}

/// Compiles a function's edited Python and JavaScript files with the interpreter it runs with,
/// without running them; `Err` holds what the compiler said. Files of other languages (and
/// deleted files) pass: the deploy reports what is wrong with them.
async fn check_syntax(
    root: &Path,
    f: &Function,
    files: &BTreeSet<PathBuf>,
) -> std::result::Result<(), String> {
    let runtime = f.runtime.as_deref().unwrap_or("");
    let rel = |p: &PathBuf| p.strip_prefix(root).unwrap_or(p).to_path_buf();
    let existing: Vec<&PathBuf> = files.iter().filter(|p| p.is_file()).collect();
    let mut report = String::new();
    let py: Vec<PathBuf> =
        existing.iter().filter(|p| p.extension().is_some_and(|e| e == "py")).map(|p| rel(p)).collect();
    if runtime.starts_with("python") && !py.is_empty() {
        // -I -S: no user site, no `.pth` hooks: a bare interpreter starts in ~15 ms.
        let python = f.python.clone().unwrap_or_else(|| "python3".into());
        let out = tokio::process::Command::new(&python)
            .args(["-I", "-S", "-c", PY_CHECK])
            .args(&py)
            .current_dir(root)
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        if let Ok(out) = out
            && !out.status.success()
        {
            report.push_str(String::from_utf8_lossy(&out.stderr).trim_end());
        }
    }
    let js: Vec<PathBuf> = existing
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "js" || e == "mjs" || e == "cjs"))
        .map(|p| rel(p))
        .collect();
    if runtime.starts_with("nodejs") && !js.is_empty() {
        let node = f.node.clone().unwrap_or_else(|| "node".into());
        let checks: Vec<_> = js
            .into_iter()
            .map(|file| {
                let (node, root) = (node.clone(), root.to_path_buf());
                tokio::spawn(async move {
                    tokio::process::Command::new(node)
                        .arg("--check")
                        .arg(file)
                        .current_dir(root)
                        .stdin(std::process::Stdio::null())
                        .output()
                        .await
                })
            })
            .collect();
        for check in checks {
            if let Ok(Ok(out)) = check.await
                && !out.status.success()
            {
                if !report.is_empty() {
                    report.push('\n');
                }
                report.push_str(&node_report(&String::from_utf8_lossy(&out.stderr), root));
            }
        }
    }
    if report.is_empty() { Ok(()) } else { Err(report) }
}

/// `node --check`'s message without node's own stack and version, with the file named
/// relative to the project, and without runs of blank lines.
fn node_report(stderr: &str, root: &Path) -> String {
    let prefix = format!("{}/", root.display());
    let mut out: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let t = line.trim_start();
        if (t.starts_with("at ") && line.starts_with("    ")) || t.starts_with("Node.js v") {
            continue;
        }
        if line.trim().is_empty() && out.last().is_none_or(|l| l.trim().is_empty()) {
            continue;
        }
        out.push(line.replace(&prefix, ""));
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// Compiles each file named on the command line; prints Python's own message for the first
/// syntax error of each and exits 1 if any.
const PY_CHECK: &str = r#"
import sys, traceback
bad = 0
for p in sys.argv[1:]:
    try:
        with open(p, "rb") as f:
            compile(f.read(), p, "exec", dont_inherit=True)
    except SyntaxError as e:
        sys.stderr.write("".join(traceback.format_exception_only(type(e), e)))
        bad = 1
sys.exit(bad)
"#;

/// Follows every log file of the stack (`.skyform/local/logs/<stack>/*.log`) from now on and
/// prints their records, interleaved in the order they are read, on a thread of its own.
fn spawn_log_follower(
    project_dir: &Path,
    stack: &str,
    names: Arc<Mutex<HashMap<String, String>>>,
    paint: Paint,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let layout = skyform_local::layout::Layout::new(project_dir);
    let dir = layout.function_log(stack, "x").parent().map(Path::to_path_buf).unwrap_or_default();
    // The daemon names the code by the project folder it was given (not canonicalised).
    let artifacts = format!("{}/", layout.artifacts().display());
    // The runtimes name the user's source files by their path in the project (see
    // `SKYFORM_SOURCE_DIR`): shown relative to it, as `functions/hello/app.py`.
    let mut prefixes = vec![format!("{}/", project_dir.display())];
    if let Ok(c) = project_dir.canonicalize() {
        prefixes.push(format!("{}/", c.display()));
    }
    // Stripped of the project's folder like the messages are (below), so it still matches.
    let artifacts = match prefixes.iter().find_map(|p| artifacts.strip_prefix(p.as_str())) {
        Some(rel) => rel.to_string(),
        None => artifacts,
    };
    let since = skyform_local::logs::now_ms();
    std::thread::spawn(move || {
        let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
        let mut shim_frame: HashMap<String, bool> = HashMap::new();
        let width = 8;
        loop {
            if *stop.borrow() {
                return;
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|es| {
                    es.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "log"))
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            let mut batch: Vec<(String, skyform_local::LogRecord)> = Vec::new();
            for path in files {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().replace("%2F", "/").replace("%25", "%"))
                    .unwrap_or_default();
                let offset = offsets.get(&path).copied().unwrap_or(0);
                if let Ok((records, next)) = skyform_local::logs::read_from(&path, offset, since) {
                    offsets.insert(path, next);
                    batch.extend(records.into_iter().map(|r| (name.clone(), r)));
                }
            }
            if !batch.is_empty() {
                batch.sort_by_key(|(_, r)| r.time_ms);
                let names = names.lock().unwrap().clone();
                let width = batch.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(width);
                let mut out = std::io::stdout().lock();
                for (name, r) in batch {
                    // A traceback's frames in skyform's runtime client (the shim that called
                    // the handler) are not the user's: drop them and their source lines.
                    let in_shim = shim_frame.get(&name).copied().unwrap_or(false);
                    if r.message.contains("/.skyform/local/shims/") {
                        shim_frame.insert(name, true);
                        continue;
                    }
                    if in_shim && r.message.starts_with("    ") {
                        continue;
                    }
                    shim_frame.insert(name.clone(), false);
                    let mut r = r;
                    for prefix in &prefixes {
                        if r.message.contains(prefix.as_str()) {
                            r.message = r.message.replace(prefix.as_str(), "");
                        }
                    }
                    if let Some(line) = log_line(&name, &r, &names, &artifacts, width, paint) {
                        let _ = writeln!(out, "{line}");
                    }
                }
                let _ = out.flush();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// One log record as `dev` shows it: time, function, short request id, message; `END` lines
/// dropped (`REPORT` follows with the duration), errors in red, the local cloud's copies of
/// the code shown as the user's files.
fn log_line(
    function: &str,
    r: &skyform_local::LogRecord,
    code_dirs: &HashMap<String, String>,
    artifacts: &str,
    width: usize,
    p: Paint,
) -> Option<String> {
    let msg = r.message.trim_end();
    if msg.starts_with("END RequestId:") {
        return None;
    }
    let msg = match code_dirs.get(function) {
        Some(dir) => user_paths(msg, artifacts, dir),
        None => msg.to_string(),
    };
    let time = crate::util::rfc3339_ms(r.time_ms);
    let clock = time.get(11..23).unwrap_or(&time);
    let rid = r.request_id.as_deref().map(|s| s.get(..8).unwrap_or(s)).unwrap_or("        ");
    let body = if let Some(rest) = msg.strip_prefix("START RequestId: ") {
        let _ = rest;
        p.dim("START")
    } else if let Some(rest) = msg.strip_prefix("REPORT RequestId: ") {
        // REPORT RequestId: ID\tDuration: 1.23 ms\tBilled Duration: ...\tMax Memory Used: N MB
        let field = |k: &str| rest.split('\t').find_map(|f| f.strip_prefix(k)).map(str::trim);
        let duration = field("Duration: ").unwrap_or("?");
        let memory = field("Max Memory Used: ").unwrap_or("?");
        p.dim(&format!("END {duration} (max memory {memory})"))
    } else if is_error(&msg) {
        p.red(&msg)
    } else {
        msg
    };
    Some(format!("{} {} {} {body}", p.dim(clock), p.function(function, width), p.dim(rid)))
}

fn is_error(msg: &str) -> bool {
    let t = msg.trim_start();
    t.starts_with("[ERROR]")
        || t.starts_with("Traceback ")
        || t.starts_with("File \"")
        || t.contains("Task timed out")
        || t.contains("Runtime exited with error")
        || t.starts_with("at ") && msg.starts_with("    ")
        || t.split_once(':').is_some_and(|(k, _)| k.ends_with("Error") && !k.contains(' '))
}

/// Rewrites `<project>/.skyform/local/artifacts/<hash>/file` into `<code dir>/file`.
fn user_paths(msg: &str, artifacts: &str, code_dir: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(artifacts) {
        out.push_str(&rest[..i]);
        let after = &rest[i + artifacts.len()..];
        let hash_len = after.chars().take_while(|c| c.is_ascii_hexdigit()).count();
        if hash_len >= 16 && after[hash_len..].starts_with('/') {
            out.push_str(code_dir);
            rest = &after[hash_len..];
        } else {
            out.push_str(artifacts);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// ANSI colours, when stdout is a terminal and `NO_COLOR` is unset.
#[derive(Clone, Copy)]
struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    /// A function's name, padded, in a colour of its own (stable across runs).
    fn function(&self, name: &str, width: usize) -> String {
        const COLOURS: [&str; 6] = ["36", "35", "33", "34", "32", "96"];
        let h = name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        self.wrap(COLOURS[h as usize % COLOURS.len()], &format!("{name:<width$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, dir: &str) -> Function {
        Function { name: name.into(), dir: PathBuf::from(dir), runtime: None, python: None, node: None }
    }

    #[test]
    fn classifies_code_and_infra_edits() {
        let root = Path::new("/p");
        let state = Path::new("/p/state");
        let fs = [f("a", "/p/functions/a"), f("b", "/p/functions/b"), f("c", "/p/functions/a")];
        let paths: Vec<PathBuf> = [
            "/p/functions/a/app.py",
            "/p/functions/b/lib/x.js",
            "/p/src/main.rs",
            "/p/state/dev.json",
            "/p/target/debug/x",
            "/p/functions/a/.app.py.swp",
            "/p/functions/a/__pycache__/app.cpython-312.pyc",
            "/p",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let c = classify(root, state, &fs, &paths);
        assert_eq!(c.infra, vec![PathBuf::from("/p/src/main.rs")]);
        assert_eq!(c.code.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(c.code["a"].iter().collect::<Vec<_>>(), [Path::new("/p/functions/a/app.py")]);
    }

    #[test]
    fn shows_the_users_files_in_tracebacks() {
        let arts = "/p/.skyform/local/artifacts/";
        let line = format!("  File \"{arts}{}/app.py\", line 3, in handler", "ab".repeat(32));
        assert_eq!(
            user_paths(&line, arts, "functions/hello"),
            "  File \"functions/hello/app.py\", line 3, in handler"
        );
        assert_eq!(user_paths("no path here", arts, "x"), "no path here");
    }

    #[test]
    fn node_syntax_errors_name_the_users_file_without_nodes_stack() {
        let stderr = "/p/functions/greet/index.js:2\n\n\n\nSyntaxError: Unexpected end of input\n    at wrapSafe (node:internal/modules/cjs/loader:1464:18)\n    at checkSyntax (node:internal/main/check_syntax:78:3)\n\nNode.js v20.20.2\n";
        assert_eq!(
            node_report(stderr, Path::new("/p")),
            "functions/greet/index.js:2\n\nSyntaxError: Unexpected end of input"
        );
    }

    #[test]
    fn report_lines_show_the_duration() {
        let r = skyform_local::LogRecord {
            time_ms: 0,
            request_id: Some("0123456789abcdef".into()),
            message: "REPORT RequestId: 0123456789abcdef\tDuration: 1.25 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB".into(),
        };
        let line = log_line("hello", &r, &HashMap::new(), "/x/", 8, Paint { on: false }).unwrap();
        assert!(line.ends_with("hello    01234567 END 1.25 ms (max memory 20 MB)"), "{line}");
        let end = skyform_local::LogRecord { message: "END RequestId: 0123".into(), ..r };
        assert!(log_line("hello", &end, &HashMap::new(), "/x/", 8, Paint { on: false }).is_none());
    }
}
