//! `skyform stack change-secrets-provider PROVIDER`: re-encrypt the stack's secrets under a new
//! data key. The CLI resolves the new key wrapper (a passphrase from the environment, or a KMS
//! key); `ops` does the re-encryption under the stack's lock.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{Global, PASSPHRASE_FILE_VAR, PASSPHRASE_VAR, key_source, passphrase_from_env};
use crate::error::Result;
use crate::events::NullSink;
use crate::secrets::{DEFAULT_PROVIDER, KeyWrap};

/// The variables that hold the new passphrase when rotating one.
pub const NEW_PASSPHRASE_VAR: &str = "SKYFORM_NEW_PASSPHRASE";
pub const NEW_PASSPHRASE_FILE_VAR: &str = "SKYFORM_NEW_PASSPHRASE_FILE";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `passphrase` or `awskms://KEY[?region=R]`.
    #[arg(value_name = "PROVIDER")]
    pub provider: String,
}

pub fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let session = g.session(Arc::new(NullSink))?;
    let stack = session.stack.clone();
    let wrap: Arc<dyn KeyWrap> = if args.provider == DEFAULT_PROVIDER {
        // The new passphrase: SKYFORM_NEW_PASSPHRASE when rotating, else SKYFORM_PASSPHRASE.
        match passphrase_from_env(&stack, NEW_PASSPHRASE_VAR, NEW_PASSPHRASE_FILE_VAR) {
            Ok(p) => Arc::new(p),
            Err(_) => Arc::new(passphrase_from_env(&stack, PASSPHRASE_VAR, PASSPHRASE_FILE_VAR)?),
        }
    } else {
        key_source(&session.project, &stack)(&args.provider)?
    };
    let secrets = session.change_secrets_provider(wrap)?;
    println!(
        "stack `{stack}`: every secret is now encrypted with a new key wrapped by `{}`",
        secrets.provider
    );
    Ok(ExitCode::SUCCESS)
}
