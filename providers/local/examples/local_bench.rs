//! skyform's local cloud against serverless-offline, side by side in one run, plus cold
//! starts and the daemon's peak memory. Driven by `scripts/bench-local.sh`, which installs the
//! peers and builds what this needs:
//!
//! ```text
//! local_bench --daemon-exe PATH --sls-dir DIR [--rust-bootstrap PATH] [--rounds 3]
//!             [--secs 10] [--conns 4] [--cold 5]
//! ```
//!
//! - Throughput: the same trivial Node handler behind `GET /bench`, served by a skyform daemon
//!   (a real process, started as `skyform local daemon` is) and by serverless-offline
//!   (`serverless@3` + `serverless-offline@13` from `--sls-dir/node_modules`, started fresh
//!   for every round, as its own notes say it slows down as its memory grows). Rounds
//!   alternate; each is CONNS keep-alive connections for SECS seconds after a 1 s warm-up, all
//!   driven by the same load generator (below), so both servers are measured the same way.
//! - Cold start: the time from an invocation of a function with no environment (each a newly
//!   deployed function) to its response, through the control API's invoke; median of COLD.
//! - Memory: the daemon's `VmHWM` (peak resident set) from `/proc/PID/status` at the end, and
//!   serverless-offline's at the end of its last round.
//!
//! Everything binds 127.0.0.1 and lives in a fresh temporary folder; every process started here
//! is stopped by its PID (the peer's whole process group) before exit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use skyform_local::client::{self, Client, api_path, function_path};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JS: &str = "exports.handler = async () => ({ statusCode: 200, body: 'ok' });\n";
const PY: &str = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n";

struct Opts {
    daemon_exe: PathBuf,
    sls_dir: PathBuf,
    rust_bootstrap: Option<PathBuf>,
    rounds: usize,
    secs: u64,
    conns: usize,
    cold: usize,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let num = |k: &str, d: u64| get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    Opts {
        daemon_exe: get("--daemon-exe").expect("--daemon-exe PATH (skyform or skyform-local-dev)").into(),
        sls_dir: get("--sls-dir").expect("--sls-dir DIR (with node_modules/serverless-offline)").into(),
        rust_bootstrap: get("--rust-bootstrap").map(PathBuf::from),
        rounds: num("--rounds", 3) as usize,
        secs: num("--secs", 10),
        conns: num("--conns", 4) as usize,
        cold: num("--cold", 5) as usize,
    }
}

/// One load run's figures.
#[derive(Clone, Copy)]
struct Figures {
    rps: f64,
    p50: f64,
    p99: f64,
    requests: usize,
    errors: usize,
}

