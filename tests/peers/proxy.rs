//! A fault-injecting HTTP proxy in front of moto, shared by the aws provider's own tests
//! (`providers/aws/tests/common`) and the CLI tests and benchmark (`tests/aws_common`), which
//! include this file with `#[path]`.
//!
//! For request number `n` (from 0) with request line and headers `head`, `answer` may return a
//! canned response; otherwise the request goes upstream and `rewrite` may change the raw
//! response. Each connection carries one request: the proxy asks upstream to close, and says
//! `Connection: close` itself. Binds 127.0.0.1 only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A canned answer: status, headers, body.
pub type Canned = (u16, Vec<(&'static str, &'static str)>, String);

pub struct Proxy {
    pub endpoint: String,
    /// How many requests arrived.
    pub seen: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start(
        upstream: &str,
        answer: impl Fn(usize, &str) -> Option<Canned> + Send + Sync + 'static,
        rewrite: impl Fn(&str, Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = upstream.trim_start_matches("http://").to_string();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let hooks = Arc::new((answer, rewrite));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (upstream, hooks) = (upstream.clone(), hooks.clone());
                std::thread::spawn(move || proxy_one(client, n, &upstream, &hooks.0, &hooks.1));
            }
        });
        Proxy { endpoint: format!("http://127.0.0.1:{port}"), seen }
    }
}

fn proxy_one(
    mut client: TcpStream,
    n: usize,
    upstream: &str,
    answer: &dyn Fn(usize, &str) -> Option<Canned>,
    rewrite: &dyn Fn(&str, Vec<u8>) -> Vec<u8>,
) {
    let Ok(read_side) = client.try_clone() else { return };
    let mut reader = BufReader::new(read_side);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.push_str("Connection: close\r\n\r\n");
            break;
        }
        head.push_str(&line);
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    if let Some((status, headers, text)) = answer(n, &head) {
        let mut out =
            format!("HTTP/1.1 {status} Canned\r\nContent-Length: {}\r\nConnection: close\r\n", text.len());
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&text);
        let _ = client.write_all(out.as_bytes());
        return;
    }
    // A dropped client connection is the answer when upstream cannot be reached.
    let Ok(mut up) = TcpStream::connect(upstream) else { return };
    let _ = up.write_all(head.as_bytes());
    let _ = up.write_all(&body);
    let mut reply = Vec::new();
    let _ = up.read_to_end(&mut reply);
    let _ = client.write_all(&rewrite(&head, reply));
}
