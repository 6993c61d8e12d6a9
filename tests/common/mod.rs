//! A sealed test environment: a temporary project, a clean process environment, and helpers to
//! run the real `skyform` binary and normalise what it prints for snapshots.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub mod copy;
pub mod example;

pub struct TestEnv {
    pub dir: tempdir::TempDir,
}

/// A minimal temporary directory (removed on drop), to avoid a dependency for one feature.
pub mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNTER: AtomicU64 = AtomicU64::new(0);

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> TempDir {
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let base =
                std::env::var_os("SKYFORM_TEST_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
            let p = base.join(format!("skyform-{prefix}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("create temp dir");
            TempDir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn skyform_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_skyform"))
}

/// The folder holding the workspace's binaries (the fake provider lives there).
pub fn bin_dir() -> PathBuf {
    let dir = skyform_exe().parent().expect("bin dir").to_path_buf();
    let fake = dir.join("skyform-provider-fake");
    assert!(
        fake.exists(),
        "the fake provider is not built at {}; run the tests with `cargo test --workspace` \
         (or `cargo build -p skyform-provider-fake` first)",
        fake.display()
    );
    dir
}

impl TestEnv {
    /// A project whose program prints `manifest.json`.
    pub fn new(name: &str) -> TestEnv {
        let env = TestEnv { dir: tempdir::TempDir::new(name) };
        env.write("Skyform.toml", "name = \"demo\"\nprogram = \"cat manifest.json\"\n");
        env.write("Skyform.dev.toml", "provider = \"local\"\n");
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    /// Writes the manifest the program prints.
    pub fn manifest(&self, resources: Value) {
        self.manifest_with_outputs(resources, serde_json::json!({}));
    }

    pub fn manifest_with_outputs(&self, resources: Value, outputs: Value) {
        let m = serde_json::json!({
            "manifest": 1, "project": "demo", "stack": "dev", "resources": resources, "outputs": outputs
        });
        self.write("manifest.json", &serde_json::to_string_pretty(&m).unwrap());
    }

    /// Configures the fake provider for the `dev` stack (store in the project, plus `extra`).
    pub fn fake_config(&self, extra: &str) {
        self.write(
            "Skyform.dev.toml",
            &format!(
                "provider = \"local\"\n\n[providers.fake]\nstore = \"{}\"\n{extra}\n",
                self.store().display()
            ),
        );
    }

    pub fn store(&self) -> PathBuf {
        self.path().join("cloud")
    }

    /// The fake cloud's resources: name → count of live copies.
    pub fn store_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(self.store()) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) != Some("json") {
                    continue;
                }
                let v: Value = match std::fs::read(&p).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                    Some(v) => v,
                    None => continue,
                };
                let name = v["name"].as_str().unwrap_or("?").to_string();
                *out.entry(name).or_insert(0) += 1;
            }
        }
        out
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(skyform_exe());
        cmd.args(args).current_dir(self.path()).env_clear();
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
        cmd.env("PATH", path).env("HOME", self.path()).env("USER", "tester");
        for k in ["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("run skyform");
        Run::from(out, self.path())
    }

    /// Runs with extra environment variables (`SKYFORM_PASSPHRASE`, ...).
    pub fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run skyform"), self.path())
    }

    pub fn state(&self) -> Value {
        serde_json::from_str(&self.read("state/dev.json")).unwrap()
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output, dir: &Path) -> Run {
        let norm = |b: &[u8]| normalize(&String::from_utf8_lossy(b), dir);
        Run { code: out.status.code().unwrap_or(-1), stdout: norm(&out.stdout), stderr: norm(&out.stderr) }
    }

    /// Everything the user saw, for snapshots.
    pub fn text(&self) -> String {
        format!("exit: {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, 0, "expected success:\n{}", self.text());
        self
    }
}

/// Replaces what changes between runs: the temp dir, durations, ids, lineages, pids, times.
pub fn normalize(text: &str, dir: &Path) -> String {
    let mut s = text.replace(&dir.display().to_string(), "[PROJECT]");
    let rules: &[(&str, &str)] = &[
        // Signs of life for waits over a second (how long a build takes varies), and the notice
        // naming the interpreter that runs when the runtime's version is not installed.
        (r"(?m)^… .*\n", ""),
        (r"(?m)^warning: \S+ is not installed here; the local cloud runs it with .*\n", ""),
        (r"\(\d+\.\d+s\)", "(Ns)"),
        (r"Duration: \d+\.\d+s", "Duration: Ns"),
        (r"\b[0-9a-f]{32}\b", "[LINEAGE]"),
        (r"\b[0-9a-f]{16}\b", "[ID16]"),
        (r"-[0-9a-f]{8}\b", "-[ID]"),
        (r"pid \d+", "pid [PID]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[TIME]"),
        (r"host [^ )]+", "host [HOST]"),
        (r"\d+ms", "[N]ms"),
    ];
    for (pat, rep) in rules {
        s = regex_lite_replace(&s, pat, rep);
    }
    s
}

fn regex_lite_replace(s: &str, pat: &str, rep: &str) -> String {
    regex::Regex::new(pat).unwrap().replace_all(s, rep).to_string()
}

/// A state file with volatile values replaced, for snapshots.
pub fn normalize_state(text: &str, dir: &Path) -> String {
    normalize(text, dir)
}

/// Stops the project's local cloud when a test ends, however it ends.
pub struct StopDaemon<'a>(pub &'a TestEnv);

impl Drop for StopDaemon<'_> {
    fn drop(&mut self) {
        let _ = self.0.command(&["local", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// The peers venv (boto3, the AWS CLI, moto): `SKYFORM_PEERS_VENV`, or made by
/// `tests/peers/setup.sh` on first use.
pub fn peers_venv() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Ok(v) = std::env::var("SKYFORM_PEERS_VENV")
        && Path::new(&v).join("bin/python").exists()
    {
        return v;
    }
    let out = Command::new("bash").arg(root.join("tests/peers/setup.sh")).output().unwrap();
    assert!(out.status.success(), "tests/peers/setup.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
