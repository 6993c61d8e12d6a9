//! Measures the gateway's latency and throughput against a warm trivial function.
//!
//! ```text
//! CARGO_TARGET_DIR=target/h-local cargo run --release -p skyform-local --example gateway_bench -- [RUNTIME] [SECONDS] [CONNECTIONS]
//! ```
//!
//! RUNTIME is `python3` (default), `nodejs`, or a path to a `provided` bootstrap binary. It runs
//! the daemon in-process (on its own thread), deploys one function behind `GET /bench`, warms it
//! up, then keeps CONNECTIONS keep-alive connections busy for SECONDS and prints requests/s and
//! latency percentiles. Client, daemon and functions share the machine's cores.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use skyform_local::client::{self, api_path, function_path};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PY: &str = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n";
const JS: &str = "exports.handler = async () => ({ statusCode: 200, body: 'ok' });\n";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = args.first().cloned().unwrap_or_else(|| "python3".into());
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let conns: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);

    let dir = std::env::temp_dir().join(format!("skyform-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("fn")).unwrap();
    let (rt_name, handler) = match runtime.as_str() {
        "python3" => {
            std::fs::write(dir.join("fn/app.py"), PY).unwrap();
            ("python3", "app.handler")
        }
        "nodejs" => {
            std::fs::write(dir.join("fn/app.js"), JS).unwrap();
            ("nodejs", "app.handler")
        }
        exe => {
            std::fs::copy(exe, dir.join("fn/bootstrap")).unwrap();
            ("provided", "bootstrap")
        }
    };
    let d = dir.clone();
    std::thread::spawn(move || skyform_local::daemon_main(d));

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let c = loop {
            if let Some(c) = client::Client::find(&skyform_local::layout::Layout::new(&dir)).await {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // BENCH_CONCURRENCY sets the function's reserved concurrency (default: CONNECTIONS).
        let concurrency: usize =
            std::env::var("BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(conns);
        let hash = skyform_local::artifact::store_dir(&dir.join(".skyform/local/artifacts"), &dir.join("fn"))
            .unwrap();
        let spec = json!({"code_hash": hash, "handler": handler, "runtime": rt_name, "environment": {},
                          "memory": 128, "timeout": 3, "reserved_concurrency": concurrency});
        let a = c.request("PUT", &function_path("dev", "bench"), spec.to_string().as_bytes()).await.unwrap();
        assert_eq!(a.status, 200, "{}", a.message());
        let routes = json!({"routes": [{"route": "GET /bench", "function": "bench"}]});
        let a = c.request("PUT", &api_path("dev", "api"), routes.to_string().as_bytes()).await.unwrap();
        let port = a.json()["port"].as_u64().unwrap() as u16;

        // Warm every environment.
        run(port, conns, Duration::from_secs(1)).await;
        let (lat, elapsed) = run(port, conns, Duration::from_secs(secs)).await;
        report(&runtime, conns, &lat, elapsed);
        let st = c.request("GET", "/v1/status", &[]).await.unwrap().json();
        println!("environments: {}", st["functions"][0]["environments"]);
        c.request("POST", "/v1/shutdown", &[]).await.unwrap();
    });
    std::thread::sleep(Duration::from_millis(300));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run(port: u16, conns: usize, dur: Duration) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.set_nodelay(true).unwrap();
            // BENCH_PATH=/nope measures the gateway alone (a 404 never reaches a function).
            let path = std::env::var("BENCH_PATH").unwrap_or_else(|_| "/bench".into());
            let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            let mut buf = vec![0u8; 4096];
            let mut lat = Vec::new();
            while start.elapsed() < dur {
                let t = Instant::now();
                s.write_all(req.as_bytes()).await.unwrap();
                let mut have = 0;
                loop {
                    let n = s.read(&mut buf[have..]).await.unwrap();
                    assert!(n > 0, "connection closed");
                    have += n;
                    if let Some(end) = find(&buf[..have], b"\r\n\r\n") {
                        let head = std::str::from_utf8(&buf[..end]).unwrap();
                        assert!(
                            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 404"),
                            "{head}"
                        );
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if have >= end + 4 + len {
                            break;
                        }
                    }
                }
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, start.elapsed())
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn report(runtime: &str, conns: usize, lat: &[Duration], elapsed: Duration) {
    let mut l: Vec<Duration> = lat.to_vec();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "runtime={runtime} connections={conns} requests={} req/s={:.0} p50={:.3}ms p90={:.3}ms p99={:.3}ms max={:.3}ms",
        l.len(),
        l.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    let _ = Path::new("");
}
