//! The engine in-process, in the style of Terraform's `context_apply_test.go` and Pulumi's
//! `lifecycletest`: a table of changes (every step kind, with the resource options), each
//! interrupted at every point a crash can hit a mutating provider call, each followed by each
//! documented recovery. After recovery and one more `up`, the test checks the state against the
//! provider's cloud (each declared resource recorded once, as it really is), the mutating calls
//! the provider saw during recovery, the orphans the documentation promises (and no others), and
//! convergence (a following plan is empty).
//!
//! The provider is a scriptable mock run in this process through the engine's in-memory
//! transport (`skyform::host::InMemory`): the same `serve` loop and NDJSON as a provider
//! process, no process spawned. An interruption is simulated the way a crash leaves things:
//! - *before begin*: the provider is never called and the journal has no `begin` (the run is
//!   dropped while the provider blocks on entry, and the journal cut before the `begin`);
//! - *after begin*: the `begin` is durable; the provider blocks on entry and the run is dropped;
//! - *after the provider acted*: the provider does the work, then never answers; the run is
//!   dropped (as a kill -9 of the engine kills the provider with it);
//! - *before end*: the call completed and the run finished without compacting, then the journal
//!   is cut before the call's `end` (the `end` is not fsynced; a crash may lose it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skyform::apply::{self, ApplyOptions, ApplyReport};
use skyform::engine::Session;
use skyform::events::NullSink;
use skyform::host::InMemory;
use skyform::ops::{PlanRequest, Program, UpRequest, Yes};
use skyform::plan::{self, Plan, PlanOptions};
use skyform::project::Project;
use skyform::providers::ProviderSettings;
use skyform::state::{self, Snapshot};
use skyform_protocol::{
    CreateRequest, CreateResponse, DeleteRequest, DeleteResponse, Provider, ProviderError, ReadRequest,
    ReadResource, ReadResponse, ResourceSchema, UpdateRequest, UpdateResponse,
};

// ---------------------------------------------------------------------------------------------
// The mock provider: a cloud in memory, a log of calls, and a gate that stops one call.

#[derive(Debug, Clone)]
struct Record {
    name: String,
    inputs: Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Point {
    BeforeBegin,
    AfterBegin,
    AfterActed,
    BeforeEnd,
}

const POINTS: [Point; 4] = [Point::BeforeBegin, Point::AfterBegin, Point::AfterActed, Point::BeforeEnd];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// Block on entry: the provider never acts.
    OnEntry,
    /// Act, then never answer.
    AfterActing,
    /// Act and answer; then block the next mutating call on entry (the run dies before it).
    AfterAnswering,
}

#[derive(Debug, Clone)]
struct Gate {
    call: String,
    stop: Stop,
}

#[derive(Default)]
struct Cloud {
    records: Mutex<BTreeMap<String, Record>>,
    calls: Mutex<Vec<String>>,
    gate: Mutex<Option<Gate>>,
    /// Set after a call answered with `Stop::AfterAnswering`: every later mutating call blocks.
    frozen: std::sync::atomic::AtomicBool,
    reached: tokio::sync::Notify,
    seq: AtomicU64,
}

impl Cloud {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    /// Logs a call; returns how the gate stops this one (once), if it does.
    async fn enter(&self, call: String) -> Option<Stop> {
        self.calls.lock().unwrap().push(call.clone());
        if self.frozen.load(Ordering::SeqCst) {
            self.stop_here().await;
        }
        let stop = {
            let mut gate = self.gate.lock().unwrap();
            if gate.as_ref().is_some_and(|g| g.call == call) { gate.take().map(|g| g.stop) } else { None }
        };
        if stop == Some(Stop::OnEntry) {
            self.stop_here().await;
        }
        stop
    }
    /// After acting.
    async fn leave(&self, stop: Option<Stop>) {
        match stop {
            Some(Stop::AfterActing) => self.stop_here().await,
            Some(Stop::AfterAnswering) => self.frozen.store(true, Ordering::SeqCst),
            _ => {}
        }
    }
    async fn stop_here(&self) -> ! {
        self.reached.notify_one();
        std::future::pending::<()>().await;
        unreachable!()
    }
    fn live(&self) -> BTreeMap<String, (String, Value)> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|(id, r)| (id.clone(), (r.name.clone(), r.inputs.clone())))
            .collect()
    }
}

struct Mock(Arc<Cloud>);

