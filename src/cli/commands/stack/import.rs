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
    const WHAT: &str = "import a state file, as `skyform stack export` prints it (format in state/README.md); \
                        nothing was changed";
    let bytes = std::fs::read(&args.file)
        .map_err(|e| Error::io(format!("reading {}", args.file.display()), e).with_hint(WHAT))?;
    let origin = args.file.display().to_string();
    let snap = session.import_state(&bytes, &origin).map_err(|e| {
        // The engine's hint for a corrupt file is about the stack's own state; here the file
        // is the one the user gave.
        if e.message.starts_with(&format!("the state file {origin} is corrupt")) {
            e.with_hint(WHAT)
        } else {
            e
        }
    })?;
    println!(
        "imported the state of stack `{}` ({} resources, serial {})",
        session.stack,
        snap.resources.len(),
        snap.serial
    );
    Ok(ExitCode::SUCCESS)
}
