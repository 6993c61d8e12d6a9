//! SQS queues: the messages, their visibility, and their log on disk.
//!
//! Each queue is in memory (every message, an index by the instant it becomes visible, and for
//! FIFO queues the messages of each group in order) and in an append-only log,
//! `.skyform/local/queues/<name>.log`, one JSON record per line:
//!
//! | record | what |
//! |---|---|
//! | `{"t":"c", ...}` | the queue's configuration (first line; again when it changes) |
//! | `{"t":"s", seq, id, body, ...}` | a message was sent |
//! | `{"t":"r", seq, n, vis, tok, first}` | it was received (receive count, invisible until `vis`, receipt token) |
//! | `{"t":"v", seq, vis}` | its visibility changed |
//! | `{"t":"d", seq}` | it was deleted |
//! | `{"t":"p", upto}` | the queue was purged |
//! | `{"t":"dd", id, at, mid, seq}` | a FIFO deduplication id (kept through compaction for 5 minutes) |
//!
//! Why a log and not an embedded database (redb, sqlite): every change is one small append,
//! so **group commit** is natural — one writer thread per queue takes every record queued
//! while the previous write or `fdatasync` ran, writes them with one `write` and syncs at most
//! once, then answers all their callers. Two levels of durability:
//!
//! - a **sent message** (and a configuration, a FIFO deduplication id) is answered only after
//!   `fdatasync`: it survives `kill -9` and a power cut;
//! - a **receive, visibility change or delete** is answered after its `write` (the page cache
//!   survives `kill -9` and a daemon restart; it reaches the disk with the next sync). After
//!   an OS crash the newest of these may be lost, which only redelivers a message (SQS is
//!   at-least-once); a sent message is never lost. An `fdatasync` costs milliseconds here,
//!   so syncing every receive and delete too would cap a consumer at a few hundred a second.
//!
//! A torn last line (a crash mid-write) is ignored and cut off at load. When the log holds
//! many more records than live messages, it is rewritten (a snapshot of the live messages to a
//! temporary file, fsync, rename) by the same writer thread, in order with the appends.
//!
//! Times are epoch milliseconds from the system clock.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

use crate::aws::{ACCOUNT, REGION};
use crate::logs::now_ms;

/// SQS's limits.
pub const MAX_MESSAGE_SIZE: usize = 262_144;
pub const MAX_BATCH: usize = 10;
pub const DEDUP_WINDOW_MS: u64 = 5 * 60 * 1000;
/// See [`Queue::maybe_compact`]: a 20,000-record slack keeps rewrites rare (a rewrite copies
/// every live message) while bounding the log to a few megabytes beyond its live content.
const COMPACT_AFTER: u64 = 20_000;

/// A queue's settings (the `local:Queue` inputs, and what `CreateQueue` takes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueConfig {
    #[serde(default)]
    pub fifo: bool,
    #[serde(default = "default_visibility")]
    pub visibility_timeout: u32,
    #[serde(default = "default_retention")]
    pub message_retention: u32,
    #[serde(default)]
    pub delay: u32,
    #[serde(default)]
    pub receive_wait: u32,
    #[serde(default)]
    pub content_based_deduplication: bool,
    #[serde(default)]
    pub dead_letter: Option<DeadLetter>,
    #[serde(default)]
    pub created_ms: u64,
}

fn default_visibility() -> u32 {
    30
}
fn default_retention() -> u32 {
    345_600
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            fifo: false,
            visibility_timeout: 30,
            message_retention: 345_600,
            delay: 0,
            receive_wait: 0,
            content_based_deduplication: false,
            dead_letter: None,
            created_ms: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The dead-letter queue's ARN.
    pub queue: String,
    pub max_receive_count: u32,
}

/// A message attribute (`MessageAttributes` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageAttribute {
    pub data_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// Raw bytes, base64 in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
}

/// What a sender gives.
#[derive(Debug, Clone, Default)]
pub struct SendInput {
    pub body: String,
    pub attributes: BTreeMap<String, MessageAttribute>,
    /// Overrides the queue's delay (standard queues only).
    pub delay: Option<u32>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// What `SendMessage` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub message_id: String,
    pub md5_body: String,
    pub md5_attributes: Option<String>,
    pub sequence_number: Option<String>,
}

/// An SQS error: the code of the current API model, the legacy (query) code, and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsError {
    pub code: &'static str,
    pub query_code: &'static str,
    pub message: String,
}

impl SqsError {
    pub fn new(code: &'static str, query_code: &'static str, message: impl Into<String>) -> SqsError {
        SqsError { code, query_code, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> SqsError {
        SqsError::new("InvalidParameterValue", "InvalidParameterValue", message)
    }
    pub fn no_queue() -> SqsError {
        SqsError::new(
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        )
    }
}

impl std::fmt::Display for SqsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A message in a queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub seq: u64,
    pub id: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, MessageAttribute>,
    pub sent: u64,
    /// Visible (receivable) from this instant.
    pub vis: u64,
    #[serde(default)]
    pub n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// The current receipt token (a new one at each receive).
    #[serde(default)]
    pub tok: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    /// The trace header of the sender (SQS's `AWSTraceHeader` system attribute; crate::trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

impl Message {
    pub fn md5_body(&self) -> String {
        md5_hex(self.body.as_bytes())
    }
    /// `SequenceNumber` of a FIFO message (20 digits, increasing).
    pub fn sequence_number(&self) -> String {
        format!("{:020}", self.seq)
    }
}

pub fn md5_hex(b: &[u8]) -> String {
    let d = Md5::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}

/// The MD5 of message attributes as SQS computes it (and the SDKs check): for each attribute,
/// in name order, the name, the data type and the value, each as a 4-byte big-endian length
/// and its bytes, with a transport byte (1 for String/Number, 2 for Binary) before the value.
pub fn md5_attributes(attrs: &BTreeMap<String, MessageAttribute>) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    let mut buf = Vec::new();
    let put = |b: &[u8], buf: &mut Vec<u8>| {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    };
    for (name, a) in attrs {
        put(name.as_bytes(), &mut buf);
        put(a.data_type.as_bytes(), &mut buf);
        if a.data_type.starts_with("Binary") {
            buf.push(2);
            let raw = a.binary_value.as_deref().map(b64_decode).unwrap_or_default();
            put(&raw, &mut buf);
        } else {
            buf.push(1);
            put(a.string_value.as_deref().unwrap_or("").as_bytes(), &mut buf);
        }
    }
    Some(md5_hex(&buf))
}

pub fn b64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_default()
}

