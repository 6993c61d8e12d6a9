//! The fake "cloud": where live resources are kept.
//!
//! With a store folder, each live resource is a file `<id>.json`, so that a test can see what
//! exists, cause drift by editing a file, or delete a resource behind skyform's back. Files are
//! written to a temporary name and renamed into place, so a create or an update that is cut short
//! (a crash, a kill) leaves either the old file or the new one, never half of one. Without a
//! folder, resources live in a map in memory, which is what benchmarks want.
//!
//! Both keep an index from resource name to the newest id created under that name, so resolving
//! an interrupted create (`read` without an id) is a map look-up, not a folder scan; the scan
//! remains as the fallback for resources created by an earlier process.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One live resource, as stored in `<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
    pub id: String,
    pub inputs: Value,
    pub outputs: Value,
    /// When it was created, in nanoseconds since the Unix epoch (strictly increasing within a
    /// process): `read` without an id picks the newest resource with the name.
    pub created_seq: u64,
}

#[derive(Debug, Default)]
pub struct Store {
    /// `None`: in memory.
    dir: Option<PathBuf>,
    memory: Mutex<HashMap<String, Record>>,
    /// name → (created_seq, id) of the newest resource created by this process.
    newest: Mutex<HashMap<String, (u64, String)>>,
}

impl Store {
    pub fn in_memory() -> Self {
        Store::default()
    }

    pub fn in_dir(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Store { dir: Some(dir), ..Store::default() })
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn path(dir: &Path, id: &str) -> PathBuf {
        dir.join(format!("{id}.json"))
    }

    /// Writes a record (new or replacing an old one) all-or-nothing.
    ///
    /// The calls are plain blocking file IO: each is one small write and a rename, cheaper than a
    /// hop to tokio's blocking pool, and the runtime has a thread per core to spare.
    pub fn put(&self, record: &Record) -> std::io::Result<()> {
        match &self.dir {
            Some(dir) => {
                let tmp = dir.join(format!(".{}.json.tmp", record.id));
                let bytes = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, Self::path(dir, &record.id))?;
            }
            None => {
                self.memory.lock().unwrap().insert(record.id.clone(), record.clone());
            }
        }
        let mut newest = self.newest.lock().unwrap();
        let entry = newest.entry(record.name.clone()).or_insert((0, String::new()));
        if record.created_seq >= entry.0 {
            *entry = (record.created_seq, record.id.clone());
        }
        Ok(())
    }

    /// The record with this id, `None` when there is none.
    pub fn get(&self, id: &str) -> Result<Option<Record>, String> {
        match &self.dir {
            Some(dir) => read_file(&Self::path(dir, id)),
            None => Ok(self.memory.lock().unwrap().get(id).cloned()),
        }
    }

    /// Removes the record; false when there was none.
    pub fn remove(&self, id: &str) -> std::io::Result<bool> {
        match &self.dir {
            Some(dir) => match std::fs::remove_file(Self::path(dir, id)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            },
            None => Ok(self.memory.lock().unwrap().remove(id).is_some()),
        }
    }

    /// The newest live resource with this name.
    pub fn newest_named(&self, name: &str) -> Result<Option<Record>, String> {
        let indexed = self.newest.lock().unwrap().get(name).map(|(_, id)| id.clone());
        if let Some(id) = indexed
            && let Some(record) = self.get(&id)?
            && record.name == name
        {
            return Ok(Some(record));
        }
        // Not created by this process, or deleted since: look at everything.
        match &self.dir {
            None => Ok(self
                .memory
                .lock()
                .unwrap()
                .values()
                .filter(|r| r.name == name)
                .max_by_key(|r| r.created_seq)
                .cloned()),
            Some(dir) => {
                let entries = std::fs::read_dir(dir)
                    .map_err(|e| format!("cannot list the store {}: {e}", dir.display()))?;
                let mut best: Option<Record> = None;
                for entry in entries.flatten() {
                    let file_name = entry.file_name();
                    let file_name = file_name.to_string_lossy();
                    if file_name.starts_with('.') || !file_name.ends_with(".json") {
                        continue;
                    }
                    if let Some(r) = read_file(&entry.path())?
                        && r.name == name
                        && best.as_ref().is_none_or(|b| r.created_seq > b.created_seq)
                    {
                        best = Some(r);
                    }
                }
                Ok(best)
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Option<Record>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("fake: the store file {} is not a valid record: {e}", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("fake: cannot read {}: {e}", path.display())),
    }
}
