//! `skyform stack ...`: create, list, select, remove, export and import stacks. One file per
//! subcommand; the work is done by `skyform_engine::ops`.

pub mod change_secrets_provider;
pub mod export;
pub mod history;
pub mod import;
pub mod init;
pub mod ls;
pub mod migrate;
pub mod rm;
pub mod select;

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::Result;

#[derive(clap::Subcommand, Debug)]
pub enum StackCommand {
    /// List the project's stacks (`*` marks the one commands work on).
    Ls(ls::Args),
    /// Select the stack that commands in this project work on (remembered in .skyform/stack).
    Select(select::Args),
    /// Create a stack: writes Skyform.NAME.toml.
    Init(init::Args),
    /// Remove a stack that has no resources left (destroy it first).
    Rm(rm::Args),
    /// Print the stack's state as JSON (secrets stay encrypted).
    Export {
        /// Accepted for symmetry with the other commands: the state is JSON either way; with
        /// it, an error is a JSON object too.
        #[arg(long)]
        json: bool,
    },
    /// Replace the stack's state with the JSON state in FILE (validated first).
    Import(import::Args),
    /// The commands that changed the stack's state.
    History(history::Args),
    /// Re-encrypt the stack's secrets under a new data key wrapped by PROVIDER.
    ///
    /// Every secret of the stack (state and config) is re-encrypted under a new data key wrapped
    /// by PROVIDER: `passphrase` or `awskms://KEY[?region=R]`. To rotate a passphrase, set the old
    /// one in SKYFORM_PASSPHRASE and the new one in SKYFORM_NEW_PASSPHRASE (or
    /// SKYFORM_NEW_PASSPHRASE_FILE) and run `skyform stack change-secrets-provider passphrase`.
    ChangeSecretsProvider(change_secrets_provider::Args),
    /// Move the stack's state and history to another backend (`s3://BUCKET/PREFIX` or `folder`).
    ///
    /// Under the locks of both backends: a journal left by an interrupted run is compacted first,
    /// the state is copied byte for byte (secrets stay sealed), then `backend = "..."` is recorded
    /// in Skyform.<stack>.toml and the old copy removed.
    Migrate(migrate::Args),
}

pub async fn run(g: &Global, cmd: StackCommand) -> Result<ExitCode> {
    match cmd {
        StackCommand::Ls(a) => ls::run(g, a),
        StackCommand::Select(a) => select::run(g, a),
        StackCommand::Init(a) => init::run(g, a),
        StackCommand::Rm(a) => rm::run(g, a),
        StackCommand::Export { .. } => export::run(g),
        StackCommand::Import(a) => import::run(g, a),
        StackCommand::History(a) => history::run(g, a),
        StackCommand::ChangeSecretsProvider(a) => change_secrets_provider::run(g, a),
        StackCommand::Migrate(a) => migrate::run(g, a),
    }
}
