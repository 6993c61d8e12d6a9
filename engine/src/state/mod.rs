//! The stack's recorded state, and how it is kept safe on disk.
//!
//! A stack's state lives in `state/<stack>.json`: deterministic, pretty-printed JSON (objects
//! with sorted keys, resources sorted by name) so that it diffs cleanly in git and a run that
//! changes nothing writes nothing. While a command mutates real resources it appends to
//! `state/<stack>.journal` (see [`journal`]) instead of rewriting the file per step; at the end
//! the journal is compacted into a new state file by an atomic rename. A run killed at any
//! instant therefore leaves the old state file plus a journal that replays on top of it.
//!
//! **Architecture Invariant:** the state file is only ever replaced whole, by rename, after
//! [`Snapshot::validate`] passed; a reader never sees a half-written file.
//!
//! The on-disk format is versioned (`format`): [`load_file`] reads the version first and
//! refuses a newer one. Documentation, JSON Schema and one fixture per format version live in
//! the repository's top-level `state/` folder.
//!
//! The same files can live in an object store instead of the folder (a team's S3 bucket): see
//! [`backend`]. [`StackFiles`] says where a stack is kept, and every function here that reads
//! or writes a stack goes through it, so the rest of the engine does not know which it is.

pub mod backend;
pub mod journal;
pub mod lock;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::ResourceOptions;
use crate::secrets::Sealed;

/// The state format this binary writes (and the newest it reads). Format 2 records secrets
/// encrypted (`{"$encrypted": "v1:..."}`); format 1 kept fingerprints (`[secret:...]`).
pub const STATE_FORMAT: u64 = 2;

/// One resource as recorded in state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceState {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub id: String,
    /// The checked inputs the resource was last created or updated with (secrets sealed).
    pub inputs: Sealed,
    pub outputs: Sealed,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    #[serde(default, skip_serializing_if = "ResourceOptions::is_default")]
    pub options: ResourceOptions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// An old copy left behind by a create-before-delete replacement that still has to be
    /// deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pending_delete: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The kind of a mutating provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Create,
    Update,
    Delete,
}

/// A mutating provider call that was begun and whose result was never recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingOp {
    pub op: OpKind,
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    /// The resource's id, known for update and delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The inputs of the call (for create: what a lookup by name needs), secrets sealed.
    #[serde(default)]
    pub inputs: Sealed,
}

/// A stack's state in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub format: u64,
    pub lineage: String,
    pub serial: u64,
    pub project: String,
    pub stack: String,
    #[serde(default)]
    pub resources: Vec<ResourceState>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Sealed>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_operations: Vec<PendingOp>,
}

/// A change to a snapshot, recorded in the journal after a provider call succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // short-lived values; boxing would only add noise
pub enum Mutation {
    /// Insert the resource, replacing the live entry of the same name.
    Put { resource: ResourceState },
    /// Forget the entry with this name and id.
    Remove { name: String, id: String },
    /// Mark the entry with this name and id as an old copy awaiting deletion.
    Retire { name: String, id: String },
    /// Replace the stack outputs.
    Outputs { outputs: BTreeMap<String, Sealed> },
}

impl Snapshot {
    pub fn new(project: &str, stack: &str, lineage: String) -> Snapshot {
        Snapshot {
            format: STATE_FORMAT,
            lineage,
            serial: 0,
            project: project.to_string(),
            stack: stack.to_string(),
            resources: Vec::new(),
            outputs: BTreeMap::new(),
            pending_operations: Vec::new(),
        }
    }

    /// The live (not pending-delete) resource of this name.
    pub fn live(&self, name: &str) -> Option<&ResourceState> {
        self.resources.iter().find(|r| r.name == name && !r.pending_delete)
    }

    pub fn apply(&mut self, m: &Mutation) {
        self.apply_all(std::iter::once(m));
    }

