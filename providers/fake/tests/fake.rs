//! The fake provider as the engine sees it: a real process spoken to over stdin/stdout.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use skyform_protocol::{PROTOCOL_VERSION, Response};

const SCRIPT_KEYS: [&str; 9] = [
    "LATENCY_MS",
    "READ_LATENCY_MS",
    "STORE",
    "FAIL_CREATE",
    "FAIL_UPDATE",
    "FAIL_DELETE",
    "CRASH_ON",
    "HANG_ON",
    "GARBAGE_ON",
];

struct Fake {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Fake {
    /// Spawns the fake with a clean script environment plus `env`, and does the handshake.
    fn spawn(env: &[(&str, &str)]) -> Fake {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skyform-provider-fake"));
        for key in SCRIPT_KEYS {
            cmd.env_remove(format!("SKYFORM_FAKE_{key}"));
        }
        cmd.envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn skyform-provider-fake");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut fake = Fake { child, stdin, stdout, next_id: 0 };
        let hs =
            fake.ok("handshake", json!({"protocol_versions": [PROTOCOL_VERSION], "engine_version": "test"}));
        assert_eq!(hs["name"], json!("fake"));
        assert_eq!(hs["resources"]["fake:Resource"]["replace_on_changes"], json!(["force_new"]));
        fake
    }

    /// Spawns and configures with `config`.
    fn configured(config: Value) -> Fake {
        let mut fake = Fake::spawn(&[]);
        fake.ok("configure", configure_params(config));
        fake
    }

    fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let line = json!({"id": self.next_id, "method": method, "params": params}).to_string();
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        self.next_id
    }

