//! The `s3://` state backend, with the real `skyform` binary against moto server (signature
//! verification on) and against the local cloud's S3: two `up`s from two folders racing for one
//! stack, `kill -9` rounds that converge, a lock taken from a running command, a state written
//! behind the lock, `stack migrate` folder → s3 → folder keeping the history, and bad backends.
//! Resources are the fake provider's (a folder of JSON files: the "cloud"), so what is timed
//! and checked is the backend, not a cloud API.
//!
//! Objects are read with the aws provider's own S3 client (`skyform_aws::backend::Bucket`) for
//! polling; what a second party does behind skyform's back is done with boto3.

#[path = "aws_common/mod.rs"]
mod aws_common;
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_common::Moto;
use common::{Run, TestEnv};
use serde_json::{Value, json};

const SECRET: &str = "hunter2-do-not-leak";

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

/// An S3-compatible server and the credentials to use it.
struct Server {
    endpoint: String,
    key: String,
    secret: String,
}

fn moto_server() -> Server {
    let m = moto();
    Server { endpoint: m.endpoint.clone(), key: m.key_id.clone(), secret: m.secret.clone() }
}

impl Server {
    fn url(&self, bucket: &str, prefix: &str) -> String {
        format!("s3://{bucket}/{prefix}?endpoint={}&region=us-east-1", self.endpoint)
    }

    fn client(&self, bucket: &str, prefix: &str) -> skyform_aws::backend::Bucket {
        let params = BTreeMap::from([
            ("endpoint".to_string(), self.endpoint.clone()),
            ("region".to_string(), "us-east-1".to_string()),
        ]);
        let (key, secret) = (self.key.clone(), self.secret.clone());
        let env = move |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some(key.clone()),
            "AWS_SECRET_ACCESS_KEY" => Some(secret.clone()),
            "HOME" => Some("/nonexistent".into()),
            _ => None,
        };
        skyform_aws::backend::Bucket::new(bucket, prefix, &params, &Default::default(), &env).unwrap()
    }

    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        block(self.client(bucket, prefix).list("")).unwrap()
    }

    fn object(&self, bucket: &str, prefix: &str, key: &str) -> Option<Vec<u8>> {
        block(self.client(bucket, prefix).get(key)).unwrap().map(|(b, _)| b)
    }

    /// Runs Python with boto3 pointed at this server (`s3` is a client).
    fn boto3(&self, code: &str) -> String {
        let venv = aws_common::venv();
        let prelude = "import boto3, json, sys, hashlib\n\
            def _sha(request, **kw):\n    body = request.body or b''\n    if isinstance(body, str): body = body.encode()\n    \
            request.headers['X-Amz-Content-SHA256'] = hashlib.sha256(body if isinstance(body, bytes) else b'').hexdigest()\n\
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1')\n\
            s3.meta.events.register('before-sign.*.*', _sha)\n";
        let out = Command::new(format!("{venv}/bin/python"))
            .args(["-c", &format!("{prelude}{code}"), &self.endpoint])
            .env("AWS_ACCESS_KEY_ID", &self.key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        assert!(out.status.success(), "python failed: {}\n{code}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn make_bucket(&self, bucket: &str) {
        self.boto3(&format!("s3.create_bucket(Bucket='{bucket}')"));
    }
}

fn block<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(fut)
}

/// `n` fake resources in chains of ten; `r000` holds a secret.
fn manifest(n: usize, version: u64, generation: u64) -> Value {
    let mut resources = Vec::new();
    for i in 0..n {
        let mut inputs = json!({"version": version, "force_new": generation});
        if i % 10 != 0 {
            inputs["parent"] = json!({"$ref": format!("r{:03}", i - 1), "output": "id"});
        }
        if i == 0 {
            inputs["password"] = json!({"$secret": SECRET});
        }
        resources.push(json!({"name": format!("r{i:03}"), "type": "fake:Resource", "inputs": inputs}));
    }
    json!(resources)
}

/// A project folder of the team: `backend` in Skyform.toml, the shared fake cloud `cloud`.
fn folder(name: &str, backend: Option<&str>, cloud: &Path, latency_ms: u64) -> TestEnv {
    let env = unkeyed_folder(name, backend, cloud, latency_ms);
    // The stack's data key is made once and is in the stack file, which a team shares in git.
    let out = env
        .command(&["config", "set", "--secret", "token", "abc"])
        .env("SKYFORM_PASSPHRASE", "pw")
        .output()
        .unwrap();
    assert!(out.status.success(), "config set: {}", String::from_utf8_lossy(&out.stderr));
    env
}

