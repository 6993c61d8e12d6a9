//! The outbox of asynchronous invocations: events that the local cloud has promised to deliver
//! to a function (a bucket's S3 events, a topic's SNS events), kept on disk until delivered.
//!
//! Why on disk: these deliveries are promised before the function runs (the S3 write or the SNS
//! Publish is answered first), and a function may first need an environment started, or a
//! retry seconds later. Kept in memory, a `kill -9` of the daemon in that time would lose them;
//! AWS delivers them at least once.
//!
//! - [`Outbox::write`] writes one file per (event, function) (temporary file, `fsync`, rename,
//!   `fsync` of the folder) before returning, so a caller answers only after its deliveries
//!   are durable.
//! - The deliverer ([`Outbox::spawn`]) invokes the function and removes the file when the
//!   invocation ends; at start it delivers whatever the last run left, so a delivery
//!   interrupted by a crash runs again (at least once). Up to 16 deliveries run at once.
//! - A failed invocation is retried after each of the outbox's retry delays, as Lambda retries
//!   asynchronous invocations, then dropped with a line in the daemon's log. A delivery whose
//!   function is not deployed waits for it up to 5 minutes.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use crate::aws::FunctionLookup;
use crate::pool::InvokeResult;

/// Lambda's retries of a failed asynchronous invocation: after 1 s, then 2 s.
pub const ASYNC_RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// How long a delivery waits for its function to be deployed.
const WAIT_FOR_FUNCTION_MS: u64 = 5 * 60 * 1000;

/// A pending delivery, as its file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    function: String,
    created_ms: u64,
    payload: Value,
    /// The trace of the request that caused the delivery (crate::trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace: Option<String>,
    /// What the invocation shows as its trigger in the trace (`SNS Publish done`), when not the
    /// outbox's own (`s3 event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_trigger: Option<String>,
}

pub struct Outbox {
    dir: PathBuf,
    /// What the deliveries are, for the daemon's log ("bucket event", "SNS delivery").
    what: &'static str,
    /// How a delivery shows in its trace when it starts one (crate::trace): "s3 event", "sns".
    trigger: &'static str,
    retry_delays: &'static [Duration],
    seq: AtomicU64,
    wake: Notify,
    in_flight: Mutex<HashSet<String>>,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Outbox {
    /// The outbox in `dir` (created if missing); nothing is delivered before [`Outbox::spawn`].
    pub fn open(
        dir: PathBuf,
        what: &'static str,
        trigger: &'static str,
        retry_delays: &'static [Duration],
    ) -> std::io::Result<Outbox> {
        std::fs::create_dir_all(&dir)?;
        // File names sort in write order across restarts: start from the clock, in nanoseconds.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Ok(Outbox {
            dir,
            trigger,
            what,
            retry_delays,
            seq: AtomicU64::new(start),
            wake: Notify::new(),
            in_flight: Mutex::new(HashSet::new()),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// Writes one delivery per `(function, payload)`, durably, and wakes the deliverer.
    pub fn write(&self, deliveries: &[(String, Value)]) -> std::io::Result<()> {
        self.write_traced(deliveries, crate::trace::current_header(), None)
    }

    /// [`Outbox::write`] for a caller off the request's task (a blocking thread): the trace
    /// header is passed in.
    pub fn write_traced(
        &self,
        deliveries: &[(String, Value)],
        trace: Option<String>,
        trace_trigger: Option<String>,
    ) -> std::io::Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let now = crate::logs::now_ms();
        for (i, (function, payload)) in deliveries.iter().enumerate() {
            let p = Pending {
                function: function.clone(),
                created_ms: now,
                payload: payload.clone(),
                trace: trace.clone(),
                trace_trigger: trace_trigger.clone(),
            };
            let file = format!("{seq:020}-{i:03}.json");
            let tmp = self.dir.join(format!(".{file}.tmp"));
            {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&serde_json::to_vec(&p).map_err(std::io::Error::other)?)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, self.dir.join(&file))?;
        }
        fsync_dir(&self.dir)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Deliveries waiting (or running).
    pub fn pending(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|rd| rd.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
            .unwrap_or(0)
    }

    /// Delivers the outbox, forever: on every [`Outbox::write`] and every second.
    pub fn spawn(self: &Arc<Self>, functions: Arc<dyn FunctionLookup>) {
        let this = self.clone();
        tokio::spawn(async move {
            let limit = Arc::new(tokio::sync::Semaphore::new(16));
            loop {
                let mut names: Vec<String> = match std::fs::read_dir(&this.dir) {
                    Ok(rd) => rd
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
                        .collect(),
                    Err(_) => Vec::new(),
                };
                names.sort();
                for name in names {
                    if !this.in_flight.lock().unwrap().insert(name.clone()) {
                        continue;
                    }
                    let permit = limit.clone().acquire_owned().await.expect("never closed");
                    let (this, functions) = (this.clone(), functions.clone());
                    tokio::spawn(async move {
                        this.deliver(&name, functions.as_ref()).await;
                        this.in_flight.lock().unwrap().remove(&name);
                        drop(permit);
                    });
                }
                tokio::select! {
                    _ = this.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
    }

    async fn deliver(&self, name: &str, functions: &dyn FunctionLookup) {
        let path = self.dir.join(name);
        let Ok(bytes) = std::fs::read(&path) else { return };
        let Ok(p) = serde_json::from_slice::<Pending>(&bytes) else {
            eprintln!("skyform local daemon: dropping an unreadable {} {}", self.what, path.display());
            let _ = std::fs::remove_file(&path);
            return;
        };
        let Some(pool) = functions.find(crate::aws::function_name(&p.function)) else {
            if crate::logs::now_ms().saturating_sub(p.created_ms) > WAIT_FOR_FUNCTION_MS {
                eprintln!(
                    "skyform local daemon: dropping a {} for `{}`: no such function for 5 minutes",
                    self.what, p.function
                );
                self.failed.fetch_add(1, Ordering::Relaxed);
                let _ = std::fs::remove_file(&path);
            }
            return;
        };
        let payload = Bytes::from(p.payload.to_string());
        let trace = crate::trace::Ctx::from_header(
            p.trace.as_deref(),
            p.trace_trigger.clone().unwrap_or_else(|| self.trigger.to_string()),
        );
        let mut last = String::new();
        for attempt in 0..=self.retry_delays.len() {
            if attempt > 0 {
                tokio::time::sleep(self.retry_delays[attempt - 1]).await;
            }
            match crate::trace::scope(trace.clone(), pool.invoke(payload.clone())).await.result {
                InvokeResult::Ok(_) => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    let _ = std::fs::remove_file(&path);
                    return;
                }
                InvokeResult::Error { body, .. } => last = String::from_utf8_lossy(&body).into_owned(),
            }
        }
        eprintln!(
            "skyform local daemon: the {} for `{}` failed {} times; dropped: {last}",
            self.what,
            p.function,
            self.retry_delays.len() + 1
        );
        self.failed.fetch_add(1, Ordering::Relaxed);
        let _ = std::fs::remove_file(&path);
    }
}