fn main() {
    let o = opts();
    let dir = std::env::temp_dir().join(format!("skyform-local-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("project/functions/node")).unwrap();
    std::fs::create_dir_all(dir.join("project/functions/py")).unwrap();
    std::fs::write(dir.join("project/functions/node/app.js"), JS).unwrap();
    std::fs::write(dir.join("project/functions/py/app.py"), PY).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let result = rt.block_on(run(&o, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("local_bench: {e}");
        std::process::exit(1);
    }
}

async fn run(o: &Opts, dir: &Path) -> Result<(), String> {
    let project = dir.join("project");
    let c = client::ensure_daemon(&project, Some(&o.daemon_exe)).await.map_err(|e| e.to_string())?;
    println!("skyform daemon: pid {} ({})", c.pid, o.daemon_exe.display());
    let out = bench(o, dir, &project, &c).await;
    // Peak memory before stopping it.
    let hwm = read_kb(c.pid, "VmHWM");
    let _ = c.request("POST", "/v1/shutdown", &[]).await;
    stop_pid(c.pid as i32, false);
    let (sls_hwm, sections) = out?;
    for s in sections {
        println!("{s}");
    }
    println!();
    println!("== memory (peak resident set, VmHWM) ==");
    println!("skyform daemon: {:.1} MB", hwm.unwrap_or(0) as f64 / 1024.0);
    if let Some(kb) = sls_hwm {
        println!(
            "serverless-offline (its node process, end of its last round): {:.1} MB",
            kb as f64 / 1024.0
        );
    }
    Ok(())
}

async fn bench(
    o: &Opts,
    dir: &Path,
    project: &Path,
    c: &Client,
) -> Result<(Option<u64>, Vec<String>), String> {
    let artifacts = project.join(".skyform/local/artifacts");
    let node_hash = skyform_local::artifact::store_dir(&artifacts, &project.join("functions/node"))
        .map_err(|e| e.to_string())?;
    deploy(c, "bench", &node_hash, "app.handler", "nodejs20.x").await?;
    let routes = json!({"routes": [{"route": "GET /bench", "function": "bench"}]});
    let a = c
        .request("PUT", &api_path("dev", "api"), routes.to_string().as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let sky_port =
        a.json()["port"].as_u64().ok_or_else(|| format!("API not deployed: {}", a.message()))? as u16;

    println!(
        "== throughput: trivial Node handler, GET /bench, {} connections x {} s, {} rounds alternating ==",
        o.conns, o.secs, o.rounds
    );
    let mut sky = Vec::new();
    let mut sls = Vec::new();
    let mut sls_hwm = None;
    for round in 1..=o.rounds {
        load(sky_port, o.conns, Duration::from_secs(1)).await;
        let f = load(sky_port, o.conns, Duration::from_secs(o.secs)).await;
        print_figures(&format!("round {round} skyform           "), &f);
        sky.push(f);

        let peer = Sls::start(&o.sls_dir, &dir.join(format!("sls-{round}"))).await?;
        load(peer.port, o.conns, Duration::from_secs(1)).await;
        let f = load(peer.port, o.conns, Duration::from_secs(o.secs)).await;
        sls_hwm = read_kb(peer.child.id(), "VmHWM");
        drop(peer);
        print_figures(&format!("round {round} serverless-offline"), &f);
        sls.push(f);
    }
    let st = c.request("GET", "/v1/status", &[]).await.map_err(|e| e.to_string())?.json();
    let envs = st["functions"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "bench"))
        .map(|f| f["environments"].clone());
    let (a, b) = (median_figures(&sky), median_figures(&sls));
    let mut out = vec![
        String::new(),
        "== throughput medians ==".to_string(),
        format!(
            "skyform:            {:>7.0} req/s  p50 {:.3} ms  p99 {:.3} ms  (environments: {})",
            a.rps,
            a.p50,
            a.p99,
            envs.unwrap_or_default()
        ),
        format!("serverless-offline: {:>7.0} req/s  p50 {:.3} ms  p99 {:.3} ms", b.rps, b.p50, b.p99),
        format!("ratio (skyform / serverless-offline, median req/s): {:.2}x", a.rps / b.rps.max(1e-9)),
    ];
    // Latency of one warm invocation with nothing else in flight.
    load(sky_port, 1, Duration::from_secs(1)).await;
    let one = load(sky_port, 1, Duration::from_secs(o.secs)).await;
    out.push(String::new());
    out.push(format!("== skyform, 1 connection x {} s ==", o.secs));
    out.push(format!(
        "skyform:            {:>7.0} req/s  p50 {:.3} ms  p99 {:.3} ms  ({} requests, {} errors)",
        one.rps, one.p50, one.p99, one.requests, one.errors
    ));

    out.push(String::new());
    out.push(format!(
        "== cold start: invoke a function with no environment -> response (median of {}) ==",
        o.cold
    ));
    let py_hash = skyform_local::artifact::store_dir(&artifacts, &project.join("functions/py"))
        .map_err(|e| e.to_string())?;
    out.push(
        cold(c, "python3.12 (skyform shim)", "py", &py_hash, "app.handler", "python3.12", o.cold).await?,
    );
    if let Some(exe) = &o.rust_bootstrap {
        let h = skyform_local::artifact::store_bootstrap(&artifacts, exe).map_err(|e| e.to_string())?;
        out.push(
            cold(
                c,
                "provided.al2023 (Rust, lambda_runtime)",
                "rust",
                &h,
                "bootstrap",
                "provided.al2023",
                o.cold,
            )
            .await?,
        );
    } else {
        out.push("provided (Rust): skipped, no --rust-bootstrap".into());
    }
    out.push(
        cold(c, "nodejs20.x (skyform shim)", "node", &node_hash, "app.handler", "nodejs20.x", o.cold).await?,
    );
    Ok((sls_hwm, out))
}

async fn deploy(c: &Client, name: &str, hash: &str, handler: &str, runtime: &str) -> Result<(), String> {
    // Default reserved concurrency (10): what a user gets.
    let spec = json!({"code_hash": hash, "handler": handler, "runtime": runtime, "environment": {},
                      "memory": 128, "timeout": 10, "reserved_concurrency": null});
    let a = c
        .request("PUT", &function_path("dev", name), spec.to_string().as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    if a.status != 200 {
        return Err(format!("deploying {name}: {}", a.message()));
    }
    Ok(())
}

async fn cold(
    c: &Client,
    label: &str,
    prefix: &str,
    hash: &str,
    handler: &str,
    runtime: &str,
    n: usize,
) -> Result<String, String> {
    let mut times = Vec::new();
    for i in 0..n.max(1) {
        let name = format!("cold-{prefix}-{i}");
        deploy(c, &name, hash, handler, runtime).await?;
        let t = Instant::now();
        let a = c
            .request("POST", &format!("{}/invoke", function_path("dev", &name)), b"{}")
            .await
            .map_err(|e| e.to_string())?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if a.status != 200 || a.header("x-amz-function-error").is_some() {
            return Err(format!("cold invoke of {name} failed: {}", String::from_utf8_lossy(&a.body)));
        }
        times.push(ms);
        // Its warm process is not needed any more.
        let _ = c.request("DELETE", &function_path("dev", &name), &[]).await;
    }
    let each: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    Ok(format!("{label}: median {:.1} ms  (each: {} ms)", median(&times), each.join(", ")))
}

/// A serverless-offline process (its own process group), stopped by PID when dropped.
struct Sls {
    child: Child,
    port: u16,
}

impl Sls {
    async fn start(sls_dir: &Path, service: &Path) -> Result<Sls, String> {
        std::fs::create_dir_all(service.join("home")).map_err(|e| e.to_string())?;
        let (port, lambda_port) = (free_port(), free_port());
        std::fs::write(service.join("handler.js"), JS).map_err(|e| e.to_string())?;
        std::fs::write(
            service.join("serverless.yml"),
            format!(
                "service: bench\nframeworkVersion: '3'\nprovider:\n  name: aws\n  runtime: nodejs20.x\n  region: us-east-1\n\
                 plugins:\n  - serverless-offline\ncustom:\n  serverless-offline:\n    host: 127.0.0.1\n    httpPort: {port}\n    lambdaPort: {lambda_port}\n\
                 functions:\n  bench:\n    handler: handler.handler\n    events:\n      - httpApi:\n          method: GET\n          path: /bench\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(sls_dir.join("node_modules"), service.join("node_modules"))
            .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(service.join("sls.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("node");
        cmd.arg(sls_dir.join("node_modules/serverless/bin/serverless.js"))
            .arg("offline")
            .current_dir(service)
            .env("HOME", service.join("home"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| format!("cannot start serverless-offline: {e}"))?;
        let sls = Sls { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(200) = get_status(port, "/bench").await {
                return Ok(sls);
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(service.join("sls.log")).unwrap_or_default();
                return Err(format!("serverless-offline did not answer within 60 s:\n{log}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Sls {
    fn drop(&mut self) {
        stop_pid(self.child.id() as i32, true);
        let _ = self.child.wait();
    }
}

/// SIGTERM to `pid` (its process group with `group`), then SIGKILL after 3 s.
fn stop_pid(pid: i32, group: bool) {
    let target = if group { -pid } else { pid };
    // SAFETY: plain syscalls on a pid this program started.
    unsafe { libc::kill(target, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && Path::new(&format!("/proc/{pid}/status")).exists() && !zombie(pid) {
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(target, libc::SIGKILL) };
}

fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

fn read_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn get_status(port: u16, path: &str) -> Result<u16, ()> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|_| ())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|_| ())?;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let head = String::from_utf8_lossy(&buf);
    head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or(())
}

/// CONNS keep-alive connections, each sending `GET /bench` and waiting for the whole answer,
/// for `dur`. A connection the server closes is reopened (and counted as an error).
async fn load(port: u16, conns: usize, dur: Duration) -> Figures {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let req = format!("GET /bench HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            let mut lat = Vec::with_capacity(1 << 16);
            let mut errors = 0;
            let mut buf = vec![0u8; 16 * 1024];
            let mut conn: Option<tokio::net::TcpStream> = None;
            while start.elapsed() < dur {
                let s = match &mut conn {
                    Some(s) => s,
                    None => match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            conn.insert(s)
                        }
                        Err(_) => {
                            errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let t = Instant::now();
                match exchange(s, req.as_bytes(), &mut buf).await {
                    Some(200) => lat.push(t.elapsed()),
                    Some(_) => errors += 1,
                    None => {
                        errors += 1;
                        conn = None;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| {
        if all.is_empty() {
            return f64::NAN;
        }
        all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0
    };
    Figures {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.5),
        p99: pct(0.99),
        requests: all.len(),
        errors,
    }
}

/// Sends one request and reads one response (Content-Length or chunked); its status, or None
/// when the connection failed.
async fn exchange(s: &mut tokio::net::TcpStream, req: &[u8], buf: &mut [u8]) -> Option<u16> {
    s.write_all(req).await.ok()?;
    let mut have = 0;
    loop {
        if have == buf.len() {
            return None; // a response larger than the buffer: not what this measures
        }
        let n = s.read(&mut buf[have..]).await.ok()?;
        if n == 0 {
            return None;
        }
        have += n;
        let Some(end) = find(&buf[..have], b"\r\n\r\n") else { continue };
        let head = std::str::from_utf8(&buf[..end]).ok()?.to_ascii_lowercase();
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        let complete = if head.contains("transfer-encoding: chunked") {
            buf[..have].ends_with(b"0\r\n\r\n")
        } else {
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            have >= end + 4 + len
        };
        if complete {
            return Some(status);
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn print_figures(label: &str, f: &Figures) {
    println!(
        "{label}: {:>7.0} req/s  p50 {:.3} ms  p99 {:.3} ms  ({} requests, {} errors)",
        f.rps, f.p50, f.p99, f.requests, f.errors
    );
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn median_figures(v: &[Figures]) -> Figures {
    let pick = |f: fn(&Figures) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    Figures {
        rps: pick(|f| f.rps),
        p50: pick(|f| f.p50),
        p99: pick(|f| f.p99),
        requests: v.iter().map(|f| f.requests).sum(),
        errors: v.iter().map(|f| f.errors).sum(),
    }
}
