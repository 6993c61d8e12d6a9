//! `--json` through the real binary: what every command prints is validated against its
//! documented schema in `docs/json/` by a real JSON Schema validator (Python's `jsonschema`,
//! draft 2020-12, from the peers venv, `tests/peers/setup.sh`), and errors are JSON objects
//! with the documented exit codes. Also: stdout holds exactly one document even when the
//! command fails after printing its result.

mod common;

use std::path::Path;
use std::process::Command;

use common::TestEnv;
use serde_json::{Value, json};

/// Collects (schema, document) pairs and validates them all in one Python process.
#[derive(Default)]
struct Validator {
    cases: Vec<(String, String, Value)>,
}

impl Validator {
    /// `text` must parse as JSON; it is validated against `docs/json/SCHEMA.schema.json`.
    #[track_caller]
    fn add(&mut self, schema: &str, what: &str, text: &str) -> Value {
        let doc: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{what}: not one JSON document ({e}):\n{text}"));
        self.cases.push((schema.to_string(), what.to_string(), doc.clone()));
        doc
    }

    #[track_caller]
    fn check(self) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json");
        let venv = common::peers_venv();
        let script = r#"
import json, sys, pathlib
try:
    import jsonschema
except ImportError:
    sys.exit("the peers venv has no jsonschema: rm -rf target/peers and run bash tests/peers/setup.sh")
root = pathlib.Path(sys.argv[1])
cases = json.load(sys.stdin)
# Every documented schema is itself a valid draft 2020-12 schema.
for path in sorted(root.glob("*.schema.json")):
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
bad = []
for schema_name, what, doc in cases:
    schema = json.loads((root / f"{schema_name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    for e in errors:
        bad.append(f"{what} vs {schema_name}.schema.json: {e.message} at {list(e.absolute_path)}")
print(len(cases))
if bad:
    sys.exit("\n".join(bad))
"#;
        let mut child = Command::new(format!("{venv}/bin/python"))
            .arg("-c")
            .arg(script)
            .arg(&root)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let input =
            serde_json::to_vec(&self.cases.iter().map(|(s, w, d)| json!([s, w, d])).collect::<Vec<_>>())
                .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "schema validation failed:\n{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), self.cases.len().to_string());
    }
}

#[test]
fn every_schema_is_documented_and_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("docs/json/README.md")).unwrap();
    let mut v = Validator::default();
    for entry in std::fs::read_dir(root.join("docs/json")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".schema.json") {
            assert!(readme.contains(&format!("({name})")), "docs/json/README.md does not list {name}");
        }
    }
    assert!(std::fs::read_to_string(root.join("README.md")).unwrap().contains("docs/json/"));
    v.add("error", "a sample error", r#"{"error": {"kind": "user", "message": "m", "hint": null}}"#);
    v.check();
    // The validator really rejects: a wrong kind fails.
    let mut wrong = Validator::default();
    wrong.add("error", "a bad error", r#"{"error": {"kind": "oops", "message": "m", "hint": null}}"#);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wrong.check()));
    assert!(caught.is_err(), "an unknown error kind passed validation");
}

#[test]
fn the_engine_commands_print_what_their_schemas_say() {
    let env = TestEnv::new("json");
    env.fake_config("");
    env.manifest_with_outputs(
        json!([
            {"name": "a", "type": "core:Data", "inputs": {"value": "hello"}},
            {"name": "b", "type": "fake:Resource", "inputs": {"v": {"$ref": "a", "output": "value"}, "n": 1}}
        ]),
        json!({"greeting": {"$ref": "a", "output": "value"}, "n": {"$ref": "b", "output": "n"}}),
    );
    let mut v = Validator::default();
    let pass = [("SKYFORM_PASSPHRASE", "correct horse")];

    let preview = env.run(&["preview", "--json"]);
    v.add("preview", "preview", &preview.ok().stdout);
    let up = v.add("up", "up", &env.run(&["up", "--yes", "--json"]).ok().stdout);
    assert_eq!(up["result"], "succeeded");
    let again = v.add("up", "up (no changes)", &env.run(&["up", "--yes", "--json"]).ok().stdout);
    assert_eq!(again["unchanged"], 2);
    let outputs = v.add("outputs", "outputs", &env.run(&["outputs", "--json"]).ok().stdout);
    assert_eq!(outputs["greeting"], "hello");
    assert_eq!(env.run(&["outputs", "n", "--json"]).ok().stdout.trim(), "1");

    env.run(&["config", "set", "region", "eu-west-1"]).ok();
    env.run_with(&["config", "set", "token", "s3cr3t", "--secret"], &pass).ok();
    let ls = v.add("config-ls", "config ls", &env.run(&["config", "ls", "--json"]).ok().stdout);
    assert_eq!(ls, json!({"region": "eu-west-1", "token": "[secret]"}));
    let get = v.add("config-get", "config get", &env.run(&["config", "get", "token", "--json"]).ok().stdout);
    assert_eq!(get, json!({"key": "token", "value": "[secret]", "secret": true}));
    let shown = env.run_with(&["config", "get", "token", "--json", "--show-secrets"], &pass);
    assert_eq!(v.add("config-get", "config get --show-secrets", &shown.ok().stdout)["value"], "s3cr3t");
    let plain = v.add(
        "config-get",
        "config get (plain)",
        &env.run(&["config", "get", "region", "--json"]).ok().stdout,
    );
    assert_eq!(plain["secret"], false);

    env.run(&["stack", "init", "prod"]).ok();
    let stacks = v.add("stack-ls", "stack ls", &env.run(&["stack", "ls", "--json"]).ok().stdout);
    assert_eq!(stacks["current"], "dev");
    assert_eq!(stacks["stacks"].as_array().unwrap().len(), 2);
    let history =
        v.add("stack-history", "stack history", &env.run(&["stack", "history", "--json"]).ok().stdout);
    assert_eq!(history.as_array().unwrap().len(), 1);

    // Drift: the fake cloud loses `b`.
    for e in std::fs::read_dir(env.store()).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let drift = v.add("refresh", "refresh", &env.run(&["refresh", "--json", "--preview-only"]).ok().stdout);
    assert_eq!(drift["drift"][0]["kind"], "deleted");
    env.run(&["refresh", "--yes"]).ok();
    let status = v.add(
        "local-status",
        "local status (not running)",
        &env.run(&["local", "status", "--json"]).ok().stdout,
    );
    assert_eq!(status, Value::Null);
    // import --json: adopt the fake resource `b` into a second stack.
    env.run_with(&["up", "--yes"], &pass).ok();
    let id = env.state()["resources"].as_array().unwrap().iter().find(|r| r["name"] == "b").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.write(
        "Skyform.prod.toml",
        &format!("provider = \"local\"\n[providers.fake]\nstore = \"{}\"\n", env.store().display()),
    );
    let imported = env.run(&["-s", "prod", "import", "fake:Resource", "adopted", &id, "--json"]);
    let imported = v.add("import", "import", &imported.ok().stdout);
    assert_eq!(imported["name"], "adopted");
    let prod: Value = serde_json::from_str(&env.read("state/prod.json")).unwrap();
    assert_eq!(prod["resources"][0]["id"], id.as_str());
    assert_eq!(imported["stack"], "prod");

    let destroy = v.add("destroy", "destroy", &env.run(&["destroy", "--yes", "--json"]).ok().stdout);
    assert_eq!(destroy["done"]["delete"], 2);
    // Nothing left to delete: still one document.
    let nothing =
        v.add("destroy", "destroy (nothing)", &env.run(&["destroy", "--yes", "--json"]).ok().stdout);
    assert_eq!(nothing["done"], json!({}));
    v.check();
}

#[test]
fn errors_are_json_objects_with_the_documented_exit_codes() {
    let env = TestEnv::new("json-errors");
    env.fake_config("");
    env.manifest(json!([{"name": "b", "type": "fake:Resource", "inputs": {"n": 1}}]));
    let mut v = Validator::default();

    // Usage (2): a command line that does not parse.
    let usage = env.run(&["outputs", "--json", "--frobnicate"]);
    assert_eq!(usage.code, 2, "{}", usage.text());
    assert_eq!(v.add("error", "usage", &usage.stdout)["error"]["kind"], "usage");

    // User (1): outside a project; the text says what to do.
    let outside = common::tempdir::TempDir::new("json-outside");
    let out = env.command(&["outputs", "--json"]).current_dir(outside.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = v.add("error", "no project", &String::from_utf8_lossy(&out.stdout));
    assert_eq!(err["error"]["kind"], "user");
    assert!(err["error"]["hint"].as_str().unwrap().contains("skyform new"), "{err}");

    // User (1): up --json needs --yes.
    let no_yes = env.run(&["up", "--json"]);
    assert_eq!(no_yes.code, 1);
    v.add("error", "up --json without --yes", &no_yes.stdout);

    // Stale plan (6).
    env.run(&["preview", "--save-plan", "plan.json"]).ok();
    env.run(&["up", "--yes"]).ok();
    env.manifest(json!([{"name": "b", "type": "fake:Resource", "inputs": {"n": 2}}]));
    env.run(&["up", "--yes"]).ok();
    let stale = env.run(&["up", "--yes", "--json", "--plan", "plan.json"]);
    assert_eq!(stale.code, 6, "{}", stale.text());
    assert_eq!(v.add("error", "stale plan", &stale.stdout)["error"]["kind"], "stale_plan");

    // Locked (4): another up holds the stack.
    env.fake_config("latency_ms = 1500");
    env.manifest(json!([{"name": "b", "type": "fake:Resource", "inputs": {"n": 3}}]));
    let mut first = env.command(&["up", "--yes"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let lock = env.path().join("state/dev.lock");
    for _ in 0..200 {
        if std::fs::read(&lock).map(|b| !b.is_empty()).unwrap_or(false) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let locked = env.run(&["up", "--yes", "--json"]);
    assert!(first.wait().unwrap().success());
    assert_eq!(locked.code, 4, "{}", locked.text());
    assert_eq!(v.add("error", "locked", &locked.stdout)["error"]["kind"], "locked");

    // Steps failed (3): the result on stdout (one document), the error on stderr.
    env.fake_config("fail_create = [\"bad\"]");
    env.manifest(json!([
        {"name": "b", "type": "fake:Resource", "inputs": {"n": 3}},
        {"name": "bad", "type": "fake:Resource", "inputs": {}}
    ]));
    let failed = env.run(&["up", "--yes", "--json"]);
    assert_eq!(failed.code, 3, "{}", failed.text());
    let result = v.add("up", "up with a failed step", &failed.stdout);
    assert_eq!(result["result"], "failed");
    assert_eq!(result["failed"][0]["name"], "bad");
    let err = v.add("error", "steps failed (stderr)", &failed.stderr);
    assert_eq!(err["error"]["kind"], "steps_failed");

    // `synth` and `stack export` print JSON always, and take `--json` too: then an error is JSON.
    let synth: Value = serde_json::from_str(&env.run(&["synth", "--json"]).ok().stdout).unwrap();
    assert_eq!(synth["manifest"], 1);
    let state: Value = serde_json::from_str(&env.run(&["stack", "export", "--json"]).ok().stdout).unwrap();
    assert_eq!(state["format"], 2);
    for args in [&["synth", "--json"][..], &["stack", "export", "--json"]] {
        let failed = env.run(&[&["-s", "nope"], args].concat());
        assert_eq!(failed.code, 1, "{}", failed.text());
        assert_eq!(
            v.add("error", &format!("{args:?}, no such stack"), &failed.stdout)["error"]["kind"],
            "user"
        );
    }
    v.check();
}

/// The local cloud's commands: status, invoke (also a failing function), run-schedule, logs; and the preview
/// of a route change keeps the API's unchanged url known.
#[test]
fn the_local_cloud_commands_print_what_their_schemas_say() {
    let env = TestEnv::new("json-local");
    let _stop = common::StopDaemon(&env);
    env.write(
        "functions/hello/app.py",
        "def handler(event, context):\n    print('hello from the function')\n    if event.get('fail'):\n        raise ValueError('asked to fail')\n    return {'statusCode': 200, 'body': 'hi'}\n",
    );
    let program = |routes: Value| {
        json!([
            {"name": "hello", "type": "local:Function", "inputs": {
                "code": "functions/hello", "handler": "app.handler", "runtime": "python3", "timeout": 5}},
            {"name": "api", "type": "local:HttpApi", "inputs": {"routes": routes}},
            {"name": "nightly", "type": "local:Schedule", "inputs": {
                "schedule": "cron(0 3 * * ? *)", "function": {"$ref": "hello", "output": "function_name"}}}
        ])
    };
    let route = |key: &str| json!({"route": key, "function": {"$ref": "hello", "output": "function_name"}});
    env.manifest_with_outputs(
        program(json!([route("GET /hello")])),
        json!({"url": {"$ref": "api", "output": "url"}}),
    );
    let mut v = Validator::default();
    env.run(&["up", "--yes"]).ok();
    let url = env.run(&["outputs", "url"]).ok().stdout.trim().to_string();

    let status = v.add("local-status", "local status", &env.run(&["local", "status", "--json"]).ok().stdout);
    let vars = v.add("local-env", "local env", &env.run(&["local", "env", "--json"]).ok().stdout);
    assert_eq!(vars["AWS_ENDPOINT_URL"], status["endpoint"]);
    assert_eq!(status["functions"][0]["name"], "hello");
    let invoked = v.add("invoke", "invoke", &env.run(&["invoke", "hello", "--json"]).ok().stdout);
    assert_eq!(invoked["payload"]["body"], "hi");
    assert_eq!(invoked["function_error"], Value::Null);
    let failing = env.run(&["invoke", "hello", "--json", "--data", r#"{"fail": true}"#]);
    assert_eq!(failing.code, 1, "{}", failing.text());
    let doc = v.add("invoke", "invoke (failing)", &failing.stdout);
    assert_eq!(doc["function_error"], "Unhandled");
    assert_eq!(v.add("error", "invoke (failing, stderr)", &failing.stderr)["error"]["kind"], "user");
    let ran = env.run(&["local", "run-schedule", "nightly", "--json"]);
    let ran = v.add("run-schedule", "local run-schedule", &ran.ok().stdout);
    assert_eq!((&ran["schedule"], &ran["payload"]["body"]), (&json!("nightly"), &json!("hi")), "{ran}");
    let missing = env.run(&["local", "run-schedule", "nope", "--json"]);
    assert_eq!(missing.code, 1, "{}", missing.text());
    assert_eq!(v.add("error", "run-schedule (no such schedule)", &missing.stdout)["error"]["kind"], "user");

    let logs = env.run(&["logs", "hello", "--json"]).ok().stdout.clone();
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.len() >= 3, "{logs}");
    for (i, line) in lines.iter().enumerate() {
        v.add("logs", &format!("logs line {i}"), line);
    }
    assert!(logs.contains("hello from the function"), "{logs}");

    // A route change updates the API in place: its url is stable, so the preview shows it.
    env.manifest_with_outputs(
        program(json!([route("GET /hello"), route("GET /hello/{name}")])),
        json!({"url": {"$ref": "api", "output": "url"}}),
    );
    let preview = env.run(&["preview"]);
    assert!(preview.ok().stdout.contains(&format!("url: \"{url}\"")), "{}", preview.text());
    assert!(!preview.stdout.contains("known after up"), "{}", preview.text());
    v.add("preview", "preview (route change)", &env.run(&["preview", "--json"]).ok().stdout);
    v.check();
}
