//! `examples/jobs` end to end on the local cloud, through the real `skyform` binary, in a sealed
//! temporary copy: `POST /jobs` is queued by `submit` (boto3), the `worker` trigger processes it
//! and publishes to the `done` topic, the `notify` function gets the SNS event, the `audit` queue
//! holds the SNS envelope (read with the AWS CLI from the user's shell, `skyform local env`),
//! `skyform local run-schedule cleanup` runs `sweep`, and `destroy` removes everything.
//!
//! The functions import boto3, which Lambda's Python runtime bundles but a machine's `python3`
//! may not have: as the example's README says, boto3 must be importable by the `python3` the
//! local cloud starts (from `PATH`). The test puts the peers venv (`tests/peers/setup.sh`, boto3
//! and the AWS CLI) first on `PATH`, as a user with that virtualenv activated would.
//!
//! The program is built into `target/e2e-programs`, shared with `local_e2e`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tempdir::TempDir;
use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn venv() -> String {
    if let Ok(v) = std::env::var("SKYFORM_PEERS_VENV")
        && Path::new(&v).join("bin/python").exists()
    {
        return v;
    }
    let out = Command::new("bash").arg(Path::new(REPO).join("tests/peers/setup.sh")).output().unwrap();
    assert!(out.status.success(), "tests/peers/setup.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if ["target", "state", ".skyform"].iter().any(|n| name == *n) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A sealed copy of `examples/jobs` and the local cloud it starts (stopped on drop).
struct Project {
    tmp: TempDir,
    venv: String,
}

impl Project {
    fn new() -> Project {
        let venv = venv();
        let tmp = TempDir::new("e2e-jobs");
        copy_dir(&Path::new(REPO).join("examples/jobs"), tmp.path());
        let cargo = tmp.path().join("Cargo.toml");
        let text = std::fs::read_to_string(&cargo).unwrap();
        let patched = text.replace("path = \"../../sdk\"", &format!("path = \"{REPO}/sdk\""));
        assert_ne!(text, patched, "examples/jobs/Cargo.toml no longer names ../../sdk");
        std::fs::write(&cargo, patched).unwrap();
        Project { tmp, venv }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `skyform ARGS` in a clean environment: the venv's `bin` first on PATH (its python3 has
    /// boto3), then the caller's PATH and HOME (cargo, rustup), the shared target folder.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skyform"));
        cmd.args(args).current_dir(self.path()).env_clear().stdin(Stdio::null());
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

    fn output(&self, name: &str) -> String {
        self.ok(&["outputs", name]).trim().trim_matches('"').to_string()
    }

    /// Waits (up to 30 s) until `skyform logs FUNCTION` contains `text`; returns the logs.
    #[track_caller]
    fn wait_for_log(&self, function: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let logs = self.ok(&["logs", function]);
            if logs.contains(text) {
                return logs;
            }
            assert!(Instant::now() < deadline, "`skyform logs {function}` never showed {text:?}:\n{logs}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.command(&["local", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// A POST with a body over a fresh connection: (status, body).
fn http_post(base: &str, path: &str, body: &str) -> (u16, String) {
    let addr = base.strip_prefix("http://").expect("an http:// url");
    let sock: SocketAddr = addr.parse().expect("host:port");
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    (status, body.to_string())
}

#[test]
fn jobs_example_on_the_local_cloud() {
    let p = Project::new();
    let up = p.ok(&["up", "--yes"]);
    assert!(up.contains("+  13 created"), "{up}");
    let url = p.output("url");
    let audit_url = p.output("audit_queue_url");
    let topic_arn = p.output("done_topic_arn");
    assert_eq!(topic_arn, "arn:aws:sns:us-east-1:000000000000:done");

    // A bad body is refused by `submit` with what to send.
    let (status, body) = http_post(&url, "/jobs", "not json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#"send a JSON object with a \"task\" string"#), "{body}");

    // A job and a failing one.
    let (status, body) = http_post(&url, "/jobs", r#"{"task": "resize", "input": "cat.png"}"#);
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    let (status, _) = http_post(&url, "/jobs", r#"{"task": "oops", "fail": true}"#);
    assert_eq!(status, 202);

    let submitted = p.wait_for_log("submit", &format!("submit: job {id} (resize) queued"));
    assert!(submitted.contains("(oops) queued"), "{submitted}");
    let worked = p.wait_for_log("worker", &format!("worker: job {id} (resize) done"));
    let failed = p.wait_for_log("worker", "failed: the job asked to fail");
    assert!(!worked.contains("(oops) done") && !failed.contains("(oops) done"), "{failed}");
    p.wait_for_log("notify", &format!("notify: job {id} (resize) is done"));

    // The audit queue holds the SNS envelope; read it as the README says, with the AWS CLI.
    let vars: Vec<(String, String)> = p
        .ok(&["local", "env"])
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    let endpoint = vars.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL").1.clone();
    let out = Command::new(format!("{}/bin/aws", p.venv))
        .args(["sqs", "receive-message", "--queue-url", &audit_url, "--endpoint-url", &endpoint])
        .args(["--wait-time-seconds", "5", "--max-number-of-messages", "10", "--output", "json"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", p.path())
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(out.status.success(), "aws sqs receive-message: {}", String::from_utf8_lossy(&out.stderr));
    let received: Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages = received["Messages"].as_array().expect("the audit queue has a message");
    assert_eq!(messages.len(), 1, "one result (the failing job publishes nothing): {received}");
    let envelope: Value = serde_json::from_str(messages[0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], topic_arn.as_str());
    assert_eq!(envelope["MessageAttributes"]["status"]["Value"], "done");
    let result: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(result, serde_json::json!({"id": id, "task": "resize", "input": "cat.png", "status": "done"}));

    // The hourly schedule, run now.
    p.ok(&["local", "run-schedule", "cleanup"]);
    p.wait_for_log("sweep", "sweep: 0 failed job(s) in jobs-failed");
    let status = p.ok(&["local", "status"]);
    for text in ["jobs-worker", "done", "cleanup"] {
        assert!(status.contains(text), "local status does not show {text}:\n{status}");
    }

    let destroy = p.ok(&["destroy", "--yes"]);
    assert!(destroy.contains("13 deleted"), "{destroy}");
    assert!(p.ok(&["local", "status"]).contains("not running"));
}
