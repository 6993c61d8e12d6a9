//! The process groups of the function processes, recorded so that a daemon started after a
//! `kill -9` of the previous one ends what that one's functions left running.
//!
//! Every function process leads a process group of its own and dies with the daemon
//! (`PR_SET_PDEATHSIG`, see [`crate::env`]). What it starts itself (a worker, `sleep 600 &`)
//! is in its group but not its child's death signal: a killed daemon cannot kill the group,
//! so those processes would outlive it. Each spawned group id is therefore appended to
//! `.skyform/local/pgroups` (one number a line); the next daemon, before it starts anything,
//! kills every process still in one of those groups that carries a Runtime API address in its
//! environment (`AWS_LAMBDA_RUNTIME_API`, inherited from the function process), then empties
//! the file. A group id reused by an unrelated program after a reboot is left alone: its
//! processes do not carry that variable.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

static RECORD: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Ends what the previous daemon's functions left running (see the module docs), then opens
/// the record for this daemon. Returns how many processes were killed.
pub fn start(path: &Path) -> std::io::Result<usize> {
    let killed = match std::fs::read_to_string(path) {
        Ok(text) => {
            let groups: Vec<i32> =
                text.lines().filter_map(|l| l.trim().parse().ok()).filter(|&g| g > 1).collect();
            kill_leftovers(&groups)
        }
        Err(_) => 0,
    };
    let file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
    let _ = RECORD.set(Mutex::new(file));
    Ok(killed)
}

/// Records a function process's group (its pid: it leads the group). A no-op outside a daemon
/// (in-process tests).
pub fn record(pgid: i32) {
    if let Some(f) = RECORD.get()
        && let Ok(mut f) = f.lock()
    {
        let _ = writeln!(f, "{pgid}");
    }
}

/// Kills every process in one of `groups` that carries `AWS_LAMBDA_RUNTIME_API`.
fn kill_leftovers(groups: &[i32]) -> usize {
    if groups.is_empty() {
        return 0;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    let mut killed = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let proc_dir: PathBuf = entry.path();
        let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else { continue };
        // Fields after the command's closing parenthesis: state, ppid, pgrp, ...
        let Some(pgrp) = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(2))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !groups.contains(&pgrp) {
            continue;
        }
        let Ok(environ) = std::fs::read(proc_dir.join("environ")) else { continue };
        if environ.split(|&b| b == 0).any(|v| v.starts_with(b"AWS_LAMBDA_RUNTIME_API=")) {
            // SAFETY: kill(2) of a process checked above to belong to a function's group.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    killed
}
