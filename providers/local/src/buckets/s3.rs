//! The S3 operations, as s3s's [`S3`] trait over the [`super::store`].
//!
//! s3s has already parsed the request (path- or virtual-hosted-style), verified its SigV4
//! signature (header, presigned query, or `aws-chunked` streaming with signed chunks or
//! unsigned chunks and a trailing checksum) with [`LocalAuth`], and decoded the body; this
//! module applies S3's semantics (preconditions, ranges, checksums, multipart ETags, listing)
//! and emits bucket events ([`super::events`]) before it answers a write.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::Buckets;
use super::events::ObjectEvent;
use super::md5_lanes;
use super::store::{self, BucketData, ObjMeta, StoreError};

/// Verifies signatures with the key pair the local cloud issued.
pub struct LocalAuth {
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[async_trait::async_trait]
impl s3s::auth::S3Auth for LocalAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<s3s::auth::SecretKey> {
        if access_key == self.access_key_id {
            Ok(self.secret_access_key.as_str().into())
        } else {
            Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records: use the credentials `skyform local env` prints"
            ))
        }
    }
}

/// `BUCKET.localhost[:PORT]` is virtual-hosted style; any other host is path style.
pub struct LocalHost;

impl s3s::host::S3Host for LocalHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<s3s::host::VirtualHost<'a>> {
        let name =
            host.rsplit_once(':').map(|(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host });
        let name = name.unwrap_or(host);
        match name.strip_suffix(".localhost") {
            Some(bucket) if !bucket.is_empty() => {
                Ok(s3s::host::VirtualHost::new("localhost").with_bucket(bucket))
            }
            _ => Ok(s3s::host::VirtualHost::new(name)),
        }
    }
}

/// Bucket names are checked here, so that a bad one answers `InvalidBucketName`.
pub struct Validation;

impl s3s::validation::NameValidation for Validation {
    fn validate_bucket_name(&self, name: &str) -> bool {
        store::valid_bucket_name(name).is_ok()
    }
}

/// The S3 implementation.
pub struct LocalS3(pub Arc<Buckets>);

fn internal(e: impl std::fmt::Display) -> S3Error {
    S3Error::with_message(S3ErrorCode::InternalError, e.to_string())
}

fn store_err(e: StoreError) -> S3Error {
    match e {
        StoreError::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        StoreError::BucketExists => s3_error!(
            BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it."
        ),
        StoreError::BucketNotEmpty => {
            s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty")
        }
        StoreError::NoSuchUpload => s3_error!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        StoreError::Precondition(m) => S3Error::with_message(S3ErrorCode::PreconditionFailed, m),
        StoreError::Io(e) => internal(e),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> S3Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

/// Last-Modified at the second, as HTTP dates carry it.
fn timestamp_secs(ms: u64) -> Timestamp {
    timestamp(ms / 1000 * 1000)
}

fn etag(m: &ObjMeta) -> ETag {
    ETag::Strong(m.etag.clone())
}

fn etag_matches(cond: &ETagCondition, m: &ObjMeta) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == m.etag,
    }
}

/// S3's `encoding-type=url` for listings: percent-encoding, `/` kept.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The conditional headers of GET and HEAD, in S3's order of precedence.
fn read_preconditions(
    m: &ObjMeta,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let lm = timestamp_secs(m.last_modified_ms);
    match if_match {
        Some(c) if !etag_matches(c, m) => {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
        Some(_) => {}
        None => {
            if let Some(t) = if_unmodified_since
                && lm > *t
            {
                return Err(s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                ));
            }
        }
    }
    match if_none_match {
        Some(c) if etag_matches(c, m) => return Err(s3_error!(NotModified, "Not Modified")),
        Some(_) => {}
        None => {
            if let Some(t) = if_modified_since
                && lm <= *t
            {
                return Err(s3_error!(NotModified, "Not Modified"));
            }
        }
    }
    Ok(())
}