/// The size SQS counts for a message: body, and every attribute's name, type and value.
fn message_size(input: &SendInput) -> usize {
    input.body.len()
        + input
            .attributes
            .iter()
            .map(|(k, a)| {
                k.len()
                    + a.data_type.len()
                    + a.string_value.as_ref().map_or(0, String::len)
                    + a.binary_value.as_deref().map_or(0, |b| b64_decode(b).len())
            })
            .sum::<usize>()
}

/// Valid SQS queue names: 1–80 of `A-Za-z0-9-_`, FIFO queues ending in `.fifo`.
pub fn check_queue_name(name: &str, fifo: bool) -> Result<(), String> {
    let base = if fifo {
        name.strip_suffix(".fifo")
            .ok_or_else(|| format!("the name of a FIFO queue must end with `.fifo`, got `{name}`"))?
    } else {
        name
    };
    let ok = !base.is_empty()
        && name.len() <= 80
        && base.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    if !ok {
        return Err(format!(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length (got `{name}`)"
        ));
    }
    Ok(())
}

/// SQS accepts only these characters in a body: #x9 #xA #xD #x20–#xD7FF #xE000–#xFFFD #x10000+.
fn valid_body(s: &str) -> Result<(), char> {
    for c in s.chars() {
        let u = c as u32;
        let ok = matches!(u, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..);
        if !ok {
            return Err(c);
        }
    }
    Ok(())
}

/// Checks message attributes as SQS does.
pub fn check_attributes(attrs: &BTreeMap<String, MessageAttribute>) -> Result<(), SqsError> {
    if attrs.len() > 10 {
        return Err(SqsError::invalid(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [10].",
            attrs.len()
        )));
    }
    for (name, a) in attrs {
        let lower = name.to_ascii_lowercase();
        if name.is_empty()
            || name.len() > 256
            || !name.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
            || name.starts_with('.')
            || name.ends_with('.')
            || name.contains("..")
            || lower.starts_with("aws.")
            || lower.starts_with("amazon.")
        {
            return Err(SqsError::invalid(format!(
                "Message (user) attribute name `{name}` is invalid: use up to 256 of A-Za-z0-9-_. (not starting with AWS. or Amazon.)."
            )));
        }
        let base = a.data_type.split('.').next().unwrap_or("");
        match base {
            "String" | "Number" => {
                if a.string_value.as_deref().is_none_or(str::is_empty) {
                    return Err(SqsError::invalid(format!(
                        "Message (user) attribute '{name}' must contain a non-empty value of type '{base}'."
                    )));
                }
                if base == "Number" && a.string_value.as_deref().and_then(|s| s.parse::<f64>().ok()).is_none()
                {
                    return Err(SqsError::invalid(format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    )));
                }
            }
            "Binary" => {
                if a.binary_value.as_deref().is_none_or(str::is_empty) {
                    return Err(SqsError::invalid(format!(
                        "Message (user) attribute '{name}' must contain a non-empty value of type 'Binary'."
                    )));
                }
            }
            _ => {
                return Err(SqsError::invalid(format!(
                    "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
                )));
            }
        }
    }
    Ok(())
}

/// Parses an ARN or a queue URL to a queue name (its last segment).
pub fn queue_name_of(arn_or_url: &str) -> &str {
    let s = arn_or_url.trim_end_matches('/');
    if s.starts_with("arn:") { s.rsplit(':').next().unwrap_or(s) } else { s.rsplit('/').next().unwrap_or(s) }
}

pub fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

// ---------------------------------------------------------------------------------------------
// The log and its writer thread.

enum WalCmd {
    /// A line; `true` when its caller waits for `fdatasync`, not only for the `write`.
    Append(Vec<u8>, bool, oneshot::Sender<std::io::Result<()>>),
    Rewrite(Vec<u8>, oneshot::Sender<std::io::Result<()>>),
    Remove(oneshot::Sender<std::io::Result<()>>),
}

/// Counters of the log (shown by the benchmark: fsyncs per message).
#[derive(Default, Debug)]
pub struct WalStats {
    pub fsyncs: AtomicU64,
    pub records: AtomicU64,
}

struct Wal {
    tx: std::sync::mpsc::Sender<WalCmd>,
}

impl Wal {
    fn open(path: PathBuf, stats: Arc<WalStats>) -> std::io::Result<Wal> {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let (tx, rx) = std::sync::mpsc::channel::<WalCmd>();
        std::thread::Builder::new().name("skyform-queue-log".into()).spawn(move || {
            let mut buf = Vec::new();
            let mut waiting: Vec<oneshot::Sender<std::io::Result<()>>> = Vec::new();
            let mut sync = false;
            while let Ok(first) = rx.recv() {
                let mut pending = VecDeque::from([first]);
                while let Ok(more) = rx.try_recv() {
                    pending.push_back(more);
                }
                while let Some(cmd) = pending.pop_front() {
                    match cmd {
                        WalCmd::Append(rec, must_sync, done) => {
                            buf.extend_from_slice(&rec);
                            stats.records.fetch_add(1, Ordering::Relaxed);
                            sync |= must_sync;
                            waiting.push(done);
                        }
                        other => {
                            // Flush what is queued before, then the special command.
                            let r = flush(&mut file, &mut buf, std::mem::take(&mut sync), &stats);
                            for w in waiting.drain(..) {
                                let _ = w.send(clone_result(&r));
                            }
                            match other {
                                WalCmd::Rewrite(snapshot, done) => {
                                    let r = rewrite(&path, &snapshot).map(|f| {
                                        file = f;
                                    });
                                    stats.fsyncs.fetch_add(1, Ordering::Relaxed);
                                    let _ = done.send(r);
                                }
                                WalCmd::Remove(done) => {
                                    let r = std::fs::remove_file(&path);
                                    let _ = done.send(r);
                                    return;
                                }
                                WalCmd::Append(..) => unreachable!(),
                            }
                        }
                    }
                }
                let r = flush(&mut file, &mut buf, std::mem::take(&mut sync), &stats);
                for w in waiting.drain(..) {
                    let _ = w.send(clone_result(&r));
                }
            }
        })?;
        Ok(Wal { tx })
    }