fn outputs(inputs: &Value, id: &str) -> Value {
    let mut out = inputs.as_object().cloned().unwrap_or_default();
    out.insert("id".into(), json!(id));
    Value::Object(out)
}

impl Provider for Mock {
    fn name(&self) -> String {
        "mock".into()
    }
    fn version(&self) -> String {
        "0.0.1".into()
    }
    fn schemas(&self) -> std::collections::BTreeMap<String, ResourceSchema> {
        let schema = ResourceSchema {
            description: "a thing in memory".into(),
            inputs: json!({"type": "object"}),
            outputs: Vec::new(),
            replace_on_changes: vec!["force_new".into()],
            stable_outputs: Vec::new(),
        };
        [("mock:Thing".to_string(), schema)].into()
    }
    async fn create(&self, req: CreateRequest) -> Result<CreateResponse, ProviderError> {
        let stop = self.0.enter(format!("create {}", req.name)).await;
        let id = format!("{}-{}", req.name, self.0.seq.fetch_add(1, Ordering::SeqCst));
        self.0
            .records
            .lock()
            .unwrap()
            .insert(id.clone(), Record { name: req.name, inputs: req.inputs.clone() });
        self.0.leave(stop).await;
        Ok(CreateResponse { outputs: outputs(&req.inputs, &id), id })
    }
    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        let records = self.0.records.lock().unwrap();
        let found = match &req.id {
            Some(id) => records.get(id).map(|r| (id.clone(), r.clone())),
            // An interrupted create: look it up by name and the inputs it was called with.
            None => records
                .iter()
                .find(|(_, r)| r.name == req.name && r.inputs == req.inputs)
                .map(|(id, r)| (id.clone(), r.clone())),
        };
        Ok(ReadResponse {
            resource: found.map(|(id, r)| ReadResource {
                outputs: outputs(&r.inputs, &id),
                id,
                inputs: r.inputs,
            }),
        })
    }
    async fn update(&self, req: UpdateRequest) -> Result<UpdateResponse, ProviderError> {
        let stop = self.0.enter(format!("update {}", req.name)).await;
        match self.0.records.lock().unwrap().get_mut(&req.id) {
            Some(r) => {
                r.inputs = req.news.clone();
                r.name = req.name.clone();
            }
            None => return Err(ProviderError::not_found(format!("no {}", req.id))),
        }
        self.0.leave(stop).await;
        Ok(UpdateResponse { outputs: outputs(&req.news, &req.id) })
    }
    async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse, ProviderError> {
        let stop = self.0.enter(format!("delete {}", req.name)).await;
        if self.0.records.lock().unwrap().remove(&req.id).is_none() {
            return Err(ProviderError::not_found(format!("no {}", req.id)));
        }
        self.0.leave(stop).await;
        Ok(DeleteResponse {})
    }
}

// ---------------------------------------------------------------------------------------------
// A stack in a temporary project, driven the way the CLI drives it.

static DIRS: AtomicU64 = AtomicU64::new(0);

struct Stack {
    dir: PathBuf,
    session: Session,
    cloud: Arc<Cloud>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Default)]
struct Opts {
    targets: Vec<String>,
    clear_pending: bool,
}

fn manifest(resources: &Value) -> skyform::manifest::Manifest {
    let m = json!({"manifest": 1, "project": "demo", "stack": "dev", "resources": resources});
    skyform::manifest::parse(&m.to_string(), "the test").unwrap()
}

