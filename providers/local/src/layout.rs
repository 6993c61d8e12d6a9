//! Where the local cloud keeps its data: everything lives under the project's
//! `.skyform/local/`, so two projects never share a daemon and deleting the folder resets
//! the local cloud.

use std::path::{Path, PathBuf};

/// The files and folders of one project's local cloud.
#[derive(Debug, Clone)]
pub struct Layout {
    pub project_dir: PathBuf,
    pub root: PathBuf,
}

impl Layout {
    pub fn new(project_dir: &Path) -> Layout {
        Layout { project_dir: project_dir.to_path_buf(), root: project_dir.join(".skyform").join("local") }
    }
    /// The bearer token of the control API (mode 0600, rewritten at each daemon start).
    pub fn token(&self) -> PathBuf {
        self.root.join("token")
    }
    /// `{"pid", "port"}` of the running daemon.
    pub fn daemon_json(&self) -> PathBuf {
        self.root.join("daemon.json")
    }
    /// Held (flock) by the running daemon for its lifetime: at most one daemon per project.
    pub fn daemon_lock(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }
    /// The daemon's own stdout and stderr.
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }
    /// What is deployed: functions and APIs by stack and name, with each API's port.
    pub fn registry(&self) -> PathBuf {
        self.root.join("registry.json")
    }
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }
    pub fn artifact(&self, code_hash: &str) -> PathBuf {
        self.artifacts().join(code_hash)
    }
    /// The function's log: JSON lines `{"time_ms","request_id","message"}`.
    pub fn function_log(&self, stack: &str, function: &str) -> PathBuf {
        self.root.join("logs").join(file_name(stack)).join(format!("{}.log", file_name(function)))
    }
    /// The key pair of the AWS endpoint (mode 0600, made once).
    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials.json")
    }
    /// SNS topics and their subscriptions ([`crate::topics`]).
    pub fn topics(&self) -> PathBuf {
        self.root.join("topics.json")
    }
    /// `{"port"}` of the AWS endpoint, kept across restarts.
    pub fn endpoint_json(&self) -> PathBuf {
        self.root.join("endpoint.json")
    }
    /// One append-only log per SQS queue: `queues/<name>.log`.
    pub fn queues(&self) -> PathBuf {
        self.root.join("queues")
    }
    /// The queue triggers (`local:QueueSubscription`), by stack and name.
    pub fn queue_subscriptions(&self) -> PathBuf {
        self.root.join("queue_subscriptions.json")
    }
    /// The tables' items, indexes and change records (one redb file).
    pub fn tables(&self) -> PathBuf {
        self.root.join("tables.redb")
    }
    /// The tables' change triggers (`local:TableSubscription`), by stack and name.
    pub fn table_subscriptions(&self) -> PathBuf {
        self.root.join("table_subscriptions.json")
    }
    /// The process groups of the function processes this daemon started ([`crate::pgroups`]).
    pub fn pgroups(&self) -> PathBuf {
        self.root.join("pgroups")
    }
    /// Runtime client shims written out for `python3` and `nodejs` functions.
    pub fn shims(&self) -> PathBuf {
        self.root.join("shims")
    }
}

/// Resource names may contain `/` (components); keep them one path segment.
fn file_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}
