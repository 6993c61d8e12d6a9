//! The small HTTP/1.1 plumbing shared by the control API, the Runtime API listeners and the
//! gateways: a server loop on hyper, and response helpers.
//!
//! Every accepted socket gets TCP_NODELAY: without it a request/response ping-pong stalls
//! about 40 ms on delayed ACKs. hyper writes a response's head and a full body with one
//! vectored write.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub type Body = Full<Bytes>;
pub type Resp = Response<Body>;

/// Serves `listener` until `shutdown` changes or its sender is dropped; then the listener is
/// closed and every open connection is dropped.
pub fn spawn_server<F, Fut>(
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
    handler: F,
) -> JoinHandle<()>
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stop = shutdown.clone();
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(_) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let handler = handler.clone();
            let mut stop_conn = shutdown.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let fut = handler(req, peer);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = stop_conn.changed() => {}
                }
            });
        }
    })
}

pub fn response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    r
}

pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Resp {
    response(status, "application/json", serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec()))
}

/// `{"message": ...}`, the shape of API Gateway's and the control API's errors.
pub fn message(status: StatusCode, message: &str) -> Resp {
    json(status, &serde_json::json!({ "message": message }))
}

/// Reads a whole request body.
pub async fn body_bytes(
    req: Request<Incoming>,
) -> Result<(hyper::http::request::Parts, Bytes), hyper::Error> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await?.to_bytes();
    Ok((parts, bytes))
}

/// Percent-decodes a URL component (`+` is left alone: paths do not use it for spaces).
pub fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = |c: u8| (c as char).to_digit(16);
            if let (Some(a), Some(c)) = (h(b[i + 1]), h(b[i + 2])) {
                out.push((a * 16 + c) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a path segment (everything but unreserved characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_round_trip() {
        assert_eq!(percent_decode(&percent_encode("a/b c%")), "a/b c%");
        assert_eq!(percent_decode("x%2"), "x%2");
        assert_eq!(percent_decode("%41%42"), "AB");
    }
}
