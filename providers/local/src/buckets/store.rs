//! The object store behind the S3 API: one folder per bucket under `.skyform/local/buckets/`.
//!
//! Object keys are arbitrary strings (`../a`, spaces, unicode, 1024 bytes), so a key never
//! becomes a path: an object lives in `objects/<sha256(key) hex>`, and its key and metadata
//! travel inside the file, after the data (`data | header JSON | u32 LE header length |
//! "SKYOBJ01"`). One file holds both, so one `rename` replaces data and metadata together.
//!
//! Writes are atomic: the new object is written to `tmp/` and renamed over the old one before
//! the write is acknowledged, so an acknowledged write survives `kill -9` of the daemon (its
//! bytes are the kernel's). A reader opens one file and sees the old object or the new one,
//! never half of either; a `kill -9` mid-upload leaves a stray file in `tmp/` (removed at the
//! next start) and the old object, or none. The fsyncs come after the answer, from the
//! [`super::flush`] thread, at most about a second later, so an OS crash or power cut loses at
//! most the writes of the last second or so; with `SKYFORM_LOCAL_SYNC=always`
//! ([`crate::durability`]) the file and the folder are fsynced before the answer, as they
//! always were before. The temporary files are made ahead and a replaced object's file is
//! freed by a background thread ([`super::spare`]): an overwrite swaps the two files
//! atomically and leaves the old one in `tmp/` for that thread to remove.
//!
//! A multipart upload is written once: its parts stay the files they were uploaded as. On
//! completion the upload's folder `uploads/<id>/` is renamed to `data/<id>/` and the object's
//! own file holds only the trailer, listing the parts ([`PartsRef`]); a read opens them all,
//! and finds the object again if they vanished in between (it was replaced). The parts of an
//! object that is replaced or deleted are removed once the change is on disk. At the next
//! start, a `data/<id>/` that no object names goes back to `uploads/` if it still has its
//! `upload.json` (a crash before the completion committed: the upload can be completed again),
//! else it is removed.
//!
//! The keys of a bucket are kept in memory, sorted (built at start from the files' trailers),
//! for listing; reads always take the metadata from the file they open.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::flush::Flusher;
use super::spare::{Displaced, Janitor, Pool};

const MAGIC: &[u8; 8] = b"SKYOBJ01";

/// The flexible checksums S3 keeps with an object (base64, as in the headers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checksums {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
}

/// What S3 returns about an object besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjMeta {
    pub key: String,
    pub size: u64,
    /// Without quotes: the MD5 in hex, or `<md5 of the parts' md5s>-<parts>`.
    pub etag: String,
    pub last_modified_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `x-amz-meta-*`, names lowercased.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub checksums: Checksums,
    /// A completed multipart upload: the data is in its parts' files, not in the object's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<PartsRef>,
}

/// Where a multipart object's data is: `data/<upload>/part-NNNNN`, in order, with their sizes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartsRef {
    pub upload: String,
    /// (part number, size)
    pub parts: Vec<(u32, u64)>,
}

/// An open object's data: one file, or a multipart object's part files in order. The files
/// stay open, so a concurrent overwrite or delete does not change what is read. Opened for a
/// range ([`BucketData::open_range`]), a multipart object holds only the parts in it.
pub struct ObjData {
    /// (file, bytes of data at its start); `None`: a part outside the range it was opened for.
    pieces: Vec<(Option<File>, u64)>,
}

fn not_opened() -> io::Error {
    io::Error::other("a part of the object outside the range it was opened for")
}

impl ObjData {
    /// Reads `len` bytes at `offset` of the object's data.
    pub fn read_range(&self, mut offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        let mut at = 0usize;
        for (f, size) in &self.pieces {
            if at == buf.len() {
                break;
            }
            if offset >= *size {
                offset -= size;
                continue;
            }
            let n = ((size - offset) as usize).min(buf.len() - at);
            let f = f.as_ref().ok_or_else(not_opened)?;
            f.read_exact_at(&mut buf[at..at + n], offset)?;
            at += n;
            offset = 0;
        }
        if at != buf.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "range beyond the object's data"));
        }
        Ok(buf)
    }

    /// Appends the whole data to `dst` (in the kernel where it can).
    pub fn copy_to(&mut self, dst: &mut File) -> io::Result<()> {
        for (f, size) in &mut self.pieces {
            copy_data(f.as_mut().ok_or_else(not_opened)?, *size, dst)?;
        }
        Ok(())
    }
}

/// A bucket's settings (`bucket.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketInfo {
    pub name: String,
    pub created_ms: u64,
    /// `(stack, resource)` when a stack's `local:Bucket` made it; `None` for `CreateBucket`.
    #[serde(default)]
    pub owner: Option<(String, String)>,
    #[serde(default)]
    pub force_destroy: bool,
    #[serde(default)]
    pub versioning: bool,
}

/// A multipart upload in progress (`uploads/<id>/upload.json`): the object's metadata to be.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UploadInfo {
    pub id: String,
    pub initiated_ms: u64,
    pub meta: ObjMeta,
    #[serde(default)]
    pub checksum_algorithm: Option<String>,
}

/// A stored part: its number, size, ETag, checksums, when.
#[derive(Debug, Clone, PartialEq)]
pub struct PartInfo {
    pub number: u32,
    pub meta: ObjMeta,
}

pub struct BucketData {
    pub dir: PathBuf,
    pub info: Mutex<BucketInfo>,
    objects: Mutex<BTreeMap<String, Arc<ObjMeta>>>,
    /// fsync before answering (`SKYFORM_LOCAL_SYNC=always`), else leave it to `flusher`.
    sync: bool,
    flusher: Arc<Flusher>,
    /// Spare temporary files, made ahead by `janitor`.
    spare: Arc<Pool>,
    janitor: Arc<Janitor>,
}