    /// Appends a record; the receiver completes once it is written (in the page cache: it
    /// survives `kill -9`, and is synced by the next sync).
    fn append(&self, record: &impl serde::Serialize) -> oneshot::Receiver<std::io::Result<()>> {
        self.append_with(record, false)
    }

    /// Appends a record; the receiver completes once it is synced to disk (`fdatasync`).
    fn append_synced(&self, record: &impl serde::Serialize) -> oneshot::Receiver<std::io::Result<()>> {
        self.append_with(record, true)
    }

    fn append_with(
        &self,
        record: &impl serde::Serialize,
        sync: bool,
    ) -> oneshot::Receiver<std::io::Result<()>> {
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        if let Err(std::sync::mpsc::SendError(WalCmd::Append(_, _, tx))) =
            self.tx.send(WalCmd::Append(line, sync, tx))
        {
            let _ = tx.send(Err(std::io::Error::other("the queue's log is closed")));
        }
        rx
    }
}

fn clone_result(r: &std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
    }
}

/// Writes what is queued; syncs when a caller asked for it.
fn flush(file: &mut std::fs::File, buf: &mut Vec<u8>, sync: bool, stats: &WalStats) -> std::io::Result<()> {
    if buf.is_empty() && !sync {
        return Ok(());
    }
    let mut r = file.write_all(buf);
    if sync && r.is_ok() {
        r = file.sync_data();
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
    }
    buf.clear();
    r
}

fn rewrite(path: &Path, snapshot: &[u8]) -> std::io::Result<std::fs::File> {
    let tmp = path.with_extension("log.compact");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(snapshot)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    std::fs::OpenOptions::new().append(true).open(path)
}

async fn durable(rx: oneshot::Receiver<std::io::Result<()>>) -> Result<(), SqsError> {
    match rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            Err(SqsError::new("InternalError", "InternalError", format!("cannot write the queue's log: {e}")))
        }
        Err(_) => Err(SqsError::new("InternalError", "InternalError", "the queue's log writer stopped")),
    }
}

// ---------------------------------------------------------------------------------------------
// One queue.

#[derive(Default)]
struct State {
    config: QueueConfig,
    msgs: HashMap<u64, Message>,
    by_vis: BTreeSet<(u64, u64)>,
    /// FIFO: the messages of each group, in order.
    groups: HashMap<String, BTreeSet<u64>>,
    /// FIFO: deduplication id → (when, message id, seq).
    dedup: HashMap<String, (u64, String, u64)>,
    next_seq: u64,
    /// Records appended since the last compaction.
    appended: u64,
    modified_ms: u64,
}

impl State {
    fn insert(&mut self, m: Message) {
        self.by_vis.insert((m.vis, m.seq));
        if let Some(g) = &m.g {
            self.groups.entry(g.clone()).or_default().insert(m.seq);
        }
        self.next_seq = self.next_seq.max(m.seq + 1);
        self.msgs.insert(m.seq, m);
    }

    fn remove(&mut self, seq: u64) -> Option<Message> {
        let m = self.msgs.remove(&seq)?;
        self.by_vis.remove(&(m.vis, seq));
        if let Some(g) = &m.g
            && let Some(set) = self.groups.get_mut(g)
        {
            set.remove(&seq);
            if set.is_empty() {
                self.groups.remove(g);
            }
        }
        Some(m)
    }

    fn set_vis(&mut self, seq: u64, vis: u64) {
        if let Some(m) = self.msgs.get_mut(&seq) {
            self.by_vis.remove(&(m.vis, seq));
            m.vis = vis;
            self.by_vis.insert((vis, seq));
        }
    }

    /// Applies one log record (at load).
    fn apply(&mut self, r: &Value) {
        match r["t"].as_str() {
            Some("c") => {
                if let Ok(c) = serde_json::from_value::<QueueConfig>(r["config"].clone()) {
                    self.config = c;
                }
            }
            Some("s") => {
                if let Ok(m) = serde_json::from_value::<Message>(r["m"].clone()) {
                    self.insert(m);
                }
            }
            Some("r") => {
                let seq = r["seq"].as_u64().unwrap_or(u64::MAX);
                let vis = r["vis"].as_u64().unwrap_or(0);
                self.set_vis(seq, vis);
                if let Some(m) = self.msgs.get_mut(&seq) {
                    m.n = r["n"].as_u64().unwrap_or(0) as u32;
                    m.tok = r["tok"].as_u64().unwrap_or(0);
                    m.first = r["first"].as_u64();
                }
            }
            Some("v") => {
                let seq = r["seq"].as_u64().unwrap_or(u64::MAX);
                self.set_vis(seq, r["vis"].as_u64().unwrap_or(0));
            }
            Some("d") => {
                self.remove(r["seq"].as_u64().unwrap_or(u64::MAX));
            }
            Some("p") => {
                let upto = r["upto"].as_u64().unwrap_or(0);
                let seqs: Vec<u64> = self.msgs.keys().copied().filter(|s| *s < upto).collect();
                for s in seqs {
                    self.remove(s);
                }
                self.next_seq = self.next_seq.max(upto);
            }
            Some("dd") => {
                if let (Some(id), Some(at)) = (r["id"].as_str(), r["at"].as_u64()) {
                    let mid = r["mid"].as_str().unwrap_or_default().to_string();
                    self.dedup.insert(id.to_string(), (at, mid, r["seq"].as_u64().unwrap_or(0)));
                }
            }
            _ => {}
        }
    }

    /// The records that rebuild this state (compaction).
    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line = |v: Value| {
            let _ = serde_json::to_writer(&mut out, &v);
            out.push(b'\n');
        };
        line(json!({"t": "c", "config": self.config}));
        line(json!({"t": "p", "upto": self.next_seq}));
        let now = now_ms();
        for (id, (at, mid, seq)) in &self.dedup {
            if now < at + DEDUP_WINDOW_MS {
                line(json!({"t": "dd", "id": id, "at": at, "mid": mid, "seq": seq}));
            }
        }
        let mut seqs: Vec<&u64> = self.msgs.keys().collect();
        seqs.sort();
        for s in seqs {
            line(json!({"t": "s", "m": self.msgs[s]}));
        }
        out
    }
}

