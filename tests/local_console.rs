//! The local console in a real headless Chromium: `examples/jobs` (plus a bucket and a table) deployed on
//! the local cloud through the real `skyform` binary, `skyform local console` prints a login
//! link, and `tests/peers/console.mjs` drives the page over the DevTools protocol
//! (playwright-core with Debian's `chromium`, both set up by `tests/peers/console-setup.sh`):
//! log in, see the resources, invoke a function and see its log appear live, send a message to
//! a queue and see the depth change, upload an object, send a request through the route form
//! and follow its trace across the queue to the worker. Screenshots go to
//! `target/console-test/`. Around it, the refusals: no session → 401, a used or made-up login
//! link → 403, a changing request without the CSRF header → 403, another Host → 403.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tempdir::TempDir;
use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

struct Project {
    tmp: TempDir,
    venv: String,
}

impl Project {
    /// A sealed copy of `examples/jobs` with an `uploads` bucket and a `notes` table added.
    fn new() -> Project {
        let venv = common::peers_venv();
        let tmp = TempDir::new("console");
        common::copy::copy_project(&Path::new(REPO).join("examples/jobs"), tmp.path());
        let cargo = tmp.path().join("Cargo.toml");
        let text = std::fs::read_to_string(&cargo).unwrap();
        std::fs::write(&cargo, text.replace("path = \"../../sdk\"", &format!("path = \"{REPO}/sdk\"")))
            .unwrap();
        let main = tmp.path().join("src/main.rs");
        let text = std::fs::read_to_string(&main).unwrap();
        let patched = text.replace(
            "        ctx.export(\"url\", api.url());",
            "        ctx.add(skyform_sdk::Bucket::new(\"uploads\"))?;\n        \
             ctx.add(skyform_sdk::Table::new(\"notes\").hash_key(\"id\", skyform_sdk::KeyType::String))?;\n        \
             ctx.export(\"url\", api.url());",
        );
        assert_ne!(text, patched, "examples/jobs/src/main.rs no longer exports `url` as the test expects");
        std::fs::write(&main, patched).unwrap();
        Project { tmp, venv }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skyform"));
        cmd.args(args).current_dir(self.tmp.path()).env_clear().stdin(Stdio::null());
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        cmd.env("PATH", format!("{}/bin:{path}", self.venv));
        for k in ["HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.env("USER", "tester")
            .env("LANG", "C.UTF-8")
            .env("CARGO_TARGET_DIR", PathBuf::from(REPO).join("target/e2e-programs"));
        cmd
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "skyform {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn login_link(&self) -> String {
        let out = self.ok(&["local", "console"]);
        out.split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:") && w.contains("/console/login?code="))
            .unwrap_or_else(|| panic!("`skyform local console` printed no login link:\n{out}"))
            .to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.command(&["local", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// One HTTP/1.1 request: (status, head, body).
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let rest = url.strip_prefix("http://").expect("an http:// url");
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(s, "{req}\r\n{body}").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn setup_browser() -> (String, String) {
    let out =
        Command::new("bash").arg(Path::new(REPO).join("tests/peers/console-setup.sh")).output().unwrap();
    assert!(
        out.status.success(),
        "tests/peers/console-setup.sh failed (the console test needs Chromium and playwright-core): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    (lines.next().unwrap().to_string(), lines.next().unwrap().to_string())
}

#[test]
fn the_console_in_a_real_browser() {
    let (chromium, modules) = setup_browser();
    let p = Project::new();
    p.ok(&["up", "--yes"]);

    // Refusals, before and around a login.
    let link = p.login_link();
    let base = link.split("/console/").next().unwrap().to_string();
    let (status, _, body) = http("GET", &format!("{base}/console/"), &[], "");
    assert_eq!(status, 401, "the console without a session: {body}");
    let (status, _, _) = http("GET", &format!("{base}/v1/status"), &[], "");
    assert_eq!(status, 401, "the control API without a token");
    let (status, _, _) =
        http("GET", &format!("{base}/console/login?code=0123456789abcdef0123456789abcdef"), &[], "");
    assert_eq!(status, 403, "a made-up login code");

    // A link logs in once: the cookie it sets opens the control API to GETs, and to changes only
    // with the CSRF header, and only on 127.0.0.1/localhost.
    let (status, head, _) = http("GET", &link, &[], "");
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie set: {head}"));
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/console;"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let (status, _, body) = http("GET", &link, &[], "");
    assert_eq!(status, 403, "a used login link: {body}");
    assert!(body.contains("skyform local console"), "{body}");
    let (status, _, body) = http("GET", &format!("{base}/console/v1/status"), &[("Cookie", &session)], "");
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = http("GET", &format!("{base}/v1/status"), &[("Cookie", &session)], "");
    assert_eq!(status, 401, "the cookie opens the control API only under /console/v1/");
    let invoke = format!("{base}/console/v1/stacks/dev/functions/sweep/invoke");
    let (status, _, _) = http("POST", &invoke, &[("Cookie", &session)], "{}");
    assert_eq!(status, 401, "a change without the CSRF header");
    let evil = format!("evil.example:{}", base.rsplit(':').next().unwrap());
    let (status, _, _) =
        http("GET", &format!("{base}/console/api/stacks"), &[("Cookie", &session), ("Host", &evil)], "");
    assert_eq!(status, 403, "another Host (DNS rebinding)");
    let (status, _, body) = http("GET", &format!("{base}/console/api/stacks"), &[("Cookie", &session)], "");
    assert_eq!(status, 200, "{body}");
    let stacks: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stacks[0]["stack"], "dev", "{stacks}");

    // The browser, with a fresh link.
    let out_dir = PathBuf::from(REPO).join("target/console-test");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new("node")
        .arg(Path::new(REPO).join("tests/peers/console.mjs"))
        .env("LINK", p.login_link())
        .env("CHROMIUM", &chromium)
        .env("PW_MODULES", &modules)
        .env("OUT", &out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the browser test failed (screenshot in {}):\n{}{}",
        out_dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("the browser test printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    });
    assert_eq!(seen["cookie_http_only"], true, "{seen}");
    let resources: Vec<&str> =
        seen["resources"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for r in ["submit", "worker", "jobs", "api", "uploads", "done"] {
        assert!(resources.contains(&r), "the stack view lacks {r}: {resources:?}");
    }
    assert!(seen["live_log"].as_str().unwrap().contains("sweep: 0 failed job(s) in jobs-failed"), "{seen}");
    let row = seen["invocation_row"].as_str().unwrap();
    assert!(row.contains("invoke") && row.contains("ok"), "{seen}");
    assert!(row.ends_with("warm") || row.ends_with("cold"), "{seen}");
    let depth = seen["depth"].as_array().unwrap();
    assert_eq!(depth[1].as_u64().unwrap(), depth[0].as_u64().unwrap() + 1, "{seen}");
    let steps: Vec<&str> = seen["trace_steps"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let order = [
        "http POST /jobs",
        "λ submit ← http POST /jobs",
        "SQS SendMessage jobs",
        "λ worker ← sqs jobs",
        "SNS Publish done",
    ];
    let mut at = 0;
    for want in order {
        at += steps[at..]
            .iter()
            .position(|s| *s == want)
            .unwrap_or_else(|| panic!("the trace lacks {want:?} in order: {steps:?}"))
            + 1;
    }
    assert!(steps.contains(&"λ notify ← SNS Publish done"), "{steps:?}");
    assert_eq!(seen["schedule_row"].as_str().unwrap().split('\t').next(), Some("cleanup"), "{seen}");
    assert!(seen["table_row"].as_str().unwrap().contains(r#""text":{"S":"from the console"}"#), "{seen}");
    for shot in ["01-stack", "02-function", "03-queue", "04-bucket", "05-trace", "06-table", "07-schedules"] {
        assert!(out_dir.join(format!("{shot}.png")).exists(), "no screenshot {shot}");
    }

    // What the browser did is really there.
    let status: Value = serde_json::from_str(&p.ok(&["local", "status", "--json"])).unwrap();
    let failed = status["queues"].as_array().unwrap().iter().find(|q| q["name"] == "jobs-failed").unwrap();
    assert_eq!(failed["visible"], 1, "{failed}");
    let s3 = format!("{base}/console/api/buckets/uploads/object?key=hello.txt");
    let (status, _, body) = http("GET", &s3, &[("Cookie", &session)], "");
    assert_eq!((status, body.as_str()), (200, "hello, bucket\n"));
}

const PY_WRITER: &str = r#"
import boto3

db = boto3.client("dynamodb")
s3 = boto3.client("s3")

def handler(event, context):
    db.put_item(TableName="notes", Item={"id": {"S": "n1"}, "text": {"S": "hello"}})
    s3.put_object(Bucket="photos", Key="in/cat.jpg", Body=b"meow")
    print("writer: wrote the item and the object; cookies " + ",".join(event.get("cookies") or []))
    return {"statusCode": 200, "body": "ok"}
"#;

const PY_ON_CHANGE: &str = r#"
def handler(event, context):
    for r in event["Records"]:
        print("on-change: " + r["eventName"] + " " + r["dynamodb"]["Keys"]["id"]["S"])
    return {}
"#;

const PY_ON_UPLOAD: &str = r#"
def handler(event, context):
    for r in event["Records"]:
        print("on-upload: " + r["s3"]["object"]["key"])
    return {}
"#;

/// A caller's trace goes on through a function's DynamoDB and S3 calls to the table's change
/// trigger and the bucket's notification: one trace, read from the console's API.
#[test]
fn a_trace_through_a_table_change_and_a_bucket_notification() {
    let venv = common::peers_venv();
    let env = common::TestEnv::new("console-trace");
    let _stop = common::StopDaemon(&env);
    env.write("functions/writer/app.py", PY_WRITER);
    env.write("functions/on_change/app.py", PY_ON_CHANGE);
    env.write("functions/on_upload/app.py", PY_ON_UPLOAD);
    let f = |name: &str, dir: &str| {
        serde_json::json!({"name": name, "type": "local:Function", "inputs": {
            "code": format!("functions/{dir}"), "handler": "app.handler", "runtime": "python3"}})
    };
    let fname = |name: &str| serde_json::json!({"$ref": name, "output": "function_name"});
    env.manifest_with_outputs(
        serde_json::json!([
            f("writer", "writer"),
            f("on-change", "on_change"),
            f("on-upload", "on_upload"),
            {"name": "notes", "type": "local:Table", "inputs": {"hash_key": {"name": "id", "type": "S"}, "range_key": null}},
            {"name": "notes-on-change", "type": "local:TableSubscription", "inputs": {
                "table": {"$ref": "notes", "output": "arn"}, "function": fname("on-change"), "batch_size": 10}},
            {"name": "photos", "type": "local:Bucket", "inputs": {"versioning": false, "force_destroy": true}},
            {"name": "photos-on-upload", "type": "local:BucketNotification", "inputs": {
                "bucket": {"$ref": "photos", "output": "bucket_name"}, "function": fname("on-upload"),
                "events": ["s3:ObjectCreated:*"], "prefix": null, "suffix": null}},
            {"name": "api", "type": "local:HttpApi", "inputs": {"routes": [{"route": "POST /write", "function": fname("writer")}]}}
        ]),
        serde_json::json!({"url": {"$ref": "api", "output": "url"}}),
    );
    // The functions import boto3: the venv's python3 first on PATH, as for a user with it active.
    let path = format!("{venv}/bin:{}:/usr/local/bin:/usr/bin:/bin", common::bin_dir().display());
    let run = |args: &[&str]| {
        let out = env.command(args).env("PATH", &path).output().unwrap();
        assert!(out.status.success(), "skyform {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["up", "--yes"]);
    let url = run(&["outputs", "url"]).trim().trim_matches('"').to_string();

    // The caller's own trace id is kept.
    let root = "1-5759e988-bd862e3fe1be46a994272793";
    let header = format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1");
    // A browser logged in to the console sends its cookie to every port of 127.0.0.1 (cookies
    // are per host) if the path matches: the gateway keeps it from the function.
    let cookies = "a=1; skyform_console=0123456789abcdef; b=2";
    let (status, _, body) =
        http("POST", &format!("{url}/write"), &[("X-Amzn-Trace-Id", &header), ("Cookie", cookies)], "{}");
    assert_eq!(status, 200, "{body}");

    let link = run(&["local", "console"]);
    let link = link.split_whitespace().find(|w| w.contains("/console/login?code=")).unwrap().to_string();
    let base = link.split("/console/").next().unwrap().to_string();
    let (_, head, _) = http("GET", &link, &[], "");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let trace = loop {
        let (status, _, body) =
            http("GET", &format!("{base}/console/api/traces/{root}"), &[("Cookie", &session)], "");
        assert_eq!(status, 200, "{body}");
        let t: Value = serde_json::from_str(&body).unwrap();
        let names: Vec<String> = t["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{} {} {}",
                    s["kind"].as_str().unwrap(),
                    s["name"].as_str().unwrap(),
                    s["trigger"].as_str().unwrap()
                )
            })
            .collect();
        let logs = t.to_string();
        if logs.contains("on-change: INSERT n1") && logs.contains("on-upload: in/cat.jpg") {
            assert!(logs.contains("object; cookies a=1,b=2"), "the function got the console's cookie: {t:#}");
            break names;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the trace never reached both triggers: {names:#?}\n{t:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Bad input to the console's API: a clear refusal, nothing changed.
    let csrf = [("Cookie", session.as_str()), ("x-skyform-console", "1")];
    let api = |m: &str, p: &str, body: &str| http(m, &format!("{base}/console/api/{p}"), &csrf, body);
    let port = base.rsplit(':').next().unwrap();
    let (status, _, body) =
        api("POST", "request", &format!(r#"{{"port": {port}, "method": "GET", "path": "/v1/status"}}"#));
    assert_eq!(status, 400, "the control port is not an API: {body}");
    assert!(body.contains("not one of the project's APIs"), "{body}");
    let (status, _, body) = api("PUT", "tables/notes/item", "not json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not JSON"), "{body}");
    let (status, _, body) = api("PUT", "tables/notes/item", r#"{"text": {"S": "no key"}}"#);
    assert_eq!(status, 400, "an item without its key: {body}");
    let (status, _, body) = api("PUT", "tables/nope/item", r#"{"id": {"S": "x"}}"#);
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = api("POST", "queues/nope/send", r#"{"body": "x"}"#);
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = api("GET", "buckets/nope", "");
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = api("PUT", "buckets/photos/object", "x");
    assert_eq!(status, 400, "an object without a key: {body}");
    let (status, _, body) = api("GET", "tables/notes", "");
    assert_eq!(status, 200, "{body}");
    let items: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(items["count"], 1, "only the writer's item: {items}");

    for want in [
        "http http POST /write http POST /write",
        "invoke writer http POST /write http POST /write",
        "aws DynamoDB PutItem notes DynamoDB PutItem notes",
        "invoke on-change table notes table notes",
        "invoke on-upload s3 event s3 event",
    ] {
        assert!(trace.iter().any(|n| n == want), "the trace lacks {want:?}: {trace:#?}");
    }
}
