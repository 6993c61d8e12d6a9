//! The append-only journal: how a run records what it does while it does it.
//!
//! Before every mutating provider call a `begin` entry is appended and fsynced; after the call
//! an `end` entry records its result as [`Mutation`]s. A run appends two short lines per step
//! instead of rewriting the whole state, so the bytes written grow linearly with the number of
//! steps. At the end of the run the journal is compacted into the state file.
//!
//! Fsyncs are grouped: a single writer thread takes every entry queued since its last fsync,
//! writes them together and syncs once, then acknowledges them all. With 64 steps in flight a
//! step waits for one shared fsync instead of 64 in a row.
//!
//! Replay after a crash: `end` entries are applied in order; a `begin` without its `end`
//! becomes a [`PendingOp`]; a torn last line (the crash hit mid-write) is ignored, which is
//! safe because a step waits for its `begin` to be durable before calling the provider.
//!
//! In a remote backend (see [`super::backend`]) a group commit is one new object, a *segment*:
//! objects cannot be appended to, and rewriting the whole journal per commit would upload
//! O(n²) bytes over a run. `end` entries, which need not be durable before anything, ride along
//! with the next segment (or are written on their own once the writer has been idle 50 ms), so
//! a run of n steps writes about n segments, not 2n.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::backend::Remote;
use super::{Mutation, PendingOp, Snapshot, StackFiles};
use crate::error::{Error, ErrorKind, Result};

/// Format 2 records secrets sealed (`$encrypted`), like state format 2; a format-1 journal (left
/// by an older skyform that was killed) is replayed with its `[secret:...]` fingerprints turned
/// into legacy secrets, as the state upgrade does.
pub const JOURNAL_FORMAT: u64 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    /// The first line: which state the journal applies to.
    Header {
        journal: u64,
        lineage: String,
        base_serial: u64,
    },
    Begin {
        seq: u64,
        op: PendingOp,
    },
    End {
        seq: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mutations: Vec<Mutation>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Mutations that need no provider call (a rename, new options, the stack outputs).
    Record {
        mutations: Vec<Mutation>,
    },
}

type Job = (Vec<u8>, Option<oneshot::Sender<std::io::Result<()>>>);

/// An open journal. Cloning shares the writer.
#[derive(Clone)]
pub struct Journal {
    tx: std::sync::mpsc::Sender<Job>,
    seq: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    path: PathBuf,
}

impl Journal {
    /// Creates the stack's journal where its backend keeps it.
    pub async fn create_for(files: &StackFiles, lineage: &str, base_serial: u64) -> Result<Journal> {
        let Some(remote) = files.remote.clone() else {
            return Journal::create(&files.journal(), lineage, base_serial).await;
        };
        if !remote.segments()?.is_empty() {
            return Err(Error::new(
                ErrorKind::State,
                format!("a journal already exists at {}", remote.describe(&remote.journal_prefix())),
            )
            .with_hint(
                "another command is writing this stack without holding its lock; nothing was changed",
            ));
        }
        let remote_name = remote.describe(&remote.journal_prefix());
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let bytes = Arc::new(AtomicU64::new(0));
        let counter = bytes.clone();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || remote_writer(remote, rx, counter))
            .map_err(|e| Error::io("starting the journal writer", e))?;
        let journal =
            Journal { tx, seq: Arc::new(AtomicU64::new(0)), bytes, path: PathBuf::from(remote_name) };
        journal
            .append(&Entry::Header { journal: JOURNAL_FORMAT, lineage: lineage.to_string(), base_serial })
            .await?;
        Ok(journal)
    }

    /// Creates the journal file (it must not exist: a leftover journal is recovered first) and
    /// writes its header durably.
    pub async fn create(path: &Path, lineage: &str, base_serial: u64) -> Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("creating the journal {}", path.display()), e))?;
        if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let bytes = Arc::new(AtomicU64::new(0));
        let counter = bytes.clone();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer(file, rx, counter))
            .map_err(|e| Error::io("starting the journal writer", e))?;
        let journal = Journal { tx, seq: Arc::new(AtomicU64::new(0)), bytes, path: path.to_path_buf() };
        journal
            .append(&Entry::Header { journal: JOURNAL_FORMAT, lineage: lineage.to_string(), base_serial })
            .await?;
        Ok(journal)
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Appends an entry and waits until it is durable.
    pub async fn append(&self, entry: &Entry) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((encode(entry), Some(ack)))
            .map_err(|_| Error::new(ErrorKind::Io, "the journal writer stopped"))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::io(format!("writing the journal {}", self.path.display()), e)),
            Err(_) => Err(Error::new(ErrorKind::Io, "the journal writer stopped")),
        }
    }

    /// Appends an entry without waiting for it to be durable (an `end` entry: if it is lost, the
    /// step shows as pending and is resolved by reading the resource).
    pub fn append_nowait(&self, entry: &Entry) {
        let _ = self.tx.send((encode(entry), None));
    }

    /// Waits until everything appended so far is durable.
    pub async fn sync(&self) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((Vec::new(), Some(ack)))
            .map_err(|_| Error::new(ErrorKind::Io, "the journal writer stopped"))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::io("syncing the journal", e)),
            Err(_) => Err(Error::new(ErrorKind::Io, "the journal writer stopped")),
        }
    }

    /// Bytes written to the journal so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

