//! A DynamoDB load generator: CONNS keep-alive HTTP/1.1 connections, each sending SigV4-signed
//! requests back to back for SECS seconds; prints completed requests per second. It measures a
//! server's capacity where a boto3 client would measure itself. Driven by
//! `scripts/bench-dynamodb.sh`:
//!
//! ```text
//! ddb_load --port PORT --key KEY --secret SECRET --op put|get|query [--conns 16] [--secs 5]
//! ```
//!
//! The table `bench` (hash `pk` S, range `sk` S) must exist; `get` reads `q`/`q007`, `query`
//! reads partition `q` (100 items), `put` writes new items. Only 127.0.0.1 is reached.

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

/// One signed request (SigV4, service `dynamodb`, region `us-east-1`).
fn request(port: u16, key: &str, secret: &str, op: &str, body: &str) -> Vec<u8> {
    let now = jiff::Timestamp::now();
    let date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let day = &date[..8];
    let host = format!("127.0.0.1:{port}");
    let target = format!("DynamoDB_20120810.{op}");
    let signed = "content-type;host;x-amz-date;x-amz-target";
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:{host}\nx-amz-date:{date}\nx-amz-target:{target}\n\n{signed}\n{}",
        hex(&Sha256::digest(body.as_bytes()))
    );
    let scope = format!("{day}/us-east-1/dynamodb/aws4_request");
    let sts = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let k = hmac(format!("AWS4{secret}").as_bytes(), day);
    let k = hmac(&k, "us-east-1");
    let k = hmac(&k, "dynamodb");
    let k = hmac(&k, "aws4_request");
    let sig = hex(&hmac(&k, &sts));
    format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Date: {date}\r\nX-Amz-Target: {target}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={signed}, Signature={sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one response; `Ok(true)` when the server closes the connection after it (moto's
/// server does after every answer); `Err` when the connection ends or the answer is not 200.
async fn response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
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
            let close = head.contains("\r\nconnection: close");
            buf.drain(..total);
            return if ok { Ok(close) } else { Err(std::io::Error::other(head)) };
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
    let need = |n: &str| arg(&args, n).unwrap_or_else(|| panic!("ddb_load: {n} is required"));
    let port: u16 = need("--port").parse().expect("--port is a number");
    let (key, secret, op) = (need("--key"), need("--secret"), need("--op"));
    let conns: usize = arg(&args, "--conns").and_then(|s| s.parse().ok()).unwrap_or(16);
    let secs: u64 = arg(&args, "--secs").and_then(|s| s.parse().ok()).unwrap_or(5);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (key, secret, op) = (key.clone(), secret.clone(), op.clone());
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
                let (name, body) = match op.as_str() {
                    "put" => (
                        "PutItem",
                        format!(
                            r#"{{"TableName":"bench","Item":{{"pk":{{"S":"p"}},"sk":{{"S":"l{c}-{n}"}},"body":{{"S":"{}"}},"n":{{"N":"42"}}}}}}"#,
                            "x".repeat(200)
                        ),
                    ),
                    "get" => ("GetItem", r#"{"TableName":"bench","Key":{"pk":{"S":"q"},"sk":{"S":"q007"}}}"#.to_string()),
                    _ => (
                        "Query",
                        r#"{"TableName":"bench","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{":p":{"S":"q"}}}"#
                            .to_string(),
                    ),
                };
                let req = request(port, &key, &secret, name, &body);
                let exchange = async {
                    s.write_all(&req).await?;
                    response(&mut s, &mut buf).await
                };
                // A server that stalls a connection ends it (and counts as an error).
                let answered = tokio::time::timeout(Duration::from_secs(10), exchange).await;
                match answered {
                    Ok(Ok(false)) => {}
                    Ok(Ok(true)) => match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                        Ok(new) => {
                            s = new;
                            let _ = s.set_nodelay(true);
                            buf.clear();
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    },
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
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
    for t in tasks {
        let _ = t.await;
    }
    println!("{:.0} {}", n as f64 / elapsed, errors.load(Ordering::Relaxed));
}
