//! The test environment: one moto server per test binary (with SigV4 verification on), the
//! provider driven through the real protocol by spawning its executable, and boto3 for
//! changes made behind skyform's back.
//!
//! moto is started through a small bash watchdog that stops it (by its pid) when this test
//! process exits, since Rust tests have no global teardown.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Moto {
    pub endpoint: String,
    pub venv: String,
    pub key_id: String,
    pub secret: String,
    /// The bash watchdog that owns moto; it ends moto when this process is gone.
    _watchdog: std::sync::Mutex<Child>,
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The peers venv (moto, boto3), created on first use by `tests/peers/setup.sh`.
pub fn venv() -> String {
    static VENV: OnceLock<String> = OnceLock::new();
    VENV.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("tests/peers/setup.sh"))
            .output()
            .expect("cannot run tests/peers/setup.sh (is bash installed?)");
        assert!(
            out.status.success(),
            "tests/peers/setup.sh failed; it needs python3 with venv and PyPI: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .clone()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The shared moto server, started on first use with signature verification.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start_moto)
}

fn start_moto() -> Moto {
    let venv = venv();
    let port = free_port();
    let script = format!(
        "INITIAL_NO_AUTH_ACTION_COUNT=3 MOTO_IAM_LOAD_MANAGED_POLICIES=true '{venv}/bin/moto_server' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; kill $m 2>/dev/null; wait $m",
        parent = std::process::id()
    );
    let watchdog = Command::new("bash")
        .args(["-c", &script])
        .env("AWS_ACCESS_KEY_ID", "bootstrap")
        .env("AWS_SECRET_ACCESS_KEY", "bootstrap")
        .stdin(Stdio::null())
        .spawn()
        .expect("cannot start moto_server through bash");
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Lambda without Docker, then the three unauthenticated calls that make the identity
    // every later request must be signed with.
    let out = Command::new(format!("{venv}/bin/python"))
        .args(["-c", r#"
import json, sys, urllib.request, boto3
ep = sys.argv[1]
urllib.request.urlopen(urllib.request.Request(ep + "/moto-api/config", data=json.dumps({"lambda": {"use_docker": False}}).encode(), method="POST", headers={"Content-Type": "application/json"})).read()
iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="skyform")
iam.put_user_policy(UserName="skyform", PolicyName="all", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="skyform")["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
"#, &endpoint])
        .output()
        .expect("cannot run the venv's python");
    assert!(
        out.status.success(),
        "setting up moto's IAM identity failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace();
    let key_id = parts.next().expect("an access key id").to_string();
    let secret = parts.next().expect("a secret").to_string();
    Moto { endpoint, venv, key_id, secret, _watchdog: std::sync::Mutex::new(watchdog) }
}

impl Moto {
    /// Runs Python with boto3 and this server's credentials; `code` sees `ep` and `session`.
    pub fn py(&self, code: &str) -> String {
        // botocore signs `x-amz-content-sha256` only for S3; moto in verifying mode wants it on
        // every request, so a `before-sign` hook adds it.
        let prelude = r#"import boto3, json, sys, hashlib
ep = sys.argv[1]
session = boto3.session.Session(region_name='us-east-1')
def _sha(request, **kw):
    body = request.body or b''
    if isinstance(body, str): body = body.encode()
    if 'X-Amz-Content-SHA256' not in request.headers:
        request.headers['X-Amz-Content-SHA256'] = hashlib.sha256(body if isinstance(body, bytes) else b'').hexdigest()
def client(s):
    c = session.client(s, endpoint_url=ep)
    c.meta.events.register('before-sign.*.*', _sha)
    return c
"#;
        let out = Command::new(format!("{}/bin/python", self.venv))
            .args(["-c", &format!("{prelude}{code}"), &self.endpoint])
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        assert!(out.status.success(), "python failed: {}\n{code}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

/// A plain `moto_server`, as a user starts it: no signature verification, no AWS managed
/// policies loaded. (Also for the unsigned `AssumeRoleWithWebIdentity`: moto's authorizing mode
/// fails it with a 500, looking for an `Authorization` header.) Stopped by a bash watchdog when
/// this process ends.
pub fn plain_moto() -> String {
    let venv = venv();
    let port = free_port();
    let script = format!(
        "'{venv}/bin/moto_server' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; kill $m 2>/dev/null; wait $m",
        parent = std::process::id()
    );
    // The watchdog lives as long as this process; kept here so that it is owned.
    static WATCHDOGS: std::sync::Mutex<Vec<Child>> = std::sync::Mutex::new(Vec::new());
    let watchdog = std::process::Command::new("bash")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    WATCHDOGS.lock().unwrap().push(watchdog);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "moto_server did not listen on port {port} within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// A provider process driven over its stdin/stdout.
pub struct Provider {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

#[derive(Debug)]
pub struct CallError {
    pub code: String,
    pub message: String,
}

impl Provider {
    /// Spawns the provider with a clean environment plus `env`.
    pub fn spawn(env: &[(&str, &str)]) -> Provider {
        let home = std::env::temp_dir().join(format!("skyform-aws-home-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skyform-provider-aws"));
        cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("HOME", &home);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut p = Provider { child, stdin, stdout, next_id: 1 };
        let h = p.call("handshake", json!({"protocol_versions": [1], "engine_version": "test"})).unwrap();
        assert_eq!(h["name"], "aws");
        p
    }

    /// Spawns and configures a provider against the shared moto server.
    pub fn moto(config: Value) -> Provider {
        Provider::moto_with(config, &[])
    }

    /// [`Provider::moto`] with more environment variables for the provider.
    pub fn moto_with(config: Value, extra: &[(&str, &str)]) -> Provider {
        let m = moto();
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID", m.key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", m.secret.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", m.endpoint.as_str()),
        ];
        env.extend_from_slice(extra);
        let mut p = Provider::spawn(&env);
        // Quick retries: moto answers 500 for the few operations it lacks.
        let mut config = config;
        if config.get("retry_base_ms").is_none() {
            config["retry_base_ms"] = json!(20);
        }
        p.configure(config).unwrap();
        p
    }

    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"id": id, "method": method, "params": params}).to_string();
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        let v: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("bad answer {answer:?}: {e}"));
        assert_eq!(v["id"], id);
        match v.get("error") {
            Some(e) => Err(CallError {
                code: e["code"].as_str().unwrap_or_default().into(),
                message: e["message"].as_str().unwrap_or_default().into(),
            }),
            None => Ok(v["result"].clone()),
        }
    }

    pub fn configure(&mut self, config: Value) -> Result<Value, CallError> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        self.call(
            "configure",
            json!({"project": "t", "stack": "dev", "project_dir": dir.to_str().unwrap(), "config": config}),
        )
    }

    /// `check` that must pass; returns the checked inputs.
    pub fn check(&mut self, ty: &str, name: &str, inputs: Value, olds: Option<&Value>) -> Value {
        let mut params = json!({"type": ty, "name": name, "inputs": inputs});
        if let Some(o) = olds {
            params["olds"] = o.clone();
        }
        let r = self.call("check", params).unwrap();
        assert!(r.get("failures").is_none(), "check failed: {r}");
        r["inputs"].clone()
    }

    pub fn check_failures(&mut self, ty: &str, inputs: Value) -> Vec<Value> {
        let r = self.call("check", json!({"type": ty, "name": "x", "inputs": inputs})).unwrap();
        r.get("failures").and_then(Value::as_array).cloned().unwrap_or_default()
    }

    /// `create`: returns (id, outputs).
    pub fn create(&mut self, ty: &str, name: &str, inputs: &Value) -> (String, Value) {
        let r = self
            .call("create", json!({"type": ty, "name": name, "inputs": inputs}))
            .unwrap_or_else(|e| panic!("create {ty} {name}: {e:?}"));
        (r["id"].as_str().unwrap().to_string(), r["outputs"].clone())
    }

    pub fn diff(&mut self, ty: &str, id: &str, olds: &Value, news: &Value) -> Value {
        self.call(
            "diff",
            json!({"type": ty, "name": "x", "id": id, "olds": olds, "news": news, "old_outputs": {}}),
        )
        .unwrap()
    }

    pub fn update(&mut self, ty: &str, id: &str, olds: &Value, news: &Value) -> Value {
        let r = self
            .call(
                "update",
                json!({"type": ty, "name": "x", "id": id, "olds": olds, "news": news, "old_outputs": {}}),
            )
            .unwrap_or_else(|e| panic!("update {ty} {id}: {e:?}"));
        r["outputs"].clone()
    }

    /// `read` by id (with the stored inputs, or null for an import); the `resource` or null.
    pub fn read(&mut self, ty: &str, id: Option<&str>, inputs: &Value) -> Value {
        let r = self
            .call("read", json!({"type": ty, "name": "x", "id": id, "inputs": inputs, "outputs": {}}))
            .unwrap_or_else(|e| panic!("read {ty} {id:?}: {e:?}"));
        r["resource"].clone()
    }

    pub fn delete(&mut self, ty: &str, id: &str, inputs: &Value) {
        self.call("delete", json!({"type": ty, "name": "x", "id": id, "inputs": inputs, "outputs": {}}))
            .unwrap_or_else(|e| panic!("delete {ty} {id}: {e:?}"));
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lifecycle steps every type's test goes through after its type-specific parts:
/// `read` by id as an import, `read` without an id from the inputs, then delete (twice: a
/// second delete of a gone resource succeeds) and `read` answering null.
pub fn import_find_delete(p: &mut Provider, ty: &str, id: &str, inputs: &Value) {
    let imported = p.read(ty, Some(id), &Value::Null);
    assert_eq!(imported["id"], id, "{imported}");
    assert!(imported["inputs"].is_object(), "an import returns the real inputs: {imported}");
    let found = p.read(ty, None, inputs);
    assert_eq!(found["id"], id, "read without id finds the resource from its inputs: {found}");
    p.delete(ty, id, inputs);
    assert!(p.read(ty, Some(id), inputs).is_null(), "{ty} {id} is gone after delete");
    p.delete(ty, id, inputs);
}

pub const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A canned answer: status, headers, body.
#[path = "../../../../tests/peers/proxy.rs"]
mod proxy;
#[allow(unused_imports)] // each test binary uses what it needs
pub use proxy::{Canned, Proxy};