fn encode(entry: &Entry) -> Vec<u8> {
    let mut line = serde_json::to_vec(entry).expect("journal entries serialize");
    line.push(b'\n');
    line
}

fn writer(file: std::fs::File, rx: std::sync::mpsc::Receiver<Job>, bytes: Arc<AtomicU64>) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut n = 0u64;
        let mut result = Ok(());
        for (line, _) in &batch {
            n += line.len() as u64;
            if let Err(e) = out.write_all(line) {
                result = Err(e);
                break;
            }
        }
        let needs_sync = batch.iter().any(|(_, ack)| ack.is_some());
        if result.is_ok() {
            result = out.flush();
        }
        if result.is_ok() && needs_sync {
            result = out.get_ref().sync_data();
        }
        bytes.fetch_add(n, Ordering::Relaxed);
        for (_, ack) in batch {
            if let Some(ack) = ack {
                let _ = ack.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                });
            }
        }
    }
}

/// The remote journal's writer: each batch that someone waits for becomes one segment, with
/// the un-awaited entries queued before it.
fn remote_writer(remote: Arc<Remote>, rx: std::sync::mpsc::Receiver<Job>, bytes: Arc<AtomicU64>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut pending: Vec<u8> = Vec::new();
    let mut next = 0u64;
    let mut failed: Option<String> = None;
    let mut put = |pending: &mut Vec<u8>, failed: &mut Option<String>| {
        if pending.is_empty() || failed.is_some() {
            return;
        }
        match remote.put_segment(next, pending) {
            Ok(true) => {
                next += 1;
                bytes.fetch_add(pending.len() as u64, Ordering::Relaxed);
                pending.clear();
            }
            Ok(false) => {
                *failed = Some(format!(
                    "{} already exists: another command writes this stack's journal (was this command's lock removed?)",
                    remote.describe(&remote.segment_key(next))
                ))
            }
            Err(e) => *failed = Some(e.message),
        }
    };
    loop {
        // Wait for work; with un-awaited entries queued, wait at most 50 ms before writing them.
        let first = if pending.is_empty() {
            match rx.recv() {
                Ok(job) => Some(job),
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut flush = first.is_none();
        let mut acks = Vec::new();
        for (line, ack) in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            pending.extend_from_slice(&line);
            if let Some(ack) = ack {
                acks.push(ack);
                flush = true;
            }
        }
        if flush {
            put(&mut pending, &mut failed);
        }
        for ack in acks {
            let _ = ack.send(match &failed {
                Some(e) => Err(std::io::Error::other(e.clone())),
                None => Ok(()),
            });
        }
    }
    // Every sender is gone: whatever is still queued goes out.
    put(&mut pending, &mut failed);
}

/// Replays the stack's journal, wherever its backend keeps it, over `snap`. Returns `false`
/// when there is no journal.
pub fn replay_for(files: &StackFiles, snap: &mut Snapshot) -> Result<bool> {
    match &files.remote {
        None => replay(&files.journal(), snap),
        Some(remote) => match remote.read_journal()? {
            None => Ok(false),
            Some(bytes) => replay_from(
                std::io::BufReader::new(&bytes[..]),
                &remote.describe(&remote.journal_prefix()),
                snap,
            ),
        },
    }
}

/// Replays a journal over `snap`. Returns `false` when there is no journal.
pub fn replay(path: &Path, snap: &mut Snapshot) -> Result<bool> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    replay_from(std::io::BufReader::new(file), &path.display().to_string(), snap)
}

