//! A function's pool of warm execution environments, and invocation.
//!
//! An invocation takes a permit of the function's concurrency (reserved concurrency, default
//! [`DEFAULT_CONCURRENCY`]; beyond it invocations queue), then a warm idle environment, or
//! starts a new one — after waiting up to [`DEFAULT_SPAWN_GRACE`] for a busy one to come back,
//! with at most one process initialising per core (see [`Pool::invoke`]). A healthy
//! environment goes back to the idle list afterwards; one that timed out, crashed or failed to
//! initialise is dropped (its process group killed), so the next invocation gets a fresh one.
//!
//! A pool belongs to one version of a function. Deploying new code builds a new pool and
//! *retires* the old: its idle environments are killed at once, its busy ones finish their
//! invocation and are killed when they come back. So an update fails no request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};

use crate::env::{Env, EnvConfig, Failure, LiveSet, LogCtl, Outcome};
use crate::logs::LogSink;

pub const DEFAULT_CONCURRENCY: u32 = 10;
/// Lambda gives a runtime 10 s to initialise.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an invocation that finds every environment busy waits for one to come back
/// before it starts another process (see [`Pool::invoke`]).
pub const DEFAULT_SPAWN_GRACE: Duration = Duration::from_millis(10);

pub struct Pool {
    pub cfg: EnvConfig,
    pub code_hash: String,
    sem: Arc<Semaphore>,
    idle: Mutex<Vec<Env>>,
    /// Signalled whenever an environment goes back to `idle`.
    returned: Notify,
    live: LiveSet,
    retired: AtomicBool,
    spawn_grace: Duration,
    /// Environments started and not yet through their first invocation, and the most
    /// allowed at once (the number of cores).
    starting: AtomicUsize,
    max_starting: usize,
    /// When an environment last went back to `idle` or finished initialising, in nanoseconds
    /// since `epoch`.
    last_return: AtomicU64,
    epoch: Instant,
    pub log: LogSink,
}

/// An invocation's result, as the invoke API and the gateway see it.
pub struct Invoked {
    pub request_id: Arc<str>,
    pub result: InvokeResult,
}

pub enum InvokeResult {
    Ok(Bytes),
    /// The function failed; the body is Lambda's error JSON
    /// (`{"errorMessage","errorType",...}`); `timed_out` tells the gateway to answer 503.
    Error {
        body: Bytes,
        timed_out: bool,
    },
}

impl Pool {
    pub fn new(cfg: EnvConfig, code_hash: String, concurrency: Option<u32>, log: LogSink) -> Pool {
        Pool::with_spawn_grace(cfg, code_hash, concurrency, log, DEFAULT_SPAWN_GRACE)
    }