impl Stack {
    fn new() -> Arc<Stack> {
        let n = DIRS.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("skyform-matrix-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Skyform.toml"), "name = \"demo\"\nprogram = \"false\"\n").unwrap();
        std::fs::write(dir.join("Skyform.dev.toml"), "provider = \"local\"\n").unwrap();
        let cloud = Arc::new(Cloud::default());
        let c = cloud.clone();
        let settings = ProviderSettings {
            self_exe: PathBuf::from("/nonexistent/skyform"),
            search_path: Vec::new(),
            default_timeout: Duration::from_secs(60),
            env: Vec::new(),
            transport: Arc::new(InMemory::new().with("mock", move || Mock(c.clone()))),
        };
        let project = Project::load(&dir).unwrap();
        let keys = skyform::secrets::passphrase_source("matrix", "the test");
        let session =
            Session::open(project, "dev", settings, Arc::new(NullSink), "tester".into(), keys).unwrap();
        Arc::new(Stack { dir, session, cloud })
    }

    fn state(&self) -> Snapshot {
        state::load_file(&self.session.files.state())
            .unwrap()
            .unwrap_or_else(|| Snapshot::new("demo", "dev", "none".into()))
    }

    async fn plan(
        &self,
        resources: &Value,
        opts: &Opts,
        snap: &Snapshot,
    ) -> skyform::Result<(Plan, skyform::providers::Providers)> {
        let m = manifest(resources);
        let graph = m.validate()?;
        let providers = self.session.start_providers(Some(&m), snap, false).await?;
        let popts = PlanOptions { targets: opts.targets.clone(), vault: self.session.vault.clone() };
        let plan = plan::plan_update(&m, &graph, snap, &providers, &popts).await?;
        Ok((plan, providers))
    }

    fn request(resources: &Value, opts: &Opts) -> PlanRequest {
        let m = json!({"manifest": 1, "project": "demo", "stack": "dev", "resources": resources});
        PlanRequest {
            program: Program::Inline(m),
            targets: opts.targets.clone(),
            clear_pending: opts.clear_pending,
        }
    }

    /// `skyform up --yes`, through the engine's use case.
    async fn up(&self, resources: &Value, opts: &Opts) -> skyform::Result<ApplyReport> {
        let req = UpRequest { plan: Stack::request(resources, opts), parallel: 1, ..Default::default() };
        let outcome = self.session.up(&req, &mut Yes).await?;
        Ok(outcome.applied.map(|a| a.report).unwrap_or_default())
    }

    /// `up` that stops after applying, before compacting: the journal stays as a crash leaves it.
    async fn up_uncompacted(&self, resources: &Value, opts: &Opts) -> skyform::Result<()> {
        let lock = self.session.lock("skyform up")?;
        let snap = self.session.recover(&lock)?;
        let (plan, providers) = self.plan(resources, opts, &snap).await?;
        let aopts =
            ApplyOptions { parallel: 1, cancel: Default::default(), vault: self.session.vault.clone() };
        let (_, _, providers) =
            apply::apply(&plan, snap, &self.session.files, providers, &aopts, Arc::new(NullSink)).await?;
        providers.shutdown().await;
        drop(lock); // as the OS releases a crashed holder's lock
        Ok(())
    }

    /// `skyform refresh --yes`.
    async fn refresh(&self) -> skyform::Result<()> {
        self.session.refresh_state(&mut |_, _| Ok(true)).await.map(|_| ())
    }

    /// `skyform preview`: the plan, with nothing written.
    async fn preview(&self, resources: &Value, opts: &Opts) -> skyform::Result<Plan> {
        self.session.preview(&Stack::request(resources, opts)).await
    }

    fn journal(&self) -> PathBuf {
        self.session.files.journal()
    }

    /// Cuts the journal just before the first line matching `entry` for `call` (a begin) or
    /// before its `end` (matched by seq).
    fn cut_journal(&self, call: &str, at_end: bool) {
        let text = std::fs::read_to_string(self.journal()).unwrap();
        let (op, name) = call.split_once(' ').unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let begin = lines
            .iter()
            .position(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
                v["entry"] == "begin" && v["op"]["op"] == op && v["op"]["name"] == name
            })
            .unwrap_or_else(|| panic!("no begin for `{call}` in the journal:\n{text}"));
        let cut = if at_end {
            let seq = serde_json::from_str::<Value>(lines[begin]).unwrap()["seq"].clone();
            lines
                .iter()
                .position(|l| {
                    let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
                    v["entry"] == "end" && v["seq"] == seq
                })
                .unwrap_or_else(|| panic!("no end for `{call}` in the journal:\n{text}"))
        } else {
            begin
        };
        let mut kept: String = lines[..cut].join("\n");
        kept.push('\n');
        std::fs::write(self.journal(), kept).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The table.

#[derive(Clone, Copy, PartialEq, Debug)]
enum Recovery {
    Refresh,
    ClearPending,
}

struct Case {
    name: &'static str,
    before: Value,
    after: Value,
    targets: &'static [&'static str],
    /// The mutating calls `up` makes for the change, in order.
    calls: &'static [&'static str],
    /// Which of them is interrupted.
    gated: usize,
    /// Resources left in the cloud on purpose (retain_on_delete), by name.
    retained: &'static [&'static str],
}

