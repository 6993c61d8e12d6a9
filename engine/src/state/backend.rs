//! Where a stack's state is kept: the project's `state/` folder (the default), or an object
//! store such as an S3 bucket, shared by a team (`backend = "s3://BUCKET/PREFIX"`).
//!
//! The engine knows object stores only through the [`ObjectStore`] trait: get, conditional put,
//! delete, list. The CLI implements it over the aws provider's signed HTTP client and injects it
//! into the [`Project`](crate::project::Project) (as it injects the KMS key wrapper), so the
//! engine has no AWS dependency and never reads credentials. Everything else — the object
//! layout, the lock object, the ETag guard, the journal segments — is here, in one place, and
//! is the same for every store.
//!
//! The layout under `PREFIX/`, per stack:
//!
//! - `<stack>.json`: the state, byte for byte what the folder backend writes. It is replaced
//!   only with `If-Match` on the ETag it had when this command first read it (or `If-None-Match:
//!   *` when it had none), so a write that lost a race is refused, never overwritten.
//! - `<stack>.lock`: the lock, created with `If-None-Match: *` (only one creator wins) and
//!   naming its holder; removed by the holder at the end.
//! - `<stack>.journal/<n>`: the journal of a run in progress, one object per group commit
//!   (objects cannot be appended to; rewriting one journal object per commit would upload
//!   O(n²) bytes over a run). Segment 0 holds the header. Replay reads the segments in order.
//! - `<stack>.history/<serial>.json`: one history entry per object.
//!
//! **Architecture Invariant:** a remote state is written only by the holder of the stack's lock
//! object, and only over the ETag it read: losing either is an error before anything is written.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::lock::LockInfo;
use crate::error::{Error, ErrorKind, Result};

/// A precondition of a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond<'a> {
    /// Unconditional.
    Any,
    /// `If-None-Match: *`: only if no object has this key.
    Absent,
    /// `If-Match: ETAG`: only if the object is still the one with this ETag.
    Matches(&'a str),
}

/// What a conditional put did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    Done {
        etag: String,
    },
    /// The precondition failed (HTTP 412, or 409 for a concurrent conditional write).
    Refused,
}

/// An object and its ETag.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub etag: String,
}

/// A bucket under a prefix. Keys are relative to the prefix. Implementations are synchronous
/// (the engine's state code is) and report failures as [`ErrorKind::Io`] errors that say what
/// to check.
pub trait ObjectStore: Send + Sync {
    /// Where the objects live, for messages: `s3://bucket/prefix`.
    fn url(&self) -> String;
    fn get(&self, key: &str) -> Result<Option<Object>>;
    fn put(&self, key: &str, bytes: &[u8], cond: Cond<'_>) -> Result<Put>;
    /// Deletes an object; deleting an absent one succeeds.
    fn delete(&self, key: &str) -> Result<()>;
    /// Deletes many objects, in no particular order (S3's DeleteObjects: up to 1,000 a
    /// request).
    fn delete_many(&self, keys: &[String]) -> Result<()> {
        keys.iter().try_for_each(|k| self.delete(k))
    }
    /// The keys that start with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
}

/// The `backend` setting, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendUrl {
    /// `state/` in the project folder (`backend = "folder"`, or no setting).
    Folder,
    /// `s3://BUCKET/PREFIX?region=R&endpoint=URL&profile=P`.
    S3 { bucket: String, prefix: String, params: BTreeMap<String, String> },
}

