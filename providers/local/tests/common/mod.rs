//! Test environment: a temp project per test, the provider as a real child process driven
//! over its NDJSON protocol (it starts the real daemon), and a plain HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const EXE: &str = env!("CARGO_BIN_EXE_skyform-local-dev");

/// A temp project folder; dropping it stops its daemon and removes the folder.
pub struct Project {
    pub dir: PathBuf,
}

impl Project {
    pub fn new(name: &str) -> Project {
        require("python3", "install Python 3 (Debian: apt-get install python3)");
        let dir = std::env::temp_dir().join(format!("skyform-local-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Project { dir: dir.canonicalize().unwrap() }
    }

    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn daemon_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.join(".skyform/local/daemon.json")).ok()?;
        serde_json::from_str::<Value>(&text).ok()?["pid"].as_u64().map(|p| p as u32)
    }

    pub fn log_records(&self, stack: &str, function: &str) -> Vec<skyform_local::LogRecord> {
        let mut out = Vec::new();
        rt().block_on(skyform_local::logs(&self.dir, stack, function, None, false, &mut |r| {
            out.push(r);
            true
        }))
        .unwrap();
        out
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = skyform_local::stop(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The provider, as the engine runs it.
pub struct Provider {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
    next_id: u64,
}

impl Provider {
    pub fn start(project: &Project, stack: &str) -> Provider {
        Provider::start_with_env(project, stack, &[])
    }

    pub fn start_with_env(project: &Project, stack: &str, env: &[(&str, &str)]) -> Provider {
        let mut child = Command::new(EXE)
            .arg("provider")
            .env("SKYFORM_EXE", EXE)
            .env("SKYFORM_LOCAL_IDLE_SECS", "300")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut p = Provider { child, stdin, out, next_id: 1 };
        let hs = p.call("handshake", json!({"protocol_versions": [1], "engine_version": "test"})).unwrap();
        assert_eq!(hs["name"], "local");
        p.call(
            "configure",
            json!({"project": "test", "stack": stack, "project_dir": project.dir.to_string_lossy(), "config": {}}),
        )
        .unwrap();
        p
    }

    /// One request; `Ok(result)` or `Err(error)`.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"id": id, "method": method, "params": params}).to_string();
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut buf = String::new();
        loop {
            buf.clear();
            assert!(self.out.read_line(&mut buf).unwrap() > 0, "provider closed stdout");
            let resp: Value = serde_json::from_str(&buf).unwrap();
            if resp["id"] == id {
                return match resp.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(resp["result"].clone()),
                };
            }
        }
    }

    pub fn check(&mut self, ty: &str, name: &str, inputs: Value) -> Value {
        self.call("check", json!({"type": ty, "name": name, "inputs": inputs})).unwrap()
    }

    /// check + create; panics on check failures. Returns (checked inputs, id, outputs).
    pub fn create(&mut self, ty: &str, name: &str, inputs: Value) -> (Value, String, Value) {
        let checked = self.check(ty, name, inputs);
        assert!(checked.get("failures").is_none(), "check failed: {checked}");
        let inputs = checked["inputs"].clone();
        let r = self
            .call("create", json!({"type": ty, "name": name, "inputs": inputs}))
            .unwrap_or_else(|e| panic!("create {name} failed: {e}"));
        (inputs, r["id"].as_str().unwrap().to_string(), r["outputs"].clone())
    }

    pub fn function(&mut self, name: &str, code: &str, runtime: &str, handler: &str, extra: Value) -> Value {
        let mut inputs = json!({
            "code": code, "build": null, "handler": handler, "runtime": runtime,
            "environment": {}, "memory": 128, "timeout": 3, "reserved_concurrency": null
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            inputs[k] = v;
        }
        self.create("local:Function", name, inputs).2
    }

    /// Deploys an API; returns its outputs (`url`, `port`, `api_id`).
    pub fn api(&mut self, name: &str, routes: &[(&str, &str)]) -> Value {
        let routes: Vec<Value> = routes.iter().map(|(r, f)| json!({"route": r, "function": f})).collect();
        self.create("local:HttpApi", name, json!({ "routes": routes })).2
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 answer.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Http {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// Sends one request (`Connection: close`) to 127.0.0.1:port.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Http {
    try_http(port, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"))
}

pub fn try_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Http> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or(std::io::ErrorKind::InvalidData)?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Http { status, headers, body: raw[end + 4..].to_vec() })
}

/// Fails the test with what to install when `program` is not on PATH.
pub fn require(program: &str, install: &str) {
    let ok = Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "this test runs functions with `{program}`, which is not installed; {install}");
}

pub fn port_of(outputs: &Value) -> u16 {
    outputs["port"].as_u64().unwrap() as u16
}

/// Waits until `f` holds, up to `secs`.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// Pids of processes whose environment says they belong to this project's functions.
pub fn function_pids(project: &Path) -> Vec<u32> {
    let needle = project.join(".skyform/local/artifacts");
    let needle = needle.to_string_lossy();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        if String::from_utf8_lossy(&env).contains(&*needle) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// A Python handler that echoes its event.
pub const PY_ECHO: &str = r#"
import json, os

def handler(event, context):
    print("echo", event.get("rawPath"))
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-request-id": context.aws_request_id},
        "body": json.dumps({"event": event, "function": context.function_name,
                            "remaining": context.get_remaining_time_in_millis(),
                            "greeting": os.environ.get("GREETING")}),
    }
"#;

/// The peers venv (boto3, the AWS CLI): `SKYFORM_PEERS_VENV`, or made by `tests/peers/setup.sh`
/// on first use.
pub fn venv() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Ok(v) = std::env::var("SKYFORM_PEERS_VENV")
        && Path::new(&v).join("bin/python").exists()
    {
        return v;
    }
    let out = Command::new("bash").arg(root.join("tests/peers/setup.sh")).output().unwrap();
    assert!(out.status.success(), "tests/peers/setup.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The environment a client needs to reach the project's local endpoint (read from the files
/// the daemon writes, so it does not start one), with the user's AWS files out of the way.
pub fn aws_env(p: &Project) -> Vec<(String, String)> {
    let local = p.dir.join(".skyform/local");
    let endpoint: Value =
        serde_json::from_slice(&std::fs::read(local.join("endpoint.json")).unwrap()).unwrap();
    let creds: Value =
        serde_json::from_slice(&std::fs::read(local.join("credentials.json")).unwrap()).unwrap();
    vec![
        ("AWS_ENDPOINT_URL".into(), format!("http://127.0.0.1:{}", endpoint["port"])),
        ("AWS_ACCESS_KEY_ID".into(), creds["access_key_id"].as_str().unwrap().into()),
        ("AWS_SECRET_ACCESS_KEY".into(), creds["secret_access_key"].as_str().unwrap().into()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ("AWS_PAGER".into(), String::new()),
    ]
}

/// Runs the venv's AWS CLI with `--output json`. Version 1 replaces `AWS_ENDPOINT_URL` with
/// `queue.amazonaws.com` for `aws sqs` in us-east-1 (its `overridesslcommonname`
/// customization), so SQS commands pass `--endpoint-url`, as the README tells users of CLI v1 to.
pub fn aws_cli(venv: &str, env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let endpoint =
        env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").map(|(_, v)| v.clone()).unwrap_or_default();
    let sqs: &[&str] = if args.first() == Some(&"sqs") { &["--endpoint-url", &endpoint] } else { &[] };
    Command::new(format!("{venv}/bin/aws"))
        .args(args)
        .args(sqs)
        .args(["--output", "json"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap()
}

/// Runs the CLI; its stdout, after asserting success.
#[track_caller]
pub fn cli(venv: &str, env: &[(String, String)], args: &[&str]) -> String {
    let out = aws_cli(venv, env, args);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the CLI; its JSON output (`Null` when it printed nothing), after asserting success.
#[track_caller]
pub fn cli_json(venv: &str, env: &[(String, String)], args: &[&str]) -> Value {
    let out = cli(venv, env, args);
    if out.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("aws {args:?} printed no JSON ({e}): {out}"))
}