    /// Applies mutations in order, in time linear in their number (a replay of 10,000 steps
    /// must not scan the resource list per step).
    pub fn apply_all<'a>(&mut self, mutations: impl IntoIterator<Item = &'a Mutation>) {
        let mut slots: Vec<Option<ResourceState>> =
            std::mem::take(&mut self.resources).into_iter().map(Some).collect();
        let mut live: HashMap<String, usize> = HashMap::new();
        let mut by_id: HashMap<(String, String), usize> = HashMap::new();
        for (i, r) in slots.iter().enumerate() {
            let r = r.as_ref().expect("just filled");
            if !r.pending_delete {
                live.insert(r.name.clone(), i);
            }
            by_id.insert((r.name.clone(), r.id.clone()), i);
        }
        for m in mutations {
            match m {
                Mutation::Put { resource } => {
                    let key = (resource.name.clone(), resource.id.clone());
                    match live.get(&resource.name).copied() {
                        Some(i) => {
                            if let Some(old) = slots[i].as_ref() {
                                by_id.remove(&(old.name.clone(), old.id.clone()));
                            }
                            slots[i] = Some(resource.clone());
                            by_id.insert(key, i);
                        }
                        None => {
                            slots.push(Some(resource.clone()));
                            live.insert(resource.name.clone(), slots.len() - 1);
                            by_id.insert(key, slots.len() - 1);
                        }
                    }
                }
                Mutation::Remove { name, id } => {
                    if let Some(i) = by_id.remove(&(name.clone(), id.clone())) {
                        slots[i] = None;
                        if live.get(name) == Some(&i) {
                            live.remove(name);
                        }
                    }
                }
                Mutation::Retire { name, id } => {
                    if let Some(&i) = by_id.get(&(name.clone(), id.clone())) {
                        if let Some(r) = slots[i].as_mut() {
                            r.pending_delete = true;
                        }
                        if live.get(name) == Some(&i) {
                            live.remove(name);
                        }
                    }
                }
                Mutation::Outputs { outputs } => self.outputs = outputs.clone(),
            }
        }
        self.resources = slots.into_iter().flatten().collect();
    }

    /// Puts everything in its canonical order.
    pub fn normalize(&mut self) {
        self.resources
            .sort_by(|a, b| (&a.name, a.pending_delete, &a.id).cmp(&(&b.name, b.pending_delete, &b.id)));
        for r in &mut self.resources {
            r.dependencies.sort();
            r.dependencies.dedup();
        }
        self.pending_operations.sort_by(|a, b| (&a.name, a.op).cmp(&(&b.name, b.op)));
    }

    /// Integrity checks run before every write: a state that fails them is never written.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        let mut live = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for r in &self.resources {
            if !r.pending_delete && !live.insert(r.name.as_str()) {
                problems.push(format!("two live resources are named `{}`", r.name));
            }
            if !ids.insert((r.type_.as_str(), r.id.as_str(), r.name.as_str(), r.pending_delete)) {
                problems.push(format!("resource `{}` is recorded twice with id `{}`", r.name, r.id));
            }
            if r.id.is_empty() {
                problems.push(format!("resource `{}` has an empty id", r.name));
            }
            if !r.inputs.sealed().is_object() && !r.inputs.is_null() {
                problems.push(format!("resource `{}` has inputs that are not an object", r.name));
            }
            if r.inputs.has_plaintext() || r.outputs.has_plaintext() {
                problems.push(format!("resource `{}` holds an unsealed secret", r.name));
            }
        }
        if self.outputs.values().any(Sealed::has_plaintext)
            || self.pending_operations.iter().any(|p| p.inputs.has_plaintext())
        {
            problems.push("the stack outputs or a pending operation hold an unsealed secret".into());
        }
        if self.format != STATE_FORMAT {
            problems.push(format!("format is {} instead of {STATE_FORMAT}", self.format));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::State,
                format!("refusing to write an inconsistent state: {}", problems.join("; ")),
            )
            .with_hint("this is a bug in skyform; the previous state file is untouched"))
        }
    }

    /// The canonical bytes of the state file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a snapshot always serializes");
        out.push(b'\n');
        out
    }

    /// How many secrets are still format-1 fingerprints (their values were never recorded).
    pub fn legacy_fingerprints(&self) -> usize {
        self.resources
            .iter()
            .map(|r| r.inputs.legacy_fingerprints() + r.outputs.legacy_fingerprints())
            .sum::<usize>()
            + self.outputs.values().map(Sealed::legacy_fingerprints).sum::<usize>()
    }

    /// Every recorded value opened with `from` and sealed again with `to` (a new data key).
    pub fn reseal(&self, from: &crate::secrets::Vault, to: &crate::secrets::Vault) -> Result<Snapshot> {
        let re = |v: &Sealed| -> Result<Sealed> { Sealed::seal(&v.open(from)?, to) };
        let mut next = self.clone();
        for r in &mut next.resources {
            r.inputs = re(&r.inputs)?;
            r.outputs = re(&r.outputs)?;
        }
        for v in next.outputs.values_mut() {
            *v = re(v)?;
        }
        for p in &mut next.pending_operations {
            p.inputs = re(&p.inputs)?;
        }
        Ok(next)
    }

    /// Fails unless every recorded secret opens with this vault's key.
    pub fn check_opens(&self, vault: &crate::secrets::Vault) -> Result<()> {
        for r in &self.resources {
            r.inputs.open(vault)?;
            r.outputs.open(vault)?;
        }
        for v in self.outputs.values() {
            v.open(vault)?;
        }
        for p in &self.pending_operations {
            p.inputs.open(vault)?;
        }
        Ok(())
    }

    /// Equal but for the serial: nothing to write.
    pub fn same_content(&self, other: &Snapshot) -> bool {
        self.lineage == other.lineage
            && self.resources == other.resources
            && self.outputs == other.outputs
            && self.pending_operations == other.pending_operations
            && self.project == other.project
    }
}

