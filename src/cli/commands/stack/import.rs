//! `skyform stack import FILE`.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Global;
use crate::error::{Error, Result};
use crate::events::NullSink;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub file: std::path::PathBuf,
}

pub fn run(g: &Global, args: Args) -> Result<ExitCode> {
    let session = g.session(Arc::new(NullSink))?;
    let bytes =
        std::fs::read(&args.file).map_err(|e| Error::io(format!("reading {}", args.file.display()), e))?;
    let snap = session.import_state(&bytes, &args.file.display().to_string())?;
    println!(
        "imported the state of stack `{}` ({} resources, serial {})",
        session.stack,
        snap.resources.len(),
        snap.serial
    );
    Ok(ExitCode::SUCCESS)
}