/// Counts for `GetQueueAttributes` and `skyform local status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Depth {
    /// Visible now.
    pub visible: usize,
    /// Received, not yet visible again.
    pub in_flight: usize,
    /// Not yet visible for the first time (delay).
    pub delayed: usize,
}

/// A received message, with its receipt handle.
#[derive(Debug, Clone)]
pub struct Received {
    pub message: Message,
    pub receipt_handle: String,
}

pub struct Queue {
    pub name: String,
    state: Mutex<State>,
    wal: Wal,
    /// Woken when a message may have become receivable.
    pub notify: Notify,
    pub stats: Arc<WalStats>,
    /// The log is rewritten when it holds this many more records than 4 per live message.
    compact_after: u64,
}

/// Receive options.
#[derive(Debug, Clone, Copy)]
pub struct ReceiveOptions {
    pub max: usize,
    pub visibility_timeout: Option<u32>,
    pub wait: Duration,
}

fn receipt_handle(name: &str, seq: u64, tok: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{name}/{seq}/{tok:016x}"))
}

/// Parses a receipt handle into (queue name, seq, token).
pub fn parse_receipt(handle: &str) -> Option<(String, u64, u64)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(handle.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let mut it = s.rsplitn(3, '/');
    let tok = u64::from_str_radix(it.next()?, 16).ok()?;
    let seq = it.next()?.parse().ok()?;
    Some((it.next()?.to_string(), seq, tok))
}

