//! An S3 load generator: CONNS keep-alive HTTP/1.1 connections, each sending SigV4-signed
//! (`UNSIGNED-PAYLOAD`) PutObject or GetObject requests back to back for SECS seconds; prints
//! completed requests per second and errors. It measures a server's capacity where a boto3
//! client would measure itself. Driven by `scripts/bench-s3.sh`:
//!
//! ```text
//! s3_load --port PORT --key KEY --secret SECRET --op put|get --size BYTES [--conns 8] [--secs 5]
//! ```
//!
//! The bucket `bench` must exist; `get` first writes the object it then reads. Only 127.0.0.1
//! is reached.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// One signed request (SigV4, service `s3`, region `us-east-1`, unsigned payload).
fn request(port: u16, key: &str, secret: &str, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let now = jiff::Timestamp::now();
    let date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let day = &date[..8];
    let host = format!("127.0.0.1:{port}");
    let signed = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{date}\n\n{signed}\nUNSIGNED-PAYLOAD"
    );
    let scope = format!("{day}/us-east-1/s3/aws4_request");
    let sts = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let k = hmac(format!("AWS4{secret}").as_bytes(), day);
    let k = hmac(&k, "us-east-1");
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    let sig = hex(&hmac(&k, &sts));
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Amz-Date: {date}\r\nX-Amz-Content-Sha256: UNSIGNED-PAYLOAD\r\nAuthorization: AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={signed}, Signature={sig}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Reads one response; `Err` when the connection ends or the answer is not 200.
async fn response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 65536];
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let ok = head.starts_with("http/1.1 200");
            buf.drain(..total);
            return if ok { Ok(()) } else { Err(std::io::Error::other(head)) };
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let need = |n: &str| arg(&args, n).unwrap_or_else(|| panic!("s3_load: {n} is required"));
    let port: u16 = need("--port").parse().expect("--port is a number");
    let (key, secret, op) = (need("--key"), need("--secret"), need("--op"));
    let size: usize = need("--size").parse().expect("--size is a number of bytes");
    let conns: usize = arg(&args, "--conns").and_then(|s| s.parse().ok()).unwrap_or(8);
    let secs: u64 = arg(&args, "--secs").and_then(|s| s.parse().ok()).unwrap_or(5);
    let body = Arc::new(vec![b'x'; size]);
    let target = format!("/bench/get-{size}");
    if op == "get" {
        let mut s =
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("s3_load: cannot connect");
        let mut buf = Vec::new();
        s.write_all(&request(port, &key, &secret, "PUT", &target, &body)).await.unwrap();
        response(&mut s, &mut buf).await.expect("s3_load: cannot write the object to read");
    }
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (key, secret, op, body, target) =
            (key.clone(), secret.clone(), op.clone(), body.clone(), target.clone());
        let (done, errors, counting, stop) = (done.clone(), errors.clone(), counting.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = s.set_nodelay(true);
            let mut buf = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let req = if op == "put" {
                    request(port, &key, &secret, "PUT", &format!("/bench/l{c}-{n}"), &body)
                } else {
                    request(port, &key, &secret, "GET", &target, &[])
                };
                if s.write_all(&req).await.is_err() || response(&mut s, &mut buf).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if counting.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // A 1 s warm-up, then SECS seconds counted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    counting.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let n = done.load(Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    // A connection stuck on an answer it cannot frame must not hold the run.
    for t in tasks {
        t.abort();
    }
    println!("{:.0} {}", n as f64 / elapsed, errors.load(Ordering::Relaxed));
}