fn thing(name: &str, inputs: Value) -> Value {
    json!({"name": name, "type": "mock:Thing", "inputs": inputs})
}

fn with(mut r: Value, options: Value) -> Value {
    r["options"] = options;
    r
}

fn cases() -> Vec<Case> {
    let keep = || thing("keep", json!({"v": 0}));
    let x_ref = |field: &str| json!({"$ref": "x", "output": field});
    let mut out = vec![
        Case {
            name: "create",
            before: json!([keep()]),
            after: json!([keep(), thing("x", json!({"v": 1}))]),
            targets: &[],
            calls: &["create x"],
            gated: 0,
            retained: &[],
        },
        Case {
            name: "create with a dependent",
            before: json!([keep()]),
            after: json!([keep(), thing("x", json!({"v": 1})), thing("y", json!({"from": x_ref("v")}))]),
            targets: &[],
            calls: &["create x", "create y"],
            gated: 0,
            retained: &[],
        },
        Case {
            name: "update",
            before: json!([thing("x", json!({"v": 1}))]),
            after: json!([thing("x", json!({"v": 2}))]),
            targets: &[],
            calls: &["update x"],
            gated: 0,
            retained: &[],
        },
        Case {
            name: "update with a dependent on its output",
            before: json!([thing("x", json!({"v": 1})), thing("y", json!({"from": x_ref("v")}))]),
            after: json!([thing("x", json!({"v": 2})), thing("y", json!({"from": x_ref("v")}))]),
            targets: &[],
            calls: &["update x", "update y"],
            gated: 0,
            retained: &[],
        },
        Case {
            name: "update with ignore_changes",
            before: json!([with(thing("x", json!({"v": 1, "w": 1})), json!({"ignore_changes": ["w"]}))]),
            after: json!([with(thing("x", json!({"v": 2, "w": 2})), json!({"ignore_changes": ["w"]}))]),
            targets: &[],
            calls: &["update x"],
            gated: 0,
            retained: &[],
        },
        Case {
            name: "update of a protected resource",
            before: json!([with(thing("x", json!({"v": 1})), json!({"protect": true}))]),
            after: json!([with(thing("x", json!({"v": 2})), json!({"protect": true}))]),
            targets: &[],
            calls: &["update x"],
            gated: 0,
            retained: &[],
        },
        Case {
            name: "update and rename by alias",
            before: json!([thing("x", json!({"v": 1}))]),
            after: json!([with(thing("x2", json!({"v": 2})), json!({"aliases": ["x"]}))]),
            targets: &[],
            calls: &["update x2"],
            gated: 0,
            retained: &[],
        },
        Case {
            name: "update of a target only",
            before: json!([thing("x", json!({"v": 1})), thing("y", json!({"v": 1}))]),
            after: json!([thing("x", json!({"v": 2})), thing("y", json!({"v": 2}))]),
            targets: &["x"],
            calls: &["update x"],
            gated: 0,
            retained: &[],
        },
        Case {
            name: "delete",
            before: json!([keep(), thing("x", json!({"v": 1}))]),
            after: json!([keep()]),
            targets: &[],
            calls: &["delete x"],
            gated: 0,
            retained: &[],
        },
        Case {
            name: "delete with retain_on_delete alongside",
            before: json!([
                keep(),
                with(thing("r", json!({"v": 1})), json!({"retain_on_delete": true})),
                thing("x", json!({"v": 1}))
            ]),
            after: json!([keep()]),
            targets: &[],
            calls: &["delete x"],
            gated: 0,
            retained: &["r"],
        },
    ];
    for gated in 0..2 {
        out.push(Case {
            name: if gated == 0 {
                "delete a dependent, then its dependency (dependent)"
            } else {
                "delete a dependent, then its dependency (dependency)"
            },
            before: json!([keep(), thing("x", json!({"v": 1})), thing("y", json!({"from": x_ref("v")}))]),
            after: json!([keep()]),
            targets: &[],
            calls: &["delete y", "delete x"],
            gated,
            retained: &[],
        });
        out.push(Case {
            name: if gated == 0 {
                "replace, create before delete (create)"
            } else {
                "replace, create before delete (delete old)"
            },
            before: json!([thing("x", json!({"force_new": "a"}))]),
            after: json!([thing("x", json!({"force_new": "b"}))]),
            targets: &[],
            calls: &["create x", "delete x"],
            gated,
            retained: &[],
        });
        out.push(Case {
            name: if gated == 0 {
                "replace, delete before replace (delete)"
            } else {
                "replace, delete before replace (create)"
            },
            before: json!([with(
                thing("x", json!({"force_new": "a"})),
                json!({"delete_before_replace": true})
            )]),
            after: json!([with(
                thing("x", json!({"force_new": "b"})),
                json!({"delete_before_replace": true})
            )]),
            targets: &[],
            calls: &["delete x", "create x"],
            gated,
            retained: &[],
        });
        out.push(Case {
            name: if gated == 0 {
                "replace by replace_on_changes (create)"
            } else {
                "replace by replace_on_changes (delete old)"
            },
            before: json!([with(thing("x", json!({"v": 1})), json!({"replace_on_changes": ["v"]}))]),
            after: json!([with(thing("x", json!({"v": 2})), json!({"replace_on_changes": ["v"]}))]),
            targets: &[],
            calls: &["create x", "delete x"],
            gated,
            retained: &[],
        });
    }
    out
}