/// Why a store operation did not happen.
#[derive(Debug)]
pub enum StoreError {
    NoSuchBucket,
    BucketExists,
    BucketNotEmpty,
    NoSuchUpload,
    /// The precondition closure refused (its message).
    Precondition(String),
    Io(io::Error),
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

pub struct Store {
    root: PathBuf,
    buckets: RwLock<BTreeMap<String, Arc<BucketData>>>,
    sync: bool,
    flusher: Arc<Flusher>,
    janitor: Arc<Janitor>,
}

pub fn now_ms() -> u64 {
    crate::logs::now_ms()
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn key_file(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The trailer (metadata) that follows an object's data in its file.
pub fn trailer(meta: &ObjMeta) -> io::Result<Vec<u8>> {
    let mut tail = serde_json::to_vec(meta).map_err(io::Error::other)?;
    tail.extend_from_slice(&(tail.len() as u32).to_le_bytes());
    tail.extend_from_slice(MAGIC);
    Ok(tail)
}

/// Appends the trailer (metadata) after the data already in `f` (the commit syncs it, or the
/// flusher does).
pub fn finish_file(f: &mut File, meta: &ObjMeta) -> io::Result<()> {
    f.write_all(&trailer(meta)?)
}

/// Reads the metadata from an object file's trailer.
pub fn read_meta(f: &File) -> io::Result<ObjMeta> {
    let len = f.metadata()?.len();
    if len < 12 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "object file too short"));
    }
    let mut tail = [0u8; 12];
    f.read_exact_at(&mut tail, len - 12)?;
    if &tail[4..] != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "object file without its trailer"));
    }
    let hlen = u32::from_le_bytes(tail[..4].try_into().unwrap()) as u64;
    if hlen + 12 > len {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "object trailer longer than the file"));
    }
    let mut header = vec![0u8; hlen as usize];
    f.read_exact_at(&mut header, len - 12 - hlen)?;
    let meta: ObjMeta = serde_json::from_slice(&header).map_err(io::Error::other)?;
    let data = if meta.parts.is_some() { 0 } else { meta.size };
    if data + hlen + 12 != len {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "object size does not match its file"));
    }
    Ok(meta)
}

fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn part_name(number: u32) -> String {
    format!("part-{number:05}")
}

/// Valid bucket names, by S3's rules: 3–63 characters of lowercase letters, digits, `.` and
/// `-`, starting and ending with a letter or digit, no `..`, not an IP address, none of the
/// reserved prefixes and suffixes.
pub fn valid_bucket_name(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let fail = |why: &str| Err(format!("`{name}` is not a valid bucket name: {why}"));
    if !(3..=63).contains(&b.len()) {
        return fail("it must be 3 to 63 characters long");
    }
    if !b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-') {
        return fail("only lowercase letters, digits, `.` and `-` are allowed");
    }
    if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return fail("it must start and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return fail("`..`, `.-` and `-.` are not allowed");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return fail("it must not look like an IP address");
    }
    if name.starts_with("xn--")
        || name.starts_with("sthree-")
        || name.ends_with("-s3alias")
        || name.ends_with("--ol-s3")
    {
        return fail("the prefixes `xn--`, `sthree-` and suffixes `-s3alias`, `--ol-s3` are reserved");
    }
    Ok(())
}

impl BucketData {
    fn objects_dir(&self) -> PathBuf {
        self.dir.join("objects")
    }
    fn object_path(&self, key: &str) -> PathBuf {
        let h = key_file(key);
        self.objects_dir().join(&h[..2]).join(h)
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }
    pub fn uploads_dir(&self) -> PathBuf {
        self.dir.join("uploads")
    }
    pub fn name(&self) -> String {
        self.info.lock().unwrap().name.clone()
    }
    pub fn is_empty(&self) -> bool {
        self.objects.lock().unwrap().is_empty()
    }
    pub fn len(&self) -> usize {
        self.objects.lock().unwrap().len()
    }

    /// A new, empty temporary file in the bucket's `tmp/` (one made ahead when there is one).
    pub fn temp_file(&self) -> io::Result<(PathBuf, File)> {
        self.janitor.temp_file(&self.spare)
    }