fn replay_from(reader: impl BufRead, origin: &str, snap: &mut Snapshot) -> Result<bool> {
    let mut lines = reader.lines();
    let header = match lines.next() {
        None => return Ok(true), // created, header never written: nothing happened
        Some(line) => line.map_err(|e| Error::io(format!("reading {origin}"), e))?,
    };
    let version = match serde_json::from_str::<Entry>(&header) {
        Ok(Entry::Header { lineage, base_serial, journal }) => {
            if lineage != snap.lineage || base_serial != snap.serial {
                // The journal belongs to a state that was already compacted (the run died
                // between writing the state and removing the journal), or to another stack.
                return Ok(true);
            }
            journal
        }
        // A torn header: the run died before it started anything.
        _ => return Ok(true),
    };
    let mut begun: BTreeMap<u64, PendingOp> = BTreeMap::new();
    let mut mutations: Vec<Mutation> = Vec::new();
    let mut torn: Option<(usize, String)> = None;
    for (n, line) in lines.enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(_) => break,
        };
        if let Some((at, why)) = &torn {
            if line.trim().is_empty() {
                continue;
            }
            // Only the last line can be torn (nothing is appended after a crash): an unreadable
            // line followed by more is damage, and skipping it would lose what came after.
            return Err(Error::new(
                ErrorKind::State,
                format!("the journal {origin} is damaged: line {} cannot be read ({why})", at + 2),
            )
            .with_hint(format!(
                "nothing was changed; move {origin} out of the way (keep it for a bug report), then run \
                 `skyform refresh` to read the resources back from their providers"
            )));
        }
        let parsed = if version < 2 {
            serde_json::from_str::<serde_json::Value>(&line)
                .and_then(|v| serde_json::from_value(crate::secrets::Sealed::from_v1(v).sealed().clone()))
        } else {
            serde_json::from_str(&line)
        };
        let entry: Entry = match parsed {
            Ok(e) => e,
            Err(e) => {
                torn = Some((n, e.to_string())); // a torn last line, unless more follows
                continue;
            }
        };
        match entry {
            Entry::Header { .. } => {}
            Entry::Begin { seq, op } => {
                begun.insert(seq, op);
            }
            Entry::End { seq, mutations: m, .. } => {
                begun.remove(&seq);
                mutations.extend(m);
            }
            Entry::Record { mutations: m } => mutations.extend(m),
        }
    }
    snap.apply_all(mutations.iter());
    for op in begun.into_values() {
        if !snap.pending_operations.contains(&op) {
            snap.pending_operations.push(op);
        }
    }
    Ok(true)
}

/// The lineage named by the header of the stack's journal, wherever it is kept.
pub fn lineage_for(files: &StackFiles) -> Option<String> {
    match &files.remote {
        None => lineage(&files.journal()),
        Some(remote) => {
            let first = remote.segments().ok()?.into_iter().next()?;
            let bytes = remote.store.get(&first).ok()??.bytes;
            header_lineage(bytes.split(|b| *b == b'\n').next()?)
        }
    }
}

/// Removes the stack's journal, wherever it is kept.
pub fn remove_for(files: &StackFiles) -> Result<()> {
    match &files.remote {
        None => remove(&files.journal()),
        Some(remote) => remote.remove_journal(),
    }
}

/// The lineage named by a journal's header, if there is a readable one.
pub fn lineage(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let line = std::io::BufReader::new(file).lines().next()?.ok()?;
    header_lineage(line.as_bytes())
}

fn header_lineage(line: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Entry>(line).ok()? {
        Entry::Header { lineage, .. } => Some(lineage),
        _ => None,
    }
}

pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_with(lines: &[&str]) -> (PathBuf, Snapshot) {
        let dir =
            std::env::temp_dir().join(format!("skyform-journal-{}-{}", std::process::id(), lines.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dev.journal");
        let snap = Snapshot::new("p", "dev", "l1".into());
        let mut text =
            String::from("{\"entry\":\"header\",\"journal\":1,\"lineage\":\"l1\",\"base_serial\":0}\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        (path, snap)
    }

    const BEGIN: &str =
        r#"{"entry":"begin","seq":1,"op":{"op":"create","name":"a","type":"fake:R","inputs":{}}}"#;

    #[test]
    fn a_torn_last_line_is_ignored_but_a_damaged_middle_line_is_an_error() {
        let (path, mut snap) = journal_with(&[BEGIN, r#"{"entry":"end","se"#]);
        assert!(replay(&path, &mut snap).unwrap());
        assert_eq!(snap.pending_operations.len(), 1, "the begin without a readable end is pending");

        let (path, mut snap) = journal_with(&[r#"{"entry":"end","se"#, BEGIN, ""]);
        let err = replay(&path, &mut snap).unwrap_err();
        assert_eq!(err.kind, ErrorKind::State);
        assert!(err.message.contains("line 2 cannot be read"), "{}", err.message);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_format_1_journal_replays_with_its_fingerprints_as_legacy_secrets() {
        let dir = std::env::temp_dir().join(format!("skyform-journal-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dev.journal");
        let lines = [
            r#"{"entry":"header","journal":1,"lineage":"l","base_serial":0}"#,
            r#"{"entry":"begin","seq":1,"op":{"op":"create","name":"d","type":"core:Data","inputs":{"value":"[secret:00ff00ff00ff00ff]"}}}"#,
            r#"{"entry":"end","seq":1,"mutations":[{"kind":"put","resource":{"name":"d","type":"core:Data","id":"1","inputs":{"value":"[secret:00ff00ff00ff00ff]"},"outputs":{}}}]}"#,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let mut snap = Snapshot::new("p", "dev", "l".into());
        assert!(replay(&path, &mut snap).unwrap());
        assert_eq!(snap.resources.len(), 1);
        assert_eq!(snap.legacy_fingerprints(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
