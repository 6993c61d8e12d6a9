//! `skyform stack ...`: create, list, remove, export and import stacks.

use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::project::{Project, valid_name};
use crate::secrets::{Crypter, KeyWrap, SecretsConfig, Vault};
use crate::state::{self, StackFiles};

#[derive(clap::Subcommand, Debug)]
pub enum StackCommand {
    /// List the project's stacks.
    Ls,
    /// Create a stack: writes Skyform.NAME.toml.
    Init {
        name: String,
        /// The provider the program targets on this stack (`local` or `aws`).
        #[arg(long, default_value = "local")]
        provider: String,
        /// How the stack's secrets are encrypted: `passphrase` (the default: SKYFORM_PASSPHRASE,
        /// asked for when the stack's first secret is recorded) or `awskms://KEY[?region=R]`.
        #[arg(long, value_name = "PROVIDER")]
        secrets_provider: Option<String>,
    },
    /// Re-encrypt every secret of the stack (state and config) under a new data key wrapped by
    /// PROVIDER: `passphrase` or `awskms://KEY[?region=R]`. To rotate a passphrase, set the old
    /// one in SKYFORM_PASSPHRASE and the new one in SKYFORM_NEW_PASSPHRASE (or
    /// SKYFORM_NEW_PASSPHRASE_FILE) and run `skyform stack change-secrets-provider passphrase`.
    ChangeSecretsProvider {
        #[arg(value_name = "PROVIDER")]
        provider: String,
    },
    /// Remove a stack that has no resources left (destroy it first).
    Rm {
        name: String,
        /// Remove it even if its state still records resources (they are forgotten, not deleted).
        #[arg(long)]
        force: bool,
    },
    /// Print the stack's state as JSON (secrets stay encrypted).
    Export,
    /// Replace the stack's state with the JSON state in FILE (validated first).
    Import { file: std::path::PathBuf },
    /// The commands that changed the stack's state.
    History {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(g: &Global, cmd: StackCommand) -> Result<ExitCode> {
    let project = g.project()?;
    match cmd {
        StackCommand::Ls => {
            let current = g.stack_name(&project).ok();
            for s in project.stacks()? {
                let file = project.load_stack(&s)?;
                let files = StackFiles::new(project.state_dir(), &s);
                let (snap, _) = state::load(&files, project.name())?;
                let mark = if Some(&s) == current.as_ref() { "*" } else { " " };
                println!("{mark} {s:<16} provider={:<8} resources={}", file.provider, snap.resources.len());
            }
        }
        StackCommand::Init { name, provider, secrets_provider } => {
            if !valid_name(&name) {
                return Err(Error::user(
                    format!("`{name}` is not a valid stack name"),
                    "use letters, digits, `-` and `_`",
                ));
            }
            let path = project.stack_file_path(&name);
            if path.exists() {
                return Err(Error::user(
                    format!("stack `{name}` already exists ({})", path.display()),
                    "pick another name",
                ));
            }
            let text = format!(
                "# The `{name}` stack of project `{}`.\nprovider = \"{provider}\"\n\n[config]\n# Values the program reads with ctx.config(\"key\").\n\n# [providers.{provider}]\n# Settings for the provider (for aws: region, profile, endpoint).\n",
                project.name()
            );
            state::write_atomic(&path, text.as_bytes())?;
            if let Some(sp) = secrets_provider
                && sp != crate::secrets::DEFAULT_PROVIDER
            {
                // A KMS key is checked (and the data key made) now, not at the first secret.
                let result = new_vault(&project, &name, &sp)
                    .and_then(|(_, config)| crate::project::write_secrets_config(&path, &config));
                if let Err(e) = result {
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
            }
            println!("created stack `{name}` (provider {provider}): {}", path.display());
        }
        StackCommand::Rm { name, force } => {
            let path = project.stack_file_path(&name);
            if !path.exists() {
                return Err(Error::user(format!("stack `{name}` does not exist"), "see `skyform stack ls`"));
            }
            let files = StackFiles::new(project.state_dir(), &name);
            let (snap, _) = state::load(&files, project.name())?;
            if !snap.resources.is_empty() && !force {
                return Err(Error::user(
                    format!("stack `{name}` still has {} resources", snap.resources.len()),
                    format!("run `skyform destroy -s {name}` first, or pass --force to forget them"),
                ));
            }
            for p in [files.state(), files.journal(), files.history(), path] {
                if p.exists() {
                    std::fs::remove_file(&p)
                        .map_err(|e| Error::io(format!("removing {}", p.display()), e))?;
                }
            }
            println!("removed stack `{name}`");
        }
        StackCommand::Export => {
            let stack = g.stack_name(&project)?;
            let files = StackFiles::new(project.state_dir(), &stack);
            let (snap, _) = state::load(&files, project.name())?;
            print!("{}", String::from_utf8_lossy(&snap.to_bytes()));
        }
        StackCommand::Import { file } => {
            let stack = g.stack_name(&project)?;
            project.load_stack(&stack)?;
            let files = StackFiles::new(project.state_dir(), &stack);
            let bytes =
                std::fs::read(&file).map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
            let mut snap = state::parse_state(&bytes, &file.display().to_string())?;
            if snap.stack != stack {
                return Err(Error::user(
                    format!("{} holds the state of stack `{}`, not `{stack}`", file.display(), snap.stack),
                    format!("import it with `-s {}`", snap.stack),
                ));
            }
            // Its secrets must open with this stack's key, or the stack could not use them.
            snap.check_opens(&*g.vault(&project, &stack)?).map_err(|e| {
                Error::user(
                    format!("the secrets in {} do not open with stack `{stack}`'s key: {}", file.display(), e.message),
                    "import a state exported from this stack (each stack has its own key); nothing was changed",
                )
            })?;
            let lock = crate::state::lock::Lock::acquire(
                &files.lock(),
                &crate::state::lock::LockInfo {
                    pid: std::process::id(),
                    host: crate::state::lock::hostname(),
                    user: std::env::var("USER").unwrap_or_default(),
                    started: crate::util::rfc3339(std::time::SystemTime::now()),
                    command: "skyform stack import".into(),
                },
            )?;
            if let Some(cur) = state::load_file(&files.state())? {
                snap.serial = snap.serial.max(cur.serial + 1);
            }
            snap.normalize();
            state::write_state(&files, &snap)?;
            state::journal::remove(&files.journal())?;
            drop(lock);
            println!(
                "imported the state of stack `{stack}` ({} resources, serial {})",
                snap.resources.len(),
                snap.serial
            );
        }
        StackCommand::ChangeSecretsProvider { provider } => {
            let stack = g.stack_name(&project)?;
            change_secrets_provider(g, &project, &stack, &provider)?;
        }
        StackCommand::History { json } => {
            let stack = g.stack_name(&project)?;
            let files = StackFiles::new(project.state_dir(), &stack);
            let entries = state::read_history(&files)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries).unwrap());
            } else if entries.is_empty() {
                println!("stack `{stack}` has no history yet");
            } else {
                for e in entries.iter().rev() {
                    let changes: Vec<String> = e.changes.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    println!(
                        "serial {:<4} {}  {:<12} {:<11} {:>6}ms  {}",
                        e.serial,
                        e.started,
                        e.command,
                        e.result,
                        e.duration_ms,
                        changes.join(", ")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A vault with a new data key wrapped by `provider`, and the `[secrets]` table recording it.
fn new_vault(project: &Project, stack: &str, provider: &str) -> Result<(Vault, SecretsConfig)> {
    let wrap: std::sync::Arc<dyn KeyWrap> = if provider == crate::secrets::DEFAULT_PROVIDER {
        // The new passphrase: SKYFORM_NEW_PASSPHRASE when rotating, else SKYFORM_PASSPHRASE.
        let new =
            crate::cli::passphrase_from_env(stack, "SKYFORM_NEW_PASSPHRASE", "SKYFORM_NEW_PASSPHRASE_FILE");
        match new {
            Ok(p) => std::sync::Arc::new(p),
            Err(_) => std::sync::Arc::new(crate::cli::passphrase_from_env(
                stack,
                crate::cli::PASSPHRASE_VAR,
                crate::cli::PASSPHRASE_FILE_VAR,
            )?),
        }
    } else {
        crate::cli::key_source(project, stack)(provider)?
    };
    let (crypter, key) = Crypter::generate()?;
    let config = SecretsConfig { provider: wrap.provider(), key: Some(B64.encode(wrap.wrap(&key)?)) };
    Ok((Vault::with_crypter(config.clone(), crypter), config))
}

/// Re-encrypts the stack's state and config secrets under a new data key.
fn change_secrets_provider(g: &Global, project: &Project, stack: &str, provider: &str) -> Result<()> {
    let path = project.stack_file_path(stack);
    let file = project.load_stack(stack)?;
    let old = g.vault(project, stack)?;
    let sink: crate::events::Sink = std::sync::Arc::new(crate::events::NullSink);
    let session = g.session(sink)?;
    let lock = session.lock("skyform stack change-secrets-provider")?;
    let snap = session.recover(&lock)?;
    // Open everything with the old key first: a wrong passphrase changes nothing.
    snap.check_opens(&old)?;
    let config = old.open(&Value::Object(file.config_json()))?;
    let (new, secrets) = new_vault(project, stack, provider)?;
    let resealed = snap.reseal(&old, &new)?;
    // The config's secrets, re-encrypted, in the same places.
    let mut secure: Vec<(Vec<String>, String)> = Vec::new();
    collect_secure(&config, &mut Vec::new(), &new, &mut secure)?;
    let before_state = std::fs::read(session.files.state()).ok();
    let before_file =
        std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    session.write(&snap, resealed, "change-secrets-provider", std::time::Instant::now())?;
    let result = crate::project::edit_stack_file(&path, |doc| {
        for (segs, text) in &secure {
            let mut item =
                doc.get_mut("config").ok_or_else(|| Error::user("no [config]", "restore the file"))?;
            for s in segs {
                item = item
                    .get_mut(s)
                    .ok_or_else(|| Error::user(format!("no config `{s}`"), "restore the file"))?;
            }
            let mut t = toml_edit::InlineTable::new();
            t.insert("secure", text.clone().into());
            *item = toml_edit::value(t);
        }
        let mut t = toml_edit::Table::new();
        t.insert("provider", toml_edit::value(secrets.provider.clone()));
        t.insert("key", toml_edit::value(secrets.key.clone().unwrap_or_default()));
        doc.insert("secrets", toml_edit::Item::Table(t));
        Ok(())
    });
    if let Err(e) = result {
        // Put the state back as it was: the stack file still names the old key.
        if let Some(bytes) = before_state {
            state::write_atomic(&session.files.state(), &bytes)?;
        }
        state::write_atomic(&path, &before_file)?;
        return Err(e);
    }
    drop(lock);
    println!(
        "stack `{stack}`: every secret is now encrypted with a new key wrapped by `{}`",
        secrets.provider
    );
    Ok(())
}

/// The paths of every secret in the opened config, with their new ciphertext.
fn collect_secure(
    v: &Value,
    path: &mut Vec<String>,
    vault: &Vault,
    out: &mut Vec<(Vec<String>, String)>,
) -> Result<()> {
    if let Some(inner) = crate::value::as_mark(v) {
        out.push((path.clone(), vault.crypter()?.encrypt(inner)));
        return Ok(());
    }
    if let Value::Object(map) = v {
        for (k, c) in map {
            path.push(k.clone());
            collect_secure(c, path, vault, out)?;
            path.pop();
        }
    }
    Ok(())
}