impl Queue {
    /// Opens (or creates) the queue's log and rebuilds its state.
    fn open(dir: &Path, name: &str, config: Option<QueueConfig>) -> std::io::Result<Queue> {
        let path = dir.join(format!("{name}.log"));
        let mut st = State::default();
        let mut exists = false;
        if let Ok(f) = std::fs::File::open(&path) {
            exists = true;
            let mut good_len = 0u64;
            let mut reader = std::io::BufReader::new(f);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line)?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                match serde_json::from_slice::<Value>(&line) {
                    Ok(v) => {
                        st.apply(&v);
                        st.appended += 1;
                        good_len += n as u64;
                    }
                    Err(_) => break,
                }
            }
            // Cut a torn tail so new records follow a complete line.
            let len = std::fs::metadata(&path)?.len();
            if len != good_len {
                std::fs::OpenOptions::new().write(true).open(&path)?.set_len(good_len)?;
            }
        }
        let stats = Arc::new(WalStats::default());
        let wal = Wal::open(path, stats.clone())?;
        let q = Queue {
            name: name.to_string(),
            state: Mutex::new(st),
            wal,
            notify: Notify::new(),
            stats,
            compact_after: COMPACT_AFTER,
        };
        if let Some(mut c) = config {
            let mut st = q.state.lock().unwrap();
            c.created_ms = if exists && st.config.created_ms != 0 { st.config.created_ms } else { now_ms() };
            if !exists || st.config != c {
                st.config = c.clone();
                st.modified_ms = now_ms();
                drop(q.wal.append_synced(&json!({"t": "c", "config": c})));
            }
        }
        Ok(q)
    }

    pub fn config(&self) -> QueueConfig {
        self.state.lock().unwrap().config.clone()
    }

    pub fn url(&self, port: u16) -> String {
        format!("http://127.0.0.1:{port}/{ACCOUNT}/{}", self.name)
    }

    pub fn arn(&self) -> String {
        queue_arn(&self.name)
    }

    /// Sets the configuration (durably).
    pub async fn configure(&self, mut c: QueueConfig) -> Result<(), SqsError> {
        let rx = {
            let mut st = self.state.lock().unwrap();
            c.created_ms = st.config.created_ms;
            if st.config == c {
                return Ok(());
            }
            st.config = c.clone();
            st.modified_ms = now_ms();
            self.wal.append_synced(&json!({"t": "c", "config": c}))
        };
        durable(rx).await
    }

    /// Up to `max` messages, oldest first, without receiving them (the console's peek: no
    /// receive count, no visibility change).
    pub fn peek(&self, max: usize) -> Vec<Message> {
        let st = self.state.lock().unwrap();
        let mut v: Vec<&Message> = st.msgs.values().collect();
        v.sort_by_key(|m| m.seq);
        v.into_iter().take(max).cloned().collect()
    }

    pub fn depth(&self) -> Depth {
        let st = self.state.lock().unwrap();
        let now = now_ms();
        let mut d = Depth::default();
        for m in st.msgs.values() {
            if m.vis <= now {
                d.visible += 1;
            } else if m.n > 0 {
                d.in_flight += 1;
            } else {
                d.delayed += 1;
            }
        }
        d
    }

    /// Checks a message as `SendMessage` does.
    pub fn check_send(&self, input: &SendInput) -> Result<(), SqsError> {
        let fifo = self.state.lock().unwrap().config.fifo;
        if input.body.is_empty() {
            return Err(SqsError::new(
                "MissingParameter",
                "MissingParameter",
                "The request must contain the parameter MessageBody.",
            ));
        }
        if let Err(c) = valid_body(&input.body) {
            return Err(SqsError::new(
                "InvalidMessageContents",
                "InvalidMessageContents",
                format!(
                    "Invalid characters found. Deleted message body or attribute: U+{:04X} is not allowed",
                    c as u32
                ),
            ));
        }
        let size = message_size(input);
        if size > MAX_MESSAGE_SIZE {
            return Err(SqsError::invalid(format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {MAX_MESSAGE_SIZE} bytes."
            )));
        }
        check_attributes(&input.attributes)?;
        if let Some(d) = input.delay {
            if d > 900 {
                return Err(SqsError::invalid(format!(
                    "Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
                )));
            }
            if fifo && d > 0 {
                return Err(SqsError::invalid(
                    "Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.",
                ));
            }
        }
        if fifo {
            if input.group_id.as_deref().is_none_or(str::is_empty) {
                return Err(SqsError::new(
                    "MissingParameter",
                    "MissingParameter",
                    "The request must contain the parameter MessageGroupId.",
                ));
            }
            if input.dedup_id.is_none() && !self.state.lock().unwrap().config.content_based_deduplication {
                return Err(SqsError::invalid(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
        } else if input.dedup_id.is_some() {
            return Err(SqsError::invalid(
                "Value for parameter MessageDeduplicationId is invalid. Reason: The request includes a parameter that is not valid for this queue type.",
            ));
        }
        Ok(())
    }

    /// Enqueues a message; answers once it is on disk. Checks it first ([`Queue::check_send`]).
    pub async fn send(&self, input: SendInput) -> Result<Sent, SqsError> {
        self.check_send(&input)?;
        let (sent, rx) = self.send_unchecked(input, None);
        if let Some(rx) = rx {
            durable(rx).await?;
        }
        self.notify.notify_waiters();
        Ok(sent)
    }

    /// Enqueues without checks; `moved` keeps a dead-lettered message's id and sent time.
    fn send_unchecked(
        &self,
        input: SendInput,
        moved: Option<&Message>,
    ) -> (Sent, Option<oneshot::Receiver<std::io::Result<()>>>) {
        let now = now_ms();
        let mut st = self.state.lock().unwrap();
        let md5_body = md5_hex(input.body.as_bytes());
        let md5_attributes = md5_attributes(&input.attributes);
        let fifo = st.config.fifo;
        let dedup = if fifo {
            input.dedup_id.clone().or_else(|| Some(sha256_hex(input.body.as_bytes())))
        } else {
            None
        };
        if let Some(d) = &dedup
            && moved.is_none()
            && let Some((at, mid, seq)) = st.dedup.get(d)
            && now < at + DEDUP_WINDOW_MS
        {
            return (
                Sent {
                    message_id: mid.clone(),
                    md5_body,
                    md5_attributes,
                    sequence_number: Some(format!("{seq:020}")),
                },
                None,
            );
        }
        let seq = st.next_seq.max(1);
        st.next_seq = seq + 1;
        let delay = if fifo { st.config.delay } else { input.delay.unwrap_or(st.config.delay) };
        let m = Message {
            seq,
            id: moved.map(|m| m.id.clone()).unwrap_or_else(crate::pool::new_request_id),
            body: input.body,
            attrs: input.attributes,
            sent: moved.map(|m| m.sent).unwrap_or(now),
            vis: now + delay as u64 * 1000,
            n: 0,
            first: None,
            tok: 0,
            g: if fifo { input.group_id } else { None },
            d: dedup.clone(),
            trace: moved.and_then(|m| m.trace.clone()).or_else(crate::trace::current_header),
        };
        let sent = Sent {
            message_id: m.id.clone(),
            md5_body,
            md5_attributes,
            sequence_number: fifo.then(|| m.sequence_number()),
        };
        // Serialised straight from the message (no intermediate `Value` tree): the hot path.
        #[derive(serde::Serialize)]
        struct SendRecord<'a> {
            t: &'static str,
            m: &'a Message,
        }
        let mut rx = self.wal.append_synced(&SendRecord { t: "s", m: &m });
        if let Some(d) = dedup {
            rx = self.wal.append_synced(&json!({"t": "dd", "id": d, "at": now, "mid": m.id, "seq": seq}));
            st.dedup.insert(d, (now, m.id.clone(), seq));
            st.appended += 1;
        }
        st.insert(m);
        st.appended += 1;
        (sent, Some(rx))
    }

    /// Receives up to `opts.max` messages, waiting up to `opts.wait` for one. Messages past
    /// their queue's `max_receive_count` are moved to the dead-letter queue instead.
    pub async fn receive(&self, queues: &Queues, opts: ReceiveOptions) -> Result<Vec<Received>, SqsError> {
        let deadline = tokio::time::Instant::now() + opts.wait;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (got, moves, rx, next_vis) = self.take(opts);
            if !moves.is_empty() {
                self.dead_letter(queues, moves).await;
            }
            if let Some(rx) = rx {
                durable(rx).await?;
            }
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            let mut until = deadline;
            if let Some(v) = next_vis {
                let now = now_ms();
                let at = tokio::time::Instant::now() + Duration::from_millis(v.saturating_sub(now));
                until = until.min(at);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// One pass of receive under the lock: what is taken, what must be dead-lettered, the
    /// log record to wait for, and when the next invisible message becomes visible.
    #[allow(clippy::type_complexity)]
    fn take(
        &self,
        opts: ReceiveOptions,
    ) -> (Vec<Received>, Vec<Message>, Option<oneshot::Receiver<std::io::Result<()>>>, Option<u64>) {
        let now = now_ms();
        let mut st = self.state.lock().unwrap();
        let vis_timeout = opts.visibility_timeout.unwrap_or(st.config.visibility_timeout) as u64 * 1000;
        let retention = st.config.message_retention as u64 * 1000;
        let max_receives = st.config.dead_letter.as_ref().map(|d| d.max_receive_count);
        let fifo = st.config.fifo;
        let mut chosen: Vec<u64> = Vec::new();
        let mut expired: Vec<u64> = Vec::new();
        let mut moves: Vec<u64> = Vec::new();
        let mut groups_taken: std::collections::HashSet<String> = Default::default();
        for &(vis, seq) in st.by_vis.iter() {
            if vis > now || chosen.len() >= opts.max {
                break;
            }
            let m = &st.msgs[&seq];
            if now >= m.sent + retention {
                expired.push(seq);
                continue;
            }
            if fifo {
                let g = m.g.clone().unwrap_or_default();
                if groups_taken.contains(&g) {
                    continue;
                }
                let Some(members) = st.groups.get(&g) else { continue };
                if members.first() != Some(&seq) {
                    continue;
                }
                groups_taken.insert(g);
                for &s in members.iter() {
                    if chosen.len() >= opts.max || st.msgs[&s].vis > now {
                        break;
                    }
                    if max_receives.is_some_and(|mx| st.msgs[&s].n >= mx) {
                        moves.push(s);
                    } else {
                        chosen.push(s);
                    }
                }
            } else if max_receives.is_some_and(|mx| m.n >= mx) {
                moves.push(seq);
            } else {
                chosen.push(seq);
            }
        }
        let mut last_rx = None;
        for seq in expired {
            st.remove(seq);
            last_rx = Some(self.wal.append(&json!({"t": "d", "seq": seq})));
        }
        let mut moved = Vec::new();
        for seq in moves {
            // Hidden until it is in the dead-letter queue; deleted from here after that.
            st.set_vis(seq, u64::MAX);
            moved.push(st.msgs[&seq].clone());
        }
        let mut out = Vec::with_capacity(chosen.len());
        for seq in chosen {
            let tok = crate::pool::rand_u64();
            let vis = now + vis_timeout;
            st.set_vis(seq, vis);
            let m = st.msgs.get_mut(&seq).expect("chosen messages exist");
            m.n += 1;
            m.tok = tok;
            m.first.get_or_insert(now);
            let rec = json!({"t": "r", "seq": seq, "n": m.n, "vis": vis, "tok": tok, "first": m.first});
            out.push(Received { receipt_handle: receipt_handle(&self.name, seq, tok), message: m.clone() });
            last_rx = Some(self.wal.append(&rec));
            st.appended += 1;
        }
        let next_vis = st.by_vis.iter().next().map(|(v, _)| *v).filter(|v| *v != u64::MAX);
        let rx = last_rx;
        self.maybe_compact(&mut st);
        (out, moved, rx, next_vis)
    }

    async fn dead_letter(&self, queues: &Queues, moves: Vec<Message>) {
        let target = self.state.lock().unwrap().config.dead_letter.clone();
        let Some(target) = target else { return };
        let Some(dlq) = queues.get(queue_name_of(&target.queue)) else {
            // No dead-letter queue (deleted): the messages stay here, hidden for a visibility
            // timeout as if received, so that receivers do not spin on them.
            let mut st = self.state.lock().unwrap();
            let vis = now_ms() + st.config.visibility_timeout.max(1) as u64 * 1000;
            for m in moves {
                st.set_vis(m.seq, vis);
            }
            return;
        };
        for m in moves {
            let input = SendInput {
                body: m.body.clone(),
                attributes: m.attrs.clone(),
                delay: Some(0),
                group_id: m.g.clone(),
                dedup_id: m.d.clone(),
            };
            let (_, rx) = dlq.send_unchecked(input, Some(&m));
            if let Some(rx) = rx
                && durable(rx).await.is_err()
            {
                continue;
            }
            dlq.notify.notify_waiters();
            let rx = {
                let mut st = self.state.lock().unwrap();
                st.remove(m.seq);
                self.wal.append(&json!({"t": "d", "seq": m.seq}))
            };
            let _ = durable(rx).await;
        }
    }

    fn maybe_compact(&self, st: &mut State) {
        if st.appended > 4 * st.msgs.len() as u64 + self.compact_after {
            let snap = st.snapshot();
            let (tx, _rx) = oneshot::channel();
            let _ = self.wal.tx.send(WalCmd::Rewrite(snap, tx));
            st.appended = st.msgs.len() as u64 + 2;
        }
    }

    /// Finds the message a receipt handle names, if the handle is this queue's and current.
    fn lookup(st: &State, name: &str, handle: &str) -> Result<Option<u64>, SqsError> {
        let Some((q, seq, tok)) = parse_receipt(handle) else {
            return Err(SqsError::new(
                "ReceiptHandleIsInvalid",
                "ReceiptHandleIsInvalid",
                format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
            ));
        };
        if q != name {
            return Err(SqsError::new(
                "ReceiptHandleIsInvalid",
                "ReceiptHandleIsInvalid",
                format!(
                    "The input receipt handle \"{handle}\" is not a valid receipt handle for this queue."
                ),
            ));
        }
        Ok(st.msgs.get(&seq).filter(|m| m.tok == tok).map(|m| m.seq))
    }

    /// Deletes the message a receipt handle names (a stale handle deletes nothing, as on AWS).
    pub async fn delete(&self, handle: &str) -> Result<(), SqsError> {
        let rx = {
            let mut st = self.state.lock().unwrap();
            match Self::lookup(&st, &self.name, handle)? {
                Some(seq) => {
                    st.remove(seq);
                    st.appended += 1;
                    let rx = self.wal.append(&json!({"t": "d", "seq": seq}));
                    self.maybe_compact(&mut st);
                    rx
                }
                None => return Ok(()),
            }
        };
        durable(rx).await
    }

    /// Deletes messages by sequence number (the trigger, which holds them).
    pub async fn delete_seqs(&self, seqs: &[u64]) -> Result<(), SqsError> {
        let rx = {
            let mut st = self.state.lock().unwrap();
            let mut rx = None;
            for &seq in seqs {
                if st.remove(seq).is_some() {
                    st.appended += 1;
                    rx = Some(self.wal.append(&json!({"t": "d", "seq": seq})));
                }
            }
            self.maybe_compact(&mut st);
            rx
        };
        match rx {
            Some(rx) => durable(rx).await,
            None => Ok(()),
        }
    }

    /// Changes the visibility of an in-flight message.
    pub async fn change_visibility(&self, handle: &str, timeout: u32) -> Result<(), SqsError> {
        if timeout > 43_200 {
            return Err(SqsError::invalid(format!(
                "Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200."
            )));
        }
        let rx = {
            let mut st = self.state.lock().unwrap();
            let now = now_ms();
            let seq = Self::lookup(&st, &self.name, handle)?;
            let Some(seq) = seq.filter(|s| st.msgs[s].vis > now) else {
                return Err(SqsError::new(
                    "MessageNotInflight",
                    "AWS.SimpleQueueService.MessageNotInflight",
                    "The message referred to isn't in flight.",
                ));
            };
            let vis = now + timeout as u64 * 1000;
            st.set_vis(seq, vis);
            st.appended += 1;
            self.wal.append(&json!({"t": "v", "seq": seq, "vis": vis}))
        };
        durable(rx).await?;
        if timeout == 0 {
            self.notify.notify_waiters();
        }
        Ok(())
    }

    /// Makes messages visible at once (the trigger, after a failed batch: the visibility
    /// timeout still applies — this is used only with `Some(delay)`).
    pub async fn set_visible_in(&self, seqs: &[u64], delay: Duration) -> Result<(), SqsError> {
        let rx = {
            let mut st = self.state.lock().unwrap();
            let vis = now_ms() + delay.as_millis() as u64;
            let mut rx = None;
            for &seq in seqs {
                if st.msgs.contains_key(&seq) {
                    st.set_vis(seq, vis);
                    rx = Some(self.wal.append(&json!({"t": "v", "seq": seq, "vis": vis})));
                }
            }
            rx
        };
        if let Some(rx) = rx {
            durable(rx).await?;
        }
        Ok(())
    }

    /// Deletes every message.
    pub async fn purge(&self) -> Result<(), SqsError> {
        let rx = {
            let mut st = self.state.lock().unwrap();
            let upto = st.next_seq.max(1);
            let seqs: Vec<u64> = st.msgs.keys().copied().collect();
            for s in seqs {
                st.remove(s);
            }
            st.appended += 1;
            self.wal.append(&json!({"t": "p", "upto": upto}))
        };
        durable(rx).await
    }

    /// `GetQueueAttributes`: every attribute, as strings.
    pub fn attributes(&self) -> BTreeMap<String, String> {
        let d = self.depth();
        let st = self.state.lock().unwrap();
        let c = &st.config;
        let mut a = BTreeMap::new();
        a.insert("QueueArn".into(), self.arn());
        a.insert("ApproximateNumberOfMessages".into(), d.visible.to_string());
        a.insert("ApproximateNumberOfMessagesNotVisible".into(), d.in_flight.to_string());
        a.insert("ApproximateNumberOfMessagesDelayed".into(), d.delayed.to_string());
        a.insert("CreatedTimestamp".into(), (c.created_ms / 1000).to_string());
        a.insert("LastModifiedTimestamp".into(), (st.modified_ms.max(c.created_ms) / 1000).to_string());
        a.insert("VisibilityTimeout".into(), c.visibility_timeout.to_string());
        a.insert("MaximumMessageSize".into(), MAX_MESSAGE_SIZE.to_string());
        a.insert("MessageRetentionPeriod".into(), c.message_retention.to_string());
        a.insert("DelaySeconds".into(), c.delay.to_string());
        a.insert("ReceiveMessageWaitTimeSeconds".into(), c.receive_wait.to_string());
        a.insert("SqsManagedSseEnabled".into(), "false".into());
        if let Some(dl) = &c.dead_letter {
            a.insert(
                "RedrivePolicy".into(),
                json!({"deadLetterTargetArn": dl.queue, "maxReceiveCount": dl.max_receive_count}).to_string(),
            );
        }
        if c.fifo {
            a.insert("FifoQueue".into(), "true".into());
            a.insert("ContentBasedDeduplication".into(), c.content_based_deduplication.to_string());
            a.insert("DeduplicationScope".into(), "queue".into());
            a.insert("FifoThroughputLimit".into(), "perQueue".into());
        }
        a
    }
}

fn sha256_hex(b: &[u8]) -> String {
    crate::aws::sigv4::sha256_hex(b)
}

// ---------------------------------------------------------------------------------------------
// Every queue of the project.

/// The project's queues, by name (SQS names are per account and region, so per project here).
pub struct Queues {
    dir: PathBuf,
    map: RwLock<HashMap<String, Arc<Queue>>>,
}

impl Queues {
    /// Loads every queue under `dir` (`.skyform/local/queues/`).
    pub fn load(dir: &Path) -> std::io::Result<Queues> {
        std::fs::create_dir_all(dir)?;
        let mut map = HashMap::new();
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.extension().and_then(|x| x.to_str()) != Some("log") {
                continue;
            }
            let Some(name) = p.file_stem().and_then(|s| s.to_str()) else { continue };
            let q = Queue::open(dir, name, None)?;
            map.insert(name.to_string(), Arc::new(q));
        }
        Ok(Queues { dir: dir.to_path_buf(), map: RwLock::new(map) })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Queue>> {
        self.map.read().unwrap().get(name).cloned()
    }

    /// The queue an ARN or URL names.
    pub fn by_ref(&self, arn_or_url: &str) -> Result<Arc<Queue>, SqsError> {
        self.get(queue_name_of(arn_or_url)).ok_or_else(SqsError::no_queue)
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.map.read().unwrap().keys().cloned().collect();
        v.sort();
        v
    }

    /// Creates the queue, or updates its configuration.
    pub async fn put(&self, name: &str, config: QueueConfig) -> Result<Arc<Queue>, SqsError> {
        check_queue_name(name, config.fifo).map_err(SqsError::invalid)?;
        if let Some(q) = self.get(name) {
            if q.config().fifo != config.fifo {
                return Err(SqsError::invalid(format!(
                    "queue `{name}` exists as a {} queue; a queue cannot change type (replace it)",
                    if config.fifo { "standard" } else { "FIFO" }
                )));
            }
            q.configure(config).await?;
            return Ok(q);
        }
        let q = Arc::new(Queue::open(&self.dir, name, Some(config)).map_err(|e| {
            SqsError::new("InternalError", "InternalError", format!("cannot create the queue's log: {e}"))
        })?);
        self.map.write().unwrap().insert(name.to_string(), q.clone());
        Ok(q)
    }

    /// Deletes the queue and its log; `false` when there was none.
    pub async fn delete(&self, name: &str) -> bool {
        let Some(q) = self.map.write().unwrap().remove(name) else { return false };
        let (tx, rx) = oneshot::channel();
        let _ = q.wal.tx.send(WalCmd::Remove(tx));
        let _ = rx.await;
        q.notify.notify_waiters();
        true
    }

    /// Sends to the queue an ARN or URL names (for SNS fan-out); on disk when `Ok`.
    pub async fn send_by_arn(&self, arn_or_url: &str, input: SendInput) -> Result<Sent, SqsError> {
        self.by_ref(arn_or_url)?.send(input).await
    }

    /// Sums of the log counters of every queue.
    pub fn wal_totals(&self) -> (u64, u64) {
        self.map.read().unwrap().values().fold((0, 0), |(f, r), q| {
            (f + q.stats.fsyncs.load(Ordering::Relaxed), r + q.stats.records.load(Ordering::Relaxed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("skyform-queue-{}", crate::pool::rand_u64()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The attribute digest of AWS's documentation example computed by botocore's
    /// `_calculate_md5_of_message_attributes` for {"a": String "b"}.
    #[test]
    fn attribute_md5_matches_the_sdks() {
        let mut a = BTreeMap::new();
        a.insert(
            "a".to_string(),
            MessageAttribute {
                data_type: "String".into(),
                string_value: Some("b".into()),
                binary_value: None,
            },
        );
        let mut buf = Vec::new();
        buf.extend_from_slice(&[0, 0, 0, 1, b'a', 0, 0, 0, 6]);
        buf.extend_from_slice(b"String");
        buf.extend_from_slice(&[1, 0, 0, 0, 1, b'b']);
        assert_eq!(md5_attributes(&a), Some(md5_hex(&buf)));
        assert_eq!(md5_attributes(&BTreeMap::new()), None);
    }

    /// A log past its slack is rewritten to the live messages only, in order with later
    /// appends, and what it holds after a reopen is the same.
    #[tokio::test]
    async fn compaction_keeps_exactly_the_live_state() {
        let dir = tmp();
        let qs = Queues::load(&dir).unwrap();
        let mut q = Queue::open(&dir, "c", Some(QueueConfig::default())).unwrap();
        q.compact_after = 50;
        let q = Arc::new(q);
        qs.map.write().unwrap().insert("c".into(), q.clone());
        let opts = ReceiveOptions { max: 10, visibility_timeout: Some(300), wait: Duration::ZERO };
        for round in 0..20 {
            for i in 0..10 {
                q.send(SendInput { body: format!("{round}-{i}"), ..Default::default() }).await.unwrap();
            }
            // Receive 10 (the oldest), delete all but the first.
            let got = q.receive(&qs, opts).await.unwrap();
            for r in &got[1..] {
                q.delete(&r.receipt_handle).await.unwrap();
            }
        }
        // 20 rounds: 200 sent, 200 received, 180 deleted; 20 in flight.
        let before = q.depth();
        assert_eq!(before, Depth { visible: 0, in_flight: 20, delayed: 0 });
        q.send(SendInput { body: "last".into(), ..Default::default() }).await.unwrap();
        let lines = std::fs::read_to_string(dir.join("c.log")).unwrap().lines().count();
        assert!(lines < 200, "the log was compacted ({lines} lines)");
        drop(qs);
        drop(q);
        let qs = Queues::load(&dir).unwrap();
        let q = qs.get("c").unwrap();
        assert_eq!(q.depth(), Depth { visible: 1, in_flight: 20, delayed: 0 });
        let st = q.state.lock().unwrap();
        assert!(st.msgs.values().filter(|m| m.body != "last").all(|m| m.n == 1 && m.tok != 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A dead-letter queue that does not exist (deleted) leaves the message here, hidden for
    /// a visibility timeout (it used to become visible at once, and a long poll spun on it).
    #[tokio::test]
    async fn a_missing_dead_letter_queue_hides_the_message_for_a_while() {
        let dir = tmp();
        let qs = Queues::load(&dir).unwrap();
        let config = QueueConfig {
            visibility_timeout: 30,
            dead_letter: Some(DeadLetter { queue: queue_arn("gone"), max_receive_count: 1 }),
            ..Default::default()
        };
        let q = qs.put("src", config).await.unwrap();
        q.send(SendInput { body: "m".into(), ..Default::default() }).await.unwrap();
        let now = ReceiveOptions { max: 1, visibility_timeout: Some(0), wait: Duration::ZERO };
        assert_eq!(q.receive(&qs, now).await.unwrap().len(), 1);
        let started = std::time::Instant::now();
        let again = ReceiveOptions { wait: Duration::from_millis(300), ..now };
        assert!(q.receive(&qs, again).await.unwrap().is_empty());
        assert!(started.elapsed() >= Duration::from_millis(290));
        assert_eq!(q.depth(), Depth { visible: 0, in_flight: 1, delayed: 0 });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn queue_names() {
        assert!(check_queue_name("jobs", false).is_ok());
        assert!(check_queue_name("jobs.fifo", true).is_ok());
        assert!(check_queue_name("jobs", true).is_err());
        assert!(check_queue_name("bad name", false).is_err());
        assert!(check_queue_name(&"x".repeat(81), false).is_err());
        assert!(check_queue_name("", false).is_err());
    }

    #[test]
    fn receipt_handles_round_trip() {
        let h = receipt_handle("q", 42, 7);
        assert_eq!(parse_receipt(&h), Some(("q".into(), 42, 7)));
        assert_eq!(parse_receipt("garbage!"), None);
    }

    #[tokio::test]
    async fn state_survives_reopen_and_torn_tail() {
        let dir = tmp();
        let qs = Queues::load(&dir).unwrap();
        let q = qs.put("q", QueueConfig::default()).await.unwrap();
        for i in 0..3 {
            q.send(SendInput { body: format!("m{i}"), ..Default::default() }).await.unwrap();
        }
        let got = q
            .receive(&qs, ReceiveOptions { max: 1, visibility_timeout: Some(100), wait: Duration::ZERO })
            .await
            .unwrap();
        assert_eq!(got[0].message.body, "m0");
        let second = q
            .receive(&qs, ReceiveOptions { max: 1, visibility_timeout: None, wait: Duration::ZERO })
            .await
            .unwrap();
        q.delete(&second[0].receipt_handle).await.unwrap();
        drop(qs);
        drop(q);
        // A torn record at the end (a crash mid-write) is cut off.
        let log = dir.join("q.log");
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"{\"t\":\"d\",\"se").unwrap();
        drop(f);
        let qs = Queues::load(&dir).unwrap();
        let q = qs.get("q").unwrap();
        assert_eq!(q.depth(), Depth { visible: 1, in_flight: 1, delayed: 0 });
        let st = q.state.lock().unwrap();
        let m0 = st.msgs.values().find(|m| m.body == "m0").unwrap();
        assert_eq!(m0.n, 1);
        assert_eq!(m0.tok, parse_receipt(&got[0].receipt_handle).unwrap().2);
        drop(st);
        assert!(std::fs::read(&log).unwrap().ends_with(b"\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
