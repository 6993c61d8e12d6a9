//! `skyform config ls|get|set|rm`: the stack's `[config]` table in `Skyform.<stack>.toml`.
//!
//! Secrets are stored as `{ secure = "v1:CIPHERTEXT" }`, encrypted with the stack's data key
//! (see `src/secrets.rs`), and masked on output unless `--show-secrets` is given. The file is
//! edited in place: comments and layout survive.

use std::io::Read;
use std::process::ExitCode;

use serde_json::Value;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::value;

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// List the stack's config values (secrets masked unless --show-secrets).
    Ls {
        /// Print secrets in plaintext.
        #[arg(long)]
        show_secrets: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one config value (a secret is masked unless --show-secrets).
    Get {
        key: String,
        /// KEY is a dotted path into nested tables (`db.password`).
        #[arg(long)]
        path: bool,
        /// Print a secret in plaintext.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Set a config value. With --secret it is stored encrypted; without VALUE it is read from
    /// standard input (so that it stays out of the shell's history).
    Set {
        key: String,
        value: Option<String>,
        /// Encrypt the value with the stack's secrets provider (passphrase by default:
        /// SKYFORM_PASSPHRASE or SKYFORM_PASSPHRASE_FILE).
        #[arg(long)]
        secret: bool,
        /// KEY is a dotted path into nested tables (`db.password`).
        #[arg(long)]
        path: bool,
    },
    /// Remove a config value.
    Rm {
        key: String,
        /// KEY is a dotted path into nested tables.
        #[arg(long)]
        path: bool,
    },
}

pub async fn run(g: &Global, cmd: ConfigCommand) -> Result<ExitCode> {
    let project = g.project()?;
    let stack = g.stack_name(&project)?;
    let file = project.load_stack(&stack)?;
    let path = project.stack_file_path(&stack);
    let vault = g.vault(&project, &stack)?;
    match cmd {
        ConfigCommand::Ls { show_secrets, json } => {
            let config = Value::Object(file.config_json());
            let config =
                if show_secrets { value::unmark(&vault.open(&config)?) } else { value::mask(&config) };
            if json {
                println!("{}", serde_json::to_string_pretty(&config).expect("json"));
            } else if config.as_object().is_none_or(|m| m.is_empty()) {
                println!("stack `{stack}` has no config; set a value with `skyform config set KEY VALUE`");
            } else {
                for (k, v) in config.as_object().into_iter().flatten() {
                    println!("{k} = {}", display(v));
                }
            }
        }
        ConfigCommand::Get { key, path: dotted, show_secrets } => {
            let config = Value::Object(file.config_json());
            let segs = segments(&key, dotted)?;
            let found = segs.iter().try_fold(&config, |cur, s| cur.get(s)).ok_or_else(|| {
                Error::user(format!("stack `{stack}` has no config value `{key}`"), "see `skyform config ls`")
            })?;
            let shown = if show_secrets { value::unmark(&vault.open(found)?) } else { value::mask(found) };
            println!("{}", display(&shown));
        }
        ConfigCommand::Set { key, value: given, secret, path: dotted } => {
            let segs = segments(&key, dotted)?;
            let text = match given {
                Some(v) => v,
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| Error::io("reading the value from standard input", e))?;
                    s.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            let item = if secret {
                // Fetching the key may create the stack's data key and record it in the file.
                let crypter = vault.crypter()?;
                let mut t = toml_edit::InlineTable::new();
                t.insert("secure", crypter.encrypt(&Value::String(text)).into());
                toml_edit::value(t)
            } else {
                toml_edit::value(text)
            };
            crate::project::edit_stack_file(&path, |doc| {
                let mut table =
                    doc.entry("config").or_insert(toml_edit::table()).as_table_like_mut().ok_or_else(
                        || Error::user("`config` in the stack file is not a table", "fix the file"),
                    )?;
                for s in &segs[..segs.len() - 1] {
                    table = table.entry(s).or_insert(toml_edit::table()).as_table_like_mut().ok_or_else(
                        || Error::user(format!("config `{s}` is not a table"), "pick another key"),
                    )?;
                }
                table.insert(&segs[segs.len() - 1], item);
                Ok(())
            })?;
            println!("set {}`{key}` on stack `{stack}`", if secret { "secret " } else { "" });
        }
        ConfigCommand::Rm { key, path: dotted } => {
            let segs = segments(&key, dotted)?;
            let mut removed = false;
            crate::project::edit_stack_file(&path, |doc| {
                let mut table = match doc.get_mut("config").and_then(|c| c.as_table_like_mut()) {
                    Some(t) => t,
                    None => return Ok(()),
                };
                for s in &segs[..segs.len() - 1] {
                    table = match table.get_mut(s).and_then(|c| c.as_table_like_mut()) {
                        Some(t) => t,
                        None => return Ok(()),
                    };
                }
                removed = table.remove(&segs[segs.len() - 1]).is_some();
                Ok(())
            })?;
            if !removed {
                return Err(Error::user(
                    format!("stack `{stack}` has no config value `{key}`"),
                    "see `skyform config ls`",
                ));
            }
            println!("removed `{key}` from stack `{stack}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn segments(key: &str, dotted: bool) -> Result<Vec<String>> {
    let segs: Vec<String> =
        if dotted { key.split('.').map(str::to_string).collect() } else { vec![key.to_string()] };
    if segs.iter().any(|s| s.is_empty()) {
        return Err(Error::user(
            format!("`{key}` is not a config key"),
            "use names like `stripe_key` or, with --path, `db.password`",
        ));
    }
    Ok(segs)
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
