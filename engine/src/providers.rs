//! Finding, starting and configuring the providers a stack needs.
//!
//! First-party providers (`core`, `local`, `aws`) are built into the `skyform` binary and run
//! as `skyform provider NAME`, through the same protocol as any other. A third-party provider
//! is an executable named in `Skyform.toml` (`[providers.NAME] path = ...`) or found on the
//! search path as `skyform-provider-NAME`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use skyform_protocol::{Call, ConfigureRequest, ConfigureResponse};
use tokio::task::JoinSet;

use crate::error::{Error, ErrorKind, Result};
use crate::events::Sink;
use crate::host::{ProviderHandle, ProviderSpec, Transport};
use crate::project::{Project, StackFile};

/// The providers built into the `skyform` binary.
pub const BUILTIN: &[&str] = &["core", "local", "aws"];

/// What the CLI resolved from the environment, passed in (the library reads no environment).
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// The `skyform` executable, which runs the built-in providers.
    pub self_exe: PathBuf,
    /// Where to look for `skyform-provider-NAME` (the CLI passes `$PATH`).
    pub search_path: Vec<PathBuf>,
    pub default_timeout: Duration,
    /// Extra environment for provider processes.
    pub env: Vec<(String, String)>,
    /// How providers are reached: processes (what the CLI uses), or in this process.
    pub transport: Arc<dyn Transport>,
}

pub struct Providers {
    handles: HashMap<String, ProviderHandle>,
}

impl Providers {
    pub fn empty() -> Providers {
        Providers { handles: HashMap::new() }
    }

    /// Starts and configures every named provider, in parallel.
    pub async fn start(
        names: &BTreeSet<String>,
        project: &Project,
        stack: &str,
        stack_file: &StackFile,
        settings: &ProviderSettings,
        dry_run: bool,
        sink: Sink,
    ) -> Result<Providers> {
        let mut set = JoinSet::new();
        for name in names {
            let spec = if settings.transport.knows(name) {
                ProviderSpec {
                    name: name.clone(),
                    program: PathBuf::new(),
                    args: Vec::new(),
                    timeout: project.provider_timeout(name)?.unwrap_or(settings.default_timeout),
                    log_path: project.work_dir().join("logs").join(format!("{name}.log")),
                    env: Vec::new(),
                }
            } else {
                resolve(name, project, settings)?
            };
            let transport = settings.transport.clone();
            let request = ConfigureRequest {
                project: project.name().to_string(),
                stack: stack.to_string(),
                project_dir: project.dir.display().to_string(),
                config: stack_file.provider_config(name),
                dry_run,
            };
            let sink = sink.clone();
            set.spawn(async move {
                let handle = ProviderHandle::connect(&*transport, spec, sink).await?;
                let _: ConfigureResponse = handle.call(Call::Configure(request), "").await?;
                Ok::<_, Error>(handle)
            });
        }
        let mut handles = HashMap::new();
        let mut first_error = None;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok(h)) => {
                    handles.insert(h.name().to_string(), h);
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error
                        .get_or_insert(Error::new(ErrorKind::Provider, format!("starting a provider: {e}")));
                }
            }
        }
        let providers = Providers { handles };
        if let Some(e) = first_error {
            providers.shutdown().await;
            return Err(e);
        }
        Ok(providers)
    }

    pub fn get(&self, name: &str) -> Result<ProviderHandle> {
        self.handles
            .get(name)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::Provider, format!("provider `{name}` was not started")))
    }

    pub async fn shutdown(&self) {
        for h in self.handles.values() {
            h.shutdown().await;
        }
    }
}

/// How to start the provider called `name`.
pub fn resolve(name: &str, project: &Project, settings: &ProviderSettings) -> Result<ProviderSpec> {
    let timeout = project.provider_timeout(name)?.unwrap_or(settings.default_timeout);
    let log_path = project.work_dir().join("logs").join(format!("{name}.log"));
    let entry = project.file.providers.get(name).and_then(|p| p.path.clone());
    let (program, args) = if let Some(path) = entry {
        let p = Path::new(&path);
        let p = if p.is_absolute() { p.to_path_buf() } else { project.dir.join(p) };
        if !p.is_file() {
            return Err(Error::user(
                format!("provider `{name}`: {} (from Skyform.toml) does not exist", p.display()),
                format!("fix `[providers.{name}] path` in Skyform.toml"),
            ));
        }
        (p, Vec::new())
    } else if BUILTIN.contains(&name) {
        (settings.self_exe.clone(), vec!["provider".to_string(), name.to_string()])
    } else {
        let exe = format!("skyform-provider-{name}");
        match settings.search_path.iter().map(|d| d.join(&exe)).find(|p| is_executable(p)) {
            Some(p) => (p, Vec::new()),
            None => {
                return Err(Error::user(
                    format!(
                        "no provider `{name}`: it is not built in ({}) and no executable `{exe}` is on PATH",
                        BUILTIN.join(", ")
                    ),
                    format!(
                        "install `{exe}` on PATH, set `[providers.{name}] path` in Skyform.toml, or fix the type token"
                    ),
                ));
            }
        }
    };
    Ok(ProviderSpec { name: name.to_string(), program, args, timeout, log_path, env: settings.env.clone() })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}
