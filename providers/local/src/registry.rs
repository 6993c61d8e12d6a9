//! The daemon's persistent record of what is deployed, so that a restarted daemon (or one
//! that was `kill -9`ed) comes back with every function and API, each API on its old port.
//!
//! It is one small JSON file, rewritten whole and atomically (temp file, fsync, rename,
//! fsync of the folder) on every change: a crash leaves either the old or the new file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const REGISTRY_VERSION: u32 = 1;

/// A function as the daemon runs it. The control API takes and returns this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// The artifact: `.skyform/local/artifacts/<code_hash>/` holds the code.
    pub code_hash: String,
    pub handler: String,
    /// Normalised: `python3`, `nodejs` or `provided`.
    pub runtime: String,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    pub memory: u64,
    /// Seconds.
    pub timeout: f64,
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// What starts the runtime (`python3.12`, a path), chosen by the provider for the runtime's
    /// version ([`crate::deps`]); absent: `python3` / `node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// The folder of what Lambda's runtime provides (boto3), on the path after the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_dir: Option<String>,
    /// The code's folder in the project (`functions/hello`): tracebacks name its files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The hash `check` computed from the sources (the artifact's hash also covers installed
    /// dependencies and built binaries, which `check` does not make).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteSpec {
    pub route: String,
    pub function: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiSpec {
    pub routes: Vec<RouteSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiRecord {
    pub routes: Vec<RouteSpec>,
    pub port: u16,
    pub api_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StackRecord {
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionSpec>,
    #[serde(default)]
    pub apis: BTreeMap<String, ApiRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub version: u32,
    #[serde(default)]
    pub stacks: BTreeMap<String, StackRecord>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { version: REGISTRY_VERSION, stacks: BTreeMap::new() }
    }
}

impl Registry {
    /// Loads the registry; a missing file is an empty registry.
    pub fn load(path: &Path) -> std::io::Result<Registry> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registry::default()),
            Err(e) => return Err(e),
        };
        let reg: Registry = serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::other(format!(
                "{} is not a valid local-cloud registry ({e}); move it away and run `skyform up` again",
                path.display()
            ))
        })?;
        if reg.version > REGISTRY_VERSION {
            return Err(std::io::Error::other(format!(
                "{} has format version {}, this skyform reads up to {REGISTRY_VERSION}; upgrade skyform",
                path.display(),
                reg.version
            )));
        }
        Ok(reg)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        // The registry holds every function's environment, secrets included, in plaintext (the
        // daemon must hand them to the functions after a restart): only the owner may read it.
        write_atomic_mode(path, &bytes, 0o600)
    }

    pub fn stack_mut(&mut self, stack: &str) -> &mut StackRecord {
        self.stacks.entry(stack.to_string()).or_default()
    }
}

/// Writes `bytes` to `path` so that a crash at any instant leaves the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with the file's permission bits (0600 for a file that holds secrets).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    {
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
