//! `skyform stack init NAME`.

use std::process::ExitCode;

use crate::cli::Global;
use crate::error::Result;
use crate::ops;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub name: String,
    /// The provider the program targets on this stack (`local` or `aws`).
    #[arg(long, default_value = "local", value_parser = ["local", "aws"])]
    pub provider: String,
    /// How the stack's secrets are encrypted: `passphrase` (the default: SKYFORM_PASSPHRASE,
    /// asked for when the stack's first secret is recorded) or `awskms://KEY[?region=R]`.
    #[arg(long, value_name = "PROVIDER")]
    pub secrets_provider: Option<String>,
}

pub fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let project = g.project()?;
    // A KMS key is checked (and the data key made) now, not at the first secret.
    let wrap = match args.secrets_provider.as_deref() {
        Some(sp) if sp != crate::secrets::DEFAULT_PROVIDER => {
            let (project, name) = (&project, &args.name);
            Some(move || crate::cli::key_source(project, name)(sp))
        }
        _ => None,
    };
    let path = ops::stack_init(
        &project,
        &args.name,
        &args.provider,
        wrap.as_ref().map(|f| f as &dyn Fn() -> Result<std::sync::Arc<dyn crate::secrets::KeyWrap>>),
    )?;
    println!("created stack `{}` (provider {}): {}", args.name, args.provider, path.display());
    Ok(ExitCode::SUCCESS)
}