/// Where a stack's files live: `dir` (the project's `state/`), or, when `remote` is set, an
/// object store (then the paths below are not used).
#[derive(Debug, Clone)]
pub struct StackFiles {
    pub dir: PathBuf,
    pub stack: String,
    pub remote: Option<Arc<backend::Remote>>,
}

impl StackFiles {
    pub fn new(dir: PathBuf, stack: &str) -> StackFiles {
        StackFiles { dir, stack: stack.to_string(), remote: None }
    }

    /// A stack kept in an object store.
    pub fn in_store(dir: PathBuf, stack: &str, store: Arc<dyn backend::ObjectStore>) -> StackFiles {
        StackFiles {
            dir,
            stack: stack.to_string(),
            remote: Some(Arc::new(backend::Remote::new(store, stack))),
        }
    }

    /// Where the state is, for messages: a path or an `s3://` URL.
    pub fn describe(&self) -> String {
        match &self.remote {
            None => self.state().display().to_string(),
            Some(r) => r.describe(&r.state_key()),
        }
    }

    /// Takes the stack's lock (the file's, or the remote lock object), or fails naming the holder.
    pub fn acquire_lock(&self, info: &lock::LockInfo) -> Result<lock::Lock> {
        match &self.remote {
            None => lock::Lock::acquire(&self.lock(), info),
            Some(r) => lock::Lock::acquire_remote(r.clone(), info),
        }
    }

    /// The state's bytes as stored, `None` when there are none.
    pub fn read_state_bytes(&self) -> Result<Option<Vec<u8>>> {
        match &self.remote {
            None => match std::fs::read(self.state()) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(format!("reading {}", self.state().display()), e)),
            },
            Some(r) => r.read_state(),
        }
    }

    /// Replaces the state's bytes as they are (restoring a copy taken with
    /// [`StackFiles::read_state_bytes`]).
    pub fn write_state_bytes(&self, bytes: &[u8]) -> Result<u64> {
        match &self.remote {
            None => write_atomic(&self.state(), bytes),
            Some(r) => r.write_state(bytes).map(|()| bytes.len() as u64),
        }
    }

    /// Removes the stack's state, journal and history.
    pub fn remove_all(&self) -> Result<()> {
        match &self.remote {
            None => {
                for p in [self.state(), self.journal(), self.history()] {
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(format!("removing {}", p.display()), e)),
                    }
                }
                Ok(())
            }
            Some(r) => {
                r.remove_journal()?;
                r.remove_history()?;
                r.remove_state()
            }
        }
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.stack))
    }
    pub fn journal(&self) -> PathBuf {
        self.dir.join(format!("{}.journal", self.stack))
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.stack))
    }
    pub fn history(&self) -> PathBuf {
        self.dir.join(format!("{}.history.jsonl", self.stack))
    }
}

/// Reads the stack's state wherever its backend keeps it. `Ok(None)` when there is none.
pub fn read_state(files: &StackFiles) -> Result<Option<Snapshot>> {
    match &files.remote {
        None => load_file(&files.state()),
        Some(_) => match files.read_state_bytes()? {
            None => Ok(None),
            Some(b) => parse_state(&b, &files.describe()).map(Some),
        },
    }
}

