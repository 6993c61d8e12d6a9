//! How durable an acknowledged write is: `SKYFORM_LOCAL_SYNC=always` in the daemon's
//! environment asks for an `fsync` before every answer, trading speed for surviving an OS
//! crash or power cut too. Without it, stores that support it (tables) are `kill -9`-safe at
//! once and on disk within about a second.

/// `SKYFORM_LOCAL_SYNC` is `always`.
pub fn sync_always() -> bool {
    std::env::var("SKYFORM_LOCAL_SYNC").is_ok_and(|v| v == "always")
}
