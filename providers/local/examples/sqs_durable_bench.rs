//! Durable `SendMessage`s per second from N concurrent raw HTTP/1.1 clients (keep-alive, one
//! request in flight each) against the local cloud's AWS endpoint: every answer means the
//! message was synced to the queue's log, so this measures group commit.
//!
//! Usage: `sqs_durable_bench PORT ACCESS_KEY SECRET QUEUE_URL CONCURRENCY SECONDS`
//! Prints `{"ops", "secs", "ops_per_sec", "p50_ms", "p99_ms"}`. The request is signed once
//! (SigV4 has no nonce; the server verifies the signature of every request all the same).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn request(port: u16, key: &str, secret: &str, url: &str) -> Vec<u8> {
    let body = serde_json::json!({"QueueUrl": url, "MessageBody": "x".repeat(100)}).to_string();
    let host = format!("127.0.0.1:{port}");
    let date = skyform_local::aws::sigv4::amz_date_now();
    let headers = [
        ("host", host.as_str()),
        ("x-amz-date", date.as_str()),
        ("x-amz-target", "AmazonSQS.SendMessage"),
        ("content-type", "application/x-amz-json-1.0"),
    ];
    let auth = skyform_local::aws::sigv4::authorization(
        "POST",
        "/",
        &headers,
        body.as_bytes(),
        key,
        secret,
        "us-east-1",
        "sqs",
    );
    let mut r = format!("POST / HTTP/1.1\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(&body);
    r.into_bytes()
}

/// Reads one response; answers its status.
async fn read_response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> u16 {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                buf.drain(..end + 4 + len);
                return status;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [port, key, secret, url, conc, secs] = a.as_slice() else {
        eprintln!("usage: sqs_durable_bench PORT ACCESS_KEY SECRET QUEUE_URL CONCURRENCY SECONDS");
        std::process::exit(2);
    };
    let port: u16 = port.parse().unwrap();
    let conc: usize = conc.parse().unwrap();
    let secs: f64 = secs.parse().unwrap();
    let req = request(port, key, secret, url);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
            s.set_nodelay(true).unwrap();
            let mut buf = Vec::new();
            let mut lat = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                s.write_all(&req).await.expect("write");
                let status = read_response(&mut s, &mut buf).await;
                assert_eq!(status, 200, "SendMessage failed");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let took = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "ops": lat.len(),
            "secs": (took * 1000.0).round() / 1000.0,
            "ops_per_sec": (lat.len() as f64 / took).round(),
            "p50_ms": (pct(0.5) * 100.0).round() / 100.0,
            "p99_ms": (pct(0.99) * 100.0).round() / 100.0,
        })
    );
}
