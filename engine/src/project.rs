//! The project on disk: `Skyform.toml` (the project) and `Skyform.<stack>.toml` (one per stack).
//!
//! ```toml
//! # Skyform.toml
//! name = "shop"
//! program = "cargo run --quiet"        # optional; any command that prints a manifest
//! backend = "s3://team-state/shop"      # optional: where stacks keep their state (default: state/)
//! [providers.acme]                      # optional: where a third-party provider lives
//! path = "bin/skyform-provider-acme"
//! timeout = "30s"                       # optional: how long a provider may take to answer
//!
//! # Skyform.dev.toml
//! provider = "local"                    # the stack's target provider
//! backend = "folder"                    # optional: this stack's backend, over the project's
//! [config]                              # values the program reads
//! greeting = "hello"
//! stripe_key = { secure = "v1:BASE64" } # a secret: `skyform config set --secret`
//! [providers.aws]                       # configuration passed to the provider
//! region = "eu-west-1"
//! [secrets]                             # the stack's data key (see `crate::secrets`)
//! provider = "passphrase"               # or "awskms://alias/NAME?region=R"
//! key = "BASE64"                        # the data key, wrapped by the provider
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

pub const PROJECT_FILE: &str = "Skyform.toml";
/// The program that runs when `program` is not set: the Rust program in the project.
pub const DEFAULT_PROGRAM: &str = "cargo run --quiet";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    pub name: String,
    #[serde(default)]
    pub program: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Where the stacks keep their state: `folder` (the default) or `s3://BUCKET/PREFIX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderEntry>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    #[serde(default = "default_provider")]
    pub provider: String,
    /// This stack's backend, over the project's `backend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default)]
    pub config: toml::Table,
    #[serde(default)]
    pub providers: BTreeMap<String, toml::Table>,
    /// Absent until the stack's first secret; then it records the wrapped data key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<crate::secrets::SecretsConfig>,
}

fn default_provider() -> String {
    "local".to_string()
}

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub file: ProjectFile,
    /// Opens the object store of a remote backend; given by the caller (the CLI), since the
    /// engine has no AWS client of its own.
    pub stores: Option<Stores>,
}

/// The [`StoreOpener`](crate::state::backend::StoreOpener) a project was given.
#[derive(Clone)]
pub struct Stores(pub crate::state::backend::StoreOpener);

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stores")
    }
}

