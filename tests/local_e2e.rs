//! End-to-end tests of the local cloud, through the real `skyform` binary: the examples and the
//! scaffolded templates deployed, served over HTTP, updated, logged, invoked and destroyed, and
//! what a user sees when a function fails or a program is wrong.
//!
//! Each test works in a temporary copy of a project and runs the project's real program
//! (`cargo run --quiet`) with one shared `CARGO_TARGET_DIR` (`target/e2e-programs`), so the SDK
//! and the Rust functions' dependencies are compiled once for all tests and all runs. The first
//! run builds `lambda_http` and its dependencies in release mode (a minute or two on two
//! cores); later runs only rebuild the small crates of the copied projects.
//!
//! Every project's local cloud is a daemon of its own. [`Project`]'s `Drop` stops it, so a
//! failing test leaks no process; the lifecycle tests also check that `destroy` closes the
//! API's port and stops the daemon.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Run;
use common::tempdir::TempDir;
use serde_json::{Value, json};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Where the projects' programs and Rust functions are built, shared by every test.
fn programs_target() -> PathBuf {
    Path::new(REPO).join("target/e2e-programs")
}

/// A temporary project and the local cloud it may start.
struct Project {
    /// Removed after `Drop for Project` has stopped the daemon (fields drop after `drop`).
    tmp: TempDir,
    /// The project folder: the temp dir itself, or a folder in it (`skyform new`).
    root: PathBuf,
}

impl Project {
    /// An empty temp dir; the project is `root` inside it (not created).
    fn in_temp(prefix: &str, root: &str) -> Project {
        let tmp = TempDir::new(prefix);
        let root = if root.is_empty() { tmp.path().to_path_buf() } else { tmp.path().join(root) };
        Project { tmp, root }
    }

    /// A copy of `examples/NAME` (without its `target/`, `state/` and `.skyform/`), its SDK
    /// dependency pointed at this repository's `sdk/`.
    fn example(name: &str) -> Project {
        let p = Project::in_temp(name, "");
        common::copy::copy_project(&Path::new(REPO).join("examples").join(name), &p.root);
        p.edit("Cargo.toml", |s| s.replace("path = \"../../sdk\"", &format!("path = \"{REPO}/sdk\"")));
        p
    }

    fn path(&self) -> &Path {
        &self.root
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    #[track_caller]
    fn edit(&self, rel: &str, f: impl FnOnce(&str) -> String) {
        let before = self.read(rel);
        let after = f(&before);
        assert_ne!(before, after, "the edit of {rel} changed nothing");
        self.write(rel, &after);
    }

    /// `skyform ARGS` in the temp dir (the project's parent for `skyform new`), in a clean
    /// environment. Kept from the caller: PATH and HOME (the program is built with the user's
    /// cargo and functions run on the user's python and node, which rustup and pyenv find
    /// through them) and the toolchain variables. Nothing named `SKYFORM_*` leaks in.
    fn command_in(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skyform"));
        cmd.args(args).current_dir(cwd).env_clear().stdin(Stdio::null());
        for k in
            ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "PYENV_ROOT", "PYENV_VERSION"]
        {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.env("USER", "tester").env("LANG", "C.UTF-8").env("CARGO_TARGET_DIR", programs_target());
        // Where `skyform new` unpacks the SDK: one folder for every test, so it compiles once.
        cmd.env("XDG_DATA_HOME", Path::new(REPO).join("target/e2e-data"));
        cmd
    }

    fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        let out = self.command_in(cwd, args).output().expect("run skyform");
        let norm = |b: &[u8]| normalize(&String::from_utf8_lossy(b), self.tmp.path());
        Run { code: out.status.code().unwrap_or(-1), stdout: norm(&out.stdout), stderr: norm(&out.stderr) }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_in(&self.root, args)
    }

