//! S3 as a store for skyform's state (the `s3://BUCKET/PREFIX` backend).
//!
//! Four object calls on one bucket, over the provider's signed, retrying client: GetObject,
//! PutObject with `If-None-Match: *` or `If-Match: ETAG` (S3's conditional writes: a refused
//! precondition answers 412, a conditional write racing another answers 409), DeleteObject and
//! ListObjectsV2 (following continuation tokens). The engine's `ObjectStore` trait is
//! implemented over these by the CLI (`src/cli/backend.rs`), since this crate does not depend on
//! the engine. Requests and uploaded bytes are counted, for the benchmark.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;
use serde_json::{Map, Value};

use crate::config::Settings;
use crate::http::{Aws, Error, Request};
use crate::sigv4::uri_encode;
use crate::xml;

/// A precondition of [`Bucket::put`].
#[derive(Debug, Clone, Copy)]
pub enum Cond<'a> {
    Any,
    Absent,
    Matches(&'a str),
}

/// A bucket and a key prefix.
pub struct Bucket {
    aws: Aws,
    pub bucket: String,
    /// Empty, or ending with `/`.
    prefix: String,
    pub requests: AtomicU64,
    pub bytes_up: AtomicU64,
}

impl Bucket {
    /// `config` is the stack's `[providers.aws]` table; `params` the URL's `region`, `endpoint`
    /// and `profile`, which win over it. Credentials come from [`Settings::resolve`], the
    /// provider's own resolution, so a backend authenticates exactly as the stack's provider.
    pub fn new(
        bucket: &str,
        prefix: &str,
        params: &std::collections::BTreeMap<String, String>,
        config: &Map<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Bucket, String> {
        let mut config = config.clone();
        for (k, v) in params {
            config.insert(k.clone(), Value::String(v.clone()));
        }
        let mut settings = Settings::resolve(&config, env).map_err(|e| e.message)?;
        // A state backend that cannot be reached should say so in seconds, not after eight
        // backed-off attempts.
        settings.max_attempts = settings.max_attempts.min(3);
        let prefix = if prefix.is_empty() { String::new() } else { format!("{}/", prefix.trim_matches('/')) };
        Ok(Bucket {
            aws: Aws::new(settings)?,
            bucket: bucket.to_string(),
            prefix,
            requests: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
        })
    }

    /// Where requests go, for messages.
    pub fn endpoint(&self) -> String {
        self.aws
            .settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.aws.region()))
    }

    fn path(&self, key: &str) -> String {
        let full = format!("{}{key}", self.prefix);
        let encoded: Vec<String> = full.split('/').map(uri_encode).collect();
        format!("/{}/{}", uri_encode(&self.bucket), encoded.join("/"))
    }

    async fn send(&self, req: Request) -> Result<crate::http::Response, Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_up.fetch_add(req.body.len() as u64, Ordering::Relaxed);
        self.aws.send(req).await
    }

    /// The object's bytes and ETag, `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, Error> {
        match self.send(Request::new("s3", Method::GET, self.path(key))).await {
            Ok(r) => {
                let etag = header(&r.headers, "etag");
                Ok(Some((r.body, etag)))
            }
            Err(Error::Api { code, .. }) if code == "NoSuchKey" => Ok(None),
            Err(Error::Api { status: 404, code, message }) if code != "NoSuchBucket" => {
                if code == "NotFound" || code == "HTTP404" {
                    Ok(None)
                } else {
                    Err(Error::Api { status: 404, code, message })
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Puts an object under a precondition: `Ok(Some(etag))`, or `Ok(None)` when the
    /// precondition failed.
    pub async fn put(&self, key: &str, bytes: &[u8], cond: Cond<'_>) -> Result<Option<String>, Error> {
        let mut req = Request::new("s3", Method::PUT, self.path(key));
        req.headers.push(("content-type".into(), "application/octet-stream".into()));
        match cond {
            Cond::Any => {}
            Cond::Absent => req.headers.push(("if-none-match".into(), "*".into())),
            Cond::Matches(e) => req.headers.push(("if-match".into(), e.to_string())),
        }
        req.body = bytes.to_vec();
        match self.send(req).await {
            Ok(r) => Ok(Some(header(&r.headers, "etag"))),
            Err(Error::Api { status: 412 | 409, code, .. })
                if code == "PreconditionFailed"
                    || code == "ConditionalRequestConflict"
                    || code.starts_with("HTTP4") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self.send(Request::new("s3", Method::DELETE, self.path(key))).await {
            Ok(_) => Ok(()),
            Err(Error::Api { code, .. }) if code == "NoSuchKey" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// DeleteObjects, 1,000 keys a request (S3's limit), quietly (only errors are listed).
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        use sha2::Digest;
        for chunk in keys.chunks(1000) {
            let mut body = String::from(
                r#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>"#,
            );
            for k in chunk {
                body.push_str(&format!(
                    "<Object><Key>{}</Key></Object>",
                    xml_escape(&format!("{}{k}", self.prefix))
                ));
            }
            body.push_str("</Delete>");
            let mut req = Request::new("s3", Method::POST, format!("/{}", uri_encode(&self.bucket)));
            req.query = vec![("delete".into(), String::new())];
            req.headers.push(("content-type".into(), "application/xml".into()));
            // DeleteObjects requires an integrity checksum; S3 accepts SHA-256 for Content-MD5.
            let sum = base64::engine::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                sha2::Sha256::digest(body.as_bytes()),
            );
            req.headers.push(("x-amz-checksum-sha256".into(), sum));
            req.headers.push(("x-amz-sdk-checksum-algorithm".into(), "SHA256".into()));
            req.body = body.into_bytes();
            let text = self.send(req).await?.text();
            if let Some(e) = xml::blocks(&text, "Error").first() {
                return Err(Error::Api {
                    status: 200,
                    code: xml::tag(e, "Code").unwrap_or_default(),
                    message: format!(
                        "deleting {}: {}",
                        xml::tag(e, "Key").unwrap_or_default(),
                        xml::tag(e, "Message").unwrap_or_default()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The keys under `prefix` (relative to the bucket's prefix), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let full = format!("{}{prefix}", self.prefix);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = Request::new("s3", Method::GET, format!("/{}", uri_encode(&self.bucket)));
            req.query = vec![("list-type".into(), "2".into()), ("prefix".into(), full.clone())];
            if let Some(t) = &token {
                req.query.push(("continuation-token".into(), t.clone()));
            }
            let text = self.send(req).await?.text();
            for b in xml::blocks(&text, "Contents") {
                if let Some(k) = xml::tag(b, "Key")
                    && let Some(rel) = k.strip_prefix(&self.prefix)
                {
                    keys.push(rel.to_string());
                }
            }
            token = xml::tag(&text, "NextContinuationToken").filter(|t| !t.is_empty());
            if xml::tag(&text, "IsTruncated").as_deref() != Some("true") || token.is_none() {
                break;
            }
        }
        keys.sort();
        Ok(keys)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> String {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}