/// The write preconditions (`If-Match`, `If-None-Match: *`) against the current object.
fn write_check(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
) -> impl FnOnce(Option<&ObjMeta>) -> Result<(), String> {
    move |cur| {
        if let Some(c) = &if_none_match
            && let Some(m) = cur
            && etag_matches(c, m)
        {
            return Err("At least one of the pre-conditions you specified did not hold".into());
        }
        if let Some(c) = &if_match {
            match cur {
                None => return Err("At least one of the pre-conditions you specified did not hold".into()),
                Some(m) if !etag_matches(c, m) => {
                    return Err("At least one of the pre-conditions you specified did not hold".into());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

struct Hashing {
    md5: md5_lanes::Md5Stream,
    sums: s3s::checksum::ChecksumHasher,
}

/// Which checksums to compute: those sent as headers, the SDK's algorithm, the trailer's.
fn hasher(
    algorithm: Option<&ChecksumAlgorithm>,
    given: &Checksum,
    headers: &hyper::HeaderMap,
) -> S3Result<s3s::checksum::ChecksumHasher> {
    let mut h = s3s::checksum::ChecksumHasher::default();
    let trailer =
        headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut want = |name: &str| match name {
        "CRC32" => h.crc32 = Some(Default::default()),
        "CRC32C" => h.crc32c = Some(Default::default()),
        "SHA1" => h.sha1 = Some(Default::default()),
        "SHA256" => h.sha256 = Some(Default::default()),
        "CRC64NVME" => h.crc64nvme = Some(Default::default()),
        _ => {}
    };
    if let Some(a) = algorithm {
        if !["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"].contains(&a.as_str()) {
            return Err(s3_error!(InvalidRequest, "Checksum algorithm provided is unsupported"));
        }
        want(a.as_str());
    }
    for (present, name) in [
        (given.checksum_crc32.is_some() || trailer.contains("crc32") && !trailer.contains("crc32c"), "CRC32"),
        (given.checksum_crc32c.is_some() || trailer.contains("crc32c"), "CRC32C"),
        (given.checksum_sha1.is_some() || trailer.contains("sha1"), "SHA1"),
        (given.checksum_sha256.is_some() || trailer.contains("sha256"), "SHA256"),
        (given.checksum_crc64nvme.is_some() || trailer.contains("crc64nvme"), "CRC64NVME"),
    ] {
        if present {
            want(name);
        }
    }
    Ok(h)
}

/// Compares the computed checksums with the ones sent (headers or trailer).
fn verify_checksums(
    computed: &Checksum,
    mut given: Checksum,
    trailers: Option<s3s::TrailingHeaders>,
) -> S3Result<store::Checksums> {
    if let Some(t) = trailers.and_then(|t| t.take()) {
        let get = |n: &str| t.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        given.checksum_crc32 = given.checksum_crc32.or(get("x-amz-checksum-crc32"));
        given.checksum_crc32c = given.checksum_crc32c.or(get("x-amz-checksum-crc32c"));
        given.checksum_sha1 = given.checksum_sha1.or(get("x-amz-checksum-sha1"));
        given.checksum_sha256 = given.checksum_sha256.or(get("x-amz-checksum-sha256"));
        given.checksum_crc64nvme = given.checksum_crc64nvme.or(get("x-amz-checksum-crc64nvme"));
    }
    for (name, g, c) in [
        ("CRC32", &given.checksum_crc32, &computed.checksum_crc32),
        ("CRC32C", &given.checksum_crc32c, &computed.checksum_crc32c),
        ("SHA1", &given.checksum_sha1, &computed.checksum_sha1),
        ("SHA256", &given.checksum_sha256, &computed.checksum_sha256),
        ("CRC64NVME", &given.checksum_crc64nvme, &computed.checksum_crc64nvme),
    ] {
        if let Some(g) = g
            && Some(g) != c.as_ref()
        {
            return Err(s3_error!(
                BadDigest,
                "The {name} you specified did not match the calculated checksum."
            ));
        }
    }
    Ok(store::Checksums {
        crc32: computed.checksum_crc32.clone(),
        crc32c: computed.checksum_crc32c.clone(),
        sha1: computed.checksum_sha1.clone(),
        sha256: computed.checksum_sha256.clone(),
        crc64nvme: computed.checksum_crc64nvme.clone(),
    })
}

/// A body that could not be read: a chunk whose signature does not verify is S3's
/// `SignatureDoesNotMatch` (s3s's stream error type is private, so it is told by its message).
fn body_error(e: s3s::StdError) -> S3Error {
    let m = e.to_string();
    if m.contains("SignatureMismatch") {
        s3_error!(
            SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided (a chunk of the aws-chunked body)."
        )
    } else {
        S3Error::with_message(S3ErrorCode::IncompleteBody, format!("cannot read the request body: {m}"))
    }
}

/// A body up to this size is held in memory while it arrives and written with its trailer and
/// renamed in one call on the blocking pool; a larger one is written to its temporary file in
/// batches of about this size as it arrives.
const HOLD_UP_TO: usize = 1 << 20;
/// Bodies up to this size are written on the request's own task (see `finish_and_commit`).
const WRITE_INLINE_UP_TO: u64 = 64 << 10;

/// A received body: its size, MD5 and checksums, and its bytes (in a temporary file of the
/// bucket, in memory, or both: the file's part first).
struct Received {
    b: Arc<BucketData>,
    file: Option<(std::path::PathBuf, std::fs::File)>,
    held: Vec<bytes::Bytes>,
    size: u64,
    md5: [u8; 16],
    sums: Checksum,
}

impl Received {
    /// Drops what was received (a refused request).
    fn discard(self) {
        if let Some((p, _)) = self.file {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Writes the held bytes, then `meta`'s trailer, to the temporary file (made if none); the
    /// file, ready to commit. Blocking; the file is removed on error.
    fn finish(self, meta: &ObjMeta) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
        use std::io::Write;
        let (path, mut f) = match self.file {
            Some(pf) => pf,
            None => self.b.temp_file()?,
        };
        let r = (|| {
            for c in &self.held {
                f.write_all(c)?;
            }
            store::finish_file(&mut f, meta)
        })();
        match r {
            Ok(()) => Ok((path, f)),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }
}

/// Appends `chunks` to the temporary file of `b` (made if none), on the blocking pool.
async fn spill(
    b: &Arc<BucketData>,
    file: Option<(std::path::PathBuf, std::fs::File)>,
    chunks: Vec<bytes::Bytes>,
) -> S3Result<(std::path::PathBuf, std::fs::File)> {
    let b = b.clone();
    blocking(move || {
        use std::io::Write;
        let (path, mut f) = match file {
            Some(pf) => pf,
            None => b.temp_file()?,
        };
        for c in &chunks {
            if let Err(e) = f.write_all(c) {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        }
        Ok((path, f))
    })
    .await?
    .map_err(internal)
}

/// Receives `body`, hashing it as it arrives (MD5 and the wanted checksums): held in memory up
/// to [`HOLD_UP_TO`], else streamed into a temporary file of `b` (removed on error).
async fn receive(
    b: &Arc<BucketData>,
    body: Option<StreamingBlob>,
    sums: s3s::checksum::ChecksumHasher,
    content_md5: Option<&str>,
) -> S3Result<Received> {
    let mut h = Hashing { md5: md5_lanes::Md5Stream::new(), sums };
    let mut size = 0u64;
    let mut file = None;
    let mut held = Vec::new();
    let mut held_len = 0usize;
    let result: S3Result<()> = async {
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(body_error)?;
                h.sums.update(&chunk);
                h.md5.update(&chunk).await;
                size += chunk.len() as u64;
                held_len += chunk.len();
                held.push(chunk);
                if held_len > HOLD_UP_TO {
                    file = Some(spill(b, file.take(), std::mem::take(&mut held)).await?);
                    held_len = 0;
                }
            }
        }
        Ok(())
    }
    .await;
    let received = Received { b: b.clone(), file, held, size, md5: [0; 16], sums: Checksum::default() };
    if let Err(e) = result {
        received.discard();
        return Err(e);
    }
    let md5: [u8; 16] = h.md5.finish().await;
    if let Some(given) = content_md5 {
        use base64::Engine;
        let ok = base64::engine::general_purpose::STANDARD.decode(given).map(|d| d == md5).unwrap_or(false);
        if !ok {
            received.discard();
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
    }
    Ok(Received { md5, sums: h.sums.finalize(), ..received })
}

impl LocalS3 {
    fn bucket(&self, name: &str) -> S3Result<Arc<BucketData>> {
        self.0.store.bucket(name).ok_or_else(|| store_err(StoreError::NoSuchBucket))
    }

    /// Records the event (outbox, fsynced) before the write is acknowledged.
    fn emit(
        &self,
        bucket: &str,
        name: &str,
        key: &str,
        object: Option<(u64, &str)>,
        request_id: &str,
    ) -> S3Result<()> {
        self.0
            .events
            .emit(&ObjectEvent { bucket, name, key, object, request_id })
            .map_err(|e| internal(format!("cannot record the bucket event: {e}")))
    }

    /// Writes a received body as `meta` and commits it, in one call on the blocking pool.
    async fn finish_and_commit(
        &self,
        b: &Arc<BucketData>,
        received: Received,
        meta: ObjMeta,
        check: impl FnOnce(Option<&ObjMeta>) -> Result<(), String> + Send + 'static,
    ) -> S3Result<Arc<ObjMeta>> {
        let small = received.file.is_none() && received.size <= WRITE_INLINE_UP_TO;
        let b = b.clone();
        let commit = move || {
            let (path, file) = received.finish(&meta).map_err(internal)?;
            b.commit(&path, file, meta, check).map_err(store_err)
        };
        // A small object held in memory, without an fsync to wait for, is written and renamed
        // here: a few page-cache syscalls cost less than the two thread hand-offs of the
        // blocking pool (most of a 4 KiB PUT's latency on two cores). The rest goes there.
        if small && !crate::durability::sync_always() {
            return commit();
        }
        blocking(commit).await?
    }
}

fn request_id<T>(req: &S3Request<T>) -> String {
    req.headers
        .get("amz-sdk-invocation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(crate::pool::new_request_id)
}

fn meta_from(
    key: String,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    metadata: Option<Metadata>,
) -> ObjMeta {
    // The SDKs send `Content-Encoding: aws-chunked` for streaming uploads; it is not the
    // object's encoding.
    let content_encoding = content_encoding.and_then(|e| {
        let rest: Vec<&str> = e
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!rest.is_empty()).then(|| rest.join(","))
    });
    ObjMeta {
        key,
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        metadata: metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        ..Default::default()
    }
}

fn checksums_out(c: &store::Checksums) -> Checksum {
    Checksum {
        checksum_crc32: c.crc32.clone(),
        checksum_crc32c: c.crc32c.clone(),
        checksum_sha1: c.sha1.clone(),
        checksum_sha256: c.sha256.clone(),
        checksum_crc64nvme: c.crc64nvme.clone(),
        checksum_type: None,
    }
}

fn check_key(key: &str) -> S3Result<()> {
    if key.is_empty() || key.len() > 1024 {
        return Err(s3_error!(KeyTooLongError, "Your key is too long (1 to 1024 bytes)"));
    }
    Ok(())
}

#[async_trait::async_trait]
impl S3 for LocalS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .0
            .store
            .names()
            .into_iter()
            .filter_map(|n| self.0.store.bucket(&n))
            .map(|b| {
                let info = b.info.lock().unwrap().clone();
                Bucket {
                    name: Some(info.name),
                    creation_date: Some(timestamp(info.created_ms)),
                    bucket_region: Some(crate::aws::REGION.into()),
                }
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner { display_name: Some("local".into()), id: Some(crate::aws::ACCOUNT.into()) }),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let name = req.input.bucket;
        store::valid_bucket_name(&name)
            .map_err(|m| S3Error::with_message(S3ErrorCode::InvalidBucketName, m))?;
        let store = self.0.clone();
        let info =
            store::BucketInfo { name: name.clone(), created_ms: store::now_ms(), ..Default::default() };
        blocking(move || store.store.create_bucket(info)).await?.map_err(store_err)?;
        Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{name}")) }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let this = self.0.clone();
        let name = req.input.bucket;
        blocking(move || this.store.delete_bucket(&name, false)).await?.map_err(store_err)?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.bucket(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(crate::aws::REGION.into()),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.bucket(&req.input.bucket)?;
        // us-east-1 answers an empty LocationConstraint.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let rid = request_id(&req);
        let S3Request { input, headers, trailing_headers, .. } = req;
        check_key(&input.key)?;
        let b = self.bucket(&input.bucket)?;
        let given = Checksum {
            checksum_crc32: input.checksum_crc32.clone(),
            checksum_crc32c: input.checksum_crc32c.clone(),
            checksum_sha1: input.checksum_sha1.clone(),
            checksum_sha256: input.checksum_sha256.clone(),
            checksum_crc64nvme: input.checksum_crc64nvme.clone(),
            checksum_type: None,
        };
        let sums = hasher(input.checksum_algorithm.as_ref(), &given, &headers)?;
        let mut received = receive(&b, input.body, sums, input.content_md5.as_deref()).await?;
        let computed = std::mem::take(&mut received.sums);
        let checksums = match verify_checksums(&computed, given, trailing_headers) {
            Ok(c) => c,
            Err(e) => {
                received.discard();
                return Err(e);
            }
        };
        let (size, md5) = (received.size, received.md5);
        let mut meta = meta_from(
            input.key.clone(),
            input.content_type,
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.metadata,
        );
        meta.size = size;
        meta.etag = store::hex(&md5);
        meta.last_modified_ms = store::now_ms();
        meta.checksums = checksums;
        let m = self
            .finish_and_commit(&b, received, meta, write_check(input.if_match, input.if_none_match))
            .await?;
        self.emit(&input.bucket, "ObjectCreated:Put", &m.key, Some((m.size, &m.etag)), &rid)?;
        let c = checksums_out(&m.checksums);
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&m)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_crc64nvme: c.checksum_crc64nvme,
            ..Default::default()
        }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        let key = input.key.clone();
        let conds = (
            input.if_match.clone(),
            input.if_none_match.clone(),
            input.if_modified_since.clone(),
            input.if_unmodified_since.clone(),
        );
        let range = input.range;
        // One call on the blocking pool: open, check, and read a body up to STREAM_ABOVE.
        let (file, m, start, len, content_range, data) = blocking(move || {
            // Only the parts in the range are opened (an unsatisfiable range opens none and
            // fails below).
            let wanted = |size: u64| match &range {
                None => 0..size,
                Some(r) => r.check(size).unwrap_or(0..0),
            };
            let Some((file, m)) = b.open_range(&key, wanted).map_err(internal)? else {
                return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
            };
            read_preconditions(&m, conds.0.as_ref(), conds.1.as_ref(), conds.2.as_ref(), conds.3.as_ref())?;
            let (range, content_range) = match &range {
                None => (0..m.size, None),
                Some(r) => {
                    let rr = r
                        .check(m.size)
                        .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?;
                    let cr = format!("bytes {}-{}/{}", rr.start, rr.end - 1, m.size);
                    (rr, Some(cr))
                }
            };
            let (start, len) = (range.start, range.end - range.start);
            let data =
                if len <= STREAM_ABOVE { Some(file.read_range(start, len).map_err(internal)?) } else { None };
            Ok((file, m, start, len, content_range, data))
        })
        .await??;
        let body = match data {
            Some(data) => StreamingBlob::from(s3s::Body::from(bytes::Bytes::from(data))),
            None => StreamingBlob::wrap(file_stream(std::sync::Arc::new(file), start, len)),
        };
        let whole = content_range.is_none();
        let c = if whole { checksums_out(&m.checksums) } else { Checksum::default() };
        Ok(S3Response::new(GetObjectOutput {
            body: Some(body),
            content_length: Some(len as i64),
            content_range,
            accept_ranges: Some("bytes".into()),
            last_modified: Some(timestamp_secs(m.last_modified_ms)),
            e_tag: Some(etag(&m)),
            content_type: input.response_content_type.or(m.content_type.clone()),
            content_encoding: input.response_content_encoding.or(m.content_encoding.clone()),
            content_disposition: input.response_content_disposition.or(m.content_disposition.clone()),
            content_language: input.response_content_language.or(m.content_language.clone()),
            cache_control: input.response_cache_control.or(m.cache_control.clone()),
            metadata: (!m.metadata.is_empty()).then(|| m.metadata.clone().into_iter().collect()),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_crc64nvme: c.checksum_crc64nvme,
            ..Default::default()
        }))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        let key = input.key.clone();
        // The metadata only: no part file of a multipart object is opened.
        let found = blocking(move || b.open_range(&key, |_| 0..0)).await?.map_err(internal)?;
        let Some((_, m)) = found else {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        };
        read_preconditions(
            &m,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let c = checksums_out(&m.checksums);
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(m.size as i64),
            accept_ranges: Some("bytes".into()),
            last_modified: Some(timestamp_secs(m.last_modified_ms)),
            e_tag: Some(etag(&m)),
            content_type: m.content_type.clone(),
            content_encoding: m.content_encoding.clone(),
            content_disposition: m.content_disposition.clone(),
            content_language: m.content_language.clone(),
            cache_control: m.cache_control.clone(),
            metadata: (!m.metadata.is_empty()).then(|| m.metadata.clone().into_iter().collect()),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_crc64nvme: c.checksum_crc64nvme,
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let rid = request_id(&req);
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        let key = input.key.clone();
        let old = blocking(move || b.delete(&key)).await?.map_err(internal)?;
        if old.is_some() {
            self.emit(&input.bucket, "ObjectRemoved:Delete", &input.key, None, &rid)?;
        }
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let rid = request_id(&req);
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "A DeleteObjects request can name at most 1000 keys"));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in input.delete.objects {
            let b2 = b.clone();
            let key = o.key.clone();
            match blocking(move || b2.delete(&key)).await? {
                Ok(old) => {
                    if old.is_some() {
                        self.emit(&input.bucket, "ObjectRemoved:Delete", &o.key, None, &rid)?;
                    }
                    if !quiet {
                        deleted.push(DeletedObject { key: Some(o.key), ..Default::default() });
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some("InternalError".into()),
                    key: Some(o.key),
                    message: Some(e.to_string()),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        let max = input.max_keys.unwrap_or(1000);
        if max < 0 {
            return Err(s3_error!(InvalidArgument, "max-keys must be a non-negative number"));
        }
        let prefix = input.prefix.clone().unwrap_or_default();
        let after = match (&input.continuation_token, &input.start_after) {
            (Some(t), _) => Some(decode_token(t)?),
            (None, Some(s)) => Some(s.clone()),
            _ => None,
        };
        let (objects, prefixes, truncated, last) =
            b.list(&prefix, input.delimiter.as_deref(), after.as_deref(), max.min(1000) as usize);
        let url = input.encoding_type.as_ref().is_some_and(|e| e.as_str() == "url");
        let enc = |s: &str| if url { url_encode(s) } else { s.to_string() };
        let key_count = (objects.len() + prefixes.len()) as i32;
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(enc(&prefix)),
            delimiter: input.delimiter.as_deref().map(enc),
            max_keys: Some(max),
            key_count: Some(key_count),
            is_truncated: Some(truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: if truncated { last.map(|l| encode_token(&l)) } else { None },
            start_after: input.start_after.as_deref().map(enc),
            encoding_type: input.encoding_type,
            contents: (!objects.is_empty()).then(|| objects.iter().map(|m| object_entry(m, &enc)).collect()),
            common_prefixes: (!prefixes.is_empty())
                .then(|| prefixes.iter().map(|p| CommonPrefix { prefix: Some(enc(p)) }).collect()),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        let max = input.max_keys.unwrap_or(1000).clamp(0, 1000);
        let prefix = input.prefix.clone().unwrap_or_default();
        let (objects, prefixes, truncated, last) =
            b.list(&prefix, input.delimiter.as_deref(), input.marker.as_deref(), max as usize);
        let url = input.encoding_type.as_ref().is_some_and(|e| e.as_str() == "url");
        let enc = |s: &str| if url { url_encode(s) } else { s.to_string() };
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(enc(&prefix)),
            marker: Some(input.marker.as_deref().map(enc).unwrap_or_default()),
            delimiter: input.delimiter.as_deref().map(enc),
            max_keys: Some(max),
            is_truncated: Some(truncated),
            // S3 sends NextMarker only with a delimiter; the SDKs use the last key otherwise.
            next_marker: if truncated && input.delimiter.is_some() { last.as_deref().map(enc) } else { None },
            encoding_type: input.encoding_type,
            contents: (!objects.is_empty()).then(|| objects.iter().map(|m| object_entry(m, &enc)).collect()),
            common_prefixes: (!prefixes.is_empty())
                .then(|| prefixes.iter().map(|p| CommonPrefix { prefix: Some(enc(p)) }).collect()),
            ..Default::default()
        }))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let rid = request_id(&req);
        let input = req.input;
        check_key(&input.key)?;
        let (sb, sk) = match &input.copy_source {
            CopySource::Bucket { bucket, key, .. } => (bucket.to_string(), key.to_string()),
            _ => return Err(s3_error!(NotImplemented, "Only bucket copy sources are supported")),
        };
        let src = self.bucket(&sb)?;
        let dst = self.bucket(&input.bucket)?;
        let replace = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == "REPLACE");
        if sb == input.bucket && sk == input.key && !replace {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let new_meta = replace.then(|| {
            meta_from(
                input.key.clone(),
                input.content_type.clone(),
                input.content_encoding.clone(),
                input.content_disposition.clone(),
                input.content_language.clone(),
                input.cache_control.clone(),
                input.metadata.clone(),
            )
        });
        let conds = (
            input.copy_source_if_match.clone(),
            input.copy_source_if_none_match.clone(),
            input.copy_source_if_modified_since.clone(),
            input.copy_source_if_unmodified_since.clone(),
        );
        let key = input.key.clone();
        let dst2 = dst.clone();
        let m = blocking(move || -> S3Result<Arc<ObjMeta>> {
            let Some((mut file, sm)) = src.open(&sk).map_err(internal)? else {
                return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
            };
            let lm = timestamp_secs(sm.last_modified_ms);
            let failed = || {
                s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
            };
            if conds.0.as_ref().is_some_and(|c| !etag_matches(c, &sm)) {
                return Err(failed());
            }
            if conds.1.as_ref().is_some_and(|c| etag_matches(c, &sm)) {
                return Err(failed());
            }
            if conds.2.as_ref().is_some_and(|t| lm <= *t) || conds.3.as_ref().is_some_and(|t| lm > *t) {
                return Err(failed());
            }
            let (path, mut out) = dst2.temp_file().map_err(internal)?;
            let r = (|| -> std::io::Result<ObjMeta> {
                file.copy_to(&mut out)?;
                let mut m = match new_meta {
                    Some(n) => ObjMeta { checksums: sm.checksums.clone(), ..n },
                    None => ObjMeta { key: key.clone(), ..sm.clone() },
                };
                // The copy is one file holding the data, whatever the source was.
                m.parts = None;
                m.key = key.clone();
                m.size = sm.size;
                m.etag = sm.etag.clone();
                m.last_modified_ms = store::now_ms();
                store::finish_file(&mut out, &m)?;
                Ok(m)
            })();
            match r {
                Ok(m) => dst2.commit(&path, out, m, |_| Ok(())).map_err(store_err),
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    Err(internal(e))
                }
            }
        })
        .await??;
        self.emit(&input.bucket, "ObjectCreated:Copy", &m.key, Some((m.size, &m.etag)), &rid)?;
        let _ = dst;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&m)),
                last_modified: Some(timestamp_secs(m.last_modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        let b = self.bucket(&input.bucket)?;
        let meta = meta_from(
            input.key.clone(),
            input.content_type,
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.metadata,
        );
        let alg = input.checksum_algorithm.clone();
        let algs = alg.as_ref().map(|a| a.as_str().to_string());
        let info = blocking(move || b.create_upload(meta, algs)).await?.map_err(internal)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(info.id),
            checksum_algorithm: alg,
            ..Default::default()
        }))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let S3Request { input, headers, trailing_headers, .. } = req;
        let b = self.bucket(&input.bucket)?;
        if !(1..=10000).contains(&input.part_number) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let (b2, id, key) = (b.clone(), input.upload_id.clone(), input.key.clone());
        blocking(move || b2.upload(&id, &key)).await?.map_err(store_err)?;
        let given = Checksum {
            checksum_crc32: input.checksum_crc32.clone(),
            checksum_crc32c: input.checksum_crc32c.clone(),
            checksum_sha1: input.checksum_sha1.clone(),
            checksum_sha256: input.checksum_sha256.clone(),
            checksum_crc64nvme: input.checksum_crc64nvme.clone(),
            checksum_type: None,
        };
        let sums = hasher(input.checksum_algorithm.as_ref(), &given, &headers)?;
        let mut received = receive(&b, input.body, sums, input.content_md5.as_deref()).await?;
        let computed = std::mem::take(&mut received.sums);
        let checksums = match verify_checksums(&computed, given, trailing_headers) {
            Ok(c) => c,
            Err(e) => {
                received.discard();
                return Err(e);
            }
        };
        let (size, md5) = (received.size, received.md5);
        let meta = ObjMeta {
            key: input.key.clone(),
            size,
            etag: store::hex(&md5),
            last_modified_ms: store::now_ms(),
            checksums,
            ..Default::default()
        };
        let (b2, id, n, m2) = (b.clone(), input.upload_id.clone(), input.part_number as u32, meta.clone());
        blocking(move || {
            let (path, file) = received.finish(&m2)?;
            b2.commit_part(&id, n, &path, file)
        })
        .await?
        .map_err(store_err)?;
        let c = checksums_out(&meta.checksums);
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&meta)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_crc64nvme: c.checksum_crc64nvme,
            ..Default::default()
        }))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        let (b2, id, key) = (b.clone(), input.upload_id.clone(), input.key.clone());
        let (info, parts) = blocking(move || -> Result<_, StoreError> {
            let info = b2.upload(&id, &key)?;
            Ok((info, b2.parts(&id)?))
        })
        .await?
        .map_err(store_err)?;
        let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
        let max = input.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let after: Vec<_> = parts.into_iter().filter(|p| p.number > marker).collect();
        let truncated = after.len() > max;
        let page: Vec<_> = after.into_iter().take(max).collect();
        let next = page.last().map(|p| p.number as i32);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: Some(marker as i32),
            next_part_number_marker: next,
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            checksum_algorithm: info.checksum_algorithm.map(ChecksumAlgorithm::from),
            parts: Some(
                page.iter()
                    .map(|p| {
                        let c = checksums_out(&p.meta.checksums);
                        Part {
                            part_number: Some(p.number as i32),
                            size: Some(p.meta.size as i64),
                            e_tag: Some(etag(&p.meta)),
                            last_modified: Some(timestamp_secs(p.meta.last_modified_ms)),
                            checksum_crc32: c.checksum_crc32,
                            checksum_crc32c: c.checksum_crc32c,
                            checksum_sha1: c.checksum_sha1,
                            checksum_sha256: c.checksum_sha256,
                            checksum_crc64nvme: c.checksum_crc64nvme,
                        }
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        let uploads = blocking(move || b.uploads()).await?;
        let prefix = input.prefix.clone().unwrap_or_default();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(
                uploads
                    .into_iter()
                    .filter(|u| u.meta.key.starts_with(&prefix))
                    .map(|u| MultipartUpload {
                        key: Some(u.meta.key),
                        upload_id: Some(u.id),
                        initiated: Some(timestamp(u.initiated_ms)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        blocking(move || {
            b.upload(&input.upload_id, &input.key)?;
            b.remove_upload(&input.upload_id)
        })
        .await?
        .map_err(store_err)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let rid = request_id(&req);
        let input = req.input;
        let b = self.bucket(&input.bucket)?;
        let wanted: Vec<(i32, Option<ETag>)> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.part_number.unwrap_or(0), p.e_tag))
            .collect();
        if wanted.is_empty() {
            return Err(s3_error!(MalformedXML, "You must specify at least one part"));
        }
        let check = write_check(input.if_match, input.if_none_match);
        let (b2, id, key) = (b.clone(), input.upload_id.clone(), input.key.clone());
        let m = blocking(move || -> S3Result<Arc<ObjMeta>> {
            let info = b2.upload(&id, &key).map_err(store_err)?;
            let parts = b2.parts(&id).map_err(store_err)?;
            let mut prev = 0;
            let mut chosen = Vec::new();
            for (i, (n, e)) in wanted.iter().enumerate() {
                if *n <= prev {
                    return Err(s3_error!(
                        InvalidPartOrder,
                        "The list of parts was not in ascending order. Parts must be ordered by part number."
                    ));
                }
                prev = *n;
                let invalid = || {
                    s3_error!(
                        InvalidPart,
                        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
                    )
                };
                let p = parts.iter().find(|p| p.number as i32 == *n).ok_or_else(invalid)?;
                if let Some(e) = e
                    && e.value() != p.meta.etag
                {
                    return Err(invalid());
                }
                if i + 1 < wanted.len() && p.meta.size < 5 * 1024 * 1024 {
                    return Err(s3_error!(
                        EntityTooSmall,
                        "Your proposed upload is smaller than the minimum allowed object size."
                    ));
                }
                chosen.push(p.clone());
            }
            let mut md5s = Vec::with_capacity(16 * chosen.len());
            for p in &chosen {
                md5s.extend_from_slice(&hex_decode(&p.meta.etag));
            }
            let mut m = info.meta.clone();
            m.etag = format!("{}-{}", store::hex(&Md5::digest(&md5s)), chosen.len());
            m.last_modified_ms = store::now_ms();
            let list: Vec<(u32, u64)> = chosen.iter().map(|p| (p.number, p.meta.size)).collect();
            b2.complete_upload(&id, &list, m, check).map_err(store_err)
        })
        .await??;
        self.emit(
            &input.bucket,
            "ObjectCreated:CompleteMultipartUpload",
            &m.key,
            Some((m.size, &m.etag)),
            &rid,
        )?;
        let location = format!("http://127.0.0.1:{}/{}/{}", self.0.port, input.bucket, url_encode(&m.key));
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(etag(&m)),
            location: Some(location),
            ..Default::default()
        }))
    }
}

