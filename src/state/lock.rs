//! One writer per stack: `state/<stack>.lock`, created atomically (create-if-absent).
//!
//! The file names its holder (pid, host, user, start time, command) so that a second command
//! can say who holds the stack, and `skyform cancel` can tell whether the holder is dead.

use std::io::Write;
use std::path::{Path, PathBuf};

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

/// Held while it lives; dropping it removes the lock file.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Lock {
    pub fn acquire(path: &Path, info: &LockInfo) -> Result<Lock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut f) => {
                let body = serde_json::to_vec_pretty(info).expect("lock info serializes");
                f.write_all(&body).and_then(|_| f.sync_all()).map_err(|e| {
                    let _ = std::fs::remove_file(path);
                    Error::io(format!("writing {}", path.display()), e)
                })?;
                Ok(Lock { path: path.to_path_buf() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(locked_error(path)),
            Err(e) => Err(Error::io(format!("creating {}", path.display()), e)),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn read(path: &Path) -> Option<LockInfo> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn locked_error(path: &Path) -> Error {
    let msg = match read(path) {
        Some(h) => format!(
            "the stack is locked by another command: `{}` started {} by {} (pid {} on host {})",
            h.command, h.started, h.user, h.pid, h.host
        ),
        None => format!("the stack is locked ({} exists)", path.display()),
    };
    let hint = match read(path) {
        Some(h) if holder_is_dead(&h) => {
            "its process is no longer running; run `skyform cancel` to remove the lock".to_string()
        }
        _ => "wait for it to finish; if it is dead, `skyform cancel` removes the lock".to_string(),
    };
    Error::new(ErrorKind::Locked, msg).with_hint(hint)
}

/// True when the holder ran on this host and its process is gone.
pub fn holder_is_dead(info: &LockInfo) -> bool {
    if info.host != hostname() {
        return false;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(info.pid as libc::pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    !alive
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

/// Removes a lock whose holder is dead (`skyform cancel`). Refuses a live holder unless `force`.
pub fn cancel(path: &Path, force: bool) -> Result<Option<LockInfo>> {
    let Some(info) = read(path) else {
        if path.exists() {
            std::fs::remove_file(path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        return Ok(None);
    };
    if !force && !holder_is_dead(&info) {
        return Err(Error::new(
            ErrorKind::Locked,
            format!(
                "the lock is held by a running command: `{}` (pid {} on host {}, started {})",
                info.command, info.pid, info.host, info.started
            ),
        )
        .with_hint("stop that command first (Ctrl-C), or pass `--force` if you are sure it is gone"));
    }
    std::fs::remove_file(path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
    Ok(Some(info))
}