    /// The file now at `path`, held open (`O_PATH`) so that the rename or removal about to drop
    /// its last link does not free its inode while the client waits: see [`Self::release`].
    fn hold(path: &Path) -> Option<File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH).open(path).ok()
    }

    /// Swaps the files at `tmp` and `dest` atomically (`renameat2(RENAME_EXCHANGE)`): `dest`
    /// becomes the new object and `tmp` the old one, whose removal the caller hands on.
    fn exchange(tmp: &Path, dest: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
        };
        let (a, b) = (c(tmp)?, c(dest)?);
        // SAFETY: two NUL-terminated paths that outlive the call.
        let r = unsafe {
            libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE)
        };
        if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    }

    /// Hands a file held by [`Self::hold`] to the background thread, which closes it (and so
    /// frees the replaced or deleted object's inode) off the request's path.
    fn release(&self, held: Option<Displaced>) {
        if let Some(d) = held {
            self.janitor.release(d);
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A file `f` was written: fsynced now when syncing always (before its rename).
    fn sync_file(&self, f: &File) -> io::Result<()> {
        if self.sync { f.sync_all() } else { Ok(()) }
    }

    /// The entries of `dir` changed: fsynced now when syncing always, else by the flusher.
    fn changed_dir(&self, dir: PathBuf) -> io::Result<()> {
        if self.sync {
            fsync_dir(&dir)
        } else {
            self.flusher.dir(dir);
            Ok(())
        }
    }

    /// The parts of a replaced or deleted multipart object: removed once the change that
    /// dropped them is on disk (at once when syncing always: it already is).
    fn drop_data(&self, old: Option<&ObjMeta>, keep: Option<&str>) {
        let Some(pr) = old.and_then(|m| m.parts.as_ref()) else { return };
        if Some(pr.upload.as_str()) == keep || !valid_upload_id(&pr.upload) {
            return;
        }
        let dir = self.data_dir().join(&pr.upload);
        if self.sync {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            self.flusher.garbage(dir);
        }
    }

    /// Puts the finished temporary file `tmp` (open as `file`) in place as `key`, if `check`
    /// accepts the current object (or its absence). When it returns `Ok` the object survives
    /// `kill -9`; it is fsynced before (`SKYFORM_LOCAL_SYNC=always`) or by the flusher after.
    pub fn commit(
        &self,
        tmp: &Path,
        file: File,
        meta: ObjMeta,
        check: impl FnOnce(Option<&ObjMeta>) -> Result<(), String>,
    ) -> Result<Arc<ObjMeta>, StoreError> {
        if let Err(e) = self.sync_file(&file) {
            let _ = std::fs::remove_file(tmp);
            return Err(e.into());
        }
        drop(file);
        let dest = self.object_path(&meta.key);
        let parent = dest.parent().expect("objects/xx").to_path_buf();
        let meta = Arc::new(meta);
        let mut held = None;
        let old = {
            let mut objects = self.objects.lock().unwrap();
            let current = objects.get(&meta.key);
            if let Err(m) = check(current.map(|m| &**m)) {
                let _ = std::fs::remove_file(tmp);
                return Err(StoreError::Precondition(m));
            }
            // Replacing: swap, so that neither the old file's eviction nor ext4's writeback of
            // a file renamed over another happens here. Where the swap fails (the file is
            // gone, or the file system cannot swap) a plain rename follows.
            let swapped = current.is_some() && Self::exchange(tmp, &dest).is_ok();
            if swapped {
                held = Some(Displaced::Moved(tmp.to_path_buf()));
            } else if current.is_some() {
                held = Self::hold(&dest).map(Displaced::Held);
            }
            if !swapped && let Err(e) = std::fs::rename(tmp, &dest) {
                if e.kind() != io::ErrorKind::NotFound {
                    let _ = std::fs::remove_file(tmp);
                    return Err(e.into());
                }
                std::fs::create_dir_all(&parent)?;
                std::fs::rename(tmp, &dest)?;
                self.changed_dir(self.objects_dir())?;
            }
            objects.insert(meta.key.clone(), meta.clone())
        };
        self.release(held);
        if !self.sync {
            self.flusher.file(dest);
        }
        self.changed_dir(parent)?;
        self.drop_data(old.as_deref(), meta.parts.as_ref().map(|p| p.upload.as_str()));
        Ok(meta)
    }

    /// Opens the object `key`: its data, and its metadata read from the file.
    pub fn open(&self, key: &str) -> io::Result<Option<(ObjData, ObjMeta)>> {
        self.open_range(key, |size| 0..size)
    }

    /// Opens the object `key` for the bytes `range(size)` of its data (HeadObject: none; a
    /// ranged GetObject: its range): a multipart object opens only the part files that hold
    /// them, not all of its up to 10,000 parts.
    pub fn open_range(
        &self,
        key: &str,
        range: impl Fn(u64) -> std::ops::Range<u64>,
    ) -> io::Result<Option<(ObjData, ObjMeta)>> {
        let path = self.object_path(key);
        // A multipart object's parts are opened after its file; if they are gone, the object
        // was replaced or deleted in between: look again.
        for _ in 0..8 {
            let f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let meta = read_meta(&f)?;
            if meta.key != key {
                return Err(io::Error::other(format!("object file for `{key}` holds `{}`", meta.key)));
            }
            let Some(pr) = &meta.parts else {
                let size = meta.size;
                return Ok(Some((ObjData { pieces: vec![(Some(f), size)] }, meta)));
            };
            if !valid_upload_id(&pr.upload) {
                return Err(io::Error::other(format!("object `{key}` names a bad upload id")));
            }
            let dir = self.data_dir().join(&pr.upload);
            let want = range(meta.size);
            let mut pieces = Vec::with_capacity(pr.parts.len());
            let mut at = 0u64;
            for (n, size) in &pr.parts {
                let (start, end) = (at, at + size);
                at = end;
                if !(start < want.end && want.start < end) {
                    pieces.push((None, *size));
                    continue;
                }
                match File::open(dir.join(part_name(*n))) {
                    Ok(pf) => pieces.push((Some(pf), *size)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) => return Err(e),
                }
            }
            if pieces.len() == pr.parts.len() {
                return Ok(Some((ObjData { pieces }, meta)));
            }
        }
        Err(io::Error::other(format!("object `{key}` kept changing while it was opened")))
    }

    /// Deletes `key`; the deleted object's metadata, or `None` when there was none.
    pub fn delete(&self, key: &str) -> io::Result<Option<Arc<ObjMeta>>> {
        let path = self.object_path(key);
        let mut held = None;
        let old = {
            let mut objects = self.objects.lock().unwrap();
            if objects.contains_key(key) {
                held = Self::hold(&path).map(Displaced::Held);
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            objects.remove(key)
        };
        self.release(held);
        if old.is_some() {
            self.changed_dir(path.parent().expect("objects/xx").to_path_buf())?;
            self.drop_data(old.as_deref(), None);
        }
        Ok(old)
    }

    /// One page of a listing: keys after `after` starting with `prefix`, keys sharing a
    /// `delimiter` after the prefix rolled into common prefixes; at most `max` entries
    /// (objects and prefixes together). Returns (objects, prefixes, truncated, last entry).
    pub fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max: usize,
    ) -> (Vec<Arc<ObjMeta>>, Vec<String>, bool, Option<String>) {
        use std::ops::Bound;
        let objects = self.objects.lock().unwrap();
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let mut out = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut last = None;
        let mut truncated = false;
        for (k, m) in objects.range((start, Bound::Unbounded)) {
            if !k.starts_with(prefix) {
                break;
            }
            let rolled = delimiter
                .filter(|d| !d.is_empty())
                .and_then(|d| k[prefix.len()..].find(d).map(|i| k[..prefix.len() + i + d.len()].to_string()));
            if let Some(cp) = &rolled
                && (prefixes.last() == Some(cp) || after.is_some_and(|a| a >= cp.as_str()))
            {
                continue;
            }
            if out.len() + prefixes.len() >= max {
                truncated = true;
                break;
            }
            match rolled {
                Some(cp) => {
                    last = Some(cp.clone());
                    prefixes.push(cp);
                }
                None => {
                    last = Some(k.clone());
                    out.push(m.clone());
                }
            }
        }
        (out, prefixes, truncated, last)
    }

    // --- multipart uploads -------------------------------------------------------------

    fn upload_dir(&self, id: &str) -> Option<PathBuf> {
        // Ids are ours (hex); anything else names no upload and never becomes a path.
        valid_upload_id(id).then(|| self.uploads_dir().join(id))
    }

    pub fn create_upload(&self, meta: ObjMeta, checksum_algorithm: Option<String>) -> io::Result<UploadInfo> {
        let id = format!("{:016x}{:016x}", crate::pool::rand_u64(), crate::pool::rand_u64());
        let info = UploadInfo { id: id.clone(), initiated_ms: now_ms(), meta, checksum_algorithm };
        let dir = self.uploads_dir().join(&id);
        std::fs::create_dir_all(&dir)?;
        crate::registry::write_atomic(
            &dir.join("upload.json"),
            &serde_json::to_vec(&info).map_err(io::Error::other)?,
        )?;
        fsync_dir(&self.uploads_dir())?;
        Ok(info)
    }

    pub fn upload(&self, id: &str, key: &str) -> Result<UploadInfo, StoreError> {
        let dir = self.upload_dir(id).ok_or(StoreError::NoSuchUpload)?;
        let bytes = match std::fs::read(dir.join("upload.json")) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NoSuchUpload),
            Err(e) => return Err(e.into()),
        };
        let info: UploadInfo = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
        if info.meta.key != key {
            return Err(StoreError::NoSuchUpload);
        }
        Ok(info)
    }

    pub fn uploads(&self) -> Vec<UploadInfo> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.uploads_dir()) {
            for e in rd.flatten() {
                if let Ok(b) = std::fs::read(e.path().join("upload.json"))
                    && let Ok(i) = serde_json::from_slice::<UploadInfo>(&b)
                {
                    out.push(i);
                }
            }
        }
        out.sort_by(|a, b| (&a.meta.key, a.initiated_ms).cmp(&(&b.meta.key, b.initiated_ms)));
        out
    }

    /// Puts a finished part file (`tmp`, open as `file`) in place: synced like [`Self::commit`].
    pub fn commit_part(&self, id: &str, number: u32, tmp: &Path, file: File) -> Result<(), StoreError> {
        let dir = self.upload_dir(id).ok_or(StoreError::NoSuchUpload)?;
        if let Err(e) = self.sync_file(&file) {
            let _ = std::fs::remove_file(tmp);
            return Err(e.into());
        }
        drop(file);
        let dest = dir.join(part_name(number));
        if let Err(e) = std::fs::rename(tmp, &dest) {
            let _ = std::fs::remove_file(tmp);
            // The upload was completed or aborted meanwhile (its folder is gone).
            return Err(if e.kind() == io::ErrorKind::NotFound {
                StoreError::NoSuchUpload
            } else {
                e.into()
            });
        }
        if !dir.join("upload.json").exists() {
            let _ = std::fs::remove_file(&dest);
            return Err(StoreError::NoSuchUpload);
        }
        if !self.sync {
            self.flusher.file(dest);
        }
        self.changed_dir(dir)?;
        Ok(())
    }

    /// Completes upload `id` as its object, with the parts `chosen` ((number, size), checked
    /// by the caller), if `check` accepts the current object. The parts are not copied: the
    /// upload's folder becomes `data/<id>/` and the object's file names them.
    pub fn complete_upload(
        &self,
        id: &str,
        chosen: &[(u32, u64)],
        mut meta: ObjMeta,
        check: impl FnOnce(Option<&ObjMeta>) -> Result<(), String>,
    ) -> Result<Arc<ObjMeta>, StoreError> {
        let src = self.upload_dir(id).ok_or(StoreError::NoSuchUpload)?;
        let data = self.data_dir();
        let dst = data.join(id);
        if let Err(e) = std::fs::rename(&src, &dst) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e.into());
            }
            if !src.exists() {
                return Err(StoreError::NoSuchUpload);
            }
            // A bucket made before `data/` existed.
            std::fs::create_dir_all(&data)?;
            self.changed_dir(self.dir.clone())?;
            std::fs::rename(&src, &dst)?;
        }
        let undo = |e: StoreError| {
            let _ = std::fs::rename(&dst, &src);
            e
        };
        meta.size = chosen.iter().map(|(_, s)| s).sum();
        meta.parts = Some(PartsRef { upload: id.to_string(), parts: chosen.to_vec() });
        let (tmp, mut f) = self.temp_file().map_err(|e| undo(e.into()))?;
        if let Err(e) = finish_file(&mut f, &meta) {
            let _ = std::fs::remove_file(&tmp);
            return Err(undo(e.into()));
        }
        if self.sync {
            // The parts were synced when uploaded; their new folder's entry is synced here.
            fsync_dir(&self.uploads_dir()).map_err(|e| undo(e.into()))?;
            fsync_dir(&data).map_err(|e| undo(e.into()))?;
        } else {
            // The parts may still be waiting for the flusher under their old names.
            for (n, _) in chosen {
                self.flusher.file(dst.join(part_name(*n)));
            }
            self.flusher.dir(dst.clone());
            self.flusher.dir(self.uploads_dir());
            self.flusher.dir(data);
        }
        let m = self.commit(&tmp, f, meta, check).map_err(undo)?;
        // What the object does not use: the upload's record and the parts left out.
        let _ = std::fs::remove_file(dst.join("upload.json"));
        if let Ok(rd) = std::fs::read_dir(&dst) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let used = name
                    .strip_prefix("part-")
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| chosen.iter().any(|(c, _)| *c == n));
                if !used {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(m)
    }

    pub fn parts(&self, id: &str) -> Result<Vec<PartInfo>, StoreError> {
        let dir = self.upload_dir(id).ok_or(StoreError::NoSuchUpload)?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            let Some(n) = name.strip_prefix("part-").and_then(|n| n.parse::<u32>().ok()) else { continue };
            let f = File::open(e.path())?;
            out.push(PartInfo { number: n, meta: read_meta(&f)? });
        }
        out.sort_by_key(|p| p.number);
        Ok(out)
    }

    pub fn remove_upload(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.upload_dir(id).ok_or(StoreError::NoSuchUpload)?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NoSuchUpload),
            Err(e) => return Err(e.into()),
        }
        self.changed_dir(self.uploads_dir())?;
        Ok(())
    }
}