/// Reads a state file: the format version first, then the body. `Ok(None)` when absent.
pub fn load_file(path: &Path) -> Result<Option<Snapshot>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    parse_state(&bytes, &path.display().to_string()).map(Some)
}

pub fn parse_state(bytes: &[u8], origin: &str) -> Result<Snapshot> {
    let corrupt = |what: String| {
        Error::new(ErrorKind::State, format!("the state file {origin} is corrupt: {what}")).with_hint(
            "restore it from git (`git checkout -- state/`) or from a backup with `skyform stack import`; \
             nothing was changed",
        )
    };
    // Read the version first (without building the document), then the body in the layout of
    // that version.
    #[derive(Deserialize)]
    struct Version {
        format: Option<u64>,
    }
    let version: Version = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let format = version.format.ok_or_else(|| corrupt("it has no `format`".into()))?;
    if format > STATE_FORMAT {
        return Err(Error::new(
            ErrorKind::State,
            format!(
                "the state file {origin} has format {format}, written by a newer skyform; this one reads up to format {STATE_FORMAT}"
            ),
        )
        .with_hint("upgrade skyform; nothing was changed"));
    }
    if format == STATE_FORMAT {
        let snap: Snapshot = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        let plaintext = snap.resources.iter().any(|r| r.inputs.has_plaintext() || r.outputs.has_plaintext())
            || snap.outputs.values().any(Sealed::has_plaintext);
        if plaintext {
            return Err(corrupt(
                "it holds a `$secret` in plaintext; secrets are recorded as `$encrypted`".into(),
            ));
        }
        return Ok(snap);
    }
    let raw: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let raw = upgrade(raw, format)?;
    let snap: Snapshot = serde_json::from_value(raw).map_err(|e| corrupt(e.to_string()))?;
    Ok(snap)
}

/// Upgrades an older format, one version at a time.
fn upgrade(raw: Value, format: u64) -> Result<Value> {
    match format {
        STATE_FORMAT => Ok(raw),
        1 => upgrade(v1_to_v2(raw), 2),
        other => Err(Error::new(ErrorKind::State, format!("unknown state format {other}"))),
    }
}

/// Format 1 recorded a secret as `[secret:FINGERPRINT]`, a salted hash: its value is gone.
/// Format 2 records it sealed; an upgraded fingerprint becomes a sealed *legacy* secret that
/// compares unequal to any value, so the next `up` re-records it (or `refresh` re-reads it).
fn v1_to_v2(mut raw: Value) -> Value {
    let up = |v: &mut Value| {
        let old = std::mem::take(v);
        *v = Sealed::from_v1(old).sealed().clone();
    };
    if let Some(resources) = raw.get_mut("resources").and_then(Value::as_array_mut) {
        for r in resources {
            for key in ["inputs", "outputs"] {
                if let Some(v) = r.get_mut(key) {
                    up(v);
                }
            }
        }
    }
    if let Some(outputs) = raw.get_mut("outputs").and_then(Value::as_object_mut) {
        outputs.values_mut().for_each(up);
    }
    if let Some(ops) = raw.get_mut("pending_operations").and_then(Value::as_array_mut) {
        for op in ops {
            if let Some(v) = op.get_mut("inputs") {
                up(v);
            }
        }
    }
    raw["format"] = Value::from(2u64);
    raw
}

/// Writes a file atomically: a temporary file in the same folder, fsync, rename, fsync the
/// folder. Returns the bytes written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<u64> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] for a file only its owner may read (mode 0600): a saved plan, a file that
/// holds a secret.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<u64> {
    write_atomic_mode(path, bytes, 0o600)
}

fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<u64> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
            o.open(&tmp)?
        };
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(bytes.len() as u64)
}

/// Validates and writes a snapshot as the stack's state file.
pub fn write_state(files: &StackFiles, snap: &Snapshot) -> Result<u64> {
    snap.validate()?;
    files.write_state_bytes(&snap.to_bytes())
}

