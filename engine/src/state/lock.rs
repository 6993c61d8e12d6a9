//! One writer per stack: an OS file lock on `state/<stack>.lock`.
//!
//! The lock is the kernel's (`flock`, through std's `File::try_lock`), held for as long as the
//! command keeps the file open. So a command that dies in any way — Ctrl-C, a panic, `kill -9`,
//! a power cut — releases it with its process: there is no stale lock to remove by hand, and
//! `skyform cancel` is only needed for a lock that does not live on this machine's file system
//! (a remote backend's lock object, see [`super::backend`]).
//!
//! The file also names its holder (pid, host, user, start time, command), written right after
//! the lock is taken, so that a refused command can say who holds the stack. The file itself is
//! never removed: removing it while another process has it open would let two processes lock two
//! different files of the same name. When a holder finishes it empties the file, then unlocks.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub started: String,
    pub command: String,
}

/// Held while it lives; dropping it empties the file and releases the OS lock (or, for a
/// remote backend, removes the lock object).
#[derive(Debug)]
pub struct Lock {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    File { file: std::fs::File, path: PathBuf },
    Remote(std::sync::Arc<super::backend::Remote>),
}

impl Lock {
    /// Takes a remote stack's lock object, or fails (`ErrorKind::Locked`) naming the holder.
    pub fn acquire_remote(remote: std::sync::Arc<super::backend::Remote>, info: &LockInfo) -> Result<Lock> {
        remote.acquire(info)?;
        Ok(Lock { inner: Inner::Remote(remote) })
    }

    /// Takes the stack's lock, or fails at once (`ErrorKind::Locked`) naming the holder.
    pub fn acquire(path: &Path, info: &LockInfo) -> Result<Lock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(locked_error(path)),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()), e));
            }
        }
        let mut file = file;
        let body = serde_json::to_vec_pretty(info).expect("lock info serializes");
        rewrite(&mut file, &body).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        Ok(Lock { inner: Inner::File { file, path: path.to_path_buf() } })
    }
}

fn rewrite(file: &mut std::fs::File, body: &[u8]) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(body)?;
    file.sync_data()
}

impl Drop for Lock {
    fn drop(&mut self) {
        match &self.inner {
            Inner::File { file, path } => {
                // Empty the file while still holding the lock, so that nobody reads a finished
                // holder.
                let _ = file.set_len(0);
                let _ = file.unlock();
                let _ = path;
            }
            Inner::Remote(remote) => remote.release(),
        }
    }
}

/// Whether a process of this host with this pid runs (or exists but is not ours to signal).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 checks existence and permission only; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))
}

/// The holder named in the lock file, if it names one.
pub fn read(path: &Path) -> Option<LockInfo> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The holder of a lock we were refused. It writes its name right after locking, so a command
/// refused in that instant waits a little for it rather than saying "someone".
fn read_holder(path: &Path) -> Option<LockInfo> {
    let started = Instant::now();
    loop {
        if let Some(info) = read(path) {
            return Some(info);
        }
        if started.elapsed() > Duration::from_secs(2) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn locked_error(path: &Path) -> Error {
    let msg = match read_holder(path) {
        Some(h) => format!(
            "the stack is locked by another command: `{}` started {} by {} (pid {} on host {})",
            h.command, h.started, h.user, h.pid, h.host
        ),
        None => format!("the stack is locked by another command ({} is held)", path.display()),
    };
    Error::new(ErrorKind::Locked, msg).with_hint(
        "wait for it to finish, or stop it (Ctrl-C); the lock is released when its process ends, however it ends",
    )
}

/// Whether the stack is locked now: the holder, or `None` when it is free.
pub fn holder(path: &Path) -> Result<Option<Option<LockInfo>>> {
    if !path.exists() {
        return Ok(None);
    }
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => {
            // Free: whatever the file names is a holder that has ended.
            let _ = file.unlock();
            Ok(None)
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(Some(read_holder(path))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(format!("locking {}", path.display()), e)),
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).to_string()
}

/// `skyform cancel`: a lock on this machine frees itself when its holder ends, so there is
/// nothing to remove. Reports a live holder as an error (stop that command instead); for a
/// free stack, clears the name a dead holder left and returns it.
pub fn cancel(path: &Path) -> Result<Option<LockInfo>> {
    match holder(path)? {
        Some(info) => {
            let who = match info {
                Some(i) => {
                    format!("`{}` (pid {} on host {}, started {})", i.command, i.pid, i.host, i.started)
                }
                None => "another command".to_string(),
            };
            Err(Error::new(ErrorKind::Locked, format!("the stack is locked by a running command: {who}"))
                .with_hint(
                    "stop that command (Ctrl-C, or kill it): its lock is released when its process ends",
                ))
        }
        None => {
            let left = read(path);
            if left.is_some() {
                // Take the lock to clear the stale name without racing a new holder.
                let file = open(path)?;
                if file.try_lock().is_ok() {
                    let _ = file.set_len(0);
                    let _ = file.unlock();
                }
            }
            Ok(left)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(command: &str) -> LockInfo {
        LockInfo {
            pid: std::process::id(),
            host: hostname(),
            user: "tester".into(),
            started: "2026-11-30T12:00:00Z".into(),
            command: command.into(),
        }
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_name_and_a_dropped_lock_frees() {
        let dir = std::env::temp_dir().join(format!("skyform-lock-{}", std::process::id()));
        let path = dir.join("dev.lock");
        let first = Lock::acquire(&path, &info("skyform up")).unwrap();
        let err = Lock::acquire(&path, &info("skyform preview")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Locked);
        assert!(err.message.contains("`skyform up`"), "{}", err.message);
        assert!(matches!(holder(&path).unwrap(), Some(Some(_))));
        drop(first);
        assert!(holder(&path).unwrap().is_none());
        assert!(read(&path).is_none(), "a released lock names nobody");
        let again = Lock::acquire(&path, &info("skyform up")).unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
