//! Function logs: what a function's processes print, one JSON line per printed line,
//! `{"time_ms","request_id","message"}`, in `.skyform/local/logs/<stack>/<function>.log`,
//! with Lambda's `START`/`END`/`REPORT` lines around every invocation.
//!
//! Writing goes through one task per function that appends to a buffered file and flushes
//! when its queue runs dry: a burst of lines costs one write, and no request waits on disk.

use std::io::{BufRead, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// One line of a function's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub time_ms: u64,
    pub request_id: Option<String>,
    pub message: String,
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

struct Line {
    time_ms: u64,
    request_id: Option<Arc<str>>,
    message: String,
}

/// The sending side of a function's log; cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::UnboundedSender<Line>,
}

impl LogSink {
    /// Starts the writer task for `path`.
    pub fn open(path: PathBuf) -> LogSink {
        let (tx, mut rx) = mpsc::unbounded_channel::<Line>();
        tokio::spawn(async move {
            let file = (|| {
                std::fs::create_dir_all(path.parent()?).ok()?;
                std::fs::OpenOptions::new().create(true).append(true).open(&path).ok()
            })();
            let Some(file) = file else {
                eprintln!("skyform-local: cannot open log file {}", path.display());
                while rx.recv().await.is_some() {}
                return;
            };
            let mut out = std::io::BufWriter::new(file);
            let mut buf = Vec::with_capacity(256);
            while let Some(line) = rx.recv().await {
                let mut next = Some(line);
                while let Some(line) = next {
                    buf.clear();
                    let rec = LogRecordRef {
                        time_ms: line.time_ms,
                        request_id: line.request_id.as_deref(),
                        message: &line.message,
                    };
                    if serde_json::to_writer(&mut buf, &rec).is_ok() {
                        buf.push(b'\n');
                        let _ = out.write_all(&buf);
                    }
                    next = rx.try_recv().ok();
                }
                let _ = out.flush();
            }
            let _ = out.flush();
        });
        LogSink { tx }
    }

    pub fn line(&self, request_id: Option<Arc<str>>, message: String) {
        let _ = self.tx.send(Line { time_ms: now_ms(), request_id, message });
    }
}

#[derive(Serialize)]
struct LogRecordRef<'a> {
    time_ms: u64,
    request_id: Option<&'a str>,
    message: &'a str,
}

/// Reads the records of a log file at or after `since_ms`, starting at byte `offset`;
/// returns them and the offset after the last complete line.
pub fn read_from(path: &Path, offset: u64, since_ms: u64) -> std::io::Result<(Vec<LogRecord>, u64)> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    // A file shorter than our offset was replaced (the function was deleted and redeployed).
    let mut pos = if len < offset { 0 } else { offset };
    file.seek(std::io::SeekFrom::Start(pos))?;
    let mut reader = std::io::BufReader::new(file);
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break; // end, or a line still being written
        }
        pos += n as u64;
        if let Ok(rec) = serde_json::from_slice::<LogRecord>(&line)
            && rec.time_ms >= since_ms
        {
            out.push(rec);
        }
    }
    Ok((out, pos))
}

/// Follows a log file: calls `on_record` for every record at or after `since_ms`, then, when
/// `follow`, keeps polling for new ones until `on_record` returns false.
pub async fn follow_file(
    path: &Path,
    since_ms: u64,
    follow: bool,
    on_record: &mut (dyn FnMut(LogRecord) -> bool + Send),
) -> std::io::Result<()> {
    let mut offset = 0;
    loop {
        let p = path.to_path_buf();
        let (records, next) = tokio::task::spawn_blocking(move || read_from(&p, offset, since_ms))
            .await
            .map_err(std::io::Error::other)??;
        offset = next;
        for r in records {
            if !on_record(r) {
                return Ok(());
            }
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