/// A new lineage id: unique per stack creation.
pub fn new_lineage() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut h = crate::util::Fnv::new();
    h.write(&nanos.to_le_bytes());
    h.write(&std::process::id().to_le_bytes());
    let a = h.finish();
    h.write(b"second half");
    let b = h.finish();
    format!("{a:016x}{b:016x}")
}

/// Loads the stack's state and replays a leftover journal over it (read-only).
/// Returns the snapshot and whether a journal was replayed.
pub fn load(files: &StackFiles, project: &str) -> Result<(Snapshot, bool)> {
    let mut snap = match read_state(files)? {
        Some(s) => {
            check_owner(&s, files, project)?;
            s
        }
        // A first run that was interrupted left a journal but no state file: the stack's
        // lineage is the journal's.
        None => Snapshot::new(project, &files.stack, journal::lineage_for(files).unwrap_or_else(new_lineage)),
    };
    let replayed = journal::replay_for(files, &mut snap)?;
    snap.normalize();
    Ok((snap, replayed))
}

/// A state file records the project and stack it belongs to; one copied from elsewhere would
/// make `up` delete that other project's resources.
fn check_owner(snap: &Snapshot, files: &StackFiles, project: &str) -> Result<()> {
    let path = files.describe();
    if snap.project != project {
        return Err(Error::new(
            ErrorKind::State,
            format!(
                "{} records the state of project `{}`, but this is project `{project}` (`name` in Skyform.toml)",
                path,
                snap.project
            ),
        )
        .with_hint(format!(
            "nothing was changed. If you renamed the project, set `name = \"{}\"` back in Skyform.toml; \
             if the file was copied from another project, move it out of state/ (acting on it would \
             delete that project's resources)",
            snap.project
        )));
    }
    if snap.stack != files.stack {
        return Err(Error::new(
            ErrorKind::State,
            format!(
                "{} records the state of stack `{}`, but it is the file of stack `{}`",
                path, snap.stack, files.stack
            ),
        )
        .with_hint(format!(
            "nothing was changed; move the file back to state/{}.json, or out of state/",
            snap.stack
        )));
    }
    Ok(())
}

/// Loads the state and, if an interrupted run left a journal, compacts it into the state file
/// (its unfinished operations become `pending_operations`). Needs the stack's lock. A journal
/// that changes nothing (stale, empty, or only begun) is removed without writing the state, so
/// the serial does not move.
pub fn recover(files: &StackFiles, project: &str, _lock: &lock::Lock) -> Result<Snapshot> {
    let (snap, replayed, changed) = load_compacted(files, project)?;
    if changed {
        write_state(files, &snap)?;
    }
    if replayed {
        journal::remove_for(files)?;
    }
    Ok(snap)
}

/// What [`recover`] would make of the state, in memory only (for `preview`, which never
/// writes): the snapshot with the journal replayed and the serial it would be written with.
/// Returns the snapshot, whether there was a journal, and whether the state changed.
pub fn load_compacted(files: &StackFiles, project: &str) -> Result<(Snapshot, bool, bool)> {
    let (mut snap, replayed) = load(files, project)?;
    if !replayed {
        return Ok((snap, false, false));
    }
    let mut base = match read_state(files)? {
        Some(s) => s,
        None => Snapshot::new(project, &files.stack, snap.lineage.clone()),
    };
    base.normalize();
    let changed = !snap.same_content(&base);
    if changed {
        snap.serial = base.serial + 1;
    }
    Ok((snap, true, changed))
}

/// One line of `state/<stack>.history.jsonl`, appended when a command changed the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub serial: u64,
    pub command: String,
    pub started: String,
    pub duration_ms: u64,
    pub result: String,
    #[serde(default)]
    pub changes: BTreeMap<String, usize>,
}

pub fn append_history(files: &StackFiles, entry: &HistoryEntry) -> Result<()> {
    let path = files.history();
    let mut line = serde_json::to_string(entry).expect("history serializes");
    line.push('\n');
    if let Some(r) = &files.remote {
        return r.append_history(entry.serial, line.as_bytes());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    f.write_all(line.as_bytes()).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(())
}

pub fn read_history(files: &StackFiles) -> Result<Vec<HistoryEntry>> {
    if let Some(r) = &files.remote {
        return Ok(r.read_history()?.iter().filter_map(|b| serde_json::from_slice(b).ok()).collect());
    }
    let path = files.history();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}