    /// The next line on stdout, `None` at end of file.
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        (self.stdout.read_line(&mut line).unwrap() > 0).then_some(line)
    }

    fn recv(&mut self) -> Response {
        let line = self.line().expect("the fake closed stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a response: {line:?}: {e}"))
    }

    fn call(&mut self, method: &str, params: Value) -> Response {
        let id = self.send(method, params);
        let r = self.recv();
        assert_eq!(r.id, id);
        r
    }

    fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params);
        r.result.unwrap_or_else(|| panic!("{method} failed: {:?}", r.error))
    }

    /// The error code and message of a call that must fail.
    fn err(&mut self, method: &str, params: Value) -> (String, String) {
        let r = self.call(method, params);
        let e = r.error.unwrap_or_else(|| panic!("{method} should fail, answered {:?}", r.result));
        (serde_json::to_value(e.code).unwrap().as_str().unwrap().to_string(), e.message)
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        s
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn configure_params(config: Value) -> Value {
    json!({"project": "p", "stack": "dev", "project_dir": "/", "config": config, "dry_run": false})
}

fn create(name: &str, inputs: Value) -> Value {
    json!({"type": "fake:Resource", "name": name, "inputs": inputs})
}

fn read(name: &str, id: Option<&str>) -> Value {
    json!({"type": "fake:Resource", "name": name, "id": id, "inputs": null, "outputs": null})
}

fn update(name: &str, id: &str, olds: &Value, news: Value) -> Value {
    json!({"type": "fake:Resource", "name": name, "id": id, "olds": olds, "news": news, "old_outputs": {}})
}

fn delete(name: &str, id: &str) -> Value {
    json!({"type": "fake:Resource", "name": name, "id": id, "inputs": {}, "outputs": {}})
}

/// A fresh folder under the system temp folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("skyform-fake-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
    fn file(&self, id: &str) -> PathBuf {
        self.0.join(format!("{id}.json"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn lifecycle_in_a_store() {
    let store = TempDir::new("life");
    let mut fake = Fake::configured(json!({"store": store.str()}));

    let checked = fake.ok("check", json!({"type": "fake:Resource", "name": "web", "inputs": {"size": 1}}));
    assert_eq!(checked, json!({"inputs": {"size": 1}}));
    let bad = fake.ok("check", json!({"type": "fake:Resource", "name": "web", "inputs": {"bad": true}}));
    assert_eq!(bad["failures"][0]["property"], json!("bad"));

    let created = fake.ok("create", create("web server", json!({"size": 1})));
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("web-server-") && id.len() == "web-server-".len() + 8, "{id}");
    assert_eq!(created["outputs"], json!({"size": 1, "id": id}));
    let file = load(&store.file(&id));
    assert_eq!(file["type"], json!("fake:Resource"));
    assert_eq!(file["name"], json!("web server"));
    assert_eq!(file["inputs"], json!({"size": 1}));
    assert!(file["created_seq"].as_u64().unwrap() > 0);
    // Only the record: no temporary file is left behind.
    assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 1);

    let r = fake.ok("read", read("web server", Some(&id)));
    assert_eq!(r["resource"], json!({"id": id, "inputs": {"size": 1}, "outputs": {"size": 1, "id": id}}));

    // Drift: a test edits the "cloud" behind skyform's back.
    let mut drifted = file.clone();
    drifted["inputs"]["size"] = json!(9);
    std::fs::write(store.file(&id), drifted.to_string()).unwrap();
    let r = fake.ok("read", read("web server", Some(&id)));
    assert_eq!(r["resource"]["inputs"], json!({"size": 9}));

    let diff = fake.ok(
        "diff",
        json!({"type": "fake:Resource", "name": "web server", "id": id, "olds": {"size": 1, "force_new": 1},
               "news": {"size": 2, "force_new": 2}, "old_outputs": {}}),
    );
    assert_eq!(
        diff,
        json!({"changed": ["force_new", "size"], "replaces": ["force_new"], "delete_before_replace": false})
    );

    let updated = fake.ok("update", update("web server", &id, &json!({"size": 1}), json!({"size": 2})));
    assert_eq!(updated["outputs"], json!({"size": 2, "id": id}));
    let after = load(&store.file(&id));
    assert_eq!(after["inputs"], json!({"size": 2}));
    assert_eq!(after["created_seq"], file["created_seq"]);

    fake.ok("delete", delete("web server", &id));
    assert!(!store.file(&id).exists());
    let r = fake.ok("read", read("web server", Some(&id)));
    assert_eq!(r["resource"], Value::Null);
    let (code, message) = fake.err("delete", delete("web server", &id));
    assert_eq!(code, "not_found", "{message}");
    let (code, _) = fake.err("update", update("web server", &id, &json!({}), json!({})));
    assert_eq!(code, "not_found");
}

#[test]
fn read_without_id_finds_the_newest_resource_with_the_name() {
    let store = TempDir::new("byname");
    let mut fake = Fake::configured(json!({"store": store.str()}));
    let first = fake.ok("create", create("db", json!({"n": 1})));
    let second = fake.ok("create", create("db", json!({"n": 2})));
    fake.ok("create", create("other", json!({"n": 3})));
    let r = fake.ok("read", read("db", None));
    assert_eq!(r["resource"]["id"], second["id"]);
    assert_eq!(r["resource"]["inputs"], json!({"n": 2}));
    assert_eq!(fake.ok("read", read("nothing", None)), json!({"resource": null}));

    // Deleting the newest makes the older one the answer.
    fake.ok("delete", delete("db", second["id"].as_str().unwrap()));
    assert_eq!(fake.ok("read", read("db", None))["resource"]["id"], first["id"]);

    // A new process (the engine after a crash) finds it in the store.
    drop(fake);
    let mut fake = Fake::configured(json!({"store": store.str()}));
    assert_eq!(fake.ok("read", read("db", None))["resource"]["id"], first["id"]);
}

#[test]
fn memory_mode_keeps_resources_for_the_life_of_the_process() {
    let mut fake = Fake::configured(json!({}));
    let created = fake.ok("create", create("a", json!({"x": 1})));
    let id = created["id"].as_str().unwrap();
    assert_eq!(fake.ok("read", read("a", Some(id)))["resource"]["inputs"], json!({"x": 1}));
    assert_eq!(fake.ok("read", read("a", None))["resource"]["id"], json!(id));
    fake.ok("update", update("a", id, &json!({"x": 1}), json!({"x": 2})));
    assert_eq!(fake.ok("read", read("a", Some(id)))["resource"]["inputs"], json!({"x": 2}));
    fake.ok("delete", delete("a", id));
    assert_eq!(fake.ok("read", read("a", None)), json!({"resource": null}));
    // A resource recorded in state but unknown to this process exists as recorded.
    let r = fake.ok(
        "read",
        json!({"type": "fake:Resource", "name": "b", "id": "b-1", "inputs": {"y": 1}, "outputs": {"y": 1, "id": "b-1"}}),
    );
    assert_eq!(r["resource"]["inputs"], json!({"y": 1}));
}

#[test]
fn injected_failures_change_nothing() {
    let store = TempDir::new("fail");
    let mut fake = Fake::configured(json!({
        "store": store.str(), "fail_create": ["f"], "fail_update": ["g"], "fail_delete": ["g"]
    }));
    let (code, message) = fake.err("create", create("f", json!({})));
    assert_eq!((code.as_str(), message.as_str()), ("failed", "fake: injected failure creating f"));
    assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 0);

    let g = fake.ok("create", create("g", json!({"v": 1})));
    let id = g["id"].as_str().unwrap();
    let (_, message) = fake.err("update", update("g", id, &json!({"v": 1}), json!({"v": 2})));
    assert_eq!(message, "fake: injected failure updating g");
    assert_eq!(load(&store.file(id))["inputs"], json!({"v": 1}));
    let (_, message) = fake.err("delete", delete("g", id));
    assert_eq!(message, "fake: injected failure deleting g");
    assert!(store.file(id).exists());
}

#[test]
fn crash_on_exits_with_code_3() {
    // Scripted through the environment, as a benchmark would.
    let mut fake = Fake::spawn(&[("SKYFORM_FAKE_CRASH_ON", "boom,other")]);
    fake.ok("create", create("fine", json!({})));
    fake.send("create", create("boom", json!({})));
    assert_eq!(fake.line(), None, "a crash answers nothing");
    let status = fake.child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(fake.stderr().contains("crashing on creating boom"));
}

#[test]
fn garbage_on_prints_a_line_that_is_not_json() {
    let mut fake = Fake::configured(json!({"garbage_on": "junk"}));
    fake.send("update", update("junk", "junk-1", &json!({}), json!({})));
    assert_eq!(fake.line().as_deref(), Some("this is not json\n"));
    // The provider goes on answering other requests.
    let r = fake.call("check", json!({"type": "fake:Resource", "name": "x", "inputs": {}}));
    assert!(r.result.is_some());
}

#[test]
fn hang_on_never_answers_but_other_requests_go_on() {
    let mut fake = Fake::configured(json!({"hang_on": ["stuck"], "latency_ms": 50}));
    let hung = fake.send("delete", delete("stuck", "stuck-1"));
    let slow = fake.send("create", create("slow", json!({})));
    let quick = fake.send("check", json!({"type": "fake:Resource", "name": "q", "inputs": {}}));
    // check never sleeps, so it overtakes the create held up by latency_ms.
    assert_eq!(fake.recv().id, quick);
    assert_eq!(fake.recv().id, slow);
    // Closing stdin does not end a provider with a request in flight that never finishes; the
    // engine has to kill it (Drop does).
    drop(fake.stdin.take());
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(fake.child.try_wait().unwrap().is_none(), "request {hung} should still hang");
}

#[test]
fn configure_refuses_unknown_settings() {
    let mut fake = Fake::spawn(&[]);
    let (code, message) = fake.err("configure", configure_params(json!({"latncy_ms": 5})));
    assert_eq!(code, "configuration");
    assert!(message.contains("`latncy_ms`") && message.contains("latency_ms"), "{message}");
}

#[test]
fn unknown_types_are_unsupported() {
    let mut fake = Fake::configured(json!({}));
    let (code, _) = fake.err("create", json!({"type": "fake:Nope", "name": "n", "inputs": {}}));
    assert_eq!(code, "unsupported");
}
