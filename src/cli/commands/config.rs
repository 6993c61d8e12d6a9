//! `skyform config ls|get|set|rm`: the stack's `[config]` table in `Skyform.<stack>.toml`.
//!
//! Secrets are stored as `{ secure = "v1:CIPHERTEXT" }`, encrypted with the stack's data key
//! (see `engine/src/secrets.rs`), and masked on output unless `--show-secrets` is given. The
//! file is edited in place by `Session::config_set`/`config_rm` (`skyform_engine::ops`):
//! comments and layout survive. This file parses the command and prints.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::Value;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::events::NullSink;
use crate::value;

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// List the stack's config values (secrets masked unless --show-secrets).
    Ls {
        /// Print secrets in plaintext.
        #[arg(long)]
        show_secrets: bool,
        /// Print as JSON (an object of KEY: value); schema in docs/json/config-ls.schema.json.
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
        /// Print the value as JSON (`{"key", "value", "secret"}`); schema in
        /// docs/json/config-get.schema.json.
        #[arg(long)]
        json: bool,
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
    let session = g.session(Arc::new(NullSink))?;
    let stack = session.stack.clone();
    // The config as recorded: secrets sealed (`{"$encrypted": ...}`), opened only to be shown.
    let sealed = Value::Object(session.stack_file.config_json());
    let people = |v: &Value, reveal: bool| -> Result<Value> {
        Ok(if reveal { value::unmark(&session.vault.open(v)?) } else { value::mask(v) })
    };
    match cmd {
        ConfigCommand::Ls { show_secrets, json } => {
            let config = people(&sealed, show_secrets)?;
            if json {
                crate::cli::render::print_json(&config);
            } else if config.as_object().is_none_or(|m| m.is_empty()) {
                println!("stack `{stack}` has no config; set a value with `skyform config set KEY VALUE`");
            } else {
                let header = crate::cli::style::paint(
                    crate::cli::style::Stream::Out,
                    crate::cli::style::BOLD,
                    "Config",
                );
                println!("{header} ({stack}):");
                for (k, v) in config.as_object().into_iter().flatten() {
                    println!("    {k} = {}", display(v));
                }
            }
        }
        ConfigCommand::Get { key, path: dotted, show_secrets, json } => {
            let segs = segments(&key, dotted)?;
            let found = segs
                .iter()
                .try_fold(&sealed, |cur, s| cur.get(s))
                .ok_or_else(|| missing(&stack, &key, dotted))?;
            let shown = people(found, show_secrets)?;
            if json {
                let secret = value::mask(found) != *found;
                crate::cli::render::print_json(
                    &serde_json::json!({"key": key, "value": shown, "secret": secret}),
                );
            } else {
                println!("{}", display(&shown));
            }
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
            session.config_set(&segs, text, secret)?;
            println!("set {}`{key}` on stack `{stack}`", if secret { "secret " } else { "" });
        }
        ConfigCommand::Rm { key, path: dotted } => {
            let segs = segments(&key, dotted)?;
            if !session.config_rm(&segs)? {
                return Err(missing(&stack, &key, dotted));
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

/// A key the stack's config does not have; a dotted key given without `--path` says so.
fn missing(stack: &str, key: &str, dotted: bool) -> Error {
    let hint = if !dotted && key.contains('.') {
        format!("see `skyform config ls`; for the value at the path `{key}` in nested tables, pass `--path`")
    } else {
        "see `skyform config ls`".to_string()
    };
    Error::user(format!("stack `{stack}` has no config value `{key}`"), hint)
}