fn object_entry(m: &ObjMeta, enc: &dyn Fn(&str) -> String) -> Object {
    Object {
        key: Some(enc(&m.key)),
        size: Some(m.size as i64),
        e_tag: Some(etag(m)),
        last_modified: Some(timestamp_secs(m.last_modified_ms)),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        ..Default::default()
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

/// Continuation tokens are the last key returned, hex-encoded (opaque to clients, as on S3).
fn encode_token(last: &str) -> String {
    store::hex(last.as_bytes())
}

fn decode_token(t: &str) -> S3Result<String> {
    let bytes = hex_decode(t);
    if bytes.len() * 2 != t.len() {
        return Err(s3_error!(InvalidArgument, "The continuation token provided is incorrect"));
    }
    String::from_utf8(bytes)
        .map_err(|_| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

/// A GetObject body up to this size is read whole (one read, the fastest for small objects); a
/// larger one is streamed in [`STREAM_CHUNK`]s.
const STREAM_ABOVE: u64 = 8 << 20;
/// A streamed body is read from the object's file in chunks of this size as the client takes
/// them, so a GetObject holds at most a chunk or two in memory, whatever the object's size.
const STREAM_CHUNK: u64 = 1 << 20;

/// `len` bytes of `file` from `start`, in [`STREAM_CHUNK`]s read on the blocking pool. The file
/// stays open, so a concurrent overwrite (a rename over it) does not change what is sent.
fn file_stream(
    file: std::sync::Arc<store::ObjData>,
    start: u64,
    len: u64,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Sync + 'static {
    futures::stream::try_unfold((file, start, start + len), |(file, pos, end)| async move {
        if pos >= end {
            return Ok(None);
        }
        let n = (end - pos).min(STREAM_CHUNK);
        let f = file.clone();
        let chunk = tokio::task::spawn_blocking(move || f.read_range(pos, n))
            .await
            .map_err(std::io::Error::other)??;
        Ok(Some((bytes::Bytes::from(chunk), (file, pos + n, end))))
    })
}
