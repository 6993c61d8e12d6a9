//! How durable an acknowledged write to a bucket or a table is, chosen by the daemon's
//! environment.
//!
//! By default an acknowledged write is `kill -9`-safe at once (its bytes are handed to the
//! operating system before the answer: an object written and renamed into place, a table's
//! change appended to its write-ahead log) and on disk within about a second (a background
//! fsync), like Redis's `appendfsync everysec`: an OS crash or a power cut can lose the last
//! second or so of acknowledged writes, never corrupt older ones. `SKYFORM_LOCAL_SYNC=always`
//! (inherited from the `skyform` command that starts the daemon) fsyncs every write before its
//! answer. Queues, topics and the delivery outboxes fsync before every answer either way.

use std::sync::OnceLock;

/// Whether `SKYFORM_LOCAL_SYNC=always`: fsync before every answer. Read once per process.
pub fn sync_always() -> bool {
    static ALWAYS: OnceLock<bool> = OnceLock::new();
    *ALWAYS.get_or_init(|| std::env::var("SKYFORM_LOCAL_SYNC").is_ok_and(|v| v == "always"))
}
