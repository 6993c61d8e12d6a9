//! Buckets: the S3 REST API on the AWS endpoint, over an object store on disk (`kill -9`-safe
//! at once, fsynced within about a second), with bucket notifications that invoke functions.
//!
//! - [`s3`]: the S3 operations, served through the `s3s` crate, which parses S3's requests
//!   (path-style `/BUCKET/KEY` and virtual-hosted-style `BUCKET.localhost:PORT`), verifies
//!   SigV4 (headers, presigned URLs with `X-Amz-Expires`, `aws-chunked` streaming payloads,
//!   signed or unsigned with trailing checksums) and writes S3's XML and errors. We chose it
//!   over writing the protocol by hand: those are exactly the parts where a hand-written
//!   server drifts from what today's SDKs send.
//! - [`store`]: objects on disk, one file per object named by the hash of its key; a multipart
//!   object's parts stay the files they were uploaded as.
//! - [`flush`]: the background fsync of what the store wrote (or none: `SKYFORM_LOCAL_SYNC=always`).
//! - [`spare`]: temporary files made ahead and replaced objects freed, off a write's path.
//! - [`events`]: notifications, an fsynced outbox, delivery to functions.
//!
//! The endpoint hands a request to [`Buckets::serve`] when [`is_s3`] says it is for S3.
//! The control API's `PUT`/`GET`/`DELETE /v1/stacks/{stack}/buckets/{name}` and
//! `/v1/stacks/{stack}/bucket-notifications/{name}` ([`Buckets::control`]) serve the
//! provider's `local:Bucket` and `local:BucketNotification`.

pub mod events;
pub mod flush;
pub mod md5_lanes;
pub mod s3;
pub mod spare;
pub mod store;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::aws::{Credentials, FunctionLookup};
use crate::http::{self, Resp};

pub struct Buckets {
    pub store: store::Store,
    pub events: Arc<events::Events>,
    pub port: u16,
    service: std::sync::OnceLock<s3s::service::S3Service>,
}

/// Whether a request on the AWS endpoint is for S3: signed for service `s3` (header or
/// presigned query), sent to `BUCKET.localhost`, or an unsigned request that no other service
/// on the endpoint takes (S3 answers it `AccessDenied`).
pub fn is_s3<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    if let Some(s) = crate::aws::sigv4::scope_service(h) {
        return s == "s3";
    }
    // SigV2 (`AWS KEY:SIGNATURE`) is S3's alone.
    if h.get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("AWS "))
    {
        return true;
    }
    let query = req.uri().query().unwrap_or("");
    if query.split('&').any(|p| {
        let l = p.to_ascii_lowercase();
        l.starts_with("x-amz-credential=")
            && (l.contains("%2fs3%2faws4_request") || l.contains("/s3/aws4_request"))
    }) {
        return true;
    }
    let host = h.get(hyper::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    if host.ends_with(".localhost") {
        return true;
    }
    h.get(hyper::header::AUTHORIZATION).is_none()
        && h.get("x-amz-target").is_none()
        && *req.method() != Method::POST
        && !req.uri().path().starts_with("/2015-03-31/")
}

/// The bucket name of the `local:Bucket` resource `name`: lowercased, characters S3 does not
/// allow replaced by `-`, trimmed to 63, padded to 3.
pub fn bucket_name_for(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    while s.contains("..") {
        s = s.replace("..", ".");
    }
    s.truncate(63);
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    let mut s = if s.is_empty() { "bucket".to_string() } else { s };
    while s.len() < 3 {
        s.push('0');
    }
    s
}

impl Buckets {
    /// Loads the buckets under `.skyform/local/buckets/` and the notifications; the deliverer
    /// starts with [`Buckets::start`].
    pub fn load(
        root: &Path,
        functions: Arc<dyn FunctionLookup>,
        credentials: &Credentials,
        port: u16,
    ) -> std::io::Result<Arc<Buckets>> {
        let store = store::Store::open(&root.join("buckets"))?;
        let events = Arc::new(events::Events::load(root, functions)?);
        let this = Arc::new(Buckets { store, events, port, service: std::sync::OnceLock::new() });
        let mut b = s3s::service::S3ServiceBuilder::new(s3::LocalS3(this.clone()));
        b.set_auth(s3::LocalAuth {
            access_key_id: credentials.access_key_id.clone(),
            secret_access_key: credentials.secret_access_key.clone(),
        });
        b.set_host(s3::LocalHost);
        b.set_validation(s3::Validation);
        let _ = this.service.set(b.build());
        Ok(this)
    }