impl Project {
    /// Loads `Skyform.toml` from `dir`.
    pub fn load(dir: &Path) -> Result<Project> {
        let path = dir.join(PROJECT_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::user(
                    format!("no {PROJECT_FILE} in {}", dir.display()),
                    "run skyform inside a project, pass `-C DIR`, or create one with `skyform new http-api DIR`",
                )
            } else {
                Error::io(format!("reading {}", path.display()), e)
            }
        })?;
        let file: ProjectFile = toml::from_str(&text).map_err(|e| {
            Error::user(
                format!("{} is not valid: {e}", path.display()),
                "fix the file and run the command again",
            )
        })?;
        if !valid_name(&file.name) {
            return Err(Error::user(
                format!("project name `{}` in {} is not valid", file.name, path.display()),
                "use letters, digits, `-` and `_`",
            ));
        }
        let dir =
            std::fs::canonicalize(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        Ok(Project { dir, file, stores: None })
    }

    /// Gives the project a way to open remote backends' object stores.
    pub fn with_object_stores(mut self, opener: crate::state::backend::StoreOpener) -> Project {
        self.stores = Some(Stores(opener));
        self
    }

    /// The stack's backend: its stack file's `backend`, else the project's, else the folder.
    pub fn backend(&self, stack: &str) -> Result<crate::state::backend::BackendUrl> {
        let file = self.load_stack(stack)?;
        match file.backend.as_deref().or(self.file.backend.as_deref()) {
            None => Ok(crate::state::backend::BackendUrl::Folder),
            Some(text) => crate::state::backend::BackendUrl::parse(text),
        }
    }

    /// Where the stack's state, journal, history and lock are kept.
    pub fn stack_files(&self, stack: &str) -> Result<crate::state::StackFiles> {
        let url = self.backend(stack)?;
        self.stack_files_at(stack, &url)
    }

    /// The stack's files in the backend `url` (whatever the stack is configured with).
    pub fn stack_files_at(
        &self,
        stack: &str,
        url: &crate::state::backend::BackendUrl,
    ) -> Result<crate::state::StackFiles> {
        use crate::state::StackFiles;
        match url {
            crate::state::backend::BackendUrl::Folder => Ok(StackFiles::new(self.state_dir(), stack)),
            remote => {
                let opener = self.stores.as_ref().ok_or_else(|| {
                    Error::user(
                        format!("stack `{stack}` keeps its state in {remote}, and this program cannot reach object stores"),
                        "run the command with the skyform CLI, or give the project an object store opener",
                    )
                })?;
                let aws = self.load_stack(stack)?.provider_config("aws");
                let store = (opener.0)(remote, &aws)?;
                Ok(StackFiles::in_store(self.state_dir(), stack, store))
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.file.name
    }

    pub fn program(&self) -> &str {
        self.file.program.as_deref().unwrap_or(DEFAULT_PROGRAM)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `.skyform/`: local, git-ignored data (provider logs, the local cloud).
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join(".skyform")
    }

    pub fn stack_file_path(&self, stack: &str) -> PathBuf {
        self.dir.join(format!("Skyform.{stack}.toml"))
    }

    /// The stacks that have a `Skyform.<stack>.toml`, sorted.
    pub fn stacks(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| Error::io(format!("listing {}", self.dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(stack) = name.strip_prefix("Skyform.").and_then(|n| n.strip_suffix(".toml"))
                && valid_name(stack)
            {
                out.push(stack.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn load_stack(&self, stack: &str) -> Result<StackFile> {
        if !valid_name(stack) {
            return Err(Error::user(
                format!("`{stack}` is not a valid stack name"),
                "use letters, digits, `-` and `_`",
            ));
        }
        let path = self.stack_file_path(stack);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let known = self.stacks().unwrap_or_default();
                let hint = if known.is_empty() {
                    format!("create it with `skyform stack init {stack}`")
                } else {
                    format!(
                        "create it with `skyform stack init {stack}`, or pick one of: {}",
                        known.join(", ")
                    )
                };
                return Err(Error::user(
                    format!("stack `{stack}` does not exist (no {})", path.display()),
                    hint,
                ));
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        toml::from_str(&text).map_err(|e| {
            Error::user(
                format!("{} is not valid: {e}", path.display()),
                "fix the file and run the command again",
            )
        })
    }

    /// How long a provider may take to answer one request.
    pub fn provider_timeout(&self, provider: &str) -> Result<Option<Duration>> {
        match self.file.providers.get(provider).and_then(|p| p.timeout.as_deref()) {
            None => Ok(None),
            Some(t) => parse_duration(t).map(Some).ok_or_else(|| {
                Error::user(
                    format!("timeout `{t}` for provider `{provider}` in {PROJECT_FILE} is not a duration"),
                    "write it like `30s`, `5m` or `500ms`",
                )
            }),
        }
    }
}

impl StackFile {
    /// The `[config]` table as JSON; secret values stay sealed (`{"$encrypted": ...}`) until
    /// the stack's vault opens them.
    pub fn config_json(&self) -> Map<String, Value> {
        let mut m = toml_to_json(&self.config);
        for v in m.values_mut() {
            seal_secure(v);
        }
        m
    }

    pub fn secrets_config(&self) -> crate::secrets::SecretsConfig {
        self.secrets.clone().unwrap_or_default()
    }

    pub fn provider_config(&self, provider: &str) -> Map<String, Value> {
        self.providers.get(provider).map(toml_to_json).unwrap_or_default()
    }
}

/// `{ secure = "v1:..." }` in the stack file is a sealed secret.
fn seal_secure(v: &mut Value) {
    if let Value::Object(map) = v {
        if map.len() == 1
            && let Some(Value::String(c)) = map.get("secure")
        {
            let mut m = Map::new();
            m.insert(crate::value::ENCRYPTED.to_string(), Value::String(c.clone()));
            *v = Value::Object(m);
            return;
        }
        map.values_mut().for_each(seal_secure);
    } else if let Value::Array(items) = v {
        items.iter_mut().for_each(seal_secure);
    }
}

/// Edits `Skyform.<stack>.toml` in place, keeping the user's comments and layout, and writes
/// it back atomically (mode 0600 when it holds a secret).
pub fn edit_stack_file(
    path: &Path,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<()>,
) -> Result<()> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| {
        Error::user(format!("{} is not valid: {e}", path.display()), "fix the file and run the command again")
    })?;
    edit(&mut doc)?;
    let out = doc.to_string();
    // Check what we are about to write reads back as a stack file.
    toml::from_str::<StackFile>(&out).map_err(|e| {
        Error::user(format!("refusing to write {}: {e}", path.display()), "nothing was changed")
    })?;
    crate::state::write_atomic(path, out.as_bytes())?;
    Ok(())
}

/// The `[secrets]` table of a stack file as it is on disk now.
pub fn read_secrets_config(path: &Path) -> Result<Option<crate::secrets::SecretsConfig>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let file: StackFile = toml::from_str(&text).map_err(|e| {
        Error::user(format!("{} is not valid: {e}", path.display()), "fix the file and run the command again")
    })?;
    Ok(file.secrets)
}

/// Records the stack's secrets provider and wrapped data key.
pub fn write_secrets_config(path: &Path, config: &crate::secrets::SecretsConfig) -> Result<()> {
    edit_stack_file(path, |doc| {
        let mut t = toml_edit::Table::new();
        t.insert("provider", toml_edit::value(config.provider.clone()));
        if let Some(k) = &config.key {
            t.insert("key", toml_edit::value(k.clone()));
        }
        doc.insert("secrets", toml_edit::Item::Table(t));
        Ok(())
    })
}

fn toml_to_json(t: &toml::Table) -> Map<String, Value> {
    match serde_json::to_value(t) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Stack, project and provider names: letters, digits, `-`, `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `500ms`, `30s`, `5m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86400),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("x"), None);
    }
}
