//! A sealed copy of one of `examples/`, run through the real `skyform` binary on the local cloud
//! (stopped on drop), with the AWS CLI of the peers venv pointed at it by `skyform local env`,
//! as the examples' READMEs tell a user to do.
//!
//! The examples' functions import boto3, which Lambda's Python runtime bundles but a machine's
//! `python3` may not have: the venv's `bin` goes first on `PATH`, as for a user with that
//! virtualenv activated. Programs build into `target/e2e-programs`, shared with `local_e2e`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::tempdir::TempDir;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

pub struct Example {
    tmp: TempDir,
    pub venv: String,
}

impl Example {
    /// A copy of `examples/NAME` whose SDK dependency points at this repository's `sdk`.
    pub fn new(name: &str) -> Example {
        let venv = super::peers_venv();
        let tmp = TempDir::new(&format!("e2e-{name}"));
        super::copy::copy_project(&Path::new(REPO).join("examples").join(name), tmp.path());
        let cargo = tmp.path().join("Cargo.toml");
        let text = std::fs::read_to_string(&cargo).unwrap();
        let patched = text.replace("path = \"../../sdk\"", &format!("path = \"{REPO}/sdk\""));
        assert_ne!(text, patched, "examples/{name}/Cargo.toml no longer names ../../sdk");
        std::fs::write(&cargo, patched).unwrap();
        Example { tmp, venv }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `skyform ARGS` in a clean environment: the venv's `bin` first on PATH (its python3 has
    /// boto3), then the caller's PATH and HOME (cargo, rustup), the shared target folder.
    pub fn command(&self, args: &[&str]) -> Command {
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
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "skyform {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A stack output, without its JSON quotes.
    pub fn output(&self, name: &str) -> String {
        self.ok(&["outputs", name]).trim().trim_matches('"').to_string()
    }

    /// Waits (up to 30 s) until `skyform logs FUNCTION` contains `text`; returns the logs.
    #[track_caller]
    pub fn wait_for_log(&self, function: &str, text: &str) -> String {
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

    /// The variables `skyform local env` exports (endpoint, credentials, region).
    pub fn local_env(&self) -> Vec<(String, String)> {
        self.ok(&["local", "env"])
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect()
    }

    /// The venv's AWS CLI (v1, which needs `--endpoint-url` for some services) with
    /// `skyform local env`'s variables and `--endpoint-url`; `--output json` parsed (or
    /// `Value::Null` for commands that print nothing, or text).
    #[track_caller]
    pub fn aws(&self, args: &[&str]) -> (Value, String) {
        let vars = self.local_env();
        let endpoint =
            vars.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL").1.clone();
        let out = Command::new(format!("{}/bin/aws", self.venv))
            .args(args)
            .args(["--endpoint-url", &endpoint, "--output", "json"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.path())
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "aws {args:?}: {}{stdout}", String::from_utf8_lossy(&out.stderr));
        (serde_json::from_str(&stdout).unwrap_or(Value::Null), stdout)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.command(&["local", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// One HTTP/1.1 request to `url` (`http://host:port/path?query`) over a fresh connection:
/// (status, body).
pub fn http(method: &str, url: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http:// url");
    let (authority, target) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let addr = authority.to_socket_addrs().expect("host:port").next().expect("an address");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    (status, body.to_string())
}
