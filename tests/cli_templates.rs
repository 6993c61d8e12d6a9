//! The templates `skyform new` writes, each scaffolded and deployed on the local cloud through
//! the real binary, used as its README says (HTTP requests, messages sent with boto3, a
//! schedule run now, a file uploaded), and destroyed. `http-api` and `rust-api` are in
//! `local_e2e.rs`.
//!
//! Programs build into `target/e2e-programs`, shared with the other local end-to-end tests (the
//! SDK is compiled once). The queue and upload templates are driven with boto3 from the peers
//! venv (`tests/peers/setup.sh`), which is also first on the local cloud's `PATH`; the upload
//! pipeline's function finds boto3 in the runtime packages, as on Lambda (its README says so).

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

/// A project scaffolded by `skyform new TEMPLATE app` in a temp dir, and its local cloud
/// (stopped on drop, however the test ends).
struct Scaffold {
    tmp: TempDir,
    root: PathBuf,
    /// The peers venv's `bin`, first on PATH, when the template needs boto3.
    venv: Option<String>,
}

impl Scaffold {
    fn new(template: &str, venv: Option<String>) -> Scaffold {
        let tmp = TempDir::new(&format!("tpl-{template}"));
        // A name of its own: the programs build into one shared target folder, where two
        // packages of the same name would overwrite each other's binary.
        let name = format!("{template}-app");
        let root = tmp.path().join(&name);
        let s = Scaffold { tmp, root, venv };
        let new = s.run_in(s.tmp.path(), &["new", template, &name]);
        assert_eq!(new.code, 0, "{}", new.text());
        assert!(new.stdout.contains(&format!("from template `{template}`")), "{}", new.text());
        for f in ["Skyform.toml", "Skyform.dev.toml", "Cargo.toml", "src/main.rs", "README.md", ".gitignore"]
        {
            assert!(s.root.join(f).is_file(), "{template}: {f} was not written");
        }
        s
    }

    fn command_in(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skyform"));
        cmd.args(args).current_dir(cwd).env_clear().stdin(Stdio::null());
        for k in ["HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "PYENV_ROOT", "PYENV_VERSION"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        let path = std::env::var("PATH").unwrap_or_default();
        let path = match &self.venv {
            Some(v) => format!("{v}/bin:{path}"),
            None => path,
        };
        cmd.env("PATH", path).env("USER", "tester").env("LANG", "C.UTF-8");
        cmd.env("CARGO_TARGET_DIR", Path::new(REPO).join("target/e2e-programs"));
        cmd
    }

    fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        let out = self.command_in(cwd, args).output().expect("run skyform");
        let text = |b: &[u8]| common::normalize(&String::from_utf8_lossy(b), self.tmp.path());
        Run { code: out.status.code().unwrap_or(-1), stdout: text(&out.stdout), stderr: text(&out.stderr) }
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run_in(&self.root, args);
        assert_eq!(r.code, 0, "skyform {}:\n{}", args.join(" "), r.text());
        r
    }

    fn output(&self, name: &str) -> String {
        self.ok(&["outputs", name]).stdout.trim().to_string()
    }