    /// Raw stdout of `skyform outputs NAME`.
    fn output(&self, name: &str) -> String {
        let out = self.command_in(&self.root, &["outputs", name]).output().unwrap();
        assert!(out.status.success(), "outputs {name}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Whatever happened, stop this project's local cloud and its function processes.
        if self.root.join(".skyform/local").exists() {
            let _ = self
                .command_in(&self.root, &["local", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// What changes between runs, on top of [`common::normalize`]: request ids, log times, ports,
/// content hashes, measured durations and memory, and what depends on the Python version.
fn normalize(text: &str, tmp: &Path) -> String {
    let rules: &[(&str, &str)] = &[
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[REQUEST-ID]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", "[TIME]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"control port \d+", "control port [PORT]"),
        (r"\b[0-9a-f]{64}\b", "[SHA256]"),
        (r"bootstrap-[0-9a-f]{12}", "bootstrap-[HASH]"),
        (r"Duration: \d+(\.\d+)? ms", "Duration: [N] ms"),
        (r"Max Memory Used: \d+ MB", "Max Memory Used: [N] MB"),
        // Python 3.11+ underlines the failing expression; older versions do not.
        (r"(?m)^(\[TIME\])?[ \t]*[\^~]+[ \t]*\n", ""),
        // Line numbers inside skyform's own runtime client change when it is edited.
        (r#"(shims/bootstrap-\[HASH\]\.py", line )\d+"#, "${1}[N]"),
    ];
    let mut s = text.to_string();
    for (pat, rep) in rules {
        s = regex::Regex::new(pat).unwrap().replace_all(&s, *rep).into_owned();
    }
    common::normalize(&s, tmp)
}

/// A GET over a fresh connection: (status, body).
fn http_get(base: &str, path: &str) -> (u16, String) {
    let addr = base.strip_prefix("http://").expect("an http:// url");
    let sock: SocketAddr = addr.parse().expect("host:port");
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(body.len());
    (status, body[..len.min(body.len())].to_string())
}

/// Whether something still accepts connections on the URL's port.
fn port_open(base: &str) -> bool {
    let sock: SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();
    TcpStream::connect_timeout(&sock, Duration::from_millis(500)).is_ok()
}

/// `destroy` closes the port; allow the gateway a moment to drop its listener.
#[track_caller]
fn assert_port_closes(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while port_open(base) {
        assert!(Instant::now() < deadline, "{base} still accepts connections after destroy");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks that every invocation in `skyform logs` output has its START, END and REPORT lines,
/// and returns the request ids in order.
#[track_caller]
fn request_ids(logs: &str) -> Vec<String> {
    let start = regex::Regex::new(r"START RequestId: ([0-9a-f-]{36}) Version: \$LATEST").unwrap();
    let ids: Vec<String> = start.captures_iter(logs).map(|c| c[1].to_string()).collect();
    for id in &ids {
        assert!(logs.contains(&format!("END RequestId: {id}")), "no END for {id}:\n{logs}");
        assert!(logs.contains(&format!("REPORT RequestId: {id}\tDuration: ")), "no REPORT for {id}:\n{logs}");
    }
    ids
}

/// `skyform logs FUNCTION` once it shows `n` invocations, each with its END and REPORT lines:
/// the local cloud writes those lines after the answer has gone back, so a request's log can
/// trail its response by a moment (as CloudWatch's does). Waits at most 10 s.
fn settled_logs(p: &Project, function: &str, n: usize) -> String {
    let start = regex::Regex::new(r"START RequestId: ([0-9a-f-]{36})").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = raw_logs(p, function);
        let ids: Vec<String> = start.captures_iter(&logs).map(|c| c[1].to_string()).collect();
        let complete = ids.iter().all(|id| {
            logs.contains(&format!("END RequestId: {id}"))
                && logs.contains(&format!("REPORT RequestId: {id}"))
        });
        if (ids.len() >= n && complete) || Instant::now() > deadline {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Raw `skyform logs FUNCTION` (the request ids must stay as they are).
fn raw_logs(p: &Project, function: &str) -> String {
    let out = p.command_in(p.path(), &["logs", function]).output().unwrap();
    assert!(out.status.success(), "logs {function}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The lifecycle shared by the examples: up, serve, change the function, up again (only the
/// function changes), logs, invoke, destroy, stop.
struct Lifecycle<'a> {
    name: &'a str,
    function: &'a str,
    source: &'a str,
    path: &'a str,
    edit: fn(&str) -> String,
    check_before: fn(u16, &str),
    check_after: fn(u16, &str),
    event: Value,
}

fn lifecycle(p: &Project, l: Lifecycle) {
    let up = p.run(&["up", "--yes"]);
    up.ok();
    insta::assert_snapshot!(format!("{}_up", l.name), up.text());
    let url = p.output("url");
    let (status, body) = http_get(&url, l.path);
    (l.check_before)(status, &body);

    p.edit(l.source, l.edit);
    let update = p.run(&["up", "--yes"]);
    update.ok();
    insta::assert_snapshot!(format!("{}_update", l.name), update.text());
    assert!(update.stdout.contains(&format!("local:Function  {}  updated", l.function)), "{}", update.text());
    // The plan lists the API (its routes name the function, an output known only after the
    // update), but applying finds its inputs unchanged and leaves it alone.
    assert!(
        !update.stdout.lines().any(|l| l.contains("local:HttpApi") && l.ends_with("updated (Ns)")),
        "the API changed:\n{}",
        update.text()
    );
    assert!(update.stdout.contains("~  1 updated"), "{}", update.text());
    assert_eq!(p.output("url"), url, "the API moved to another port");
    let (status, body) = http_get(&url, l.path);
    (l.check_after)(status, &body);

    let logs = settled_logs(p, l.function, 2);
    assert_eq!(request_ids(&logs).len(), 2, "two requests were served:\n{logs}");

    let invoke = p.run(&["invoke", l.function, "--data", &l.event.to_string()]);
    invoke.ok();
    let result: Value = serde_json::from_str(invoke.stdout.trim()).expect("invoke prints JSON");
    insta::assert_json_snapshot!(format!("{}_invoke", l.name), result);
    let logs = settled_logs(p, l.function, 3);
    assert_eq!(request_ids(&logs).len(), 3, "the invocation is logged:\n{logs}");

    let destroy = p.run(&["destroy", "--yes"]);
    destroy.ok();
    insta::assert_snapshot!(format!("{}_destroy", l.name), destroy.text());
    assert_port_closes(&url);
    p.run(&["local", "stop"]).ok();
    let status = p.run(&["local", "status"]);
    assert!(status.ok().stdout.contains("not running"), "{}", status.text());
}

#[test]
fn hello_http_lifecycle() {
    let p = Project::example("hello-http");
    lifecycle(
        &p,
        Lifecycle {
            name: "hello_http",
            function: "hello",
            source: "functions/hello/app.py",
            path: "/hello/ada",
            // The new version also prints, to see it in the logs.
            edit: |s| {
                s.replace(
                    "    return {\"statusCode\": 200, \"body\": f\"Hello, {name}!\"}",
                    "    print(f\"greeting {name}\")\n    return {\"statusCode\": 200, \"body\": f\"Howdy, {name}!\"}",
                )
            },
            check_before: |status, body| assert_eq!((status, body), (200, "Hello, ada!")),
            check_after: |status, body| assert_eq!((status, body), (200, "Howdy, ada!")),
            event: json!({"pathParameters": {"name": "bob"}}),
        },
    );
    // The logs as the user reads them (kept after `destroy`): the first request of the old
    // version, then the new version's request and invocation with what it printed.
    let logs = p.run(&["logs", "hello"]);
    insta::assert_snapshot!("hello_http_logs", logs.ok().text());
}

/// An API Gateway HTTP API (payload 2.0) event, enough for `lambda_http`.
fn apigw_event(path: &str, query: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": {"name": query.trim_start_matches("name=")},
        "headers": {"host": "localhost"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "domainName": "localhost",
            "domainPrefix": "localhost", "requestId": "test", "routeKey": "ANY /{proxy+}",
            "stage": "$default", "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "test"}
        },
        "isBase64Encoded": false
    })
}

#[test]
fn rust_api_lifecycle() {
    let p = Project::example("rust-api");
    lifecycle(
        &p,
        Lifecycle {
            name: "rust_api",
            function: "api",
            source: "functions/api/src/main.rs",
            path: "/anything/at/all?name=ada",
            edit: |s| s.replace("format!(\"Hello, {name}!\")", "format!(\"Howdy, {name}!\")"),
            check_before: |status, body| {
                assert_eq!(status, 200, "{body}");
                let v: Value = serde_json::from_str(body).unwrap();
                assert_eq!(v, json!({"message": "Hello, ada!", "method": "GET", "path": "/anything/at/all"}));
            },
            check_after: |status, body| {
                assert_eq!(status, 200, "{body}");
                let v: Value = serde_json::from_str(body).unwrap();
                assert_eq!(v["message"], "Howdy, ada!");
            },
            event: apigw_event("/invoked", "name=bob"),
        },
    );
}

#[test]
fn scaffold_http_api_serves() {
    let p = Project::in_temp("new-http", "shop");
    let parent = p.tmp.path().to_path_buf();
    let new = p.run_in(&parent, &["new", "http-api", "shop"]);
    insta::assert_snapshot!("new_http_api", new.ok().text());
    for f in [
        "Skyform.toml",
        "Skyform.dev.toml",
        "Cargo.toml",
        "src/main.rs",
        "functions/hello/app.py",
        "README.md",
    ] {
        assert!(p.path().join(f).is_file(), "{f} was not written");
    }
    assert_eq!(p.read("state/.gitkeep"), "");
    assert!(p.read("Skyform.toml").contains("name = \"shop\""));
    assert!(p.read("Skyform.dev.toml").contains("provider = \"local\""));
    // The SDK the binary carries, unpacked under the data folder: nothing of the clone.
    let sdk_prefix = format!("skyform-sdk = {{ path = \"{REPO}/target/e2e-data/skyform/sdk/0.1.0-");
    assert!(p.read("Cargo.toml").contains(&sdk_prefix), "{}", p.read("Cargo.toml"));
    let ignored: Vec<String> = p.read(".gitignore").lines().map(String::from).collect();
    for pat in ["/target", ".skyform/", "state/*.lock", "state/*.journal"] {
        assert!(ignored.iter().any(|l| l == pat), ".gitignore lacks {pat}: {ignored:?}");
    }

    let up = p.run_in(&parent, &["-C", "shop", "up", "--yes"]);
    assert!(up.ok().stdout.contains("+  2 created"), "{}", up.text());
    let url = p.output("url");
    assert_eq!(http_get(&url, "/hello/ada"), (200, "Hello, ada!".to_string()));
    assert_eq!(http_get(&url, "/hello"), (200, "Hello, world!".to_string()));
    let logs = settled_logs(&p, "hello", 2);
    assert_eq!(request_ids(&logs).len(), 2, "{logs}");
    assert!(logs.contains("greeting ada"), "what the function printed is logged:\n{logs}");
    p.run_in(&parent, &["-C", "shop", "destroy", "--yes"]).ok();
    assert_port_closes(&url);
}

#[test]
fn scaffold_rust_api_serves() {
    let p = Project::in_temp("new-rust", "rusty");
    let parent = p.tmp.path().to_path_buf();
    let new = p.run_in(&parent, &["new", "rust-api", "rusty"]);
    insta::assert_snapshot!("new_rust_api", new.ok().text());
    assert!(p.read("functions/api/Cargo.toml").contains("name = \"rusty-fn\""));
    assert!(p.read(".gitignore").lines().any(|l| l == "/functions/*/target"));
    // Pin the function's dependencies to the versions the rust-api example was built with, so
    // the shared target folder already holds them (cargo re-resolves only the renamed root).
    std::fs::copy(
        Path::new(REPO).join("examples/rust-api/functions/api/Cargo.lock"),
        p.path().join("functions/api/Cargo.lock"),
    )
    .unwrap();

    p.run(&["up", "--yes"]).ok();
    let url = p.output("url");
    let (status, body) = http_get(&url, "/x?name=ada");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v, json!({"message": "Hello, ada!", "method": "GET", "path": "/x"}));
    let logs = raw_logs(&p, "api");
    assert!(logs.contains("GET /x"), "what the function printed is logged:\n{logs}");
    p.run(&["destroy", "--yes"]).ok();
    assert_port_closes(&url);
}

#[test]
fn scaffold_refusals() {
    let p = Project::in_temp("new-errors", "");
    let list = p.run(&["new", "--list"]);
    insta::assert_snapshot!("new_list", list.ok().text());

    let unknown = p.run(&["new", "graphql-api", "app"]);
    assert_eq!(unknown.code, 1);
    insta::assert_snapshot!("new_unknown_template", unknown.text());
    assert!(!p.path().join("app").exists(), "nothing is written for an unknown template");

    p.write("taken/notes.txt", "mine\n");
    let taken = p.run(&["new", "http-api", "taken"]);
    assert_eq!(taken.code, 1);
    insta::assert_snapshot!("new_not_empty", taken.text());
    assert_eq!(std::fs::read_dir(p.path().join("taken")).unwrap().count(), 1, "nothing was added");

    let missing = p.run(&["new", "http-api"]);
    assert_eq!(missing.code, 2, "{}", missing.text());
}

/// The program of a project whose functions fail in every way a function can.
const FAILING_PROGRAM: &str = r#"use skyform_sdk::{Function, HttpApi, Runtime};

fn main() {
    skyform_sdk::run(|ctx| {
        let mut api = HttpApi::new("api");
        for (name, timeout) in [("boom", 20), ("slow", 1), ("crash", 20), ("broken", 20)] {
            let f = ctx.add(
                Function::new(name)
                    .code(format!("functions/{name}"))
                    .handler("app.handler")
                    .runtime(Runtime::Python3)
                    .timeout_secs(timeout),
            )?;
            api = api.route(&format!("GET /{name}"), &f);
        }
        let api = ctx.add(api)?;
        ctx.export("url", api.url());
        Ok(())
    })
}
"#;

/// A project with the example's Cargo.toml and lock (same dependencies, already built).
fn program_project(prefix: &str, name: &str, main_rs: &str) -> Project {
    let p = Project::in_temp(prefix, "");
    let example = Path::new(REPO).join("examples/hello-http");
    let cargo = std::fs::read_to_string(example.join("Cargo.toml")).unwrap();
    p.write(
        "Cargo.toml",
        &cargo
            .replace("name = \"hello-http\"", &format!("name = \"{name}\""))
            .replace("path = \"../../sdk\"", &format!("path = \"{REPO}/sdk\"")),
    );
    std::fs::copy(example.join("Cargo.lock"), p.path().join("Cargo.lock")).unwrap();
    p.write("Skyform.toml", &format!("name = \"{name}\"\n"));
    p.write("Skyform.dev.toml", "provider = \"local\"\n");
    p.write("src/main.rs", main_rs);
    p
}

/// Invoke's stdout with the stack trace (which depends on the Python version) left out.
fn invoke_text(run: &Run) -> String {
    let shown = match serde_json::from_str::<Value>(run.stdout.trim()) {
        Ok(mut v) => {
            if let Some(t) = v.get_mut("stackTrace") {
                *t = json!("[STACK TRACE]");
            }
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap())
        }
        Err(_) => run.stdout.clone(),
    };
    format!("exit: {}\n--- stdout\n{shown}--- stderr\n{}", run.code, run.stderr)
}

#[test]
fn function_failures() {
    let p = program_project("failures", "failures", FAILING_PROGRAM);
    // Only stderr, so that the order of the lines in the log does not depend on how two
    // pipes are read.
    p.write(
        "functions/boom/app.py",
        "def handler(event, context):\n    raise ValueError(\"the handler raised\")\n",
    );
    p.write("functions/slow/app.py", "import time\n\n\ndef handler(event, context):\n    time.sleep(30)\n");
    p.write(
        "functions/crash/app.py",
        "import os\n\n\ndef handler(event, context):\n    print(\"crashing\", flush=True)\n    os._exit(7)\n",
    );
    p.write(
        "functions/broken/app.py",
        "import module_that_does_not_exist\n\n\ndef handler(event, context):\n    return \"unreachable\"\n",
    );
    p.run(&["up", "--yes"]).ok();
    let url = p.output("url");

    let mut http = String::new();
    for f in ["boom", "slow", "crash", "broken"] {
        let (status, body) = http_get(&url, &format!("/{f}"));
        http.push_str(&format!("GET /{f} -> {status} {body}\n"));
    }
    insta::assert_snapshot!("failures_http", http);

    let mut invokes = String::new();
    for f in ["boom", "slow", "crash", "broken"] {
        let run = p.run(&["invoke", f]);
        assert_eq!(run.code, 1, "a failed invocation exits 1:\n{}", run.text());
        invokes.push_str(&format!("=== skyform invoke {f}\n{}", invoke_text(&run)));
    }
    insta::assert_snapshot!("failures_invoke", invokes);

    let mut logs = String::new();
    for f in ["boom", "slow", "crash", "broken"] {
        let ids = request_ids(&settled_logs(&p, f, 2));
        assert_eq!(ids.len(), 2, "{f}: one request over HTTP, one invocation");
        logs.push_str(&format!("=== skyform logs {f}\n{}", p.run(&["logs", f]).ok().stdout));
    }
    insta::assert_snapshot!("failures_logs", logs);

    // The environments were replaced after each failure; the functions still answer.
    assert_eq!(http_get(&url, "/crash").0, 502);
    p.run(&["destroy", "--yes"]).ok();
    assert_port_closes(&url);
}

const GOOD_PROGRAM: &str = r#"use skyform_sdk::{Function, HttpApi, Runtime};

fn main() {
    skyform_sdk::run(|ctx| {
        let hello = ctx.add(
            Function::new("hello").code("functions/hello").handler("app.handler").runtime(Runtime::Python3),
        )?;
        let api = ctx.add(HttpApi::new("api").route("GET /hello/{name}", &hello))?;
        ctx.export("url", api.url());
        Ok(())
    })
}
"#;

#[test]
fn preview_rejects_bad_programs() {
    let p = program_project("bad-programs", "bad-programs", GOOD_PROGRAM);
    p.write("functions/hello/app.py", "def handler(event, context):\n    return \"hi\"\n");
    let cases: &[(&str, &str, &str)] = &[
        ("bad_route", "\"GET /hello/{name}\"", "\"GET hello/{name}\""),
        ("bad_runtime", "Runtime::Python3", "Runtime::Custom(\"python2.7\".into())"),
        ("missing_code", "\"functions/hello\"", "\"functions/helo\""),
    ];
    for (case, from, to) in cases {
        p.write("src/main.rs", &GOOD_PROGRAM.replace(from, to));
        let preview = p.run(&["preview"]);
        assert_eq!(preview.code, 1, "{case}:\n{}", preview.text());
        insta::assert_snapshot!(format!("preview_{case}"), preview.text());
    }
    // The good program previews, and nothing was recorded by the failed previews.
    p.write("src/main.rs", GOOD_PROGRAM);
    let preview = p.run(&["preview"]);
    assert!(preview.ok().stdout.contains("2 to create"), "{}", preview.text());
    assert!(!p.path().join("state/dev.json").exists());
}

/// Sends one request to the project's local cloud control API, with its token, as another tool
/// (or a person with curl) could: this is "behind skyform's back".
fn control_api(p: &Project, method: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let info: serde_json::Value =
        serde_json::from_str(&p.read(".skyform/local/daemon.json")).expect("daemon.json is JSON");
    let token = p.read(".skyform/local/token");
    let port = info["port"].as_u64().expect("daemon.json names the port");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        token.trim()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn refresh_sees_a_function_removed_behind_skyforms_back() {
    let p = Project::example("hello-http");
    p.run(&["up", "--yes"]).ok();
    // Without the token the control API refuses.
    let info: serde_json::Value = serde_json::from_str(&p.read(".skyform/local/daemon.json")).unwrap();
    let port = info["port"].as_u64().unwrap() as u16;
    let (code, _) = http_get(&format!("http://127.0.0.1:{port}"), "/v1/status");
    assert_eq!(code, 401, "the control API needs its token");
    assert_eq!(control_api(&p, "DELETE", "/v1/stacks/dev/apis/api"), 200);
    assert_eq!(control_api(&p, "DELETE", "/v1/stacks/dev/functions/hello"), 200);
    let refresh = p.run(&["refresh", "--yes"]);
    refresh.ok();
    assert!(refresh.stdout.contains("hello  deleted outside skyform"), "{}", refresh.text());
    assert!(refresh.stdout.contains("api  deleted outside skyform"), "{}", refresh.text());
    // The next up puts them back, and the API serves again.
    let up = p.run(&["up", "--yes"]);
    up.ok();
    assert!(up.stdout.contains("+  2 created"), "{}", up.text());
    let (code, body) = http_get(&p.output("url"), "/hello/ada");
    assert_eq!((code, body.as_str()), (200, "Hello, ada!"));
    p.run(&["destroy", "--yes"]).ok();
}