    /// Like [`Pool::new`], with the time an invocation waits for a busy environment before
    /// starting a new one (zero: start one at once, as Lambda does).
    pub fn with_spawn_grace(
        cfg: EnvConfig,
        code_hash: String,
        concurrency: Option<u32>,
        log: LogSink,
        spawn_grace: Duration,
    ) -> Pool {
        let n = concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1) as usize;
        Pool {
            cfg,
            code_hash,
            sem: Arc::new(Semaphore::new(n)),
            idle: Mutex::new(Vec::new()),
            returned: Notify::new(),
            live: Arc::new(Mutex::new(HashMap::new())),
            retired: AtomicBool::new(false),
            spawn_grace,
            starting: AtomicUsize::new(0),
            max_starting: std::thread::available_parallelism().map_or(2, |n| n.get()),
            last_return: AtomicU64::new(0),
            epoch: Instant::now(),
            log,
        }
    }

    /// Stops taking this pool's environments back; kills the idle ones. With `kill_busy`, also
    /// kills the ones serving an invocation (their invocations fail).
    pub fn retire(&self, kill_busy: bool) {
        self.retired.store(true, Ordering::SeqCst);
        let idle = std::mem::take(&mut *self.idle.lock().unwrap());
        drop(idle);
        if kill_busy {
            self.sem.close();
            for pid in self.live.lock().unwrap().values() {
                crate::env::kill_group(*pid);
            }
        }
    }

    /// How many environments (processes) are alive.
    pub fn environments(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    /// Kills idle environments unused for `max_idle`.
    pub fn reap(&self, max_idle: Duration) {
        let now = Instant::now();
        let old: Vec<Env> = {
            let mut idle = self.idle.lock().unwrap();
            let (keep, old) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|e| now.duration_since(e.last_used) < max_idle && e.is_running());
            *idle = keep;
            old
        };
        drop(old);
    }

    pub async fn invoke(&self, payload: Bytes) -> Invoked {
        let request_id: Arc<str> = new_request_id().into();
        let trace = crate::trace::begin_invocation(&self.cfg.stack, &self.cfg.name, &request_id, &payload);
        let mut cold = false;
        let Ok(_permit) = self.sem.clone().acquire_owned().await else {
            trace.finish("error", false);
            return Invoked {
                request_id,
                result: error("Function deleted", "ResourceNotFoundException", false),
            };
        };
        // A warm idle environment if there is one. If every environment is busy, wait a moment
        // for one to come back before starting another process: a warm trivial invocation
        // takes well under a millisecond, a new process tens of milliseconds of CPU, and more
        // processes than cores make every invocation slower (4 connections on 2 cores: about
        // 11,000 req/s with 2 environments, 8,000–10,000 with 4). And start at most as many
        // processes at once as there are cores: a burst on a cold function then grows the pool
        // a core's worth at a time, and requests that arrive meanwhile take the first
        // environments as they come back. Invocations that stay busy longer than the grace
        // still get new environments, up to the reserved concurrency (the semaphore above
        // bounds it, as before). A zero grace starts one at once, as Lambda does.
        let patient = !self.spawn_grace.is_zero();
        let arrived = Instant::now();
        let mut starting = None;
        let env = loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            let warm = self.idle.lock().unwrap().pop();
            match warm {
                Some(e) if e.is_running() => break Ok(e),
                Some(_) => continue, // died while idle (dropping it reaps its group)
                None => {}
            }
            if !patient {
                cold = true;
                break Env::start(&self.cfg, &self.log, &self.live).await;
            }
            let busy = self.environments() > 0 || self.starting.load(Ordering::SeqCst) > 0;
            // "Busy for a while": no environment came back within the grace, counted from
            // this invocation's arrival or the last return, whichever is later. While
            // environments keep cycling, waiting for one is cheaper than a new process.
            let quiet_since = arrived.max(self.last_return());
            let deadline = quiet_since + self.spawn_grace;
            if !busy || Instant::now() >= deadline {
                // Take a start slot (held until the new process takes its first invocation,
                // i.e. through its initialisation).
                if self.starting.fetch_add(1, Ordering::SeqCst) < self.max_starting {
                    starting = Some(Starting(self));
                    cold = true;
                    break Env::start(&self.cfg, &self.log, &self.live).await;
                }
                self.starting.fetch_sub(1, Ordering::SeqCst);
                // All slots taken: wait for an environment or a slot.
                returned.await;
            } else {
                let _ = tokio::time::timeout_at(deadline.into(), returned).await;
            }
        };
        let started = Instant::now();
        let mut env = match env {
            Ok(e) => e,
            Err(msg) => {
                let rid = Some(request_id.clone());
                self.log.line(rid.clone(), format!("START RequestId: {request_id} Version: $LATEST"));
                for line in [msg.clone()].into_iter().chain(self.end_lines(&request_id, started, 0)) {
                    self.log.line(rid.clone(), line);
                }
                trace.finish("error", true);
                return Invoked { request_id, result: error(&msg, "Runtime.StartError", false) };
            }
        };
        env.log(LogCtl::Start(request_id.clone()));
        let outcome = env.invoke(request_id.clone(), payload, self.cfg.timeout, INIT_TIMEOUT, starting).await;
        let mem = env.max_memory_mb();
        let mut notes = Vec::new();
        let (result, keep) = match outcome {
            Outcome::Ok(b) => (InvokeResult::Ok(b), true),
            Outcome::HandlerError(b) => (InvokeResult::Error { body: b, timed_out: false }, true),
            Outcome::Failed(Failure::Timeout) => {
                let secs = self.cfg.timeout.as_secs_f64();
                // Lambda's error message carries the time; the log line does not, since every
                // log record has its own (it printed the time twice).
                let msg = format!("{} Task timed out after {secs:.2} seconds", now_iso());
                notes.push(format!("Task timed out after {secs:.2} seconds"));
                (error(&msg, "Sandbox.Timedout", true), false)
            }
            Outcome::Failed(Failure::InitError(body)) => {
                let body = if body.is_empty() {
                    Bytes::from_static(
                        b"{\"errorType\":\"Runtime.Unknown\",\"errorMessage\":\"init failed\"}",
                    )
                } else {
                    body
                };
                (InvokeResult::Error { body, timed_out: false }, false)
            }
            Outcome::Failed(Failure::Exited(status)) => {
                notes.push(format!("RequestId: {request_id} Error: Runtime exited with error: {status}"));
                (error(&format!("Runtime exited with error: {status}"), "Runtime.ExitError", false), false)
            }
        };
        notes.extend(self.end_lines(&request_id, started, mem));
        env.log(LogCtl::End(request_id.clone(), notes));
        if keep && !self.retired.load(Ordering::SeqCst) && env.is_running() {
            self.idle.lock().unwrap().push(env);
            self.mark_activity();
            self.returned.notify_one();
        }
        let status = match &result {
            InvokeResult::Ok(_) => "ok",
            InvokeResult::Error { timed_out: true, .. } => "timeout",
            InvokeResult::Error { .. } => "error",
        };
        trace.finish(status, cold);
        Invoked { request_id, result }
    }

    fn last_return(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last_return.load(Ordering::SeqCst))
    }

    fn mark_activity(&self) {
        self.last_return.store(self.epoch.elapsed().as_nanos() as u64, Ordering::SeqCst);
    }

    /// Lambda's `END` and `REPORT` lines.
    fn end_lines(&self, request_id: &str, started: Instant, mem: u64) -> [String; 2] {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        [
            format!("END RequestId: {request_id}"),
            format!(
                "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
                ms.ceil().max(1.0) as u64,
                self.cfg.memory,
                mem
            ),
        ]
    }
}

