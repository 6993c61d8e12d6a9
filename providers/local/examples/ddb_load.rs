//! A DynamoDB load generator: CONNS keep-alive HTTP/1.1 connections, each sending SigV4-signed
//! requests back to back for SECS seconds; prints completed requests per second, the number of
//! connections that failed, and every request answered (warm-up included: what to divide a
//! server's CPU time by). It measures a server's capacity where a boto3 client would measure
//! itself. Driven by `scripts/bench-dynamodb.sh`:
//!
//! It shares the machine's cores with the server it measures, so it spends little: each request
//! is distinct, dated and signed on its own (its own body hash and signature, which the server
//! verifies), but what an SDK derives once (the day's signing key) is derived once here too, and
//! buffers are reused.
//!
//! ```text
//! ddb_load --port PORT --key KEY --secret SECRET --op put|get|query [--conns 16] [--secs 5]
//! ```
//!
//! The table `bench` (hash `pk` S, range `sk` S) must exist; `get` reads `q`/`q007`, `query`
//! reads partition `q` (100 items), `put` writes new items. Only 127.0.0.1 is reached.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Lower-case hex of `b`, appended to `out`.
fn hex_into(out: &mut Vec<u8>, b: &[u8]) {
    const H: &[u8; 16] = b"0123456789abcdef";
    for x in b {
        out.push(H[(x >> 4) as usize]);
        out.push(H[(x & 15) as usize]);
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m
}

/// Signs requests as an SDK does (SigV4, service `dynamodb`, region `us-east-1`), each with
/// its own body hash, date and signature; what an SDK derives once (the day's signing key,
/// the second's date string) is derived once here too, so the generator spends little of
/// the CPU it shares with the server.
struct Signer {
    key: String,
    secret: String,
    host: String,
    /// The second the date strings are for, `X-Amz-Date`, and the day's signing key (an HMAC
    /// keyed with it, cloned for each request).
    second: u64,
    date: String,
    day_key: Option<(String, Hmac<Sha256>)>,
    /// Reused buffers.
    canonical: Vec<u8>,
    sts: Vec<u8>,
}

impl Signer {
    fn new(port: u16, key: &str, secret: &str) -> Signer {
        Signer {
            key: key.to_string(),
            secret: secret.to_string(),
            host: format!("127.0.0.1:{port}"),
            second: u64::MAX,
            date: String::new(),
            day_key: None,
            canonical: Vec::with_capacity(512),
            sts: Vec::with_capacity(256),
        }
    }

    /// One signed request for operation `op` with `body`, written into `out` (cleared first).
    fn request(&mut self, op: &str, body: &[u8], out: &mut Vec<u8>) {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        if secs != self.second {
            self.second = secs;
            let ts = jiff::Timestamp::from_second(secs as i64).unwrap();
            self.date = ts.strftime("%Y%m%dT%H%M%SZ").to_string();
            let day = &self.date[..8];
            if self.day_key.as_ref().is_none_or(|(d, _)| d != day) {
                let k =
                    hmac(format!("AWS4{}", self.secret).as_bytes(), day.as_bytes()).finalize().into_bytes();
                let k = hmac(&k, b"us-east-1").finalize().into_bytes();
                let k = hmac(&k, b"dynamodb").finalize().into_bytes();
                let k = hmac(&k, b"aws4_request").finalize().into_bytes();
                self.day_key =
                    Some((day.to_string(), <Hmac<Sha256> as KeyInit>::new_from_slice(&k).unwrap()));
            }
        }
        let date = self.date.as_str();
        let day = &date[..8];
        let host = self.host.as_str();
        let signed = "content-type;host;x-amz-date;x-amz-target";
        let c = &mut self.canonical;
        c.clear();
        c.extend_from_slice(b"POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:");
        c.extend_from_slice(host.as_bytes());
        c.extend_from_slice(b"\nx-amz-date:");
        c.extend_from_slice(date.as_bytes());
        c.extend_from_slice(b"\nx-amz-target:DynamoDB_20120810.");
        c.extend_from_slice(op.as_bytes());
        c.extend_from_slice(b"\n\n");
        c.extend_from_slice(signed.as_bytes());
        c.push(b'\n');
        hex_into(c, &Sha256::digest(body));
        let sts = &mut self.sts;
        sts.clear();
        sts.extend_from_slice(b"AWS4-HMAC-SHA256\n");
        sts.extend_from_slice(date.as_bytes());
        sts.push(b'\n');
        sts.extend_from_slice(day.as_bytes());
        sts.extend_from_slice(b"/us-east-1/dynamodb/aws4_request\n");
        hex_into(sts, &Sha256::digest(&*c));
        let mut m = self.day_key.as_ref().unwrap().1.clone();
        m.update(sts);
        let sig = m.finalize().into_bytes();
        out.clear();
        out.extend_from_slice(b"POST / HTTP/1.1\r\nHost: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Date: ");
        out.extend_from_slice(date.as_bytes());
        out.extend_from_slice(b"\r\nX-Amz-Target: DynamoDB_20120810.");
        out.extend_from_slice(op.as_bytes());
        out.extend_from_slice(b"\r\nAuthorization: AWS4-HMAC-SHA256 Credential=");
        out.extend_from_slice(self.key.as_bytes());
        out.push(b'/');
        out.extend_from_slice(day.as_bytes());
        out.extend_from_slice(b"/us-east-1/dynamodb/aws4_request, SignedHeaders=");
        out.extend_from_slice(signed.as_bytes());
        out.extend_from_slice(b", Signature=");
        hex_into(out, &sig);
        out.extend_from_slice(b"\r\nContent-Length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
    }
}

/// The value of header `name` (lower-case) in `head`, compared without regard to case.
fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon].eq_ignore_ascii_case(name).then(|| line[colon + 1..].trim_ascii())
    })
}