    /// Starts delivering bucket events (what the outbox holds from before, then new ones).
    pub fn start(&self) {
        self.events.spawn();
    }

    /// Serves one S3 request.
    pub async fn serve(&self, req: Request<Incoming>) -> Resp {
        let service = self.service.get().expect("set in load");
        // s3s may answer (an error such as `NoSuchUpload`) without reading the request's body.
        // The unread bytes must not stay on a keep-alive connection, where they would be taken
        // for the start of the next request (seen as a `SignatureDoesNotMatch` on it): such an
        // answer closes the connection.
        let read_to_end =
            Arc::new(std::sync::atomic::AtomicBool::new(hyper::body::Body::is_end_stream(req.body())));
        let tracked =
            req.map(|body| s3s::Body::http_body(Tracked { inner: body, read_to_end: read_to_end.clone() }));
        match service.call(tracked).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                if !read_to_end.load(std::sync::atomic::Ordering::SeqCst) {
                    parts
                        .headers
                        .insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
                }
                match body.collect().await {
                    Ok(b) => hyper::Response::from_parts(parts, http_body_util::Full::new(b.to_bytes())),
                    Err(e) => http::message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("cannot read the object: {e}"),
                    ),
                }
            }
            Err(e) => http::response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>{}</Message></Error>",
                    crate::aws::xml_escape(&format!("{e:?}"))
                ),
            ),
        }
    }

    fn bucket_view(&self, b: &store::BucketData) -> Value {
        let info = b.info.lock().unwrap().clone();
        json!({
            "bucket_name": info.name,
            "arn": format!("arn:aws:s3:::{}", info.name),
            "force_destroy": info.force_destroy,
            "versioning": info.versioning,
            "objects": b.len(),
        })
    }

    /// `PUT`/`GET`/`DELETE /v1/stacks/{stack}/buckets/{name}` (`{name}` is the bucket name;
    /// `PUT` takes `{force_destroy, versioning}`) and `.../bucket-notifications/{name}`.
    pub async fn control(&self, method: &Method, kind: &str, stack: &str, name: &str, body: &Bytes) -> Resp {
        if kind == "bucket-notifications" {
            return self.control_notification(method, stack, name, body).await;
        }
        if let Err(m) = store::valid_bucket_name(name) {
            return http::message(StatusCode::BAD_REQUEST, &m);
        }
        match *method {
            Method::PUT => {
                let v: Value = serde_json::from_slice(body).unwrap_or(json!({}));
                let force_destroy = v["force_destroy"].as_bool().unwrap_or(false);
                let versioning = v["versioning"].as_bool().unwrap_or(false);
                let b = match self.store.bucket(name) {
                    Some(b) => b,
                    None => {
                        let info = store::BucketInfo {
                            name: name.into(),
                            created_ms: store::now_ms(),
                            owner: Some((stack.into(), name.into())),
                            force_destroy,
                            versioning,
                        };
                        match self.store.create_bucket(info) {
                            Ok(b) => b,
                            Err(e) => {
                                return http::message(
                                    StatusCode::INTERNAL_SERVER_ERROR,
                                    &format!("cannot make the bucket: {e:?}"),
                                );
                            }
                        }
                    }
                };
                let mut info = b.info.lock().unwrap().clone();
                info.force_destroy = force_destroy;
                info.versioning = versioning;
                info.owner = Some((stack.into(), name.into()));
                if let Err(e) = self.store.set_info(&b, info) {
                    return http::message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("cannot save the bucket: {e}"),
                    );
                }
                http::json(StatusCode::OK, &self.bucket_view(&b))
            }
            Method::GET => match self.store.bucket(name) {
                Some(b) => http::json(StatusCode::OK, &self.bucket_view(&b)),
                None => http::message(StatusCode::NOT_FOUND, &format!("no bucket `{name}`")),
            },
            Method::DELETE => {
                let Some(b) = self.store.bucket(name) else {
                    return http::message(StatusCode::NOT_FOUND, &format!("no bucket `{name}`"));
                };
                let force = b.info.lock().unwrap().force_destroy;
                match self.store.delete_bucket(name, force) {
                    Ok(()) => http::json(StatusCode::OK, &json!({"deleted": true})),
                    Err(store::StoreError::BucketNotEmpty) => http::message(
                        StatusCode::CONFLICT,
                        &format!(
                            "BucketNotEmpty: bucket `{name}` holds {} objects; empty it (`aws s3 rm s3://{name} --recursive`), or set `force_destroy(true)` and run `up` before deleting",
                            b.len()
                        ),
                    ),
                    Err(store::StoreError::NoSuchBucket) => {
                        http::message(StatusCode::NOT_FOUND, &format!("no bucket `{name}`"))
                    }
                    Err(e) => http::message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("cannot delete the bucket: {e:?}"),
                    ),
                }
            }
            _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    async fn control_notification(&self, method: &Method, stack: &str, name: &str, body: &Bytes) -> Resp {
        let view = |s: &events::NotificationSpec| json!({"id": format!("{stack}/{name}"), "spec": s});
        match *method {
            Method::PUT => {
                let spec: events::NotificationSpec = match serde_json::from_slice(body) {
                    Ok(s) => s,
                    Err(e) => {
                        return http::message(StatusCode::BAD_REQUEST, &format!("bad notification: {e}"));
                    }
                };
                if let Err(m) = spec.validate() {
                    return http::message(StatusCode::BAD_REQUEST, &m);
                }
                if self.store.bucket(&spec.bucket).is_none() {
                    return http::message(StatusCode::NOT_FOUND, &format!("no bucket `{}`", spec.bucket));
                }
                match self.events.put(stack, name, spec.clone()).await {
                    Ok(()) => http::json(StatusCode::OK, &view(&spec)),
                    Err(e) => http::message(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot save: {e}")),
                }
            }
            Method::GET => match self.events.get(stack, name) {
                Some(s) => http::json(StatusCode::OK, &view(&s)),
                None => http::message(StatusCode::NOT_FOUND, &format!("no bucket notification `{name}`")),
            },
            Method::DELETE => match self.events.delete(stack, name).await {
                Ok(true) => http::json(StatusCode::OK, &json!({"deleted": true})),
                Ok(false) => {
                    http::message(StatusCode::NOT_FOUND, &format!("no bucket notification `{name}`"))
                }
                Err(e) => http::message(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot save: {e}")),
            },
            _ => http::message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    /// Buckets with their object counts, pending events and durability, for `GET /v1/status`.
    pub fn status(&self) -> Value {
        let buckets: Vec<Value> = self
            .store
            .names()
            .iter()
            .filter_map(|n| self.store.bucket(n))
            .map(|b| json!({"name": b.name(), "objects": b.len()}))
            .collect();
        json!({
            "buckets": buckets,
            "notifications": self.events.list().iter().map(|((s, n), spec)| json!({"stack": s, "name": n, "spec": spec})).collect::<Vec<_>>(),
            "pending_events": self.events.pending(),
            "durability": if self.store.syncs_always() { "fsync before every answer" } else { "kill -9-safe, fsynced within a second" },
        })
    }
}

/// A request body that records whether it was read to its end.
struct Tracked {
    inner: Incoming,
    read_to_end: Arc<std::sync::atomic::AtomicBool>,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read_to_end.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_become_valid_bucket_names() {
        for (n, want) in [("uploads", "uploads"), ("My_Photos", "my-photos"), ("a", "a00"), ("__", "bucket")]
        {
            assert_eq!(bucket_name_for(n), want);
            assert!(store::valid_bucket_name(&bucket_name_for(n)).is_ok());
        }
    }

    #[test]
    fn s3_requests_are_recognised() {
        let r = |f: fn(hyper::http::request::Builder) -> hyper::http::request::Builder| {
            f(Request::builder()).body(()).unwrap()
        };
        assert!(is_s3(&r(|b| {
            b.uri("/b/k").header("authorization", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x")
        })));
        assert!(!is_s3(&r(|b| {
            b.method("POST").uri("/").header("authorization", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x")
        })));
        assert!(is_s3(&r(|b| b.uri("/b/k?X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"))));
        assert!(is_s3(&r(|b| b.uri("/k").header("host", "bkt.localhost:4566"))));
        assert!(is_s3(&r(|b| b.uri("/b/k"))));
        assert!(is_s3(&r(|b| b.method("PUT").uri("/b/k").header("authorization", "AWS AKID:c2lnbmF0dXJl"))));
        assert!(!is_s3(&r(|b| b
            .method("POST")
            .uri("/")
            .header("x-amz-target", "DynamoDB_20120810.PutItem"))));
    }
}