fn unkeyed_folder(name: &str, backend: Option<&str>, cloud: &Path, latency_ms: u64) -> TestEnv {
    let env = TestEnv::new(name);
    let backend = backend.map(|b| format!("backend = \"{b}\"\n")).unwrap_or_default();
    env.write("Skyform.toml", &format!("name = \"demo\"\nprogram = \"cat manifest.json\"\n{backend}"));
    env.write(
        "Skyform.dev.toml",
        &format!(
            "provider = \"local\"\n\n[providers.fake]\nstore = \"{}\"\nlatency_ms = {latency_ms}\n",
            cloud.display()
        ),
    );
    env
}

/// Another clone of `of`: the same project and stack files (the same data key).
fn clone(name: &str, of: &TestEnv) -> TestEnv {
    let env = TestEnv::new(name);
    for f in ["Skyform.toml", "Skyform.dev.toml"] {
        env.write(f, &of.read(f));
    }
    env
}

fn command(env: &TestEnv, s: &Server, args: &[&str]) -> Command {
    let mut cmd = env.command(args);
    cmd.env("AWS_ACCESS_KEY_ID", &s.key)
        .env("AWS_SECRET_ACCESS_KEY", &s.secret)
        .env("SKYFORM_PASSPHRASE", "pw");
    cmd
}

fn run(env: &TestEnv, s: &Server, args: &[&str]) -> Run {
    let out = command(env, s, args).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn export(env: &TestEnv, s: &Server) -> Value {
    let r = run(env, s, &["stack", "export"]);
    assert_eq!(r.code, 0, "the state loads:\n{}", r.text());
    serde_json::from_str(&r.stdout).unwrap()
}

/// The fake cloud's resources: name → (live copies, version of the last one read).
fn cloud(dir: &Path) -> BTreeMap<String, (usize, Value)> {
    let mut out: BTreeMap<String, (usize, Value)> = BTreeMap::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Some(v) = std::fs::read(e.path()).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        let entry = out.entry(v["name"].as_str().unwrap_or("?").to_string()).or_insert((0, Value::Null));
        entry.0 += 1;
        entry.1 = v["inputs"]["version"].clone();
    }
    out
}

#[track_caller]
fn assert_converged(env: &TestEnv, s: &Server, cloud_dir: &Path, n: usize, version: u64, context: &str) {
    let real = cloud(cloud_dir);
    assert_eq!(real.len(), n, "{context}: every resource exists: {real:?}");
    assert!(
        real.values().all(|(c, v)| *c == 1 && *v == json!(version)),
        "{context}: once each, at v{version}: {real:?}"
    );
    let state = export(env, s);
    assert_eq!(state["resources"].as_array().unwrap().len(), n, "{context}: recorded once each");
    assert!(state.get("pending_operations").is_none(), "{context}: nothing pending");
    let preview = run(env, s, &["preview"]);
    assert!(preview.stdout.contains("no changes"), "{context}: converged:\n{}", preview.text());
}

