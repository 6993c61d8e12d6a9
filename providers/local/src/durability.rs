//! How durable the local cloud's stores are, chosen by the daemon's environment.
//!
//! By default an acknowledged write is `kill -9`-safe at once (written and renamed before the
//! answer) and on disk within about a second (a background flush), like Redis's
//! `appendfsync everysec`. `SKYFORM_LOCAL_SYNC=always` (inherited from the `skyform` command
//! that starts the daemon) makes every write fsynced before its answer.

/// Whether `SKYFORM_LOCAL_SYNC=always`: fsync before every answer.
pub fn sync_always() -> bool {
    std::env::var("SKYFORM_LOCAL_SYNC").is_ok_and(|v| v == "always")
}
