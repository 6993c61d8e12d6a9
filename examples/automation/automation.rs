//! Automation: the skyform engine as a library, in a test of your own.
//!
//! This test stands up an ephemeral stack of a small app (one Python function behind an HTTP
//! API) on the local cloud, sends requests to it, and destroys it, without the `skyform`
//! command line: the program is inline (built with `skyform-sdk` in this process), and every
//! step goes through `skyform_engine::ops`, the use cases the CLI runs too. Copy it into your
//! own test suite; it needs `skyform-engine` and `skyform-sdk` as dev-dependencies, `python3`,
//! and the `skyform` executable (which runs the built-in providers and the local cloud).
//!
//! In this repository it runs with `cargo test --test automation`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use skyform_engine::engine::Session;
use skyform_engine::events::{Event, EventSink};
use skyform_engine::host::Processes;
use skyform_engine::ops::{self, PlanRequest, Program, UpRequest, Yes};
use skyform_engine::plan::StepKind;
use skyform_engine::project::Project;
use skyform_engine::providers::ProviderSettings;
use skyform_engine::secrets;
use skyform_sdk::{Function, HttpApi, Runtime, Target};

/// The `skyform` executable: the one this repository builds, or the one on PATH.
fn skyform_exe() -> PathBuf {
    if let Some(exe) = option_env!("CARGO_BIN_EXE_skyform") {
        return PathBuf::from(exe);
    }
    let path = std::env::var_os("PATH").expect("PATH is set");
    std::env::split_paths(&path)
        .map(|d| d.join("skyform"))
        .find(|p| p.is_file())
        .expect("install skyform (cargo install --path .) so that `skyform` is on PATH")
}

/// The app, declared with the SDK in this process: what `src/main.rs` of a project would print.
fn app(project: &str, stack: &str, dir: &Path) -> Value {
    let ctx = skyform_sdk::Program::new(project, stack, Target::Local, json!({})).with_project_dir(dir);
    let hello = ctx
        .add(Function::new("hello").code("functions/hello").handler("app.handler").runtime(Runtime::Python3))
        .expect("a valid function");
    let api = ctx
        .add(HttpApi::new("api").route("GET /hello/{name}", &hello).route("GET /hello", &hello))
        .expect("a valid API");
    ctx.export("url", api.url());
    ctx.manifest()
}

/// Collects the engine's events: what the CLI renders as progress, a test can assert on.
#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl EventSink for Events {
    fn event(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

/// A project folder in the temp dir, holding the function's code. Dropping it stops the local
/// cloud it started and removes the folder, even when the test fails half-way.
struct Ephemeral(PathBuf);

impl Drop for Ephemeral {
    fn drop(&mut self) {
        let _ = skyform_local::stop(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = TcpStream::connect(host).expect("the API listens");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_stack_serves_requests_and_is_destroyed() {
    // A project with one ephemeral stack.
    let dir = std::env::temp_dir().join(format!("skyform-automation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/automation/functions/hello");
    std::fs::create_dir_all(dir.join("functions/hello")).unwrap();
    std::fs::copy(source.join("app.py"), dir.join("functions/hello/app.py")).unwrap();
    std::fs::write(dir.join("Skyform.toml"), "name = \"automation\"\n").unwrap();
    let guard = Ephemeral(dir.clone());
    let project = Project::load(&dir).unwrap();
    let stack = format!("test-{}", std::process::id());
    ops::stack_init(&project, &stack, "local", None).unwrap();

    // The engine reads no environment: say where skyform is, how long a provider may take.
    let exe = skyform_exe();
    let settings = ProviderSettings {
        self_exe: exe.clone(),
        search_path: Vec::new(),
        default_timeout: Duration::from_secs(300),
        env: vec![("SKYFORM_EXE".into(), exe.display().to_string())],
        transport: Arc::new(Processes),
    };
    let events = Arc::new(Events::default());
    // Where the stack's data key comes from if the app has secrets (this one has none, so it is
    // never asked): a passphrase the program holds, not the environment.
    let keys = secrets::passphrase_source("automation example", "the automation test");
    let session =
        Session::open(project.clone(), &stack, settings, events.clone(), "automation".into(), keys).unwrap();

    // Up, with the program inline.
    let manifest = app("automation", &stack, &dir);
    let up = UpRequest {
        plan: PlanRequest { program: Program::Inline(manifest.clone()), ..Default::default() },
        ..Default::default()
    };
    let outcome = session.up(&up, &mut Yes).await.unwrap();
    let report = outcome.applied.expect("the plan had changes").report;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.done.get(&StepKind::Create), Some(&2), "{report:?}");
    let created: Vec<String> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::StepFinished { name, kind: StepKind::Create, error: None, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 2, "an event per created resource: {created:?}");

    // Requests.
    let url = outcome.outputs["url"].as_str().expect("the stack exports its URL").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(get(&format!("{url}/hello/ada")), (200, "Hello, ada!".to_string()));
    assert_eq!(get(&format!("{url}/hello")), (200, "Hello, world!".to_string()));

    // Converged: a preview of the same program has nothing to do.
    let plan = session
        .preview(&PlanRequest { program: Program::Inline(manifest), ..Default::default() })
        .await
        .unwrap();
    assert!(!plan.has_changes());

    // Destroy, and remove the stack.
    let outcome = session.destroy(&UpRequest::default(), &mut Yes).await.unwrap();
    let report = outcome.applied.expect("there was something to delete").report;
    assert_eq!(report.done.get(&StepKind::Delete), Some(&2), "{report:?}");
    assert!(session.export().unwrap().resources.is_empty());
    ops::stack_rm(&project, &stack, false, "automation").unwrap();
    assert!(TcpStream::connect(url.trim_start_matches("http://")).is_err(), "the API is gone");
    drop(guard);
}