/// Runs one case at one point with one recovery; returns what went wrong, if anything.
async fn run_case(case: &Case, point: Point, recovery: Recovery) -> Result<(), String> {
    let stack = Stack::new();
    let opts = Opts { targets: case.targets.iter().map(|s| s.to_string()).collect(), clear_pending: false };
    stack.up(&case.before, &Opts::default()).await.map_err(|e| format!("first up: {}", e.message))?;
    let call = case.calls[case.gated].to_string();
    let mut calls_before = stack.cloud.calls().len();

    // Interrupt: run `up` (without compaction, as a crash never compacts) until the gate stops
    // it or it ends, then drop it.
    let stop = match point {
        Point::BeforeBegin | Point::AfterBegin => Stop::OnEntry,
        Point::AfterActed => Stop::AfterActing,
        Point::BeforeEnd => Stop::AfterAnswering,
    };
    *stack.cloud.gate.lock().unwrap() = Some(Gate { call: call.clone(), stop });
    let s = stack.clone();
    let after = case.after.clone();
    let o = opts.clone();
    let mut task = tokio::spawn(async move { s.up_uncompacted(&after, &o).await });
    let finished = tokio::select! {
        _ = stack.cloud.reached.notified() => false,
        done = &mut task => match done {
            Ok(Ok(())) if point == Point::BeforeEnd => true, // the gated call was the last one
            other => return Err(format!("the run ended before the gate `{call}`: {:?}", other.map(|r| r.map_err(|e| e.message)))),
        },
        _ = tokio::time::sleep(Duration::from_secs(10)) => return Err(format!("the gate `{call}` was never reached")),
    };
    if !finished {
        task.abort();
        let _ = task.await;
    }
    stack.cloud.frozen.store(false, Ordering::SeqCst);
    match point {
        Point::BeforeBegin => {
            stack.cut_journal(&call, false);
            // The provider was reached in this simulation; not in the crash it stands for.
            calls_before += 1;
        }
        Point::BeforeEnd => stack.cut_journal(&call, true),
        _ => {}
    }
    // The next command reports the interruption, unless nothing had begun.
    let pending = stack.preview(&case.after, &opts).await;
    let expect_pending = point != Point::BeforeBegin;
    match (&pending, expect_pending) {
        (Err(e), true) if e.kind == skyform::ErrorKind::Pending => {}
        (Ok(_), false) => {}
        (other, _) => {
            return Err(format!(
                "after the interruption, preview gave {:?}",
                other.as_ref().map(|_| "a plan").map_err(|e| &e.message)
            ));
        }
    }

    // Recover.
    let recovery_start = stack.cloud.calls().len().max(calls_before);
    let recover_opts = match recovery {
        Recovery::Refresh => {
            stack.refresh().await.map_err(|e| format!("refresh: {}", e.message))?;
            opts.clone()
        }
        Recovery::ClearPending => Opts { clear_pending: true, ..opts.clone() },
    };
    let report = stack
        .up(&case.after, &recover_opts)
        .await
        .map_err(|e| format!("up after recovery: {}", e.message))?;
    if !report.failed.is_empty() {
        return Err(format!("up after recovery failed: {:?}", report.failed));
    }

    // The calls the provider saw during recovery (mutating only).
    let seen: Vec<String> =
        stack.cloud.calls()[recovery_start..].iter().filter(|c| !c.starts_with("read ")).cloned().collect();
    let acted = matches!(point, Point::AfterActed | Point::BeforeEnd);
    let from = if acted && recovery == Recovery::Refresh { case.gated + 1 } else { case.gated };
    let mut expected: Vec<String> = case.calls[from..].iter().map(|s| s.to_string()).collect();
    // An update is resolved by running it again (it is idempotent), whatever refresh found.
    if acted && recovery == Recovery::Refresh && call.starts_with("update") {
        expected.insert(0, call.clone());
    }
    if seen != expected {
        return Err(format!("recovery made the calls {seen:?}, expected {expected:?}"));
    }

    // State and cloud agree: every recorded resource exists as recorded.
    let state = stack.state();
    if !state.pending_operations.is_empty() {
        return Err(format!("still pending: {:?}", state.pending_operations));
    }
    let live = stack.cloud.live();
    for r in &state.resources {
        match live.get(&r.id) {
            Some((_, inputs)) if inputs == r.inputs.sealed() => {}
            other => {
                return Err(format!(
                    "`{}` is recorded as {} {} but the cloud has {other:?}",
                    r.name,
                    r.id,
                    r.inputs.sealed()
                ));
            }
        }
        if r.pending_delete {
            return Err(format!("an old copy of `{}` is still to be deleted", r.name));
        }
    }
    // And the cloud holds nothing unrecorded but what the documentation promises: resources
    // kept by retain_on_delete, and under --clear-pending a create that had happened.
    let recorded: std::collections::BTreeSet<&str> = state.resources.iter().map(|r| r.id.as_str()).collect();
    let mut orphans: Vec<String> =
        live.iter().filter(|(id, _)| !recorded.contains(id.as_str())).map(|(_, (n, _))| n.clone()).collect();
    orphans.sort();
    let mut promised: Vec<String> = case.retained.iter().map(|s| s.to_string()).collect();
    if acted && recovery == Recovery::ClearPending && call.starts_with("create") {
        promised.push(call.trim_start_matches("create ").to_string());
    }
    promised.sort();
    if orphans != promised {
        return Err(format!("unrecorded resources in the cloud: {orphans:?}, expected {promised:?}"));
    }
    // Each declared (in scope) resource is recorded once.
    for r in case.after.as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let n = state.resources.iter().filter(|s| s.name == name).count();
        if n != 1 {
            return Err(format!("`{name}` is recorded {n} times"));
        }
    }

    // Converged: nothing more to do.
    let plan =
        stack.preview(&case.after, &opts).await.map_err(|e| format!("final preview: {}", e.message))?;
    if plan.has_changes() {
        let changes: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| s.kind != plan::StepKind::Same || s.metadata_changed)
            .map(|s| format!("{} {}", s.kind.verb(), s.name))
            .collect();
        return Err(format!("not converged: {changes:?}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_kind_interrupted_at_every_point_recovers() {
    let started = Instant::now();
    // The runs are independent stacks; run eight at a time (they mostly wait on fsync).
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut set = tokio::task::JoinSet::new();
    for case in cases() {
        let case = Arc::new(case);
        for point in POINTS {
            for recovery in [Recovery::Refresh, Recovery::ClearPending] {
                let (case, limit) = (case.clone(), limit.clone());
                set.spawn(async move {
                    let _permit = limit.acquire_owned().await.unwrap();
                    let t = Instant::now();
                    let r = run_case(&case, point, recovery).await;
                    let label = format!("{} / {point:?} / {recovery:?}", case.name);
                    (label, r, t.elapsed())
                });
            }
        }
    }
    let mut failures = Vec::new();
    let mut runs = 0;
    while let Some(joined) = set.join_next().await {
        let (label, r, took) = joined.unwrap();
        runs += 1;
        if std::env::var_os("MATRIX_TIMES").is_some() {
            println!("{:>6} ms  {label}", took.as_millis());
        }
        if let Err(e) = r {
            failures.push(format!("{label}: {e}"));
        }
    }
    failures.sort();
    println!("{runs} interrupted runs in {:.2}s", started.elapsed().as_secs_f64());
    assert!(runs >= 100, "the matrix runs every case");
    assert!(failures.is_empty(), "{} of {runs} cases failed:\n{}", failures.len(), failures.join("\n"));
}

/// Without interruption: every case applies in one `up` with exactly its calls and converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_kind_applies_with_exactly_its_calls() {
    for case in cases() {
        let stack = Stack::new();
        stack.up(&case.before, &Opts::default()).await.unwrap();
        let from = stack.cloud.calls().len();
        let opts =
            Opts { targets: case.targets.iter().map(|s| s.to_string()).collect(), clear_pending: false };
        let report = stack.up(&case.after, &opts).await.unwrap();
        assert!(report.failed.is_empty(), "{}: {:?}", case.name, report.failed);
        let seen: Vec<String> =
            stack.cloud.calls()[from..].iter().filter(|c| !c.starts_with("read ")).cloned().collect();
        assert_eq!(seen, case.calls, "{}", case.name);
        assert!(!stack.preview(&case.after, &opts).await.unwrap().has_changes(), "{}: converged", case.name);
    }
}

