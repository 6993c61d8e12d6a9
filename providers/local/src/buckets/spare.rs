//! File-system work a write would otherwise do while its client waits, done by a background
//! thread: making the temporary file it is written to, and freeing the object it replaces.
//!
//! Measured on ext4 (4 KiB PUTs overwriting objects), two costs sat on a PUT's critical path:
//! creating its temporary file (`open(O_CREAT|O_EXCL)`: an inode and a folder entry) and the
//! eviction of the replaced object's inode inside `rename` (truncate, free the blocks, with
//! `discard` trim them), because the rename drops its last link. So:
//! - each bucket keeps a few empty temporary files made ahead, open ([`Pool`]); a write takes
//!   one, and the thread makes more when the pool runs low. They live in the bucket's `tmp/`
//!   like any temporary file, so a crash leaves them where the next start clears them.
//! - a write that replaces an object swaps the new file and the old one (`renameat2` with
//!   `RENAME_EXCHANGE`: atomic, like the rename it replaces) and hands the old one, now in
//!   `tmp/`, here to remove; a delete (or a file system without the exchange) holds the file
//!   open (`O_PATH`) while its last link goes and hands the descriptor here to close. Either
//!   way the inode is freed in this thread, at most about a second later. The swap also spares
//!   the write ext4's `auto_da_alloc` (a rename over an existing file starts the new file's
//!   writeback at once, in the `rename` call); the flusher's fsync writes it a moment later.
//!
//! Nothing here changes what a write guarantees: the rename into place still happens before
//! the answer, and the fsyncs are still the flusher's (or the write's, when syncing always).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Spare files a bucket's pool is refilled to.
pub const KEEP: usize = 16;
/// A pool with fewer spares than this asks for a refill (one wake-up per few writes).
const REFILL_BELOW: usize = 8;
/// Replaced files are released in batches of this many, or after [`RELEASE_WITHIN`].
const RELEASE_BATCH: usize = 32;
const RELEASE_WITHIN: Duration = Duration::from_secs(1);

/// Makes a new empty temporary file with a random name in `dir`.
pub fn new_temp_file(dir: &Path) -> std::io::Result<(PathBuf, File)> {
    let p = dir.join(format!("{:016x}{:016x}", crate::pool::rand_u64(), crate::pool::rand_u64()));
    let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&p)?;
    Ok((p, f))
}

/// A bucket's spare temporary files, made ahead in its `tmp/`.
pub struct Pool {
    dir: PathBuf,
    files: Mutex<Vec<(PathBuf, File)>>,
    /// A refill is queued or running.
    asked: AtomicBool,
    /// The bucket is being deleted: no more refills.
    closed: AtomicBool,
    /// Held by a refill while it makes files (so a bucket's deletion can wait for it).
    refilling: Mutex<()>,
}

impl Pool {
    pub fn new(dir: PathBuf) -> Arc<Pool> {
        Arc::new(Pool {
            dir,
            files: Mutex::new(Vec::new()),
            asked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            refilling: Mutex::new(()),
        })
    }

    /// A spare file, if there is one; and whether the pool wants refilling.
    fn take(&self) -> (Option<(PathBuf, File)>, bool) {
        let mut files = self.files.lock().unwrap();
        let f = files.pop();
        (f, files.len() < REFILL_BELOW)
    }