impl BackendUrl {
    pub fn parse(text: &str) -> Result<BackendUrl> {
        let bad = |why: String| {
            Error::user(
                format!("backend `{text}` is not valid: {why}"),
                "write `backend = \"s3://BUCKET/PREFIX\"` (optionally `?region=R&endpoint=URL&profile=P`), \
                 or `backend = \"folder\"` for the project's state/ folder",
            )
        };
        if text == "folder" {
            return Ok(BackendUrl::Folder);
        }
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| bad("only `folder` and `s3://` backends exist".to_string()))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let (bucket, prefix) = match path.split_once('/') {
            Some((b, p)) => (b, p.trim_matches('/')),
            None => (path, ""),
        };
        if !valid_bucket(bucket) {
            return Err(bad(format!(
                "`{bucket}` is not a bucket name (3 to 63 lowercase letters, digits, `.` and `-`, \
                 starting and ending with a letter or digit)"
            )));
        }
        if prefix.split('/').any(|s| s.is_empty() || s == "." || s == "..") && !prefix.is_empty() {
            return Err(bad(format!("the prefix `{prefix}` has an empty, `.` or `..` segment")));
        }
        let mut params = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k @ ("region" | "endpoint" | "profile"), v)) if !v.is_empty() => {
                    params.insert(k.to_string(), v.to_string());
                }
                _ => {
                    return Err(bad(format!(
                        "unknown parameter `{pair}` (known: region=, endpoint=, profile=)"
                    )));
                }
            }
        }
        Ok(BackendUrl::S3 { bucket: bucket.to_string(), prefix: prefix.to_string(), params })
    }
}

impl std::fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendUrl::Folder => write!(f, "folder"),
            BackendUrl::S3 { bucket, prefix, .. } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            BackendUrl::S3 { bucket, prefix, .. } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Builds the object store of a backend URL; `aws` is the stack's `[providers.aws]` table. The
/// CLI provides it (see `Project::with_object_stores`).
pub type StoreOpener = Arc<
    dyn Fn(&BackendUrl, &serde_json::Map<String, serde_json::Value>) -> Result<Arc<dyn ObjectStore>>
        + Send
        + Sync,
>;

/// One stack in an object store: its keys, the ETag its state was read at, and the lock this
/// process holds.
pub struct Remote {
    pub store: Arc<dyn ObjectStore>,
    stack: String,
    /// The state's ETag when this command first read it (`Some(None)`: there was none), then
    /// after each of its own writes.
    etag: Mutex<Option<Option<String>>>,
    /// The id written into the lock object this process holds.
    token: Mutex<Option<String>>,
    /// The journal segments this process wrote: compaction reads them from here instead of
    /// downloading them again (it still lists the bucket, to find any it did not write).
    written: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({}/{})", self.store.url(), self.stack)
    }
}

/// The lock object's body: who (user, host, pid), where (the object), when, and what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockBody {
    pub id: String,
    pub path: String,
    #[serde(flatten)]
    pub info: LockInfo,
}