/// Secrets through the engine's use cases (the merge of the secrets work into `ops`): the
/// provider gets the plaintext; the state, the journal-compacted state file and a saved plan
/// hold it sealed; a saved plan reads back with its secret as a mark; an update of a secret
/// interrupted after the provider acted, then refreshed, is planned again and converges, and
/// nothing recorded on the way holds the plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_through_the_use_cases_stay_sealed() {
    const OLD: &str = "matrix-old-secret-7d1c";
    const NEW: &str = "matrix-new-secret-9e2f";
    let stack = Stack::new();
    let at = |v: &str| json!([thing("s", json!({"v": 1, "token": {"$secret": v}}))]);
    let no_plaintext = |what: &str| {
        let dir = &stack.dir;
        for f in
            [dir.join("state/dev.json"), dir.join("state/dev.history.jsonl"), dir.join("Skyform.dev.toml")]
        {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(
                !text.contains(OLD) && !text.contains(NEW),
                "{what}: {} holds a plaintext secret",
                f.display()
            );
        }
    };
    stack.up(&at(OLD), &Opts::default()).await.unwrap();
    let live = stack.cloud.live();
    assert_eq!(live.values().next().unwrap().1["token"], json!(OLD), "the provider gets the plaintext");
    no_plaintext("after up");
    let recorded = stack.state();
    assert!(recorded.resources[0].inputs.sealed()["token"].get("$encrypted").is_some(), "sealed in state");
    assert!(std::fs::read_to_string(stack.dir.join("Skyform.dev.toml")).unwrap().contains("[secrets]"));

    // A saved plan: sealed on disk, a mark once loaded.
    let plan = stack.preview(&at(NEW), &Opts::default()).await.unwrap();
    let path = stack.dir.join("plan.json");
    stack.session.save_plan(&plan, &path).unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(!saved.contains(NEW) && saved.contains("$encrypted"), "{saved}");
    let loaded = stack.session.load_plan(&path).unwrap().plan;
    let step = loaded.steps.iter().find(|s| s.name == "s").unwrap();
    assert_eq!(step.inputs["token"], json!({"$secret": NEW}), "a saved plan reads back with its mark");

    // An update of the secret, interrupted after the provider acted: refresh keeps the recorded
    // (old, sealed) inputs, so the next up updates again and converges.
    *stack.cloud.gate.lock().unwrap() = Some(Gate { call: "update s".into(), stop: Stop::AfterActing });
    let s = stack.clone();
    let task = tokio::spawn(async move { s.up_uncompacted(&at(NEW), &Opts::default()).await });
    tokio::time::timeout(Duration::from_secs(10), stack.cloud.reached.notified()).await.expect("the gate");
    task.abort();
    let _ = task.await;
    let journal = std::fs::read_to_string(stack.journal()).unwrap();
    assert!(journal.contains("\"begin\"") && !journal.contains(NEW), "the journal: {journal}");
    stack.refresh().await.unwrap();
    no_plaintext("after refresh");
    assert!(stack.state().pending_operations.is_empty());
    assert!(stack.preview(&at(NEW), &Opts::default()).await.unwrap().has_changes(), "planned again");
    stack.up(&at(NEW), &Opts::default()).await.unwrap();
    no_plaintext("after the second up");
    assert_eq!(stack.cloud.live().values().next().unwrap().1["token"], json!(NEW));
    assert!(!stack.preview(&at(NEW), &Opts::default()).await.unwrap().has_changes(), "converged");
}
