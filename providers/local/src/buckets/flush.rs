//! The object store's background flusher: what a write handed to the OS reaches the disk at
//! most about a second after its answer.
//!
//! A write is acknowledged once its file is written and renamed into place (safe against
//! `kill -9`: the bytes are the kernel's); it then names the files and folders it changed here.
//! A thread wakes when something is pending, gathers writes for [`INTERVAL`], then fsyncs the
//! batch: the files first, then their folders (so a renamed entry points to synced data). A
//! large batch is one `syncfs(2)` of the store's filesystem instead of one fsync per file.
//! A path that is gone by then (overwritten, deleted, moved) is skipped: whoever moved it
//! names its new place. Folders of data no object names any more are removed only after the
//! batch that dropped them is synced. Dropping the flusher flushes what is pending.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a batch gathers before it is synced: an answered write waits at most this long,
/// plus the syncs themselves, to be on disk.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Above this many paths a batch is one `syncfs` rather than one fsync each.
const SYNCFS_ABOVE: usize = 64;

#[derive(Default)]
struct State {
    files: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    /// Folders to remove once the batch is synced (data no object names any more).
    garbage: Vec<PathBuf>,
    stop: bool,
    /// Batches synced so far.
    batches: u64,
    /// A batch is taken and being synced.
    in_flight: bool,
    /// The thread waits for a first write (nothing pending): only then does a write wake it.
    /// While it gathers a batch it sleeps its interval out, so a write costs no wake-up (on two
    /// cores a wake-up per write was a context switch per PUT).
    idle: bool,
}

impl State {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty() && self.garbage.is_empty()
    }
}

struct Inner {
    /// Any path on the store's filesystem (for `syncfs`).
    root: PathBuf,
    state: Mutex<State>,
    wake: Condvar,
    done: Condvar,
}

pub struct Flusher {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    /// Starts the flusher thread for a store under `root`.
    pub fn start(root: &Path) -> Flusher {
        let inner = Arc::new(Inner {
            root: root.to_path_buf(),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let i2 = inner.clone();
        let thread = std::thread::Builder::new()
            .name("bucket-flusher".into())
            .spawn(move || run(&i2))
            .expect("spawn the bucket flusher thread");
        Flusher { inner, thread: Some(thread) }
    }

    /// A file whose data was written (name its final place, after the rename).
    pub fn file(&self, path: PathBuf) {
        let mut st = self.inner.state.lock().unwrap();
        st.files.insert(path);
        self.inner.wake_if_idle(&mut st);
    }

    /// A folder whose entries changed (a rename into it, a file removed from it).
    pub fn dir(&self, path: PathBuf) {
        let mut st = self.inner.state.lock().unwrap();
        st.dirs.insert(path);
        self.inner.wake_if_idle(&mut st);
    }

    /// A folder to remove once what is pending now is synced (the parts of a replaced
    /// multipart object: removing them first could leave its old file naming no data).
    pub fn garbage(&self, path: PathBuf) {
        let mut st = self.inner.state.lock().unwrap();
        st.garbage.push(path);
        self.inner.wake_if_idle(&mut st);
    }

    /// Paths waiting for their sync (or removal).
    pub fn pending(&self) -> usize {
        let st = self.inner.state.lock().unwrap();
        st.files.len() + st.dirs.len() + st.garbage.len()
    }

    /// Waits until everything named before this call is synced (or `timeout` passes); whether
    /// it was.
    pub fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.inner.state.lock().unwrap();
        // The batch in flight may hold paths named before this call; pending ones go in the next.
        let pending = !st.is_empty();
        let target = st.batches + u64::from(st.in_flight) + u64::from(pending);
        while st.batches < target {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self.inner.done.wait_timeout(st, left).unwrap().0;
        }
        true
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.inner.state.lock().unwrap().stop = true;
        self.inner.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn wake_if_idle(&self, st: &mut State) {
        if st.idle {
            st.idle = false;
            self.wake.notify_one();
        }
    }
}

fn run(inner: &Inner) {
    loop {
        let mut st = inner.state.lock().unwrap();
        while st.is_empty() && !st.stop {
            st.idle = true;
            st = inner.wake.wait(st).unwrap();
        }
        st.idle = false;
        if st.stop && st.is_empty() {
            return;
        }
        // Gather the writes of the next INTERVAL into this batch (unless stopping).
        if !st.stop {
            let (s, _) = inner.wake.wait_timeout_while(st, INTERVAL, |s| !s.stop).unwrap();
            st = s;
        }
        let files = std::mem::take(&mut st.files);
        let dirs = std::mem::take(&mut st.dirs);
        let garbage = std::mem::take(&mut st.garbage);
        st.in_flight = true;
        drop(st);
        match sync_batch(&inner.root, &files, &dirs) {
            Ok(()) => {
                for g in garbage {
                    let _ = std::fs::remove_dir_all(g);
                }
            }
            // Kept: removing data whose replacement is not known to be on disk could lose both.
            Err(e) => eprintln!("skyform local daemon: cannot flush the object store to disk: {e}"),
        }
        let mut st = inner.state.lock().unwrap();
        st.batches += 1;
        st.in_flight = false;
        drop(st);
        inner.done.notify_all();
    }
}

fn sync_batch(root: &Path, files: &BTreeSet<PathBuf>, dirs: &BTreeSet<PathBuf>) -> io::Result<()> {
    if files.len() + dirs.len() > SYNCFS_ABOVE {
        let f = File::open(root)?;
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs takes an open descriptor and nothing else.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(());
    }
    let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
    for p in files {
        match File::open(p).and_then(|f| f.sync_data()) {
            Err(e) if !gone(&e) => return Err(e),
            _ => {}
        }
    }
    for p in dirs {
        match File::open(p).and_then(|f| f.sync_all()) {
            Err(e) if !gone(&e) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_paths_are_synced_in_the_background_within_a_second() {
        let root = std::env::temp_dir().join(format!("skyform-flush-{:x}", crate::pool::rand_u64()));
        std::fs::create_dir_all(&root).unwrap();
        let f = Flusher::start(&root);
        assert!(f.wait_synced(Duration::from_secs(1)), "nothing pending: nothing to wait for");
        std::fs::write(root.join("a"), b"a").unwrap();
        f.file(root.join("a"));
        f.file(root.join("moved-away"));
        f.dir(root.clone());
        std::fs::create_dir_all(root.join("old/parts")).unwrap();
        f.garbage(root.join("old"));
        assert_eq!(f.pending(), 4);
        let t = std::time::Instant::now();
        assert!(f.wait_synced(Duration::from_secs(5)), "the batch was synced");
        assert_eq!(f.pending(), 0);
        assert!(!root.join("old").exists(), "garbage is removed after the sync");
        assert!(t.elapsed() >= INTERVAL / 2, "the batch gathered writes first: {:?}", t.elapsed());
        // INTERVAL plus the syncs themselves; the bound is loose for a loaded CI machine.
        assert!(t.elapsed() < Duration::from_secs(3), "synced within about a second: {:?}", t.elapsed());
        // A large batch is one syncfs.
        for i in 0..(SYNCFS_ABOVE + 10) {
            let p = root.join(format!("f{i}"));
            std::fs::write(&p, b"x").unwrap();
            f.file(p);
        }
        assert!(f.wait_synced(Duration::from_secs(5)));
        assert_eq!(f.pending(), 0);
        // Dropping flushes what is pending at once.
        f.file(root.join("a"));
        let inner = f.inner.clone();
        drop(f);
        assert_eq!(inner.state.lock().unwrap().files.len(), 0);
        let _ = std::fs::remove_dir_all(&root);
    }
}
