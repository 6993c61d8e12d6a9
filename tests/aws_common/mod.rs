//! The environment of the AWS end-to-end tests and benchmark: a moto server with SigV4
//! verification on, boto3 to look at (and change) what exists behind skyform's back, a
//! fault-injecting proxy, and a project copied from `examples/` that the real `skyform` binary
//! deploys with `--stack prod` (provider `aws`).
//!
//! The moto and proxy code follows `providers/aws/tests/common`, where the protocol-level tests
//! of the provider live; here each test gets a server of its own, so that "nothing is left after
//! destroy" can be checked by listing everything.
//!
//! The example programs are real cargo projects depending on `skyform-sdk` by a relative path.
//! A copy in a temporary folder gets that path made absolute, and every copy builds into one
//! shared `CARGO_TARGET_DIR` (`target/aws-e2e-programs`), so the program compiles once per
//! machine (about 30 s) and then starts in milliseconds.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The peers venv (moto, boto3), created on first use by `tests/peers/setup.sh`. A machine that
/// cannot build it fails the test, saying what is missing.
pub fn venv() -> String {
    static VENV: OnceLock<String> = OnceLock::new();
    VENV.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("tests/peers/setup.sh"))
            .output()
            .expect("cannot run tests/peers/setup.sh (is bash installed?)");
        assert!(
            out.status.success(),
            "tests/peers/setup.sh failed; the AWS tests need python3 (with venv) and PyPI to install \
             moto and boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A moto server of one test, verifying signatures with the credentials it made.
pub struct Moto {
    pub endpoint: String,
    pub venv: String,
    pub key_id: String,
    pub secret: String,
    moto_pid: i32,
    /// A bash watchdog that owns moto and ends it if this process dies without dropping us.
    watchdog: Child,
}

impl Moto {
    pub fn start() -> Moto {
        let venv = venv();
        let port = free_port();
        let script = format!(
            "INITIAL_NO_AUTH_ACTION_COUNT=3 MOTO_IAM_LOAD_MANAGED_POLICIES=true '{venv}/bin/moto_server' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
             echo $m; while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; kill $m 2>/dev/null; wait $m",
            parent = std::process::id()
        );
        let mut watchdog = Command::new("bash")
            .args(["-c", &script])
            .env("AWS_ACCESS_KEY_ID", "bootstrap")
            .env("AWS_SECRET_ACCESS_KEY", "bootstrap")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start moto_server through bash");
        let mut line = String::new();
        BufReader::new(watchdog.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let moto_pid: i32 = line.trim().parse().expect("the watchdog prints moto's pid");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
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
        Moto { endpoint, venv, key_id, secret, moto_pid, watchdog }
    }

    /// Runs Python with boto3 and this server's credentials; `code` sees `ep`, `session` and
    /// `client(service)`, and its stdout is returned.
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

    /// `py` whose stdout is one JSON value.
    pub fn py_json(&self, code: &str) -> Value {
        let out = self.py(code);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("python printed no JSON ({e}): {out}"))
    }

    /// Everything the hello-http example can create, by kind, as sorted names: what a test
    /// compares before and after (`[]` everywhere once destroyed).
    pub fn inventory(&self) -> Value {
        self.py_json(
            r#"
lam = client('lambda'); iam = client('iam'); logs = client('logs'); apigw = client('apigatewayv2')
sqs = client('sqs'); sns = client('sns'); s3 = client('s3')
apis = apigw.get_apis()['Items']
out = {
  'functions': sorted(f['FunctionName'] for f in lam.list_functions()['Functions']),
  'roles': sorted(r['RoleName'] for r in iam.list_roles()['Roles']),
  'log_groups': sorted(g['logGroupName'] for g in logs.describe_log_groups()['logGroups']),
  'apis': sorted(a['Name'] for a in apis),
  'routes': sorted(r['RouteKey'] for a in apis for r in apigw.get_routes(ApiId=a['ApiId'])['Items']),
  'integrations': sum(len(apigw.get_integrations(ApiId=a['ApiId'])['Items']) for a in apis),
  'stages': sorted(s['StageName'] for a in apis for s in apigw.get_stages(ApiId=a['ApiId'])['Items']),
  'queues': sorted(u.rsplit('/', 1)[-1] for u in sqs.list_queues().get('QueueUrls', [])),
  'event_source_mappings': len(lam.list_event_source_mappings()['EventSourceMappings']),
  'topics': sorted(t['TopicArn'] for t in sns.list_topics()['Topics']),
  'buckets': sorted(b['Name'] for b in s3.list_buckets()['Buckets']),
}
print(json.dumps(out))
"#,
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a pid we started and a plain signal has no memory effects.
        unsafe {
            libc::kill(self.moto_pid, libc::SIGTERM);
        }
        let _ = self.watchdog.wait();
    }
}

#[path = "../peers/proxy.rs"]
mod proxy;
#[allow(unused_imports)] // each includer uses what it needs
pub use proxy::{Canned, Proxy};

/// The shared target folder of the example programs (see the module documentation).
pub fn programs_target_dir() -> PathBuf {
    repo_root().join("target/aws-e2e-programs")
}

/// A copy of an example project, deployed to the stack `prod` with provider `aws`.
pub struct Project {
    pub dir: PathBuf,
    /// The credentials `skyform` gets in its environment.
    pub key_id: String,
    pub secret: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        // Build output and the example's own local state stay behind.
        if name == "target" || name == "state" || name == ".skyform" {
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

impl Project {
    /// Copies `examples/<example>` into a temporary folder, points its `skyform-sdk`
    /// dependency at this repository, and creates the stack `prod` with `skyform stack init
    /// prod --provider aws` and `[providers.aws]` aimed at `endpoint`.
    pub fn new(example: &str, moto: &Moto) -> Project {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let base = std::env::var_os("SKYFORM_TEST_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("skyform-aws-e2e-{example}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&repo_root().join("examples").join(example), &dir);
        let cargo_toml = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&cargo_toml).unwrap();
        let sdk = repo_root().join("sdk");
        let patched = text.replace("path = \"../../sdk\"", &format!("path = \"{}\"", sdk.display()));
        assert_ne!(text, patched, "examples/{example}/Cargo.toml no longer names ../../sdk");
        std::fs::write(&cargo_toml, patched).unwrap();
        let project = Project { dir, key_id: moto.key_id.clone(), secret: moto.secret.clone() };
        let init = project.run(&["stack", "init", "prod", "--provider", "aws"]);
        assert_eq!(init.code, 0, "stack init failed:\n{}", init.text());
        project.aim(&moto.endpoint);
        project
    }

    /// Points the `prod` stack's provider at `endpoint` (moto, or a proxy in front of it).
    pub fn aim(&self, endpoint: &str) {
        let path = self.dir.join("Skyform.prod.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: String = match text.find("\n[providers.aws]") {
            Some(i) => text[..i + 1].to_string(),
            None => text,
        };
        // Short backoffs: moto answers at once, and the failure test wants failures fast.
        std::fs::write(
            &path,
            format!(
                "{kept}\n[providers.aws]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nretry_base_ms = 20\nmax_attempts = 3\n"
            ),
        )
        .unwrap();
    }

    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.dir.join(rel), text).unwrap();
    }

    /// `skyform ARGS` in the project, in a clean environment: PATH, HOME (the project), the
    /// cargo variables to build the program, and the credentials.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skyform"));
        cmd.args(args).current_dir(&self.dir).env_clear();
        // The folder of `skyform` first: a `skyform-provider-*` built beside it is found there.
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_skyform")).parent().unwrap().display().to_string();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        cmd.env("PATH", format!("{bin}:{path}"))
            .env("HOME", &self.dir)
            .env("USER", "tester")
            .env("CARGO_TARGET_DIR", programs_target_dir())
            // The zig toolchain that builds Rust functions for Lambda, installed once.
            .env(
                "SKYFORM_CACHE_DIR",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peers/skyform-cache"),
            )
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for k in ["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run skyform"))
    }

    /// `skyform -s prod ARGS`.
    pub fn prod(&self, args: &[&str]) -> Run {
        let mut all = vec!["-s", "prod"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// The bytes of the stack's state file, or `None` when there is none yet.
    pub fn state_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join("state/prod.json")).ok()
    }

    pub fn state(&self) -> Value {
        serde_json::from_slice(&self.state_bytes().expect("state/prod.json exists")).unwrap()
    }

    /// The recorded resources: name → (type, id).
    pub fn recorded(&self) -> std::collections::BTreeMap<String, (String, String)> {
        let state = self.state();
        let mut out = std::collections::BTreeMap::new();
        for r in state["resources"].as_array().into_iter().flatten() {
            out.insert(
                r["name"].as_str().unwrap().to_string(),
                (
                    r["type"].as_str().unwrap_or_default().to_string(),
                    r["id"].as_str().unwrap_or_default().to_string(),
                ),
            );
        }
        out
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn text(&self) -> String {
        format!("exit: {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, 0, "expected success:\n{}", self.text());
        self
    }
}