/// Copies the first `len` bytes of `src` to the end of `dst` (in the kernel where it can:
/// `std::io::copy` uses `copy_file_range` between files).
pub fn copy_data(src: &mut File, len: u64, dst: &mut File) -> io::Result<()> {
    src.seek(SeekFrom::Start(0))?;
    let n = io::copy(&mut src.take(len), dst)?;
    if n != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "object file shorter than its size"));
    }
    Ok(())
}

impl Store {
    /// Loads every bucket under `root` (made if missing); clears leftover temporary files and
    /// the parts no object names. Syncs as [`crate::durability::sync_always`] says.
    pub fn open(root: &Path) -> io::Result<Store> {
        Store::open_with(root, crate::durability::sync_always())
    }

    /// [`Store::open`], fsyncing before every answer when `sync`.
    pub fn open_with(root: &Path, sync: bool) -> io::Result<Store> {
        std::fs::create_dir_all(root)?;
        let flusher = Arc::new(Flusher::start(root));
        let janitor = Arc::new(Janitor::start());
        let mut buckets = BTreeMap::new();
        for e in std::fs::read_dir(root)? {
            let e = e?;
            let dir = e.path();
            let Ok(bytes) = std::fs::read(dir.join("bucket.json")) else { continue };
            let info: BucketInfo = serde_json::from_slice(&bytes).map_err(|err| {
                io::Error::other(format!("{} is not valid: {err}", dir.join("bucket.json").display()))
            })?;
            let _ = std::fs::remove_dir_all(dir.join("tmp"));
            std::fs::create_dir_all(dir.join("tmp"))?;
            std::fs::create_dir_all(dir.join("data"))?;
            let mut objects = BTreeMap::new();
            let mut used = std::collections::BTreeSet::new();
            if let Ok(rd) = std::fs::read_dir(dir.join("objects")) {
                for sub in rd.flatten() {
                    let Ok(files) = std::fs::read_dir(sub.path()) else { continue };
                    for f in files.flatten() {
                        let file = File::open(f.path())?;
                        match read_meta(&file) {
                            Ok(m) => {
                                if let Some(p) = &m.parts {
                                    used.insert(p.upload.clone());
                                }
                                objects.insert(m.key.clone(), Arc::new(m));
                            }
                            Err(err) => eprintln!(
                                "skyform local daemon: ignoring unreadable object file {}: {err}",
                                f.path().display()
                            ),
                        }
                    }
                }
            }
            // Parts that no object names: an upload whose completion never committed (it still
            // has its `upload.json`) goes back to `uploads/`, as if the completion had not been
            // asked; the parts of an object replaced or deleted just before a crash are removed.
            for e in std::fs::read_dir(dir.join("data"))?.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if used.contains(&name) {
                    continue;
                }
                let back = dir.join("uploads").join(&name);
                let restored = valid_upload_id(&name)
                    && e.path().join("upload.json").exists()
                    && std::fs::rename(e.path(), &back).is_ok();
                if !restored {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
            let name = info.name.clone();
            buckets.insert(
                name,
                Arc::new(BucketData {
                    spare: Pool::new(dir.join("tmp")),
                    dir,
                    info: Mutex::new(info),
                    objects: Mutex::new(objects),
                    sync,
                    flusher: flusher.clone(),
                    janitor: janitor.clone(),
                }),
            );
        }
        Ok(Store { root: root.to_path_buf(), buckets: RwLock::new(buckets), sync, flusher, janitor })
    }

    /// Whether writes are fsynced before their answer (`SKYFORM_LOCAL_SYNC=always`).
    pub fn syncs_always(&self) -> bool {
        self.sync
    }

    pub fn bucket(&self, name: &str) -> Option<Arc<BucketData>> {
        self.buckets.read().unwrap().get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.buckets.read().unwrap().keys().cloned().collect()
    }

    /// Makes a bucket; `BucketExists` when the name is taken.
    pub fn create_bucket(&self, info: BucketInfo) -> Result<Arc<BucketData>, StoreError> {
        let mut buckets = self.buckets.write().unwrap();
        if buckets.contains_key(&info.name) {
            return Err(StoreError::BucketExists);
        }
        let dir = self.root.join(&info.name);
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::create_dir_all(dir.join("objects"))?;
        std::fs::create_dir_all(dir.join("uploads"))?;
        std::fs::create_dir_all(dir.join("data"))?;
        crate::registry::write_atomic(
            &dir.join("bucket.json"),
            &serde_json::to_vec(&info).map_err(io::Error::other)?,
        )?;
        fsync_dir(&self.root)?;
        let b = Arc::new(BucketData {
            spare: Pool::new(dir.join("tmp")),
            dir,
            info: Mutex::new(info.clone()),
            objects: Mutex::new(BTreeMap::new()),
            sync: self.sync,
            flusher: self.flusher.clone(),
            janitor: self.janitor.clone(),
        });
        buckets.insert(info.name, b.clone());
        Ok(b)
    }

    /// Rewrites a bucket's settings.
    pub fn set_info(&self, b: &BucketData, info: BucketInfo) -> io::Result<()> {
        crate::registry::write_atomic(
            &b.dir.join("bucket.json"),
            &serde_json::to_vec(&info).map_err(io::Error::other)?,
        )?;
        *b.info.lock().unwrap() = info;
        Ok(())
    }

    /// Deletes a bucket: refused while it holds objects unless `force`.
    pub fn delete_bucket(&self, name: &str, force: bool) -> Result<(), StoreError> {
        let mut buckets = self.buckets.write().unwrap();
        let b = buckets.get(name).ok_or(StoreError::NoSuchBucket)?;
        if !force && !b.is_empty() {
            return Err(StoreError::BucketNotEmpty);
        }
        // bucket.json goes first: a crash half-way leaves a folder that is not loaded.
        std::fs::remove_file(b.dir.join("bucket.json"))?;
        fsync_dir(&self.root)?;
        b.spare.close();
        let _ = std::fs::remove_dir_all(&b.dir);
        buckets.remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.v2", "a1b", &"a".repeat(63)] {
            assert!(valid_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in
            ["ab", "ABC", "a_b", "-ab", "ab-", "a..b", "192.168.1.1", "xn--abc", &"a".repeat(64), "a b"]
        {
            assert!(valid_bucket_name(bad).is_err(), "{bad}");
        }
    }

    fn tmpdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("skyform-store-{:x}", crate::pool::rand_u64()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn put(b: &BucketData, key: &str, data: &[u8]) {
        let (p, mut f) = b.temp_file().unwrap();
        f.write_all(data).unwrap();
        let meta =
            ObjMeta { key: key.into(), size: data.len() as u64, etag: "e".into(), ..Default::default() };
        finish_file(&mut f, &meta).unwrap();
        b.commit(&p, f, meta, |_| Ok(())).unwrap();
    }

    #[test]
    fn keys_never_become_paths_and_survive_a_reload() {
        let root = tmpdir();
        let store = Store::open(&root).unwrap();
        let b = store.create_bucket(BucketInfo { name: "bkt".into(), ..Default::default() }).unwrap();
        let keys = ["../escape", "/abs", "a/../../b", "sp ace", "ünï/cødé", &"k".repeat(1024)];
        for k in keys {
            put(&b, k, k.as_bytes());
        }
        // Nothing was written outside the bucket's folder.
        let mut names: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from("bkt")]);
        drop(store);
        let store = Store::open(&root).unwrap();
        let b = store.bucket("bkt").unwrap();
        for k in keys {
            let (f, m) = b.open(k).unwrap().unwrap();
            assert_eq!(f.read_range(0, m.size).unwrap(), k.as_bytes());
        }
        assert_eq!(b.len(), keys.len());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn listing_with_delimiter_and_markers() {
        let root = tmpdir();
        let store = Store::open(&root).unwrap();
        let b = store.create_bucket(BucketInfo { name: "bkt".into(), ..Default::default() }).unwrap();
        for k in ["a/1", "a/2", "b", "c/x/1", "c/y", "d"] {
            put(&b, k, b"x");
        }
        let (o, p, t, _) = b.list("", Some("/"), None, 1000);
        assert_eq!(o.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["b", "d"]);
        assert_eq!(p, ["a/", "c/"]);
        assert!(!t);
        let (o, p, t, last) = b.list("", Some("/"), None, 2);
        assert_eq!((o.len(), p.len(), t, last.as_deref()), (1, 1, true, Some("b")));
        let (o, p, t, _) = b.list("", Some("/"), Some("b"), 2);
        assert_eq!(o.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["d"]);
        assert_eq!((p, t), (vec!["c/".to_string()], false));
        let (o, _, _, _) = b.list("c/", None, None, 10);
        assert_eq!(o.len(), 2);
        let _ = std::fs::remove_dir_all(&root);
    }

    fn part(b: &BucketData, id: &str, n: u32, data: &[u8]) -> (u32, u64) {
        let (p, mut f) = b.temp_file().unwrap();
        f.write_all(data).unwrap();
        let meta = ObjMeta { key: "k".into(), size: data.len() as u64, ..Default::default() };
        finish_file(&mut f, &meta).unwrap();
        b.commit_part(id, n, &p, f).unwrap();
        (n, data.len() as u64)
    }

    #[test]
    fn multipart_objects_keep_their_parts_in_place_and_read_across_them() {
        for sync in [false, true] {
            let root = tmpdir();
            let store = Store::open_with(&root, sync).unwrap();
            let b = store.create_bucket(BucketInfo { name: "bkt".into(), ..Default::default() }).unwrap();
            let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
            let up = b.create_upload(ObjMeta { key: "mp".into(), ..Default::default() }, None).unwrap();
            let p1 = part(&b, &up.id, 1, &data[..1000]);
            let p2 = part(&b, &up.id, 2, &data[1000..2500]);
            let p3 = part(&b, &up.id, 3, &data[2500..]);
            part(&b, &up.id, 7, b"left out");
            let part_inode = {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(b.uploads_dir().join(&up.id).join("part-00002")).unwrap().ino()
            };
            let m = b
                .complete_upload(
                    &up.id,
                    &[p1, p2, p3],
                    ObjMeta { key: "mp".into(), ..Default::default() },
                    |_| Ok(()),
                )
                .unwrap();
            assert_eq!(m.size, 3000);
            // Written once: the part is the same file, moved; the object's own file is its trailer.
            {
                use std::os::unix::fs::MetadataExt;
                let moved = b.data_dir().join(&up.id).join("part-00002");
                assert_eq!(std::fs::metadata(&moved).unwrap().ino(), part_inode);
                let obj = std::fs::metadata(b.object_path("mp")).unwrap().len();
                assert!(obj < 1000, "the object's file holds no data: {obj} bytes");
            }
            assert!(!b.data_dir().join(&up.id).join("part-00007").exists(), "unused parts are removed");
            assert!(matches!(b.upload(&up.id, "mp"), Err(StoreError::NoSuchUpload)));
            let (d, meta) = b.open("mp").unwrap().unwrap();
            assert_eq!(meta.size, 3000);
            assert_eq!(d.read_range(0, 3000).unwrap(), data);
            for (off, len) in [(990, 20), (999, 1), (1000, 1), (900, 1700), (2499, 501), (0, 0), (2999, 1)] {
                assert_eq!(
                    d.read_range(off, len).unwrap(),
                    &data[off as usize..(off + len) as usize],
                    "{off}+{len}"
                );
            }
            assert!(d.read_range(2990, 20).is_err());
            // Opened for a range, it holds only the parts in it: 900..1100 is in parts 1
            // and 2; none for the metadata alone.
            let (r, _) = b.open_range("mp", |_| 900..1100).unwrap().unwrap();
            let open: Vec<bool> = r.pieces.iter().map(|(f, _)| f.is_some()).collect();
            assert_eq!(open, [true, true, false]);
            assert_eq!(r.read_range(900, 200).unwrap(), &data[900..1100]);
            assert!(r.read_range(2500, 10).is_err(), "a part outside the range is not read");
            let (h, hm) = b.open_range("mp", |_| 0..0).unwrap().unwrap();
            assert!(h.pieces.iter().all(|(f, _)| f.is_none()));
            assert_eq!(hm.size, 3000);
            // A reader that opened it keeps reading it while it is replaced; so does one that
            // opened a range.
            put(&b, "mp", b"small now");
            assert_eq!(d.read_range(995, 10).unwrap(), &data[995..1005]);
            assert_eq!(r.read_range(1000, 100).unwrap(), &data[1000..1100]);
            let (d2, _) = b.open("mp").unwrap().unwrap();
            assert_eq!(d2.read_range(0, 9).unwrap(), b"small now");
            assert!(store.flusher.wait_synced(std::time::Duration::from_secs(5)));
            assert!(!b.data_dir().join(&up.id).exists(), "the replaced object's parts are removed");
            // Deleting a multipart object removes its parts; a data folder no object names is
            // removed at the next start.
            let up2 = b.create_upload(ObjMeta { key: "mp2".into(), ..Default::default() }, None).unwrap();
            let q1 = part(&b, &up2.id, 1, b"abc");
            b.complete_upload(
                &up2.id,
                &[q1],
                ObjMeta { key: "mp2".into(), ..Default::default() },
                |_| Ok(()),
            )
            .unwrap();
            let up3 = b.create_upload(ObjMeta { key: "mp3".into(), ..Default::default() }, None).unwrap();
            let r1 = part(&b, &up3.id, 1, b"def");
            b.complete_upload(
                &up3.id,
                &[r1],
                ObjMeta { key: "mp3".into(), ..Default::default() },
                |_| Ok(()),
            )
            .unwrap();
            b.delete("mp2").unwrap();
            assert!(store.flusher.wait_synced(std::time::Duration::from_secs(5)));
            assert!(!b.data_dir().join(&up2.id).exists());
            // A refused precondition leaves the upload as it was.
            let up4 = b.create_upload(ObjMeta { key: "mp3".into(), ..Default::default() }, None).unwrap();
            let s1 = part(&b, &up4.id, 1, b"ghi");
            let refused = b.complete_upload(
                &up4.id,
                &[s1],
                ObjMeta { key: "mp3".into(), ..Default::default() },
                |_| Err("no".into()),
            );
            assert!(matches!(refused, Err(StoreError::Precondition(_))));
            assert!(b.upload(&up4.id, "mp3").is_ok() && b.parts(&up4.id).unwrap().len() == 1);
            std::fs::create_dir_all(b.data_dir().join("0123456789abcdef0123456789abcdef")).unwrap();
            // A crash between moving an upload's parts and committing its object: the upload
            // is back at the next start.
            std::fs::rename(b.uploads_dir().join(&up4.id), b.data_dir().join(&up4.id)).unwrap();
            drop(b);
            drop(store);
            let store = Store::open_with(&root, sync).unwrap();
            let b = store.bucket("bkt").unwrap();
            assert!(!b.data_dir().join("0123456789abcdef0123456789abcdef").exists());
            assert_eq!(
                b.parts(&up4.id).unwrap().len(),
                1,
                "the upload whose completion never committed is back"
            );
            assert!(!b.data_dir().join(&up4.id).exists());
            let (d, m) = b.open("mp3").unwrap().unwrap();
            assert_eq!((d.read_range(0, 3).unwrap(), m.parts.is_some()), (b"def".to_vec(), true));
            let _ = std::fs::remove_dir_all(&root);
        }
    }

    #[test]
    fn spare_temp_files_are_made_ahead_and_cleared_at_the_next_start() {
        let root = tmpdir();
        let store = Store::open_with(&root, false).unwrap();
        let b = store.create_bucket(BucketInfo { name: "bkt".into(), ..Default::default() }).unwrap();
        put(&b, "k", b"v1");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while b.spare.len() < super::super::spare::KEEP && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let tmp: Vec<_> = std::fs::read_dir(b.tmp_dir()).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(tmp.len(), super::super::spare::KEEP, "spares wait in tmp/: {tmp:?}");
        // The next write takes a spare: one of them becomes the object, none is made. The
        // replaced object is swapped into tmp/ under the spare's name and removed by the
        // background thread.
        let old_inode = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(b.object_path("k")).unwrap().ino()
        };
        put(&b, "k", b"v2");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.janitor.releasing() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        {
            use std::os::unix::fs::MetadataExt;
            let now = std::fs::metadata(b.object_path("k")).unwrap().ino();
            assert_ne!(now, old_inode, "the object's file is a new one");
            assert!(
                std::fs::read_dir(b.tmp_dir())
                    .unwrap()
                    .flatten()
                    .all(|e| e.metadata().unwrap().ino() != old_inode),
                "the replaced file is removed"
            );
        }
        let after: Vec<_> = std::fs::read_dir(b.tmp_dir()).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(after.len(), tmp.len() - 1, "{after:?}");
        assert!(after.iter().all(|p| tmp.contains(p)), "no new temporary file: {after:?}");
        // As after a crash: the spares are left in tmp/; the next start clears them and the
        // objects are intact.
        drop(b);
        drop(store);
        assert!(std::fs::read_dir(root.join("bkt/tmp")).unwrap().count() > 0);
        let store = Store::open_with(&root, false).unwrap();
        assert_eq!(std::fs::read_dir(root.join("bkt/tmp")).unwrap().count(), 0, "cleared at start");
        let b = store.bucket("bkt").unwrap();
        let (d, m) = b.open("k").unwrap().unwrap();
        assert_eq!(d.read_range(0, m.size).unwrap(), b"v2");
        // Deleting the bucket stops its refills and removes its folder, spares and all.
        put(&b, "k", b"v3");
        drop(b);
        store.delete_bucket("bkt", true).unwrap();
        assert!(!root.join("bkt").exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn overwrites_under_a_concurrent_reader_never_show_half_an_object() {
        for sync in [false, true] {
            let root = tmpdir();
            let store = Store::open_with(&root, sync).unwrap();
            let b = store.create_bucket(BucketInfo { name: "bkt".into(), ..Default::default() }).unwrap();
            let bodies: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 4096 + 1000 * i as usize]).collect();
            put(&b, "k", &bodies[0]);
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let reader = {
                let (b, stop, bodies) = (b.clone(), stop.clone(), bodies.clone());
                std::thread::spawn(move || {
                    let mut reads = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (d, m) = b.open("k").unwrap().expect("the object is always there");
                        let got = d.read_range(0, m.size).unwrap();
                        assert!(bodies.contains(&got), "a whole object, not {} bytes of a mix", got.len());
                        reads += 1;
                    }
                    reads
                })
            };
            for i in 0..(if sync { 50 } else { 400 }) {
                put(&b, "k", &bodies[i % bodies.len()]);
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(reader.join().unwrap() > 0);
            // The replaced files were handed to the background thread and are released.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while store.janitor.releasing() > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert_eq!(store.janitor.releasing(), 0);
            // Nothing is left in tmp/ but spares (empty files); a delete frees the object too.
            for e in std::fs::read_dir(b.tmp_dir()).unwrap().flatten() {
                assert_eq!(e.metadata().unwrap().len(), 0, "{} is a spare", e.path().display());
            }
            assert!(b.delete("k").unwrap().is_some());
            assert!(b.open("k").unwrap().is_none());
            let _ = std::fs::remove_dir_all(&root);
        }
    }

    #[test]
    fn torn_files_are_refused() {
        let root = tmpdir();
        let p = root.join("f");
        let mut f =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&p).unwrap();
        f.write_all(b"hello").unwrap();
        finish_file(&mut f, &ObjMeta { key: "k".into(), size: 5, ..Default::default() }).unwrap();
        assert!(read_meta(&f).is_ok());
        let len = f.metadata().unwrap().len();
        f.set_len(len - 3).unwrap();
        assert!(read_meta(&f).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
