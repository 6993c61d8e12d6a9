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
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(conn_timeout())
                    .serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = stop_conn.changed() => {}
                }
            });
        }
    })
}

/// How long a connection may take to send a request's head (also an idle keep-alive
/// connection's wait for its next request) and each piece of a body: a client that connects
/// and sends nothing, or stops half-way, is disconnected instead of holding a socket (and a
/// file descriptor) for ever. `SKYFORM_LOCAL_CONN_TIMEOUT_SECS` in the daemon's environment
/// changes it (tests).
pub fn conn_timeout() -> std::time::Duration {
    static T: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *T.get_or_init(|| {
        std::env::var("SKYFORM_LOCAL_CONN_TIMEOUT_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map(std::time::Duration::from_secs_f64)
            .unwrap_or(DEFAULT_CONN_TIMEOUT)
    })
}

/// See [`conn_timeout`]. API Gateway and ALB close idle connections after about a minute;
/// SDKs retry a request that meets a connection closed under it.
pub const DEFAULT_CONN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
pub async fn body_bytes(req: Request<Incoming>) -> std::io::Result<(hyper::http::request::Parts, Bytes)> {
    let (parts, mut body) = req.into_parts();
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = next_frame(&mut body).await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
        }
    }
    Ok((parts, buf.freeze()))
}

/// The next piece of a body, or an error when none comes within [`conn_timeout`] (a client
/// that stopped half-way).
async fn next_frame(body: &mut Incoming) -> Option<std::io::Result<hyper::body::Frame<Bytes>>> {
    use http_body_util::BodyExt;
    match tokio::time::timeout(conn_timeout(), body.frame()).await {
        Ok(f) => f.map(|r| r.map_err(std::io::Error::other)),
        Err(_) => Some(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the client sent no more of the body for {} s", conn_timeout().as_secs_f64()),
        ))),
    }
}

/// Reads a whole request body of at most `limit` bytes; `Ok(None)` when it is longer (what
/// was read is dropped, and the connection is closed after the answer, not drained).
pub async fn body_bytes_limited(
    req: Request<Incoming>,
    limit: usize,
) -> std::io::Result<Option<(hyper::http::request::Parts, Bytes)>> {
    let (parts, mut body) = req.into_parts();
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = next_frame(&mut body).await {
        if let Ok(data) = frame?.into_data() {
            if buf.len() + data.len() > limit {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some((parts, buf.freeze())))
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