    /// Stops refilling (the bucket is being deleted), waiting for a refill under way; the
    /// spares are closed (their folder is about to be removed).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _refill = self.refilling.lock().unwrap();
        self.files.lock().unwrap().clear();
    }

    /// How many spares the pool holds now.
    pub fn len(&self) -> usize {
        self.files.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn refill(&self) {
        let _refill = self.refilling.lock().unwrap();
        self.asked.store(false, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let want = KEEP.saturating_sub(self.len());
        let mut made = Vec::with_capacity(want);
        for _ in 0..want {
            match new_temp_file(&self.dir) {
                Ok(f) => made.push(f),
                // A write that finds the pool empty makes its own file and reports the error.
                Err(_) => break,
            }
        }
        self.files.lock().unwrap().extend(made);
    }
}

/// A replaced or deleted object's file, let go of by the thread: the inode is freed then.
pub enum Displaced {
    /// Held open while its last link went; closed.
    Held(File),
    /// Swapped into `tmp/` by the write that replaced it; removed.
    Moved(PathBuf),
}

impl Drop for Displaced {
    fn drop(&mut self) {
        if let Displaced::Moved(p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[derive(Default)]
struct State {
    refill: Vec<Arc<Pool>>,
    release: Vec<Displaced>,
    /// Taken from `release` and being let go of now.
    releasing: usize,
    stop: bool,
    /// The thread waits with nothing to do and no deadline: a first replaced file wakes it.
    idle: bool,
}

struct Inner {
    state: Mutex<State>,
    wake: Condvar,
}

/// The background thread of a store: refills pools, releases replaced files.
pub struct Janitor {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Janitor {
    pub fn start() -> Janitor {
        let inner = Arc::new(Inner { state: Mutex::new(State::default()), wake: Condvar::new() });
        let i2 = inner.clone();
        let thread = std::thread::Builder::new()
            .name("bucket-janitor".into())
            .spawn(move || run(&i2))
            .expect("spawn the bucket janitor thread");
        Janitor { inner, thread: Some(thread) }
    }

    /// A temporary file in `pool`'s folder: a spare when there is one (made now otherwise);
    /// asks for a refill when the pool runs low.
    pub fn temp_file(&self, pool: &Arc<Pool>) -> std::io::Result<(PathBuf, File)> {
        let (f, low) = pool.take();
        if low && !pool.closed.load(Ordering::Relaxed) && !pool.asked.swap(true, Ordering::SeqCst) {
            let mut st = self.inner.state.lock().unwrap();
            st.refill.push(pool.clone());
            st.idle = false;
            self.inner.wake.notify_one();
        }
        match f {
            Some(f) => Ok(f),
            None => new_temp_file(&pool.dir),
        }
    }

    /// Lets go of `f` here, later (its inode, if this was its last reference, is freed here).
    pub fn release(&self, f: Displaced) {
        let mut st = self.inner.state.lock().unwrap();
        st.release.push(f);
        if st.idle || st.release.len() >= RELEASE_BATCH {
            st.idle = false;
            self.inner.wake.notify_one();
        }
    }

    /// Files waiting to be released, or being released now.
    pub fn releasing(&self) -> usize {
        let st = self.inner.state.lock().unwrap();
        st.release.len() + st.releasing
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.inner.state.lock().unwrap().stop = true;
        self.inner.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(inner: &Inner) {
    let mut st = inner.state.lock().unwrap();
    loop {
        if st.refill.is_empty() && st.release.len() < RELEASE_BATCH && !st.stop {
            if st.release.is_empty() {
                st.idle = true;
                st = inner.wake.wait(st).unwrap();
            } else {
                st = inner.wake.wait_timeout(st, RELEASE_WITHIN).unwrap().0;
                // Released on time even if nothing else woke the thread.
                if st.refill.is_empty() && st.release.len() < RELEASE_BATCH && !st.stop {
                    let release = std::mem::take(&mut st.release);
                    st.releasing = release.len();
                    drop(st);
                    drop(release);
                    st = inner.state.lock().unwrap();
                    st.releasing = 0;
                }
            }
            st.idle = false;
            continue;
        }
        let refill = std::mem::take(&mut st.refill);
        let release = std::mem::take(&mut st.release);
        st.releasing = release.len();
        let stop = st.stop;
        drop(st);
        // Refills first: a write waiting for a spare is on a request's path, a release is not.
        if !stop {
            for p in refill {
                p.refill();
            }
        }
        drop(release);
        st = inner.state.lock().unwrap();
        st.releasing = 0;
        if stop {
            drop(std::mem::take(&mut st.release));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_refill_in_the_background_and_replaced_files_are_released_within_a_second() {
        let dir = std::env::temp_dir().join(format!("skyform-spare-{:x}", crate::pool::rand_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let j = Janitor::start();
        let pool = Pool::new(dir.clone());
        // The first take finds the pool empty: the file is made now, and the pool refills.
        let (p, _f) = j.temp_file(&pool).unwrap();
        assert!(p.starts_with(&dir) && std::fs::metadata(&p).unwrap().len() == 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.len() < KEEP && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(pool.len(), KEEP, "refilled off the caller's path");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), KEEP + 1);
        // Spares are distinct, empty, writable files in the folder.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..KEEP {
            let (p, mut f) = j.temp_file(&pool).unwrap();
            use std::io::Write;
            f.write_all(b"x").unwrap();
            assert!(p.starts_with(&dir));
            assert!(seen.insert(p.clone()), "{} handed out twice", p.display());
            assert_eq!(std::fs::read(&p).unwrap(), b"x");
        }
        // A released file is closed by the thread within about a second: its inode is freed
        // then (the replaced object's space comes back).
        let victim = dir.join("victim");
        std::fs::write(&victim, vec![7u8; 1 << 20]).unwrap();
        let held = File::open(&victim).unwrap();
        std::fs::remove_file(&victim).unwrap();
        j.release(Displaced::Held(held));
        let moved = dir.join("moved");
        std::fs::write(&moved, b"old object").unwrap();
        j.release(Displaced::Moved(moved.clone()));
        assert!(j.releasing() <= 2);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while j.releasing() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(j.releasing(), 0, "released within the deadline");
        assert!(!moved.exists(), "a moved file is removed");
        // A closed pool is not refilled and drops its spares.
        pool.close();
        assert!(pool.is_empty());
        j.temp_file(&pool).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(pool.is_empty(), "a closed pool stays empty");
        drop(j);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