    /// `skyform logs FUNCTION` once it contains `needle` (at most 20 s).
    #[track_caller]
    fn wait_logs(&self, function: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let logs = self.ok(&["logs", function]).stdout;
            if logs.contains(needle) {
                return logs;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` never appeared in the logs of {function}:\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs a Python script with the venv's python, in the local cloud's AWS environment
    /// (`skyform local env`, as the README's `eval` does).
    #[track_caller]
    fn python(&self, script: &str, args: &[&str]) -> String {
        let venv = self.venv.as_ref().expect("a venv");
        let env = self.ok(&["local", "env"]).stdout;
        let mut cmd = Command::new(format!("{venv}/bin/python"));
        cmd.arg("-c").arg(script).args(args).env_clear();
        for line in env.lines() {
            let (k, v) = line.strip_prefix("export ").unwrap().split_once('=').unwrap();
            cmd.env(k, v.trim_matches('\''));
        }
        let out = cmd.output().unwrap();
        if !out.status.success() {
            let daemon =
                std::fs::read_to_string(self.root.join(".skyform/local/daemon.log")).unwrap_or_default();
            let skip = daemon.chars().count().saturating_sub(4000);
            let tail: String = daemon.chars().skip(skip).collect();
            panic!(
                "python failed: {}\n--- daemon.log (end) ---\n{tail}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Scaffold {
    fn drop(&mut self) {
        if self.root.join(".skyform/local").exists() {
            let _ = self
                .command_in(&self.root, &["local", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, body).
fn http(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = base.strip_prefix("http://").expect("an http:// url");
    let sock: SocketAddr = addr.parse().expect("host:port");
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
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

fn json_body(answer: (u16, String)) -> (u16, Value) {
    let v = serde_json::from_str(&answer.1).unwrap_or_else(|e| panic!("not JSON ({e}): {}", answer.1));
    (answer.0, v)
}

#[test]
fn new_without_arguments_lists_every_template() {
    let tmp = TempDir::new("tpl-list");
    let out =
        Command::new(env!("CARGO_BIN_EXE_skyform")).arg("new").current_dir(tmp.path()).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!("new_list_all", text);
    for t in
        ["http-api", "node-api", "typescript-api", "rust-api", "queue-worker", "cron-job", "upload-pipeline"]
    {
        let lines: Vec<&str> =
            text.lines().filter(|l| l.trim_start().starts_with(&format!("{t} "))).collect();
        assert_eq!(lines.len(), 1, "one line for {t}:\n{text}");
    }
    // `--list` says the same.
    let list = Command::new(env!("CARGO_BIN_EXE_skyform")).args(["new", "--list"]).output().unwrap();
    assert_eq!(String::from_utf8(list.stdout).unwrap(), text);
}

#[test]
fn node_api_serves_and_invokes_with_data_from_a_file_and_stdin() {
    let p = Scaffold::new("node-api", None);
    let up = p.ok(&["up", "--yes"]);
    assert!(up.stdout.contains("+  2 created"), "{}", up.text());
    let url = p.output("url");
    assert_eq!(json_body(http(&url, "GET", "/hello/ada", "")), (200, json!({"message": "Hello, ada!"})));
    assert_eq!(json_body(http(&url, "GET", "/hello", "")), (200, json!({"message": "Hello, world!"})));
    assert_eq!(
        json_body(http(&url, "POST", "/echo", r#"{"a": [1, 2]}"#)),
        (200, json!({"received": {"a": [1, 2]}}))
    );
    assert_eq!(http(&url, "POST", "/echo", "not json").0, 400);
    p.wait_logs("api", "greeting ada");

    // invoke --data @FILE, from a subfolder (the project is found upward).
    let event = json!({"routeKey": "GET /hello/{name}", "pathParameters": {"name": "file"}});
    std::fs::write(p.root.join("functions/event.json"), event.to_string()).unwrap();
    let sub = p.root.join("functions");
    let from_file = p.run_in(&sub, &["invoke", "api", "--data", "@event.json"]);
    assert_eq!(from_file.code, 0, "{}", from_file.text());
    let v: Value = serde_json::from_str(&from_file.stdout).unwrap();
    assert_eq!(v["body"], json!({"message": "Hello, file!"}).to_string());

    // invoke --data - reads standard input.
    let mut child = p
        .command_in(&p.root, &["invoke", "api", "--data", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"routeKey": "GET /hello/{name}", "pathParameters": {"name": "stdin"}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["body"], json!({"message": "Hello, stdin!"}).to_string());

    // Bad --data: a missing file, a file that is not JSON; nothing is invoked.
    let missing = p.run_in(&p.root, &["invoke", "api", "--data", "@nope.json"]);
    assert_eq!(missing.code, 1, "{}", missing.text());
    assert!(missing.stderr.contains("cannot read nope.json"), "{}", missing.text());
    std::fs::write(p.root.join("bad.json"), "{not json").unwrap();
    let bad = p.run_in(&p.root, &["invoke", "api", "--data", "@bad.json"]);
    assert_eq!(bad.code, 1, "{}", bad.text());
    assert!(bad.stderr.contains("the event in bad.json is not JSON"), "{}", bad.text());

    p.ok(&["destroy", "--yes"]);
}

#[test]
fn typescript_api_deploys() {
    let p = Scaffold::new("typescript-api", None);
    let source = std::fs::read_to_string(p.root.join("functions/api/index.ts")).unwrap();
    assert!(source.contains("export const handler = async (event: HttpEvent): Promise<HttpResponse>"));
    // The handler is TypeScript: `up` bundles it with esbuild (installed on first use) and
    // serves the bundle.
    let up = p.ok(&["up", "--yes"]);
    assert!(up.stdout.contains("+  2 created"), "{}", up.text());
    let url = p.output("url");
    assert!(url.starts_with("http://127.0.0.1:"));
    assert_eq!(json_body(http(&url, "GET", "/hello/ada", "")), (200, json!({"message": "Hello, ada!"})));
    p.ok(&["destroy", "--yes"]);
}

#[test]
fn queue_worker_processes_messages_and_reports_failures() {
    let p = Scaffold::new("queue-worker", Some(common::peers_venv()));
    p.ok(&["up", "--yes"]);
    let queue = p.output("queue_url");
    let send = r#"
import sys, boto3
sqs = boto3.client("sqs")
for body in sys.argv[2:]:
    sqs.send_message(QueueUrl=sys.argv[1], MessageBody=body)
"#;
    p.python(send, &[&queue, r#"{"task": "resize"}"#, r#"{"task": "boom", "fail": true}"#]);
    let logs = p.wait_logs("worker", r#"processed job"#);
    assert!(logs.contains(r#"{"task": "resize"}"#), "{logs}");
    // The failing job is reported back (`batchItemFailures`), so only it returns to the queue
    // (it reaches jobs-failed after 3 receives, 30 s apart: not waited for here).
    p.wait_logs("worker", "failed: asked to fail");
    p.ok(&["destroy", "--yes"]);
}

#[test]
fn cron_job_runs_now_and_logs() {
    let p = Scaffold::new("cron-job", None);
    p.ok(&["up", "--yes"]);
    let status = p.ok(&["local", "status"]).stdout;
    assert!(status.contains("cron(0 3 * * ? *)"), "{status}");
    let run = p.ok(&["local", "run-schedule", "nightly"]);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["status"], "done", "{}", run.text());
    p.wait_logs("job", "nightly job ran at");
    p.ok(&["destroy", "--yes"]);
}

#[test]
fn upload_pipeline_processes_an_upload_into_the_second_bucket() {
    let p = Scaffold::new("upload-pipeline", Some(common::peers_venv()));
    p.ok(&["up", "--yes"]);
    let (uploads, processed) = (p.output("uploads_bucket"), p.output("processed_bucket"));
    // botocore's debug log (requests, retries, answers) is kept in memory and printed only if
    // the upload fails, to say what was sent and answered (a SignatureDoesNotMatch was seen
    // once on a loaded CI machine and not reproduced since).
    let script = r#"
import sys, time, json, io, logging, boto3
log = io.StringIO()
handler = logging.StreamHandler(log)
handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
logging.getLogger("botocore").addHandler(handler)
logging.getLogger("botocore").setLevel(logging.DEBUG)
s3 = boto3.client("s3")
try:
    s3.put_object(Bucket=sys.argv[1], Key="notes/hello pipeline.txt", Body=b"hello pipeline\nsecond line\n")
except Exception:
    sys.stderr.write(log.getvalue()[-20000:])
    raise
logging.getLogger("botocore").setLevel(logging.WARNING)
deadline = time.time() + 30
while True:
    try:
        print(s3.get_object(Bucket=sys.argv[2], Key="notes/hello pipeline.txt.json")["Body"].read().decode())
        break
    except s3.exceptions.NoSuchKey:
        if time.time() > deadline:
            raise
        time.sleep(0.2)
"#;
    let summary: Value = serde_json::from_str(p.python(script, &[&uploads, &processed]).trim()).unwrap();
    assert_eq!(summary["key"], "notes/hello pipeline.txt");
    assert_eq!(summary["bytes"], 27);
    assert_eq!(summary["lines"], 2);
    assert_eq!(summary["words"], 4);
    p.wait_logs("process", "processed notes/hello pipeline.txt: 27 bytes, 4 words");
    // force_destroy: the buckets go although they hold objects.
    p.ok(&["destroy", "--yes"]);
}