/// A taken start slot: released when the new process has taken its first invocation (or
/// failed to). That counts as activity: a waiter then gives the pool another grace to hand it
/// an environment (the new one may answer within it) before it starts one more.
struct Starting<'a>(&'a Pool);

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.0.starting.fetch_sub(1, Ordering::SeqCst);
        self.0.mark_activity();
        self.0.returned.notify_one();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.retire(true);
    }
}

fn error(message: &str, kind: &str, timed_out: bool) -> InvokeResult {
    let body = serde_json::to_vec(&serde_json::json!({"errorMessage": message, "errorType": kind}))
        .unwrap_or_default();
    InvokeResult::Error { body: body.into(), timed_out }
}

/// A request id shaped like Lambda's (a random UUID v4).
pub fn new_request_id() -> String {
    let a = rand_u64();
    let b = rand_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a as u16 & 0x0fff,
        ((b >> 48) as u16 & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// A fast, non-cryptographic random number (splitmix64 over a seeded counter). Ids need to be
/// unique, not secret; the control API token uses the OS's randomness instead.
pub fn rand_u64() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut s = STATE.load(Ordering::Relaxed);
    if s == 0 {
        let seed = crate::daemon::os_random_u64() | 1;
        let _ = STATE.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    s = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The current UTC time as `2026-01-02T03:04:05.678Z`.
pub fn now_iso() -> String {
    let ms = crate::logs::now_ms();
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z", ms % 1000)
}

/// Seconds since the epoch to (year, month, day, hour, minute, second), UTC.
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_583_348_638), (2020, 3, 4, 19, 3, 58));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let a = new_request_id();
        assert_eq!(a.len(), 36);
        assert_ne!(a, new_request_id());
        assert_eq!(&a[14..15], "4");
    }
}