/// Reads one response; `Ok(true)` when the server closes the connection after it (moto's
/// server does after every answer); `Err` when the connection ends or the answer is not 200.
async fn response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = &buf[..end];
            let len: usize = header(head, b"content-length")
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = &buf[..end];
            let ok = head.starts_with(b"HTTP/1.1 200");
            let close = header(head, b"connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
            if !ok {
                return Err(std::io::Error::other(String::from_utf8_lossy(head).into_owned()));
            }
            buf.drain(..total);
            return Ok(close);
        }
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
    let all = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (key, secret, op) = (key.clone(), secret.clone(), op.clone());
        let (done, all, errors, counting, stop) =
            (done.clone(), all.clone(), errors.clone(), counting.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = s.set_nodelay(true);
            let mut buf = Vec::new();
            let mut n = 0u64;
            let mut signer = Signer::new(port, &key, &secret);
            let (mut body, mut req) = (Vec::with_capacity(512), Vec::with_capacity(2048));
            let filler = "x".repeat(200);
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                body.clear();
                let name = match op.as_str() {
                    "put" => {
                        // A new item each time: its sort key names the connection and the count.
                        write!(
                            body,
                            r#"{{"TableName":"bench","Item":{{"pk":{{"S":"p"}},"sk":{{"S":"l{c}-{n}"}},"body":{{"S":"{filler}"}},"n":{{"N":"42"}}}}}}"#
                        )
                        .unwrap();
                        "PutItem"
                    }
                    "get" => {
                        body.extend_from_slice(br#"{"TableName":"bench","Key":{"pk":{"S":"q"},"sk":{"S":"q007"}}}"#);
                        "GetItem"
                    }
                    _ => {
                        body.extend_from_slice(
                            br#"{"TableName":"bench","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{":p":{"S":"q"}}}"#,
                        );
                        "Query"
                    }
                };
                signer.request(name, &body, &mut req);
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
                all.fetch_add(1, Ordering::Relaxed);
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
    println!("{:.0} {} {}", n as f64 / elapsed, errors.load(Ordering::Relaxed), all.load(Ordering::Relaxed));
}
