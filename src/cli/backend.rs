//! The `s3://` state backend: the aws provider's S3 client behind the engine's
//! [`ObjectStore`] trait. It lives in the CLI for the same reason as the KMS key wrapper
//! (`kms.rs`): the engine has no provider-specific dependency and never reads the environment;
//! the CLI resolves credentials (through the aws provider's own resolution) and injects the
//! store into the project ([`attach`]).
//!
//! `SKYFORM_BACKEND_STATS=FILE` makes the command append one JSON line with the requests it
//! sent to the backend and the bytes it uploaded, when it ends (for the benchmark).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{Error, ErrorKind, Result};
use crate::project::Project;
use crate::state::backend::{BackendUrl, Cond, Object, ObjectStore, Put};

pub struct S3Store {
    url: String,
    parsed: BackendUrl,
    aws: serde_json::Map<String, serde_json::Value>,
    /// Made on first use, so that commands that never touch the state (`config set`) need no
    /// AWS credentials.
    bucket: std::sync::Mutex<Option<Arc<skyform_aws::backend::Bucket>>>,
    /// The runtime to run requests on when called from a thread outside any runtime (the
    /// journal's writer thread).
    handle: tokio::runtime::Handle,
    stats: Option<std::path::PathBuf>,
}

/// Gives the project the opener of `s3://` stores.
pub fn attach(project: Project) -> Project {
    project.with_object_stores(Arc::new(
        |url: &BackendUrl, aws: &serde_json::Map<String, serde_json::Value>| {
            let store: Arc<dyn ObjectStore> = Arc::new(S3Store::open(url, aws)?);
            Ok(store)
        },
    ))
}

impl S3Store {
    pub fn open(url: &BackendUrl, aws: &serde_json::Map<String, serde_json::Value>) -> Result<S3Store> {
        if !matches!(url, BackendUrl::S3 { .. }) {
            return Err(Error::new(ErrorKind::User, format!("`{url}` is not an object store")));
        }
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::new(ErrorKind::Io, "the S3 backend needs the CLI's runtime"))?;
        Ok(S3Store {
            url: url.to_string(),
            parsed: url.clone(),
            aws: aws.clone(),
            bucket: std::sync::Mutex::new(None),
            handle,
            stats: std::env::var_os("SKYFORM_BACKEND_STATS").map(Into::into),
        })
    }

    /// The client, made on first use with the aws provider's resolution of region, credentials
    /// and endpoint (the one function the provider itself uses).
    fn bucket(&self) -> Result<Arc<skyform_aws::backend::Bucket>> {
        let mut slot = self.bucket.lock().unwrap();
        if let Some(b) = &*slot {
            return Ok(b.clone());
        }
        let BackendUrl::S3 { bucket, prefix, params } = &self.parsed else { unreachable!("checked in open") };
        let env = |k: &str| std::env::var(k).ok();
        let made = skyform_aws::backend::Bucket::new(bucket, prefix, params, &self.aws, &env).map_err(|e| {
            Error::user(
                format!("the state backend {} cannot be used: {e}", self.url),
                "the backend authenticates like the aws provider: check [providers.aws] in the stack file \
                 (region, profile, endpoint), the `?region=&endpoint=&profile=` of the backend URL, and \
                 the AWS credentials in the environment",
            )
        })?;
        let made = Arc::new(made);
        *slot = Some(made.clone());
        Ok(made)
    }

    fn block<T, F>(
        &self,
        what: &str,
        key: &str,
        call: impl FnOnce(Arc<skyform_aws::backend::Bucket>) -> F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<T, skyform_aws::http::Error>>,
    {
        let bucket = self.bucket()?;
        let fut = call(bucket.clone());
        let result = match tokio::runtime::Handle::try_current() {
            Ok(h) => tokio::task::block_in_place(|| h.block_on(fut)),
            Err(_) => self.handle.block_on(fut),
        };
        result.map_err(|e| self.error(&bucket, what, key, e))
    }

    fn error(
        &self,
        bucket: &skyform_aws::backend::Bucket,
        what: &str,
        key: &str,
        e: skyform_aws::http::Error,
    ) -> Error {
        use skyform_aws::http::Error as E;
        let target = format!("{}/{key}", self.url.trim_end_matches('/'));
        let hint = match &e {
            E::Api { code, .. } if code == "NoSuchBucket" => format!(
                "create the bucket first (`aws s3 mb s3://{}`), or fix `backend` in Skyform.toml or the stack file",
                bucket.bucket
            ),
            E::Api { .. } if e.is_auth() || matches!(&e, E::Api { status: 403, .. }) => {
                "check the AWS credentials (the backend uses the aws provider's: environment, profile) and that they may read and write the bucket".to_string()
            }
            E::Transport(_) => format!(
                "check the network and the endpoint ({}); the state was not changed",
                bucket.endpoint()
            ),
            _ => "the state was not changed".to_string(),
        };
        Error::new(ErrorKind::Io, format!("state backend: {what} {target}: {e}")).with_hint(hint)
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        let bucket = self.bucket.lock().map(|b| b.clone()).ok().flatten();
        if let (Some(path), Some(bucket)) = (&self.stats, bucket) {
            let line = format!(
                "{{\"requests\":{},\"bytes_up\":{}}}\n",
                bucket.requests.load(Ordering::Relaxed),
                bucket.bytes_up.load(Ordering::Relaxed)
            );
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                let _ = std::io::Write::write_all(&mut f, line.as_bytes());
            }
        }
    }
}

impl ObjectStore for S3Store {
    fn url(&self) -> String {
        self.url.clone()
    }
    fn get(&self, key: &str) -> Result<Option<Object>> {
        Ok(self
            .block("reading", key, |b| async move { b.get(key).await })?
            .map(|(bytes, etag)| Object { bytes, etag }))
    }
    fn put(&self, key: &str, bytes: &[u8], cond: Cond<'_>) -> Result<Put> {
        let cond = match cond {
            Cond::Any => skyform_aws::backend::Cond::Any,
            Cond::Absent => skyform_aws::backend::Cond::Absent,
            Cond::Matches(e) => skyform_aws::backend::Cond::Matches(e),
        };
        Ok(match self.block("writing", key, |b| async move { b.put(key, bytes, cond).await })? {
            Some(etag) => Put::Done { etag },
            None => Put::Refused,
        })
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.block("removing", key, |b| async move { b.delete(key).await })
    }
    fn delete_many(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.block("removing", &keys[0], |b| async move { b.delete_many(keys).await })
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.block("listing", prefix, |b| async move { b.list(prefix).await })
    }
}