impl Remote {
    pub fn new(store: Arc<dyn ObjectStore>, stack: &str) -> Remote {
        Remote {
            store,
            stack: stack.to_string(),
            etag: Mutex::new(None),
            token: Mutex::new(None),
            written: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn state_key(&self) -> String {
        format!("{}.json", self.stack)
    }
    pub fn lock_key(&self) -> String {
        format!("{}.lock", self.stack)
    }
    pub fn journal_prefix(&self) -> String {
        format!("{}.journal/", self.stack)
    }
    pub fn history_prefix(&self) -> String {
        format!("{}.history/", self.stack)
    }
    /// `s3://bucket/prefix/KEY`, for messages.
    pub fn describe(&self, key: &str) -> String {
        format!("{}/{key}", self.store.url().trim_end_matches('/'))
    }

    /// Reads the state's bytes. The first read remembers the ETag; a later read that finds
    /// another ETag means someone wrote the state behind this command's lock.
    pub fn read_state(&self) -> Result<Option<Vec<u8>>> {
        let obj = self.store.get(&self.state_key())?;
        let now = obj.as_ref().map(|o| o.etag.clone());
        let mut seen = self.etag.lock().unwrap();
        match &*seen {
            None => *seen = Some(now),
            Some(before) if *before != now => return Err(self.changed_error()),
            Some(_) => {}
        }
        Ok(obj.map(|o| o.bytes))
    }

    fn changed_error(&self) -> Error {
        Error::new(
            ErrorKind::State,
            format!(
                "the state {} changed since this command read it: something wrote it without holding the stack's lock",
                self.describe(&self.state_key())
            ),
        )
        .with_hint(
            "nothing was overwritten; run the command again (it reads the new state), and check that \
             every tool writing this stack goes through skyform's lock",
        )
    }

    /// Replaces the state over the ETag it was read at, after checking the lock is still ours.
    pub fn write_state(&self, bytes: &[u8]) -> Result<()> {
        self.check_lock()?;
        let mut seen = self.etag.lock().unwrap();
        let expected = match &*seen {
            Some(e) => e.clone(),
            // Never read (a command that writes blind): read the ETag now.
            None => self.store.get(&self.state_key())?.map(|o| o.etag),
        };
        let cond = match &expected {
            Some(e) => Cond::Matches(e),
            None => Cond::Absent,
        };
        match self.store.put(&self.state_key(), bytes, cond)? {
            Put::Done { etag } => {
                *seen = Some(Some(etag));
                Ok(())
            }
            Put::Refused => Err(self.changed_error()),
        }
    }

    /// Removes the state, whatever it holds (`stack rm`, the source of `stack migrate`).
    pub fn remove_state(&self) -> Result<()> {
        self.store.delete(&self.state_key())?;
        *self.etag.lock().unwrap() = Some(None);
        Ok(())
    }

    // ----- the lock object -----

    /// Creates the lock object, or fails naming its holder. A lock left by a process of this
    /// host that no longer runs (`kill -9`) is taken over, replaced over its ETag.
    pub fn acquire(&self, info: &LockInfo) -> Result<()> {
        let id = super::new_lineage();
        let body = LockBody { id: id.clone(), path: self.describe(&self.lock_key()), info: info.clone() };
        let bytes = serde_json::to_vec_pretty(&body).expect("a lock body serializes");
        for _ in 0..3 {
            if let Put::Done { .. } = self.store.put(&self.lock_key(), &bytes, Cond::Absent)? {
                *self.token.lock().unwrap() = Some(id);
                return Ok(());
            }
            let Some(held) = self.store.get(&self.lock_key())? else {
                continue; // released in between: try again
            };
            let holder = serde_json::from_slice::<LockBody>(&held.bytes).ok();
            if let Some(h) = &holder
                && h.info.host == info.host
                && !super::lock::process_alive(h.info.pid)
            {
                if let Put::Done { .. } =
                    self.store.put(&self.lock_key(), &bytes, Cond::Matches(&held.etag))?
                {
                    *self.token.lock().unwrap() = Some(id);
                    return Ok(());
                }
                continue;
            }
            return Err(self.locked_error(holder.as_ref()));
        }
        Err(self.locked_error(None))
    }

    fn locked_error(&self, holder: Option<&LockBody>) -> Error {
        let msg = match holder {
            Some(h) => format!(
                "the stack is locked by another command: `{}` started {} by {} (pid {} on host {}); the lock is {}",
                h.info.command, h.info.started, h.info.user, h.info.pid, h.info.host, h.path
            ),
            None => {
                format!("the stack is locked by another command ({} exists)", self.describe(&self.lock_key()))
            }
        };
        Error::new(ErrorKind::Locked, msg).with_hint(
            "wait for it to finish; if that command is dead (its machine crashed, its CI job was cancelled), \
             `skyform cancel --force` removes its lock",
        )
    }

    /// Fails unless the lock object is still the one this process created.
    pub fn check_lock(&self) -> Result<()> {
        let Some(token) = self.token.lock().unwrap().clone() else {
            return Ok(()); // a command that does not lock (none writes without it)
        };
        let held = self.store.get(&self.lock_key())?;
        let body = held.as_ref().and_then(|h| serde_json::from_slice::<LockBody>(&h.bytes).ok());
        match body {
            Some(b) if b.id == token => Ok(()),
            other => Err(Error::new(
                ErrorKind::Locked,
                match other {
                    Some(b) => format!(
                        "this command's lock on the stack was removed and taken by `{}` (pid {} on host {}, started {}); the state was not written",
                        b.info.command, b.info.pid, b.info.host, b.info.started
                    ),
                    None => "this command's lock on the stack was removed (`skyform cancel --force`?); the state was not written".to_string(),
                },
            )
            .with_hint(
                "what this command did is in its journal in the bucket; run `skyform refresh` once the other \
                 command has finished, then the command again",
            )),
        }
    }

    /// Removes the lock object if it is still ours.
    pub fn release(&self) {
        let token = self.token.lock().unwrap().take();
        if let Some(token) = token
            && let Ok(Some(held)) = self.store.get(&self.lock_key())
            && serde_json::from_slice::<LockBody>(&held.bytes).is_ok_and(|b| b.id == token)
        {
            let _ = self.store.delete(&self.lock_key());
        }
    }

    /// The holder named by the lock object, if there is one.
    pub fn holder(&self) -> Result<Option<LockBody>> {
        Ok(self.store.get(&self.lock_key())?.and_then(|h| serde_json::from_slice(&h.bytes).ok()))
    }

    /// `skyform cancel`: removes a lock whose holder is dead. A holder on this host is known
    /// dead when its process is gone; one elsewhere only when the user says so (`force`).
    pub fn cancel(&self, force: bool, this_host: &str) -> Result<Option<LockInfo>> {
        let Some(held) = self.store.get(&self.lock_key())? else {
            return Ok(None);
        };
        let body = serde_json::from_slice::<LockBody>(&held.bytes).ok();
        if let Some(b) = &body {
            let here = b.info.host == this_host;
            if here && super::lock::process_alive(b.info.pid) {
                return Err(Error::new(
                    ErrorKind::Locked,
                    format!(
                        "the stack is locked by a running command: `{}` (pid {} on this host, started {})",
                        b.info.command, b.info.pid, b.info.started
                    ),
                )
                .with_hint("stop that command (Ctrl-C) instead: it removes its lock when it ends"));
            }
            if !here && !force {
                return Err(Error::new(
                    ErrorKind::Locked,
                    format!(
                        "the stack is locked by `{}` (pid {} on host {}, user {}, started {}); skyform cannot tell from here whether it still runs",
                        b.info.command, b.info.pid, b.info.host, b.info.user, b.info.started
                    ),
                )
                .with_hint(format!(
                    "if that command is dead, `skyform cancel --force` removes {}; removing the lock of a live command lets two commands write the stack",
                    b.path
                )));
            }
        }
        self.store.delete(&self.lock_key())?;
        Ok(body.map(|b| b.info))
    }

    // ----- journal segments -----

    pub fn segment_key(&self, n: u64) -> String {
        format!("{}{n:08}", self.journal_prefix())
    }

    pub fn segments(&self) -> Result<Vec<String>> {
        self.store.list(&self.journal_prefix())
    }

    /// Writes journal segment `n` (it must not exist). `Ok(false)`: it did.
    pub fn put_segment(&self, n: u64, bytes: &[u8]) -> Result<bool> {
        let key = self.segment_key(n);
        match self.store.put(&key, bytes, Cond::Absent)? {
            Put::Done { .. } => {
                self.written.lock().unwrap().insert(key, bytes.to_vec());
                Ok(true)
            }
            Put::Refused => Ok(false),
        }
    }

    /// The journal's text: its segments, in order. `None` when there is no journal.
    pub fn read_journal(&self) -> Result<Option<Vec<u8>>> {
        let keys = self.segments()?;
        if keys.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for k in keys {
            if let Some(mine) = self.written.lock().unwrap().get(&k) {
                out.extend_from_slice(mine);
                continue;
            }
            if let Some(o) = self.store.get(&k)? {
                out.extend_from_slice(&o.bytes);
            }
        }
        Ok(Some(out))
    }

    /// Removes the journal's segments, the header (segment 0) last: an interrupted removal
    /// leaves a journal whose header still says which state it applied to.
    pub fn remove_journal(&self) -> Result<()> {
        let mut keys = self.segments()?;
        keys.sort();
        if let Some((header, rest)) = keys.split_first() {
            self.store.delete_many(rest)?;
            self.store.delete(header)?;
        }
        self.written.lock().unwrap().clear();
        Ok(())
    }

    // ----- history -----

    pub fn append_history(&self, serial: u64, line: &[u8]) -> Result<()> {
        let key = format!("{}{serial:012}.json", self.history_prefix());
        self.store.put(&key, line, Cond::Any)?;
        Ok(())
    }

    pub fn read_history(&self) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for k in self.store.list(&self.history_prefix())? {
            if let Some(o) = self.store.get(&k)? {
                out.push(o.bytes);
            }
        }
        Ok(out)
    }

    pub fn remove_history(&self) -> Result<()> {
        self.store.delete_many(&self.store.list(&self.history_prefix())?)
    }
}

/// An object store in memory, for the engine's own tests (and for programs that embed the
/// engine and want a throwaway backend). Honours the preconditions as S3 does.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Vec<u8>, u64)>>,
    next: std::sync::atomic::AtomicU64,
}

