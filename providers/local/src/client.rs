//! The control API's client side, used by the provider and by the CLI's `skyform local`,
//! `invoke` and `logs` commands: finds the project's daemon (or starts one) and talks to it.
//!
//! The client is a few lines of HTTP/1.1 over a `TcpStream` (one request per connection):
//! the daemon is on 127.0.0.1 and calls are rare, so a client library would not earn its
//! place.
//!
//! Every call has a deadline ([`STATUS_TIMEOUT`] for the status probe, [`CALL_TIMEOUT`] for
//! the rest, longer for invocations) and its error names the call, the daemon's pid and what
//! to do: the kernel accepts connections for a stopped (`kill -STOP`) or wedged daemon, so
//! without a deadline a client would wait forever for an answer that never comes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http::percent_encode;
use crate::layout::Layout;

/// An error talking to the local cloud, written for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalError {
    pub message: String,
}

impl std::fmt::Display for LocalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LocalError {}

fn err(message: impl Into<String>) -> LocalError {
    LocalError { message: message.into() }
}

/// A connection to a running daemon.
#[derive(Debug, Clone)]
pub struct Client {
    pub port: u16,
    pub pid: u32,
    token: String,
}

/// A control API answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    /// The `message` of an error answer.
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into())
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub fn function_path(stack: &str, name: &str) -> String {
    format!("/v1/stacks/{}/functions/{}", percent_encode(stack), percent_encode(name))
}

pub fn api_path(stack: &str, name: &str) -> String {
    format!("/v1/stacks/{}/apis/{}", percent_encode(stack), percent_encode(name))
}

/// How long the status probe ([`Client::find`]) waits for the daemon: it answers from memory.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any other control call waits (deploys, reads, deletes).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an invocation waits: Lambda's longest timeout (15 minutes) and a margin.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(915);

impl Client {
    /// Connects to the project's daemon if one is running and answers.
    pub async fn find(layout: &Layout) -> Option<Client> {
        Self::probe(layout).await.ok().flatten()
    }

    /// Like [`Client::find`], but tells "no daemon runs" (`Ok(None)`: no `daemon.json`, its
    /// process is gone, or nothing listens) from "a daemon runs and does not answer" (an error
    /// that names it and says what to do).
    pub async fn probe(layout: &Layout) -> Result<Option<Client>, LocalError> {
        let Some(client) = Self::recorded(layout) else { return Ok(None) };
        match client.request_within("GET", "/v1/status", &[], STATUS_TIMEOUT).await {
            Ok(a) if a.status == 200 && a.json()["pid"].as_u64() == Some(client.pid as u64) => {
                Ok(Some(client))
            }
            Ok(_) => Ok(None),
            Err(e) if crate::process_alive(client.pid) && e.message.contains("did not answer") => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// The daemon `daemon.json` and `token` name, without asking it anything.
    pub fn recorded(layout: &Layout) -> Option<Client> {
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.daemon_json()).ok()?).ok()?;
        let token = std::fs::read_to_string(layout.token()).ok()?.trim().to_string();
        Some(Client { port: info["port"].as_u64()? as u16, pid: info["pid"].as_u64()? as u32, token })
    }

    /// Sends one request and reads the answer whole, within [`CALL_TIMEOUT`] (an invocation
    /// within [`INVOKE_TIMEOUT`]).
    pub async fn request(&self, method: &str, path: &str, body: &[u8]) -> Result<Answer, LocalError> {
        let limit =
            if path.ends_with("/invoke") || path.ends_with("/run") { INVOKE_TIMEOUT } else { CALL_TIMEOUT };
        self.request_within(method, path, body, limit).await
    }

    /// [`Client::request`] with its deadline given.
    pub async fn request_within(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        limit: Duration,
    ) -> Result<Answer, LocalError> {
        match tokio::time::timeout(limit, self.exchange(method, path, body)).await {
            Ok(r) => r,
            Err(_) => Err(err(format!(
                "the local cloud daemon (pid {}, port {}) did not answer `{method} {}` within {} s: \
                 it is stopped (kill -STOP) or wedged; `skyform local stop` ends it (it is killed if \
                 it does not stop), and the next command starts a new one",
                self.pid,
                self.port,
                path.split('?').next().unwrap_or(path),
                limit.as_secs()
            ))),
        }
    }

    async fn exchange(&self, method: &str, path: &str, body: &[u8]) -> Result<Answer, LocalError> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| err(format!("cannot reach the local cloud daemon on port {}: {e}", self.port)))?;
        let _ = stream.set_nodelay(true);
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.token,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        let io = async {
            stream.write_all(&req).await?;
            let mut buf = Vec::new();
            stream.read_to_end(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let raw = io.await.map_err(|e| err(format!("the local cloud daemon's answer broke off: {e}")))?;
        parse_answer(&raw).ok_or_else(|| err("the local cloud daemon sent a malformed answer"))
    }
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body)?;
    } else if let Some(len) =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok())
    {
        body.truncate(len);
    }
    Some(Answer { status, headers, body })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end]).ok()?.split(';').next()?.trim(), 16)
                .ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// The program that runs the daemon: `$SKYFORM_EXE` when set (tests point it at
/// `skyform-local-dev`), else this executable. Both take `local daemon --project-dir DIR`.
pub fn daemon_exe() -> Result<PathBuf, LocalError> {
    if let Some(p) = std::env::var_os("SKYFORM_EXE") {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe()
        .map_err(|e| err(format!("cannot find the skyform executable to start the daemon: {e}")))
}

/// Connects to the project's daemon, starting it (detached, in a session of its own, output to
/// `.skyform/local/daemon.log`) when none answers.
/// `exe` runs the daemon (`None`: [`daemon_exe`]).
pub async fn ensure_daemon(project_dir: &Path, exe: Option<&Path>) -> Result<Client, LocalError> {
    let layout = Layout::new(project_dir);
    if let Some(c) = Client::probe(&layout).await? {
        return Ok(c);
    }
    std::fs::create_dir_all(&layout.root)
        .map_err(|e| err(format!("cannot create {}: {e}", layout.root.display())))?;
    let exe = match exe {
        Some(e) => e.to_path_buf(),
        None => daemon_exe()?,
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.daemon_log())
        .map_err(|e| err(format!("cannot open {}: {e}", layout.daemon_log().display())))?;
    let log2 = log.try_clone().map_err(|e| err(e.to_string()))?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("local")
        .arg("daemon")
        .arg("--project-dir")
        .arg(project_dir)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe. A session of its own detaches the daemon from the
    // terminal and the engine's process group, so a Ctrl-C of `skyform up` does not stop it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| err(format!("cannot start the local cloud daemon `{}`: {e}", exe.display())))?;
    let started = std::time::Instant::now();
    loop {
        if let Some(c) = Client::find(&layout).await {
            // Reap the child when it exits, so it never lingers as a zombie of ours.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            return Ok(c);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Exit code 3: another daemon won the race; it will answer shortly.
            if status.code() != Some(3) {
                return Err(err(format!(
                    "the local cloud daemon exited ({status}); see {}:\n{}",
                    layout.daemon_log().display(),
                    tail(&layout.daemon_log(), 10)
                )));
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(err(format!(
                "the local cloud daemon did not answer within 20 s; see {}",
                layout.daemon_log().display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