/// Waits until `up` has started applying: its journal's first segment is in the bucket.
fn wait_for_journal(s: &Server, bucket: &str, prefix: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if s.keys(bucket, prefix).iter().any(|k| k.starts_with("dev.journal/")) {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the up ended before it journaled anything");
        assert!(Instant::now() < deadline, "no journal segment appeared within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two folders (two people, or a laptop and CI) run `up` on one stack at the same instant: one
/// wins, the other fails at once naming the winner; the bucket then holds one state, no lock,
/// and no secret in plaintext.
fn race(s: &Server, bucket: &str) {
    let tmp = TestEnv::new("race-cloud");
    let url = s.url(bucket, "team/demo");
    // 20 steps of 150 ms one at a time: the winner holds the lock for 3 s, far longer than the
    // two processes take to start, even on a loaded machine.
    let a = folder("race-a", Some(&url), tmp.path(), 150);
    let b = clone("race-b", &a);
    for f in [&a, &b] {
        f.manifest(manifest(20, 1, 0));
    }
    let spawn = |f: &TestEnv| {
        command(f, s, &["up", "--yes", "--parallel", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ca, cb) = (spawn(&a), spawn(&b));
    let (pa, pb) = (ca.id(), cb.id());
    let (oa, ob) = (ca.wait_with_output().unwrap(), cb.wait_with_output().unwrap());
    let (winner, loser, loser_out) = match (oa.status.code(), ob.status.code()) {
        (Some(0), Some(4)) => (pa, &b, ob),
        (Some(4), Some(0)) => (pb, &a, oa),
        other => panic!(
            "one up must win and the other be refused (exit 4), got {other:?}:\n{}\n{}",
            String::from_utf8_lossy(&oa.stderr),
            String::from_utf8_lossy(&ob.stderr)
        ),
    };
    let err = String::from_utf8_lossy(&loser_out.stderr);
    assert!(
        err.contains("locked by another command: `skyform up`")
            && err.contains(&format!("pid {winner} on host")),
        "the refused up names the holder:\n{err}"
    );
    assert!(err.contains("team/demo/dev.lock"), "and where the lock is:\n{err}");
    let keys = s.keys(bucket, "team/demo");
    assert!(keys.contains(&"dev.json".to_string()), "{keys:?}");
    assert!(
        !keys.iter().any(|k| k == "dev.lock" || k.starts_with("dev.journal/")),
        "no lock, no journal left: {keys:?}"
    );
    let state = String::from_utf8(s.object(bucket, "team/demo", "dev.json").unwrap()).unwrap();
    assert!(!state.contains(SECRET) && state.contains("$encrypted"), "the secret is sealed in the bucket");
    // The loser's folder sees the winner's stack: nothing to do.
    let preview = run(loser, s, &["preview"]);
    assert!(preview.stdout.contains("no changes"), "{}", preview.text());
    assert!(!loser.path().join("state/dev.json").exists(), "nothing in the folder backend");
}

#[test]
fn two_ups_on_one_stack_one_wins_on_moto() {
    let s = moto_server();
    s.make_bucket("race-state");
    race(&s, "race-state");
}

#[test]
fn two_ups_on_one_stack_one_wins_on_the_local_clouds_s3() {
    let host = TestEnv::new("local-s3-host");
    let _stop = common::StopDaemon(&host);
    let out = host.command(&["local", "env"]).output().unwrap();
    assert!(out.status.success(), "skyform local env: {}", String::from_utf8_lossy(&out.stderr));
    let vars: BTreeMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    let s = Server {
        endpoint: vars["AWS_ENDPOINT_URL"].clone(),
        key: vars["AWS_ACCESS_KEY_ID"].clone(),
        secret: vars["AWS_SECRET_ACCESS_KEY"].clone(),
    };
    s.make_bucket("team-state");
    race(&s, "team-state");
}

/// `kill -9` at random instants of `up` and `destroy`, as `tests/crash.rs` does for the folder
/// backend: the killed holder's lock object stays in the bucket, and is taken over by the next
/// command of this host since its process is gone; the state always loads; `refresh` then the
/// same command converge with every resource existing once.
#[test]
fn killed_ups_converge_with_the_state_in_s3() {
    const N: usize = 60;
    let s = moto_server();
    s.make_bucket("crash-state");
    let tmp = TestEnv::new("crash-s3-cloud");
    let env = folder("crash-s3", Some(&s.url("crash-state", "demo")), tmp.path(), 10);
    env.manifest(manifest(N, 1, 0));
    let started = Instant::now();
    assert_eq!(run(&env, &s, &["up", "--yes", "--parallel", "16"]).code, 0);
    let full_ms = (started.elapsed().as_millis() as u64).max(200);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    println!("seed {seed}, a whole up takes {full_ms} ms");
    let (mut version, mut generation, mut killed) = (1, 0, 0);
    for round in 0..4 {
        let wave = ["update", "replace", "destroy", "create"][round];
        let args: Vec<&str> = if wave == "destroy" {
            vec!["destroy", "--yes", "--parallel", "16"]
        } else {
            version += 1;
            generation += u64::from(wave == "replace");
            env.manifest(manifest(N, version, generation));
            vec!["up", "--yes", "--parallel", "16"]
        };
        let mut child = command(&env, &s, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let delay = Duration::from_millis(full_ms / 10 + (seed >> (round * 8)) % (full_ms / 2));
        let t = Instant::now();
        while t.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        let _ = child.wait();
        let context = format!("round {round} ({wave}, seed {seed}, killed after {delay:?})");
        export(&env, &s);
        let refresh = run(&env, &s, &["refresh", "--yes"]);
        assert_eq!(refresh.code, 0, "{context}: refresh resolves the interrupted run:\n{}", refresh.text());
        let rerun = run(&env, &s, &args);
        assert_eq!(rerun.code, 0, "{context}: the next run converges:\n{}", rerun.text());
        if wave == "destroy" {
            assert!(cloud(tmp.path()).is_empty(), "{context}: nothing is left");
            assert_eq!(export(&env, &s)["resources"], json!([]), "{context}");
        } else {
            assert_converged(&env, &s, tmp.path(), N, version, &context);
        }
    }
    assert!(killed >= 2, "at least half the rounds were killed mid-run ({killed}/4)");
    let keys = s.keys("crash-state", "demo");
    assert!(!keys.iter().any(|k| k == "dev.lock" || k.starts_with("dev.journal/")), "{keys:?}");
}

/// A lock taken from a running `up` (removed and re-created by someone else) stops that `up`
/// before it writes the state; a state overwritten behind the lock is detected by its ETag and
/// not overwritten; `cancel` removes another machine's lock only with `--force`; the next `up`
/// replays the journal the robbed `up` left and converges.
#[test]
fn a_stolen_lock_and_a_state_written_behind_the_lock_are_detected() {
    const N: usize = 20;
    let s = moto_server();
    s.make_bucket("guard-state");
    let tmp = TestEnv::new("guard-cloud");
    let url = s.url("guard-state", "demo");
    let a = folder("guard-a", Some(&url), tmp.path(), 100);
    let b = clone("guard-b", &a);
    a.manifest(manifest(N, 1, 0));
    b.manifest(manifest(N, 3, 0));
    assert_eq!(run(&a, &s, &["up", "--yes"]).code, 0);

    // 1. The state is written by someone else while `up` runs.
    a.manifest(manifest(N, 2, 0));
    let before = s.object("guard-state", "demo", "dev.json").unwrap();
    let mut child = command(&a, &s, &["up", "--yes", "--parallel", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_journal(&s, "guard-state", "demo", &mut child);
    // Written at once (boto3 would take longer to start than the run lasts).
    let theirs = String::from_utf8(before.clone()).unwrap().replace("\"serial\": 1", "\"serial\": 7");
    let bucket = s.client("guard-state", "demo");
    block(bucket.put("dev.json", theirs.as_bytes(), skyform_aws::backend::Cond::Any)).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("changed since this command read it"), "{err}");
    assert_eq!(s.object("guard-state", "demo", "dev.json").unwrap(), theirs.as_bytes(), "not overwritten");
    // Put the real state back (as a person would after reading the error).
    s.boto3(&format!(
        "s3.put_object(Bucket='guard-state', Key='demo/dev.json', Body={:?}.encode())",
        String::from_utf8(before).unwrap()
    ));
    // The interrupted run's journal still applies to it: the next `up` replays it and finishes.
    assert_eq!(run(&a, &s, &["up", "--yes"]).code, 0);
    assert_converged(&a, &s, tmp.path(), N, 2, "after the state written behind the lock");

    // 2. The lock is taken from a running `up` by a command on another machine.
    a.manifest(manifest(N, 3, 0));
    let mut child = command(&a, &s, &["up", "--yes", "--parallel", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_journal(&s, "guard-state", "demo", &mut child);
    let state_before = s.object("guard-state", "demo", "dev.json").unwrap();
    let thief = json!({"id": "thief", "path": "s3://guard-state/demo/dev.lock", "pid": 4242, "host": "ci-runner-7",
        "user": "ci", "started": "2026-11-30T12:00:00Z", "command": "skyform up"});
    block(async {
        bucket.delete("dev.lock").await.unwrap();
        let put =
            bucket.put("dev.lock", thief.to_string().as_bytes(), skyform_aws::backend::Cond::Absent).await;
        assert!(put.unwrap().is_some(), "the thief's conditional create succeeds on a free lock");
    });
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("lock on the stack was removed and taken by `skyform up` (pid 4242 on host ci-runner-7"),
        "{err}"
    );
    assert_eq!(
        s.object("guard-state", "demo", "dev.json").unwrap(),
        state_before,
        "the robbed up wrote no state"
    );

    // The other folder is refused, named the holder; `cancel` needs --force for another host.
    let refused = run(&b, &s, &["up", "--yes"]);
    assert_eq!(refused.code, 4, "{}", refused.text());
    assert!(refused.stderr.contains("pid 4242 on host ci-runner-7"), "{}", refused.text());
    let cancel = run(&b, &s, &["cancel"]);
    assert_eq!(cancel.code, 4, "{}", cancel.text());
    assert!(cancel.stderr.contains("skyform cancel --force"), "{}", cancel.text());
    let cancel = run(&b, &s, &["cancel", "--force"]);
    assert_eq!(cancel.code, 0, "{}", cancel.text());
    assert!(
        cancel.stdout.contains("removed the lock of `skyform up` (pid 4242 on host ci-runner-7"),
        "{}",
        cancel.stdout
    );
    // The robbed run's journal is replayed, then the rest is done.
    let up = run(&b, &s, &["up", "--yes"]);
    assert_eq!(up.code, 0, "{}", up.text());
    assert_converged(&b, &s, tmp.path(), N, 3, "after the stolen lock");
}

/// folder → s3 → folder, keeping the history and the sealed secrets; the bucket keeps nothing
/// of the stack once it moved back.
#[test]
fn migrate_folder_to_s3_and_back_keeps_the_history() {
    let s = moto_server();
    s.make_bucket("migrate-state");
    let tmp = TestEnv::new("migrate-cloud");
    let env = folder("migrate", None, tmp.path(), 0);
    for v in 1..=2 {
        env.manifest(manifest(5, v, 0));
        assert_eq!(run(&env, &s, &["up", "--yes"]).code, 0);
    }
    let folder_state = env.read("state/dev.json");
    let url = s.url("migrate-state", "shop");
    let m = run(&env, &s, &["stack", "migrate", "--to", &url]);
    assert_eq!(m.code, 0, "{}", m.text());
    assert!(m.stdout.contains("serial 2, 5 resources, 2 history entries"), "{}", m.stdout);
    assert!(env.read("Skyform.dev.toml").contains(&format!("backend = \"{url}\"")));
    assert!(
        !env.path().join("state/dev.json").exists() && !env.path().join("state/dev.history.jsonl").exists()
    );
    assert_eq!(
        s.object("migrate-state", "shop", "dev.json").unwrap(),
        folder_state.as_bytes(),
        "byte for byte"
    );
    // Work goes on in the bucket.
    env.manifest(manifest(5, 3, 0));
    assert_eq!(run(&env, &s, &["up", "--yes"]).code, 0);
    let history = run(&env, &s, &["stack", "history"]);
    assert_eq!(history.stdout.lines().filter(|l| l.starts_with("serial")).count(), 3, "{}", history.text());
    // Migrating again to where it is, or to a bad URL, changes nothing.
    let same = run(&env, &s, &["stack", "migrate", "--to", &url]);
    assert_ne!(same.code, 0);
    assert!(same.stderr.contains("already keeps its state in s3://migrate-state/shop"), "{}", same.text());
    let bad = run(&env, &s, &["stack", "migrate", "--to", "s3://No_Such/x"]);
    assert!(bad.code != 0 && bad.stderr.contains("is not a bucket name"), "{}", bad.text());

    let back = run(&env, &s, &["stack", "migrate", "--to", "folder"]);
    assert_eq!(back.code, 0, "{}", back.text());
    assert!(back.stdout.contains("serial 3, 5 resources, 3 history entries"), "{}", back.stdout);
    assert_eq!(env.read("state/dev.history.jsonl").lines().count(), 3);
    let state = env.read("state/dev.json");
    assert!(state.contains("\"serial\": 3") && !state.contains(SECRET));
    assert!(
        s.keys("migrate-state", "shop").is_empty(),
        "the bucket keeps nothing: {:?}",
        s.keys("migrate-state", "shop")
    );
    assert_converged(&env, &s, tmp.path(), 5, 3, "back in the folder");
}

/// Bad URLs, a bucket that does not exist and an endpoint nobody listens on: a clear error
/// saying what to fix, and nothing created or written.
#[test]
fn bad_backends_fail_clearly_and_change_nothing() {
    let s = moto_server();
    let tmp = TestEnv::new("bad-cloud");
    let cases = [
        ("s3://Bad_Bucket/x".to_string(), "is not a bucket name"),
        ("gs://bucket/x".to_string(), "only `folder` and `s3://` backends exist"),
        ("s3://bucket/x?colour=red".to_string(), "unknown parameter `colour=red`"),
        (s.url("no-such-bucket", "x"), "aws s3 mb s3://no-such-bucket"),
        ("s3://bucket/x?endpoint=http://127.0.0.1:9&region=us-east-1".to_string(), "cannot reach"),
    ];
    for (url, expect) in cases {
        let env = unkeyed_folder("bad", Some(&url), tmp.path(), 0);
        env.manifest(manifest(3, 1, 0));
        let t = Instant::now();
        let r = run(&env, &s, &["up", "--yes"]);
        assert!(r.code != 0 && r.stderr.contains(expect), "{url}: expected `{expect}`:\n{}", r.text());
        assert!(t.elapsed() < Duration::from_secs(20), "{url}: the error comes quickly ({:?})", t.elapsed());
        assert!(cloud(tmp.path()).is_empty(), "{url}: nothing was created");
        assert!(!env.path().join("state").exists(), "{url}: nothing was written in the folder");
    }
}