impl ObjectStore for MemoryStore {
    fn url(&self) -> String {
        "memory://".into()
    }
    fn get(&self, key: &str) -> Result<Option<Object>> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .map(|(b, e)| Object { bytes: b.clone(), etag: e.to_string() }))
    }
    fn put(&self, key: &str, bytes: &[u8], cond: Cond<'_>) -> Result<Put> {
        let mut objects = self.objects.lock().unwrap();
        let current = objects.get(key).map(|(_, e)| e.to_string());
        let ok = match cond {
            Cond::Any => true,
            Cond::Absent => current.is_none(),
            Cond::Matches(e) => current.as_deref() == Some(e),
        };
        if !ok {
            return Ok(Put::Refused);
        }
        let etag = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        objects.insert(key.to_string(), (bytes.to_vec(), etag));
        Ok(Put::Done { etag: etag.to_string() })
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.objects.lock().unwrap().keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pid: u32, host: &str) -> LockInfo {
        LockInfo {
            pid,
            host: host.into(),
            user: "u".into(),
            started: "2026-11-30T12:00:00Z".into(),
            command: "skyform up".into(),
        }
    }

    #[test]
    fn parses_backend_urls_and_rejects_bad_ones() {
        assert_eq!(BackendUrl::parse("folder").unwrap(), BackendUrl::Folder);
        let BackendUrl::S3 { bucket, prefix, params } =
            BackendUrl::parse("s3://team-state/shop/?region=eu-west-1").unwrap()
        else {
            panic!()
        };
        assert_eq!((bucket.as_str(), prefix.as_str()), ("team-state", "shop"));
        assert_eq!(params["region"], "eu-west-1");
        for bad in ["s3://", "s3://A_B/x", "gs://b/x", "s3://bucket/a//b", "s3://bucket?color=red", "state"] {
            let e = BackendUrl::parse(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::User, "{bad}");
            assert!(e.message.contains(bad), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn the_lock_object_admits_one_holder_and_names_it() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::default());
        let a = Remote::new(store.clone(), "dev");
        let b = Remote::new(store.clone(), "dev");
        a.acquire(&info(std::process::id(), "here")).unwrap();
        let e = b.acquire(&info(1, "elsewhere")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Locked);
        assert!(e.message.contains("on host here"), "{}", e.message);
        // Another host's holder is only removed with --force.
        assert!(b.cancel(false, "elsewhere").is_err());
        a.release();
        b.acquire(&info(1, "elsewhere")).unwrap();
        assert!(a.cancel(false, "here").is_err());
        assert_eq!(a.cancel(true, "here").unwrap().unwrap().host, "elsewhere");
        // b's lock was taken: it may no longer write.
        a.acquire(&info(std::process::id(), "here")).unwrap();
        let e = b.write_state(b"{}").unwrap_err();
        assert!(e.message.contains("taken by `skyform up`"), "{}", e.message);
    }

    #[test]
    fn a_dead_holder_on_this_host_is_taken_over() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::default());
        // pid 0x7ffffffe does not run.
        Remote::new(store.clone(), "dev").acquire(&info(0x7fff_fffe, "here")).unwrap();
        Remote::new(store, "dev").acquire(&info(std::process::id(), "here")).unwrap();
    }

    #[test]
    fn a_state_written_behind_the_reader_is_detected_not_overwritten() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::default());
        let a = Remote::new(store.clone(), "dev");
        assert!(a.read_state().unwrap().is_none());
        store.put("dev.json", b"theirs", Cond::Any).unwrap();
        let e = a.write_state(b"mine").unwrap_err();
        assert_eq!(e.kind, ErrorKind::State);
        assert_eq!(store.get("dev.json").unwrap().unwrap().bytes, b"theirs");
        // A fresh reader sees theirs and may replace it, once.
        let b = Remote::new(store.clone(), "dev");
        assert_eq!(b.read_state().unwrap().unwrap(), b"theirs");
        b.write_state(b"second").unwrap();
        b.write_state(b"third").unwrap();
        assert!(a.read_state().is_err());
    }
}
